/* test_crypto.c: unit tests of the crypto module (keyring, keyed hash, AEAD, documents, keys). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/crypto.h"

#define HEX_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define HEX_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static char tmpdir[64];

static int group_setup(void **state)
{
    (void)state;
    if (crypto_init() != CD_OK)
        return -1;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_crypto.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rmdir(tmpdir);
    return 0;
}

/* Writes text to a fresh file in tmpdir with the given mode; returns its path. */
static const char *write_file(const char *text, mode_t mode)
{
    static char path[128];
    static unsigned n;
    snprintf(path, sizeof(path), "%s/keys%u", tmpdir, n++);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static cd_err load_text(const char *text, mode_t mode, crypto_keyring **kr, struct cd_diag *diag)
{
    const char *path = write_file(text, mode);
    cd_err e = crypto_keyring_load(path, kr, diag);
    unlink(path);
    return e;
}

static crypto_keyring *test_keyring(uint32_t version)
{
    uint8_t key[CRYPTO_KEY_BYTES];
    crypto_keyring *kr = NULL;
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(i * 7 + version);
    assert_int_equal(crypto_keyring_from_key(key, version, &kr), CD_OK);
    return kr;
}

/* ---- helpers ---- */

static void test_equal_wipe_random(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    crypto_random(a, sizeof(a));
    memcpy(b, a, sizeof(b));
    assert_true(crypto_equal(a, b, sizeof(a)));
    b[31] ^= 1;
    assert_false(crypto_equal(a, b, sizeof(a)));
    crypto_random(b, sizeof(b));
    assert_memory_not_equal(a, b, sizeof(a));
    crypto_wipe(a, sizeof(a));
    memset(b, 0, sizeof(b));
    assert_memory_equal(a, b, sizeof(a));

    uint8_t *s = crypto_secure_alloc(100);
    assert_non_null(s);
    memset(s, 0x55, 100);
    crypto_secure_free(s);
    crypto_secure_free(NULL);
}

/* ---- keyring ---- */

static void test_keyring_single_line(void **state)
{
    (void)state;
    crypto_keyring *kr = NULL;
    struct cd_diag diag_;
    cd_diag_init(&diag_);
    assert_int_equal(load_text(HEX_A "\n", 0600, &kr, &diag_), CD_OK);
    assert_int_equal(crypto_keyring_newest(kr), 1);
    assert_true(crypto_keyring_has(kr, 1));
    assert_false(crypto_keyring_has(kr, 2));
    uint32_t v[4];
    assert_int_equal(crypto_keyring_versions(kr, v, 4), 1);
    assert_int_equal(v[0], 1);

    /* The same key from raw bytes gives the same hashes. */
    uint8_t raw[CRYPTO_KEY_BYTES];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (uint8_t)i;
    crypto_keyring *kr2 = NULL;
    assert_int_equal(crypto_keyring_from_key(raw, 1, &kr2), CD_OK);
    struct crypto_part part = {"alice", 5};
    uint8_t h1[CRYPTO_HASH_BYTES], h2[CRYPTO_HASH_BYTES];
    assert_int_equal(crypto_keyed_hash(kr, 1, CRYPTO_PURPOSE_USERNAME, &part, 1, h1), CD_OK);
    assert_int_equal(crypto_keyed_hash(kr2, 1, CRYPTO_PURPOSE_USERNAME, &part, 1, h2), CD_OK);
    assert_memory_equal(h1, h2, sizeof(h1));
    crypto_keyring_free(kr);
    crypto_keyring_free(kr2);

    /* No trailing newline, mode 0400. */
    assert_int_equal(load_text(HEX_A, 0400, &kr, &diag_), CD_OK);
    crypto_keyring_free(kr);
    crypto_keyring_free(NULL);
}

static void test_keyring_multi_version(void **state)
{
    (void)state;
    crypto_keyring *kr = NULL;
    struct cd_diag diag_;
    cd_diag_init(&diag_);
    const char *text = "# confidoc master keys\n"
                       "\n"
                       "2:" HEX_A "\n"
                       "   # indented comment\n"
                       "7:" HEX_B "\r\n"
                       "\t\n"
                       "3 : " HEX_A "  \n";
    assert_int_equal(load_text(text, 0600, &kr, &diag_), CD_OK);
    assert_int_equal(crypto_keyring_newest(kr), 7);
    uint32_t v[8];
    assert_int_equal(crypto_keyring_versions(kr, v, 8), 3);
    assert_int_equal(v[0], 7);
    assert_int_equal(v[1], 3);
    assert_int_equal(v[2], 2);
    /* max smaller than the count: only max written, count returned. */
    uint32_t one[1];
    assert_int_equal(crypto_keyring_versions(kr, one, 1), 3);
    assert_int_equal(one[0], 7);
    assert_true(crypto_keyring_has(kr, 2));
    assert_true(crypto_keyring_has(kr, 3));
    assert_true(crypto_keyring_has(kr, 7));
    assert_false(crypto_keyring_has(kr, 1));
    assert_false(crypto_keyring_has(kr, 0));

    /* Versions 2 and 3 share a master key but are different versions: the
     * subkeys are per master key, so equal keys give equal hashes. */
    struct crypto_part part = {"x", 1};
    uint8_t h2[CRYPTO_HASH_BYTES], h7[CRYPTO_HASH_BYTES];
    assert_int_equal(crypto_keyed_hash(kr, 2, CRYPTO_PURPOSE_USERNAME, &part, 1, h2), CD_OK);
    assert_int_equal(crypto_keyed_hash(kr, 7, CRYPTO_PURPOSE_USERNAME, &part, 1, h7), CD_OK);
    assert_memory_not_equal(h2, h7, sizeof(h2));
    crypto_keyring_free(kr);
}

static void expect_load_fails(const char *text, mode_t mode, cd_err want, const char *needle)
{
    crypto_keyring *kr = NULL;
    struct cd_diag diag_;
    cd_diag_init(&diag_);
    char *err = diag_.text;
    assert_int_equal(load_text(text, mode, &kr, &diag_), want);
    assert_null(kr);
    assert_non_null(strstr(err, tmpdir));
    if (needle != NULL && strstr(err, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
    /* Never any key material in the message. */
    assert_null(strstr(err, "0001020304"));
    assert_null(strstr(err, "ffeeddcc"));
}

static void test_keyring_rejects(void **state)
{
    (void)state;
    expect_load_fails(HEX_A "\n", 0644, CD_ERR_CONFIG, "group or others");
    expect_load_fails(HEX_A "\n", 0640, CD_ERR_CONFIG, "group or others");
    expect_load_fails(HEX_A "\n", 0602, CD_ERR_CONFIG, "group or others");
    expect_load_fails("1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g\n", 0600,
                      CD_ERR_CONFIG, ":1:");
    expect_load_fails("1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e\n", 0600,
                      CD_ERR_CONFIG, ":1:");
    expect_load_fails("1:" HEX_A "00\n", 0600, CD_ERR_CONFIG, ":1:");
    expect_load_fails("# c\n1:" HEX_A "\n1:" HEX_B "\n", 0600, CD_ERR_CONFIG, ":3: duplicate");
    expect_load_fails(HEX_A "\n1:" HEX_B "\n", 0600, CD_ERR_CONFIG, ":2: duplicate");
    expect_load_fails("0:" HEX_A "\n", 0600, CD_ERR_CONFIG, ":1: version");
    expect_load_fails("2147483648:" HEX_A "\n", 0600, CD_ERR_CONFIG, ":1: version");
    expect_load_fails("-1:" HEX_A "\n", 0600, CD_ERR_CONFIG, ":1: version");
    expect_load_fails("x:" HEX_A "\n", 0600, CD_ERR_CONFIG, ":1: version");
    expect_load_fails(":" HEX_A "\n", 0600, CD_ERR_CONFIG, ":1: version");
    expect_load_fails("", 0600, CD_ERR_CONFIG, "no key");
    expect_load_fails("# only a comment\n\n", 0600, CD_ERR_CONFIG, "no key");
    expect_load_fails("1:" HEX_A " trailing\n", 0600, CD_ERR_CONFIG, ":1:");

    /* The largest version is accepted. */
    crypto_keyring *kr = NULL;
    struct cd_diag diag_;
    cd_diag_init(&diag_);
    assert_int_equal(load_text("2147483647:" HEX_A "\n", 0600, &kr, &diag_), CD_OK);
    assert_int_equal(crypto_keyring_newest(kr), CRYPTO_KEYRING_MAX_VERSION);
    crypto_keyring_free(kr);
}

static void test_keyring_limits(void **state)
{
    (void)state;
    char *text = malloc(100 * 80);
    assert_non_null(text);
    size_t off = 0;
    for (int i = 1; i <= CRYPTO_KEYRING_MAX_KEYS; i++)
        off += (size_t)sprintf(text + off, "%d:%s\n", i, HEX_A);
    crypto_keyring *kr = NULL;
    struct cd_diag diag_;
    cd_diag_init(&diag_);
    assert_int_equal(load_text(text, 0600, &kr, &diag_), CD_OK);
    assert_int_equal(crypto_keyring_newest(kr), CRYPTO_KEYRING_MAX_KEYS);
    crypto_keyring_free(kr);
    kr = NULL;
    sprintf(text + off, "%d:%s\n", CRYPTO_KEYRING_MAX_KEYS + 1, HEX_A);
    expect_load_fails(text, 0600, CD_ERR_CONFIG, "more than");
    free(text);

    /* Over the size cap. */
    size_t big = 70 * 1024;
    text = malloc(big + 1);
    assert_non_null(text);
    memset(text, '#', big);
    text[big] = '\0';
    expect_load_fails(text, 0600, CD_ERR_TOO_LARGE, "larger");
    free(text);

    /* Missing file, directory. */
    char path[128];
    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    /* CD_ERR_NOT_FOUND as for every file (common/err.h); CD_ERR_IO before issue 10. */
    assert_int_equal(crypto_keyring_load(path, &kr, &diag_), CD_ERR_NOT_FOUND);
    assert_int_equal(crypto_keyring_load(tmpdir, &kr, &diag_), CD_ERR_CONFIG);
    assert_null(kr);

    /* from_key argument checks. */
    uint8_t key[CRYPTO_KEY_BYTES] = {0};
    assert_int_equal(crypto_keyring_from_key(key, 0, &kr), CD_ERR_INVALID);
    assert_int_equal(crypto_keyring_from_key(key, CRYPTO_KEYRING_MAX_VERSION + 1u, &kr),
                     CD_ERR_INVALID);
    assert_null(kr);
}

/* ---- keyed hash ---- */

static void test_keyed_hash(void **state)
{
    (void)state;
    crypto_keyring *kr = test_keyring(1);
    uint8_t h1[CRYPTO_HASH_BYTES], h2[CRYPTO_HASH_BYTES];

    struct crypto_part ab_c[2] = {{"ab", 2}, {"c", 1}};
    struct crypto_part a_bc[2] = {{"a", 1}, {"bc", 2}};
    struct crypto_part abc[1] = {{"abc", 3}};
    assert_int_equal(crypto_keyed_hash(kr, 1, CRYPTO_PURPOSE_USERNAME, ab_c, 2, h1), CD_OK);
    assert_int_equal(crypto_keyed_hash(kr, 1, CRYPTO_PURPOSE_USERNAME, a_bc, 2, h2), CD_OK);
    assert_memory_not_equal(h1, h2, sizeof(h1));
    assert_int_equal(crypto_keyed_hash(kr, 1, CRYPTO_PURPOSE_USERNAME, abc, 1, h2), CD_OK);
    assert_memory_not_equal(h1, h2, sizeof(h1));

    /* Deterministic. */
    assert_int_equal(crypto_keyed_hash(kr, 1, CRYPTO_PURPOSE_USERNAME, ab_c, 2, h2), CD_OK);
    assert_memory_equal(h1, h2, sizeof(h1));

    /* Empty parts still count. */
    struct crypto_part empty1[1] = {{NULL, 0}};
    assert_int_equal(crypto_keyed_hash(kr, 1, CRYPTO_PURPOSE_USERNAME, NULL, 0, h1), CD_OK);
    assert_int_equal(crypto_keyed_hash(kr, 1, CRYPTO_PURPOSE_USERNAME, empty1, 1, h2), CD_OK);
    assert_memory_not_equal(h1, h2, sizeof(h1));

    /* Purposes differ pairwise. */
    uint8_t hp[CRYPTO_PURPOSE__COUNT][CRYPTO_HASH_BYTES];
    for (int p = 1; p < CRYPTO_PURPOSE__COUNT; p++)
        assert_int_equal(crypto_keyed_hash(kr, 1, (enum crypto_purpose)p, abc, 1, hp[p]), CD_OK);
    for (int p = 1; p < CRYPTO_PURPOSE__COUNT; p++)
        for (int q = p + 1; q < CRYPTO_PURPOSE__COUNT; q++)
            assert_memory_not_equal(hp[p], hp[q], CRYPTO_HASH_BYTES);

    /* Versions differ. */
    crypto_keyring *kr2 = test_keyring(2);
    assert_int_equal(crypto_keyed_hash(kr2, 2, CRYPTO_PURPOSE_USERNAME, abc, 1, h2), CD_OK);
    assert_memory_not_equal(hp[CRYPTO_PURPOSE_USERNAME], h2, sizeof(h2));

    /* Unknown version, bad purpose; out untouched on error. */
    memset(h1, 0xAA, sizeof(h1));
    memcpy(h2, h1, sizeof(h1));
    assert_int_equal(crypto_keyed_hash(kr, 2, CRYPTO_PURPOSE_USERNAME, abc, 1, h1),
                     CD_ERR_NOT_FOUND);
    assert_int_equal(crypto_keyed_hash(kr, 0, CRYPTO_PURPOSE_USERNAME, abc, 1, h1),
                     CD_ERR_NOT_FOUND);
    assert_int_equal(crypto_keyed_hash(kr, 1, (enum crypto_purpose)0, abc, 1, h1), CD_ERR_INVALID);
    assert_int_equal(crypto_keyed_hash(kr, 1, CRYPTO_PURPOSE__COUNT, abc, 1, h1), CD_ERR_INVALID);
    struct crypto_part bad[1] = {{NULL, 3}};
    assert_int_equal(crypto_keyed_hash(kr, 1, CRYPTO_PURPOSE_USERNAME, bad, 1, h1), CD_ERR_INVALID);
    assert_memory_equal(h1, h2, sizeof(h1));

    /* Matches the documented construction (BLAKE2b keyed with the KDF subkey). */
    uint8_t master[CRYPTO_KEY_BYTES], sub[CRYPTO_KEY_BYTES], want[CRYPTO_HASH_BYTES];
    for (size_t i = 0; i < sizeof(master); i++)
        master[i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(
        crypto_kdf_derive_from_key(sub, sizeof(sub), CRYPTO_PURPOSE_RATELIMIT, "cdockeys", master),
        0);
    crypto_generichash_state st;
    uint8_t len[8] = {3, 0, 0, 0, 0, 0, 0, 0};
    crypto_generichash_init(&st, sub, sizeof(sub), sizeof(want));
    crypto_generichash_update(&st, len, sizeof(len));
    crypto_generichash_update(&st, (const uint8_t *)"abc", 3);
    crypto_generichash_final(&st, want, sizeof(want));
    assert_memory_equal(hp[CRYPTO_PURPOSE_RATELIMIT], want, sizeof(want));

    crypto_keyring_free(kr);
    crypto_keyring_free(kr2);
}

/* The keyring is read-only after load: threads hash with it without locks. */
struct hash_job {
    const crypto_keyring *kr;
    uint8_t want[CRYPTO_HASH_BYTES];
    int ok;
};

static void *hash_worker(void *arg)
{
    struct hash_job *job = arg;
    struct crypto_part part = {"concurrent", 10};
    uint8_t h[CRYPTO_HASH_BYTES];
    job->ok = 1;
    for (int i = 0; i < 2000; i++) {
        if (crypto_keyed_hash(job->kr, 3, CRYPTO_PURPOSE_CREDCACHE, &part, 1, h) != CD_OK ||
            memcmp(h, job->want, sizeof(h)) != 0)
            job->ok = 0;
    }
    return NULL;
}

static void test_keyed_hash_threads(void **state)
{
    (void)state;
    crypto_keyring *kr = test_keyring(3);
    struct crypto_part part = {"concurrent", 10};
    struct hash_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].kr = kr;
        assert_int_equal(crypto_keyed_hash(kr, 3, CRYPTO_PURPOSE_CREDCACHE, &part, 1, jobs[i].want),
                         CD_OK);
        assert_int_equal(pthread_create(&th[i], NULL, hash_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(jobs[i].ok, 1);
    }
    crypto_keyring_free(kr);
}

/* ---- generic AEAD ---- */

static void test_aead_round_trip(void **state)
{
    (void)state;
    uint8_t key[CRYPTO_KEY_BYTES];
    uint8_t msg[300], sealed[300 + CRYPTO_AEAD_OVERHEAD], sealed2[sizeof(sealed)], opened[300];
    size_t lens[] = {0, 1, 31, 32, 33, 300};
    crypto_random(key, sizeof(key));
    crypto_random(msg, sizeof(msg));
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t n = lens[i], slen = 0, olen = 999;
        assert_int_equal(crypto_aead_seal(key, "ad", 2, msg, n, sealed, sizeof(sealed), &slen),
                         CD_OK);
        assert_int_equal(slen, n + CRYPTO_AEAD_OVERHEAD);
        assert_int_equal(crypto_aead_open(key, "ad", 2, sealed, slen, opened, n, &olen), CD_OK);
        assert_int_equal(olen, n);
        if (n > 0)
            assert_memory_equal(opened, msg, n);
        /* A fresh nonce each time. */
        size_t slen2 = 0;
        assert_int_equal(crypto_aead_seal(key, "ad", 2, msg, n, sealed2, sizeof(sealed2), &slen2),
                         CD_OK);
        assert_memory_not_equal(sealed, sealed2, CRYPTO_AEAD_NONCE_BYTES);
    }
    /* NULL input of length 0, no AD. */
    size_t slen = 0, olen = 0;
    assert_int_equal(crypto_aead_seal(key, NULL, 0, NULL, 0, sealed, CRYPTO_AEAD_OVERHEAD, &slen),
                     CD_OK);
    assert_int_equal(crypto_aead_open(key, NULL, 0, sealed, slen, opened, 0, &olen), CD_OK);
    assert_int_equal(olen, 0);
}

static void test_aead_tamper(void **state)
{
    (void)state;
    uint8_t key[CRYPTO_KEY_BYTES], key2[CRYPTO_KEY_BYTES];
    uint8_t msg[50], sealed[50 + CRYPTO_AEAD_OVERHEAD], opened[50];
    size_t slen = 0, olen = 0;
    crypto_random(key, sizeof(key));
    memcpy(key2, key, sizeof(key));
    key2[0] ^= 1;
    crypto_random(msg, sizeof(msg));
    assert_int_equal(
        crypto_aead_seal(key, "ad", 2, msg, sizeof(msg), sealed, sizeof(sealed), &slen), CD_OK);
    /* Every single-byte change: nonce, ciphertext, tag. */
    for (size_t i = 0; i < slen; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            sealed[i] ^= (uint8_t)(1u << bit);
            olen = 12345;
            assert_int_equal(
                crypto_aead_open(key, "ad", 2, sealed, slen, opened, sizeof(opened), &olen),
                CD_ERR_CRYPTO);
            assert_int_equal(olen, 12345);
            sealed[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(crypto_aead_open(key, "ad", 2, sealed, slen, opened, sizeof(opened), &olen),
                     CD_OK);
    /* Wrong AD, missing AD, wrong key, truncation, extension. */
    assert_int_equal(crypto_aead_open(key, "ae", 2, sealed, slen, opened, sizeof(opened), &olen),
                     CD_ERR_CRYPTO);
    assert_int_equal(crypto_aead_open(key, "ad", 1, sealed, slen, opened, sizeof(opened), &olen),
                     CD_ERR_CRYPTO);
    assert_int_equal(crypto_aead_open(key, NULL, 0, sealed, slen, opened, sizeof(opened), &olen),
                     CD_ERR_CRYPTO);
    assert_int_equal(crypto_aead_open(key2, "ad", 2, sealed, slen, opened, sizeof(opened), &olen),
                     CD_ERR_CRYPTO);
    assert_int_equal(
        crypto_aead_open(key, "ad", 2, sealed, slen - 1, opened, sizeof(opened), &olen),
        CD_ERR_CRYPTO);
    assert_int_equal(crypto_aead_open(key, "ad", 2, sealed, CRYPTO_AEAD_OVERHEAD - 1, opened,
                                      sizeof(opened), &olen),
                     CD_ERR_INVALID);
    /* Bounds. */
    assert_int_equal(
        crypto_aead_open(key, "ad", 2, sealed, slen, opened, sizeof(opened) - 1, &olen),
        CD_ERR_INVALID);
    assert_int_equal(
        crypto_aead_seal(key, "ad", 2, msg, sizeof(msg), sealed, sizeof(sealed) - 1, &slen),
        CD_ERR_INVALID);
    assert_int_equal(crypto_aead_seal(key, "ad", 2, msg, SIZE_MAX - 10, sealed, SIZE_MAX, &slen),
                     CD_ERR_INVALID);
}

/* ---- passwords ---- */

static const struct crypto_pwparams fast_params = {1, crypto_pwhash_MEMLIMIT_MIN};

static void test_password_derive(void **state)
{
    (void)state;
    uint8_t salt[CRYPTO_SALT_BYTES] = {1, 2, 3}, salt2[CRYPTO_SALT_BYTES] = {1, 2, 4};
    uint8_t v1[CRYPTO_HASH_BYTES], k1[CRYPTO_KEY_BYTES], v2[CRYPTO_HASH_BYTES],
        k2[CRYPTO_KEY_BYTES];

    assert_int_equal(crypto_password_derive("hunter2", 7, salt, &fast_params, v1, k1), CD_OK);
    assert_int_equal(crypto_password_derive("hunter2", 7, salt, &fast_params, v2, k2), CD_OK);
    assert_memory_equal(v1, v2, sizeof(v1));
    assert_memory_equal(k1, k2, sizeof(k1));
    assert_memory_not_equal(v1, k1, sizeof(v1));

    assert_int_equal(crypto_password_derive("hunter2", 7, salt2, &fast_params, v2, k2), CD_OK);
    assert_memory_not_equal(v1, v2, sizeof(v1));
    assert_memory_not_equal(k1, k2, sizeof(k1));
    assert_int_equal(crypto_password_derive("hunter3", 7, salt, &fast_params, v2, k2), CD_OK);
    assert_memory_not_equal(v1, v2, sizeof(v1));
    assert_memory_not_equal(k1, k2, sizeof(k1));
    assert_int_equal(crypto_password_derive("hunter2", 6, salt, &fast_params, v2, k2), CD_OK);
    assert_memory_not_equal(v1, v2, sizeof(v1));
    struct crypto_pwparams p2 = {2, crypto_pwhash_MEMLIMIT_MIN};
    assert_int_equal(crypto_password_derive("hunter2", 7, salt, &p2, v2, k2), CD_OK);
    assert_memory_not_equal(v1, v2, sizeof(v1));
    assert_int_equal(crypto_password_derive("", 0, salt, &fast_params, v2, k2), CD_OK);
    assert_int_equal(crypto_password_derive(NULL, 0, salt, &fast_params, v2, k2), CD_OK);

    /* The documented construction. */
    uint8_t seed[64], want_v[CRYPTO_HASH_BYTES];
    assert_int_equal(crypto_pwhash(seed, sizeof(seed), "hunter2", 7, salt, 1,
                                   crypto_pwhash_MEMLIMIT_MIN, crypto_pwhash_ALG_ARGON2ID13),
                     0);
    crypto_generichash(want_v, sizeof(want_v), (const uint8_t *)"confidoc-verifier-v1", 20, seed,
                       32);
    assert_memory_equal(v1, want_v, sizeof(want_v));
    assert_memory_equal(k1, seed + 32, 32);

    /* Parameter checks; outputs untouched. */
    memset(v2, 0xAA, sizeof(v2));
    struct crypto_pwparams bad_ops = {0, crypto_pwhash_MEMLIMIT_MIN};
    struct crypto_pwparams bad_mem = {1, crypto_pwhash_MEMLIMIT_MIN - 1};
    assert_int_equal(crypto_password_derive("x", 1, salt, &bad_ops, v2, k2), CD_ERR_INVALID);
    assert_int_equal(crypto_password_derive("x", 1, salt, &bad_mem, v2, k2), CD_ERR_INVALID);
    assert_int_equal(crypto_password_derive(NULL, 1, salt, &fast_params, v2, k2), CD_ERR_INVALID);
    assert_int_equal(crypto_password_derive("x", 1, NULL, &fast_params, v2, k2), CD_ERR_INVALID);
    assert_int_equal(v2[0], 0xAA);
}

/* ---- user keys ---- */

/* Issue 9, finding 3: the stored verifier needs the master key: it differs
 * from the Argon2id-derived one, and with the key version, uid or input. */
static void test_verifier_bind(void **state)
{
    (void)state;
    uint8_t salt[CRYPTO_SALT_BYTES] = {9}, uid[CRYPTO_UID_BYTES] = {1},
            uid2[CRYPTO_UID_BYTES] = {2};
    uint8_t v[CRYPTO_HASH_BYTES], k[CRYPTO_KEY_BYTES], b1[CRYPTO_HASH_BYTES], b2[CRYPTO_HASH_BYTES];
    crypto_keyring *kr1 = test_keyring(1), *kr2 = test_keyring(2);

    assert_int_equal(crypto_password_derive("hunter2", 7, salt, &fast_params, v, k), CD_OK);
    assert_int_equal(crypto_verifier_bind(kr1, 1, uid, v, b1), CD_OK);
    assert_memory_not_equal(b1, v, sizeof(v));
    assert_int_equal(crypto_verifier_bind(kr1, 1, uid, v, b2), CD_OK);
    assert_memory_equal(b1, b2, sizeof(b1)); /* deterministic */
    assert_int_equal(crypto_verifier_bind(kr2, 2, uid, v, b2), CD_OK);
    assert_memory_not_equal(b1, b2, sizeof(b1)); /* another master key */
    assert_int_equal(crypto_verifier_bind(kr1, 1, uid2, v, b2), CD_OK);
    assert_memory_not_equal(b1, b2, sizeof(b1)); /* another account */
    /* The same as a keyed hash of purpose VERIFIER over (uid, v), no other. */
    const struct crypto_part parts[2] = {{uid, sizeof(uid)}, {v, sizeof(v)}};
    assert_int_equal(crypto_keyed_hash(kr1, 1, CRYPTO_PURPOSE_VERIFIER, parts, 2, b2), CD_OK);
    assert_memory_equal(b1, b2, sizeof(b1));
    assert_int_equal(crypto_keyed_hash(kr1, 1, CRYPTO_PURPOSE_USERNAME, parts, 2, b2), CD_OK);
    assert_memory_not_equal(b1, b2, sizeof(b1));
    assert_int_equal(crypto_verifier_bind(kr1, 2, uid, v, b2), CD_ERR_NOT_FOUND);
    crypto_keyring_free(kr1);
    crypto_keyring_free(kr2);
}

static void test_user_keys_and_escrow(void **state)
{
    (void)state;
    uint8_t pk[CRYPTO_KEY_BYTES], sk[CRYPTO_KEY_BYTES], pk2[CRYPTO_KEY_BYTES],
        sk2[CRYPTO_KEY_BYTES];
    crypto_user_keypair(pk, sk);
    crypto_user_keypair(pk2, sk2);
    assert_memory_not_equal(sk, sk2, sizeof(sk));
    uint8_t derived[CRYPTO_KEY_BYTES];
    assert_int_equal(crypto_scalarmult_base(derived, sk), 0);
    assert_memory_equal(derived, pk, sizeof(pk));

    uint8_t kek1[CRYPTO_KEY_BYTES], kek1b[CRYPTO_KEY_BYTES], kek2[CRYPTO_KEY_BYTES];
    crypto_user_doc_kek(sk, kek1);
    crypto_user_doc_kek(sk, kek1b);
    crypto_user_doc_kek(sk2, kek2);
    assert_memory_equal(kek1, kek1b, sizeof(kek1));
    assert_memory_not_equal(kek1, kek2, sizeof(kek1));
    assert_memory_not_equal(kek1, sk, sizeof(kek1));

    uint8_t epk[crypto_box_PUBLICKEYBYTES], esk[crypto_box_SECRETKEYBYTES];
    crypto_box_keypair(epk, esk);
    uint8_t escrowed[CRYPTO_ESCROWED_KEY_BYTES], opened[CRYPTO_KEY_BYTES];
    assert_int_equal(crypto_sk_escrow(epk, sk, escrowed), CD_OK);
    assert_int_equal(crypto_box_seal_open(opened, escrowed, sizeof(escrowed), epk, esk), 0);
    assert_memory_equal(opened, sk, sizeof(sk));
    escrowed[10] ^= 1;
    assert_int_not_equal(crypto_box_seal_open(opened, escrowed, sizeof(escrowed), epk, esk), 0);
    /* An all-zero (low-order) escrow key is refused. */
    uint8_t zero[CRYPTO_KEY_BYTES] = {0};
    assert_int_equal(crypto_sk_escrow(zero, sk, escrowed), CD_ERR_INVALID);
}

static void test_sk_wrap_password(void **state)
{
    (void)state;
    crypto_keyring *kr = NULL;
    struct cd_diag diag_;
    cd_diag_init(&diag_);
    assert_int_equal(load_text("1:" HEX_A "\n2:" HEX_B "\n", 0600, &kr, &diag_), CD_OK);
    uint8_t pk[CRYPTO_KEY_BYTES], sk[CRYPTO_KEY_BYTES], out[CRYPTO_KEY_BYTES];
    uint8_t pwkey[CRYPTO_KEY_BYTES], pwkey2[CRYPTO_KEY_BYTES];
    uint8_t uid[CRYPTO_UID_BYTES], uid2[CRYPTO_UID_BYTES];
    uint8_t w[CRYPTO_WRAPPED_KEY_BYTES];
    crypto_user_keypair(pk, sk);
    crypto_random(pwkey, sizeof(pwkey));
    memcpy(pwkey2, pwkey, sizeof(pwkey));
    pwkey2[5] ^= 0x10;
    crypto_random(uid, sizeof(uid));
    memcpy(uid2, uid, sizeof(uid));
    uid2[15] ^= 1;

    assert_int_equal(crypto_sk_wrap_password(kr, 2, pwkey, uid, sk, w), CD_OK);
    assert_int_equal(crypto_sk_unwrap_password(kr, 2, pwkey, uid, w, out), CD_OK);
    assert_memory_equal(out, sk, sizeof(sk));

    memset(out, 0xAA, sizeof(out));
    assert_int_equal(crypto_sk_unwrap_password(kr, 2, pwkey2, uid, w, out), CD_ERR_CRYPTO);
    assert_int_equal(crypto_sk_unwrap_password(kr, 2, pwkey, uid2, w, out), CD_ERR_CRYPTO);
    assert_int_equal(crypto_sk_unwrap_password(kr, 1, pwkey, uid, w, out), CD_ERR_CRYPTO);
    assert_int_equal(crypto_sk_unwrap_password(kr, 3, pwkey, uid, w, out), CD_ERR_NOT_FOUND);
    /* Not a recovery wrapping, even with the same secret bytes. */
    assert_int_equal(crypto_sk_unwrap_recovery(kr, 2, pwkey, uid, w, out), CD_ERR_CRYPTO);
    for (size_t i = 0; i < sizeof(w); i++) {
        w[i] ^= 0x80;
        assert_int_equal(crypto_sk_unwrap_password(kr, 2, pwkey, uid, w, out), CD_ERR_CRYPTO);
        w[i] ^= 0x80;
    }
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xAA);
    assert_int_equal(crypto_sk_wrap_password(kr, 3, pwkey, uid, sk, w), CD_ERR_NOT_FOUND);

    /* The documented construction: KEK = keyed hash {pwkey, uid}, AD = tag || uid. */
    uint8_t kek[CRYPTO_KEY_BYTES], ad[17 + CRYPTO_UID_BYTES];
    struct crypto_part parts[2] = {{pwkey, sizeof(pwkey)}, {uid, sizeof(uid)}};
    assert_int_equal(crypto_keyed_hash(kr, 2, CRYPTO_PURPOSE_PASSWORD_KEK, parts, 2, kek), CD_OK);
    memcpy(ad, "confidoc-sk-pw-v1", 17);
    memcpy(ad + 17, uid, sizeof(uid));
    size_t olen = 0;
    assert_int_equal(crypto_aead_open(kek, ad, sizeof(ad), w, sizeof(w), out, sizeof(out), &olen),
                     CD_OK);
    assert_memory_equal(out, sk, sizeof(sk));
    crypto_keyring_free(kr);
}

static void test_sk_wrap_recovery(void **state)
{
    (void)state;
    crypto_keyring *kr = test_keyring(4);
    uint8_t pk[CRYPTO_KEY_BYTES], sk[CRYPTO_KEY_BYTES], out[CRYPTO_KEY_BYTES];
    uint8_t code[CRYPTO_RECOVERY_CODE_BYTES], code2[CRYPTO_RECOVERY_CODE_BYTES];
    char text[CRYPTO_RECOVERY_CODE_STRLEN];
    uint8_t uid[CRYPTO_UID_BYTES] = {9}, uid2[CRYPTO_UID_BYTES] = {8};
    uint8_t w[CRYPTO_WRAPPED_KEY_BYTES];
    crypto_user_keypair(pk, sk);
    crypto_recovery_code_new(code, text);
    memcpy(code2, code, sizeof(code));
    code2[19] ^= 1;

    assert_int_equal(crypto_sk_wrap_recovery(kr, 4, code, uid, sk, w), CD_OK);
    assert_int_equal(crypto_sk_unwrap_recovery(kr, 4, code, uid, w, out), CD_OK);
    assert_memory_equal(out, sk, sizeof(sk));
    /* Through the text form, as a user would type it back. */
    uint8_t parsed[CRYPTO_RECOVERY_CODE_BYTES];
    assert_int_equal(crypto_recovery_code_parse(text, strlen(text), parsed), CD_OK);
    assert_int_equal(crypto_sk_unwrap_recovery(kr, 4, parsed, uid, w, out), CD_OK);
    assert_memory_equal(out, sk, sizeof(sk));

    assert_int_equal(crypto_sk_unwrap_recovery(kr, 4, code2, uid, w, out), CD_ERR_CRYPTO);
    assert_int_equal(crypto_sk_unwrap_recovery(kr, 4, code, uid2, w, out), CD_ERR_CRYPTO);
    assert_int_equal(crypto_sk_unwrap_recovery(kr, 5, code, uid, w, out), CD_ERR_NOT_FOUND);
    uint8_t pwkey[CRYPTO_KEY_BYTES] = {0};
    memcpy(pwkey, code, sizeof(code));
    assert_int_equal(crypto_sk_unwrap_password(kr, 4, pwkey, uid, w, out), CD_ERR_CRYPTO);
    for (size_t i = 0; i < sizeof(w); i++) {
        w[i] ^= 1;
        assert_int_equal(crypto_sk_unwrap_recovery(kr, 4, code, uid, w, out), CD_ERR_CRYPTO);
        w[i] ^= 1;
    }
    crypto_keyring_free(kr);

    /* Another master key does not open it. */
    crypto_keyring *other = test_keyring(5);
    assert_int_equal(crypto_sk_unwrap_recovery(other, 5, code, uid, w, out), CD_ERR_CRYPTO);
    crypto_keyring_free(other);
}

/* ---- recovery codes ---- */

static void test_recovery_code_format(void **state)
{
    (void)state;
    const char *alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    for (int round = 0; round < 200; round++) {
        uint8_t raw[CRYPTO_RECOVERY_CODE_BYTES], back[CRYPTO_RECOVERY_CODE_BYTES];
        char text[CRYPTO_RECOVERY_CODE_STRLEN];
        memset(text, 'x', sizeof(text));
        crypto_recovery_code_new(raw, text);
        assert_int_equal(strlen(text), CRYPTO_RECOVERY_CODE_STRLEN - 1);
        for (size_t i = 0; i < strlen(text); i++) {
            if (i % 5 == 4)
                assert_int_equal(text[i], '-');
            else
                assert_non_null(strchr(alphabet, text[i]));
        }
        assert_int_equal(crypto_recovery_code_parse(text, strlen(text), back), CD_OK);
        assert_memory_equal(raw, back, sizeof(raw));
    }
}

static void test_recovery_code_parse(void **state)
{
    (void)state;
    uint8_t raw[CRYPTO_RECOVERY_CODE_BYTES], want[CRYPTO_RECOVERY_CODE_BYTES];

    /* Known vectors: all zero, all ones, and one exercising every symbol once. */
    memset(want, 0, sizeof(want));
    const char *zeros = "0000-0000-0000-0000-0000-0000-0000-0000";
    assert_int_equal(crypto_recovery_code_parse(zeros, strlen(zeros), raw), CD_OK);
    assert_memory_equal(raw, want, sizeof(want));
    memset(want, 0xff, sizeof(want));
    const char *ones = "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ";
    assert_int_equal(crypto_recovery_code_parse(ones, strlen(ones), raw), CD_OK);
    assert_memory_equal(raw, want, sizeof(want));
    const char *all = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    static const uint8_t all_bytes[20] = {0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54,
                                          0xb6, 0x35, 0xcf, 0x84, 0x65, 0x3a, 0x56,
                                          0xd7, 0xc6, 0x75, 0xbe, 0x77, 0xdf};
    assert_int_equal(crypto_recovery_code_parse(all, strlen(all), raw), CD_OK);
    assert_memory_equal(raw, all_bytes, sizeof(all_bytes));

    /* Aliases, lowercase, spaces, missing or extra dashes: {as typed, canonical}. */
    static const char *const variants[][2] = {
        {"0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ", "0123456789ABCDEFGHJKMNPQRSTVWXYZ"},
        {"O123-4567-89ab-cdef-ghjk-mnpq-rstv-wxyz", "0123456789ABCDEFGHJKMNPQRSTVWXYZ"},
        {"o123456789abcdefghjkmnpqrstvwxyz", "0123456789ABCDEFGHJKMNPQRSTVWXYZ"},
        {"--0123--4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ--", "0123456789ABCDEFGHJKMNPQRSTVWXYZ"},
        {"oIl3 4567 89AB CDEF GHJK MNPQ RSTV WXYZ", "0113456789ABCDEFGHJKMNPQRSTVWXYZ"},
        {" 0Li3-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ ", "0113456789ABCDEFGHJKMNPQRSTVWXYZ"},
    };
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        uint8_t expect[CRYPTO_RECOVERY_CODE_BYTES];
        assert_int_equal(crypto_recovery_code_parse(variants[i][1], 32, expect), CD_OK);
        if (crypto_recovery_code_parse(variants[i][0], strlen(variants[i][0]), raw) != CD_OK)
            fail_msg("variant %zu rejected", i);
        assert_memory_equal(raw, expect, sizeof(expect));
    }
    assert_int_equal(crypto_recovery_code_parse(variants[1][0], strlen(variants[1][0]), raw),
                     CD_OK);
    assert_memory_equal(raw, all_bytes, sizeof(all_bytes));

    /* Rejections; output untouched. */
    memset(raw, 0xAA, sizeof(raw));
    const char *bad[] = {
        "",
        "0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXY",   /* 31 symbols */
        "0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ0", /* 33 symbols */
        "0123-4567-89AB-CDEF-GHJK-MNPQ-RSTU-WXYZ",  /* U */
        "0123-4567-89AB-CDEF-GHJK-MNPQ-RSTu-WXYZ",  /* u */
        "0123-4567-89AB-CDEF-GHJK-MNPQ-RST*-WXYZ",
        "0123_4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ",
        "0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXYZ\n",
        "0123-4567-89AB-CDEF-GHJK-MNPQ-RSTV-WXY\xc3\xa9",
        "----",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (crypto_recovery_code_parse(bad[i], strlen(bad[i]), raw) != CD_ERR_INVALID)
            fail_msg("bad code %zu accepted", i);
    }
    /* An embedded NUL counts as a bad character. */
    char withnul[40];
    memcpy(withnul, all, 32);
    withnul[10] = '\0';
    assert_int_equal(crypto_recovery_code_parse(withnul, 32, raw), CD_ERR_INVALID);
    /* Input length is bounded even when only separators pad it. */
    char longtext[200];
    memset(longtext, ' ', sizeof(longtext));
    memcpy(longtext, all, 32);
    assert_int_equal(crypto_recovery_code_parse(longtext, 128, raw), CD_OK);
    memset(raw, 0xAA, sizeof(raw));
    assert_int_equal(crypto_recovery_code_parse(longtext, 129, raw), CD_ERR_INVALID);
    assert_int_equal(crypto_recovery_code_parse(NULL, 0, raw), CD_ERR_INVALID);
    for (size_t i = 0; i < sizeof(raw); i++)
        assert_int_equal(raw[i], 0xAA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_wipe_random),     cmocka_unit_test(test_keyring_single_line),
        cmocka_unit_test(test_keyring_multi_version), cmocka_unit_test(test_keyring_rejects),
        cmocka_unit_test(test_keyring_limits),        cmocka_unit_test(test_keyed_hash),
        cmocka_unit_test(test_keyed_hash_threads),    cmocka_unit_test(test_aead_round_trip),
        cmocka_unit_test(test_aead_tamper),           cmocka_unit_test(test_password_derive),
        cmocka_unit_test(test_user_keys_and_escrow),  cmocka_unit_test(test_sk_wrap_password),
        cmocka_unit_test(test_sk_wrap_recovery),      cmocka_unit_test(test_recovery_code_format),
        cmocka_unit_test(test_recovery_code_parse),   cmocka_unit_test(test_verifier_bind),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
