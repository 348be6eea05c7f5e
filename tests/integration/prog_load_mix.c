/* prog_load_mix.c: the mixed-load driver of test_load_mix.sh. It opens CONNS
 * concurrent keep-alive HTTP/1.1 connections to confidoc-api with mutual TLS
 * (libcurl's multi interface, one easy handle per connection, one thread) and
 * sends REQS requests on each: reads (GET /users/me, GET of 1 KiB documents),
 * writes (PUT of a small document of the connection's own, then GET back),
 * large transfers (PUT and GET of 1 MiB documents), slow uploads (the body
 * trickled over about two seconds), slow reads (receive speed capped) and two
 * wrong credentials (401). Every answer is checked: status and body. A 503 of
 * the large-transfer admission is retried after its Retry-After and counted;
 * anything else unexpected, a transport error or a reset fails the run.
 *
 * Usage: prog_load_mix URL CERTDIR DOCDIR USERS CONNS REQS
 *   URL      https://localhost:PORT
 *   CERTDIR  ca.crt, proxy.crt, proxy.key (tests/lib/certs.sh)
 *   DOCDIR   what test_load_mix.sh created: for user k (0..USERS-1) named
 *            loadk with password loadpassk, documents 1..4 (small-k-1.bin ...,
 *            1 KiB each) and 100 (large-k.bin, 1 MiB)
 * Prints the counts by kind; exit status 0 only when every answer was right. */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SMALL_LEN ((size_t)1024)
#define LARGE_LEN ((size_t)1024 * 1024)
#define SMALL_DOCS 4
#define LARGE_DOC_ID 100
#define MAX_USERS 16
#define MAX_CONNS 1024
#define BODY_MAX (2 * LARGE_LEN)
/* A slow upload sends its body in TRICKLE_CHUNK pieces, one every TRICKLE_MS. */
#define TRICKLE_CHUNK 64
#define TRICKLE_MS 125
/* A slow reader takes at most this many bytes a second. */
#define SLOW_RECV_BPS ((curl_off_t)256 * 1024)
#define MAX_503_RETRIES 5
#define RUN_DEADLINE_S 150

enum kind {
    K_ME,
    K_SMALL_GET,
    K_WRITE_PUT,
    K_WRITE_GET,
    K_LARGE_PUT,
    K_LARGE_GET_OWN,
    K_LARGE_GET,
    K_SLOW_PUT,
    K_SLOW_GET,
    K_BAD_PASSWORD,
    K_BAD_USER,
    K_COUNT
};

static const char *const kind_names[K_COUNT] = {
    "GET /users/me",         "GET small content",  "PUT small (own id)", "GET small back",
    "PUT 1 MiB (own id)",    "GET 1 MiB back",     "GET 1 MiB (shared)", "PUT trickled body",
    "GET 1 MiB slow reader", "401 wrong password", "401 unknown user",
};

struct conn {
    CURL *h;
    long doc_id;       /* its document, for writes */
    double wait_until; /* a 503's Retry-After: not in the multi handle until then */
    /* upload */
    const unsigned char *up;
    size_t up_len, up_off;
    double next_chunk;
    /* answer */
    unsigned char *body;
    size_t body_len;
    long retry_after;
    struct curl_slist *hdrs;
    unsigned char *large_own;
    int idx;
    int user;
    int slow_reader;
    int done_reqs;
    int op;         /* the connection's next operation number */
    enum kind kind; /* the request in flight */
    int retries;    /* 503 answers to this request so far */
    int finished;
    int trickle;
    int paused;
    int body_over;
    char userpwd[64];
    char url[256];
    unsigned char small_own[SMALL_LEN];
};

static char base_url[200], ca_path[512], cert_path[512], key_path[512];
static int n_users, n_conns, n_reqs;
/* Record ids of the per-connection documents start here (a second run against
 * the same database uses another range). */
static long id_base = 1000000L;
static unsigned char small_docs[MAX_USERS][SMALL_DOCS][SMALL_LEN];
static unsigned char *large_docs[MAX_USERS];
static unsigned long counts[K_COUNT], retried_503;
static long total_connects;
static double min_slow_put = 1e9, min_slow_get = 1e9; /* seconds, the quickest of each */
static int failures;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const struct conn *c, const char *fmt, ...)
{
    va_list ap;
    failures++;
    if (failures > 20)
        return; /* the first ones tell the story */
    fprintf(stderr, "FAIL conn %d (%s): ", c->idx, kind_names[c->kind]);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int read_file(const char *path, unsigned char *buf, size_t len)
{
    FILE *f = fopen(path, "rb");
    size_t got;
    int extra;
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    got = fread(buf, 1, len, f);
    extra = fgetc(f);
    fclose(f);
    if (got != len || extra != EOF) {
        fprintf(stderr, "%s: not %zu bytes\n", path, len);
        return -1;
    }
    return 0;
}

/* xorshift64*, seeded per connection: the bytes of its own documents. */
static void fill_random(unsigned char *buf, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        buf[i] = (unsigned char)((x * 0x2545F4914F6CDD1DULL) >> 56);
    }
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct conn *c = arg;
    size_t len = size * n;
    if (c->body_len + len > BODY_MAX) {
        c->body_over = 1;
        return len;
    }
    memcpy(c->body + c->body_len, data, len);
    c->body_len += len;
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct conn *c = arg;
    size_t len = size * n;
    if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0)
        c->retry_after = strtol(data + 12, NULL, 10);
    return len;
}

static size_t on_upload(char *buf, size_t size, size_t n, void *arg)
{
    struct conn *c = arg;
    size_t room = size * n, left = c->up_len - c->up_off, len;
    if (left == 0)
        return 0;
    if (c->trickle) {
        if (now_s() < c->next_chunk) {
            c->paused = 1;
            return CURL_READFUNC_PAUSE;
        }
        c->next_chunk = now_s() + TRICKLE_MS / 1000.0;
        room = room < TRICKLE_CHUNK ? room : TRICKLE_CHUNK;
    }
    len = left < room ? left : room;
    memcpy(buf, c->up + c->up_off, len);
    c->up_off += len;
    return len;
}

/* The connection's role decides its operations: 1 in 16 uploads slowly, 1 in 16
 * reads slowly, 1 in 16 moves large documents, two send wrong credentials once;
 * the others mix reads and writes. Returns the kind of operation number op. */
static enum kind plan(const struct conn *c, int op)
{
    int role = c->idx % 16;
    if (c->idx == 5 && op == 3)
        return K_BAD_PASSWORD;
    if (c->idx == 37 && op == 4)
        return K_BAD_USER;
    if (role == 0 && (op == 1 || op == 6))
        return K_SLOW_PUT;
    if (role == 1 && op == 2)
        return K_SLOW_GET;
    if (role == 2 && op % 5 == 0)
        return K_LARGE_PUT;
    if (role == 2 && op % 5 == 2)
        return K_LARGE_GET;
    switch (op % 3) {
    case 0:
        return K_ME;
    case 1:
        return K_SMALL_GET;
    default:
        return K_WRITE_PUT;
    }
}

static void start_request(struct conn *c)
{
    int user = c->user;
    CURL *h = c->h;

    curl_easy_reset(h);
    c->body_len = 0;
    c->body_over = 0;
    c->retry_after = -1;
    c->up = NULL;
    c->up_len = c->up_off = 0;
    c->trickle = 0;
    c->paused = 0;
    curl_slist_free_all(c->hdrs);
    c->hdrs = NULL;

    snprintf(c->userpwd, sizeof(c->userpwd), "load%d:loadpass%d", user, user);
    switch (c->kind) {
    case K_ME:
        snprintf(c->url, sizeof(c->url), "%s/users/me", base_url);
        break;
    case K_BAD_PASSWORD:
        snprintf(c->url, sizeof(c->url), "%s/users/me", base_url);
        snprintf(c->userpwd, sizeof(c->userpwd), "load%d:wrongpass%d", user, user);
        break;
    case K_BAD_USER:
        snprintf(c->url, sizeof(c->url), "%s/users/me", base_url);
        snprintf(c->userpwd, sizeof(c->userpwd), "nosuchload%d:loadpass%d", c->idx, user);
        break;
    case K_SMALL_GET:
        snprintf(c->url, sizeof(c->url), "%s/documents/%d/content", base_url,
                 1 + (c->idx + c->op) % SMALL_DOCS);
        break;
    case K_LARGE_GET:
    case K_SLOW_GET:
        snprintf(c->url, sizeof(c->url), "%s/documents/%d/content", base_url, LARGE_DOC_ID);
        break;
    case K_WRITE_GET:
    case K_LARGE_GET_OWN:
        snprintf(c->url, sizeof(c->url), "%s/documents/%ld/content", base_url, c->doc_id);
        break;
    case K_WRITE_PUT:
    case K_SLOW_PUT:
    case K_LARGE_PUT:
        /* An id of this connection's own, new for every write. */
        c->doc_id = id_base + (long)c->idx * 1000 + c->op;
        snprintf(c->url, sizeof(c->url), "%s/documents/%ld", base_url, c->doc_id);
        if (c->kind == K_LARGE_PUT) {
            fill_random(c->large_own, LARGE_LEN, (uint64_t)c->doc_id);
            c->up = c->large_own;
            c->up_len = LARGE_LEN;
        } else {
            fill_random(c->small_own, SMALL_LEN, (uint64_t)c->doc_id);
            c->up = c->small_own;
            c->up_len = SMALL_LEN;
        }
        c->trickle = c->kind == K_SLOW_PUT;
        c->next_chunk = 0;
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->up_len);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(h, CURLOPT_READDATA, c);
        c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/octet-stream");
        c->hdrs = curl_slist_append(c->hdrs, "Expect:");
        break;
    default:
        break;
    }
    {
        char ip[64];
        /* One client address per connection, as nginx would say (the proxy's
         * certificate is trusted for X-Real-IP): the per-address share of the
         * large-transfer places then is not what limits the run. */
        snprintf(ip, sizeof(ip), "X-Real-IP: 10.77.%d.%d", c->idx / 250, 1 + c->idx % 250);
        c->hdrs = curl_slist_append(c->hdrs, ip);
    }
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_CAINFO, ca_path);
    curl_easy_setopt(h, CURLOPT_SSLCERT, cert_path);
    curl_easy_setopt(h, CURLOPT_SSLKEY, key_path);
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(h, CURLOPT_USERPWD, c->userpwd);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 90L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PRIVATE, c);
    if (c->slow_reader) {
        /* libcurl checks the cap between reads of up to 100 buffers: small
         * buffers, or a fast server's whole answer goes in one go. */
        curl_easy_setopt(h, CURLOPT_MAX_RECV_SPEED_LARGE, SLOW_RECV_BPS);
        curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 1024L);
    }
}

static int body_is(const struct conn *c, const unsigned char *want, size_t len)
{
    return !c->body_over && c->body_len == len && memcmp(c->body, want, len) == 0;
}

static int body_is_str(const struct conn *c, const char *want)
{
    return body_is(c, (const unsigned char *)want, strlen(want));
}

static void show_body(const struct conn *c, char *out, size_t cap)
{
    size_t n = c->body_len < cap - 1 ? c->body_len : cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (c->body[i] >= 0x20 && c->body[i] < 0x7f) ? (char)c->body[i] : '.';
    out[n] = '\0';
}

/* A slow client must really have been slow, or the test would not test it:
 * a trickled body takes 16 pieces 125 ms apart, a capped reader 4 s a MiB. */
static int slow_enough(const struct conn *c)
{
    double min_s = c->kind == K_SLOW_PUT   ? 1.5
                   : c->kind == K_SLOW_GET ? (double)LARGE_LEN / SLOW_RECV_BPS * 0.75
                                           : 0;
    double took = 0;
    curl_easy_getinfo(c->h, CURLINFO_TOTAL_TIME, &took);
    if (c->kind == K_SLOW_PUT && took < min_slow_put)
        min_slow_put = took;
    if (c->kind == K_SLOW_GET && took < min_slow_get)
        min_slow_get = took;
    if (took < min_s) {
        fail(c, "took %.2f s, a slow client takes at least %.2f s", took, min_s);
        return 0;
    }
    return 1;
}

/* Checks the answer to the request in flight; returns the next kind for a
 * two-step operation, K_COUNT when the operation is over. */
static enum kind check_answer(struct conn *c, long status)
{
    char want[256], seen[160];
    int user = c->user;

    show_body(c, seen, sizeof(seen));
    if (status / 100 == 2 && !slow_enough(c))
        return K_COUNT;
    switch (c->kind) {
    case K_ME:
        snprintf(want, sizeof(want), "{\"username\":\"load%d\"}", user);
        if (status != 200 || !body_is_str(c, want))
            fail(c, "status %ld body '%s', expected 200 '%s'", status, seen, want);
        return K_COUNT;
    case K_BAD_PASSWORD:
    case K_BAD_USER:
        if (status != 401 || !body_is_str(c, "{\"detail\":\"Incorrect username or password\"}"))
            fail(c, "status %ld body '%s', expected 401", status, seen);
        return K_COUNT;
    case K_SMALL_GET: {
        int doc = (c->idx + c->op) % SMALL_DOCS;
        if (status != 200 || !body_is(c, small_docs[user][doc], SMALL_LEN))
            fail(c, "status %ld, %zu bytes: not document %d of load%d", status, c->body_len,
                 doc + 1, user);
        return K_COUNT;
    }
    case K_LARGE_GET:
    case K_SLOW_GET:
        if (status != 200 || !body_is(c, large_docs[user], LARGE_LEN))
            fail(c, "status %ld, %zu bytes: not the 1 MiB document of load%d", status, c->body_len,
                 user);
        return K_COUNT;
    case K_WRITE_PUT:
    case K_SLOW_PUT:
    case K_LARGE_PUT:
        snprintf(want, sizeof(want),
                 "{\"record_id\":%ld,\"version\":1,\"size\":%zu,"
                 "\"content_type\":\"application/octet-stream\"}",
                 c->doc_id, c->up_len);
        if (status != 201 || !body_is_str(c, want)) {
            fail(c, "status %ld body '%s', expected 201 '%s'", status, seen, want);
            return K_COUNT;
        }
        return c->kind == K_LARGE_PUT ? K_LARGE_GET_OWN : K_WRITE_GET;
    case K_WRITE_GET:
        if (status != 200 || !body_is(c, c->small_own, SMALL_LEN))
            fail(c, "status %ld, %zu bytes: not what was PUT to %ld", status, c->body_len,
                 c->doc_id);
        return K_COUNT;
    case K_LARGE_GET_OWN:
        if (status != 200 || !body_is(c, c->large_own, LARGE_LEN))
            fail(c, "status %ld, %zu bytes: not the 1 MiB PUT to %ld", status, c->body_len,
                 c->doc_id);
        return K_COUNT;
    default:
        return K_COUNT;
    }
}

static int is_large(enum kind k)
{
    return k == K_LARGE_PUT || k == K_LARGE_GET_OWN || k == K_LARGE_GET || k == K_SLOW_GET;
}

/* A transfer is over: check it and set up the connection's next one (or end it).
 * Returns 1 when the handle should go back into the multi handle now. */
static int transfer_done(struct conn *c, CURLcode res, double now)
{
    long status = 0, connects = 0;
    enum kind next;

    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c->h, CURLINFO_NUM_CONNECTS, &connects);
    total_connects += connects;
    c->done_reqs++;
    if (res != CURLE_OK) {
        fail(c, "transport error: %s", curl_easy_strerror(res));
        next = K_COUNT;
    } else if (status == 503 && is_large(c->kind) && c->retries < MAX_503_RETRIES &&
               c->retry_after >= 0 && c->retry_after <= 30) {
        /* The large-transfer admission is full: a legitimate answer. */
        retried_503++;
        c->retries++;
        c->wait_until = now + (double)(c->retry_after > 0 ? c->retry_after : 1);
        return 0;
    } else {
        counts[c->kind]++;
        next = check_answer(c, status);
    }
    c->retries = 0;
    if (next != K_COUNT) {
        c->kind = next;
    } else {
        c->op++;
        if (c->done_reqs >= n_reqs || failures > 0) {
            c->finished = 1;
            return 0;
        }
        c->kind = plan(c, c->op);
    }
    c->wait_until = 0;
    return 1;
}

static int load_docs(const char *dir)
{
    char path[1024];
    for (int u = 0; u < n_users; u++) {
        for (int d = 0; d < SMALL_DOCS; d++) {
            snprintf(path, sizeof(path), "%s/small-%d-%d.bin", dir, u, d + 1);
            if (read_file(path, small_docs[u][d], SMALL_LEN) != 0)
                return -1;
        }
        large_docs[u] = malloc(LARGE_LEN);
        snprintf(path, sizeof(path), "%s/large-%d.bin", dir, u);
        if (!large_docs[u] || read_file(path, large_docs[u], LARGE_LEN) != 0)
            return -1;
    }
    return 0;
}

/* A decimal count, or -1 when s is not one. */
static int parse_count(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 0 || v > 100000)
        return -1;
    return (int)v;
}

int main(int argc, char **argv)
{
    static struct conn conns[MAX_CONNS];
    CURLM *multi;
    int running = 0, active, finished = 0;
    unsigned long total = 0;
    double start, deadline;

    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: prog_load_mix URL CERTDIR DOCDIR USERS CONNS REQS [ROUND]\n");
        return 2;
    }
    if (argc == 8) {
        int round = parse_count(argv[7]);
        if (round < 0 || round > 100) {
            fprintf(stderr, "prog_load_mix: ROUND 0..100\n");
            return 2;
        }
        id_base += (long)round * 1000000L;
    }
    snprintf(base_url, sizeof(base_url), "%s", argv[1]);
    snprintf(ca_path, sizeof(ca_path), "%s/ca.crt", argv[2]);
    snprintf(cert_path, sizeof(cert_path), "%s/proxy.crt", argv[2]);
    snprintf(key_path, sizeof(key_path), "%s/proxy.key", argv[2]);
    n_users = parse_count(argv[4]);
    n_conns = parse_count(argv[5]);
    n_reqs = parse_count(argv[6]);
    if (n_users < 1 || n_users > MAX_USERS || n_conns < 1 || n_conns > MAX_CONNS || n_reqs < 1 ||
        n_reqs > 1000) {
        fprintf(stderr, "prog_load_mix: USERS 1..%d, CONNS 1..%d, REQS 1..1000\n", MAX_USERS,
                MAX_CONNS);
        return 2;
    }
    if (load_docs(argv[3]) != 0)
        return 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    multi = curl_multi_init();
    /* Plain HTTP/1.1: no multiplexing, at most one connection per handle, and a
     * connection cache large enough that none is closed between requests. */
    curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)n_conns);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)n_conns);

    for (int i = 0; i < n_conns; i++) {
        struct conn *c = &conns[i];
        c->idx = i;
        c->h = curl_easy_init();
        c->user = i % n_users;
        c->slow_reader = i % 16 == 1;
        c->body = malloc(BODY_MAX);
        c->large_own = malloc(LARGE_LEN);
        if (!c->h || !c->body || !c->large_own)
            return 1;
        c->kind = plan(c, 0);
        start_request(c);
        curl_multi_add_handle(multi, c->h);
    }

    start = now_s();
    deadline = start + RUN_DEADLINE_S;
    while (finished < n_conns) {
        CURLMsg *msg;
        int left;
        double now;

        curl_multi_perform(multi, &running);
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            char *priv = NULL;
            struct conn *c;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            c = (struct conn *)(void *)priv;
            curl_multi_remove_handle(multi, c->h);
            total++;
            if (transfer_done(c, msg->data.result, now_s())) {
                start_request(c);
                curl_multi_add_handle(multi, c->h);
            } else if (c->finished) {
                finished++;
            }
        }
        now = now_s();
        active = 0;
        for (int i = 0; i < n_conns; i++) {
            struct conn *c = &conns[i];
            if (c->finished)
                continue;
            active++;
            if (c->wait_until > 0 && now >= c->wait_until) {
                c->wait_until = 0;
                start_request(c);
                curl_multi_add_handle(multi, c->h);
            } else if (c->paused && now >= c->next_chunk) {
                c->paused = 0;
                curl_easy_pause(c->h, CURLPAUSE_CONT);
            }
        }
        if (failures > 0 && running == 0)
            break;
        if (now > deadline) {
            fprintf(stderr, "FAIL: %d connections still busy after %d s\n", active, RUN_DEADLINE_S);
            failures++;
            break;
        }
        curl_multi_poll(multi, NULL, 0, 20, NULL);
    }

    printf("%lu requests on %d connections in %.1f s, %ld TCP connections opened\n", total, n_conns,
           now_s() - start, total_connects);
    for (int k = 0; k < K_COUNT; k++)
        printf("  %-24s %lu\n", kind_names[k], counts[k]);
    printf("  %-24s %lu\n", "503 retried (admission)", retried_503);
    if (counts[K_SLOW_PUT] > 0 && counts[K_SLOW_GET] > 0)
        printf("  the quickest trickled PUT took %.2f s, the quickest slow reader %.2f s\n",
               min_slow_put, min_slow_get);
    /* Keep-alive: each connection is opened once; a few more are tolerated
     * (a server may close one after an error answer), not one per request. */
    if (failures == 0 && total_connects > n_conns + n_conns / 16) {
        fprintf(stderr, "FAIL: %ld TCP connections for %d keep-alive connections\n", total_connects,
                n_conns);
        failures++;
    }
    for (int i = 0; i < n_conns; i++) {
        curl_multi_remove_handle(multi, conns[i].h);
        curl_easy_cleanup(conns[i].h);
        curl_slist_free_all(conns[i].hdrs);
        free(conns[i].body);
        free(conns[i].large_own);
    }
    for (int u = 0; u < n_users; u++)
        free(large_docs[u]);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    if (failures > 0) {
        fprintf(stderr, "prog_load_mix: %d failure(s)\n", failures);
        return 1;
    }
    return 0;
}
