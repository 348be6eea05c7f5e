/* http_int.h: what the files of the http module share (private; not for other modules). */
#ifndef CONFIDOC_HTTP_INT_H
#define CONFIDOC_HTTP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <microhttpd.h>

#include "common/err.h"
#include "http/http.h"

/* First buffer for a chunked body; it doubles up to max_body_bytes. */
#define HTTP_CHUNKED_START ((size_t)16 * 1024)
/* After a chunked body went over the limit, at most this much more is read
 * and thrown away (so the 413 can be sent) before the connection is cut. */
#define HTTP_DISCARD_MIN ((size_t)64 * 1024)

struct http_req;

struct http_lane {
    http_server *srv;
    pthread_mutex_t lock; /* protects head, tail, queued, busy, closing */
    pthread_cond_t cv;
    struct http_req *head;
    struct http_req *tail;
    unsigned queued;
    unsigned busy;
    bool closing;
    bool initialised;
    atomic_bool abandon; /* drain timed out: answer 503 without running handlers */
    pthread_t *threads;
    unsigned n_threads;
};

struct http_server {
    struct MHD_Daemon *mhd;
    http_handler_fn handler;
    void *ctx;
    unsigned port;
    size_t max_body_bytes;
    void (*classify)(void *ctx, const char *method, const char *path, struct http_class *cls);
    void (*completed_hook)(void *ctx, const struct http_request *req);
    void (*observe)(void *ctx, const char *route, const char *method, int status,
                    uint64_t duration_ns);
    size_t max_header_bytes;
    size_t max_inflight_body_bytes;
    unsigned drain_timeout_s;
    char subjects[HTTP_MAX_ALLOWED_SUBJECTS][HTTP_SUBJECT_MAX];
    size_t n_subjects;

    atomic_size_t inflight_body; /* bytes reserved by all buffered bodies */
    atomic_bool stopping;
    atomic_uint inflight_requests; /* begun and not completed */
    struct http_lane lanes[HTTP_LANES];
    bool inline_normal; /* handler_threads 0: the normal lane runs on the workers */
    bool no_write_lane; /* write_threads 0: writes go to the normal lane */
};

enum http_phase {
    HTTP_PHASE_READING = 0, /* headers in, body being read */
    HTTP_PHASE_QUEUED,      /* suspended, on a lane or in its handler */
    HTTP_PHASE_DONE,        /* handler done, connection resumed: answer to queue */
};

struct http_conn;

/* Per request (MHD request context). It lives in its connection's http_conn
 * and is reused by the next request of a kept-alive connection: no allocation
 * per request. */
struct http_req {
    http_server *srv;
    struct http_conn *conn;
    struct MHD_Connection *mhd_conn;
    struct http_req *next; /* on a lane's queue */
    _Atomic int phase;     /* enum http_phase */
    unsigned lane;
    unsigned tag;  /* from classify */
    int in_use;    /* between the first call and on_completed */
    int abandoned; /* not run: the drain timed out */
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
    /* What the handler gets and gives (filled on the event loop, used on a
     * handler thread while the connection is suspended). */
    struct http_request req;
    struct http_response resp;
};

/* Per connection (MHD socket context): the client certificate verdict and the
 * request being served. */
struct http_conn {
    int verdict; /* 0: not checked yet, 1: accepted, -1: refused */
    /* The request being parsed decoded a %00 in its path or query string
     * (set by http_unescape, read and cleared on the request's first call). */
    int decoded_nul;
    char subject[HTTP_SUBJECT_MAX];
    struct http_req rq;
};

/* http_request.c: wiping, request ids, body accounting, request values. */
void http_wipe_free(void *p, size_t n);
void http_wipe_in_place(const void *p, size_t n);
cd_err http_make_request_id(char out[HTTP_REQUEST_ID_LEN + 1]);
cd_err http_reserve_body(http_server *srv, size_t n);
void http_release_body(struct http_req *rq);
bool http_has_nul_value(struct MHD_Connection *conn);
size_t http_unescape(void *cls, struct MHD_Connection *conn, char *s);
void http_wipe_credentials(struct MHD_Connection *conn);
cd_err http_parse_length(const char *s, size_t *out);
enum MHD_Result http_on_body(struct http_req *rq, const char *data, size_t n);

/* http_pool.c: the handler threads of one lane. */
cd_err http_lane_start(http_server *srv, struct http_lane *ln, unsigned threads, size_t stack);
/* Throws away a handler's answer that will not be sent: wipes and frees its
 * body, calls its on_done (so that what it holds, e.g. a large place, comes
 * back). */
void http_drop_answer(struct http_response *resp);
/* Runs the handler of rq into rq->resp; true when it asked to move (its answer
 * dropped, rq->lane the lane to queue it on). */
bool http_run_handler(http_server *srv, struct http_req *rq);
/* Queues rq (its connection suspended); a lane thread runs the handler and
 * resumes the connection. */
void http_lane_submit(struct http_lane *ln, struct http_req *rq);
/* From now on queued requests are answered 503 without running a handler. */
void http_lane_abandon(struct http_lane *ln);
/* Runs what is queued, joins the threads. No submit may follow. */
void http_lane_stop(struct http_lane *ln);

/* http_tls.c: TLS material and client certificates. */
cd_err http_read_pem(const char *path, char **out, size_t *outlen);
cd_err http_check_tls_material(const char *cert, size_t certlen, const char *key, size_t keylen,
                               const char *ca, size_t calen);
cd_err http_verify_client(http_server *srv, struct MHD_Connection *conn, struct http_conn *hc);
void http_on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                        enum MHD_ConnectionNotificationCode code);

/* http_response.c: answers. */
enum MHD_Result http_queue_error(struct MHD_Connection *conn, struct http_req *rq, int status,
                                 const char *json, int retry_after);
enum MHD_Result http_queue_handler_response(struct MHD_Connection *conn, struct http_req *rq,
                                            struct http_response *resp);

#endif
