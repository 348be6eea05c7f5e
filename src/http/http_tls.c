/* http_tls.c: the http module's TLS side: PEM files, GnuTLS credentials, client certificates. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "common/file.h"
#include "http/http_int.h"
#include "log/log.h"

/* PEM files (certificate chain, key, CA bundle) larger than this are refused. */
#define HTTP_PEM_MAX ((size_t)256 * 1024)

/* Key purpose a client certificate must allow (checked by GnuTLS during the
 * handshake and again on the first request). GnuTLS keeps the pointer. */
static gnutls_typed_vdata_st client_purpose[1] = {
    {.type = GNUTLS_DT_KEY_PURPOSE_OID, .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT},
};

/* Reads a whole PEM file (1..HTTP_PEM_MAX bytes) into a NUL-terminated heap
 * buffer (common/file). The caller wipes and frees it. */
cd_err http_read_pem(const char *path, char **out, size_t *outlen)
{
    struct file_read_opts opts = {.max = HTTP_PEM_MAX, .flags = 0, .mem = NULL};
    struct file_data f;
    cd_err err = file_read(path, &opts, &f);

    if (err != CD_OK) {
        log_errorx("%s: %s (a regular file of 1..%zu bytes)", path, f.why, HTTP_PEM_MAX);
        return err == CD_ERR_NOMEM ? err : CD_ERR_CONFIG;
    }
    if (f.len == 0) {
        file_data_release(&f, NULL);
        log_errorx("%s: empty (a regular file of 1..%zu bytes)", path, HTTP_PEM_MAX);
        return CD_ERR_CONFIG;
    }
    *out = f.data;
    *outlen = f.len;
    return CD_OK;
}

/* Loads the key pair and the CA into throw-away GnuTLS credentials, so that a
 * bad file is reported as a configuration error rather than a bind failure. */
cd_err http_check_tls_material(const char *cert, size_t certlen, const char *key, size_t keylen,
                               const char *ca, size_t calen)
{
    gnutls_certificate_credentials_t cred = NULL;
    gnutls_datum_t dc = {(unsigned char *)cert, (unsigned)certlen};
    gnutls_datum_t dk = {(unsigned char *)key, (unsigned)keylen};
    gnutls_datum_t da = {(unsigned char *)ca, (unsigned)calen};
    cd_err err = CD_ERR_CONFIG;
    int r;

    if (gnutls_certificate_allocate_credentials(&cred) != GNUTLS_E_SUCCESS)
        return CD_ERR_NOMEM;
    r = gnutls_certificate_set_x509_key_mem(cred, &dc, &dk, GNUTLS_X509_FMT_PEM);
    if (r < 0) {
        log_errorx("server certificate or key rejected: %s", gnutls_strerror(r));
        goto out;
    }
    r = gnutls_certificate_set_x509_trust_mem(cred, &da, GNUTLS_X509_FMT_PEM);
    if (r <= 0) {
        log_errorx("client CA file holds no usable certificate");
        goto out;
    }
    err = CD_OK;
out:
    gnutls_certificate_free_credentials(cred);
    return err;
}

/* Checks the client certificate of this connection: present, chains to the
 * configured CA, allowed for TLS client use, subject in the allow list.
 * CD_ERR_AUTH when refused: logged here, where the connection is refused. */
cd_err http_verify_client(http_server *srv, struct MHD_Connection *conn, struct http_conn *hc)
{
    const union MHD_ConnectionInfo *ci;
    gnutls_session_t session;
    const gnutls_datum_t *certs;
    unsigned ncerts = 0;
    unsigned status = 0;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t dn = {NULL, 0};
    const char *why = NULL;
    bool ok = false;

    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci == NULL || ci->tls_session == NULL) {
        why = "no TLS session";
        goto out;
    }
    session = ci->tls_session;
    certs = gnutls_certificate_get_peers(session, &ncerts);
    if (certs == NULL || ncerts == 0) {
        why = "no client certificate";
        goto out;
    }
    if (gnutls_certificate_verify_peers(session, client_purpose, 1, &status) < 0 || status != 0) {
        why = "client certificate does not verify";
        goto out;
    }
    if (gnutls_x509_crt_init(&crt) < 0 ||
        gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) < 0 ||
        gnutls_x509_crt_get_dn3(crt, &dn, 0) < 0) {
        why = "cannot read the client certificate subject";
        goto out;
    }
    if (dn.size == 0 || dn.size >= HTTP_SUBJECT_MAX || memchr(dn.data, '\0', dn.size) != NULL) {
        why = "client certificate subject unusable";
        goto out;
    }
    memcpy(hc->subject, dn.data, dn.size);
    hc->subject[dn.size] = '\0';
    if (srv->n_subjects > 0) {
        size_t i;
        for (i = 0; i < srv->n_subjects; i++) {
            if (strcmp(hc->subject, srv->subjects[i]) == 0)
                break;
        }
        if (i == srv->n_subjects) {
            why = "client certificate subject not allowed";
            goto out;
        }
    }
    ok = true;
out:
    if (!ok) {
        explicit_bzero(hc->subject, sizeof(hc->subject));
        log_warnx("connection refused: %s", why);
    }
    gnutls_free(dn.data);
    if (crt != NULL)
        gnutls_x509_crt_deinit(crt);
    return ok ? CD_OK : CD_ERR_AUTH;
}

/* New connection: make the handshake itself require a client certificate
 * that verifies against the trust list (MHD 0.9.75 only asks for one);
 * closed connection: free its state. */
void http_on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                        enum MHD_ConnectionNotificationCode code)
{
    const union MHD_ConnectionInfo *ci;

    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        free(*socket_ctx);
        *socket_ctx = NULL;
        return;
    }
    if (code != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    *socket_ctx = calloc(1, sizeof(struct http_conn)); /* NULL: refused at the first request */
    /* GnuTLS writes a handshake flight as several small records: with Nagle's
     * algorithm the last one waits for the peer's delayed ACK (40 ms). */
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci != NULL && ci->connect_fd != MHD_INVALID_SOCKET) {
        int one = 1;

        if (setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
            log_warn("cannot set TCP_NODELAY on an accepted connection");
    }
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci != NULL && ci->tls_session != NULL) {
        gnutls_session_t session = ci->tls_session;
        gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_verify_cert2(session, client_purpose, 1, 0);
    }
}
