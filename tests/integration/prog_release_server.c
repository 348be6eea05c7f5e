/* prog_release_server.c: a stand-in for the CAS service's release socket, for
 * test_cas_run.sh: loads a policy directory, builds its material in a
 * plaintext store under STATE, listens on SOCKET (SOCK_SEQPACKET, 0666) and
 * serves one connection at a time with release_serve_conn, printing each
 * outcome as one line on stdout. The allowed launcher is the SHA-256 of
 * LAUNCHER (the confidoc-cas binary). Stops on SIGTERM.
 *
 *   prog_release_server POLICIES STATE SOCKET LAUNCHER [NAME=VALUE ...] */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cas/cas.h"
#include "cas/store.h"
#include "release/measure.h"
#include "release/verify.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static void print_outcome(void *arg, const struct release_outcome *o)
{
    (void)arg;
    if (o->allowed)
        printf("allowed session=%s who=%s measurement=\"%s\" files=%s nfiles=%zu\n", o->session,
               o->who, o->measurement, o->files, o->nfile_names);
    else
        printf("refused session=%s who=%s measurement=\"%s\" reason=\"%s\"\n", o->session, o->who,
               o->measurement, o->reason);
    fflush(stdout);
}

static int listen_on(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        chmod(path, 0666) != 0 || listen(fd, 8) != 0)
        return -1;
    return fd;
}

int main(int argc, char **argv)
{
    static struct cd_diag diag;
    static char launchers[1][RELEASE_HASH_HEX];
    const char *names[16], *values[16];
    char *owned[16];
    size_t nvars = 0;
    struct policy_set *set = NULL;
    struct cas_store *store = NULL;
    struct cas_material *m = NULL;
    int status = 1;

    if (argc < 5) {
        fprintf(stderr, "usage: prog_release_server POLICIES STATE SOCKET LAUNCHER [N=V ...]\n");
        return 2;
    }
    for (int i = 5; i < argc && nvars < 16; i++) {
        const char *eq = strchr(argv[i], '=');
        if (eq == NULL) {
            fprintf(stderr, "prog_release_server: %s: expected NAME=VALUE\n", argv[i]);
            goto out;
        }
        owned[nvars] = strndup(argv[i], (size_t)(eq - argv[i]));
        if (owned[nvars] == NULL)
            goto out;
        names[nvars] = owned[nvars];
        values[nvars++] = eq + 1;
    }
    struct policy_vars vars = {names, values, nvars};
    cd_diag_init(&diag);
    if (release_sha256_file(argv[4], launchers[0]) != CD_OK ||
        policy_set_load(argv[1], &vars, &set, &diag) != CD_OK ||
        store_open(argv[2], NULL, &store) != CD_OK) {
        fprintf(stderr, "prog_release_server: cannot start: %s\n", diag.text);
        goto out;
    }
    struct cas_build b = {.set = set, .store = store};
    if (cas_material_build(&b, &diag, &m) != CD_OK) {
        fprintf(stderr, "prog_release_server: material: %s\n", diag.text);
        goto out;
    }
    struct sigaction sa = {.sa_handler = on_term}; /* no SA_RESTART: accept returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_on(argv[3]);
    if (lfd < 0) {
        perror("prog_release_server: listen");
        goto out;
    }
    printf("ready\n");
    fflush(stdout);
    struct release_ctx ctx = {.set = set,
                              .material = m,
                              .launchers = (const char(*)[RELEASE_HASH_HEX])launchers,
                              .nlaunchers = 1,
                              .timeout_ms = 5000,
                              .record = print_outcome};
    while (!stop) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            perror("prog_release_server: accept");
            break;
        }
        (void)release_serve_conn(c, &ctx);
        close(c);
    }
    close(lfd);
    unlink(argv[3]);
    status = stop ? 0 : 1;
out:
    cas_material_free(m);
    store_close(store);
    policy_set_free(set);
    for (size_t i = 0; i < nvars; i++)
        free(owned[i]);
    return status;
}
