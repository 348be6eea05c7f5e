/* crypto_test.h: hooks of the crypto module for tests only (not part of the
 * API; nothing outside tests/ and the crypto module includes this header). */
#ifndef CONFIDOC_CRYPTO_TEST_H
#define CONFIDOC_CRYPTO_TEST_H

#include <stdbool.h>

/* Makes AES-256-GCM take the portable path (OpenSSL) even where the CPU has
 * AES-NI, so that a test checks both paths write and read the same bytes. */
void crypto_test_gcm_portable(bool on);

/* Makes AES-256-GCM take libsodium's path at every length where the CPU has
 * AES-NI (OpenSSL's otherwise takes messages of 4 KiB and more), so that a
 * test checks long messages of either implementation open with the other. */
void crypto_test_gcm_sodium(bool on);

#endif
