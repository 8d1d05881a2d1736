/* test_lineage.c: the lineage graph (node/catalog/lineage.c) over real
 * catalogs: three domains' nodes publish contracts whose upstreams form
 * the graph, a reader syncs them all, and the walks, dangling upstreams,
 * cycles, bounds and "upstream degraded" are checked on what it built. */
#include "catalog/lineage.h"

#include "catalog_test.h"

static dm_t_cworld_t s_world;

static void s_fini(void) { dm_t_cworld_clear(&s_world); }

TestSuite(lineage, .fini = s_fini);

/* Publishes domain/name whose upstreams are ups ("dom.prod" words,
 * space-separated; NULL for none) from node c. */
static void s_publish(dm_catalog_t *c, const char *domain, const char *name, const char *ups)
{
    dm_buf_t yaml = DM_BUF_INIT;
    dm_t_contract_head(&yaml, domain, name);
    if (ups) {
        dm_buf_puts(&yaml, "  interoperability:\n    lineage:\n      upstream:\n");
        char copy[256];
        snprintf(copy, sizeof copy, "%s", ups);
        for (char *save = NULL, *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
            char *dot = strchr(w, '.');
            cr_assert_not_null(dot);
            *dot = 0;
            dm_buf_printf(&yaml, "        - {domain: %s, product: %s}\n", w, dot + 1);
        }
    }
    dm_t_publish_yaml(c, domain, name, yaml.data, yaml.len);
    dm_buf_free(&yaml);
}

static dm_t_cnode_t *s_domain_node(const char *domain)
{
    return dm_t_domain_node(&s_world, "lineage", domain);
}

/* The mesh of docs/examples, plus one more hop: logistics.inventory ->
 * commerce.orders -> analytics.revenue, and commerce.orders naming
 * identity.customers, which no node publishes (dangling). Returns the
 * reader's catalog, which holds all of it. */
static dm_catalog_t *s_mesh(dm_t_cnode_t **commerce_out)
{
    dm_t_cnode_t *l = s_domain_node("logistics"), *c = s_domain_node("commerce");
    dm_t_cnode_t *a = s_domain_node("analytics"), *r = dm_t_cworld_node(&s_world, "lineage");
    s_publish(l->cat, "logistics", "inventory", NULL);
    s_publish(c->cat, "commerce", "orders", "logistics.inventory identity.customers");
    s_publish(a->cat, "analytics", "revenue", "commerce.orders");
    for (int i = 0; i < 3; i++)
        cr_assert_gt(dm_t_catalog_sync(s_world.nodes[i].cat, r->cat, 8), 0);
    if (commerce_out)
        *commerce_out = c;
    return r->cat;
}

/* What a walk reported, as text: nodes "d.n@depth" (with "!" when
 * dangling) and edges "from>to", each space-separated in walk order. */
typedef struct {
    dm_buf_t nodes, edges;
    size_t nnodes, stop_after;
} s_seen_t;

static int s_node(void *ctx, const dm_lineage_node_t *n)
{
    s_seen_t *s = ctx;
    dm_buf_printf(&s->nodes, "%s%s.%s@%u%s", s->nodes.len ? " " : "", n->domain, n->name,
                  n->depth, n->exists ? "" : "!");
    return s->stop_after && ++s->nnodes >= s->stop_after;
}

static int s_edge(void *ctx, const dm_lineage_node_t *from, const dm_lineage_node_t *to)
{
    s_seen_t *s = ctx;
    dm_buf_printf(&s->edges, "%s%s.%s>%s.%s", s->edges.len ? " " : "", from->domain, from->name,
                  to->domain, to->name);
    return 0;
}

static void s_walk(const dm_lineage_t *g, const char *d, const char *n, unsigned dirs,
                   unsigned depth, s_seen_t *s, bool *truncated)
{
    cr_assert_eq(dm_lineage_walk(g, d, n, dirs, depth, s_node, s_edge, s, truncated), DM_OK);
}

static void s_seen_free(s_seen_t *s)
{
    dm_buf_free(&s->nodes);
    dm_buf_free(&s->edges);
}

Test(lineage, walks_both_ways_and_names_the_dangling_upstream)
{
    dm_lineage_t *g = NULL;
    cr_assert_eq(dm_lineage_build(s_mesh(NULL), &g, NULL), DM_OK);
    s_seen_t s = {0};
    bool cut = true;
    s_walk(g, "commerce", "orders", DM_LINEAGE_UP | DM_LINEAGE_DOWN, 0, &s, &cut);
    cr_assert_str_eq(s.nodes.data,
                     "commerce.orders@0 identity.customers@1! logistics.inventory@1 "
                     "analytics.revenue@1");
    cr_assert_str_eq(s.edges.data, "identity.customers>commerce.orders "
                                   "logistics.inventory>commerce.orders "
                                   "commerce.orders>analytics.revenue");
    cr_assert_not(cut);
    s_seen_free(&s);
    dm_lineage_destroy(&g);
    cr_assert_null(g);
}

Test(lineage, upstream_and_downstream_only_follow_their_direction)
{
    dm_lineage_t *g = NULL;
    cr_assert_eq(dm_lineage_build(s_mesh(NULL), &g, NULL), DM_OK);
    s_seen_t up = {0}, down = {0};
    s_walk(g, "analytics", "revenue", DM_LINEAGE_UP, 0, &up, NULL);
    cr_assert_str_eq(up.nodes.data, "analytics.revenue@0 commerce.orders@1 "
                                    "identity.customers@2! logistics.inventory@2");
    s_walk(g, "logistics", "inventory", DM_LINEAGE_DOWN, 0, &down, NULL);
    cr_assert_str_eq(down.nodes.data,
                     "logistics.inventory@0 commerce.orders@1 analytics.revenue@2");
    cr_assert_str_eq(down.edges.data, "logistics.inventory>commerce.orders "
                                      "commerce.orders>analytics.revenue");
    s_seen_free(&up);
    s_seen_free(&down);
    dm_lineage_destroy(&g);
}

Test(lineage, depth_cuts_the_walk_and_says_so)
{
    dm_lineage_t *g = NULL;
    cr_assert_eq(dm_lineage_build(s_mesh(NULL), &g, NULL), DM_OK);
    s_seen_t s = {0};
    bool cut = false;
    s_walk(g, "analytics", "revenue", DM_LINEAGE_UP, 1, &s, &cut);
    cr_assert_str_eq(s.nodes.data, "analytics.revenue@0 commerce.orders@1");
    cr_assert_str_eq(s.edges.data, "commerce.orders>analytics.revenue");
    cr_assert(cut);
    s_seen_free(&s);
    /* A walk that reaches the graph's end at its depth is not cut. */
    s_seen_t t = {0};
    s_walk(g, "analytics", "revenue", DM_LINEAGE_UP, 2, &t, &cut);
    cr_assert_not(cut);
    s_seen_free(&t);
    dm_lineage_destroy(&g);
}

Test(lineage, unknown_start_is_notfound_and_a_dangling_one_is_a_node)
{
    dm_lineage_t *g = NULL;
    cr_assert_eq(dm_lineage_build(s_mesh(NULL), &g, NULL), DM_OK);
    cr_assert_eq(dm_lineage_walk(g, "commerce", "nope", DM_LINEAGE_UP, 0, NULL, NULL, NULL, NULL),
                 DM_ERR_NOTFOUND);
    s_seen_t s = {0};
    s_walk(g, "identity", "customers", DM_LINEAGE_DOWN, 0, &s, NULL);
    cr_assert_str_eq(s.nodes.data, "identity.customers@0! commerce.orders@1 analytics.revenue@2");
    s_seen_free(&s);
    dm_lineage_destroy(&g);
}

Test(lineage, a_cycle_is_walked_once)
{
    dm_t_cnode_t *c = s_domain_node("commerce");
    s_publish(c->cat, "commerce", "a", "commerce.b");
    s_publish(c->cat, "commerce", "b", "commerce.c");
    s_publish(c->cat, "commerce", "c", "commerce.a");
    dm_lineage_t *g = NULL;
    cr_assert_eq(dm_lineage_build(c->cat, &g, NULL), DM_OK);
    s_seen_t s = {0};
    s_walk(g, "commerce", "a", DM_LINEAGE_UP | DM_LINEAGE_DOWN, DM_LINEAGE_DEPTH_MAX, &s, NULL);
    cr_assert_str_eq(s.nodes.data, "commerce.a@0 commerce.b@1 commerce.c@1");
    cr_assert_str_eq(s.edges.data,
                     "commerce.b>commerce.a commerce.a>commerce.c commerce.c>commerce.b");
    s_seen_free(&s);
    dm_lineage_destroy(&g);
}

Test(lineage, a_callback_stops_the_walk)
{
    dm_lineage_t *g = NULL;
    cr_assert_eq(dm_lineage_build(s_mesh(NULL), &g, NULL), DM_OK);
    s_seen_t s = {.stop_after = 2};
    s_walk(g, "commerce", "orders", DM_LINEAGE_UP | DM_LINEAGE_DOWN, 0, &s, NULL);
    cr_assert_str_eq(s.nodes.data, "commerce.orders@0 identity.customers@1!");
    s_seen_free(&s);
    dm_lineage_destroy(&g);
}

Test(lineage, walk_max_bounds_a_wide_graph)
{
    /* One product with more upstreams than a walk may return: the walk
     * stops at DM_LINEAGE_WALK_MAX nodes and says it was cut. */
    dm_t_cnode_t *c = s_domain_node("commerce");
    dm_buf_t yaml = DM_BUF_INIT;
    dm_buf_puts(&yaml, "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: wide\n"
                       "  domain: commerce\n  version: 1.0.0\n  owner:\n    team: t\n"
                       "    contact: t@c.com\nspec:\n  schema:\n    fields:\n"
                       "      - {name: id, type: int, required: true}\n"
                       "  interoperability:\n    lineage:\n      upstream:\n");
    for (unsigned i = 0; i < DM_LINEAGE_WALK_MAX + 5; i++)
        dm_buf_printf(&yaml, "        - {domain: src, product: p%u}\n", i);
    dm_t_publish_yaml(c->cat, "commerce", "wide", yaml.data, yaml.len);
    dm_lineage_t *g = NULL;
    cr_assert_eq(dm_lineage_build(c->cat, &g, NULL), DM_OK);
    s_seen_t s = {0};
    bool cut = false;
    s_walk(g, "commerce", "wide", DM_LINEAGE_UP, 0, &s, &cut);
    size_t words = 1;
    for (size_t i = 0; i < s.nodes.len; i++)
        words += s.nodes.data[i] == ' ';
    cr_assert_eq(words, DM_LINEAGE_WALK_MAX);
    cr_assert(cut);
    s_seen_free(&s);
    dm_lineage_destroy(&g);
    dm_buf_free(&yaml);
}

/* A health callback: the products listed in ctx ("d.n" words) fail. */
static bool s_health(void *ctx, const char *domain, const char *name, bool *failing,
                     dm_buf_t *cause)
{
    char want[160];
    snprintf(want, sizeof want, " %s.%s ", domain, name);
    *failing = strstr(ctx, want) != NULL;
    if (*failing)
        dm_buf_printf(cause, "fails unique(%s)", name);
    return true;
}

Test(lineage, degraded_names_the_nearest_failing_upstream)
{
    dm_lineage_t *g = NULL;
    cr_assert_eq(dm_lineage_build(s_mesh(NULL), &g, NULL), DM_OK);
    dm_buf_t cause = DM_BUF_INIT;
    cr_assert(dm_lineage_degraded(g, "analytics", "revenue", s_health,
                                  " logistics.inventory ", &cause));
    cr_assert_str_eq(cause.data, "upstream degraded: logistics.inventory fails unique(inventory)");
    cr_assert(dm_lineage_degraded(g, "analytics", "revenue", s_health,
                                  " logistics.inventory commerce.orders ", &cause));
    cr_assert_str_eq(cause.data, "upstream degraded: commerce.orders fails unique(orders)");
    /* Its own failure is not an upstream's; nor is a dangling upstream. */
    cr_assert_not(dm_lineage_degraded(g, "logistics", "inventory", s_health,
                                      " logistics.inventory ", &cause));
    cr_assert_eq(cause.len, 0);
    cr_assert_not(dm_lineage_degraded(g, "commerce", "orders", s_health,
                                      " identity.customers ", &cause));
    cr_assert_not(dm_lineage_degraded(g, "analytics", "revenue", s_health, " ", &cause));
    cr_assert_not(dm_lineage_degraded(g, "nope", "nope", s_health, " nope.nope ", &cause));
    dm_buf_free(&cause);
    dm_lineage_destroy(&g);
}

Test(lineage, a_deregistered_product_becomes_a_dangling_upstream)
{
    dm_t_cnode_t *commerce = NULL;
    dm_catalog_t *r = s_mesh(&commerce);
    cr_assert_eq(dm_catalog_publish(commerce->cat, "product/commerce/orders", NULL, 0, true,
                                    DM_T_CATALOG_NOW, NULL),
                 DM_OK);
    cr_assert_gt(dm_t_catalog_sync(commerce->cat, r, 8), 0);
    dm_lineage_t *g = NULL;
    cr_assert_eq(dm_lineage_build(r, &g, NULL), DM_OK);
    s_seen_t s = {0};
    s_walk(g, "analytics", "revenue", DM_LINEAGE_UP | DM_LINEAGE_DOWN, 0, &s, NULL);
    /* Its own upstreams went with its contract. */
    cr_assert_str_eq(s.nodes.data, "analytics.revenue@0 commerce.orders@1!");
    s_seen_free(&s);
    s_seen_t t = {0};
    s_walk(g, "logistics", "inventory", DM_LINEAGE_DOWN, 0, &t, NULL);
    cr_assert_str_eq(t.nodes.data, "logistics.inventory@0");
    s_seen_free(&t);
    dm_lineage_destroy(&g);
}

Test(lineage, an_empty_catalog_builds_an_empty_graph)
{
    dm_t_cnode_t *n = dm_t_cworld_node(&s_world, "lineage");
    dm_lineage_t *g = NULL;
    cr_assert_eq(dm_lineage_build(n->cat, &g, NULL), DM_OK);
    cr_assert_eq(dm_lineage_walk(g, "a", "b", DM_LINEAGE_UP, 0, NULL, NULL, NULL, NULL),
                 DM_ERR_NOTFOUND);
    dm_lineage_destroy(&g);
    dm_lineage_destroy(&g);
}

/* dm_lineage_degraded_all's callbacks: health counts its calls (the
 * products in ctx's words fail), degraded collects "d.n=cause;" texts. */
typedef struct {
    const char *failing;
    size_t health_calls, degraded;
    dm_buf_t seen;
} s_all_t;

static bool s_all_health(void *ctx, const char *domain, const char *name, bool *failing,
                         dm_buf_t *cause)
{
    s_all_t *a = ctx;
    a->health_calls++;
    return s_health((void *)a->failing, domain, name, failing, cause);
}

static int s_all_degraded(void *ctx, const char *domain, const char *name, const char *cause)
{
    s_all_t *a = ctx;
    a->degraded++;
    dm_buf_printf(&a->seen, "%s.%s=%s;", domain, name, cause);
    return 0;
}

Test(lineage, degraded_all_asks_each_product_once_and_names_the_nearest)
{
    /* 400 products downstream of one failing product, and a chain
     * inventory -> orders -> revenue: one pass asks each product's health
     * once (a walk per product asked the shared upstream 400 times). */
    dm_t_cnode_t *c = s_domain_node("commerce");
    s_publish(c->cat, "commerce", "base", NULL);
    for (int i = 0; i < 400; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%03d", i);
        s_publish(c->cat, "commerce", name, "commerce.base");
    }
    s_publish(c->cat, "commerce", "inventory", NULL);
    s_publish(c->cat, "commerce", "orders", "commerce.inventory");
    s_publish(c->cat, "commerce", "revenue", "commerce.orders commerce.ghost");
    dm_lineage_t *g = NULL;
    cr_assert_eq(dm_lineage_build(c->cat, &g, NULL), DM_OK);
    s_all_t a = {" commerce.base commerce.inventory ", 0, 0, DM_BUF_INIT};
    cr_assert_eq(dm_lineage_degraded_all(g, s_all_health, &a, s_all_degraded, &a), DM_OK);
    cr_assert_eq(a.health_calls, 404, "health asked %zu times", a.health_calls);
    cr_assert_eq(a.degraded, 402);
    cr_assert_not_null(strstr(a.seen.data, "commerce.p399=upstream degraded: commerce.base fails "
                                           "unique(base);"));
    cr_assert_not_null(strstr(a.seen.data, "commerce.revenue=upstream degraded: "
                                           "commerce.inventory fails unique(inventory);"));
    cr_assert_null(strstr(a.seen.data, "commerce.base="), "its own failure is not upstream's");
    /* The nearer of two failing upstreams is named, as dm_lineage_degraded does. */
    a = (s_all_t){" commerce.inventory commerce.orders ", 0, 0, a.seen};
    dm_buf_reset(&a.seen);
    cr_assert_eq(dm_lineage_degraded_all(g, s_all_health, &a, s_all_degraded, &a), DM_OK);
    cr_assert_eq(a.degraded, 2);
    cr_assert_str_eq(a.seen.data, "commerce.orders=upstream degraded: commerce.inventory fails "
                                  "unique(inventory);commerce.revenue=upstream degraded: "
                                  "commerce.orders fails unique(orders);");
    dm_buf_free(&a.seen);
    dm_lineage_destroy(&g);
}

Test(lineage, degraded_all_in_a_cycle_a_product_is_not_its_own_upstream)
{
    dm_t_cnode_t *c = s_domain_node("commerce");
    s_publish(c->cat, "commerce", "x", "commerce.y");
    s_publish(c->cat, "commerce", "y", "commerce.x");
    dm_lineage_t *g = NULL;
    cr_assert_eq(dm_lineage_build(c->cat, &g, NULL), DM_OK);
    s_all_t a = {" commerce.x ", 0, 0, DM_BUF_INIT};
    cr_assert_eq(dm_lineage_degraded_all(g, s_all_health, &a, s_all_degraded, &a), DM_OK);
    cr_assert_str_eq(a.seen.data, "commerce.y=upstream degraded: commerce.x fails unique(x);");
    dm_buf_free(&a.seen);
    dm_lineage_destroy(&g);
}
