/* evidence_int.h: what the evidence module's files share (private). */
#ifndef CONFIDOC_EVIDENCE_INT_H
#define CONFIDOC_EVIDENCE_INT_H

#include <stdbool.h>
#include <stddef.h>

/* Constant-time equality (CRYPTO_memcmp). */
bool evidence_equal(const void *a, const void *b, size_t n);

#endif
