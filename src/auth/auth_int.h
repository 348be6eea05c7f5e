/* auth_int.h: what the auth module's files share; private to src/auth/. */
#ifndef CONFIDOC_AUTH_INT_H
#define CONFIDOC_AUTH_INT_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "auth/auth.h"

#define AUTH_WAYS 4 /* cache associativity: entries per bucket */
/* Credentials being verified at once (see auth_flight_begin). */
#define AUTH_FLIGHTS 64
/* The sweeper wipes expired cache entries (their secret keys) this often, so
 * an expired key is gone within a second of its expiry. */
#define AUTH_SWEEP_PERIOD_MS 250
/* Entries swept per hold of the cache lock (a few microseconds). */
#define AUTH_SWEEP_CHUNK 512

struct auth_cache_entry {
    uint8_t key[CRYPTO_HASH_BYTES]; /* keyed hash of (username, password) */
    uint64_t user_id;
    uint8_t uid[CRYPTO_UID_BYTES];
    uint8_t sk[CRYPTO_KEY_BYTES];
    uint32_t auth_gen;
    int64_t expires;  /* monotonic milliseconds; 0: empty. Moves forward on each hit */
    int64_t deadline; /* verified + max age: expires never passes it */
};

/* A credential whose Argon2id verification is running. */
struct auth_flight {
    uint8_t key[CRYPTO_HASH_BYTES];
    bool busy;
};

struct auth {
    struct auth_config cfg;
    const crypto_keyring *kr;
    db_pool *db;
    ratelimit *rl;
    sem_t hash_slots;
    atomic_uint_fast64_t hashes;    /* Argon2id computations run */
    atomic_uint_fast64_t hash_work; /* their sum of passes x KiB */
    pthread_mutex_t lock;
    struct auth_cache_entry *cache; /* locked memory: holds secret keys */
    size_t nbuckets;
    struct auth_flight flights[AUTH_FLIGHTS]; /* guarded by lock */
    pthread_cond_t flight_done;
    /* Guarded by lock: no entry expires before next_sweep (a lower bound:
     * hits only move expiries later); the sweeper stops when stopping. */
    int64_t next_sweep;
    bool stopping;
    pthread_cond_t sweep_wake; /* CLOCK_MONOTONIC */
    pthread_t sweeper;
    bool sweeper_running;
};

/* auth_cache.c */
int64_t auth_now(void); /* monotonic milliseconds */
void *auth_sweeper(void *arg);
cd_err auth_cache_key(const auth *a, const struct auth_credentials *c,
                      uint8_t key[CRYPTO_HASH_BYTES]);
bool auth_cache_get(auth *a, const uint8_t key[CRYPTO_HASH_BYTES], const struct db_user *row,
                    struct auth_principal *out);
void auth_cache_put(auth *a, const uint8_t key[CRYPTO_HASH_BYTES], const struct auth_principal *p);
void auth_cache_forget_user(auth *a, uint64_t user_id);
bool auth_hook_run(const struct auth_hook *hook); /* false: the caller gives up (CD_ERR_LIMITED) */
/* The request id for a call's log lines ("-" without one). */
const char *auth_hook_request_id(const struct auth_hook *hook);
void auth_wait_deadline(const auth *a, struct timespec *deadline);
bool auth_flight_begin(auth *a, const uint8_t key[CRYPTO_HASH_BYTES], int *slot,
                       const struct auth_hook *hook);
void auth_flight_end(auth *a, int slot);

/* auth.c */
/* Steps 4 to 7 of auth_login without the cache: counts the attempt toward
 * the block, then the dummy work (found CD_ERR_NOT_FOUND: no account) or the
 * Argon2id and verifier compare against row, unwraps the secret key and
 * upgrades an outdated row. Does not reset the count (the caller does once
 * every factor passed). */
cd_err auth_verify_password(auth *a, const struct auth_credentials *c, cd_err found,
                            const struct db_user *row, struct auth_principal *out,
                            unsigned *retry_after_s, const struct auth_hook *hook);
cd_err auth_check_blocked(auth *a, const char *user, size_t len, unsigned *retry_after_s);
void auth_log_failure(const auth *a, const char *user, size_t len, const char *what,
                      const struct auth_hook *hook);

/* auth_apppw.c */
/* Whether a password has the shape of an application password. */
bool auth_apppw_shaped(const char *pw, size_t len);
/* Basic with an application password: row the account (NULL: none).
 * Refused while the account is blocked; compares against every row of the
 * account (no cache) and unseals the secret key. CD_ERR_AUTH (counted as a
 * failed login) when none matches; a success resets no count. */
cd_err auth_apppw_login(auth *a, const struct auth_credentials *c, const struct db_user *row,
                        struct auth_principal *out, unsigned *retry_after_s,
                        const struct auth_hook *hook);

/* auth_totp.c */
/* Opens row's TOTP secret (sealed under sk's TOTP key, bound to the uid). */
cd_err auth_totp_open(const struct db_user *row, const uint8_t sk[CRYPTO_KEY_BYTES],
                      uint8_t secret[CRYPTO_TOTP_SECRET_BYTES]);
/* Seals secret for the account uid under sk's TOTP key into row's totp_ct. */
cd_err auth_totp_seal(struct db_user *row, const uint8_t sk[CRYPTO_KEY_BYTES],
                      const uint8_t secret[CRYPTO_TOTP_SECRET_BYTES]);
/* A key rotation or recovery: re-seals row's TOTP secret (pending or on)
 * from old_sk to new_sk, so two-factor stays as it was. */
cd_err auth_totp_reseal(struct db_user *row, const uint8_t old_sk[CRYPTO_KEY_BYTES],
                        const uint8_t new_sk[CRYPTO_KEY_BYTES]);

/* auth_keys.c */
cd_err auth_uname_hash(const auth *a, uint32_t version, const char *user, size_t len,
                       uint8_t out[CRYPTO_HASH_BYTES]);
cd_err auth_name_hashes(const auth *a, const char *user, size_t len,
                        uint8_t hashes[CRYPTO_KEYRING_MAX_KEYS][CRYPTO_HASH_BYTES], size_t *n);
cd_err auth_find_user(const auth *a, const char *user, size_t len, struct db_user *row);
cd_err auth_stored_verifier(const auth *a, const struct db_user *row,
                            const uint8_t v[CRYPTO_HASH_BYTES], uint8_t out[CRYPTO_HASH_BYTES]);
cd_err auth_derive(auth *a, const char *pw, size_t pwlen, const uint8_t salt[CRYPTO_SALT_BYTES],
                   const struct crypto_pwparams *params, uint8_t verifier[CRYPTO_HASH_BYTES],
                   uint8_t pwkey[CRYPTO_KEY_BYTES], const struct auth_hook *hook);
cd_err auth_dummy_work(auth *a, const char *user, size_t ulen, const char *pw, size_t pwlen,
                       const struct auth_hook *hook);
cd_err auth_set_password(auth *a, struct db_user *row, const char *pw, size_t pwlen,
                         const uint8_t sk[CRYPTO_KEY_BYTES]);
cd_err auth_set_recovery(auth *a, struct db_user *row, const uint8_t sk[CRYPTO_KEY_BYTES],
                         char code_text[CRYPTO_RECOVERY_CODE_STRLEN]);
cd_err auth_rekey(auth *a, struct db_user *row, const char *user, size_t user_len, const char *pw,
                  size_t pwlen, const uint8_t old_sk[CRYPTO_KEY_BYTES], uint32_t old_gen,
                  char code_out[CRYPTO_RECOVERY_CODE_STRLEN]);

#endif
