/* auth.h: accounts and credentials: HTTP Basic parsing, Argon2id verification
 * with bounded concurrency, the credential cache, account creation, password
 * change, recovery and deletion.
 *
 * Verified credentials are cached in locked memory under a keyed hash of
 * (username, password) for a short TTL, together with the user's unwrapped
 * secret key, so steady-state requests pay no Argon2id. Every request still
 * reads the account row and compares its auth_gen with the cached one: a
 * password change or deletion on any replica invalidates every cache at once. */
#ifndef CONFIDOC_AUTH_H
#define CONFIDOC_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "crypto/crypto.h"
#include "ratelimit/ratelimit.h"
#include "storage/db.h"

#define AUTH_USER_MAX 64
#define AUTH_PASSWORD_MAX 1024

struct auth_config {
    struct crypto_pwparams pwparams; /* for new and changed passwords */
    unsigned max_concurrent_hashes;  /* Argon2id computations at once */
    unsigned hash_wait_ms;           /* wait for a slot before CD_ERR_LIMITED */
    unsigned cache_entries;
    unsigned cache_ttl_s;          /* an entry unused this long is dropped */
    unsigned cache_max_age_s;      /* and any entry this long after its verification
                                    * (0: cache_ttl_s, a fixed lifetime) */
    unsigned session_ttl_s;        /* a session's lifetime (POST /auth/login) */
    unsigned session_max_per_user; /* sessions an account keeps; the oldest go first */
    bool have_escrow;              /* seal new secret keys to escrow_pk too */
    uint8_t escrow_pk[CRYPTO_KEY_BYTES];
};

typedef struct auth auth;

/* A caller's hook for one call (auth_login, auth_recover): before_hash(cls)
 * (may be NULL) runs before the request starts waiting for a same-credential
 * verification or for and running an Argon2id (tens of ms), e.g. to give up a
 * place it holds. When it returns false the call neither waits nor hashes and
 * returns CD_ERR_LIMITED (the caller runs the request again where such a wait
 * may be spent). request_id goes on the call's log lines. */
struct auth_hook {
    bool (*before_hash)(void *cls);
    void *cls;
    const char *request_id; /* put on every log line of the call; NULL: "-" */
};

/* kr, db and rl (may be NULL) must outlive the auth context. Starts a sweeper
 * thread that wipes expired cache entries (and the secret keys they hold)
 * within a second of their expiry; auth_free stops and joins it. */
cd_err auth_new(const struct auth_config *cfg, const crypto_keyring *kr, db_pool *db, ratelimit *rl,
                auth **out);
void auth_free(auth *a); /* joins the sweeper, wipes the cache; NULL is a no-op */

/* How a principal proved who it is. */
enum auth_via {
    AUTH_VIA_PASSWORD = 0, /* HTTP Basic with the account password */
    AUTH_VIA_APP_PASSWORD, /* HTTP Basic with an application password */
    AUTH_VIA_SESSION,      /* the session cookie (auth_session_auth) */
};

/* Who a request is, once authenticated. Holds the user's secret key: keep it
 * on the stack and call auth_principal_wipe when done. */
struct auth_principal {
    uint64_t id;
    uint8_t uid[CRYPTO_UID_BYTES];
    uint8_t sk[CRYPTO_KEY_BYTES];
    uint32_t auth_gen;
    uint8_t via; /* enum auth_via */
};
void auth_principal_wipe(struct auth_principal *p);
/* The key that wraps this user's document data keys. */
void auth_principal_doc_kek(const struct auth_principal *p, uint8_t kek[CRYPTO_KEY_BYTES]);

/* Credentials from an Authorization header value ("Basic base64(user:pass)").
 * user is NUL-terminated; pass is NUL-terminated and must be wiped by the
 * caller (auth_credentials_wipe). CD_ERR_INVALID when absent or malformed. */
struct auth_credentials {
    char user[AUTH_USER_MAX + 1];
    size_t user_len;
    char pass[AUTH_PASSWORD_MAX + 1];
    size_t pass_len;
};
cd_err auth_parse_basic(const char *header, struct auth_credentials *out);
/* The same, and *too_long tells whether it refused well-formed credentials
 * only because the username exceeds AUTH_USER_MAX or the password
 * AUTH_PASSWORD_MAX bytes (or the value is longer than any that fits them):
 * create_account answers those 422, logins keep them 401 like any failure. */
cd_err auth_parse_basic_len(const char *header, struct auth_credentials *out, bool *too_long);
void auth_credentials_wipe(struct auth_credentials *c);

/* Verifies credentials: the account password, or one of its application
 * passwords (AUTH_APPPW_PREFIX followed by 43 base64url characters; checked
 * against the account's rows on every call, never cached, no Argon2id).
 * CD_ERR_SECOND_FACTOR when the account password is right but the account
 * has two-factor on (HTTP Basic with the password alone is refused; the
 * attempt stays counted toward the block). CD_ERR_AUTH for an unknown user or a wrong password
 * (both cost one lookup statement and one Argon2id, with the current
 * parameters once the row has been upgraded). A successful login moves an
 * outdated row to the newest master key version and the current Argon2id
 * parameters (one more Argon2id and one UPDATE, once); CD_ERR_LIMITED when the account is blocked
 * after failed logins (*retry_after_s set) or no hash slot freed in time
 * (*retry_after_s = 0); CD_ERR_UNAVAILABLE when the database is down. */
cd_err auth_login(auth *a, const struct auth_credentials *c, struct auth_principal *out,
                  unsigned *retry_after_s, const struct auth_hook *hook); /* hook: NULL ok */

/* The cache alone, without the database: CD_OK when these credentials were
 * verified recently (the entry's idle TTL and max age hold). The principal is
 * NOT confirmed: the account may have changed on another replica since.
 * The caller must confirm out->auth_gen in the same database statement that
 * uses the principal (db_doc_read with auth_gen, db_doc_insert_if_gen), and on
 * CD_ERR_AUTH from it fall back to auth_login, which reads the account and
 * drops the stale entry. CD_ERR_NOT_FOUND: not cached; use auth_login. */
cd_err auth_login_cached(auth *a, const struct auth_credentials *c, struct auth_principal *out);

/* Argon2id computations run so far (verifications, dummy work for unknown
 * users, new and changed passwords): steady-state traffic should not move it. */
uint64_t auth_hash_count(const auth *a);
/* Their total work: the sum of passes x memory in KiB over those computations. */
uint64_t auth_hash_work(const auth *a);

/* Creates an account; writes its one-time recovery code. CD_ERR_INVALID for a
 * username or password outside the rules, CD_ERR_EXISTS when taken (the name's
 * hash under any version of the keyring names an account). */
cd_err auth_create(auth *a, const struct auth_credentials *c,
                   char recovery_code[CRYPTO_RECOVERY_CODE_STRLEN]);

/* Re-wraps the principal's secret key under a new password (c names the
 * account and its current password). CD_ERR_INVALID for a bad new password,
 * CD_ERR_CONFLICT when the credentials changed concurrently. */
cd_err auth_change_password(auth *a, const struct auth_credentials *c,
                            const struct auth_principal *p, const char *new_pw, size_t new_len);

/* Sets a new password with the recovery code, which is then used up: a new
 * code is written to new_code. The account gets a new key pair, as with
 * auth_rotate_key. CD_ERR_AUTH for an unknown user or wrong code. */
cd_err auth_recover(auth *a, const char *user, size_t user_len, const char *code, size_t code_len,
                    const char *new_pw, size_t new_len, char new_code[CRYPTO_RECOVERY_CODE_STRLEN],
                    unsigned *retry_after_s, const struct auth_hook *hook); /* hook: NULL ok */

/* A new key pair for the principal's account (POST /users/me/rotate-key): the
 * new secret key is wrapped under the current password (c) and a new
 * recovery code written to new_code (the old code is spent: it wrapped the
 * old key), and every document's data key is re-wrapped under the new key,
 * all in one transaction that bumps auth_gen. CD_ERR_CONFLICT when the
 * credentials changed concurrently. auth_recover does the same. */
cd_err auth_rotate_key(auth *a, const struct auth_credentials *c, const struct auth_principal *p,
                       char new_code[CRYPTO_RECOVERY_CODE_STRLEN]);

/* Checks the account password c->pass of an already authenticated principal
 * (a session or an application password carries none; rotate-key needs it):
 * one Argon2id, counted toward the block like a login. CD_ERR_AUTH when
 * wrong, CD_ERR_LIMITED, CD_ERR_CONFLICT when the account changed since p
 * was verified. */
cd_err auth_check_password(auth *a, const struct auth_credentials *c,
                           const struct auth_principal *p, unsigned *retry_after_s,
                           const struct auth_hook *hook);

/* Converts the verifiers stored before issue 9 (Argon2id output alone) to the
 * keyed form; run at start with the keyring. Idempotent; *converted counts. */
cd_err auth_convert_verifiers(auth *a, unsigned *converted);

/* Deletes the account and its documents; its wrapped secret key is destroyed
 * with the row, so nothing encrypted for it can be decrypted again. */
cd_err auth_delete(auth *a, const struct auth_principal *p);

/* Short, non-reversible tag of a username for logs (first 8 hex digits of its
 * keyed hash), so failures can be correlated without logging the name. */
void auth_log_tag(const auth *a, const char *user, size_t len, char tag[17]);

/* ---- sessions, two-factor, application passwords (issue 14) ---- */

#define AUTH_SESSION_COOKIE "__Host-confidoc_session"
#define AUTH_TOKEN_BYTES 32  /* a session token: 256 random bits */
#define AUTH_TOKEN_STRLEN 44 /* its base64url (43 characters) and NUL; a CSRF token's too */
/* Longest Cookie header value auth_parse_session_cookie reads. */
#define AUTH_COOKIE_HEADER_MAX 8192

/* Finds the session cookie in a Cookie header value (RFC 6265 section 4.2:
 * "name=value" pairs separated by ";" and optional spaces; a value may be in
 * double quotes). The name must be exactly AUTH_SESSION_COOKIE and its value
 * 43 base64url characters, decoded into token. CD_ERR_NOT_FOUND when the
 * header is absent or has no such cookie; CD_ERR_INVALID when the header is
 * malformed, longer than AUTH_COOKIE_HEADER_MAX, names the session cookie
 * twice, or its value is not a token (token left untouched). Pure. */
cd_err auth_parse_session_cookie(const char *header, uint8_t token[AUTH_TOKEN_BYTES]);

/* A session as a request sees it. */
struct auth_session {
    uint8_t id_hash[CRYPTO_HASH_BYTES]; /* its database key */
    uint32_t mk_version;
};

/* POST /auth/login: verifies the password (as auth_login, counted toward the
 * block) and, when the account has two-factor on, the one-time code (code
 * NULL: none sent); then creates a session and writes its token and CSRF
 * token (base64url). CD_ERR_AUTH for a wrong password, unknown user or wrong
 * or replayed code; CD_ERR_SECOND_FACTOR when the password is right and a
 * code is needed but absent; CD_ERR_LIMITED as auth_login; CD_ERR_CONFLICT
 * when the account changed meanwhile. */
cd_err auth_session_login(auth *a, const struct auth_credentials *c, const char *code,
                          size_t code_len, char token[AUTH_TOKEN_STRLEN],
                          char csrf[AUTH_TOKEN_STRLEN], unsigned *retry_after_s,
                          const struct auth_hook *hook);
/* Authenticates a request by its session token: one statement reads the row
 * joined with the account (valid while unexpired and at the account's
 * auth_gen), then the secret key and username are unsealed with a key
 * derived from the token. Fills out (via AUTH_VIA_SESSION), who (the
 * username; no password) and s. CD_ERR_NOT_FOUND for an unknown, expired or
 * ended session. */
cd_err auth_session_auth(auth *a, const uint8_t token[AUTH_TOKEN_BYTES], struct auth_principal *out,
                         struct auth_credentials *who, struct auth_session *s);
/* The CSRF token of a session (base64url of a keyed hash of its token). */
cd_err auth_session_csrf(const auth *a, const uint8_t token[AUTH_TOKEN_BYTES], uint32_t mk_version,
                         char csrf[AUTH_TOKEN_STRLEN]);
/* Ends a session (POST /auth/logout). */
cd_err auth_session_logout(auth *a, const struct auth_session *s);

/* Base32 of a TOTP secret (160 bits: 32 characters) and its NUL. */
#define AUTH_TOTP_SECRET_STRLEN 33

/* POST /users/me/totp: a new pending TOTP secret for the principal's account
 * (c names it), sealed under a key derived from the user's secret key; its
 * base32 is written to secret. CD_ERR_EXISTS when two-factor is on already,
 * CD_ERR_CONFLICT when the account changed since the principal was verified. */
cd_err auth_totp_begin(auth *a, const struct auth_credentials *c, const struct auth_principal *p,
                       char secret[AUTH_TOTP_SECRET_STRLEN]);
/* POST /users/me/totp/confirm: turns two-factor on when code is valid for the
 * pending secret (counted toward the block first). Bumps auth_gen: cached
 * passwords and every other session end; keep_session (NULL: none) is the
 * caller's own session, kept. CD_ERR_AUTH for a wrong or replayed code,
 * CD_ERR_NOT_FOUND when no secret is pending, CD_ERR_LIMITED when blocked,
 * CD_ERR_CONFLICT when the account changed meanwhile. */
cd_err auth_totp_confirm(auth *a, const struct auth_credentials *c, const struct auth_principal *p,
                         const char *code, size_t code_len, const struct auth_session *keep,
                         unsigned *retry_after_s, const struct auth_hook *hook);
/* DELETE /users/me/totp: turns two-factor off with a current code (counted
 * as for confirm); the secret is destroyed. CD_ERR_NOT_FOUND when it is not on. */
cd_err auth_totp_disable(auth *a, const struct auth_credentials *c, const struct auth_principal *p,
                         const char *code, size_t code_len, unsigned *retry_after_s,
                         const struct auth_hook *hook);

#define AUTH_APPPW_PREFIX "cdap_"
/* An application password: the prefix and 43 base64url characters, and NUL. */
#define AUTH_APPPW_STRLEN (5 + 43 + 1)
#define AUTH_APPPW_MAX 32      /* per account */
#define AUTH_APPPW_NAME_MAX 64 /* characters */

struct auth_apppw_info {
    uint64_t id;
    char name[AUTH_APPPW_NAME_MAX * 4 + 1]; /* UTF-8, NUL-terminated */
    int64_t created_us;
    int64_t last_used_us; /* -1: never */
};
/* Creates an application password named name (1..AUTH_APPPW_NAME_MAX
 * printable UTF-8 characters: CD_ERR_INVALID otherwise) and writes it (shown
 * once). CD_ERR_LIMITED with AUTH_APPPW_MAX already, CD_ERR_CONFLICT when
 * the account changed since p was verified. */
cd_err auth_apppw_create(auth *a, const struct auth_principal *p, const char *name, size_t len,
                         uint64_t *id, char password[AUTH_APPPW_STRLEN]);
/* The account's application passwords, names decrypted (at most max). */
cd_err auth_apppw_list(auth *a, const struct auth_principal *p, struct auth_apppw_info *out,
                       size_t max, size_t *n);
/* Revokes one; CD_ERR_NOT_FOUND when the account has no such one. */
cd_err auth_apppw_delete(auth *a, const struct auth_principal *p, uint64_t id);

#endif
