/* prog_seal.c: a sealed CAS store for test_cas_recover.sh, through the seal
 * and store APIs (the service's own start-up: seal_open, then store_open).
 *   prog_seal create STATE SOURCE [THRESHOLD PUB...]   seal, store a key and a session
 *   prog_seal check STATE SOURCE                       open, read both back
 *   prog_seal keyring-drop NAME                        invalidate a user-keyring key
 * SOURCE is a key file path or keyring:NAME. Exit 0 on success. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/keyctl.h>

#include "cas/seal.h"
#include "cas/store.h"

static const char pem[] = "-----BEGIN PRIVATE KEY-----\nprog-seal-material\n"
                          "-----END PRIVATE KEY-----\n";
static const char session[] = "name: api\nsecrets: []\n";

static struct seal_source source(const char *s)
{
    struct seal_source src = {SEAL_SOURCE_FILE, s};
    if (strncmp(s, "keyring:", 8) == 0) {
        src.kind = SEAL_SOURCE_KEYRING;
        src.name = s + 8;
    }
    return src;
}

static int fail(const char *what, cd_err err, const struct cd_diag *d)
{
    fprintf(stderr, "prog_seal: %s: %s\n%s", what, cd_strerror(err), d != NULL ? d->text : "");
    return 1;
}

int main(int argc, char **argv)
{
    static struct cd_diag d;
    struct seal_key *key = NULL;
    struct cas_store *st = NULL;
    struct pki_buf b = {0};
    cd_err err;

    if (argc == 3 && strcmp(argv[1], "keyring-drop") == 0) {
        long id = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", argv[2], 0);
        return id > 0 && syscall(SYS_keyctl, KEYCTL_INVALIDATE, id) == 0 ? 0 : 1;
    }
    if (argc < 4 || (strcmp(argv[1], "create") != 0 && strcmp(argv[1], "check") != 0)) {
        fprintf(stderr, "usage: prog_seal create|check STATE SOURCE [THRESHOLD PUB...]\n");
        return 2;
    }
    bool create = strcmp(argv[1], "create") == 0;
    struct seal_source src = source(argv[3]);
    struct seal_recovery rec = {NULL, 0, 1};
    if (create && argc > 5) {
        rec.threshold = (unsigned)strtoul(argv[4], NULL, 10);
        rec.pubkeys = (const char *const *)&argv[5];
        rec.n = (size_t)(argc - 5);
    }
    cd_diag_init(&d);
    if ((err = seal_open(argv[2], &src, &rec, &d, &key)) != CD_OK)
        return fail("seal_open", err, &d);
    if ((err = store_open(argv[2], key, &st)) != CD_OK)
        return fail("store_open", err, NULL);
    int rc = 0;
    if (create) {
        struct store_meta m = {.version = 1};
        if ((err = store_meta_put(st, "api", "TLS_KEY", &m)) != CD_OK ||
            (err = store_put(st, "api", "TLS_KEY", 1, "pem", pem, sizeof(pem) - 1)) != CD_OK ||
            (err = store_blob_put(st, "sessions", "api.yaml", session, sizeof(session) - 1)) !=
                CD_OK)
            rc = fail("store", err, NULL);
        else
            printf("created\n");
    } else {
        struct store_meta m = {0};
        if ((err = store_meta_get(st, "api", "TLS_KEY", &m)) != CD_OK ||
            (err = store_get(st, "api", "TLS_KEY", m.version, "pem", &b)) != CD_OK)
            rc = fail("store_get", err, NULL);
        else if (b.len != sizeof(pem) - 1 || memcmp(b.data, pem, b.len) != 0)
            rc = fail("material differs", CD_ERR_INTERNAL, NULL);
        pki_buf_release(&b);
        if (rc == 0 && (err = store_blob_get(st, "sessions", "api.yaml", &b)) != CD_OK)
            rc = fail("store_blob_get", err, NULL);
        else if (rc == 0 && (b.len != sizeof(session) - 1 || memcmp(b.data, session, b.len) != 0))
            rc = fail("session differs", CD_ERR_INTERNAL, NULL);
        pki_buf_release(&b);
        if (rc == 0)
            printf("opened\n");
    }
    store_close(st);
    seal_key_free(key);
    return rc;
}
