/* test_cas_pki.c: keys and certificates made by the CAS PKI module, checked
 * with OpenSSL: chain verification, SANs, usages, key match, CA constraints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cas/pki.h"

static X509 *load(const struct pki_buf *b)
{
    BIO *bio = BIO_new_mem_buf(b->data, (int)b->len);
    assert_non_null(bio);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(x);
    return x;
}

struct fixture {
    struct pki_buf ca_key, ca_crt, leaf_key, leaf_crt, client_key, client_crt;
    time_t now;
};

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    f.now = time(NULL);
    struct pki_cert_req ca = {
        .common_name = "test CA", .is_ca = true, .pathlen = 0, .validity_days = 3650, .now = f.now};
    const char *dns[] = {"localhost", "api.example"};
    const char *ip[] = {"127.0.0.1", "::1"};
    struct pki_cert_req leaf = {.common_name = "confidoc-api",
                                .usage = PKI_USAGE_SERVER,
                                .dns = dns,
                                .ndns = 2,
                                .ip = ip,
                                .nip = 2,
                                .validity_days = 397,
                                .now = f.now};
    struct pki_cert_req client = {.common_name = "confidoc-proxy",
                                  .usage = PKI_USAGE_CLIENT,
                                  .validity_days = 30,
                                  .now = f.now};
    if (pki_key_generate(&f.ca_key) != CD_OK || pki_key_generate(&f.leaf_key) != CD_OK ||
        pki_key_generate(&f.client_key) != CD_OK)
        return -1;
    if (pki_cert_issue(&ca, f.ca_key.data, f.ca_key.len, NULL, 0, NULL, 0, &f.ca_crt) != CD_OK)
        return -1;
    if (pki_cert_issue(&leaf, f.leaf_key.data, f.leaf_key.len, f.ca_crt.data, f.ca_crt.len,
                       f.ca_key.data, f.ca_key.len, &f.leaf_crt) != CD_OK)
        return -1;
    if (pki_cert_issue(&client, f.client_key.data, f.client_key.len, f.ca_crt.data, f.ca_crt.len,
                       f.ca_key.data, f.ca_key.len, &f.client_crt) != CD_OK)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pki_buf_release(&f->ca_key);
    pki_buf_release(&f->ca_crt);
    pki_buf_release(&f->leaf_key);
    pki_buf_release(&f->leaf_crt);
    pki_buf_release(&f->client_key);
    pki_buf_release(&f->client_crt);
    return 0;
}

static int verify(X509 *ca, X509 *leaf, int purpose)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(st);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(st, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, NULL), 1);
    if (purpose != 0)
        X509_STORE_CTX_set_purpose(ctx, purpose);
    int rc = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    return rc;
}

static void test_key_pem(void **state)
{
    struct fixture *f = *state;
    char fp1[PKI_FP_HEX], fp2[PKI_FP_HEX];
    /* PKCS#8 */
    assert_non_null(strstr(f->ca_key.data, "-----BEGIN PRIVATE KEY-----"));
    assert_int_equal(pki_key_fingerprint(f->ca_key.data, f->ca_key.len, fp1), CD_OK);
    assert_int_equal(pki_key_fingerprint(f->leaf_key.data, f->leaf_key.len, fp2), CD_OK);
    assert_int_equal(strlen(fp1), 64);
    assert_string_not_equal(fp1, fp2);
    BIO *bio = BIO_new_mem_buf(f->ca_key.data, (int)f->ca_key.len);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    assert_non_null(k);
    assert_true(EVP_PKEY_is_a(k, "EC"));
    char group[32];
    size_t glen = 0;
    assert_int_equal(EVP_PKEY_get_group_name(k, group, sizeof(group), &glen), 1);
    assert_string_equal(group, "prime256v1");
    EVP_PKEY_free(k);
    BIO_free(bio);
}

static void test_chain_verifies(void **state)
{
    struct fixture *f = *state;
    X509 *ca = load(&f->ca_crt), *leaf = load(&f->leaf_crt), *client = load(&f->client_crt);
    assert_int_equal(verify(ca, leaf, X509_PURPOSE_SSL_SERVER), 1);
    assert_int_equal(verify(ca, client, X509_PURPOSE_SSL_CLIENT), 1);
    /* usages are enforced: a client certificate is no server certificate */
    assert_int_not_equal(verify(ca, client, X509_PURPOSE_SSL_SERVER), 1);
    assert_int_not_equal(verify(ca, leaf, X509_PURPOSE_SSL_CLIENT), 1);
    /* an unrelated CA does not verify */
    struct pki_buf k2 = {0}, c2 = {0};
    struct pki_cert_req req = {
        .common_name = "test CA", .is_ca = true, .validity_days = 10, .now = f->now};
    assert_int_equal(pki_key_generate(&k2), CD_OK);
    assert_int_equal(pki_cert_issue(&req, k2.data, k2.len, NULL, 0, NULL, 0, &c2), CD_OK);
    X509 *other = load(&c2);
    assert_int_not_equal(verify(other, leaf, 0), 1);
    X509_free(other);
    pki_buf_release(&k2);
    pki_buf_release(&c2);
    X509_free(ca);
    X509_free(leaf);
    X509_free(client);
}

static void test_sans_and_names(void **state)
{
    struct fixture *f = *state;
    X509 *leaf = load(&f->leaf_crt);
    assert_int_equal(X509_check_host(leaf, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(leaf, "api.example", 0, 0, NULL), 1);
    assert_int_not_equal(X509_check_host(leaf, "evil.example", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "::1", 0), 1);
    assert_int_not_equal(X509_check_ip_asc(leaf, "10.0.0.1", 0), 1);
    char cn[128];
    X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "confidoc-api");
    X509_NAME_get_text_by_NID(X509_get_issuer_name(leaf), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "test CA");
    /* serial: 128 random bits, positive */
    const ASN1_INTEGER *serial = X509_get0_serialNumber(leaf);
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    assert_true(BN_num_bits(bn) >= 120 && BN_num_bits(bn) <= 128);
    assert_false(BN_is_negative(bn));
    BN_free(bn);
    assert_int_equal(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA256);
    X509_free(leaf);
}

static void test_usages(void **state)
{
    struct fixture *f = *state;
    X509 *ca = load(&f->ca_crt), *leaf = load(&f->leaf_crt), *client = load(&f->client_crt);
    assert_int_equal(X509_check_ca(ca), 1);
    assert_int_equal(X509_check_ca(leaf), 0);
    assert_true(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE);
    assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER);
    assert_int_equal(X509_get_extended_key_usage(client), XKU_SSL_CLIENT);
    assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    /* CA constraints: critical CA:TRUE, pathlen 0 */
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    assert_true(bc->ca);
    assert_non_null(bc->pathlen);
    assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
    BASIC_CONSTRAINTS_free(bc);
    /* key identifiers present; the leaf's AKID is the CA's SKID */
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(ca);
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(leaf);
    assert_non_null(skid);
    assert_non_null(akid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(skid, akid), 0);
    assert_non_null(X509_get0_subject_key_id(leaf));
    /* validity: notBefore five minutes back; notAfter by validity_days */
    time_t not_after = 0;
    char fp[PKI_FP_HEX];
    assert_int_equal(pki_cert_info(f->leaf_crt.data, f->leaf_crt.len, &not_after, fp), CD_OK);
    assert_true(not_after >= f->now + 397L * 86400 - 2 && not_after <= f->now + 397L * 86400 + 2);
    assert_int_equal(X509_cmp_time(X509_get0_notBefore(leaf), &(time_t){f->now - 299}), -1);
    X509_free(ca);
    X509_free(leaf);
    X509_free(client);
}

static void test_key_matches(void **state)
{
    struct fixture *f = *state;
    bool match = false;
    assert_int_equal(pki_cert_matches_key(f->leaf_crt.data, f->leaf_crt.len, f->leaf_key.data,
                                          f->leaf_key.len, &match),
                     CD_OK);
    assert_true(match);
    assert_int_equal(pki_cert_matches_key(f->leaf_crt.data, f->leaf_crt.len, f->ca_key.data,
                                          f->ca_key.len, &match),
                     CD_OK);
    assert_false(match);
    /* garbage is refused, not crashed on */
    time_t t;
    char fp[PKI_FP_HEX];
    assert_int_equal(pki_cert_info("junk", 4, &t, fp), CD_ERR_CRYPTO);
    assert_int_equal(pki_key_fingerprint("junk", 4, fp), CD_ERR_CRYPTO);
    struct pki_buf out = {0};
    struct pki_cert_req bad = {.common_name = "x", .validity_days = 1, .now = f->now};
    assert_int_equal(pki_cert_issue(&bad, f->leaf_key.data, f->leaf_key.len, f->ca_crt.data,
                                    f->ca_crt.len, NULL, 0, &out),
                     CD_ERR_INVALID);
}

static void test_random(void **state)
{
    (void)state;
    unsigned char a[32] = {0}, b[32] = {0};
    assert_int_equal(pki_random(a, sizeof(a)), CD_OK);
    assert_int_equal(pki_random(b, sizeof(b)), CD_OK);
    assert_memory_not_equal(a, b, sizeof(a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_pem),        cmocka_unit_test(test_chain_verifies),
        cmocka_unit_test(test_sans_and_names), cmocka_unit_test(test_usages),
        cmocka_unit_test(test_key_matches),    cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
