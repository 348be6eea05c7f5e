/* buf.c: the capped growable buffer. */
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

cd_err buf_add(struct buf *b, const void *s, size_t n)
{
    size_t need, cap;
    char *np;

    if (n > b->max || b->len + 1 > b->max - n)
        return CD_ERR_TOO_LARGE;
    need = b->len + n + 1;
    if (need > b->cap) {
        cap = b->cap == 0 ? BUF_START : b->cap;
        while (cap < need)
            cap = cap > b->max / 2 ? b->max : cap * 2;
        if (cap > b->max)
            cap = b->max;
        np = malloc(cap);
        if (np == NULL)
            return CD_ERR_NOMEM;
        if (b->p != NULL) {
            memcpy(np, b->p, b->len);
            explicit_bzero(b->p, b->cap);
            free(b->p);
        }
        b->p = np;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return CD_OK;
}

char *buf_detach(struct buf *b, size_t *len)
{
    char *p = b->p;

    if (len != NULL)
        *len = b->len;
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void buf_release(struct buf *b)
{
    if (b->p != NULL) {
        explicit_bzero(b->p, b->cap);
        free(b->p);
    }
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}
