/* cas_cmd_import.c: confidoc-cas import-plaintext: the plaintext store of
 * offline provisioning (an older stack's STATE/cas) sealed in place, at the
 * service's first start, so that no CA or key is lost (cas/store.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cas_cmds.h"
#include "cas/seal.h"
#include "cas/store.h"
#include "common/num.h"

static int import_usage(const char *cmd, const char *what)
{
    fprintf(stderr, "confidoc-cas %s: %s\n", cmd, what);
    cas_usage(stderr);
    return CAS_EXIT_POLICY;
}

static int import_run(const char *cmd, const char *state, const struct seal_source *src,
                      const struct seal_recovery *rec, struct cd_diag *diag)
{
    struct seal_key *key = NULL;
    size_t n = 0;
    cd_err err = seal_open(state, src, rec, diag, &key);

    if (err == CD_OK) {
        cd_diag_init(diag); /* notes of a first start (no recovery keys, ...) */
        err = store_import_plaintext(state, key, &n, diag);
    }
    seal_key_free(key);
    if (err != CD_OK) {
        fputs(diag->text, stderr);
        fprintf(stderr, "confidoc-cas %s: the store in %s/cas was not sealed: %s\n", cmd, state,
                cd_strerror(err));
        return CAS_EXIT_RUNTIME;
    }
    printf("sealed %zu plaintext files of %s/cas\n", n, state);
    return 0;
}

int cas_cmd_import(const char *cmd, int argc, char **argv)
{
    const char *state = NULL, *keys[SEAL_MAX_RECOVERY];
    struct seal_source src = {SEAL_SOURCE_FILE, NULL};
    struct seal_recovery rec = {keys, 0, 1};
    uint64_t threshold = 1;

    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            return import_usage(cmd, "every option needs a value");
        const char *v = argv[++i];
        if (strcmp(a, "--state") == 0 && state == NULL) {
            state = v;
        } else if ((strcmp(a, "--sealing-key") == 0 || strcmp(a, "--sealing-keyring") == 0) &&
                   src.name == NULL) {
            src.kind = strcmp(a, "--sealing-key") == 0 ? SEAL_SOURCE_FILE : SEAL_SOURCE_KEYRING;
            src.name = v;
        } else if (strcmp(a, "--recovery-key") == 0 && rec.n < SEAL_MAX_RECOVERY) {
            keys[rec.n++] = v;
        } else if (strcmp(a, "--recovery-threshold") == 0) {
            if (num_parse(v, strlen(v), SEAL_MAX_RECOVERY, &threshold) != CD_OK || threshold == 0)
                return import_usage(cmd, "--recovery-threshold expects 1 to 16");
        } else {
            return import_usage(cmd, "unexpected argument");
        }
    }
    if (state == NULL || src.name == NULL)
        return import_usage(cmd,
                            "give --state DIR and --sealing-key FILE or --sealing-keyring NAME");
    rec.threshold = (unsigned)threshold;
    struct cd_diag *diag = malloc(sizeof(*diag));
    if (diag == NULL)
        return CAS_EXIT_RUNTIME;
    cd_diag_init(diag);
    int rc = import_run(cmd, state, &src, &rec, diag);
    free(diag);
    return rc;
}
