/* config.h: confidoc-api's configuration: defaults, a "key = value" file,
 * and CONFIDOC_<KEY> environment overrides for every key. */
#ifndef CONFIDOC_CONFIG_H
#define CONFIDOC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/err.h"

#define CONFIG_STR_MAX 1024

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
    /* logging */
    char log_level[16];
};

/* Fills cfg with the defaults. */
void config_defaults(struct config *cfg);
/* Reads "key = value" lines ('#' starts a comment line). Unknown keys, bad
 * values and overlong lines are errors naming the file and line. Every
 * failure, a missing or unreadable file too, is CD_ERR_CONFIG (the cause is
 * in err). */
cd_err config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);
/* Applies CONFIDOC_<KEY> variables from the environment (KEY upper-cased). */
cd_err config_apply_env(struct config *cfg, char *err, size_t errlen);
/* Checks required keys and cross-key rules. */
cd_err config_validate(const struct config *cfg, char *err, size_t errlen);
/* Writes every key and value (for --check-config); nothing in the configuration is secret. */
void config_print(const struct config *cfg, FILE *out);
/* Splits a list separated by sep: copies src into buf (buflen) and points at
 * most max items (trimmed, non-empty) into items. Returns the count, or -1
 * when buf or max is too small. Subject lists use ';' (DNs contain commas),
 * server lists ','. */
int config_split_list(const char *src, char sep, char *buf, size_t buflen, const char **items,
                      size_t max);

#endif
