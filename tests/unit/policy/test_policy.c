/* test_policy.c: governance documents and decisions (suite "policy"):
 * every parse error with its message, and the decision order (governance
 * deny -> governance allow gate -> owner -> deny) with its texts. Masks, row
 * filters, sets and certificates are in test_policy_set.c; contract
 * rules and cases in test_policy_cases.c. */
#include "policy_test.h"

/* ---- documents ---- */

static const char *const s_group_cc = HDR "kind: Group\nmetadata: {name: contractors}\n"
                                          "spec: {members: [" HEX_CC "]}\n";
static const char *const s_group_dd = HDR "kind: Group\nmetadata: {name: analysts}\n"
                                          "spec: {members: [" HEX_DD "]}\n";
static const char *const s_deny_contractors = HDR "kind: Policy\n"
                                                  "metadata: {name: pii-guard}\n"
                                                  "spec:\n"
                                                  "  access:\n"
                                                  "    - name: deny-contractors\n"
                                                  "      effect: deny\n"
                                                  "      products: [\"commerce/*\"]\n"
                                                  "      consumers: [\"group:contractors\"]\n";
static const char *const s_allow_analysts = HDR "kind: Policy\n"
                                                "metadata: {name: analysts-read}\n"
                                                "spec:\n"
                                                "  access:\n"
                                                "    - {name: sales, effect: allow, tags: [sales],\n"
                                                "       consumers: [\"group:analysts\"]}\n";

Test(policy, parses_every_kind)
{
    dm_policy_doc_t *g = doc_ok(s_group_cc), *p = doc_ok(s_deny_contractors);
    dm_policy_doc_t *c = doc_ok(HDR "kind: DomainCertificate\nmetadata: {name: commerce}\n"
                                    "spec: {domain: commerce, node: " HEX_BB "}\n");
    cr_assert_str_eq(dm_policy_doc_kind(g), "Group");
    cr_assert_str_eq(dm_policy_doc_name(g), "contractors");
    cr_assert_str_eq(dm_policy_doc_kind(p), "Policy");
    cr_assert_str_eq(dm_policy_doc_name(p), "pii-guard");
    cr_assert_str_eq(dm_policy_doc_kind(c), "DomainCertificate");
    dm_policy_doc_destroy(&g);
    dm_policy_doc_destroy(&p);
    dm_policy_doc_destroy(&c);
    cr_assert_null(g);
}

Test(policy, refuses_wrong_api_version_and_kind)
{
    doc_err("apiVersion: v2\nkind: Group\nmetadata: {name: g}\nspec: {members: []}\n", 1, 13,
            "apiVersion 'v2' is not datamesh.io/v1");
    doc_err(HDR "kind: Grop\nmetadata: {name: g}\nspec: {}\n", 2, 7,
            "kind 'Grop' is not one of Group, DomainCertificate, Policy (did you mean 'Group'?)");
}

Test(policy, refuses_missing_or_bad_name)
{
    doc_err(HDR "kind: Group\nmetadata: {}\nspec: {members: []}\n", 3, 11, "metadata.name is missing");
    doc_err(HDR "kind: Group\nmetadata: {name: Bad}\nspec: {members: []}\n", 3, 18,
            "metadata.name 'Bad' is not a name");
}

Test(policy, refuses_unknown_key_with_suggestion)
{
    doc_err(HDR "kind: Group\nmetadata: {name: g}\nspec: {membres: []}\n", 4, 8,
            "unknown key 'membres' (did you mean 'members'?)");
}

Test(policy, refuses_bad_keys)
{
    doc_err(HDR "kind: Group\nmetadata: {name: g}\nspec: {members: [abc]}\n", 4, 18,
            "spec.members entry 'abc' is not a key: an ed25519 public key is 64 hex digits");
    doc_err(HDR "kind: DomainCertificate\nmetadata: {name: c}\nspec: {domain: commerce, node: x}\n",
            4, 32, "spec.node 'x' is not a key");
}

Test(policy, refuses_unknown_action_effect_and_mask)
{
    doc_err(HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  access:\n"
                "    - {name: r, effect: maybe}\n", 6, 25, "effect 'maybe' is not one of deny, allow");
    doc_err(HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  access:\n"
                "    - {name: r, effect: deny, actions: [reed]}\n", 6, 41,
            "action 'reed' is not one of read, describe, write (did you mean 'read'?)");
    doc_err(HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  masks:\n"
                "    - {name: m, fields: {classification: pii}, mask: blur}\n", 6, 54,
            "mask 'blur' is not one of redact, hash, last4, null, year");
}

Test(policy, refuses_bad_globs)
{
    doc_err(HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  access:\n"
                "    - {name: r, effect: deny, products: [commerce]}\n", 6, 42,
            "products entry 'commerce' is not a product pattern: DOMAIN/NAME");
    doc_err(HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  access:\n"
                "    - {name: r, effect: deny, products: [\"a/b[c]\"]}\n", 6, 42,
            "is not a product pattern");
}

Test(policy, refuses_a_predicate_that_is_not_one_expression)
{
    const char *fmt = HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  rowFilters:\n"
                          "    - {name: f, predicate: \"%s\"}\n";
    const char *bad[][2] = {{"a = 1; DROP TABLE t", "one expression only"},
                            {"(a = 1", "a '(' is not closed"},
                            {"a = 1)", "a ')' closes nothing"},
                            {"a = 'x", "a quote is not closed"},
                            {"a = 1 -- ", "SQL comment"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[512];
        snprintf(text, sizeof text, fmt, bad[i][0]);
        doc_err(text, 6, 28, bad[i][1]);
    }
    dm_policy_doc_t *d = doc_ok(HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  rowFilters:\n"
                                    "    - {name: f, predicate: \"region = 'e;u' AND (x > 1)\"}\n");
    dm_policy_doc_destroy(&d);
}

Test(policy, refuses_duplicate_rule_names_and_missing_parts)
{
    doc_err(HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  access:\n"
                "    - {name: r, effect: deny}\n  masks:\n"
                "    - {name: r, fields: {names: [a]}, mask: hash}\n", 8, 14,
            "rule name 'r' is used twice");
    doc_err(HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  access:\n    - {effect: deny}\n", 6, 7,
            "spec.access[0] lacks a name");
    doc_err(HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  masks:\n"
                "    - {name: m, fields: {classification: pii, names: [a]}, mask: hash}\n", 6, 25,
            "needs exactly one of classification");
    doc_err(HDR "kind: Policy\nmetadata: {name: p}\nspec: {}\n", 4, 7, "the policy has no rules");
}

/* How many diagnostics parsing text gives. */
static size_t diag_count(const char *text)
{
    dm_policy_doc_t *d = NULL;
    dm_diags_t diags = DM_DIAGS_INIT;
    (void)!dm_policy_doc_parse("t.yaml", text, strlen(text), &d, &diags);
    size_t n = diags.count;
    dm_policy_doc_destroy(&d);
    dm_diags_clear(&diags);
    return n;
}

Test(policy, refuses_too_many_rules_and_too_big)
{
    dm_buf_t b = DM_BUF_INIT;
    dm_buf_puts(&b, HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  access:\n");
    for (int i = 0; i <= DM_POLICY_MAX_RULES; i++)
        dm_buf_printf(&b, "    - {name: r%d, effect: deny}\n", i);
    doc_err(b.data, 6, 5, "lists 4097 entries; at most 4096");
    cr_assert_eq(diag_count(b.data), 1, "the limit only, no 'the policy has no rules'");
    dm_buf_free(&b);
    dm_buf_puts(&b, HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  access:\n");
    for (int i = 0; i < DM_POLICY_MAX_RULES; i++)
        dm_buf_printf(&b, "    - {name: r%d, effect: deny}\n", i);
    dm_buf_puts(&b, "  contractRules:\n    - {name: c, names: snake_case}\n");
    doc_err(b.data, 5, 3, "the policy has 4097 rules; a document has at most 4096");
    cr_assert_eq(diag_count(b.data), 1, "the limit only");
    dm_buf_free(&b);
    size_t len = DM_POLICY_MAX_DOC_BYTES + 1;
    char *big = malloc(len);
    memset(big, ' ', len);
    dm_policy_doc_t *d = NULL;
    dm_diags_t diags = DM_DIAGS_INIT;
    cr_assert_eq(dm_policy_doc_parse("big", big, len, &d, &diags), DM_ERR_TOOBIG);
    cr_assert(strstr(diags.items[0].message, "at most 262144"));
    dm_diags_clear(&diags);
    free(big);
}

Test(policy, refuses_two_documents_in_one)
{
    doc_err("---\n" HDR "kind: Group\nmetadata: {name: g}\nspec: {members: []}\n---\n" HDR
            "kind: Group\nmetadata: {name: h}\nspec: {members: []}\n", 7, 1,
            "a second YAML document: a governance document is one YAML document");
}

/* ---- decisions ---- */

Test(policy, governance_deny_beats_owner_public)
{
    const char *docs[] = {s_group_cc, s_deny_contractors, NULL};
    dm_policy_set_t *s = set_of(7, docs);
    product_t_ x;
    product_init(&x, DM_ACCESS_PUBLIC);
    key_t_ cc = key_of(0xcc), dd = key_of(0xdd);
    dm_policy_decision_t d = decide(s, cc.b, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow);
    cr_assert_str_eq(d.rule, "governance pii-guard/deny-contractors");
    cr_assert_str_eq(d.reason, "access denied to commerce.orders (public): governance policy pii-guard "
                               "rule deny-contractors (version 7) denies read to " HEX_CC);
    cr_assert_eq(d.policy_version, 7);
    dm_policy_decision_clear(&d);
    d = decide(s, dd.b, DM_POLICY_READ, &x.p);
    cr_assert(d.allow, "not a contractor: the owner's public access holds");
    cr_assert_str_eq(d.rule, "owner: public");
    dm_policy_decision_clear(&d);
    d = decide(s, cc.b, DM_POLICY_DESCRIBE, &x.p);
    cr_assert(d.allow, "the rule's actions default to read only");
    dm_policy_decision_clear(&d);
    dm_policy_set_unref(&s);
    cr_assert_null(s);
}

Test(policy, governance_allow_never_grants_what_the_owner_refused)
{
    const char *docs[] = {s_group_dd, s_allow_analysts, NULL};
    dm_policy_set_t *s = set_of(3, docs);
    product_t_ x;
    product_init(&x, DM_ACCESS_RESTRICTED);
    key_t_ dd = key_of(0xdd);
    dm_policy_decision_t d = decide(s, dd.b, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow, "an analyst who is not a reader stays refused");
    cr_assert_str_eq(d.rule, "owner: restricted, not a reader");
    dm_policy_decision_clear(&d);
    x.p.access = DM_ACCESS_PRIVATE;
    d = decide(s, dd.b, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow, "an allow does not open a private product");
    cr_assert_str_eq(d.rule, "owner: private, admins only");
    dm_policy_decision_clear(&d);
    dm_policy_set_unref(&s);
}

Test(policy, governance_allow_gates_the_owners_readers)
{
    const char *docs[] = {s_group_dd, s_allow_analysts, NULL};
    dm_policy_set_t *s = set_of(7, docs);
    product_t_ x;
    product_init(&x, DM_ACCESS_RESTRICTED);
    x.readers[0] = HEX_DD;
    x.readers[1] = HEX_EE;
    x.p.nreaders = 2;
    key_t_ aa = key_of(0xaa), dd = key_of(0xdd), ee = key_of(0xee);
    dm_policy_decision_t d = decide(s, dd.b, DM_POLICY_READ, &x.p);
    cr_assert(d.allow, "a reader the gate lets in reads");
    cr_assert_str_eq(d.rule, "owner: restricted, a reader");
    dm_policy_decision_clear(&d);
    d = decide(s, ee.b, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow, "a reader outside the allow's consumers is refused");
    cr_assert_str_eq(d.rule, "governance analysts-read/sales");
    cr_assert_str_eq(d.reason, "access denied to commerce.orders (restricted): governance policy "
                               "analysts-read rule sales allows read only to group:analysts "
                               "(version 7); " HEX_EE " is not one of them");
    dm_policy_decision_clear(&d);
    dm_policy_request_t req = {ee.b, DM_POLICY_READ, &x.p};
    dm_buf_t why = DM_BUF_INIT;
    dm_policy_explain(s, &s_owner, &req, &why);
    cr_assert(strstr(why.data, "governance analysts-read/sales: allow read, the caller is not among "
                               "its consumers\ndecision: deny by governance analysts-read/sales"),
              "%s", why.data);
    dm_buf_free(&why);
    d = decide(s, aa.b, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow, "the gate holds for the domain admins too");
    cr_assert_str_eq(d.rule, "governance analysts-read/sales");
    dm_policy_decision_clear(&d);
    d = decide(s, ee.b, DM_POLICY_DESCRIBE, &x.p);
    cr_assert(d.allow, "the allow is about reads only");
    dm_policy_decision_clear(&d);
    x.tags[0] = "finance";
    d = decide(s, ee.b, DM_POLICY_READ, &x.p);
    cr_assert(d.allow, "the allow is about products tagged sales only");
    dm_policy_decision_clear(&d);
    dm_policy_set_unref(&s);
}

Test(policy, governance_allow_does_not_bring_back_a_revoked_reader)
{
    const char *docs[] = {s_group_dd, s_allow_analysts, NULL};
    dm_policy_set_t *s = set_of(7, docs);
    product_t_ x;
    product_init(&x, DM_ACCESS_RESTRICTED);
    x.readers[0] = HEX_BB; /* the owner revoked dd: readers no longer hold it */
    x.p.nreaders = 1;
    key_t_ dd = key_of(0xdd);
    dm_policy_decision_t d = decide(s, dd.b, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow);
    cr_assert_str_eq(d.reason, "access denied to commerce.orders (restricted): " HEX_DD " is not a reader");
    dm_policy_decision_clear(&d);
    dm_policy_set_unref(&s);
}

Test(policy, restricted_serves_readers_and_group_readers)
{
    const char *docs[] = {s_group_dd, NULL};
    dm_policy_set_t *s = set_of(1, docs);
    product_t_ x;
    product_init(&x, DM_ACCESS_RESTRICTED);
    x.readers[0] = HEX_BB;
    x.readers[1] = "group:analysts";
    x.p.nreaders = 2;
    key_t_ bb = key_of(0xbb), dd = key_of(0xdd), ee = key_of(0xee);
    dm_policy_decision_t d = decide(s, bb.b, DM_POLICY_READ, &x.p);
    cr_assert(d.allow);
    cr_assert_str_eq(d.rule, "owner: restricted, a reader");
    dm_policy_decision_clear(&d);
    d = decide(s, dd.b, DM_POLICY_READ, &x.p);
    cr_assert(d.allow, "a member of a reader group reads");
    dm_policy_decision_clear(&d);
    d = decide(s, ee.b, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow);
    cr_assert_str_eq(d.reason, "access denied to commerce.orders (restricted): " HEX_EE " is not a reader");
    dm_policy_decision_clear(&d);
    d = decide(NULL, dd.b, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow, "without a set no group has members");
    cr_assert_eq(d.policy_version, 0);
    dm_policy_decision_clear(&d);
    dm_policy_set_unref(&s);
}

Test(policy, private_is_for_admins_only)
{
    product_t_ x;
    product_init(&x, DM_ACCESS_PRIVATE);
    x.readers[0] = HEX_BB;
    x.p.nreaders = 1;
    key_t_ aa = key_of(0xaa), bb = key_of(0xbb);
    dm_policy_decision_t d = decide(NULL, bb.b, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow, "readers do not open a private product");
    cr_assert_str_eq(d.reason, "access denied to commerce.orders (private): " HEX_BB " is not a commerce admin");
    dm_policy_decision_clear(&d);
    d = decide(NULL, aa.b, DM_POLICY_READ, &x.p);
    cr_assert(d.allow);
    cr_assert_str_eq(d.rule, "owner: admin");
    dm_policy_decision_clear(&d);
}

Test(policy, unverified_caller_reads_public_only)
{
    product_t_ x;
    product_init(&x, DM_ACCESS_PUBLIC);
    dm_policy_decision_t d = decide(NULL, NULL, DM_POLICY_READ, &x.p);
    cr_assert(d.allow);
    dm_policy_decision_clear(&d);
    x.p.access = DM_ACCESS_RESTRICTED;
    x.readers[0] = "group:anyone";
    x.p.nreaders = 1;
    d = decide(NULL, NULL, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow);
    cr_assert(strstr(d.reason, "(restricted): the caller's key is not verified"), "%s", d.reason);
    dm_policy_decision_clear(&d);
}

Test(policy, an_allow_for_anyone_widens_nothing)
{
    const char *docs[] = {HDR "kind: Policy\nmetadata: {name: open}\nspec:\n  access:\n"
                              "    - {name: all, effect: allow}\n", NULL};
    dm_policy_set_t *s = set_of(1, docs);
    product_t_ x;
    product_init(&x, DM_ACCESS_RESTRICTED);
    key_t_ ee = key_of(0xee);
    dm_policy_decision_t d = decide(s, NULL, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow);
    cr_assert(strstr(d.reason, "(restricted): the caller's key is not verified"), "%s", d.reason);
    dm_policy_decision_clear(&d);
    d = decide(s, ee.b, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow, "the owner still decides: ee is not a reader");
    cr_assert_str_eq(d.rule, "owner: restricted, not a reader");
    dm_policy_decision_clear(&d);
    x.p.access = DM_ACCESS_PUBLIC;
    d = decide(s, NULL, DM_POLICY_READ, &x.p);
    cr_assert(d.allow, "an allow for \"*\" lets an unverified caller through the gate");
    cr_assert_str_eq(d.rule, "owner: public");
    dm_policy_decision_clear(&d);
    dm_policy_set_unref(&s);
}

Test(policy, unverified_caller_fails_a_gate_that_names_identities)
{
    const char *docs[] = {s_group_dd, s_allow_analysts, NULL};
    dm_policy_set_t *s = set_of(2, docs);
    product_t_ x;
    product_init(&x, DM_ACCESS_PUBLIC);
    dm_policy_decision_t d = decide(s, NULL, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow);
    cr_assert_str_eq(d.reason, "access denied to commerce.orders (public): governance policy "
                               "analysts-read rule sales allows read only to group:analysts "
                               "(version 2); an unverified caller is not one of them");
    dm_policy_decision_clear(&d);
    dm_policy_set_unref(&s);
}

Test(policy, describe_is_open_unless_governance_denies)
{
    product_t_ x;
    product_init(&x, DM_ACCESS_PRIVATE);
    key_t_ ee = key_of(0xee);
    dm_policy_decision_t d = decide(NULL, ee.b, DM_POLICY_DESCRIBE, &x.p);
    cr_assert(d.allow);
    cr_assert_str_eq(d.rule, "owner: describe is open");
    dm_policy_decision_clear(&d);
    const char *docs[] = {HDR "kind: Policy\nmetadata: {name: hide}\nspec:\n  access:\n"
                              "    - {name: secret, effect: deny, actions: [describe], "
                              "products: [commerce/orders]}\n", NULL};
    dm_policy_set_t *s = set_of(2, docs);
    d = decide(s, ee.b, DM_POLICY_DESCRIBE, &x.p);
    cr_assert_not(d.allow);
    cr_assert(strstr(d.reason, "denies describe to " HEX_EE), "%s", d.reason);
    dm_policy_decision_clear(&d);
    dm_policy_set_unref(&s);
}

Test(policy, writes_need_an_admin)
{
    product_t_ x;
    product_init(&x, DM_ACCESS_PUBLIC);
    key_t_ aa = key_of(0xaa), ee = key_of(0xee);
    dm_policy_decision_t d = decide(NULL, ee.b, DM_POLICY_WRITE, &x.p);
    cr_assert_not(d.allow);
    cr_assert_str_eq(d.rule, "owner: write needs a commerce admin");
    cr_assert_str_eq(d.reason, "permission denied: write to commerce/orders needs a commerce admin; "
                               "you are " HEX_EE);
    dm_policy_decision_clear(&d);
    d = decide(NULL, aa.b, DM_POLICY_WRITE, &x.p);
    cr_assert(d.allow);
    dm_policy_decision_clear(&d);
    d = decide(NULL, ee.b, DM_POLICY_WRITE, NULL);
    cr_assert_not(d.allow, "a write that names no product (admins) needs an admin too");
    dm_policy_decision_clear(&d);
}

Test(policy, governance_deny_on_write_binds_admins)
{
    const char *docs[] = {HDR "kind: Policy\nmetadata: {name: freeze}\nspec:\n  access:\n"
                              "    - {name: no-writes, effect: deny, actions: [write]}\n", NULL};
    dm_policy_set_t *s = set_of(4, docs);
    product_t_ x;
    product_init(&x, DM_ACCESS_PUBLIC);
    key_t_ aa = key_of(0xaa);
    dm_policy_decision_t d = decide(s, aa.b, DM_POLICY_WRITE, &x.p);
    cr_assert_not(d.allow);
    cr_assert_str_eq(d.rule, "governance freeze/no-writes");
    dm_policy_decision_clear(&d);
    dm_policy_set_unref(&s);
}

Test(policy, field_classification_selects_access_rules)
{
    const char *docs[] = {HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  access:\n"
                              "    - {name: no-pii, effect: deny, fields: {classification: pii}}\n", NULL};
    dm_policy_set_t *s = set_of(1, docs);
    product_t_ x;
    product_init(&x, DM_ACCESS_PUBLIC);
    key_t_ ee = key_of(0xee);
    dm_policy_decision_t d = decide(s, ee.b, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow);
    dm_policy_decision_clear(&d);
    x.cls[0] = NULL;
    d = decide(s, ee.b, DM_POLICY_READ, &x.p);
    cr_assert(d.allow, "no pii field: the rule does not apply");
    dm_policy_decision_clear(&d);
    dm_policy_set_unref(&s);
}

Test(policy, explain_lists_rules_then_the_decision)
{
    const char *docs[] = {s_group_cc, s_deny_contractors, NULL};
    dm_policy_set_t *s = set_of(7, docs);
    product_t_ x;
    product_init(&x, DM_ACCESS_PUBLIC);
    key_t_ cc = key_of(0xcc);
    dm_policy_request_t req = {cc.b, DM_POLICY_READ, &x.p};
    dm_buf_t out = DM_BUF_INIT;
    dm_policy_explain(s, &s_owner, &req, &out);
    cr_assert(strstr(out.data, "governance pii-guard/deny-contractors: deny read\n"), "%s", out.data);
    cr_assert(strstr(out.data, "decision: deny by governance pii-guard/deny-contractors: access denied"),
              "%s", out.data);
    dm_buf_free(&out);
    dm_policy_set_unref(&s);
}

Test(policy, explain_lists_every_rule_about_the_product_and_whether_it_applied)
{
    const char *docs[] = {s_group_cc, s_deny_contractors,
                          HDR "kind: Policy\nmetadata: {name: p}\nspec:\n"
                              "  access:\n"
                              "    - {name: w, effect: deny, actions: [write]}\n"
                              "    - {name: t, effect: deny, tags: [hr]}\n"
                              "  masks:\n"
                              "    - {name: m, fields: {classification: pii}, mask: hash}\n"
                              "    - {name: n, fields: {names: [phone]}, mask: hash}\n"
                              "  rowFilters:\n"
                              "    - {name: f, consumers: [\"group:contractors\"], "
                              "predicate: \"region = 'eu'\"}\n",
                          NULL};
    dm_policy_set_t *s = set_of(7, docs);
    product_t_ x;
    product_init(&x, DM_ACCESS_RESTRICTED);
    key_t_ ee = key_of(0xee);
    dm_policy_request_t req = {ee.b, DM_POLICY_READ, &x.p};
    dm_buf_t out = DM_BUF_INIT;
    dm_policy_explain(s, &s_owner, &req, &out);
    static const char *const lines[] = {
        "governance pii-guard/deny-contractors: deny read: not applied, the caller is not among "
        "its consumers\n",
        "governance p/w: deny: not applied, its actions do not include this one\n",
        "governance p/t: deny: not applied, the product has none of its tags\n",
        "owner: restricted, not a reader\n",
        "mask p/m (hash): not applied, the read is denied\n",
        "row filter p/f: not applied, the read is denied\n",
        "decision: deny by owner: restricted, not a reader"};
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        cr_assert_not_null(strstr(out.data, lines[i]), "no '%s' in:\n%s", lines[i], out.data);
    /* an allowed read: which masks and filters applied, which did not */
    x.p.access = DM_ACCESS_PUBLIC;
    dm_buf_reset(&out);
    dm_policy_explain(s, &s_owner, &req, &out);
    static const char *const read[] = {
        "mask p/m: email -> hash\n",
        "mask p/n (hash): not applied, it selects none of the product's fields\n",
        "row filter p/f: not applied, the caller is not among its consumers\n",
        "decision: allow by owner: public"};
    for (size_t i = 0; i < sizeof read / sizeof *read; i++)
        cr_assert_not_null(strstr(out.data, read[i]), "no '%s' in:\n%s", read[i], out.data);
    dm_buf_free(&out);
    dm_policy_set_unref(&s);
}

Test(policy, mask_names)
{
    cr_assert_str_eq(dm_policy_mask_name(DM_POLICY_MASK_NONE), "none");
    cr_assert_str_eq(dm_policy_mask_name(DM_POLICY_MASK_LAST4), "last4");
    cr_assert_str_eq(dm_policy_mask_name((dm_policy_mask)99), "none");
}
