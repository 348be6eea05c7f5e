/* ratelimit.c: per-client request limits counted in memcached (consistent
 * hashing over a pool of TLS connections per server, with leases), with an
 * in-process fallback while a server is unreachable; failed logins are in
 * ratelimit_login.c. */
#include "ratelimit/ratelimit.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/codec.h"
#include "log/log.h"
#include "ratelimit/local.h"
#include "ratelimit/mc.h"
#include "ratelimit/ratelimit_int.h"
#include "ratelimit/ring.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 500
#define DEFAULT_IO_TIMEOUT_MS 500
/* A busy pool is not an outage: memcached answers in microseconds, so a free
 * connection comes back soon. Waiting (bounded) keeps the count exact under
 * bursts, where counting in-process would let extra requests through. */
#define POOL_WAIT_MS 1000
#define DEFAULT_POOL_SIZE 4
#define MAX_POOL_SIZE 64
/* A server that failed is skipped for BACKOFF_MIN_MS, doubling on each failed
 * probe up to BACKOFF_MAX_MS; meanwhile its keys are counted in-process. */
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000
#define LOCAL_CAPACITY 16384
#define TTL_MAX_S (30u * 24 * 3600)
/* memcached's clock ticks in seconds: keep counters a little past their window. */
#define WINDOW_TTL_SLACK_S 2
/* Leases (see ratelimit_hit): a replica takes at most limit / LEASE_DIVISOR
 * requests of a client at once, and never more than LEASE_MAX. */
#define LEASE_DIVISOR 64u
#define LEASE_MAX 4096u
#define LEASE_SLOTS 4096u

/* Requests of one client granted by memcached to this process and not used
 * yet, in one window. Direct-mapped by the key's hash: a colliding client
 * takes the slot over and the leftover is forgotten (it was counted in
 * memcached, so forgetting it can only refuse early, never admit more). */
struct lease {
    uint8_t tag[16]; /* first bytes of the client's key hash */
    int64_t window;
    uint32_t left; /* requests granted and not used */
    uint32_t next; /* size of the next lease */
    bool full;     /* memcached refused: the client is over the limit until the window ends */
};

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- addresses ---- */

cd_err ratelimit_addr_bytes(const struct sockaddr *addr, socklen_t addrlen, uint8_t out[16],
                            size_t *outlen)
{
    if (addr == NULL)
        return CD_ERR_INVALID;
    if (addr->sa_family == AF_INET) {
        struct sockaddr_in sin;
        if (addrlen < (socklen_t)sizeof(sin))
            return CD_ERR_INVALID;
        memcpy(&sin, addr, sizeof(sin));
        memcpy(out, &sin.sin_addr, 4);
        *outlen = 4;
        return CD_OK;
    }
    if (addr->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        if (addrlen < (socklen_t)sizeof(sin6))
            return CD_ERR_INVALID;
        memcpy(&sin6, addr, sizeof(sin6));
        if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
            memcpy(out, sin6.sin6_addr.s6_addr + 12, 4);
            *outlen = 4;
        } else {
            memcpy(out, sin6.sin6_addr.s6_addr, 8);
            *outlen = 8;
        }
        return CD_OK;
    }
    return CD_ERR_INVALID;
}

cd_err ratelimit_parse_addr(const char *text, struct sockaddr_storage *out, socklen_t *outlen)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;

    if (text == NULL || out == NULL || outlen == NULL || strlen(text) >= INET6_ADDRSTRLEN)
        return CD_ERR_INVALID;
    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));
    if (inet_pton(AF_INET, text, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        memset(out, 0, sizeof(*out));
        memcpy(out, &sin, sizeof(sin));
        *outlen = sizeof(sin);
        return CD_OK;
    }
    if (inet_pton(AF_INET6, text, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        memset(out, 0, sizeof(*out));
        memcpy(out, &sin6, sizeof(sin6));
        *outlen = sizeof(sin6);
        return CD_OK;
    }
    return CD_ERR_INVALID;
}

/* key = prefix + lowercase hex of the hash [+ ":" + tag]. */
void ratelimit_make_key(char key[KEY_MAX], const char *prefix, const uint8_t h[CRYPTO_HASH_BYTES],
                        bool with_tag, uint64_t tag)
{
    size_t n = strlen(prefix);

    memcpy(key, prefix, n);
    codec_hex_encode(h, CRYPTO_HASH_BYTES, key + n);
    n += (size_t)2 * CRYPTO_HASH_BYTES;
    if (with_tag)
        snprintf(key + n, KEY_MAX - n, ":%llu", (unsigned long long)tag);
    else
        key[n] = '\0';
}

/* ---- servers and their connection pools ---- */

static cd_err server_parse(struct server *s, const char *spec, const char *server_name)
{
    char host[HOST_MAX], port[8];
    const char *colon, *h = spec;
    size_t hlen;
    struct addrinfo hints, *res = NULL;
    cd_err err = CD_ERR_CONFIG;

    if (spec == NULL || strlen(spec) >= sizeof(s->name))
        goto out;
    colon = strrchr(spec, ':');
    if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= sizeof(port))
        goto out;
    hlen = (size_t)(colon - spec);
    if (spec[0] == '[') {
        if (hlen < 3 || spec[hlen - 1] != ']')
            goto out;
        h = spec + 1;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        goto out;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, colon + 1, strlen(colon + 1) + 1);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    /* Resolved once, here: a request never waits for DNS. */
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL ||
        res->ai_addrlen > sizeof(s->addr))
        goto out;
    memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
    s->addrlen = res->ai_addrlen;
    snprintf(s->name, sizeof(s->name), "%s", spec);
    if (server_name != NULL) {
        if (strlen(server_name) >= sizeof(s->verify_name))
            goto out;
        snprintf(s->verify_name, sizeof(s->verify_name), "%s", server_name);
    } else {
        memcpy(s->verify_name, host, hlen + 1);
    }
    err = CD_OK;
out:
    if (res != NULL)
        freeaddrinfo(res);
    return err;
}

static cd_err server_init_sync(struct server *s, unsigned pool_size)
{
    pthread_condattr_t ca;
    bool ok;

    s->idle = calloc(pool_size,
                     sizeof(*s->idle)); // NOLINT(bugprone-sizeof-expression): array of pointers
    if (s->idle == NULL)
        return CD_ERR_NOMEM;
    if (pthread_condattr_init(&ca) != 0)
        return CD_ERR_NOMEM;
    ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
         pthread_mutex_init(&s->mu, NULL) == 0;
    if (ok && pthread_cond_init(&s->cv, &ca) != 0) {
        pthread_mutex_destroy(&s->mu);
        ok = false;
    }
    pthread_condattr_destroy(&ca);
    if (!ok)
        return CD_ERR_NOMEM;
    s->sync_init = true;
    s->backoff_ms = BACKOFF_MIN_MS;
    return CD_OK;
}

static void server_release(struct server *s)
{
    if (s->sync_init) {
        for (size_t i = 0; i < s->n_idle; i++)
            ratelimit_mc_close(s->idle[i]);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
    }
    free(s->idle);
}

/* Closes the pooled idle connections (called with s->mu held). */
static void pool_drop_idle_locked(struct server *s)
{
    for (size_t i = 0; i < s->n_idle; i++)
        ratelimit_mc_close(s->idle[i]);
    s->n_open -= (unsigned)s->n_idle;
    s->n_idle = 0;
    pthread_cond_broadcast(&s->cv);
}

static void server_mark_down(ratelimit *rl, struct server *s)
{
    pthread_mutex_lock(&s->mu);
    if (!s->down) {
        s->down = true;
        s->backoff_ms = BACKOFF_MIN_MS;
        atomic_fetch_add(&rl->n_down, 1);
        log_warnx("memcached unreachable, limiting in-process (server %s)", s->name);
    } else {
        s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
    }
    s->retry_at_ms = mono_ms() + s->backoff_ms;
    pool_drop_idle_locked(s);
    pthread_mutex_unlock(&s->mu);
}

static void server_mark_up(ratelimit *rl, struct server *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->down) {
        s->down = false;
        s->backoff_ms = BACKOFF_MIN_MS;
        atomic_fetch_sub(&rl->n_down, 1);
        log_info("memcached reachable again, limiting in memcached (server %s)", s->name);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Takes a connection: an idle one, else a new one while the pool has room,
 * else waits (at most POOL_WAIT_MS) for one to come back.
 * CD_ERR_UNAVAILABLE: the server is down (in back-off, or connecting failed:
 * then it is marked down). CD_ERR_TIMEOUT: the pool stayed busy. */
static cd_err pool_get(ratelimit *rl, struct server *s, ratelimit_mc_conn **out, bool *fresh)
{
    int64_t deadline = mono_ms() + POOL_WAIT_MS;
    ratelimit_mc_conn *c = NULL;
    cd_err err;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        int64_t now = mono_ms();

        if (s->down) {
            if (now < s->retry_at_ms) {
                pthread_mutex_unlock(&s->mu);
                return CD_ERR_UNAVAILABLE;
            }
            /* This thread probes; the others keep using the fallback. */
            s->retry_at_ms = now + s->backoff_ms;
            s->n_open++;
            break;
        }
        if (s->n_idle > 0) {
            *out = s->idle[--s->n_idle];
            *fresh = false;
            pthread_mutex_unlock(&s->mu);
            return CD_OK;
        }
        if (s->n_open < rl->pool_size) {
            s->n_open++;
            break;
        }
        if (now >= deadline) {
            pthread_mutex_unlock(&s->mu);
            return CD_ERR_TIMEOUT;
        }
        struct timespec ts = {.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000};
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);

    err = ratelimit_mc_connect(rl->tls, (const struct sockaddr *)&s->addr, s->addrlen,
                               s->verify_name, rl->connect_timeout_ms, rl->io_timeout_ms, &c);
    if (err != CD_OK) {
        pthread_mutex_lock(&s->mu);
        s->n_open--;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        if (err == CD_ERR_CRYPTO)
            log_warnx("memcached server %s: tls handshake or certificate check failed", s->name);
        server_mark_down(rl, s);
        return CD_ERR_UNAVAILABLE;
    }
    *out = c;
    *fresh = true;
    return CD_OK;
}

static void pool_put(ratelimit *rl, struct server *s, ratelimit_mc_conn *c)
{
    pthread_mutex_lock(&s->mu);
    /* A probe may open one connection beyond pool_size: never keep it. */
    if (s->n_idle < rl->pool_size) {
        s->idle[s->n_idle++] = c;
        c = NULL;
    } else {
        s->n_open--;
    }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    ratelimit_mc_close(c);
}

/* Closes a broken connection; with stale, also the other idle ones (they were
 * opened before the same server went away, most likely). */
static void pool_drop(struct server *s, ratelimit_mc_conn *c, bool stale)
{
    ratelimit_mc_close(c);
    pthread_mutex_lock(&s->mu);
    s->n_open--;
    if (stale)
        pool_drop_idle_locked(s);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static cd_err op_run(ratelimit_mc_conn *c, struct mc_op *op)
{
    switch (op->kind) {
    case OP_INCR:
        return ratelimit_mc_incr(c, op->key, op->delta != 0 ? op->delta : 1, op->ttl_s, op->refresh,
                                 &op->count);
    case OP_TTL:
        return ratelimit_mc_ttl(c, op->key, &op->found, &op->ttl_left);
    case OP_SET:
        return ratelimit_mc_set(c, op->key, op->value, op->ttl_s);
    case OP_ADD:
        return ratelimit_mc_add(c, op->key, op->value, op->ttl_s, &op->stored);
    case OP_DEL:
        return ratelimit_mc_delete(c, op->key);
    }
    return CD_ERR_INTERNAL;
}

/* Runs op on server s. A failure on a pooled connection is retried once on a
 * new one (the server may have restarted), except a timeout: the request was
 * sent and may have been applied, and running an increment twice would count
 * one request twice. Any other failure marks the server down. CD_OK or
 * CD_ERR_UNAVAILABLE (use the fallback). */
cd_err ratelimit_server_call(ratelimit *rl, struct server *s, struct mc_op *op)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        ratelimit_mc_conn *c;
        bool fresh;
        cd_err err = pool_get(rl, s, &c, &fresh);

        if (err != CD_OK)
            return CD_ERR_UNAVAILABLE;
        err = op_run(c, op);
        if (err == CD_OK) {
            pool_put(rl, s, c);
            server_mark_up(rl, s);
            return CD_OK;
        }
        pool_drop(s, c, !fresh);
        if (fresh || err == CD_ERR_TIMEOUT)
            break;
    }
    server_mark_down(rl, s);
    return CD_ERR_UNAVAILABLE;
}

static struct server *server_for(ratelimit *rl, const uint8_t h[CRYPTO_HASH_BYTES])
{
    if (rl->n_servers == 0)
        return NULL;
    return &rl->servers[ratelimit_ring_lookup(rl->ring, h, CRYPTO_HASH_BYTES)];
}

/* The server of an account's lockout keys (lf:, lb:): one of the lockout
 * servers when configured, so that rate-limit keys can never evict them. */
struct server *ratelimit_login_server(ratelimit *rl, const uint8_t h[CRYPTO_HASH_BYTES])
{
    if (rl->n_lockout == 0)
        return server_for(rl, h);
    return &rl->servers[rl->n_servers +
                        ratelimit_ring_lookup(rl->lockout_ring, h, CRYPTO_HASH_BYTES)];
}

/* ---- life cycle ---- */

static cd_err config_check(const struct ratelimit_config *cfg)
{
    if (cfg->limit == 0 || cfg->window_s == 0 || cfg->window_s > TTL_MAX_S - WINDOW_TTL_SLACK_S)
        return CD_ERR_CONFIG;
    if (cfg->n_servers > RATELIMIT_MAX_SERVERS || cfg->pool_size > MAX_POOL_SIZE)
        return CD_ERR_CONFIG;
    /* Lockout servers without rate-limit servers would leave the rate limit in-process. */
    if (cfg->n_lockout_servers > RATELIMIT_MAX_SERVERS ||
        (cfg->n_lockout_servers > 0 && cfg->n_servers == 0))
        return CD_ERR_CONFIG;
    if (cfg->on_unavailable != RATELIMIT_FALLBACK_LOCAL &&
        cfg->on_unavailable != RATELIMIT_FALLBACK_REJECT)
        return CD_ERR_CONFIG;
    if (cfg->login_fail_limit > 0 &&
        (cfg->login_block_base_s == 0 || cfg->login_block_max_s < cfg->login_block_base_s ||
         cfg->login_block_max_s > TTL_MAX_S / 2))
        return CD_ERR_CONFIG;
    if (cfg->n_servers > 0 &&
        (cfg->tls_ca == NULL || cfg->tls_cert == NULL || cfg->tls_key == NULL))
        return CD_ERR_CONFIG;
    return CD_OK;
}

cd_err ratelimit_new(const struct ratelimit_config *cfg, const crypto_keyring *kr, ratelimit **out)
{
    ratelimit *rl = NULL;
    cd_err err = CD_ERR_INVALID;

    if (cfg == NULL || kr == NULL || out == NULL)
        goto out;
    err = config_check(cfg);
    if (err != CD_OK)
        goto out;
    err = CD_ERR_NOMEM;
    rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        goto out;
    rl->limit = cfg->limit;
    rl->window_s = cfg->window_s;
    rl->connect_timeout_ms =
        cfg->connect_timeout_ms != 0 ? cfg->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    rl->io_timeout_ms = cfg->io_timeout_ms != 0 ? cfg->io_timeout_ms : DEFAULT_IO_TIMEOUT_MS;
    rl->pool_size = cfg->pool_size != 0 ? cfg->pool_size : DEFAULT_POOL_SIZE;
    rl->on_unavailable = cfg->on_unavailable;
    rl->login_fail_limit = cfg->login_fail_limit;
    rl->login_block_base_s = cfg->login_block_base_s;
    rl->login_block_max_s = cfg->login_block_max_s;
    rl->kr = kr;
    atomic_init(&rl->n_down, 0);
    rl->lease_max = cfg->limit / LEASE_DIVISOR;
    if (rl->lease_max > LEASE_MAX)
        rl->lease_max = LEASE_MAX;
    if (rl->lease_max < 1)
        rl->lease_max = 1;
    if (cfg->n_servers > 0) {
        rl->leases = calloc(LEASE_SLOTS, sizeof(*rl->leases));
        if (rl->leases == NULL)
            goto out;
        for (unsigned i = 0; i < LEASE_STRIPES; i++)
            pthread_mutex_init(&rl->lease_mu[i], NULL);
    }
    err = ratelimit_local_new(LOCAL_CAPACITY, &rl->local);
    if (err != CD_OK)
        goto out;
    if (cfg->n_servers > 0) {
        const char *names[2 * RATELIMIT_MAX_SERVERS];
        size_t total = cfg->n_servers + cfg->n_lockout_servers;

        err = CD_ERR_NOMEM;
        rl->servers = calloc(total, sizeof(*rl->servers));
        if (rl->servers == NULL)
            goto out;
        rl->n_servers = cfg->n_servers;
        rl->n_lockout = cfg->n_lockout_servers;
        for (size_t i = 0; i < total; i++) {
            const char *spec =
                i < cfg->n_servers ? cfg->servers[i] : cfg->lockout_servers[i - cfg->n_servers];
            err = server_init_sync(&rl->servers[i], rl->pool_size);
            if (err != CD_OK)
                goto out;
            err = server_parse(&rl->servers[i], spec, cfg->server_name);
            if (err != CD_OK)
                goto out;
            names[i] = rl->servers[i].name;
        }
        err = ratelimit_ring_new(names, rl->n_servers, &rl->ring);
        if (err != CD_OK)
            goto out;
        if (rl->n_lockout > 0) {
            err = ratelimit_ring_new(names + rl->n_servers, rl->n_lockout, &rl->lockout_ring);
            if (err != CD_OK)
                goto out;
        }
        err = ratelimit_mc_tls_new(cfg->tls_ca, cfg->tls_cert, cfg->tls_key, &rl->tls);
        if (err != CD_OK)
            goto out;
    }
    *out = rl;
    rl = NULL;
    err = CD_OK;
out:
    ratelimit_free(rl);
    return err;
}

void ratelimit_free(ratelimit *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i < rl->n_servers + rl->n_lockout; i++)
        server_release(&rl->servers[i]);
    free(rl->servers);
    ratelimit_ring_free(rl->ring);
    ratelimit_ring_free(rl->lockout_ring);
    ratelimit_mc_tls_free(rl->tls);
    ratelimit_local_free(rl->local);
    if (rl->leases != NULL) {
        for (unsigned i = 0; i < LEASE_STRIPES; i++)
            pthread_mutex_destroy(&rl->lease_mu[i]);
        crypto_wipe(rl->leases, LEASE_SLOTS * sizeof(*rl->leases));
        free(rl->leases);
    }
    free(rl);
}

bool ratelimit_degraded(const ratelimit *rl)
{
    return rl != NULL && atomic_load(&((ratelimit *)rl)->n_down) > 0;
}

/* ---- requests ---- */

/* Leases. Counting every request in memcached costs a round trip per request.
 * When the limit is large, this process instead adds a lease of n requests
 * to the client's counter at once and serves the next n - 1 requests from it
 * without asking. The first lease of a client in a window is 1 and each next
 * one doubles, up to lease_max: a process never holds more than the client
 * has already used from it in that window. memcached's counter is the sum of
 * all leases, so across all processes no more than `limit` requests pass per
 * window, exactly as without leases; a lease not used up by the end of the
 * window can only make other processes refuse earlier, by at most lease_max
 * per process. With lease_max = 1 (limit < 128) every passing request is
 * counted in memcached.
 *
 * Once memcached has refused a client, its counter can only grow until the
 * window ends: the process remembers that and refuses the client's further
 * requests of the window without asking, so a flood costs memcached nothing. */

enum lease_state { LEASE_NONE, LEASE_TAKEN, LEASE_FULL };

static struct lease *lease_slot(ratelimit *rl, const uint8_t h[CRYPTO_HASH_BYTES],
                                pthread_mutex_t **mu)
{
    uint32_t i = ((uint32_t)h[16] | (uint32_t)h[17] << 8 | (uint32_t)h[18] << 16) % LEASE_SLOTS;

    *mu = &rl->lease_mu[i % LEASE_STRIPES];
    return &rl->leases[i];
}

static bool lease_is(const struct lease *l, const uint8_t h[CRYPTO_HASH_BYTES], int64_t window)
{
    return l->window == window && l->next != 0 && memcmp(l->tag, h, sizeof(l->tag)) == 0;
}

/* Takes one request from this process's lease (LEASE_TAKEN), or tells that
 * the client is known to be over the limit (LEASE_FULL); otherwise *delta is
 * the size of the lease to ask memcached for. */
static enum lease_state lease_take(ratelimit *rl, const uint8_t h[CRYPTO_HASH_BYTES],
                                   int64_t window, uint64_t *delta)
{
    pthread_mutex_t *mu;
    struct lease *l = lease_slot(rl, h, &mu);
    enum lease_state st = LEASE_NONE;

    pthread_mutex_lock(mu);
    *delta = 1;
    if (lease_is(l, h, window)) {
        if (l->left > 0) {
            l->left--;
            st = LEASE_TAKEN;
        } else if (l->full) {
            st = LEASE_FULL;
        } else {
            *delta = l->next;
        }
    }
    pthread_mutex_unlock(mu);
    return st;
}

/* Records a lease of `granted` requests (one of them used now). */
static void lease_add(ratelimit *rl, const uint8_t h[CRYPTO_HASH_BYTES], int64_t window,
                      uint64_t delta, uint64_t granted)
{
    pthread_mutex_t *mu;
    struct lease *l = lease_slot(rl, h, &mu);
    uint64_t next = delta * 2 > rl->lease_max ? rl->lease_max : delta * 2;

    pthread_mutex_lock(mu);
    if (!lease_is(l, h, window)) {
        memcpy(l->tag, h, sizeof(l->tag));
        l->window = window;
        l->left = 0;
        l->full = false;
    }
    if (granted > 0 && l->left + (granted - 1) <= UINT32_MAX)
        l->left += (uint32_t)(granted - 1);
    if (granted < delta)
        l->full = true; /* the counter reached the limit */
    l->next = (uint32_t)next;
    pthread_mutex_unlock(mu);
}

/* CD_ERR_LIMITED, with the time until the window ends (at least 1 s). */
static cd_err limited(int64_t now, int64_t end, unsigned *retry_after_s)
{
    *retry_after_s = end - now >= 1 ? (unsigned)(end - now) : 1;
    return CD_ERR_LIMITED;
}

cd_err ratelimit_hit(ratelimit *rl, const struct sockaddr *addr, socklen_t addrlen,
                     unsigned *retry_after_s)
{
    uint8_t bytes[16], h[CRYPTO_HASH_BYTES];
    size_t n = 0;
    char key[KEY_MAX];
    struct server *s;
    int64_t now, window, end;
    uint64_t count = 0, delta = 1;
    bool passed = false;
    cd_err err = CD_ERR_INVALID;

    if (rl == NULL || retry_after_s == NULL)
        goto out;
    err = ratelimit_addr_bytes(addr, addrlen, bytes, &n);
    if (err != CD_OK)
        goto out;
    err = crypto_keyed_hash(rl->kr, crypto_keyring_newest(rl->kr), CRYPTO_PURPOSE_RATELIMIT,
                            &(struct crypto_part){.p = bytes, .n = n}, 1, h);
    if (err != CD_OK)
        goto out;
    now = ratelimit_wall_s();
    window = now / (int64_t)rl->window_s;
    end = (window + 1) * (int64_t)rl->window_s;
    s = server_for(rl, h);
    if (s != NULL) {
        enum lease_state st = lease_take(rl, h, window, &delta);

        if (st != LEASE_NONE) {
            err = CD_OK;
            if (st == LEASE_FULL)
                err = limited(now, end, retry_after_s);
            goto out;
        }
    }
    if (s != NULL) {
        struct mc_op op = {.kind = OP_INCR,
                           .key = key,
                           .delta = delta,
                           .ttl_s = (unsigned)(end - now) + WINDOW_TTL_SLACK_S};
        ratelimit_make_key(key, "rl:", h, true, (uint64_t)window);
        err = ratelimit_server_call(rl, s, &op);
        if (err == CD_OK) {
            /* Before this lease the counter stood at count - delta: of the
             * delta requests, those up to the limit are granted. */
            uint64_t before = op.count >= delta ? op.count - delta : 0;
            uint64_t granted = before >= rl->limit ? 0 : rl->limit - before;

            if (granted > delta)
                granted = delta;
            lease_add(rl, h, window, delta, granted);
            count = op.count;
            passed = granted > 0;
        } else if (rl->on_unavailable == RATELIMIT_FALLBACK_REJECT) {
            goto out;
        }
    }
    err = CD_OK;
    if (count == 0) {
        count = ratelimit_local_incr(rl->local, RATELIMIT_LOCAL_HITS, h, (uint64_t)window, now, end,
                                     false);
        passed = count <= rl->limit;
    }
    if (!passed)
        err = limited(now, end, retry_after_s);
out:
    crypto_wipe(bytes, sizeof(bytes));
    crypto_wipe(h, sizeof(h));
    return err;
}
