/* prog_casd_peer.c: a broken peer for each end of the CAS's IPC
 * (test_cas_serve.sh), with no test hook in the service itself.
 *
 *   prog_casd_peer bad-reply PORT
 *       runs the real network worker (casd_worker_main, in a child) on
 *       127.0.0.1:PORT with a throw-away TLS identity, prints READY, answers
 *       the worker's first request with a malformed datagram and prints
 *       "worker exit N" (the worker must end: N = 3).
 *   prog_casd_peer serve STATE PORT SEALING_KEY
 *       runs the real parent (casd_serve). The parent starts its worker by
 *       exec'ing /proc/self/exe serve-worker: this program, which then plays
 *       a worker that sends a malformed request right after its identity;
 *       the parent must kill it and start another (its log says so).
 *   (prog_casd_peer serve-worker --user U: that malicious worker.) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "cas/pki.h"
#include "casd/casd.h"
#include "casd/ipc.h"
#include "log/log.h"

static char space[CASD_IPC_MAX + 1];

static int bad_worker(void)
{
    struct casd_ipc_msg m;
    if (casd_ipc_recv(CASD_WORKER_FD_IPC, 10000, space, sizeof(space), &m) != CD_OK)
        return 1;
    fprintf(stderr, "malicious worker: sending a malformed request\n");
    if (write(CASD_WORKER_FD_IPC, "\x02\x00\x00\x00\xff\x00\x00\x00garbage", 15) != 15)
        return 1;
    sleep(30); /* the parent kills this process */
    return 1;
}

static int bad_reply(const char *port)
{
    struct pki_buf key = {0}, cert = {0};
    const char *dns[] = {"localhost"};
    struct pki_cert_req req = {.common_name = "t",
                               .usage = PKI_USAGE_SERVER,
                               .dns = dns,
                               .ndns = 1,
                               .validity_days = 1,
                               .now = time(NULL)};
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)strtoul(port, NULL, 10))};
    int one = 1, sv[2], st = 0;

    if (pki_key_generate(&key) != CD_OK ||
        pki_cert_issue(&req, key.data, key.len, NULL, 0, NULL, 0, &cert) != CD_OK)
        return 1;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0 || casd_ipc_tune(sv[0]) != CD_OK)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        _exit(casd_worker_main(lfd, sv[1], -1, "nobody"));
    }
    close(sv[1]);
    struct casd_ipc_msg m = {
        .type = CASD_IPC_TLS_CONFIG, .a = {cert.data, cert.len}, .b = {key.data, key.len}};
    if (casd_ipc_send(sv[0], &m) != CD_OK)
        return 1;
    printf("READY\n");
    fflush(stdout);
    if (casd_ipc_recv(sv[0], 20000, space, sizeof(space), &m) != CD_OK)
        return 1;
    if (write(sv[0], "\x05\x00\x00\x00\x01\x00\x00\x00x", 9) != 9) /* a REPLY, malformed */
        return 1;
    if (waitpid(pid, &st, 0) != pid)
        return 1;
    printf("worker exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    fflush(stdout);
    pki_buf_release(&key);
    pki_buf_release(&cert);
    return 0;
}

int main(int argc, char **argv)
{
    log_init("prog_casd_peer", LOG_LEVEL_INFO);
    if (argc >= 2 && strcmp(argv[1], "serve-worker") == 0)
        return bad_worker();
    if (argc == 3 && strcmp(argv[1], "bad-reply") == 0)
        return bad_reply(argv[2]);
    if (argc == 5 && strcmp(argv[1], "serve") == 0) {
        struct casd_serve_config c = {.state_dir = argv[2],
                                      .listen_host = "127.0.0.1",
                                      .listen_port = argv[3],
                                      .seal = {SEAL_SOURCE_FILE, argv[4]}};
        static struct cd_diag d;
        cd_diag_init(&d);
        cd_err err = casd_serve(&c, &d);
        fputs(d.text, stderr);
        return err == CD_OK ? 0 : 1;
    }
    return 2;
}
