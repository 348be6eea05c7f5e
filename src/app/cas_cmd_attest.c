/* cas_cmd_attest.c: confidoc-cas attest HOST:PORT --expect PIN [--ca-out FILE]:
 * checks that the CAS at HOST:PORT holds the identity key PIN names, and only
 * then writes the CA certificate that verifies it (casd/tls.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cas_cmds.h"
#include "cas/store.h"
#include "casd/tls.h"

int cas_cmd_attest(const char *cmd, int argc, char **argv)
{
    const char *pin = NULL, *ca_out = NULL, *host = NULL, *port = NULL;
    char *addr = NULL;
    struct pki_buf ca = {0};
    struct cd_diag *diag = NULL;
    int status = CAS_EXIT_POLICY;

    (void)cmd;
    signal(SIGPIPE, SIG_IGN);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc)
            pin = argv[++i];
        else if (strcmp(argv[i], "--ca-out") == 0 && i + 1 < argc)
            ca_out = argv[++i];
        else if (argv[i][0] != '-' && addr == NULL && (addr = strdup(argv[i])) == NULL)
            goto out;
        else if (addr == NULL || argv[i][0] == '-')
            goto usage;
    }
    if (addr == NULL || pin == NULL || cas_split_hostport(addr, &host, &port) != CD_OK)
        goto usage;
    status = CAS_EXIT_RUNTIME;
    if ((diag = malloc(sizeof(*diag))) == NULL)
        goto out;
    cd_diag_init(diag);
    cd_err err = casd_tls_attest(host, port, pin, 10, &ca, diag);
    if (err != CD_OK) {
        fputs(diag->text, stderr);
        fprintf(stderr, "confidoc-cas: the CAS at %s:%s does NOT match pin %s%s\n", host, port, pin,
                ca_out != NULL ? "; nothing written" : "");
        goto out;
    }
    if (ca_out != NULL) {
        bool changed = false;
        /* A temporary file in the same directory, renamed over FILE. */
        if ((err = store_write_file(ca_out, ca.data, ca.len, 0644, (uid_t)-1, (gid_t)-1,
                                    &changed)) != CD_OK) {
            fprintf(stderr, "confidoc-cas: cannot write %s: %s\n", ca_out, cd_strerror(err));
            goto out;
        }
    }
    printf("CAS at %s:%s matches pin %s\n", host, port, pin);
    status = 0;
    goto out;
usage:
    cas_usage(stderr);
out:
    pki_buf_release(&ca);
    free(diag);
    free(addr);
    return status;
}
