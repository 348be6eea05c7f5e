/* auth_session.c: login sessions: POST /auth/login (password and, with
 * two-factor on, a one-time code), the session of a request's cookie, its
 * CSRF token, logout. The token never reaches the database: the row is keyed
 * by a keyed hash of it and holds the user's key sealed under a key derived
 * from it (docs/internals/sessions.md). */
#include <string.h>
#include <time.h>

#include "auth/auth_int.h"
#include "common/codec.h"
#include "log/log.h"
#include "validate/validate.h"

#define SESSION_AD_TAG "confidoc-session-v1"
#define SESSION_AD_LEN (sizeof(SESSION_AD_TAG) - 1 + CRYPTO_HASH_BYTES + CRYPTO_UID_BYTES)
/* What the session row seals: the secret key, the username's length and the username. */
#define SESSION_PLAIN_MAX (CRYPTO_KEY_BYTES + 1 + AUTH_USER_MAX)

_Static_assert(SESSION_PLAIN_MAX + CRYPTO_AEAD_OVERHEAD <= DB_SESSION_WRAP_MAX, "session blob");

static cd_err session_id_hash(const auth *a, uint32_t version,
                              const uint8_t token[AUTH_TOKEN_BYTES], uint8_t out[CRYPTO_HASH_BYTES])
{
    const struct crypto_part part = {token, AUTH_TOKEN_BYTES};
    return crypto_keyed_hash(a->kr, version, CRYPTO_PURPOSE_SESSION_ID, &part, 1, out);
}

/* AD = tag || id_hash || uid: a blob moved to another row or account fails. */
static void session_ad(uint8_t ad[SESSION_AD_LEN], const uint8_t id_hash[CRYPTO_HASH_BYTES],
                       const uint8_t uid[CRYPTO_UID_BYTES])
{
    const size_t t = sizeof(SESSION_AD_TAG) - 1;

    memcpy(ad, SESSION_AD_TAG, t);
    memcpy(ad + t, id_hash, CRYPTO_HASH_BYTES);
    memcpy(ad + t + CRYPTO_HASH_BYTES, uid, CRYPTO_UID_BYTES);
}

cd_err auth_session_csrf(const auth *a, const uint8_t token[AUTH_TOKEN_BYTES], uint32_t mk_version,
                         char csrf[AUTH_TOKEN_STRLEN])
{
    uint8_t h[CRYPTO_KEY_BYTES];
    cd_err rc = crypto_secret_key(a->kr, mk_version, CRYPTO_PURPOSE_CSRF, token, h);

    if (rc == CD_OK)
        rc = codec_b64url_encode(h, sizeof(h), csrf, AUTH_TOKEN_STRLEN);
    crypto_wipe(h, sizeof(h));
    return rc;
}

/* A new session row for p (username c->user) and its token. */
static cd_err session_create(auth *a, const struct auth_credentials *c,
                             const struct auth_principal *p, uint8_t token[AUTH_TOKEN_BYTES])
{
    uint8_t plain[SESSION_PLAIN_MAX], kek[CRYPTO_KEY_BYTES], ad[SESSION_AD_LEN];
    struct db_session s;
    cd_err rc;

    memset(&s, 0, sizeof(s));
    crypto_random(token, AUTH_TOKEN_BYTES);
    s.user_id = p->id;
    s.auth_gen = p->auth_gen;
    s.mk_version = crypto_keyring_newest(a->kr);
    memcpy(plain, p->sk, CRYPTO_KEY_BYTES);
    plain[CRYPTO_KEY_BYTES] = (uint8_t)c->user_len;
    memcpy(plain + CRYPTO_KEY_BYTES + 1, c->user, c->user_len);
    rc = session_id_hash(a, s.mk_version, token, s.id_hash);
    if (rc == CD_OK)
        rc = crypto_secret_key(a->kr, s.mk_version, CRYPTO_PURPOSE_SESSION_KEK, token, kek);
    session_ad(ad, s.id_hash, p->uid);
    if (rc == CD_OK)
        rc = crypto_aead_seal(kek, ad, sizeof(ad), plain, CRYPTO_KEY_BYTES + 1 + c->user_len,
                              s.sk_wrapped, sizeof(s.sk_wrapped), &s.sk_wrapped_len);
    if (rc == CD_OK)
        rc = db_session_insert(a->db, &s, a->cfg.session_ttl_s, a->cfg.session_max_per_user);
    if (rc == CD_ERR_AUTH)
        rc = CD_ERR_CONFLICT; /* the account changed since the verification */
    crypto_wipe(plain, sizeof(plain));
    crypto_wipe(kek, sizeof(kek));
    crypto_wipe(&s, sizeof(s));
    return rc;
}

/* The second factor of a login: code (NULL: absent) against the account's
 * secret, and its step recorded so that it cannot be used again. */
static cd_err session_second_factor(auth *a, const struct auth_credentials *c,
                                    const struct db_user *row, const struct auth_principal *p,
                                    const char *code, size_t code_len, const struct auth_hook *hook)
{
    uint8_t secret[CRYPTO_TOTP_SECRET_BYTES];
    uint64_t step = 0;
    cd_err rc;

    if (code == NULL) {
        auth_log_failure(a, c->user, c->user_len, "one-time code missing", hook);
        return CD_ERR_SECOND_FACTOR;
    }
    rc = auth_totp_open(row, p->sk, secret);
    if (rc != CD_OK) {
        log_errorx("req=%s TOTP secret of user id %llu does not open: %s",
                   auth_hook_request_id(hook), (unsigned long long)row->id, cd_strerror(rc));
        return CD_ERR_INTERNAL;
    }
    /* A step at most the last one used is refused, and so is a code that
     * another request (here or on another replica) used first. */
    if (crypto_totp_match(secret, sizeof(secret), code, code_len, (int64_t)time(NULL),
                          row->totp_last_step, &step))
        rc = db_totp_use_step(a->db, row->id, step);
    else
        rc = CD_ERR_CONFLICT;
    if (rc == CD_ERR_CONFLICT)
        rc = CD_ERR_AUTH;
    if (rc == CD_ERR_AUTH)
        auth_log_failure(a, c->user, c->user_len, "bad one-time code", hook);
    crypto_wipe(secret, sizeof(secret));
    return rc;
}

cd_err auth_session_login(auth *a, const struct auth_credentials *c, const char *code,
                          size_t code_len, char token_text[AUTH_TOKEN_STRLEN],
                          char csrf[AUTH_TOKEN_STRLEN], unsigned *retry_after_s,
                          const struct auth_hook *hook)
{
    uint8_t token[AUTH_TOKEN_BYTES];
    char t[AUTH_TOKEN_STRLEN], x[AUTH_TOKEN_STRLEN];
    struct auth_principal p;
    struct db_user row;
    cd_err rc;

    *retry_after_s = 0;
    memset(&p, 0, sizeof(p));
    memset(&row, 0, sizeof(row));
    if (!validate_username(c->user, c->user_len) || !validate_password(c->pass, c->pass_len))
        return CD_ERR_AUTH;
    rc = auth_find_user(a, c->user, c->user_len, &row);
    if (rc != CD_OK && rc != CD_ERR_NOT_FOUND)
        goto out;
    rc = auth_verify_password(a, c, rc, &row, &p, retry_after_s, hook);
    if (rc == CD_OK && row.totp_state == DB_TOTP_ON)
        rc = session_second_factor(a, c, &row, &p, code, code_len, hook);
    if (rc != CD_OK)
        goto out;
    if (a->rl != NULL)
        ratelimit_login_succeeded(a->rl, c->user, c->user_len);
    rc = session_create(a, c, &p, token);
    if (rc == CD_OK)
        rc = codec_b64url_encode(token, sizeof(token), t, sizeof(t));
    if (rc == CD_OK)
        rc = auth_session_csrf(a, token, crypto_keyring_newest(a->kr), x);
    if (rc == CD_OK) {
        memcpy(token_text, t, sizeof(t));
        memcpy(csrf, x, sizeof(x));
    }
out:
    crypto_wipe(token, sizeof(token));
    crypto_wipe(t, sizeof(t));
    crypto_wipe(x, sizeof(x));
    crypto_wipe(&row, sizeof(row));
    auth_principal_wipe(&p);
    return rc;
}

cd_err auth_session_auth(auth *a, const uint8_t token[AUTH_TOKEN_BYTES], struct auth_principal *out,
                         struct auth_credentials *who, struct auth_session *sess)
{
    uint8_t id_hash[CRYPTO_HASH_BYTES], kek[CRYPTO_KEY_BYTES], ad[SESSION_AD_LEN];
    uint8_t plain[SESSION_PLAIN_MAX];
    struct db_session s;
    size_t n = 0;
    cd_err rc;

    memset(&s, 0, sizeof(s));
    rc = session_id_hash(a, crypto_keyring_newest(a->kr), token, id_hash);
    if (rc == CD_OK)
        rc = db_session_get(a->db, id_hash, &s);
    if (rc == CD_OK)
        rc = crypto_secret_key(a->kr, s.mk_version, CRYPTO_PURPOSE_SESSION_KEK, token, kek);
    session_ad(ad, id_hash, s.uid);
    if (rc == CD_OK)
        rc = crypto_aead_open(kek, ad, sizeof(ad), s.sk_wrapped, s.sk_wrapped_len, plain,
                              sizeof(plain), &n);
    if (rc == CD_OK && (n < CRYPTO_KEY_BYTES + 1 || plain[CRYPTO_KEY_BYTES] == 0 ||
                        n != CRYPTO_KEY_BYTES + 1u + plain[CRYPTO_KEY_BYTES]))
        rc = CD_ERR_CRYPTO;
    if (rc == CD_OK) {
        memset(out, 0, sizeof(*out));
        out->id = s.user_id;
        memcpy(out->uid, s.uid, sizeof(out->uid));
        memcpy(out->sk, plain, CRYPTO_KEY_BYTES);
        out->auth_gen = s.auth_gen;
        out->via = AUTH_VIA_SESSION;
        memset(who, 0, sizeof(*who));
        who->user_len = plain[CRYPTO_KEY_BYTES];
        memcpy(who->user, plain + CRYPTO_KEY_BYTES + 1, who->user_len);
        memcpy(sess->id_hash, id_hash, sizeof(id_hash));
        sess->mk_version = s.mk_version;
    }
    crypto_wipe(kek, sizeof(kek));
    crypto_wipe(plain, sizeof(plain));
    crypto_wipe(&s, sizeof(s));
    return rc;
}

cd_err auth_session_logout(auth *a, const struct auth_session *s)
{
    cd_err rc = db_session_delete(a->db, s->id_hash);
    return rc == CD_ERR_NOT_FOUND ? CD_OK : rc;
}
