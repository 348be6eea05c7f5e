/* test_http_response.c: the response builders that need no server
 * (http_response_content_type, http_response_header). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/http.h"

/* Issue 10, item 4: the server reads the content type after the handler has
 * returned, so it must not point into the handler's stack: it is copied. */
static void test_issue10_4_content_type_copied(void **state)
{
    struct http_response resp;
    char ctype[HTTP_CONTENT_TYPE_MAX + 2];

    (void)state;
    memset(&resp, 0, sizeof(resp));
    strcpy(ctype, "application/pdf");
    assert_int_equal(http_response_content_type(&resp, ctype), CD_OK);
    memset(ctype, 'x', sizeof(ctype) - 1); /* the handler's buffer goes away */
    ctype[sizeof(ctype) - 1] = '\0';
    assert_string_equal(resp.content_type, "application/pdf");
    assert_ptr_not_equal(resp.content_type, ctype);

    /* Longest that fits, then one byte more: refused, the old one kept. */
    ctype[HTTP_CONTENT_TYPE_MAX] = '\0';
    assert_int_equal(http_response_content_type(&resp, ctype), CD_OK);
    assert_int_equal(strlen(resp.content_type), HTTP_CONTENT_TYPE_MAX);
    ctype[HTTP_CONTENT_TYPE_MAX] = 'x';
    assert_int_equal(http_response_content_type(&resp, ctype), CD_ERR_TOO_LARGE);
    assert_int_equal(strlen(resp.content_type), HTTP_CONTENT_TYPE_MAX);
}

static void test_content_type_refused(void **state)
{
    struct http_response resp;

    (void)state;
    memset(&resp, 0, sizeof(resp));
    assert_int_equal(http_response_content_type(&resp, ""), CD_ERR_INVALID);
    assert_int_equal(http_response_content_type(&resp, "text/plain\r\nX-Evil: 1"), CD_ERR_INVALID);
    assert_int_equal(http_response_content_type(&resp, NULL), CD_ERR_INVALID);
    assert_int_equal(http_response_content_type(NULL, "text/plain"), CD_ERR_INVALID);
    assert_null(resp.content_type);
    assert_int_equal(http_response_content_type(&resp, "text/plain;\tcharset=utf-8"), CD_OK);
}

static void test_header_copied(void **state)
{
    struct http_response resp;
    char value[32] = "abc";

    (void)state;
    memset(&resp, 0, sizeof(resp));
    assert_int_equal(http_response_header(&resp, "X-Test", value), CD_OK);
    value[0] = 'z';
    assert_string_equal(resp.headers[0].value, "abc");
    assert_int_equal(http_response_header(&resp, "X-Bad", "a\nb"), CD_ERR_INVALID);
    assert_int_equal(http_response_header(&resp, "Bad Name", "a"), CD_ERR_INVALID);
    assert_int_equal(resp.n_headers, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue10_4_content_type_copied),
        cmocka_unit_test(test_content_type_refused),
        cmocka_unit_test(test_header_copied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
