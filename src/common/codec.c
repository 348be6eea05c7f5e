/* codec.c: hex and base64, without data-dependent branches or table lookups. */
#include "common/codec.h"

/* 1 when lo <= c <= hi, else 0, without a branch. */
static unsigned in_range(unsigned c, unsigned lo, unsigned hi)
{
    return (((c - lo) | (hi - c)) >> 31) ^ 1u;
}

/* The hex digit of a nibble v (0..15): '0'+v, or 'a'+v-10 when v > 9. */
static char hex_digit(unsigned v)
{
    unsigned over9 = ((9u - v) >> 8) & 1u; /* 1 when v > 9 */
    return (char)('0' + v + over9 * ('a' - '0' - 10));
}

/* The value of a hex digit c, or a value with bit 8 set when c is none. */
static unsigned hex_value(unsigned char ch)
{
    unsigned c = ch, lc = c | 0x20u;
    unsigned dig = in_range(c, '0', '9'), let = in_range(lc, 'a', 'f');
    return (dig * (c - '0')) | (let * (lc - 'a' + 10u)) | (((dig | let) ^ 1u) << 8);
}

void codec_hex_encode(const void *in, size_t n, char *out)
{
    const uint8_t *p = in;

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digit(p[i] >> 4);
        out[2 * i + 1] = hex_digit(p[i] & 15u);
    }
    out[2 * n] = '\0';
}

cd_err codec_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
    unsigned bad = 0;

    if (in == NULL || outlen > SIZE_MAX / 2 || inlen != 2 * outlen)
        return CD_ERR_INVALID;
    for (size_t i = 0; i < inlen; i++)
        bad |= hex_value((unsigned char)in[i]);
    if ((bad & 0x100u) != 0)
        return CD_ERR_INVALID;
    for (size_t i = 0; i < outlen; i++)
        out[i] = (uint8_t)((hex_value((unsigned char)in[2 * i]) << 4) |
                           hex_value((unsigned char)in[2 * i + 1]));
    return CD_OK;
}

static char b64_symbol(unsigned v)
{
    unsigned c = in_range(v, 0, 25) * (v + 'A') | in_range(v, 26, 51) * (v - 26 + 'a') |
                 in_range(v, 52, 61) * (v - 52 + '0') | in_range(v, 62, 62) * '+' |
                 in_range(v, 63, 63) * '/';
    return (char)c;
}

/* The value of a base64 symbol c, or a value with bit 8 set when c is none. */
static unsigned b64_value(unsigned char ch)
{
    unsigned c = ch;
    unsigned up = in_range(c, 'A', 'Z'), low = in_range(c, 'a', 'z'), dig = in_range(c, '0', '9');
    unsigned plus = in_range(c, '+', '+'), slash = in_range(c, '/', '/');
    unsigned ok = up | low | dig | plus | slash;
    return (up * (c - 'A')) | (low * (c - 'a' + 26)) | (dig * (c - '0' + 52)) | (plus * 62u) |
           (slash * 63u) | ((ok ^ 1u) << 8);
}

cd_err codec_b64_encode(const void *in, size_t n, char *out, size_t outcap)
{
    const uint8_t *p = in;
    size_t o = 0;

    if (n > (SIZE_MAX - 3) / 4 * 3 || outcap < CODEC_B64_LEN(n))
        return CD_ERR_TOO_LARGE;
    for (size_t i = 0; i < n; i += 3) {
        size_t left = n - i;
        uint32_t t = (uint32_t)p[i] << 16;
        if (left > 1)
            t |= (uint32_t)p[i + 1] << 8;
        if (left > 2)
            t |= p[i + 2];
        out[o++] = b64_symbol((t >> 18) & 63u);
        out[o++] = b64_symbol((t >> 12) & 63u);
        out[o++] = left > 1 ? b64_symbol((t >> 6) & 63u) : '=';
        out[o++] = left > 2 ? b64_symbol(t & 63u) : '=';
    }
    out[o] = '\0';
    return CD_OK;
}

cd_err codec_b64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen)
{
    size_t o = 0;

    if (in == NULL || inlen == 0 || inlen % 4 != 0)
        return CD_ERR_INVALID;
    for (size_t i = 0; i < inlen; i += 4) {
        size_t pad = 0;
        unsigned v[4];
        for (size_t k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            if (c == '=' && i + 4 == inlen && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad > 0)
                return CD_ERR_INVALID;
            v[k] = b64_value(c);
            if ((v[k] & 0x100u) != 0)
                return CD_ERR_INVALID;
        }
        uint32_t t = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) | ((uint32_t)v[2] << 6) | v[3];
        if (o + 3 - pad > outcap)
            return CD_ERR_TOO_LARGE;
        out[o++] = (uint8_t)(t >> 16);
        if (pad < 2)
            out[o++] = (uint8_t)(t >> 8);
        if (pad < 1)
            out[o++] = (uint8_t)t;
    }
    *outlen = o;
    return CD_OK;
}

/* base64url: '-' and '_' instead of '+' and '/'. */
static char b64url_symbol(unsigned v)
{
    unsigned c = in_range(v, 0, 25) * (v + 'A') | in_range(v, 26, 51) * (v - 26 + 'a') |
                 in_range(v, 52, 61) * (v - 52 + '0') | in_range(v, 62, 62) * '-' |
                 in_range(v, 63, 63) * '_';
    return (char)c;
}

static unsigned b64url_value(unsigned char ch)
{
    unsigned c = ch;
    unsigned up = in_range(c, 'A', 'Z'), low = in_range(c, 'a', 'z'), dig = in_range(c, '0', '9');
    unsigned dash = in_range(c, '-', '-'), under = in_range(c, '_', '_');
    unsigned ok = up | low | dig | dash | under;
    return (up * (c - 'A')) | (low * (c - 'a' + 26)) | (dig * (c - '0' + 52)) | (dash * 62u) |
           (under * 63u) | ((ok ^ 1u) << 8);
}

cd_err codec_b64url_encode(const void *in, size_t n, char *out, size_t outcap)
{
    const uint8_t *p = in;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;

    if (n > (SIZE_MAX - 3) / 4 || outcap < CODEC_B64URL_LEN(n))
        return CD_ERR_TOO_LARGE;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = b64url_symbol((acc >> bits) & 63u);
        }
    }
    if (bits > 0)
        out[o++] = b64url_symbol((acc << (6 - bits)) & 63u);
    out[o] = '\0';
    return CD_OK;
}

cd_err codec_b64url_decode_exact(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
    uint32_t acc = 0;
    unsigned bits = 0, bad = 0;
    size_t o = 0;

    if (in == NULL || outlen > (SIZE_MAX - 3) / 4 || inlen != CODEC_B64URL_LEN(outlen) - 1)
        return CD_ERR_INVALID;
    for (size_t i = 0; i < inlen; i++)
        bad |= b64url_value((unsigned char)in[i]);
    if ((bad & 0x100u) != 0)
        return CD_ERR_INVALID;
    /* The trailing bits of the last symbol must be zero. */
    if (outlen % 3 != 0 &&
        (b64url_value((unsigned char)in[inlen - 1]) & ((1u << (6 - (outlen % 3) * 2)) - 1u)) != 0)
        return CD_ERR_INVALID;
    for (size_t i = 0; i < inlen; i++) {
        acc = (acc << 6) | b64url_value((unsigned char)in[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return CD_OK;
}

static char b32_symbol(unsigned v)
{
    unsigned c = in_range(v, 0, 25) * (v + 'A') | in_range(v, 26, 31) * (v - 26 + '2');
    return (char)c;
}

cd_err codec_b32_encode(const void *in, size_t n, char *out, size_t outcap)
{
    const uint8_t *p = in;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;

    if (n > (SIZE_MAX - 4) / 8 || outcap < CODEC_B32_LEN(n))
        return CD_ERR_TOO_LARGE;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = b32_symbol((acc >> bits) & 31u);
        }
    }
    if (bits > 0)
        out[o++] = b32_symbol((acc << (5 - bits)) & 31u);
    out[o] = '\0';
    return CD_OK;
}
