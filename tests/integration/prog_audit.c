/* prog_audit.c: makes CAS audit logs for test_cas_audit.sh.
 *
 *   prog_audit keygen KEYFILE            a new ECDSA P-256 key (PKCS#8 PEM, 0600)
 *   prog_audit pin KEYFILE               the key's pin (SHA-256 hex of its SPKI)
 *   prog_audit append LOG KEYFILE N      opens (or creates) LOG, appends N events,
 *                                        prints the head as SEQ:HASH
 * Exit 0 on success; the audit module's diagnostics on stderr otherwise. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cas/audit.h"
#include "cas/pki.h"
#include "common/file.h"
#include "common/num.h"

static int keygen(const char *path)
{
    struct pki_buf b = {0};
    int fd;

    if (pki_key_generate(&b) != CD_OK)
        return 1;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len) {
        perror(path);
        pki_buf_release(&b);
        return 1;
    }
    close(fd);
    pki_buf_release(&b);
    return 0;
}

static int read_key(const char *path, struct file_data *key)
{
    struct file_read_opts o = {.max = 16384, .flags = FILE_NOFOLLOW};
    if (file_read(path, &o, key) != CD_OK) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    return 0;
}

static int pin(const char *path)
{
    struct file_data key;
    char fp[PKI_FP_HEX];

    if (read_key(path, &key) != 0)
        return 1;
    if (pki_key_fingerprint(key.data, key.len, fp) != CD_OK)
        return 1;
    printf("%s\n", fp);
    file_data_release(&key, NULL);
    return 0;
}

static int append(const char *log_path, const char *key_path, const char *count)
{
    static struct cd_diag diag;
    struct file_data key;
    struct audit_log *log = NULL;
    uint64_t n, seq;
    char hash[AUDIT_HASH_HEX];
    const char *names[] = {"SERVER_KEY", "SERVER_CRT"};
    int rc = 1;

    if (num_parse(count, strlen(count), 100000, &n) != CD_OK || read_key(key_path, &key) != 0)
        return 1;
    cd_diag_init(&diag);
    if (audit_open(log_path, key.data, key.len, &diag, &log) != CD_OK) {
        fputs(diag.text, stderr);
        goto out;
    }
    for (uint64_t i = 0; i < n; i++) {
        struct audit_event ev = {.kind = i % 2 == 0 ? AUDIT_RELEASE : AUDIT_RELEASE_REFUSED,
                                 .session = "nginx",
                                 .who = "uid=0 pid=1 exe=ab",
                                 .measurement = "exe=ab uid=33",
                                 .secrets = names,
                                 .n_secrets = i % 2 == 0 ? 2 : 0,
                                 .reason = i % 2 == 0 ? NULL : "executable \"x\" differs"};
        if (audit_append(log, &ev) != CD_OK)
            goto out;
    }
    audit_head(log, &seq, hash);
    printf("%" PRIu64 ":%s\n", seq, hash);
    rc = 0;
out:
    audit_close(log);
    file_data_release(&key, NULL);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "keygen") == 0)
        return keygen(argv[2]);
    if (argc == 3 && strcmp(argv[1], "pin") == 0)
        return pin(argv[2]);
    if (argc == 5 && strcmp(argv[1], "append") == 0)
        return append(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: prog_audit keygen KEY | pin KEY | append LOG KEY N\n");
    return 2;
}
