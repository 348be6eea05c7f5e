/* validate.h: the rules for untrusted input at the edge. Pure functions. */
#ifndef CONFIDOC_VALIDATE_H
#define CONFIDOC_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VALIDATE_USERNAME_MAX 64
#define VALIDATE_PASSWORD_MIN 8
#define VALIDATE_PASSWORD_MAX 1024
#define VALIDATE_CTYPE_MAX 255

/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool validate_utf8(const char *s, size_t len);
/* Usernames: 1 to 64 characters of [A-Za-z0-9._@-]. */
bool validate_username(const char *s, size_t len);
/* Passwords: 8 to 1024 bytes of valid UTF-8 without NUL. */
bool validate_password(const char *s, size_t len);
/* A record id as text: 1 to 64 decimal digits (no sign, no spaces), value in
 * [0, 2^63-1]; leading zeros allowed ("031" is 31). */
bool validate_record_id_text(const char *s, size_t len, int64_t *out);
/* A media type as stored for binary documents: type "/" subtype with
 * optional parameters, printable ASCII only, at most 255 bytes. */
bool validate_content_type(const char *s, size_t len);
/* A pre-scan of a JSON text, before a parser allocates anything for it: false
 * when its arrays and objects nest deeper than max_depth, or when it may hold
 * more than max_values values. Outside strings (escapes honoured) it counts
 * depth by '[' and '{', and values as 1 + brackets opened + commas, an upper
 * bound on the values of any text a parser accepts. Not a validator: malformed
 * text may pass, and is the parser's to refuse. */
bool validate_json_shape(const char *s, size_t len, unsigned max_depth, size_t max_values);

/* validate_json_flat (json_flat.c): a one-pass reader of flat JSON objects,
 * the fast path of the document routes' bodies. True, with the members in
 * m[0..*n), only for a text that json_loadb(JSON_REJECT_DUPLICATES) accepts
 * as the same object: one object of at most VALIDATE_JSON_FLAT_MAX members,
 * distinct keys without escapes, values strings (valid UTF-8, no control
 * character, no \u escape; the other escapes allowed) or integers of 1 to 18
 * digits without sign. False for every other text, valid or not: the caller
 * then parses it in full. Pointers are into s; nothing is allocated. */
#define VALIDATE_JSON_FLAT_MAX 8

enum validate_json_kind { VALIDATE_JSON_STRING, VALIDATE_JSON_INTEGER };

struct validate_json_member {
    const char *key; /* raw = decoded: no escapes */
    size_t key_len;
    const char *str; /* VALIDATE_JSON_STRING: the raw body, escapes as written */
    size_t str_len;
    uint64_t num; /* VALIDATE_JSON_INTEGER: < 10^18 */
    enum validate_json_kind kind;
    bool escaped; /* str holds escapes: decode with validate_json_unescape */
};

bool validate_json_flat(const char *s, size_t len, struct validate_json_member *m, size_t cap,
                        size_t *n);
/* Decodes the raw body of a string validate_json_flat accepted into out (at
 * least len bytes); returns the decoded length (<= len). */
size_t validate_json_unescape(const char *s, size_t len, char *out);

#endif
