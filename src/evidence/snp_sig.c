/* snp_sig.c: the signature of an SEV-SNP report under a VCEK certificate's
 * key (ECDSA P-384, SHA-384; OpenSSL 3). The certificate itself is not
 * verified here (evidence.h). */
#include "evidence/evidence.h"

#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define VCEK_PEM_MAX ((size_t)16 * 1024)
#define SNP_SIG_COMPONENT 48 /* P-384: r and s are 48 bytes of their 72-byte fields */

/* r or s: 72 little-endian bytes, of which only the first 48 may be non-zero. */
static BIGNUM *le_component(const unsigned char *p)
{
    unsigned char be[SNP_SIG_COMPONENT];

    for (size_t i = SNP_SIG_COMPONENT; i < 72; i++)
        if (p[i] != 0)
            return NULL;
    for (size_t i = 0; i < SNP_SIG_COMPONENT; i++)
        be[i] = p[SNP_SIG_COMPONENT - 1 - i];
    return BN_bin2bn(be, SNP_SIG_COMPONENT, NULL);
}

/* The report's signature as DER, for EVP_DigestVerify. */
static cd_err der_signature(const struct evidence_snp_report *r, unsigned char **der, int *len)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *br = le_component(r->sig_r), *bs = le_component(r->sig_s);

    if (sig == NULL || br == NULL || bs == NULL || ECDSA_SIG_set0(sig, br, bs) != 1) {
        BN_free(br);
        BN_free(bs);
        ECDSA_SIG_free(sig);
        return CD_ERR_INVALID;
    }
    *der = NULL;
    *len = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);
    return *len > 0 ? CD_OK : CD_ERR_INVALID;
}

static EVP_PKEY *vcek_key(const char *pem, size_t len)
{
    BIO *bio;
    X509 *x;
    EVP_PKEY *k = NULL;
    char group[32];
    size_t glen = 0;

    if (pem == NULL || len == 0 || len > VCEK_PEM_MAX)
        return NULL;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return NULL;
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (x != NULL)
        k = X509_get_pubkey(x);
    X509_free(x);
    if (k != NULL &&
        (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
         EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &glen) != 1 ||
         strcmp(group, "secp384r1") != 0)) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    return k;
}

cd_err evidence_snp_check_signature(const void *report, size_t len, const char *vcek_pem,
                                    size_t pem_len)
{
    struct evidence_snp_report r;
    unsigned char *der = NULL;
    int derlen = 0;
    EVP_PKEY *k = NULL;
    EVP_MD_CTX *ctx = NULL;
    cd_err err = evidence_snp_parse(report, len, &r);

    if (err != CD_OK)
        return err;
    k = vcek_key(vcek_pem, pem_len);
    if (k == NULL)
        return CD_ERR_INVALID;
    err = der_signature(&r, &der, &derlen);
    if (err != CD_OK)
        goto out;
    ctx = EVP_MD_CTX_new();
    err = CD_ERR_CRYPTO;
    if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, EVP_sha384(), NULL, k) == 1 &&
        EVP_DigestVerify(ctx, der, (size_t)derlen, report, EVIDENCE_SNP_SIGNED_LEN) == 1)
        err = CD_OK;
out:
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    return err;
}
