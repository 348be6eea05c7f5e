/* fuzz_keyring.c: crypto_keyring_load on an arbitrary keyring file.
 *
 * The input is written to a memfd (mode 0600) and loaded through
 * /proc/self/fd/N. Nothing may crash or leak: malloc leaks are LeakSanitizer's,
 * and libsodium's guarded allocations (mmap'ed, invisible to it) are counted
 * here through the linker's --wrap. A loaded keyring holds 1 to
 * CRYPTO_KEYRING_MAX_KEYS distinct versions, newest first. */
#include "fuzz_common.h"

#include <ctype.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"

/* Guarded allocations made and not yet freed (fuzz/CMakeLists.txt wraps them). */
static long live_allocs;

void *__real_sodium_malloc(size_t size);
void __real_sodium_free(void *ptr);
void *__wrap_sodium_malloc(size_t size);
void __wrap_sodium_free(void *ptr);

void *__wrap_sodium_malloc(size_t size)
{
    void *p = __real_sodium_malloc(size);
    if (p != NULL)
        live_allocs++;
    return p;
}

void __wrap_sodium_free(void *ptr)
{
    if (ptr != NULL)
        live_allocs--;
    __real_sodium_free(ptr);
}

static int memfd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (crypto_init() != CD_OK)
        abort();
    memfd = memfd_create("fuzz_keyring", MFD_CLOEXEC);
    if (memfd < 0 || fchmod(memfd, 0600) != 0) {
        perror("memfd");
        abort();
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
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

static void check_keyring(const crypto_keyring *kr)
{
    uint32_t v[CRYPTO_KEYRING_MAX_KEYS + 1];
    size_t n = crypto_keyring_versions(kr, v, CRYPTO_KEYRING_MAX_KEYS + 1);

    FUZZ_CHECK(n >= 1 && n <= CRYPTO_KEYRING_MAX_KEYS);
    FUZZ_CHECK(crypto_keyring_newest(kr) == v[0]);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(v[i] >= 1 && v[i] <= CRYPTO_KEYRING_MAX_VERSION);
        FUZZ_CHECK(crypto_keyring_has(kr, v[i]));
        if (i > 0)
            FUZZ_CHECK(v[i] < v[i - 1]);
    }
    {
        /* Every version keys a hash. */
        uint8_t h[CRYPTO_HASH_BYTES];
        struct crypto_part part = {"x", 1};
        FUZZ_CHECK(crypto_keyed_hash(kr, v[n - 1], CRYPTO_PURPOSE_USERNAME, &part, 1, h) == CD_OK);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crypto_keyring *kr = NULL;
    static struct cd_diag diag;
    const char *err = diag.text;
    long before = live_allocs;
    cd_err rc;

    write_input(data, size);
    cd_diag_init(&diag);
    rc = crypto_keyring_load(path, &kr, &diag);
    if (rc == CD_OK) {
        FUZZ_CHECK(kr != NULL);
        FUZZ_CHECK(live_allocs == before + 1);
        check_keyring(kr);
        crypto_keyring_free(kr);
    } else {
        FUZZ_CHECK(kr == NULL);
        FUZZ_CHECK(diag.count == 1 && err[0] != '\0');
    }
    FUZZ_CHECK(live_allocs == before);
    FUZZ_CHECK(diag.len < sizeof(diag.text) && memchr(err, '\0', sizeof(diag.text)) != NULL);
    /* The message never carries key material: no run of 16 hex digits. */
    {
        size_t run = 0;
        for (size_t i = 0; err[i] != '\0'; i++) {
            run = isxdigit((unsigned char)err[i]) ? run + 1 : 0;
            FUZZ_CHECK(run < 16);
        }
    }
    return 0;
}
