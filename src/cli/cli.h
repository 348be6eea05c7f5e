/* cli.h: the command-line client `confidoc` (src/app/confidoc_main.c): one
 * call per command against the service's REST API, over libcurl.
 *
 * Exit codes (enum cli_exit) are the interface scripts rely on: 0 success,
 * 1 the service refused (its detail on stderr), 2 usage, 3 the service could
 * not be reached or TLS failed. */
#ifndef CONFIDOC_CLI_H
#define CONFIDOC_CLI_H

#include <stdbool.h>
#include <stdio.h>

enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_REFUSED = 1,
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_UNREACHABLE = 3,
};

/* The global options, after the environment filled what the command line
 * left out (CONFIDOC_URL, CONFIDOC_CACERT, CONFIDOC_USER). */
struct cli_options {
    const char *url;    /* https://host:port, no trailing path */
    const char *cacert; /* CA file that verifies the service; NULL: the system's */
    const char *user;   /* NULL: asked for on the terminal */
    const char *code;   /* --code: a one-time code for a two-factor login */
    bool verbose;       /* --verbose: libcurl's trace, without credentials or bodies */
};

/* Runs the command argv[0] with its arguments; returns an enum cli_exit.
 * Messages go to stderr, results to stdout. */
int cli_run(const struct cli_options *opts, int argc, char **argv);

/* The usage text of every command, for --help and usage errors. */
void cli_usage(FILE *f);

#endif
