/* fuzz_node.c: the CAS parent's answers to node agents (casd_nodes_answer:
 * the JSON bodies, the base64 HELLO, the signed report's text and signature,
 * the pending HELLOs) on an arbitrary body: what a compromised worker or a
 * node agent can send. The first byte picks the request (hello or measure)
 * and whether the client key hash is the admitted one; the rest is the body.
 *
 * Nothing may crash or leak; the status is 200 (an "answer"), 400, 403 or 500
 * (a "detail"); a measure is recorded exactly once, a hello once unless its
 * answer is a SPEC; nothing is ever released (the session has no material). */
#include "fuzz_common.h"

#include "casd/ipc.h"
#include "casd/node.h"
#include "casd/rest.h"
#include "common/codec.h"
#include "release/proto.h"

#define ADMITTED "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define LAUNCHER "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static struct policy_set *set;
static struct casd_nodes *nodes;
static const char launcher[1][RELEASE_HASH_HEX] = {LAUNCHER};
static int records, released;

static void note(void *arg, const struct release_outcome *o)
{
    (void)arg;
    records++;
    released += o->allowed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > CASD_IPC_TEXT_MAX)
        return 0;
    const uint32_t type = (data[0] & 1) ? CASD_IPC_NODE_MEASURE : CASD_IPC_NODE_HELLO;
    const char *client = (data[0] & 2) ? ADMITTED : "";
    char *body = fuzz_strndup(data + 1, size - 1);
    const struct release_ctx ctx = {
        .set = set, .launchers = launcher, .nlaunchers = 1, .record = note};
    struct buf out, v;
    int status = 0;

    if (body == NULL)
        return 0;
    records = released = 0;
    buf_init(&out, CASD_IPC_BODY_MAX);
    casd_nodes_answer(nodes, &ctx, type, body, size - 1, client, &status, &out);
    FUZZ_CHECK(status == 200 || status == 400 || status == 403 || status == 500);
    FUZZ_CHECK(out.len > 0);
    buf_init(&v, CASD_IPC_BODY_MAX);
    const char *key = status != 200                   ? "detail"
                      : type == CASD_IPC_NODE_MEASURE ? "sealed"
                                                      : "answer";
    FUZZ_CHECK(casd_json_get_string(out.p, out.len, key, &v) == CD_OK);
    FUZZ_CHECK(released == 0);
    if (type == CASD_IPC_NODE_MEASURE || status != 200) {
        FUZZ_CHECK(records == 1);
    } else {
        /* One release protocol message: SPEC (nothing recorded yet) or REFUSED (recorded). */
        static uint8_t raw[CASD_IPC_BODY_MAX];
        struct release_msg m;
        size_t n = 0;
        FUZZ_CHECK(codec_b64_decode(v.p, v.len, raw, sizeof(raw), &n) == CD_OK);
        FUZZ_CHECK(release_decode(raw, n, &m) == CD_OK);
        FUZZ_CHECK(m.type == RELEASE_SPEC || m.type == RELEASE_REFUSED);
        FUZZ_CHECK(records == (m.type == RELEASE_SPEC ? 0 : 1));
    }
    buf_release(&v);
    buf_release(&out);
    free(body);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char text[] = "name: svc\nmeasurements:\n  executable: " LAUNCHER "\n"
                               "  user: \"0\"\n  mount: /run/svc\n";
    const char *admitted[] = {ADMITTED};
    struct cd_diag d;
    (void)argc;
    (void)argv;
    cd_diag_init(&d);
    FUZZ_CHECK(policy_parse_buffer("svc.yaml", text, sizeof(text) - 1, NULL, &set, &d) == CD_OK);
    static struct pki_buf ca_key; /* signs the sealed answers, as the CAS's CA key does */
    FUZZ_CHECK(pki_key_generate(&ca_key) == CD_OK);
    FUZZ_CHECK(casd_nodes_new(admitted, 1, ca_key.data, ca_key.len, &nodes) == CD_OK);
    return 0;
}
