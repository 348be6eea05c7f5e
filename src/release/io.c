/* io.c: one protocol message over a SOCK_SEQPACKET socket, with a deadline (proto.h). */
#include "release/proto.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

cd_err release_listen(const char *path, int backlog, int *out, struct cd_diag *diag)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        cd_diag_add(diag, "--socket %s: path too long", path);
        return CD_ERR_CONFIG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        chmod(path, 0666) != 0 || listen(fd, backlog) != 0) {
        cd_diag_add(diag, "cannot listen on %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return CD_ERR_IO;
    }
    *out = fd;
    return CD_OK;
}

int64_t release_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void release_sndbuf(int fd)
{
    int want = (int)(RELEASE_MSG_MAX + (size_t)64 * 1024);
    /* The kernel doubles the value and refuses a record above sndbuf - 32. */
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
}

cd_err release_send(int fd, const struct buf *b, int64_t deadline_ms)
{
    for (;;) {
        ssize_t n = send(fd, b->p, b->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0)
            return (size_t)n == b->len ? CD_OK : CD_ERR_IO;
        if (errno != EINTR && errno != EAGAIN)
            return CD_ERR_IO;
        int64_t left = deadline_ms - release_now_ms();
        if (left <= 0)
            return CD_ERR_TIMEOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (poll(&pfd, 1, left > 60000 ? 60000 : (int)left) < 0 && errno != EINTR)
            return CD_ERR_IO;
    }
}

cd_err release_recv(int fd, uint8_t *buf, size_t cap, int64_t deadline_ms, struct release_msg *msg)
{
    ssize_t n;
    for (;;) {
        int64_t left = deadline_ms - release_now_ms();
        if (left <= 0)
            return CD_ERR_TIMEOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int rc = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return CD_ERR_IO;
        if (rc == 0)
            continue;
        /* MSG_TRUNC: the record's real length, so an oversized one is seen as such. */
        n = recv(fd, buf, cap, MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        break;
    }
    if (n <= 0)
        return CD_ERR_IO; /* an error, or the peer closed (a record is never empty) */
    if ((size_t)n > cap)
        return CD_ERR_INVALID;
    return release_decode(buf, (size_t)n, msg);
}
