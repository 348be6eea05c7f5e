/* fuzz_audit.c: audit_verify_buffer (the strict line parser and the chain
 * checks of confidoc-cas audit verify) on an arbitrary log.
 *
 * The seed corpus is a log written by the audit module, so mutations reach
 * past the genesis line. Nothing may crash or leak; the answer is CD_OK,
 * CD_ERR_INVALID, CD_ERR_CRYPTO or CD_ERR_NOMEM; a failure names its first bad
 * line (1 <= line <= lines + 1) in a message that says "line N:", success names
 * none and reports a head within the input; the same bytes give the same
 * answer again, also with a pin and a sealed head. */
#include "fuzz_common.h"

#include <inttypes.h>

#include "cas/audit.h"

static size_t count_lines(const uint8_t *data, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < size; i++)
        n += data[i] == '\n';
    return n + (size > 0 && data[size - 1] != '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cd_diag d, d2;
    struct audit_head head = {0}, head2 = {0};
    uint64_t bad = 0, bad2 = 0;
    char want[64];
    size_t lines = count_lines(data, size);

    cd_diag_init(&d);
    cd_err rc = audit_verify_buffer("f", (const char *)data, size, NULL, NULL, &d, &bad, &head);
    FUZZ_CHECK(rc == CD_OK || rc == CD_ERR_INVALID || rc == CD_ERR_CRYPTO || rc == CD_ERR_NOMEM);
    if (rc == CD_OK) {
        FUZZ_CHECK(bad == 0 && d.count == 0);
        FUZZ_CHECK(head.seq + 1 == lines);
    } else if (rc != CD_ERR_NOMEM) {
        FUZZ_CHECK(bad >= 1 && bad <= lines + 1);
        snprintf(want, sizeof(want), "audit log f: line %" PRIu64 ": ", bad);
        FUZZ_CHECK(strncmp(d.text, want, strlen(want)) == 0);
    }

    /* again, against its own head and a pin nobody has: the same first bad
     * line, or line 1 (the pin) for a log that verified */
    cd_diag_init(&d2);
    cd_err rc2 =
        audit_verify_buffer("f", (const char *)data, size,
                            "0000000000000000000000000000000000000000000000000000000000000000",
                            rc == CD_OK ? &head : NULL, &d2, &bad2, &head2);
    if (rc != CD_ERR_NOMEM && rc2 != CD_ERR_NOMEM) {
        FUZZ_CHECK(rc2 != CD_OK);
        FUZZ_CHECK(rc == CD_OK ? bad2 == 1 : bad2 <= bad);
    }
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
