/* jsonw.c: fixed-shape JSON objects written into one exactly sized buffer. */
#include "common/jsonw.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define ONES ((uint64_t)0x0101010101010101ULL)
#define HIGHS ((uint64_t)0x8080808080808080ULL)

/* Whether any of the 8 bytes of w may need an escape: a '"', a '\\' or one
 * below 0x20. Never false when one does (it may be true when none does, after
 * a byte that borrowed; the caller then looks byte by byte). */
static bool word_may_escape(uint64_t w)
{
    uint64_t q = w ^ (ONES * 0x22u);
    uint64_t b = w ^ (ONES * 0x5cu);
    uint64_t has_q = (q - ONES) & ~q;
    uint64_t has_b = (b - ONES) & ~b;
    uint64_t has_ctl = (w - ONES * 0x20u) & ~w;
    return ((has_q | has_b | has_ctl) & HIGHS) != 0;
}

/* How many bytes from the start of s surely need no escape (a multiple of the
 * block size; the rest is looked at byte by byte). */
static size_t plain_prefix(const char *s, size_t len)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    const __m128i below = _mm_set1_epi8(0x20);

    while (len - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        /* unsigned v < 0x20  <=>  max(v, 0x20) != v */
        __m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, below), v);
        __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash));
        if ((_mm_movemask_epi8(hit) | (~_mm_movemask_epi8(ctl) & 0xffff)) != 0)
            break;
        i += 16;
    }
#endif
    while (len - i >= 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (word_may_escape(w))
            break;
        i += 8;
    }
    return i;
}

/* The escape of one byte: 0 none, else its length (2 or 6). */
static size_t byte_escape_len(unsigned char c)
{
    if (c == '"' || c == '\\')
        return 2;
    if (c >= 0x20)
        return 0;
    switch (c) {
    case '\b':
    case '\f':
    case '\n':
    case '\r':
    case '\t':
        return 2;
    default:
        return 6;
    }
}

size_t jsonw_escaped_len(const char *s, size_t len)
{
    size_t extra = 0;
    size_t i = 0;

    while (i < len) {
        size_t e;

        i += plain_prefix(s + i, len - i);
        if (i >= len)
            break;
        e = byte_escape_len((unsigned char)s[i]);
        extra += e > 0 ? e - 1 : 0;
        i++;
    }
    return len + extra;
}

char *jsonw_escape(char *dst, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i = 0;

    while (i < len) {
        size_t plain = plain_prefix(s + i, len - i);
        unsigned char c;

        memcpy(dst, s + i, plain);
        dst += plain;
        i += plain;
        if (i >= len)
            break;
        c = (unsigned char)s[i++];
        switch (byte_escape_len(c)) {
        case 0:
            *dst++ = (char)c;
            break;
        case 2:
            *dst++ = '\\';
            *dst++ = c == '\b'   ? 'b'
                     : c == '\f' ? 'f'
                     : c == '\n' ? 'n'
                     : c == '\r' ? 'r'
                     : c == '\t' ? 't'
                                 : (char)c; /* '"' or '\\' */
            break;
        default:
            dst[0] = '\\';
            dst[1] = 'u';
            dst[2] = '0';
            dst[3] = '0';
            dst[4] = hex[c >> 4];
            dst[5] = hex[c & 0xf];
            dst += 6;
            break;
        }
    }
    return dst;
}

/* Decimal digits of v with its sign (at most 20). */
static size_t int_text(int64_t v, char out[24])
{
    int n = snprintf(out, 24, "%" PRId64, v);
    return n > 0 ? (size_t)n : 0;
}

cd_err jsonw_object(const struct jsonw_field *fields, size_t n, uint8_t **out, size_t *out_len)
{
    char ints[JSONW_MAX_FIELDS][24];
    size_t ilen[JSONW_MAX_FIELDS];
    size_t slen[JSONW_MAX_FIELDS];
    size_t total = 2; /* { } */
    char *buf;
    char *p;

    if (fields == NULL || out == NULL || out_len == NULL || n == 0 || n > JSONW_MAX_FIELDS)
        return CD_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        const struct jsonw_field *f = &fields[i];
        size_t add;

        if (f->key == NULL || (f->kind == JSONW_STR && f->s == NULL && f->len > 0))
            return CD_ERR_INVALID;
        add = strlen(f->key) + 3 + (i > 0); /* "key": and a comma */
        switch (f->kind) {
        case JSONW_STR:
            slen[i] = jsonw_escaped_len(f->s, f->len);
            if (slen[i] > SIZE_MAX / 2 - total)
                return CD_ERR_TOO_LARGE;
            add += slen[i] + 2;
            break;
        case JSONW_INT:
            ilen[i] = int_text(f->i, ints[i]);
            add += ilen[i];
            break;
        case JSONW_NULL:
            add += 4;
            break;
        default:
            return CD_ERR_INVALID;
        }
        total += add;
    }
    buf = malloc(total);
    if (buf == NULL)
        return CD_ERR_NOMEM;
    p = buf;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        const struct jsonw_field *f = &fields[i];
        size_t kl = strlen(f->key);

        if (i > 0)
            *p++ = ',';
        *p++ = '"';
        memcpy(p, f->key, kl);
        p += kl;
        *p++ = '"';
        *p++ = ':';
        switch (f->kind) {
        case JSONW_STR:
            *p++ = '"';
            p = f->len > 0 ? jsonw_escape(p, f->s, f->len) : p;
            *p++ = '"';
            break;
        case JSONW_INT:
            memcpy(p, ints[i], ilen[i]);
            p += ilen[i];
            break;
        default: {
            static const char null_text[4] = {'n', 'u', 'l', 'l'};
            memcpy(p, null_text, sizeof(null_text));
            p += sizeof(null_text);
            break;
        }
        }
    }
    *p++ = '}';
    *out = (uint8_t *)buf;
    *out_len = (size_t)(p - buf);
    return CD_OK;
}
