/* mc.h: a minimal memcached meta-protocol client over mutual TLS (OpenSSL),
 * internal to the rate limiter. One connection is used by one thread at a time. */
#ifndef CONFIDOC_RATELIMIT_MC_H
#define CONFIDOC_RATELIMIT_MC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/err.h"

/* Longest response line accepted (memcached's are far shorter). */
#define RATELIMIT_MC_LINE_MAX 1024
/* Longest key memcached accepts. */
#define RATELIMIT_MC_KEY_MAX 250

/* TLS client context: CA, client certificate and key; TLS 1.2 or newer; the
 * server's chain is always verified. */
typedef struct ratelimit_mc_tls ratelimit_mc_tls;

/* CD_ERR_CONFIG when a file cannot be loaded or the key does not match. */
cd_err ratelimit_mc_tls_new(const char *ca, const char *cert, const char *key,
                            ratelimit_mc_tls **out);
void ratelimit_mc_tls_free(ratelimit_mc_tls *tls); /* NULL is a no-op */

typedef struct ratelimit_mc_conn ratelimit_mc_conn;

/* Connects to addr (non-blocking connect bounded by connect_timeout_ms, then
 * the TLS handshake bounded by the same time) and verifies that the server's
 * certificate names `name` (an IP literal is matched against IP SANs).
 * Every later request is bounded by io_timeout_ms. CD_ERR_UNAVAILABLE when
 * the server cannot be reached, CD_ERR_TIMEOUT, CD_ERR_CRYPTO when TLS or the
 * verification fails. tls must outlive the connection. */
cd_err ratelimit_mc_connect(ratelimit_mc_tls *tls, const struct sockaddr *addr, socklen_t addrlen,
                            const char *name, unsigned connect_timeout_ms, unsigned io_timeout_ms,
                            ratelimit_mc_conn **out);
void ratelimit_mc_close(ratelimit_mc_conn *c); /* NULL is a no-op */

/* Requests. Keys: 1..RATELIMIT_MC_KEY_MAX printable ASCII bytes without spaces
 * (CD_ERR_INVALID otherwise). Any other error (CD_ERR_IO, CD_ERR_TIMEOUT,
 * CD_ERR_INVALID for an unexpected answer) leaves the connection unusable:
 * close it. TTLs are relative seconds (at most 30 days). */

/* Largest delta of one increment. */
#define RATELIMIT_MC_DELTA_MAX 1000000000ULL

/* `ma KEY N<ttl> J<delta> D<delta> v [T<ttl>]`: creates the counter at delta
 * with the TTL when missing, else adds delta (1..RATELIMIT_MC_DELTA_MAX; with
 * refresh, also resets its TTL); *value is the counter after the operation.
 * One round trip, atomic in memcached. */
cd_err ratelimit_mc_incr(ratelimit_mc_conn *c, const char *key, uint64_t delta, unsigned ttl_s,
                         bool refresh, uint64_t *value);
/* `mg KEY t`: *found, and *ttl_s the remaining TTL (-1: none) when found. */
cd_err ratelimit_mc_ttl(ratelimit_mc_conn *c, const char *key, bool *found, long long *ttl_s);
/* `ms KEY <len> T<ttl>` with a short value (at most 64 bytes). */
cd_err ratelimit_mc_set(ratelimit_mc_conn *c, const char *key, const char *value, unsigned ttl_s);
/* `ms KEY <len> T<ttl> ME` (mode add): stores the short value only when the key
 * is missing; *stored tells whether it did. Atomic in memcached. */
cd_err ratelimit_mc_add(ratelimit_mc_conn *c, const char *key, const char *value, unsigned ttl_s,
                        bool *stored);
/* `md KEY`: deleting a missing key is not an error. */
cd_err ratelimit_mc_delete(ratelimit_mc_conn *c, const char *key);

#endif
