/* test_evidence.c: the hardware-evidence seam: the binding rule, the checks
 * evidence_check makes whatever a verifier says, the test double, an empty
 * production registry, and the SEV-SNP report parser and signature check on a
 * recorded public sample (a Google Cloud SEV-SNP report and its VCEK
 * certificate, tests/data/evidence/, from the canvasxyz/teekit test samples). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "common/codec.h"
#include "evidence/evidence.h"
#include "evidence_double.h"

static unsigned char nonce[32], exe[32], cfg[3][32];

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < 32; i++) {
        nonce[i] = (unsigned char)i;
        exe[i] = (unsigned char)(0x80 + i);
        cfg[0][i] = 1;
        cfg[1][i] = 2;
        cfg[2][i] = 3;
    }
    return 0;
}

static void test_registry(void **state)
{
    (void)state;
    /* the double is never registered; nothing that skips the vendor chain is */
    assert_null(evidence_find("test"));
    assert_null(evidence_find("sev-snp"));
    assert_null(evidence_find("tdx"));
    assert_null(evidence_find("sgx-dcap"));
    assert_null(evidence_find(NULL));
    assert_string_equal(evidence_double.name, "test");
}

static void test_binding(void **state)
{
    unsigned char a[64], b[64], want[64], buf[256];
    unsigned int len = 0;
    size_t n = 0;
    (void)state;

    assert_int_equal(evidence_binding(nonce, exe, (const unsigned char(*)[32])cfg, 2, a), CD_OK);
    /* the documented rule, computed here independently */
    memcpy(buf, "confidoc-evidence-v1", 21);
    n = 21;
    memcpy(buf + n, nonce, 32);
    n += 32;
    memcpy(buf + n, exe, 32);
    n += 32;
    memcpy(buf + n, "\0\0\0\2", 4);
    n += 4;
    memcpy(buf + n, cfg, 64);
    n += 64;
    assert_int_equal(EVP_Digest(buf, n, want, &len, EVP_sha512(), NULL), 1);
    assert_memory_equal(a, want, 64);

    /* every input counts: another nonce, exe, config, order, count */
    unsigned char other[32];
    memcpy(other, nonce, 32);
    other[31] ^= 1;
    assert_int_equal(evidence_binding(other, exe, (const unsigned char(*)[32])cfg, 2, b), CD_OK);
    assert_memory_not_equal(a, b, 64);
    assert_int_equal(evidence_binding(nonce, other, (const unsigned char(*)[32])cfg, 2, b), CD_OK);
    assert_memory_not_equal(a, b, 64);
    assert_int_equal(evidence_binding(nonce, exe, (const unsigned char(*)[32])cfg + 1, 2, b),
                     CD_OK);
    assert_memory_not_equal(a, b, 64);
    assert_int_equal(evidence_binding(nonce, exe, (const unsigned char(*)[32])cfg, 3, b), CD_OK);
    assert_memory_not_equal(a, b, 64);
    assert_int_equal(evidence_binding(nonce, exe, NULL, 0, b), CD_OK);
    assert_memory_not_equal(a, b, 64);
    assert_int_equal(evidence_binding(nonce, exe, (const unsigned char(*)[32])cfg, 65, b),
                     CD_ERR_TOO_LARGE);
    assert_int_equal(evidence_binding(nonce, exe, NULL, 1, b), CD_ERR_INVALID);
}

static void test_double(void **state)
{
    unsigned char rd[64], rd2[64], ev[EVIDENCE_DOUBLE_LEN];
    struct evidence_claims c;
    (void)state;

    assert_int_equal(evidence_binding(nonce, exe, (const unsigned char(*)[32])cfg, 1, rd), CD_OK);
    evidence_double_make(exe, rd, 0, ev);
    assert_int_equal(evidence_check(&evidence_double, ev, sizeof(ev), rd, &c), CD_OK);
    assert_int_equal(c.platform, EVIDENCE_PLATFORM_TEST);
    assert_int_equal(c.measurement_len, 32);
    assert_memory_equal(c.measurement, exe, 32);
    assert_memory_equal(c.report_data, rd, 64);

    /* replayed for another request (another nonce): refused */
    nonce[0] ^= 1;
    assert_int_equal(evidence_binding(nonce, exe, (const unsigned char(*)[32])cfg, 1, rd2), CD_OK);
    nonce[0] ^= 1;
    assert_int_equal(evidence_check(&evidence_double, ev, sizeof(ev), rd2, &c), CD_ERR_CRYPTO);
    /* any byte changed: refused */
    for (size_t i = 0; i < sizeof(ev); i++) {
        ev[i] ^= 0x40;
        assert_int_not_equal(evidence_check(&evidence_double, ev, sizeof(ev), rd, &c), CD_OK);
        ev[i] ^= 0x40;
    }
    assert_int_equal(evidence_check(&evidence_double, ev, sizeof(ev) - 1, rd, &c), CD_ERR_INVALID);
    assert_int_equal(evidence_check(&evidence_double, ev, 0, rd, &c), CD_ERR_INVALID);
    assert_int_equal(evidence_check(&evidence_double, ev, EVIDENCE_MAX_LEN + 1, rd, &c),
                     CD_ERR_TOO_LARGE);
    /* a debug TEE: refused by evidence_check, though the double accepts it */
    evidence_double_make(exe, rd, 1, ev);
    assert_int_equal(evidence_double.verify(ev, sizeof(ev), rd, &c), CD_OK);
    assert_int_equal(evidence_check(&evidence_double, ev, sizeof(ev), rd, &c), CD_ERR_CRYPTO);
}

/* A broken verifier that accepts anything and echoes zeros. */
static cd_err lax_verify(const void *e, size_t len, const unsigned char rd[64],
                         struct evidence_claims *out)
{
    (void)e;
    (void)len;
    (void)rd;
    memset(out, 0, sizeof(*out));
    return CD_OK;
}

static void test_check_guards(void **state)
{
    const struct evidence_verifier lax = {"lax", lax_verify};
    unsigned char rd[64] = {1}, zero[64] = {0};
    struct evidence_claims c;
    (void)state;

    assert_int_equal(evidence_check(&lax, "x", 1, rd, &c), CD_ERR_CRYPTO);
    assert_int_equal(evidence_check(&lax, "x", 1, zero, &c), CD_OK);
    assert_int_equal(evidence_check(NULL, "x", 1, rd, &c), CD_ERR_INVALID);
}

/* The recorded report, as bytes. */
static void load_sample(unsigned char report[EVIDENCE_SNP_REPORT_LEN], char *pem, size_t pemcap,
                        size_t *pemlen)
{
    char hex[4096];
    size_t n = 0;
    int ch;
    FILE *f = fopen(CONFIDOC_TEST_DATA "/evidence/sev-snp-gcp.hex", "r");
    assert_non_null(f);
    while ((ch = fgetc(f)) != EOF)
        if (ch != '\n' && n < sizeof(hex))
            hex[n++] = (char)ch;
    fclose(f);
    assert_int_equal(n, 2 * EVIDENCE_SNP_REPORT_LEN);
    assert_int_equal(codec_hex_decode(hex, n, report, EVIDENCE_SNP_REPORT_LEN), CD_OK);
    f = fopen(CONFIDOC_TEST_DATA "/evidence/sev-snp-gcp-vcek.pem", "r");
    assert_non_null(f);
    *pemlen = fread(pem, 1, pemcap - 1, f);
    pem[*pemlen] = '\0';
    fclose(f);
}

static void test_snp_sample(void **state)
{
    static unsigned char report[EVIDENCE_SNP_REPORT_LEN];
    static char pem[8192];
    size_t pemlen;
    struct evidence_snp_report r;
    struct evidence_claims c;
    unsigned char want[48], zero[64] = {0};
    (void)state;

    load_sample(report, pem, sizeof(pem), &pemlen);
    assert_int_equal(evidence_snp_parse(report, sizeof(report), &r), CD_OK);
    assert_int_equal(r.version, 5);
    assert_int_equal(r.vmpl, 0);
    assert_int_equal(r.signature_algo, 1);
    assert_int_equal(r.policy, 0x30000);
    assert_int_equal(codec_hex_decode("b747d55452e0b9e9079770a49e397c5e6d9573581e246da7baac4f28b5"
                                      "cdc5b1b6d19251b8ee600fd16a3708f58406f3",
                                      96, want, sizeof(want)),
                     CD_OK);
    assert_memory_equal(r.measurement, want, 48);
    assert_memory_equal(r.report_data, zero, 64); /* this sample asked with zeros */
    evidence_snp_claims(&r, &c);
    assert_int_equal(c.platform, EVIDENCE_PLATFORM_SEV_SNP);
    assert_int_equal(c.measurement_len, 48);
    assert_memory_equal(c.measurement, want, 48);
    assert_int_equal(c.flags & EVIDENCE_FLAG_DEBUG, 0);

    /* the report's signature verifies under the recorded VCEK ... */
    assert_int_equal(evidence_snp_check_signature(report, sizeof(report), pem, pemlen), CD_OK);
    /* ... and not after one byte of the measurement or report_data changed */
    report[0x90] ^= 1;
    assert_int_equal(evidence_snp_check_signature(report, sizeof(report), pem, pemlen),
                     CD_ERR_CRYPTO);
    report[0x90] ^= 1;
    report[0x50 + 63] ^= 0x80;
    assert_int_equal(evidence_snp_check_signature(report, sizeof(report), pem, pemlen),
                     CD_ERR_CRYPTO);
    report[0x50 + 63] ^= 0x80;
    /* nor with a signature byte changed */
    report[0x2A0] ^= 1;
    assert_int_equal(evidence_snp_check_signature(report, sizeof(report), pem, pemlen),
                     CD_ERR_CRYPTO);
    report[0x2A0] ^= 1;

    /* the debug bit of the policy is a claim evidence_check refuses */
    r.policy |= EVIDENCE_SNP_POLICY_DEBUG;
    evidence_snp_claims(&r, &c);
    assert_int_equal(c.flags & EVIDENCE_FLAG_DEBUG, EVIDENCE_FLAG_DEBUG);
}

static void test_snp_malformed(void **state)
{
    static unsigned char report[EVIDENCE_SNP_REPORT_LEN];
    static char pem[8192];
    size_t pemlen;
    struct evidence_snp_report r;
    (void)state;

    load_sample(report, pem, sizeof(pem), &pemlen);
    assert_int_equal(evidence_snp_parse(report, sizeof(report) - 1, &r), CD_ERR_INVALID);
    report[0] = 1; /* version 1: SEV's older report */
    assert_int_equal(evidence_snp_parse(report, sizeof(report), &r), CD_ERR_INVALID);
    report[0] = 5;
    report[0x34] = 2; /* an unknown signature algorithm */
    assert_int_equal(evidence_snp_parse(report, sizeof(report), &r), CD_ERR_INVALID);
    report[0x34] = 1;
    report[0x2A0 + 60] = 1; /* r beyond its 48 bytes */
    assert_int_equal(evidence_snp_check_signature(report, sizeof(report), pem, pemlen),
                     CD_ERR_INVALID);
    report[0x2A0 + 60] = 0;
    assert_int_equal(evidence_snp_check_signature(report, sizeof(report), "junk", 4),
                     CD_ERR_INVALID);
    assert_int_equal(evidence_snp_check_signature(report, sizeof(report), pem, pemlen), CD_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),   cmocka_unit_test(test_binding),
        cmocka_unit_test(test_double),     cmocka_unit_test(test_check_guards),
        cmocka_unit_test(test_snp_sample), cmocka_unit_test(test_snp_malformed),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
