/* reply.c: the handlers' answers (JSON, errors), body parsing, Basic
 * authentication and the request's active place: what every handler uses. */
#include "handlers/handlers_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/jsonw.h"
#include "crypto/crypto.h"
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

void hd_json_fields(struct http_response *resp, int status, const struct jsonw_field *f, size_t n)
{
    uint8_t *text = NULL;
    size_t len = 0;

    if (jsonw_object(f, n, &text, &len) != CD_OK) {
        resp->status = 500;
        return;
    }
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = text;
    resp->body_len = len;
}

void hd_error(struct http_response *resp, int status, const char *detail)
{
    struct jsonw_field f = {.key = "detail", .kind = JSONW_STR, .s = detail, .len = strlen(detail)};

    hd_json_fields(resp, status, &f, 1);
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

void hd_unauthorized(struct http_response *resp)
{
    hd_error(resp, 401, "Incorrect username or password");
    (void)http_response_header(resp, "WWW-Authenticate", HD_BASIC_CHALLENGE);
}

void hd_login_limited(struct http_response *resp, unsigned retry, const struct http_request *req,
                      const char *what)
{
    if (retry > 0) {
        hd_error(resp, 429, "Too many failed logins for this account; try again later");
        hd_retry_after(resp, retry);
    } else {
        hd_fail(resp, CD_ERR_LIMITED, req, what);
    }
}

json_t *hd_time(int64_t us)
{
    char buf[40], frac[16];
    time_t s = (time_t)(us / 1000000);
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(frac, sizeof(frac), ".%06ldZ", (long)(us % 1000000));
    strncat(buf, frac, sizeof(buf) - strlen(buf) - 1);
    return json_string(buf);
}

bool hd_authenticate(struct hd_req *r, const struct auth_hook *hook)
{
    unsigned retry = 0;
    cd_err rc;

    if (auth_parse_basic(http_request_header(r->req, "Authorization"), &r->creds) != CD_OK) {
        hd_unauthorized(r->resp);
        return false;
    }
    rc = auth_login(r->app->auth, &r->creds, &r->p, &retry, hook);
    switch (rc) {
    case CD_OK:
        return true;
    case CD_ERR_AUTH:
        hd_unauthorized(r->resp);
        return false;
    case CD_ERR_SECOND_FACTOR:
        /* Only after the password verified: a guess still gets the usual 401. */
        hd_error(r->resp, 401,
                 "This account uses two-factor authentication: log in with a one-time code, or "
                 "use an application password");
        (void)http_response_header(r->resp, "WWW-Authenticate", HD_BASIC_CHALLENGE);
        return false;
    case CD_ERR_LIMITED:
        hd_login_limited(r->resp, retry, r->req, "login");
        return false;
    default:
        hd_fail(r->resp, rc, r->req, "login");
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

static const struct validate_json_member *flat_member(const struct validate_json_member *m,
                                                      size_t n, const char *key)
{
    size_t klen = strlen(key);

    for (size_t i = 0; i < n; i++) {
        if (m[i].key_len == klen && memcmp(m[i].key, key, klen) == 0)
            return &m[i];
    }
    return NULL;
}

/* The fast path: the members validate_json_flat found. */
static bool doc_body_flat(const struct validate_json_member *m, size_t n,
                          const struct http_request *req, struct http_response *resp,
                          struct hd_doc_body *b)
{
    const struct validate_json_member *rid = flat_member(m, n, "record_id");
    const struct validate_json_member *content = flat_member(m, n, "content");

    if (rid != NULL) {
        b->has_rid = true;
        if (rid->kind == VALIDATE_JSON_INTEGER) {
            b->rid_ok = true; /* < 10^18: within int64 */
            b->record_id = (int64_t)rid->num;
        } else {
            /* Every escape decodes to a non-digit: no record id then. */
            b->rid_ok =
                !rid->escaped && validate_record_id_text(rid->str, rid->str_len, &b->record_id);
        }
    }
    if (content == NULL || content->kind != VALIDATE_JSON_STRING)
        return true;
    b->content_ok = true;
    if (!content->escaped) {
        b->content = (const uint8_t *)content->str;
        b->content_len = content->str_len;
        return true;
    }
    b->decoded = malloc(content->str_len);
    if (b->decoded == NULL) {
        hd_fail(resp, CD_ERR_NOMEM, req, "document body");
        return false;
    }
    b->decoded_len = validate_json_unescape(content->str, content->str_len, b->decoded);
    b->content = (const uint8_t *)b->decoded;
    b->content_len = b->decoded_len;
    return true;
}

bool hd_doc_body_parse(const struct http_request *req, struct http_response *resp,
                       struct hd_doc_body *b)
{
    struct validate_json_member m[VALIDATE_JSON_FLAT_MAX];
    const json_t *rid, *content;
    size_t n = 0;

    memset(b, 0, sizeof(*b));
    if (req->body_len > 0 &&
        validate_json_flat((const char *)req->body, req->body_len, m, VALIDATE_JSON_FLAT_MAX, &n))
        return doc_body_flat(m, n, req, resp, b);
    b->tree = hd_parse_object(req, resp);
    if (b->tree == NULL)
        return false;
    rid = json_object_get(b->tree, "record_id");
    content = json_object_get(b->tree, "content");
    if (rid != NULL) {
        b->has_rid = true;
        b->rid_ok = hd_record_id_from_json(rid, &b->record_id);
    }
    if (json_is_string(content)) {
        b->content_ok = true;
        b->content = (const uint8_t *)json_string_value(content);
        b->content_len = json_string_length(content);
    }
    return true;
}

void hd_doc_body_release(struct hd_doc_body *b)
{
    if (b->decoded != NULL) {
        crypto_wipe(b->decoded, b->decoded_len);
        free(b->decoded);
    }
    json_decref(b->tree);
    memset(b, 0, sizeof(*b));
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

void hd_active_leave(struct hd_req *r)
{
    if (!r->active_held)
        return;
    r->active_held = false;
    gate_leave(r->app->active);
}
