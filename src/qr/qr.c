/* qr.c: a QR code (libqrencode) rendered as one SVG path of horizontal runs. */
#include "qr/qr.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qrencode.h>

/* A bounded string builder over a buffer sized in advance. */
struct qr_out {
    char *p;
    size_t n, cap;
    bool full;
};

__attribute__((format(printf, 2, 3))) static void qr_put(struct qr_out *o, const char *fmt, ...)
{
    va_list ap;
    int r;

    if (o->full)
        return;
    va_start(ap, fmt);
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    r = vsnprintf(o->p + o->n, o->cap - o->n, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= o->cap - o->n) {
        o->full = true;
        return;
    }
    o->n += (size_t)r;
}

/* The dark modules of row y as runs "Mx yhNv1h-Nz" (offset by the quiet zone). */
static void qr_row(struct qr_out *o, const QRcode *q, unsigned y)
{
    unsigned w = (unsigned)q->width;

    for (unsigned x = 0; x < w;) {
        unsigned run = 0;

        while (x + run < w && (q->data[y * w + x + run] & 1u))
            run++;
        if (run == 0) {
            x++;
            continue;
        }
        qr_put(o, "M%u %uh%u", x + QR_QUIET_ZONE, y + QR_QUIET_ZONE, run);
        qr_put(o, "v1h-%uz", run);
        x += run;
    }
}

static void qr_free_code(QRcode *q)
{
    /* The modules spell out the text (a TOTP secret): wiped before free. */
    memset(q->data, 0, (size_t)q->width * (size_t)q->width);
    __asm__ __volatile__("" : : "r"(q->data) : "memory");
    QRcode_free(q);
}

cd_err qr_svg(const char *text, size_t len, char **out, size_t *out_len)
{
    struct qr_out o = {NULL, 0, 0, false};
    unsigned size;
    QRcode *q;

    if (text == NULL || len == 0 || memchr(text, '\0', len) != NULL || out == NULL ||
        out_len == NULL)
        return CD_ERR_INVALID;
    if (len > QR_TEXT_MAX)
        return CD_ERR_TOO_LARGE;
    q = QRcode_encodeData((int)len, (const unsigned char *)text, 0, QR_ECLEVEL_M);
    if (q == NULL)
        return CD_ERR_INTERNAL;
    size = (unsigned)q->width + 2 * QR_QUIET_ZONE;
    /* At most one run per two modules, each at most 24 bytes, and the frame. */
    o.cap = 512 + (size_t)q->width * (size_t)q->width * 12;
    o.p = malloc(o.cap);
    if (o.p == NULL) {
        qr_free_code(q);
        return CD_ERR_NOMEM;
    }
    qr_put(&o,
           "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %u %u\" width=\"%u\" "
           "shape-rendering=\"crispEdges\">",
           size, size, size * 4);
    qr_put(&o, "<rect width=\"%u\" height=\"%u\" fill=\"#fff\"/><path fill=\"#000\" d=\"", size,
           size);
    for (unsigned y = 0; y < (unsigned)q->width; y++)
        qr_row(&o, q, y);
    qr_put(&o, "%s", "\"/></svg>");
    qr_free_code(q);
    if (o.full) {
        memset(o.p, 0, o.cap);
        free(o.p);
        return CD_ERR_INTERNAL;
    }
    *out = o.p;
    *out_len = o.n;
    return CD_OK;
}
