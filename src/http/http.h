/* http.h: the HTTPS server glue (libmicrohttpd with GnuTLS).
 *
 * Owns everything about connections: TLS 1.2/1.3 only, a client certificate
 * that chains to the configured CA on every connection (no request is passed
 * on without one; optionally its subject must be in an allow list), bounded
 * header and body sizes (a body limit per request, 413 before a too-large
 * body is read, 431 for oversized headers), 422 for a NUL byte in the path, a
 * query argument or a header, the Authorization value and body bytes wiped in
 * libmicrohttpd's memory, connection and idle timeouts, a connection limit, a
 * budget of body bytes buffered at once across all requests, graceful drain.
 * Connections are owned by a few event-loop workers (epoll); each complete
 * request, with its body buffered, runs the one handler function (it may
 * block) on its worker or on a thread of its lane; the handler fills a
 * response that the connection's worker then sends. Only this module includes
 * microhttpd.h and gnutls. */
#ifndef CONFIDOC_HTTP_H
#define CONFIDOC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/err.h"

#define HTTP_MAX_ALLOWED_SUBJECTS 16
#define HTTP_MAX_WORKERS 64
#define HTTP_SUBJECT_MAX 512
#define HTTP_REQUEST_ID_LEN 16
#define HTTP_MAX_RESPONSE_HEADERS 4
/* Room for one header added with http_response_header: "name\0value\0". */
#define HTTP_RESPONSE_HEADER_STORE 320
/* Longest content type http_response_content_type copies. */
#define HTTP_CONTENT_TYPE_MAX 255

struct http_request;

/* Lanes of handler threads: a route that always runs an Argon2id goes to the
 * slow lane, so that it never holds up the others; a handler that finds it
 * must wait for a scarce resource (a large-document place) moves its request
 * to the large lane (http_request_move) rather than wait on the normal one. */
#define HTTP_LANE_NORMAL 0u
#define HTTP_LANE_SLOW 1u
#define HTTP_LANE_LARGE 2u
/* Writes that wait for a durable commit: many threads, so that many commits
 * share one log flush (group commit). */
#define HTTP_LANE_WRITE 3u
#define HTTP_LANES 4u

/* What http_server_config.classify decides about one request. */
struct http_class {
    size_t body_limit; /* larger bodies: 413 (at most max_body_bytes applies) */
    unsigned lane;     /* HTTP_LANE_* */
    unsigned tag;      /* the handler's own, handed back in http_request.tag */
};

struct http_server_config {
    const char *bind_addr; /* IPv4 or IPv6 literal, e.g. "127.0.0.1" or "::" */
    unsigned port;         /* 0: pick a free port (see http_server_port) */
    const char *tls_cert;  /* server certificate chain, PEM file */
    const char *tls_key;   /* its private key, PEM file */
    const char *client_ca; /* CA file that client certificates must chain to */
    /* If n_allowed_subjects > 0, a client certificate's subject DN (RFC 4514
     * string as GnuTLS prints it, e.g. "CN=proxy") must equal one of these. */
    const char *allowed_subjects[HTTP_MAX_ALLOWED_SUBJECTS];
    size_t n_allowed_subjects;
    size_t max_body_bytes; /* larger bodies: 413 */
    /* Optional: what the handler layer decides about a request from its method
     * and path (ctx: the handler's ctx), asked once, when its headers are in
     * and before any body byte is read. cls comes filled with max_body_bytes,
     * HTTP_LANE_NORMAL and tag 0; a smaller body_limit applies, the lane is
     * where the handler runs, the tag reaches the handler in
     * http_request.tag (so that it need not route the request again).
     * NULL: max_body_bytes and the normal lane for all. */
    void (*classify)(void *ctx, const char *method, const char *path, struct http_class *cls);
    /* Event-loop threads; 0: one per online core, two with handler_threads 0. */
    unsigned workers;
    unsigned handler_threads;       /* threads of the normal lane; 0: it runs on the workers */
    unsigned slow_threads;          /* threads of the slow lane (>= 1) */
    unsigned large_threads;         /* threads of the large lane (>= 1) */
    unsigned write_threads;         /* threads of the write lane; 0: writes take the normal lane */
    size_t max_header_bytes;        /* request line + headers; larger: 431 */
    size_t max_inflight_body_bytes; /* all buffered bodies together; over it: 503 */
    unsigned max_connections;
    unsigned connection_timeout_s; /* idle/slow client timeout */
    unsigned drain_timeout_s;      /* http_server_stop waits this long for requests */
    /* For tests only (NULL in confidoc-api): called (ctx: the handler's ctx)
     * at the end of a request's completion, after the server wiped what it
     * wipes and while libmicrohttpd's connection memory still holds the
     * request: http_request_header works on req; req->body and body_len are
     * the region of that memory the last body bytes were read from. */
    void (*completed_hook)(void *ctx, const struct http_request *req);
    /* Optional: called (ctx: the handler's ctx) on the connection's worker
     * when any request with a context completes (answered, refused or cut):
     * its route pattern (the response's route, "-" when none), method,
     * status sent (0: none) and duration in ns from its first call. Must be
     * cheap and never block (confidoc-api: metrics). */
    void (*observe)(void *ctx, const char *route, const char *method, int status,
                    uint64_t duration_ns);
};

struct http_header {
    const char *name;
    const char *value;
};

/* A complete request. Everything is owned by the server and valid only for the
 * duration of the handler call. */
struct http_request {
    const char *method;  /* "GET", "POST", ... */
    const char *path;    /* percent-decoded path, without the query */
    const uint8_t *body; /* buffered body (may be NULL when body_len is 0) */
    size_t body_len;
    struct sockaddr_storage peer; /* TCP peer address */
    socklen_t peer_len;
    const char *client_subject; /* verified client certificate subject DN */
    char request_id[HTTP_REQUEST_ID_LEN + 1];
    unsigned lane; /* HTTP_LANE_* the handler runs on */
    bool moved;    /* this is the second run, after http_request_move */
    unsigned tag;  /* what classify put in http_class.tag; 0 without classify */
    void *impl;    /* private to the server */
};

/* Looks up a request header (case-insensitive name); NULL if absent. */
const char *http_request_header(const struct http_request *req, const char *name);
/* Looks up a query-string argument (decoded); NULL if absent. */
const char *http_request_query(const struct http_request *req, const char *name);

/* What a handler answers. The server initialises it to 500 with no body. */
struct http_response {
    int status;
    /* A static string, or the copy http_response_content_type made. */
    const char *content_type;
    uint8_t *body; /* malloc'ed; the server takes ownership, wipes and frees it */
    size_t body_len;
    struct http_header
        headers[HTTP_MAX_RESPONSE_HEADERS]; /* static strings or copied by the server */
    size_t n_headers;
    const char *route; /* route pattern for the access log, e.g. "/documents/{record_id}" */
    /* Optional: called exactly once when the server is done with the body (sent
     * and freed, or dropped), from whichever thread that happens on; also when
     * there is no body. Lets a handler hold a resource for as long as its
     * answer lives (e.g. a large-transfer slot). */
    void (*on_done)(void *cls);
    void *on_done_cls;
    /* Set by http_request_move: the lane to run the request on again. */
    unsigned move_to;
    /* Private to http_response_header: the copies its headers point into. */
    char header_store[HTTP_MAX_RESPONSE_HEADERS][HTTP_RESPONSE_HEADER_STORE];
    /* Private to http_response_content_type: its copy. */
    char content_type_store[HTTP_CONTENT_TYPE_MAX + 1];
};

/* Sets the content type from a string that need not outlive the handler call:
 * it is copied into resp. CD_ERR_TOO_LARGE over HTTP_CONTENT_TYPE_MAX bytes,
 * CD_ERR_INVALID when empty or holding a control character. */
cd_err http_response_content_type(struct http_response *resp, const char *ctype);

/* Adds a header; name and value are copied into resp. Returns CD_ERR_TOO_LARGE
 * when full or when name and value do not fit HTTP_RESPONSE_HEADER_STORE,
 * CD_ERR_INVALID when either contains a control character or the name is empty. */
cd_err http_response_header(struct http_response *resp, const char *name, const char *value);

/* Asks for the request to be run again, from the start, by the handler on a
 * thread of another lane, once the handler returns; whatever it answers is
 * then thrown away (wiped, its on_done called). A request moves at most once:
 * false (nothing asked) when it already moved or lane is its own. Lets a
 * handler leave a lane whose threads must not wait for what it is about to
 * wait for; it must not have changed anything yet. */
bool http_request_move(const struct http_request *req, struct http_response *resp, unsigned lane);

typedef void (*http_handler_fn)(void *ctx, const struct http_request *req,
                                struct http_response *resp);

typedef struct http_server http_server;

/* Starts serving on its own threads (workers and lanes). Errors: CD_ERR_CONFIG
 * (unreadable certificate or key), CD_ERR_IO (cannot bind). */
cd_err http_server_start(const struct http_server_config *cfg, http_handler_fn handler, void *ctx,
                         http_server **out);
/* The port actually bound. */
unsigned http_server_port(const http_server *srv);
/* Requests begun and not completed now (for monitoring). */
unsigned http_server_inflight(http_server *srv);
/* Requests queued on lane (HTTP_LANE_*) and not yet taken by a thread now (for
 * monitoring; takes the lane's lock). 0 for NULL or an unknown lane. */
unsigned http_server_lane_queued(http_server *srv, unsigned lane);
/* Stops accepting, lets requests in flight finish (up to drain_timeout_s),
 * then stops. NULL is a no-op. */
void http_server_stop(http_server *srv);

#endif
