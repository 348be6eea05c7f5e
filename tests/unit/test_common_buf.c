/* test_common_buf.c: the capped growable buffer (common/buf). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"

static void test_add_and_detach(void **state)
{
    struct buf b;
    size_t len = 99;
    char *p;
    (void)state;

    buf_init(&b, 64);
    assert_null(buf_detach(&b, &len)); /* nothing added: nothing allocated */
    assert_int_equal(len, 0);
    assert_int_equal(buf_add(&b, "abc", 3), CD_OK);
    assert_int_equal(buf_add(&b, "", 0), CD_OK);
    assert_int_equal(buf_add(&b, "de", 2), CD_OK);
    assert_string_equal(b.p, "abcde");
    assert_true(b.cap <= 64);
    p = buf_detach(&b, &len);
    assert_int_equal(len, 5);
    assert_string_equal(p, "abcde");
    free(p);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    /* Reusable after detach and release. */
    assert_int_equal(buf_add(&b, "x", 1), CD_OK);
    buf_release(&b);
    assert_null(b.p);
    buf_release(&b); /* twice is harmless */
}

static void test_cap(void **state)
{
    struct buf b;
    char big[100];
    (void)state;

    memset(big, 'a', sizeof(big));
    buf_init(&b, 10); /* nine bytes and the NUL */
    assert_int_equal(buf_add(&b, big, 10), CD_ERR_TOO_LARGE);
    assert_null(b.p); /* unchanged */
    assert_int_equal(buf_add(&b, big, 9), CD_OK);
    assert_int_equal(b.len, 9);
    assert_int_equal(b.cap, 10);
    assert_int_equal(buf_add(&b, big, 1), CD_ERR_TOO_LARGE);
    assert_int_equal(buf_add(&b, big, 0), CD_OK);
    assert_int_equal(buf_add(&b, big, SIZE_MAX), CD_ERR_TOO_LARGE); /* no wrap */
    assert_int_equal(b.len, 9);
    buf_release(&b);

    buf_init(&b, 0);
    assert_int_equal(buf_add(&b, "", 0), CD_ERR_TOO_LARGE); /* no room for the NUL */
    buf_init(&b, SIZE_MAX);
    assert_int_equal(buf_add(&b, "a", 1), CD_OK);
    assert_int_equal(buf_add(&b, big, SIZE_MAX - 1), CD_ERR_TOO_LARGE);
    assert_int_equal(buf_add(&b, big, SIZE_MAX), CD_ERR_TOO_LARGE);
    buf_release(&b);
}

static void test_growth(void **state)
{
    struct buf b;
    char chunk[1000];
    (void)state;

    memset(chunk, 'z', sizeof(chunk));
    buf_init(&b, 10000);
    assert_int_equal(buf_add(&b, chunk, 1), CD_OK);
    assert_int_equal(b.cap, BUF_START);
    for (int i = 0; i < 9; i++)
        assert_int_equal(buf_add(&b, chunk, sizeof(chunk)), CD_OK);
    assert_int_equal(b.len, 9001);
    assert_int_equal(b.cap, 10000); /* doubled, then clamped to max */
    assert_int_equal(buf_add(&b, chunk, 998), CD_OK);
    assert_int_equal(buf_add(&b, chunk, 1), CD_ERR_TOO_LARGE);
    assert_int_equal(b.len, 9999);
    for (size_t i = 0; i < b.len; i++)
        assert_int_equal(b.p[i], 'z');
    assert_int_equal(b.p[b.len], '\0');
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_and_detach),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
