/* api_metrics.c: confidoc-api's /metrics: the hook that counts every request
 * of the main server, the scrape-time gauges, and the listener of its own
 * (mutual TLS, one event-loop worker, a few connections; GET /metrics only). */
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "common/gate.h"
#include "log/log.h"
#include "metrics/metrics.h"

/* The metrics listener's bounds: a scrape is one small GET. */
#define METRICS_MAX_CONNECTIONS 4u
#define METRICS_TIMEOUT_S 10u
#define METRICS_MAX_HEADER_BYTES ((size_t)8 * 1024)
#define METRICS_MAX_BODY_BYTES ((size_t)1024)

static const char NOT_FOUND[] = "{\"detail\":\"Not found\"}";
static const char NOT_ALLOWED[] = "{\"detail\":\"Method not allowed\"}";

/* The main server's hook (http_server_config.observe). */
static void observe(void *ctx, const char *route, const char *method, int status, uint64_t ns)
{
    (void)ctx;
    metrics_http_request(route, method, status, ns);
}

static uint64_t g_inflight(void *cls)
{
    const struct api *a = cls;
    return http_server_inflight(a->srv);
}

static uint64_t g_slow_queued(void *cls)
{
    const struct api *a = cls;
    return http_server_lane_queued(a->srv, HTTP_LANE_SLOW);
}

static uint64_t g_large_queued(void *cls)
{
    const struct api *a = cls;
    return http_server_lane_queued(a->srv, HTTP_LANE_LARGE);
}

static uint64_t g_large_waiting(void *cls)
{
    const struct api *a = cls;
    return a->app.large != NULL ? gate_waiting(a->app.large) : 0;
}

static uint64_t g_large_places(void *cls)
{
    const struct api *a = cls;
    return a->app.large != NULL ? gate_slots(a->app.large) : 0;
}

static void answer_json(struct http_response *resp, int status, const char *json)
{
    size_t n = strlen(json);

    resp->body = malloc(n);
    if (resp->body == NULL)
        return; /* stays 500 */
    memcpy(resp->body, json, n);
    resp->body_len = n;
    resp->content_type = "application/json";
    resp->status = status;
}

/* The metrics listener's one handler. */
static void scrape(void *ctx, const struct http_request *req, struct http_response *resp)
{
    char *text = NULL;
    size_t len = 0;

    (void)ctx;
    resp->route = "/metrics";
    if (strcmp(req->path, "/metrics") != 0) {
        resp->route = "-";
        answer_json(resp, 404, NOT_FOUND);
        return;
    }
    if (strcmp(req->method, "GET") != 0) {
        answer_json(resp, 405, NOT_ALLOWED);
        (void)http_response_header(resp, "Allow", "GET");
        return;
    }
    if (metrics_render(METRICS_SET_API, &text, &len) != CD_OK) {
        log_warnx("metrics: cannot render");
        return; /* 500 */
    }
    resp->body = (uint8_t *)text;
    resp->body_len = len;
    resp->content_type = METRICS_CONTENT_TYPE;
    resp->status = 200;
}

void api_metrics_hook(struct api *a, struct http_server_config *hcfg)
{
    (void)a;
    metrics_init();
    hcfg->observe = observe;
}

cd_err api_metrics_start(struct api *a)
{
    const struct config *cfg = &a->cfg;
    struct http_server_config mcfg = {
        .bind_addr = cfg->metrics_listen_addr,
        .port = cfg->metrics_port,
        .tls_cert = cfg->metrics_tls_cert[0] != '\0' ? cfg->metrics_tls_cert : cfg->tls_cert,
        .tls_key = cfg->metrics_tls_key[0] != '\0' ? cfg->metrics_tls_key : cfg->tls_key,
        .client_ca = cfg->metrics_tls_ca,
        .max_body_bytes = METRICS_MAX_BODY_BYTES,
        .workers = 1,
        .handler_threads = 0, /* the scrape runs on the listener's own worker */
        .slow_threads = 1,
        .large_threads = 1,
        .max_header_bytes = METRICS_MAX_HEADER_BYTES,
        .max_inflight_body_bytes = METRICS_MAX_BODY_BYTES * METRICS_MAX_CONNECTIONS,
        .max_connections = METRICS_MAX_CONNECTIONS,
        .connection_timeout_s = METRICS_TIMEOUT_S,
        .drain_timeout_s = 1,
    };
    cd_err rc;

    if (cfg->metrics_listen_addr[0] == '\0')
        return CD_OK;
    if (config_split_list(cfg->metrics_allowed_subjects, ';', a->msubjects_buf,
                          sizeof(a->msubjects_buf), mcfg.allowed_subjects,
                          HTTP_MAX_ALLOWED_SUBJECTS, &mcfg.n_allowed_subjects) != CD_OK) {
        log_errorx("metrics_allowed_subjects: too many subjects");
        return CD_ERR_CONFIG;
    }
    metrics_gauge_source(METRICS_GAUGE_INFLIGHT, g_inflight, a);
    metrics_gauge_source(METRICS_GAUGE_SLOW_QUEUED, g_slow_queued, a);
    metrics_gauge_source(METRICS_GAUGE_LARGE_QUEUED, g_large_queued, a);
    metrics_gauge_source(METRICS_GAUGE_LARGE_WAITING, g_large_waiting, a);
    metrics_gauge_source(METRICS_GAUGE_LARGE_PLACES, g_large_places, a);
    rc = http_server_start(&mcfg, scrape, a, &a->msrv);
    if (rc != CD_OK) {
        log_errorx("cannot start the metrics listener: %s", cd_strerror(rc));
        return rc;
    }
    log_info("metrics on %s port %u (mutual TLS)", cfg->metrics_listen_addr,
             http_server_port(a->msrv));
    return CD_OK;
}

void api_metrics_stop(struct api *a)
{
    http_server_stop(a->msrv);
    a->msrv = NULL;
}
