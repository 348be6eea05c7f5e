/* proto.c: encoding and decoding of the launcher protocol's messages (pure; proto.h). */
#include "release/proto.h"

#include <string.h>

/* ---- field rules, shared by the encoders and the decoder ---- */

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static bool valid_name(const char *s, size_t n, bool empty_ok)
{
    if (n > RELEASE_NAME_MAX || (n == 0 && !empty_ok))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return false;
    return true;
}

static bool valid_hash(const char *s, size_t n)
{
    if (n != RELEASE_HASH_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool valid_reason(const char *s, size_t n)
{
    return n >= 1 && n <= RELEASE_REASON_MAX && printable(s, n);
}

/* Components of s[0..n) separated by '/', from start: none empty, "." or "..". */
static bool clean_components(const char *s, size_t n, size_t start)
{
    size_t i = start;
    for (;;) {
        size_t j = i;
        while (j < n && s[j] != '/')
            j++;
        size_t len = j - i;
        if (len == 0 || (len == 1 && s[i] == '.') || (len == 2 && s[i] == '.' && s[i + 1] == '.'))
            return false;
        if (j == n)
            return true;
        i = j + 1;
    }
}

/* An absolute path: at most RELEASE_PATH_MAX bytes, printable, clean
 * components (a trailing '/' allowed when dir). */
static bool valid_abs(const char *s, size_t n, bool dir)
{
    if (n < 2 || n > RELEASE_PATH_MAX || s[0] != '/' || !printable(s, n))
        return false;
    if (dir && s[n - 1] == '/')
        n--;
    return clean_components(s, n, 1);
}

/* A relative path of a released file. */
static bool valid_rel(const char *s, size_t n)
{
    return n >= 1 && n <= RELEASE_PATH_MAX && s[0] != '/' && printable(s, n) &&
           clean_components(s, n, 0);
}

/* ---- encoding ---- */

static cd_err put_u32(struct buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return buf_add(b, x, sizeof(x));
}

static cd_err put_bytes(struct buf *b, const void *p, size_t n)
{
    cd_err err = put_u32(b, (uint32_t)n);
    return err == CD_OK && n > 0 ? buf_add(b, p, n) : err;
}

static cd_err put_str(struct buf *b, const char *s)
{
    return put_bytes(b, s, strlen(s));
}

/* Starts a message: type and a length patched by finish. */
static cd_err begin(struct buf *b, enum release_type t, size_t *start)
{
    *start = b->len;
    cd_err err = put_u32(b, (uint32_t)t);
    return err == CD_OK ? put_u32(b, 0) : err;
}

static cd_err finish(struct buf *b, size_t start, cd_err err)
{
    if (err != CD_OK)
        return err;
    size_t n = b->len - start - RELEASE_HEADER;
    if (n > RELEASE_MSG_MAX - RELEASE_HEADER)
        return CD_ERR_TOO_LARGE;
    uint8_t *l = (uint8_t *)b->p + start + 4;
    l[0] = (uint8_t)(n >> 24);
    l[1] = (uint8_t)(n >> 16);
    l[2] = (uint8_t)(n >> 8);
    l[3] = (uint8_t)n;
    return CD_OK;
}

cd_err release_enc_hello(struct buf *out, const char *session)
{
    size_t start = 0;
    if (!valid_name(session, strlen(session), false))
        return CD_ERR_INVALID;
    cd_err err = begin(out, RELEASE_HELLO, &start);
    if (err == CD_OK)
        err = put_str(out, session);
    return finish(out, start, err);
}

cd_err release_enc_spec(struct buf *out, uint32_t uid, const char *mount, const char *const *config,
                        size_t nconfig, const unsigned char nonce[RELEASE_NONCE_LEN])
{
    size_t start = 0;
    if (!valid_abs(mount, strlen(mount), true) || nconfig > POLICY_MAX_MEASURED)
        return CD_ERR_INVALID;
    for (size_t i = 0; i < nconfig; i++)
        if (!valid_abs(config[i], strlen(config[i]), false))
            return CD_ERR_INVALID;
    cd_err err = begin(out, RELEASE_SPEC, &start);
    if (err == CD_OK)
        err = put_u32(out, uid);
    if (err == CD_OK)
        err = put_str(out, mount);
    if (err == CD_OK)
        err = put_u32(out, (uint32_t)nconfig);
    for (size_t i = 0; i < nconfig && err == CD_OK; i++)
        err = put_str(out, config[i]);
    if (err == CD_OK)
        err = put_bytes(out, nonce, RELEASE_NONCE_LEN);
    return finish(out, start, err);
}

cd_err release_enc_refused(struct buf *out, const char *reason)
{
    size_t start = 0;
    if (!valid_reason(reason, strlen(reason)))
        return CD_ERR_INVALID;
    cd_err err = begin(out, RELEASE_REFUSED, &start);
    if (err == CD_OK)
        err = put_str(out, reason);
    return finish(out, start, err);
}

cd_err release_enc_measure(struct buf *out, const struct release_measurement *m)
{
    size_t start = 0;
    const char *verifier = m->verifier != NULL ? m->verifier : "";
    size_t vlen = strlen(verifier);
    size_t elen = vlen > 0 ? m->evidence_len : 0;

    if (!valid_hash(m->exe, strlen(m->exe)) || m->nconfig > POLICY_MAX_MEASURED ||
        !valid_name(verifier, vlen, true) || elen > RELEASE_EVIDENCE_MAX ||
        (vlen > 0) != (elen > 0))
        return CD_ERR_INVALID;
    for (size_t i = 0; i < m->nconfig; i++)
        if (!valid_hash(m->config[i], strlen(m->config[i])))
            return CD_ERR_INVALID;
    cd_err err = begin(out, RELEASE_MEASURE, &start);
    if (err == CD_OK)
        err = put_str(out, m->exe);
    if (err == CD_OK)
        err = put_u32(out, m->uid);
    if (err == CD_OK)
        err = put_u32(out, (uint32_t)m->nconfig);
    for (size_t i = 0; i < m->nconfig && err == CD_OK; i++)
        err = put_str(out, m->config[i]);
    if (err == CD_OK)
        err = put_str(out, verifier);
    if (err == CD_OK)
        err = put_bytes(out, m->evidence, elen);
    return finish(out, start, err);
}

cd_err release_enc_file(struct buf *out, const char *rel, bool public_file, const void *content,
                        size_t len)
{
    size_t start = 0;
    uint8_t flag = public_file ? 1 : 0;
    if (!valid_rel(rel, strlen(rel)) || len > RELEASE_CONTENT_MAX)
        return CD_ERR_INVALID;
    cd_err err = begin(out, RELEASE_FILE, &start);
    if (err == CD_OK)
        err = put_str(out, rel);
    if (err == CD_OK)
        err = buf_add(out, &flag, 1);
    if (err == CD_OK)
        err = put_bytes(out, content, len);
    return finish(out, start, err);
}

cd_err release_enc_end(struct buf *out, uint32_t nfiles)
{
    size_t start = 0;
    if (nfiles > RELEASE_MAX_FILES)
        return CD_ERR_INVALID;
    cd_err err = begin(out, RELEASE_END, &start);
    if (err == CD_OK)
        err = put_u32(out, nfiles);
    return finish(out, start, err);
}

/* ---- decoding ---- */

struct rd {
    const uint8_t *p;
    size_t len, off;
};

static bool get_u32(struct rd *r, uint32_t *v)
{
    if (r->len - r->off < 4)
        return false;
    const uint8_t *x = r->p + r->off;
    *v = (uint32_t)x[0] << 24 | (uint32_t)x[1] << 16 | (uint32_t)x[2] << 8 | (uint32_t)x[3];
    r->off += 4;
    return true;
}

static bool get_u8(struct rd *r, uint8_t *v)
{
    if (r->len - r->off < 1)
        return false;
    *v = r->p[r->off++];
    return true;
}

/* A length-prefixed field of at most max bytes. */
static bool get_bytes(struct rd *r, size_t max, struct release_view *v)
{
    uint32_t n = 0;
    if (!get_u32(r, &n) || n > max || n > r->len - r->off)
        return false;
    v->p = (const char *)r->p + r->off;
    v->len = n;
    r->off += n;
    return true;
}

static bool dec_spec(struct rd *r, struct release_msg *m)
{
    uint32_t n = 0;
    if (!get_u32(r, &m->uid) || !get_bytes(r, RELEASE_PATH_MAX, &m->mount) ||
        !valid_abs(m->mount.p, m->mount.len, true) || !get_u32(r, &n) || n > POLICY_MAX_MEASURED)
        return false;
    m->nconfig = n;
    for (size_t i = 0; i < n; i++)
        if (!get_bytes(r, RELEASE_PATH_MAX, &m->config[i]) ||
            !valid_abs(m->config[i].p, m->config[i].len, false))
            return false;
    return get_bytes(r, RELEASE_NONCE_LEN, &m->nonce) && m->nonce.len == RELEASE_NONCE_LEN;
}

static bool dec_measure(struct rd *r, struct release_msg *m)
{
    uint32_t n = 0;
    if (!get_bytes(r, RELEASE_HASH_LEN, &m->exe) || !valid_hash(m->exe.p, m->exe.len) ||
        !get_u32(r, &m->uid) || !get_u32(r, &n) || n > POLICY_MAX_MEASURED)
        return false;
    m->nconfig = n;
    for (size_t i = 0; i < n; i++)
        if (!get_bytes(r, RELEASE_HASH_LEN, &m->config[i]) ||
            !valid_hash(m->config[i].p, m->config[i].len))
            return false;
    return get_bytes(r, RELEASE_NAME_MAX, &m->verifier) &&
           valid_name(m->verifier.p, m->verifier.len, true) &&
           get_bytes(r, RELEASE_EVIDENCE_MAX, &m->evidence) &&
           (m->verifier.len > 0) == (m->evidence.len > 0);
}

static bool dec_payload(struct rd *r, struct release_msg *m)
{
    uint8_t flag = 0;
    switch (m->type) {
    case RELEASE_HELLO:
        return get_bytes(r, RELEASE_NAME_MAX, &m->session) &&
               valid_name(m->session.p, m->session.len, false);
    case RELEASE_SPEC:
        return dec_spec(r, m);
    case RELEASE_REFUSED:
        return get_bytes(r, RELEASE_REASON_MAX, &m->reason) &&
               valid_reason(m->reason.p, m->reason.len);
    case RELEASE_MEASURE:
        return dec_measure(r, m);
    case RELEASE_FILE:
        if (!get_bytes(r, RELEASE_PATH_MAX, &m->rel) || !valid_rel(m->rel.p, m->rel.len) ||
            !get_u8(r, &flag) || flag > 1)
            return false;
        m->public_file = flag == 1;
        return get_bytes(r, RELEASE_CONTENT_MAX, &m->content);
    case RELEASE_END:
        return get_u32(r, &m->nfiles) && m->nfiles <= RELEASE_MAX_FILES;
    }
    return false;
}

cd_err release_decode(const void *p, size_t len, struct release_msg *out)
{
    struct rd r = {p, len, 0};
    uint32_t type = 0, plen = 0;

    memset(out, 0, sizeof(*out));
    if (len > RELEASE_MSG_MAX || !get_u32(&r, &type) || !get_u32(&r, &plen) ||
        plen != len - RELEASE_HEADER || type < RELEASE_HELLO || type > RELEASE_END)
        return CD_ERR_INVALID;
    out->type = (enum release_type)type;
    if (!dec_payload(&r, out) || r.off != len)
        return CD_ERR_INVALID;
    return CD_OK;
}

bool release_view_copy(struct release_view v, char *out, size_t cap)
{
    if (v.len >= cap || memchr(v.p, '\0', v.len) != NULL)
        return false;
    if (v.len > 0)
        memcpy(out, v.p, v.len);
    out[v.len] = '\0';
    return true;
}
