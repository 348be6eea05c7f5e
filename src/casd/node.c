/* node.c: the CAS's side of node agents (node.h): admission of node
 * identities, the pending HELLOs, and the two requests' answers. */
#include "casd/node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "casd/client.h"
#include "casd/ipc.h"
#include "casd/rest.h"
#include "casd/tls.h"
#include "common/codec.h"
#include "common/num.h"
#include "release/proto.h"

struct pending {
    bool used;
    int64_t expires;
    unsigned char nonce[RELEASE_NONCE_LEN];
    char session[RELEASE_NAME_MAX + 1];
    char node[PKI_FP_HEX];
    uint32_t uid, gid;
    int32_t pid;
    char exe[RELEASE_HASH_HEX];
};

struct casd_nodes {
    char admitted[CASD_NODE_MAX_ADMITTED][PKI_FP_HEX];
    size_t nadmitted;
    struct pending pending[CASD_NODE_PENDING];
    struct pki_buf sign_key; /* the CAS's identity CA key: signs each sealed answer */
};

cd_err casd_nodes_new(const char *const *admitted, size_t n, const char *sign_key_pem,
                      size_t sign_key_len, struct casd_nodes **out)
{
    if (n > CASD_NODE_MAX_ADMITTED || sign_key_pem == NULL || sign_key_len == 0)
        return CD_ERR_INVALID;
    struct casd_nodes *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CD_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (strlen(admitted[i]) != PKI_FP_HEX - 1) {
            free(s);
            return CD_ERR_INVALID;
        }
        memcpy(s->admitted[i], admitted[i], PKI_FP_HEX);
    }
    s->nadmitted = n;
    if (pki_buf_copy(sign_key_pem, sign_key_len, &s->sign_key) != CD_OK) {
        free(s);
        return CD_ERR_NOMEM;
    }
    *out = s;
    return CD_OK;
}

void casd_nodes_free(struct casd_nodes *n)
{
    if (n != NULL) {
        pki_buf_release(&n->sign_key);
        explicit_bzero(n, sizeof(*n));
    }
    free(n);
}

cd_err casd_node_answer_text(const char *nonce_hex, const char *box_hex, const void *sealed,
                             size_t n, struct buf *out)
{
    cd_err err =
        buf_add(out, CASD_NODE_ANSWER_MAGIC "\nnonce=", sizeof(CASD_NODE_ANSWER_MAGIC) + 6);
    if (err == CD_OK)
        err = buf_add(out, nonce_hex, strlen(nonce_hex));
    if (err == CD_OK)
        err = buf_add(out, "\nbox=", 5);
    if (err == CD_OK)
        err = buf_add(out, box_hex, strlen(box_hex));
    if (err == CD_OK)
        err = buf_add(out, "\nsealed=", 8);
    if (err == CD_OK)
        err = buf_add(out, sealed, n);
    return err;
}

cd_err casd_node_answer_check(const char *json, size_t len, const char *pin, const char *nonce_hex,
                              const char *box_hex, struct pki_buf *sealed_out)
{
    struct buf b64, sigb64, pub, text;
    unsigned char sig[CASD_IPC_SIG_MAX];
    char keyhash[PKI_FP_HEX] = "";
    size_t siglen = 0, n = 0;
    uint8_t *raw = NULL;
    cd_err err;

    buf_init(&b64, CASD_CLIENT_RESPONSE_MAX);
    buf_init(&sigb64, CODEC_B64_LEN(CASD_IPC_SIG_MAX));
    buf_init(&pub, CASD_IPC_PUBKEY_MAX + 1);
    buf_init(&text, CASD_CLIENT_RESPONSE_MAX + 256);
    if (casd_json_get_string(json, len, "sealed", &b64) != CD_OK || b64.len == 0 ||
        casd_json_get_string(json, len, "signature", &sigb64) != CD_OK || sigb64.len == 0 ||
        casd_json_get_string(json, len, "public_key", &pub) != CD_OK || pub.len == 0 ||
        codec_b64_decode(sigb64.p, sigb64.len, sig, sizeof(sig), &siglen) != CD_OK) {
        err = CD_ERR_INVALID;
        goto out;
    }
    if ((raw = malloc(b64.len)) == NULL) {
        err = CD_ERR_NOMEM;
        goto out;
    }
    if ((err = codec_b64_decode(b64.p, b64.len, raw, b64.len, &n)) != CD_OK ||
        (err = casd_node_answer_text(nonce_hex, box_hex, raw, n, &text)) != CD_OK)
        goto out;
    /* Signed by the key the pin names: the CAS's parent, not its worker. */
    err = casd_sig_verify(pub.p, pub.len, sig, siglen, text.p, text.len, keyhash);
    if (err == CD_OK && (strlen(pin) != PKI_FP_HEX - 1 || strcasecmp(keyhash, pin) != 0))
        err = CD_ERR_AUTH;
    if (err == CD_OK)
        err = pki_buf_copy(raw, n, sealed_out);
out:
    if (raw != NULL) {
        explicit_bzero(raw, b64.len);
        free(raw);
    }
    buf_release(&b64);
    buf_release(&sigb64);
    buf_release(&pub);
    buf_release(&text);
    return err;
}

static bool admitted(const struct casd_nodes *n, const char *key)
{
    bool yes = false;
    for (size_t i = 0; i < n->nadmitted; i++)
        yes = yes || strcmp(n->admitted[i], key) == 0;
    return yes && key[0] != '\0';
}

/* ---- the report's text ---- */

cd_err casd_node_report_text(const struct casd_node_report *r, struct buf *out)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     CASD_NODE_REPORT_MAGIC "\nnonce=%s\nsession=%s\nuid=%u\ngid=%u\npid=%d\n"
                                            "exe=%s\nbox=%s\nmeasure=",
                     r->nonce, r->session, (unsigned)r->uid, (unsigned)r->gid, (int)r->pid, r->exe,
                     r->box);
    if (n < 0 || (size_t)n >= sizeof(head))
        return CD_ERR_INVALID;
    size_t b64 = CODEC_B64_LEN(r->measure_len);
    char *m = malloc(b64);
    if (m == NULL)
        return CD_ERR_NOMEM;
    cd_err err = codec_b64_encode(r->measure, r->measure_len, m, b64);
    if (err == CD_OK)
        err = buf_add(out, head, (size_t)n);
    if (err == CD_OK)
        err = buf_add(out, m, b64 - 1);
    if (err == CD_OK)
        err = buf_add(out, "\n", 1);
    free(m);
    return err;
}

/* "key=VALUE\n" at *p: the value's bytes. */
static bool take(const char **p, const char *end, const char *key, const char **v, size_t *n)
{
    size_t k = strlen(key);
    if ((size_t)(end - *p) < k + 1 || memcmp(*p, key, k) != 0 || (*p)[k] != '=')
        return false;
    const char *s = *p + k + 1, *nl = memchr(s, '\n', (size_t)(end - s));
    if (nl == NULL)
        return false;
    *v = s;
    *n = (size_t)(nl - s);
    *p = nl + 1;
    return true;
}

static bool take_copy(const char **p, const char *end, const char *key, char *out, size_t cap)
{
    const char *v;
    size_t n;
    if (!take(p, end, key, &v, &n) || n == 0 || n >= cap || memchr(v, '\0', n) != NULL)
        return false;
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}

static bool take_num(const char **p, const char *end, const char *key, uint64_t max, uint64_t *out)
{
    const char *v;
    size_t n;
    return take(p, end, key, &v, &n) && num_parse(v, n, max, out) == CD_OK;
}

/* Parses text[0..len) into *r; the MEASURE is decoded into space (cap bytes). */
static bool report_parse(const char *text, size_t len, struct casd_node_report *r, uint8_t *space,
                         size_t cap)
{
    const char *p = text, *end = text + len, *v;
    size_t n, mlen = 0, magic = strlen(CASD_NODE_REPORT_MAGIC);
    uint64_t uid, gid, pid;

    if (len < magic + 1 || memcmp(p, CASD_NODE_REPORT_MAGIC "\n", magic + 1) != 0)
        return false;
    p += magic + 1;
    if (!take_copy(&p, end, "nonce", r->nonce, sizeof(r->nonce)) ||
        strlen(r->nonce) != (size_t)2 * RELEASE_NONCE_LEN ||
        !take_copy(&p, end, "session", r->session, sizeof(r->session)) ||
        !take_num(&p, end, "uid", UINT32_MAX, &uid) ||
        !take_num(&p, end, "gid", UINT32_MAX, &gid) || !take_num(&p, end, "pid", INT32_MAX, &pid) ||
        !take_copy(&p, end, "exe", r->exe, sizeof(r->exe)) || strlen(r->exe) != RELEASE_HASH_LEN ||
        !take_copy(&p, end, "box", r->box, sizeof(r->box)) ||
        strlen(r->box) != (size_t)2 * SEAL_BOX_KEY_BYTES || !take(&p, end, "measure", &v, &n) ||
        p != end || codec_b64_decode(v, n, space, cap, &mlen) != CD_OK)
        return false;
    r->uid = (uint32_t)uid;
    r->gid = (uint32_t)gid;
    r->pid = (int32_t)pid;
    r->measure = space;
    r->measure_len = mlen;
    return true;
}

/* ---- answers ---- */

/* A refusal before the sessions were consulted, for the audit log. */
static void record_refusal(const struct release_ctx *ctx, const char *session, const char *who,
                           const char *reason)
{
    const struct release_outcome o = {.session = session != NULL ? session : "",
                                      .who = who,
                                      .measurement = "",
                                      .files = "",
                                      .reason = reason};
    if (ctx->record != NULL)
        ctx->record(ctx->record_arg, &o);
}

static void detail(int *status, struct buf *out, int st, const char *text)
{
    *status = st;
    buf_release(out);
    (void)casd_rest_detail(out, text);
}

/* {"KEY": B64(answer)} (KEY "answer" or "sealed": plain JSON, no escaping needed) */
static void answer_json(int *status, struct buf *out, const char *key, const void *answer,
                        size_t len)
{
    size_t b64 = CODEC_B64_LEN(len);
    char *t = malloc(b64);
    cd_err err = t != NULL ? codec_b64_encode(answer, len, t, b64) : CD_ERR_NOMEM;
    if (err == CD_OK)
        err = buf_add(out, "{\"", 2);
    if (err == CD_OK)
        err = buf_add(out, key, strlen(key));
    if (err == CD_OK)
        err = buf_add(out, "\":\"", 3);
    if (err == CD_OK)
        err = buf_add(out, t, b64 - 1);
    if (err == CD_OK)
        err = buf_add(out, "\"}", 2);
    if (t != NULL) {
        explicit_bzero(t, b64); /* released files */
        free(t);
    }
    if (err != CD_OK)
        detail(status, out, 500, "the answer does not fit");
    else
        *status = 200;
}

static bool json_num(const char *body, size_t len, const char *key, uint64_t max, uint64_t *v)
{
    struct buf b;
    buf_init(&b, 16);
    bool ok = casd_json_get_string(body, len, key, &b) == CD_OK && b.len > 0 &&
              num_parse(b.p, b.len, max, v) == CD_OK;
    buf_release(&b);
    return ok;
}

static bool json_copy(const char *body, size_t len, const char *key, char *out, size_t cap)
{
    struct buf b;
    buf_init(&b, cap);
    bool ok = casd_json_get_string(body, len, key, &b) == CD_OK && b.len > 0 &&
              memchr(b.p, '\0', b.len) == NULL;
    if (ok)
        memcpy(out, b.p, b.len + 1);
    buf_release(&b);
    return ok;
}

static void answer_hello(struct casd_nodes *n, const struct release_ctx *ctx, const char *body,
                         size_t len, const char *client, int *status, struct buf *out)
{
    struct release_remote r = {.node = client};
    uint64_t uid = 0, gid = 0, pid = 0;
    struct buf hello, answer;
    uint8_t msg[RELEASE_HEADER + 4 + RELEASE_NAME_MAX];
    size_t mlen = 0;
    char who[RELEASE_WHO_MAX];
    unsigned char nonce[RELEASE_NONCE_LEN];
    char session[RELEASE_NAME_MAX + 1] = "";

    buf_init(&hello, 256);
    bool ok = casd_json_get_string(body, len, "hello", &hello) == CD_OK && hello.len > 0 &&
              codec_b64_decode(hello.p, hello.len, msg, sizeof(msg), &mlen) == CD_OK &&
              json_num(body, len, "uid", UINT32_MAX, &uid) &&
              json_num(body, len, "gid", UINT32_MAX, &gid) &&
              json_num(body, len, "pid", INT32_MAX, &pid) &&
              json_copy(body, len, "exe", r.exe, sizeof(r.exe)) &&
              strlen(r.exe) == RELEASE_HASH_LEN;
    buf_release(&hello);
    snprintf(who, sizeof(who), "node=%s", client[0] != '\0' ? client : "-");
    if (!admitted(n, client)) {
        record_refusal(ctx, NULL, who, "node identity not admitted");
        detail(status, out, 403, "node identity not admitted");
        return;
    }
    if (!ok) {
        record_refusal(ctx, NULL, who, "malformed node hello");
        detail(status, out, 400, "malformed node hello");
        return;
    }
    r.uid = (uint32_t)uid, r.gid = (uint32_t)gid, r.pid = (int32_t)pid;
    buf_init(&answer, CASD_NODE_ANSWER_MAX);
    cd_err err = release_node_hello(ctx, &r, msg, mlen, &answer, nonce, session);
    if (err == CD_OK) {
        /* The oldest pending entry (or a free one) makes room. */
        struct pending *slot = &n->pending[0];
        for (size_t i = 0; i < CASD_NODE_PENDING; i++) {
            struct pending *e = &n->pending[i];
            if (!e->used || e->expires < release_now_ms()) {
                slot = e;
                break;
            }
            if (e->expires < slot->expires)
                slot = e;
        }
        *slot = (struct pending){.used = true,
                                 .expires = release_now_ms() + CASD_NODE_PENDING_MS,
                                 .uid = r.uid,
                                 .gid = r.gid,
                                 .pid = r.pid};
        memcpy(slot->nonce, nonce, sizeof(nonce));
        memcpy(slot->session, session, sizeof(session));
        memcpy(slot->node, client, PKI_FP_HEX);
        memcpy(slot->exe, r.exe, sizeof(r.exe));
    }
    answer_json(status, out, "answer", answer.p, answer.len);
    buf_release(&answer);
}

/* {"sealed": B64, "signature": B64(DER), "public_key": PEM} into out. */
static cd_err sign_answer(const struct casd_nodes *n, const char *nonce_hex, const char *box_hex,
                          const struct pki_buf *sealed, int *status, struct buf *out)
{
    struct buf text;
    struct pki_buf sig = {0}, pub = {0};
    size_t b64 = CODEC_B64_LEN(sealed->len), sb64 = CODEC_B64_LEN(CASD_IPC_SIG_MAX);
    char *t = malloc(b64), *st = malloc(sb64);
    cd_err err = t != NULL && st != NULL ? CD_OK : CD_ERR_NOMEM;

    buf_init(&text, CASD_CLIENT_RESPONSE_MAX + 256);
    if (err == CD_OK)
        err = casd_node_answer_text(nonce_hex, box_hex, sealed->data, sealed->len, &text);
    if (err == CD_OK)
        err = casd_sig_sign(n->sign_key.data, n->sign_key.len, text.p, text.len, &sig, &pub);
    if (err == CD_OK && sig.len > CASD_IPC_SIG_MAX)
        err = CD_ERR_INTERNAL;
    if (err == CD_OK)
        err = codec_b64_encode(sealed->data, sealed->len, t, b64);
    if (err == CD_OK)
        err = codec_b64_encode(sig.data, sig.len, st, sb64);
    if (err == CD_OK)
        err = buf_add(out, "{\"sealed\":\"", 11);
    if (err == CD_OK)
        err = buf_add(out, t, b64 - 1);
    if (err == CD_OK)
        err = buf_add(out, "\",\"signature\":\"", 15);
    if (err == CD_OK)
        err = buf_add(out, st, strlen(st));
    if (err == CD_OK)
        err = buf_add(out, "\",\"public_key\":", 15);
    if (err == CD_OK)
        err = casd_json_add_string(out, pub.data, pub.len);
    if (err == CD_OK)
        err = buf_add(out, "}", 1);
    if (err == CD_OK)
        *status = 200;
    else { /* nothing half-written goes: detail() starts afresh */
        buf_release(out);
    }
    if (t != NULL) {
        explicit_bzero(t, b64);
        free(t);
    }
    free(st);
    buf_release(&text);
    pki_buf_release(&sig);
    pki_buf_release(&pub);
    return err;
}

static void answer_measure(struct casd_nodes *n, const struct release_ctx *ctx, const char *body,
                           size_t len, const char *client, int *status, struct buf *out)
{
    struct buf text, pub, sigb64, answer;
    struct casd_node_report rep = {0};
    unsigned char sig[CASD_IPC_SIG_MAX], nonce[RELEASE_NONCE_LEN] = {0},
                                         box[SEAL_BOX_KEY_BYTES] = {0};
    char keyhash[PKI_FP_HEX] = "", who[RELEASE_WHO_MAX];
    size_t siglen = 0;
    uint8_t *space = malloc(CASD_NODE_REPORT_MAX);
    const char *why = NULL;
    bool malformed = false;

    buf_init(&text, CASD_NODE_REPORT_MAX + 1);
    buf_init(&pub, CASD_IPC_PUBKEY_MAX + 1);
    buf_init(&sigb64, CODEC_B64_LEN(CASD_IPC_SIG_MAX));
    buf_init(&answer, CASD_NODE_ANSWER_MAX);
    snprintf(who, sizeof(who), "node=%s", client[0] != '\0' ? client : "-");
    if (!admitted(n, client)) {
        why = "node identity not admitted";
    } else if (space == NULL || casd_json_get_string(body, len, "report", &text) != CD_OK ||
               casd_json_get_string(body, len, "public_key", &pub) != CD_OK ||
               casd_json_get_string(body, len, "signature", &sigb64) != CD_OK || sigb64.len == 0 ||
               codec_b64_decode(sigb64.p, sigb64.len, sig, sizeof(sig), &siglen) != CD_OK) {
        why = "malformed node request";
        malformed = true;
    } else if (pub.len == 0 ||
               casd_sig_verify(pub.p, pub.len, sig, siglen, text.p, text.len, keyhash) != CD_OK ||
               strcmp(keyhash, client) != 0) {
        /* Verified here, by the parent: the worker's word on the TLS key is not enough. */
        why = "the node report is not signed by the node's identity key";
    } else if (!report_parse(text.p, text.len, &rep, space, CASD_NODE_REPORT_MAX) ||
               codec_hex_decode(rep.nonce, strlen(rep.nonce), nonce, sizeof(nonce)) != CD_OK ||
               codec_hex_decode(rep.box, strlen(rep.box), box, sizeof(box)) != CD_OK) {
        why = "malformed node report";
        malformed = true;
    }
    struct pending *e = NULL;
    for (size_t i = 0; why == NULL && i < CASD_NODE_PENDING; i++) {
        struct pending *x = &n->pending[i];
        if (x->used && memcmp(x->nonce, nonce, sizeof(nonce)) == 0)
            e = x;
    }
    if (why == NULL && e == NULL)
        why = "no node hello waits for this report (expired or replayed)";
    if (e != NULL) {
        bool same = e->expires >= release_now_ms() && strcmp(e->node, client) == 0 &&
                    strcmp(e->session, rep.session) == 0 && e->uid == rep.uid &&
                    e->gid == rep.gid && e->pid == rep.pid && strcmp(e->exe, rep.exe) == 0;
        explicit_bzero(e, sizeof(*e)); /* one report per hello */
        if (!same)
            why = "the node report does not match its hello";
    }
    if (why != NULL) {
        record_refusal(ctx, rep.session[0] != '\0' ? rep.session : NULL, who, why);
        detail(status, out, malformed ? 400 : 403, why);
    } else {
        struct release_remote r = {.node = client, .uid = rep.uid, .gid = rep.gid, .pid = rep.pid};
        memcpy(r.exe, rep.exe, sizeof(r.exe));
        struct pki_buf sealed = {0};
        (void)release_node_measure(ctx, &r, rep.session, nonce, rep.measure, rep.measure_len,
                                   &answer);
        /* For the agent's key only: the worker relays what it cannot read,
         * and cannot replace (signed with the key the agent's pin names). */
        if (seal_box(box, CASD_NODE_BOX_NAME, answer.p, answer.len, &sealed) != CD_OK ||
            sign_answer(n, rep.nonce, rep.box, &sealed, status, out) != CD_OK)
            detail(status, out, 500, "cannot seal the answer");
        pki_buf_release(&sealed);
    }
    buf_release(&answer);
    buf_release(&text);
    buf_release(&pub);
    buf_release(&sigb64);
    free(space);
}

void casd_nodes_answer(struct casd_nodes *n, const struct release_ctx *ctx, uint32_t type,
                       const char *body, size_t len, const char *client, int *status,
                       struct buf *out)
{
    if (type == CASD_IPC_NODE_HELLO)
        answer_hello(n, ctx, body, len, client, status, out);
    else
        answer_measure(n, ctx, body, len, client, status, out);
}
