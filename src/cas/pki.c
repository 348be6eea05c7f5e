/* pki.c: ECDSA P-256 keys and X.509 certificates with OpenSSL 3. */
#include "cas/pki.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/codec.h"

#define PKI_PEM_MAX ((size_t)64 * 1024)
#define SAN_TEXT_MAX 8192

void pki_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

void pki_buf_release(struct pki_buf *b)
{
    if (b == NULL)
        return;
    if (b->data != NULL) {
        pki_wipe(b->data, b->len);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
}

void pki_sha256_hex(const void *data, size_t len, char out[PKI_FP_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        memset(out, '0', PKI_FP_HEX - 1);
        out[PKI_FP_HEX - 1] = '\0';
        return;
    }
    codec_hex_encode(md, 32, out);
}

cd_err pki_random(unsigned char *buf, size_t n)
{
    if (n > INT32_MAX)
        return CD_ERR_INVALID;
    return RAND_priv_bytes(buf, (int)n) == 1 ? CD_OK : CD_ERR_CRYPTO;
}

cd_err pki_buf_copy(const void *p, size_t n, struct pki_buf *out)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        return CD_ERR_NOMEM;
    if (n > 0)
        memcpy(d, p, n);
    d[n] = '\0';
    out->data = d;
    out->len = n;
    return CD_OK;
}

/* Copies a memory BIO's content into out and wipes the BIO's copy. */
static cd_err bio_take(BIO *bio, struct pki_buf *out)
{
    char *mem = NULL;
    long n = BIO_get_mem_data(bio, &mem);
    if (n <= 0 || (size_t)n > PKI_PEM_MAX)
        return CD_ERR_CRYPTO;
    cd_err err = pki_buf_copy(mem, (size_t)n, out);
    pki_wipe(mem, (size_t)n);
    return err;
}

/* A read-only memory BIO over PEM text of a sane size, or NULL. */
static BIO *pem_bio(const char *pem, size_t len)
{
    if (pem == NULL || len == 0 || len > PKI_PEM_MAX)
        return NULL;
    return BIO_new_mem_buf(pem, (int)len);
}

static EVP_PKEY *read_key(const char *pem, size_t len)
{
    BIO *bio = pem_bio(pem, len);
    EVP_PKEY *k = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return k;
}

static X509 *read_cert(const char *pem, size_t len)
{
    BIO *bio = pem_bio(pem, len);
    X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return x;
}

cd_err pki_key_generate(struct pki_buf *pem_out)
{
    cd_err err = CD_ERR_CRYPTO;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *bio = NULL;

    if (k == NULL)
        goto out;
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        goto out;
    /* PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY"). */
    if (PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) != 1)
        goto out;
    err = bio_take(bio, pem_out); /* sets *pem_out only on success */
out:
    BIO_free(bio);
    EVP_PKEY_free(k);
    return err;
}

static cd_err pubkey_fp(EVP_PKEY *k, char fp_out[PKI_FP_HEX])
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    if (n <= 0)
        return CD_ERR_CRYPTO;
    pki_sha256_hex(der, (size_t)n, fp_out);
    OPENSSL_free(der);
    return CD_OK;
}

cd_err pki_key_fingerprint(const char *key_pem, size_t len, char fp_out[PKI_FP_HEX])
{
    EVP_PKEY *k = read_key(key_pem, len);
    if (k == NULL)
        return CD_ERR_CRYPTO;
    cd_err err = pubkey_fp(k, fp_out);
    EVP_PKEY_free(k);
    return err;
}

static cd_err add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (ext == NULL)
        return CD_ERR_CRYPTO;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? CD_OK : CD_ERR_CRYPTO;
}

static cd_err random_serial(X509 *x)
{
    unsigned char raw[16];
    cd_err err = CD_ERR_CRYPTO;
    BIGNUM *bn = NULL;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return CD_ERR_CRYPTO;
    raw[0] &= 0x7f; /* positive */
    raw[0] |= 0x40; /* and never shorter than 127 bits */
    bn = BN_bin2bn(raw, sizeof(raw), NULL);
    if (bn == NULL)
        goto out;
    if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        goto out;
    err = CD_OK;
out:
    BN_free(bn);
    return err;
}

static cd_err san_text(const struct pki_cert_req *req, char *out, size_t outlen)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < req->ndns + req->nip; i++) {
        const char *kind = i < req->ndns ? "DNS" : "IP";
        const char *v = i < req->ndns ? req->dns[i] : req->ip[i - req->ndns];
        int n = snprintf(out + len, outlen - len, "%s%s:%s", len > 0 ? "," : "", kind, v);
        if (n < 0 || (size_t)n >= outlen - len)
            return CD_ERR_TOO_LARGE;
        len += (size_t)n;
    }
    return CD_OK;
}

/* The extensions of a certificate: basic constraints, key usage, extended key
 * usage (leaves), key identifiers and the subject alternative names. */
static cd_err add_extensions(X509 *x, X509V3_CTX *ctx, const struct pki_cert_req *req)
{
    char san[SAN_TEXT_MAX];
    char bc[64];
    cd_err err;

    if (req->is_ca)
        snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d",
                 req->pathlen < 0 ? 0 : req->pathlen);
    else
        snprintf(bc, sizeof(bc), "critical,CA:FALSE");
    if ((err = add_ext(x, ctx, NID_basic_constraints, bc)) != CD_OK)
        return err;
    err = add_ext(x, ctx, NID_key_usage,
                  req->is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    if (err != CD_OK)
        return err;
    if (!req->is_ca && req->usage != 0) {
        const char *eku = (req->usage & PKI_USAGE_SERVER) && (req->usage & PKI_USAGE_CLIENT)
                              ? "serverAuth,clientAuth"
                          : (req->usage & PKI_USAGE_SERVER) ? "serverAuth"
                                                            : "clientAuth";
        if ((err = add_ext(x, ctx, NID_ext_key_usage, eku)) != CD_OK)
            return err;
    }
    if ((err = add_ext(x, ctx, NID_subject_key_identifier, "hash")) != CD_OK)
        return err;
    if ((err = add_ext(x, ctx, NID_authority_key_identifier, "keyid:always")) != CD_OK)
        return err;
    if (req->ndns + req->nip > 0) {
        if ((err = san_text(req, san, sizeof(san))) != CD_OK)
            return err;
        if ((err = add_ext(x, ctx, NID_subject_alt_name, san)) != CD_OK)
            return err;
    }
    return CD_OK;
}

cd_err pki_cert_issue(const struct pki_cert_req *req, const char *key_pem, size_t key_len,
                      const char *issuer_cert_pem, size_t issuer_cert_len,
                      const char *issuer_key_pem, size_t issuer_key_len, struct pki_buf *pem_out)
{
    cd_err err = CD_ERR_CRYPTO;
    EVP_PKEY *key = NULL, *ikey = NULL;
    X509 *x = NULL, *issuer = NULL;
    X509_NAME *name = NULL;
    BIO *bio = NULL;
    X509V3_CTX ctx;
    bool self_signed = issuer_cert_pem == NULL;

    if (req == NULL || req->common_name == NULL || req->validity_days == 0 ||
        (issuer_cert_pem == NULL) != (issuer_key_pem == NULL) || req->ndns > PKI_MAX_SANS ||
        req->nip > PKI_MAX_SANS) {
        err = CD_ERR_INVALID;
        goto out;
    }
    key = read_key(key_pem, key_len);
    if (key == NULL)
        goto out;
    if (self_signed) {
        ikey = key;
        EVP_PKEY_up_ref(ikey);
    } else {
        ikey = read_key(issuer_key_pem, issuer_key_len);
        issuer = read_cert(issuer_cert_pem, issuer_cert_len);
        if (ikey == NULL || issuer == NULL)
            goto out;
    }
    x = X509_new();
    name = X509_NAME_new();
    if (x == NULL || name == NULL)
        goto out;
    if (X509_set_version(x, X509_VERSION_3) != 1 || random_serial(x) != CD_OK)
        goto out;
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)req->common_name, -1, -1, 0) != 1)
        goto out;
    if (X509_set_subject_name(x, name) != 1)
        goto out;
    if (X509_set_issuer_name(x, self_signed ? name : X509_get_subject_name(issuer)) != 1)
        goto out;
    if (ASN1_TIME_adj(X509_getm_notBefore(x), req->now, 0, -300) == NULL ||
        ASN1_TIME_adj(X509_getm_notAfter(x), req->now, (int)req->validity_days, 0) == NULL)
        goto out;
    if (X509_set_pubkey(x, key) != 1)
        goto out;

    X509V3_set_ctx(&ctx, self_signed ? x : issuer, x, NULL, NULL, 0);
    if (self_signed && X509V3_set_issuer_pkey(&ctx, ikey) != 1)
        goto out;
    if ((err = add_extensions(x, &ctx, req)) != CD_OK)
        goto out;
    err = CD_ERR_CRYPTO;
    if (X509_sign(x, ikey, EVP_sha256()) <= 0)
        goto out;
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_X509(bio, x) != 1)
        goto out;
    err = bio_take(bio, pem_out); /* sets *pem_out only on success */
out:
    BIO_free(bio);
    X509_NAME_free(name);
    X509_free(x);
    X509_free(issuer);
    EVP_PKEY_free(ikey);
    EVP_PKEY_free(key);
    return err;
}

cd_err pki_cert_info(const char *cert_pem, size_t len, time_t *not_after, char fp_out[PKI_FP_HEX])
{
    cd_err err = CD_ERR_CRYPTO;
    X509 *x = read_cert(cert_pem, len);
    unsigned char *der = NULL;
    struct tm tm;

    if (x == NULL)
        goto out;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
        goto out;
    int n = i2d_X509(x, &der);
    if (n <= 0)
        goto out;
    pki_sha256_hex(der, (size_t)n, fp_out);
    *not_after = timegm(&tm);
    err = CD_OK;
out:
    OPENSSL_free(der);
    X509_free(x);
    return err;
}

cd_err pki_cert_matches_key(const char *cert_pem, size_t cert_len, const char *key_pem,
                            size_t key_len, bool *match)
{
    cd_err err = CD_ERR_CRYPTO;
    X509 *x = read_cert(cert_pem, cert_len);
    EVP_PKEY *k = read_key(key_pem, key_len);

    if (x == NULL || k == NULL)
        goto out;
    *match = X509_check_private_key(x, k) == 1;
    err = CD_OK;
out:
    X509_free(x);
    EVP_PKEY_free(k);
    return err;
}
