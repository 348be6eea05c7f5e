/* test_common_diag.c: the start-up diagnostic type (common/diag.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/diag.h"

static void test_lines_and_count(void **state)
{
    struct cd_diag d;
    char first[64];
    (void)state;
    cd_diag_init(&d);
    cd_diag_first(&d, first, sizeof(first));
    assert_string_equal(first, "");
    cd_diag_add(&d, "%s:%d: bad", "a.conf", 3);
    cd_diag_add(&d, "second");
    assert_int_equal(d.count, 2);
    assert_string_equal(d.text, "a.conf:3: bad\nsecond\n");
    assert_int_equal(d.len, strlen(d.text));
    cd_diag_first(&d, first, sizeof(first));
    assert_string_equal(first, "a.conf:3: bad");
    cd_diag_first(&d, first, 5);
    assert_string_equal(first, "a.co");
}

static void test_control_bytes_stay_on_one_line(void **state)
{
    struct cd_diag d;
    (void)state;
    cd_diag_init(&d);
    cd_diag_add(&d, "value '%s'", "x\ny\x1b[2J\x7f");
    assert_int_equal(d.count, 1);
    assert_string_equal(d.text, "value 'x?y?[2J?'\n");
}

static void test_bounded_and_counted(void **state)
{
    static struct cd_diag d;
    char line[1000];
    (void)state;
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    cd_diag_init(&d);
    for (int i = 0; i < 100; i++)
        cd_diag_add(&d, "%s", line);
    assert_int_equal(d.count, 100);
    assert_true(d.len < sizeof(d.text));
    assert_int_equal(d.text[d.len], '\0');
    assert_int_equal(strlen(d.text), d.len);
    cd_diag_add(NULL, "nothing happens"); /* no diag: nothing recorded, no crash */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_and_count),
        cmocka_unit_test(test_control_bytes_stay_on_one_line),
        cmocka_unit_test(test_bounded_and_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
