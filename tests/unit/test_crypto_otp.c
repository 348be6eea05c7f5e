/* test_crypto_otp.c: HOTP and TOTP (crypto_otp.c): the RFC 4226 and RFC 6238
 * (SHA-1) test vectors, the accepted clock drift, replay bounds, input rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/crypto.h"

/* The secret of both RFCs' appendices: ASCII "12345678901234567890". */
static const uint8_t rfc_key[] = "12345678901234567890";
#define RFC_KEY_LEN 20

/* RFC 4226 appendix D: HOTP values for counters 0..9. */
static void test_hotp_rfc4226(void **state)
{
    static const uint32_t want[] = {755224, 287082, 359152, 969429, 338314,
                                    254676, 287922, 162583, 399871, 520489};
    (void)state;

    for (uint64_t c = 0; c < 10; c++) {
        uint32_t code = 0;
        assert_int_equal(crypto_hotp(rfc_key, RFC_KEY_LEN, c, 6, &code), CD_OK);
        assert_int_equal(code, want[c]);
    }
}

/* RFC 6238 appendix B, the SHA-1 rows (8 digits, T0 = 0, X = 30). */
static void test_totp_rfc6238_sha1(void **state)
{
    static const struct {
        int64_t t;
        uint32_t code;
    } v[] = {
        {59, 94287082},         {1111111109, 7081804},  {1111111111, 14050471},
        {1234567890, 89005924}, {2000000000, 69279037}, {20000000000, 65353130},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint32_t code = 0;
        char six[8];
        uint64_t step = 0;

        assert_int_equal(crypto_hotp(rfc_key, RFC_KEY_LEN, (uint64_t)v[i].t / 30, 8, &code), CD_OK);
        assert_int_equal(code, v[i].code);
        /* The 6-digit code apps show is the same value mod 10^6. */
        snprintf(six, sizeof(six), "%06u", (unsigned)(v[i].code % 1000000));
        assert_true(crypto_totp_match(rfc_key, RFC_KEY_LEN, six, 6, v[i].t, 0, &step));
        assert_int_equal(step, (uint64_t)v[i].t / 30);
    }
}

static void code_at(uint64_t step, char out[8])
{
    uint32_t c = 0;
    assert_int_equal(crypto_hotp(rfc_key, RFC_KEY_LEN, step, 6, &c), CD_OK);
    snprintf(out, 8, "%06u", (unsigned)c);
}

/* One step of drift either way is accepted, two are not. */
static void test_totp_drift(void **state)
{
    const int64_t now = 1700000000 + 15;
    const uint64_t t = (uint64_t)now / 30;
    char code[8];
    uint64_t step = 0;
    (void)state;

    for (int d = -1; d <= 1; d++) {
        code_at(t + (uint64_t)(int64_t)d, code);
        assert_true(crypto_totp_match(rfc_key, RFC_KEY_LEN, code, 6, now, 0, &step));
        assert_int_equal(step, t + (uint64_t)(int64_t)d);
    }
    code_at(t - 2, code);
    assert_false(crypto_totp_match(rfc_key, RFC_KEY_LEN, code, 6, now, 0, &step));
    code_at(t + 2, code);
    assert_false(crypto_totp_match(rfc_key, RFC_KEY_LEN, code, 6, now, 0, &step));
}

/* A step at or below the last one accepted is refused (replay). */
static void test_totp_replay_bound(void **state)
{
    const int64_t now = 1700000000;
    const uint64_t t = (uint64_t)now / 30;
    char code[8];
    uint64_t step = 0;
    (void)state;

    code_at(t, code);
    assert_true(crypto_totp_match(rfc_key, RFC_KEY_LEN, code, 6, now, t - 1, &step));
    assert_false(crypto_totp_match(rfc_key, RFC_KEY_LEN, code, 6, now, t, &step));
    code_at(t - 1, code);
    assert_false(crypto_totp_match(rfc_key, RFC_KEY_LEN, code, 6, now, t - 1, &step));
}

static void test_totp_input_rules(void **state)
{
    const int64_t now = 1700000000;
    char code[8];
    uint64_t step = 77;
    uint32_t c = 0;
    (void)state;

    code_at((uint64_t)now / 30, code);
    assert_false(crypto_totp_match(rfc_key, RFC_KEY_LEN, code, 5, now, 0, &step));
    code[6] = ' ';
    assert_false(crypto_totp_match(rfc_key, RFC_KEY_LEN, code, 7, now, 0, &step));
    code[0] = 'a';
    assert_false(crypto_totp_match(rfc_key, RFC_KEY_LEN, code, 6, now, 0, &step));
    assert_false(crypto_totp_match(rfc_key, RFC_KEY_LEN, NULL, 6, now, 0, &step));
    assert_int_equal(step, 77); /* untouched when refused */
    assert_int_equal(crypto_hotp(rfc_key, RFC_KEY_LEN, 0, 5, &c), CD_ERR_INVALID);
    assert_int_equal(crypto_hotp(rfc_key, 0, 0, 6, &c), CD_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hotp_rfc4226),     cmocka_unit_test(test_totp_rfc6238_sha1),
        cmocka_unit_test(test_totp_drift),       cmocka_unit_test(test_totp_replay_bound),
        cmocka_unit_test(test_totp_input_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
