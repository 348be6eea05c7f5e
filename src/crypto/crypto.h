/* crypto.h: every cryptographic operation of confidoc, on libsodium.
 *
 * Key hierarchy (docs/security.md explains why):
 *   master key (versioned keyring, from a file)
 *     -> purpose subkeys: keyed hashes of usernames, cache keys, rate-limit
 *        keys, and the key-encryption keys below
 *   password -> Argon2id(salt) -> 64 bytes = verifier seed || password key
 *     stored verifier = H(master subkey VERIFIER, uid, BLAKE2b(verifier seed))
 *     password KEK = H(master subkey, password key, uid) wraps the user's secret key
 *   recovery code (160 random bits) -> recovery KEK = H(master subkey, code, uid)
 *     wraps the same secret key
 *   user secret key (X25519) -> document KEK = KDF(sk) wraps each version's data key
 *   data key (random per document version) encrypts content and content type
 *
 * All AEAD is XChaCha20-Poly1305-IETF with a random 24-byte nonce stored in front
 * of the ciphertext: sealed = nonce || ciphertext || tag.
 *
 * Only this module includes sodium.h. Functions return CD_OK or an error; an
 * output is written only on CD_OK. */
#ifndef CONFIDOC_CRYPTO_H
#define CONFIDOC_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"
#include "common/err.h"

#define CRYPTO_KEY_BYTES 32
#define CRYPTO_HASH_BYTES 32
#define CRYPTO_SALT_BYTES 16
#define CRYPTO_UID_BYTES 16
#define CRYPTO_AEAD_NONCE_BYTES 24
#define CRYPTO_AEAD_TAG_BYTES 16
#define CRYPTO_AEAD_OVERHEAD (CRYPTO_AEAD_NONCE_BYTES + CRYPTO_AEAD_TAG_BYTES)
/* A sealed 32-byte key: nonce || ciphertext || tag. */
#define CRYPTO_WRAPPED_KEY_BYTES (CRYPTO_KEY_BYTES + CRYPTO_AEAD_OVERHEAD)
/* crypto_box_seal of a 32-byte key to an escrow public key. */
#define CRYPTO_ESCROWED_KEY_BYTES (CRYPTO_KEY_BYTES + 48)
#define CRYPTO_RECOVERY_CODE_BYTES 20
/* Text form: 32 Crockford base32 characters in 8 groups of 4 joined by '-', plus NUL. */
#define CRYPTO_RECOVERY_CODE_STRLEN 40
/* Largest master key version accepted; versions are 1..CRYPTO_KEYRING_MAX_VERSION. */
#define CRYPTO_KEYRING_MAX_VERSION 0x7fffffffu
/* Most versions a keyring file may hold. */
#define CRYPTO_KEYRING_MAX_KEYS 64

/* Initialises libsodium. Call once before anything else; idempotent. */
cd_err crypto_init(void);

/* ---- memory hygiene ---- */

/* Guarded, locked (mlock) allocation for long-lived secrets; NULL on failure.
 * Free with crypto_secure_free, which wipes. Slow: not for per-request use. */
void *crypto_secure_alloc(size_t n);
void crypto_secure_free(void *p); /* NULL is a no-op */
/* Wipes n bytes in a way the compiler cannot elide. */
void crypto_wipe(void *p, size_t n);
/* Constant-time comparison; true when the n bytes are equal. */
bool crypto_equal(const void *a, const void *b, size_t n);
void crypto_random(void *buf, size_t n);

/* ---- master keyring ---- */

typedef struct crypto_keyring crypto_keyring;

/* Loads master key versions from path. Format: lines "VERSION:HEX" with 64 hex
 * digits (VERSION a decimal in 1..CRYPTO_KEYRING_MAX_VERSION), or one line of 64
 * hex digits alone (version 1); blank lines and lines starting with '#' are
 * ignored. The file must be a regular file not accessible by group or others.
 * Keys and derived subkeys live in locked memory. On failure adds one
 * message (never key material) to diag (may be NULL). Errors: common/file's
 * (a missing file is CD_ERR_NOT_FOUND); CD_ERR_CONFIG for bad content. */
cd_err crypto_keyring_load(const char *path, crypto_keyring **out, struct cd_diag *diag);
/* Builds a one-version keyring from 32 raw bytes (tests, tools). */
cd_err crypto_keyring_from_key(const uint8_t key[CRYPTO_KEY_BYTES], uint32_t version,
                               crypto_keyring **out);
void crypto_keyring_free(crypto_keyring *kr); /* wipes; NULL is a no-op */
/* The version new data is protected under. */
uint32_t crypto_keyring_newest(const crypto_keyring *kr);
/* Writes up to max versions, newest first; returns how many the keyring has. */
size_t crypto_keyring_versions(const crypto_keyring *kr, uint32_t *out, size_t max);
bool crypto_keyring_has(const crypto_keyring *kr, uint32_t version);

enum crypto_purpose {
    CRYPTO_PURPOSE_USERNAME = 1,        /* database lookup key of a username */
    CRYPTO_PURPOSE_CREDCACHE = 2,       /* in-memory credential cache keys */
    CRYPTO_PURPOSE_RATELIMIT = 3,       /* memcached keys of client addresses */
    CRYPTO_PURPOSE_LOGINFAIL = 4,       /* memcached keys of failed-login counters */
    CRYPTO_PURPOSE_PASSWORD_KEK = 5,    /* wraps a user's secret key under the password */
    CRYPTO_PURPOSE_RECOVERY_KEK = 6,    /* wraps it under the recovery code */
    CRYPTO_PURPOSE_VERIFIER = 7,        /* binds a stored login verifier to the master key */
    CRYPTO_PURPOSE_SESSION_ID = 8,      /* database key of a session: hash of its token */
    CRYPTO_PURPOSE_SESSION_KEK = 9,     /* wraps a user's secret key under a session token */
    CRYPTO_PURPOSE_CSRF = 10,           /* a session's CSRF token, derived from its token */
    CRYPTO_PURPOSE_APPPW_VERIFIER = 11, /* stored verifier of an application password */
    CRYPTO_PURPOSE_APPPW_KEK = 12,      /* wraps a user's secret key under one */
    CRYPTO_PURPOSE__COUNT
};

/* One input of a keyed hash. */
struct crypto_part {
    const void *p;
    size_t n;
};

/* out = BLAKE2b-256 keyed with the purpose's subkey of master key `version`,
 * over the parts, each preceded by its length as 8 little-endian bytes (so
 * ("ab","c") and ("a","bc") differ). CD_ERR_NOT_FOUND for an unknown version. */
cd_err crypto_keyed_hash(const crypto_keyring *kr, uint32_t version, enum crypto_purpose purpose,
                         const struct crypto_part *parts, size_t nparts,
                         uint8_t out[CRYPTO_HASH_BYTES]);

/* A key derived from a high-entropy client secret (a session token, an
 * application password's 32 random bytes): BLAKE2b-256 keyed with the secret
 * over a tag of the purpose and the purpose's subkey of master key version.
 * Each purpose gives an unrelated key, and none can be computed from the
 * database alone (the secret is never stored) nor from the secret alone (the
 * master key is needed too). CD_ERR_NOT_FOUND for an unknown version. */
cd_err crypto_secret_key(const crypto_keyring *kr, uint32_t version, enum crypto_purpose purpose,
                         const uint8_t secret[CRYPTO_KEY_BYTES], uint8_t out[CRYPTO_KEY_BYTES]);

/* ---- passwords ---- */

struct crypto_pwparams {
    unsigned long long opslimit; /* Argon2id passes (t) */
    size_t memlimit;             /* bytes (m) */
};

/* One Argon2id computation (parallelism 1) over the password and salt yields
 * both the login verifier (to store and compare) and the password key (secret:
 * input of the password KEK). CD_ERR_NOMEM when Argon2id cannot get its memory. */
cd_err crypto_password_derive(const char *pw, size_t pwlen, const uint8_t salt[CRYPTO_SALT_BYTES],
                              const struct crypto_pwparams *params,
                              uint8_t verifier[CRYPTO_HASH_BYTES], uint8_t pwkey[CRYPTO_KEY_BYTES]);

/* The verifier stored in the database: H(master[version] VERIFIER subkey;
 * uid, verifier) where verifier is crypto_password_derive's. Without the
 * master key a dump cannot confirm a password guess. CD_ERR_NOT_FOUND for an
 * unknown version. */
cd_err crypto_verifier_bind(const crypto_keyring *kr, uint32_t version,
                            const uint8_t uid[CRYPTO_UID_BYTES],
                            const uint8_t verifier[CRYPTO_HASH_BYTES],
                            uint8_t out[CRYPTO_HASH_BYTES]);

/* ---- user keys ---- */

/* A new X25519 key pair for a user. */
void crypto_user_keypair(uint8_t pk[CRYPTO_KEY_BYTES], uint8_t sk[CRYPTO_KEY_BYTES]);
/* The key that wraps the user's document data keys, derived from sk. */
void crypto_user_doc_kek(const uint8_t sk[CRYPTO_KEY_BYTES], uint8_t kek[CRYPTO_KEY_BYTES]);

/* Keys derived from a user's secret key for what is encrypted under it
 * besides document keys (each a separate KDF subkey id, context "cdusrkey"). */
enum crypto_user_key {
    CRYPTO_USER_KEY_TOTP = 1,  /* the TOTP secret (users.totp_ct) */
    CRYPTO_USER_KEY_LABEL = 2, /* names the user gives things (app_passwords.name_ct) */
};
void crypto_user_subkey(const uint8_t sk[CRYPTO_KEY_BYTES], enum crypto_user_key which,
                        uint8_t out[CRYPTO_KEY_BYTES]);

/* Wraps sk under H(master[version] PASSWORD_KEK subkey, pwkey, uid); the AEAD's
 * associated data binds uid and the purpose. */
cd_err crypto_sk_wrap_password(const crypto_keyring *kr, uint32_t version,
                               const uint8_t pwkey[CRYPTO_KEY_BYTES],
                               const uint8_t uid[CRYPTO_UID_BYTES],
                               const uint8_t sk[CRYPTO_KEY_BYTES],
                               uint8_t out[CRYPTO_WRAPPED_KEY_BYTES]);
/* CD_ERR_CRYPTO when the wrapping does not verify. */
cd_err crypto_sk_unwrap_password(const crypto_keyring *kr, uint32_t version,
                                 const uint8_t pwkey[CRYPTO_KEY_BYTES],
                                 const uint8_t uid[CRYPTO_UID_BYTES],
                                 const uint8_t in[CRYPTO_WRAPPED_KEY_BYTES],
                                 uint8_t sk[CRYPTO_KEY_BYTES]);

/* A new random recovery code: raw bytes and their text form. */
void crypto_recovery_code_new(uint8_t raw[CRYPTO_RECOVERY_CODE_BYTES],
                              char text[CRYPTO_RECOVERY_CODE_STRLEN]);
/* Parses a code as typed by a person: case-insensitive, '-' and ' ' ignored,
 * Crockford's aliases (O->0, I/L->1) accepted. CD_ERR_INVALID otherwise. */
cd_err crypto_recovery_code_parse(const char *text, size_t len,
                                  uint8_t raw[CRYPTO_RECOVERY_CODE_BYTES]);
/* As the password variants, under H(master[version] RECOVERY_KEK subkey, code, uid). */
cd_err crypto_sk_wrap_recovery(const crypto_keyring *kr, uint32_t version,
                               const uint8_t code[CRYPTO_RECOVERY_CODE_BYTES],
                               const uint8_t uid[CRYPTO_UID_BYTES],
                               const uint8_t sk[CRYPTO_KEY_BYTES],
                               uint8_t out[CRYPTO_WRAPPED_KEY_BYTES]);
cd_err crypto_sk_unwrap_recovery(const crypto_keyring *kr, uint32_t version,
                                 const uint8_t code[CRYPTO_RECOVERY_CODE_BYTES],
                                 const uint8_t uid[CRYPTO_UID_BYTES],
                                 const uint8_t in[CRYPTO_WRAPPED_KEY_BYTES],
                                 uint8_t sk[CRYPTO_KEY_BYTES]);
/* Seals sk to a deployment escrow public key (crypto_box_seal). */
cd_err crypto_sk_escrow(const uint8_t escrow_pk[CRYPTO_KEY_BYTES],
                        const uint8_t sk[CRYPTO_KEY_BYTES], uint8_t out[CRYPTO_ESCROWED_KEY_BYTES]);

/* ---- generic AEAD ---- */

/* out = nonce || ciphertext || tag; outcap must be >= inlen + CRYPTO_AEAD_OVERHEAD
 * (CD_ERR_INVALID otherwise). */
cd_err crypto_aead_seal(const uint8_t key[CRYPTO_KEY_BYTES], const void *ad, size_t adlen,
                        const void *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen);
/* Inverse of crypto_aead_seal; CD_ERR_CRYPTO on any tampering, CD_ERR_INVALID
 * when in is shorter than the overhead or outcap too small. */
cd_err crypto_aead_open(const uint8_t key[CRYPTO_KEY_BYTES], const void *ad, size_t adlen,
                        const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap,
                        size_t *outlen);

/* ---- documents ---- */

/* The AEAD a document version's content type and content are sealed with:
 * its format, recorded (authenticated) in how its data key is wrapped, so
 * versions of both formats open side by side. */
enum crypto_doc_aead {
    CRYPTO_DOC_XCHACHA20POLY1305 = 1, /* format 1: every version before format 2 */
    CRYPTO_DOC_AES256GCM = 2,         /* format 2 */
};
/* The least overhead of a document ciphertext (AES-256-GCM's nonce and tag);
 * sealing needs room for CRYPTO_AEAD_OVERHEAD, the larger. */
#define CRYPTO_DOC_OVERHEAD_MIN ((size_t)28)

/* Chooses the format new versions get, once at start-up before any thread:
 * "auto" (AES-256-GCM where the CPU has AES-NI and PCLMULQDQ, else
 * XChaCha20-Poly1305), "aes256gcm" or "xchacha20poly1305". Both formats are
 * always read. CD_ERR_INVALID for another name. */
cd_err crypto_doc_choose_aead(const char *name, enum crypto_doc_aead *chosen);

/* What a document version's ciphertexts are bound to. */
struct crypto_doc_ad {
    uint8_t owner_uid[CRYPTO_UID_BYTES];
    int64_t record_id;
    uint64_t version;
};

/* Encrypts one document version under a fresh random data key, which is
 * wrapped under doc_kek. Writes the wrapped data key, the sealed content type
 * (ctype_cap >= ctype_len + OVERHEAD) and the sealed content (content_cap >=
 * content_len + OVERHEAD). Each AEAD's associated data is a domain tag, the
 * fields of ad, and which field it is, so a ciphertext moved to another
 * owner, record, version or field fails to open. */
cd_err crypto_doc_seal(const uint8_t doc_kek[CRYPTO_KEY_BYTES], const struct crypto_doc_ad *ad,
                       const char *ctype, size_t ctype_len, const uint8_t *content,
                       size_t content_len, uint8_t wrapped_dk[CRYPTO_WRAPPED_KEY_BYTES],
                       uint8_t *ctype_out, size_t ctype_cap, size_t *ctype_outlen,
                       uint8_t *content_out, size_t content_cap, size_t *content_outlen);
/* Re-wraps the data key of a version sealed by crypto_doc_seal from old_kek
 * to new_kek (same ad); the content ciphertexts stay valid. CD_ERR_CRYPTO when
 * in does not open under old_kek. */
cd_err crypto_doc_rewrap(const uint8_t old_kek[CRYPTO_KEY_BYTES],
                         const uint8_t new_kek[CRYPTO_KEY_BYTES], const struct crypto_doc_ad *ad,
                         const uint8_t in[CRYPTO_WRAPPED_KEY_BYTES],
                         uint8_t out[CRYPTO_WRAPPED_KEY_BYTES]);
/* Decrypts a version sealed by crypto_doc_seal. content_out may be NULL (with
 * content NULL/0) to open only the content type, as listings do. ctype_out is
 * NUL-terminated (ctype_cap counts the NUL). CD_ERR_CRYPTO on any tampering. */
cd_err crypto_doc_open(const uint8_t doc_kek[CRYPTO_KEY_BYTES], const struct crypto_doc_ad *ad,
                       const uint8_t wrapped_dk[CRYPTO_WRAPPED_KEY_BYTES], const uint8_t *ctype_ct,
                       size_t ctype_ct_len, const uint8_t *content_ct, size_t content_ct_len,
                       char *ctype_out, size_t ctype_cap, size_t *ctype_len, uint8_t *content_out,
                       size_t content_cap, size_t *content_len);

/* ---- one-time codes (crypto_otp.c, on OpenSSL's HMAC-SHA-1) ---- */

/* RFC 6238 as authenticator apps use it: HMAC-SHA-1, 30 s steps, 6 digits. */
#define CRYPTO_TOTP_STEP_S 30
#define CRYPTO_TOTP_DIGITS 6
#define CRYPTO_TOTP_SECRET_BYTES 20 /* 160 bits (RFC 4226 recommends it) */

/* RFC 4226 HOTP: the digits-digit code (6..8) of counter under key. */
cd_err crypto_hotp(const uint8_t *key, size_t keylen, uint64_t counter, unsigned digits,
                   uint32_t *code);
/* Checks a 6-digit TOTP code typed by the user (exactly six ASCII digits)
 * against key at unix time now: the steps now/30 - 1, now/30 and now/30 + 1
 * are accepted (one step of clock drift either way), and only a step greater
 * than after (the last one accepted, for replay protection). All three are
 * computed and compared in constant time. true with *step the step matched. */
bool crypto_totp_match(const uint8_t *key, size_t keylen, const char *code, size_t code_len,
                       int64_t now, uint64_t after, uint64_t *step);

/* ---- secret files (secret_file.c) ---- */

/* common/file's allocator for secrets: guarded memory (crypto_secure_alloc),
 * wiped on release. For file_read of key material. */
struct file_mem;
extern const struct file_mem crypto_file_mem;

/* Largest secret file crypto_secret_file_read accepts at all. */
#define CRYPTO_SECRET_FILE_MAX ((size_t)64 * 1024)

/* Reads the secret file path (a password, say) with read(2) into memory from
 * crypto_secure_alloc, never through stdio's buffers. The file must be a
 * regular file reached without following a link at its last component
 * (O_NOFOLLOW), owned by the caller's effective user or root, with no access
 * for others and no write for its group, and of at most max bytes (max <=
 * CRYPTO_SECRET_FILE_MAX). *out is NUL-terminated and cut at the first CR or
 * LF; *len (may be NULL) is its length. The caller frees *out with
 * crypto_secure_free (which wipes). Errors: CD_ERR_NOT_FOUND (no file),
 * CD_ERR_CONFIG (not a regular file, wrong owner or mode), CD_ERR_TOO_LARGE,
 * CD_ERR_NOMEM, CD_ERR_IO, CD_ERR_INVALID (bad arguments). */
cd_err crypto_secret_file_read(const char *path, size_t max, char **out, size_t *len);

#endif
