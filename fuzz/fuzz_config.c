/* fuzz_config.c: config_load_file, then config_validate, on an arbitrary file.
 *
 * The input is written to a memfd and loaded through /proc/self/fd/N, the way
 * a real file is. Nothing may crash; a failure leaves a NUL-terminated message
 * (also with tiny message buffers); every string field stays NUL-terminated;
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
    int n = config_split_list(list, sep, buf, sizeof(buf), items, 32);

    FUZZ_CHECK(n >= -1 && n <= 32);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(items[i] >= buf && items[i] < buf + sizeof(buf));
        FUZZ_CHECK(items[i][0] != '\0' && strchr(items[i], sep) == NULL);
    }
    /* Too small a buffer or item array is refused, not overrun. */
    n = config_split_list(list, sep, buf, 8, items, 1);
    FUZZ_CHECK(n >= -1 && n <= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config cfg;
    char err[256];
    char tiny[4];
    cd_err rc;

    write_input(data, size);

    config_defaults(&cfg);
    err[0] = '\0';
    rc = config_load_file(&cfg, path, err, sizeof(err));
    check_strings(&cfg);
    if (rc != CD_OK)
        FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
    memset(tiny, 0x5a, sizeof(tiny));
    config_defaults(&cfg);
    FUZZ_CHECK(config_load_file(&cfg, path, tiny, sizeof(tiny)) == rc);
    FUZZ_CHECK(rc == CD_OK || memchr(tiny, '\0', sizeof(tiny)) != NULL);

    if (config_validate(&cfg, err, sizeof(err)) != CD_OK)
        FUZZ_CHECK(err[0] != '\0');
    split(cfg.allowed_client_subjects, ';');
    split(cfg.trusted_proxy_subjects, ';');
    split(cfg.memcached_servers, ',');
    config_print(&cfg, devnull);
    return 0;
}
