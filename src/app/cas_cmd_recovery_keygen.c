/* cas_cmd_recovery_keygen.c: confidoc-cas recovery-keygen: a new X25519
 * recovery key pair for the sealed state (cas/seal.h). */
#include <stdio.h>
#include <string.h>

#include "app/cas_cmds.h"
#include "cas/seal.h"

int cas_cmd_recovery_keygen(const char *cmd, int argc, char **argv)
{
    const char *priv = NULL, *pub = NULL;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--private") == 0 && i + 1 < argc && priv == NULL) {
            priv = argv[++i];
        } else if (strcmp(argv[i], "--public") == 0 && i + 1 < argc && pub == NULL) {
            pub = argv[++i];
        } else {
            fprintf(stderr, "confidoc-cas %s: unexpected argument %s\n", cmd, argv[i]);
            cas_usage(stderr);
            return CAS_EXIT_POLICY;
        }
    }
    if (priv == NULL || pub == NULL || strcmp(priv, pub) == 0) {
        fprintf(stderr, "confidoc-cas %s: give --private FILE and --public FILE (two files)\n",
                cmd);
        return CAS_EXIT_POLICY;
    }
    cd_err err = seal_recovery_keygen(priv, pub);
    if (err != CD_OK) {
        fprintf(stderr, "confidoc-cas %s: cannot create %s and %s: %s\n", cmd, priv, pub,
                err == CD_ERR_EXISTS ? "a file of that name exists (never overwritten)"
                                     : cd_strerror(err));
        return CAS_EXIT_RUNTIME;
    }
    printf("recovery key pair created: private %s (0600, keep it offline), public %s\n", priv, pub);
    return 0;
}
