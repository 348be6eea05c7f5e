/* db_user.c: accounts: insert, lookup by username hashes, credential updates,
 * key rotation (with the owner's document keys), verifier conversion, delete. */
#include "storage/db_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "log/log.h"

/* The columns every user read returns, in struct db_user's order. */
#define USER_COLS                                                                                  \
    "id, uid, uname_hash, mk_version, pw_salt, pw_opslimit, pw_memlimit_kib, verifier,"            \
    " public_key, sk_pw, sk_rc, sk_escrow, auth_gen, COALESCE(rc_mk_version, mk_version),"         \
    " verifier_kind, totp_state, totp_last_step, totp_ct"

static const struct db_stmt st_user_insert = {
    ST_USER_INSERT, "user insert",
    "INSERT INTO users (uid, uname_hash, mk_version, pw_salt, pw_opslimit,"
    " pw_memlimit_kib, verifier, public_key, sk_pw, sk_rc, sk_escrow, auth_gen,"
    " rc_mk_version, verifier_kind, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
    " ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))"};
static const struct db_stmt st_user_update = {
    ST_USER_UPDATE, "user update",
    "UPDATE users SET uname_hash = ?, mk_version = ?, pw_salt = ?,"
    " pw_opslimit = ?, pw_memlimit_kib = ?, verifier = ?, sk_pw = ?,"
    " sk_rc = ?, sk_escrow = ?, auth_gen = ?, public_key = ?,"
    " rc_mk_version = ?, verifier_kind = ? WHERE id = ? AND auth_gen = ?"};
static const struct db_stmt st_user_exists = {ST_USER_EXISTS, "user exists",
                                              "SELECT 1 FROM users WHERE id = ?"};
static const struct db_stmt st_user_delete = {ST_USER_DELETE, "user delete",
                                              "DELETE FROM users WHERE id = ?"};
/* The account row first, in every transaction that changes what is wrapped
 * under a user's key: one lock order, no deadlock between them. */
static const struct db_stmt st_user_lock = {ST_USER_LOCK, "user lock",
                                            "SELECT auth_gen FROM users WHERE id = ? FOR UPDATE"};
static const struct db_stmt st_user_lock_shared = {
    ST_USER_LOCK_SHARED, "user lock", "SELECT auth_gen FROM users WHERE id = ? LOCK IN SHARE MODE"};
static const struct db_stmt st_user_legacy_verifiers = {
    ST_USER_LEGACY_VERIFIERS, "legacy verifiers",
    "SELECT id, uid, mk_version, verifier FROM users WHERE"
    " verifier_kind = 1 AND id > ? ORDER BY id LIMIT ?"};
static const struct db_stmt st_user_set_verifier = {
    ST_USER_SET_VERIFIER, "set verifier",
    "UPDATE users SET verifier = ?, verifier_kind = 2 WHERE id = ? AND"
    " verifier_kind = 1 AND verifier = ?"};
static const struct db_stmt st_doc_keys = {
    ST_DOC_KEYS, "doc keys",
    "SELECT record_id, version, wrapped_dk FROM documents WHERE owner_id = ? AND"
    " record_id > ? ORDER BY record_id LIMIT ? FOR UPDATE"};
/* What a key rotation re-seals or drops besides the documents. */
static const struct db_stmt st_user_set_totp = {ST_USER_SET_TOTP, "user set totp",
                                                "UPDATE users SET totp_ct = ? WHERE id = ?"};
static const struct db_stmt st_user_drop_apppw = {ST_USER_DROP_APPPW, "drop app passwords",
                                                  "DELETE FROM app_passwords WHERE user_id = ?"};
static const struct db_stmt st_user_drop_sessions = {ST_USER_DROP_SESSIONS, "drop sessions",
                                                     "DELETE FROM sessions WHERE user_id = ?"};
static const struct db_stmt st_doc_set_key = {
    ST_DOC_SET_KEY, "doc set key",
    "UPDATE documents SET wrapped_dk = ? WHERE owner_id = ? AND record_id = ?"
    " AND version = ?"};

/* The key columns common to an insert and an update, in the statements' order
 * after uname_hash: mk_version, pw_salt, opslimit, memlimit, verifier. */
static void user_args_pw(struct db_args *a, const struct db_user *u)
{
    db_arg_u32(a, &u->mk_version);
    db_arg_blob(a, u->pw_salt, sizeof(u->pw_salt));
    db_arg_u32(a, &u->pw_opslimit);
    db_arg_u32(a, &u->pw_memlimit_kib);
    db_arg_blob(a, u->verifier, sizeof(u->verifier));
}

static cd_err user_insert_exec(struct db_op *op, struct db_user *u)
{
    MYSQL_STMT *st = NULL;
    struct db_args in;
    uint32_t rc_version = u->rc_version != 0 ? u->rc_version : u->mk_version;
    uint32_t kind = u->verifier_kind != 0 ? u->verifier_kind : DB_VERIFIER_KEYED;
    cd_err err;

    db_args_init(&in);
    db_arg_blob(&in, u->uid, sizeof(u->uid));
    db_arg_blob(&in, u->uname_hash, sizeof(u->uname_hash));
    user_args_pw(&in, u);
    db_arg_blob(&in, u->public_key, sizeof(u->public_key));
    db_arg_blob(&in, u->sk_pw, sizeof(u->sk_pw));
    db_arg_blob(&in, u->sk_rc, sizeof(u->sk_rc));
    db_arg_blob_or_null(&in, u->sk_escrow, u->sk_escrow_len);
    db_arg_u32(&in, &u->auth_gen);
    db_arg_u32(&in, &rc_version);
    db_arg_u32(&in, &kind);
    err = db_op_run(op, &st_user_insert, &in, &st);
    if (err != CD_OK)
        return err;
    u->id = mysql_stmt_insert_id(st);
    return CD_OK;
}

/* Fetches one user row of a statement that selected USER_COLS (already
 * executed). CD_ERR_NOT_FOUND when there is none. */
static cd_err user_fetch(struct db_op *op, MYSQL_STMT *st, struct db_user *out)
{
    struct db_cols c;
    struct db_user u;
    uint32_t kind = 0, totp = 0;
    bool row = false;
    cd_err err;

    memset(&u, 0, sizeof(u));
    db_cols_init(&c);
    db_col_u64(&c, &u.id);
    db_col_blob(&c, u.uid, sizeof(u.uid));               /* 1 */
    db_col_blob(&c, u.uname_hash, sizeof(u.uname_hash)); /* 2 */
    db_col_u32(&c, &u.mk_version);                       /* 3 */
    db_col_blob(&c, u.pw_salt, sizeof(u.pw_salt));       /* 4 */
    db_col_u32(&c, &u.pw_opslimit);                      /* 5 */
    db_col_u32(&c, &u.pw_memlimit_kib);                  /* 6 */
    db_col_blob(&c, u.verifier, sizeof(u.verifier));     /* 7 */
    db_col_blob(&c, u.public_key, sizeof(u.public_key)); /* 8 */
    db_col_blob(&c, u.sk_pw, sizeof(u.sk_pw));           /* 9 */
    db_col_blob(&c, u.sk_rc, sizeof(u.sk_rc));           /* 10 */
    db_col_blob(&c, u.sk_escrow, sizeof(u.sk_escrow));   /* 11 */
    db_col_u32(&c, &u.auth_gen);
    db_col_u32(&c, &u.rc_version);
    db_col_u32(&c, &kind);
    db_col_u32(&c, &totp);
    db_col_u64(&c, &u.totp_last_step);
    db_col_blob(&c, u.totp_ct, sizeof(u.totp_ct)); /* 17 */
    if (mysql_stmt_bind_result(st, c.b))
        err = db_op_err(op, st);
    else
        err = db_op_fetch(op, st, &row);
    db_op_finish(op, st);
    if (err == CD_OK && !row)
        err = CD_ERR_NOT_FOUND;
    if (err != CD_OK)
        goto out;
    /* Fixed-size columns must have exactly their size. */
    if (!db_col_is(&c, 1, sizeof(u.uid)) || !db_col_is(&c, 2, sizeof(u.uname_hash)) ||
        !db_col_is(&c, 4, sizeof(u.pw_salt)) || !db_col_is(&c, 7, sizeof(u.verifier)) ||
        !db_col_is(&c, 8, sizeof(u.public_key)) || !db_col_is(&c, 9, sizeof(u.sk_pw)) ||
        !db_col_is(&c, 10, sizeof(u.sk_rc)) || !db_col_fits(&c, 11) || !db_col_fits(&c, 17) ||
        (kind != DB_VERIFIER_LEGACY && kind != DB_VERIFIER_KEYED) || totp > DB_TOTP_ON ||
        (totp != DB_TOTP_OFF && c.isnull[17])) {
        err = CD_ERR_INTERNAL; /* a malformed row: the caller reports it */
        goto out;
    }
    u.sk_escrow_len = c.isnull[11] ? 0 : c.len[11];
    u.verifier_kind = (uint8_t)kind;
    u.totp_state = (uint8_t)totp;
    u.totp_ct_len = c.isnull[17] ? 0 : c.len[17];
    *out = u;
out:
    explicit_bzero(&u, sizeof(u));
    explicit_bzero(&c, sizeof(c));
    return err;
}

/* Runs the lookup by n hashes (locking: FOR UPDATE, inside a transaction). If
 * several rows match (names duplicated by the pre-issue-9 code), the oldest
 * account wins: it is the one whose owner chose the name first. */
static cd_err user_find_exec(struct db_op *op, const uint8_t (*hashes)[CRYPTO_HASH_BYTES], size_t n,
                             bool locking, struct db_user *out)
{
    MYSQL_STMT *st = NULL;
    MYSQL_BIND in[DB_UNAME_HASHES_MAX];
    char sql[sizeof("SELECT " USER_COLS " FROM users WHERE uname_hash IN () ORDER BY id LIMIT 1"
                    " FOR UPDATE") +
             (size_t)3 * DB_UNAME_HASHES_MAX];
    size_t o;
    cd_err err;

    if (n == 0 || n > DB_UNAME_HASHES_MAX)
        return CD_ERR_INVALID;
    o = (size_t)snprintf(sql, sizeof(sql), "SELECT " USER_COLS " FROM users WHERE uname_hash IN (");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(sql + o, sizeof(sql) - o, i == 0 ? "?" : ", ?");
    snprintf(sql + o, sizeof(sql) - o, ") ORDER BY id LIMIT 1%s", locking ? " FOR UPDATE" : "");
    op->what = "user find";
    err = db_op_prepare(op, &op->c->st_find[locking][n], sql, &st);
    if (err != CD_OK)
        return err;
    memset(in, 0, sizeof(in));
    for (size_t i = 0; i < n; i++) {
        in[i].buffer_type = MYSQL_TYPE_BLOB;
        in[i].buffer = (void *)hashes[i];
        in[i].buffer_length = CRYPTO_HASH_BYTES;
    }
    err = db_op_exec(op, st, in);
    if (err != CD_OK)
        return err;
    return user_fetch(op, st, out);
}

cd_err db_user_find(db_pool *pool, const uint8_t (*hashes)[CRYPTO_HASH_BYTES], size_t n,
                    struct db_user *out)
{
    struct db_op op;
    cd_err err;

    err = db_op_begin(pool, &op, LANE_SMALL);
    if (err != CD_OK)
        return err;
    err = user_find_exec(&op, hashes, n, false, out);
    db_op_end(&op);
    return err;
}

struct insert_unique {
    struct db_user *u;
    const uint8_t (*hashes)[CRYPTO_HASH_BYTES];
    size_t n;
};

static cd_err insert_unique_tx(struct db_op *op, void *cls)
{
    struct insert_unique *iu = cls;
    struct db_user other;
    cd_err err;

    /* A locking read takes next-key locks on every hash's index entry or gap:
     * a concurrent create of the same name blocks on them (or is chosen as a
     * deadlock victim and runs again), and a row re-hashed meanwhile is seen
     * in its committed form. */
    err = user_find_exec(op, iu->hashes, iu->n, true, &other);
    explicit_bzero(&other, sizeof(other));
    if (err == CD_OK)
        return CD_ERR_EXISTS;
    if (err != CD_ERR_NOT_FOUND)
        return err;
    return user_insert_exec(op, iu->u);
}

cd_err db_user_insert_unique(db_pool *pool, struct db_user *u,
                             const uint8_t (*hashes)[CRYPTO_HASH_BYTES], size_t n)
{
    struct insert_unique iu = {u, hashes, n};
    struct db_op op;
    cd_err err;

    if (u->sk_escrow_len > DB_KEYBLOB_MAX || n == 0 || n > DB_UNAME_HASHES_MAX)
        return CD_ERR_INVALID;
    err = db_op_begin(pool, &op, LANE_SMALL);
    if (err != CD_OK)
        return err;
    for (int attempt = 1; attempt <= DB_TX_ATTEMPTS; attempt++) {
        err = db_op_tx(&op, insert_unique_tx, &iu);
        if (err != CD_ERR_CONFLICT || op.broken)
            break;
        /* Handled here: InnoDB rolled the victim back; it runs again. */
        log_debug("db: account create chosen as a deadlock victim (attempt %d of %d)", attempt,
                  DB_TX_ATTEMPTS);
    }
    db_op_end(&op);
    return err;
}

/* The credential UPDATE of db_user_update_credentials on op's connection. */
static cd_err user_update_exec(struct db_op *op, const struct db_user *u, uint32_t expected_gen)
{
    MYSQL_STMT *st = NULL;
    struct db_args in;
    uint32_t new_gen = expected_gen + 1;
    uint32_t rc_version = u->rc_version != 0 ? u->rc_version : u->mk_version;
    uint32_t kind = u->verifier_kind != 0 ? u->verifier_kind : DB_VERIFIER_KEYED;
    uint64_t id = u->id;
    cd_err err;

    db_args_init(&in);
    db_arg_blob(&in, u->uname_hash, sizeof(u->uname_hash));
    user_args_pw(&in, u);
    db_arg_blob(&in, u->sk_pw, sizeof(u->sk_pw));
    db_arg_blob(&in, u->sk_rc, sizeof(u->sk_rc));
    db_arg_blob_or_null(&in, u->sk_escrow, u->sk_escrow_len);
    db_arg_u32(&in, &new_gen);
    db_arg_blob(&in, u->public_key, sizeof(u->public_key));
    db_arg_u32(&in, &rc_version);
    db_arg_u32(&in, &kind);
    db_arg_u64(&in, &id);
    db_arg_u32(&in, &expected_gen);
    err = db_op_run(op, &st_user_update, &in, &st);
    if (err != CD_OK)
        return err;
    if (mysql_stmt_affected_rows(st) == 1)
        return CD_OK;
    db_args_init(&in);
    db_arg_u64(&in, &id);
    return db_op_exists(op, &st_user_exists, &in);
}

cd_err db_user_update_credentials(db_pool *pool, const struct db_user *u, uint32_t expected_gen)
{
    struct db_op op;
    cd_err err;

    if (u->sk_escrow_len > DB_KEYBLOB_MAX || expected_gen == UINT32_MAX)
        return CD_ERR_INVALID;
    err = db_op_begin(pool, &op, LANE_SMALL);
    if (err != CD_OK)
        return err;
    err = user_update_exec(&op, u, expected_gen);
    db_op_end(&op);
    return err;
}

cd_err db_user_lock(struct db_op *op, bool shared, uint64_t id, uint32_t gen, cd_err changed)
{
    struct db_args in;
    struct db_cols cols;
    uint32_t got = 0;
    bool row = false;
    cd_err err;

    db_args_init(&in);
    db_arg_u64(&in, &id);
    db_cols_init(&cols);
    db_col_u32(&cols, &got);
    err = db_op_row(op, shared ? &st_user_lock_shared : &st_user_lock, &in, &cols, &row);
    if (err != CD_OK)
        return err;
    if (!row)
        return changed == CD_ERR_AUTH ? CD_ERR_AUTH : CD_ERR_NOT_FOUND;
    return got == gen ? CD_OK : changed;
}

/* Documents re-wrapped per round trip of a key rotation: bounds memory. */
#define DB_ROTATE_BATCH 64

struct doc_key {
    int64_t record_id;
    uint64_t version;
    uint8_t wrapped_dk[CRYPTO_WRAPPED_KEY_BYTES];
};

/* Reads the next batch of the owner's wrapped data keys after *after, locked. */
static cd_err doc_keys_batch(struct db_op *op, uint64_t owner, int64_t after, struct doc_key *out,
                             size_t *n)
{
    MYSQL_STMT *st = NULL;
    struct db_args in;
    struct db_cols cols;
    struct doc_key k;
    uint32_t limit = DB_ROTATE_BATCH;
    cd_err err;

    *n = 0;
    db_args_init(&in);
    db_arg_u64(&in, &owner);
    db_arg_i64(&in, &after);
    db_arg_u32(&in, &limit);
    db_cols_init(&cols);
    db_col_i64(&cols, &k.record_id);
    db_col_u64(&cols, &k.version);
    db_col_blob(&cols, k.wrapped_dk, sizeof(k.wrapped_dk));
    err = db_op_rows(op, &st_doc_keys, &in, &cols, &st);
    if (err != CD_OK)
        return err;
    for (;;) {
        bool row = false;
        err = db_op_fetch(op, st, &row);
        if (err != CD_OK || !row)
            break;
        if (!db_col_is(&cols, 2, sizeof(k.wrapped_dk)) || *n >= DB_ROTATE_BATCH) {
            err = CD_ERR_INTERNAL; /* a malformed data key: the caller reports it */
            break;
        }
        out[(*n)++] = k;
    }
    db_op_finish(op, st);
    return err;
}

static cd_err doc_set_key_exec(struct db_op *op, uint64_t owner, const struct doc_key *k)
{
    MYSQL_STMT *st = NULL;
    struct db_args in;
    cd_err err;

    db_args_init(&in);
    db_arg_blob(&in, k->wrapped_dk, sizeof(k->wrapped_dk));
    db_arg_u64(&in, &owner);
    db_arg_i64(&in, &k->record_id);
    db_arg_u64(&in, &k->version);
    err = db_op_run(op, &st_doc_set_key, &in, &st);
    if (err == CD_OK && mysql_stmt_affected_rows(st) != 1)
        err = CD_ERR_INTERNAL; /* the row is locked: it cannot have changed */
    return err;
}

struct rotate {
    const struct db_user *u;
    uint32_t expected_gen;
    db_rewrap_fn rewrap;
    void *cls;
    struct doc_key *batch;
};

/* The rest of a rotation: the TOTP secret re-sealed by the caller, and the
 * application passwords and sessions (which hold the old key) deleted. */
static cd_err rotate_dependents(struct db_op *op, const struct db_user *u)
{
    MYSQL_STMT *st = NULL;
    struct db_args in;
    uint64_t id = u->id;
    cd_err err = CD_OK;

    if (u->totp_state != DB_TOTP_OFF) {
        db_args_init(&in);
        db_arg_blob(&in, u->totp_ct, u->totp_ct_len);
        db_arg_u64(&in, &id);
        err = db_op_run(op, &st_user_set_totp, &in, &st);
    }
    db_args_init(&in);
    db_arg_u64(&in, &id);
    if (err == CD_OK)
        err = db_op_run(op, &st_user_drop_apppw, &in, &st);
    if (err == CD_OK)
        err = db_op_run(op, &st_user_drop_sessions, &in, &st);
    return err;
}

static cd_err rotate_tx(struct db_op *op, void *cls)
{
    struct rotate *r = cls;
    int64_t after = -1;
    size_t n = 0;
    cd_err err;

    err = db_user_lock(op, false, r->u->id, r->expected_gen, CD_ERR_CONFLICT);
    if (err != CD_OK)
        return err;
    do {
        err = doc_keys_batch(op, r->u->id, after, r->batch, &n);
        for (size_t i = 0; err == CD_OK && i < n; i++) {
            struct doc_key *k = &r->batch[i];
            uint8_t out[CRYPTO_WRAPPED_KEY_BYTES];
            err = r->rewrap(r->cls, k->record_id, k->version, k->wrapped_dk, out);
            if (err == CD_OK) {
                memcpy(k->wrapped_dk, out, sizeof(out));
                err = doc_set_key_exec(op, r->u->id, k);
            }
            after = k->record_id;
        }
    } while (err == CD_OK && n == DB_ROTATE_BATCH);
    if (err == CD_OK)
        err = user_update_exec(op, r->u, r->expected_gen);
    if (err == CD_OK)
        err = rotate_dependents(op, r->u);
    return err;
}

cd_err db_user_rotate_key(db_pool *pool, const struct db_user *u, uint32_t expected_gen,
                          db_rewrap_fn rewrap, void *cls)
{
    struct rotate r = {u, expected_gen, rewrap, cls, NULL};
    struct db_op op;
    cd_err err;

    if (u->sk_escrow_len > DB_KEYBLOB_MAX || expected_gen == UINT32_MAX || rewrap == NULL ||
        u->totp_ct_len > DB_TOTP_CT_MAX || (u->totp_state != DB_TOTP_OFF && u->totp_ct_len == 0))
        return CD_ERR_INVALID;
    r.batch = calloc(DB_ROTATE_BATCH, sizeof(*r.batch));
    if (r.batch == NULL)
        return CD_ERR_NOMEM;
    err = db_op_begin(pool, &op, LANE_SMALL);
    if (err == CD_OK) {
        err = db_op_tx(&op, rotate_tx, &r);
        db_op_end(&op);
    }
    free(r.batch);
    return err;
}

enum { VERIFIER_BATCH = 64 };

struct legacy {
    uint64_t id;
    struct db_verifier_row r;
};

/* Reads the next batch of legacy verifiers after *after (advanced past every
 * row read): *n well-formed rows into rows, *fetched rows read in all. */
static cd_err legacy_batch(struct db_op *op, uint64_t *after, struct legacy *rows, size_t *n,
                           size_t *fetched)
{
    MYSQL_STMT *st = NULL;
    struct db_args in;
    struct db_cols cols;
    struct legacy row;
    uint32_t limit = VERIFIER_BATCH;
    bool got = false;
    cd_err err;

    *n = *fetched = 0;
    memset(&row, 0, sizeof(row));
    db_args_init(&in);
    db_arg_u64(&in, after);
    db_arg_u32(&in, &limit);
    db_cols_init(&cols);
    db_col_u64(&cols, &row.id);
    db_col_blob(&cols, row.r.uid, sizeof(row.r.uid));
    db_col_u32(&cols, &row.r.mk_version);
    db_col_blob(&cols, row.r.verifier, sizeof(row.r.verifier));
    err = db_op_rows(op, &st_user_legacy_verifiers, &in, &cols, &st);
    if (err != CD_OK)
        return err;
    while ((err = db_op_fetch(op, st, &got)) == CD_OK && got && *fetched < VERIFIER_BATCH) {
        (*fetched)++;
        if (db_col_is(&cols, 1, sizeof(row.r.uid)) && db_col_is(&cols, 3, sizeof(row.r.verifier)))
            rows[(*n)++] = row;
        *after = row.id;
    }
    db_op_finish(op, st);
    return err;
}

cd_err db_user_convert_verifiers(db_pool *pool, db_verifier_fn convert, void *cls,
                                 unsigned *converted)
{
    struct legacy *rows;
    struct db_op op;
    uint64_t after = 0;
    unsigned done = 0;
    size_t n = 0, fetched = 0;
    cd_err err;

    rows = calloc(VERIFIER_BATCH, sizeof(*rows));
    if (rows == NULL)
        return CD_ERR_NOMEM;
    err = db_op_begin(pool, &op, LANE_SMALL);
    if (err != CD_OK) {
        free(rows);
        return err;
    }
    do {
        err = legacy_batch(&op, &after, rows, &n, &fetched);
        /* One UPDATE per row, conditional on the row still holding the
         * legacy verifier it was read with: a crash or a concurrent run
         * leaves each row either converted or not, never converted twice. */
        for (size_t i = 0; err == CD_OK && i < n; i++) {
            uint8_t v[CRYPTO_HASH_BYTES];
            MYSQL_STMT *st = NULL;
            struct db_args up;

            if (convert(cls, &rows[i].r, v) != CD_OK)
                continue; /* e.g. a key version this keyring lacks: left as is */
            db_args_init(&up);
            db_arg_blob(&up, v, sizeof(v));
            db_arg_u64(&up, &rows[i].id);
            db_arg_blob(&up, rows[i].r.verifier, sizeof(rows[i].r.verifier));
            err = db_op_run(&op, &st_user_set_verifier, &up, &st);
            if (err == CD_OK && mysql_stmt_affected_rows(st) == 1)
                done++;
        }
    } while (err == CD_OK && fetched == VERIFIER_BATCH);
    db_op_end(&op);
    free(rows);
    if (converted != NULL)
        *converted = done;
    return err;
}

cd_err db_user_delete(db_pool *pool, uint64_t id)
{
    struct db_args in;
    uint64_t n = 0;
    cd_err err;

    db_args_init(&in);
    db_arg_u64(&in, &id);
    /* One statement: the foreign key's ON DELETE CASCADE removes the documents
     * in the same (autocommitted) transaction. */
    err = db_run(pool, LANE_SMALL, &st_user_delete, &in, &n);
    return err == CD_OK && n == 0 ? CD_ERR_NOT_FOUND : err;
}
