/* test_lineage_mesh.c: lineage and search across real meshd processes. Three
 * domains' nodes (logistics, commerce, identity) register the example
 * contracts of docs/examples (inventory and shipments on logistics, orders
 * on commerce; identity registers nothing, so orders' upstream
 * identity.customers dangles), and meshq asks the identity node, which
 * owns none of them, to walk the graph in every format and to search.
 * Suite lineage_gov: under a governance policy that denies a stranger to
 * describe logistics/inventory, lineage and search leave it out for the
 * stranger and keep it for an admin. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_access.h"
#include "harness_catalog.h"

#define T_DEADLINE_MS 30000
#define T_POLL_MS 50

enum { T_LOGISTICS, T_COMMERCE, T_IDENTITY, T_NODES };
static dm_h_node_t s_nodes[T_NODES];
static const char *const s_domains[T_NODES] = {"logistics", "commerce", "identity"};

static void s_register(int node, const char *example)
{
    char path[600];
    snprintf(path, sizeof path, "docs/examples/%s", example);
    const char *args[] = {"--data", s_nodes[node].dir, "register", dm_h_src(path), NULL};
    dm_h_result_t r = dm_h_run("dmctl", args, NULL, T_DEADLINE_MS);
    cr_assert_eq(r.status, 0, "register %s: %s", example, r.err);
    dm_h_result_free(&r);
}

static void s_up(void)
{
    cr_assert_not_null(dm_h_tmpdir());
    int bad = dm_h_star_start(s_nodes, T_NODES, s_domains, NULL, 0);
    cr_assert(bad < 0, "node %s did not start", bad < 0 ? "-" : s_domains[bad]);
    s_register(T_LOGISTICS, "inventory.yaml");
    s_register(T_LOGISTICS, "shipments.yaml");
    s_register(T_COMMERCE, "orders.yaml");
    long long deadline = dm_h_now_ms() + T_DEADLINE_MS;
    const dm_h_node_t *me = &s_nodes[T_IDENTITY];
    while (!(dm_h_lists(me, "logistics", "inventory", NULL) &&
             dm_h_lists(me, "logistics", "shipments", NULL) &&
             dm_h_lists(me, "commerce", "orders", NULL))) {
        cr_assert_lt(dm_h_now_ms(), deadline, "the identity node never saw the three products");
        poll(NULL, 0, T_POLL_MS);
    }
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(lineage_mesh, .init = s_up, .fini = s_down, .timeout = 120);

/* meshq --node (the identity node) ARGS...; the caller frees. */
static dm_h_result_t s_meshq(const char *const *args)
{
    const char *argv[16] = {"--node", s_nodes[T_IDENTITY].addr};
    size_t n = 2;
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return dm_h_run("meshq", argv, NULL, T_DEADLINE_MS);
}

/* The JSON object whose "product" (and "domain") match in array a. */
static const cJSON *s_find(const cJSON *a, const char *domain, const char *product)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (strcmp(cJSON_GetObjectItem(x, "domain")->valuestring, domain) == 0 &&
            strcmp(cJSON_GetObjectItem(x, "product")->valuestring, product) == 0)
            return x;
    }
    return NULL;
}

static bool s_has_edge(const cJSON *edges, const char *from, const char *to, bool dangling)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, edges) {
        if (strcmp(cJSON_GetObjectItem(e, "from")->valuestring, from) == 0 &&
            strcmp(cJSON_GetObjectItem(e, "to")->valuestring, to) == 0)
            return cJSON_IsTrue(cJSON_GetObjectItem(e, "dangling")) == dangling;
    }
    return false;
}

Test(lineage_mesh, json_from_a_third_node_walks_both_ways_and_names_the_dangling_upstream)
{
    const char *args[] = {"lineage", "commerce/orders", "--format", "json", NULL};
    dm_h_result_t r = s_meshq(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cJSON *j = cJSON_Parse(r.out);
    cr_assert_not_null(j, "not JSON: %s", r.out);
    const cJSON *nodes = cJSON_GetObjectItem(j, "nodes"), *edges = cJSON_GetObjectItem(j, "edges");
    cr_assert_eq(cJSON_GetArraySize(nodes), 4, "%s", r.out);
    const cJSON *c = s_find(nodes, "identity", "customers");
    cr_assert_not_null(c, "%s", r.out);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(c, "exists")));
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(c, "dangling")));
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(s_find(nodes, "logistics", "inventory"), "exists")));
    cr_assert_eq(cJSON_GetObjectItem(s_find(nodes, "logistics", "shipments"), "depth")->valueint, 1);
    cr_assert_eq(cJSON_GetObjectItem(s_find(nodes, "commerce", "orders"), "depth")->valueint, 0);
    cr_assert_eq(cJSON_GetArraySize(edges), 3, "%s", r.out);
    cr_assert(s_has_edge(edges, "identity.customers", "commerce.orders", true), "%s", r.out);
    cr_assert(s_has_edge(edges, "logistics.inventory", "commerce.orders", false), "%s", r.out);
    cr_assert(s_has_edge(edges, "commerce.orders", "logistics.shipments", false), "%s", r.out);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "truncated")));
    cJSON_Delete(j);
    dm_h_result_free(&r);
}

Test(lineage_mesh, table_and_dot_name_the_dangling_upstream)
{
    const char *targs[] = {"lineage", "commerce/orders", NULL};
    dm_h_result_t t = s_meshq(targs);
    cr_assert_eq(t.status, 0, "%s", t.err);
    const char *line = strstr(t.out, "identity.customers ");
    cr_assert_not_null(line, "%s", t.out);
    cr_assert(strstr(line, "DANGLING") && strstr(line, "DANGLING") < strchr(line, '\n'), "%s",
              t.out);
    cr_assert(strstr(t.out, "identity.customers -> commerce.orders   (dangling upstream)"), "%s",
              t.out);
    cr_assert(strstr(t.out, "logistics.inventory -> commerce.orders\n"), "%s", t.out);
    dm_h_result_free(&t);
    const char *dargs[] = {"lineage", "commerce/orders", "--format", "dot", NULL};
    dm_h_result_t d = s_meshq(dargs);
    cr_assert_eq(d.status, 0, "%s", d.err);
    cr_assert_eq(strncmp(d.out, "digraph lineage {\n", 18), 0, "%s", d.out);
    cr_assert(strstr(d.out, "\"identity.customers\" -> \"commerce.orders\" [style=dashed"), "%s",
              d.out);
    cr_assert(strstr(d.out, "\"commerce.orders\" -> \"logistics.shipments\";"), "%s", d.out);
    cr_assert(strstr(d.out, "(dangling: no such product)"), "%s", d.out);
    size_t quotes = 0;
    for (const char *p = d.out; *p; p++)
        quotes += *p == '"' && (p == d.out || p[-1] != '\\');
    cr_assert_eq(quotes % 2, 0, "unbalanced quotes: %s", d.out);
    cr_assert_str_eq(d.out + strlen(d.out) - 2, "}\n");
    dm_h_result_free(&d);
}

Test(lineage_mesh, one_direction_and_depth_cut_the_walk)
{
    const char *args[] = {"lineage", "logistics/shipments", "--upstream", "--depth", "1",
                          "--format", "json", NULL};
    dm_h_result_t r = s_meshq(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cJSON *j = cJSON_Parse(r.out);
    cr_assert_not_null(j, "%s", r.out);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "nodes")), 2, "%s", r.out);
    cr_assert_not_null(s_find(cJSON_GetObjectItem(j, "nodes"), "commerce", "orders"));
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "truncated")), "%s", r.out);
    cJSON_Delete(j);
    dm_h_result_free(&r);
    const char *down[] = {"lineage", "logistics/inventory", "--downstream", "--format", "json",
                          NULL};
    r = s_meshq(down);
    cr_assert_eq(r.status, 0, "%s", r.err);
    j = cJSON_Parse(r.out);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "nodes")), 3, "%s", r.out);
    cr_assert_null(s_find(cJSON_GetObjectItem(j, "nodes"), "identity", "customers"), "%s", r.out);
    cJSON_Delete(j);
    dm_h_result_free(&r);
}

Test(lineage_mesh, an_unknown_product_and_a_bad_depth_are_refused)
{
    const char *args[] = {"lineage", "commerce/nope", NULL};
    dm_h_result_t r = s_meshq(args);
    cr_assert_eq(r.status, 1, "%s", r.out);
    cr_assert(strstr(r.err, "commerce/nope"), "%s", r.err);
    /* One prefix: the node's text already begins "lineage: ". */
    cr_assert_eq(strncmp(dm_h_last_line(r.err), "meshq: lineage: no product ", 27), 0, "%s",
                 r.err);
    cr_assert_null(strstr(r.err, "lineage: lineage:"), "%s", r.err);
    dm_h_result_free(&r);
    const char *bad[] = {"lineage", "commerce/orders", "--depth", "65", NULL};
    r = s_meshq(bad);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "--depth '65'") && strstr(r.err, "1 to 64"), "%s", r.err);
    dm_h_result_free(&r);
    /* the unknown product's hint names a real command */
    const char *hint[] = {"lineage", "commerce/nope", NULL};
    r = s_meshq(hint);
    cr_assert(strstr(r.err, "meshq products"), "%s", r.err);
    cr_assert_null(strstr(r.err, "--mesh"), "%s", r.err);
    dm_h_result_free(&r);
    const char *clash[] = {"--json", "lineage", "commerce/orders", "--format", "dot", NULL};
    r = s_meshq(clash);
    cr_assert_eq(r.status, 2, "%s", r.out);
    cr_assert(strstr(r.err, "disagree"), "%s", r.err);
    dm_h_result_free(&r);
}

Test(lineage_mesh, search_ranks_from_any_node)
{
    const char *args[] = {"--json", "search", "order", NULL};
    dm_h_result_t r = s_meshq(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cJSON *j = cJSON_Parse(r.out);
    cr_assert_not_null(j, "%s", r.out);
    /* orders: its name begins with the word (and its description has it);
     * shipments: only its field orderId begins with it; inventory: none. */
    cr_assert_eq(cJSON_GetArraySize(j), 2, "%s", r.out);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "product")->valuestring,
                     "orders");
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 1), "product")->valuestring,
                     "shipments");
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 1), "matched")->valuestring,
                     "fields: orderid");
    cJSON_Delete(j);
    dm_h_result_free(&r);
    const char *table[] = {"search", "carrier", NULL};
    r = s_meshq(table);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "logistics.shipments") && strstr(r.out, "fields: carrier"), "%s",
              r.out);
    cr_assert_null(strstr(r.out, "commerce.orders"), "%s", r.out);
    dm_h_result_free(&r);
    const char *none[] = {"search", "!!!", NULL};
    r = s_meshq(none);
    cr_assert_eq(r.status, 1, "%s", r.out);
    cr_assert_eq(strncmp(dm_h_last_line(r.err), "meshq: search: the query '!!!' has no words",
                         43),
                 0, "%s", r.err);
    dm_h_result_free(&r);
}

/* describe (at the owner) names upstreams as DOMAIN.NAME, as SQL, lineage
 * and health do. */
Test(lineage_mesh, describe_names_upstreams_as_domain_dot_name)
{
    const char *args[] = {"--node", s_nodes[T_COMMERCE].addr, "describe", "commerce/orders",
                          NULL};
    dm_h_result_t r = dm_h_run("meshq", args, NULL, T_DEADLINE_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *line = strstr(r.out, "lineage upstream:");
    cr_assert_not_null(line, "%s", r.out);
    size_t len = strcspn(line, "\n");
    cr_assert_eq(strncmp(line, "lineage upstream: logistics.inventory, identity.customers\n",
                         len + 1),
                 0, "%s", r.out);
    dm_h_result_free(&r);
}

/* ---- governance: what the caller may not describe is left out ---- */

static const char *s_gtmp;
static dm_h_node_t s_gnodes[2];
static dm_h_person_t s_gov, s_stranger;

static void s_gov_publish(const dm_h_node_t *n, const char *name, const char *doc)
{
    const char *args[] = {"policy", "publish", dm_h_file(s_gtmp, name, doc), NULL};
    dm_h_result_t r = dm_h_run_as("dmctl", s_gov.file, n, args, NULL);
    cr_assert_eq(r.status, 0, "policy publish %s: %s%s", name, r.out, r.err);
    dm_h_result_free(&r);
}

static void s_gov_up(void)
{
    s_gtmp = dm_h_tmpdir();
    cr_assert_not_null(s_gtmp);
    cr_assert(dm_h_person(&s_gov, s_gtmp, "governance"));
    cr_assert(dm_h_person(&s_stranger, s_gtmp, "stranger"));
    static const char *const domains[] = {"logistics", "commerce"};
    for (int i = 0; i < 2; i++) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s/%s", s_gtmp, domains[i]);
        const char *extra[] = {"--governance", s_gov.hex, i ? "--join" : NULL, s_gnodes[0].addr,
                               NULL};
        cr_assert(dm_h_node_start(&s_gnodes[i], dir, domains[i], extra));
    }
    char doc[1024], key[DM_ID_HEX_BYTES];
    for (int i = 0; i < 2; i++) {
        dm_h_node_key(&s_gnodes[i], key);
        snprintf(doc, sizeof doc,
                 "apiVersion: datamesh.io/v1\nkind: DomainCertificate\nmetadata: {name: %s}\n"
                 "spec: {domain: %s, node: \"%s\"}\n",
                 domains[i], domains[i], key);
        s_gov_publish(&s_gnodes[0], i ? "cert-c.yaml" : "cert-l.yaml", doc);
    }
    snprintf(doc, sizeof doc,
             "apiVersion: datamesh.io/v1\nkind: Policy\nmetadata: {name: hide}\nspec:\n"
             "  access:\n    - name: hide-inventory\n      effect: deny\n"
             "      actions: [describe]\n      products: [\"logistics/inventory\"]\n"
             "      consumers: [\"%s\"]\n",
             s_stranger.hex);
    s_gov_publish(&s_gnodes[0], "hide.yaml", doc);
    const char *inv[] = {"register", dm_h_src("docs/examples/inventory.yaml"), NULL};
    const char *shp[] = {"register", dm_h_src("docs/examples/shipments.yaml"), NULL};
    const char *ord[] = {"register", dm_h_src("docs/examples/orders.yaml"), NULL};
    const char *const *regs[] = {inv, shp, ord};
    for (int i = 0; i < 3; i++) {
        dm_h_result_t r = dm_h_run_admin("dmctl", &s_gnodes[i == 2], regs[i], NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        dm_h_result_free(&r);
    }
}

TestSuite(lineage_gov, .init = s_gov_up, .fini = s_down, .timeout = 120);

/* meshq ARGS on the commerce node as the stranger (as NULL: as its admin). */
static dm_h_result_t s_gmeshq(const dm_h_person_t *as, const char *const *args)
{
    return as ? dm_h_run_as("meshq", as->file, &s_gnodes[1], args, NULL)
              : dm_h_run_admin("meshq", &s_gnodes[1], args, NULL);
}

typedef struct {
    const dm_h_person_t *as;
    const char *const *args;
    const char *want, *absent; /* in the output, and not */
} s_view_t;

static bool s_view(void *ctx)
{
    const s_view_t *v = ctx;
    dm_h_result_t r = s_gmeshq(v->as, v->args);
    bool ok = r.status == 0 && strstr(r.out, v->want) && !(v->absent && strstr(r.out, v->absent));
    dm_h_result_free(&r);
    return ok;
}

Test(lineage_gov, a_product_the_caller_may_not_describe_is_left_out)
{
    static const char *const lin[] = {"lineage", "commerce/orders", "--format", "json", NULL};
    /* The admin sees inventory (so it has reached the node and is certified)... */
    s_view_t admin = {NULL, lin, "\"product\":\"inventory\",\"exists\":true", NULL};
    cr_assert(dm_h_wait_until(s_view, &admin, T_DEADLINE_MS), "the admin never saw inventory");
    /* ...the stranger sees the rest of the graph, not inventory nor its edge. */
    s_view_t stranger = {&s_stranger, lin, "\"product\":\"shipments\"", "inventory"};
    cr_assert(dm_h_wait_until(s_view, &stranger, T_DEADLINE_MS), "inventory was not withheld");
    dm_h_result_t r = s_gmeshq(&s_stranger, lin);
    cr_assert(strstr(r.out, "\"from\":\"identity.customers\""), "%s", r.out);
    dm_h_result_free(&r);
    static const char *const find[] = {"--json", "search", "stock", "warehouse", NULL};
    s_view_t admin_search = {NULL, find, "\"product\":\"inventory\"", NULL};
    cr_assert(s_view(&admin_search));
    r = s_gmeshq(&s_stranger, find);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "[]\n");
    dm_h_result_free(&r);
    static const char *const start[] = {"lineage", "logistics/inventory", NULL};
    r = s_gmeshq(&s_stranger, start);
    cr_assert_eq(r.status, 1, "%s", r.out);
    cr_assert(strstr(r.err, "no product logistics/inventory"), "%s", r.err);
    dm_h_result_free(&r);
    /* describe at a node that does not own it: from the catalog, as governance decides */
    static const char *const desc[] = {"describe", "logistics/inventory", NULL};
    r = s_gmeshq(NULL, desc);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "logistics/inventory"), "%s", r.out);
    dm_h_result_free(&r);
    r = s_gmeshq(&s_stranger, desc);
    cr_assert_eq(r.status, 1, "the stranger described inventory: %s", r.out);
    cr_assert(strstr(r.err, "hide-inventory") || strstr(r.err, "denied"), "%s", r.err);
    dm_h_result_free(&r);
    static const char *const audit[] = {"audit", "--since", "10m", NULL};
    r = dm_h_run_admin("dmctl", &s_gnodes[1], audit, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "(catalog)"), "the commerce node's audit: %s", r.out);
    dm_h_result_free(&r);
}

/* ---- per-command help: no node is asked ---- */

TestSuite(lineage_help, .timeout = 30);

Test(lineage_help, lineage_and_search_have_their_own_help)
{
    static const char *const lin[] = {"lineage", "--help", NULL};
    static const char *const srch[] = {"search", "--help", NULL};
    static const char *const word[] = {"help", "search", NULL};
    static const char *const *const cases[] = {lin, srch, word};
    static const char *const heads[] = {"usage: meshq lineage DOMAIN/PRODUCT",
                                        "usage: meshq search WORDS", "usage: meshq search WORDS"};
    static const char *const has[] = {"--format FORMAT", "--limit N", "--limit N"};
    for (size_t i = 0; i < 3; i++) {
        dm_h_result_t r = dm_h_run("meshq", cases[i], NULL, T_DEADLINE_MS);
        cr_assert_eq(r.status, 0, "%s: %s", cases[i][0], r.err);
        cr_assert_eq(strncmp(r.out, heads[i], strlen(heads[i])), 0, "%s", r.out);
        cr_assert(strstr(r.out, has[i]) && strstr(r.out, "Examples:\n  meshq "), "%s", r.out);
        cr_assert_str_empty(r.err);
        dm_h_result_free(&r);
    }
    static const char *const global[] = {"--help", NULL};
    dm_h_result_t r = dm_h_run("meshq", global, NULL, T_DEADLINE_MS);
    cr_assert_eq(r.status, 0);
    cr_assert_eq(strncmp(r.out, "usage: meshq [global options] COMMAND", 37), 0, "%s", r.out);
    dm_h_result_free(&r);
}

/* ---- dot: a product's own health, then its upstream cause ---- */

static dm_h_node_t s_hnodes[2]; /* logistics (inventory), commerce (orders) */
static const char *s_htmp;

/* orders fails on its own (a duplicated id) and is upstream degraded by
 * inventory (a duplicated sku); its check is named with a quote, a
 * backslash and a control byte, which the owner's health text carries. */
static const char *const s_hinventory =
    "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: inventory\n"
    "  domain: logistics\n  version: 1.0.0\n  owner:\n    team: t\n    contact: t@example.com\n"
    "spec:\n  policies:\n    access: public\n  schema:\n    fields:\n"
    "      - {name: sku, type: string, required: true}\n"
    "  quality:\n    checks:\n      - column: sku\n        rule: unique\n";
static const char *const s_horders =
    "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: orders\n"
    "  domain: commerce\n  version: 1.0.0\n  owner:\n    team: t\n    contact: t@example.com\n"
    "spec:\n  policies:\n    access: public\n  schema:\n    fields:\n"
    "      - {name: id, type: int, required: true}\n"
    "  quality:\n    checks:\n      - column: id\n        rule: unique\n"
    "        name: \"ids \\\"x\\\\y\\x01\"\n"
    "  interoperability:\n    lineage:\n      upstream:\n"
    "        - product: inventory\n          domain: logistics\n";

/* dmctl ARGS as node i's admin. */
static void s_hdmctl(int i, const char *const *args)
{
    dm_h_result_t r = dm_h_run_admin("dmctl", &s_hnodes[i], args, NULL);
    cr_assert_eq(r.status, 0, "dmctl %s: %s%s", args[0], r.out, r.err);
    dm_h_result_free(&r);
}

static void s_health_up(void)
{
    s_htmp = dm_h_tmpdir();
    cr_assert_not_null(s_htmp);
    static const char *const domains[] = {"logistics", "commerce"};
    for (int i = 0; i < 2; i++) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s/%s", s_htmp, domains[i]);
        const char *join[] = {"--join", s_hnodes[0].addr, NULL};
        cr_assert(dm_h_node_start(&s_hnodes[i], dir, domains[i], i ? join : NULL));
    }
    const char *inv[] = {"register", dm_h_file(s_htmp, "inv.yaml", s_hinventory), NULL};
    const char *ord[] = {"register", dm_h_file(s_htmp, "ord.yaml", s_horders), NULL};
    s_hdmctl(0, inv);
    s_hdmctl(1, ord);
    const char *iin[] = {"ingest", "logistics/inventory",
                         dm_h_file(s_htmp, "inv.ndjson", "{\"sku\":\"a\"}\n{\"sku\":\"a\"}\n"),
                         NULL};
    const char *oin[] = {"ingest", "commerce/orders",
                         dm_h_file(s_htmp, "ord.ndjson", "{\"id\":1}\n{\"id\":1}\n"), NULL};
    s_hdmctl(0, iin);
    s_hdmctl(1, oin);
}

TestSuite(lineage_health, .init = s_health_up, .fini = s_down, .timeout = 120);

/* Whether the dot of orders' lineage at the commerce node labels orders
 * with its own failure and its upstream cause; the label line into ctx. */
static bool s_dot_both(void *ctx)
{
    static const char *const args[] = {"lineage", "commerce/orders", "--format", "dot", NULL};
    dm_h_result_t r = dm_h_run_admin("meshq", &s_hnodes[1], args, NULL);
    const char *at = r.status == 0 ? strstr(r.out, "  \"commerce.orders\" [label=") : NULL;
    bool ok = at && strstr(at, "upstream degraded") && strstr(at, "fails ids");
    if (ok)
        snprintf(ctx, 1024, "%.*s", (int)strcspn(at, "\n"), at);
    dm_h_result_free(&r);
    return ok;
}

Test(lineage_health, dot_shows_own_health_before_the_upstream_cause)
{
    char line[1024] = "";
    cr_assert(dm_h_wait_until(s_dot_both, line, T_DEADLINE_MS),
              "orders never showed both its own failure and its upstream's");
    const char *own = strstr(line, "fails ids"), *up = strstr(line, "upstream degraded");
    cr_assert_lt(own, up, "own health after the upstream cause: %s", line);
    cr_assert(strstr(line, "\\n(upstream degraded: logistics.inventory fails unique(sku)"),
              "%s", line);
    /* The check's name, hostile bytes and all: quote and backslash escaped,
     * the control byte as the text \x01, so the label is one DOT string. */
    cr_assert(strstr(line, "fails ids \\\"x\\\\y\\\\x01"), "%s", line);
    for (const char *p = line; *p; p++)
        cr_assert_geq((unsigned char)*p, 0x20, "a raw control byte: %s", line);
    size_t quotes = 0;
    for (const char *p = line; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        quotes += *p == '"';
    }
    cr_assert_eq(quotes, 4, "the id and the label, each quoted once: %s", line);
}
