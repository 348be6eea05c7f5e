/* peer.c: the caller of a local release socket, identified and measured (peer.h). */
#include "release/peer.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "release/measure.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5; older headers lack it */
#endif

/* The caller's pidfd: from the socket (the process that connected), or by pid. */
static int peer_pidfd(int fd, pid_t pid)
{
    int pidfd = -1;
    socklen_t len = sizeof(pidfd);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0)
        return pidfd;
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

bool release_peer_alive(const struct release_peer *p)
{
    struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
    return p->pidfd >= 0 && poll(&pfd, 1, 0) == 0;
}

cd_err release_peer_identify(int fd, struct release_peer *out, const char **why)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    char path[64];

    out->pidfd = -1;
    out->exe[0] = '\0';
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0) {
        *why = "cannot identify the caller (SO_PEERCRED)";
        return CD_ERR_IO;
    }
    out->pid = cred.pid;
    out->uid = cred.uid;
    out->gid = cred.gid;
    out->pidfd = peer_pidfd(fd, cred.pid);
    if (out->pidfd < 0) {
        *why = "cannot identify the caller (pidfd)";
        return CD_ERR_IO;
    }
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)cred.pid);
    int exe = open(path, O_RDONLY | O_CLOEXEC);
    cd_err err = exe >= 0 ? release_sha256_fd(exe, out->exe) : CD_ERR_IO;
    if (exe >= 0)
        close(exe);
    if (err != CD_OK) {
        out->exe[0] = '\0';
        *why = "cannot measure the caller's executable";
        return err;
    }
    if (!release_peer_alive(out)) {
        *why = "the caller exited while it was measured";
        return CD_ERR_AUTH;
    }
    return CD_OK;
}

void release_peer_close(struct release_peer *p)
{
    if (p->pidfd >= 0)
        close(p->pidfd);
    p->pidfd = -1;
}
