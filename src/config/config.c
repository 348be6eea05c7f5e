/* config.c: table-driven configuration: defaults, file, environment. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "common/num.h"

enum config_type { CT_STR, CT_UINT, CT_ULONG, CT_BOOL };

struct config_key {
    const char *name;
    enum config_type type;
    size_t offset;
    size_t size;            /* for strings: the field's capacity */
    unsigned long min, max; /* for numbers */
    const char *def;        /* default, as text */
};

#define S(f, d)                                                                                    \
    {                                                                                              \
#f, CT_STR, offsetof(struct config, f), sizeof(((struct config *)0)->f), 0, 0, d           \
    }
#define U(f, lo, hi, d)                                                                            \
    {                                                                                              \
#f, CT_UINT, offsetof(struct config, f), 0, lo, hi, d                                      \
    }
#define UL(f, lo, hi, d)                                                                           \
    {                                                                                              \
#f, CT_ULONG, offsetof(struct config, f), 0, lo, hi, d                                     \
    }
#define B(f, d)                                                                                    \
    {                                                                                              \
#f, CT_BOOL, offsetof(struct config, f), 0, 0, 1, d                                        \
    }

static const struct config_key config_keys[] = {
    S(listen_addr, "127.0.0.1"),
    U(listen_port, 0, 65535, "8000"),
    S(tls_cert, ""),
    S(tls_key, ""),
    S(client_ca, ""),
    S(allowed_client_subjects, ""),
    S(trusted_proxy_subjects, ""),
    UL(max_body_bytes, 1024, 1UL << 30, "16777216"),
    UL(max_header_bytes, 1024, 1UL << 20, "16384"),
    UL(max_inflight_body_bytes, 1UL << 20, 1UL << 40, "268435456"),
    U(max_large_transfers, 1, 1024, "8"),
    U(max_active_requests, 0, 100000, "0"),
    U(max_connections, 1, 10000, "512"),
    U(http_workers, 0, 64, "0"),
    U(handler_threads, 0, 1024, "0"),
    U(write_threads, 0, 1024, "0"),
    U(connection_timeout, 1, 3600, "30"),
    U(drain_timeout, 0, 600, "10"),
    U(list_page_max, 1, 10000, "100"),
    S(master_key_file, ""),
    S(escrow_public_key_file, ""),
    U(argon2_memlimit_kib, 19456, 4194304, "19456"),
    U(argon2_opslimit, 2, 64, "2"),
    U(argon2_max_concurrent, 1, 1024, "4"),
    U(auth_cache_entries, 16, 1000000, "4096"),
    U(auth_cache_ttl, 1, 3600, "60"),
    U(auth_cache_max_age, 1, 86400, "3600"),
    U(session_ttl, 60, 2592000, "43200"),
    U(session_max_per_user, 1, 1000, "32"),
    S(db_host, "127.0.0.1"),
    U(db_port, 1, 65535, "3306"),
    S(db_name, "confidoc"),
    S(db_user, "confidoc"),
    S(db_password_file, ""),
    S(db_tls_ca, ""),
    S(db_tls_cert, ""),
    S(db_tls_key, ""),
    B(db_verify_server_name, "true"),
    U(db_pool_size, 1, 1024, "64"),
    U(db_connect_timeout, 1, 60, "3"),
    U(db_io_timeout, 1, 600, "30"),
    U(db_acquire_timeout_ms, 1, 60000, "5000"),
    U(rate_limit, 1, 100000000, "10"),
    U(rate_window, 1, 86400, "60"),
    S(memcached_servers, ""),
    S(lockout_memcached_servers, ""),
    S(memcached_tls_ca, ""),
    S(memcached_tls_cert, ""),
    S(memcached_tls_key, ""),
    S(memcached_server_name, ""),
    U(memcached_timeout_ms, 1, 10000, "50"),
    U(memcached_connect_timeout_ms, 1, 10000, "250"),
    U(memcached_pool_size, 1, 256, "64"),
    S(rate_limit_on_unavailable, "local"),
    U(login_fail_limit, 1, 1000000, "10"),
    U(login_block_base, 1, 86400, "1"),
    U(login_block_max, 1, 86400, "900"),
    S(metrics_listen_addr, ""),
    U(metrics_port, 0, 65535, "9464"),
    S(metrics_tls_cert, ""),
    S(metrics_tls_key, ""),
    S(metrics_tls_ca, ""),
    S(metrics_allowed_subjects, ""),
    S(log_level, "info"),
    S(log_format, "text"),
    S(log_stream, "stderr"),
    S(document_aead, "auto"),
};
#define N_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static const struct config_key *config_find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strlen(config_keys[i].name) == len && strncmp(config_keys[i].name, name, len) == 0)
            return &config_keys[i];
    }
    return NULL;
}

/* Parses value into the field of k; writes a reason to why on failure. */
static cd_err config_set(struct config *cfg, const struct config_key *k, const char *value,
                         const char **why)
{
    char *field = (char *)cfg + k->offset;
    uint64_t v;

    switch (k->type) {
    case CT_STR:
        if (strlen(value) >= k->size) {
            *why = "value too long";
            return CD_ERR_CONFIG;
        }
        memcpy(field, value, strlen(value) + 1);
        return CD_OK;
    case CT_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0 || strcmp(value, "yes") == 0)
            *(bool *)(void *)field = true;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0 || strcmp(value, "no") == 0)
            *(bool *)(void *)field = false;
        else {
            *why = "expected true or false";
            return CD_ERR_CONFIG;
        }
        return CD_OK;
    case CT_UINT:
    case CT_ULONG:
        if (num_parse(value, strlen(value), UINT64_MAX, &v) != CD_OK) {
            *why = "expected a non-negative integer";
            return CD_ERR_CONFIG;
        }
        if (v < k->min || v > k->max) {
            *why = "out of range";
            return CD_ERR_CONFIG;
        }
        if (k->type == CT_UINT)
            *(unsigned *)(void *)field = (unsigned)v;
        else
            *(unsigned long *)(void *)field = (unsigned long)v;
        return CD_OK;
    }
    *why = "unknown type";
    return CD_ERR_CONFIG;
}

void config_defaults(struct config *cfg)
{
    const char *why;

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < N_KEYS; i++)
        (void)config_set(cfg, &config_keys[i], config_keys[i].def, &why);
}

static char *config_trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* One "key = value" line (line[0..len), no newline, NUL-terminated at len). */
static cd_err config_line(struct config *cfg, char *line, size_t len, const char *path,
                          unsigned lineno, struct cd_diag *diag)
{
    const struct config_key *k;
    const char *why = NULL;
    char *s, *eq, *key, *value;

    if (len > CONFIG_LINE_MAX) {
        cd_diag_add(diag, "%s:%u: line too long", path, lineno);
        return CD_ERR_CONFIG;
    }
    if (memchr(line, '\0', len) != NULL) {
        cd_diag_add(diag, "%s:%u: NUL byte in line", path, lineno);
        return CD_ERR_CONFIG;
    }
    s = config_trim(line);
    if (*s == '\0' || *s == '#')
        return CD_OK;
    eq = strchr(s, '=');
    if (eq == NULL) {
        cd_diag_add(diag, "%s:%u: expected key = value", path, lineno);
        return CD_ERR_CONFIG;
    }
    *eq = '\0';
    key = config_trim(s);
    value = config_trim(eq + 1);
    k = config_find(key, strlen(key));
    if (k == NULL) {
        cd_diag_add(diag, "%s:%u: unknown key '%.60s'", path, lineno, key);
        return CD_ERR_CONFIG;
    }
    if (config_set(cfg, k, value, &why) != CD_OK) {
        cd_diag_add(diag, "%s:%u: %s: %s", path, lineno, k->name, why);
        return CD_ERR_CONFIG;
    }
    return CD_OK;
}

cd_err config_load_file(struct config *cfg, const char *path, struct cd_diag *diag)
{
    const struct file_read_opts opts = {CONFIG_FILE_MAX, 0, NULL};
    struct file_data f = {0};
    unsigned lineno = 0;
    cd_err rc;

    rc = file_read(path, &opts, &f);
    if (rc != CD_OK) {
        if (rc == CD_ERR_TOO_LARGE)
            cd_diag_add(diag, "%s: larger than %zu bytes", path, (size_t)CONFIG_FILE_MAX);
        else if (rc == CD_ERR_IO || rc == CD_ERR_NOT_FOUND)
            cd_diag_add(diag, "%s: %s: %s", path, f.why, strerror(errno));
        else
            cd_diag_add(diag, "%s: %s", path, f.why != NULL ? f.why : cd_strerror(rc));
        return rc;
    }
    for (size_t off = 0; off < f.len && rc == CD_OK;) {
        char *line = f.data + off;
        char *nl = memchr(line, '\n', f.len - off);
        size_t len = nl != NULL ? (size_t)(nl - line) : f.len - off;

        line[len] = '\0'; /* the newline, or the NUL file_read keeps after the content */
        lineno++;
        rc = config_line(cfg, line, len, path, lineno, diag);
        off += len + 1;
    }
    file_data_release(&f, NULL);
    return rc;
}

cd_err config_apply_env(struct config *cfg, struct cd_diag *diag)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        char var[96] = "CONFIDOC_";
        size_t n = strlen(var);
        const char *value, *why = NULL;

        for (const char *p = config_keys[i].name; *p && n < sizeof(var) - 1; p++)
            var[n++] = (char)toupper((unsigned char)*p);
        var[n] = '\0';
        value = getenv(var);
        if (value == NULL)
            continue;
        if (config_set(cfg, &config_keys[i], value, &why) != CD_OK) {
            cd_diag_add(diag, "environment %s: %s", var, why);
            return CD_ERR_CONFIG;
        }
    }
    return CD_OK;
}

cd_err config_validate(const struct config *cfg, struct cd_diag *diag)
{
    static const struct {
        size_t offset;
        const char *name;
    } required[] = {
        {offsetof(struct config, tls_cert), "tls_cert"},
        {offsetof(struct config, tls_key), "tls_key"},
        {offsetof(struct config, client_ca), "client_ca"},
        {offsetof(struct config, master_key_file), "master_key_file"},
        {offsetof(struct config, db_tls_ca), "db_tls_ca"},
        {offsetof(struct config, db_tls_cert), "db_tls_cert"},
        {offsetof(struct config, db_tls_key), "db_tls_key"},
    };
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (((const char *)cfg + required[i].offset)[0] == '\0') {
            cd_diag_add(diag, "%s is required", required[i].name);
            return CD_ERR_CONFIG;
        }
    }
    if (strcmp(cfg->rate_limit_on_unavailable, "local") != 0 &&
        strcmp(cfg->rate_limit_on_unavailable, "reject") != 0) {
        cd_diag_add(diag, "rate_limit_on_unavailable must be local or reject");
        return CD_ERR_CONFIG;
    }
    if (strcmp(cfg->document_aead, "auto") != 0 && strcmp(cfg->document_aead, "aes256gcm") != 0 &&
        strcmp(cfg->document_aead, "xchacha20poly1305") != 0) {
        cd_diag_add(diag, "document_aead must be auto, aes256gcm or xchacha20poly1305");
        return CD_ERR_CONFIG;
    }
    if (strcmp(cfg->log_level, "debug") != 0 && strcmp(cfg->log_level, "info") != 0 &&
        strcmp(cfg->log_level, "warn") != 0 && strcmp(cfg->log_level, "error") != 0) {
        cd_diag_add(diag, "log_level must be debug, info, warn or error");
        return CD_ERR_CONFIG;
    }
    if (strcmp(cfg->log_stream, "stderr") != 0 && strcmp(cfg->log_stream, "stdout") != 0) {
        cd_diag_add(diag, "log_stream must be stderr or stdout");
        return CD_ERR_CONFIG;
    }
    if (strcmp(cfg->log_format, "text") != 0 && strcmp(cfg->log_format, "json") != 0) {
        cd_diag_add(diag, "log_format must be text or json");
        return CD_ERR_CONFIG;
    }
    if (cfg->memcached_servers[0] != '\0' &&
        (cfg->memcached_tls_ca[0] == '\0' || cfg->memcached_tls_cert[0] == '\0' ||
         cfg->memcached_tls_key[0] == '\0')) {
        cd_diag_add(diag, "memcached_servers needs memcached_tls_ca, _cert and _key");
        return CD_ERR_CONFIG;
    }
    if (cfg->lockout_memcached_servers[0] != '\0' && cfg->memcached_servers[0] == '\0') {
        cd_diag_add(diag, "lockout_memcached_servers needs memcached_servers");
        return CD_ERR_CONFIG;
    }
    if (cfg->login_block_base > cfg->login_block_max) {
        cd_diag_add(diag, "login_block_base must not exceed login_block_max");
        return CD_ERR_CONFIG;
    }
    if (cfg->metrics_listen_addr[0] != '\0' && cfg->metrics_tls_ca[0] == '\0') {
        cd_diag_add(diag, "metrics_listen_addr needs metrics_tls_ca (scrapers use mutual TLS)");
        return CD_ERR_CONFIG;
    }
    if (cfg->metrics_listen_addr[0] != '\0' && cfg->metrics_port != 0 &&
        cfg->metrics_port == cfg->listen_port &&
        strcmp(cfg->metrics_listen_addr, cfg->listen_addr) == 0) {
        cd_diag_add(diag, "metrics_port must differ from listen_port");
        return CD_ERR_CONFIG;
    }
    if (cfg->max_inflight_body_bytes < cfg->max_body_bytes) {
        cd_diag_add(diag, "max_inflight_body_bytes must be at least max_body_bytes");
        return CD_ERR_CONFIG;
    }
    return CD_OK;
}

void config_print(const struct config *cfg, FILE *out)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct config_key *k = &config_keys[i];
        const char *field = (const char *)cfg + k->offset;

        switch (k->type) {
        case CT_STR:
            fprintf(out, "%s = %s\n", k->name, field);
            break;
        case CT_UINT:
            fprintf(out, "%s = %u\n", k->name, *(const unsigned *)(const void *)field);
            break;
        case CT_ULONG:
            fprintf(out, "%s = %lu\n", k->name, *(const unsigned long *)(const void *)field);
            break;
        case CT_BOOL:
            fprintf(out, "%s = %s\n", k->name,
                    *(const bool *)(const void *)field ? "true" : "false");
            break;
        }
    }
}

cd_err config_split_list(const char *src, char sep, char *buf, size_t buflen, const char **items,
                         size_t max, size_t *count)
{
    const char delim[2] = {sep, '\0'};
    size_t n = 0;
    char *save = NULL, *tok;

    if (strlen(src) >= buflen)
        return CD_ERR_TOO_LARGE;
    memcpy(buf, src, strlen(src) + 1);
    for (tok = strtok_r(buf, delim, &save); tok != NULL; tok = strtok_r(NULL, delim, &save)) {
        tok = config_trim(tok);
        if (*tok == '\0')
            continue;
        if (n == max)
            return CD_ERR_TOO_LARGE;
        items[n++] = tok;
    }
    *count = n;
    return CD_OK;
}
