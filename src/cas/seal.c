/* seal.c: the CAS's state key in locked memory, the AEAD that seals every
 * state blob, the sealing key sources (a key file, the kernel keyring) and
 * the recovery wraps (X25519 + HKDF-SHA256, 1 of N or k of N Shamir shares). */
#include "cas/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <keyutils.h>
#include <libgfshare.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "cas/store.h"
#include "common/codec.h"
#include "common/file.h"
#include "common/num.h"

#include "cas/seal_int.h"

static const unsigned char blob_magic[4] = {'C', 'D', 'S', 'L'};

/* ---- locked memory ---- */

/* The secure heap is mlock'ed and kept out of core dumps by OpenSSL; the
 * state key, the sealing key and every key file live there. */
cd_err seal_secure_init(struct cd_diag *diag)
{
    if (CRYPTO_secure_malloc_initialized())
        return CD_OK;
    int rc = CRYPTO_secure_malloc_init(SECURE_HEAP_BYTES, 16);
    if (rc == 0) {
        cd_diag_add(diag, "cannot set up locked memory for the state key");
        return CD_ERR_NOMEM;
    }
    if (rc == 2)
        cd_diag_add(diag, "note: the secure heap could not be locked or guarded (RLIMIT_MEMLOCK?)");
    return CD_OK;
}

static void *sec_alloc(size_t n)
{
    return OPENSSL_secure_malloc(n);
}

static void sec_release(void *p, size_t n)
{
    OPENSSL_secure_clear_free(p, n);
}

const struct file_mem seal_secure_mem = {sec_alloc, sec_release};

struct seal_key *seal_key_new(void)
{
    return OPENSSL_secure_zalloc(sizeof(struct seal_key));
}

void seal_key_free(struct seal_key *k)
{
    if (k != NULL)
        OPENSSL_secure_clear_free(k, sizeof(*k));
}

/* ---- the AEAD of one blob ---- */

static bool name_ok(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    return n > 0 && n <= SEAL_NAME_MAX;
}

void seal_header(unsigned char hdr[HDR_BYTES], const unsigned char magic[4], unsigned char v)
{
    memcpy(hdr, magic, 4);
    hdr[4] = v;
}

/* AAD: the header, then the name. */
static bool aad(EVP_CIPHER_CTX *c, bool enc, const unsigned char *hdr, const char *name)
{
    int l = 0;
    int (*upd)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int) =
        enc ? EVP_EncryptUpdate : EVP_DecryptUpdate;
    return upd(c, NULL, &l, hdr, HDR_BYTES) == 1 &&
           upd(c, NULL, &l, (const unsigned char *)name, (int)strlen(name)) == 1;
}

cd_err seal_aead_seal(const unsigned char key[SEAL_KEY_BYTES], const char *name, const void *pt,
                      size_t len, struct pki_buf *out)
{
    cd_err err = CD_ERR_CRYPTO;
    EVP_CIPHER_CTX *c = NULL;
    unsigned char *b;
    int l = 0;

    if (!name_ok(name) || (pt == NULL && len > 0))
        return CD_ERR_INVALID;
    if (len > SEAL_MAX_PLAINTEXT)
        return CD_ERR_TOO_LARGE;
    b = malloc(SEAL_OVERHEAD + len + 1);
    if (b == NULL)
        return CD_ERR_NOMEM;
    seal_header(b, blob_magic, BLOB_VERSION);
    unsigned char *nonce = b + HDR_BYTES, *ct = nonce + NONCE_BYTES, *tag = ct + len;
    if (RAND_bytes(nonce, NONCE_BYTES) != 1 || (c = EVP_CIPHER_CTX_new()) == NULL ||
        EVP_EncryptInit_ex(c, EVP_chacha20_poly1305(), NULL, key, nonce) != 1 ||
        !aad(c, true, b, name) || (len > 0 && EVP_EncryptUpdate(c, ct, &l, pt, (int)len) != 1) ||
        EVP_EncryptFinal_ex(c, ct + len, &l) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TAG_BYTES, tag) != 1)
        goto out;
    b[SEAL_OVERHEAD + len] = '\0';
    out->data = (char *)b;
    out->len = SEAL_OVERHEAD + len;
    b = NULL;
    err = CD_OK;
out:
    free(b);
    EVP_CIPHER_CTX_free(c);
    return err;
}

cd_err seal_aead_open(const unsigned char key[SEAL_KEY_BYTES], const char *name, const void *in,
                      size_t len, struct pki_buf *out)
{
    const unsigned char *b = in;
    unsigned char hdr[HDR_BYTES];
    EVP_CIPHER_CTX *c = NULL;
    cd_err err = CD_ERR_CRYPTO;
    char *pt = NULL;
    int l = 0;

    if (!name_ok(name) || in == NULL)
        return CD_ERR_INVALID;
    seal_header(hdr, blob_magic, BLOB_VERSION);
    if (len < SEAL_OVERHEAD || memcmp(b, hdr, HDR_BYTES) != 0)
        return CD_ERR_CRYPTO;
    size_t n = len - SEAL_OVERHEAD;
    if (n > SEAL_MAX_PLAINTEXT)
        return CD_ERR_TOO_LARGE;
    const unsigned char *nonce = b + HDR_BYTES, *ct = nonce + NONCE_BYTES, *tag = ct + n;
    pt = malloc(n + 1);
    if (pt == NULL)
        return CD_ERR_NOMEM;
    if ((c = EVP_CIPHER_CTX_new()) == NULL ||
        EVP_DecryptInit_ex(c, EVP_chacha20_poly1305(), NULL, key, nonce) != 1 ||
        !aad(c, false, hdr, name) ||
        (n > 0 && EVP_DecryptUpdate(c, (unsigned char *)pt, &l, ct, (int)n) != 1) ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, TAG_BYTES, (void *)tag) != 1 ||
        EVP_DecryptFinal_ex(c, (unsigned char *)pt + n, &l) != 1)
        goto out;
    pt[n] = '\0';
    out->data = pt;
    out->len = n;
    pt = NULL;
    err = CD_OK;
out:
    if (pt != NULL) {
        OPENSSL_cleanse(pt, n + 1);
        free(pt);
    }
    EVP_CIPHER_CTX_free(c);
    return err;
}

cd_err seal_encrypt(const struct seal_key *k, const char *name, const void *pt, size_t len,
                    struct pki_buf *out)
{
    if (k == NULL || out == NULL)
        return CD_ERR_INVALID;
    return seal_aead_seal(k->k, name, pt, len, out);
}

cd_err seal_decrypt(const struct seal_key *k, const char *name, const void *ct, size_t len,
                    struct pki_buf *out)
{
    if (k == NULL || out == NULL)
        return CD_ERR_INVALID;
    return seal_aead_open(k->k, name, ct, len, out);
}

/* ---- sealing key sources ---- */

/* 32 raw bytes, or 64 hex digits with an optional newline. */
static cd_err key_parse(const char *data, size_t len, unsigned char key[SEAL_KEY_BYTES])
{
    if (len == SEAL_KEY_BYTES) {
        memcpy(key, data, SEAL_KEY_BYTES);
        return CD_OK;
    }
    if (len == HEX_KEY_LEN + 1 && data[len - 1] == '\n')
        len--;
    if (len == HEX_KEY_LEN && codec_hex_decode(data, len, (uint8_t *)key, SEAL_KEY_BYTES) == CD_OK)
        return CD_OK;
    return CD_ERR_CONFIG;
}

static cd_err file_load(const char *path, unsigned char key[SEAL_KEY_BYTES], struct cd_diag *diag)
{
    const struct file_read_opts opts = {HEX_KEY_LEN + 1, 0, &seal_secure_mem};
    struct file_data fd_data = {0};
    struct stat sb;
    cd_err err = CD_ERR_CONFIG;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

    if (fd < 0) {
        if (errno == ENOENT) {
            cd_diag_add(diag, "sealing key file %s does not exist", path);
            return CD_ERR_NOT_FOUND;
        }
        if (errno == ELOOP) {
            cd_diag_add(diag, "sealing key file %s is a symbolic link", path);
            return CD_ERR_CONFIG;
        }
        cd_diag_add(diag, "cannot open sealing key file %s: %s", path, strerror(errno));
        return CD_ERR_IO;
    }
    if (fstat(fd, &sb) != 0) {
        cd_diag_add(diag, "cannot stat sealing key file %s", path);
        err = CD_ERR_IO;
    } else if (!S_ISREG(sb.st_mode)) {
        cd_diag_add(diag, "sealing key file %s is not a regular file", path);
    } else if (sb.st_uid != geteuid()) {
        cd_diag_add(diag, "sealing key file %s is owned by uid %u, not by this process's (%u)",
                    path, (unsigned)sb.st_uid, (unsigned)geteuid());
    } else if ((sb.st_mode & 0177) != 0) {
        cd_diag_add(diag, "sealing key file %s has mode %04o: it must be 0600 or stricter", path,
                    (unsigned)(sb.st_mode & 07777));
    } else if ((err = file_read_fd(fd, &opts, &fd_data)) != CD_OK) {
        cd_diag_add(diag, "cannot read sealing key file %s: %s", path,
                    err == CD_ERR_TOO_LARGE ? "not 32 bytes or 64 hex digits" : fd_data.why);
        if (err == CD_ERR_TOO_LARGE)
            err = CD_ERR_CONFIG;
    } else if ((err = key_parse(fd_data.data, fd_data.len, key)) != CD_OK) {
        cd_diag_add(diag, "sealing key file %s: not 32 bytes or 64 hex digits", path);
    }
    file_data_release(&fd_data, &seal_secure_mem);
    close(fd);
    return err;
}

/* fsync of the directory that holds path, so a new entry survives a crash. */
static void sync_parent(const char *path)
{
    char dir[PATH_MAX];
    if (strlen(path) >= sizeof(dir))
        return;
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static cd_err write_all(int fd, const void *data, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return CD_ERR_IO;
        off += (size_t)w;
    }
    return CD_OK;
}

/* A new file, O_EXCL (never an existing file or a link), with mode, holding data. */
cd_err seal_create_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return errno == EEXIST ? CD_ERR_EXISTS : errno == ENOENT ? CD_ERR_NOT_FOUND : CD_ERR_IO;
    cd_err err = CD_ERR_IO;
    if (fchmod(fd, mode) == 0 && write_all(fd, data, len) == CD_OK && fsync(fd) == 0)
        err = CD_OK;
    if (close(fd) != 0)
        err = CD_ERR_IO;
    if (err != CD_OK)
        unlink(path);
    else
        sync_parent(path);
    return err;
}

static cd_err file_create(const char *path, unsigned char key[SEAL_KEY_BYTES], struct cd_diag *diag)
{
    if (RAND_priv_bytes(key, SEAL_KEY_BYTES) != 1)
        return CD_ERR_CRYPTO;
    cd_err err = seal_create_file(path, key, SEAL_KEY_BYTES, 0600);
    if (err != CD_OK)
        cd_diag_add(diag, "cannot create sealing key file %s: %s", path, cd_strerror(err));
    return err;
}

static bool desc_ok(const char *desc, struct cd_diag *diag)
{
    size_t n = strlen(desc);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)desc[i] < 0x21 || (unsigned char)desc[i] > 0x7e)
            n = 0;
    if (n == 0 || n > KEYRING_DESC_MAX) {
        cd_diag_add(diag, "sealing keyring name: 1 to %d printable characters, no spaces",
                    KEYRING_DESC_MAX);
        return false;
    }
    return true;
}

static cd_err keyring_load(const char *desc, unsigned char key[SEAL_KEY_BYTES],
                           struct cd_diag *diag)
{
    const size_t CAP = HEX_KEY_LEN + 1;
    cd_err err = CD_ERR_CONFIG;

    if (!desc_ok(desc, diag))
        return CD_ERR_CONFIG;
    long id = keyctl_search(KEY_SPEC_USER_KEYRING, "user", desc, 0);
    if (id < 0) {
        if (errno == ENOKEY || errno == EKEYREVOKED || errno == EKEYEXPIRED) {
            cd_diag_add(diag, "no \"user\" key %s in the user keyring", desc);
            return CD_ERR_NOT_FOUND;
        }
        cd_diag_add(diag, "cannot search the user keyring for %s: %s", desc, strerror(errno));
        return CD_ERR_IO;
    }
    char *buf = OPENSSL_secure_malloc(CAP);
    if (buf == NULL)
        return CD_ERR_NOMEM;
    long n = keyctl_read((key_serial_t)id, buf, CAP);
    if (n < 0) {
        cd_diag_add(diag, "cannot read key %s of the user keyring: %s", desc, strerror(errno));
        err = CD_ERR_IO;
    } else if ((size_t)n > CAP || key_parse(buf, (size_t)n, key) != CD_OK) {
        cd_diag_add(diag, "key %s of the user keyring: not 32 bytes or 64 hex digits", desc);
    } else {
        err = CD_OK;
    }
    OPENSSL_secure_clear_free(buf, CAP);
    return err;
}

static cd_err keyring_create(const char *desc, unsigned char key[SEAL_KEY_BYTES],
                             struct cd_diag *diag)
{
    if (!desc_ok(desc, diag))
        return CD_ERR_CONFIG;
    if (RAND_priv_bytes(key, SEAL_KEY_BYTES) != 1)
        return CD_ERR_CRYPTO;
    key_serial_t id = add_key("user", desc, key, SEAL_KEY_BYTES, KEY_SPEC_USER_KEYRING);
    if (id < 0) {
        cd_diag_add(diag, "cannot add key %s to the user keyring: %s", desc, strerror(errno));
        return CD_ERR_IO;
    }
    /* Like a 0600 file: its uid may read it without possessing it. */
    if (keyctl_setperm(id, KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_READ | KEY_USR_SEARCH) != 0) {
        cd_diag_add(diag, "cannot set the permissions of key %s: %s", desc, strerror(errno));
        (void)keyctl_invalidate(id);
        return CD_ERR_IO;
    }
    return CD_OK;
}

/* One entry per sealing source kind; a TEE's sealing key is one more entry
 * (seal.h). load: CD_ERR_NOT_FOUND when the key does not exist. create: a
 * new random key (CD_ERR_EXISTS when there is one). */
struct sealer {
    cd_err (*load)(const char *name, unsigned char key[SEAL_KEY_BYTES], struct cd_diag *diag);
    cd_err (*create)(const char *name, unsigned char key[SEAL_KEY_BYTES], struct cd_diag *diag);
};

static const struct sealer sealers[] = {
    [SEAL_SOURCE_FILE] = {file_load, file_create},
    [SEAL_SOURCE_KEYRING] = {keyring_load, keyring_create},
};

/* The sealing key into key (locked memory); created when missing and may_create. */
cd_err seal_sealing_key(const struct seal_source *src, bool may_create,
                        unsigned char key[SEAL_KEY_BYTES], bool *created, struct cd_diag *diag)
{
    *created = false;
    if (src == NULL || src->name == NULL ||
        (unsigned)src->kind >= sizeof(sealers) / sizeof(sealers[0])) {
        cd_diag_add(diag, "no sealing key source");
        return CD_ERR_INVALID;
    }
    const struct sealer *s = &sealers[src->kind];
    struct cd_diag quiet;
    cd_diag_init(&quiet);
    cd_err err = s->load(src->name, key, may_create ? &quiet : diag);
    if (err == CD_ERR_NOT_FOUND && may_create) {
        err = s->create(src->name, key, diag);
        *created = err == CD_OK;
    } else if (err != CD_OK && may_create && quiet.len > 0) {
        cd_diag_add(diag, "%.*s", (int)quiet.len - 1, quiet.text);
    }
    return err;
}

/* ---- the state directory ---- */

void seal_casdir_close(struct casdir *d)
{
    if (d->lockfd >= 0)
        close(d->lockfd);
    if (d->fd >= 0)
        close(d->fd);
    d->fd = d->lockfd = -1;
}

/* Opens (create: makes) STATE/cas and takes its lock. */
cd_err seal_casdir_open(const char *state_dir, bool create, struct casdir *d, struct cd_diag *diag)
{
    cd_err err;
    d->fd = d->lockfd = -1;
    int n = snprintf(d->root, sizeof(d->root), "%s/cas", state_dir);
    if (n < 0 || (size_t)n >= sizeof(d->root) - 64) {
        cd_diag_add(diag, "state directory name too long");
        return CD_ERR_TOO_LARGE;
    }
    if (create) {
        if (mkdir(state_dir, 0711) != 0 && errno != EEXIST) {
            cd_diag_add(diag, "cannot create %s: %s", state_dir, strerror(errno));
            return CD_ERR_IO;
        }
        err = store_open_dirs(state_dir, "cas", 0700, (uid_t)-1, (gid_t)-1, &d->fd);
    } else {
        d->fd = open(d->root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        err = d->fd >= 0 ? CD_OK : errno == ENOENT ? CD_ERR_NOT_FOUND : CD_ERR_IO;
    }
    if (err != CD_OK) {
        cd_diag_add(diag, "cannot open %s: %s", d->root, cd_strerror(err));
        return err;
    }
    if ((err = store_lock(d->fd, &d->lockfd)) != CD_OK) {
        cd_diag_add(diag, "cannot lock %s: %s", d->root, cd_strerror(err));
        seal_casdir_close(d);
    }
    return err;
}

cd_err seal_read_at(const struct casdir *d, const char *rel, size_t max, struct pki_buf *out)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", d->root, rel);
    if (n < 0 || (size_t)n >= sizeof(path))
        return CD_ERR_TOO_LARGE;
    return store_read_file(path, max, out);
}

cd_err seal_write_state_key(const struct casdir *d, const unsigned char sk[SEAL_KEY_BYTES],
                            const struct seal_key *k, struct cd_diag *diag)
{
    struct pki_buf b = {0};
    bool changed = false;
    cd_err err = seal_aead_seal(sk, STATE_KEY_NAME, k->k, SEAL_KEY_BYTES, &b);
    if (err == CD_OK)
        err = store_write_at(d->fd, STATE_KEY_NAME, b.data, b.len, 0600, (uid_t)-1, (gid_t)-1,
                             &changed);
    if (err != CD_OK)
        cd_diag_add(diag, "cannot write %s/%s: %s", d->root, STATE_KEY_NAME, cd_strerror(err));
    pki_buf_release(&b);
    return err;
}

/* ---- seal_open ---- */

static cd_err open_existing(const struct casdir *d, const struct pki_buf *sealed,
                            const struct seal_source *src, struct seal_key *k, struct cd_diag *diag)
{
    struct pki_buf pt = {0};
    bool created = false;
    unsigned char *sk = OPENSSL_secure_malloc(SEAL_KEY_BYTES);
    cd_err err = sk != NULL ? seal_sealing_key(src, false, sk, &created, diag) : CD_ERR_NOMEM;

    if (err == CD_OK) {
        err = seal_aead_open(sk, STATE_KEY_NAME, sealed->data, sealed->len, &pt);
        if (err == CD_OK && pt.len != SEAL_KEY_BYTES)
            err = CD_ERR_CRYPTO;
        if (err == CD_OK)
            memcpy(k->k, pt.data, SEAL_KEY_BYTES);
        else
            cd_diag_add(diag,
                        "%s/%s does not open with this sealing key (another key, or the "
                        "file was altered)",
                        d->root, STATE_KEY_NAME);
    }
    pki_buf_release(&pt);
    OPENSSL_secure_clear_free(sk, SEAL_KEY_BYTES);
    return err;
}

static cd_err first_start(const struct casdir *d, const struct seal_source *src,
                          const struct seal_recovery *rec, struct seal_key *k, struct cd_diag *diag)
{
    bool created = false;
    unsigned char *sk = OPENSSL_secure_malloc(SEAL_KEY_BYTES);
    cd_err err = sk != NULL ? CD_OK : CD_ERR_NOMEM;

    /* The recovery wraps first: a bad recovery key creates no sealing key. */
    if (err == CD_OK && RAND_priv_bytes(k->k, SEAL_KEY_BYTES) != 1)
        err = CD_ERR_CRYPTO;
    if (err == CD_OK && rec != NULL && rec->n > 0)
        err = seal_recovery_write(d, rec, k, diag);
    else if (err == CD_OK)
        cd_diag_add(diag, "note: no recovery keys: losing the sealing key loses the state");
    if (err == CD_OK)
        err = seal_sealing_key(src, true, sk, &created, diag);
    if (err == CD_OK)
        err = seal_write_state_key(d, sk, k, diag);
    OPENSSL_secure_clear_free(sk, SEAL_KEY_BYTES);
    return err;
}

cd_err seal_open(const char *state_dir, const struct seal_source *src,
                 const struct seal_recovery *rec, struct cd_diag *diag, struct seal_key **out)
{
    struct casdir d = {.fd = -1, .lockfd = -1};
    struct pki_buf sealed = {0};
    struct seal_key *k = NULL;
    cd_err err;

    if (state_dir == NULL || out == NULL)
        return CD_ERR_INVALID;
    if ((err = seal_recovery_check(rec, diag)) != CD_OK || (err = seal_secure_init(diag)) != CD_OK)
        return err;
    if ((err = seal_casdir_open(state_dir, true, &d, diag)) != CD_OK)
        return err;
    if ((k = seal_key_new()) == NULL) {
        err = CD_ERR_NOMEM;
        goto out;
    }
    err = seal_read_at(&d, STATE_KEY_NAME, 4096, &sealed);
    if (err == CD_OK)
        err = open_existing(&d, &sealed, src, k, diag);
    else if (err == CD_ERR_NOT_FOUND)
        err = first_start(&d, src, rec, k, diag);
    else
        cd_diag_add(diag, "cannot read %s/%s: %s", d.root, STATE_KEY_NAME, cd_strerror(err));
    if (err != CD_OK)
        goto out;
    *out = k;
    k = NULL;
out:
    pki_buf_release(&sealed);
    seal_key_free(k);
    seal_casdir_close(&d);
    return err;
}
