/* audit_verify.c: the audit log's strict line parser and the verification
 * of a whole log (chain, sequence, signatures, pin, sealed head). */
#include "cas/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/codec.h"
#include "common/num.h"

/* ---- parsing a line (strictly: only what the writer above produces) ---- */

struct span {
    const char *p; /* the escaped content between the quotes; NULL for null */
    size_t n;
};

struct line {
    uint64_t seq;
    struct span time, prev, kind, public_key, key_hash, sig;
    size_t signed_len; /* bytes before ,"sig": */
    bool genesis;
};

struct cur {
    const char *p;
    const char *end;
    const char *why; /* the first problem */
};

static bool fail(struct cur *c, const char *why)
{
    if (c->why == NULL)
        c->why = why;
    return false;
}

static bool lit(struct cur *c, const char *s)
{
    size_t n = strlen(s);

    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool is_lhex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

static unsigned hexval(char ch)
{
    return ch <= '9' ? (unsigned)(ch - '0') : (unsigned)(ch - 'a' + 10);
}

/* A string as the writer escapes it; null too when nullable. */
static bool str(struct cur *c, struct span *out, bool nullable)
{
    const char *start;

    if (nullable && lit(c, "null")) {
        *out = (struct span){NULL, 0};
        return true;
    }
    if (!lit(c, "\""))
        return fail(c, "a string expected");
    start = c->p;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x20 || ch > 0x7e)
            return fail(c, "a raw control or non-ASCII byte in a string");
        if (ch != '\\') {
            c->p++;
            continue;
        }
        if (c->end - c->p >= 2 && (c->p[1] == '"' || c->p[1] == '\\')) {
            c->p += 2;
            continue;
        }
        if (c->end - c->p < 6 || memcmp(c->p, "\\u00", 4) != 0 || !is_lhex(c->p[4]) ||
            !is_lhex(c->p[5]))
            return fail(c, "a bad escape in a string");
        unsigned v = hexval(c->p[4]) * 16 + hexval(c->p[5]);
        if (v >= 0x20 && v != 0x7f)
            return fail(c, "an escape of a printable byte in a string");
        c->p += 6;
    }
    if (c->p >= c->end)
        return fail(c, "an unterminated string");
    out->p = start;
    out->n = (size_t)(c->p - start);
    c->p++;
    return true;
}

static bool key(struct cur *c, const char *k, bool first)
{
    char want[32];

    snprintf(want, sizeof(want), "%s\"%s\":", first ? "" : ",", k);
    return lit(c, want) || fail(c, "a field missing or out of order");
}

static bool field(struct cur *c, const char *k, struct span *out, bool nullable)
{
    return key(c, k, false) && str(c, out, nullable);
}

static bool uint_field(struct cur *c, uint64_t *out)
{
    const char *s = c->p;

    /* no leading zeros: one spelling per number */
    if (c->p < c->end && *c->p == '0' && c->end - c->p > 1 && c->p[1] >= '0' && c->p[1] <= '9')
        return fail(c, "a number with a leading zero");
    if (num_prefix(&c->p, c->end, UINT64_MAX - 1, out) != CD_OK)
        return fail(c, "a bad number");
    return c->p > s;
}

static bool secrets(struct cur *c)
{
    struct span s;
    size_t n = 0;

    if (!key(c, "secrets", false) || !lit(c, "["))
        return fail(c, "a list expected");
    if (lit(c, "]"))
        return true;
    do {
        if (++n > AUDIT_MAX_NAMES + 1 || !str(c, &s, false))
            return fail(c, "a bad list of secrets");
    } while (lit(c, ","));
    return lit(c, "]") || fail(c, "a bad list of secrets");
}

static bool span_is(const struct span *s, const char *v)
{
    return s->p != NULL && s->n == strlen(v) && memcmp(s->p, v, s->n) == 0;
}

static bool lhex64(const struct span *s)
{
    if (s->n != HASH_HEX_LEN)
        return false;
    for (size_t i = 0; i < s->n; i++)
        if (!is_lhex(s->p[i]))
            return false;
    return true;
}

/* "YYYY-MM-DDTHH:MM:SSZ" with fields in range. */
static bool time_ok(const struct span *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    unsigned v[6] = {0};
    static const unsigned lo[6] = {1970, 1, 1, 0, 0, 0}, hi[6] = {9999, 12, 31, 23, 59, 60};
    size_t f = 0;

    if (s->n != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; i < s->n; i++) {
        if (shape[i] != 'd') {
            if (s->p[i] != shape[i])
                return false;
            f++;
            continue;
        }
        if (s->p[i] < '0' || s->p[i] > '9')
            return false;
        v[f] = v[f] * 10 + (unsigned)(s->p[i] - '0');
    }
    for (f = 0; f < 6; f++)
        if (v[f] < lo[f] || v[f] > hi[f])
            return false;
    return true;
}

static bool known_kind(const struct span *s)
{
    for (size_t i = 0; i < AUDIT_N_KINDS; i++)
        if (span_is(s, audit_kind_name((enum audit_kind)i)))
            return true;
    return false;
}

static bool parse_event(struct cur *c)
{
    struct span s;

    return field(c, "session", &s, true) && field(c, "who", &s, false) &&
           field(c, "measurement", &s, true) && secrets(c) && field(c, "hash", &s, true) &&
           field(c, "reason", &s, true);
}

static const char *why_of(const struct cur *c)
{
    return c->why != NULL ? c->why : "not an audit line";
}

/* Parses p[0..n) (without its newline) into *out; NULL or the first problem. */
static const char *parse_line(const char *p, size_t n, struct line *out)
{
    struct cur c = {p, p + n, NULL};
    struct line l = {0};

    if (!(lit(&c, "{") && key(&c, "seq", true) && uint_field(&c, &l.seq) &&
          field(&c, "time", &l.time, false) && field(&c, "prev", &l.prev, false) &&
          field(&c, "kind", &l.kind, false)))
        return why_of(&c);
    if (!time_ok(&l.time))
        return "a bad time";
    if (!lhex64(&l.prev))
        return "a bad prev hash";
    l.genesis = span_is(&l.kind, GENESIS_KIND);
    if (!l.genesis && !known_kind(&l.kind))
        return "an unknown kind";
    if (l.genesis) {
        if (!field(&c, "public_key", &l.public_key, false) ||
            !field(&c, "key_hash", &l.key_hash, false))
            return why_of(&c);
        if (!lhex64(&l.key_hash))
            return "a bad key hash";
    } else if (!parse_event(&c)) {
        return why_of(&c);
    }
    l.signed_len = (size_t)(c.p - p);
    if (!field(&c, "sig", &l.sig, false))
        return why_of(&c);
    if (!lit(&c, "}") || c.p != c.end)
        return "bytes after the end of the line's object";
    *out = l;
    return NULL;
}

/* ---- verifying ---- */

struct vstate {
    const char *label;
    const char *pin; /* NULL: any key */
    const struct audit_head *expect;
    struct cd_diag *diag;
    uint64_t lines; /* lines checked so far */
    char prev[HASH_HEX_LEN + 1];
    EVP_PKEY *pub; /* from the genesis line */
    bool expect_met;
};

/* Records the problem with the line being checked: what, then why (or NULL). */
static cd_err bad(struct vstate *v, cd_err err, const char *what, const char *why)
{
    cd_diag_add(v->diag, "audit log %s: line %" PRIu64 ": %s%s", v->label, v->lines + 1, what,
                why != NULL ? why : "");
    return err;
}

static cd_err check_genesis(struct vstate *v, const struct line *l)
{
    unsigned char der[SPKI_DER_MAX];
    char fp[HASH_HEX_LEN + 1];
    size_t derlen = 0;
    const unsigned char *dp = der;

    if (!audit_b64_exact(l->public_key.p, l->public_key.n, der, sizeof(der), &derlen))
        return bad(v, CD_ERR_INVALID, "malformed: a bad public key", NULL);
    audit_sha256_hex(der, derlen, fp);
    if (memcmp(fp, l->key_hash.p, HASH_HEX_LEN) != 0)
        return bad(v, CD_ERR_CRYPTO, "key_hash is not the hash of public_key", NULL);
    if (v->pin != NULL && strcasecmp(fp, v->pin) != 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "signed by key %s, not the pinned key %.64s", fp, v->pin);
        return bad(v, CD_ERR_CRYPTO, msg, NULL);
    }
    v->pub = d2i_PUBKEY(NULL, &dp, (long)derlen);
    if (v->pub == NULL || dp != der + derlen || !audit_is_p256(v->pub))
        return bad(v, CD_ERR_INVALID, "malformed: not an ECDSA P-256 public key", NULL);
    return CD_OK;
}

/* Checks one line p[0..n) (n includes the newline when nl). */
static cd_err check_line(struct vstate *v, const char *p, size_t n, bool nl)
{
    struct line l = {0};
    const char *why;
    unsigned char sig[SIG_DER_MAX];
    size_t siglen = 0;
    char hash[HASH_HEX_LEN + 1];
    cd_err err;

    if (!nl)
        return bad(v, CD_ERR_INVALID,
                   "no newline at its end: a torn write (the log was not truncated; "
                   "inspect and repair it by hand)",
                   NULL);
    why = parse_line(p, n - 1, &l);
    if (why != NULL)
        return bad(v, CD_ERR_INVALID, "malformed: ", why);
    if (l.seq != v->lines) {
        char msg[96];
        snprintf(msg, sizeof(msg), "seq %" PRIu64 " where %" PRIu64 " was expected", l.seq,
                 v->lines);
        return bad(v, CD_ERR_CRYPTO, msg, " (a line removed, inserted or reordered)");
    }
    if (l.genesis != (v->lines == 0))
        return bad(v, CD_ERR_CRYPTO, v->lines == 0 ? "not a genesis line" : "a second genesis line",
                   NULL);
    if (memcmp(l.prev.p, v->prev, HASH_HEX_LEN) != 0)
        return bad(v, CD_ERR_CRYPTO, "prev is not the hash of the line before",
                   " (a line before it edited, removed or reordered)");
    if (l.genesis) {
        err = check_genesis(v, &l);
        if (err != CD_OK)
            return err;
    }
    if (!audit_b64_exact(l.sig.p, l.sig.n, sig, sizeof(sig), &siglen))
        return bad(v, CD_ERR_INVALID, "malformed: a bad signature encoding", NULL);
    if (!audit_sig_ok(v->pub, p, l.signed_len, sig, siglen))
        return bad(v, CD_ERR_CRYPTO, "bad signature",
                   " (edited, or written by someone without the log's key)");
    audit_sha256_hex(p, n, hash);
    if (v->expect != NULL && l.seq == v->expect->seq) {
        if (strcasecmp(hash, v->expect->hash) != 0)
            return bad(v, CD_ERR_CRYPTO, "not the sealed head (its hash differs)", NULL);
        v->expect_met = true;
    }
    memcpy(v->prev, hash, sizeof(hash));
    v->lines++;
    return CD_OK;
}

static cd_err finish(struct vstate *v, uint64_t *bad_line, struct audit_head *head)
{
    if (v->lines == 0) {
        *bad_line = 1;
        return bad(v, CD_ERR_INVALID, "empty log (no genesis line)", NULL);
    }
    if (v->expect != NULL && !v->expect_met) {
        cd_diag_add(v->diag,
                    "audit log %s: line %" PRIu64 ": missing: the log ends after line %" PRIu64
                    " but the sealed head is line %" PRIu64 " (lines removed from its end)",
                    v->label, v->lines + 1, v->lines, v->expect->seq + 1);
        *bad_line = v->lines + 1;
        return CD_ERR_CRYPTO;
    }
    if (head != NULL) {
        head->seq = v->lines - 1;
        memcpy(head->hash, v->prev, sizeof(head->hash));
    }
    *bad_line = 0;
    return CD_OK;
}

static void vstate_init(struct vstate *v, const char *label, const char *pin,
                        const struct audit_head *expect, struct cd_diag *diag)
{
    *v = (struct vstate){.label = label, .pin = pin, .expect = expect, .diag = diag};
    memcpy(v->prev, AUDIT_ZERO_HASH, sizeof(v->prev));
}

cd_err audit_verify_buffer(const char *label, const char *data, size_t len, const char *pin,
                           const struct audit_head *expect, struct cd_diag *diag,
                           uint64_t *bad_line, struct audit_head *head)
{
    struct vstate v;
    size_t off = 0;
    cd_err err = CD_OK;
    uint64_t dummy;

    if (bad_line == NULL)
        bad_line = &dummy;
    *bad_line = 0;
    if (data == NULL && len > 0)
        return CD_ERR_INVALID;
    vstate_init(&v, label != NULL ? label : "(buffer)", pin, expect, diag);
    while (off < len && err == CD_OK) {
        const char *nl = memchr(data + off, '\n', len - off);
        size_t n = nl != NULL ? (size_t)(nl - (data + off)) + 1 : len - off;
        if (n > AUDIT_LINE_MAX)
            err = bad(&v, CD_ERR_INVALID, "longer than the line limit", NULL);
        else
            err = check_line(&v, data + off, n, nl != NULL);
        off += n;
    }
    if (err == CD_OK)
        err = finish(&v, bad_line, head);
    else
        *bad_line = v.lines + 1;
    EVP_PKEY_free(v.pub);
    return err;
}

/* Verifies the log open on fd from its start, reading line by line. */
cd_err audit_verify_fd(int fd, const char *label, const char *pin, const struct audit_head *expect,
                       struct cd_diag *diag, uint64_t *bad_line, struct audit_head *head)
{
    struct vstate v;
    char *buf = malloc(READ_BUF);
    size_t start = 0, len = 0;
    bool eof = false;
    cd_err err = CD_OK;

    *bad_line = 0;
    if (buf == NULL)
        return CD_ERR_NOMEM;
    vstate_init(&v, label, pin, expect, diag);
    while (err == CD_OK) {
        const char *nl = memchr(buf + start, '\n', len - start);
        if (nl != NULL) {
            size_t n = (size_t)(nl - (buf + start)) + 1;
            err = n > AUDIT_LINE_MAX ? bad(&v, CD_ERR_INVALID, "longer than the line limit", NULL)
                                     : check_line(&v, buf + start, n, true);
            start += n;
            continue;
        }
        if (len - start > AUDIT_LINE_MAX) {
            err = bad(&v, CD_ERR_INVALID, "longer than the line limit", NULL);
            break;
        }
        if (eof) {
            if (len > start)
                err = check_line(&v, buf + start, len - start, false);
            break;
        }
        memmove(buf, buf + start, len - start);
        len -= start;
        start = 0;
        ssize_t r = read(fd, buf + len, READ_BUF - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            cd_diag_add(diag, "audit log %s: cannot read: %s", label, strerror(errno));
            free(buf);
            EVP_PKEY_free(v.pub);
            return CD_ERR_IO;
        }
        eof = r == 0;
        len += (size_t)r;
    }
    if (err == CD_OK)
        err = finish(&v, bad_line, head);
    else
        *bad_line = v.lines + 1;
    free(buf);
    EVP_PKEY_free(v.pub);
    return err;
}

/* Opens path (no symbolic link at its end) and checks it is a regular file. */
cd_err audit_open_log(const char *path, int flags, struct cd_diag *diag, int *fd_out)
{
    struct stat st;
    int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0) {
        cd_diag_add(diag, "audit log %s: cannot open: %s", path, strerror(errno));
        if (errno == ENOENT)
            return CD_ERR_NOT_FOUND;
        return errno == ELOOP ? CD_ERR_CONFIG : CD_ERR_IO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cd_diag_add(diag, "audit log %s: not a regular file", path);
        close(fd);
        return CD_ERR_CONFIG;
    }
    *fd_out = fd;
    return CD_OK;
}

cd_err audit_verify(const char *path, const char *pin, const struct audit_head *expect,
                    struct cd_diag *diag, uint64_t *bad_line, struct audit_head *head)
{
    int fd = -1;
    uint64_t dummy;
    cd_err err;

    if (bad_line == NULL)
        bad_line = &dummy;
    *bad_line = 0;
    if (path == NULL)
        return CD_ERR_INVALID;
    err = audit_open_log(path, O_RDONLY, diag, &fd);
    if (err != CD_OK)
        return err;
    err = audit_verify_fd(fd, path, pin, expect, diag, bad_line, head);
    close(fd);
    return err;
}
