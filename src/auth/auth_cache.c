/* auth_cache.c: the credential cache, its sweeper thread, single flight. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "auth/auth_int.h"
#include "auth/auth_test.h"
#include "common/deadline.h"
#include "validate/validate.h"

int64_t auth_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cd_err auth_cache_key(const auth *a, const struct auth_credentials *c,
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
bool auth_cache_get(auth *a, const uint8_t key[CRYPTO_HASH_BYTES], const struct db_user *row,
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
        out->via = AUTH_VIA_PASSWORD;
        hit = true;
        break;
    }
    pthread_mutex_unlock(&a->lock);
    return hit;
}

void auth_cache_put(auth *a, const uint8_t key[CRYPTO_HASH_BYTES], const struct auth_principal *p)
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
void *auth_sweeper(void *arg)
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
void auth_cache_forget_user(auth *a, uint64_t user_id)
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
bool auth_hook_run(const struct auth_hook *hook)
{
    return hook == NULL || hook->before_hash == NULL || hook->before_hash(hook->cls);
}

const char *auth_hook_request_id(const struct auth_hook *hook)
{
    return hook != NULL && hook->request_id != NULL ? hook->request_id : "-";
}

/* Now + hash_wait_ms on the realtime clock (for timed waits). */
void auth_wait_deadline(const auth *a, struct timespec *deadline)
{
    cd_deadline(CLOCK_REALTIME, a->cfg.hash_wait_ms, deadline);
}

/* True: this thread verifies (and must call auth_flight_end with *slot).
 * False: another thread verified the same credential meanwhile (or the wait
 * timed out); the caller looks in the cache again. */
bool auth_flight_begin(auth *a, const uint8_t key[CRYPTO_HASH_BYTES], int *slot,
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
        /* Same credential in flight: wait until its slot is released (unless
         * the caller gives up: then auth_derive refuses as well). */
        if (hook != NULL) {
            bool go_on;
            pthread_mutex_unlock(&a->lock);
            go_on = auth_hook_run(hook);
            pthread_mutex_lock(&a->lock);
            if (!go_on) {
                pthread_mutex_unlock(&a->lock);
                return false;
            }
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

void auth_flight_end(auth *a, int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&a->lock);
    crypto_wipe(&a->flights[slot], sizeof(a->flights[slot]));
    pthread_cond_broadcast(&a->flight_done);
    pthread_mutex_unlock(&a->lock);
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
