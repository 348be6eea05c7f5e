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

#define HDR_BYTES 5
#define NONCE_BYTES 12
#define TAG_BYTES 16
#define BLOB_VERSION 1
#define WRAP_VERSION 1
#define X25519_BYTES 32
#define WRAP_HDR_BYTES (HDR_BYTES + X25519_BYTES)
#define ID_BYTES 32
#define PAYLOAD_BYTES (2 + ID_BYTES + SEAL_KEY_BYTES)
#define STATE_KEY_NAME "state-key.sealed"
#define INDEX_NAME "index"
#define INDEX_MAX 4096
#define KEY_FILE_MAX 4096
#define KEYRING_DESC_MAX 255
/* OpenSSL's secure heap also holds the private-key BIGNUMs of every key the
 * process loads once it is set up; 1 MiB is far below RLIMIT_MEMLOCK's
 * usual 8 MiB. */
#define SECURE_HEAP_BYTES ((size_t)1024 * 1024)
#define HEX_KEY_LEN ((size_t)2 * SEAL_KEY_BYTES)
#define SHARES_MAX_BYTES ((size_t)SEAL_MAX_RECOVERY * SEAL_KEY_BYTES)
#define WRAP_INFO "confidoc-cas recovery wrap 1"
#define ID_CONTEXT "confidoc-cas state key id"
#define INDEX_HEAD "confidoc-cas recovery 1\n"

static const unsigned char blob_magic[4] = {'C', 'D', 'S', 'L'};
static const unsigned char wrap_magic[4] = {'C', 'D', 'R', 'W'};

struct seal_key {
    unsigned char k[SEAL_KEY_BYTES];
};

/* ---- locked memory ---- */

/* The secure heap is mlock'ed and kept out of core dumps by OpenSSL; the
 * state key, the sealing key and every key file live there. */
static cd_err secure_init(struct cd_diag *diag)
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

static const struct file_mem secure_mem = {sec_alloc, sec_release};

static struct seal_key *key_new(void)
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

static void header(unsigned char hdr[HDR_BYTES], const unsigned char magic[4], unsigned char v)
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

static cd_err aead_seal(const unsigned char key[SEAL_KEY_BYTES], const char *name, const void *pt,
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
    header(b, blob_magic, BLOB_VERSION);
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

static cd_err aead_open(const unsigned char key[SEAL_KEY_BYTES], const char *name, const void *in,
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
    header(hdr, blob_magic, BLOB_VERSION);
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
    return aead_seal(k->k, name, pt, len, out);
}

cd_err seal_decrypt(const struct seal_key *k, const char *name, const void *ct, size_t len,
                    struct pki_buf *out)
{
    if (k == NULL || out == NULL)
        return CD_ERR_INVALID;
    return aead_open(k->k, name, ct, len, out);
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
    const struct file_read_opts opts = {HEX_KEY_LEN + 1, 0, &secure_mem};
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
    file_data_release(&fd_data, &secure_mem);
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
static cd_err create_file(const char *path, const void *data, size_t len, mode_t mode)
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
    cd_err err = create_file(path, key, SEAL_KEY_BYTES, 0600);
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
static cd_err sealing_key(const struct seal_source *src, bool may_create,
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

struct casdir {
    char root[PATH_MAX]; /* STATE/cas */
    int fd;
    int lockfd;
};

static void casdir_close(struct casdir *d)
{
    if (d->lockfd >= 0)
        close(d->lockfd);
    if (d->fd >= 0)
        close(d->fd);
    d->fd = d->lockfd = -1;
}

/* Opens (create: makes) STATE/cas and takes its lock. */
static cd_err casdir_open(const char *state_dir, bool create, struct casdir *d,
                          struct cd_diag *diag)
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
        casdir_close(d);
    }
    return err;
}

static cd_err read_at(const struct casdir *d, const char *rel, size_t max, struct pki_buf *out)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", d->root, rel);
    if (n < 0 || (size_t)n >= sizeof(path))
        return CD_ERR_TOO_LARGE;
    return store_read_file(path, max, out);
}

static cd_err write_state_key(const struct casdir *d, const unsigned char sk[SEAL_KEY_BYTES],
                              const struct seal_key *k, struct cd_diag *diag)
{
    struct pki_buf b = {0};
    bool changed = false;
    cd_err err = aead_seal(sk, STATE_KEY_NAME, k->k, SEAL_KEY_BYTES, &b);
    if (err == CD_OK)
        err = store_write_at(d->fd, STATE_KEY_NAME, b.data, b.len, 0600, (uid_t)-1, (gid_t)-1,
                             &changed);
    if (err != CD_OK)
        cd_diag_add(diag, "cannot write %s/%s: %s", d->root, STATE_KEY_NAME, cd_strerror(err));
    pki_buf_release(&b);
    return err;
}

/* ---- X25519 recovery wraps ---- */

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static cd_err read_pem_key(const char *path, bool private, EVP_PKEY **out, struct cd_diag *diag)
{
    const struct file_read_opts opts = {KEY_FILE_MAX, FILE_NOFOLLOW | (private ? FILE_NO_GROUP : 0),
                                        private ? &secure_mem : NULL};
    struct file_data f = {0};
    EVP_PKEY *k = NULL;
    cd_err err = file_read(path, &opts, &f);

    if (err != CD_OK) {
        cd_diag_add(diag, "cannot read %s key %s: %s", private ? "private" : "public", path, f.why);
        return err;
    }
    BIO *bio = BIO_new_mem_buf(f.data, (int)f.len);
    if (bio != NULL)
        k = private ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                    : PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    file_data_release(&f, opts.mem);
    if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_X25519) {
        cd_diag_add(diag, "%s: not an X25519 %s key (PEM)", path, private ? "private" : "public");
        EVP_PKEY_free(k);
        return CD_ERR_CONFIG;
    }
    *out = k;
    return CD_OK;
}

static cd_err raw_pub(const EVP_PKEY *k, unsigned char pub[X25519_BYTES])
{
    size_t l = X25519_BYTES;
    return EVP_PKEY_get_raw_public_key(k, pub, &l) == 1 && l == X25519_BYTES ? CD_OK
                                                                             : CD_ERR_CRYPTO;
}

static cd_err pub_hash(const EVP_PKEY *k, char hex[PKI_FP_HEX])
{
    unsigned char pub[X25519_BYTES];
    cd_err err = raw_pub(k, pub);
    if (err == CD_OK)
        pki_sha256_hex(pub, sizeof(pub), hex);
    return err;
}

/* The wrap key: HKDF-SHA256 over X25519(priv, peer), salt = ephemeral pub ||
 * recipient pub, info WRAP_INFO. */
static cd_err wrap_key(EVP_PKEY *priv, EVP_PKEY *peer, const unsigned char epub[X25519_BYTES],
                       const unsigned char rpub[X25519_BYTES], unsigned char out[SEAL_KEY_BYTES])
{
    unsigned char shared[X25519_BYTES], salt[2 * X25519_BYTES];
    size_t slen = sizeof(shared);
    cd_err err = CD_ERR_CRYPTO;
    EVP_PKEY_CTX *dc = EVP_PKEY_CTX_new(priv, NULL);
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kc = NULL;

    if (dc == NULL || EVP_PKEY_derive_init(dc) != 1 || EVP_PKEY_derive_set_peer(dc, peer) != 1 ||
        EVP_PKEY_derive(dc, shared, &slen) != 1 || slen != sizeof(shared))
        goto out;
    memcpy(salt, epub, X25519_BYTES);
    memcpy(salt + X25519_BYTES, rpub, X25519_BYTES);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, shared, sizeof(shared)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof(salt)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (char *)WRAP_INFO,
                                          sizeof(WRAP_INFO) - 1),
        OSSL_PARAM_construct_end(),
    };
    if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL || (kc = EVP_KDF_CTX_new(kdf)) == NULL ||
        EVP_KDF_derive(kc, out, SEAL_KEY_BYTES, params) != 1)
        goto out;
    err = CD_OK;
out:
    OPENSSL_cleanse(shared, sizeof(shared));
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    EVP_PKEY_CTX_free(dc);
    return err;
}

static cd_err wrap_to(EVP_PKEY *recip, const char *name, const unsigned char *pt, size_t len,
                      struct pki_buf *out)
{
    unsigned char rpub[X25519_BYTES], epub[X25519_BYTES], *wk = NULL;
    struct pki_buf blob = {0};
    EVP_PKEY *eph = NULL;
    cd_err err = CD_ERR_CRYPTO;

    if ((wk = OPENSSL_secure_malloc(SEAL_KEY_BYTES)) == NULL)
        return CD_ERR_NOMEM;
    if (raw_pub(recip, rpub) != CD_OK || (eph = EVP_PKEY_Q_keygen(NULL, NULL, "X25519")) == NULL ||
        raw_pub(eph, epub) != CD_OK || wrap_key(eph, recip, epub, rpub, wk) != CD_OK)
        goto out;
    if ((err = aead_seal(wk, name, pt, len, &blob)) != CD_OK)
        goto out;
    err = CD_ERR_NOMEM;
    char *b = malloc(WRAP_HDR_BYTES + blob.len + 1);
    if (b == NULL)
        goto out;
    header((unsigned char *)b, wrap_magic, WRAP_VERSION);
    memcpy(b + HDR_BYTES, epub, X25519_BYTES);
    memcpy(b + WRAP_HDR_BYTES, blob.data, blob.len + 1);
    out->data = b;
    out->len = WRAP_HDR_BYTES + blob.len;
    err = CD_OK;
out:
    pki_buf_release(&blob);
    EVP_PKEY_free(eph);
    OPENSSL_secure_clear_free(wk, SEAL_KEY_BYTES);
    return err;
}

static cd_err unwrap_with(EVP_PKEY *priv, const char *name, const char *in, size_t len,
                          struct pki_buf *out)
{
    unsigned char hdr[HDR_BYTES], rpub[X25519_BYTES], *wk = NULL;
    EVP_PKEY *peer = NULL;
    cd_err err = CD_ERR_CRYPTO;

    header(hdr, wrap_magic, WRAP_VERSION);
    if (len < WRAP_HDR_BYTES + SEAL_OVERHEAD || memcmp(in, hdr, HDR_BYTES) != 0)
        return CD_ERR_CRYPTO;
    const unsigned char *epub = (const unsigned char *)in + HDR_BYTES;
    if ((wk = OPENSSL_secure_malloc(SEAL_KEY_BYTES)) == NULL)
        return CD_ERR_NOMEM;
    if (raw_pub(priv, rpub) != CD_OK ||
        (peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, epub, X25519_BYTES)) == NULL ||
        wrap_key(priv, peer, epub, rpub, wk) != CD_OK)
        goto out;
    err = aead_open(wk, name, in + WRAP_HDR_BYTES, len - WRAP_HDR_BYTES, out);
out:
    EVP_PKEY_free(peer);
    OPENSSL_secure_clear_free(wk, SEAL_KEY_BYTES);
    return err;
}

/* SHA-256(ID_CONTEXT || key): names the state key without revealing it. */
static cd_err key_id(const unsigned char key[SEAL_KEY_BYTES], unsigned char id[ID_BYTES])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int l = 0;
    bool ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(c, ID_CONTEXT, sizeof(ID_CONTEXT) - 1) == 1 &&
              EVP_DigestUpdate(c, key, SEAL_KEY_BYTES) == 1 && EVP_DigestFinal_ex(c, id, &l) == 1 &&
              l == ID_BYTES;
    EVP_MD_CTX_free(c);
    return ok ? CD_OK : CD_ERR_CRYPTO;
}

/* libgfshare draws its polynomial coefficients through this hook. */
static bool gf_rand_failed;
static void gf_rand(unsigned char *buf, unsigned int n)
{
    if (RAND_priv_bytes(buf, (int)n) != 1)
        gf_rand_failed = true;
}

/* shares[i] (SEAL_KEY_BYTES each, locked memory) = share i+1 of key, k of n. */
static cd_err split(const unsigned char key[SEAL_KEY_BYTES], unsigned k, size_t n,
                    unsigned char *shares)
{
    unsigned char nrs[SEAL_MAX_RECOVERY];
    unsigned char *secret = OPENSSL_secure_malloc(SEAL_KEY_BYTES);
    cd_err err = CD_ERR_CRYPTO;

    if (secret == NULL)
        return CD_ERR_NOMEM;
    memcpy(secret, key, SEAL_KEY_BYTES);
    for (size_t i = 0; i < n; i++)
        nrs[i] = (unsigned char)(i + 1);
    gfshare_fill_rand = gf_rand;
    gf_rand_failed = false;
    gfshare_ctx *g = gfshare_ctx_init_enc(nrs, (unsigned)n, (unsigned char)k, SEAL_KEY_BYTES);
    if (g != NULL) {
        gfshare_ctx_enc_setsecret(g, secret);
        for (size_t i = 0; i < n; i++)
            gfshare_ctx_enc_getshare(g, (unsigned char)i, shares + i * SEAL_KEY_BYTES);
        gfshare_ctx_free(g);
        err = gf_rand_failed ? CD_ERR_CRYPTO : CD_OK;
    }
    OPENSSL_secure_clear_free(secret, SEAL_KEY_BYTES);
    return err;
}

static cd_err combine(const unsigned char *nrs, const unsigned char *shares, unsigned k,
                      unsigned char key[SEAL_KEY_BYTES])
{
    unsigned char n[SEAL_MAX_RECOVERY];
    memcpy(n, nrs, k);
    gfshare_fill_rand = gf_rand;
    gfshare_ctx *g = gfshare_ctx_init_dec(n, k, SEAL_KEY_BYTES);
    if (g == NULL)
        return CD_ERR_NOMEM;
    for (unsigned i = 0; i < k; i++)
        gfshare_ctx_dec_giveshare(g, (unsigned char)i,
                                  (unsigned char *)shares + (size_t)i * SEAL_KEY_BYTES);
    gfshare_ctx_dec_extract(g, key);
    gfshare_ctx_free(g);
    return CD_OK;
}

static void wrap_name(size_t i, char *out, size_t outlen)
{
    snprintf(out, outlen, "recovery/%zu.wrap", i + 1);
}

static cd_err recovery_check(const struct seal_recovery *rec, struct cd_diag *diag)
{
    if (rec == NULL || rec->n == 0)
        return CD_OK;
    if (rec->pubkeys == NULL || rec->n > SEAL_MAX_RECOVERY) {
        cd_diag_add(diag, "at most %d recovery keys", SEAL_MAX_RECOVERY);
        return CD_ERR_INVALID;
    }
    if (rec->threshold < 1 || rec->threshold > rec->n) {
        cd_diag_add(diag, "recovery threshold %u: must be 1 to %zu (the number of keys)",
                    rec->threshold, rec->n);
        return CD_ERR_INVALID;
    }
    return CD_OK;
}

/* Writes recovery/N.wrap for every key, then recovery/index. */
static cd_err recovery_write(const struct casdir *d, const struct seal_recovery *rec,
                             const struct seal_key *k, struct cd_diag *diag)
{
    EVP_PKEY *keys[SEAL_MAX_RECOVERY] = {0};
    char hashes[SEAL_MAX_RECOVERY][PKI_FP_HEX], name[64], index[INDEX_MAX];
    unsigned char *shares = NULL, *payload = NULL;
    struct pki_buf w = {0};
    bool changed = false;
    int rfd = -1;
    size_t len = 0;
    cd_err err = CD_OK;

    for (size_t i = 0; i < rec->n && err == CD_OK; i++) {
        err = read_pem_key(rec->pubkeys[i], false, &keys[i], diag);
        if (err == CD_OK && (err = pub_hash(keys[i], hashes[i])) == CD_OK)
            for (size_t j = 0; j < i; j++)
                if (strcmp(hashes[i], hashes[j]) == 0) {
                    cd_diag_add(diag, "recovery key %s is given twice", rec->pubkeys[i]);
                    err = CD_ERR_CONFIG;
                }
    }
    if (err != CD_OK)
        goto out;
    err = CD_ERR_NOMEM;
    if ((shares = OPENSSL_secure_malloc(rec->n * SEAL_KEY_BYTES)) == NULL ||
        (payload = OPENSSL_secure_malloc(PAYLOAD_BYTES)) == NULL)
        goto out;
    err = CD_OK;
    if (rec->threshold > 1)
        err = split(k->k, rec->threshold, rec->n, shares);
    else
        for (size_t i = 0; i < rec->n; i++)
            memcpy(shares + i * SEAL_KEY_BYTES, k->k, SEAL_KEY_BYTES);
    if (err != CD_OK)
        goto out;
    payload[0] = (unsigned char)rec->threshold;
    if ((err = key_id(k->k, payload + 2)) != CD_OK)
        goto out;
    if ((err = store_open_dirs(d->root, "recovery", 0700, (uid_t)-1, (gid_t)-1, &rfd)) != CD_OK)
        goto out;
    len = (size_t)snprintf(index, sizeof(index), "%sthreshold %u\n", INDEX_HEAD, rec->threshold);
    for (size_t i = 0; i < rec->n && err == CD_OK; i++) {
        payload[1] = rec->threshold > 1 ? (unsigned char)(i + 1) : 0;
        memcpy(payload + 2 + ID_BYTES, shares + i * SEAL_KEY_BYTES, SEAL_KEY_BYTES);
        wrap_name(i, name, sizeof(name));
        err = wrap_to(keys[i], name, payload, PAYLOAD_BYTES, &w);
        if (err == CD_OK)
            err = store_write_at(rfd, strchr(name, '/') + 1, w.data, w.len, 0600, (uid_t)-1,
                                 (gid_t)-1, &changed);
        pki_buf_release(&w);
        len += (size_t)snprintf(index + len, sizeof(index) - len, "key %zu %s\n", i + 1, hashes[i]);
    }
    if (err == CD_OK)
        err = store_write_at(rfd, INDEX_NAME, index, len, 0600, (uid_t)-1, (gid_t)-1, &changed);
out:
    if (err != CD_OK)
        cd_diag_add(diag, "cannot write the recovery wraps in %s/recovery: %s", d->root,
                    cd_strerror(err));
    if (rfd >= 0)
        close(rfd);
    for (size_t i = 0; i < SEAL_MAX_RECOVERY; i++)
        EVP_PKEY_free(keys[i]);
    if (shares != NULL)
        OPENSSL_secure_clear_free(shares, rec->n * SEAL_KEY_BYTES);
    if (payload != NULL)
        OPENSSL_secure_clear_free(payload, PAYLOAD_BYTES);
    return err;
}

/* ---- seal_open ---- */

static cd_err open_existing(const struct casdir *d, const struct pki_buf *sealed,
                            const struct seal_source *src, struct seal_key *k, struct cd_diag *diag)
{
    struct pki_buf pt = {0};
    bool created = false;
    unsigned char *sk = OPENSSL_secure_malloc(SEAL_KEY_BYTES);
    cd_err err = sk != NULL ? sealing_key(src, false, sk, &created, diag) : CD_ERR_NOMEM;

    if (err == CD_OK) {
        err = aead_open(sk, STATE_KEY_NAME, sealed->data, sealed->len, &pt);
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
        err = recovery_write(d, rec, k, diag);
    else if (err == CD_OK)
        cd_diag_add(diag, "note: no recovery keys: losing the sealing key loses the state");
    if (err == CD_OK)
        err = sealing_key(src, true, sk, &created, diag);
    if (err == CD_OK)
        err = write_state_key(d, sk, k, diag);
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
    if ((err = recovery_check(rec, diag)) != CD_OK || (err = secure_init(diag)) != CD_OK)
        return err;
    if ((err = casdir_open(state_dir, true, &d, diag)) != CD_OK)
        return err;
    if ((k = key_new()) == NULL) {
        err = CD_ERR_NOMEM;
        goto out;
    }
    err = read_at(&d, STATE_KEY_NAME, 4096, &sealed);
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
    casdir_close(&d);
    return err;
}

/* ---- recovery ---- */

struct index {
    unsigned threshold;
    size_t n;
    char hashes[SEAL_MAX_RECOVERY][PKI_FP_HEX];
};

static bool index_parse(const char *s, size_t len, struct index *ix)
{
    const char *p = s, *end = s + len;
    uint64_t v = 0;
    size_t hl = strlen(INDEX_HEAD);

    if (len < hl || memcmp(p, INDEX_HEAD, hl) != 0)
        return false;
    p += hl;
    if ((size_t)(end - p) < 10 || memcmp(p, "threshold ", 10) != 0)
        return false;
    p += 10;
    if (num_prefix(&p, end - p > 3 ? p + 3 : end, SEAL_MAX_RECOVERY, &v) != CD_OK || v == 0 ||
        p >= end || *p++ != '\n')
        return false;
    ix->threshold = (unsigned)v;
    ix->n = 0;
    while (p < end) {
        char want[16];
        int wl = snprintf(want, sizeof(want), "key %zu ", ix->n + 1);
        uint8_t raw[32];
        if (ix->n >= SEAL_MAX_RECOVERY || (size_t)(end - p) < (size_t)wl + PKI_FP_HEX ||
            memcmp(p, want, (size_t)wl) != 0)
            return false;
        p += wl;
        if (codec_hex_decode(p, PKI_FP_HEX - 1, raw, sizeof(raw)) != CD_OK ||
            p[PKI_FP_HEX - 1] != '\n')
            return false;
        codec_hex_encode(raw, sizeof(raw), ix->hashes[ix->n++]);
        p += PKI_FP_HEX;
    }
    return ix->n >= ix->threshold;
}

struct got {
    size_t slot; /* index entry, 0-based */
    unsigned char *payload;
};

/* Opens the wrap of the index entry this private key matches. */
static cd_err recover_one(const struct casdir *d, const struct index *ix, const char *path,
                          struct got *g, struct cd_diag *diag)
{
    char hash[PKI_FP_HEX], name[64];
    struct pki_buf w = {0}, pt = {0};
    EVP_PKEY *priv = NULL;
    cd_err err = read_pem_key(path, true, &priv, diag);

    if (err != CD_OK)
        return err;
    if ((err = pub_hash(priv, hash)) != CD_OK)
        goto out;
    g->slot = ix->n;
    for (size_t i = 0; i < ix->n; i++)
        if (strcmp(ix->hashes[i], hash) == 0)
            g->slot = i;
    if (g->slot == ix->n) {
        cd_diag_add(diag, "%s is not one of this state's recovery keys", path);
        err = CD_ERR_AUTH;
        goto out;
    }
    wrap_name(g->slot, name, sizeof(name));
    if ((err = read_at(d, name, 4096, &w)) != CD_OK) {
        cd_diag_add(diag, "cannot read %s/%s: %s", d->root, name, cd_strerror(err));
        goto out;
    }
    err = unwrap_with(priv, name, w.data, w.len, &pt);
    if (err == CD_OK && pt.len != PAYLOAD_BYTES)
        err = CD_ERR_CRYPTO;
    if (err != CD_OK) {
        cd_diag_add(diag, "%s/%s does not open with %s", d->root, name, path);
        goto out;
    }
    if ((g->payload = OPENSSL_secure_malloc(PAYLOAD_BYTES)) == NULL) {
        err = CD_ERR_NOMEM;
        goto out;
    }
    memcpy(g->payload, pt.data, PAYLOAD_BYTES);
out:
    pki_buf_release(&w);
    pki_buf_release(&pt);
    EVP_PKEY_free(priv);
    return err;
}

/* The state key from the opened wraps: each must name the index's threshold
 * and its own share number, all the same key id, and the result that id. */
static cd_err reconstruct(const struct index *ix, const struct got *g, size_t ng,
                          struct seal_key *k, struct cd_diag *diag)
{
    unsigned char nrs[SEAL_MAX_RECOVERY], id[ID_BYTES];
    unsigned char *shares = OPENSSL_secure_malloc(SHARES_MAX_BYTES);
    cd_err err = CD_ERR_CRYPTO;

    if (shares == NULL)
        return CD_ERR_NOMEM;
    for (size_t i = 0; i < ng; i++) {
        const unsigned char *p = g[i].payload;
        unsigned want = ix->threshold > 1 ? (unsigned)(g[i].slot + 1) : 0;
        if (p[0] != ix->threshold || p[1] != want ||
            CRYPTO_memcmp(p + 2, g[0].payload + 2, ID_BYTES) != 0) {
            cd_diag_add(diag, "recovery wrap %zu does not belong with the others", g[i].slot + 1);
            goto out;
        }
        nrs[i] = p[1];
        memcpy(shares + i * SEAL_KEY_BYTES, p + 2 + ID_BYTES, SEAL_KEY_BYTES);
    }
    if (ix->threshold == 1)
        memcpy(k->k, shares, SEAL_KEY_BYTES);
    else if ((err = combine(nrs, shares, ix->threshold, k->k)) != CD_OK)
        goto out;
    err = CD_ERR_CRYPTO;
    if (key_id(k->k, id) != CD_OK || CRYPTO_memcmp(id, g[0].payload + 2, ID_BYTES) != 0) {
        cd_diag_add(diag, "the recovery shares do not give this state's key back");
        goto out;
    }
    err = CD_OK;
out:
    OPENSSL_secure_clear_free(shares, SHARES_MAX_BYTES);
    return err;
}

cd_err seal_recover(const char *state_dir, const char *const *privkeys, size_t n,
                    const struct seal_source *new_src, struct cd_diag *diag)
{
    struct casdir d = {.fd = -1, .lockfd = -1};
    struct got g[SEAL_MAX_RECOVERY] = {0};
    struct index ix = {0};
    struct pki_buf b = {0};
    struct seal_key *k = NULL;
    unsigned char *sk = NULL;
    size_t ng = 0;
    bool created = false;
    cd_err err;

    if (state_dir == NULL || privkeys == NULL || n == 0 || n > SEAL_MAX_RECOVERY) {
        cd_diag_add(diag, "give 1 to %d recovery private keys", SEAL_MAX_RECOVERY);
        return CD_ERR_INVALID;
    }
    if ((err = secure_init(diag)) != CD_OK ||
        (err = casdir_open(state_dir, false, &d, diag)) != CD_OK)
        return err;
    if ((err = read_at(&d, "recovery/" INDEX_NAME, INDEX_MAX, &b)) != CD_OK) {
        cd_diag_add(diag, "cannot read %s/recovery/%s: %s", d.root, INDEX_NAME,
                    err == CD_ERR_NOT_FOUND ? "this state has no recovery keys" : cd_strerror(err));
        goto out;
    }
    if (!index_parse(b.data, b.len, &ix)) {
        cd_diag_add(diag, "%s/recovery/%s is not a recovery index", d.root, INDEX_NAME);
        err = CD_ERR_CONFIG;
        goto out;
    }
    /* Every key given must be one of the recovery keys (a mistyped path is
     * said, not skipped); a key given twice counts once. */
    for (size_t i = 0; i < n; i++) {
        struct got one = {0};
        if ((err = recover_one(&d, &ix, privkeys[i], &one, diag)) != CD_OK)
            goto out;
        bool dup = false;
        for (size_t j = 0; j < ng; j++)
            dup = dup || g[j].slot == one.slot;
        if (dup)
            OPENSSL_secure_clear_free(one.payload, PAYLOAD_BYTES);
        else
            g[ng++] = one;
    }
    if (ng < ix.threshold) {
        cd_diag_add(diag, "%zu distinct recovery key%s given, %u needed", ng, ng == 1 ? "" : "s",
                    ix.threshold);
        err = CD_ERR_AUTH;
        goto out;
    }
    err = CD_ERR_NOMEM;
    if ((k = key_new()) == NULL || (sk = OPENSSL_secure_malloc(SEAL_KEY_BYTES)) == NULL)
        goto out;
    if ((err = reconstruct(&ix, g, ng, k, diag)) != CD_OK ||
        (err = sealing_key(new_src, true, sk, &created, diag)) != CD_OK)
        goto out;
    err = write_state_key(&d, sk, k, diag);
out:
    for (size_t i = 0; i < ng; i++)
        OPENSSL_secure_clear_free(g[i].payload, PAYLOAD_BYTES);
    if (sk != NULL)
        OPENSSL_secure_clear_free(sk, SEAL_KEY_BYTES);
    seal_key_free(k);
    pki_buf_release(&b);
    casdir_close(&d);
    return err;
}

/* ---- recovery-keygen ---- */

static cd_err pem_of(EVP_PKEY *k, bool private, struct pki_buf *out)
{
    BIO *bio = BIO_new(private ? BIO_s_secmem() : BIO_s_mem());
    char *p = NULL;
    cd_err err = CD_ERR_CRYPTO;

    if (bio == NULL)
        return CD_ERR_NOMEM;
    int ok = private ? PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL)
                     : PEM_write_bio_PUBKEY(bio, k);
    long n = BIO_get_mem_data(bio, &p);
    if (ok == 1 && n > 0 && (out->data = malloc((size_t)n + 1)) != NULL) {
        memcpy(out->data, p, (size_t)n);
        out->data[n] = '\0';
        out->len = (size_t)n;
        err = CD_OK;
    }
    BIO_free(bio);
    return err;
}

cd_err seal_recovery_keygen(const char *priv_path, const char *pub_path)
{
    struct pki_buf priv = {0}, pub = {0};
    EVP_PKEY *k = NULL;
    cd_err err;

    if (priv_path == NULL || pub_path == NULL || strcmp(priv_path, pub_path) == 0)
        return CD_ERR_INVALID;
    if ((err = secure_init(NULL)) != CD_OK)
        return err;
    err = CD_ERR_CRYPTO;
    if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519")) == NULL)
        goto out;
    if ((err = pem_of(k, true, &priv)) != CD_OK || (err = pem_of(k, false, &pub)) != CD_OK)
        goto out;
    if ((err = create_file(priv_path, priv.data, priv.len, 0600)) != CD_OK)
        goto out;
    if ((err = create_file(pub_path, pub.data, pub.len, 0644)) != CD_OK)
        unlink(priv_path);
out:
    pki_buf_release(&priv);
    pki_buf_release(&pub);
    EVP_PKEY_free(k);
    return err;
}
