/* num.c: decimal parsing with one overflow rule. */
#include "common/num.h"

cd_err num_prefix(const char **p, const char *end, uint64_t max, uint64_t *out)
{
    const char *s;
    uint64_t v = 0;

    if (p == NULL || *p == NULL || end == NULL || out == NULL)
        return CD_ERR_INVALID;
    s = *p;
    if (s >= end || *s < '0' || *s > '9')
        return CD_ERR_INVALID;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (d > max || v > (max - d) / 10)
            return CD_ERR_TOO_LARGE;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return CD_OK;
}

cd_err num_parse(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    const char *p = s;
    uint64_t v;
    cd_err err;

    if (s == NULL)
        return CD_ERR_INVALID;
    err = num_prefix(&p, s + len, max, &v);
    if (err != CD_OK)
        return err;
    if (p != s + len)
        return CD_ERR_INVALID;
    *out = v;
    return CD_OK;
}
