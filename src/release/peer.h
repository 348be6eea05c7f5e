/* peer.h: who is at the other end of a local release socket: SO_PEERCRED (pid,
 * uid, gid), a pidfd so that the pid cannot be recycled under the caller, and
 * the SHA-256 of /proc/PID/exe hashed from a descriptor. The one copy of that
 * measurement: the CAS's release socket (verify.c) and the node agent
 * (casd/agent.c) both identify their callers with it. */
#ifndef CONFIDOC_RELEASE_PEER_H
#define CONFIDOC_RELEASE_PEER_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"
#include "release/proto.h"

struct release_peer {
    pid_t pid;
    uid_t uid;
    gid_t gid;
    int pidfd;                  /* -1 until identified; release_peer_close */
    char exe[RELEASE_HASH_HEX]; /* "" until hashed */
};

/* Identifies the process connected on fd: SO_PEERCRED, a pidfd (SO_PEERPIDFD,
 * the process that connected; pidfd_open(pid) on kernels before 6.5), then
 * /proc/PID/exe opened and hashed from that fd, then a check that the pidfd's
 * process is still alive (so the pid was not reused while it was read).
 * *why gets a static reason on failure: CD_ERR_IO (no credentials, no pidfd,
 * the executable cannot be opened), CD_ERR_AUTH (it exited meanwhile), or the
 * error of release_sha256_fd. Fields filled so far stay set (pid, uid). */
cd_err release_peer_identify(int fd, struct release_peer *out, const char **why);

/* True while the identified process has not exited (its pid not reused). */
bool release_peer_alive(const struct release_peer *p);

/* Closes the pidfd (idempotent). */
void release_peer_close(struct release_peer *p);

#endif
