/* test_catalog_gov.c: governance in the catalog: the key chain (set,
 * rotated by the current key with root version + 1, persisted), gov/doc
 * entries (accepted only from the current governance key, never forged,
 * replayed or unchecked), owners' acl entries, domain certificates that
 * move a pin, and gov entries carried by Scuttlebutt deltas. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "catalog_test.h"
#include "fixture.h"
#include "proto/catalog.pb-c.h"

#define S_NOW DM_T_CATALOG_NOW
#define S_ROUNDS_MAX 8 /* exchanges a test allows for convergence */

typedef dm_t_cnode_t s_node;

static dm_t_cworld_t s_w; /* nodes, and governance identities */

static s_node *s_node_new(void)
{
    return dm_t_cworld_node(&s_w, "test_catalog_gov");
}

static dm_identity_t *s_key_new(void)
{
    return dm_t_cworld_key(&s_w);
}

static void s_teardown(void)
{
    dm_t_cworld_clear(&s_w);
}

TestSuite(catalog_gov, .fini = s_teardown);

static const uint8_t *s_pub(const dm_identity_t *id) { return dm_identity_public(id); }

/* key as 64 lowercase hex digits. */
static void s_hex(const uint8_t *key, char out[DM_ID_HEX_BYTES])
{
    for (int i = 0; i < DM_ID_PUBLIC_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02x", key[i]);
}

static void s_set_gov(s_node *n, const dm_identity_t *g)
{
    dm_buf_t why = DM_BUF_INIT;
    dm_err err = dm_catalog_set_governance(n->cat, s_pub(g), &why);
    cr_assert_eq(err, DM_OK, "%s: %s", dm_err_str(err), why.data ? why.data : "");
    dm_buf_free(&why);
}

/* An entry of origin signed by signer (which may be another key: a
 * forgery). Points into key and payload. */
static void s_entry(const dm_identity_t *signer, const uint8_t *origin, const char *key,
                    const void *payload, size_t len, uint64_t version, dm_catalog_entry_t *e)
{
    bool tombstone = len == 0 && strncmp(key, "gov/doc/", 8) == 0;
    dm_t_entry_sign(signer, origin, key, payload, len, version, tombstone, e);
}

/* The same, signed by its origin. */
static void s_signed(const dm_identity_t *id, const char *key, const void *payload, size_t len,
                     uint64_t version, dm_catalog_entry_t *e)
{
    s_entry(id, s_pub(id), key, payload, len, version, e);
}

static dm_catalog_verdict s_apply(s_node *n, const dm_catalog_entry_t *e, dm_buf_t *why)
{
    dm_catalog_verdict v;
    cr_assert_eq(dm_catalog_apply(n->cat, e, S_NOW, &v, why), DM_OK);
    return v;
}

static const char s_doc[] = "apiVersion: datamesh.io/v1\nkind: Group\nmetadata: {name: analysts}\n";

/* A governance document signed by g as gov/doc/NAME at version. */
static dm_catalog_verdict s_doc_by(s_node *n, const dm_identity_t *g, const char *key,
                                   uint64_t version)
{
    dm_catalog_entry_t e;
    s_signed(g, key, s_doc, sizeof s_doc - 1, version, &e);
    return s_apply(n, &e, NULL);
}

/* A gov/root entry of signer (origin) naming next at root version rv. */
static dm_catalog_verdict s_rotate(s_node *n, const dm_identity_t *signer,
                                   const dm_identity_t *next, uint64_t rv, uint64_t version,
                                   dm_buf_t *why)
{
    uint8_t buf[DM_T_GOV_ROOT_BYTES];
    size_t len = dm_t_gov_root(next, rv, buf);
    dm_catalog_entry_t e;
    s_signed(signer, DM_CATALOG_GOV_ROOT_KEY, buf, len, version, &e);
    return s_apply(n, &e, why);
}

static int s_count_doc(void *ctx, const dm_catalog_entry_t *e)
{
    cr_assert_eq(strncmp(e->key, "gov/doc/", 8), 0);
    (*(size_t *)ctx)++;
    return 0;
}

static size_t s_docs(const s_node *n)
{
    size_t k = 0;
    dm_catalog_gov_docs(n->cat, s_count_doc, &k);
    return k;
}

static bool s_is_gov(const s_node *n, const dm_identity_t *g, uint64_t rv)
{
    uint8_t key[DM_ID_PUBLIC_BYTES];
    uint64_t v = 0;
    return dm_catalog_governance(n->cat, key, &v) &&
           memcmp(key, s_pub(g), DM_ID_PUBLIC_BYTES) == 0 && v == rv;
}

/* ---- governance documents ---- */

Test(catalog_gov, doc_accepted_from_the_governance_key)
{
    s_node *a = s_node_new();
    dm_identity_t *g = s_key_new();
    s_set_gov(a, g);
    uint64_t gen = dm_catalog_gov_generation(a->cat);
    cr_assert_eq(s_doc_by(a, g, "gov/doc/analysts", 1), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_docs(a), 1);
    cr_assert_gt(dm_catalog_gov_generation(a->cat), gen);
    cr_assert_eq(dm_catalog_max_version(a->cat, s_pub(g)), 1);
    /* a tombstone withdraws it */
    dm_catalog_entry_t e;
    s_signed(g, "gov/doc/analysts", NULL, 0, 2, &e);
    cr_assert_eq(s_apply(a, &e, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_docs(a), 0);
}

Test(catalog_gov, doc_refused_when_unsigned_or_forged)
{
    s_node *a = s_node_new();
    dm_identity_t *g = s_key_new(), *x = s_key_new();
    s_set_gov(a, g);
    uint64_t gen = dm_catalog_gov_generation(a->cat);
    dm_catalog_entry_t e;
    s_signed(g, "gov/doc/analysts", s_doc, sizeof s_doc - 1, 1, &e);
    memset(e.signature, 0, sizeof e.signature); /* unsigned */
    cr_assert_eq(s_apply(a, &e, NULL), DM_CATALOG_BAD_SIGNATURE);
    s_entry(x, s_pub(g), "gov/doc/analysts", s_doc, sizeof s_doc - 1, 1, &e); /* forged */
    cr_assert_eq(s_apply(a, &e, NULL), DM_CATALOG_BAD_SIGNATURE);
    s_signed(g, "gov/doc/analysts", s_doc, sizeof s_doc - 1, 1, &e);
    e.payload_len--; /* changed under a valid signature */
    cr_assert_eq(s_apply(a, &e, NULL), DM_CATALOG_BAD_SIGNATURE);
    cr_assert_eq(dm_catalog_count(a->cat), 0);
    cr_assert_eq(dm_catalog_max_version(a->cat, s_pub(g)), 0);
    cr_assert_eq(dm_catalog_gov_generation(a->cat), gen);
}

Test(catalog_gov, doc_refused_from_another_key)
{
    s_node *a = s_node_new(), *b = s_node_new();
    dm_identity_t *g = s_key_new(), *x = s_key_new();
    s_set_gov(a, g);
    dm_buf_t why = DM_BUF_INIT;
    dm_catalog_entry_t e;
    s_signed(x, "gov/doc/analysts", s_doc, sizeof s_doc - 1, 1, &e);
    cr_assert_eq(s_apply(a, &e, &why), DM_CATALOG_NOT_OWNER);
    cr_assert_not_null(strstr(why.data, "not the governance key"), "%s", why.data);
    s_signed(b->id, "gov/root", s_doc, sizeof s_doc - 1, 1, &e); /* a member's node key */
    cr_assert_eq(s_apply(a, &e, NULL), DM_CATALOG_NOT_OWNER);
    cr_assert_eq(dm_catalog_count(a->cat), 0);
    /* and the governance key says nothing but gov/ entries */
    s_signed(g, "node", "", 0, 1, &e);
    cr_assert_eq(s_apply(a, &e, NULL), DM_CATALOG_MALFORMED);
    /* nodes never publish gov/ entries themselves */
    cr_assert_eq(dm_catalog_publish(a->cat, "gov/doc/x", s_doc, sizeof s_doc - 1, false, S_NOW,
                                    NULL),
                 DM_ERR_INVALID);
    cr_assert_eq(dm_catalog_count(a->cat), 0);
    dm_buf_free(&why);
}

Test(catalog_gov, doc_replayed_or_older_is_stale)
{
    s_node *a = s_node_new();
    dm_identity_t *g = s_key_new();
    s_set_gov(a, g);
    cr_assert_eq(s_doc_by(a, g, "gov/doc/analysts", 2), DM_CATALOG_ACCEPTED);
    uint64_t gen = dm_catalog_gov_generation(a->cat);
    cr_assert_eq(s_doc_by(a, g, "gov/doc/analysts", 2), DM_CATALOG_STALE);
    cr_assert_eq(s_doc_by(a, g, "gov/doc/analysts", 1), DM_CATALOG_STALE);
    cr_assert_eq(dm_catalog_gov_generation(a->cat), gen);
    cr_assert_eq(s_docs(a), 1);
}

Test(catalog_gov, doc_refused_without_a_governance_key_and_offered_again)
{
    s_node *a = s_node_new();
    dm_identity_t *g = s_key_new();
    dm_buf_t why = DM_BUF_INIT;
    dm_catalog_entry_t e;
    s_signed(g, "gov/doc/analysts", s_doc, sizeof s_doc - 1, 1, &e);
    cr_assert_eq(s_apply(a, &e, &why), DM_CATALOG_NOT_OWNER);
    cr_assert_not_null(strstr(why.data, "no governance key"), "%s", why.data);
    cr_assert_eq(dm_catalog_count(a->cat), 0);
    /* not counted as seen: a peer offers it again once the key is set */
    cr_assert_eq(dm_catalog_max_version(a->cat, s_pub(g)), 0);
    cr_assert(!dm_catalog_governance(a->cat, NULL, NULL));
    cr_assert(dm_catalog_certified(a->cat, "commerce", s_pub(g)));
    s_set_gov(a, g);
    cr_assert_eq(s_apply(a, &e, NULL), DM_CATALOG_ACCEPTED);
    dm_buf_free(&why);
}

static bool s_check_no_tie(void *ctx, const char *key, const uint8_t *payload, size_t len,
                           dm_buf_t *why)
{
    (*(int *)ctx)++;
    bool tie = false;
    for (size_t i = 0; i + 3 <= len && !tie; i++)
        tie = memcmp(payload + i, "tie", 3) == 0;
    if (tie) {
        dm_buf_why(why, "%s: two masks on one column", key);
        return false;
    }
    return true;
}

Test(catalog_gov, doc_refused_by_the_check_with_its_reason)
{
    s_node *a = s_node_new();
    dm_identity_t *g = s_key_new();
    s_set_gov(a, g);
    int calls = 0;
    dm_catalog_set_gov_check(a->cat, s_check_no_tie, &calls);
    static const char tie[] = "apiVersion: datamesh.io/v1\nkind: Policy\n# tie\n";
    dm_catalog_entry_t e;
    s_signed(g, "gov/doc/masks", tie, sizeof tie - 1, 1, &e);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(s_apply(a, &e, &why), DM_CATALOG_MALFORMED);
    cr_assert_not_null(strstr(why.data, "two masks on one column"), "%s", why.data);
    cr_assert_eq(calls, 1);
    cr_assert_eq(s_doc_by(a, g, "gov/doc/analysts", 2), DM_CATALOG_ACCEPTED);
    cr_assert_eq(calls, 2);
    cr_assert_eq(s_docs(a), 1);
    dm_buf_free(&why);
}

/* ---- the key chain ---- */

Test(catalog_gov, rotation_signed_by_the_current_key_with_next_root_version)
{
    s_node *a = s_node_new();
    dm_identity_t *g1 = s_key_new(), *g2 = s_key_new();
    s_set_gov(a, g1);
    cr_assert(s_is_gov(a, g1, 1));
    cr_assert_eq(s_doc_by(a, g1, "gov/doc/old", 1), DM_CATALOG_ACCEPTED);
    uint64_t gen = dm_catalog_gov_generation(a->cat);
    cr_assert_eq(s_rotate(a, g1, g2, 2, 2, NULL), DM_CATALOG_ACCEPTED);
    cr_assert(s_is_gov(a, g2, 2));
    cr_assert_gt(dm_catalog_gov_generation(a->cat), gen);
    cr_assert_eq(s_docs(a), 1, "the retired key's documents stay active");
    cr_assert_eq(s_doc_by(a, g2, "gov/doc/new", 3), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_docs(a), 2);
    /* the retired key's new documents are refused */
    cr_assert_eq(s_doc_by(a, g1, "gov/doc/late", 4), DM_CATALOG_NOT_OWNER);
    cr_assert_eq(s_docs(a), 2);
}

Test(catalog_gov, rotation_refused_unless_exactly_the_next_root_version)
{
    s_node *a = s_node_new();
    dm_identity_t *g1 = s_key_new(), *g2 = s_key_new();
    s_set_gov(a, g1);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(s_rotate(a, g1, g2, 3, 1, &why), DM_CATALOG_MALFORMED);
    cr_assert_not_null(strstr(why.data, "exactly 2"), "%s", why.data);
    cr_assert_eq(s_rotate(a, g1, g2, 1, 2, NULL), DM_CATALOG_MALFORMED);
    cr_assert_eq(s_rotate(a, g1, g1, 2, 3, NULL), DM_CATALOG_MALFORMED, "a used key");
    cr_assert(s_is_gov(a, g1, 1));
    cr_assert_eq(s_rotate(a, g1, g2, 2, 4, NULL), DM_CATALOG_ACCEPTED);
    cr_assert(s_is_gov(a, g2, 2));
    dm_buf_free(&why);
}

Test(catalog_gov, rotation_signed_only_by_the_new_key_refused)
{
    s_node *a = s_node_new();
    dm_identity_t *g1 = s_key_new(), *g2 = s_key_new();
    s_set_gov(a, g1);
    cr_assert_eq(s_rotate(a, g2, g2, 2, 1, NULL), DM_CATALOG_NOT_OWNER);
    cr_assert(s_is_gov(a, g1, 1));
    /* nor by the new key in the current key's name */
    Dm__GovRoot r;
    dm__gov_root__init(&r);
    r.root_version = 2;
    r.key.data = (uint8_t *)s_pub(g2);
    r.key.len = DM_ID_PUBLIC_BYTES;
    uint8_t buf[128];
    size_t len = dm__gov_root__pack(&r, buf);
    dm_catalog_entry_t e;
    s_entry(g2, s_pub(g1), "gov/root", buf, len, 1, &e);
    cr_assert_eq(s_apply(a, &e, NULL), DM_CATALOG_BAD_SIGNATURE);
    cr_assert(s_is_gov(a, g1, 1));
    cr_assert_eq(dm_catalog_count(a->cat), 0);
}

Test(catalog_gov, chain_persists_across_reopen)
{
    s_node *a = s_node_new();
    dm_identity_t *g1 = s_key_new(), *g2 = s_key_new(), *g3 = s_key_new(), *x = s_key_new();
    s_set_gov(a, g1);
    cr_assert_eq(s_rotate(a, g1, g2, 2, 1, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_rotate(a, g2, g3, 3, 2, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_doc_by(a, g3, "gov/doc/analysts", 3), DM_CATALOG_ACCEPTED);
    dm_t_cnode_reopen(a);
    cr_assert(s_is_gov(a, g3, 3));
    cr_assert_eq(s_docs(a), 1);
    /* meshd --governance with the first key again keeps the chain's current */
    s_set_gov(a, g1);
    cr_assert(s_is_gov(a, g3, 3));
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_catalog_set_governance(a->cat, s_pub(x), &why), DM_ERR_CONFLICT);
    char hex[DM_ID_HEX_BYTES];
    s_hex(s_pub(x), hex);
    cr_assert_not_null(strstr(why.data, hex), "%s", why.data);
    cr_assert(s_is_gov(a, g3, 3));
    dm_buf_free(&why);
}

Test(catalog_gov, set_governance_refuses_a_foreign_or_own_key)
{
    s_node *a = s_node_new();
    dm_identity_t *g = s_key_new(), *x = s_key_new();
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_catalog_set_governance(a->cat, dm_identity_public(a->id), &why),
                 DM_ERR_INVALID);
    cr_assert(!dm_catalog_governance(a->cat, NULL, NULL));
    s_set_gov(a, g);
    dm_buf_reset(&why);
    cr_assert_eq(dm_catalog_set_governance(a->cat, s_pub(x), &why), DM_ERR_CONFLICT);
    cr_assert(s_is_gov(a, g, 1));
    dm_t_cnode_reopen(a);
    cr_assert(s_is_gov(a, g, 1));
    dm_buf_free(&why);
}

/* ---- acl entries ---- */

static void s_claim(s_node *n, const char *domain)
{
    char addr[DM_ADDRESS_MAX];
    cr_assert_eq(dm_identity_address_format(s_pub(n->id), "tcp://127.0.0.1:7000", addr,
                                            sizeof addr, NULL),
                 DM_OK);
    dm_buf_t why = DM_BUF_INIT;
    dm_err err = dm_catalog_publish_node(n->cat, domain, addr, S_NOW, &why);
    cr_assert_eq(err, DM_OK, "%s: %s", dm_err_str(err), why.data ? why.data : "");
    dm_buf_free(&why);
}

static void s_product(s_node *n, const char *domain, const char *name)
{
    char key[DM_CATALOG_KEY_MAX];
    snprintf(key, sizeof key, "product/%s/%s", domain, name);
    dm_buf_t json = DM_BUF_INIT;
    dm_t_wide_contract(domain, name, 1, false, &json);
    cr_assert_eq(dm_catalog_publish(n->cat, key, json.data, json.len, false, S_NOW, NULL), DM_OK);
    dm_buf_free(&json);
}

/* An encoded AclRecord granting granted[0..ng) and revoking one reader. */
static void s_acl(const char *const *granted, size_t ng, const char *revoked, dm_buf_t *out)
{
    Dm__AclRecord r;
    dm__acl_record__init(&r);
    r.granted = (char **)granted;
    r.n_granted = ng;
    r.revoked = revoked ? (char **)&revoked : NULL;
    r.n_revoked = revoked ? 1 : 0;
    dm_buf_reserve(out, dm__acl_record__get_packed_size(&r));
    out->len = dm__acl_record__pack(&r, (uint8_t *)out->data);
}

/* Copies n's own entry key to to; returns the verdict. */
static dm_catalog_verdict s_carry(s_node *from, const char *key, s_node *to)
{
    dm_catalog_entry_t e;
    cr_assert_eq(dm_catalog_get(from->cat, s_pub(from->id), key, &e), DM_OK);
    dm_catalog_verdict v = s_apply(to, &e, NULL);
    dm_catalog_entry_clear(&e);
    return v;
}

Test(catalog_gov, acl_by_the_owner_accepted_and_by_another_refused)
{
    s_node *a = s_node_new(), *b = s_node_new();
    char reader[DM_ID_HEX_BYTES];
    s_hex(s_pub(b->id), reader);
    const char *granted[] = {reader, "group:analysts"};
    dm_buf_t acl = DM_BUF_INIT, got = DM_BUF_INIT, why = DM_BUF_INIT;
    s_acl(granted, 2, "group:interns", &acl);
    /* before the claim: denied */
    cr_assert_eq(dm_catalog_publish(a->cat, "acl/commerce/orders", acl.data, acl.len, false,
                                    S_NOW, NULL),
                 DM_ERR_DENIED);
    s_claim(a, "commerce");
    s_product(a, "commerce", "orders");
    cr_assert_eq(dm_catalog_publish(a->cat, "acl/commerce/orders", acl.data, acl.len, false,
                                    S_NOW, &why),
                 DM_OK, "%s", why.data ? why.data : "");
    cr_assert_eq(dm_catalog_acl(a->cat, "commerce", "orders", &got), DM_OK);
    cr_assert_eq(got.len, acl.len);
    cr_assert_eq(memcmp(got.data, acl.data, acl.len), 0);
    /* b learns it from a */
    cr_assert_eq(s_carry(a, "node", b), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_carry(a, "acl/commerce/orders", b), DM_CATALOG_ACCEPTED);
    dm_buf_reset(&got);
    cr_assert_eq(dm_catalog_acl(b->cat, "commerce", "orders", &got), DM_OK);
    cr_assert_eq(got.len, acl.len);
    /* b, not the owner, grants itself on a's product */
    dm_catalog_entry_t e;
    s_signed(b->id, "acl/commerce/orders", acl.data, acl.len, 1, &e);
    cr_assert_eq(s_apply(a, &e, NULL), DM_CATALOG_NOT_OWNER);
    cr_assert_eq(dm_catalog_acl(b->cat, "commerce", "nothing", &got), DM_ERR_NOTFOUND);
    cr_assert_eq(dm_catalog_acl(b->cat, "sales", "orders", &got), DM_ERR_NOTFOUND);
    /* a tombstone ends the grants */
    cr_assert_eq(dm_catalog_publish(a->cat, "acl/commerce/orders", NULL, 0, true, S_NOW, NULL),
                 DM_OK);
    cr_assert_eq(dm_catalog_acl(a->cat, "commerce", "orders", &got), DM_ERR_NOTFOUND);
    dm_buf_free(&acl);
    dm_buf_free(&got);
    dm_buf_free(&why);
}

Test(catalog_gov, acl_payload_checked)
{
    s_node *a = s_node_new();
    s_claim(a, "commerce");
    dm_buf_t acl = DM_BUF_INIT, why = DM_BUF_INIT;
    const char *bad[] = {"group:Not A Name"};
    s_acl(bad, 1, NULL, &acl);
    cr_assert_eq(dm_catalog_publish(a->cat, "acl/commerce/orders", acl.data, acl.len, false,
                                    S_NOW, &why),
                 DM_ERR_INVALID);
    cr_assert_not_null(strstr(why.data, "granted reader 1"), "%s", why.data);
    dm_buf_reset(&acl);
    s_acl(NULL, 0, "abcd", &acl); /* too short for a key */
    cr_assert_eq(dm_catalog_publish(a->cat, "acl/commerce/orders", acl.data, acl.len, false,
                                    S_NOW, NULL),
                 DM_ERR_INVALID);
    const char **many = calloc(DM_CATALOG_ACL_READERS_MAX + 1, sizeof *many);
    for (size_t i = 0; i <= DM_CATALOG_ACL_READERS_MAX; i++)
        many[i] = "group:g";
    dm_buf_reset(&acl);
    s_acl(many, DM_CATALOG_ACL_READERS_MAX + 1, NULL, &acl);
    dm_buf_reset(&why);
    cr_assert_eq(dm_catalog_publish(a->cat, "acl/commerce/orders", acl.data, acl.len, false,
                                    S_NOW, &why),
                 DM_ERR_INVALID);
    cr_assert_not_null(strstr(why.data, "at most"), "%s", why.data);
    dm_buf_reset(&acl);
    s_acl(many, DM_CATALOG_ACL_READERS_MAX, NULL, &acl);
    cr_assert_eq(dm_catalog_publish(a->cat, "acl/commerce/orders", acl.data, acl.len, false,
                                    S_NOW, NULL),
                 DM_OK);
    /* an empty record is a record: no grants, no revocations */
    cr_assert_eq(dm_catalog_publish(a->cat, "acl/commerce/carts", "", 0, false, S_NOW, NULL),
                 DM_OK);
    dm_buf_t got = DM_BUF_INIT;
    cr_assert_eq(dm_catalog_acl(a->cat, "commerce", "carts", &got), DM_OK);
    cr_assert_eq(got.len, 0);
    free(many);
    dm_buf_free(&acl);
    dm_buf_free(&why);
    dm_buf_free(&got);
}

/* ---- certificates ---- */

typedef struct {
    size_t n;
    const uint8_t *origin; /* count only these, when not NULL */
} s_count;

static int s_count_product(void *ctx, const dm_catalog_product_t *p)
{
    s_count *k = ctx;
    k->n += !k->origin || memcmp(p->origin, k->origin, DM_ID_PUBLIC_BYTES) == 0;
    return 0;
}

static int s_count_node(void *ctx, const dm_catalog_node_t *n)
{
    s_count *k = ctx;
    k->n += !k->origin || memcmp(n->origin, k->origin, DM_ID_PUBLIC_BYTES) == 0;
    return 0;
}

static size_t s_products_of(const s_node *n, const s_node *origin)
{
    s_count k = {0, s_pub(origin->id)};
    cr_assert_eq(dm_catalog_products(n->cat, false, s_count_product, &k), DM_OK);
    return k.n;
}

static size_t s_nodes_of(const s_node *n, const s_node *origin)
{
    s_count k = {0, s_pub(origin->id)};
    dm_catalog_nodes(n->cat, s_count_node, &k);
    return k.n;
}

typedef struct {
    size_t n;
    const uint8_t *claimant;
    bool found;
} s_claimants;

static int s_find_claimant(void *ctx, const dm_catalog_conflict_t *k)
{
    s_claimants *c = ctx;
    c->n++;
    c->found |= memcmp(k->claimant, c->claimant, DM_ID_PUBLIC_BYTES) == 0;
    return 0;
}

static bool s_listed_claimant(const s_node *n, const s_node *claimant)
{
    s_claimants c = {0, s_pub(claimant->id), false};
    dm_catalog_conflicts(n->cat, s_find_claimant, &c);
    return c.found;
}

/* Scuttlebutt exchanges from -> to until nothing more is accepted, at
 * most S_ROUNDS_MAX; returns the entries accepted. */
static size_t s_sync(s_node *from, s_node *to)
{
    return dm_t_catalog_sync(from->cat, to->cat, S_ROUNDS_MAX);
}

static void s_certify(s_node *n, const char *domain, const s_node *owner)
{
    const char *domains[] = {domain};
    uint8_t nodes[1][DM_ID_PUBLIC_BYTES];
    memcpy(nodes[0], s_pub(owner->id), DM_ID_PUBLIC_BYTES);
    dm_buf_t why = DM_BUF_INIT;
    dm_err err = dm_catalog_set_certificates(n->cat, domains, (const uint8_t(*)[32])nodes, 1, &why);
    cr_assert_eq(err, DM_OK, "%s: %s", dm_err_str(err), why.data ? why.data : "");
    dm_buf_free(&why);
}

Test(catalog_gov, certificate_moves_the_pin_to_the_certified_node)
{
    s_node *n = s_node_new(), *old = s_node_new(), *cert = s_node_new(), *other = s_node_new();
    if (memcmp(s_pub(cert->id), s_pub(other->id), DM_ID_PUBLIC_BYTES) < 0) {
        s_node *t = cert; /* the certified node's conflict row is not the first */
        cert = other;
        other = t;
    }
    dm_identity_t *g = s_key_new();
    s_claim(old, "commerce");
    s_product(old, "commerce", "orders");
    s_claim(cert, "commerce");
    s_product(cert, "commerce", "carts");
    s_claim(other, "commerce");
    cr_assert_eq(s_sync(old, n), 2);
    cr_assert_eq(s_sync(cert, n), 0, "first come: the second claim is refused");
    cr_assert_eq(s_sync(other, n), 0);
    cr_assert(s_listed_claimant(n, cert));
    cr_assert(s_listed_claimant(n, other));
    /* certificates count only under a governance key */
    s_certify(n, "commerce", cert);
    uint8_t owner[DM_ID_PUBLIC_BYTES];
    cr_assert(dm_catalog_owner(n->cat, "commerce", owner));
    cr_assert_eq(memcmp(owner, s_pub(old->id), DM_ID_PUBLIC_BYTES), 0);
    s_set_gov(n, g);
    cr_assert(!dm_catalog_certified(n->cat, "commerce", s_pub(cert->id)));
    s_certify(n, "commerce", cert);
    cr_assert(dm_catalog_certified(n->cat, "commerce", s_pub(cert->id)));
    cr_assert(!dm_catalog_certified(n->cat, "commerce", s_pub(old->id)));
    cr_assert(dm_catalog_owner(n->cat, "commerce", owner));
    cr_assert_eq(memcmp(owner, s_pub(cert->id), DM_ID_PUBLIC_BYTES), 0);
    cr_assert(!s_listed_claimant(n, cert), "the rightful owner is no refused claimant");
    cr_assert(s_listed_claimant(n, old));
    cr_assert(s_listed_claimant(n, other));
    cr_assert_eq(s_products_of(n, old), 0);
    cr_assert_eq(s_nodes_of(n, old), 0);
    /* the certified node's entries, refused before, come again */
    cr_assert_eq(s_sync(cert, n), 2);
    cr_assert_eq(s_products_of(n, cert), 1);
    cr_assert_eq(s_nodes_of(n, cert), 1);
    /* the old owner's new claims are refused */
    s_product(old, "commerce", "refunds");
    cr_assert_eq(s_sync(old, n), 0);
    cr_assert_eq(s_products_of(n, old), 0);
    /* the move survives a restart, before the certificates are set again */
    dm_t_cnode_reopen(n);
    cr_assert(dm_catalog_owner(n->cat, "commerce", owner));
    cr_assert_eq(memcmp(owner, s_pub(cert->id), DM_ID_PUBLIC_BYTES), 0);
    cr_assert_eq(s_products_of(n, cert), 1);
    cr_assert(!s_listed_claimant(n, cert));
}

Test(catalog_gov, certificate_refuses_the_uncertified_claimant)
{
    s_node *n = s_node_new(), *impostor = s_node_new(), *cert = s_node_new();
    dm_identity_t *g = s_key_new();
    s_set_gov(n, g);
    s_certify(n, "sales", cert);
    s_claim(impostor, "sales");
    s_product(impostor, "sales", "leads");
    dm_buf_t why = DM_BUF_INIT;
    dm_catalog_entry_t e;
    cr_assert_eq(dm_catalog_get(impostor->cat, s_pub(impostor->id), "node", &e), DM_OK);
    cr_assert_eq(s_apply(n, &e, &why), DM_CATALOG_DOMAIN_CONFLICT);
    dm_catalog_entry_clear(&e);
    cr_assert_not_null(strstr(why.data, "certified"), "%s", why.data);
    cr_assert_eq(s_carry(impostor, "product/sales/leads", n), DM_CATALOG_NOT_OWNER);
    cr_assert(!dm_catalog_owner(n->cat, "sales", NULL));
    cr_assert(s_listed_claimant(n, impostor));
    s_claim(cert, "sales");
    cr_assert_eq(s_sync(cert, n), 1);
    cr_assert(dm_catalog_certified(n->cat, "sales", s_pub(cert->id)));
    /* a domain without a certificate still works first come, uncertified */
    s_claim(n, "billing");
    cr_assert(!dm_catalog_certified(n->cat, "billing", s_pub(n->id)));
    /* and this node cannot claim a domain certified to another */
    cr_assert_eq(dm_catalog_publish_node(n->cat, "sales", "x", S_NOW, NULL), DM_ERR_CONFLICT);
    dm_buf_free(&why);
}

/* ---- gossip ---- */

Test(catalog_gov, a_pushed_entry_leaves_no_gap_below_it)
{
    /* b learned g's document at version 1; a, lagging, is handed version 2
     * of another document directly (dmctl policy publish): it must still
     * get version 1 from b. */
    s_node *a = s_node_new(), *b = s_node_new();
    dm_identity_t *g = s_key_new();
    s_set_gov(a, g);
    s_set_gov(b, g);
    cr_assert_eq(s_doc_by(b, g, "gov/doc/first", 1), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_doc_by(a, g, "gov/doc/second", 2), DM_CATALOG_ACCEPTED);
    cr_assert_eq(dm_catalog_max_version(a->cat, s_pub(g)), 2, "the next publication takes 3");
    cr_assert_eq(s_sync(b, a), 1);
    cr_assert_eq(s_docs(a), 2);
    cr_assert_eq(s_sync(a, b), 1);
    cr_assert_eq(s_docs(b), 2);
    /* and once both are in order, nothing is sent again */
    cr_assert_eq(s_sync(b, a), 0);
    dm_buf_t da = DM_BUF_INIT, db = DM_BUF_INIT;
    dm_catalog_digest(a->cat, &da);
    dm_catalog_digest(b->cat, &db);
    cr_assert_eq(da.len, db.len);
    cr_assert_eq(memcmp(da.data, db.data, da.len), 0);
    dm_buf_free(&da);
    dm_buf_free(&db);
}

Test(catalog_gov, gov_entries_travel_through_deltas)
{
    s_node *a = s_node_new(), *b = s_node_new();
    dm_identity_t *g1 = s_key_new(), *g2 = s_key_new();
    if (memcmp(s_pub(g2), s_pub(g1), DM_ID_PUBLIC_BYTES) > 0) { /* g2's entries sort first */
        dm_identity_t *t = g1;
        g1 = g2;
        g2 = t;
    }
    s_set_gov(a, g1);
    s_set_gov(b, g1);
    cr_assert_eq(s_doc_by(a, g1, "gov/doc/analysts", 1), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_rotate(a, g1, g2, 2, 2, NULL), DM_CATALOG_ACCEPTED);
    /* versions go on from the chain's highest (the rotation's 2) */
    cr_assert_eq(s_doc_by(a, g2, "gov/doc/masks", 2), DM_CATALOG_STALE);
    cr_assert_eq(s_doc_by(a, g2, "gov/doc/masks", 3), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_doc_by(a, g2, "gov/doc/readers", 4), DM_CATALOG_ACCEPTED);
    uint64_t gen = dm_catalog_gov_generation(b->cat);
    /* One delta holds it all, the new key's documents before the
     * rotation: refused then, but not counted as seen... */
    dm_buf_t digest = DM_BUF_INIT, delta = DM_BUF_INIT;
    bool more = false;
    dm_catalog_digest(b->cat, &digest);
    cr_assert_eq(dm_catalog_delta(a->cat, digest.data, digest.len, 1 << 20, &delta, &more), DM_OK);
    dm_catalog_counts_t counts;
    cr_assert_eq(dm_catalog_apply_delta(b->cat, delta.data, delta.len, S_NOW, &counts, NULL, NULL),
                 DM_OK);
    cr_assert_eq(counts.n[DM_CATALOG_ACCEPTED], 2);
    cr_assert_eq(counts.n[DM_CATALOG_NOT_OWNER], 2);
    cr_assert(s_is_gov(b, g2, 2));
    cr_assert_eq(s_docs(b), 1, "the retired key's document stays active");
    cr_assert_eq(dm_catalog_max_version(b->cat, s_pub(g2)), 0);
    dm_buf_free(&digest);
    dm_buf_free(&delta);
    /* ...so the next exchange brings them */
    cr_assert_eq(s_sync(a, b), 2);
    cr_assert(s_is_gov(b, g2, 2));
    cr_assert_eq(s_docs(b), 3);
    cr_assert_gt(dm_catalog_gov_generation(b->cat), gen);
    cr_assert_eq(dm_catalog_max_version(b->cat, s_pub(g2)), 4);
    cr_assert_eq(dm_catalog_gov_max_version(b->cat), 4);
    /* a node without a governance key takes none of it */
    s_node *c = s_node_new();
    cr_assert_eq(s_sync(a, c), 0);
    cr_assert_eq(dm_catalog_count(c->cat), 0);
}
