/* cas.c: the provisioning core: keeps, creates, rotates and renews secrets in
 * dependency order, then writes the injection files of released policies. */
#include "cas/cas.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cas/inject.h"
#include "cas/pki.h"
#include "cas/store.h"
#include "log/log.h"

#define SYM_MAX_VERSIONS 64
#define TEMPLATE_TEXT_MAX 8192

struct sstate {
    unsigned version;
    struct pki_buf key;  /* private-key: PEM */
    struct pki_buf cert; /* certificates: PEM */
    char fp[PKI_FP_HEX]; /* key: public key hash; certificate: DER hash */
    unsigned char *sym[SYM_MAX_VERSIONS];
    size_t symlen[SYM_MAX_VERSIONS];
    size_t nsym;
    bool rotate;
};

/* The material of a linked policy set (cas.h: struct cas_material). */
struct run {
    const struct policy_set *set; /* borrowed */
    struct cas_store *store;      /* borrowed */
    struct sstate *st;            /* indexed by policy_secret.index */
    struct cd_diag *diag;         /* during cas_material_build only */
    const char *where;            /* the store's name, in messages */
    const char *rotate;           /* "POLICY/SECRET" or NULL */
    FILE *out;                    /* progress lines (names only) or NULL */
    time_t now;                   /* renewal decisions */
    time_t real;                  /* notBefore of what is issued */
};

bool cas_may_release(const struct cas_requester *r, const struct policy *p)
{
    (void)p;
    return r != NULL && r->kind == CAS_REQUESTER_OPERATOR;
}

static void say(const struct run *run, const char *action, const struct policy_secret *s,
                unsigned version, const char *why)
{
    if (run->out == NULL)
        return;
    fprintf(run->out, "%s %s/%s v%u%s%s%s\n", action, s->policy->name, s->name, version,
            why != NULL ? " (" : "", why != NULL ? why : "", why != NULL ? ")" : "");
}

static void runtime_err(struct run *run, const struct policy_secret *s, const char *what, cd_err e)
{
    if (s != NULL)
        policy_diag_add(run->diag, run->where, 0, NULL, "secret %s/%s: %s: %s", s->policy->name,
                        s->name, what, cd_strerror(e));
    else
        policy_diag_add(run->diag, run->where, 0, NULL, "%s: %s", what, cd_strerror(e));
}

static struct sstate *state_of(struct run *run, const struct policy_secret *s)
{
    return &run->st[policy_secret_origin(s)->index];
}

static cd_err do_private_key(struct run *run, const struct policy_secret *s, struct sstate *ss)
{
    struct store_meta m = {0};
    cd_err err = store_meta_get(run->store, s->policy->name, s->name, &m);
    if (err != CD_OK && err != CD_ERR_NOT_FOUND) {
        runtime_err(run, s, "cannot read metadata", err);
        return err;
    }
    if (m.version == 0 || ss->rotate) {
        err = pki_key_generate(&ss->key);
        if (err == CD_OK)
            err = store_put(run->store, s->policy->name, s->name, m.version + 1, "pem",
                            ss->key.data, ss->key.len);
        if (err != CD_OK) {
            runtime_err(run, s, "cannot create key", err);
            return err;
        }
        m.version++;
        m.tmpl[0] = '\0';
        if ((err = store_meta_put(run->store, s->policy->name, s->name, &m)) != CD_OK) {
            runtime_err(run, s, "cannot write metadata", err);
            return err;
        }
        say(run, m.version == 1 ? "created" : "rotated", s, m.version, NULL);
    } else {
        err = store_get(run->store, s->policy->name, s->name, m.version, "pem", &ss->key);
        if (err != CD_OK) {
            runtime_err(run, s, "cannot read key", err);
            return err;
        }
        say(run, "kept", s, m.version, NULL);
    }
    ss->version = m.version;
    err = pki_key_fingerprint(ss->key.data, ss->key.len, ss->fp);
    if (err != CD_OK)
        runtime_err(run, s, "stored key is not a valid private key", err);
    return err;
}

/* Issues the certificate of s (its key, its issuer's certificate and key, or
 * self-signed) and stores it as the given version. */
static cd_err issue_cert(struct run *run, const struct policy_secret *s, struct sstate *ss,
                         const struct sstate *key, const struct sstate *issuer,
                         const struct sstate *issuer_key, unsigned version)
{
    struct pki_cert_req req = {
        .common_name = s->common_name,
        .is_ca = s->kind == POLICY_KIND_X509_CA,
        .pathlen = s->pathlen,
        .usage = (s->usage & POLICY_USAGE_SERVER ? PKI_USAGE_SERVER : 0) |
                 (s->usage & POLICY_USAGE_CLIENT ? PKI_USAGE_CLIENT : 0),
        .dns = (const char *const *)s->dns,
        .ndns = s->ndns,
        .ip = (const char *const *)s->ip,
        .nip = s->nip,
        .validity_days = s->validity_days,
        .now = run->real,
    };
    time_t not_after = 0;
    cd_err err;

    err = pki_cert_issue(
        &req, key->key.data, key->key.len, issuer != NULL ? issuer->cert.data : NULL,
        issuer != NULL ? issuer->cert.len : 0, issuer_key != NULL ? issuer_key->key.data : NULL,
        issuer_key != NULL ? issuer_key->key.len : 0, &ss->cert);
    if (err == CD_OK)
        err = pki_cert_info(ss->cert.data, ss->cert.len, &not_after, ss->fp);
    if (err == CD_OK)
        err = store_put(run->store, s->policy->name, s->name, version, "pem", ss->cert.data,
                        ss->cert.len);
    if (err != CD_OK)
        runtime_err(run, s, "cannot issue certificate", err);
    return err;
}

/* The next version of s's metadata, made from template tmpl, written. */
static cd_err meta_advance(struct run *run, const struct policy_secret *s, struct store_meta *m,
                           const char *tmpl)
{
    cd_err err;

    m->version++;
    snprintf(m->tmpl, sizeof(m->tmpl), "%s", tmpl);
    if ((err = store_meta_put(run->store, s->policy->name, s->name, m)) != CD_OK)
        runtime_err(run, s, "cannot write metadata", err);
    return err;
}

static cd_err do_symmetric(struct run *run, const struct policy_secret *s, struct sstate *ss)
{
    struct store_meta m = {0};
    char text[64], tmpl[PKI_FP_HEX];
    const char *why = NULL;
    cd_err err = store_meta_get(run->store, s->policy->name, s->name, &m);

    if (err != CD_OK && err != CD_ERR_NOT_FOUND) {
        runtime_err(run, s, "cannot read metadata", err);
        return err;
    }
    int n = snprintf(text, sizeof(text), "symmetric-key size=%u", s->size);
    pki_sha256_hex(text, (size_t)n, tmpl);
    bool add = m.version == 0 || ss->rotate;
    if (!add && strcmp(m.tmpl, tmpl) != 0) {
        add = true;
        why = "size changed";
    }
    if (m.version > SYM_MAX_VERSIONS || (add && m.version >= SYM_MAX_VERSIONS)) {
        runtime_err(run, s, "too many versions", CD_ERR_TOO_LARGE);
        return CD_ERR_TOO_LARGE;
    }
    for (unsigned v = 1; v <= m.version; v++) {
        struct pki_buf b = {0};
        err = store_get(run->store, s->policy->name, s->name, v, "bin", &b);
        if (err != CD_OK) {
            runtime_err(run, s, "cannot read a stored version", err);
            return err;
        }
        ss->sym[ss->nsym] = (unsigned char *)b.data;
        ss->symlen[ss->nsym++] = b.len;
    }
    if (add) {
        unsigned char *k = malloc(s->size);
        if (k == NULL)
            return CD_ERR_NOMEM;
        ss->sym[ss->nsym] = k;
        ss->symlen[ss->nsym++] = s->size;
        err = pki_random(k, s->size);
        if (err == CD_OK)
            err = store_put(run->store, s->policy->name, s->name, m.version + 1, "bin", k, s->size);
        if (err != CD_OK) {
            runtime_err(run, s, "cannot create key", err);
            return err;
        }
        if ((err = meta_advance(run, s, &m, tmpl)) != CD_OK)
            return err;
        say(run,
            m.version == 1 ? "created"
            : why != NULL  ? "renewed"
                           : "rotated",
            s, m.version, why);
    } else {
        say(run, "kept", s, m.version, NULL);
    }
    ss->version = m.version;
    return CD_OK;
}

/* What a certificate depends on, hashed: a change re-issues it. */
static cd_err cert_template(const struct policy_secret *s, const struct sstate *key,
                            const struct sstate *issuer, char out[PKI_FP_HEX])
{
    char text[TEMPLATE_TEXT_MAX];
    size_t len = 0;
    int n = snprintf(text, sizeof(text),
                     "%s\ncn=%s\npathlen=%d\nusage=%u\ndays=%u\nkey=%s\nissuer=%s\n",
                     policy_kind_name(s->kind), s->common_name, s->pathlen, s->usage,
                     s->validity_days, key->fp, issuer != NULL ? issuer->fp : "self");
    if (n < 0 || (size_t)n >= sizeof(text))
        return CD_ERR_TOO_LARGE;
    len = (size_t)n;
    for (size_t i = 0; i < s->ndns + s->nip; i++) {
        n = snprintf(text + len, sizeof(text) - len, "%s=%s\n", i < s->ndns ? "dns" : "ip",
                     i < s->ndns ? s->dns[i] : s->ip[i - s->ndns]);
        if (n < 0 || (size_t)n >= sizeof(text) - len)
            return CD_ERR_TOO_LARGE;
        len += (size_t)n;
    }
    pki_sha256_hex(text, len, out);
    return CD_OK;
}

static cd_err do_cert(struct run *run, const struct policy_secret *s, struct sstate *ss)
{
    struct store_meta m = {0};
    char tmpl[PKI_FP_HEX];
    const char *action = NULL, *why = NULL;
    const struct sstate *key = state_of(run, s->key_ref);
    const struct sstate *issuer = NULL, *issuer_key = NULL;
    cd_err err;

    if (s->issuer_ref != NULL) {
        const struct policy_secret *io = policy_secret_origin(s->issuer_ref);
        issuer = state_of(run, io);
        issuer_key = state_of(run, io->key_ref);
    }
    if ((err = cert_template(s, key, issuer, tmpl)) != CD_OK) {
        runtime_err(run, s, "template too large", err);
        return err;
    }
    err = store_meta_get(run->store, s->policy->name, s->name, &m);
    if (err != CD_OK && err != CD_ERR_NOT_FOUND) {
        runtime_err(run, s, "cannot read metadata", err);
        return err;
    }
    if (m.version == 0) {
        action = "created";
    } else if (ss->rotate) {
        action = "rotated";
    } else if (strcmp(m.tmpl, tmpl) != 0) {
        action = "renewed";
        why = "template, key or issuer changed";
    } else {
        time_t not_after = 0;
        err = store_get(run->store, s->policy->name, s->name, m.version, "pem", &ss->cert);
        if (err == CD_OK)
            err = pki_cert_info(ss->cert.data, ss->cert.len, &not_after, ss->fp);
        if (err != CD_OK) {
            runtime_err(run, s, "cannot read stored certificate", err);
            return err;
        }
        if (not_after - run->now < CAS_RENEW_BEFORE_SECONDS) {
            action = "renewed";
            why = "expires within 30 days";
            pki_buf_release(&ss->cert);
        }
    }
    if (action != NULL) {
        if ((err = issue_cert(run, s, ss, key, issuer, issuer_key, m.version + 1)) != CD_OK)
            return err;
        if ((err = meta_advance(run, s, &m, tmpl)) != CD_OK)
            return err;
        say(run, action, s, m.version, why);
    } else {
        say(run, "kept", s, m.version, NULL);
    }
    ss->version = m.version;
    return CD_OK;
}

static cd_err mark_rotation(struct run *run)
{
    const char *t = run->rotate;
    const char *slash = t != NULL ? strchr(t, '/') : NULL;
    char pname[POLICY_NAME_MAX + 1];

    if (t == NULL)
        return CD_OK;
    if (slash == NULL || (size_t)(slash - t) > POLICY_NAME_MAX) {
        policy_diag_add(run->diag, t, 0, NULL, "rotate: expected POLICY/SECRET");
        return CD_ERR_INVALID;
    }
    memcpy(pname, t, (size_t)(slash - t));
    pname[slash - t] = '\0';
    struct policy *p = policy_set_find(run->set, pname);
    struct policy_secret *s = p != NULL ? policy_find_secret(p, slash + 1) : NULL;
    if (s == NULL) {
        policy_diag_add(run->diag, "rotate", 0, NULL, "no secret %s", t);
        return CD_ERR_INVALID;
    }
    if (s->kind == POLICY_KIND_IMPORT) {
        const struct policy_secret *o = policy_secret_origin(s);
        policy_diag_add(run->diag, p->file, s->line, s->name, "is imported: rotate %s/%s instead",
                        o->policy->name, o->name);
        return CD_ERR_INVALID;
    }
    run->st[s->index].rotate = true;
    /* A certificate with its own key gets a new key pair. */
    if ((s->kind == POLICY_KIND_X509 || s->kind == POLICY_KIND_X509_CA) && s->key_ref->implicit)
        run->st[s->key_ref->index].rotate = true;
    return CD_OK;
}

/* ---- injection ---- */

static cd_err copy_text(const struct pki_buf *src, struct pki_buf *out)
{
    return pki_buf_copy(src->data, src->len, out);
}

static cd_err append_text(struct pki_buf *dst, const struct pki_buf *src)
{
    char *p = malloc(dst->len + src->len + 1);
    if (p == NULL)
        return CD_ERR_NOMEM;
    if (dst->len > 0)
        memcpy(p, dst->data, dst->len);
    memcpy(p + dst->len, src->data, src->len);
    p[dst->len + src->len] = '\0';
    size_t len = dst->len + src->len;
    pki_buf_release(dst);
    dst->data = p;
    dst->len = len;
    return CD_OK;
}

static cd_err lookup(void *ctx, const struct policy_secret *named, enum policy_part part,
                     struct pki_buf *out)
{
    struct run *run = ctx;
    const struct policy_secret *s = policy_secret_origin(named);
    struct sstate *ss = &run->st[s->index];
    struct pki_buf b = {0};
    cd_err err = CD_OK;

    switch (part) {
    case POLICY_PART_CRT:
        return copy_text(&ss->cert, out);
    case POLICY_PART_CA: {
        const struct policy_secret *iss =
            s->issuer_ref != NULL ? policy_secret_origin(s->issuer_ref) : s;
        return copy_text(&run->st[iss->index].cert, out);
    }
    case POLICY_PART_CHAIN:
        if ((err = copy_text(&ss->cert, &b)) != CD_OK)
            goto out;
        for (const struct policy_secret *c = s; c->issuer_ref != NULL;) {
            c = policy_secret_origin(c->issuer_ref);
            if ((err = append_text(&b, &run->st[c->index].cert)) != CD_OK)
                goto out;
        }
        *out = b;
        b.data = NULL;
        break;
    case POLICY_PART_KEY:
        if (s->kind == POLICY_KIND_PRIVATE_KEY)
            return copy_text(&ss->key, out);
        return copy_text(&state_of(run, s->key_ref)->key, out);
    case POLICY_PART_KEYRING:
    case POLICY_PART_MARIADB_KEYFILE:
    case POLICY_PART_HEX:
        return inject_symmetric_text(part, (const unsigned char *const *)ss->sym, ss->symlen,
                                     ss->nsym, out);
    }
out:
    pki_buf_release(&b);
    return err;
}

static cd_err render_policy(const struct run *run, const struct policy *p, cas_emit_fn emit,
                            void *ctx)
{
    cd_err err = CD_OK;

    for (size_t i = 0; i < p->nfiles && err == CD_OK; i++) {
        const struct policy_file *f = &p->files[i];
        struct pki_buf content = {0};
        err = inject_render(f, lookup, (void *)run, &content);
        if (err == CD_OK)
            err = emit(ctx, p, f->path, &content, false);
        pki_buf_release(&content);
    }
    for (size_t i = 0; i < p->nsecrets && err == CD_OK; i++) {
        const struct policy_secret *s = p->secrets[i];
        char rel[256];
        if (!s->export_public)
            continue;
        snprintf(rel, sizeof(rel), "public/%s", s->public_name);
        err = emit(ctx, p, rel, &run->st[s->index].cert, true);
    }
    return err;
}

static void state_release(struct sstate *ss)
{
    pki_buf_release(&ss->key);
    pki_buf_release(&ss->cert);
    for (size_t i = 0; i < ss->nsym; i++) {
        pki_wipe(ss->sym[i], ss->symlen[i]);
        free(ss->sym[i]);
    }
    ss->nsym = 0;
}

void cas_material_free(struct cas_material *m)
{
    struct run *run = (struct run *)m;

    if (run == NULL)
        return;
    if (run->st != NULL) {
        for (size_t i = 0; i < run->set->norder; i++)
            state_release(&run->st[i]);
        free(run->st);
    }
    free(run);
}

cd_err cas_material_build(const struct cas_build *b, struct cd_diag *diag,
                          struct cas_material **out)
{
    struct run *run = calloc(1, sizeof(*run));
    cd_err err = CD_OK;

    if (run == NULL)
        return CD_ERR_NOMEM;
    run->set = b->set;
    run->store = b->store;
    run->diag = diag;
    run->where = b->where != NULL ? b->where : "cas";
    run->rotate = b->rotate;
    run->out = b->out;
    run->real = time(NULL);
    run->now = b->now != 0 ? b->now : run->real;
    run->st = calloc(run->set->norder + 1, sizeof(*run->st));
    if (run->st == NULL) {
        err = CD_ERR_NOMEM;
        goto out;
    }
    if ((err = mark_rotation(run)) != CD_OK)
        goto out;
    for (size_t i = 0; i < run->set->norder && err == CD_OK; i++) {
        const struct policy_secret *s = run->set->order[i];
        struct sstate *ss = &run->st[i];
        switch (s->kind) {
        case POLICY_KIND_PRIVATE_KEY:
            err = do_private_key(run, s, ss);
            break;
        case POLICY_KIND_SYMMETRIC:
            err = do_symmetric(run, s, ss);
            break;
        case POLICY_KIND_X509:
        case POLICY_KIND_X509_CA:
            err = do_cert(run, s, ss);
            break;
        case POLICY_KIND_IMPORT:
            break; /* material is the origin's */
        }
    }
out:
    run->diag = NULL;
    if (err != CD_OK) {
        if (err == CD_ERR_NOMEM)
            policy_diag_add(diag, run->where, 0, NULL, "out of memory");
        cas_material_free((struct cas_material *)run);
        return err;
    }
    *out = (struct cas_material *)run;
    return CD_OK;
}

cd_err cas_material_render(const struct cas_material *m, const struct policy *p, cas_emit_fn emit,
                           void *ctx)
{
    return render_policy((const struct run *)m, p, emit, ctx);
}

cd_err cas_material_public(const struct cas_material *m, const char *policy, const char *secret,
                           struct pki_buf *out)
{
    const struct run *run = (const struct run *)m;
    const struct policy *p = policy_set_find(run->set, policy);
    const struct policy_secret *s = p != NULL ? policy_find_secret(p, secret) : NULL;

    /* Only a secret its own policy marks export_public (never an import of one:
     * that copy is the importer's, not public by the importer's say). */
    if (s == NULL || !s->export_public || s->kind == POLICY_KIND_IMPORT)
        return CD_ERR_NOT_FOUND;
    return copy_text(&run->st[s->index].cert, out);
}

/* ---- offline provisioning: material written as files ---- */

struct writer {
    const struct cas_options *o;
    struct cd_diag *diag;
};

static cd_err write_file(void *ctx, const struct policy *p, const char *rel,
                         const struct pki_buf *content, bool public_file)
{
    const struct writer *w = ctx;
    bool changed = false;
    uid_t uid;
    gid_t gid;
    cd_err err;

    inject_owner(p->owner, &uid, &gid);
    err = inject_write(w->o->state_dir, rel, content, public_file, uid, gid, &changed);
    if (err != CD_OK) {
        policy_diag_add(w->diag, w->o->state_dir, 0, NULL, "cannot write %s: %s", rel,
                        cd_strerror(err));
        return err;
    }
    if (w->o->out != NULL)
        fprintf(w->o->out, "%s %s\n", changed ? "wrote" : "unchanged", rel);
    return CD_OK;
}

cd_err cas_check(const struct cas_options *o, struct cd_diag *diag)
{
    struct policy_set *set = NULL;
    cd_err err = policy_set_load(o->policies_dir, &o->vars, &set, diag);
    policy_set_free(set);
    return err;
}

cd_err cas_provision(const struct cas_options *o, const struct cas_requester *r,
                     struct cd_diag *diag)
{
    struct policy_set *set = NULL;
    struct cas_store *store = NULL;
    struct cas_material *m = NULL;
    struct writer w = {.o = o, .diag = diag};
    cd_err err;

    err = policy_set_load(o->policies_dir, &o->vars, &set, diag);
    if (err != CD_OK)
        goto out;
    err = store_open(o->state_dir, NULL, &store);
    if (err != CD_OK) {
        policy_diag_add(diag, o->state_dir, 0, NULL, "cannot open the store %s/cas: %s",
                        o->state_dir, cd_strerror(err));
        goto out;
    }
    struct cas_build b = {.set = set,
                          .store = store,
                          .where = o->state_dir,
                          .rotate = o->rotate,
                          .now = o->now,
                          .out = o->out};
    if ((err = cas_material_build(&b, diag, &m)) != CD_OK)
        goto out;
    for (size_t i = 0; i < set->npolicies && err == CD_OK; i++) {
        const struct policy *p = set->policies[i];
        if (p->owner != NULL && geteuid() == 0) {
            uid_t uid;
            gid_t gid;
            inject_owner(p->owner, &uid, &gid);
            if (uid == (uid_t)-1)
                log_warnx("%s: owner '%s' does not exist; its files stay root's", p->file,
                          p->owner);
        }
        if (cas_may_release(r, p))
            err = cas_material_render(m, p, write_file, &w);
    }
out:
    cas_material_free(m);
    store_close(store);
    policy_set_free(set);
    return err;
}
