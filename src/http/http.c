/* http.c: the HTTPS server glue: libmicrohttpd (epoll event-loop workers, suspend/resume to
 * lanes of handler threads) over GnuTLS, mutual TLS. */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http/http_int.h"
#include "log/log.h"

/* TLS 1.2 and 1.3 only; AEAD ciphers only; ECDHE key exchange (forward secrecy). */
#define HTTP_TLS_PRIORITIES                                                                        \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"                                                  \
    "-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:"                                    \
    "-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"
/* Handler thread stack: handlers keep big data on the heap. Sanitizers need
 * far more stack for their redzones. */
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

static const char ERR_NUL[] = "{\"detail\":\"NUL byte in the path, query string or a header\"}";
static const char ERR_TOO_LARGE[] = "{\"detail\":\"Request body too large\"}";
static const char ERR_HEADERS[] = "{\"detail\":\"Request header fields too large\"}";
static const char ERR_BUSY[] = "{\"detail\":\"Server busy\"}";
static const char ERR_STOPPING[] = "{\"detail\":\"Server shutting down\"}";

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
        hc->verdict = http_verify_client(srv, conn, hc) == CD_OK ? 1 : -1;
    if (hc->verdict != 1)
        return MHD_NO; /* close without processing the request */
    decoded_nul = hc->decoded_nul;
    hc->decoded_nul = 0;

    rq = &hc->rq;
    if (rq->in_use) /* MHD serves one request at a time per connection */
        return MHD_NO;
    memset(rq, 0, offsetof(struct http_req, req));
    rq->srv = srv;
    rq->conn = hc;
    rq->mhd_conn = conn;
    rq->route = "-";
    clock_gettime(CLOCK_MONOTONIC, &rq->start);
    log_sanitize(rq->method, sizeof(rq->method), method, strlen(method));
    if (http_make_request_id(rq->request_id) != CD_OK)
        return MHD_NO;
    rq->in_use = 1;
    *req_cls = rq;
    atomic_fetch_add(&srv->inflight_requests, 1);

    if (atomic_load(&srv->stopping))
        return http_queue_error(conn, rq, 503, ERR_STOPPING, 1);
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (ci != NULL && ci->header_size > srv->max_header_bytes)
        return http_queue_error(conn, rq, 431, ERR_HEADERS, 0);
    if (decoded_nul || http_has_nul_value(conn))
        return http_queue_error(conn, rq, 422, ERR_NUL, 0);
    rq->limit = srv->max_body_bytes;
    if (srv->classify != NULL) {
        struct http_class cls = {srv->max_body_bytes, HTTP_LANE_NORMAL, 0};

        srv->classify(srv->ctx, method, url, &cls);
        if (cls.body_limit < rq->limit)
            rq->limit = cls.body_limit;
        rq->lane = cls.lane < HTTP_LANES ? cls.lane : HTTP_LANE_NORMAL;
        if (rq->lane == HTTP_LANE_WRITE && srv->no_write_lane)
            rq->lane = HTTP_LANE_NORMAL;
        rq->tag = cls.tag;
    }

    te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te != NULL && strcasestr(te, "chunked") != NULL) {
        rq->chunked = 1;
        return MHD_YES;
    }
    cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl == NULL)
        return MHD_YES;
    if (http_parse_length(cl, &len) != CD_OK || len > rq->limit)
        return http_queue_error(conn, rq, 413, ERR_TOO_LARGE, 0);
    if (len == 0)
        return MHD_YES;
    if (http_reserve_body(srv, len) != CD_OK)
        return http_queue_error(conn, rq, 503, ERR_BUSY, 1);
    rq->reserved = len;
    rq->body = malloc(len);
    if (rq->body == NULL)
        return http_queue_error(conn, rq, 503, ERR_BUSY, 1);
    rq->body_cap = len;
    return MHD_YES;
}

static enum MHD_Result answer(struct MHD_Connection *conn, struct http_req *rq);

/* The body is in: the request goes to a thread of its lane, the connection
 * is suspended until that thread resumes it (http_pool.c); or, with
 * inline_normal, a request of the normal lane runs here, on the worker. */
static enum MHD_Result hand_off(http_server *srv, struct MHD_Connection *conn, struct http_req *rq,
                                const char *url, const char *method)
{
    const union MHD_ConnectionInfo *ci;
    struct http_request *req = &rq->req;

    memset(req, 0, sizeof(*req));
    req->method = method;
    req->path = url;
    req->body = rq->body_len > 0 ? rq->body : NULL;
    req->body_len = rq->body_len;
    req->client_subject = rq->conn->subject;
    memcpy(req->request_id, rq->request_id, sizeof(req->request_id));
    req->impl = conn;
    req->lane = rq->lane;
    req->tag = rq->tag;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci != NULL && ci->client_addr != NULL) {
        socklen_t sl = 0;
        if (ci->client_addr->sa_family == AF_INET)
            sl = sizeof(struct sockaddr_in);
        else if (ci->client_addr->sa_family == AF_INET6)
            sl = sizeof(struct sockaddr_in6);
        memcpy(&req->peer, ci->client_addr, sl);
        req->peer_len = sl;
    }
    if (srv->inline_normal && rq->lane == HTTP_LANE_NORMAL) {
        if (!http_run_handler(srv, rq)) {
            atomic_store_explicit(&rq->phase, HTTP_PHASE_DONE, memory_order_relaxed);
            return answer(conn, rq);
        }
        /* it moved: to its lane, as any other */
    }
    atomic_store_explicit(&rq->phase, HTTP_PHASE_QUEUED, memory_order_relaxed);
    MHD_suspend_connection(conn);
    http_lane_submit(&srv->lanes[rq->lane], rq);
    return MHD_YES;
}

/* Back on the connection's worker after the handler ran: send its answer. */
static enum MHD_Result answer(struct MHD_Connection *conn, struct http_req *rq)
{
    struct http_response *resp = &rq->resp;
    enum MHD_Result ret;

    rq->bytes_in = rq->body_len;
    if (resp->route != NULL)
        rq->route = resp->route;
    http_release_body(rq); /* the request body is no longer needed */
    if (rq->abandoned)
        return http_queue_error(conn, rq, 503, ERR_STOPPING, 1);
    ret = http_queue_handler_response(conn, rq, resp);
    explicit_bzero(resp->header_store, sizeof(resp->header_store));
    explicit_bzero(resp->content_type_store, sizeof(resp->content_type_store)); /* a document's */
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
        return http_on_body(rq, upload_data, n);
    }
    if (rq->reject == 413)
        return http_queue_error(conn, rq, 413, ERR_TOO_LARGE, 0);
    if (rq->reject != 0)
        return http_queue_error(conn, rq, 503, ERR_BUSY, 1);
    switch (atomic_load_explicit(&rq->phase, memory_order_acquire)) {
    case HTTP_PHASE_READING:
        return hand_off(srv, conn, rq, url, method);
    case HTTP_PHASE_DONE:
        return answer(conn, rq);
    default: /* not reached: a queued request's connection is suspended */
        return MHD_YES;
    }
}

/* The request is over (answered, failed or cut): access log, free, count. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *srv = cls;
    struct http_req *rq = *req_cls;
    struct timespec now;
    int64_t ns;

    (void)toe;
    http_wipe_credentials(conn); /* also for a request refused before it had a context */
    if (rq == NULL)
        return;
    *req_cls = NULL;
    /* A handler's answer that never reached MHD: the client went away while
     * its connection was suspended (MHD notices only once it is resumed, and
     * closes it without calling the access handler again). What the answer
     * holds must come back all the same. */
    if (atomic_load_explicit(&rq->phase, memory_order_acquire) == HTTP_PHASE_DONE && !rq->responded)
        http_drop_answer(&rq->resp);
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
    ns = (int64_t)(now.tv_sec - rq->start.tv_sec) * 1000000000 +
         (int64_t)(now.tv_nsec - rq->start.tv_nsec);
    if (ns < 0)
        ns = 0;
    if (rq->bytes_in == 0)
        rq->bytes_in = rq->body_len;
    if (srv->observe != NULL)
        srv->observe(srv->ctx, rq->route, rq->method, rq->status, (uint64_t)ns);
    log_request(rq->request_id, rq->method, rq->route, rq->status, (double)ns / 1e6, rq->bytes_in,
                rq->bytes_out);
    http_release_body(rq);
    rq->in_use = 0;
    atomic_fetch_sub(&srv->inflight_requests, 1);
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
    for (unsigned i = 0; i < HTTP_LANES; i++)
        http_lane_stop(&srv->lanes[i]);
    free(srv);
}

/* The server object for cfg (already checked by http_server_start), without
 * its daemon. CD_ERR_CONFIG for an unusable allowed subject. */
static cd_err server_new(const struct http_server_config *cfg, http_handler_fn handler, void *ctx,
                         http_server **out)
{
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
    srv->classify = cfg->classify;
    srv->completed_hook = cfg->completed_hook;
    srv->observe = cfg->observe;
    srv->max_header_bytes = cfg->max_header_bytes;
    srv->max_inflight_body_bytes = cfg->max_inflight_body_bytes;
    srv->drain_timeout_s = cfg->drain_timeout_s;
    atomic_init(&srv->inflight_body, 0);
    atomic_init(&srv->stopping, false);
    atomic_init(&srv->inflight_requests, 0);
    srv->inline_normal = cfg->handler_threads == 0;
    srv->no_write_lane = cfg->write_threads == 0;
    if (http_lane_start(srv, &srv->lanes[HTTP_LANE_NORMAL],
                        cfg->handler_threads > 0 ? cfg->handler_threads : 1,
                        HTTP_THREAD_STACK) != CD_OK ||
        http_lane_start(srv, &srv->lanes[HTTP_LANE_SLOW], cfg->slow_threads, HTTP_THREAD_STACK) !=
            CD_OK ||
        http_lane_start(srv, &srv->lanes[HTTP_LANE_LARGE], cfg->large_threads, HTTP_THREAD_STACK) !=
            CD_OK ||
        http_lane_start(srv, &srv->lanes[HTTP_LANE_WRITE],
                        cfg->write_threads > 0 ? cfg->write_threads : 1,
                        HTTP_THREAD_STACK) != CD_OK) {
        server_free(srv);
        return CD_ERR_NOMEM;
    }
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
    unsigned workers;
    size_t pool_size;
    int ipv6 = 0;
    cd_err err;

    if (cfg == NULL || handler == NULL || out == NULL || cfg->tls_cert == NULL ||
        cfg->tls_key == NULL || cfg->client_ca == NULL ||
        cfg->n_allowed_subjects > HTTP_MAX_ALLOWED_SUBJECTS || cfg->max_connections == 0 ||
        cfg->max_header_bytes == 0 || cfg->max_header_bytes > (size_t)1024 * 1024 ||
        cfg->max_inflight_body_bytes < cfg->max_body_bytes || cfg->slow_threads == 0 ||
        cfg->large_threads == 0 || cfg->workers > HTTP_MAX_WORKERS)
        return CD_ERR_CONFIG;
    err = parse_bind(cfg->bind_addr, cfg->port, &ss, &ipv6);
    if (err != CD_OK) {
        log_errorx("bind address is not an IPv4 or IPv6 literal");
        return err;
    }

    err = server_new(cfg, handler, ctx, &srv);
    if (err != CD_OK)
        return err;

    if ((err = http_read_pem(cfg->tls_cert, &cert, &certlen)) != CD_OK ||
        (err = http_read_pem(cfg->tls_key, &key, &keylen)) != CD_OK ||
        (err = http_read_pem(cfg->client_ca, &ca, &calen)) != CD_OK)
        goto out;
    err = http_check_tls_material(cert, certlen, key, keylen, ca, calen);
    if (err != CD_OK)
        goto out;

    ignore_sigpipe();
    pool_size = cfg->max_header_bytes + HTTP_POOL_MARGIN;
    if (pool_size < HTTP_POOL_MIN)
        pool_size = HTTP_POOL_MIN;
    workers = cfg->workers;
    if (workers == 0) {
        /* One per core; two when they run the handlers themselves, so that one
         * waiting for the database leaves the core to the other (measured:
         * docs/performance.md, "The event core"). */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        long want = (cpus < 1 ? 1 : cpus) * (cfg->handler_threads == 0 ? 2 : 1);
        workers = want > HTTP_MAX_WORKERS ? HTTP_MAX_WORKERS : (unsigned)want;
    }
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
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
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool_size, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)(workers > 1 ? workers : 0), MHD_OPTION_NOTIFY_CONNECTION, http_on_connection,
        srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_SIGPIPE_HANDLED_BY_APP,
        (unsigned int)1, MHD_OPTION_UNESCAPE_CALLBACK, http_unescape, srv, MHD_OPTION_END);
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
    http_wipe_free(cert, certlen + 1);
    http_wipe_free(key, keylen + 1);
    http_wipe_free(ca, calen + 1);
    if (srv != NULL)
        server_free(srv);
    return err;
}

unsigned http_server_port(const http_server *srv)
{
    return srv != NULL ? srv->port : 0;
}

unsigned http_server_inflight(http_server *srv)
{
    return srv != NULL ? atomic_load_explicit(&srv->inflight_requests, memory_order_relaxed) : 0;
}

unsigned http_server_lane_queued(http_server *srv, unsigned lane)
{
    struct http_lane *ln;
    unsigned n;

    if (srv == NULL || lane >= HTTP_LANES || !srv->lanes[lane].initialised)
        return 0;
    ln = &srv->lanes[lane];
    pthread_mutex_lock(&ln->lock);
    n = ln->queued;
    pthread_mutex_unlock(&ln->lock);
    return n;
}

void http_server_stop(http_server *srv)
{
    struct timespec deadline;
    struct timespec now;
    MHD_socket lsock;
    unsigned left;

    if (srv == NULL)
        return;
    atomic_store(&srv->stopping, true);
    lsock = MHD_quiesce_daemon(srv->mhd);

    /* Polled, so that a request costs no lock: the drain is rare. */
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)srv->drain_timeout_s;
    for (;;) {
        left = atomic_load(&srv->inflight_requests);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (left == 0 || now.tv_sec > deadline.tv_sec ||
            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
            break;
        nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 10L * 1000 * 1000}, NULL);
    }
    if (left > 0)
        log_warnx("drain timeout: %u requests still in flight", left);

    /* Every suspended connection must be resumed before MHD stops: what is
     * still queued is answered 503 unrun; handlers running finish (bounded by
     * their own timeouts). */
    for (unsigned i = 0; i < HTTP_LANES; i++) {
        /* Lanes a request may move out of stop before those it moves to. */
        static const unsigned order[HTTP_LANES] = {HTTP_LANE_NORMAL, HTTP_LANE_WRITE,
                                                   HTTP_LANE_SLOW, HTTP_LANE_LARGE};
        http_lane_abandon(&srv->lanes[order[i]]);
        http_lane_stop(&srv->lanes[order[i]]);
    }
    MHD_stop_daemon(srv->mhd);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    server_free(srv);
}
