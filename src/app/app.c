/* app.c: confidoc-api's life cycle: each module's configuration built from
 * the one configuration, start-up in dependency order, shutdown in reverse. */
#include "app/app.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/file.h"
#include "common/gate.h"
#include "log/log.h"

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

cd_err api_load(struct api *a)
{
    struct cd_diag *diag = &a->diag;
    char first[512];
    enum log_level level;
    cd_err rc;
    size_t n;

    harden_process();
    config_defaults(&a->cfg);
    cd_diag_init(diag);
    /* Any failure to load the configuration is a configuration error to the
     * caller (exit status 2), whatever its cd_err; the cause is in diag. */
    if ((a->config_path != NULL && config_load_file(&a->cfg, a->config_path, diag) != CD_OK) ||
        config_apply_env(&a->cfg, diag) != CD_OK || config_validate(&a->cfg, diag) != CD_OK) {
        cd_diag_first(diag, first, sizeof(first));
        fprintf(stderr, "confidoc-api: %s\n", first);
        return CD_ERR_CONFIG;
    }
    (void)log_level_parse(a->cfg.log_level, &level);
    log_init("confidoc-api", level);
    {
        enum log_format format = LOG_FORMAT_TEXT;

        enum log_stream stream = LOG_STREAM_STDERR;

        (void)log_format_parse(a->cfg.log_format, &format); /* checked by config_validate */
        (void)log_stream_parse(a->cfg.log_stream, &stream);
        log_set_format(format);
        log_set_stream(stream);
    }
    tune_allocator();
    if (crypto_init() != CD_OK) {
        log_errorx("cannot initialise libsodium");
        return CD_ERR_INTERNAL;
    }
    {
        enum crypto_doc_aead aead;

        if (crypto_doc_choose_aead(a->cfg.document_aead, &aead) != CD_OK)
            return CD_ERR_CONFIG; /* not reached: config_validate checked the name */
        if (!a->migrate_only)
            log_info("documents: new versions sealed with %s (document_aead = %s)",
                     aead == CRYPTO_DOC_AES256GCM ? "AES-256-GCM" : "XChaCha20-Poly1305",
                     a->cfg.document_aead);
    }
    if (!a->migrate_only && crypto_keyring_load(a->cfg.master_key_file, &a->kr, diag) != CD_OK) {
        cd_diag_first(diag, first, sizeof(first));
        log_errorx("master key: %s", first);
        return CD_ERR_CONFIG;
    }
    a->loaded = true;
    a->acfg = (struct auth_config){
        .pwparams = {a->cfg.argon2_opslimit, (size_t)a->cfg.argon2_memlimit_kib * 1024u},
        .max_concurrent_hashes = a->cfg.argon2_max_concurrent,
        .hash_wait_ms = 10000,
        .cache_entries = a->cfg.auth_cache_entries,
        .cache_ttl_s = a->cfg.auth_cache_ttl,
        .cache_max_age_s = a->cfg.auth_cache_max_age,
        .session_ttl_s = a->cfg.session_ttl,
        .session_max_per_user = a->cfg.session_max_per_user,
    };
    if (a->cfg.escrow_public_key_file[0] != '\0') {
        if (read_escrow_key(a->cfg.escrow_public_key_file, a->acfg.escrow_pk) != CD_OK) {
            log_errorx("escrow_public_key_file: expected a file of 64 hex digits in %s",
                       a->cfg.escrow_public_key_file);
            return CD_ERR_INTERNAL;
        }
        a->acfg.have_escrow = true;
    }
    if (a->cfg.db_password_file[0] != '\0' &&
        (rc = crypto_secret_file_read(a->cfg.db_password_file, DB_PASSWORD_MAX, &a->dbpass,
                                      NULL)) != CD_OK) {
        log_errorx("cannot read db_password_file %s: %s (a regular file of at most %zu bytes, "
                   "owned by this user or root, no access for others)",
                   a->cfg.db_password_file, cd_strerror(rc), DB_PASSWORD_MAX);
        return CD_ERR_CONFIG;
    }
    if (config_split_list(a->cfg.trusted_proxy_subjects, ';', a->proxies_buf,
                          sizeof(a->proxies_buf), a->app.trusted_proxies, HANDLERS_MAX_PROXIES,
                          &n) != CD_OK) {
        log_errorx("trusted_proxy_subjects: too many subjects");
        return CD_ERR_CONFIG;
    }
    a->app.n_trusted_proxies = n;
    return CD_OK;
}

cd_err api_open_database(struct api *a)
{
    const struct config *cfg = &a->cfg;
    struct db_config dcfg = {
        .host = cfg->db_host,
        .port = cfg->db_port,
        .database = cfg->db_name,
        .user = cfg->db_user,
        .password = a->dbpass != NULL && a->dbpass[0] != '\0' ? a->dbpass : NULL,
        .tls_ca = cfg->db_tls_ca,
        .tls_cert = cfg->db_tls_cert,
        .tls_key = cfg->db_tls_key,
        .verify_server_name = cfg->db_verify_server_name,
        .pool_size = cfg->db_pool_size,
        /* One connection per large transfer the large gate lets through. */
        .large_pool_size = cfg->max_large_transfers,
        .connect_timeout_s = cfg->db_connect_timeout,
        .io_timeout_s = cfg->db_io_timeout,
        .acquire_timeout_ms = cfg->db_acquire_timeout_ms,
    };
    cd_err rc;

    /* Signals are taken synchronously (api_wait, and between retries below);
     * every thread created from here on inherits the blocked mask. */
    sigemptyset(&a->sigs);
    sigaddset(&a->sigs, SIGTERM);
    sigaddset(&a->sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &a->sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (db_pool_new(&dcfg, &a->db) != CD_OK) {
        log_errorx("cannot create the database pool");
        return CD_ERR_INTERNAL;
    }
    /* The schema must be in place before serving; wait for the database. */
    for (unsigned attempt = 0;; attempt++) {
        struct timespec zero = {0, 0};

        rc = db_migrate(a->db);
        if (rc == CD_OK)
            return CD_OK;
        if (rc != CD_ERR_UNAVAILABLE && rc != CD_ERR_TIMEOUT) {
            log_schema_behind(a->db, rc, a->config_path, a->migrate_only);
            return rc;
        }
        if (a->migrate_only && attempt >= MIGRATE_WAIT_S) {
            log_errorx("database unreachable for %u s; no migration applied", MIGRATE_WAIT_S);
            return CD_ERR_TIMEOUT;
        }
        if (attempt % 10 == 0)
            log_warnx("database unreachable; retrying");
        if (sigtimedwait(&a->sigs, NULL, &zero) > 0)
            return CD_ERR_TIMEOUT;
        sleep(1);
    }
}

static cd_err start_ratelimit(struct api *a)
{
    const struct config *cfg = &a->cfg;
    struct ratelimit_config rcfg = {
        .limit = cfg->rate_limit,
        .window_s = cfg->rate_window,
        .tls_ca = cfg->memcached_tls_ca,
        .tls_cert = cfg->memcached_tls_cert,
        .tls_key = cfg->memcached_tls_key,
        .server_name = cfg->memcached_server_name[0] != '\0' ? cfg->memcached_server_name : NULL,
        .connect_timeout_ms = cfg->memcached_connect_timeout_ms,
        .io_timeout_ms = cfg->memcached_timeout_ms,
        .pool_size = cfg->memcached_pool_size,
        .on_unavailable = strcmp(cfg->rate_limit_on_unavailable, "reject") == 0
                              ? RATELIMIT_FALLBACK_REJECT
                              : RATELIMIT_FALLBACK_LOCAL,
        .login_fail_limit = cfg->login_fail_limit,
        .login_block_base_s = cfg->login_block_base,
        .login_block_max_s = cfg->login_block_max,
    };

    if (config_split_list(cfg->memcached_servers, ',', a->servers_buf, sizeof(a->servers_buf),
                          rcfg.servers, RATELIMIT_MAX_SERVERS, &rcfg.n_servers) != CD_OK) {
        log_errorx("memcached_servers: too many servers");
        return CD_ERR_CONFIG;
    }
    if (config_split_list(cfg->lockout_memcached_servers, ',', a->lockout_buf,
                          sizeof(a->lockout_buf), rcfg.lockout_servers, RATELIMIT_MAX_SERVERS,
                          &rcfg.n_lockout_servers) != CD_OK) {
        log_errorx("lockout_memcached_servers: too many servers");
        return CD_ERR_CONFIG;
    }
    if (ratelimit_new(&rcfg, a->kr, &a->rl) != CD_OK) {
        log_errorx("cannot set up rate limiting");
        return CD_ERR_INTERNAL;
    }
    return CD_OK;
}

static cd_err start_auth(struct api *a)
{
    unsigned converted = 0;
    cd_err rc;

    if (auth_new(&a->acfg, a->kr, a->db, a->rl, &a->au) != CD_OK) {
        log_errorx("cannot set up authentication");
        return CD_ERR_INTERNAL;
    }
    /* Verifiers stored before issue 9 are bound to the master key now; a row
     * left over (failure) still logs in and is converted next time. */
    rc = auth_convert_verifiers(a->au, &converted);
    if (rc != CD_OK)
        log_warnx("verifier conversion stopped: %s", cd_strerror(rc));
    if (converted > 0)
        log_info("bound %u stored verifiers to the master key", converted);
    return CD_OK;
}

static cd_err start_gates(struct api *a)
{
    /* The admission gate for reads dates from thread-per-connection, when 64
     * busy connections were 64 runnable threads. The handler threads
     * (handler_threads) now bound the work done at once, in arrival order, so
     * by default (0) there is no gate and no lock to take for it; a value
     * still sets one up, within the handler threads. */
    unsigned active = a->cfg.max_active_requests;

    if (gate_new(a->cfg.max_large_transfers, &a->app.large) != CD_OK ||
        (active > 0 && gate_new(active, &a->app.active) != CD_OK)) {
        log_errorx("out of memory");
        return CD_ERR_NOMEM;
    }
    return CD_OK;
}

static cd_err start_http(struct api *a)
{
    const struct config *cfg = &a->cfg;
    struct http_server_config hcfg = {
        .bind_addr = cfg->listen_addr,
        .port = cfg->listen_port,
        .tls_cert = cfg->tls_cert,
        .tls_key = cfg->tls_key,
        .client_ca = cfg->client_ca,
        .max_body_bytes = cfg->max_body_bytes,
        .classify = handlers_classify,
        .workers = cfg->http_workers,
        .handler_threads = cfg->handler_threads,
        /* The slow lane runs Argon2id routes: as many as may hash at once. */
        .slow_threads = cfg->argon2_max_concurrent,
        /* The large lane: the requests holding a large place (while the
         * database and crypto work on it), as many again waiting for one. */
        .large_threads = 2 * cfg->max_large_transfers,
        .write_threads = cfg->write_threads,
        .max_header_bytes = cfg->max_header_bytes,
        .max_inflight_body_bytes = cfg->max_inflight_body_bytes,
        .max_connections = cfg->max_connections,
        .connection_timeout_s = cfg->connection_timeout,
        .drain_timeout_s = cfg->drain_timeout,
    };
    cd_err rc;

    if (config_split_list(cfg->allowed_client_subjects, ';', a->subjects_buf,
                          sizeof(a->subjects_buf), hcfg.allowed_subjects, HTTP_MAX_ALLOWED_SUBJECTS,
                          &hcfg.n_allowed_subjects) != CD_OK) {
        log_errorx("allowed_client_subjects: too many subjects");
        return CD_ERR_CONFIG;
    }
    api_metrics_hook(a, &hcfg);
    rc = http_server_start(&hcfg, handlers_dispatch, &a->app, &a->srv);
    if (rc != CD_OK) {
        log_errorx("cannot start the HTTPS server: %s", cd_strerror(rc));
        return rc;
    }
    log_info("listening on %s port %u", cfg->listen_addr, http_server_port(a->srv));
    return CD_OK;
}

cd_err api_start(struct api *a)
{
    unsigned opened = 0;
    cd_err rc = db_pool_warm(a->db, &opened);

    if (rc != CD_OK)
        log_warnx("database pool: %u connections opened at start-up, then: %s (the rest "
                  "open on demand)",
                  opened, cd_strerror(rc));
    rc = start_ratelimit(a);
    if (rc == CD_OK)
        rc = start_auth(a);
    if (rc != CD_OK)
        return rc;
    handlers_init();
    a->app.kr = a->kr;
    a->app.db = a->db;
    a->app.auth = a->au;
    a->app.rl = a->rl;
    a->app.rate_limit = a->cfg.rate_limit;
    a->app.list_page_max = a->cfg.list_page_max;
    a->app.session_ttl = a->cfg.session_ttl;
    rc = start_gates(a);
    if (rc == CD_OK)
        rc = start_http(a);
    if (rc == CD_OK)
        rc = api_metrics_start(a);
    return rc;
}

void api_wait(struct api *a)
{
    int sig;

    do {
        sig = sigwaitinfo(&a->sigs, NULL);
    } while (sig < 0 && errno == EINTR);
    log_info("signal %d: draining", sig);
    api_metrics_stop(a); /* its gauges read a->srv */
    http_server_stop(a->srv);
    a->srv = NULL;
}

void api_stop(struct api *a)
{
    api_metrics_stop(a);
    http_server_stop(a->srv);
    a->srv = NULL;
    gate_free(a->app.large);
    gate_free(a->app.active);
    auth_free(a->au);
    ratelimit_free(a->rl);
    db_pool_free(a->db);
    crypto_keyring_free(a->kr);
    crypto_secure_free(a->dbpass);
    crypto_wipe(a->acfg.escrow_pk, sizeof(a->acfg.escrow_pk));
    if (a->loaded)
        log_info("stopped");
}
