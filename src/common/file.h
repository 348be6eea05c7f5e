/* file.h: the one bounded file reader (read(2), never stdio), with the checks
 * that secret files need and an allocator of the caller's choosing. */
#ifndef CONFIDOC_FILE_H
#define CONFIDOC_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

/* Checks file_read applies to the open file (before reading a byte). */
#define FILE_NOFOLLOW 1u /* a symbolic link at the last component is refused */
#define FILE_PRIVATE 2u  /* owned by the caller or root; others nothing; group at most reads */
#define FILE_NO_GROUP 4u /* no access at all for group or others */

/* Where the content goes: alloc(n) returns n bytes or NULL, release(p, n)
 * wipes and frees them. Secret files pass locked memory (crypto_secure_alloc:
 * crypto_secret_file_read and the keyring do); NULL means malloc and free
 * after explicit_bzero. */
struct file_mem {
    void *(*alloc)(size_t n);
    void (*release)(void *p, size_t n);
};

struct file_read_opts {
    size_t max;     /* the size cap: larger is CD_ERR_TOO_LARGE */
    unsigned flags; /* FILE_* */
    const struct file_mem *mem;
};

/* What file_read produced. On success data holds len bytes and a NUL, in a
 * block of size bytes from mem (release it with mem's release, or free()
 * after wiping when mem was NULL). On failure data is NULL; why is a static,
 * lowercase reason (for the caller's message; never NULL after a failure),
 * mode the file's mode when it was stat'ed (else 0), and errno is that of the
 * failing system call for CD_ERR_IO and CD_ERR_NOT_FOUND. */
struct file_data {
    char *data;
    size_t len;
    size_t size;
    const char *why;
    mode_t mode;
};

/* Reads all of path (a regular file; opened O_NONBLOCK, so a FIFO cannot
 * stall the caller, and refused anyway) into out.
 *
 * Errors, one mapping for every module (see common/err.h):
 *   CD_ERR_NOT_FOUND  no such file (ENOENT)
 *   CD_ERR_IO         the file exists but cannot be opened, stat'ed or read,
 *                     or it grew while being read
 *   CD_ERR_CONFIG     not a regular file, a refused symbolic link, or an owner
 *                     or mode the flags refuse: the deployment must change
 *   CD_ERR_TOO_LARGE  more than opts->max bytes
 *   CD_ERR_NOMEM      the allocator failed
 *   CD_ERR_INVALID    bad arguments */
cd_err file_read(const char *path, const struct file_read_opts *opts, struct file_data *out);

/* The same on a file already open on fd (read from its current offset, which
 * for a fresh descriptor is the start; fd stays open). FILE_NOFOLLOW is the
 * opener's business (O_NOFOLLOW). */
cd_err file_read_fd(int fd, const struct file_read_opts *opts, struct file_data *out);

/* Releases out->data through mem (or wipes and frees it when mem is NULL). */
void file_data_release(struct file_data *out, const struct file_mem *mem);

#endif
