/* secret_file.c: bounded reads of secret files (passwords) into locked memory,
 * through common/file with the crypto module's guarded allocator. */
#include <string.h>

#include "common/file.h"
#include "crypto/crypto.h"

cd_err crypto_secret_file_read(const char *path, size_t max, char **out, size_t *len)
{
    /* Only the caller (or root, who could anyway) may own it; others get
     * nothing, and the group at most reads; never through a link. */
    const struct file_read_opts opts = {max, FILE_NOFOLLOW | FILE_PRIVATE, &crypto_file_mem};
    struct file_data file = {0};
    size_t n;
    cd_err err;

    if (path == NULL || out == NULL || max == 0 || max > CRYPTO_SECRET_FILE_MAX)
        return CD_ERR_INVALID;
    err = file_read(path, &opts, &file);
    if (err != CD_OK)
        return err;
    n = strcspn(file.data, "\r\n");
    crypto_wipe(file.data + n, file.size - n);
    *out = file.data;
    if (len != NULL)
        *len = n;
    return CD_OK;
}
