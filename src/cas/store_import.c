/* store_import.c: seals, in place, the plaintext store that offline
 * `confidoc-cas provision` wrote (an old stack's STATE/cas), so that the
 * service finds every CA and key it held (docs/internals/cas-service.md). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas/seal.h"
#include "cas/store.h"

/* The magic of a sealed blob (cas/seal.h). */
static const char SEALED_MAGIC[4] = {'C', 'D', 'S', 'L'};

static bool is_policy_dir(const char *name)
{
    /* recovery/ is sealed under other keys (and must stay as it is); hidden
     * entries are the store's own (.lock) or temporary files. */
    return name[0] != '.' && strcmp(name, "recovery") != 0;
}

/* One file POLICY/NAME: sealed under its relative path unless it already is
 * (a second run after an interrupted one). A file that carries the sealed
 * magic but does not open is an error, never sealed again: it may be a sealed
 * file that was altered. */
static cd_err import_file(const struct seal_key *key, int dirfd, const char *dir, const char *name,
                          const char *path, size_t *count, struct cd_diag *diag)
{
    char rel[2 * STORE_BLOB_NAME_MAX + 2];
    struct pki_buf raw = {0}, tmp = {0};
    bool changed = false;
    int n = snprintf(rel, sizeof(rel), "%s/%s", dir, name);
    cd_err err;

    if (n < 0 || (size_t)n >= sizeof(rel))
        return CD_ERR_TOO_LARGE;
    if ((err = store_read_file(path, STORE_FILE_MAX + SEAL_OVERHEAD, &raw)) != CD_OK) {
        cd_diag_add(diag, "cannot read %s: %s", rel, cd_strerror(err));
        return err;
    }
    if (raw.len >= sizeof(SEALED_MAGIC) && memcmp(raw.data, SEALED_MAGIC, 4) == 0) {
        err = seal_decrypt(key, rel, raw.data, raw.len, &tmp);
        if (err != CD_OK)
            cd_diag_add(diag, "%s looks sealed but does not open: %s", rel, cd_strerror(err));
        goto out;
    }
    if (raw.len > STORE_FILE_MAX) {
        cd_diag_add(diag, "%s is larger than a store file may be", rel);
        err = CD_ERR_TOO_LARGE;
        goto out;
    }
    if ((err = seal_encrypt(key, rel, raw.data, raw.len, &tmp)) == CD_OK)
        err = store_write_at(dirfd, name, tmp.data, tmp.len, 0600, (uid_t)-1, (gid_t)-1, &changed);
    if (err != CD_OK)
        cd_diag_add(diag, "cannot seal %s: %s", rel, cd_strerror(err));
    else
        (*count)++;
out:
    pki_buf_release(&raw);
    pki_buf_release(&tmp);
    return err;
}

/* Every regular file of the open directory STATE/cas/dir. */
static cd_err import_dir(const struct seal_key *key, int casfd, const char *root, const char *dir,
                         size_t *count, struct cd_diag *diag)
{
    char path[4096];
    cd_err err = CD_OK;
    int fd = openat(casfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        cd_diag_add(diag, "cannot open %s/%s", root, dir);
        return CD_ERR_IO;
    }
    int lfd = dup(fd);
    DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (d == NULL) {
        if (lfd >= 0)
            close(lfd);
        close(fd);
        return CD_ERR_IO;
    }
    for (struct dirent *e; err == CD_OK && (e = readdir(d)) != NULL;) {
        struct stat sb;
        if (e->d_name[0] == '.')
            continue; /* temporary files of an interrupted write */
        if (fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode)) {
            cd_diag_add(diag, "%s/%s is not a regular file", dir, e->d_name);
            err = CD_ERR_INVALID;
            break;
        }
        int n = snprintf(path, sizeof(path), "%s/%s/%s", root, dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            err = CD_ERR_TOO_LARGE;
            break;
        }
        err = import_file(key, fd, dir, e->d_name, path, count, diag);
    }
    closedir(d);
    close(fd);
    return err;
}

cd_err store_import_plaintext(const char *state_dir, const struct seal_key *key, size_t *count,
                              struct cd_diag *diag)
{
    char root[4096];
    int lockfd = -1;
    cd_err err;
    int n = snprintf(root, sizeof(root), "%s/cas", state_dir);

    *count = 0;
    if (n < 0 || (size_t)n >= sizeof(root))
        return CD_ERR_TOO_LARGE;
    int casfd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (casfd < 0) {
        cd_diag_add(diag, "cannot open %s", root);
        return errno == ENOENT ? CD_ERR_NOT_FOUND : CD_ERR_IO;
    }
    if ((err = store_lock(casfd, &lockfd)) != CD_OK) {
        cd_diag_add(diag, "cannot lock %s: %s", root, cd_strerror(err));
        close(casfd);
        return err;
    }
    int lfd = dup(casfd);
    DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (d == NULL) {
        if (lfd >= 0)
            close(lfd);
        err = CD_ERR_IO;
        goto out;
    }
    for (struct dirent *e; err == CD_OK && (e = readdir(d)) != NULL;) {
        struct stat sb;
        if (!is_policy_dir(e->d_name) || fstatat(casfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISDIR(sb.st_mode))
            continue; /* state-key.sealed, identity.pin, audit.log: not store files */
        err = import_dir(key, casfd, root, e->d_name, count, diag);
    }
    closedir(d);
out:
    close(lockfd);
    close(casfd);
    return err;
}
