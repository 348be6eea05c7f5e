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

static int serve_worker(int argc, char **argv)
{
    const char *user = NULL;
    int metrics_fd = -1;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
            user = argv[++i];
        else if (strcmp(argv[i], "--metrics") == 0)
            metrics_fd = CASD_WORKER_FD_METRICS;
        else
            return CAS_EXIT_POLICY;
    }
    log_init("confidoc-cas-worker", LOG_LEVEL_INFO);
    int status = casd_worker_main(CASD_WORKER_FD_LISTEN, CASD_WORKER_FD_IPC, metrics_fd, user);
    /* The worker ends inside its sandbox: no atexit handler runs there (they
     * may need system calls the filter refuses). */
    fflush(NULL);
    _exit(status);
}

/* serve's options, parsed. */
struct serve_args {
    const char *names[CASD_MAX_NAMES], *admins[16], *nodes[CASD_MAX_NODES];
    const char *metrics_clients[CASD_MAX_METRICS_CLIENTS];
    const char *recovery[SEAL_MAX_RECOVERY];
    char *listen, *metrics_listen;
    struct cas_vars vars;
    uint64_t threshold;
    struct casd_serve_config c;
};

/* One option a with its value v; CAS_EXIT_* on a problem (printed), 0 otherwise. */
static int serve_option(struct serve_args *s, const char *a, const char *v)
{
    struct casd_serve_config *c = &s->c;

    if (strcmp(a, "--state") == 0) {
        c->state_dir = v;
    } else if (strcmp(a, "--listen") == 0) {
        free(s->listen);
        if ((s->listen = strdup(v)) == NULL)
            return CAS_EXIT_RUNTIME;
    } else if (strcmp(a, "--name") == 0 && c->nnames < CASD_MAX_NAMES) {
        s->names[c->nnames++] = v;
    } else if (strcmp(a, "--admin") == 0 && c->nadmins < 16) {
        if (!cas_is_hash(v)) {
            fprintf(stderr, "confidoc-cas: --admin expects a key hash (64 lowercase hex)\n");
            return CAS_EXIT_POLICY;
        }
        s->admins[c->nadmins++] = v;
    } else if (strcmp(a, "--node") == 0 && c->nnodes < CASD_MAX_NODES) {
        if (!cas_is_hash(v)) {
            fprintf(stderr, "confidoc-cas: --node expects a key hash (64 lowercase hex)\n");
            return CAS_EXIT_POLICY;
        }
        s->nodes[c->nnodes++] = v;
    } else if (strcmp(a, "--metrics-listen") == 0) {
        free(s->metrics_listen);
        if ((s->metrics_listen = strdup(v)) == NULL)
            return CAS_EXIT_RUNTIME;
    } else if (strcmp(a, "--metrics-client") == 0 &&
               c->nmetrics_clients < CASD_MAX_METRICS_CLIENTS) {
        if (!cas_is_hash(v)) {
            fprintf(stderr,
                    "confidoc-cas: --metrics-client expects a key hash (64 lowercase hex)\n");
            return CAS_EXIT_POLICY;
        }
        s->metrics_clients[c->nmetrics_clients++] = v;
    } else if (strcmp(a, "--worker-user") == 0) {
        c->worker_user = v;
    } else if (strcmp(a, "--pidfile") == 0) {
        c->pidfile = v;
    } else if (strcmp(a, "--socket") == 0) {
        c->socket = v;
    } else if (strcmp(a, "--audit-log") == 0) {
        c->audit_log = v;
    } else if (strcmp(a, "--pin-out") == 0) {
        c->pin_out = v;
    } else if ((strcmp(a, "--sealing-key") == 0 || strcmp(a, "--sealing-keyring") == 0) &&
               c->seal.name == NULL) {
        c->seal.kind = strcmp(a, "--sealing-key") == 0 ? SEAL_SOURCE_FILE : SEAL_SOURCE_KEYRING;
        c->seal.name = v;
    } else if (strcmp(a, "--recovery-key") == 0 && c->recovery.n < SEAL_MAX_RECOVERY) {
        s->recovery[c->recovery.n++] = v;
    } else if (strcmp(a, "--recovery-threshold") == 0) {
        if (num_parse(v, strlen(v), SEAL_MAX_RECOVERY, &s->threshold) != CD_OK ||
            s->threshold == 0) {
            fprintf(stderr, "confidoc-cas: --recovery-threshold expects 1 to %d\n",
                    SEAL_MAX_RECOVERY);
            return CAS_EXIT_POLICY;
        }
    } else if (strcmp(a, "--policies") == 0) {
        c->policies_dir = v;
    } else if (strcmp(a, "--var") == 0) {
        if (!cas_vars_add(&s->vars, v))
            return CAS_EXIT_POLICY;
    } else {
        cas_usage(stderr);
        return CAS_EXIT_POLICY;
    }
    return 0;
}

int cas_cmd_serve(const char *cmd, int argc, char **argv)
{
    struct serve_args *s = NULL;
    struct cd_diag *diag = NULL;
    int status = CAS_EXIT_RUNTIME;

    if (strcmp(cmd, "serve-worker") == 0)
        return serve_worker(argc, argv);
    if ((s = calloc(1, sizeof(*s))) == NULL || (diag = malloc(sizeof(*diag))) == NULL)
        goto out;
    s->threshold = 1;
    s->c.names = s->names;
    s->c.admins = s->admins;
    s->c.nodes = s->nodes;
    s->c.metrics_clients = s->metrics_clients;
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) {
            cas_usage(stderr);
            status = CAS_EXIT_POLICY;
            goto out;
        }
        if ((status = serve_option(s, argv[i], argv[i + 1])) != 0)
            goto out;
    }
    status = CAS_EXIT_POLICY;
    if (s->c.state_dir == NULL || s->listen == NULL ||
        cas_split_hostport(s->listen, &s->c.listen_host, &s->c.listen_port) != CD_OK) {
        cas_usage(stderr);
        goto out;
    }
    if (s->metrics_listen != NULL &&
        (cas_split_hostport(s->metrics_listen, &s->c.metrics_host, &s->c.metrics_port) != CD_OK ||
         s->c.nmetrics_clients == 0)) {
        fprintf(stderr, "confidoc-cas: --metrics-listen HOST:PORT needs at least one "
                        "--metrics-client KEYHASH\n");
        goto out;
    }
    s->c.vars = cas_vars_view(&s->vars);
    s->c.recovery.pubkeys = s->recovery;
    s->c.recovery.threshold = (unsigned)s->threshold;
    cd_diag_init(diag);
    cd_err err = casd_serve(&s->c, diag);
    if (err != CD_OK) {
        fputs(diag->text, stderr);
        if (diag->count == 0)
            fprintf(stderr, "confidoc-cas: %s\n", cd_strerror(err));
        status = err == CD_ERR_INVALID ? CAS_EXIT_POLICY : CAS_EXIT_RUNTIME;
    } else {
        status = 0;
    }
out:
    if (s != NULL) {
        cas_vars_free(&s->vars);
        free(s->listen);
        free(s->metrics_listen);
    }
    free(s);
    free(diag);
    return status;
}
