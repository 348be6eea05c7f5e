/* local.h: the in-process counters used while memcached is unreachable, and
 * other helpers internal to the rate limiter (exposed for unit tests). */
#ifndef CONFIDOC_RATELIMIT_LOCAL_H
#define CONFIDOC_RATELIMIT_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/err.h"
#include "crypto/crypto.h"

/* What a counter counts; entries of different kinds never match. */
enum ratelimit_local_kind {
    RATELIMIT_LOCAL_HITS = 1, /* requests of a client in one window (tag: window number) */
    RATELIMIT_LOCAL_FAILS,    /* consecutive failed logins of an account */
    RATELIMIT_LOCAL_BLOCK,    /* an account's current login block */
    RATELIMIT_LOCAL_OWED,     /* login attempts counted here only (memcached was unreachable) */
};

/* Slots searched for a key; when all are taken by live entries, the oldest of
 * them is evicted. */
#define RATELIMIT_LOCAL_NEIGHBOURHOOD 16

/* A fixed-size table of counters keyed by (kind, 32-byte keyed hash, tag),
 * each with an absolute expiry in seconds of whatever clock the caller passes
 * as `now` (the table never reads a clock). Memory is fixed at creation.
 * Thread-safe (one mutex). */
typedef struct ratelimit_local ratelimit_local;

/* capacity: slots, rounded up to a power of two, at least 2 * NEIGHBOURHOOD. */
cd_err ratelimit_local_new(size_t capacity, ratelimit_local **out);
void ratelimit_local_free(ratelimit_local *t); /* NULL is a no-op */

/* Adds 1 to the counter and returns its new value; a missing or expired counter
 * starts at 1 and expires at `expires`. With refresh, an existing counter's
 * expiry is moved to `expires` too. */
uint64_t ratelimit_local_incr(ratelimit_local *t, enum ratelimit_local_kind kind,
                              const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag, int64_t now,
                              int64_t expires, bool refresh);
/* The same, adding n (at least 1) instead of 1. */
uint64_t ratelimit_local_incr_by(ratelimit_local *t, enum ratelimit_local_kind kind,
                                 const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag, uint64_t n,
                                 int64_t now, int64_t expires, bool refresh);
/* Removes the live entry and returns its value (0 when there is none). */
uint64_t ratelimit_local_take(ratelimit_local *t, enum ratelimit_local_kind kind,
                              const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag, int64_t now);
/* Stores value with expiry `expires`, replacing any previous entry. */
void ratelimit_local_set(ratelimit_local *t, enum ratelimit_local_kind kind,
                         const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag, uint64_t value,
                         int64_t now, int64_t expires);
/* Stores value with expiry `expires` only when no live entry exists (atomic
 * under the table's lock); true when it did. */
bool ratelimit_local_add(ratelimit_local *t, enum ratelimit_local_kind kind,
                         const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag, uint64_t value,
                         int64_t now, int64_t expires);
/* True when a live entry exists; then writes its value and expiry (either may be NULL). */
bool ratelimit_local_get(ratelimit_local *t, enum ratelimit_local_kind kind,
                         const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag, int64_t now,
                         uint64_t *value, int64_t *expires);
void ratelimit_local_del(ratelimit_local *t, enum ratelimit_local_kind kind,
                         const uint8_t key[CRYPTO_HASH_BYTES], uint64_t tag);
/* Live entries at `now` (tests). */
size_t ratelimit_local_count(ratelimit_local *t, int64_t now);

/* The bytes that identify a client: IPv4 its 4 bytes, IPv6 its first 8 (the
 * /64), an IPv4-mapped IPv6 address its IPv4 bytes. Writes out[0..*outlen).
 * CD_ERR_INVALID for other families or a short addrlen. */
cd_err ratelimit_addr_bytes(const struct sockaddr *addr, socklen_t addrlen, uint8_t out[16],
                            size_t *outlen);

#endif
