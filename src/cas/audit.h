/* audit.h: the CAS's audit log: one JSON line per event, each naming the hash
 * of the line before it (a chain from a genesis line that carries the signing
 * public key) and signed with the CAS's identity key (ECDSA P-256).
 *
 * audit_verify checks a log file offline: intact chain, consecutive sequence
 * numbers, every signature; optionally that the signing key is the pinned
 * one. Editing, removing, reordering or appending a line without the key is
 * found, and the first bad line named. Lines hold names, hashes and verdicts,
 * never secret material. */
#ifndef CONFIDOC_CAS_AUDIT_H
#define CONFIDOC_CAS_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"
#include "common/err.h"

#define AUDIT_LINE_MAX 8192
#define AUDIT_MAX_NAMES 64

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

/* Opens path for appending (0600), creating it with a genesis line when it is
 * new; an existing log is verified first (CD_ERR_CRYPTO if it does not verify
 * with key_pem's public key) and the chain continues from its last line.
 * key_pem is the signing key (PKCS#8 PEM), copied. */
cd_err audit_open(const char *path, const char *key_pem, size_t key_len, struct cd_diag *diag,
                  struct audit_log **out);
void audit_close(struct audit_log *log); /* NULL is a no-op */

/* Appends one signed line and fsyncs it. The time is the current time. */
cd_err audit_append(struct audit_log *log, const struct audit_event *ev);

/* Verifies the log file at path. pin: SHA-256 hex of the expected signing
 * key's DER SubjectPublicKeyInfo, or NULL (trust the genesis line's key).
 * CD_OK when intact; CD_ERR_CRYPTO (or CD_ERR_INVALID for a malformed line)
 * with *bad_line = the 1-based number of the first bad line, and its reason in diag. */
cd_err audit_verify(const char *path, const char *pin, struct cd_diag *diag, uint64_t *bad_line);

/* The name of an event kind, as written in the log ("release", ...). */
const char *audit_kind_name(enum audit_kind k);

#endif
