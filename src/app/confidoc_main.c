/* confidoc_main.c: the command-line client `confidoc` (man/confidoc.1):
 * global options and the environment, then one command (src/cli). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "cli/cli.h"

#define URL_MAX 2048

/* The service's base URL: https only, without a trailing slash. */
static int take_url(const char *in, char out[URL_MAX])
{
    size_t n = strlen(in);

    if (strncmp(in, "https://", 8) != 0 || n <= 8 || n >= URL_MAX) {
        fprintf(stderr, "confidoc: the URL must be https://HOST[:PORT] (got \"%s\")\n", in);
        return CLI_EXIT_USAGE;
    }
    memcpy(out, in, n + 1);
    while (n > 8 && out[n - 1] == '/')
        out[--n] = '\0';
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"url", required_argument, NULL, 'u'},
                                             {"cacert", required_argument, NULL, 'c'},
                                             {"user", required_argument, NULL, 'n'},
                                             {"code", required_argument, NULL, 't'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
    static char url[URL_MAX];
    const struct rlimit no_core = {0, 0};
    struct cli_options o = {getenv("CONFIDOC_URL"), getenv("CONFIDOC_CACERT"), NULL, NULL, false};
    int opt;

    /* Passwords and documents pass through this process: no core dumps, and
     * no ptrace by other processes of the same user. */
    (void)setrlimit(RLIMIT_CORE, &no_core);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    while ((opt = getopt_long(argc, argv, "+u:c:n:t:vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'u':
            o.url = optarg;
            break;
        case 'c':
            o.cacert = optarg;
            break;
        case 'n':
            o.user = optarg;
            break;
        case 't':
            o.code = optarg;
            break;
        case 'v':
            o.verbose = true;
            break;
        case 'h':
            cli_usage(stdout);
            return CLI_EXIT_OK;
        default:
            cli_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (o.url != NULL && o.url[0] != '\0') {
        if (take_url(o.url, url) != CLI_EXIT_OK)
            return CLI_EXIT_USAGE;
        o.url = url;
    } else {
        o.url = NULL;
    }
    if (o.cacert != NULL && o.cacert[0] == '\0')
        o.cacert = NULL;
    return cli_run(&o, argc - optind, argv + optind);
}
