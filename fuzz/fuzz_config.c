/* fuzz_config.c: config_load_file, then config_validate, on an arbitrary file.
 *
 * The input is written to a memfd and loaded through /proc/self/fd/N, the way
 * a real file is. Nothing may crash; a failure adds exactly one bounded,
 * NUL-terminated problem to its cd_diag (and gives the same verdict with no
 * diag at all); every string field stays NUL-terminated;
 * the list keys split safely. */
#include "fuzz_common.h"

#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"

static int memfd = -1;
static char path[64];
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memfd = memfd_create("fuzz_config", MFD_CLOEXEC);
    if (memfd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
    devnull = fopen("/dev/null", "we");
    if (devnull == NULL)
        abort();
    return 0;
}

static void write_input(const uint8_t *data, size_t size)
{
    size_t off = 0;

    FUZZ_CHECK(ftruncate(memfd, 0) == 0);
    while (off < size) {
        ssize_t w = pwrite(memfd, data + off, size - off, (off_t)off);
        FUZZ_CHECK(w > 0);
        off += (size_t)w;
    }
}

static void check_strings(const struct config *cfg)
{
    const char *fields[] = {cfg->listen_addr,
                            cfg->tls_cert,
                            cfg->tls_key,
                            cfg->client_ca,
                            cfg->allowed_client_subjects,
                            cfg->trusted_proxy_subjects,
                            cfg->master_key_file,
                            cfg->escrow_public_key_file,
                            cfg->db_host,
                            cfg->db_name,
                            cfg->db_user,
                            cfg->db_password_file,
                            cfg->db_tls_ca,
                            cfg->db_tls_cert,
                            cfg->db_tls_key,
                            cfg->memcached_servers,
                            cfg->memcached_tls_ca,
                            cfg->memcached_tls_cert,
                            cfg->memcached_tls_key,
                            cfg->memcached_server_name};

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        FUZZ_CHECK(memchr(fields[i], '\0', CONFIG_STR_MAX) != NULL);
    FUZZ_CHECK(memchr(cfg->rate_limit_on_unavailable, '\0',
                      sizeof(cfg->rate_limit_on_unavailable)) != NULL);
    FUZZ_CHECK(memchr(cfg->log_level, '\0', sizeof(cfg->log_level)) != NULL);
}

static void split(const char *list, char sep)
{
    char buf[CONFIG_STR_MAX];
    const char *items[32];
    size_t n = 0;
    cd_err rc = config_split_list(list, sep, buf, sizeof(buf), items, 32, &n);

    FUZZ_CHECK(rc == CD_OK || rc == CD_ERR_TOO_LARGE);
    FUZZ_CHECK(n <= 32);
    for (size_t i = 0; rc == CD_OK && i < n; i++) {
        FUZZ_CHECK(items[i] >= buf && items[i] < buf + sizeof(buf));
        FUZZ_CHECK(items[i][0] != '\0' && strchr(items[i], sep) == NULL);
    }
    /* Too small a buffer or item array is refused, not overrun. */
    n = 0;
    rc = config_split_list(list, sep, buf, 8, items, 1, &n);
    FUZZ_CHECK((rc == CD_OK && n <= 1) || (rc == CD_ERR_TOO_LARGE && n == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config cfg;
    static struct cd_diag diag;
    cd_err rc;

    write_input(data, size);

    config_defaults(&cfg);
    cd_diag_init(&diag);
    rc = config_load_file(&cfg, path, &diag);
    check_strings(&cfg);
    /* A failure says why, in bounded text, as exactly one problem. */
    if (rc != CD_OK)
        FUZZ_CHECK(diag.count == 1 && diag.len > 0 && diag.len < sizeof(diag.text) &&
                   diag.text[diag.len] == '\0');
    else
        FUZZ_CHECK(diag.count == 0);
    config_defaults(&cfg);
    FUZZ_CHECK(config_load_file(&cfg, path, NULL) == rc); /* no diag: the same verdict */

    cd_diag_init(&diag);
    if (config_validate(&cfg, &diag) != CD_OK)
        FUZZ_CHECK(diag.count == 1);
    split(cfg.allowed_client_subjects, ';');
    split(cfg.trusted_proxy_subjects, ';');
    split(cfg.memcached_servers, ',');
    config_print(&cfg, devnull);
    return 0;
}
