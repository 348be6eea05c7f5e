/* err.h: the project's one error type, returned by every module boundary.
 *
 * The convention: a predicate (is it?, may it?) returns bool; anything that
 * can fail returns cd_err, with results through out-parameters that are left
 * untouched on failure.
 *
 * One cause, one code. For files (common/file.h applies it, and file readers
 * should read through it):
 *   no such file                                   CD_ERR_NOT_FOUND
 *   exists, but cannot be opened, stat'ed or read  CD_ERR_IO
 *   not a regular file, a refused link, an unsafe
 *   owner or mode (the deployment must change)     CD_ERR_CONFIG
 *   over its size cap                              CD_ERR_TOO_LARGE
 * and for what a file or message holds:
 *   bad content in configuration read at start-up
 *   (config file, keyring, policies, CAS state)    CD_ERR_CONFIG
 *   bad input from a client or peer at run time    CD_ERR_INVALID
 * Every loader follows it (config_load_file and crypto_keyring_load too, since
 * issue 10); what a start-up problem was goes into a struct cd_diag
 * (common/diag.h). The caller decides what a code means to it: confidoc-api
 * exits 2 for any configuration it cannot load. (The CAS store reports a
 * corrupt metadata file as CD_ERR_IO, tested.) */
#ifndef CONFIDOC_ERR_H
#define CONFIDOC_ERR_H

typedef enum cd_err {
    CD_OK = 0,
    CD_ERR_NOMEM,         /* allocation failed */
    CD_ERR_INVALID,       /* malformed or out-of-range input */
    CD_ERR_NOT_FOUND,     /* no such object */
    CD_ERR_EXISTS,        /* object already exists (unique key) */
    CD_ERR_CONFLICT,      /* concurrent modification; retry */
    CD_ERR_AUTH,          /* authentication failed */
    CD_ERR_CRYPTO,        /* decryption or verification failed */
    CD_ERR_UNAVAILABLE,   /* a dependency (database, memcached) cannot be reached */
    CD_ERR_TIMEOUT,       /* an operation did not finish in time */
    CD_ERR_IO,            /* file or socket I/O failed */
    CD_ERR_CONFIG,        /* bad configuration */
    CD_ERR_TOO_LARGE,     /* input exceeds a configured bound */
    CD_ERR_LIMITED,       /* refused by a rate or concurrency limit */
    CD_ERR_INTERNAL,      /* broken invariant */
    CD_ERR_SECOND_FACTOR, /* the password is right, but the account wants a one-time code */
    CD_ERR__COUNT
} cd_err;

/* Returns a static, lowercase description of err; never NULL. */
const char *cd_strerror(cd_err err);

#endif
