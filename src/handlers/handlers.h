/* handlers.h: the REST API: routes requests to the user and document handlers. */
#ifndef CONFIDOC_HANDLERS_H
#define CONFIDOC_HANDLERS_H

#include <stddef.h>

#include "auth/auth.h"
#include "common/err.h"
#include "common/gate.h"
#include "crypto/crypto.h"
#include "http/http.h"
#include "ratelimit/ratelimit.h"
#include "storage/db.h"

#define HANDLERS_MAX_PROXIES 16

/* Everything a request needs; built by main, read-only while serving. */
struct app {
    const crypto_keyring *kr;
    db_pool *db;
    auth *auth;
    ratelimit *rl;          /* NULL: no rate limiting */
    unsigned rate_limit;    /* requests per window, for the 429 message */
    unsigned list_page_max; /* largest page of GET /documents */
    unsigned session_ttl;   /* seconds: the session cookie's Max-Age */
    /* Large documents handled at once (NULL: no limit). */
    gate *large;
    /* Requests doing their database and crypto work at once (NULL: no limit). */
    gate *active;
    /* Client certificate subjects of the trusted proxy: only their X-Real-IP counts. */
    const char *trusted_proxies[HANDLERS_MAX_PROXIES];
    size_t n_trusted_proxies;
};

/* Process-wide set-up: makes jansson wipe every buffer it frees (JSON bodies
 * carry document text and passwords). Call once before serving. */
void handlers_init(void);

/* Body limit of every route that is not a document's content: the largest
 * well-formed body of recover or password change (username, recovery code and
 * a 1024-byte password written with \u escapes, 6 bytes each) fits. */
#define HANDLERS_CONTROL_BODY_MAX ((size_t)8192)

/* For http_server_config.classify (ctx: the struct app), once per request
 * before any body byte is read:
 * - the body limit: document content (create_document, PUT /documents/{id})
 *   may use the server's max_body_bytes; every other route, known or not,
 *   HANDLERS_CONTROL_BODY_MAX;
 * - the lane: HTTP_LANE_SLOW for the routes that always run an Argon2id
 *   (account creation, recovery, password change, key rotation, login),
 *   HTTP_LANE_WRITE for those that wait for a durable commit (documents
 *   written or deleted, account deletion, logout, two-factor and application
 *   password changes), HTTP_LANE_NORMAL for the others;
 * - the tag: the route id, so that handlers_dispatch does not match again. */
void handlers_classify(void *ctx, const char *method, const char *path, struct http_class *cls);

/* The http_handler_fn of confidoc-api; ctx is a struct app. */
void handlers_dispatch(void *ctx, const struct http_request *req, struct http_response *resp);

#endif
