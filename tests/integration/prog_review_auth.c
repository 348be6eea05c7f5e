/* prog_review_auth.c: regression tests of issue 9 (findings 1, 3, 7, 8) at the
 * auth level against a real MariaDB: names unique across master key versions
 * (also under concurrent creation) and moved to the newest version at login;
 * verifiers bound to the master key, and legacy rows converted; equal cost of
 * known and unknown names counted in statements and Argon2id work; user key
 * rotation that leaves an old backup unable to open current documents, also
 * while documents are written concurrently.
 *
 * Usage: prog_review_auth 1|3|7|8. Environment: CONFIDOC_TEST_DB_PORT,
 * CONFIDOC_TEST_CERTS (see review_auth.sh). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "crypto/crypto.h"
#include "storage/db.h"

#define P_NEW_T 2
#define P_NEW_KIB 19456u
#define P_OLD_T 1
#define P_OLD_KIB 8192u

static char ca[512], cert[512], key[512];
static db_pool *db;
static crypto_keyring *kr1; /* version 1 only: the keyring before a rotation */
static crypto_keyring *kr3; /* versions 1 (the same key), 2 and 3 */

static void creds(struct auth_credentials *c, const char *u, const char *p)
{
    memset(c, 0, sizeof(*c));
    c->user_len = strlen(u);
    memcpy(c->user, u, c->user_len);
    c->pass_len = strlen(p);
    memcpy(c->pass, p, c->pass_len);
}

static auth *new_auth_with(const crypto_keyring *kr, unsigned t, unsigned kib)
{
    struct auth_config cfg = {
        .pwparams = {t, (size_t)kib * 1024u},
        .max_concurrent_hashes = 4,
        .hash_wait_ms = 60000,
        .cache_entries = 64,
        .cache_ttl_s = 300,
    };
    auth *a = NULL;
    assert_int_equal(auth_new(&cfg, kr, db, NULL, &a), CD_OK);
    return a;
}

static auth *new_auth(const crypto_keyring *kr)
{
    return new_auth_with(kr, P_NEW_T, P_NEW_KIB);
}

static cd_err login(auth *a, const char *u, const char *pw, struct auth_principal *p)
{
    struct auth_credentials c;
    unsigned retry = 0;
    cd_err rc;

    creds(&c, u, pw);
    rc = auth_login(a, &c, p, &retry, NULL);
    auth_credentials_wipe(&c);
    return rc;
}

static void name_hash(const crypto_keyring *kr, uint32_t v, const char *u,
                      uint8_t h[CRYPTO_HASH_BYTES])
{
    struct crypto_part part = {u, strlen(u)};
    assert_int_equal(crypto_keyed_hash(kr, v, CRYPTO_PURPOSE_USERNAME, &part, 1, h), CD_OK);
}

/* The account row of u, found by its hash under version v. */
static cd_err row_under(uint32_t v, const char *u, struct db_user *row)
{
    uint8_t h[CRYPTO_HASH_BYTES];
    name_hash(kr3, v, u, h);
    return db_user_find(db, (const uint8_t(*)[CRYPTO_HASH_BYTES])h, 1, row);
}

static int setup(void **state)
{
    const char *port = getenv("CONFIDOC_TEST_DB_PORT"), *dir = getenv("CONFIDOC_TEST_CERTS");
    uint8_t k[3][CRYPTO_KEY_BYTES];
    char path[] = "/tmp/confidoc-review-kr.XXXXXX";
    struct cd_diag diag_;
    FILE *f;
    int fd;
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
        .pool_size = 8,
        .connect_timeout_s = 3,
        .io_timeout_s = 20,
        .acquire_timeout_ms = 20000,
    };
    if (crypto_init() != CD_OK || db_pool_new(&cfg, &db) != CD_OK || db_migrate(db) != CD_OK)
        return -1;
    for (int i = 0; i < 3; i++)
        crypto_random(k[i], sizeof(k[i]));
    if (crypto_keyring_from_key(k[0], 1, &kr1) != CD_OK)
        return -1;
    /* A keyring file as a rotation leaves it: the old version plus new ones. */
    fd = mkstemp(path);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
        return -1;
    for (int i = 0; i < 3; i++) {
        fprintf(f, "%d:", i + 1);
        for (size_t j = 0; j < CRYPTO_KEY_BYTES; j++)
            fprintf(f, "%02x", k[i][j]);
        fprintf(f, "\n");
    }
    fclose(f);
    crypto_wipe(k, sizeof(k));
    cd_diag_init(&diag_);
    if (crypto_keyring_load(path, &kr3, &diag_) != CD_OK) {
        fprintf(stderr, "keyring: %s", diag_.text);
        unlink(path);
        return -1;
    }
    unlink(path);
    return crypto_keyring_newest(kr3) == 3 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    db_pool_free(db);
    crypto_keyring_free(kr1);
    crypto_keyring_free(kr3);
    return 0;
}

/* ---- finding 1 ---- */

static void test_review_1_unique_across_versions(void **state)
{
    struct auth_credentials c;
    struct auth_principal p;
    struct db_user row;
    char code[CRYPTO_RECOVERY_CODE_STRLEN];
    auth *before = new_auth(kr1), *after = new_auth(kr3);
    (void)state;

    creds(&c, "alice", "alicepassword");
    assert_int_equal(auth_create(before, &c, code), CD_OK);
    assert_int_equal(row_under(1, "alice", &row), CD_OK);
    assert_int_equal(row.mk_version, 1);
    /* After the rotation nobody can take the name again. */
    creds(&c, "alice", "strangerpassword");
    assert_int_equal(auth_create(after, &c, code), CD_ERR_EXISTS);
    assert_int_equal(login(after, "alice", "strangerpassword", &p), CD_ERR_AUTH);
    /* Her login finds her row and moves it to version 3 (the recovery
     * wrap keeps version 1 until the code is used). */
    assert_int_equal(login(after, "alice", "alicepassword", &p), CD_OK);
    auth_principal_wipe(&p);
    assert_int_equal(row_under(1, "alice", &row), CD_ERR_NOT_FOUND);
    assert_int_equal(row_under(3, "alice", &row), CD_OK);
    assert_int_equal(row.mk_version, 3);
    assert_int_equal(row.rc_version, 1);
    assert_int_equal(login(after, "alice", "alicepassword", &p), CD_OK);
    auth_principal_wipe(&p);
    creds(&c, "alice", "strangerpassword");
    assert_int_equal(auth_create(after, &c, code), CD_ERR_EXISTS);
    crypto_wipe(&row, sizeof(row));
    auth_free(before);
    auth_free(after);
}

#define CREATORS 6

struct create_job {
    auth *a;
    const char *pw;
    cd_err rc;
};

static void *create_thread(void *arg)
{
    struct create_job *j = arg;
    struct auth_credentials c;
    char code[CRYPTO_RECOVERY_CODE_STRLEN];

    creds(&c, "concurrent-carol", j->pw);
    j->rc = auth_create(j->a, &c, code);
    return NULL;
}

static void test_review_1_concurrent_create(void **state)
{
    pthread_t t[CREATORS];
    struct create_job jobs[CREATORS];
    auth *a = new_auth(kr3);
    int ok = 0, exists = 0;
    (void)state;

    for (int i = 0; i < CREATORS; i++) {
        jobs[i] = (struct create_job){a, i % 2 ? "oddpassword1" : "evenpassword", CD_ERR_INTERNAL};
        assert_int_equal(pthread_create(&t[i], NULL, create_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < CREATORS; i++) {
        pthread_join(t[i], NULL);
        ok += jobs[i].rc == CD_OK;
        exists += jobs[i].rc == CD_ERR_EXISTS;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(exists, CREATORS - 1);
    auth_free(a);
}

/* ---- finding 3 ---- */

/* Today's (pre-issue-9) verifier: computable from password and salt alone. */
static void plain_verifier(const struct db_user *row, const char *pw, uint8_t v[CRYPTO_HASH_BYTES],
                           uint8_t pwkey[CRYPTO_KEY_BYTES])
{
    struct crypto_pwparams params = {row->pw_opslimit, (size_t)row->pw_memlimit_kib * 1024u};
    assert_int_equal(crypto_password_derive(pw, strlen(pw), row->pw_salt, &params, v, pwkey),
                     CD_OK);
}

/* A row as the code before issue 9 wrote it (legacy verifier, version 1),
 * with one document. */
static void insert_legacy(const char *u, const char *pw, uint8_t doc_kek[CRYPTO_KEY_BYTES])
{
    struct db_user row;
    struct db_doc d;
    struct crypto_doc_ad ad;
    uint8_t sk[CRYPTO_KEY_BYTES], pwkey[CRYPTO_KEY_BYTES], rc_code[CRYPTO_RECOVERY_CODE_BYTES];
    char code_text[CRYPTO_RECOVERY_CODE_STRLEN];
    static const char text[] = "written before the upgrade";

    memset(&row, 0, sizeof(row));
    crypto_random(row.uid, sizeof(row.uid));
    name_hash(kr1, 1, u, row.uname_hash);
    row.mk_version = 1;
    crypto_random(row.pw_salt, sizeof(row.pw_salt));
    row.pw_opslimit = P_NEW_T;
    row.pw_memlimit_kib = P_NEW_KIB;
    plain_verifier(&row, pw, row.verifier, pwkey);
    row.verifier_kind = DB_VERIFIER_LEGACY;
    crypto_user_keypair(row.public_key, sk);
    assert_int_equal(crypto_sk_wrap_password(kr1, 1, pwkey, row.uid, sk, row.sk_pw), CD_OK);
    crypto_recovery_code_new(rc_code, code_text);
    assert_int_equal(crypto_sk_wrap_recovery(kr1, 1, rc_code, row.uid, sk, row.sk_rc), CD_OK);
    assert_int_equal(
        db_user_insert_unique(db, &row, (const uint8_t(*)[CRYPTO_HASH_BYTES])row.uname_hash, 1),
        CD_OK);

    crypto_user_doc_kek(sk, doc_kek);
    memset(&d, 0, sizeof(d));
    d.owner_id = row.id;
    d.record_id = 1;
    d.version = 1;
    d.size = sizeof(text) - 1;
    d.content_ct = malloc(sizeof(text) + CRYPTO_AEAD_OVERHEAD);
    assert_non_null(d.content_ct);
    memcpy(ad.owner_uid, row.uid, sizeof(ad.owner_uid));
    ad.record_id = 1;
    ad.version = 1;
    assert_int_equal(crypto_doc_seal(doc_kek, &ad, "text/plain", 10, (const uint8_t *)text,
                                     sizeof(text) - 1, d.wrapped_dk, d.ctype_ct, sizeof(d.ctype_ct),
                                     &d.ctype_ct_len, d.content_ct,
                                     sizeof(text) + CRYPTO_AEAD_OVERHEAD, &d.content_ct_len),
                     CD_OK);
    assert_int_equal(db_doc_insert_if_gen(db, &d, row.auth_gen), CD_OK);
    db_doc_release(&d);
    crypto_wipe(sk, sizeof(sk));
    crypto_wipe(pwkey, sizeof(pwkey));
}

static void assert_doc_opens(const struct auth_principal *p, int64_t record_id)
{
    struct db_doc d;
    struct crypto_doc_ad ad;
    uint8_t kek[CRYPTO_KEY_BYTES];
    char ctype[256];
    size_t clen = 0;

    assert_int_equal(db_doc_read(db, p->id, NULL, record_id, SIZE_MAX, &d), CD_OK);
    auth_principal_doc_kek(p, kek);
    memcpy(ad.owner_uid, p->uid, sizeof(ad.owner_uid));
    ad.record_id = record_id;
    ad.version = d.version;
    assert_int_equal(crypto_doc_open(kek, &ad, d.wrapped_dk, d.ctype_ct, d.ctype_ct_len, NULL, 0,
                                     ctype, sizeof(ctype), &clen, NULL, 0, NULL),
                     CD_OK);
    db_doc_release(&d);
    crypto_wipe(kek, sizeof(kek));
}

static void test_review_3_verifier_keyed(void **state)
{
    struct auth_credentials c;
    struct auth_principal p;
    struct db_user row;
    uint8_t v[CRYPTO_HASH_BYTES], pwkey[CRYPTO_KEY_BYTES], bound[CRYPTO_HASH_BYTES];
    char code[CRYPTO_RECOVERY_CODE_STRLEN];
    auth *a = new_auth(kr3);
    (void)state;

    creds(&c, "frank", "frankpassword");
    assert_int_equal(auth_create(a, &c, code), CD_OK);
    assert_int_equal(row_under(3, "frank", &row), CD_OK);
    /* Password and salt alone (a dump) do not give the stored verifier... */
    plain_verifier(&row, "frankpassword", v, pwkey);
    assert_memory_not_equal(row.verifier, v, sizeof(v));
    /* ...the master key's VERIFIER subkey is needed too. */
    assert_int_equal(crypto_verifier_bind(kr3, 3, row.uid, v, bound), CD_OK);
    assert_memory_equal(row.verifier, bound, sizeof(bound));
    assert_int_equal(row.verifier_kind, DB_VERIFIER_KEYED);
    assert_int_equal(login(a, "frank", "frankpassword", &p), CD_OK);
    auth_principal_wipe(&p);
    assert_int_equal(login(a, "frank", "frankpasswore", &p), CD_ERR_AUTH);
    crypto_wipe(&row, sizeof(row));
    crypto_wipe(pwkey, sizeof(pwkey));
    auth_free(a);
}

static void test_review_3_legacy_rows_upgrade(void **state)
{
    struct auth_principal p;
    struct db_user row;
    uint8_t kek_old[CRYPTO_KEY_BYTES], v[CRYPTO_HASH_BYTES], pwkey[CRYPTO_KEY_BYTES];
    unsigned converted = 99;
    auth *a = new_auth(kr3);
    (void)state;

    insert_legacy("grace", "gracepassword", kek_old);
    insert_legacy("heidi", "heidipassword", kek_old);
    /* A legacy row logs in before the conversion (and is upgraded by it). */
    assert_int_equal(login(a, "heidi", "heidipassword", &p), CD_OK);
    assert_doc_opens(&p, 1);
    auth_principal_wipe(&p);
    assert_int_equal(row_under(3, "heidi", &row), CD_OK);
    assert_int_equal(row.verifier_kind, DB_VERIFIER_KEYED);

    /* The start-up conversion: grace's row is bound without her password. */
    assert_int_equal(auth_convert_verifiers(a, &converted), CD_OK);
    assert_true(converted >= 1);
    assert_int_equal(row_under(1, "grace", &row), CD_OK);
    assert_int_equal(row.verifier_kind, DB_VERIFIER_KEYED);
    plain_verifier(&row, "gracepassword", v, pwkey);
    assert_memory_not_equal(row.verifier, v, sizeof(v));
    /* Idempotent: nothing left to convert. */
    assert_int_equal(auth_convert_verifiers(a, &converted), CD_OK);
    assert_int_equal(converted, 0);
    assert_int_equal(login(a, "grace", "gracepassword", &p), CD_OK);
    assert_doc_opens(&p, 1);
    auth_principal_wipe(&p);
    assert_int_equal(login(a, "grace", "wrongpassword", &p), CD_ERR_AUTH);
    crypto_wipe(&row, sizeof(row));
    crypto_wipe(pwkey, sizeof(pwkey));
    auth_free(a);
}

/* ---- finding 7 ---- */

struct cost {
    uint64_t statements, hashes, work;
};

/* What one uncached login costs: statements, Argon2id runs and their work. */
static struct cost login_cost(const char *u, const char *pw, cd_err expect)
{
    auth *a = new_auth(kr3); /* fresh: nothing cached */
    struct auth_principal p;
    uint64_t s0 = db_statement_count(db);
    struct cost c;

    assert_int_equal(login(a, u, pw, &p), expect);
    c.statements = db_statement_count(db) - s0;
    c.hashes = auth_hash_count(a);
    c.work = auth_hash_work(a);
    auth_principal_wipe(&p);
    auth_free(a);
    printf("# %s/%s: %llu statements, %llu Argon2id, work %llu\n", u,
           expect == CD_OK ? "right" : "wrong", (unsigned long long)c.statements,
           (unsigned long long)c.hashes, (unsigned long long)c.work);
    return c;
}

static void assert_cost_equal(struct cost x, struct cost y)
{
    assert_int_equal(x.statements, y.statements);
    assert_int_equal(x.hashes, y.hashes);
    assert_int_equal(x.work, y.work);
}

static void test_review_7_equal_cost(void **state)
{
    struct auth_credentials c;
    char code[CRYPTO_RECOVERY_CODE_STRLEN];
    auth *old = new_auth_with(kr1, P_OLD_T, P_OLD_KIB), *newest = new_auth(kr3);
    struct cost unknown, known_old, known_new, right;
    (void)state;

    /* ivan: under version 1 with older Argon2id parameters; judy: version 3. */
    creds(&c, "ivan", "ivanpassword");
    assert_int_equal(auth_create(old, &c, code), CD_OK);
    creds(&c, "judy", "judypassword");
    assert_int_equal(auth_create(newest, &c, code), CD_OK);

    unknown = login_cost("nobody-at-all", "somepassword", CD_ERR_AUTH);
    assert_int_equal(unknown.statements, 1); /* one lookup for three versions */
    assert_int_equal(unknown.hashes, 1);
    assert_int_equal(unknown.work, (uint64_t)P_NEW_T * P_NEW_KIB); /* current parameters */
    known_new = login_cost("judy", "wrongpassword", CD_ERR_AUTH);
    assert_cost_equal(known_new, unknown);
    /* ivan's row is found in the same one statement under version 1. */
    known_old = login_cost("ivan", "wrongpassword", CD_ERR_AUTH);
    assert_int_equal(known_old.statements, unknown.statements);
    /* His first successful login re-derives with the current parameters and
     * moves the row to version 3; from then on he costs what anyone costs. */
    right = login_cost("ivan", "ivanpassword", CD_OK);
    assert_int_equal(right.hashes, 2);
    known_old = login_cost("ivan", "wrongpassword", CD_ERR_AUTH);
    assert_cost_equal(known_old, unknown);
    right = login_cost("ivan", "ivanpassword", CD_OK);
    assert_cost_equal(right, unknown);
    right = login_cost("judy", "judypassword", CD_OK);
    assert_cost_equal(right, unknown);
    auth_free(old);
    auth_free(newest);
}

/* ---- finding 8 ---- */

#define ROT_DOCS 150 /* more than two batches of the rotation */

static void put_doc(const struct auth_principal *p, int64_t record_id, uint64_t version,
                    uint64_t expected, cd_err expect)
{
    struct db_doc d;
    struct crypto_doc_ad ad;
    uint8_t kek[CRYPTO_KEY_BYTES];
    char text[64];
    size_t n = (size_t)snprintf(text, sizeof(text), "document %lld v%llu", (long long)record_id,
                                (unsigned long long)version);
    cd_err rc;

    memset(&d, 0, sizeof(d));
    d.owner_id = p->id;
    d.record_id = record_id;
    d.version = version;
    d.size = n;
    d.content_ct = malloc(n + CRYPTO_AEAD_OVERHEAD);
    assert_non_null(d.content_ct);
    auth_principal_doc_kek(p, kek);
    memcpy(ad.owner_uid, p->uid, sizeof(ad.owner_uid));
    ad.record_id = record_id;
    ad.version = version;
    assert_int_equal(crypto_doc_seal(kek, &ad, "text/plain", 10, (const uint8_t *)text, n,
                                     d.wrapped_dk, d.ctype_ct, sizeof(d.ctype_ct), &d.ctype_ct_len,
                                     d.content_ct, n + CRYPTO_AEAD_OVERHEAD, &d.content_ct_len),
                     CD_OK);
    rc = expected == 0 ? db_doc_insert_if_gen(db, &d, p->auth_gen)
                       : db_doc_replace_if_gen(db, &d, expected, p->auth_gen);
    if (expect != CD_ERR_INTERNAL) /* CD_ERR_INTERNAL here: any answer */
        assert_int_equal(rc, expect);
    db_doc_release(&d);
    crypto_wipe(kek, sizeof(kek));
}

/* True when the key that backup's sk_pw (or sk_rc) held opens any current
 * document of the account. */
static bool backup_opens_any(const struct db_user *backup, const uint8_t sk_from_backup[32],
                             uint64_t owner)
{
    struct auth_principal old;
    struct db_doc docs[ROT_DOCS];
    size_t n = 0;
    bool any = false;

    memset(&old, 0, sizeof(old));
    old.id = owner;
    memcpy(old.uid, backup->uid, sizeof(old.uid));
    memcpy(old.sk, sk_from_backup, sizeof(old.sk));
    assert_int_equal(db_doc_list(db, owner, -1, docs, ROT_DOCS, &n), CD_OK);
    assert_int_equal(n, ROT_DOCS);
    for (size_t i = 0; i < n; i++) {
        struct crypto_doc_ad ad;
        uint8_t kek[CRYPTO_KEY_BYTES];
        char ctype[256];
        size_t clen = 0;

        auth_principal_doc_kek(&old, kek);
        memcpy(ad.owner_uid, old.uid, sizeof(ad.owner_uid));
        ad.record_id = docs[i].record_id;
        ad.version = docs[i].version;
        if (crypto_doc_open(kek, &ad, docs[i].wrapped_dk, docs[i].ctype_ct, docs[i].ctype_ct_len,
                            NULL, 0, ctype, sizeof(ctype), &clen, NULL, 0, NULL) == CD_OK)
            any = true;
    }
    auth_principal_wipe(&old);
    return any;
}

static void sk_from_password_backup(const struct db_user *b, const char *pw,
                                    uint8_t sk[CRYPTO_KEY_BYTES])
{
    uint8_t v[CRYPTO_HASH_BYTES], pwkey[CRYPTO_KEY_BYTES];
    plain_verifier(b, pw, v, pwkey);
    assert_int_equal(crypto_sk_unwrap_password(kr3, b->mk_version, pwkey, b->uid, b->sk_pw, sk),
                     CD_OK);
    crypto_wipe(pwkey, sizeof(pwkey));
}

static void test_review_8_rotate_key(void **state)
{
    struct auth_credentials c;
    struct auth_principal p;
    struct db_user backup, now;
    uint8_t sk[CRYPTO_KEY_BYTES], code_raw[CRYPTO_RECOVERY_CODE_BYTES];
    char code[CRYPTO_RECOVERY_CODE_STRLEN], code2[CRYPTO_RECOVERY_CODE_STRLEN],
        code3[CRYPTO_RECOVERY_CODE_STRLEN];
    unsigned retry = 0;
    auth *a = new_auth(kr3);
    (void)state;

    creds(&c, "kevin", "kevinpassword");
    assert_int_equal(auth_create(a, &c, code), CD_OK);
    assert_int_equal(login(a, "kevin", "kevinpassword", &p), CD_OK);
    for (int64_t r = 0; r < ROT_DOCS; r++)
        put_doc(&p, r, 1, 0, CD_OK);
    assert_int_equal(row_under(3, "kevin", &backup), CD_OK); /* a backup of the row */
    sk_from_password_backup(&backup, "kevinpassword", sk);
    assert_true(backup_opens_any(&backup, sk, p.id)); /* it opens them now */

    /* rotate-key: a new key, every data key re-wrapped, a new code. */
    assert_int_equal(auth_rotate_key(a, &c, &p, code2), CD_OK);
    auth_principal_wipe(&p);
    assert_int_equal(row_under(3, "kevin", &now), CD_OK);
    assert_int_equal(now.auth_gen, backup.auth_gen + 1);
    assert_memory_not_equal(now.public_key, backup.public_key, sizeof(now.public_key));
    /* Document statements made with the old auth_gen are refused. */
    {
        struct db_doc docs[4], gd;
        size_t n = 99;
        assert_int_equal(db_doc_list_if_gen(db, now.id, backup.auth_gen, -1, docs, 4, &n),
                         CD_ERR_AUTH);
        assert_int_equal(db_doc_list_if_gen(db, now.id, now.auth_gen, -1, docs, 4, &n), CD_OK);
        assert_int_equal(n, 4);
        assert_int_equal(db_doc_list_if_gen(db, now.id, now.auth_gen, ROT_DOCS, docs, 4, &n),
                         CD_OK);
        assert_int_equal(n, 0);
        assert_int_equal(db_doc_read(db, now.id, &(uint32_t){backup.auth_gen}, 0, SIZE_MAX, &gd),
                         CD_ERR_AUTH);
    }
    /* The backup + the (still valid) password: no current document opens. */
    assert_false(backup_opens_any(&backup, sk, now.id));
    /* The backup + the first recovery code (spent now): none either. */
    assert_int_equal(crypto_recovery_code_parse(code, strlen(code), code_raw), CD_OK);
    assert_int_equal(
        crypto_sk_unwrap_recovery(kr3, backup.rc_version, code_raw, backup.uid, backup.sk_rc, sk),
        CD_OK);
    assert_false(backup_opens_any(&backup, sk, now.id));
    assert_int_equal(
        auth_recover(a, "kevin", 5, code, strlen(code), "kevinpassword2", 14, code3, &retry, NULL),
        CD_ERR_AUTH);
    /* The owner reads every document. */
    assert_int_equal(login(a, "kevin", "kevinpassword", &p), CD_OK);
    for (int64_t r = 0; r < ROT_DOCS; r++)
        assert_doc_opens(&p, r);
    auth_principal_wipe(&p);

    /* Recovery rotates too: a backup taken before it, with the code it
     * spends, opens nothing current. */
    assert_int_equal(row_under(3, "kevin", &backup), CD_OK);
    assert_int_equal(auth_recover(a, "kevin", 5, code2, strlen(code2), "kevinpassword3", 14, code3,
                                  &retry, NULL),
                     CD_OK);
    assert_int_equal(crypto_recovery_code_parse(code2, strlen(code2), code_raw), CD_OK);
    assert_int_equal(
        crypto_sk_unwrap_recovery(kr3, backup.rc_version, code_raw, backup.uid, backup.sk_rc, sk),
        CD_OK);
    assert_int_equal(row_under(3, "kevin", &now), CD_OK);
    assert_false(backup_opens_any(&backup, sk, now.id));
    sk_from_password_backup(&backup, "kevinpassword", sk);
    assert_false(backup_opens_any(&backup, sk, now.id));
    assert_int_equal(login(a, "kevin", "kevinpassword3", &p), CD_OK);
    for (int64_t r = 0; r < ROT_DOCS; r++)
        assert_doc_opens(&p, r);
    auth_principal_wipe(&p);
    crypto_wipe(sk, sizeof(sk));
    crypto_wipe(&backup, sizeof(backup));
    crypto_wipe(&now, sizeof(now));
    auth_free(a);
}

/* A writer that replaces documents as the API does (read the version, seal
 * under its principal's key, replace if the account's auth_gen is unchanged;
 * on CD_ERR_AUTH log in again) while rotations run. */
struct writer {
    auth *a;
    atomic_int stop; /* set by the main thread: volatile would be a data race */
    unsigned writes, stale;
};

static void *writer_thread(void *arg)
{
    struct writer *w = arg;
    struct auth_principal p;
    int64_t r = 0;

    assert_int_equal(login(w->a, "laura", "laurapassword", &p), CD_OK);
    while (!atomic_load(&w->stop)) {
        uint64_t v = 0;
        struct db_doc d;
        struct crypto_doc_ad ad;
        uint8_t kek[CRYPTO_KEY_BYTES];
        static const char text[] = "concurrent";
        cd_err rc;

        if (db_doc_version(db, p.id, r, &v) != CD_OK)
            continue;
        memset(&d, 0, sizeof(d));
        d.owner_id = p.id;
        d.record_id = r;
        d.version = v + 1;
        d.size = sizeof(text) - 1;
        d.content_ct = malloc(sizeof(text) + CRYPTO_AEAD_OVERHEAD);
        auth_principal_doc_kek(&p, kek);
        memcpy(ad.owner_uid, p.uid, sizeof(ad.owner_uid));
        ad.record_id = r;
        ad.version = v + 1;
        crypto_doc_seal(kek, &ad, "text/plain", 10, (const uint8_t *)text, sizeof(text) - 1,
                        d.wrapped_dk, d.ctype_ct, sizeof(d.ctype_ct), &d.ctype_ct_len, d.content_ct,
                        sizeof(text) + CRYPTO_AEAD_OVERHEAD, &d.content_ct_len);
        rc = db_doc_replace_if_gen(db, &d, v, p.auth_gen);
        db_doc_release(&d);
        crypto_wipe(kek, sizeof(kek));
        if (rc == CD_ERR_AUTH) {
            w->stale++;
            auth_principal_wipe(&p);
            while (login(w->a, "laura", "laurapassword", &p) != CD_OK)
                ;
            continue;
        }
        if (rc == CD_OK)
            w->writes++;
        r = (r + 1) % 40;
    }
    auth_principal_wipe(&p);
    return NULL;
}

static void test_review_8_rotate_concurrent_writes(void **state)
{
    struct auth_credentials c;
    struct auth_principal p;
    char code[CRYPTO_RECOVERY_CODE_STRLEN], fresh[CRYPTO_RECOVERY_CODE_STRLEN];
    struct writer w;
    pthread_t t;
    auth *a = new_auth(kr3), *wa = new_auth(kr3); /* two "replicas" */
    int rotations = 0;
    (void)state;

    creds(&c, "laura", "laurapassword");
    assert_int_equal(auth_create(a, &c, code), CD_OK);
    assert_int_equal(login(a, "laura", "laurapassword", &p), CD_OK);
    for (int64_t r = 0; r < 40; r++)
        put_doc(&p, r, 1, 0, CD_OK);
    auth_principal_wipe(&p);
    memset(&w, 0, sizeof(w));
    atomic_init(&w.stop, 0);
    w.a = wa;
    assert_int_equal(pthread_create(&t, NULL, writer_thread, &w), 0);
    while (rotations < 5) {
        cd_err rc;
        assert_int_equal(login(a, "laura", "laurapassword", &p), CD_OK);
        rc = auth_rotate_key(a, &c, &p, fresh);
        auth_principal_wipe(&p);
        assert_true(rc == CD_OK || rc == CD_ERR_CONFLICT);
        rotations += rc == CD_OK;
        usleep(20000);
    }
    usleep(100000);
    atomic_store(&w.stop, 1);
    pthread_join(t, NULL);
    printf("# %u concurrent writes, %u refused as stale\n", w.writes, w.stale);
    assert_true(w.writes > 0);
    /* Every document opens under the key of the last rotation. */
    assert_int_equal(login(a, "laura", "laurapassword", &p), CD_OK);
    for (int64_t r = 0; r < 40; r++)
        assert_doc_opens(&p, r);
    auth_principal_wipe(&p);
    auth_free(a);
    auth_free(wa);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest f1[] = {
        cmocka_unit_test(test_review_1_unique_across_versions),
        cmocka_unit_test(test_review_1_concurrent_create),
    };
    const struct CMUnitTest f3[] = {
        cmocka_unit_test(test_review_3_verifier_keyed),
        cmocka_unit_test(test_review_3_legacy_rows_upgrade),
    };
    const struct CMUnitTest f7[] = {
        cmocka_unit_test(test_review_7_equal_cost),
    };
    const struct CMUnitTest f8[] = {
        cmocka_unit_test(test_review_8_rotate_key),
        cmocka_unit_test(test_review_8_rotate_concurrent_writes),
    };

    if (argc == 2 && strcmp(argv[1], "1") == 0)
        return cmocka_run_group_tests(f1, setup, teardown);
    if (argc == 2 && strcmp(argv[1], "3") == 0)
        return cmocka_run_group_tests(f3, setup, teardown);
    if (argc == 2 && strcmp(argv[1], "7") == 0)
        return cmocka_run_group_tests(f7, setup, teardown);
    if (argc == 2 && strcmp(argv[1], "8") == 0)
        return cmocka_run_group_tests(f8, setup, teardown);
    fprintf(stderr, "usage: prog_review_auth 1|3|7|8\n");
    return 2;
}
