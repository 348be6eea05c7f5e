/* launch.h: the launcher's side of attested release, used by `confidoc-cas run`
 * (docs/internals/cas-service.md, "Attested release").
 *
 * release_launch opens the command once and hashes it from that descriptor,
 * asks the CAS (HELLO, SPEC), hashes the session's configuration files from
 * descriptors, reports its measurements (MEASURE) and, when the CAS releases
 * the files, writes them into a tmpfs mounted at the session's mount in a new
 * private mount namespace, drops to the session's uid and fexecve()s the
 * measured descriptor: exactly the bytes hashed run.
 *
 * The descriptor is O_CLOEXEC, so only binaries can be launched: a script
 * (#!) would need its interpreter to open /dev/fd/N, which is closed by then;
 * a command starting with "#!" is refused before the CAS is asked.
 *
 * Root: unshare(CLONE_NEWNS), every mount made private, a tmpfs (mode 0700,
 * owned by the session's uid and its group, nosuid, nodev, noexec, at most
 * RELEASE_TMPFS_SIZE) at the mount, files 0400 (public ones 0444) in
 * directories 0700, then initgroups/setgid/setuid to that uid, no_new_privs.
 * Not root: a user namespace mapping the caller's own uid and gid plus a mount
 * namespace, and the tmpfs there; when that fails, the files go into the
 * private 0700 directory fallback_dir (weaker: they are on disk, readable by
 * the caller's uid and root, and stay after the service exits); without a
 * fallback_dir the launch fails. No uid change when not root. */
#ifndef CONFIDOC_RELEASE_LAUNCH_H
#define CONFIDOC_RELEASE_LAUNCH_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"
#include "evidence/evidence.h"

#define RELEASE_SOCKET_DEFAULT "/run/confidoc/cas.sock"
#define RELEASE_TMPFS_SIZE "16m"
#define RELEASE_SECRETS_ENV "CONFIDOC_SECRETS_DIR"

struct release_launch {
    const char *socket;       /* the CAS's unix socket (SOCK_SEQPACKET) */
    const char *session;      /* the session (policy) name */
    char *const *argv;        /* argv[0]: the command (looked up in PATH without a '/') */
    const char *fallback_dir; /* not root and no namespace: write the files here; or NULL */
    /* Hardware evidence (may be NULL: none is sent): called once the launch's
     * measurements are known, with the report_data the evidence must carry
     * (evidence_binding of SPEC's nonce, the executable and config hashes);
     * it names its verifier (static) and appends the evidence to out. */
    cd_err (*evidence)(void *arg, const unsigned char report_data[EVIDENCE_REPORT_DATA_LEN],
                       const char **verifier, struct buf *out);
    void *evidence_arg;
};

/* Launches l->argv with the session's secrets. Returns only on failure, with
 * a one-line reason (names and hashes only) in reason[0..cap): the CAS's
 * refusal as it sent it (CD_ERR_AUTH), or what failed locally (CD_ERR_IO,
 * CD_ERR_NOT_FOUND for the command, CD_ERR_INVALID for a malformed answer,
 * CD_ERR_TIMEOUT, ...). Nothing is written on the host before the CAS's
 * RELEASE (the fallback directory aside). */
cd_err release_launch(const struct release_launch *l, char *reason, size_t cap);

#endif
