/* test_router.c: every route and method, 404s, 405 with Allow, parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "router/router.h"

/* router_fill, given the id router_match found, fills the same match. */
static void expect_fill_same(const struct route_match *want, const char *path)
{
    struct route_match m;

    memset(&m, 0xa5, sizeof(m));
    assert_int_equal(router_fill(want->id, path, &m), ROUTER_OK);
    assert_int_equal(m.id, want->id);
    assert_ptr_equal(m.pattern, want->pattern);
    assert_string_equal(m.param, want->param);
    assert_int_equal(m.param_too_long, want->param_too_long);
}

static void expect_ok(const char *method, const char *path, enum route_id id, const char *pattern,
                      const char *param)
{
    struct route_match m;
    char allow[64] = "";

    memset(&m, 0x5a, sizeof(m));
    assert_int_equal(router_match(method, path, &m, allow, sizeof(allow)), ROUTER_OK);
    assert_int_equal(m.id, id);
    assert_string_equal(m.pattern, pattern);
    assert_string_equal(m.param, param);
    assert_int_equal(m.param_too_long, 0);
    expect_fill_same(&m, path);
}

static void expect_405(const char *method, const char *path, const char *pattern,
                       const char *allow_want)
{
    struct route_match m;
    char allow[64] = "";

    memset(&m, 0, sizeof(m));
    assert_int_equal(router_match(method, path, &m, allow, sizeof(allow)),
                     ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(allow, allow_want);
    assert_string_equal(m.pattern, pattern);
}

static void expect_404(const char *method, const char *path)
{
    struct route_match m;
    char allow[64] = "";

    memset(&m, 0, sizeof(m));
    assert_int_equal(router_match(method, path, &m, allow, sizeof(allow)), ROUTER_NOT_FOUND);
}

static void test_every_route(void **state)
{
    (void)state;
    expect_ok("GET", "/healthz", ROUTE_HEALTHZ, "/healthz", "");
    expect_ok("GET", "/readyz", ROUTE_READYZ, "/readyz", "");
    expect_ok("GET", "/users/create_account", ROUTE_CREATE_ACCOUNT_GET, "/users/create_account",
              "");
    expect_ok("POST", "/users/create_account", ROUTE_CREATE_ACCOUNT_POST, "/users/create_account",
              "");
    expect_ok("GET", "/users/me", ROUTE_ME_GET, "/users/me", "");
    expect_ok("DELETE", "/users/me", ROUTE_ME_DELETE, "/users/me", "");
    expect_ok("POST", "/users/me/password", ROUTE_ME_PASSWORD, "/users/me/password", "");
    expect_ok("POST", "/users/recover", ROUTE_RECOVER, "/users/recover", "");
    expect_ok("POST", "/users/me/rotate-key", ROUTE_ME_ROTATE_KEY, "/users/me/rotate-key", "");
    expect_ok("POST", "/documents/create_document", ROUTE_CREATE_DOCUMENT,
              "/documents/create_document", "");
    expect_ok("GET", "/documents", ROUTE_DOCUMENTS, "/documents", "");
    expect_ok("GET", "/documents/abc123", ROUTE_DOCUMENT_GET, "/documents/{record_id}", "abc123");
    expect_ok("PUT", "/documents/abc123", ROUTE_DOCUMENT_PUT, "/documents/{record_id}", "abc123");
    expect_ok("DELETE", "/documents/abc123", ROUTE_DOCUMENT_DELETE, "/documents/{record_id}",
              "abc123");
    expect_ok("GET", "/documents/x/content", ROUTE_DOCUMENT_CONTENT,
              "/documents/{record_id}/content", "x");
}

/* One id per (path, method): no two accepted pairs share an id, and every id
 * but ROUTE_NONE is reached by exactly one pair. */
static void test_issue10_1_one_id_per_method(void **state)
{
    static const struct {
        const char *method, *path;
    } pairs[] = {
        {"GET", "/healthz"},
        {"GET", "/readyz"},
        {"GET", "/users/create_account"},
        {"POST", "/users/create_account"},
        {"GET", "/users/me"},
        {"DELETE", "/users/me"},
        {"POST", "/users/me/password"},
        {"POST", "/users/recover"},
        {"POST", "/users/me/rotate-key"},
        {"POST", "/documents/create_document"},
        {"GET", "/documents"},
        {"GET", "/documents/1"},
        {"PUT", "/documents/1"},
        {"DELETE", "/documents/1"},
        {"GET", "/documents/1/content"},
        {"POST", "/auth/login"},
        {"POST", "/auth/logout"},
        {"POST", "/users/me/totp"},
        {"DELETE", "/users/me/totp"},
        {"POST", "/users/me/totp/confirm"},
        {"GET", "/users/me/app-passwords"},
        {"POST", "/users/me/app-passwords"},
        {"DELETE", "/users/me/app-passwords/7"},
    };
    int seen[ROUTE__COUNT] = {0};
    struct route_match m;

    (void)state;
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        assert_int_equal(router_match(pairs[i].method, pairs[i].path, &m, NULL, 0), ROUTER_OK);
        assert_true(m.id > ROUTE_NONE && m.id < ROUTE__COUNT);
        seen[m.id]++;
    }
    for (int id = ROUTE_NONE + 1; id < ROUTE__COUNT; id++)
        assert_int_equal(seen[id], 1);
}

/* Issue 14: the session, two-factor and application password routes. */
static void test_issue14_routes(void **state)
{
    struct route_match m;
    char allow[64];

    (void)state;
    assert_int_equal(router_match("POST", "/auth/login", &m, NULL, 0), ROUTER_OK);
    assert_int_equal(m.id, ROUTE_AUTH_LOGIN);
    assert_int_equal(router_match("GET", "/auth/login", &m, allow, sizeof(allow)),
                     ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(allow, "POST");
    assert_int_equal(router_match("POST", "/users/me/totp/confirm", &m, NULL, 0), ROUTER_OK);
    assert_int_equal(m.id, ROUTE_ME_TOTP_CONFIRM);
    assert_int_equal(router_match("PUT", "/users/me/totp", &m, allow, sizeof(allow)),
                     ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(allow, "POST, DELETE");
    assert_int_equal(router_match("DELETE", "/users/me/app-passwords/12", &m, NULL, 0), ROUTER_OK);
    assert_int_equal(m.id, ROUTE_ME_APPPW_DELETE);
    assert_string_equal(m.param, "12");
    assert_string_equal(m.pattern, "/users/me/app-passwords/{id}");
    assert_int_equal(router_match("DELETE", "/users/me/app-passwords/", &m, NULL, 0),
                     ROUTER_NOT_FOUND);
    assert_int_equal(router_match("DELETE", "/users/me/app-passwords/1/x", &m, NULL, 0),
                     ROUTER_NOT_FOUND);
}

static void test_method_not_allowed(void **state)
{
    (void)state;
    expect_405("POST", "/healthz", "/healthz", "GET");
    expect_405("HEAD", "/healthz", "/healthz", "GET");
    expect_405("OPTIONS", "/readyz", "/readyz", "GET");
    expect_405("PUT", "/users/create_account", "/users/create_account", "GET, POST");
    expect_405("POST", "/users/me", "/users/me", "GET, DELETE");
    expect_405("GET", "/users/me/password", "/users/me/password", "POST");
    expect_405("GET", "/users/recover", "/users/recover", "POST");
    expect_405("GET", "/documents/create_document", "/documents/create_document", "POST");
    expect_405("POST", "/documents", "/documents", "GET");
    expect_405("POST", "/documents/abc", "/documents/{record_id}", "GET, PUT, DELETE");
    expect_405("HEAD", "/documents/abc", "/documents/{record_id}", "GET, PUT, DELETE");
    expect_405("DELETE", "/documents/abc/content", "/documents/{record_id}/content", "GET");
    expect_405("get", "/healthz", "/healthz", "GET"); /* methods are case-sensitive */
}

static void test_not_found(void **state)
{
    (void)state;
    expect_404("GET", "/");
    expect_404("GET", "");
    expect_404("GET", "/unknown");
    expect_404("GET", "/healthz/");
    expect_404("GET", "/documents/");
    expect_404("GET", "/users/me/");
    expect_404("GET", "/documents/abc/");
    expect_404("GET", "/documents/abc/content/");
    expect_404("GET", "/documents//content");
    expect_404("GET", "/documents/abc/other");
    expect_404("GET", "/documents/abc/content/extra");
    expect_404("GET", "/users/me/password/x");
    expect_404("GET", "/healthzz");
    expect_404("GET", "//healthz");
    expect_404("GET", "/Documents");
    expect_404("GET", "/users");
}

/* router_fill refuses an id the path does not have the shape of. */
static void test_fill_refuses_other_shapes(void **state)
{
    struct route_match m;

    (void)state;
    assert_int_equal(router_fill(ROUTE_NONE, "/healthz", &m), ROUTER_NOT_FOUND);
    assert_int_equal(router_fill(ROUTE__COUNT, "/healthz", &m), ROUTER_NOT_FOUND);
    assert_int_equal(router_fill(ROUTE_HEALTHZ, "/readyz", &m), ROUTER_NOT_FOUND);
    assert_int_equal(router_fill(ROUTE_DOCUMENT_GET, "/documents/a/content", &m), ROUTER_NOT_FOUND);
    assert_int_equal(router_fill(ROUTE_DOCUMENT_CONTENT, "/documents/a", &m), ROUTER_NOT_FOUND);
    assert_int_equal(router_fill(ROUTE_DOCUMENT_GET, "/documents/", &m), ROUTER_NOT_FOUND);
    assert_int_equal(router_fill(ROUTE_ME_GET, NULL, &m), ROUTER_NOT_FOUND);
    assert_int_equal(router_fill(ROUTE_DOCUMENT_GET, "/documents/xyz", &m), ROUTER_OK);
    assert_string_equal(m.param, "xyz");
}

static void test_allow_buffer_small(void **state)
{
    struct route_match m;
    char allow[8];

    (void)state;
    assert_int_equal(router_match("POST", "/documents/a", &m, allow, sizeof(allow)),
                     ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(allow, "GET"); /* truncated at a method boundary */
    assert_int_equal(router_match("POST", "/documents/a", &m, NULL, 0), ROUTER_METHOD_NOT_ALLOWED);
}

static void test_param_lengths(void **state)
{
    char path[256];
    char seg[200];
    struct route_match m;
    char allow[64];

    (void)state;
    /* ROUTER_PARAM_MAX - 1 bytes fit. */
    memset(seg, 'a', ROUTER_PARAM_MAX - 1);
    seg[ROUTER_PARAM_MAX - 1] = '\0';
    snprintf(path, sizeof(path), "/documents/%s", seg);
    assert_int_equal(router_match("GET", path, &m, allow, sizeof(allow)), ROUTER_OK);
    assert_int_equal(m.param_too_long, 0);
    assert_string_equal(m.param, seg);

    /* One more does not: still routed, flagged, param empty. */
    memset(seg, 'b', ROUTER_PARAM_MAX);
    seg[ROUTER_PARAM_MAX] = '\0';
    snprintf(path, sizeof(path), "/documents/%s/content", seg);
    assert_int_equal(router_match("GET", path, &m, allow, sizeof(allow)), ROUTER_OK);
    assert_int_equal(m.id, ROUTE_DOCUMENT_CONTENT);
    assert_int_equal(m.param_too_long, 1);
    assert_string_equal(m.param, "");
    expect_fill_same(&m, path);

    memset(seg, 'c', 150);
    seg[150] = '\0';
    snprintf(path, sizeof(path), "/documents/%s", seg);
    assert_int_equal(router_match("DELETE", path, &m, allow, sizeof(allow)), ROUTER_OK);
    assert_int_equal(m.id, ROUTE_DOCUMENT_DELETE);
    assert_int_equal(m.param_too_long, 1);
    assert_string_equal(m.param, "");
}

static void test_param_is_raw(void **state)
{
    struct route_match m;
    char allow[64];

    (void)state;
    /* Validation is the caller's: anything but '/' goes through. */
    assert_int_equal(router_match("GET", "/documents/..", &m, allow, sizeof(allow)), ROUTER_OK);
    assert_string_equal(m.param, "..");
    assert_int_equal(router_match("GET", "/documents/a b%", &m, allow, sizeof(allow)), ROUTER_OK);
    assert_string_equal(m.param, "a b%");
    /* A literal sibling wins over the parameter route. */
    assert_int_equal(router_match("POST", "/documents/create_document", &m, allow, sizeof(allow)),
                     ROUTER_OK);
    assert_int_equal(m.id, ROUTE_CREATE_DOCUMENT);
    /* NULL arguments never crash. */
    assert_int_equal(router_match(NULL, "/healthz", &m, allow, sizeof(allow)), ROUTER_NOT_FOUND);
    assert_int_equal(router_match("GET", NULL, &m, allow, sizeof(allow)), ROUTER_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route),
        cmocka_unit_test(test_issue14_routes),
        cmocka_unit_test(test_issue10_1_one_id_per_method),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_allow_buffer_small),
        cmocka_unit_test(test_fill_refuses_other_shapes),
        cmocka_unit_test(test_param_lengths),
        cmocka_unit_test(test_param_is_raw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
