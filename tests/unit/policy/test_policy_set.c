/* test_policy_set.c: sets of governance documents (suite "policy"): masks
 * and the tie refusal, row filters as PostgreSQL combines them, groups,
 * certificates, replacement by name, and decisions from many threads. */
#include <pthread.h>

#include "policy_test.h"

static const char *const s_mask_pii = HDR "kind: Policy\nmetadata: {name: pii-guard}\nspec:\n"
                                          "  masks:\n"
                                          "    - name: mask-pii\n"
                                          "      fields: {classification: pii}\n"
                                          "      mask: hash\n"
                                          "      except: [\"group:pii-readers\"]\n";
static const char *const s_pii_readers = HDR "kind: Group\nmetadata: {name: pii-readers}\n"
                                             "spec: {members: [" HEX_BB "]}\n";

static dm_err s_try_add(const char *const *texts, dm_buf_t *why)
{
    dm_policy_set_t *s = NULL;
    cr_assert_eq(dm_policy_set_new(1, &s), DM_OK);
    dm_err rc = DM_OK;
    for (size_t i = 0; texts[i] && rc == DM_OK; i++) {
        dm_policy_doc_t *d = doc_ok(texts[i]);
        rc = dm_policy_set_add(s, &d, why);
        cr_assert_null(d, "add takes the document, also on failure");
    }
    dm_policy_set_unref(&s);
    return rc;
}

Test(policy, masks_a_classified_field_for_others_only)
{
    const char *docs[] = {s_mask_pii, s_pii_readers, NULL};
    dm_policy_set_t *s = set_of(5, docs);
    product_t_ x;
    product_init(&x, DM_ACCESS_PUBLIC);
    key_t_ aa = key_of(0xaa), bb = key_of(0xbb), ee = key_of(0xee);
    dm_policy_decision_t d = decide(s, ee.b, DM_POLICY_READ, &x.p);
    cr_assert(d.allow);
    cr_assert_not_null(d.masks);
    cr_assert_eq(d.nmasks, 2);
    cr_assert_eq(d.masks[0], DM_POLICY_MASK_HASH);
    cr_assert_eq(d.masks[1], DM_POLICY_MASK_NONE);
    dm_policy_decision_clear(&d);
    cr_assert_null(d.masks);
    d = decide(s, bb.b, DM_POLICY_READ, &x.p);
    cr_assert_null(d.masks, "the except group sees raw values");
    dm_policy_decision_clear(&d);
    d = decide(s, aa.b, DM_POLICY_READ, &x.p);
    cr_assert_null(d.masks, "domain admins are never masked");
    dm_policy_decision_clear(&d);
    d = decide(s, ee.b, DM_POLICY_DESCRIBE, &x.p);
    cr_assert_null(d.masks, "masks are for reads");
    dm_policy_decision_clear(&d);
    dm_policy_set_unref(&s);
}

Test(policy, refuses_a_mask_tie_naming_both_rules)
{
    const char *other = HDR "kind: Policy\nmetadata: {name: other}\nspec:\n  masks:\n"
                            "    - {name: redact-email, fields: {names: [email]}, mask: redact}\n";
    const char *docs[] = {s_mask_pii, other, NULL};
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(s_try_add(docs, &why), DM_ERR_CONFLICT);
    cr_assert(strstr(why.data, "mask rule other/redact-email (redact) and mask rule pii-guard/mask-pii "
                               "(hash) may mask one column"), "%s", why.data);
    dm_buf_free(&why);
}

Test(policy, refuses_a_tie_inside_one_document)
{
    const char *docs[] = {HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  masks:\n"
                              "    - {name: a, fields: {names: [email, x]}, mask: redact}\n"
                              "    - {name: b, fields: {names: [email]}, mask: null}\n", NULL};
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(s_try_add(docs, &why), DM_ERR_CONFLICT);
    cr_assert(strstr(why.data, "p/a (redact) and mask rule p/b (null)"), "%s", why.data);
    dm_buf_free(&why);
}

Test(policy, no_tie_for_same_mask_disjoint_products_or_fields)
{
    const char *docs[] = {HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  masks:\n"
                              "    - {name: a, products: [s/t], fields: {names: [email]}, mask: redact}\n"
                              "    - {name: b, products: [s/t], fields: {names: [email]}, mask: redact}\n"
                              "    - {name: c, products: [s/t], fields: {names: [phone]}, mask: last4}\n"
                              "    - {name: d, products: [x/y], fields: {names: [email]}, mask: year}\n"
                              "    - {name: e, products: [x/z], fields: {names: [email]}, mask: null}\n"
                              "    - {name: f, products: [u/v], fields: {classification: secret}, mask: null}\n"
                              "    - {name: g, products: [u/v], fields: {classification: pii}, mask: hash}\n",
                          NULL};
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(s_try_add(docs, &why), DM_OK, "%s", why.data);
    dm_buf_free(&why);
    const char *glob[] = {HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  masks:\n"
                              "    - {name: d, products: [x/y], fields: {names: [email]}, mask: year}\n"
                              "    - {name: e, products: [\"x/*\"], fields: {names: [email]}, mask: null}\n",
                          NULL};
    cr_assert_eq(s_try_add(glob, NULL), DM_ERR_CONFLICT, "a glob may overlap a literal");
}

Test(policy, check_tries_a_document_against_a_sealed_set)
{
    const char *docs[] = {s_mask_pii, NULL};
    dm_policy_set_t *s = set_of(1, docs);
    dm_policy_doc_t *tie = doc_ok(HDR "kind: Policy\nmetadata: {name: other}\nspec:\n  masks:\n"
                                      "    - {name: m, fields: {classification: pii}, mask: null}\n");
    dm_policy_doc_t *same = doc_ok(HDR "kind: Policy\nmetadata: {name: pii-guard}\nspec:\n  masks:\n"
                                       "    - {name: m, fields: {classification: pii}, mask: null}\n");
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_policy_set_check(s, tie, &why), DM_ERR_CONFLICT);
    cr_assert_eq(dm_policy_set_check(s, same, NULL), DM_OK, "a document replaces its namesake");
    dm_buf_free(&why);
    dm_policy_doc_destroy(&tie);
    dm_policy_doc_destroy(&same);
    dm_policy_set_unref(&s);
}

Test(policy, a_document_replaces_its_namesake)
{
    const char *docs[] = {HDR "kind: Group\nmetadata: {name: g}\nspec: {members: [" HEX_BB "]}\n",
                          HDR "kind: Group\nmetadata: {name: g}\nspec: {members: [" HEX_CC "]}\n", NULL};
    dm_policy_set_t *s = set_of(1, docs);
    key_t_ bb = key_of(0xbb), cc = key_of(0xcc);
    cr_assert_eq(dm_policy_set_ndocs(s), 1);
    cr_assert_not(dm_policy_set_in_group(s, "g", bb.b));
    cr_assert(dm_policy_set_in_group(s, "g", cc.b));
    dm_policy_set_unref(&s);
}

Test(policy, groups_of_lists_memberships_in_name_order)
{
    const char *docs[] = {HDR "kind: Group\nmetadata: {name: zeta}\nspec: {members: [" HEX_BB ", " HEX_CC "]}\n",
                          HDR "kind: Group\nmetadata: {name: alpha}\nspec: {members: [" HEX_BB "]}\n",
                          HDR "kind: Group\nmetadata: {name: mid}\nspec: {members: [" HEX_CC "]}\n", NULL};
    dm_policy_set_t *s = set_of(1, docs);
    key_t_ bb = key_of(0xbb);
    dm_buf_t out = DM_BUF_INIT;
    dm_policy_set_groups_of(s, bb.b, &out);
    cr_assert_str_eq(out.data, "alpha,zeta");
    dm_buf_free(&out);
    cr_assert_not(dm_policy_set_in_group(s, "nosuch", bb.b));
    dm_policy_set_unref(&s);
}

static void s_count_cert(void *ctx, const char *domain, const uint8_t node[DM_POLICY_KEY_BYTES])
{
    dm_buf_printf(ctx, "%s:%02x;", domain, node[0]);
}

Test(policy, certificates_bind_a_domain_to_one_node)
{
    const char *a = HDR "kind: DomainCertificate\nmetadata: {name: cert-commerce}\n"
                        "spec: {domain: commerce, node: " HEX_BB "}\n";
    const char *b = HDR "kind: DomainCertificate\nmetadata: {name: cert-billing}\n"
                        "spec: {domain: billing, node: " HEX_CC "}\n";
    const char *docs[] = {a, b, NULL};
    dm_policy_set_t *s = set_of(1, docs);
    uint8_t node[DM_POLICY_KEY_BYTES];
    cr_assert(dm_policy_set_certificate(s, "commerce", node));
    cr_assert_eq(node[0], 0xbb);
    cr_assert_not(dm_policy_set_certificate(s, "identity", node));
    dm_buf_t out = DM_BUF_INIT;
    dm_policy_set_each_certificate(s, s_count_cert, &out);
    cr_assert_str_eq(out.data, "billing:cc;commerce:bb;");
    dm_buf_free(&out);
    dm_policy_set_unref(&s);
    const char *twice = HDR "kind: DomainCertificate\nmetadata: {name: cert-2}\n"
                            "spec: {domain: commerce, node: " HEX_DD "}\n";
    const char *bad[] = {a, twice, NULL};
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(s_try_add(bad, &why), DM_ERR_CONFLICT);
    cr_assert(strstr(why.data, "certificate cert-2 binds domain commerce to node " HEX_DD
                               ", but certificate cert-commerce binds it to node " HEX_BB), "%s",
              why.data);
    dm_buf_free(&why);
}

static const char *const s_filters = HDR "kind: Policy\nmetadata: {name: rows}\nspec:\n  rowFilters:\n"
                                         "    - {name: eu, products: [commerce/orders], "
                                         "consumers: [\"group:eu\"], predicate: \"region = 'eu'\"}\n"
                                         "    - {name: us, consumers: [\"group:us\"], "
                                         "predicate: \"region = 'us'\"}\n"
                                         "    - {name: recent, consumers: [\"group:eu\", \"group:recent\"], "
                                         "predicate: \"year >= 2025\", mode: restrictive}\n"
                                         "    - {name: small, consumers: [\"group:recent\"], "
                                         "predicate: \"amount < 100\", mode: restrictive}\n";

static char *s_filter_of(const dm_policy_set_t *s, uint8_t who)
{
    product_t_ x;
    product_init(&x, DM_ACCESS_PUBLIC);
    key_t_ k = key_of(who);
    dm_policy_decision_t d = decide(s, k.b, DM_POLICY_READ, &x.p);
    cr_assert(d.allow);
    char *f = d.row_filter ? strdup(d.row_filter) : NULL;
    dm_policy_decision_clear(&d);
    return f;
}

Test(policy, row_filters_combine_as_postgresql_row_security)
{
    const char *docs[] = {s_filters,
                          HDR "kind: Group\nmetadata: {name: eu}\nspec: {members: [" HEX_BB ", " HEX_DD "]}\n",
                          HDR "kind: Group\nmetadata: {name: us}\nspec: {members: [" HEX_DD "]}\n",
                          HDR "kind: Group\nmetadata: {name: recent}\nspec: {members: [" HEX_CC "]}\n",
                          NULL};
    dm_policy_set_t *s = set_of(1, docs);
    char *f = s_filter_of(s, 0xee);
    cr_assert_null(f, "no filter matches: no filter");
    f = s_filter_of(s, 0xbb);
    cr_assert_str_eq(f, "(region = 'eu') AND (year >= 2025)");
    free(f);
    f = s_filter_of(s, 0xdd);
    cr_assert_str_eq(f, "((region = 'eu') OR (region = 'us')) AND (year >= 2025)");
    free(f);
    f = s_filter_of(s, 0xcc);
    cr_assert_str_eq(f, "(year >= 2025) AND (amount < 100)");
    free(f);
    f = s_filter_of(s, 0xaa);
    cr_assert_null(f, "domain admins are never filtered");
    dm_policy_set_unref(&s);
}

Test(policy, a_lone_filter_is_its_predicate)
{
    const char *docs[] = {HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  rowFilters:\n"
                              "    - {name: eu, predicate: \"region = 'eu'\"}\n", NULL};
    dm_policy_set_t *s = set_of(1, docs);
    char *f = s_filter_of(s, 0xee);
    cr_assert_str_eq(f, "region = 'eu'");
    free(f);
    dm_policy_set_unref(&s);
}

/* ---- many products, many threads ---- */

typedef struct {
    const dm_policy_set_t *s;
    int failures;
} s_thread_t;

static void *s_decider(void *arg)
{
    s_thread_t *t = arg;
    key_t_ cc = key_of(0xcc), ee = key_of(0xee);
    for (int i = 0; i < 20000; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i % 5000);
        const char *tags[1] = {"sales"}, *fields[1] = {"email"}, *cls[1] = {"pii"};
        dm_policy_product_t p = {i % 2 ? "commerce" : "billing", name, tags, 1, DM_ACCESS_PUBLIC,
                                 NULL, 0, fields, cls, 1};
        dm_policy_request_t req = {i % 3 ? cc.b : ee.b, DM_POLICY_READ, &p};
        dm_policy_decision_t d;
        if (dm_policy_decide(t->s, &s_owner, &req, &d) != DM_OK) {
            t->failures++;
            continue;
        }
        bool want = !(i % 2 && i % 3); /* contractors are denied commerce only */
        if (d.allow != want || (d.allow && (!d.masks || d.masks[0] != DM_POLICY_MASK_HASH)))
            t->failures++;
        dm_policy_decision_clear(&d);
    }
    return NULL;
}

Test(policy, decides_from_many_threads_over_many_products)
{
    const char *docs[] = {HDR "kind: Group\nmetadata: {name: contractors}\nspec: {members: [" HEX_CC "]}\n",
                          HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  access:\n"
                              "    - {name: d, effect: deny, products: [\"commerce/*\"], "
                              "consumers: [\"group:contractors\"]}\n  masks:\n"
                              "    - {name: m, fields: {classification: pii}, mask: hash}\n", NULL};
    dm_policy_set_t *s = set_of(1, docs);
    s_thread_t t[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (s_thread_t){dm_policy_set_ref(s), 0};
        cr_assert_eq(pthread_create(&th[i], NULL, s_decider, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(t[i].failures, 0, "thread %d: %d wrong decisions", i, t[i].failures);
        dm_policy_set_t *r = (dm_policy_set_t *)t[i].s;
        dm_policy_set_unref(&r);
    }
    dm_policy_set_unref(&s);
}

Test(policy, an_empty_set_decides_as_the_owner)
{
    const char *docs[] = {NULL};
    dm_policy_set_t *s = set_of(9, docs);
    cr_assert_eq(dm_policy_set_ndocs(s), 0);
    product_t_ x;
    product_init(&x, DM_ACCESS_PUBLIC);
    key_t_ ee = key_of(0xee);
    dm_policy_decision_t d = decide(s, ee.b, DM_POLICY_READ, &x.p);
    cr_assert(d.allow);
    cr_assert_eq(d.policy_version, 9);
    cr_assert_null(d.masks);
    cr_assert_null(d.row_filter);
    dm_policy_decision_clear(&d);
    dm_policy_set_unref(&s);
}

Test(policy, field_names_match_ignoring_ascii_case_as_sql_does)
{
    const char *docs[] = {HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  masks:\n"
                              "    - {name: m, fields: {names: [email]}, mask: redact}\n"
                              "  access:\n"
                              "    - {name: d, effect: deny, fields: {names: [AMOUNT]},\n"
                              "       consumers: [\"" HEX_CC "\"]}\n", NULL};
    dm_policy_set_t *s = set_of(3, docs);
    product_t_ x;
    product_init(&x, DM_ACCESS_PUBLIC);
    x.fields[0] = "Email";
    x.cls[0] = NULL;
    key_t_ cc = key_of(0xcc), ee = key_of(0xee);
    dm_policy_decision_t d = decide(s, ee.b, DM_POLICY_READ, &x.p);
    cr_assert(d.allow);
    cr_assert_not_null(d.masks, "a mask on email missed the field Email");
    cr_assert_eq(d.masks[0], DM_POLICY_MASK_REDACT);
    dm_policy_decision_clear(&d);
    d = decide(s, cc.b, DM_POLICY_READ, &x.p);
    cr_assert_not(d.allow, "a deny on AMOUNT missed the field amount");
    dm_policy_decision_clear(&d);
    dm_policy_set_unref(&s);
    /* and two masks on one column whatever its case are a tie */
    const char *tie[] = {HDR "kind: Policy\nmetadata: {name: p}\nspec:\n  masks:\n"
                             "    - {name: a, fields: {names: [Email]}, mask: redact}\n"
                             "    - {name: b, fields: {names: [eMAIL]}, mask: null}\n", NULL};
    cr_assert_eq(s_try_add(tie, NULL), DM_ERR_CONFLICT);
}
