/* policy_int.h: what the files of the policy module share, and nothing else sees.
 *
 * The module is four files around one data model (policy.h):
 *   policy.c       diagnostics, names, the checks of names and paths, look-ups,
 *                  freeing, and policy_parse_buffer (pure);
 *   policy_yaml.c  one policy document to a struct policy (the only file that
 *                  includes yaml.h; pure: the caller supplies the bytes and the
 *                  environment look-up);
 *   policy_link.c  a set of parsed policies to a linked set: imports/exports,
 *                  private_key/issuer references, cycles, dependency order,
 *                  injection-file references (pure);
 *   policy_load.c  the directory, the files and the environment (the only I/O). */
#ifndef CONFIDOC_CAS_POLICY_INT_H
#define CONFIDOC_CAS_POLICY_INT_H

#include <stdarg.h>

#include "cas/policy.h"

#define POLICY_VAR_ENV_PREFIX "CONFIDOC_CAS_VAR_" /* ${NAME} falls back to this + NAME */
#define POLICY_VAR_NAME_MAX 64                    /* bytes of NAME in ${NAME} */
#define POLICY_PATH_REL_MAX 255                   /* bytes of an injection file's path */

/* A ${NAME} value from outside the policy (policy_load: the environment), or
 * NULL when unknown. NULL as the function itself: only struct policy_vars. */
typedef const char *(*policy_env_fn)(const char *name);

void policy_diag_vadd(struct cd_diag *d, const char *file, int line, const char *secret,
                      const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

/* Name and path rules (policy.c). */
bool policy_valid_name(const char *s);                  /* a policy name */
bool policy_valid_secret_name(const char *s, size_t n); /* a secret name, s[0..n) */
bool policy_valid_dns(const char *s);                   /* a host name, "*." allowed first */
bool policy_valid_ip(const char *s);                    /* IPv4 or IPv6 text */
bool policy_valid_common_name(const char *s);           /* 1..64 printable bytes */
bool policy_valid_file_name(const char *s);             /* a plain file name */
const char *policy_path_problem(const char *s);         /* NULL: a valid relative path */
bool policy_part_parse(const char *s, size_t n, enum policy_part *out); /* "crt", ... */

/* Frees a secret, or a policy with everything it owns; NULL is a no-op. */
void policy_secret_free(struct policy_secret *s);
void policy_free(struct policy *p);

/* Parses the policy file named file (for messages; base is the policy name
 * when the document has none) from buf[0..len): the document's own rules only
 * (references and implicit keys come with policy_set_link). ${NAME} comes
 * from vars (the last pair of a name wins), then env (may be NULL). CD_OK: *out
 * owns the policy. CD_ERR_INVALID with messages in d; CD_ERR_NOMEM. */
cd_err policy_yaml_parse(const char *file, const char *base, const char *buf, size_t len,
                         const struct policy_vars *vars, policy_env_fn env, struct policy **out,
                         struct cd_diag *d);

/* Links set->policies (parsed, distinct names; once): adds the implicit key
 * "<CERT>.key" of each certificate without private_key:, resolves references,
 * orders the secrets, checks kinds and injection files, names public files.
 * CD_ERR_INVALID when d counts more than `before` messages afterwards (or a
 * cycle was found); CD_ERR_NOMEM. */
cd_err policy_set_link(struct policy_set *set, struct cd_diag *d, unsigned before);

/* Adds one parse result (err, p) to set: a policy error (CD_ERR_INVALID)
 * sets *invalid; so does a name already in the set (p is then freed, with
 * a message); a runtime error is returned. The caller bounds npolicies. */
cd_err policy_set_take(struct policy_set *set, cd_err err, struct policy *p, struct cd_diag *diag,
                       bool *invalid);

#endif
