/* test_common_num.c: the decimal parser (common/num): digits, overflow, caps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/num.h"

static cd_err parse(const char *s, uint64_t max, uint64_t *out)
{
    return num_parse(s, strlen(s), max, out);
}

static void test_parse(void **state)
{
    uint64_t v = 7;
    (void)state;

    assert_int_equal(parse("0", UINT64_MAX, &v), CD_OK);
    assert_int_equal(v, 0);
    assert_int_equal(parse("000042", 100, &v), CD_OK);
    assert_int_equal(v, 42);
    assert_int_equal(parse("18446744073709551615", UINT64_MAX, &v), CD_OK);
    assert_true(v == UINT64_MAX);

    v = 7;
    const char *bad[] = {"", "+1", "-1", " 1", "1 ", "1a", "0x10", "1.0", "1e3", "١"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(bad[i], UINT64_MAX, &v), CD_ERR_INVALID);
    assert_int_equal(num_parse("12\0"
                               "3",
                               4, UINT64_MAX, &v),
                     CD_ERR_INVALID);
    assert_int_equal(num_parse(NULL, 0, UINT64_MAX, &v), CD_ERR_INVALID);
    assert_int_equal(v, 7); /* untouched on failure */
}

static void test_overflow(void **state)
{
    uint64_t v = 7;
    (void)state;

    /* One rule: above max is TOO_LARGE, at any length. */
    assert_int_equal(parse("18446744073709551616", UINT64_MAX, &v), CD_ERR_TOO_LARGE);
    assert_int_equal(parse("18446744073709551620", UINT64_MAX, &v), CD_ERR_TOO_LARGE);
    assert_int_equal(parse("99999999999999999999999999", UINT64_MAX, &v), CD_ERR_TOO_LARGE);
    assert_int_equal(parse("100", 99, &v), CD_ERR_TOO_LARGE);
    assert_int_equal(parse("99", 99, &v), CD_OK);
    assert_int_equal(parse("1", 0, &v), CD_ERR_TOO_LARGE);
    assert_int_equal(parse("0", 0, &v), CD_OK);
    assert_int_equal(parse("2147483648", 2147483647, &v), CD_ERR_TOO_LARGE);
    assert_int_equal(parse("2147483647", 2147483647, &v), CD_OK);
    assert_int_equal(v, 2147483647);
    assert_int_equal(parse("9223372036854775808", INT64_MAX, &v), CD_ERR_TOO_LARGE);
    /* Leading zeros do not count against max. */
    assert_int_equal(parse("0000000000000000000000000001", 1, &v), CD_OK);
    assert_int_equal(v, 1);
}

static void test_prefix(void **state)
{
    const char *s = "123:rest", *p = s;
    uint64_t v = 0;
    (void)state;

    assert_int_equal(num_prefix(&p, s + strlen(s), UINT64_MAX, &v), CD_OK);
    assert_int_equal(v, 123);
    assert_ptr_equal(p, s + 3);
    /* No digit: *p stays. */
    assert_int_equal(num_prefix(&p, s + strlen(s), UINT64_MAX, &v), CD_ERR_INVALID);
    assert_ptr_equal(p, s + 3);
    /* end bounds the digits read. */
    p = s;
    assert_int_equal(num_prefix(&p, s + 2, UINT64_MAX, &v), CD_OK);
    assert_int_equal(v, 12);
    assert_ptr_equal(p, s + 2);
    p = s;
    assert_int_equal(num_prefix(&p, s, UINT64_MAX, &v), CD_ERR_INVALID);
    assert_int_equal(num_prefix(&p, s + 3, 122, &v), CD_ERR_TOO_LARGE);
    assert_ptr_equal(p, s);
    assert_int_equal(num_prefix(NULL, s, 1, &v), CD_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
