/* http_request.c: the http module's requests: ids, body buffers and their budget, values, wiping.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/types.h>

#include <microhttpd.h>

#include "common/codec.h"
#include "common/num.h"
#include "http/http_int.h"

void http_wipe_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    explicit_bzero(p, n);
    free(p);
}

/* Request ids only correlate log lines: a random 64-bit start drawn once per
 * process, then a counter, so that a request costs no getrandom() call. */
static _Atomic uint64_t next_request_id;
static pthread_once_t request_id_once = PTHREAD_ONCE_INIT;
static atomic_bool request_id_seeded;

static void seed_request_id(void)
{
    uint64_t seed;

    if (getrandom(&seed, sizeof(seed), 0) == (ssize_t)sizeof(seed)) {
        atomic_store(&next_request_id, seed);
        atomic_store(&request_id_seeded, true);
    }
}

cd_err http_make_request_id(char out[HTTP_REQUEST_ID_LEN + 1])
{
    uint8_t be[HTTP_REQUEST_ID_LEN / 2];
    uint64_t v;

    pthread_once(&request_id_once, seed_request_id);
    if (!atomic_load(&request_id_seeded))
        return CD_ERR_INTERNAL;
    v = atomic_fetch_add(&next_request_id, 1);
    for (int i = (int)sizeof(be) - 1; i >= 0; i--) {
        be[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
    codec_hex_encode(be, sizeof(be), out); /* HTTP_REQUEST_ID_LEN digits and a NUL */
    return CD_OK;
}

/* Counts n more body bytes against the server's budget; CD_ERR_LIMITED (and
 * nothing counted) when they do not fit. */
cd_err http_reserve_body(http_server *srv, size_t n)
{
    size_t prev = atomic_fetch_add(&srv->inflight_body, n);
    if (prev + n < prev || prev + n > srv->max_inflight_body_bytes) {
        atomic_fetch_sub(&srv->inflight_body, n);
        return CD_ERR_LIMITED;
    }
    return CD_OK;
}

void http_release_body(struct http_req *rq)
{
    http_wipe_free(rq->body, rq->body_cap);
    rq->body = NULL;
    rq->body_len = 0;
    rq->body_cap = 0;
    if (rq->reserved > 0)
        atomic_fetch_sub(&rq->srv->inflight_body, rq->reserved);
    rq->reserved = 0;
}

/* Wipes memory that MHD hands out as const but that lives in its writable
 * connection memory (header values, body bytes read). */
void http_wipe_in_place(const void *p, size_t n)
{
    void *w;

    memcpy(&w, &p, sizeof(w));
    explicit_bzero(w, n);
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    if (req == NULL || req->impl == NULL || name == NULL)
        return NULL;
    return MHD_lookup_connection_value(req->impl, MHD_HEADER_KIND, name);
}

const char *http_request_query(const struct http_request *req, const char *name)
{
    if (req == NULL || req->impl == NULL || name == NULL)
        return NULL;
    return MHD_lookup_connection_value(req->impl, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result nul_check(void *cls, enum MHD_ValueKind kind, const char *key,
                                 size_t key_size, const char *value, size_t value_size)
{
    bool *found = cls;

    (void)kind;
    if ((key != NULL && memchr(key, '\0', key_size) != NULL) ||
        (value != NULL && memchr(value, '\0', value_size) != NULL)) {
        *found = true;
        return MHD_NO;
    }
    return MHD_YES;
}

/* A header or query argument whose name or value holds a NUL byte: handlers
 * see C strings, which would silently cut it ("limit=1%00abc" as "1"). */
bool http_has_nul_value(struct MHD_Connection *conn)
{
    bool found = false;

    MHD_get_connection_values_n(conn, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, nul_check, &found);
    return found;
}

/* MHD's unescaper for the path and the query string (MHD_http_unescape, as
 * by default), noting a decoded NUL so that the request is refused. */
size_t http_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    const union MHD_ConnectionInfo *ci;
    size_t n;

    (void)cls;
    n = MHD_http_unescape(s);
    if (memchr(s, '\0', n) != NULL) {
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci != NULL && ci->socket_context != NULL)
            ((struct http_conn *)ci->socket_context)->decoded_nul = 1;
    }
    return n;
}

static enum MHD_Result wipe_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    static const char *const secret[] = {"Authorization", "Cookie", "X-CSRF-Token"};

    (void)cls;
    (void)kind;
    if (key == NULL || value == NULL)
        return MHD_YES;
    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++) {
        if (key_size == strlen(secret[i]) && strncasecmp(key, secret[i], key_size) == 0)
            http_wipe_in_place(value, value_size);
    }
    return MHD_YES;
}

/* The request's credentials (Authorization, the session cookie and its CSRF
 * token) live in MHD's connection memory (header values
 * point into its read buffer), which MHD frees without clearing when the
 * connection closes: wipe them in place once the request is over. */
void http_wipe_credentials(struct MHD_Connection *conn)
{
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, wipe_value, NULL);
}

/* Strict decimal Content-Length; CD_ERR_INVALID when malformed or too big. */
cd_err http_parse_length(const char *s, size_t *out)
{
    uint64_t v;
    cd_err err;

    if (s == NULL)
        return CD_ERR_INVALID;
    err = num_parse(s, strlen(s), SIZE_MAX, &v);
    if (err != CD_OK)
        return CD_ERR_INVALID;
    *out = (size_t)v;
    return CD_OK;
}

/* Grows a chunked body's buffer to hold need bytes. CD_ERR_TOO_LARGE over
 * the request's limit, CD_ERR_LIMITED over the server's body budget,
 * CD_ERR_NOMEM. */
static cd_err grow_body(struct http_req *rq, size_t need)
{
    http_server *srv = rq->srv;
    size_t cap = rq->body_cap > 0 ? rq->body_cap : HTTP_CHUNKED_START;
    uint8_t *nb;

    while (cap < need)
        cap = cap > rq->limit / 2 ? rq->limit : cap * 2;
    if (cap > rq->limit)
        cap = rq->limit;
    if (cap < need)
        return CD_ERR_TOO_LARGE;
    if (http_reserve_body(srv, cap - rq->body_cap) != CD_OK)
        return CD_ERR_LIMITED;
    rq->reserved += cap - rq->body_cap;
    nb = malloc(cap);
    if (nb == NULL)
        return CD_ERR_NOMEM; /* the reservation is returned with the request */
    if (rq->body_len > 0)
        memcpy(nb, rq->body, rq->body_len);
    http_wipe_free(rq->body, rq->body_cap);
    rq->body = nb;
    rq->body_cap = cap;
    return CD_OK;
}

/* Body bytes sit in MHD's connection memory (its read buffer, which MHD
 * reuses but does not clear when the connection closes): once copied or
 * thrown away they are wiped there. MHD's API hands them out as const; the
 * memory is its writable read buffer, and MHD never reads consumed bytes
 * again (docs/internals/http.md, "Copies of secrets"). */
static void wipe_upload(struct http_req *rq, const char *data, size_t n)
{
    http_wipe_in_place(data, n);
    rq->last_upload = data;
    rq->last_upload_len = n;
}

static enum MHD_Result on_body_keep(struct http_req *rq, const char *data, size_t n);

enum MHD_Result http_on_body(struct http_req *rq, const char *data, size_t n)
{
    enum MHD_Result ret = on_body_keep(rq, data, n);

    wipe_upload(rq, data, n);
    return ret;
}

static enum MHD_Result on_body_keep(struct http_req *rq, const char *data, size_t n)
{
    http_server *srv = rq->srv;

    if (rq->reject != 0) {
        size_t cap =
            srv->max_body_bytes > HTTP_DISCARD_MIN ? srv->max_body_bytes : HTTP_DISCARD_MIN;
        rq->discarded += n;
        return rq->discarded > cap ? MHD_NO : MHD_YES;
    }
    if (n > rq->limit - rq->body_len) {
        rq->reject = 413;
        rq->discarded = n;
        http_release_body(rq);
        return MHD_YES;
    }
    if (n > rq->body_cap - rq->body_len) {
        if (!rq->chunked || grow_body(rq, rq->body_len + n) != CD_OK) {
            rq->reject = 503;
            rq->discarded = n;
            http_release_body(rq);
            return MHD_YES;
        }
    }
    memcpy(rq->body + rq->body_len, data, n);
    rq->body_len += n;
    return MHD_YES;
}
