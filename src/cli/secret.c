/* secret.c: passwords and one-time codes from the environment or the
 * terminal. A password is read into locked memory (crypto_secure_alloc),
 * with echo off on /dev/tty, and wiped when the run ends. */
#include "cli/cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "crypto/crypto.h"

/* The terminal's settings while echo is off, restored on SIGINT/SIGTERM too. */
static struct termios cli_saved_tty;
static volatile sig_atomic_t cli_tty_fd = -1;

static void cli_restore_tty(int sig)
{
    if (cli_tty_fd >= 0)
        (void)tcsetattr(cli_tty_fd, TCSAFLUSH, &cli_saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads one line from the terminal into out (cap bytes, NUL-terminated, no
 * newline); echo off when hidden. -1 when there is no terminal or the line
 * does not fit. */
static ssize_t cli_tty_line(const char *prompt, bool hidden, char *out, size_t cap)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    struct sigaction sa, old_int, old_term;
    struct termios t;
    size_t n = 0;
    bool too_long = false;
    char ch;

    if (fd < 0)
        return -1;
    /* Echo goes off before the prompt is shown, so nothing typed after the
     * prompt is echoed (TCSAFLUSH drops what was typed before it). */
    if (hidden && tcgetattr(fd, &cli_saved_tty) == 0) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = cli_restore_tty;
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        t = cli_saved_tty;
        t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        t.c_lflag |= ICANON;
        cli_tty_fd = fd;
        (void)tcsetattr(fd, TCSAFLUSH, &t);
    } else {
        hidden = false;
    }
    (void)!write(fd, prompt, strlen(prompt));
    for (;;) {
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || ch == '\n')
            break;
        if (n + 1 < cap)
            out[n++] = ch;
        else
            too_long = true;
    }
    out[n] = '\0';
    ch = 0;
    if (hidden) {
        (void)tcsetattr(fd, TCSAFLUSH, &cli_saved_tty);
        cli_tty_fd = -1;
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        (void)!write(fd, "\n", 1);
    }
    close(fd);
    if (too_long) {
        crypto_wipe(out, cap);
        return -1;
    }
    return (ssize_t)n;
}

void cli_secret_free(char *s, size_t len)
{
    (void)len;
    crypto_secure_free(s); /* wipes */
}

/* A secret from env, else from the terminal (twice when confirm). */
static int cli_secret(const char *what, const char *env, bool confirm, char **out, size_t *len)
{
    const char *v = env != NULL ? getenv(env) : NULL;
    char *s = crypto_secure_alloc(CLI_PASSWORD_MAX + 2);
    char *again = NULL;
    char prompt[96];
    ssize_t n;

    if (s == NULL) {
        fprintf(stderr, "confidoc: cannot lock memory for the %s\n", what);
        return CLI_EXIT_USAGE;
    }
    if (v != NULL) {
        n = (ssize_t)strlen(v);
        if ((size_t)n > CLI_PASSWORD_MAX)
            goto too_long;
        memcpy(s, v, (size_t)n + 1);
        *out = s;
        *len = (size_t)n;
        return CLI_EXIT_OK;
    }
    snprintf(prompt, sizeof(prompt), "%c%s: ", what[0] - ('a' - 'A'), what + 1);
    n = cli_tty_line(prompt, true, s, CLI_PASSWORD_MAX + 2);
    if (n < 0)
        goto no_tty;
    if (confirm) {
        again = crypto_secure_alloc(CLI_PASSWORD_MAX + 2);
        snprintf(prompt, sizeof(prompt), "Repeat the %s: ", what);
        if (again == NULL || cli_tty_line(prompt, true, again, CLI_PASSWORD_MAX + 2) != n ||
            !crypto_equal(s, again, (size_t)n)) {
            crypto_secure_free(again);
            crypto_secure_free(s);
            fprintf(stderr, "confidoc: the two entries differ\n");
            return CLI_EXIT_USAGE;
        }
        crypto_secure_free(again);
    }
    *out = s;
    *len = (size_t)n;
    return CLI_EXIT_OK;
too_long:
    crypto_secure_free(s);
    fprintf(stderr, "confidoc: the %s is longer than %d bytes\n", what, CLI_PASSWORD_MAX);
    return CLI_EXIT_USAGE;
no_tty:
    crypto_secure_free(s);
    fprintf(stderr, "confidoc: no %s: set %s or run on a terminal\n", what,
            env != NULL ? env : "it");
    return CLI_EXIT_USAGE;
}

int cli_password(struct cli *c, bool confirm)
{
    if (c->password != NULL)
        return CLI_EXIT_OK;
    return cli_secret("password", "CONFIDOC_PASSWORD", confirm, &c->password, &c->password_len);
}

int cli_new_secret(const char *what, const char *env, char **out, size_t *len)
{
    return cli_secret(what, env, true, out, len);
}

bool cli_ask_line(const char *prompt, char *out, size_t cap)
{
    return cli_tty_line(prompt, false, out, cap) > 0;
}

int cli_username(struct cli *c)
{
    const char *u = c->o->user != NULL ? c->o->user : getenv("CONFIDOC_USER");
    size_t n;

    if (u != NULL) {
        n = strlen(u);
        if (n == 0 || n > CLI_USER_MAX) {
            fprintf(stderr, "confidoc: a username has 1 to %d characters\n", CLI_USER_MAX);
            return CLI_EXIT_USAGE;
        }
        memcpy(c->user, u, n + 1);
        return CLI_EXIT_OK;
    }
    if (!cli_ask_line("Username: ", c->user, sizeof(c->user))) {
        fprintf(stderr, "confidoc: no username: use --user or CONFIDOC_USER\n");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}
