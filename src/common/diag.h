/* diag.h: the one shape of a start-up diagnostic: bounded text, one line per
 * problem, and a count of every problem (also those whose text no longer fit).
 *
 * Loaders that run at start-up (config_load_file, crypto_keyring_load, the
 * CAS's policies and state) return a cd_err and describe each problem here;
 * the caller prints or logs the text once. Messages never carry secret
 * material; control bytes in them become '?', so that one problem stays one
 * line whatever text it quotes. */
#ifndef CONFIDOC_COMMON_DIAG_H
#define CONFIDOC_COMMON_DIAG_H

#include <stdarg.h>
#include <stddef.h>

#define CD_DIAG_TEXT_MAX 8192

struct cd_diag {
    char text[CD_DIAG_TEXT_MAX]; /* "message\n" per problem, NUL-terminated */
    size_t len;                  /* bytes of text in use */
    unsigned count;              /* problems added, including dropped ones */
};

void cd_diag_init(struct cd_diag *d);
/* Adds one problem (a trailing newline is added). Text past the buffer is
 * dropped, the problem still counted. d may be NULL: nothing is recorded. */
void cd_diag_add(struct cd_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cd_diag_vadd(struct cd_diag *d, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* The first problem's text without its newline, copied into out (for callers
 * that report a single line); "" when there is none. */
void cd_diag_first(const struct cd_diag *d, char *out, size_t outlen);

#endif
