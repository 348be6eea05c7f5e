/* auth_basic.c: HTTP Basic credentials, parsed and bounded (auth_parse_basic). */
#include <string.h>

#include "auth/auth_int.h"
#include "common/codec.h"

cd_err auth_parse_basic(const char *header, struct auth_credentials *out)
{
    bool too_long;

    return auth_parse_basic_len(header, out, &too_long);
}

cd_err auth_parse_basic_len(const char *header, struct auth_credentials *out, bool *too_long)
{
    uint8_t buf[AUTH_USER_MAX + 1 + AUTH_PASSWORD_MAX + 3];
    const char *p;
    const uint8_t *colon;
    size_t len, user_len, pass_len, n;
    cd_err rc = CD_ERR_INVALID;

    *too_long = false;
    if (header == NULL || strncasecmp(header, "Basic ", 6) != 0)
        return CD_ERR_INVALID;
    p = header + 6;
    while (*p == ' ')
        p++;
    len = strlen(p);
    while (len > 0 && p[len - 1] == ' ')
        len--;
    if (len > ((sizeof(buf) + 2) / 3) * 4) {
        *too_long = true; /* longer than any credential within the limits */
        return CD_ERR_INVALID;
    }
    if (codec_b64_decode(p, len, buf, sizeof(buf), &n) != CD_OK)
        goto out;
    colon = memchr(buf, ':', n);
    if (colon == NULL)
        goto out;
    user_len = (size_t)(colon - buf);
    pass_len = n - user_len - 1;
    if (user_len > AUTH_USER_MAX || pass_len > AUTH_PASSWORD_MAX) {
        *too_long = true;
        goto out;
    }
    out->user_len = user_len;
    out->pass_len = pass_len;
    memcpy(out->user, buf, user_len);
    out->user[user_len] = '\0';
    memcpy(out->pass, colon + 1, pass_len);
    out->pass[pass_len] = '\0';
    rc = CD_OK;
out:
    crypto_wipe(buf, sizeof(buf));
    return rc;
}
