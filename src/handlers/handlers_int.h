/* handlers_int.h: the per-request context and the reply helpers (reply.c)
 * shared by the handler files; private to src/handlers.
 *
 * Dependencies run one way: dispatch.c (the route table) calls the handlers
 * of users.c and documents.c, which answer through reply.c. */
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

/* How far the caller's principal is known to be current. */
enum hd_auth_state {
    /* Verified against the account row (auth_login), or not authenticated. */
    HD_AUTH_VERIFIED = 0,
    /* From the credential cache alone (auth_login_cached): the one database
     * statement of the request confirms its auth_gen. An answer written in
     * this state (a validation error) is not let out: the credentials are
     * verified the usual way first (a stale password must get 401, not 422). */
    HD_AUTH_UNCONFIRMED,
    /* From the cache, and a statement found the account unchanged. */
    HD_AUTH_CONFIRMED,
    /* A statement found the account changed (auth_gen refused): nothing was
     * done and no answer written; dispatch verifies the credentials and runs
     * the handler once more. */
    HD_AUTH_STALE,
};

struct hd_share; /* documents.c: a client's share of the large-transfer places */

/* One request, built by handlers_dispatch on its stack and passed down; what
 * it holds is wiped and given back in one place when the request ends. */
struct hd_req {
    struct app *app;
    const struct http_request *req;
    struct http_response *resp;
    const struct route_match *m;
    /* Holds one of app->active's places (hd_active_leave gives it back). */
    bool active_held;
    /* Routes with HD_AUTH: the caller, once authenticated. */
    enum hd_auth_state auth;
    struct auth_credentials creds; /* from a session: the username only */
    struct auth_principal p;       /* p.via says how it was authenticated */
    /* Authenticated by the session cookie (p.via AUTH_VIA_SESSION): its token
     * and row key (sessions.c). */
    uint8_t token[AUTH_TOKEN_BYTES];
    struct auth_session sess;
    uint8_t kek[CRYPTO_KEY_BYTES]; /* wraps the caller's document keys */
    /* The client's share of the large-transfer places while this request
     * holds one (documents.c). */
    struct hd_share *share;
};

typedef void (*hd_handler_fn)(struct hd_req *r);

/* Response builders. Each sets status, body and content type. */
void hd_json(struct http_response *resp, int status, json_t *obj); /* steals obj */
/* The answer of a fixed shape, without a JSON tree (common/jsonw.h): the same
 * bytes hd_json would write for the object of these fields in this order. */
struct jsonw_field;
void hd_json_fields(struct http_response *resp, int status, const struct jsonw_field *f, size_t n);
void hd_error(struct http_response *resp, int status, const char *detail);
/* 503 with Retry-After for a dependency that is down. */
void hd_unavailable(struct http_response *resp);
/* Maps a storage/auth error that the handler does not treat itself; logs it
 * once, with the request id (lower layers do not log it again). */
void hd_fail(struct http_response *resp, cd_err err, const struct http_request *req,
             const char *what);
void hd_retry_after(struct http_response *resp, unsigned seconds);
/* 401 with the Basic challenge. */
void hd_unauthorized(struct http_response *resp);
/* 429 for an account blocked after failed logins (retry > 0), else hd_fail. */
void hd_login_limited(struct http_response *resp, unsigned retry, const struct http_request *req,
                      const char *what);
/* Drops an answer already written (body wiped and freed, headers, on_done
 * called): back to the server's initial 500 with no body. */
void hd_response_reset(struct http_response *resp);

/* Authenticates the request's Basic credentials into r->creds and r->p (hook
 * passed to auth_login, NULL allowed). On failure fills r->resp (401, 429 or
 * 503) and returns false. */
bool hd_authenticate(struct hd_req *r, const struct auth_hook *hook);
/* An ISO 8601 UTC time ("2026-12-01T15:00:00.000000Z") of microseconds. */
json_t *hd_time(int64_t us);

/* Gives up the request's active place, if it holds one: before long waits of
 * their own (Argon2id, a large transfer) that must not hold up the short
 * requests queued behind it. */
void hd_active_leave(struct hd_req *r);

/* The address a request counts against (rate limit, large-transfer share):
 * the TCP peer, or the X-Real-IP that a trusted proxy set. */
void hd_client_address(const struct app *app, const struct http_request *req,
                       struct sockaddr_storage *addr, socklen_t *len);

/* Parses a JSON object body; on failure answers 422 and returns NULL. */
json_t *hd_parse_object(const struct http_request *req, struct http_response *resp);
/* A record id from JSON: a non-negative integer or a string of digits. */
bool hd_record_id_from_json(const json_t *v, int64_t *out);

/* The JSON body of create_document and of a JSON replace, {"record_id": ...,
 * "content": "..."}: read in one pass without a tree when validate_json_flat
 * can (the usual body), else by hd_parse_object; both give the same fields and
 * the same answers (fuzz_json_body). */
struct hd_doc_body {
    bool has_rid; /* "record_id" present */
    bool rid_ok;  /* ... and a record id (hd_record_id_from_json's rule) */
    int64_t record_id;
    bool content_ok;        /* "content" present and a string */
    const uint8_t *content; /* its UTF-8 bytes (not NUL-terminated) */
    size_t content_len;
    char *decoded; /* content with escapes, decoded: wiped and freed at release */
    size_t decoded_len;
    json_t *tree; /* the full parse, when it was needed */
};
/* False after answering 422 (not a JSON object, malformed, too deep) or 500. */
bool hd_doc_body_parse(const struct http_request *req, struct http_response *resp,
                       struct hd_doc_body *b);
void hd_doc_body_release(struct hd_doc_body *b);

/* users.c */
void hd_create_account(struct hd_req *r);
void hd_recover(struct hd_req *r);
void hd_me(struct hd_req *r);
void hd_me_delete(struct hd_req *r);
void hd_change_password(struct hd_req *r);
void hd_rotate_key(struct hd_req *r);

/* sessions.c */
/* Authenticates a request of an AUTH route: HTTP Basic when it has an
 * Authorization header (hd_authenticate), else the session cookie
 * (hd_authenticate_session), else 401 with the Basic challenge. */
bool hd_authenticate_request(struct hd_req *r, const struct auth_hook *hook);
/* The session of the request's cookie into r->p, r->creds (the username),
 * r->token and r->sess; a method other than GET and HEAD must carry its CSRF
 * token in X-CSRF-Token. On failure fills r->resp (401 and a clearing
 * Set-Cookie for an unknown or ended session, 403 for the CSRF token). */
bool hd_authenticate_session(struct hd_req *r);
void hd_login(struct hd_req *r);
void hd_logout(struct hd_req *r);

/* totp.c */
void hd_totp_begin(struct hd_req *r);
void hd_totp_confirm(struct hd_req *r);
void hd_totp_disable(struct hd_req *r);

/* app_passwords.c */
void hd_apppw_create(struct hd_req *r);
void hd_apppw_list(struct hd_req *r);
void hd_apppw_delete(struct hd_req *r);

/* documents.c */
void hd_create_document(struct hd_req *r);
void hd_list(struct hd_req *r);
void hd_get(struct hd_req *r);
void hd_get_content(struct hd_req *r);
void hd_put(struct hd_req *r);
void hd_delete(struct hd_req *r);

#endif
