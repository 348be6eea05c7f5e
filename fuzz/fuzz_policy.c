/* fuzz_policy.c: policy_parse_buffer on an arbitrary policy file.
 *
 * The input is one policy file named "fuzz.yaml" (the variables of the stack's
 * policies are defined, the environment is not read). Nothing may crash or
 * leak; the answer is CD_OK, CD_ERR_INVALID or CD_ERR_NOMEM; a refusal carries
 * at least one message, and every message names fuzz.yaml and a line of the
 * input; an accepted policy is fully linked (every secret in dependency order,
 * every certificate with its key and issuer, every template reference inside
 * its content and naming a secret of the policy); parsing the same bytes again
 * (from a NUL-terminated copy) gives the same answer and messages. */
#include "fuzz_common.h"

#include <stdbool.h>

#include "cas/policy.h"

#define NAME "fuzz.yaml"

static const char *const var_names[] = {"API_HOST",       "NGINX_HOST", "DB_HOST",
                                        "MEMCACHED_HOST", "API_USER",   "DB_USER",
                                        "MEMCACHED_USER", "NGINX_USER", "X"};
static const char *const var_values[] = {
    "localhost", "localhost", "db.example", "127.0.0.1", "u1", "u2", "u3", "u4", "$$CAS::X.crt$$"};
static const struct policy_vars vars = {var_names, var_values, 9};

/* An upper bound on the lines of the input as YAML counts them: CR, LF and CR LF
 * break lines, and so do NEL, LS and PS (bytes 0x85, 0xa8, 0xa9 of their UTF-8
 * forms, counted alone: a bound, not a count). A message may also name the line
 * after the last one (libyaml's mark at the end of the stream). */
static size_t count_lines(const uint8_t *data, size_t size)
{
    size_t n = 1;
    for (size_t i = 0; i < size; i++)
        if (data[i] == '\n' || data[i] == '\r' || data[i] == 0x85 || data[i] == 0xa8 ||
            data[i] == 0xa9)
            n++;
    return n + 1;
}

/* Every line of the messages reads "fuzz.yaml:LINE: ..." with 1 <= LINE <= max. */
static void check_messages(const struct cd_diag *d, size_t max)
{
    const char *p = d->text;

    FUZZ_CHECK(memchr(d->text, '\0', sizeof(d->text)) != NULL);
    FUZZ_CHECK(strlen(d->text) <= d->len && d->len < sizeof(d->text));
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        char *end = NULL;
        FUZZ_CHECK(nl != NULL); /* whole lines only */
        FUZZ_CHECK(strncmp(p, NAME ":", strlen(NAME ":")) == 0);
        unsigned long line = strtoul(p + strlen(NAME ":"), &end, 10);
        FUZZ_CHECK(end > p + strlen(NAME ":") && *end == ':');
        FUZZ_CHECK(line >= 1 && line <= max);
        p = nl + 1;
    }
}

static void check_secret(const struct policy_set *set, const struct policy *p,
                         const struct policy_secret *s, size_t i)
{
    FUZZ_CHECK(s->index == i && s->policy == p);
    FUZZ_CHECK(policy_find_secret(p, s->name) == s);
    FUZZ_CHECK(s->kind != POLICY_KIND_IMPORT); /* nothing to import from in a set of one */
    if (s->kind == POLICY_KIND_X509 || s->kind == POLICY_KIND_X509_CA) {
        FUZZ_CHECK(s->key_ref != NULL && s->key_ref->kind == POLICY_KIND_PRIVATE_KEY);
        FUZZ_CHECK(s->key_ref->index < i);
        FUZZ_CHECK(s->common_name != NULL && s->validity_days >= 1);
        if (s->export_public)
            FUZZ_CHECK(s->public_name != NULL);
    }
    if (s->kind == POLICY_KIND_X509)
        FUZZ_CHECK(s->issuer_ref != NULL && s->usage != 0);
    if (s->issuer_ref != NULL) {
        FUZZ_CHECK(s->issuer_ref->kind == POLICY_KIND_X509_CA);
        FUZZ_CHECK(s->issuer_ref == s || s->issuer_ref->index < i);
    }
    if (s->kind == POLICY_KIND_SYMMETRIC)
        FUZZ_CHECK(s->size >= POLICY_SYM_MIN && s->size <= POLICY_SYM_MAX);
    FUZZ_CHECK(set->order[i] == s);
}

/* Relative, without empty, "." or ".." components, not under cas/ or public/. */
static bool safe_path(const char *path)
{
    const char *p = path;

    if (*p == '/' || strncmp(p, "cas/", 4) == 0 || strncmp(p, "public/", 7) == 0)
        return false;
    for (;;) {
        size_t len = strcspn(p, "/");
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (p[len] == '\0')
            return true;
        p += len + 1;
    }
}

static void check_files(const struct policy *p)
{
    for (size_t fi = 0; fi < p->nfiles; fi++) {
        const struct policy_file *f = &p->files[fi];
        size_t prev = 0;
        FUZZ_CHECK(f->path != NULL && safe_path(f->path));
        FUZZ_CHECK(f->content != NULL && strlen(f->content) == f->content_len);
        FUZZ_CHECK(f->content_len <= POLICY_CONTENT_MAX);
        for (size_t r = 0; r < f->nrefs; r++) {
            const struct policy_ref *ref = &f->refs[r];
            FUZZ_CHECK(ref->start >= prev && ref->start < ref->end && ref->end <= f->content_len);
            FUZZ_CHECK(strncmp(f->content + ref->start, "$$CAS::", 7) == 0);
            FUZZ_CHECK(strncmp(f->content + ref->end - 2, "$$", 2) == 0);
            FUZZ_CHECK(ref->secret != NULL &&
                       policy_find_secret(p, ref->secret->name) == ref->secret);
            prev = ref->end;
        }
    }
}

static void check_set(const struct policy_set *set)
{
    const struct policy *p;

    FUZZ_CHECK(set->npolicies == 1);
    p = set->policies[0];
    FUZZ_CHECK(p->name != NULL && policy_set_find(set, p->name) == p);
    FUZZ_CHECK(strcmp(p->file, NAME) == 0);
    FUZZ_CHECK(set->norder == p->nsecrets);
    for (size_t i = 0; i < set->norder; i++)
        check_secret(set, p, set->order[i], i);
    check_files(p);
}

/* The same bytes, from a NUL-terminated copy: the same answer. */
static void check_again(const uint8_t *data, size_t size, cd_err rc, const struct cd_diag *d,
                        const struct policy_set *set)
{
    static struct cd_diag d2;
    struct policy_set *set2 = NULL;
    char *copy = fuzz_strndup(data, size);

    if (copy == NULL)
        return;
    cd_diag_init(&d2);
    cd_err rc2 = policy_parse_buffer(NAME, copy, size, &vars, &set2, &d2);
    if (rc != CD_ERR_NOMEM && rc2 != CD_ERR_NOMEM) {
        FUZZ_CHECK(rc2 == rc);
        FUZZ_CHECK(d2.count == d->count && strcmp(d2.text, d->text) == 0);
    }
    if (rc == CD_OK && rc2 == CD_OK) {
        FUZZ_CHECK(set2->norder == set->norder);
        for (size_t i = 0; i < set->norder; i++)
            FUZZ_CHECK(strcmp(set2->order[i]->name, set->order[i]->name) == 0);
    }
    policy_set_free(set2);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cd_diag d;
    struct policy_set *set = NULL;

    cd_diag_init(&d);
    cd_err rc = policy_parse_buffer(NAME, (const char *)data, size, &vars, &set, &d);
    FUZZ_CHECK(rc == CD_OK || rc == CD_ERR_INVALID || rc == CD_ERR_NOMEM);
    FUZZ_CHECK((rc == CD_OK) == (set != NULL));
    if (rc == CD_ERR_INVALID)
        FUZZ_CHECK(d.count > 0 && d.text[0] != '\0');
    if (rc == CD_OK)
        FUZZ_CHECK(d.count == 0);
    check_messages(&d, count_lines(data, size));
    if (rc == CD_OK)
        check_set(set);
    check_again(data, size, rc, &d, set);
    policy_set_free(set);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
