/* measure.h: SHA-256 measurements of files, from a descriptor (the one file
 * of the release module that includes OpenSSL is measure.c). */
#ifndef CONFIDOC_RELEASE_MEASURE_H
#define CONFIDOC_RELEASE_MEASURE_H

#include <stdint.h>

#include "common/err.h"
#include "release/proto.h"

#define RELEASE_MEASURE_MAX ((uint64_t)1 << 30) /* bytes of a measured file */

/* SHA-256 (lowercase hex) of the regular file open as fd, read with pread from
 * offset 0 to its end (the fd's offset is not used or moved). CD_ERR_CONFIG
 * when fd is not a regular file, CD_ERR_TOO_LARGE over RELEASE_MEASURE_MAX
 * bytes, CD_ERR_IO on a read error, CD_ERR_CRYPTO when OpenSSL fails. out is
 * left untouched on failure. */
cd_err release_sha256_fd(int fd, char out[RELEASE_HASH_HEX]);

/* release_sha256_fd of path opened O_RDONLY|O_NOFOLLOW|O_CLOEXEC (a symbolic
 * link is refused: CD_ERR_CONFIG); CD_ERR_NOT_FOUND when it does not exist. */
cd_err release_sha256_file(const char *path, char out[RELEASE_HASH_HEX]);

#endif
