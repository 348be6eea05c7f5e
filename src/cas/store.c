/* store.c: the CAS's versioned private store and atomic, 0600 file writes. */
#include "cas/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cas/seal.h"
#include "common/codec.h"
#include "common/file.h"
#include "common/num.h"

struct cas_store {
    char root[PATH_MAX]; /* STATE/cas */
    int lockfd;
    const struct seal_key *key; /* NULL: plaintext files */
};

/* Every operation below that can meet a directory a service account writes
 * (an old layout, or a state directory a service was given) works through
 * descriptors: each path component is opened with O_NOFOLLOW, modes and
 * owners are set with fchmod/fchown on what was opened, files are created
 * with O_EXCL and renamed inside the directory descriptor. A symbolic link
 * planted in place of a directory or file is refused or replaced, never
 * followed. */

/* Opens directory name inside dirfd (creating it with mode when missing),
 * refusing a symbolic link, and gives it mode and owner (uid/gid (uid_t)-1:
 * leave) through the descriptor. */
static cd_err dir_at(int dirfd, const char *name, mode_t mode, uid_t uid, gid_t gid, int *out)
{
    struct stat st;
    int fd;

    if (mkdirat(dirfd, name, mode) != 0 && errno != EEXIST)
        return CD_ERR_IO;
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return CD_ERR_IO;
    if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode))
        goto fail;
    if (((uid != (uid_t)-1 && st.st_uid != uid) || (gid != (gid_t)-1 && st.st_gid != gid)) &&
        fchown(fd, uid, gid) != 0)
        goto fail;
    if ((st.st_mode & 07777) != mode && fchmod(fd, mode) != 0)
        goto fail;
    *out = fd;
    return CD_OK;
fail:
    close(fd);
    return CD_ERR_IO;
}

cd_err store_open_dirs(const char *base, const char *rel, mode_t mode, uid_t uid, gid_t gid,
                       int *out)
{
    char buf[PATH_MAX];
    cd_err err = CD_OK;
    int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return CD_ERR_IO;
    if (strlen(rel) >= sizeof(buf)) {
        close(fd);
        return CD_ERR_TOO_LARGE;
    }
    snprintf(buf, sizeof(buf), "%s", rel);
    for (char *save = NULL, *c = strtok_r(buf, "/", &save); c != NULL;
         c = strtok_r(NULL, "/", &save)) {
        int next = -1;
        if (strcmp(c, ".") == 0 || strcmp(c, "..") == 0) {
            err = CD_ERR_INVALID;
            break;
        }
        err = dir_at(fd, c, mode, uid, gid, &next);
        close(fd);
        fd = next;
        if (err != CD_OK)
            break;
    }
    if (err != CD_OK) {
        if (fd >= 0)
            close(fd);
        return err;
    }
    *out = fd;
    return CD_OK;
}

cd_err store_mkdirs(const char *base, const char *rel, mode_t mode, uid_t uid, gid_t gid)
{
    int fd = -1;
    cd_err err = store_open_dirs(base, rel, mode, uid, gid, &fd);
    if (err == CD_OK)
        close(fd);
    return err;
}

cd_err store_lock(int dirfd, int *lockfd)
{
    cd_err err = CD_ERR_TIMEOUT;
    int fd = openat(dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0)
        return CD_ERR_IO;
    for (int i = 0; i < STORE_LOCK_WAIT_SECONDS * 10; i++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            err = CD_OK;
            break;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            err = CD_ERR_IO;
            break;
        }
        struct timespec ts = {0, 100L * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (err != CD_OK) {
        close(fd);
        return err;
    }
    *lockfd = fd;
    return CD_OK;
}

cd_err store_open(const char *state_dir, const struct seal_key *key, struct cas_store **out)
{
    cd_err err = CD_ERR_IO;
    struct cas_store *st = calloc(1, sizeof(*st));
    struct stat sb;
    int dfd = -1;

    if (st == NULL)
        return CD_ERR_NOMEM;
    st->lockfd = -1;
    st->key = key;
    int n = snprintf(st->root, sizeof(st->root), "%s/cas", state_dir);
    if (n < 0 || (size_t)n >= sizeof(st->root) - 256) {
        err = CD_ERR_TOO_LARGE;
        goto out;
    }
    /* 0711: services reach their own directories inside, nobody lists it. */
    if (mkdir(state_dir, 0711) != 0 && errno != EEXIST)
        goto out;
    if (stat(state_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        goto out;
    if ((err = store_open_dirs(state_dir, "cas", 0700, (uid_t)-1, (gid_t)-1, &dfd)) != CD_OK)
        goto out;
    if ((err = store_lock(dfd, &st->lockfd)) != CD_OK)
        goto out;
    *out = st;
    st = NULL;
out:
    if (dfd >= 0)
        close(dfd);
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
    const struct file_read_opts opts = {max, FILE_NOFOLLOW, NULL};
    struct file_data file;
    cd_err err = file_read(path, &opts, &file);

    if (err != CD_OK)
        return err;
    out->data = file.data;
    out->len = file.len;
    return CD_OK;
}

/* Creates a new, empty temporary file ".NAME.RANDOM" in dirfd (O_EXCL: never
 * an existing file or link); its name goes to tmp. */
static int create_tmp(int dirfd, const char *name, char *tmp, size_t tmplen)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        uint32_t r = 0;
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
            return -1;
        int n = snprintf(tmp, tmplen, ".%s.%08x", name, (unsigned)r);
        if (n < 0 || (size_t)n >= tmplen)
            return -1;
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* When name in dirfd is a regular file with exactly this content, repairs its
 * mode and owner through its descriptor and returns true. */
static bool same_content_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                            uid_t uid, gid_t gid, cd_err *err)
{
    const struct file_read_opts opts = {STORE_FILE_MAX, 0, NULL};
    struct file_data old = {0};
    struct stat sb;
    bool same = false;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);

    if (fd < 0)
        return false;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (size_t)sb.st_size == len &&
        file_read_fd(fd, &opts, &old) == CD_OK && old.len == len &&
        memcmp(old.data, data, len) == 0) {
        same = true;
        *err = CD_OK;
        if ((uid != (uid_t)-1 && (sb.st_uid != uid || sb.st_gid != gid)) &&
            fchown(fd, uid, gid) != 0)
            *err = CD_ERR_IO;
        if (*err == CD_OK && (sb.st_mode & 07777) != mode && fchmod(fd, mode) != 0)
            *err = CD_ERR_IO;
    }
    file_data_release(&old, NULL);
    close(fd);
    return same;
}

cd_err store_write_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                      uid_t uid, gid_t gid, bool *changed)
{
    cd_err err = CD_ERR_IO;
    char tmp[NAME_MAX + 1];
    bool tmp_made = false;
    int fd;

    if (strchr(name, '/') != NULL || strlen(name) > NAME_MAX - 12)
        return CD_ERR_INVALID;
    if (same_content_at(dirfd, name, data, len, mode, uid, gid, &err)) {
        *changed = false;
        return err;
    }
    fd = create_tmp(dirfd, name, tmp, sizeof(tmp));
    if (fd < 0)
        return CD_ERR_IO;
    tmp_made = true;
    err = CD_ERR_IO;
    if (uid != (uid_t)-1 && fchown(fd, uid, gid) != 0)
        goto out;
    if (fchmod(fd, mode) != 0)
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
    int rc = close(fd);
    fd = -1;
    if (rc != 0)
        goto out;
    /* rename replaces whatever name is (a planted link included): never follows it. */
    if (renameat(dirfd, tmp, dirfd, name) != 0)
        goto out;
    tmp_made = false;
    if (fsync(dirfd) != 0)
        goto out;
    *changed = true;
    err = CD_OK;
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlinkat(dirfd, tmp, 0);
    return err;
}

cd_err store_write_file(const char *path, const void *data, size_t len, mode_t mode, uid_t uid,
                        gid_t gid, bool *changed)
{
    char dir[PATH_MAX];
    cd_err err;

    if (strlen(path) >= sizeof(dir))
        return CD_ERR_TOO_LARGE;
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = path + (slash != NULL ? (size_t)(slash - dir) + 1 : 0);
    if (slash == dir)
        dir[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return CD_ERR_IO;
    err = store_write_at(dfd, base, data, len, mode, uid, gid, changed);
    close(dfd);
    return err;
}

/* rel: the file's path relative to STATE/cas (the name it is sealed under). */
static cd_err secret_rel(const char *policy, const char *secret, const char *suffix, char *out,
                         size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s%s", policy, secret, suffix);
    return n < 0 || (size_t)n >= outlen ? CD_ERR_TOO_LARGE : CD_OK;
}

/* Reads STATE/cas/rel (at most max bytes of content), opening it when the
 * store is sealed. */
static cd_err get_rel(struct cas_store *st, const char *rel, size_t max, struct pki_buf *out)
{
    char path[PATH_MAX];
    struct pki_buf raw = {0};
    int n = snprintf(path, sizeof(path), "%s/%s", st->root, rel);
    if (n < 0 || (size_t)n >= sizeof(path))
        return CD_ERR_TOO_LARGE;
    if (st->key == NULL)
        return store_read_file(path, max, out);
    cd_err err = store_read_file(path, max + SEAL_OVERHEAD, &raw);
    if (err != CD_OK)
        return err;
    err = seal_decrypt(st->key, rel, raw.data, raw.len, out);
    pki_buf_release(&raw);
    return err;
}

/* Writes STATE/cas/rel (0600; its directory dir made 0700), sealed when the
 * store is. */
static cd_err put_rel(struct cas_store *st, const char *dir, const char *rel, const void *data,
                      size_t len)
{
    char path[PATH_MAX];
    struct pki_buf sealed = {0};
    bool changed = false;
    cd_err err = store_mkdirs(st->root, dir, 0700, (uid_t)-1, (gid_t)-1);
    if (err != CD_OK)
        return err;
    int n = snprintf(path, sizeof(path), "%s/%s", st->root, rel);
    if (n < 0 || (size_t)n >= sizeof(path))
        return CD_ERR_TOO_LARGE;
    if (st->key == NULL)
        return store_write_file(path, data, len, 0600, (uid_t)-1, (gid_t)-1, &changed);
    if ((err = seal_encrypt(st->key, rel, data, len, &sealed)) != CD_OK)
        return err;
    err = store_write_file(path, sealed.data, sealed.len, 0600, (uid_t)-1, (gid_t)-1, &changed);
    pki_buf_release(&sealed);
    return err;
}

/* Parses "version N\ntemplate HEX64|-\n" exactly. */
static bool meta_parse(const char *s, size_t len, struct store_meta *m)
{
    const char *p = s, *end = s + len;
    uint64_t v = 0;

    if ((size_t)(end - p) < 8 || memcmp(p, "version ", 8) != 0)
        return false;
    p += 8;
    /* At most nine digits: a tenth is not the newline that must follow. */
    if (num_prefix(&p, end - p > 9 ? p + 9 : end, 999999999, &v) != CD_OK || v == 0 ||
        (size_t)(end - p) < 10 || memcmp(p, "\ntemplate ", 10) != 0)
        return false;
    p += 10;
    m->version = (unsigned)v;
    m->tmpl[0] = '\0';
    if ((size_t)(end - p) == 2 && memcmp(p, "-\n", 2) == 0)
        return true;
    if ((size_t)(end - p) != PKI_FP_HEX || p[PKI_FP_HEX - 1] != '\n')
        return false;
    /* Lowercase hex only, as written: decoded, then encoded again and compared. */
    uint8_t raw[(PKI_FP_HEX - 1) / 2];
    char hex[PKI_FP_HEX];
    if (codec_hex_decode(p, PKI_FP_HEX - 1, raw, sizeof(raw)) != CD_OK)
        return false;
    codec_hex_encode(raw, sizeof(raw), hex);
    if (memcmp(hex, p, PKI_FP_HEX - 1) != 0)
        return false;
    memcpy(m->tmpl, hex, PKI_FP_HEX);
    return true;
}

cd_err store_meta_get(struct cas_store *st, const char *policy, const char *secret,
                      struct store_meta *out)
{
    char rel[PATH_MAX];
    struct pki_buf b = {0};
    struct store_meta m = {0};
    cd_err err = secret_rel(policy, secret, ".meta", rel, sizeof(rel));
    if (err != CD_OK)
        return err;
    err = get_rel(st, rel, 4096, &b);
    if (err != CD_OK)
        return err;
    err = CD_ERR_IO;
    if (!meta_parse(b.data, b.len, &m))
        goto out;
    *out = m;
    err = CD_OK;
out:
    pki_buf_release(&b);
    return err;
}

cd_err store_meta_put(struct cas_store *st, const char *policy, const char *secret,
                      const struct store_meta *m)
{
    char rel[PATH_MAX], text[128];
    cd_err err = secret_rel(policy, secret, ".meta", rel, sizeof(rel));
    if (err != CD_OK)
        return err;
    int n = snprintf(text, sizeof(text), "version %u\ntemplate %s\n", m->version,
                     m->tmpl[0] != '\0' ? m->tmpl : "-");
    return put_rel(st, policy, rel, text, (size_t)n);
}

cd_err store_get(struct cas_store *st, const char *policy, const char *secret, unsigned version,
                 const char *ext, struct pki_buf *out)
{
    char rel[PATH_MAX], suffix[48];
    snprintf(suffix, sizeof(suffix), ".v%u.%s", version, ext);
    cd_err err = secret_rel(policy, secret, suffix, rel, sizeof(rel));
    if (err != CD_OK)
        return err;
    return get_rel(st, rel, STORE_FILE_MAX, out);
}

cd_err store_put(struct cas_store *st, const char *policy, const char *secret, unsigned version,
                 const char *ext, const void *data, size_t len)
{
    char rel[PATH_MAX], suffix[48];
    snprintf(suffix, sizeof(suffix), ".v%u.%s", version, ext);
    cd_err err = secret_rel(policy, secret, suffix, rel, sizeof(rel));
    if (err != CD_OK)
        return err;
    return put_rel(st, policy, rel, data, len);
}

static bool blob_name_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > STORE_BLOB_NAME_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static cd_err blob_rel(const char *dir, const char *name, char *out, size_t outlen)
{
    if (!blob_name_ok(dir) || !blob_name_ok(name))
        return CD_ERR_INVALID;
    int n = snprintf(out, outlen, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= outlen ? CD_ERR_TOO_LARGE : CD_OK;
}

cd_err store_blob_put(struct cas_store *st, const char *dir, const char *name, const void *data,
                      size_t len)
{
    char rel[2 * STORE_BLOB_NAME_MAX + 2];
    cd_err err = blob_rel(dir, name, rel, sizeof(rel));
    if (err != CD_OK)
        return err;
    if (len > STORE_FILE_MAX)
        return CD_ERR_TOO_LARGE;
    return put_rel(st, dir, rel, data, len);
}

cd_err store_blob_get(struct cas_store *st, const char *dir, const char *name, struct pki_buf *out)
{
    char rel[2 * STORE_BLOB_NAME_MAX + 2];
    cd_err err = blob_rel(dir, name, rel, sizeof(rel));
    if (err != CD_OK)
        return err;
    return get_rel(st, rel, STORE_FILE_MAX, out);
}
