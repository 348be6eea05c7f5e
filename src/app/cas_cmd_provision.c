/* cas_cmd_provision.c: confidoc-cas provision, rotate and check: the offline
 * policy-driven key and certificate provisioner. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cas_cmds.h"
#include "cas/cas.h"
#include "common/num.h"

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
        return CAS_EXIT_RUNTIME;
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
        status = err == CD_ERR_INVALID ? CAS_EXIT_POLICY : CAS_EXIT_RUNTIME;
    }
    free(diag);
    return status;
}

int cas_cmd_provision(const char *cmd, int argc, char **argv)
{
    struct cas_vars vars = {.n = 0};
    struct cas_options o = {.out = stdout};
    int status = CAS_EXIT_RUNTIME;

    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--policies") == 0 && i + 1 < argc) {
            o.policies_dir = argv[++i];
        } else if (strcmp(a, "--state") == 0 && i + 1 < argc) {
            o.state_dir = argv[++i];
        } else if (strcmp(a, "--var") == 0 && i + 1 < argc) {
            if (!cas_vars_add(&vars, argv[++i]))
                goto out;
        } else if (strcmp(cmd, "rotate") == 0 && a[0] != '-' && o.rotate == NULL) {
            o.rotate = a;
        } else {
            cas_usage(stderr);
            status = CAS_EXIT_POLICY;
            goto out;
        }
    }
    if (o.policies_dir == NULL || (strcmp(cmd, "check") != 0 && o.state_dir == NULL) ||
        (strcmp(cmd, "rotate") == 0 && o.rotate == NULL)) {
        cas_usage(stderr);
        status = CAS_EXIT_POLICY;
        goto out;
    }
    o.vars = cas_vars_view(&vars);
    o.now = fake_now();
    status = run_command(cmd, &o);
out:
    cas_vars_free(&vars);
    return status;
}
