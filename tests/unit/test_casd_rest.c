/* test_casd_rest.c: the CAS worker's HTTP parsing and routing, its bounds,
 * the session upload's JSON, and the response writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "casd/rest.h"

/* Appends s to dst (cap bytes, NUL-terminated). */
static void append(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(dst);
    assert_true(n + strlen(s) < cap);
    memcpy(dst + n, s, strlen(s) + 1);
}

static int parse(const char *s, struct casd_rest_req *req)
{
    size_t used = 0;
    int status = 0;
    const char *detail = NULL;
    enum casd_rest_result r = casd_rest_parse(s, strlen(s), req, &used, &status, &detail);
    if (r == CASD_REST_MORE)
        return 0;
    if (r == CASD_REST_DONE) {
        assert_int_equal(used, strlen(s));
        return 200;
    }
    assert_non_null(detail);
    return status;
}

static void test_routes(void **state)
{
    struct casd_rest_req req;

    (void)state;
    assert_int_equal(
        parse("GET /v1/values/session=nginx,secret=SERVER_CA HTTP/1.1\r\nHost: x\r\n\r\n", &req),
        200);
    assert_int_equal(req.route, CASD_ROUTE_VALUE);
    assert_string_equal(req.session, "nginx");
    assert_string_equal(req.secret, "SERVER_CA");
    assert_int_equal(parse("GET /v1/sessions/demo HTTP/1.1\r\n\r\n", &req), 200);
    assert_int_equal(req.route, CASD_ROUTE_SESSION_GET);
    assert_string_equal(req.session, "demo");
    assert_int_equal(parse("POST /v1/sessions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", &req), 200);
    assert_int_equal(req.route, CASD_ROUTE_SESSION_PUT);
    assert_int_equal(req.body_len, 2);
    /* not found, method not allowed */
    assert_int_equal(parse("GET /v1/values/session=Nginx,secret=A HTTP/1.1\r\n\r\n", &req), 404);
    assert_int_equal(parse("GET /v1/values/session=n,secret=A/B HTTP/1.1\r\n\r\n", &req), 404);
    assert_int_equal(parse("GET /v1/values/session=n,secret= HTTP/1.1\r\n\r\n", &req), 404);
    assert_int_equal(parse("GET /v1/values/secret=A,session=n HTTP/1.1\r\n\r\n", &req), 404);
    assert_int_equal(parse("GET /v1/sessions/../x HTTP/1.1\r\n\r\n", &req), 404);
    assert_int_equal(parse("GET /v1/sessions/demo?x=1 HTTP/1.1\r\n\r\n", &req), 404);
    assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n", &req), 404);
    assert_int_equal(parse("DELETE /v1/sessions/demo HTTP/1.1\r\n\r\n", &req), 405);
    assert_int_equal(parse("GET /v1/sessions HTTP/1.1\r\n\r\n", &req), 405);
    assert_int_equal(parse("POST /v1/values/session=n,secret=A HTTP/1.1\r\n\r\n", &req), 405);
}

static void test_framing(void **state)
{
    struct casd_rest_req req;
    char *big;

    (void)state;
    assert_int_equal(parse("GET /v1/sessions/demo HTTP/1.1\r\nHost: x\r\n", &req), 0);
    assert_int_equal(parse("POST /v1/sessions HTTP/1.1\r\nContent-Length: 5\r\n\r\n{}", &req), 0);
    assert_int_equal(parse("POST /v1/sessions HTTP/1.1\r\n\r\n", &req), 411);
    assert_int_equal(
        parse("POST /v1/sessions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &req), 411);
    assert_int_equal(
        parse(
            "POST /v1/sessions HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
            &req),
        400);
    assert_int_equal(
        parse("POST /v1/sessions HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", &req),
        400);
    assert_int_equal(parse("POST /v1/sessions HTTP/1.1\r\nContent-Length: 262145\r\n\r\n", &req),
                     413);
    assert_int_equal(parse("POST /v1/sessions HTTP/1.1\r\nContent-Length: -1\r\n\r\n", &req), 400);
    assert_int_equal(parse("GET /v1/sessions/demo HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", &req),
                     400);
    assert_int_equal(parse("GET /v1/sessions/demo HTTP/1.1\r\n folded\r\n\r\n", &req), 400);
    assert_int_equal(parse("GET /v1/sessions/demo HTTP/1.1\r\nNo colon\r\n\r\n", &req), 400);
    assert_int_equal(parse("GET /v1/sessions/demo HTTP/1.1\r\nX: a\001b\r\n\r\n", &req), 400);
    assert_int_equal(parse("GET /v1/sessions/demo HTTP/2.0\r\n\r\n", &req), 400);
    assert_int_equal(parse("GET  /v1/sessions/demo HTTP/1.1\r\n\r\n", &req), 400);
    assert_int_equal(parse("GET\r\n\r\n", &req), 400);

    big = malloc(CASD_REST_REQUEST_MAX);
    assert_non_null(big);
    /* request line: 8 KiB without CRLF */
    memset(big, 'a', CASD_REST_LINE_MAX);
    memcpy(big, "GET /", 5);
    big[CASD_REST_LINE_MAX] = '\0';
    assert_int_equal(parse(big, &req), 414);
    big[CASD_REST_LINE_MAX - 1] = '\0';
    assert_int_equal(parse(big, &req), 0);
    /* 65 headers */
    big[0] = '\0';
    append(big, CASD_REST_REQUEST_MAX, "GET /v1/sessions/demo HTTP/1.1\r\n");
    for (int i = 0; i < 65; i++)
        append(big, CASD_REST_REQUEST_MAX, "X-A: b\r\n");
    append(big, CASD_REST_REQUEST_MAX, "\r\n");
    assert_int_equal(parse(big, &req), 431);
    /* 64 headers are fine */
    big[0] = '\0';
    append(big, CASD_REST_REQUEST_MAX, "GET /v1/sessions/demo HTTP/1.1\r\n");
    for (int i = 0; i < 64; i++)
        append(big, CASD_REST_REQUEST_MAX, "X-A: b\r\n");
    append(big, CASD_REST_REQUEST_MAX, "\r\n");
    assert_int_equal(parse(big, &req), 200);
    /* headers over 16 KiB */
    big[0] = '\0';
    append(big, CASD_REST_REQUEST_MAX, "GET /v1/sessions/demo HTTP/1.1\r\nX-A: ");
    size_t n = strlen(big);
    memset(big + n, 'b', CASD_REST_HEADERS_MAX);
    big[n + CASD_REST_HEADERS_MAX] = '\0';
    append(big, CASD_REST_REQUEST_MAX, "\r\n\r\n");
    assert_int_equal(parse(big, &req), 431);
    free(big);
}

static void test_put_body(void **state)
{
    struct casd_put_body b;
    const char *ok = "{\"session\": \"name: a\\n\\u00e9\\ud83d\\ude00\", \"signatures\": "
                     "[{\"public_key\": \"PEM\", \"signature\": \"MAEA\"}]}";

    (void)state;
    assert_int_equal(casd_put_body_parse(ok, strlen(ok), &b), CD_OK);
    assert_string_equal(b.session, "name: a\n\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(b.nsigs, 1);
    assert_string_equal(b.sigs[0].public_key, "PEM");
    assert_int_equal(b.sigs[0].signature_len, 3);
    casd_put_body_release(&b);
    const char *plain = " { \"session\" : \"\" } ";
    assert_int_equal(casd_put_body_parse(plain, strlen(plain), &b), CD_OK);
    assert_int_equal(b.session_len, 0);
    casd_put_body_release(&b);
    static const char *const bad[] = {
        "",
        "{}",
        "[]",
        "{\"session\": 1}",
        "{\"session\": \"a\", \"session\": \"b\"}",
        "{\"session\": \"a\", \"other\": \"b\"}",
        "{\"session\": \"a\"} x",
        "{\"session\": \"a\",}",
        "{\"session\": \"\\u0000\"}",
        "{\"session\": \"\\ud800\"}",
        "{\"session\": \"\\x\"}",
        "{\"session\": \"a\nb\"}",
        "{\"session\": \"a\"",
        "{\"session\": \"a\", \"signatures\": {}}",
        "{\"session\": \"a\", \"signatures\": [{\"public_key\": \"P\"}]}",
        "{\"session\": \"a\", \"signatures\": [{\"public_key\": \"P\", \"signature\": \"!!!!\"}]}",
        "{\"session\": \"a\", \"signatures\": [{\"public_key\": \"P\", \"x\": 1}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(casd_put_body_parse(bad[i], strlen(bad[i]), &b), CD_OK);
        assert_null(b.session);
    }
    /* 17 signatures: over the bound */
    char many[4096] = "{\"session\": \"a\", \"signatures\": [";
    for (int i = 0; i < 17; i++)
        append(many, sizeof(many),
               i ? ", {\"public_key\": \"P\", \"signature\": \"MAEA\"}"
                 : "{\"public_key\": \"P\", \"signature\": \"MAEA\"}");
    append(many, sizeof(many), "]}");
    assert_int_equal(casd_put_body_parse(many, strlen(many), &b), CD_ERR_TOO_LARGE);
}

static void test_json_out(void **state)
{
    struct buf b, v;

    (void)state;
    buf_init(&b, 4096);
    assert_int_equal(casd_json_add_string(&b, "a\"\\\n\x01\xc3\xa9", 7), CD_OK);
    assert_string_equal(b.p, "\"a\\\"\\\\\\n\\u0001\xc3\xa9\"");
    buf_release(&b);
    buf_init(&b, 4096);
    assert_int_equal(casd_rest_detail(&b, "not found"), CD_OK);
    assert_string_equal(b.p, "{\"detail\": \"not found\"}");
    buf_init(&v, 64);
    assert_int_equal(casd_json_get_string(b.p, b.len, "detail", &v), CD_OK);
    assert_string_equal(v.p, "not found");
    buf_release(&v);
    buf_init(&v, 64);
    assert_int_equal(casd_json_get_string(b.p, b.len, "hash", &v), CD_ERR_NOT_FOUND);
    buf_release(&v);
    buf_release(&b);
    buf_init(&b, 4096);
    assert_int_equal(casd_rest_response(&b, 404, "{}", 2), CD_OK);
    assert_non_null(strstr(b.p, "HTTP/1.1 404 Not Found\r\n"));
    assert_non_null(strstr(b.p, "Content-Type: application/json\r\n"));
    assert_non_null(strstr(b.p, "Content-Length: 2\r\n"));
    assert_non_null(strstr(b.p, "\r\n\r\n{}"));
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_put_body),
        cmocka_unit_test(test_json_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
