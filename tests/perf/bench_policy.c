/* bench_policy.c: timing harness for dm_policy_decide (issue 9's target:
 * p99 under 50 us with 1,000 rules over 100 products).
 *
 * Not a test (tests never assert timing): CMake builds it with -DDM_PERF=ON
 * and nothing runs it. Builds one governance set of 20 groups of 100 keys
 * and a policy of 1,000 rules (access rules with literal products, globs,
 * tags and field classifications, masks and row filters), over 100
 * products in 10 domains, then times N decisions of random callers (group
 * members, listed keys, strangers) on random products and prints p50, p99
 * and the worst in microseconds.
 * Build and run (from the repo root):
 *   cmake -S . -B build -DDM_PERF=ON && cmake --build build --target bench_policy
 *   build/perf/bench_policy [decisions]   (default 100000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "policy/policy.h"

#define BENCH_DEFAULT_DECISIONS 100000
#define BENCH_DOMAINS 10
#define BENCH_PRODUCTS_PER_DOMAIN 10
#define BENCH_GROUPS 20
#define BENCH_GROUP_KEYS 100
#define BENCH_RULES 1000
#define BENCH_FIELDS 8

static void s_key(uint32_t n, uint8_t key[DM_POLICY_KEY_BYTES])
{
    memset(key, 0x5a, DM_POLICY_KEY_BYTES);
    memcpy(key, &n, sizeof n);
}

static void s_hex(uint32_t n, char out[2 * DM_POLICY_KEY_BYTES + 1])
{
    uint8_t key[DM_POLICY_KEY_BYTES];
    s_key(n, key);
    for (int i = 0; i < DM_POLICY_KEY_BYTES; i++)
        sprintf(out + 2 * i, "%02x", key[i]);
}

static dm_policy_doc_t *s_parse(const dm_buf_t *text)
{
    dm_policy_doc_t *d = NULL;
    dm_diags_t diags = DM_DIAGS_INIT;
    if (dm_policy_doc_parse("bench", text->data, text->len, &d, &diags) != DM_OK) {
        dm_buf_t out = DM_BUF_INIT;
        dm_diags_format(&diags, &out);
        fprintf(stderr, "bench document refused:\n%s", out.data);
        exit(1);
    }
    dm_diags_clear(&diags);
    return d;
}

static void s_add(dm_policy_set_t *s, const dm_buf_t *text)
{
    dm_policy_doc_t *d = s_parse(text);
    dm_buf_t why = DM_BUF_INIT;
    if (dm_policy_set_add(s, &d, &why) != DM_OK) {
        fprintf(stderr, "bench document not added: %s\n", why.data);
        exit(1);
    }
}

/* One access rule, mask or filter of the mix, as a YAML list item. */
static void s_rule(dm_buf_t *b, int i)
{
    int d = i % BENCH_DOMAINS, p = (i / BENCH_DOMAINS) % BENCH_PRODUCTS_PER_DOMAIN;
    char hex[2 * DM_POLICY_KEY_BYTES + 1];
    s_hex(900000u + (uint32_t)i, hex);
    switch (i % 5) {
    case 0: /* literal product, a group */
        dm_buf_printf(b, "    - {name: r%d, effect: allow, products: [d%d/p%d], consumers: [\"group:g%d\"]}\n",
                      i, d, p, i % BENCH_GROUPS);
        break;
    case 1: /* glob over a domain, a key */
        dm_buf_printf(b, "    - {name: r%d, effect: deny, products: [\"d%d/*\"], consumers: [%s]}\n", i,
                      d, hex);
        break;
    case 2: /* tags, everywhere */
        dm_buf_printf(b, "    - {name: r%d, effect: allow, tags: [t%d], consumers: [\"group:g%d\"]}\n", i,
                      i % 7, (i + 3) % BENCH_GROUPS);
        break;
    case 3: /* a field classification over a glob of names */
        dm_buf_printf(b, "    - {name: r%d, effect: deny, actions: [read, write], products: [\"*/p%d\"], "
                         "fields: {classification: c%d}, consumers: [\"group:g%d\", %s]}\n",
                      i, p, i % 4, (i + 7) % BENCH_GROUPS, hex);
        break;
    default: /* literal product, describe */
        dm_buf_printf(b, "    - {name: r%d, effect: allow, actions: [describe], products: [d%d/p%d]}\n", i,
                      d, p);
    }
}

static dm_policy_set_t *s_set(void)
{
    dm_policy_set_t *s = NULL;
    if (dm_policy_set_new(1, &s) != DM_OK)
        exit(1);
    dm_buf_t b = DM_BUF_INIT;
    char hex[2 * DM_POLICY_KEY_BYTES + 1];
    for (int g = 0; g < BENCH_GROUPS; g++) {
        dm_buf_reset(&b);
        dm_buf_printf(&b, "apiVersion: datamesh.io/v1\nkind: Group\nmetadata: {name: g%d}\nspec:\n  members:\n", g);
        for (int k = 0; k < BENCH_GROUP_KEYS; k++) {
            s_hex((uint32_t)(g * BENCH_GROUP_KEYS + k), hex);
            dm_buf_printf(&b, "    - %s\n", hex);
        }
        s_add(s, &b);
    }
    int nmasks = BENCH_RULES / 20, nfilters = BENCH_RULES / 20, naccess = BENCH_RULES - nmasks - nfilters;
    dm_buf_reset(&b);
    dm_buf_puts(&b, "apiVersion: datamesh.io/v1\nkind: Policy\nmetadata: {name: bench}\nspec:\n  access:\n");
    for (int i = 0; i < naccess; i++)
        s_rule(&b, i);
    dm_buf_puts(&b, "  masks:\n");
    for (int i = 0; i < nmasks; i++) /* one mask per field name: no ties */
        dm_buf_printf(&b, "    - {name: m%d, products: [d%d/p%d], fields: {names: [f%d]}, mask: hash, "
                          "except: [\"group:g%d\"]}\n",
                      i, i % BENCH_DOMAINS, i % BENCH_PRODUCTS_PER_DOMAIN, i % BENCH_FIELDS, i % BENCH_GROUPS);
    dm_buf_puts(&b, "  rowFilters:\n");
    for (int i = 0; i < nfilters; i++)
        dm_buf_printf(&b, "    - {name: f%d, products: [\"d%d/*\"], consumers: [\"group:g%d\"], "
                          "predicate: \"f1 > %d\", mode: %s}\n",
                      i, i % BENCH_DOMAINS, i % BENCH_GROUPS, i, i % 3 ? "permissive" : "restrictive");
    s_add(s, &b);
    dm_buf_free(&b);
    if (dm_policy_set_seal(s) != DM_OK)
        exit(1);
    return s;
}

static int s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : BENCH_DEFAULT_DECISIONS;
    if (n <= 0)
        return fputs("usage: bench_policy [decisions]\n", stderr), 2;
    dm_policy_set_t *s = s_set();
    static char names[BENCH_DOMAINS * BENCH_PRODUCTS_PER_DOMAIN][2][16];
    static const char *tags[7][1] = {{"t0"}, {"t1"}, {"t2"}, {"t3"}, {"t4"}, {"t5"}, {"t6"}};
    static const char *fields[BENCH_FIELDS] = {"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"};
    static const char *cls[BENCH_FIELDS] = {"c0", NULL, "c1", NULL, "c2", NULL, "c3", NULL};
    static const char *readers[] = {"group:g1", "group:g2"};
    dm_policy_product_t prods[BENCH_DOMAINS * BENCH_PRODUCTS_PER_DOMAIN];
    for (int i = 0; i < BENCH_DOMAINS * BENCH_PRODUCTS_PER_DOMAIN; i++) {
        snprintf(names[i][0], 16, "d%d", i / BENCH_PRODUCTS_PER_DOMAIN);
        snprintf(names[i][1], 16, "p%d", i % BENCH_PRODUCTS_PER_DOMAIN);
        prods[i] = (dm_policy_product_t){names[i][0], names[i][1], tags[i % 7], 1,
                                         (dm_access)(i % 3), readers, 2, fields, cls, BENCH_FIELDS};
    }
    uint8_t admin[1][DM_POLICY_KEY_BYTES];
    s_key(999999u, admin[0]);
    dm_policy_owner_t owner = {"d0", (const uint8_t(*)[DM_POLICY_KEY_BYTES])admin, 1};
    int64_t *lat = malloc((size_t)n * sizeof *lat);
    if (!lat)
        return 1;
    srand(42);
    long allowed = 0;
    for (long i = 0; i < n; i++) {
        uint8_t key[DM_POLICY_KEY_BYTES];
        int who = rand() % 3;
        s_key(who == 0 ? (uint32_t)(rand() % (BENCH_GROUPS * BENCH_GROUP_KEYS))
              : who == 1 ? 900000u + (uint32_t)(rand() % BENCH_RULES)
                         : 500000u + (uint32_t)rand() % 1000,
              key);
        dm_policy_request_t req = {key, rand() % 10 ? DM_POLICY_READ : DM_POLICY_DESCRIBE,
                                   &prods[rand() % (BENCH_DOMAINS * BENCH_PRODUCTS_PER_DOMAIN)]};
        dm_policy_decision_t d;
        int64_t t0 = dm_clock_mono_ns();
        dm_err rc = dm_policy_decide(s, &owner, &req, &d);
        lat[i] = dm_clock_mono_ns() - t0;
        if (rc != DM_OK)
            return fputs("decide failed\n", stderr), 1;
        allowed += d.allow;
        dm_policy_decision_clear(&d);
    }
    qsort(lat, (size_t)n, sizeof *lat, s_cmp);
    printf("%ld decisions, %d rules over %d products, %d groups of %d keys: %ld allowed; "
           "p50 %.2f us, p99 %.2f us, max %.2f us\n",
           n, BENCH_RULES, BENCH_DOMAINS * BENCH_PRODUCTS_PER_DOMAIN, BENCH_GROUPS, BENCH_GROUP_KEYS,
           allowed, (double)lat[n / 2] / 1e3, (double)lat[n * 99 / 100] / 1e3, (double)lat[n - 1] / 1e3);
    free(lat);
    dm_policy_set_unref(&s);
    return 0;
}
