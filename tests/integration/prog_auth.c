/* prog_auth.c: the auth module against a real MariaDB: login, the credential
 * cache (hits, expiry, invalidation on password change, recovery and deletion,
 * also across two "replicas" sharing one database), equal treatment of unknown
 * users and wrong passwords, and the bound on concurrent Argon2id. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "auth/auth_test.h"
#include "crypto/crypto.h"
#include "storage/db.h"

static char ca[512], cert[512], key[512];
static db_pool *db;
static crypto_keyring *kr;

static void creds(struct auth_credentials *c, const char *u, const char *p)
{
    memset(c, 0, sizeof(*c));
    c->user_len = strlen(u);
    memcpy(c->user, u, c->user_len);
    c->pass_len = strlen(p);
    memcpy(c->pass, p, c->pass_len);
}

static auth *new_auth(unsigned ttl)
{
    struct auth_config cfg = {
        .pwparams = {2, 19456u * 1024u},
        .max_concurrent_hashes = 2,
        .hash_wait_ms = 20000,
        .cache_entries = 64,
        .cache_ttl_s = ttl,
    };
    auth *a = NULL;
    assert_int_equal(auth_new(&cfg, kr, db, NULL, &a), CD_OK);
    return a;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Times one login; returns its result. */
static cd_err timed_login(auth *a, const char *u, const char *p, double *ms)
{
    struct auth_credentials c;
    struct auth_principal pr;
    unsigned retry;
    double t0 = now_ms();
    cd_err rc;

    creds(&c, u, p);
    rc = auth_login(a, &c, &pr, &retry, NULL);
    *ms = now_ms() - t0;
    auth_principal_wipe(&pr);
    return rc;
}

static int setup(void **state)
{
    const char *port = getenv("CONFIDOC_TEST_DB_PORT"), *dir = getenv("CONFIDOC_TEST_CERTS");
    uint8_t mk[CRYPTO_KEY_BYTES];
    (void)state;
    if (port == NULL || dir == NULL)
        return -1;
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    snprintf(cert, sizeof(cert), "%s/db-client.crt", dir);
    snprintf(key, sizeof(key), "%s/db-client.key", dir);
    struct db_config cfg = {
        .host = "127.0.0.1",
        .port = (unsigned)atoi(port),
        .database = "confidoc",
        .user = "confidoc",
        .tls_ca = ca,
        .tls_cert = cert,
        .tls_key = key,
        .verify_server_name = true,
        .pool_size = 4,
        .connect_timeout_s = 3,
        .io_timeout_s = 10,
        .acquire_timeout_ms = 5000,
    };
    if (crypto_init() != CD_OK || db_pool_new(&cfg, &db) != CD_OK || db_migrate(db) != CD_OK)
        return -1;
    crypto_random(mk, sizeof(mk));
    if (crypto_keyring_from_key(mk, 1, &kr) != CD_OK)
        return -1;
    crypto_wipe(mk, sizeof(mk));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_pool_free(db);
    crypto_keyring_free(kr);
    return 0;
}

static void test_create_login_cache(void **state)
{
    struct auth_credentials c;
    char code[CRYPTO_RECOVERY_CODE_STRLEN];
    double miss, hit, wrong, unknown;
    auth *a = new_auth(2);
    (void)state;

    creds(&c, "cachy", "cachypassword");
    assert_int_equal(auth_create(a, &c, code), CD_OK);
    assert_int_equal(auth_create(a, &c, code), CD_ERR_EXISTS);
    assert_int_equal(timed_login(a, "cachy", "cachypassword", &miss), CD_OK);
    assert_int_equal(timed_login(a, "cachy", "cachypassword", &hit), CD_OK);
    /* A hit skips Argon2id (19 MiB, t=2: several milliseconds). */
    printf("# login miss %.2f ms, hit %.2f ms\n", miss, hit);
    assert_true(hit < miss / 3);
    assert_int_equal(timed_login(a, "cachy", "wrongpassword", &wrong), CD_ERR_AUTH);
    assert_int_equal(timed_login(a, "nobody-here", "wrongpassword", &unknown), CD_ERR_AUTH);
    printf("# wrong password %.2f ms, unknown user %.2f ms\n", wrong, unknown);
    /* Both pay one Argon2id: neither is cache-fast. */
    assert_true(unknown > hit * 3 && wrong > hit * 3);
    /* Expiry: after the TTL the next login pays Argon2id again. */
    sleep(3);
    assert_int_equal(timed_login(a, "cachy", "cachypassword", &miss), CD_OK);
    assert_true(miss > hit * 3);
    auth_free(a);
}

static void test_invalidation_across_replicas(void **state)
{
    struct auth_credentials c;
    struct auth_principal p;
    char code[CRYPTO_RECOVERY_CODE_STRLEN], code2[CRYPTO_RECOVERY_CODE_STRLEN];
    unsigned retry;
    double ms;
    auth *a = new_auth(300), *b = new_auth(300);
    (void)state;

    creds(&c, "replicated", "firstpassword");
    assert_int_equal(auth_create(a, &c, code), CD_OK);
    /* Both replicas cache the first password. */
    assert_int_equal(timed_login(a, "replicated", "firstpassword", &ms), CD_OK);
    assert_int_equal(timed_login(b, "replicated", "firstpassword", &ms), CD_OK);
    assert_int_equal(timed_login(b, "replicated", "firstpassword", &ms), CD_OK);

    /* Replica A changes the password: B must refuse the old one at once. */
    assert_int_equal(auth_login(a, &c, &p, &retry, NULL), CD_OK);
    assert_int_equal(auth_change_password(a, &c, &p, "secondpassword", 14), CD_OK);
    auth_principal_wipe(&p);
    assert_int_equal(timed_login(b, "replicated", "firstpassword", &ms), CD_ERR_AUTH);
    assert_int_equal(timed_login(a, "replicated", "firstpassword", &ms), CD_ERR_AUTH);
    assert_int_equal(timed_login(b, "replicated", "secondpassword", &ms), CD_OK);

    /* Recovery with the code from creation: both replicas drop the second password. */
    assert_int_equal(auth_recover(a, "replicated", 10, code, strlen(code), "thirdpassword", 13,
                                  code2, &retry, NULL),
                     CD_OK);
    assert_int_equal(timed_login(b, "replicated", "secondpassword", &ms), CD_ERR_AUTH);
    assert_int_equal(timed_login(b, "replicated", "thirdpassword", &ms), CD_OK);
    /* The code is spent; the new one works once. */
    assert_int_equal(auth_recover(a, "replicated", 10, code, strlen(code), "fourthpassword", 14,
                                  code2 + 0, &retry, NULL),
                     CD_ERR_AUTH);

    /* Deletion on A: B's cached entry stops working. */
    creds(&c, "replicated", "thirdpassword");
    assert_int_equal(auth_login(a, &c, &p, &retry, NULL), CD_OK);
    assert_int_equal(auth_delete(a, &p), CD_OK);
    auth_principal_wipe(&p);
    assert_int_equal(timed_login(b, "replicated", "thirdpassword", &ms), CD_ERR_AUTH);
    auth_free(a);
    auth_free(b);
}

struct hash_job {
    auth *a;
    cd_err rc;
};

static void *hash_thread(void *arg)
{
    struct hash_job *j = arg;
    double ms;
    j->rc = timed_login(j->a, "nobody-at-all", "somepassword", &ms);
    return NULL;
}

static void test_bounded_hashing(void **state)
{
    enum { N = 8 };
    struct auth_config cfg = {
        .pwparams = {2, 19456u * 1024u},
        .max_concurrent_hashes = 1,
        .hash_wait_ms = 1, /* nobody waits: all but one are refused */
        .cache_entries = 16,
        .cache_ttl_s = 60,
    };
    struct hash_job jobs[N];
    pthread_t t[N];
    int limited = 0;
    auth *a = NULL;
    (void)state;

    assert_int_equal(auth_new(&cfg, kr, db, NULL, &a), CD_OK);
    for (int i = 0; i < N; i++) {
        jobs[i].a = a;
        pthread_create(&t[i], NULL, hash_thread, &jobs[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        if (jobs[i].rc == CD_ERR_LIMITED)
            limited++;
        else
            assert_int_equal(jobs[i].rc, CD_ERR_AUTH);
    }
    printf("# %d of %d concurrent hashes refused with one slot\n", limited, N);
    assert_true(limited >= 1);
    auth_free(a);
}

struct flight_job {
    auth *a;
    pthread_barrier_t *barrier;
    cd_err rc;
};

static void *flight_thread(void *arg)
{
    struct flight_job *j = arg;
    double ms;

    pthread_barrier_wait(j->barrier);
    j->rc = timed_login(j->a, "flighty", "flightypassword", &ms);
    return NULL;
}

/* Many requests with the same credentials and a cold cache (after expiry):
 * one Argon2id, not one each. */
static void test_single_flight(void **state)
{
    enum { N = 16 };
    struct auth_credentials c;
    char code[CRYPTO_RECOVERY_CODE_STRLEN];
    struct flight_job jobs[N];
    pthread_t t[N];
    pthread_barrier_t barrier;
    uint64_t before;
    auth *a = new_auth(60);
    (void)state;

    creds(&c, "flighty", "flightypassword");
    assert_int_equal(auth_create(a, &c, code), CD_OK);
    auth_credentials_wipe(&c);
    before = auth_hash_count(a);
    assert_int_equal(pthread_barrier_init(&barrier, NULL, N), 0);
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct flight_job){.a = a, .barrier = &barrier};
        assert_int_equal(pthread_create(&t[i], NULL, flight_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(jobs[i].rc, CD_OK);
    }
    pthread_barrier_destroy(&barrier);
    printf("# %d concurrent cold logins: %llu Argon2id\n", N,
           (unsigned long long)(auth_hash_count(a) - before));
    assert_int_equal(auth_hash_count(a) - before, 1);
    auth_free(a);
}

static bool count_hook(void *cls)
{
    (*(unsigned *)cls)++;
    return true;
}

/* A hook that gives up: the call must neither wait nor hash. */
static bool refuse_hook(void *cls)
{
    (*(unsigned *)cls)++;
    return false;
}

/* Issue 10, item 4: the hook is an argument of one auth_login call, with
 * that call's cls (it was one process-wide pointer in auth_config): called
 * before an Argon2id (a miss, a wrong password), not for a cache hit. */
static void test_issue10_4_hook_per_call(void **state)
{
    struct auth_credentials c;
    struct auth_principal pr;
    char code[CRYPTO_RECOVERY_CODE_STRLEN];
    unsigned miss = 0, hit = 0, wrong = 0, retry;
    const struct auth_hook hmiss = {count_hook, &miss}, hhit = {count_hook, &hit},
                           hwrong = {count_hook, &wrong};
    auth *a = new_auth(60);
    (void)state;

    creds(&c, "hooky", "hookypassword");
    assert_int_equal(auth_create(a, &c, code), CD_OK);
    assert_int_equal(auth_login(a, &c, &pr, &retry, &hmiss), CD_OK);
    auth_principal_wipe(&pr);
    assert_true(miss >= 1);
    assert_int_equal(auth_login(a, &c, &pr, &retry, &hhit), CD_OK);
    auth_principal_wipe(&pr);
    assert_int_equal(hit, 0);
    assert_int_equal(auth_login(a, &c, &pr, &retry, NULL), CD_OK); /* NULL: no hook */
    auth_principal_wipe(&pr);
    creds(&c, "hooky", "wrongpassword");
    assert_int_equal(auth_login(a, &c, &pr, &retry, &hwrong), CD_ERR_AUTH);
    assert_true(wrong >= 1);
    {
        /* Giving up before the hash: CD_ERR_LIMITED, no Argon2id run, nothing
         * counted as a failed login; a cache hit never asks. */
        unsigned asked = 0;
        const struct auth_hook hrefuse = {refuse_hook, &asked};
        uint64_t hashes = auth_hash_count(a);

        assert_int_equal(auth_login(a, &c, &pr, &retry, &hrefuse), CD_ERR_LIMITED);
        assert_true(asked >= 1);
        assert_int_equal(auth_hash_count(a), hashes);
        creds(&c, "nosuchhooky", "whateverpassword");
        assert_int_equal(auth_login(a, &c, &pr, &retry, &hrefuse), CD_ERR_LIMITED);
        assert_int_equal(auth_hash_count(a), hashes);
        creds(&c, "hooky", "hookypassword");
        asked = 0;
        assert_int_equal(auth_login(a, &c, &pr, &retry, &hrefuse), CD_OK); /* cached */
        auth_principal_wipe(&pr);
        assert_int_equal(asked, 0);
    }
    auth_credentials_wipe(&c);
    auth_free(a);
}

/* The idle TTL moves with use; the max age does not. */
static void test_sliding_ttl(void **state)
{
    struct auth_config cfg = {
        .pwparams = {2, 19456u * 1024u},
        .max_concurrent_hashes = 2,
        .hash_wait_ms = 20000,
        .cache_entries = 64,
        .cache_ttl_s = 3,
        .cache_max_age_s = 7,
    };
    struct auth_credentials c;
    char code[CRYPTO_RECOVERY_CODE_STRLEN];
    uint64_t before;
    double ms;
    auth *a = NULL;
    (void)state;

    assert_int_equal(auth_new(&cfg, kr, db, NULL, &a), CD_OK);
    creds(&c, "slider", "sliderpassword");
    assert_int_equal(auth_create(a, &c, code), CD_OK);
    auth_credentials_wipe(&c);
    before = auth_hash_count(a);
    assert_int_equal(timed_login(a, "slider", "sliderpassword", &ms), CD_OK);
    assert_int_equal(auth_hash_count(a) - before, 1);
    /* Used every second for 5 s, longer than the 3 s idle TTL: still cached. */
    for (int i = 0; i < 5; i++) {
        sleep(1);
        assert_int_equal(timed_login(a, "slider", "sliderpassword", &ms), CD_OK);
    }
    assert_int_equal(auth_hash_count(a) - before, 1);
    /* Still used every second, past the 7 s max age: verified again once. */
    for (int i = 0; i < 4; i++) {
        sleep(1);
        assert_int_equal(timed_login(a, "slider", "sliderpassword", &ms), CD_OK);
    }
    assert_int_equal(auth_hash_count(a) - before, 2);
    /* Idle past the TTL: verified again. */
    sleep(4);
    assert_int_equal(timed_login(a, "slider", "sliderpassword", &ms), CD_OK);
    assert_int_equal(auth_hash_count(a) - before, 3);
    auth_free(a);
}

/* review_6_cache_sweep: an expired entry's secret key is wiped within a
 * second of its expiry, with no request touching the cache meanwhile. */
static void test_review_6_cache_sweep(void **state)
{
    struct auth_credentials c;
    char code[CRYPTO_RECOVERY_CODE_STRLEN];
    double ms, t_login, t_zero = 0;
    auth *a = new_auth(2);
    (void)state;

    creds(&c, "sweepme", "sweeperpassword");
    assert_int_equal(auth_create(a, &c, code), CD_OK);
    auth_credentials_wipe(&c);
    assert_int_equal(auth_test_cache_nonzero_slots(a), 0);
    assert_int_equal(timed_login(a, "sweepme", "sweeperpassword", &ms), CD_OK);
    t_login = now_ms();
    assert_int_equal(auth_test_cache_nonzero_slots(a), 1);
    /* A wrong password adds nothing. */
    assert_int_equal(timed_login(a, "sweepme", "wrongpassword", &ms), CD_ERR_AUTH);
    assert_int_equal(auth_test_cache_nonzero_slots(a), 1);
    /* Not swept before it expires (2 s after the login). */
    while (now_ms() - t_login < 1500)
        usleep(50000);
    assert_int_equal(auth_test_cache_nonzero_slots(a), 1);
    /* Wiped within a second of its expiry. */
    while (now_ms() - t_login < 4000) {
        if (auth_test_cache_nonzero_slots(a) == 0) {
            t_zero = now_ms();
            break;
        }
        usleep(20000);
    }
    printf("cache sweep: wiped %.0f ms after the login (TTL 2000 ms)\n",
           t_zero > 0 ? t_zero - t_login : -1.0);
    assert_true(t_zero > 0);
    assert_true(t_zero - t_login <= 3000.0);
    /* The credential still works (verified again). */
    assert_int_equal(timed_login(a, "sweepme", "sweeperpassword", &ms), CD_OK);
    assert_int_equal(auth_test_cache_nonzero_slots(a), 1);
    auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_login_cache),
        cmocka_unit_test(test_invalidation_across_replicas),
        cmocka_unit_test(test_bounded_hashing),
        cmocka_unit_test(test_single_flight),
        cmocka_unit_test(test_sliding_ttl),
        cmocka_unit_test(test_review_6_cache_sweep),
        cmocka_unit_test(test_issue10_4_hook_per_call),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
