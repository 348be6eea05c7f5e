/* fuzz_recovery_code.c: crypto_recovery_code_parse on arbitrary text.
 *
 * On success the canonical form (8 groups of 4 Crockford symbols joined by
 * '-'), its lower-case form and its form without separators all parse to the
 * same 20 bytes; on failure the output is left untouched. */
#include "fuzz_common.h"

#include <ctype.h>

#include "crypto/crypto.h"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (crypto_init() != CD_OK)
        abort();
    return 0;
}

/* Canonical text of raw: what crypto_recovery_code_new prints. */
static void encode(const uint8_t raw[CRYPTO_RECOVERY_CODE_BYTES],
                   char text[CRYPTO_RECOVERY_CODE_STRLEN])
{
    size_t t = 0;

    for (size_t sym = 0; sym < 32; sym++) {
        size_t bit = sym * 5;
        unsigned v = 0;
        for (size_t b = 0; b < 5; b++) {
            size_t k = bit + b;
            v = (v << 1) | ((raw[k / 8] >> (7 - k % 8)) & 1u);
        }
        if (sym > 0 && sym % 4 == 0)
            text[t++] = '-';
        text[t++] = crockford[v];
    }
    text[t] = '\0';
}

static void parses_to(const char *text, size_t len, const uint8_t want[CRYPTO_RECOVERY_CODE_BYTES])
{
    uint8_t got[CRYPTO_RECOVERY_CODE_BYTES];

    FUZZ_CHECK(crypto_recovery_code_parse(text, len, got) == CD_OK);
    FUZZ_CHECK(memcmp(got, want, sizeof(got)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t raw[CRYPTO_RECOVERY_CODE_BYTES];
    uint8_t pattern[CRYPTO_RECOVERY_CODE_BYTES];
    char text[CRYPTO_RECOVERY_CODE_STRLEN];
    char compact[CRYPTO_RECOVERY_CODE_STRLEN];
    char *in = malloc(size > 0 ? size : 1); /* exact size: overreads are caught */
    size_t n = 0;

    if (in == NULL)
        return 0;
    if (size > 0)
        memcpy(in, data, size);
    memset(pattern, 0x5a, sizeof(pattern));
    memcpy(raw, pattern, sizeof(raw));
    if (crypto_recovery_code_parse(in, size, raw) != CD_OK) {
        FUZZ_CHECK(memcmp(raw, pattern, sizeof(raw)) == 0);
        goto out;
    }
    /* Only symbols, aliases and separators were accepted. */
    for (size_t i = 0; i < size; i++)
        FUZZ_CHECK(in[i] == '-' || in[i] == ' ' || isalnum((unsigned char)in[i]));

    encode(raw, text);
    FUZZ_CHECK(strlen(text) == CRYPTO_RECOVERY_CODE_STRLEN - 1);
    parses_to(text, strlen(text), raw);
    for (size_t i = 0; text[i] != '\0'; i++) {
        if (text[i] != '-')
            compact[n++] = text[i];
        text[i] = (char)tolower((unsigned char)text[i]);
    }
    parses_to(text, strlen(text), raw);
    parses_to(compact, n, raw);
out:
    crypto_wipe(raw, sizeof(raw));
    free(in);
    return 0;
}
