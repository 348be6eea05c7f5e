/* ring.c: consistent hashing ring with virtual nodes for the memcached servers. */
#include "ratelimit/ring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit/ratelimit.h"

struct ring_point {
    uint64_t pos;
    size_t server;
};

struct ratelimit_ring {
    struct ring_point *points;
    size_t n_points;
};

uint64_t ratelimit_ring_hash(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    /* FNV-1a alone clusters similar short strings ("a#1", "a#2"); mix it. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

static int point_cmp(const void *a, const void *b)
{
    const struct ring_point *x = a, *y = b;

    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    /* Ties (astronomically rare) are broken by server index, deterministically. */
    if (x->server != y->server)
        return x->server < y->server ? -1 : 1;
    return 0;
}

cd_err ratelimit_ring_new(const char *const *names, size_t n, ratelimit_ring **out)
{
    ratelimit_ring *ring = NULL;
    cd_err err = CD_ERR_INVALID;
    char label[320];

    if (names == NULL || n == 0 || n > RATELIMIT_MAX_SERVERS)
        goto out;
    for (size_t s = 0; s < n; s++)
        if (names[s] == NULL || strlen(names[s]) > 256)
            goto out;
    err = CD_ERR_NOMEM;
    ring = calloc(1, sizeof(*ring));
    if (ring == NULL)
        goto out;
    ring->points = calloc(n * RATELIMIT_RING_VNODES, sizeof(*ring->points));
    if (ring->points == NULL)
        goto out;
    for (size_t s = 0; s < n; s++) {
        for (unsigned i = 0; i < RATELIMIT_RING_VNODES; i++) {
            int len = snprintf(label, sizeof(label), "%s#%u", names[s], i);
            struct ring_point *pt = &ring->points[ring->n_points++];

            if (len < 0 || (size_t)len >= sizeof(label)) {
                err = CD_ERR_INVALID;
                goto out;
            }
            pt->pos = ratelimit_ring_hash(label, (size_t)len);
            pt->server = s;
        }
    }
    qsort(ring->points, ring->n_points, sizeof(*ring->points), point_cmp);
    *out = ring;
    ring = NULL;
    err = CD_OK;
out:
    ratelimit_ring_free(ring);
    return err;
}

void ratelimit_ring_free(ratelimit_ring *ring)
{
    if (ring == NULL)
        return;
    free(ring->points);
    free(ring);
}

size_t ratelimit_ring_lookup(const ratelimit_ring *ring, const uint8_t *key, size_t len)
{
    uint64_t h = 0;
    size_t lo = 0, hi = ring->n_points;

    for (size_t i = 0; i < 8 && i < len; i++)
        h = (h << 8) | key[i];
    /* First point at or after h, wrapping to the first point. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ring->points[mid].pos < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == ring->n_points)
        lo = 0;
    return ring->points[lo].server;
}
