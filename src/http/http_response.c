/* http_response.c: the http module's answers: the server's own errors, handler responses, headers.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "http/http_int.h"
#include "log/log.h"

static const char ERR_INTERNAL[] = "{\"detail\":\"Internal server error\"}";

struct owned_body {
    uint8_t *p;
    size_t n;
    void (*on_done)(void *cls);
    void *on_done_cls;
};

static void free_owned_body(void *cls)
{
    struct owned_body *ob = cls;
    http_wipe_free(ob->p, ob->n);
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
enum MHD_Result http_queue_error(struct MHD_Connection *conn, struct http_req *rq, int status,
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
enum MHD_Result http_queue_handler_response(struct MHD_Connection *conn, struct http_req *rq,
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
        http_wipe_free(resp->body, resp->body_len);
        resp->body = NULL;
    }
    response_done(resp);
    return http_queue_error(conn, rq, 500, ERR_INTERNAL, 0);
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
