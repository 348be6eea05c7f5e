/* prog_storage.c: cmocka tests of src/storage against a real MariaDB, driven by
 * tests/integration/test_storage.sh.
 *
 * Usage: prog_storage phase1|phase2. Environment: CONFIDOC_DB_HOST, _PORT, _CA,
 * _CERT, _KEY (the confidoc account's client certificate), _ROGUE_CA (a CA that
 * did not sign the server), _OTHER_CERT/_OTHER_KEY (a certificate the account
 * does not accept), _SYNC (a directory for the restart hand-shake of phase2).
 * phase1 runs the functional tests on a fresh database and leaves known data;
 * phase2 runs after the server was killed and restarted: it checks that data,
 * then keeps one pool across a stop/start done by the script. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/db.h"

#define BIG_CONTENT (16u * 1024u * 1024u + CRYPTO_AEAD_OVERHEAD)
#define PERSIST_SEED 0xA5u
#define PERSIST_RECORD 42

static db_pool *pool;

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "prog_storage: %s is not set\n", name);
        exit(2);
    }
    return v;
}

static struct db_config base_config(void)
{
    struct db_config c = {
        .host = env("CONFIDOC_DB_HOST"),
        .port = (unsigned)atoi(env("CONFIDOC_DB_PORT")),
        .database = "confidoc",
        .user = "confidoc",
        .password = NULL,
        .tls_ca = env("CONFIDOC_DB_CA"),
        .tls_cert = env("CONFIDOC_DB_CERT"),
        .tls_key = env("CONFIDOC_DB_KEY"),
        .verify_server_name = true,
        .pool_size = 4,
        .connect_timeout_s = 3,
        .io_timeout_s = 20,
        .acquire_timeout_ms = 10000,
    };
    return c;
}

static int group_setup(void **state)
{
    struct db_config c = base_config();
    (void)state;
    return db_pool_new(&c, &pool) == CD_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    db_pool_free(pool);
    pool = NULL;
    return 0;
}

static void fill(void *p, size_t n, unsigned seed)
{
    uint8_t *b = p;
    uint32_t x = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = (uint8_t)(x >> 16);
    }
}

/* The service's account calls for one username hash (the tests use one
 * keyring version). */
static cd_err user_insert(db_pool *p, struct db_user *u)
{
    return db_user_insert_unique(p, u, (const uint8_t(*)[CRYPTO_HASH_BYTES])u->uname_hash, 1);
}

static cd_err user_by_hash(db_pool *p, const uint8_t h[CRYPTO_HASH_BYTES], struct db_user *out)
{
    return db_user_find(p, (const uint8_t(*)[CRYPTO_HASH_BYTES])h, 1, out);
}

static void make_user(struct db_user *u, unsigned seed)
{
    memset(u, 0, sizeof(*u));
    fill(u->uid, sizeof(u->uid), seed);
    fill(u->uname_hash, sizeof(u->uname_hash), seed + 1000);
    u->mk_version = 1;
    fill(u->pw_salt, sizeof(u->pw_salt), seed + 2000);
    u->pw_opslimit = 3;
    u->pw_memlimit_kib = 65536;
    fill(u->verifier, sizeof(u->verifier), seed + 3000);
    fill(u->public_key, sizeof(u->public_key), seed + 4000);
    fill(u->sk_pw, sizeof(u->sk_pw), seed + 5000);
    fill(u->sk_rc, sizeof(u->sk_rc), seed + 6000);
    u->auth_gen = 0;
}

static void assert_user_equal(const struct db_user *a, const struct db_user *b)
{
    assert_int_equal(a->id, b->id);
    assert_memory_equal(a->uid, b->uid, sizeof(a->uid));
    assert_memory_equal(a->uname_hash, b->uname_hash, sizeof(a->uname_hash));
    assert_int_equal(a->mk_version, b->mk_version);
    assert_memory_equal(a->pw_salt, b->pw_salt, sizeof(a->pw_salt));
    assert_int_equal(a->pw_opslimit, b->pw_opslimit);
    assert_int_equal(a->pw_memlimit_kib, b->pw_memlimit_kib);
    assert_memory_equal(a->verifier, b->verifier, sizeof(a->verifier));
    assert_memory_equal(a->public_key, b->public_key, sizeof(a->public_key));
    assert_memory_equal(a->sk_pw, b->sk_pw, sizeof(a->sk_pw));
    assert_memory_equal(a->sk_rc, b->sk_rc, sizeof(a->sk_rc));
    assert_int_equal(a->sk_escrow_len, b->sk_escrow_len);
    if (a->sk_escrow_len > 0)
        assert_memory_equal(a->sk_escrow, b->sk_escrow, a->sk_escrow_len);
    assert_int_equal(a->auth_gen, b->auth_gen);
}

static uint64_t insert_user(unsigned seed)
{
    struct db_user u;
    make_user(&u, seed);
    assert_int_equal(user_insert(pool, &u), CD_OK);
    assert_true(u.id > 0);
    return u.id;
}

/* A document whose bytes derive from (seed); content of content_len bytes. */
static void make_doc(struct db_doc *d, uint64_t owner, int64_t rec, uint64_t version, unsigned seed,
                     uint8_t *content, size_t content_len)
{
    memset(d, 0, sizeof(*d));
    d->owner_id = owner;
    d->record_id = rec;
    d->version = version;
    fill(d->wrapped_dk, sizeof(d->wrapped_dk), seed);
    d->ctype_ct_len = 10 + CRYPTO_AEAD_OVERHEAD + seed % 50;
    fill(d->ctype_ct, d->ctype_ct_len, seed + 1);
    if (content != NULL)
        fill(content, content_len, seed + 2);
    d->content_ct = content;
    d->content_ct_len = content_len;
    d->size = content_len >= CRYPTO_AEAD_OVERHEAD ? content_len - CRYPTO_AEAD_OVERHEAD : 0;
}

static void assert_doc_equal(const struct db_doc *want, const struct db_doc *got)
{
    assert_int_equal(want->owner_id, got->owner_id);
    assert_int_equal(want->record_id, got->record_id);
    assert_int_equal(want->version, got->version);
    assert_memory_equal(want->wrapped_dk, got->wrapped_dk, sizeof(want->wrapped_dk));
    assert_int_equal(want->ctype_ct_len, got->ctype_ct_len);
    assert_memory_equal(want->ctype_ct, got->ctype_ct, want->ctype_ct_len);
    assert_int_equal(want->size, got->size);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- phase 1 ---- */

static void test_migrate(void **state)
{
    unsigned v = 99;
    (void)state;
    assert_int_equal(db_ping(pool), CD_OK);
    assert_int_equal(db_schema_version(pool, &v), CD_OK);
    assert_int_equal(v, 0); /* fresh database */
    assert_int_equal(db_migrate(pool), CD_OK);
    assert_int_equal(db_schema_version(pool, &v), CD_OK);
    assert_int_equal(v, 3); /* migration 3: issue 14 (two-factor, sessions, app passwords) */
    assert_int_equal(db_migrate(pool), CD_OK); /* idempotent */
    assert_int_equal(db_schema_version(pool, &v), CD_OK);
    assert_int_equal(v, 3);
}

static void test_user(void **state)
{
    struct db_user u, got, dup, upd;
    (void)state;

    make_user(&u, 1);
    u.sk_escrow_len = CRYPTO_ESCROWED_KEY_BYTES;
    fill(u.sk_escrow, u.sk_escrow_len, 77);
    assert_int_equal(user_insert(pool, &u), CD_OK);
    assert_true(u.id > 0);

    memset(&got, 0xEE, sizeof(got));
    assert_int_equal(user_by_hash(pool, u.uname_hash, &got), CD_OK);
    assert_user_equal(&u, &got);

    /* Same username hash, other uid; then same uid, other username hash. */
    make_user(&dup, 2);
    memcpy(dup.uname_hash, u.uname_hash, sizeof(dup.uname_hash));
    dup.id = 12345;
    assert_int_equal(user_insert(pool, &dup), CD_ERR_EXISTS);
    assert_int_equal(dup.id, 12345); /* untouched on error */
    make_user(&dup, 2);
    memcpy(dup.uid, u.uid, sizeof(dup.uid));
    assert_int_equal(user_insert(pool, &dup), CD_ERR_EXISTS);

    /* Unknown hash. */
    make_user(&dup, 3);
    assert_int_equal(user_by_hash(pool, dup.uname_hash, &got), CD_ERR_NOT_FOUND);

    /* Credential change with the right generation, without escrow. */
    upd = u;
    fill(upd.uname_hash, sizeof(upd.uname_hash), 500);
    upd.mk_version = 2;
    fill(upd.pw_salt, sizeof(upd.pw_salt), 501);
    upd.pw_opslimit = 4;
    upd.pw_memlimit_kib = 131072;
    fill(upd.verifier, sizeof(upd.verifier), 502);
    fill(upd.sk_pw, sizeof(upd.sk_pw), 503);
    fill(upd.sk_rc, sizeof(upd.sk_rc), 504);
    upd.sk_escrow_len = 0;
    assert_int_equal(db_user_update_credentials(pool, &upd, 0), CD_OK);
    assert_int_equal(user_by_hash(pool, u.uname_hash, &got), CD_ERR_NOT_FOUND);
    assert_int_equal(user_by_hash(pool, upd.uname_hash, &got), CD_OK);
    upd.auth_gen = 1;
    assert_user_equal(&upd, &got);

    /* A stale generation loses; the row is unchanged. */
    fill(upd.verifier, sizeof(upd.verifier), 600);
    assert_int_equal(db_user_update_credentials(pool, &upd, 0), CD_ERR_CONFLICT);
    assert_int_equal(user_by_hash(pool, got.uname_hash, &dup), CD_OK);
    assert_user_equal(&got, &dup);
    assert_int_equal(db_user_update_credentials(pool, &upd, 1), CD_OK);
    assert_int_equal(user_by_hash(pool, upd.uname_hash, &got), CD_OK);
    assert_int_equal(got.auth_gen, 2);

    /* Taking another account's username hash is a duplicate. */
    make_user(&dup, 4);
    assert_int_equal(user_insert(pool, &dup), CD_OK);
    upd = got;
    memcpy(upd.uname_hash, dup.uname_hash, sizeof(upd.uname_hash));
    assert_int_equal(db_user_update_credentials(pool, &upd, 2), CD_ERR_EXISTS);

    /* Gone accounts. */
    assert_int_equal(db_user_delete(pool, dup.id), CD_OK);
    assert_int_equal(db_user_delete(pool, dup.id), CD_ERR_NOT_FOUND);
    dup.id = 999999999;
    assert_int_equal(db_user_update_credentials(pool, &dup, 0), CD_ERR_NOT_FOUND);

    /* Oversized escrow blob is refused before the database. */
    upd.sk_escrow_len = DB_KEYBLOB_MAX + 1;
    assert_int_equal(db_user_update_credentials(pool, &upd, 2), CD_ERR_INVALID);
    assert_int_equal(db_user_delete(pool, u.id), CD_OK);
}

/* storage_find_all_versions: a lookup by as many username hashes as a keyring
 * has versions (more than any other statement binds) finds the account by
 * the last one, and nothing when none matches; a unique insert checks them
 * all. */
static void test_find_all_versions(void **state)
{
    static uint8_t h[DB_UNAME_HASHES_MAX][CRYPTO_HASH_BYTES];
    struct db_user u, got, dup;
    (void)state;

    make_user(&u, 90);
    assert_int_equal(user_insert(pool, &u), CD_OK);
    for (unsigned i = 0; i < DB_UNAME_HASHES_MAX; i++)
        fill(h[i], sizeof(h[i]), 9000 + i);
    assert_int_equal(
        db_user_find(pool, (const uint8_t(*)[CRYPTO_HASH_BYTES])h, DB_UNAME_HASHES_MAX, &got),
        CD_ERR_NOT_FOUND);
    memcpy(h[DB_UNAME_HASHES_MAX - 1], u.uname_hash, sizeof(u.uname_hash));
    assert_int_equal(
        db_user_find(pool, (const uint8_t(*)[CRYPTO_HASH_BYTES])h, DB_UNAME_HASHES_MAX, &got),
        CD_OK);
    assert_user_equal(&u, &got);
    make_user(&dup, 91);
    assert_int_equal(db_user_insert_unique(pool, &dup, (const uint8_t(*)[CRYPTO_HASH_BYTES])h,
                                           DB_UNAME_HASHES_MAX),
                     CD_ERR_EXISTS);
    assert_int_equal(db_user_delete(pool, u.id), CD_OK);
}

static void test_doc(void **state)
{
    uint64_t owner = insert_user(10), ver = 0;
    uint8_t c1[300], c2[1000];
    struct db_doc d, got, r, stale;
    int64_t before = now_us();
    (void)state;

    make_doc(&d, owner, 7, 1, 20, c1, sizeof(c1));
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 0), CD_OK);
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 0), CD_ERR_EXISTS);

    memset(&got, 0, sizeof(got));
    assert_int_equal(db_doc_read(pool, owner, NULL, 7, SIZE_MAX, &got), CD_OK);
    assert_doc_equal(&d, &got);
    assert_int_equal(got.content_ct_len, sizeof(c1));
    assert_memory_equal(got.content_ct, c1, sizeof(c1));
    assert_true(got.created_us >= before - 60000000 && got.created_us <= now_us() + 60000000);
    assert_int_equal(got.created_us, got.updated_us);
    db_doc_release(&got);
    assert_null(got.content_ct);
    db_doc_release(&got); /* twice is harmless */
    db_doc_release(NULL);

    assert_int_equal(db_doc_version(pool, owner, 7, &ver), CD_OK);
    assert_int_equal(ver, 1);

    /* Replace with the right version. */
    usleep(2000);
    make_doc(&r, owner, 7, 2, 30, c2, sizeof(c2));
    assert_int_equal(db_doc_replace_if_gen(pool, &r, 1, 0), CD_OK);
    assert_int_equal(db_doc_read(pool, owner, NULL, 7, SIZE_MAX, &got), CD_OK);
    assert_doc_equal(&r, &got);
    assert_memory_equal(got.content_ct, c2, sizeof(c2));
    assert_true(got.updated_us > got.created_us);
    db_doc_release(&got);

    /* Stale version: conflict, nothing changes. */
    make_doc(&stale, owner, 7, 2, 40, c1, sizeof(c1));
    assert_int_equal(db_doc_replace_if_gen(pool, &stale, 1, 0), CD_ERR_CONFLICT);
    assert_int_equal(db_doc_read(pool, owner, NULL, 7, SIZE_MAX, &got), CD_OK);
    assert_int_equal(got.version, 2);
    assert_memory_equal(got.content_ct, c2, sizeof(c2));
    db_doc_release(&got);
    /* Version not expected + 1 is a caller bug. */
    stale.version = 5;
    assert_int_equal(db_doc_replace_if_gen(pool, &stale, 2, 0), CD_ERR_INVALID);

    /* Missing documents. */
    make_doc(&stale, owner, 8, 2, 40, c1, sizeof(c1));
    assert_int_equal(db_doc_replace_if_gen(pool, &stale, 1, 0), CD_ERR_NOT_FOUND);
    assert_int_equal(db_doc_read(pool, owner, NULL, 8, SIZE_MAX, &got), CD_ERR_NOT_FOUND);
    assert_int_equal(db_doc_version(pool, owner, 8, &ver), CD_ERR_NOT_FOUND);
    assert_int_equal(db_doc_delete(pool, owner, 8), CD_ERR_NOT_FOUND);
    assert_int_equal(db_doc_read(pool, owner, NULL, -1, SIZE_MAX, &got), CD_ERR_NOT_FOUND);

    /* Empty content round-trips. */
    make_doc(&d, owner, 9, 1, 50, NULL, 0);
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 0), CD_OK);
    assert_int_equal(db_doc_read(pool, owner, NULL, 9, SIZE_MAX, &got), CD_OK);
    assert_int_equal(got.content_ct_len, 0);
    assert_non_null(got.content_ct);
    db_doc_release(&got);

    /* Delete. */
    assert_int_equal(db_doc_delete(pool, owner, 7), CD_OK);
    assert_int_equal(db_doc_delete(pool, owner, 7), CD_ERR_NOT_FOUND);
    assert_int_equal(db_doc_read(pool, owner, NULL, 7, SIZE_MAX, &got), CD_ERR_NOT_FOUND);

    /* Bad input never reaches the server. */
    make_doc(&d, owner, -5, 1, 50, NULL, 0);
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 0), CD_ERR_INVALID);
    make_doc(&d, owner, 5, 1, 50, NULL, 0);
    d.ctype_ct_len = DB_CTYPE_CT_MAX + 1;
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 0), CD_ERR_INVALID);
    assert_int_equal(db_user_delete(pool, owner), CD_OK);
}

struct big_reader {
    db_pool *p;
    uint64_t owner;
    pthread_barrier_t *start;
    cd_err err;
};

static void *big_reader_main(void *arg)
{
    struct big_reader *r = arg;
    struct db_doc got;

    pthread_barrier_wait(r->start);
    r->err = db_doc_read(r->p, r->owner, NULL, 1, SIZE_MAX, &got);
    if (r->err == CD_OK)
        db_doc_release(&got);
    return NULL;
}

/* One connection, 1 ms to get it, four simultaneous 16 MiB reads: the first
 * holds the connection far longer than 1 ms, so the others time out. */
static void check_acquire_timeout(uint64_t owner)
{
    struct db_config c = base_config();
    struct big_reader r[4];
    pthread_t th[4];
    pthread_barrier_t start;
    db_pool *p = NULL;
    int ok = 0, timeouts = 0;

    c.pool_size = 1;
    c.acquire_timeout_ms = 1;
    assert_int_equal(db_pool_new(&c, &p), CD_OK);
    assert_int_equal(db_ping(p), CD_OK); /* connect before the race */
    assert_int_equal(pthread_barrier_init(&start, NULL, 4), 0);
    for (int i = 0; i < 4; i++) {
        r[i] = (struct big_reader){.p = p, .owner = owner, .start = &start};
        assert_int_equal(pthread_create(&th[i], NULL, big_reader_main, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        if (r[i].err == CD_OK)
            ok++;
        else if (r[i].err == CD_ERR_TIMEOUT)
            timeouts++;
    }
    pthread_barrier_destroy(&start);
    db_pool_free(p);
    assert_int_equal(ok + timeouts, 4);
    assert_true(ok >= 1);
    assert_true(timeouts >= 1);
}

/* Warming opens every closed connection once. */
static void test_warm(void **state)
{
    struct db_config c = base_config();
    db_pool *p = NULL;
    unsigned opened = 99;
    (void)state;

    c.pool_size = 3;
    assert_int_equal(db_pool_new(&c, &p), CD_OK);
    assert_int_equal(db_pool_warm(p, &opened), CD_OK);
    assert_int_equal(opened, 3);
    assert_int_equal(db_pool_warm(p, &opened), CD_OK);
    assert_int_equal(opened, 0);
    assert_int_equal(db_ping(p), CD_OK);
    db_pool_free(p);
}

/* The _if_gen forms: the owner's auth_gen is checked in the same statement. */
static void test_doc_if_gen(void **state)
{
    struct db_user u;
    uint8_t c1[200];
    struct db_doc d, got;
    (void)state;

    make_user(&u, 70);
    assert_int_equal(user_insert(pool, &u), CD_OK); /* auth_gen 0 */
    make_doc(&d, u.id, 5, 1, 71, c1, sizeof(c1));
    /* A stale generation inserts nothing. */
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 1), CD_ERR_AUTH);
    assert_int_equal(db_doc_read(pool, u.id, NULL, 5, SIZE_MAX, &got), CD_ERR_NOT_FOUND);
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 0), CD_OK);
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 0), CD_ERR_EXISTS);

    memset(&got, 0, sizeof(got));
    assert_int_equal(db_doc_read(pool, u.id, &(uint32_t){0}, 5, SIZE_MAX, &got), CD_OK);
    assert_doc_equal(&d, &got);
    assert_memory_equal(got.content_ct, c1, sizeof(c1));
    db_doc_release(&got);
    assert_int_equal(db_doc_read(pool, u.id, &(uint32_t){0}, 6, SIZE_MAX, &got), CD_ERR_NOT_FOUND);
    assert_int_equal(db_doc_read(pool, u.id, &(uint32_t){0}, -1, SIZE_MAX, &got), CD_ERR_NOT_FOUND);
    assert_int_equal(db_doc_read(pool, u.id, &(uint32_t){1}, 5, SIZE_MAX, &got), CD_ERR_AUTH);
    assert_int_equal(db_doc_read(pool, u.id, &(uint32_t){1}, 6, SIZE_MAX, &got), CD_ERR_AUTH);

    /* After a credential change the old generation is refused, the new one works. */
    assert_int_equal(db_user_update_credentials(pool, &u, 0), CD_OK); /* auth_gen 1 */
    assert_int_equal(db_doc_read(pool, u.id, &(uint32_t){0}, 5, SIZE_MAX, &got), CD_ERR_AUTH);
    assert_int_equal(db_doc_read(pool, u.id, &(uint32_t){1}, 5, SIZE_MAX, &got), CD_OK);
    db_doc_release(&got);
    make_doc(&d, u.id, 6, 1, 72, c1, sizeof(c1));
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 0), CD_ERR_AUTH);
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 1), CD_OK);

    /* A deleted account: refused, whatever the generation. */
    assert_int_equal(db_user_delete(pool, u.id), CD_OK);
    assert_int_equal(db_doc_read(pool, u.id, &(uint32_t){1}, 5, SIZE_MAX, &got), CD_ERR_AUTH);
    make_doc(&d, u.id, 7, 1, 73, c1, sizeof(c1));
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 1), CD_ERR_AUTH);
}

static void test_doc_large(void **state)
{
    uint64_t owner = insert_user(11);
    uint8_t *big = malloc(BIG_CONTENT);
    struct db_doc d, got;
    (void)state;

    assert_non_null(big);
    make_doc(&d, owner, 1, 1, 60, big, BIG_CONTENT);
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 0), CD_OK);
    memset(&got, 0, sizeof(got));
    assert_int_equal(db_doc_read(pool, owner, NULL, 1, SIZE_MAX, &got), CD_OK);
    assert_int_equal(got.content_ct_len, BIG_CONTENT);
    assert_true(memcmp(got.content_ct, big, BIG_CONTENT) == 0);
    db_doc_release(&got);
    /* And a replacement of the same size. */
    make_doc(&d, owner, 1, 2, 61, big, BIG_CONTENT);
    assert_int_equal(db_doc_replace_if_gen(pool, &d, 1, 0), CD_OK);
    assert_int_equal(db_doc_read(pool, owner, NULL, 1, SIZE_MAX, &got), CD_OK);
    assert_true(got.content_ct_len == BIG_CONTENT && memcmp(got.content_ct, big, BIG_CONTENT) == 0);
    db_doc_release(&got);
    free(big);
    check_acquire_timeout(owner);
    assert_int_equal(db_user_delete(pool, owner), CD_OK);
}

/* db_doc_read sends large content only when asked to; the large lane carries it. */
static void test_doc_read(void **state)
{
    struct db_config c = base_config();
    db_pool *p = NULL;
    struct db_user u;
    uint8_t *big = malloc(200 * 1024), small[100];
    struct db_doc d, got;
    (void)state;

    assert_non_null(big);
    c.pool_size = 1;
    c.large_pool_size = 1;
    assert_int_equal(db_pool_new(&c, &p), CD_OK);
    make_user(&u, 80);
    assert_int_equal(user_insert(p, &u), CD_OK);
    make_doc(&d, u.id, 1, 1, 81, big, 200 * 1024);
    assert_int_equal(db_doc_insert_if_gen(p, &d, 0), CD_OK); /* large lane */
    make_doc(&d, u.id, 2, 1, 82, small, sizeof(small));
    assert_int_equal(db_doc_insert_if_gen(p, &d, 0), CD_OK); /* small lane */

    memset(&got, 0, sizeof(got));
    assert_int_equal(db_doc_read(p, u.id, NULL, 1, DB_INLINE_CONTENT_MAX, &got), CD_ERR_TOO_LARGE);
    assert_null(got.content_ct);
    assert_int_equal(got.content_ct_len, 200 * 1024);
    assert_int_equal(got.version, 1);
    assert_int_equal(got.size, 200 * 1024 - CRYPTO_AEAD_OVERHEAD);
    assert_int_equal(db_doc_read(p, u.id, &u.auth_gen, 1, DB_INLINE_CONTENT_MAX, &got),
                     CD_ERR_TOO_LARGE);
    assert_int_equal(db_doc_read(p, u.id, NULL, 1, SIZE_MAX, &got), CD_OK);
    assert_int_equal(got.content_ct_len, 200 * 1024);
    assert_memory_equal(got.content_ct, big, 200 * 1024);
    db_doc_release(&got);
    assert_int_equal(db_doc_read(p, u.id, &u.auth_gen, 2, DB_INLINE_CONTENT_MAX, &got), CD_OK);
    assert_memory_equal(got.content_ct, small, sizeof(small));
    db_doc_release(&got);
    assert_int_equal(db_doc_read(p, u.id, NULL, 3, DB_INLINE_CONTENT_MAX, &got), CD_ERR_NOT_FOUND);
    u.auth_gen++;
    assert_int_equal(db_doc_read(p, u.id, &u.auth_gen, 1, DB_INLINE_CONTENT_MAX, &got),
                     CD_ERR_AUTH);
    /* Replacing across lanes: large to small and back. */
    make_doc(&d, u.id, 1, 2, 83, small, sizeof(small));
    assert_int_equal(db_doc_replace_if_gen(p, &d, 1, 0), CD_OK);
    assert_int_equal(db_doc_read(p, u.id, NULL, 1, DB_INLINE_CONTENT_MAX, &got), CD_OK);
    db_doc_release(&got);
    make_doc(&d, u.id, 1, 3, 84, big, 200 * 1024);
    assert_int_equal(db_doc_replace_if_gen(p, &d, 2, 0), CD_OK);
    assert_int_equal(db_doc_read(p, u.id, NULL, 1, SIZE_MAX, &got), CD_OK);
    assert_memory_equal(got.content_ct, big, 200 * 1024);
    db_doc_release(&got);
    assert_int_equal(db_user_delete(p, u.id), CD_OK);
    db_pool_free(p);
    free(big);
}

static void test_doc_list(void **state)
{
    uint64_t owner = insert_user(12), other = insert_user(13);
    static const int64_t ids[] = {INT64_MAX, 5, 0, 1000, 3, 1, 999999999999};
    static const int64_t sorted[] = {0, 1, 3, 5, 1000, 999999999999, INT64_MAX};
    struct db_doc d, out[10], got;
    uint8_t c[64];
    size_t n = 99;
    (void)state;

    assert_int_equal(db_doc_list(pool, owner, -1, out, 10, &n), CD_OK);
    assert_int_equal(n, 0);
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        make_doc(&d, owner, ids[i], 1, (unsigned)(100 + i), c, sizeof(c));
        assert_int_equal(db_doc_insert_if_gen(pool, &d, 0), CD_OK);
    }
    /* Same record ids under another owner: never seen by the first. */
    make_doc(&d, other, 3, 1, 200, c, sizeof(c));
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 0), CD_OK);
    make_doc(&d, other, 4, 1, 201, c, sizeof(c));
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 0), CD_OK);

    /* Whole list. */
    assert_int_equal(db_doc_list(pool, owner, -1, out, 10, &n), CD_OK);
    assert_int_equal(n, 7);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(out[i].record_id, sorted[i]);
        assert_int_equal(out[i].owner_id, owner);
        assert_null(out[i].content_ct);
        assert_int_equal(out[i].content_ct_len, 0);
        assert_int_equal(out[i].version, 1);
        assert_true(out[i].created_us > 0);
    }
    /* The listing carries the right ciphertexts. */
    make_doc(&d, owner, 3, 1, 104, c, sizeof(c));
    assert_doc_equal(&d, &out[2]);

    /* Pages of 3. */
    int64_t after = -1;
    size_t seen = 0;
    for (;;) {
        assert_int_equal(db_doc_list(pool, owner, after, out, 3, &n), CD_OK);
        if (n == 0)
            break;
        assert_true(n <= 3);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(out[i].record_id, sorted[seen + i]);
        seen += n;
        after = out[n - 1].record_id;
    }
    assert_int_equal(seen, 7);
    assert_int_equal(db_doc_list(pool, owner, INT64_MAX, out, 3, &n), CD_OK);
    assert_int_equal(n, 0);
    assert_int_equal(db_doc_list(pool, owner, 0, out, 0, &n), CD_OK);
    assert_int_equal(n, 0);

    /* Per-owner isolation and extreme record ids. */
    assert_int_equal(db_doc_read(pool, other, NULL, 3, SIZE_MAX, &got), CD_OK);
    make_doc(&d, other, 3, 1, 200, c, sizeof(c));
    assert_doc_equal(&d, &got);
    db_doc_release(&got);
    assert_int_equal(db_doc_read(pool, other, NULL, 5, SIZE_MAX, &got), CD_ERR_NOT_FOUND);
    assert_int_equal(db_doc_read(pool, owner, NULL, 4, SIZE_MAX, &got), CD_ERR_NOT_FOUND);
    assert_int_equal(db_doc_read(pool, owner, NULL, INT64_MAX, SIZE_MAX, &got), CD_OK);
    assert_int_equal(got.record_id, INT64_MAX);
    db_doc_release(&got);
    assert_int_equal(db_doc_read(pool, owner, NULL, 0, SIZE_MAX, &got), CD_OK);
    db_doc_release(&got);
    assert_int_equal(db_doc_delete(pool, other, 3), CD_OK);
    assert_int_equal(db_doc_read(pool, owner, NULL, 3, SIZE_MAX, &got),
                     CD_OK); /* the other's delete */
    db_doc_release(&got);
    assert_int_equal(db_doc_list(pool, other, -1, out, 10, &n), CD_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].record_id, 4);

    /* Deleting the owner deletes its documents (FK cascade), not the other's. */
    assert_int_equal(db_user_delete(pool, owner), CD_OK);
    assert_int_equal(db_doc_list(pool, owner, -1, out, 10, &n), CD_OK);
    assert_int_equal(n, 0);
    assert_int_equal(db_doc_read(pool, owner, NULL, INT64_MAX, SIZE_MAX, &got), CD_ERR_NOT_FOUND);
    assert_int_equal(db_doc_list(pool, other, -1, out, 10, &n), CD_OK);
    assert_int_equal(n, 1);
    assert_int_equal(db_user_delete(pool, other), CD_OK);
}

struct worker {
    db_pool *p;
    uint64_t owner;
    int idx;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint8_t c[2048];
    struct db_doc d, got;
    uint64_t ver;

    for (int i = 0; i < 25; i++) {
        int64_t rec = w->idx * 1000 + i;
        make_doc(&d, w->owner, rec, 1, (unsigned)rec, c, sizeof(c));
        if (db_doc_insert_if_gen(w->p, &d, 0) != CD_OK)
            w->failures++;
        if (db_doc_read(w->p, w->owner, NULL, rec, SIZE_MAX, &got) != CD_OK) {
            w->failures++;
            continue;
        }
        if (got.content_ct_len != sizeof(c) || memcmp(got.content_ct, c, sizeof(c)) != 0)
            w->failures++;
        db_doc_release(&got);
        make_doc(&d, w->owner, rec, 2, (unsigned)rec + 1, c, sizeof(c));
        if (db_doc_replace_if_gen(w->p, &d, 1, 0) != CD_OK)
            w->failures++;
        if (db_doc_version(w->p, w->owner, rec, &ver) != CD_OK || ver != 2)
            w->failures++;
        if (i % 3 == 0 && db_doc_delete(w->p, w->owner, rec) != CD_OK)
            w->failures++;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    struct db_config c = base_config();
    db_pool *p2 = NULL;
    pthread_t th[8];
    struct worker w[8];
    uint64_t owner = insert_user(14);
    struct db_doc out[300];
    size_t n = 0;
    (void)state;

    c.pool_size = 2;
    assert_int_equal(db_pool_new(&c, &p2), CD_OK);
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){.p = p2, .owner = owner, .idx = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(db_doc_list(p2, owner, -1, out, 300, &n), CD_OK);
    assert_int_equal(n, 8 * 16); /* 9 of 25 deleted per thread */
    db_pool_free(p2);
    assert_int_equal(db_user_delete(pool, owner), CD_OK);
}

/* Connecting needs the right CA, a matching server name and an accepted
 * client certificate; failures are CD_ERR_UNAVAILABLE, never a crash. */
static void test_tls(void **state)
{
    struct db_config c;
    db_pool *p = NULL;
    (void)state;

    /* "localhost" matches the certificate's DNS name, 127.0.0.1 its IP address. */
    c = base_config();
    c.host = "localhost";
    assert_int_equal(db_pool_new(&c, &p), CD_OK);
    assert_int_equal(db_ping(p), CD_OK);
    db_pool_free(p);

    /* Server signed by another CA. */
    c = base_config();
    c.tls_ca = env("CONFIDOC_DB_ROGUE_CA");
    assert_int_equal(db_pool_new(&c, &p), CD_OK);
    assert_int_equal(db_ping(p), CD_ERR_UNAVAILABLE);
    db_pool_free(p);

    /* "127.1" reaches 127.0.0.1 but is not a name in the certificate. */
    c = base_config();
    c.host = "127.1";
    assert_int_equal(db_pool_new(&c, &p), CD_OK);
    assert_int_equal(db_ping(p), CD_ERR_UNAVAILABLE);
    db_pool_free(p);

    /* A list of hosts (a Galera cluster's nodes): 127.0.0.2 refuses (nothing
     * listens there), so the pool connects to the next one, which then stays
     * the first one tried. */
    c = base_config();
    c.host = "127.0.0.2,localhost";
    c.pool_size = 2;
    assert_int_equal(db_pool_new(&c, &p), CD_OK);
    assert_int_equal(db_ping(p), CD_OK);
    assert_int_equal(db_pool_warm(p, NULL), CD_OK);
    assert_int_equal(db_ping(p), CD_OK);
    db_pool_free(p);
    /* No host of the list answers: unavailable. */
    c = base_config();
    c.host = "127.0.0.2,127.0.0.3";
    assert_int_equal(db_pool_new(&c, &p), CD_OK);
    assert_int_equal(db_ping(p), CD_ERR_UNAVAILABLE);
    db_pool_free(p);
    /* Malformed lists are configuration errors. */
    {
        const char *const bad[] = {"", ",localhost", "localhost,", "localhost,,localhost",
                                   "a,b,c,d,e,f,g,h,i"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            c = base_config();
            c.host = bad[i];
            p = NULL;
            assert_int_equal(db_pool_new(&c, &p), CD_ERR_CONFIG);
            assert_null(p);
        }
    }

    /* A client certificate the account does not accept. */
    c = base_config();
    c.tls_cert = env("CONFIDOC_DB_OTHER_CERT");
    c.tls_key = env("CONFIDOC_DB_OTHER_KEY");
    assert_int_equal(db_pool_new(&c, &p), CD_OK);
    assert_int_equal(db_ping(p), CD_ERR_UNAVAILABLE);
    db_pool_free(p);

    /* Nothing listening: the pool is created, operations are unavailable. */
    c = base_config();
    c.port = 1;
    assert_int_equal(db_pool_new(&c, &p), CD_OK);
    assert_int_equal(db_ping(p), CD_ERR_UNAVAILABLE);
    assert_int_equal(db_doc_delete(p, 1, 1), CD_ERR_UNAVAILABLE);
    db_pool_free(p);

    /* Incomplete configuration. */
    c = base_config();
    c.pool_size = 0;
    assert_int_equal(db_pool_new(&c, &p), CD_ERR_CONFIG);
    c = base_config();
    c.tls_ca = NULL;
    assert_int_equal(db_pool_new(&c, &p), CD_ERR_CONFIG);
}

/* Leaves an account and a document for phase 2 (after a crash and restart). */
static void test_persist_prepare(void **state)
{
    struct db_user u;
    struct db_doc d;
    uint8_t c[5000];
    (void)state;

    make_user(&u, PERSIST_SEED);
    assert_int_equal(user_insert(pool, &u), CD_OK);
    make_doc(&d, u.id, PERSIST_RECORD, 1, PERSIST_SEED, c, sizeof(c));
    assert_int_equal(db_doc_insert_if_gen(pool, &d, 0), CD_OK);
}

/* ---- phase 2 ---- */

static void test_persist_check(void **state)
{
    struct db_user want, got;
    struct db_doc d, gd;
    uint8_t c[5000];
    unsigned v = 0;
    (void)state;

    assert_int_equal(db_migrate(pool), CD_OK); /* nothing to do */
    assert_int_equal(db_schema_version(pool, &v), CD_OK);
    assert_int_equal(v, 3);
    make_user(&want, PERSIST_SEED);
    assert_int_equal(user_by_hash(pool, want.uname_hash, &got), CD_OK);
    want.id = got.id;
    assert_user_equal(&want, &got);
    make_doc(&d, got.id, PERSIST_RECORD, 1, PERSIST_SEED, c, sizeof(c));
    assert_int_equal(db_doc_read(pool, got.id, NULL, PERSIST_RECORD, SIZE_MAX, &gd), CD_OK);
    assert_doc_equal(&d, &gd);
    assert_int_equal(gd.content_ct_len, sizeof(c));
    assert_memory_equal(gd.content_ct, c, sizeof(c));
    db_doc_release(&gd);
}

/* Hand-shake with the script: create SYNC/name, then wait for SYNC/reply. */
static void sync_with_script(const char *name, const char *reply)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", env("CONFIDOC_DB_SYNC"), name);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/%s", env("CONFIDOC_DB_SYNC"), reply);
    for (int i = 0; i < 600; i++) { /* 60 s */
        struct stat sb;
        if (stat(path, &sb) == 0)
            return;
        usleep(100000);
    }
    fail_msg("no %s from the script", reply);
}

static void test_reconnect(void **state)
{
    struct db_user want, got;
    uint64_t ver = 0;
    (void)state;

    make_user(&want, PERSIST_SEED);
    for (int i = 0; i < 8; i++)
        assert_int_equal(user_by_hash(pool, want.uname_hash, &got), CD_OK);

    sync_with_script("ready-stop", "stopped");
    assert_int_equal(db_ping(pool), CD_ERR_UNAVAILABLE);
    assert_int_equal(user_by_hash(pool, want.uname_hash, &got), CD_ERR_UNAVAILABLE);
    assert_int_equal(db_doc_version(pool, 1, PERSIST_RECORD, &ver), CD_ERR_UNAVAILABLE);

    sync_with_script("ready-start", "started");
    /* The same pool reconnects by itself. */
    for (int i = 0; i < 8; i++)
        assert_int_equal(user_by_hash(pool, want.uname_hash, &got), CD_OK);
    assert_int_equal(db_doc_version(pool, got.id, PERSIST_RECORD, &ver), CD_OK);
    assert_int_equal(ver, 1);
    assert_int_equal(db_ping(pool), CD_OK);

    /* A restart while the pool is idle: its open connection is found dead
     * before anything is sent and replaced, so the next call succeeds. */
    sync_with_script("ready-restart", "restarted");
    assert_int_equal(user_by_hash(pool, want.uname_hash, &got), CD_OK);
    assert_int_equal(db_doc_version(pool, got.id, PERSIST_RECORD, &ver), CD_OK);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest phase1[] = {
        cmocka_unit_test(test_migrate),
        cmocka_unit_test(test_user),
        cmocka_unit_test(test_find_all_versions),
        cmocka_unit_test(test_doc),
        cmocka_unit_test(test_doc_if_gen),
        cmocka_unit_test(test_warm),
        cmocka_unit_test(test_doc_read),
        cmocka_unit_test(test_doc_large),
        cmocka_unit_test(test_doc_list),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_persist_prepare),
    };
    const struct CMUnitTest phase2[] = {
        cmocka_unit_test(test_persist_check),
        cmocka_unit_test(test_reconnect),
    };

    if (argc == 2 && strcmp(argv[1], "phase1") == 0)
        return cmocka_run_group_tests_name("storage phase1", phase1, group_setup, group_teardown);
    if (argc == 2 && strcmp(argv[1], "phase2") == 0)
        return cmocka_run_group_tests_name("storage phase2", phase2, group_setup, group_teardown);
    fprintf(stderr, "usage: prog_storage phase1|phase2\n");
    return 2;
}
