/* secret_file.c: bounded reads of secret files (passwords) into locked memory. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"

/* Refuses a file that another user could have written or could read: only
 * the caller (or root, who could anyway) may own it; others get nothing, and
 * the group at most reads. */
static cd_err check_file(const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        return CD_ERR_CONFIG;
    if (st->st_uid != geteuid() && st->st_uid != 0)
        return CD_ERR_CONFIG;
    if ((st->st_mode & (S_IRWXO | S_IWGRP | S_IXGRP)) != 0)
        return CD_ERR_CONFIG;
    return CD_OK;
}

/* Reads fd into buf (cap bytes); CD_ERR_TOO_LARGE when more than max arrive. */
static cd_err read_bounded(int fd, char *buf, size_t max, size_t *len)
{
    size_t n = 0;

    for (;;) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return CD_ERR_IO;
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max)
            return CD_ERR_TOO_LARGE;
    }
    *len = n;
    return CD_OK;
}

cd_err crypto_secret_file_read(const char *path, size_t max, char **out, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    cd_err err;
    int fd;

    if (path == NULL || out == NULL || max == 0 || max > CRYPTO_SECRET_FILE_MAX)
        return CD_ERR_INVALID;
    /* O_NONBLOCK: a FIFO cannot stall start-up (it is refused below anyway). */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? CD_ERR_NOT_FOUND : errno == ELOOP ? CD_ERR_CONFIG : CD_ERR_IO;
    if (fstat(fd, &st) != 0) {
        err = CD_ERR_IO;
        goto out;
    }
    if ((err = check_file(&st)) != CD_OK)
        goto out;
    if (st.st_size > (off_t)max) {
        err = CD_ERR_TOO_LARGE;
        goto out;
    }
    buf = crypto_secure_alloc(max + 2);
    if (buf == NULL) {
        err = CD_ERR_NOMEM;
        goto out;
    }
    if ((err = read_bounded(fd, buf, max, &n)) != CD_OK)
        goto out;
    buf[n] = '\0';
    n = strcspn(buf, "\r\n");
    crypto_wipe(buf + n, max + 2 - n);
    *out = buf;
    if (len != NULL)
        *len = n;
    buf = NULL;
out:
    crypto_secure_free(buf);
    close(fd);
    return err;
}
