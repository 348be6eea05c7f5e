/* prog_casd_sandbox.c: the CAS network worker's sandbox from the inside: the
 * same casd_worker_drop and casd_worker_sandbox the worker calls, then tries
 * what an attacker holding the worker would try (test_cas_serve.sh).
 *
 *   prog_casd_sandbox landlock FILE DIR   as the caller (root: still root) with
 *       Landlock only: reading FILE and creating DIR/new must fail with EACCES
 *   prog_casd_sandbox all FILE DIR USER   drop to USER, Landlock and seccomp:
 *       open must fail (EPERM from the filter), socket() must kill the process
 * Prints one line per check; exit 0 when every check holds. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "casd/sandbox.h"

static int failed;

static void expect_denied(const char *what, int rc, int want_errno)
{
    if (rc >= 0) {
        printf("not ok - %s succeeded\n", what);
        failed = 1;
        close(rc);
    } else if (errno != want_errno) {
        printf("not ok - %s: %s (wanted %s)\n", what, strerror(errno), strerror(want_errno));
        failed = 1;
    } else {
        printf("ok - %s: %s\n", what, strerror(errno));
    }
}

int main(int argc, char **argv)
{
    char path[4096];

    if (argc < 4)
        return 2;
    const char *file = argv[2], *dir = argv[3];
    snprintf(path, sizeof(path), "%s/new-file", dir);
    /* Before: the file is readable (so that a refusal below is the sandbox's). */
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && strcmp(argv[1], "landlock") == 0) {
        printf("not ok - %s not readable before the sandbox: %s\n", file, strerror(errno));
        return 1;
    }
    if (fd >= 0)
        close(fd);
    if (strcmp(argv[1], "landlock") == 0) {
        if (casd_worker_sandbox(CASD_SANDBOX_LANDLOCK) != CD_OK) {
            printf("not ok - casd_worker_sandbox(LANDLOCK) failed\n");
            return 1;
        }
        expect_denied("open(state file) under Landlock", open(file, O_RDONLY | O_CLOEXEC), EACCES);
        expect_denied("create(new file) under Landlock",
                      open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), EACCES);
        expect_denied("open(/etc/passwd) under Landlock", open("/etc/passwd", O_RDONLY), EACCES);
        /* _exit: no atexit handler (LeakSanitizer's reads /proc) inside the sandbox. */
        fflush(stdout);
        _exit(failed);
    }
    if (argc < 5 || casd_worker_drop(argv[4]) != CD_OK) {
        printf("not ok - casd_worker_drop failed\n");
        return 1;
    }
    if (casd_worker_sandbox(CASD_SANDBOX_ALL) != CD_OK) {
        printf("not ok - casd_worker_sandbox(ALL) failed\n");
        return 1;
    }
    expect_denied("open(state file) in the full sandbox", open(file, O_RDONLY | O_CLOEXEC), EPERM);
    expect_denied("create(new file) in the full sandbox",
                  open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), EPERM);
    fflush(stdout);
    /* A system call off the list ends the process (the child of a fork is not
     * possible either: fork is off the list; so the parent here does it). */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    printf("not ok - socket() returned %d and the process lives\n", s);
    return 1;
}
