/* cas_cmd_recover.c: confidoc-cas recover: the state key unwrapped with
 * recovery private keys and sealed under a new sealing key (cas/seal.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cas_cmds.h"
#include "cas/seal.h"

static int usage_error(const char *cmd, const char *what)
{
    fprintf(stderr, "confidoc-cas %s: %s\n", cmd, what);
    cas_usage(stderr);
    return CAS_EXIT_POLICY;
}

int cas_cmd_recover(const char *cmd, int argc, char **argv)
{
    const char *state = NULL, *keys[SEAL_MAX_RECOVERY];
    struct seal_source src = {SEAL_SOURCE_FILE, NULL};
    size_t nkeys = 0;

    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool known = strcmp(a, "--state") == 0 || strcmp(a, "--recovery-key") == 0 ||
                     strcmp(a, "--sealing-key") == 0 || strcmp(a, "--sealing-keyring") == 0;
        if (known && i + 1 >= argc) {
            fprintf(stderr, "confidoc-cas %s: %s needs a value\n", cmd, a);
            return CAS_EXIT_POLICY;
        }
        if (strcmp(a, "--state") == 0 && state == NULL) {
            state = argv[++i];
        } else if (strcmp(a, "--recovery-key") == 0) {
            if (nkeys >= SEAL_MAX_RECOVERY)
                return usage_error(cmd, "too many --recovery-key options");
            keys[nkeys++] = argv[++i];
        } else if ((strcmp(a, "--sealing-key") == 0 || strcmp(a, "--sealing-keyring") == 0) &&
                   src.name == NULL) {
            src.kind = strcmp(a, "--sealing-key") == 0 ? SEAL_SOURCE_FILE : SEAL_SOURCE_KEYRING;
            src.name = argv[++i];
        } else {
            fprintf(stderr, "confidoc-cas %s: unexpected argument %s\n", cmd, a);
            cas_usage(stderr);
            return CAS_EXIT_POLICY;
        }
    }
    if (state == NULL || nkeys == 0 || src.name == NULL)
        return usage_error(cmd, "give --state DIR, --recovery-key PRIV (one or more) and "
                                "--sealing-key FILE or --sealing-keyring NAME");
    struct cd_diag *diag = malloc(sizeof(*diag));
    if (diag == NULL)
        return CAS_EXIT_RUNTIME;
    cd_diag_init(diag);
    cd_err err = seal_recover(state, keys, nkeys, &src, diag);
    if (err != CD_OK) {
        fputs(diag->text, stderr);
        fprintf(stderr, "confidoc-cas %s: the state in %s was not recovered: %s\n", cmd, state,
                cd_strerror(err));
    } else {
        printf("recovered the state key of %s/cas; it is now sealed under %s %s\n", state,
               src.kind == SEAL_SOURCE_FILE ? "key file" : "keyring key", src.name);
    }
    free(diag);
    return err == CD_OK ? 0 : err == CD_ERR_INVALID ? CAS_EXIT_POLICY : CAS_EXIT_RUNTIME;
}
