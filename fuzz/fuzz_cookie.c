/* fuzz_cookie.c: auth_parse_session_cookie on an arbitrary Cookie header value.
 *
 * Invariants: on failure the token is left untouched; on success the header
 * names the session cookie, and its value, re-encoded, is a 43-character
 * base64url text found in the header (the parser returned what was sent);
 * the same header with another cookie put in front parses to the same token. */
#include "fuzz_common.h"

#include "auth/auth.h"
#include "common/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t tok[AUTH_TOKEN_BYTES], untouched[AUTH_TOKEN_BYTES], again[AUTH_TOKEN_BYTES];
    char text[AUTH_TOKEN_STRLEN];
    char *header = fuzz_strndup(data, size), *prefixed = NULL;
    cd_err rc;

    if (header == NULL)
        return 0;
    memset(tok, 0x5a, sizeof(tok));
    memset(untouched, 0x5a, sizeof(untouched));
    rc = auth_parse_session_cookie(header, tok);
    if (rc != CD_OK) {
        FUZZ_CHECK(rc == CD_ERR_NOT_FOUND || rc == CD_ERR_INVALID);
        FUZZ_CHECK(memcmp(tok, untouched, sizeof(tok)) == 0);
        goto out;
    }
    FUZZ_CHECK(strlen(header) <= AUTH_COOKIE_HEADER_MAX);
    FUZZ_CHECK(strstr(header, AUTH_SESSION_COOKIE "=") != NULL);
    FUZZ_CHECK(codec_b64url_encode(tok, sizeof(tok), text, sizeof(text)) == CD_OK);
    FUZZ_CHECK(strstr(header, text) != NULL);
    prefixed = malloc(size + 16);
    if (prefixed == NULL)
        goto out;
    memcpy(prefixed, "theme=dark; ", 12);
    memcpy(prefixed + 12, header, size + 1);
    if (strlen(prefixed) <= AUTH_COOKIE_HEADER_MAX && header[0] != ' ' && header[0] != '\t') {
        FUZZ_CHECK(auth_parse_session_cookie(prefixed, again) == CD_OK);
        FUZZ_CHECK(memcmp(again, tok, sizeof(tok)) == 0);
    }
out:
    free(prefixed);
    free(header);
    return 0;
}
