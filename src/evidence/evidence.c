/* evidence.c: the registry of hardware-evidence verifiers and the checks that
 * hold whatever a verifier says (the binding, no debug TEE). */
#include "evidence/evidence.h"

#include <string.h>

#include "evidence/evidence_int.h"

/* Only verifiers that check the whole chain to the vendor's root belong here
 * (evidence.h); none does yet. The test double is never listed. */
static const struct evidence_verifier *const registry[] = {NULL};

const struct evidence_verifier *evidence_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
        if (registry[i] != NULL && strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

cd_err evidence_check(const struct evidence_verifier *v, const void *evidence, size_t len,
                      const unsigned char report_data[EVIDENCE_REPORT_DATA_LEN],
                      struct evidence_claims *out)
{
    struct evidence_claims c;
    cd_err err;

    if (v == NULL || v->verify == NULL || evidence == NULL || report_data == NULL || out == NULL)
        return CD_ERR_INVALID;
    if (len == 0 || len > EVIDENCE_MAX_LEN)
        return len == 0 ? CD_ERR_INVALID : CD_ERR_TOO_LARGE;
    memset(&c, 0, sizeof(c));
    err = v->verify(evidence, len, report_data, &c);
    if (err != CD_OK)
        return err;
    if (!evidence_equal(c.report_data, report_data, EVIDENCE_REPORT_DATA_LEN))
        return CD_ERR_CRYPTO; /* a verifier that forgot the binding: replayable evidence */
    if ((c.flags & EVIDENCE_FLAG_DEBUG) != 0 || c.measurement_len > EVIDENCE_MEASUREMENT_MAX ||
        c.signer_len > EVIDENCE_MEASUREMENT_MAX)
        return CD_ERR_CRYPTO;
    *out = c;
    return CD_OK;
}
