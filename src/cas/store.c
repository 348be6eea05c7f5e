/* store.c: the CAS's versioned private store and atomic, 0600 file writes. */
#include "cas/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct cas_store {
    char root[PATH_MAX]; /* STATE/cas */
    int lockfd;
};

static cd_err mkdir_mode(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
    struct stat st;
    if (mkdir(path, mode) != 0 && errno != EEXIST)
        return CD_ERR_IO;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return CD_ERR_IO;
    if ((st.st_mode & 07777) != mode && chmod(path, mode) != 0)
        return CD_ERR_IO;
    if (uid != (uid_t)-1 && (st.st_uid != uid || st.st_gid != gid) && chown(path, uid, gid) != 0)
        return CD_ERR_IO;
    return CD_OK;
}

cd_err store_mkdirs(const char *base, const char *rel, mode_t mode, uid_t uid, gid_t gid)
{
    char path[PATH_MAX];
    size_t blen = strlen(base);
    int n = snprintf(path, sizeof(path), "%s/%s", base, rel);
    if (n < 0 || (size_t)n >= sizeof(path))
        return CD_ERR_TOO_LARGE;
    for (char *p = path + blen + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        cd_err err = mkdir_mode(path, mode, uid, gid);
        *p = '/';
        if (err != CD_OK)
            return err;
    }
    return mkdir_mode(path, mode, uid, gid);
}

cd_err store_open(const char *state_dir, struct cas_store **out)
{
    cd_err err = CD_ERR_IO;
    struct cas_store *st = calloc(1, sizeof(*st));
    char lock[PATH_MAX];
    struct stat sb;

    if (st == NULL)
        return CD_ERR_NOMEM;
    st->lockfd = -1;
    int n = snprintf(st->root, sizeof(st->root), "%s/cas", state_dir);
    if (n < 0 || (size_t)n >= sizeof(st->root) - 256) {
        err = CD_ERR_TOO_LARGE;
        goto out;
    }
    /* 0711: services reach their own 0700 directories inside, nobody lists it. */
    if (mkdir(state_dir, 0711) != 0 && errno != EEXIST)
        goto out;
    if (stat(state_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        goto out;
    if ((err = mkdir_mode(st->root, 0700, (uid_t)-1, (gid_t)-1)) != CD_OK)
        goto out;
    n = snprintf(lock, sizeof(lock), "%s/.lock", st->root);
    if (n < 0 || (size_t)n >= sizeof(lock)) {
        err = CD_ERR_TOO_LARGE;
        goto out;
    }
    st->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (st->lockfd < 0) {
        err = CD_ERR_IO;
        goto out;
    }
    err = CD_ERR_TIMEOUT;
    for (int i = 0; i < STORE_LOCK_WAIT_SECONDS * 10; i++) {
        if (flock(st->lockfd, LOCK_EX | LOCK_NB) == 0) {
            err = CD_OK;
            break;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            err = CD_ERR_IO;
            break;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (err != CD_OK)
        goto out;
    *out = st;
    st = NULL;
out:
    store_close(st);
    return err;
}

void store_close(struct cas_store *st)
{
    if (st == NULL)
        return;
    if (st->lockfd >= 0)
        close(st->lockfd);
    free(st);
}

cd_err store_read_file(const char *path, size_t max, struct pki_buf *out)
{
    cd_err err = CD_ERR_IO;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    struct stat sb;
    struct pki_buf b = {0};

    if (fd < 0)
        return errno == ENOENT ? CD_ERR_NOT_FOUND : CD_ERR_IO;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        goto out;
    if ((size_t)sb.st_size > max) {
        err = CD_ERR_TOO_LARGE;
        goto out;
    }
    b.data = malloc((size_t)sb.st_size + 1);
    if (b.data == NULL) {
        err = CD_ERR_NOMEM;
        goto out;
    }
    while (b.len < (size_t)sb.st_size) {
        ssize_t r = read(fd, b.data + b.len, (size_t)sb.st_size - b.len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto out;
        b.len += (size_t)r;
    }
    b.data[b.len] = '\0';
    *out = b;
    b.data = NULL;
    err = CD_OK;
out:
    pki_buf_release(&b);
    close(fd);
    return err;
}

static cd_err fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return CD_ERR_IO;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? CD_OK : CD_ERR_IO;
}

cd_err store_write_file(const char *path, const void *data, size_t len, mode_t mode, uid_t uid,
                        gid_t gid, bool *changed)
{
    cd_err err = CD_ERR_IO;
    char dir[PATH_MAX], tmp[PATH_MAX];
    struct pki_buf old = {0};
    struct stat sb;
    int fd = -1;
    bool tmp_made = false;

    if (strlen(path) >= sizeof(dir) - 16)
        return CD_ERR_TOO_LARGE;
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash != NULL ? slash + 1 : dir;
    if (slash != NULL)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
        store_read_file(path, STORE_FILE_MAX, &old) == CD_OK && old.len == len &&
        memcmp(old.data, data, len) == 0) {
        /* Same content: only repair mode and owner, in place. */
        if ((sb.st_mode & 07777) != mode && chmod(path, mode) != 0)
            goto out;
        if (uid != (uid_t)-1 && (sb.st_uid != uid || sb.st_gid != gid) &&
            chown(path, uid, gid) != 0)
            goto out;
        *changed = false;
        err = CD_OK;
        goto out;
    }
    int n = snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, base);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        err = CD_ERR_TOO_LARGE;
        goto out;
    }
    fd = mkstemp(tmp);
    if (fd < 0)
        goto out;
    tmp_made = true;
    if (fchmod(fd, mode) != 0)
        goto out;
    if (uid != (uid_t)-1 && fchown(fd, uid, gid) != 0)
        goto out;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto out;
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto out;
    tmp_made = false;
    if ((err = fsync_dir(dir)) != CD_OK)
        goto out;
    *changed = true;
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp);
    pki_buf_release(&old);
    return err;
}

static cd_err secret_path(struct cas_store *st, const char *policy, const char *secret,
                          const char *suffix, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s/%s%s", st->root, policy, secret, suffix);
    return n < 0 || (size_t)n >= outlen ? CD_ERR_TOO_LARGE : CD_OK;
}

cd_err store_meta_get(struct cas_store *st, const char *policy, const char *secret,
                      struct store_meta *out)
{
    char path[PATH_MAX];
    struct pki_buf b = {0};
    struct store_meta m = {0};
    cd_err err = secret_path(st, policy, secret, ".meta", path, sizeof(path));
    if (err != CD_OK)
        return err;
    err = store_read_file(path, 4096, &b);
    if (err != CD_OK)
        return err;
    err = CD_ERR_IO;
    char tmpl[PKI_FP_HEX] = "";
    int consumed = 0;
    if (sscanf(b.data, "version %u\ntemplate %64[0-9a-f-]\n%n", &m.version, tmpl, &consumed) != 2 ||
        (size_t)consumed != b.len || m.version == 0)
        goto out;
    if (strcmp(tmpl, "-") != 0)
        memcpy(m.tmpl, tmpl, sizeof(m.tmpl));
    *out = m;
    err = CD_OK;
out:
    pki_buf_release(&b);
    return err;
}

cd_err store_meta_put(struct cas_store *st, const char *policy, const char *secret,
                      const struct store_meta *m)
{
    char path[PATH_MAX], text[128];
    bool changed = false;
    cd_err err = store_mkdirs(st->root, policy, 0700, (uid_t)-1, (gid_t)-1);
    if (err != CD_OK)
        return err;
    err = secret_path(st, policy, secret, ".meta", path, sizeof(path));
    if (err != CD_OK)
        return err;
    int n = snprintf(text, sizeof(text), "version %u\ntemplate %s\n", m->version,
                     m->tmpl[0] != '\0' ? m->tmpl : "-");
    return store_write_file(path, text, (size_t)n, 0600, (uid_t)-1, (gid_t)-1, &changed);
}

cd_err store_get(struct cas_store *st, const char *policy, const char *secret, unsigned version,
                 const char *ext, struct pki_buf *out)
{
    char path[PATH_MAX], suffix[48];
    snprintf(suffix, sizeof(suffix), ".v%u.%s", version, ext);
    cd_err err = secret_path(st, policy, secret, suffix, path, sizeof(path));
    if (err != CD_OK)
        return err;
    return store_read_file(path, STORE_FILE_MAX, out);
}

cd_err store_put(struct cas_store *st, const char *policy, const char *secret, unsigned version,
                 const char *ext, const void *data, size_t len)
{
    char path[PATH_MAX], suffix[48];
    bool changed = false;
    cd_err err = store_mkdirs(st->root, policy, 0700, (uid_t)-1, (gid_t)-1);
    if (err != CD_OK)
        return err;
    snprintf(suffix, sizeof(suffix), ".v%u.%s", version, ext);
    err = secret_path(st, policy, secret, suffix, path, sizeof(path));
    if (err != CD_OK)
        return err;
    return store_write_file(path, data, len, 0600, (uid_t)-1, (gid_t)-1, &changed);
}
