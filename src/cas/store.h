/* store.h: the CAS's private store (STATE/cas/, 0700) and atomic file writes.
 *
 * Layout: STATE/cas/POLICY/SECRET.meta (version, template hash) and per version
 * SECRET.vN.pem (key or certificate) or SECRET.vN.bin (symmetric key bytes),
 * every file 0600. A lock file STATE/cas/.lock serialises CAS runs. */
#ifndef CONFIDOC_CAS_STORE_H
#define CONFIDOC_CAS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cas/pki.h"
#include "common/diag.h"
#include "common/err.h"

#define STORE_FILE_MAX ((size_t)1024 * 1024)
#define STORE_LOCK_WAIT_SECONDS 30
#define STORE_BLOB_NAME_MAX 128

struct cas_store;
struct seal_key; /* cas/seal.h */

/* Creates STATE (0711 if missing) and STATE/cas (0700), takes the lock (waiting
 * at most STORE_LOCK_WAIT_SECONDS: CD_ERR_TIMEOUT).
 * key NULL: files are plaintext (offline `confidoc-cas provision`). key
 * non-NULL (from seal_open; it must outlive the store): every file the store
 * writes (metadata, material, blobs) is sealed with seal_encrypt, its name
 * being its path relative to STATE/cas ("POLICY/SECRET.meta"), and opened
 * with seal_decrypt: a file altered, truncated, swapped for another or sealed
 * under another key is CD_ERR_CRYPTO. */
cd_err store_open(const char *state_dir, const struct seal_key *key, struct cas_store **out);
void store_close(struct cas_store *st); /* releases the lock; NULL is a no-op */

/* Takes the lock file .lock inside the open directory dirfd (STATE/cas;
 * created 0600), waiting at most STORE_LOCK_WAIT_SECONDS (CD_ERR_TIMEOUT);
 * closing *lockfd releases it. (flock: a second lock through another open
 * of the file waits even in the same process.) */
cd_err store_lock(int dirfd, int *lockfd);

/* A named blob in a directory of STATE/cas (the service's sessions:
 * store_blob_put(st, "sessions", "NAME.yaml", ...)): STATE/cas/DIR/NAME,
 * 0600, DIR created 0700, sealed like every store file (name "DIR/NAME").
 * dir and name: 1..STORE_BLOB_NAME_MAX bytes of [A-Za-z0-9._-], not starting
 * with '.' (else CD_ERR_INVALID); data at most STORE_FILE_MAX bytes
 * (CD_ERR_TOO_LARGE). store_blob_get: CD_ERR_NOT_FOUND when absent,
 * CD_ERR_CRYPTO when altered or swapped; out is released by the caller. */
cd_err store_blob_put(struct cas_store *st, const char *dir, const char *name, const void *data,
                      size_t len);
cd_err store_blob_get(struct cas_store *st, const char *dir, const char *name, struct pki_buf *out);

struct store_meta {
    unsigned version;      /* newest version; 0 = nothing stored */
    char tmpl[PKI_FP_HEX]; /* template hash of that version ("" if none) */
};

/* CD_ERR_NOT_FOUND when the secret was never stored; CD_ERR_IO on a corrupt file
 * (CD_ERR_CRYPTO, sealed, when it does not open). */
cd_err store_meta_get(struct cas_store *st, const char *policy, const char *secret,
                      struct store_meta *out);
cd_err store_meta_put(struct cas_store *st, const char *policy, const char *secret,
                      const struct store_meta *m);
/* One version's material; ext is "pem" or "bin". out must be released by the caller. */
cd_err store_get(struct cas_store *st, const char *policy, const char *secret, unsigned version,
                 const char *ext, struct pki_buf *out);
cd_err store_put(struct cas_store *st, const char *policy, const char *secret, unsigned version,
                 const char *ext, const void *data, size_t len);

/* ---- generic file helpers (also used for injection files) ---- */

/* Reads a regular file of at most max bytes (NUL-terminated copy), never through a
 * link; errors as common/file.h file_read (CD_ERR_NOT_FOUND if absent). */
cd_err store_read_file(const char *path, size_t max, struct pki_buf *out);
/* Writes path atomically (temporary file with mode, fsync, rename, fsync of the
 * directory) unless it already has exactly this content, mode and owner; then
 * *changed is false. uid/gid (uid_t)-1: leave the caller's. */
cd_err store_write_file(const char *path, const void *data, size_t len, mode_t mode, uid_t uid,
                        gid_t gid, bool *changed);
/* Creates base/rel (each missing component of rel with mode, chowned to uid/gid
 * where they are not (uid_t)-1/(gid_t)-1); existing components of rel get mode
 * and owner too. No component of rel may be a symbolic link ("." and ".." are
 * refused: CD_ERR_INVALID): each is opened with O_NOFOLLOW and changed through
 * its descriptor, so a link planted by whoever could write a directory on the
 * way is never followed (CD_ERR_IO). */
cd_err store_mkdirs(const char *base, const char *rel, mode_t mode, uid_t uid, gid_t gid);
/* store_mkdirs, and the last directory stays open: *out is its O_DIRECTORY
 * descriptor (the caller closes it). */
cd_err store_open_dirs(const char *base, const char *rel, mode_t mode, uid_t uid, gid_t gid,
                       int *out);
/* store_write_file for the entry name (no '/') of the open directory dirfd:
 * the temporary file is created with O_EXCL and renamed over name inside
 * dirfd; an existing name is read with O_NOFOLLOW and repaired with
 * fchmod/fchown. A symbolic link at name is replaced, never followed. */
cd_err store_write_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                      uid_t uid, gid_t gid, bool *changed);

/* Seals in place every plaintext file of the store's policy directories
 * (STATE/cas/POLICY/FILE, as offline provision wrote them) under the state
 * key, each under its relative path, as store_open(key) would have written
 * it; files already sealed under key are left as they are (a rerun after an
 * interruption), one that carries the sealed magic but does not open is
 * CD_ERR_CRYPTO (never sealed twice). recovery/ and the top-level files are
 * not touched. Takes the store's lock. *count: the files sealed now. */
cd_err store_import_plaintext(const char *state_dir, const struct seal_key *key, size_t *count,
                              struct cd_diag *diag);

#endif
