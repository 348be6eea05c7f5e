/* ratelimit_int.h: what ratelimit.c and ratelimit_login.c share (private to the module). */
#ifndef CONFIDOC_RATELIMIT_INT_H
#define CONFIDOC_RATELIMIT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "ratelimit/local.h"
#include "ratelimit/mc.h"
#include "ratelimit/ratelimit.h"
#include "ratelimit/ring.h"

#define HOST_MAX 256
/* "rl:" + 64 hex + ":" + window number */
#define KEY_MAX 96
#define LEASE_STRIPES 64u

struct server {
    char name[HOST_MAX + 8]; /* "host:port", for the ring and the log */
    char verify_name[HOST_MAX];
    struct sockaddr_storage addr;
    socklen_t addrlen;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Guarded by mu: */
    ratelimit_mc_conn **idle;
    size_t n_idle;
    unsigned n_open; /* idle + in use + being connected */
    bool down;
    int64_t retry_at_ms;
    unsigned backoff_ms;
    bool sync_init;
};

struct ratelimit {
    unsigned limit;
    unsigned lease_max; /* 1: every passing request is counted in memcached */
    struct lease *leases;
    pthread_mutex_t lease_mu[LEASE_STRIPES];
    unsigned window_s;
    unsigned connect_timeout_ms;
    unsigned io_timeout_ms;
    unsigned pool_size;
    enum ratelimit_on_unavailable on_unavailable;
    unsigned login_fail_limit;
    unsigned login_block_base_s;
    unsigned login_block_max_s;
    const crypto_keyring *kr;
    ratelimit_mc_tls *tls;
    ratelimit_ring *ring;
    struct server *servers; /* n_servers for rate limits, then n_lockout for lockout keys */
    size_t n_servers;
    ratelimit_ring *lockout_ring; /* NULL: lockout keys share the rate-limit servers */
    size_t n_lockout;
    ratelimit_local *local;
    atomic_uint n_down;
};

/* One memcached operation. */
struct mc_op {
    enum { OP_INCR, OP_TTL, OP_SET, OP_ADD, OP_DEL } kind;
    const char *key;
    const char *value;
    unsigned ttl_s;
    bool refresh;
    uint64_t delta; /* OP_INCR: 1 when 0 */
    uint64_t count; /* OP_INCR result */
    bool found;     /* OP_TTL results */
    bool stored;    /* OP_ADD result */
    long long ttl_left;
};

/* Wall-clock seconds: windows are aligned to it so that every instance of the
 * service agrees on the current window. */
static inline int64_t ratelimit_wall_s(void)
{
    return (int64_t)time(NULL);
}

/* key = prefix + lowercase hex of the hash [+ ":" + tag]. */
void ratelimit_make_key(char key[KEY_MAX], const char *prefix, const uint8_t h[CRYPTO_HASH_BYTES],
                        bool with_tag, uint64_t tag);

/* Runs op on server s (one retry on a new connection, except after a
 * timeout). CD_OK or CD_ERR_UNAVAILABLE (use the fallback). */
cd_err ratelimit_server_call(ratelimit *rl, struct server *s, struct mc_op *op);

/* The server of an account's lockout keys (lf:, lb:); NULL: none configured. */
struct server *ratelimit_login_server(ratelimit *rl, const uint8_t h[CRYPTO_HASH_BYTES]);

#endif
