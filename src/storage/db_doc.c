/* db_doc.c: documents: conditional insert and replace, read (content inline or
 * on the large lane), version, delete, list; each optionally conditional on
 * the owner's auth_gen. */
#include "storage/db_int.h"

#include <stdlib.h>

#define DOC_INSERT_COLS                                                                            \
    "INSERT INTO documents (owner_id, record_id, version, wrapped_dk, ctype_ct, content_ct, size," \
    " created_at, updated_at)"

/* A read's columns: the content only when at most ? bytes long; its length
 * always. */
#define DOC_READ_COLS                                                                              \
    "SELECT d.version, d.wrapped_dk, d.ctype_ct, IF(LENGTH(d.content_ct) <= ?, d.content_ct,"      \
    " NULL), LENGTH(d.content_ct), d.size, " DB_TS_US("d.created_at") ", " DB_TS_US(               \
        "d.updated_at")

#define DOC_LIST_COLS                                                                              \
    "SELECT d.record_id, d.version, d.wrapped_dk, d.ctype_ct, d.size, " DB_TS_US(                  \
        "d.created_at") ", " DB_TS_US("d.updated_at")

/* A document is inserted only while the owner's auth_gen is the given one. The
 * shared lock on the account row (in any isolation level) orders it with a key
 * rotation, which holds that row FOR UPDATE. */
static const struct db_stmt st_doc_insert_if_gen = {
    ST_DOC_INSERT_IF_GEN, "doc insert",
    "INSERT INTO documents (owner_id, record_id, version, wrapped_dk, ctype_ct, content_ct, size,"
    " created_at, updated_at) SELECT u.id, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) "
    "FROM"
    " users u WHERE u.id = ? AND u.auth_gen = ? LOCK IN SHARE MODE"};
static const struct db_stmt st_doc_update = {
    ST_DOC_UPDATE, "doc replace",
    "UPDATE documents SET version = ?, wrapped_dk = ?, ctype_ct = ?,"
    " content_ct = ?, size = ?, updated_at = UTC_TIMESTAMP(6)"
    " WHERE owner_id = ? AND record_id = ? AND version = ?"};
static const struct db_stmt st_doc_read = {
    ST_DOC_GET, "doc read",
    DOC_READ_COLS " FROM documents d WHERE d.owner_id = ? AND d.record_id = ?"};
/* The same columns, and one row only while the owner's auth_gen is the given
 * one (document columns NULL when there is no such document). */
static const struct db_stmt st_doc_read_if_gen = {
    ST_DOC_GET_IF_GEN, "doc read",
    DOC_READ_COLS " FROM users u LEFT JOIN documents d ON d.owner_id = u.id AND d.record_id = ?"
                  " WHERE u.id = ? AND u.auth_gen = ?"};
static const struct db_stmt st_doc_version = {
    ST_DOC_VERSION, "doc version",
    "SELECT version FROM documents WHERE owner_id = ? AND record_id = ?"};
static const struct db_stmt st_doc_delete = {
    ST_DOC_DELETE, "doc delete", "DELETE FROM documents WHERE owner_id = ? AND record_id = ?"};
static const struct db_stmt st_doc_list = {
    ST_DOC_LIST, "doc list",
    DOC_LIST_COLS " FROM documents d WHERE d.owner_id = ? AND d.record_id > ?"
                  " ORDER BY d.record_id LIMIT ?"};
/* The same rows, or none while the owner's auth_gen is not the given one (one
 * row of NULLs when the account has no such documents). */
static const struct db_stmt st_doc_list_if_gen = {
    ST_DOC_LIST_IF_GEN, "doc list",
    DOC_LIST_COLS " FROM users u LEFT JOIN documents d ON d.owner_id = u.id AND d.record_id > ?"
                  " WHERE u.id = ? AND u.auth_gen = ? ORDER BY d.record_id LIMIT ?"};

void db_doc_release(struct db_doc *d)
{
    if (d == NULL)
        return;
    free(d->content_ct);
    d->content_ct = NULL;
    d->content_ct_len = 0;
}

static cd_err doc_check(const struct db_doc *d)
{
    if (d->record_id < 0 || d->ctype_ct_len > DB_CTYPE_CT_MAX ||
        (d->content_ct == NULL && d->content_ct_len != 0))
        return CD_ERR_INVALID;
    if (d->content_ct_len > DB_CONTENT_MAX)
        return CD_ERR_TOO_LARGE;
    return CD_OK;
}

/* A document's key: (owner_id, record_id), the arguments of several statements. */
static void doc_key_args(struct db_args *in, const uint64_t *owner_id, const int64_t *record_id)
{
    db_args_init(in);
    db_arg_u64(in, owner_id);
    db_arg_i64(in, record_id);
}

static unsigned doc_lane(size_t content_ct_len)
{
    return content_ct_len > DB_INLINE_CONTENT_MAX ? LANE_LARGE : LANE_SMALL;
}

cd_err db_doc_insert_if_gen(db_pool *pool, const struct db_doc *d, uint32_t auth_gen)
{
    struct db_args in;
    uint64_t n = 0;
    cd_err err;

    err = doc_check(d);
    if (err != CD_OK)
        return err;
    db_args_init(&in);
    db_arg_i64(&in, &d->record_id);
    db_arg_u64(&in, &d->version);
    db_arg_blob(&in, d->wrapped_dk, sizeof(d->wrapped_dk));
    db_arg_blob(&in, d->ctype_ct, d->ctype_ct_len);
    db_arg_blob(&in, d->content_ct, d->content_ct_len);
    db_arg_u64(&in, &d->size);
    db_arg_u64(&in, &d->owner_id);
    db_arg_u32(&in, &auth_gen);
    err = db_run(pool, doc_lane(d->content_ct_len), &st_doc_insert_if_gen, &in, &n);
    if (err == CD_OK && n != 1)
        err = CD_ERR_AUTH; /* the account changed or is gone: nothing inserted */
    return err;
}

struct replace {
    const struct db_doc *d;
    uint64_t expected_version;
    uint32_t auth_gen;
};

/* The account row first (shared), then the document, as a key rotation takes
 * them: a rotation waits for this write, or this write waits for the rotation
 * and then sees the new auth_gen and writes nothing. */
static cd_err replace_tx(struct db_op *op, void *cls)
{
    const struct replace *r = cls;
    const struct db_doc *d = r->d;
    MYSQL_STMT *st = NULL;
    struct db_args in;
    cd_err err;

    err = db_user_lock(op, true, d->owner_id, r->auth_gen, CD_ERR_AUTH);
    if (err != CD_OK)
        return err;
    db_args_init(&in);
    db_arg_u64(&in, &d->version);
    db_arg_blob(&in, d->wrapped_dk, sizeof(d->wrapped_dk));
    db_arg_blob(&in, d->ctype_ct, d->ctype_ct_len);
    db_arg_blob(&in, d->content_ct, d->content_ct_len);
    db_arg_u64(&in, &d->size);
    db_arg_u64(&in, &d->owner_id);
    db_arg_i64(&in, &d->record_id);
    db_arg_u64(&in, &r->expected_version);
    err = db_op_run(op, &st_doc_update, &in, &st);
    if (err != CD_OK || mysql_stmt_affected_rows(st) == 1)
        return err;
    doc_key_args(&in, &d->owner_id, &d->record_id);
    return db_op_exists(op, &st_doc_version, &in);
}

cd_err db_doc_replace_if_gen(db_pool *pool, const struct db_doc *d, uint64_t expected_version,
                             uint32_t auth_gen)
{
    struct replace r = {d, expected_version, auth_gen};
    struct db_op op;
    cd_err err;

    err = doc_check(d);
    if (err != CD_OK)
        return err;
    if (expected_version == UINT64_MAX || d->version != expected_version + 1)
        return CD_ERR_INVALID;
    err = db_op_begin(pool, &op, doc_lane(d->content_ct_len));
    if (err != CD_OK)
        return err;
    err = db_op_tx(&op, replace_tx, &r);
    db_op_end(&op);
    return err;
}

/* Column indexes of a read. */
enum { RD_VERSION, RD_DK, RD_CTYPE, RD_CONTENT, RD_CLEN, RD_SIZE, RD_CREATED, RD_UPDATED };

/* After a read's row was fetched into d and cols: checks it, then fetches the
 * content (when it was sent) into a buffer of its size. */
static cd_err doc_read_row(struct db_op *op, MYSQL_STMT *st, struct db_cols *cols, uint64_t clen,
                           struct db_doc *d)
{
    unsigned long want = cols->len[RD_CONTENT], got = 0;
    my_bool trunc = 0, isnull = 0;
    MYSQL_BIND col;

    if (!db_col_is(cols, RD_DK, sizeof(d->wrapped_dk)) || !db_col_fits(cols, RD_CTYPE))
        return CD_ERR_INTERNAL; /* malformed columns: the caller reports it */
    if (want > DB_CONTENT_MAX || clen > DB_CONTENT_MAX)
        return CD_ERR_INTERNAL;
    d->ctype_ct_len = cols->len[RD_CTYPE];
    if (cols->isnull[RD_CONTENT]) { /* larger than max_content: the metadata only */
        d->content_ct_len = (size_t)clen;
        return CD_ERR_TOO_LARGE;
    }
    d->content_ct_len = want;
    d->content_ct = malloc(want > 0 ? want : 1);
    if (d->content_ct == NULL)
        return CD_ERR_NOMEM;
    if (want == 0)
        return CD_OK;
    memset(&col, 0, sizeof(col));
    col.buffer_type = MYSQL_TYPE_BLOB;
    col.buffer = d->content_ct;
    col.buffer_length = want;
    col.length = &got;
    col.error = &trunc;
    col.is_null = &isnull;
    if (mysql_stmt_fetch_column(st, &col, RD_CONTENT, 0))
        return db_op_err(op, st);
    return got == want ? CD_OK : CD_ERR_INTERNAL;
}

cd_err db_doc_read(db_pool *pool, uint64_t owner_id, const uint32_t *auth_gen, int64_t record_id,
                   size_t max_content, struct db_doc *out)
{
    struct db_op op;
    MYSQL_STMT *st = NULL;
    struct db_args in;
    struct db_cols cols;
    struct db_doc d;
    uint64_t max = max_content > DB_CONTENT_MAX ? DB_CONTENT_MAX : max_content, clen = 0;
    bool row = false;
    cd_err err;

    memset(&d, 0, sizeof(d));
    if (record_id < 0 && auth_gen == NULL)
        return CD_ERR_NOT_FOUND;
    /* Only a caller ready for large content uses the large lane. */
    err = db_op_begin(pool, &op, doc_lane(max));
    if (err != CD_OK)
        return err;
    db_args_init(&in);
    db_arg_u64(&in, &max);
    if (auth_gen != NULL) {
        db_arg_i64(&in, &record_id);
        db_arg_u64(&in, &owner_id);
        db_arg_u32(&in, auth_gen);
    } else {
        db_arg_u64(&in, &owner_id);
        db_arg_i64(&in, &record_id);
    }
    db_cols_init(&cols);
    db_col_u64(&cols, &d.version);
    db_col_blob(&cols, d.wrapped_dk, sizeof(d.wrapped_dk));
    db_col_blob(&cols, d.ctype_ct, sizeof(d.ctype_ct));
    db_col_blob(&cols, NULL, 0); /* content: its length here, then fetched whole */
    db_col_u64(&cols, &clen);
    db_col_u64(&cols, &d.size);
    db_col_i64(&cols, &d.created_us);
    db_col_i64(&cols, &d.updated_us);
    err = db_op_rows(&op, auth_gen != NULL ? &st_doc_read_if_gen : &st_doc_read, &in, &cols, &st);
    if (err == CD_OK) {
        err = db_op_fetch(&op, st, &row);
        if (err == CD_OK && !row)
            err = auth_gen != NULL ? CD_ERR_AUTH : CD_ERR_NOT_FOUND;
        else if (err == CD_OK && (cols.isnull[RD_DK] || record_id < 0))
            err = CD_ERR_NOT_FOUND; /* the account is current; the document is not there */
        else if (err == CD_OK)
            err = doc_read_row(&op, st, &cols, clen, &d);
        db_op_finish(&op, st);
    }
    if (err == CD_OK || err == CD_ERR_TOO_LARGE) {
        d.owner_id = owner_id;
        d.record_id = record_id;
        *out = d;
        d.content_ct = NULL;
    }
    free(d.content_ct);
    db_op_end(&op);
    return err;
}

cd_err db_doc_version(db_pool *pool, uint64_t owner_id, int64_t record_id, uint64_t *version)
{
    struct db_args in;
    struct db_cols cols;
    uint64_t v = 0;
    bool row = false;
    cd_err err;

    if (record_id < 0)
        return CD_ERR_NOT_FOUND;
    doc_key_args(&in, &owner_id, &record_id);
    db_cols_init(&cols);
    db_col_u64(&cols, &v);
    err = db_run_row(pool, &st_doc_version, &in, &cols, &row, NULL);
    if (err == CD_OK && !row)
        err = CD_ERR_NOT_FOUND;
    if (err == CD_OK)
        *version = v;
    return err;
}

cd_err db_doc_delete(db_pool *pool, uint64_t owner_id, int64_t record_id)
{
    struct db_args in;
    uint64_t n = 0;
    cd_err err;

    if (record_id < 0)
        return CD_ERR_NOT_FOUND;
    doc_key_args(&in, &owner_id, &record_id);
    err = db_run(pool, LANE_SMALL, &st_doc_delete, &in, &n);
    return err == CD_OK && n == 0 ? CD_ERR_NOT_FOUND : err;
}

/* Reads the rows of an executed list statement into out (at most max). */
static cd_err doc_list_rows(struct db_op *op, MYSQL_STMT *st, struct db_cols *cols,
                            struct db_doc *d, struct db_doc *out, size_t max, size_t *count,
                            bool *any)
{
    bool row = false;
    cd_err err;

    while ((err = db_op_fetch(op, st, &row)) == CD_OK && row) {
        *any = true;
        if (cols->isnull[0])
            continue; /* the account, without documents after `after` */
        if (*count == max || !db_col_is(cols, 2, sizeof(d->wrapped_dk)) || !db_col_fits(cols, 3))
            return CD_ERR_INTERNAL; /* malformed rows: the caller reports it */
        d->ctype_ct_len = cols->len[3];
        d->content_ct = NULL;
        d->content_ct_len = 0;
        out[(*count)++] = *d;
    }
    return err;
}

/* gen: NULL, or the auth_gen the owner's account must still have. */
static cd_err doc_list(db_pool *pool, uint64_t owner_id, const uint32_t *gen, int64_t after,
                       struct db_doc *out, size_t max, size_t *n)
{
    struct db_op op;
    MYSQL_STMT *st = NULL;
    struct db_args in;
    struct db_cols cols;
    struct db_doc d;
    uint64_t limit = max;
    size_t count = 0;
    bool any = false;
    cd_err err;

    if (max == 0) {
        *n = 0;
        return CD_OK;
    }
    err = db_op_begin(pool, &op, LANE_SMALL);
    if (err != CD_OK)
        return err;
    db_args_init(&in);
    if (gen == NULL)
        db_arg_u64(&in, &owner_id);
    db_arg_i64(&in, &after);
    if (gen != NULL) {
        db_arg_u64(&in, &owner_id);
        db_arg_u32(&in, gen);
    }
    db_arg_u64(&in, &limit);
    memset(&d, 0, sizeof(d));
    d.owner_id = owner_id;
    db_cols_init(&cols);
    db_col_i64(&cols, &d.record_id);
    db_col_u64(&cols, &d.version);
    db_col_blob(&cols, d.wrapped_dk, sizeof(d.wrapped_dk));
    db_col_blob(&cols, d.ctype_ct, sizeof(d.ctype_ct));
    db_col_u64(&cols, &d.size);
    db_col_i64(&cols, &d.created_us);
    db_col_i64(&cols, &d.updated_us);
    err = db_op_rows(&op, gen != NULL ? &st_doc_list_if_gen : &st_doc_list, &in, &cols, &st);
    if (err == CD_OK) {
        err = doc_list_rows(&op, st, &cols, &d, out, max, &count, &any);
        db_op_finish(&op, st);
    }
    if (err == CD_OK && gen != NULL && !any)
        err = CD_ERR_AUTH;
    if (err == CD_OK)
        *n = count;
    db_op_end(&op);
    return err;
}

cd_err db_doc_list(db_pool *pool, uint64_t owner_id, int64_t after, struct db_doc *out, size_t max,
                   size_t *n)
{
    return doc_list(pool, owner_id, NULL, after, out, max, n);
}

cd_err db_doc_list_if_gen(db_pool *pool, uint64_t owner_id, uint32_t auth_gen, int64_t after,
                          struct db_doc *out, size_t max, size_t *n)
{
    return doc_list(pool, owner_id, &auth_gen, after, out, max, n);
}
