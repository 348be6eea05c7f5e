/* auth_apppw.c: application passwords: creation (shown once), list, revoke,
 * and HTTP Basic logins with one (every call reads the account's rows). */
#include <string.h>

#include "auth/auth_int.h"
#include "common/codec.h"
#include "log/log.h"
#include "validate/validate.h"

#define APPPW_PREFIX_LEN (sizeof(AUTH_APPPW_PREFIX) - 1)
#define APPPW_AD_SK "confidoc-apppw-sk-v1"
#define APPPW_AD_NAME "confidoc-apppw-name-v1"
#define APPPW_AD_MAX (sizeof(APPPW_AD_NAME) - 1 + 8 + CRYPTO_UID_BYTES)

bool auth_apppw_shaped(const char *pw, size_t len)
{
    return len == AUTH_APPPW_STRLEN - 1 && memcmp(pw, AUTH_APPPW_PREFIX, APPPW_PREFIX_LEN) == 0;
}

/* What an application password's ciphertexts are bound to: a tag, its id and
 * the account's uid (moved to another row or account, they do not open). */
static size_t apppw_ad(uint8_t ad[APPPW_AD_MAX], const char *tag, uint64_t id,
                       const uint8_t uid[CRYPTO_UID_BYTES])
{
    size_t t = strlen(tag);

    memcpy(ad, tag, t); // NOLINT(bugprone-not-null-terminated-result): AD bytes, not a string
    for (int i = 0; i < 8; i++)
        ad[t + (size_t)i] = (uint8_t)(id >> (8 * i));
    memcpy(ad + t + 8, uid, CRYPTO_UID_BYTES);
    return t + 8 + CRYPTO_UID_BYTES;
}

static cd_err apppw_verifier(const auth *a, uint32_t version, const uint8_t raw[CRYPTO_KEY_BYTES],
                             const uint8_t uid[CRYPTO_UID_BYTES], uint8_t out[CRYPTO_HASH_BYTES])
{
    const struct crypto_part parts[2] = {{raw, CRYPTO_KEY_BYTES}, {uid, CRYPTO_UID_BYTES}};
    return crypto_keyed_hash(a->kr, version, CRYPTO_PURPOSE_APPPW_VERIFIER, parts, 2, out);
}

/* Unseals the secret key wrapped in r under raw. */
static cd_err apppw_unseal(const auth *a, const struct db_apppw *r,
                           const uint8_t raw[CRYPTO_KEY_BYTES], const uint8_t uid[CRYPTO_UID_BYTES],
                           uint8_t sk[CRYPTO_KEY_BYTES])
{
    uint8_t kek[CRYPTO_KEY_BYTES], ad[APPPW_AD_MAX];
    size_t adlen = apppw_ad(ad, APPPW_AD_SK, r->id, uid), n = 0;
    cd_err rc = crypto_secret_key(a->kr, r->mk_version, CRYPTO_PURPOSE_APPPW_KEK, raw, kek);

    if (rc == CD_OK)
        rc = crypto_aead_open(kek, ad, adlen, r->sk_wrapped, sizeof(r->sk_wrapped), sk,
                              CRYPTO_KEY_BYTES, &n);
    if (rc == CD_OK && n != CRYPTO_KEY_BYTES)
        rc = CD_ERR_CRYPTO;
    crypto_wipe(kek, sizeof(kek));
    return rc;
}

/* The row among rows whose verifier matches raw (each compared in constant
 * time, all of them); -1 when none. */
static int apppw_match(const auth *a, const struct db_apppw *rows, size_t n,
                       const uint8_t raw[CRYPTO_KEY_BYTES], const uint8_t uid[CRYPTO_UID_BYTES])
{
    uint8_t v[CRYPTO_HASH_BYTES];
    int hit = -1;

    for (size_t i = 0; i < n; i++) {
        if (apppw_verifier(a, rows[i].mk_version, raw, uid, v) == CD_OK &&
            crypto_equal(v, rows[i].verifier, sizeof(v)))
            hit = (int)i;
    }
    crypto_wipe(v, sizeof(v));
    return hit;
}

cd_err auth_apppw_login(auth *a, const struct auth_credentials *c, const struct db_user *row,
                        struct auth_principal *out, unsigned *retry_after_s,
                        const struct auth_hook *hook)
{
    struct db_apppw rows[AUTH_APPPW_MAX];
    uint8_t raw[CRYPTO_KEY_BYTES];
    struct auth_principal p;
    size_t n = 0;
    int hit = -1;
    cd_err rc;

    memset(&p, 0, sizeof(p));
    /* Refused while blocked, counted only when wrong, and a success resets
     * nothing: a script using its password many times a second, concurrently,
     * neither trips the block nor clears the count of guesses at the account
     * password (a 256-bit secret needs no counting before its check). */
    if (a->rl != NULL &&
        ratelimit_login_check(a->rl, c->user, c->user_len, retry_after_s) == CD_ERR_LIMITED) {
        auth_log_failure(a, c->user, c->user_len, "account temporarily blocked", hook);
        return CD_ERR_LIMITED;
    }
    /* The same statement whether the account exists or the text decodes (id
     * 0 names no account), so the answer time tells neither. */
    rc = db_apppw_list_user(a->db, row != NULL ? row->id : 0, rows, AUTH_APPPW_MAX, &n);
    if (rc != CD_OK)
        goto out;
    if (row != NULL &&
        codec_b64url_decode_exact(c->pass + APPPW_PREFIX_LEN, c->pass_len - APPPW_PREFIX_LEN, raw,
                                  sizeof(raw)) == CD_OK)
        hit = apppw_match(a, rows, n, raw, row->uid);
    if (hit < 0) {
        if (a->rl != NULL)
            ratelimit_login_failed(a->rl, c->user, c->user_len);
        auth_log_failure(a, c->user, c->user_len, "bad application password", hook);
        rc = CD_ERR_AUTH;
        goto out;
    }
    rc = apppw_unseal(a, &rows[hit], raw, row->uid, p.sk);
    if (rc != CD_OK) {
        log_errorx("req=%s application password %llu of user id %llu does not unseal: %s",
                   auth_hook_request_id(hook), (unsigned long long)rows[hit].id,
                   (unsigned long long)row->id, cd_strerror(rc));
        rc = CD_ERR_INTERNAL;
        goto out;
    }
    /* Best effort, at most once a minute per password. */
    if (rows[hit].use_stale)
        (void)db_apppw_touch(a->db, rows[hit].id);
    p.id = row->id;
    memcpy(p.uid, row->uid, sizeof(p.uid));
    p.auth_gen = row->auth_gen;
    p.via = AUTH_VIA_APP_PASSWORD;
    *out = p;
out:
    crypto_wipe(raw, sizeof(raw));
    crypto_wipe(rows, sizeof(rows));
    auth_principal_wipe(&p);
    return rc;
}

/* A name shown in lists: 1..AUTH_APPPW_NAME_MAX characters of UTF-8, none a
 * control character (C0, DEL, C1). */
static bool apppw_name_ok(const char *s, size_t len)
{
    size_t chars = 0;

    if (len == 0 || len > (size_t)AUTH_APPPW_NAME_MAX * 4 || !validate_utf8(s, len))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return false;
        if (ch == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] < 0xa0)
            return false; /* U+0080..U+009F */
        if ((ch & 0xc0) != 0x80)
            chars++;
    }
    return chars <= AUTH_APPPW_NAME_MAX;
}

struct apppw_new {
    const auth *a;
    const struct auth_principal *p;
    const uint8_t *raw;
    const char *name;
    size_t name_len;
};

/* db_apppw_seal_fn: seals the secret key and the name once the id is known. */
static cd_err apppw_seal(void *cls, struct db_apppw *r)
{
    const struct apppw_new *nw = cls;
    uint8_t kek[CRYPTO_KEY_BYTES], ad[APPPW_AD_MAX];
    size_t adlen = apppw_ad(ad, APPPW_AD_SK, r->id, nw->p->uid), n = 0;
    cd_err rc = crypto_secret_key(nw->a->kr, r->mk_version, CRYPTO_PURPOSE_APPPW_KEK, nw->raw, kek);

    if (rc == CD_OK)
        rc = crypto_aead_seal(kek, ad, adlen, nw->p->sk, CRYPTO_KEY_BYTES, r->sk_wrapped,
                              sizeof(r->sk_wrapped), &n);
    crypto_wipe(kek, sizeof(kek));
    if (rc != CD_OK)
        return rc;
    crypto_user_subkey(nw->p->sk, CRYPTO_USER_KEY_LABEL, kek);
    adlen = apppw_ad(ad, APPPW_AD_NAME, r->id, nw->p->uid);
    rc = crypto_aead_seal(kek, ad, adlen, nw->name, nw->name_len, r->name_ct, sizeof(r->name_ct),
                          &r->name_ct_len);
    crypto_wipe(kek, sizeof(kek));
    return rc;
}

cd_err auth_apppw_create(auth *a, const struct auth_principal *p, const char *name, size_t len,
                         uint64_t *id, char password[AUTH_APPPW_STRLEN])
{
    uint8_t raw[CRYPTO_KEY_BYTES];
    char text[AUTH_APPPW_STRLEN];
    struct db_apppw r;
    struct apppw_new nw = {a, p, raw, name, len};
    cd_err rc;

    if (!apppw_name_ok(name, len))
        return CD_ERR_INVALID;
    memset(&r, 0, sizeof(r));
    crypto_random(raw, sizeof(raw));
    memcpy(text, AUTH_APPPW_PREFIX, APPPW_PREFIX_LEN);
    rc = codec_b64url_encode(raw, sizeof(raw), text + APPPW_PREFIX_LEN,
                             sizeof(text) - APPPW_PREFIX_LEN);
    r.user_id = p->id;
    r.mk_version = crypto_keyring_newest(a->kr);
    if (rc == CD_OK)
        rc = apppw_verifier(a, r.mk_version, raw, p->uid, r.verifier);
    if (rc == CD_OK)
        rc = db_apppw_insert(a->db, &r, p->auth_gen, AUTH_APPPW_MAX, apppw_seal, &nw);
    if (rc == CD_ERR_AUTH)
        rc = CD_ERR_CONFLICT; /* the account changed since p was verified */
    if (rc == CD_OK) {
        *id = r.id;
        memcpy(password, text, sizeof(text));
    }
    crypto_wipe(raw, sizeof(raw));
    crypto_wipe(text, sizeof(text));
    crypto_wipe(&r, sizeof(r));
    return rc;
}

cd_err auth_apppw_list(auth *a, const struct auth_principal *p, struct auth_apppw_info *out,
                       size_t max, size_t *n)
{
    struct db_apppw rows[AUTH_APPPW_MAX];
    uint8_t kek[CRYPTO_KEY_BYTES], ad[APPPW_AD_MAX];
    size_t got = 0, k = 0;
    cd_err rc;

    rc = db_apppw_list_user(a->db, p->id, rows, max < AUTH_APPPW_MAX ? max : AUTH_APPPW_MAX, &got);
    if (rc != CD_OK)
        return rc;
    crypto_user_subkey(p->sk, CRYPTO_USER_KEY_LABEL, kek);
    for (size_t i = 0; i < got && rc == CD_OK; i++) {
        size_t adlen = apppw_ad(ad, APPPW_AD_NAME, rows[i].id, p->uid), len = 0;
        rc = crypto_aead_open(kek, ad, adlen, rows[i].name_ct, rows[i].name_ct_len,
                              (uint8_t *)out[k].name, sizeof(out[k].name) - 1, &len);
        if (rc != CD_OK)
            break;
        out[k].name[len] = '\0';
        out[k].id = rows[i].id;
        out[k].created_us = rows[i].created_us;
        out[k].last_used_us = rows[i].last_used_us;
        k++;
    }
    crypto_wipe(kek, sizeof(kek));
    crypto_wipe(rows, sizeof(rows));
    if (rc == CD_OK)
        *n = k;
    return rc;
}

cd_err auth_apppw_delete(auth *a, const struct auth_principal *p, uint64_t id)
{
    return db_apppw_delete(a->db, p->id, id);
}
