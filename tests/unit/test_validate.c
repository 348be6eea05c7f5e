/* test_validate.c: input rules (usernames, passwords, record ids, UTF-8, content types). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "validate/validate.h"

#define S(x) x, sizeof(x) - 1

static void test_username(void **state)
{
    (void)state;
    assert_true(validate_username(S("bobross")));
    assert_true(validate_username(S("a")));
    assert_true(validate_username(S("alice.smith_99@example-1")));
    assert_false(validate_username(S("")));
    assert_false(validate_username(S("bob ross")));
    assert_false(validate_username(S("bob:ross")));
    assert_false(validate_username(S("bøb")));
    assert_false(validate_username("bob\0x", 5));
    char longname[66];
    memset(longname, 'a', sizeof(longname));
    assert_true(validate_username(longname, 64));
    assert_false(validate_username(longname, 65));
}

static void test_password(void **state)
{
    (void)state;
    assert_true(validate_password(S("password123")));
    assert_true(validate_password(S("12345678")));
    assert_false(validate_password(S("1234567")));
    assert_true(validate_password(S("pässwörd")));
    assert_false(validate_password(S("abcdefg\xff")));
    assert_false(validate_password("abcd\0efgh", 9));
    static char big[1026];
    memset(big, 'x', sizeof(big));
    assert_true(validate_password(big, 1024));
    assert_false(validate_password(big, 1025));
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(validate_utf8(S("")));
    assert_true(validate_utf8(S("plain ascii")));
    assert_true(validate_utf8(S("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80")));
    assert_false(validate_utf8(S("\xc0\xaf")));         /* overlong '/' */
    assert_false(validate_utf8(S("\xe0\x80\xaf")));     /* overlong */
    assert_false(validate_utf8(S("\xed\xa0\x80")));     /* surrogate */
    assert_false(validate_utf8(S("\xf4\x90\x80\x80"))); /* > U+10FFFF */
    assert_false(validate_utf8(S("\xe2\x82")));         /* truncated */
    assert_false(validate_utf8(S("\x80")));             /* lone continuation */
    assert_false(validate_utf8(S("\xf8\x88\x80\x80\x80")));
}

static void test_record_id(void **state)
{
    int64_t v = -1;
    (void)state;
    assert_true(validate_record_id_text(S("31"), &v));
    assert_int_equal(v, 31);
    assert_true(validate_record_id_text(S("0"), &v));
    assert_int_equal(v, 0);
    assert_true(validate_record_id_text(S("031"), &v));
    assert_int_equal(v, 31);
    assert_true(validate_record_id_text(S("9223372036854775807"), &v));
    assert_int_equal(v, INT64_MAX);
    assert_false(validate_record_id_text(S("9223372036854775808"), &v));
    assert_false(validate_record_id_text(S("99999999999999999999999"), &v));
    assert_false(validate_record_id_text(S("-1"), &v));
    assert_false(validate_record_id_text(S("+1"), &v));
    assert_false(validate_record_id_text(S(" 1"), &v));
    assert_false(validate_record_id_text(S("1.0"), &v));
    assert_false(validate_record_id_text(S("1e3"), &v));
    assert_false(validate_record_id_text(S("0x10"), &v));
    assert_false(validate_record_id_text(S(""), &v));
}

static void test_content_type(void **state)
{
    (void)state;
    assert_true(validate_content_type(S("application/pdf")));
    assert_true(validate_content_type(S("image/png")));
    assert_true(validate_content_type(S("text/plain; charset=utf-8")));
    assert_true(validate_content_type(S("application/vnd.api+json")));
    assert_false(validate_content_type(S("")));
    assert_false(validate_content_type(S("pdf")));
    assert_false(validate_content_type(S("/pdf")));
    assert_false(validate_content_type(S("application/")));
    assert_false(validate_content_type(S("text/plain\r\nX-Evil: 1")));
    assert_false(validate_content_type(S("text/pl ain")));
}

/* review 5: JSON nesting and value counts are bounded before parsing. */
static void test_review_5_json_shape(void **state)
{
    static char deep[2100];
    (void)state;
    assert_true(validate_json_shape(S("{\"a\":1}"), 16, 1024));
    assert_true(validate_json_shape(S(""), 16, 1024));
    /* values: 1 + brackets + commas; exactly at the limit passes */
    assert_true(validate_json_shape(S("[1,2]"), 16, 3));
    assert_false(validate_json_shape(S("[1,2,3]"), 16, 3));
    assert_true(validate_json_shape(S("[[[]]]"), 3, 1024));
    assert_false(validate_json_shape(S("[[[[]]]]"), 3, 1024));
    assert_false(validate_json_shape(S("{\"a\":{\"b\":{\"c\":{}}}}"), 3, 1024));
    /* closing brackets give depth back; siblings do not add up */
    assert_true(validate_json_shape(S("[[],[],[],[]]"), 2, 1024));
    /* inside strings, brackets, commas and escaped quotes are text */
    assert_true(validate_json_shape(S("{\"a\":\"[[[[,,,,{{{{\"}"), 1, 3));
    assert_true(validate_json_shape(S("{\"a\":\"\\\"[[[[,,,\"}"), 1, 3));
    assert_false(validate_json_shape(S("{\"a\":\"\\\\\"[[[[}"), 1, 1024));
    memset(deep, '[', sizeof(deep));
    assert_false(validate_json_shape(deep, sizeof(deep), 16, SIZE_MAX));
    assert_true(validate_json_shape(deep, 16, 16, SIZE_MAX));
    assert_false(validate_json_shape(S("1"), 16, 0));
}

static bool flat(const char *s, struct validate_json_member *m, size_t *n)
{
    return validate_json_flat(s, strlen(s), m, VALIDATE_JSON_FLAT_MAX, n);
}

/* The one-pass reader of flat bodies: what it reads, and everything it leaves
 * to jansson (valid or not). fuzz_json_body checks it against jansson. */
static void test_json_flat(void **state)
{
    struct validate_json_member m[VALIDATE_JSON_FLAT_MAX];
    char out[64];
    size_t n = 99, dlen;
    (void)state;

    assert_true(flat(" {\"record_id\" : 12 ,\n\t\"content\":\"h\xc3\xa9llo\"}\r\n", m, &n));
    assert_int_equal(n, 2);
    assert_int_equal(m[0].key_len, 9);
    assert_memory_equal(m[0].key, "record_id", 9);
    assert_int_equal(m[0].kind, VALIDATE_JSON_INTEGER);
    assert_int_equal(m[0].num, 12);
    assert_int_equal(m[1].kind, VALIDATE_JSON_STRING);
    assert_int_equal(m[1].str_len, 6);
    assert_memory_equal(m[1].str, "h\xc3\xa9llo", 6);
    assert_false(m[1].escaped);
    assert_true(flat("{}", m, &n));
    assert_int_equal(n, 0);
    assert_true(flat("{\"a\":\"\",\"b\":0,\"\":\"x\"}", m, &n));
    assert_int_equal(n, 3);
    assert_true(flat("{\"n\":999999999999999999}", m, &n));
    assert_int_equal(m[0].num, 999999999999999999ULL);
    /* The simple escapes, decoded. */
    assert_true(flat("{\"c\":\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"}", m, &n));
    assert_true(m[0].escaped);
    dlen = validate_json_unescape(m[0].str, m[0].str_len, out);
    assert_int_equal(dlen, 17);
    assert_memory_equal(out, "a\"b\\c/d\be\ff\ng\rh\ti", 17);
    /* Left to the full parser. */
    static const char *const no[] = {
        "",                            /* empty */
        "[]",                          /* not an object */
        "{\"a\":1",                    /* unterminated */
        "{\"a\":1}x",                  /* trailing bytes */
        "{\"a\":1,}",                  /* trailing comma */
        "{\"a\" 1}",                   /* no colon */
        "{a:1}",                       /* bare key */
        "{\"a\":1,\"a\":2}",           /* duplicate */
        "{\"\\u0061\":1}",             /* escaped key */
        "{\"a\":\"\\u00e9\"}",         /* \u escape */
        "{\"a\":\"\\x\"}",             /* bad escape */
        "{\"a\":\"x\ty\"}",            /* raw control character */
        "{\"a\":\"\xc3\"}",            /* bad UTF-8 */
        "{\"a\":\"\xed\xa0\x80\"}",    /* surrogate in UTF-8 */
        "{\"a\":012}",                 /* leading zero */
        "{\"a\":-1}",                  /* sign */
        "{\"a\":1.5}",                 /* real */
        "{\"a\":1e3}",                 /* exponent */
        "{\"a\":1234567890123456789}", /* 19 digits */
        "{\"a\":true}",                /* literal */
        "{\"a\":null}",                /* literal */
        "{\"a\":{}}",                  /* nested */
        "{\"a\":[1]}",                 /* nested */
        "\xef\xbb\xbf{}",              /* byte order mark */
        "{\"1\":1,\"2\":2,\"3\":3,\"4\":4,\"5\":5,\"6\":6,\"7\":7,\"8\":8,\"9\":9}", /* 9 members */
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (flat(no[i], m, &n))
            fail_msg("read: %s", no[i]);
    }
    /* A NUL byte inside the text. */
    assert_false(validate_json_flat("{\"a\":1}\0", 8, m, VALIDATE_JSON_FLAT_MAX, &n));
    assert_false(validate_json_flat("{\"a\":\"\0\"}", 8, m, VALIDATE_JSON_FLAT_MAX, &n));
    /* Fewer places than members. */
    assert_false(validate_json_flat("{\"a\":1,\"b\":2}", 13, m, 1, &n));
    assert_true(validate_json_flat("{\"a\":1}", 7, m, 1, &n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_username),     cmocka_unit_test(test_password),
        cmocka_unit_test(test_utf8),         cmocka_unit_test(test_record_id),
        cmocka_unit_test(test_content_type), cmocka_unit_test(test_review_5_json_shape),
        cmocka_unit_test(test_json_flat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
