/* tls.h: TLS 1.3 for the CAS service (the only file of casd that sees
 * OpenSSL): the network worker's server side, the clients of `attest` and
 * `session`, the pin check of `attest`, and ECDSA signatures over session
 * texts. Client certificates are requested but optional, and any
 * certificate a client presents is accepted: authorization is by the SHA-256
 * of its DER SubjectPublicKeyInfo (its "key hash"), compared by the parent
 * against a session's access lists and the --admin hashes; the handshake
 * proves the client holds that key. */
#ifndef CONFIDOC_CASD_TLS_H
#define CONFIDOC_CASD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "cas/pki.h"
#include "common/diag.h"
#include "common/err.h"

#define CASD_TLS_HANDSHAKE_SECONDS 10

struct casd_tls_server;
struct casd_tls_conn;

/* A TLS 1.3-only server context for the chain (leaf first, then the CA) and
 * the leaf's key, given as PEM in memory (the key is not kept outside
 * OpenSSL). CD_ERR_CRYPTO when they do not load or do not match. */
cd_err casd_tls_server_new(const char *chain_pem, size_t chain_len, const char *key_pem,
                           size_t key_len, struct casd_tls_server **out);
void casd_tls_server_free(struct casd_tls_server *s); /* NULL is a no-op */

/* Runs the server handshake on the connected socket fd (which the
 * connection owns from now on, also on failure: closed). The socket's
 * SO_RCVTIMEO/SO_SNDTIMEO bound every read and write. CD_ERR_IO /
 * CD_ERR_TIMEOUT / CD_ERR_CRYPTO. */
cd_err casd_tls_accept(struct casd_tls_server *s, int fd, struct casd_tls_conn **out);

struct casd_tls_client {
    const char *host, *port;
    const char *cacert;     /* PEM file the server's chain must verify against (and the
                               host name or IP); NULL: no verification (attest only) */
    const char *cert, *key; /* client certificate and key files, or NULL */
    /* The same three in memory (PEM), used when the file is NULL: the node
     * agent's CA comes from attest, its identity maybe from memory. */
    const char *cacert_pem, *cert_pem, *key_pem;
    size_t cacert_pem_len, cert_pem_len, key_pem_len;
    int timeout_seconds; /* connect, handshake and every read and write */
};

/* Connects and runs the client handshake (TLS 1.3 only). Problems in diag. */
cd_err casd_tls_connect(const struct casd_tls_client *c, struct casd_tls_conn **out,
                        struct cd_diag *diag);

/* Reads at most n bytes (*got > 0), CD_ERR_IO at the end of the stream or on
 * an error, CD_ERR_TIMEOUT when the socket's timeout passed. */
cd_err casd_tls_read(struct casd_tls_conn *c, void *buf, size_t n, size_t *got);
cd_err casd_tls_write_all(struct casd_tls_conn *c, const void *buf, size_t n);
/* The key hash of the certificate the peer presented: false when none. */
bool casd_tls_peer_key_hash(struct casd_tls_conn *c, char out[PKI_FP_HEX]);
/* Sends close_notify (best effort), frees the connection and closes its socket. */
void casd_tls_close(struct casd_tls_conn *c); /* NULL is a no-op */

/* confidoc-cas attest: connects without verifying anything, then checks what
 * the server sent: its leaf (the certificate of the handshake) is issued and
 * signed by the last certificate of its chain, that one is a self-signed CA,
 * and the SHA-256 (hex) of the CA's DER SubjectPublicKeyInfo is pin
 * (constant-time compare). Only then *ca_pem_out gets the CA's PEM.
 * CD_ERR_AUTH on a mismatch (why in diag), CD_ERR_IO/CD_ERR_CRYPTO otherwise. */
cd_err casd_tls_attest(const char *host, const char *port, const char *pin, int timeout_seconds,
                       struct pki_buf *ca_pem_out, struct cd_diag *diag);

/* ECDSA-SHA256 (DER) over data with the private key in key_pem; pub_out
 * gets the key's SubjectPublicKeyInfo PEM. */
cd_err casd_sig_sign(const char *key_pem, size_t key_len, const void *data, size_t len,
                     struct pki_buf *sig_out, struct pki_buf *pub_out);
/* Verifies sig (DER) over data with the public key pub_pem (an EC key, PEM
 * SubjectPublicKeyInfo); keyhash gets the key's hash. CD_ERR_CRYPTO when it
 * does not verify, CD_ERR_INVALID when the key does not parse. */
cd_err casd_sig_verify(const char *pub_pem, size_t pub_len, const void *sig, size_t sig_len,
                       const void *data, size_t len, char keyhash[PKI_FP_HEX]);

/* The key hash of the certificate in the PEM file path (for operators). */
cd_err casd_cert_file_key_hash(const char *path, char out[PKI_FP_HEX]);

#endif
