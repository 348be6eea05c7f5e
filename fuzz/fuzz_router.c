/* fuzz_router.c: router_match on an arbitrary method and path.
 *
 * Input: "METHOD\nPATH" (no newline: the whole input is the path, method GET).
 * Invariants: a match names a real route with its pattern, a NUL-terminated
 * parameter that is exactly the path segment (or "" and param_too_long when it
 * does not fit), and only for a method that route accepts; a 405 names the
 * pattern and an Allow list without the method, truncated safely to any
 * buffer size; the answer does not depend on the output buffers. */
#include "fuzz_common.h"

#include "router/router.h"

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};

static int is_routed_method(const char *m)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(m, methods[i]) == 0)
            return 1;
    }
    return 0;
}

/* True when method appears as one item of a ", "-separated allow list. */
static int allow_lists(const char *allow, const char *method)
{
    size_t n = strlen(method);
    const char *p = allow;

    while (*p != '\0') {
        const char *e = strstr(p, ", ");
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, method, n) == 0)
            return 1;
        if (e == NULL)
            break;
        p = e + 2;
    }
    return 0;
}

static void check_match(const char *method, const char *path, const struct route_match *m)
{
    const char *brace;

    FUZZ_CHECK(m->id > ROUTE_NONE && m->id < ROUTE__COUNT);
    FUZZ_CHECK(m->pattern != NULL && m->pattern[0] == '/');
    FUZZ_CHECK(memchr(m->param, '\0', sizeof(m->param)) != NULL);
    FUZZ_CHECK(is_routed_method(method));
    brace = strchr(m->pattern, '{');
    if (brace == NULL) {
        /* A literal route matches its pattern exactly and has no parameter. */
        FUZZ_CHECK(strcmp(path, m->pattern) == 0);
        FUZZ_CHECK(m->param[0] == '\0' && !m->param_too_long);
        return;
    }
    /* "/documents/{record_id}[suffix]": the path is prefix, segment, suffix. */
    const char *close = strchr(brace, '}');
    size_t plen = (size_t)(brace - m->pattern);
    const char *suffix;
    const char *seg;
    size_t seglen;

    FUZZ_CHECK(close != NULL);
    suffix = close + 1;
    FUZZ_CHECK(strncmp(path, m->pattern, plen) == 0);
    seg = path + plen;
    seglen = strcspn(seg, "/");
    FUZZ_CHECK(seglen > 0);
    FUZZ_CHECK(strcmp(seg + seglen, suffix) == 0);
    if (m->param_too_long) {
        FUZZ_CHECK(m->param[0] == '\0');
        FUZZ_CHECK(seglen >= ROUTER_PARAM_MAX);
    } else {
        FUZZ_CHECK(seglen < ROUTER_PARAM_MAX);
        FUZZ_CHECK(strlen(m->param) == seglen && memcmp(m->param, seg, seglen) == 0);
    }
    /* The literal /documents/create_document is never a record id. */
    FUZZ_CHECK(strcmp(path, "/documents/create_document") != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = fuzz_strndup(data, size);
    const char *method = "GET";
    const char *path;
    char *nl;
    struct route_match m, m2;
    char allow[64];
    enum router_status st, st2;

    if (buf == NULL)
        return 0;
    path = buf;
    nl = strchr(buf, '\n');
    if (nl != NULL) {
        *nl = '\0';
        method = buf;
        path = nl + 1;
    }

    memset(&m, 0xa5, sizeof(m)); /* garbage in: outputs must not rely on it */
    memset(allow, 0xa5, sizeof(allow));
    st = router_match(method, path, &m, allow, sizeof(allow));
    switch (st) {
    case ROUTER_OK:
        check_match(method, path, &m);
        break;
    case ROUTER_METHOD_NOT_ALLOWED:
        FUZZ_CHECK(m.pattern != NULL && m.pattern[0] == '/');
        FUZZ_CHECK(memchr(allow, '\0', sizeof(allow)) != NULL);
        FUZZ_CHECK(allow[0] != '\0');
        FUZZ_CHECK(!allow_lists(allow, method));
        break;
    case ROUTER_NOT_FOUND:
        break;
    default:
        FUZZ_CHECK(!"unknown router status");
    }

    /* Same answer with no Allow buffer, and with every small exact-size one
     * (heap, so ASan sees a write past its end). */
    memset(&m2, 0, sizeof(m2));
    st2 = router_match(method, path, &m2, NULL, 0);
    FUZZ_CHECK(st2 == st);
    if (st == ROUTER_OK) {
        FUZZ_CHECK(m2.id == m.id && m2.pattern == m.pattern);
        FUZZ_CHECK(strcmp(m2.param, m.param) == 0 && m2.param_too_long == m.param_too_long);
        /* router_fill with the id found (what dispatch does with classify's
         * tag) gives the same match. */
        memset(&m2, 0x5a, sizeof(m2));
        FUZZ_CHECK(router_fill(m.id, path, &m2) == ROUTER_OK);
        FUZZ_CHECK(m2.id == m.id && m2.pattern == m.pattern);
        FUZZ_CHECK(strcmp(m2.param, m.param) == 0 && m2.param_too_long == m.param_too_long);
    }
    /* router_fill accepts only a path of its id's shape (the literal
     * /documents/create_document has the shape of a record id too: dispatch
     * never asks, it fills the id router_match found). */
    for (int id = ROUTE_NONE; id <= ROUTE__COUNT; id++) {
        if (router_fill((enum route_id)id, path, &m2) == ROUTER_OK &&
            strcmp(path, "/documents/create_document") != 0) {
            FUZZ_CHECK(m2.id == (enum route_id)id);
            check_match("GET", path, &m2);
        }
    }
    if (st == ROUTER_METHOD_NOT_ALLOWED) {
        for (size_t cap = 1; cap <= strlen(allow) + 1; cap++) {
            char *small = malloc(cap);
            if (small == NULL)
                break;
            memset(small, 0xa5, cap);
            st2 = router_match(method, path, &m2, small, cap);
            FUZZ_CHECK(st2 == st);
            FUZZ_CHECK(memchr(small, '\0', cap) != NULL);
            /* A truncated list is a prefix made of whole items. */
            FUZZ_CHECK(strncmp(small, allow, strlen(small)) == 0);
            size_t k = strlen(small);
            FUZZ_CHECK(k == 0 || allow[k] == '\0' || allow[k] == ',');
            free(small);
        }
    }
    free(buf);
    return 0;
}
