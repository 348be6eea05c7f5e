/* log.c: one-line logging to stderr (or stdout) with timestamps; thread-safe (one write per line).
 */
#include "log/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "confidoc";
static enum log_level log_min = LOG_LEVEL_INFO;
static enum log_format log_fmt = LOG_FORMAT_TEXT;
static int log_fd = STDERR_FILENO;

void log_init(const char *ident, enum log_level level)
{
    if (ident != NULL)
        log_ident = ident;
    log_min = level;
}

void log_set_format(enum log_format format)
{
    log_fmt = format == LOG_FORMAT_JSON ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT;
}

void log_set_stream(enum log_stream stream)
{
    log_fd = stream == LOG_STREAM_STDOUT ? STDOUT_FILENO : STDERR_FILENO;
}

cd_err log_stream_parse(const char *name, enum log_stream *out)
{
    if (strcmp(name, "stderr") == 0)
        *out = LOG_STREAM_STDERR;
    else if (strcmp(name, "stdout") == 0)
        *out = LOG_STREAM_STDOUT;
    else
        return CD_ERR_INVALID;
    return CD_OK;
}

cd_err log_format_parse(const char *name, enum log_format *out)
{
    if (strcmp(name, "text") == 0)
        *out = LOG_FORMAT_TEXT;
    else if (strcmp(name, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else
        return CD_ERR_INVALID;
    return CD_OK;
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

/* "YYYY-MM-DDTHH:MM:SS" of t (19 characters and a NUL), formatted once per
 * second per thread. */
static const char *log_second(time_t t)
{
    static _Thread_local time_t cached = (time_t)-1;
    static _Thread_local char text[32];

    if (t != cached) {
        struct tm tm;
        gmtime_r(&t, &tm);
        if (strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
            text[0] = '\0';
        cached = t;
    }
    return text;
}

/* Appends s[0..len) to line[*n..cap) as the inside of a JSON string: '"' and
 * '\\' escaped, control bytes as \u00XX, bytes >= 0x80 as '?' (so that the line
 * is valid UTF-8 whatever the message held); keeps room for the line's end. */
static void put_json(char *line, size_t cap, size_t *n, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < len && *n + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            line[(*n)++] = '\\';
            line[(*n)++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            line[(*n)++] = '\\';
            line[(*n)++] = 'u';
            line[(*n)++] = '0';
            line[(*n)++] = '0';
            line[(*n)++] = hex[c >> 4];
            line[(*n)++] = hex[c & 15];
        } else {
            line[(*n)++] = c >= 0x80 ? '?' : (char)c;
        }
    }
}

/* The JSON form of a message line: {"ts":...,"prog":...,"level":...,"msg":...}. */
static size_t log_json(char *out, size_t cap, const char *ts, long ms, const char *level,
                       const char *msg, size_t msglen)
{
    size_t n = 0;
    int r = snprintf(out, cap, "{\"ts\":\"%s.%03ldZ\",\"prog\":\"", ts, ms);

    if (r < 0 || (size_t)r >= cap)
        return 0;
    n = (size_t)r;
    put_json(out, cap, &n, log_ident, strlen(log_ident));
    if (n + 12 + strlen(level) < cap) {
        n += (size_t)snprintf(out + n, cap - n, "\",\"level\":\"%s\",\"msg\":\"", level);
        put_json(out, cap, &n, msg, msglen);
    }
    if (n + 3 < cap) {
        out[n++] = '"';
        out[n++] = '}';
    }
    return n;
}

/* Formats one whole line and writes it with a single write(2), so that lines
 * of concurrent threads never interleave. */
__attribute__((format(printf, 3, 0))) static void log_emit(enum log_level level, int errnum,
                                                           const char *fmt, va_list ap)
{
    static const char *const tags[] = {"debug", "info", "warn", "error"};
    char line[2048];
    struct timespec ts;
    size_t n, head;
    int r;

    if (level < log_min)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    r = snprintf(line, sizeof(line), "%s.%03ldZ %s %s: ", log_second(ts.tv_sec),
                 ts.tv_nsec / 1000000L, log_ident, tags[level]);
    n = r > 0 ? ((size_t)r < sizeof(line) ? (size_t)r : sizeof(line) - 1) : 0;
    head = n;
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
    if (log_fmt == LOG_FORMAT_JSON) {
        char json[6 * sizeof(line) + 256]; /* every byte may become \u00XX */
        /* The message is what follows "TIME PROG LEVEL: ". */
        size_t j = log_json(json, sizeof(json), log_second(ts.tv_sec), ts.tv_nsec / 1000000L,
                            tags[level], line + head, n - head);
        json[j++] = '\n';
        (void)!write(log_fd, json, j);
        return;
    }
    line[n++] = '\n';
    (void)!write(log_fd, line, n);
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

/* Appends s (at most max bytes of it) to line[*n..cap); keeps room for '\n'. */
static void put_str(char *line, size_t cap, size_t *n, const char *s, size_t max)
{
    size_t l = strnlen(s, max);

    if (l > cap - 1 - *n)
        l = cap - 1 - *n;
    memcpy(line + *n, s, l);
    *n += l;
}

static void put_u64(char *line, size_t cap, size_t *n, uint64_t v, unsigned min_digits)
{
    char d[24];
    unsigned k = 0;

    do {
        d[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 || k < min_digits);
    while (k > 0 && *n < cap - 1)
        line[(*n)++] = d[--k];
}

/* The access log line as JSON: the same fields, each a key of its own. */
static void log_request_json(const struct timespec *ts, const char *request_id, const char *method,
                             const char *route, int status, double duration_ms, uint64_t bytes_in,
                             uint64_t bytes_out)
{
    char line[1024];
    size_t n = log_json(line, sizeof(line), log_second(ts->tv_sec), ts->tv_nsec / 1000000L, "info",
                        "request", 7);
    const char *keys[3] = {"req", "method", "route"};
    const char *vals[3] = {request_id, method, route};
    int r;

    if (n < 2)
        return;
    n--; /* reopen the object: drop its '}' */
    for (size_t i = 0; i < 3; i++) {
        r = snprintf(line + n, sizeof(line) - n, ",\"%s\":\"", keys[i]);
        if (r < 0 || (size_t)r >= sizeof(line) - n)
            return;
        n += (size_t)r;
        put_json(line, sizeof(line), &n, vals[i], strnlen(vals[i], 128));
        if (n + 2 >= sizeof(line))
            return;
        line[n++] = '"';
    }
    r = snprintf(line + n, sizeof(line) - n,
                 ",\"status\":%d,\"ms\":%.3f,\"in\":%llu,\"out\":%llu}\n", status,
                 duration_ms > 0 ? duration_ms : 0.0, (unsigned long long)bytes_in,
                 (unsigned long long)bytes_out);
    if (r < 0 || (size_t)r >= sizeof(line) - n)
        return;
    (void)!write(log_fd, line, n + (size_t)r);
}

/* The access log line, written without printf: the same text log_info would
 * write for "req=%s method=%s route=%s status=%d ms=%.3f in=%llu out=%llu". */
void log_request(const char *request_id, const char *method, const char *route, int status,
                 double duration_ms, uint64_t bytes_in, uint64_t bytes_out)
{
    char line[512];
    struct timespec ts;
    uint64_t us;
    size_t n = 0;

    if (LOG_LEVEL_INFO < log_min)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (log_fmt == LOG_FORMAT_JSON) {
        log_request_json(&ts, request_id, method, route, status, duration_ms, bytes_in, bytes_out);
        return;
    }
    put_str(line, sizeof(line), &n, log_second(ts.tv_sec), 32);
    put_str(line, sizeof(line), &n, ".", 1);
    put_u64(line, sizeof(line), &n, (uint64_t)(ts.tv_nsec / 1000000L), 3);
    put_str(line, sizeof(line), &n, "Z ", 2);
    put_str(line, sizeof(line), &n, log_ident, 64);
    put_str(line, sizeof(line), &n, " info: req=", 11);
    put_str(line, sizeof(line), &n, request_id, 64);
    put_str(line, sizeof(line), &n, " method=", 8);
    put_str(line, sizeof(line), &n, method, 64);
    put_str(line, sizeof(line), &n, " route=", 7);
    put_str(line, sizeof(line), &n, route, 128);
    put_str(line, sizeof(line), &n, " status=", 8);
    if (status < 0)
        put_str(line, sizeof(line), &n, "-", 1);
    put_u64(line, sizeof(line), &n, status < 0 ? (uint64_t)(-(int64_t)status) : (uint64_t)status,
            1);
    put_str(line, sizeof(line), &n, " ms=", 4);
    /* %.3f of a non-negative duration: rounded to the microsecond */
    us = duration_ms > 0 ? (uint64_t)(duration_ms * 1000.0 + 0.5) : 0;
    put_u64(line, sizeof(line), &n, us / 1000, 1);
    put_str(line, sizeof(line), &n, ".", 1);
    put_u64(line, sizeof(line), &n, us % 1000, 3);
    put_str(line, sizeof(line), &n, " in=", 4);
    put_u64(line, sizeof(line), &n, bytes_in, 1);
    put_str(line, sizeof(line), &n, " out=", 5);
    put_u64(line, sizeof(line), &n, bytes_out, 1);
    line[n++] = '\n'; /* put_str and put_u64 leave room for it */
    (void)!write(log_fd, line, n);
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
