/* cas.h: confidoc's configuration and attestation service, provisioning part.
 *
 * cas_provision reads a directory of policies (cas/policy.h), creates or keeps
 * every secret in the private store (cas/store.h), issues certificates
 * (cas/pki.h) and writes the injection files of each policy the requester may
 * receive (cas/inject.h). Output lines name policies, secrets and files only,
 * never material.
 *
 * The requester decides what is released: today only the local operator exists,
 * who receives every policy's files. A later issue adds attested processes as
 * requesters; it replaces cas_may_release (and how a requester is built), not
 * the provisioning core. */
#ifndef CONFIDOC_CAS_CAS_H
#define CONFIDOC_CAS_CAS_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "cas/policy.h"
#include "common/err.h"

#define CAS_RENEW_BEFORE_SECONDS (30L * 24 * 3600) /* renew certificates this close to expiry */

enum cas_requester_kind {
    CAS_REQUESTER_OPERATOR, /* the local operator running confidoc-cas: every policy */
};

struct cas_requester {
    enum cas_requester_kind kind;
    /* Later: the attested identity (measurement, policy name claimed, evidence). */
};

struct cas_options {
    const char *policies_dir;
    const char *state_dir;
    struct policy_vars vars;
    const char *rotate; /* "POLICY/SECRET" to rotate, or NULL */
    time_t now;         /* for renewal decisions; 0 = the current time */
    FILE *out;          /* progress lines (names only); NULL = none */
};

/* ---- the material of a policy set (used by provisioning and by the service) ---- */

struct cas_store;
struct pki_buf;

/* Every secret of one linked policy set, read from or created in a store. */
struct cas_material;

struct cas_build {
    const struct policy_set *set; /* borrowed; must outlive the material */
    struct cas_store *store;      /* borrowed; only used during the build */
    const char *where;            /* the store's name in messages (NULL: "cas") */
    const char *rotate;           /* "POLICY/SECRET" to rotate first, or NULL */
    time_t now;                   /* renewal decisions; 0 = the current time */
    FILE *out;                    /* progress lines (names only); NULL = none */
};

/* Keeps, creates, rotates and renews every secret of b->set in dependency
 * order. CD_ERR_INVALID for an unknown rotation target; runtime errors
 * otherwise; the messages are in diag. On CD_OK *out owns the material
 * (cas_material_free: wiped). */
cd_err cas_material_build(const struct cas_build *b, struct cd_diag *diag,
                          struct cas_material **out);
void cas_material_free(struct cas_material *m); /* wipes; NULL is a no-op */

/* Called once per file of a rendered policy: rel is the injection file's path
 * (relative; "public/NAME" for an export_public certificate, public_file
 * true); content is wiped by the caller after the call. A non-OK return stops
 * the rendering and is returned by it. */
typedef cd_err (*cas_emit_fn)(void *ctx, const struct policy *p, const char *rel,
                              const struct pki_buf *content, bool public_file);

/* Renders every injection file of p (a policy of the material's set), then
 * its public certificates, through emit. Nothing is written anywhere. */
cd_err cas_material_render(const struct cas_material *m, const struct policy *p, cas_emit_fn emit,
                           void *ctx);

/* The certificate PEM of secret in policy when that policy declares it
 * export_public; CD_ERR_NOT_FOUND for anything else (unknown, private or an
 * import), so that a caller cannot tell those apart. out is released by the caller. */
cd_err cas_material_public(const struct cas_material *m, const char *policy, const char *secret,
                           struct pki_buf *out);

/* True when requester r may receive the secrets of policy p (its injection files). */
bool cas_may_release(const struct cas_requester *r, const struct policy *p);

/* Validates the policies only. CD_ERR_INVALID on a policy error (diag has the messages). */
cd_err cas_check(const struct cas_options *o, struct cd_diag *diag);

/* Provisions (and rotates o->rotate first, if set). CD_ERR_INVALID on a policy
 * error (or an unknown rotation target); other errors are runtime errors. The
 * messages are in diag. */
cd_err cas_provision(const struct cas_options *o, const struct cas_requester *r,
                     struct cd_diag *diag);

#endif
