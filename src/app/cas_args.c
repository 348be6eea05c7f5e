/* cas_args.c: command-line pieces that several confidoc-cas commands share
 * (--var NAME=VALUE lists, HOST:PORT, key hashes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cas_cmds.h"

bool cas_vars_add(struct cas_vars *v, const char *arg)
{
    const char *eq = strchr(arg, '=');

    if (eq == NULL || eq == arg || v->n >= CAS_MAX_VARS) {
        fprintf(stderr, "confidoc-cas: --var expects NAME=VALUE (at most %d)\n", CAS_MAX_VARS);
        return false;
    }
    if ((v->owned[v->n] = strndup(arg, (size_t)(eq - arg))) == NULL) {
        fprintf(stderr, "confidoc-cas: out of memory\n");
        return false;
    }
    v->names[v->n] = v->owned[v->n];
    v->values[v->n] = eq + 1;
    v->n++;
    return true;
}

struct policy_vars cas_vars_view(const struct cas_vars *v)
{
    return (struct policy_vars){v->names, v->values, v->n};
}

void cas_vars_free(struct cas_vars *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->owned[i]);
    v->n = 0;
}

cd_err cas_split_hostport(char *s, const char **host, const char **port)
{
    char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0')
        return CD_ERR_INVALID;
    *colon = '\0';
    *port = colon + 1;
    if (s[0] == '[' && colon[-1] == ']') {
        colon[-1] = '\0';
        s++;
    }
    *host = s;
    return CD_OK;
}

bool cas_is_hash(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (const char *c = s; *c != '\0'; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}
