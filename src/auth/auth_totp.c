/* auth_totp.c: two-factor with TOTP (RFC 6238): a pending secret, its
 * confirmation, turning it off, and its sealing under the user's key. */
#include <string.h>
#include <time.h>

#include "auth/auth_int.h"
#include "common/codec.h"
#include "log/log.h"

#define TOTP_AD_TAG "confidoc-totp-v1"
#define TOTP_AD_LEN (sizeof(TOTP_AD_TAG) - 1 + CRYPTO_UID_BYTES)

_Static_assert(CRYPTO_TOTP_SECRET_BYTES + CRYPTO_AEAD_OVERHEAD <= DB_TOTP_CT_MAX, "totp_ct");
_Static_assert(CODEC_B32_LEN(CRYPTO_TOTP_SECRET_BYTES) == AUTH_TOTP_SECRET_STRLEN, "base32");

static void totp_ad(uint8_t ad[TOTP_AD_LEN], const uint8_t uid[CRYPTO_UID_BYTES])
{
    memcpy(ad, TOTP_AD_TAG, sizeof(TOTP_AD_TAG) - 1);
    memcpy(ad + sizeof(TOTP_AD_TAG) - 1, uid, CRYPTO_UID_BYTES);
}

cd_err auth_totp_open(const struct db_user *row, const uint8_t sk[CRYPTO_KEY_BYTES],
                      uint8_t secret[CRYPTO_TOTP_SECRET_BYTES])
{
    uint8_t key[CRYPTO_KEY_BYTES], ad[TOTP_AD_LEN];
    size_t n = 0;
    cd_err rc;

    crypto_user_subkey(sk, CRYPTO_USER_KEY_TOTP, key);
    totp_ad(ad, row->uid);
    rc = crypto_aead_open(key, ad, sizeof(ad), row->totp_ct, row->totp_ct_len, secret,
                          CRYPTO_TOTP_SECRET_BYTES, &n);
    if (rc == CD_OK && n != CRYPTO_TOTP_SECRET_BYTES)
        rc = CD_ERR_CRYPTO;
    crypto_wipe(key, sizeof(key));
    return rc;
}

cd_err auth_totp_seal(struct db_user *row, const uint8_t sk[CRYPTO_KEY_BYTES],
                      const uint8_t secret[CRYPTO_TOTP_SECRET_BYTES])
{
    uint8_t key[CRYPTO_KEY_BYTES], ad[TOTP_AD_LEN];
    cd_err rc;

    crypto_user_subkey(sk, CRYPTO_USER_KEY_TOTP, key);
    totp_ad(ad, row->uid);
    rc = crypto_aead_seal(key, ad, sizeof(ad), secret, CRYPTO_TOTP_SECRET_BYTES, row->totp_ct,
                          sizeof(row->totp_ct), &row->totp_ct_len);
    crypto_wipe(key, sizeof(key));
    return rc;
}

cd_err auth_totp_reseal(struct db_user *row, const uint8_t old_sk[CRYPTO_KEY_BYTES],
                        const uint8_t new_sk[CRYPTO_KEY_BYTES])
{
    uint8_t secret[CRYPTO_TOTP_SECRET_BYTES];
    cd_err rc;

    if (row->totp_state == DB_TOTP_OFF)
        return CD_OK;
    rc = auth_totp_open(row, old_sk, secret);
    if (rc == CD_OK)
        rc = auth_totp_seal(row, new_sk, secret);
    crypto_wipe(secret, sizeof(secret));
    return rc;
}

/* The principal's account row, read again: CD_ERR_CONFLICT when it is gone
 * or changed since p was verified. */
static cd_err totp_row(auth *a, const struct auth_credentials *c, const struct auth_principal *p,
                       struct db_user *row)
{
    cd_err rc = auth_find_user(a, c->user, c->user_len, row);

    if (rc == CD_ERR_NOT_FOUND ||
        (rc == CD_OK && (row->id != p->id || row->auth_gen != p->auth_gen)))
        return CD_ERR_CONFLICT;
    return rc;
}

cd_err auth_totp_begin(auth *a, const struct auth_credentials *c, const struct auth_principal *p,
                       char secret_text[AUTH_TOTP_SECRET_STRLEN])
{
    uint8_t secret[CRYPTO_TOTP_SECRET_BYTES];
    char text[AUTH_TOTP_SECRET_STRLEN];
    struct db_user row;
    cd_err rc;

    rc = totp_row(a, c, p, &row);
    if (rc == CD_OK && row.totp_state == DB_TOTP_ON)
        rc = CD_ERR_EXISTS;
    if (rc != CD_OK)
        goto out;
    crypto_random(secret, sizeof(secret));
    rc = auth_totp_seal(&row, p->sk, secret);
    if (rc == CD_OK)
        rc = codec_b32_encode(secret, sizeof(secret), text, sizeof(text));
    if (rc == CD_OK)
        rc = db_totp_set_pending(a->db, p->id, p->auth_gen, row.totp_ct, row.totp_ct_len);
    if (rc == CD_ERR_AUTH)
        rc = CD_ERR_CONFLICT;
    if (rc == CD_OK)
        memcpy(secret_text, text, sizeof(text));
out:
    crypto_wipe(secret, sizeof(secret));
    crypto_wipe(text, sizeof(text));
    crypto_wipe(&row, sizeof(row));
    return rc;
}

/* Counts the attempt, then checks code against row's secret after its last
 * step: CD_OK with *step, CD_ERR_AUTH (logged), CD_ERR_LIMITED. */
static cd_err totp_check(auth *a, const struct auth_credentials *c, const struct db_user *row,
                         const struct auth_principal *p, const char *code, size_t code_len,
                         uint64_t *step, unsigned *retry_after_s, const struct auth_hook *hook)
{
    uint8_t secret[CRYPTO_TOTP_SECRET_BYTES];
    cd_err rc;

    if (auth_check_blocked(a, c->user, c->user_len, retry_after_s) == CD_ERR_LIMITED) {
        auth_log_failure(a, c->user, c->user_len, "account temporarily blocked", hook);
        return CD_ERR_LIMITED;
    }
    rc = auth_totp_open(row, p->sk, secret);
    if (rc != CD_OK) {
        log_errorx("req=%s TOTP secret of user id %llu does not open: %s",
                   auth_hook_request_id(hook), (unsigned long long)row->id, cd_strerror(rc));
        return CD_ERR_INTERNAL;
    }
    if (!crypto_totp_match(secret, sizeof(secret), code, code_len, (int64_t)time(NULL),
                           row->totp_last_step, step)) {
        auth_log_failure(a, c->user, c->user_len, "bad one-time code", hook);
        rc = CD_ERR_AUTH;
    }
    crypto_wipe(secret, sizeof(secret));
    return rc;
}

cd_err auth_totp_confirm(auth *a, const struct auth_credentials *c, const struct auth_principal *p,
                         const char *code, size_t code_len, const struct auth_session *keep,
                         unsigned *retry_after_s, const struct auth_hook *hook)
{
    struct db_user row;
    uint64_t step = 0;
    cd_err rc;

    *retry_after_s = 0;
    rc = totp_row(a, c, p, &row);
    if (rc == CD_OK && row.totp_state != DB_TOTP_PENDING)
        rc = CD_ERR_NOT_FOUND;
    if (rc == CD_OK)
        rc = totp_check(a, c, &row, p, code, code_len, &step, retry_after_s, hook);
    if (rc == CD_OK)
        rc = db_totp_confirm(a->db, p->id, p->auth_gen, row.totp_ct, row.totp_ct_len, step,
                             keep != NULL ? keep->id_hash : NULL);
    if (rc == CD_OK) {
        /* Cached passwords of this account must not pass any more. */
        auth_cache_forget_user(a, p->id);
        if (a->rl != NULL)
            ratelimit_login_succeeded(a->rl, c->user, c->user_len);
    }
    crypto_wipe(&row, sizeof(row));
    return rc;
}

cd_err auth_totp_disable(auth *a, const struct auth_credentials *c, const struct auth_principal *p,
                         const char *code, size_t code_len, unsigned *retry_after_s,
                         const struct auth_hook *hook)
{
    struct db_user row;
    uint64_t step = 0;
    cd_err rc;

    *retry_after_s = 0;
    rc = totp_row(a, c, p, &row);
    if (rc == CD_OK && row.totp_state != DB_TOTP_ON)
        rc = CD_ERR_NOT_FOUND;
    if (rc == CD_OK)
        rc = totp_check(a, c, &row, p, code, code_len, &step, retry_after_s, hook);
    if (rc == CD_OK && (rc = db_totp_disable(a->db, p->id, step)) == CD_ERR_CONFLICT) {
        auth_log_failure(a, c->user, c->user_len, "replayed one-time code", hook);
        rc = CD_ERR_AUTH;
    }
    if (rc == CD_OK && a->rl != NULL)
        ratelimit_login_succeeded(a->rl, c->user, c->user_len);
    crypto_wipe(&row, sizeof(row));
    return rc;
}
