/* cas_cmd_serve.c: confidoc-cas serve (the CAS as a service, casd/casd.h) and
 * serve-worker (its network worker, exec'ed by serve; not for operators). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/cas_cmds.h"
#include "casd/casd.h"
#include "common/num.h"
#include "log/log.h"

#define MAX_VARS 64

/* HOST:PORT or [V6]:PORT into host and port (pointers into s, which is modified). */
int cas_split_hostport(char *s, const char **host, const char **port)
{
    char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0')
        return -1;
    *colon = '\0';
    *port = colon + 1;
    if (s[0] == '[' && colon[-1] == ']') {
        colon[-1] = '\0';
        s++;
    }
    *host = s;
    return 0;
}

static bool is_hash(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (const char *c = s; *c != '\0'; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

static int serve_worker(int argc, char **argv)
{
    const char *user = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
            user = argv[++i];
        else
            return CAS_EXIT_POLICY;
    }
    log_init("confidoc-cas-worker", LOG_LEVEL_INFO);
    int status = casd_worker_main(CASD_WORKER_FD_LISTEN, CASD_WORKER_FD_IPC, user);
    /* The worker ends inside its sandbox: no atexit handler runs there (they
     * may need system calls the filter refuses). */
    fflush(NULL);
    _exit(status);
}

int cas_cmd_serve(const char *cmd, int argc, char **argv)
{
    const char *names[CASD_MAX_NAMES], *admins[16], *vnames[MAX_VARS], *vvalues[MAX_VARS];
    const char *recovery[SEAL_MAX_RECOVERY];
    char *owned[MAX_VARS], *listen = NULL;
    size_t nvars = 0;
    struct casd_serve_config c = {.names = names, .admins = admins};
    uint64_t threshold = 1;
    struct cd_diag *diag = NULL;
    int status = CAS_EXIT_POLICY;

    if (strcmp(cmd, "serve-worker") == 0)
        return serve_worker(argc, argv);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            goto usage;
        i++;
        if (strcmp(a, "--state") == 0) {
            c.state_dir = v;
        } else if (strcmp(a, "--listen") == 0) {
            free(listen);
            if ((listen = strdup(v)) == NULL)
                goto out;
        } else if (strcmp(a, "--name") == 0 && c.nnames < CASD_MAX_NAMES) {
            names[c.nnames++] = v;
        } else if (strcmp(a, "--admin") == 0 && c.nadmins < 16) {
            if (!is_hash(v)) {
                fprintf(stderr, "confidoc-cas: --admin expects a key hash (64 lowercase hex)\n");
                goto out;
            }
            admins[c.nadmins++] = v;
        } else if (strcmp(a, "--worker-user") == 0) {
            c.worker_user = v;
        } else if (strcmp(a, "--pidfile") == 0) {
            c.pidfile = v;
        } else if (strcmp(a, "--socket") == 0) {
            c.socket = v;
        } else if (strcmp(a, "--audit-log") == 0) {
            c.audit_log = v;
        } else if (strcmp(a, "--pin-out") == 0) {
            c.pin_out = v;
        } else if ((strcmp(a, "--sealing-key") == 0 || strcmp(a, "--sealing-keyring") == 0) &&
                   c.seal.name == NULL) {
            c.seal.kind = strcmp(a, "--sealing-key") == 0 ? SEAL_SOURCE_FILE : SEAL_SOURCE_KEYRING;
            c.seal.name = v;
        } else if (strcmp(a, "--recovery-key") == 0 && c.recovery.n < SEAL_MAX_RECOVERY) {
            recovery[c.recovery.n++] = v;
        } else if (strcmp(a, "--recovery-threshold") == 0) {
            if (num_parse(v, strlen(v), SEAL_MAX_RECOVERY, &threshold) != CD_OK || threshold == 0) {
                fprintf(stderr, "confidoc-cas: --recovery-threshold expects 1 to %d\n",
                        SEAL_MAX_RECOVERY);
                goto out;
            }
        } else if (strcmp(a, "--policies") == 0) {
            c.policies_dir = v;
        } else if (strcmp(a, "--var") == 0) {
            const char *eq = strchr(v, '=');
            if (eq == NULL || eq == v || nvars >= MAX_VARS) {
                fprintf(stderr, "confidoc-cas: --var expects NAME=VALUE (at most %d)\n", MAX_VARS);
                goto out;
            }
            if ((owned[nvars] = strndup(v, (size_t)(eq - v))) == NULL)
                goto out;
            vnames[nvars] = owned[nvars];
            vvalues[nvars++] = eq + 1;
        } else {
            goto usage;
        }
    }
    if (c.state_dir == NULL || listen == NULL ||
        cas_split_hostport(listen, &c.listen_host, &c.listen_port) != 0)
        goto usage;
    c.vars = (struct policy_vars){vnames, vvalues, nvars};
    c.recovery.pubkeys = recovery;
    c.recovery.threshold = (unsigned)threshold;
    if ((diag = malloc(sizeof(*diag))) == NULL) {
        status = CAS_EXIT_RUNTIME;
        goto out;
    }
    cd_diag_init(diag);
    cd_err err = casd_serve(&c, diag);
    if (err != CD_OK) {
        fputs(diag->text, stderr);
        if (diag->count == 0)
            fprintf(stderr, "confidoc-cas: %s\n", cd_strerror(err));
        status = err == CD_ERR_INVALID ? CAS_EXIT_POLICY : CAS_EXIT_RUNTIME;
    } else {
        status = 0;
    }
    goto out;
usage:
    cas_usage(stderr);
out:
    for (size_t i = 0; i < nvars; i++)
        free(owned[i]);
    free(listen);
    free(diag);
    return status;
}
