/* buf.h: a growable byte buffer with a hard cap (like curl's dynbuf), wiped
 * whenever memory is let go, so it may hold secrets. */
#ifndef CONFIDOC_BUF_H
#define CONFIDOC_BUF_H

#include <stddef.h>

#include "common/err.h"

/* Invariants: p is NULL (cap 0) or a malloc'ed block of cap bytes holding len
 * bytes and a NUL (len < cap <= max). An embedded object: buf_init, then
 * buf_add..., then buf_detach or buf_release. */
struct buf {
    char *p;
    size_t len;
    size_t cap;
    size_t max; /* the hard cap on cap: the content and its NUL */
};

/* The first allocation's size (or less when max is smaller). */
#define BUF_START ((size_t)4096)

/* An empty buffer that may never need more than max bytes (content + NUL). */
void buf_init(struct buf *b, size_t max);

/* Appends s[0..n) and keeps a NUL after the content. CD_ERR_TOO_LARGE when
 * len + n + 1 would exceed max, CD_ERR_NOMEM when allocation fails; the
 * buffer is unchanged on either. Growing doubles (up to max), wiping the old
 * block. */
cd_err buf_add(struct buf *b, const void *s, size_t n);

/* Hands the content to the caller (NUL-terminated, NULL when nothing was ever
 * added; free() it, after wiping it when secret) and leaves b empty. */
char *buf_detach(struct buf *b, size_t *len);

/* Wipes and frees the content; b is empty (and reusable) afterwards. */
void buf_release(struct buf *b);

#endif
