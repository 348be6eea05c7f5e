/* prog_ratelimit.c: drives the rate limiter against real memcached servers for
 * test_ratelimit.sh. Usage: prog_ratelimit CERTDIR SERVERS CMD [ARG]
 * SERVERS is a comma-separated list of host:port; exit status 0 on success. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "log/log.h"
#include "ratelimit/ratelimit.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static char ca[512], cert[512], key[512];
static char servers_buf[1024];
static crypto_keyring *kr;

static void config(struct ratelimit_config *cfg, const char *servers, unsigned limit,
                   unsigned window_s)
{
    char *save = NULL, *tok;

    memset(cfg, 0, sizeof(*cfg));
    cfg->limit = limit;
    cfg->window_s = window_s;
    cfg->tls_ca = ca;
    cfg->tls_cert = cert;
    cfg->tls_key = key;
    cfg->connect_timeout_ms = 300;
    cfg->io_timeout_ms = 1000;
    cfg->pool_size = 4;
    cfg->login_fail_limit = 2;
    cfg->login_block_base_s = 1;
    cfg->login_block_max_s = 4;
    snprintf(servers_buf, sizeof(servers_buf), "%s", servers);
    for (tok = strtok_r(servers_buf, ",", &save); tok != NULL && cfg->n_servers < 16;
         tok = strtok_r(NULL, ",", &save))
        cfg->servers[cfg->n_servers++] = tok;
}

static cd_err hit(ratelimit *rl, const char *addr, unsigned *retry)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;

    CHECK(ratelimit_parse_addr(addr, &ss, &len) == CD_OK);
    return ratelimit_hit(rl, (struct sockaddr *)&ss, len, retry);
}

/* A client address unique to this run, so reruns never share counters. */
static void unique_v4(char *buf, size_t n)
{
    unsigned char r[3];

    crypto_random(r, sizeof(r));
    snprintf(buf, n, "10.%u.%u.%u", r[0], r[1], r[2]);
}

/* Sleeps until the current window of window_s has at least `need` seconds left. */
static void fresh_window(unsigned window_s, unsigned need)
{
    while ((unsigned)(window_s - time(NULL) % window_s) < need)
        usleep(100 * 1000);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct par {
    ratelimit *rl;
    const char *addr;
    pthread_barrier_t *barrier;
    int passed;
    int limited;
};

static void *par_main(void *arg)
{
    struct par *p = arg;
    unsigned retry = 0;
    cd_err err;

    pthread_barrier_wait(p->barrier);
    err = hit(p->rl, p->addr, &retry);
    p->passed = err == CD_OK;
    p->limited = err == CD_ERR_LIMITED && retry >= 1;
    return NULL;
}

/* 50 parallel hits from one client in a fresh window: exactly limit pass. */
static void cmd_exact(const char *servers)
{
    struct ratelimit_config cfg;
    ratelimit *rl = NULL;
    pthread_t th[50];
    struct par p[50];
    pthread_barrier_t barrier;
    char addr[32];
    int passed = 0, limited = 0;

    config(&cfg, servers, 10, 10);
    cfg.pool_size = 8;
    CHECK(ratelimit_new(&cfg, kr, &rl) == CD_OK);
    unique_v4(addr, sizeof(addr));
    fresh_window(10, 5);
    CHECK(pthread_barrier_init(&barrier, NULL, 50) == 0);
    for (int i = 0; i < 50; i++) {
        p[i] = (struct par){.rl = rl, .addr = addr, .barrier = &barrier};
        CHECK(pthread_create(&th[i], NULL, par_main, &p[i]) == 0);
    }
    for (int i = 0; i < 50; i++) {
        pthread_join(th[i], NULL);
        passed += p[i].passed;
        limited += p[i].limited;
    }
    pthread_barrier_destroy(&barrier);
    printf("exact: passed=%d limited=%d degraded=%d\n", passed, limited, ratelimit_degraded(rl));
    CHECK(!ratelimit_degraded(rl));
    CHECK(passed == 10);
    CHECK(limited == 40);
    ratelimit_free(rl);
}

struct lease_par {
    ratelimit *rl;
    const char *addr;
    int hits;
    int passed;
};

static void *lease_par_main(void *arg)
{
    struct lease_par *p = arg;
    unsigned retry = 0;

    for (int i = 0; i < p->hits; i++)
        if (hit(p->rl, p->addr, &retry) == CD_OK)
            p->passed++;
    return NULL;
}

/* Leases (limit 6400: up to 100 requests per memcached increment). One
 * instance: exactly the limit passes. Two instances sharing memcached, taking
 * turns and then in parallel: never more than the limit, and fewer by at most
 * one lease each (a lease not used up when the window ends). The script
 * checks memcached's increment count around the first part. */
static void cmd_lease(const char *servers, const char *phase)
{
    enum { LIMIT = 6400, LEASE = 100, THREADS = 16, PER_THREAD = 500 };
    struct ratelimit_config cfg;
    ratelimit *a = NULL, *b = NULL;
    char addr[32];
    unsigned retry = 0;
    int passed = 0;

    config(&cfg, servers, LIMIT, 60);
    cfg.pool_size = 8;
    CHECK(ratelimit_new(&cfg, kr, &a) == CD_OK);
    CHECK(ratelimit_new(&cfg, kr, &b) == CD_OK);
    fresh_window(60, 10);
    if (strcmp(phase, "one") == 0) {
        unique_v4(addr, sizeof(addr));
        for (int i = 0; i < LIMIT; i++)
            CHECK(hit(a, addr, &retry) == CD_OK);
        CHECK(hit(a, addr, &retry) == CD_ERR_LIMITED && retry >= 1 && retry <= 60);
        CHECK(hit(a, addr, &retry) == CD_ERR_LIMITED);
        printf("lease one: %d passed\n", LIMIT);
    } else {
        unique_v4(addr, sizeof(addr));
        for (int i = 0; i < LIMIT + 1600; i++)
            passed += hit(i % 2 == 0 ? a : b, addr, &retry) == CD_OK;
        printf("lease two, taking turns: passed=%d of limit %d\n", passed, LIMIT);
        CHECK(passed <= LIMIT && passed >= LIMIT - 2 * LEASE);

        pthread_t th[THREADS];
        struct lease_par p[THREADS];

        unique_v4(addr, sizeof(addr));
        passed = 0;
        for (int i = 0; i < THREADS; i++) {
            p[i] = (struct lease_par){.rl = i % 2 == 0 ? a : b, .addr = addr, .hits = PER_THREAD};
            CHECK(pthread_create(&th[i], NULL, lease_par_main, &p[i]) == 0);
        }
        for (int i = 0; i < THREADS; i++) {
            pthread_join(th[i], NULL);
            passed += p[i].passed;
        }
        printf("lease two, %d threads: passed=%d of limit %d\n", THREADS, passed, LIMIT);
        CHECK(passed <= LIMIT && passed >= LIMIT - 2 * LEASE);
    }
    CHECK(!ratelimit_degraded(a) && !ratelimit_degraded(b));
    ratelimit_free(a);
    ratelimit_free(b);
}

/* Window of 2 s: limit 3, the 4th is refused until the next window. */
static void cmd_window(const char *servers)
{
    struct ratelimit_config cfg;
    ratelimit *rl = NULL;
    char addr[32];
    unsigned retry = 0;

    config(&cfg, servers, 3, 2);
    CHECK(ratelimit_new(&cfg, kr, &rl) == CD_OK);
    unique_v4(addr, sizeof(addr));
    fresh_window(2, 2); /* at the very start of a window */
    for (int i = 0; i < 3; i++)
        CHECK(hit(rl, addr, &retry) == CD_OK);
    CHECK(hit(rl, addr, &retry) == CD_ERR_LIMITED);
    CHECK(retry >= 1 && retry <= 2);
    sleep_ms(retry * 1000 + 100);
    CHECK(hit(rl, addr, &retry) == CD_OK);
    CHECK(!ratelimit_degraded(rl));
    printf("window: ok\n");
    ratelimit_free(rl);
}

/* IPv4 and IPv6 keys are distinct; addresses of one /64 share a counter. */
static void cmd_keys(const char *servers)
{
    struct ratelimit_config cfg;
    ratelimit *rl = NULL;
    unsigned retry = 0;
    unsigned char r[2];
    char v4[32], v6a[64], v6b[64], v6c[64], mapped[64];

    config(&cfg, servers, 1, 60);
    CHECK(ratelimit_new(&cfg, kr, &rl) == CD_OK);
    crypto_random(r, sizeof(r));
    snprintf(v4, sizeof(v4), "192.0.2.%u", r[0]);
    snprintf(v6a, sizeof(v6a), "2001:db8:%x:%x::1", r[0], r[1]);
    snprintf(v6b, sizeof(v6b), "2001:db8:%x:%x:ffff:1:2:3", r[0], r[1]);
    snprintf(v6c, sizeof(v6c), "2001:db8:%x:%x::1", r[0], (r[1] + 1) & 0xff);
    snprintf(mapped, sizeof(mapped), "::ffff:%s", v4);
    fresh_window(60, 5);
    CHECK(hit(rl, v4, &retry) == CD_OK);
    CHECK(hit(rl, v6a, &retry) == CD_OK);
    CHECK(hit(rl, v6b, &retry) == CD_ERR_LIMITED);    /* same /64 as v6a */
    CHECK(hit(rl, v6c, &retry) == CD_OK);             /* another /64 */
    CHECK(hit(rl, mapped, &retry) == CD_ERR_LIMITED); /* counts as v4 */
    CHECK(!ratelimit_degraded(rl));
    printf("keys: ok\n");
    ratelimit_free(rl);
}

/* Hits fixed documentation addresses (the script then looks for them in a
 * metadump) and many clients (keys spread over all servers). */
static void cmd_spread(const char *servers)
{
    struct ratelimit_config cfg;
    ratelimit *rl = NULL;
    unsigned retry = 0;
    char addr[64];

    config(&cfg, servers, 100, 600);
    CHECK(ratelimit_new(&cfg, kr, &rl) == CD_OK);
    CHECK(hit(rl, "198.51.100.77", &retry) == CD_OK);
    CHECK(hit(rl, "2001:db8:beef:cafe::77", &retry) == CD_OK);
    for (int i = 0; i < 64; i++) {
        snprintf(addr, sizeof(addr), "203.0.113.%d", i);
        CHECK(hit(rl, addr, &retry) == CD_OK);
    }
    ratelimit_login_failed(rl, "carol@example.org", 17);
    CHECK(!ratelimit_degraded(rl));
    printf("spread: ok\n");
    ratelimit_free(rl);
}

static bool wait_file(const char *path, unsigned timeout_ms)
{
    struct stat st;

    for (unsigned t = 0; t < timeout_ms; t += 50) {
        if (stat(path, &st) == 0)
            return true;
        sleep_ms(50);
    }
    return false;
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fclose(f);
}

/* Outage: the script stops memcached when DIR/ready1 appears and creates
 * DIR/stopped; restarts it when DIR/ready2 appears and creates DIR/restarted. */
static void cmd_outage(const char *servers, const char *dir)
{
    struct ratelimit_config cfg;
    ratelimit *rl = NULL, *rej = NULL;
    char addr[32], addr2[32], path[512];
    unsigned retry = 0;
    int passed = 0;
    bool back = false;

    config(&cfg, servers, 3, 20);
    CHECK(ratelimit_new(&cfg, kr, &rl) == CD_OK);
    cfg.on_unavailable = RATELIMIT_FALLBACK_REJECT;
    CHECK(ratelimit_new(&cfg, kr, &rej) == CD_OK);
    unique_v4(addr, sizeof(addr));
    unique_v4(addr2, sizeof(addr2));
    fresh_window(20, 15);
    CHECK(hit(rl, addr, &retry) == CD_OK);
    CHECK(hit(rej, addr2, &retry) == CD_OK);
    CHECK(!ratelimit_degraded(rl));
    snprintf(path, sizeof(path), "%s/ready1", dir);
    touch(path);
    snprintf(path, sizeof(path), "%s/stopped", dir);
    CHECK(wait_file(path, 20000));

    /* Limiting continues in-process with the same limit. */
    for (int i = 0; i < 5; i++)
        if (hit(rl, addr, &retry) == CD_OK)
            passed++;
    CHECK(ratelimit_degraded(rl));
    CHECK(passed == 3);
    CHECK(hit(rl, addr, &retry) == CD_ERR_LIMITED && retry >= 1);
    CHECK(hit(rej, addr2, &retry) == CD_ERR_UNAVAILABLE);
    CHECK(ratelimit_degraded(rej));
    printf("outage: degraded, %d passed in-process\n", passed);

    snprintf(path, sizeof(path), "%s/ready2", dir);
    touch(path);
    snprintf(path, sizeof(path), "%s/restarted", dir);
    CHECK(wait_file(path, 20000));
    /* Back-off is at most 5 s: within 12 s the limiter must be back. */
    for (int i = 0; i < 60 && !back; i++) {
        char fresh[32];
        unique_v4(fresh, sizeof(fresh));
        (void)hit(rl, fresh, &retry);
        back = !ratelimit_degraded(rl);
        if (!back)
            sleep_ms(200);
    }
    CHECK(back);
    /* The restarted memcached is empty: the client counts from 1 there. */
    CHECK(hit(rl, addr, &retry) == CD_OK);
    for (int i = 0; i < 20 && ratelimit_degraded(rej); i++) {
        (void)hit(rej, addr2, &retry);
        sleep_ms(300);
    }
    CHECK(!ratelimit_degraded(rej));
    printf("outage: back to memcached\n");
    ratelimit_free(rl);
    ratelimit_free(rej);
}

/* Failed logins: limit 2, base 1 s, doubling, max 4 s; success resets. */
static void cmd_login(const char *servers)
{
    struct ratelimit_config cfg;
    ratelimit *rl = NULL;
    unsigned retry = 0;
    char user[32], ghost[32];
    unsigned char r[4];

    config(&cfg, servers, 10, 60);
    CHECK(ratelimit_new(&cfg, kr, &rl) == CD_OK);
    crypto_random(r, sizeof(r));
    snprintf(user, sizeof(user), "user%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
    snprintf(ghost, sizeof(ghost), "nobody%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);

    CHECK(ratelimit_login_check(rl, user, strlen(user), &retry) == CD_OK);
    ratelimit_login_failed(rl, user, strlen(user));
    CHECK(ratelimit_login_check(rl, user, strlen(user), &retry) == CD_OK);
    ratelimit_login_failed(rl, user, strlen(user));
    CHECK(ratelimit_login_check(rl, user, strlen(user), &retry) == CD_ERR_LIMITED);
    CHECK(retry >= 1 && retry <= 1);
    sleep_ms(1100);
    CHECK(ratelimit_login_check(rl, user, strlen(user), &retry) == CD_OK);
    ratelimit_login_failed(rl, user, strlen(user)); /* 3rd: 2 s */
    CHECK(ratelimit_login_check(rl, user, strlen(user), &retry) == CD_ERR_LIMITED);
    CHECK(retry >= 1 && retry <= 2);
    ratelimit_login_failed(rl, user, strlen(user)); /* 4th: 4 s */
    CHECK(ratelimit_login_check(rl, user, strlen(user), &retry) == CD_ERR_LIMITED);
    CHECK(retry >= 3 && retry <= 4);
    ratelimit_login_failed(rl, user, strlen(user)); /* 5th: capped at 4 s */
    CHECK(ratelimit_login_check(rl, user, strlen(user), &retry) == CD_ERR_LIMITED);
    CHECK(retry >= 3 && retry <= 4);
    /* A successful login (after the block) resets the count. */
    ratelimit_login_succeeded(rl, user, strlen(user));
    CHECK(ratelimit_login_check(rl, user, strlen(user), &retry) == CD_OK);
    ratelimit_login_failed(rl, user, strlen(user));
    CHECK(ratelimit_login_check(rl, user, strlen(user), &retry) == CD_OK);
    /* An account that does not exist behaves the same. */
    ratelimit_login_failed(rl, ghost, strlen(ghost));
    ratelimit_login_failed(rl, ghost, strlen(ghost));
    CHECK(ratelimit_login_check(rl, ghost, strlen(ghost), &retry) == CD_ERR_LIMITED);
    CHECK(retry == 1);
    CHECK(!ratelimit_degraded(rl));
    printf("login: ok\n");
    ratelimit_free(rl);
}

/* Attempts counted before verification (ratelimit_login_begin): limit 2,
 * base 1 s, doubling, max 4 s: one attempt passes per block period. */
static void begin_sequence(ratelimit *rl, const char *user)
{
    size_t n = strlen(user);
    unsigned retry = 0;

    CHECK(ratelimit_login_begin(rl, user, n, &retry) == CD_OK);
    CHECK(ratelimit_login_begin(rl, user, n, &retry) == CD_OK); /* 2nd: starts a 1 s block */
    CHECK(ratelimit_login_begin(rl, user, n, &retry) == CD_ERR_LIMITED);
    CHECK(retry == 1);
    CHECK(ratelimit_login_check(rl, user, n, &retry) == CD_ERR_LIMITED);
    sleep_ms(1100);
    CHECK(ratelimit_login_begin(rl, user, n, &retry) == CD_OK); /* 3rd: 2 s */
    CHECK(ratelimit_login_begin(rl, user, n, &retry) == CD_ERR_LIMITED);
    CHECK(retry >= 1 && retry <= 2);
    sleep_ms(2100);
    CHECK(ratelimit_login_begin(rl, user, n, &retry) == CD_OK); /* 4th: 4 s */
    CHECK(ratelimit_login_begin(rl, user, n, &retry) == CD_ERR_LIMITED);
    CHECK(retry >= 3 && retry <= 4);
    /* Refused attempts were not counted: still the 4 s block, not longer. */
    CHECK(ratelimit_login_check(rl, user, n, &retry) == CD_ERR_LIMITED);
    CHECK(retry >= 3 && retry <= 4);
    /* A success resets count and block. */
    ratelimit_login_succeeded(rl, user, n);
    CHECK(ratelimit_login_begin(rl, user, n, &retry) == CD_OK);
    CHECK(ratelimit_login_begin(rl, user, n, &retry) == CD_OK);
    CHECK(ratelimit_login_begin(rl, user, n, &retry) == CD_ERR_LIMITED);
}

struct burst {
    ratelimit *rl;
    const char *user;
    pthread_barrier_t *go;
    cd_err rc;
};

static void *burst_thread(void *arg)
{
    struct burst *b = arg;
    unsigned retry = 0;

    pthread_barrier_wait(b->go);
    b->rc = ratelimit_login_begin(b->rl, b->user, strlen(b->user), &retry);
    if (b->rc == CD_ERR_LIMITED)
        CHECK(retry >= 1);
    return NULL;
}

/* review_4_lockout_concurrent: 64 attempts at once, limit 10: exactly 10 pass. */
static int begin_burst(ratelimit *rl, const char *user)
{
    enum { N = 64 };
    pthread_t t[N];
    struct burst b[N];
    pthread_barrier_t go;
    int passed = 0;

    CHECK(pthread_barrier_init(&go, NULL, N) == 0);
    for (int i = 0; i < N; i++) {
        b[i] = (struct burst){.rl = rl, .user = user, .go = &go};
        CHECK(pthread_create(&t[i], NULL, burst_thread, &b[i]) == 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        if (b[i].rc == CD_OK)
            passed++;
        else
            CHECK(b[i].rc == CD_ERR_LIMITED);
    }
    pthread_barrier_destroy(&go);
    return passed;
}

/* SERVERS, and the unreachable DEAD ("host:port" where nothing listens). */
static void cmd_begin(const char *servers, const char *dead)
{
    struct ratelimit_config cfg;
    ratelimit *rl = NULL;
    char user[32], ghost[32];
    unsigned char r[4];
    int passed;

    crypto_random(r, sizeof(r));
    snprintf(user, sizeof(user), "begin%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
    snprintf(ghost, sizeof(ghost), "ghost%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
    config(&cfg, servers, 1000, 60);
    CHECK(ratelimit_new(&cfg, kr, &rl) == CD_OK);
    begin_sequence(rl, user);
    CHECK(!ratelimit_degraded(rl));
    ratelimit_free(rl);
    printf("begin: sequence ok\n");

    /* memcached, in-process only, and an unreachable server (fallback). */
    for (int mode = 0; mode < 3; mode++) {
        config(&cfg, mode == 0 ? servers : mode == 2 ? dead : "", 1000, 60);
        cfg.io_timeout_ms = 5000;
        cfg.pool_size = 8;
        cfg.login_fail_limit = 10;
        cfg.login_block_base_s = 60;
        cfg.login_block_max_s = 600;
        CHECK(ratelimit_new(&cfg, kr, &rl) == CD_OK);
        passed = begin_burst(rl, mode == 1 ? user : ghost);
        printf("begin: burst %s: %d of 64 passed\n",
               mode == 0   ? "memcached"
               : mode == 1 ? "in-process"
                           : "fallback",
               passed);
        CHECK(passed == 10);
        CHECK(mode != 2 || ratelimit_degraded(rl));
        ratelimit_free(rl);
        /* the next mode uses another user: memcached keeps this one's count */
        ghost[0] = (char)('G' + mode);
    }
}

/* A server certificate that does not name server_name is not trusted. */
static void cmd_badname(const char *servers)
{
    struct ratelimit_config cfg;
    ratelimit *rl = NULL;
    unsigned retry = 0;

    config(&cfg, servers, 5, 60);
    cfg.server_name = "not-memcached.example";
    CHECK(ratelimit_new(&cfg, kr, &rl) == CD_OK);
    CHECK(hit(rl, "192.0.2.1", &retry) == CD_OK); /* counted in-process */
    CHECK(ratelimit_degraded(rl));
    printf("badname: refused\n");
    ratelimit_free(rl);
}

int main(int argc, char **argv)
{
    uint8_t mk[CRYPTO_KEY_BYTES];
    const char *certdir, *servers, *cmd;

    if (argc < 4) {
        fprintf(stderr, "usage: %s CERTDIR SERVERS CMD [ARG]\n", argv[0]);
        return 2;
    }
    certdir = argv[1];
    servers = argv[2];
    cmd = argv[3];
    log_init("prog_ratelimit", LOG_LEVEL_INFO);
    snprintf(ca, sizeof(ca), "%s/ca.crt", certdir);
    snprintf(cert, sizeof(cert), "%s/mc-client.crt", certdir);
    snprintf(key, sizeof(key), "%s/mc-client.key", certdir);
    CHECK(crypto_init() == CD_OK);
    memset(mk, 0x42, sizeof(mk)); /* fixed test key: the script recomputes nothing */
    CHECK(crypto_keyring_from_key(mk, 1, &kr) == CD_OK);
    if (strcmp(cmd, "exact") == 0)
        cmd_exact(servers);
    else if (strcmp(cmd, "lease") == 0 && argc == 5)
        cmd_lease(servers, argv[4]);
    else if (strcmp(cmd, "window") == 0)
        cmd_window(servers);
    else if (strcmp(cmd, "keys") == 0)
        cmd_keys(servers);
    else if (strcmp(cmd, "spread") == 0)
        cmd_spread(servers);
    else if (strcmp(cmd, "outage") == 0 && argc == 5)
        cmd_outage(servers, argv[4]);
    else if (strcmp(cmd, "login") == 0)
        cmd_login(servers);
    else if (strcmp(cmd, "begin") == 0 && argc == 5)
        cmd_begin(servers, argv[4]);
    else if (strcmp(cmd, "badname") == 0)
        cmd_badname(servers);
    else {
        fprintf(stderr, "unknown command %s\n", cmd);
        return 2;
    }
    crypto_keyring_free(kr);
    return 0;
}
