/* db_apppw.c: application passwords: insert (capped per account, sealed once
 * the id is known), the account's list, last use, delete. */
#include "storage/db_int.h"

#define APPPW_COLS                                                                                 \
    "SELECT id, name_ct, verifier, sk_wrapped, mk_version, " DB_TS_US(                             \
        "created_at") ", IF(last_used_at IS NULL, -1, " DB_TS_US("last_used_at") "),"              \
                                                                                 " last_used_at "  \
                                                                                 "IS NULL OR "     \
                                                                                 "last_used_at < " \
                                                                                 "UTC_TIMESTAMP("  \
                                                                                 "6) - INTERVAL "  \
                                                                                 "60"              \
                                                                                 " SECOND"

static const struct db_stmt st_apppw_count = {
    ST_APPPW_COUNT, "app password count",
    "SELECT COUNT(*) FROM app_passwords WHERE user_id = ? FOR UPDATE"};
/* Only while the account's auth_gen is the given one (shared lock, as for
 * documents: ordered with a key rotation, which deletes them all). */
static const struct db_stmt st_apppw_insert = {
    ST_APPPW_INSERT, "app password insert",
    "INSERT INTO app_passwords (user_id, name_ct, verifier, sk_wrapped, mk_version, created_at)"
    " SELECT u.id, '', ?, '', ?, UTC_TIMESTAMP(6) FROM users u WHERE u.id = ? AND u.auth_gen = ?"
    " LOCK IN SHARE MODE"};
static const struct db_stmt st_apppw_seal = {
    ST_APPPW_SEAL, "app password seal",
    "UPDATE app_passwords SET name_ct = ?, sk_wrapped = ? WHERE id = ?"};
static const struct db_stmt st_apppw_list = {
    ST_APPPW_LIST, "app password list",
    APPPW_COLS " FROM app_passwords WHERE user_id = ? ORDER BY id LIMIT ?"};
static const struct db_stmt st_apppw_touch = {
    ST_APPPW_TOUCH, "app password touch",
    "UPDATE app_passwords SET last_used_at = UTC_TIMESTAMP(6) WHERE id = ?"};
static const struct db_stmt st_apppw_delete = {
    ST_APPPW_DELETE, "app password delete",
    "DELETE FROM app_passwords WHERE id = ? AND user_id = ?"};

struct apppw_ins {
    struct db_apppw *p;
    uint32_t auth_gen;
    unsigned max;
    db_apppw_seal_fn seal;
    void *cls;
};

static cd_err apppw_insert_tx(struct db_op *op, void *cls)
{
    struct apppw_ins *ai = cls;
    struct db_apppw *p = ai->p;
    MYSQL_STMT *st = NULL;
    struct db_args in;
    struct db_cols cols;
    uint64_t count = 0;
    bool row = false;
    cd_err err;

    db_args_init(&in);
    db_arg_u64(&in, &p->user_id);
    db_cols_init(&cols);
    db_col_u64(&cols, &count);
    err = db_op_row(op, &st_apppw_count, &in, &cols, &row);
    if (err != CD_OK)
        return err;
    if (count >= ai->max)
        return CD_ERR_LIMITED;
    db_args_init(&in);
    db_arg_blob(&in, p->verifier, sizeof(p->verifier));
    db_arg_u32(&in, &p->mk_version);
    db_arg_u64(&in, &p->user_id);
    db_arg_u32(&in, &ai->auth_gen);
    err = db_op_run(op, &st_apppw_insert, &in, &st);
    if (err != CD_OK)
        return err;
    if (mysql_stmt_affected_rows(st) != 1)
        return CD_ERR_AUTH;
    p->id = mysql_stmt_insert_id(st);
    err = ai->seal(ai->cls, p);
    if (err != CD_OK)
        return err;
    if (p->name_ct_len == 0 || p->name_ct_len > sizeof(p->name_ct))
        return CD_ERR_INVALID;
    db_args_init(&in);
    db_arg_blob(&in, p->name_ct, p->name_ct_len);
    db_arg_blob(&in, p->sk_wrapped, sizeof(p->sk_wrapped));
    db_arg_u64(&in, &p->id);
    return db_op_run(op, &st_apppw_seal, &in, &st);
}

cd_err db_apppw_insert(db_pool *pool, struct db_apppw *p, uint32_t auth_gen, unsigned max,
                       db_apppw_seal_fn seal, void *cls)
{
    struct apppw_ins ai = {p, auth_gen, max, seal, cls};
    struct db_op op;
    cd_err err;

    if (seal == NULL || max == 0)
        return CD_ERR_INVALID;
    err = db_op_begin(pool, &op, LANE_SMALL);
    if (err != CD_OK)
        return err;
    err = db_op_tx(&op, apppw_insert_tx, &ai);
    db_op_end(&op);
    return err;
}

/* Binds the columns of APPPW_COLS to r. */
static void apppw_cols(struct db_cols *c, struct db_apppw *r, uint32_t *stale)
{
    db_cols_init(c);
    db_col_u64(c, &r->id);
    db_col_blob(c, r->name_ct, sizeof(r->name_ct));       /* 1 */
    db_col_blob(c, r->verifier, sizeof(r->verifier));     /* 2 */
    db_col_blob(c, r->sk_wrapped, sizeof(r->sk_wrapped)); /* 3 */
    db_col_u32(c, &r->mk_version);
    db_col_i64(c, &r->created_us);
    db_col_i64(c, &r->last_used_us);
    db_col_u32(c, stale);
}

cd_err db_apppw_list_user(db_pool *pool, uint64_t user_id, struct db_apppw *out, size_t max,
                          size_t *n)
{
    MYSQL_STMT *st = NULL;
    struct db_op op;
    struct db_args in;
    struct db_cols c;
    struct db_apppw r;
    uint32_t limit = max > UINT32_MAX ? UINT32_MAX : (uint32_t)max, stale = 0;
    bool row = false;
    cd_err err;

    *n = 0;
    memset(&r, 0, sizeof(r));
    db_args_init(&in);
    db_arg_u64(&in, &user_id);
    db_arg_u32(&in, &limit);
    apppw_cols(&c, &r, &stale);
    err = db_op_begin(pool, &op, LANE_SMALL);
    if (err != CD_OK)
        return err;
    err = db_op_rows(&op, &st_apppw_list, &in, &c, &st);
    while (err == CD_OK && (err = db_op_fetch(&op, st, &row)) == CD_OK && row && *n < max) {
        if (!db_col_fits(&c, 1) || !db_col_is(&c, 2, sizeof(r.verifier)) ||
            !db_col_is(&c, 3, sizeof(r.sk_wrapped))) {
            err = CD_ERR_INTERNAL; /* malformed (or not yet sealed): the caller reports it */
            break;
        }
        r.user_id = user_id;
        r.name_ct_len = c.len[1];
        r.use_stale = stale != 0;
        out[(*n)++] = r;
    }
    if (st != NULL)
        db_op_finish(&op, st);
    db_op_end(&op);
    explicit_bzero(&r, sizeof(r));
    return err;
}

cd_err db_apppw_touch(db_pool *pool, uint64_t id)
{
    struct db_args in;

    db_args_init(&in);
    db_arg_u64(&in, &id);
    return db_run(pool, LANE_SMALL, &st_apppw_touch, &in, NULL);
}

cd_err db_apppw_delete(db_pool *pool, uint64_t user_id, uint64_t id)
{
    struct db_args in;
    uint64_t n = 0;
    cd_err err;

    db_args_init(&in);
    db_arg_u64(&in, &id);
    db_arg_u64(&in, &user_id);
    err = db_run(pool, LANE_SMALL, &st_apppw_delete, &in, &n);
    return err == CD_OK && n == 0 ? CD_ERR_NOT_FOUND : err;
}
