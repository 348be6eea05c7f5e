/* test_secret_file.c: unit tests of crypto_secret_file_read (bounded, locked, checked reads). */
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

#include "crypto/crypto.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    if (crypto_init() != CD_OK)
        return -1;
    snprintf(dir, sizeof(dir), "/tmp/test_secret_file.XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *name, const char *content, mode_t mode, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(content, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_reads_first_line(void **state)
{
    char path[128], *s = NULL;
    size_t len = 99;
    (void)state;

    put("pw", "s3cret pass\r\nsecond line\n", 0600, path, sizeof(path));
    assert_int_equal(crypto_secret_file_read(path, 256, &s, &len), CD_OK);
    assert_string_equal(s, "s3cret pass");
    assert_int_equal(len, 11);
    crypto_secure_free(s);
    /* group may read (root:service 0640), nothing more */
    put("pw", "x", 0640, path, sizeof(path));
    assert_int_equal(crypto_secret_file_read(path, 256, &s, NULL), CD_OK);
    assert_string_equal(s, "x");
    crypto_secure_free(s);
    put("empty", "", 0400, path, sizeof(path));
    assert_int_equal(crypto_secret_file_read(path, 256, &s, &len), CD_OK);
    assert_int_equal(len, 0);
    crypto_secure_free(s);
}

static void test_refuses_modes(void **state)
{
    char path[128], *s = NULL;
    (void)state;

    put("pw", "secret\n", 0644, path, sizeof(path));
    assert_int_equal(crypto_secret_file_read(path, 256, &s, NULL), CD_ERR_CONFIG);
    assert_null(s);
    put("pw", "secret\n", 0660, path, sizeof(path));
    assert_int_equal(crypto_secret_file_read(path, 256, &s, NULL), CD_ERR_CONFIG);
    put("pw", "secret\n", 0604, path, sizeof(path));
    assert_int_equal(crypto_secret_file_read(path, 256, &s, NULL), CD_ERR_CONFIG);
    assert_null(s);
}

static void test_refuses_links_fifos_dirs(void **state)
{
    char path[128], link[128], fifo[128], *s = NULL;
    (void)state;

    put("target", "secret\n", 0600, path, sizeof(path));
    snprintf(link, sizeof(link), "%s/link", dir);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(crypto_secret_file_read(link, 256, &s, NULL), CD_ERR_CONFIG);
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(crypto_secret_file_read(fifo, 256, &s, NULL), CD_ERR_CONFIG);
    assert_int_equal(crypto_secret_file_read(dir, 256, &s, NULL), CD_ERR_CONFIG);
    snprintf(path, sizeof(path), "%s/none", dir);
    assert_int_equal(crypto_secret_file_read(path, 256, &s, NULL), CD_ERR_NOT_FOUND);
    assert_null(s);
}

static void test_size_cap(void **state)
{
    char path[128], big[300], *s = NULL;
    size_t len = 0;
    (void)state;

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    put("big", big, 0600, path, sizeof(path));
    assert_int_equal(crypto_secret_file_read(path, 298, &s, NULL), CD_ERR_TOO_LARGE);
    assert_null(s);
    assert_int_equal(crypto_secret_file_read(path, 299, &s, &len), CD_OK);
    assert_int_equal(len, 299);
    crypto_secure_free(s);
    s = NULL;
    assert_int_equal(crypto_secret_file_read(path, 0, &s, NULL), CD_ERR_INVALID);
    assert_int_equal(crypto_secret_file_read(path, CRYPTO_SECRET_FILE_MAX + 1, &s, NULL),
                     CD_ERR_INVALID);
    /* /dev/zero claims size 0 but never ends: it is not a regular file */
    assert_int_equal(crypto_secret_file_read("/dev/zero", 16, &s, NULL), CD_ERR_CONFIG);
    assert_null(s);
}

static void test_refuses_other_owner(void **state)
{
    char path[128], *s = NULL;
    (void)state;

    if (geteuid() != 0)
        skip();
    put("pw", "secret\n", 0600, path, sizeof(path));
    assert_int_equal(chown(path, 65534, 65534), 0);
    assert_int_equal(crypto_secret_file_read(path, 256, &s, NULL), CD_ERR_CONFIG);
    assert_null(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_first_line),         cmocka_unit_test(test_refuses_modes),
        cmocka_unit_test(test_refuses_links_fifos_dirs), cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_refuses_other_owner),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
