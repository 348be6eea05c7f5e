/* cli.c: the command table, the run of one command, and the two ways a
 * request proves who sends it: HTTP Basic, or, for an account with
 * two-factor login, a session opened with a one-time code. */
#include "cli/cli_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

struct cli_cmd {
    const char *name;
    int (*run)(struct cli *c, int argc, char **argv);
    int args; /* arguments after the name: exactly this many, or -1: the command checks */
    const char *usage;
};

static const struct cli_cmd cli_cmds[] = {
    {"signup", cli_cmd_signup, 0, "signup"},
    {"put", cli_cmd_put, -1, "put FILE [--id N] [--type MIME]     (FILE - : standard input)"},
    {"get", cli_cmd_get, -1, "get ID [-o FILE]"},
    {"ls", cli_cmd_ls, 0, "ls"},
    {"rm", cli_cmd_rm, 1, "rm ID"},
    {"passwd", cli_cmd_passwd, 0, "passwd"},
    {"totp", cli_cmd_totp, -1, "totp enable | confirm CODE | disable [NEXT-CODE]"},
    {"app-password", cli_cmd_app_password, -1, "app-password create NAME | list | revoke ID"},
};

void cli_usage(FILE *f)
{
    fprintf(f, "usage: confidoc [--url URL] [--cacert FILE] [--user NAME] [--code CODE] "
               "[--verbose] COMMAND\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++)
        fprintf(f, "  %s\n", cli_cmds[i].usage);
    fprintf(f, "\nenvironment: CONFIDOC_URL, CONFIDOC_CACERT, CONFIDOC_USER, CONFIDOC_PASSWORD,\n"
               "  CONFIDOC_NEW_PASSWORD (passwd, signup), CONFIDOC_TOTP (a one-time code)\n"
               "exit codes: 0 done, 1 the service refused, 2 usage, 3 cannot reach the service "
               "or TLS failed\n");
}

/* The detail of an error answer ({"detail": "..."}), or NULL. */
static const char *cli_detail(const struct cli_reply *r, json_t **doc)
{
    json_t *d;

    *doc = cli_reply_json(r);
    d = json_object_get(*doc, "detail");
    return json_is_string(d) ? json_string_value(d) : NULL;
}

int cli_refused(const struct cli_reply *r)
{
    json_t *doc;
    const char *detail = cli_detail(r, &doc);

    fprintf(stderr, "confidoc: %s (HTTP %ld)", detail != NULL ? detail : "refused", r->status);
    if (r->retry_after[0] != '\0')
        fprintf(stderr, "; retry after %s s", r->retry_after);
    fputc('\n', stderr);
    json_decref(doc);
    return CLI_EXIT_REFUSED;
}

/* Does this 401 say that the account needs a second factor? */
static bool cli_wants_second_factor(const struct cli_reply *r)
{
    json_t *doc;
    const char *detail = cli_detail(r, &doc);
    bool yes = r->status == 401 && detail != NULL &&
               (strstr(detail, "two-factor") != NULL || strstr(detail, "one-time code") != NULL);

    json_decref(doc);
    return yes;
}

static bool cli_valid_code(const char *s)
{
    size_t n = strlen(s);

    if (n != 6)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool cli_code(const struct cli *c, const char *prompt, char out[16])
{
    const char *v = c->o->code != NULL ? c->o->code : getenv("CONFIDOC_TOTP");

    if (v != NULL && strlen(v) < 16) {
        memcpy(out, v, strlen(v) + 1);
    } else if (!cli_ask_line(prompt, out, 16)) {
        return false;
    }
    if (!cli_valid_code(out)) {
        fprintf(stderr, "confidoc: a one-time code is 6 digits\n");
        return false;
    }
    return true;
}

int cli_login(struct cli *c, const char *code)
{
    struct cli_body b = {"application/json", NULL, 0, -1, 0, false};
    struct cli_reply r;
    json_t *req, *ans, *tok;
    char *text;
    int rc;

    if ((rc = cli_username(c)) != CLI_EXIT_OK || (rc = cli_password(c, false)) != CLI_EXIT_OK)
        return rc;
    req = json_pack("{s:s,s:s%}", "username", c->user, "password", c->password, c->password_len);
    if (req != NULL && code != NULL && json_object_set_new(req, "totp", json_string(code)) != 0) {
        json_decref(req);
        req = NULL;
    }
    text = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req); /* jansson's copy of the password is freed unwiped: see the man page */
    if (text == NULL) {
        fprintf(stderr, "confidoc: out of memory\n");
        return CLI_EXIT_UNREACHABLE;
    }
    b.mem = text;
    b.len = strlen(text);
    cli_reply_init(&r, -1);
    rc = cli_net_request(c, CLI_AUTH_NONE, "POST", "/auth/login", &b, &r, false);
    crypto_wipe(text, b.len);
    free(text);
    if (rc == CLI_EXIT_OK && r.status != 200)
        rc = cli_refused(&r);
    if (rc == CLI_EXIT_OK) {
        ans = cli_reply_json(&r);
        tok = json_object_get(ans, "csrf_token");
        if (json_is_string(tok) && json_string_length(tok) <= CLI_CSRF_MAX && c->cookie_len > 0) {
            memcpy(c->csrf, json_string_value(tok), json_string_length(tok) + 1);
            c->session = true;
        } else {
            fprintf(stderr, "confidoc: the login answer has no session cookie or CSRF token\n");
            rc = CLI_EXIT_REFUSED;
        }
        json_decref(ans);
    }
    cli_reply_release(&r);
    return rc;
}

/* Opens a session for an account with two-factor login, after Basic was
 * refused for it. */
static int cli_second_factor(struct cli *c, const struct cli_reply *refusal)
{
    char code[16];

    if (!cli_code(c, "One-time code: ", code)) {
        cli_refused(refusal);
        fprintf(stderr, "confidoc: give a one-time code (--code, CONFIDOC_TOTP), or an "
                        "application password as CONFIDOC_PASSWORD\n");
        return CLI_EXIT_REFUSED;
    }
    return cli_login(c, code);
}

int cli_call(struct cli *c, const char *method, const char *path, const struct cli_body *b,
             struct cli_reply *r, bool progress)
{
    int rc;

    if (!c->session &&
        ((rc = cli_username(c)) != CLI_EXIT_OK || (rc = cli_password(c, false)) != CLI_EXIT_OK))
        return rc;
    if (!c->session && b != NULL && b->fd >= 0 && b->size == CLI_SIZE_UNKNOWN) {
        /* A pipe is sent once: settle how to authenticate first. */
        struct cli_reply pre;
        cli_reply_init(&pre, -1);
        rc = cli_call(c, "GET", "/users/me", NULL, &pre, false);
        cli_reply_release(&pre);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    rc = cli_net_request(c, c->session ? CLI_AUTH_SESSION : CLI_AUTH_BASIC, method, path, b, r,
                         progress);
    if (rc == CLI_EXIT_OK && !c->session && cli_wants_second_factor(r)) {
        if ((rc = cli_second_factor(c, r)) != CLI_EXIT_OK)
            return rc;
        buf_release(&r->body);
        rc = cli_net_request(c, CLI_AUTH_SESSION, method, path, b, r, progress);
    }
    if (rc == CLI_EXIT_OK && (r->status < 200 || r->status >= 300))
        rc = cli_refused(r);
    return rc;
}

json_t *cli_reply_json(const struct cli_reply *r)
{
    return r->body.p != NULL ? json_loadb(r->body.p, r->body.len, 0, NULL) : NULL;
}

int cli_get_json(struct cli *c, const char *path, json_t **out)
{
    struct cli_reply r;
    int rc;

    cli_reply_init(&r, -1);
    rc = cli_call(c, "GET", path, NULL, &r, false);
    *out = rc == CLI_EXIT_OK ? cli_reply_json(&r) : NULL;
    cli_reply_release(&r);
    return rc;
}

int cli_call_simple(struct cli *c, const char *method, const char *path)
{
    struct cli_reply r;
    int rc;

    cli_reply_init(&r, -1);
    rc = cli_call(c, method, path, NULL, &r, false);
    cli_reply_release(&r);
    return rc;
}

int cli_run(const struct cli_options *opts, int argc, char **argv)
{
    const struct cli_cmd *cmd = NULL;
    struct cli c;
    int rc;

    for (size_t i = 0; argc > 0 && i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++)
        if (strcmp(argv[0], cli_cmds[i].name) == 0)
            cmd = &cli_cmds[i];
    if (cmd == NULL) {
        if (argc > 0)
            fprintf(stderr, "confidoc: unknown command %s\n", argv[0]);
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (cmd->args >= 0 && argc != cmd->args + 1) {
        fprintf(stderr, "usage: confidoc %s\n", cmd->usage);
        return CLI_EXIT_USAGE;
    }
    if (opts->url == NULL) {
        fprintf(stderr, "confidoc: no service URL: use --url or CONFIDOC_URL\n");
        return CLI_EXIT_USAGE;
    }
    if (crypto_init() != CD_OK) {
        fprintf(stderr, "confidoc: libsodium cannot start\n");
        return CLI_EXIT_UNREACHABLE;
    }
    memset(&c, 0, sizeof(c));
    c.o = opts;
    c.cookie = crypto_secure_alloc(CLI_COOKIE_MAX + 1);
    if (c.cookie == NULL) {
        fprintf(stderr, "confidoc: cannot lock memory\n");
        return CLI_EXIT_UNREACHABLE;
    }
    if ((rc = cli_net_open(opts, &c.net)) != CLI_EXIT_OK)
        return rc;
    rc = cmd->run(&c, argc, argv);
    if (c.password != NULL)
        cli_secret_free(c.password, c.password_len);
    crypto_wipe(c.csrf, sizeof(c.csrf));
    crypto_secure_free(c.cookie);
    cli_net_close(c.net);
    return rc;
}
