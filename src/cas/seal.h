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

struct seal_key; /* the state key; opaque, in locked memory */

enum seal_source_kind {
    SEAL_SOURCE_FILE,    /* path: a 32-byte random key file, 0600, the CAS's own user */
    SEAL_SOURCE_KEYRING, /* name: a "user" key of that description in the user keyring */
};

struct seal_source {
    enum seal_source_kind kind;
    const char *name; /* the file's path or the key's description */
};

struct seal_recovery {
    const char *const *pubkeys; /* paths of X25519 public keys (PEM) */
    size_t n;
    unsigned threshold; /* 1: any one key recovers; k > 1: k of the n (shares) */
};

/* Opens the state key of STATE/cas. At first start (no state-key.sealed)
 * creates the sealing key when the source is a file that does not exist yet,
 * a random state key, its sealed copy and its recovery wraps (rec may be NULL
 * or empty: no recovery, said in diag as a warning-free note). Afterwards
 * unwraps it: CD_ERR_CRYPTO when the sealing key is not the one it was sealed
 * under, CD_ERR_NOT_FOUND when the sealing key is missing. */
cd_err seal_open(const char *state_dir, const struct seal_source *src,
                 const struct seal_recovery *rec, struct cd_diag *diag, struct seal_key **out);
void seal_key_free(struct seal_key *k); /* wipes; NULL is a no-op */

/* AEAD (XChaCha20-Poly1305 or AES-256-GCM with a random nonce) of one state
 * blob; name (the blob's path in the store) is bound as associated data so a
 * sealed file cannot be swapped for another. out is released by the caller. */
cd_err seal_encrypt(const struct seal_key *k, const char *name, const void *pt, size_t len,
                    struct pki_buf *out);
/* CD_ERR_CRYPTO when ct was altered, truncated, or sealed under another name or key. */
cd_err seal_decrypt(const struct seal_key *k, const char *name, const void *ct, size_t len,
                    struct pki_buf *out);

/* confidoc-cas recover: unwraps the state key with the given recovery private
 * keys (threshold of them), then seals it under the new sealing source (which
 * is created when it is a file that does not exist) and rewrites
 * state-key.sealed. The store itself is untouched. */
cd_err seal_recover(const char *state_dir, const char *const *privkeys, size_t n,
                    const struct seal_source *new_src, struct cd_diag *diag);

/* confidoc-cas recovery-keygen: a new X25519 key pair; the private key file is
 * created 0600 (O_EXCL), the public one 0644. */
cd_err seal_recovery_keygen(const char *priv_path, const char *pub_path);

#endif
