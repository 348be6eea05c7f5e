/* cas_cmd_node_agent.c: confidoc-cas node-agent, the node's local attestation
 * for the CAS (casd/agent.h), and its liveness check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/cas_cmds.h"
#include "casd/agent.h"
#include "log/log.h"

/* "https://HOST:PORT" split in place (s is modified). */
static cd_err split_url(char *s, const char **host, const char **port)
{
    if (strncmp(s, "https://", 8) != 0)
        return CD_ERR_INVALID;
    size_t n = strlen(s + 8);
    if (n > 0 && s[8 + n - 1] == '/')
        s[8 + n - 1] = '\0';
    return cas_split_hostport(s + 8, host, port);
}

int cas_cmd_node_agent(const char *cmd, int argc, char **argv)
{
    struct casd_agent_config c = {.socket = NULL};
    char *url = NULL;
    bool check = false;
    int status = CAS_EXIT_POLICY;

    (void)cmd;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--check") == 0) {
            check = true;
            continue;
        }
        if (v == NULL)
            goto usage;
        i++;
        if (strcmp(a, "--socket") == 0) {
            c.socket = v;
        } else if (strcmp(a, "--cas") == 0) {
            free(url);
            if ((url = strdup(v)) == NULL)
                return CAS_EXIT_RUNTIME;
        } else if (strcmp(a, "--cas-pin") == 0 && cas_is_hash(v)) {
            c.cas_pin = v;
        } else if (strcmp(a, "--identity-cert") == 0) {
            c.identity_cert = v;
        } else if (strcmp(a, "--identity-key") == 0) {
            c.identity_key = v;
        } else {
            goto usage;
        }
    }
    if (c.socket == NULL)
        goto usage;
    if (check) {
        cd_err err = casd_agent_check(c.socket);
        if (err != CD_OK)
            fprintf(stderr, "confidoc-cas node-agent --check: no answer on %s: %s\n", c.socket,
                    cd_strerror(err));
        free(url);
        return err == CD_OK ? 0 : CAS_EXIT_RUNTIME;
    }
    if (url == NULL || c.cas_pin == NULL || split_url(url, &c.cas_host, &c.cas_port) != CD_OK)
        goto usage;
    c.node_name = getenv("CONFIDOC_NODE_NAME");
    log_init("confidoc-node-agent", LOG_LEVEL_INFO);
    struct cd_diag *diag = malloc(sizeof(*diag));
    status = CAS_EXIT_RUNTIME;
    if (diag != NULL) {
        cd_diag_init(diag);
        cd_err err = casd_agent_run(&c, diag);
        if (err != CD_OK) {
            fputs(diag->text, stderr);
            if (diag->count == 0)
                fprintf(stderr, "confidoc-cas: node-agent: %s\n", cd_strerror(err));
        }
        status = err == CD_OK ? 0 : err == CD_ERR_CONFIG ? CAS_EXIT_POLICY : CAS_EXIT_RUNTIME;
    }
    free(diag);
    free(url);
    /* The agent ends inside its seccomp filter: no atexit handler runs there
     * (a leak checker's would need ptrace, which the filter refuses). */
    fflush(NULL);
    _exit(status);
usage:
    free(url);
    cas_usage(stderr);
    return status;
}
