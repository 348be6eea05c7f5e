/* documents.c: document routes: create_document, get, content, put, delete, list. */
#include "handlers/handlers_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/codec.h"
#include "common/deadline.h"
#include "common/jsonw.h"
#include "log/log.h"
#include "validate/validate.h"

/* Content type of documents created through JSON (create_document, JSON PUT). */
#define HD_TEXT_CTYPE "text/plain; charset=utf-8"
#define HD_PUT_ATTEMPTS 5
/* How long a large transfer waits for its turn before 503. */
#define HD_LARGE_WAIT_MS 10000
/* One client (hd_client_address; an IPv6 client by its /64) holds at most
 * ceil(places / HD_LARGE_SHARE_DIV) of the large-transfer places, waiting for
 * one or served: slow readers from one address cannot take them all. Its
 * further requests wait for its own share first (within the same
 * HD_LARGE_WAIT_MS). */
#define HD_LARGE_SHARE_DIV 4
/* Clients with large transfers under way at once; more: 503. */
#define HD_LARGE_CLIENTS 1024

/* A client's share of the large-transfer places. */
struct hd_share {
    unsigned char key[17]; /* address family, then the IPv4 address or the IPv6 /64 */
    unsigned held;         /* places held or waited for; 0: entry free */
    gate *g;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t freed; /* a share was given back */
    struct hd_share c[HD_LARGE_CLIENTS];
} hd_shares = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {{{0}, 0, NULL}}};

static void hd_share_key(const struct hd_req *c, unsigned char key[17])
{
    struct sockaddr_storage addr;
    socklen_t len = 0;

    memset(key, 0, 17);
    hd_client_address(c->app, c->req, &addr, &len);
    key[0] = (unsigned char)addr.ss_family;
    if (addr.ss_family == AF_INET && len >= sizeof(struct sockaddr_in))
        memcpy(key + 1, &((const struct sockaddr_in *)&addr)->sin_addr, 4);
    else if (addr.ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        memcpy(key + 1, &((const struct sockaddr_in6 *)&addr)->sin6_addr, 8);
}

/* The client's entry (a free one made its own if it has none); NULL when the
 * table is full. Under hd_shares.lock. */
static struct hd_share *hd_share_find(const unsigned char key[17], gate *g)
{
    struct hd_share *free_entry = NULL;

    for (size_t i = 0; i < HD_LARGE_CLIENTS; i++) {
        struct hd_share *e = &hd_shares.c[i];
        if (e->held == 0) {
            if (free_entry == NULL)
                free_entry = e;
        } else if (memcmp(e->key, key, 17) == 0) {
            return e;
        }
    }
    if (free_entry != NULL) {
        memcpy(free_entry->key, key, 17);
        free_entry->g = g;
    }
    return free_entry;
}

/* Takes one of the client's share, waiting until deadline (CLOCK_REALTIME,
 * as hd_shares.freed uses) for one of its own to come back; NULL on timeout
 * or when the table is full. */
static struct hd_share *hd_share_take(struct hd_req *c, const struct timespec *deadline)
{
    unsigned slots = gate_slots(c->app->large);
    unsigned share = (slots + HD_LARGE_SHARE_DIV - 1) / HD_LARGE_SHARE_DIV;
    struct hd_share *e;
    unsigned char key[17];

    hd_share_key(c, key);
    pthread_mutex_lock(&hd_shares.lock);
    for (;;) {
        e = hd_share_find(key, c->app->large);
        if (e == NULL || e->held < share)
            break;
        if (pthread_cond_timedwait(&hd_shares.freed, &hd_shares.lock, deadline) == ETIMEDOUT) {
            e = NULL;
            break;
        }
    }
    if (e != NULL)
        e->held++;
    pthread_mutex_unlock(&hd_shares.lock);
    return e;
}

static void hd_share_give(struct hd_share *e)
{
    pthread_mutex_lock(&hd_shares.lock);
    if (e->held > 0)
        e->held--;
    pthread_cond_broadcast(&hd_shares.freed);
    pthread_mutex_unlock(&hd_shares.lock);
}

/* Notes what a statement with auth_gen said of the principal (c->auth).
 * True when it refused auth_gen (HD_AUTH_STALE). */
static bool hd_stale(struct hd_req *c, cd_err rc)
{
    /* Confirmed principals too: every document statement checks auth_gen, so
     * a key rotation committed since the login is seen, never written over. */
    if (rc == CD_ERR_AUTH)
        c->auth = HD_AUTH_STALE;
    else if (c->auth == HD_AUTH_UNCONFIRMED && (rc == CD_OK || rc == CD_ERR_NOT_FOUND ||
                                                rc == CD_ERR_EXISTS || rc == CD_ERR_TOO_LARGE))
        c->auth = HD_AUTH_CONFIRMED; /* the statement matched the account's auth_gen */
    return c->auth == HD_AUTH_STALE;
}

static void hd_ad(const struct hd_req *c, int64_t record_id, uint64_t version,
                  struct crypto_doc_ad *ad)
{
    memcpy(ad->owner_uid, c->p.uid, sizeof(ad->owner_uid));
    ad->record_id = record_id;
    ad->version = version;
}

static void hd_not_found(struct http_response *resp)
{
    hd_error(resp, 404, "A document with this record ID does not exist");
}

static void hd_bad_record_id(struct http_response *resp)
{
    hd_error(resp, 422, "record_id must be an integer between 0 and 9223372036854775807");
}

/* The record id of the path, or false (422 answered). */
static bool hd_path_record_id(const struct route_match *m, struct http_response *resp, int64_t *out)
{
    if (m->param_too_long || !validate_record_id_text(m->param, strlen(m->param), out)) {
        hd_bad_record_id(resp);
        return false;
    }
    return true;
}

/* Large documents (ciphertext over DB_INLINE_CONTENT_MAX) are handled at most
 * app->max_large at once, in arrival order: each holds its ciphertext, its
 * plaintext or answer, and a database buffer of its size; this bounds that
 * memory (docs/performance.md). CD_ERR_LIMITED after HD_LARGE_WAIT_MS. */
static cd_err hd_large_enter(struct hd_req *c)
{
    struct timespec deadline, start, now;
    struct hd_share *share;
    long long waited_ms;
    unsigned left_ms;

    hd_active_leave(c); /* large transfers are bounded by their own gate */
    if (c->app->large == NULL)
        return CD_OK;
    /* The wait below must not hold a thread of the normal lane: the request
     * starts again on the large lane (whatever is answered here is dropped). */
    if (http_request_move(c->req, c->resp, HTTP_LANE_LARGE))
        return CD_ERR_LIMITED;
    clock_gettime(CLOCK_MONOTONIC, &start);
    cd_deadline(CLOCK_REALTIME, HD_LARGE_WAIT_MS, &deadline);
    share = hd_share_take(c, &deadline);
    if (share == NULL)
        return CD_ERR_LIMITED;
    clock_gettime(CLOCK_MONOTONIC, &now);
    waited_ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    left_ms = waited_ms >= HD_LARGE_WAIT_MS ? 0 : (unsigned)(HD_LARGE_WAIT_MS - waited_ms);
    if (gate_enter(c->app->large, left_ms) != CD_OK) {
        hd_share_give(share);
        return CD_ERR_LIMITED;
    }
    c->share = share;
    return CD_OK;
}

/* on_done of a large answer: its client's share and its place. */
static void hd_large_leave(void *cls)
{
    struct hd_share *share = cls;
    gate *g = share->g;

    hd_share_give(share);
    gate_leave(g);
}

/* Gives the place back now, if *held. */
static void hd_large_release(struct hd_req *c, bool *held)
{
    if (*held) {
        hd_share_give(c->share);
        gate_leave(c->app->large);
        c->share = NULL;
    }
    *held = false;
}

/* The answer holds the place until the server has sent and freed it. */
static void hd_large_until_sent(struct hd_req *c, bool *held)
{
    if (!*held)
        return;
    c->resp->on_done = hd_large_leave;
    c->resp->on_done_cls = c->share;
    c->share = NULL;
    *held = false;
}

/* Encrypts and stores a version of record_id; tries again when a concurrent
 * writer won. create_only: 409 instead of replacing. *created tells which. */
static cd_err hd_store(struct hd_req *c, int64_t record_id, const char *ctype,
                       const uint8_t *content, size_t len, bool create_only, bool *created,
                       uint64_t *version_out)
{
    struct db_doc d;
    size_t cap = len + CRYPTO_AEAD_OVERHEAD;
    bool large = false; /* holding a large-transfer place */
    cd_err rc = CD_ERR_CONFLICT;

    memset(&d, 0, sizeof(d));
    if (cap > DB_INLINE_CONTENT_MAX) {
        if (hd_large_enter(c) != CD_OK)
            return CD_ERR_LIMITED;
        large = c->app->large != NULL;
    }
    d.content_ct = malloc(cap);
    if (d.content_ct == NULL) {
        hd_large_release(c, &large);
        return CD_ERR_NOMEM;
    }
    d.owner_id = c->p.id;
    d.record_id = record_id;
    d.size = len;
    for (int attempt = 0; attempt < HD_PUT_ATTEMPTS; attempt++) {
        struct crypto_doc_ad ad;
        uint64_t current = 0;

        if (!create_only) {
            rc = db_doc_version(c->app->db, c->p.id, record_id, &current);
            if (rc == CD_ERR_NOT_FOUND)
                current = 0;
            else if (rc != CD_OK)
                break;
        }
        d.version = current + 1;
        hd_ad(c, record_id, d.version, &ad);
        rc = crypto_doc_seal(c->kek, &ad, ctype, strlen(ctype), content, len, d.wrapped_dk,
                             d.ctype_ct, sizeof(d.ctype_ct), &d.ctype_ct_len, d.content_ct, cap,
                             &d.content_ct_len);
        if (rc != CD_OK)
            break;
        if (current == 0) {
            rc = db_doc_insert_if_gen(c->app->db, &d, c->p.auth_gen);
            if (hd_stale(c, rc))
                break;
            if (rc == CD_ERR_EXISTS && !create_only)
                continue; /* created concurrently: replace it */
            *created = true;
        } else {
            rc = db_doc_replace_if_gen(c->app->db, &d, current, c->p.auth_gen);
            if (hd_stale(c, rc))
                break;
            if (rc == CD_ERR_CONFLICT || rc == CD_ERR_NOT_FOUND)
                continue; /* another writer won or deleted it: read again */
            *created = false;
        }
        break;
    }
    if (rc == CD_OK)
        *version_out = d.version;
    db_doc_release(&d);
    hd_large_release(c, &large);
    return rc;
}

/* Reads and decrypts a document. content is malloc'ed (caller wipes and frees).
 * A large document takes a large-transfer place first: *large_held tells the
 * caller to pass it on with hd_large_until_sent (or to leave the gate). */
static cd_err hd_load(struct hd_req *c, int64_t record_id, struct db_doc *d, char *ctype,
                      size_t ctype_cap, uint8_t **content, size_t *len, bool *large_held)
{
    const uint32_t *gen = &c->p.auth_gen;
    struct crypto_doc_ad ad;
    size_t ctype_len;
    uint8_t *buf;
    cd_err rc;

    *large_held = false;
    rc = db_doc_read(c->app->db, c->p.id, gen, record_id, DB_INLINE_CONTENT_MAX, d);
    if (hd_stale(c, rc))
        return rc;
    if (rc == CD_ERR_TOO_LARGE) {
        /* The statement confirmed gen; now make room, then fetch it all. */
        rc = hd_large_enter(c);
        if (rc != CD_OK)
            return rc;
        *large_held = c->app->large != NULL;
        rc = db_doc_read(c->app->db, c->p.id, gen, record_id, SIZE_MAX, d);
    }
    if (rc != CD_OK)
        return rc;
    if (d->content_ct_len < CRYPTO_DOC_OVERHEAD_MIN) {
        db_doc_release(d);
        return CD_ERR_CRYPTO;
    }
    buf = malloc(d->content_ct_len - CRYPTO_DOC_OVERHEAD_MIN + 1);
    if (buf == NULL) {
        db_doc_release(d);
        return CD_ERR_NOMEM;
    }
    hd_ad(c, record_id, d->version, &ad);
    rc = crypto_doc_open(c->kek, &ad, d->wrapped_dk, d->ctype_ct, d->ctype_ct_len, d->content_ct,
                         d->content_ct_len, ctype, ctype_cap, &ctype_len, buf,
                         d->content_ct_len - CRYPTO_DOC_OVERHEAD_MIN + 1, len);
    db_doc_release(d);
    if (rc != CD_OK) {
        free(buf);
        return rc;
    }
    *content = buf;
    return CD_OK;
}

static void hd_load_failed(struct hd_req *c, cd_err rc)
{
    if (hd_stale(c, rc))
        return;
    if (rc == CD_ERR_NOT_FOUND) {
        hd_not_found(c->resp);
    } else if (rc == CD_ERR_CRYPTO) {
        /* A row that does not decrypt was altered or moved: refuse it loudly. */
        log_errorx("req=%s document of user id %llu fails authentication", c->req->request_id,
                   (unsigned long long)c->p.id);
        hd_error(c->resp, 500, "Internal server error");
    } else {
        hd_fail(c->resp, rc, c->req, "read document");
    }
}

static bool hd_is_text(const char *ctype, const uint8_t *content, size_t len)
{
    if (content == NULL)
        return len == 0 && strncmp(ctype, "text/", 5) == 0;
    return strncmp(ctype, "text/", 5) == 0 && memchr(content, '\0', len) == NULL &&
           validate_utf8((const char *)content, len);
}

/* The document a path names, loaded and opened (hd_load_path). */
struct hd_loaded {
    int64_t record_id;
    struct db_doc d;
    char ctype[VALIDATE_CTYPE_MAX + 1];
    uint8_t *content; /* plaintext: wiped and freed by the handler or the response */
    size_t len;
    bool large; /* holds a large-download slot (hd_large_*) */
};

/* The document the path names, loaded and opened into v; false when an
 * answer (404, 503, ...) has been written instead. */
static bool hd_load_path(struct hd_req *c, struct hd_loaded *v)
{
    cd_err rc;

    if (!hd_path_record_id(c->m, c->resp, &v->record_id))
        return false;
    rc = hd_load(c, v->record_id, &v->d, v->ctype, sizeof(v->ctype), &v->content, &v->len,
                 &v->large);
    if (rc != CD_OK) {
        hd_large_release(c, &v->large);
        hd_load_failed(c, rc);
        return false;
    }
    return true;
}

/* GET /documents/{id}: the original's JSON view. Text documents carry their
 * text in "content"; binary ones carry base64 and say so. */
void hd_get(struct hd_req *c)
{
    struct hd_loaded v = {0};
    struct jsonw_field f[5];
    size_t n = 0;
    char *b64 = NULL;
    size_t b64_cap = 0;

    if (!hd_load_path(c, &v))
        return;
    f[n++] = (struct jsonw_field){.key = "record_id", .kind = JSONW_INT, .i = v.record_id};
    f[n++] = (struct jsonw_field){
        .key = "owner", .kind = JSONW_STR, .s = c->creds.user, .len = c->creds.user_len};
    if (hd_is_text(v.ctype, v.content, v.len)) {
        f[n++] = (struct jsonw_field){
            .key = "content", .kind = JSONW_STR, .s = (const char *)v.content, .len = v.len};
    } else {
        b64_cap = CODEC_B64_LEN(v.len);
        b64 = malloc(b64_cap);
        if (b64 == NULL || codec_b64_encode(v.content, v.len, b64, b64_cap) != CD_OK) {
            hd_error(c->resp, 500, "Internal server error");
            goto out;
        }
        f[n++] =
            (struct jsonw_field){.key = "content", .kind = JSONW_STR, .s = b64, .len = b64_cap - 1};
        f[n++] = (struct jsonw_field){
            .key = "content_encoding", .kind = JSONW_STR, .s = "base64", .len = 6};
    }
    f[n++] = (struct jsonw_field){
        .key = "content_type", .kind = JSONW_STR, .s = v.ctype, .len = strlen(v.ctype)};
    hd_json_fields(c->resp, 200, f, n);
out:
    if (b64 != NULL) {
        crypto_wipe(b64, b64_cap);
        free(b64);
    }
    crypto_wipe(v.content, v.len);
    free(v.content);
    hd_large_until_sent(c, &v.large);
}

/* A file name extension for a few well-known, passive media types; "" for
 * the rest (active ones such as text/html or image/svg+xml included). */
static const char *hd_extension(const char *ctype)
{
    static const struct {
        const char *type;
        const char *ext;
    } known[] = {
        {"text/plain", ".txt"},      {"text/csv", ".csv"},        {"application/json", ".json"},
        {"application/pdf", ".pdf"}, {"image/png", ".png"},       {"image/jpeg", ".jpg"},
        {"image/gif", ".gif"},       {"application/zip", ".zip"},
    };
    size_t n = strcspn(ctype, "; ");

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strlen(known[i].type) == n && strncasecmp(ctype, known[i].type, n) == 0)
            return known[i].ext;
    }
    return "";
}

/* Raw content is never rendered by a browser: a download (RFC 6266, with the
 * RFC 5987 form of the same ASCII name), and a sandbox without any source
 * should it be shown anyway. */
static bool hd_attachment_headers(struct http_response *resp, int64_t record_id, const char *ctype)
{
    char disp[160];
    const char *ext = hd_extension(ctype);
    int n = snprintf(disp, sizeof(disp),
                     "attachment; filename=\"document-%lld%s\"; filename*=UTF-8''document-%lld%s",
                     (long long)record_id, ext, (long long)record_id, ext);

    return n > 0 && (size_t)n < sizeof(disp) &&
           http_response_header(resp, "Content-Disposition", disp) == CD_OK &&
           http_response_header(resp, "Content-Security-Policy", "sandbox; default-src 'none'") ==
               CD_OK;
}

/* GET /documents/{id}/content: the bytes, with the stored content type, as
 * an attachment. */
void hd_get_content(struct hd_req *c)
{
    struct hd_loaded v = {0};

    if (!hd_load_path(c, &v))
        return;
    if (!hd_attachment_headers(c->resp, v.record_id, v.ctype) ||
        http_response_content_type(c->resp, v.ctype) != CD_OK) {
        crypto_wipe(v.content, v.len);
        free(v.content);
        hd_large_release(c, &v.large);
        hd_error(c->resp, 500, "Internal server error");
        return;
    }
    hd_large_until_sent(c, &v.large);
    c->resp->status = 200; /* content type: copied into resp above */
    c->resp->body = v.content;
    c->resp->body_len = v.len;
}

void hd_create_document(struct hd_req *c)
{
    struct hd_doc_body b;
    bool created = false;
    uint64_t version = 0;
    cd_err rc;

    if (!hd_doc_body_parse(c->req, c->resp, &b))
        return;
    if (!b.has_rid || !b.rid_ok) {
        hd_bad_record_id(c->resp);
        goto out;
    }
    if (!b.content_ok) {
        hd_error(c->resp, 422, "content must be a string");
        goto out;
    }
    rc =
        hd_store(c, b.record_id, HD_TEXT_CTYPE, b.content, b.content_len, true, &created, &version);
    if (hd_stale(c, rc))
        goto out;
    if (rc == CD_ERR_EXISTS)
        hd_error(c->resp, 409, "A document with this record ID already exists");
    else if (rc != CD_OK)
        hd_fail(c->resp, rc, c->req, "create document");
    else {
        struct jsonw_field f[] = {
            {.key = "record_id", .kind = JSONW_INT, .i = b.record_id},
            {.key = "content",
             .kind = JSONW_STR,
             .s = (const char *)b.content,
             .len = b.content_len},
        };
        hd_json_fields(c->resp, 200, f, 2);
    }
out:
    hd_doc_body_release(&b);
}

static bool hd_is_json_ctype(const char *ctype)
{
    size_t n = strlen("application/json");
    return ctype != NULL && strncasecmp(ctype, "application/json", n) == 0 &&
           (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

/* PUT /documents/{id}: JSON {"content": text} stores text; any other body is
 * stored as bytes with its Content-Type. With "If-None-Match: *" (RFC 9110,
 * 13.1.2) it only creates: 412 when the document exists, which is left as it
 * was (a client picking a free record id cannot overwrite another's upload).
 * Documents have no entity tags, so any other If-None-Match value is 422. */
void hd_put(struct hd_req *c)
{
    const char *ctype = http_request_header(c->req, "Content-Type");
    const char *inm = http_request_header(c->req, "If-None-Match");
    const uint8_t *content = c->req->body;
    size_t len = c->req->body_len;
    struct hd_doc_body body = {0};
    bool created = false;
    uint64_t version = 0;
    int64_t record_id;
    cd_err rc;

    if (!hd_path_record_id(c->m, c->resp, &record_id))
        return;
    if (inm != NULL && strcmp(inm, "*") != 0) {
        hd_error(c->resp, 422, "If-None-Match: only * is supported");
        return;
    }
    if (hd_is_json_ctype(ctype)) {
        if (!hd_doc_body_parse(c->req, c->resp, &body))
            return;
        if (!body.content_ok) {
            hd_error(c->resp, 422, "content must be a string");
            goto out;
        }
        if (body.has_rid && (!body.rid_ok || body.record_id != record_id)) {
            hd_error(c->resp, 422, "record_id in the body must match the path");
            goto out;
        }
        ctype = HD_TEXT_CTYPE;
        content = body.content;
        len = body.content_len;
    } else if (ctype == NULL || ctype[0] == '\0') {
        ctype = "application/octet-stream";
    } else if (!validate_content_type(ctype, strlen(ctype))) {
        hd_error(c->resp, 422, "Invalid Content-Type");
        goto out;
    }
    rc = hd_store(c, record_id, ctype, content, len, inm != NULL, &created, &version);
    if (rc == CD_ERR_EXISTS && inm != NULL) {
        hd_error(c->resp, 412, "A document with this record ID already exists");
        goto out;
    }
    if (rc != CD_OK) {
        hd_fail(c->resp, rc, c->req, "store document");
        goto out;
    }
    hd_json(c->resp, created ? 201 : 200,
            json_pack("{s:I,s:I,s:I,s:s}", "record_id", (json_int_t)record_id, "version",
                      (json_int_t)version, "size", (json_int_t)len, "content_type", ctype));
out:
    hd_doc_body_release(&body);
}

void hd_delete(struct hd_req *c)
{
    int64_t record_id;
    cd_err rc;

    if (!hd_path_record_id(c->m, c->resp, &record_id))
        return;
    rc = db_doc_delete(c->app->db, c->p.id, record_id);
    if (rc == CD_OK)
        c->resp->status = 204;
    else if (rc == CD_ERR_NOT_FOUND)
        hd_not_found(c->resp);
    else
        hd_fail(c->resp, rc, c->req, "delete document");
}

/* Reads an unsigned decimal query argument; def when absent; false if malformed. */
static bool hd_query_u64(const struct http_request *req, const char *name, int64_t def,
                         int64_t *out)
{
    const char *v = http_request_query(req, name);
    if (v == NULL) {
        *out = def;
        return true;
    }
    return validate_record_id_text(v, strlen(v), out);
}

/* GET /documents?limit=N&after=ID: the caller's documents in record id order. */
void hd_list(struct hd_req *c)
{
    unsigned max = c->app->list_page_max;
    struct db_doc *docs = NULL;
    int64_t limit, after;
    json_t *arr, *obj;
    size_t n = 0;
    cd_err rc;

    if (!hd_query_u64(c->req, "limit", max, &limit) || limit < 1 ||
        !hd_query_u64(c->req, "after", -1, &after)) {
        hd_error(c->resp, 422, "limit must be a positive integer and after a record id");
        return;
    }
    if (limit > (int64_t)max)
        limit = max;
    docs = calloc((size_t)limit, sizeof(*docs));
    arr = json_array();
    if (docs == NULL || arr == NULL) {
        free(docs);
        json_decref(arr);
        hd_fail(c->resp, CD_ERR_NOMEM, c->req, "list documents");
        return;
    }
    rc = db_doc_list_if_gen(c->app->db, c->p.id, c->p.auth_gen, after, docs, (size_t)limit, &n);
    if (rc != CD_OK) {
        free(docs);
        json_decref(arr);
        if (!hd_stale(c, rc))
            hd_fail(c->resp, rc, c->req, "list documents");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char ctype[VALIDATE_CTYPE_MAX + 1];
        struct crypto_doc_ad ad;
        size_t ctype_len, none = 0;

        hd_ad(c, docs[i].record_id, docs[i].version, &ad);
        if (crypto_doc_open(c->kek, &ad, docs[i].wrapped_dk, docs[i].ctype_ct, docs[i].ctype_ct_len,
                            NULL, 0, ctype, sizeof(ctype), &ctype_len, NULL, 0, &none) != CD_OK) {
            log_errorx("req=%s listed document fails authentication", c->req->request_id);
            snprintf(ctype, sizeof(ctype), "unknown");
        }
        json_array_append_new(
            arr, json_pack("{s:I,s:I,s:I,s:s,s:o,s:o}", "record_id", (json_int_t)docs[i].record_id,
                           "version", (json_int_t)docs[i].version, "size", (json_int_t)docs[i].size,
                           "content_type", ctype, "created_at", hd_time(docs[i].created_us),
                           "updated_at", hd_time(docs[i].updated_us)));
    }
    obj = json_pack("{s:o}", "documents", arr);
    if (obj != NULL)
        json_object_set_new(obj, "next_after",
                            n == (size_t)limit ? json_integer(docs[n - 1].record_id) : json_null());
    free(docs);
    hd_json(c->resp, 200, obj);
}
