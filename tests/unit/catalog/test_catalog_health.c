/* test_catalog_health.c: the "health/DOMAIN/NAME" key: the owner's record
 * travels and dm_catalog_health finds it on another node; another origin's
 * record of the domain is refused like its acl entries; payloads outside
 * the bounds (not a dm.HealthRecord, samples, unknown outcomes or kinds,
 * too many terms, long strings) are refused; a tombstone hides it. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_test.h"
#include "proto/mesh.pb-c.h"

#define S_NOW DM_T_CATALOG_NOW
#define S_KEY "health/commerce/orders"

static dm_t_cworld_t s_world;

static void s_teardown(void) { dm_t_cworld_clear(&s_world); }

TestSuite(catalog_health, .fini = s_teardown);

/* Packs a health record with outcome, one check (its outcome, samples)
 * and nsla freshness terms; the caller frees the result. */
static uint8_t *s_record(const char *outcome, const char *check_outcome, size_t nsamples,
                         size_t nsla, size_t *len)
{
    Dm__HealthRecord r = DM__HEALTH_RECORD__INIT;
    Dm__CheckResult k = DM__CHECK_RESULT__INIT;
    Dm__CheckResult *ks[1] = {&k};
    char *samples[4] = {"a", "b", "c", "d"};
    Dm__SlaStatus s = DM__SLA_STATUS__INIT;
    Dm__SlaStatus *ss[8] = {&s, &s, &s, &s, &s, &s, &s, &s};
    r.outcome = (char *)outcome;
    r.records = 5;
    k.name = "unique(sku)";
    k.rule = "unique";
    k.outcome = (char *)check_outcome;
    k.samples = samples;
    k.n_samples = nsamples;
    r.checks = ks;
    r.n_checks = 1;
    s.kind = "freshness";
    s.target = "5m";
    s.measured = "3m12s";
    s.met = true;
    r.sla = ss;
    r.n_sla = nsla;
    *len = dm__health_record__get_packed_size(&r);
    uint8_t *buf = malloc(*len ? *len : 1);
    dm__health_record__pack(&r, buf);
    return buf;
}

/* A node owning commerce with product orders. */
static dm_t_cnode_t *s_owner(void)
{
    dm_t_cnode_t *n = dm_t_cworld_node(&s_world, "test_catalog_health");
    dm_t_publish_wide(n->cat, n->id, "commerce", 0, 0, false);
    dm_buf_t json = DM_BUF_INIT;
    dm_t_wide_contract("commerce", "orders", 1, false, &json);
    cr_assert_eq(dm_catalog_publish(n->cat, "product/commerce/orders", json.data, json.len,
                                    false, S_NOW, NULL),
                 DM_OK);
    dm_buf_free(&json);
    return n;
}

Test(catalog_health, the_owners_record_travels_and_is_found_elsewhere)
{
    dm_t_cnode_t *a = s_owner(), *b = dm_t_cworld_node(&s_world, "test_catalog_health");
    size_t len = 0;
    uint8_t *rec = s_record("fail", "fail", 0, 1, &len);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_catalog_publish(a->cat, S_KEY, rec, len, false, S_NOW, &why), DM_OK, "%s",
                 why.data ? why.data : "");
    cr_assert_geq(dm_t_catalog_sync(a->cat, b->cat, 4), 3);
    dm_buf_t got = DM_BUF_INIT;
    cr_assert_eq(dm_catalog_health(b->cat, "commerce", "orders", &got), DM_OK);
    cr_assert_eq(got.len, len);
    cr_assert_eq(memcmp(got.data, rec, len), 0);
    cr_assert_eq(dm_catalog_health(b->cat, "commerce", "payments", &got), DM_ERR_NOTFOUND);
    cr_assert_eq(dm_catalog_health(b->cat, "logistics", "orders", &got), DM_ERR_NOTFOUND);
    /* The owner's tombstone hides it everywhere. */
    cr_assert_eq(dm_catalog_publish(a->cat, S_KEY, NULL, 0, true, S_NOW, NULL), DM_OK);
    cr_assert_eq(dm_t_catalog_sync(a->cat, b->cat, 4), 1);
    cr_assert_eq(dm_catalog_health(b->cat, "commerce", "orders", &got), DM_ERR_NOTFOUND);
    free(rec);
    dm_buf_free(&got);
    dm_buf_free(&why);
}

Test(catalog_health, another_origin_cannot_say_the_health_of_a_domain_it_does_not_own)
{
    dm_t_cnode_t *a = s_owner(), *b = dm_t_cworld_node(&s_world, "test_catalog_health");
    dm_identity_t *mallory = dm_t_cworld_key(&s_world);
    cr_assert_geq(dm_t_catalog_sync(a->cat, b->cat, 4), 2);
    size_t len = 0;
    uint8_t *rec = s_record("pass", "pass", 0, 0, &len);
    dm_catalog_entry_t e;
    dm_t_entry_sign(mallory, dm_identity_public(mallory), S_KEY, rec, len, 1, false, &e);
    dm_catalog_verdict v;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_catalog_apply(b->cat, &e, S_NOW, &v, &why), DM_OK);
    cr_assert_eq(v, DM_CATALOG_NOT_OWNER, "%s", dm_catalog_verdict_name(v));
    cr_assert_not_null(strstr(why.data, "pinned to"), "%s", why.data);
    dm_buf_t got = DM_BUF_INIT;
    cr_assert_eq(dm_catalog_health(b->cat, "commerce", "orders", &got), DM_ERR_NOTFOUND);
    /* Nor can a node publish health of a domain not pinned to it. */
    cr_assert_eq(dm_catalog_publish(b->cat, S_KEY, rec, len, false, S_NOW, &why),
                 DM_ERR_DENIED);
    free(rec);
    dm_buf_free(&got);
    dm_buf_free(&why);
}

/* Applies payload as the owner's signed health/ entry at b; the verdict. */
static dm_catalog_verdict s_apply(dm_t_cnode_t *a, dm_t_cnode_t *b, const void *payload,
                                  size_t len, dm_buf_t *why)
{
    dm_catalog_entry_t e;
    dm_t_entry_sign(a->id, dm_identity_public(a->id), S_KEY, payload, len,
                    dm_catalog_local_version(a->cat) + 1, false, &e);
    dm_catalog_verdict v;
    dm_buf_reset(why);
    cr_assert_eq(dm_catalog_apply(b->cat, &e, S_NOW, &v, why), DM_OK);
    return v;
}

Test(catalog_health, payloads_outside_the_bounds_are_refused)
{
    dm_t_cnode_t *a = s_owner(), *b = dm_t_cworld_node(&s_world, "test_catalog_health");
    cr_assert_geq(dm_t_catalog_sync(a->cat, b->cat, 4), 2);
    dm_buf_t why = DM_BUF_INIT;
    static const uint8_t junk[] = {0xff, 0xff, 0xff};
    cr_assert_eq(s_apply(a, b, junk, sizeof junk, &why), DM_CATALOG_MALFORMED);
    cr_assert_not_null(strstr(why.data, "not a dm.HealthRecord"), "%s", why.data);
    struct {
        const char *outcome, *check;
        size_t samples, nsla;
        const char *says;
    } cases[] = {
        {"fail", "fail", 2, 1, "samples"},
        {"broken", "pass", 0, 1, "outcome 'broken'"},
        {"pass", "maybe", 0, 1, "check 1's outcome"},
        {"pass", "pass", 0, DM_CATALOG_HEALTH_SLA_MAX + 1, "sla terms"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = 0;
        uint8_t *rec = s_record(cases[i].outcome, cases[i].check, cases[i].samples,
                                cases[i].nsla, &len);
        cr_assert_eq(s_apply(a, b, rec, len, &why), DM_CATALOG_MALFORMED, "case %zu", i);
        cr_assert_not_null(strstr(why.data, cases[i].says), "case %zu: %s", i, why.data);
        free(rec);
    }
    /* A string over the bound. */
    char *longtext = malloc(DM_CATALOG_HEALTH_TEXT_MAX + 2);
    memset(longtext, 'x', DM_CATALOG_HEALTH_TEXT_MAX + 1);
    longtext[DM_CATALOG_HEALTH_TEXT_MAX + 1] = 0;
    Dm__HealthRecord r = DM__HEALTH_RECORD__INIT;
    Dm__SlaStatus s = DM__SLA_STATUS__INIT;
    Dm__SlaStatus *ss[1] = {&s};
    s.kind = "latency";
    s.measured = longtext;
    r.sla = ss;
    r.n_sla = 1;
    uint8_t buf[2048];
    size_t len = dm__health_record__pack(&r, buf);
    cr_assert_eq(s_apply(a, b, buf, len, &why), DM_CATALOG_MALFORMED);
    cr_assert_not_null(strstr(why.data, "measured is over"), "%s", why.data);
    free(longtext);
    /* An empty record (nothing measured yet) is a valid one. */
    cr_assert_eq(s_apply(a, b, "", 0, &why), DM_CATALOG_ACCEPTED, "%s", why.data);
    dm_buf_free(&why);
}
