/* test_cas_session_policy.c: the CAS service's session keys in policies
 * (predecessor:, access:), several texts linked as one set
 * (policy_set_parse_buffers), and the client-side ${VAR} substitution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cas/policy.h"
#include "casd/sessions.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"

static cd_err one(const char *text, struct policy_set **set, struct cd_diag *d)
{
    const char *file = "t.yaml";
    size_t len = strlen(text);
    cd_diag_init(d);
    return policy_set_parse_buffers(&file, &text, &len, 1, NULL, true, set, d);
}

static void test_access(void **state)
{
    static struct cd_diag d;
    struct policy_set *set = NULL;

    (void)state;
    assert_int_equal(one("name: a\npredecessor: " H1 "\naccess:\n  read: [" H1 "]\n  update: [" H1
                         ", " H2 "]\n  update_quorum: 2\n",
                         &set, &d),
                     CD_OK);
    const struct policy *p = set->policies[0];
    assert_string_equal(p->predecessor, H1);
    assert_int_equal(p->access.nread, 1);
    assert_int_equal(p->access.nupdate, 2);
    assert_string_equal(p->access.update[1], H2);
    assert_int_equal(p->access.update_quorum, 2);
    policy_set_free(set);
    set = NULL;
    static const char *const bad[] = {
        "name: a\npredecessor: abc\n",
        "name: a\npredecessor: " H1 "X\n",
        "name: a\npredecessor: AAAA111111111111111111111111111111111111111111111111111111111111\n",
        "name: a\naccess: [x]\n",
        "name: a\naccess:\n  read: [zz]\n",
        "name: a\naccess:\n  read: [" H1 ", " H1 "]\n",
        "name: a\naccess:\n  write: [" H1 "]\n",
        "name: a\naccess:\n  update: [" H1 "]\n  update_quorum: 2\n",
        "name: a\naccess:\n  update_quorum: 0\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(one(bad[i], &set, &d), CD_ERR_INVALID);
        assert_true(d.count > 0);
        assert_non_null(strstr(d.text, "t.yaml:"));
    }
}

static void test_buffers(void **state)
{
    static struct cd_diag d;
    struct policy_set *set = NULL;
    const char *files[] = {"sessions/api.yaml", "<upload>"};
    const char *texts[] = {
        "name: api\nsecrets:\n  - name: CA\n    kind: x509-ca\n    common_name: c\n"
        "    export: [{policy: web}]\n",
        "name: web\nsecrets:\n  - name: CA\n    import: {policy: api, secret: CA}\n"};
    size_t lens[] = {strlen(texts[0]), strlen(texts[1])};

    (void)state;
    cd_diag_init(&d);
    assert_int_equal(policy_set_parse_buffers(files, texts, lens, 2, NULL, true, &set, &d), CD_OK);
    assert_int_equal(set->npolicies, 2);
    assert_non_null(policy_set_find(set, "web"));
    policy_set_free(set);
    set = NULL;
    /* The importer alone does not link, but parses unlinked. */
    assert_int_equal(
        policy_set_parse_buffers(files + 1, texts + 1, lens + 1, 1, NULL, true, &set, &d),
        CD_ERR_INVALID);
    cd_diag_init(&d);
    assert_int_equal(
        policy_set_parse_buffers(files + 1, texts + 1, lens + 1, 1, NULL, false, &set, &d), CD_OK);
    assert_string_equal(set->policies[0]->name, "web");
    assert_int_equal(set->norder, 0);
    policy_set_free(set);
    set = NULL;
    /* The same name twice is an error; "<upload>" without name: is not a policy name. */
    const char *twice[] = {texts[0], texts[0]};
    cd_diag_init(&d);
    assert_int_equal(policy_set_parse_buffers(files, twice, lens, 2, NULL, true, &set, &d),
                     CD_ERR_INVALID);
    assert_non_null(strstr(d.text, "used twice"));
    const char *noname = "secrets: []\n";
    size_t nl = strlen(noname);
    cd_diag_init(&d);
    assert_int_equal(policy_set_parse_buffers(files + 1, &noname, &nl, 1, NULL, false, &set, &d),
                     CD_ERR_INVALID);
}

static void test_subst(void **state)
{
    static struct cd_diag d;
    const char *names[] = {"HOST", "USER", "HOST"};
    const char *values[] = {"a.example", "confidoc", "b.example"};
    struct policy_vars vars = {names, values, 3};
    const char *bad_values[] = {"x\ny"};
    struct policy_vars bad = {names, bad_values, 1};
    struct buf out;

    (void)state;
    cd_diag_init(&d);
    buf_init(&out, 4096);
    const char *t = "dns: [${HOST}]\nowner: ${USER}\ncontent: $$CAS::X.crt$$ $x\n";
    assert_int_equal(casd_text_subst(t, strlen(t), &vars, &out, &d), CD_OK);
    assert_string_equal(out.p, "dns: [b.example]\nowner: confidoc\ncontent: $$CAS::X.crt$$ $x\n");
    buf_release(&out);
    buf_init(&out, 4096);
    assert_int_equal(casd_text_subst("${NOPE}", 7, &vars, &out, &d), CD_ERR_INVALID);
    assert_int_equal(casd_text_subst("${HOST", 6, &vars, &out, &d), CD_ERR_INVALID);
    assert_int_equal(casd_text_subst("${HOST}", 7, &bad, &out, &d), CD_ERR_INVALID);
    buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access),
        cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_subst),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
