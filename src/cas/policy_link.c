/* policy_link.c: a set of parsed policies to a linked set: names to pointers
 * (imports, exports, private_key, issuer), cycles, the dependency order, kinds,
 * CA path lengths and the injection files' references. Pure: no I/O. */
#include "cas/policy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF_OPEN "$$CAS::"
#define REF_CLOSE "$$"

static void serr(struct cd_diag *d, const struct policy_secret *s, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void serr(struct cd_diag *d, const struct policy_secret *s, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    policy_diag_vadd(d, s->policy->file, line > 0 ? line : s->line, s->name, fmt, ap);
    va_end(ap);
}

static bool exports_to(const struct policy_secret *s, const char *policy)
{
    for (size_t i = 0; i < s->nexport; i++)
        if (strcmp(s->export_to[i], policy) == 0)
            return true;
    return false;
}

/* Adds "<CERT>.key" for each certificate without private_key:. */
static cd_err add_implicit_keys(struct policy *p)
{
    size_t n = p->nsecrets;
    for (size_t i = 0; i < n; i++) {
        struct policy_secret *s = p->secrets[i];
        if ((s->kind != POLICY_KIND_X509 && s->kind != POLICY_KIND_X509_CA) ||
            s->private_key != NULL)
            continue;
        struct policy_secret *k = calloc(1, sizeof(*k));
        if (k == NULL)
            return CD_ERR_NOMEM;
        size_t len = strlen(s->name) + 5;
        k->name = malloc(len);
        if (k->name == NULL) {
            free(k);
            return CD_ERR_NOMEM;
        }
        snprintf(k->name, len, "%s.key", s->name);
        k->kind = POLICY_KIND_PRIVATE_KEY;
        k->line = s->line;
        k->policy = p;
        k->implicit = true;
        s->key_ref = k;
        p->secrets[p->nsecrets++] = k;
    }
    return CD_OK;
}

/* The secret named by s's private_key: or issuer: (what) in its own policy p,
 * declared there (not an implicit key); NULL, reported, otherwise. */
static struct policy_secret *local_ref(struct cd_diag *d, const struct policy *p,
                                       const struct policy_secret *s, const char *name, int line,
                                       const char *what)
{
    struct policy_secret *t = policy_find_secret(p, name);
    if (t != NULL && !t->implicit)
        return t;
    serr(d, s, line, "%s '%s' is not declared in policy %s", what, name, p->name);
    return NULL;
}

/* Resolves names to pointers (imports, private_key, issuer, export targets). */
static void link_names(struct policy_set *set, struct cd_diag *d)
{
    for (size_t pi = 0; pi < set->npolicies; pi++) {
        struct policy *p = set->policies[pi];
        for (size_t si = 0; si < p->nsecrets; si++) {
            struct policy_secret *s = p->secrets[si];
            for (size_t e = 0; e < s->nexport; e++) {
                if (policy_set_find(set, s->export_to[e]) == NULL)
                    serr(d, s, s->export_line[e], "exported to unknown policy '%s'",
                         s->export_to[e]);
                else if (strcmp(s->export_to[e], p->name) == 0)
                    serr(d, s, s->export_line[e], "exported to its own policy");
            }
            if (s->kind == POLICY_KIND_IMPORT) {
                struct policy *from = policy_set_find(set, s->import_policy);
                struct policy_secret *t =
                    from != NULL ? policy_find_secret(from, s->import_secret) : NULL;
                if (from == NULL)
                    serr(d, s, s->import_line, "imported from unknown policy '%s'",
                         s->import_policy);
                else if (from == p)
                    serr(d, s, s->import_line, "imported from its own policy");
                else if (t == NULL || t->implicit)
                    serr(d, s, s->import_line, "policy '%s' has no secret '%s'", from->name,
                         s->import_secret);
                else if (!exports_to(t, p->name))
                    serr(d, s, s->import_line,
                         "imports %s/%s, which policy '%s' does not export to policy '%s'",
                         from->name, t->name, from->name, p->name);
                else
                    s->import_ref = t;
            }
            if (s->private_key != NULL)
                s->key_ref = local_ref(d, p, s, s->private_key, s->private_key_line, "private_key");
            if (s->issuer != NULL)
                s->issuer_ref = local_ref(d, p, s, s->issuer, s->issuer_line, "issuer");
        }
    }
}

enum { WHITE = 0, GREY, BLACK };

struct walk {
    struct policy_set *set;
    struct cd_diag *d;
    struct policy_secret **all;
    unsigned char *color;
    size_t nall;
    bool cycle;
};

static size_t find_index(const struct walk *w, const struct policy_secret *s)
{
    for (size_t i = 0; i < w->nall; i++)
        if (w->all[i] == s)
            return i;
    return w->nall;
}

/* Depth-first post-order; depth is bounded by the number of secrets. */
static void visit(struct walk *w, size_t i)
{
    struct policy_secret *s = w->all[i];
    struct {
        struct policy_secret *to;
        int line;
        const char *what;
    } deps[3] = {
        {s->import_ref, s->import_line, "import"},
        {s->key_ref, s->private_key_line, "private_key"},
        {s->issuer_ref, s->issuer_line, "issuer"},
    };

    w->color[i] = GREY;
    for (size_t k = 0; k < 3; k++) {
        if (deps[k].to == NULL)
            continue;
        size_t j = find_index(w, deps[k].to);
        if (j >= w->nall)
            continue;
        if (w->color[j] == GREY) {
            serr(w->d, s, deps[k].line, "dependency cycle: %s %s/%s leads back to this secret",
                 deps[k].what, deps[k].to->policy->name, deps[k].to->name);
            w->cycle = true;
        } else if (w->color[j] == WHITE) {
            visit(w, j);
        }
    }
    w->color[i] = BLACK;
    s->index = w->set->norder;
    w->set->order[w->set->norder++] = s;
}

static cd_err order_secrets(struct policy_set *set, struct cd_diag *d, bool *cycle)
{
    struct walk w = {.set = set, .d = d};
    size_t n = 0;
    for (size_t pi = 0; pi < set->npolicies; pi++)
        n += set->policies[pi]->nsecrets;
    w.all = calloc(n + 1, sizeof(struct policy_secret *));
    w.color = calloc(n + 1, sizeof(*w.color));
    if (w.all == NULL || w.color == NULL) {
        free(w.all);
        free(w.color);
        return CD_ERR_NOMEM;
    }
    for (size_t pi = 0; pi < set->npolicies; pi++)
        for (size_t si = 0; si < set->policies[pi]->nsecrets; si++)
            w.all[w.nall++] = set->policies[pi]->secrets[si];
    set->norder = 0;
    for (size_t i = 0; i < w.nall; i++)
        if (w.color[i] == WHITE)
            visit(&w, i);
    *cycle = w.cycle;
    free(w.all);
    free(w.color);
    return CD_OK;
}

static bool is_cert(enum policy_kind k)
{
    return k == POLICY_KIND_X509 || k == POLICY_KIND_X509_CA;
}

/* Kind checks that need the origin of imports (so after cycles are excluded). */
static void check_kinds(struct policy_set *set, struct cd_diag *d)
{
    for (size_t i = 0; i < set->norder; i++) {
        struct policy_secret *s = set->order[i];
        if (s->private_key != NULL && s->key_ref != NULL) {
            const struct policy_secret *o = policy_secret_origin(s->key_ref);
            if (o->kind != POLICY_KIND_PRIVATE_KEY)
                serr(d, s, s->private_key_line, "private_key '%s' is a %s, not a private-key",
                     s->private_key, policy_kind_name(o->kind));
        }
        if (s->issuer_ref != NULL) {
            const struct policy_secret *o = policy_secret_origin(s->issuer_ref);
            if (o->kind != POLICY_KIND_X509_CA)
                serr(d, s, s->issuer_line, "issuer '%s' is a %s, not an x509-ca", s->issuer,
                     policy_kind_name(o->kind));
        }
        if (s->export_public && !is_cert(s->kind))
            serr(d, s, 0, "export_public applies to certificates only");
    }
}

/* A CA's pathlen: 0 unless it issues CAs. Reverse order visits what a CA
 * issues before the CA itself. */
static void compute_pathlen(struct policy_set *set)
{
    for (size_t i = set->norder; i > 0; i--) {
        struct policy_secret *s = set->order[i - 1];
        if (s->kind != POLICY_KIND_X509_CA || s->issuer_ref == NULL)
            continue;
        struct policy_secret *iss = (struct policy_secret *)policy_secret_origin(s->issuer_ref);
        if (iss != s && iss->pathlen < s->pathlen + 1)
            iss->pathlen = s->pathlen + 1;
    }
}

/* The line of the file at content offset off of an injection file. (A double-
 * quoted scalar's "\n" escapes are not lines of the file: its first line, found
 * by fuzz_policy. A ${VAR} value's line breaks still count.) */
static int ref_line(const struct policy_file *f, size_t off)
{
    int line = f->line;
    if (f->count_breaks)
        for (size_t i = 0; i < off; i++)
            if (f->content[i] == '\n')
                line++;
    return line;
}

/* Finds the $$CAS::NAME.part$$ references of an injection file; each names a
 * part and a secret of policy p. */
static bool parse_refs(const struct policy *p, struct policy_file *f, struct cd_diag *d)
{
    const char *s = f->content;
    size_t n = f->content_len;
    size_t pos = 0;
    const size_t olen = strlen(REF_OPEN);

    while (pos < n) {
        const char *hit = memmem(s + pos, n - pos, REF_OPEN, olen);
        if (hit == NULL)
            break;
        size_t start = (size_t)(hit - s);
        int line = ref_line(f, start);
        const char *name = hit + olen;
        const char *close = memmem(name, n - (start + olen), REF_CLOSE, strlen(REF_CLOSE));
        const char *dot = close != NULL ? memchr(name, '.', (size_t)(close - name)) : NULL;
        if (close == NULL || dot == NULL) {
            policy_diag_add(d, p->file, line, NULL,
                            "injection file %s: malformed reference (expected $$CAS::NAME.part$$)",
                            f->path);
            return false;
        }
        size_t nl = (size_t)(dot - name);
        char sname[POLICY_NAME_MAX + 1];
        if (!policy_valid_secret_name(name, nl)) {
            policy_diag_add(d, p->file, line, NULL,
                            "injection file %s: malformed secret name in reference", f->path);
            return false;
        }
        memcpy(sname, name, nl);
        sname[nl] = '\0';
        if (f->nrefs >= POLICY_MAX_REFS) {
            policy_diag_add(d, p->file, line, sname, "injection file %s: more than %d references",
                            f->path, POLICY_MAX_REFS);
            return false;
        }
        struct policy_ref *r = &f->refs[f->nrefs];
        if (!policy_part_parse(dot + 1, (size_t)(close - (dot + 1)), &r->part)) {
            policy_diag_add(d, p->file, line, sname,
                            "injection file %s: unknown part '%.*s' (crt, chain, key, ca, keyring, "
                            "mariadb_keyfile, hex)",
                            f->path, (int)(close - (dot + 1)) > 32 ? 32 : (int)(close - (dot + 1)),
                            dot + 1);
            return false;
        }
        r->secret = policy_find_secret(p, sname);
        if (r->secret == NULL) {
            policy_diag_add(d, p->file, line, sname,
                            "referenced by injection file %s but not declared in policy %s",
                            f->path, p->name);
            return false;
        }
        r->start = start;
        r->end = (size_t)(close - s) + strlen(REF_CLOSE);
        f->nrefs++;
        pos = r->end;
    }
    return true;
}

static bool part_fits(const struct policy_secret *named, enum policy_part part, const char **why)
{
    const struct policy_secret *o = policy_secret_origin(named);
    switch (part) {
    case POLICY_PART_CRT:
    case POLICY_PART_CHAIN:
    case POLICY_PART_CA:
        *why = "needs a certificate (x509 or x509-ca)";
        return is_cert(o->kind);
    case POLICY_PART_KEY:
        if (named->kind == POLICY_KIND_IMPORT && o->kind == POLICY_KIND_X509_CA) {
            *why = "the key of an imported CA is never exported";
            return false;
        }
        *why = "has no private key";
        return o->kind != POLICY_KIND_SYMMETRIC;
    case POLICY_PART_KEYRING:
        *why = "keyring needs a symmetric-key of size 32";
        return o->kind == POLICY_KIND_SYMMETRIC && o->size == 32;
    case POLICY_PART_MARIADB_KEYFILE:
        *why = "mariadb_keyfile needs a symmetric-key of size 16, 24 or 32";
        return o->kind == POLICY_KIND_SYMMETRIC &&
               (o->size == 16 || o->size == 24 || o->size == 32);
    case POLICY_PART_HEX:
        *why = "needs a symmetric-key";
        return o->kind == POLICY_KIND_SYMMETRIC;
    }
    *why = "unknown part";
    return false;
}

static cd_err link_files(struct policy_set *set, struct cd_diag *d)
{
    for (size_t pi = 0; pi < set->npolicies; pi++) {
        struct policy *p = set->policies[pi];
        for (size_t fi = 0; fi < p->nfiles; fi++) {
            struct policy_file *f = &p->files[fi];
            if (!parse_refs(p, f, d))
                continue;
            for (size_t r = 0; r < f->nrefs; r++) {
                const char *why = NULL;
                if (!part_fits(f->refs[r].secret, f->refs[r].part, &why)) {
                    policy_diag_add(d, p->file, ref_line(f, f->refs[r].start),
                                    f->refs[r].secret->name, "injection file %s: part '%s' %s",
                                    f->path, policy_part_name(f->refs[r].part), why);
                }
            }
            /* the same path twice, in any policy */
            for (size_t qi = 0; qi <= pi; qi++) {
                struct policy *q = set->policies[qi];
                size_t lim = qi == pi ? fi : q->nfiles;
                for (size_t gi = 0; gi < lim; gi++)
                    if (strcmp(q->files[gi].path, f->path) == 0)
                        policy_diag_add(d, p->file, f->line, NULL,
                                        "injection file %s is also written by policy %s", f->path,
                                        q->name);
            }
        }
        /* public file names must be unique too */
        for (size_t si = 0; si < p->nsecrets; si++) {
            struct policy_secret *s = p->secrets[si];
            if (!s->export_public || s->public_name != NULL)
                continue;
            size_t len = strlen(p->name) + strlen(s->name) + 6;
            s->public_name = malloc(len);
            if (s->public_name == NULL)
                return CD_ERR_NOMEM;
            snprintf(s->public_name, len, "%s-%s.crt", p->name, s->name);
        }
    }
    for (size_t i = 0; i < set->norder; i++)
        for (size_t j = 0; j < i; j++)
            if (set->order[i]->export_public && set->order[j]->export_public &&
                strcmp(set->order[i]->public_name, set->order[j]->public_name) == 0)
                serr(d, set->order[i], 0, "public file %s is also exported by %s/%s",
                     set->order[i]->public_name, set->order[j]->policy->name, set->order[j]->name);
    return CD_OK;
}

cd_err policy_set_link(struct policy_set *set, struct cd_diag *d, unsigned before)
{
    bool cycle = false;
    cd_err err;

    for (size_t i = 0; i < set->npolicies; i++) {
        err = add_implicit_keys(set->policies[i]);
        if (err != CD_OK)
            return err;
    }
    link_names(set, d);
    err = order_secrets(set, d, &cycle);
    if (err != CD_OK)
        return err;
    if (d->count > before || cycle)
        return CD_ERR_INVALID;
    check_kinds(set, d);
    compute_pathlen(set);
    err = link_files(set, d);
    if (err != CD_OK)
        return err;
    return d->count > before ? CD_ERR_INVALID : CD_OK;
}
