/* seal_int.h: what the two files of the sealed state share (cas/seal.c: the
 * state key, its AEAD, the sealing key sources, seal_open; cas/seal_recovery.c:
 * the X25519 recovery wraps, seal_recover, seal_recovery_keygen). Private to
 * the cas module. */
#ifndef CONFIDOC_CAS_SEAL_INT_H
#define CONFIDOC_CAS_SEAL_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cas/pki.h"
#include "cas/seal.h"
#include "common/diag.h"
#include "common/file.h"
#include "common/err.h"

#define HDR_BYTES 5
#define NONCE_BYTES 12
#define TAG_BYTES 16
#define BLOB_VERSION 1
#define WRAP_VERSION 1
#define X25519_BYTES 32
#define WRAP_HDR_BYTES (HDR_BYTES + X25519_BYTES)
#define ID_BYTES 32
#define PAYLOAD_BYTES (2 + ID_BYTES + SEAL_KEY_BYTES)
#define STATE_KEY_NAME "state-key.sealed"
#define INDEX_NAME "index"
#define INDEX_MAX 4096
#define KEY_FILE_MAX 4096
#define KEYRING_DESC_MAX 255
/* OpenSSL's secure heap also holds the private-key BIGNUMs of every key the
 * process loads once it is set up; 1 MiB is far below RLIMIT_MEMLOCK's
 * usual 8 MiB. */
#define SECURE_HEAP_BYTES ((size_t)1024 * 1024)
#define HEX_KEY_LEN ((size_t)2 * SEAL_KEY_BYTES)
#define SHARES_MAX_BYTES ((size_t)SEAL_MAX_RECOVERY * SEAL_KEY_BYTES)
#define WRAP_INFO "confidoc-cas recovery wrap 1"
#define BOX_INFO "confidoc-cas box 1"
#define ID_CONTEXT "confidoc-cas state key id"
#define INDEX_HEAD "confidoc-cas recovery 1\n"

struct seal_key {
    unsigned char k[SEAL_KEY_BYTES];
};

/* STATE/cas, open and locked (seal_casdir_open). */
struct casdir {
    char root[PATH_MAX]; /* STATE/cas */
    int fd;
    int lockfd;
};

cd_err seal_secure_init(struct cd_diag *diag);
/* File contents in OpenSSL's secure heap (common/file.h allocator). */
extern const struct file_mem seal_secure_mem;
struct seal_key *seal_key_new(void);
/* The blob header: magic and version. */
void seal_header(unsigned char hdr[HDR_BYTES], const unsigned char magic[4], unsigned char v);
cd_err seal_aead_seal(const unsigned char key[SEAL_KEY_BYTES], const char *name, const void *pt,
                      size_t len, struct pki_buf *out);
cd_err seal_aead_open(const unsigned char key[SEAL_KEY_BYTES], const char *name, const void *in,
                      size_t len, struct pki_buf *out);
/* Writes a new file (O_EXCL) with data and mode, fsynced. */
cd_err seal_create_file(const char *path, const void *data, size_t len, mode_t mode);
/* The sealing key of src into key (may_create: a missing file or keyring key
 * is made; *created says so). */
cd_err seal_sealing_key(const struct seal_source *src, bool may_create,
                        unsigned char key[SEAL_KEY_BYTES], bool *created, struct cd_diag *diag);
cd_err seal_casdir_open(const char *state_dir, bool create, struct casdir *d, struct cd_diag *diag);
void seal_casdir_close(struct casdir *d);
cd_err seal_read_at(const struct casdir *d, const char *rel, size_t max, struct pki_buf *out);
cd_err seal_write_state_key(const struct casdir *d, const unsigned char sk[SEAL_KEY_BYTES],
                            const struct seal_key *k, struct cd_diag *diag);
/* Recovery (cas/seal_recovery.c): rec's keys and threshold are sane; the
 * wraps and the index of a first start. */
cd_err seal_recovery_check(const struct seal_recovery *rec, struct cd_diag *diag);
cd_err seal_recovery_write(const struct casdir *d, const struct seal_recovery *rec,
                           const struct seal_key *k, struct cd_diag *diag);

#endif
