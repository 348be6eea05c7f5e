/* policy_load.c: the policy module's I/O: a directory of policy files, each file
 * (bounded), and the environment for ${VAR}; parsing and linking are pure
 * (policy_yaml.c, policy_link.c). */
#include "cas/policy_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"

/* ${NAME} not given as a --var pair: CONFIDOC_CAS_VAR_<NAME>. */
static const char *env_var(const char *name)
{
    char env[sizeof(POLICY_VAR_ENV_PREFIX) + POLICY_VAR_NAME_MAX];
    snprintf(env, sizeof(env), "%s%s", POLICY_VAR_ENV_PREFIX, name);
    return getenv(env);
}

static cd_err read_bounded(const char *path, char **out, size_t *outlen, struct cd_diag *d)
{
    struct file_read_opts opts = {.max = POLICY_FILE_MAX, .flags = 0, .mem = NULL};
    struct file_data f;
    cd_err err = file_read(path, &opts, &f);

    switch (err) {
    case CD_OK:
        *out = f.data; /* malloc'ed; the caller frees it */
        *outlen = f.len;
        return CD_OK;
    case CD_ERR_TOO_LARGE:
        policy_diag_add(d, path, 0, NULL, "larger than %zu bytes", POLICY_FILE_MAX);
        return CD_ERR_INVALID;
    case CD_ERR_NOMEM:
        return err;
    case CD_ERR_CONFIG:
        policy_diag_add(d, path, 0, NULL, "%s", f.why);
        return CD_ERR_IO;
    default:
        policy_diag_add(d, path, 0, NULL, "%s: %s", f.why, strerror(errno));
        return CD_ERR_IO;
    }
}

static cd_err load_one(const char *dir, const char *fname, const struct policy_vars *vars,
                       struct policy **out, struct cd_diag *d)
{
    cd_err err = CD_OK;
    char *buf = NULL;
    size_t len = 0;
    char base[NAME_MAX + 1];

    size_t flen = strlen(dir) + strlen(fname) + 2;
    char *file = malloc(flen);
    if (file == NULL)
        return CD_ERR_NOMEM;
    snprintf(file, flen, "%s/%s", dir, fname);
    snprintf(base, sizeof(base), "%s", fname);
    char *dot = strrchr(base, '.');
    if (dot != NULL)
        *dot = '\0';
    err = read_bounded(file, &buf, &len, d);
    if (err == CD_OK)
        err = policy_yaml_parse(file, base, buf, len, vars, env_var, out, d);
    free(buf);
    free(file);
    return err;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of dir's *.yaml files (not hidden ones), sorted; *nnames of them in names. */
static cd_err list_dir(const char *dir, char **names, size_t *nnames, struct cd_diag *diag)
{
    cd_err err = CD_OK;
    DIR *dh = opendir(dir);

    if (dh == NULL) {
        policy_diag_add(diag, dir, 0, NULL, "cannot open policy directory: %s", strerror(errno));
        return CD_ERR_IO;
    }
    for (struct dirent *de; (de = readdir(dh)) != NULL;) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n < 6 || strcmp(de->d_name + n - 5, ".yaml") != 0)
            continue;
        if (*nnames >= POLICY_MAX_POLICIES) {
            policy_diag_add(diag, dir, 0, NULL, "more than %d policy files", POLICY_MAX_POLICIES);
            err = CD_ERR_INVALID;
            goto out;
        }
        names[*nnames] = strdup(de->d_name);
        if (names[*nnames] == NULL) {
            err = CD_ERR_NOMEM;
            goto out;
        }
        (*nnames)++;
    }
    if (*nnames == 0) {
        policy_diag_add(diag, dir, 0, NULL, "no *.yaml policy file");
        err = CD_ERR_INVALID;
        goto out;
    }
    qsort(names, *nnames, sizeof(names[0]), cmp_names);
out:
    closedir(dh);
    return err;
}

cd_err policy_set_load(const char *dir, const struct policy_vars *vars, struct policy_set **out,
                       struct cd_diag *diag)
{
    cd_err err = CD_OK;
    struct policy_set *set = NULL;
    char *names[POLICY_MAX_POLICIES + 1];
    size_t nnames = 0;
    bool invalid = false;

    if (dir == NULL || out == NULL || diag == NULL)
        return CD_ERR_INVALID;
    const unsigned before = diag->count;
    set = calloc(1, sizeof(*set));
    if (set == NULL)
        return CD_ERR_NOMEM;
    err = list_dir(dir, names, &nnames, diag);
    if (err != CD_OK)
        goto out;
    for (size_t i = 0; i < nnames; i++) {
        struct policy *p = NULL;
        err = load_one(dir, names[i], vars, &p, diag);
        if ((err = policy_set_take(set, err, p, diag, &invalid)) != CD_OK)
            goto out;
    }
    if (invalid) {
        err = CD_ERR_INVALID;
        goto out;
    }
    err = policy_set_link(set, diag, before);
    if (err != CD_OK)
        goto out;
    *out = set;
    set = NULL;
out:
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    policy_set_free(set);
    return err;
}
