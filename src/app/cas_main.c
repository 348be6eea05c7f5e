/* cas_main.c: confidoc-cas: the command line of the policy-driven key and
 * certificate provisioner (provision, rotate, check). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "cas/cas.h"
#include "common/num.h"
#include "log/log.h"

#define MAX_VARS 64
#define EXIT_RUNTIME 1
#define EXIT_POLICY 2

static void usage(FILE *out)
{
    fprintf(out,
            "usage: confidoc-cas provision --policies DIR --state STATE [--var NAME=VALUE ...]\n"
            "       confidoc-cas rotate --policies DIR --state STATE POLICY/SECRET [--var ...]\n"
            "       confidoc-cas check --policies DIR [--var NAME=VALUE ...]\n"
            "A ${NAME} in a policy takes --var NAME=VALUE or CONFIDOC_CAS_VAR_NAME.\n"
            "Exit status: 0 success, 1 runtime error, 2 policy error.\n");
}

/* Keeps key material out of core dumps and away from ptrace by other users. */
static void harden(void)
{
    struct rlimit rl = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &rl);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    umask(077);
}

/* Test hook: CONFIDOC_CAS_NOW (seconds since the epoch) replaces the current
 * time in renewal decisions only. */
static time_t fake_now(void)
{
    const char *s = getenv("CONFIDOC_CAS_NOW");
    uint64_t v;
    if (s == NULL || num_parse(s, strlen(s), INT64_MAX, &v) != CD_OK || v == 0)
        return 0;
    return (time_t)v;
}

/* Runs cmd (check, provision or rotate) with o; prints what it found, the
 * diagnostics on stderr. Returns the exit status. */
static int run_command(const char *cmd, struct cas_options *o)
{
    struct cd_diag *diag = malloc(sizeof(*diag));
    int status;
    cd_err err;

    if (diag == NULL)
        return EXIT_RUNTIME;
    cd_diag_init(diag);
    if (strcmp(cmd, "check") == 0) {
        err = cas_check(o, diag);
    } else {
        struct cas_requester operator= {.kind = CAS_REQUESTER_OPERATOR};
        err = cas_provision(o, &operator, diag);
    }
    fflush(stdout);
    if (err == CD_OK) {
        status = 0;
        if (strcmp(cmd, "check") == 0)
            printf("policies in %s are valid\n", o->policies_dir);
    } else {
        fputs(diag->text, stderr);
        if (diag->count > 0 && diag->len >= sizeof(diag->text) - 1)
            fprintf(stderr, "confidoc-cas: %u errors in all\n", diag->count);
        if (diag->count == 0)
            fprintf(stderr, "confidoc-cas: %s\n", cd_strerror(err));
        status = err == CD_ERR_INVALID ? EXIT_POLICY : EXIT_RUNTIME;
    }
    free(diag);
    return status;
}

int main(int argc, char **argv)
{
    const char *names[MAX_VARS], *values[MAX_VARS];
    char *owned[MAX_VARS];
    size_t nvars = 0;
    struct cas_options o = {.out = stdout};
    const char *cmd = NULL;
    int status = EXIT_RUNTIME;

    log_init("confidoc-cas", LOG_LEVEL_INFO);
    harden();
    if (argc < 2) {
        usage(stderr);
        return EXIT_POLICY;
    }
    cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "provision") != 0 && strcmp(cmd, "rotate") != 0 && strcmp(cmd, "check") != 0) {
        usage(stderr);
        return EXIT_POLICY;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--policies") == 0 && i + 1 < argc) {
            o.policies_dir = argv[++i];
        } else if (strcmp(a, "--state") == 0 && i + 1 < argc) {
            o.state_dir = argv[++i];
        } else if (strcmp(a, "--var") == 0 && i + 1 < argc) {
            const char *eq = strchr(argv[i + 1], '=');
            if (eq == NULL || eq == argv[i + 1] || nvars >= MAX_VARS) {
                fprintf(stderr, "confidoc-cas: --var expects NAME=VALUE (at most %d)\n", MAX_VARS);
                goto out;
            }
            owned[nvars] = strndup(argv[i + 1], (size_t)(eq - argv[i + 1]));
            if (owned[nvars] == NULL)
                goto out;
            names[nvars] = owned[nvars];
            values[nvars] = eq + 1;
            nvars++;
            i++;
        } else if (strcmp(cmd, "rotate") == 0 && a[0] != '-' && o.rotate == NULL) {
            o.rotate = a;
        } else {
            usage(stderr);
            status = EXIT_POLICY;
            goto out;
        }
    }
    if (o.policies_dir == NULL || (strcmp(cmd, "check") != 0 && o.state_dir == NULL) ||
        (strcmp(cmd, "rotate") == 0 && o.rotate == NULL)) {
        usage(stderr);
        status = EXIT_POLICY;
        goto out;
    }
    o.vars.names = names;
    o.vars.values = values;
    o.vars.n = nvars;
    o.now = fake_now();
    status = run_command(cmd, &o);
out:
    for (size_t i = 0; i < nvars; i++)
        free(owned[i]);
    return status;
}
