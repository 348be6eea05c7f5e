/* fuzz_rest.c: the CAS worker's request parsing: casd_rest_parse on an
 * arbitrary byte stream, and casd_put_body_parse on the body of an accepted
 * upload (or on the whole input when the first byte is '{').
 *
 * Nothing may crash or leak; a refusal is a 4xx status with a detail; an
 * accepted request consumed at most the input and names a route whose names
 * are valid (the parent's decoder would accept them); a parsed upload holds a
 * NUL-free text within its bound and at most CASD_IPC_MAX_SIGS signatures. */
#include "fuzz_common.h"

#include "casd/rest.h"

static void check_name(const char *s, int upper)
{
    size_t n = strlen(s);
    FUZZ_CHECK(n >= 1 && n <= CASD_IPC_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
                   s[i] == '-' || (upper && s[i] >= 'A' && s[i] <= 'Z'));
}

static void check_body(const char *p, size_t len)
{
    static struct casd_put_body b;
    cd_err rc = casd_put_body_parse(p, len, &b);
    FUZZ_CHECK(rc == CD_OK || rc == CD_ERR_INVALID || rc == CD_ERR_TOO_LARGE || rc == CD_ERR_NOMEM);
    if (rc == CD_OK) {
        FUZZ_CHECK(b.session != NULL && b.session_len <= CASD_IPC_TEXT_MAX);
        FUZZ_CHECK(strlen(b.session) == b.session_len);
        FUZZ_CHECK(b.nsigs <= CASD_IPC_MAX_SIGS);
        for (size_t i = 0; i < b.nsigs; i++)
            FUZZ_CHECK(b.sigs[i].public_key_len <= CASD_IPC_PUBKEY_MAX &&
                       b.sigs[i].signature_len <= CASD_IPC_SIG_MAX);
    } else {
        FUZZ_CHECK(b.session == NULL);
    }
    casd_put_body_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct casd_rest_req req;
    size_t used = 0;
    int status = 0;
    const char *detail = NULL;
    char *copy = fuzz_strndup(data, size);

    if (copy == NULL)
        return 0;
    if (size > 0 && data[0] == '{') {
        check_body(copy, size);
        free(copy);
        return 0;
    }
    enum casd_rest_result r = casd_rest_parse(copy, size, &req, &used, &status, &detail);
    FUZZ_CHECK(r == CASD_REST_MORE || r == CASD_REST_DONE || r == CASD_REST_ERROR);
    if (r == CASD_REST_ERROR)
        FUZZ_CHECK(status >= 400 && status <= 499 && detail != NULL);
    if (r == CASD_REST_DONE) {
        FUZZ_CHECK(used <= size);
        switch (req.route) {
        case CASD_ROUTE_VALUE:
            check_name(req.session, 0);
            check_name(req.secret, 1);
            break;
        case CASD_ROUTE_SESSION_GET:
            check_name(req.session, 0);
            break;
        case CASD_ROUTE_SESSION_PUT:
        case CASD_ROUTE_NODE_HELLO:
        case CASD_ROUTE_NODE_MEASURE:
            FUZZ_CHECK(req.body >= copy && req.body + req.body_len <= copy + used);
            FUZZ_CHECK(req.body_len <= CASD_REST_BODY_MAX);
            check_body(req.body, req.body_len);
            break;
        default:
            FUZZ_CHECK(0);
        }
    }
    free(copy);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
