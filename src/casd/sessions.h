/* sessions.h: the CAS parent's sessions: the current text and hash of each,
 * the linked policy set of all of them, its material, and the decisions of
 * the REST API (docs/internals/cas-service.md, Sessions and REST API). Every
 * reply is an HTTP status and a JSON body; a refusal never says more than
 * the caller may know (a private or unknown secret: the same 404). */
#ifndef CONFIDOC_CASD_SESSIONS_H
#define CONFIDOC_CASD_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "cas/pki.h"
#include "cas/policy.h"
#include "casd/ipc.h"
#include "common/buf.h"
#include "common/diag.h"
#include "common/err.h"

#define CASD_MAX_ADMINS 16
#define CASD_STORE_SESSIONS "sessions"     /* the store's directory of session texts */
#define CASD_STORE_IDENTITY "cas-identity" /* the store's policy of the CAS's identity */
#define CASD_VAR_VALUE_MAX 255

struct cas_material;
struct cas_store;
struct casd_sessions;

/* What one decision produces: an HTTP status and its JSON body. */
struct casd_reply {
    int status;
    struct buf body; /* buf_init(&body, CASD_IPC_BODY_MAX) by casd_reply_init */
    /* For the audit log: what happened (NULL: nothing to record). */
    const char *event; /* "create", "update", "refused" */
    char session[CASD_IPC_NAME_MAX + 1];
    char hash[PKI_FP_HEX];
    const char *reason; /* a refusal's reason (static text) */
};
void casd_reply_init(struct casd_reply *r);
void casd_reply_release(struct casd_reply *r);

/* Loads the sessions kept in store (sessions/NAME.meta and .vN.yaml), links
 * them and builds their material. With none kept and policies_dir set, the
 * sessions are created from that directory's *.yaml files (${VAR}s
 * substituted from vars, as a client would) and stored. admins are the key
 * hashes allowed to create sessions (copied). Problems in diag. */
cd_err casd_sessions_open(struct cas_store *store, const char *state_dir, const char *policies_dir,
                          const struct policy_vars *vars, const char *const *admins, size_t nadmins,
                          struct cd_diag *diag, struct casd_sessions **out);
void casd_sessions_free(struct casd_sessions *s); /* NULL is a no-op */
size_t casd_sessions_count(const struct casd_sessions *s);
/* The current linked set and its material (borrowed; valid until the next change). */
const struct policy_set *casd_sessions_set(const struct casd_sessions *s);
const struct cas_material *casd_sessions_material(const struct casd_sessions *s);
/* True when casd_sessions_open created the sessions from policies_dir. */
bool casd_sessions_fresh(const struct casd_sessions *s);
/* Session i (< count): its name and hash (borrowed). */
void casd_sessions_at(const struct casd_sessions *s, size_t i, const char **name,
                      const char **hash);

/* GET /v1/values/session=S,secret=N */
void casd_sessions_value(struct casd_sessions *s, const char *session, const char *secret,
                         struct casd_reply *r);
/* GET /v1/sessions/NAME by the client key hash client ("" for none). */
void casd_sessions_get(struct casd_sessions *s, const char *name, const char *client,
                       struct casd_reply *r);
/* POST /v1/sessions: the text and its signatures (ipc fields). */
void casd_sessions_put(struct casd_sessions *s, const char *text, size_t len, const char *client,
                       const struct casd_ipc_sig *sigs, size_t nsigs, struct casd_reply *r);

/* ${NAME} in text[0..len) replaced from vars (the last pair of a name wins),
 * into out (a fresh buffer). CD_ERR_INVALID for an unknown or malformed
 * variable, or a value with a byte that could change the YAML around it
 * (allowed: letters, digits and . _ - @ + : /), with the problem in diag. */
cd_err casd_text_subst(const char *text, size_t len, const struct policy_vars *vars,
                       struct buf *out, struct cd_diag *diag);

#endif
