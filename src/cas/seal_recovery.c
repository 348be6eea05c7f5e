/* seal_recovery.c: the recovery of the CAS's state key: X25519 + HKDF-SHA256
 * wraps to the operators' recovery keys (1 of N, or k of N Shamir shares
 * with libgfshare), seal_recover and seal_recovery_keygen. */
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

static const unsigned char wrap_magic[4] = {'C', 'D', 'R', 'W'};

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
                                        private ? &seal_secure_mem : NULL};
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
 * recipient pub, info (WRAP_INFO for recovery wraps, BOX_INFO for boxes). */
static cd_err wrap_key(EVP_PKEY *priv, EVP_PKEY *peer, const unsigned char epub[X25519_BYTES],
                       const unsigned char rpub[X25519_BYTES], const char *info,
                       unsigned char out[SEAL_KEY_BYTES])
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
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (char *)info, strlen(info)),
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

static cd_err wrap_to(EVP_PKEY *recip, const char *info, const char *name, const void *pt,
                      size_t len, struct pki_buf *out)
{
    unsigned char rpub[X25519_BYTES], epub[X25519_BYTES], *wk = NULL;
    struct pki_buf blob = {0};
    EVP_PKEY *eph = NULL;
    cd_err err = CD_ERR_CRYPTO;

    if ((wk = OPENSSL_secure_malloc(SEAL_KEY_BYTES)) == NULL)
        return CD_ERR_NOMEM;
    if (raw_pub(recip, rpub) != CD_OK || (eph = EVP_PKEY_Q_keygen(NULL, NULL, "X25519")) == NULL ||
        raw_pub(eph, epub) != CD_OK || wrap_key(eph, recip, epub, rpub, info, wk) != CD_OK)
        goto out;
    if ((err = seal_aead_seal(wk, name, pt, len, &blob)) != CD_OK)
        goto out;
    err = CD_ERR_NOMEM;
    char *b = malloc(WRAP_HDR_BYTES + blob.len + 1);
    if (b == NULL)
        goto out;
    seal_header((unsigned char *)b, wrap_magic, WRAP_VERSION);
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

static cd_err unwrap_with(EVP_PKEY *priv, const char *info, const char *name, const char *in,
                          size_t len, struct pki_buf *out)
{
    unsigned char hdr[HDR_BYTES], rpub[X25519_BYTES], *wk = NULL;
    EVP_PKEY *peer = NULL;
    cd_err err = CD_ERR_CRYPTO;

    seal_header(hdr, wrap_magic, WRAP_VERSION);
    if (len < WRAP_HDR_BYTES + SEAL_OVERHEAD || memcmp(in, hdr, HDR_BYTES) != 0)
        return CD_ERR_CRYPTO;
    const unsigned char *epub = (const unsigned char *)in + HDR_BYTES;
    if ((wk = OPENSSL_secure_malloc(SEAL_KEY_BYTES)) == NULL)
        return CD_ERR_NOMEM;
    if (raw_pub(priv, rpub) != CD_OK ||
        (peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, epub, X25519_BYTES)) == NULL ||
        wrap_key(priv, peer, epub, rpub, info, wk) != CD_OK)
        goto out;
    err = seal_aead_open(wk, name, in + WRAP_HDR_BYTES, len - WRAP_HDR_BYTES, out);
out:
    EVP_PKEY_free(peer);
    OPENSSL_secure_clear_free(wk, SEAL_KEY_BYTES);
    return err;
}

/* ---- boxes to raw X25519 keys (seal.h) ---- */

cd_err seal_box_keygen(unsigned char priv[SEAL_BOX_KEY_BYTES],
                       unsigned char pub[SEAL_BOX_KEY_BYTES])
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    size_t l = SEAL_BOX_KEY_BYTES;
    cd_err err = k != NULL && EVP_PKEY_get_raw_private_key(k, priv, &l) == 1 &&
                         l == SEAL_BOX_KEY_BYTES && raw_pub(k, pub) == CD_OK
                     ? CD_OK
                     : CD_ERR_CRYPTO;
    EVP_PKEY_free(k);
    return err;
}

cd_err seal_box(const unsigned char pub[SEAL_BOX_KEY_BYTES], const char *name, const void *pt,
                size_t len, struct pki_buf *out)
{
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, SEAL_BOX_KEY_BYTES);
    cd_err err = k != NULL ? wrap_to(k, BOX_INFO, name, pt, len, out) : CD_ERR_CRYPTO;
    EVP_PKEY_free(k);
    return err;
}

cd_err seal_unbox(const unsigned char priv[SEAL_BOX_KEY_BYTES], const char *name, const void *in,
                  size_t len, struct pki_buf *out)
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, SEAL_BOX_KEY_BYTES);
    cd_err err = k != NULL ? unwrap_with(k, BOX_INFO, name, in, len, out) : CD_ERR_CRYPTO;
    EVP_PKEY_free(k);
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

cd_err seal_recovery_check(const struct seal_recovery *rec, struct cd_diag *diag)
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
cd_err seal_recovery_write(const struct casdir *d, const struct seal_recovery *rec,
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
        err = wrap_to(keys[i], WRAP_INFO, name, payload, PAYLOAD_BYTES, &w);
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
    if ((err = seal_read_at(d, name, 4096, &w)) != CD_OK) {
        cd_diag_add(diag, "cannot read %s/%s: %s", d->root, name, cd_strerror(err));
        goto out;
    }
    err = unwrap_with(priv, WRAP_INFO, name, w.data, w.len, &pt);
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
    if ((err = seal_secure_init(diag)) != CD_OK ||
        (err = seal_casdir_open(state_dir, false, &d, diag)) != CD_OK)
        return err;
    if ((err = seal_read_at(&d, "recovery/" INDEX_NAME, INDEX_MAX, &b)) != CD_OK) {
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
    if ((k = seal_key_new()) == NULL || (sk = OPENSSL_secure_malloc(SEAL_KEY_BYTES)) == NULL)
        goto out;
    if ((err = reconstruct(&ix, g, ng, k, diag)) != CD_OK ||
        (err = seal_sealing_key(new_src, true, sk, &created, diag)) != CD_OK)
        goto out;
    err = seal_write_state_key(&d, sk, k, diag);
out:
    for (size_t i = 0; i < ng; i++)
        OPENSSL_secure_clear_free(g[i].payload, PAYLOAD_BYTES);
    if (sk != NULL)
        OPENSSL_secure_clear_free(sk, SEAL_KEY_BYTES);
    seal_key_free(k);
    pki_buf_release(&b);
    seal_casdir_close(&d);
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
    if (ok == 1 && n > 0)
        err = pki_buf_copy(p, (size_t)n, out);
    if (n > 0)
        OPENSSL_cleanse(p, (size_t)n); /* a private key's PEM */
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
    if ((err = seal_secure_init(NULL)) != CD_OK)
        return err;
    err = CD_ERR_CRYPTO;
    if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519")) == NULL)
        goto out;
    if ((err = pem_of(k, true, &priv)) != CD_OK || (err = pem_of(k, false, &pub)) != CD_OK)
        goto out;
    if ((err = seal_create_file(priv_path, priv.data, priv.len, 0600)) != CD_OK)
        goto out;
    if ((err = seal_create_file(pub_path, pub.data, pub.len, 0644)) != CD_OK)
        unlink(priv_path);
out:
    pki_buf_release(&priv);
    pki_buf_release(&pub);
    EVP_PKEY_free(k);
    return err;
}
