/* argon2_rate.c: times crypto_pwhash (Argon2id) with given parameters, single-threaded.
 *
 * Usage: argon2_rate MEMLIMIT_KIB OPSLIMIT COUNT
 * Prints one line: "ARGON2 memlimit_kib=M opslimit=T count=N avg_s=S cpu_avg_s=C".
 * bench/run.sh uses it to compute what confidoc-api's Argon2id parameters allow on this
 * machine: cores / avg_s hashes per second. Built by bench/run.sh, not by CMake. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#define ARGON2_RATE_MAX_COUNT 1000

static int parse_ull(const char *s, unsigned long long min, unsigned long long max,
                     unsigned long long *out)
{
    char *end = NULL;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static double seconds(clockid_t clk)
{
    struct timespec ts;

    if (clock_gettime(clk, &ts) != 0)
        return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    unsigned long long mem_kib, ops, count, i;
    unsigned char salt[crypto_pwhash_SALTBYTES];
    unsigned char out[32];
    static const char pw[] = "bench-password-argon2";
    double t0, c0, t1, c1;

    if (argc != 4 ||
        parse_ull(argv[1], crypto_pwhash_memlimit_min() / 1024, crypto_pwhash_memlimit_max() / 1024,
                  &mem_kib) != 0 ||
        parse_ull(argv[2], crypto_pwhash_opslimit_min(), crypto_pwhash_opslimit_max(), &ops) != 0 ||
        parse_ull(argv[3], 1, ARGON2_RATE_MAX_COUNT, &count) != 0) {
        fprintf(stderr, "usage: argon2_rate MEMLIMIT_KIB OPSLIMIT COUNT(1..%d)\n",
                ARGON2_RATE_MAX_COUNT);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "argon2_rate: cannot initialise libsodium\n");
        return 1;
    }
    randombytes_buf(salt, sizeof(salt));
    t0 = seconds(CLOCK_MONOTONIC);
    c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    for (i = 0; i < count; i++) {
        if (crypto_pwhash(out, sizeof(out), pw, strlen(pw), salt, ops, (size_t)mem_kib * 1024,
                          crypto_pwhash_ALG_ARGON2ID13) != 0) {
            fprintf(stderr, "argon2_rate: crypto_pwhash failed (out of memory?)\n");
            return 1;
        }
    }
    t1 = seconds(CLOCK_MONOTONIC);
    c1 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    sodium_memzero(out, sizeof(out));
    printf("ARGON2 memlimit_kib=%llu opslimit=%llu count=%llu avg_s=%.6f cpu_avg_s=%.6f\n", mem_kib,
           ops, count, (t1 - t0) / (double)count, (c1 - c0) / (double)count);
    return 0;
}
