/* local.c: fixed-size in-process counter table, the rate limiter's fallback. */
#include "ratelimit/local.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct local_entry {
    uint8_t key[CRYPTO_HASH_BYTES];
    uint64_t tag;
    uint64_t value;
    int64_t expires;
    int64_t created;
    uint8_t kind; /* 0: free slot */
};

struct ratelimit_local {
    pthread_mutex_t mu;
    struct local_entry *slots;
    size_t mask;
};

cd_err ratelimit_local_new(size_t capacity, ratelimit_local **out)
{
    ratelimit_local *t = NULL;
    size_t cap = (size_t)2 * RATELIMIT_LOCAL_NEIGHBOURHOOD;
    cd_err err = CD_ERR_INVALID;

    if (capacity > ((size_t)1 << 24))
        goto out;
    while (cap < capacity)
        cap <<= 1;
    err = CD_ERR_NOMEM;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto out;
    t->slots = calloc(cap, sizeof(*t->slots));
    if (t->slots == NULL)
        goto out;
    t->mask = cap - 1;
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t->slots);
        t->slots = NULL;
        goto out;
    }
    *out = t;
    t = NULL;
    err = CD_OK;
out:
    if (t != NULL) {
        free(t->slots);
        free(t);
    }
    return err;
}

void ratelimit_local_free(ratelimit_local *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t->slots);
    free(t);
}

static size_t local_home(const ratelimit_local *t, enum ratelimit_local_kind kind,
                         const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag)
{
    uint64_t h;

    /* The key is a keyed hash: its bytes are uniform already. */
    memcpy(&h, key + 8, sizeof(h));
    h ^= (tag + (uint64_t)kind) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 31;
    return (size_t)h & t->mask;
}

static bool entry_is(const struct local_entry *e, enum ratelimit_local_kind kind,
                     const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag)
{
    return e->kind == (uint8_t)kind && e->tag == tag && memcmp(e->key, key, CRYPTO_HASH_BYTES) == 0;
}

/* The live entry for the key, or NULL. Expired entries are freed on the way. */
static struct local_entry *local_find(ratelimit_local *t, enum ratelimit_local_kind kind,
                                      const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag,
                                      int64_t now)
{
    size_t home = local_home(t, kind, key, tag);

    for (size_t i = 0; i < RATELIMIT_LOCAL_NEIGHBOURHOOD; i++) {
        struct local_entry *e = &t->slots[(home + i) & t->mask];
        if (e->kind != 0 && e->expires <= now)
            e->kind = 0;
        if (e->kind != 0 && entry_is(e, kind, key, tag))
            return e;
    }
    return NULL;
}

/* A slot for a new entry: a free one, else the oldest of the neighbourhood. */
static struct local_entry *local_slot(ratelimit_local *t, enum ratelimit_local_kind kind,
                                      const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag)
{
    size_t home = local_home(t, kind, key, tag);
    struct local_entry *oldest = NULL;

    for (size_t i = 0; i < RATELIMIT_LOCAL_NEIGHBOURHOOD; i++) {
        struct local_entry *e = &t->slots[(home + i) & t->mask];
        if (e->kind == 0)
            return e;
        if (oldest == NULL || e->created < oldest->created)
            oldest = e;
    }
    return oldest;
}

static void entry_fill(struct local_entry *e, enum ratelimit_local_kind kind,
                       const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag, uint64_t value,
                       int64_t now, int64_t expires)
{
    memcpy(e->key, key, CRYPTO_HASH_BYTES);
    e->kind = (uint8_t)kind;
    e->tag = tag;
    e->value = value;
    e->created = now;
    e->expires = expires;
}

uint64_t ratelimit_local_incr_by(ratelimit_local *t, enum ratelimit_local_kind kind,
                                 const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag, uint64_t n,
                                 int64_t now, int64_t expires, bool refresh)
{
    struct local_entry *e;
    uint64_t v;

    if (n == 0)
        n = 1;
    pthread_mutex_lock(&t->mu);
    e = local_find(t, kind, key, tag, now);
    if (e != NULL) {
        e->value = e->value > UINT64_MAX - n ? UINT64_MAX : e->value + n;
        if (refresh)
            e->expires = expires;
    } else {
        e = local_slot(t, kind, key, tag);
        entry_fill(e, kind, key, tag, n, now, expires);
    }
    v = e->value;
    pthread_mutex_unlock(&t->mu);
    return v;
}

uint64_t ratelimit_local_incr(ratelimit_local *t, enum ratelimit_local_kind kind,
                              const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag, int64_t now,
                              int64_t expires, bool refresh)
{
    return ratelimit_local_incr_by(t, kind, key, tag, 1, now, expires, refresh);
}

uint64_t ratelimit_local_take(ratelimit_local *t, enum ratelimit_local_kind kind,
                              const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag, int64_t now)
{
    struct local_entry *e;
    uint64_t v = 0;

    pthread_mutex_lock(&t->mu);
    e = local_find(t, kind, key, tag, now);
    if (e != NULL) {
        v = e->value;
        e->kind = 0;
    }
    pthread_mutex_unlock(&t->mu);
    return v;
}

void ratelimit_local_set(ratelimit_local *t, enum ratelimit_local_kind kind,
                         const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag, uint64_t value,
                         int64_t now, int64_t expires)
{
    struct local_entry *e;

    pthread_mutex_lock(&t->mu);
    e = local_find(t, kind, key, tag, now);
    if (e == NULL)
        e = local_slot(t, kind, key, tag);
    entry_fill(e, kind, key, tag, value, now, expires);
    pthread_mutex_unlock(&t->mu);
}

bool ratelimit_local_add(ratelimit_local *t, enum ratelimit_local_kind kind,
                         const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag, uint64_t value,
                         int64_t now, int64_t expires)
{
    struct local_entry *e;
    bool added = false;

    pthread_mutex_lock(&t->mu);
    e = local_find(t, kind, key, tag, now);
    if (e == NULL) {
        e = local_slot(t, kind, key, tag);
        entry_fill(e, kind, key, tag, value, now, expires);
        added = true;
    }
    pthread_mutex_unlock(&t->mu);
    return added;
}

bool ratelimit_local_get(ratelimit_local *t, enum ratelimit_local_kind kind,
                         const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag, int64_t now,
                         uint64_t *value, int64_t *expires)
{
    struct local_entry *e;

    pthread_mutex_lock(&t->mu);
    e = local_find(t, kind, key, tag, now);
    if (e != NULL) {
        if (value != NULL)
            *value = e->value;
        if (expires != NULL)
            *expires = e->expires;
    }
    pthread_mutex_unlock(&t->mu);
    return e != NULL;
}

void ratelimit_local_del(ratelimit_local *t, enum ratelimit_local_kind kind,
                         const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag)
{
    size_t home = local_home(t, kind, key, tag);

    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < RATELIMIT_LOCAL_NEIGHBOURHOOD; i++) {
        struct local_entry *e = &t->slots[(home + i) & t->mask];
        if (e->kind != 0 && entry_is(e, kind, key, tag))
            e->kind = 0;
    }
    pthread_mutex_unlock(&t->mu);
}

size_t ratelimit_local_count(ratelimit_local *t, int64_t now)
{
    size_t n = 0;

    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i <= t->mask; i++)
        if (t->slots[i].kind != 0 && t->slots[i].expires > now)
            n++;
    pthread_mutex_unlock(&t->mu);
    return n;
}
