/* ring.h: consistent hashing of keys onto memcached servers (internal to ratelimit). */
#ifndef CONFIDOC_RATELIMIT_RING_H
#define CONFIDOC_RATELIMIT_RING_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Points each server has on the ring. */
#define RATELIMIT_RING_VNODES 160

typedef struct ratelimit_ring ratelimit_ring;

/* Builds a ring of n servers (1..RATELIMIT_MAX_SERVERS) named "host:port"; each
 * gets RATELIMIT_RING_VNODES points at the hashes of "host:port#i". The names
 * are not kept. CD_ERR_INVALID for n == 0 or a NULL name. */
cd_err ratelimit_ring_new(const char *const *names, size_t n, ratelimit_ring **out);
void ratelimit_ring_free(ratelimit_ring *ring); /* NULL is a no-op */

/* The index (into the names given to ratelimit_ring_new) of the server owning
 * the key whose first 8 bytes (at least 8 must be given) place it on the ring.
 * Keys are keyed hashes, hence already uniform. */
size_t ratelimit_ring_lookup(const ratelimit_ring *ring, const uint8_t *key, size_t len);

/* 64-bit FNV-1a of the bytes followed by a splitmix64 finaliser (exposed for tests). */
uint64_t ratelimit_ring_hash(const void *p, size_t n);

#endif
