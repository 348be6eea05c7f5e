/* auth_cookie.c: the session cookie in a Cookie header (RFC 6265 section
 * 4.2.1), parsed strictly and within a bound; pure. */
#include <string.h>

#include "auth/auth.h"
#include "common/codec.h"

#define COOKIE_NAME_LEN (sizeof(AUTH_SESSION_COOKIE) - 1)

/* RFC 6265 cookie-octet: printable US-ASCII but for '"', ',', ';' and '\\'. */
static bool cookie_octet(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
           (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

/* RFC 7230 tchar (a cookie name is a token). */
static bool tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* One pair at s[0..n): name into [*name, *name_len), value (quotes removed)
 * into [*val, *val_len). false when it is not name=value. */
static bool cookie_pair(const char *s, size_t n, const char **name, size_t *name_len,
                        const char **val, size_t *val_len)
{
    const char *eq = memchr(s, '=', n);
    size_t nl, vl;
    const char *v;

    if (eq == NULL)
        return false;
    nl = (size_t)(eq - s);
    v = eq + 1;
    vl = n - nl - 1;
    if (nl == 0)
        return false;
    for (size_t i = 0; i < nl; i++) {
        if (!tchar((unsigned char)s[i]))
            return false;
    }
    if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
        v++;
        vl -= 2;
    }
    for (size_t i = 0; i < vl; i++) {
        if (!cookie_octet((unsigned char)v[i]))
            return false;
    }
    *name = s;
    *name_len = nl;
    *val = v;
    *val_len = vl;
    return true;
}

cd_err auth_parse_session_cookie(const char *header, uint8_t token[AUTH_TOKEN_BYTES])
{
    const char *found = NULL, *p;
    size_t found_len = 0, len;

    if (header == NULL)
        return CD_ERR_NOT_FOUND;
    len = strnlen(header, AUTH_COOKIE_HEADER_MAX + 1);
    if (len > AUTH_COOKIE_HEADER_MAX)
        return CD_ERR_INVALID;
    p = header;
    while (p < header + len) {
        const char *end = memchr(p, ';', (size_t)(header + len - p)), *name, *val;
        size_t n, name_len, val_len;

        if (end == NULL)
            end = header + len;
        while (p < end && (*p == ' ' || *p == '\t')) /* browsers send "; " */
            p++;
        n = (size_t)(end - p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (!cookie_pair(p, n, &name, &name_len, &val, &val_len))
            return CD_ERR_INVALID;
        if (name_len == COOKIE_NAME_LEN && memcmp(name, AUTH_SESSION_COOKIE, name_len) == 0) {
            if (found != NULL)
                return CD_ERR_INVALID; /* two session cookies: which one is meant? */
            found = val;
            found_len = val_len;
        }
        p = end < header + len ? end + 1 : end;
    }
    if (found == NULL)
        return CD_ERR_NOT_FOUND;
    return codec_b64url_decode_exact(found, found_len, token, AUTH_TOKEN_BYTES);
}
