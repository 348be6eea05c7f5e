/* agent.h: confidoc-cas node-agent, the role SCONE's LAS plays
 * (docs/internals/cas-service.md, "Node agents").
 *
 * On a Unix socket (SOCK_SEQPACKET, 0666) the agent speaks the release
 * protocol of `confidoc-cas run` exactly as the CAS's own release socket does.
 * For each caller it takes SO_PEERCRED, a pidfd and the SHA-256 of
 * /proc/PID/exe (release/peer.h, the CAS's own measurement), then relays the
 * launcher's HELLO and MEASURE to the CAS over mutual TLS with the node's
 * identity certificate (node.h: the wire format), adding what it measured and
 * signing its report with the node's identity key, and relays the CAS's
 * answers back: SPEC, then the released files, or REFUSED. The CAS is
 * verified by its pin (--cas-pin): its CA is fetched with the attest check
 * once, then every connection verifies the chain and the host name.
 *
 * Bounds: CASD_AGENT_MAX_CALLERS callers at a time (more are refused at
 * once), CASD_AGENT_CONN_MS per caller (the launcher waits 15 s in all),
 * CASD_AGENT_CAS_SECONDS per request to the CAS, the release protocol's
 * message bounds, CASD_CLIENT_RESPONSE_MAX per answer. */
#ifndef CONFIDOC_CASD_AGENT_H
#define CONFIDOC_CASD_AGENT_H

#include <stddef.h>

#include "common/diag.h"
#include "common/err.h"

#define CASD_AGENT_MAX_CALLERS 16
#define CASD_AGENT_CONN_MS 12000
#define CASD_AGENT_CAS_SECONDS 5
/* A HELLO for this session is answered by the agent itself (`--check`),
 * with REFUSED(CASD_AGENT_ALIVE): the CAS is not asked. */
#define CASD_AGENT_CHECK_SESSION "node-agent-check"
#define CASD_AGENT_ALIVE "node agent alive"

struct casd_agent_config {
    const char *socket;              /* where launchers connect */
    const char *cas_host, *cas_port; /* the CAS (a DNS name or an IP of its certificate) */
    const char *cas_pin;             /* SHA-256 (hex) of the CAS's identity CA key */
    /* The node identity: certificate and key files; both NULL: a fresh ECDSA
     * key made in memory at start (its key hash is logged, to admit it with
     * `serve --node KEYHASH`; it changes with every start). */
    const char *identity_cert, *identity_key;
    const char *node_name; /* the generated certificate's CN suffix, or NULL */
};

/* Runs the agent until SIGTERM or SIGINT. Start-up problems in diag. Drops
 * every capability but CAP_SYS_PTRACE (root) and sets no_new_privs once it
 * listens. */
cd_err casd_agent_run(const struct casd_agent_config *c, struct cd_diag *diag);

/* `node-agent --check`: connects to socket, sends HELLO(CASD_AGENT_CHECK_SESSION)
 * and expects REFUSED(CASD_AGENT_ALIVE) within 5 s. CD_OK when it came. */
cd_err casd_agent_check(const char *socket);

#endif
