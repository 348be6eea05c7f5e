/* test_auth_cookie.c: the session cookie in a Cookie header
 * (auth_parse_session_cookie): several cookies, the exact name, quoting,
 * malformed headers, duplicates, the bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "common/codec.h"

/* A token of bytes 0, 1, 2, ... and its base64url. */
static uint8_t tok[AUTH_TOKEN_BYTES];
static char tok_text[AUTH_TOKEN_STRLEN];

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(tok); i++)
        tok[i] = (uint8_t)(i * 7 + 3);
    return codec_b64url_encode(tok, sizeof(tok), tok_text, sizeof(tok_text)) == CD_OK ? 0 : -1;
}

/* fmt with every '@' replaced by the token's text. */
static void expand(const char *fmt, char *h, size_t cap)
{
    size_t o = 0;

    for (const char *p = fmt; *p != '\0' && o + AUTH_TOKEN_STRLEN < cap; p++) {
        if (*p == '@') {
            memcpy(h + o, tok_text, AUTH_TOKEN_STRLEN - 1);
            o += AUTH_TOKEN_STRLEN - 1;
        } else {
            h[o++] = *p;
        }
    }
    h[o] = '\0';
}

static cd_err parse_fmt(const char *fmt, uint8_t out[AUTH_TOKEN_BYTES])
{
    char h[512];
    expand(fmt, h, sizeof(h));
    return auth_parse_session_cookie(h, out);
}

static void test_found(void **state)
{
    static const char *const ok[] = {
        AUTH_SESSION_COOKIE "=@",
        "theme=dark; " AUTH_SESSION_COOKIE "=@",
        AUTH_SESSION_COOKIE "=@; theme=dark",
        "a=1;b=2;" AUTH_SESSION_COOKIE "=@;c=",
        "  " AUTH_SESSION_COOKIE "=\"@\"  ",
        "x_" AUTH_SESSION_COOKIE "=zz; " AUTH_SESSION_COOKIE "=@",
    };
    uint8_t out[AUTH_TOKEN_BYTES];
    (void)state;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        memset(out, 0, sizeof(out));
        assert_int_equal(parse_fmt(ok[i], out), CD_OK);
        assert_memory_equal(out, tok, sizeof(tok));
    }
}

static void test_not_found(void **state)
{
    uint8_t out[AUTH_TOKEN_BYTES];
    (void)state;

    assert_int_equal(auth_parse_session_cookie(NULL, out), CD_ERR_NOT_FOUND);
    assert_int_equal(parse_fmt("theme=dark", out), CD_ERR_NOT_FOUND);
    assert_int_equal(parse_fmt("", out), CD_ERR_NOT_FOUND); /* no cookies at all */
    /* The name exactly: no other case, no prefix of it, no longer name. */
    assert_int_equal(parse_fmt("__host-confidoc_session=@", out), CD_ERR_NOT_FOUND);
    assert_int_equal(parse_fmt("__Host-confidoc_sessio=@", out), CD_ERR_NOT_FOUND);
    assert_int_equal(parse_fmt("__Host-confidoc_session2=@", out), CD_ERR_NOT_FOUND);
}

static void test_invalid(void **state)
{
    static const char *const bad[] = {
        AUTH_SESSION_COOKIE,                                 /* no '=' */
        "=@",                                                /* no name */
        "a b=1; " AUTH_SESSION_COOKIE "=@",                  /* space in a name */
        AUTH_SESSION_COOKIE "=@;; x=1",                      /* empty pair */
        AUTH_SESSION_COOKIE "=@, x=1",                       /* ',' is not a cookie-octet */
        AUTH_SESSION_COOKIE "=@; " AUTH_SESSION_COOKIE "=@", /* twice */
        AUTH_SESSION_COOKIE "=@A",                           /* 44 characters */
        AUTH_SESSION_COOKIE "=\"@",                          /* an open quote */
        AUTH_SESSION_COOKIE "=",                             /* empty value */
    };
    uint8_t out[AUTH_TOKEN_BYTES];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char h[512];
        memset(out, 0x5a, sizeof(out));
        expand(bad[i], h, sizeof(h));
        assert_int_equal(auth_parse_session_cookie(h, out), CD_ERR_INVALID);
        for (size_t k = 0; k < sizeof(out); k++)
            assert_int_equal(out[k], 0x5a); /* untouched */
    }
}

/* A header over AUTH_COOKIE_HEADER_MAX is refused before it is parsed. */
static void test_bound(void **state)
{
    size_t n = AUTH_COOKIE_HEADER_MAX + 1;
    char *h = malloc(n + 1);
    uint8_t out[AUTH_TOKEN_BYTES];
    (void)state;

    assert_non_null(h);
    memset(h, 'a', n);
    h[0] = 'x';
    h[1] = '=';
    h[n] = '\0';
    assert_int_equal(auth_parse_session_cookie(h, out), CD_ERR_INVALID);
    h[n - 1] = '\0'; /* exactly the bound: parsed (no session cookie in it) */
    assert_int_equal(auth_parse_session_cookie(h, out), CD_ERR_NOT_FOUND);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_found),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_bound),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
