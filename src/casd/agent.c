/* agent.c: confidoc-cas node-agent (agent.h): measures its local callers and
 * relays their release exchange to the CAS over mutual TLS. */
#include "casd/agent.h"

#include <errno.h>
#include <linux/capability.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cas/pki.h"
#include "cas/seal.h"
#include "casd/client.h"
#include "casd/node.h"
#include "casd/rest.h"
#include "casd/sandbox.h"
#include "casd/tls.h"
#include "common/codec.h"
#include "common/file.h"
#include "log/log.h"
#include "release/peer.h"
#include "release/proto.h"

#define IDENTITY_MAX ((size_t)64 * 1024) /* the identity certificate or key file */
/* The largest message a launcher sends: a MEASURE with full evidence. */
#define IN_MAX ((size_t)RELEASE_HEADER + 512 + RELEASE_EVIDENCE_MAX + 8192)

struct agent {
    const struct casd_agent_config *c;
    struct pki_buf cert, key; /* the node identity (PEM) */
    char node[PKI_FP_HEX];    /* its key hash */
    pthread_mutex_t lock;     /* ca, callers */
    struct pki_buf ca;        /* the CAS's CA, once attested */
    unsigned callers;
};

struct call {
    struct agent *a;
    int fd;
    int64_t deadline;
    struct release_peer peer;
    char reason[RELEASE_REASON_MAX + 1];
};

/* ---- to the launcher ---- */

static void send_refused(struct call *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void send_refused(struct call *k, const char *fmt, ...)
{
    char text[RELEASE_REASON_MAX + 1]; /* fmt's arguments may be k->reason itself */
    struct buf b;
    va_list ap;
    va_start(ap, fmt);
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    (void)vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    for (char *s = text; *s != '\0'; s++) /* a CAS's detail could hold anything */
        if ((unsigned char)*s < 0x20 || *s >= 0x7f)
            *s = '?';
    memcpy(k->reason, text, sizeof(text));
    buf_init(&b, RELEASE_HEADER + 4 + RELEASE_REASON_MAX + 1);
    if (release_enc_refused(&b, k->reason) == CD_OK)
        (void)release_send(k->fd, &b, k->deadline);
    buf_release(&b);
}

/* ---- to the CAS ---- */

/* The CAS's CA, attested against the pin the first time it is needed (the
 * lock is not held across the network: callers attest side by side until one
 * succeeds; the CA never changes, so the first one kept is the one). Once
 * set, a->ca is never changed nor freed while callers run. */
static cd_err cas_ca(struct agent *a, struct cd_diag *diag)
{
    struct pki_buf ca = {0};
    pthread_mutex_lock(&a->lock);
    bool have = a->ca.data != NULL;
    pthread_mutex_unlock(&a->lock);
    if (have)
        return CD_OK;
    cd_err err = casd_tls_attest(a->c->cas_host, a->c->cas_port, a->c->cas_pin,
                                 CASD_AGENT_CAS_SECONDS, &ca, diag);
    if (err != CD_OK)
        return err;
    pthread_mutex_lock(&a->lock);
    if (a->ca.data == NULL) {
        a->ca = ca;
        ca = (struct pki_buf){0};
    }
    pthread_mutex_unlock(&a->lock);
    pki_buf_release(&ca);
    return CD_OK;
}

/* POST path body to the CAS; the answer's messages into answer (opened with
 * the X25519 private key box when it is not NULL). CD_ERR_AUTH (with the
 * CAS's detail in k->reason) for another status than 200. */
static cd_err ask_cas(struct call *k, const char *path, const struct buf *body,
                      const unsigned char *box, const struct casd_node_report *r,
                      struct buf *answer)
{
    struct agent *a = k->a;
    struct cd_diag *diag = malloc(sizeof(*diag));
    struct buf resp, b64;
    int status = 0;
    cd_err err;

    if (diag == NULL)
        return CD_ERR_NOMEM;
    cd_diag_init(diag);
    if ((err = cas_ca(a, diag)) != CD_OK) {
        snprintf(k->reason, sizeof(k->reason), "node agent: the CAS at %s:%s %s", a->c->cas_host,
                 a->c->cas_port,
                 err == CD_ERR_AUTH ? "does not match --cas-pin" : "cannot be attested");
        log_warnx("%s: %.*s", k->reason, (int)strcspn(diag->text, "\n"), diag->text);
        free(diag);
        return CD_ERR_AUTH;
    }
    struct casd_tls_client tc = {.host = a->c->cas_host,
                                 .port = a->c->cas_port,
                                 .cacert_pem = a->ca.data,
                                 .cacert_pem_len = a->ca.len,
                                 .cert_pem = a->cert.data,
                                 .cert_pem_len = a->cert.len,
                                 .key_pem = a->key.data,
                                 .key_pem_len = a->key.len,
                                 .timeout_seconds = CASD_AGENT_CAS_SECONDS};
    buf_init(&resp, CASD_CLIENT_RESPONSE_MAX);
    buf_init(&b64, CASD_CLIENT_RESPONSE_MAX);
    err = casd_client_request(&tc, "POST", path, body->p, body->len, &status, &resp, diag);
    if (err != CD_OK) {
        snprintf(k->reason, sizeof(k->reason), "node agent: the CAS at %s:%s: %.*s", a->c->cas_host,
                 a->c->cas_port, (int)strcspn(diag->text, "\n"), diag->text);
        err = CD_ERR_AUTH;
    } else if (status != 200) {
        struct buf d;
        buf_init(&d, RELEASE_REASON_MAX);
        (void)casd_json_get_string(resp.p != NULL ? resp.p : "", resp.len, "detail", &d);
        snprintf(k->reason, sizeof(k->reason), "the CAS refused this node (%d): %s", status,
                 d.p != NULL ? d.p : "-");
        buf_release(&d);
        err = CD_ERR_AUTH;
    } else if (box != NULL) {
        /* Sealed to this request's key and signed by the CAS's parent. */
        struct pki_buf sealed = {0}, opened = {0};
        err = casd_node_answer_check(resp.p, resp.len, a->c->cas_pin, r->nonce, r->box, &sealed);
        if (err == CD_OK)
            err = seal_unbox(box, CASD_NODE_BOX_NAME, sealed.data, sealed.len, &opened);
        if (err == CD_OK)
            err = buf_add(answer, opened.data, opened.len);
        if (err != CD_OK)
            snprintf(k->reason, sizeof(k->reason), "node agent: %s answer from the CAS",
                     err == CD_ERR_AUTH || err == CD_ERR_CRYPTO ? "an unsigned" : "a malformed");
        pki_buf_release(&sealed);
        pki_buf_release(&opened);
    } else if (casd_json_get_string(resp.p, resp.len, "answer", &b64) != CD_OK || b64.len == 0) {
        snprintf(k->reason, sizeof(k->reason), "node agent: malformed answer from the CAS");
        err = CD_ERR_INVALID;
    } else {
        size_t n = 0;
        uint8_t *raw = malloc(b64.len);
        err = raw != NULL ? codec_b64_decode(b64.p, b64.len, raw, b64.len, &n) : CD_ERR_NOMEM;
        if (err == CD_OK)
            err = buf_add(answer, raw, n);
        if (raw != NULL) {
            explicit_bzero(raw, b64.len);
            free(raw);
        }
        if (err != CD_OK)
            snprintf(k->reason, sizeof(k->reason), "node agent: malformed answer from the CAS");
    }
    buf_release(&resp);
    buf_release(&b64);
    free(diag);
    return err;
}

/* The next message of an answer at *off: its bytes and decoding. */
static bool next_msg(const struct buf *answer, size_t *off, struct release_msg *m, size_t *len)
{
    const uint8_t *p = (const uint8_t *)answer->p + *off;
    size_t left = answer->len - *off;
    if (left < RELEASE_HEADER)
        return false;
    uint32_t plen = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
    if (plen > left - RELEASE_HEADER)
        return false;
    *len = RELEASE_HEADER + plen;
    if (release_decode(p, *len, m) != CD_OK)
        return false;
    return true;
}

/* Sends message bytes p[0..n) to the launcher as one record. */
static cd_err relay(struct call *k, const void *p, size_t n)
{
    struct buf b;
    buf_init(&b, n + 1);
    cd_err err = buf_add(&b, p, n);
    if (err == CD_OK)
        err = release_send(k->fd, &b, k->deadline);
    buf_release(&b);
    return err;
}

static cd_err add_field(struct buf *b, bool first, const char *key, const char *v, size_t n)
{
    cd_err err = buf_add(b, first ? "{" : ",", 1);
    if (err == CD_OK)
        err = casd_json_add_string(b, key, strlen(key));
    if (err == CD_OK)
        err = buf_add(b, ":", 1);
    if (err == CD_OK)
        err = casd_json_add_string(b, v, n);
    return err;
}

static cd_err add_b64(struct buf *b, bool first, const char *key, const void *p, size_t n)
{
    size_t cap = CODEC_B64_LEN(n);
    char *t = malloc(cap);
    cd_err err = t != NULL ? codec_b64_encode(p, n, t, cap) : CD_ERR_NOMEM;
    if (err == CD_OK)
        err = add_field(b, first, key, t, cap - 1);
    free(t);
    return err;
}

/* HELLO (msg[0..len)) to the CAS; SPEC (or REFUSED) relayed. CD_OK with the
 * session and nonce when SPEC came. */
static cd_err do_hello(struct call *k, const uint8_t *msg, size_t len, char *session,
                       unsigned char nonce[RELEASE_NONCE_LEN])
{
    struct buf body, answer;
    struct release_msg m;
    char num[3][16];
    size_t off = 0, mlen = 0;

    snprintf(num[0], sizeof(num[0]), "%u", (unsigned)k->peer.uid);
    snprintf(num[1], sizeof(num[1]), "%u", (unsigned)k->peer.gid);
    snprintf(num[2], sizeof(num[2]), "%d", (int)k->peer.pid);
    buf_init(&body, 4096);
    buf_init(&answer, CASD_NODE_ANSWER_MAX);
    cd_err err = add_b64(&body, true, "hello", msg, len);
    if (err == CD_OK)
        err = add_field(&body, false, "uid", num[0], strlen(num[0]));
    if (err == CD_OK)
        err = add_field(&body, false, "gid", num[1], strlen(num[1]));
    if (err == CD_OK)
        err = add_field(&body, false, "pid", num[2], strlen(num[2]));
    if (err == CD_OK)
        err = add_field(&body, false, "exe", k->peer.exe, strlen(k->peer.exe));
    if (err == CD_OK)
        err = buf_add(&body, "}", 1);
    if (err == CD_OK && (err = ask_cas(k, "/v1/node/hello", &body, NULL, NULL, &answer)) != CD_OK)
        send_refused(k, "%s", k->reason);
    if (err == CD_OK && (!next_msg(&answer, &off, &m, &mlen) || mlen != answer.len ||
                         (m.type != RELEASE_SPEC && m.type != RELEASE_REFUSED))) {
        send_refused(k, "node agent: malformed answer from the CAS");
        err = CD_ERR_INVALID;
    }
    if (err == CD_OK) {
        if (m.type == RELEASE_SPEC)
            memcpy(nonce, m.nonce.p, RELEASE_NONCE_LEN);
        err = relay(k, answer.p, answer.len);
        if (err == CD_OK && m.type == RELEASE_REFUSED)
            err = CD_ERR_AUTH;
    }
    if (err == CD_OK) {
        struct release_msg h;
        (void)release_decode(msg, len, &h);
        (void)release_view_copy(h.session, session, RELEASE_NAME_MAX + 1);
    }
    buf_release(&body);
    buf_release(&answer);
    return err;
}

/* MEASURE (msg[0..len)) in a signed report to the CAS; the files (or
 * REFUSED) relayed, each checked first, only while the caller lives. */
static cd_err do_measure(struct call *k, const uint8_t *msg, size_t len, const char *session,
                         const unsigned char nonce[RELEASE_NONCE_LEN])
{
    struct casd_node_report r = {
        .uid = (uint32_t)k->peer.uid, .gid = (uint32_t)k->peer.gid, .pid = (int32_t)k->peer.pid};
    struct buf text, body, answer;
    struct pki_buf sig = {0}, pub = {0};
    size_t off = 0, n = 0, files = 0;
    struct release_msg m;
    unsigned char box[SEAL_BOX_KEY_BYTES], box_pub[SEAL_BOX_KEY_BYTES];

    codec_hex_encode(nonce, RELEASE_NONCE_LEN, r.nonce);
    snprintf(r.session, sizeof(r.session), "%s", session);
    memcpy(r.exe, k->peer.exe, sizeof(r.exe));
    r.measure = msg;
    r.measure_len = len;
    buf_init(&text, CASD_NODE_REPORT_MAX + 1);
    buf_init(&body, 2 * CASD_NODE_REPORT_MAX);
    buf_init(&answer, CASD_NODE_ANSWER_MAX);
    /* A key for this one answer: only this request can open what comes back. */
    cd_err err = seal_box_keygen(box, box_pub);
    if (err == CD_OK)
        codec_hex_encode(box_pub, sizeof(box_pub), r.box);
    if (err == CD_OK)
        err = casd_node_report_text(&r, &text);
    if (err == CD_OK)
        err = casd_sig_sign(k->a->key.data, k->a->key.len, text.p, text.len, &sig, &pub);
    if (err == CD_OK)
        err = add_field(&body, true, "report", text.p, text.len);
    if (err == CD_OK)
        err = add_field(&body, false, "public_key", pub.data, pub.len);
    if (err == CD_OK)
        err = add_b64(&body, false, "signature", sig.data, sig.len);
    if (err == CD_OK)
        err = buf_add(&body, "}", 1);
    if (err != CD_OK) {
        send_refused(k, "node agent: cannot sign the report: %s", cd_strerror(err));
        goto out;
    }
    if ((err = ask_cas(k, "/v1/node/measure", &body, box, &r, &answer)) != CD_OK) {
        send_refused(k, "%s", k->reason);
        goto out;
    }
    /* Every message checked before the first goes: FILE... END(count), or one REFUSED. */
    bool end = false, refused = false;
    while (off < answer.len) {
        if (end || refused || !next_msg(&answer, &off, &m, &n)) {
            err = CD_ERR_INVALID;
            break;
        }
        if (m.type == RELEASE_FILE) {
            files++;
        } else if (m.type == RELEASE_END && m.nfiles == files) {
            end = true;
        } else if (m.type == RELEASE_REFUSED && off == 0) {
            refused = true;
        } else {
            err = CD_ERR_INVALID;
            break;
        }
        off += n;
    }
    if (err != CD_OK || (!end && !refused)) {
        send_refused(k, "node agent: malformed answer from the CAS");
        err = CD_ERR_INVALID;
        goto out;
    }
    /* The released files reach the measured process only. */
    if (!release_peer_alive(&k->peer)) {
        err = CD_ERR_AUTH;
        goto out;
    }
    for (off = 0; err == CD_OK && off < answer.len; off += n) {
        (void)next_msg(&answer, &off, &m, &n);
        err = relay(k, answer.p + off, n);
    }
    if (err == CD_OK && refused)
        err = CD_ERR_AUTH;
out:
    explicit_bzero(box, sizeof(box));
    pki_buf_release(&sig);
    pki_buf_release(&pub);
    buf_release(&text);
    buf_release(&body);
    buf_release(&answer); /* wipes the released copy */
    return err;
}

/* The length of the record release_recv took into in (it checked it). */
static size_t record_len(const uint8_t *in)
{
    return RELEASE_HEADER +
           ((size_t)in[4] << 24 | (size_t)in[5] << 16 | (size_t)in[6] << 8 | (size_t)in[7]);
}

/* One caller, from its HELLO to the last FILE. */
static void serve_call(struct call *k)
{
    uint8_t *in = malloc(IN_MAX);
    struct release_msg m;
    char session[RELEASE_NAME_MAX + 1] = "";
    unsigned char nonce[RELEASE_NONCE_LEN];
    const char *why = NULL;
    cd_err err;

    release_sndbuf(k->fd);
    if (in == NULL) {
        send_refused(k, "node agent: out of memory");
        return;
    }
    if (release_peer_identify(k->fd, &k->peer, &why) != CD_OK) {
        send_refused(k, "node agent: %s", why);
        goto out;
    }
    if (release_recv(k->fd, in, IN_MAX, k->deadline, &m) != CD_OK || m.type != RELEASE_HELLO)
        goto out;
    if (m.session.len == strlen(CASD_AGENT_CHECK_SESSION) &&
        memcmp(m.session.p, CASD_AGENT_CHECK_SESSION, m.session.len) == 0) {
        send_refused(k, CASD_AGENT_ALIVE);
        goto out;
    }
    if (do_hello(k, in, record_len(in), session, nonce) != CD_OK)
        goto out;
    if (release_recv(k->fd, in, IN_MAX, k->deadline, &m) != CD_OK || m.type != RELEASE_MEASURE)
        goto out;
    err = do_measure(k, in, record_len(in), session, nonce);
    if (err == CD_OK)
        log_info("released session %s to uid=%u pid=%d", session, (unsigned)k->peer.uid,
                 (int)k->peer.pid);
    else
        log_info("no release of session %s to uid=%u pid=%d: %s", session[0] ? session : "-",
                 (unsigned)k->peer.uid, (int)k->peer.pid,
                 k->reason[0] != '\0' ? k->reason : cd_strerror(err));
out:
    release_peer_close(&k->peer);
    explicit_bzero(in, IN_MAX);
    free(in);
}

static void *call_thread(void *arg)
{
    struct call *k = arg;
    struct agent *a = k->a;
    serve_call(k);
    close(k->fd);
    free(k);
    pthread_mutex_lock(&a->lock);
    a->callers--;
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

static void accept_call(struct agent *a, int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    struct call *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        close(fd);
        return;
    }
    *k = (struct call){.a = a, .fd = fd, .deadline = release_now_ms() + CASD_AGENT_CONN_MS};
    k->peer.pidfd = -1;
    pthread_mutex_lock(&a->lock);
    bool room = a->callers < CASD_AGENT_MAX_CALLERS;
    if (room)
        a->callers++;
    pthread_mutex_unlock(&a->lock);
    pthread_t t;
    pthread_attr_t attr;
    if (room && pthread_attr_init(&attr) == 0) {
        (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        bool started = pthread_create(&t, &attr, call_thread, k) == 0;
        pthread_attr_destroy(&attr);
        if (started)
            return;
        pthread_mutex_lock(&a->lock);
        a->callers--;
        pthread_mutex_unlock(&a->lock);
    }
    k->deadline = release_now_ms() + 1000;
    send_refused(k, "node agent busy: %d callers at a time", CASD_AGENT_MAX_CALLERS);
    close(fd);
    free(k);
}

/* ---- start-up ---- */

static cd_err load_identity(struct agent *a, struct cd_diag *diag)
{
    const struct casd_agent_config *c = a->c;
    cd_err err;

    if (c->identity_cert != NULL || c->identity_key != NULL) {
        struct file_read_opts pub = {.max = IDENTITY_MAX},
                              priv = {.max = IDENTITY_MAX, .flags = FILE_PRIVATE};
        struct file_data cd = {0}, kd = {0};
        if (c->identity_cert == NULL || c->identity_key == NULL) {
            cd_diag_add(diag, "give both --identity-cert and --identity-key");
            return CD_ERR_CONFIG;
        }
        if ((err = file_read(c->identity_cert, &pub, &cd)) != CD_OK) {
            cd_diag_add(diag, "--identity-cert %s: %s", c->identity_cert, cd.why);
            return err;
        }
        if ((err = file_read(c->identity_key, &priv, &kd)) != CD_OK) {
            cd_diag_add(diag, "--identity-key %s: %s", c->identity_key, kd.why);
            file_data_release(&cd, NULL);
            return err;
        }
        a->cert = (struct pki_buf){.data = cd.data, .len = cd.len};
        a->key = (struct pki_buf){.data = kd.data, .len = kd.len};
    } else {
        char cn[128];
        snprintf(cn, sizeof(cn), "confidoc node %s", c->node_name != NULL ? c->node_name : "-");
        struct pki_cert_req req = {
            .common_name = cn, .usage = PKI_USAGE_CLIENT, .validity_days = 30, .now = time(NULL)};
        if ((err = pki_key_generate(&a->key)) != CD_OK ||
            (err = pki_cert_issue(&req, a->key.data, a->key.len, NULL, 0, NULL, 0, &a->cert)) !=
                CD_OK) {
            cd_diag_add(diag, "cannot make a node identity: %s", cd_strerror(err));
            return err;
        }
    }
    if ((err = pki_key_fingerprint(a->key.data, a->key.len, a->node)) != CD_OK)
        cd_diag_add(diag, "the node identity key does not load: %s", cd_strerror(err));
    return err;
}

/* Least privilege once the socket is bound: CAP_SYS_PTRACE only (to open
 * /proc/PID/exe of other uids' and non-dumpable processes), no_new_privs. */
static cd_err drop_privileges(struct cd_diag *diag)
{
    if (geteuid() == 0) {
        for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
            if (cap != CAP_SYS_PTRACE && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 &&
                errno != EINVAL)
                break;
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[2] = {{0}};
        d[0].effective = d[0].permitted = 1u << CAP_SYS_PTRACE;
        if (syscall(SYS_capset, &h, d) != 0) {
            cd_diag_add(diag, "cannot drop capabilities: %s", strerror(errno));
            return CD_ERR_IO;
        }
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        cd_diag_add(diag, "cannot set no_new_privs: %s", strerror(errno));
        return CD_ERR_IO;
    }
    return CD_OK;
}

static int signal_fd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGPIPE);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

cd_err casd_agent_run(const struct casd_agent_config *c, struct cd_diag *diag)
{
    struct agent *a = calloc(1, sizeof(*a));
    int lfd = -1, sfd = -1;
    cd_err err;

    if (a == NULL)
        return CD_ERR_NOMEM;
    a->c = c;
    pthread_mutex_init(&a->lock, NULL);
    if ((err = load_identity(a, diag)) != CD_OK)
        goto out;
    if ((sfd = signal_fd()) < 0) { /* before any thread: they inherit the mask */
        cd_diag_add(diag, "cannot set up signals");
        err = CD_ERR_IO;
        goto out;
    }
    if ((err = release_listen(c->socket, 64, &lfd, diag)) != CD_OK ||
        (err = drop_privileges(diag)) != CD_OK)
        goto out;
    if ((err = casd_agent_sandbox()) != CD_OK) {
        cd_diag_add(diag, "cannot sandbox the agent (seccomp): %s", cd_strerror(err));
        goto out;
    }
    log_info("node agent on %s for the CAS at %s:%s, node identity key hash %s (sandboxed)",
             c->socket, c->cas_host, c->cas_port, a->node);
    for (;;) {
        struct pollfd fds[2] = {{.fd = sfd, .events = POLLIN}, {.fd = lfd, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            err = CD_ERR_IO;
            break;
        }
        if (fds[0].revents != 0) {
            struct signalfd_siginfo si;
            bool stop = false;
            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                stop = stop || si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT;
            if (stop)
                break;
        }
        if (fds[1].revents != 0)
            accept_call(a, lfd);
    }
    log_info("node agent stopping");
out:
    if (lfd >= 0) {
        close(lfd);
        unlink(c->socket);
    }
    if (sfd >= 0)
        close(sfd);
    /* Callers still served hold a: each ends within its deadline. */
    bool idle = false;
    for (int64_t until = release_now_ms() + CASD_AGENT_CONN_MS + 1000;
         !idle && release_now_ms() < until;) {
        pthread_mutex_lock(&a->lock);
        idle = a->callers == 0;
        pthread_mutex_unlock(&a->lock);
        if (!idle)
            (void)poll(NULL, 0, 50);
    }
    if (idle) {
        pki_buf_release(&a->cert);
        pki_buf_release(&a->key);
        pki_buf_release(&a->ca);
        pthread_mutex_destroy(&a->lock);
        free(a);
    }
    return err;
}

cd_err casd_agent_check(const char *socket_path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct release_msg m;
    uint8_t in[RELEASE_HEADER + 4 + RELEASE_REASON_MAX + 1];
    struct buf b;
    int64_t deadline = release_now_ms() + 5000;

    if (strlen(socket_path) >= sizeof(sa.sun_path))
        return CD_ERR_CONFIG;
    memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return CD_ERR_IO;
    if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return CD_ERR_IO;
    }
    buf_init(&b, 256);
    cd_err err = release_enc_hello(&b, CASD_AGENT_CHECK_SESSION);
    if (err == CD_OK)
        err = release_send(fd, &b, deadline);
    buf_release(&b);
    if (err == CD_OK)
        err = release_recv(fd, in, sizeof(in), deadline, &m);
    close(fd);
    if (err == CD_OK && (m.type != RELEASE_REFUSED || m.reason.len != strlen(CASD_AGENT_ALIVE) ||
                         memcmp(m.reason.p, CASD_AGENT_ALIVE, m.reason.len) != 0))
        err = CD_ERR_INVALID;
    return err;
}
