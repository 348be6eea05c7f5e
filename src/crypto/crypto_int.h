/* crypto_int.h: what crypto.c and keyring.c share (private to the crypto module). */
#ifndef CONFIDOC_CRYPTO_INT_H
#define CONFIDOC_CRYPTO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"

/* The whole keyring lives in one sodium_malloc'ed (guarded, locked) region that
 * is read-only once loaded, so threads share it without locks. versions[] is
 * sorted newest (highest) first. */
struct crypto_keyring {
    size_t count;
    uint32_t versions[CRYPTO_KEYRING_MAX_KEYS];
    uint8_t master[CRYPTO_KEYRING_MAX_KEYS][CRYPTO_KEY_BYTES];
    uint8_t subkeys[CRYPTO_KEYRING_MAX_KEYS][CRYPTO_PURPOSE__COUNT][CRYPTO_KEY_BYTES];
};

/* The subkey of version for purpose; NULL when the keyring has no such version. */
const uint8_t *crypto_keyring_subkey(const crypto_keyring *kr, uint32_t version,
                                     enum crypto_purpose purpose);

/* crypto_gcm.c: AES-256-GCM, out = nonce (12) || ciphertext || tag (16). */
#define CRYPTO_GCM_NONCE_BYTES 12
#define CRYPTO_GCM_OVERHEAD (CRYPTO_GCM_NONCE_BYTES + CRYPTO_AEAD_TAG_BYTES)
cd_err crypto_gcm_seal(const uint8_t key[CRYPTO_KEY_BYTES], const void *ad, size_t adlen,
                       const void *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen);
cd_err crypto_gcm_open(const uint8_t key[CRYPTO_KEY_BYTES], const void *ad, size_t adlen,
                       const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap,
                       size_t *outlen);
/* Whether this CPU runs AES-GCM in hardware (AES-NI and PCLMULQDQ). */
bool crypto_gcm_fast(void);

#endif
