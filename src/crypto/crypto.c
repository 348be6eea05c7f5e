/* crypto.c: confidoc's cryptography on libsodium (only the crypto module sees sodium.h). */
#include "crypto/crypto.h"

#include <string.h>

#include <sodium.h>

#include "crypto/crypto_int.h"

_Static_assert(crypto_generichash_KEYBYTES == CRYPTO_KEY_BYTES, "generichash key size");

cd_err crypto_init(void)
{
    if (sodium_init() < 0)
        return CD_ERR_INTERNAL;
    return CD_OK;
}

/* ---- memory hygiene ---- */

void *crypto_secure_alloc(size_t n)
{
    return sodium_malloc(n);
}

void crypto_secure_free(void *p)
{
    if (p != NULL)
        sodium_free(p);
}

void crypto_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        sodium_memzero(p, n);
}

bool crypto_equal(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return true;
    return sodium_memcmp(a, b, n) == 0;
}

void crypto_random(void *buf, size_t n)
{
    if (buf != NULL && n > 0)
        randombytes_buf(buf, n);
}

static void store_le64(uint8_t out[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (8 * i));
}

cd_err crypto_keyed_hash(const crypto_keyring *kr, uint32_t version, enum crypto_purpose purpose,
                         const struct crypto_part *parts, size_t nparts,
                         uint8_t out[CRYPTO_HASH_BYTES])
{
    cd_err err = CD_OK;
    crypto_generichash_state st;
    uint8_t lenbuf[8];
    uint8_t h[CRYPTO_HASH_BYTES];
    const uint8_t *key;

    if (kr == NULL || out == NULL || (parts == NULL && nparts > 0) || (int)purpose < 1 ||
        (int)purpose >= CRYPTO_PURPOSE__COUNT)
        return CD_ERR_INVALID;
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i].p == NULL && parts[i].n > 0)
            return CD_ERR_INVALID;
    }
    key = crypto_keyring_subkey(kr, version, purpose);
    if (key == NULL)
        return CD_ERR_NOT_FOUND;

    if (crypto_generichash_init(&st, key, CRYPTO_KEY_BYTES, sizeof(h)) != 0) {
        err = CD_ERR_INTERNAL;
        goto out;
    }
    for (size_t i = 0; i < nparts; i++) {
        store_le64(lenbuf, (uint64_t)parts[i].n);
        if (crypto_generichash_update(&st, lenbuf, sizeof(lenbuf)) != 0 ||
            (parts[i].n > 0 && crypto_generichash_update(&st, parts[i].p, parts[i].n) != 0)) {
            err = CD_ERR_INTERNAL;
            goto out;
        }
    }
    if (crypto_generichash_final(&st, h, sizeof(h)) != 0) {
        err = CD_ERR_INTERNAL;
        goto out;
    }
    memcpy(out, h, sizeof(h));
out:
    sodium_memzero(&st, sizeof(st));
    sodium_memzero(h, sizeof(h));
    return err;
}

cd_err crypto_secret_key(const crypto_keyring *kr, uint32_t version, enum crypto_purpose purpose,
                         const uint8_t secret[CRYPTO_KEY_BYTES], uint8_t out[CRYPTO_KEY_BYTES])
{
    static const char tag[] = "confidoc-secret-key-v1";
    crypto_generichash_state st;
    uint8_t p8[8];
    const uint8_t *sub;
    int bad;

    if (kr == NULL || secret == NULL || out == NULL || (int)purpose < 1 ||
        (int)purpose >= CRYPTO_PURPOSE__COUNT)
        return CD_ERR_INVALID;
    sub = crypto_keyring_subkey(kr, version, purpose);
    if (sub == NULL)
        return CD_ERR_NOT_FOUND;
    store_le64(p8, (uint64_t)purpose);
    bad = crypto_generichash_init(&st, secret, CRYPTO_KEY_BYTES, CRYPTO_KEY_BYTES) |
          crypto_generichash_update(&st, (const uint8_t *)tag, sizeof(tag) - 1) |
          crypto_generichash_update(&st, p8, sizeof(p8)) |
          crypto_generichash_update(&st, sub, CRYPTO_KEY_BYTES) |
          crypto_generichash_final(&st, out, CRYPTO_KEY_BYTES);
    sodium_memzero(&st, sizeof(st));
    return bad != 0 ? CD_ERR_INTERNAL : CD_OK;
}

/* ---- generic AEAD ---- */

_Static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == CRYPTO_AEAD_NONCE_BYTES, "nonce");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == CRYPTO_AEAD_TAG_BYTES, "tag");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == CRYPTO_KEY_BYTES, "aead key");

cd_err crypto_aead_seal(const uint8_t key[CRYPTO_KEY_BYTES], const void *ad, size_t adlen,
                        const void *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen)
{
    unsigned long long clen = 0;

    if (key == NULL || out == NULL || outlen == NULL || (ad == NULL && adlen > 0) ||
        (in == NULL && inlen > 0))
        return CD_ERR_INVALID;
    if (inlen > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX ||
        inlen > SIZE_MAX - CRYPTO_AEAD_OVERHEAD || outcap < inlen + CRYPTO_AEAD_OVERHEAD)
        return CD_ERR_INVALID;

    randombytes_buf(out, CRYPTO_AEAD_NONCE_BYTES);
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + CRYPTO_AEAD_NONCE_BYTES, &clen, in, inlen,
                                                   ad, adlen, NULL, out, key) != 0)
        return CD_ERR_INTERNAL;
    *outlen = (size_t)clen + CRYPTO_AEAD_NONCE_BYTES;
    return CD_OK;
}

/* On CD_ERR_CRYPTO libsodium may have zeroed out[0..inlen-OVERHEAD]; no
 * unauthenticated plaintext is ever left there. */
cd_err crypto_aead_open(const uint8_t key[CRYPTO_KEY_BYTES], const void *ad, size_t adlen,
                        const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap,
                        size_t *outlen)
{
    unsigned long long mlen = 0;

    if (key == NULL || in == NULL || outlen == NULL || (ad == NULL && adlen > 0))
        return CD_ERR_INVALID;
    if (inlen < CRYPTO_AEAD_OVERHEAD || outcap < inlen - CRYPTO_AEAD_OVERHEAD)
        return CD_ERR_INVALID;
    if (out == NULL && inlen > CRYPTO_AEAD_OVERHEAD)
        return CD_ERR_INVALID;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, in + CRYPTO_AEAD_NONCE_BYTES,
                                                   inlen - CRYPTO_AEAD_NONCE_BYTES, ad, adlen, in,
                                                   key) != 0)
        return CD_ERR_CRYPTO;
    *outlen = (size_t)mlen;
    return CD_OK;
}

/* ---- passwords ---- */

#define VERIFIER_MESSAGE "confidoc-verifier-v1"

cd_err crypto_password_derive(const char *pw, size_t pwlen, const uint8_t salt[CRYPTO_SALT_BYTES],
                              const struct crypto_pwparams *params,
                              uint8_t verifier[CRYPTO_HASH_BYTES], uint8_t pwkey[CRYPTO_KEY_BYTES])
{
    cd_err err = CD_OK;
    uint8_t seed[2 * CRYPTO_KEY_BYTES];
    uint8_t v[CRYPTO_HASH_BYTES];

    _Static_assert(crypto_pwhash_SALTBYTES == CRYPTO_SALT_BYTES, "salt size");
    if ((pw == NULL && pwlen > 0) || salt == NULL || params == NULL || verifier == NULL ||
        pwkey == NULL)
        return CD_ERR_INVALID;
    /* The function forms: the MIN macros are 0 for some bounds, which
     * -Wtype-limits rejects in comparisons with unsigned values. */
    if (pwlen < crypto_pwhash_passwd_min() || pwlen > crypto_pwhash_passwd_max() ||
        params->opslimit < crypto_pwhash_opslimit_min() ||
        params->opslimit > crypto_pwhash_opslimit_max() ||
        params->memlimit < crypto_pwhash_memlimit_min() ||
        params->memlimit > crypto_pwhash_memlimit_max())
        return CD_ERR_INVALID;

    /* libsodium reads pw even when pwlen is 0; give it a valid pointer. */
    if (crypto_pwhash(seed, sizeof(seed), pw != NULL ? pw : "", pwlen, salt, params->opslimit,
                      params->memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        err = CD_ERR_NOMEM;
        goto out;
    }
    if (crypto_generichash(v, sizeof(v), (const uint8_t *)VERIFIER_MESSAGE,
                           sizeof(VERIFIER_MESSAGE) - 1, seed, CRYPTO_KEY_BYTES) != 0) {
        err = CD_ERR_INTERNAL;
        goto out;
    }
    memcpy(verifier, v, sizeof(v));
    memcpy(pwkey, seed + CRYPTO_KEY_BYTES, CRYPTO_KEY_BYTES);
out:
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(v, sizeof(v));
    return err;
}

cd_err crypto_verifier_bind(const crypto_keyring *kr, uint32_t version,
                            const uint8_t uid[CRYPTO_UID_BYTES],
                            const uint8_t verifier[CRYPTO_HASH_BYTES],
                            uint8_t out[CRYPTO_HASH_BYTES])
{
    if (uid == NULL || verifier == NULL)
        return CD_ERR_INVALID;
    const struct crypto_part parts[2] = {{uid, CRYPTO_UID_BYTES}, {verifier, CRYPTO_HASH_BYTES}};
    return crypto_keyed_hash(kr, version, CRYPTO_PURPOSE_VERIFIER, parts, 2, out);
}

/* ---- user keys ---- */

_Static_assert(crypto_box_PUBLICKEYBYTES == CRYPTO_KEY_BYTES, "box pk");
_Static_assert(crypto_box_SECRETKEYBYTES == CRYPTO_KEY_BYTES, "box sk");
_Static_assert(crypto_box_SEALBYTES + CRYPTO_KEY_BYTES == CRYPTO_ESCROWED_KEY_BYTES, "seal size");

void crypto_user_keypair(uint8_t pk[CRYPTO_KEY_BYTES], uint8_t sk[CRYPTO_KEY_BYTES])
{
    crypto_box_keypair(pk, sk);
}

void crypto_user_doc_kek(const uint8_t sk[CRYPTO_KEY_BYTES], uint8_t kek[CRYPTO_KEY_BYTES])
{
    crypto_kdf_derive_from_key(kek, CRYPTO_KEY_BYTES, 1, "cdocdkek", sk);
}

void crypto_user_subkey(const uint8_t sk[CRYPTO_KEY_BYTES], enum crypto_user_key which,
                        uint8_t out[CRYPTO_KEY_BYTES])
{
    crypto_kdf_derive_from_key(out, CRYPTO_KEY_BYTES, (uint64_t)which, "cdusrkey", sk);
}

#define SK_AD_PASSWORD "confidoc-sk-pw-v1"
#define SK_AD_RECOVERY "confidoc-sk-rc-v1"
#define SK_AD_TAG_LEN (sizeof(SK_AD_PASSWORD) - 1)
_Static_assert(sizeof(SK_AD_PASSWORD) == sizeof(SK_AD_RECOVERY), "sk ad tags");

/* A kind of secret-key wrapping: the KEK's purpose, the AD tag and the length
 * of the secret the KEK is derived from. */
struct sk_kind {
    enum crypto_purpose purpose;
    const char *tag;
    size_t secretlen;
};

static const struct sk_kind sk_password = {CRYPTO_PURPOSE_PASSWORD_KEK, SK_AD_PASSWORD,
                                           CRYPTO_KEY_BYTES};
static const struct sk_kind sk_recovery = {CRYPTO_PURPOSE_RECOVERY_KEK, SK_AD_RECOVERY,
                                           CRYPTO_RECOVERY_CODE_BYTES};

/* Shared start of the wrappings: KEK = H(subkey, secret, uid), AD = tag || uid. */
static cd_err sk_kek(const crypto_keyring *kr, uint32_t version, const struct sk_kind *kind,
                     const uint8_t *secret, const uint8_t uid[CRYPTO_UID_BYTES],
                     uint8_t kek[CRYPTO_KEY_BYTES], uint8_t ad[SK_AD_TAG_LEN + CRYPTO_UID_BYTES])
{
    const struct crypto_part parts[2] = {{secret, kind->secretlen}, {uid, CRYPTO_UID_BYTES}};

    memcpy(ad, kind->tag, SK_AD_TAG_LEN);
    memcpy(ad + SK_AD_TAG_LEN, uid, CRYPTO_UID_BYTES);
    return crypto_keyed_hash(kr, version, kind->purpose, parts, 2, kek);
}

static cd_err sk_wrap(const crypto_keyring *kr, uint32_t version, const struct sk_kind *kind,
                      const uint8_t *secret, const uint8_t uid[CRYPTO_UID_BYTES],
                      const uint8_t sk[CRYPTO_KEY_BYTES], uint8_t out[CRYPTO_WRAPPED_KEY_BYTES])
{
    cd_err err;
    uint8_t kek[CRYPTO_KEY_BYTES];
    uint8_t ad[SK_AD_TAG_LEN + CRYPTO_UID_BYTES];
    size_t outlen = 0;

    if (secret == NULL || uid == NULL || sk == NULL || out == NULL)
        return CD_ERR_INVALID;
    err = sk_kek(kr, version, kind, secret, uid, kek, ad);
    if (err == CD_OK)
        err = crypto_aead_seal(kek, ad, sizeof(ad), sk, CRYPTO_KEY_BYTES, out,
                               CRYPTO_WRAPPED_KEY_BYTES, &outlen);
    sodium_memzero(kek, sizeof(kek));
    return err;
}

static cd_err sk_unwrap(const crypto_keyring *kr, uint32_t version, const struct sk_kind *kind,
                        const uint8_t *secret, const uint8_t uid[CRYPTO_UID_BYTES],
                        const uint8_t in[CRYPTO_WRAPPED_KEY_BYTES], uint8_t sk[CRYPTO_KEY_BYTES])
{
    cd_err err;
    uint8_t kek[CRYPTO_KEY_BYTES];
    uint8_t ad[SK_AD_TAG_LEN + CRYPTO_UID_BYTES];
    uint8_t tmp[CRYPTO_KEY_BYTES];
    size_t outlen = 0;

    if (secret == NULL || uid == NULL || in == NULL || sk == NULL)
        return CD_ERR_INVALID;
    err = sk_kek(kr, version, kind, secret, uid, kek, ad);
    if (err != CD_OK)
        goto out;
    err = crypto_aead_open(kek, ad, sizeof(ad), in, CRYPTO_WRAPPED_KEY_BYTES, tmp, sizeof(tmp),
                           &outlen);
    if (err != CD_OK)
        goto out;
    if (outlen != CRYPTO_KEY_BYTES) {
        err = CD_ERR_CRYPTO;
        goto out;
    }
    memcpy(sk, tmp, CRYPTO_KEY_BYTES);
out:
    sodium_memzero(kek, sizeof(kek));
    sodium_memzero(tmp, sizeof(tmp));
    return err;
}

cd_err crypto_sk_wrap_password(const crypto_keyring *kr, uint32_t version,
                               const uint8_t pwkey[CRYPTO_KEY_BYTES],
                               const uint8_t uid[CRYPTO_UID_BYTES],
                               const uint8_t sk[CRYPTO_KEY_BYTES],
                               uint8_t out[CRYPTO_WRAPPED_KEY_BYTES])
{
    return sk_wrap(kr, version, &sk_password, pwkey, uid, sk, out);
}

cd_err crypto_sk_unwrap_password(const crypto_keyring *kr, uint32_t version,
                                 const uint8_t pwkey[CRYPTO_KEY_BYTES],
                                 const uint8_t uid[CRYPTO_UID_BYTES],
                                 const uint8_t in[CRYPTO_WRAPPED_KEY_BYTES],
                                 uint8_t sk[CRYPTO_KEY_BYTES])
{
    return sk_unwrap(kr, version, &sk_password, pwkey, uid, in, sk);
}

cd_err crypto_sk_wrap_recovery(const crypto_keyring *kr, uint32_t version,
                               const uint8_t code[CRYPTO_RECOVERY_CODE_BYTES],
                               const uint8_t uid[CRYPTO_UID_BYTES],
                               const uint8_t sk[CRYPTO_KEY_BYTES],
                               uint8_t out[CRYPTO_WRAPPED_KEY_BYTES])
{
    return sk_wrap(kr, version, &sk_recovery, code, uid, sk, out);
}

cd_err crypto_sk_unwrap_recovery(const crypto_keyring *kr, uint32_t version,
                                 const uint8_t code[CRYPTO_RECOVERY_CODE_BYTES],
                                 const uint8_t uid[CRYPTO_UID_BYTES],
                                 const uint8_t in[CRYPTO_WRAPPED_KEY_BYTES],
                                 uint8_t sk[CRYPTO_KEY_BYTES])
{
    return sk_unwrap(kr, version, &sk_recovery, code, uid, in, sk);
}

cd_err crypto_sk_escrow(const uint8_t escrow_pk[CRYPTO_KEY_BYTES],
                        const uint8_t sk[CRYPTO_KEY_BYTES], uint8_t out[CRYPTO_ESCROWED_KEY_BYTES])
{
    uint8_t tmp[CRYPTO_ESCROWED_KEY_BYTES];

    if (escrow_pk == NULL || sk == NULL || out == NULL)
        return CD_ERR_INVALID;
    /* Fails only for a public key that yields an all-zero shared secret. */
    if (crypto_box_seal(tmp, sk, CRYPTO_KEY_BYTES, escrow_pk) != 0)
        return CD_ERR_INVALID;
    memcpy(out, tmp, sizeof(tmp));
    return CD_OK;
}

/* ---- recovery codes ---- */

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
#define RECOVERY_SYMBOLS 32 /* 160 bits / 5 */
#define RECOVERY_TEXT_MAX 128

_Static_assert(RECOVERY_SYMBOLS * 5 == CRYPTO_RECOVERY_CODE_BYTES * 8, "recovery code bits");
_Static_assert(RECOVERY_SYMBOLS + RECOVERY_SYMBOLS / 4 == CRYPTO_RECOVERY_CODE_STRLEN,
               "recovery text length");

void crypto_recovery_code_new(uint8_t raw[CRYPTO_RECOVERY_CODE_BYTES],
                              char text[CRYPTO_RECOVERY_CODE_STRLEN])
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t t = 0, sym = 0;

    randombytes_buf(raw, CRYPTO_RECOVERY_CODE_BYTES);
    for (size_t i = 0; i < CRYPTO_RECOVERY_CODE_BYTES; i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            if (sym > 0 && sym % 4 == 0)
                text[t++] = '-';
            text[t++] = crockford[(acc >> bits) & 31u];
            sym++;
        }
    }
    text[t] = '\0';
    sodium_memzero(&acc, sizeof(acc));
}

/* Value of one Crockford symbol, or -1; '-' and ' ' are handled by the caller. */
static int crockford_value(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    switch (c) {
    case 'O':
        return 0;
    case 'I':
    case 'L':
        return 1;
    case 'U':
        return -1;
    default:
        break;
    }
    for (int i = 0; i < 32; i++) {
        if (crockford[i] == c)
            return i;
    }
    return -1;
}

cd_err crypto_recovery_code_parse(const char *text, size_t len,
                                  uint8_t raw[CRYPTO_RECOVERY_CODE_BYTES])
{
    cd_err err = CD_OK;
    uint8_t tmp[CRYPTO_RECOVERY_CODE_BYTES];
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t nsym = 0, nbytes = 0;

    if (text == NULL || raw == NULL || len > RECOVERY_TEXT_MAX)
        return CD_ERR_INVALID;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '-' || text[i] == ' ')
            continue;
        int v = crockford_value(text[i]);
        if (v < 0 || nsym >= RECOVERY_SYMBOLS) {
            err = CD_ERR_INVALID;
            goto out;
        }
        nsym++;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            tmp[nbytes++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1u;
        }
    }
    if (nsym != RECOVERY_SYMBOLS || nbytes != CRYPTO_RECOVERY_CODE_BYTES) {
        err = CD_ERR_INVALID;
        goto out;
    }
    memcpy(raw, tmp, sizeof(tmp));
out:
    sodium_memzero(tmp, sizeof(tmp));
    sodium_memzero(&acc, sizeof(acc));
    return err;
}

/* ---- documents ---- */

#define DOC_AD_TAG "confidoc-doc-v1"
#define DOC_AD_TAG_LEN (sizeof(DOC_AD_TAG) - 1)
#define DOC_AD_LEN (DOC_AD_TAG_LEN + CRYPTO_UID_BYTES + 8 + 8 + 1)

/* The data key's field also names the version's format: the AEAD its content
 * type and content are sealed with. Being in the associated data, the format
 * is authenticated: a wrapped key cannot be passed off as the other format. */
enum doc_field {
    DOC_FIELD_DATA_KEY = 1, /* format 1: XChaCha20-Poly1305 */
    DOC_FIELD_CTYPE = 2,
    DOC_FIELD_CONTENT = 3,
    DOC_FIELD_DATA_KEY_GCM = 4, /* format 2: AES-256-GCM */
};

/* The format new versions are sealed in; set once at start-up. */
static enum crypto_doc_aead doc_aead = CRYPTO_DOC_XCHACHA20POLY1305;

cd_err crypto_doc_choose_aead(const char *name, enum crypto_doc_aead *chosen)
{
    if (name == NULL)
        return CD_ERR_INVALID;
    if (strcmp(name, "auto") == 0)
        doc_aead = crypto_gcm_fast() ? CRYPTO_DOC_AES256GCM : CRYPTO_DOC_XCHACHA20POLY1305;
    else if (strcmp(name, "aes256gcm") == 0)
        doc_aead = CRYPTO_DOC_AES256GCM;
    else if (strcmp(name, "xchacha20poly1305") == 0)
        doc_aead = CRYPTO_DOC_XCHACHA20POLY1305;
    else
        return CD_ERR_INVALID;
    if (chosen != NULL)
        *chosen = doc_aead;
    return CD_OK;
}

static enum doc_field doc_key_field(enum crypto_doc_aead aead)
{
    return aead == CRYPTO_DOC_AES256GCM ? DOC_FIELD_DATA_KEY_GCM : DOC_FIELD_DATA_KEY;
}

static size_t doc_overhead(enum crypto_doc_aead aead)
{
    return aead == CRYPTO_DOC_AES256GCM ? CRYPTO_GCM_OVERHEAD : CRYPTO_AEAD_OVERHEAD;
}

static cd_err doc_body_seal(enum crypto_doc_aead aead, const uint8_t key[CRYPTO_KEY_BYTES],
                            const uint8_t *ad, size_t adlen, const void *in, size_t inlen,
                            uint8_t *out, size_t outcap, size_t *outlen)
{
    if (aead == CRYPTO_DOC_AES256GCM)
        return crypto_gcm_seal(key, ad, adlen, in, inlen, out, outcap, outlen);
    return crypto_aead_seal(key, ad, adlen, in, inlen, out, outcap, outlen);
}

static cd_err doc_body_open(enum crypto_doc_aead aead, const uint8_t key[CRYPTO_KEY_BYTES],
                            const uint8_t *ad, size_t adlen, const uint8_t *in, size_t inlen,
                            uint8_t *out, size_t outcap, size_t *outlen)
{
    if (aead == CRYPTO_DOC_AES256GCM)
        return crypto_gcm_open(key, ad, adlen, in, inlen, out, outcap, outlen);
    return crypto_aead_open(key, ad, adlen, in, inlen, out, outcap, outlen);
}

static void store_be64(uint8_t out[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (56 - 8 * i));
}

static void doc_ad_build(uint8_t out[DOC_AD_LEN], const struct crypto_doc_ad *ad,
                         enum doc_field field)
{
    uint8_t *p = out;
    memcpy(p, DOC_AD_TAG, DOC_AD_TAG_LEN);
    p += DOC_AD_TAG_LEN;
    memcpy(p, ad->owner_uid, CRYPTO_UID_BYTES);
    p += CRYPTO_UID_BYTES;
    store_be64(p, (uint64_t)ad->record_id);
    p += 8;
    store_be64(p, ad->version);
    p += 8;
    *p = (uint8_t)field;
}

cd_err crypto_doc_seal(const uint8_t doc_kek[CRYPTO_KEY_BYTES], const struct crypto_doc_ad *ad,
                       const char *ctype, size_t ctype_len, const uint8_t *content,
                       size_t content_len, uint8_t wrapped_dk[CRYPTO_WRAPPED_KEY_BYTES],
                       uint8_t *ctype_out, size_t ctype_cap, size_t *ctype_outlen,
                       uint8_t *content_out, size_t content_cap, size_t *content_outlen)
{
    const enum crypto_doc_aead aead = doc_aead;
    cd_err err = CD_OK;
    uint8_t dk[CRYPTO_KEY_BYTES];
    uint8_t adbuf[DOC_AD_LEN];
    size_t wlen = 0, clen = 0, blen = 0;

    /* Validate everything first so that no output is written on failure. */
    if (doc_kek == NULL || ad == NULL || (ctype == NULL && ctype_len > 0) ||
        (content == NULL && content_len > 0) || wrapped_dk == NULL || ctype_out == NULL ||
        ctype_outlen == NULL || content_out == NULL || content_outlen == NULL)
        return CD_ERR_INVALID;
    if (ctype_len > SIZE_MAX - CRYPTO_AEAD_OVERHEAD || ctype_cap < ctype_len + doc_overhead(aead) ||
        content_len > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX ||
        content_len > SIZE_MAX - CRYPTO_AEAD_OVERHEAD ||
        content_cap < content_len + doc_overhead(aead))
        return CD_ERR_INVALID;
    /* crypto_doc_open hands the content type back as a C string. */
    if (ctype_len > 0 && memchr(ctype, '\0', ctype_len) != NULL)
        return CD_ERR_INVALID;

    randombytes_buf(dk, sizeof(dk));
    doc_ad_build(adbuf, ad, doc_key_field(aead));
    err = crypto_aead_seal(doc_kek, adbuf, sizeof(adbuf), dk, sizeof(dk), wrapped_dk,
                           CRYPTO_WRAPPED_KEY_BYTES, &wlen);
    if (err != CD_OK)
        goto out;
    doc_ad_build(adbuf, ad, DOC_FIELD_CTYPE);
    err = doc_body_seal(aead, dk, adbuf, sizeof(adbuf), ctype, ctype_len, ctype_out, ctype_cap,
                        &clen);
    if (err != CD_OK)
        goto out;
    doc_ad_build(adbuf, ad, DOC_FIELD_CONTENT);
    err = doc_body_seal(aead, dk, adbuf, sizeof(adbuf), content, content_len, content_out,
                        content_cap, &blen);
    if (err != CD_OK)
        goto out;
    *ctype_outlen = clen;
    *content_outlen = blen;
out:
    sodium_memzero(dk, sizeof(dk));
    return err;
}

/* Opens a version's data key, and says its format: the format new versions
 * get is tried first, so only older versions pay a second attempt. */
static cd_err doc_key_open(const uint8_t kek[CRYPTO_KEY_BYTES], const struct crypto_doc_ad *ad,
                           const uint8_t in[CRYPTO_WRAPPED_KEY_BYTES], uint8_t dk[CRYPTO_KEY_BYTES],
                           enum crypto_doc_aead *format)
{
    const enum crypto_doc_aead first = doc_aead;
    const enum crypto_doc_aead second =
        first == CRYPTO_DOC_AES256GCM ? CRYPTO_DOC_XCHACHA20POLY1305 : CRYPTO_DOC_AES256GCM;
    uint8_t adbuf[DOC_AD_LEN];
    size_t dklen = 0;
    cd_err err;

    doc_ad_build(adbuf, ad, doc_key_field(first));
    err = crypto_aead_open(kek, adbuf, sizeof(adbuf), in, CRYPTO_WRAPPED_KEY_BYTES, dk,
                           CRYPTO_KEY_BYTES, &dklen);
    *format = first;
    if (err == CD_ERR_CRYPTO) {
        doc_ad_build(adbuf, ad, doc_key_field(second));
        err = crypto_aead_open(kek, adbuf, sizeof(adbuf), in, CRYPTO_WRAPPED_KEY_BYTES, dk,
                               CRYPTO_KEY_BYTES, &dklen);
        *format = second;
    }
    if (err == CD_OK && dklen != CRYPTO_KEY_BYTES)
        err = CD_ERR_CRYPTO;
    if (err != CD_OK)
        sodium_memzero(dk, CRYPTO_KEY_BYTES);
    return err;
}

cd_err crypto_doc_rewrap(const uint8_t old_kek[CRYPTO_KEY_BYTES],
                         const uint8_t new_kek[CRYPTO_KEY_BYTES], const struct crypto_doc_ad *ad,
                         const uint8_t in[CRYPTO_WRAPPED_KEY_BYTES],
                         uint8_t out[CRYPTO_WRAPPED_KEY_BYTES])
{
    cd_err err;
    uint8_t dk[CRYPTO_KEY_BYTES];
    uint8_t adbuf[DOC_AD_LEN];
    uint8_t tmp[CRYPTO_WRAPPED_KEY_BYTES];
    enum crypto_doc_aead format;
    size_t wlen = 0;

    if (old_kek == NULL || new_kek == NULL || ad == NULL || in == NULL || out == NULL)
        return CD_ERR_INVALID;
    err = doc_key_open(old_kek, ad, in, dk, &format);
    if (err == CD_OK) { /* the same format: the content ciphertexts stay as they are */
        doc_ad_build(adbuf, ad, doc_key_field(format));
        err = crypto_aead_seal(new_kek, adbuf, sizeof(adbuf), dk, sizeof(dk), tmp, sizeof(tmp),
                               &wlen);
    }
    if (err == CD_OK)
        memcpy(out, tmp, sizeof(tmp));
    sodium_memzero(dk, sizeof(dk));
    return err;
}

cd_err crypto_doc_open(const uint8_t doc_kek[CRYPTO_KEY_BYTES], const struct crypto_doc_ad *ad,
                       const uint8_t wrapped_dk[CRYPTO_WRAPPED_KEY_BYTES], const uint8_t *ctype_ct,
                       size_t ctype_ct_len, const uint8_t *content_ct, size_t content_ct_len,
                       char *ctype_out, size_t ctype_cap, size_t *ctype_len, uint8_t *content_out,
                       size_t content_cap, size_t *content_len)
{
    cd_err err = CD_OK;
    uint8_t dk[CRYPTO_KEY_BYTES];
    uint8_t adbuf[DOC_AD_LEN];
    enum crypto_doc_aead format;
    size_t clen = 0, blen = 0, over;
    bool wrote_ctype = false, wrote_content = false;

    if (doc_kek == NULL || ad == NULL || wrapped_dk == NULL || ctype_ct == NULL ||
        ctype_out == NULL || ctype_cap == 0 || ctype_len == NULL)
        return CD_ERR_INVALID;
    if (content_out != NULL && (content_ct == NULL || content_len == NULL))
        return CD_ERR_INVALID;

    err = doc_key_open(doc_kek, ad, wrapped_dk, dk, &format);
    if (err != CD_OK)
        return err;
    over = doc_overhead(format);
    if (ctype_ct_len < over || ctype_ct_len - over > ctype_cap - 1 ||
        (content_out != NULL && (content_ct_len < over || content_ct_len - over > content_cap))) {
        err = CD_ERR_INVALID;
        goto out;
    }
    doc_ad_build(adbuf, ad, DOC_FIELD_CTYPE);
    wrote_ctype = true;
    err = doc_body_open(format, dk, adbuf, sizeof(adbuf), ctype_ct, ctype_ct_len,
                        (uint8_t *)ctype_out, ctype_cap - 1, &clen);
    if (err != CD_OK)
        goto out;
    if (memchr(ctype_out, '\0', clen) != NULL) {
        err = CD_ERR_CRYPTO;
        goto out;
    }
    ctype_out[clen] = '\0';
    if (content_out != NULL) {
        doc_ad_build(adbuf, ad, DOC_FIELD_CONTENT);
        wrote_content = true;
        err = doc_body_open(format, dk, adbuf, sizeof(adbuf), content_ct, content_ct_len,
                            content_out, content_cap, &blen);
        if (err != CD_OK)
            goto out;
        *content_len = blen;
    }
    *ctype_len = clen;
out:
    if (err != CD_OK) {
        /* Leave no partial plaintext behind on failure. */
        if (wrote_ctype)
            sodium_memzero(ctype_out, ctype_cap);
        if (wrote_content)
            sodium_memzero(content_out, content_ct_len - over);
    }
    sodium_memzero(dk, sizeof(dk));
    return err;
}
