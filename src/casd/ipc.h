/* ipc.h: the typed, length-checked messages between the CAS's parent and its
 * network worker (docs/internals/cas-service.md, Processes).
 *
 * One message is one SOCK_SEQPACKET datagram: u32 type, u32 length of the
 * payload, then the payload: fields of u32 length + bytes, in the order the
 * type fixes, each bounded; integers little-endian. Nothing else is accepted:
 * a wrong length, an unknown type, a field over its bound, a name outside its
 * alphabet or a byte left over makes decoding fail (CD_ERR_INVALID), and the
 * receiver treats the sender as broken (the worker exits on a bad reply, the
 * parent kills and restarts the worker on a bad request). */
#ifndef CONFIDOC_CASD_IPC_H
#define CONFIDOC_CASD_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define CASD_IPC_HEADER 8u
#define CASD_IPC_MAX ((size_t)384 * 1024)      /* one message, header included */
#define CASD_IPC_NAME_MAX 64                   /* session and secret names */
#define CASD_IPC_HASH_LEN 64                   /* a client key hash (hex), or empty */
#define CASD_IPC_TEXT_MAX ((size_t)256 * 1024) /* a session's text (POLICY_FILE_MAX) */
#define CASD_IPC_BODY_MAX ((size_t)360 * 1024) /* a reply's JSON body */
#define CASD_IPC_PEM_MAX ((size_t)32 * 1024)   /* the TLS chain */
#define CASD_IPC_KEY_MAX ((size_t)8 * 1024)    /* the TLS key (PEM) */
#define CASD_IPC_PUBKEY_MAX 2048               /* a signer's public key (PEM) */
#define CASD_IPC_SIG_MAX 512                   /* a signature (DER) */
#define CASD_IPC_MAX_SIGS 16

enum casd_ipc_type {
    CASD_IPC_TLS_CONFIG = 1,   /* parent -> worker, once: chain, key */
    CASD_IPC_VALUE_GET = 2,    /* worker -> parent: session, secret */
    CASD_IPC_SESSION_GET = 3,  /* worker -> parent: name, client */
    CASD_IPC_SESSION_PUT = 4,  /* worker -> parent: text, client, signatures */
    CASD_IPC_REPLY = 5,        /* parent -> worker: status, body */
    CASD_IPC_NODE_HELLO = 6,   /* worker -> parent: a node agent's JSON body, client */
    CASD_IPC_NODE_MEASURE = 7, /* worker -> parent: a node agent's JSON body, client */
    CASD_IPC_METRICS_GET = 8,  /* worker -> parent: nothing, client (a scrape) */
};

/* A field: bytes borrowed from the buffer the message was decoded from (or
 * from the caller, to encode). Names and hashes are NUL-free. */
struct casd_ipc_field {
    const char *p;
    size_t len;
};

struct casd_ipc_sig {
    struct casd_ipc_field public_key; /* PEM SubjectPublicKeyInfo */
    struct casd_ipc_field signature;  /* DER ECDSA over the session text */
};

struct casd_ipc_msg {
    uint32_t type;           /* enum casd_ipc_type */
    uint32_t status;         /* REPLY: an HTTP status, 100..599 */
    struct casd_ipc_field a; /* TLS_CONFIG: chain; VALUE_GET: session; SESSION_GET: name;
                                SESSION_PUT: text; REPLY: body; NODE_*: the request body */
    struct casd_ipc_field b; /* TLS_CONFIG: key; VALUE_GET: secret; SESSION_GET/PUT, NODE_*:
                                client */
    struct casd_ipc_sig sigs[CASD_IPC_MAX_SIGS]; /* SESSION_PUT */
    size_t nsigs;
};

/* Appends the encoding of m to out (a buffer of max CASD_IPC_MAX + 1 or more).
 * CD_ERR_INVALID when m breaks a bound the decoder checks (the same rules
 * both ways); CD_ERR_TOO_LARGE / CD_ERR_NOMEM from the buffer. */
cd_err casd_ipc_encode(const struct casd_ipc_msg *m, struct buf *out);

/* Decodes one message from data[0..len) into *out (fields point into data).
 * CD_ERR_INVALID on anything malformed; *out is then unspecified. Pure. */
cd_err casd_ipc_decode(const void *data, size_t len, struct casd_ipc_msg *out);

/* Sends m as one datagram on fd (blocking; EINTR retried). CD_ERR_IO on failure. */
cd_err casd_ipc_send(int fd, const struct casd_ipc_msg *m);

/* Receives one datagram from fd into space (cap >= CASD_IPC_MAX + 1 bytes;
 * a longer datagram is refused) and decodes it into *out (fields point into
 * space; wipe it after a TLS_CONFIG). timeout_ms < 0: wait forever.
 * CD_ERR_TIMEOUT, CD_ERR_IO (also the end of the stream), CD_ERR_INVALID
 * (malformed). */
cd_err casd_ipc_recv(int fd, int timeout_ms, char *space, size_t cap, struct casd_ipc_msg *out);

/* Makes the send and receive buffers of a socketpair end large enough for
 * CASD_IPC_MAX datagrams. */
cd_err casd_ipc_tune(int fd);

#endif
