/* keyring.c: the master keyring (file parsing, per-purpose subkeys) in locked memory. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "common/file.h"
#include "common/num.h"
#include "crypto/crypto.h"
#include "crypto/crypto_int.h"

/* Largest keyring file read; a real one is a few hundred bytes. */
#define KEYRING_FILE_MAX ((size_t)64 * 1024)
#define KDF_CONTEXT "cdockeys"

_Static_assert(crypto_kdf_CONTEXTBYTES == sizeof(KDF_CONTEXT) - 1, "kdf context length");
_Static_assert(crypto_kdf_KEYBYTES == CRYPTO_KEY_BYTES, "kdf key size");

static crypto_keyring *keyring_alloc(void)
{
    crypto_keyring *kr = sodium_malloc(sizeof(*kr));
    if (kr == NULL)
        return NULL;
    sodium_memzero(kr, sizeof(*kr));
    return kr;
}

/* Sorts newest first, derives the subkeys and makes the region read-only. */
static cd_err keyring_finish(crypto_keyring *kr)
{
    /* Insertion sort: at most CRYPTO_KEYRING_MAX_KEYS entries. */
    uint8_t tmp[CRYPTO_KEY_BYTES];
    for (size_t i = 1; i < kr->count; i++) {
        uint32_t v = kr->versions[i];
        memcpy(tmp, kr->master[i], sizeof(tmp));
        size_t j = i;
        while (j > 0 && kr->versions[j - 1] < v) {
            kr->versions[j] = kr->versions[j - 1];
            memcpy(kr->master[j], kr->master[j - 1], CRYPTO_KEY_BYTES);
            j--;
        }
        kr->versions[j] = v;
        memcpy(kr->master[j], tmp, sizeof(tmp));
    }
    sodium_memzero(tmp, sizeof(tmp));

    for (size_t i = 0; i < kr->count; i++) {
        for (unsigned p = 1; p < CRYPTO_PURPOSE__COUNT; p++) {
            if (crypto_kdf_derive_from_key(kr->subkeys[i][p], CRYPTO_KEY_BYTES, p, KDF_CONTEXT,
                                           kr->master[i]) != 0)
                return CD_ERR_INTERNAL;
        }
    }
    if (sodium_mprotect_readonly(kr) != 0)
        return CD_ERR_INTERNAL;
    return CD_OK;
}

void crypto_keyring_free(crypto_keyring *kr)
{
    /* sodium_free makes the region writable again and wipes it. */
    if (kr != NULL)
        sodium_free(kr);
}

cd_err crypto_keyring_from_key(const uint8_t key[CRYPTO_KEY_BYTES], uint32_t version,
                               crypto_keyring **out)
{
    cd_err err = CD_OK;
    crypto_keyring *kr = NULL;

    if (key == NULL || out == NULL || version == 0 || version > CRYPTO_KEYRING_MAX_VERSION)
        return CD_ERR_INVALID;
    kr = keyring_alloc();
    if (kr == NULL)
        return CD_ERR_NOMEM;
    kr->count = 1;
    kr->versions[0] = version;
    memcpy(kr->master[0], key, CRYPTO_KEY_BYTES);
    err = keyring_finish(kr);
    if (err != CD_OK)
        goto out;
    *out = kr;
    kr = NULL;
out:
    crypto_keyring_free(kr);
    return err;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Parses a decimal version in 1..CRYPTO_KEYRING_MAX_VERSION, digits only. */
static bool parse_version(const char *s, size_t n, uint32_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 10 || num_parse(s, n, CRYPTO_KEYRING_MAX_VERSION, &v) != CD_OK || v == 0)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Parses one non-comment line (already trimmed) into the next slot of kr. */
static cd_err keyring_parse_line(crypto_keyring *kr, const char *line, size_t n, const char *path,
                                 unsigned lineno, struct cd_diag *diag)
{
    uint32_t version = 1;
    const char *hex = line;
    size_t hexlen = n;
    const char *colon = memchr(line, ':', n);

    if (colon != NULL) {
        size_t vlen = (size_t)(colon - line);
        while (vlen > 0 && is_blank(line[vlen - 1]))
            vlen--;
        if (!parse_version(line, vlen, &version)) {
            cd_diag_add(diag, "%s:%u: version must be a decimal in 1..%u", path, lineno,
                        CRYPTO_KEYRING_MAX_VERSION);
            return CD_ERR_CONFIG;
        }
        hex = colon + 1;
        hexlen = n - (size_t)(hex - line);
        while (hexlen > 0 && is_blank(*hex)) {
            hex++;
            hexlen--;
        }
    }
    if (hexlen != (size_t)2 * CRYPTO_KEY_BYTES) {
        cd_diag_add(diag, "%s:%u: key must be %d hex digits", path, lineno, 2 * CRYPTO_KEY_BYTES);
        return CD_ERR_CONFIG;
    }
    for (size_t i = 0; i < kr->count; i++) {
        if (kr->versions[i] == version) {
            cd_diag_add(diag, "%s:%u: duplicate key version %u", path, lineno, (unsigned)version);
            return CD_ERR_CONFIG;
        }
    }
    if (kr->count >= CRYPTO_KEYRING_MAX_KEYS) {
        cd_diag_add(diag, "%s:%u: more than %d keys", path, lineno, CRYPTO_KEYRING_MAX_KEYS);
        return CD_ERR_CONFIG;
    }
    size_t binlen = 0;
    const char *end = NULL;
    if (sodium_hex2bin(kr->master[kr->count], CRYPTO_KEY_BYTES, hex, hexlen, NULL, &binlen, &end) !=
            0 ||
        binlen != CRYPTO_KEY_BYTES || end != hex + hexlen) {
        sodium_memzero(kr->master[kr->count], CRYPTO_KEY_BYTES);
        cd_diag_add(diag, "%s:%u: key is not valid hex", path, lineno);
        return CD_ERR_CONFIG;
    }
    kr->versions[kr->count] = version;
    kr->count++;
    return CD_OK;
}

static cd_err keyring_parse(crypto_keyring *kr, const char *buf, size_t len, const char *path,
                            struct cd_diag *diag)
{
    unsigned lineno = 0;
    size_t pos = 0;

    while (pos < len) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL ? 1 : 0);
        lineno++;

        while (n > 0 && is_blank(*line)) {
            line++;
            n--;
        }
        while (n > 0 && is_blank(line[n - 1]))
            n--;
        if (n == 0 || line[0] == '#')
            continue;
        if (memchr(line, '\0', n) != NULL) {
            cd_diag_add(diag, "%s:%u: NUL byte in line", path, lineno);
            return CD_ERR_CONFIG;
        }
        cd_err err = keyring_parse_line(kr, line, n, path, lineno, diag);
        if (err != CD_OK)
            return err;
    }
    if (kr->count == 0) {
        cd_diag_add(diag, "%s: no key in keyring file", path);
        return CD_ERR_CONFIG;
    }
    return CD_OK;
}

/* Key material and secret files go to guarded memory that is wiped on free. */
static void *secure_alloc(size_t n)
{
    return sodium_malloc(n);
}

static void secure_release(void *p, size_t n)
{
    (void)n;
    if (p != NULL)
        sodium_free(p);
}

const struct file_mem crypto_file_mem = {secure_alloc, secure_release};

/* The keyring's messages for a file common/file refused; the code is
 * common/file's (a missing keyring is CD_ERR_NOT_FOUND, like every file). */
static cd_err keyring_file_error(const char *path, cd_err err, const struct file_data *fd,
                                 struct cd_diag *diag)
{
    switch (err) {
    case CD_ERR_NOT_FOUND:
    case CD_ERR_IO:
        cd_diag_add(diag, "%s: %s: %s", path, fd->why, strerror(errno));
        return err;
    case CD_ERR_TOO_LARGE:
        cd_diag_add(diag, "%s: larger than %zu bytes", path, KEYRING_FILE_MAX);
        return err;
    case CD_ERR_CONFIG:
        if (S_ISREG(fd->mode))
            cd_diag_add(diag, "%s: accessible by group or others (mode %04o); use 0600 or 0400",
                        path, (unsigned)(fd->mode & 07777));
        else
            cd_diag_add(diag, "%s: not a regular file", path);
        return err;
    default:
        return err;
    }
}

cd_err crypto_keyring_load(const char *path, crypto_keyring **out, struct cd_diag *diag)
{
    const struct file_read_opts opts = {KEYRING_FILE_MAX, FILE_NO_GROUP, &crypto_file_mem};
    struct file_data file = {0};
    crypto_keyring *kr = NULL;
    cd_err err;

    if (path == NULL || out == NULL) {
        cd_diag_add(diag, "keyring: no path given");
        return CD_ERR_INVALID;
    }
    err = file_read(path, &opts, &file);
    if (err != CD_OK) {
        err = keyring_file_error(path, err, &file, diag);
        goto out;
    }
    kr = keyring_alloc();
    if (kr == NULL) {
        err = CD_ERR_NOMEM;
        goto out;
    }
    err = keyring_parse(kr, file.data, file.len, path, diag);
    if (err != CD_OK)
        goto out;
    err = keyring_finish(kr);
    if (err != CD_OK) {
        cd_diag_add(diag, "%s: cannot derive subkeys", path);
        goto out;
    }
    *out = kr;
    kr = NULL;
out:
    file_data_release(&file, &crypto_file_mem);
    crypto_keyring_free(kr);
    return err;
}

uint32_t crypto_keyring_newest(const crypto_keyring *kr)
{
    if (kr == NULL || kr->count == 0)
        return 0;
    return kr->versions[0];
}

size_t crypto_keyring_versions(const crypto_keyring *kr, uint32_t *out, size_t max)
{
    if (kr == NULL)
        return 0;
    for (size_t i = 0; i < kr->count && i < max && out != NULL; i++)
        out[i] = kr->versions[i];
    return kr->count;
}

const uint8_t *crypto_keyring_subkey(const crypto_keyring *kr, uint32_t version,
                                     enum crypto_purpose purpose)
{
    for (size_t i = 0; i < kr->count; i++) {
        if (kr->versions[i] == version)
            return kr->subkeys[i][purpose];
    }
    return NULL;
}

bool crypto_keyring_has(const crypto_keyring *kr, uint32_t version)
{
    if (kr == NULL || version == 0)
        return false;
    return crypto_keyring_subkey(kr, version, CRYPTO_PURPOSE_USERNAME) != NULL;
}
