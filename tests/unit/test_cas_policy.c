/* test_cas_policy.c: CAS policy parsing and validation: the shipped policies,
 * and each kind of policy error with its FILE:LINE and secret. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cas/policy.h"

static const char *const stack_names[] = {"API_HOST",       "NGINX_HOST", "DB_HOST",
                                          "MEMCACHED_HOST", "API_USER",   "DB_USER",
                                          "MEMCACHED_USER", "NGINX_USER"};
static const char *const stack_values[] = {"localhost", "localhost", "localhost", "localhost",
                                           "u1",        "u2",        "u3",        "u4"};
static const struct policy_vars stack_vars = {stack_names, stack_values, 8};

/* deploy/policies, found from this file's path. */
static void policies_dir(char *out, size_t len)
{
    snprintf(out, len, "%s", __FILE__);
    char *p = strstr(out, "/tests/unit/");
    assert_non_null(p);
    snprintf(p, len - (size_t)(p - out), "/deploy/policies");
}

struct tmpdir {
    char path[64];
    char files[8][128];
    size_t n;
};

static void tmp_make(struct tmpdir *t)
{
    snprintf(t->path, sizeof(t->path), "/tmp/cas-policy-XXXXXX");
    assert_non_null(mkdtemp(t->path));
    t->n = 0;
}

static void tmp_add(struct tmpdir *t, const char *name, const char *text)
{
    char dir[sizeof(t->path)];

    assert_true(t->n < 8);
    /* A copy: GCC's -Wrestrict cannot tell t->path from t->files apart. */
    memcpy(dir, t->path, sizeof(dir));
    snprintf(t->files[t->n], sizeof(t->files[0]), "%s/%s", dir, name);
    FILE *f = fopen(t->files[t->n], "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
    t->n++;
}

static void tmp_remove(struct tmpdir *t)
{
    for (size_t i = 0; i < t->n; i++)
        unlink(t->files[i]);
    rmdir(t->path);
}

/* Loads the given (name, text) pairs; expects a policy error whose messages
 * contain each of want (NULL-terminated). */
static void expect_error(const char *const *pairs, size_t npairs, const char *const *want)
{
    struct tmpdir t;
    struct policy_set *set = NULL;
    struct cd_diag d;
    tmp_make(&t);
    for (size_t i = 0; i < npairs; i++)
        tmp_add(&t, pairs[2 * i], pairs[2 * i + 1]);
    cd_diag_init(&d);
    cd_err err = policy_set_load(t.path, &stack_vars, &set, &d);
    if (err != CD_ERR_INVALID)
        fprintf(stderr, "unexpected result %d; messages:\n%s", err, d.text);
    assert_int_equal(err, CD_ERR_INVALID);
    assert_null(set);
    for (size_t i = 0; want[i] != NULL; i++) {
        char needle[512];
        snprintf(needle, sizeof(needle), "%s/%s", t.path, want[i]);
        if (strstr(d.text, needle) == NULL)
            fprintf(stderr, "missing: %s\nin:\n%s", needle, d.text);
        assert_non_null(strstr(d.text, needle));
    }
    tmp_remove(&t);
}

static void expect_one(const char *name, const char *text, const char *want)
{
    const char *pairs[] = {name, text};
    const char *w[] = {want, NULL};
    expect_error(pairs, 1, w);
}

static void test_shipped(void **state)
{
    char dir[512];
    struct policy_set *set = NULL;
    struct cd_diag d;
    (void)state;
    policies_dir(dir, sizeof(dir));
    cd_diag_init(&d);
    cd_err err = policy_set_load(dir, &stack_vars, &set, &d);
    if (err != CD_OK)
        fprintf(stderr, "%s", d.text);
    assert_int_equal(err, CD_OK);
    assert_int_equal(set->npolicies, 6);
    /* the operator's probe (stack.sh, tests) has a user of its own too */
    assert_non_null(policy_set_find(set, "probe"));
    assert_string_equal(policy_set_find(set, "probe")->owner, "confidoc-probe");
    /* the schema migration step has a user of its own */
    assert_non_null(policy_set_find(set, "migrate"));
    assert_string_equal(policy_set_find(set, "migrate")->owner, "confidoc-migrate");

    struct policy *api = policy_set_find(set, "api");
    struct policy *nginx = policy_set_find(set, "nginx");
    struct policy *db = policy_set_find(set, "mariadb");
    assert_non_null(api);
    assert_non_null(nginx);
    assert_non_null(db);
    assert_non_null(policy_set_find(set, "memcached"));
    assert_string_equal(api->owner, "u1");
    assert_string_equal(nginx->owner, "u4");

    struct policy_secret *server = policy_find_secret(api, "API_SERVER");
    assert_non_null(server);
    assert_int_equal(server->kind, POLICY_KIND_X509);
    assert_string_equal(server->common_name, "confidoc-api");
    assert_int_equal(server->ndns, 1);
    assert_string_equal(server->dns[0], "localhost");
    assert_int_equal(server->nip, 1);
    assert_string_equal(server->ip[0], "127.0.0.1");
    assert_int_equal(server->usage, POLICY_USAGE_SERVER);
    assert_int_equal(server->validity_days, POLICY_LEAF_DAYS_DEFAULT);
    assert_true(server->key_ref->implicit);
    assert_string_equal(server->key_ref->name, "API_SERVER.key");
    /* dependencies first: key and issuer before the certificate */
    assert_true(server->key_ref->index < server->index);
    assert_true(server->issuer_ref->index < server->index);

    struct policy_secret *ca = policy_find_secret(api, "API_CA_CERT");
    assert_int_equal(ca->kind, POLICY_KIND_X509_CA);
    assert_int_equal(ca->validity_days, POLICY_CA_DAYS_DEFAULT);
    assert_int_equal(ca->pathlen, 0);

    /* nginx imports the client certificate from api */
    struct policy_secret *pc = policy_find_secret(nginx, "PROXY_CLIENT");
    assert_int_equal(pc->kind, POLICY_KIND_IMPORT);
    assert_ptr_equal(policy_secret_origin(pc), policy_find_secret(api, "PROXY_CLIENT"));
    assert_true(policy_secret_origin(pc)->index < pc->index);
    struct policy_secret *pub = policy_find_secret(nginx, "SERVER_CA");
    assert_true(pub->export_public);
    assert_string_equal(pub->public_name, "nginx-ca.crt");

    /* template references */
    assert_int_equal(api->nfiles, 10);
    const struct policy_file *f = &api->files[0];
    assert_string_equal(f->path, "api/tls/server.crt");
    assert_int_equal(f->nrefs, 1);
    assert_ptr_equal(f->refs[0].secret, server);
    assert_int_equal(f->refs[0].part, POLICY_PART_CHAIN);
    assert_int_equal(f->refs[0].start, 0);
    assert_int_equal(f->refs[0].end, strlen("$$CAS::API_SERVER.chain$$"));
    int found = 0;
    for (size_t i = 0; i < db->nfiles; i++) {
        if (strcmp(db->files[i].path, "mariadb-key/keyfile") == 0) {
            assert_int_equal(db->files[i].refs[0].part, POLICY_PART_MARIADB_KEYFILE);
            found = 1;
        }
    }
    assert_true(found);
    policy_set_free(set);
}

static void test_mixed_template(void **state)
{
    (void)state;
    struct tmpdir t;
    struct policy_set *set = NULL;
    struct cd_diag d;
    tmp_make(&t);
    tmp_add(&t, "p.yaml",
            "name: p\n"
            "secrets:\n"
            "  - name: K\n"
            "    kind: private-key\n"
            "  - name: CA\n"
            "    kind: x509-ca\n"
            "    private_key: K\n"
            "    common_name: root\n"
            "  - name: MID\n"
            "    kind: x509-ca\n"
            "    issuer: CA\n"
            "    common_name: intermediate\n"
            "  - name: LEAF\n"
            "    kind: x509\n"
            "    issuer: MID\n"
            "    common_name: leaf\n"
            "    dns: [a.example, b.example]\n"
            "    ip: ['::1']\n"
            "    usage: [server, client]\n"
            "    validity_days: 10\n"
            "  - name: S\n"
            "    kind: symmetric-key\n"
            "    size: 16\n"
            "injection_files:\n"
            "  - path: p/conf\n"
            "    content: |\n"
            "      key=$$CAS::S.hex$$ cert follows\n"
            "      $$CAS::LEAF.crt$$$$CAS::LEAF.key$$ end\n");
    cd_diag_init(&d);
    assert_int_equal(policy_set_load(t.path, NULL, &set, &d), CD_OK);
    struct policy *p = set->policies[0];
    struct policy_secret *root = policy_find_secret(p, "CA");
    struct policy_secret *mid = policy_find_secret(p, "MID");
    struct policy_secret *leaf = policy_find_secret(p, "LEAF");
    assert_ptr_equal(root->key_ref, policy_find_secret(p, "K"));
    assert_false(root->key_ref->implicit);
    assert_int_equal(root->pathlen, 1);
    assert_int_equal(mid->pathlen, 0);
    assert_int_equal(leaf->usage, POLICY_USAGE_SERVER | POLICY_USAGE_CLIENT);
    assert_int_equal(leaf->validity_days, 10);
    assert_int_equal(leaf->ndns, 2);
    assert_null(policy_find_secret(p, "K.key")); /* an explicit key: no implicit one */
    const struct policy_file *f = &p->files[0];
    assert_int_equal(f->nrefs, 3);
    assert_int_equal(f->refs[0].part, POLICY_PART_HEX);
    assert_int_equal(f->refs[1].part, POLICY_PART_CRT);
    assert_int_equal(f->refs[2].part, POLICY_PART_KEY);
    assert_memory_equal(f->content + f->refs[0].start, "$$CAS::S.hex$$", 14);
    assert_int_equal(f->refs[1].end, f->refs[2].start);
    policy_set_free(set);
    tmp_remove(&t);
}

/* Lines are numbered in the comments of each fixture. */
#define CA_LINES                                                                                   \
    "name: p\n"                  /* 1 */                                                           \
    "secrets:\n"                 /* 2 */                                                           \
    "  - name: CA\n"             /* 3 */                                                           \
    "    kind: x509-ca\n"        /* 4 */                                                           \
    "    common_name: test CA\n" /* 5 */

static void test_missing_issuer(void **state)
{
    (void)state;
    expect_one("p.yaml",
               CA_LINES "  - name: LEAF\n"   /* 6 */
                        "    kind: x509\n"   /* 7 */
                        "    issuer: NOPE\n" /* 8 */
                        "    common_name: leaf\n"
                        "    usage: [server]\n",
               "p.yaml:8: secret LEAF: issuer 'NOPE' is not declared in policy p");
}

static void test_missing_private_key(void **state)
{
    (void)state;
    expect_one("p.yaml",
               CA_LINES "  - name: LEAF\n"       /* 6 */
                        "    kind: x509\n"       /* 7 */
                        "    issuer: CA\n"       /* 8 */
                        "    private_key: KEY\n" /* 9 */
                        "    common_name: leaf\n"
                        "    usage: [client]\n",
               "p.yaml:9: secret LEAF: private_key 'KEY' is not declared in policy p");
    /* a private_key that names a certificate */
    expect_one("p.yaml",
               CA_LINES "  - name: LEAF\n"      /* 6 */
                        "    kind: x509\n"      /* 7 */
                        "    issuer: CA\n"      /* 8 */
                        "    private_key: CA\n" /* 9 */
                        "    common_name: leaf\n"
                        "    usage: [client]\n",
               "p.yaml:9: secret LEAF: private_key 'CA' is a x509-ca, not a private-key");
}

static void test_missing_template_ref(void **state)
{
    (void)state;
    expect_one("p.yaml",
               CA_LINES "injection_files:\n"          /* 6 */
                        "  - path: p/ca.crt\n"        /* 7 */
                        "    content: |\n"            /* 8 */
                        "      # the CA\n"            /* 9 */
                        "      $$CAS::CA.crt$$\n"     /* 10 */
                        "      $$CAS::OTHER.crt$$\n", /* 11 */
               "p.yaml:11: secret OTHER: referenced by injection file p/ca.crt but not "
               "declared in policy p");
    expect_one("p.yaml",
               CA_LINES "injection_files:\n"              /* 6 */
                        "  - path: p/ca.crt\n"            /* 7 */
                        "    content: $$CAS::CA.hex$$\n", /* 8 */
               "p.yaml:8: secret CA: injection file p/ca.crt: part 'hex' needs a symmetric-key");
    expect_one("p.yaml",
               CA_LINES "injection_files:\n"              /* 6 */
                        "  - path: p/ca.crt\n"            /* 7 */
                        "    content: $$CAS::CA.pem$$\n", /* 8 */
               "p.yaml:8: secret CA: injection file p/ca.crt: unknown part 'pem'");
    expect_one("p.yaml",
               CA_LINES "injection_files:\n"   /* 6 */
                        "  - path: ../etc/x\n" /* 7 */
                        "    content: x\n",
               "p.yaml:7: path '../etc/x' must not contain empty, '.' or '..' components");
}

static const char *const EXPORTER = "name: a\n"                /* 1 */
                                    "secrets:\n"               /* 2 */
                                    "  - name: CA\n"           /* 3 */
                                    "    kind: x509-ca\n"      /* 4 */
                                    "    common_name: a CA\n"; /* 5 */

static void test_import_not_exported(void **state)
{
    (void)state;
    const char *pairs[] = {"a.yaml", EXPORTER, "b.yaml",
                           "name: b\n"                               /* 1 */
                           "secrets:\n"                              /* 2 */
                           "  - name: ACA\n"                         /* 3 */
                           "    import: {policy: a, secret: CA}\n"}; /* 4 */
    const char *want[] = {"b.yaml:4: secret ACA: imports a/CA, which policy 'a' does not export "
                          "to policy 'b'",
                          NULL};
    expect_error(pairs, 2, want);
}

static void test_import_unknown(void **state)
{
    (void)state;
    const char *pairs[] = {"a.yaml", EXPORTER, "b.yaml",
                           "name: b\n"                                  /* 1 */
                           "secrets:\n"                                 /* 2 */
                           "  - name: X\n"                              /* 3 */
                           "    import: {policy: nosuch, secret: CA}\n" /* 4 */
                           "  - name: Y\n"                              /* 5 */
                           "    import:\n"                              /* 6 */
                           "      policy: a\n"                          /* 7 */
                           "      secret: NOPE\n"};                     /* 8 */
    const char *want[] = {"b.yaml:4: secret X: imported from unknown policy 'nosuch'",
                          "b.yaml:7: secret Y: policy 'a' has no secret 'NOPE'", NULL};
    expect_error(pairs, 2, want);
}

static void test_cycle(void **state)
{
    (void)state;
    /* within a policy: two CAs issuing each other */
    expect_one("p.yaml",
               "name: p\n"               /* 1 */
               "secrets:\n"              /* 2 */
               "  - name: CA1\n"         /* 3 */
               "    kind: x509-ca\n"     /* 4 */
               "    issuer: CA2\n"       /* 5 */
               "    common_name: one\n"  /* 6 */
               "  - name: CA2\n"         /* 7 */
               "    kind: x509-ca\n"     /* 8 */
               "    issuer: CA1\n"       /* 9 */
               "    common_name: two\n", /* 10 */
               "p.yaml:9: secret CA2: dependency cycle: issuer p/CA1 leads back to this secret");
    /* across policies: re-exported imports that point at each other */
    const char *pairs[] = {"a.yaml",
                           "name: a\n"                            /* 1 */
                           "secrets:\n"                           /* 2 */
                           "  - name: X\n"                        /* 3 */
                           "    import: {policy: b, secret: Y}\n" /* 4 */
                           "    export: [{policy: b}]\n",         /* 5 */
                           "b.yaml",
                           "name: b\n"                            /* 1 */
                           "secrets:\n"                           /* 2 */
                           "  - name: Y\n"                        /* 3 */
                           "    import: {policy: a, secret: X}\n" /* 4 */
                           "    export: [{policy: a}]\n"};        /* 5 */
    const char *want[] = {"b.yaml:4: secret Y: dependency cycle: import a/X leads back", NULL};
    expect_error(pairs, 2, want);
}

static void test_unknown_key(void **state)
{
    (void)state;
    expect_one("p.yaml", CA_LINES "    colour: blue\n", /* 6 */
               "p.yaml:6: secret CA: unknown key 'colour'");
    expect_one("p.yaml", CA_LINES "    dns: [x]\n", /* 6 */
               "p.yaml:6: secret CA: key 'dns' does not apply to kind x509-ca");
    expect_one("p.yaml", "name: p\nversion: 2\n", "p.yaml:2: unknown key 'version'");
    expect_one("p.yaml", CA_LINES "    common_name: again\n", /* 6 */
               "p.yaml:6: secret CA: duplicate key 'common_name'");
}

static void test_bad_kind(void **state)
{
    (void)state;
    expect_one("p.yaml",
               "name: p\n"            /* 1 */
               "secrets:\n"           /* 2 */
               "  - name: K\n"        /* 3 */
               "    kind: rsa-key\n", /* 4 */
               "p.yaml:4: secret K: kind: expected private-key, x509-ca, x509 or symmetric-key");
    expect_one("p.yaml",
               "name: p\n"       /* 1 */
               "secrets:\n"      /* 2 */
               "  - name: K\n"   /* 3 */
               "    size: 32\n", /* 4 */
               "p.yaml:3: secret K: needs kind: (or import:)");
}

static void test_unknown_var(void **state)
{
    (void)state;
    expect_one("p.yaml",
               CA_LINES "  - name: LEAF\n"                /* 6 */
                        "    kind: x509\n"                /* 7 */
                        "    issuer: CA\n"                /* 8 */
                        "    common_name: leaf\n"         /* 9 */
                        "    dns: [\"${NO_SUCH_VAR}\"]\n" /* 10 */
                        "    usage: [server]\n",
               "p.yaml:10: secret LEAF: unknown variable ${NO_SUCH_VAR}");
    /* the environment supplies variables too */
    setenv("CONFIDOC_CAS_VAR_FROM_ENV", "env.example", 1);
    struct tmpdir t;
    struct policy_set *set = NULL;
    struct cd_diag d;
    tmp_make(&t);
    tmp_add(&t, "p.yaml",
            CA_LINES "  - name: LEAF\n"
                     "    kind: x509\n"
                     "    issuer: CA\n"
                     "    common_name: ${API_USER}-leaf\n"
                     "    dns: [\"${FROM_ENV}\"]\n"
                     "    usage: [server]\n");
    cd_diag_init(&d);
    assert_int_equal(policy_set_load(t.path, &stack_vars, &set, &d), CD_OK);
    struct policy_secret *leaf = policy_find_secret(set->policies[0], "LEAF");
    assert_string_equal(leaf->dns[0], "env.example");
    assert_string_equal(leaf->common_name, "u1-leaf");
    policy_set_free(set);
    tmp_remove(&t);
    unsetenv("CONFIDOC_CAS_VAR_FROM_ENV");
}

static void test_bad_type(void **state)
{
    (void)state;
    expect_one("p.yaml", CA_LINES "    validity_days: ten\n", /* 6 */
               "p.yaml:6: secret CA: validity_days: expected an integer");
    expect_one("p.yaml", CA_LINES "    validity_days: \"10\"\n", /* 6 */
               "p.yaml:6: secret CA: validity_days: expected an integer");
    expect_one("p.yaml", CA_LINES "    export_public: yes\n", /* 6 */
               "p.yaml:6: secret CA: export_public: expected true or false");
    expect_one("p.yaml", CA_LINES "    private_key: [a, b]\n", /* 6 */
               "p.yaml:6: secret CA: private_key: expected a string");
    expect_one("p.yaml",
               "name: p\n"     /* 1 */
               "secrets:\n"    /* 2 */
               "  - name: S\n" /* 3 */
               "    kind: symmetric-key\n"
               "    size: 8\n", /* 5 */
               "p.yaml:5: secret S: size: must be between 16 and 64");
    expect_one("p.yaml", "name: p\nsecrets: {a: b}\n", "p.yaml:2: secrets: expected a list");
    expect_one("p.yaml",
               "name: p\n"        /* 1 */
               "secrets:\n"       /* 2 */
               "  - name: L\n"    /* 3 */
               "    kind: x509\n" /* 4 */
               "    issuer: L\n"  /* 5 */
               "    common_name: l\n"
               "    ip: [localhost]\n" /* 7 */
               "    usage: [server]\n",
               "p.yaml:7: secret L: ip: 'localhost' is not an IPv4 or IPv6 address");
}

static void test_yaml_limits(void **state)
{
    (void)state;
    expect_one("p.yaml", "name: p\nsecrets:\n  - &a {name: K, kind: private-key}\n  - *a\n",
               "p.yaml:4: YAML aliases are not accepted");
    expect_one("p.yaml", "name: p\nsecrets: [\n", "p.yaml:");
    expect_one("p.yaml", "name: p\n---\nname: q\n", "p.yaml:2: only one YAML document");
    /* larger than the bound */
    size_t n = POLICY_FILE_MAX + 16;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, '#', n);
    big[n] = '\0';
    expect_one("p.yaml", big, "p.yaml: larger than");
    free(big);
    expect_one("p.yaml", CA_LINES "    issuer: CA\n" /* 6: a CA issuing itself */,
               "p.yaml:6: secret CA: dependency cycle: issuer p/CA leads back");
}

/* policy_parse_buffer: one policy from memory, linked as a set of one, with the
 * same answers as policy_set_load; the environment is not read. */
static void test_parse_buffer(void **state)
{
    static const char text[] = CA_LINES "  - name: LEAF\n"        /* 6 */
                                        "    kind: x509\n"        /* 7 */
                                        "    issuer: CA\n"        /* 8 */
                                        "    common_name: leaf\n" /* 9 */
                                        "    dns: [\"${API_HOST}\"]\n"
                                        "    usage: [server]\n"
                                        "injection_files:\n"
                                        "  - path: p/leaf.pem\n"
                                        "    content: $$CAS::LEAF.chain$$\n";
    struct policy_set *set = NULL, *loaded = NULL;
    struct cd_diag d;
    struct tmpdir t;
    (void)state;

    /* not NUL-terminated: the length bounds the parse */
    char *exact = malloc(sizeof(text) - 1);
    assert_non_null(exact);
    memcpy(exact, text, sizeof(text) - 1);
    cd_diag_init(&d);
    assert_int_equal(
        policy_parse_buffer("dir/p.yaml", exact, sizeof(text) - 1, &stack_vars, &set, &d), CD_OK);
    free(exact);
    assert_int_equal(d.count, 0);
    assert_int_equal(set->npolicies, 1);
    assert_string_equal(set->policies[0]->name, "p");
    assert_string_equal(set->policies[0]->file, "dir/p.yaml");
    assert_string_equal(policy_find_secret(set->policies[0], "LEAF")->dns[0], "localhost");
    assert_int_equal(set->policies[0]->files[0].nrefs, 1);

    tmp_make(&t);
    tmp_add(&t, "p.yaml", text);
    cd_diag_init(&d);
    assert_int_equal(policy_set_load(t.path, &stack_vars, &loaded, &d), CD_OK);
    assert_int_equal(loaded->norder, set->norder);
    for (size_t i = 0; i < set->norder; i++)
        assert_string_equal(loaded->order[i]->name, set->order[i]->name);
    policy_set_free(loaded);
    tmp_remove(&t);
    policy_set_free(set);

    /* no name: the base of the given name; errors name it with the line */
    set = NULL;
    cd_diag_init(&d);
    assert_int_equal(policy_parse_buffer("a/q.yaml", "secrets:\n  - name: K\n", 21, NULL, &set, &d),
                     CD_ERR_INVALID);
    assert_null(set);
    assert_non_null(strstr(d.text, "a/q.yaml:2: secret K: needs kind: (or import:)"));

    /* the environment is not consulted */
    setenv("CONFIDOC_CAS_VAR_FROM_ENV", "env.example", 1);
    cd_diag_init(&d);
    assert_int_equal(
        policy_parse_buffer("p.yaml", "name: p\nowner: ${FROM_ENV}\n", 27, &stack_vars, &set, &d),
        CD_ERR_INVALID);
    unsetenv("CONFIDOC_CAS_VAR_FROM_ENV");
    assert_non_null(strstr(d.text, "p.yaml:2: unknown variable ${FROM_ENV}\n"));

    /* imports name other policies: refused in a set of one */
    cd_diag_init(&d);
    const char *imp = "name: p\nsecrets:\n  - name: I\n    import: {policy: o, secret: S}\n";
    assert_int_equal(policy_parse_buffer("p.yaml", imp, strlen(imp), NULL, &set, &d),
                     CD_ERR_INVALID);
    assert_non_null(strstr(d.text, "p.yaml:4: secret I: imported from unknown policy 'o'"));

    /* bounds and arguments */
    cd_diag_init(&d);
    assert_int_equal(policy_parse_buffer("p.yaml", "", POLICY_FILE_MAX + 1, NULL, &set, &d),
                     CD_ERR_INVALID);
    assert_non_null(strstr(d.text, "p.yaml: larger than"));
    assert_int_equal(policy_parse_buffer(NULL, "", 0, NULL, &set, &d), CD_ERR_INVALID);
    assert_null(set);
}

/* Found by fuzz_policy: a message quoted the policy's text with its line breaks,
 * so one problem spanned several lines of "FILE:LINE: ..." output. */
static void test_fuzz_policy_diag_one_line(void **state)
{
    struct policy_set *set = NULL;
    struct cd_diag d;
    const char *text = "name: p\n"
                       "secrets:\n"
                       "  - {name: K, kind: symmetric-key}\n"
                       "injection_files:\n"
                       "  - path: p/k\n"
                       "    content: \"$$CAS::K.he\\nx\\r\\t$$\"\n"; /* 6 */
    (void)state;

    cd_diag_init(&d);
    assert_int_equal(policy_parse_buffer("p.yaml", text, strlen(text), NULL, &set, &d),
                     CD_ERR_INVALID);
    assert_int_equal(d.count, 1);
    assert_string_equal(d.text, "p.yaml:6: secret K: injection file p/k: unknown part 'he?x?"
                                "?' "
                                "(crt, chain, key, ca, keyring, mariadb_keyfile, hex)\n");
    expect_one("p\x01.yaml", "name: p\nowner: \"a\\nb/\"\n", "p?.yaml:2: owner: not a user name\n");
}

/* A ${NAME} of 65 bytes closed by '}' passed the length check and wrote one
 * byte past the name buffer (UBSan: index 65 out of bounds); 64 is the limit. */
static void test_policy_var_name_65(void **state)
{
    char text[256];
    char name[66];
    const char *const names[] = {name};
    const char *const values[] = {"u1"};
    const struct policy_vars vars = {names, values, 1};
    struct policy_set *set = NULL;
    struct cd_diag d;
    (void)state;

    memset(name, 'A', 64);
    name[64] = '\0';
    snprintf(text, sizeof(text), "name: p\nowner: \"${%s}\"\n", name);
    cd_diag_init(&d);
    assert_int_equal(policy_parse_buffer("p.yaml", text, strlen(text), &vars, &set, &d), CD_OK);
    assert_string_equal(set->policies[0]->owner, "u1");
    policy_set_free(set);
    set = NULL;

    name[64] = 'A';
    name[65] = '\0';
    snprintf(text, sizeof(text), "name: p\nowner: \"${%s}\"\n", name);
    cd_diag_init(&d);
    assert_int_equal(policy_parse_buffer("p.yaml", text, strlen(text), &vars, &set, &d),
                     CD_ERR_INVALID);
    assert_string_equal(d.text, "p.yaml:2: unterminated or too long ${...}\n");
    expect_one("p.yaml", text, "p.yaml:2: unterminated or too long ${...}");
}

/* Lines 1 to 5: a symmetric key K and an injection file a. */
#define K_FILE                                                                                     \
    "name: p\n"                                                                                    \
    "secrets:\n"                                                                                   \
    "  - {name: K, kind: symmetric-key}\n"                                                         \
    "injection_files:\n"                                                                           \
    "  - path: a\n"

/* Found by fuzz_policy: a reference's line counted the "\n" escapes of a
 * double-quoted content as lines of the file (line 9 of a 3-line file); it is
 * the content's line. Block and plain content still count their lines. */
static void test_fuzz_policy_ref_line_quoted(void **state)
{
    (void)state;
    expect_one("p.yaml",
               "name: p\n"
               "injection_files:\n"
               "  - {path: a, content: \"\\n\\n\\n\\n\\n\\n$$CAS::NOPE.crt$$\"}\n", /* 3 */
               "p.yaml:3: secret NOPE: referenced by injection file a but not declared");
    expect_one("p.yaml",
               K_FILE "    content: \"x\\n$$CAS::K.hex$$\\n\n" /* 6 */
                      "      $$CAS::K.crt$$\"\n",              /* 7, named by the first line, 6 */
               "p.yaml:6: secret K: injection file a: part 'crt' needs a certificate");
    expect_one("p.yaml",
               K_FILE "    content: |\n"
                      "      x\n"               /* 7 */
                      "      $$CAS::K.crt$$\n", /* 8 */
               "p.yaml:8: secret K: injection file a: part 'crt' needs a certificate");
}

/* ---- measurements: ---- */

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H64B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static void test_measurements_valid(void **state)
{
    static const char text[] = "name: m\n"
                               "measurements:\n"
                               "  executable: [" H64 ", " H64B "]\n"
                               "  user: nobody\n"
                               "  config:\n"
                               "    - path: /etc/m/m.conf\n"
                               "      sha256: " H64B "\n"
                               "    - {path: /etc/m/other, sha256: " H64 "}\n"
                               "  mount: /run/m/secrets\n";
    static const char one[] = "measurements:\n"
                              "  executable: " H64 "\n"
                              "  user: \"65534\"\n"
                              "  mount: /run/x/\n";
    struct policy_set *set = NULL;
    struct cd_diag d;
    (void)state;

    cd_diag_init(&d);
    assert_int_equal(policy_parse_buffer("m.yaml", text, strlen(text), NULL, &set, &d), CD_OK);
    const struct policy_measure *m = &set->policies[0]->measure;
    assert_true(m->present);
    assert_int_equal(m->line, 3);
    assert_int_equal(m->nexecutable, 2);
    assert_string_equal(m->executable[0], H64);
    assert_string_equal(m->executable[1], H64B);
    assert_string_equal(m->user, "nobody");
    assert_int_equal(m->nconfig, 2);
    assert_string_equal(m->config[0].path, "/etc/m/m.conf");
    assert_string_equal(m->config[0].sha256, H64B);
    assert_int_equal(m->config[0].line, 6);
    assert_string_equal(m->config[1].path, "/etc/m/other");
    assert_string_equal(m->mount, "/run/m/secrets");
    policy_set_free(set);

    cd_diag_init(&d);
    assert_int_equal(policy_parse_buffer("x.yaml", one, strlen(one), NULL, &set, &d), CD_OK);
    m = &set->policies[0]->measure;
    assert_int_equal(m->nexecutable, 1);
    assert_string_equal(m->executable[0], H64);
    assert_string_equal(m->user, "65534");
    assert_int_equal(m->nconfig, 0);
    policy_set_free(set);

    /* absent: not releasable */
    cd_diag_init(&d);
    assert_int_equal(policy_parse_buffer("y.yaml", "name: y\n", 8, NULL, &set, &d), CD_OK);
    assert_false(set->policies[0]->measure.present);
    policy_set_free(set);
}

static void test_measurements_invalid(void **state)
{
    static const struct {
        const char *body; /* after "measurements:\n" */
        const char *want; /* "p.yaml:LINE: message" */
    } cases[] = {
        {"  executable: " H64 "\n", "p.yaml:2: measurements: needs executable: and mount:"},
        {"  mount: /run/p\n", "p.yaml:2: measurements: needs executable: and mount:"},
        {"  executable: 0123\n  mount: /run/p\n",
         "p.yaml:2: measurements.executable: expected a SHA-256 as 64 lowercase hex digits"},
        {"  executable: [" H64 ", " H64B "A]\n  mount: /run/p\n",
         "p.yaml:2: measurements.executable: expected a SHA-256"},
        {"  executable: 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n"
         "  mount: /run/p\n",
         "p.yaml:2: measurements.executable: expected a SHA-256"},
        {"  executable: {a: b}\n  mount: /run/p\n",
         "p.yaml:2: measurements.executable: expected a list"},
        {"  executable: " H64 "\n  mount: run/p\n",
         "p.yaml:3: measurements.mount 'run/p' must be an absolute path"},
        {"  executable: " H64 "\n  mount: /run/../etc\n",
         "p.yaml:3: measurements.mount '/run/../etc' must not contain empty, '.' or '..'"},
        {"  executable: " H64 "\n  mount: /\n", "p.yaml:3: measurements.mount '/' must be"},
        {"  executable: " H64 "\n  mount: /run/p\n  user: \"a:b\"\n",
         "p.yaml:4: measurements.user: not a user name or uid"},
        {"  executable: " H64 "\n  mount: /run/p\n  user: \"4294967295\"\n",
         "p.yaml:4: measurements.user: not a user name or uid"},
        {"  executable: " H64 "\n  mount: /run/p\n  config:\n    - path: etc/x\n      sha256: " H64
         "\n",
         "p.yaml:5: measurements.config.path 'etc/x' must be an absolute path"},
        {"  executable: " H64
         "\n  mount: /run/p\n  config:\n    - path: /etc/./x\n      sha256: " H64 "\n",
         "p.yaml:5: measurements.config.path '/etc/./x' must not contain"},
        {"  executable: " H64
         "\n  mount: /run/p\n  config:\n    - path: /etc/x/\n      sha256: " H64 "\n",
         "p.yaml:5: measurements.config.path '/etc/x/' must not contain"},
        {"  executable: " H64 "\n  mount: /run/p\n  config:\n    - path: /etc/x\n",
         "p.yaml:5: measurements.config entry needs path: and sha256:"},
        {"  executable: " H64 "\n  mount: /run/p\n  config:\n    - path: /etc/x\n      sha256: x\n",
         "p.yaml:6: measurements.config.sha256: expected a SHA-256"},
        {"  executable: " H64 "\n  mount: /run/p\n  config:\n    - {path: /a, sha256: " H64
         ", size: 1}\n",
         "p.yaml:5: measurements.config: unknown key 'size' (expected path, sha256)"},
        {"  executable: " H64 "\n  mount: /run/p\n  config:\n    - {path: /a, sha256: " H64
         "}\n    - {path: /a, sha256: " H64 "}\n",
         "p.yaml:6: measurements.config: '/a' listed twice"},
        {"  executable: " H64 "\n  mount: /run/p\n  config: /a\n",
         "p.yaml:4: measurements.config: expected a list"},
        {"  executable: " H64 "\n  mount: /run/p\n  owner: x\n",
         "p.yaml:4: measurements: unknown key 'owner' (expected executable, user, config, mount)"},
        {"  - " H64 "\n", "p.yaml:2: measurements: expected a mapping"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[1024];
        struct policy_set *set = NULL;
        struct cd_diag d;
        snprintf(text, sizeof(text), "measurements:\n%s", cases[i].body);
        cd_diag_init(&d);
        cd_err err = policy_parse_buffer("p.yaml", text, strlen(text), NULL, &set, &d);
        if (err != CD_ERR_INVALID || strstr(d.text, cases[i].want) == NULL)
            fprintf(stderr, "case %zu: result %d, messages:\n%swanted: %s\n", i, err, d.text,
                    cases[i].want);
        assert_int_equal(err, CD_ERR_INVALID);
        assert_null(set);
        assert_non_null(strstr(d.text, cases[i].want));
    }
}

/* More than POLICY_MAX_MEASURED config files, and a path over 4095 bytes. */
static void test_measurements_bounds(void **state)
{
    char *text = malloc(16384);
    struct policy_set *set = NULL;
    struct cd_diag d;
    size_t n = 0;
    (void)state;

    assert_non_null(text);
    n += (size_t)snprintf(text + n, 16384 - n,
                          "measurements:\n  executable: " H64 "\n  mount: /m\n  config:\n");
    for (int i = 0; i <= POLICY_MAX_MEASURED; i++)
        n += (size_t)snprintf(text + n, 16384 - n, "    - {path: /c%d, sha256: " H64 "}\n", i);
    cd_diag_init(&d);
    assert_int_equal(policy_parse_buffer("p.yaml", text, n, NULL, &set, &d), CD_ERR_INVALID);
    assert_non_null(strstr(d.text, "measurements.config: more than 16 entries"));

    n = (size_t)snprintf(text, 16384, "measurements:\n  executable: " H64 "\n  mount: /");
    memset(text + n, 'a', 4095);
    n += 4095;
    text[n++] = '\n';
    cd_diag_init(&d);
    assert_int_equal(policy_parse_buffer("p.yaml", text, n, NULL, &set, &d), CD_ERR_INVALID);
    assert_non_null(strstr(d.text, "must be an absolute path of 2 to 4095 bytes"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped),
        cmocka_unit_test(test_mixed_template),
        cmocka_unit_test(test_missing_issuer),
        cmocka_unit_test(test_missing_private_key),
        cmocka_unit_test(test_missing_template_ref),
        cmocka_unit_test(test_import_not_exported),
        cmocka_unit_test(test_import_unknown),
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_bad_kind),
        cmocka_unit_test(test_unknown_var),
        cmocka_unit_test(test_bad_type),
        cmocka_unit_test(test_yaml_limits),
        cmocka_unit_test(test_parse_buffer),
        cmocka_unit_test(test_fuzz_policy_diag_one_line),
        cmocka_unit_test(test_policy_var_name_65),
        cmocka_unit_test(test_fuzz_policy_ref_line_quoted),
        cmocka_unit_test(test_measurements_valid),
        cmocka_unit_test(test_measurements_invalid),
        cmocka_unit_test(test_measurements_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
