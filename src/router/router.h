/* router.h: maps a method and path to a route. Pure: no I/O, no allocation. */
#ifndef CONFIDOC_ROUTER_H
#define CONFIDOC_ROUTER_H

#include <stddef.h>

/* One id per (path, method): the handlers' route table (handlers/dispatch.c)
 * is indexed by it, so what a request gets is decided in one place. */
enum route_id {
    ROUTE_NONE = 0,
    ROUTE_HEALTHZ,             /* GET /healthz */
    ROUTE_READYZ,              /* GET /readyz */
    ROUTE_CREATE_ACCOUNT_GET,  /* GET /users/create_account */
    ROUTE_CREATE_ACCOUNT_POST, /* POST /users/create_account */
    ROUTE_ME_GET,              /* GET /users/me */
    ROUTE_ME_DELETE,           /* DELETE /users/me */
    ROUTE_ME_PASSWORD,         /* POST /users/me/password */
    ROUTE_RECOVER,             /* POST /users/recover */
    ROUTE_CREATE_DOCUMENT,     /* POST /documents/create_document */
    ROUTE_DOCUMENTS,           /* GET /documents */
    ROUTE_DOCUMENT_GET,        /* GET /documents/{record_id} */
    ROUTE_DOCUMENT_PUT,        /* PUT /documents/{record_id} */
    ROUTE_DOCUMENT_DELETE,     /* DELETE /documents/{record_id} */
    ROUTE_DOCUMENT_CONTENT,    /* GET /documents/{record_id}/content */
    ROUTE_ME_ROTATE_KEY,       /* POST /users/me/rotate-key */
    ROUTE_AUTH_LOGIN,          /* POST /auth/login */
    ROUTE_AUTH_LOGOUT,         /* POST /auth/logout */
    ROUTE_ME_TOTP_POST,        /* POST /users/me/totp */
    ROUTE_ME_TOTP_DELETE,      /* DELETE /users/me/totp */
    ROUTE_ME_TOTP_CONFIRM,     /* POST /users/me/totp/confirm */
    ROUTE_ME_APPPW_GET,        /* GET /users/me/app-passwords */
    ROUTE_ME_APPPW_POST,       /* POST /users/me/app-passwords */
    ROUTE_ME_APPPW_DELETE,     /* DELETE /users/me/app-passwords/{id} */
    ROUTE__COUNT
};

enum router_status {
    ROUTER_OK = 0,
    ROUTER_NOT_FOUND,          /* no route has this path: 404 */
    ROUTER_METHOD_NOT_ALLOWED, /* the path exists, not with this method: 405 */
};

#define ROUTER_PARAM_MAX 64

struct route_match {
    enum route_id id;
    const char *pattern;          /* e.g. "/documents/{record_id}", for logs */
    char param[ROUTER_PARAM_MAX]; /* the {record_id} or {id} segment as sent (unvalidated) */
    int param_too_long;           /* the segment did not fit in param */
};

/* Matches method and path (no query string). On ROUTER_OK fills m. On
 * ROUTER_METHOD_NOT_ALLOWED writes the allowed methods ("GET, PUT, DELETE")
 * to allow and sets m->pattern. A path segment longer than ROUTER_PARAM_MAX-1
 * in the parameter position still routes, with m->param truncated to "" and
 * m->param_too_long set, so the caller answers 422. HEAD is not routed. */
enum router_status router_match(const char *method, const char *path, struct route_match *m,
                                char *allow, size_t allowlen);

/* Fills m as router_match did when it returned ROUTER_OK with this id for
 * this path, without trying the other routes (the id is known from an
 * earlier match of the same request). ROUTER_NOT_FOUND if the path does not
 * have the id's shape. */
enum router_status router_fill(enum route_id id, const char *path, struct route_match *m);

/* The i-th path pattern of the table (the very string router_match puts in
 * m->pattern), NULL past the last: for metrics labels fixed at start. */
const char *router_pattern(size_t i);

#endif
