/* db_int.h: private to src/storage/: the pool's types, one operation's hold
 * on a connection (struct db_op), statements, argument and column sets.
 * Only the storage files include it (and through it mysql.h).
 *
 * An operation: db_op_begin takes a connection; db_op_run prepares (once per
 * connection), binds and executes a statement; db_op_rows binds a column set
 * and db_op_fetch reads rows; db_op_finish drops what is left of the result;
 * db_op_end gives the connection back (closing it if the operation broke it).
 * None of them logs a failure its caller is told about. */
#ifndef CONFIDOC_STORAGE_DB_INT_H
#define CONFIDOC_STORAGE_DB_INT_H

#include <stdatomic.h>
#include <pthread.h>
#include <string.h>

#include <mysql.h>

#include "storage/db.h"

/* Largest content ciphertext read back (16 MiB plaintext + overhead fits). */
#define DB_CONTENT_MAX ((size_t)64 * 1024 * 1024)

/* Timestamps as microseconds since the epoch; independent of the session zone. */
#define DB_TS_US(col) "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', " col ")"

/* How often a transaction that InnoDB chose as a deadlock victim is run again. */
#define DB_TX_ATTEMPTS 3

/* One slot per prepared statement on every connection. */
enum db_stmt_id {
    ST_SCHEMA_VERSION,
    ST_USER_INSERT,
    ST_USER_UPDATE,
    ST_USER_EXISTS,
    ST_USER_DELETE,
    ST_USER_LOCK,
    ST_USER_LOCK_SHARED,
    ST_USER_LEGACY_VERIFIERS,
    ST_USER_SET_VERIFIER,
    ST_DOC_KEYS,
    ST_DOC_SET_KEY,
    ST_DOC_INSERT_IF_GEN,
    ST_DOC_UPDATE,
    ST_DOC_GET,
    ST_DOC_GET_IF_GEN,
    ST_DOC_VERSION,
    ST_DOC_DELETE,
    ST_DOC_LIST,
    ST_DOC_LIST_IF_GEN,
    ST_USER_SET_TOTP,
    ST_USER_DROP_APPPW,
    ST_USER_DROP_SESSIONS,
    ST_SESSION_INSERT,
    ST_SESSION_COUNT,
    ST_SESSION_DROP_OLDEST,
    ST_SESSION_SWEEP,
    ST_SESSION_GET,
    ST_SESSION_DELETE,
    ST_SESSION_KEEP,
    ST_APPPW_COUNT,
    ST_APPPW_INSERT,
    ST_APPPW_SEAL,
    ST_APPPW_LIST,
    ST_APPPW_TOUCH,
    ST_APPPW_DELETE,
    ST_TOTP_PENDING,
    ST_TOTP_CONFIRM,
    ST_TOTP_USE,
    ST_TOTP_DISABLE,
    ST_TOTP_STATE,
    ST__COUNT
};

/* A statement, defined beside the code that runs it. */
struct db_stmt {
    enum db_stmt_id id;
    const char *what; /* a short name for debug logs */
    const char *sql;
};

/* Connector/C keeps each connection's network buffer at the largest packet it
 * ever carried. Documents above DB_INLINE_CONTENT_MAX therefore move only
 * through a few connections of their own (the large lane), so the others stay
 * small whatever the traffic. */
enum { LANE_SMALL, LANE_LARGE, LANE__COUNT };

struct db_conn {
    MYSQL *my; /* NULL while closed */
    MYSQL_STMT *st[ST__COUNT];
    /* User lookups by n username hashes (one per keyring version), plain and
     * locking, prepared on first use for each n. */
    MYSQL_STMT *st_find[2][DB_UNAME_HASHES_MAX + 1];
    bool busy;
    unsigned lane; /* LANE_SMALL or LANE_LARGE */
};

struct db_pool {
    struct db_config cfg; /* strings point to the copies below */
    char *host, *database, *user, *password, *tls_ca, *tls_cert, *tls_key;
    /* cfg.host split at ',' (a Galera cluster's nodes): pointers into
     * hosts_buf; connections go to hosts[host_cur] and move on to the next
     * host when it refuses, which then stays current (no fail-back). */
    char *hosts_buf;
    const char *hosts[DB_HOSTS_MAX];
    unsigned n_hosts;
    atomic_uint host_cur;
    pthread_mutex_t mu;
    pthread_cond_t cv[LANE__COUNT];
    struct db_conn *conns; /* small lane first, then the large lane */
    unsigned n_conns;
    unsigned lane_first[LANE__COUNT], lane_n[LANE__COUNT];
    atomic_uint_fast64_t statements; /* executed so far (db_statement_count) */
    atomic_bool connected_once;      /* connect failures before it: warn; after: debug */
};

/* One operation's hold on a connection. */
struct db_op {
    db_pool *pool;
    struct db_conn *c;
    bool broken;         /* close the connection when it goes back to the pool */
    unsigned last_errno; /* of the last failed call, 0 if none */
    const char *what;    /* the statement last run (debug logs) */
};

/* Input values of one statement, in placeholder order. The pointed-to values
 * must live until the statement ran. More than DB_ARGS_MAX values is a coding
 * error: the set is marked full, and running it fails with CD_ERR_INTERNAL.
 * (The username lookup, with up to DB_UNAME_HASHES_MAX values, binds its own
 * array.) */
#define DB_ARGS_MAX 16
struct db_args {
    MYSQL_BIND b[DB_ARGS_MAX];
    unsigned n;
    bool full;
};

/* Output columns of one statement, in select order, with each column's
 * length, truncation and NULL flags (overflow as for struct db_args). */
#define DB_COLS_MAX 24
struct db_cols {
    MYSQL_BIND b[DB_COLS_MAX];
    unsigned long len[DB_COLS_MAX];
    my_bool trunc[DB_COLS_MAX], isnull[DB_COLS_MAX];
    unsigned n;
    bool full;
};

static inline void db_args_init(struct db_args *a)
{
    memset(a, 0, sizeof(*a));
}

static inline MYSQL_BIND *db_args_next(struct db_args *a, enum enum_field_types type, bool uns)
{
    MYSQL_BIND *b;

    if (a->n == DB_ARGS_MAX) {
        a->full = true;
        a->n--;
    }
    b = &a->b[a->n++];
    b->buffer_type = type;
    b->is_unsigned = uns ? 1 : 0;
    return b;
}

static inline void db_arg_blob(struct db_args *a, const void *p, size_t n)
{
    static const uint8_t empty[1];
    MYSQL_BIND *b = db_args_next(a, MYSQL_TYPE_BLOB, false);
    b->buffer = (void *)(p != NULL ? p : empty);
    b->buffer_length = (unsigned long)n;
}

/* A blob, or SQL NULL when n is 0. */
static inline void db_arg_blob_or_null(struct db_args *a, const void *p, size_t n)
{
    if (n > 0)
        db_arg_blob(a, p, n);
    else
        (void)db_args_next(a, MYSQL_TYPE_NULL, false);
}

static inline void db_arg_u32(struct db_args *a, const uint32_t *v)
{
    db_args_next(a, MYSQL_TYPE_LONG, true)->buffer = (void *)v;
}

static inline void db_arg_u64(struct db_args *a, const uint64_t *v)
{
    db_args_next(a, MYSQL_TYPE_LONGLONG, true)->buffer = (void *)v;
}

static inline void db_arg_i64(struct db_args *a, const int64_t *v)
{
    db_args_next(a, MYSQL_TYPE_LONGLONG, false)->buffer = (void *)v;
}

static inline void db_cols_init(struct db_cols *c)
{
    memset(c, 0, sizeof(*c));
}

static inline MYSQL_BIND *db_cols_next(struct db_cols *c, enum enum_field_types type, bool uns)
{
    unsigned i;
    MYSQL_BIND *b;

    if (c->n == DB_COLS_MAX) {
        c->full = true;
        c->n--;
    }
    i = c->n++;
    b = &c->b[i];
    b->buffer_type = type;
    b->is_unsigned = uns ? 1 : 0;
    b->length = &c->len[i];
    b->error = &c->trunc[i];
    b->is_null = &c->isnull[i];
    return b;
}

/* A blob column of at most cap bytes (p may be NULL with cap 0: length only). */
static inline void db_col_blob(struct db_cols *c, void *p, size_t cap)
{
    MYSQL_BIND *b = db_cols_next(c, MYSQL_TYPE_BLOB, false);
    b->buffer = p;
    b->buffer_length = (unsigned long)cap;
}

static inline void db_col_u32(struct db_cols *c, uint32_t *v)
{
    db_cols_next(c, MYSQL_TYPE_LONG, true)->buffer = v;
}

static inline void db_col_u64(struct db_cols *c, uint64_t *v)
{
    db_cols_next(c, MYSQL_TYPE_LONGLONG, true)->buffer = v;
}

static inline void db_col_i64(struct db_cols *c, int64_t *v)
{
    db_cols_next(c, MYSQL_TYPE_LONGLONG, false)->buffer = v;
}

/* Column i of the last row was exactly n bytes (not NULL). */
static inline bool db_col_is(const struct db_cols *c, unsigned i, size_t n)
{
    return !c->isnull[i] && c->len[i] == n;
}

/* Column i of the last row fitted in its buffer (or was NULL). */
static inline bool db_col_fits(const struct db_cols *c, unsigned i)
{
    return c->isnull[i] || (!c->trunc[i] && c->len[i] <= c->b[i].buffer_length);
}

/* ---- db_pool.c ---- */

/* Takes a free connection of lane (an open one if possible), waiting at most
 * the acquire timeout: CD_ERR_TIMEOUT, or CD_ERR_UNAVAILABLE when it cannot
 * be opened. On success the caller must call db_op_end. */
cd_err db_op_begin(db_pool *p, struct db_op *op, unsigned lane);
void db_op_end(struct db_op *op);

/* Prepares sql into *slot on first use (retried once on a fresh connection
 * when the connection was broken) and returns it in *out. */
cd_err db_op_prepare(struct db_op *op, MYSQL_STMT **slot, const char *sql, MYSQL_STMT **out);

/* Binds params (may be NULL; the statement's arity) and executes st. */
cd_err db_op_exec(struct db_op *op, MYSQL_STMT *st, MYSQL_BIND *params);

/* db_op_prepare of s's slot, then db_op_exec. *out is the executed statement. */
cd_err db_op_run(struct db_op *op, const struct db_stmt *s, struct db_args *in, MYSQL_STMT **out);

/* db_op_run, then binds cols to its result. The caller fetches, then calls
 * db_op_finish. */
cd_err db_op_rows(struct db_op *op, const struct db_stmt *s, struct db_args *in,
                  struct db_cols *cols, MYSQL_STMT **out);

/* db_op_rows, fetches at most one row (*row tells whether there was one) and
 * finishes the result. */
cd_err db_op_row(struct db_op *op, const struct db_stmt *s, struct db_args *in,
                 struct db_cols *cols, bool *row);

/* The next row into the bound columns: CD_OK with *row true or false. */
cd_err db_op_fetch(struct db_op *op, MYSQL_STMT *st, bool *row);

/* Reads what is left of a result set so the connection is ready again. */
void db_op_finish(struct db_op *op, MYSQL_STMT *st);

/* Maps the statement's (or, with st NULL, the connection's) last error. */
cd_err db_op_err(struct db_op *op, MYSQL_STMT *st);

/* A text query without bound values; if it returns rows, *scalar (when not
 * NULL) receives the first column of the first row (-1 for NULL or no row). */
cd_err db_op_query(struct db_op *op, const char *sql, long long *scalar);

/* Runs the body of a transaction: START TRANSACTION, body, COMMIT, or a
 * ROLLBACK after any failure (a connection that cannot roll back is closed). */
typedef cd_err (*db_tx_fn)(struct db_op *op, void *cls);
cd_err db_op_tx(struct db_op *op, db_tx_fn body, void *cls);

/* After an UPDATE matched no row: s selects the row by in; CD_ERR_CONFLICT if
 * it exists, else CD_ERR_NOT_FOUND. */
cd_err db_op_exists(struct db_op *op, const struct db_stmt *s, struct db_args *in);

/* One statement on a connection of its own (autocommitted): db_op_begin,
 * db_op_run, db_op_end. *affected (may be NULL) receives the rows changed. */
cd_err db_run(db_pool *pool, unsigned lane, const struct db_stmt *s, struct db_args *in,
              uint64_t *affected);

/* db_op_row on a connection of its own; *last_errno (may be NULL) receives
 * the number of the error that failed it, 0 if none. */
cd_err db_run_row(db_pool *pool, const struct db_stmt *s, struct db_args *in, struct db_cols *cols,
                  bool *row, unsigned *last_errno);

/* ---- db_user.c, for db_doc.c ---- */

/* Locks account id's row (FOR UPDATE, or shared) in the open transaction and
 * checks its auth_gen: changed when it differs; when the account is gone,
 * CD_ERR_AUTH if changed is CD_ERR_AUTH, else CD_ERR_NOT_FOUND. */
cd_err db_user_lock(struct db_op *op, bool shared, uint64_t id, uint32_t gen, cd_err changed);

#endif
