/* sandbox.h: what confines the CAS's network worker (docs/security.md, CAS
 * service): its own uid, Landlock with no file access at all, and a seccomp
 * allow-list. The only file of casd that sees seccomp.h. */
#ifndef CONFIDOC_CASD_SANDBOX_H
#define CONFIDOC_CASD_SANDBOX_H

#include "common/err.h"

#define CASD_SANDBOX_LANDLOCK 1u /* no file may be opened, no TCP bind/connect (ABI >= 4) */
#define CASD_SANDBOX_SECCOMP 2u  /* the system-call allow-list */
#define CASD_SANDBOX_ALL (CASD_SANDBOX_LANDLOCK | CASD_SANDBOX_SECCOMP)

/* As root: setgroups to none, setgid and setuid to user (a name or a
 * decimal uid), and checks that root cannot be regained. Not root: nothing
 * (the worker keeps the caller's uid; Landlock and seccomp still apply).
 * CD_ERR_CONFIG for an unknown user or root itself; CD_ERR_IO when a call
 * fails. Reads the user database: call before casd_worker_sandbox. */
cd_err casd_worker_drop(const char *user);

/* Sets no_new_privs, then applies what `what` names, for the rest of the
 * process's life. Landlock: every file-system access right the kernel knows
 * is handled and none is granted, so no path can be opened, created,
 * executed or listed (open descriptors keep working); CD_ERR_UNAVAILABLE
 * when the kernel has no Landlock. Seccomp: the system calls the worker's
 * loop needs (accept, poll, read/write, send/recv, close, memory, time,
 * randomness, exit) are allowed; open/openat/creat and the like fail with
 * EACCES-free EPERM (so that a library probing a file fails cleanly); any
 * other call kills the process (SIGSYS). */
cd_err casd_worker_sandbox(unsigned what);

/* The node agent's confinement, for the rest of its life, once it listens
 * and holds its identity (docs/security.md, "Node agents"): no_new_privs and
 * a seccomp allow-list: the system calls of its loop, its callers' threads,
 * their pidfds and executables, TLS to the CAS and name resolution; the
 * path-probing calls other than openat fail with EPERM; any other call kills
 * it (SIGSYS), among them ptrace, process_vm_readv/writev, execve, mount,
 * setuid, chmod/chown, the module and BPF calls. No Landlock: a Landlock
 * domain may not inspect processes outside it (the kernel's ptrace scoping),
 * and opening /proc/PID/exe of its callers is the agent's work. */
cd_err casd_agent_sandbox(void);

#endif
