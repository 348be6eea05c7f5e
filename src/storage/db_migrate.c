/* db_migrate.c: the schema migrations, applied at start-up under a named
 * lock, and the schema version they reached. */
#include "storage/db_int.h"

#include <stdio.h>

#include <mysqld_error.h>

#include "log/log.h"

#define SCHEMA_VERSION_SQL "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"

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

/* Issue 14: two-factor columns, sessions and application passwords. Neither
 * table holds a client secret: a session row is keyed by a keyed hash of its
 * token, an application password is stored as a keyed verifier; the user's
 * secret key in each is sealed under a key derived from that secret. */
static const char *const migration_3[] = {
    "ALTER TABLE users ADD COLUMN IF NOT EXISTS totp_ct VARBINARY(128) NULL",
    "ALTER TABLE users ADD COLUMN IF NOT EXISTS totp_state TINYINT UNSIGNED NOT NULL DEFAULT 0",
    "ALTER TABLE users ADD COLUMN IF NOT EXISTS totp_last_step BIGINT UNSIGNED NOT NULL DEFAULT 0",
    "CREATE TABLE IF NOT EXISTS sessions ("
    " id_hash BINARY(32) NOT NULL PRIMARY KEY,"
    " user_id BIGINT UNSIGNED NOT NULL,"
    " auth_gen INT UNSIGNED NOT NULL,"
    " sk_wrapped VARBINARY(192) NOT NULL,"
    " mk_version INT UNSIGNED NOT NULL,"
    " created_at DATETIME(6) NOT NULL,"
    " expires_at DATETIME(6) NOT NULL,"
    " KEY sessions_user_created (user_id, created_at),"
    " KEY sessions_expires (expires_at),"
    " CONSTRAINT sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE"
    ") ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS app_passwords ("
    " id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " user_id BIGINT UNSIGNED NOT NULL,"
    " name_ct VARBINARY(320) NOT NULL,"
    " verifier BINARY(32) NOT NULL,"
    " sk_wrapped VARBINARY(128) NOT NULL,"
    " mk_version INT UNSIGNED NOT NULL,"
    " created_at DATETIME(6) NOT NULL,"
    " last_used_at DATETIME(6) NULL,"
    " KEY app_passwords_user (user_id),"
    " CONSTRAINT app_passwords_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE"
    ") ENGINE=InnoDB",
    NULL,
};

static const struct migration migrations[] = {
    {1, migration_1},
    {2, migration_2},
    {3, migration_3},
};

/* Applies every migration above current, each recorded when done. */
static cd_err migrate_apply(struct db_op *op, long long current)
{
    char sql[128];
    cd_err err;

    for (size_t i = 0; i < sizeof(migrations) / sizeof(migrations[0]); i++) {
        const struct migration *m = &migrations[i];
        if ((long long)m->version <= current)
            continue;
        /* DDL commits implicitly in MariaDB: every statement is idempotent
         * so a crash between it and the record below is repaired by a rerun. */
        for (const char *const *s = m->sql; *s != NULL; s++) {
            err = db_op_query(op, *s, NULL);
            if (err != CD_OK)
                return err;
        }
        snprintf(sql, sizeof(sql),
                 "INSERT INTO schema_migrations (version, applied_at) VALUES (%u, "
                 "UTC_TIMESTAMP(6))",
                 m->version);
        err = db_op_query(op, sql, NULL);
        if (err != CD_OK)
            return err;
        log_info("db: applied schema migration %u", m->version);
    }
    return CD_OK;
}

cd_err db_migrate(db_pool *pool)
{
    struct db_op op;
    cd_err err;
    long long got = 0, current = 0;
    bool locked = false;

    err = db_op_begin(pool, &op, LANE_SMALL);
    if (err != CD_OK)
        return err;
    /* Replicas starting together: one applies, the others wait, then see
     * the migrations recorded and do nothing. */
    err = db_op_query(&op, "SELECT GET_LOCK('confidoc_migrate', 30)", &got);
    if (err != CD_OK)
        goto out;
    if (got != 1) {
        log_errorx("db: migration lock not obtained within 30 s");
        err = CD_ERR_TIMEOUT;
        goto out;
    }
    locked = true;
    err = db_op_query(&op,
                      "CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL PRIMARY"
                      " KEY, applied_at DATETIME(6) NOT NULL) ENGINE=InnoDB",
                      NULL);
    if (err == CD_OK)
        err = db_op_query(&op, SCHEMA_VERSION_SQL, &current);
    if (err == CD_OK)
        err = migrate_apply(&op, current);
out:
    if (locked && !op.broken &&
        db_op_query(&op, "SELECT RELEASE_LOCK('confidoc_migrate')", NULL) != CD_OK && err == CD_OK)
        err = CD_ERR_UNAVAILABLE;
    db_op_end(&op);
    return err;
}

static const struct db_stmt st_schema_version = {ST_SCHEMA_VERSION, "schema version",
                                                 SCHEMA_VERSION_SQL};

cd_err db_schema_version(db_pool *pool, unsigned *version)
{
    struct db_cols cols;
    int64_t v = 0;
    unsigned e = 0;
    bool row = false;
    cd_err err;

    db_cols_init(&cols);
    db_col_i64(&cols, &v);
    err = db_run_row(pool, &st_schema_version, NULL, &cols, &row, &e);
    if (err != CD_OK && e == ER_NO_SUCH_TABLE) {
        err = CD_OK; /* no table yet: nothing applied */
        row = false;
    }
    if (err != CD_OK)
        return err;
    if (!row || cols.isnull[0])
        v = 0;
    if (v < 0 || v > (int64_t)UINT32_MAX)
        return CD_ERR_INTERNAL;
    *version = (unsigned)v;
    return CD_OK;
}
