/* binding.c: the binding of evidence to a request (SHA-512 with OpenSSL) and
 * the module's constant-time comparison. */
#include "evidence/evidence.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "evidence/evidence_int.h"

#define BINDING_LABEL "confidoc-evidence-v1"

bool evidence_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

cd_err evidence_binding(const unsigned char nonce[EVIDENCE_NONCE_LEN],
                        const unsigned char exe[EVIDENCE_HASH_LEN],
                        const unsigned char (*configs)[EVIDENCE_HASH_LEN], size_t nconfigs,
                        unsigned char out[EVIDENCE_REPORT_DATA_LEN])
{
    unsigned char count[4];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx;
    bool ok;

    if (nonce == NULL || exe == NULL || out == NULL || (nconfigs > 0 && configs == NULL))
        return CD_ERR_INVALID;
    if (nconfigs > EVIDENCE_MAX_CONFIGS)
        return CD_ERR_TOO_LARGE;
    count[0] = (unsigned char)(nconfigs >> 24);
    count[1] = (unsigned char)(nconfigs >> 16);
    count[2] = (unsigned char)(nconfigs >> 8);
    count[3] = (unsigned char)nconfigs;
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return CD_ERR_NOMEM;
    /* the label with its NUL separates it from the fixed-size fields after it */
    ok = EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, BINDING_LABEL, sizeof(BINDING_LABEL)) == 1 &&
         EVP_DigestUpdate(ctx, nonce, EVIDENCE_NONCE_LEN) == 1 &&
         EVP_DigestUpdate(ctx, exe, EVIDENCE_HASH_LEN) == 1 &&
         EVP_DigestUpdate(ctx, count, sizeof(count)) == 1;
    for (size_t i = 0; ok && i < nconfigs; i++)
        ok = EVP_DigestUpdate(ctx, configs[i], EVIDENCE_HASH_LEN) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, out, &mdlen) == 1 && mdlen == EVIDENCE_REPORT_DATA_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? CD_OK : CD_ERR_CRYPTO;
}
