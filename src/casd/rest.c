/* rest.c: HTTP/1.1 request parsing and routing for the CAS's REST API, the
 * strict JSON reader of a session upload (one shape only, so it is small
 * enough to read in full and to fuzz: no general JSON library in the worker),
 * and the response writer. Pure. */
#include "casd/rest.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/codec.h"
#include "common/num.h"

/* ---- HTTP ---- */

static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool valid_name(const char *s, size_t n, bool upper)
{
    if (n == 0 || n > CASD_IPC_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              (upper && c >= 'A' && c <= 'Z')))
            return false;
    }
    return true;
}

static const char *find_crlf(const char *p, const char *end)
{
    for (; end - p >= 2; p++)
        if (p[0] == '\r' && p[1] == '\n')
            return p;
    return NULL;
}

static bool prefix(const char *s, size_t n, const char *pre)
{
    size_t k = strlen(pre);
    return n >= k && memcmp(s, pre, k) == 0;
}

/* The route of (method, target); 0 or an error status (404, 405). */
static int route(const char *m, size_t mlen, const char *t, size_t tlen, struct casd_rest_req *req)
{
    bool get = mlen == 3 && memcmp(m, "GET", 3) == 0;
    bool post = mlen == 4 && memcmp(m, "POST", 4) == 0;

    if (prefix(t, tlen, "/v1/values/")) {
        const char *s = t + 11, *end = t + tlen;
        if (!prefix(s, (size_t)(end - s), "session="))
            return 404;
        s += 8;
        const char *comma = memchr(s, ',', (size_t)(end - s));
        if (comma == NULL || !valid_name(s, (size_t)(comma - s), false) ||
            !prefix(comma + 1, (size_t)(end - comma - 1), "secret=") ||
            !valid_name(comma + 8, (size_t)(end - comma - 8), true))
            return 404;
        if (!get)
            return 405;
        memcpy(req->session, s, (size_t)(comma - s));
        req->session[comma - s] = '\0';
        memcpy(req->secret, comma + 8, (size_t)(end - comma - 8));
        req->secret[end - comma - 8] = '\0';
        req->route = CASD_ROUTE_VALUE;
        return 0;
    }
    if ((tlen == 14 && memcmp(t, "/v1/node/hello", 14) == 0) ||
        (tlen == 16 && memcmp(t, "/v1/node/measure", 16) == 0)) {
        if (!post)
            return 405;
        req->route = tlen == 14 ? CASD_ROUTE_NODE_HELLO : CASD_ROUTE_NODE_MEASURE;
        return 0;
    }
    if (tlen == 8 && memcmp(t, "/metrics", 8) == 0) {
        if (!get)
            return 405;
        req->route = CASD_ROUTE_METRICS;
        return 0;
    }
    if (tlen == 12 && memcmp(t, "/v1/sessions", 12) == 0) {
        if (!post)
            return 405;
        req->route = CASD_ROUTE_SESSION_PUT;
        return 0;
    }
    if (prefix(t, tlen, "/v1/sessions/")) {
        if (!valid_name(t + 13, tlen - 13, false))
            return 404;
        if (!get)
            return 405;
        memcpy(req->session, t + 13, tlen - 13);
        req->session[tlen - 13] = '\0';
        req->route = CASD_ROUTE_SESSION_GET;
        return 0;
    }
    return 404;
}

#define FAIL(st, text)                                                                             \
    do {                                                                                           \
        *status = (st);                                                                            \
        *detail = (text);                                                                          \
        return CASD_REST_ERROR;                                                                    \
    } while (0)

/* Parses "METHOD SP TARGET SP HTTP/1.x" in line[0..n). */
static int request_line(const char *line, size_t n, struct casd_rest_req *req, const char **detail)
{
    const char *end = line + n, *sp1 = memchr(line, ' ', n);
    if (sp1 == NULL || sp1 == line || sp1 - line > 16)
        return *detail = "malformed request line", 400;
    for (const char *c = line; c < sp1; c++)
        if (!tchar((unsigned char)*c))
            return *detail = "malformed request line", 400;
    const char *t = sp1 + 1, *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (sp2 == NULL || sp2 == t || *t != '/')
        return *detail = "malformed request line", 400;
    for (const char *c = t; c < sp2; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return *detail = "malformed request line", 400;
    size_t vlen = (size_t)(end - sp2 - 1);
    if (vlen != 8 || (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 && memcmp(sp2 + 1, "HTTP/1.0", 8) != 0))
        return *detail = "malformed request line", 400;
    int st = route(line, (size_t)(sp1 - line), t, (size_t)(sp2 - t), req);
    if (st == 404)
        *detail = "not found";
    else if (st == 405)
        *detail = "method not allowed";
    return st;
}

struct headers {
    bool have_length, chunked;
    uint64_t length;
};

/* One header line h[0..n) (no CRLF). 0 or an error status. */
static int header(const char *h, size_t n, struct headers *hs, const char **detail)
{
    const char *colon = memchr(h, ':', n);
    if (n > 0 && (h[0] == ' ' || h[0] == '\t'))
        return *detail = "folded header lines are not accepted", 400;
    if (colon == NULL || colon == h)
        return *detail = "malformed header", 400;
    for (const char *c = h; c < colon; c++)
        if (!tchar((unsigned char)*c))
            return *detail = "malformed header", 400;
    const char *v = colon + 1, *end = h + n;
    for (const char *c = v; c < end; c++)
        if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
            return *detail = "malformed header", 400;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t nlen = (size_t)(colon - h);
    if (nlen == 14 && strncasecmp(h, "content-length", 14) == 0) {
        uint64_t len = 0;
        if (hs->have_length)
            return *detail = "Content-Length given twice", 400;
        cd_err e = num_parse(v, (size_t)(end - v), CASD_REST_BODY_MAX, &len);
        if (e == CD_ERR_TOO_LARGE)
            return *detail = "body too large", 413;
        if (e != CD_OK)
            return *detail = "malformed Content-Length", 400;
        hs->have_length = true;
        hs->length = len;
    } else if (nlen == 17 && strncasecmp(h, "transfer-encoding", 17) == 0) {
        hs->chunked = true;
    }
    return 0;
}

enum casd_rest_result casd_rest_parse(const char *buf, size_t len, struct casd_rest_req *req,
                                      size_t *used, int *status, const char **detail)
{
    const char *end = buf + len;
    struct headers hs = {0};
    unsigned count = 0;
    int st;

    memset(req, 0, sizeof(*req));
    const char *lim = buf + (len < CASD_REST_LINE_MAX ? len : CASD_REST_LINE_MAX);
    const char *eol = find_crlf(buf, lim);
    if (eol == NULL) {
        if (len >= CASD_REST_LINE_MAX)
            FAIL(414, "request line too long");
        return CASD_REST_MORE;
    }
    if ((st = request_line(buf, (size_t)(eol - buf), req, detail)) != 0) {
        *status = st;
        return CASD_REST_ERROR;
    }
    const char *h = eol + 2, *hstart = h;
    for (;;) {
        size_t avail = (size_t)(end - h), room = CASD_REST_HEADERS_MAX - (size_t)(h - hstart);
        const char *e = find_crlf(h, h + (avail < room ? avail : room));
        if (e == NULL) {
            if (avail >= room)
                FAIL(431, "headers too large");
            return CASD_REST_MORE;
        }
        if (e == h) {
            h += 2;
            break;
        }
        if (++count > CASD_REST_MAX_HEADERS)
            FAIL(431, "too many headers");
        if ((st = header(h, (size_t)(e - h), &hs, detail)) != 0) {
            *status = st;
            return CASD_REST_ERROR;
        }
        h = e + 2;
    }
    if (hs.chunked)
        FAIL(hs.have_length ? 400 : 411, "send the body with Content-Length, not chunked");
    if (req->route != CASD_ROUTE_SESSION_PUT && req->route != CASD_ROUTE_NODE_HELLO &&
        req->route != CASD_ROUTE_NODE_MEASURE) {
        if (hs.have_length && hs.length > 0)
            FAIL(400, "this request has no body");
        *used = (size_t)(h - buf);
        return CASD_REST_DONE;
    }
    if (!hs.have_length)
        FAIL(411, "Content-Length required");
    if ((size_t)(end - h) < hs.length)
        return CASD_REST_MORE;
    req->body = h;
    req->body_len = (size_t)hs.length;
    *used = (size_t)(h - buf) + (size_t)hs.length;
    return CASD_REST_DONE;
}

/* ---- JSON ---- */

struct jp {
    const char *p, *end;
};

static void ws(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static bool eat(struct jp *j, char c)
{
    ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return true;
    }
    return false;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool hex4(struct jp *j, unsigned *out)
{
    unsigned v = 0;
    if (j->end - j->p < 4)
        return false;
    for (int i = 0; i < 4; i++) {
        int h = hexval(j->p[i]);
        if (h < 0)
            return false;
        v = v << 4 | (unsigned)h;
    }
    j->p += 4;
    *out = v;
    return true;
}

static cd_err add_utf8(struct buf *out, unsigned cp)
{
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | cp >> 12), u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        u[0] = (unsigned char)(0xf0 | cp >> 18), u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
        u[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_add(out, u, n);
}

/* A string (after optional whitespace) decoded into out; NUL refused. */
static cd_err jstring(struct jp *j, struct buf *out)
{
    cd_err err = CD_OK;

    if (!eat(j, '"'))
        return CD_ERR_INVALID;
    if ((err = buf_add(out, "", 0)) != CD_OK)
        return err;
    while (err == CD_OK) {
        const char *run = j->p;
        while (j->p < j->end && *j->p != '"' && *j->p != '\\' && (unsigned char)*j->p >= 0x20)
            j->p++;
        if (j->p > run && (err = buf_add(out, run, (size_t)(j->p - run))) != CD_OK)
            return err;
        if (j->p >= j->end || (unsigned char)*j->p < 0x20)
            return CD_ERR_INVALID;
        if (*j->p++ == '"')
            return CD_OK;
        if (j->p >= j->end)
            return CD_ERR_INVALID;
        char c = *j->p++, lit = 0;
        unsigned cp = 0, lo = 0;
        switch (c) {
        case '"':
            lit = '"';
            break;
        case '\\':
            lit = '\\';
            break;
        case '/':
            lit = '/';
            break;
        case 'b':
            lit = '\b';
            break;
        case 'f':
            lit = '\f';
            break;
        case 'n':
            lit = '\n';
            break;
        case 'r':
            lit = '\r';
            break;
        case 't':
            lit = '\t';
            break;
        case 'u':
            if (!hex4(j, &cp) || cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff))
                return CD_ERR_INVALID;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
                    return CD_ERR_INVALID;
                j->p += 2;
                if (!hex4(j, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return CD_ERR_INVALID;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            err = add_utf8(out, cp);
            continue;
        default:
            return CD_ERR_INVALID;
        }
        err = buf_add(out, &lit, 1);
    }
    return err;
}

static bool key_is(const struct buf *k, const char *s)
{
    return k->len == strlen(s) && memcmp(k->p, s, k->len) == 0;
}

/* {"public_key": "...", "signature": "..."} */
static cd_err signature_obj(struct jp *j, struct casd_put_sig *s)
{
    bool have_key = false, have_sig = false;
    cd_err err = CD_OK;

    if (!eat(j, '{'))
        return CD_ERR_INVALID;
    do {
        struct buf k, v;
        buf_init(&k, 32);
        buf_init(&v, CODEC_B64_LEN(CASD_IPC_SIG_MAX) > CASD_IPC_PUBKEY_MAX + 1
                         ? CODEC_B64_LEN(CASD_IPC_SIG_MAX)
                         : CASD_IPC_PUBKEY_MAX + 1);
        err = jstring(j, &k);
        if (err == CD_ERR_TOO_LARGE)
            err = CD_ERR_INVALID; /* no key of ours is that long */
        if (err == CD_OK && !eat(j, ':'))
            err = CD_ERR_INVALID;
        if (err == CD_OK && key_is(&k, "public_key") && !have_key) {
            have_key = true;
            if ((err = jstring(j, &v)) == CD_OK) {
                if (v.len > CASD_IPC_PUBKEY_MAX)
                    err = CD_ERR_TOO_LARGE;
                else
                    memcpy(s->public_key, v.p, v.len + 1), s->public_key_len = v.len;
            }
        } else if (err == CD_OK && key_is(&k, "signature") && !have_sig) {
            have_sig = true;
            if ((err = jstring(j, &v)) == CD_OK)
                err = codec_b64_decode(v.p, v.len, s->signature, sizeof(s->signature),
                                       &s->signature_len);
        } else if (err == CD_OK) {
            err = CD_ERR_INVALID;
        }
        buf_release(&k);
        buf_release(&v);
    } while (err == CD_OK && eat(j, ','));
    if (err == CD_OK && (!eat(j, '}') || !have_key || !have_sig))
        err = CD_ERR_INVALID;
    return err;
}

static cd_err signatures(struct jp *j, struct casd_put_body *out)
{
    cd_err err = CD_OK;

    if (!eat(j, '['))
        return CD_ERR_INVALID;
    if (eat(j, ']'))
        return CD_OK;
    do {
        if (out->nsigs >= CASD_IPC_MAX_SIGS)
            return CD_ERR_TOO_LARGE;
        err = signature_obj(j, &out->sigs[out->nsigs++]);
    } while (err == CD_OK && eat(j, ','));
    if (err == CD_OK && !eat(j, ']'))
        err = CD_ERR_INVALID;
    return err;
}

cd_err casd_put_body_parse(const char *body, size_t len, struct casd_put_body *out)
{
    bool have_sigs = false, have_text = false;
    struct buf text;
    cd_err err = CD_OK;

    if (body == NULL || out == NULL)
        return CD_ERR_INVALID;
    struct jp j = {body, body + len};
    memset(out, 0, sizeof(*out));
    buf_init(&text, CASD_IPC_TEXT_MAX + 1);
    if (!eat(&j, '{'))
        err = CD_ERR_INVALID;
    while (err == CD_OK) {
        struct buf k;
        buf_init(&k, 32);
        err = jstring(&j, &k);
        if (err == CD_ERR_TOO_LARGE)
            err = CD_ERR_INVALID;
        if (err == CD_OK && !eat(&j, ':'))
            err = CD_ERR_INVALID;
        if (err == CD_OK && key_is(&k, "session") && !have_text)
            have_text = true, err = jstring(&j, &text);
        else if (err == CD_OK && key_is(&k, "signatures") && !have_sigs)
            have_sigs = true, err = signatures(&j, out);
        else if (err == CD_OK)
            err = CD_ERR_INVALID;
        buf_release(&k);
        if (err == CD_OK && !eat(&j, ','))
            break;
    }
    if (err == CD_OK && !eat(&j, '}'))
        err = CD_ERR_INVALID;
    ws(&j);
    if (err == CD_OK && (j.p != j.end || !have_text))
        err = CD_ERR_INVALID;
    if (err != CD_OK) {
        buf_release(&text);
        memset(out, 0, sizeof(*out));
        return err;
    }
    out->session = buf_detach(&text, &out->session_len);
    return CD_OK;
}

void casd_put_body_release(struct casd_put_body *b)
{
    if (b == NULL)
        return;
    if (b->session != NULL) {
        explicit_bzero(b->session, b->session_len);
        free(b->session);
    }
    memset(b, 0, sizeof(*b));
}

cd_err casd_json_get_string(const char *json, size_t len, const char *key, struct buf *out)
{
    struct jp j = {json, json + len};
    bool found = false;
    cd_err err = CD_OK;

    if (!eat(&j, '{'))
        return CD_ERR_INVALID;
    if (eat(&j, '}'))
        return CD_ERR_NOT_FOUND;
    do {
        struct buf k, skip;
        buf_init(&k, 64);
        buf_init(&skip, len + 1);
        err = jstring(&j, &k);
        if (err == CD_ERR_TOO_LARGE)
            err = CD_OK, k.len = 0; /* not our key; its value still parsed */
        if (err == CD_OK && !eat(&j, ':'))
            err = CD_ERR_INVALID;
        if (err == CD_OK && key_is(&k, key)) {
            err = found ? CD_ERR_INVALID : jstring(&j, out);
            found = true;
        } else if (err == CD_OK) {
            err = jstring(&j, &skip);
        }
        buf_release(&k);
        buf_release(&skip);
    } while (err == CD_OK && eat(&j, ','));
    if (err == CD_OK && !eat(&j, '}'))
        err = CD_ERR_INVALID;
    ws(&j);
    if (err == CD_OK && j.p != j.end)
        err = CD_ERR_INVALID;
    if (err != CD_OK)
        return err;
    return found ? CD_OK : CD_ERR_NOT_FOUND;
}

cd_err casd_json_add_string(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    cd_err err = buf_add(b, "\"", 1);

    for (size_t i = 0; i < n && err == CD_OK;) {
        size_t run = i;
        while (run < n && (unsigned char)s[run] >= 0x20 && s[run] != '"' && s[run] != '\\' &&
               s[run] != 0x7f)
            run++;
        if (run > i) {
            err = buf_add(b, s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = (unsigned char)s[i++];
        char e[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
            e[1] = '"';
            break;
        case '\\':
            e[1] = '\\';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        default:
            e[1] = 'u', e[2] = '0', e[3] = '0', e[4] = hex[c >> 4], e[5] = hex[c & 15];
            elen = 6;
        }
        err = buf_add(b, e, elen);
    }
    if (err == CD_OK)
        err = buf_add(b, "\"", 1);
    return err;
}

cd_err casd_rest_detail(struct buf *out, const char *text)
{
    cd_err err = buf_add(out, "{\"detail\": ", 11);
    if (err == CD_OK)
        err = casd_json_add_string(out, text, strlen(text));
    if (err == CD_OK)
        err = buf_add(out, "}", 1);
    return err;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return status >= 500 ? "Internal Server Error" : "Error";
    }
}

cd_err casd_rest_response(struct buf *out, int status, const char *body, size_t len)
{
    return casd_rest_response_typed(out, status, "application/json", body, len);
}

cd_err casd_rest_response_typed(struct buf *out, int status, const char *ctype, const char *body,
                                size_t len)
{
    char head[320];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason(status), ctype, len);
    if (n < 0 || (size_t)n >= sizeof(head))
        return CD_ERR_INTERNAL;
    cd_err err = buf_add(out, head, (size_t)n);
    if (err == CD_OK && len > 0)
        err = buf_add(out, body, len);
    return err;
}
