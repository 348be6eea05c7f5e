/* mc.c: memcached meta-protocol client over mutual TLS with bounded waits. */
#include "ratelimit/mc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/num.h"
#include "metrics/metrics.h"

#define MC_TTL_MAX ((uint64_t)30 * 24 * 3600) /* larger TTLs mean absolute times to memcached */
#define MC_VALUE_MAX 64

struct ratelimit_mc_tls {
    SSL_CTX *ctx;
    BIO_METHOD *bio_method;
};

struct ratelimit_mc_conn {
    int fd;
    SSL *ssl;
    unsigned io_timeout_ms;
    size_t rlen;
    char rbuf[RATELIMIT_MC_LINE_MAX];
};

/* ---- a socket BIO that never raises SIGPIPE ----
 * OpenSSL's socket BIO writes with write(2): a peer that went away would kill
 * the process with SIGPIPE. This one uses send(MSG_NOSIGNAL). */

static int nosig_write(BIO *b, const char *data, int len)
{
    int fd = *(const int *)BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    n = send(fd, data, (size_t)len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_write(b);
        return -1;
    }
    return (int)n;
}

static int nosig_read(BIO *b, char *data, int len)
{
    int fd = *(const int *)BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    n = recv(fd, data, (size_t)len, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_read(b);
        return -1;
    }
    return (int)n;
}

static long nosig_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int nosig_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

cd_err ratelimit_mc_tls_new(const char *ca, const char *cert, const char *key,
                            ratelimit_mc_tls **out)
{
    ratelimit_mc_tls *tls = NULL;
    cd_err err = CD_ERR_NOMEM;

    tls = calloc(1, sizeof(*tls));
    if (tls == NULL)
        goto out;
    tls->ctx = SSL_CTX_new(TLS_client_method());
    tls->bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "confidoc-mc");
    if (tls->ctx == NULL || tls->bio_method == NULL)
        goto out;
    if (BIO_meth_set_write(tls->bio_method, nosig_write) != 1 ||
        BIO_meth_set_read(tls->bio_method, nosig_read) != 1 ||
        BIO_meth_set_ctrl(tls->bio_method, nosig_ctrl) != 1 ||
        BIO_meth_set_create(tls->bio_method, nosig_create) != 1)
        goto out;
    err = CD_ERR_CONFIG;
    if (ca == NULL || cert == NULL || key == NULL)
        goto out;
    if (SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION) != 1)
        goto out;
    if (SSL_CTX_load_verify_locations(tls->ctx, ca, NULL) != 1)
        goto out;
    if (SSL_CTX_use_certificate_chain_file(tls->ctx, cert) != 1)
        goto out;
    if (SSL_CTX_use_PrivateKey_file(tls->ctx, key, SSL_FILETYPE_PEM) != 1)
        goto out;
    if (SSL_CTX_check_private_key(tls->ctx) != 1)
        goto out;
    SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(tls->ctx, SSL_SESS_CACHE_OFF);
    *out = tls;
    tls = NULL;
    err = CD_OK;
out:
    ERR_clear_error();
    ratelimit_mc_tls_free(tls);
    return err;
}

void ratelimit_mc_tls_free(ratelimit_mc_tls *tls)
{
    if (tls == NULL)
        return;
    SSL_CTX_free(tls->ctx);
    BIO_meth_free(tls->bio_method);
    free(tls);
}

/* ---- time ---- */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes. */
static cd_err wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd pfd = {.fd = fd, .events = events};

    for (;;) {
        int64_t left = deadline - now_ms();
        int r;

        if (left <= 0)
            return CD_ERR_TIMEOUT;
        r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return CD_OK;
        if (r < 0 && errno != EINTR)
            return CD_ERR_IO;
    }
}

/* Waits for what OpenSSL asked for after a call that returned r. */
static cd_err ssl_wait(ratelimit_mc_conn *c, int r, int64_t deadline)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return wait_fd(c->fd, POLLIN, deadline);
    case SSL_ERROR_WANT_WRITE:
        return wait_fd(c->fd, POLLOUT, deadline);
    default:
        ERR_clear_error();
        return CD_ERR_IO;
    }
}

/* ---- connection ---- */

static cd_err tcp_connect(const struct sockaddr *addr, socklen_t addrlen, int64_t deadline,
                          int *out)
{
    int fd, one = 1, soerr = 0;
    socklen_t len = sizeof(soerr);
    cd_err err = CD_ERR_UNAVAILABLE;

    fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return CD_ERR_IO;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, addr, addrlen) != 0) {
        if (errno != EINPROGRESS)
            goto out;
        err = wait_fd(fd, POLLOUT, deadline);
        if (err != CD_OK)
            goto out;
        err = CD_ERR_UNAVAILABLE;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0)
            goto out;
    }
    *out = fd;
    fd = -1;
    err = CD_OK;
out:
    if (fd >= 0)
        close(fd);
    return err;
}

static bool is_ip_literal(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

cd_err ratelimit_mc_connect(ratelimit_mc_tls *tls, const struct sockaddr *addr, socklen_t addrlen,
                            const char *name, unsigned connect_timeout_ms, unsigned io_timeout_ms,
                            ratelimit_mc_conn **out)
{
    ratelimit_mc_conn *c = NULL;
    int64_t deadline = now_ms() + connect_timeout_ms;
    BIO *bio;
    cd_err err = CD_ERR_NOMEM;

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto out;
    c->fd = -1;
    c->io_timeout_ms = io_timeout_ms;
    err = tcp_connect(addr, addrlen, deadline, &c->fd);
    if (err != CD_OK)
        goto out;
    err = CD_ERR_NOMEM;
    c->ssl = SSL_new(tls->ctx);
    if (c->ssl == NULL)
        goto out;
    bio = BIO_new(tls->bio_method);
    if (bio == NULL)
        goto out;
    BIO_set_data(bio, &c->fd); /* c outlives its BIO */
    SSL_set_bio(c->ssl, bio, bio);
    err = CD_ERR_CRYPTO;
    if (is_ip_literal(name)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name) != 1)
            goto out;
    } else {
        if (SSL_set_tlsext_host_name(c->ssl, name) != 1 || SSL_set1_host(c->ssl, name) != 1)
            goto out;
    }
    for (;;) {
        int r = SSL_connect(c->ssl);
        int e;

        if (r == 1)
            break;
        e = SSL_get_error(c->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            err = CD_ERR_CRYPTO;
            goto out;
        }
        err = ssl_wait(c, r, deadline);
        if (err != CD_OK)
            goto out;
    }
    if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
        err = CD_ERR_CRYPTO;
        goto out;
    }
    *out = c;
    c = NULL;
    err = CD_OK;
out:
    ERR_clear_error();
    ratelimit_mc_close(c);
    return err;
}

void ratelimit_mc_close(ratelimit_mc_conn *c)
{
    if (c == NULL)
        return;
    /* No close_notify: the socket may be dead, and waiting is pointless. */
    SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

/* ---- I/O ---- */

static cd_err conn_write(ratelimit_mc_conn *c, const void *buf, size_t n, int64_t deadline)
{
    const char *p = buf;

    while (n > 0) {
        size_t done = 0;
        int r = SSL_write_ex(c->ssl, p, n, &done);
        if (r == 1) {
            p += done;
            n -= done;
            continue;
        }
        cd_err err = ssl_wait(c, r, deadline);
        if (err != CD_OK)
            return err;
    }
    return CD_OK;
}

/* Reads one CRLF-terminated line into line (NUL-terminated, without CRLF).
 * CD_ERR_INVALID when it is longer than the buffer or holds a NUL byte. */
static cd_err conn_read_line(ratelimit_mc_conn *c, char *line, size_t cap, int64_t deadline)
{
    for (;;) {
        char *nl = c->rlen > 0 ? memchr(c->rbuf, '\n', c->rlen) : NULL;
        if (nl != NULL) {
            size_t used = (size_t)(nl - c->rbuf) + 1;
            size_t len = used - 1;

            if (len == 0 || c->rbuf[len - 1] != '\r')
                return CD_ERR_INVALID;
            len--;
            if (len >= cap || memchr(c->rbuf, '\0', len) != NULL)
                return CD_ERR_INVALID;
            memcpy(line, c->rbuf, len);
            line[len] = '\0';
            memmove(c->rbuf, c->rbuf + used, c->rlen - used);
            c->rlen -= used;
            return CD_OK;
        }
        if (c->rlen == sizeof(c->rbuf))
            return CD_ERR_INVALID; /* line too long */
        size_t got = 0;
        int r = SSL_read_ex(c->ssl, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, &got);
        if (r == 1) {
            c->rlen += got;
            continue;
        }
        cd_err err = ssl_wait(c, r, deadline);
        if (err != CD_OK)
            return err;
    }
}

static bool key_ok(const char *key)
{
    size_t n = 0;

    if (key == NULL)
        return false;
    for (; key[n] != '\0'; n++) {
        if (n >= RATELIMIT_MC_KEY_MAX || key[n] <= 0x20 || key[n] >= 0x7f)
            return false;
    }
    return n > 0;
}

/* Sends one request and reads the first line of the answer. */
static cd_err mc_request(ratelimit_mc_conn *c, const char *req, size_t reqlen, char *line,
                         size_t cap, int64_t *deadline)
{
    uint64_t t0 = metrics_now_ns();
    cd_err err;

    *deadline = now_ms() + c->io_timeout_ms;
    if (c->rlen != 0)
        return CD_ERR_INVALID; /* leftovers: out of step with the server */
    err = conn_write(c, req, reqlen, *deadline);
    if (err == CD_OK)
        err = conn_read_line(c, line, cap, *deadline);
    metrics_memcached_round_trip(metrics_now_ns() - t0, err == CD_OK);
    return err;
}

/* Parses a decimal unsigned 64-bit number occupying all of s. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > 20 || num_parse(s, n, UINT64_MAX, &v) != CD_OK)
        return false;
    *out = v;
    return true;
}

cd_err ratelimit_mc_incr(ratelimit_mc_conn *c, const char *key, uint64_t delta, unsigned ttl_s,
                         bool refresh, uint64_t *value)
{
    char req[RATELIMIT_MC_KEY_MAX + 96], line[RATELIMIT_MC_LINE_MAX], data[RATELIMIT_MC_LINE_MAX];
    uint64_t len, v;
    int64_t deadline;
    int n;
    cd_err err;

    if (!key_ok(key) || delta == 0 || delta > RATELIMIT_MC_DELTA_MAX || ttl_s == 0 ||
        ttl_s > MC_TTL_MAX)
        return CD_ERR_INVALID;
    /* A counter created by this request starts at J (the delta): memcached does
     * not add D to a value it has just created. */
    if (refresh)
        n = snprintf(req, sizeof(req), "ma %s N%u J%llu D%llu T%u v\r\n", key, ttl_s,
                     (unsigned long long)delta, (unsigned long long)delta, ttl_s);
    else
        n = snprintf(req, sizeof(req), "ma %s N%u J%llu D%llu v\r\n", key, ttl_s,
                     (unsigned long long)delta, (unsigned long long)delta);
    if (n < 0 || (size_t)n >= sizeof(req))
        return CD_ERR_INVALID;
    err = mc_request(c, req, (size_t)n, line, sizeof(line), &deadline);
    if (err != CD_OK)
        return err;
    /* "VA <len>" then the value. */
    if (strncmp(line, "VA ", 3) != 0 || !parse_u64(line + 3, strcspn(line + 3, " "), &len))
        return CD_ERR_INVALID;
    err = conn_read_line(c, data, sizeof(data), deadline);
    if (err != CD_OK)
        return err;
    if (strlen(data) != len || !parse_u64(data, (size_t)len, &v))
        return CD_ERR_INVALID;
    *value = v;
    return CD_OK;
}

cd_err ratelimit_mc_ttl(ratelimit_mc_conn *c, const char *key, bool *found, long long *ttl_s)
{
    char req[RATELIMIT_MC_KEY_MAX + 16], line[RATELIMIT_MC_LINE_MAX];
    int64_t deadline;
    uint64_t t;
    int n;
    cd_err err;

    if (!key_ok(key))
        return CD_ERR_INVALID;
    n = snprintf(req, sizeof(req), "mg %s t\r\n", key);
    if (n < 0 || (size_t)n >= sizeof(req))
        return CD_ERR_INVALID;
    err = mc_request(c, req, (size_t)n, line, sizeof(line), &deadline);
    if (err != CD_OK)
        return err;
    if (strcmp(line, "EN") == 0) {
        *found = false;
        return CD_OK;
    }
    if (strcmp(line, "HD t-1") == 0) {
        *found = true;
        *ttl_s = -1;
        return CD_OK;
    }
    if (strncmp(line, "HD t", 4) != 0 || !parse_u64(line + 4, strlen(line + 4), &t) ||
        t > MC_TTL_MAX)
        return CD_ERR_INVALID;
    *found = true;
    *ttl_s = (long long)t;
    return CD_OK;
}

cd_err ratelimit_mc_set(ratelimit_mc_conn *c, const char *key, const char *value, unsigned ttl_s)
{
    char req[RATELIMIT_MC_KEY_MAX + MC_VALUE_MAX + 64], line[RATELIMIT_MC_LINE_MAX];
    size_t vlen = value != NULL ? strlen(value) : 0;
    int64_t deadline;
    int n;
    cd_err err;

    if (!key_ok(key) || value == NULL || vlen > MC_VALUE_MAX || ttl_s == 0 || ttl_s > MC_TTL_MAX)
        return CD_ERR_INVALID;
    n = snprintf(req, sizeof(req), "ms %s %zu T%u\r\n%s\r\n", key, vlen, ttl_s, value);
    if (n < 0 || (size_t)n >= sizeof(req))
        return CD_ERR_INVALID;
    err = mc_request(c, req, (size_t)n, line, sizeof(line), &deadline);
    if (err != CD_OK)
        return err;
    return strcmp(line, "HD") == 0 ? CD_OK : CD_ERR_INVALID;
}

cd_err ratelimit_mc_add(ratelimit_mc_conn *c, const char *key, const char *value, unsigned ttl_s,
                        bool *stored)
{
    char req[RATELIMIT_MC_KEY_MAX + MC_VALUE_MAX + 64], line[RATELIMIT_MC_LINE_MAX];
    size_t vlen = value != NULL ? strlen(value) : 0;
    int64_t deadline;
    int n;
    cd_err err;

    if (!key_ok(key) || value == NULL || stored == NULL || vlen > MC_VALUE_MAX || ttl_s == 0 ||
        ttl_s > MC_TTL_MAX)
        return CD_ERR_INVALID;
    /* ME: mode "add", stores only when the key is missing (atomic in memcached). */
    n = snprintf(req, sizeof(req), "ms %s %zu T%u ME\r\n%s\r\n", key, vlen, ttl_s, value);
    if (n < 0 || (size_t)n >= sizeof(req))
        return CD_ERR_INVALID;
    err = mc_request(c, req, (size_t)n, line, sizeof(line), &deadline);
    if (err != CD_OK)
        return err;
    if (strcmp(line, "HD") == 0)
        *stored = true;
    else if (strcmp(line, "NS") == 0)
        *stored = false;
    else
        return CD_ERR_INVALID;
    return CD_OK;
}

cd_err ratelimit_mc_delete(ratelimit_mc_conn *c, const char *key)
{
    char req[RATELIMIT_MC_KEY_MAX + 16], line[RATELIMIT_MC_LINE_MAX];
    int64_t deadline;
    int n;
    cd_err err;

    if (!key_ok(key))
        return CD_ERR_INVALID;
    n = snprintf(req, sizeof(req), "md %s\r\n", key);
    if (n < 0 || (size_t)n >= sizeof(req))
        return CD_ERR_INVALID;
    err = mc_request(c, req, (size_t)n, line, sizeof(line), &deadline);
    if (err != CD_OK)
        return err;
    return strcmp(line, "HD") == 0 || strcmp(line, "NF") == 0 ? CD_OK : CD_ERR_INVALID;
}
