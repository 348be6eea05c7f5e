/* db.c: accounts and documents in MariaDB through Connector/C: the connection
 * pool, prepared statements, error mapping and schema migrations.
 *
 * docs/internals/storage.md explains the choices (pool, reconnects, durability).
 * Threads: the client library is initialised once (pthread_once). Connector/C 3
 * needs no mysql_thread_init/mysql_thread_end per thread (they are no-ops
 * there), so callers may use a pool from any thread. Each connection is used by
 * one thread at a time: the pool hands it out under its mutex. */
#include "storage/db.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "common/deadline.h"
#include "log/log.h"

/* Largest content ciphertext read back (16 MiB plaintext + overhead fits). */
#define DB_CONTENT_MAX ((size_t)64 * 1024 * 1024)
#define DB_POOL_MAX 1024u
#define DB_DEFAULT_CONNECT_TIMEOUT_S 5u
#define DB_DEFAULT_IO_TIMEOUT_S 30u

/* Timestamps as microseconds since the epoch; independent of the session zone. */
#define TS_US(col) "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', " col ")"

enum stmt_id {
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
    ST_DOC_INSERT,
    ST_DOC_INSERT_IF_GEN,
    ST_DOC_UPDATE,
    ST_DOC_GET,
    ST_DOC_GET_IF_GEN,
    ST_DOC_VERSION,
    ST_DOC_DELETE,
    ST_DOC_LIST,
    ST_DOC_LIST_IF_GEN,
    ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
    [ST_SCHEMA_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    [ST_USER_INSERT] = "INSERT INTO users (uid, uname_hash, mk_version, pw_salt, pw_opslimit,"
                       " pw_memlimit_kib, verifier, public_key, sk_pw, sk_rc, sk_escrow, auth_gen,"
                       " rc_mk_version, verifier_kind, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
                       " ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))",
    [ST_USER_UPDATE] = "UPDATE users SET uname_hash = ?, mk_version = ?, pw_salt = ?,"
                       " pw_opslimit = ?, pw_memlimit_kib = ?, verifier = ?, sk_pw = ?,"
                       " sk_rc = ?, sk_escrow = ?, auth_gen = ?, public_key = ?,"
                       " rc_mk_version = ?, verifier_kind = ? WHERE id = ? AND auth_gen = ?",
    [ST_USER_EXISTS] = "SELECT 1 FROM users WHERE id = ?",
    [ST_USER_DELETE] = "DELETE FROM users WHERE id = ?",
    /* The account row first, in every transaction that changes what is
     * wrapped under a user's key: one lock order, no deadlock between them. */
    [ST_USER_LOCK] = "SELECT auth_gen FROM users WHERE id = ? FOR UPDATE",
    [ST_USER_LOCK_SHARED] = "SELECT auth_gen FROM users WHERE id = ? LOCK IN SHARE MODE",
    [ST_USER_LEGACY_VERIFIERS] = "SELECT id, uid, mk_version, verifier FROM users WHERE"
                                 " verifier_kind = 1 AND id > ? ORDER BY id LIMIT ?",
    [ST_USER_SET_VERIFIER] = "UPDATE users SET verifier = ?, verifier_kind = 2 WHERE id = ? AND"
                             " verifier_kind = 1 AND verifier = ?",
    [ST_DOC_KEYS] = "SELECT record_id, version, wrapped_dk FROM documents WHERE owner_id = ? AND"
                    " record_id > ? ORDER BY record_id LIMIT ? FOR UPDATE",
    [ST_DOC_SET_KEY] = "UPDATE documents SET wrapped_dk = ? WHERE owner_id = ? AND record_id = ?"
                       " AND version = ?",
    [ST_DOC_INSERT] = "INSERT INTO documents (owner_id, record_id, version, wrapped_dk, ctype_ct,"
                      " content_ct, size, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?,"
                      " UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
    /* The same insert, made only while the owner's auth_gen is the given one.
     * The shared lock on the account row (in any isolation level) orders it
     * with a key rotation, which holds that row FOR UPDATE. */
    [ST_DOC_INSERT_IF_GEN] = "INSERT INTO documents (owner_id, record_id, version, wrapped_dk,"
                             " ctype_ct, content_ct, size, created_at, updated_at) SELECT u.id,"
                             " ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) FROM users u"
                             " WHERE u.id = ? AND u.auth_gen = ? LOCK IN SHARE MODE",
    [ST_DOC_UPDATE] = "UPDATE documents SET version = ?, wrapped_dk = ?, ctype_ct = ?,"
                      " content_ct = ?, size = ?, updated_at = UTC_TIMESTAMP(6)"
                      " WHERE owner_id = ? AND record_id = ? AND version = ?",
    /* The content only when at most ? bytes long; its length always. */
    [ST_DOC_GET] = "SELECT version, wrapped_dk, ctype_ct, IF(LENGTH(content_ct) <= ?, content_ct,"
                   " NULL), LENGTH(content_ct), size, " TS_US("created_at") ", " TS_US(
                       "updated_at") " FROM documents WHERE owner_id = ? AND"
                                     " record_id = ?",
    /* The same columns, and one row only while the owner's auth_gen is the
     * given one (document columns NULL when there is no such document). */
    [ST_DOC_GET_IF_GEN] =
        "SELECT d.version, d.wrapped_dk, d.ctype_ct, IF(LENGTH(d.content_ct) <= ?, d.content_ct,"
        " NULL), LENGTH(d.content_ct), d.size, " TS_US("d.created_at") ", " TS_US(
            "d.updated_at") " FROM users u LEFT JOIN documents d ON"
                            " d.owner_id = u.id AND d.record_id = ?"
                            " WHERE u.id = ? AND u.auth_gen = ?",
    [ST_DOC_VERSION] = "SELECT version FROM documents WHERE owner_id = ? AND record_id = ?",
    [ST_DOC_DELETE] = "DELETE FROM documents WHERE owner_id = ? AND record_id = ?",
    [ST_DOC_LIST] = "SELECT record_id, version, wrapped_dk, ctype_ct, size, " TS_US(
        "created_at") ", " TS_US("updated_at") " FROM documents WHERE owner_id = ? AND"
                                               " record_id > ? ORDER BY record_id LIMIT ?",
    /* The same rows, or none while the owner's auth_gen is not the given one
     * (one row of NULLs when the account has no such documents). */
    [ST_DOC_LIST_IF_GEN] =
        "SELECT d.record_id, d.version, d.wrapped_dk, d.ctype_ct, d.size, " TS_US(
            "d.created_at") ", " TS_US("d.updated_at") " FROM users u LEFT JOIN documents d ON"
                                                       " d.owner_id = u.id AND d.record_id > ?"
                                                       " WHERE u.id = ? AND u.auth_gen = ?"
                                                       " ORDER BY d.record_id LIMIT ?",
};

/* ---- migrations ---- */

struct migration {
    unsigned version;
    const char *const *sql; /* NULL-terminated; each statement idempotent */
};

static const char *const migration_1[] = {
    "CREATE TABLE IF NOT EXISTS users ("
    " id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " uid BINARY(16) NOT NULL UNIQUE,"
    " uname_hash BINARY(32) NOT NULL UNIQUE,"
    " mk_version INT UNSIGNED NOT NULL,"
    " pw_salt BINARY(16) NOT NULL,"
    " pw_opslimit INT UNSIGNED NOT NULL,"
    " pw_memlimit_kib INT UNSIGNED NOT NULL,"
    " verifier BINARY(32) NOT NULL,"
    " public_key BINARY(32) NOT NULL,"
    " sk_pw VARBINARY(128) NOT NULL,"
    " sk_rc VARBINARY(128) NOT NULL,"
    " sk_escrow VARBINARY(128) NULL,"
    " auth_gen INT UNSIGNED NOT NULL DEFAULT 0,"
    " created_at DATETIME(6) NOT NULL"
    ") ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS documents ("
    " owner_id BIGINT UNSIGNED NOT NULL,"
    " record_id BIGINT NOT NULL,"
    " version BIGINT UNSIGNED NOT NULL,"
    " wrapped_dk VARBINARY(128) NOT NULL,"
    " ctype_ct VARBINARY(512) NOT NULL,"
    " content_ct LONGBLOB NOT NULL,"
    " size BIGINT UNSIGNED NOT NULL,"
    " created_at DATETIME(6) NOT NULL,"
    " updated_at DATETIME(6) NOT NULL,"
    " PRIMARY KEY (owner_id, record_id),"
    " CONSTRAINT documents_owner FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE"
    ") ENGINE=InnoDB",
    NULL,
};

/* Issue 9: the recovery wrap has a master key version of its own (NULL: the
 * row's mk_version, as every row written before), and the verifier a kind:
 * 1 = Argon2id output alone (rows before this migration; the API converts
 * them at start, see db_user_convert_verifiers), 2 = bound to the master key. */
static const char *const migration_2[] = {
    "ALTER TABLE users ADD COLUMN IF NOT EXISTS rc_mk_version INT UNSIGNED NULL",
    "ALTER TABLE users ADD COLUMN IF NOT EXISTS verifier_kind TINYINT UNSIGNED NOT NULL DEFAULT 1",
    NULL,
};

static const struct migration migrations[] = {
    {1, migration_1},
    {2, migration_2},
};

/* ---- pool ---- */

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
    pthread_mutex_t mu;
    pthread_cond_t cv[LANE__COUNT];
    struct db_conn *conns; /* small lane first, then the large lane */
    unsigned n_conns;
    unsigned lane_first[LANE__COUNT], lane_n[LANE__COUNT];
    atomic_uint_fast64_t statements; /* executed so far (db_statement_count) */
};

/* One operation's hold on a connection. */
struct op {
    db_pool *pool;
    struct db_conn *c;
    bool broken;         /* close the connection when it goes back to the pool */
    unsigned last_errno; /* of the last failed call, 0 if none */
};

static pthread_once_t db_lib_once = PTHREAD_ONCE_INIT;
static int db_lib_rc;

static void db_lib_init(void)
{
    db_lib_rc = mysql_library_init(0, NULL, NULL);
}

static void conn_close(struct db_conn *c)
{
    for (size_t i = 0; i < ST__COUNT; i++) {
        if (c->st[i] != NULL)
            mysql_stmt_close(c->st[i]);
        c->st[i] = NULL;
    }
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i <= DB_UNAME_HASHES_MAX; i++) {
            if (c->st_find[k][i] != NULL)
                mysql_stmt_close(c->st_find[k][i]);
            c->st_find[k][i] = NULL;
        }
    }
    if (c->my != NULL)
        mysql_close(c->my);
    c->my = NULL;
}

/* Errors that leave the connection unusable: client-side (network, protocol)
 * errors and the server's own "going away" errors. */
static bool err_breaks_conn(unsigned e)
{
    if (e >= CR_MIN_ERROR && e <= CR_MAX_ERROR)
        return true;
    if (e > CER_MIN_ERROR && e <= CR_MARIADB_LAST_ERROR)
        return true;
    switch (e) {
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
    case ER_ABORTING_CONNECTION:
    case ER_NET_READ_ERROR:
    case ER_NET_READ_INTERRUPTED:
    case ER_NET_ERROR_ON_WRITE:
    case ER_NET_WRITE_INTERRUPTED:
    case ER_NET_PACKETS_OUT_OF_ORDER:
        return true;
    default:
        return false;
    }
}

/* Client errors that mean "cannot reach the server" (503) rather than a bug. */
static bool err_is_network(unsigned e)
{
    switch (e) {
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_UNKNOWN_HOST:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
    case CR_SSL_CONNECTION_ERROR:
    case CR_SERVER_HANDSHAKE_ERR:
    case CR_IPSOCK_ERROR:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
    case ER_ABORTING_CONNECTION:
    case ER_NET_READ_ERROR:
    case ER_NET_READ_INTERRUPTED:
    case ER_NET_ERROR_ON_WRITE:
    case ER_NET_WRITE_INTERRUPTED:
        return true;
    default:
        return false;
    }
}

/* Maps a failed call's error number. Never logs the server's message: it can
 * quote bound values (a duplicate key's bytes). */
static cd_err op_map_err(struct op *op, unsigned e, const char *sqlstate, const char *what)
{
    op->last_errno = e;
    if (e == ER_DUP_ENTRY)
        return CD_ERR_EXISTS;
    if (e == ER_LOCK_DEADLOCK) {
        /* InnoDB rolled the transaction back; the caller may run it again. */
        log_warnx("db: %s: deadlock; transaction rolled back", what);
        return CD_ERR_CONFLICT;
    }
    if (err_breaks_conn(e)) {
        op->broken = true;
        log_warnx("db: %s: connection error %u (%s)", what, e, sqlstate ? sqlstate : "?");
        return err_is_network(e) || e == 0 ? CD_ERR_UNAVAILABLE : CD_ERR_INTERNAL;
    }
    log_errorx("db: %s: server error %u (%s)", what, e, sqlstate ? sqlstate : "?");
    return CD_ERR_INTERNAL;
}

static cd_err op_stmt_err(struct op *op, MYSQL_STMT *st, const char *what)
{
    return op_map_err(op, mysql_stmt_errno(st), mysql_stmt_sqlstate(st), what);
}

static cd_err op_conn_err(struct op *op, const char *what)
{
    return op_map_err(op, mysql_errno(op->c->my), mysql_sqlstate(op->c->my), what);
}

static cd_err conn_open(db_pool *p, struct db_conn *c)
{
    const struct db_config *cfg = &p->cfg;
    unsigned ct = cfg->connect_timeout_s ? cfg->connect_timeout_s : DB_DEFAULT_CONNECT_TIMEOUT_S;
    unsigned io = cfg->io_timeout_s ? cfg->io_timeout_s : DB_DEFAULT_IO_TIMEOUT_S;
    my_bool yes = 1, verify = cfg->verify_server_name ? 1 : 0;
    unsigned proto = MYSQL_PROTOCOL_TCP;
    MYSQL *my;

    my = mysql_init(NULL);
    if (my == NULL)
        return CD_ERR_NOMEM;
    if (mysql_optionsv(my, MYSQL_OPT_CONNECT_TIMEOUT, &ct) ||
        mysql_optionsv(my, MYSQL_OPT_READ_TIMEOUT, &io) ||
        mysql_optionsv(my, MYSQL_OPT_WRITE_TIMEOUT, &io) ||
        mysql_optionsv(my, MYSQL_OPT_PROTOCOL, &proto) ||
        mysql_optionsv(my, MYSQL_OPT_SSL_CA, cfg->tls_ca) ||
        mysql_optionsv(my, MYSQL_OPT_SSL_CERT, cfg->tls_cert) ||
        mysql_optionsv(my, MYSQL_OPT_SSL_KEY, cfg->tls_key) ||
        mysql_optionsv(my, MYSQL_OPT_SSL_ENFORCE, &yes) ||
        mysql_optionsv(my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify) ||
        mysql_optionsv(my, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'")) {
        log_errorx("db: cannot set connection options");
        mysql_close(my);
        return CD_ERR_INTERNAL;
    }
    /* CLIENT_FOUND_ROWS: UPDATE reports matched rows, so "0 rows" means the
     * WHERE clause (id, version, generation) did not match. */
    if (mysql_real_connect(my, cfg->host, cfg->user, cfg->password, cfg->database, cfg->port, NULL,
                           CLIENT_FOUND_ROWS) == NULL) {
        /* Connection errors name our account and the server, never user data. */
        log_warnx("db: cannot connect to %s:%u: %s (%u)", cfg->host, cfg->port, mysql_error(my),
                  mysql_errno(my));
        mysql_close(my);
        return CD_ERR_UNAVAILABLE;
    }
    c->my = my;
    return CD_OK;
}

/* An idle connection has nothing to read: if its socket is readable, the
 * server closed it (restart, wait_timeout) or sent an error; a ping (which has
 * no side effects) decides. Lets the first operation after a server restart
 * reconnect before anything is sent instead of failing. */
static bool conn_alive(struct db_conn *c)
{
    struct pollfd pfd = {.fd = (int)mysql_get_socket(c->my), .events = POLLIN | POLLRDHUP};

    if (pfd.fd < 0)
        return false;
    if (poll(&pfd, 1, 0) == 0)
        return true;
    return mysql_ping(c->my) == 0;
}

cd_err db_pool_warm(db_pool *p, unsigned *opened)
{
    unsigned n = 0;
    cd_err err = CD_OK;

    for (unsigned i = 0; i < p->n_conns; i++) {
        struct db_conn *c = &p->conns[i];
        bool mine;

        pthread_mutex_lock(&p->mu);
        mine = !c->busy && c->my == NULL;
        if (mine)
            c->busy = true;
        pthread_mutex_unlock(&p->mu);
        if (!mine)
            continue;
        err = conn_open(p, c);
        pthread_mutex_lock(&p->mu);
        c->busy = false;
        pthread_cond_signal(&p->cv[c->lane]);
        pthread_mutex_unlock(&p->mu);
        if (err != CD_OK)
            break;
        n++;
    }
    if (opened != NULL)
        *opened = n;
    return err;
}

/* Takes a free connection (an open one if possible), waiting at most
 * acquire_timeout_ms, and makes sure it is open and alive. */
static cd_err op_begin_lane(db_pool *p, struct op *op, unsigned lane)
{
    struct db_conn *c = NULL;
    struct timespec dl;
    cd_err err;
    int rc = 0;

    if (p->lane_n[lane] == 0)
        lane = LANE_SMALL;
    cd_deadline(CLOCK_MONOTONIC, p->cfg.acquire_timeout_ms, &dl);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        for (unsigned i = p->lane_first[lane]; i < p->lane_first[lane] + p->lane_n[lane]; i++) {
            if (p->conns[i].busy)
                continue;
            if (c == NULL || (c->my == NULL && p->conns[i].my != NULL))
                c = &p->conns[i];
        }
        if (c != NULL || rc == ETIMEDOUT)
            break;
        rc = pthread_cond_timedwait(&p->cv[lane], &p->mu, &dl);
        if (rc != 0 && rc != ETIMEDOUT)
            break;
    }
    if (c != NULL)
        c->busy = true;
    pthread_mutex_unlock(&p->mu);
    if (c == NULL) {
        log_warnx("db: no pool connection free within %u ms", p->cfg.acquire_timeout_ms);
        return CD_ERR_TIMEOUT;
    }

    op->pool = p;
    op->c = c;
    op->broken = false;
    op->last_errno = 0;
    if (c->my != NULL && !conn_alive(c)) {
        log_info("db: connection lost while idle; reconnecting");
        conn_close(c);
    }
    if (c->my == NULL) {
        err = conn_open(p, c);
        if (err != CD_OK) {
            op->broken = true;
            goto fail;
        }
    }
    return CD_OK;
fail:
    pthread_mutex_lock(&p->mu);
    c->busy = false;
    pthread_cond_signal(&p->cv[c->lane]);
    pthread_mutex_unlock(&p->mu);
    return err;
}

static cd_err op_begin(db_pool *p, struct op *op)
{
    return op_begin_lane(p, op, LANE_SMALL);
}

static void op_end(struct op *op)
{
    db_pool *p = op->pool;

    if (op->broken)
        conn_close(op->c);
    pthread_mutex_lock(&p->mu);
    op->c->busy = false;
    pthread_cond_signal(&p->cv[op->c->lane]);
    pthread_mutex_unlock(&p->mu);
}

/* Returns the connection's prepared statement id, preparing it on first use.
 * A prepare that fails on a broken connection sent nothing that changes data,
 * so it is retried once on a fresh connection. */
static cd_err op_prepare(struct op *op, MYSQL_STMT **slot, const char *sql, MYSQL_STMT **out)
{
    struct db_conn *c = op->c;
    cd_err err;

    for (int attempt = 0;; attempt++) {
        MYSQL_STMT *st;

        if (*slot != NULL) {
            *out = *slot;
            return CD_OK;
        }
        st = mysql_stmt_init(c->my);
        if (st == NULL)
            return CD_ERR_NOMEM;
        if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) == 0) {
            *slot = st;
            continue;
        }
        err = op_stmt_err(op, st, "prepare");
        mysql_stmt_close(st);
        if (!op->broken || attempt > 0)
            return err;
        conn_close(c);
        err = conn_open(op->pool, c);
        if (err != CD_OK)
            return err; /* op->broken stays set */
        op->broken = false;
    }
}

static cd_err op_stmt(struct op *op, enum stmt_id id, MYSQL_STMT **out)
{
    return op_prepare(op, &op->c->st[id], stmt_sql[id], out);
}

/* Binds params (may be NULL) and executes. */
static cd_err op_exec(struct op *op, MYSQL_STMT *st, MYSQL_BIND *params, const char *what)
{
    atomic_fetch_add(&op->pool->statements, 1);
    if (params != NULL && mysql_stmt_bind_param(st, params))
        return op_stmt_err(op, st, what);
    if (mysql_stmt_execute(st))
        return op_stmt_err(op, st, what);
    return CD_OK;
}

/* Fetches the next row into the bound result: CD_OK with *row true or false,
 * or an error. Truncated columns are checked by the caller via error flags. */
static cd_err op_fetch(struct op *op, MYSQL_STMT *st, bool *row, const char *what)
{
    int r = mysql_stmt_fetch(st);

    if (r == 0 || r == MYSQL_DATA_TRUNCATED) {
        *row = true;
        return CD_OK;
    }
    if (r == MYSQL_NO_DATA) {
        *row = false;
        return CD_OK;
    }
    return op_stmt_err(op, st, what);
}

/* Reads what is left of a result set so the connection is ready for the next
 * statement. */
static void op_finish(struct op *op, MYSQL_STMT *st)
{
    if (mysql_stmt_free_result(st))
        op->broken = true;
}

/* ---- binding helpers ---- */

static void bind_in_blob(MYSQL_BIND *b, const void *p, size_t n)
{
    static const uint8_t empty[1];
    b->buffer_type = MYSQL_TYPE_BLOB;
    b->buffer = (void *)(p != NULL ? p : empty);
    b->buffer_length = (unsigned long)n;
}

static void bind_in_u32(MYSQL_BIND *b, const uint32_t *v)
{
    b->buffer_type = MYSQL_TYPE_LONG;
    b->buffer = (void *)v;
    b->is_unsigned = 1;
}

static void bind_in_u64(MYSQL_BIND *b, const uint64_t *v)
{
    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = (void *)v;
    b->is_unsigned = 1;
}

static void bind_in_i64(MYSQL_BIND *b, const int64_t *v)
{
    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = (void *)v;
}

static void bind_in_null(MYSQL_BIND *b)
{
    b->buffer_type = MYSQL_TYPE_NULL;
}

/* Output column of at most cap bytes; *len receives its real length and *trunc
 * is set when it did not fit. */
static void bind_out_blob(MYSQL_BIND *b, void *p, size_t cap, unsigned long *len, my_bool *trunc,
                          my_bool *isnull)
{
    b->buffer_type = MYSQL_TYPE_BLOB;
    b->buffer = p;
    b->buffer_length = (unsigned long)cap;
    b->length = len;
    b->error = trunc;
    b->is_null = isnull;
}

static void bind_out_u32(MYSQL_BIND *b, uint32_t *v)
{
    b->buffer_type = MYSQL_TYPE_LONG;
    b->buffer = v;
    b->is_unsigned = 1;
}

static void bind_out_u64(MYSQL_BIND *b, uint64_t *v)
{
    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = v;
    b->is_unsigned = 1;
}

static void bind_out_i64(MYSQL_BIND *b, int64_t *v)
{
    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = v;
}

/* ---- pool life cycle ---- */

static char *dup_opt(const char *s, bool *ok)
{
    char *d;
    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *ok = false;
    return d;
}

cd_err db_pool_new(const struct db_config *cfg, db_pool **out)
{
    db_pool *p = NULL;
    pthread_condattr_t ca;
    bool ok = true;
    cd_err err;

    if (cfg == NULL || cfg->host == NULL || cfg->database == NULL || cfg->user == NULL ||
        cfg->tls_ca == NULL || cfg->tls_cert == NULL || cfg->tls_key == NULL ||
        cfg->pool_size == 0 || cfg->pool_size > DB_POOL_MAX || cfg->large_pool_size > DB_POOL_MAX) {
        log_errorx("db: incomplete configuration");
        return CD_ERR_CONFIG;
    }
    pthread_once(&db_lib_once, db_lib_init);
    if (db_lib_rc != 0) {
        log_errorx("db: cannot initialise the MariaDB client library");
        return CD_ERR_INTERNAL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return CD_ERR_NOMEM;
    p->cfg = *cfg;
    atomic_init(&p->statements, 0);
    p->host = dup_opt(cfg->host, &ok);
    p->database = dup_opt(cfg->database, &ok);
    p->user = dup_opt(cfg->user, &ok);
    p->password = dup_opt(cfg->password, &ok);
    p->tls_ca = dup_opt(cfg->tls_ca, &ok);
    p->tls_cert = dup_opt(cfg->tls_cert, &ok);
    p->tls_key = dup_opt(cfg->tls_key, &ok);
    p->n_conns = cfg->pool_size + cfg->large_pool_size;
    p->lane_first[LANE_SMALL] = 0;
    p->lane_n[LANE_SMALL] = cfg->pool_size;
    p->lane_first[LANE_LARGE] = cfg->pool_size;
    p->lane_n[LANE_LARGE] = cfg->large_pool_size;
    p->conns = calloc(p->n_conns, sizeof(*p->conns));
    if (!ok || p->conns == NULL) {
        err = CD_ERR_NOMEM;
        goto fail;
    }
    for (unsigned i = cfg->pool_size; i < p->n_conns; i++)
        p->conns[i].lane = LANE_LARGE;
    p->cfg.host = p->host;
    p->cfg.database = p->database;
    p->cfg.user = p->user;
    p->cfg.password = p->password;
    p->cfg.tls_ca = p->tls_ca;
    p->cfg.tls_cert = p->tls_cert;
    p->cfg.tls_key = p->tls_key;
    if (pthread_condattr_init(&ca) != 0) {
        err = CD_ERR_NOMEM;
        goto fail;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&p->cv[LANE_SMALL], &ca) != 0) {
        pthread_condattr_destroy(&ca);
        err = CD_ERR_NOMEM;
        goto fail;
    }
    if (pthread_cond_init(&p->cv[LANE_LARGE], &ca) != 0) {
        pthread_cond_destroy(&p->cv[LANE_SMALL]);
        pthread_condattr_destroy(&ca);
        err = CD_ERR_NOMEM;
        goto fail;
    }
    pthread_condattr_destroy(&ca);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        pthread_cond_destroy(&p->cv[LANE_SMALL]);
        pthread_cond_destroy(&p->cv[LANE_LARGE]);
        err = CD_ERR_NOMEM;
        goto fail;
    }
    *out = p;
    return CD_OK;
fail:
    if (p->password != NULL)
        explicit_bzero(p->password, strlen(p->password));
    free(p->host);
    free(p->database);
    free(p->user);
    free(p->password);
    free(p->tls_ca);
    free(p->tls_cert);
    free(p->tls_key);
    free(p->conns);
    free(p);
    return err;
}

void db_pool_free(db_pool *pool)
{
    if (pool == NULL)
        return;
    for (unsigned i = 0; i < pool->n_conns; i++)
        conn_close(&pool->conns[i]);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv[LANE_SMALL]);
    pthread_cond_destroy(&pool->cv[LANE_LARGE]);
    if (pool->password != NULL)
        explicit_bzero(pool->password, strlen(pool->password));
    free(pool->host);
    free(pool->database);
    free(pool->user);
    free(pool->password);
    free(pool->tls_ca);
    free(pool->tls_cert);
    free(pool->tls_key);
    free(pool->conns);
    free(pool);
}

/* ---- text queries (migrations only: no bound values) ---- */

/* Runs sql; if it returns rows, stores the first column of the first row in
 * *scalar (when not NULL; -1 for SQL NULL or no row). */
static cd_err op_query(struct op *op, const char *sql, long long *scalar, const char *what)
{
    MYSQL *my = op->c->my;
    MYSQL_RES *res;
    MYSQL_ROW row;
    long long v = -1;

    atomic_fetch_add(&op->pool->statements, 1);
    if (mysql_real_query(my, sql, (unsigned long)strlen(sql)))
        return op_conn_err(op, what);
    res = mysql_store_result(my);
    if (res == NULL) {
        if (mysql_field_count(my) != 0)
            return op_conn_err(op, what);
        if (scalar != NULL)
            *scalar = v;
        return CD_OK;
    }
    row = mysql_fetch_row(res);
    if (row != NULL && mysql_num_fields(res) > 0 && row[0] != NULL)
        v = strtoll(row[0], NULL, 10);
    mysql_free_result(res);
    if (scalar != NULL)
        *scalar = v;
    return CD_OK;
}

cd_err db_migrate(db_pool *pool)
{
    struct op op;
    cd_err err;
    long long got = 0, current = 0;
    bool locked = false;
    char sql[128];

    err = op_begin(pool, &op);
    if (err != CD_OK)
        return err;
    /* Replicas starting together: one applies, the others wait, then see
     * the migrations recorded and do nothing. */
    err = op_query(&op, "SELECT GET_LOCK('confidoc_migrate', 30)", &got, "migrate lock");
    if (err != CD_OK)
        goto out;
    if (got != 1) {
        log_errorx("db: migration lock not obtained within 30 s");
        err = CD_ERR_TIMEOUT;
        goto out;
    }
    locked = true;
    err = op_query(&op,
                   "CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL PRIMARY"
                   " KEY, applied_at DATETIME(6) NOT NULL) ENGINE=InnoDB",
                   NULL, "migrate");
    if (err != CD_OK)
        goto out;
    err = op_query(&op, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &current,
                   "migrate");
    if (err != CD_OK)
        goto out;
    for (size_t i = 0; i < sizeof(migrations) / sizeof(migrations[0]); i++) {
        const struct migration *m = &migrations[i];
        if ((long long)m->version <= current)
            continue;
        /* DDL commits implicitly in MariaDB: every statement is idempotent
         * so a crash between it and the record below is repaired by a rerun. */
        for (const char *const *s = m->sql; *s != NULL; s++) {
            err = op_query(&op, *s, NULL, "migrate");
            if (err != CD_OK)
                goto out;
        }
        snprintf(sql, sizeof(sql),
                 "INSERT INTO schema_migrations (version, applied_at) VALUES (%u, "
                 "UTC_TIMESTAMP(6))",
                 m->version);
        err = op_query(&op, sql, NULL, "migrate");
        if (err != CD_OK)
            goto out;
        log_info("db: applied schema migration %u", m->version);
    }
out:
    if (locked && !op.broken &&
        op_query(&op, "SELECT RELEASE_LOCK('confidoc_migrate')", NULL, "migrate unlock") != CD_OK &&
        err == CD_OK)
        err = CD_ERR_UNAVAILABLE;
    op_end(&op);
    return err;
}

uint64_t db_statement_count(const db_pool *pool)
{
    return atomic_load(&((db_pool *)pool)->statements);
}

cd_err db_ping(db_pool *pool)
{
    struct op op;
    cd_err err;

    err = op_begin(pool, &op);
    if (err != CD_OK)
        return err;
    if (mysql_ping(op.c->my) != 0)
        err = op_conn_err(&op, "ping");
    op_end(&op);
    return err;
}

cd_err db_schema_version(db_pool *pool, unsigned *version)
{
    struct op op;
    MYSQL_STMT *st = NULL;
    MYSQL_BIND res[1];
    int64_t v = 0;
    my_bool isnull = 0;
    bool row = false;
    cd_err err;

    err = op_begin(pool, &op);
    if (err != CD_OK)
        return err;
    err = op_stmt(&op, ST_SCHEMA_VERSION, &st);
    if (err != CD_OK) {
        /* No table yet: nothing applied. */
        if (op.last_errno == ER_NO_SUCH_TABLE) {
            v = 0;
            err = CD_OK;
            goto done;
        }
        goto out;
    }
    err = op_exec(&op, st, NULL, "schema version");
    if (err != CD_OK)
        goto out;
    memset(res, 0, sizeof(res));
    bind_out_i64(&res[0], &v);
    res[0].is_null = &isnull;
    if (mysql_stmt_bind_result(st, res)) {
        err = op_stmt_err(&op, st, "schema version");
        goto out;
    }
    err = op_fetch(&op, st, &row, "schema version");
    op_finish(&op, st);
    if (err != CD_OK)
        goto out;
    if (!row || isnull)
        v = 0;
done:
    if (v < 0 || v > (int64_t)UINT32_MAX) {
        err = CD_ERR_INTERNAL;
        goto out;
    }
    *version = (unsigned)v;
out:
    op_end(&op);
    return err;
}

/* ---- accounts ---- */

/* The columns every user read returns, in struct db_user's order. */
#define USER_COLS                                                                                  \
    "id, uid, uname_hash, mk_version, pw_salt, pw_opslimit, pw_memlimit_kib, verifier,"            \
    " public_key, sk_pw, sk_rc, sk_escrow, auth_gen, COALESCE(rc_mk_version, mk_version),"         \
    " verifier_kind"
#define USER_NCOLS 15

/* Explicit transactions (every other statement autocommits). */
static cd_err op_tx(struct op *op, const char *sql)
{
    return op_query(op, sql, NULL, sql);
}

/* Rolls back after a failure; a connection that cannot is closed. */
static void op_rollback(struct op *op)
{
    if (!op->broken && op_tx(op, "ROLLBACK") != CD_OK)
        op->broken = true;
}

static cd_err user_insert_exec(struct op *op, struct db_user *u)
{
    MYSQL_STMT *st = NULL;
    MYSQL_BIND in[14];
    uint32_t rc_version = u->rc_version != 0 ? u->rc_version : u->mk_version;
    uint32_t kind = u->verifier_kind != 0 ? u->verifier_kind : DB_VERIFIER_KEYED;
    cd_err err;

    err = op_stmt(op, ST_USER_INSERT, &st);
    if (err != CD_OK)
        return err;
    memset(in, 0, sizeof(in));
    bind_in_blob(&in[0], u->uid, sizeof(u->uid));
    bind_in_blob(&in[1], u->uname_hash, sizeof(u->uname_hash));
    bind_in_u32(&in[2], &u->mk_version);
    bind_in_blob(&in[3], u->pw_salt, sizeof(u->pw_salt));
    bind_in_u32(&in[4], &u->pw_opslimit);
    bind_in_u32(&in[5], &u->pw_memlimit_kib);
    bind_in_blob(&in[6], u->verifier, sizeof(u->verifier));
    bind_in_blob(&in[7], u->public_key, sizeof(u->public_key));
    bind_in_blob(&in[8], u->sk_pw, sizeof(u->sk_pw));
    bind_in_blob(&in[9], u->sk_rc, sizeof(u->sk_rc));
    if (u->sk_escrow_len > 0)
        bind_in_blob(&in[10], u->sk_escrow, u->sk_escrow_len);
    else
        bind_in_null(&in[10]);
    bind_in_u32(&in[11], &u->auth_gen);
    bind_in_u32(&in[12], &rc_version);
    bind_in_u32(&in[13], &kind);
    err = op_exec(op, st, in, "user insert");
    if (err != CD_OK)
        return err;
    u->id = mysql_stmt_insert_id(st);
    return CD_OK;
}

cd_err db_user_insert(db_pool *pool, struct db_user *u)
{
    struct op op;
    cd_err err;

    if (u->sk_escrow_len > DB_KEYBLOB_MAX)
        return CD_ERR_INVALID;
    err = op_begin(pool, &op);
    if (err != CD_OK)
        return err;
    err = user_insert_exec(&op, u);
    op_end(&op);
    return err;
}

/* Fetches one user row of a statement that selected USER_COLS (already
 * executed). CD_ERR_NOT_FOUND when there is none. */
static cd_err user_fetch(struct op *op, MYSQL_STMT *st, struct db_user *out)
{
    MYSQL_BIND res[USER_NCOLS];
    struct db_user u;
    unsigned long len[USER_NCOLS];
    my_bool trunc[USER_NCOLS], isnull[USER_NCOLS];
    uint32_t kind = 0;
    bool row = false;
    cd_err err;

    memset(&u, 0, sizeof(u));
    memset(res, 0, sizeof(res));
    memset(len, 0, sizeof(len));
    memset(trunc, 0, sizeof(trunc));
    memset(isnull, 0, sizeof(isnull));
    bind_out_u64(&res[0], &u.id);
    bind_out_blob(&res[1], u.uid, sizeof(u.uid), &len[1], &trunc[1], &isnull[1]);
    bind_out_blob(&res[2], u.uname_hash, sizeof(u.uname_hash), &len[2], &trunc[2], &isnull[2]);
    bind_out_u32(&res[3], &u.mk_version);
    bind_out_blob(&res[4], u.pw_salt, sizeof(u.pw_salt), &len[4], &trunc[4], &isnull[4]);
    bind_out_u32(&res[5], &u.pw_opslimit);
    bind_out_u32(&res[6], &u.pw_memlimit_kib);
    bind_out_blob(&res[7], u.verifier, sizeof(u.verifier), &len[7], &trunc[7], &isnull[7]);
    bind_out_blob(&res[8], u.public_key, sizeof(u.public_key), &len[8], &trunc[8], &isnull[8]);
    bind_out_blob(&res[9], u.sk_pw, sizeof(u.sk_pw), &len[9], &trunc[9], &isnull[9]);
    bind_out_blob(&res[10], u.sk_rc, sizeof(u.sk_rc), &len[10], &trunc[10], &isnull[10]);
    bind_out_blob(&res[11], u.sk_escrow, sizeof(u.sk_escrow), &len[11], &trunc[11], &isnull[11]);
    bind_out_u32(&res[12], &u.auth_gen);
    bind_out_u32(&res[13], &u.rc_version);
    bind_out_u32(&res[14], &kind);
    if (mysql_stmt_bind_result(st, res)) {
        err = op_stmt_err(op, st, "user get");
        goto out;
    }
    err = op_fetch(op, st, &row, "user get");
    op_finish(op, st);
    if (err != CD_OK)
        goto out;
    if (!row) {
        err = CD_ERR_NOT_FOUND;
        goto out;
    }
    /* Fixed-size columns must have exactly their size. */
    if (len[1] != sizeof(u.uid) || len[2] != sizeof(u.uname_hash) || len[4] != sizeof(u.pw_salt) ||
        len[7] != sizeof(u.verifier) || len[8] != sizeof(u.public_key) ||
        len[9] != sizeof(u.sk_pw) || len[10] != sizeof(u.sk_rc) || trunc[11] ||
        len[11] > sizeof(u.sk_escrow) ||
        (kind != DB_VERIFIER_LEGACY && kind != DB_VERIFIER_KEYED)) {
        log_errorx("db: user %llu has malformed key columns", (unsigned long long)u.id);
        err = CD_ERR_INTERNAL;
        goto out;
    }
    u.sk_escrow_len = isnull[11] ? 0 : len[11];
    u.verifier_kind = (uint8_t)kind;
    *out = u;
out:
    explicit_bzero(&u, sizeof(u));
    return err;
}

/* Runs the lookup by n hashes (locking: FOR UPDATE, inside a transaction). If
 * several rows match (names duplicated by the pre-issue-9 code), the oldest
 * account wins: it is the one whose owner chose the name first. */
static cd_err user_find_exec(struct op *op, const uint8_t (*hashes)[CRYPTO_HASH_BYTES], size_t n,
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
    err = op_prepare(op, &op->c->st_find[locking][n], sql, &st);
    if (err != CD_OK)
        return err;
    memset(in, 0, sizeof(in));
    for (size_t i = 0; i < n; i++)
        bind_in_blob(&in[i], hashes[i], CRYPTO_HASH_BYTES);
    err = op_exec(op, st, in, "user get");
    if (err != CD_OK)
        return err;
    return user_fetch(op, st, out);
}

cd_err db_user_find(db_pool *pool, const uint8_t (*hashes)[CRYPTO_HASH_BYTES], size_t n,
                    struct db_user *out)
{
    struct op op;
    cd_err err;

    err = op_begin(pool, &op);
    if (err != CD_OK)
        return err;
    err = user_find_exec(&op, hashes, n, false, out);
    op_end(&op);
    return err;
}

cd_err db_user_get_by_hash(db_pool *pool, const uint8_t uname_hash[CRYPTO_HASH_BYTES],
                           struct db_user *out)
{
    return db_user_find(pool, (const uint8_t(*)[CRYPTO_HASH_BYTES])uname_hash, 1, out);
}

/* How often a transaction that InnoDB chose as a deadlock victim is run again. */
#define DB_TX_ATTEMPTS 3

cd_err db_user_insert_unique(db_pool *pool, struct db_user *u,
                             const uint8_t (*hashes)[CRYPTO_HASH_BYTES], size_t n)
{
    struct op op;
    struct db_user other;
    cd_err err;

    if (u->sk_escrow_len > DB_KEYBLOB_MAX || n == 0 || n > DB_UNAME_HASHES_MAX)
        return CD_ERR_INVALID;
    err = op_begin(pool, &op);
    if (err != CD_OK)
        return err;
    for (int attempt = 0; attempt < DB_TX_ATTEMPTS; attempt++) {
        err = op_tx(&op, "START TRANSACTION");
        if (err != CD_OK)
            break;
        /* A locking read takes next-key locks on every hash's index entry or
         * gap: a concurrent create of the same name blocks on them (or is
         * chosen as a deadlock victim and runs again), and a row re-hashed
         * meanwhile is seen in its committed form. */
        err = user_find_exec(&op, hashes, n, true, &other);
        if (err == CD_OK)
            err = CD_ERR_EXISTS;
        else if (err == CD_ERR_NOT_FOUND)
            err = user_insert_exec(&op, u);
        if (err == CD_OK)
            err = op_tx(&op, "COMMIT");
        if (err != CD_OK)
            op_rollback(&op);
        if (err != CD_ERR_CONFLICT || op.broken)
            break;
    }
    explicit_bzero(&other, sizeof(other));
    op_end(&op);
    return err;
}

/* After an UPDATE matched no row: CONFLICT if the row exists, else NOT_FOUND. */
static cd_err op_exists(struct op *op, enum stmt_id id, MYSQL_BIND *in, const char *what)
{
    MYSQL_STMT *st = NULL;
    MYSQL_BIND res[1];
    uint64_t v = 0;
    bool row = false;
    cd_err err;

    err = op_stmt(op, id, &st);
    if (err != CD_OK)
        return err;
    err = op_exec(op, st, in, what);
    if (err != CD_OK)
        return err;
    memset(res, 0, sizeof(res));
    bind_out_u64(&res[0], &v);
    if (mysql_stmt_bind_result(st, res))
        return op_stmt_err(op, st, what);
    err = op_fetch(op, st, &row, what);
    op_finish(op, st);
    if (err != CD_OK)
        return err;
    return row ? CD_ERR_CONFLICT : CD_ERR_NOT_FOUND;
}

/* The credential UPDATE of db_user_update_credentials on op's connection. */
static cd_err user_update_exec(struct op *op, const struct db_user *u, uint32_t expected_gen)
{
    MYSQL_STMT *st = NULL;
    MYSQL_BIND in[15], ex[1];
    uint32_t new_gen = expected_gen + 1;
    uint32_t rc_version = u->rc_version != 0 ? u->rc_version : u->mk_version;
    uint32_t kind = u->verifier_kind != 0 ? u->verifier_kind : DB_VERIFIER_KEYED;
    uint64_t id = u->id;
    cd_err err;

    err = op_stmt(op, ST_USER_UPDATE, &st);
    if (err != CD_OK)
        return err;
    memset(in, 0, sizeof(in));
    bind_in_blob(&in[0], u->uname_hash, sizeof(u->uname_hash));
    bind_in_u32(&in[1], &u->mk_version);
    bind_in_blob(&in[2], u->pw_salt, sizeof(u->pw_salt));
    bind_in_u32(&in[3], &u->pw_opslimit);
    bind_in_u32(&in[4], &u->pw_memlimit_kib);
    bind_in_blob(&in[5], u->verifier, sizeof(u->verifier));
    bind_in_blob(&in[6], u->sk_pw, sizeof(u->sk_pw));
    bind_in_blob(&in[7], u->sk_rc, sizeof(u->sk_rc));
    if (u->sk_escrow_len > 0)
        bind_in_blob(&in[8], u->sk_escrow, u->sk_escrow_len);
    else
        bind_in_null(&in[8]);
    bind_in_u32(&in[9], &new_gen);
    bind_in_blob(&in[10], u->public_key, sizeof(u->public_key));
    bind_in_u32(&in[11], &rc_version);
    bind_in_u32(&in[12], &kind);
    bind_in_u64(&in[13], &id);
    bind_in_u32(&in[14], &expected_gen);
    err = op_exec(op, st, in, "user update");
    if (err != CD_OK)
        return err;
    if (mysql_stmt_affected_rows(st) == 1)
        return CD_OK;
    memset(ex, 0, sizeof(ex));
    bind_in_u64(&ex[0], &id);
    return op_exists(op, ST_USER_EXISTS, ex, "user exists");
}

cd_err db_user_update_credentials(db_pool *pool, const struct db_user *u, uint32_t expected_gen)
{
    struct op op;
    cd_err err;

    if (u->sk_escrow_len > DB_KEYBLOB_MAX || expected_gen == UINT32_MAX)
        return CD_ERR_INVALID;
    err = op_begin(pool, &op);
    if (err != CD_OK)
        return err;
    err = user_update_exec(&op, u, expected_gen);
    op_end(&op);
    return err;
}

/* Locks account id's row (FOR UPDATE or shared) in the open transaction and
 * checks its auth_gen: CD_ERR_CONFLICT (rotate) or CD_ERR_AUTH (document
 * writes) when it changed, CD_ERR_NOT_FOUND when the account is gone. */
static cd_err user_lock_exec(struct op *op, enum stmt_id id_stmt, uint64_t id, uint32_t gen,
                             cd_err changed)
{
    MYSQL_STMT *st = NULL;
    MYSQL_BIND in[1], res[1];
    uint32_t got = 0;
    bool row = false;
    cd_err err;

    err = op_stmt(op, id_stmt, &st);
    if (err != CD_OK)
        return err;
    memset(in, 0, sizeof(in));
    bind_in_u64(&in[0], &id);
    err = op_exec(op, st, in, "user lock");
    if (err != CD_OK)
        return err;
    memset(res, 0, sizeof(res));
    bind_out_u32(&res[0], &got);
    if (mysql_stmt_bind_result(st, res))
        return op_stmt_err(op, st, "user lock");
    err = op_fetch(op, st, &row, "user lock");
    op_finish(op, st);
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
static cd_err doc_keys_batch(struct op *op, uint64_t owner, int64_t after, struct doc_key *out,
                             size_t *n)
{
    MYSQL_STMT *st = NULL;
    MYSQL_BIND in[3], res[3];
    struct doc_key k;
    unsigned long len = 0;
    my_bool trunc = 0, isnull = 0;
    uint32_t limit = DB_ROTATE_BATCH;
    cd_err err;

    *n = 0;
    err = op_stmt(op, ST_DOC_KEYS, &st);
    if (err != CD_OK)
        return err;
    memset(in, 0, sizeof(in));
    bind_in_u64(&in[0], &owner);
    bind_in_i64(&in[1], &after);
    bind_in_u32(&in[2], &limit);
    err = op_exec(op, st, in, "doc keys");
    if (err != CD_OK)
        return err;
    memset(res, 0, sizeof(res));
    bind_out_i64(&res[0], &k.record_id);
    bind_out_u64(&res[1], &k.version);
    bind_out_blob(&res[2], k.wrapped_dk, sizeof(k.wrapped_dk), &len, &trunc, &isnull);
    if (mysql_stmt_bind_result(st, res))
        return op_stmt_err(op, st, "doc keys");
    for (;;) {
        bool row = false;
        err = op_fetch(op, st, &row, "doc keys");
        if (err != CD_OK || !row)
            break;
        if (len != sizeof(k.wrapped_dk) || *n >= DB_ROTATE_BATCH) {
            log_errorx("db: a document of user %llu has a malformed data key",
                       (unsigned long long)owner);
            err = CD_ERR_INTERNAL;
            break;
        }
        out[(*n)++] = k;
    }
    op_finish(op, st);
    return err;
}

static cd_err doc_set_key_exec(struct op *op, uint64_t owner, const struct doc_key *k)
{
    MYSQL_STMT *st = NULL;
    MYSQL_BIND in[4];
    cd_err err;

    err = op_stmt(op, ST_DOC_SET_KEY, &st);
    if (err != CD_OK)
        return err;
    memset(in, 0, sizeof(in));
    bind_in_blob(&in[0], k->wrapped_dk, sizeof(k->wrapped_dk));
    bind_in_u64(&in[1], &owner);
    bind_in_i64(&in[2], &k->record_id);
    bind_in_u64(&in[3], &k->version);
    err = op_exec(op, st, in, "doc set key");
    if (err == CD_OK && mysql_stmt_affected_rows(st) != 1)
        err = CD_ERR_INTERNAL; /* the row is locked: it cannot have changed */
    return err;
}

static cd_err user_rotate_tx(struct op *op, const struct db_user *u, uint32_t expected_gen,
                             db_rewrap_fn rewrap, void *cls, struct doc_key *batch)
{
    int64_t after = -1;
    size_t n = 0;
    cd_err err;

    err = user_lock_exec(op, ST_USER_LOCK, u->id, expected_gen, CD_ERR_CONFLICT);
    if (err != CD_OK)
        return err;
    do {
        err = doc_keys_batch(op, u->id, after, batch, &n);
        for (size_t i = 0; err == CD_OK && i < n; i++) {
            uint8_t out[CRYPTO_WRAPPED_KEY_BYTES];
            err = rewrap(cls, batch[i].record_id, batch[i].version, batch[i].wrapped_dk, out);
            if (err == CD_OK) {
                memcpy(batch[i].wrapped_dk, out, sizeof(out));
                err = doc_set_key_exec(op, u->id, &batch[i]);
            }
            after = batch[i].record_id;
        }
    } while (err == CD_OK && n == DB_ROTATE_BATCH);
    if (err == CD_OK)
        err = user_update_exec(op, u, expected_gen);
    return err;
}

cd_err db_user_rotate_key(db_pool *pool, const struct db_user *u, uint32_t expected_gen,
                          db_rewrap_fn rewrap, void *cls)
{
    struct op op;
    struct doc_key *batch;
    cd_err err;

    if (u->sk_escrow_len > DB_KEYBLOB_MAX || expected_gen == UINT32_MAX || rewrap == NULL)
        return CD_ERR_INVALID;
    batch = calloc(DB_ROTATE_BATCH, sizeof(*batch));
    if (batch == NULL)
        return CD_ERR_NOMEM;
    err = op_begin(pool, &op);
    if (err != CD_OK) {
        free(batch);
        return err;
    }
    err = op_tx(&op, "START TRANSACTION");
    if (err == CD_OK) {
        err = user_rotate_tx(&op, u, expected_gen, rewrap, cls, batch);
        if (err == CD_OK)
            err = op_tx(&op, "COMMIT");
        if (err != CD_OK)
            op_rollback(&op);
    }
    op_end(&op);
    free(batch);
    return err;
}

cd_err db_user_convert_verifiers(db_pool *pool, db_verifier_fn convert, void *cls,
                                 unsigned *converted)
{
    enum { BATCH = 64 };
    struct legacy {
        uint64_t id;
        struct db_verifier_row r;
    } * rows;
    struct op op;
    uint64_t after = 0;
    unsigned done = 0;
    size_t n = 0, fetched = 0;
    cd_err err;

    rows = calloc(BATCH, sizeof(*rows));
    if (rows == NULL)
        return CD_ERR_NOMEM;
    err = op_begin(pool, &op);
    if (err != CD_OK) {
        free(rows);
        return err;
    }
    do {
        MYSQL_STMT *st = NULL;
        MYSQL_BIND in[3], res[4];
        struct legacy row;
        unsigned long len[4] = {0};
        my_bool trunc[4] = {0}, isnull[4] = {0};
        uint32_t limit = BATCH;

        n = 0;
        fetched = 0;
        err = op_stmt(&op, ST_USER_LEGACY_VERIFIERS, &st);
        if (err != CD_OK)
            break;
        memset(in, 0, sizeof(in));
        bind_in_u64(&in[0], &after);
        bind_in_u32(&in[1], &limit);
        err = op_exec(&op, st, in, "legacy verifiers");
        if (err != CD_OK)
            break;
        memset(res, 0, sizeof(res));
        bind_out_u64(&res[0], &row.id);
        bind_out_blob(&res[1], row.r.uid, sizeof(row.r.uid), &len[1], &trunc[1], &isnull[1]);
        bind_out_u32(&res[2], &row.r.mk_version);
        bind_out_blob(&res[3], row.r.verifier, sizeof(row.r.verifier), &len[3], &trunc[3],
                      &isnull[3]);
        if (mysql_stmt_bind_result(st, res)) {
            err = op_stmt_err(&op, st, "legacy verifiers");
            break;
        }
        for (;;) {
            bool got = false;
            err = op_fetch(&op, st, &got, "legacy verifiers");
            if (err != CD_OK || !got || fetched >= BATCH)
                break;
            fetched++;
            if (len[1] == sizeof(row.r.uid) && len[3] == sizeof(row.r.verifier))
                rows[n++] = row;
            after = row.id;
        }
        op_finish(&op, st);
        /* One UPDATE per row, conditional on the row still holding the
         * legacy verifier it was read with: a crash or a concurrent run
         * leaves each row either converted or not, never converted twice. */
        for (size_t i = 0; err == CD_OK && i < n; i++) {
            uint8_t v[CRYPTO_HASH_BYTES];
            MYSQL_BIND up[3];

            if (convert(cls, &rows[i].r, v) != CD_OK)
                continue; /* e.g. a key version this keyring lacks: left as is */
            err = op_stmt(&op, ST_USER_SET_VERIFIER, &st);
            if (err != CD_OK)
                break;
            memset(up, 0, sizeof(up));
            bind_in_blob(&up[0], v, sizeof(v));
            bind_in_u64(&up[1], &rows[i].id);
            bind_in_blob(&up[2], rows[i].r.verifier, sizeof(rows[i].r.verifier));
            err = op_exec(&op, st, up, "set verifier");
            if (err == CD_OK && mysql_stmt_affected_rows(st) == 1)
                done++;
        }
    } while (err == CD_OK && fetched == BATCH);
    op_end(&op);
    free(rows);
    if (converted != NULL)
        *converted = done;
    return err;
}

cd_err db_user_delete(db_pool *pool, uint64_t id)
{
    struct op op;
    MYSQL_STMT *st = NULL;
    MYSQL_BIND in[1];
    cd_err err;

    err = op_begin(pool, &op);
    if (err != CD_OK)
        return err;
    err = op_stmt(&op, ST_USER_DELETE, &st);
    if (err != CD_OK)
        goto out;
    memset(in, 0, sizeof(in));
    bind_in_u64(&in[0], &id);
    /* One statement: the foreign key's ON DELETE CASCADE removes the documents
     * in the same (autocommitted) transaction. */
    err = op_exec(&op, st, in, "user delete");
    if (err != CD_OK)
        goto out;
    if (mysql_stmt_affected_rows(st) == 0)
        err = CD_ERR_NOT_FOUND;
out:
    op_end(&op);
    return err;
}

/* ---- documents ---- */

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

static unsigned doc_lane(size_t content_ct_len)
{
    return content_ct_len > DB_INLINE_CONTENT_MAX ? LANE_LARGE : LANE_SMALL;
}

/* gen: NULL, or the auth_gen the owner's account must still have. */
static cd_err doc_insert(db_pool *pool, const struct db_doc *d, const uint32_t *gen)
{
    struct op op;
    MYSQL_STMT *st = NULL;
    MYSQL_BIND in[8];
    MYSQL_BIND *b = in;
    cd_err err;

    err = doc_check(d);
    if (err != CD_OK)
        return err;
    err = op_begin_lane(pool, &op, doc_lane(d->content_ct_len));
    if (err != CD_OK)
        return err;
    err = op_stmt(&op, gen != NULL ? ST_DOC_INSERT_IF_GEN : ST_DOC_INSERT, &st);
    if (err != CD_OK)
        goto out;
    memset(in, 0, sizeof(in));
    if (gen == NULL)
        bind_in_u64(b++, &d->owner_id);
    bind_in_i64(b++, &d->record_id);
    bind_in_u64(b++, &d->version);
    bind_in_blob(b++, d->wrapped_dk, sizeof(d->wrapped_dk));
    bind_in_blob(b++, d->ctype_ct, d->ctype_ct_len);
    bind_in_blob(b++, d->content_ct, d->content_ct_len);
    bind_in_u64(b++, &d->size);
    if (gen != NULL) {
        bind_in_u64(b++, &d->owner_id);
        bind_in_u32(b++, gen);
    }
    err = op_exec(&op, st, in, "doc insert");
    if (err == CD_OK && gen != NULL && mysql_stmt_affected_rows(st) != 1)
        err = CD_ERR_AUTH; /* the account changed or is gone: nothing inserted */
out:
    op_end(&op);
    return err;
}

cd_err db_doc_insert(db_pool *pool, const struct db_doc *d)
{
    return doc_insert(pool, d, NULL);
}

cd_err db_doc_insert_if_gen(db_pool *pool, const struct db_doc *d, uint32_t auth_gen)
{
    return doc_insert(pool, d, &auth_gen);
}

static cd_err doc_replace_exec(struct op *op, const struct db_doc *d, uint64_t expected_version)
{
    MYSQL_STMT *st = NULL;
    MYSQL_BIND in[8], ex[2];
    cd_err err;

    err = op_stmt(op, ST_DOC_UPDATE, &st);
    if (err != CD_OK)
        return err;
    memset(in, 0, sizeof(in));
    bind_in_u64(&in[0], &d->version);
    bind_in_blob(&in[1], d->wrapped_dk, sizeof(d->wrapped_dk));
    bind_in_blob(&in[2], d->ctype_ct, d->ctype_ct_len);
    bind_in_blob(&in[3], d->content_ct, d->content_ct_len);
    bind_in_u64(&in[4], &d->size);
    bind_in_u64(&in[5], &d->owner_id);
    bind_in_i64(&in[6], &d->record_id);
    bind_in_u64(&in[7], &expected_version);
    err = op_exec(op, st, in, "doc replace");
    if (err != CD_OK)
        return err;
    if (mysql_stmt_affected_rows(st) == 1)
        return CD_OK;
    memset(ex, 0, sizeof(ex));
    bind_in_u64(&ex[0], &d->owner_id);
    bind_in_i64(&ex[1], &d->record_id);
    return op_exists(op, ST_DOC_VERSION, ex, "doc version");
}

cd_err db_doc_replace_if_gen(db_pool *pool, const struct db_doc *d, uint64_t expected_version,
                             uint32_t auth_gen)
{
    struct op op;
    cd_err err;

    err = doc_check(d);
    if (err != CD_OK)
        return err;
    if (expected_version == UINT64_MAX || d->version != expected_version + 1)
        return CD_ERR_INVALID;
    err = op_begin_lane(pool, &op, doc_lane(d->content_ct_len));
    if (err != CD_OK)
        return err;
    /* The account row first (shared), then the document, as a key rotation
     * takes them: a rotation waits for this write, or this write waits for
     * the rotation and then sees the new auth_gen and writes nothing. */
    err = op_tx(&op, "START TRANSACTION");
    if (err == CD_OK) {
        err = user_lock_exec(&op, ST_USER_LOCK_SHARED, d->owner_id, auth_gen, CD_ERR_AUTH);
        if (err == CD_OK)
            err = doc_replace_exec(&op, d, expected_version);
        if (err == CD_OK)
            err = op_tx(&op, "COMMIT");
        if (err != CD_OK)
            op_rollback(&op);
    }
    op_end(&op);
    return err;
}

cd_err db_doc_replace(db_pool *pool, const struct db_doc *d, uint64_t expected_version)
{
    struct op op;
    cd_err err;

    err = doc_check(d);
    if (err != CD_OK)
        return err;
    if (expected_version == UINT64_MAX || d->version != expected_version + 1)
        return CD_ERR_INVALID;
    err = op_begin_lane(pool, &op, doc_lane(d->content_ct_len));
    if (err != CD_OK)
        return err;
    err = doc_replace_exec(&op, d, expected_version);
    op_end(&op);
    return err;
}

/* gen: NULL, or the auth_gen the owner's account must still have. */
static cd_err doc_get(db_pool *pool, uint64_t owner_id, const uint32_t *gen, int64_t record_id,
                      size_t max_content, struct db_doc *out)
{
    struct op op;
    MYSQL_STMT *st = NULL;
    MYSQL_BIND in[4], res[8], col;
    struct db_doc d;
    unsigned long len[8];
    my_bool trunc[8], isnull[8];
    uint64_t max = max_content > DB_CONTENT_MAX ? DB_CONTENT_MAX : max_content, clen = 0;
    bool row = false;
    cd_err err;

    memset(&d, 0, sizeof(d));
    if (record_id < 0 && gen == NULL)
        return CD_ERR_NOT_FOUND;
    /* Only a caller ready for large content uses the large lane. */
    err = op_begin_lane(pool, &op, doc_lane(max));
    if (err != CD_OK)
        return err;
    err = op_stmt(&op, gen != NULL ? ST_DOC_GET_IF_GEN : ST_DOC_GET, &st);
    if (err != CD_OK)
        goto out;
    memset(in, 0, sizeof(in));
    bind_in_u64(&in[0], &max);
    if (gen != NULL) {
        bind_in_i64(&in[1], &record_id);
        bind_in_u64(&in[2], &owner_id);
        bind_in_u32(&in[3], gen);
    } else {
        bind_in_u64(&in[1], &owner_id);
        bind_in_i64(&in[2], &record_id);
    }
    err = op_exec(&op, st, in, "doc get");
    if (err != CD_OK)
        goto out;
    memset(res, 0, sizeof(res));
    memset(len, 0, sizeof(len));
    memset(trunc, 0, sizeof(trunc));
    memset(isnull, 0, sizeof(isnull));
    bind_out_u64(&res[0], &d.version);
    bind_out_blob(&res[1], d.wrapped_dk, sizeof(d.wrapped_dk), &len[1], &trunc[1], &isnull[1]);
    bind_out_blob(&res[2], d.ctype_ct, sizeof(d.ctype_ct), &len[2], &trunc[2], &isnull[2]);
    /* Content: length only here, then fetched whole into a buffer of that size. */
    bind_out_blob(&res[3], NULL, 0, &len[3], &trunc[3], &isnull[3]);
    bind_out_u64(&res[4], &clen);
    bind_out_u64(&res[5], &d.size);
    bind_out_i64(&res[6], &d.created_us);
    bind_out_i64(&res[7], &d.updated_us);
    if (mysql_stmt_bind_result(st, res)) {
        err = op_stmt_err(&op, st, "doc get");
        goto out;
    }
    err = op_fetch(&op, st, &row, "doc get");
    if (err != CD_OK)
        goto finish;
    if (!row) {
        err = gen != NULL ? CD_ERR_AUTH : CD_ERR_NOT_FOUND;
        goto finish;
    }
    if (isnull[1] || record_id < 0) { /* the account is current; the document is not there */
        err = CD_ERR_NOT_FOUND;
        goto finish;
    }
    if (len[1] != sizeof(d.wrapped_dk) || trunc[2] || len[2] > sizeof(d.ctype_ct)) {
        log_errorx("db: document has malformed columns");
        err = CD_ERR_INTERNAL;
        goto finish;
    }
    if (len[3] > DB_CONTENT_MAX || clen > DB_CONTENT_MAX) {
        log_errorx("db: document content of %llu bytes exceeds the limit",
                   (unsigned long long)clen);
        err = CD_ERR_INTERNAL;
        goto finish;
    }
    d.ctype_ct_len = len[2];
    if (isnull[3]) { /* larger than max_content: the metadata only */
        d.content_ct_len = (size_t)clen;
        err = CD_ERR_TOO_LARGE;
        goto finish;
    }
    d.content_ct_len = len[3];
    d.content_ct = malloc(len[3] > 0 ? len[3] : 1);
    if (d.content_ct == NULL) {
        err = CD_ERR_NOMEM;
        goto finish;
    }
    if (len[3] > 0) {
        unsigned long got = 0;
        memset(&col, 0, sizeof(col));
        bind_out_blob(&col, d.content_ct, len[3], &got, &trunc[3], &isnull[3]);
        if (mysql_stmt_fetch_column(st, &col, 3, 0)) {
            err = op_stmt_err(&op, st, "doc get content");
            goto finish;
        }
        if (got != len[3]) {
            err = CD_ERR_INTERNAL;
            goto finish;
        }
    }
finish:
    op_finish(&op, st);
    if (err == CD_OK || err == CD_ERR_TOO_LARGE) {
        d.owner_id = owner_id;
        d.record_id = record_id;
        *out = d;
        d.content_ct = NULL;
    }
out:
    free(d.content_ct);
    op_end(&op);
    return err;
}

cd_err db_doc_get(db_pool *pool, uint64_t owner_id, int64_t record_id, struct db_doc *out)
{
    return doc_get(pool, owner_id, NULL, record_id, SIZE_MAX, out);
}

cd_err db_doc_get_if_gen(db_pool *pool, uint64_t owner_id, uint32_t auth_gen, int64_t record_id,
                         struct db_doc *out)
{
    return doc_get(pool, owner_id, &auth_gen, record_id, SIZE_MAX, out);
}

cd_err db_doc_read(db_pool *pool, uint64_t owner_id, const uint32_t *auth_gen, int64_t record_id,
                   size_t max_content, struct db_doc *out)
{
    return doc_get(pool, owner_id, auth_gen, record_id, max_content, out);
}

cd_err db_doc_version(db_pool *pool, uint64_t owner_id, int64_t record_id, uint64_t *version)
{
    struct op op;
    MYSQL_STMT *st = NULL;
    MYSQL_BIND in[2], res[1];
    uint64_t v = 0;
    bool row = false;
    cd_err err;

    if (record_id < 0)
        return CD_ERR_NOT_FOUND;
    err = op_begin(pool, &op);
    if (err != CD_OK)
        return err;
    err = op_stmt(&op, ST_DOC_VERSION, &st);
    if (err != CD_OK)
        goto out;
    memset(in, 0, sizeof(in));
    bind_in_u64(&in[0], &owner_id);
    bind_in_i64(&in[1], &record_id);
    err = op_exec(&op, st, in, "doc version");
    if (err != CD_OK)
        goto out;
    memset(res, 0, sizeof(res));
    bind_out_u64(&res[0], &v);
    if (mysql_stmt_bind_result(st, res)) {
        err = op_stmt_err(&op, st, "doc version");
        goto out;
    }
    err = op_fetch(&op, st, &row, "doc version");
    op_finish(&op, st);
    if (err != CD_OK)
        goto out;
    if (!row) {
        err = CD_ERR_NOT_FOUND;
        goto out;
    }
    *version = v;
out:
    op_end(&op);
    return err;
}

cd_err db_doc_delete(db_pool *pool, uint64_t owner_id, int64_t record_id)
{
    struct op op;
    MYSQL_STMT *st = NULL;
    MYSQL_BIND in[2];
    cd_err err;

    if (record_id < 0)
        return CD_ERR_NOT_FOUND;
    err = op_begin(pool, &op);
    if (err != CD_OK)
        return err;
    err = op_stmt(&op, ST_DOC_DELETE, &st);
    if (err != CD_OK)
        goto out;
    memset(in, 0, sizeof(in));
    bind_in_u64(&in[0], &owner_id);
    bind_in_i64(&in[1], &record_id);
    err = op_exec(&op, st, in, "doc delete");
    if (err != CD_OK)
        goto out;
    if (mysql_stmt_affected_rows(st) == 0)
        err = CD_ERR_NOT_FOUND;
out:
    op_end(&op);
    return err;
}

/* gen: NULL, or the auth_gen the owner's account must still have. */
static cd_err doc_list(db_pool *pool, uint64_t owner_id, const uint32_t *gen, int64_t after,
                       struct db_doc *out, size_t max, size_t *n)
{
    struct op op;
    MYSQL_STMT *st = NULL;
    MYSQL_BIND in[4], res[7];
    struct db_doc d;
    uint64_t limit = max;
    unsigned long len[7];
    my_bool trunc[7], isnull[7];
    size_t count = 0;
    bool row = false, any = false;
    cd_err err;

    if (max == 0) {
        *n = 0;
        return CD_OK;
    }
    err = op_begin(pool, &op);
    if (err != CD_OK)
        return err;
    err = op_stmt(&op, gen != NULL ? ST_DOC_LIST_IF_GEN : ST_DOC_LIST, &st);
    if (err != CD_OK)
        goto out;
    memset(in, 0, sizeof(in));
    if (gen != NULL) {
        bind_in_i64(&in[0], &after);
        bind_in_u64(&in[1], &owner_id);
        bind_in_u32(&in[2], gen);
        bind_in_u64(&in[3], &limit);
    } else {
        bind_in_u64(&in[0], &owner_id);
        bind_in_i64(&in[1], &after);
        bind_in_u64(&in[2], &limit);
    }
    err = op_exec(&op, st, in, "doc list");
    if (err != CD_OK)
        goto out;
    memset(&d, 0, sizeof(d));
    memset(res, 0, sizeof(res));
    memset(len, 0, sizeof(len));
    memset(trunc, 0, sizeof(trunc));
    memset(isnull, 0, sizeof(isnull));
    bind_out_i64(&res[0], &d.record_id);
    res[0].is_null = &isnull[0];
    bind_out_u64(&res[1], &d.version);
    bind_out_blob(&res[2], d.wrapped_dk, sizeof(d.wrapped_dk), &len[2], &trunc[2], &isnull[2]);
    bind_out_blob(&res[3], d.ctype_ct, sizeof(d.ctype_ct), &len[3], &trunc[3], &isnull[3]);
    bind_out_u64(&res[4], &d.size);
    bind_out_i64(&res[5], &d.created_us);
    bind_out_i64(&res[6], &d.updated_us);
    if (mysql_stmt_bind_result(st, res)) {
        err = op_stmt_err(&op, st, "doc list");
        goto out;
    }
    for (;;) {
        err = op_fetch(&op, st, &row, "doc list");
        if (err != CD_OK || !row)
            break;
        any = true;
        if (isnull[0])
            continue; /* the account, without documents after `after` */
        if (count == max || len[2] != sizeof(d.wrapped_dk) || trunc[3] ||
            len[3] > sizeof(d.ctype_ct)) {
            log_errorx("db: document list has malformed rows");
            err = CD_ERR_INTERNAL;
            break;
        }
        d.owner_id = owner_id;
        d.ctype_ct_len = len[3];
        d.content_ct = NULL;
        d.content_ct_len = 0;
        out[count++] = d;
    }
    op_finish(&op, st);
    if (err == CD_OK && gen != NULL && !any)
        err = CD_ERR_AUTH;
    if (err == CD_OK)
        *n = count;
out:
    op_end(&op);
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
