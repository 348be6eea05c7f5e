/* cas_cmd_audit.c: confidoc-cas audit verify: checks a CAS audit log offline
 * (chain, sequence, signatures; optionally the pinned key and a sealed head). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cas_cmds.h"
#include "cas/audit.h"
#include "common/codec.h"
#include "common/num.h"

#define HEX_LEN 64

static bool is_hex64(const char *s)
{
    uint8_t raw[HEX_LEN / 2];
    return s != NULL && codec_hex_decode(s, strlen(s), raw, sizeof(raw)) == CD_OK;
}

/* "SEQ:HASH" into *out. */
static bool parse_head(const char *s, struct audit_head *out)
{
    const char *colon = strchr(s, ':');
    uint64_t seq;

    if (colon == NULL || num_parse(s, (size_t)(colon - s), UINT64_MAX - 1, &seq) != CD_OK ||
        !is_hex64(colon + 1))
        return false;
    out->seq = seq;
    snprintf(out->hash, sizeof(out->hash), "%s", colon + 1);
    return true;
}

static int verify(const char *file, const char *pin, const struct audit_head *expect)
{
    struct cd_diag *diag = malloc(sizeof(*diag));
    struct audit_head head;
    uint64_t bad_line = 0;
    cd_err err;

    if (diag == NULL)
        return CAS_EXIT_RUNTIME;
    cd_diag_init(diag);
    err = audit_verify(file, pin, expect, diag, &bad_line, &head);
    if (err == CD_OK) {
        printf("audit log %s: %" PRIu64 " entries, intact\n", file, head.seq + 1);
        printf("head: %" PRIu64 ":%s\n", head.seq, head.hash);
    } else {
        fputs(diag->text, stderr);
        if (diag->count == 0)
            fprintf(stderr, "audit log %s: %s\n", file, cd_strerror(err));
        if (bad_line > 0)
            fprintf(stderr, "audit log %s: first bad entry: line %" PRIu64 "\n", file, bad_line);
    }
    free(diag);
    return err == CD_OK ? 0 : CAS_EXIT_RUNTIME;
}

int cas_cmd_audit(const char *cmd, int argc, char **argv)
{
    const char *file = NULL, *pin = NULL;
    struct audit_head expect;
    bool have_expect = false;

    (void)cmd;
    if (argc < 3 || strcmp(argv[2], "verify") != 0)
        goto usage;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--pin") == 0 && i + 1 < argc) {
            pin = argv[++i];
            if (!is_hex64(pin)) {
                fprintf(stderr, "confidoc-cas: --pin expects 64 hex digits\n");
                return CAS_EXIT_POLICY;
            }
        } else if (strcmp(argv[i], "--head") == 0 && i + 1 < argc) {
            if (!parse_head(argv[++i], &expect)) {
                fprintf(stderr, "confidoc-cas: --head expects SEQ:SHA256HEX\n");
                return CAS_EXIT_POLICY;
            }
            have_expect = true;
        } else if (argv[i][0] != '-' && file == NULL) {
            file = argv[i];
        } else {
            goto usage;
        }
    }
    if (file == NULL)
        goto usage;
    return verify(file, pin, have_expect ? &expect : NULL);
usage:
    cas_usage(stderr);
    return CAS_EXIT_POLICY;
}
