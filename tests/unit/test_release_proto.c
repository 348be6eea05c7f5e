/* test_release_proto.c: the launcher protocol's messages (release/proto.h):
 * each type round trip, and truncated, oversized and garbage messages
 * refused; one message over a socket; file measurement (release/measure.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "release/measure.h"
#include "release/proto.h"

#define NONCE_BYTES "0123456789abcdef0123456789abcdef"
#define NONCE "\0\0\0\x20" NONCE_BYTES /* a SPEC nonce field: 32 bytes */
static const unsigned char nonce[RELEASE_NONCE_LEN] = "0123456789abcdef0123456789abcde";
#define H1 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static bool view_is(struct release_view v, const char *s)
{
    return v.len == strlen(s) && memcmp(v.p, s, v.len) == 0;
}

/* Every strict prefix of b is refused, and so is b with one byte more. */
static void check_truncations(const struct buf *b)
{
    struct release_msg m;
    uint8_t *longer = malloc(b->len + 1);
    assert_non_null(longer);
    for (size_t n = 0; n < b->len; n++)
        assert_int_equal(release_decode(b->p, n, &m), CD_ERR_INVALID);
    memcpy(longer, b->p, b->len);
    longer[b->len] = 0;
    assert_int_equal(release_decode(longer, b->len + 1, &m), CD_ERR_INVALID);
    free(longer);
}

static void test_roundtrip(void **state)
{
    struct buf b;
    struct release_msg m;
    const char *paths[] = {"/etc/a.conf", "/etc/b/c"};
    (void)state;

    buf_init(&b, RELEASE_BUF_MAX);
    assert_int_equal(release_enc_hello(&b, "nginx"), CD_OK);
    assert_int_equal(release_decode(b.p, b.len, &m), CD_OK);
    assert_int_equal(m.type, RELEASE_HELLO);
    assert_true(view_is(m.session, "nginx"));
    check_truncations(&b);
    buf_release(&b);

    buf_init(&b, RELEASE_BUF_MAX);
    assert_int_equal(release_enc_spec(&b, 65534, "/run/s/", paths, 2, nonce), CD_OK);
    assert_int_equal(release_decode(b.p, b.len, &m), CD_OK);
    assert_int_equal(m.type, RELEASE_SPEC);
    assert_int_equal(m.uid, 65534);
    assert_true(view_is(m.mount, "/run/s/"));
    assert_int_equal(m.nconfig, 2);
    assert_true(view_is(m.config[1], "/etc/b/c"));
    assert_int_equal(m.nonce.len, RELEASE_NONCE_LEN);
    assert_memory_equal(m.nonce.p, nonce, RELEASE_NONCE_LEN);
    check_truncations(&b);
    buf_release(&b);

    buf_init(&b, RELEASE_BUF_MAX);
    assert_int_equal(release_enc_refused(&b, "exe hash mismatch"), CD_OK);
    assert_int_equal(release_decode(b.p, b.len, &m), CD_OK);
    assert_int_equal(m.type, RELEASE_REFUSED);
    assert_true(view_is(m.reason, "exe hash mismatch"));
    check_truncations(&b);
    buf_release(&b);

    struct release_measurement me = {.exe = H1, .uid = 7, .nconfig = 2};
    memcpy(me.config[0], H2, sizeof(H2));
    memcpy(me.config[1], H1, sizeof(H1));
    me.verifier = "test-double";
    me.evidence = "\x01\x02\x00\x03";
    me.evidence_len = 4;
    buf_init(&b, RELEASE_BUF_MAX);
    assert_int_equal(release_enc_measure(&b, &me), CD_OK);
    assert_int_equal(release_decode(b.p, b.len, &m), CD_OK);
    assert_int_equal(m.type, RELEASE_MEASURE);
    assert_true(view_is(m.exe, H1));
    assert_int_equal(m.uid, 7);
    assert_int_equal(m.nconfig, 2);
    assert_true(view_is(m.config[0], H2));
    assert_true(view_is(m.verifier, "test-double"));
    assert_int_equal(m.evidence.len, 4);
    assert_memory_equal(m.evidence.p, "\x01\x02\x00\x03", 4);
    check_truncations(&b);
    buf_release(&b);

    buf_init(&b, RELEASE_BUF_MAX);
    assert_int_equal(release_enc_file(&b, "tls/server.key", false, "K\0Y", 3), CD_OK);
    assert_int_equal(release_decode(b.p, b.len, &m), CD_OK);
    assert_int_equal(m.type, RELEASE_FILE);
    assert_true(view_is(m.rel, "tls/server.key"));
    assert_false(m.public_file);
    assert_int_equal(m.content.len, 3);
    check_truncations(&b);
    buf_release(&b);

    buf_init(&b, RELEASE_BUF_MAX);
    assert_int_equal(release_enc_file(&b, "public/ca.crt", true, "", 0), CD_OK);
    assert_int_equal(release_decode(b.p, b.len, &m), CD_OK);
    assert_true(m.public_file);
    assert_int_equal(m.content.len, 0);
    buf_release(&b);

    buf_init(&b, RELEASE_BUF_MAX);
    assert_int_equal(release_enc_end(&b, 3), CD_OK);
    assert_int_equal(release_decode(b.p, b.len, &m), CD_OK);
    assert_int_equal(m.type, RELEASE_END);
    assert_int_equal(m.nfiles, 3);
    check_truncations(&b);
    buf_release(&b);
}

/* The largest file fits; one byte more is refused by the encoder, and by the
 * decoder when a peer sends it anyway. */
static void test_oversized(void **state)
{
    struct buf b;
    struct release_msg m;
    char *big = calloc(1, RELEASE_CONTENT_MAX + 1);
    char rel[RELEASE_PATH_MAX + 2];
    (void)state;

    assert_non_null(big);
    memset(rel, 'a', sizeof(rel) - 1);
    rel[RELEASE_PATH_MAX] = '\0';
    buf_init(&b, RELEASE_BUF_MAX);
    assert_int_equal(release_enc_file(&b, rel, false, big, RELEASE_CONTENT_MAX), CD_OK);
    assert_int_equal(b.len, RELEASE_MSG_MAX);
    assert_int_equal(release_decode(b.p, b.len, &m), CD_OK);
    buf_release(&b);

    buf_init(&b, RELEASE_BUF_MAX + 16);
    assert_int_equal(release_enc_file(&b, "f", false, big, RELEASE_CONTENT_MAX + 1),
                     CD_ERR_INVALID);
    rel[RELEASE_PATH_MAX] = 'a';
    rel[RELEASE_PATH_MAX + 1] = '\0';
    assert_int_equal(release_enc_file(&b, rel, false, "x", 1), CD_ERR_INVALID);
    /* hand-made: a content length of RELEASE_CONTENT_MAX + 1 */
    assert_int_equal(release_enc_file(&b, "f", false, big, RELEASE_CONTENT_MAX), CD_OK);
    uint8_t *p = (uint8_t *)b.p;
    size_t clen_at = RELEASE_HEADER + 4 + 1 + 1;
    uint32_t clen = (uint32_t)RELEASE_CONTENT_MAX + 1;
    p[clen_at] = (uint8_t)(clen >> 24);
    p[clen_at + 1] = (uint8_t)(clen >> 16);
    p[clen_at + 2] = (uint8_t)(clen >> 8);
    p[clen_at + 3] = (uint8_t)clen;
    assert_int_equal(buf_add(&b, "x", 1), CD_OK);
    uint32_t plen = (uint32_t)(b.len - RELEASE_HEADER);
    p = (uint8_t *)b.p;
    p[4] = (uint8_t)(plen >> 24);
    p[5] = (uint8_t)(plen >> 16);
    p[6] = (uint8_t)(plen >> 8);
    p[7] = (uint8_t)plen;
    assert_int_equal(release_decode(b.p, b.len, &m), CD_ERR_INVALID);
    buf_release(&b);
    free(big);

    /* names, reasons, counts */
    buf_init(&b, RELEASE_BUF_MAX);
    char name[RELEASE_NAME_MAX + 2];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(release_enc_hello(&b, name), CD_ERR_INVALID);
    name[RELEASE_NAME_MAX] = '\0';
    assert_int_equal(release_enc_hello(&b, name), CD_OK);
    char reason[RELEASE_REASON_MAX + 2];
    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    assert_int_equal(release_enc_refused(&b, reason), CD_ERR_INVALID);
    const char *paths[POLICY_MAX_MEASURED + 1];
    for (size_t i = 0; i <= POLICY_MAX_MEASURED; i++)
        paths[i] = "/etc/x";
    assert_int_equal(release_enc_spec(&b, 0, "/m", paths, POLICY_MAX_MEASURED + 1, nonce),
                     CD_ERR_INVALID);
    assert_int_equal(release_enc_spec(&b, 0, "/m", paths, POLICY_MAX_MEASURED, nonce), CD_OK);
    assert_int_equal(release_enc_end(&b, RELEASE_MAX_FILES + 1), CD_ERR_INVALID);
    buf_release(&b);
}

/* A message as bytes: type, then the payload given. */
static size_t raw(uint8_t *out, uint32_t type, const void *payload, size_t n)
{
    out[0] = (uint8_t)(type >> 24);
    out[1] = (uint8_t)(type >> 16);
    out[2] = (uint8_t)(type >> 8);
    out[3] = (uint8_t)type;
    out[4] = (uint8_t)(n >> 24);
    out[5] = (uint8_t)(n >> 16);
    out[6] = (uint8_t)(n >> 8);
    out[7] = (uint8_t)n;
    memcpy(out + 8, payload, n);
    return n + 8;
}

static void test_garbage(void **state)
{
    static const struct {
        uint32_t type;
        const char *payload;
        size_t n;
    } bad[] = {
        {0, "", 0},
        {7, "", 0},
        {RELEASE_HELLO, "\0\0\0\0", 4},   /* empty session */
        {RELEASE_HELLO, "\0\0\0\2Ab", 6}, /* upper case */
        {RELEASE_HELLO, "\0\0\0\2a/", 6}, /* a slash */
        {RELEASE_HELLO, "\0\0\0\5a", 5},  /* length past the end */
        {RELEASE_HELLO,
         "\xff\xff\xff\xff"
         "a",
         5},                                                         /* huge length */
        {RELEASE_REFUSED, "\0\0\0\2a\n", 6},                         /* control character */
        {RELEASE_SPEC, "\0\0\0\0\0\0\0\2/a\0\0\0\0" NONCE, 14 + 36}, /* valid: control */
        {RELEASE_SPEC, "\0\0\0\0\0\0\0\6/a/../\0\0\0\0" NONCE, 18 + 36},
        {RELEASE_SPEC, "\0\0\0\0\0\0\0\2a/\0\0\0\0" NONCE, 14 + 36},
        {RELEASE_SPEC, "\0\0\0\0\0\0\0\2/a\0\0\0\x11" NONCE, 14 + 36}, /* 17 configs */
        {RELEASE_SPEC, "\0\0\0\0\0\0\0\2/a\0\0\0\1\0\0\0\2b/" NONCE, 20 + 36},
        {RELEASE_SPEC, "\0\0\0\0\0\0\0\2/a\0\0\0\0", 14},                            /* no nonce */
        {RELEASE_SPEC, "\0\0\0\0\0\0\0\2/a\0\0\0\0\0\0\0\x1f" NONCE_BYTES, 14 + 35}, /* 31 */
        {RELEASE_FILE, "\0\0\0\5../ab\0\0\0\0\0", 14},
        {RELEASE_FILE, "\0\0\0\2/a\0\0\0\0\0", 11},
        {RELEASE_FILE, "\0\0\0\3a//\0\0\0\0\0", 12},
        {RELEASE_FILE, "\0\0\0\1a\2\0\0\0\0", 10}, /* flag 2 */
        {RELEASE_END, "\0\0\0", 3},
        {RELEASE_END, "\0\0\0\0\0", 5}, /* trailing byte */
        {RELEASE_END, "\0\0\0\xff", 4}, /* more than RELEASE_MAX_FILES */
    };
    uint8_t msg[256];
    struct release_msg m;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = raw(msg, bad[i].type, bad[i].payload, bad[i].n);
        cd_err err = release_decode(msg, n, &m);
        if (i == 8) { /* the control case: a valid SPEC */
            assert_int_equal(err, CD_OK);
            continue;
        }
        if (err != CD_ERR_INVALID)
            fprintf(stderr, "garbage case %zu accepted\n", i);
        assert_int_equal(err, CD_ERR_INVALID);
    }
    /* the header's length must be the record's */
    size_t n = raw(msg, RELEASE_END, "\0\0\0\1", 4);
    msg[7] = 5;
    assert_int_equal(release_decode(msg, n, &m), CD_ERR_INVALID);
    /* MEASURE: a bad hash, evidence without a verifier */
    struct release_measurement me = {.exe = H1};
    struct buf b;
    buf_init(&b, 4096);
    assert_int_equal(release_enc_measure(&b, &me), CD_OK);
    assert_int_equal(release_decode(b.p, b.len, &m), CD_OK);
    b.p[RELEASE_HEADER + 4] = 'A'; /* upper-case hex */
    assert_int_equal(release_decode(b.p, b.len, &m), CD_ERR_INVALID);
    buf_release(&b);
    me.evidence = "e";
    me.evidence_len = 1;
    me.verifier = NULL;
    buf_init(&b, 4096);
    assert_int_equal(release_enc_measure(&b, &me), CD_OK); /* evidence without a name is dropped */
    assert_int_equal(release_decode(b.p, b.len, &m), CD_OK);
    assert_int_equal(m.evidence.len, 0);
    buf_release(&b);
    me.verifier = "v";
    me.evidence_len = 0;
    buf_init(&b, 4096);
    assert_int_equal(release_enc_measure(&b, &me), CD_ERR_INVALID);
    buf_release(&b);
    memcpy(me.exe, "00", 3);
    buf_init(&b, 4096);
    assert_int_equal(release_enc_measure(&b, &me), CD_ERR_INVALID);
    buf_release(&b);
}

static void test_socket(void **state)
{
    int sv[2];
    struct buf b;
    struct release_msg m;
    static uint8_t in[RELEASE_MSG_MAX];
    (void)state;

    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    release_sndbuf(sv[0]);
    buf_init(&b, 4096);
    assert_int_equal(release_enc_hello(&b, "svc"), CD_OK);
    assert_int_equal(release_send(sv[0], &b, release_now_ms() + 1000), CD_OK);
    assert_int_equal(release_recv(sv[1], in, sizeof(in), release_now_ms() + 1000, &m), CD_OK);
    assert_true(view_is(m.session, "svc"));
    /* a record longer than the receiver's buffer is malformed, not truncated silently */
    assert_int_equal(release_send(sv[0], &b, release_now_ms() + 1000), CD_OK);
    assert_int_equal(release_recv(sv[1], in, 8, release_now_ms() + 1000, &m), CD_ERR_INVALID);
    /* garbage */
    assert_int_equal(send(sv[0], "garbage!!", 9, 0), 9);
    assert_int_equal(release_recv(sv[1], in, sizeof(in), release_now_ms() + 1000, &m),
                     CD_ERR_INVALID);
    buf_release(&b);
    /* nothing comes: a timeout */
    int64_t t0 = release_now_ms();
    assert_int_equal(release_recv(sv[1], in, sizeof(in), t0 + 100, &m), CD_ERR_TIMEOUT);
    assert_true(release_now_ms() - t0 >= 100);
    /* the largest FILE passes as one record (SO_SNDBUFFORCE needs root) */
    if (geteuid() == 0) {
        char *big = calloc(1, RELEASE_CONTENT_MAX);
        char rel[RELEASE_PATH_MAX + 1];
        assert_non_null(big);
        memset(rel, 'a', RELEASE_PATH_MAX);
        rel[RELEASE_PATH_MAX] = '\0';
        big[RELEASE_CONTENT_MAX - 1] = 'z';
        buf_init(&b, RELEASE_BUF_MAX);
        assert_int_equal(release_enc_file(&b, rel, false, big, RELEASE_CONTENT_MAX), CD_OK);
        assert_int_equal(release_send(sv[0], &b, release_now_ms() + 1000), CD_OK);
        assert_int_equal(release_recv(sv[1], in, sizeof(in), release_now_ms() + 1000, &m), CD_OK);
        assert_int_equal(m.content.len, RELEASE_CONTENT_MAX);
        assert_int_equal(m.content.p[RELEASE_CONTENT_MAX - 1], 'z');
        buf_release(&b);
        free(big);
    }
    /* the peer closed */
    close(sv[0]);
    assert_int_equal(release_recv(sv[1], in, sizeof(in), release_now_ms() + 1000, &m), CD_ERR_IO);
    close(sv[1]);
}

static void test_measure(void **state)
{
    char dir[] = "/tmp/release-measure-XXXXXX", path[128], link[128];
    char out[RELEASE_HASH_HEX] = "untouched";
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/f", dir);
    snprintf(link, sizeof(link), "%s/l", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("abc", f);
    fclose(f);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(release_sha256_file(path, out), CD_OK);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(release_sha256_file(link, out), CD_ERR_CONFIG);
    assert_int_equal(release_sha256_file(dir, out), CD_ERR_CONFIG);
    unlink(link);
    assert_int_equal(release_sha256_file(link, out), CD_ERR_NOT_FOUND);
    /* from an fd whose offset moved: still the whole file */
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    char c;
    assert_int_equal(read(fd, &c, 1), 1);
    memset(out, 0, sizeof(out));
    assert_int_equal(release_sha256_fd(fd, out), CD_OK);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    close(fd);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip), cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_garbage),   cmocka_unit_test(test_socket),
        cmocka_unit_test(test_measure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
