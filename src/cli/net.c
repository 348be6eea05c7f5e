/* net.c: one HTTP exchange over libcurl, the only file of the client that
 * sees it. One easy handle for the whole run keeps its connection alive; the
 * session cookie is kept by the client itself, in locked memory. TLS: HTTPS only, at
 * least TLS 1.2, the peer and its name verified against --cacert. */
#include "cli/cli_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "crypto/crypto.h"

struct cli_net {
    CURL *curl;
    const struct cli_options *o;
    char errbuf[CURL_ERROR_SIZE];
};

/* What one transfer reads from and writes to. */
struct cli_xfer {
    CURL *curl;
    struct cli *c;
    const struct cli_body *b;
    uint64_t sent; /* bytes of b taken by libcurl so far */
    struct cli_reply *r;
    bool progress_up;   /* a bar for the body sent */
    bool progress_down; /* a bar for a download to r->out_fd */
    bool drawn;
    int werr; /* errno of a failed write to r->out_fd */
};

int cli_net_open(const struct cli_options *o, struct cli_net **out)
{
    struct cli_net *n;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "confidoc: libcurl cannot start\n");
        return CLI_EXIT_UNREACHABLE;
    }
    n = calloc(1, sizeof(*n));
    if (n == NULL || (n->curl = curl_easy_init()) == NULL) {
        free(n);
        fprintf(stderr, "confidoc: out of memory\n");
        return CLI_EXIT_UNREACHABLE;
    }
    n->o = o;
    *out = n;
    return CLI_EXIT_OK;
}

void cli_net_close(struct cli_net *n)
{
    if (n == NULL)
        return;
    curl_easy_cleanup(n->curl);
    free(n);
    curl_global_cleanup();
}

void cli_reply_init(struct cli_reply *r, int out_fd)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->body, CLI_REPLY_MAX);
    r->out_fd = out_fd;
}

void cli_reply_release(struct cli_reply *r)
{
    buf_release(&r->body);
}

static bool cli_ok_status(long status)
{
    return status >= 200 && status < 300;
}

static size_t cli_on_write(char *p, size_t size, size_t nmemb, void *cls)
{
    struct cli_xfer *x = cls;
    size_t n = size * nmemb;

    if (x->r->status == 0)
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->r->status);
    if (x->r->out_fd >= 0 && cli_ok_status(x->r->status)) {
        for (size_t off = 0; off < n;) {
            ssize_t w = write(x->r->out_fd, p + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                x->werr = w < 0 ? errno : EIO;
                return 0; /* CURLE_WRITE_ERROR */
            }
            off += (size_t)w;
        }
        return n;
    }
    return buf_add(&x->r->body, p, n) == CD_OK ? n : 0;
}

static size_t cli_on_read(char *p, size_t size, size_t nmemb, void *cls)
{
    struct cli_xfer *x = cls;
    size_t want = size * nmemb;
    ssize_t got;

    if (x->b->fd < 0) {
        size_t left = x->b->len - (size_t)x->sent;
        if (want > left)
            want = left;
        memcpy(p, (const char *)x->b->mem + x->sent, want);
        x->sent += want;
        return want;
    }
    do
        got = read(x->b->fd, p, want);
    while (got < 0 && errno == EINTR);
    if (got < 0)
        return CURL_READFUNC_ABORT;
    x->sent += (uint64_t)got;
    return (size_t)got;
}

/* The session cookie of a Set-Cookie header line (p, n bytes): kept in the
 * client's locked memory (libcurl's cookie store is not used, so the token
 * never sits in its heap); an empty value (logout, expiry) clears it. */
static void cli_take_cookie(struct cli *c, const char *p, size_t n)
{
    size_t name = strlen(CLI_SESSION_COOKIE), i = 0;

    while (i < n && p[i] == ' ')
        i++;
    if (n - i <= name || strncmp(p + i, CLI_SESSION_COOKIE, name) != 0 || p[i + name] != '=')
        return;
    i += name + 1;
    c->cookie_len = 0;
    while (i < n && p[i] != ';' && p[i] != '\r' && p[i] != '\n' && p[i] != ' ') {
        if (c->cookie == NULL || c->cookie_len >= CLI_COOKIE_MAX) {
            c->cookie_len = 0; /* too long or no memory: no session */
            return;
        }
        c->cookie[c->cookie_len++] = p[i++];
    }
    if (c->cookie != NULL)
        c->cookie[c->cookie_len] = '\0';
}

/* Retry-After of a 429 or 503, kept for the message; the session cookie. */
static size_t cli_on_header(char *p, size_t size, size_t nmemb, void *cls)
{
    struct cli_xfer *x = cls;
    size_t n = size * nmemb;
    static const char name[] = "Retry-After:";
    static const char cookie[] = "Set-Cookie:";

    if (n > sizeof(cookie) && strncasecmp(p, cookie, sizeof(cookie) - 1) == 0)
        cli_take_cookie(x->c, p + sizeof(cookie) - 1, n - (sizeof(cookie) - 1));
    if (n > sizeof(name) && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        size_t i = sizeof(name) - 1, o = 0;
        while (i < n && p[i] == ' ')
            i++;
        while (i < n && p[i] >= '0' && p[i] <= '9' && o + 1 < sizeof(x->r->retry_after))
            x->r->retry_after[o++] = p[i++];
        x->r->retry_after[o] = '\0';
    }
    return n;
}

static int cli_on_progress(void *cls, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    struct cli_xfer *x = cls;

    if (x->progress_up && ultotal > 0 && (!x->drawn || ulnow > 0)) {
        cli_progress_draw((uint64_t)ulnow, (uint64_t)ultotal, true);
        x->drawn = true;
    } else if (x->progress_down && dltotal > 0 && cli_ok_status(x->r->status)) {
        cli_progress_draw((uint64_t)dlnow, (uint64_t)dltotal, false);
        x->drawn = true;
    }
    return 0;
}

/* --verbose: libcurl's trace, with what would give a secret away left out:
 * bodies (passwords, documents), credentials and session cookies. */
static void cli_trace_headers(const char *dir, const char *p, size_t n)
{
    static const char *const secret[] = {
        "authorization:", "cookie:", "set-cookie:", "x-csrf-token:"};

    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl != NULL ? (size_t)(nl - p) + 1 : n;
        bool hide = false;

        for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
            hide |= len > strlen(secret[i]) && strncasecmp(p, secret[i], strlen(secret[i])) == 0;
        if (hide)
            fprintf(stderr, "%s %.*s: (not shown)\n", dir, (int)(memchr(p, ':', len) - (void *)p),
                    p);
        else
            fprintf(stderr, "%s %.*s", dir, (int)len, p);
        p += len;
        n -= len;
    }
}

/* A line of libcurl's own text that quotes a secret header: over HTTP/2,
 * libcurl 7.88 traces each header it sends as "h2h3 [authorization: ...]". */
static bool cli_text_has_secret(const char *p, size_t n)
{
    static const char *const secret[] = {
        "[authorization:", "[proxy-authorization:", "[cookie:", "[set-cookie:", "[x-csrf-token:"};

    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof(secret) / sizeof(secret[0]); k++)
            if (n - i >= strlen(secret[k]) && strncasecmp(p + i, secret[k], strlen(secret[k])) == 0)
                return true;
    return false;
}

static int cli_on_trace(CURL *h, curl_infotype type, char *p, size_t n, void *cls)
{
    (void)h;
    (void)cls;
    if (type == CURLINFO_TEXT && cli_text_has_secret(p, n))
        fprintf(stderr, "* (a line that quotes a credential header: not shown)\n");
    else if (type == CURLINFO_TEXT)
        fprintf(stderr, "* %.*s", (int)n, p);
    else if (type == CURLINFO_HEADER_OUT)
        cli_trace_headers(">", p, n);
    else if (type == CURLINFO_HEADER_IN)
        cli_trace_headers("<", p, n);
    return 0;
}

/* The options of every request: TLS, timeouts, callbacks. */
static bool cli_set_common(struct cli_net *n, struct cli_xfer *x)
{
    CURL *h = n->curl;
    bool ok = true;

    curl_easy_reset(h); /* keeps the connection and the cookies */
    ok &= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, n->errbuf) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
    /* HTTP/1.1 although nginx offers HTTP/2: one request at a time gains
     * nothing from HTTP/2, a pipe is uploaded chunked, and --verbose shows
     * the request's headers as sent (filtered by cli_trace_headers). */
    ok &= curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) == CURLE_OK;
    if (n->o->cacert != NULL)
        ok &= curl_easy_setopt(h, CURLOPT_CAINFO, n->o->cacert) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L) == CURLE_OK;
    /* A transfer that moves under 1 byte/s for 60 s is given up. */
    ok &= curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_USERAGENT, "confidoc/1") == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cli_on_write) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_WRITEDATA, x) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, cli_on_header) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_HEADERDATA, x) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, cli_on_progress) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_XFERINFODATA, x) == CURLE_OK;
    ok &= curl_easy_setopt(h, CURLOPT_NOPROGRESS, x->progress_up || x->progress_down ? 0L : 1L) ==
          CURLE_OK;
    if (n->o->verbose)
        ok &= curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, cli_on_trace) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_VERBOSE, 1L) == CURLE_OK;
    return ok;
}

/* Method, body and length. A body is sent with the method's own request
 * (PUT uploads, POST and DELETE send fields); libcurl reads it through
 * cli_on_read either way, so a file is streamed and never held whole. */
static bool cli_set_method(CURL *h, const char *method, const struct cli_body *b)
{
    bool ok = true;
    curl_off_t len;

    if (b == NULL) {
        if (strcmp(method, "GET") != 0)
            ok &= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
        if (strcmp(method, "POST") == 0)
            ok &= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L) == CURLE_OK;
        return ok;
    }
    /* An input of unknown size (a pipe) goes chunked. */
    len = b->fd < 0 ? (curl_off_t)b->len : b->size == CLI_SIZE_UNKNOWN ? -1 : (curl_off_t)b->size;
    if (strcmp(method, "PUT") == 0) {
        ok &= curl_easy_setopt(h, CURLOPT_UPLOAD, 1L) == CURLE_OK;
        ok &= curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, len) == CURLE_OK;
    } else {
        ok &= curl_easy_setopt(h, CURLOPT_POST, 1L) == CURLE_OK;
        ok &= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, len) == CURLE_OK;
        if (strcmp(method, "POST") != 0)
            ok &= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
    }
    ok &= curl_easy_setopt(h, CURLOPT_READFUNCTION, cli_on_read) == CURLE_OK;
    return ok;
}

/* Cookie: NAME=TOKEN, built in locked memory; libcurl copies it. */
static bool cli_set_cookie(CURL *h, const struct cli *c)
{
    size_t cap = strlen(CLI_SESSION_COOKIE) + c->cookie_len + 2;
    char *v = crypto_secure_alloc(cap);
    bool ok;

    if (v == NULL)
        return false;
    ok = snprintf(v, cap, "%s=%s", CLI_SESSION_COOKIE, c->cookie) == (int)cap - 1 &&
         curl_easy_setopt(h, CURLOPT_COOKIE, v) == CURLE_OK;
    crypto_secure_free(v);
    return ok;
}

/* Request headers; NULL when out of memory. */
static struct curl_slist *cli_headers(const struct cli *c, enum cli_auth auth,
                                      const struct cli_body *b)
{
    struct curl_slist *l = NULL, *t;
    char line[64 + CLI_CSRF_MAX];

    /* No "Expect: 100-continue": the API answers a too-large or refused
     * upload on its headers anyway, and the wait costs a second. */
    if ((t = curl_slist_append(l, "Expect:")) == NULL)
        return NULL;
    l = t;
    if (b != NULL && b->ctype != NULL) {
        snprintf(line, sizeof(line), "Content-Type: %s", b->ctype);
        if ((t = curl_slist_append(l, line)) == NULL)
            goto fail;
        l = t;
    }
    if (b != NULL && b->if_none_match) {
        if ((t = curl_slist_append(l, "If-None-Match: *")) == NULL)
            goto fail;
        l = t;
    }
    if (auth == CLI_AUTH_SESSION) {
        snprintf(line, sizeof(line), "X-CSRF-Token: %s", c->csrf);
        if ((t = curl_slist_append(l, line)) == NULL)
            goto fail;
        l = t;
        /* The cookie through libcurl's option, not a header of the list,
         * so that --verbose and the list hold no copy of the token. */
    }
    return l;
fail:
    curl_slist_free_all(l);
    return NULL;
}

static void cli_transport_error(const struct cli_net *n, CURLcode rc, const struct cli_xfer *x)
{
    if (rc == CURLE_WRITE_ERROR && x->werr != 0)
        fprintf(stderr, "confidoc: cannot write the download: %s\n", strerror(x->werr));
    else
        fprintf(stderr, "confidoc: %s: %s\n", n->o->url,
                n->errbuf[0] != '\0' ? n->errbuf : curl_easy_strerror(rc));
}

int cli_net_request(struct cli *c, enum cli_auth auth, const char *method, const char *path,
                    const struct cli_body *b, struct cli_reply *r, bool progress)
{
    struct cli_net *n = c->net;
    struct cli_xfer x = {n->curl, c, b, 0, r, false, false, false, 0};
    struct curl_slist *hdrs = NULL;
    struct buf url;
    CURLcode rc;
    bool ok;

    x.progress_up = progress && b != NULL && b->fd >= 0;
    x.progress_down = progress && r->out_fd >= 0;
    buf_init(&url, 8192);
    n->errbuf[0] = '\0';
    r->status = 0;
    r->retry_after[0] = '\0';
    if (b != NULL && b->fd >= 0)
        (void)lseek(b->fd, 0, SEEK_SET); /* a file sent again (a pipe is sent once: cli_call) */
    ok = cli_set_common(n, &x) && cli_set_method(n->curl, method, b) &&
         buf_add(&url, n->o->url, strlen(n->o->url)) == CD_OK &&
         buf_add(&url, path, strlen(path)) == CD_OK &&
         curl_easy_setopt(n->curl, CURLOPT_URL, url.p) == CURLE_OK &&
         (hdrs = cli_headers(c, auth, b)) != NULL &&
         curl_easy_setopt(n->curl, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK;
    if (ok && b != NULL)
        ok = curl_easy_setopt(n->curl, CURLOPT_READDATA, &x) == CURLE_OK;
    if (ok && auth == CLI_AUTH_SESSION)
        ok = c->cookie != NULL && c->cookie_len > 0 && cli_set_cookie(n->curl, c);
    if (ok && auth == CLI_AUTH_BASIC)
        ok = curl_easy_setopt(n->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) == CURLE_OK &&
             curl_easy_setopt(n->curl, CURLOPT_USERNAME, c->user) == CURLE_OK &&
             curl_easy_setopt(n->curl, CURLOPT_PASSWORD, c->password) == CURLE_OK;
    buf_release(&url);
    if (!ok) {
        curl_slist_free_all(hdrs);
        fprintf(stderr, "confidoc: out of memory\n");
        return CLI_EXIT_UNREACHABLE;
    }
    rc = curl_easy_perform(n->curl);
    if (x.drawn)
        cli_progress_end();
    /* libcurl's copies of the password and the cookie: dropped now. */
    (void)curl_easy_setopt(n->curl, CURLOPT_PASSWORD, "");
    (void)curl_easy_setopt(n->curl, CURLOPT_COOKIE, NULL);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        cli_transport_error(n, rc, &x);
        return CLI_EXIT_UNREACHABLE;
    }
    curl_easy_getinfo(n->curl, CURLINFO_RESPONSE_CODE, &r->status);
    return CLI_EXIT_OK;
}
