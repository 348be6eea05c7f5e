/* test_cas_store_import.c: store_import_plaintext, the upgrade of an older
 * stack's plaintext store (offline provision) into the sealed one. */
#include <ftw.h>
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

#include "cas/seal.h"
#include "cas/store.h"

static size_t slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void spit(const char *path, const char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void test_import(void **state)
{
    char dir[] = "/tmp/cas-import-XXXXXX";
    char path[256], kf[256], buf[4096], before[4096];
    const char pem[] =
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n";
    const char keybytes[] = "\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff\x01";
    struct store_meta m = {0}, got = {0};
    struct cas_store *st = NULL;
    struct seal_key *key = NULL;
    struct pki_buf b = {0};
    struct cd_diag d;
    size_t count = 99;
    (void)state;

    assert_non_null(mkdtemp(dir));
    /* the old layout: plaintext files written by offline provision */
    assert_int_equal(store_open(dir, NULL, &st), CD_OK);
    m.version = 1;
    memset(m.tmpl, 'b', PKI_FP_HEX - 1);
    m.tmpl[PKI_FP_HEX - 1] = '\0';
    assert_int_equal(store_meta_put(st, "p", "S", &m), CD_OK);
    assert_int_equal(store_meta_put(st, "p", "K", &m), CD_OK);
    assert_int_equal(store_put(st, "p", "S", 1, "pem", pem, sizeof(pem) - 1), CD_OK);
    assert_int_equal(store_put(st, "p", "K", 1, "bin", keybytes, 16), CD_OK);
    store_close(st);
    st = NULL;
    /* recovery/ is never touched */
    snprintf(path, sizeof(path), "%s/cas/recovery", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/cas/recovery/index", dir);
    spit(path, "plain index\n", 12);

    snprintf(kf, sizeof(kf), "%s/sealing.key", dir);
    struct seal_source src = {SEAL_SOURCE_FILE, kf};
    cd_diag_init(&d);
    assert_int_equal(seal_open(dir, &src, NULL, &d, &key), CD_OK);
    cd_diag_init(&d);
    assert_int_equal(store_import_plaintext(dir, key, &count, &d), CD_OK);
    assert_int_equal(count, 4);

    const char *files[] = {"p/S.meta", "p/K.meta", "p/S.v1.pem", "p/K.v1.bin"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/cas/%s", dir, files[i]);
        size_t n = slurp(path, buf, sizeof(buf));
        assert_true(n > SEAL_OVERHEAD);
        assert_memory_equal(buf, "CDSL", 4);
        assert_null(memmem(buf, n, "-----BEGIN", 10));
        assert_null(memmem(buf, n, keybytes, 16));
        assert_null(memmem(buf, n, "version", 7));
    }
    snprintf(path, sizeof(path), "%s/cas/recovery/index", dir);
    assert_int_equal(slurp(path, buf, sizeof(buf)), 12);
    assert_memory_equal(buf, "plain index\n", 12);

    /* the sealed store reads what the plaintext one held */
    assert_int_equal(store_open(dir, key, &st), CD_OK);
    assert_int_equal(store_meta_get(st, "p", "S", &got), CD_OK);
    assert_int_equal(got.version, 1);
    assert_string_equal(got.tmpl, m.tmpl);
    assert_int_equal(store_get(st, "p", "S", 1, "pem", &b), CD_OK);
    assert_int_equal(b.len, sizeof(pem) - 1);
    assert_memory_equal(b.data, pem, b.len);
    pki_buf_release(&b);
    assert_int_equal(store_get(st, "p", "K", 1, "bin", &b), CD_OK);
    assert_int_equal(b.len, 16);
    assert_memory_equal(b.data, keybytes, 16);
    pki_buf_release(&b);
    store_close(st);

    /* a second run (after an interruption) seals nothing twice */
    assert_int_equal(store_import_plaintext(dir, key, &count, &d), CD_OK);
    assert_int_equal(count, 0);

    /* a sealed file that was altered is refused, never sealed again */
    snprintf(path, sizeof(path), "%s/cas/p/S.v1.pem", dir);
    size_t n = slurp(path, before, sizeof(before));
    memcpy(buf, before, n);
    buf[n - 1] ^= 1;
    spit(path, buf, n);
    cd_diag_init(&d);
    assert_int_equal(store_import_plaintext(dir, key, &count, &d), CD_ERR_CRYPTO);
    assert_non_null(strstr(d.text, "p/S.v1.pem"));
    assert_int_equal(slurp(path, buf, sizeof(buf)), n);
    assert_memory_equal(buf, before, n - 1);
    assert_int_not_equal(buf[n - 1], before[n - 1]);

    seal_key_free(key);
    assert_int_equal(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void test_no_store(void **state)
{
    struct cd_diag d;
    size_t count = 0;
    (void)state;
    cd_diag_init(&d);
    /* the key is not used before the directory is opened */
    assert_int_equal(store_import_plaintext("/nonexistent-confidoc", NULL, &count, &d),
                     CD_ERR_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import),
        cmocka_unit_test(test_no_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
