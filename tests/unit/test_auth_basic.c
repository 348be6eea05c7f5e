/* test_auth_basic.c: parsing of HTTP Basic credentials. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"

static void test_valid(void **state)
{
    struct auth_credentials c;
    (void)state;
    /* bobross:password123 */
    assert_int_equal(auth_parse_basic("Basic Ym9icm9zczpwYXNzd29yZDEyMw==", &c), CD_OK);
    assert_string_equal(c.user, "bobross");
    assert_int_equal(c.user_len, 7);
    assert_string_equal(c.pass, "password123");
    assert_int_equal(c.pass_len, 11);
    /* scheme is case-insensitive; a colon in the password stays in the password */
    assert_int_equal(auth_parse_basic("basic YTpiOmM=", &c), CD_OK); /* a:b:c */
    assert_string_equal(c.user, "a");
    assert_string_equal(c.pass, "b:c");
    /* empty password and empty user parse; the rules are checked later */
    assert_int_equal(auth_parse_basic("Basic Ym9iOg==", &c), CD_OK); /* bob: */
    assert_int_equal(c.pass_len, 0);
    auth_credentials_wipe(&c);
    assert_int_equal(c.user[0], 0);
}

static void test_invalid(void **state)
{
    struct auth_credentials c;
    (void)state;
    assert_int_equal(auth_parse_basic(NULL, &c), CD_ERR_INVALID);
    assert_int_equal(auth_parse_basic("", &c), CD_ERR_INVALID);
    assert_int_equal(auth_parse_basic("Bearer abc", &c), CD_ERR_INVALID);
    assert_int_equal(auth_parse_basic("Basic", &c), CD_ERR_INVALID);
    assert_int_equal(auth_parse_basic("Basic !!!!", &c), CD_ERR_INVALID);
    assert_int_equal(auth_parse_basic("Basic Ym9icm9zcw==", &c), CD_ERR_INVALID); /* no colon */
    assert_int_equal(auth_parse_basic("Basic Ym9icm9zcw=", &c), CD_ERR_INVALID);  /* bad length */
    assert_int_equal(auth_parse_basic("Basic Ym9i=m9zcw==", &c), CD_ERR_INVALID); /* inner pad */
    /* a username longer than 64 bytes */
    char hdr[512] = "Basic ";
    /* base64 of 66 'a' then ":password" */
    strcat(hdr, "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh"
                "YWFhYWFhYWFhOnBhc3N3b3Jk");
    assert_int_equal(auth_parse_basic(hdr, &c), CD_ERR_INVALID);
    /* an oversized header is refused without decoding */
    static char big[8192];
    memcpy(big, "Basic ", 6);
    memset(big + 6, 'A', sizeof(big) - 7);
    assert_int_equal(auth_parse_basic(big, &c), CD_ERR_INVALID);
}

/* review_consistency_create_422: over-long parts are told apart from malformed input. */
static void test_too_long(void **state)
{
    struct auth_credentials c;
    bool too_long = true;
    char hdr[512] = "Basic ";
    (void)state;
    /* base64 of 66 'a' then ":password" */
    strcat(hdr, "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh"
                "YWFhYWFhYWFhOnBhc3N3b3Jk");
    assert_int_equal(auth_parse_basic_len(hdr, &c, &too_long), CD_ERR_INVALID);
    assert_true(too_long);
    assert_int_equal(auth_parse_basic_len("Basic Ym9icm9zcw==", &c, &too_long), CD_ERR_INVALID);
    assert_false(too_long); /* no colon: malformed, not too long */
    assert_int_equal(auth_parse_basic_len("Basic !!!!", &c, &too_long), CD_ERR_INVALID);
    assert_false(too_long);
    assert_int_equal(auth_parse_basic_len("Basic YTpiOmM=", &c, &too_long), CD_OK);
    assert_false(too_long);
    static char big[8192];
    memcpy(big, "Basic ", 6);
    memset(big + 6, 'A', sizeof(big) - 7);
    assert_int_equal(auth_parse_basic_len(big, &c, &too_long), CD_ERR_INVALID);
    assert_true(too_long);
    auth_credentials_wipe(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
