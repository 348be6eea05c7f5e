/* fuzz_validate.c: the edge validators of src/validate on arbitrary bytes.
 *
 * validate_utf8 is cross-checked against a second decoder written from the
 * table of well-formed byte sequences (Unicode 15, table 3-7) rather than from
 * code points; the other validators against their documented rules. */
#include "fuzz_common.h"

#include "validate/validate.h"

/* Length of the well-formed sequence at s[0..n), or 0 when there is none. */
static size_t ref_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;

    if (c <= 0x7f)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c == 0xe0) {
        len = 3;
        lo = 0xa0;
    } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef)
        len = 3;
    else if (c == 0xed) {
        len = 3;
        hi = 0x9f;
    } else if (c == 0xf0) {
        len = 4;
        lo = 0x90;
    } else if (c >= 0xf1 && c <= 0xf3)
        len = 4;
    else if (c == 0xf4) {
        len = 4;
        hi = 0x8f;
    } else
        return 0;
    if (n < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++) {
        if (s[k] < 0x80 || s[k] > 0xbf)
            return 0;
    }
    return len;
}

static bool ref_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t k = ref_utf8_seq(s + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

static bool ref_username(const char *s, size_t n)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-";

    if (n < 1 || n > VALIDATE_USERNAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0' || strchr(ok, s[i]) == NULL)
            return false;
    }
    return true;
}

/* Digits only, value <= INT64_MAX. The implementation also caps the text at
 * 64 digits (a bound on input, not in the header's rule): mirror that. */
static bool ref_record_id(const char *s, size_t n, int64_t *out)
{
    uint64_t v = 0;
    bool big = false;

    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (v > (UINT64_MAX - 9) / 10)
            big = true;
        else
            v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (big || v > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A heap copy of exactly size bytes: any read past the end is caught. */
    char *s = malloc(size > 0 ? size : 1);
    bool utf8;
    int64_t id = -1, ref_id = -2;

    if (s == NULL)
        return 0;
    if (size > 0)
        memcpy(s, data, size);

    utf8 = validate_utf8(s, size);
    FUZZ_CHECK(utf8 == ref_utf8((const unsigned char *)s, size));

    FUZZ_CHECK(validate_username(s, size) == ref_username(s, size));

    FUZZ_CHECK(validate_password(s, size) ==
               (size >= VALIDATE_PASSWORD_MIN && size <= VALIDATE_PASSWORD_MAX &&
                memchr(s, '\0', size) == NULL && utf8));

    {
        bool got = validate_record_id_text(s, size, &id);
        bool want = ref_record_id(s, size, &ref_id);
        FUZZ_CHECK(got == want);
        if (got)
            FUZZ_CHECK(id == ref_id && id >= 0);
        else
            FUZZ_CHECK(id == -1); /* untouched on failure */
    }

    if (validate_content_type(s, size)) {
        const char *slash = memchr(s, '/', size);
        FUZZ_CHECK(size >= 3 && size <= VALIDATE_CTYPE_MAX);
        for (size_t i = 0; i < size; i++)
            FUZZ_CHECK((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] <= 0x7e);
        FUZZ_CHECK(slash != NULL && slash != s && slash + 1 < s + size);
        FUZZ_CHECK(s[0] != ' ' && s[0] != ';' && slash[1] != ' ' && slash[1] != ';');
        /* Everything after the type/subtype is spaces then nothing or ";...". */
        {
            size_t i = (size_t)(slash - s) + 1;
            while (i < size && s[i] != ' ' && s[i] != ';')
                i++;
            while (i < size && s[i] == ' ')
                i++;
            FUZZ_CHECK(i == size || s[i] == ';');
        }
    }
    free(s);
    return 0;
}
