/* file.c: bounded reads of whole files, checked before the first byte. */
#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void *default_alloc(size_t n)
{
    return malloc(n);
}

static void default_release(void *p, size_t n)
{
    if (p != NULL) {
        explicit_bzero(p, n);
        free(p);
    }
}

static const struct file_mem default_mem = {default_alloc, default_release};

static cd_err check_file(const struct stat *st, unsigned flags, const char **why)
{
    if (!S_ISREG(st->st_mode)) {
        *why = "not a regular file";
        return CD_ERR_CONFIG;
    }
    if ((flags & FILE_PRIVATE) != 0) {
        if (st->st_uid != geteuid() && st->st_uid != 0) {
            *why = "owned by another user";
            return CD_ERR_CONFIG;
        }
        if ((st->st_mode & (S_IRWXO | S_IWGRP | S_IXGRP)) != 0) {
            *why = "writable by its group or accessible by others";
            return CD_ERR_CONFIG;
        }
    }
    if ((flags & FILE_NO_GROUP) != 0 && (st->st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        *why = "accessible by group or others";
        return CD_ERR_CONFIG;
    }
    return CD_OK;
}

/* Reads fd into buf (size bytes, size >= 2) until end of file; *len gets the
 * count. At most size - 1 bytes are read: a full buffer means the file holds
 * more than was expected. */
static cd_err read_all(int fd, char *buf, size_t size, size_t *len, const char **why)
{
    size_t n = 0;

    while (n < size - 1) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *why = "cannot read";
            return CD_ERR_IO;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *len = n;
    return CD_OK;
}

cd_err file_read_fd(int fd, const struct file_read_opts *opts, struct file_data *out)
{
    const struct file_mem *mem;
    struct stat st;
    size_t size = 0, n = 0, expect;
    char *buf = NULL;
    cd_err err;
    int saved;

    if (out == NULL)
        return CD_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    out->why = "bad arguments";
    if (fd < 0 || opts == NULL || opts->max == 0 || opts->max > SIZE_MAX / 2)
        return CD_ERR_INVALID;
    mem = opts->mem != NULL ? opts->mem : &default_mem;
    if (fstat(fd, &st) != 0) {
        out->why = "cannot stat";
        return CD_ERR_IO;
    }
    out->mode = st.st_mode;
    if ((err = check_file(&st, opts->flags, &out->why)) != CD_OK)
        return err;
    if (st.st_size < 0 || (uintmax_t)st.st_size > opts->max) {
        out->why = "too large";
        return CD_ERR_TOO_LARGE;
    }
    /* Room for what fstat saw, one byte to notice growth, and the NUL. */
    expect = (size_t)st.st_size;
    size = expect + 2;
    buf = mem->alloc(size);
    if (buf == NULL) {
        out->why = "out of memory";
        return CD_ERR_NOMEM;
    }
    if ((err = read_all(fd, buf, size, &n, &out->why)) != CD_OK)
        goto out;
    if (n > expect) {
        out->why = n > opts->max ? "too large" : "changed while being read";
        err = n > opts->max ? CD_ERR_TOO_LARGE : CD_ERR_IO;
        goto out;
    }
    buf[n] = '\0';
    out->data = buf;
    out->len = n;
    out->size = size;
    out->why = NULL;
    buf = NULL;
out:
    saved = errno;
    if (buf != NULL)
        mem->release(buf, size);
    errno = saved;
    return err;
}

cd_err file_read(const char *path, const struct file_read_opts *opts, struct file_data *out)
{
    cd_err err;
    int fd, saved;

    if (out == NULL)
        return CD_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    out->why = "bad arguments";
    if (path == NULL || opts == NULL)
        return CD_ERR_INVALID;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY |
                        ((opts->flags & FILE_NOFOLLOW) != 0 ? O_NOFOLLOW : 0));
    if (fd < 0) {
        out->why = errno == ELOOP ? "a symbolic link" : "cannot open";
        return errno == ENOENT                                        ? CD_ERR_NOT_FOUND
               : errno == ELOOP && (opts->flags & FILE_NOFOLLOW) != 0 ? CD_ERR_CONFIG
                                                                      : CD_ERR_IO;
    }
    err = file_read_fd(fd, opts, out);
    saved = errno;
    close(fd);
    errno = saved;
    return err;
}

void file_data_release(struct file_data *out, const struct file_mem *mem)
{
    if (out == NULL)
        return;
    if (out->data != NULL)
        (mem != NULL ? mem : &default_mem)->release(out->data, out->size);
    out->data = NULL;
    out->len = 0;
    out->size = 0;
}
