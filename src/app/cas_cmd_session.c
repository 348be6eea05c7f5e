/* cas_cmd_session.c: confidoc-cas session get|put (a client of the CAS's REST
 * API, casd/client.h) and client-keygen (an operator's key and self-signed
 * client certificate, whose key hash goes into access lists and --admin). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cas_cmds.h"
#include "cas/pki.h"
#include "cas/policy.h"
#include "cas/store.h"
#include "casd/client.h"
#include "casd/rest.h"
#include "casd/sessions.h"
#include "common/codec.h"
#include "common/file.h"

#define MAX_SIGN 16

struct session_args {
    struct casd_tls_client tls;
    char *addr;
    const char *file, *name, *predecessor;
    const char *sign[MAX_SIGN];
    size_t nsign;
    struct cas_vars vars;
};

static void report(const struct cd_diag *d)
{
    fputs(d->text, stderr);
}

/* GET /v1/sessions/NAME: 200 with the body, or the status. */
static cd_err fetch(const struct session_args *a, const char *name, int *status, struct buf *body,
                    struct cd_diag *diag)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/sessions/%s", name);
    return casd_client_request(&a->tls, "GET", path, NULL, 0, status, body, diag);
}

static void print_detail(int status, const struct buf *body)
{
    struct buf d;
    buf_init(&d, 65536);
    if (body->p != NULL && casd_json_get_string(body->p, body->len, "detail", &d) == CD_OK)
        fprintf(stderr, "confidoc-cas: the CAS answered %d: %s\n", status, d.p);
    else
        fprintf(stderr, "confidoc-cas: the CAS answered %d\n", status);
    buf_release(&d);
}

static int do_get(const struct session_args *a, struct cd_diag *diag)
{
    struct buf body, text;
    int status = 0, rc = CAS_EXIT_RUNTIME;

    buf_init(&body, CASD_CLIENT_RESPONSE_MAX);
    buf_init(&text, CASD_CLIENT_RESPONSE_MAX);
    if (fetch(a, a->name, &status, &body, diag) != CD_OK) {
        report(diag);
    } else if (status != 200) {
        print_detail(status, &body);
    } else if (casd_json_get_string(body.p, body.len, "session", &text) != CD_OK) {
        fprintf(stderr, "confidoc-cas: malformed answer from the CAS\n");
    } else {
        fwrite(text.p, 1, text.len, stdout);
        rc = 0;
    }
    buf_release(&body);
    buf_release(&text);
    return rc;
}

/* The text without any top-level "predecessor:" line, with "predecessor: H" first. */
static cd_err set_predecessor(struct buf *t, const char *hash)
{
    struct buf out;
    cd_err err;

    buf_init(&out, POLICY_FILE_MAX + 1);
    err = buf_add(&out, "predecessor: ", 13);
    if (err == CD_OK)
        err = buf_add(&out, hash, strlen(hash));
    if (err == CD_OK)
        err = buf_add(&out, "\n", 1);
    for (size_t i = 0; i < t->len && err == CD_OK;) {
        const char *nl = memchr(t->p + i, '\n', t->len - i);
        size_t n = nl != NULL ? (size_t)(nl - t->p) - i + 1 : t->len - i;
        if (!(n >= 12 && memcmp(t->p + i, "predecessor:", 12) == 0))
            err = buf_add(&out, t->p + i, n);
        i += n;
    }
    if (err == CD_OK) {
        buf_release(t);
        *t = out;
    } else {
        buf_release(&out);
    }
    return err;
}

/* The current hash of the session named in text (auto), or "" when it does not exist. */
static cd_err current_hash(const struct session_args *a, const struct buf *t, char *hash,
                           struct cd_diag *diag)
{
    const char *file = "<file>", *text = t->p;
    struct policy_set *one = NULL;
    struct buf body, h;
    int status = 0;
    cd_err err = policy_set_parse_buffers(&file, &text, &t->len, 1, NULL, false, &one, diag);

    if (err != CD_OK)
        return err;
    buf_init(&body, CASD_CLIENT_RESPONSE_MAX);
    buf_init(&h, PKI_FP_HEX);
    err = fetch(a, one->policies[0]->name, &status, &body, diag);
    hash[0] = '\0';
    if (err == CD_OK && status == 200) {
        err = casd_json_get_string(body.p, body.len, "hash", &h);
        if (err == CD_OK && h.len == PKI_FP_HEX - 1)
            memcpy(hash, h.p, PKI_FP_HEX);
        else
            err = CD_ERR_INVALID;
    } else if (err == CD_OK && status != 404) {
        print_detail(status, &body);
        err = CD_ERR_AUTH;
    }
    buf_release(&body);
    buf_release(&h);
    policy_set_free(one);
    return err;
}

static cd_err add_signature(struct buf *json, const char *keyfile, const struct buf *t, bool first)
{
    struct pki_buf key = {0}, sig = {0}, pub = {0};
    char b64[CODEC_B64_LEN(512)];
    cd_err err = store_read_file(keyfile, 16384, &key);

    if (err == CD_OK)
        err = casd_sig_sign(key.data, key.len, t->p, t->len, &sig, &pub);
    if (err == CD_OK)
        err = codec_b64_encode(sig.data, sig.len, b64, sizeof(b64));
    if (err == CD_OK)
        err = buf_add(json, first ? "{\"public_key\": " : ", {\"public_key\": ", first ? 15 : 17);
    if (err == CD_OK)
        err = casd_json_add_string(json, pub.data, pub.len);
    if (err == CD_OK)
        err = buf_add(json, ", \"signature\": ", 15);
    if (err == CD_OK)
        err = casd_json_add_string(json, b64, strlen(b64));
    if (err == CD_OK)
        err = buf_add(json, "}", 1);
    if (err != CD_OK)
        fprintf(stderr, "confidoc-cas: cannot sign with %s: %s\n", keyfile, cd_strerror(err));
    pki_buf_release(&key);
    pki_buf_release(&sig);
    pki_buf_release(&pub);
    return err;
}

static int do_put(const struct session_args *a, struct cd_diag *diag)
{
    struct file_read_opts o = {.max = POLICY_FILE_MAX};
    struct file_data f;
    struct policy_vars vars = cas_vars_view(&a->vars);
    struct buf t, json, body, h;
    char hash[PKI_FP_HEX];
    int status = 0, rc = CAS_EXIT_RUNTIME;
    cd_err err;

    buf_init(&t, POLICY_FILE_MAX + 1);
    buf_init(&json, CASD_REST_BODY_MAX);
    buf_init(&body, CASD_CLIENT_RESPONSE_MAX);
    buf_init(&h, PKI_FP_HEX);
    if (file_read(a->file, &o, &f) != CD_OK) {
        fprintf(stderr, "confidoc-cas: %s: %s\n", a->file, f.why);
        goto out;
    }
    err = casd_text_subst(f.data, f.len, &vars, &t, diag);
    file_data_release(&f, NULL);
    if (err != CD_OK) {
        report(diag);
        rc = CAS_EXIT_POLICY;
        goto out;
    }
    if (a->predecessor != NULL && strcmp(a->predecessor, "auto") == 0) {
        if (current_hash(a, &t, hash, diag) != CD_OK) {
            report(diag);
            goto out;
        }
        if (hash[0] != '\0' && set_predecessor(&t, hash) != CD_OK)
            goto out;
    } else if (a->predecessor != NULL && set_predecessor(&t, a->predecessor) != CD_OK) {
        goto out;
    }
    err = buf_add(&json, "{\"session\": ", 12);
    if (err == CD_OK)
        err = casd_json_add_string(&json, t.p, t.len);
    if (err == CD_OK)
        err = buf_add(&json, ", \"signatures\": [", 17);
    /* The client's own key signs first: the CAS counts signatures it checks
     * itself, never the key its network worker reports (docs/security.md). */
    if (err == CD_OK && a->tls.key != NULL)
        err = add_signature(&json, a->tls.key, &t, true);
    for (size_t i = 0; i < a->nsign && err == CD_OK; i++)
        err = add_signature(&json, a->sign[i], &t, i == 0 && a->tls.key == NULL);
    if (err == CD_OK)
        err = buf_add(&json, "]}", 2);
    if (err != CD_OK)
        goto out;
    if (casd_client_request(&a->tls, "POST", "/v1/sessions", json.p, json.len, &status, &body,
                            diag) != CD_OK) {
        report(diag);
        goto out;
    }
    if (status != 200 && status != 201) {
        print_detail(status, &body);
        goto out;
    }
    if (casd_json_get_string(body.p, body.len, "hash", &h) != CD_OK) {
        fprintf(stderr, "confidoc-cas: malformed answer from the CAS\n");
        goto out;
    }
    printf("%s\n", h.p);
    rc = 0;
out:
    buf_release(&t);
    buf_release(&json);
    buf_release(&body);
    buf_release(&h);
    return rc;
}

int cas_cmd_session(const char *cmd, int argc, char **argv)
{
    struct session_args a = {.tls = {.timeout_seconds = 30}};
    struct cd_diag *diag = NULL;
    int status = CAS_EXIT_POLICY;
    bool get;

    (void)cmd;
    signal(SIGPIPE, SIG_IGN);
    if (argc < 4 || (strcmp(argv[2], "get") != 0 && strcmp(argv[2], "put") != 0))
        goto usage;
    get = strcmp(argv[2], "get") == 0;
    for (int i = 3; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (o[0] != '-') {
            if (a.file != NULL || a.name != NULL)
                goto usage;
            if (get)
                a.name = o;
            else
                a.file = o;
            continue;
        }
        if (v == NULL)
            goto usage;
        i++;
        if (strcmp(o, "--cas") == 0 && a.addr == NULL) {
            if ((a.addr = strdup(v)) == NULL ||
                cas_split_hostport(a.addr, &a.tls.host, &a.tls.port) != CD_OK)
                goto usage;
        } else if (strcmp(o, "--cacert") == 0) {
            a.tls.cacert = v;
        } else if (strcmp(o, "--cert") == 0) {
            a.tls.cert = v;
        } else if (strcmp(o, "--key") == 0) {
            a.tls.key = v;
        } else if (!get && strcmp(o, "--predecessor") == 0) {
            a.predecessor = v;
        } else if (!get && strcmp(o, "--sign") == 0 && a.nsign < MAX_SIGN) {
            a.sign[a.nsign++] = v;
        } else if (!get && strcmp(o, "--var") == 0) {
            if (!cas_vars_add(&a.vars, v))
                goto out;
        } else {
            goto usage;
        }
    }
    if (a.addr == NULL || a.tls.cacert == NULL || (get ? a.name == NULL : a.file == NULL))
        goto usage;
    if (a.predecessor != NULL && strcmp(a.predecessor, "auto") != 0 &&
        strlen(a.predecessor) != PKI_FP_HEX - 1) {
        fprintf(stderr, "confidoc-cas: --predecessor is auto or a session hash\n");
        goto out;
    }
    if ((diag = malloc(sizeof(*diag))) == NULL) {
        status = CAS_EXIT_RUNTIME;
        goto out;
    }
    cd_diag_init(diag);
    status = get ? do_get(&a, diag) : do_put(&a, diag);
    goto out;
usage:
    cas_usage(stderr);
out:
    cas_vars_free(&a.vars);
    free(a.addr);
    free(diag);
    return status;
}

int cas_cmd_client_keygen(const char *cmd, int argc, char **argv)
{
    const char *keyf = NULL, *certf = NULL, *cn = "confidoc operator";
    struct pki_buf key = {0}, cert = {0};
    char fp[PKI_FP_HEX];
    bool changed = false;
    int status = CAS_EXIT_POLICY;
    cd_err err;

    (void)cmd;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            keyf = argv[++i];
        else if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc)
            certf = argv[++i];
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            cn = argv[++i];
        else {
            cas_usage(stderr);
            return status;
        }
    }
    if (keyf == NULL || certf == NULL) {
        cas_usage(stderr);
        return status;
    }
    status = CAS_EXIT_RUNTIME;
    struct pki_cert_req req = {
        .common_name = cn, .usage = PKI_USAGE_CLIENT, .validity_days = 3650, .now = time(NULL)};
    err = pki_key_generate(&key);
    if (err == CD_OK)
        err = pki_cert_issue(&req, key.data, key.len, NULL, 0, NULL, 0, &cert);
    if (err == CD_OK)
        err = pki_key_fingerprint(key.data, key.len, fp);
    if (err == CD_OK)
        err = store_write_file(keyf, key.data, key.len, 0600, (uid_t)-1, (gid_t)-1, &changed);
    if (err == CD_OK)
        err = store_write_file(certf, cert.data, cert.len, 0644, (uid_t)-1, (gid_t)-1, &changed);
    if (err == CD_OK) {
        printf("%s\n", fp);
        status = 0;
    } else {
        fprintf(stderr, "confidoc-cas: client-keygen: %s\n", cd_strerror(err));
    }
    pki_buf_release(&key);
    pki_buf_release(&cert);
    return status;
}
