/* test_dmctl_policy.c: dmctl's governance commands that need no node
 * (suite "dmctl_policy"): policy test and explain over local files, the
 * checks policy publish makes before it signs anything, and validate's
 * line about the mesh's contract rules. Runs the real build/bin/dmctl. */
#include <criterion/criterion.h>
#include <string.h>

#include "fixture.h"
#include "tool_run.h"

#define T_CAROL "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"
#define T_DAVE "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0"
#define T_ADMIN "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0"

/* Two documents in one file: the Policy's deny reaches carol only through
 * the Group of the first document, so a case passes only when both
 * documents were read. */
static const char s_policies[] =
    "# the platform team's baseline\n"
    "apiVersion: datamesh.io/v1\n"
    "kind: Group\n"
    "metadata: {name: contractors}\n"
    "spec: {members: [" T_CAROL "]}\n"
    "---\n"
    "apiVersion: datamesh.io/v1\n"
    "kind: Policy\n"
    "metadata: {name: pii-guard}\n"
    "spec:\n"
    "  access:\n"
    "    - name: deny-contractors\n"
    "      effect: deny\n"
    "      actions: [read]\n"
    "      products: [\"commerce/*\"]\n"
    "      consumers: [\"group:contractors\"]\n";

static const char s_cases_head[] =
    "apiVersion: datamesh.io/v1\n"
    "kind: PolicyTest\n"
    "owner: {domain: commerce, admins: [" T_ADMIN "]}\n"
    "identities: {carol: " T_CAROL ", dave: " T_DAVE "}\n"
    "products:\n"
    "  - {domain: commerce, name: orders, access: public, fields: {email: pii, amount: \"\"}}\n"
    "cases:\n"
    "  - name: others read a public product\n"
    "    identity: dave\n"
    "    product: commerce/orders\n"
    "    action: read\n"
    "    expect: allow\n"
    "  - name: a contractor is denied\n"
    "    identity: carol\n"
    "    product: commerce/orders\n"
    "    action: read\n";

static const char s_contract[] =
    "apiVersion: datamesh.io/v1\n"
    "kind: DataProduct\n"
    "metadata: {name: orders, domain: commerce, version: 1.0.0,\n"
    "  owner: {team: commerce, contact: data@company.com}}\n"
    "spec:\n"
    "  schema:\n"
    "    primaryKey: id\n"
    "    fields:\n"
    "      - {name: id, type: uuid}\n"
    "      - {name: email, type: string, classification: pii}\n"
    "  policies: {access: public}\n";

static char s_dir[256];
static t_run_t s_r;

static void s_setup(void) { cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "dmctl")); }
static void s_teardown(void) { dm_t_rmdir(s_dir); }

/* Runs dmctl policy test over the cases (s_cases_head, then the carol
 * case's expectation) and the two-document policies file. */
static int s_policy_test(const char *carol_expect)
{
    char pol[512], cases[512], text[4096];
    snprintf(text, sizeof text, "%s    expect: %s\n", s_cases_head, carol_expect);
    t_write(s_dir, "cases.yaml", text, cases, sizeof cases);
    /* A trailing "---" (an empty document) is no document. */
    snprintf(text, sizeof text, "%s---\n", s_policies);
    t_write(s_dir, "baseline.yaml", text, pol, sizeof pol);
    const char *args[] = {"policy", "test", cases, "--policies", pol, NULL};
    return t_run(&s_r, s_dir, "dmctl", args);
}

TestSuite(dmctl_policy, .init = s_setup, .fini = s_teardown);

Test(dmctl_policy, test_passes_with_every_document_of_a_file)
{
    cr_assert_eq(s_policy_test("deny"), 0, "stdout:\n%s\nstderr:\n%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.out, "PASS a contractor is denied"), "%s", s_r.out);
    cr_assert_not_null(strstr(s_r.out, "0 cases failed"), "%s", s_r.out);
}

Test(dmctl_policy, test_exits_1_on_a_mismatch)
{
    cr_assert_eq(s_policy_test("allow"), 1, "stdout:\n%s\nstderr:\n%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.out, "FAIL a contractor is denied"), "%s", s_r.out);
    cr_assert_not_null(strstr(s_r.out, "1 case failed"), "%s", s_r.out);
}

Test(dmctl_policy, test_exits_2_on_a_malformed_cases_file)
{
    char cases[512], pol[512];
    t_write(s_dir, "cases.yaml", "apiVersion: datamesh.io/v1\nkind: Nonsense\n", cases,
            sizeof cases);
    t_write(s_dir, "baseline.yaml", s_policies, pol, sizeof pol);
    const char *args[] = {"policy", "test", cases, "--policies", pol, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 2, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.err, "is not a valid cases file"), "%s", s_r.err);
}

Test(dmctl_policy, a_bad_document_is_reported_at_its_line_in_the_file)
{
    char pol[512], cases[512], text[4096];
    /* The second document's action is unknown: the error names line 14 of
     * the file, not a line of the document alone. */
    snprintf(text, sizeof text, "%s", s_policies);
    char *at = strstr(text, "actions: [read]");
    memcpy(at, "actions: [rEad]", 15);
    t_write(s_dir, "baseline.yaml", text, pol, sizeof pol);
    t_write(s_dir, "cases.yaml", s_cases_head, cases, sizeof cases);
    const char *args[] = {"policy", "test", cases, "--policies", pol, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 2, "%s%s", s_r.out, s_r.err);
    char where[600];
    snprintf(where, sizeof where, "%s:14:", pol);
    cr_assert_not_null(strstr(s_r.err, where), "expected %s in:\n%s", where, s_r.err);
}

Test(dmctl_policy, publish_refuses_an_invalid_file_before_any_node)
{
    char pol[512];
    t_write(s_dir, "bad.yaml", "apiVersion: datamesh.io/v1\nkind: Grup\nmetadata: {name: x}\n",
            pol, sizeof pol);
    const char *args[] = {"policy", "publish", pol, "--node",
                          T_ADMIN "@tcp://127.0.0.1:1", NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 1, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.err, "nothing published"), "%s", s_r.err);
    cr_assert_null(strstr(s_r.err, "no connection"), "%s", s_r.err);
}

Test(dmctl_policy, publish_refuses_two_documents_of_one_name)
{
    char pol[512], text[4096];
    snprintf(text, sizeof text, "%s---\n%s", s_policies, s_policies);
    t_write(s_dir, "twice.yaml", text, pol, sizeof pol);
    const char *args[] = {"policy", "publish", pol, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 1, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.err, "a second document named 'contractors'"), "%s", s_r.err);
}

Test(dmctl_policy, explain_names_the_deciding_rule)
{
    char pol[512], con[512];
    t_write(s_dir, "baseline.yaml", s_policies, pol, sizeof pol);
    t_write(s_dir, "orders.yaml", s_contract, con, sizeof con);
    const char *args[] = {"policy", "explain", "--product", "commerce/orders", "--key", T_CAROL,
                          "--contract", con, "--policies", pol, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 0, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.out, "deny-contractors"), "%s", s_r.out);
    cr_assert_not_null(strstr(s_r.out, "read commerce/orders as " T_CAROL), "%s", s_r.out);
}

Test(dmctl_policy, explain_refuses_an_unknown_action)
{
    const char *args[] = {"policy", "explain", "--product", "commerce/orders", "--action", "drop",
                          NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 2, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.err, "expected read, describe or write"), "%s", s_r.err);
}

Test(dmctl_policy, validate_says_rules_were_not_checked_without_a_node)
{
    char con[512];
    t_write(s_dir, "orders.yaml", s_contract, con, sizeof con);
    const char *args[] = {"validate", con, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 0, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.out, "ok: commerce/orders 1.0.0"), "%s", s_r.out);
    cr_assert_not_null(strstr(s_r.out, "contract rules of the mesh not checked"), "%s", s_r.out);
}

Test(dmctl_policy, rotate_refuses_a_key_that_is_not_hex)
{
    const char *args[] = {"policy", "rotate", "not-a-key", NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 2, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.err, "expected 64 hex digits"), "%s", s_r.err);
}

Test(dmctl_policy, policy_without_a_subcommand_prints_usage)
{
    const char *args[] = {"policy", "frobnicate", NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 2, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.err, "usage: dmctl policy publish FILE"), "%s", s_r.err);
}
