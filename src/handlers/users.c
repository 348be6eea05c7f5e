/* users.c: account routes: create_account, me, password change, recovery, deletion. */
#include "handlers/handlers_int.h"

#include <string.h>

#include "common/jsonw.h"
#include "log/log.h"

#define HD_CREDENTIAL_RULES                                                                        \
    "Usernames are 1 to 64 characters of A-Z a-z 0-9 . _ @ -; passwords are 8 to 1024 bytes of "   \
    "UTF-8"

void hd_create_account(struct hd_req *r)
{
    struct app *app = r->app;
    const struct http_request *req = r->req;
    struct http_response *resp = r->resp;
    struct auth_credentials creds;
    char code[CRYPTO_RECOVERY_CODE_STRLEN];
    bool too_long;
    cd_err rc;

    if (auth_parse_basic_len(http_request_header(req, "Authorization"), &creds, &too_long) !=
        CD_OK) {
        if (too_long) {
            hd_error(resp, 422, HD_CREDENTIAL_RULES); /* a new name: nothing to hide */
            goto out;
        }
        hd_unauthorized(resp);
        goto out;
    }
    rc = auth_create(app->auth, &creds, code);
    switch (rc) {
    case CD_OK:
        hd_json(
            resp, 201,
            json_pack("{s:s%,s:s}", "username", creds.user, creds.user_len, "recovery_code", code));
        break;
    case CD_ERR_INVALID:
        hd_error(resp, 422, HD_CREDENTIAL_RULES);
        break;
    case CD_ERR_EXISTS:
        hd_error(resp, 409, "This username is already taken.");
        break;
    default:
        hd_fail(resp, rc, req, "create account");
        break;
    }
out:
    crypto_wipe(code, sizeof(code));
    auth_credentials_wipe(&creds);
}

void hd_change_password(struct hd_req *r)
{
    json_t *body = hd_parse_object(r->req, r->resp), *pw;
    cd_err rc;

    if (body == NULL)
        return;
    pw = json_object_get(body, "new_password");
    if (!json_is_string(pw)) {
        hd_error(r->resp, 422, "new_password must be a string");
        goto out;
    }
    rc = auth_change_password(r->app->auth, &r->creds, &r->p, json_string_value(pw),
                              json_string_length(pw));
    switch (rc) {
    case CD_OK:
        r->resp->status = 204;
        break;
    case CD_ERR_INVALID:
        hd_error(r->resp, 422, "Passwords are 8 to 1024 bytes of UTF-8");
        break;
    case CD_ERR_CONFLICT:
        hd_error(r->resp, 409, "The credentials changed meanwhile; authenticate again");
        break;
    default:
        hd_fail(r->resp, rc, r->req, "change password");
        break;
    }
out:
    json_decref(body);
}

void hd_recover(struct hd_req *r)
{
    struct app *app = r->app;
    const struct http_request *req = r->req;
    struct http_response *resp = r->resp;
    json_t *body = hd_parse_object(req, resp), *user, *code, *pw;
    const struct auth_hook hook = {.request_id = req->request_id};
    char fresh[CRYPTO_RECOVERY_CODE_STRLEN];
    unsigned retry = 0;
    cd_err rc;

    if (body == NULL)
        return;
    user = json_object_get(body, "username");
    code = json_object_get(body, "recovery_code");
    pw = json_object_get(body, "new_password");
    if (!json_is_string(user) || !json_is_string(code) || !json_is_string(pw)) {
        hd_error(resp, 422, "username, recovery_code and new_password must be strings");
        goto out;
    }
    rc = auth_recover(app->auth, json_string_value(user), json_string_length(user),
                      json_string_value(code), json_string_length(code), json_string_value(pw),
                      json_string_length(pw), fresh, &retry, &hook);
    switch (rc) {
    case CD_OK:
        hd_json(resp, 200, json_pack("{s:O,s:s}", "username", user, "recovery_code", fresh));
        break;
    case CD_ERR_INVALID:
        hd_error(resp, 422, HD_CREDENTIAL_RULES);
        break;
    case CD_ERR_AUTH:
        hd_error(resp, 401, "Incorrect username or recovery code");
        break;
    case CD_ERR_LIMITED:
        hd_login_limited(resp, retry, req, "recover");
        break;
    default:
        hd_fail(resp, rc, req, "recover");
        break;
    }
out:
    crypto_wipe(fresh, sizeof(fresh));
    json_decref(body);
}

/* rotate-key through a session or an application password: the body must
 * carry the account password ({"password": ...}), checked again, since the
 * new key is wrapped under it. false with the answer written otherwise. */
static bool hd_rotate_password(struct hd_req *r, json_t *body)
{
    const struct auth_hook hook = {.request_id = r->req->request_id};
    json_t *pw = body != NULL ? json_object_get(body, "password") : NULL;
    unsigned retry = 0;
    cd_err rc;

    if (!json_is_string(pw) || json_object_size(body) != 1) {
        hd_error(r->resp, 422,
                 "rotate-key without HTTP Basic takes the account password: {\"password\": ...}");
        return false;
    }
    if (json_string_length(pw) > AUTH_PASSWORD_MAX) {
        hd_error(r->resp, 403, "Incorrect password");
        return false;
    }
    r->creds.pass_len = json_string_length(pw);
    memcpy(r->creds.pass, json_string_value(pw), r->creds.pass_len);
    r->creds.pass[r->creds.pass_len] = '\0';
    rc = auth_check_password(r->app->auth, &r->creds, &r->p, &retry, &hook);
    if (rc == CD_OK)
        return true;
    if (rc == CD_ERR_AUTH)
        hd_error(r->resp, 403, "Incorrect password");
    else if (rc == CD_ERR_LIMITED)
        hd_login_limited(r->resp, retry, r->req, "rotate key");
    else if (rc == CD_ERR_CONFLICT)
        hd_error(r->resp, 409, "The credentials changed meanwhile; authenticate again");
    else
        hd_fail(r->resp, rc, r->req, "rotate key");
    return false;
}

/* A new user key (POST /users/me/rotate-key): with HTTP Basic and the
 * password, no body or an empty object; otherwise {"password": ...}. */
void hd_rotate_key(struct hd_req *r)
{
    json_t *body = NULL;
    char fresh[CRYPTO_RECOVERY_CODE_STRLEN];
    cd_err rc;

    if (r->req->body_len > 0) {
        body = hd_parse_object(r->req, r->resp);
        if (body == NULL)
            return;
    }
    if (r->p.via != AUTH_VIA_PASSWORD) {
        if (!hd_rotate_password(r, body))
            goto out;
    } else if (body != NULL && json_object_size(body) != 0) {
        hd_error(r->resp, 422, "rotate-key takes no parameters");
        goto out;
    }
    rc = auth_rotate_key(r->app->auth, &r->creds, &r->p, fresh);
    switch (rc) {
    case CD_OK:
        hd_json(r->resp, 200,
                json_pack("{s:s%,s:s}", "username", r->creds.user, r->creds.user_len,
                          "recovery_code", fresh));
        break;
    case CD_ERR_CONFLICT:
        hd_error(r->resp, 409, "The credentials changed meanwhile; authenticate again");
        break;
    default:
        hd_fail(r->resp, rc, r->req, "rotate key");
        break;
    }
out:
    crypto_wipe(fresh, sizeof(fresh));
    json_decref(body);
}

/* GET /users/me */
void hd_me(struct hd_req *r)
{
    struct jsonw_field f = {
        .key = "username", .kind = JSONW_STR, .s = r->creds.user, .len = r->creds.user_len};

    hd_json_fields(r->resp, 200, &f, 1);
}

/* DELETE /users/me */
void hd_me_delete(struct hd_req *r)
{
    cd_err rc = auth_delete(r->app->auth, &r->p);

    if (rc == CD_OK || rc == CD_ERR_NOT_FOUND)
        r->resp->status = 204;
    else
        hd_fail(r->resp, rc, r->req, "delete account");
}
