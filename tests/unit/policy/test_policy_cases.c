/* test_policy_cases.c: contract rules against parsed contracts, and the
 * table-driven cases runner (dmctl policy test) (suite "policy"). */
#include "policy_test.h"

static const char *const s_rules = HDR "kind: Policy\nmetadata: {name: baseline}\nspec:\n"
                                       "  contractRules:\n"
                                       "    - {name: require-freshness, require: sla.freshness}\n"
                                       "    - {name: require-contact, require: owner.contact}\n"
                                       "    - {name: no-public-pii, forbid: public-pii}\n"
                                       "    - {name: snake-case, names: snake_case}\n";

static dm_contract_t *s_contract(const char *spec_extra, const char *field2)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_printf(&b, "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: orders\n"
                      "  domain: commerce\n  version: 1.0.0\n  owner: {team: t, contact: a@b.co}\n"
                      "spec:\n  schema:\n    fields:\n      - {name: id, type: string}\n"
                      "      - %s\n%s",
                  field2, spec_extra);
    dm_contract_t **cs = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    cr_assert_eq(dm_contract_parse("c.yaml", b.data, b.len, NULL, &cs, &n, &diags), DM_OK);
    dm_contract_t *c = cs[0];
    free(cs);
    dm_buf_free(&b);
    dm_diags_clear(&diags);
    return c;
}

Test(policy, contract_rules_hold)
{
    const char *docs[] = {s_rules, NULL};
    dm_policy_set_t *s = set_of(7, docs);
    dm_contract_t *c = s_contract("  sla: {freshness: 5m}\n", "{name: email, type: string, classification: pii}");
    dm_diags_t diags = DM_DIAGS_INIT;
    cr_assert_eq(dm_policy_check_contract(s, c, &diags), DM_OK, "restricted by default: pii is fine");
    cr_assert_eq(diags.count, 0);
    cr_assert_eq(dm_policy_check_contract(NULL, c, &diags), DM_OK);
    dm_contract_destroy(&c);
    dm_policy_set_unref(&s);
}

Test(policy, contract_rules_report_each_broken_rule)
{
    const char *docs[] = {s_rules, NULL};
    dm_policy_set_t *s = set_of(7, docs);
    dm_contract_t *c = s_contract("  policies: {access: public}\n",
                                  "{name: eMail, type: string, classification: pii}");
    dm_diags_t diags = DM_DIAGS_INIT;
    cr_assert_eq(dm_policy_check_contract(s, c, &diags), DM_ERR_DENIED);
    cr_assert_eq(diags.count, 3);
    dm_buf_t out = DM_BUF_INIT;
    dm_diags_format(&diags, &out);
    cr_assert(strstr(out.data, "commerce/orders: error: contract rule require-freshness of policy "
                               "baseline (version 7): the contract must declare sla.freshness"), "%s", out.data);
    cr_assert(strstr(out.data, "contract rule no-public-pii of policy baseline (version 7): field "
                               "'eMail' is classified pii in a public product"), "%s", out.data);
    cr_assert(strstr(out.data, "contract rule snake-case of policy baseline (version 7): name 'eMail' "
                               "is not snake_case"), "%s", out.data);
    dm_buf_free(&out);
    dm_diags_clear(&diags);
    dm_contract_destroy(&c);
    dm_policy_set_unref(&s);
}

static const char *const s_cases = "apiVersion: datamesh.io/v1\n"
                                   "kind: PolicyTest\n"
                                   "owner: {domain: commerce, admins: [" HEX_AA "]}\n"
                                   "identities: {carol: " HEX_CC "}\n"
                                   "products:\n"
                                   "  - {domain: commerce, name: orders, access: restricted,\n"
                                   "     readers: [dave, \"group:eu\"], tags: [sales],\n"
                                   "     fields: {email: pii, amount: \"\"}}\n"
                                   "cases:\n"
                                   "  - name: contractor denied\n"
                                   "    identity: carol\n"
                                   "    product: commerce/orders\n"
                                   "    expect: deny\n"
                                   "  - name: alias reader sees hashed email\n"
                                   "    identity: dave\n"
                                   "    product: commerce/orders\n"
                                   "    expect: allow\n"
                                   "    masks: {email: hash}\n"
                                   "    rowFilter: \"\"\n"
                                   "  - name: eu group filtered\n"
                                   "    identity: erin\n"
                                   "    groups: [eu]\n"
                                   "    product: commerce/orders\n"
                                   "    action: read\n"
                                   "    expect: allow\n"
                                   "    rowFilter: \"region = 'eu'\"\n"
                                   "  - name: admin writes raw\n"
                                   "    identity: " HEX_AA "\n"
                                   "    product: commerce/orders\n"
                                   "    action: write\n"
                                   "    expect: allow\n"
                                   "    masks: {}\n"
                                   "  - name: wrong on purpose\n"
                                   "    identity: erin\n"
                                   "    product: commerce/orders\n"
                                   "    expect: allow\n"
                                   "    masks: {email: null}\n";

static const char *const s_gov = HDR "kind: Policy\nmetadata: {name: guard}\nspec:\n"
                                     "  access:\n"
                                     "    - {name: no-carol, effect: deny, consumers: [" HEX_CC "]}\n"
                                     "  masks:\n"
                                     "    - {name: hash-pii, fields: {classification: pii}, mask: hash,\n"
                                     "       except: [\"group:eu\"]}\n"
                                     "  rowFilters:\n"
                                     "    - {name: eu, consumers: [\"group:eu\"], predicate: \"region = 'eu'\"}\n";

Test(policy, cases_pass_and_fail)
{
    const char *docs[] = {s_gov, NULL};
    dm_policy_set_t *s = set_of(2, docs);
    dm_buf_t report = DM_BUF_INIT;
    size_t failed = 99;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_policy_run_cases(s, "cases.yaml", s_cases, strlen(s_cases), &report, &failed, &diags);
    dm_buf_t text = DM_BUF_INIT;
    dm_diags_format(&diags, &text);
    cr_assert_eq(rc, DM_OK, "%s", text.data ? text.data : "");
    cr_assert_eq(failed, 1, "%s", report.data);
    cr_assert(strstr(report.data, "PASS contractor denied\n"), "%s", report.data);
    cr_assert(strstr(report.data, "PASS alias reader sees hashed email\n"), "%s", report.data);
    cr_assert(strstr(report.data, "PASS eu group filtered\n"), "%s", report.data);
    cr_assert(strstr(report.data, "PASS admin writes raw\n"), "%s", report.data);
    cr_assert(strstr(report.data, "FAIL wrong on purpose: expected allow, got deny by owner: restricted, "
                                  "not a reader; email: expected mask null, got none\n"), "%s", report.data);
    dm_buf_free(&text);
    dm_buf_free(&report);
    dm_diags_clear(&diags);
    dm_policy_set_unref(&s);
}

Test(policy, cases_file_errors_are_reported)
{
    const char *bad = "apiVersion: datamesh.io/v1\nkind: PolicyTest\nowner: {domain: commerce}\n"
                      "products: [{domain: commerce, name: orders}]\n"
                      "cases:\n"
                      "  - {name: x, identity: a, product: commerce/nope, expect: allow}\n"
                      "  - {name: y, identity: a, product: commerce/orders, expect: maybe}\n";
    dm_buf_t report = DM_BUF_INIT;
    size_t failed = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    cr_assert_eq(dm_policy_run_cases(NULL, "c.yaml", bad, strlen(bad), &report, &failed, &diags),
                 DM_ERR_INVALID);
    dm_buf_t text = DM_BUF_INIT;
    dm_diags_format(&diags, &text);
    cr_assert(strstr(text.data, "c.yaml:6:37: error: product 'commerce/nope' is not one of the file's "
                                "products"), "%s", text.data);
    cr_assert(strstr(text.data, "c.yaml:7:62: error: expect 'maybe' is not one of allow, deny"), "%s",
              text.data);
    cr_assert_eq(report.len, 0, "no case runs from a malformed file");
    dm_buf_free(&text);
    dm_diags_clear(&diags);
}
