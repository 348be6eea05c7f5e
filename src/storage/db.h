/* db.h: persistence of accounts and documents in MariaDB (Connector/C).
 *
 * The database only ever sees ciphertext, keyed hashes and random identifiers:
 * encryption happens in the callers (auth, handlers) through crypto.h.
 * Every statement is prepared; every connection uses TLS with a client
 * certificate and verifies the server's certificate and host name. A 2xx
 * answer rests on these functions returning CD_OK only after COMMIT.
 *
 * Only this module includes mysql.h. Errors: CD_ERR_UNAVAILABLE when the
 * server cannot be reached (callers answer 503), CD_ERR_NOT_FOUND,
 * CD_ERR_EXISTS (unique key), CD_ERR_CONFLICT (optimistic concurrency lost),
 * CD_ERR_TIMEOUT (no pool connection free in time), CD_ERR_INTERNAL. */
#ifndef CONFIDOC_DB_H
#define CONFIDOC_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "crypto/crypto.h"

struct db_config {
    /* TCP host name or address; or several, ','-separated (at most
     * DB_HOSTS_MAX, e.g. the nodes of a Galera cluster): a connection goes to
     * the host that accepted the last one, and to the next when it fails. */
    const char *host;
    unsigned port;
    const char *database;
    const char *user;
    const char *password;    /* may be NULL: the account authenticates by certificate */
    const char *tls_ca;      /* CA file that verifies the server */
    const char *tls_cert;    /* our client certificate */
    const char *tls_key;     /* its key */
    bool verify_server_name; /* check host against the server certificate (default true) */
    unsigned pool_size;      /* connections, >= 1 */
    /* Further connections that alone carry documents whose ciphertext exceeds
     * DB_INLINE_CONTENT_MAX (0: the pool carries them). Each may keep a buffer
     * as large as the largest document it carried: this bounds that memory. */
    unsigned large_pool_size;
    unsigned connect_timeout_s;
    unsigned io_timeout_s;       /* read/write timeout per statement */
    unsigned acquire_timeout_ms; /* wait for a free pool connection */
};

#define DB_HOSTS_MAX 8

/* Documents whose ciphertext is larger travel through the large lane. */
#define DB_INLINE_CONTENT_MAX ((size_t)64 * 1024)

typedef struct db_pool db_pool;

/* Creates a pool. Connections are opened lazily and re-opened after failures,
 * so this succeeds even while the server is down. */
cd_err db_pool_new(const struct db_config *cfg, db_pool **out);
/* Closes every connection; NULL is a no-op. */
void db_pool_free(db_pool *pool);
/* Applies the schema migrations not yet applied (serialised across replicas by
 * a named lock). Run once at start. */
cd_err db_migrate(db_pool *pool);
/* Opens every closed connection of the pool now, so that the first burst of
 * requests does not pay for dozens of TLS handshakes and logins at once.
 * Stops at the first failure (the pool still opens connections on demand);
 * *opened (may be NULL) counts the connections opened. */
cd_err db_pool_warm(db_pool *pool, unsigned *opened);
/* Checks that a connection works (readiness). */
cd_err db_ping(db_pool *pool);
/* Statements sent so far through the pool (prepared executions and text
 * queries, transaction control included): lets tests count round trips. */
uint64_t db_statement_count(const db_pool *pool);
/* Returns the schema version applied (for tests and /readyz). */
cd_err db_schema_version(db_pool *pool, unsigned *version);

/* ---- accounts ---- */

/* Largest sealed secret-key blob stored (wrapped or escrowed). */
#define DB_KEYBLOB_MAX 96

/* Kinds of users.verifier. */
#define DB_VERIFIER_LEGACY 1 /* BLAKE2b of the Argon2id output alone (before issue 9) */
#define DB_VERIFIER_KEYED 2  /* that, bound to the master key: crypto_verifier_bind */
/* users.totp_state */
#define DB_TOTP_OFF 0
#define DB_TOTP_PENDING 1 /* a secret handed out, not yet confirmed with a code */
#define DB_TOTP_ON 2
/* Largest sealed TOTP secret stored. */
#define DB_TOTP_CT_MAX 128
/* Most username hashes one lookup takes (one per keyring version). */
#define DB_UNAME_HASHES_MAX CRYPTO_KEYRING_MAX_KEYS

struct db_user {
    uint64_t id;                           /* assigned by db_user_insert_unique */
    uint8_t uid[CRYPTO_UID_BYTES];         /* random, stable: binds ciphertexts */
    uint8_t uname_hash[CRYPTO_HASH_BYTES]; /* keyed hash of the username */
    uint32_t mk_version;   /* master key version of uname_hash, verifier and sk_pw */
    uint32_t rc_version;   /* master key version of sk_rc (0 on write: mk_version) */
    uint8_t verifier_kind; /* DB_VERIFIER_* (0 on write: DB_VERIFIER_KEYED) */
    uint8_t pw_salt[CRYPTO_SALT_BYTES];
    uint32_t pw_opslimit;
    uint32_t pw_memlimit_kib;
    uint8_t verifier[CRYPTO_HASH_BYTES];
    uint8_t public_key[CRYPTO_KEY_BYTES];
    uint8_t sk_pw[CRYPTO_WRAPPED_KEY_BYTES]; /* secret key under the password KEK */
    uint8_t sk_rc[CRYPTO_WRAPPED_KEY_BYTES]; /* secret key under the recovery KEK */
    uint8_t sk_escrow[DB_KEYBLOB_MAX];       /* optional: sealed to an escrow key */
    size_t sk_escrow_len;                    /* 0 when absent */
    uint32_t auth_gen; /* bumped on every credential change; invalidates caches */
    /* Two-factor (issue 14): DB_TOTP_*; the secret sealed under the user's
     * TOTP key (empty when off); the last time step a code was accepted at. */
    uint8_t totp_state;
    uint8_t totp_ct[DB_TOTP_CT_MAX];
    size_t totp_ct_len;
    uint64_t totp_last_step;
};

/* Inserts a new account and sets u->id, unless any of the n
 * (1..DB_UNAME_HASHES_MAX) hashes (the name's hash under every keyring
 * version) names one: CD_ERR_EXISTS then, or when uname_hash or uid is taken.
 * One transaction: a locking read of the n hashes, then the insert, so
 * two creations of one name cannot both succeed. */
cd_err db_user_insert_unique(db_pool *pool, struct db_user *u,
                             const uint8_t (*hashes)[CRYPTO_HASH_BYTES], size_t n);
/* Looks an account up by any of n username hashes, in one statement whatever
 * n and whether a row exists (the oldest account if several match). */
cd_err db_user_find(db_pool *pool, const uint8_t (*hashes)[CRYPTO_HASH_BYTES], size_t n,
                    struct db_user *out);
/* Replaces the credential columns (uname_hash, mk_version, rc_version,
 * pw_salt, pw_opslimit, pw_memlimit_kib, verifier, verifier_kind, public_key,
 * sk_pw, sk_rc, sk_escrow) of account u->id and sets
 * auth_gen to expected_gen + 1, only if its auth_gen is still expected_gen
 * (CD_ERR_CONFLICT otherwise; CD_ERR_NOT_FOUND if the account is gone). */
cd_err db_user_update_credentials(db_pool *pool, const struct db_user *u, uint32_t expected_gen);
/* Re-wraps a document data key: in (under the old key) to out (the new). */
typedef cd_err (*db_rewrap_fn)(void *cls, int64_t record_id, uint64_t version,
                               const uint8_t in[CRYPTO_WRAPPED_KEY_BYTES],
                               uint8_t out[CRYPTO_WRAPPED_KEY_BYTES]);
/* A user key rotation in one transaction: locks the account row (CD_ERR_CONFLICT
 * unless its auth_gen is expected_gen), re-wraps every document's data key of
 * the account through rewrap (batches of a few dozen rows, each locked), then
 * writes the credential columns as db_user_update_credentials, and u's
 * totp_ct (re-sealed under the new key by the caller; two-factor stays as
 * it is), and deletes the account's application passwords and sessions
 * (their wrapped copies hold the old key). Any failure
 * (rewrap's too) rolls everything back. Document writes through the _if_gen
 * functions lock the account row first too, so they either finish before the
 * rotation or see the new auth_gen and write nothing. */
cd_err db_user_rotate_key(db_pool *pool, const struct db_user *u, uint32_t expected_gen,
                          db_rewrap_fn rewrap, void *cls);
/* A legacy verifier row for db_user_convert_verifiers. */
struct db_verifier_row {
    uint8_t uid[CRYPTO_UID_BYTES];
    uint32_t mk_version;
    uint8_t verifier[CRYPTO_HASH_BYTES];
};
typedef cd_err (*db_verifier_fn)(void *cls, const struct db_verifier_row *r,
                                 uint8_t out[CRYPTO_HASH_BYTES]);
/* Converts every DB_VERIFIER_LEGACY row: verifier = convert(row), kind KEYED,
 * one conditional UPDATE per row (idempotent, safe to interrupt and to run
 * on several replicas at once). A row convert refuses stays legacy. */
cd_err db_user_convert_verifiers(db_pool *pool, db_verifier_fn convert, void *cls,
                                 unsigned *converted);
/* Deletes the account and all its documents in one transaction. */
cd_err db_user_delete(db_pool *pool, uint64_t id);

/* ---- documents ---- */

/* Largest sealed content type stored (a content type is at most 255 bytes). */
#define DB_CTYPE_CT_MAX (255 + CRYPTO_AEAD_OVERHEAD)

struct db_doc {
    uint64_t owner_id;
    int64_t record_id; /* 0 .. 2^63-1 */
    uint64_t version;  /* 1 for the first, +1 on every replacement */
    uint8_t wrapped_dk[CRYPTO_WRAPPED_KEY_BYTES];
    uint8_t ctype_ct[DB_CTYPE_CT_MAX];
    size_t ctype_ct_len;
    uint8_t *content_ct; /* owned by whoever filled the struct; see db_doc_release */
    size_t content_ct_len;
    uint64_t size;      /* plaintext length in bytes */
    int64_t created_us; /* microseconds since the epoch, UTC */
    int64_t updated_us;
};

/* Frees content_ct of a struct filled by db_doc_read (NULL-safe) and wipes
 * nothing else: ciphertext is not secret. */
void db_doc_release(struct db_doc *d);

/* Inserts version d->version of a new document, in one statement that also
 * checks that the owner's account still has auth_gen (a credential checked
 * only against a cache is confirmed by the same round trip): CD_ERR_EXISTS
 * when (owner_id, record_id) exists; CD_ERR_AUTH, with nothing inserted, when
 * the account's credentials changed or it is gone. Timestamps are set by the
 * database. */
cd_err db_doc_insert_if_gen(db_pool *pool, const struct db_doc *d, uint32_t auth_gen);
/* Replaces the document with d (whose version must be expected_version + 1)
 * only if its current version is expected_version (CD_ERR_CONFLICT otherwise,
 * CD_ERR_NOT_FOUND if it does not exist), and only while the owner's account
 * still has auth_gen (CD_ERR_AUTH otherwise, nothing written; see
 * db_user_rotate_key). Keeps created_us. */
cd_err db_doc_replace_if_gen(db_pool *pool, const struct db_doc *d, uint64_t expected_version,
                             uint32_t auth_gen);
/* Reads a document; content_ct is malloc'ed for the caller (release with
 * db_doc_release). The content is sent only when its ciphertext is at most
 * max_content bytes (SIZE_MAX: any size): otherwise CD_ERR_TOO_LARGE, with
 * everything but the content filled in (content_ct NULL, content_ct_len its
 * size), so that the caller can make room before asking again with a larger
 * max_content. Reads for more than DB_INLINE_CONTENT_MAX go through the large
 * lane. auth_gen: NULL, or the generation the owner's account must still
 * have, checked in the same statement (CD_ERR_AUTH when it changed or the
 * account is gone). */
cd_err db_doc_read(db_pool *pool, uint64_t owner_id, const uint32_t *auth_gen, int64_t record_id,
                   size_t max_content, struct db_doc *out);
/* Current version of a document, or CD_ERR_NOT_FOUND. */
cd_err db_doc_version(db_pool *pool, uint64_t owner_id, int64_t record_id, uint64_t *version);
/* Deletes a document; CD_ERR_NOT_FOUND if it did not exist. */
cd_err db_doc_delete(db_pool *pool, uint64_t owner_id, int64_t record_id);
/* Lists the owner's documents with record_id > after, in record_id order, at
 * most max of them, without content (content_ct stays NULL). Sets *n. */
cd_err db_doc_list(db_pool *pool, uint64_t owner_id, int64_t after, struct db_doc *out, size_t max,
                   size_t *n);
/* db_doc_list in one statement that also checks that the owner's account
 * still has auth_gen: CD_ERR_AUTH otherwise (a key rotation committed since
 * the caller's login: the listed data keys would not open under its key). */
cd_err db_doc_list_if_gen(db_pool *pool, uint64_t owner_id, uint32_t auth_gen, int64_t after,
                          struct db_doc *out, size_t max, size_t *n);

/* ---- sessions, application passwords, two-factor (db_session.c) ---- */

/* Largest sealed session blob: the secret key and the username. */
#define DB_SESSION_WRAP_MAX 192
/* Largest sealed application password name (64 characters of UTF-8). */
#define DB_APPPW_NAME_CT_MAX 320
/* Expired sessions (of anyone) deleted by one db_session_insert. */
#define DB_SESSION_SWEEP 100

struct db_session {
    uint8_t id_hash[CRYPTO_HASH_BYTES]; /* keyed hash of the token; never the token */
    uint64_t user_id;
    uint32_t auth_gen;   /* the account's at creation */
    uint32_t mk_version; /* of id_hash and of the wrapping key */
    uint8_t sk_wrapped[DB_SESSION_WRAP_MAX];
    size_t sk_wrapped_len;
    uint8_t uid[CRYPTO_UID_BYTES]; /* read: the account's (users.uid) */
};

/* Inserts a session that expires ttl_s seconds from now, only while the
 * account's auth_gen is still s->auth_gen (CD_ERR_AUTH otherwise, nothing
 * inserted), then removes the account's oldest sessions beyond max_per_user,
 * in one transaction; afterwards deletes up to DB_SESSION_SWEEP expired
 * sessions of any account (best effort). */
cd_err db_session_insert(db_pool *pool, const struct db_session *s, unsigned ttl_s,
                         unsigned max_per_user);
/* Reads the session of id_hash in one statement joined with its account: it
 * is valid only when it has not expired and its auth_gen is the account's
 * current one. CD_ERR_NOT_FOUND otherwise (an invalid row is deleted). */
cd_err db_session_get(db_pool *pool, const uint8_t id_hash[CRYPTO_HASH_BYTES],
                      struct db_session *out);
/* Deletes one session (CD_ERR_NOT_FOUND when there was none). */
cd_err db_session_delete(db_pool *pool, const uint8_t id_hash[CRYPTO_HASH_BYTES]);

struct db_apppw {
    uint64_t id;
    uint64_t user_id;
    size_t name_ct_len;
    int64_t created_us;
    int64_t last_used_us; /* -1: never used */
    uint32_t mk_version;
    bool use_stale; /* read by db_apppw_list_user: last use over a minute ago */
    uint8_t name_ct[DB_APPPW_NAME_CT_MAX];
    uint8_t verifier[CRYPTO_HASH_BYTES];
    uint8_t sk_wrapped[CRYPTO_WRAPPED_KEY_BYTES];
};
/* Fills name_ct and sk_wrapped of p once its id is known (they bind it). */
typedef cd_err (*db_apppw_seal_fn)(void *cls, struct db_apppw *p);
/* Inserts an application password for p->user_id (verifier, mk_version set)
 * while the account's auth_gen is auth_gen (CD_ERR_AUTH otherwise) and it has
 * fewer than max (CD_ERR_LIMITED otherwise), sealing it through seal once
 * the id is assigned, in one transaction. Sets p->id (created_us is not read back). */
cd_err db_apppw_insert(db_pool *pool, struct db_apppw *p, uint32_t auth_gen, unsigned max,
                       db_apppw_seal_fn seal, void *cls);
/* The account's application passwords (at most max, by id) into out, *n. */
cd_err db_apppw_list_user(db_pool *pool, uint64_t user_id, struct db_apppw *out, size_t max,
                          size_t *n);
/* Sets last_used_at of id to now. */
cd_err db_apppw_touch(db_pool *pool, uint64_t id);
/* Deletes application password id of user_id; CD_ERR_NOT_FOUND when the
 * account has no such one. */
cd_err db_apppw_delete(db_pool *pool, uint64_t user_id, uint64_t id);

/* Two-factor state changes, each one conditional UPDATE. */
/* A new pending secret (replacing a pending one) while auth_gen holds:
 * CD_ERR_EXISTS when two-factor is on, CD_ERR_AUTH when auth_gen changed. */
cd_err db_totp_set_pending(db_pool *pool, uint64_t user_id, uint32_t auth_gen, const uint8_t *ct,
                           size_t ct_len);
/* Turns two-factor on for the pending secret ct (still the stored one),
 * records step as the last one used and bumps auth_gen (every cache entry
 * and every session ends), in one transaction that keeps the session
 * keep_session (NULL: none) alive at the new auth_gen. CD_ERR_CONFLICT when
 * anything changed meanwhile. */
cd_err db_totp_confirm(db_pool *pool, uint64_t user_id, uint32_t auth_gen, const uint8_t *ct,
                       size_t ct_len, uint64_t step, const uint8_t *keep_session);
/* Records the use of a code at step, only when it is greater than the last
 * one recorded (two replicas cannot both accept one code): CD_ERR_CONFLICT
 * for a replay. */
cd_err db_totp_use_step(db_pool *pool, uint64_t user_id, uint64_t step);
/* Turns two-factor off (the secret is destroyed) with a code at step (as
 * db_totp_use_step: CD_ERR_CONFLICT for a replay or when it is not on). */
cd_err db_totp_disable(db_pool *pool, uint64_t user_id, uint64_t step);

#endif
