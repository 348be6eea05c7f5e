/* main.c: confidoc-api: options, then the life cycle in app.c: load, open the
 * database, start, wait for a signal, stop. */
#include <stdio.h>
#include <string.h>

#include "app/app.h"

#define CONFIDOC_VERSION "0.1.0"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: confidoc-api --config FILE [--check-config]\n"
            "       confidoc-api --version\n"
            "Every configuration key can be overridden by CONFIDOC_<KEY> in the environment.\n");
    fprintf(out, "       confidoc-api --config FILE --migrate\n"
                 "applies the database schema migrations with an account that may change the\n"
                 "schema (e.g. CONFIDOC_DB_USER and its certificate) and exits.\n");
}

int main(int argc, char **argv)
{
    static struct api a; /* large (configuration strings): not on the stack */
    bool check_only = false;
    int status = 1;
    cd_err rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            a.config_path = argv[++i];
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check_only = true;
        } else if (strcmp(argv[i], "--migrate") == 0) {
            a.migrate_only = true;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("confidoc-api %s\n", CONFIDOC_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    rc = api_load(&a);
    if (rc != CD_OK) {
        status = rc == CD_ERR_CONFIG ? 2 : 1;
    } else if (check_only) {
        config_print(&a.cfg, stdout);
        printf("# configuration is valid; master key versions: %zu\n",
               crypto_keyring_versions(a.kr, NULL, 0));
        status = 0;
    } else if (api_open_database(&a) == CD_OK) {
        if (a.migrate_only) {
            unsigned version = 0;

            if (db_schema_version(a.db, &version) == CD_OK)
                printf("confidoc-api: database schema at version %u\n", version);
            status = 0;
        } else if (api_start(&a) == CD_OK) {
            api_wait(&a);
            status = 0;
        }
    }
    api_stop(&a);
    return status;
}
