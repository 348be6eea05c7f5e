/* policy.c: loads CAS policy files with libyaml and validates them as a set. */
#include "cas/policy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <yaml.h>

#define VAR_ENV_PREFIX "CONFIDOC_CAS_VAR_"
#define VAR_NAME_MAX 64
#define PATH_REL_MAX 255
#define REF_OPEN "$$CAS::"
#define REF_CLOSE "$$"

/* ---- diagnostics ---- */

void policy_diag_init(struct policy_diag *d)
{
    d->text[0] = '\0';
    d->len = 0;
    d->count = 0;
}

void policy_diag_add(struct policy_diag *d, const char *file, int line, const char *secret,
                     const char *fmt, ...)
{
    char msg[1024];
    char head[512];
    va_list ap;
    int n;

    d->count++;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(head, sizeof(head), "%s:%d: ", file != NULL ? file : "-", line);
    else
        snprintf(head, sizeof(head), "%s: ", file != NULL ? file : "-");
    if (d->len >= sizeof(d->text) - 1)
        return;
    if (secret != NULL)
        n = snprintf(d->text + d->len, sizeof(d->text) - d->len, "%ssecret %s: %s\n", head, secret,
                     msg);
    else
        n = snprintf(d->text + d->len, sizeof(d->text) - d->len, "%s%s\n", head, msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(d->text) - d->len) {
        /* keep whole lines only */
        d->text[d->len] = '\0';
        d->len = sizeof(d->text) - 1;
        return;
    }
    d->len += (size_t)n;
}

/* ---- names ---- */

const char *policy_kind_name(enum policy_kind k)
{
    switch (k) {
    case POLICY_KIND_PRIVATE_KEY:
        return "private-key";
    case POLICY_KIND_X509_CA:
        return "x509-ca";
    case POLICY_KIND_X509:
        return "x509";
    case POLICY_KIND_SYMMETRIC:
        return "symmetric-key";
    case POLICY_KIND_IMPORT:
        return "import";
    }
    return "?";
}

const char *policy_part_name(enum policy_part p)
{
    static const char *const names[] = {
        [POLICY_PART_CRT] = "crt",         [POLICY_PART_CHAIN] = "chain",
        [POLICY_PART_KEY] = "key",         [POLICY_PART_CA] = "ca",
        [POLICY_PART_KEYRING] = "keyring", [POLICY_PART_MARIADB_KEYFILE] = "mariadb_keyfile",
        [POLICY_PART_HEX] = "hex",
    };
    if ((size_t)p >= sizeof(names) / sizeof(names[0]))
        return "?";
    return names[p];
}

static bool part_parse(const char *s, size_t n, enum policy_part *out)
{
    for (int p = POLICY_PART_CRT; p <= POLICY_PART_HEX; p++) {
        const char *name = policy_part_name((enum policy_part)p);
        if (strlen(name) == n && memcmp(name, s, n) == 0) {
            *out = (enum policy_part)p;
            return true;
        }
    }
    return false;
}

static bool valid_policy_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > POLICY_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool secret_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool valid_secret_name(const char *s, size_t n)
{
    if (n == 0 || n > POLICY_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!secret_name_char(s[i]))
            return false;
    return true;
}

static bool valid_dns(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool wild = c == '*' && i == 0 && n > 2 && s[1] == '.';
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || wild))
            return false;
    }
    return true;
}

static bool valid_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static bool valid_common_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool valid_file_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* A relative path of names (as valid_file_name, but a leading dot is fine
 * except "." and ".."), outside the reserved top directories. */
static const char *path_problem(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PATH_REL_MAX)
        return "must be 1 to 255 bytes";
    if (s[0] == '/')
        return "must be relative to the state directory";
    const char *p = s;
    while (*p != '\0') {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return "must not contain empty, '.' or '..' components";
        for (size_t i = 0; i < len; i++) {
            char c = p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.'))
                return "may contain only letters, digits, '-', '_', '.' and '/'";
        }
        if (p == s &&
            ((len == 3 && memcmp(p, "cas", 3) == 0) || (len == 6 && memcmp(p, "public", 6) == 0)))
            return "must not be under cas/ or public/ (reserved)";
        if (slash == NULL)
            break;
        p = slash + 1;
        if (*p == '\0')
            return "must name a file, not a directory";
    }
    return NULL;
}

/* ---- parsing context ---- */

struct pctx {
    const char *file;
    yaml_document_t *doc;
    const struct policy_vars *vars;
    struct policy_diag *diag;
    struct policy *p;
    const char *secret; /* name of the secret being parsed, for messages */
    bool nomem;
};

static int node_line(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static void perr(struct pctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void perr(struct pctx *c, int line, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    policy_diag_add(c->diag, c->file, line, c->secret, "%s", msg);
}

static const char *lookup_var(const struct policy_vars *vars, const char *name)
{
    char env[sizeof(VAR_ENV_PREFIX) + VAR_NAME_MAX];
    if (vars != NULL) {
        for (size_t i = vars->n; i > 0; i--) /* the last --var of a name wins */
            if (strcmp(vars->names[i - 1], name) == 0)
                return vars->values[i - 1];
    }
    snprintf(env, sizeof(env), "%s%s", VAR_ENV_PREFIX, name);
    return getenv(env);
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
            while (j < n && s[j] != '}' && j - (i + 2) <= VAR_NAME_MAX)
                j++;
            if (j >= n || s[j] != '}') {
                perr(c, line, "unterminated or too long ${...}");
                goto fail;
            }
            char name[VAR_NAME_MAX + 1];
            size_t nl = j - (i + 2);
            memcpy(name, s + i + 2, nl);
            name[nl] = '\0';
            bool ok = nl > 0 && !(name[0] >= '0' && name[0] <= '9');
            for (size_t k = 0; k < nl && ok; k++)
                ok = (name[k] >= 'A' && name[k] <= 'Z') || (name[k] >= 'a' && name[k] <= 'z') ||
                     (name[k] >= '0' && name[k] <= '9') || name[k] == '_';
            if (!ok) {
                perr(c, line, "bad variable name in ${...}");
                goto fail;
            }
            const char *val = lookup_var(c->vars, name);
            if (val == NULL) {
                perr(c, line, "unknown variable ${%s} (no --var %s=... nor %s%s)", name, name,
                     VAR_ENV_PREFIX, name);
                goto fail;
            }
            size_t vl = strlen(val);
            if (len + vl + (n - j) + 1 > POLICY_CONTENT_MAX) {
                perr(c, line, "value too long after substitution");
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
static bool get_string(struct pctx *c, yaml_node_t *n, const char *key, char **out)
{
    size_t len = 0;
    if (n->type != YAML_SCALAR_NODE) {
        perr(c, node_line(n), "%s: expected a string", key);
        return false;
    }
    if (memchr(n->data.scalar.value, '\0', n->data.scalar.length) != NULL) {
        perr(c, node_line(n), "%s: NUL byte in string", key);
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

static bool get_uint(struct pctx *c, yaml_node_t *n, const char *key, unsigned min, unsigned max,
                     unsigned *out)
{
    unsigned long v = 0;
    bool ok = is_plain(n) && n->data.scalar.length > 0 && n->data.scalar.length <= 9;
    for (size_t i = 0; ok && i < n->data.scalar.length; i++) {
        unsigned char d = n->data.scalar.value[i];
        ok = d >= '0' && d <= '9';
        v = v * 10 + (unsigned long)(d - '0');
    }
    if (!ok) {
        perr(c, node_line(n), "%s: expected an integer", key);
        return false;
    }
    if (v < min || v > max) {
        perr(c, node_line(n), "%s: must be between %u and %u", key, min, max);
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
    perr(c, node_line(n), "%s: expected true or false", key);
    return false;
}

static bool scalar_is(const yaml_node_t *n, const char *s)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.length == strlen(s) &&
           memcmp(n->data.scalar.value, s, n->data.scalar.length) == 0;
}

/* Checks that a mapping has scalar keys without duplicates; reports and returns false otherwise. */
static bool check_mapping(struct pctx *c, yaml_node_t *m, const char *what)
{
    if (m->type != YAML_MAPPING_NODE) {
        perr(c, node_line(m), "%s: expected a mapping", what);
        return false;
    }
    for (yaml_node_pair_t *a = m->data.mapping.pairs.start; a < m->data.mapping.pairs.top; a++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
        if (k == NULL || k->type != YAML_SCALAR_NODE) {
            perr(c, k != NULL ? node_line(k) : node_line(m), "%s: keys must be strings", what);
            return false;
        }
        for (yaml_node_pair_t *b = m->data.mapping.pairs.start; b < a; b++) {
            yaml_node_t *kb = yaml_document_get_node(c->doc, b->key);
            if (kb != NULL && kb->data.scalar.length == k->data.scalar.length &&
                memcmp(kb->data.scalar.value, k->data.scalar.value, k->data.scalar.length) == 0) {
                perr(c, node_line(k), "duplicate key '%.*s'", (int)k->data.scalar.length,
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

/* A sequence of strings into arr (at most POLICY_MAX_LIST). */
static bool get_string_list(struct pctx *c, yaml_node_t *n, const char *key, char **arr,
                            size_t *count, int *lines)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        perr(c, node_line(n), "%s: expected a list", key);
        return false;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = yaml_document_get_node(c->doc, *it);
        if (e == NULL)
            continue;
        if (*count >= POLICY_MAX_LIST) {
            perr(c, node_line(e), "%s: more than %d entries", key, POLICY_MAX_LIST);
            return false;
        }
        char *s = NULL;
        if (!get_string(c, e, key, &s))
            return false;
        if (lines != NULL)
            lines[*count] = node_line(e);
        arr[(*count)++] = s;
    }
    return true;
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

static void secret_free(struct policy_secret *s)
{
    if (s == NULL)
        return;
    free(s->name);
    free(s->private_key);
    free(s->issuer);
    free(s->common_name);
    for (size_t i = 0; i < s->ndns; i++)
        free(s->dns[i]);
    for (size_t i = 0; i < s->nip; i++)
        free(s->ip[i]);
    for (size_t i = 0; i < s->nexport; i++)
        free(s->export_to[i]);
    free(s->public_name);
    free(s->import_policy);
    free(s->import_secret);
    free(s);
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
    perr(c, node_line(n),
         "kind: expected private-key, x509-ca, x509 or symmetric-key (or import: instead)");
    return false;
}

static bool parse_import(struct pctx *c, struct policy_secret *s, yaml_node_t *n)
{
    if (!check_mapping(c, n, "import"))
        return false;
    for (yaml_node_pair_t *a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top; a++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, a->value);
        if (scalar_is(k, "policy")) {
            if (!get_string(c, v, "import.policy", &s->import_policy))
                return false;
        } else if (scalar_is(k, "secret")) {
            if (!get_string(c, v, "import.secret", &s->import_secret))
                return false;
        } else {
            perr(c, node_line(k), "import: unknown key '%.*s' (expected policy, secret)",
                 (int)k->data.scalar.length, (const char *)k->data.scalar.value);
            return false;
        }
    }
    if (s->import_policy == NULL || s->import_secret == NULL) {
        perr(c, node_line(n), "import: needs both policy: and secret:");
        return false;
    }
    s->import_line = node_line(n);
    return true;
}

static bool parse_export(struct pctx *c, struct policy_secret *s, yaml_node_t *n)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        perr(c, node_line(n), "export: expected a list of '- policy: NAME'");
        return false;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = yaml_document_get_node(c->doc, *it);
        if (e == NULL)
            continue;
        if (!check_mapping(c, e, "export entry"))
            return false;
        if (s->nexport >= POLICY_MAX_LIST) {
            perr(c, node_line(e), "export: more than %d entries", POLICY_MAX_LIST);
            return false;
        }
        char *pol = NULL;
        for (yaml_node_pair_t *a = e->data.mapping.pairs.start; a < e->data.mapping.pairs.top;
             a++) {
            yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
            yaml_node_t *v = yaml_document_get_node(c->doc, a->value);
            if (!scalar_is(k, "policy")) {
                perr(c, node_line(k), "export: unknown key '%.*s' (expected policy)",
                     (int)k->data.scalar.length, (const char *)k->data.scalar.value);
                free(pol);
                return false;
            }
            if (!get_string(c, v, "export.policy", &pol))
                return false;
        }
        if (pol == NULL) {
            perr(c, node_line(e), "export: entry needs policy:");
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
    bool ok = get_string_list(c, n, "usage", items, &count, NULL);
    for (size_t i = 0; i < count; i++) {
        if (ok && strcmp(items[i], "server") == 0)
            s->usage |= POLICY_USAGE_SERVER;
        else if (ok && strcmp(items[i], "client") == 0)
            s->usage |= POLICY_USAGE_CLIENT;
        else if (ok) {
            perr(c, node_line(n), "usage: expected server and/or client");
            ok = false;
        }
        free(items[i]);
    }
    if (ok && s->usage == 0) {
        perr(c, node_line(n), "usage: expected server and/or client");
        ok = false;
    }
    return ok;
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
        if (!get_string(c, v, "public_name", &s->public_name))
            return false;
        if (!valid_file_name(s->public_name)) {
            perr(c, node_line(v), "public_name: must be a plain file name");
            return false;
        }
        return true;
    case K_PRIVATE_KEY:
        s->private_key_line = node_line(v);
        return get_string(c, v, "private_key", &s->private_key);
    case K_ISSUER:
        s->issuer_line = node_line(v);
        return get_string(c, v, "issuer", &s->issuer);
    case K_COMMON_NAME:
        if (!get_string(c, v, "common_name", &s->common_name))
            return false;
        if (!valid_common_name(s->common_name)) {
            perr(c, node_line(v), "common_name: 1 to 64 printable characters");
            return false;
        }
        return true;
    case K_DNS:
        if (!get_string_list(c, v, "dns", s->dns, &s->ndns, NULL))
            return false;
        for (size_t i = 0; i < s->ndns; i++) {
            if (!valid_dns(s->dns[i])) {
                perr(c, node_line(v), "dns: '%s' is not a host name", s->dns[i]);
                return false;
            }
        }
        return true;
    case K_IP:
        if (!get_string_list(c, v, "ip", s->ip, &s->nip, NULL))
            return false;
        for (size_t i = 0; i < s->nip; i++) {
            if (!valid_ip(s->ip[i])) {
                perr(c, node_line(v), "ip: '%s' is not an IPv4 or IPv6 address", s->ip[i]);
                return false;
            }
        }
        return true;
    case K_USAGE:
        return parse_usage(c, s, v);
    case K_VALIDITY:
        return get_uint(c, v, "validity_days", 1, POLICY_DAYS_MAX, &s->validity_days);
    case K_SIZE:
        return get_uint(c, v, "size", POLICY_SYM_MIN, POLICY_SYM_MAX, &s->size);
    }
    perr(c, node_line(k), "internal: unhandled key");
    return false;
}

/* Parses one entry of secrets:; NULL on error (reported). */
static struct policy_secret *parse_secret(struct pctx *c, yaml_node_t *m)
{
    struct policy_secret *s = NULL;
    yaml_node_t *n = NULL;
    bool ok = false;

    c->secret = NULL;
    if (m->type != YAML_MAPPING_NODE) {
        perr(c, node_line(m), "secret: expected a mapping");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        c->nomem = true;
        return NULL;
    }
    s->line = node_line(m);
    s->pathlen = 0;
    n = map_get(c, m, "name");
    if (n == NULL) {
        perr(c, node_line(m), "secret without name:");
        goto out;
    }
    if (!get_string(c, n, "name", &s->name))
        goto out;
    if (!valid_secret_name(s->name, strlen(s->name))) {
        perr(c, node_line(n), "name: '%s' must be 1 to 64 letters, digits, '_' or '-'", s->name);
        goto out;
    }
    c->secret = s->name;
    if (!check_mapping(c, m, "secret"))
        goto out;
    n = map_get(c, m, "kind");
    yaml_node_t *imp = map_get(c, m, "import");
    if (n != NULL && imp != NULL) {
        perr(c, node_line(n), "kind: and import: exclude each other");
        goto out;
    }
    if (n == NULL && imp == NULL) {
        perr(c, node_line(m), "needs kind: (or import:)");
        goto out;
    }
    if (n != NULL && !parse_kind(c, n, &s->kind))
        goto out;
    if (imp != NULL)
        s->kind = POLICY_KIND_IMPORT;

    unsigned allowed = allowed_keys(s->kind);
    for (yaml_node_pair_t *a = m->data.mapping.pairs.start; a < m->data.mapping.pairs.top; a++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, a->value);
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++)
            if (scalar_is(k, secret_keys[i].name))
                bit = secret_keys[i].bit;
        if (bit == 0) {
            perr(c, node_line(k), "unknown key '%.*s'", (int)k->data.scalar.length,
                 (const char *)k->data.scalar.value);
            goto out;
        }
        if ((allowed & bit) == 0) {
            perr(c, node_line(k), "key '%.*s' does not apply to kind %s",
                 (int)k->data.scalar.length, (const char *)k->data.scalar.value,
                 policy_kind_name(s->kind));
            goto out;
        }
        if (!parse_secret_value(c, s, bit, k, v))
            goto out;
    }

    switch (s->kind) {
    case POLICY_KIND_X509:
        if (s->issuer == NULL) {
            perr(c, s->line, "an x509 certificate needs issuer: (an x509-ca secret)");
            goto out;
        }
        if (s->usage == 0) {
            perr(c, s->line, "an x509 certificate needs usage: [server] and/or [client]");
            goto out;
        }
        /* fall through */
    case POLICY_KIND_X509_CA:
        if (s->common_name == NULL) {
            perr(c, s->line, "a certificate needs common_name:");
            goto out;
        }
        if (s->validity_days == 0)
            s->validity_days =
                s->kind == POLICY_KIND_X509_CA ? POLICY_CA_DAYS_DEFAULT : POLICY_LEAF_DAYS_DEFAULT;
        if (s->public_name != NULL && !s->export_public) {
            perr(c, s->line, "public_name: needs export_public: true");
            goto out;
        }
        break;
    case POLICY_KIND_SYMMETRIC:
        if (s->size == 0)
            s->size = POLICY_SYM_DEFAULT;
        break;
    default:
        break;
    }
    ok = true;
out:
    if (!ok) {
        secret_free(s);
        s = NULL;
    }
    return s;
}

/* ---- injection files ---- */

static bool parse_refs(struct pctx *c, struct policy_file *f, int content_line)
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
        int line = content_line;
        for (size_t i = 0; i < start; i++)
            if (s[i] == '\n')
                line++;
        const char *name = hit + olen;
        const char *close = memmem(name, n - (start + olen), REF_CLOSE, strlen(REF_CLOSE));
        const char *dot = close != NULL ? memchr(name, '.', (size_t)(close - name)) : NULL;
        c->secret = NULL;
        if (close == NULL || dot == NULL) {
            perr(c, line, "injection file %s: malformed reference (expected $$CAS::NAME.part$$)",
                 f->path);
            return false;
        }
        size_t nl = (size_t)(dot - name);
        char sname[POLICY_NAME_MAX + 1];
        if (!valid_secret_name(name, nl)) {
            perr(c, line, "injection file %s: malformed secret name in reference", f->path);
            return false;
        }
        memcpy(sname, name, nl);
        sname[nl] = '\0';
        c->secret = sname;
        if (f->nrefs >= POLICY_MAX_REFS) {
            perr(c, line, "injection file %s: more than %d references", f->path, POLICY_MAX_REFS);
            c->secret = NULL;
            return false;
        }
        struct policy_ref *r = &f->refs[f->nrefs];
        if (!part_parse(dot + 1, (size_t)(close - (dot + 1)), &r->part)) {
            perr(c, line,
                 "injection file %s: unknown part '%.*s' (crt, chain, key, ca, keyring, "
                 "mariadb_keyfile, hex)",
                 f->path, (int)(close - (dot + 1)) > 32 ? 32 : (int)(close - (dot + 1)), dot + 1);
            c->secret = NULL;
            return false;
        }
        r->secret = policy_find_secret(c->p, sname);
        if (r->secret == NULL) {
            perr(c, line, "referenced by injection file %s but not declared in policy %s", f->path,
                 c->p->name);
            c->secret = NULL;
            return false;
        }
        c->secret = NULL;
        r->start = start;
        r->end = (size_t)(close - s) + strlen(REF_CLOSE);
        f->nrefs++;
        pos = r->end;
    }
    return true;
}

static bool parse_file(struct pctx *c, struct policy_file *f, yaml_node_t *m)
{
    yaml_node_t *content = NULL;
    c->secret = NULL;
    if (!check_mapping(c, m, "injection file"))
        return false;
    f->line = node_line(m);
    for (yaml_node_pair_t *a = m->data.mapping.pairs.start; a < m->data.mapping.pairs.top; a++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, a->value);
        if (scalar_is(k, "path")) {
            if (!get_string(c, v, "path", &f->path))
                return false;
            const char *why = path_problem(f->path);
            if (why != NULL) {
                perr(c, node_line(v), "path '%s' %s", f->path, why);
                return false;
            }
        } else if (scalar_is(k, "content")) {
            content = v;
        } else {
            perr(c, node_line(k), "injection file: unknown key '%.*s' (expected path, content)",
                 (int)k->data.scalar.length, (const char *)k->data.scalar.value);
            return false;
        }
    }
    if (f->path == NULL || content == NULL) {
        perr(c, f->line, "injection file needs path: and content:");
        return false;
    }
    if (!get_string(c, content, "content", &f->content))
        return false;
    f->content_len = strlen(f->content);
    int cline = node_line(content);
    if (content->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
        content->data.scalar.style == YAML_FOLDED_SCALAR_STYLE)
        cline++;
    /* References are resolved after all secrets are known (link_files). */
    f->line = cline; /* kept for ref lines */
    return true;
}

/* ---- one file ---- */

static void policy_free(struct policy *p)
{
    if (p == NULL)
        return;
    free(p->file);
    free(p->name);
    free(p->owner);
    for (size_t i = 0; i < p->nsecrets; i++)
        secret_free(p->secrets[i]);
    for (size_t i = 0; i < p->nfiles; i++) {
        free(p->files[i].path);
        free(p->files[i].content);
    }
    free(p);
}

static cd_err read_bounded(const char *path, char **out, size_t *outlen, struct policy_diag *d)
{
    cd_err err = CD_ERR_IO;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    char *buf = NULL;
    size_t len = 0;
    struct stat st;

    if (fd < 0) {
        policy_diag_add(d, path, 0, NULL, "cannot open: %s", strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        policy_diag_add(d, path, 0, NULL, "not a regular file");
        goto out;
    }
    if (st.st_size > (off_t)POLICY_FILE_MAX) {
        policy_diag_add(d, path, 0, NULL, "larger than %u bytes", POLICY_FILE_MAX);
        err = CD_ERR_INVALID;
        goto out;
    }
    buf = malloc(POLICY_FILE_MAX + 1);
    if (buf == NULL) {
        err = CD_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, POLICY_FILE_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            policy_diag_add(d, path, 0, NULL, "cannot read: %s", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > POLICY_FILE_MAX) {
            policy_diag_add(d, path, 0, NULL, "larger than %u bytes", POLICY_FILE_MAX);
            err = CD_ERR_INVALID;
            goto out;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    buf = NULL;
    err = CD_OK;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return err;
}

static void yaml_problem(struct policy_diag *d, const char *file, const yaml_parser_t *yp)
{
    int line = (int)yp->problem_mark.line + 1;
    policy_diag_add(d, file, line, NULL, "YAML: %s", yp->problem != NULL ? yp->problem : "error");
}

/* Refuses aliases (no shared nodes, no expansion bombs) and streams with more
 * than one document. */
static bool precheck(const char *file, const char *buf, size_t len, struct policy_diag *d)
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

static cd_err parse_policy_doc(struct pctx *c, yaml_node_t *root, const char *base)
{
    struct policy *p = c->p;
    yaml_node_t *secrets = NULL, *files = NULL;

    if (root == NULL || !check_mapping(c, root, "policy"))
        goto bad;
    for (yaml_node_pair_t *a = root->data.mapping.pairs.start; a < root->data.mapping.pairs.top;
         a++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, a->value);
        if (scalar_is(k, "name")) {
            p->line = node_line(v);
            if (!get_string(c, v, "name", &p->name))
                goto bad;
            if (!valid_policy_name(p->name)) {
                perr(c, node_line(v), "name: '%s' must be 1 to 64 of a-z, 0-9, '_', '-'", p->name);
                goto bad;
            }
        } else if (scalar_is(k, "owner")) {
            if (!get_string(c, v, "owner", &p->owner))
                goto bad;
            if (p->owner[0] == '\0' || strlen(p->owner) > 32 || strchr(p->owner, ':') ||
                strchr(p->owner, '/')) {
                perr(c, node_line(v), "owner: not a user name");
                goto bad;
            }
        } else if (scalar_is(k, "secrets")) {
            secrets = v;
        } else if (scalar_is(k, "injection_files")) {
            files = v;
        } else {
            perr(c, node_line(k),
                 "unknown key '%.*s' (expected name, owner, secrets, injection_files)",
                 (int)k->data.scalar.length, (const char *)k->data.scalar.value);
            goto bad;
        }
    }
    if (p->name == NULL) {
        p->name = strdup(base);
        p->line = 1;
        if (p->name == NULL)
            return CD_ERR_NOMEM;
        if (!valid_policy_name(p->name)) {
            perr(c, 1, "no name: and the file name '%s' is not a policy name", base);
            goto bad;
        }
    }
    if (secrets != NULL) {
        if (secrets->type != YAML_SEQUENCE_NODE) {
            perr(c, node_line(secrets), "secrets: expected a list");
            goto bad;
        }
        for (yaml_node_item_t *it = secrets->data.sequence.items.start;
             it < secrets->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(c->doc, *it);
            if (e == NULL)
                continue;
            if (p->nsecrets >= POLICY_MAX_SECRETS) {
                c->secret = NULL;
                perr(c, node_line(e), "more than %d secrets", POLICY_MAX_SECRETS);
                goto bad;
            }
            struct policy_secret *s = parse_secret(c, e);
            if (s == NULL)
                goto bad;
            s->policy = p;
            if (policy_find_secret(p, s->name) != NULL) {
                perr(c, s->line, "declared twice");
                secret_free(s);
                goto bad;
            }
            p->secrets[p->nsecrets++] = s;
        }
    }
    c->secret = NULL;
    if (files != NULL) {
        if (files->type != YAML_SEQUENCE_NODE) {
            perr(c, node_line(files), "injection_files: expected a list");
            goto bad;
        }
        for (yaml_node_item_t *it = files->data.sequence.items.start;
             it < files->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(c->doc, *it);
            if (e == NULL)
                continue;
            if (p->nfiles >= POLICY_MAX_FILES) {
                perr(c, node_line(e), "more than %d injection files", POLICY_MAX_FILES);
                goto bad;
            }
            struct policy_file *f = &p->files[p->nfiles++];
            if (!parse_file(c, f, e))
                goto bad;
        }
    }
    return CD_OK;
bad:
    return c->nomem ? CD_ERR_NOMEM : CD_ERR_INVALID;
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

static cd_err load_one(const char *dir, const char *fname, const struct policy_vars *vars,
                       struct policy **out, struct policy_diag *d)
{
    cd_err err = CD_OK;
    char *buf = NULL;
    size_t len = 0;
    struct policy *p = NULL;
    yaml_parser_t yp;
    yaml_document_t doc;
    bool have_parser = false, have_doc = false;
    char base[NAME_MAX + 1];

    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return CD_ERR_NOMEM;
    size_t flen = strlen(dir) + strlen(fname) + 2;
    p->file = malloc(flen);
    if (p->file == NULL) {
        err = CD_ERR_NOMEM;
        goto out;
    }
    snprintf(p->file, flen, "%s/%s", dir, fname);
    snprintf(base, sizeof(base), "%s", fname);
    char *dot = strrchr(base, '.');
    if (dot != NULL)
        *dot = '\0';

    err = read_bounded(p->file, &buf, &len, d);
    if (err != CD_OK)
        goto out;
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
    struct pctx c = {.file = p->file, .doc = &doc, .vars = vars, .diag = d, .p = p};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        policy_diag_add(d, p->file, 1, NULL, "empty policy");
        err = CD_ERR_INVALID;
        goto out;
    }
    err = parse_policy_doc(&c, root, base);
    if (err != CD_OK)
        goto out;
    err = add_implicit_keys(p);
    if (err != CD_OK)
        goto out;
    *out = p;
    p = NULL;
out:
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&yp);
    free(buf);
    policy_free(p);
    return err;
}

/* ---- the set ---- */

struct policy *policy_set_find(const struct policy_set *set, const char *name)
{
    for (size_t i = 0; i < set->npolicies; i++)
        if (strcmp(set->policies[i]->name, name) == 0)
            return set->policies[i];
    return NULL;
}

struct policy_secret *policy_find_secret(const struct policy *p, const char *name)
{
    for (size_t i = 0; i < p->nsecrets; i++)
        if (strcmp(p->secrets[i]->name, name) == 0)
            return p->secrets[i];
    return NULL;
}

const struct policy_secret *policy_secret_origin(const struct policy_secret *s)
{
    size_t guard = 0;
    while (s->kind == POLICY_KIND_IMPORT && s->import_ref != NULL &&
           guard++ < POLICY_MAX_POLICIES * 2 * POLICY_MAX_SECRETS)
        s = s->import_ref;
    return s;
}

void policy_set_free(struct policy_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->npolicies; i++)
        policy_free(set->policies[i]);
    free(set);
}

static void serr(struct policy_diag *d, const struct policy_secret *s, int line, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));
static void serr(struct policy_diag *d, const struct policy_secret *s, int line, const char *fmt,
                 ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    policy_diag_add(d, s->policy->file, line > 0 ? line : s->line, s->name, "%s", msg);
}

static bool exports_to(const struct policy_secret *s, const char *policy)
{
    for (size_t i = 0; i < s->nexport; i++)
        if (strcmp(s->export_to[i], policy) == 0)
            return true;
    return false;
}

/* Resolves names to pointers (imports, private_key, issuer, export targets). */
static void link_names(struct policy_set *set, struct policy_diag *d)
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
            if (s->private_key != NULL) {
                s->key_ref = policy_find_secret(p, s->private_key);
                if (s->key_ref == NULL || s->key_ref->implicit) {
                    s->key_ref = NULL;
                    serr(d, s, s->private_key_line, "private_key '%s' is not declared in policy %s",
                         s->private_key, p->name);
                }
            }
            if (s->issuer != NULL) {
                s->issuer_ref = policy_find_secret(p, s->issuer);
                if (s->issuer_ref == NULL || s->issuer_ref->implicit) {
                    s->issuer_ref = NULL;
                    serr(d, s, s->issuer_line, "issuer '%s' is not declared in policy %s",
                         s->issuer, p->name);
                }
            }
        }
    }
}

enum { WHITE = 0, GREY, BLACK };

struct walk {
    struct policy_set *set;
    struct policy_diag *d;
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

static cd_err order_secrets(struct policy_set *set, struct policy_diag *d, bool *cycle)
{
    struct walk w = {.set = set, .d = d};
    size_t n = 0;
    for (size_t pi = 0; pi < set->npolicies; pi++)
        n += set->policies[pi]->nsecrets;
    w.all = calloc(n + 1, sizeof(*w.all));
    w.color = calloc(n + 1, 1);
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
static void check_kinds(struct policy_set *set, struct policy_diag *d)
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

static cd_err link_files(struct policy_set *set, struct policy_diag *d)
{
    for (size_t pi = 0; pi < set->npolicies; pi++) {
        struct policy *p = set->policies[pi];
        for (size_t fi = 0; fi < p->nfiles; fi++) {
            struct policy_file *f = &p->files[fi];
            struct pctx c = {.file = p->file, .diag = d, .p = p};
            if (!parse_refs(&c, f, f->line))
                continue;
            for (size_t r = 0; r < f->nrefs; r++) {
                const char *why = NULL;
                if (!part_fits(f->refs[r].secret, f->refs[r].part, &why)) {
                    int line = f->line;
                    for (size_t i = 0; i < f->refs[r].start; i++)
                        if (f->content[i] == '\n')
                            line++;
                    policy_diag_add(d, p->file, line, f->refs[r].secret->name,
                                    "injection file %s: part '%s' %s", f->path,
                                    policy_part_name(f->refs[r].part), why);
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

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

cd_err policy_set_load(const char *dir, const struct policy_vars *vars, struct policy_set **out,
                       struct policy_diag *diag)
{
    cd_err err = CD_OK;
    struct policy_set *set = NULL;
    DIR *dh = NULL;
    char *names[POLICY_MAX_POLICIES + 1];
    size_t nnames = 0;
    bool invalid = false;

    if (dir == NULL || out == NULL || diag == NULL)
        return CD_ERR_INVALID;
    const unsigned before = diag->count;
    set = calloc(1, sizeof(*set));
    if (set == NULL)
        return CD_ERR_NOMEM;
    dh = opendir(dir);
    if (dh == NULL) {
        policy_diag_add(diag, dir, 0, NULL, "cannot open policy directory: %s", strerror(errno));
        err = CD_ERR_IO;
        goto out;
    }
    for (struct dirent *de; (de = readdir(dh)) != NULL;) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n < 6 || strcmp(de->d_name + n - 5, ".yaml") != 0)
            continue;
        if (nnames >= POLICY_MAX_POLICIES) {
            policy_diag_add(diag, dir, 0, NULL, "more than %d policy files", POLICY_MAX_POLICIES);
            err = CD_ERR_INVALID;
            goto out;
        }
        names[nnames] = strdup(de->d_name);
        if (names[nnames] == NULL) {
            err = CD_ERR_NOMEM;
            goto out;
        }
        nnames++;
    }
    if (nnames == 0) {
        policy_diag_add(diag, dir, 0, NULL, "no *.yaml policy file");
        err = CD_ERR_INVALID;
        goto out;
    }
    qsort(names, nnames, sizeof(names[0]), cmp_names);
    for (size_t i = 0; i < nnames; i++) {
        struct policy *p = NULL;
        err = load_one(dir, names[i], vars, &p, diag);
        if (err == CD_ERR_INVALID) {
            invalid = true;
            continue;
        }
        if (err != CD_OK)
            goto out;
        if (policy_set_find(set, p->name) != NULL) {
            policy_diag_add(diag, p->file, p->line, NULL, "policy name '%s' is used twice",
                            p->name);
            invalid = true;
            policy_free(p);
            continue;
        }
        set->policies[set->npolicies++] = p;
    }
    err = CD_OK;
    if (invalid) {
        err = CD_ERR_INVALID;
        goto out;
    }
    link_names(set, diag);
    bool cycle = false;
    err = order_secrets(set, diag, &cycle);
    if (err != CD_OK)
        goto out;
    if (diag->count > before || cycle) {
        err = CD_ERR_INVALID;
        goto out;
    }
    check_kinds(set, diag);
    compute_pathlen(set);
    err = link_files(set, diag);
    if (err != CD_OK)
        goto out;
    if (diag->count > before) {
        err = CD_ERR_INVALID;
        goto out;
    }
    *out = set;
    set = NULL;
out:
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    if (dh != NULL)
        closedir(dh);
    policy_set_free(set);
    return err;
}
