/* tls.c: OpenSSL for the CAS service: TLS 1.3 server and clients, the pin
 * check of attest, session signatures (tls.h). The only file of casd that
 * includes OpenSSL. */
#include "casd/tls.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/codec.h"

struct casd_tls_server {
    SSL_CTX *ctx;
};

struct casd_tls_conn {
    SSL_CTX *own_ctx; /* clients: their context */
    SSL *ssl;
    int fd;
};

/* Any certificate a client presents: its key is what authorizes (tls.h). */
static int accept_any(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

static SSL_CTX *new_ctx(const SSL_METHOD *m)
{
    SSL_CTX *ctx = SSL_CTX_new(m);
    if (ctx == NULL)
        return NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

cd_err casd_tls_server_new(const char *chain_pem, size_t chain_len, const char *key_pem,
                           size_t key_len, struct casd_tls_server **out)
{
    struct casd_tls_server *s = calloc(1, sizeof(*s));
    BIO *bio = NULL;
    X509 *x = NULL;
    EVP_PKEY *key = NULL;
    cd_err err = CD_ERR_CRYPTO;

    if (s == NULL)
        return CD_ERR_NOMEM;
    if ((s->ctx = new_ctx(TLS_server_method())) == NULL)
        goto out;
    if ((bio = BIO_new_mem_buf(chain_pem, (int)chain_len)) == NULL)
        goto out;
    if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL ||
        SSL_CTX_use_certificate(s->ctx, x) != 1)
        goto out;
    for (X509 *ca; (ca = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL;)
        if (SSL_CTX_add0_chain_cert(s->ctx, ca) != 1) {
            X509_free(ca);
            goto out;
        }
    ERR_clear_error(); /* the end of the chain */
    BIO_free(bio);
    if ((bio = BIO_new_mem_buf(key_pem, (int)key_len)) == NULL ||
        (key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL ||
        SSL_CTX_use_PrivateKey(s->ctx, key) != 1 || SSL_CTX_check_private_key(s->ctx) != 1)
        goto out;
    SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, accept_any);
    err = CD_OK;
    *out = s;
    s = NULL;
out:
    EVP_PKEY_free(key);
    X509_free(x);
    BIO_free(bio);
    casd_tls_server_free(s);
    ERR_clear_error();
    return err;
}

void casd_tls_server_free(struct casd_tls_server *s)
{
    if (s == NULL)
        return;
    SSL_CTX_free(s->ctx);
    free(s);
}

static cd_err io_error(SSL *ssl, int rc)
{
    int e = SSL_get_error(ssl, rc);
    ERR_clear_error();
    if ((e == SSL_ERROR_SYSCALL || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
        (errno == EAGAIN || errno == EWOULDBLOCK))
        return CD_ERR_TIMEOUT;
    return e == SSL_ERROR_SSL ? CD_ERR_CRYPTO : CD_ERR_IO;
}

cd_err casd_tls_accept(struct casd_tls_server *s, int fd, struct casd_tls_conn **out)
{
    struct casd_tls_conn *c = calloc(1, sizeof(*c));
    cd_err err;
    int rc;

    if (c == NULL) {
        close(fd);
        return CD_ERR_NOMEM;
    }
    c->fd = fd;
    if ((c->ssl = SSL_new(s->ctx)) == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        casd_tls_close(c);
        return CD_ERR_NOMEM;
    }
    if ((rc = SSL_accept(c->ssl)) != 1) {
        err = io_error(c->ssl, rc);
        SSL_free(c->ssl); /* no close_notify after a failed handshake */
        c->ssl = NULL;
        casd_tls_close(c);
        return err;
    }
    *out = c;
    return CD_OK;
}

cd_err casd_tls_read(struct casd_tls_conn *c, void *buf, size_t n, size_t *got)
{
    size_t r = 0;
    int rc = SSL_read_ex(c->ssl, buf, n, &r);
    if (rc != 1)
        return io_error(c->ssl, rc);
    *got = r;
    return CD_OK;
}

cd_err casd_tls_write_all(struct casd_tls_conn *c, const void *buf, size_t n)
{
    size_t w = 0;
    int rc = n == 0 ? 1 : SSL_write_ex(c->ssl, buf, n, &w);
    if (rc != 1)
        return io_error(c->ssl, rc);
    return w == n ? CD_OK : CD_ERR_IO;
}

static bool key_hash(EVP_PKEY *pk, char out[PKI_FP_HEX])
{
    unsigned char *der = NULL;
    int n = pk != NULL ? i2d_PUBKEY(pk, &der) : -1;
    if (n <= 0)
        return false;
    pki_sha256_hex(der, (size_t)n, out);
    OPENSSL_free(der);
    return true;
}

bool casd_tls_peer_key_hash(struct casd_tls_conn *c, char out[PKI_FP_HEX])
{
    X509 *x = SSL_get1_peer_certificate(c->ssl);
    bool ok = x != NULL && key_hash(X509_get0_pubkey(x), out);
    X509_free(x);
    return ok;
}

void casd_tls_close(struct casd_tls_conn *c)
{
    if (c == NULL)
        return;
    if (c->ssl != NULL) {
        (void)SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->own_ctx);
    if (c->fd >= 0)
        close(c->fd);
    ERR_clear_error();
    free(c);
}

/* ---- clients ---- */

static void set_timeouts(int fd, int seconds)
{
    struct timeval tv = {.tv_sec = seconds, .tv_usec = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int dial(const char *host, const char *port, int seconds, struct cd_diag *diag)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    int fd = -1;
    int rc = getaddrinfo(host, port, &hints, &res);

    if (rc != 0) {
        cd_diag_add(diag, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        set_timeouts(fd, seconds);
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0)
        cd_diag_add(diag, "cannot connect to %s:%s: %s", host, port, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

static bool is_ip(const char *host)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host);
    bool yes = ip != NULL;
    ASN1_OCTET_STRING_free(ip);
    return yes;
}

/* The CA certificate in pem[0..len) as the only trust anchor of ctx. */
static bool load_ca_pem(SSL_CTX *ctx, const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    bool ok = x != NULL && X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x) == 1;
    X509_free(x);
    BIO_free(bio);
    return ok;
}

/* The client certificate chain and key from memory. */
static bool load_identity_pem(SSL_CTX *ctx, const struct casd_tls_client *c)
{
    BIO *cb = BIO_new_mem_buf(c->cert_pem, (int)c->cert_pem_len);
    BIO *kb = BIO_new_mem_buf(c->key_pem, (int)c->key_pem_len);
    X509 *x = cb != NULL ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = kb != NULL ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    bool ok = x != NULL && k != NULL && SSL_CTX_use_certificate(ctx, x) == 1 &&
              SSL_CTX_use_PrivateKey(ctx, k) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    return ok;
}

static cd_err client_ctx(const struct casd_tls_client *c, SSL_CTX **out, struct cd_diag *diag)
{
    SSL_CTX *ctx = new_ctx(TLS_client_method());

    if (ctx == NULL)
        return CD_ERR_CRYPTO;
    if (c->cacert != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, c->cacert, NULL) != 1) {
            cd_diag_add(diag, "cannot load the CA certificate %s", c->cacert);
            goto bad;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else if (c->cacert_pem != NULL) {
        if (!load_ca_pem(ctx, c->cacert_pem, c->cacert_pem_len)) {
            cd_diag_add(diag, "cannot load the CA certificate");
            goto bad;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (c->cert != NULL || c->key != NULL) {
        if (c->cert == NULL || c->key == NULL ||
            SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            cd_diag_add(diag, "cannot load the client certificate and key (%s, %s)",
                        c->cert != NULL ? c->cert : "-", c->key != NULL ? c->key : "-");
            goto bad;
        }
    } else if (c->cert_pem != NULL && !load_identity_pem(ctx, c)) {
        cd_diag_add(diag, "cannot load the client certificate and key");
        goto bad;
    }
    *out = ctx;
    return CD_OK;
bad:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return CD_ERR_CONFIG;
}

cd_err casd_tls_connect(const struct casd_tls_client *c, struct casd_tls_conn **out,
                        struct cd_diag *diag)
{
    struct casd_tls_conn *conn = calloc(1, sizeof(*conn));
    cd_err err;
    int rc;

    if (conn == NULL)
        return CD_ERR_NOMEM;
    conn->fd = -1;
    if ((err = client_ctx(c, &conn->own_ctx, diag)) != CD_OK)
        goto bad;
    err = CD_ERR_IO;
    if ((conn->fd = dial(c->host, c->port, c->timeout_seconds, diag)) < 0)
        goto bad;
    err = CD_ERR_NOMEM;
    if ((conn->ssl = SSL_new(conn->own_ctx)) == NULL || SSL_set_fd(conn->ssl, conn->fd) != 1)
        goto bad;
    if (is_ip(c->host)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(conn->ssl), c->host);
    } else {
        SSL_set_tlsext_host_name(conn->ssl, c->host);
        SSL_set1_host(conn->ssl, c->host);
    }
    if ((rc = SSL_connect(conn->ssl)) != 1) {
        long v = SSL_get_verify_result(conn->ssl);
        err = io_error(conn->ssl, rc);
        if (v != X509_V_OK)
            cd_diag_add(diag, "the server at %s:%s does not verify: %s", c->host, c->port,
                        X509_verify_cert_error_string(v));
        else
            cd_diag_add(diag, "TLS handshake with %s:%s failed: %s", c->host, c->port,
                        cd_strerror(err));
        SSL_free(conn->ssl);
        conn->ssl = NULL;
        goto bad;
    }
    *out = conn;
    return CD_OK;
bad:
    casd_tls_close(conn);
    return err;
}

/* ---- attest ---- */

static cd_err pem_of(X509 *x, struct pki_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *p = NULL;
    cd_err err = CD_ERR_NOMEM;

    if (bio != NULL && PEM_write_bio_X509(bio, x) == 1) {
        long n = BIO_get_mem_data(bio, &p);
        if (n > 0)
            err = pki_buf_copy(p, (size_t)n, out);
    }
    BIO_free(bio);
    return err;
}

/* The checks of casd_tls_attest on a finished handshake. */
static cd_err check_chain(SSL *ssl, const char *pin, struct pki_buf *out, struct cd_diag *diag)
{
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    char fp[PKI_FP_HEX];
    int n = chain != NULL ? sk_X509_num(chain) : 0;

    if (leaf == NULL || n < 2) {
        cd_diag_add(diag, "the server sent no CA certificate with its own");
        return CD_ERR_AUTH;
    }
    X509 *ca = sk_X509_value(chain, n - 1);
    EVP_PKEY *capub = X509_get0_pubkey(ca);
    if (X509_cmp(sk_X509_value(chain, 0), leaf) != 0 || capub == NULL ||
        X509_check_issued(ca, leaf) != X509_V_OK || X509_verify(leaf, capub) != 1) {
        cd_diag_add(diag, "the server's certificate is not issued by the CA it sent");
        return CD_ERR_AUTH;
    }
    if (X509_check_issued(ca, ca) != X509_V_OK || X509_verify(ca, capub) != 1 ||
        X509_check_ca(ca) < 1) {
        cd_diag_add(diag, "the CA the server sent is not a self-signed CA");
        return CD_ERR_AUTH;
    }
    if (!key_hash(capub, fp))
        return CD_ERR_CRYPTO;
    if (strlen(pin) != PKI_FP_HEX - 1 || CRYPTO_memcmp(fp, pin, PKI_FP_HEX - 1) != 0) {
        cd_diag_add(diag, "the CAS's identity key does not match the pin (it hashes to %s)", fp);
        return CD_ERR_AUTH;
    }
    return pem_of(ca, out);
}

cd_err casd_tls_attest(const char *host, const char *port, const char *pin, int timeout_seconds,
                       struct pki_buf *ca_pem_out, struct cd_diag *diag)
{
    struct casd_tls_client c = {.host = host, .port = port, .timeout_seconds = timeout_seconds};
    struct casd_tls_conn *conn = NULL;
    char lower[PKI_FP_HEX];
    size_t n = strlen(pin);
    cd_err err;

    if (n != PKI_FP_HEX - 1) {
        cd_diag_add(diag, "a pin is 64 hex digits");
        return CD_ERR_INVALID;
    }
    for (size_t i = 0; i <= n; i++)
        lower[i] = (pin[i] >= 'A' && pin[i] <= 'F') ? (char)(pin[i] - 'A' + 'a') : pin[i];
    if ((err = casd_tls_connect(&c, &conn, diag)) != CD_OK)
        return err;
    err = check_chain(conn->ssl, lower, ca_pem_out, diag);
    casd_tls_close(conn);
    ERR_clear_error();
    return err;
}

/* ---- signatures ---- */

cd_err casd_sig_sign(const char *key_pem, size_t key_len, const void *data, size_t len,
                     struct pki_buf *sig_out, struct pki_buf *pub_out)
{
    BIO *bio = BIO_new_mem_buf(key_pem, (int)key_len), *pb = NULL;
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t siglen = 0;
    char *p = NULL;
    cd_err err = CD_ERR_CRYPTO;

    if (key == NULL || md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, data, len) != 1)
        goto out;
    if ((sig_out->data = malloc(siglen + 1)) == NULL) {
        err = CD_ERR_NOMEM;
        goto out;
    }
    if (EVP_DigestSign(md, (unsigned char *)sig_out->data, &siglen, data, len) != 1) {
        pki_buf_release(sig_out);
        goto out;
    }
    sig_out->len = siglen;
    if ((pb = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_PUBKEY(pb, key) != 1) {
        pki_buf_release(sig_out);
        goto out;
    }
    long n = BIO_get_mem_data(pb, &p);
    if (n <= 0 || (pub_out->data = malloc((size_t)n + 1)) == NULL) {
        pki_buf_release(sig_out);
        goto out;
    }
    memcpy(pub_out->data, p, (size_t)n);
    pub_out->data[n] = '\0';
    pub_out->len = (size_t)n;
    err = CD_OK;
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    BIO_free(bio);
    BIO_free(pb);
    ERR_clear_error();
    return err;
}

cd_err casd_sig_verify(const char *pub_pem, size_t pub_len, const void *sig, size_t sig_len,
                       const void *data, size_t len, char keyhash[PKI_FP_HEX])
{
    BIO *bio = BIO_new_mem_buf(pub_pem, (int)pub_len);
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    cd_err err = CD_ERR_INVALID;

    if (key == NULL || md == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
        goto out;
    err = CD_ERR_CRYPTO;
    if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestVerify(md, sig, sig_len, data, len) == 1 && key_hash(key, keyhash))
        err = CD_OK;
out:
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    BIO_free(bio);
    ERR_clear_error();
    return err;
}

cd_err casd_cert_file_key_hash(const char *path, char out[PKI_FP_HEX])
{
    BIO *bio = BIO_new_file(path, "r");
    X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    cd_err err = x != NULL && key_hash(X509_get0_pubkey(x), out) ? CD_OK : CD_ERR_CRYPTO;
    X509_free(x);
    BIO_free(bio);
    ERR_clear_error();
    return err;
}
