/* test_common_file.c: the bounded file reader (common/file): caps, checks,
 * the one error mapping, and the caller's allocator. */
#include <errno.h>
#include <fcntl.h>
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

#include "common/file.h"

static char dir[64];
static int allocs, releases;

static void *count_alloc(size_t n)
{
    allocs++;
    return malloc(n);
}

static void count_release(void *p, size_t n)
{
    releases++;
    memset(p, 0, n);
    free(p);
}

static void *fail_alloc(size_t n)
{
    (void)n;
    return NULL;
}

static const struct file_mem counting = {count_alloc, count_release};
static const struct file_mem failing = {fail_alloc, count_release};

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_common_file.XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *name, const void *content, size_t len, mode_t mode, char *path,
                size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_reads_whole_file(void **state)
{
    struct file_read_opts o = {16, 0, NULL};
    struct file_data d;
    char path[128];
    (void)state;

    put("a", "ab\0cd\n", 6, 0644, path, sizeof(path));
    assert_int_equal(file_read(path, &o, &d), CD_OK);
    assert_int_equal(d.len, 6);
    assert_memory_equal(d.data, "ab\0cd\n", 6);
    assert_int_equal(d.data[6], '\0');
    assert_true(d.size > d.len);
    assert_null(d.why);
    file_data_release(&d, NULL);
    assert_null(d.data);

    put("empty", "", 0, 0644, path, sizeof(path));
    assert_int_equal(file_read(path, &o, &d), CD_OK);
    assert_int_equal(d.len, 0);
    assert_string_equal(d.data, "");
    file_data_release(&d, NULL);
    file_data_release(&d, NULL); /* twice is harmless */
}

static void test_cap(void **state)
{
    struct file_read_opts o = {8, 0, &counting};
    struct file_data d;
    char path[128];
    (void)state;

    put("eight", "12345678", 8, 0600, path, sizeof(path));
    assert_int_equal(file_read(path, &o, &d), CD_OK);
    assert_int_equal(d.len, 8);
    file_data_release(&d, &counting);
    put("nine", "123456789", 9, 0600, path, sizeof(path));
    allocs = releases = 0;
    assert_int_equal(file_read(path, &o, &d), CD_ERR_TOO_LARGE);
    assert_null(d.data);
    assert_non_null(d.why);
    assert_int_equal(allocs, 0); /* refused from fstat, before allocating */
    /* A file whose content outgrows what fstat said (/proc reports 0) is refused. */
    o.max = 4;
    if (access("/proc/self/status", R_OK) == 0) {
        assert_int_equal(file_read("/proc/self/status", &o, &d), CD_ERR_IO);
        assert_null(d.data);
        assert_int_equal(allocs, releases); /* nothing leaked */
    }
    o.max = 0;
    assert_int_equal(file_read(path, &o, &d), CD_ERR_INVALID);
    o.max = SIZE_MAX;
    assert_int_equal(file_read(path, &o, &d), CD_ERR_INVALID);
}

/* One mapping: missing NOT_FOUND, unreadable IO, unsafe CONFIG. */
static void test_error_mapping(void **state)
{
    struct file_read_opts o = {64, 0, NULL};
    struct file_data d;
    char path[128], link[160], sub[160];
    (void)state;

    snprintf(path, sizeof(path), "%s/missing", dir);
    assert_int_equal(file_read(path, &o, &d), CD_ERR_NOT_FOUND);
    assert_int_equal(errno, ENOENT);
    assert_non_null(d.why);
    snprintf(sub, sizeof(sub), "%s/missing/below", dir);
    assert_int_equal(file_read(sub, &o, &d), CD_ERR_NOT_FOUND);

    assert_int_equal(file_read(dir, &o, &d), CD_ERR_CONFIG); /* a directory */
    assert_string_equal(d.why, "not a regular file");
    assert_true(S_ISDIR(d.mode));
    assert_int_equal(file_read("/dev/null", &o, &d), CD_ERR_CONFIG);

    put("f", "x", 1, 0600, path, sizeof(path));
    snprintf(link, sizeof(link), "%s/link", dir);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(file_read(link, &o, &d), CD_OK); /* links allowed without the flag */
    file_data_release(&d, NULL);
    o.flags = FILE_NOFOLLOW;
    assert_int_equal(file_read(link, &o, &d), CD_ERR_CONFIG);

    /* Unreadable: a file under a directory we cannot search (root can, so
     * only checked as another user). */
    if (geteuid() != 0) {
        assert_int_equal(chmod(path, 0), 0);
        assert_int_equal(file_read(path, &o, &d), CD_ERR_IO);
        assert_int_equal(errno, EACCES);
    }
    assert_int_equal(file_read(NULL, &o, &d), CD_ERR_INVALID);
    assert_int_equal(file_read(path, NULL, &d), CD_ERR_INVALID);
    assert_int_equal(file_read(path, &o, NULL), CD_ERR_INVALID);
    assert_int_equal(file_read_fd(-1, &o, &d), CD_ERR_INVALID);
}

static void test_mode_checks(void **state)
{
    struct file_read_opts priv = {64, FILE_PRIVATE, NULL};
    struct file_read_opts nogroup = {64, FILE_NO_GROUP, NULL};
    struct file_data d;
    char path[128];
    (void)state;

    put("m", "x", 1, 0640, path, sizeof(path));
    assert_int_equal(file_read(path, &priv, &d), CD_OK); /* group may read */
    file_data_release(&d, NULL);
    assert_int_equal(file_read(path, &nogroup, &d), CD_ERR_CONFIG);
    assert_int_equal(d.mode & 07777, 0640);
    const mode_t refused[] = {0604, 0660, 0650, 0602, 0601};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(chmod(path, refused[i]), 0);
        assert_int_equal(file_read(path, &priv, &d), CD_ERR_CONFIG);
        assert_null(d.data);
    }
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(file_read(path, &nogroup, &d), CD_OK);
    file_data_release(&d, NULL);
    /* Another owner (root may chown): refused by FILE_PRIVATE. */
    if (geteuid() == 0) {
        assert_int_equal(chmod(path, 0600), 0);
        assert_int_equal(chown(path, 65534, 65534), 0);
        assert_int_equal(file_read(path, &priv, &d), CD_ERR_CONFIG);
        assert_string_equal(d.why, "owned by another user");
        assert_int_equal(file_read(path, &nogroup, &d), CD_OK);
        file_data_release(&d, NULL);
    }
}

static void test_allocator(void **state)
{
    struct file_read_opts o = {64, 0, &counting};
    struct file_data d;
    char path[128];
    (void)state;

    put("alloc", "hello", 5, 0600, path, sizeof(path));
    allocs = releases = 0;
    assert_int_equal(file_read(path, &o, &d), CD_OK);
    assert_int_equal(allocs, 1);
    file_data_release(&d, &counting);
    assert_int_equal(releases, 1);
    o.mem = &failing;
    assert_int_equal(file_read(path, &o, &d), CD_ERR_NOMEM);
    assert_null(d.data);
    assert_int_equal(releases, 1);

    /* file_read_fd reads from an open descriptor and leaves it open. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    o.mem = NULL;
    assert_int_equal(file_read_fd(fd, &o, &d), CD_OK);
    assert_string_equal(d.data, "hello");
    file_data_release(&d, NULL);
    assert_int_equal(fcntl(fd, F_GETFD) >= 0, 1);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_whole_file), cmocka_unit_test(test_cap),
        cmocka_unit_test(test_error_mapping),    cmocka_unit_test(test_mode_checks),
        cmocka_unit_test(test_allocator),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
