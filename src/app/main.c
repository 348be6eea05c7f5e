/* main.c: confidoc-api: configuration, start-up, signal handling and shutdown. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "auth/auth.h"
#include "common/codec.h"
#include "common/file.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "handlers/handlers.h"
#include "http/http.h"
#include "log/log.h"
#include "ratelimit/ratelimit.h"
#include "storage/db.h"

#define CONFIDOC_VERSION "0.1.0"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: confidoc-api --config FILE [--check-config]\n"
            "       confidoc-api --version\n"
            "Every configuration key can be overridden by CONFIDOC_<KEY> in the environment.\n");
    fprintf(out, "       confidoc-api --config FILE --migrate\n"
                 "applies the database schema migrations with an account that may change the\n"
                 "schema (e.g. CONFIDOC_DB_USER and its certificate) and exits.\n");
}

/* The escrow public key: one line of 64 hex digits (a newline may follow). */
static cd_err read_escrow_key(const char *path, uint8_t pk[32])
{
    struct file_read_opts opts = {.max = 256, .flags = 0, .mem = NULL};
    struct file_data f;
    cd_err rc = file_read(path, &opts, &f);

    if (rc != CD_OK)
        return rc;
    rc = codec_hex_decode(f.data, strcspn(f.data, "\r\n"), pk, 32);
    file_data_release(&f, NULL);
    return rc;
}

/* Keeps secrets out of core dumps and away from ptrace by other users. */
static void harden_process(void)
{
    struct rlimit zero = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &zero);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* The allocator, made predictable. By default glibc maps blocks over 128 KiB
 * with mmap and, once such a block is freed, raises that threshold to its
 * size (up to 32 MiB): after the first Argon2id, its 19 MiB areas come from
 * the heap and stay there, and documents go back and forth between the two
 * (a fresh mapping costs a page fault per 4 KiB touched). Fixed thresholds:
 * blocks up to 4 MiB (documents, bodies) come from the heap and are reused,
 * their number bounded by max_large_transfers and max_inflight_body_bytes
 * (docs/performance.md); larger ones (Argon2id) are mapped and returned at
 * once. Few arenas: each keeps its own free blocks. */
static void tune_allocator(void)
{
    if (mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024) != 1 ||
        mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024) != 1 || mallopt(M_ARENA_MAX, 4) != 1)
        log_warnx("allocator tuning refused; large documents will cost more CPU");
}

/* The database password's largest size (db_password_file). */
#define DB_PASSWORD_MAX ((size_t)1024)
/* confidoc-api --migrate waits at most this long for the database. */
#define MIGRATE_WAIT_S 60u

/* A migration that failed for another reason than reachability: usually an
 * account that may not change the schema (the stack's API account has only
 * SELECT, INSERT, UPDATE, DELETE): say what to run. */
static void log_schema_behind(db_pool *db, cd_err rc, const char *config_path, bool migrate_only)
{
    unsigned version = 0;
    bool known = db_schema_version(db, &version) == CD_OK;

    log_errorx("database migration failed: %s (schema at version %s%u)", cd_strerror(rc),
               known ? "" : "unknown, ", version);
    if (!migrate_only)
        log_errorx("if this account may not change the schema, apply the migrations first with "
                   "an account that may: confidoc-api --config %s --migrate (scripts/stack.sh up "
                   "does this with its migration account)",
                   config_path != NULL ? config_path : "FILE");
}

int main(int argc, char **argv)
{
    static struct config cfg;
    const char *config_path = NULL;
    bool check_only = false, migrate_only = false;
    char err[512], subjects_buf[CONFIG_STR_MAX], proxies_buf[CONFIG_STR_MAX],
        servers_buf[CONFIG_STR_MAX], lockout_buf[CONFIG_STR_MAX], *dbpass = NULL;
    crypto_keyring *kr = NULL;
    db_pool *db = NULL;
    ratelimit *rl = NULL;
    auth *au = NULL;
    http_server *srv = NULL;
    struct app app;
    sigset_t sigs;
    enum log_level level;
    int status = 1, sig, n;
    cd_err rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check_only = true;
        } else if (strcmp(argv[i], "--migrate") == 0) {
            migrate_only = true;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("confidoc-api %s\n", CONFIDOC_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    harden_process();
    config_defaults(&cfg);
    if ((config_path != NULL && config_load_file(&cfg, config_path, err, sizeof(err)) != CD_OK) ||
        config_apply_env(&cfg, err, sizeof(err)) != CD_OK ||
        config_validate(&cfg, err, sizeof(err)) != CD_OK) {
        fprintf(stderr, "confidoc-api: %s\n", err);
        return 2;
    }
    (void)log_level_parse(cfg.log_level, &level);
    log_init("confidoc-api", level);
    tune_allocator();

    if (crypto_init() != CD_OK) {
        log_errorx("cannot initialise libsodium");
        return 1;
    }
    if (!migrate_only && crypto_keyring_load(cfg.master_key_file, &kr, err, sizeof(err)) != CD_OK) {
        log_errorx("master key: %s", err);
        return 2;
    }

    memset(&app, 0, sizeof(app));
    struct auth_config acfg = {
        .pwparams = {cfg.argon2_opslimit, (size_t)cfg.argon2_memlimit_kib * 1024u},
        .max_concurrent_hashes = cfg.argon2_max_concurrent,
        .hash_wait_ms = 10000,
        .cache_entries = cfg.auth_cache_entries,
        .cache_ttl_s = cfg.auth_cache_ttl,
        .cache_max_age_s = cfg.auth_cache_max_age,
    };
    if (cfg.escrow_public_key_file[0] != '\0') {
        if (read_escrow_key(cfg.escrow_public_key_file, acfg.escrow_pk) != CD_OK) {
            log_errorx("escrow_public_key_file: expected a file of 64 hex digits in %s",
                       cfg.escrow_public_key_file);
            goto out;
        }
        acfg.have_escrow = true;
    }
    if (cfg.db_password_file[0] != '\0' &&
        (rc = crypto_secret_file_read(cfg.db_password_file, DB_PASSWORD_MAX, &dbpass, NULL)) !=
            CD_OK) {
        log_errorx("cannot read db_password_file %s: %s (a regular file of at most %zu bytes, "
                   "owned by this user or root, no access for others)",
                   cfg.db_password_file, cd_strerror(rc), DB_PASSWORD_MAX);
        goto out;
    }
    n = config_split_list(cfg.trusted_proxy_subjects, ';', proxies_buf, sizeof(proxies_buf),
                          app.trusted_proxies, HANDLERS_MAX_PROXIES);
    if (n < 0) {
        log_errorx("trusted_proxy_subjects: too many subjects");
        goto out;
    }
    app.n_trusted_proxies = (size_t)n;

    if (check_only) {
        config_print(&cfg, stdout);
        printf("# configuration is valid; master key versions: %zu\n",
               crypto_keyring_versions(kr, NULL, 0));
        status = 0;
        goto out;
    }

    /* Signals are taken synchronously by sigwait below; every thread created
     * from here on inherits the blocked mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct db_config dcfg = {
        .host = cfg.db_host,
        .port = cfg.db_port,
        .database = cfg.db_name,
        .user = cfg.db_user,
        .password = dbpass != NULL && dbpass[0] != '\0' ? dbpass : NULL,
        .tls_ca = cfg.db_tls_ca,
        .tls_cert = cfg.db_tls_cert,
        .tls_key = cfg.db_tls_key,
        .verify_server_name = cfg.db_verify_server_name,
        .pool_size = cfg.db_pool_size,
        /* One connection per large transfer the gate below lets through. */
        .large_pool_size = cfg.max_large_transfers,
        .connect_timeout_s = cfg.db_connect_timeout,
        .io_timeout_s = cfg.db_io_timeout,
        .acquire_timeout_ms = cfg.db_acquire_timeout_ms,
    };
    if (db_pool_new(&dcfg, &db) != CD_OK) {
        log_errorx("cannot create the database pool");
        goto out;
    }
    /* The schema must be in place before serving; wait for the database. */
    for (unsigned attempt = 0;; attempt++) {
        struct timespec zero = {0, 0};
        rc = db_migrate(db);
        if (rc == CD_OK)
            break;
        if (rc != CD_ERR_UNAVAILABLE && rc != CD_ERR_TIMEOUT) {
            log_schema_behind(db, rc, config_path, migrate_only);
            goto out;
        }
        if (migrate_only && attempt >= MIGRATE_WAIT_S) {
            log_errorx("database unreachable for %u s; no migration applied", MIGRATE_WAIT_S);
            goto out;
        }
        if (attempt % 10 == 0)
            log_warnx("database unreachable; retrying");
        if (sigtimedwait(&sigs, NULL, &zero) > 0)
            goto out;
        sleep(1);
    }
    if (migrate_only) {
        unsigned version = 0;
        if (db_schema_version(db, &version) == CD_OK)
            printf("confidoc-api: database schema at version %u\n", version);
        status = 0;
        goto out;
    }
    {
        unsigned opened = 0;

        rc = db_pool_warm(db, &opened);
        if (rc != CD_OK)
            log_warnx("database pool: %u connections opened at start-up, then: %s (the rest "
                      "open on demand)",
                      opened, cd_strerror(rc));
    }

    struct ratelimit_config rcfg = {
        .limit = cfg.rate_limit,
        .window_s = cfg.rate_window,
        .tls_ca = cfg.memcached_tls_ca,
        .tls_cert = cfg.memcached_tls_cert,
        .tls_key = cfg.memcached_tls_key,
        .server_name = cfg.memcached_server_name[0] != '\0' ? cfg.memcached_server_name : NULL,
        .connect_timeout_ms = cfg.memcached_connect_timeout_ms,
        .io_timeout_ms = cfg.memcached_timeout_ms,
        .pool_size = cfg.memcached_pool_size,
        .on_unavailable = strcmp(cfg.rate_limit_on_unavailable, "reject") == 0
                              ? RATELIMIT_FALLBACK_REJECT
                              : RATELIMIT_FALLBACK_LOCAL,
        .login_fail_limit = cfg.login_fail_limit,
        .login_block_base_s = cfg.login_block_base,
        .login_block_max_s = cfg.login_block_max,
    };
    n = config_split_list(cfg.memcached_servers, ',', servers_buf, sizeof(servers_buf),
                          rcfg.servers, RATELIMIT_MAX_SERVERS);
    if (n < 0) {
        log_errorx("memcached_servers: too many servers");
        goto out;
    }
    rcfg.n_servers = (size_t)n;
    n = config_split_list(cfg.lockout_memcached_servers, ',', lockout_buf, sizeof(lockout_buf),
                          rcfg.lockout_servers, RATELIMIT_MAX_SERVERS);
    if (n < 0) {
        log_errorx("lockout_memcached_servers: too many servers");
        goto out;
    }
    rcfg.n_lockout_servers = (size_t)n;
    if (ratelimit_new(&rcfg, kr, &rl) != CD_OK) {
        log_errorx("cannot set up rate limiting");
        goto out;
    }
    if (auth_new(&acfg, kr, db, rl, &au) != CD_OK) {
        log_errorx("cannot set up authentication");
        goto out;
    }
    {
        /* Verifiers stored before issue 9 are bound to the master key now;
         * a row left over (failure) still logs in and is converted next time. */
        unsigned converted = 0;

        rc = auth_convert_verifiers(au, &converted);
        if (rc != CD_OK)
            log_warnx("verifier conversion stopped: %s", cd_strerror(rc));
        if (converted > 0)
            log_info("bound %u stored verifiers to the master key", converted);
    }

    handlers_init();
    app.kr = kr;
    app.db = db;
    app.auth = au;
    app.rl = rl;
    app.rate_limit = cfg.rate_limit;
    app.list_page_max = cfg.list_page_max;
    if (gate_new(cfg.max_large_transfers, &app.large) != CD_OK) {
        log_errorx("out of memory");
        goto out;
    }
    {
        /* 0: eight per core, at least 16. Measured on 2 cores with 64
         * connections (docs/performance.md): 8 places cut GET's p99 from
         * 155 to 39 ms but cost a quarter of the throughput (a sleep and
         * wake-up per request); 16 cut it to 51 ms for under 10%; 32 did
         * not help the tail. */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned active = cfg.max_active_requests;

        if (active == 0)
            active = cpus > 2 ? (unsigned)cpus * 8 : 16;
        if (gate_new(active, &app.active) != CD_OK) {
            log_errorx("out of memory");
            goto out;
        }
    }

    struct http_server_config hcfg = {
        .bind_addr = cfg.listen_addr,
        .port = cfg.listen_port,
        .tls_cert = cfg.tls_cert,
        .tls_key = cfg.tls_key,
        .client_ca = cfg.client_ca,
        .max_body_bytes = cfg.max_body_bytes,
        .body_limit = handlers_body_limit,
        .max_header_bytes = cfg.max_header_bytes,
        .max_inflight_body_bytes = cfg.max_inflight_body_bytes,
        .max_connections = cfg.max_connections,
        .connection_timeout_s = cfg.connection_timeout,
        .drain_timeout_s = cfg.drain_timeout,
    };
    n = config_split_list(cfg.allowed_client_subjects, ';', subjects_buf, sizeof(subjects_buf),
                          hcfg.allowed_subjects, HTTP_MAX_ALLOWED_SUBJECTS);
    if (n < 0) {
        log_errorx("allowed_client_subjects: too many subjects");
        goto out;
    }
    hcfg.n_allowed_subjects = (size_t)n;
    rc = http_server_start(&hcfg, handlers_dispatch, &app, &srv);
    if (rc != CD_OK) {
        log_errorx("cannot start the HTTPS server: %s", cd_strerror(rc));
        goto out;
    }
    log_info("listening on %s port %u", cfg.listen_addr, http_server_port(srv));

    do {
        sig = sigwaitinfo(&sigs, NULL);
    } while (sig < 0 && errno == EINTR);
    log_info("signal %d: draining", sig);
    http_server_stop(srv);
    srv = NULL;
    status = 0;
out:
    http_server_stop(srv);
    gate_free(app.large);
    gate_free(app.active);
    auth_free(au);
    ratelimit_free(rl);
    db_pool_free(db);
    crypto_keyring_free(kr);
    crypto_secure_free(dbpass);
    crypto_wipe(acfg.escrow_pk, sizeof(acfg.escrow_pk));
    log_info("stopped");
    return status;
}
