/* log.h: one-line structured logging to stderr (or stdout). Never pass secrets or
 * personal data (passwords, keys, document bytes, usernames) to these. */
#ifndef CONFIDOC_LOG_H
#define CONFIDOC_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum log_level { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* How a line looks: "TIME PROG LEVEL: MESSAGE" (text), or one JSON object
 * {"ts", "prog", "level", "msg"} (json; the access log's fields as their own
 * keys), for log collectors in containers. Same fields either way. */
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };

/* Sets the program name and the lowest level written. Safe to call again. */
void log_init(const char *ident, enum log_level level);
/* Sets the format of the lines written from now on (default text). */
void log_set_format(enum log_format format);
/* Where lines go: standard error (default), or standard output (where
 * container runtimes and log collectors read first). */
enum log_stream { LOG_STREAM_STDERR = 0, LOG_STREAM_STDOUT };
void log_set_stream(enum log_stream stream);
/* Parses "stderr" or "stdout" into *out; CD_ERR_INVALID (and *out untouched) otherwise. */
cd_err log_stream_parse(const char *name, enum log_stream *out);
/* Parses "text" or "json" into *out; CD_ERR_INVALID (and *out untouched) otherwise. */
cd_err log_format_parse(const char *name, enum log_format *out);
/* Parses "debug", "info", "warn" or "error" into *out; CD_ERR_INVALID (and *out
 * untouched) otherwise. */
cd_err log_level_parse(const char *name, enum log_level *out);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_warn and log_error append ": strerror(errno)"; the x variants do not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The access log line: one per request. route is the route pattern (never the
 * raw path, which could carry personal data). */
void log_request(const char *request_id, const char *method, const char *route, int status,
                 double duration_ms, uint64_t bytes_in, uint64_t bytes_out);

/* Copies untrusted text into dst (at most dstlen-1 bytes plus NUL), replacing
 * every byte outside printable ASCII by '?'. For logging client-supplied text. */
void log_sanitize(char *dst, size_t dstlen, const char *src, size_t srclen);

#endif
