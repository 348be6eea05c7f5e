/* test_common_codec.c: hex, base64, base64url and base32 (common/codec):
 * vectors, edge cases, caps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/codec.h"

static void test_hex_encode(void **state)
{
    const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0x9a, 0xbc, 0xde, 0xff};
    char out[CODEC_HEX_LEN(sizeof(in))];
    char empty[1] = {'x'};
    (void)state;

    codec_hex_encode(in, sizeof(in), out);
    assert_string_equal(out, "00017f809abcdeff");
    codec_hex_encode(in, 0, empty);
    assert_string_equal(empty, "");
    /* Every byte value round-trips. */
    for (unsigned b = 0; b < 256; b++) {
        uint8_t one = (uint8_t)b, back = 0;
        char two[3];
        codec_hex_encode(&one, 1, two);
        assert_int_equal(codec_hex_decode(two, 2, &back, 1), CD_OK);
        assert_int_equal(back, b);
    }
}

static void test_hex_decode(void **state)
{
    uint8_t out[4];
    const uint8_t untouched[4] = {0x5a, 0x5a, 0x5a, 0x5a};
    (void)state;

    assert_int_equal(codec_hex_decode("DeadBEEF", 8, out, 4), CD_OK);
    assert_int_equal(out[0], 0xde);
    assert_int_equal(out[3], 0xef);
    assert_int_equal(codec_hex_decode("", 0, out, 0), CD_OK);

    memcpy(out, untouched, 4);
    assert_int_equal(codec_hex_decode("deadbee", 7, out, 4), CD_ERR_INVALID);   /* short */
    assert_int_equal(codec_hex_decode("deadbeef0", 9, out, 4), CD_ERR_INVALID); /* long */
    assert_int_equal(codec_hex_decode("deadbeeg", 8, out, 4), CD_ERR_INVALID);
    assert_int_equal(codec_hex_decode("dead beef", 8, out, 4), CD_ERR_INVALID);
    assert_int_equal(codec_hex_decode("+0dead00", 8, out, 4), CD_ERR_INVALID);
    assert_int_equal(codec_hex_decode("dead\0eef", 8, out, 4), CD_ERR_INVALID);
    assert_int_equal(codec_hex_decode(NULL, 8, out, 4), CD_ERR_INVALID);
    /* The neighbours of each digit range are refused. */
    const char *edges[] = {"/0",
                           "0:",
                           "@0",
                           "0G",
                           "`0",
                           "0g",
                           "\xff"
                           "0"};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        assert_int_equal(codec_hex_decode(edges[i], 2, out, 1), CD_ERR_INVALID);
    assert_memory_equal(out, untouched, 4); /* nothing written on failure */
}

static void test_b64_vectors(void **state)
{
    /* RFC 4648 section 10. */
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    (void)state;

    for (size_t i = 0; i < 7; i++) {
        char text[16];
        uint8_t back[8];
        size_t n = 99;
        assert_int_equal(codec_b64_encode(plain[i], strlen(plain[i]), text, sizeof(text)), CD_OK);
        assert_string_equal(text, coded[i]);
        if (i == 0)
            continue;
        assert_int_equal(codec_b64_decode(coded[i], strlen(coded[i]), back, sizeof(back), &n),
                         CD_OK);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(back, plain[i], n);
    }
    /* Every symbol, and every byte value. */
    uint8_t all[256], back[256];
    char text[CODEC_B64_LEN(sizeof(all))];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (uint8_t)i;
    assert_int_equal(codec_b64_encode(all, sizeof(all), text, sizeof(text)), CD_OK);
    assert_int_equal(strlen(text), sizeof(text) - 1);
    assert_int_equal(codec_b64_decode(text, strlen(text), back, sizeof(back), &n), CD_OK);
    assert_int_equal(n, sizeof(all));
    assert_memory_equal(back, all, sizeof(all));
    assert_int_equal(codec_b64_decode("+/+/", 4, back, 3, &n), CD_OK);
    assert_int_equal(back[0], 0xfb);
    assert_int_equal(back[1], 0xff);
    assert_int_equal(back[2], 0xbf);
}

static void test_b64_strict(void **state)
{
    uint8_t out[8];
    size_t n = 0;
    const char *bad[] = {
        "Zg=",      /* not a multiple of 4 */
        "Zg",       /* unpadded */
        "Z===",     /* three pads */
        "====",     /* only padding */
        "Zg=a",     /* data after a pad */
        "Zg==Zg==", /* padding before the end */
        "Zm9v\n",   /* whitespace */
        "Zm 9",     /* space */
        "Zm-_",     /* the URL alphabet */
        "Zm9\0",    /* NUL */
        "Zm9\x80",  /* high byte */
    };
    (void)state;

    assert_int_equal(codec_b64_decode("", 0, out, sizeof(out), &n), CD_ERR_INVALID);
    assert_int_equal(codec_b64_decode(NULL, 4, out, sizeof(out), &n), CD_ERR_INVALID);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = i == 9 || i == 10 ? 4 : strlen(bad[i]);
        assert_int_equal(codec_b64_decode(bad[i], len, out, sizeof(out), &n), CD_ERR_INVALID);
    }
}

static void test_b64_caps(void **state)
{
    uint8_t out[8];
    char text[9];
    size_t n = 0;
    (void)state;

    /* Output caps: the decoded bytes must fit exactly. */
    assert_int_equal(codec_b64_decode("Zm9vYmFy", 8, out, 6, &n), CD_OK);
    assert_int_equal(n, 6);
    assert_int_equal(codec_b64_decode("Zm9vYmFy", 8, out, 5, &n), CD_ERR_TOO_LARGE);
    assert_int_equal(codec_b64_decode("Zm9vYmE=", 8, out, 5, &n), CD_OK);
    assert_int_equal(codec_b64_decode("Zm9vYmE=", 8, out, 4, &n), CD_ERR_TOO_LARGE);
    assert_int_equal(codec_b64_decode("Zg==", 4, out, 0, &n), CD_ERR_TOO_LARGE);
    /* The encoder needs room for the padding and the NUL. */
    assert_int_equal(codec_b64_encode("foobar", 6, text, 9), CD_OK);
    assert_int_equal(codec_b64_encode("foobar", 6, text, 8), CD_ERR_TOO_LARGE);
    assert_int_equal(codec_b64_encode("f", 1, text, 4), CD_ERR_TOO_LARGE);
    assert_int_equal(codec_b64_encode("", 0, text, 1), CD_OK);
    assert_int_equal(codec_b64_encode("", 0, text, 0), CD_ERR_TOO_LARGE);
    assert_int_equal(codec_b64_encode("x", SIZE_MAX, text, sizeof(text)), CD_ERR_TOO_LARGE);
}

/* RFC 4648 section 10 (base32, padding removed) and base64url of the same. */
static void test_b32_b64url_vectors(void **state)
{
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const b32[] = {"",        "MY",       "MZXQ",      "MZXW6",
                                      "MZXW6YQ", "MZXW6YTB", "MZXW6YTBOI"};
    static const char *const b64u[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    const uint8_t odd[] = {0xfb, 0xff, 0xbf};
    char out[64];
    uint8_t back[16];
    (void)state;

    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        size_t n = strlen(in[i]);
        assert_int_equal(codec_b32_encode(in[i], n, out, sizeof(out)), CD_OK);
        assert_string_equal(out, b32[i]);
        assert_int_equal(codec_b64url_encode(in[i], n, out, sizeof(out)), CD_OK);
        assert_string_equal(out, b64u[i]);
        if (n > 0) {
            assert_int_equal(codec_b64url_decode_exact(out, strlen(out), back, n), CD_OK);
            assert_memory_equal(back, in[i], n);
        }
    }
    assert_int_equal(codec_b64url_encode(odd, sizeof(odd), out, sizeof(out)), CD_OK);
    assert_string_equal(out, "-_-_"); /* the two symbols that differ from base64 */
    /* 20 bytes (a TOTP secret) are 32 base32 characters. */
    memset(back, 0xff, sizeof(back));
    assert_int_equal(codec_b32_encode(back, 16, out, CODEC_B32_LEN(16)), CD_OK);
    assert_int_equal(strlen(out), CODEC_B32_LEN(16) - 1);
    assert_int_equal(codec_b32_encode(back, 16, out, CODEC_B32_LEN(16) - 1), CD_ERR_TOO_LARGE);
    assert_int_equal(codec_b64url_encode(back, 16, out, CODEC_B64URL_LEN(16) - 1),
                     CD_ERR_TOO_LARGE);
}

static void test_b64url_strict(void **state)
{
    uint8_t out[2] = {0x11, 0x22};
    (void)state;

    assert_int_equal(codec_b64url_decode_exact("Zm8", 3, out, 2), CD_OK);
    assert_memory_equal(out, "fo", 2);
    out[0] = 0x11;
    /* Wrong length, padding, the standard alphabet's '+' and '/', and a last
     * symbol with non-zero unused bits (a second text for one value). */
    assert_int_equal(codec_b64url_decode_exact("Zm8=", 4, out, 2), CD_ERR_INVALID);
    assert_int_equal(codec_b64url_decode_exact("Zm", 2, out, 2), CD_ERR_INVALID);
    assert_int_equal(codec_b64url_decode_exact("+/8", 3, out, 2), CD_ERR_INVALID);
    assert_int_equal(codec_b64url_decode_exact("Zm9", 3, out, 2), CD_ERR_INVALID);
    assert_int_equal(codec_b64url_decode_exact(NULL, 3, out, 2), CD_ERR_INVALID);
    assert_int_equal(out[0], 0x11); /* untouched on failure */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_encode),    cmocka_unit_test(test_hex_decode),
        cmocka_unit_test(test_b64_vectors),   cmocka_unit_test(test_b64_strict),
        cmocka_unit_test(test_b64_caps),      cmocka_unit_test(test_b32_b64url_vectors),
        cmocka_unit_test(test_b64url_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
