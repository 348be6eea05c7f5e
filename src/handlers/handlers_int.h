/* handlers_int.h: helpers shared by the handler files; private to src/handlers. */
#ifndef CONFIDOC_HANDLERS_INT_H
#define CONFIDOC_HANDLERS_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "handlers/handlers.h"
#include "router/router.h"

/* The 401 challenge (RFC 7617: a realm is required; charset says that the
 * credentials are UTF-8). */
#define HD_BASIC_CHALLENGE "Basic realm=\"confidoc\", charset=\"UTF-8\""

/* JSON bodies are flat objects: anything nested deeper, or holding more
 * values, is refused (422) before the parser allocates for it. */
#define HD_JSON_MAX_DEPTH 16
#define HD_JSON_MAX_VALUES 1024

/* Response builders. Each sets status, body and content type. */
void hd_json(struct http_response *resp, int status, json_t *obj); /* steals obj */
void hd_error(struct http_response *resp, int status, const char *detail);
/* 503 with Retry-After for a dependency that is down. */
void hd_unavailable(struct http_response *resp);
/* Maps a storage/auth error that the handler does not treat itself. */
void hd_fail(struct http_response *resp, cd_err err, const struct http_request *req,
             const char *what);
void hd_retry_after(struct http_response *resp, unsigned seconds);
/* Drops an answer already written (body wiped and freed, headers, on_done
 * called): back to the server's initial 500 with no body. */
void hd_response_reset(struct http_response *resp);

/* Authenticates the request's Basic credentials. On failure fills resp (401,
 * 429 or 503) and returns false. creds and p must be wiped by the caller. */
bool hd_authenticate(struct app *app, const struct http_request *req, struct http_response *resp,
                     struct auth_credentials *creds, struct auth_principal *p);

/* Gives up the calling request's active place, if it holds one: before long
 * waits of their own (Argon2id, a large transfer) that must not hold up the
 * short requests queued behind it. */
void hd_active_leave(struct app *app);

/* The address a request counts against (rate limit, large-transfer share):
 * the TCP peer, or the X-Real-IP that a trusted proxy set. */
void hd_client_address(const struct app *app, const struct http_request *req,
                       struct sockaddr_storage *addr, socklen_t *len);

/* Parses a JSON object body; on failure answers 422 and returns NULL. */
json_t *hd_parse_object(const struct http_request *req, struct http_response *resp);
/* A record id from JSON: a non-negative integer or a string of digits. */
bool hd_record_id_from_json(const json_t *v, int64_t *out);

void hd_users(struct app *app, const struct route_match *m, const struct http_request *req,
              struct http_response *resp);
void hd_documents(struct app *app, const struct route_match *m, const struct http_request *req,
                  struct http_response *resp);

#endif
