/* policy.h: CAS policy files (YAML): parsing, ${VAR} substitution, validation
 * across policies (references, imports/exports, cycles) and the dependency order.
 *
 * A policy set is the content of one directory of *.yaml files. Loading it is
 * all-or-nothing: policy_set_load either returns a fully linked set whose every
 * reference resolves, or a policy error with one message per problem, each of
 * the form "FILE:LINE: secret NAME: what is wrong". The module never touches key
 * material. policy_set_load reads the directory, its files and the environment
 * (CONFIDOC_CAS_VAR_<NAME>); policy_parse_buffer and everything else are pure
 * (libyaml only). docs/internals/cas.md describes the files of the module. */
#ifndef CONFIDOC_CAS_POLICY_H
#define CONFIDOC_CAS_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/diag.h"
#include "common/err.h"

#define POLICY_FILE_MAX ((size_t)256 * 1024)   /* bytes of one policy file */
#define POLICY_MAX_POLICIES 32                 /* policy files in a directory */
#define POLICY_MAX_SECRETS 64                  /* secrets of one policy (before implicit keys) */
#define POLICY_MAX_FILES 64                    /* injection files of one policy */
#define POLICY_MAX_LIST 32                     /* entries of dns:, ip:, export: */
#define POLICY_MAX_REFS 64                     /* $$CAS::...$$ references of one injection file */
#define POLICY_NAME_MAX 64                     /* policy and secret names */
#define POLICY_CONTENT_MAX ((size_t)64 * 1024) /* template text of one injection file */
#define POLICY_SYM_MIN 16                      /* symmetric key sizes, bytes */
#define POLICY_SYM_MAX 64
#define POLICY_SYM_DEFAULT 32
#define POLICY_CA_DAYS_DEFAULT 3650
#define POLICY_LEAF_DAYS_DEFAULT 397
#define POLICY_DAYS_MAX 36500
#define POLICY_MAX_MEASURED 16 /* measured configuration files of a session */
#define POLICY_MAX_ACCESS 16   /* client key hashes of one access list */
#define POLICY_HASH_HEX 65     /* a SHA-256 in lowercase hex plus NUL */

enum policy_kind {
    POLICY_KIND_PRIVATE_KEY, /* ECDSA P-256 key */
    POLICY_KIND_X509_CA,     /* CA certificate (with its key) */
    POLICY_KIND_X509,        /* leaf certificate (with its key) */
    POLICY_KIND_SYMMETRIC,   /* random bytes, versioned */
    POLICY_KIND_IMPORT,      /* a secret another policy exports to this one */
};

/* Parts a template may reference: $$CAS::NAME.part$$. */
enum policy_part {
    POLICY_PART_CRT,             /* leaf (or CA) certificate PEM */
    POLICY_PART_CHAIN,           /* certificate + issuing CA chain PEM */
    POLICY_PART_KEY,             /* private key PEM (PKCS#8) */
    POLICY_PART_CA,              /* the issuing CA's certificate PEM */
    POLICY_PART_KEYRING,         /* symmetric: "V:HEX" lines, newest last */
    POLICY_PART_MARIADB_KEYFILE, /* symmetric: "V;HEX" lines */
    POLICY_PART_HEX,             /* symmetric: newest version in hex */
};

#define POLICY_USAGE_SERVER 1u
#define POLICY_USAGE_CLIENT 2u

struct policy;

struct policy_secret {
    char *name;
    enum policy_kind kind;
    int line;              /* line of the entry in its file */
    struct policy *policy; /* the policy declaring it */
    size_t index;          /* position in policy_set.order: a dense id over the set */
    bool implicit;         /* a key created for a certificate without private_key: */
    /* certificates */
    char *private_key; /* name of a private-key secret; NULL: the implicit key */
    int private_key_line;
    char *issuer; /* name of a CA secret; NULL: self-signed (CAs only) */
    int issuer_line;
    char *common_name;
    char *dns[POLICY_MAX_LIST];
    size_t ndns;
    char *ip[POLICY_MAX_LIST];
    size_t nip;
    unsigned usage;         /* POLICY_USAGE_* bits (leaves) */
    unsigned validity_days; /* defaulted by kind after loading */
    int pathlen;            /* CAs: computed from the CAs they issue */
    /* symmetric keys */
    unsigned size;
    /* exports */
    char *export_to[POLICY_MAX_LIST];
    int export_line[POLICY_MAX_LIST];
    size_t nexport;
    bool export_public;
    char *public_name; /* file name under STATE/public/ */
    /* imports */
    char *import_policy;
    char *import_secret;
    int import_line;
    /* resolved links (after loading) */
    struct policy_secret *key_ref;    /* certificates: the key (explicit or implicit) */
    struct policy_secret *issuer_ref; /* certificates: the issuer, possibly an import */
    struct policy_secret *import_ref; /* imports: the exported secret (possibly an import) */
};

struct policy_ref {
    size_t start, end; /* byte range of "$$CAS::NAME.part$$" in content */
    enum policy_part part;
    struct policy_secret *secret; /* as named in the policy (possibly an import) */
};

struct policy_file {
    char *path; /* relative to the state directory, validated (no "..", not absolute) */
    int line;   /* of the content's first line */
    /* The content's line breaks come from lines of the file (not a double-quoted
     * scalar's "\n" escapes): a reference's line adds those before it. */
    bool count_breaks;
    char *content; /* after ${VAR} substitution */
    size_t content_len;
    struct policy_ref refs[POLICY_MAX_REFS];
    size_t nrefs;
};

/* A configuration file the launcher measures (measurements: config:). */
struct policy_measured_file {
    char *path; /* absolute */
    char sha256[POLICY_HASH_HEX];
    int line;
};

/* What `confidoc-cas run` must report before the CAS releases a session's
 * secrets (docs/internals/cas-service.md). Absent: the session is never
 * released to a process. */
struct policy_measure {
    bool present;
    int line;
    char executable[POLICY_MAX_LIST][POLICY_HASH_HEX]; /* SHA-256 of the binary; any one */
    size_t nexecutable;
    char *user; /* the uid the service runs as (name or decimal); NULL: owner */
    struct policy_measured_file config[POLICY_MAX_MEASURED];
    size_t nconfig;
    char *mount; /* absolute directory where the launcher mounts the secrets' tmpfs */
};

/* Who may read and update the session through the CAS's REST API: SHA-256
 * (hex) of a client certificate's DER SubjectPublicKeyInfo. */
struct policy_access {
    int line;
    char read[POLICY_MAX_ACCESS][POLICY_HASH_HEX];
    size_t nread;
    char update[POLICY_MAX_ACCESS][POLICY_HASH_HEX];
    size_t nupdate;
    unsigned update_quorum; /* distinct update keys that must sign an update; 0 = 1 */
};

struct policy {
    char *file; /* path of the policy file, as used in messages */
    char *name;
    int line;    /* of the name: key (or 1) */
    char *owner; /* unix user of the injected files, or NULL */
    /* The hash of the session version this one replaces (an update through the
     * CAS service), or NULL (a new session; offline provisioning ignores it). */
    char *predecessor;
    struct policy_measure measure;
    struct policy_access access;
    struct policy_secret *secrets[2 * POLICY_MAX_SECRETS];
    size_t nsecrets;
    struct policy_file files[POLICY_MAX_FILES];
    size_t nfiles;
};

struct policy_set {
    struct policy *policies[POLICY_MAX_POLICIES];
    size_t npolicies;
    /* Every secret of every policy, dependencies before dependents (a key before
     * the certificates it signs or certifies, an issuer before what it issues, an
     * exported secret before its imports). secret->index is its position here. */
    struct policy_secret *order[POLICY_MAX_POLICIES * 2 * POLICY_MAX_SECRETS];
    size_t norder;
};

/* Variables for ${NAME}: the pairs given here first (the last pair of a name
 * wins), then, for policy_set_load only, the environment variable
 * CONFIDOC_CAS_VAR_<NAME>. names/values are borrowed. */
struct policy_vars {
    const char *const *names;
    const char *const *values;
    size_t n;
};

/* Diagnostics go into a struct cd_diag (common/diag.h): one line per policy
 * error, bounded (later errors are counted but their text is dropped). */
/* Adds "FILE:LINE: secret NAME: message" (secret may be NULL: no "secret" part;
 * line 0: no line). */
void policy_diag_add(struct cd_diag *d, const char *file, int line, const char *secret,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Loads every DIR/NAME.yaml (sorted by name). On a policy error returns
 * CD_ERR_INVALID with messages in diag; CD_ERR_IO / CD_ERR_NOMEM on runtime
 * errors (message in diag too). On CD_OK *out owns the set (policy_set_free). */
cd_err policy_set_load(const char *dir, const struct policy_vars *vars, struct policy_set **out,
                       struct cd_diag *diag);
void policy_set_free(struct policy_set *set); /* NULL is a no-op */

/* Parses one policy from buf[0..len) (which need not be NUL-terminated) and
 * links it as a set of one, without any I/O: name is the file name used in
 * messages, and without its directories and last extension the policy name
 * when the document has no name:; ${NAME} comes from vars only (no
 * environment), so imports from other policies are refused as unknown. Errors,
 * *out and ownership as policy_set_load (never CD_ERR_IO). */
cd_err policy_parse_buffer(const char *name, const char *buf, size_t len,
                           const struct policy_vars *vars, struct policy_set **out,
                           struct cd_diag *diag);

/* Parses n policies, text i from texts[i][0..lens[i]) named files[i] in
 * messages (its base name is the policy name when the text has no name:), and
 * with link links them as one set, without any I/O (the CAS service's
 * sessions). ${NAME} comes from vars only. Without link the set holds the
 * parsed policies only (their own keys: name, predecessor, access, ...;
 * nothing resolved, order empty): for looking at a text before linking it.
 * Errors, *out and ownership as policy_set_load (never CD_ERR_IO). */
cd_err policy_set_parse_buffers(const char *const *files, const char *const *texts,
                                const size_t *lens, size_t n, const struct policy_vars *vars,
                                bool link, struct policy_set **out, struct cd_diag *diag);

/* The policy named name, or NULL. */
struct policy *policy_set_find(const struct policy_set *set, const char *name);
/* The secret named name declared by p (including imports), or NULL. */
struct policy_secret *policy_find_secret(const struct policy *p, const char *name);
/* Follows imports to the secret that creates the material; never NULL for a loaded set. */
const struct policy_secret *policy_secret_origin(const struct policy_secret *s);

const char *policy_kind_name(enum policy_kind k);
const char *policy_part_name(enum policy_part p);

#endif
