/* test_qr.c: qr_svg (src/qr): a well-formed, compact SVG with one path, a
 * viewBox of one unit per module plus the quiet zone, nothing active or
 * external; the input rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qr/qr.h"

static const char uri[] = "otpauth://totp/confidoc:bobross?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
                          "&issuer=confidoc&algorithm=SHA1&digits=6&period=30";

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(s, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Elements open and close in order: every '<' starts a tag that ends with
 * '>', "<x .../>" closes itself, "</x>" closes the innermost open one. */
static void assert_well_formed(const char *s)
{
    char stack[8][16];
    int depth = 0;

    for (const char *p = strchr(s, '<'); p != NULL; p = strchr(p + 1, '<')) {
        const char *end = strchr(p, '>');
        char name[16];
        size_t n = 0;
        bool closing = p[1] == '/';
        const char *q = p + 1 + closing;

        assert_non_null(end);
        assert_null(memchr(p + 1, '<', (size_t)(end - p - 1)));
        while (q < end && q[0] != ' ' && q[0] != '/' && n < sizeof(name) - 1)
            name[n++] = *q++;
        name[n] = '\0';
        assert_true(n > 0);
        if (closing) {
            assert_true(depth > 0);
            assert_string_equal(stack[--depth], name);
        } else if (end[-1] != '/') {
            assert_true(depth < 8);
            strcpy(stack[depth++], name);
        }
    }
    assert_int_equal(depth, 0);
}

static void test_svg_sample(void **state)
{
    char *svg = NULL, view[64];
    size_t len = 0, side;
    (void)state;

    assert_int_equal(qr_svg(uri, strlen(uri), &svg, &len), CD_OK);
    assert_non_null(svg);
    assert_int_equal(strlen(svg), len);
    assert_true(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 ", 53) == 0);
    assert_int_equal(sscanf(svg + 53, "%zu", &side), 1);
    /* A version-v code has 17 + 4v modules (v 1..40); this 121-byte text at
     * level M needs version 7 (at most 122 bytes): 45 modules. */
    assert_int_equal(strlen(uri), 121);
    assert_int_equal(side, 45 + 2 * QR_QUIET_ZONE);
    snprintf(view, sizeof(view), "viewBox=\"0 0 %zu %zu\"", side, side);
    assert_non_null(strstr(svg, view));
    assert_int_equal(count(svg, "<path"), 1);
    assert_int_equal(count(svg, "<svg"), 1);
    assert_true(strcmp(svg + len - 6, "</svg>") == 0);
    assert_null(strstr(svg, "script"));
    assert_null(strstr(svg, "href"));
    assert_null(strstr(svg, "url("));
    assert_null(strstr(svg, "style"));
    assert_well_formed(svg);
    /* Compact: a few kilobytes, not one element per module. */
    assert_true(len < 16 * 1024);
    /* The finder pattern's top row at the quiet zone: a run of 7 dark modules. */
    assert_non_null(strstr(svg, "d=\"M4 4h7v1h-7z"));
    memset(svg, 0, len);
    free(svg);
}

static void test_input_rules(void **state)
{
    char big[QR_TEXT_MAX + 2];
    char *svg = NULL;
    size_t len = 0;
    (void)state;

    assert_int_equal(qr_svg("", 0, &svg, &len), CD_ERR_INVALID);
    assert_int_equal(qr_svg("a\0b", 3, &svg, &len), CD_ERR_INVALID);
    memset(big, 'a', sizeof(big));
    assert_int_equal(qr_svg(big, QR_TEXT_MAX + 1, &svg, &len), CD_ERR_TOO_LARGE);
    assert_null(svg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_svg_sample),
        cmocka_unit_test(test_input_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
