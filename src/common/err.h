/* err.h: the project's one error type, returned by every module boundary. */
#ifndef CONFIDOC_ERR_H
#define CONFIDOC_ERR_H

typedef enum cd_err {
    CD_OK = 0,
    CD_ERR_NOMEM,       /* allocation failed */
    CD_ERR_INVALID,     /* malformed or out-of-range input */
    CD_ERR_NOT_FOUND,   /* no such object */
    CD_ERR_EXISTS,      /* object already exists (unique key) */
    CD_ERR_CONFLICT,    /* concurrent modification; retry */
    CD_ERR_AUTH,        /* authentication failed */
    CD_ERR_CRYPTO,      /* decryption or verification failed */
    CD_ERR_UNAVAILABLE, /* a dependency (database, memcached) cannot be reached */
    CD_ERR_TIMEOUT,     /* an operation did not finish in time */
    CD_ERR_IO,          /* file or socket I/O failed */
    CD_ERR_CONFIG,      /* bad configuration */
    CD_ERR_TOO_LARGE,   /* input exceeds a configured bound */
    CD_ERR_LIMITED,     /* refused by a rate or concurrency limit */
    CD_ERR_INTERNAL,    /* broken invariant */
    CD_ERR__COUNT
} cd_err;

/* Returns a static, lowercase description of err; never NULL. */
const char *cd_strerror(cd_err err);

#endif
