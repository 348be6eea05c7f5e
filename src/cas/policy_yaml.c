/* policy_yaml.c: one CAS policy document (YAML) to a struct policy. The only file of
 * the module that sees libyaml; pure: the bytes and the ${VAR} look-up come from the
 * caller. */
#include "cas/policy_yaml_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/num.h"

void policy_yaml_err(struct pctx *c, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    policy_diag_vadd(c->diag, c->file, line, c->secret, fmt, ap);
    va_end(ap);
}

static const char *lookup_var(const struct pctx *c, const char *name)
{
    if (c->vars != NULL) {
        for (size_t i = c->vars->n; i > 0; i--) /* the last --var of a name wins */
            if (strcmp(c->vars->names[i - 1], name) == 0)
                return c->vars->values[i - 1];
    }
    return c->env != NULL ? c->env(name) : NULL;
}

/* Substitutes ${NAME} in s[0..n); NULL on error (reported, or c->nomem). */
static char *substitute(struct pctx *c, int line, const char *s, size_t n, size_t *outlen)
{
    size_t cap = n + 1, len = 0;
    char *out = malloc(cap);
    if (out == NULL) {
        c->nomem = true;
        return NULL;
    }
    for (size_t i = 0; i < n;) {
        if (s[i] == '$' && i + 1 < n && s[i + 1] == '{') {
            size_t j = i + 2;
            while (j < n && s[j] != '}' && j - (i + 2) <= POLICY_VAR_NAME_MAX)
                j++;
            /* j stops one past the longest name: 65 bytes then '}' is too long too */
            if (j >= n || s[j] != '}' || j - (i + 2) > POLICY_VAR_NAME_MAX) {
                policy_yaml_err(c, line, "unterminated or too long ${...}");
                goto fail;
            }
            char name[POLICY_VAR_NAME_MAX + 1];
            size_t nl = j - (i + 2);
            memcpy(name, s + i + 2, nl);
            name[nl] = '\0';
            bool ok = nl > 0 && !(name[0] >= '0' && name[0] <= '9');
            for (size_t k = 0; k < nl && ok; k++)
                ok = (name[k] >= 'A' && name[k] <= 'Z') || (name[k] >= 'a' && name[k] <= 'z') ||
                     (name[k] >= '0' && name[k] <= '9') || name[k] == '_';
            if (!ok) {
                policy_yaml_err(c, line, "bad variable name in ${...}");
                goto fail;
            }
            const char *val = lookup_var(c, name);
            if (val == NULL && c->env != NULL) {
                policy_yaml_err(c, line, "unknown variable ${%s} (no --var %s=... nor %s%s)", name,
                                name, POLICY_VAR_ENV_PREFIX, name);
                goto fail;
            }
            if (val == NULL) {
                policy_yaml_err(c, line, "unknown variable ${%s}", name);
                goto fail;
            }
            size_t vl = strlen(val);
            if (len + vl + (n - j) + 1 > POLICY_CONTENT_MAX) {
                policy_yaml_err(c, line, "value too long after substitution");
                goto fail;
            }
            if (len + vl + (n - j) + 1 > cap) {
                cap = len + vl + (n - j) + 1;
                char *grown = realloc(out, cap);
                if (grown == NULL) {
                    c->nomem = true;
                    goto fail;
                }
                out = grown;
            }
            memcpy(out + len, val, vl);
            len += vl;
            i = j + 1;
        } else {
            out[len++] = s[i++];
        }
    }
    out[len] = '\0';
    *outlen = len;
    return out;
fail:
    free(out);
    return NULL;
}

/* A string scalar (with ${VAR} substituted) without NUL bytes. */
bool policy_yaml_string(struct pctx *c, yaml_node_t *n, const char *key, char **out)
{
    size_t len = 0;
    if (n->type != YAML_SCALAR_NODE) {
        policy_yaml_err(c, node_line(n), "%s: expected a string", key);
        return false;
    }
    if (memchr(n->data.scalar.value, '\0', n->data.scalar.length) != NULL) {
        policy_yaml_err(c, node_line(n), "%s: NUL byte in string", key);
        return false;
    }
    int line = node_line(n);
    if (n->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
        n->data.scalar.style == YAML_FOLDED_SCALAR_STYLE)
        line++;
    char *s = substitute(c, line, (const char *)n->data.scalar.value, n->data.scalar.length, &len);
    if (s == NULL)
        return false;
    free(*out); /* duplicate keys are refused before; this is only defensive */
    *out = s;
    return true;
}

static bool is_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

bool policy_yaml_uint(struct pctx *c, yaml_node_t *n, const char *key, unsigned min, unsigned max,
                      unsigned *out)
{
    uint64_t v = 0;
    /* At most 9 digits (leading zeros included), as policies always had. */
    bool ok = is_plain(n) && n->data.scalar.length <= 9 &&
              num_parse((const char *)n->data.scalar.value, n->data.scalar.length, 999999999u,
                        &v) == CD_OK;
    if (!ok) {
        policy_yaml_err(c, node_line(n), "%s: expected an integer", key);
        return false;
    }
    if (v < min || v > max) {
        policy_yaml_err(c, node_line(n), "%s: must be between %u and %u", key, min, max);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

static bool get_bool(struct pctx *c, yaml_node_t *n, const char *key, bool *out)
{
    if (is_plain(n) && n->data.scalar.length == 4 && memcmp(n->data.scalar.value, "true", 4) == 0) {
        *out = true;
        return true;
    }
    if (is_plain(n) && n->data.scalar.length == 5 &&
        memcmp(n->data.scalar.value, "false", 5) == 0) {
        *out = false;
        return true;
    }
    policy_yaml_err(c, node_line(n), "%s: expected true or false", key);
    return false;
}

/* Checks that a mapping has scalar keys without duplicates; reports and returns false otherwise. */
bool policy_yaml_mapping(struct pctx *c, yaml_node_t *m, const char *what)
{
    if (m->type != YAML_MAPPING_NODE) {
        policy_yaml_err(c, node_line(m), "%s: expected a mapping", what);
        return false;
    }
    for (yaml_node_pair_t *a = m->data.mapping.pairs.start; a < m->data.mapping.pairs.top; a++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
        if (k == NULL || k->type != YAML_SCALAR_NODE) {
            policy_yaml_err(c, k != NULL ? node_line(k) : node_line(m), "%s: keys must be strings",
                            what);
            return false;
        }
        for (yaml_node_pair_t *b = m->data.mapping.pairs.start; b < a; b++) {
            yaml_node_t *kb = yaml_document_get_node(c->doc, b->key);
            if (kb != NULL && kb->data.scalar.length == k->data.scalar.length &&
                memcmp(kb->data.scalar.value, k->data.scalar.value, k->data.scalar.length) == 0) {
                policy_yaml_err(c, node_line(k), "duplicate key '%.*s'", (int)k->data.scalar.length,
                                (const char *)k->data.scalar.value);
                return false;
            }
        }
    }
    return true;
}

static yaml_node_t *map_get(struct pctx *c, yaml_node_t *m, const char *key)
{
    for (yaml_node_pair_t *a = m->data.mapping.pairs.start; a < m->data.mapping.pairs.top; a++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
        if (k != NULL && scalar_is(k, key))
            return yaml_document_get_node(c->doc, a->value);
    }
    return NULL;
}

/* Calls item(c, entry, arg) for each entry of the list node n (key: its name
 * in messages), refusing more than max entries (*count: how many item has
 * added): "KEY: more than MAX entries", or with what "more than MAX WHAT" (a
 * top-level list: no secret named). */
bool policy_yaml_list(struct pctx *c, yaml_node_t *n, const char *key, const char *what,
                      const size_t *count, size_t max,
                      bool (*item)(struct pctx *, yaml_node_t *, void *), void *arg)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        policy_yaml_err(c, node_line(n), "%s: expected a list", key);
        return false;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = yaml_document_get_node(c->doc, *it);
        if (e == NULL)
            continue;
        if (*count >= max && what != NULL) {
            c->secret = NULL;
            policy_yaml_err(c, node_line(e), "more than %zu %s", max, what);
            return false;
        }
        if (*count >= max) {
            policy_yaml_err(c, node_line(e), "%s: more than %zu entries", key, max);
            return false;
        }
        if (!item(c, e, arg))
            return false;
    }
    return true;
}

struct string_list {
    const char *key;
    char **arr;
    size_t *count;
};

static bool string_item(struct pctx *c, yaml_node_t *e, void *arg)
{
    struct string_list *l = arg;
    char *s = NULL;

    if (!policy_yaml_string(c, e, l->key, &s))
        return false;
    l->arr[(*l->count)++] = s;
    return true;
}

/* A sequence of strings into arr (at most POLICY_MAX_LIST). */
static bool get_string_list(struct pctx *c, yaml_node_t *n, const char *key, char **arr,
                            size_t *count)
{
    struct string_list l = {key, arr, count};
    return policy_yaml_list(c, n, key, NULL, count, POLICY_MAX_LIST, string_item, &l);
}

/* ---- secrets ---- */

enum key_bit {
    K_NAME = 1 << 0,
    K_KIND = 1 << 1,
    K_IMPORT = 1 << 2,
    K_EXPORT = 1 << 3,
    K_EXPORT_PUBLIC = 1 << 4,
    K_PUBLIC_NAME = 1 << 5,
    K_PRIVATE_KEY = 1 << 6,
    K_ISSUER = 1 << 7,
    K_COMMON_NAME = 1 << 8,
    K_DNS = 1 << 9,
    K_IP = 1 << 10,
    K_USAGE = 1 << 11,
    K_VALIDITY = 1 << 12,
    K_SIZE = 1 << 13,
};

static const struct {
    const char *name;
    unsigned bit;
} secret_keys[] = {
    {"name", K_NAME},
    {"kind", K_KIND},
    {"import", K_IMPORT},
    {"export", K_EXPORT},
    {"export_public", K_EXPORT_PUBLIC},
    {"public_name", K_PUBLIC_NAME},
    {"private_key", K_PRIVATE_KEY},
    {"issuer", K_ISSUER},
    {"common_name", K_COMMON_NAME},
    {"dns", K_DNS},
    {"ip", K_IP},
    {"usage", K_USAGE},
    {"validity_days", K_VALIDITY},
    {"size", K_SIZE},
};

static unsigned allowed_keys(enum policy_kind k)
{
    switch (k) {
    case POLICY_KIND_PRIVATE_KEY:
        return K_NAME | K_KIND | K_EXPORT;
    case POLICY_KIND_X509_CA:
        return K_NAME | K_KIND | K_EXPORT | K_EXPORT_PUBLIC | K_PUBLIC_NAME | K_PRIVATE_KEY |
               K_ISSUER | K_COMMON_NAME | K_VALIDITY;
    case POLICY_KIND_X509:
        return K_NAME | K_KIND | K_EXPORT | K_EXPORT_PUBLIC | K_PUBLIC_NAME | K_PRIVATE_KEY |
               K_ISSUER | K_COMMON_NAME | K_DNS | K_IP | K_USAGE | K_VALIDITY;
    case POLICY_KIND_SYMMETRIC:
        return K_NAME | K_KIND | K_EXPORT | K_SIZE;
    case POLICY_KIND_IMPORT:
        return K_NAME | K_IMPORT | K_EXPORT;
    }
    return 0;
}

static bool parse_kind(struct pctx *c, yaml_node_t *n, enum policy_kind *out)
{
    static const enum policy_kind kinds[] = {POLICY_KIND_PRIVATE_KEY, POLICY_KIND_X509_CA,
                                             POLICY_KIND_X509, POLICY_KIND_SYMMETRIC};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (is_plain(n) && scalar_is(n, policy_kind_name(kinds[i]))) {
            *out = kinds[i];
            return true;
        }
    }
    policy_yaml_err(
        c, node_line(n),
        "kind: expected private-key, x509-ca, x509 or symmetric-key (or import: instead)");
    return false;
}

static bool parse_import(struct pctx *c, struct policy_secret *s, yaml_node_t *n)
{
    if (!policy_yaml_mapping(c, n, "import"))
        return false;
    for (yaml_node_pair_t *a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top; a++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, a->value);
        if (scalar_is(k, "policy")) {
            if (!policy_yaml_string(c, v, "import.policy", &s->import_policy))
                return false;
        } else if (scalar_is(k, "secret")) {
            if (!policy_yaml_string(c, v, "import.secret", &s->import_secret))
                return false;
        } else {
            policy_yaml_err(c, node_line(k), "import: unknown key '%.*s' (expected policy, secret)",
                            (int)k->data.scalar.length, (const char *)k->data.scalar.value);
            return false;
        }
    }
    if (s->import_policy == NULL || s->import_secret == NULL) {
        policy_yaml_err(c, node_line(n), "import: needs both policy: and secret:");
        return false;
    }
    s->import_line = node_line(n);
    return true;
}

static bool parse_export(struct pctx *c, struct policy_secret *s, yaml_node_t *n)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        policy_yaml_err(c, node_line(n), "export: expected a list of '- policy: NAME'");
        return false;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = yaml_document_get_node(c->doc, *it);
        if (e == NULL)
            continue;
        if (!policy_yaml_mapping(c, e, "export entry"))
            return false;
        if (s->nexport >= POLICY_MAX_LIST) {
            policy_yaml_err(c, node_line(e), "export: more than %d entries", POLICY_MAX_LIST);
            return false;
        }
        char *pol = NULL;
        for (yaml_node_pair_t *a = e->data.mapping.pairs.start; a < e->data.mapping.pairs.top;
             a++) {
            yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
            yaml_node_t *v = yaml_document_get_node(c->doc, a->value);
            if (!scalar_is(k, "policy")) {
                policy_yaml_err(c, node_line(k), "export: unknown key '%.*s' (expected policy)",
                                (int)k->data.scalar.length, (const char *)k->data.scalar.value);
                free(pol);
                return false;
            }
            if (!policy_yaml_string(c, v, "export.policy", &pol))
                return false;
        }
        if (pol == NULL) {
            policy_yaml_err(c, node_line(e), "export: entry needs policy:");
            return false;
        }
        s->export_line[s->nexport] = node_line(e);
        s->export_to[s->nexport++] = pol;
    }
    return true;
}

static bool parse_usage(struct pctx *c, struct policy_secret *s, yaml_node_t *n)
{
    char *items[POLICY_MAX_LIST];
    size_t count = 0;
    bool ok = get_string_list(c, n, "usage", items, &count);
    for (size_t i = 0; i < count; i++) {
        if (ok && strcmp(items[i], "server") == 0)
            s->usage |= POLICY_USAGE_SERVER;
        else if (ok && strcmp(items[i], "client") == 0)
            s->usage |= POLICY_USAGE_CLIENT;
        else if (ok) {
            policy_yaml_err(c, node_line(n), "usage: expected server and/or client");
            ok = false;
        }
        free(items[i]);
    }
    if (ok && s->usage == 0) {
        policy_yaml_err(c, node_line(n), "usage: expected server and/or client");
        ok = false;
    }
    return ok;
}

/* get_string, then the string must pass valid: "KEY: WHY" otherwise. */
static bool get_checked_string(struct pctx *c, yaml_node_t *v, const char *key, char **out,
                               bool (*valid)(const char *), const char *why)
{
    if (!policy_yaml_string(c, v, key, out))
        return false;
    if (!valid(*out)) {
        policy_yaml_err(c, node_line(v), "%s: %s", key, why);
        return false;
    }
    return true;
}

/* get_string_list, then each entry must pass valid: "KEY: 'ENTRY' WHY" otherwise. */
static bool get_checked_list(struct pctx *c, yaml_node_t *v, const char *key, char **arr,
                             size_t *count, bool (*valid)(const char *), const char *why)
{
    if (!get_string_list(c, v, key, arr, count))
        return false;
    for (size_t i = 0; i < *count; i++) {
        if (!valid(arr[i])) {
            policy_yaml_err(c, node_line(v), "%s: '%s' %s", key, arr[i], why);
            return false;
        }
    }
    return true;
}

static bool parse_secret_value(struct pctx *c, struct policy_secret *s, unsigned bit,
                               yaml_node_t *k, yaml_node_t *v)
{
    switch (bit) {
    case K_NAME:
    case K_KIND:
        return true; /* read first, in parse_secret */
    case K_IMPORT:
        return parse_import(c, s, v);
    case K_EXPORT:
        return parse_export(c, s, v);
    case K_EXPORT_PUBLIC:
        return get_bool(c, v, "export_public", &s->export_public);
    case K_PUBLIC_NAME:
        return get_checked_string(c, v, "public_name", &s->public_name, policy_valid_file_name,
                                  "must be a plain file name");
    case K_PRIVATE_KEY:
        s->private_key_line = node_line(v);
        return policy_yaml_string(c, v, "private_key", &s->private_key);
    case K_ISSUER:
        s->issuer_line = node_line(v);
        return policy_yaml_string(c, v, "issuer", &s->issuer);
    case K_COMMON_NAME:
        return get_checked_string(c, v, "common_name", &s->common_name, policy_valid_common_name,
                                  "1 to 64 printable characters");
    case K_DNS:
        return get_checked_list(c, v, "dns", s->dns, &s->ndns, policy_valid_dns,
                                "is not a host name");
    case K_IP:
        return get_checked_list(c, v, "ip", s->ip, &s->nip, policy_valid_ip,
                                "is not an IPv4 or IPv6 address");
    case K_USAGE:
        return parse_usage(c, s, v);
    case K_VALIDITY:
        return policy_yaml_uint(c, v, "validity_days", 1, POLICY_DAYS_MAX, &s->validity_days);
    case K_SIZE:
        return policy_yaml_uint(c, v, "size", POLICY_SYM_MIN, POLICY_SYM_MAX, &s->size);
    }
    policy_yaml_err(c, node_line(k), "internal: unhandled key");
    return false;
}

/* name: and kind: (or import:) of a secret, read before its other keys. */
static bool parse_secret_head(struct pctx *c, struct policy_secret *s, yaml_node_t *m)
{
    yaml_node_t *n = map_get(c, m, "name");
    if (n == NULL) {
        policy_yaml_err(c, node_line(m), "secret without name:");
        return false;
    }
    if (!policy_yaml_string(c, n, "name", &s->name))
        return false;
    if (!policy_valid_secret_name(s->name, strlen(s->name))) {
        policy_yaml_err(c, node_line(n), "name: '%s' must be 1 to 64 letters, digits, '_' or '-'",
                        s->name);
        return false;
    }
    c->secret = s->name;
    if (!policy_yaml_mapping(c, m, "secret"))
        return false;
    n = map_get(c, m, "kind");
    yaml_node_t *imp = map_get(c, m, "import");
    if (n != NULL && imp != NULL) {
        policy_yaml_err(c, node_line(n), "kind: and import: exclude each other");
        return false;
    }
    if (n == NULL && imp == NULL) {
        policy_yaml_err(c, node_line(m), "needs kind: (or import:)");
        return false;
    }
    if (n != NULL && !parse_kind(c, n, &s->kind))
        return false;
    if (imp != NULL)
        s->kind = POLICY_KIND_IMPORT;
    return true;
}

/* Every key of a secret, each allowed for its kind. */
static bool parse_secret_keys(struct pctx *c, struct policy_secret *s, yaml_node_t *m)
{
    unsigned allowed = allowed_keys(s->kind);
    for (yaml_node_pair_t *a = m->data.mapping.pairs.start; a < m->data.mapping.pairs.top; a++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, a->value);
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++)
            if (scalar_is(k, secret_keys[i].name))
                bit = secret_keys[i].bit;
        if (bit == 0) {
            policy_yaml_err(c, node_line(k), "unknown key '%.*s'", (int)k->data.scalar.length,
                            (const char *)k->data.scalar.value);
            return false;
        }
        if ((allowed & bit) == 0) {
            policy_yaml_err(c, node_line(k), "key '%.*s' does not apply to kind %s",
                            (int)k->data.scalar.length, (const char *)k->data.scalar.value,
                            policy_kind_name(s->kind));
            return false;
        }
        if (!parse_secret_value(c, s, bit, k, v))
            return false;
    }
    return true;
}

/* The keys a kind requires, and its defaults, once every key is read. */
static bool finish_secret(struct pctx *c, struct policy_secret *s)
{
    switch (s->kind) {
    case POLICY_KIND_X509:
        if (s->issuer == NULL) {
            policy_yaml_err(c, s->line, "an x509 certificate needs issuer: (an x509-ca secret)");
            return false;
        }
        if (s->usage == 0) {
            policy_yaml_err(c, s->line,
                            "an x509 certificate needs usage: [server] and/or [client]");
            return false;
        }
        /* fall through */
    case POLICY_KIND_X509_CA:
        if (s->common_name == NULL) {
            policy_yaml_err(c, s->line, "a certificate needs common_name:");
            return false;
        }
        if (s->validity_days == 0)
            s->validity_days =
                s->kind == POLICY_KIND_X509_CA ? POLICY_CA_DAYS_DEFAULT : POLICY_LEAF_DAYS_DEFAULT;
        if (s->public_name != NULL && !s->export_public) {
            policy_yaml_err(c, s->line, "public_name: needs export_public: true");
            return false;
        }
        break;
    case POLICY_KIND_SYMMETRIC:
        if (s->size == 0)
            s->size = POLICY_SYM_DEFAULT;
        break;
    default:
        break;
    }
    return true;
}

/* Parses one entry of secrets:; NULL on error (reported). */
static struct policy_secret *parse_secret(struct pctx *c, yaml_node_t *m)
{
    struct policy_secret *s = NULL;

    c->secret = NULL;
    if (m->type != YAML_MAPPING_NODE) {
        policy_yaml_err(c, node_line(m), "secret: expected a mapping");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        c->nomem = true;
        return NULL;
    }
    s->line = node_line(m);
    s->pathlen = 0;
    if (parse_secret_head(c, s, m) && parse_secret_keys(c, s, m) && finish_secret(c, s))
        return s;
    policy_secret_free(s);
    return NULL;
}

/* ---- injection files ---- */

static bool parse_file(struct pctx *c, struct policy_file *f, yaml_node_t *m)
{
    yaml_node_t *content = NULL;
    c->secret = NULL;
    if (!policy_yaml_mapping(c, m, "injection file"))
        return false;
    f->line = node_line(m);
    for (yaml_node_pair_t *a = m->data.mapping.pairs.start; a < m->data.mapping.pairs.top; a++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, a->value);
        if (scalar_is(k, "path")) {
            if (!policy_yaml_string(c, v, "path", &f->path))
                return false;
            const char *why = policy_path_problem(f->path);
            if (why != NULL) {
                policy_yaml_err(c, node_line(v), "path '%s' %s", f->path, why);
                return false;
            }
        } else if (scalar_is(k, "content")) {
            content = v;
        } else {
            policy_yaml_err(c, node_line(k),
                            "injection file: unknown key '%.*s' (expected path, content)",
                            (int)k->data.scalar.length, (const char *)k->data.scalar.value);
            return false;
        }
    }
    if (f->path == NULL || content == NULL) {
        policy_yaml_err(c, f->line, "injection file needs path: and content:");
        return false;
    }
    if (!policy_yaml_string(c, content, "content", &f->content))
        return false;
    f->content_len = strlen(f->content);
    int cline = node_line(content);
    if (content->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
        content->data.scalar.style == YAML_FOLDED_SCALAR_STYLE)
        cline++;
    /* References are resolved after all secrets are known (link_files). */
    f->line = cline; /* kept for ref lines */
    f->count_breaks = content->data.scalar.style != YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    return true;
}

/* ---- one document ---- */

static void yaml_problem(struct cd_diag *d, const char *file, const yaml_parser_t *yp)
{
    int line = (int)yp->problem_mark.line + 1;
    policy_diag_add(d, file, line, NULL, "YAML: %s", yp->problem != NULL ? yp->problem : "error");
}

/* Refuses aliases (no shared nodes, no expansion bombs) and streams with more
 * than one document. */
static bool precheck(const char *file, const char *buf, size_t len, struct cd_diag *d)
{
    yaml_parser_t yp;
    yaml_event_t ev;
    bool ok = true;
    int docs = 0;

    if (!yaml_parser_initialize(&yp))
        return false;
    yaml_parser_set_input_string(&yp, (const unsigned char *)buf, len);
    for (;;) {
        if (!yaml_parser_parse(&yp, &ev)) {
            yaml_problem(d, file, &yp);
            ok = false;
            break;
        }
        yaml_event_type_t t = ev.type;
        int line = (int)ev.start_mark.line + 1;
        if (t == YAML_ALIAS_EVENT) {
            policy_diag_add(d, file, line, NULL, "YAML aliases are not accepted");
            ok = false;
        } else if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            policy_diag_add(d, file, line, NULL, "only one YAML document per policy file");
            ok = false;
        }
        yaml_event_delete(&ev);
        if (!ok || t == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&yp);
    return ok;
}

static bool parse_policy_keys(struct pctx *c, yaml_node_t *root, yaml_node_t **secrets,
                              yaml_node_t **files)
{
    struct policy *p = c->p;

    if (root == NULL || !policy_yaml_mapping(c, root, "policy"))
        return false;
    for (yaml_node_pair_t *a = root->data.mapping.pairs.start; a < root->data.mapping.pairs.top;
         a++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, a->value);
        if (scalar_is(k, "name")) {
            p->line = node_line(v);
            if (!policy_yaml_string(c, v, "name", &p->name))
                return false;
            if (!policy_valid_name(p->name)) {
                policy_yaml_err(c, node_line(v), "name: '%s' must be 1 to 64 of a-z, 0-9, '_', '-'",
                                p->name);
                return false;
            }
        } else if (scalar_is(k, "owner")) {
            if (!policy_yaml_string(c, v, "owner", &p->owner))
                return false;
            if (p->owner[0] == '\0' || strlen(p->owner) > 32 || strchr(p->owner, ':') ||
                strchr(p->owner, '/')) {
                policy_yaml_err(c, node_line(v), "owner: not a user name");
                return false;
            }
        } else if (scalar_is(k, "measurements")) {
            if (!policy_yaml_measure(c, v))
                return false;
        } else if (scalar_is(k, "secrets")) {
            *secrets = v;
        } else if (scalar_is(k, "injection_files")) {
            *files = v;
        } else if (scalar_is(k, "predecessor")) {
            if (!policy_yaml_predecessor(c, v))
                return false;
        } else if (scalar_is(k, "access")) {
            if (!policy_yaml_access(c, v))
                return false;
        } else {
            policy_yaml_err(c, node_line(k),
                            "unknown key '%.*s' (expected name, owner, secrets, injection_files, "
                            "measurements, access, predecessor)",
                            (int)k->data.scalar.length, (const char *)k->data.scalar.value);
            return false;
        }
    }
    return true;
}

static bool secret_item(struct pctx *c, yaml_node_t *e, void *arg)
{
    (void)arg;
    struct policy *p = c->p;
    struct policy_secret *s = parse_secret(c, e);

    if (s == NULL)
        return false;
    s->policy = p;
    if (policy_find_secret(p, s->name) != NULL) {
        policy_yaml_err(c, s->line, "declared twice");
        policy_secret_free(s);
        return false;
    }
    p->secrets[p->nsecrets++] = s;
    return true;
}

static bool file_item(struct pctx *c, yaml_node_t *e, void *arg)
{
    (void)arg;
    return parse_file(c, &c->p->files[c->p->nfiles++], e);
}

static cd_err parse_policy_doc(struct pctx *c, yaml_node_t *root, const char *base)
{
    struct policy *p = c->p;
    yaml_node_t *secrets = NULL, *files = NULL;

    if (!parse_policy_keys(c, root, &secrets, &files))
        goto bad;
    if (p->name == NULL) {
        p->name = strdup(base);
        p->line = 1;
        if (p->name == NULL)
            return CD_ERR_NOMEM;
        if (!policy_valid_name(p->name)) {
            policy_yaml_err(c, 1, "no name: and the file name '%s' is not a policy name", base);
            goto bad;
        }
    }
    if (secrets != NULL && !policy_yaml_list(c, secrets, "secrets", "secrets", &p->nsecrets,
                                             POLICY_MAX_SECRETS, secret_item, NULL))
        goto bad;
    c->secret = NULL;
    if (files != NULL && !policy_yaml_list(c, files, "injection_files", "injection files",
                                           &p->nfiles, POLICY_MAX_FILES, file_item, NULL))
        goto bad;
    return CD_OK;
bad:
    return c->nomem ? CD_ERR_NOMEM : CD_ERR_INVALID;
}

cd_err policy_yaml_parse(const char *file, const char *base, const char *buf, size_t len,
                         const struct policy_vars *vars, policy_env_fn env, struct policy **out,
                         struct cd_diag *d)
{
    cd_err err = CD_OK;
    struct policy *p = NULL;
    yaml_parser_t yp;
    yaml_document_t doc;
    bool have_parser = false, have_doc = false;

    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return CD_ERR_NOMEM;
    p->file = strdup(file);
    if (p->file == NULL) {
        err = CD_ERR_NOMEM;
        goto out;
    }
    if (!precheck(p->file, buf, len, d)) {
        err = CD_ERR_INVALID;
        goto out;
    }
    if (!yaml_parser_initialize(&yp)) {
        err = CD_ERR_NOMEM;
        goto out;
    }
    have_parser = true;
    yaml_parser_set_input_string(&yp, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&yp, &doc)) {
        yaml_problem(d, p->file, &yp);
        err = CD_ERR_INVALID;
        goto out;
    }
    have_doc = true;
    struct pctx c = {.file = p->file, .doc = &doc, .vars = vars, .env = env, .diag = d, .p = p};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        policy_diag_add(d, p->file, 1, NULL, "empty policy");
        err = CD_ERR_INVALID;
        goto out;
    }
    err = parse_policy_doc(&c, root, base);
    if (err != CD_OK)
        goto out;
    *out = p;
    p = NULL;
out:
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&yp);
    policy_free(p);
    return err;
}
