/* pki.h: key pairs, X.509 certificates and random keys for the CAS (OpenSSL 3).
 *
 * Only this module includes OpenSSL headers in src/cas. Keys and certificates
 * cross the interface as PEM text in heap buffers (struct pki_buf); a buffer
 * holding a private key is wiped by pki_buf_release. Nothing here logs. */
#ifndef CONFIDOC_CAS_PKI_H
#define CONFIDOC_CAS_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/err.h"

#define PKI_FP_HEX 65 /* SHA-256 in hex plus NUL */
#define PKI_MAX_SANS 32

/* A heap buffer, NUL-terminated (len excludes the NUL). */
struct pki_buf {
    char *data;
    size_t len;
};

/* Wipes and frees b->data; leaves b empty. Safe on an empty buffer. */
void pki_buf_release(struct pki_buf *b);
/* A NUL-terminated heap copy of p[0..n) in out (CD_ERR_NOMEM; out untouched then). */
cd_err pki_buf_copy(const void *p, size_t n, struct pki_buf *out);

/* A new ECDSA P-256 key, as PKCS#8 PEM. */
cd_err pki_key_generate(struct pki_buf *pem_out);
/* SHA-256 (hex) of the DER SubjectPublicKeyInfo of a PEM private key. */
cd_err pki_key_fingerprint(const char *key_pem, size_t len, char fp_out[PKI_FP_HEX]);

struct pki_cert_req {
    const char *common_name;
    bool is_ca;
    int pathlen;    /* CAs: basicConstraints pathlen */
    unsigned usage; /* leaves: POLICY_USAGE_SERVER | POLICY_USAGE_CLIENT bits */
    const char *const *dns;
    size_t ndns;
    const char *const *ip;
    size_t nip;
    unsigned validity_days;
    time_t now; /* notBefore = now - 5 minutes */
};

#define PKI_USAGE_SERVER 1u
#define PKI_USAGE_CLIENT 2u

/* Issues a certificate for the key in key_pem, signed by issuer_key_pem and
 * named by issuer_cert_pem; both issuer arguments NULL: self-signed. */
cd_err pki_cert_issue(const struct pki_cert_req *req, const char *key_pem, size_t key_len,
                      const char *issuer_cert_pem, size_t issuer_cert_len,
                      const char *issuer_key_pem, size_t issuer_key_len, struct pki_buf *pem_out);

/* notAfter (as time_t) and the SHA-256 (hex) of the DER certificate. */
cd_err pki_cert_info(const char *cert_pem, size_t len, time_t *not_after, char fp_out[PKI_FP_HEX]);

/* True when the certificate's public key is the one of key_pem. */
cd_err pki_cert_matches_key(const char *cert_pem, size_t cert_len, const char *key_pem,
                            size_t key_len, bool *match);

/* n bytes from the OpenSSL private DRBG. */
cd_err pki_random(unsigned char *buf, size_t n);

/* SHA-256 of data, in hex. */
void pki_sha256_hex(const void *data, size_t len, char out[PKI_FP_HEX]);

/* Wipes n bytes (OPENSSL_cleanse). */
void pki_wipe(void *p, size_t n);

#endif
