/* test_config.c: configuration defaults, file parsing, environment overrides, validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

static char *write_tmp(const char *text)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/confidoc-cfg-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static const char *required =
    "tls_cert = /c\ntls_key = /k\nclient_ca = /ca\nmaster_key_file = /mk\n"
    "db_tls_ca = /dca\ndb_tls_cert = /dc\ndb_tls_key = /dk\n";

static void test_defaults(void **state)
{
    struct config cfg;
    struct cd_diag diag_;
    cd_diag_init(&diag_);
    char *err = diag_.text;
    (void)state;
    config_defaults(&cfg);
    assert_int_equal(cfg.listen_port, 8000);
    assert_int_equal(cfg.rate_limit, 10);
    assert_int_equal(cfg.rate_window, 60);
    assert_int_equal(cfg.argon2_memlimit_kib, 19456);
    assert_int_equal(cfg.argon2_opslimit, 2);
    assert_int_equal(cfg.max_body_bytes, 16UL * 1024 * 1024);
    assert_true(cfg.db_verify_server_name);
    assert_string_equal(cfg.db_name, "confidoc");
    /* Without the key and certificate files the configuration is incomplete. */
    assert_int_equal(config_validate(&cfg, &diag_), CD_ERR_CONFIG);
    assert_non_null(strstr(err, "tls_cert"));
}

static void test_file_and_env(void **state)
{
    struct config cfg;
    char text[1024];
    struct cd_diag diag_;
    cd_diag_init(&diag_);
    char *err = diag_.text;
    char *path;
    (void)state;
    snprintf(text, sizeof(text),
             "# comment\n\n%slisten_port = 9443\nrate_limit=5\n"
             "db_verify_server_name = false\n",
             required);
    path = write_tmp(text);
    config_defaults(&cfg);
    assert_int_equal(config_load_file(&cfg, path, &diag_), CD_OK);
    unlink(path);
    assert_int_equal(cfg.listen_port, 9443);
    assert_int_equal(cfg.rate_limit, 5);
    assert_false(cfg.db_verify_server_name);
    assert_string_equal(cfg.tls_cert, "/c");
    assert_int_equal(config_validate(&cfg, &diag_), CD_OK);

    setenv("CONFIDOC_RATE_LIMIT", "1000", 1);
    setenv("CONFIDOC_RATE_WINDOW", "2", 1);
    setenv("CONFIDOC_DB_HOST", "db.internal", 1);
    assert_int_equal(config_apply_env(&cfg, &diag_), CD_OK);
    assert_int_equal(cfg.rate_limit, 1000);
    assert_int_equal(cfg.rate_window, 2);
    assert_string_equal(cfg.db_host, "db.internal");
    setenv("CONFIDOC_RATE_LIMIT", "ten", 1);
    assert_int_equal(config_apply_env(&cfg, &diag_), CD_ERR_CONFIG);
    assert_non_null(strstr(err, "CONFIDOC_RATE_LIMIT"));
    unsetenv("CONFIDOC_RATE_LIMIT");
    unsetenv("CONFIDOC_RATE_WINDOW");
    unsetenv("CONFIDOC_DB_HOST");
}

static void expect_file_error(const char *text, const char *needle)
{
    struct config cfg;
    struct cd_diag diag_;
    cd_diag_init(&diag_);
    char *err = diag_.text;
    char *path = write_tmp(text);

    config_defaults(&cfg);
    assert_int_equal(config_load_file(&cfg, path, &diag_), CD_ERR_CONFIG);
    unlink(path);
    if (strstr(err, needle) == NULL)
        fail_msg("error '%s' lacks '%s'", err, needle);
}

static void test_file_errors(void **state)
{
    (void)state;
    expect_file_error("listen_port = 8000\nbogus_key = 1\n", ":2: unknown key 'bogus_key'");
    expect_file_error("listen_port 8000\n", ":1: expected key = value");
    expect_file_error("listen_port = 70000\n", "out of range");
    expect_file_error("listen_port = -1\n", "non-negative integer");
    expect_file_error("listen_port = 12abc\n", "non-negative integer");
    expect_file_error("argon2_memlimit_kib = 1024\n", "out of range"); /* below OWASP minimum */
    expect_file_error("db_verify_server_name = maybe\n", "true or false");

    struct config cfg;
    struct cd_diag diag_;
    cd_diag_init(&diag_);
    char *err = diag_.text;
    config_defaults(&cfg);
    /* A missing file is CD_ERR_NOT_FOUND, as for every file (common/err.h);
     * before issue 10 this loader made it CD_ERR_CONFIG. */
    assert_int_equal(config_load_file(&cfg, "/nonexistent/confidoc.conf", &diag_),
                     CD_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "cannot open"));
}

static void test_cross_rules(void **state)
{
    struct config cfg;
    struct cd_diag diag_;
    cd_diag_init(&diag_);
    char *path = write_tmp(required);
    (void)state;
    config_defaults(&cfg);
    assert_int_equal(config_load_file(&cfg, path, &diag_), CD_OK);
    unlink(path);
    strcpy(cfg.memcached_servers, "127.0.0.1:11211");
    assert_int_equal(config_validate(&cfg, &diag_), CD_ERR_CONFIG);
    strcpy(cfg.memcached_tls_ca, "/a");
    strcpy(cfg.memcached_tls_cert, "/b");
    strcpy(cfg.memcached_tls_key, "/c");
    assert_int_equal(config_validate(&cfg, &diag_), CD_OK);
    /* lockout counters on their own instance; it needs memcached_servers */
    strcpy(cfg.lockout_memcached_servers, "127.0.0.1:11212");
    assert_int_equal(config_validate(&cfg, &diag_), CD_OK);
    cfg.memcached_servers[0] = '\0';
    assert_int_equal(config_validate(&cfg, &diag_), CD_ERR_CONFIG);
    strcpy(cfg.memcached_servers, "127.0.0.1:11211");
    strcpy(cfg.rate_limit_on_unavailable, "panic");
    assert_int_equal(config_validate(&cfg, &diag_), CD_ERR_CONFIG);
}

static void test_split(void **state)
{
    const char *items[4];
    char buf[128];
    size_t n = 99;
    (void)state;
    assert_int_equal(config_split_list(" a:1 , b:2,,c:3 ", ',', buf, sizeof(buf), items, 4, &n),
                     CD_OK);
    assert_int_equal(n, 3);
    assert_string_equal(items[0], "a:1");
    assert_string_equal(items[1], "b:2");
    assert_string_equal(items[2], "c:3");
    assert_int_equal(config_split_list("CN=a,O=x;CN=b", ';', buf, sizeof(buf), items, 4, &n),
                     CD_OK);
    assert_int_equal(n, 2);
    assert_string_equal(items[0], "CN=a,O=x");
    assert_int_equal(config_split_list("", ',', buf, sizeof(buf), items, 4, &n), CD_OK);
    assert_int_equal(n, 0);
    n = 99;
    assert_int_equal(config_split_list("a,b,c,d,e", ',', buf, sizeof(buf), items, 4, &n),
                     CD_ERR_TOO_LARGE);
    assert_int_equal(n, 99); /* untouched on failure */
    assert_int_equal(config_split_list("abcdefgh", ',', buf, 8, items, 4, &n), CD_ERR_TOO_LARGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),    cmocka_unit_test(test_file_and_env),
        cmocka_unit_test(test_file_errors), cmocka_unit_test(test_cross_rules),
        cmocka_unit_test(test_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
