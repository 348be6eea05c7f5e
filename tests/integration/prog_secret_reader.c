/* prog_secret_reader.c: the service test_cas_run.sh launches through
 * `confidoc-cas run`: prints "uid=U gid=G dir=D", then for each file named on
 * its command line (relative to $CONFIDOC_SECRETS_DIR) "file REL SIZE MODE";
 * checks that the directory is a tmpfs mount (/proc/self/mountinfo) and
 * prints "tmpfs yes" or "tmpfs no"; with --hold SECONDS it then sleeps (so
 * the test can look at it from the host). Exit 0 only when every file is
 * readable and the directory is a tmpfs (or --no-tmpfs-check). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_tmpfs_mount(const char *dir)
{
    char line[8192];
    int found = 0;
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ... - FSTYPE SOURCE SUPER */
        char mnt[4096], fstype[64];
        const char *dash = strstr(line, " - ");
        if (dash == NULL || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
            sscanf(dash + 3, "%63s", fstype) != 1)
            continue;
        if (strcmp(mnt, dir) == 0)
            found = strcmp(fstype, "tmpfs") == 0; /* the last mount on dir wins */
    }
    fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    const char *dir = getenv("CONFIDOC_SECRETS_DIR");
    int ok = 1, check_tmpfs = 1;
    unsigned hold = 0;

    if (dir == NULL) {
        printf("no CONFIDOC_SECRETS_DIR\n");
        return 1;
    }
    printf("uid=%u gid=%u dir=%s\n", (unsigned)getuid(), (unsigned)getgid(), dir);
    for (int i = 1; i < argc; i++) {
        char path[8192], buf[4096];
        struct stat st;
        if (strcmp(argv[i], "--hold") == 0 && i + 1 < argc) {
            hold = (unsigned)strtoul(argv[++i], NULL, 10);
            continue;
        }
        if (strcmp(argv[i], "--no-tmpfs-check") == 0) {
            check_tmpfs = 0;
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, argv[i]);
        int fd = open(path, O_RDONLY | O_NOFOLLOW);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
        if (fd < 0 || n <= 0 || fstat(fd, &st) != 0) {
            printf("file %s unreadable\n", argv[i]);
            ok = 0;
        } else {
            printf("file %s %lld %o\n", argv[i], (long long)st.st_size,
                   (unsigned)(st.st_mode & 07777));
        }
        if (fd >= 0)
            close(fd);
    }
    int t = is_tmpfs_mount(dir);
    printf("tmpfs %s\n", t ? "yes" : "no");
    fflush(stdout);
    if (check_tmpfs && !t)
        ok = 0;
    if (hold > 0)
        sleep(hold);
    return ok ? 0 : 1;
}
