/* audit.c: the CAS's signed, hash-chained audit log (one JSON line per event,
 * written by hand and parsed back strictly; ECDSA P-256 with OpenSSL 3).
 *
 * A line, its fields always in this order (docs/internals/cas-service.md):
 *   {"seq":N,"time":"YYYY-MM-DDTHH:MM:SSZ","prev":"<sha256 hex of line N-1>",
 *    "kind":"genesis","public_key":"<b64 DER SPKI>","key_hash":"<hex>",       (seq 0)
 *    "kind":"release","session":S|null,"who":S,"measurement":S|null,
 *    "secrets":[S,...],"hash":S|null,"reason":S|null,                        (seq > 0)
 *    "sig":"<b64 DER ECDSA-SHA256 over the bytes before ,"sig":>"}\n
 * Strings hold printable ASCII; '"' and '\' are escaped as \" and \\, control
 * bytes as \u00XX (lowercase); the parser accepts exactly that form. */
#include "cas/audit.h"

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

#include "cas/audit_int.h"

struct audit_log {
    pthread_mutex_t mu;
    int fd;
    bool broken; /* a write failed: the end of the file is uncertain */
    EVP_PKEY *key;
    uint64_t seq;                  /* of the last line */
    char prev[HASH_HEX_LEN + 1];   /* hash of the last line */
    char line[AUDIT_LINE_MAX + 1]; /* the line being built */
};

static const char *const kind_names[] = {
    [AUDIT_SESSION_CREATE] = "session_create",   [AUDIT_SESSION_UPDATE] = "session_update",
    [AUDIT_SESSION_REFUSED] = "session_refused", [AUDIT_RELEASE] = "release",
    [AUDIT_RELEASE_REFUSED] = "release_refused", [AUDIT_START] = "start",
};
#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))
_Static_assert(N_KINDS == AUDIT_N_KINDS, "audit_int.h: AUDIT_N_KINDS");

const char *audit_kind_name(enum audit_kind k)
{
    return (size_t)k < N_KINDS ? kind_names[k] : "unknown";
}

/* ---- keys and hashes ---- */

void audit_sha256_hex(const void *data, size_t n, char out[HASH_HEX_LEN + 1])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        /* cannot happen with the default provider; a hash nobody matches */
        memset(out, 'x', HASH_HEX_LEN);
        out[HASH_HEX_LEN] = '\0';
        return;
    }
    codec_hex_encode(md, 32, out);
}

/* True when k is an EC key on P-256. */
bool audit_is_p256(const EVP_PKEY *k)
{
    char group[64];
    size_t glen = 0;

    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC)
        return false;
    if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &glen) != 1)
        return false;
    return strcmp(group, "prime256v1") == 0;
}

static cd_err read_private_key(const char *pem, size_t len, EVP_PKEY **out)
{
    BIO *bio;
    EVP_PKEY *k;

    if (pem == NULL || len == 0 || len > KEY_PEM_MAX)
        return CD_ERR_INVALID;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return CD_ERR_NOMEM;
    k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (k == NULL)
        return CD_ERR_INVALID;
    if (!audit_is_p256(k)) {
        EVP_PKEY_free(k);
        return CD_ERR_INVALID;
    }
    *out = k;
    return CD_OK;
}

/* The DER SubjectPublicKeyInfo of k into der (SPKI_DER_MAX bytes). */
static cd_err spki_der(EVP_PKEY *k, unsigned char *der, size_t *len)
{
    unsigned char *p = NULL;
    int n = i2d_PUBKEY(k, &p);

    if (n <= 0 || (size_t)n > SPKI_DER_MAX) {
        OPENSSL_free(p);
        return CD_ERR_CRYPTO;
    }
    memcpy(der, p, (size_t)n);
    *len = (size_t)n;
    OPENSSL_free(p);
    return CD_OK;
}

/* The order n of P-256. ECDSA signatures are malleable ((r, s) and (r, n-s)
 * both verify), so the log writes and accepts only s <= n/2: a signature field
 * then has one valid spelling, and an edit of it is found at its own line. */
static const char p256_order_hex[] =
    "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";

/* Whether the DER signature sig is in low-s form; with fix, rewrites it
 * (cap bytes) into that form first. */
static bool low_s(unsigned char *sig, size_t *len, size_t cap, bool fix)
{
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)*len);
    BIGNUM *n = NULL, *half = NULL, *ns = NULL;
    bool ok = false;

    if (es == NULL || p != sig + *len || BN_hex2bn(&n, p256_order_hex) == 0)
        goto out;
    half = BN_dup(n);
    if (half == NULL || BN_rshift1(half, half) != 1)
        goto out;
    const BIGNUM *r = ECDSA_SIG_get0_r(es), *sv = ECDSA_SIG_get0_s(es);
    if (BN_cmp(sv, half) <= 0) {
        ok = true;
        goto out;
    }
    if (!fix)
        goto out;
    BIGNUM *r2 = BN_dup(r);
    ns = BN_new();
    if (r2 == NULL || ns == NULL || BN_sub(ns, n, sv) != 1 || ECDSA_SIG_set0(es, r2, ns) != 1) {
        BN_free(r2);
        goto out;
    }
    ns = NULL; /* owned by es now */
    unsigned char *q = NULL;
    int m = i2d_ECDSA_SIG(es, &q);
    if (m > 0 && (size_t)m <= cap) {
        memcpy(sig, q, (size_t)m);
        *len = (size_t)m;
        ok = true;
    }
    OPENSSL_free(q);
out:
    BN_free(ns);
    BN_free(half);
    BN_free(n);
    ECDSA_SIG_free(es);
    return ok;
}

static cd_err sign(EVP_PKEY *k, const void *data, size_t n, unsigned char *sig, size_t *siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = SIG_DER_MAX;
    cd_err err = CD_ERR_CRYPTO;

    if (ctx == NULL)
        return CD_ERR_NOMEM;
    if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) == 1 &&
        EVP_DigestSign(ctx, sig, &len, data, n) == 1 && low_s(sig, &len, SIG_DER_MAX, true)) {
        *siglen = len;
        err = CD_OK;
    }
    EVP_MD_CTX_free(ctx);
    return err;
}

bool audit_sig_ok(EVP_PKEY *k, const void *data, size_t n, unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *ctx;
    bool ok = false;

    if (!low_s(sig, &siglen, siglen, false))
        return false;
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return false;
    if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k) == 1)
        ok = EVP_DigestVerify(ctx, sig, siglen, data, n) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* Decodes the base64 in s into out and requires it to be the one spelling the
 * encoder writes (no stray bits in the last symbol): the text is signed
 * or chained, and an edit must never decode to the same bytes. */
bool audit_b64_exact(const char *s, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
    char again[CODEC_B64_LEN(SPKI_DER_MAX)];

    if (codec_b64_decode(s, n, out, cap, outlen) != CD_OK || *outlen > SPKI_DER_MAX)
        return false;
    if (codec_b64_encode(out, *outlen, again, sizeof(again)) != CD_OK)
        return false;
    return strlen(again) == n && memcmp(again, s, n) == 0;
}

/* ---- writing a line ---- */

struct w {
    char *p;
    size_t len;
    size_t cap; /* bytes usable for content (a NUL follows) */
    bool over;
};

static void w_put(struct w *w, const char *s, size_t n)
{
    if (w->over || n > w->cap - w->len) {
        w->over = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
    w->p[w->len] = '\0';
}

static void w_str(struct w *w, const char *s)
{
    w_put(w, s, strlen(s));
}

/* The escaped form of byte c into out (at most 6 bytes); returns its length. */
static size_t escape_byte(unsigned char c, char out[6])
{
    static const char hex[] = "0123456789abcdef";

    if (c == '"' || c == '\\') {
        out[0] = '\\';
        out[1] = (char)c;
        return 2;
    }
    if (c < 0x20 || c == 0x7f) {
        out[0] = '\\';
        out[1] = 'u';
        out[2] = '0';
        out[3] = '0';
        out[4] = hex[c >> 4];
        out[5] = hex[c & 15];
        return 6;
    }
    out[0] = c > 0x7f ? '?' : (char)c;
    return 1;
}

/* A JSON string of s, its escaped content at most max bytes: a longer one is
 * cut at a whole escape and ends in "...". NULL: null. */
static void w_json(struct w *w, const char *s, size_t max)
{
    char e[6];
    size_t used = 0;

    if (s == NULL) {
        w_str(w, "null");
        return;
    }
    w_put(w, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        size_t n = escape_byte(*p, e);
        /* keep room for "..." unless this is the last byte and it fits */
        if (used + n > max - 3 && !(p[1] == '\0' && used + n <= max)) {
            w_put(w, "...", 3);
            break;
        }
        w_put(w, e, n);
        used += n;
    }
    w_put(w, "\"", 1);
}

static void w_secrets(struct w *w, const char *const *names, size_t n)
{
    size_t start = w->len;

    w_put(w, "[", 1);
    for (size_t i = 0; i < n; i++) {
        size_t before = w->len;
        if (names[i] == NULL)
            continue;
        if (i == AUDIT_MAX_NAMES || (w->len - start) + AUDIT_NAME_MAX + 3 > AUDIT_SECRETS_MAX) {
            w_str(w, before > start + 1 ? ",\"...\"" : "\"...\"");
            break;
        }
        if (before > start + 1)
            w_put(w, ",", 1);
        w_json(w, names[i], AUDIT_NAME_MAX);
    }
    w_put(w, "]", 1);
}

/* The RFC 3339 UTC form of now into out (21 bytes). */
static void rfc3339(time_t now, char out[21])
{
    struct tm tm;

    if (gmtime_r(&now, &tm) == NULL || strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20)
        snprintf(out, 21, "1970-01-01T00:00:00Z");
}

static void w_head(struct w *w, uint64_t seq, const char *prev, const char *kind)
{
    char num[24], when[21];

    snprintf(num, sizeof(num), "%" PRIu64, seq);
    rfc3339(time(NULL), when);
    w_str(w, "{\"seq\":");
    w_str(w, num);
    w_str(w, ",\"time\":\"");
    w_str(w, when);
    w_str(w, "\",\"prev\":\"");
    w_str(w, prev);
    w_str(w, "\",\"kind\":\"");
    w_str(w, kind);
    w_put(w, "\"", 1);
}

static void w_event(struct w *w, const struct audit_event *ev)
{
    w_str(w, ",\"session\":");
    w_json(w, ev->session, AUDIT_SESSION_MAX);
    w_str(w, ",\"who\":");
    w_json(w, ev->who != NULL ? ev->who : "-", AUDIT_WHO_MAX);
    w_str(w, ",\"measurement\":");
    w_json(w, ev->measurement, AUDIT_MEASUREMENT_MAX);
    w_str(w, ",\"secrets\":");
    w_secrets(w, ev->secrets, ev->secrets != NULL ? ev->n_secrets : 0);
    w_str(w, ",\"hash\":");
    w_json(w, ev->hash, AUDIT_FIELD_HASH_MAX);
    w_str(w, ",\"reason\":");
    w_json(w, ev->reason, AUDIT_REASON_MAX);
}

/* Signs what w holds and ends the line: ,"sig":"..."}\n */
static cd_err w_sign(struct w *w, EVP_PKEY *k)
{
    unsigned char sig[SIG_DER_MAX];
    char b64[CODEC_B64_LEN(SIG_DER_MAX)];
    size_t siglen = 0;
    cd_err err;

    if (w->over)
        return CD_ERR_TOO_LARGE;
    err = sign(k, w->p, w->len, sig, &siglen);
    if (err != CD_OK)
        return err;
    err = codec_b64_encode(sig, siglen, b64, sizeof(b64));
    if (err != CD_OK)
        return err;
    w_str(w, SIG_FIELD "\"");
    w_str(w, b64);
    w_str(w, "\"}\n");
    return w->over ? CD_ERR_TOO_LARGE : CD_OK;
}

/* One write(2) of the whole line, then fsync. */
static cd_err write_line(struct audit_log *log, const char *line, size_t n)
{
    ssize_t r;

    do
        r = write(log->fd, line, n);
    while (r < 0 && errno == EINTR);
    if (r < 0 || (size_t)r != n || fsync(log->fd) != 0) {
        log->broken = true;
        return CD_ERR_IO;
    }
    audit_sha256_hex(line, n, log->prev);
    return CD_OK;
}

cd_err audit_append(struct audit_log *log, const struct audit_event *ev)
{
    struct w w;
    cd_err err;

    if (log == NULL || ev == NULL || (size_t)ev->kind >= N_KINDS)
        return CD_ERR_INVALID;
    pthread_mutex_lock(&log->mu);
    if (log->broken) {
        err = CD_ERR_IO;
        goto out;
    }
    w = (struct w){.p = log->line, .cap = AUDIT_LINE_MAX};
    w_head(&w, log->seq + 1, log->prev, kind_names[ev->kind]);
    w_event(&w, ev);
    err = w_sign(&w, log->key);
    if (err == CD_OK)
        err = write_line(log, w.p, w.len);
    if (err == CD_OK)
        log->seq++;
out:
    pthread_mutex_unlock(&log->mu);
    return err;
}

static cd_err write_genesis(struct audit_log *log)
{
    unsigned char der[SPKI_DER_MAX];
    char b64[CODEC_B64_LEN(SPKI_DER_MAX)], fp[HASH_HEX_LEN + 1];
    size_t derlen = 0;
    struct w w = {.p = log->line, .cap = AUDIT_LINE_MAX};
    cd_err err = spki_der(log->key, der, &derlen);

    if (err == CD_OK)
        err = codec_b64_encode(der, derlen, b64, sizeof(b64));
    if (err != CD_OK)
        return err;
    audit_sha256_hex(der, derlen, fp);
    w_head(&w, 0, AUDIT_ZERO_HASH, GENESIS_KIND);
    w_str(&w, ",\"public_key\":\"");
    w_str(&w, b64);
    w_str(&w, "\",\"key_hash\":\"");
    w_str(&w, fp);
    w_put(&w, "\"", 1);
    err = w_sign(&w, log->key);
    if (err == CD_OK)
        err = write_line(log, w.p, w.len);
    if (err == CD_OK)
        log->seq = 0;
    return err;
}

/* ---- opening for appending ---- */

static void fsync_parent(const char *path)
{
    char *copy = strdup(path);
    int dfd;

    if (copy == NULL)
        return;
    dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(copy);
}

static cd_err open_existing(struct audit_log *log, const char *path,
                            const struct audit_head *expect, struct cd_diag *diag)
{
    char pin[HASH_HEX_LEN + 1];
    unsigned char der[SPKI_DER_MAX];
    size_t derlen = 0;
    struct audit_head head;
    struct stat st;
    uint64_t bad_line = 0;
    cd_err err = audit_open_log(path, O_RDWR | O_APPEND, diag, &log->fd);

    if (err != CD_OK)
        return err;
    if (fstat(log->fd, &st) != 0 || (st.st_mode & 022) != 0) {
        cd_diag_add(diag, "audit log %s: writable by group or others (chmod 600 it)", path);
        return CD_ERR_CONFIG;
    }
    if (flock(log->fd, LOCK_EX | LOCK_NB) != 0) {
        cd_diag_add(diag, "audit log %s: in use by another process", path);
        return CD_ERR_CONFLICT;
    }
    err = spki_der(log->key, der, &derlen);
    if (err != CD_OK)
        return err;
    audit_sha256_hex(der, derlen, pin);
    err = audit_verify_fd(log->fd, path, pin, expect, diag, &bad_line, &head);
    if (err != CD_OK)
        return err;
    log->seq = head.seq;
    memcpy(log->prev, head.hash, sizeof(log->prev));
    return CD_OK;
}

static cd_err create_new(struct audit_log *log, const char *path, struct cd_diag *diag)
{
    cd_err err;

    if (flock(log->fd, LOCK_EX | LOCK_NB) != 0) {
        cd_diag_add(diag, "audit log %s: in use by another process", path);
        return CD_ERR_CONFLICT;
    }
    err = write_genesis(log);
    if (err != CD_OK) {
        cd_diag_add(diag, "audit log %s: cannot write the genesis line: %s", path,
                    cd_strerror(err));
        (void)unlink(path);
        return err;
    }
    fsync_parent(path);
    return CD_OK;
}

cd_err audit_open_expect(const char *path, const char *key_pem, size_t key_len,
                         const struct audit_head *expect, struct cd_diag *diag,
                         struct audit_log **out)
{
    struct audit_log *log;
    cd_err err;

    if (path == NULL || out == NULL)
        return CD_ERR_INVALID;
    log = calloc(1, sizeof(*log));
    if (log == NULL)
        return CD_ERR_NOMEM;
    log->fd = -1;
    pthread_mutex_init(&log->mu, NULL);
    err = read_private_key(key_pem, key_len, &log->key);
    if (err != CD_OK) {
        cd_diag_add(diag, "audit log %s: the signing key is not an ECDSA P-256 PKCS#8 key", path);
        goto out;
    }
    if (expect != NULL) {
        /* the state names a head: the log must exist (a missing one was removed) */
        err = open_existing(log, path, expect, diag);
        goto out;
    }
    log->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (log->fd >= 0) {
        err = create_new(log, path, diag);
    } else if (errno == EEXIST) {
        err = open_existing(log, path, NULL, diag);
    } else {
        cd_diag_add(diag, "audit log %s: cannot create: %s", path, strerror(errno));
        err = errno == ELOOP ? CD_ERR_CONFIG : CD_ERR_IO;
    }
out:
    if (err != CD_OK) {
        audit_close(log);
        return err;
    }
    *out = log;
    return CD_OK;
}

cd_err audit_open(const char *path, const char *key_pem, size_t key_len, struct cd_diag *diag,
                  struct audit_log **out)
{
    return audit_open_expect(path, key_pem, key_len, NULL, diag, out);
}

void audit_head(struct audit_log *log, uint64_t *seq, char hash[AUDIT_HASH_HEX])
{
    pthread_mutex_lock(&log->mu);
    *seq = log->seq;
    memcpy(hash, log->prev, AUDIT_HASH_HEX);
    pthread_mutex_unlock(&log->mu);
}

void audit_close(struct audit_log *log)
{
    if (log == NULL)
        return;
    if (log->fd >= 0)
        close(log->fd);
    EVP_PKEY_free(log->key);
    OPENSSL_cleanse(log->line, sizeof(log->line));
    pthread_mutex_destroy(&log->mu);
    free(log);
}
