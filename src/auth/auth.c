/* auth.c: credential verification, the credential cache, and account lifecycle. */
#include "auth/auth.h"
#include "auth/auth_test.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/codec.h"
#include "common/deadline.h"
#include "log/log.h"
#include "validate/validate.h"

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

static void *auth_sweeper(void *arg);

static int64_t auth_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cd_err auth_new(const struct auth_config *cfg, const crypto_keyring *kr, db_pool *db, ratelimit *rl,
                auth **out)
{
    auth *a;
    size_t entries;

    if (cfg->max_concurrent_hashes == 0 || cfg->cache_entries == 0)
        return CD_ERR_INVALID;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return CD_ERR_NOMEM;
    a->cfg = *cfg;
    if (a->cfg.cache_max_age_s < a->cfg.cache_ttl_s)
        a->cfg.cache_max_age_s = a->cfg.cache_ttl_s;
    atomic_init(&a->hashes, 0);
    atomic_init(&a->hash_work, 0);
    a->kr = kr;
    a->db = db;
    a->rl = rl;
    a->nbuckets = (cfg->cache_entries + AUTH_WAYS - 1) / AUTH_WAYS;
    entries = a->nbuckets * AUTH_WAYS;
    a->cache = crypto_secure_alloc(entries * sizeof(*a->cache));
    if (a->cache == NULL) {
        free(a);
        return CD_ERR_NOMEM;
    }
    memset(a->cache, 0, entries * sizeof(*a->cache));
    if (sem_init(&a->hash_slots, 0, cfg->max_concurrent_hashes) != 0) {
        crypto_secure_free(a->cache);
        free(a);
        return CD_ERR_INTERNAL;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->flight_done, NULL);
    a->next_sweep = INT64_MAX;
    {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&a->sweep_wake, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (pthread_create(&a->sweeper, NULL, auth_sweeper, a) != 0) {
        auth_free(a);
        return CD_ERR_INTERNAL;
    }
    a->sweeper_running = true;
    *out = a;
    return CD_OK;
}

void auth_free(auth *a)
{
    if (a == NULL)
        return;
    if (a->sweeper_running) {
        pthread_mutex_lock(&a->lock);
        a->stopping = true;
        pthread_cond_signal(&a->sweep_wake);
        pthread_mutex_unlock(&a->lock);
        pthread_join(a->sweeper, NULL);
    }
    crypto_secure_free(a->cache); /* wipes */
    sem_destroy(&a->hash_slots);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->flight_done);
    pthread_cond_destroy(&a->sweep_wake);
    crypto_wipe(a->flights, sizeof(a->flights));
    free(a);
}

void auth_principal_wipe(struct auth_principal *p)
{
    crypto_wipe(p, sizeof(*p));
}

void auth_principal_doc_kek(const struct auth_principal *p, uint8_t kek[CRYPTO_KEY_BYTES])
{
    crypto_user_doc_kek(p->sk, kek);
}

void auth_credentials_wipe(struct auth_credentials *c)
{
    crypto_wipe(c, sizeof(*c));
}

/* ---- HTTP Basic ---- */

cd_err auth_parse_basic(const char *header, struct auth_credentials *out)
{
    bool too_long;

    return auth_parse_basic_len(header, out, &too_long);
}

cd_err auth_parse_basic_len(const char *header, struct auth_credentials *out, bool *too_long)
{
    uint8_t buf[AUTH_USER_MAX + 1 + AUTH_PASSWORD_MAX + 3];
    const char *p;
    const uint8_t *colon;
    size_t len, user_len, pass_len, n;
    cd_err rc = CD_ERR_INVALID;

    *too_long = false;
    if (header == NULL || strncasecmp(header, "Basic ", 6) != 0)
        return CD_ERR_INVALID;
    p = header + 6;
    while (*p == ' ')
        p++;
    len = strlen(p);
    while (len > 0 && p[len - 1] == ' ')
        len--;
    if (len > ((sizeof(buf) + 2) / 3) * 4) {
        *too_long = true; /* longer than any credential within the limits */
        return CD_ERR_INVALID;
    }
    if (codec_b64_decode(p, len, buf, sizeof(buf), &n) != CD_OK)
        goto out;
    colon = memchr(buf, ':', n);
    if (colon == NULL)
        goto out;
    user_len = (size_t)(colon - buf);
    pass_len = n - user_len - 1;
    if (user_len > AUTH_USER_MAX || pass_len > AUTH_PASSWORD_MAX) {
        *too_long = true;
        goto out;
    }
    out->user_len = user_len;
    out->pass_len = pass_len;
    memcpy(out->user, buf, user_len);
    out->user[user_len] = '\0';
    memcpy(out->pass, colon + 1, pass_len);
    out->pass[pass_len] = '\0';
    rc = CD_OK;
out:
    crypto_wipe(buf, sizeof(buf));
    return rc;
}

/* ---- keyed hashes ---- */

static cd_err auth_uname_hash(const auth *a, uint32_t version, const char *user, size_t len,
                              uint8_t out[CRYPTO_HASH_BYTES])
{
    struct crypto_part part = {user, len};
    return crypto_keyed_hash(a->kr, version, CRYPTO_PURPOSE_USERNAME, &part, 1, out);
}

void auth_log_tag(const auth *a, const char *user, size_t len, char tag[17])
{
    uint8_t h[CRYPTO_HASH_BYTES];

    if (auth_uname_hash(a, crypto_keyring_newest(a->kr), user, len, h) != CD_OK) {
        memcpy(tag, "????????????????", 17);
        return;
    }
    codec_hex_encode(h, 8, tag);
}

/* The username's hash under every version of the keyring, newest first
 * (hashes[0] is the one new rows get). */
static cd_err auth_name_hashes(const auth *a, const char *user, size_t len,
                               uint8_t hashes[CRYPTO_KEYRING_MAX_KEYS][CRYPTO_HASH_BYTES],
                               size_t *n)
{
    uint32_t versions[CRYPTO_KEYRING_MAX_KEYS];
    size_t count = crypto_keyring_versions(a->kr, versions, CRYPTO_KEYRING_MAX_KEYS);

    if (count == 0)
        return CD_ERR_INTERNAL;
    if (count > CRYPTO_KEYRING_MAX_KEYS)
        count = CRYPTO_KEYRING_MAX_KEYS;
    for (size_t i = 0; i < count; i++) {
        cd_err rc = auth_uname_hash(a, versions[i], user, len, hashes[i]);
        if (rc != CD_OK)
            return rc;
    }
    *n = count;
    return CD_OK;
}

/* Finds the account of a username under any master key version: one
 * statement with the name's hash under each version, so the lookup costs the
 * same whether the name exists, and under which version. */
static cd_err auth_find_user(const auth *a, const char *user, size_t len, struct db_user *row)
{
    uint8_t hashes[CRYPTO_KEYRING_MAX_KEYS][CRYPTO_HASH_BYTES];
    size_t n = 0;
    cd_err rc = auth_name_hashes(a, user, len, hashes, &n);

    if (rc == CD_OK)
        rc = db_user_find(a->db, (const uint8_t(*)[CRYPTO_HASH_BYTES])hashes, n, row);
    return rc;
}

/* What users.verifier holds for the Argon2id-derived verifier v of row. */
static cd_err auth_stored_verifier(const auth *a, const struct db_user *row,
                                   const uint8_t v[CRYPTO_HASH_BYTES],
                                   uint8_t out[CRYPTO_HASH_BYTES])
{
    if (row->verifier_kind == DB_VERIFIER_LEGACY) {
        memcpy(out, v, CRYPTO_HASH_BYTES); /* not yet converted (auth_convert_verifiers) */
        return CD_OK;
    }
    return crypto_verifier_bind(a->kr, row->mk_version, row->uid, v, out);
}

/* ---- credential cache ---- */

static cd_err auth_cache_key(const auth *a, const struct auth_credentials *c,
                             uint8_t key[CRYPTO_HASH_BYTES])
{
    struct crypto_part parts[2] = {{c->user, c->user_len}, {c->pass, c->pass_len}};
    return crypto_keyed_hash(a->kr, crypto_keyring_newest(a->kr), CRYPTO_PURPOSE_CREDCACHE, parts,
                             2, key);
}

static struct auth_cache_entry *auth_bucket(const auth *a, const uint8_t key[CRYPTO_HASH_BYTES])
{
    uint64_t h;
    memcpy(&h, key, sizeof(h));
    return &a->cache[(h % a->nbuckets) * AUTH_WAYS];
}

/* A hit needs the same key, the same account and the same auth_gen as the
 * row just read (row NULL: any, to be confirmed by the caller), and an
 * unexpired entry. */
static bool auth_cache_get(auth *a, const uint8_t key[CRYPTO_HASH_BYTES], const struct db_user *row,
                           struct auth_principal *out)
{
    struct auth_cache_entry *b = auth_bucket(a, key);
    int64_t now = auth_now();
    bool hit = false;

    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < AUTH_WAYS; i++) {
        struct auth_cache_entry *e = &b[i];
        if (e->expires == 0 || !crypto_equal(e->key, key, CRYPTO_HASH_BYTES))
            continue;
        if (e->expires <= now ||
            (row != NULL && (e->user_id != row->id || e->auth_gen != row->auth_gen))) {
            crypto_wipe(e, sizeof(*e)); /* stale: drop it */
            continue;
        }
        /* In use: kept for another idle TTL, never beyond its max age. */
        e->expires = now + (int64_t)a->cfg.cache_ttl_s * 1000;
        if (e->expires > e->deadline)
            e->expires = e->deadline;
        out->id = e->user_id;
        memcpy(out->uid, e->uid, sizeof(out->uid));
        memcpy(out->sk, e->sk, sizeof(out->sk));
        out->auth_gen = e->auth_gen;
        hit = true;
        break;
    }
    pthread_mutex_unlock(&a->lock);
    return hit;
}

static void auth_cache_put(auth *a, const uint8_t key[CRYPTO_HASH_BYTES],
                           const struct auth_principal *p)
{
    struct auth_cache_entry *b = auth_bucket(a, key), *victim = &b[0];
    int64_t now = auth_now();

    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < AUTH_WAYS; i++) {
        struct auth_cache_entry *e = &b[i];
        if (e->expires == 0 || e->expires <= now || crypto_equal(e->key, key, CRYPTO_HASH_BYTES)) {
            victim = e;
            break;
        }
        if (e->expires < victim->expires)
            victim = e;
    }
    memcpy(victim->key, key, CRYPTO_HASH_BYTES);
    victim->user_id = p->id;
    memcpy(victim->uid, p->uid, sizeof(victim->uid));
    memcpy(victim->sk, p->sk, sizeof(victim->sk));
    victim->auth_gen = p->auth_gen;
    victim->deadline = now + (int64_t)a->cfg.cache_max_age_s * 1000;
    victim->expires = now + (int64_t)a->cfg.cache_ttl_s * 1000;
    if (victim->expires > victim->deadline)
        victim->expires = victim->deadline;
    if (victim->expires < a->next_sweep)
        a->next_sweep = victim->expires;
    pthread_mutex_unlock(&a->lock);
}

/* Wipes the expired entries among n from first (called with the lock held);
 * returns the earliest expiry of those left (INT64_MAX: none). */
static int64_t auth_sweep_range(auth *a, size_t first, size_t n, int64_t now)
{
    int64_t earliest = INT64_MAX;

    for (size_t i = first; i < first + n; i++) {
        struct auth_cache_entry *e = &a->cache[i];
        if (e->expires == 0)
            continue;
        if (e->expires <= now)
            crypto_wipe(e, sizeof(*e));
        else if (e->expires < earliest)
            earliest = e->expires;
    }
    return earliest;
}

/* The sweeper thread: every AUTH_SWEEP_PERIOD_MS, when an entry may have
 * expired, wipes the expired ones, a chunk per hold of the lock. Entries
 * added or extended meanwhile lower next_sweep themselves (auth_cache_put),
 * so the bound stays valid without holding the lock for a whole pass. */
static void *auth_sweeper(void *arg)
{
    auth *a = arg;
    size_t total = a->nbuckets * AUTH_WAYS;

    pthread_mutex_lock(&a->lock);
    while (!a->stopping) {
        struct timespec wake;
        int64_t now = auth_now(), earliest = INT64_MAX;

        if (a->next_sweep <= now) {
            a->next_sweep = INT64_MAX;
            for (size_t i = 0; i < total && !a->stopping; i += AUTH_SWEEP_CHUNK) {
                size_t n = total - i < AUTH_SWEEP_CHUNK ? total - i : AUTH_SWEEP_CHUNK;
                int64_t e = auth_sweep_range(a, i, n, now);

                if (e < earliest)
                    earliest = e;
                /* Let requests in between chunks. */
                pthread_mutex_unlock(&a->lock);
                pthread_mutex_lock(&a->lock);
            }
            if (earliest < a->next_sweep)
                a->next_sweep = earliest;
        }
        cd_deadline(CLOCK_MONOTONIC, AUTH_SWEEP_PERIOD_MS, &wake);
        (void)pthread_cond_timedwait(&a->sweep_wake, &a->lock, &wake);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* Every byte of the slot, padding included: what a memory dump would show. */
static bool auth_slot_zero(const struct auth_cache_entry *e)
{
    const unsigned char *b = (const unsigned char *)e;
    unsigned char any = 0;

    for (size_t i = 0; i < sizeof(*e); i++)
        any |= b[i];
    return any == 0;
}

size_t auth_test_cache_nonzero_slots(auth *a)
{
    size_t n = 0, total = a->nbuckets * AUTH_WAYS;

    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < total; i++)
        if (!auth_slot_zero(&a->cache[i]))
            n++;
    pthread_mutex_unlock(&a->lock);
    return n;
}

/* Drops every cached credential of an account (this replica; the others see
 * the auth_gen change). */
static void auth_cache_forget_user(auth *a, uint64_t user_id)
{
    size_t n = a->nbuckets * AUTH_WAYS;

    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < n; i++) {
        if (a->cache[i].expires != 0 && a->cache[i].user_id == user_id)
            crypto_wipe(&a->cache[i], sizeof(a->cache[i]));
    }
    pthread_mutex_unlock(&a->lock);
}

/* ---- one verification per credential at a time ----
 * When a cached credential expires while a client has many requests in
 * flight, they all miss at once. Without this, each would run its own Argon2id
 * (tens of ms each, queued on hash_slots): seconds of stall. The first miss
 * verifies; the others with the same (username, password) wait for it and
 * then find the cache filled. They wait at most hash_wait_ms, then verify
 * themselves, and so does everyone when all flight slots are taken. */

/* The caller's hook (auth_login), before a wait of this module's own. */
static void auth_hook_run(const struct auth_hook *hook)
{
    if (hook != NULL && hook->before_hash != NULL)
        hook->before_hash(hook->cls);
}

/* Now + hash_wait_ms on the realtime clock (for timed waits). */
static void auth_wait_deadline(const auth *a, struct timespec *deadline)
{
    cd_deadline(CLOCK_REALTIME, a->cfg.hash_wait_ms, deadline);
}

/* True: this thread verifies (and must call auth_flight_end with *slot).
 * False: another thread verified the same credential meanwhile (or the wait
 * timed out); the caller looks in the cache again. */
static bool auth_flight_begin(auth *a, const uint8_t key[CRYPTO_HASH_BYTES], int *slot,
                              const struct auth_hook *hook)
{
    struct timespec deadline;
    int free_slot = -1;

    auth_wait_deadline(a, &deadline);
    *slot = -1;
    pthread_mutex_lock(&a->lock);
    for (int i = 0; i < AUTH_FLIGHTS; i++) {
        if (!a->flights[i].busy) {
            if (free_slot < 0)
                free_slot = i;
            continue;
        }
        if (!crypto_equal(a->flights[i].key, key, CRYPTO_HASH_BYTES))
            continue;
        /* Same credential in flight: wait until its slot is released. */
        if (hook != NULL) {
            pthread_mutex_unlock(&a->lock);
            auth_hook_run(hook);
            pthread_mutex_lock(&a->lock);
        }
        while (a->flights[i].busy && crypto_equal(a->flights[i].key, key, CRYPTO_HASH_BYTES)) {
            if (pthread_cond_timedwait(&a->flight_done, &a->lock, &deadline) != 0)
                break;
        }
        pthread_mutex_unlock(&a->lock);
        return false;
    }
    if (free_slot >= 0) {
        memcpy(a->flights[free_slot].key, key, CRYPTO_HASH_BYTES);
        a->flights[free_slot].busy = true;
        *slot = free_slot;
    }
    pthread_mutex_unlock(&a->lock);
    return true;
}

static void auth_flight_end(auth *a, int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&a->lock);
    crypto_wipe(&a->flights[slot], sizeof(a->flights[slot]));
    pthread_cond_broadcast(&a->flight_done);
    pthread_mutex_unlock(&a->lock);
}

/* ---- Argon2id with bounded concurrency ---- */

static cd_err auth_derive(auth *a, const char *pw, size_t pwlen,
                          const uint8_t salt[CRYPTO_SALT_BYTES],
                          const struct crypto_pwparams *params, uint8_t verifier[CRYPTO_HASH_BYTES],
                          uint8_t pwkey[CRYPTO_KEY_BYTES], const struct auth_hook *hook)
{
    struct timespec deadline;
    cd_err rc;

    auth_hook_run(hook);
    auth_wait_deadline(a, &deadline);
    while (sem_timedwait(&a->hash_slots, &deadline) != 0) {
        if (errno == EINTR)
            continue;
        log_warnx("no password hashing slot free within %u ms", a->cfg.hash_wait_ms);
        return CD_ERR_LIMITED;
    }
    rc = crypto_password_derive(pw, pwlen, salt, params, verifier, pwkey);
    sem_post(&a->hash_slots);
    atomic_fetch_add(&a->hashes, 1);
    atomic_fetch_add(&a->hash_work, (uint_fast64_t)params->opslimit * (params->memlimit / 1024u));
    return rc;
}

cd_err auth_login_cached(auth *a, const struct auth_credentials *c, struct auth_principal *out)
{
    uint8_t key[CRYPTO_HASH_BYTES];
    cd_err rc;

    if (!validate_username(c->user, c->user_len) || !validate_password(c->pass, c->pass_len))
        return CD_ERR_NOT_FOUND;
    rc = auth_cache_key(a, c, key);
    if (rc == CD_OK && !auth_cache_get(a, key, NULL, out))
        rc = CD_ERR_NOT_FOUND;
    crypto_wipe(key, sizeof(key));
    return rc;
}

uint64_t auth_hash_count(const auth *a)
{
    return atomic_load(&((auth *)a)->hashes);
}

uint64_t auth_hash_work(const auth *a)
{
    return atomic_load(&((auth *)a)->hash_work);
}

static void auth_row_params(const struct db_user *row, struct crypto_pwparams *p)
{
    p->opslimit = row->pw_opslimit;
    p->memlimit = (size_t)row->pw_memlimit_kib * 1024u;
}

/* The same Argon2id work as a real verification, for an account that does not
 * exist: the salt is derived from the username so repeated attempts look alike. */
static cd_err auth_dummy_work(auth *a, const char *user, size_t ulen, const char *pw, size_t pwlen,
                              const struct auth_hook *hook)
{
    uint8_t salt_src[CRYPTO_HASH_BYTES], verifier[CRYPTO_HASH_BYTES], pwkey[CRYPTO_KEY_BYTES];
    struct crypto_part parts[2] = {{"dummy-salt", 10}, {user, ulen}};
    cd_err rc;

    rc = crypto_keyed_hash(a->kr, crypto_keyring_newest(a->kr), CRYPTO_PURPOSE_USERNAME, parts, 2,
                           salt_src);
    if (rc == CD_OK)
        rc = auth_derive(a, pw, pwlen, salt_src, &a->cfg.pwparams, verifier, pwkey, hook);
    crypto_wipe(pwkey, sizeof(pwkey));
    return rc;
}

static void auth_log_failure(const auth *a, const char *user, size_t len, const char *what)
{
    char tag[17];

    auth_log_tag(a, user, len, tag);
    log_warnx("authentication failed: %s (account tag %s)", what, tag);
}

/* A failed verification: logged. It was counted toward the account's block
 * before the hashing, by auth_check_blocked. */
static void auth_failed(const auth *a, const char *user, size_t len, const char *what)
{
    auth_log_failure(a, user, len, what);
}

/* Counts one verification attempt of the account before any hashing and
 * tells whether it may run (CD_ERR_LIMITED: refuse, *retry_after_s). Counting
 * first is what keeps concurrent guesses within login_fail_limit. */
static cd_err auth_check_blocked(auth *a, const char *user, size_t len, unsigned *retry_after_s)
{
    if (a->rl == NULL)
        return CD_OK;
    return ratelimit_login_begin(a->rl, user, len, retry_after_s);
}

static cd_err auth_set_password(auth *a, struct db_user *row, const char *pw, size_t pwlen,
                                const uint8_t sk[CRYPTO_KEY_BYTES]);

/* A row its owner just logged into that is not yet under the newest master
 * key version, the keyed verifier and the current Argon2id parameters. */
static bool auth_row_outdated(const auth *a, const struct db_user *row)
{
    return row->mk_version != crypto_keyring_newest(a->kr) ||
           row->verifier_kind != DB_VERIFIER_KEYED ||
           row->pw_opslimit != a->cfg.pwparams.opslimit ||
           row->pw_memlimit_kib != a->cfg.pwparams.memlimit / 1024u;
}

/* Re-protects the row of a successful login under the newest master key
 * version: name hash, verifier and password wrap (the recovery wrap keeps its
 * version, rc_version, until the code is next used: only the code can re-wrap
 * it). With other Argon2id parameters than the current ones the password is
 * hashed once more with new salt and the current parameters, so that
 * afterwards this account costs what an unknown name costs (finding 7).
 * Best effort: on failure the login stands and the next one tries again.
 * *gen becomes the row's new auth_gen. */
static void auth_upgrade(auth *a, const struct auth_credentials *c, const struct db_user *row,
                         const uint8_t verifier[CRYPTO_HASH_BYTES],
                         const uint8_t pwkey[CRYPTO_KEY_BYTES], const uint8_t sk[CRYPTO_KEY_BYTES],
                         uint32_t *gen)
{
    struct db_user u = *row;
    cd_err rc;

    u.mk_version = crypto_keyring_newest(a->kr);
    rc = auth_uname_hash(a, u.mk_version, c->user, c->user_len, u.uname_hash);
    if (rc == CD_OK && (u.pw_opslimit != a->cfg.pwparams.opslimit ||
                        u.pw_memlimit_kib != a->cfg.pwparams.memlimit / 1024u)) {
        rc = auth_set_password(a, &u, c->pass, c->pass_len, sk);
    } else if (rc == CD_OK) {
        u.verifier_kind = DB_VERIFIER_KEYED;
        rc = crypto_verifier_bind(a->kr, u.mk_version, u.uid, verifier, u.verifier);
        if (rc == CD_OK)
            rc = crypto_sk_wrap_password(a->kr, u.mk_version, pwkey, u.uid, sk, u.sk_pw);
    }
    if (rc == CD_OK)
        rc = db_user_update_credentials(a->db, &u, row->auth_gen);
    if (rc == CD_OK)
        *gen = row->auth_gen + 1;
    else
        log_warnx("account of user id %llu not moved to master key version %u: %s",
                  (unsigned long long)row->id, (unsigned)u.mk_version, cd_strerror(rc));
    crypto_wipe(&u, sizeof(u));
}

cd_err auth_login(auth *a, const struct auth_credentials *c, struct auth_principal *out,
                  unsigned *retry_after_s, const struct auth_hook *hook)
{
    uint8_t key[CRYPTO_HASH_BYTES], verifier[CRYPTO_HASH_BYTES], pwkey[CRYPTO_KEY_BYTES];
    uint8_t stored[CRYPTO_HASH_BYTES];
    struct crypto_pwparams params;
    struct auth_principal p;
    struct db_user row;
    int slot = -1;
    cd_err rc;

    *retry_after_s = 0;
    memset(&p, 0, sizeof(p));
    if (!validate_username(c->user, c->user_len) || !validate_password(c->pass, c->pass_len))
        return CD_ERR_AUTH; /* cannot exist; nothing to learn from the timing */
    rc = auth_cache_key(a, c, key);
    if (rc != CD_OK)
        return rc;
    rc = auth_find_user(a, c->user, c->user_len, &row);
    if (rc == CD_OK && auth_cache_get(a, key, &row, out))
        goto wipe;
    if (rc != CD_OK && rc != CD_ERR_NOT_FOUND)
        goto wipe;
    /* Another request verifying the same credential: wait for its result. */
    if (rc == CD_OK && !auth_flight_begin(a, key, &slot, hook) && auth_cache_get(a, key, &row, out))
        goto wipe;

    if (auth_check_blocked(a, c->user, c->user_len, retry_after_s) == CD_ERR_LIMITED) {
        auth_log_failure(a, c->user, c->user_len, "account temporarily blocked");
        rc = CD_ERR_LIMITED;
        goto out;
    }
    if (rc == CD_ERR_NOT_FOUND) {
        rc = auth_dummy_work(a, c->user, c->user_len, c->pass, c->pass_len, hook);
        if (rc != CD_OK)
            goto out;
        auth_failed(a, c->user, c->user_len, "bad credentials");
        rc = CD_ERR_AUTH;
        goto out;
    }
    auth_row_params(&row, &params);
    rc = auth_derive(a, c->pass, c->pass_len, row.pw_salt, &params, verifier, pwkey, hook);
    if (rc == CD_OK)
        rc = auth_stored_verifier(a, &row, verifier, stored);
    if (rc != CD_OK)
        goto out;
    if (!crypto_equal(stored, row.verifier, sizeof(stored))) {
        auth_failed(a, c->user, c->user_len, "bad credentials");
        rc = CD_ERR_AUTH;
        goto out;
    }
    rc = crypto_sk_unwrap_password(a->kr, row.mk_version, pwkey, row.uid, row.sk_pw, p.sk);
    if (rc != CD_OK) {
        /* The verifier matched, so this is a damaged row or a missing key version. */
        log_errorx("account key of user id %llu does not unwrap: %s", (unsigned long long)row.id,
                   cd_strerror(rc));
        rc = CD_ERR_INTERNAL;
        goto out;
    }
    p.id = row.id;
    memcpy(p.uid, row.uid, sizeof(p.uid));
    p.auth_gen = row.auth_gen;
    if (auth_row_outdated(a, &row))
        auth_upgrade(a, c, &row, verifier, pwkey, p.sk, &p.auth_gen);
    auth_cache_put(a, key, &p);
    if (a->rl != NULL)
        ratelimit_login_succeeded(a->rl, c->user, c->user_len);
    *out = p;
out:
    auth_flight_end(a, slot);
wipe:
    crypto_wipe(key, sizeof(key));
    crypto_wipe(pwkey, sizeof(pwkey));
    crypto_wipe(verifier, sizeof(verifier));
    crypto_wipe(&row, sizeof(row));
    auth_principal_wipe(&p);
    return rc;
}

/* Fills the password columns of row for password pw (new salt, current
 * parameters) and wraps sk under it with master key row->mk_version. */
static cd_err auth_set_password(auth *a, struct db_user *row, const char *pw, size_t pwlen,
                                const uint8_t sk[CRYPTO_KEY_BYTES])
{
    uint8_t pwkey[CRYPTO_KEY_BYTES];
    cd_err rc;

    uint8_t v[CRYPTO_HASH_BYTES];

    crypto_random(row->pw_salt, sizeof(row->pw_salt));
    row->pw_opslimit = (uint32_t)a->cfg.pwparams.opslimit;
    row->pw_memlimit_kib = (uint32_t)(a->cfg.pwparams.memlimit / 1024u);
    rc = auth_derive(a, pw, pwlen, row->pw_salt, &a->cfg.pwparams, v, pwkey, NULL);
    if (rc == CD_OK)
        rc = crypto_verifier_bind(a->kr, row->mk_version, row->uid, v, row->verifier);
    row->verifier_kind = DB_VERIFIER_KEYED;
    if (rc == CD_OK)
        rc = crypto_sk_wrap_password(a->kr, row->mk_version, pwkey, row->uid, sk, row->sk_pw);
    crypto_wipe(pwkey, sizeof(pwkey));
    crypto_wipe(v, sizeof(v));
    return rc;
}

/* New recovery code wrapping sk, plus the escrow copy when configured. */
static cd_err auth_set_recovery(auth *a, struct db_user *row, const uint8_t sk[CRYPTO_KEY_BYTES],
                                char code_text[CRYPTO_RECOVERY_CODE_STRLEN])
{
    uint8_t code[CRYPTO_RECOVERY_CODE_BYTES];
    cd_err rc;

    crypto_recovery_code_new(code, code_text);
    row->rc_version = crypto_keyring_newest(a->kr);
    rc = crypto_sk_wrap_recovery(a->kr, row->rc_version, code, row->uid, sk, row->sk_rc);
    crypto_wipe(code, sizeof(code));
    if (rc != CD_OK)
        return rc;
    row->sk_escrow_len = 0;
    if (a->cfg.have_escrow) {
        rc = crypto_sk_escrow(a->cfg.escrow_pk, sk, row->sk_escrow);
        if (rc != CD_OK)
            return rc;
        row->sk_escrow_len = CRYPTO_ESCROWED_KEY_BYTES;
    }
    return CD_OK;
}

cd_err auth_create(auth *a, const struct auth_credentials *c,
                   char recovery_code[CRYPTO_RECOVERY_CODE_STRLEN])
{
    uint8_t sk[CRYPTO_KEY_BYTES];
    uint8_t hashes[CRYPTO_KEYRING_MAX_KEYS][CRYPTO_HASH_BYTES];
    char code[CRYPTO_RECOVERY_CODE_STRLEN];
    struct db_user row;
    size_t n = 0;
    cd_err rc;

    if (!validate_username(c->user, c->user_len) || !validate_password(c->pass, c->pass_len))
        return CD_ERR_INVALID;
    memset(&row, 0, sizeof(row));
    memset(sk, 0, sizeof(sk));
    crypto_random(row.uid, sizeof(row.uid));
    row.mk_version = crypto_keyring_newest(a->kr);
    /* The name is taken if its hash under ANY version names an account. */
    rc = auth_name_hashes(a, c->user, c->user_len, hashes, &n);
    if (rc != CD_OK)
        goto out;
    memcpy(row.uname_hash, hashes[0], sizeof(row.uname_hash));
    crypto_user_keypair(row.public_key, sk);
    rc = auth_set_password(a, &row, c->pass, c->pass_len, sk);
    if (rc != CD_OK)
        goto out;
    rc = auth_set_recovery(a, &row, sk, code);
    if (rc != CD_OK)
        goto out;
    rc = db_user_insert_unique(a->db, &row, (const uint8_t(*)[CRYPTO_HASH_BYTES])hashes, n);
    if (rc == CD_OK)
        memcpy(recovery_code, code, sizeof(code));
out:
    crypto_wipe(sk, sizeof(sk));
    crypto_wipe(code, sizeof(code));
    crypto_wipe(&row, sizeof(row));
    return rc;
}

/* The account row of an authenticated principal, read again: CD_ERR_CONFLICT
 * when the account is gone or changed since p was verified. */
static cd_err auth_principal_row(auth *a, const struct auth_credentials *c,
                                 const struct auth_principal *p, struct db_user *row)
{
    cd_err rc = auth_find_user(a, c->user, c->user_len, row);

    if (rc == CD_ERR_NOT_FOUND)
        return CD_ERR_CONFLICT;
    if (rc == CD_OK && (row->id != p->id || row->auth_gen != p->auth_gen))
        return CD_ERR_CONFLICT;
    return rc;
}

cd_err auth_change_password(auth *a, const struct auth_credentials *c,
                            const struct auth_principal *p, const char *new_pw, size_t new_len)
{
    struct db_user row;
    cd_err rc;

    if (!validate_password(new_pw, new_len))
        return CD_ERR_INVALID;
    rc = auth_principal_row(a, c, p, &row);
    if (rc != CD_OK)
        goto out;
    /* Name hash, verifier and password wrap move to the newest version. */
    row.mk_version = crypto_keyring_newest(a->kr);
    rc = auth_uname_hash(a, row.mk_version, c->user, c->user_len, row.uname_hash);
    if (rc == CD_OK)
        rc = auth_set_password(a, &row, new_pw, new_len, p->sk);
    if (rc == CD_OK)
        rc = db_user_update_credentials(a->db, &row, p->auth_gen);
    if (rc == CD_OK || rc == CD_ERR_CONFLICT)
        auth_cache_forget_user(a, p->id);
out:
    crypto_wipe(&row, sizeof(row));
    return rc;
}

/* Document KEKs of a key rotation, and the owner the AD binds. */
struct auth_rewrap {
    uint8_t old_kek[CRYPTO_KEY_BYTES];
    uint8_t new_kek[CRYPTO_KEY_BYTES];
    uint8_t uid[CRYPTO_UID_BYTES];
    uint64_t user_id;
};

static cd_err auth_rewrap_doc(void *cls, int64_t record_id, uint64_t version,
                              const uint8_t in[CRYPTO_WRAPPED_KEY_BYTES],
                              uint8_t out[CRYPTO_WRAPPED_KEY_BYTES])
{
    const struct auth_rewrap *rw = cls;
    struct crypto_doc_ad ad;
    cd_err rc;

    memcpy(ad.owner_uid, rw->uid, sizeof(ad.owner_uid));
    ad.record_id = record_id;
    ad.version = version;
    rc = crypto_doc_rewrap(rw->old_kek, rw->new_kek, &ad, in, out);
    if (rc == CD_ERR_CRYPTO) {
        /* Damaged already (it did not open before either): left as it is
         * rather than blocking the rotation of every other document. */
        log_errorx("a document of user id %llu does not open; its data key is left as is",
                   (unsigned long long)rw->user_id);
        memcpy(out, in, CRYPTO_WRAPPED_KEY_BYTES);
        rc = CD_OK;
    }
    return rc;
}

/* A new user key pair for row (finding 8): the new secret key wrapped under
 * password pw and a new recovery code (code_out), everything under the newest
 * master key version, and every document data key re-wrapped from old_sk's
 * document KEK to the new one, in one transaction that also bumps auth_gen
 * (from old_gen): every replica's cache then drops the old key. */
static cd_err auth_set_recovery(auth *a, struct db_user *row, const uint8_t sk[CRYPTO_KEY_BYTES],
                                char code_text[CRYPTO_RECOVERY_CODE_STRLEN]);

static cd_err auth_rekey(auth *a, struct db_user *row, const char *user, size_t user_len,
                         const char *pw, size_t pwlen, const uint8_t old_sk[CRYPTO_KEY_BYTES],
                         uint32_t old_gen, char code_out[CRYPTO_RECOVERY_CODE_STRLEN])
{
    uint8_t new_sk[CRYPTO_KEY_BYTES];
    struct auth_rewrap rw;
    cd_err rc;

    row->mk_version = crypto_keyring_newest(a->kr);
    rc = auth_uname_hash(a, row->mk_version, user, user_len, row->uname_hash);
    if (rc != CD_OK)
        return rc;
    crypto_user_keypair(row->public_key, new_sk);
    crypto_user_doc_kek(old_sk, rw.old_kek);
    crypto_user_doc_kek(new_sk, rw.new_kek);
    memcpy(rw.uid, row->uid, sizeof(rw.uid));
    rw.user_id = row->id;
    rc = auth_set_password(a, row, pw, pwlen, new_sk);
    if (rc == CD_OK)
        rc = auth_set_recovery(a, row, new_sk, code_out);
    if (rc == CD_OK)
        rc = db_user_rotate_key(a->db, row, old_gen, auth_rewrap_doc, &rw);
    if (rc == CD_OK || rc == CD_ERR_CONFLICT)
        auth_cache_forget_user(a, row->id);
    crypto_wipe(new_sk, sizeof(new_sk));
    crypto_wipe(&rw, sizeof(rw));
    return rc;
}

cd_err auth_recover(auth *a, const char *user, size_t user_len, const char *code_text,
                    size_t code_len, const char *new_pw, size_t new_len,
                    char new_code[CRYPTO_RECOVERY_CODE_STRLEN], unsigned *retry_after_s)
{
    uint8_t code[CRYPTO_RECOVERY_CODE_BYTES], sk[CRYPTO_KEY_BYTES];
    char fresh[CRYPTO_RECOVERY_CODE_STRLEN];
    struct db_user row;
    uint32_t old_gen;
    cd_err rc;

    *retry_after_s = 0;
    memset(&row, 0, sizeof(row));
    if (!validate_username(user, user_len) || !validate_password(new_pw, new_len))
        return CD_ERR_INVALID;
    if (auth_check_blocked(a, user, user_len, retry_after_s) == CD_ERR_LIMITED) {
        auth_log_failure(a, user, user_len, "recovery while account blocked");
        return CD_ERR_LIMITED;
    }
    rc = auth_find_user(a, user, user_len, &row);
    if (rc != CD_OK && rc != CD_ERR_NOT_FOUND)
        return rc;
    if (rc == CD_ERR_NOT_FOUND || crypto_recovery_code_parse(code_text, code_len, code) != CD_OK ||
        crypto_sk_unwrap_recovery(a->kr, row.rc_version, code, row.uid, row.sk_rc, sk) != CD_OK) {
        /* Pay the Argon2id a success would pay, so the answer time tells nothing. */
        rc = auth_dummy_work(a, user, user_len, new_pw, new_len, NULL);
        if (rc == CD_OK) {
            auth_failed(a, user, user_len, "bad recovery code");
            rc = CD_ERR_AUTH;
        }
        goto out;
    }
    old_gen = row.auth_gen;
    rc = auth_rekey(a, &row, user, user_len, new_pw, new_len, sk, old_gen, fresh);
    if (rc == CD_OK) {
        if (a->rl != NULL)
            ratelimit_login_succeeded(a->rl, user, user_len);
        memcpy(new_code, fresh, sizeof(fresh));
    }
out:
    crypto_wipe(code, sizeof(code));
    crypto_wipe(sk, sizeof(sk));
    crypto_wipe(fresh, sizeof(fresh));
    crypto_wipe(&row, sizeof(row));
    return rc;
}

cd_err auth_rotate_key(auth *a, const struct auth_credentials *c, const struct auth_principal *p,
                       char new_code[CRYPTO_RECOVERY_CODE_STRLEN])
{
    char fresh[CRYPTO_RECOVERY_CODE_STRLEN];
    struct db_user row;
    cd_err rc;

    rc = auth_principal_row(a, c, p, &row);
    if (rc != CD_OK)
        goto out;
    rc = auth_rekey(a, &row, c->user, c->user_len, c->pass, c->pass_len, p->sk, p->auth_gen, fresh);
    if (rc == CD_OK)
        memcpy(new_code, fresh, sizeof(fresh));
out:
    crypto_wipe(fresh, sizeof(fresh));
    crypto_wipe(&row, sizeof(row));
    return rc;
}

static cd_err auth_convert_one(void *cls, const struct db_verifier_row *r,
                               uint8_t out[CRYPTO_HASH_BYTES])
{
    const auth *a = cls;
    return crypto_verifier_bind(a->kr, r->mk_version, r->uid, r->verifier, out);
}

cd_err auth_convert_verifiers(auth *a, unsigned *converted)
{
    return db_user_convert_verifiers(a->db, auth_convert_one, a, converted);
}

cd_err auth_delete(auth *a, const struct auth_principal *p)
{
    cd_err rc = db_user_delete(a->db, p->id);
    auth_cache_forget_user(a, p->id);
    return rc;
}
