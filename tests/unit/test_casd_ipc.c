/* test_casd_ipc.c: the parent <-> worker messages: each type round-trips,
 * and every malformation is refused by the decoder (the rule that makes the
 * worker exit on a bad reply and the parent restart it on a bad request). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "casd/ipc.h"

#define F(s) ((struct casd_ipc_field){(s), sizeof(s) - 1})
static const char HASH[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void encode(const struct casd_ipc_msg *m, struct buf *b)
{
    buf_init(b, CASD_IPC_MAX + 1);
    assert_int_equal(casd_ipc_encode(m, b), CD_OK);
}

static void test_round_trip(void **state)
{
    struct casd_ipc_msg m = {.type = CASD_IPC_SESSION_PUT, .a = F("name: x\n"), .b = F(HASH)};
    struct casd_ipc_msg out;
    struct buf b;

    (void)state;
    m.sigs[0].public_key = F("PEM");
    m.sigs[0].signature = F("\x30\x01\x00");
    m.nsigs = 1;
    encode(&m, &b);
    assert_int_equal(casd_ipc_decode(b.p, b.len, &out), CD_OK);
    assert_int_equal(out.type, CASD_IPC_SESSION_PUT);
    assert_int_equal(out.a.len, 8);
    assert_memory_equal(out.a.p, "name: x\n", 8);
    assert_int_equal(out.b.len, 64);
    assert_int_equal(out.nsigs, 1);
    assert_int_equal(out.sigs[0].signature.len, 3);
    buf_release(&b);

    struct casd_ipc_msg r = {.type = CASD_IPC_REPLY, .status = 404, .a = F("{}")};
    encode(&r, &b);
    assert_int_equal(casd_ipc_decode(b.p, b.len, &out), CD_OK);
    assert_int_equal(out.status, 404);
    buf_release(&b);

    struct casd_ipc_msg v = {.type = CASD_IPC_VALUE_GET, .a = F("nginx"), .b = F("SERVER_CA")};
    encode(&v, &b);
    assert_int_equal(casd_ipc_decode(b.p, b.len, &out), CD_OK);
    assert_int_equal(out.b.len, 9);
    buf_release(&b);

    struct casd_ipc_msg g = {.type = CASD_IPC_SESSION_GET, .a = F("demo")}; /* no client */
    encode(&g, &b);
    assert_int_equal(casd_ipc_decode(b.p, b.len, &out), CD_OK);
    assert_int_equal(out.b.len, 0);
    buf_release(&b);
}

/* Every byte of a valid message changed, every truncation, one byte more: refused or valid,
 * never a crash, and the length and trailing-byte rules always hold. */
static void test_malformed(void **state)
{
    struct casd_ipc_msg v = {.type = CASD_IPC_VALUE_GET, .a = F("nginx"), .b = F("SERVER_CA")};
    struct casd_ipc_msg out;
    struct buf b;
    unsigned char copy[64] = {0};

    (void)state;
    encode(&v, &b);
    assert_true(b.len < sizeof(copy));
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(casd_ipc_decode(b.p, n, &out), CD_ERR_INVALID);
    memcpy(copy, b.p, b.len);
    copy[b.len] = 0;
    assert_int_equal(casd_ipc_decode(copy, b.len + 1, &out), CD_ERR_INVALID); /* trailing */
    copy[4]++; /* the header counts the extra byte: still one byte after the last field */
    assert_int_equal(casd_ipc_decode(copy, b.len + 1, &out), CD_ERR_INVALID);
    copy[4]--;
    copy[4]++;
    assert_int_equal(casd_ipc_decode(copy, b.len, &out), CD_ERR_INVALID); /* length */
    memcpy(copy, b.p, b.len);
    copy[0] = 99;
    assert_int_equal(casd_ipc_decode(copy, b.len, &out), CD_ERR_INVALID); /* type */
    memcpy(copy, b.p, b.len);
    copy[12] = '/'; /* "nginx" -> "/ginx": not a session name */
    assert_int_equal(casd_ipc_decode(copy, b.len, &out), CD_ERR_INVALID);
    memcpy(copy, b.p, b.len);
    copy[8] = 6; /* field length past its bytes */
    assert_int_equal(casd_ipc_decode(copy, b.len, &out), CD_ERR_INVALID);
    buf_release(&b);

    /* A reply with an impossible status, a request with a short client hash. */
    struct casd_ipc_msg r = {.type = CASD_IPC_REPLY, .status = 600, .a = F("{}")};
    buf_init(&b, CASD_IPC_MAX + 1);
    assert_int_equal(casd_ipc_encode(&r, &b), CD_ERR_INVALID);
    struct casd_ipc_msg g = {.type = CASD_IPC_SESSION_GET, .a = F("demo"), .b = F("abc")};
    assert_int_equal(casd_ipc_encode(&g, &b), CD_ERR_INVALID);
    struct casd_ipc_msg up = {.type = CASD_IPC_SESSION_GET, .a = F("demo"), .b = F(HASH)};
    assert_int_equal(casd_ipc_encode(&up, &b), CD_OK);
    unsigned char *h = (unsigned char *)b.p + 8 + 4 + 4 + 4;
    h[0] = 'A'; /* upper-case hex: not a key hash */
    assert_int_equal(casd_ipc_decode(b.p, b.len, &out), CD_ERR_INVALID);
    buf_release(&b);

    /* More signatures than the bound. */
    unsigned char many[8 + 4 + 1 + 4 + 4] = {
        4, 0, 0, 0, sizeof(many) - 8,      0, 0, 0, 1, 0, 0, 0, 'x',
        0, 0, 0, 0, CASD_IPC_MAX_SIGS + 1, 0, 0, 0};
    assert_int_equal(casd_ipc_decode(many, sizeof(many), &out), CD_ERR_INVALID);
    many[17] = 0;
    assert_int_equal(casd_ipc_decode(many, sizeof(many), &out), CD_OK);
}

static void test_transport(void **state)
{
    int sv[2];
    static char space[CASD_IPC_MAX + 1];
    struct casd_ipc_msg m = {.type = CASD_IPC_REPLY, .status = 200, .a = F("{\"value\": 1}")};
    struct casd_ipc_msg out;

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    assert_int_equal(casd_ipc_tune(sv[0]), CD_OK);
    assert_int_equal(casd_ipc_tune(sv[1]), CD_OK);
    assert_int_equal(casd_ipc_send(sv[0], &m), CD_OK);
    assert_int_equal(casd_ipc_recv(sv[1], 1000, space, sizeof(space), &out), CD_OK);
    assert_int_equal(out.status, 200);
    assert_int_equal(casd_ipc_recv(sv[1], 10, space, sizeof(space), &out), CD_ERR_TIMEOUT);
    /* A datagram of garbage is malformed; a datagram over the bound is refused. */
    assert_int_equal(write(sv[0], "garbage!!", 9), 9);
    assert_int_equal(casd_ipc_recv(sv[1], 1000, space, sizeof(space), &out), CD_ERR_INVALID);
    static char big[CASD_IPC_MAX + 100];
    memset(big, 0, sizeof(big));
    assert_int_equal(send(sv[0], big, sizeof(big), 0), (ssize_t)sizeof(big));
    assert_int_equal(casd_ipc_recv(sv[1], 1000, space, sizeof(space), &out), CD_ERR_INVALID);
    /* The largest message the types allow fits one datagram. */
    static char text[CASD_IPC_TEXT_MAX];
    memset(text, 'a', sizeof(text));
    struct casd_ipc_msg put = {.type = CASD_IPC_SESSION_PUT, .a = {text, sizeof(text)}};
    assert_int_equal(casd_ipc_send(sv[0], &put), CD_OK);
    assert_int_equal(casd_ipc_recv(sv[1], 1000, space, sizeof(space), &out), CD_OK);
    assert_int_equal(out.a.len, CASD_IPC_TEXT_MAX);
    close(sv[0]);
    assert_int_equal(casd_ipc_recv(sv[1], 1000, space, sizeof(space), &out), CD_ERR_IO);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_transport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
