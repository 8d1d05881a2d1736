/* test_catalog.c: the signed catalog: publication and versions, the
 * verdicts on remote entries (forged, stale, foreign domain, malformed),
 * domain pinning and conflicts, tombstones, persistence across reopen and
 * Scuttlebutt digest/delta exchanges within a size bound. */
#include <criterion/criterion.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "catalog_test.h"
#include "fixture.h"
#include "proto/catalog.pb-c.h"

#define S_NOW DM_T_CATALOG_NOW

typedef dm_t_cnode_t s_node;

static dm_t_cworld_t s_w;

/* A node with its own temp store, ephemeral identity and catalog. */
static s_node *s_node_new(void)
{
    return dm_t_cworld_node(&s_w, "test_catalog");
}

static void s_teardown(void)
{
    dm_t_cworld_clear(&s_w);
}

TestSuite(catalog, .fini = s_teardown);

static const uint8_t *s_id(const s_node *n) { return dm_identity_public(n->id); }

/* The canonical contract JSON of domain/name at version. */
static void s_contract(const char *domain, const char *name, const char *version, dm_buf_t *out)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: %s\n"
             "  domain: %s\n  version: %s\n  owner:\n    team: t\n    contact: t@company.com\n"
             "spec:\n  schema:\n    primaryKey: id\n    fields:\n"
             "      - {name: id, type: uuid}\n      - {name: note, type: string}\n",
             name, domain, version);
    dm_contract_t **cs = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    cr_assert_eq(dm_contract_parse("test", yaml, strlen(yaml), NULL, &cs, &n, &diags), DM_OK);
    cr_assert_eq(n, 1);
    dm_contract_canonical(cs[0], out);
    dm_contract_destroy(&cs[0]);
    free(cs);
    dm_diags_clear(&diags);
}

static void s_publish_node(s_node *n, const char *domain, int64_t now)
{
    char addr[DM_ADDRESS_MAX];
    cr_assert_eq(dm_identity_address_format(s_id(n), "tcp://127.0.0.1:7000", addr, sizeof addr, NULL), DM_OK);
    dm_buf_t why = DM_BUF_INIT;
    dm_err err = dm_catalog_publish_node(n->cat, domain, addr, now, &why);
    cr_assert_eq(err, DM_OK, "%s: %s", dm_err_str(err), why.data ? why.data : "");
    dm_buf_free(&why);
}

static void s_publish_product(s_node *n, const char *domain, const char *name, int64_t now)
{
    char key[DM_CATALOG_KEY_MAX];
    snprintf(key, sizeof key, "product/%s/%s", domain, name);
    dm_buf_t json = DM_BUF_INIT, why = DM_BUF_INIT;
    s_contract(domain, name, "1.0.0", &json);
    dm_err err = dm_catalog_publish(n->cat, key, json.data, json.len, false, now, &why);
    cr_assert_eq(err, DM_OK, "%s: %s", dm_err_str(err), why.data ? why.data : "");
    dm_buf_free(&json);
    dm_buf_free(&why);
}

/* Copies from's entry key into to's catalog; returns the verdict. */
static dm_catalog_verdict s_carry(s_node *from, const char *key, s_node *to)
{
    dm_catalog_entry_t e;
    cr_assert_eq(dm_catalog_get(from->cat, s_id(from), key, &e), DM_OK);
    dm_catalog_verdict v;
    cr_assert_eq(dm_catalog_apply(to->cat, &e, S_NOW, &v, NULL), DM_OK);
    dm_catalog_entry_clear(&e);
    return v;
}

/* One Scuttlebutt round from -> to: to's digest, from's delta, applied by
 * to. Returns the delta's more flag; *bytes gets the delta's size. */
static bool s_exchange(s_node *from, s_node *to, size_t max_bytes, size_t *bytes)
{
    dm_buf_t digest = DM_BUF_INIT, delta = DM_BUF_INIT;
    bool more = false, more_in = false;
    dm_catalog_digest(to->cat, &digest);
    cr_assert_eq(dm_catalog_delta(from->cat, digest.data, digest.len, max_bytes, &delta, &more),
                 DM_OK);
    dm_catalog_counts_t counts;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_catalog_apply_delta(to->cat, delta.data, delta.len, S_NOW, &counts, &more_in,
                                        &why),
                 DM_OK);
    cr_assert_eq(counts.n[DM_CATALOG_ACCEPTED] + counts.n[DM_CATALOG_STALE] +
                     counts.n[DM_CATALOG_NOT_OWNER] + counts.n[DM_CATALOG_DOMAIN_CONFLICT],
                 counts.n[DM_CATALOG_ACCEPTED] + counts.n[DM_CATALOG_STALE] +
                     counts.n[DM_CATALOG_NOT_OWNER] + counts.n[DM_CATALOG_DOMAIN_CONFLICT] +
                     counts.n[DM_CATALOG_BAD_SIGNATURE] + counts.n[DM_CATALOG_MALFORMED],
                 "%s", why.data ? why.data : "");
    cr_assert_eq(more, more_in);
    if (bytes)
        *bytes = delta.len;
    dm_buf_free(&digest);
    dm_buf_free(&delta);
    dm_buf_free(&why);
    return more;
}

/* ---- listing helpers ---- */

typedef struct {
    size_t n, tombstones;
    char last[2 * DM_CATALOG_NAME_MAX + 2];
    const uint8_t *origin;
} s_list;

static int s_count_product(void *ctx, const dm_catalog_product_t *p)
{
    s_list *l = ctx;
    l->n++;
    l->tombstones += p->tombstone;
    snprintf(l->last, sizeof l->last, "%s/%s", p->domain, p->name);
    return 0;
}

static s_list s_products(const s_node *n, bool with_tombstones)
{
    s_list l = {0};
    cr_assert_eq(dm_catalog_products(n->cat, with_tombstones, s_count_product, &l), DM_OK);
    return l;
}

typedef struct {
    size_t n;
    dm_catalog_conflict_t last;
    char domain[DM_CATALOG_NAME_MAX + 1];
    uint8_t owner[DM_ID_PUBLIC_BYTES], claimant[DM_ID_PUBLIC_BYTES];
} s_conflicts;

static int s_count_conflict(void *ctx, const dm_catalog_conflict_t *k)
{
    s_conflicts *l = ctx;
    l->n++;
    l->last = *k;
    snprintf(l->domain, sizeof l->domain, "%s", k->domain);
    memcpy(l->owner, k->owner, DM_ID_PUBLIC_BYTES);
    memcpy(l->claimant, k->claimant, DM_ID_PUBLIC_BYTES);
    return 0;
}

static s_conflicts s_conflict_list(const s_node *n)
{
    s_conflicts l;
    memset(&l, 0, sizeof l);
    dm_catalog_conflicts(n->cat, s_count_conflict, &l);
    return l;
}

/* ---- publication ---- */

Test(catalog, publish_increments_version)
{
    s_node *a = s_node_new();
    cr_assert_eq(dm_catalog_local_version(a->cat), 0);
    s_publish_node(a, "commerce", S_NOW);
    cr_assert_eq(dm_catalog_local_version(a->cat), 1);
    s_publish_product(a, "commerce", "orders", S_NOW + 1);
    cr_assert_eq(dm_catalog_local_version(a->cat), 2);
    dm_catalog_entry_t e;
    cr_assert_eq(dm_catalog_get(a->cat, s_id(a), "product/commerce/orders", &e), DM_OK);
    cr_assert_eq(e.version, 2);
    dm_catalog_entry_clear(&e);
}

Test(catalog, publish_refuses_product_of_unclaimed_domain)
{
    s_node *a = s_node_new();
    dm_buf_t json = DM_BUF_INIT;
    s_contract("commerce", "orders", "1.0.0", &json);
    cr_assert_eq(dm_catalog_publish(a->cat, "product/commerce/orders", json.data, json.len, false,
                                    S_NOW, NULL),
                 DM_ERR_DENIED);
    cr_assert_eq(dm_catalog_count(a->cat), 0);
    dm_buf_free(&json);
}

/* ---- remote entries ---- */

Test(catalog, apply_accepts_valid_remote_entry)
{
    s_node *a = s_node_new(), *b = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    s_publish_product(a, "commerce", "orders", S_NOW);
    cr_assert_eq(s_carry(a, "node", b), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_carry(a, "product/commerce/orders", b), DM_CATALOG_ACCEPTED);
    uint8_t owner[DM_ID_PUBLIC_BYTES];
    cr_assert(dm_catalog_owner(b->cat, "commerce", owner));
    cr_assert_arr_eq(owner, s_id(a), DM_ID_PUBLIC_BYTES);
    s_list l = s_products(b, false);
    cr_assert_eq(l.n, 1);
    cr_assert_str_eq(l.last, "commerce/orders");
}

Test(catalog, apply_appends_its_reason_and_keeps_what_why_held)
{
    s_node *a = s_node_new(), *b = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    dm_catalog_entry_t e;
    cr_assert_eq(dm_catalog_get(a->cat, s_id(a), "node", &e), DM_OK);
    e.signature[0] ^= 0x01;
    dm_catalog_verdict v;
    dm_buf_t why = DM_BUF_INIT;
    dm_buf_puts(&why, "earlier; ");
    cr_assert_eq(dm_catalog_apply(b->cat, &e, S_NOW, &v, &why), DM_OK);
    cr_assert_eq(v, DM_CATALOG_BAD_SIGNATURE);
    cr_assert(strncmp(why.data, "earlier; ", 9) == 0, "%s", why.data);
    cr_assert_not_null(strstr(why.data + 9, "not signed"), "%s", why.data);
    dm_buf_free(&why);
    dm_catalog_entry_clear(&e);
}

Test(catalog, rejects_flipped_signature_bit)
{
    s_node *a = s_node_new(), *b = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    dm_catalog_entry_t e;
    cr_assert_eq(dm_catalog_get(a->cat, s_id(a), "node", &e), DM_OK);
    e.signature[17] ^= 0x04;
    dm_catalog_verdict v;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_catalog_apply(b->cat, &e, S_NOW, &v, &why), DM_OK);
    cr_assert_eq(v, DM_CATALOG_BAD_SIGNATURE);
    cr_assert_not_null(strstr(why.data, "not signed"));
    cr_assert_eq(dm_catalog_count(b->cat), 0);
    cr_assert_not(dm_catalog_owner(b->cat, "commerce", NULL));
    dm_buf_t digest = DM_BUF_INIT;
    dm_catalog_digest(b->cat, &digest);
    cr_assert_eq(digest.len, 0, "a forged entry must not count as seen");
    dm_buf_free(&digest);
    dm_buf_free(&why);
    dm_catalog_entry_clear(&e);
}

Test(catalog, rejects_changed_field_under_valid_signature)
{
    s_node *a = s_node_new(), *b = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    dm_catalog_entry_t e;
    cr_assert_eq(dm_catalog_get(a->cat, s_id(a), "node", &e), DM_OK);
    e.version += 1000; /* the signature covers the version */
    dm_catalog_verdict v;
    cr_assert_eq(dm_catalog_apply(b->cat, &e, S_NOW, &v, NULL), DM_OK);
    cr_assert_eq(v, DM_CATALOG_BAD_SIGNATURE);
    dm_catalog_entry_clear(&e);
}

Test(catalog, rejects_replay_of_older_version)
{
    s_node *a = s_node_new(), *b = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    dm_catalog_entry_t old;
    cr_assert_eq(dm_catalog_get(a->cat, s_id(a), "node", &old), DM_OK);
    s_publish_node(a, "commerce", S_NOW + 1000);
    cr_assert_eq(s_carry(a, "node", b), DM_CATALOG_ACCEPTED);
    dm_catalog_verdict v;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_catalog_apply(b->cat, &old, S_NOW, &v, &why), DM_OK);
    cr_assert_eq(v, DM_CATALOG_STALE);
    cr_assert_not_null(strstr(why.data, "version 2 is stored"), "%s", why.data);
    /* the same entry again is a replay too */
    cr_assert_eq(s_carry(a, "node", b), DM_CATALOG_STALE);
    dm_buf_free(&why);
    dm_catalog_entry_clear(&old);
}

Test(catalog, keeps_highest_version)
{
    s_node *a = s_node_new(), *b = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    cr_assert_eq(s_carry(a, "node", b), DM_CATALOG_ACCEPTED);
    s_publish_product(a, "commerce", "orders", S_NOW + 1);
    s_publish_node(a, "commerce", S_NOW + 2); /* now lists the product: version 3 */
    cr_assert_eq(s_carry(a, "node", b), DM_CATALOG_ACCEPTED);
    dm_catalog_entry_t e;
    cr_assert_eq(dm_catalog_get(b->cat, s_id(a), "node", &e), DM_OK);
    cr_assert_eq(e.version, 3);
    cr_assert_eq(e.issued_at_ms, S_NOW + 2);
    dm_catalog_entry_clear(&e);
}

static int s_node_products(void *ctx, const dm_catalog_node_t *n)
{
    *(size_t *)ctx = n->nproducts;
    return 0;
}

Test(catalog, node_record_lists_own_live_products)
{
    s_node *a = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    s_publish_product(a, "commerce", "orders", S_NOW);
    s_publish_product(a, "commerce", "carts", S_NOW);
    s_publish_node(a, "commerce", S_NOW);
    size_t n = 99;
    dm_catalog_nodes(a->cat, s_node_products, &n);
    cr_assert_eq(n, 2);
}

/* ---- ownership ---- */

Test(catalog, rejects_entries_for_domain_pinned_to_another_origin)
{
    s_node *a = s_node_new(), *b = s_node_new(), *c = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    cr_assert_eq(s_carry(a, "node", b), DM_CATALOG_ACCEPTED);
    /* c believes commerce is its own: nobody told it otherwise */
    s_publish_node(c, "commerce", S_NOW);
    s_publish_product(c, "commerce", "orders", S_NOW);
    cr_assert_eq(s_carry(c, "node", b), DM_CATALOG_DOMAIN_CONFLICT);
    cr_assert_eq(s_carry(c, "product/commerce/orders", b), DM_CATALOG_NOT_OWNER);
    cr_assert_eq(dm_catalog_count(b->cat), 1);
    cr_assert_eq(s_products(b, true).n, 0);
    s_conflicts k = s_conflict_list(b);
    cr_assert_eq(k.n, 1);
    cr_assert_str_eq(k.domain, "commerce");
    cr_assert_arr_eq(k.owner, s_id(a), DM_ID_PUBLIC_BYTES);
    cr_assert_arr_eq(k.claimant, s_id(c), DM_ID_PUBLIC_BYTES);
    cr_assert_eq(k.last.first_seen_ms, S_NOW);
    cr_assert_eq(k.last.refusals, 2);
}

Test(catalog, refused_entries_count_as_seen_and_are_not_resent)
{
    s_node *b = s_node_new(), *a = s_node_new(), *c = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    cr_assert_eq(s_carry(a, "node", b), DM_CATALOG_ACCEPTED);
    s_publish_node(c, "commerce", S_NOW);
    s_publish_product(c, "commerce", "orders", S_NOW);
    cr_assert_not(s_exchange(c, b, DM_CATALOG_DELTA_MAX_BYTES, NULL));
    cr_assert_eq(s_conflict_list(b).n, 1);
    size_t bytes = 99;
    cr_assert_not(s_exchange(c, b, DM_CATALOG_DELTA_MAX_BYTES, &bytes));
    cr_assert_eq(bytes, 0, "b's digest must cover what it refused");
}

Test(catalog, first_claim_pinned_even_if_later_claim_is_older)
{
    s_node *a = s_node_new(), *b = s_node_new(), *c = s_node_new();
    /* c's claim: version 1, issued early; a's: version 3, issued later */
    s_publish_node(c, "commerce", S_NOW - 100000);
    s_publish_node(a, "commerce", S_NOW);
    s_publish_node(a, "commerce", S_NOW + 1);
    s_publish_node(a, "commerce", S_NOW + 2);
    cr_assert_eq(s_carry(a, "node", b), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_carry(c, "node", b), DM_CATALOG_DOMAIN_CONFLICT);
    uint8_t owner[DM_ID_PUBLIC_BYTES];
    cr_assert(dm_catalog_owner(b->cat, "commerce", owner));
    cr_assert_arr_eq(owner, s_id(a), DM_ID_PUBLIC_BYTES);
}

Test(catalog, product_before_its_claim_waits_for_the_claim)
{
    s_node *a = s_node_new(), *b = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    s_publish_product(a, "commerce", "orders", S_NOW); /* version 2 */
    s_publish_node(a, "commerce", S_NOW);              /* version 3 */
    /* b meets a only now: the product (2) comes before the claim (3) */
    cr_assert_eq(s_carry(a, "product/commerce/orders", b), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_products(b, false).n, 0, "listed before its domain is claimed");
    cr_assert_eq(s_carry(a, "node", b), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_products(b, false).n, 1);
}

Test(catalog, claim_purges_unclaimed_products_of_others)
{
    s_node *a = s_node_new(), *b = s_node_new(), *c = s_node_new();
    s_publish_node(c, "commerce", S_NOW);
    s_publish_product(c, "commerce", "orders", S_NOW);
    s_publish_node(a, "commerce", S_NOW);
    cr_assert_eq(s_carry(c, "product/commerce/orders", b), DM_CATALOG_ACCEPTED); /* waits */
    cr_assert_eq(s_carry(a, "node", b), DM_CATALOG_ACCEPTED); /* a's claim comes first */
    cr_assert_eq(dm_catalog_count(b->cat), 1, "c's waiting product is dropped");
    cr_assert_eq(s_conflict_list(b).n, 1);
    cr_assert_eq(s_carry(c, "node", b), DM_CATALOG_DOMAIN_CONFLICT);
}

/* ---- tombstones and persistence ---- */

Test(catalog, tombstone_hides_product_and_survives_reopen)
{
    s_node *a = s_node_new(), *b = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    s_publish_product(a, "commerce", "orders", S_NOW);
    cr_assert_eq(s_carry(a, "node", b), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_carry(a, "product/commerce/orders", b), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_products(b, false).n, 1);
    cr_assert_eq(dm_catalog_publish(a->cat, "product/commerce/orders", NULL, 0, true, S_NOW + 5,
                                    NULL),
                 DM_OK);
    cr_assert_eq(s_carry(a, "product/commerce/orders", b), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_products(a, false).n, 0);
    cr_assert_eq(s_products(b, false).n, 0);
    dm_t_cnode_reopen(a);
    dm_t_cnode_reopen(b);
    cr_assert_eq(s_products(a, false).n, 0);
    cr_assert_eq(s_products(b, false).n, 0);
    s_list l = s_products(b, true);
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.tombstones, 1);
    /* the older, live version cannot bring it back */
    dm_catalog_entry_t e;
    cr_assert_eq(dm_catalog_get(b->cat, s_id(a), "product/commerce/orders", &e), DM_OK);
    cr_assert(e.tombstone);
    cr_assert_eq(e.payload_len, 0);
    dm_catalog_entry_clear(&e);
}

Test(catalog, tombstone_of_unpublished_product_is_notfound)
{
    s_node *a = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    cr_assert_eq(dm_catalog_publish(a->cat, "product/commerce/nope", NULL, 0, true, S_NOW, NULL),
                 DM_ERR_NOTFOUND);
    cr_assert_eq(dm_catalog_local_version(a->cat), 1);
}

Test(catalog, state_survives_reopen)
{
    s_node *a = s_node_new(), *b = s_node_new(), *c = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    s_publish_product(a, "commerce", "orders", S_NOW);
    s_publish_node(c, "commerce", S_NOW);
    cr_assert_eq(s_carry(a, "node", b), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_carry(a, "product/commerce/orders", b), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_carry(c, "node", b), DM_CATALOG_DOMAIN_CONFLICT);
    dm_buf_t before = DM_BUF_INIT, after = DM_BUF_INIT;
    dm_catalog_digest(b->cat, &before);
    dm_t_cnode_reopen(a);
    dm_t_cnode_reopen(b);
    cr_assert_eq(dm_catalog_count(b->cat), 2);
    uint8_t owner[DM_ID_PUBLIC_BYTES];
    cr_assert(dm_catalog_owner(b->cat, "commerce", owner));
    cr_assert_arr_eq(owner, s_id(a), DM_ID_PUBLIC_BYTES);
    s_conflicts k = s_conflict_list(b);
    cr_assert_eq(k.n, 1);
    cr_assert_arr_eq(k.claimant, s_id(c), DM_ID_PUBLIC_BYTES);
    cr_assert_eq(k.last.first_seen_ms, S_NOW);
    dm_catalog_digest(b->cat, &after);
    cr_assert_eq(before.len, after.len);
    cr_assert_arr_eq(before.data, after.data, before.len, "versions per origin are back");
    cr_assert_eq(s_carry(c, "node", b), DM_CATALOG_DOMAIN_CONFLICT, "the pin is back");
    /* a continues above its last version */
    cr_assert_eq(dm_catalog_local_version(a->cat), 2);
    s_publish_product(a, "commerce", "carts", S_NOW);
    cr_assert_eq(dm_catalog_local_version(a->cat), 3);
    cr_assert_eq(s_carry(a, "product/commerce/carts", b), DM_CATALOG_ACCEPTED);
    dm_buf_free(&before);
    dm_buf_free(&after);
}

Test(catalog, publications_survive_kill_9)
{
    enum { PUBLISHED = 5 };
    s_node *a = s_node_new();
    dm_catalog_destroy(&a->cat);
    dm_store_destroy(&a->store); /* the child opens its own environment */
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dm_store_t *store = NULL;
        dm_catalog_t *cat = NULL;
        char addr[DM_ADDRESS_MAX];
        if (dm_store_open(a->dir, NULL, &store, NULL) ||
            dm_catalog_open(store, a->id, &cat, NULL) ||
            dm_identity_address_format(s_id(a), "tcp://127.0.0.1:7000", addr, sizeof addr, NULL))
            _exit(1);
        for (int i = 0; i < PUBLISHED; i++)
            if (dm_catalog_publish_node(cat, "commerce", addr, S_NOW + i, NULL))
                _exit(1);
        kill(getpid(), SIGKILL); /* no close, no cleanup */
        _exit(1);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child failed early");
    cr_assert_eq(dm_store_open(a->dir, NULL, &a->store, NULL), DM_OK);
    cr_assert_eq(dm_catalog_open(a->store, a->id, &a->cat, NULL), DM_OK);
    cr_assert_eq(dm_catalog_local_version(a->cat), PUBLISHED);
    cr_assert(dm_catalog_owner(a->cat, "commerce", NULL));
}

/* ---- Scuttlebutt ---- */

Test(catalog, digest_delta_roundtrip_converges)
{
    s_node *a = s_node_new(), *b = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    s_publish_product(a, "commerce", "orders", S_NOW);
    s_publish_product(a, "commerce", "carts", S_NOW);
    s_publish_node(b, "logistics", S_NOW);
    s_publish_product(b, "logistics", "parcels", S_NOW);
    cr_assert_not(s_exchange(a, b, DM_CATALOG_DELTA_MAX_BYTES, NULL));
    cr_assert_not(s_exchange(b, a, DM_CATALOG_DELTA_MAX_BYTES, NULL));
    cr_assert_eq(dm_catalog_count(a->cat), 5);
    cr_assert_eq(dm_catalog_count(b->cat), 5);
    cr_assert_eq(s_products(a, false).n, 3);
    cr_assert_eq(s_products(b, false).n, 3);
    dm_buf_t da = DM_BUF_INIT, db = DM_BUF_INIT;
    dm_catalog_digest(a->cat, &da);
    dm_catalog_digest(b->cat, &db);
    cr_assert_eq(da.len, db.len);
    cr_assert_arr_eq(da.data, db.data, da.len);
    /* converged: nothing left to send either way */
    size_t bytes = 99;
    cr_assert_not(s_exchange(a, b, DM_CATALOG_DELTA_MAX_BYTES, &bytes));
    cr_assert_eq(bytes, 0);
    dm_buf_free(&da);
    dm_buf_free(&db);
}

/* Asserts versions ascend per origin within an encoded delta. */
static void s_assert_ascending(const dm_buf_t *delta)
{
    Dm__CatalogDelta *d = dm__catalog_delta__unpack(NULL, delta->len, (const uint8_t *)delta->data);
    cr_assert_not_null(d);
    for (size_t i = 0; i < d->n_entries; i++)
        for (size_t j = 0; j < i; j++)
            if (!memcmp(d->entries[i]->origin.data, d->entries[j]->origin.data,
                        DM_ID_PUBLIC_BYTES))
                cr_assert_lt(d->entries[j]->version, d->entries[i]->version);
    dm__catalog_delta__free_unpacked(d, NULL);
}

Test(catalog, delta_respects_max_bytes_and_finishes_over_rounds)
{
    enum { PRODUCTS = 20, MAX_BYTES = 2048 };
    s_node *a = s_node_new(), *b = s_node_new(), *c = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    s_publish_node(c, "logistics", S_NOW);
    for (int i = 0; i < PRODUCTS; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%02d", PRODUCTS - i); /* key order != version order */
        s_publish_product(a, "commerce", name, S_NOW + i);
        s_publish_product(c, "logistics", name, S_NOW + i);
    }
    /* a relays c's entries too: two origins in every digest */
    while (s_exchange(c, a, DM_CATALOG_DELTA_MAX_BYTES, NULL))
        ;
    int rounds = 0;
    for (bool more = true; more; rounds++) {
        cr_assert_lt(rounds, 100, "the transfer does not finish");
        dm_buf_t digest = DM_BUF_INIT, delta = DM_BUF_INIT;
        dm_catalog_digest(b->cat, &digest);
        cr_assert_eq(dm_catalog_delta(a->cat, digest.data, digest.len, MAX_BYTES, &delta, &more),
                     DM_OK);
        cr_assert_leq(delta.len, MAX_BYTES);
        cr_assert_gt(delta.len, 0);
        s_assert_ascending(&delta);
        cr_assert_eq(dm_catalog_apply_delta(b->cat, delta.data, delta.len, S_NOW, NULL, NULL,
                                            NULL),
                     DM_OK);
        dm_buf_free(&digest);
        dm_buf_free(&delta);
    }
    cr_assert_gt(rounds, 2, "the bound never cut a delta");
    cr_assert_eq(dm_catalog_count(b->cat), 2 * (PRODUCTS + 1));
    cr_assert_eq(s_products(b, false).n, 2 * PRODUCTS);
}

Test(catalog, entry_larger_than_max_bytes_travels_alone)
{
    s_node *a = s_node_new(), *b = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    s_publish_product(a, "commerce", "orders", S_NOW);
    dm_buf_t digest = DM_BUF_INIT, delta = DM_BUF_INIT;
    dm_catalog_digest(b->cat, &digest);
    bool more = false;
    cr_assert_eq(dm_catalog_delta(a->cat, digest.data, digest.len, 16, &delta, &more), DM_OK);
    cr_assert(more);
    Dm__CatalogDelta *d = dm__catalog_delta__unpack(NULL, delta.len, (uint8_t *)delta.data);
    cr_assert_not_null(d);
    cr_assert_eq(d->n_entries, 1);
    cr_assert_eq(d->entries[0]->version, 1, "the lowest version goes first");
    cr_assert(d->more);
    dm__catalog_delta__free_unpacked(d, NULL);
    dm_buf_free(&digest);
    dm_buf_free(&delta);
}

Test(catalog, delta_carries_forged_entry_to_no_effect)
{
    s_node *a = s_node_new(), *b = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    dm_buf_t digest = DM_BUF_INIT, delta = DM_BUF_INIT;
    dm_catalog_digest(b->cat, &digest);
    bool more;
    cr_assert_eq(dm_catalog_delta(a->cat, digest.data, digest.len, 4096, &delta, &more), DM_OK);
    Dm__CatalogDelta *d = dm__catalog_delta__unpack(NULL, delta.len, (uint8_t *)delta.data);
    cr_assert_not_null(d);
    d->entries[0]->issued_at_ms += 1;
    size_t n = dm__catalog_delta__get_packed_size(d);
    uint8_t *bytes = malloc(n);
    dm__catalog_delta__pack(d, bytes);
    dm_catalog_counts_t counts;
    cr_assert_eq(dm_catalog_apply_delta(b->cat, bytes, n, S_NOW, &counts, NULL, NULL), DM_OK);
    cr_assert_eq(counts.n[DM_CATALOG_BAD_SIGNATURE], 1);
    cr_assert_eq(dm_catalog_count(b->cat), 0);
    free(bytes);
    dm__catalog_delta__free_unpacked(d, NULL);
    dm_buf_free(&digest);
    dm_buf_free(&delta);
}

/* ---- hostile input ---- */

/* An entry from n with the given key and payload, validly signed. */
static void s_signed(s_node *n, const char *key, const void *payload, size_t len,
                     dm_catalog_entry_t *e)
{
    dm_t_entry_sign(n->id, s_id(n), key, payload, len, 1, false, e);
}

Test(catalog, rejects_malformed_signed_entries)
{
    s_node *a = s_node_new(), *b = s_node_new();
    static const char *const keys[] = {"nodes", "product/commerce", "product/Commerce/orders",
                                       "product/commerce/orders/x", "product//orders"};
    dm_catalog_verdict v;
    dm_catalog_entry_t e;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        s_signed(a, keys[i], "x", 1, &e);
        cr_assert_eq(dm_catalog_apply(b->cat, &e, S_NOW, &v, NULL), DM_OK);
        cr_assert_eq(v, DM_CATALOG_MALFORMED, "key %s", keys[i]);
    }
    s_signed(a, "node", "\xff\xff\xff", 3, &e); /* not a NodeRecord */
    cr_assert_eq(dm_catalog_apply(b->cat, &e, S_NOW, &v, NULL), DM_OK);
    cr_assert_eq(v, DM_CATALOG_MALFORMED);
    s_signed(a, "product/commerce/orders", "{\"not\": \"a contract\"}", 21, &e);
    cr_assert_eq(dm_catalog_apply(b->cat, &e, S_NOW, &v, NULL), DM_OK);
    cr_assert_eq(v, DM_CATALOG_MALFORMED);
    dm_buf_t json = DM_BUF_INIT;
    s_contract("commerce", "carts", "1.0.0", &json); /* valid, but for another key */
    s_signed(a, "product/commerce/orders", json.data, json.len, &e);
    cr_assert_eq(dm_catalog_apply(b->cat, &e, S_NOW, &v, NULL), DM_OK);
    cr_assert_eq(v, DM_CATALOG_MALFORMED);
    cr_assert_eq(dm_catalog_count(b->cat), 0);
    dm_buf_free(&json);
}

Test(catalog, rejects_malformed_encodings_without_crashing)
{
    s_node *a = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02};
    dm_buf_t out = DM_BUF_INIT;
    bool more;
    cr_assert_eq(dm_catalog_apply_delta(a->cat, junk, sizeof junk, S_NOW, NULL, NULL, NULL),
                 DM_ERR_PROTO);
    cr_assert_eq(dm_catalog_delta(a->cat, junk, sizeof junk, 4096, &out, &more), DM_ERR_PROTO);
    dm_catalog_entry_t e;
    cr_assert_eq(dm_catalog_entry_decode(junk, sizeof junk, &e), DM_ERR_PROTO);
    /* decodes as protobuf, but the ids have the wrong lengths */
    Dm__CatalogEntry pb;
    dm__catalog_entry__init(&pb);
    uint8_t shortid[5] = {1, 2, 3, 4, 5};
    pb.origin.data = shortid;
    pb.origin.len = sizeof shortid;
    pb.key = "node";
    pb.version = 1;
    Dm__CatalogEntry *list[] = {&pb};
    Dm__CatalogDelta d;
    dm__catalog_delta__init(&d);
    d.entries = list;
    d.n_entries = 1;
    uint8_t buf[256];
    size_t n = dm__catalog_delta__pack(&d, buf);
    dm_catalog_counts_t counts;
    cr_assert_eq(dm_catalog_apply_delta(a->cat, buf, n, S_NOW, &counts, NULL, NULL), DM_OK);
    cr_assert_eq(counts.n[DM_CATALOG_MALFORMED], 1);
    n = dm__catalog_entry__pack(&pb, buf);
    cr_assert_eq(dm_catalog_entry_decode(buf, n, &e), DM_ERR_PROTO);
    /* a digest naming a 5-byte origin */
    Dm__OriginVersion ov;
    dm__origin_version__init(&ov);
    ov.origin.data = shortid;
    ov.origin.len = sizeof shortid;
    Dm__OriginVersion *ovs[] = {&ov};
    Dm__CatalogDigest dg;
    dm__catalog_digest__init(&dg);
    dg.origins = ovs;
    dg.n_origins = 1;
    n = dm__catalog_digest__pack(&dg, buf);
    cr_assert_eq(dm_catalog_delta(a->cat, buf, n, 4096, &out, &more), DM_ERR_PROTO);
    cr_assert_eq(dm_catalog_count(a->cat), 1);
    dm_buf_free(&out);
}

Test(catalog, entry_encoding_roundtrips)
{
    s_node *a = s_node_new(), *b = s_node_new();
    s_publish_node(a, "commerce", S_NOW);
    dm_catalog_entry_t e, back;
    cr_assert_eq(dm_catalog_get(a->cat, s_id(a), "node", &e), DM_OK);
    dm_buf_t wire = DM_BUF_INIT;
    dm_catalog_entry_encode(&e, &wire);
    cr_assert_eq(dm_catalog_entry_decode(wire.data, wire.len, &back), DM_OK);
    cr_assert_str_eq(back.key, "node");
    cr_assert_eq(back.version, e.version);
    cr_assert_arr_eq(back.signature, e.signature, DM_ID_SIGNATURE_BYTES);
    dm_catalog_verdict v;
    cr_assert_eq(dm_catalog_apply(b->cat, &back, S_NOW, &v, NULL), DM_OK);
    cr_assert_eq(v, DM_CATALOG_ACCEPTED);
    dm_catalog_entry_clear(&e);
    dm_catalog_entry_clear(&back);
    dm_buf_free(&wire);
}
