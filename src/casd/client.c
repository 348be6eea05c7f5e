/* client.c: one HTTPS request to the CAS over casd/tls.c (client.h). */
#include "casd/client.h"

#include <stdio.h>
#include <string.h>

#include "common/num.h"

cd_err casd_client_request(const struct casd_tls_client *c, const char *method, const char *path,
                           const char *body, size_t len, int *status, struct buf *resp,
                           struct cd_diag *diag)
{
    struct casd_tls_conn *conn = NULL;
    struct buf all;
    char head[1024];
    uint64_t st = 0;
    cd_err err;

    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     method, path, c->host, body != NULL ? len : 0);
    if (n < 0 || (size_t)n >= sizeof(head))
        return CD_ERR_TOO_LARGE;
    if ((err = casd_tls_connect(c, &conn, diag)) != CD_OK)
        return err;
    buf_init(&all, CASD_CLIENT_RESPONSE_MAX);
    err = casd_tls_write_all(conn, head, (size_t)n);
    if (err == CD_OK && body != NULL)
        err = casd_tls_write_all(conn, body, len);
    while (err == CD_OK) {
        char chunk[16384];
        size_t got = 0;
        if (casd_tls_read(conn, chunk, sizeof(chunk), &got) != CD_OK)
            break; /* the end (Connection: close) */
        err = buf_add(&all, chunk, got);
    }
    casd_tls_close(conn);
    if (err != CD_OK) {
        cd_diag_add(diag, "request to %s:%s failed: %s", c->host, c->port, cd_strerror(err));
        goto out;
    }
    const char *end = all.p != NULL ? strstr(all.p, "\r\n\r\n") : NULL;
    if (end == NULL || all.len < 12 || memcmp(all.p, "HTTP/1.1 ", 9) != 0 ||
        num_parse(all.p + 9, 3, 599, &st) != CD_OK) {
        cd_diag_add(diag, "%s:%s sent no HTTP response", c->host, c->port);
        err = CD_ERR_INVALID;
        goto out;
    }
    end += 4;
    if ((err = buf_add(resp, end, all.len - (size_t)(end - all.p))) != CD_OK)
        goto out;
    *status = (int)st;
out:
    buf_release(&all);
    return err;
}
