/* parent.c: the CAS's parent process (casd.h): the state, the identity, the
 * worker's life, and the answers to its requests. Never parses HTTP or TLS. */
#include "casd/casd.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cas/audit.h"
#include "cas/cas.h"
#include "cas/seal.h"
#include "cas/store.h"
#include "casd/ipc.h"
#include "casd/node.h"
#include "casd/rest.h"
#include "casd/sessions.h"
#include "common/num.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "release/measure.h"
#include "release/verify.h"

#define RESTART_MIN_SECONDS 1 /* between two starts of the worker */
#define STOP_WAIT_MS 3000

/* ---- the identity: a CA and a TLS leaf, kept in the store as a policy of their own ---- */

struct identity {
    struct pki_buf ca_cert, ca_key, chain, key;
    char pin[PKI_FP_HEX];
};

static void identity_release(struct identity *id)
{
    pki_buf_release(&id->ca_cert);
    pki_buf_release(&id->ca_key);
    pki_buf_release(&id->chain);
    pki_buf_release(&id->key);
}

static cd_err add(struct buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

/* The identity's policy text: a CA, a leaf for the names and the listen IP. */
static cd_err identity_text(const struct casd_serve_config *c, struct buf *t)
{
    bool wildcard = strcmp(c->listen_host, "0.0.0.0") == 0 || strcmp(c->listen_host, "::") == 0;
    cd_err err = add(t, "name: " CASD_STORE_IDENTITY "\n"
                        "secrets:\n"
                        "  - name: CA\n    kind: x509-ca\n    common_name: confidoc CAS CA\n"
                        "  - name: TLS\n    kind: x509\n    issuer: CA\n"
                        "    common_name: confidoc CAS\n    usage: [server]\n    dns: [");
    for (size_t i = 0; i < c->nnames && err == CD_OK; i++) {
        err = add(t, i > 0 ? ", \"" : "\"");
        if (err == CD_OK)
            err = add(t, c->names[i]);
        if (err == CD_OK)
            err = add(t, "\"");
    }
    if (err == CD_OK && c->nnames == 0)
        err = add(t, "localhost");
    if (err == CD_OK)
        err = add(t, "]\n");
    if (err == CD_OK && !wildcard) {
        err = add(t, "    ip: [\"");
        if (err == CD_OK)
            err = add(t, c->listen_host);
        if (err == CD_OK)
            err = add(t, "\"]\n");
    }
    if (err == CD_OK)
        err = add(t, "injection_files:\n"
                     "  - path: ca.crt\n    content: $$CAS::CA.crt$$\n"
                     "  - path: ca.key\n    content: $$CAS::CA.key$$\n"
                     "  - path: tls.crt\n    content: $$CAS::TLS.chain$$\n"
                     "  - path: tls.key\n    content: $$CAS::TLS.key$$\n");
    return err;
}

static cd_err take_file(void *ctx, const struct policy *p, const char *rel,
                        const struct pki_buf *content, bool public_file)
{
    struct identity *id = ctx;
    struct pki_buf *dst = strcmp(rel, "ca.crt") == 0    ? &id->ca_cert
                          : strcmp(rel, "ca.key") == 0  ? &id->ca_key
                          : strcmp(rel, "tls.crt") == 0 ? &id->chain
                          : strcmp(rel, "tls.key") == 0 ? &id->key
                                                        : NULL;
    (void)p;
    (void)public_file;
    if (dst == NULL)
        return CD_OK;
    if ((dst->data = malloc(content->len + 1)) == NULL)
        return CD_ERR_NOMEM;
    memcpy(dst->data, content->data, content->len + 1);
    dst->len = content->len;
    return CD_OK;
}

/* Creates (first start), keeps or renews the identity (cas_material_build's
 * rules: a leaf within 30 days of expiry or with other names is re-issued;
 * the CA key never changes, so neither does the pin). */
static cd_err identity_load(const struct casd_serve_config *c, struct cas_store *store,
                            struct identity *id, struct cd_diag *diag)
{
    const char *file = "cas-identity";
    struct policy_set *set = NULL;
    struct cas_material *m = NULL;
    struct buf t;
    cd_err err;

    buf_init(&t, 16384);
    if ((err = identity_text(c, &t)) != CD_OK)
        goto out;
    const char *text = t.p;
    if ((err = policy_set_parse_buffers(&file, &text, &t.len, 1, NULL, true, &set, diag)) !=
        CD_OK) {
        cd_diag_add(diag, "the CAS's names (--name, --listen) do not make a certificate");
        goto out;
    }
    struct cas_build b = {.set = set, .store = store, .where = "identity"};
    if ((err = cas_material_build(&b, diag, &m)) != CD_OK)
        goto out;
    if ((err = cas_material_render(m, set->policies[0], take_file, id)) != CD_OK)
        goto out;
    if (id->ca_key.data == NULL || id->chain.data == NULL || id->key.data == NULL) {
        err = CD_ERR_INTERNAL;
        goto out;
    }
    err = pki_key_fingerprint(id->ca_key.data, id->ca_key.len, id->pin);
out:
    if (err != CD_OK && diag->count == 0)
        cd_diag_add(diag, "cannot create or load the CAS's identity: %s", cd_strerror(err));
    cas_material_free(m);
    policy_set_free(set);
    buf_release(&t);
    return err;
}

static cd_err write_public(const char *path, const char *text)
{
    bool changed = false;
    return store_write_file(path, text, strlen(text), 0644, (uid_t)-1, (gid_t)-1, &changed);
}

/* ---- the worker ---- */

struct parent {
    const struct casd_serve_config *c;
    struct casd_sessions *sessions;
    struct casd_nodes *nodes;
    struct seal_key *seal;
    struct cas_store *store;
    struct audit_log *audit;
    struct identity id;
    int listen_fd, sig_fd, ipc_fd, unix_fd, metrics_fd;
    char launcher[1][RELEASE_HASH_HEX]; /* SHA-256 of this executable */
    pid_t worker;
    time_t started;
    char *space; /* CASD_IPC_MAX + 1 */
};

static void stop_worker(struct parent *p, int sig)
{
    if (p->ipc_fd >= 0)
        close(p->ipc_fd);
    p->ipc_fd = -1;
    if (p->worker <= 0)
        return;
    (void)kill(p->worker, sig);
    for (int waited = 0; waited < STOP_WAIT_MS; waited += 50) {
        int st;
        if (waitpid(p->worker, &st, WNOHANG) == p->worker) {
            if (WIFSIGNALED(st) && WTERMSIG(st) != sig)
                log_warnx("worker %ld killed by signal %d", (long)p->worker, WTERMSIG(st));
            else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
                log_warnx("worker %ld exited with status %d", (long)p->worker, WEXITSTATUS(st));
            p->worker = -1;
            return;
        }
        struct timespec ts = {0, 50L * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    (void)kill(p->worker, SIGKILL);
    (void)waitpid(p->worker, NULL, 0);
    p->worker = -1;
}

/* In the child: the two descriptors at their numbers, nothing else open
 * (but stdin/stdout/stderr), the default signal mask, then exec. */
static void exec_worker(const struct parent *p, int child_end)
{
    sigset_t none;
    int l = fcntl(p->listen_fd, F_DUPFD, 10), i = fcntl(child_end, F_DUPFD, 10);
    int m = p->metrics_fd >= 0 ? fcntl(p->metrics_fd, F_DUPFD, 10) : -1;
    const char *user = p->c->worker_user != NULL ? p->c->worker_user : "nobody";

    if (l < 0 || i < 0 || dup2(l, CASD_WORKER_FD_LISTEN) < 0 || dup2(i, CASD_WORKER_FD_IPC) < 0)
        _exit(126);
    if (p->metrics_fd >= 0 && (m < 0 || dup2(m, CASD_WORKER_FD_METRICS) < 0))
        _exit(126);
    if (close_range(p->metrics_fd >= 0 ? CASD_WORKER_FD_METRICS + 1 : CASD_WORKER_FD_IPC + 1, ~0u,
                    0) != 0)
        _exit(126);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char *const argv[] = {"confidoc-cas",
                          "serve-worker",
                          "--user",
                          (char *)user,
                          p->metrics_fd >= 0 ? "--metrics" : NULL,
                          NULL};
    execv("/proc/self/exe", argv);
    _exit(127);
}

static cd_err start_worker(struct parent *p)
{
    int sv[2];
    time_t now = time(NULL);

    if (p->started != 0 && now - p->started < RESTART_MIN_SECONDS)
        sleep(RESTART_MIN_SECONDS);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return CD_ERR_IO;
    if (casd_ipc_tune(sv[0]) != CD_OK || casd_ipc_tune(sv[1]) != CD_OK) {
        close(sv[0]);
        close(sv[1]);
        return CD_ERR_IO;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return CD_ERR_IO;
    }
    if (pid == 0)
        exec_worker(p, sv[1]);
    close(sv[1]);
    p->ipc_fd = sv[0];
    p->worker = pid;
    p->started = time(NULL);
    struct casd_ipc_msg m = {.type = CASD_IPC_TLS_CONFIG,
                             .a = {p->id.chain.data, p->id.chain.len},
                             .b = {p->id.key.data, p->id.key.len}};
    if (casd_ipc_send(p->ipc_fd, &m) != CD_OK) {
        log_warnx("cannot hand the worker its identity; restarting it");
        stop_worker(p, SIGKILL);
        return CD_ERR_IO;
    }
    log_info("worker %ld started", (long)pid);
    return CD_OK;
}

/* ---- the audit log ---- */

#define AUDIT_HEAD_NAME "audit-head" /* the sealed head, a blob of CASD_STORE_IDENTITY */

/* Appends ev and seals the log's new head in the store. */
static cd_err audit(struct parent *p, const struct audit_event *ev)
{
    char text[64 + AUDIT_HASH_HEX], hash[AUDIT_HASH_HEX];
    uint64_t seq = 0;
    cd_err err = audit_append(p->audit, ev);

    if (err == CD_OK) {
        audit_head(p->audit, &seq, hash);
        int n = snprintf(text, sizeof(text), "%llu %s\n", (unsigned long long)seq, hash);
        err = store_blob_put(p->store, CASD_STORE_IDENTITY, AUDIT_HEAD_NAME, text, (size_t)n);
    }
    metrics_cas_audit_write(err == CD_OK);
    if (err != CD_OK)
        log_errorx("cannot append to the audit log: %s", cd_strerror(err));
    return err;
}

/* Opens the log with the identity key; a log with a sealed head must reach it. */
static cd_err audit_start(struct parent *p, struct cd_diag *diag)
{
    char path[4096];
    struct pki_buf head = {0};
    struct audit_head expect = {0};
    const char *where = p->c->audit_log;
    bool have = false;
    cd_err err;

    if (where == NULL) {
        snprintf(path, sizeof(path), "%s/cas/audit.log", p->c->state_dir);
        where = path;
    }
    err = store_blob_get(p->store, CASD_STORE_IDENTITY, AUDIT_HEAD_NAME, &head);
    if (err == CD_OK) {
        /* "SEQ HASH\n", as audit() writes it. */
        const char *q = head.data, *end = head.data + head.len;
        uint64_t seq = 0;
        have = num_prefix(&q, end, UINT64_MAX, &seq) == CD_OK &&
               (size_t)(end - q) == AUDIT_HASH_HEX + 1 && q[0] == ' ' && q[AUDIT_HASH_HEX] == '\n';
        if (have) {
            expect.seq = seq;
            memcpy(expect.hash, q + 1, AUDIT_HASH_HEX - 1);
            expect.hash[AUDIT_HASH_HEX - 1] = '\0';
        }
        pki_buf_release(&head);
        if (!have) {
            cd_diag_add(diag, "the sealed head of the audit log is malformed");
            return CD_ERR_CONFIG;
        }
    } else if (err != CD_ERR_NOT_FOUND) {
        cd_diag_add(diag, "cannot read the sealed head of the audit log: %s", cd_strerror(err));
        return err;
    }
    err = audit_open_expect(where, p->id.ca_key.data, p->id.ca_key.len, have ? &expect : NULL, diag,
                            &p->audit);
    if (err != CD_OK) {
        cd_diag_add(diag, "cannot open the audit log %s: %s", where, cd_strerror(err));
        return err;
    }
    /* The log has its own copy of the identity key: the parent's goes. */
    pki_buf_release(&p->id.ca_key);
    struct audit_event ev = {.kind = AUDIT_START, .who = "cas"};
    return audit(p, &ev);
}

/* ---- requests ---- */

static void record_release(void *arg, const struct release_outcome *o);

/* What release_serve_conn and the node path check against: the current sessions. */
static struct release_ctx release_ctx_of(struct parent *p)
{
    return (struct release_ctx){.set = casd_sessions_set(p->sessions),
                                .material = casd_sessions_material(p->sessions),
                                .launchers = (const char(*)[RELEASE_HASH_HEX])p->launcher,
                                .nlaunchers = 1,
                                .record = record_release,
                                .record_arg = p,
                                .evidence = release_evidence_registry};
}

/* A scrape: the counters rendered here, where the events happen, for a
 * client whose certificate's key hash is a --metrics-client. */
static void answer_metrics(struct parent *p, const struct casd_ipc_msg *m, struct casd_reply *r)
{
    char *text = NULL;
    size_t len = 0;
    bool known = false;

    for (size_t i = 0; i < p->c->nmetrics_clients && !known; i++)
        known = m->b.len == strlen(p->c->metrics_clients[i]) &&
                memcmp(m->b.p, p->c->metrics_clients[i], m->b.len) == 0;
    if (!known) {
        r->status = 403;
        (void)casd_rest_detail(&r->body, "not a metrics client");
        return;
    }
    metrics_cas_scrape();
    if (metrics_render(METRICS_SET_CAS, &text, &len) != CD_OK ||
        buf_add(&r->body, text, len) != CD_OK) {
        free(text);
        r->status = 500;
        return;
    }
    free(text);
    r->status = 200;
}

static void answer(struct parent *p, const struct casd_ipc_msg *m, struct casd_reply *r)
{
    char a[CASD_IPC_NAME_MAX + 1] = "", b[CASD_IPC_NAME_MAX + 1] = "";

    if (m->type == CASD_IPC_METRICS_GET) {
        answer_metrics(p, m, r);
        return;
    }
    if (m->type == CASD_IPC_NODE_HELLO || m->type == CASD_IPC_NODE_MEASURE) {
        char client[PKI_FP_HEX] = "";
        if (m->b.len > 0) /* empty or a hash: checked by the decoder */
            memcpy(client, m->b.p, m->b.len);
        const struct release_ctx ctx = release_ctx_of(p);
        casd_nodes_answer(p->nodes, &ctx, m->type, m->a.p, m->a.len, client, &r->status, &r->body);
        /* Its refusals are counted by reason in record_release. */
        metrics_cas_node_report(r->status == 200);
        return;
    }

    if (m->type == CASD_IPC_VALUE_GET || m->type == CASD_IPC_SESSION_GET) {
        memcpy(a, m->a.p, m->a.len); /* bounded and checked by the decoder */
        if (m->b.len > 0)
            memcpy(b, m->b.p, m->b.len);
    } else if (m->b.len > 0) {
        memcpy(b, m->b.p, m->b.len);
    }
    switch (m->type) {
    case CASD_IPC_VALUE_GET:
        casd_sessions_value(p->sessions, a, b, r);
        break;
    case CASD_IPC_SESSION_GET:
        casd_sessions_get(p->sessions, a, b, r);
        break;
    default:
        casd_sessions_put(p->sessions, m->a.p, m->a.len, b, m->sigs, m->nsigs, r);
        break;
    }
    if (r->event != NULL) {
        char who[16 + PKI_FP_HEX];
        snprintf(who, sizeof(who), "client=%s", b[0] != '\0' ? b : "-");
        struct audit_event ev = {.kind = strcmp(r->event, "create") == 0   ? AUDIT_SESSION_CREATE
                                         : strcmp(r->event, "update") == 0 ? AUDIT_SESSION_UPDATE
                                                                           : AUDIT_SESSION_REFUSED,
                                 .session = r->session[0] != '\0' ? r->session : NULL,
                                 .who = who,
                                 .hash = r->hash[0] != '\0' ? r->hash : NULL,
                                 .reason = r->reason};
        (void)audit(p, &ev); /* logged there; the change itself is done */
        if (r->reason != NULL)
            log_info("session %s: %s (%s)", r->session[0] != '\0' ? r->session : "-", r->event,
                     r->reason);
        else
            log_info("session %s: %s, hash %s", r->session, r->event, r->hash);
    }
}

/* One message from the worker. False: the worker is to be restarted. */
static bool handle_worker(struct parent *p)
{
    struct casd_ipc_msg m, rep = {.type = CASD_IPC_REPLY};
    struct casd_reply r;
    cd_err err = casd_ipc_recv(p->ipc_fd, 0, p->space, CASD_IPC_MAX + 1, &m);

    if (err == CD_ERR_TIMEOUT)
        return true;
    if (err == CD_OK && m.type != CASD_IPC_VALUE_GET && m.type != CASD_IPC_SESSION_GET &&
        m.type != CASD_IPC_SESSION_PUT && m.type != CASD_IPC_NODE_HELLO &&
        m.type != CASD_IPC_NODE_MEASURE && m.type != CASD_IPC_METRICS_GET)
        err = CD_ERR_INVALID;
    if (err != CD_OK) {
        if (err == CD_ERR_INVALID)
            log_warnx("malformed request from the worker: killing and restarting it");
        return false;
    }
    casd_reply_init(&r);
    answer(p, &m, &r);
    rep.status = (uint32_t)r.status;
    rep.a = (struct casd_ipc_field){r.body.p, r.body.len};
    err = casd_ipc_send(p->ipc_fd, &rep);
    casd_reply_release(&r);
    return err == CD_OK;
}

/* ---- attested release on the unix socket ---- */

/* The metrics reason of a refusal (the texts of release/verify.c and
 * casd/node.c: "no node hello waits ..." is protocol, "the node report is
 * not signed ..." and "node identity not admitted" are node). */
static enum metrics_cas_reason refusal_reason(const char *why)
{
    static const struct {
        const char *prefix;
        enum metrics_cas_reason reason;
    } map[] = {
        {"unknown session", METRICS_CAS_UNKNOWN_SESSION},
        {"caller is not the confidoc-cas launcher", METRICS_CAS_LAUNCHER},
        {"exe hash mismatch", METRICS_CAS_EXECUTABLE},
        {"uid mismatch", METRICS_CAS_UID},
        {"config", METRICS_CAS_CONFIG},
        {"evidence", METRICS_CAS_EVIDENCE},
        {"node", METRICS_CAS_NODE},
        {"no ", METRICS_CAS_PROTOCOL},
        {"malformed", METRICS_CAS_PROTOCOL},
        {"the node report", METRICS_CAS_NODE},
    };

    if (why == NULL)
        return METRICS_CAS_OTHER;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strncmp(why, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].reason;
    }
    if (strstr(why, "user is unknown") != NULL)
        return METRICS_CAS_UID;
    return METRICS_CAS_OTHER;
}

static void record_release(void *arg, const struct release_outcome *o)
{
    struct parent *p = arg;
    struct audit_event ev = {.kind = o->allowed ? AUDIT_RELEASE : AUDIT_RELEASE_REFUSED,
                             .session = o->session[0] != '\0' ? o->session : NULL,
                             .who = o->who,
                             .measurement = o->measurement[0] != '\0' ? o->measurement : NULL,
                             .secrets = o->file_names,
                             .n_secrets = o->nfile_names,
                             .reason = o->allowed ? NULL : o->reason};
    if (o->allowed)
        metrics_cas_release(ev.session);
    else
        metrics_cas_refusal(refusal_reason(o->reason));
    (void)audit(p, &ev);
    if (o->allowed)
        log_info("released session %s to %s", ev.session != NULL ? ev.session : "-", o->who);
    else
        log_info("refused a release of session %s to %s: %s", ev.session != NULL ? ev.session : "-",
                 o->who, o->reason);
}

/* One launcher connection (bounded by release_serve_conn's deadline). */
static void serve_release(struct parent *p)
{
    int c = accept4(p->unix_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return;
    const struct release_ctx ctx = release_ctx_of(p);
    (void)release_serve_conn(c, &ctx);
    close(c);
}

/* ---- start-up ---- */

/* A TCP listener on host:port (opt: the option that named them, for messages). */
static cd_err listen_on(const char *opt, const char *host, const char *port, int *out,
                        struct cd_diag *diag)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *res = NULL;
    int one = 1, fd;
    int rc = getaddrinfo(host, port, &hints, &res);

    if (rc != 0) {
        cd_diag_add(diag, "%s %s:%s: an IP address and a port: %s", opt, host, port,
                    gai_strerror(rc));
        return CD_ERR_CONFIG;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        cd_diag_add(diag, "cannot listen on %s:%s: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return CD_ERR_IO;
    }
    freeaddrinfo(res);
    *out = fd;
    return CD_OK;
}

static cd_err signals(int *out)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return CD_ERR_IO;
    *out = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    return *out >= 0 ? CD_OK : CD_ERR_IO;
}

static cd_err startup(struct parent *p, struct cas_store **store, struct cd_diag *diag)
{
    const struct casd_serve_config *c = p->c;
    char path[4096], line[PKI_FP_HEX + 1];
    cd_err err;

    if (c->seal.name == NULL) {
        cd_diag_add(diag, "give --sealing-key FILE or --sealing-keyring NAME");
        return CD_ERR_CONFIG;
    }
    if ((err = seal_open(c->state_dir, &c->seal, &c->recovery, diag, &p->seal)) != CD_OK) {
        cd_diag_add(diag, "cannot open the sealed state of %s: %s", c->state_dir, cd_strerror(err));
        return err;
    }
    if (diag->count > 0) { /* notes of a first start (no recovery keys, ...) */
        log_info("%.*s", (int)strcspn(diag->text, "\n"), diag->text);
        cd_diag_init(diag);
    }
    if ((err = store_open(c->state_dir, p->seal, store)) != CD_OK) {
        cd_diag_add(diag, "cannot open the store %s/cas: %s", c->state_dir, cd_strerror(err));
        return err;
    }
    if ((err = identity_load(c, *store, &p->id, diag)) != CD_OK)
        return err;
    p->store = *store;
    /* Before audit_start takes the identity key: the node answers' signer. */
    if ((err = casd_nodes_new(c->nodes, c->nnodes, p->id.ca_key.data, p->id.ca_key.len,
                              &p->nodes)) != CD_OK) {
        cd_diag_add(diag, "--node: at most %d key hashes", CASD_NODE_MAX_ADMITTED);
        return err;
    }
    if ((err = audit_start(p, diag)) != CD_OK)
        return err;
    if ((err = casd_sessions_open(*store, c->state_dir, c->policies_dir, &c->vars, c->admins,
                                  c->nadmins, diag, &p->sessions)) != CD_OK)
        return err;
    for (size_t i = 0; casd_sessions_fresh(p->sessions) && i < casd_sessions_count(p->sessions);
         i++) {
        struct audit_event ev = {.kind = AUDIT_SESSION_CREATE, .who = "policies"};
        casd_sessions_at(p->sessions, i, &ev.session, &ev.hash);
        if ((err = audit(p, &ev)) != CD_OK)
            return err;
    }
    snprintf(line, sizeof(line), "%s\n", p->id.pin);
    snprintf(path, sizeof(path), "%s/cas/identity.pin", c->state_dir);
    if ((err = write_public(path, line)) != CD_OK ||
        (c->pin_out != NULL && (err = write_public(c->pin_out, line)) != CD_OK)) {
        cd_diag_add(diag, "cannot write the pin: %s", cd_strerror(err));
        return err;
    }
    if ((err = listen_on("--listen", c->listen_host, c->listen_port, &p->listen_fd, diag)) != CD_OK)
        return err;
    if (c->metrics_host != NULL &&
        (err = listen_on("--metrics-listen", c->metrics_host, c->metrics_port, &p->metrics_fd,
                         diag)) != CD_OK)
        return err;
    /* The launcher, on the release socket and behind node agents, is this very
     * executable (followed from /proc, not by name). */
    int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    err = exe >= 0 ? release_sha256_fd(exe, p->launcher[0]) : CD_ERR_IO;
    if (exe >= 0)
        close(exe);
    if (err != CD_OK) {
        cd_diag_add(diag, "cannot hash this executable: %s", cd_strerror(err));
        return err;
    }
    if (c->socket != NULL && (err = release_listen(c->socket, 16, &p->unix_fd, diag)) != CD_OK)
        return err;
    if ((err = signals(&p->sig_fd)) != CD_OK) {
        cd_diag_add(diag, "cannot set up signals");
        return err;
    }
    if (c->pidfile != NULL) {
        char pid[32];
        snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if ((err = write_public(c->pidfile, pid)) != CD_OK) {
            cd_diag_add(diag, "cannot write the pid file %s", c->pidfile);
            return err;
        }
    }
    return CD_OK;
}

/* Signals: false when the service is to stop. */
static bool handle_signals(struct parent *p)
{
    struct signalfd_siginfo si;
    bool run = true;

    while (read(p->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
            run = false;
    }
    int st;
    if (p->worker > 0 && waitpid(p->worker, &st, WNOHANG) == p->worker) {
        if (WIFSIGNALED(st))
            log_warnx("worker %ld killed by signal %d", (long)p->worker, WTERMSIG(st));
        else
            log_warnx("worker %ld exited with status %d", (long)p->worker, WEXITSTATUS(st));
        p->worker = -1;
        if (p->ipc_fd >= 0)
            close(p->ipc_fd);
        p->ipc_fd = -1;
    }
    return run;
}

cd_err casd_serve(const struct casd_serve_config *c, struct cd_diag *diag)
{
    struct parent p = {.c = c,
                       .listen_fd = -1,
                       .sig_fd = -1,
                       .ipc_fd = -1,
                       .unix_fd = -1,
                       .metrics_fd = -1,
                       .worker = -1};
    struct cas_store *store = NULL;
    cd_err err;

    if ((p.space = malloc(CASD_IPC_MAX + 1)) == NULL)
        return CD_ERR_NOMEM;
    metrics_init();
    if ((err = startup(&p, &store, diag)) != CD_OK)
        goto out;
    log_info("listening on %s:%s, %zu sessions, pin %s", c->listen_host, c->listen_port,
             casd_sessions_count(p.sessions), p.id.pin);
    for (bool run = true; run;) {
        if (p.worker < 0 && start_worker(&p) != CD_OK)
            continue;
        struct pollfd fds[3] = {{.fd = p.sig_fd, .events = POLLIN},
                                {.fd = p.ipc_fd, .events = POLLIN},
                                {.fd = p.unix_fd, .events = POLLIN}};
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            err = CD_ERR_IO;
            break;
        }
        if (fds[1].revents != 0 && p.ipc_fd >= 0 && !handle_worker(&p))
            stop_worker(&p, SIGKILL);
        if (fds[2].revents != 0)
            serve_release(&p);
        if (fds[0].revents != 0)
            run = handle_signals(&p);
    }
    log_info("stopping");
    stop_worker(&p, SIGTERM);
out:
    stop_worker(&p, SIGKILL);
    if (p.listen_fd >= 0)
        close(p.listen_fd);
    if (p.metrics_fd >= 0)
        close(p.metrics_fd);
    if (p.sig_fd >= 0)
        close(p.sig_fd);
    if (p.unix_fd >= 0) {
        close(p.unix_fd);
        unlink(c->socket);
    }
    if (c->pidfile != NULL && err == CD_OK)
        unlink(c->pidfile);
    casd_sessions_free(p.sessions);
    casd_nodes_free(p.nodes);
    audit_close(p.audit);
    identity_release(&p.id);
    store_close(store);
    seal_key_free(p.seal);
    free(p.space);
    return err;
}
