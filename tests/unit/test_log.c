/* test_log.c: the access log line (log_request, written without printf) is the
 * line log_info writes for the same fields; the JSON format. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log/log.h"

/* Runs both loggers with stderr on a temporary file; returns the two lines
 * without their timestamps. */
static void both(const char *id, const char *method, const char *route, int status, double ms,
                 uint64_t in, uint64_t out, char a[512], char b[512])
{
    FILE *f = tmpfile();
    int saved = dup(STDERR_FILENO);
    char *ta, *tb;

    assert_non_null(f);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
    log_request(id, method, route, status, ms, in, out);
    log_info("req=%s method=%s route=%s status=%d ms=%.3f in=%llu out=%llu", id, method, route,
             status, ms, (unsigned long long)in, (unsigned long long)out);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(f);
    assert_non_null(fgets(a, 512, f));
    assert_non_null(fgets(b, 512, f));
    fclose(f);
    /* "2026-12-01T18:00:00.123Z " */
    assert_true(strlen(a) > 25 && a[10] == 'T' && a[19] == '.' && a[23] == 'Z');
    ta = a + 25;
    tb = b + 25;
    memmove(a, ta, strlen(ta) + 1);
    memmove(b, tb, strlen(tb) + 1);
}

static void test_same_line(void **state)
{
    static const double ms[] = {0.0, 0.0004, 0.0123, 1.2344, 7.0, 12345.6781, 999.9994};
    static const int statuses[] = {0, 200, 204, 404, 503};
    char a[512], b[512];
    (void)state;

    log_init("confidoc-test", LOG_LEVEL_INFO);
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        for (size_t j = 0; j < sizeof(statuses) / sizeof(statuses[0]); j++) {
            both("0123456789abcdef", "GET", "/documents/{record_id}", statuses[j], ms[i],
                 (uint64_t)i * 1000003u, UINT64_MAX - j, a, b);
            assert_string_equal(a, b);
        }
    }
    both("-", "?", "-", 500, 3.5, 0, 0, a, b);
    assert_string_equal(a, b);
}

static void test_level(void **state)
{
    FILE *f = tmpfile();
    int saved = dup(STDERR_FILENO);
    (void)state;

    log_init("confidoc-test", LOG_LEVEL_WARN);
    assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
    log_request("x", "GET", "-", 200, 1.0, 0, 0);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    assert_int_equal(ftell(f), 0); /* below the level: nothing */
    fclose(f);
    log_init("confidoc-test", LOG_LEVEL_INFO);
}

/* log_format json: one JSON object a line, same fields; quotes, backslashes
 * and control bytes escaped, bytes >= 0x80 as '?'. */
static void test_json(void **state)
{
    FILE *f = tmpfile();
    int saved = dup(STDERR_FILENO);
    char a[1024], b[1024], c[1024];
    (void)state;

    log_init("confidoc-test", LOG_LEVEL_INFO);
    log_set_format(LOG_FORMAT_JSON);
    assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
    log_info("a \"quoted\" \\ tab\there \x01 caf\xc3\xa9");
    log_request("0123456789abcdef", "GET", "/documents/{record_id}", 404, 1.5, 12, 34);
    errno = ENOENT;
    log_warn("cannot open %s", "x");
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    log_set_format(LOG_FORMAT_TEXT);
    rewind(f);
    assert_non_null(fgets(a, sizeof(a), f));
    assert_non_null(fgets(b, sizeof(b), f));
    assert_non_null(fgets(c, sizeof(c), f));
    fclose(f);
    /* {"ts":"2026-12-01T18:00:00.123Z", then the rest */
    assert_true(strncmp(a, "{\"ts\":\"", 7) == 0 && a[17] == 'T' && a[30] == 'Z');
    assert_string_equal(a + 33, "\"prog\":\"confidoc-test\",\"level\":\"info\",\"msg\":\"a "
                                "\\\"quoted\\\" \\\\ tab\\u0009here \\u0001 caf??\"}\n");
    assert_string_equal(b + 33,
                        "\"prog\":\"confidoc-test\",\"level\":\"info\",\"msg\":\"request\","
                        "\"req\":\"0123456789abcdef\",\"method\":\"GET\",\"route\":\"/documents/"
                        "{record_id}\",\"status\":404,\"ms\":1.500,\"in\":12,\"out\":34}\n");
    assert_non_null(
        strstr(c, "\"level\":\"warn\",\"msg\":\"cannot open x: No such file or directory\"}"));
    {
        enum log_format fmt = LOG_FORMAT_TEXT;
        assert_int_equal(log_format_parse("json", &fmt), CD_OK);
        assert_int_equal(fmt, LOG_FORMAT_JSON);
        assert_int_equal(log_format_parse("xml", &fmt), CD_ERR_INVALID);
        assert_int_equal(fmt, LOG_FORMAT_JSON);
    }
}

/* log_stream stdout: every kind of line goes to standard output, none to
 * standard error; back to standard error after. */
static void test_stream(void **state)
{
    FILE *out = tmpfile(), *err = tmpfile();
    int so = dup(STDOUT_FILENO), se = dup(STDERR_FILENO);
    char line[512];
    enum log_stream st = LOG_STREAM_STDERR;
    (void)state;

    assert_non_null(out);
    assert_non_null(err);
    assert_int_equal(log_stream_parse("stdout", &st), CD_OK);
    assert_int_equal(st, LOG_STREAM_STDOUT);
    assert_int_equal(log_stream_parse("syslog", &st), CD_ERR_INVALID);
    assert_int_equal(st, LOG_STREAM_STDOUT);
    log_init("confidoc-test", LOG_LEVEL_INFO);
    assert_true(dup2(fileno(out), STDOUT_FILENO) >= 0);
    assert_true(dup2(fileno(err), STDERR_FILENO) >= 0);
    log_set_stream(LOG_STREAM_STDOUT);
    log_info("to stdout");
    log_request("0123456789abcdef", "GET", "/healthz", 200, 0.5, 1, 2);
    log_set_format(LOG_FORMAT_JSON);
    log_info("json to stdout");
    log_request("0123456789abcdef", "GET", "/healthz", 200, 0.5, 1, 2);
    log_set_format(LOG_FORMAT_TEXT);
    log_set_stream(LOG_STREAM_STDERR);
    log_info("to stderr");
    assert_true(dup2(so, STDOUT_FILENO) >= 0);
    assert_true(dup2(se, STDERR_FILENO) >= 0);
    close(so);
    close(se);
    rewind(out);
    rewind(err);
    assert_non_null(fgets(line, sizeof(line), out));
    assert_non_null(strstr(line, "info: to stdout"));
    assert_non_null(fgets(line, sizeof(line), out));
    assert_non_null(strstr(line, "route=/healthz"));
    assert_non_null(fgets(line, sizeof(line), out));
    assert_non_null(strstr(line, "\"msg\":\"json to stdout\""));
    assert_non_null(fgets(line, sizeof(line), out));
    assert_non_null(strstr(line, "\"route\":\"/healthz\""));
    assert_null(fgets(line, sizeof(line), out));
    assert_non_null(fgets(line, sizeof(line), err));
    assert_non_null(strstr(line, "info: to stderr"));
    assert_null(fgets(line, sizeof(line), err));
    fclose(out);
    fclose(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_line),
        cmocka_unit_test(test_level),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
