/* test_release_verify.c: release_serve_conn's refusals and its deadline, on
 * a socketpair whose peer is this test process (so the test binary plays the
 * launcher when its own hash is allowed): messages are queued before the call. */
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

#include <pthread.h>

#include "common/codec.h"
#include "evidence_double.h"
#include "release_fixture.h"
#include "release/measure.h"
#include "release/proto.h"
#include "release/verify.h"

#define H1 RELEASE_FIXTURE_EXE

struct seen {
    int n;
    bool allowed;
    char reason[RELEASE_REASON_MAX + 1];
    char session[RELEASE_NAME_MAX + 1];
};

static void note(void *arg, const struct release_outcome *o)
{
    struct seen *s = arg;
    s->n++;
    s->allowed = o->allowed;
    snprintf(s->reason, sizeof(s->reason), "%s", o->reason);
    snprintf(s->session, sizeof(s->session), "%s", o->session);
}

static char self[1][RELEASE_HASH_HEX];
static struct policy_set *set;
static struct seen seen;
static struct release_ctx ctx;
static int sv[2];

static int setup(void **state)
{
    (void)state;
    release_fixture_open(self[0], &set);
    memset(&seen, 0, sizeof(seen));
    ctx = (struct release_ctx){.set = set,
                               .launchers = (const char(*)[RELEASE_HASH_HEX])self,
                               .nlaunchers = 1,
                               .timeout_ms = 300,
                               .record = note,
                               .record_arg = &seen};
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    policy_set_free(set);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static void queue_hello(const char *session)
{
    struct buf b;
    buf_init(&b, 4096);
    assert_int_equal(release_enc_hello(&b, session), CD_OK);
    assert_int_equal(release_send(sv[1], &b, release_now_ms() + 1000), CD_OK);
    buf_release(&b);
}

/* The next message the CAS sent: its type, and a REFUSED reason into reason. */
static enum release_type answer(char *reason, size_t cap)
{
    static uint8_t in[RELEASE_MSG_MAX];
    struct release_msg m;
    assert_int_equal(release_recv(sv[1], in, sizeof(in), release_now_ms() + 1000, &m), CD_OK);
    if (m.type == RELEASE_REFUSED)
        assert_true(release_view_copy(m.reason, reason, cap));
    return m.type;
}

static void test_deadline(void **state)
{
    (void)state;
    int64_t t0 = release_now_ms();
    assert_int_equal(release_serve_conn(sv[0], &ctx), CD_ERR_TIMEOUT);
    int64_t took = release_now_ms() - t0;
    assert_true(took >= 300 && took < 2000);
    assert_int_equal(seen.n, 1);
    assert_false(seen.allowed);
    assert_non_null(strstr(seen.reason, "no HELLO"));
}

static void test_garbage(void **state)
{
    (void)state;
    assert_int_equal(send(sv[1], "\0\0\0\1\0\0\0\1x", 9, 0), 9);
    assert_int_equal(release_serve_conn(sv[0], &ctx), CD_ERR_INVALID);
    assert_int_equal(seen.n, 1);
    assert_false(seen.allowed);
}

static void test_not_launcher(void **state)
{
    char reason[RELEASE_REASON_MAX + 1];
    (void)state;
    ctx.nlaunchers = 0;
    queue_hello("svc");
    assert_int_equal(release_serve_conn(sv[0], &ctx), CD_ERR_AUTH);
    assert_int_equal(answer(reason, sizeof(reason)), RELEASE_REFUSED);
    assert_non_null(strstr(reason, "caller is not the confidoc-cas launcher"));
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.session, "svc");
    assert_string_equal(seen.reason, reason);
}

static void test_unknown_session(void **state)
{
    char reason[RELEASE_REASON_MAX + 1];
    (void)state;
    queue_hello("nosuch");
    assert_int_equal(release_serve_conn(sv[0], &ctx), CD_ERR_AUTH);
    assert_int_equal(answer(reason, sizeof(reason)), RELEASE_REFUSED);
    assert_string_equal(reason, "unknown session or not releasable");
}

/* SPEC, then a MEASURE with evidence and no verifier configured: refused. */
static void test_evidence_without_verifier(void **state)
{
    char reason[RELEASE_REASON_MAX + 1];
    struct release_measurement me = {
        .exe = H1, .verifier = "snp", .evidence = "r", .evidence_len = 1};
    struct buf b;
    (void)state;
    me.uid = (uint32_t)getuid();
    queue_hello("svc");
    buf_init(&b, 4096);
    assert_int_equal(release_enc_measure(&b, &me), CD_OK);
    assert_int_equal(release_send(sv[1], &b, release_now_ms() + 1000), CD_OK);
    buf_release(&b);
    assert_int_equal(release_serve_conn(sv[0], &ctx), CD_ERR_AUTH);
    assert_int_equal(answer(reason, sizeof(reason)), RELEASE_SPEC);
    assert_int_equal(answer(reason, sizeof(reason)), RELEASE_REFUSED);
    assert_string_equal(reason, "evidence verifier snp is not available");
}

/* A MEASURE for another executable: the reason names the hash, nothing else. */
static void test_exe_mismatch(void **state)
{
    char reason[RELEASE_REASON_MAX + 1];
    struct release_measurement me = {.exe = H1};
    struct buf b;
    (void)state;
    me.exe[0] = 'f';
    me.uid = (uint32_t)getuid();
    queue_hello("svc");
    buf_init(&b, 4096);
    assert_int_equal(release_enc_measure(&b, &me), CD_OK);
    assert_int_equal(release_send(sv[1], &b, release_now_ms() + 1000), CD_OK);
    buf_release(&b);
    assert_int_equal(release_serve_conn(sv[0], &ctx), CD_ERR_AUTH);
    assert_int_equal(answer(reason, sizeof(reason)), RELEASE_SPEC);
    assert_int_equal(answer(reason, sizeof(reason)), RELEASE_REFUSED);
    assert_non_null(strstr(reason, "exe hash mismatch: f123"));
}

/* ---- evidence bound to this connection (the test double as verifier) ---- */

static cd_err double_verifier(void *arg, const char *verifier, const void *blob, size_t len,
                              const unsigned char report_data[EVIDENCE_REPORT_DATA_LEN])
{
    struct evidence_claims claims;
    (void)arg;
    if (strcmp(verifier, evidence_double.name) != 0)
        return CD_ERR_NOT_FOUND;
    return evidence_check(&evidence_double, blob, len, report_data, &claims);
}

static cd_err served;

static void *serve_thread(void *arg)
{
    (void)arg;
    served = release_serve_conn(sv[0], &ctx);
    return NULL;
}

enum twist { GOOD, OTHER_NONCE, OTHER_EXE, DEBUG_TEE };

/* Plays the launcher while release_serve_conn runs: HELLO, reads SPEC's
 * nonce, sends MEASURE with the double's evidence over the binding, twisted
 * as asked. Returns the CAS's last answer (END or REFUSED, reason). */
static enum release_type launch_with_evidence(enum twist t, char *reason, size_t cap)
{
    static uint8_t in[RELEASE_MSG_MAX];
    unsigned char nonce[RELEASE_NONCE_LEN], exe[EVIDENCE_HASH_LEN], rd[EVIDENCE_REPORT_DATA_LEN];
    unsigned char ev[EVIDENCE_DOUBLE_LEN], meas[32] = {1};
    struct release_measurement me = {.exe = H1, .verifier = "test"};
    struct release_msg m;
    enum release_type last;
    pthread_t th;
    struct buf b;

    ctx.evidence = double_verifier;
    me.uid = (uint32_t)getuid();
    assert_int_equal(pthread_create(&th, NULL, serve_thread, NULL), 0);
    queue_hello("svc");
    assert_int_equal(release_recv(sv[1], in, sizeof(in), release_now_ms() + 2000, &m), CD_OK);
    assert_int_equal(m.type, RELEASE_SPEC);
    memcpy(nonce, m.nonce.p, sizeof(nonce));
    if (t == OTHER_NONCE)
        nonce[0] ^= 1;
    assert_int_equal(codec_hex_decode(H1, 64, exe, sizeof(exe)), CD_OK);
    if (t == OTHER_EXE)
        exe[31] ^= 1;
    assert_int_equal(evidence_binding(nonce, exe, NULL, 0, rd), CD_OK);
    evidence_double_make(meas, rd, t == DEBUG_TEE ? EVIDENCE_FLAG_DEBUG : 0, ev);
    me.evidence = ev;
    me.evidence_len = sizeof(ev);
    buf_init(&b, 4096);
    assert_int_equal(release_enc_measure(&b, &me), CD_OK);
    assert_int_equal(release_send(sv[1], &b, release_now_ms() + 1000), CD_OK);
    buf_release(&b);
    last = answer(reason, cap);
    assert_int_equal(pthread_join(th, NULL), 0);
    return last;
}

/* Evidence over this connection's nonce and the reported executable passes
 * (the session has no files: END with none); over another nonce (a replay),
 * for another executable, or from a debug TEE it is refused. */
static void test_evidence_binding(void **state)
{
    char reason[RELEASE_REASON_MAX + 1] = "";
    (void)state;
    assert_int_equal(launch_with_evidence(GOOD, reason, sizeof(reason)), RELEASE_END);
    assert_int_equal(served, CD_OK);
    assert_true(seen.allowed);
}

static void test_evidence_refused(void **state)
{
    static const enum twist twists[] = {OTHER_NONCE, OTHER_EXE, DEBUG_TEE};
    char reason[RELEASE_REASON_MAX + 1];
    (void)state;
    for (size_t i = 0; i < sizeof(twists) / sizeof(twists[0]); i++) {
        reason[0] = '\0';
        assert_int_equal(launch_with_evidence(twists[i], reason, sizeof(reason)), RELEASE_REFUSED);
        assert_int_equal(served, CD_ERR_AUTH);
        assert_string_equal(reason, "evidence (test) does not verify");
        assert_false(seen.allowed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_launcher, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evidence_without_verifier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evidence_binding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evidence_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exe_mismatch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
