/* measure.c: SHA-256 of a file from its descriptor (measure.h). */
#include "release/measure.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/codec.h"

cd_err release_sha256_fd(int fd, char out[RELEASE_HASH_HEX])
{
    struct stat st;
    unsigned char md[32], chunk[65536];
    unsigned int mdlen = 0;
    uint64_t off = 0;
    cd_err err = CD_OK;

    if (fstat(fd, &st) != 0)
        return CD_ERR_IO;
    if (!S_ISREG(st.st_mode))
        return CD_ERR_CONFIG;
    if ((uint64_t)st.st_size > RELEASE_MEASURE_MAX)
        return CD_ERR_TOO_LARGE;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        err = CD_ERR_CRYPTO;
        goto out;
    }
    for (;;) {
        ssize_t n = pread(fd, chunk, sizeof(chunk), (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = CD_ERR_IO;
            goto out;
        }
        if (n == 0)
            break;
        off += (uint64_t)n;
        if (off > RELEASE_MEASURE_MAX) { /* it grew while we read */
            err = CD_ERR_TOO_LARGE;
            goto out;
        }
        if (EVP_DigestUpdate(ctx, chunk, (size_t)n) != 1) {
            err = CD_ERR_CRYPTO;
            goto out;
        }
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != sizeof(md)) {
        err = CD_ERR_CRYPTO;
        goto out;
    }
    codec_hex_encode(md, sizeof(md), out);
out:
    EVP_MD_CTX_free(ctx);
    return err;
}

cd_err release_sha256_file(const char *path, char out[RELEASE_HASH_HEX])
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? CD_ERR_NOT_FOUND : errno == ELOOP ? CD_ERR_CONFIG : CD_ERR_IO;
    cd_err err = release_sha256_fd(fd, out);
    close(fd);
    return err;
}
