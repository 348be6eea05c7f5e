/* proto.h: the launcher protocol of attested release (docs/internals/cas-service.md,
 * "Attested release"): typed, length-checked messages over a SOCK_SEQPACKET unix
 * socket between `confidoc-cas run` (the launcher) and the CAS.
 *
 *   launcher                                CAS
 *   HELLO(session)                   ->
 *                                    <-     SPEC(uid, mount, config paths, nonce) | REFUSED(reason)
 *   MEASURE(exe, uid, config hashes,
 *           verifier, evidence)      ->
 *                                    <-     FILE(rel, public, content)... END(n) | REFUSED(reason)
 *
 * A message is `u32 type, u32 length, payload` (big-endian), one per
 * SEQPACKET record; in the payload a number is a u32, a flag a u8 (0 or 1) and a
 * string or blob `u32 length + bytes`. Every field is bounded (the RELEASE_*
 * limits below), every string is checked for its form, and nothing may follow
 * the last field: release_decode refuses anything else, and a receiver ends
 * the connection on a malformed message. Encoding and decoding are pure (no
 * I/O); release_send / release_recv (io.c) move one message. */
#ifndef CONFIDOC_RELEASE_PROTO_H
#define CONFIDOC_RELEASE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cas/policy.h"
#include "common/buf.h"
#include "common/diag.h"
#include "common/err.h"

#define RELEASE_NAME_MAX 64                      /* session and verifier names */
#define RELEASE_PATH_MAX 4096                    /* a config path, the mount, a file's rel path */
#define RELEASE_REASON_MAX 512                   /* a refusal's text */
#define RELEASE_HASH_LEN 64                      /* a SHA-256 in lowercase hex */
#define RELEASE_HASH_HEX (RELEASE_HASH_LEN + 1)  /* ... with its NUL */
#define RELEASE_CONTENT_MAX ((size_t)1 << 20)    /* one released file */
#define RELEASE_TOTAL_MAX ((size_t)8 << 20)      /* every file of one release together */
#define RELEASE_EVIDENCE_MAX ((size_t)64 * 1024) /* a hardware evidence blob */
#define RELEASE_MAX_FILES (POLICY_MAX_FILES + POLICY_MAX_SECRETS)
#define RELEASE_NONCE_LEN 32 /* SPEC's fresh random nonce: evidence binds to it */
#define RELEASE_HEADER 8     /* u32 type, u32 length */
/* The largest message: a FILE with the longest path and content. */
#define RELEASE_MSG_MAX (RELEASE_HEADER + 4 + RELEASE_PATH_MAX + 1 + 4 + RELEASE_CONTENT_MAX)
#define RELEASE_BUF_MAX (RELEASE_MSG_MAX + 1) /* a struct buf cap for any message (its NUL) */

enum release_type {
    RELEASE_HELLO = 1,
    RELEASE_SPEC = 2,
    RELEASE_REFUSED = 3,
    RELEASE_MEASURE = 4,
    RELEASE_FILE = 5,
    RELEASE_END = 6,
};

/* Bytes inside a decoded message (borrowed from its buffer; not NUL-terminated). */
struct release_view {
    const char *p;
    size_t len;
};

/* What a launcher measured (MEASURE). Strings are NUL-terminated here. */
struct release_measurement {
    char exe[RELEASE_HASH_HEX];                         /* SHA-256 of the command */
    uint32_t uid;                                       /* the uid the command will run as */
    char config[POLICY_MAX_MEASURED][RELEASE_HASH_HEX]; /* in SPEC's order */
    size_t nconfig;
    const char *verifier; /* evidence verifier name, or NULL / "" (no evidence) */
    const void *evidence; /* the evidence blob (borrowed) */
    size_t evidence_len;
};

/* One decoded message; the views point into the decoded buffer. Which fields
 * are set depends on type (the others are zero):
 *   HELLO    session (a policy name: 1 to 64 of a-z, 0-9, '_', '-')
 *   SPEC     uid, mount (absolute), config[nconfig] (absolute paths), nonce
 *            (exactly RELEASE_NONCE_LEN bytes, random per connection)
 *   REFUSED  reason (1 to 512 printable bytes)
 *   MEASURE  exe, uid, config[nconfig] (64 lowercase hex each), verifier
 *            (0 to 64 of the name characters), evidence (0 to 64 KiB; empty
 *            exactly when verifier is)
 *   FILE     rel (relative: no empty, "." or ".." component), public_file, content
 *   END      nfiles (how many FILE messages came before) */
struct release_msg {
    enum release_type type;
    struct release_view session, reason, mount, exe, verifier, evidence, rel, content, nonce;
    struct release_view config[POLICY_MAX_MEASURED];
    size_t nconfig;
    uint32_t uid;
    bool public_file;
    uint32_t nfiles;
};

/* Encoders: each appends one whole message to out (a buffer initialised with
 * buf_init(out, RELEASE_BUF_MAX) or a larger cap). CD_ERR_INVALID when a field
 * breaks the rules release_decode checks (so nothing malformed is ever sent),
 * CD_ERR_TOO_LARGE / CD_ERR_NOMEM from the buffer; out may then hold a partial
 * message (release it). */
cd_err release_enc_hello(struct buf *out, const char *session);
cd_err release_enc_spec(struct buf *out, uint32_t uid, const char *mount, const char *const *config,
                        size_t nconfig, const unsigned char nonce[RELEASE_NONCE_LEN]);
cd_err release_enc_refused(struct buf *out, const char *reason);
cd_err release_enc_measure(struct buf *out, const struct release_measurement *m);
cd_err release_enc_file(struct buf *out, const char *rel, bool public_file, const void *content,
                        size_t len);
cd_err release_enc_end(struct buf *out, uint32_t nfiles);

/* Decodes the one message in p[0..len) into *out. CD_ERR_INVALID for anything
 * malformed (unknown type, wrong length, a field out of bounds or of the
 * wrong form, trailing bytes); *out is then unspecified. */
cd_err release_decode(const void *p, size_t len, struct release_msg *out);

/* A view as a NUL-terminated copy into out (cap bytes): false when it does not fit. */
bool release_view_copy(struct release_view v, char *out, size_t cap);

/* ---- I/O (io.c) ---- */

/* Sends the one message in b (SOCK_SEQPACKET: one record) before deadline_ms
 * (as release_recv). CD_ERR_TIMEOUT; CD_ERR_IO on a failed or short send (a
 * record larger than the socket's send buffer included). */
cd_err release_send(int fd, const struct buf *b, int64_t deadline_ms);

/* Receives one record into buf[0..cap) before deadline_ms (CLOCK_MONOTONIC,
 * milliseconds, as release_now_ms) and decodes it into *msg (views into buf).
 * CD_ERR_TIMEOUT, CD_ERR_IO (error or the peer closed), CD_ERR_INVALID
 * (malformed, or longer than cap). */
cd_err release_recv(int fd, uint8_t *buf, size_t cap, int64_t deadline_ms, struct release_msg *msg);

/* Listens on the unix socket path (SOCK_SEQPACKET, close-on-exec, mode 0666:
 * every uid may connect, SO_PEERCRED says who it is), replacing a stale socket
 * there but never another kind of file. Problems in diag: CD_ERR_CONFIG (path
 * too long), CD_ERR_IO. */
cd_err release_listen(const char *path, int backlog, int *out, struct cd_diag *diag);

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t release_now_ms(void);

/* Raises fd's send buffer so that a RELEASE_MSG_MAX record fits (with
 * SO_SNDBUFFORCE when privileged); best effort. */
void release_sndbuf(int fd);

#endif
