/* evidence_double.c: the "test" evidence verifier (evidence_double.h). */
#include "evidence_double.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

static const unsigned char test_key[32] = "confidoc evidence test key, pub";

static void tag(const unsigned char *data, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    if (HMAC(EVP_sha256(), test_key, sizeof(test_key), data, n, out, &len) == NULL || len != 32)
        memset(out, 0, 32);
}

void evidence_double_make(const unsigned char measurement[32],
                          const unsigned char report_data[EVIDENCE_REPORT_DATA_LEN],
                          unsigned char flags, unsigned char out[EVIDENCE_DOUBLE_LEN])
{
    memcpy(out, "CDTE", 4);
    memcpy(out + 4, measurement, 32);
    memcpy(out + 36, report_data, EVIDENCE_REPORT_DATA_LEN);
    out[100] = flags;
    tag(out, 101, out + 101);
}

static cd_err verify(const void *evidence, size_t len,
                     const unsigned char report_data[EVIDENCE_REPORT_DATA_LEN],
                     struct evidence_claims *out)
{
    const unsigned char *p = evidence;
    unsigned char want[32];

    if (len != EVIDENCE_DOUBLE_LEN || memcmp(p, "CDTE", 4) != 0 || p[100] > 1)
        return CD_ERR_INVALID;
    tag(p, 101, want);
    if (CRYPTO_memcmp(want, p + 101, 32) != 0)
        return CD_ERR_CRYPTO;
    if (CRYPTO_memcmp(p + 36, report_data, EVIDENCE_REPORT_DATA_LEN) != 0)
        return CD_ERR_CRYPTO;
    memset(out, 0, sizeof(*out));
    out->platform = EVIDENCE_PLATFORM_TEST;
    memcpy(out->measurement, p + 4, 32);
    out->measurement_len = 32;
    memcpy(out->report_data, p + 36, EVIDENCE_REPORT_DATA_LEN);
    out->flags = p[100] != 0 ? EVIDENCE_FLAG_DEBUG : 0;
    return CD_OK;
}

const struct evidence_verifier evidence_double = {"test", verify};
