/* release_fixture.h: what the tests of the CAS's release checks share
 * (test_release_verify, test_casd_node): the test binary plays the launcher
 * (its own /proc/self/exe hash is the allowed one), and one session "svc" of
 * this process's uid whose executable is RELEASE_FIXTURE_EXE. */
#ifndef CONFIDOC_TESTS_RELEASE_FIXTURE_H
#define CONFIDOC_TESTS_RELEASE_FIXTURE_H

#include "cas/policy.h"
#include "release/proto.h"

#define RELEASE_FIXTURE_EXE "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* self gets this binary's SHA-256, *set the session "svc" (policy_set_free it).
 * Fails the running cmocka test on any error. */
void release_fixture_open(char self[RELEASE_HASH_HEX], struct policy_set **set);

#endif
