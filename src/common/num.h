/* num.h: the one decimal parser, with one overflow rule (like curl's
 * curlx_str_number and OpenBSD's strtonum). */
#ifndef CONFIDOC_NUM_H
#define CONFIDOC_NUM_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Reads the decimal digits at *p (up to end; at least one digit, no sign, no
 * space, leading zeros allowed) and advances *p past them. The one overflow
 * rule: a value above max is CD_ERR_TOO_LARGE, however many digits it has.
 * CD_ERR_INVALID when *p does not start with a digit. On an error *p and *out
 * are left untouched. */
cd_err num_prefix(const char **p, const char *end, uint64_t max, uint64_t *out);

/* Like num_prefix, but the digits must be all of s[0..len). */
cd_err num_parse(const char *s, size_t len, uint64_t max, uint64_t *out);

#endif
