/* test_cas_store.c: the CAS store (metadata, versions, atomic writes that
 * leave unchanged files alone) and the symmetric-key text formats. */
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

#include "cas/inject.h"
#include "cas/seal.h"
#include "cas/store.h"

static void rm_rf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_meta_and_versions(void **state)
{
    char dir[] = "/tmp/cas-store-XXXXXX";
    char path[256];
    struct cas_store *st = NULL;
    struct store_meta m = {0}, got = {0};
    struct pki_buf b = {0};
    struct stat sb;
    (void)state;

    assert_non_null(mkdtemp(dir));
    assert_int_equal(store_open(dir, NULL, &st), CD_OK);
    snprintf(path, sizeof(path), "%s/cas", dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0700);

    assert_int_equal(store_meta_get(st, "p", "S", &got), CD_ERR_NOT_FOUND);
    m.version = 3;
    memset(m.tmpl, 'a', PKI_FP_HEX - 1);
    m.tmpl[PKI_FP_HEX - 1] = '\0';
    assert_int_equal(store_meta_put(st, "p", "S", &m), CD_OK);
    assert_int_equal(store_meta_get(st, "p", "S", &got), CD_OK);
    assert_int_equal(got.version, 3);
    assert_string_equal(got.tmpl, m.tmpl);
    m.version = 1;
    m.tmpl[0] = '\0';
    assert_int_equal(store_meta_put(st, "p", "K", &m), CD_OK);
    assert_int_equal(store_meta_get(st, "p", "K", &got), CD_OK);
    assert_int_equal(got.version, 1);
    assert_string_equal(got.tmpl, "");

    /* a corrupt metadata file is an error, not a fresh start */
    snprintf(path, sizeof(path), "%s/cas/p/X.meta", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("version 0x2\ntemplate -\n", f);
    fclose(f);
    assert_int_equal(store_meta_get(st, "p", "X", &got), CD_ERR_IO);

    assert_int_equal(store_put(st, "p", "S", 2, "bin", "\x01\x02\x03", 3), CD_OK);
    assert_int_equal(store_get(st, "p", "S", 2, "bin", &b), CD_OK);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "\x01\x02\x03", 3);
    pki_buf_release(&b);
    assert_null(b.data);
    assert_int_equal(store_get(st, "p", "S", 1, "bin", &b), CD_ERR_NOT_FOUND);
    snprintf(path, sizeof(path), "%s/cas/p/S.v2.bin", dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);

    /* the lock is released on close */
    store_close(st);
    assert_int_equal(store_open(dir, NULL, &st), CD_OK);
    store_close(st);
    rm_rf(dir);
}

static void test_write_unchanged(void **state)
{
    char dir[] = "/tmp/cas-write-XXXXXX";
    char path[256];
    struct stat a, b;
    bool changed = false;
    (void)state;

    assert_non_null(mkdtemp(dir));
    assert_int_equal(store_mkdirs(dir, "x/y", 0700, (uid_t)-1, (gid_t)-1), CD_OK);
    snprintf(path, sizeof(path), "%s/x/y", dir);
    assert_int_equal(stat(path, &a), 0);
    assert_int_equal(a.st_mode & 07777, 0700);
    snprintf(path, sizeof(path), "%s/x/y/f", dir);
    assert_int_equal(store_write_file(path, "one", 3, 0600, (uid_t)-1, (gid_t)-1, &changed), CD_OK);
    assert_true(changed);
    assert_int_equal(stat(path, &a), 0);
    assert_int_equal(a.st_mode & 07777, 0600);
    assert_int_equal(store_write_file(path, "one", 3, 0600, (uid_t)-1, (gid_t)-1, &changed), CD_OK);
    assert_false(changed);
    assert_int_equal(stat(path, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino); /* not replaced */
    /* a wrong mode is repaired in place */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(store_write_file(path, "one", 3, 0600, (uid_t)-1, (gid_t)-1, &changed), CD_OK);
    assert_false(changed);
    assert_int_equal(stat(path, &b), 0);
    assert_int_equal(b.st_mode & 07777, 0600);
    assert_int_equal(store_write_file(path, "two", 3, 0600, (uid_t)-1, (gid_t)-1, &changed), CD_OK);
    assert_true(changed);
    assert_int_equal(stat(path, &b), 0);
    assert_int_not_equal(a.st_ino, b.st_ino); /* renamed over */
    /* public files: 0644 and a 0755 directory */
    struct pki_buf content = {.data = (char *)"cert\n", .len = 5};
    assert_int_equal(
        inject_write(dir, "public/ca.crt", &content, true, (uid_t)-1, (gid_t)-1, &changed), CD_OK);
    snprintf(path, sizeof(path), "%s/public/ca.crt", dir);
    assert_int_equal(stat(path, &b), 0);
    assert_int_equal(b.st_mode & 07777, 0644);
    snprintf(path, sizeof(path), "%s/public", dir);
    assert_int_equal(stat(path, &b), 0);
    assert_int_equal(b.st_mode & 07777, 0755);
    rm_rf(dir);
}

/* review_2: a link planted where a directory or file goes is never followed:
 * store_mkdirs refuses a linked directory (nothing is created or chmodded
 * behind it), and a write replaces a linked file instead of writing through
 * it (its target keeps content and mode). */
static void test_links_not_followed(void **state)
{
    char dir[] = "/tmp/cas-links-XXXXXX";
    char path[256], target[256], link[256], buf[16] = "";
    struct stat sb;
    bool changed = false;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(target, sizeof(target), "%s/target", dir);
    assert_int_equal(mkdir(target, 0755), 0);
    snprintf(link, sizeof(link), "%s/a", dir);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(store_mkdirs(dir, "a/b", 0700, (uid_t)-1, (gid_t)-1), CD_ERR_IO);
    assert_int_equal(stat(target, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0755);
    snprintf(path, sizeof(path), "%s/target/b", dir);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(store_mkdirs(dir, "x/../y", 0700, (uid_t)-1, (gid_t)-1), CD_ERR_INVALID);

    snprintf(target, sizeof(target), "%s/target/file", dir);
    FILE *f = fopen(target, "w");
    assert_non_null(f);
    fputs("keep", f);
    fclose(f);
    assert_int_equal(chmod(target, 0644), 0);
    snprintf(link, sizeof(link), "%s/f", dir);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(store_write_file(link, "new", 3, 0600, (uid_t)-1, (gid_t)-1, &changed), CD_OK);
    assert_true(changed);
    assert_int_equal(lstat(link, &sb), 0);
    assert_true(S_ISREG(sb.st_mode)); /* the link was replaced */
    assert_int_equal(sb.st_mode & 07777, 0600);
    f = fopen(target, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_string_equal(buf, "keep");
    assert_int_equal(stat(target, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0644);
    rm_rf(dir);
}

static void test_symmetric_text(void **state)
{
    unsigned char k1[2] = {0x00, 0xff}, k2[2] = {0xab, 0x01};
    const unsigned char *keys[] = {k1, k2};
    size_t lens[] = {2, 2};
    struct pki_buf out = {0};
    (void)state;

    assert_int_equal(inject_symmetric_text(POLICY_PART_KEYRING, keys, lens, 2, &out), CD_OK);
    assert_string_equal(out.data, "1:00ff\n2:ab01\n");
    pki_buf_release(&out);
    assert_int_equal(inject_symmetric_text(POLICY_PART_MARIADB_KEYFILE, keys, lens, 2, &out),
                     CD_OK);
    assert_string_equal(out.data, "1;00ff\n2;ab01\n");
    pki_buf_release(&out);
    assert_int_equal(inject_symmetric_text(POLICY_PART_HEX, keys, lens, 2, &out), CD_OK);
    assert_string_equal(out.data, "ab01");
    pki_buf_release(&out);
    assert_int_equal(inject_symmetric_text(POLICY_PART_CRT, keys, lens, 2, &out), CD_ERR_INVALID);
    assert_int_equal(inject_symmetric_text(POLICY_PART_HEX, keys, lens, 0, &out), CD_ERR_INVALID);
}

static size_t slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void spill(const char *path, const char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
}

/* A store given a state key seals every file: no PEM header and no key
 * bytes on disk; an altered or swapped file is CD_ERR_CRYPTO. */
static void test_sealed_store(void **state)
{
    char dir[] = "/tmp/cas-sealed-XXXXXX";
    char path[256], path2[256], kf[256], buf[4096], buf2[4096];
    const char pem[] =
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n";
    const char keybytes[] = "\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff\x01";
    struct store_meta m = {0}, got = {0};
    struct cas_store *st = NULL;
    struct seal_key *key = NULL;
    struct pki_buf b = {0};
    struct cd_diag d;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(kf, sizeof(kf), "%s/sealing.key", dir);
    struct seal_source src = {SEAL_SOURCE_FILE, kf};
    cd_diag_init(&d);
    assert_int_equal(seal_open(dir, &src, NULL, &d, &key), CD_OK);
    assert_int_equal(store_open(dir, key, &st), CD_OK);

    m.version = 1;
    memset(m.tmpl, 'b', PKI_FP_HEX - 1);
    m.tmpl[PKI_FP_HEX - 1] = '\0';
    assert_int_equal(store_meta_put(st, "p", "S", &m), CD_OK);
    assert_int_equal(store_meta_put(st, "p", "K", &m), CD_OK);
    assert_int_equal(store_put(st, "p", "S", 1, "pem", pem, sizeof(pem) - 1), CD_OK);
    assert_int_equal(store_put(st, "p", "K", 1, "bin", keybytes, 16), CD_OK);
    assert_int_equal(store_blob_put(st, "sessions", "api.yaml", "name: api\n", 10), CD_OK);

    /* on disk: sealed (header CDSL), no PEM header, no key bytes, no metadata text */
    const char *files[] = {"p/S.meta", "p/K.meta", "p/S.v1.pem", "p/K.v1.bin", "sessions/api.yaml"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s/cas/%s", dir, files[i]);
        size_t n = slurp(path, buf, sizeof(buf));
        assert_true(n > SEAL_OVERHEAD);
        assert_memory_equal(buf, "CDSL", 4);
        assert_null(memmem(buf, n, "-----BEGIN", 10));
        assert_null(memmem(buf, n, keybytes, 16));
        assert_null(memmem(buf, n, "version", 7));
        assert_null(memmem(buf, n, "name: api", 9));
    }
    /* read back through the store */
    assert_int_equal(store_meta_get(st, "p", "S", &got), CD_OK);
    assert_int_equal(got.version, 1);
    assert_string_equal(got.tmpl, m.tmpl);
    assert_int_equal(store_get(st, "p", "S", 1, "pem", &b), CD_OK);
    assert_int_equal(b.len, sizeof(pem) - 1);
    assert_memory_equal(b.data, pem, b.len);
    pki_buf_release(&b);
    assert_int_equal(store_get(st, "p", "K", 1, "bin", &b), CD_OK);
    assert_memory_equal(b.data, keybytes, 16);
    pki_buf_release(&b);
    assert_int_equal(store_blob_get(st, "sessions", "api.yaml", &b), CD_OK);
    assert_memory_equal(b.data, "name: api\n", 10);
    pki_buf_release(&b);
    assert_int_equal(store_blob_get(st, "sessions", "none.yaml", &b), CD_ERR_NOT_FOUND);
    assert_int_equal(store_blob_put(st, "sessions", "../x", "a", 1), CD_ERR_INVALID);
    assert_int_equal(store_blob_put(st, "sessions", ".hidden", "a", 1), CD_ERR_INVALID);
    assert_int_equal(store_blob_put(st, "a/b", "x", "a", 1), CD_ERR_INVALID);
    assert_int_equal(store_blob_put(st, "sessions", "", "a", 1), CD_ERR_INVALID);

    /* one flipped byte: refused */
    snprintf(path, sizeof(path), "%s/cas/p/S.v1.pem", dir);
    size_t n = slurp(path, buf, sizeof(buf));
    buf[n / 2] ^= 0x01;
    spill(path, buf, n);
    assert_int_equal(store_get(st, "p", "S", 1, "pem", &b), CD_ERR_CRYPTO);
    assert_null(b.data);
    buf[n / 2] ^= 0x01;
    spill(path, buf, n);
    assert_int_equal(store_get(st, "p", "S", 1, "pem", &b), CD_OK);
    pki_buf_release(&b);
    /* truncated: refused */
    spill(path, buf, n - 1);
    assert_int_equal(store_get(st, "p", "S", 1, "pem", &b), CD_ERR_CRYPTO);
    /* swapped: K's metadata copied over S's opens under neither name */
    snprintf(path, sizeof(path), "%s/cas/p/S.meta", dir);
    snprintf(path2, sizeof(path2), "%s/cas/p/K.meta", dir);
    n = slurp(path2, buf2, sizeof(buf2));
    spill(path, buf2, n);
    assert_int_equal(store_meta_get(st, "p", "S", &got), CD_ERR_CRYPTO);
    assert_int_equal(store_meta_get(st, "p", "K", &got), CD_OK);
    store_close(st);

    /* another state key does not open the files */
    char dir2[128], kf2[256];
    struct seal_key *key2 = NULL;
    snprintf(dir2, sizeof(dir2), "%s/other", dir);
    snprintf(kf2, sizeof(kf2), "%s/other.key", dir);
    struct seal_source src2 = {SEAL_SOURCE_FILE, kf2};
    assert_int_equal(seal_open(dir2, &src2, NULL, &d, &key2), CD_OK);
    snprintf(path, sizeof(path), "%s/cas/p", dir2);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/cas/p/K.meta", dir2);
    spill(path, buf2, n); /* K's sealed metadata */
    assert_int_equal(store_open(dir2, key2, &st), CD_OK);
    assert_int_equal(store_meta_get(st, "p", "K", &got), CD_ERR_CRYPTO);
    store_close(st);
    seal_key_free(key2);
    seal_key_free(key);
    rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_and_versions),  cmocka_unit_test(test_write_unchanged),
        cmocka_unit_test(test_links_not_followed), cmocka_unit_test(test_symmetric_text),
        cmocka_unit_test(test_sealed_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
