/* client.h: one HTTPS request to the CAS (the `session` commands). */
#ifndef CONFIDOC_CASD_CLIENT_H
#define CONFIDOC_CASD_CLIENT_H

#include <stddef.h>

#include "casd/tls.h"
#include "common/buf.h"

#define CASD_CLIENT_RESPONSE_MAX ((size_t)1024 * 1024)

/* Sends METHOD PATH (with body[0..len) as JSON when body is not NULL) over a
 * new TLS connection, reads the response to its end; *status and the body
 * (into resp, a fresh buffer: buf_init first). Problems in diag. */
cd_err casd_client_request(const struct casd_tls_client *c, const char *method, const char *path,
                           const char *body, size_t len, int *status, struct buf *resp,
                           struct cd_diag *diag);

#endif
