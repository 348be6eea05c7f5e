/* router.c: maps (method, path) to a route id; pure, no allocation. */
#include "router/router.h"

#include <stdio.h>
#include <stdbool.h>
#include <string.h>

/* One path shape and the methods each route accepts on it. */
struct route_def {
    const char *pattern;
    /* Path split: literal prefix segments, an optional {record_id}, then an
     * optional literal suffix segment. */
    const char *prefix; /* e.g. "/documents/" (with the parameter) or the whole path */
    int has_param;
    const char *suffix; /* after the parameter, e.g. "/content"; "" if none */
    struct {
        const char *method;
        enum route_id id;
    } methods[3];
};

static const struct route_def routes[] = {
    {"/healthz", "/healthz", 0, "", {{"GET", ROUTE_HEALTHZ}}},
    {"/readyz", "/readyz", 0, "", {{"GET", ROUTE_READYZ}}},
    {"/users/create_account",
     "/users/create_account",
     0,
     "",
     {{"GET", ROUTE_CREATE_ACCOUNT_GET}, {"POST", ROUTE_CREATE_ACCOUNT_POST}}},
    {"/users/me", "/users/me", 0, "", {{"GET", ROUTE_ME_GET}, {"DELETE", ROUTE_ME_DELETE}}},
    {"/users/me/password", "/users/me/password", 0, "", {{"POST", ROUTE_ME_PASSWORD}}},
    {"/users/recover", "/users/recover", 0, "", {{"POST", ROUTE_RECOVER}}},
    {"/users/me/rotate-key", "/users/me/rotate-key", 0, "", {{"POST", ROUTE_ME_ROTATE_KEY}}},
    {"/auth/login", "/auth/login", 0, "", {{"POST", ROUTE_AUTH_LOGIN}}},
    {"/auth/logout", "/auth/logout", 0, "", {{"POST", ROUTE_AUTH_LOGOUT}}},
    {"/users/me/totp",
     "/users/me/totp",
     0,
     "",
     {{"POST", ROUTE_ME_TOTP_POST}, {"DELETE", ROUTE_ME_TOTP_DELETE}}},
    {"/users/me/totp/confirm", "/users/me/totp/confirm", 0, "", {{"POST", ROUTE_ME_TOTP_CONFIRM}}},
    {"/users/me/app-passwords",
     "/users/me/app-passwords",
     0,
     "",
     {{"GET", ROUTE_ME_APPPW_GET}, {"POST", ROUTE_ME_APPPW_POST}}},
    {"/users/me/app-passwords/{id}",
     "/users/me/app-passwords/",
     1,
     "",
     {{"DELETE", ROUTE_ME_APPPW_DELETE}}},
    {"/documents/create_document",
     "/documents/create_document",
     0,
     "",
     {{"POST", ROUTE_CREATE_DOCUMENT}}},
    {"/documents", "/documents", 0, "", {{"GET", ROUTE_DOCUMENTS}}},
    {"/documents/{record_id}",
     "/documents/",
     1,
     "",
     {{"GET", ROUTE_DOCUMENT_GET}, {"PUT", ROUTE_DOCUMENT_PUT}, {"DELETE", ROUTE_DOCUMENT_DELETE}}},
    {"/documents/{record_id}/content",
     "/documents/",
     1,
     "/content",
     {{"GET", ROUTE_DOCUMENT_CONTENT}}},
};

#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* Matches path against r. On a match with a parameter, reports where the
 * parameter segment starts and how long it is. */
static bool path_matches(const struct route_def *r, const char *path, const char **param,
                         size_t *param_len)
{
    size_t plen = strlen(r->prefix);
    const char *seg;
    const char *end;

    if (!r->has_param)
        return strcmp(path, r->prefix) == 0;
    if (strncmp(path, r->prefix, plen) != 0)
        return false;
    seg = path + plen;
    end = strchr(seg, '/');
    if (end == NULL)
        end = seg + strlen(seg);
    if (end == seg)
        return false; /* empty segment */
    if (strcmp(end, r->suffix) != 0)
        return false;
    *param = seg;
    *param_len = (size_t)(end - seg);
    return true;
}

static void fill_match(const struct route_def *r, enum route_id id, const char *param,
                       size_t param_len, struct route_match *m)
{
    memset(m, 0, sizeof(*m));
    m->id = id;
    m->pattern = r->pattern;
    if (r->has_param) {
        if (param_len < sizeof(m->param)) {
            memcpy(m->param, param, param_len);
            m->param[param_len] = '\0';
        } else {
            m->param_too_long = 1;
        }
    }
}

enum router_status router_match(const char *method, const char *path, struct route_match *m,
                                char *allow, size_t allowlen)
{
    const struct route_def *hit = NULL;
    const char *param = NULL;
    size_t param_len = 0;

    if (method == NULL || path == NULL || m == NULL)
        return ROUTER_NOT_FOUND;
    /* Literal routes first: "/documents/create_document" must not be taken
     * as "/documents/{record_id}" (order of the table guarantees it). */
    for (size_t i = 0; i < N_ROUTES && hit == NULL; i++) {
        if (path_matches(&routes[i], path, &param, &param_len))
            hit = &routes[i];
    }
    if (hit == NULL)
        return ROUTER_NOT_FOUND;

    for (size_t k = 0; k < sizeof(hit->methods) / sizeof(hit->methods[0]); k++) {
        if (hit->methods[k].method == NULL)
            break;
        if (strcmp(method, hit->methods[k].method) != 0)
            continue;
        fill_match(hit, hit->methods[k].id, param, param_len, m);
        return ROUTER_OK;
    }

    m->pattern = hit->pattern;
    if (allow != NULL && allowlen > 0) {
        size_t n = 0;
        allow[0] = '\0';
        for (size_t k = 0; k < sizeof(hit->methods) / sizeof(hit->methods[0]); k++) {
            int r;
            if (hit->methods[k].method == NULL)
                break;
            r = snprintf(allow + n, allowlen - n, "%s%s", n > 0 ? ", " : "",
                         hit->methods[k].method);
            if (r < 0 || (size_t)r >= allowlen - n) {
                allow[n] = '\0';
                break;
            }
            n += (size_t)r;
        }
    }
    return ROUTER_METHOD_NOT_ALLOWED;
}

enum router_status router_fill(enum route_id id, const char *path, struct route_match *m)
{
    const char *param = NULL;
    size_t param_len = 0;

    if (path == NULL || m == NULL)
        return ROUTER_NOT_FOUND;
    for (size_t i = 0; i < N_ROUTES; i++) {
        for (size_t k = 0; k < sizeof(routes[i].methods) / sizeof(routes[i].methods[0]); k++) {
            if (routes[i].methods[k].method == NULL)
                break;
            if (routes[i].methods[k].id != id)
                continue;
            if (!path_matches(&routes[i], path, &param, &param_len))
                return ROUTER_NOT_FOUND;
            fill_match(&routes[i], id, param, param_len, m);
            return ROUTER_OK;
        }
    }
    return ROUTER_NOT_FOUND;
}

const char *router_pattern(size_t i)
{
    return i < N_ROUTES ? routes[i].pattern : NULL;
}
