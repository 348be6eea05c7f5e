/* audit.h: the CAS's audit log: one JSON line per event, each naming the hash
 * of the line before it (a chain from a genesis line that carries the signing
 * public key) and signed with the CAS's identity key (ECDSA P-256).
 *
 * audit_verify checks a log file offline: intact chain, consecutive sequence
 * numbers, every signature; optionally that the signing key is the pinned
 * one. Editing, removing, reordering or appending a line without the key is
 * found, and the first bad line named; cutting lines off the end is found
 * against the sealed head (struct audit_head). Lines hold names, hashes and
 * verdicts, never secret material. The line format and what each check means:
 * docs/internals/cas-service.md, "Audit log". */
#ifndef CONFIDOC_CAS_AUDIT_H
#define CONFIDOC_CAS_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"
#include "common/err.h"

#define AUDIT_LINE_MAX 8192
#define AUDIT_MAX_NAMES 64
/* Bounds on each field as written (escaped), so that a line always fits. */
#define AUDIT_SESSION_MAX 256
#define AUDIT_WHO_MAX 512
#define AUDIT_MEASUREMENT_MAX 2048
#define AUDIT_NAME_MAX 128     /* one secret's name */
#define AUDIT_SECRETS_MAX 2048 /* the whole list */
#define AUDIT_FIELD_HASH_MAX 128
#define AUDIT_REASON_MAX 1024

struct audit_log;

enum audit_kind {
    AUDIT_SESSION_CREATE,
    AUDIT_SESSION_UPDATE,
    AUDIT_SESSION_REFUSED, /* a create or update refused */
    AUDIT_RELEASE,         /* secrets released to a process */
    AUDIT_RELEASE_REFUSED, /* a release refused */
    AUDIT_START,           /* the CAS started (after the genesis line) */
};

struct audit_event {
    enum audit_kind kind;
    const char *session;        /* may be NULL */
    const char *who;            /* "uid=0 pid=123 exe=<sha256>" or "client=<key hash>"; NULL: "-" */
    const char *measurement;    /* "exe=<sha256> uid=N config=<path>:<sha256>,..." or NULL */
    const char *const *secrets; /* names of the secrets (or files) released; n_secrets */
    size_t n_secrets;
    const char *hash;   /* a session's new hash, or NULL */
    const char *reason; /* why refused (text; sanitised to one line), or NULL */
};

/* The head of a log: the seq and the SHA-256 (hex) of its last line's bytes
 * (with the newline). A chain alone cannot show that lines were cut from its
 * end (what remains is a shorter, intact chain), so the service keeps the head
 * sealed in its state after each append and passes it back as expect: the
 * log must then hold a line with that seq and hash (lines after it are fine:
 * they are chained and signed, e.g. one appended just before a crash). */
#define AUDIT_HASH_HEX 65
struct audit_head {
    uint64_t seq;
    char hash[AUDIT_HASH_HEX];
};

/* Opens path for appending (0600), creating it with a genesis line when it is
 * new; an existing log is verified first (CD_ERR_CRYPTO if it does not verify
 * with key_pem's public key, CD_ERR_INVALID when a line is malformed or the
 * last one is torn: no trailing newline, a write cut short; it is never
 * truncated silently) and the chain continues from its last line. The file is
 * locked (flock) while open: a second opener gets CD_ERR_CONFLICT. A symbolic
 * link, a file that is not regular or is writable by group or others is
 * CD_ERR_CONFIG. key_pem is the signing key (PKCS#8 PEM, ECDSA P-256),
 * copied. */
cd_err audit_open(const char *path, const char *key_pem, size_t key_len, struct cd_diag *diag,
                  struct audit_log **out);
/* The same, and the existing log must reach expect (see struct audit_head;
 * NULL: no check). A new log is created only when expect is NULL. */
cd_err audit_open_expect(const char *path, const char *key_pem, size_t key_len,
                         const struct audit_head *expect, struct cd_diag *diag,
                         struct audit_log **out);
void audit_close(struct audit_log *log); /* NULL is a no-op */

/* Appends one signed line (one write(2)) and fsyncs it; thread-safe. The
 * time is the current time. Text fields are sanitised (quote, backslash and
 * control bytes escaped, bytes above 0x7e written as '?') and bounded (see
 * AUDIT_*_MAX; a longer field is cut and ends in "..."), so every event fits
 * in one line. After a failed write the log refuses further appends
 * (CD_ERR_IO): its end is uncertain until it is verified again. */
cd_err audit_append(struct audit_log *log, const struct audit_event *ev);

/* Verifies the log file at path. pin: SHA-256 hex of the expected signing
 * key's DER SubjectPublicKeyInfo, or NULL (trust the genesis line's key).
 * expect: the sealed head (above), or NULL. CD_OK when intact, and *head (may
 * be NULL) is the log's head (entries = head->seq + 1); CD_ERR_CRYPTO (or
 * CD_ERR_INVALID for a malformed or torn line) with *bad_line = the 1-based
 * number of the first bad line, and its reason in diag; CD_ERR_NOT_FOUND,
 * CD_ERR_IO or CD_ERR_CONFIG (not a regular file, a symbolic link) for the
 * file itself, with *bad_line = 0. */
cd_err audit_verify(const char *path, const char *pin, const struct audit_head *expect,
                    struct cd_diag *diag, uint64_t *bad_line, struct audit_head *head);

/* The same on a log's bytes in memory (data[0..len), need not be
 * NUL-terminated); messages name label. For the fuzz target and tests. */
cd_err audit_verify_buffer(const char *label, const char *data, size_t len, const char *pin,
                           const struct audit_head *expect, struct cd_diag *diag,
                           uint64_t *bad_line, struct audit_head *head);

/* The head of an open log (its last line; the genesis line when nothing was
 * appended). For the service to seal after each append. */
void audit_head(struct audit_log *log, uint64_t *seq, char hash[AUDIT_HASH_HEX]);

/* The name of an event kind, as written in the log ("release", ...). */
const char *audit_kind_name(enum audit_kind k);

#endif
