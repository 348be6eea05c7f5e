/* prog_http_echo.c: runs the HTTPS server with an echo handler, for test_http.sh.
 *
 * Usage: prog_http_echo --cert F --key F --ca F [--allow SUBJECT]... [--max-body N]
 *        [--max-header N] [--max-inflight N] [--max-conn N] [--timeout S] [--drain S]
 *        [--small-limit N] [--wipe-check 1]
 * Prints "PORT <n>" once listening on 127.0.0.1, serves until SIGTERM/SIGINT,
 * then drains (http_server_stop) and exits 0.
 * --small-limit N: requests to /small get a body limit of N bytes (classify).
 * --wipe-check 1: after each request's completion, checks that the bytes of
 * its Authorization value and of the last body bytes, in the server's
 * connection memory, were wiped; prints "WIPE ok" or "WIPE LEAK <what>". */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "http/http.h"
#include "log/log.h"

static size_t small_limit = SIZE_MAX;

static void classify(void *ctx, const char *method, const char *path, struct http_class *cls)
{
    (void)ctx;
    (void)method;
    if (strcmp(path, "/small") == 0)
        cls->body_limit = small_limit;
}

/* Where the handler saw a request's Authorization value (the server's memory:
 * http_request_header points into it), how long it was, and the body's first
 * bytes, by connection (req->impl): the handler runs on a lane thread, the
 * completion on the connection's worker. */
#define BODY_MARK_LEN 16
#define SEEN_SLOTS 256
struct seen {
    const void *conn;
    const char *auth;
    size_t auth_len;
    char auth_mark[64];
    unsigned char body_mark[BODY_MARK_LEN];
    int body_marked;
};
static struct seen seen_tab[SEEN_SLOTS];
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

/* The slot of conn (a free one when create), or NULL; seen_lock held. */
static struct seen *seen_slot(const void *conn, int create)
{
    struct seen *free_slot = NULL;

    for (size_t i = 0; i < SEEN_SLOTS; i++) {
        if (seen_tab[i].conn == conn)
            return &seen_tab[i];
        if (free_slot == NULL && seen_tab[i].conn == NULL)
            free_slot = &seen_tab[i];
    }
    if (create && free_slot != NULL)
        free_slot->conn = conn;
    return create ? free_slot : NULL;
}

static void seen_record(const struct http_request *req)
{
    struct seen *s;

    pthread_mutex_lock(&seen_lock);
    s = seen_slot(req->impl, 1);
    if (s != NULL) {
        s->auth = http_request_header(req, "Authorization");
        s->auth_len = s->auth != NULL ? strlen(s->auth) : 0;
        if (s->auth_len > sizeof(s->auth_mark))
            s->auth_len = sizeof(s->auth_mark);
        if (s->auth_len > 0)
            memcpy(s->auth_mark, s->auth, s->auth_len);
        s->body_marked = req->body_len >= BODY_MARK_LEN;
        if (s->body_marked)
            memcpy(s->body_mark, req->body, BODY_MARK_LEN);
    }
    pthread_mutex_unlock(&seen_lock);
}

static void wipe_check(void *ctx, const struct http_request *req)
{
    struct seen *s;
    int leak = 0;

    (void)ctx;
    pthread_mutex_lock(&seen_lock);
    s = seen_slot(req->impl, 0);
    if (s != NULL && s->auth != NULL && memcmp(s->auth, s->auth_mark, s->auth_len) == 0) {
        printf("WIPE LEAK authorization\n");
        leak = 1;
    }
    if (s != NULL && s->body_marked && req->body != NULL &&
        memmem(req->body, req->body_len, s->body_mark, BODY_MARK_LEN) != NULL) {
        printf("WIPE LEAK body\n");
        leak = 1;
    }
    if (!leak)
        printf("WIPE ok auth=%zu body=%zu\n", s != NULL ? s->auth_len : 0, req->body_len);
    fflush(stdout);
    if (s != NULL)
        memset(s, 0, sizeof(*s));
    pthread_mutex_unlock(&seen_lock);
}

static int parse_num(const char *s, unsigned long long *out)
{
    char *end;

    errno = 0;
    *out = strtoull(s, &end, 10);
    return (errno != 0 || end == s || *end != '\0') ? -1 : 0;
}

static void set_str(json_t *o, const char *key, const char *val)
{
    json_object_set_new(o, key, val != NULL ? json_string(val) : json_null());
}

/* Answers JSON describing the request; /sleep?ms=N waits first (N <= 10000). */
static void echo_handler(void *ctx, const struct http_request *req, struct http_response *resp)
{
    json_t *o = json_object();
    char addr[INET6_ADDRSTRLEN] = "";
    unsigned long long ms = 0;
    uint32_t sum = 2166136261u;
    char *text;

    (void)ctx;
    if (o == NULL)
        return;
    seen_record(req);
    if (strcmp(req->path, "/sleep") == 0) {
        const char *v = http_request_query(req, "ms");
        if (v != NULL && parse_num(v, &ms) == 0 && ms <= 10000) {
            struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
        }
    }
    for (size_t i = 0; i < req->body_len; i++)
        sum = (sum ^ req->body[i]) * 16777619u;
    if (req->peer.ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&req->peer)->sin_addr, addr, sizeof(addr));
    else if (req->peer.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&req->peer)->sin6_addr, addr,
                  sizeof(addr));

    set_str(o, "method", req->method);
    set_str(o, "path", req->path);
    json_object_set_new(o, "body_len", json_integer((json_int_t)req->body_len));
    json_object_set_new(o, "body_fnv", json_integer((json_int_t)sum));
    set_str(o, "x_test", http_request_header(req, "X-Test"));
    set_str(o, "content_type", http_request_header(req, "content-type"));
    set_str(o, "q", http_request_query(req, "q"));
    set_str(o, "client_subject", req->client_subject);
    set_str(o, "peer", addr);
    set_str(o, "request_id", req->request_id);
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL)
        return;
    /* json_dumps uses malloc by default: the server may free it. */
    resp->body = (uint8_t *)text;
    resp->body_len = strlen(text);
    resp->content_type = "application/json";
    resp->route = strcmp(req->path, "/sleep") == 0 ? "/sleep" : "/echo";
    resp->status = strcmp(req->path, "/teapot") == 0 ? 418 : 200;
    if (http_response_header(resp, "X-Echo", "yes") != CD_OK)
        resp->status = 500;
}

int main(int argc, char **argv)
{
    struct http_server_config cfg;
    http_server *srv = NULL;
    sigset_t set;
    int sig = 0;
    cd_err err;

    memset(&cfg, 0, sizeof(cfg));
    cfg.bind_addr = "127.0.0.1";
    cfg.max_body_bytes = 16u * 1024 * 1024;
    cfg.max_header_bytes = 16u * 1024;
    cfg.max_inflight_body_bytes = 64u * 1024 * 1024;
    cfg.max_connections = 64;
    cfg.connection_timeout_s = 10;
    cfg.drain_timeout_s = 10;
    cfg.handler_threads = 4;
    cfg.slow_threads = 1;
    cfg.large_threads = 1;
    cfg.write_threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long n = 0;
        if (v == NULL)
            goto usage;
        i++;
        if (strcmp(a, "--cert") == 0)
            cfg.tls_cert = v;
        else if (strcmp(a, "--key") == 0)
            cfg.tls_key = v;
        else if (strcmp(a, "--ca") == 0)
            cfg.client_ca = v;
        else if (strcmp(a, "--bind") == 0)
            cfg.bind_addr = v;
        else if (strcmp(a, "--allow") == 0 && cfg.n_allowed_subjects < HTTP_MAX_ALLOWED_SUBJECTS)
            cfg.allowed_subjects[cfg.n_allowed_subjects++] = v;
        else if (parse_num(v, &n) != 0)
            goto usage;
        else if (strcmp(a, "--max-body") == 0)
            cfg.max_body_bytes = (size_t)n;
        else if (strcmp(a, "--max-header") == 0)
            cfg.max_header_bytes = (size_t)n;
        else if (strcmp(a, "--max-inflight") == 0)
            cfg.max_inflight_body_bytes = (size_t)n;
        else if (strcmp(a, "--max-conn") == 0)
            cfg.max_connections = (unsigned)n;
        else if (strcmp(a, "--timeout") == 0)
            cfg.connection_timeout_s = (unsigned)n;
        else if (strcmp(a, "--drain") == 0)
            cfg.drain_timeout_s = (unsigned)n;
        else if (strcmp(a, "--workers") == 0)
            cfg.workers = (unsigned)n;
        else if (strcmp(a, "--handler-threads") == 0)
            cfg.handler_threads = (unsigned)n;
        else if (strcmp(a, "--small-limit") == 0) {
            small_limit = (size_t)n;
            cfg.classify = classify;
        } else if (strcmp(a, "--wipe-check") == 0)
            cfg.completed_hook = n != 0 ? wipe_check : NULL;
        else
            goto usage;
    }

    log_init("prog_http_echo", LOG_LEVEL_INFO);
    /* Every thread inherits this mask; the main thread takes the signals. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    err = http_server_start(&cfg, echo_handler, NULL, &srv);
    if (err != CD_OK) {
        fprintf(stderr, "http_server_start: %s\n", cd_strerror(err));
        return 1;
    }
    printf("PORT %u\n", http_server_port(srv));
    fflush(stdout);
    sigwait(&set, &sig);
    http_server_stop(srv);
    fprintf(stderr, "stopped after signal %d\n", sig);
    return 0;

usage:
    fprintf(stderr, "usage: prog_http_echo --cert F --key F --ca F [--allow SUBJECT]... "
                    "[--max-body N] [--max-header N] [--max-inflight N] [--max-conn N] "
                    "[--timeout S] [--drain S] [--workers N] [--handler-threads N] [--bind ADDR] "
                    "[--small-limit N] [--wipe-check 1]\n");
    return 2;
}
