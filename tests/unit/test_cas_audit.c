/* test_cas_audit.c: the CAS audit log: a chain that verifies, and every way of
 * tampering with it found at the right line (edited bytes, a removed, a
 * reordered, a foreign or a forged line, a wrong pin, a cut end against the
 * sealed head), reopening, torn writes, locking, threads and sanitising. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cas/audit.h"
#include "cas/pki.h"
#include "common/codec.h"

#define N_EVENTS 6

static struct pki_buf key1, key2;
static char pin1[PKI_FP_HEX], pin2[PKI_FP_HEX];
static struct cd_diag diag;

static int setup(void **state)
{
    (void)state;
    if (pki_key_generate(&key1) != CD_OK || pki_key_generate(&key2) != CD_OK)
        return -1;
    if (pki_key_fingerprint(key1.data, key1.len, pin1) != CD_OK ||
        pki_key_fingerprint(key2.data, key2.len, pin2) != CD_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pki_buf_release(&key1);
    pki_buf_release(&key2);
    return 0;
}

struct tmp {
    char dir[64];
    char path[128];
};

static void tmp_new(struct tmp *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/cas-audit-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof(t->path), "%s/audit.log", t->dir);
}

static void tmp_free(struct tmp *t)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    assert_int_equal(system(cmd), 0);
}

static void append_events(struct audit_log *log, size_t n)
{
    static const char *const names[] = {"SERVER_KEY", "SERVER_CRT", "CA"};
    for (size_t i = 0; i < n; i++) {
        struct audit_event ev = {.kind = (enum audit_kind)(i % 6),
                                 .session = "nginx",
                                 .who = "uid=0 pid=42 exe=abc",
                                 .measurement = "exe=abc uid=33 config=/etc/x:def",
                                 .secrets = names,
                                 .n_secrets = i % 4,
                                 .hash = i % 3 == 0 ? "0123abcd" : NULL,
                                 .reason = i % 2 == 1 ? "uid 1000 is not \"33\"\n(refused)" : NULL};
        assert_int_equal(audit_append(log, &ev), CD_OK);
    }
}

/* A log of a genesis line and n events, signed with key. */
static void make_log(const char *path, const struct pki_buf *key, size_t n)
{
    struct audit_log *log = NULL;
    cd_diag_init(&diag);
    assert_int_equal(audit_open(path, key->data, key->len, &diag, &log), CD_OK);
    append_events(log, n);
    audit_close(log);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p;
    long n;
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    rewind(f);
    p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void spit(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* Offsets of the starts of each line (lines[n] = len). Returns the count. */
static size_t split(const char *data, size_t len, size_t *starts, size_t max)
{
    size_t n = 0;
    starts[n++] = 0;
    for (size_t i = 0; i < len && n < max; i++)
        if (data[i] == '\n' && i + 1 < len)
            starts[n++] = i + 1;
    starts[n] = len;
    return n;
}

static cd_err verify_buf(const char *data, size_t len, const char *pin,
                         const struct audit_head *expect, uint64_t *bad)
{
    cd_diag_init(&diag);
    return audit_verify_buffer("t", data, len, pin, expect, &diag, bad, NULL);
}

static void test_append_verify(void **state)
{
    struct tmp t = {0};
    struct audit_head head;
    uint64_t bad = 99, seq;
    char hash[AUDIT_HASH_HEX];
    struct audit_log *log = NULL;
    struct stat st;
    size_t len, starts[32];
    char *data;
    (void)state;

    tmp_new(&t);
    cd_diag_init(&diag);
    assert_int_equal(audit_open(t.path, key1.data, key1.len, &diag, &log), CD_OK);
    audit_head(log, &seq, hash);
    assert_int_equal(seq, 0);
    append_events(log, N_EVENTS);
    audit_head(log, &seq, hash);
    assert_int_equal(seq, N_EVENTS);
    audit_close(log);
    assert_int_equal(stat(t.path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    assert_int_equal(audit_verify(t.path, NULL, NULL, &diag, &bad, &head), CD_OK);
    assert_int_equal(bad, 0);
    assert_int_equal(head.seq, N_EVENTS);
    assert_string_equal(head.hash, hash);
    assert_int_equal(audit_verify(t.path, pin1, &head, &diag, &bad, NULL), CD_OK);
    assert_int_equal(diag.count, 0);

    /* one line per event (the newline in a reason is escaped), fields in order */
    data = slurp(t.path, &len);
    assert_int_equal(split(data, len, starts, 31), N_EVENTS + 1);
    assert_true(strncmp(data, "{\"seq\":0,\"time\":\"", 17) == 0);
    assert_non_null(strstr(data, "\"kind\":\"genesis\",\"public_key\":\""));
    assert_non_null(strstr(data, ",\"key_hash\":\""));
    assert_non_null(strstr(data, pin1));
    assert_non_null(strstr(data, "\"reason\":\"uid 1000 is not \\\"33\\\"\\u000a(refused)\""));
    assert_non_null(strstr(data, "\"kind\":\"release\",\"session\":\"nginx\",\"who\":"));
    assert_int_equal(verify_buf(data, len, pin1, NULL, &bad), CD_OK);
    free(data);
    tmp_free(&t);
}

/* Every single-byte change of line 3 is found, at line 3. */
static void test_edit_any_byte(void **state)
{
    struct tmp t = {0};
    size_t len, starts[32];
    uint64_t bad;
    char *data;
    (void)state;

    tmp_new(&t);
    make_log(t.path, &key1, N_EVENTS);
    data = slurp(t.path, &len);
    assert_int_equal(split(data, len, starts, 31), N_EVENTS + 1);
    for (size_t i = starts[2]; i < starts[3]; i++) {
        char was = data[i];
        for (int bit = 0; bit < 8; bit += 7) {
            data[i] = (char)(was ^ (1 << bit));
            cd_err err = verify_buf(data, len, NULL, NULL, &bad);
            if (err == CD_OK || bad != 3)
                fail_msg("byte %zu (of line 3) ^ %d: %s, bad line %llu: %s", i - starts[2],
                         1 << bit, cd_strerror(err), (unsigned long long)bad, diag.text);
        }
        data[i] = was;
    }
    /* on the file too, with the diagnostic naming the line */
    data[starts[2] + 20] ^= 1;
    spit(t.path, data, len);
    cd_diag_init(&diag);
    assert_int_not_equal(audit_verify(t.path, NULL, NULL, &diag, &bad, NULL), CD_OK);
    assert_int_equal(bad, 3);
    assert_non_null(strstr(diag.text, "line 3:"));
    free(data);
    tmp_free(&t);
}

static void test_remove_middle(void **state)
{
    struct tmp t = {0};
    size_t len, starts[32];
    uint64_t bad;
    char *data;
    (void)state;

    tmp_new(&t);
    make_log(t.path, &key1, N_EVENTS);
    data = slurp(t.path, &len);
    split(data, len, starts, 31);
    /* drop line 3 */
    size_t l3 = starts[3] - starts[2];
    memmove(data + starts[2], data + starts[3], len - starts[3]);
    assert_int_equal(verify_buf(data, len - l3, NULL, NULL, &bad), CD_ERR_CRYPTO);
    assert_int_equal(bad, 3);
    assert_non_null(strstr(diag.text, "seq 3 where 2"));
    free(data);
    /* drop the genesis line */
    data = slurp(t.path, &len);
    assert_int_equal(verify_buf(data + starts[1], len - starts[1], NULL, NULL, &bad),
                     CD_ERR_CRYPTO);
    assert_int_equal(bad, 1);
    free(data);
    tmp_free(&t);
}

static void test_swap(void **state)
{
    struct tmp t = {0};
    size_t len, starts[32];
    uint64_t bad;
    char *data, *out;
    (void)state;

    tmp_new(&t);
    make_log(t.path, &key1, N_EVENTS);
    data = slurp(t.path, &len);
    split(data, len, starts, 31);
    out = malloc(len);
    assert_non_null(out);
    /* lines 3 and 4 swapped */
    size_t o = 0, n3 = starts[3] - starts[2], n4 = starts[4] - starts[3];
    memcpy(out, data, starts[2]);
    o = starts[2];
    memcpy(out + o, data + starts[3], n4);
    o += n4;
    memcpy(out + o, data + starts[2], n3);
    o += n3;
    memcpy(out + o, data + starts[4], len - starts[4]);
    assert_int_equal(verify_buf(out, len, NULL, NULL, &bad), CD_ERR_CRYPTO);
    assert_int_equal(bad, 3);
    free(out);
    free(data);
    tmp_free(&t);
}

/* Cutting the last line leaves an intact, shorter chain: only the sealed
 * head finds it. */
static void test_remove_last(void **state)
{
    struct tmp t = {0};
    size_t len, starts[32];
    uint64_t bad;
    struct audit_head head, got;
    char *data;
    struct audit_log *log = NULL;
    (void)state;

    tmp_new(&t);
    make_log(t.path, &key1, N_EVENTS);
    cd_diag_init(&diag);
    assert_int_equal(audit_verify(t.path, NULL, NULL, &diag, &bad, &head), CD_OK);
    data = slurp(t.path, &len);
    split(data, len, starts, 31);
    spit(t.path, data, starts[N_EVENTS]);
    cd_diag_init(&diag);
    assert_int_equal(audit_verify(t.path, pin1, NULL, &diag, &bad, &got), CD_OK);
    assert_int_equal(got.seq, N_EVENTS - 1);
    cd_diag_init(&diag);
    assert_int_equal(audit_verify(t.path, pin1, &head, &diag, &bad, NULL), CD_ERR_CRYPTO);
    assert_int_equal(bad, N_EVENTS + 1);
    assert_non_null(strstr(diag.text, "removed from its end"));
    /* and the service refuses to open it against its sealed head */
    cd_diag_init(&diag);
    assert_int_equal(audit_open_expect(t.path, key1.data, key1.len, &head, &diag, &log),
                     CD_ERR_CRYPTO);
    assert_null(log);
    /* the same head with a different hash (the last line replaced) */
    spit(t.path, data, len);
    head.hash[0] = head.hash[0] == '0' ? '1' : '0';
    cd_diag_init(&diag);
    assert_int_equal(audit_verify(t.path, NULL, &head, &diag, &bad, NULL), CD_ERR_CRYPTO);
    assert_int_equal(bad, N_EVENTS + 1);
    /* a log longer than the head is fine (appended after the head was sealed) */
    cd_diag_init(&diag);
    assert_int_equal(audit_verify(t.path, NULL, &got, &diag, &bad, NULL), CD_OK);
    free(data);
    tmp_free(&t);
}

/* A DER ECDSA-SHA256 signature of data by key, base64, into out. */
static void sign_b64(const struct pki_buf *key, const char *data, size_t n, char *out,
                     size_t outcap)
{
    BIO *bio = BIO_new_mem_buf(key->data, (int)key->len);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char sig[128];
    size_t siglen = sizeof(sig);

    assert_non_null(k);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)data, n), 1);
    assert_int_equal(codec_b64_encode(sig, siglen, out, outcap), CD_OK);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(k);
    BIO_free(bio);
}

/* A line in the right format that continues the chain (right seq, prev the
 * hash of the last line), signed by key: a forger without the log's key. */
static size_t forge_line(const char *data, size_t len, uint64_t seq, const struct pki_buf *key,
                         char *out, size_t cap)
{
    size_t starts[64];
    size_t n = split(data, len, starts, 63);
    char prev[PKI_FP_HEX], b64[200];
    int body;

    pki_sha256_hex(data + starts[n - 1], len - starts[n - 1], prev);
    body = snprintf(out, cap,
                    "{\"seq\":%llu,\"time\":\"2026-01-01T00:00:00Z\",\"prev\":\"%s\","
                    "\"kind\":\"release\",\"session\":\"api\",\"who\":\"-\",\"measurement\":null,"
                    "\"secrets\":[\"MASTER_KEY\"],\"hash\":null,\"reason\":null",
                    (unsigned long long)seq, prev);
    sign_b64(key, out, (size_t)body, b64, sizeof(b64));
    return (size_t)body +
           (size_t)snprintf(out + body, cap - (size_t)body, ",\"sig\":\"%s\"}\n", b64);
}

static void test_appended_by_others(void **state)
{
    struct tmp t = {0}, t2 = {0};
    size_t len, len2, starts2[32], n;
    uint64_t bad;
    char *data, *other, *buf, line[2048];
    (void)state;

    tmp_new(&t);
    tmp_new(&t2);
    make_log(t.path, &key1, N_EVENTS);
    make_log(t2.path, &key2, N_EVENTS + 2);
    data = slurp(t.path, &len);
    other = slurp(t2.path, &len2);
    split(other, len2, starts2, 31);
    buf = malloc(len + len2 + sizeof(line));
    assert_non_null(buf);

    /* a line of another key's log with the next seq, appended as it is */
    memcpy(buf, data, len);
    n = starts2[N_EVENTS + 2] - starts2[N_EVENTS + 1];
    memcpy(buf + len, other + starts2[N_EVENTS + 1], n);
    assert_int_equal(verify_buf(buf, len + n, NULL, NULL, &bad), CD_ERR_CRYPTO);
    assert_int_equal(bad, N_EVENTS + 2);
    assert_non_null(strstr(diag.text, "prev"));

    /* the right format, a recomputed chain, another key's signature */
    n = forge_line(data, len, N_EVENTS + 1, &key2, line, sizeof(line));
    memcpy(buf + len, line, n);
    assert_int_equal(verify_buf(buf, len + n, NULL, NULL, &bad), CD_ERR_CRYPTO);
    assert_int_equal(bad, N_EVENTS + 2);
    assert_non_null(strstr(diag.text, "bad signature"));
    /* the forger's line is well-formed: with the log's key it verifies (the
     * test above fails for the signature, nothing else). OpenSSL's signature
     * is high-s half of the time, which the log refuses: sign until low-s. */
    cd_err rc = CD_ERR_CRYPTO;
    for (int i = 0; i < 64 && rc != CD_OK; i++) {
        n = forge_line(data, len, N_EVENTS + 1, &key1, line, sizeof(line));
        memcpy(buf + len, line, n);
        rc = verify_buf(buf, len + n, pin1, NULL, &bad);
        assert_true(rc == CD_OK || strstr(diag.text, "bad signature") != NULL);
    }
    assert_int_equal(rc, CD_OK);

    /* a whole log rewritten with another key verifies alone, not against the pin */
    assert_int_equal(verify_buf(other, len2, NULL, NULL, &bad), CD_OK);
    assert_int_equal(verify_buf(other, len2, pin1, NULL, &bad), CD_ERR_CRYPTO);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(diag.text, "not the pinned key"));
    assert_int_equal(verify_buf(data, len, pin2, NULL, &bad), CD_ERR_CRYPTO);
    assert_int_equal(bad, 1);
    free(buf);
    free(other);
    free(data);
    tmp_free(&t);
    tmp_free(&t2);
}

static void test_reopen(void **state)
{
    struct tmp t = {0};
    struct audit_log *log = NULL, *log2 = NULL;
    struct audit_head head;
    uint64_t bad, seq;
    char hash[AUDIT_HASH_HEX];
    struct stat st, st2;
    (void)state;

    tmp_new(&t);
    make_log(t.path, &key1, 3);
    cd_diag_init(&diag);
    assert_int_equal(audit_open(t.path, key1.data, key1.len, &diag, &log), CD_OK);
    audit_head(log, &seq, hash);
    assert_int_equal(seq, 3);
    /* locked while open */
    assert_int_equal(audit_open(t.path, key1.data, key1.len, &diag, &log2), CD_ERR_CONFLICT);
    assert_null(log2);
    append_events(log, 2);
    audit_close(log);
    cd_diag_init(&diag);
    assert_int_equal(audit_verify(t.path, pin1, NULL, &diag, &bad, &head), CD_OK);
    assert_int_equal(head.seq, 5);
    /* reopening against the sealed head works, and continues */
    log = NULL;
    assert_int_equal(audit_open_expect(t.path, key1.data, key1.len, &head, &diag, &log), CD_OK);
    append_events(log, 1);
    audit_close(log);
    assert_int_equal(audit_verify(t.path, pin1, &head, &diag, &bad, &head), CD_OK);
    assert_int_equal(head.seq, 6);

    /* a log others may write is refused */
    assert_int_equal(chmod(t.path, 0620), 0);
    log = NULL;
    assert_int_equal(audit_open(t.path, key1.data, key1.len, &diag, &log), CD_ERR_CONFIG);
    assert_null(log);
    assert_int_equal(chmod(t.path, 0600), 0);

    /* another key cannot continue the log */
    log = NULL;
    cd_diag_init(&diag);
    assert_int_equal(audit_open(t.path, key2.data, key2.len, &diag, &log), CD_ERR_CRYPTO);
    assert_null(log);
    assert_non_null(strstr(diag.text, "not the pinned key"));

    /* a torn last line: refused, and the file left as it is */
    FILE *f = fopen(t.path, "ab");
    assert_non_null(f);
    fputs("{\"seq\":7,\"time\":\"20", f);
    fclose(f);
    assert_int_equal(stat(t.path, &st), 0);
    cd_diag_init(&diag);
    assert_int_equal(audit_open(t.path, key1.data, key1.len, &diag, &log), CD_ERR_INVALID);
    assert_non_null(strstr(diag.text, "line 8: no newline at its end: a torn write"));
    assert_int_equal(stat(t.path, &st2), 0);
    assert_int_equal(st.st_size, st2.st_size);
    assert_int_equal(audit_verify(t.path, NULL, NULL, &diag, &bad, NULL), CD_ERR_INVALID);
    assert_int_equal(bad, 8);

    /* a missing log when the state names a head; an empty log */
    assert_int_equal(unlink(t.path), 0);
    cd_diag_init(&diag);
    assert_int_equal(audit_open_expect(t.path, key1.data, key1.len, &head, &diag, &log),
                     CD_ERR_NOT_FOUND);
    assert_int_equal(access(t.path, F_OK), -1);
    spit(t.path, "", 0);
    assert_int_equal(audit_open(t.path, key1.data, key1.len, &diag, &log), CD_ERR_INVALID);
    assert_int_equal(audit_verify(t.path, NULL, NULL, &diag, &bad, NULL), CD_ERR_INVALID);
    assert_int_equal(bad, 1);

    /* a symbolic link is refused; so is a key that is not P-256 PKCS#8 */
    assert_int_equal(unlink(t.path), 0);
    assert_int_equal(symlink("/etc/passwd", t.path), 0);
    assert_int_equal(audit_open(t.path, key1.data, key1.len, &diag, &log), CD_ERR_CONFIG);
    assert_int_equal(audit_verify(t.path, NULL, NULL, &diag, &bad, NULL), CD_ERR_CONFIG);
    assert_int_equal(unlink(t.path), 0);
    assert_int_equal(audit_open(t.path, "not a key", 9, &diag, &log), CD_ERR_INVALID);
    tmp_free(&t);
}

static void *appender(void *arg)
{
    append_events(arg, 25);
    return NULL;
}

static void test_threads(void **state)
{
    struct tmp t = {0};
    struct audit_log *log = NULL;
    struct audit_head head;
    pthread_t th[4];
    uint64_t bad;
    (void)state;

    tmp_new(&t);
    cd_diag_init(&diag);
    assert_int_equal(audit_open(t.path, key1.data, key1.len, &diag, &log), CD_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, appender, log), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    audit_close(log);
    assert_int_equal(audit_verify(t.path, pin1, NULL, &diag, &bad, &head), CD_OK);
    assert_int_equal(head.seq, 100);
    tmp_free(&t);
}

/* Hostile field contents stay one bounded line that verifies. */
static void test_sanitise(void **state)
{
    struct tmp t = {0};
    struct audit_log *log = NULL;
    static char big[20000];
    static const char *names[300];
    struct audit_head head;
    uint64_t bad;
    size_t len, starts[8];
    char *data;
    (void)state;

    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = (char)(1 + i % 255); /* every byte value but NUL: controls, quotes, 0x80+ */
    big[sizeof(big) - 1] = '\0';
    for (size_t i = 0; i < 300; i++)
        names[i] = big;
    struct audit_event ev = {.kind = AUDIT_SESSION_REFUSED,
                             .session = big,
                             .who = big,
                             .measurement = big,
                             .secrets = names,
                             .n_secrets = 300,
                             .hash = big,
                             .reason = big};
    tmp_new(&t);
    cd_diag_init(&diag);
    assert_int_equal(audit_open(t.path, key1.data, key1.len, &diag, &log), CD_OK);
    assert_int_equal(audit_append(log, &ev), CD_OK);
    ev.kind = (enum audit_kind)77;
    assert_int_equal(audit_append(log, &ev), CD_ERR_INVALID);
    audit_close(log);
    assert_int_equal(audit_verify(t.path, pin1, NULL, &diag, &bad, &head), CD_OK);
    assert_int_equal(head.seq, 1);
    data = slurp(t.path, &len);
    assert_int_equal(split(data, len, starts, 7), 2);
    assert_true(len - starts[1] <= AUDIT_LINE_MAX);
    for (size_t i = 0; i < len; i++)
        assert_true(data[i] == '\n' ? i + 1 == starts[1] || i + 1 == len
                                    : data[i] >= 0x20 && data[i] <= 0x7e);
    assert_non_null(strstr(data, "\\u0001\\u0002"));
    assert_non_null(strstr(data, "...\",\"who\""));
    assert_non_null(strstr(data, ",\"...\"],\"hash\""));
    free(data);
    tmp_free(&t);
}

/* (r, s) -> (r, n - s) verifies in ECDSA; the log takes only low s, so the
 * other spelling of a signature is found at its own line. */
static void test_malleable(void **state)
{
    struct tmp t = {0};
    size_t len, starts[32], siglen;
    uint64_t bad;
    char *data, out[16384], b64[200];
    unsigned char der[128], *q = NULL;
    const unsigned char *p = der;
    BIGNUM *order = NULL, *ns = BN_new();
    (void)state;

    tmp_new(&t);
    make_log(t.path, &key1, N_EVENTS);
    data = slurp(t.path, &len);
    split(data, len, starts, 31);
    char *sig = strstr(data + starts[2], ",\"sig\":\"") + 8;
    char *end = strchr(sig, '"');
    assert_int_equal(codec_b64_decode(sig, (size_t)(end - sig), der, sizeof(der), &siglen), CD_OK);
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
    assert_non_null(es);
    assert_true(
        BN_hex2bn(&order, "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551") > 0);
    assert_int_equal(BN_sub(ns, order, ECDSA_SIG_get0_s(es)), 1);
    assert_int_equal(ECDSA_SIG_set0(es, BN_dup(ECDSA_SIG_get0_r(es)), ns), 1);
    int m = i2d_ECDSA_SIG(es, &q);
    assert_true(m > 0);
    assert_int_equal(codec_b64_encode(q, (size_t)m, b64, sizeof(b64)), CD_OK);
    int n = snprintf(out, sizeof(out), "%.*s%s%s", (int)(sig - data), data, b64, end);
    assert_int_equal(verify_buf(out, (size_t)n, NULL, NULL, &bad), CD_ERR_CRYPTO);
    assert_int_equal(bad, 3);
    OPENSSL_free(q);
    ECDSA_SIG_free(es);
    BN_free(order);

    /* the same bytes in another base64 spelling (stray bits in the last
     * symbol). That needs padding: a DER signature whose length is a multiple
     * of 3 (69 bytes, about one in 128) has none, so take the first line from
     * line 3 on whose signature has some (the chance that none of the five
     * has is below 1e-10). */
    size_t bad_line = 0;
    for (size_t k = 2; k < N_EVENTS + 1 && bad_line == 0; k++) {
        sig = strstr(data + starts[k], ",\"sig\":\"") + 8;
        end = strchr(sig, '"');
        assert_int_equal(codec_b64_decode(sig, (size_t)(end - sig), der, sizeof(der), &siglen),
                         CD_OK);
        if (siglen % 3 != 0)
            bad_line = k + 1;
    }
    assert_true(bad_line != 0);
    char *last = end - 1;
    while (*last == '=')
        last--;
    assert_true(last < end - 1);
    size_t edits = 0;
    for (const char *c = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"; *c;
         c++) {
        unsigned char again[128];
        size_t againlen;
        char was = *last;
        if (*c == was)
            continue;
        *last = *c;
        if (codec_b64_decode(sig, (size_t)(end - sig), again, sizeof(again), &againlen) == CD_OK &&
            againlen == siglen && memcmp(again, der, siglen) == 0) {
            edits++;
            assert_int_equal(verify_buf(data, len, NULL, NULL, &bad), CD_ERR_INVALID);
            assert_int_equal(bad, bad_line);
        }
        *last = was;
    }
    assert_true(edits > 0);
    free(data);
    tmp_free(&t);
}

/* Strictness: a line that is valid JSON but not in the writer's form. */
static void test_strict(void **state)
{
    struct tmp t = {0};
    size_t len;
    uint64_t bad;
    char *data;
    static const char *const edits[][2] = {
        {"{\"seq\":1,", "{\"seq\":01,"},
        {"{\"seq\":1,", "{ \"seq\":1,"},
        {"\"hash\":", "\"hash\" :"},
        {"\"session\":\"nginx\"", "\"session\":\"ngin\\u0078\""},
        {"\"secrets\":[]", "\"secrets\":[ ]"},
        {"\"kind\":\"release\"", "\"kind\":\"other\""},
    };
    (void)state;

    tmp_new(&t);
    make_log(t.path, &key1, 1);
    data = slurp(t.path, &len);
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char *at = strstr(data, edits[i][0]);
        char out[8192];
        int n;
        if (at == NULL) /* "secrets":[] only where the event has none */
            continue;
        n = snprintf(out, sizeof(out), "%.*s%s%s", (int)(at - data), data, edits[i][1],
                     at + strlen(edits[i][0]));
        assert_int_equal(verify_buf(out, (size_t)n, NULL, NULL, &bad), CD_ERR_INVALID);
        assert_int_equal(bad, 2);
    }
    free(data);
    tmp_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_verify), cmocka_unit_test(test_edit_any_byte),
        cmocka_unit_test(test_remove_middle), cmocka_unit_test(test_swap),
        cmocka_unit_test(test_remove_last),   cmocka_unit_test(test_appended_by_others),
        cmocka_unit_test(test_reopen),        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_sanitise),      cmocka_unit_test(test_strict),
        cmocka_unit_test(test_malleable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
