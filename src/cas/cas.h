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
