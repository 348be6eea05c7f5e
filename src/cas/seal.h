/* seal.h: the CAS's state key: every byte the CAS keeps on disk is sealed
 * (AEAD) under it; it is itself kept wrapped under a sealing key and, for
 * recovery, wrapped to the operators' X25519 recovery keys.
 *
 * Hierarchy (docs/security.md, docs/internals/cas-service.md):
 *   sealing key (a file readable only by the CAS's user, or a kernel-keyring
 *   key; the seam where a TEE's sealing key goes) --wraps--> state key
 *   (random, 32 bytes, locked memory) --seals--> every store file.
 *   Recovery public keys (X25519, 1 of N, or k of N shares) --wrap--> state key.
 * On disk, in STATE/cas/ (0700, the CAS's user): state-key.sealed, and
 * recovery/N.wrap for each recovery key. */
#ifndef CONFIDOC_CAS_SEAL_H
#define CONFIDOC_CAS_SEAL_H

#include <stdbool.h>
#include <stddef.h>

#include "cas/pki.h"
#include "common/diag.h"
#include "common/err.h"

#define SEAL_KEY_BYTES 32
#define SEAL_MAX_RECOVERY 16
/* A sealed blob: "CDSL", version byte 1, a 12-byte random nonce, the
 * ChaCha20-Poly1305 ciphertext, a 16-byte tag; the associated data is the
 * 5-byte header followed by the blob's name. */
#define SEAL_OVERHEAD (5 + 12 + 16)
#define SEAL_MAX_PLAINTEXT ((size_t)16 * 1024 * 1024)
#define SEAL_NAME_MAX 1024

struct seal_key; /* the state key; opaque, in locked memory */

/* Where the sealing key comes from.
 * FILE: 32 random bytes (or 64 hex digits and an optional newline) in a
 *   regular file (not a link), mode 0600 or stricter, owned by the process's
 *   euid; read into locked memory. Created (O_EXCL, 0600, raw bytes) when
 *   missing at first start and by seal_recover.
 * KEYRING: a key of type "user" with that description, searched for and
 *   created in the process's *user* keyring (KEY_SPEC_USER_KEYRING: one per
 *   uid, shared by that uid's processes, gone at reboot; keep a copy, or rely
 *   on the recovery keys). Created with 32 random bytes when missing at first
 *   start, permissions possessor all, user view+read+search.
 * The seam for a TEE: a third kind (SEAL_SOURCE_TEE, not implemented) whose
 *   key is derived by the enclave (SGX EGETKEY with MRENCLAVE/MRSIGNER
 *   policy, an SEV-SNP MSG_KEY_REQ derived key, a TDX-bound key). seal.c
 *   reaches each kind only through its entry in a table of { load, create }
 *   functions (struct sealer in seal.c); a TEE kind is one more entry whose
 *   load derives the 32 bytes into locked memory and whose create is that
 *   same derivation. Nothing else changes: the state key is wrapped the same
 *   way. */
enum seal_source_kind {
    SEAL_SOURCE_FILE,    /* name: the key file's path */
    SEAL_SOURCE_KEYRING, /* name: the "user" key's description in the user keyring */
};

struct seal_source {
    enum seal_source_kind kind;
    const char *name; /* the file's path or the key's description */
};

/* Recovery: recovery/index (text: "confidoc-cas recovery 1", "threshold K",
 * then "key N SHA256HEX" per key: the hash of its raw 32-byte public key) and
 * recovery/N.wrap (N = 1..n): "CDRW", version 1, the 32-byte ephemeral
 * X25519 public key, then a sealed blob (format above) under
 * HKDF-SHA256(X25519(ephemeral, recipient), salt = ephemeral pub || recipient
 * pub, info = "confidoc-cas recovery wrap 1") with name "recovery/N.wrap".
 * Its plaintext: threshold, share number (0 for 1 of N), SHA-256 of
 * "confidoc-cas state key id" || state key (to check the result), and 32
 * bytes: the state key (threshold 1) or its Shamir share over GF(256)
 * (libgfshare; threshold k > 1). */
struct seal_recovery {
    const char *const *pubkeys; /* paths of X25519 public keys (PEM) */
    size_t n;                   /* at most SEAL_MAX_RECOVERY */
    unsigned threshold;         /* 1: any one key recovers; k > 1: k of the n (shares) */
};

/* Opens the state key of STATE/cas. At first start (no state-key.sealed)
 * creates the sealing key when it does not exist yet, a random state key,
 * its recovery wraps (rec may be NULL or empty: no recovery, said in diag as
 * a note), then its sealed copy (written last: a start interrupted before it
 * is a first start again). rec is only used at first start. Afterwards
 * unwraps it: CD_ERR_CRYPTO when the sealing key is not the one it was sealed
 * under (or state-key.sealed was altered), CD_ERR_NOT_FOUND when the sealing
 * key is missing, CD_ERR_CONFIG when the key file is a link, not 0600 or
 * stricter, another user's, or not 32 bytes / 64 hex digits. Holds
 * STATE/cas/.lock while it works and releases it before returning (call it
 * before store_open). */
cd_err seal_open(const char *state_dir, const struct seal_source *src,
                 const struct seal_recovery *rec, struct cd_diag *diag, struct seal_key **out);
void seal_key_free(struct seal_key *k); /* wipes; NULL is a no-op */

/* AEAD (ChaCha20-Poly1305 with a random 96-bit nonce, format above) of one
 * state blob of at most SEAL_MAX_PLAINTEXT bytes; name (the blob's path in
 * the store, 1..SEAL_NAME_MAX bytes) is bound as associated data so a sealed
 * file cannot be swapped for another. out is released by the caller
 * (pki_buf_release). */
cd_err seal_encrypt(const struct seal_key *k, const char *name, const void *pt, size_t len,
                    struct pki_buf *out);
/* CD_ERR_CRYPTO when ct was altered, truncated, or sealed under another name or key. */
cd_err seal_decrypt(const struct seal_key *k, const char *name, const void *ct, size_t len,
                    struct pki_buf *out);

/* confidoc-cas recover: unwraps the state key with the given recovery private
 * keys (PEM files, at most SEAL_MAX_RECOVERY; threshold of them, matched to
 * the wraps by the index's public-key hashes), then seals it under the new
 * sealing source (created when missing: a file O_EXCL, a keyring key) and
 * rewrites state-key.sealed. The store itself is untouched. Errors:
 * CD_ERR_NOT_FOUND no recovery index; CD_ERR_AUTH a key that matches none of
 * the recovery keys, or fewer distinct keys than the threshold; CD_ERR_CRYPTO
 * a wrap that does not open or shares that do not give the state key back;
 * CD_ERR_CONFIG a bad index, key file or sealing source. diag says which. */
cd_err seal_recover(const char *state_dir, const char *const *privkeys, size_t n,
                    const struct seal_source *new_src, struct cd_diag *diag);

/* Boxes: plaintext for the holder of an X25519 private key (the construction
 * of the recovery wraps, under HKDF info "confidoc-cas box 1": an ephemeral
 * X25519 key, HKDF-SHA256 of the shared secret, salt = ephemeral pub ||
 * recipient pub, then a blob of the format above with name as associated
 * data), so that only that key's holder reads it. Keys raw, 32 bytes. The
 * node path seals each release to the node agent's per-request key with
 * them (docs/internals/cas-service.md, "Node agents"). A box proves nothing
 * about its sender. seal_unbox: CD_ERR_CRYPTO when it was altered, sealed to
 * another key or under another name. At most SEAL_MAX_PLAINTEXT bytes. */
#define SEAL_BOX_KEY_BYTES 32
#define SEAL_BOX_OVERHEAD (5 + SEAL_BOX_KEY_BYTES + SEAL_OVERHEAD) /* + the ephemeral key */
cd_err seal_box_keygen(unsigned char priv[SEAL_BOX_KEY_BYTES],
                       unsigned char pub[SEAL_BOX_KEY_BYTES]);
cd_err seal_box(const unsigned char pub[SEAL_BOX_KEY_BYTES], const char *name, const void *pt,
                size_t len, struct pki_buf *out);
cd_err seal_unbox(const unsigned char priv[SEAL_BOX_KEY_BYTES], const char *name, const void *in,
                  size_t len, struct pki_buf *out);

/* confidoc-cas recovery-keygen: a new X25519 key pair; the private key file is
 * created 0600 (O_EXCL, PKCS#8 PEM), the public one 0644 (O_EXCL,
 * SubjectPublicKeyInfo PEM). CD_ERR_EXISTS when either file exists. */
cd_err seal_recovery_keygen(const char *priv_path, const char *pub_path);

#endif
