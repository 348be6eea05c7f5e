/* json_flat.c: a one-pass reader of the JSON bodies the document routes get
 * most, {"record_id": 12, "content": "..."}, without a tree or an allocation.
 *
 * It only ever says "yes, and here are the members" for a text that jansson's
 * json_loadb(JSON_REJECT_DUPLICATES) accepts as the same object; for anything
 * it does not handle it says "no" and the caller parses the text in full, so
 * every refusal and its message stay the parser's (fuzz_json_body checks the
 * agreement on every input). What it handles: one object, whitespace
 * " \t\n\r" around tokens, at most VALIDATE_JSON_FLAT_MAX members with
 * distinct keys, keys without escapes, values that are strings (valid UTF-8,
 * no control character, the escapes \" \\ \/ \b \f \n \r \t; no \u) or
 * integers of 1 to 18 digits without sign (so within int64). */
#include "validate/validate.h"

#include <string.h>

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

static bool simple_escape(char c)
{
    return c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
           c == 't';
}

/* The string whose opening quote is at s[i]: its raw body (escapes as
 * written) at s[*body], *body_len bytes; *next just after the closing quote.
 * False for anything not handled. */
static bool read_string(const char *s, size_t len, size_t i, bool allow_escapes, size_t *body,
                        size_t *body_len, bool *escaped, size_t *next)
{
    size_t k = i + 1;

    *escaped = false;
    for (; k < len; k++) {
        unsigned char c = (unsigned char)s[k];

        if (c == '"')
            break;
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (!allow_escapes || k + 1 >= len || !simple_escape(s[k + 1]))
                return false;
            *escaped = true;
            k++;
        }
    }
    if (k >= len)
        return false;
    /* Escapes are ASCII: the raw body is valid UTF-8 exactly when the
     * decoded one is. */
    if (!validate_utf8(s + i + 1, k - i - 1))
        return false;
    *body = i + 1;
    *body_len = k - i - 1;
    *next = k + 1;
    return true;
}

static bool read_integer(const char *s, size_t len, size_t i, uint64_t *out, size_t *next)
{
    uint64_t v = 0;
    size_t k = i;

    while (k < len && s[k] >= '0' && s[k] <= '9') {
        v = v * 10 + (uint64_t)(s[k] - '0');
        k++;
    }
    /* No leading zero (jansson refuses "012"), 18 digits at most. */
    if (k == i || k - i > 18 || (s[i] == '0' && k - i > 1))
        return false;
    *out = v;
    *next = k;
    return true;
}

bool validate_json_flat(const char *s, size_t len, struct validate_json_member *m, size_t cap,
                        size_t *n)
{
    size_t i, count = 0;

    if (s == NULL || m == NULL || n == NULL)
        return false;
    i = skip_ws(s, len, 0);
    if (i >= len || s[i] != '{')
        return false;
    i = skip_ws(s, len, i + 1);
    if (i < len && s[i] == '}') {
        i++;
    } else {
        for (;;) {
            struct validate_json_member *cur;
            size_t body, blen, next;
            bool esc;

            if (count >= cap || count >= VALIDATE_JSON_FLAT_MAX || i >= len || s[i] != '"' ||
                !read_string(s, len, i, false, &body, &blen, &esc, &next))
                return false;
            cur = &m[count];
            cur->key = s + body;
            cur->key_len = blen;
            for (size_t j = 0; j < count; j++) {
                if (m[j].key_len == blen && memcmp(m[j].key, cur->key, blen) == 0)
                    return false; /* a duplicate: jansson's to refuse */
            }
            i = skip_ws(s, len, next);
            if (i >= len || s[i] != ':')
                return false;
            i = skip_ws(s, len, i + 1);
            if (i < len && s[i] == '"') {
                if (!read_string(s, len, i, true, &body, &blen, &esc, &next))
                    return false;
                cur->kind = VALIDATE_JSON_STRING;
                cur->str = s + body;
                cur->str_len = blen;
                cur->escaped = esc;
                cur->num = 0;
            } else {
                if (!read_integer(s, len, i, &cur->num, &next))
                    return false;
                cur->kind = VALIDATE_JSON_INTEGER;
                cur->str = NULL;
                cur->str_len = 0;
                cur->escaped = false;
            }
            count++;
            i = skip_ws(s, len, next);
            if (i < len && s[i] == ',') {
                i = skip_ws(s, len, i + 1);
                continue;
            }
            if (i < len && s[i] == '}') {
                i++;
                break;
            }
            return false;
        }
    }
    if (skip_ws(s, len, i) != len)
        return false;
    *n = count;
    return true;
}

size_t validate_json_unescape(const char *s, size_t len, char *out)
{
    size_t o = 0;

    for (size_t k = 0; k < len; k++) {
        char c = s[k];

        if (c == '\\' && k + 1 < len) {
            k++;
            switch (s[k]) {
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            default: /* '"', '\\', '/' stand for themselves */
                c = s[k];
                break;
            }
        }
        out[o++] = c;
    }
    return o;
}
