/* worker.c: the CAS's network worker (casd.h): TLS and HTTP with no access to
 * the state; every request becomes one IPC message to the parent. One
 * connection at a time, each bounded to CASD_CONN_SECONDS in all. */
#include "casd/casd.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "casd/ipc.h"
#include "casd/rest.h"
#include "casd/sandbox.h"
#include "casd/tls.h"
#include "log/log.h"
#include "metrics/metrics.h"

#define EXIT_BAD_PARENT 3 /* a malformed or missing reply */

struct worker {
    int listen_fd, ipc_fd, metrics_fd;
    struct casd_tls_server *tls;
    char *ipc_space; /* CASD_IPC_MAX + 1 */
    char *req;       /* CASD_REST_REQUEST_MAX + 1 */
    unsigned long served;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_timeout(int fd, double seconds)
{
    if (seconds < 0.001)
        seconds = 0.001;
    struct timeval tv = {.tv_sec = (time_t)seconds,
                         .tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void respond_typed(struct casd_tls_conn *c, int status, const char *ctype, const char *body,
                          size_t len)
{
    struct buf out;
    buf_init(&out, CASD_IPC_BODY_MAX + 1024);
    if (casd_rest_response_typed(&out, status, ctype, body, len) == CD_OK)
        (void)casd_tls_write_all(c, out.p, out.len);
    buf_release(&out);
}

static void respond(struct casd_tls_conn *c, int status, const char *body, size_t len)
{
    respond_typed(c, status, "application/json", body, len);
}

static void respond_detail(struct casd_tls_conn *c, int status, const char *detail)
{
    struct buf b;
    buf_init(&b, 1024);
    if (casd_rest_detail(&b, detail) == CD_OK)
        respond(c, status, b.p, b.len);
    buf_release(&b);
}

static const char *route_name(enum casd_route r)
{
    switch (r) {
    case CASD_ROUTE_VALUE:
        return "/v1/values/session=:s,secret=:n";
    case CASD_ROUTE_SESSION_GET:
        return "/v1/sessions/:name";
    case CASD_ROUTE_SESSION_PUT:
        return "/v1/sessions";
    case CASD_ROUTE_NODE_HELLO:
        return "/v1/node/hello";
    case CASD_ROUTE_NODE_MEASURE:
        return "/v1/node/measure";
    case CASD_ROUTE_METRICS:
        return "/metrics";
    default:
        return "-";
    }
}

/* Builds the IPC request of req (the upload parsed into *put). 0, or the
 * status to refuse with. */
static int to_ipc(const struct casd_rest_req *req, struct casd_put_body *put, const char *client,
                  struct casd_ipc_msg *m, const char **detail)
{
    memset(m, 0, sizeof(*m));
    switch (req->route) {
    case CASD_ROUTE_METRICS:
        m->type = CASD_IPC_METRICS_GET;
        m->b = (struct casd_ipc_field){client, strlen(client)};
        return 0;
    case CASD_ROUTE_VALUE:
        m->type = CASD_IPC_VALUE_GET;
        m->a = (struct casd_ipc_field){req->session, strlen(req->session)};
        m->b = (struct casd_ipc_field){req->secret, strlen(req->secret)};
        return 0;
    case CASD_ROUTE_SESSION_GET:
        m->type = CASD_IPC_SESSION_GET;
        m->a = (struct casd_ipc_field){req->session, strlen(req->session)};
        m->b = (struct casd_ipc_field){client, strlen(client)};
        return 0;
    case CASD_ROUTE_NODE_HELLO:
    case CASD_ROUTE_NODE_MEASURE:
        /* Passed on as it came: the parent verifies the node's signature itself. */
        m->type = req->route == CASD_ROUTE_NODE_HELLO ? CASD_IPC_NODE_HELLO : CASD_IPC_NODE_MEASURE;
        m->a = (struct casd_ipc_field){req->body, req->body_len};
        m->b = (struct casd_ipc_field){client, strlen(client)};
        return 0;
    case CASD_ROUTE_SESSION_PUT: {
        cd_err err = casd_put_body_parse(req->body, req->body_len, put);
        if (err != CD_OK) {
            *detail = err == CD_ERR_TOO_LARGE ? "session upload over its bounds"
                                              : "malformed session upload";
            return err == CD_ERR_TOO_LARGE ? 413 : 400;
        }
        m->type = CASD_IPC_SESSION_PUT;
        m->a = (struct casd_ipc_field){put->session, put->session_len};
        m->b = (struct casd_ipc_field){client, strlen(client)};
        for (size_t i = 0; i < put->nsigs; i++) {
            m->sigs[i].public_key =
                (struct casd_ipc_field){put->sigs[i].public_key, put->sigs[i].public_key_len};
            m->sigs[i].signature = (struct casd_ipc_field){(const char *)put->sigs[i].signature,
                                                           put->sigs[i].signature_len};
        }
        m->nsigs = put->nsigs;
        return 0;
    }
    default:
        *detail = "not found";
        return 404;
    }
}

/* Asks the parent; false when its reply is missing or malformed (the worker
 * then ends: it cannot trust the channel any more). */
static bool ask_parent(struct worker *w, const struct casd_ipc_msg *req, struct casd_ipc_msg *rep)
{
    if (casd_ipc_send(w->ipc_fd, req) != CD_OK)
        return false;
    cd_err err =
        casd_ipc_recv(w->ipc_fd, CASD_REPLY_SECONDS * 1000, w->ipc_space, CASD_IPC_MAX + 1, rep);
    if (err != CD_OK || rep->type != CASD_IPC_REPLY) {
        log_errorx("bad reply from the parent (%s): the worker ends",
                   err != CD_OK ? cd_strerror(err) : "not a reply");
        return false;
    }
    return true;
}

/* One connection (from the metrics listener: metrics). False: the worker must end. */
static bool serve_conn(struct worker *w, int fd, bool metrics)
{
    const double deadline = now_s() + CASD_CONN_SECONDS;
    struct casd_tls_conn *c = NULL;
    struct casd_rest_req req;
    struct casd_put_body put = {0};
    struct casd_ipc_msg m, rep;
    char client[PKI_FP_HEX] = "";
    size_t len = 0, used = 0;
    const char *detail = NULL;
    int status = 0;
    bool alive = true;
    double t0 = now_s();

    set_timeout(fd, CASD_TLS_HANDSHAKE_SECONDS);
    if (casd_tls_accept(w->tls, fd, &c) != CD_OK)
        return true; /* the fd is closed */
    enum casd_rest_result res = CASD_REST_MORE;
    while (res == CASD_REST_MORE) {
        size_t got = 0;
        double left = deadline - now_s();
        if (left <= 0 || len >= CASD_REST_REQUEST_MAX) {
            res = CASD_REST_ERROR, status = 408, detail = "request timeout";
            break;
        }
        set_timeout(fd, left);
        cd_err err = casd_tls_read(c, w->req + len, CASD_REST_REQUEST_MAX - len, &got);
        if (err == CD_ERR_TIMEOUT) {
            res = CASD_REST_ERROR, status = 408, detail = "request timeout";
            break;
        }
        if (err != CD_OK)
            goto out;
        len += got;
        res = casd_rest_parse(w->req, len, &req, &used, &status, &detail);
    }
    if (res == CASD_REST_ERROR) {
        respond_detail(c, status, detail);
        log_request("-", "-", "-", status, (now_s() - t0) * 1000, len, 0);
        goto out;
    }
    if (!casd_tls_peer_key_hash(c, client))
        client[0] = '\0';
    /* Each listener has its own routes: /metrics there, everything else here. */
    if (metrics != (req.route == CASD_ROUTE_METRICS)) {
        status = 404;
        respond_detail(c, 404, "not found");
    } else if ((status = to_ipc(&req, &put, client, &m, &detail)) != 0) {
        respond_detail(c, status, detail);
    } else if (!ask_parent(w, &m, &rep)) {
        alive = false;
        status = 503;
        respond_detail(c, 503, "unavailable");
    } else {
        status = (int)rep.status;
        set_timeout(fd, deadline - now_s());
        respond_typed(c, status,
                      metrics && status == 200 ? METRICS_CONTENT_TYPE : "application/json", rep.a.p,
                      rep.a.len);
    }
    log_request("-",
                req.route == CASD_ROUTE_VALUE || req.route == CASD_ROUTE_SESSION_GET ||
                        req.route == CASD_ROUTE_METRICS
                    ? "GET"
                    : "POST",
                route_name(req.route), status, (now_s() - t0) * 1000, len, 0);
out:
    casd_put_body_release(&put);
    explicit_bzero(w->req, len);
    casd_tls_close(c);
    return alive;
}

/* The parent's first message: the TLS chain and key. */
static cd_err receive_identity(struct worker *w)
{
    struct casd_ipc_msg m;
    cd_err err = casd_ipc_recv(w->ipc_fd, 30 * 1000, w->ipc_space, CASD_IPC_MAX + 1, &m);

    if (err == CD_OK && m.type != CASD_IPC_TLS_CONFIG)
        err = CD_ERR_INVALID;
    if (err == CD_OK)
        err = casd_tls_server_new(m.a.p, m.a.len, m.b.p, m.b.len, &w->tls);
    explicit_bzero(w->ipc_space, CASD_IPC_MAX + 1);
    return err;
}

/* The next connection, from either listener (*metrics: from the metrics
 * one); -1 with errno on failure. */
static int next_conn(const struct worker *w, bool *metrics)
{
    struct pollfd fds[2] = {{.fd = w->listen_fd, .events = POLLIN},
                            {.fd = w->metrics_fd, .events = POLLIN}};

    *metrics = false;
    if (w->metrics_fd < 0)
        return accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (poll(fds, 2, -1) < 0)
        return -1;
    *metrics = fds[0].revents == 0 && fds[1].revents != 0;
    return accept4(*metrics ? w->metrics_fd : w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
}

int casd_worker_main(int listen_fd, int ipc_fd, int metrics_fd, const char *user)
{
    struct worker w = {.listen_fd = listen_fd, .ipc_fd = ipc_fd, .metrics_fd = metrics_fd};
    int status = 1;
    cd_err err;

    /* A client that goes away mid-write is an error of that connection only. */
    signal(SIGPIPE, SIG_IGN);
    w.ipc_space = malloc(CASD_IPC_MAX + 1);
    w.req = malloc(CASD_REST_REQUEST_MAX + 1);
    if (w.ipc_space == NULL || w.req == NULL)
        goto out;
    if ((err = receive_identity(&w)) != CD_OK) {
        log_errorx("worker: no TLS identity from the parent: %s", cd_strerror(err));
        goto out;
    }
    if ((err = casd_worker_drop(user != NULL ? user : "nobody")) != CD_OK) {
        log_errorx("worker: cannot drop to user %s: %s", user != NULL ? user : "nobody",
                   cd_strerror(err));
        goto out;
    }
    unsigned uid = (unsigned)getuid();
    if ((err = casd_worker_sandbox(CASD_SANDBOX_ALL)) != CD_OK) {
        log_errorx("worker: cannot sandbox itself: %s", cd_strerror(err));
        goto out;
    }
    log_info("worker ready (uid %u, sandboxed)", uid);
    for (;;) {
        bool metrics;
        int fd = next_conn(&w, &metrics);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN || errno == EMFILE ||
                errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                continue;
            log_error("worker: accept");
            break;
        }
        if (!serve_conn(&w, fd, metrics)) {
            status = EXIT_BAD_PARENT;
            break;
        }
        w.served++;
    }
out:
    casd_tls_server_free(w.tls);
    free(w.ipc_space);
    if (w.req != NULL)
        explicit_bzero(w.req, CASD_REST_REQUEST_MAX + 1);
    free(w.req);
    return status;
}
