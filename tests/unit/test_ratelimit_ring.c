/* test_ratelimit_ring.c: consistent hashing, the in-process fallback counters,
 * address normalisation and the limiter without memcached. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "crypto/crypto.h"
#include "ratelimit/local.h"
#include "ratelimit/ratelimit.h"
#include "ratelimit/ring.h"

#define N_KEYS 30000

static uint64_t rng_state = 0x1234567887654321ULL;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void random_key(uint8_t key[CRYPTO_HASH_BYTES])
{
    for (size_t i = 0; i < CRYPTO_HASH_BYTES; i += 8) {
        uint64_t v = rng_next();
        memcpy(key + i, &v, 8);
    }
}

static const char *const names[] = {"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211",
                                    "10.0.0.4:11211"};

static void test_ring_distribution(void **state)
{
    ratelimit_ring *ring = NULL;
    size_t counts[3] = {0};
    uint8_t key[CRYPTO_HASH_BYTES];

    (void)state;
    assert_int_equal(ratelimit_ring_new(names, 3, &ring), CD_OK);
    for (int i = 0; i < N_KEYS; i++) {
        random_key(key);
        size_t s = ratelimit_ring_lookup(ring, key, sizeof(key));
        assert_true(s < 3);
        counts[s]++;
    }
    for (int s = 0; s < 3; s++) {
        /* Ideal 1/3; 160 virtual nodes keep each share well within this. */
        assert_true(counts[s] > N_KEYS * 20 / 100);
        assert_true(counts[s] < N_KEYS * 47 / 100);
    }
    ratelimit_ring_free(ring);
}

static void test_ring_add_node_moves_few_keys(void **state)
{
    ratelimit_ring *r3 = NULL, *r4 = NULL;
    uint8_t key[CRYPTO_HASH_BYTES];
    size_t moved = 0;

    (void)state;
    assert_int_equal(ratelimit_ring_new(names, 3, &r3), CD_OK);
    assert_int_equal(ratelimit_ring_new(names, 4, &r4), CD_OK);
    for (int i = 0; i < N_KEYS; i++) {
        random_key(key);
        size_t a = ratelimit_ring_lookup(r3, key, sizeof(key));
        size_t b = ratelimit_ring_lookup(r4, key, sizeof(key));
        if (a != b) {
            /* A key only ever moves to the new node. */
            assert_int_equal(b, 3);
            moved++;
        }
    }
    /* Ideal 1/(n+1) = 25%. */
    assert_true(moved > N_KEYS * 15 / 100);
    assert_true(moved < N_KEYS * 35 / 100);
    ratelimit_ring_free(r3);
    ratelimit_ring_free(r4);
}

static void test_ring_invalid(void **state)
{
    ratelimit_ring *ring = NULL;
    const char *bad[] = {NULL};

    (void)state;
    assert_int_equal(ratelimit_ring_new(names, 0, &ring), CD_ERR_INVALID);
    assert_int_equal(ratelimit_ring_new(bad, 1, &ring), CD_ERR_INVALID);
    assert_null(ring);
    ratelimit_ring_free(NULL);
}

static void test_local_counter_and_expiry(void **state)
{
    ratelimit_local *t = NULL;
    uint8_t k1[CRYPTO_HASH_BYTES], k2[CRYPTO_HASH_BYTES];
    uint64_t v = 0;
    int64_t exp = 0;

    (void)state;
    random_key(k1);
    random_key(k2);
    assert_int_equal(ratelimit_local_new(1024, &t), CD_OK);
    for (uint64_t i = 1; i <= 5; i++)
        assert_int_equal(ratelimit_local_incr(t, RATELIMIT_LOCAL_HITS, k1, 7, 100, 110, false), i);
    /* Another key, tag or kind is another counter. */
    assert_int_equal(ratelimit_local_incr(t, RATELIMIT_LOCAL_HITS, k2, 7, 100, 110, false), 1);
    assert_int_equal(ratelimit_local_incr(t, RATELIMIT_LOCAL_HITS, k1, 8, 100, 110, false), 1);
    assert_int_equal(ratelimit_local_incr(t, RATELIMIT_LOCAL_FAILS, k1, 7, 100, 110, false), 1);
    /* Just before expiry the counter lives on, at expiry it starts over. */
    assert_int_equal(ratelimit_local_incr(t, RATELIMIT_LOCAL_HITS, k1, 7, 109, 110, false), 6);
    assert_true(ratelimit_local_get(t, RATELIMIT_LOCAL_HITS, k1, 7, 109, &v, &exp));
    assert_int_equal(v, 6);
    assert_int_equal(exp, 110);
    assert_false(ratelimit_local_get(t, RATELIMIT_LOCAL_HITS, k1, 7, 110, &v, &exp));
    assert_int_equal(ratelimit_local_incr(t, RATELIMIT_LOCAL_HITS, k1, 7, 110, 120, false), 1);
    /* refresh moves the expiry. */
    assert_int_equal(ratelimit_local_incr(t, RATELIMIT_LOCAL_FAILS, k2, 0, 100, 200, true), 1);
    assert_int_equal(ratelimit_local_incr(t, RATELIMIT_LOCAL_FAILS, k2, 0, 150, 250, true), 2);
    assert_true(ratelimit_local_get(t, RATELIMIT_LOCAL_FAILS, k2, 0, 220, &v, NULL));
    assert_int_equal(v, 2);
    /* set and del. */
    ratelimit_local_set(t, RATELIMIT_LOCAL_BLOCK, k2, 0, 1, 100, 130);
    assert_true(ratelimit_local_get(t, RATELIMIT_LOCAL_BLOCK, k2, 0, 129, NULL, &exp));
    assert_int_equal(exp, 130);
    ratelimit_local_del(t, RATELIMIT_LOCAL_BLOCK, k2, 0);
    assert_false(ratelimit_local_get(t, RATELIMIT_LOCAL_BLOCK, k2, 0, 101, NULL, NULL));
    ratelimit_local_free(t);
}

static void test_local_bounded_evicts_oldest(void **state)
{
    ratelimit_local *t = NULL;
    uint8_t key[CRYPTO_HASH_BYTES], last[CRYPTO_HASH_BYTES];

    (void)state;
    assert_int_equal(ratelimit_local_new(1, &t), CD_OK); /* rounded up to 32 slots */
    for (int64_t i = 0; i < 1000; i++) {
        random_key(key);
        assert_int_equal(ratelimit_local_incr(t, RATELIMIT_LOCAL_HITS, key, 0, i, 100000, false),
                         1);
        memcpy(last, key, sizeof(key));
    }
    assert_true(ratelimit_local_count(t, 1000) <= 2 * RATELIMIT_LOCAL_NEIGHBOURHOOD);
    /* The newest entry survived; expired ones are not counted. */
    assert_true(ratelimit_local_get(t, RATELIMIT_LOCAL_HITS, last, 0, 1000, NULL, NULL));
    assert_int_equal(ratelimit_local_count(t, 100000), 0);
    ratelimit_local_free(t);
}

static void addr_of(const char *text, uint8_t out[16], size_t *n)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;

    assert_int_equal(ratelimit_parse_addr(text, &ss, &len), CD_OK);
    assert_int_equal(ratelimit_addr_bytes((struct sockaddr *)&ss, len, out, n), CD_OK);
}

static void test_addr_normalisation(void **state)
{
    uint8_t a[16], b[16];
    size_t na = 0, nb = 0;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    (void)state;
    addr_of("192.0.2.7", a, &na);
    assert_int_equal(na, 4);
    assert_memory_equal(a, "\xc0\x00\x02\x07", 4);
    /* Two addresses of one /64 share their bytes; another /64 does not. */
    addr_of("2001:db8:1:2::1", a, &na);
    addr_of("2001:db8:1:2:ffff:eeee:dddd:cccc", b, &nb);
    assert_int_equal(na, 8);
    assert_int_equal(nb, 8);
    assert_memory_equal(a, b, 8);
    addr_of("2001:db8:1:3::1", b, &nb);
    assert_memory_not_equal(a, b, 8);
    /* An IPv4-mapped address counts as its IPv4 address. */
    addr_of("::ffff:192.0.2.7", a, &na);
    addr_of("192.0.2.7", b, &nb);
    assert_int_equal(na, 4);
    assert_memory_equal(a, b, 4);
    /* Invalid input. */
    assert_int_equal(ratelimit_parse_addr("", &ss, &len), CD_ERR_INVALID);
    assert_int_equal(ratelimit_parse_addr("192.0.2.256", &ss, &len), CD_ERR_INVALID);
    assert_int_equal(ratelimit_parse_addr("fe80::1%eth0", &ss, &len), CD_ERR_INVALID);
    assert_int_equal(ratelimit_parse_addr(" 192.0.2.1", &ss, &len), CD_ERR_INVALID);
    assert_int_equal(ratelimit_parse_addr("localhost", &ss, &len), CD_ERR_INVALID);
    assert_int_equal(ratelimit_addr_bytes((struct sockaddr *)&sun, sizeof(sun), a, &na),
                     CD_ERR_INVALID);
    addr_of("192.0.2.7", a, &na);
    assert_int_equal(ratelimit_parse_addr("192.0.2.7", &ss, &len), CD_OK);
    assert_int_equal(ratelimit_addr_bytes((struct sockaddr *)&ss, 4, a, &na), CD_ERR_INVALID);
}

static crypto_keyring *test_keyring(void)
{
    uint8_t key[CRYPTO_KEY_BYTES];
    crypto_keyring *kr = NULL;

    memset(key, 0x5a, sizeof(key));
    assert_int_equal(crypto_init(), CD_OK);
    assert_int_equal(crypto_keyring_from_key(key, 1, &kr), CD_OK);
    return kr;
}

static void test_local_only_limiter(void **state)
{
    crypto_keyring *kr = test_keyring();
    struct ratelimit_config cfg = {.limit = 5,
                                   .window_s = 3600,
                                   .login_fail_limit = 3,
                                   .login_block_base_s = 10,
                                   .login_block_max_s = 35};
    ratelimit *rl = NULL;
    struct sockaddr_storage a, b;
    socklen_t alen = 0, blen = 0;
    unsigned retry = 0;
    int passed = 0;

    (void)state;
    assert_int_equal(ratelimit_new(&cfg, kr, &rl), CD_OK);
    assert_false(ratelimit_degraded(rl));
    assert_int_equal(ratelimit_parse_addr("198.51.100.1", &a, &alen), CD_OK);
    assert_int_equal(ratelimit_parse_addr("198.51.100.2", &b, &blen), CD_OK);
    time_t before = time(NULL);
    for (int i = 0; i < 8; i++)
        if (ratelimit_hit(rl, (struct sockaddr *)&a, alen, &retry) == CD_OK)
            passed++;
    /* Unless the hour-long window rolled over mid-loop, exactly 5 passed. */
    if (before / 3600 == time(NULL) / 3600)
        assert_int_equal(passed, 5);
    assert_int_equal(ratelimit_hit(rl, (struct sockaddr *)&b, blen, &retry), CD_OK);
    if (ratelimit_hit(rl, (struct sockaddr *)&a, alen, &retry) == CD_ERR_LIMITED)
        assert_true(retry >= 1 && retry <= 3600);

    /* Failed logins: blocked after 3, for 10 s, then 20, then capped at 35. */
    assert_int_equal(ratelimit_login_check(rl, "alice", 5, &retry), CD_OK);
    ratelimit_login_failed(rl, "alice", 5);
    ratelimit_login_failed(rl, "alice", 5);
    assert_int_equal(ratelimit_login_check(rl, "alice", 5, &retry), CD_OK);
    ratelimit_login_failed(rl, "alice", 5);
    assert_int_equal(ratelimit_login_check(rl, "alice", 5, &retry), CD_ERR_LIMITED);
    assert_true(retry >= 9 && retry <= 10);
    ratelimit_login_failed(rl, "alice", 5);
    assert_int_equal(ratelimit_login_check(rl, "alice", 5, &retry), CD_ERR_LIMITED);
    assert_true(retry >= 19 && retry <= 20);
    ratelimit_login_failed(rl, "alice", 5);
    assert_int_equal(ratelimit_login_check(rl, "alice", 5, &retry), CD_ERR_LIMITED);
    assert_true(retry >= 34 && retry <= 35);
    /* Another account is unaffected; success resets. */
    assert_int_equal(ratelimit_login_check(rl, "bob", 3, &retry), CD_OK);
    ratelimit_login_succeeded(rl, "alice", 5);
    assert_int_equal(ratelimit_login_check(rl, "alice", 5, &retry), CD_OK);
    ratelimit_login_failed(rl, "alice", 5);
    assert_int_equal(ratelimit_login_check(rl, "alice", 5, &retry), CD_OK);
    ratelimit_free(rl);
    crypto_keyring_free(kr);
}

/* ratelimit_local_add stores only when no live entry exists. */
static void test_local_add(void **state)
{
    ratelimit_local *t = NULL;
    uint8_t k[CRYPTO_HASH_BYTES];
    uint64_t v = 0;

    (void)state;
    memset(k, 0x33, sizeof(k));
    assert_int_equal(ratelimit_local_new(64, &t), CD_OK);
    assert_true(ratelimit_local_add(t, RATELIMIT_LOCAL_BLOCK, k, 0, 1, 100, 110));
    assert_false(ratelimit_local_add(t, RATELIMIT_LOCAL_BLOCK, k, 0, 2, 105, 200));
    assert_true(ratelimit_local_get(t, RATELIMIT_LOCAL_BLOCK, k, 0, 105, &v, NULL));
    assert_int_equal(v, 1);
    /* expired: added again */
    assert_true(ratelimit_local_add(t, RATELIMIT_LOCAL_BLOCK, k, 0, 2, 110, 120));
    assert_true(ratelimit_local_get(t, RATELIMIT_LOCAL_BLOCK, k, 0, 111, &v, NULL));
    assert_int_equal(v, 2);
    /* incr_by and take (attempts owed to memcached) */
    assert_int_equal(ratelimit_local_incr_by(t, RATELIMIT_LOCAL_OWED, k, 0, 3, 100, 200, true), 3);
    assert_int_equal(ratelimit_local_incr_by(t, RATELIMIT_LOCAL_OWED, k, 0, 2, 101, 200, true), 5);
    assert_int_equal(ratelimit_local_take(t, RATELIMIT_LOCAL_OWED, k, 0, 102), 5);
    assert_int_equal(ratelimit_local_take(t, RATELIMIT_LOCAL_OWED, k, 0, 102), 0);
    ratelimit_local_free(t);
}

/* review_4_lockout_concurrent (in-process): attempts are counted before the
 * verification; from the limit on, one attempt passes per block period. */
static void test_login_begin_local(void **state)
{
    crypto_keyring *kr = test_keyring();
    struct ratelimit_config cfg = {.limit = 5,
                                   .window_s = 3600,
                                   .login_fail_limit = 3,
                                   .login_block_base_s = 10,
                                   .login_block_max_s = 35};
    ratelimit *rl = NULL;
    unsigned retry = 0;

    (void)state;
    assert_int_equal(ratelimit_new(&cfg, kr, &rl), CD_OK);
    assert_int_equal(ratelimit_login_begin(rl, "dave", 4, &retry), CD_OK);
    assert_int_equal(ratelimit_login_begin(rl, "dave", 4, &retry), CD_OK);
    /* the 3rd attempt passes and is already covered by a block */
    assert_int_equal(ratelimit_login_begin(rl, "dave", 4, &retry), CD_OK);
    assert_int_equal(ratelimit_login_check(rl, "dave", 4, &retry), CD_ERR_LIMITED);
    assert_true(retry >= 9 && retry <= 10);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ratelimit_login_begin(rl, "dave", 4, &retry), CD_ERR_LIMITED);
        assert_true(retry >= 9 && retry <= 10);
    }
    /* another name is unaffected; a success resets */
    assert_int_equal(ratelimit_login_begin(rl, "erin", 4, &retry), CD_OK);
    ratelimit_login_succeeded(rl, "dave", 4);
    assert_int_equal(ratelimit_login_begin(rl, "dave", 4, &retry), CD_OK);
    assert_int_equal(ratelimit_login_begin(rl, "dave", 4, &retry), CD_OK);
    assert_int_equal(ratelimit_login_begin(rl, "dave", 4, &retry), CD_OK);
    assert_int_equal(ratelimit_login_begin(rl, "dave", 4, &retry), CD_ERR_LIMITED);
    ratelimit_free(rl);
    crypto_keyring_free(kr);
}

static void test_config_rejected(void **state)
{
    crypto_keyring *kr = test_keyring();
    struct ratelimit_config cfg = {.limit = 0, .window_s = 60};
    ratelimit *rl = NULL;

    (void)state;
    assert_int_equal(ratelimit_new(&cfg, kr, &rl), CD_ERR_CONFIG);
    cfg.limit = 10;
    cfg.window_s = 0;
    assert_int_equal(ratelimit_new(&cfg, kr, &rl), CD_ERR_CONFIG);
    cfg.window_s = 60;
    cfg.n_servers = 1;
    cfg.servers[0] = "127.0.0.1:11211"; /* no TLS files */
    assert_int_equal(ratelimit_new(&cfg, kr, &rl), CD_ERR_CONFIG);
    cfg.tls_ca = cfg.tls_cert = cfg.tls_key = "/nonexistent";
    cfg.servers[0] = "127.0.0.1"; /* no port */
    assert_int_equal(ratelimit_new(&cfg, kr, &rl), CD_ERR_CONFIG);
    cfg.servers[0] = "127.0.0.1:11211"; /* unreadable TLS files */
    assert_int_equal(ratelimit_new(&cfg, kr, &rl), CD_ERR_CONFIG);
    assert_null(rl);
    /* lockout servers need rate-limit servers */
    cfg.n_servers = 0;
    cfg.n_lockout_servers = 1;
    cfg.lockout_servers[0] = "127.0.0.1:11212";
    assert_int_equal(ratelimit_new(&cfg, kr, &rl), CD_ERR_CONFIG);
    assert_null(rl);
    ratelimit_free(NULL);
    crypto_keyring_free(kr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_distribution),
        cmocka_unit_test(test_ring_add_node_moves_few_keys),
        cmocka_unit_test(test_ring_invalid),
        cmocka_unit_test(test_local_counter_and_expiry),
        cmocka_unit_test(test_local_bounded_evicts_oldest),
        cmocka_unit_test(test_addr_normalisation),
        cmocka_unit_test(test_local_only_limiter),
        cmocka_unit_test(test_local_add),
        cmocka_unit_test(test_login_begin_local),
        cmocka_unit_test(test_config_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
