/* test_catalog_gov_guard.c: what keeps governance going against a hostile
 * peer or a changed store: a refused governance entry (a retired key's, one
 * too far ahead) never raises the version the governance log goes on
 * from, stored governance entries are verified when loaded, and a refusal a
 * peer keeps resending is reported once per DM_CATALOG_REFUSAL_QUIET_MS. */
#include <criterion/criterion.h>

#include <limits.h>
#include <string.h>

#include "catalog/catalog.h"
#include "catalog_test.h"
#include "fixture.h"
#include "proto/catalog.pb-c.h"
#include "storage/catalog_db.h"

#define S_NOW DM_T_CATALOG_NOW
#define S_MAX_NODES 2
#define S_MAX_KEYS 3
#define S_ROUNDS_MAX 8
#define S_HUGE (UINT64_MAX - 2) /* the version the frozen mesh was given */

typedef struct {
    char dir[PATH_MAX];
    dm_store_t *store;
    dm_identity_t *id;
    dm_catalog_t *cat;
} s_node;

static s_node s_nodes[S_MAX_NODES];
static size_t s_nnodes;
static dm_identity_t *s_keys[S_MAX_KEYS];
static size_t s_nkeys;

static s_node *s_node_new(void)
{
    cr_assert_lt(s_nnodes, S_MAX_NODES);
    s_node *n = &s_nodes[s_nnodes++];
    cr_assert_not_null(dm_t_tmpdir(n->dir, sizeof n->dir, "test_catalog_gov_guard"));
    cr_assert_eq(dm_store_open(n->dir, NULL, &n->store, NULL), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&n->id), DM_OK);
    cr_assert_eq(dm_catalog_open(n->store, n->id, &n->cat, NULL), DM_OK);
    return n;
}

static void s_node_reopen(s_node *n)
{
    dm_catalog_destroy(&n->cat);
    dm_store_destroy(&n->store);
    cr_assert_eq(dm_store_open(n->dir, NULL, &n->store, NULL), DM_OK);
    cr_assert_eq(dm_catalog_open(n->store, n->id, &n->cat, NULL), DM_OK);
}

static dm_identity_t *s_key_new(void)
{
    cr_assert_lt(s_nkeys, S_MAX_KEYS);
    cr_assert_eq(dm_identity_new_ephemeral(&s_keys[s_nkeys]), DM_OK);
    return s_keys[s_nkeys++];
}

static void s_teardown(void)
{
    for (size_t i = 0; i < s_nnodes; i++) {
        dm_catalog_destroy(&s_nodes[i].cat);
        dm_store_destroy(&s_nodes[i].store);
        dm_identity_destroy(&s_nodes[i].id);
        dm_t_rmdir(s_nodes[i].dir);
    }
    for (size_t i = 0; i < s_nkeys; i++)
        dm_identity_destroy(&s_keys[i]);
    s_nnodes = s_nkeys = 0;
}

TestSuite(catalog_gov_guard, .fini = s_teardown);

static const uint8_t *s_pub(const dm_identity_t *id) { return dm_identity_public(id); }

static void s_set_gov(s_node *n, const dm_identity_t *g)
{
    cr_assert_eq(dm_catalog_set_governance(n->cat, s_pub(g), NULL), DM_OK);
}

static const char s_yaml[] = "apiVersion: datamesh.io/v1\nkind: Group\nmetadata: {name: x}\n";

/* The entry key of g at version, signed by g: a document (payload NULL:
 * s_yaml), or a given payload. Points into key and payload. */
static void s_entry(const dm_identity_t *g, const char *key, const void *payload, size_t len,
                    uint64_t version, dm_catalog_entry_t *e)
{
    memset(e, 0, sizeof *e);
    memcpy(e->origin, s_pub(g), DM_ID_PUBLIC_BYTES);
    e->key = (char *)key;
    e->version = version;
    e->issued_at_ms = S_NOW;
    e->payload = (uint8_t *)(payload ? payload : s_yaml);
    e->payload_len = payload ? len : sizeof s_yaml - 1;
    dm_buf_t msg = DM_BUF_INIT;
    dm_catalog_entry_signed_bytes(e, &msg);
    cr_assert_eq(dm_identity_sign(g, msg.data, msg.len, e->signature, NULL), DM_OK);
    dm_buf_free(&msg);
}

/* Hands n a document of g (dmctl policy publish does). */
static dm_catalog_verdict s_push(s_node *n, const dm_identity_t *g, const char *key,
                                 uint64_t version, dm_buf_t *why)
{
    dm_catalog_entry_t e;
    s_entry(g, key, NULL, 0, version, &e);
    dm_catalog_verdict v;
    cr_assert_eq(dm_catalog_apply(n->cat, &e, S_NOW, &v, why), DM_OK);
    return v;
}

/* g hands governance to next (root version rv) at version. */
static dm_catalog_verdict s_rotate(s_node *n, const dm_identity_t *g, const dm_identity_t *next,
                                   uint64_t rv, uint64_t version)
{
    Dm__GovRoot r;
    dm__gov_root__init(&r);
    r.root_version = rv;
    r.key.data = (uint8_t *)s_pub(next);
    r.key.len = DM_ID_PUBLIC_BYTES;
    uint8_t buf[128];
    size_t len = dm__gov_root__pack(&r, buf);
    dm_catalog_entry_t e;
    s_entry(g, DM_CATALOG_GOV_ROOT_KEY, buf, len, version, &e);
    dm_catalog_verdict v;
    cr_assert_eq(dm_catalog_apply(n->cat, &e, S_NOW, &v, NULL), DM_OK);
    return v;
}

/* A peer's delta holding e alone, applied to n at now_ms. */
static dm_catalog_counts_t s_deliver(s_node *n, const dm_catalog_entry_t *e, int64_t now_ms,
                                     dm_buf_t *why)
{
    dm_buf_t one = DM_BUF_INIT;
    dm_catalog_entry_encode(e, &one);
    Dm__CatalogEntry *pb = dm__catalog_entry__unpack(NULL, one.len, (const uint8_t *)one.data);
    cr_assert_not_null(pb);
    Dm__CatalogDelta d;
    dm__catalog_delta__init(&d);
    d.n_entries = 1;
    d.entries = &pb;
    uint8_t *wire = malloc(dm__catalog_delta__get_packed_size(&d));
    cr_assert_not_null(wire);
    size_t len = dm__catalog_delta__pack(&d, wire);
    dm_catalog_counts_t counts;
    cr_assert_eq(dm_catalog_apply_delta(n->cat, wire, len, now_ms, &counts, NULL, why), DM_OK);
    free(wire);
    dm__catalog_entry__free_unpacked(pb, NULL);
    dm_buf_free(&one);
    return counts;
}

static size_t s_sync(s_node *from, s_node *to)
{
    size_t accepted = 0;
    for (int round = 0; round < S_ROUNDS_MAX; round++) {
        dm_buf_t digest = DM_BUF_INIT, delta = DM_BUF_INIT;
        bool more = false;
        dm_catalog_digest(to->cat, &digest);
        cr_assert_eq(dm_catalog_delta(from->cat, digest.data, digest.len, 1 << 20, &delta, &more),
                     DM_OK);
        dm_catalog_counts_t counts;
        cr_assert_eq(dm_catalog_apply_delta(to->cat, delta.data, delta.len, S_NOW, &counts, NULL,
                                            NULL),
                     DM_OK);
        dm_buf_free(&digest);
        dm_buf_free(&delta);
        accepted += counts.n[DM_CATALOG_ACCEPTED];
        if (!counts.n[DM_CATALOG_ACCEPTED] && !more)
            break;
    }
    return accepted;
}

static int s_count(void *ctx, const dm_catalog_entry_t *e)
{
    (void)e;
    (*(size_t *)ctx)++;
    return 0;
}

static size_t s_docs(const s_node *n)
{
    size_t k = 0;
    dm_catalog_gov_docs(n->cat, s_count, &k);
    return k;
}

/* g1 publishes (1) and rotates to g2 (2) on a. */
static void s_rotated(s_node *a, const dm_identity_t *g1, const dm_identity_t *g2)
{
    s_set_gov(a, g1);
    cr_assert_eq(s_push(a, g1, "gov/doc/old", 1, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_rotate(a, g1, g2, 2, 2), DM_CATALOG_ACCEPTED);
    cr_assert_eq(dm_catalog_gov_max_version(a->cat), 2);
}

/* ---- a retired key cannot freeze the governance log ---- */

Test(catalog_gov_guard, a_retired_keys_entry_from_a_peer_raises_no_version)
{
    s_node *a = s_node_new();
    dm_identity_t *g1 = s_key_new(), *g2 = s_key_new();
    s_rotated(a, g1, g2);
    dm_catalog_entry_t e;
    s_entry(g1, "gov/doc/frozen", NULL, 0, S_HUGE, &e);
    dm_catalog_counts_t k = s_deliver(a, &e, S_NOW, NULL);
    cr_assert_eq(k.n[DM_CATALOG_NOT_OWNER], 1);
    cr_assert_eq(dm_catalog_gov_max_version(a->cat), 2, "a refused entry moved the log");
    cr_assert_eq(dm_catalog_max_version(a->cat, s_pub(g1)), 2, "a refused entry counts as seen");
    /* the current key goes on: a publication, a withdrawal, a rotation */
    cr_assert_eq(s_push(a, g2, "gov/doc/new", 3, NULL), DM_CATALOG_ACCEPTED);
    dm_catalog_entry_t w;
    s_entry(g2, "gov/doc/new", NULL, 0, 4, &w);
    w.payload = NULL;
    w.payload_len = 0;
    w.tombstone = true;
    dm_buf_t msg = DM_BUF_INIT;
    dm_catalog_entry_signed_bytes(&w, &msg);
    cr_assert_eq(dm_identity_sign(g2, msg.data, msg.len, w.signature, NULL), DM_OK);
    dm_buf_free(&msg);
    dm_catalog_verdict v;
    cr_assert_eq(dm_catalog_apply(a->cat, &w, S_NOW, &v, NULL), DM_OK);
    cr_assert_eq(v, DM_CATALOG_ACCEPTED);
    dm_identity_t *g3 = s_key_new();
    cr_assert_eq(s_rotate(a, g2, g3, 3, 5), DM_CATALOG_ACCEPTED);
    cr_assert_eq(dm_catalog_gov_max_version(a->cat), 5);
}

Test(catalog_gov_guard, a_retired_keys_entry_handed_over_raises_no_version)
{
    s_node *a = s_node_new();
    dm_identity_t *g1 = s_key_new(), *g2 = s_key_new();
    s_rotated(a, g1, g2);
    cr_assert_eq(s_push(a, g1, "gov/doc/frozen", S_HUGE, NULL), DM_CATALOG_NOT_OWNER);
    cr_assert_eq(dm_catalog_gov_max_version(a->cat), 2);
    cr_assert_eq(dm_catalog_max_version(a->cat, s_pub(g1)), 2);
    cr_assert_eq(s_push(a, g2, "gov/doc/new", 3, NULL), DM_CATALOG_ACCEPTED);
}

Test(catalog_gov_guard, the_current_keys_refused_entry_raises_no_version)
{
    s_node *a = s_node_new();
    dm_identity_t *g = s_key_new();
    s_set_gov(a, g);
    cr_assert_eq(s_push(a, g, "gov/doc/a", 1, NULL), DM_CATALOG_ACCEPTED);
    dm_catalog_entry_t e; /* a key the governance key may not say */
    s_entry(g, "node", "", 0, S_HUGE, &e);
    cr_assert_eq(s_deliver(a, &e, S_NOW, NULL).n[DM_CATALOG_MALFORMED], 1);
    cr_assert_eq(dm_catalog_max_version(a->cat, s_pub(g)), 1);
    cr_assert_eq(dm_catalog_gov_max_version(a->cat), 1);
}

Test(catalog_gov_guard, a_version_far_above_the_log_is_refused)
{
    s_node *a = s_node_new();
    dm_identity_t *g = s_key_new();
    s_set_gov(a, g);
    cr_assert_eq(s_push(a, g, "gov/doc/a", 1, NULL), DM_CATALOG_ACCEPTED);
    /* handed over by a client */
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(s_push(a, g, "gov/doc/b", 2 + DM_CATALOG_GOV_VERSION_LEAP, &why),
                 DM_CATALOG_MALFORMED);
    cr_assert_not_null(strstr(why.data, "above the governance log's 1"), "%s", why.data);
    cr_assert_not_null(strstr(why.data, "the next version (2)"), "%s", why.data);
    /* from a peer, and no version seen */
    dm_catalog_entry_t e;
    s_entry(g, "gov/doc/c", NULL, 0, S_HUGE, &e);
    cr_assert_eq(s_deliver(a, &e, S_NOW, NULL).n[DM_CATALOG_MALFORMED], 1);
    cr_assert_eq(dm_catalog_max_version(a->cat, s_pub(g)), 1);
    cr_assert_eq(dm_catalog_gov_max_version(a->cat), 1);
    /* the edge of the bound is still taken */
    cr_assert_eq(s_push(a, g, "gov/doc/b", 1 + DM_CATALOG_GOV_VERSION_LEAP, NULL),
                 DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_docs(a), 2);
    dm_buf_free(&why);
}

/* ---- the store ---- */

/* Overwrites n's stored entry (origin, key) with e as it is (no new
 * signature): a change made in the store behind the node's back. */
static void s_store_put(s_node *n, const dm_catalog_entry_t *e)
{
    dm_buf_t k = DM_BUF_INIT, v = DM_BUF_INIT;
    dm_buf_putc(&k, DM_STORE_CATALOG_ENTRY);
    dm_buf_append(&k, e->origin, DM_ID_PUBLIC_BYTES);
    dm_buf_puts(&k, e->key);
    dm_catalog_entry_encode(e, &v);
    dm_store_catalog_op_t op = {k.data, k.len, v.data, v.len};
    cr_assert_eq(dm_catalog_db_write(n->store, &op, 1, NULL), DM_OK);
    dm_buf_free(&k);
    dm_buf_free(&v);
}

Test(catalog_gov_guard, a_document_changed_in_the_store_is_never_activated)
{
    s_node *a = s_node_new(), *b = s_node_new();
    dm_identity_t *g = s_key_new();
    s_set_gov(a, g);
    s_set_gov(b, g);
    cr_assert_eq(s_push(a, g, "gov/doc/a", 1, NULL), DM_CATALOG_ACCEPTED);
    cr_assert_eq(s_sync(a, b), 1);
    dm_catalog_entry_t e;
    cr_assert_eq(dm_catalog_get(b->cat, s_pub(g), "gov/doc/a", &e), DM_OK);
    static const char other[] = "apiVersion: datamesh.io/v1\nkind: Group\nmetadata: {name: y}\n";
    free(e.payload);
    e.payload = (uint8_t *)strdup(other);
    e.payload_len = sizeof other - 1;
    s_store_put(b, &e);
    dm_catalog_entry_clear(&e);
    s_node_reopen(b);
    cr_assert_eq(s_docs(b), 0, "a changed document was activated");
    cr_assert_eq(dm_catalog_gov_max_version(b->cat), 0);
    cr_assert_eq(dm_catalog_get(b->cat, s_pub(g), "gov/doc/a", &e), DM_ERR_NOTFOUND);
    /* and a peer sends the authentic one again */
    cr_assert_eq(s_sync(a, b), 1);
    cr_assert_eq(s_docs(b), 1);
}

Test(catalog_gov_guard, a_chain_link_changed_in_the_store_is_dropped)
{
    s_node *a = s_node_new();
    dm_identity_t *g1 = s_key_new(), *g2 = s_key_new(), *x = s_key_new();
    s_rotated(a, g1, g2);
    uint8_t k[9] = {DM_STORE_CATALOG_GOV, 0, 0, 0, 0, 0, 0, 0, 2};
    dm_store_catalog_op_t op = {k, sizeof k, s_pub(x), DM_ID_PUBLIC_BYTES};
    cr_assert_eq(dm_catalog_db_write(a->store, &op, 1, NULL), DM_OK);
    s_node_reopen(a);
    uint8_t cur[DM_ID_PUBLIC_BYTES];
    uint64_t rv = 0;
    cr_assert(dm_catalog_governance(a->cat, cur, &rv));
    cr_assert_eq(rv, 1);
    cr_assert_eq(memcmp(cur, s_pub(g1), DM_ID_PUBLIC_BYTES), 0, "a planted key governs");
    cr_assert_eq(s_push(a, x, "gov/doc/planted", 3, NULL), DM_CATALOG_NOT_OWNER);
}

/* ---- refusals a peer keeps resending ---- */

Test(catalog_gov_guard, a_resent_refusal_is_reported_once_per_quiet_period)
{
    s_node *a = s_node_new();
    dm_identity_t *g1 = s_key_new(), *g2 = s_key_new();
    s_rotated(a, g1, g2);
    dm_catalog_entry_t e;
    s_entry(g1, "gov/doc/late", NULL, 0, 7, &e);
    dm_buf_t why = DM_BUF_INIT;
    dm_catalog_counts_t k = s_deliver(a, &e, S_NOW, &why);
    cr_assert_eq(k.n[DM_CATALOG_NOT_OWNER], 1);
    cr_assert_eq(k.quiet, 0);
    cr_assert_not_null(strstr(why.data, "gov/doc/late"), "%s", why.data);
    for (int round = 1; round < 5; round++) { /* the next anti-entropy rounds */
        dm_buf_reset(&why);
        k = s_deliver(a, &e, S_NOW + round * 1000, &why);
        cr_assert_eq(k.n[DM_CATALOG_NOT_OWNER], 1);
        cr_assert_eq(k.quiet, 1, "round %d reported it again", round);
        cr_assert_eq(why.len, 0, "%s", why.data);
    }
    /* another version of it is news */
    dm_catalog_entry_t e8;
    s_entry(g1, "gov/doc/late", NULL, 0, 8, &e8);
    dm_buf_reset(&why);
    cr_assert_eq(s_deliver(a, &e8, S_NOW + 5000, &why).quiet, 0);
    /* and after the quiet period, the first one is reported again */
    dm_buf_reset(&why);
    k = s_deliver(a, &e, S_NOW + DM_CATALOG_REFUSAL_QUIET_MS, &why);
    cr_assert_eq(k.quiet, 0);
    cr_assert_not_null(strstr(why.data, "gov/doc/late"), "%s", why.data);
    dm_buf_free(&why);
}
