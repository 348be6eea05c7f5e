/* fuzz_codec.c: the hex and base64 decoders (common/codec) on arbitrary text.
 *
 * What decodes re-encodes to the same text (base64 exactly; hex up to case);
 * what fails leaves the hex output untouched; every byte string encodes and
 * decodes back to itself. */
#include "fuzz_common.h"

#include <ctype.h>

#include "common/codec.h"

#define OUT_MAX 2048 /* max_len: the longest input */

static void check_hex(const char *in, size_t size)
{
    uint8_t out[OUT_MAX / 2], pattern[OUT_MAX / 2];
    char text[CODEC_HEX_LEN(OUT_MAX / 2)];
    size_t n = size / 2;

    if (n > sizeof(out))
        return;
    memset(pattern, 0x5a, sizeof(pattern));
    memcpy(out, pattern, sizeof(out));
    if (codec_hex_decode(in, size, out, n) != CD_OK) {
        FUZZ_CHECK(memcmp(out, pattern, sizeof(out)) == 0);
        return;
    }
    FUZZ_CHECK(size % 2 == 0);
    codec_hex_encode(out, n, text);
    FUZZ_CHECK(strlen(text) == size);
    for (size_t i = 0; i < size; i++)
        FUZZ_CHECK(text[i] == tolower((unsigned char)in[i]));
}

static void check_b64(const char *in, size_t size)
{
    uint8_t out[OUT_MAX];
    char text[CODEC_B64_LEN(OUT_MAX)];
    size_t n = 0;
    cd_err err = codec_b64_decode(in, size, out, sizeof(out), &n);

    if (err != CD_OK) {
        FUZZ_CHECK(err == CD_ERR_INVALID || err == CD_ERR_TOO_LARGE);
        return;
    }
    FUZZ_CHECK(size % 4 == 0 && n <= size / 4 * 3 && n + 2 >= size / 4 * 3);
    FUZZ_CHECK(codec_b64_encode(out, n, text, sizeof(text)) == CD_OK);
    FUZZ_CHECK(strlen(text) == size);
    /* Non-canonical trailing bits ("Zh==") decode but re-encode otherwise:
     * the canonical text must decode to the same bytes. */
    if (memcmp(text, in, size) != 0) {
        uint8_t again[OUT_MAX];
        size_t m = 0;
        FUZZ_CHECK(codec_b64_decode(text, size, again, sizeof(again), &m) == CD_OK);
        FUZZ_CHECK(m == n && memcmp(again, out, n) == 0);
    }
}

/* The input as bytes: encode, then decode back. */
static void check_roundtrip(const uint8_t *data, size_t size)
{
    char hex[CODEC_HEX_LEN(OUT_MAX / 2)];
    char b64[CODEC_B64_LEN(OUT_MAX)];
    uint8_t back[OUT_MAX];
    size_t n = 0;

    if (size <= OUT_MAX / 2) {
        codec_hex_encode(data, size, hex);
        FUZZ_CHECK(codec_hex_decode(hex, strlen(hex), back, size) == CD_OK);
        FUZZ_CHECK(size == 0 || memcmp(back, data, size) == 0);
    }
    if (size == 0 || size > OUT_MAX)
        return;
    FUZZ_CHECK(codec_b64_encode(data, size, b64, sizeof(b64)) == CD_OK);
    FUZZ_CHECK(codec_b64_decode(b64, strlen(b64), back, size, &n) == CD_OK);
    FUZZ_CHECK(n == size && memcmp(back, data, size) == 0);
    if (size > 1)
        FUZZ_CHECK(codec_b64_decode(b64, strlen(b64), back, size - 1, &n) == CD_ERR_TOO_LARGE);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size > 0 ? size : 1); /* exact size: overreads are caught */

    if (in == NULL)
        return 0;
    if (size > 0)
        memcpy(in, data, size);
    check_hex(in, size);
    check_b64(in, size);
    check_roundtrip(data, size);
    free(in);
    return 0;
}
