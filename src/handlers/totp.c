/* totp.c: two-factor routes: POST /users/me/totp (a pending secret, its
 * otpauth URI and QR code), POST /users/me/totp/confirm, DELETE /users/me/totp. */
#include "handlers/handlers_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "qr/qr.h"

#define HD_TOTP_URI_MAX 256

/* Two-factor is managed with the account's own credentials (a session, or
 * the password while two-factor is off), never with an application password:
 * one leaked to a device must not be able to turn the second factor off or
 * replace it. false (403 written) for an application password. */
static bool hd_totp_caller_ok(struct hd_req *r)
{
    if (r->p.via != AUTH_VIA_APP_PASSWORD)
        return true;
    hd_error(r->resp, 403,
             "Two-factor authentication is managed from a logged-in session or with the account "
             "password");
    return false;
}

/* The code of a {"code": "123456"} body; NULL (422 written) otherwise. */
static const char *hd_totp_code(struct hd_req *r, json_t **body, size_t *len)
{
    json_t *code;

    *body = hd_parse_object(r->req, r->resp);
    if (*body == NULL)
        return NULL;
    code = json_object_get(*body, "code");
    if (!json_is_string(code)) {
        hd_error(r->resp, 422, "code must be a string: the current one-time code");
        return NULL;
    }
    *len = json_string_length(code);
    return json_string_value(code);
}

/* The answer of POST /users/me/totp: the secret three ways (all secret). */
static void hd_totp_answer(struct hd_req *r, const char *secret)
{
    char uri[HD_TOTP_URI_MAX];
    char *svg = NULL;
    size_t svg_len = 0;
    int n;
    cd_err rc;

    n = snprintf(uri, sizeof(uri),
                 "otpauth://totp/confidoc:%s?secret=%s&issuer=confidoc&algorithm=SHA1&digits=6"
                 "&period=30",
                 r->creds.user, secret);
    rc =
        n > 0 && (size_t)n < sizeof(uri) ? qr_svg(uri, (size_t)n, &svg, &svg_len) : CD_ERR_INTERNAL;
    if (rc == CD_OK)
        hd_json(r->resp, 200,
                json_pack("{s:s,s:s,s:s%}", "secret", secret, "otpauth_uri", uri, "qr_svg", svg,
                          svg_len));
    else
        hd_fail(r->resp, rc, r->req, "totp qr code");
    if (svg != NULL) {
        crypto_wipe(svg, svg_len);
        free(svg);
    }
    crypto_wipe(uri, sizeof(uri));
}

/* POST /users/me/totp */
void hd_totp_begin(struct hd_req *r)
{
    char secret[AUTH_TOTP_SECRET_STRLEN];
    cd_err rc;

    if (!hd_totp_caller_ok(r))
        return;
    rc = auth_totp_begin(r->app->auth, &r->creds, &r->p, secret);
    switch (rc) {
    case CD_OK:
        hd_totp_answer(r, secret);
        break;
    case CD_ERR_EXISTS:
        hd_error(r->resp, 409, "Two-factor authentication is already enabled");
        break;
    case CD_ERR_CONFLICT:
        hd_error(r->resp, 409, "The credentials changed meanwhile; authenticate again");
        break;
    default:
        hd_fail(r->resp, rc, r->req, "totp begin");
        break;
    }
    crypto_wipe(secret, sizeof(secret));
}

/* The answers confirm and disable share. */
static void hd_totp_result(struct hd_req *r, cd_err rc, unsigned retry, const char *what)
{
    switch (rc) {
    case CD_OK:
        r->resp->status = 204;
        break;
    case CD_ERR_AUTH:
        hd_error(r->resp, 422, "Invalid one-time code");
        break;
    case CD_ERR_LIMITED:
        hd_login_limited(r->resp, retry, r->req, what);
        break;
    case CD_ERR_CONFLICT:
        hd_error(r->resp, 409, "The credentials changed meanwhile; authenticate again");
        break;
    default:
        hd_fail(r->resp, rc, r->req, what);
        break;
    }
}

/* POST /users/me/totp/confirm {"code"} (confirm) and DELETE /users/me/totp
 * {"code"}: the caller checked, the code read, then the one auth call. */
static void hd_totp_with_code(struct hd_req *r, bool confirm)
{
    const struct auth_hook hook = {.request_id = r->req->request_id};
    json_t *body = NULL;
    const char *code;
    size_t len = 0;
    unsigned retry = 0;
    cd_err rc;

    if (!hd_totp_caller_ok(r) || (code = hd_totp_code(r, &body, &len)) == NULL)
        goto out;
    if (confirm)
        rc = auth_totp_confirm(r->app->auth, &r->creds, &r->p, code, len,
                               r->p.via == AUTH_VIA_SESSION ? &r->sess : NULL, &retry, &hook);
    else
        rc = auth_totp_disable(r->app->auth, &r->creds, &r->p, code, len, &retry, &hook);
    if (rc == CD_ERR_NOT_FOUND)
        hd_error(r->resp, 409,
                 confirm ? "No two-factor setup is pending: POST /users/me/totp first"
                         : "Two-factor authentication is not enabled");
    else
        hd_totp_result(r, rc, retry, confirm ? "totp confirm" : "totp disable");
out:
    json_decref(body);
}

void hd_totp_confirm(struct hd_req *r)
{
    hd_totp_with_code(r, true);
}

void hd_totp_disable(struct hd_req *r)
{
    hd_totp_with_code(r, false);
}
