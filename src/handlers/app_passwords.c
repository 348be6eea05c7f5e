/* app_passwords.c: POST, GET /users/me/app-passwords and DELETE
 * /users/me/app-passwords/{id}: passwords for devices and scripts, each
 * revocable on its own, that pass HTTP Basic with two-factor on. */
#include "handlers/handlers_int.h"

#include <string.h>
#include <time.h>

#include "log/log.h"
#include "validate/validate.h"

/* POST /users/me/app-passwords {"name"}: only from a session (which passed
 * the second factor when the account has one), never from HTTP Basic. */
void hd_apppw_create(struct hd_req *r)
{
    char password[AUTH_APPPW_STRLEN];
    json_t *body, *name;
    uint64_t id = 0;
    struct timespec now;
    cd_err rc;

    if (r->p.via != AUTH_VIA_SESSION) {
        hd_error(r->resp, 403, "Application passwords are created from a logged-in session");
        return;
    }
    body = hd_parse_object(r->req, r->resp);
    if (body == NULL)
        return;
    name = json_object_get(body, "name");
    if (!json_is_string(name)) {
        hd_error(r->resp, 422, "name must be a string");
        goto out;
    }
    rc = auth_apppw_create(r->app->auth, &r->p, json_string_value(name), json_string_length(name),
                           &id, password);
    switch (rc) {
    case CD_OK:
        clock_gettime(CLOCK_REALTIME, &now);
        hd_json(r->resp, 201,
                json_pack("{s:I,s:O,s:s,s:o}", "id", (json_int_t)id, "name", name, "password",
                          password, "created_at",
                          hd_time((int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000)));
        break;
    case CD_ERR_INVALID:
        hd_error(r->resp, 422, "name must be 1 to 64 printable characters");
        break;
    case CD_ERR_LIMITED:
        hd_error(r->resp, 409, "This account has 32 application passwords; revoke one first");
        break;
    case CD_ERR_CONFLICT:
        hd_error(r->resp, 409, "The credentials changed meanwhile; authenticate again");
        break;
    default:
        hd_fail(r->resp, rc, r->req, "create application password");
        break;
    }
    crypto_wipe(password, sizeof(password));
out:
    json_decref(body);
}

/* GET /users/me/app-passwords */
void hd_apppw_list(struct hd_req *r)
{
    struct auth_apppw_info info[AUTH_APPPW_MAX];
    json_t *list;
    size_t n = 0;
    cd_err rc;

    rc = auth_apppw_list(r->app->auth, &r->p, info, AUTH_APPPW_MAX, &n);
    if (rc != CD_OK) {
        hd_fail(r->resp, rc, r->req, "list application passwords");
        return;
    }
    list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++) {
        json_t *used = info[i].last_used_us < 0 ? json_null() : hd_time(info[i].last_used_us);
        if (json_array_append_new(list, json_pack("{s:I,s:s,s:o,s:o}", "id", (json_int_t)info[i].id,
                                                  "name", info[i].name, "created_at",
                                                  hd_time(info[i].created_us), "last_used_at",
                                                  used)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    crypto_wipe(info, sizeof(info));
    hd_json(r->resp, 200, list != NULL ? json_pack("{s:o}", "app_passwords", list) : NULL);
}

/* DELETE /users/me/app-passwords/{id} */
void hd_apppw_delete(struct hd_req *r)
{
    int64_t id = 0;
    cd_err rc;

    if (r->m->param_too_long || !validate_record_id_text(r->m->param, strlen(r->m->param), &id)) {
        hd_error(r->resp, 404, "No such application password");
        return;
    }
    rc = auth_apppw_delete(r->app->auth, &r->p, (uint64_t)id);
    if (rc == CD_OK)
        r->resp->status = 204;
    else if (rc == CD_ERR_NOT_FOUND)
        hd_error(r->resp, 404, "No such application password");
    else
        hd_fail(r->resp, rc, r->req, "delete application password");
}
