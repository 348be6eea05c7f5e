/* app.h: confidoc-api's life cycle (app.c): load the configuration, open the
 * database (and migrate it), start the service, wait for a signal, stop. Only
 * the program's main uses it. */
#ifndef CONFIDOC_APP_APP_H
#define CONFIDOC_APP_APP_H

#include <signal.h>
#include <stdbool.h>

#include "auth/auth.h"
#include "common/err.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "handlers/handlers.h"
#include "http/http.h"
#include "ratelimit/ratelimit.h"
#include "storage/db.h"

/* Everything the running service holds; zero it before api_load, release it
 * with api_stop (which also stops a started service). */
struct api {
    const char *config_path;
    bool migrate_only; /* --migrate: no master key, no service */
    bool loaded;       /* the configuration and the master key are in */
    struct config cfg;
    struct cd_diag diag; /* start-up problems (configuration, master key) */
    char subjects_buf[CONFIG_STR_MAX], proxies_buf[CONFIG_STR_MAX];
    char servers_buf[CONFIG_STR_MAX], lockout_buf[CONFIG_STR_MAX];
    char *dbpass; /* locked memory (crypto_secret_file_read) */
    struct auth_config acfg;
    crypto_keyring *kr;
    db_pool *db;
    ratelimit *rl;
    auth *au;
    http_server *srv;
    http_server *msrv; /* the /metrics listener, or NULL */
    char msubjects_buf[CONFIG_STR_MAX];
    struct app app;
    sigset_t sigs; /* SIGTERM, SIGINT: taken by api_wait */
};

/* Configuration (file, then CONFIG_<KEY> environment), logging, process
 * hardening, libsodium, the master key (except for --migrate) and the small
 * files the configuration names. CD_ERR_CONFIG for a configuration the
 * operator must fix (exit 2; the message is on stderr or in the log). */
cd_err api_load(struct api *a);

/* Blocks SIGTERM and SIGINT in every thread made from now on, opens the
 * database pool and applies the schema migrations, waiting while the
 * database is unreachable (--migrate: at most a minute; otherwise until a
 * signal, then CD_ERR_TIMEOUT). */
cd_err api_open_database(struct api *a);

/* Rate limiting, authentication, the admission gates and the HTTPS server. */
cd_err api_start(struct api *a);

/* Waits for SIGTERM or SIGINT, then drains the server. */
void api_wait(struct api *a);

/* Stops what runs and frees everything (wipes the secrets). */
void api_stop(struct api *a);

/* api_metrics.c: sets the hook that counts the main server's requests. */
void api_metrics_hook(struct api *a, struct http_server_config *hcfg);
/* Starts the /metrics listener when metrics_listen_addr is set (after the
 * main server: its gauges read a->srv). */
cd_err api_metrics_start(struct api *a);
/* Stops it (before the main server). NULL listener: a no-op. */
void api_metrics_stop(struct api *a);

#endif
