/* fuzz_basic.c: auth_parse_basic on an arbitrary Authorization header value.
 *
 * Invariants on success: lengths within AUTH_USER_MAX / AUTH_PASSWORD_MAX,
 * both strings NUL-terminated at their length, no ':' in the user (the first
 * colon splits), and "Basic " + base64(user ":" pass) parses back to the same
 * credentials. On failure the output is left untouched (a regression seed in
 * the corpus covers the over-long user that once broke this). */
#include "fuzz_common.h"

#include "auth/auth.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard padded base64 of in[0..n) into out (4*ceil(n/3)+1 bytes). */
static void b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t left = n - i;
        if (left > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = left > 1 ? b64[(v >> 6) & 63] : '=';
        out[o++] = left > 2 ? b64[v & 63] : '=';
    }
    out[o] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct auth_credentials c, c2, untouched;
    char *header = fuzz_strndup(data, size);
    uint8_t *plain = NULL;
    char *again = NULL;
    size_t plen;

    if (header == NULL)
        return 0;
    memset(&c, 0x5a, sizeof(c));
    memset(&untouched, 0x5a, sizeof(untouched));
    if (auth_parse_basic(header, &c) != CD_OK) {
        FUZZ_CHECK(memcmp(&c, &untouched, sizeof(c)) == 0);
        goto out;
    }
    FUZZ_CHECK(c.user_len <= AUTH_USER_MAX);
    FUZZ_CHECK(c.pass_len <= AUTH_PASSWORD_MAX);
    FUZZ_CHECK(c.user[c.user_len] == '\0');
    FUZZ_CHECK(c.pass[c.pass_len] == '\0');
    FUZZ_CHECK(memchr(c.user, ':', c.user_len) == NULL);

    /* Re-encode and parse again: the same credentials, byte for byte. */
    plen = c.user_len + 1 + c.pass_len;
    plain = malloc(plen);
    again = malloc(6 + 4 * ((plen + 2) / 3) + 1);
    if (plain == NULL || again == NULL)
        goto out;
    memcpy(plain, c.user, c.user_len);
    plain[c.user_len] = ':';
    memcpy(plain + c.user_len + 1, c.pass, c.pass_len);
    memcpy(again, "Basic ", 6);
    b64_encode(plain, plen, again + 6);
    memset(&c2, 0, sizeof(c2));
    FUZZ_CHECK(auth_parse_basic(again, &c2) == CD_OK);
    FUZZ_CHECK(c2.user_len == c.user_len && c2.pass_len == c.pass_len);
    FUZZ_CHECK(memcmp(c2.user, c.user, c.user_len + 1) == 0);
    FUZZ_CHECK(memcmp(c2.pass, c.pass, c.pass_len + 1) == 0);
out:
    auth_credentials_wipe(&c);
    auth_credentials_wipe(&c2);
    if (plain != NULL)
        crypto_wipe(plain, plen);
    free(plain);
    free(again);
    free(header);
    return 0;
}
