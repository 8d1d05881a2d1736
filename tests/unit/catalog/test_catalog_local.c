/* test_catalog_local.c: this node's catalog entries reconciled with a real
 * LMDB store in a temp dir: a new product is published, an upgrade is
 * published again, a deregistered product is tombstoned, and nothing is
 * published when catalog and store agree; a deregistered product's acl
 * entry and its health entry are tombstoned with it; what a certificate held elsewhere refused is
 * published by the next round once the certificate moves the domain here. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_local.h"
#include "catalog_test.h"
#include "fixture.h"

#define S_NOW DM_T_CATALOG_NOW
#define S_DOMAIN "commerce"

static char s_dir[PATH_MAX];
static dm_store_t *s_store;
static dm_identity_t *s_id;
static dm_catalog_t *s_cat;
static char s_addr[DM_ADDRESS_MAX];
static dm_diags_t s_diags = DM_DIAGS_INIT;

static void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_catalog_local"));
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&s_id), DM_OK);
    cr_assert_eq(dm_catalog_open(s_store, s_id, &s_cat, NULL), DM_OK);
    cr_assert_eq(dm_identity_address_format(dm_identity_public(s_id), "tcp://127.0.0.1:9", s_addr,
                                            sizeof s_addr, NULL),
                 DM_OK);
}

static void s_teardown(void)
{
    dm_diags_clear(&s_diags);
    dm_catalog_destroy(&s_cat);
    dm_store_destroy(&s_store);
    dm_identity_destroy(&s_id);
    dm_t_rmdir(s_dir);
}

TestSuite(catalog_local, .init = s_setup, .fini = s_teardown);

/* Registers S_DOMAIN/name at major.0.0 in the store, its contract a valid
 * one of nfields fields (so another nfields is another contract). */
static void s_register(const char *name, uint64_t major, unsigned nfields)
{
    dm_buf_t json = DM_BUF_INIT;
    dm_t_wide_contract(S_DOMAIN, name, nfields, false, &json);
    char version[32];
    snprintf(version, sizeof version, "%llu.0.0", (unsigned long long)major);
    dm_product_t p = {0};
    p.domain = (char *)S_DOMAIN;
    p.name = (char *)name;
    p.version = version;
    p.version_major = major;
    memset(p.hash, (int)major, sizeof p.hash);
    p.contract = json.data;
    p.contract_len = json.len;
    dm_register_outcome oc;
    cr_assert_eq(dm_store_product_register(s_store, &p, &oc, NULL, NULL, NULL), DM_OK);
    dm_buf_free(&json);
}

static bool s_reconcile(bool node_record)
{
    dm_catalog_local_t what = {dm_identity_public(s_id), S_DOMAIN, s_addr, node_record};
    return dm_catalog_local_reconcile(s_cat, s_store, &what, S_NOW, &s_diags);
}

/* The entry this node published for S_DOMAIN/name (cleared by the caller). */
static dm_catalog_entry_t s_entry(const char *name)
{
    char key[DM_CATALOG_KEY_MAX];
    snprintf(key, sizeof key, "%s%s/%s", DM_CATALOG_PRODUCT_PREFIX, S_DOMAIN, name);
    dm_catalog_entry_t e = {0};
    cr_assert_eq(dm_catalog_get(s_cat, dm_identity_public(s_id), key, &e), DM_OK, "%s", key);
    return e;
}

Test(catalog_local, publishes_a_new_product)
{
    s_register("orders", 1, 1);
    cr_assert(s_reconcile(true));
    cr_assert_eq(s_diags.count, 0, "%s", s_diags.count ? s_diags.items[0].message : "");
    dm_product_t p = {0};
    cr_assert_eq(dm_store_product_get(s_store, S_DOMAIN, "orders", &p, NULL), DM_OK);
    dm_catalog_entry_t e = s_entry("orders");
    cr_assert_not(e.tombstone);
    cr_assert_eq(e.payload_len, p.contract_len);
    cr_assert_eq(memcmp(e.payload, p.contract, p.contract_len), 0);
    dm_catalog_entry_clear(&e);
    dm_store_product_clear(&p);
}

Test(catalog_local, publishes_an_upgrade_again)
{
    s_register("orders", 1, 1);
    cr_assert(s_reconcile(true));
    dm_catalog_entry_t before = s_entry("orders");
    s_register("orders", 2, 2);
    cr_assert(s_reconcile(false));
    cr_assert_eq(s_diags.count, 0, "%s", s_diags.count ? s_diags.items[0].message : "");
    dm_catalog_entry_t after = s_entry("orders");
    cr_assert_gt(after.version, before.version);
    cr_assert_neq(after.payload_len, before.payload_len);
    dm_catalog_entry_clear(&before);
    dm_catalog_entry_clear(&after);
}

Test(catalog_local, tombstones_a_deregistered_product)
{
    s_register("orders", 1, 1);
    s_register("payments", 1, 1);
    cr_assert(s_reconcile(true));
    cr_assert_eq(dm_store_product_delete(s_store, S_DOMAIN, "orders", NULL, NULL), DM_OK);
    cr_assert(s_reconcile(false));
    cr_assert_eq(s_diags.count, 0, "%s", s_diags.count ? s_diags.items[0].message : "");
    dm_catalog_entry_t gone = s_entry("orders");
    dm_catalog_entry_t kept = s_entry("payments");
    cr_assert(gone.tombstone);
    cr_assert_not(kept.tombstone);
    dm_catalog_entry_clear(&gone);
    dm_catalog_entry_clear(&kept);
}

Test(catalog_local, publishes_nothing_when_catalog_and_store_agree)
{
    s_register("orders", 1, 1);
    cr_assert(s_reconcile(true));
    uint64_t version = dm_catalog_local_version(s_cat);
    cr_assert_not(s_reconcile(false));
    cr_assert_eq(dm_catalog_local_version(s_cat), version);
    cr_assert_eq(s_diags.count, 0);
}

Test(catalog_local, a_refused_publication_is_reported_and_retried)
{
    /* No node record yet: the domain is not pinned to this node, so the
     * product is refused and said so; a round that publishes the node
     * record first (as the node does at start-up) then publishes it. */
    s_register("orders", 1, 1);
    cr_assert_not(s_reconcile(false));
    cr_assert_eq(s_diags.count, 1);
    cr_assert_not_null(strstr(s_diags.items[0].message, "cannot publish product/commerce/orders"),
                       "%s", s_diags.items[0].message);
    dm_diags_clear(&s_diags);
    cr_assert(s_reconcile(true));
    cr_assert_eq(s_diags.count, 0, "%s", s_diags.count ? s_diags.items[0].message : "");
    dm_catalog_entry_t e = s_entry("orders");
    cr_assert_not(e.tombstone);
    dm_catalog_entry_clear(&e);
}

Test(catalog_local, tombstones_the_grants_of_a_deregistered_product)
{
    s_register("orders", 1, 1);
    s_register("payments", 1, 1);
    cr_assert(s_reconcile(true));
    /* an empty dm.AclRecord is a valid one */
    cr_assert_eq(dm_catalog_publish(s_cat, "acl/commerce/orders", "", 0, false, S_NOW, NULL),
                 DM_OK);
    cr_assert_eq(dm_catalog_publish(s_cat, "acl/commerce/payments", "", 0, false, S_NOW, NULL),
                 DM_OK);
    cr_assert_eq(dm_store_product_delete(s_store, S_DOMAIN, "orders", NULL, NULL), DM_OK);
    cr_assert(s_reconcile(false));
    cr_assert_eq(s_diags.count, 0, "%s", s_diags.count ? s_diags.items[0].message : "");
    dm_buf_t acl = DM_BUF_INIT;
    cr_assert_eq(dm_catalog_acl(s_cat, S_DOMAIN, "orders", &acl), DM_ERR_NOTFOUND);
    cr_assert_eq(dm_catalog_acl(s_cat, S_DOMAIN, "payments", &acl), DM_OK);
    dm_buf_free(&acl);
}

/* Moves S_DOMAIN's certificate to node (a governance key must be set). */
static void s_certify(const uint8_t *node)
{
    const char *domains[] = {S_DOMAIN};
    uint8_t nodes[1][DM_ID_PUBLIC_BYTES];
    memcpy(nodes[0], node, DM_ID_PUBLIC_BYTES);
    cr_assert_eq(dm_catalog_set_certificates(s_cat, domains, (const uint8_t(*)[32])nodes, 1, NULL),
                 DM_OK);
}

Test(catalog_local, the_sweep_publishes_what_was_refused_once_a_certificate_moves_the_domain_here)
{
    /* The node claimed its domain; a certificate gives it to another node
     * and this node registers meanwhile (refused); the certificate moves it
     * back. The next plain round (the node's once-a-minute sweep) publishes
     * the product and the node record without being asked for it. */
    dm_identity_t *gov = NULL, *other = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&gov), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&other), DM_OK);
    cr_assert_eq(dm_catalog_set_governance(s_cat, dm_identity_public(gov), NULL), DM_OK);
    cr_assert(s_reconcile(true));
    s_certify(dm_identity_public(other));
    s_register("orders", 1, 1);
    cr_assert_not(s_reconcile(false));
    cr_assert_eq(s_diags.count, 1);
    cr_assert_not_null(strstr(s_diags.items[0].message, "not pinned to this node"), "%s",
                       s_diags.items[0].message);
    dm_diags_clear(&s_diags);
    s_certify(dm_identity_public(s_id));
    cr_assert(s_reconcile(false));
    cr_assert_eq(s_diags.count, 0, "%s", s_diags.count ? s_diags.items[0].message : "");
    dm_catalog_entry_t e = s_entry("orders");
    cr_assert_not(e.tombstone);
    dm_catalog_entry_clear(&e);
    cr_assert_eq(dm_catalog_get(s_cat, dm_identity_public(s_id), DM_CATALOG_NODE_KEY, &e), DM_OK);
    dm_catalog_entry_clear(&e);
    dm_identity_destroy(&gov);
    dm_identity_destroy(&other);
}

Test(catalog_local, tombstones_the_health_of_a_deregistered_product)
{
    s_register("orders", 1, 1);
    s_register("payments", 1, 1);
    cr_assert(s_reconcile(true));
    /* an empty dm.HealthRecord is a valid one */
    cr_assert_eq(dm_catalog_publish(s_cat, "health/commerce/orders", "", 0, false, S_NOW, NULL),
                 DM_OK);
    cr_assert_eq(dm_catalog_publish(s_cat, "health/commerce/payments", "", 0, false, S_NOW,
                                    NULL),
                 DM_OK);
    cr_assert_eq(dm_store_product_delete(s_store, S_DOMAIN, "orders", NULL, NULL), DM_OK);
    cr_assert(s_reconcile(false));
    cr_assert_eq(s_diags.count, 0, "%s", s_diags.count ? s_diags.items[0].message : "");
    dm_buf_t h = DM_BUF_INIT;
    cr_assert_eq(dm_catalog_health(s_cat, S_DOMAIN, "orders", &h), DM_ERR_NOTFOUND);
    cr_assert_eq(dm_catalog_health(s_cat, S_DOMAIN, "payments", &h), DM_OK);
    dm_buf_free(&h);
}
