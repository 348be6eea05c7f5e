/* metrics.c: static tables of relaxed atomic counters and histograms, and their
 * rendering in the Prometheus text exposition format 0.0.4. */
#include "metrics/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "router/router.h"

/* Route slots: the router's patterns, then "none" (no route: 404, early refusals). */
#define METRICS_ROUTES_MAX 32
#define METRICS_N_BUCKETS 16

static const double bucket_s[METRICS_N_BUCKETS] = METRICS_BUCKETS_S;
/* The same bounds in nanoseconds (filled by metrics_init). */
static uint64_t bucket_ns[METRICS_N_BUCKETS];

/* Non-cumulative counts per bucket (the last one is +Inf only), and the sum:
 * one add each per observation. _count is the sum of the buckets, so that
 * +Inf always equals _count in one scrape. */
struct hist {
    _Atomic uint64_t b[METRICS_N_BUCKETS + 1];
    _Atomic uint64_t sum_ns;
};

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "other"};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

static const int statuses[] = {200, 201, 204, 304, 400, 401, 403, 404, 405, 408, 409,
                               411, 413, 414, 415, 422, 429, 431, 500, 502, 503, 504};
#define N_STATUSES (sizeof(statuses) / sizeof(statuses[0]))
/* Slot N_STATUSES: any other code (and 0: no answer sent). */
#define N_STATUS_SLOTS (N_STATUSES + 1)

static const char *const db_ops[METRICS_DB__COUNT] = {"execute", "query"};

static const char *const cas_reasons[METRICS_CAS_REASON__COUNT] = {
    "unknown_session", "launcher", "executable", "uid",  "config",
    "evidence",        "node",     "protocol",   "other"};

static const char *route_names[METRICS_ROUTES_MAX];
static size_t n_routes; /* the router's patterns; slot n_routes is "none" */
static double start_time_s;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static _Atomic uint64_t http_requests[METRICS_ROUTES_MAX][N_METHODS][N_STATUS_SLOTS];
static struct hist http_duration[METRICS_ROUTES_MAX];
static struct hist db_rt[METRICS_DB__COUNT];
static _Atomic uint64_t db_errors[METRICS_DB__COUNT];
static struct hist mc_rt;
static _Atomic uint64_t mc_errors;
static _Atomic int64_t argon2_waiting;
static struct hist argon2_wait;
static struct hist argon2_hash;

static struct {
    uint64_t (*fn)(void *cls);
    void *cls;
} gauges[METRICS_GAUGE__COUNT];

static pthread_mutex_t cas_lock = PTHREAD_MUTEX_INITIALIZER;
static char cas_service_names[METRICS_CAS_SERVICES][METRICS_SERVICE_MAX + 1];
static _Atomic size_t n_cas_services;
static _Atomic uint64_t cas_releases[METRICS_CAS_SERVICES + 1]; /* last: "other" */
static _Atomic uint64_t cas_refusals[METRICS_CAS_REASON__COUNT];
static _Atomic uint64_t cas_node[2];  /* refused, accepted */
static _Atomic uint64_t cas_audit[2]; /* failed, ok */
static _Atomic uint64_t cas_scrapes;

static void init_tables(void)
{
    const char *p;
    struct timespec ts;

    for (size_t i = 0; i < METRICS_N_BUCKETS; i++)
        bucket_ns[i] = (uint64_t)(bucket_s[i] * 1e9 + 0.5);
    while (n_routes < METRICS_ROUTES_MAX - 1 && (p = router_pattern(n_routes)) != NULL)
        route_names[n_routes++] = p;
    route_names[n_routes] = "none";
    clock_gettime(CLOCK_REALTIME, &ts);
    start_time_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void metrics_init(void)
{
    pthread_once(&init_once, init_tables);
}

uint64_t metrics_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void hist_observe(struct hist *h, uint64_t ns)
{
    size_t i = 0;

    while (i < METRICS_N_BUCKETS && ns > bucket_ns[i])
        i++;
    atomic_fetch_add_explicit(&h->b[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

/* The slot of a route pattern: by address (the router's own strings), else
 * by content, else "none". */
static size_t route_slot(const char *route)
{
    if (route == NULL || route[0] != '/') /* "-": no route */
        return n_routes;
    for (size_t i = 0; i < n_routes; i++) {
        if (route == route_names[i])
            return i;
    }
    for (size_t i = 0; i < n_routes; i++) {
        if (strcmp(route, route_names[i]) == 0)
            return i;
    }
    return n_routes;
}

static size_t method_slot(const char *m)
{
    if (m == NULL)
        return N_METHODS - 1;
    for (size_t i = 0; i < N_METHODS - 1; i++) {
        if (strcmp(m, methods[i]) == 0)
            return i;
    }
    return N_METHODS - 1;
}

static size_t status_slot(int status)
{
    for (size_t i = 0; i < N_STATUSES; i++) {
        if (statuses[i] == status)
            return i;
    }
    return N_STATUSES;
}

void metrics_http_request(const char *route, const char *method, int status, uint64_t ns)
{
    size_t r = route_slot(route);

    atomic_fetch_add_explicit(&http_requests[r][method_slot(method)][status_slot(status)], 1,
                              memory_order_relaxed);
    hist_observe(&http_duration[r], ns);
}

void metrics_db_round_trip(enum metrics_db_op op, uint64_t ns, bool ok)
{
    if ((unsigned)op >= METRICS_DB__COUNT)
        return;
    hist_observe(&db_rt[op], ns);
    if (!ok)
        atomic_fetch_add_explicit(&db_errors[op], 1, memory_order_relaxed);
}

void metrics_memcached_round_trip(uint64_t ns, bool ok)
{
    hist_observe(&mc_rt, ns);
    if (!ok)
        atomic_fetch_add_explicit(&mc_errors, 1, memory_order_relaxed);
}

void metrics_argon2_wait_begin(void)
{
    atomic_fetch_add_explicit(&argon2_waiting, 1, memory_order_relaxed);
}

void metrics_argon2_wait_end(uint64_t ns)
{
    atomic_fetch_sub_explicit(&argon2_waiting, 1, memory_order_relaxed);
    hist_observe(&argon2_wait, ns);
}

void metrics_argon2_hash(uint64_t ns)
{
    hist_observe(&argon2_hash, ns);
}

void metrics_gauge_source(enum metrics_gauge id, uint64_t (*fn)(void *cls), void *cls)
{
    if ((unsigned)id >= METRICS_GAUGE__COUNT)
        return;
    gauges[id].fn = fn;
    gauges[id].cls = cls;
}

static bool service_ok(const char *s, size_t *len)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= METRICS_SERVICE_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    *len = n;
    return n > 0;
}

void metrics_cas_release(const char *service)
{
    size_t len = 0;
    size_t slot = METRICS_CAS_SERVICES;

    if (service_ok(service, &len)) {
        size_t n;

        pthread_mutex_lock(&cas_lock);
        n = atomic_load_explicit(&n_cas_services, memory_order_relaxed);
        for (size_t i = 0; i < n && slot == METRICS_CAS_SERVICES; i++) {
            if (strcmp(cas_service_names[i], service) == 0)
                slot = i;
        }
        if (slot == METRICS_CAS_SERVICES && n < METRICS_CAS_SERVICES) {
            memcpy(cas_service_names[n], service, len + 1);
            slot = n;
            atomic_store_explicit(&n_cas_services, n + 1, memory_order_release);
        }
        pthread_mutex_unlock(&cas_lock);
    }
    atomic_fetch_add_explicit(&cas_releases[slot], 1, memory_order_relaxed);
}

void metrics_cas_refusal(enum metrics_cas_reason reason)
{
    if ((unsigned)reason >= METRICS_CAS_REASON__COUNT)
        reason = METRICS_CAS_OTHER;
    atomic_fetch_add_explicit(&cas_refusals[reason], 1, memory_order_relaxed);
}

void metrics_cas_node_report(bool accepted)
{
    atomic_fetch_add_explicit(&cas_node[accepted ? 1 : 0], 1, memory_order_relaxed);
}

void metrics_cas_audit_write(bool ok)
{
    atomic_fetch_add_explicit(&cas_audit[ok ? 1 : 0], 1, memory_order_relaxed);
}

void metrics_cas_scrape(void)
{
    atomic_fetch_add_explicit(&cas_scrapes, 1, memory_order_relaxed);
}

/* ---- rendering ---------------------------------------------------------- */

struct out {
    struct buf b;
    cd_err err;
};

__attribute__((format(printf, 2, 0))) static void vput(struct out *o, const char *fmt, va_list ap)
{
    char line[512];
    int n;

    if (o->err != CD_OK)
        return;
    /* ap was started by the caller (put); the analyzer cannot see across that. */
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    n = vsnprintf(line, sizeof(line), fmt, ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        o->err = CD_ERR_INTERNAL;
        return;
    }
    o->err = buf_add(&o->b, line, (size_t)n);
}

/* Appends one formatted line (at most 511 bytes) unless an error came first. */
__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vput(o, fmt, ap);
    va_end(ap);
}

static void head(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t ld(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* One histogram series: labels is "" or `key="value"`. */
static void hist_put(struct out *o, const char *name, const char *labels, struct hist *h)
{
    const char *sep = labels[0] != '\0' ? "," : "";
    uint64_t cum = 0;

    for (size_t i = 0; i < METRICS_N_BUCKETS; i++) {
        cum += ld(&h->b[i]);
        put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bucket_s[i],
            (unsigned long long)cum);
    }
    cum += ld(&h->b[METRICS_N_BUCKETS]);
    put(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
    if (labels[0] != '\0') {
        put(o, "%s_sum{%s} %.9f\n", name, labels, (double)ld(&h->sum_ns) / 1e9);
        put(o, "%s_count{%s} %llu\n", name, labels, (unsigned long long)cum);
    } else {
        put(o, "%s_sum %.9f\n", name, (double)ld(&h->sum_ns) / 1e9);
        put(o, "%s_count %llu\n", name, (unsigned long long)cum);
    }
}

static void render_http(struct out *o)
{
    char labels[160];

    head(o, "confidoc_http_requests_total", "counter",
         "HTTP requests completed, by route pattern, method and status code "
         "(status \"other\": any other code, or none sent).");
    for (size_t r = 0; r <= n_routes; r++) {
        for (size_t m = 0; m < N_METHODS; m++) {
            for (size_t s = 0; s < N_STATUS_SLOTS; s++) {
                uint64_t v = ld(&http_requests[r][m][s]);
                char code[8];

                if (v == 0)
                    continue;
                if (s < N_STATUSES)
                    snprintf(code, sizeof(code), "%d", statuses[s]);
                else
                    snprintf(code, sizeof(code), "other");
                put(o,
                    "confidoc_http_requests_total{route=\"%s\",method=\"%s\",status=\"%s\"} %llu\n",
                    route_names[r], methods[m], code, (unsigned long long)v);
            }
        }
    }
    head(o, "confidoc_http_request_duration_seconds", "histogram",
         "Time from a request's first byte of headers to its completion, by route pattern.");
    for (size_t r = 0; r <= n_routes; r++) {
        snprintf(labels, sizeof(labels), "route=\"%s\"", route_names[r]);
        hist_put(o, "confidoc_http_request_duration_seconds", labels, &http_duration[r]);
    }
}

static void gauge_put(struct out *o, enum metrics_gauge id, const char *name, const char *help)
{
    if (gauges[id].fn == NULL)
        return;
    head(o, name, "gauge", help);
    put(o, "%s %llu\n", name, (unsigned long long)gauges[id].fn(gauges[id].cls));
}

/* Counters by one label: name{key="values[i]"} v[i] for i < n. */
static void by_label(struct out *o, const char *name, const char *key, const char *const *values,
                     _Atomic uint64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(o, "%s{%s=\"%s\"} %llu\n", name, key, values[i], (unsigned long long)ld(&v[i]));
}

static const char *const node_results[2] = {"refused", "accepted"};
static const char *const audit_results[2] = {"failed", "ok"};

static void render_backends(struct out *o)
{
    char labels[64];

    head(o, "confidoc_db_round_trip_seconds", "histogram",
         "Database round trips (one statement or query and its answer), by kind.");
    for (size_t i = 0; i < METRICS_DB__COUNT; i++) {
        snprintf(labels, sizeof(labels), "op=\"%s\"", db_ops[i]);
        hist_put(o, "confidoc_db_round_trip_seconds", labels, &db_rt[i]);
    }
    head(o, "confidoc_db_errors_total", "counter", "Database round trips that failed, by kind.");
    by_label(o, "confidoc_db_errors_total", "op", db_ops, db_errors, METRICS_DB__COUNT);
    head(o, "confidoc_memcached_round_trip_seconds", "histogram",
         "Memcached round trips (a request and its answer's first line).");
    hist_put(o, "confidoc_memcached_round_trip_seconds", "", &mc_rt);
    head(o, "confidoc_memcached_errors_total", "counter", "Memcached round trips that failed.");
    put(o, "confidoc_memcached_errors_total %llu\n", (unsigned long long)ld(&mc_errors));
    head(o, "confidoc_argon2_queue_length", "gauge",
         "Argon2id computations waiting for a hashing slot now.");
    put(o, "confidoc_argon2_queue_length %lld\n",
        (long long)atomic_load_explicit(&argon2_waiting, memory_order_relaxed));
    head(o, "confidoc_argon2_wait_seconds", "histogram",
         "Time an Argon2id waited for a hashing slot (argon2_max_concurrent).");
    hist_put(o, "confidoc_argon2_wait_seconds", "", &argon2_wait);
    head(o, "confidoc_argon2_hash_seconds", "histogram", "Time of one Argon2id computation.");
    hist_put(o, "confidoc_argon2_hash_seconds", "", &argon2_hash);
    gauge_put(o, METRICS_GAUGE_INFLIGHT, "confidoc_http_requests_in_flight",
              "Requests begun and not yet completed.");
    gauge_put(o, METRICS_GAUGE_SLOW_QUEUED, "confidoc_slow_lane_queue_length",
              "Requests waiting for a thread of the slow (Argon2id) lane.");
    gauge_put(o, METRICS_GAUGE_LARGE_QUEUED, "confidoc_large_lane_queue_length",
              "Requests waiting for a thread of the large-document lane.");
    gauge_put(o, METRICS_GAUGE_LARGE_WAITING, "confidoc_large_gate_waiting",
              "Requests waiting for a large-document place.");
    gauge_put(o, METRICS_GAUGE_LARGE_PLACES, "confidoc_large_gate_places",
              "Large-document places in all (max_large_transfers).");
}

static void render_cas(struct out *o)
{
    size_t n = atomic_load_explicit(&n_cas_services, memory_order_acquire);

    head(o, "confidoc_cas_releases_total", "counter",
         "Secrets released to a measured process, by service (session name).");
    for (size_t i = 0; i < n; i++)
        put(o, "confidoc_cas_releases_total{service=\"%s\"} %llu\n", cas_service_names[i],
            (unsigned long long)ld(&cas_releases[i]));
    put(o, "confidoc_cas_releases_total{service=\"other\"} %llu\n",
        (unsigned long long)ld(&cas_releases[METRICS_CAS_SERVICES]));
    head(o, "confidoc_cas_refusals_total", "counter", "Releases refused, by reason.");
    by_label(o, "confidoc_cas_refusals_total", "reason", cas_reasons, cas_refusals,
             METRICS_CAS_REASON__COUNT);
    head(o, "confidoc_cas_node_reports_total", "counter",
         "Node agents' hellos and reports answered, by result.");
    by_label(o, "confidoc_cas_node_reports_total", "result", node_results, cas_node, 2);
    head(o, "confidoc_cas_audit_writes_total", "counter", "Audit log appends, by result.");
    by_label(o, "confidoc_cas_audit_writes_total", "result", audit_results, cas_audit, 2);
    head(o, "confidoc_cas_scrapes_total", "counter", "Metrics scrapes the CAS answered.");
    put(o, "confidoc_cas_scrapes_total %llu\n", (unsigned long long)ld(&cas_scrapes));
}

cd_err metrics_render(enum metrics_set set, char **out, size_t *len)
{
    struct out o = {.err = CD_OK};
    char *p;

    if (out == NULL || len == NULL)
        return CD_ERR_INVALID;
    metrics_init();
    buf_init(&o.b, METRICS_RENDER_MAX);
    head(&o, "process_start_time_seconds", "gauge",
         "Start time of the process since the Unix epoch, in seconds.");
    put(&o, "process_start_time_seconds %.3f\n", start_time_s);
    if (set == METRICS_SET_CAS) {
        render_cas(&o);
    } else {
        render_http(&o);
        render_backends(&o);
    }
    if (o.err != CD_OK) {
        buf_release(&o.b);
        return o.err;
    }
    p = buf_detach(&o.b, len);
    if (p == NULL)
        return CD_ERR_NOMEM;
    *out = p;
    return CD_OK;
}
