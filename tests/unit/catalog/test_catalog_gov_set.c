/* test_catalog_gov_set.c: which governance documents are active across
 * the key chain: per name the newest key's entry (a rotation keeps the
 * retired key's documents), withdrawal by a tombstone of the current key,
 * and versions that keep rising across rotations without stopping
 * anti-entropy from delivering an older entry a node missed. */
#include <criterion/criterion.h>

#include <limits.h>
#include <string.h>

#include "catalog/catalog.h"
#include "catalog_test.h"
#include "fixture.h"
#include "proto/catalog.pb-c.h"

#define S_NOW DM_T_CATALOG_NOW
#define S_ROUNDS_MAX 8 /* exchanges a test allows for convergence */
#define S_DOCS_MAX 8   /* documents a test lists */

typedef dm_t_cnode_t s_node;

static dm_t_cworld_t s_w;

static s_node *s_node_new(void)
{
    return dm_t_cworld_node(&s_w, "test_catalog_gov_set");
}

static dm_identity_t *s_key_new(void)
{
    return dm_t_cworld_key(&s_w);
}

static void s_teardown(void)
{
    dm_t_cworld_clear(&s_w);
}

TestSuite(catalog_gov_set, .fini = s_teardown);

static const uint8_t *s_pub(const dm_identity_t *id) { return dm_identity_public(id); }

static void s_set_gov(s_node *n, const dm_identity_t *g)
{
    cr_assert_eq(dm_catalog_set_governance(n->cat, s_pub(g), NULL), DM_OK);
}

static const char s_yaml[] = "apiVersion: datamesh.io/v1\nkind: Group\nmetadata: {name: x}\n";

/* Hands n the entry key of g at version (dmctl policy publish does):
 * a document, or its withdrawal (tombstone) when !live. */
static dm_catalog_verdict s_push(s_node *n, const dm_identity_t *g, const char *key,
                                 bool live, uint64_t version, dm_buf_t *why)
{
    dm_catalog_entry_t e;
    dm_t_entry_sign(g, s_pub(g), key, live ? s_yaml : NULL, live ? sizeof s_yaml - 1 : 0, version,
                    !live, &e);
    dm_catalog_verdict v;
    cr_assert_eq(dm_catalog_apply(n->cat, &e, S_NOW, &v, why), DM_OK);
    return v;
}

/* g hands governance to next (root version rv) at version. */
static dm_catalog_verdict s_rotate(s_node *n, const dm_identity_t *g, const dm_identity_t *next,
                                   uint64_t rv, uint64_t version)
{
    uint8_t buf[DM_T_GOV_ROOT_BYTES];
    size_t len = dm_t_gov_root(next, rv, buf);
    dm_catalog_entry_t e;
    dm_t_entry_sign(g, s_pub(g), DM_CATALOG_GOV_ROOT_KEY, buf, len, version, false, &e);
    dm_catalog_verdict v;
    cr_assert_eq(dm_catalog_apply(n->cat, &e, S_NOW, &v, NULL), DM_OK);
    return v;
}

/* The active documents: keys, their origins and versions, in order. */
typedef struct {
    char keys[S_DOCS_MAX][DM_CATALOG_KEY_MAX];
    uint8_t origins[S_DOCS_MAX][DM_ID_PUBLIC_BYTES];
    uint64_t versions[S_DOCS_MAX];
    size_t n;
} s_list;

static int s_collect(void *ctx, const dm_catalog_entry_t *e)
{
    s_list *l = ctx;
    cr_assert_lt(l->n, S_DOCS_MAX);
    cr_assert(!e->tombstone);
    strcpy(l->keys[l->n], e->key);
    memcpy(l->origins[l->n], e->origin, DM_ID_PUBLIC_BYTES);
    l->versions[l->n++] = e->version;
    return 0;
}

static s_list s_docs(const s_node *n)
{
    s_list l;
    memset(&l, 0, sizeof l);
    dm_catalog_gov_docs(n->cat, s_collect, &l);
    return l;
}

/* Runs anti-entropy from -> to until nothing moves; the entries accepted. */
static size_t s_sync(s_node *from, s_node *to)
{
    return dm_t_catalog_sync(from->cat, to->cat, S_ROUNDS_MAX);
}

/* ---- the active documents across a rotation ---- */

Test(catalog_gov_set, rotation_keeps_the_retired_keys_documents)
{
    s_node *a = s_node_new();
    dm_identity_t *g1 = s_key_new(), *g2 = s_key_new();
    s_set_gov(a, g1);
    cr_assert_eq(s_push(a, g1, "gov/doc/masks", true, 1, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_push(a, g1, "gov/doc/readers", true, 2, NULL), DM_CATALOG_ACCEPTED);
    uint64_t gen = dm_catalog_gov_generation(a->cat);
    cr_assert_eq(s_rotate(a, g1, g2, 2, 3), DM_CATALOG_ACCEPTED);
    cr_assert_gt(dm_catalog_gov_generation(a->cat), gen);
    s_list l = s_docs(a);
    cr_assert_eq(l.n, 2, "a rotation withdraws nothing");
    cr_assert_eq(dm_catalog_gov_docs_version(a->cat), 2, "and the set's version stays");
    /* the new key replaces one of them; the other stays the old key's */
    cr_assert_eq(s_push(a, g2, "gov/doc/readers", true, 4, NULL), DM_CATALOG_ACCEPTED);
    l = s_docs(a);
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(l.keys[0], "gov/doc/masks");
    cr_assert_eq(memcmp(l.origins[0], s_pub(g1), DM_ID_PUBLIC_BYTES), 0);
    cr_assert_str_eq(l.keys[1], "gov/doc/readers");
    cr_assert_eq(memcmp(l.origins[1], s_pub(g2), DM_ID_PUBLIC_BYTES), 0);
    cr_assert_eq(l.versions[1], 4);
    cr_assert_eq(dm_catalog_gov_docs_version(a->cat), 4);
    /* the retired key publishes nothing new */
    cr_assert_eq(s_push(a, g1, "gov/doc/extra", true, 5, NULL), DM_CATALOG_NOT_OWNER);
    /* and all of it holds after a restart */
    dm_t_cnode_reopen(a);
    l = s_docs(a);
    cr_assert_eq(l.n, 2);
    cr_assert_eq(memcmp(l.origins[1], s_pub(g2), DM_ID_PUBLIC_BYTES), 0);
}

/* ---- withdrawal ---- */

Test(catalog_gov_set, withdrawal_by_the_current_key_even_of_a_retired_keys_document)
{
    s_node *a = s_node_new();
    dm_identity_t *g1 = s_key_new(), *g2 = s_key_new();
    s_set_gov(a, g1);
    cr_assert_eq(s_push(a, g1, "gov/doc/deny", true, 1, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_push(a, g1, "gov/doc/keep", true, 2, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_rotate(a, g1, g2, 2, 3), DM_CATALOG_ACCEPTED);
    /* the retired key cannot withdraw its own document any more */
    cr_assert_eq(s_push(a, g1, "gov/doc/deny", false, 4, NULL), DM_CATALOG_NOT_OWNER);
    cr_assert_eq(s_docs(a).n, 2);
    uint64_t gen = dm_catalog_gov_generation(a->cat);
    cr_assert_eq(s_push(a, g2, "gov/doc/deny", false, 4, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_gt(dm_catalog_gov_generation(a->cat), gen);
    s_list l = s_docs(a);
    cr_assert_eq(l.n, 1);
    cr_assert_str_eq(l.keys[0], "gov/doc/keep");
    cr_assert_eq(dm_catalog_gov_docs_version(a->cat), 4, "a withdrawal gives the set a version");
    /* published again, it is back */
    cr_assert_eq(s_push(a, g2, "gov/doc/deny", true, 5, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_docs(a).n, 2);
    cr_assert_eq(s_push(a, g2, "gov/doc/deny", false, 6, NULL), DM_CATALOG_ACCEPTED);
    dm_t_cnode_reopen(a);
    cr_assert_eq(s_docs(a).n, 1);
    cr_assert_eq(dm_catalog_gov_docs_version(a->cat), 6);
}

Test(catalog_gov_set, withdrawal_travels_by_gossip)
{
    s_node *a = s_node_new(), *b = s_node_new();
    dm_identity_t *g = s_key_new();
    s_set_gov(a, g);
    s_set_gov(b, g);
    cr_assert_eq(s_push(a, g, "gov/doc/deny", true, 1, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_sync(a, b), 1);
    cr_assert_eq(s_docs(b).n, 1);
    cr_assert_eq(s_push(a, g, "gov/doc/deny", false, 2, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_sync(a, b), 1);
    cr_assert_eq(s_docs(b).n, 0);
    cr_assert_eq(dm_catalog_gov_docs_version(b->cat), 2);
}

/* ---- versions ---- */

Test(catalog_gov_set, versions_keep_rising_across_a_rotation)
{
    s_node *a = s_node_new();
    dm_identity_t *g1 = s_key_new(), *g2 = s_key_new();
    s_set_gov(a, g1);
    cr_assert_eq(dm_catalog_gov_max_version(a->cat), 0);
    cr_assert_eq(s_push(a, g1, "gov/doc/masks", true, 1, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_push(a, g1, "gov/doc/readers", true, 2, NULL), DM_CATALOG_ACCEPTED);
    /* a new document cannot take a version below the set's */
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(s_push(a, g1, "gov/doc/late", true, 2, &why), DM_CATALOG_STALE);
    cr_assert_not_null(strstr(why.data, "version 2 is not above the governance log's 2"), "%s",
                       why.data);
    cr_assert_eq(s_rotate(a, g1, g2, 2, 3), DM_CATALOG_ACCEPTED);
    cr_assert_eq(dm_catalog_gov_max_version(a->cat), 3);
    /* the new key does not start again at 1 */
    dm_buf_reset(&why);
    cr_assert_eq(s_push(a, g2, "gov/doc/masks", true, 1, &why), DM_CATALOG_STALE);
    cr_assert_not_null(strstr(why.data, "version 1 is not above the governance log's 3"), "%s",
                       why.data);
    cr_assert_eq(s_push(a, g2, "gov/doc/masks", false, 3, NULL), DM_CATALOG_STALE);
    cr_assert_eq(s_push(a, g2, "gov/doc/masks", true, 4, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(dm_catalog_gov_max_version(a->cat), 4);
    cr_assert_eq(dm_catalog_gov_docs_version(a->cat), 4);
    dm_buf_free(&why);
}

Test(catalog_gov_set, a_missed_older_entry_still_arrives_by_gossip)
{
    /* The publisher handed masks (1) and readers (2) to a, and readers (2)
     * alone to b as well: b holds a higher version than masks, which it
     * missed. Handed masks directly, b refuses it (a publisher may not go
     * back); from a peer, in the digest's order, b takes it. */
    s_node *a = s_node_new(), *b = s_node_new();
    dm_identity_t *g = s_key_new();
    s_set_gov(a, g);
    s_set_gov(b, g);
    cr_assert_eq(s_push(a, g, "gov/doc/masks", true, 1, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_push(a, g, "gov/doc/readers", true, 2, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_push(b, g, "gov/doc/readers", true, 2, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_sync(a, b), 1);
    s_list l = s_docs(b);
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(l.keys[0], "gov/doc/masks");
    cr_assert_eq(s_sync(b, a), 0);
    /* and the other way round: a node that got only the newer by gossip */
    s_node *c = s_node_new();
    s_set_gov(c, g);
    cr_assert_eq(s_push(c, g, "gov/doc/readers", true, 2, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_push(c, g, "gov/doc/masks", true, 1, NULL), DM_CATALOG_STALE);
    cr_assert_eq(s_sync(b, c), 1);
    cr_assert_eq(s_docs(c).n, 2);
}
