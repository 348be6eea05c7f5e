/* cmd_account.c: the account commands: signup, passwd, totp, app-password. */
#include "cli/cli_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/num.h"
#include "crypto/crypto.h"

static int cli_session(struct cli *c);

/* Sends obj (stolen) as a JSON body through cli_call; the text, which may
 * hold a password, is wiped. */
static int cli_send_json(struct cli *c, const char *method, const char *path, json_t *obj,
                         struct cli_reply *r)
{
    struct cli_body b = {"application/json", NULL, 0, -1, 0, false};
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
    int rc;

    json_decref(obj);
    cli_reply_init(r, -1);
    if (text == NULL) {
        fprintf(stderr, "confidoc: out of memory\n");
        return CLI_EXIT_UNREACHABLE;
    }
    b.mem = text;
    b.len = strlen(text);
    rc = cli_call(c, method, path, &b, r, false);
    crypto_wipe(text, b.len);
    free(text);
    return rc;
}

/* A string member of a JSON answer ("" when absent), copied to out. */
static void cli_json_str(const struct cli_reply *r, const char *name, char *out, size_t cap)
{
    json_t *doc = cli_reply_json(r);
    const char *v = json_string_value(json_object_get(doc, name));

    snprintf(out, cap, "%s", v != NULL ? v : "");
    json_decref(doc);
}

int cli_cmd_signup(struct cli *c, int argc, char **argv)
{
    struct cli_reply r;
    char code[128];
    int rc;

    (void)argc; /* none: cli_run checked */
    (void)argv;
    if ((rc = cli_username(c)) != CLI_EXIT_OK || (rc = cli_password(c, true)) != CLI_EXIT_OK)
        return rc;
    cli_reply_init(&r, -1);
    rc = cli_net_request(c, CLI_AUTH_BASIC, "POST", "/users/create_account", NULL, &r, false);
    if (rc == CLI_EXIT_OK && r.status != 201)
        rc = cli_refused(&r);
    if (rc == CLI_EXIT_OK) {
        cli_json_str(&r, "recovery_code", code, sizeof(code));
        printf("account %s created\nrecovery code: %s\n", c->user, code);
        fprintf(stderr, "Keep the recovery code offline, somewhere safe: it is shown once. With "
                        "your password it is\nthe only way into your documents; losing both "
                        "loses them, and nobody can recover them.\n");
        crypto_wipe(code, sizeof(code));
    }
    cli_reply_release(&r);
    return rc;
}

int cli_cmd_passwd(struct cli *c, int argc, char **argv)
{
    struct cli_reply r;
    char *pw = NULL;
    size_t len = 0;
    int rc;

    (void)argc; /* none: cli_run checked */
    (void)argv;
    if ((rc = cli_username(c)) != CLI_EXIT_OK || (rc = cli_password(c, false)) != CLI_EXIT_OK ||
        (rc = cli_new_secret("new password", "CONFIDOC_NEW_PASSWORD", &pw, &len)) != CLI_EXIT_OK)
        return rc;
    rc = cli_send_json(c, "POST", "/users/me/password",
                       json_pack("{s:s%}", "new_password", pw, len), &r);
    cli_secret_free(pw, len);
    cli_reply_release(&r);
    if (rc == CLI_EXIT_OK)
        printf("password changed; sessions of the old password have ended\n");
    return rc;
}

static int cli_totp_confirm(struct cli *c, const char *code)
{
    struct cli_reply r;
    int rc =
        cli_send_json(c, "POST", "/users/me/totp/confirm", json_pack("{s:s}", "code", code), &r);

    cli_reply_release(&r);
    if (rc == CLI_EXIT_OK)
        printf("two-factor login is on: logins now need a one-time code, and API clients an "
               "application password (confidoc app-password create NAME)\n");
    return rc;
}

static int cli_totp_enable(struct cli *c)
{
    char secret[128], uri[512], code[16];
    struct cli_reply r;
    int rc;

    cli_reply_init(&r, -1);
    rc = cli_call(c, "POST", "/users/me/totp", NULL, &r, false);
    if (rc == CLI_EXIT_OK) {
        cli_json_str(&r, "secret", secret, sizeof(secret));
        cli_json_str(&r, "otpauth_uri", uri, sizeof(uri));
        printf("secret: %s\nuri: %s\n", secret, uri);
        fflush(stdout);
        crypto_wipe(secret, sizeof(secret));
        crypto_wipe(uri, sizeof(uri));
    }
    cli_reply_release(&r);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (cli_ask_line("Add it to your authenticator app, then type the code it shows: ", code,
                     sizeof(code)))
        return cli_totp_confirm(c, code);
    fprintf(stderr, "not on yet: confirm with `confidoc totp confirm CODE`\n");
    return CLI_EXIT_OK;
}

/* DELETE /users/me/totp needs a current code, through a session (two-factor
 * is never managed with an application password). The login spends one code
 * and a code is accepted once, so the DELETE takes the next one: CODE on the
 * command line, or asked for on the terminal. */
static int cli_totp_disable(struct cli *c, const char *given)
{
    struct cli_reply r;
    char code[16];
    int rc;

    if ((rc = cli_session(c)) != CLI_EXIT_OK)
        return rc;
    if (given != NULL && strlen(given) < sizeof(code)) {
        memcpy(code, given, strlen(given) + 1);
    } else if (!cli_ask_line("Next one-time code (once the one used to log in has changed): ", code,
                             sizeof(code))) {
        fprintf(stderr, "confidoc: turning two-factor login off takes a second code: "
                        "confidoc --code CODE totp disable NEXT-CODE\n");
        return CLI_EXIT_USAGE;
    }
    rc = cli_send_json(c, "DELETE", "/users/me/totp", json_pack("{s:s}", "code", code), &r);
    cli_reply_release(&r);
    if (rc == CLI_EXIT_OK)
        printf("two-factor login is off\n");
    return rc;
}

int cli_cmd_totp(struct cli *c, int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "enable") == 0)
        return cli_totp_enable(c);
    if (argc == 3 && strcmp(argv[1], "confirm") == 0)
        return cli_totp_confirm(c, argv[2]);
    if ((argc == 2 || argc == 3) && strcmp(argv[1], "disable") == 0)
        return cli_totp_disable(c, argc == 3 ? argv[2] : NULL);
    fprintf(stderr, "usage: confidoc totp enable | confirm CODE | disable [NEXT-CODE]\n");
    return CLI_EXIT_USAGE;
}

/* Application passwords are created from a session: log in, with a code
 * when the account asks for one. */
static int cli_session(struct cli *c)
{
    char code[16];
    int rc;

    if (c->session)
        return CLI_EXIT_OK;
    if (c->o->code != NULL || getenv("CONFIDOC_TOTP") != NULL)
        return cli_code(c, "", code) ? cli_login(c, code) : CLI_EXIT_USAGE;
    if ((rc = cli_username(c)) != CLI_EXIT_OK || (rc = cli_password(c, false)) != CLI_EXIT_OK)
        return rc;
    rc = cli_login(c, NULL);
    if (rc == CLI_EXIT_REFUSED && cli_ask_line("One-time code: ", code, sizeof(code)))
        rc = cli_login(c, code);
    return rc;
}

static int cli_app_create(struct cli *c, const char *name)
{
    char pw[256];
    struct cli_reply r;
    int rc;

    if ((rc = cli_session(c)) != CLI_EXIT_OK)
        return rc;
    rc = cli_send_json(c, "POST", "/users/me/app-passwords", json_pack("{s:s}", "name", name), &r);
    if (rc == CLI_EXIT_OK) {
        long long id;
        json_t *doc = cli_reply_json(&r);
        id = (long long)json_integer_value(json_object_get(doc, "id"));
        json_decref(doc);
        cli_json_str(&r, "password", pw, sizeof(pw));
        printf("application password %lld (%s): %s\n", id, name, pw);
        fprintf(stderr,
                "It is shown once. Use it as CONFIDOC_PASSWORD (or curl -u USER:PASSWORD); "
                "revoke it with `confidoc app-password revoke %lld`.\n",
                id);
        crypto_wipe(pw, sizeof(pw));
    }
    cli_reply_release(&r);
    return rc;
}

static int cli_app_list(struct cli *c)
{
    json_t *doc, *arr;
    size_t i;
    int rc;

    rc = cli_get_json(c, "/users/me/app-passwords", &doc);
    if (rc != CLI_EXIT_OK)
        return rc;
    arr = json_object_get(doc, "app_passwords");
    printf("%-8s %-28s %-20s %s\n", "ID", "NAME", "CREATED (UTC)", "LAST USED");
    for (i = 0; i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i);
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *created = json_string_value(json_object_get(e, "created_at"));
        const char *used = json_string_value(json_object_get(e, "last_used_at"));
        printf("%-8lld %-28s %-20.19s %.19s\n",
               (long long)json_integer_value(json_object_get(e, "id")), name != NULL ? name : "-",
               created != NULL ? created : "-", used != NULL ? used : "never");
    }
    json_decref(doc);
    return CLI_EXIT_OK;
}

int cli_cmd_app_password(struct cli *c, int argc, char **argv)
{
    char path[80];
    uint64_t id;
    int rc;

    if (argc == 3 && strcmp(argv[1], "create") == 0)
        return cli_app_create(c, argv[2]);
    if (argc == 2 && strcmp(argv[1], "list") == 0)
        return cli_app_list(c);
    if (argc == 3 && strcmp(argv[1], "revoke") == 0 &&
        num_parse(argv[2], strlen(argv[2]), (uint64_t)INT64_MAX, &id) == CD_OK) {
        snprintf(path, sizeof(path), "/users/me/app-passwords/%llu", (unsigned long long)id);
        rc = cli_call_simple(c, "DELETE", path);
        if (rc == CLI_EXIT_OK)
            printf("application password %llu revoked\n", (unsigned long long)id);
        return rc;
    }
    fprintf(stderr, "usage: confidoc app-password create NAME | list | revoke ID\n");
    return CLI_EXIT_USAGE;
}
