/* audit_int.h: what the two files of the audit log share (cas/audit.c:
 * keys, writing lines, opening a log; cas/audit_verify.c: the strict line
 * parser and the verification of a whole log). Private to the cas module. */
#ifndef CONFIDOC_CAS_AUDIT_INT_H
#define CONFIDOC_CAS_AUDIT_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "cas/audit.h"

#define HASH_HEX_LEN 64
#define KEY_PEM_MAX ((size_t)16 * 1024)
#define SPKI_DER_MAX 256
#define SIG_DER_MAX 80 /* an ECDSA P-256 signature in DER: at most 72 bytes */
#define SIG_FIELD ",\"sig\":"
#define READ_BUF ((size_t)2 * AUDIT_LINE_MAX)
#define GENESIS_KIND "genesis"
#define AUDIT_N_KINDS 6 /* enum audit_kind's values (checked in audit.c) */
#define AUDIT_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

void audit_sha256_hex(const void *data, size_t n, char out[HASH_HEX_LEN + 1]);
bool audit_is_p256(const EVP_PKEY *k);
/* True when sig (DER, low-s only) is k's signature over data. */
bool audit_sig_ok(EVP_PKEY *k, const void *data, size_t n, unsigned char *sig, size_t siglen);
/* Decodes s[0..n) when it is the one canonical base64 spelling of its bytes. */
bool audit_b64_exact(const char *s, size_t n, unsigned char *out, size_t cap, size_t *outlen);
/* Opens a log file (no link, a regular file) with flags. */
cd_err audit_open_log(const char *path, int flags, struct cd_diag *diag, int *fd_out);
/* Verifies the log open on fd from its start; *head is its last line. */
cd_err audit_verify_fd(int fd, const char *label, const char *pin, const struct audit_head *expect,
                       struct cd_diag *diag, uint64_t *bad_line, struct audit_head *head);

#endif
