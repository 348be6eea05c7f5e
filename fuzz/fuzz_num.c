/* fuzz_num.c: the decimal parser (common/num) on arbitrary text.
 *
 * The first byte picks max (one of a few bounds, or the next eight bytes);
 * the rest is parsed. The answer is checked against a slow reference that
 * follows the documented rule: all digits, at least one, value <= max, else
 * TOO_LARGE when all are digits and INVALID otherwise. */
#include "fuzz_common.h"

#include <stdbool.h>

#include "common/num.h"

/* The reference: digit by digit, in 128-bit arithmetic that cannot wrap here. */
static cd_err reference(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    unsigned __int128 v = 0;
    bool big = false;

    if (len == 0)
        return CD_ERR_INVALID;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return big ? CD_ERR_TOO_LARGE : CD_ERR_INVALID;
        v = v * 10 + (unsigned)(s[i] - '0');
        if (v > max) {
            big = true;
            v = (unsigned __int128)max + 1;
        }
    }
    if (big)
        return CD_ERR_TOO_LARGE;
    *out = (uint64_t)v;
    return CD_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t bounds[] = {
        0, 1, 9, 10, 99, 999999999, 2147483647, INT64_MAX, UINT64_MAX - 1, UINT64_MAX};
    uint64_t max, got = 0x5a5a, want = 0;
    const char *p;
    char *in;
    cd_err err, ref;

    if (size == 0)
        return 0;
    if (data[0] < 0x80) {
        max = bounds[data[0] % (sizeof(bounds) / sizeof(bounds[0]))];
        data++;
        size--;
    } else {
        if (size < 9)
            return 0;
        memcpy(&max, data + 1, sizeof(max));
        data += 9;
        size -= 9;
    }
    in = malloc(size > 0 ? size : 1); /* exact size: overreads are caught */
    if (in == NULL)
        return 0;
    if (size > 0)
        memcpy(in, data, size);

    err = num_parse(in, size, max, &got);
    ref = reference(in, size, max, &want);
    FUZZ_CHECK(err == ref);
    if (ref == CD_OK)
        FUZZ_CHECK(got == want && got <= max);
    else
        FUZZ_CHECK(got == 0x5a5a); /* untouched on failure */

    /* num_prefix stops at the first non-digit and agrees on the digits. */
    p = in;
    err = num_prefix(&p, in + size, max, &got);
    if (err == CD_OK) {
        size_t digits = (size_t)(p - in);
        FUZZ_CHECK(digits > 0 && digits <= size);
        FUZZ_CHECK(digits == size || in[digits] < '0' || in[digits] > '9');
        FUZZ_CHECK(reference(in, digits, max, &want) == CD_OK && want == got);
    } else {
        FUZZ_CHECK(p == in);
    }
    free(in);
    return 0;
}
