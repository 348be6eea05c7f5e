/* db_pool.c: the connection pool and its lanes, one operation's hold on a
 * connection, statements, error mapping and the pool's life cycle.
 *
 * docs/internals/storage.md explains the choices (pool, reconnects, durability).
 * Threads: the client library is initialised once (pthread_once). Connector/C 3
 * needs no mysql_thread_init/mysql_thread_end per thread (they are no-ops
 * there), so callers may use a pool from any thread. Each connection is used by
 * one thread at a time: the pool hands it out under its mutex. */
#include "storage/db_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <errmsg.h>
#include <mysqld_error.h>

#include "common/deadline.h"
#include "common/num.h"
#include "log/log.h"
#include "metrics/metrics.h"

#define DB_POOL_MAX 1024u
#define DB_DEFAULT_CONNECT_TIMEOUT_S 5u
#define DB_DEFAULT_IO_TIMEOUT_S 30u

/* ---- connections ---- */

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

/* The server's own "going away" errors. */
static bool err_server_gone(unsigned e)
{
    switch (e) {
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

/* Errors that leave the connection unusable: client-side (network, protocol)
 * errors and the server's own "going away" errors. */
static bool err_breaks_conn(unsigned e)
{
    if (e >= CR_MIN_ERROR && e <= CR_MAX_ERROR)
        return true;
    if (e > CER_MIN_ERROR && e <= CR_MARIADB_LAST_ERROR)
        return true;
    return err_server_gone(e) || e == ER_NET_PACKETS_OUT_OF_ORDER;
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
        return true;
    default:
        return err_server_gone(e);
    }
}

/* Maps a failed call's error number; the caller decides what to log. Never
 * logs the server's message: it can quote bound values (a duplicate key's
 * bytes). The number and SQLSTATE go to the debug log only. */
static cd_err op_map_err(struct db_op *op, unsigned e, const char *sqlstate)
{
    op->last_errno = e;
    if (e == ER_DUP_ENTRY)
        return CD_ERR_EXISTS;
    /* InnoDB rolled the transaction back; the caller may run it again. */
    if (e == ER_LOCK_DEADLOCK)
        return CD_ERR_CONFLICT;
    log_debug("db: %s: error %u (%s)", op->what != NULL ? op->what : "query", e,
              sqlstate ? sqlstate : "?");
    if (err_breaks_conn(e)) {
        op->broken = true;
        return err_is_network(e) || e == 0 ? CD_ERR_UNAVAILABLE : CD_ERR_INTERNAL;
    }
    return CD_ERR_INTERNAL;
}

cd_err db_op_err(struct db_op *op, MYSQL_STMT *st)
{
    if (st != NULL)
        return op_map_err(op, mysql_stmt_errno(st), mysql_stmt_sqlstate(st));
    return op_map_err(op, mysql_errno(op->c->my), mysql_sqlstate(op->c->my));
}

/* One connection attempt to host h of the pool's list; *out on success. */
static cd_err conn_try(db_pool *p, unsigned h, MYSQL **out)
{
    const struct db_config *cfg = &p->cfg;
    unsigned ct = cfg->connect_timeout_s ? cfg->connect_timeout_s : DB_DEFAULT_CONNECT_TIMEOUT_S;
    unsigned io = cfg->io_timeout_s ? cfg->io_timeout_s : DB_DEFAULT_IO_TIMEOUT_S;
    my_bool yes = 1, verify = cfg->verify_server_name ? 1 : 0;
    unsigned proto = MYSQL_PROTOCOL_TCP;
    const char *host = p->hosts[h];
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
        mysql_close(my);
        return CD_ERR_INTERNAL;
    }
    /* CLIENT_FOUND_ROWS: UPDATE reports matched rows, so "0 rows" means the
     * WHERE clause (id, version, generation) did not match. */
    if (mysql_real_connect(my, host, cfg->user, cfg->password, cfg->database, cfg->port, NULL,
                           CLIENT_FOUND_ROWS) == NULL) {
        /* Connection errors name our account and the server, never user data.
         * Until the first connection succeeds (start-up) they are the only
         * account of why; afterwards the caller reports the failure. */
        if (atomic_load(&p->connected_once))
            log_debug("db: cannot connect to %s:%u: %s (%u)", host, cfg->port, mysql_error(my),
                      mysql_errno(my));
        else
            log_warnx("db: cannot connect to %s:%u: %s (%u)", host, cfg->port, mysql_error(my),
                      mysql_errno(my));
        mysql_close(my);
        return CD_ERR_UNAVAILABLE;
    }
    *out = my;
    return CD_OK;
}

/* Opens c: the current host first, then each other one in list order; the
 * host that accepts becomes current (for every later connection). */
static cd_err conn_open(db_pool *p, struct db_conn *c)
{
    unsigned first = (unsigned)atomic_load(&p->host_cur) % p->n_hosts;
    cd_err err = CD_ERR_UNAVAILABLE;

    for (unsigned k = 0; k < p->n_hosts; k++) {
        unsigned h = (first + k) % p->n_hosts;
        MYSQL *my = NULL;

        err = conn_try(p, h, &my);
        if (err == CD_ERR_NOMEM || err == CD_ERR_INTERNAL)
            return err;
        if (err != CD_OK)
            continue;
        if (h != first) {
            unsigned expected = first;
            /* Another thread may have moved on already: keep its choice. */
            if (atomic_compare_exchange_strong(&p->host_cur, &expected, h))
                log_info("db: %s:%u unavailable; connecting to %s:%u from now on", p->hosts[first],
                         p->cfg.port, p->hosts[h], p->cfg.port);
        }
        atomic_store(&p->connected_once, true);
        c->my = my;
        return CD_OK;
    }
    return err;
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

/* ---- operations ---- */

/* Makes sure the connection taken is open and alive. */
cd_err db_op_begin(db_pool *p, struct db_op *op, unsigned lane)
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
        log_debug("db: no pool connection free within %u ms", p->cfg.acquire_timeout_ms);
        return CD_ERR_TIMEOUT;
    }

    op->pool = p;
    op->c = c;
    op->broken = false;
    op->last_errno = 0;
    op->what = NULL;
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

void db_op_end(struct db_op *op)
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
cd_err db_op_prepare(struct db_op *op, MYSQL_STMT **slot, const char *sql, MYSQL_STMT **out)
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
        err = db_op_err(op, st);
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

cd_err db_op_exec(struct db_op *op, MYSQL_STMT *st, MYSQL_BIND *params)
{
    uint64_t t0;
    int failed;

    atomic_fetch_add(&op->pool->statements, 1);
    if (params != NULL && mysql_stmt_bind_param(st, params))
        return db_op_err(op, st);
    t0 = metrics_now_ns();
    failed = mysql_stmt_execute(st);
    metrics_db_round_trip(METRICS_DB_EXECUTE, metrics_now_ns() - t0, failed == 0);
    if (failed)
        return db_op_err(op, st);
    return CD_OK;
}

cd_err db_op_run(struct db_op *op, const struct db_stmt *s, struct db_args *in, MYSQL_STMT **out)
{
    cd_err err;

    op->what = s->what;
    if (in != NULL && in->full)
        return CD_ERR_INTERNAL;
    err = db_op_prepare(op, &op->c->st[s->id], s->sql, out);
    return err != CD_OK ? err : db_op_exec(op, *out, in != NULL ? in->b : NULL);
}

cd_err db_op_rows(struct db_op *op, const struct db_stmt *s, struct db_args *in,
                  struct db_cols *cols, MYSQL_STMT **out)
{
    cd_err err = cols->full ? CD_ERR_INTERNAL : db_op_run(op, s, in, out);

    if (err == CD_OK && mysql_stmt_bind_result(*out, cols->b))
        err = db_op_err(op, *out);
    return err;
}

cd_err db_op_row(struct db_op *op, const struct db_stmt *s, struct db_args *in,
                 struct db_cols *cols, bool *row)
{
    MYSQL_STMT *st = NULL;
    cd_err err = db_op_rows(op, s, in, cols, &st);

    *row = false;
    if (err != CD_OK)
        return err;
    err = db_op_fetch(op, st, row);
    db_op_finish(op, st);
    return err;
}

/* Truncated columns are checked by the caller (db_col_is, db_col_fits). */
cd_err db_op_fetch(struct db_op *op, MYSQL_STMT *st, bool *row)
{
    int r = mysql_stmt_fetch(st);

    *row = r == 0 || r == MYSQL_DATA_TRUNCATED;
    if (*row || r == MYSQL_NO_DATA)
        return CD_OK;
    return db_op_err(op, st);
}

void db_op_finish(struct db_op *op, MYSQL_STMT *st)
{
    if (mysql_stmt_free_result(st))
        op->broken = true;
}

cd_err db_op_query(struct db_op *op, const char *sql, long long *scalar)
{
    MYSQL *my = op->c->my;
    MYSQL_RES *res;
    MYSQL_ROW row;
    long long v = -1;
    uint64_t t0;
    int failed;

    atomic_fetch_add(&op->pool->statements, 1);
    op->what = NULL;
    t0 = metrics_now_ns();
    failed = mysql_real_query(my, sql, (unsigned long)strlen(sql));
    metrics_db_round_trip(METRICS_DB_QUERY, metrics_now_ns() - t0, failed == 0);
    if (failed)
        return db_op_err(op, NULL);
    res = mysql_store_result(my);
    if (res == NULL) {
        if (mysql_field_count(my) != 0)
            return db_op_err(op, NULL);
        if (scalar != NULL)
            *scalar = v;
        return CD_OK;
    }
    row = mysql_fetch_row(res);
    if (row != NULL && mysql_num_fields(res) > 0 && row[0] != NULL) {
        uint64_t u;

        if (num_parse(row[0], strlen(row[0]), INT64_MAX, &u) != CD_OK) {
            mysql_free_result(res);
            return CD_ERR_INTERNAL; /* scalars here are counts, versions, lock results */
        }
        v = (long long)u;
    }
    mysql_free_result(res);
    if (scalar != NULL)
        *scalar = v;
    return CD_OK;
}

cd_err db_op_tx(struct db_op *op, db_tx_fn body, void *cls)
{
    cd_err err = db_op_query(op, "START TRANSACTION", NULL);

    if (err != CD_OK)
        return err;
    err = body(op, cls);
    if (err == CD_OK)
        err = db_op_query(op, "COMMIT", NULL);
    if (err != CD_OK && !op->broken && db_op_query(op, "ROLLBACK", NULL) != CD_OK)
        op->broken = true;
    return err;
}

cd_err db_op_exists(struct db_op *op, const struct db_stmt *s, struct db_args *in)
{
    struct db_cols cols;
    uint64_t v = 0;
    bool row = false;
    cd_err err;

    db_cols_init(&cols);
    db_col_u64(&cols, &v);
    err = db_op_row(op, s, in, &cols, &row);
    if (err != CD_OK)
        return err;
    return row ? CD_ERR_CONFLICT : CD_ERR_NOT_FOUND;
}

cd_err db_run(db_pool *pool, unsigned lane, const struct db_stmt *s, struct db_args *in,
              uint64_t *affected)
{
    struct db_op op;
    MYSQL_STMT *st = NULL;
    cd_err err;

    err = db_op_begin(pool, &op, lane);
    if (err != CD_OK)
        return err;
    err = db_op_run(&op, s, in, &st);
    if (err == CD_OK && affected != NULL)
        *affected = mysql_stmt_affected_rows(st);
    db_op_end(&op);
    return err;
}

cd_err db_run_row(db_pool *pool, const struct db_stmt *s, struct db_args *in, struct db_cols *cols,
                  bool *row, unsigned *last_errno)
{
    struct db_op op;
    cd_err err;

    *row = false;
    err = db_op_begin(pool, &op, LANE_SMALL);
    if (err != CD_OK)
        return err;
    err = db_op_row(&op, s, in, cols, row);
    if (last_errno != NULL)
        *last_errno = op.last_errno;
    db_op_end(&op);
    return err;
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

/* The pool's copies of the configuration strings, the password wiped. */
static void pool_strings_free(db_pool *p)
{
    if (p->password != NULL)
        explicit_bzero(p->password, strlen(p->password));
    free(p->host);
    free(p->database);
    free(p->user);
    free(p->password);
    free(p->tls_ca);
    free(p->tls_cert);
    free(p->tls_key);
    free(p->hosts_buf);
}

/* p->hosts from the copy of cfg.host: ','-separated, no empty name, at most
 * DB_HOSTS_MAX. */
static cd_err pool_hosts_split(db_pool *p)
{
    char *save = NULL, *tok;
    size_t len = strlen(p->host);

    if (len == 0 || p->host[0] == ',' || p->host[len - 1] == ',' || strstr(p->host, ",,") != NULL)
        return CD_ERR_CONFIG;
    p->hosts_buf = strdup(p->host);
    if (p->hosts_buf == NULL)
        return CD_ERR_NOMEM;
    p->n_hosts = 0;
    for (tok = strtok_r(p->hosts_buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (p->n_hosts == DB_HOSTS_MAX)
            return CD_ERR_CONFIG;
        p->hosts[p->n_hosts++] = tok;
    }
    atomic_init(&p->host_cur, 0);
    return p->n_hosts > 0 ? CD_OK : CD_ERR_CONFIG;
}

static cd_err pool_strings_copy(db_pool *p, const struct db_config *cfg)
{
    bool ok = true;

    p->cfg = *cfg;
    p->cfg.host = p->host = dup_opt(cfg->host, &ok);
    p->cfg.database = p->database = dup_opt(cfg->database, &ok);
    p->cfg.user = p->user = dup_opt(cfg->user, &ok);
    p->cfg.password = p->password = dup_opt(cfg->password, &ok);
    p->cfg.tls_ca = p->tls_ca = dup_opt(cfg->tls_ca, &ok);
    p->cfg.tls_cert = p->tls_cert = dup_opt(cfg->tls_cert, &ok);
    p->cfg.tls_key = p->tls_key = dup_opt(cfg->tls_key, &ok);
    if (!ok)
        return CD_ERR_NOMEM;
    return pool_hosts_split(p);
}

/* The mutex and one condition variable per lane (on the monotonic clock). */
static cd_err pool_sync_init(db_pool *p)
{
    pthread_condattr_t ca;
    cd_err err = CD_ERR_NOMEM;

    if (pthread_condattr_init(&ca) != 0)
        return CD_ERR_NOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&p->cv[LANE_SMALL], &ca) != 0)
        goto out;
    if (pthread_cond_init(&p->cv[LANE_LARGE], &ca) != 0) {
        pthread_cond_destroy(&p->cv[LANE_SMALL]);
        goto out;
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        pthread_cond_destroy(&p->cv[LANE_SMALL]);
        pthread_cond_destroy(&p->cv[LANE_LARGE]);
        goto out;
    }
    err = CD_OK;
out:
    pthread_condattr_destroy(&ca);
    return err;
}

cd_err db_pool_new(const struct db_config *cfg, db_pool **out)
{
    db_pool *p = NULL;
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
    atomic_init(&p->statements, 0);
    atomic_init(&p->connected_once, false);
    err = pool_strings_copy(p, cfg);
    if (err == CD_ERR_CONFIG)
        log_errorx("db: db_host must be a ','-separated list of at most %u host names",
                   DB_HOSTS_MAX);
    p->n_conns = cfg->pool_size + cfg->large_pool_size;
    p->lane_first[LANE_SMALL] = 0;
    p->lane_n[LANE_SMALL] = cfg->pool_size;
    p->lane_first[LANE_LARGE] = cfg->pool_size;
    p->lane_n[LANE_LARGE] = cfg->large_pool_size;
    p->conns = calloc(p->n_conns, sizeof(*p->conns));
    if (err == CD_OK && p->conns == NULL)
        err = CD_ERR_NOMEM;
    if (err == CD_OK)
        err = pool_sync_init(p);
    if (err != CD_OK) {
        pool_strings_free(p);
        free(p->conns);
        free(p);
        return err;
    }
    for (unsigned i = cfg->pool_size; i < p->n_conns; i++)
        p->conns[i].lane = LANE_LARGE;
    *out = p;
    return CD_OK;
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
    pool_strings_free(pool);
    free(pool->conns);
    free(pool);
}

uint64_t db_statement_count(const db_pool *pool)
{
    return atomic_load(&((db_pool *)pool)->statements);
}

cd_err db_ping(db_pool *pool)
{
    struct db_op op;
    cd_err err;

    err = db_op_begin(pool, &op, LANE_SMALL);
    if (err != CD_OK)
        return err;
    if (mysql_ping(op.c->my) != 0)
        err = db_op_err(&op, NULL);
    db_op_end(&op);
    return err;
}
