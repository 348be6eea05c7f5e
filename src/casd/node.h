/* node.h: node agents and the CAS (docs/internals/cas-service.md, "Node
 * agents"): the wire format both ends share, and the parent's side (which
 * node identities are admitted, the HELLOs waiting for their MEASURE).
 *
 * A node agent (agent.h) relays a launcher's exchange to the CAS in two HTTPS
 * requests over mutual TLS with the node's identity certificate:
 *
 *   POST /v1/node/hello    {"hello": B64(HELLO), "uid": U, "gid": G, "pid": P, "exe": SHA}
 *                          -> 200 {"answer": B64(SPEC | REFUSED)}
 *   POST /v1/node/measure  {"report": TEXT, "public_key": PEM, "signature": B64(DER)}
 *                          -> 200 {"sealed": B64(seal_box(BOX, "node answer", FILE... END |
 *                                   REFUSED)), "signature": B64(DER), "public_key": PEM}
 *
 * (every value a JSON string; U, G, P decimal; SHA the caller's executable as
 * the agent hashed it). TEXT is casd_node_report's, signed (ECDSA-SHA256) by
 * the node's identity key: the parent verifies that signature itself, so a
 * compromised network worker cannot make up a node's report; and the files
 * come back sealed to BOX, an X25519 key the agent makes for that one request
 * and names in the signed report, so the worker cannot read them; the parent
 * signs the sealed answer (with the nonce and BOX) with the CAS's identity CA
 * key, whose hash is the agent's --cas-pin, so the worker cannot replace
 * them either. Another status
 * (403 a node not admitted or a bad signature, 400 malformed) has
 * {"detail": ...}. The answers are release protocol messages (proto.h) that
 * the agent checks and relays to the launcher as they are. */
#ifndef CONFIDOC_CASD_NODE_H
#define CONFIDOC_CASD_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "cas/pki.h"
#include "cas/seal.h"
#include "common/buf.h"
#include "common/err.h"
#include "release/verify.h"

#define CASD_NODE_MAX_ADMITTED 64                 /* --node key hashes */
#define CASD_NODE_PENDING 32                      /* HELLOs waiting for their MEASURE */
#define CASD_NODE_PENDING_MS 20000                /* how long one waits */
#define CASD_NODE_ANSWER_MAX ((size_t)256 * 1024) /* one answer's messages (raw) */
#define CASD_NODE_REPORT_MAX ((size_t)128 * 1024) /* a report's text */
#define CASD_NODE_REPORT_MAGIC "confidoc node report 1"
#define CASD_NODE_BOX_NAME "node answer" /* the sealed answer's associated data */
#define CASD_NODE_ANSWER_MAGIC "confidoc node answer 1"

/* What a node reports with a MEASURE (the report's fields). */
struct casd_node_report {
    char nonce[2 * RELEASE_NONCE_LEN + 1]; /* SPEC's nonce, hex */
    char session[RELEASE_NAME_MAX + 1];
    uint32_t uid, gid;
    int32_t pid;
    char exe[RELEASE_HASH_HEX];
    char box[2 * SEAL_BOX_KEY_BYTES + 1]; /* the agent's X25519 public key for the answer, hex */
    const void *measure;                  /* the MEASURE message (borrowed) */
    size_t measure_len;
};

/* The report's text into out (a fresh buffer of max CASD_NODE_REPORT_MAX + 1):
 *   MAGIC \n nonce=HEX \n session=S \n uid=U \n gid=G \n pid=P \n exe=SHA \n box=HEX \n
 *   measure=B64 \n */
cd_err casd_node_report_text(const struct casd_node_report *r, struct buf *out);

/* What the parent signs for one sealed answer, into out:
 *   ANSWER_MAGIC \n nonce=HEX \n box=HEX \n sealed=BYTES
 * (the report's nonce and box, the sealed bytes as they are). */
cd_err casd_node_answer_text(const char *nonce_hex, const char *box_hex, const void *sealed,
                             size_t n, struct buf *out);

/* The agent's check of a /v1/node/measure answer (json, len): its sealed
 * bytes into sealed_out once "signature" verifies over casd_node_answer_text
 * of this request's nonce and box with "public_key", and that key hashes to
 * pin (the CAS's identity CA key: only the parent holds it, so the network
 * worker cannot replace the answer). CD_ERR_INVALID malformed, CD_ERR_CRYPTO
 * a bad signature, CD_ERR_AUTH a key other than the pin's. */
cd_err casd_node_answer_check(const char *json, size_t len, const char *pin, const char *nonce_hex,
                              const char *box_hex, struct pki_buf *sealed_out);

struct casd_nodes;

/* sign_key_pem: the CAS's identity CA private key (copied, wiped at free),
 * whose hash is the pin node agents attest the CAS with; it signs every
 * sealed answer (casd_node_answer_text).
 * admitted: the key hashes (SHA-256 of the DER SubjectPublicKeyInfo) of the
 * node identities whose reports count (copied; none: every node is refused). */
cd_err casd_nodes_new(const char *const *admitted, size_t n, const char *sign_key_pem,
                      size_t sign_key_len, struct casd_nodes **out);
void casd_nodes_free(struct casd_nodes *n); /* NULL is a no-op */

/* Answers one NODE_HELLO or NODE_MEASURE (the request body as the worker got
 * it, and client: the key hash of the TLS client certificate, "" for none)
 * with the sessions of ctx: *status and a JSON body into out (a fresh buffer of
 * max CASD_IPC_BODY_MAX). Every refusal and release is recorded through
 * ctx->record, its who naming the node ("node=KEYHASH ..."). */
void casd_nodes_answer(struct casd_nodes *n, const struct release_ctx *ctx, uint32_t type,
                       const char *body, size_t len, const char *client, int *status,
                       struct buf *out);

#endif
