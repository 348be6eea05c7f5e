/* sessions.c: POST /auth/login and /auth/logout, and the session cookie as a
 * way to authenticate any AUTH route (with its CSRF token for writes). */
#include "handlers/handlers_int.h"

#include <stdio.h>
#include <string.h>

#include "log/log.h"

#define HD_COOKIE_ATTRS "; HttpOnly; Secure; SameSite=Strict; Path=/"
#define HD_SESSION_INVALID "Session expired or invalid"

/* Set-Cookie for token (NULL: an expiring, empty one that clears it). */
static void hd_set_cookie(struct hd_req *r, const char *token)
{
    char v[HTTP_RESPONSE_HEADER_STORE - sizeof("Set-Cookie")];

    snprintf(v, sizeof(v), AUTH_SESSION_COOKIE "=%s" HD_COOKIE_ATTRS "; Max-Age=%u",
             token != NULL ? token : "", token != NULL ? r->app->session_ttl : 0);
    if (http_response_header(r->resp, "Set-Cookie", v) != CD_OK)
        hd_fail(r->resp, CD_ERR_INTERNAL, r->req, "set cookie");
    crypto_wipe(v, sizeof(v));
}

static void hd_session_invalid(struct hd_req *r)
{
    hd_error(r->resp, 401, HD_SESSION_INVALID);
    hd_set_cookie(r, NULL);
}

/* A write through a session must carry the session's CSRF token: a page of
 * another site can make the browser send the cookie, not read this token. */
static bool hd_csrf_ok(struct hd_req *r)
{
    const char *m = r->req->method, *got;
    char want[AUTH_TOKEN_STRLEN];
    bool ok;

    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return true;
    got = http_request_header(r->req, "X-CSRF-Token");
    if (auth_session_csrf(r->app->auth, r->token, r->sess.mk_version, want) != CD_OK)
        return false;
    ok = got != NULL && strlen(got) == AUTH_TOKEN_STRLEN - 1 &&
         crypto_equal(got, want, AUTH_TOKEN_STRLEN - 1);
    crypto_wipe(want, sizeof(want));
    return ok;
}

bool hd_authenticate_session(struct hd_req *r)
{
    cd_err rc = auth_parse_session_cookie(http_request_header(r->req, "Cookie"), r->token);

    if (rc == CD_ERR_NOT_FOUND) {
        hd_unauthorized(r->resp); /* no credentials at all */
        return false;
    }
    if (rc == CD_OK)
        rc = auth_session_auth(r->app->auth, r->token, &r->p, &r->creds, &r->sess);
    if (rc == CD_ERR_INVALID || rc == CD_ERR_NOT_FOUND) {
        log_info("req=%s session cookie refused: %s", r->req->request_id,
                 rc == CD_ERR_INVALID ? "malformed" : "unknown, expired or ended");
        hd_session_invalid(r);
        return false;
    }
    if (rc != CD_OK) {
        hd_fail(r->resp, rc, r->req, "session");
        return false;
    }
    if (!hd_csrf_ok(r)) {
        log_info("req=%s session write without its CSRF token", r->req->request_id);
        hd_error(r->resp, 403, "Missing or invalid CSRF token");
        return false;
    }
    return true;
}

bool hd_authenticate_request(struct hd_req *r, const struct auth_hook *hook)
{
    if (http_request_header(r->req, "Authorization") != NULL)
        return hd_authenticate(r, hook);
    return hd_authenticate_session(r);
}

/* The credentials of a login body; false (422 written) when malformed. A
 * name or password longer than any account has is refused like a wrong one. */
static bool hd_login_creds(struct hd_req *r, json_t *body, struct auth_credentials *c,
                           const char **code, size_t *code_len)
{
    json_t *u = json_object_get(body, "username"), *pw = json_object_get(body, "password");
    json_t *t = json_object_get(body, "totp");

    if (!json_is_string(u) || !json_is_string(pw) || (t != NULL && !json_is_string(t))) {
        hd_error(r->resp, 422, "username and password must be strings, and totp when sent");
        return false;
    }
    memset(c, 0, sizeof(*c));
    if (json_string_length(u) <= AUTH_USER_MAX && json_string_length(pw) <= AUTH_PASSWORD_MAX) {
        c->user_len = json_string_length(u);
        memcpy(c->user, json_string_value(u), c->user_len);
        c->pass_len = json_string_length(pw);
        memcpy(c->pass, json_string_value(pw), c->pass_len);
    }
    *code = t != NULL ? json_string_value(t) : NULL;
    *code_len = t != NULL ? json_string_length(t) : 0;
    return true;
}

static bool hd_cross_site(const struct hd_req *r)
{
    const char *site = http_request_header(r->req, "Sec-Fetch-Site");
    return site != NULL && strcmp(site, "cross-site") == 0;
}

static void hd_login_refused(struct hd_req *r, cd_err rc, unsigned retry)
{
    switch (rc) {
    case CD_ERR_AUTH:
        hd_error(r->resp, 401, "Incorrect username or password"); /* no Basic challenge */
        break;
    case CD_ERR_SECOND_FACTOR:
        hd_error(r->resp, 401, "A one-time code is required");
        break;
    case CD_ERR_LIMITED:
        hd_login_limited(r->resp, retry, r->req, "login");
        break;
    case CD_ERR_CONFLICT:
        hd_error(r->resp, 409, "The credentials changed meanwhile; authenticate again");
        break;
    default:
        hd_fail(r->resp, rc, r->req, "login");
        break;
    }
}

/* POST /auth/login {"username", "password", "totp"} */
void hd_login(struct hd_req *r)
{
    const struct auth_hook hook = {.request_id = r->req->request_id};
    json_t *body = hd_parse_object(r->req, r->resp);
    char token[AUTH_TOKEN_STRLEN], csrf[AUTH_TOKEN_STRLEN];
    struct auth_credentials c;
    const char *code = NULL;
    size_t code_len = 0;
    unsigned retry = 0;
    cd_err rc;

    if (body == NULL)
        return;
    memset(&c, 0, sizeof(c));
    /* Login CSRF: a page of another site must not log the browser into an
     * account of its choosing (browsers say where a request comes from; other
     * clients send no Sec-Fetch-Site). */
    if (hd_cross_site(r)) {
        hd_error(r->resp, 403, "Cross-site login refused");
        goto out;
    }
    if (!hd_login_creds(r, body, &c, &code, &code_len))
        goto out;
    rc = auth_session_login(r->app->auth, &c, code, code_len, token, csrf, &retry, &hook);
    if (rc != CD_OK) {
        hd_login_refused(r, rc, retry);
        goto out;
    }
    hd_json(r->resp, 200,
            json_pack("{s:s%,s:s}", "username", c.user, c.user_len, "csrf_token", csrf));
    hd_set_cookie(r, token);
    crypto_wipe(token, sizeof(token));
    crypto_wipe(csrf, sizeof(csrf));
out:
    auth_credentials_wipe(&c);
    json_decref(body);
}

/* POST /auth/logout (the session cookie and its CSRF token) */
void hd_logout(struct hd_req *r)
{
    cd_err rc;

    if (!hd_authenticate_session(r))
        return;
    rc = auth_session_logout(r->app->auth, &r->sess);
    if (rc != CD_OK) {
        hd_fail(r->resp, rc, r->req, "logout");
        return;
    }
    r->resp->status = 204;
    hd_set_cookie(r, NULL);
}
