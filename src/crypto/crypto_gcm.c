/* crypto_gcm.c: AES-256-GCM for document versions (format 2).
 *
 * Where the CPU has AES-NI and PCLMULQDQ, messages under
 * CRYPTO_GCM_SODIUM_BELOW bytes go through libsodium's implementation (one
 * call, its key schedule on the stack and wiped) and longer ones through
 * OpenSSL's EVP, whose AES-NI/VAES code is twice as fast on long messages
 * (measured on the 2-core EPYC, one core: 1 MiB in 434 us against 812 us to
 * decrypt, 417 against 778 to encrypt; even at 4 KiB, 3.0 against 3.4 us)
 * while libsodium's is faster on short ones (1 KiB: 0.9 against 1.2 us; the
 * EVP context is allocated per call). A replica without AES-NI must still
 * read every document, so there OpenSSL's EVP does all of it (its
 * constant-time vector-permutation AES). All write the same bytes: nonce
 * (12) || ciphertext || tag (16). With crypto_otp.c, the files of the crypto
 * module that see OpenSSL. */
#include "crypto/crypto_int.h"
#include "crypto/crypto_test.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

/* Where EVP takes over from libsodium when the CPU has AES-NI. */
#define CRYPTO_GCM_SODIUM_BELOW 4096u

static atomic_bool force_portable, force_sodium;

void crypto_test_gcm_portable(bool on)
{
    atomic_store(&force_portable, on);
}

void crypto_test_gcm_sodium(bool on)
{
    atomic_store(&force_sodium, on);
}

bool crypto_gcm_fast(void)
{
    /* AES-NI and PCLMULQDQ, as libsodium detected them at sodium_init. */
    return crypto_aead_aes256gcm_is_available() != 0;
}

static bool use_sodium(size_t len)
{
    if (!crypto_gcm_fast() || atomic_load(&force_portable))
        return false;
    return len < CRYPTO_GCM_SODIUM_BELOW || atomic_load(&force_sodium);
}

/* The cipher, fetched once: an implicit fetch per call costs more than the
 * encryption of a small document. */
static EVP_CIPHER *gcm_cipher;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;

static void gcm_fetch(void)
{
    gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *cipher(void)
{
    pthread_once(&gcm_once, gcm_fetch);
    return gcm_cipher;
}

/* A context for one message: the cipher is there (fetched once) and the
 * context allocated, or the error. */
static cd_err evp_ctx_new(EVP_CIPHER_CTX **ctx)
{
    if (cipher() == NULL)
        return CD_ERR_INTERNAL;
    *ctx = EVP_CIPHER_CTX_new();
    return *ctx != NULL ? CD_OK : CD_ERR_NOMEM;
}

static cd_err evp_seal(const uint8_t key[CRYPTO_KEY_BYTES], const void *ad, size_t adlen,
                       const void *in, size_t inlen, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx;
    uint8_t *ct = out + CRYPTO_GCM_NONCE_BYTES;
    int n = 0, fin = 0;
    cd_err err = evp_ctx_new(&ctx);

    if (err != CD_OK)
        return err;
    err = CD_ERR_INTERNAL;
    if (EVP_EncryptInit_ex(ctx, cipher(), NULL, key, out) == 1 &&
        (adlen == 0 || EVP_EncryptUpdate(ctx, NULL, &n, ad, (int)adlen) == 1) &&
        (inlen == 0 || EVP_EncryptUpdate(ctx, ct, &n, in, (int)inlen) == 1) &&
        EVP_EncryptFinal_ex(ctx, ct + (inlen > 0 ? n : 0), &fin) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPTO_AEAD_TAG_BYTES, ct + inlen) == 1)
        err = CD_OK;
    EVP_CIPHER_CTX_free(ctx); /* cleanses its key schedule */
    return err;
}

static cd_err evp_open(const uint8_t key[CRYPTO_KEY_BYTES], const void *ad, size_t adlen,
                       const uint8_t *in, size_t mlen, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx;
    uint8_t tag[CRYPTO_AEAD_TAG_BYTES];
    uint8_t sink[16];
    int n = 0, fin = 0;
    cd_err err = evp_ctx_new(&ctx);

    if (err != CD_OK)
        return err;
    err = CD_ERR_INTERNAL;
    memcpy(tag, in + CRYPTO_GCM_NONCE_BYTES + mlen, sizeof(tag));
    if (EVP_DecryptInit_ex(ctx, cipher(), NULL, key, in) == 1 &&
        (adlen == 0 || EVP_DecryptUpdate(ctx, NULL, &n, ad, (int)adlen) == 1) &&
        (mlen == 0 ||
         EVP_DecryptUpdate(ctx, out, &n, in + CRYPTO_GCM_NONCE_BYTES, (int)mlen) == 1) &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, sizeof(tag), tag) == 1)
        err = EVP_DecryptFinal_ex(ctx, out != NULL ? out + mlen : sink, &fin) == 1 ? CD_OK
                                                                                   : CD_ERR_CRYPTO;
    EVP_CIPHER_CTX_free(ctx);
    return err;
}

cd_err crypto_gcm_seal(const uint8_t key[CRYPTO_KEY_BYTES], const void *ad, size_t adlen,
                       const void *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen)
{
    cd_err err;

    if (key == NULL || out == NULL || outlen == NULL || (ad == NULL && adlen > 0) ||
        (in == NULL && inlen > 0))
        return CD_ERR_INVALID;
    if (inlen > (size_t)INT_MAX - CRYPTO_GCM_OVERHEAD || adlen > (size_t)INT_MAX ||
        inlen > crypto_aead_aes256gcm_MESSAGEBYTES_MAX || outcap < inlen + CRYPTO_GCM_OVERHEAD)
        return CD_ERR_INVALID;
    /* A fresh random key per document version seals two messages: a random
     * 96-bit nonce cannot repeat under it. */
    randombytes_buf(out, CRYPTO_GCM_NONCE_BYTES);
    if (use_sodium(inlen)) {
        unsigned long long clen = 0;
        err = crypto_aead_aes256gcm_encrypt(out + CRYPTO_GCM_NONCE_BYTES, &clen, in, inlen, ad,
                                            adlen, NULL, out, key) == 0
                  ? CD_OK
                  : CD_ERR_INTERNAL;
    } else {
        err = evp_seal(key, ad, adlen, in, inlen, out);
    }
    if (err == CD_OK)
        *outlen = inlen + CRYPTO_GCM_OVERHEAD;
    return err;
}

/* On failure out[0..inlen-OVERHEAD] is wiped: GCM decrypts before it
 * verifies, so no unauthenticated plaintext may stay there. */
cd_err crypto_gcm_open(const uint8_t key[CRYPTO_KEY_BYTES], const void *ad, size_t adlen,
                       const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen)
{
    size_t mlen;
    cd_err err;

    if (key == NULL || in == NULL || outlen == NULL || (ad == NULL && adlen > 0))
        return CD_ERR_INVALID;
    if (inlen < CRYPTO_GCM_OVERHEAD || inlen > (size_t)INT_MAX || adlen > (size_t)INT_MAX)
        return CD_ERR_INVALID;
    mlen = inlen - CRYPTO_GCM_OVERHEAD;
    if (outcap < mlen || (out == NULL && mlen > 0))
        return CD_ERR_INVALID;
    if (use_sodium(mlen)) {
        unsigned long long got = 0;
        err = crypto_aead_aes256gcm_decrypt(out, &got, NULL, in + CRYPTO_GCM_NONCE_BYTES,
                                            inlen - CRYPTO_GCM_NONCE_BYTES, ad, adlen, in, key) == 0
                  ? CD_OK
                  : CD_ERR_CRYPTO;
    } else {
        err = evp_open(key, ad, adlen, in, mlen, out);
    }
    if (err != CD_OK) {
        if (out != NULL && mlen > 0)
            sodium_memzero(out, mlen);
        return err;
    }
    *outlen = mlen;
    return CD_OK;
}
