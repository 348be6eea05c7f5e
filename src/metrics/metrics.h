/* metrics.h: process-wide Prometheus metrics for confidoc-api and the CAS.
 *
 * Every series is a slot of a static table whose labels are fixed when the
 * program is built (route patterns from the router's table, HTTP status codes
 * from a fixed list, refusal reasons from an enum), so that recording costs a
 * few relaxed atomic adds and never takes a lock or allocates. Histograms have
 * fixed bucket boundaries (METRICS_BUCKETS_S below). No label value ever
 * identifies a user, a client address, a document or a node: the only text
 * recorded is a route pattern, and, in the CAS, a session (policy) name.
 * metrics_render writes the text exposition format 0.0.4. docs/internals/metrics.md
 * says what each metric means. */
#ifndef CONFIDOC_METRICS_H
#define CONFIDOC_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* What a scrape may render at most (metrics_render: CD_ERR_TOO_LARGE past it). */
#define METRICS_RENDER_MAX ((size_t)512 * 1024)
/* Distinct CAS services (session names) counted; later ones count as "other". */
#define METRICS_CAS_SERVICES 64
/* Longest service name kept (CAS session names are at most 128 bytes). */
#define METRICS_SERVICE_MAX 128

/* The upper bounds of every histogram's buckets, in seconds (and +Inf). */
#define METRICS_BUCKETS_S                                                                          \
    {                                                                                              \
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,     \
            2.5, 5.0, 10.0                                                                         \
    }

/* Database round trips, by kind. */
enum metrics_db_op {
    METRICS_DB_EXECUTE = 0, /* a prepared statement executed */
    METRICS_DB_QUERY,       /* a text query (transaction control, migrations, ping) */
    METRICS_DB__COUNT
};

/* Values read when a scrape renders them (no cost per request). */
enum metrics_gauge {
    METRICS_GAUGE_INFLIGHT = 0,  /* requests begun and not completed */
    METRICS_GAUGE_SLOW_QUEUED,   /* requests waiting for a slow-lane (Argon2id) thread */
    METRICS_GAUGE_LARGE_QUEUED,  /* requests waiting for a large-lane thread */
    METRICS_GAUGE_LARGE_WAITING, /* requests waiting for a large-document place */
    METRICS_GAUGE_LARGE_PLACES,  /* large-document places in all */
    METRICS_GAUGE__COUNT
};

/* Why the CAS refused a release (or a node agent's report). */
enum metrics_cas_reason {
    METRICS_CAS_UNKNOWN_SESSION = 0, /* unknown session, or one without measurements */
    METRICS_CAS_LAUNCHER,            /* the caller is not the confidoc-cas launcher */
    METRICS_CAS_EXECUTABLE,          /* executable hash not allowed */
    METRICS_CAS_UID,                 /* the caller's uid is not the session's */
    METRICS_CAS_CONFIG,              /* a configuration file's hash differs */
    METRICS_CAS_EVIDENCE,            /* hardware evidence missing, refused or not verifiable */
    METRICS_CAS_NODE,                /* node identity not admitted, or a bad node signature */
    METRICS_CAS_PROTOCOL,            /* malformed or out-of-order messages, timeouts */
    METRICS_CAS_OTHER,
    METRICS_CAS_REASON__COUNT
};

/* Which metrics a process exposes. */
enum metrics_set {
    METRICS_SET_API = 0, /* confidoc-api */
    METRICS_SET_CAS,     /* confidoc-cas serve */
};

/* Call once at start-up, before any thread records: takes the route patterns
 * from the router and the start time. Safe to call again (no-op). */
void metrics_init(void);

/* A monotonic clock in nanoseconds, for the durations below. */
uint64_t metrics_now_ns(void);

/* One request completed (answered, refused or cut): route is its route
 * pattern (a string of the router's table, compared by address first; any
 * other string counts as "none"), method its method, status the code sent (0:
 * none), ns its duration. Lock-free; any thread. */
void metrics_http_request(const char *route, const char *method, int status, uint64_t ns);
/* One database round trip of kind op that took ns (ok: no error). */
void metrics_db_round_trip(enum metrics_db_op op, uint64_t ns, bool ok);
/* One memcached request and its answer's first line, ns (ok: no error). */
void metrics_memcached_round_trip(uint64_t ns, bool ok);
/* An Argon2id waits for a hashing slot (begin), and got one or gave up after
 * ns (end): the waiting gauge and the wait histogram. */
void metrics_argon2_wait_begin(void);
void metrics_argon2_wait_end(uint64_t ns);
/* One Argon2id computed (count), ns of its computation. */
void metrics_argon2_hash(uint64_t ns);

/* Where a scrape reads gauge id: fn(cls). Set before the metrics listener
 * starts; fn must be cheap, thread-safe and not block long. */
void metrics_gauge_source(enum metrics_gauge id, uint64_t (*fn)(void *cls), void *cls);

/* The CAS. service: the session (policy) name, at most METRICS_SERVICE_MAX
 * bytes of [A-Za-z0-9._-] (anything else, and names past the first
 * METRICS_CAS_SERVICES, count as "other"). These take a mutex the first time a
 * name is seen; the CAS records from its parent process only. */
void metrics_cas_release(const char *service);
void metrics_cas_refusal(enum metrics_cas_reason reason);
/* A node agent's hello or report answered (accepted or refused). */
void metrics_cas_node_report(bool accepted);
/* One audit line appended (ok) or failed. */
void metrics_cas_audit_write(bool ok);
/* A metrics scrape the CAS answered. */
void metrics_cas_scrape(void);

/* Renders set in the text exposition format 0.0.4 into a malloc'ed,
 * NUL-terminated buffer (*out, *len; free() it). CD_ERR_NOMEM, or
 * CD_ERR_TOO_LARGE past METRICS_RENDER_MAX; *out untouched on failure. */
cd_err metrics_render(enum metrics_set set, char **out, size_t *len);

/* The Content-Type of what metrics_render writes. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
