/* test_health.c: product health across real meshd processes.
 *
 * Three nodes (logistics, commerce, identity) joined by gossip;
 * logistics.inventory has an SLA and a unique check, commerce.orders names
 * it as its upstream. The owner of inventory measures, publishes a signed
 * health/ entry, and every node knows it:
 *   - sla_breach: queries on inventory slower than its contract's
 *     "p99 < 1ms" breach sla.latency; meshq describe at the owner shows the
 *     term against its measured value, and meshq products at the third
 *     node (identity) shows inventory "sla breached" and commerce.orders
 *     "upstream degraded" naming inventory, within the deadline.
 *   - unique_failure: an ingest that duplicates skus fails unique(sku);
 *     commerce.orders shows "upstream degraded: logistics.inventory fails
 *     unique(sku)" at the third node; the owner's describe names the
 *     check, and so does the third node's (from its catalog), which also
 *     shows orders degraded (skipped, saying so, in a build without the
 *     checks engine).
 *   - restart: a node stopped and started again counts the time it was
 *     down (its heartbeat) against sla.availability.
 *   - stale: a product whose freshness check lapses with time alone (no
 *     ingest, no schedule) is published as failing: the owner re-judges
 *     its checks from the stored state on its tick.
 *   - sla freshness: a product's sla.freshness measures its event-time
 *     field without a freshness check (rows of 2020 breach a 1h term).
 *   - warn: a product whose check only warns shows "warn" itself, and its
 *     downstream is not "upstream degraded" (a warn is not a failure).
 *   - forged: a stranger's health entry for logistics.inventory (signed
 *     as itself, or claiming the owner's origin) is refused at the third
 *     node: inventory stays "pass" there. */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_catalog.h"
#include "identity/identity.h"
#include "proto/mesh.pb-c.h"

#define T_CMD_MS 30000
#define T_POLL_MS 200
#define T_WAIT_MS 20000 /* a health change reaches every node within this, slack included */

enum { T_LOGISTICS, T_COMMERCE, T_IDENTITY, T_NODES };
static const char *const s_domains[T_NODES] = {"logistics", "commerce", "identity"};
static dm_h_node_t s_nodes[T_NODES];
static char s_dirs[T_NODES][600];

static const char *const s_inventory =
    "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: inventory\n"
    "  domain: logistics\n  version: 1.0.0\n  owner:\n    team: t\n    contact: t@example.com\n"
    "spec:\n  policies:\n    access: public\n  schema:\n    fields:\n"
    "      - {name: sku, type: string, required: true}\n      - {name: qty, type: int}\n"
    "  sla:\n    latency: p99 < 1ms\n    availability: 50\n"
    "  quality:\n    checks:\n      - column: sku\n        rule: unique\n";

static const char *const s_orders =
    "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: orders\n"
    "  domain: commerce\n  version: 1.0.0\n  owner:\n    team: t\n    contact: t@example.com\n"
    "spec:\n  policies:\n    access: public\n  schema:\n    primaryKey: id\n    fields:\n"
    "      - {name: id, type: int, required: true}\n"
    "  interoperability:\n    lineage:\n      upstream:\n"
    "        - product: inventory\n          domain: logistics\n";

#define T_SKUS 300

/* Runs dmctl (tool "dmctl") or meshq against node i's data directory. */
static dm_h_result_t s_tool(const char *tool, int i, const char *a1, const char *a2,
                            const char *a3)
{
    const char *argv[] = {"--data", s_dirs[i], a1, a2, a3, NULL};
    return dm_h_run(tool, argv, NULL, T_CMD_MS);
}

static void s_ok(dm_h_result_t r)
{
    cr_assert_eq(r.status, 0, "status %d: %s%s", r.status, r.out, r.err);
    dm_h_result_free(&r);
}

/* Registers text on node i. */
static void s_register(int i, const char *name, const char *text)
{
    char path[700];
    snprintf(path, sizeof path, "%s-%s.yaml", s_dirs[i], name);
    dm_h_write(path, text);
    s_ok(s_tool("dmctl", i, "register", path, NULL));
}

/* Ingests T_SKUS inventory rows, each sku dup times over (1: unique). */
static void s_ingest_inventory(int dup)
{
    static char nd[T_SKUS * 48];
    size_t len = 0;
    for (int k = 0; k < T_SKUS; k++)
        len += (size_t)snprintf(nd + len, sizeof nd - len, "{\"sku\":\"s%d\",\"qty\":%d}\n",
                                k / dup, k);
    char path[700];
    snprintf(path, sizeof path, "%s-inventory-%d.ndjson", s_dirs[T_LOGISTICS], dup);
    dm_h_write(path, nd);
    s_ok(s_tool("dmctl", T_LOGISTICS, "ingest", "logistics/inventory", path));
}

static void s_up(void)
{
    cr_assert_not_null(dm_h_tmpdir());
    int bad = dm_h_star_start(s_nodes, T_NODES, s_domains, s_dirs[0], sizeof s_dirs[0]);
    cr_assert(bad < 0, "node %s did not start", bad < 0 ? "-" : s_domains[bad]);
    s_register(T_LOGISTICS, "inventory", s_inventory);
    s_register(T_COMMERCE, "orders", s_orders);
    s_ingest_inventory(1);
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(health, .init = s_up, .fini = s_down, .timeout = 120);

/* The "health" and "health_cause" of domain.name in node i's mesh listing
 * (meshq products --json) into health and cause; false when not listed. */
static bool s_listed(int i, const char *domain, const char *name, char *health, size_t hcap,
                     char *cause, size_t ccap)
{
    dm_h_result_t r = s_tool("meshq", i, "products", "--json", NULL);
    char head[200];
    snprintf(head, sizeof head, "{\"domain\":\"%s\",\"name\":\"%s\"", domain, name);
    char *at = r.status == 0 ? strstr(r.out, head) : NULL;
    char *end = at ? strstr(at + 1, "{\"domain\"") : NULL;
    if (end)
        *end = 0;
    char *h = at ? strstr(at, "\"health\":") : NULL;
    char *c = at ? strstr(at, "\"health_cause\":\"") : NULL;
    health[0] = cause[0] = 0;
    if (h && h[9] == '"')
        snprintf(health, hcap, "%.*s", (int)strcspn(h + 10, "\""), h + 10);
    if (c)
        snprintf(cause, ccap, "%.*s", (int)strcspn(c + 16, "\""), c + 16);
    dm_h_result_free(&r);
    return at != NULL;
}

/* Waits until node i lists domain.name with health want (NULL: any) and a
 * cause holding says (NULL: any); fails naming the last seen state. */
static void s_wait_health(int i, const char *domain, const char *name, const char *want,
                          const char *says)
{
    char health[64] = "", cause[512] = "";
    long long deadline = dm_h_now_ms() + T_WAIT_MS;
    for (;;) {
        bool listed = s_listed(i, domain, name, health, sizeof health, cause, sizeof cause);
        if (listed && (!want || strcmp(health, want) == 0) && (!says || strstr(cause, says)))
            return;
        cr_assert_lt(dm_h_now_ms(), deadline,
                     "%s.%s at %s: health '%s' (%s), want '%s' with '%s'", domain, name,
                     s_domains[i], health, cause, want ? want : "any", says ? says : "");
        poll(NULL, 0, T_POLL_MS);
    }
}

/* A query on inventory at its owner that takes well over a millisecond
 * (a self-join of T_SKUS rows: 90,000 rows walked). */
static void s_slow_queries(int n)
{
    for (int k = 0; k < n; k++)
        s_ok(s_tool("meshq", T_LOGISTICS, "query",
                    "SELECT count(*) FROM logistics.inventory a, logistics.inventory b "
                    "WHERE a.qty <= b.qty",
                    NULL));
}

Test(health, sla_breach_shows_upstream_degraded_at_a_third_node)
{
    s_wait_health(T_IDENTITY, "commerce", "orders", NULL, NULL); /* the third node knows it */
    s_slow_queries(3);
    s_wait_health(T_IDENTITY, "logistics", "inventory", "sla breached", "sla.latency");
    s_wait_health(T_IDENTITY, "commerce", "orders", "upstream degraded",
                  "upstream degraded: logistics.inventory breaches sla.latency");
    /* The owner's describe: the terms against their measured values. */
    dm_h_result_t r = s_tool("meshq", T_LOGISTICS, "describe", "logistics/inventory", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "target p99 < 1ms"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, " quer"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "BREACHED"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "availability"), "%s", r.out);
    dm_h_result_free(&r);
    r = s_tool("meshq", T_COMMERCE, "describe", "commerce/orders", "--json");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "\"degraded\":\"upstream degraded: logistics.inventory "
                                     "breaches sla.latency"),
                       "%s", r.out);
    dm_h_result_free(&r);
}

Test(health, unique_failure_shows_upstream_degraded_at_a_third_node)
{
    /* Whether the checks engine is in this build: it brings dmctl quality. */
    dm_h_result_t r = s_tool("dmctl", T_LOGISTICS, "quality", "logistics/inventory", NULL);
    bool engine = !strstr(r.err, "unknown command");
    dm_h_result_free(&r);
    if (!engine)
        cr_skip_test("the checks engine (node/quality/quality.c, dmctl quality) is not in "
                     "this build: no quality report is ever stored, so unique(sku) cannot "
                     "fail yet");
    s_wait_health(T_IDENTITY, "logistics", "inventory", "pass", NULL);
    /* lineage's health column says what the listing says */
    r = s_tool("meshq", T_IDENTITY, "lineage", "logistics/inventory", "--json");
    cr_assert_eq(r.status, 0, "%s", r.err);
    char *at = strstr(r.out, "\"product\":\"inventory\""), *end = at ? strchr(at, '}') : NULL;
    cr_assert_not_null(end, "%s", r.out);
    *end = 0; /* inventory's own object */
    cr_assert_not_null(strstr(at, "\"health\":\"pass\""), "%s", at);
    dm_h_result_free(&r);
    s_ingest_inventory(3); /* each sku three times: 100 groups, 200 extra rows */
    s_wait_health(T_IDENTITY, "logistics", "inventory", "fail", "unique(sku)");
    s_wait_health(T_IDENTITY, "commerce", "orders", "upstream degraded",
                  "upstream degraded: logistics.inventory fails unique(sku)");
    /* The owner's describe names the failing check against its threshold. */
    r = s_tool("meshq", T_LOGISTICS, "describe", "logistics/inventory", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "health: fail"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "unique(sku)"), "%s", r.out);
    cr_assert_null(strstr(r.out, "as its owner last published"), "%s", r.out);
    dm_h_result_free(&r);
    /* So does the third node's, from its catalog; and it says orders is degraded. */
    r = s_tool("meshq", T_IDENTITY, "describe", "logistics/inventory", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "health: fail"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "unique(sku)"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "records: 600 (quarantined: 0), as its owner last "
                                     "published them"),
                       "%s", r.out);
    dm_h_result_free(&r);
    r = s_tool("meshq", T_IDENTITY, "describe", "commerce/orders", "--json");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "\"from_catalog\":true"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"degraded\":\"upstream degraded: logistics.inventory "
                                     "fails unique(sku)"),
                       "%s", r.out);
    dm_h_result_free(&r);
    r = s_tool("meshq", T_IDENTITY, "describe", "logistics/nothing", NULL);
    cr_assert_neq(r.status, 0, "%s", r.out);
    cr_assert_not_null(strstr(r.err, "unknown product 'logistics/nothing'"), "%s", r.err);
    dm_h_result_free(&r);
}

Test(health, a_restart_counts_the_time_down_against_availability)
{
    /* inventory's availability (50%) is measured from the node's
     * heartbeat: a clean stop writes one, the start counts the gap. */
    dm_h_node_signal(&s_nodes[T_LOGISTICS], SIGTERM);
    const char *join[] = {"--join", s_nodes[T_COMMERCE].addr, NULL};
    cr_assert(dm_h_node_start(&s_nodes[T_LOGISTICS], s_dirs[T_LOGISTICS], "logistics", join));
    long long deadline = dm_h_now_ms() + T_WAIT_MS;
    for (;;) {
        dm_h_result_t r = s_tool("meshq", T_LOGISTICS, "describe", "logistics/inventory",
                                 NULL);
        const char *a = r.status == 0 ? strstr(r.out, "    availability ") : NULL;
        bool counted = a && strstr(a, "measured ") && !strstr(a, "measured 100.000%") &&
                       !strstr(a, "measured observed under");
        if (counted) {
            cr_assert(strstr(a, "% over"), "%s", r.out);
            dm_h_result_free(&r);
            return;
        }
        cr_assert_lt(dm_h_now_ms(), deadline, "availability never counted the restart: %s",
                     r.out);
        dm_h_result_free(&r);
        poll(NULL, 0, T_POLL_MS);
    }
}

/* A health record saying "fail" (unique(sku) failing) into t's payload. */
static void s_forged_record(dm_h_entry_t *t)
{
    Dm__HealthRecord r = DM__HEALTH_RECORD__INIT;
    Dm__CheckResult k = DM__CHECK_RESULT__INIT;
    Dm__CheckResult *ks[1] = {&k};
    r.outcome = "fail";
    k.name = "unique(sku)";
    k.rule = "unique";
    k.outcome = "fail";
    r.checks = ks;
    r.n_checks = 1;
    dm_buf_reset(&t->payload);
    dm_buf_reserve(&t->payload, dm__health_record__get_packed_size(&r));
    t->payload.len = dm__health_record__pack(&r, (uint8_t *)t->payload.data);
}

Test(health, a_strangers_health_entry_is_refused)
{
    s_wait_health(T_IDENTITY, "logistics", "inventory", "pass", NULL);
    dm_identity_t *mallory = NULL, *owner = dm_h_node_identity(&s_nodes[T_LOGISTICS]);
    cr_assert_not_null(owner);
    cr_assert_eq(dm_identity_new_ephemeral(&mallory), DM_OK);
    char addr[DM_ADDRESS_MAX];
    cr_assert_eq(dm_identity_address_format(dm_identity_public(mallory), "tcp://127.0.0.1:9", addr,
                                            sizeof addr, NULL),
                 DM_OK);
    /* Mallory's own domain and product (accepted: the marker that the
     * delta was judged), its health entry of inventory, and one that
     * claims the owner's origin under mallory's signature. */
    static dm_h_entry_t t[4];
    dm_h_entry_node_record(&t[0], "mallory", addr);
    cr_assert(dm_h_entry_sign(&t[0], mallory, dm_identity_public(mallory), "node", 1));
    dm_buf_reset(&t[1].payload);
    cr_assert(dm_h_contract_payload(&t[1].payload, "mallory", "marker", "1.0.0"));
    cr_assert(dm_h_entry_sign(&t[1], mallory, dm_identity_public(mallory),
                              "product/mallory/marker", 2));
    s_forged_record(&t[2]);
    cr_assert(dm_h_entry_sign(&t[2], mallory, dm_identity_public(mallory),
                              "health/logistics/inventory", 3));
    s_forged_record(&t[3]);
    cr_assert(dm_h_entry_sign(&t[3], mallory, dm_identity_public(owner),
                              "health/logistics/inventory", 1000000));
    /* Relayed by a member (commerce), as a peer passes on what it holds:
     * an outsider's own sync is not taken at all. */
    dm_identity_t *relay = dm_h_node_identity(&s_nodes[T_COMMERCE]);
    cr_assert_not_null(relay);
    dm_h_entry_t *ptrs[4] = {&t[0], &t[1], &t[2], &t[3]};
    cr_assert(dm_h_catalog_inject(&s_nodes[T_IDENTITY], relay, s_nodes[T_COMMERCE].addr, ptrs, 4));
    long long deadline = dm_h_now_ms() + T_WAIT_MS;
    while (!dm_h_lists(&s_nodes[T_IDENTITY], "mallory", "marker", NULL)) {
        cr_assert_lt(dm_h_now_ms(), deadline, "the third node never judged the delta");
        poll(NULL, 0, T_POLL_MS);
    }
    char health[64] = "", cause[512] = "";
    cr_assert(s_listed(T_IDENTITY, "logistics", "inventory", health, sizeof health, cause,
                       sizeof cause));
    cr_assert_str_eq(health, "pass", "a forged entry was taken: %s (%s)", health, cause);
    for (int i = 0; i < 4; i++)
        dm_h_entry_free(&t[i]);
    dm_identity_destroy(&relay);
    dm_identity_destroy(&mallory);
    dm_identity_destroy(&owner);
}

/* logistics.stock (one qty rule with rates, a freshness check on the last
 * ingest) and commerce.picks downstream of it; the stock's ingest has
 * negatives negative quantities out of 10. */
static void s_stock(const char *checks, int negatives)
{
    char text[1200];
    snprintf(text, sizeof text,
             "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: stock\n"
             "  domain: logistics\n  version: 1.0.0\n  owner:\n    team: t\n"
             "    contact: t@example.com\nspec:\n  policies:\n    access: public\n  schema:\n"
             "    fields:\n      - {name: sku, type: string, required: true}\n"
             "      - {name: qty, type: int}\n  quality:\n    checks:\n%s",
             checks);
    s_register(T_LOGISTICS, "stock", text);
    snprintf(text, sizeof text,
             "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: picks\n"
             "  domain: commerce\n  version: 1.0.0\n  owner:\n    team: t\n"
             "    contact: t@example.com\nspec:\n  policies:\n    access: public\n  schema:\n"
             "    fields:\n      - {name: id, type: int, required: true}\n"
             "  interoperability:\n    lineage:\n      upstream:\n"
             "        - {product: stock, domain: logistics}\n");
    s_register(T_COMMERCE, "picks", text);
    char nd[400];
    size_t len = 0;
    for (int k = 0; k < 10; k++)
        len += (size_t)snprintf(nd + len, sizeof nd - len, "{\"sku\":\"s%d\",\"qty\":%d}\n", k,
                                k < negatives ? -1 : 1);
    char path[700];
    snprintf(path, sizeof path, "%s-stock.ndjson", s_dirs[T_LOGISTICS]);
    dm_h_write(path, nd);
    s_ok(s_tool("dmctl", T_LOGISTICS, "ingest", "logistics/stock", path));
}

Test(health, a_stale_product_is_published_failing_without_an_ingest)
{
    s_stock("      - {rule: freshness, max_age: 2s}\n", 0);
    /* Nothing happens at the owner after the ingest: the tick re-judges. */
    s_wait_health(T_IDENTITY, "logistics", "stock", "fail", "freshness");
    s_wait_health(T_IDENTITY, "commerce", "picks", "upstream degraded",
                  "upstream degraded: logistics.stock fails freshness");
}

/* sla.freshness measures the event time (the partitioning field) even with
 * no freshness check: rows stamped years ago breach a 1h term at once,
 * though they were ingested just now (the last ingest would meet it). */
Test(health, sla_freshness_measures_the_event_time_not_the_ingest)
{
    static const char *const text =
        "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: events\n"
        "  domain: logistics\n  version: 1.0.0\n  owner:\n    team: t\n"
        "    contact: t@example.com\nspec:\n  policies:\n    access: public\n  schema:\n"
        "    fields:\n      - {name: sku, type: string, required: true}\n"
        "      - {name: ts, type: timestamp}\n"
        "  storage:\n    partitioning: [{field: ts, granularity: day}]\n"
        "  sla:\n    freshness: 1h\n"
        "  quality:\n    checks:\n      - {rule: not_null, column: ts, mostly: 50%}\n";
    s_register(T_LOGISTICS, "events", text);
    char path[700];
    snprintf(path, sizeof path, "%s-events.ndjson", s_dirs[T_LOGISTICS]);
    dm_h_write(path, "{\"sku\":\"a\",\"ts\":\"2020-01-01T00:00:00Z\"}\n"
                     "{\"sku\":\"b\",\"ts\":\"2020-01-02T00:00:00Z\"}\n");
    s_ok(s_tool("dmctl", T_LOGISTICS, "ingest", "logistics/events", path));
    s_wait_health(T_IDENTITY, "logistics", "events", "sla breached", "sla.freshness");
    dm_h_result_t r = s_tool("meshq", T_IDENTITY, "describe", "logistics/events", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "freshness"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "BREACHED"), "%s", r.out);
    cr_assert_null(strstr(r.out, "since the last ingest"), "%s", r.out);
    dm_h_result_free(&r);
}

Test(health, a_warning_upstream_does_not_degrade_its_downstream)
{
    s_stock("      - {column: qty, rule: range, min: 0, warn: 10%, fail: 90%}\n", 5);
    s_wait_health(T_IDENTITY, "logistics", "stock", "warn", "warns on");
    char health[64] = "", cause[512] = "";
    cr_assert(s_listed(T_IDENTITY, "commerce", "picks", health, sizeof health, cause,
                       sizeof cause));
    cr_assert_str_neq(health, "upstream degraded", "a warn degraded its downstream: %s", cause);
    /* lineage shows the warning on the upstream, as the listing does */
    dm_h_result_t r = s_tool("meshq", T_IDENTITY, "lineage", "commerce/picks", "--upstream");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "warns on"), "%s", r.out);
    cr_assert_null(strstr(r.out, "upstream degraded"), "%s", r.out);
    dm_h_result_free(&r);
}
