/* evidence_double.h: the "test" evidence verifier, a test double for the
 * hardware-evidence seam (src/evidence/evidence.h). Its evidence is
 *   "CDTE" || measurement (32) || report_data (64) || flags (1) || tag (32),
 * tag = HMAC-SHA256 under a key published right here in the tests, so it proves
 * nothing: it is linked only into test programs and never registered. */
#ifndef CONFIDOC_TESTS_EVIDENCE_DOUBLE_H
#define CONFIDOC_TESTS_EVIDENCE_DOUBLE_H

#include <stddef.h>

#include "evidence/evidence.h"

#define EVIDENCE_DOUBLE_LEN (4 + 32 + 64 + 1 + 32)

extern const struct evidence_verifier evidence_double;

/* Writes the double's evidence for these values into out. */
void evidence_double_make(const unsigned char measurement[32],
                          const unsigned char report_data[EVIDENCE_REPORT_DATA_LEN],
                          unsigned char flags, unsigned char out[EVIDENCE_DOUBLE_LEN]);

#endif
