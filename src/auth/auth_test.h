/* auth_test.h: inspection hooks of the auth module for tests only (not part
 * of the API; nothing outside tests/ includes this header). */
#ifndef CONFIDOC_AUTH_TEST_H
#define CONFIDOC_AUTH_TEST_H

#include <stddef.h>

#include "auth/auth.h"

/* Credential cache slots holding any non-zero byte (a live entry, or an
 * expired one whose secret key has not been wiped yet). Takes the cache lock. */
size_t auth_test_cache_nonzero_slots(auth *a);

#endif
