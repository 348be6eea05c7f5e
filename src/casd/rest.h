/* rest.h: the CAS's REST API as the network worker sees it: HTTP/1.1 request
 * parsing and routing, the JSON of a session upload, and responses. Pure (no
 * I/O) and fuzzed (fuzz/fuzz_rest.c); every input bounded.
 *
 * Routes (docs/internals/cas-service.md, REST API):
 *   GET  /v1/values/session=S,secret=N   CASD_ROUTE_VALUE
 *   GET  /v1/sessions/NAME               CASD_ROUTE_SESSION_GET
 *   POST /v1/sessions                    CASD_ROUTE_SESSION_PUT (JSON body)
 *   POST /v1/node/hello                  CASD_ROUTE_NODE_HELLO (JSON body, node agents)
 *   POST /v1/node/measure                CASD_ROUTE_NODE_MEASURE (JSON body, node agents)
 *   GET  /metrics                        CASD_ROUTE_METRICS (the metrics listener only)
 * anything else is 404 (unknown path) or 405 (known path, other method). */
#ifndef CONFIDOC_CASD_REST_H
#define CONFIDOC_CASD_REST_H

#include <stddef.h>

#include "casd/ipc.h"
#include "common/buf.h"
#include "common/err.h"

#define CASD_REST_LINE_MAX 8192     /* the request line, CRLF included */
#define CASD_REST_HEADERS_MAX 16384 /* the header lines after it */
#define CASD_REST_MAX_HEADERS 64
#define CASD_REST_BODY_MAX ((size_t)256 * 1024)
#define CASD_REST_REQUEST_MAX (CASD_REST_LINE_MAX + CASD_REST_HEADERS_MAX + CASD_REST_BODY_MAX)

enum casd_route {
    CASD_ROUTE_NONE,
    CASD_ROUTE_VALUE,
    CASD_ROUTE_SESSION_GET,
    CASD_ROUTE_SESSION_PUT,
    CASD_ROUTE_NODE_HELLO,
    CASD_ROUTE_NODE_MEASURE,
    CASD_ROUTE_METRICS, /* GET /metrics: only on the metrics listener (the worker decides) */
};

struct casd_rest_req {
    enum casd_route route;
    char session[CASD_IPC_NAME_MAX + 1]; /* VALUE: S; SESSION_GET: NAME */
    char secret[CASD_IPC_NAME_MAX + 1];  /* VALUE: N */
    const char *body;                    /* SESSION_PUT, NODE_*: borrowed from the buffer */
    size_t body_len;
};

enum casd_rest_result {
    CASD_REST_MORE,  /* a complete request needs more bytes (none is over its bound yet) */
    CASD_REST_DONE,  /* *req is filled; *used bytes were the request */
    CASD_REST_ERROR, /* refuse: *status (4xx) and *detail (static text) */
};

/* Parses the request at buf[0..len) (the bytes received so far). */
enum casd_rest_result casd_rest_parse(const char *buf, size_t len, struct casd_rest_req *req,
                                      size_t *used, int *status, const char **detail);

/* A session upload: {"session": "<text>", "signatures": [{"public_key": "<PEM>",
 * "signature": "<base64 DER>"}, ...]} and nothing else (no other key, no key
 * twice; "signatures" optional). */
struct casd_put_sig {
    char public_key[CASD_IPC_PUBKEY_MAX + 1];
    size_t public_key_len;
    unsigned char signature[CASD_IPC_SIG_MAX];
    size_t signature_len;
};
struct casd_put_body {
    char *session; /* malloc'ed, NUL-terminated (NUL bytes refused) */
    size_t session_len;
    struct casd_put_sig sigs[CASD_IPC_MAX_SIGS];
    size_t nsigs;
};

/* Parses body[0..len) into *out (casd_put_body_release). CD_ERR_INVALID on
 * malformed JSON or another shape, CD_ERR_TOO_LARGE when a string is over its
 * bound (the text CASD_IPC_TEXT_MAX), CD_ERR_NOMEM. */
cd_err casd_put_body_parse(const char *body, size_t len, struct casd_put_body *out);
void casd_put_body_release(struct casd_put_body *b);

/* Appends s[0..n) as a JSON string (quoted, escaped; bytes >= 0x80 as they are). */
cd_err casd_json_add_string(struct buf *b, const char *s, size_t n);

/* In a JSON object whose values are all strings (the CAS's responses), the
 * decoded value of key into out (a fresh buffer: buf_init(out, max) first).
 * CD_ERR_NOT_FOUND when absent, CD_ERR_INVALID on another shape. */
cd_err casd_json_get_string(const char *json, size_t len, const char *key, struct buf *out);

/* Appends an HTTP/1.1 response (Content-Type application/json, Content-Length,
 * Connection: close, Cache-Control: no-store) with body[0..len). */
cd_err casd_rest_response(struct buf *out, int status, const char *body, size_t len);
/* The same with another Content-Type (a static string without CR or LF). */
cd_err casd_rest_response_typed(struct buf *out, int status, const char *ctype, const char *body,
                                size_t len);

/* Appends {"detail": "<text>"} to out. */
cd_err casd_rest_detail(struct buf *out, const char *text);

#endif
