/* jsonw.h: writes JSON objects of a fixed shape straight into one buffer,
 * without building a tree: the answers of the hot routes (docs/internals/http.md).
 *
 * The output is byte for byte what jansson's json_dumpb(JSON_COMPACT) writes
 * for the same object built in the same key order: strings escape '"', '\\'
 * and control characters (\b \f \n \r \t, others \u00XX), and nothing else;
 * they must be valid UTF-8, which the caller has checked (jsonw does not
 * validate). Sizes are computed first, so the buffer is allocated once with
 * its exact size. A value string that is secret is wiped with the buffer by
 * whoever frees it (the http server wipes every answer). */
#ifndef CONFIDOC_JSONW_H
#define CONFIDOC_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define JSONW_MAX_FIELDS 8

enum jsonw_kind { JSONW_STR, JSONW_INT, JSONW_NULL };

struct jsonw_field {
    const char *key; /* a literal: ASCII without characters to escape */
    enum jsonw_kind kind;
    const char *s; /* JSONW_STR */
    size_t len;
    int64_t i; /* JSONW_INT */
};

/* One object of n (<= JSONW_MAX_FIELDS) fields, in order, as a malloc'ed
 * buffer (*out, *out_len, not NUL-terminated). CD_ERR_INVALID for a bad
 * field list, CD_ERR_TOO_LARGE when the size would overflow, CD_ERR_NOMEM. */
cd_err jsonw_object(const struct jsonw_field *fields, size_t n, uint8_t **out, size_t *out_len);

/* The length of s as a JSON string body (without the quotes), escaped. */
size_t jsonw_escaped_len(const char *s, size_t len);

/* Writes the escaped s into dst (jsonw_escaped_len(s, len) bytes); returns the
 * end of what it wrote. */
char *jsonw_escape(char *dst, const char *s, size_t len);

#endif
