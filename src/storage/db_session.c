/* db_session.c: sessions (keyed by a hash of their token, valid while the
 * account's auth_gen is theirs) and the two-factor state changes. */
#include "storage/db_int.h"

/* A session is inserted only while the account's auth_gen is the given one;
 * the shared lock orders it with a key rotation (which holds the row FOR
 * UPDATE and deletes the account's sessions). */
static const struct db_stmt st_session_insert = {
    ST_SESSION_INSERT, "session insert",
    "INSERT INTO sessions (id_hash, user_id, auth_gen, sk_wrapped, mk_version, created_at,"
    " expires_at) SELECT ?, u.id, u.auth_gen, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) +"
    " INTERVAL ? SECOND FROM users u WHERE u.id = ? AND u.auth_gen = ? LOCK IN SHARE MODE"};
static const struct db_stmt st_session_count = {ST_SESSION_COUNT, "session count",
                                                "SELECT COUNT(*) FROM sessions WHERE user_id = ?"};
static const struct db_stmt st_session_drop_oldest = {
    ST_SESSION_DROP_OLDEST, "session drop oldest",
    "DELETE FROM sessions WHERE user_id = ? ORDER BY created_at, id_hash LIMIT 1"};
static const struct db_stmt st_session_sweep = {
    ST_SESSION_SWEEP, "session sweep",
    "DELETE FROM sessions WHERE expires_at < UTC_TIMESTAMP(6) LIMIT 100"};
/* Validity is decided in the statement that reads the session: not expired,
 * and the account's auth_gen still the one the session was made at. */
static const struct db_stmt st_session_get = {
    ST_SESSION_GET, "session get",
    "SELECT s.user_id, s.auth_gen, s.mk_version, s.sk_wrapped, u.uid,"
    " s.expires_at > UTC_TIMESTAMP(6) AND s.auth_gen = u.auth_gen"
    " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?"};
static const struct db_stmt st_session_delete = {ST_SESSION_DELETE, "session delete",
                                                 "DELETE FROM sessions WHERE id_hash = ?"};
static const struct db_stmt st_session_keep = {
    ST_SESSION_KEEP, "session keep",
    "UPDATE sessions SET auth_gen = ? WHERE id_hash = ? AND user_id = ?"};

_Static_assert(DB_SESSION_SWEEP == 100, "the sweep statement's LIMIT");

struct session_ins {
    const struct db_session *s;
    uint32_t ttl;
    unsigned max;
};

static cd_err session_insert_tx(struct db_op *op, void *cls)
{
    const struct session_ins *si = cls;
    const struct db_session *s = si->s;
    MYSQL_STMT *st = NULL;
    struct db_args in;
    struct db_cols cols;
    uint64_t count = 0;
    bool row = false;
    cd_err err;

    db_args_init(&in);
    db_arg_blob(&in, s->id_hash, sizeof(s->id_hash));
    db_arg_blob(&in, s->sk_wrapped, s->sk_wrapped_len);
    db_arg_u32(&in, &s->mk_version);
    db_arg_u32(&in, &si->ttl);
    db_arg_u64(&in, &s->user_id);
    db_arg_u32(&in, &s->auth_gen);
    err = db_op_run(op, &st_session_insert, &in, &st);
    if (err != CD_OK)
        return err;
    if (mysql_stmt_affected_rows(st) != 1)
        return CD_ERR_AUTH; /* the account changed or is gone */
    db_args_init(&in);
    db_arg_u64(&in, &s->user_id);
    db_cols_init(&cols);
    db_col_u64(&cols, &count);
    err = db_op_row(op, &st_session_count, &in, &cols, &row);
    /* Usually one over the cap at most: one DELETE each, oldest first. */
    for (; err == CD_OK && row && count > si->max; count--)
        err = db_op_run(op, &st_session_drop_oldest, &in, &st);
    return err;
}

cd_err db_session_insert(db_pool *pool, const struct db_session *s, unsigned ttl_s,
                         unsigned max_per_user)
{
    struct session_ins si = {s, ttl_s, max_per_user};
    struct db_op op;
    cd_err err;

    if (s->sk_wrapped_len == 0 || s->sk_wrapped_len > DB_SESSION_WRAP_MAX || ttl_s == 0 ||
        max_per_user == 0)
        return CD_ERR_INVALID;
    err = db_op_begin(pool, &op, LANE_SMALL);
    if (err != CD_OK)
        return err;
    err = db_op_tx(&op, session_insert_tx, &si);
    if (err == CD_OK) {
        MYSQL_STMT *st = NULL;
        /* Best effort: a failed sweep leaves the rows for the next login,
         * and every lookup refuses an expired row anyway. */
        (void)db_op_run(&op, &st_session_sweep, NULL, &st);
    }
    db_op_end(&op);
    return err;
}

cd_err db_session_delete(db_pool *pool, const uint8_t id_hash[CRYPTO_HASH_BYTES])
{
    struct db_args in;
    uint64_t n = 0;
    cd_err err;

    db_args_init(&in);
    db_arg_blob(&in, id_hash, CRYPTO_HASH_BYTES);
    err = db_run(pool, LANE_SMALL, &st_session_delete, &in, &n);
    return err == CD_OK && n == 0 ? CD_ERR_NOT_FOUND : err;
}

cd_err db_session_get(db_pool *pool, const uint8_t id_hash[CRYPTO_HASH_BYTES],
                      struct db_session *out)
{
    struct db_session s;
    struct db_args in;
    struct db_cols c;
    uint32_t valid = 0;
    bool row = false;
    cd_err err;

    memset(&s, 0, sizeof(s));
    db_args_init(&in);
    db_arg_blob(&in, id_hash, CRYPTO_HASH_BYTES);
    db_cols_init(&c);
    db_col_u64(&c, &s.user_id);
    db_col_u32(&c, &s.auth_gen);
    db_col_u32(&c, &s.mk_version);
    db_col_blob(&c, s.sk_wrapped, sizeof(s.sk_wrapped)); /* 3 */
    db_col_blob(&c, s.uid, sizeof(s.uid));               /* 4 */
    db_col_u32(&c, &valid);
    err = db_run_row(pool, &st_session_get, &in, &c, &row, NULL);
    if (err == CD_OK && !row)
        err = CD_ERR_NOT_FOUND;
    if (err == CD_OK && (!db_col_fits(&c, 3) || c.isnull[3] || !db_col_is(&c, 4, sizeof(s.uid))))
        err = CD_ERR_INTERNAL; /* a malformed row: the caller reports it */
    if (err == CD_OK && valid != 1) {
        /* Expired, or the account's credentials changed: gone for good. */
        (void)db_session_delete(pool, id_hash);
        err = CD_ERR_NOT_FOUND;
    }
    if (err == CD_OK) {
        memcpy(s.id_hash, id_hash, sizeof(s.id_hash));
        s.sk_wrapped_len = c.len[3];
        *out = s;
    }
    explicit_bzero(&s, sizeof(s));
    return err;
}

/* ---- two-factor ---- */

static const struct db_stmt st_totp_pending = {
    ST_TOTP_PENDING, "totp pending",
    "UPDATE users SET totp_ct = ?, totp_state = 1 WHERE id = ? AND auth_gen = ? AND"
    " totp_state <> 2"};
static const struct db_stmt st_totp_state = {ST_TOTP_STATE, "totp state",
                                             "SELECT totp_state FROM users WHERE id = ?"};
static const struct db_stmt st_totp_confirm = {
    ST_TOTP_CONFIRM, "totp confirm",
    "UPDATE users SET totp_state = 2, totp_last_step = ?, auth_gen = auth_gen + 1 WHERE id = ?"
    " AND auth_gen = ? AND totp_state = 1 AND totp_ct = ? AND totp_last_step < ?"};
static const struct db_stmt st_totp_use = {
    ST_TOTP_USE, "totp use",
    "UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_state = 2 AND totp_last_step < ?"};
static const struct db_stmt st_totp_disable = {
    ST_TOTP_DISABLE, "totp disable",
    "UPDATE users SET totp_state = 0, totp_ct = NULL, totp_last_step = ? WHERE id = ? AND"
    " totp_state = 2 AND totp_last_step < ?"};

cd_err db_totp_set_pending(db_pool *pool, uint64_t user_id, uint32_t auth_gen, const uint8_t *ct,
                           size_t ct_len)
{
    struct db_args in;
    struct db_cols cols;
    uint32_t state = 0;
    uint64_t n = 0;
    bool row = false;
    cd_err err;

    if (ct == NULL || ct_len == 0 || ct_len > DB_TOTP_CT_MAX)
        return CD_ERR_INVALID;
    db_args_init(&in);
    db_arg_blob(&in, ct, ct_len);
    db_arg_u64(&in, &user_id);
    db_arg_u32(&in, &auth_gen);
    err = db_run(pool, LANE_SMALL, &st_totp_pending, &in, &n);
    if (err != CD_OK || n == 1)
        return err;
    /* Nothing changed: on already, or the account changed or is gone. */
    db_args_init(&in);
    db_arg_u64(&in, &user_id);
    db_cols_init(&cols);
    db_col_u32(&cols, &state);
    err = db_run_row(pool, &st_totp_state, &in, &cols, &row, NULL);
    if (err != CD_OK)
        return err;
    return row && state == DB_TOTP_ON ? CD_ERR_EXISTS : CD_ERR_AUTH;
}

struct totp_confirm {
    uint64_t user_id;
    uint32_t auth_gen;
    const uint8_t *ct;
    size_t ct_len;
    uint64_t step;
    const uint8_t *keep;
};

static cd_err totp_confirm_tx(struct db_op *op, void *cls)
{
    const struct totp_confirm *tc = cls;
    MYSQL_STMT *st = NULL;
    struct db_args in;
    uint32_t gen = tc->auth_gen + 1;
    cd_err err;

    db_args_init(&in);
    db_arg_u64(&in, &tc->step);
    db_arg_u64(&in, &tc->user_id);
    db_arg_u32(&in, &tc->auth_gen);
    db_arg_blob(&in, tc->ct, tc->ct_len);
    db_arg_u64(&in, &tc->step);
    err = db_op_run(op, &st_totp_confirm, &in, &st);
    if (err != CD_OK)
        return err;
    if (mysql_stmt_affected_rows(st) != 1)
        return CD_ERR_CONFLICT;
    if (tc->keep == NULL)
        return CD_OK;
    db_args_init(&in);
    db_arg_u32(&in, &gen);
    db_arg_blob(&in, tc->keep, CRYPTO_HASH_BYTES);
    db_arg_u64(&in, &tc->user_id);
    return db_op_run(op, &st_session_keep, &in, &st);
}

cd_err db_totp_confirm(db_pool *pool, uint64_t user_id, uint32_t auth_gen, const uint8_t *ct,
                       size_t ct_len, uint64_t step, const uint8_t *keep_session)
{
    struct totp_confirm tc = {user_id, auth_gen, ct, ct_len, step, keep_session};
    struct db_op op;
    cd_err err;

    if (ct == NULL || ct_len == 0 || ct_len > DB_TOTP_CT_MAX || auth_gen == UINT32_MAX)
        return CD_ERR_INVALID;
    err = db_op_begin(pool, &op, LANE_SMALL);
    if (err != CD_OK)
        return err;
    err = db_op_tx(&op, totp_confirm_tx, &tc);
    db_op_end(&op);
    return err;
}

/* One conditional UPDATE whose arguments are (step, user_id, step). */
static cd_err totp_step_update(db_pool *pool, const struct db_stmt *s, uint64_t user_id,
                               uint64_t step)
{
    struct db_args in;
    uint64_t n = 0;
    cd_err err;

    db_args_init(&in);
    db_arg_u64(&in, &step);
    db_arg_u64(&in, &user_id);
    db_arg_u64(&in, &step);
    err = db_run(pool, LANE_SMALL, s, &in, &n);
    return err == CD_OK && n != 1 ? CD_ERR_CONFLICT : err;
}

cd_err db_totp_use_step(db_pool *pool, uint64_t user_id, uint64_t step)
{
    return totp_step_update(pool, &st_totp_use, user_id, step);
}

cd_err db_totp_disable(db_pool *pool, uint64_t user_id, uint64_t step)
{
    return totp_step_update(pool, &st_totp_disable, user_id, step);
}
