/* ipc.c: encoding, decoding and the datagram transport of the parent <-> worker
 * messages (ipc.h). Decoding is pure and fuzzed (fuzz/fuzz_ipc.c). */
#include "casd/ipc.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

/* What a field may hold. */
enum field_rule {
    F_POLICY_NAME, /* 1..64 of a-z 0-9 _ - */
    F_SECRET_NAME, /* 1..64 of A-Z a-z 0-9 _ - */
    F_CLIENT,      /* empty, or 64 lowercase hex digits */
    F_BYTES,       /* anything up to the bound */
};

static bool name_char(char c, bool upper)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           (upper && c >= 'A' && c <= 'Z');
}

static bool field_ok(const struct casd_ipc_field *f, enum field_rule rule, size_t max)
{
    if (f->len > max || (f->len > 0 && f->p == NULL))
        return false;
    switch (rule) {
    case F_POLICY_NAME:
    case F_SECRET_NAME:
        if (f->len == 0 || f->len > CASD_IPC_NAME_MAX)
            return false;
        for (size_t i = 0; i < f->len; i++)
            if (!name_char(f->p[i], rule == F_SECRET_NAME))
                return false;
        return true;
    case F_CLIENT:
        if (f->len != 0 && f->len != CASD_IPC_HASH_LEN)
            return false;
        for (size_t i = 0; i < f->len; i++) {
            char c = f->p[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                return false;
        }
        return true;
    case F_BYTES:
        return true;
    }
    return false;
}

/* The rules of fields a and b of each type; false for an unknown type. */
static bool rules_of(uint32_t type, enum field_rule *ra, size_t *ma, enum field_rule *rb,
                     size_t *mb)
{
    switch (type) {
    case CASD_IPC_TLS_CONFIG:
        *ra = F_BYTES, *ma = CASD_IPC_PEM_MAX, *rb = F_BYTES, *mb = CASD_IPC_KEY_MAX;
        return true;
    case CASD_IPC_VALUE_GET:
        *ra = F_POLICY_NAME, *ma = CASD_IPC_NAME_MAX, *rb = F_SECRET_NAME, *mb = CASD_IPC_NAME_MAX;
        return true;
    case CASD_IPC_SESSION_GET:
        *ra = F_POLICY_NAME, *ma = CASD_IPC_NAME_MAX, *rb = F_CLIENT, *mb = CASD_IPC_HASH_LEN;
        return true;
    case CASD_IPC_SESSION_PUT:
    case CASD_IPC_NODE_HELLO:
    case CASD_IPC_NODE_MEASURE:
        *ra = F_BYTES, *ma = CASD_IPC_TEXT_MAX, *rb = F_CLIENT, *mb = CASD_IPC_HASH_LEN;
        return true;
    case CASD_IPC_REPLY:
        *ra = F_BYTES, *ma = CASD_IPC_BODY_MAX, *rb = F_BYTES, *mb = 0;
        return true;
    case CASD_IPC_METRICS_GET:
        *ra = F_BYTES, *ma = 0, *rb = F_CLIENT, *mb = CASD_IPC_HASH_LEN;
        return true;
    default:
        return false;
    }
}

/* ---- encoding ---- */

static cd_err put_u32(struct buf *out, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return buf_add(out, b, sizeof(b));
}

static cd_err put_field(struct buf *out, const struct casd_ipc_field *f)
{
    cd_err err = put_u32(out, (uint32_t)f->len);
    if (err == CD_OK && f->len > 0)
        err = buf_add(out, f->p, f->len);
    return err;
}

static bool msg_ok(const struct casd_ipc_msg *m)
{
    enum field_rule ra, rb;
    size_t ma, mb;

    if (!rules_of(m->type, &ra, &ma, &rb, &mb))
        return false;
    if (m->type == CASD_IPC_REPLY)
        return m->status >= 100 && m->status <= 599 && field_ok(&m->a, ra, ma);
    if (!field_ok(&m->a, ra, ma) || !field_ok(&m->b, rb, mb))
        return false;
    if (m->type != CASD_IPC_SESSION_PUT)
        return true;
    if (m->nsigs > CASD_IPC_MAX_SIGS)
        return false;
    for (size_t i = 0; i < m->nsigs; i++)
        if (!field_ok(&m->sigs[i].public_key, F_BYTES, CASD_IPC_PUBKEY_MAX) ||
            !field_ok(&m->sigs[i].signature, F_BYTES, CASD_IPC_SIG_MAX))
            return false;
    return true;
}

cd_err casd_ipc_encode(const struct casd_ipc_msg *m, struct buf *out)
{
    const size_t start = out->len;
    cd_err err;

    if (m == NULL || !msg_ok(m))
        return CD_ERR_INVALID;
    if ((err = put_u32(out, m->type)) != CD_OK || (err = put_u32(out, 0)) != CD_OK)
        return err;
    if (m->type == CASD_IPC_REPLY) {
        if ((err = put_u32(out, m->status)) != CD_OK || (err = put_field(out, &m->a)) != CD_OK)
            return err;
    } else {
        if ((err = put_field(out, &m->a)) != CD_OK || (err = put_field(out, &m->b)) != CD_OK)
            return err;
        if (m->type == CASD_IPC_SESSION_PUT) {
            if ((err = put_u32(out, (uint32_t)m->nsigs)) != CD_OK)
                return err;
            for (size_t i = 0; i < m->nsigs; i++)
                if ((err = put_field(out, &m->sigs[i].public_key)) != CD_OK ||
                    (err = put_field(out, &m->sigs[i].signature)) != CD_OK)
                    return err;
        }
    }
    size_t plen = out->len - start - CASD_IPC_HEADER;
    if (out->len - start > CASD_IPC_MAX)
        return CD_ERR_TOO_LARGE;
    unsigned char *h = (unsigned char *)out->p + start + 4;
    h[0] = (unsigned char)plen, h[1] = (unsigned char)(plen >> 8);
    h[2] = (unsigned char)(plen >> 16), h[3] = (unsigned char)(plen >> 24);
    return CD_OK;
}

/* ---- decoding ---- */

struct reader {
    const unsigned char *p, *end;
};

static bool get_u32(struct reader *r, uint32_t *v)
{
    if (r->end - r->p < 4)
        return false;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
         (uint32_t)r->p[3] << 24;
    r->p += 4;
    return true;
}

static bool get_field(struct reader *r, struct casd_ipc_field *f, enum field_rule rule, size_t max)
{
    uint32_t n;

    if (!get_u32(r, &n) || n > max || (size_t)(r->end - r->p) < n)
        return false;
    f->p = n > 0 ? (const char *)r->p : NULL;
    f->len = n;
    r->p += n;
    return field_ok(f, rule, max);
}

cd_err casd_ipc_decode(const void *data, size_t len, struct casd_ipc_msg *out)
{
    enum field_rule ra, rb;
    size_t ma, mb;
    uint32_t plen, n;

    if (data == NULL || out == NULL || len < CASD_IPC_HEADER || len > CASD_IPC_MAX)
        return CD_ERR_INVALID;
    struct reader r = {data, (const unsigned char *)data + len};
    memset(out, 0, sizeof(*out));
    if (!get_u32(&r, &out->type) || !get_u32(&r, &plen) || plen != len - CASD_IPC_HEADER)
        return CD_ERR_INVALID;
    if (!rules_of(out->type, &ra, &ma, &rb, &mb))
        return CD_ERR_INVALID;
    if (out->type == CASD_IPC_REPLY) {
        if (!get_u32(&r, &out->status) || out->status < 100 || out->status > 599 ||
            !get_field(&r, &out->a, ra, ma))
            return CD_ERR_INVALID;
    } else {
        if (!get_field(&r, &out->a, ra, ma) || !get_field(&r, &out->b, rb, mb))
            return CD_ERR_INVALID;
        if (out->type == CASD_IPC_SESSION_PUT) {
            if (!get_u32(&r, &n) || n > CASD_IPC_MAX_SIGS)
                return CD_ERR_INVALID;
            for (uint32_t i = 0; i < n; i++)
                if (!get_field(&r, &out->sigs[i].public_key, F_BYTES, CASD_IPC_PUBKEY_MAX) ||
                    !get_field(&r, &out->sigs[i].signature, F_BYTES, CASD_IPC_SIG_MAX))
                    return CD_ERR_INVALID;
            out->nsigs = n;
        }
    }
    return r.p == r.end ? CD_OK : CD_ERR_INVALID;
}

/* ---- transport ---- */

cd_err casd_ipc_send(int fd, const struct casd_ipc_msg *m)
{
    struct buf b;
    cd_err err;

    buf_init(&b, CASD_IPC_MAX + 1);
    if ((err = casd_ipc_encode(m, &b)) == CD_OK) {
        ssize_t w;
        do
            w = send(fd, b.p, b.len, MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        if (w < 0 || (size_t)w != b.len)
            err = CD_ERR_IO;
    }
    buf_release(&b);
    return err;
}

cd_err casd_ipc_recv(int fd, int timeout_ms, char *space, size_t cap, struct casd_ipc_msg *out)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    ssize_t n;

    if (space == NULL || cap < CASD_IPC_MAX + 1)
        return CD_ERR_INVALID;
    for (;;) {
        int rc = poll(&pfd, 1, timeout_ms);
        if (rc > 0)
            break;
        if (rc == 0)
            return CD_ERR_TIMEOUT;
        if (errno != EINTR)
            return CD_ERR_IO;
    }
    /* MSG_TRUNC: n is the datagram's real length, so a longer one shows. */
    do
        n = recv(fd, space, CASD_IPC_MAX + 1, MSG_TRUNC);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return CD_ERR_IO;
    if ((size_t)n > CASD_IPC_MAX)
        return CD_ERR_INVALID;
    return casd_ipc_decode(space, (size_t)n, out);
}

cd_err casd_ipc_tune(int fd)
{
    int size = (int)(2 * CASD_IPC_MAX);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) != 0)
        return CD_ERR_IO;
    return CD_OK;
}
