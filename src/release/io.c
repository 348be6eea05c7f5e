/* io.c: one protocol message over a SOCK_SEQPACKET socket, with a deadline (proto.h). */
#include "release/proto.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

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
