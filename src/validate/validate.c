/* validate.c: input rules shared by the handlers (usernames, passwords, ids, UTF-8). */
#include "validate/validate.h"

#include <string.h>

#include "common/num.h"

bool validate_utf8(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned char c;
        uint32_t cp;
        size_t n;

        if (len - i >= 8) { /* ASCII runs: eight bytes at a time */
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

bool validate_username(const char *s, size_t len)
{
    if (len < 1 || len > VALIDATE_USERNAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-'))
            return false;
    }
    return true;
}

bool validate_password(const char *s, size_t len)
{
    if (len < VALIDATE_PASSWORD_MIN || len > VALIDATE_PASSWORD_MAX)
        return false;
    if (memchr(s, '\0', len) != NULL)
        return false;
    return validate_utf8(s, len);
}

bool validate_record_id_text(const char *s, size_t len, int64_t *out)
{
    uint64_t v;

    if (len > 64 || num_parse(s, len, INT64_MAX, &v) != CD_OK)
        return false;
    *out = (int64_t)v;
    return true;
}

static bool validate_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$&-^_.+", c) != NULL;
}

bool validate_content_type(const char *s, size_t len)
{
    size_t i = 0, start;

    if (len == 0 || len > VALIDATE_CTYPE_MAX)
        return false;
    for (size_t k = 0; k < len; k++) {
        if ((unsigned char)s[k] < 0x20 || (unsigned char)s[k] > 0x7e)
            return false;
    }
    start = i;
    while (i < len && validate_token_char(s[i]))
        i++;
    if (i == start || i == len || s[i] != '/')
        return false;
    start = ++i;
    while (i < len && validate_token_char(s[i]))
        i++;
    if (i == start)
        return false;
    /* Parameters: the rest must start with ';' (printable ASCII checked above). */
    while (i < len && s[i] == ' ')
        i++;
    return i == len || s[i] == ';';
}

bool validate_json_shape(const char *s, size_t len, unsigned max_depth, size_t max_values)
{
    size_t depth = 0;
    size_t values = 1;
    bool in_string = false;
    bool escaped = false;

    if (values > max_values)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
        case '"':
            in_string = true;
            break;
        case '[':
        case '{':
            if (++depth > max_depth || ++values > max_values)
                return false;
            break;
        case ']':
        case '}':
            if (depth > 0)
                depth--;
            break;
        case ',':
            if (++values > max_values)
                return false;
            break;
        default:
            break;
        }
    }
    return true;
}
