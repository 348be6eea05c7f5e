/* policy_yaml_session.c: the keys a policy has as a session of the CAS
 * service: measurements: (what `confidoc-cas run` must report), access:
 * (who may read and update it) and predecessor: (the version it replaces). */
#include "cas/policy_yaml_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/num.h"

/* ---- measurements: (what `confidoc-cas run` must report) ---- */

#define MEASURE_PATH_MAX 4095 /* bytes of a measured config file's or the mount's path */

/* NULL: an absolute path of printable bytes without empty, "." or ".."
 * components (a trailing '/' only for dir). */
static const char *measure_path_problem(const char *s, bool dir)
{
    size_t n = strlen(s);
    if (n < 2 || n > MEASURE_PATH_MAX || s[0] != '/')
        return "must be an absolute path of 2 to 4095 bytes";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return "must not contain control characters";
    for (const char *p = s + 1;;) {
        size_t len = strcspn(p, "/");
        if (len == 0 && p[0] == '\0' && dir)
            return NULL;
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return "must not contain empty, '.' or '..' components";
        if (p[len] == '\0')
            return NULL;
        p += len + 1;
    }
}

/* A SHA-256 as 64 lowercase hex digits into out. */
static bool get_sha256(struct pctx *c, yaml_node_t *n, const char *key, char out[POLICY_HASH_HEX])
{
    bool ok = n->type == YAML_SCALAR_NODE && n->data.scalar.length == POLICY_HASH_HEX - 1;
    for (size_t i = 0; ok && i < POLICY_HASH_HEX - 1; i++) {
        unsigned char ch = n->data.scalar.value[i];
        ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
    }
    if (!ok) {
        policy_yaml_err(c, node_line(n), "%s: expected a SHA-256 as 64 lowercase hex digits", key);
        return false;
    }
    memcpy(out, n->data.scalar.value, POLICY_HASH_HEX - 1);
    out[POLICY_HASH_HEX - 1] = '\0';
    return true;
}

static bool measure_exe_item(struct pctx *c, yaml_node_t *e, void *arg)
{
    struct policy_measure *m = arg;
    return get_sha256(c, e, "measurements.executable", m->executable[m->nexecutable++]);
}

static bool measure_config_item(struct pctx *c, yaml_node_t *e, void *arg)
{
    struct policy_measure *m = arg;
    struct policy_measured_file *f = &m->config[m->nconfig];
    bool have_hash = false;

    if (!policy_yaml_mapping(c, e, "measurements.config entry"))
        return false;
    f->line = node_line(e);
    m->nconfig++; /* owns f->path from here on (policy_free) */
    for (yaml_node_pair_t *a = e->data.mapping.pairs.start; a < e->data.mapping.pairs.top; a++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, a->value);
        if (scalar_is(k, "path")) {
            if (!policy_yaml_string(c, v, "measurements.config.path", &f->path))
                return false;
            const char *why = measure_path_problem(f->path, false);
            if (why != NULL) {
                policy_yaml_err(c, node_line(v), "measurements.config.path '%.200s' %s", f->path,
                                why);
                return false;
            }
        } else if (scalar_is(k, "sha256")) {
            if (!get_sha256(c, v, "measurements.config.sha256", f->sha256))
                return false;
            have_hash = true;
        } else {
            policy_yaml_err(c, node_line(k),
                            "measurements.config: unknown key '%.*s' (expected path, sha256)",
                            (int)k->data.scalar.length, (const char *)k->data.scalar.value);
            return false;
        }
    }
    if (f->path == NULL || !have_hash) {
        policy_yaml_err(c, f->line, "measurements.config entry needs path: and sha256:");
        return false;
    }
    for (size_t i = 0; i + 1 < m->nconfig; i++)
        if (strcmp(m->config[i].path, f->path) == 0) {
            policy_yaml_err(c, f->line, "measurements.config: '%s' listed twice", f->path);
            return false;
        }
    return true;
}

/* A user name or a decimal uid (below 2^32 - 1). */
static bool measure_user_ok(const char *s)
{
    size_t n = strlen(s);
    uint64_t uid = 0;
    if (n == 0 || n > 32)
        return false;
    if (s[0] >= '0' && s[0] <= '9')
        return num_parse(s, n, 4294967294u, &uid) == CD_OK;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.') ||
            (i == 0 && s[i] == '-'))
            return false;
    return true;
}

bool policy_yaml_measure(struct pctx *c, yaml_node_t *n)
{
    struct policy_measure *m = &c->p->measure;

    if (!policy_yaml_mapping(c, n, "measurements"))
        return false;
    m->present = true;
    m->line = node_line(n);
    for (yaml_node_pair_t *a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top; a++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, a->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, a->value);
        if (scalar_is(k, "executable")) {
            if (v->type == YAML_SCALAR_NODE) {
                if (!get_sha256(c, v, "measurements.executable", m->executable[0]))
                    return false;
                m->nexecutable = 1;
            } else if (!policy_yaml_list(c, v, "measurements.executable", NULL, &m->nexecutable,
                                         POLICY_MAX_LIST, measure_exe_item, m)) {
                return false;
            }
        } else if (scalar_is(k, "user")) {
            if (!policy_yaml_string(c, v, "measurements.user", &m->user))
                return false;
            if (!measure_user_ok(m->user)) {
                policy_yaml_err(c, node_line(v), "measurements.user: not a user name or uid");
                return false;
            }
        } else if (scalar_is(k, "config")) {
            if (!policy_yaml_list(c, v, "measurements.config", NULL, &m->nconfig,
                                  POLICY_MAX_MEASURED, measure_config_item, m))
                return false;
        } else if (scalar_is(k, "mount")) {
            if (!policy_yaml_string(c, v, "measurements.mount", &m->mount))
                return false;
            const char *why = measure_path_problem(m->mount, true);
            if (why != NULL) {
                policy_yaml_err(c, node_line(v), "measurements.mount '%.200s' %s", m->mount, why);
                return false;
            }
        } else {
            policy_yaml_err(
                c, node_line(k),
                "measurements: unknown key '%.*s' (expected executable, user, config, mount)",
                (int)k->data.scalar.length, (const char *)k->data.scalar.value);
            return false;
        }
    }
    if (m->nexecutable == 0 || m->mount == NULL) {
        policy_yaml_err(c, m->line, "measurements: needs executable: and mount:");
        return false;
    }
    return true;
}

/* ---- a session's predecessor: and access: (the CAS service) ---- */

/* A SHA-256 in lowercase hex (a session or client-key hash) into out. */
struct hash_list {
    const char *key;
    char (*arr)[POLICY_HASH_HEX];
    size_t *count;
};

static bool hash_item(struct pctx *c, yaml_node_t *e, void *arg)
{
    struct hash_list *l = arg;
    char h[POLICY_HASH_HEX];

    if (!get_sha256(c, e, l->key, h))
        return false;
    for (size_t i = 0; i < *l->count; i++)
        if (strcmp(l->arr[i], h) == 0) {
            policy_yaml_err(c, node_line(e), "%s: key hash listed twice", l->key);
            return false;
        }
    memcpy(l->arr[(*l->count)++], h, sizeof(h));
    return true;
}

bool policy_yaml_access(struct pctx *c, yaml_node_t *v)
{
    struct policy_access *a = &c->p->access;
    struct hash_list read = {"access.read", a->read, &a->nread};
    struct hash_list update = {"access.update", a->update, &a->nupdate};
    int quorum_line = 0;

    a->line = node_line(v);
    if (!policy_yaml_mapping(c, v, "access"))
        return false;
    for (yaml_node_pair_t *i = v->data.mapping.pairs.start; i < v->data.mapping.pairs.top; i++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, i->key);
        yaml_node_t *e = yaml_document_get_node(c->doc, i->value);
        bool ok;
        if (scalar_is(k, "read")) {
            ok = policy_yaml_list(c, e, read.key, NULL, &a->nread, POLICY_MAX_ACCESS, hash_item,
                                  &read);
        } else if (scalar_is(k, "update")) {
            ok = policy_yaml_list(c, e, update.key, NULL, &a->nupdate, POLICY_MAX_ACCESS, hash_item,
                                  &update);
        } else if (scalar_is(k, "update_quorum")) {
            quorum_line = node_line(e);
            ok = policy_yaml_uint(c, e, "access.update_quorum", 1, POLICY_MAX_ACCESS,
                                  &a->update_quorum);
        } else {
            policy_yaml_err(c, node_line(k),
                            "access: unknown key '%.*s' (expected read, update, update_quorum)",
                            (int)k->data.scalar.length, (const char *)k->data.scalar.value);
            ok = false;
        }
        if (!ok)
            return false;
    }
    if (a->update_quorum > 0 && a->update_quorum > a->nupdate) {
        policy_yaml_err(c, quorum_line, "access.update_quorum: %u but only %zu update keys",
                        a->update_quorum, a->nupdate);
        return false;
    }
    return true;
}

bool policy_yaml_predecessor(struct pctx *c, yaml_node_t *v)
{
    char h[POLICY_HASH_HEX];

    if (!get_sha256(c, v, "predecessor", h))
        return false;
    c->p->predecessor = strdup(h);
    if (c->p->predecessor == NULL) {
        c->nomem = true;
        return false;
    }
    return true;
}

/* The top-level keys; secrets: and injection_files: are returned for later. */
