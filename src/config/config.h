/* config.h: confidoc-api's configuration: defaults, a "key = value" file,
 * and CONFIDOC_<KEY> environment overrides for every key. */
#ifndef CONFIDOC_CONFIG_H
#define CONFIDOC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/diag.h"
#include "common/err.h"

#define CONFIG_STR_MAX 1024
#define CONFIG_LINE_MAX (CONFIG_STR_MAX + 126) /* bytes of one line, without its newline */
#define CONFIG_FILE_MAX ((size_t)256 * 1024)

/* One field per key; the key names are the field names (see config.c's table
 * and the README's configuration reference). */
struct config {
    /* HTTPS listener */
    char listen_addr[CONFIG_STR_MAX];
    unsigned listen_port;
    char tls_cert[CONFIG_STR_MAX];
    char tls_key[CONFIG_STR_MAX];
    char client_ca[CONFIG_STR_MAX];
    char allowed_client_subjects[CONFIG_STR_MAX]; /* ';'-separated DNs; empty: any */
    char trusted_proxy_subjects[CONFIG_STR_MAX]; /* ';'-separated DNs whose X-Real-IP is believed */
    unsigned long max_body_bytes;
    unsigned long max_header_bytes;
    unsigned long max_inflight_body_bytes;
    unsigned max_connections;
    unsigned connection_timeout;
    unsigned drain_timeout;
    unsigned list_page_max;
    /* keys */
    char master_key_file[CONFIG_STR_MAX];
    char escrow_public_key_file[CONFIG_STR_MAX]; /* optional */
    /* passwords */
    unsigned argon2_memlimit_kib;
    unsigned argon2_opslimit;
    unsigned argon2_max_concurrent;
    unsigned auth_cache_entries;
    unsigned auth_cache_ttl;
    unsigned auth_cache_max_age;
    unsigned max_large_transfers;
    unsigned max_active_requests;
    unsigned http_workers;         /* event-loop threads; 0: per core (http.h) */
    unsigned handler_threads;      /* threads running handlers (the normal lane) */
    unsigned write_threads;        /* threads of the write lane */
    unsigned session_ttl;          /* seconds a login session lasts */
    unsigned session_max_per_user; /* sessions one account keeps; the oldest go first */
    /* database */
    char db_host[CONFIG_STR_MAX];
    unsigned db_port;
    char db_name[CONFIG_STR_MAX];
    char db_user[CONFIG_STR_MAX];
    char db_password_file[CONFIG_STR_MAX]; /* optional */
    char db_tls_ca[CONFIG_STR_MAX];
    char db_tls_cert[CONFIG_STR_MAX];
    char db_tls_key[CONFIG_STR_MAX];
    bool db_verify_server_name;
    unsigned db_pool_size;
    unsigned db_connect_timeout;
    unsigned db_io_timeout;
    unsigned db_acquire_timeout_ms;
    /* rate limiting */
    unsigned rate_limit;
    unsigned rate_window;
    char memcached_servers[CONFIG_STR_MAX]; /* comma-separated host:port; empty: in-process */
    /* comma-separated host:port for lockout counters only; empty: memcached_servers */
    char lockout_memcached_servers[CONFIG_STR_MAX];
    char memcached_tls_ca[CONFIG_STR_MAX];
    char memcached_tls_cert[CONFIG_STR_MAX];
    char memcached_tls_key[CONFIG_STR_MAX];
    char memcached_server_name[CONFIG_STR_MAX];
    unsigned memcached_timeout_ms;
    unsigned memcached_connect_timeout_ms;
    unsigned memcached_pool_size;
    char rate_limit_on_unavailable[16]; /* "local" or "reject" */
    unsigned login_fail_limit;
    unsigned login_block_base;
    unsigned login_block_max;
    /* /metrics: a listener of its own, mutual TLS (empty address: off) */
    char metrics_listen_addr[CONFIG_STR_MAX];
    unsigned metrics_port;
    char metrics_tls_cert[CONFIG_STR_MAX];         /* empty: tls_cert */
    char metrics_tls_key[CONFIG_STR_MAX];          /* empty: tls_key */
    char metrics_tls_ca[CONFIG_STR_MAX];           /* CA the scraper's certificate must chain to */
    char metrics_allowed_subjects[CONFIG_STR_MAX]; /* ';'-separated DNs; empty: any of that CA */
    /* logging */
    char log_level[16];
    char log_format[8]; /* "text" or "json" */
    char log_stream[8]; /* "stderr" or "stdout" */
    /* documents: "auto", "aes256gcm" or "xchacha20poly1305" */
    char document_aead[24];
};

/* Fills cfg with the defaults. */
void config_defaults(struct config *cfg);
/* Reads "key = value" lines ('#' starts a comment line) from a file of at
 * most CONFIG_FILE_MAX bytes. Unknown keys, bad values, NUL bytes and lines
 * over CONFIG_LINE_MAX are CD_ERR_CONFIG, with a message naming the file and
 * line in diag (may be NULL). Reading the file fails as common/file.h says
 * (missing: CD_ERR_NOT_FOUND, unreadable: CD_ERR_IO, not a regular file:
 * CD_ERR_CONFIG, too large: CD_ERR_TOO_LARGE), with its message in diag. */
cd_err config_load_file(struct config *cfg, const char *path, struct cd_diag *diag);
/* Applies CONFIDOC_<KEY> variables from the environment (KEY upper-cased). */
cd_err config_apply_env(struct config *cfg, struct cd_diag *diag);
/* Checks required keys and cross-key rules. */
cd_err config_validate(const struct config *cfg, struct cd_diag *diag);
/* Writes every key and value (for --check-config); nothing in the configuration is secret. */
void config_print(const struct config *cfg, FILE *out);
/* Splits a list separated by sep: copies src into buf (buflen) and points at
 * most max items (trimmed, non-empty) into items, their number in *count.
 * CD_ERR_TOO_LARGE when buf or max is too small (*count untouched). Subject
 * lists use ';' (DNs contain commas), server lists ','. */
cd_err config_split_list(const char *src, char sep, char *buf, size_t buflen, const char **items,
                         size_t max, size_t *count);

#endif
