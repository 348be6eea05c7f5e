/* test_casd_node.c: the CAS's side of node agents (casd/node.h), called as the
 * parent calls it: admission by key hash, the signed report checked by the
 * parent, the pending HELLO used once and only for the caller it was made
 * for, and the audit record naming the node. The test binary's own hash is
 * the launcher's, as in test_release_verify. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cas/pki.h"
#include "cas/seal.h"
#include "casd/ipc.h"
#include "casd/node.h"
#include "casd/rest.h"
#include "casd/tls.h"
#include "common/codec.h"
#include "release/measure.h"
#include "release/proto.h"
#include "release/verify.h"
#include "release_fixture.h"

#define H1 RELEASE_FIXTURE_EXE

struct seen {
    int n;
    bool allowed;
    char reason[RELEASE_REASON_MAX + 1];
    char who[RELEASE_WHO_MAX];
};

static void note(void *arg, const struct release_outcome *o)
{
    struct seen *s = arg;
    s->n++;
    s->allowed = o->allowed;
    snprintf(s->reason, sizeof(s->reason), "%s", o->reason != NULL ? o->reason : "");
    snprintf(s->who, sizeof(s->who), "%s", o->who);
}

struct key {
    struct pki_buf pem;
    char hash[PKI_FP_HEX];
};

static char self[1][RELEASE_HASH_HEX];
static struct policy_set *set;
static struct seen seen;
static struct release_ctx ctx;
static struct casd_nodes *nodes;
static struct key k1, k2, k3; /* k1, k2 admitted; k3 not */
static struct key kca;        /* the CAS identity CA key: signs the answers */

static void keygen(struct key *k)
{
    assert_int_equal(pki_key_generate(&k->pem), CD_OK);
    assert_int_equal(pki_key_fingerprint(k->pem.data, k->pem.len, k->hash), CD_OK);
}

static int setup(void **state)
{
    (void)state;
    release_fixture_open(self[0], &set);
    memset(&seen, 0, sizeof(seen));
    ctx = (struct release_ctx){.set = set,
                               .launchers = (const char(*)[RELEASE_HASH_HEX])self,
                               .nlaunchers = 1,
                               .record = note,
                               .record_arg = &seen};
    keygen(&k1);
    keygen(&k2);
    keygen(&k3);
    keygen(&kca);
    const char *admitted[] = {k1.hash, k2.hash};
    assert_int_equal(casd_nodes_new(admitted, 2, NULL, 0, &nodes), CD_ERR_INVALID);
    assert_int_equal(casd_nodes_new(admitted, 2, kca.pem.data, kca.pem.len, &nodes), CD_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    casd_nodes_free(nodes);
    policy_set_free(set);
    pki_buf_release(&k1.pem);
    pki_buf_release(&k2.pem);
    pki_buf_release(&k3.pem);
    pki_buf_release(&kca.pem);
    return 0;
}

static void add_str(struct buf *b, const char *key, const char *v, size_t n, bool last)
{
    assert_int_equal(casd_json_add_string(b, key, strlen(key)), CD_OK);
    assert_int_equal(buf_add(b, ":", 1), CD_OK);
    assert_int_equal(casd_json_add_string(b, v, n), CD_OK);
    assert_int_equal(buf_add(b, last ? "}" : ",", 1), CD_OK);
}

static void add_b64(struct buf *b, const char *key, const void *p, size_t n, bool last)
{
    char t[8192];
    assert_int_equal(codec_b64_encode(p, n, t, sizeof(t)), CD_OK);
    add_str(b, key, t, strlen(t), last);
}

/* POST /v1/node/hello as client for session "svc", caller uid getuid(), pid 42,
 * the launcher's exe. Returns the status; the answer's messages into answer. */
static int hello(const char *client, struct buf *answer)
{
    struct buf body, out, hb, ans;
    char uid[16];
    int status = 0;

    snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
    buf_init(&hb, 256);
    assert_int_equal(release_enc_hello(&hb, "svc"), CD_OK);
    buf_init(&body, 8192);
    assert_int_equal(buf_add(&body, "{", 1), CD_OK);
    add_b64(&body, "hello", hb.p, hb.len, false);
    add_str(&body, "uid", uid, strlen(uid), false);
    add_str(&body, "gid", "0", 1, false);
    add_str(&body, "pid", "42", 2, false);
    add_str(&body, "exe", self[0], strlen(self[0]), true);
    buf_init(&out, CASD_IPC_BODY_MAX);
    casd_nodes_answer(nodes, &ctx, CASD_IPC_NODE_HELLO, body.p, body.len, client, &status, &out);
    if (status == 200) {
        uint8_t raw[4096];
        size_t n = 0;
        buf_init(&ans, 8192);
        assert_int_equal(casd_json_get_string(out.p, out.len, "answer", &ans), CD_OK);
        assert_int_equal(codec_b64_decode(ans.p, ans.len, raw, sizeof(raw), &n), CD_OK);
        assert_int_equal(buf_add(answer, raw, n), CD_OK);
        buf_release(&ans);
    } else {
        assert_int_equal(buf_add(answer, out.p, out.len), CD_OK);
    }
    buf_release(&hb);
    buf_release(&body);
    buf_release(&out);
    return status;
}

/* The body of a measure for the SPEC in spec, signed by signer, its report
 * saying uid (the caller's). */
static unsigned char box[SEAL_BOX_KEY_BYTES]; /* the last measure_body's answer key */
static char last_nonce[2 * RELEASE_NONCE_LEN + 1], last_box[2 * SEAL_BOX_KEY_BYTES + 1];

static void measure_body(const struct buf *spec, const struct key *signer, uint32_t uid,
                         struct buf *body)
{
    unsigned char box_pub[SEAL_BOX_KEY_BYTES];
    struct release_msg m;
    struct release_measurement me = {.exe = H1, .uid = (uint32_t)getuid()};
    struct casd_node_report r = {.uid = uid, .gid = 0, .pid = 42};
    struct buf mb, text;
    struct pki_buf sig = {0}, pub = {0};

    assert_int_equal(release_decode(spec->p, spec->len, &m), CD_OK);
    assert_int_equal(m.type, RELEASE_SPEC);
    me.exe[0] = 'f'; /* not the session's: the release is refused, after every node check */
    buf_init(&mb, 4096);
    assert_int_equal(release_enc_measure(&mb, &me), CD_OK);
    codec_hex_encode(m.nonce.p, RELEASE_NONCE_LEN, r.nonce);
    snprintf(r.session, sizeof(r.session), "svc");
    memcpy(r.exe, self[0], sizeof(r.exe));
    assert_int_equal(seal_box_keygen(box, box_pub), CD_OK);
    codec_hex_encode(box_pub, sizeof(box_pub), r.box);
    r.measure = mb.p;
    r.measure_len = mb.len;
    memcpy(last_nonce, r.nonce, sizeof(last_nonce));
    memcpy(last_box, r.box, sizeof(last_box));
    buf_init(&text, CASD_NODE_REPORT_MAX + 1);
    assert_int_equal(casd_node_report_text(&r, &text), CD_OK);
    assert_int_equal(casd_sig_sign(signer->pem.data, signer->pem.len, text.p, text.len, &sig, &pub),
                     CD_OK);
    assert_int_equal(buf_add(body, "{", 1), CD_OK);
    add_str(body, "report", text.p, text.len, false);
    add_str(body, "public_key", pub.data, pub.len, false);
    add_b64(body, "signature", sig.data, sig.len, true);
    pki_buf_release(&sig);
    pki_buf_release(&pub);
    buf_release(&mb);
    buf_release(&text);
}

/* The agent's check of a sealed answer refuses every answer the parent did
 * not sign for this very request: another signer (a worker's own key), a
 * changed sealed byte, another request's nonce or box, no signature. */
static void check_answer_signature(const struct buf *out)
{
    struct pki_buf sealed = {0};
    struct buf sb;
    char *bad = malloc(out->len + 1);
    char nonce2[sizeof(last_nonce)];

    assert_non_null(bad);
    assert_int_equal(
        casd_node_answer_check(out->p, out->len, k1.hash, last_nonce, last_box, &sealed),
        CD_ERR_AUTH);
    memcpy(nonce2, last_nonce, sizeof(nonce2));
    nonce2[0] = nonce2[0] == '0' ? '1' : '0';
    assert_int_equal(casd_node_answer_check(out->p, out->len, kca.hash, nonce2, last_box, &sealed),
                     CD_ERR_CRYPTO);
    assert_int_equal(
        casd_node_answer_check(out->p, out->len, kca.hash, last_nonce, nonce2, &sealed),
        CD_ERR_CRYPTO);
    /* one base64 character of the sealed bytes changed */
    memcpy(bad, out->p, out->len + 1);
    char *v = strstr(bad, "\"sealed\":\"") + 11;
    *v = *v == 'A' ? 'B' : 'A';
    assert_int_equal(casd_node_answer_check(bad, out->len, kca.hash, last_nonce, last_box, &sealed),
                     CD_ERR_CRYPTO);
    /* an answer signed by another key, with that key's public key */
    buf_init(&sb, CASD_IPC_BODY_MAX);
    assert_int_equal(casd_json_get_string(out->p, out->len, "sealed", &sb), CD_OK);
    {
        struct pki_buf sig = {0}, pub = {0};
        struct buf text, forged;
        uint8_t *r = malloc(sb.len);
        size_t n = 0;
        assert_non_null(r);
        assert_int_equal(codec_b64_decode(sb.p, sb.len, r, sb.len, &n), CD_OK);
        buf_init(&text, CASD_IPC_BODY_MAX);
        assert_int_equal(casd_node_answer_text(last_nonce, last_box, r, n, &text), CD_OK);
        assert_int_equal(casd_sig_sign(k3.pem.data, k3.pem.len, text.p, text.len, &sig, &pub),
                         CD_OK);
        buf_init(&forged, CASD_IPC_BODY_MAX);
        assert_int_equal(buf_add(&forged, "{", 1), CD_OK);
        add_str(&forged, "sealed", sb.p, sb.len, false);
        add_b64(&forged, "signature", sig.data, sig.len, false);
        add_str(&forged, "public_key", pub.data, pub.len, true);
        assert_int_equal(
            casd_node_answer_check(forged.p, forged.len, kca.hash, last_nonce, last_box, &sealed),
            CD_ERR_AUTH);
        assert_int_equal(
            casd_node_answer_check(forged.p, forged.len, k3.hash, last_nonce, last_box, &sealed),
            CD_OK); /* the check is the pin's, nothing else */
        pki_buf_release(&sealed);
        /* without its signature */
        buf_release(&forged);
        buf_init(&forged, CASD_IPC_BODY_MAX);
        assert_int_equal(buf_add(&forged, "{", 1), CD_OK);
        add_str(&forged, "sealed", sb.p, sb.len, true);
        assert_int_equal(
            casd_node_answer_check(forged.p, forged.len, kca.hash, last_nonce, last_box, &sealed),
            CD_ERR_INVALID);
        buf_release(&forged);
        buf_release(&text);
        pki_buf_release(&sig);
        pki_buf_release(&pub);
        free(r);
    }
    assert_null(sealed.data);
    buf_release(&sb);
    free(bad);
}

static int measure(const char *client, const struct buf *body, struct buf *out)
{
    int status = 0;
    casd_nodes_answer(nodes, &ctx, CASD_IPC_NODE_MEASURE, body->p, body->len, client, &status, out);
    return status;
}

static void test_not_admitted(void **state)
{
    struct buf a;
    (void)state;
    buf_init(&a, CASD_IPC_BODY_MAX);
    assert_int_equal(hello("", &a), 403);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.who, "node=-");
    buf_release(&a);
    buf_init(&a, CASD_IPC_BODY_MAX);
    assert_int_equal(hello(k3.hash, &a), 403);
    assert_non_null(strstr(a.p, "node identity not admitted"));
    assert_int_equal(seen.n, 2);
    assert_false(seen.allowed);
    assert_non_null(strstr(seen.who, k3.hash));
    buf_release(&a);
}

static void test_signed_report_once(void **state)
{
    struct buf spec, body, out;
    (void)state;
    buf_init(&spec, 8192);
    assert_int_equal(hello(k1.hash, &spec), 200);
    assert_int_equal(seen.n, 0); /* a SPEC is no outcome yet */
    buf_init(&body, 2 * CASD_NODE_REPORT_MAX);
    measure_body(&spec, &k1, (uint32_t)getuid(), &body);
    buf_init(&out, CASD_IPC_BODY_MAX);
    /* Every node check passes; the session's own check refuses the exe, in an
     * answer sealed to the report's box key (another key does not open it). */
    assert_int_equal(measure(k1.hash, &body, &out), 200);
    struct pki_buf sealed = {0};
    struct pki_buf opened = {0};
    struct release_msg m;
    unsigned char other[SEAL_BOX_KEY_BYTES], other_pub[SEAL_BOX_KEY_BYTES];
    check_answer_signature(&out);
    assert_int_equal(
        casd_node_answer_check(out.p, out.len, kca.hash, last_nonce, last_box, &sealed), CD_OK);
    assert_int_equal(seal_box_keygen(other, other_pub), CD_OK);
    assert_int_equal(seal_unbox(other, CASD_NODE_BOX_NAME, sealed.data, sealed.len, &opened),
                     CD_ERR_CRYPTO);
    assert_int_equal(seal_unbox(box, CASD_NODE_BOX_NAME, sealed.data, sealed.len, &opened), CD_OK);
    assert_int_equal(release_decode(opened.data, opened.len, &m), CD_OK);
    assert_int_equal(m.type, RELEASE_REFUSED);
    assert_non_null(memmem(m.reason.p, m.reason.len, "exe hash mismatch", 17));
    pki_buf_release(&opened);
    pki_buf_release(&sealed);
    assert_int_equal(seen.n, 1);
    assert_non_null(strstr(seen.reason, "exe hash mismatch"));
    char want[RELEASE_WHO_MAX];
    snprintf(want, sizeof(want), "node=%s uid=%u gid=0 pid=42 exe=%s", k1.hash, (unsigned)getuid(),
             self[0]);
    assert_string_equal(seen.who, want);
    buf_release(&out);
    /* The same report again: its HELLO is used up. */
    buf_init(&out, CASD_IPC_BODY_MAX);
    assert_int_equal(measure(k1.hash, &body, &out), 403);
    assert_non_null(strstr(out.p, "expired or replayed"));
    assert_int_equal(seen.n, 2);
    buf_release(&out);
    buf_release(&body);
    buf_release(&spec);
}

static void test_report_for_another_caller(void **state)
{
    struct buf spec, body, out;
    (void)state;
    buf_init(&spec, 8192);
    assert_int_equal(hello(k1.hash, &spec), 200);
    buf_init(&body, 2 * CASD_NODE_REPORT_MAX);
    measure_body(&spec, &k1, (uint32_t)getuid() + 1, &body); /* not the uid of the hello */
    buf_init(&out, CASD_IPC_BODY_MAX);
    assert_int_equal(measure(k1.hash, &body, &out), 403);
    assert_non_null(strstr(out.p, "does not match its hello"));
    assert_non_null(strstr(seen.reason, "does not match its hello"));
    buf_release(&out);
    buf_release(&body);
    buf_release(&spec);
}

static void test_signature_of_another_key(void **state)
{
    struct buf spec, body, out;
    (void)state;
    buf_init(&spec, 8192);
    assert_int_equal(hello(k1.hash, &spec), 200);
    /* Signed by k2 (admitted too) but sent over k1's TLS: refused. */
    buf_init(&body, 2 * CASD_NODE_REPORT_MAX);
    measure_body(&spec, &k2, (uint32_t)getuid(), &body);
    buf_init(&out, CASD_IPC_BODY_MAX);
    assert_int_equal(measure(k1.hash, &body, &out), 403);
    assert_non_null(strstr(out.p, "not signed by the node's identity key"));
    buf_release(&out);
    /* A worker claiming k2's TLS identity for it: the HELLO was k1's. */
    buf_init(&out, CASD_IPC_BODY_MAX);
    assert_int_equal(measure(k2.hash, &body, &out), 403);
    assert_non_null(strstr(out.p, "does not match its hello"));
    buf_release(&out);
    /* An edited report: the signature no longer holds. */
    char *r = strstr(body.p, "pid=42");
    assert_non_null(r);
    r[5] = '3';
    buf_init(&out, CASD_IPC_BODY_MAX);
    assert_int_equal(measure(k1.hash, &body, &out), 403);
    assert_non_null(strstr(out.p, "not signed by the node's identity key"));
    buf_release(&out);
    buf_release(&body);
    buf_release(&spec);
}

static void test_malformed(void **state)
{
    struct buf out;
    int status = 0;
    (void)state;
    const char *bad[] = {"", "{}", "{\"hello\":\"AAAA\"}", "[1]", "{\"hello\":1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_init(&out, CASD_IPC_BODY_MAX);
        casd_nodes_answer(nodes, &ctx, CASD_IPC_NODE_HELLO, bad[i], strlen(bad[i]), k1.hash,
                          &status, &out);
        assert_int_equal(status, 400);
        buf_release(&out);
        buf_init(&out, CASD_IPC_BODY_MAX);
        casd_nodes_answer(nodes, &ctx, CASD_IPC_NODE_MEASURE, bad[i], strlen(bad[i]), k1.hash,
                          &status, &out);
        assert_int_equal(status, 400);
        buf_release(&out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_not_admitted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signed_report_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_for_another_caller, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signature_of_another_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
