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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_username),     cmocka_unit_test(test_password),
        cmocka_unit_test(test_utf8),         cmocka_unit_test(test_record_id),
        cmocka_unit_test(test_content_type), cmocka_unit_test(test_review_5_json_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
