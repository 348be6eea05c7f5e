/* verify.c: the CAS's side of the launcher protocol: who is calling, what it
 * measured, and the session's files when both match (verify.h). */
#include "release/verify.h"

#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cas/pki.h"
#include "common/codec.h"
#include "common/num.h"
#include "release/peer.h"

/* The largest message a launcher sends: a MEASURE with full evidence. */
#define IN_MAX                                                                                     \
    (RELEASE_HEADER + 3 * 4 + RELEASE_HASH_LEN + POLICY_MAX_MEASURED * (4 + RELEASE_HASH_LEN) +    \
     4 + RELEASE_NAME_MAX + 4 + RELEASE_EVIDENCE_MAX)

struct conn {
    int fd;
    const struct release_ctx *ctx;
    int64_t deadline;
    struct release_peer peer;            /* the caller (measured here, or by a node agent) */
    const struct release_remote *remote; /* the node path: what the agent measured; else NULL */
    struct buf *answer;                  /* the node path: messages go here, not to fd */
    uint8_t *in;
    const struct policy *p;
    uid_t uid; /* the session's user */
    char session[RELEASE_NAME_MAX + 1];
    char exe[RELEASE_HASH_HEX];
    unsigned char nonce[RELEASE_NONCE_LEN]; /* sent in SPEC; evidence binds to it */
    char who[RELEASE_WHO_MAX];
    char measurement[RELEASE_TEXT_MAX];
    char files[RELEASE_TEXT_MAX];
    char reason[RELEASE_REASON_MAX + 1];
};

/* Appends to a bounded text; marks a truncation with "..." at the end. */
static void text_add(char *t, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void text_add(char *t, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(t);
    va_list ap;
    va_start(ap, fmt);
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    int n = vsnprintf(t + len, cap - len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - len)
        memcpy(t + cap - 4, "...", 4);
}

static void record_files(struct conn *c, bool allowed, const char *const *names, size_t n)
{
    const struct release_outcome o = {.session = c->session,
                                      .who = c->who,
                                      .measurement = c->measurement,
                                      .files = c->files,
                                      .file_names = names,
                                      .nfile_names = n,
                                      .reason = c->reason,
                                      .allowed = allowed};
    if (c->ctx->record != NULL)
        c->ctx->record(c->ctx->record_arg, &o);
}

static void record(struct conn *c, bool allowed)
{
    record_files(c, allowed, NULL, 0);
}

/* Sends one message: over the socket, or (the node path) into the answer. */
static cd_err emit(struct conn *c, const struct buf *b)
{
    if (c->answer != NULL)
        return buf_add(c->answer, b->p, b->len);
    return release_send(c->fd, b, c->deadline);
}

/* Sends REFUSED(reason) (best effort) and records it. Returns err. */
static cd_err refuse(struct conn *c, cd_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static cd_err refuse(struct conn *c, cd_err err, const char *fmt, ...)
{
    struct buf b;
    va_list ap;
    va_start(ap, fmt);
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    (void)vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
    va_end(ap);
    for (char *s = c->reason; *s != '\0'; s++) /* a path from a session could hold anything */
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
    record(c, false); /* recorded before the launcher hears of it */
    buf_init(&b, RELEASE_HEADER + 4 + RELEASE_REASON_MAX + 1);
    if (release_enc_refused(&b, c->reason) == CD_OK)
        (void)emit(c, &b);
    buf_release(&b);
    return err;
}

/* A protocol failure (malformed, timeout, closed): nothing more is sent. */
static cd_err broken(struct conn *c, cd_err err, const char *what)
{
    snprintf(c->reason, sizeof(c->reason), "%s: %s", what, cd_strerror(err));
    record(c, false);
    return err;
}

/* SO_PEERCRED, a pidfd, and the SHA-256 of the caller's executable (peer.h). */
static cd_err identify(struct conn *c)
{
    const char *why = NULL;
    cd_err err = release_peer_identify(c->fd, &c->peer, &why);

    snprintf(c->who, sizeof(c->who), "uid=%u pid=%d", (unsigned)c->peer.uid, (int)c->peer.pid);
    if (err != CD_OK)
        return refuse(c, err, "%s", why);
    text_add(c->who, sizeof(c->who), " exe=%s", c->peer.exe);
    return CD_OK;
}

/* The node path: the caller as the node agent measured it. */
static void identify_remote(struct conn *c)
{
    const struct release_remote *r = c->remote;
    c->peer.pid = (pid_t)r->pid;
    c->peer.uid = (uid_t)r->uid;
    c->peer.gid = (gid_t)r->gid;
    snprintf(c->peer.exe, sizeof(c->peer.exe), "%s", r->exe);
    snprintf(c->who, sizeof(c->who), "node=%s uid=%u gid=%u pid=%d exe=%s", r->node,
             (unsigned)r->uid, (unsigned)r->gid, (int)r->pid, r->exe);
}

/* The session's user as a uid: measurements.user, else the owner. */
static bool session_uid(const struct policy *p, uid_t *out)
{
    const char *u = p->measure.user != NULL ? p->measure.user : p->owner;
    uint64_t v = 0;
    struct passwd pw, *res = NULL;
    char tmp[4096];

    if (u == NULL)
        return false;
    if (u[0] >= '0' && u[0] <= '9') {
        if (num_parse(u, strlen(u), 4294967294u, &v) != CD_OK)
            return false;
        *out = (uid_t)v;
        return true;
    }
    if (getpwnam_r(u, &pw, tmp, sizeof(tmp), &res) != 0 || res == NULL)
        return false;
    *out = pw.pw_uid;
    return true;
}

/* The checks of HELLO: an allowed launcher, a releasable session, a caller
 * uid of root or the session's user. c->session is set. */
static cd_err hello_check(struct conn *c)
{
    bool launcher = false;

    for (size_t i = 0; i < c->ctx->nlaunchers; i++)
        launcher = launcher || strcmp(c->ctx->launchers[i], c->peer.exe) == 0;
    if (!launcher)
        return refuse(c, CD_ERR_AUTH, "caller is not the confidoc-cas launcher (exe %s)",
                      c->peer.exe);
    c->p = policy_set_find(c->ctx->set, c->session);
    if (c->p == NULL || !c->p->measure.present)
        return refuse(c, CD_ERR_AUTH, "unknown session or not releasable");
    if (!session_uid(c->p, &c->uid))
        return refuse(c, CD_ERR_AUTH, "session %s: its user is unknown on this host", c->session);
    if (c->peer.uid != 0 && c->peer.uid != c->uid)
        return refuse(c, CD_ERR_AUTH,
                      "uid mismatch: caller uid %u is neither root nor the session's user (uid %u)",
                      (unsigned)c->peer.uid, (unsigned)c->uid);
    return CD_OK;
}

/* HELLO in m (already received or decoded; err its receive error). */
static cd_err hello(struct conn *c, cd_err err, const struct release_msg *m)
{
    if (err == CD_OK && m->type != RELEASE_HELLO)
        err = CD_ERR_INVALID;
    if (err != CD_OK)
        return broken(c, err, "no HELLO");
    (void)release_view_copy(m->session, c->session, sizeof(c->session));
    return hello_check(c);
}

static cd_err spec(struct conn *c)
{
    const struct policy_measure *pm = &c->p->measure;
    const char *paths[POLICY_MAX_MEASURED];
    struct buf b;

    for (size_t i = 0; i < pm->nconfig; i++)
        paths[i] = pm->config[i].path;
    if (getrandom(c->nonce, sizeof(c->nonce), 0) != (ssize_t)sizeof(c->nonce))
        return broken(c, CD_ERR_INTERNAL, "no random nonce");
    buf_init(&b, RELEASE_BUF_MAX);
    cd_err err = release_enc_spec(&b, (uint32_t)c->uid, pm->mount, paths, pm->nconfig, c->nonce);
    if (err == CD_OK)
        err = emit(c, &b);
    buf_release(&b);
    return err == CD_OK ? CD_OK : broken(c, err, "cannot send SPEC");
}

/* The report_data evidence must carry for this launch (evidence_binding):
 * this connection's nonce and the hashes the launcher reported in m. */
static cd_err binding(const struct conn *c, const struct release_msg *m,
                      unsigned char out[EVIDENCE_REPORT_DATA_LEN])
{
    unsigned char exe[EVIDENCE_HASH_LEN], configs[POLICY_MAX_MEASURED][EVIDENCE_HASH_LEN];

    if (codec_hex_decode(m->exe.p, m->exe.len, exe, sizeof(exe)) != CD_OK)
        return CD_ERR_INVALID;
    for (size_t i = 0; i < m->nconfig; i++)
        if (codec_hex_decode(m->config[i].p, m->config[i].len, configs[i], EVIDENCE_HASH_LEN) !=
            CD_OK)
            return CD_ERR_INVALID;
    return evidence_binding(c->nonce, exe, (const unsigned char(*)[EVIDENCE_HASH_LEN])configs,
                            m->nconfig, out);
}

cd_err release_evidence_registry(void *arg, const char *verifier, const void *blob, size_t len,
                                 const unsigned char report_data[EVIDENCE_REPORT_DATA_LEN])
{
    const struct evidence_verifier *v = evidence_find(verifier);
    struct evidence_claims claims;

    (void)arg;
    if (v == NULL)
        return CD_ERR_NOT_FOUND;
    return evidence_check(v, blob, len, report_data, &claims);
}

/* MEASURE in *mp (received or decoded; err its receive error). */
static cd_err check_measure(struct conn *c, cd_err err, const struct release_msg *mp)
{
    unsigned char report_data[EVIDENCE_REPORT_DATA_LEN];
    const struct policy_measure *pm = &c->p->measure;
    char exe[RELEASE_HASH_HEX], h[RELEASE_HASH_HEX], verifier[RELEASE_NAME_MAX + 1];
    bool exe_ok = false;

    if (err == CD_OK && mp->type != RELEASE_MEASURE)
        err = CD_ERR_INVALID;
    if (err != CD_OK)
        return broken(c, err, "no MEASURE");
    const struct release_msg m = *mp;
    (void)release_view_copy(m.exe, exe, sizeof(exe));
    text_add(c->measurement, sizeof(c->measurement), "exe=%s uid=%u", exe, (unsigned)m.uid);
    for (size_t i = 0; i < m.nconfig && i < pm->nconfig; i++)
        text_add(c->measurement, sizeof(c->measurement), "%s%s:%.64s", i == 0 ? " config=" : ",",
                 pm->config[i].path, m.config[i].p);
    for (size_t i = 0; i < pm->nexecutable; i++)
        exe_ok = exe_ok || strcmp(pm->executable[i], exe) == 0;
    if (!exe_ok)
        return refuse(c, CD_ERR_AUTH, "exe hash mismatch: %s is not an executable of session %s",
                      exe, c->session);
    if (m.uid != (uint32_t)c->uid)
        return refuse(c, CD_ERR_AUTH,
                      "uid mismatch: the command would run as uid %u, session %s "
                      "needs uid %u",
                      (unsigned)m.uid, c->session, (unsigned)c->uid);
    if (m.nconfig != pm->nconfig)
        return refuse(c, CD_ERR_AUTH, "config mismatch: %zu hashes for %zu files", m.nconfig,
                      pm->nconfig);
    for (size_t i = 0; i < pm->nconfig; i++) {
        (void)release_view_copy(m.config[i], h, sizeof(h));
        if (strcmp(h, pm->config[i].sha256) != 0)
            return refuse(c, CD_ERR_AUTH, "config %s mismatch", pm->config[i].path);
    }
    if (m.verifier.len > 0) {
        (void)release_view_copy(m.verifier, verifier, sizeof(verifier));
        text_add(c->measurement, sizeof(c->measurement), " evidence=%s", verifier);
        if (c->ctx->evidence == NULL)
            return refuse(c, CD_ERR_AUTH, "evidence verifier %s is not available", verifier);
        if (binding(c, &m, report_data) != CD_OK ||
            c->ctx->evidence(c->ctx->evidence_arg, verifier, m.evidence.p, m.evidence.len,
                             report_data) != CD_OK)
            return refuse(c, CD_ERR_AUTH, "evidence (%s) does not verify", verifier);
    }
    return CD_OK;
}

/* ---- the files ---- */

struct out_file {
    char *rel;
    bool public_file;
    struct buf content;
};

struct render {
    struct out_file files[RELEASE_MAX_FILES];
    size_t n, total;
};

static cd_err collect(void *arg, const struct policy *p, const char *rel,
                      const struct pki_buf *content, bool public_file)
{
    struct render *r = arg;
    (void)p;
    if (r->n >= RELEASE_MAX_FILES || content->len > RELEASE_CONTENT_MAX ||
        content->len > RELEASE_TOTAL_MAX - r->total)
        return CD_ERR_TOO_LARGE;
    struct out_file *f = &r->files[r->n];
    f->rel = strdup(rel);
    if (f->rel == NULL)
        return CD_ERR_NOMEM;
    f->public_file = public_file;
    buf_init(&f->content, content->len + 1);
    r->n++;
    r->total += content->len;
    return content->len > 0 ? buf_add(&f->content, content->data, content->len) : CD_OK;
}

static void render_free(struct render *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->files[i].rel);
        buf_release(&r->files[i].content);
    }
    free(r);
}

static cd_err send_files(struct conn *c, const struct render *r)
{
    struct buf b;
    cd_err err = CD_OK;
    for (size_t i = 0; i < r->n && err == CD_OK; i++) {
        const struct out_file *f = &r->files[i];
        buf_init(&b, RELEASE_BUF_MAX);
        err = release_enc_file(&b, f->rel, f->public_file, f->content.p, f->content.len);
        if (err == CD_OK)
            err = emit(c, &b);
        buf_release(&b); /* wipes the secret copy */
        text_add(c->files, sizeof(c->files), "%s%s", i == 0 ? "" : ",", f->rel);
    }
    if (err == CD_OK) {
        buf_init(&b, 64);
        err = release_enc_end(&b, (uint32_t)r->n);
        if (err == CD_OK)
            err = emit(c, &b);
        buf_release(&b);
    }
    return err;
}

static cd_err release(struct conn *c)
{
    struct render *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return refuse(c, CD_ERR_NOMEM, "out of memory");
    cd_err err = cas_material_render(c->ctx->material, c->p, collect, r);
    if (err != CD_OK) {
        render_free(r);
        return refuse(c, err, "cannot render session %s: %s", c->session, cd_strerror(err));
    }
    if (c->remote == NULL && !release_peer_alive(&c->peer)) {
        render_free(r);
        return refuse(c, CD_ERR_AUTH, "the caller exited before the release");
    }
    err = send_files(c, r);
    if (err != CD_OK) {
        render_free(r);
        return broken(c, err, "cannot send the files");
    }
    const char *names[RELEASE_MAX_FILES];
    for (size_t i = 0; i < r->n; i++)
        names[i] = r->files[i].rel;
    record_files(c, true, names, r->n);
    render_free(r);
    return CD_OK;
}

/* A connection on fd, or (remote set) one step of the node path into answer. */
static struct conn *conn_new(const struct release_ctx *ctx, int fd,
                             const struct release_remote *remote, struct buf *answer)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->fd = fd;
    c->ctx = ctx;
    c->peer.pidfd = -1;
    c->deadline =
        release_now_ms() + (ctx->timeout_ms > 0 ? ctx->timeout_ms : RELEASE_TIMEOUT_MS_DEFAULT);
    c->remote = remote;
    c->answer = answer;
    if (remote != NULL)
        identify_remote(c);
    return c;
}

static void conn_free(struct conn *c)
{
    release_peer_close(&c->peer);
    free(c->in);
    free(c);
}

cd_err release_serve_conn(int conn_fd, const struct release_ctx *ctx)
{
    struct conn *c = conn_new(ctx, conn_fd, NULL, NULL);
    struct release_msg m;
    cd_err err = CD_ERR_NOMEM;

    if (c == NULL)
        return CD_ERR_NOMEM;
    release_sndbuf(conn_fd);
    c->in = malloc(IN_MAX);
    if (c->in == NULL) {
        err = refuse(c, CD_ERR_NOMEM, "out of memory");
        goto out;
    }
    err = identify(c);
    if (err == CD_OK)
        err = hello(c, release_recv(c->fd, c->in, IN_MAX, c->deadline, &m), &m);
    if (err == CD_OK)
        err = spec(c);
    if (err == CD_OK)
        err = check_measure(c, release_recv(c->fd, c->in, IN_MAX, c->deadline, &m), &m);
    if (err == CD_OK)
        err = release(c);
out:
    conn_free(c);
    return err;
}

/* ---- the node path ---- */

/* After a failure that may have left partial messages in the answer: the
 * answer becomes the one REFUSED of the recorded reason. */
static void answer_refused(struct conn *c)
{
    struct buf b;
    buf_release(c->answer);
    buf_init(&b, RELEASE_HEADER + 4 + RELEASE_REASON_MAX + 1);
    if (release_enc_refused(&b, c->reason[0] != '\0' ? c->reason : "refused") == CD_OK)
        (void)buf_add(c->answer, b.p, b.len);
    buf_release(&b);
}

cd_err release_node_hello(const struct release_ctx *ctx, const struct release_remote *r,
                          const void *msg, size_t len, struct buf *answer,
                          unsigned char nonce[RELEASE_NONCE_LEN],
                          char session[RELEASE_NAME_MAX + 1])
{
    struct conn *c = conn_new(ctx, -1, r, answer);
    struct release_msg m;

    if (c == NULL)
        return CD_ERR_NOMEM;
    cd_err err = hello(c, release_decode(msg, len, &m), &m);
    if (err == CD_OK)
        err = spec(c);
    if (err == CD_OK) {
        memcpy(nonce, c->nonce, RELEASE_NONCE_LEN);
        memcpy(session, c->session, sizeof(c->session));
    } else if (err != CD_ERR_AUTH) {
        answer_refused(c);
    }
    conn_free(c);
    return err;
}

cd_err release_node_measure(const struct release_ctx *ctx, const struct release_remote *r,
                            const char *session, const unsigned char nonce[RELEASE_NONCE_LEN],
                            const void *msg, size_t len, struct buf *answer)
{
    struct conn *c = conn_new(ctx, -1, r, answer);
    struct release_msg m;

    if (c == NULL)
        return CD_ERR_NOMEM;
    snprintf(c->session, sizeof(c->session), "%s", session);
    memcpy(c->nonce, nonce, RELEASE_NONCE_LEN);
    /* HELLO's checks again: the sessions may have changed since. */
    cd_err err = hello_check(c);
    if (err == CD_OK)
        err = check_measure(c, release_decode(msg, len, &m), &m);
    if (err == CD_OK)
        err = release(c);
    if (err != CD_OK && err != CD_ERR_AUTH)
        answer_refused(c);
    conn_free(c);
    return err;
}
