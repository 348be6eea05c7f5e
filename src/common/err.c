/* err.c: names of the project's error values. */
#include "common/err.h"

#include <stddef.h>

const char *cd_strerror(cd_err err)
{
    static const char *const names[CD_ERR__COUNT] = {
        [CD_OK] = "ok",
        [CD_ERR_NOMEM] = "out of memory",
        [CD_ERR_INVALID] = "invalid input",
        [CD_ERR_NOT_FOUND] = "not found",
        [CD_ERR_EXISTS] = "already exists",
        [CD_ERR_CONFLICT] = "concurrent modification",
        [CD_ERR_AUTH] = "authentication failed",
        [CD_ERR_CRYPTO] = "cryptographic verification failed",
        [CD_ERR_UNAVAILABLE] = "dependency unavailable",
        [CD_ERR_TIMEOUT] = "timed out",
        [CD_ERR_IO] = "i/o error",
        [CD_ERR_CONFIG] = "configuration error",
        [CD_ERR_TOO_LARGE] = "too large",
        [CD_ERR_LIMITED] = "limit exceeded",
        [CD_ERR_INTERNAL] = "internal error",
        [CD_ERR_SECOND_FACTOR] = "second factor required",
    };
    if ((unsigned)err >= CD_ERR__COUNT || names[err] == NULL)
        return "unknown error";
    return names[err];
}
