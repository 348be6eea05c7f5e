/* casd.h: confidoc-cas serve: the CAS as a privilege-separated service
 * (docs/internals/cas-service.md, Processes).
 *
 * The parent (casd_serve) holds the state: the store, the sessions, their
 * material, the CAS's identity. It listens on the TCP port, forks and execs
 * the network worker (`confidoc-cas serve-worker`, casd_worker_main) with the
 * listening socket and one end of a SOCK_SEQPACKET socketpair, sends it the
 * TLS leaf's chain and key (never the identity CA's key, nor anything of the
 * store), and from then on only answers the worker's typed requests (ipc.h).
 * A malformed request, a worker that dies or hangs: the parent kills it and
 * starts another. SIGTERM/SIGINT: the worker is stopped and casd_serve
 * returns CD_OK. */
#ifndef CONFIDOC_CASD_CASD_H
#define CONFIDOC_CASD_CASD_H

#include <stddef.h>

#include "cas/policy.h"
#include "cas/seal.h"
#include "common/diag.h"
#include "common/err.h"

#define CASD_MAX_NAMES 16
#define CASD_MAX_NODES 64     /* --node (CASD_NODE_MAX_ADMITTED) */
#define CASD_CONN_SECONDS 10  /* a connection's whole life in the worker */
#define CASD_REPLY_SECONDS 60 /* the worker's wait for the parent's reply */
#define CASD_WORKER_FD_LISTEN 3
#define CASD_WORKER_FD_IPC 4
#define CASD_WORKER_FD_METRICS 5 /* the metrics listener, when there is one */
#define CASD_MAX_METRICS_CLIENTS 16

struct casd_serve_config {
    const char *state_dir;
    const char *listen_host, *listen_port; /* an IP address literal and a port */
    const char *const *names;              /* DNS names of the TLS certificate */
    size_t nnames;
    const char *const *admins; /* key hashes that may create sessions */
    size_t nadmins;
    const char *worker_user; /* root only; NULL: "nobody" */
    const char *pidfile, *pin_out;
    const char *policies_dir; /* sessions at first start, or NULL */
    struct policy_vars vars;
    const char *audit_log;    /* NULL: STATE/cas/audit.log */
    const char *socket;       /* the release socket for `run` (0666), or NULL: none */
    const char *const *nodes; /* key hashes of the admitted node identities (node.h) */
    size_t nnodes;
    /* The metrics listener (GET /metrics, served by the worker, rendered by
     * the parent) and the key hashes of the scrapers' client certificates;
     * metrics_host NULL: none. */
    const char *metrics_host, *metrics_port;
    const char *const *metrics_clients;
    size_t nmetrics_clients;
    struct seal_source seal;       /* the sealing key (name NULL: refused) */
    struct seal_recovery recovery; /* used at the first start only */
};

/* Runs the service until SIGTERM or SIGINT. Start-up problems in diag. */
cd_err casd_serve(const struct casd_serve_config *c, struct cd_diag *diag);

/* The network worker, in the process exec'ed by the parent: listen_fd,
 * ipc_fd and metrics_fd (-1: none) inherited, everything else closed.
 * Receives its TLS identity, drops to user (root only), sandboxes itself,
 * then serves one connection at a time, from either listener (metrics_fd
 * answers GET /metrics only, listen_fd everything but). Returns only on an
 * error or a malformed reply: the exit status. */
int casd_worker_main(int listen_fd, int ipc_fd, int metrics_fd, const char *user);

#endif
