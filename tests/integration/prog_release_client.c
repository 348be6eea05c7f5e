/* prog_release_client.c: a caller of the CAS's release socket that is not the
 * confidoc-cas launcher, for test_cas_run.sh: sends HELLO(SESSION), then a
 * MEASURE with the given executable hash and uid and the SHA-256 of each
 * config file SPEC names, and prints the answer: "refused: REASON",
 * "released N files" or "error: WHAT". Exit 0 only when files were released.
 *
 *   prog_release_client SOCKET SESSION EXE_SHA256 UID */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "release/measure.h"
#include "release/proto.h"

static uint8_t in[RELEASE_MSG_MAX];

static int answer(int fd, struct release_msg *m)
{
    cd_err err = release_recv(fd, in, sizeof(in), release_now_ms() + 10000, m);
    if (err != CD_OK) {
        printf("error: %s\n", cd_strerror(err));
        return -1;
    }
    if (m->type == RELEASE_REFUSED) {
        printf("refused: %.*s\n", (int)m->reason.len, m->reason.p);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct release_measurement me = {0};
    struct release_msg m;
    struct buf b;
    size_t nfiles = 0;

    if (argc != 5 || strlen(argv[1]) >= sizeof(sa.sun_path) || strlen(argv[3]) != 64)
        return 2;
    memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
        printf("error: connect\n");
        return 1;
    }
    buf_init(&b, 4096);
    if (release_enc_hello(&b, argv[2]) != CD_OK ||
        release_send(fd, &b, release_now_ms() + 1000) != CD_OK)
        return 1;
    buf_release(&b);
    if (answer(fd, &m) != 0)
        return 1;
    memcpy(me.exe, argv[3], 65);
    me.uid = (uint32_t)strtoul(argv[4], NULL, 10);
    me.nconfig = m.nconfig;
    for (size_t i = 0; i < m.nconfig; i++) {
        char path[RELEASE_PATH_MAX + 1];
        if (!release_view_copy(m.config[i], path, sizeof(path)) ||
            release_sha256_file(path, me.config[i]) != CD_OK)
            return 1;
    }
    buf_init(&b, 4096);
    if (release_enc_measure(&b, &me) != CD_OK ||
        release_send(fd, &b, release_now_ms() + 1000) != CD_OK)
        return 1;
    buf_release(&b);
    for (;;) {
        if (answer(fd, &m) != 0)
            return 1;
        if (m.type == RELEASE_END)
            break;
        nfiles++;
    }
    printf("released %zu files\n", nfiles);
    close(fd);
    return 0;
}
