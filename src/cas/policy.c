/* policy.c: the policy module's shared vocabulary (diagnostics, names, the rules for
 * names and paths, look-ups, freeing) and policy_parse_buffer. Pure: no I/O. */
#include "cas/policy_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

/* ---- diagnostics ---- */

/* "FILE:LINE: secret NAME: message" as one cd_diag problem; cd_diag turns the
 * control bytes of quoted policy text into '?' (found by fuzz_policy). */
void policy_diag_vadd(struct cd_diag *d, const char *file, int line, const char *secret,
                      const char *fmt, va_list ap)
{
    char msg[1024];
    char head[512];

    /* ap was started by the caller; the analyzer cannot see across that. */
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (line > 0)
        snprintf(head, sizeof(head), "%s:%d: ", file != NULL ? file : "-", line);
    else
        snprintf(head, sizeof(head), "%s: ", file != NULL ? file : "-");
    if (secret != NULL)
        cd_diag_add(d, "%ssecret %s: %s", head, secret, msg);
    else
        cd_diag_add(d, "%s%s", head, msg);
}

void policy_diag_add(struct cd_diag *d, const char *file, int line, const char *secret,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    policy_diag_vadd(d, file, line, secret, fmt, ap);
    va_end(ap);
}

/* ---- names ---- */

const char *policy_kind_name(enum policy_kind k)
{
    switch (k) {
    case POLICY_KIND_PRIVATE_KEY:
        return "private-key";
    case POLICY_KIND_X509_CA:
        return "x509-ca";
    case POLICY_KIND_X509:
        return "x509";
    case POLICY_KIND_SYMMETRIC:
        return "symmetric-key";
    case POLICY_KIND_IMPORT:
        return "import";
    }
    return "?";
}

const char *policy_part_name(enum policy_part p)
{
    static const char *const names[] = {
        [POLICY_PART_CRT] = "crt",         [POLICY_PART_CHAIN] = "chain",
        [POLICY_PART_KEY] = "key",         [POLICY_PART_CA] = "ca",
        [POLICY_PART_KEYRING] = "keyring", [POLICY_PART_MARIADB_KEYFILE] = "mariadb_keyfile",
        [POLICY_PART_HEX] = "hex",
    };
    if ((size_t)p >= sizeof(names) / sizeof(names[0]))
        return "?";
    return names[p];
}

bool policy_part_parse(const char *s, size_t n, enum policy_part *out)
{
    for (int p = POLICY_PART_CRT; p <= POLICY_PART_HEX; p++) {
        const char *name = policy_part_name((enum policy_part)p);
        if (strlen(name) == n && memcmp(name, s, n) == 0) {
            *out = (enum policy_part)p;
            return true;
        }
    }
    return false;
}

bool policy_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > POLICY_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool secret_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bool policy_valid_secret_name(const char *s, size_t n)
{
    if (n == 0 || n > POLICY_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!secret_name_char(s[i]))
            return false;
    return true;
}

bool policy_valid_dns(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool wild = c == '*' && i == 0 && n > 2 && s[1] == '.';
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || wild))
            return false;
    }
    return true;
}

bool policy_valid_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

bool policy_valid_common_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

bool policy_valid_file_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* A relative path of names (as policy_valid_file_name, but a leading dot is fine
 * except "." and ".."), outside the reserved top directories. */
const char *policy_path_problem(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > POLICY_PATH_REL_MAX)
        return "must be 1 to 255 bytes";
    if (s[0] == '/')
        return "must be relative to the state directory";
    const char *p = s;
    while (*p != '\0') {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return "must not contain empty, '.' or '..' components";
        for (size_t i = 0; i < len; i++) {
            char c = p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.'))
                return "may contain only letters, digits, '-', '_', '.' and '/'";
        }
        if (p == s &&
            ((len == 3 && memcmp(p, "cas", 3) == 0) || (len == 6 && memcmp(p, "public", 6) == 0)))
            return "must not be under cas/ or public/ (reserved)";
        if (slash == NULL)
            break;
        p = slash + 1;
        if (*p == '\0')
            return "must name a file, not a directory";
    }
    return NULL;
}

/* ---- look-ups and freeing ---- */

struct policy *policy_set_find(const struct policy_set *set, const char *name)
{
    for (size_t i = 0; i < set->npolicies; i++)
        if (strcmp(set->policies[i]->name, name) == 0)
            return set->policies[i];
    return NULL;
}

struct policy_secret *policy_find_secret(const struct policy *p, const char *name)
{
    for (size_t i = 0; i < p->nsecrets; i++)
        if (strcmp(p->secrets[i]->name, name) == 0)
            return p->secrets[i];
    return NULL;
}

const struct policy_secret *policy_secret_origin(const struct policy_secret *s)
{
    size_t guard = 0;
    while (s->kind == POLICY_KIND_IMPORT && s->import_ref != NULL &&
           guard++ < (size_t)POLICY_MAX_POLICIES * 2 * POLICY_MAX_SECRETS)
        s = s->import_ref;
    return s;
}

void policy_set_free(struct policy_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->npolicies; i++)
        policy_free(set->policies[i]);
    free(set);
}

void policy_secret_free(struct policy_secret *s)
{
    if (s == NULL)
        return;
    free(s->name);
    free(s->private_key);
    free(s->issuer);
    free(s->common_name);
    for (size_t i = 0; i < s->ndns; i++)
        free(s->dns[i]);
    for (size_t i = 0; i < s->nip; i++)
        free(s->ip[i]);
    for (size_t i = 0; i < s->nexport; i++)
        free(s->export_to[i]);
    free(s->public_name);
    free(s->import_policy);
    free(s->import_secret);
    free(s);
}

void policy_free(struct policy *p)
{
    if (p == NULL)
        return;
    free(p->file);
    free(p->name);
    free(p->owner);
    free(p->predecessor);
    free(p->measure.user);
    free(p->measure.mount);
    for (size_t i = 0; i < p->measure.nconfig; i++)
        free(p->measure.config[i].path);
    for (size_t i = 0; i < p->nsecrets; i++)
        policy_secret_free(p->secrets[i]);
    for (size_t i = 0; i < p->nfiles; i++) {
        free(p->files[i].path);
        free(p->files[i].content);
    }
    free(p);
}

/* ---- one policy from a buffer ---- */

cd_err policy_parse_buffer(const char *name, const char *buf, size_t len,
                           const struct policy_vars *vars, struct policy_set **out,
                           struct cd_diag *diag)
{
    char base[NAME_MAX + 1];
    struct policy_set *set = NULL;
    struct policy *p = NULL;
    cd_err err;

    if (name == NULL || (buf == NULL && len > 0) || out == NULL || diag == NULL)
        return CD_ERR_INVALID;
    const unsigned before = diag->count;
    if (len > POLICY_FILE_MAX) {
        policy_diag_add(diag, name, 0, NULL, "larger than %zu bytes", POLICY_FILE_MAX);
        return CD_ERR_INVALID;
    }
    /* The base name without directories and without its last extension, as policy_set_load. */
    const char *slash = strrchr(name, '/');
    snprintf(base, sizeof(base), "%s", slash != NULL ? slash + 1 : name);
    char *dot = strrchr(base, '.');
    if (dot != NULL)
        *dot = '\0';
    set = calloc(1, sizeof(*set));
    if (set == NULL)
        return CD_ERR_NOMEM;
    err = policy_yaml_parse(name, base, buf != NULL ? buf : "", len, vars, NULL, &p, diag);
    if (err != CD_OK)
        goto out;
    set->policies[set->npolicies++] = p;
    err = policy_set_link(set, diag, before);
    if (err != CD_OK)
        goto out;
    *out = set;
    set = NULL;
out:
    policy_set_free(set);
    return err;
}

/* ---- several policies from buffers (the CAS service's sessions) ---- */

cd_err policy_set_take(struct policy_set *set, cd_err err, struct policy *p, struct cd_diag *diag,
                       bool *invalid)
{
    if (err == CD_ERR_INVALID) {
        *invalid = true;
        return CD_OK;
    }
    if (err != CD_OK)
        return err;
    if (policy_set_find(set, p->name) != NULL) {
        policy_diag_add(diag, p->file, p->line, NULL, "policy name '%s' is used twice", p->name);
        *invalid = true;
        policy_free(p);
        return CD_OK;
    }
    set->policies[set->npolicies++] = p;
    return CD_OK;
}

cd_err policy_set_parse_buffers(const char *const *files, const char *const *texts,
                                const size_t *lens, size_t n, const struct policy_vars *vars,
                                bool link, struct policy_set **out, struct cd_diag *diag)
{
    struct policy_set *set = NULL;
    bool invalid = false;
    cd_err err = CD_OK;

    if (files == NULL || texts == NULL || lens == NULL || out == NULL || diag == NULL ||
        n > POLICY_MAX_POLICIES)
        return CD_ERR_INVALID;
    const unsigned before = diag->count;
    set = calloc(1, sizeof(*set));
    if (set == NULL)
        return CD_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        char base[NAME_MAX + 1];
        struct policy *p = NULL;
        if (lens[i] > POLICY_FILE_MAX) {
            policy_diag_add(diag, files[i], 0, NULL, "larger than %zu bytes", POLICY_FILE_MAX);
            invalid = true;
            continue;
        }
        const char *slash = strrchr(files[i], '/');
        snprintf(base, sizeof(base), "%s", slash != NULL ? slash + 1 : files[i]);
        char *dot = strrchr(base, '.');
        if (dot != NULL)
            *dot = '\0';
        err = policy_yaml_parse(files[i], base, texts[i] != NULL ? texts[i] : "", lens[i], vars,
                                NULL, &p, diag);
        if ((err = policy_set_take(set, err, p, diag, &invalid)) != CD_OK)
            goto out;
    }
    err = CD_OK;
    if (invalid) {
        err = CD_ERR_INVALID;
        goto out;
    }
    if (link && (err = policy_set_link(set, diag, before)) != CD_OK)
        goto out;
    *out = set;
    set = NULL;
out:
    policy_set_free(set);
    return err;
}
