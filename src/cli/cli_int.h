/* cli_int.h: what the files of src/cli share: the client context, one HTTP
 * exchange (net.c, the only file that sees libcurl), secrets from the
 * terminal or the environment (secret.c), the progress bar (progress.c) and
 * the commands (cmd_docs.c, cmd_account.c). Private to src/cli. */
#ifndef CONFIDOC_CLI_INT_H
#define CONFIDOC_CLI_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli/cli.h"
#include "common/buf.h"

#define CLI_USER_MAX 64
#define CLI_PASSWORD_MAX 1024
/* The largest JSON answer read into memory (a page of 100 documents is ~20 KB). */
#define CLI_REPLY_MAX ((size_t)1 << 20)
#define CLI_CSRF_MAX 128
/* The session cookie of /auth/login (the API's contract) and its longest value. */
#define CLI_SESSION_COOKIE "__Host-confidoc_session"
#define CLI_COOKIE_MAX 256

struct cli_net; /* net.c: the libcurl handle, reused so connections are kept alive */

/* How a request proves who it is. */
enum cli_auth {
    CLI_AUTH_NONE,    /* no credentials (recover) */
    CLI_AUTH_BASIC,   /* HTTP Basic with c->user and c->password */
    CLI_AUTH_SESSION, /* the session cookie of cli_login, and its CSRF token */
};

struct cli {
    const struct cli_options *o;
    struct cli_net *net;
    char user[CLI_USER_MAX + 1];
    char *password; /* locked memory (crypto_secure_alloc), NUL-terminated; NULL until asked */
    size_t password_len;
    bool session; /* cli_login succeeded: requests use the cookie */
    char *cookie; /* the session token (locked memory, CLI_COOKIE_MAX + 1) */
    size_t cookie_len;
    char csrf[CLI_CSRF_MAX + 1]; /* the session's CSRF token */
};

/* A request body: in memory (mem, len), or streamed from fd (size bytes,
 * from the file's start, or CLI_SIZE_UNKNOWN for a pipe; fd < 0: none). */
#define CLI_SIZE_UNKNOWN UINT64_MAX
struct cli_body {
    const char *ctype;
    const void *mem;
    size_t len;
    int fd;
    uint64_t size;
    bool if_none_match; /* If-None-Match: * (create only; 412 when it exists) */
};

/* The answer. A 2xx body goes to out_fd when it is >= 0 (a download);
 * anything else is kept in body (at most CLI_REPLY_MAX bytes). */
struct cli_reply {
    long status;
    struct buf body;
    int out_fd;
    char retry_after[16];
};

/* net.c */
int cli_net_open(const struct cli_options *o, struct cli_net **out); /* enum cli_exit */
void cli_net_close(struct cli_net *n);                               /* NULL is a no-op */
/* One exchange: method path (absolute path, with its query) on the service.
 * CLI_EXIT_OK when an answer came (any status; r filled), CLI_EXIT_UNREACHABLE
 * (after a message) when the service could not be reached, TLS failed or the
 * transfer broke off. progress: draw a bar on stderr (a terminal only). */
int cli_net_request(struct cli *c, enum cli_auth auth, const char *method, const char *path,
                    const struct cli_body *b, struct cli_reply *r, bool progress);
void cli_reply_init(struct cli_reply *r, int out_fd);
void cli_reply_release(struct cli_reply *r);

/* secret.c */
/* The password: CONFIDOC_PASSWORD, else asked on the terminal without echo
 * (twice when confirm). Into c->password (locked memory). enum cli_exit. */
int cli_password(struct cli *c, bool confirm);
/* A new secret asked on the terminal (twice), or from env (for scripts):
 * out is locked memory the caller frees with cli_secret_free. */
int cli_new_secret(const char *what, const char *env, char **out, size_t *len);
/* A short line (a one-time code) from the terminal, echoed; false when there is none. */
bool cli_ask_line(const char *prompt, char *out, size_t cap);
void cli_secret_free(char *s, size_t len);
/* The username: --user, CONFIDOC_USER, else asked on the terminal. enum cli_exit. */
int cli_username(struct cli *c);

/* progress.c: a bar on stderr while now of total bytes moved. */
void cli_progress_draw(uint64_t now, uint64_t total, bool upload);
void cli_progress_end(void);

/* cmd_account.c / cli.c */
/* Sends a request as the user: Basic first; when the account has two-factor
 * login and the password is the account's, logs in with a one-time code
 * (--code, CONFIDOC_TOTP or the terminal) and repeats it with the session.
 * Prints the service's detail and returns CLI_EXIT_REFUSED for any status
 * outside 2xx; CLI_EXIT_OK with r filled otherwise. */
int cli_call(struct cli *c, const char *method, const char *path, const struct cli_body *b,
             struct cli_reply *r, bool progress);
/* The answer's JSON (NULL when it is none); json_decref it. */
json_t *cli_reply_json(const struct cli_reply *r);
/* GET path through cli_call; *out is its JSON answer (NULL when none). */
int cli_get_json(struct cli *c, const char *path, json_t **out);
/* cli_call without a body, its answer dropped (DELETE ...). */
int cli_call_simple(struct cli *c, const char *method, const char *path);
/* Logs in (POST /auth/login) with the password and a one-time code. */
int cli_login(struct cli *c, const char *code);
/* Prints "confidoc: DETAIL (HTTP n)" for a refused answer; CLI_EXIT_REFUSED. */
int cli_refused(const struct cli_reply *r);
/* A one-time code: --code, CONFIDOC_TOTP, or asked on the terminal. */
bool cli_code(const struct cli *c, const char *prompt, char out[16]);

int cli_cmd_signup(struct cli *c, int argc, char **argv);
int cli_cmd_passwd(struct cli *c, int argc, char **argv);
int cli_cmd_totp(struct cli *c, int argc, char **argv);
int cli_cmd_app_password(struct cli *c, int argc, char **argv);
int cli_cmd_put(struct cli *c, int argc, char **argv);
int cli_cmd_get(struct cli *c, int argc, char **argv);
int cli_cmd_ls(struct cli *c, int argc, char **argv);
int cli_cmd_rm(struct cli *c, int argc, char **argv);

#endif
