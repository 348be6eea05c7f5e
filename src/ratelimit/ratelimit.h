/* ratelimit.h: per-client request limits and per-account failed-login limits,
 * counted in memcached over mutual TLS (meta protocol), with an in-process
 * fallback while memcached is unreachable.
 *
 * memcached never sees a client address or a username: keys are keyed hashes
 * (crypto.h, purposes RATELIMIT and LOGINFAIL) of the client's address (IPv6
 * per /64) and of the username. Only this module and the CAS include OpenSSL. */
#ifndef CONFIDOC_RATELIMIT_H
#define CONFIDOC_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/err.h"
#include "crypto/crypto.h"

#define RATELIMIT_MAX_SERVERS 16

enum ratelimit_on_unavailable {
    RATELIMIT_FALLBACK_LOCAL = 0, /* keep limiting with an in-process counter */
    RATELIMIT_FALLBACK_REJECT,    /* answer 503 */
};

struct ratelimit_config {
    unsigned limit;    /* requests per window per client */
    unsigned window_s; /* fixed window length in seconds */
    /* memcached servers as "host:port" (IPv6 as "[addr]:port"); none: local only */
    const char *servers[RATELIMIT_MAX_SERVERS];
    size_t n_servers;
    /* Servers for the failed-login keys only (lf:, lb:), same TLS settings;
     * none: they share `servers` (and can be evicted by a flood of rate-limit
     * keys). Needs n_servers > 0. */
    const char *lockout_servers[RATELIMIT_MAX_SERVERS];
    size_t n_lockout_servers;
    const char *tls_ca;   /* verifies memcached's certificate */
    const char *tls_cert; /* our client certificate */
    const char *tls_key;
    const char *server_name; /* name expected in memcached's certificate; NULL: the host */
    unsigned connect_timeout_ms;
    unsigned io_timeout_ms;
    unsigned pool_size; /* connections per server */
    enum ratelimit_on_unavailable on_unavailable;
    unsigned login_fail_limit;   /* consecutive failures before an account is blocked */
    unsigned login_block_base_s; /* first block; doubles with each further failure */
    unsigned login_block_max_s;
};

typedef struct ratelimit ratelimit;

/* kr must outlive the limiter. */
cd_err ratelimit_new(const struct ratelimit_config *cfg, const crypto_keyring *kr, ratelimit **out);
void ratelimit_free(ratelimit *rl); /* NULL is a no-op */

/* Counts one request of the client at addr. CD_OK: allowed. CD_ERR_LIMITED:
 * over the limit, *retry_after_s is the time until the window ends.
 * CD_ERR_UNAVAILABLE: memcached is down and on_unavailable is REJECT. */
cd_err ratelimit_hit(ratelimit *rl, const struct sockaddr *addr, socklen_t addrlen,
                     unsigned *retry_after_s);

/* Parses an IPv4 or IPv6 literal (as in X-Real-IP) into out. CD_ERR_INVALID otherwise. */
cd_err ratelimit_parse_addr(const char *text, struct sockaddr_storage *out, socklen_t *outlen);

/* Starts a password verification of username (existing or not), before any
 * hashing: refuses it while the account is blocked (not counted), otherwise
 * counts it with one atomic increment and lets it through unless the count
 * has reached login_fail_limit and another attempt already holds the current
 * block period. From the limit-th attempt on, an attempt that passes starts a
 * block of login_block_base_s doubling per attempt beyond the limit (capped),
 * so that concurrent attempts cannot pass more than the limit.
 * CD_OK: verify. CD_ERR_LIMITED: refuse, *retry_after_s (at least 1).
 * Never tells whether the account exists. Call ratelimit_login_succeeded
 * after a successful verification; a failure needs no further call. */
cd_err ratelimit_login_begin(ratelimit *rl, const char *username, size_t len,
                             unsigned *retry_after_s);

/* Whether logins of this username are currently refused (CD_ERR_LIMITED with
 * *retry_after_s), CD_OK otherwise. Never tells whether the account exists. */
cd_err ratelimit_login_check(ratelimit *rl, const char *username, size_t len,
                             unsigned *retry_after_s);
/* Records a failed login of username (existing or not) that was not started
 * with ratelimit_login_begin (which counts it already): adds one to the
 * count and, from the limit on, (re)sets the block. */
void ratelimit_login_failed(ratelimit *rl, const char *username, size_t len);
/* Resets the failure count after a successful login. */
void ratelimit_login_succeeded(ratelimit *rl, const char *username, size_t len);

/* True while memcached is unreachable and the in-process fallback is in use. */
bool ratelimit_degraded(const ratelimit *rl);

#endif
