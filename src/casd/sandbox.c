/* sandbox.c: the network worker's confinement (sandbox.h): privilege drop,
 * Landlock (raw system calls: glibc has no wrappers) and a libseccomp
 * allow-list. The allow-list was found by running the worker under the
 * integration tests (and under ASan), not guessed. */
#include "casd/sandbox.h"

#include <errno.h>
#include <grp.h>
#include <linux/landlock.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "common/num.h"

cd_err casd_worker_drop(const char *user)
{
    struct passwd *pw;
    uint64_t uid;

    if (geteuid() != 0)
        return CD_OK;
    if (user == NULL)
        return CD_ERR_CONFIG;
    pw = num_parse(user, strlen(user), UINT32_MAX - 1, &uid) == CD_OK ? getpwuid((uid_t)uid)
                                                                      : getpwnam(user);
    if (pw == NULL || pw->pw_uid == 0)
        return CD_ERR_CONFIG;
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
        return CD_ERR_IO;
    if (setuid(0) == 0 || geteuid() == 0 || getegid() == 0)
        return CD_ERR_INTERNAL;
    return CD_OK;
}

/* ---- Landlock ---- */

/* Rights newer than this system's header (values from the kernel's uapi). */
#define LL_FS_ABI1 ((1ull << 13) - 1) /* EXECUTE .. MAKE_SYM */
#define LL_FS_REFER (1ull << 13)      /* ABI 2 */
#define LL_FS_TRUNCATE (1ull << 14)   /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ull << 15)  /* ABI 5 */
#define LL_NET_BIND_TCP (1ull << 0)   /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ull << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ull << 1)

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

static cd_err landlock(void)
{
    struct ll_ruleset_attr attr = {0};
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

    if (abi < 1)
        return CD_ERR_UNAVAILABLE;
    attr.handled_access_fs = LL_FS_ABI1;
    if (abi >= 2)
        attr.handled_access_fs |= LL_FS_REFER;
    if (abi >= 3)
        attr.handled_access_fs |= LL_FS_TRUNCATE;
    if (abi >= 4)
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
    if (abi >= 5)
        attr.handled_access_fs |= LL_FS_IOCTL_DEV;
    if (abi >= 6)
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
    size_t size = abi >= 6 ? sizeof(attr) : abi >= 4 ? 2 * sizeof(uint64_t) : sizeof(uint64_t);
    int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (fd < 0)
        return CD_ERR_IO;
    /* No rule added: nothing is granted. */
    long rc = syscall(SYS_landlock_restrict_self, fd, 0);
    close(fd);
    return rc == 0 ? CD_OK : CD_ERR_IO;
}

/* ---- seccomp ---- */

static const char *const allowed[] = {
    /* the connection loop */
    "accept",
    "accept4",
    "poll",
    "ppoll",
    "read",
    "readv",
    "write",
    "writev",
    "recvfrom",
    "recvmsg",
    "sendto",
    "sendmsg",
    "setsockopt",
    "getsockopt",
    "getsockname",
    "getpeername",
    "shutdown",
    "close",
    "fcntl",
    /* memory */
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    /* time, randomness, threads' primitives */
    "clock_gettime",
    "gettimeofday",
    "time",
    "nanosleep",
    "clock_nanosleep",
    "getrandom",
    "futex",
    "sched_yield",
    "getpid",
    "gettid",
    /* signals and the end */
    "rt_sigreturn",
    "rt_sigprocmask",
    "rt_sigaction",
    "sigaltstack",
    "restart_syscall",
    "tgkill",
    "exit",
    "exit_group",
    /* stdio on the inherited stderr (log lines) */
    "fstat",
    "newfstatat",
    "lseek",
};

/* Opening a path: refused without killing, so that a library that probes a
 * file (a configuration, a locale) fails the way a missing file does. */
static const char *const refused[] = {
    "open",   "openat",    "openat2",    "creat",    "stat",       "lstat",
    "access", "faccessat", "faccessat2", "readlink", "readlinkat",
};

/* The node agent's own: its callers' threads, their pidfds and
 * executables, the TLS connection to the CAS and name resolution
 * (getaddrinfo: netlink for AI_ADDRCONFIG, UDP or TCP to the resolver). */
static const char *const agent_allowed[] = {
    "clone",   "clone3",  "set_robust_list",   "rseq",   "socket",   "connect",
    "bind",    "openat",  "pread64",           "statx",  "sendmmsg", "ioctl",
    "uname",   "unlink",  "pidfd_open",        "getuid", "geteuid",  "getgid",
    "getegid", "sysinfo", "sched_getaffinity",
};

static const unsigned long agent_prctl[] = {PR_GET_NAME, PR_SET_NAME, PR_GET_DUMPABLE};

static cd_err seccomp_add(scmp_filter_ctx ctx, uint32_t action, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr != __NR_SCMP_ERROR && seccomp_rule_add(ctx, action, nr, 0) != 0)
            return CD_ERR_IO;
    }
    return CD_OK;
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static cd_err seccomp(bool agent)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    cd_err err;

    if (ctx == NULL)
        return CD_ERR_NOMEM;
    err = seccomp_add(ctx, SCMP_ACT_ALLOW, allowed, N_OF(allowed));
    if (err == CD_OK && agent)
        err = seccomp_add(ctx, SCMP_ACT_ALLOW, agent_allowed, N_OF(agent_allowed));
    /* prctl only to read (or name) itself: the sanitizers' threads ask. */
    for (size_t i = 0; err == CD_OK && agent && i < N_OF(agent_prctl); i++) {
        if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                             SCMP_A0(SCMP_CMP_EQ, agent_prctl[i])) != 0)
            err = CD_ERR_IO;
    }
    /* The agent opens /proc/PID/exe and the resolver's files: openat stays. */
    for (size_t i = 0; err == CD_OK && i < N_OF(refused); i++) {
        if (agent && strcmp(refused[i], "openat") == 0)
            continue;
        err = seccomp_add(ctx, SCMP_ACT_ERRNO(EPERM), &refused[i], 1);
    }
    if (err == CD_OK && seccomp_load(ctx) != 0)
        err = CD_ERR_IO;
    seccomp_release(ctx);
    return err;
}

cd_err casd_worker_sandbox(unsigned what)
{
    cd_err err;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return CD_ERR_IO;
    if ((what & CASD_SANDBOX_LANDLOCK) && (err = landlock()) != CD_OK)
        return err;
    if ((what & CASD_SANDBOX_SECCOMP) && (err = seccomp(false)) != CD_OK)
        return err;
    return CD_OK;
}

cd_err casd_agent_sandbox(void)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return CD_ERR_IO;
    return seccomp(true);
}
