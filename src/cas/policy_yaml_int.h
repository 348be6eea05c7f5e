/* policy_yaml_int.h: what the YAML files of the policy module share
 * (policy_yaml.c: a policy document, its secrets and injection files;
 * policy_yaml_session.c: a session's measurements:, access: and
 * predecessor:). Private to them: only they see libyaml. */
#ifndef CONFIDOC_CAS_POLICY_YAML_INT_H
#define CONFIDOC_CAS_POLICY_YAML_INT_H

#include <stdbool.h>

#include <yaml.h>

#include "cas/policy_int.h"

/* The parse of one document. */
struct pctx {
    const char *file;
    yaml_document_t *doc;
    const struct policy_vars *vars;
    policy_env_fn env; /* NULL: vars only */
    struct cd_diag *diag;
    struct policy *p;
    const char *secret; /* name of the secret being parsed, for messages */
    bool nomem;
};

static inline int node_line(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static inline bool scalar_is(const yaml_node_t *n, const char *s)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.length == strlen(s) &&
           memcmp(n->data.scalar.value, s, n->data.scalar.length) == 0;
}

/* A problem at line, in the module's "FILE:LINE: secret NAME: ..." form. */
void policy_yaml_err(struct pctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The scalar n as a new string in *out (${VAR}s substituted); false after a problem. */
bool policy_yaml_string(struct pctx *c, yaml_node_t *n, const char *key, char **out);
/* A decimal in min..max. */
bool policy_yaml_uint(struct pctx *c, yaml_node_t *n, const char *key, unsigned min, unsigned max,
                      unsigned *out);
/* n is a mapping without duplicate keys. */
bool policy_yaml_mapping(struct pctx *c, yaml_node_t *m, const char *what);
/* Calls item(c, entry, arg) for each entry of the list node n, refusing
 * more than max entries (*count: how many item has added). */
bool policy_yaml_list(struct pctx *c, yaml_node_t *n, const char *key, const char *what,
                      const size_t *count, size_t max,
                      bool (*item)(struct pctx *, yaml_node_t *, void *), void *arg);

/* policy_yaml_session.c: the keys of a session (each false after a problem). */
bool policy_yaml_measure(struct pctx *c, yaml_node_t *n);
bool policy_yaml_access(struct pctx *c, yaml_node_t *v);
bool policy_yaml_predecessor(struct pctx *c, yaml_node_t *v);

#endif
