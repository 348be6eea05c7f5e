/* http.c: the HTTPS server glue: libmicrohttpd (thread per connection) over GnuTLS, mutual TLS. */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "common/codec.h"
#include "common/file.h"
#include "common/num.h"
#include "log/log.h"

/* PEM files (certificate chain, key, CA bundle) larger than this are refused. */
#define HTTP_PEM_MAX ((size_t)256 * 1024)
/* TLS 1.2 and 1.3 only; AEAD ciphers only; ECDHE key exchange (forward secrecy). */
#define HTTP_TLS_PRIORITIES                                                                        \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"                                                  \
    "-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:"                                    \
    "-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"
/* Per-connection thread stack: handlers keep big data on the heap. Sanitizers
 * need far more stack for their redzones. */
#if defined(__SANITIZE_ADDRESS__)
#define HTTP_THREAD_STACK ((size_t)2 * 1024 * 1024)
#else
#define HTTP_THREAD_STACK ((size_t)256 * 1024)
#endif
/* MHD's per-connection memory pool holds the request line and headers (and
 * the response header block): max_header_bytes plus this margin. */
#define HTTP_POOL_MARGIN ((size_t)8 * 1024)
/* ... and at least this much: libmicrohttpd 0.9.75 malloc()s pools of up to
 * 32 KiB and free()s them without clearing, while it mmap()s larger ones and
 * unmaps them when the connection closes, so that what the pool held (header
 * values, body bytes read, copies of small answers) goes back to the kernel,
 * not to the heap. Between requests of a kept-alive connection MHD zeroes the
 * pool itself (MHD_pool_reset). */
#define HTTP_POOL_MIN ((size_t)36 * 1024)
/* First buffer for a chunked body; it doubles up to max_body_bytes. */
#define HTTP_CHUNKED_START ((size_t)16 * 1024)
/* After a chunked body went over the limit, at most this much more is read
 * and thrown away (so the 413 can be sent) before the connection is cut. */
#define HTTP_DISCARD_MIN ((size_t)64 * 1024)

struct http_server {
    struct MHD_Daemon *mhd;
    http_handler_fn handler;
    void *ctx;
    unsigned port;
    size_t max_body_bytes;
    size_t (*body_limit)(void *ctx, const char *method, const char *path);
    void (*completed_hook)(void *ctx, const struct http_request *req);
    size_t max_header_bytes;
    size_t max_inflight_body_bytes;
    unsigned drain_timeout_s;
    char subjects[HTTP_MAX_ALLOWED_SUBJECTS][HTTP_SUBJECT_MAX];
    size_t n_subjects;

    atomic_size_t inflight_body; /* bytes reserved by all buffered bodies */
    atomic_bool stopping;
    pthread_mutex_t lock; /* protects inflight_requests */
    pthread_cond_t idle;  /* signalled when inflight_requests drops */
    unsigned inflight_requests;
};

/* Per connection (MHD socket context): the client certificate verdict. */
struct http_conn {
    int verdict; /* 0: not checked yet, 1: accepted, -1: refused */
    /* The request being parsed decoded a %00 in its path or query string
     * (set by unescape, read and cleared on the request's first call). */
    int decoded_nul;
    char subject[HTTP_SUBJECT_MAX];
};

/* Per request (MHD request context), freed in on_completed. */
struct http_req {
    http_server *srv;
    struct http_conn *conn;
    char request_id[HTTP_REQUEST_ID_LEN + 1];
    char method[16]; /* sanitised, for the access log */
    struct timespec start;
    uint8_t *body;
    size_t body_len;
    size_t body_cap;
    size_t limit;            /* this request's body limit (route limit, at most max_body_bytes) */
    const char *last_upload; /* where MHD gave the last body bytes (for completed_hook) */
    size_t last_upload_len;
    size_t reserved;  /* this request's share of srv->inflight_body */
    size_t discarded; /* body bytes thrown away after a refusal */
    int chunked;
    int reject;    /* 0, or the status (413, 503) to answer once the body is drained */
    int responded; /* a response was queued */
    int status;    /* for the access log */
    const char *route;
    uint64_t bytes_in;
    uint64_t bytes_out;
};

/* Key purpose a client certificate must allow (checked by GnuTLS during the
 * handshake and again on the first request). GnuTLS keeps the pointer. */
static gnutls_typed_vdata_st client_purpose[1] = {
    {.type = GNUTLS_DT_KEY_PURPOSE_OID, .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT},
};

static const char ERR_NUL[] = "{\"detail\":\"NUL byte in the path, query string or a header\"}";
static const char ERR_TOO_LARGE[] = "{\"detail\":\"Request body too large\"}";
static const char ERR_HEADERS[] = "{\"detail\":\"Request header fields too large\"}";
static const char ERR_BUSY[] = "{\"detail\":\"Server busy\"}";
static const char ERR_STOPPING[] = "{\"detail\":\"Server shutting down\"}";
static const char ERR_INTERNAL[] = "{\"detail\":\"Internal server error\"}";

/* ---- small helpers ---------------------------------------------------- */

static void wipe_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    explicit_bzero(p, n);
    free(p);
}

/* Reads a whole PEM file (1..HTTP_PEM_MAX bytes) into a NUL-terminated heap
 * buffer (common/file). The caller wipes and frees it. */
static cd_err read_pem(const char *path, char **out, size_t *outlen)
{
    struct file_read_opts opts = {.max = HTTP_PEM_MAX, .flags = 0, .mem = NULL};
    struct file_data f;
    cd_err err = file_read(path, &opts, &f);

    if (err != CD_OK) {
        log_errorx("%s: %s (a regular file of 1..%zu bytes)", path, f.why, HTTP_PEM_MAX);
        return err == CD_ERR_NOMEM ? err : CD_ERR_CONFIG;
    }
    if (f.len == 0) {
        file_data_release(&f, NULL);
        log_errorx("%s: empty (a regular file of 1..%zu bytes)", path, HTTP_PEM_MAX);
        return CD_ERR_CONFIG;
    }
    *out = f.data;
    *outlen = f.len;
    return CD_OK;
}

/* Loads the key pair and the CA into throw-away GnuTLS credentials, so that a
 * bad file is reported as a configuration error rather than a bind failure. */
static cd_err check_tls_material(const char *cert, size_t certlen, const char *key, size_t keylen,
                                 const char *ca, size_t calen)
{
    gnutls_certificate_credentials_t cred = NULL;
    gnutls_datum_t dc = {(unsigned char *)cert, (unsigned)certlen};
    gnutls_datum_t dk = {(unsigned char *)key, (unsigned)keylen};
    gnutls_datum_t da = {(unsigned char *)ca, (unsigned)calen};
    cd_err err = CD_ERR_CONFIG;
    int r;

    if (gnutls_certificate_allocate_credentials(&cred) != GNUTLS_E_SUCCESS)
        return CD_ERR_NOMEM;
    r = gnutls_certificate_set_x509_key_mem(cred, &dc, &dk, GNUTLS_X509_FMT_PEM);
    if (r < 0) {
        log_errorx("server certificate or key rejected: %s", gnutls_strerror(r));
        goto out;
    }
    r = gnutls_certificate_set_x509_trust_mem(cred, &da, GNUTLS_X509_FMT_PEM);
    if (r <= 0) {
        log_errorx("client CA file holds no usable certificate");
        goto out;
    }
    err = CD_OK;
out:
    gnutls_certificate_free_credentials(cred);
    return err;
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

static cd_err make_request_id(char out[HTTP_REQUEST_ID_LEN + 1])
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
static cd_err reserve_body(http_server *srv, size_t n)
{
    size_t prev = atomic_fetch_add(&srv->inflight_body, n);
    if (prev + n < prev || prev + n > srv->max_inflight_body_bytes) {
        atomic_fetch_sub(&srv->inflight_body, n);
        return CD_ERR_LIMITED;
    }
    return CD_OK;
}

static void release_body(struct http_req *rq)
{
    wipe_free(rq->body, rq->body_cap);
    rq->body = NULL;
    rq->body_len = 0;
    rq->body_cap = 0;
    if (rq->reserved > 0)
        atomic_fetch_sub(&rq->srv->inflight_body, rq->reserved);
    rq->reserved = 0;
}

/* Wipes memory that MHD hands out as const but that lives in its writable
 * connection memory (header values, body bytes read). */
static void wipe_in_place(const void *p, size_t n)
{
    void *w;

    memcpy(&w, &p, sizeof(w));
    explicit_bzero(w, n);
}

/* MHD messages may quote client input: sanitise before logging. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char raw[512];
    char clean[512];
    int n;

    (void)cls;
    n = vsnprintf(raw, sizeof(raw), fmt, ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(raw))
        n = (int)sizeof(raw) - 1;
    while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
        n--;
    log_sanitize(clean, sizeof(clean), raw, (size_t)n);
    log_warnx("mhd: %s", clean);
}

/* ---- client certificates ---------------------------------------------- */

/* Checks the client certificate of this connection: present, chains to the
 * configured CA, allowed for TLS client use, subject in the allow list.
 * CD_ERR_AUTH when refused: logged here, where the connection is refused. */
static cd_err verify_client(http_server *srv, struct MHD_Connection *conn, struct http_conn *hc)
{
    const union MHD_ConnectionInfo *ci;
    gnutls_session_t session;
    const gnutls_datum_t *certs;
    unsigned ncerts = 0;
    unsigned status = 0;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t dn = {NULL, 0};
    const char *why = NULL;
    bool ok = false;

    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci == NULL || ci->tls_session == NULL) {
        why = "no TLS session";
        goto out;
    }
    session = ci->tls_session;
    certs = gnutls_certificate_get_peers(session, &ncerts);
    if (certs == NULL || ncerts == 0) {
        why = "no client certificate";
        goto out;
    }
    if (gnutls_certificate_verify_peers(session, client_purpose, 1, &status) < 0 || status != 0) {
        why = "client certificate does not verify";
        goto out;
    }
    if (gnutls_x509_crt_init(&crt) < 0 ||
        gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) < 0 ||
        gnutls_x509_crt_get_dn3(crt, &dn, 0) < 0) {
        why = "cannot read the client certificate subject";
        goto out;
    }
    if (dn.size == 0 || dn.size >= HTTP_SUBJECT_MAX || memchr(dn.data, '\0', dn.size) != NULL) {
        why = "client certificate subject unusable";
        goto out;
    }
    memcpy(hc->subject, dn.data, dn.size);
    hc->subject[dn.size] = '\0';
    if (srv->n_subjects > 0) {
        size_t i;
        for (i = 0; i < srv->n_subjects; i++) {
            if (strcmp(hc->subject, srv->subjects[i]) == 0)
                break;
        }
        if (i == srv->n_subjects) {
            why = "client certificate subject not allowed";
            goto out;
        }
    }
    ok = true;
out:
    if (!ok) {
        explicit_bzero(hc->subject, sizeof(hc->subject));
        log_warnx("connection refused: %s", why);
    }
    gnutls_free(dn.data);
    if (crt != NULL)
        gnutls_x509_crt_deinit(crt);
    return ok ? CD_OK : CD_ERR_AUTH;
}

/* New connection: make the handshake itself require a client certificate
 * that verifies against the trust list (MHD 0.9.75 only asks for one);
 * closed connection: free its state. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    const union MHD_ConnectionInfo *ci;

    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        free(*socket_ctx);
        *socket_ctx = NULL;
        return;
    }
    if (code != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    *socket_ctx = calloc(1, sizeof(struct http_conn)); /* NULL: refused at the first request */
    /* GnuTLS writes a handshake flight as several small records: with Nagle's
     * algorithm the last one waits for the peer's delayed ACK (40 ms). */
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci != NULL && ci->connect_fd != MHD_INVALID_SOCKET) {
        int one = 1;

        if (setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
            log_warn("cannot set TCP_NODELAY on an accepted connection");
    }
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci != NULL && ci->tls_session != NULL) {
        gnutls_session_t session = ci->tls_session;
        gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_verify_cert2(session, client_purpose, 1, 0);
    }
}

/* ---- responses -------------------------------------------------------- */

struct owned_body {
    uint8_t *p;
    size_t n;
    void (*on_done)(void *cls);
    void *on_done_cls;
};

static void free_owned_body(void *cls)
{
    struct owned_body *ob = cls;
    wipe_free(ob->p, ob->n);
    if (ob->on_done != NULL)
        ob->on_done(ob->on_done_cls);
    free(ob);
}

/* Calls the handler's on_done hook if it has not been handed over. */
static void response_done(struct http_response *resp)
{
    void (*fn)(void *) = resp->on_done;

    resp->on_done = NULL;
    if (fn != NULL)
        fn(resp->on_done_cls);
}

/* Content type and the headers every answer carries; CD_ERR_NOMEM when MHD
 * cannot add one. */
static cd_err add_common_headers(struct MHD_Response *r, const char *content_type)
{
    if (content_type != NULL &&
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES)
        return CD_ERR_NOMEM;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") != MHD_YES)
        return CD_ERR_NOMEM;
    return CD_OK;
}

/* Queues one of the server's own JSON errors (static body). */
static enum MHD_Result queue_error(struct MHD_Connection *conn, struct http_req *rq, int status,
                                   const char *json, int retry_after)
{
    struct MHD_Response *r;
    enum MHD_Result ret = MHD_NO;

    r = MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    if (add_common_headers(r, "application/json") != CD_OK ||
        (retry_after && MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1") != MHD_YES) ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)
        goto out;
    ret = MHD_queue_response(conn, (unsigned)status, r);
    if (ret == MHD_YES) {
        rq->responded = 1;
        rq->status = status;
        rq->bytes_out = strlen(json);
    }
out:
    MHD_destroy_response(r);
    return ret;
}

/* Turns the handler's answer into an MHD response; takes resp->body. */
static enum MHD_Result queue_handler_response(struct MHD_Connection *conn, struct http_req *rq,
                                              struct http_response *resp)
{
    struct MHD_Response *r = NULL;
    struct owned_body *ob = NULL;
    enum MHD_Result ret = MHD_NO;

    if (resp->status < 200 || resp->status > 599 || (resp->body == NULL && resp->body_len > 0) ||
        resp->n_headers > HTTP_MAX_RESPONSE_HEADERS) {
        log_errorx("req=%s: handler gave an invalid response", rq->request_id);
        goto internal;
    }
    if (resp->body != NULL && resp->body_len > 0) {
        ob = malloc(sizeof(*ob));
        if (ob == NULL)
            goto internal;
        ob->p = resp->body;
        ob->n = resp->body_len;
        ob->on_done = NULL;
        r = MHD_create_response_from_buffer_with_free_callback_cls(ob->n, ob->p, free_owned_body,
                                                                   ob);
        if (r == NULL)
            goto internal;
        /* Owned by r now, via ob, with the hook. */
        ob->on_done = resp->on_done;
        ob->on_done_cls = resp->on_done_cls;
        resp->on_done = NULL;
        resp->body = NULL;
        ob = NULL;
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (r == NULL)
            goto internal;
    }
    if (add_common_headers(r, resp->content_type) != CD_OK)
        goto bad_header;
    for (size_t i = 0; i < resp->n_headers; i++) {
        const struct http_header *h = &resp->headers[i];
        if (h->name == NULL || h->value == NULL ||
            MHD_add_response_header(r, h->name, h->value) != MHD_YES)
            goto bad_header;
    }
    ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    if (ret == MHD_YES) {
        rq->responded = 1;
        rq->status = resp->status;
        rq->bytes_out = resp->body_len;
    }
    MHD_destroy_response(r);
    response_done(resp); /* no body: done now */
    return ret;

bad_header:
    log_errorx("req=%s: handler gave an invalid response header", rq->request_id);
internal:
    if (r != NULL)
        MHD_destroy_response(r);
    if (ob != NULL)
        free(ob);
    if (resp->body != NULL) {
        wipe_free(resp->body, resp->body_len);
        resp->body = NULL;
    }
    response_done(resp);
    return queue_error(conn, rq, 500, ERR_INTERNAL, 0);
}

/* A header value: no control character but TAB. */
static bool header_value_ok(const char *value, size_t vl)
{
    for (size_t i = 0; i < vl; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

cd_err http_response_content_type(struct http_response *resp, const char *ctype)
{
    size_t n;

    if (resp == NULL || ctype == NULL)
        return CD_ERR_INVALID;
    n = strlen(ctype);
    if (n == 0 || !header_value_ok(ctype, n))
        return CD_ERR_INVALID;
    if (n >= sizeof(resp->content_type_store))
        return CD_ERR_TOO_LARGE;
    memcpy(resp->content_type_store, ctype, n + 1);
    resp->content_type = resp->content_type_store;
    return CD_OK;
}

cd_err http_response_header(struct http_response *resp, const char *name, const char *value)
{
    size_t nl;
    size_t vl;
    char *slot;

    if (resp == NULL || name == NULL || value == NULL)
        return CD_ERR_INVALID;
    nl = strlen(name);
    vl = strlen(value);
    if (nl == 0)
        return CD_ERR_INVALID;
    for (size_t i = 0; i < nl; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f || c == ':')
            return CD_ERR_INVALID;
    }
    if (!header_value_ok(value, vl))
        return CD_ERR_INVALID;
    if (resp->n_headers >= HTTP_MAX_RESPONSE_HEADERS || nl + vl + 2 > HTTP_RESPONSE_HEADER_STORE)
        return CD_ERR_TOO_LARGE;
    slot = resp->header_store[resp->n_headers];
    memcpy(slot, name, nl + 1);
    memcpy(slot + nl + 1, value, vl + 1);
    resp->headers[resp->n_headers].name = slot;
    resp->headers[resp->n_headers].value = slot + nl + 1;
    resp->n_headers++;
    return CD_OK;
}

/* ---- requests --------------------------------------------------------- */

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
static bool has_nul_value(struct MHD_Connection *conn)
{
    bool found = false;

    MHD_get_connection_values_n(conn, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, nul_check, &found);
    return found;
}

/* MHD's unescaper for the path and the query string (MHD_http_unescape, as
 * by default), noting a decoded NUL so that the request is refused. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
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
    (void)cls;
    (void)kind;
    if (key != NULL && value != NULL && key_size == strlen("Authorization") &&
        strncasecmp(key, "Authorization", key_size) == 0)
        wipe_in_place(value, value_size);
    return MHD_YES;
}

/* The request's credentials live in MHD's connection memory (header values
 * point into its read buffer), which MHD frees without clearing when the
 * connection closes: wipe them in place once the request is over. */
static void wipe_credentials(struct MHD_Connection *conn)
{
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, wipe_value, NULL);
}

/* Strict decimal Content-Length; CD_ERR_INVALID when malformed or too big. */
static cd_err parse_length(const char *s, size_t *out)
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

/* The first call for a request: client certificate, limits, body buffer.
 * Errors found here are answered before any body byte is read. */
static enum MHD_Result on_first_call(http_server *srv, struct MHD_Connection *conn, const char *url,
                                     const char *method, void **req_cls)
{
    const union MHD_ConnectionInfo *ci;
    struct http_conn *hc;
    struct http_req *rq;
    const char *te;
    const char *cl;
    size_t len = 0;
    int decoded_nul;

    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    hc = ci != NULL ? ci->socket_context : NULL;
    if (hc == NULL)
        return MHD_NO;
    if (hc->verdict == 0)
        hc->verdict = verify_client(srv, conn, hc) == CD_OK ? 1 : -1;
    if (hc->verdict != 1)
        return MHD_NO; /* close without processing the request */
    decoded_nul = hc->decoded_nul;
    hc->decoded_nul = 0;

    rq = calloc(1, sizeof(*rq));
    if (rq == NULL)
        return MHD_NO;
    rq->srv = srv;
    rq->conn = hc;
    rq->route = "-";
    clock_gettime(CLOCK_MONOTONIC, &rq->start);
    log_sanitize(rq->method, sizeof(rq->method), method, strlen(method));
    if (make_request_id(rq->request_id) != CD_OK) {
        free(rq);
        return MHD_NO;
    }
    *req_cls = rq;
    pthread_mutex_lock(&srv->lock);
    srv->inflight_requests++;
    pthread_mutex_unlock(&srv->lock);

    if (atomic_load(&srv->stopping))
        return queue_error(conn, rq, 503, ERR_STOPPING, 1);
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (ci != NULL && ci->header_size > srv->max_header_bytes)
        return queue_error(conn, rq, 431, ERR_HEADERS, 0);
    if (decoded_nul || has_nul_value(conn))
        return queue_error(conn, rq, 422, ERR_NUL, 0);
    rq->limit = srv->max_body_bytes;
    if (srv->body_limit != NULL) {
        size_t lim = srv->body_limit(srv->ctx, method, url);
        if (lim < rq->limit)
            rq->limit = lim;
    }

    te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te != NULL && strcasestr(te, "chunked") != NULL) {
        rq->chunked = 1;
        return MHD_YES;
    }
    cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl == NULL)
        return MHD_YES;
    if (parse_length(cl, &len) != CD_OK || len > rq->limit)
        return queue_error(conn, rq, 413, ERR_TOO_LARGE, 0);
    if (len == 0)
        return MHD_YES;
    if (reserve_body(srv, len) != CD_OK)
        return queue_error(conn, rq, 503, ERR_BUSY, 1);
    rq->reserved = len;
    rq->body = malloc(len);
    if (rq->body == NULL)
        return queue_error(conn, rq, 503, ERR_BUSY, 1);
    rq->body_cap = len;
    return MHD_YES;
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
    if (reserve_body(srv, cap - rq->body_cap) != CD_OK)
        return CD_ERR_LIMITED;
    rq->reserved += cap - rq->body_cap;
    nb = malloc(cap);
    if (nb == NULL)
        return CD_ERR_NOMEM; /* the reservation is returned with the request */
    if (rq->body_len > 0)
        memcpy(nb, rq->body, rq->body_len);
    wipe_free(rq->body, rq->body_cap);
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
    wipe_in_place(data, n);
    rq->last_upload = data;
    rq->last_upload_len = n;
}

static enum MHD_Result on_body_keep(struct http_req *rq, const char *data, size_t n);

static enum MHD_Result on_body(struct http_req *rq, const char *data, size_t n)
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
        release_body(rq);
        return MHD_YES;
    }
    if (n > rq->body_cap - rq->body_len) {
        if (!rq->chunked || grow_body(rq, rq->body_len + n) != CD_OK) {
            rq->reject = 503;
            rq->discarded = n;
            release_body(rq);
            return MHD_YES;
        }
    }
    memcpy(rq->body + rq->body_len, data, n);
    rq->body_len += n;
    return MHD_YES;
}

static enum MHD_Result run_handler(http_server *srv, struct MHD_Connection *conn,
                                   struct http_req *rq, const char *url, const char *method)
{
    const union MHD_ConnectionInfo *ci;
    struct http_request req;
    struct http_response resp;
    enum MHD_Result ret;

    memset(&req, 0, sizeof(req));
    req.method = method;
    req.path = url;
    req.body = rq->body_len > 0 ? rq->body : NULL;
    req.body_len = rq->body_len;
    req.client_subject = rq->conn->subject;
    memcpy(req.request_id, rq->request_id, sizeof(req.request_id));
    req.impl = conn;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci != NULL && ci->client_addr != NULL) {
        socklen_t sl = 0;
        if (ci->client_addr->sa_family == AF_INET)
            sl = sizeof(struct sockaddr_in);
        else if (ci->client_addr->sa_family == AF_INET6)
            sl = sizeof(struct sockaddr_in6);
        memcpy(&req.peer, ci->client_addr, sl);
        req.peer_len = sl;
    }

    memset(&resp, 0, sizeof(resp));
    resp.status = 500;
    srv->handler(srv->ctx, &req, &resp);
    rq->bytes_in = rq->body_len;
    if (resp.route != NULL)
        rq->route = resp.route;
    release_body(rq); /* the request body is no longer needed */
    ret = queue_handler_response(conn, rq, &resp);
    explicit_bzero(resp.header_store, sizeof(resp.header_store));
    explicit_bzero(resp.content_type_store, sizeof(resp.content_type_store)); /* a document's */
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    http_server *srv = cls;
    struct http_req *rq = *req_cls;
    size_t n;

    (void)version;
    if (rq == NULL)
        return on_first_call(srv, conn, url, method, req_cls);
    if (rq->responded) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    n = *upload_data_size;
    if (n > 0) {
        *upload_data_size = 0;
        return on_body(rq, upload_data, n);
    }
    if (rq->reject == 413)
        return queue_error(conn, rq, 413, ERR_TOO_LARGE, 0);
    if (rq->reject != 0)
        return queue_error(conn, rq, 503, ERR_BUSY, 1);
    return run_handler(srv, conn, rq, url, method);
}

/* The request is over (answered, failed or cut): access log, free, count. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *srv = cls;
    struct http_req *rq = *req_cls;
    struct timespec now;
    double ms;

    (void)toe;
    wipe_credentials(conn); /* also for a request refused before it had a context */
    if (rq == NULL)
        return;
    *req_cls = NULL;
    if (srv->completed_hook != NULL) {
        struct http_request req;
        memset(&req, 0, sizeof(req));
        req.impl = conn;
        req.body = (const uint8_t *)rq->last_upload;
        req.body_len = rq->last_upload_len;
        memcpy(req.request_id, rq->request_id, sizeof(req.request_id));
        srv->completed_hook(srv->ctx, &req);
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (double)(now.tv_sec - rq->start.tv_sec) * 1e3 +
         (double)(now.tv_nsec - rq->start.tv_nsec) / 1e6;
    if (rq->bytes_in == 0)
        rq->bytes_in = rq->body_len;
    log_request(rq->request_id, rq->method, rq->route, rq->status, ms, rq->bytes_in, rq->bytes_out);
    release_body(rq);
    free(rq);

    pthread_mutex_lock(&srv->lock);
    if (srv->inflight_requests > 0)
        srv->inflight_requests--;
    pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->lock);
}

/* ---- lifecycle -------------------------------------------------------- */

static cd_err parse_bind(const char *addr, unsigned port, struct sockaddr_storage *ss, int *ipv6)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

    if (addr == NULL || port > 65535)
        return CD_ERR_CONFIG;
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *ipv6 = 0;
        return CD_OK;
    }
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
        return CD_OK;
    }
    return CD_ERR_CONFIG;
}

static void ignore_sigpipe(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
}

static void server_free(http_server *srv)
{
    pthread_cond_destroy(&srv->idle);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}

/* The server object for cfg (already checked by http_server_start), without
 * its daemon. CD_ERR_CONFIG for an unusable allowed subject. */
static cd_err server_new(const struct http_server_config *cfg, http_handler_fn handler, void *ctx,
                         http_server **out)
{
    pthread_condattr_t ca_attr;
    http_server *srv;

    srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return CD_ERR_NOMEM;
    for (size_t i = 0; i < cfg->n_allowed_subjects; i++) {
        const char *s = cfg->allowed_subjects[i];
        if (s == NULL || strlen(s) == 0 || strlen(s) >= HTTP_SUBJECT_MAX) {
            free(srv);
            return CD_ERR_CONFIG;
        }
        memcpy(srv->subjects[i], s, strlen(s) + 1);
    }
    srv->n_subjects = cfg->n_allowed_subjects;
    srv->handler = handler;
    srv->ctx = ctx;
    srv->max_body_bytes = cfg->max_body_bytes;
    srv->body_limit = cfg->body_limit;
    srv->completed_hook = cfg->completed_hook;
    srv->max_header_bytes = cfg->max_header_bytes;
    srv->max_inflight_body_bytes = cfg->max_inflight_body_bytes;
    srv->drain_timeout_s = cfg->drain_timeout_s;
    atomic_init(&srv->inflight_body, 0);
    atomic_init(&srv->stopping, false);
    pthread_mutex_init(&srv->lock, NULL);
    pthread_condattr_init(&ca_attr);
    pthread_condattr_setclock(&ca_attr, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->idle, &ca_attr);
    pthread_condattr_destroy(&ca_attr);
    *out = srv;
    return CD_OK;
}

cd_err http_server_start(const struct http_server_config *cfg, http_handler_fn handler, void *ctx,
                         http_server **out)
{
    struct sockaddr_storage ss;
    http_server *srv = NULL;
    char *cert = NULL, *key = NULL, *ca = NULL;
    size_t certlen = 0, keylen = 0, calen = 0;
    const union MHD_DaemonInfo *di;
    unsigned int flags;
    size_t pool_size;
    int ipv6 = 0;
    cd_err err;

    if (cfg == NULL || handler == NULL || out == NULL || cfg->tls_cert == NULL ||
        cfg->tls_key == NULL || cfg->client_ca == NULL ||
        cfg->n_allowed_subjects > HTTP_MAX_ALLOWED_SUBJECTS || cfg->max_connections == 0 ||
        cfg->max_header_bytes == 0 || cfg->max_header_bytes > (size_t)1024 * 1024 ||
        cfg->max_inflight_body_bytes < cfg->max_body_bytes)
        return CD_ERR_CONFIG;
    err = parse_bind(cfg->bind_addr, cfg->port, &ss, &ipv6);
    if (err != CD_OK) {
        log_errorx("bind address is not an IPv4 or IPv6 literal");
        return err;
    }

    err = server_new(cfg, handler, ctx, &srv);
    if (err != CD_OK)
        return err;

    if ((err = read_pem(cfg->tls_cert, &cert, &certlen)) != CD_OK ||
        (err = read_pem(cfg->tls_key, &key, &keylen)) != CD_OK ||
        (err = read_pem(cfg->client_ca, &ca, &calen)) != CD_OK)
        goto out;
    err = check_tls_material(cert, certlen, key, keylen, ca, calen);
    if (err != CD_OK)
        goto out;

    ignore_sigpipe();
    pool_size = cfg->max_header_bytes + HTTP_POOL_MARGIN;
    if (pool_size < HTTP_POOL_MIN)
        pool_size = HTTP_POOL_MIN;
    flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_USE_TLS | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ipv6)
        flags |= MHD_USE_DUAL_STACK;
    /* The logger must be the first option, or MHD logs its own way until it
     * gets there. */
    srv->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_HTTPS_MEM_CERT, cert,
        MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_MEM_TRUST, ca, MHD_OPTION_HTTPS_PRIORITIES,
        HTTP_TLS_PRIORITIES, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool_size, MHD_OPTION_THREAD_STACK_SIZE,
        (size_t)HTTP_THREAD_STACK, MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_SIGPIPE_HANDLED_BY_APP,
        (unsigned int)1, MHD_OPTION_UNESCAPE_CALLBACK, unescape, srv, MHD_OPTION_END);
    if (srv->mhd == NULL) {
        log_errorx("cannot start the HTTPS server (bind failed?)");
        err = CD_ERR_IO;
        goto out;
    }
    di = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    if (di == NULL || di->port == 0) {
        MHD_stop_daemon(srv->mhd);
        err = CD_ERR_IO;
        goto out;
    }
    srv->port = di->port;
    *out = srv;
    srv = NULL;
    err = CD_OK;
out:
    wipe_free(cert, certlen + 1);
    wipe_free(key, keylen + 1);
    wipe_free(ca, calen + 1);
    if (srv != NULL)
        server_free(srv);
    return err;
}

unsigned http_server_port(const http_server *srv)
{
    return srv != NULL ? srv->port : 0;
}

void http_server_stop(http_server *srv)
{
    struct timespec deadline;
    MHD_socket lsock;
    unsigned left;

    if (srv == NULL)
        return;
    atomic_store(&srv->stopping, true);
    lsock = MHD_quiesce_daemon(srv->mhd);

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)srv->drain_timeout_s;
    pthread_mutex_lock(&srv->lock);
    while (srv->inflight_requests > 0) {
        if (pthread_cond_timedwait(&srv->idle, &srv->lock, &deadline) == ETIMEDOUT)
            break;
    }
    left = srv->inflight_requests;
    pthread_mutex_unlock(&srv->lock);
    if (left > 0)
        log_warnx("drain timeout: %u requests still in flight", left);

    MHD_stop_daemon(srv->mhd);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    server_free(srv);
}
