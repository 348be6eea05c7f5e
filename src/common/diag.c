/* diag.c: bounded start-up diagnostics (common/diag.h). */
#include "common/diag.h"

#include <stdio.h>
#include <string.h>

void cd_diag_init(struct cd_diag *d)
{
    d->text[0] = '\0';
    d->len = 0;
    d->count = 0;
}

/* Control bytes (a quoted value's newline, an escape) become '?'. */
static void one_line(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

void cd_diag_vadd(struct cd_diag *d, const char *fmt, va_list ap)
{
    char msg[1536];
    int n;

    if (d == NULL)
        return;
    d->count++;
    /* ap was started by the caller; the analyzer cannot see across that. */
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    vsnprintf(msg, sizeof(msg), fmt, ap);
    one_line(msg);
    if (d->len >= sizeof(d->text) - 1)
        return;
    n = snprintf(d->text + d->len, sizeof(d->text) - d->len, "%s\n", msg);
    if (n < 0 || (size_t)n >= sizeof(d->text) - d->len) {
        d->len = sizeof(d->text) - 1;
        return;
    }
    d->len += (size_t)n;
}

void cd_diag_add(struct cd_diag *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cd_diag_vadd(d, fmt, ap);
    va_end(ap);
}

void cd_diag_first(const struct cd_diag *d, char *out, size_t outlen)
{
    size_t n;
    const char *nl;

    if (outlen == 0)
        return;
    out[0] = '\0';
    if (d == NULL || d->len == 0)
        return;
    nl = memchr(d->text, '\n', d->len);
    n = nl != NULL ? (size_t)(nl - d->text) : d->len;
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, d->text, n);
    out[n] = '\0';
}
