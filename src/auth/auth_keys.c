/* auth_keys.c: name hashes, verifiers, Argon2id, password/recovery wraps, rekeying. */
#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <string.h>

#include "auth/auth_int.h"
#include "common/codec.h"
#include "log/log.h"
#include "metrics/metrics.h"

cd_err auth_uname_hash(const auth *a, uint32_t version, const char *user, size_t len,
                       uint8_t out[CRYPTO_HASH_BYTES])
{
    struct crypto_part part = {user, len};
    return crypto_keyed_hash(a->kr, version, CRYPTO_PURPOSE_USERNAME, &part, 1, out);
}

void auth_log_tag(const auth *a, const char *user, size_t len, char tag[17])
{
    uint8_t h[CRYPTO_HASH_BYTES];

    if (auth_uname_hash(a, crypto_keyring_newest(a->kr), user, len, h) != CD_OK) {
        memcpy(tag, "????????????????", 17);
        return;
    }
    codec_hex_encode(h, 8, tag);
}

/* The username's hash under every version of the keyring, newest first
 * (hashes[0] is the one new rows get). */
cd_err auth_name_hashes(const auth *a, const char *user, size_t len,
                        uint8_t hashes[CRYPTO_KEYRING_MAX_KEYS][CRYPTO_HASH_BYTES], size_t *n)
{
    uint32_t versions[CRYPTO_KEYRING_MAX_KEYS];
    size_t count = crypto_keyring_versions(a->kr, versions, CRYPTO_KEYRING_MAX_KEYS);

    if (count == 0)
        return CD_ERR_INTERNAL;
    if (count > CRYPTO_KEYRING_MAX_KEYS)
        count = CRYPTO_KEYRING_MAX_KEYS;
    for (size_t i = 0; i < count; i++) {
        cd_err rc = auth_uname_hash(a, versions[i], user, len, hashes[i]);
        if (rc != CD_OK)
            return rc;
    }
    *n = count;
    return CD_OK;
}

/* Finds the account of a username under any master key version: one
 * statement with the name's hash under each version, so the lookup costs the
 * same whether the name exists, and under which version. */
cd_err auth_find_user(const auth *a, const char *user, size_t len, struct db_user *row)
{
    uint8_t hashes[CRYPTO_KEYRING_MAX_KEYS][CRYPTO_HASH_BYTES];
    size_t n = 0;
    cd_err rc = auth_name_hashes(a, user, len, hashes, &n);

    if (rc == CD_OK)
        rc = db_user_find(a->db, (const uint8_t(*)[CRYPTO_HASH_BYTES])hashes, n, row);
    return rc;
}

/* What users.verifier holds for the Argon2id-derived verifier v of row. */
cd_err auth_stored_verifier(const auth *a, const struct db_user *row,
                            const uint8_t v[CRYPTO_HASH_BYTES], uint8_t out[CRYPTO_HASH_BYTES])
{
    if (row->verifier_kind == DB_VERIFIER_LEGACY) {
        memcpy(out, v, CRYPTO_HASH_BYTES); /* not yet converted (auth_convert_verifiers) */
        return CD_OK;
    }
    return crypto_verifier_bind(a->kr, row->mk_version, row->uid, v, out);
}

cd_err auth_derive(auth *a, const char *pw, size_t pwlen, const uint8_t salt[CRYPTO_SALT_BYTES],
                   const struct crypto_pwparams *params, uint8_t verifier[CRYPTO_HASH_BYTES],
                   uint8_t pwkey[CRYPTO_KEY_BYTES], const struct auth_hook *hook)
{
    struct timespec deadline;
    uint64_t t0;
    uint64_t t1;
    cd_err rc;

    if (!auth_hook_run(hook))
        return CD_ERR_LIMITED;
    auth_wait_deadline(a, &deadline);
    t0 = metrics_now_ns();
    metrics_argon2_wait_begin();
    while (sem_timedwait(&a->hash_slots, &deadline) != 0) {
        if (errno == EINTR)
            continue;
        metrics_argon2_wait_end(metrics_now_ns() - t0);
        log_warnx("req=%s no password hashing slot free within %u ms", auth_hook_request_id(hook),
                  a->cfg.hash_wait_ms);
        return CD_ERR_LIMITED;
    }
    t1 = metrics_now_ns();
    metrics_argon2_wait_end(t1 - t0);
    rc = crypto_password_derive(pw, pwlen, salt, params, verifier, pwkey);
    metrics_argon2_hash(metrics_now_ns() - t1);
    sem_post(&a->hash_slots);
    atomic_fetch_add(&a->hashes, 1);
    atomic_fetch_add(&a->hash_work, (uint_fast64_t)params->opslimit * (params->memlimit / 1024u));
    return rc;
}

uint64_t auth_hash_count(const auth *a)
{
    return atomic_load(&((auth *)a)->hashes);
}

uint64_t auth_hash_work(const auth *a)
{
    return atomic_load(&((auth *)a)->hash_work);
}

/* The same Argon2id work as a real verification, for an account that does not
 * exist: the salt is derived from the username so repeated attempts look alike. */
cd_err auth_dummy_work(auth *a, const char *user, size_t ulen, const char *pw, size_t pwlen,
                       const struct auth_hook *hook)
{
    uint8_t salt_src[CRYPTO_HASH_BYTES], verifier[CRYPTO_HASH_BYTES], pwkey[CRYPTO_KEY_BYTES];
    struct crypto_part parts[2] = {{"dummy-salt", 10}, {user, ulen}};
    cd_err rc;

    rc = crypto_keyed_hash(a->kr, crypto_keyring_newest(a->kr), CRYPTO_PURPOSE_USERNAME, parts, 2,
                           salt_src);
    if (rc == CD_OK)
        rc = auth_derive(a, pw, pwlen, salt_src, &a->cfg.pwparams, verifier, pwkey, hook);
    crypto_wipe(pwkey, sizeof(pwkey));
    return rc;
}

/* Fills the password columns of row for password pw (new salt, current
 * parameters) and wraps sk under it with master key row->mk_version. */
cd_err auth_set_password(auth *a, struct db_user *row, const char *pw, size_t pwlen,
                         const uint8_t sk[CRYPTO_KEY_BYTES])
{
    uint8_t pwkey[CRYPTO_KEY_BYTES];
    cd_err rc;

    uint8_t v[CRYPTO_HASH_BYTES];

    crypto_random(row->pw_salt, sizeof(row->pw_salt));
    row->pw_opslimit = (uint32_t)a->cfg.pwparams.opslimit;
    row->pw_memlimit_kib = (uint32_t)(a->cfg.pwparams.memlimit / 1024u);
    rc = auth_derive(a, pw, pwlen, row->pw_salt, &a->cfg.pwparams, v, pwkey, NULL);
    if (rc == CD_OK)
        rc = crypto_verifier_bind(a->kr, row->mk_version, row->uid, v, row->verifier);
    row->verifier_kind = DB_VERIFIER_KEYED;
    if (rc == CD_OK)
        rc = crypto_sk_wrap_password(a->kr, row->mk_version, pwkey, row->uid, sk, row->sk_pw);
    crypto_wipe(pwkey, sizeof(pwkey));
    crypto_wipe(v, sizeof(v));
    return rc;
}

/* New recovery code wrapping sk, plus the escrow copy when configured. */
cd_err auth_set_recovery(auth *a, struct db_user *row, const uint8_t sk[CRYPTO_KEY_BYTES],
                         char code_text[CRYPTO_RECOVERY_CODE_STRLEN])
{
    uint8_t code[CRYPTO_RECOVERY_CODE_BYTES];
    cd_err rc;

    crypto_recovery_code_new(code, code_text);
    row->rc_version = crypto_keyring_newest(a->kr);
    rc = crypto_sk_wrap_recovery(a->kr, row->rc_version, code, row->uid, sk, row->sk_rc);
    crypto_wipe(code, sizeof(code));
    if (rc != CD_OK)
        return rc;
    row->sk_escrow_len = 0;
    if (a->cfg.have_escrow) {
        rc = crypto_sk_escrow(a->cfg.escrow_pk, sk, row->sk_escrow);
        if (rc != CD_OK)
            return rc;
        row->sk_escrow_len = CRYPTO_ESCROWED_KEY_BYTES;
    }
    return CD_OK;
}

/* Document KEKs of a key rotation, and the owner the AD binds. */
struct auth_rewrap {
    uint8_t old_kek[CRYPTO_KEY_BYTES];
    uint8_t new_kek[CRYPTO_KEY_BYTES];
    uint8_t uid[CRYPTO_UID_BYTES];
    uint64_t user_id;
};

static cd_err auth_rewrap_doc(void *cls, int64_t record_id, uint64_t version,
                              const uint8_t in[CRYPTO_WRAPPED_KEY_BYTES],
                              uint8_t out[CRYPTO_WRAPPED_KEY_BYTES])
{
    const struct auth_rewrap *rw = cls;
    struct crypto_doc_ad ad;
    cd_err rc;

    memcpy(ad.owner_uid, rw->uid, sizeof(ad.owner_uid));
    ad.record_id = record_id;
    ad.version = version;
    rc = crypto_doc_rewrap(rw->old_kek, rw->new_kek, &ad, in, out);
    if (rc == CD_ERR_CRYPTO) {
        /* Damaged already (it did not open before either): left as it is
         * rather than blocking the rotation of every other document. */
        log_errorx("a document of user id %llu does not open; its data key is left as is",
                   (unsigned long long)rw->user_id);
        memcpy(out, in, CRYPTO_WRAPPED_KEY_BYTES);
        rc = CD_OK;
    }
    return rc;
}

/* A new user key pair for row (finding 8): the new secret key wrapped under
 * password pw and a new recovery code (code_out), everything under the newest
 * master key version, and every document data key re-wrapped from old_sk's
 * document KEK to the new one, in one transaction that also bumps auth_gen
 * (from old_gen): every replica's cache then drops the old key. The TOTP
 * secret is re-sealed; application passwords and sessions are deleted. */
cd_err auth_rekey(auth *a, struct db_user *row, const char *user, size_t user_len, const char *pw,
                  size_t pwlen, const uint8_t old_sk[CRYPTO_KEY_BYTES], uint32_t old_gen,
                  char code_out[CRYPTO_RECOVERY_CODE_STRLEN])
{
    uint8_t new_sk[CRYPTO_KEY_BYTES];
    struct auth_rewrap rw;
    cd_err rc;

    row->mk_version = crypto_keyring_newest(a->kr);
    rc = auth_uname_hash(a, row->mk_version, user, user_len, row->uname_hash);
    if (rc != CD_OK)
        return rc;
    crypto_user_keypair(row->public_key, new_sk);
    crypto_user_doc_kek(old_sk, rw.old_kek);
    crypto_user_doc_kek(new_sk, rw.new_kek);
    memcpy(rw.uid, row->uid, sizeof(rw.uid));
    rw.user_id = row->id;
    rc = auth_set_password(a, row, pw, pwlen, new_sk);
    if (rc == CD_OK)
        rc = auth_set_recovery(a, row, new_sk, code_out);
    /* Two-factor stays as it is, re-sealed under the new key (recovery too:
     * it proves the recovery code, not the second factor). */
    if (rc == CD_OK)
        rc = auth_totp_reseal(row, old_sk, new_sk);
    if (rc == CD_OK)
        rc = db_user_rotate_key(a->db, row, old_gen, auth_rewrap_doc, &rw);
    if (rc == CD_OK || rc == CD_ERR_CONFLICT)
        auth_cache_forget_user(a, row->id);
    crypto_wipe(new_sk, sizeof(new_sk));
    crypto_wipe(&rw, sizeof(rw));
    return rc;
}

static cd_err auth_convert_one(void *cls, const struct db_verifier_row *r,
                               uint8_t out[CRYPTO_HASH_BYTES])
{
    const auth *a = cls;
    return crypto_verifier_bind(a->kr, r->mk_version, r->uid, r->verifier, out);
}

cd_err auth_convert_verifiers(auth *a, unsigned *converted)
{
    return db_user_convert_verifiers(a->db, auth_convert_one, a, converted);
}
