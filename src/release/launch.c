/* launch.c: the launcher's side of attested release (launch.h). */
#include "release/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/codec.h"
#include "release/measure.h"
#include "release/proto.h"

#define LAUNCH_TIMEOUT_MS 15000 /* the whole exchange with the CAS */

extern char **environ;

struct file_in {
    char rel[RELEASE_PATH_MAX + 1];
    bool public_file;
    struct buf content;
};

struct launch {
    const struct release_launch *l;
    char *reason;
    size_t cap;
    int exe_fd, sock;
    uint8_t *in; /* RELEASE_MSG_MAX bytes, wiped after each message */
    int64_t deadline;
    /* SPEC */
    uid_t uid;
    gid_t gid;
    char user[256]; /* the uid's name, for initgroups ("" when it has none) */
    char mount[RELEASE_PATH_MAX + 1];
    char config[POLICY_MAX_MEASURED][RELEASE_PATH_MAX + 1];
    size_t nconfig;
    unsigned char nonce[RELEASE_NONCE_LEN];
    /* RELEASE */
    struct file_in *files;
    size_t nfiles, total;
    const char *dir; /* where the files went: mount or fallback_dir */
    bool userns;     /* not root: in a user and mount namespace of our own */
};

static cd_err fail(struct launch *s, cd_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static cd_err fail(struct launch *s, cd_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    (void)vsnprintf(s->reason, s->cap, fmt, ap);
    va_end(ap);
    return err;
}

/* An executable regular file: the descriptor, or -1 with errno (ENOEXEC for
 * a "#!" script, which fexecve of an O_CLOEXEC descriptor cannot run). */
static int open_exe(const char *path)
{
    struct stat st;
    char magic[2] = {0, 0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) {
        close(fd);
        errno = EACCES;
        return -1;
    }
    if (pread(fd, magic, 2, 0) == 2 && magic[0] == '#' && magic[1] == '!') {
        close(fd);
        errno = ENOEXEC;
        return -1;
    }
    return fd;
}

/* Opens the command once, as execvp would find it. */
static cd_err open_command(struct launch *s, const char *cmd)
{
    char path[RELEASE_PATH_MAX + 1];
    const char *dirs = getenv("PATH");

    if (cmd[0] == '\0')
        return fail(s, CD_ERR_NOT_FOUND, "empty command");
    if (strchr(cmd, '/') != NULL) {
        s->exe_fd = open_exe(cmd);
        if (s->exe_fd < 0 && errno == ENOEXEC)
            return fail(s, CD_ERR_INVALID, "%s is a script: only binaries can be launched", cmd);
        if (s->exe_fd < 0)
            return fail(s, CD_ERR_NOT_FOUND, "cannot open %s: %s", cmd, strerror(errno));
        return CD_OK;
    }
    if (dirs == NULL || dirs[0] == '\0')
        dirs = "/usr/local/bin:/usr/bin:/bin";
    for (const char *d = dirs; s->exe_fd < 0;) {
        size_t len = strcspn(d, ":");
        int n = snprintf(path, sizeof(path), "%.*s/%s", (int)(len > 0 ? len : 1), len > 0 ? d : ".",
                         cmd);
        if (n > 0 && (size_t)n < sizeof(path))
            s->exe_fd = open_exe(path);
        if (d[len] == '\0')
            break;
        d += len + 1;
    }
    return s->exe_fd >= 0 ? CD_OK : fail(s, CD_ERR_NOT_FOUND, "%s: command not found in PATH", cmd);
}

static cd_err connect_cas(struct launch *s)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(s->l->socket) >= sizeof(sa.sun_path))
        return fail(s, CD_ERR_INVALID, "socket path too long");
    memcpy(sa.sun_path, s->l->socket, strlen(s->l->socket) + 1);
    s->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s->sock < 0 || connect(s->sock, (const struct sockaddr *)&sa, sizeof(sa)) != 0)
        return fail(s, CD_ERR_UNAVAILABLE, "cannot connect to the CAS at %s: %s", s->l->socket,
                    strerror(errno));
    return CD_OK;
}

static cd_err send_msg(struct launch *s, struct buf *b, cd_err err)
{
    if (err == CD_OK)
        err = release_send(s->sock, b, s->deadline);
    buf_release(b);
    return err == CD_OK ? CD_OK : fail(s, err, "cannot send to the CAS: %s", cd_strerror(err));
}

/* One message; REFUSED becomes the reason (CD_ERR_AUTH); any other type
 * than want (or FILE while waiting for END) is malformed. */
static cd_err recv_msg(struct launch *s, enum release_type want, struct release_msg *m)
{
    cd_err err = release_recv(s->sock, s->in, RELEASE_MSG_MAX, s->deadline, m);
    if (err != CD_OK)
        return fail(s, err, "no answer from the CAS: %s", cd_strerror(err));
    if (m->type == RELEASE_REFUSED) {
        (void)release_view_copy(m->reason, s->reason, s->cap);
        return CD_ERR_AUTH;
    }
    if (m->type != want && !(want == RELEASE_END && m->type == RELEASE_FILE))
        return fail(s, CD_ERR_INVALID, "unexpected message %u from the CAS", (unsigned)m->type);
    return CD_OK;
}

static cd_err hello_spec(struct launch *s)
{
    struct buf b;
    struct release_msg m;

    buf_init(&b, RELEASE_HEADER + 4 + RELEASE_NAME_MAX + 1);
    cd_err err = release_enc_hello(&b, s->l->session);
    if (err == CD_ERR_INVALID) {
        buf_release(&b);
        return fail(s, err, "bad session name");
    }
    if ((err = send_msg(s, &b, err)) != CD_OK || (err = recv_msg(s, RELEASE_SPEC, &m)) != CD_OK)
        return err;
    s->uid = (uid_t)m.uid;
    (void)release_view_copy(m.mount, s->mount, sizeof(s->mount));
    s->nconfig = m.nconfig;
    for (size_t i = 0; i < m.nconfig; i++)
        (void)release_view_copy(m.config[i], s->config[i], sizeof(s->config[i]));
    memcpy(s->nonce, m.nonce.p, sizeof(s->nonce));
    return CD_OK;
}

/* The evidence of this launch, when the caller provides it: its report_data
 * binds SPEC's nonce and the measurements in me. */
static cd_err add_evidence(struct launch *s, struct release_measurement *me, struct buf *ev)
{
    unsigned char exe[EVIDENCE_HASH_LEN], configs[POLICY_MAX_MEASURED][EVIDENCE_HASH_LEN];
    unsigned char report_data[EVIDENCE_REPORT_DATA_LEN];
    cd_err err = codec_hex_decode(me->exe, RELEASE_HASH_LEN, exe, sizeof(exe));

    for (size_t i = 0; i < me->nconfig && err == CD_OK; i++)
        err = codec_hex_decode(me->config[i], RELEASE_HASH_LEN, configs[i], EVIDENCE_HASH_LEN);
    if (err == CD_OK)
        err = evidence_binding(s->nonce, exe, (const unsigned char(*)[EVIDENCE_HASH_LEN])configs,
                               me->nconfig, report_data);
    if (err == CD_OK)
        err = s->l->evidence(s->l->evidence_arg, report_data, &me->verifier, ev);
    if (err != CD_OK)
        return fail(s, err, "cannot get evidence for this launch: %s", cd_strerror(err));
    me->evidence = ev->p;
    me->evidence_len = ev->len;
    return CD_OK;
}

static cd_err measure(struct launch *s)
{
    struct release_measurement me = {0};
    struct buf b, ev;
    cd_err err = release_sha256_fd(s->exe_fd, me.exe);

    if (err != CD_OK)
        return fail(s, err, "cannot hash %s: %s", s->l->argv[0], cd_strerror(err));
    /* Not root, the command runs as the caller: say so, the CAS decides. */
    me.uid = geteuid() == 0 ? (uint32_t)s->uid : (uint32_t)getuid();
    me.nconfig = s->nconfig;
    for (size_t i = 0; i < s->nconfig; i++) {
        err = release_sha256_file(s->config[i], me.config[i]);
        if (err != CD_OK)
            return fail(s, err, "cannot hash config %s: %s", s->config[i], cd_strerror(err));
    }
    buf_init(&ev, RELEASE_EVIDENCE_MAX + 1);
    if (s->l->evidence != NULL && (err = add_evidence(s, &me, &ev)) != CD_OK) {
        buf_release(&ev);
        return err;
    }
    buf_init(&b, RELEASE_BUF_MAX);
    err = send_msg(s, &b, release_enc_measure(&b, &me));
    buf_release(&ev);
    return err;
}

static cd_err receive_files(struct launch *s)
{
    struct release_msg m;
    cd_err err;

    s->files = calloc(RELEASE_MAX_FILES, sizeof(*s->files));
    if (s->files == NULL)
        return fail(s, CD_ERR_NOMEM, "out of memory");
    for (;;) {
        err = recv_msg(s, RELEASE_END, &m);
        if (err != CD_OK)
            return err;
        if (m.type == RELEASE_END)
            break;
        if (s->nfiles >= RELEASE_MAX_FILES || m.content.len > RELEASE_TOTAL_MAX - s->total)
            return fail(s, CD_ERR_TOO_LARGE, "the CAS sent too many files");
        struct file_in *f = &s->files[s->nfiles++];
        if (!release_view_copy(m.rel, f->rel, sizeof(f->rel)))
            return fail(s, CD_ERR_INVALID, "bad file name from the CAS");
        f->public_file = m.public_file;
        buf_init(&f->content, m.content.len + 1);
        err = m.content.len > 0 ? buf_add(&f->content, m.content.p, m.content.len) : CD_OK;
        explicit_bzero(s->in, RELEASE_HEADER + 4 + m.rel.len + 1 + 4 + m.content.len);
        s->total += m.content.len;
        if (err != CD_OK)
            return fail(s, err, "out of memory");
    }
    if (m.nfiles != s->nfiles)
        return fail(s, CD_ERR_INVALID, "the CAS announced %u files and sent %zu",
                    (unsigned)m.nfiles, s->nfiles);
    return CD_OK;
}

/* ---- the private tmpfs ---- */

static cd_err write_map(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return CD_ERR_IO;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? CD_OK : CD_ERR_IO;
}

/* Not root: a user namespace where the caller's uid and gid map to
 * themselves, and a mount namespace in it. Done before anything secret is in
 * memory: writing the maps needs the process to be dumpable for that moment
 * (confidoc-cas starts non-dumpable, cas_main.c). */
static cd_err user_namespace(void)
{
    char map[64];
    uid_t uid = getuid();
    gid_t gid = getgid();
    cd_err err = CD_ERR_IO;

    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return CD_ERR_IO;
    (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    if (write_map("/proc/self/uid_map", map) == CD_OK &&
        write_map("/proc/self/setgroups", "deny") == CD_OK) {
        snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
        err = write_map("/proc/self/gid_map", map);
    }
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    return err;
}

static cd_err mount_tmpfs(struct launch *s, uid_t uid, gid_t gid)
{
    char opts[128];
    struct stat st;

    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return fail(s, CD_ERR_IO, "cannot make the mounts private: %s", strerror(errno));
    if (lstat(s->mount, &st) != 0 && errno == ENOENT)
        (void)mkdir(s->mount, 0755);
    if (lstat(s->mount, &st) != 0 || !S_ISDIR(st.st_mode))
        return fail(s, CD_ERR_IO, "mount point %s is not a directory", s->mount);
    snprintf(opts, sizeof(opts), "mode=0700,uid=%u,gid=%u,size=%s,nr_inodes=4096", (unsigned)uid,
             (unsigned)gid, RELEASE_TMPFS_SIZE);
    if (mount("confidoc-secrets", s->mount, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) != 0)
        return fail(s, CD_ERR_IO, "cannot mount a tmpfs at %s: %s", s->mount, strerror(errno));
    s->dir = s->mount;
    return CD_OK;
}

/* The directory of rel (created 0700, owned by uid/gid) under dirfd: an
 * O_DIRECTORY descriptor, and *name the last component. */
static int open_parent(int dirfd, char *rel, char **name, uid_t uid, gid_t gid)
{
    int fd = dup(dirfd);
    char *p = rel;
    for (char *slash = strchr(p, '/'); fd >= 0 && slash != NULL; slash = strchr(p, '/')) {
        *slash = '\0';
        if (mkdirat(fd, p, 0700) == 0) {
            int d = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (d >= 0 && (fchown(d, uid, gid) != 0 || fchmod(d, 0700) != 0)) {
                close(d);
                d = -1;
            }
            close(fd);
            fd = d;
        } else if (errno == EEXIST) {
            int d = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            close(fd);
            fd = d;
        } else {
            close(fd);
            fd = -1;
        }
        *slash = '/';
        p = slash + 1;
    }
    *name = p;
    return fd;
}

static cd_err write_files(struct launch *s, uid_t uid, gid_t gid, bool replace)
{
    int root = open(s->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root < 0)
        return fail(s, CD_ERR_IO, "cannot open %s: %s", s->dir, strerror(errno));
    for (size_t i = 0; i < s->nfiles; i++) {
        struct file_in *f = &s->files[i];
        char *name = NULL;
        mode_t mode = f->public_file ? 0444 : 0400;
        int d = open_parent(root, f->rel, &name, uid, gid);
        int fd = -1;
        if (d >= 0 && replace)
            (void)unlinkat(d, name, 0);
        if (d >= 0)
            fd = openat(d, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        bool ok = fd >= 0 && fchown(fd, uid, gid) == 0 && fchmod(fd, mode) == 0;
        for (size_t off = 0; ok && off < f->content.len;) {
            ssize_t n = write(fd, f->content.p + off, f->content.len - off);
            ok = n > 0;
            off += ok ? (size_t)n : 0;
        }
        if (fd >= 0)
            close(fd);
        if (d >= 0)
            close(d);
        if (!ok) {
            close(root);
            return fail(s, CD_ERR_IO, "cannot write %s under %s", f->rel, s->dir);
        }
    }
    close(root);
    return CD_OK;
}

/* The fallback: a private directory of the caller's own. */
static cd_err fallback(struct launch *s)
{
    struct stat st;
    const char *dir = s->l->fallback_dir;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return fail(s, CD_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 077) != 0)
        return fail(s, CD_ERR_CONFIG, "fallback directory %s must be a 0700 directory of uid %u",
                    dir, (unsigned)getuid());
    s->dir = dir;
    return write_files(s, getuid(), getgid(), true);
}

static cd_err place_files(struct launch *s)
{
    struct passwd pw, *res = NULL;
    char tmp[4096];
    cd_err err;

    if (geteuid() != 0) {
        if (s->userns && mount_tmpfs(s, getuid(), getgid()) == CD_OK)
            return write_files(s, getuid(), getgid(), false);
        if (s->l->fallback_dir == NULL) {
            char why[256];
            snprintf(why, sizeof(why), "%s",
                     s->reason[0] != '\0' ? s->reason : "no user namespace");
            return fail(s, CD_ERR_IO,
                        "not root and no private tmpfs (%s); "
                        "--fallback-dir DIR would use a private directory",
                        why);
        }
        return fallback(s);
    }
    s->gid = (gid_t)s->uid;
    if (getpwuid_r(s->uid, &pw, tmp, sizeof(tmp), &res) == 0 && res != NULL) {
        s->gid = pw.pw_gid;
        snprintf(s->user, sizeof(s->user), "%s", pw.pw_name);
    }
    if (unshare(CLONE_NEWNS) != 0)
        return fail(s, CD_ERR_IO, "cannot create a mount namespace: %s", strerror(errno));
    if ((err = mount_tmpfs(s, s->uid, s->gid)) != CD_OK)
        return err;
    return write_files(s, s->uid, s->gid, false);
}

/* initgroups/setgid/setuid (root only), no_new_privs, umask 022, the env. */
static cd_err drop(struct launch *s)
{
    if (geteuid() == 0) {
        int rc = s->user[0] != '\0' ? initgroups(s->user, s->gid) : setgroups(0, NULL);
        if (rc != 0 || setgid(s->gid) != 0 || setuid(s->uid) != 0)
            return fail(s, CD_ERR_IO, "cannot drop to uid %u: %s", (unsigned)s->uid,
                        strerror(errno));
        if (s->uid != 0 && setuid(0) == 0)
            return fail(s, CD_ERR_INTERNAL, "uid 0 could be regained");
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return fail(s, CD_ERR_IO, "cannot set no_new_privs: %s", strerror(errno));
    umask(022);
    if (setenv(RELEASE_SECRETS_ENV, s->dir, 1) != 0)
        return fail(s, CD_ERR_NOMEM, "out of memory");
    return CD_OK;
}

static void cleanup(struct launch *s)
{
    if (s->files != NULL)
        for (size_t i = 0; i < s->nfiles; i++)
            buf_release(&s->files[i].content);
    free(s->files);
    s->files = NULL;
    if (s->in != NULL) {
        explicit_bzero(s->in, RELEASE_MSG_MAX);
        free(s->in);
        s->in = NULL;
    }
    if (s->sock >= 0)
        close(s->sock);
    s->sock = -1;
}

cd_err release_launch(const struct release_launch *l, char *reason, size_t cap)
{
    struct launch *s = calloc(1, sizeof(*s));
    cd_err err;

    if (s == NULL) {
        snprintf(reason, cap, "out of memory");
        return CD_ERR_NOMEM;
    }
    reason[0] = '\0';
    *s = (struct launch){.l = l, .reason = reason, .cap = cap, .exe_fd = -1, .sock = -1};
    s->deadline = release_now_ms() + LAUNCH_TIMEOUT_MS;
    s->in = malloc(RELEASE_MSG_MAX);
    if (s->in == NULL) {
        err = fail(s, CD_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((err = open_command(s, l->argv[0])) != CD_OK)
        goto out;
    if (geteuid() != 0)
        s->userns = user_namespace() == CD_OK;
    /* Not root, the CAS runs as this same uid and can open /proc/PID/exe of a
     * dumpable process only: dumpable until SPEC arrives (the CAS hashes the
     * caller before it reads HELLO), before anything secret is in memory. */
    if (geteuid() != 0)
        (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    err = connect_cas(s);
    if (err == CD_OK)
        err = hello_spec(s);
    if (geteuid() != 0)
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (err != CD_OK || (err = measure(s)) != CD_OK || (err = receive_files(s)) != CD_OK)
        goto out;
    close(s->sock);
    s->sock = -1;
    if ((err = place_files(s)) != CD_OK)
        goto out;
    cleanup(s); /* the secrets are in the tmpfs now: wipe the copies */
    if ((err = drop(s)) != CD_OK)
        goto out;
    fexecve(s->exe_fd, l->argv, environ);
    err = fail(s, CD_ERR_IO, "cannot execute %s: %s", l->argv[0], strerror(errno));
out:
    cleanup(s);
    if (s->exe_fd >= 0)
        close(s->exe_fd);
    free(s);
    return err;
}
