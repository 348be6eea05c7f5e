/* handlers.c: request dispatch (routing, rate limiting, health) and response helpers. */
#include "handlers/handlers_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log/log.h"
#include "validate/validate.h"

/* jansson's allocations carry their size in front so that free can wipe them:
 * parsed bodies and serialised answers hold passwords and document text. */
struct hd_alloc_hdr {
    size_t size;
    size_t pad; /* keeps the payload 16-byte aligned */
};

static void *hd_json_malloc(size_t n)
{
    struct hd_alloc_hdr *h;

    if (n > SIZE_MAX - sizeof(*h))
        return NULL;
    h = malloc(sizeof(*h) + n);
    if (h == NULL)
        return NULL;
    h->size = n;
    return h + 1;
}

static void hd_json_free(void *p)
{
    struct hd_alloc_hdr *h;

    if (p == NULL)
        return;
    h = (struct hd_alloc_hdr *)p - 1;
    crypto_wipe(p, h->size);
    free(h);
}

void handlers_init(void)
{
    json_set_alloc_funcs(hd_json_malloc, hd_json_free);
}

void hd_retry_after(struct http_response *resp, unsigned seconds)
{
    char buf[16];
    snprintf(buf, sizeof(buf), "%u", seconds);
    (void)http_response_header(resp, "Retry-After", buf);
}

void hd_response_reset(struct http_response *resp)
{
    void (*done)(void *) = resp->on_done;

    if (resp->body != NULL) {
        crypto_wipe(resp->body, resp->body_len);
        free(resp->body);
    }
    resp->body = NULL;
    resp->body_len = 0;
    resp->status = 500;
    resp->content_type = NULL;
    resp->n_headers = 0;
    resp->on_done = NULL;
    if (done != NULL)
        done(resp->on_done_cls);
}

void hd_json(struct http_response *resp, int status, json_t *obj)
{
    char *text;
    size_t len;

    if (obj == NULL) {
        resp->status = 500;
        return;
    }
    /* Serialise into a malloc'ed buffer the server can own and free. */
    len = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    text = len > 0 ? malloc(len) : NULL;
    if (text == NULL || json_dumpb(obj, text, len, JSON_COMPACT) != len) {
        free(text);
        json_decref(obj);
        resp->status = 500;
        return;
    }
    json_decref(obj);
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = (uint8_t *)text;
    resp->body_len = len;
}

void hd_error(struct http_response *resp, int status, const char *detail)
{
    hd_json(resp, status, json_pack("{s:s}", "detail", detail));
}

void hd_unavailable(struct http_response *resp)
{
    hd_error(resp, 503, "Service temporarily unavailable");
    hd_retry_after(resp, 1);
}

void hd_fail(struct http_response *resp, cd_err err, const struct http_request *req,
             const char *what)
{
    switch (err) {
    case CD_ERR_UNAVAILABLE:
    case CD_ERR_TIMEOUT:
        log_warnx("req=%s %s: %s", req->request_id, what, cd_strerror(err));
        hd_unavailable(resp);
        return;
    case CD_ERR_LIMITED:
        hd_error(resp, 503, "Server busy");
        hd_retry_after(resp, 1);
        return;
    case CD_ERR_TOO_LARGE:
        hd_error(resp, 413, "Request body too large");
        return;
    default:
        log_errorx("req=%s %s: %s", req->request_id, what, cd_strerror(err));
        hd_error(resp, 500, "Internal server error");
        return;
    }
}

static void hd_unauthorized(struct http_response *resp)
{
    hd_error(resp, 401, "Incorrect username or password");
    (void)http_response_header(resp, "WWW-Authenticate", HD_BASIC_CHALLENGE);
}

bool hd_authenticate(struct app *app, const struct http_request *req, struct http_response *resp,
                     struct auth_credentials *creds, struct auth_principal *p)
{
    unsigned retry = 0;
    cd_err rc;

    if (auth_parse_basic(http_request_header(req, "Authorization"), creds) != CD_OK) {
        hd_unauthorized(resp);
        return false;
    }
    rc = auth_login(app->auth, creds, p, &retry);
    switch (rc) {
    case CD_OK:
        return true;
    case CD_ERR_AUTH:
        hd_unauthorized(resp);
        return false;
    case CD_ERR_LIMITED:
        if (retry > 0) {
            hd_error(resp, 429, "Too many failed logins for this account; try again later");
            hd_retry_after(resp, retry);
        } else {
            hd_fail(resp, rc, req, "login");
        }
        return false;
    default:
        hd_fail(resp, rc, req, "login");
        return false;
    }
}

json_t *hd_parse_object(const struct http_request *req, struct http_response *resp)
{
    json_error_t jerr;
    json_t *root;

    if (req->body_len == 0) {
        hd_error(resp, 422, "Request body must be a JSON object");
        return NULL;
    }
    if (!validate_json_shape((const char *)req->body, req->body_len, HD_JSON_MAX_DEPTH,
                             HD_JSON_MAX_VALUES)) {
        hd_error(resp, 422, "JSON body nests too deeply or holds too many values");
        return NULL;
    }
    root = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        hd_error(resp, 422, "Malformed JSON body");
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        hd_error(resp, 422, "Request body must be a JSON object");
        return NULL;
    }
    return root;
}

bool hd_record_id_from_json(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0)
            return false;
        *out = (int64_t)i;
        return true;
    }
    if (json_is_string(v))
        return validate_record_id_text(json_string_value(v), json_string_length(v), out);
    return false;
}

/* The address a request counts against: the TCP peer, or the X-Real-IP that a
 * trusted proxy (identified by its client certificate) set. */
void hd_client_address(const struct app *app, const struct http_request *req,
                       struct sockaddr_storage *addr, socklen_t *len)
{
    *addr = req->peer;
    *len = req->peer_len;
    if (req->client_subject == NULL)
        return;
    for (size_t i = 0; i < app->n_trusted_proxies; i++) {
        if (strcmp(req->client_subject, app->trusted_proxies[i]) == 0) {
            const char *real = http_request_header(req, "X-Real-IP");
            struct sockaddr_storage tmp;
            socklen_t tmplen;
            if (real != NULL && ratelimit_parse_addr(real, &tmp, &tmplen) == CD_OK) {
                *addr = tmp;
                *len = tmplen;
            }
            return;
        }
    }
}

/* Applies the per-client limit; false (with resp filled) when refused. */
static bool hd_rate_limit(struct app *app, const struct http_request *req,
                          struct http_response *resp)
{
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

static void hd_readyz(struct app *app, const struct http_request *req, struct http_response *resp)
{
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

/* Admission. With one thread per connection, 64 busy connections are 64
 * runnable threads on a few cores; the scheduler then serves them in slices,
 * and nginx and MariaDB wait their turn behind them: tails of hundreds of ms.
 * Short requests therefore do their work (account row, document statement,
 * crypto) at most app->active at a time, in arrival order; the others wait
 * asleep. Argon2id and large transfers have bounds of their own and leave
 * the gate before their waits. Thread-per-connection: a request is one thread
 * from start to end, so a thread-local flag says whether it holds a place. */
#define HD_ACTIVE_WAIT_MS 10000

static __thread bool hd_active_held;

static bool hd_active_enter(struct app *app, const struct http_request *req,
                            struct http_response *resp)
{
    if (app->active == NULL)
        return true;
    if (gate_enter(app->active, HD_ACTIVE_WAIT_MS) != CD_OK) {
        log_warnx("req=%s no active place free within %u ms", req->request_id, HD_ACTIVE_WAIT_MS);
        hd_error(resp, 503, "Server busy");
        hd_retry_after(resp, 1);
        return false;
    }
    hd_active_held = true;
    return true;
}

/* Only reads are admitted through the gate. A write spends most of its time
 * waiting for the durable commit, asleep; holding places meanwhile would only
 * make the commits smaller (fewer transactions per log flush). Measured with
 * 16 places, create_document at c=64: 2,711 req/s with writes admitted through
 * the gate, 3,296 without, 3,198 with no gate at all. */
static bool hd_is_read(const struct http_request *req)
{
    return strcmp(req->method, "GET") == 0;
}

void hd_active_leave(struct app *app)
{
    if (!hd_active_held)
        return;
    hd_active_held = false;
    gate_leave(app->active);
}

void handlers_before_hash(void *cls)
{
    hd_active_leave(cls);
}

size_t handlers_body_limit(void *ctx, const char *method, const char *path)
{
    struct route_match m;

    (void)ctx;
    if (router_match(method, path, &m, NULL, 0) == ROUTER_OK &&
        (m.id == ROUTE_CREATE_DOCUMENT || (m.id == ROUTE_DOCUMENT && strcmp(method, "PUT") == 0)))
        return SIZE_MAX; /* the server's max_body_bytes */
    return HANDLERS_CONTROL_BODY_MAX;
}

void handlers_dispatch(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct app *app = ctx;
    struct route_match m;
    char allow[64];

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
    resp->route = m.pattern;
    switch (m.id) {
    case ROUTE_HEALTHZ:
        hd_json(resp, 200, json_pack("{s:s}", "status", "alive"));
        return;
    case ROUTE_READYZ:
        hd_readyz(app, req, resp);
        return;
    default:
        break;
    }
    if (!hd_rate_limit(app, req, resp))
        return;
    switch (m.id) {
    case ROUTE_CREATE_ACCOUNT:
    case ROUTE_ME_PASSWORD:
    case ROUTE_ME_ROTATE_KEY:
    case ROUTE_RECOVER:
        hd_users(app, &m, req, resp); /* always an Argon2id: bounded by its own slots */
        return;
    case ROUTE_ME:
        if (!hd_is_read(req) || hd_active_enter(app, req, resp))
            hd_users(app, &m, req, resp);
        break;
    case ROUTE_CREATE_DOCUMENT:
    case ROUTE_DOCUMENTS:
    case ROUTE_DOCUMENT:
    case ROUTE_DOCUMENT_CONTENT:
        if (!hd_is_read(req) || hd_active_enter(app, req, resp))
            hd_documents(app, &m, req, resp);
        break;
    default:
        hd_error(resp, 404, "Not Found");
        return;
    }
    hd_active_leave(app);
}
