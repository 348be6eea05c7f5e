/* test_common_jsonw.c: the fixed-shape JSON writer (common/jsonw) writes exactly
 * what jansson's json_dumpb(JSON_COMPACT) writes for the same object. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/jsonw.h"

/* The same object through jansson, compact. */
static char *via_jansson(const struct jsonw_field *f, size_t n, size_t *len)
{
    json_t *obj = json_object();
    char *text;

    assert_non_null(obj);
    for (size_t i = 0; i < n; i++) {
        json_t *v = f[i].kind == JSONW_STR   ? json_stringn(f[i].s, f[i].len)
                    : f[i].kind == JSONW_INT ? json_integer(f[i].i)
                                             : json_null();
        assert_non_null(v);
        assert_int_equal(json_object_set_new(obj, f[i].key, v), 0);
    }
    *len = json_dumpb(obj, NULL, 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
    text = malloc(*len);
    assert_non_null(text);
    assert_int_equal(json_dumpb(obj, text, *len, JSON_COMPACT | JSON_PRESERVE_ORDER), *len);
    json_decref(obj);
    return text;
}

static void check_same(const struct jsonw_field *f, size_t n)
{
    uint8_t *ours = NULL;
    size_t ours_len = 0, theirs_len = 0;
    char *theirs = via_jansson(f, n, &theirs_len);

    assert_int_equal(jsonw_object(f, n, &ours, &ours_len), CD_OK);
    assert_int_equal(ours_len, theirs_len);
    assert_memory_equal(ours, theirs, ours_len);
    free(ours);
    free(theirs);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

/* Random valid UTF-8 of n characters, rich in what must be escaped. */
static size_t random_utf8(char *out, size_t chars)
{
    static const char *const pieces[] = {"\"",
                                         "\\",
                                         "/",
                                         "\b",
                                         "\f",
                                         "\n",
                                         "\r",
                                         "\t",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "\xc3\xa9",
                                         "\xe2\x80\xa8",
                                         "\xf0\x9f\x98\x80",
                                         "a",
                                         "Z",
                                         " ",
                                         "{",
                                         "}",
                                         "u"};
    size_t len = 0;

    for (size_t i = 0; i < chars; i++) {
        const char *p;
        if (rnd() % 3 == 0) {
            p = pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
            memcpy(out + len, p, strlen(p));
            len += strlen(p);
        } else {
            out[len++] = (char)(0x20 + rnd() % 0x5f); /* printable ASCII */
        }
    }
    return len;
}

static void test_matches_jansson(void **state)
{
    static char text[4 * 300];
    (void)state;

    for (int round = 0; round < 3000; round++) {
        size_t len = random_utf8(text, rnd() % 300);
        struct jsonw_field f[] = {
            {.key = "record_id", .kind = JSONW_INT, .i = (int64_t)rnd() * (round % 2 ? -1 : 1)},
            {.key = "content", .kind = JSONW_STR, .s = text, .len = len},
            {.key = "next_after", .kind = JSONW_NULL},
        };
        check_same(f, 3);
    }
}

static void test_edges(void **state)
{
    static const char all_ctl[] = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e"
                                  "\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d"
                                  "\x1e\x1f\"\\";
    struct jsonw_field f[] = {
        {.key = "a", .kind = JSONW_STR, .s = "", .len = 0},
        {.key = "b", .kind = JSONW_INT, .i = INT64_MIN},
        {.key = "c", .kind = JSONW_INT, .i = INT64_MAX},
        {.key = "d", .kind = JSONW_STR, .s = all_ctl, .len = sizeof(all_ctl) - 1},
        {.key = "e", .kind = JSONW_INT, .i = 0},
    };
    uint8_t *out = NULL;
    size_t n = 0;
    (void)state;

    check_same(f, 5);
    /* Every alignment of an escape inside and across 8-byte words. */
    for (size_t at = 0; at < 24; at++) {
        char s[32];
        memset(s, 'x', sizeof(s));
        s[at] = '\x1b';
        struct jsonw_field g = {.key = "k", .kind = JSONW_STR, .s = s, .len = sizeof(s)};
        check_same(&g, 1);
        s[at] = '"';
        check_same(&g, 1);
    }
    assert_int_equal(jsonw_object(f, 0, &out, &n), CD_ERR_INVALID);
    assert_int_equal(jsonw_object(f, JSONW_MAX_FIELDS + 1, &out, &n), CD_ERR_INVALID);
    f[0].s = NULL;
    f[0].len = 3;
    assert_int_equal(jsonw_object(f, 1, &out, &n), CD_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_jansson),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
