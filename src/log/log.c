/* log.c: one-line logging to stderr with timestamps; thread-safe (one write per line). */
#include "log/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "confidoc";
static enum log_level log_min = LOG_LEVEL_INFO;

void log_init(const char *ident, enum log_level level)
{
    if (ident != NULL)
        log_ident = ident;
    log_min = level;
}

cd_err log_level_parse(const char *name, enum log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum log_level)i;
            return CD_OK;
        }
    }
    return CD_ERR_INVALID;
}

/* Formats one whole line and writes it with a single write(2), so that lines
 * of concurrent threads never interleave. */
__attribute__((format(printf, 3, 0))) static void log_emit(enum log_level level, int errnum,
                                                           const char *fmt, va_list ap)
{
    static const char *const tags[] = {"debug", "info", "warn", "error"};
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int r;

    if (level < log_min)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s: ", ts.tv_nsec / 1000000L, log_ident,
                 tags[level]);
    if (r > 0)
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    /* ap was started by the caller (LOG_FN); the analyzer cannot see across that. */
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (r > 0)
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    if (errnum != 0 && n < sizeof(line) - 1) {
        char ebuf[128];
        const char *e = strerror_r(errnum, ebuf, sizeof(ebuf));
        r = snprintf(line + n, sizeof(line) - n, ": %s", e);
        if (r > 0)
            n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    }
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, n);
}

#define LOG_FN(name, level, with_errno)                                                            \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        int saved = errno;                                                                         \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_emit(level, (with_errno) ? saved : 0, fmt, ap);                                        \
        va_end(ap);                                                                                \
        errno = saved;                                                                             \
    }

LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_error, LOG_LEVEL_ERROR, 1)
LOG_FN(log_errorx, LOG_LEVEL_ERROR, 0)

void log_request(const char *request_id, const char *method, const char *route, int status,
                 double duration_ms, uint64_t bytes_in, uint64_t bytes_out)
{
    log_info("req=%s method=%s route=%s status=%d ms=%.3f in=%llu out=%llu", request_id, method,
             route, status, duration_ms, (unsigned long long)bytes_in,
             (unsigned long long)bytes_out);
}

void log_sanitize(char *dst, size_t dstlen, const char *src, size_t srclen)
{
    size_t i;

    if (dstlen == 0)
        return;
    for (i = 0; i < srclen && i < dstlen - 1; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[i] = '\0';
}
