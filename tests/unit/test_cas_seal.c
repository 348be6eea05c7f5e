/* test_cas_seal.c: the CAS's sealed state: the AEAD of a blob, the sealing
 * key sources (file checks, first start, keyring), and recovery with X25519
 * recovery keys (1 of N, k of N). */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/keyctl.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "cas/seal.h"

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    assert_int_equal(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void path_in(char *out, size_t n, const char *dir, const char *rel)
{
    snprintf(out, n, "%s/%s", dir, rel);
}

static void write_bytes(const char *path, const void *data, size_t len, mode_t mode)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static size_t read_bytes(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* A state opened with a key file in dir (created at first start). */
static struct seal_key *open_file_state(const char *state, const char *keyfile,
                                        const struct seal_recovery *rec, cd_err want)
{
    struct seal_source src = {SEAL_SOURCE_FILE, keyfile};
    struct cd_diag d;
    struct seal_key *k = NULL;
    cd_diag_init(&d);
    cd_err err = seal_open(state, &src, rec, &d, &k);
    if (err != want)
        fprintf(stderr, "seal_open: %s: %s", cd_strerror(err), d.text);
    assert_int_equal(err, want);
    return k;
}

static void test_aead(void **state)
{
    char dir[] = "/tmp/cas-seal-XXXXXX", kf[256], st2[256];
    struct pki_buf ct = {0}, pt = {0}, ct2 = {0};
    const char msg[] = "-----BEGIN PRIVATE KEY----- secret";
    (void)state;

    assert_non_null(mkdtemp(dir));
    path_in(kf, sizeof(kf), dir, "sealing.key");
    struct seal_key *k = open_file_state(dir, kf, NULL, CD_OK);
    assert_non_null(k);

    assert_int_equal(seal_encrypt(k, "p/S.v1.pem", msg, sizeof(msg), &ct), CD_OK);
    assert_int_equal(ct.len, sizeof(msg) + SEAL_OVERHEAD);
    assert_memory_equal(ct.data, "CDSL\x01", 5);
    assert_null(memmem(ct.data, ct.len, "BEGIN", 5));
    assert_int_equal(seal_decrypt(k, "p/S.v1.pem", ct.data, ct.len, &pt), CD_OK);
    assert_int_equal(pt.len, sizeof(msg));
    assert_memory_equal(pt.data, msg, sizeof(msg));
    pki_buf_release(&pt);
    /* a random nonce: the same text seals differently */
    assert_int_equal(seal_encrypt(k, "p/S.v1.pem", msg, sizeof(msg), &ct2), CD_OK);
    assert_memory_not_equal(ct.data, ct2.data, ct.len);
    pki_buf_release(&ct2);
    /* the empty text */
    assert_int_equal(seal_encrypt(k, "e", "", 0, &ct2), CD_OK);
    assert_int_equal(seal_decrypt(k, "e", ct2.data, ct2.len, &pt), CD_OK);
    assert_int_equal(pt.len, 0);
    pki_buf_release(&pt);
    pki_buf_release(&ct2);

    /* every flipped bit of every byte (header, nonce, text, tag) is refused */
    for (size_t i = 0; i < ct.len; i++)
        for (int bit = 0; bit < 8; bit++) {
            ct.data[i] ^= (char)(1u << bit);
            assert_int_equal(seal_decrypt(k, "p/S.v1.pem", ct.data, ct.len, &pt), CD_ERR_CRYPTO);
            assert_null(pt.data);
            ct.data[i] ^= (char)(1u << bit);
        }
    /* truncated, at every length */
    for (size_t n = 0; n < ct.len; n++)
        assert_int_equal(seal_decrypt(k, "p/S.v1.pem", ct.data, n, &pt), CD_ERR_CRYPTO);
    /* another name: swapped files do not open */
    assert_int_equal(seal_decrypt(k, "p/K.v1.pem", ct.data, ct.len, &pt), CD_ERR_CRYPTO);
    assert_int_equal(seal_decrypt(k, "p/S.v1.pe", ct.data, ct.len, &pt), CD_ERR_CRYPTO);
    /* another state key */
    snprintf(st2, sizeof(st2), "%s/other", dir);
    path_in(kf, sizeof(kf), dir, "other.key");
    struct seal_key *k2 = open_file_state(st2, kf, NULL, CD_OK);
    assert_int_equal(seal_decrypt(k2, "p/S.v1.pem", ct.data, ct.len, &pt), CD_ERR_CRYPTO);
    /* bad arguments */
    assert_int_equal(seal_encrypt(k, "", msg, 1, &ct2), CD_ERR_INVALID);
    assert_int_equal(seal_encrypt(NULL, "n", msg, 1, &ct2), CD_ERR_INVALID);
    assert_int_equal(seal_encrypt(k, "n", msg, SEAL_MAX_PLAINTEXT + 1, &ct2), CD_ERR_TOO_LARGE);
    assert_int_equal(seal_decrypt(k, "p/S.v1.pem", ct.data, ct.len, &pt), CD_OK);
    pki_buf_release(&pt);
    pki_buf_release(&ct);
    /* the state key lives in OpenSSL's secure (locked) heap: freeing it
     * gives back secure-heap bytes */
    assert_true(CRYPTO_secure_malloc_initialized());
    size_t used = CRYPTO_secure_used();
    seal_key_free(k2);
    assert_true(CRYPTO_secure_used() + SEAL_KEY_BYTES <= used);
    seal_key_free(k);
    seal_key_free(NULL);
    rm_rf(dir);
}

static void test_key_file(void **state)
{
    char dir[] = "/tmp/cas-sealf-XXXXXX", kf[256], other[256], link[256], path[256];
    unsigned char raw[128], raw2[128];
    struct pki_buf ct = {0}, pt = {0};
    struct stat sb;
    (void)state;

    assert_non_null(mkdtemp(dir));
    path_in(kf, sizeof(kf), dir, "sealing.key");
    /* first start: creates the key file (0600, 32 bytes) and state-key.sealed */
    struct seal_key *k = open_file_state(dir, kf, NULL, CD_OK);
    assert_int_equal(stat(kf, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(sb.st_size, 32);
    path_in(path, sizeof(path), dir, "cas/state-key.sealed");
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(read_bytes(kf, raw, sizeof(raw)), 32);
    size_t n = read_bytes(path, raw2, sizeof(raw2));
    assert_int_equal(n, 32 + SEAL_OVERHEAD);
    assert_null(memmem(raw2, n, raw, 32)); /* the sealing key is not in it */
    assert_int_equal(seal_encrypt(k, "x", "hello", 5, &ct), CD_OK);
    seal_key_free(k);
    /* second start: the same state key */
    k = open_file_state(dir, kf, NULL, CD_OK);
    assert_int_equal(seal_decrypt(k, "x", ct.data, ct.len, &pt), CD_OK);
    assert_memory_equal(pt.data, "hello", 5);
    pki_buf_release(&pt);
    seal_key_free(k);

    /* the key as 64 hex digits and a newline opens it too */
    char hex[66];
    for (int i = 0; i < 32; i++)
        snprintf(hex + (size_t)2 * (size_t)i, 3, "%02X", raw[i]);
    hex[64] = '\n';
    path_in(other, sizeof(other), dir, "hex.key");
    write_bytes(other, hex, 65, 0400);
    k = open_file_state(dir, other, NULL, CD_OK);
    assert_int_equal(seal_decrypt(k, "x", ct.data, ct.len, &pt), CD_OK);
    pki_buf_release(&pt);
    seal_key_free(k);

    /* mode 0644, 0640, 0700 refused; not 32 bytes refused */
    assert_int_equal(chmod(kf, 0644), 0);
    assert_null(open_file_state(dir, kf, NULL, CD_ERR_CONFIG));
    assert_int_equal(chmod(kf, 0640), 0);
    assert_null(open_file_state(dir, kf, NULL, CD_ERR_CONFIG));
    assert_int_equal(chmod(kf, 0700), 0);
    assert_null(open_file_state(dir, kf, NULL, CD_ERR_CONFIG));
    assert_int_equal(chmod(kf, 0600), 0);
    write_bytes(other, raw, 31, 0600);
    assert_null(open_file_state(dir, other, NULL, CD_ERR_CONFIG));
    /* a symbolic link to a good key file refused */
    path_in(link, sizeof(link), dir, "link.key");
    assert_int_equal(symlink(kf, link), 0);
    assert_null(open_file_state(dir, link, NULL, CD_ERR_CONFIG));
    /* another user's file refused (root only: chown) */
    if (geteuid() == 0) {
        assert_int_equal(chown(kf, 65534, 65534), 0);
        assert_null(open_file_state(dir, kf, NULL, CD_ERR_CONFIG));
        assert_int_equal(chown(kf, 0, 0), 0);
    }
    /* another key: CD_ERR_CRYPTO; a missing one: CD_ERR_NOT_FOUND (not created) */
    raw[0] ^= 1;
    write_bytes(other, raw, 32, 0600);
    assert_null(open_file_state(dir, other, NULL, CD_ERR_CRYPTO));
    path_in(other, sizeof(other), dir, "missing.key");
    assert_null(open_file_state(dir, other, NULL, CD_ERR_NOT_FOUND));
    assert_int_equal(access(other, F_OK), -1);
    /* state-key.sealed altered: CD_ERR_CRYPTO */
    raw2[10] ^= 1;
    write_bytes(path, raw2, n, 0600);
    assert_null(open_file_state(dir, kf, NULL, CD_ERR_CRYPTO));
    pki_buf_release(&ct);
    rm_rf(dir);
}

static long key_search(const char *desc)
{
    return syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", desc, 0);
}

static void test_keyring(void **state)
{
    char dir[] = "/tmp/cas-sealk-XXXXXX", desc[64];
    struct seal_source src = {SEAL_SOURCE_KEYRING, desc};
    struct pki_buf ct = {0}, pt = {0};
    struct seal_key *k = NULL;
    struct cd_diag d;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(desc, sizeof(desc), "confidoc-test-seal-%ld", (long)getpid());
    assert_true(key_search(desc) < 0);
    cd_diag_init(&d);
    assert_int_equal(seal_open(dir, &src, NULL, &d, &k), CD_OK);
    long id = key_search(desc);
    assert_true(id > 0); /* created in the user keyring */
    assert_int_equal(seal_encrypt(k, "x", "hi", 2, &ct), CD_OK);
    seal_key_free(k);
    k = NULL;
    assert_int_equal(seal_open(dir, &src, NULL, &d, &k), CD_OK);
    assert_int_equal(seal_decrypt(k, "x", ct.data, ct.len, &pt), CD_OK);
    pki_buf_release(&pt);
    seal_key_free(k);
    k = NULL;
    /* the key gone: CD_ERR_NOT_FOUND, and not created again */
    assert_int_equal(syscall(SYS_keyctl, KEYCTL_INVALIDATE, id), 0);
    for (int i = 0; i < 50 && key_search(desc) > 0; i++)
        usleep(10000); /* invalidated keys are collected asynchronously */
    assert_int_equal(seal_open(dir, &src, NULL, &d, &k), CD_ERR_NOT_FOUND);
    assert_true(key_search(desc) < 0);
    src.name = "has space";
    assert_int_equal(seal_open(dir, &src, NULL, &d, &k), CD_ERR_CONFIG);
    pki_buf_release(&ct);
    rm_rf(dir);
}

/* n recovery key pairs in dir: priv[i], pub[i]. */
static void keygen(const char *dir, size_t n, char priv[][256], char pub[][256])
{
    for (size_t i = 0; i < n; i++) {
        snprintf(priv[i], 256, "%s/rec%zu.key", dir, i);
        snprintf(pub[i], 256, "%s/rec%zu.pub", dir, i);
        assert_int_equal(seal_recovery_keygen(priv[i], pub[i]), CD_OK);
        struct stat sb;
        assert_int_equal(stat(priv[i], &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0600);
        assert_int_equal(stat(pub[i], &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0644);
    }
    assert_int_equal(seal_recovery_keygen(priv[0], "/tmp/never-written.pub"), CD_ERR_EXISTS);
    assert_int_equal(access("/tmp/never-written.pub", F_OK), -1);
}

/* Recovers dir's state with the keys idx[0..m) into a new key file; then the
 * blob ct (sealed under the old state key) must open with it. */
static cd_err recover_with(const char *dir, char priv[][256], const size_t *idx, size_t m,
                           const struct pki_buf *ct)
{
    const char *keys[8];
    char kf[256];
    struct cd_diag d;
    static int round;
    for (size_t i = 0; i < m; i++)
        keys[i] = priv[idx[i]];
    snprintf(kf, sizeof(kf), "%s/new%d.key", dir, round++);
    struct seal_source src = {SEAL_SOURCE_FILE, kf};
    cd_diag_init(&d);
    cd_err err = seal_recover(dir, keys, m, &src, &d);
    if (err != CD_OK)
        return err;
    struct seal_key *k = open_file_state(dir, kf, NULL, CD_OK);
    struct pki_buf pt = {0};
    assert_int_equal(seal_decrypt(k, "x", ct->data, ct->len, &pt), CD_OK);
    assert_memory_equal(pt.data, "state", 5);
    pki_buf_release(&pt);
    seal_key_free(k);
    return CD_OK;
}

static void test_recovery_1_of_2(void **state)
{
    char dir[] = "/tmp/cas-rec1-XXXXXX", priv[3][256], pub[3][256], kf[256], path[256];
    const char *pubs[2];
    struct pki_buf ct = {0};
    (void)state;

    assert_non_null(mkdtemp(dir));
    keygen(dir, 3, priv, pub);
    pubs[0] = pub[0];
    pubs[1] = pub[1];
    struct seal_recovery rec = {pubs, 2, 1};
    path_in(kf, sizeof(kf), dir, "sealing.key");
    struct seal_key *k = open_file_state(dir, kf, &rec, CD_OK);
    assert_int_equal(seal_encrypt(k, "x", "state", 5, &ct), CD_OK);
    seal_key_free(k);
    /* the sealing key lost */
    assert_int_equal(unlink(kf), 0);
    assert_null(open_file_state(dir, kf, NULL, CD_ERR_NOT_FOUND));
    /* either key recovers; a key that is not a recovery key is refused */
    size_t a = 0, b = 1, c = 2;
    assert_int_equal(recover_with(dir, priv, &a, 1, &ct), CD_OK);
    assert_int_equal(recover_with(dir, priv, &b, 1, &ct), CD_OK);
    assert_int_equal(recover_with(dir, priv, &c, 1, &ct), CD_ERR_AUTH);
    /* a wrap altered: CD_ERR_CRYPTO */
    unsigned char buf[512];
    path_in(path, sizeof(path), dir, "cas/recovery/1.wrap");
    size_t n = read_bytes(path, buf, sizeof(buf));
    buf[n - 1] ^= 1;
    write_bytes(path, buf, n, 0600);
    assert_int_equal(recover_with(dir, priv, &a, 1, &ct), CD_ERR_CRYPTO);
    assert_int_equal(recover_with(dir, priv, &b, 1, &ct), CD_OK);
    /* swapped wraps (1 for 2) do not open either */
    char p2[256];
    path_in(p2, sizeof(p2), dir, "cas/recovery/2.wrap");
    buf[n - 1] ^= 1;
    write_bytes(p2, buf, n, 0600);
    assert_int_equal(recover_with(dir, priv, &b, 1, &ct), CD_ERR_CRYPTO);
    pki_buf_release(&ct);
    rm_rf(dir);
}

static void test_recovery_2_of_3(void **state)
{
    char dir[] = "/tmp/cas-rec2-XXXXXX", priv[4][256], pub[4][256], kf[256], path[256];
    const char *pubs[3];
    struct pki_buf ct = {0};
    (void)state;

    assert_non_null(mkdtemp(dir));
    keygen(dir, 4, priv, pub);
    for (int i = 0; i < 3; i++)
        pubs[i] = pub[i];
    struct seal_recovery rec = {pubs, 3, 2};
    path_in(kf, sizeof(kf), dir, "sealing.key");
    struct seal_key *k = open_file_state(dir, kf, &rec, CD_OK);
    assert_int_equal(seal_encrypt(k, "x", "state", 5, &ct), CD_OK);
    seal_key_free(k);
    assert_int_equal(unlink(kf), 0);
    /* any two of the three; the same key twice is one; one alone refused */
    const size_t pairs[][2] = {{0, 1}, {1, 2}, {2, 0}, {1, 0}};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(recover_with(dir, priv, pairs[i], 2, &ct), CD_OK);
    const size_t all[] = {0, 1, 2}, twice[] = {1, 1}, with_stranger[] = {0, 3};
    assert_int_equal(recover_with(dir, priv, all, 3, &ct), CD_OK);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(recover_with(dir, priv, &all[i], 1, &ct), CD_ERR_AUTH);
    assert_int_equal(recover_with(dir, priv, twice, 2, &ct), CD_ERR_AUTH);
    assert_int_equal(recover_with(dir, priv, with_stranger, 2, &ct), CD_ERR_AUTH);
    /* the index lowered to threshold 1 does not make one share enough */
    path_in(path, sizeof(path), dir, "cas/recovery/index");
    char idx[1024];
    size_t n = read_bytes(path, (unsigned char *)idx, sizeof(idx) - 1);
    idx[n] = '\0';
    char *t = strstr(idx, "threshold 2");
    assert_non_null(t);
    t[10] = '1';
    write_bytes(path, idx, n, 0600);
    assert_int_not_equal(recover_with(dir, priv, &all[0], 1, &ct), CD_OK);
    /* bad configuration at first start */
    char st2[256];
    snprintf(st2, sizeof(st2), "%s/st2", dir);
    path_in(kf, sizeof(kf), dir, "k2.key");
    struct seal_recovery bad = {pubs, 3, 4};
    assert_null(open_file_state(st2, kf, &bad, CD_ERR_INVALID));
    const char *dup[] = {pub[0], pub[0]};
    struct seal_recovery dupl = {dup, 2, 1};
    assert_null(open_file_state(st2, kf, &dupl, CD_ERR_CONFIG));
    const char *notpub[] = {priv[0]};
    struct seal_recovery np = {notpub, 1, 1};
    assert_null(open_file_state(st2, kf, &np, CD_ERR_CONFIG));
    pki_buf_release(&ct);
    rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aead),
        cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_keyring),
        cmocka_unit_test(test_recovery_1_of_2),
        cmocka_unit_test(test_recovery_2_of_3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
