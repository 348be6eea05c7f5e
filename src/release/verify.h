/* verify.h: the CAS's side of attested release (docs/internals/cas-service.md,
 * "Attested release"): one launcher connection, checked and answered. */
#ifndef CONFIDOC_RELEASE_VERIFY_H
#define CONFIDOC_RELEASE_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "cas/cas.h"
#include "cas/policy.h"
#include "common/err.h"
#include "evidence/evidence.h"
#include "release/proto.h"

#define RELEASE_TIMEOUT_MS_DEFAULT 5000 /* one whole connection */
#define RELEASE_MAX_LAUNCHERS 8         /* allowed launcher executables */
#define RELEASE_WHO_MAX 256             /* "[node=KEYHASH ]uid=U [gid=G ]pid=P exe=SHA" */
#define RELEASE_TEXT_MAX 4096           /* measurement text, file names */

/* What one connection ended with, for the audit log. Every string is
 * NUL-terminated, borrowed for the duration of the call, and holds names and
 * hashes only, never secret material. */
struct release_outcome {
    const char *session; /* as the launcher named it ("" before HELLO) */
    const char *who;     /* "uid=U pid=P exe=SHA" ("uid=U pid=P" before the exe is hashed); through
                            a node agent "node=KEYHASH uid=U gid=G pid=P exe=SHA" */
    const char *measurement;       /* "exe=SHA uid=U config=PATH:SHA,..." ("" before MEASURE) */
    const char *files;             /* released: the rel paths, comma-separated (possibly "...") */
    const char *const *file_names; /* released: the same paths, one each (NULL when refused) */
    size_t nfile_names;
    const char *reason; /* refused: why (the text sent to the launcher, when one was) */
    bool allowed;
};

/* An evidence verifier (src/evidence/evidence.h plugs in here): CD_OK when
 * blob is valid evidence of the kind named verifier whose report_data is
 * report_data, the binding of this launch (evidence_binding over the nonce
 * this connection's SPEC carried, the reported executable hash and config
 * hashes: evidence made for another request or another binary does not
 * match); anything else refuses the release. */
typedef cd_err (*release_evidence_fn)(void *arg, const char *verifier, const void *blob, size_t len,
                                      const unsigned char report_data[EVIDENCE_REPORT_DATA_LEN]);

/* A release_evidence_fn over the production registry: evidence_find(verifier),
 * then evidence_check (binding and no debug TEE). arg is unused. Today the
 * registry is empty (src/evidence/evidence.h), so every evidence is refused. */
cd_err release_evidence_registry(void *arg, const char *verifier, const void *blob, size_t len,
                                 const unsigned char report_data[EVIDENCE_REPORT_DATA_LEN]);

struct release_ctx {
    const struct policy_set *set;        /* the linked sessions (borrowed) */
    const struct cas_material *material; /* their material (borrowed) */
    /* SHA-256 (hex) of the executables allowed to act as the launcher: the
     * CAS passes that of its own /proc/self/exe (the launcher is confidoc-cas). */
    const char (*launchers)[RELEASE_HASH_HEX];
    size_t nlaunchers;
    int timeout_ms; /* the whole connection; <= 0: RELEASE_TIMEOUT_MS_DEFAULT */
    /* Called exactly once per connection, allowed or refused (may be NULL). */
    void (*record)(void *arg, const struct release_outcome *o);
    void *record_arg;
    /* Evidence in a MEASURE without a verifier here is refused. May be NULL. */
    release_evidence_fn evidence;
    void *evidence_arg;
};

/* Serves one accepted connection on the CAS's unix socket (SOCK_SEQPACKET):
 * identifies the caller (SO_PEERCRED, a pidfd, the SHA-256 of /proc/PID/exe),
 * requires an allowed launcher whose uid is 0 or the session's, compares its
 * MEASURE with the session's measurements: and sends the session's rendered
 * files, or REFUSED with the reason. Blocks at most ctx->timeout_ms. Does not
 * close conn_fd. CD_OK when the files were sent; CD_ERR_AUTH when refused;
 * CD_ERR_INVALID on a malformed message, CD_ERR_TIMEOUT, CD_ERR_IO, CD_ERR_NOMEM
 * (each also recorded as refused). Logs nothing: the outcome goes to record. */
cd_err release_serve_conn(int conn_fd, const struct release_ctx *ctx);

/* ---- the node path (docs/internals/cas-service.md, "Node agents") ----
 *
 * A node agent (casd/agent.c) measures its caller itself (peer.h) and relays
 * the launcher's HELLO and MEASURE to the CAS over mutual TLS; the CAS's
 * parent, once it has verified the node's identity, answers them here with
 * the same checks as release_serve_conn, the caller being what the agent
 * reported. The answers are release protocol messages appended to answer
 * (a buffer the caller bounds), which the agent relays verbatim. */
struct release_remote {
    const char *node; /* the node identity's key hash (already admitted) */
    uint32_t uid, gid;
    int32_t pid;
    char exe[RELEASE_HASH_HEX]; /* SHA-256 of the caller's /proc/PID/exe, as the agent hashed it */
};

/* HELLO (the one message msg[0..len)) from r: answer gets SPEC, and nonce and
 * session what the MEASURE step needs (CD_OK); or REFUSED (CD_ERR_AUTH, and
 * recorded; any other error: malformed, recorded, answer a REFUSED too). */
cd_err release_node_hello(const struct release_ctx *ctx, const struct release_remote *r,
                          const void *msg, size_t len, struct buf *answer,
                          unsigned char nonce[RELEASE_NONCE_LEN],
                          char session[RELEASE_NAME_MAX + 1]);

/* MEASURE (msg[0..len)) from r for session, after the HELLO that produced
 * nonce: HELLO's checks again, then MEASURE's; answer gets FILE... END (CD_OK)
 * or one REFUSED (any error). Exactly one outcome is recorded. */
cd_err release_node_measure(const struct release_ctx *ctx, const struct release_remote *r,
                            const char *session, const unsigned char nonce[RELEASE_NONCE_LEN],
                            const void *msg, size_t len, struct buf *answer);

#endif
