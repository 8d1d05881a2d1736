/* bench_lineage.c: timing harness for the lineage graph and the catalog
 * search (node/catalog/lineage.c, search.c) over a large catalog.
 *
 * Not a test (tests never assert timing): CMake builds it with -DDM_PERF=ON
 * and nothing runs it. Publishes N products (default 5,000) in one
 * in-memory catalog, each with 20 described fields, two tags and the
 * upstreams p(i/2) and p(i/3) (a tree-like graph about log2(N) deep), one
 * in ten also naming a missing upstream; then times building the graph
 * and the index, a walk both ways from p1 at depth 64, "upstream degraded"
 * of the last product with the root failing, and a three-word search.
 * Build and run (from the repo root):
 *   cmake -S . -B build -DDM_PERF=ON && cmake --build build --target bench_lineage
 *   build/perf/bench_lineage [products]   (default 5000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "catalog/lineage.h"
#include "catalog/search.h"

#define BENCH_DEFAULT_PRODUCTS 5000
#define BENCH_FIELDS 20
#define BENCH_NOW_MS 1764000000000LL

static void s_contract(unsigned i, dm_buf_t *yaml)
{
    dm_buf_reset(yaml);
    dm_buf_printf(yaml,
                  "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: p%u\n"
                  "  domain: bench\n  version: 1.0.0\n  owner: {team: team-%u, contact: t@c.com}\n"
                  "  description: Product %u of the benchmark, stock and orders of shop %u.\n"
                  "  tags: [t%u, shop%u]\nspec:\n  schema:\n    fields:\n"
                  "      - {name: id, type: int, required: true}\n",
                  i, i % 50, i, i % 100, i % 7, i % 100);
    for (unsigned k = 0; k < BENCH_FIELDS; k++)
        dm_buf_printf(yaml, "      - {name: f_%u_%u, type: string, description: field %u}\n", i % 10,
                      k, k);
    if (i == 0)
        return;
    dm_buf_puts(yaml, "  interoperability:\n    lineage:\n      upstream:\n");
    dm_buf_printf(yaml, "        - {domain: bench, product: p%u}\n", i / 2);
    if (i / 3 != i / 2 && i / 3 != i)
        dm_buf_printf(yaml, "        - {domain: bench, product: p%u}\n", i / 3);
    if (i % 10 == 0)
        dm_buf_printf(yaml, "        - {domain: gone, product: g%u}\n", i);
}

static bool s_root_fails(void *ctx, const char *domain, const char *name, bool *failing,
                         dm_buf_t *cause)
{
    (void)ctx;
    (void)domain;
    *failing = strcmp(name, "p0") == 0;
    if (*failing)
        dm_buf_puts(cause, "fails unique(id)");
    return true;
}

static int s_count_node(void *ctx, const dm_lineage_node_t *n)
{
    (void)n;
    (*(size_t *)ctx)++;
    return 0;
}

static int s_count_hit(void *ctx, const dm_search_hit_t *h)
{
    (void)h;
    (*(size_t *)ctx)++;
    return 0;
}

static int s_publish_all(dm_catalog_t *cat, unsigned n)
{
    dm_buf_t yaml = DM_BUF_INIT, json = DM_BUF_INIT;
    char key[DM_CATALOG_KEY_MAX];
    for (unsigned i = 0; i < n; i++) {
        s_contract(i, &yaml);
        dm_contract_t **cs = NULL;
        size_t nc = 0;
        dm_diags_t diags = DM_DIAGS_INIT;
        if (dm_contract_parse("bench", yaml.data, yaml.len, NULL, &cs, &nc, &diags) != DM_OK) {
            fprintf(stderr, "bench_lineage: contract %u: %s\n", i,
                    diags.count ? diags.items[0].message : "?");
            return 1;
        }
        dm_buf_reset(&json);
        dm_contract_canonical(cs[0], &json);
        dm_contract_list_destroy(&cs, nc);
        dm_diags_clear(&diags);
        snprintf(key, sizeof key, "product/bench/p%u", i);
        if (dm_catalog_publish(cat, key, json.data, json.len, false, BENCH_NOW_MS, NULL) != DM_OK)
            return 1;
    }
    dm_buf_free(&yaml);
    dm_buf_free(&json);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : BENCH_DEFAULT_PRODUCTS;
    dm_identity_t *id = NULL;
    dm_catalog_t *cat = NULL;
    char addr[DM_ADDRESS_MAX];
    if (n < 2 || dm_identity_new_ephemeral(&id) != DM_OK ||
        dm_catalog_open(NULL, id, &cat, NULL) != DM_OK ||
        dm_identity_address_format(dm_identity_public(id), "tcp://127.0.0.1:9", addr, sizeof addr,
                                   NULL) != DM_OK ||
        dm_catalog_publish_node(cat, "bench", addr, BENCH_NOW_MS, NULL) != DM_OK ||
        s_publish_all(cat, n) != 0) {
        fprintf(stderr, "bench_lineage: setup failed (products: 2 or more)\n");
        return 1;
    }
    dm_lineage_t *g = NULL;
    dm_search_t *s = NULL;
    int64_t t0 = dm_clock_mono_ns();
    if (dm_lineage_build(cat, &g, NULL) != DM_OK)
        return 1;
    int64_t t1 = dm_clock_mono_ns();
    if (dm_search_build(cat, &s, NULL) != DM_OK)
        return 1;
    int64_t t2 = dm_clock_mono_ns();
    size_t reached = 0, hits = 0;
    bool cut = false;
    if (dm_lineage_walk(g, "bench", "p1", DM_LINEAGE_UP | DM_LINEAGE_DOWN, DM_LINEAGE_DEPTH_MAX,
                        s_count_node, NULL, &reached, &cut) != DM_OK)
        return 1;
    int64_t t3 = dm_clock_mono_ns();
    char last[32];
    snprintf(last, sizeof last, "p%u", n - 1);
    dm_buf_t cause = DM_BUF_INIT;
    bool degraded = dm_lineage_degraded(g, "bench", last, s_root_fails, NULL, &cause);
    int64_t t4 = dm_clock_mono_ns();
    if (dm_search_run(s, "stock shop7 f_3", s_count_hit, &hits, NULL) != DM_OK)
        return 1;
    int64_t t5 = dm_clock_mono_ns();
    printf("products %u (%u fields each)\n", n, BENCH_FIELDS + 1);
    printf("lineage build        %8.2f ms\n", (double)(t1 - t0) / 1e6);
    printf("search index build   %8.2f ms\n", (double)(t2 - t1) / 1e6);
    printf("walk from p1, both   %8.2f ms (%zu nodes%s)\n", (double)(t3 - t2) / 1e6, reached,
           cut ? ", truncated" : "");
    printf("degraded of %-8s %8.2f ms (%s)\n", last, (double)(t4 - t3) / 1e6,
           degraded ? cause.data : "not degraded");
    printf("search, 3 words      %8.2f ms (%zu hits)\n", (double)(t5 - t4) / 1e6, hits);
    dm_buf_free(&cause);
    dm_search_destroy(&s);
    dm_lineage_destroy(&g);
    dm_catalog_destroy(&cat);
    dm_identity_destroy(&id);
    return 0;
}
