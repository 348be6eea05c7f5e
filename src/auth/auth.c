/* auth.c: life cycle, login, create, change password, recover, rotate key, delete. */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth_int.h"
#include "log/log.h"
#include "validate/validate.h"

cd_err auth_new(const struct auth_config *cfg, const crypto_keyring *kr, db_pool *db, ratelimit *rl,
                auth **out)
{
    auth *a;
    size_t entries;

    if (cfg->max_concurrent_hashes == 0 || cfg->cache_entries == 0)
        return CD_ERR_INVALID;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return CD_ERR_NOMEM;
    a->cfg = *cfg;
    if (a->cfg.cache_max_age_s < a->cfg.cache_ttl_s)
        a->cfg.cache_max_age_s = a->cfg.cache_ttl_s;
    atomic_init(&a->hashes, 0);
    atomic_init(&a->hash_work, 0);
    a->kr = kr;
    a->db = db;
    a->rl = rl;
    a->nbuckets = (cfg->cache_entries + AUTH_WAYS - 1) / AUTH_WAYS;
    entries = a->nbuckets * AUTH_WAYS;
    a->cache = crypto_secure_alloc(entries * sizeof(*a->cache));
    if (a->cache == NULL) {
        free(a);
        return CD_ERR_NOMEM;
    }
    memset(a->cache, 0, entries * sizeof(*a->cache));
    if (sem_init(&a->hash_slots, 0, cfg->max_concurrent_hashes) != 0) {
        crypto_secure_free(a->cache);
        free(a);
        return CD_ERR_INTERNAL;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->flight_done, NULL);
    a->next_sweep = INT64_MAX;
    {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&a->sweep_wake, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (pthread_create(&a->sweeper, NULL, auth_sweeper, a) != 0) {
        auth_free(a);
        return CD_ERR_INTERNAL;
    }
    a->sweeper_running = true;
    *out = a;
    return CD_OK;
}

void auth_free(auth *a)
{
    if (a == NULL)
        return;
    if (a->sweeper_running) {
        pthread_mutex_lock(&a->lock);
        a->stopping = true;
        pthread_cond_signal(&a->sweep_wake);
        pthread_mutex_unlock(&a->lock);
        pthread_join(a->sweeper, NULL);
    }
    crypto_secure_free(a->cache); /* wipes */
    sem_destroy(&a->hash_slots);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->flight_done);
    pthread_cond_destroy(&a->sweep_wake);
    crypto_wipe(a->flights, sizeof(a->flights));
    free(a);
}

void auth_principal_wipe(struct auth_principal *p)
{
    crypto_wipe(p, sizeof(*p));
}

void auth_principal_doc_kek(const struct auth_principal *p, uint8_t kek[CRYPTO_KEY_BYTES])
{
    crypto_user_doc_kek(p->sk, kek);
}

void auth_credentials_wipe(struct auth_credentials *c)
{
    crypto_wipe(c, sizeof(*c));
}

static void auth_row_params(const struct db_user *row, struct crypto_pwparams *p)
{
    p->opslimit = row->pw_opslimit;
    p->memlimit = (size_t)row->pw_memlimit_kib * 1024u;
}

/* A refused verification, logged here where it is decided (once). A failed
 * one was counted toward the account's block before the hashing, by
 * auth_check_blocked. */
void auth_log_failure(const auth *a, const char *user, size_t len, const char *what,
                      const struct auth_hook *hook)
{
    char tag[17];

    auth_log_tag(a, user, len, tag);
    log_warnx("req=%s authentication failed: %s (account tag %s)", auth_hook_request_id(hook), what,
              tag);
}

/* Counts one verification attempt of the account before any hashing and
 * tells whether it may run (CD_ERR_LIMITED: refuse, *retry_after_s). Counting
 * first is what keeps concurrent guesses within login_fail_limit. */
cd_err auth_check_blocked(auth *a, const char *user, size_t len, unsigned *retry_after_s)
{
    if (a->rl == NULL)
        return CD_OK;
    return ratelimit_login_begin(a->rl, user, len, retry_after_s);
}

/* A row its owner just logged into that is not yet under the newest master
 * key version, the keyed verifier and the current Argon2id parameters. */
static bool auth_row_outdated(const auth *a, const struct db_user *row)
{
    return row->mk_version != crypto_keyring_newest(a->kr) ||
           row->verifier_kind != DB_VERIFIER_KEYED ||
           row->pw_opslimit != a->cfg.pwparams.opslimit ||
           row->pw_memlimit_kib != a->cfg.pwparams.memlimit / 1024u;
}

/* Re-protects the row of a successful login under the newest master key
 * version: name hash, verifier and password wrap (the recovery wrap keeps its
 * version, rc_version, until the code is next used: only the code can re-wrap
 * it). With other Argon2id parameters than the current ones the password is
 * hashed once more with new salt and the current parameters, so that
 * afterwards this account costs what an unknown name costs (finding 7).
 * Best effort: on failure the login stands and the next one tries again.
 * *gen becomes the row's new auth_gen. */
static void auth_upgrade(auth *a, const struct auth_credentials *c, const struct db_user *row,
                         const uint8_t verifier[CRYPTO_HASH_BYTES],
                         const uint8_t pwkey[CRYPTO_KEY_BYTES], const uint8_t sk[CRYPTO_KEY_BYTES],
                         uint32_t *gen, const struct auth_hook *hook)
{
    struct db_user u = *row;
    cd_err rc;

    u.mk_version = crypto_keyring_newest(a->kr);
    rc = auth_uname_hash(a, u.mk_version, c->user, c->user_len, u.uname_hash);
    if (rc == CD_OK && (u.pw_opslimit != a->cfg.pwparams.opslimit ||
                        u.pw_memlimit_kib != a->cfg.pwparams.memlimit / 1024u)) {
        rc = auth_set_password(a, &u, c->pass, c->pass_len, sk);
    } else if (rc == CD_OK) {
        u.verifier_kind = DB_VERIFIER_KEYED;
        rc = crypto_verifier_bind(a->kr, u.mk_version, u.uid, verifier, u.verifier);
        if (rc == CD_OK)
            rc = crypto_sk_wrap_password(a->kr, u.mk_version, pwkey, u.uid, sk, u.sk_pw);
    }
    if (rc == CD_OK)
        rc = db_user_update_credentials(a->db, &u, row->auth_gen);
    if (rc == CD_OK)
        *gen = row->auth_gen + 1;
    else
        log_warnx("req=%s account of user id %llu not moved to master key version %u: %s",
                  auth_hook_request_id(hook), (unsigned long long)row->id, (unsigned)u.mk_version,
                  cd_strerror(rc));
    crypto_wipe(&u, sizeof(u));
}

cd_err auth_verify_password(auth *a, const struct auth_credentials *c, cd_err found,
                            const struct db_user *row, struct auth_principal *out,
                            unsigned *retry_after_s, const struct auth_hook *hook)
{
    uint8_t verifier[CRYPTO_HASH_BYTES], pwkey[CRYPTO_KEY_BYTES], stored[CRYPTO_HASH_BYTES];
    struct crypto_pwparams params;
    struct auth_principal p;
    cd_err rc;

    memset(&p, 0, sizeof(p));
    /* A caller that gives up before the hash does so before the attempt is
     * counted, so that running the request again elsewhere counts it once. */
    if (!auth_hook_run(hook))
        return CD_ERR_LIMITED;
    if (auth_check_blocked(a, c->user, c->user_len, retry_after_s) == CD_ERR_LIMITED) {
        auth_log_failure(a, c->user, c->user_len, "account temporarily blocked", hook);
        return CD_ERR_LIMITED;
    }
    if (found == CD_ERR_NOT_FOUND) {
        rc = auth_dummy_work(a, c->user, c->user_len, c->pass, c->pass_len, hook);
        if (rc == CD_OK) {
            auth_log_failure(a, c->user, c->user_len, "bad credentials", hook);
            rc = CD_ERR_AUTH;
        }
        return rc;
    }
    auth_row_params(row, &params);
    rc = auth_derive(a, c->pass, c->pass_len, row->pw_salt, &params, verifier, pwkey, hook);
    if (rc == CD_OK)
        rc = auth_stored_verifier(a, row, verifier, stored);
    if (rc != CD_OK)
        goto out;
    if (!crypto_equal(stored, row->verifier, sizeof(stored))) {
        auth_log_failure(a, c->user, c->user_len, "bad credentials", hook);
        rc = CD_ERR_AUTH;
        goto out;
    }
    rc = crypto_sk_unwrap_password(a->kr, row->mk_version, pwkey, row->uid, row->sk_pw, p.sk);
    if (rc != CD_OK) {
        /* The verifier matched, so this is a damaged row or a missing key version. */
        log_errorx("req=%s account key of user id %llu does not unwrap: %s",
                   auth_hook_request_id(hook), (unsigned long long)row->id, cd_strerror(rc));
        rc = CD_ERR_INTERNAL;
        goto out;
    }
    p.id = row->id;
    memcpy(p.uid, row->uid, sizeof(p.uid));
    p.auth_gen = row->auth_gen;
    p.via = AUTH_VIA_PASSWORD;
    if (auth_row_outdated(a, row))
        auth_upgrade(a, c, row, verifier, pwkey, p.sk, &p.auth_gen, hook);
    *out = p;
out:
    crypto_wipe(pwkey, sizeof(pwkey));
    crypto_wipe(verifier, sizeof(verifier));
    auth_principal_wipe(&p);
    return rc;
}

/* The Basic refusal of an account with two-factor on, after its password
 * verified: logged once here, still counted toward the block (only a login
 * that passes the second factor resets the count). */
static cd_err auth_refuse_second_factor(const auth *a, const struct auth_credentials *c,
                                        struct auth_principal *p, const struct auth_hook *hook)
{
    auth_log_failure(a, c->user, c->user_len, "password alone for a two-factor account", hook);
    auth_principal_wipe(p);
    return CD_ERR_SECOND_FACTOR;
}

cd_err auth_login(auth *a, const struct auth_credentials *c, struct auth_principal *out,
                  unsigned *retry_after_s, const struct auth_hook *hook)
{
    uint8_t key[CRYPTO_HASH_BYTES];
    struct auth_principal p;
    struct db_user row;
    int slot = -1;
    cd_err rc;

    *retry_after_s = 0;
    memset(&p, 0, sizeof(p));
    memset(&row, 0, sizeof(row));
    if (!validate_username(c->user, c->user_len) || !validate_password(c->pass, c->pass_len))
        return CD_ERR_AUTH; /* cannot exist; nothing to learn from the timing */
    rc = auth_find_user(a, c->user, c->user_len, &row);
    if (rc != CD_OK && rc != CD_ERR_NOT_FOUND)
        goto wipe;
    if (auth_apppw_shaped(c->pass, c->pass_len)) {
        rc = auth_apppw_login(a, c, rc == CD_OK ? &row : NULL, out, retry_after_s, hook);
        goto wipe;
    }
    rc = auth_cache_key(a, c, key);
    if (rc != CD_OK)
        goto wipe;
    if (row.id != 0 && auth_cache_get(a, key, &row, out)) {
        rc = row.totp_state == DB_TOTP_ON ? auth_refuse_second_factor(a, c, out, hook) : CD_OK;
        goto wipe;
    }
    /* Another request verifying the same credential: wait for its result. */
    if (row.id != 0 && !auth_flight_begin(a, key, &slot, hook) &&
        auth_cache_get(a, key, &row, out)) {
        rc = row.totp_state == DB_TOTP_ON ? auth_refuse_second_factor(a, c, out, hook) : CD_OK;
        goto wipe;
    }
    rc = auth_verify_password(a, c, row.id != 0 ? CD_OK : CD_ERR_NOT_FOUND, &row, &p, retry_after_s,
                              hook);
    if (rc != CD_OK)
        goto out;
    if (row.totp_state == DB_TOTP_ON) {
        rc = auth_refuse_second_factor(a, c, &p, hook);
        goto out;
    }
    auth_cache_put(a, key, &p);
    if (a->rl != NULL)
        ratelimit_login_succeeded(a->rl, c->user, c->user_len);
    *out = p;
out:
    auth_flight_end(a, slot);
wipe:
    crypto_wipe(key, sizeof(key));
    crypto_wipe(&row, sizeof(row));
    auth_principal_wipe(&p);
    return rc;
}

cd_err auth_create(auth *a, const struct auth_credentials *c,
                   char recovery_code[CRYPTO_RECOVERY_CODE_STRLEN])
{
    uint8_t sk[CRYPTO_KEY_BYTES];
    uint8_t hashes[CRYPTO_KEYRING_MAX_KEYS][CRYPTO_HASH_BYTES];
    char code[CRYPTO_RECOVERY_CODE_STRLEN];
    struct db_user row;
    size_t n = 0;
    cd_err rc;

    if (!validate_username(c->user, c->user_len) || !validate_password(c->pass, c->pass_len))
        return CD_ERR_INVALID;
    memset(&row, 0, sizeof(row));
    memset(sk, 0, sizeof(sk));
    crypto_random(row.uid, sizeof(row.uid));
    row.mk_version = crypto_keyring_newest(a->kr);
    /* The name is taken if its hash under ANY version names an account. */
    rc = auth_name_hashes(a, c->user, c->user_len, hashes, &n);
    if (rc != CD_OK)
        goto out;
    memcpy(row.uname_hash, hashes[0], sizeof(row.uname_hash));
    crypto_user_keypair(row.public_key, sk);
    rc = auth_set_password(a, &row, c->pass, c->pass_len, sk);
    if (rc != CD_OK)
        goto out;
    rc = auth_set_recovery(a, &row, sk, code);
    if (rc != CD_OK)
        goto out;
    rc = db_user_insert_unique(a->db, &row, (const uint8_t(*)[CRYPTO_HASH_BYTES])hashes, n);
    if (rc == CD_OK)
        memcpy(recovery_code, code, sizeof(code));
out:
    crypto_wipe(sk, sizeof(sk));
    crypto_wipe(code, sizeof(code));
    crypto_wipe(&row, sizeof(row));
    return rc;
}

/* The account row of an authenticated principal, read again: CD_ERR_CONFLICT
 * when the account is gone or changed since p was verified. */
static cd_err auth_principal_row(auth *a, const struct auth_credentials *c,
                                 const struct auth_principal *p, struct db_user *row)
{
    cd_err rc = auth_find_user(a, c->user, c->user_len, row);

    if (rc == CD_ERR_NOT_FOUND)
        return CD_ERR_CONFLICT;
    if (rc == CD_OK && (row->id != p->id || row->auth_gen != p->auth_gen))
        return CD_ERR_CONFLICT;
    return rc;
}

cd_err auth_check_password(auth *a, const struct auth_credentials *c,
                           const struct auth_principal *p, unsigned *retry_after_s,
                           const struct auth_hook *hook)
{
    struct auth_principal q;
    struct db_user row;
    cd_err rc;

    *retry_after_s = 0;
    memset(&q, 0, sizeof(q));
    if (!validate_password(c->pass, c->pass_len))
        return CD_ERR_AUTH;
    rc = auth_principal_row(a, c, p, &row);
    if (rc == CD_OK)
        rc = auth_verify_password(a, c, CD_OK, &row, &q, retry_after_s, hook);
    if (rc == CD_OK && q.auth_gen != p->auth_gen)
        rc = CD_ERR_CONFLICT; /* upgraded meanwhile: the caller authenticates again */
    if (rc == CD_OK && a->rl != NULL)
        ratelimit_login_succeeded(a->rl, c->user, c->user_len);
    auth_principal_wipe(&q);
    crypto_wipe(&row, sizeof(row));
    return rc;
}

cd_err auth_change_password(auth *a, const struct auth_credentials *c,
                            const struct auth_principal *p, const char *new_pw, size_t new_len)
{
    struct db_user row;
    cd_err rc;

    if (!validate_password(new_pw, new_len))
        return CD_ERR_INVALID;
    rc = auth_principal_row(a, c, p, &row);
    if (rc != CD_OK)
        goto out;
    /* Name hash, verifier and password wrap move to the newest version. */
    row.mk_version = crypto_keyring_newest(a->kr);
    rc = auth_uname_hash(a, row.mk_version, c->user, c->user_len, row.uname_hash);
    if (rc == CD_OK)
        rc = auth_set_password(a, &row, new_pw, new_len, p->sk);
    if (rc == CD_OK)
        rc = db_user_update_credentials(a->db, &row, p->auth_gen);
    if (rc == CD_OK || rc == CD_ERR_CONFLICT)
        auth_cache_forget_user(a, p->id);
out:
    crypto_wipe(&row, sizeof(row));
    return rc;
}

cd_err auth_recover(auth *a, const char *user, size_t user_len, const char *code_text,
                    size_t code_len, const char *new_pw, size_t new_len,
                    char new_code[CRYPTO_RECOVERY_CODE_STRLEN], unsigned *retry_after_s,
                    const struct auth_hook *hook)
{
    uint8_t code[CRYPTO_RECOVERY_CODE_BYTES], sk[CRYPTO_KEY_BYTES];
    char fresh[CRYPTO_RECOVERY_CODE_STRLEN];
    struct db_user row;
    uint32_t old_gen;
    cd_err rc;

    *retry_after_s = 0;
    memset(&row, 0, sizeof(row));
    if (!validate_username(user, user_len) || !validate_password(new_pw, new_len))
        return CD_ERR_INVALID;
    if (auth_check_blocked(a, user, user_len, retry_after_s) == CD_ERR_LIMITED) {
        auth_log_failure(a, user, user_len, "recovery while account blocked", hook);
        return CD_ERR_LIMITED;
    }
    rc = auth_find_user(a, user, user_len, &row);
    if (rc != CD_OK && rc != CD_ERR_NOT_FOUND)
        return rc;
    if (rc == CD_ERR_NOT_FOUND || crypto_recovery_code_parse(code_text, code_len, code) != CD_OK ||
        crypto_sk_unwrap_recovery(a->kr, row.rc_version, code, row.uid, row.sk_rc, sk) != CD_OK) {
        /* Pay the Argon2id a success would pay, so the answer time tells nothing. */
        rc = auth_dummy_work(a, user, user_len, new_pw, new_len, hook);
        if (rc == CD_OK) {
            auth_log_failure(a, user, user_len, "bad recovery code", hook);
            rc = CD_ERR_AUTH;
        }
        goto out;
    }
    old_gen = row.auth_gen;
    rc = auth_rekey(a, &row, user, user_len, new_pw, new_len, sk, old_gen, fresh);
    if (rc == CD_OK) {
        if (a->rl != NULL)
            ratelimit_login_succeeded(a->rl, user, user_len);
        memcpy(new_code, fresh, sizeof(fresh));
    }
out:
    crypto_wipe(code, sizeof(code));
    crypto_wipe(sk, sizeof(sk));
    crypto_wipe(fresh, sizeof(fresh));
    crypto_wipe(&row, sizeof(row));
    return rc;
}

cd_err auth_rotate_key(auth *a, const struct auth_credentials *c, const struct auth_principal *p,
                       char new_code[CRYPTO_RECOVERY_CODE_STRLEN])
{
    char fresh[CRYPTO_RECOVERY_CODE_STRLEN];
    struct db_user row;
    cd_err rc;

    rc = auth_principal_row(a, c, p, &row);
    if (rc != CD_OK)
        goto out;
    rc = auth_rekey(a, &row, c->user, c->user_len, c->pass, c->pass_len, p->sk, p->auth_gen, fresh);
    if (rc == CD_OK)
        memcpy(new_code, fresh, sizeof(fresh));
out:
    crypto_wipe(fresh, sizeof(fresh));
    crypto_wipe(&row, sizeof(row));
    return rc;
}

cd_err auth_delete(auth *a, const struct auth_principal *p)
{
    cd_err rc = db_user_delete(a->db, p->id);
    auth_cache_forget_user(a, p->id);
    return rc;
}
