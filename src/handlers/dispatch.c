/* dispatch.c: the route table (one row per router id: handler, admission
 * flags, body limit) and the one function that applies it to each request. */
#include "handlers/handlers_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log/log.h"

/* Applies the per-client limit; false (with resp filled) when refused. */
static bool hd_rate_limit(struct hd_req *r)
{
    struct app *app = r->app;
    const struct http_request *req = r->req;
    struct http_response *resp = r->resp;
    struct sockaddr_storage addr;
    socklen_t len;
    unsigned retry = 0;
    cd_err rc;

    if (app->rl == NULL)
        return true;
    hd_client_address(app, req, &addr, &len);
    rc = ratelimit_hit(app->rl, (const struct sockaddr *)&addr, len, &retry);
    if (rc == CD_OK)
        return true;
    if (rc == CD_ERR_LIMITED) {
        char detail[96];
        snprintf(detail, sizeof(detail), "Requests exceed more than %u requests in the last minute",
                 app->rate_limit);
        hd_error(resp, 429, detail);
        hd_retry_after(resp, retry > 0 ? retry : 1);
        return false;
    }
    hd_fail(resp, rc, req, "rate limiter");
    return false;
}

/* /readyz needs no credentials: its database ping is made at most once per
 * HD_READY_CACHE_MS, and callers that arrive while it runs wait for it and
 * share its answer (the lock is held across the ping). */
#define HD_READY_CACHE_MS 1000

static struct {
    pthread_mutex_t lock;
    bool valid;
    struct timespec at; /* CLOCK_MONOTONIC, when the ping ended */
    cd_err rc;
} hd_ready = {PTHREAD_MUTEX_INITIALIZER, false, {0, 0}, CD_OK};

static cd_err hd_ready_ping(struct app *app)
{
    struct timespec now;
    cd_err rc;

    pthread_mutex_lock(&hd_ready.lock);
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!hd_ready.valid ||
        (now.tv_sec - hd_ready.at.tv_sec) * 1000 + (now.tv_nsec - hd_ready.at.tv_nsec) / 1000000 >=
            HD_READY_CACHE_MS) {
        hd_ready.rc = db_ping(app->db);
        clock_gettime(CLOCK_MONOTONIC, &hd_ready.at);
        hd_ready.valid = true;
    }
    rc = hd_ready.rc;
    pthread_mutex_unlock(&hd_ready.lock);
    return rc;
}

static void hd_readyz(struct hd_req *r)
{
    struct app *app = r->app;
    const struct http_request *req = r->req;
    struct http_response *resp = r->resp;
    const char *limiter = app->rl == NULL               ? "off"
                          : ratelimit_degraded(app->rl) ? "in-process"
                                                        : "memcached";
    cd_err rc = hd_ready_ping(app);

    if (rc != CD_OK) {
        log_warnx("req=%s readiness: database: %s", req->request_id, cd_strerror(rc));
        hd_json(resp, 503,
                json_pack("{s:s,s:s,s:s}", "status", "unavailable", "database", "unreachable",
                          "rate_limiter", limiter));
        hd_retry_after(resp, 1);
        return;
    }
    hd_json(
        resp, 200,
        json_pack("{s:s,s:s,s:s}", "status", "ready", "database", "ok", "rate_limiter", limiter));
}

static void hd_healthz(struct hd_req *r)
{
    hd_json(r->resp, 200, json_pack("{s:s}", "status", "alive"));
}

/* What a route gets, besides its handler. */
enum hd_route_flag {
    /* Not counted by the per-client rate limiter (health probes). */
    HD_NO_RATELIMIT = 1u << 0,
    /* Does its work holding one of app->active's places (see hd_active_enter).
     * Only reads are admitted through the gate. A write spends most of its
     * time waiting for the durable commit, asleep; holding places meanwhile
     * would only make the commits smaller (fewer transactions per log flush).
     * Measured with 16 places, create_document at c=64: 2,711 req/s with
     * writes admitted through the gate, 3,296 without, 3,198 with no gate at
     * all. Routes that always run an Argon2id are bounded by its own slots. */
    HD_GATED = 1u << 1,
    /* The handler gets an authenticated caller (r->creds, r->p, r->kek). */
    HD_AUTH = 1u << 2,
    /* With HD_AUTH: the one database statement of the route checks auth_gen
     * (the _if_gen forms of storage), so a cached credential is used without
     * reading the account row first (auth_login_cached). */
    HD_ONE_STATEMENT = 1u << 3,
    /* Always runs an Argon2id: handled on the http server's slow lane. */
    HD_SLOW = 1u << 4,
    /* Waits for a durable commit: handled on the write lane, whose many
     * threads let commits share a log flush. */
    HD_WRITE = 1u << 5,
};

struct hd_route {
    hd_handler_fn fn;
    unsigned flags; /* enum hd_route_flag */
    /* Largest body, before any byte is read: HANDLERS_CONTROL_BODY_MAX, or
     * SIZE_MAX for document content (the server's max_body_bytes). */
    size_t body_max;
};

#define HD_CTRL HANDLERS_CONTROL_BODY_MAX

/* The one table: (path, method) -> behaviour. Rows not listed (ROUTE_NONE)
 * have no handler: 404. */
static const struct hd_route hd_routes[ROUTE__COUNT] = {
    [ROUTE_HEALTHZ] = {hd_healthz, HD_NO_RATELIMIT, HD_CTRL},
    [ROUTE_READYZ] = {hd_readyz, HD_NO_RATELIMIT, HD_CTRL},
    [ROUTE_CREATE_ACCOUNT_GET] = {hd_create_account, HD_SLOW, HD_CTRL},
    [ROUTE_CREATE_ACCOUNT_POST] = {hd_create_account, HD_SLOW, HD_CTRL},
    [ROUTE_RECOVER] = {hd_recover, HD_SLOW, HD_CTRL},
    [ROUTE_ME_GET] = {hd_me, HD_AUTH | HD_GATED, HD_CTRL},
    [ROUTE_ME_DELETE] = {hd_me_delete, HD_AUTH | HD_WRITE, HD_CTRL},
    [ROUTE_ME_PASSWORD] = {hd_change_password, HD_AUTH | HD_SLOW, HD_CTRL},
    [ROUTE_ME_ROTATE_KEY] = {hd_rotate_key, HD_AUTH | HD_SLOW, HD_CTRL},
    [ROUTE_CREATE_DOCUMENT] = {hd_create_document, HD_AUTH | HD_ONE_STATEMENT | HD_WRITE, SIZE_MAX},
    [ROUTE_DOCUMENTS] = {hd_list, HD_AUTH | HD_GATED, HD_CTRL},
    [ROUTE_DOCUMENT_GET] = {hd_get, HD_AUTH | HD_GATED | HD_ONE_STATEMENT, HD_CTRL},
    [ROUTE_DOCUMENT_PUT] = {hd_put, HD_AUTH | HD_WRITE, SIZE_MAX},
    [ROUTE_DOCUMENT_DELETE] = {hd_delete, HD_AUTH | HD_WRITE, HD_CTRL},
    [ROUTE_DOCUMENT_CONTENT] = {hd_get_content, HD_AUTH | HD_GATED | HD_ONE_STATEMENT, HD_CTRL},
    [ROUTE_AUTH_LOGIN] = {hd_login, HD_SLOW, HD_CTRL},
    [ROUTE_AUTH_LOGOUT] = {hd_logout, HD_WRITE, HD_CTRL},
    [ROUTE_ME_TOTP_POST] = {hd_totp_begin, HD_AUTH | HD_WRITE, HD_CTRL},
    [ROUTE_ME_TOTP_DELETE] = {hd_totp_disable, HD_AUTH | HD_WRITE, HD_CTRL},
    [ROUTE_ME_TOTP_CONFIRM] = {hd_totp_confirm, HD_AUTH | HD_WRITE, HD_CTRL},
    [ROUTE_ME_APPPW_GET] = {hd_apppw_list, HD_AUTH | HD_GATED, HD_CTRL},
    [ROUTE_ME_APPPW_POST] = {hd_apppw_create, HD_AUTH | HD_WRITE, HD_CTRL},
    [ROUTE_ME_APPPW_DELETE] = {hd_apppw_delete, HD_AUTH | HD_WRITE, HD_CTRL},
};

/* Admission. With one thread per connection, 64 busy connections are 64
 * runnable threads on a few cores; the scheduler then serves them in slices,
 * and nginx and MariaDB wait their turn behind them: tails of hundreds of ms.
 * Short requests therefore do their work (account row, document statement,
 * crypto) at most app->active at a time, in arrival order; the others wait
 * asleep. Argon2id and large transfers have bounds of their own and leave
 * the gate before their waits (hd_active_leave, through the auth_login hook
 * and hd_large_enter); r->active_held says whether the request holds a place. */
#define HD_ACTIVE_WAIT_MS 10000

static bool hd_active_enter(struct hd_req *r)
{
    if (r->app->active == NULL)
        return true;
    if (gate_enter(r->app->active, HD_ACTIVE_WAIT_MS) != CD_OK) {
        log_warnx("req=%s no active place free within %u ms", r->req->request_id,
                  HD_ACTIVE_WAIT_MS);
        hd_error(r->resp, 503, "Server busy");
        hd_retry_after(r->resp, 1);
        return false;
    }
    r->active_held = true;
    return true;
}

/* auth_login's hook: a request about to wait for an Argon2id gives up its
 * active place, and leaves the normal lane: it runs again from the start on
 * the slow lane (its answer here is dropped), so that a hash never holds an
 * event-loop worker or a thread that serves the other routes. */
static bool hd_before_hash(void *cls)
{
    struct hd_req *r = cls;

    hd_active_leave(r);
    return !http_request_move(r->req, r->resp, HTTP_LANE_SLOW);
}

/* Authenticates the caller, runs the handler and, when the cached credential
 * turned out stale or was never confirmed, verifies the credentials against
 * the account as any uncached request and runs the handler once more. */
static void hd_run_authenticated(struct hd_req *r, const struct hd_route *route)
{
    const struct auth_hook hook = {hd_before_hash, r, r->req->request_id};

    if ((route->flags & HD_ONE_STATEMENT) &&
        auth_parse_basic(http_request_header(r->req, "Authorization"), &r->creds) == CD_OK &&
        auth_login_cached(r->app->auth, &r->creds, &r->p) == CD_OK)
        r->auth = HD_AUTH_UNCONFIRMED;
    else if (!hd_authenticate_request(r, &hook))
        return;
    auth_principal_doc_kek(&r->p, r->kek);
    route->fn(r);
    if (r->auth != HD_AUTH_STALE && r->auth != HD_AUTH_UNCONFIRMED)
        return;
    /* The cached credential is out of date (password changed, recovery, or
     * account deleted, maybe on another replica), or the answer came before
     * any statement could tell. */
    hd_response_reset(r->resp);
    crypto_wipe(r->kek, sizeof(r->kek));
    auth_principal_wipe(&r->p);
    r->auth = HD_AUTH_VERIFIED;
    if (!hd_authenticate_request(r, &hook))
        return;
    auth_principal_doc_kek(&r->p, r->kek);
    route->fn(r);
    if (r->auth == HD_AUTH_STALE) /* changed again meanwhile */
        hd_error(r->resp, 409, "The credentials changed meanwhile; authenticate again");
}

void handlers_classify(void *ctx, const char *method, const char *path, struct http_class *cls)
{
    struct route_match m;
    const struct hd_route *route;

    (void)ctx;
    if (cls->body_limit > HANDLERS_CONTROL_BODY_MAX)
        cls->body_limit = HANDLERS_CONTROL_BODY_MAX;
    if (router_match(method, path, &m, NULL, 0) != ROUTER_OK)
        return;
    route = &hd_routes[m.id];
    cls->tag = (unsigned)m.id;
    if (route->fn != NULL)
        cls->body_limit = route->body_max;
    if (route->flags & HD_SLOW)
        cls->lane = HTTP_LANE_SLOW;
    else if (route->flags & HD_WRITE)
        cls->lane = HTTP_LANE_WRITE;
}

void handlers_dispatch(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct route_match m;
    struct hd_req r;
    const struct hd_route *route;
    char allow[64];

    /* The route classify found (tag: its id); a request it did not route
     * (404, 405) or that was not classified is matched here. */
    if (req->tag == ROUTE_NONE || req->tag >= ROUTE__COUNT ||
        router_fill((enum route_id)req->tag, req->path, &m) != ROUTER_OK) {
        switch (router_match(req->method, req->path, &m, allow, sizeof(allow))) {
        case ROUTER_NOT_FOUND:
            resp->route = "-";
            hd_error(resp, 404, "Not Found");
            return;
        case ROUTER_METHOD_NOT_ALLOWED:
            resp->route = m.pattern;
            hd_error(resp, 405, "Method Not Allowed");
            (void)http_response_header(resp, "Allow", allow);
            return;
        case ROUTER_OK:
            break;
        }
    }
    resp->route = m.pattern;
    route = &hd_routes[m.id];
    if (route->fn == NULL) {
        hd_error(resp, 404, "Not Found");
        return;
    }
    memset(&r, 0, sizeof(r));
    r.app = ctx;
    r.req = req;
    r.resp = resp;
    r.m = &m;
    /* A request that moved to another lane runs again: it was counted. */
    if (!(route->flags & HD_NO_RATELIMIT) && !req->moved && !hd_rate_limit(&r))
        return;
    if (!(route->flags & HD_GATED) || hd_active_enter(&r)) {
        if (route->flags & HD_AUTH)
            hd_run_authenticated(&r, route);
        else
            route->fn(&r);
    }
    /* The one place a request's context is given back. */
    hd_active_leave(&r);
    crypto_wipe(r.kek, sizeof(r.kek));
    auth_principal_wipe(&r.p);
    auth_credentials_wipe(&r.creds);
    crypto_wipe(r.token, sizeof(r.token));
}
