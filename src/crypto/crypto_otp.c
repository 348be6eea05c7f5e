/* crypto_otp.c: HOTP and TOTP (RFC 4226, RFC 6238) on OpenSSL's HMAC-SHA-1,
 * which libsodium lacks; the one file of the crypto module that sees OpenSSL. */
#include "crypto/crypto.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

cd_err crypto_hotp(const uint8_t *key, size_t keylen, uint64_t counter, unsigned digits,
                   uint32_t *code)
{
    static const uint32_t mod[] = {1000000u, 10000000u, 100000000u};
    uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0, off;
    uint32_t bin;

    if (key == NULL || keylen == 0 || keylen > INT32_MAX || code == NULL || digits < 6 ||
        digits > 8)
        return CD_ERR_INVALID;
    for (int i = 7; i >= 0; i--) {
        msg[i] = (uint8_t)counter;
        counter >>= 8;
    }
    if (HMAC(EVP_sha1(), key, (int)keylen, msg, sizeof(msg), mac, &maclen) == NULL ||
        maclen != 20) {
        crypto_wipe(mac, sizeof(mac));
        return CD_ERR_INTERNAL;
    }
    /* Dynamic truncation (RFC 4226 section 5.3). */
    off = mac[19] & 0x0fu;
    bin = ((uint32_t)(mac[off] & 0x7fu) << 24) | ((uint32_t)mac[off + 1] << 16) |
          ((uint32_t)mac[off + 2] << 8) | mac[off + 3];
    *code = bin % mod[digits - 6];
    crypto_wipe(mac, sizeof(mac));
    return CD_OK;
}

/* The six ASCII digits of code, zero-padded. */
static void totp_text(uint32_t code, char out[CRYPTO_TOTP_DIGITS])
{
    for (int i = CRYPTO_TOTP_DIGITS - 1; i >= 0; i--) {
        out[i] = (char)('0' + code % 10u);
        code /= 10u;
    }
}

bool crypto_totp_match(const uint8_t *key, size_t keylen, const char *code, size_t code_len,
                       int64_t now, uint64_t after, uint64_t *step)
{
    char want[CRYPTO_TOTP_DIGITS];
    uint64_t t, found = 0;
    bool ok = false;

    if (code == NULL || code_len != CRYPTO_TOTP_DIGITS || now < CRYPTO_TOTP_STEP_S)
        return false;
    for (size_t i = 0; i < code_len; i++) {
        if (code[i] < '0' || code[i] > '9')
            return false;
    }
    t = (uint64_t)now / CRYPTO_TOTP_STEP_S;
    for (uint64_t s = t - 1; s <= t + 1; s++) {
        uint32_t c = 0;
        bool eq;

        if (crypto_hotp(key, keylen, s, CRYPTO_TOTP_DIGITS, &c) != CD_OK)
            return false;
        totp_text(c, want);
        eq = crypto_equal(want, code, sizeof(want));
        if (eq && s > after) { /* the latest matching step wins */
            found = s;
            ok = true;
        }
    }
    crypto_wipe(want, sizeof(want));
    if (ok)
        *step = found;
    return ok;
}
