/* test_crypto.c: unit tests of the crypto module (keyring, keyed hash, AEAD, documents, keys). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static cd_err load_text(const char *text, mode_t mode, crypto_keyring **kr, char *err,
                        size_t errlen)
{
    const char *path = write_file(text, mode);
    cd_err e = crypto_keyring_load(path, kr, err, errlen);
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
    char err[256];
    assert_int_equal(load_text(HEX_A "\n", 0600, &kr, err, sizeof(err)), CD_OK);
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
    assert_int_equal(load_text(HEX_A, 0400, &kr, err, sizeof(err)), CD_OK);
    crypto_keyring_free(kr);
    crypto_keyring_free(NULL);
}

static void test_keyring_multi_version(void **state)
{
    (void)state;
    crypto_keyring *kr = NULL;
    char err[256];
    const char *text = "# confidoc master keys\n"
                       "\n"
                       "2:" HEX_A "\n"
                       "   # indented comment\n"
                       "7:" HEX_B "\r\n"
                       "\t\n"
                       "3 : " HEX_A "  \n";
    assert_int_equal(load_text(text, 0600, &kr, err, sizeof(err)), CD_OK);
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
    char err[256] = "";
    assert_int_equal(load_text(text, mode, &kr, err, sizeof(err)), want);
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
    char err[256];
    assert_int_equal(load_text("2147483647:" HEX_A "\n", 0600, &kr, err, sizeof(err)), CD_OK);
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
    char err[256];
    assert_int_equal(load_text(text, 0600, &kr, err, sizeof(err)), CD_OK);
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
    assert_int_equal(crypto_keyring_load(path, &kr, err, sizeof(err)), CD_ERR_IO);
    assert_int_equal(crypto_keyring_load(tmpdir, &kr, err, sizeof(err)), CD_ERR_CONFIG);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_wipe_random),     cmocka_unit_test(test_keyring_single_line),
        cmocka_unit_test(test_keyring_multi_version), cmocka_unit_test(test_keyring_rejects),
        cmocka_unit_test(test_keyring_limits),        cmocka_unit_test(test_keyed_hash),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
