/* inject.h: renders a policy's injection-file templates and writes them into
 * the state directory (0600 files, 0700 directories, atomically, and only when
 * the content changed). */
#ifndef CONFIDOC_CAS_INJECT_H
#define CONFIDOC_CAS_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cas/pki.h"
#include "cas/policy.h"
#include "common/err.h"

#define INJECT_FILE_MAX ((size_t)1024 * 1024)

/* Supplies the text of one reference ($$CAS::NAME.part$$) into out (owned by
 * the caller, wiped on release). The secret is the one named in the policy,
 * possibly an import. */
typedef cd_err (*inject_lookup_fn)(void *ctx, const struct policy_secret *s, enum policy_part part,
                                   struct pki_buf *out);

/* Renders f's template; out is released (wiped) by the caller. */
cd_err inject_render(const struct policy_file *f, inject_lookup_fn lookup, void *ctx,
                     struct pki_buf *out);

/* Text of a symmetric-key part: keys[i] (len bytes each) is version i+1.
 * KEYRING: "V:HEX\n" per version; MARIADB_KEYFILE: "V;HEX\n"; HEX: newest hex
 * without newline. */
cd_err inject_symmetric_text(enum policy_part part, const unsigned char *const *keys,
                             const size_t *lens, size_t nkeys, struct pki_buf *out);

/* The owner of a policy's files: when running as root and owner names an
 * existing user, its uid/gid; otherwise (uid_t)-1 (files stay the caller's). */
void inject_owner(const char *owner, uid_t *uid, gid_t *gid);

/* Writes content to STATE/rel (0600, given uid/gid; 0644 and no chown when
 * public). Parent directories below STATE stay the caller's (root's): 0700,
 * or 0750 with group gid when uid is another user, 0755 when public; none is
 * ever given to the service, and none may be a symbolic link (store_mkdirs). */
cd_err inject_write(const char *state_dir, const char *rel, const struct pki_buf *content,
                    bool public_file, uid_t uid, gid_t gid, bool *changed);

#endif
