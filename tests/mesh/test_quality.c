/* test_quality.c: a product's dataset checks on a real meshd through the
 * real dmctl: unique on a product without a primary key, row_count_delta
 * across two ingest runs, freshness going stale as time passes, and
 * dmctl quality's exit codes and formats. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define T_CMD_MS 30000
#define T_MAX_AGE_S 2 /* freshness's max_age in the stale test */

static dm_h_node_t s_node;
static char s_dir[600], s_yaml[600];

static void s_up(void)
{
    const char *tmp = dm_h_tmpdir();
    cr_assert_not_null(tmp);
    snprintf(s_dir, sizeof s_dir, "%s/logistics", tmp);
    snprintf(s_yaml, sizeof s_yaml, "%s/product.yaml", tmp);
    cr_assert(dm_h_node_start(&s_node, s_dir, "logistics", NULL), "meshd did not start");
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(quality, .init = s_up, .fini = s_down, .timeout = 120);

static dm_h_result_t s_dmctl(const char *const *args, const char *in)
{
    return dm_h_run("dmctl", args, in, T_CMD_MS);
}

/* Registers a product called name (no primary key) with checks. */
static void s_register(const char *name, const char *checks)
{
    char text[4096];
    snprintf(text, sizeof text,
             "apiVersion: datamesh.io/v1\nkind: DataProduct\n"
             "metadata:\n  name: %s\n  domain: logistics\n  version: 1.0.0\n"
             "  owner: {team: logistics, contact: logistics@company.com}\n"
             "spec:\n  schema:\n    fields:\n"
             "      - {name: sku, type: string}\n"
             "      - {name: qty, type: int}\n"
             "      - {name: ts, type: timestamp}\n"
             "  quality:\n    checks:\n%s",
             name, checks);
    dm_h_write(s_yaml, text);
    const char *args[] = {"--data", s_dir, "register", s_yaml, NULL};
    dm_h_result_t r = s_dmctl(args, NULL);
    cr_assert_eq(r.status, 0, "register: %s", r.err);
    dm_h_result_free(&r);
}

static void s_ingest(const char *product, const char *ndjson)
{
    const char *args[] = {"--data", s_dir, "ingest", product, "-", NULL};
    dm_h_result_t r = s_dmctl(args, ndjson);
    cr_assert_eq(r.status, 0, "ingest: %s %s", r.out, r.err);
    dm_h_result_free(&r);
}

static dm_h_result_t s_quality(const char *product, const char *fmt)
{
    const char *args[] = {"--data", s_dir, "quality", product, "--run", fmt, NULL};
    return s_dmctl(args, NULL);
}

static const char *s_rows(int n, const char *const *skus)
{
    static char buf[8192];
    size_t off = 0;
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(buf + off, sizeof buf - off,
                                "{\"sku\":\"%s\",\"qty\":%d,\"ts\":\"2026-01-01T00:00:00Z\"}\n",
                                skus ? skus[i] : "x", i);
    return buf;
}

Test(quality, duplicate_keys_fail_unique_with_groups_and_extra_rows)
{
    s_register("inventory", "      - {rule: unique, column: sku}\n");
    const char *skus[] = {"s1", "s2", "s3", "s3", "s3"};
    s_ingest("logistics/inventory", s_rows(5, skus));
    dm_h_result_t r = s_quality("logistics/inventory", "--json");
    cr_assert_eq(r.status, 2, "exit %d: %s %s", r.status, r.out, r.err);
    cr_assert(strstr(r.out, "\"outcome\":\"fail\""), "%s", r.out);
    cr_assert(strstr(r.out, "1 duplicate group, 2 extra rows"), "%s", r.out);
    cr_assert(strstr(r.out, "\"samples\":[\"s3\"]"), "%s", r.out);
    dm_h_result_free(&r);
    r = s_quality("logistics/inventory", "--junit");
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.out, "<failure message=") && strstr(r.out, "failures=\"1\""), "%s",
              r.out);
    dm_h_result_free(&r);
}

Test(quality, unique_passes_without_duplicates)
{
    s_register("inventory", "      - {rule: unique, column: sku}\n");
    const char *skus[] = {"s1", "s2", "s3"};
    s_ingest("logistics/inventory", s_rows(3, skus));
    dm_h_result_t r = s_quality("logistics/inventory", "--json");
    cr_assert_eq(r.status, 0, "exit %d: %s %s", r.status, r.out, r.err);
    cr_assert(strstr(r.out, "0 duplicate groups, 0 extra rows"), "%s", r.out);
    dm_h_result_free(&r);
}

Test(quality, second_ingest_trips_row_count_delta)
{
    s_register("stock", "      - {rule: row_count_delta, threshold: 20%}\n");
    s_ingest("logistics/stock", s_rows(10, NULL));
    dm_h_result_t r = s_quality("logistics/stock", "--json");
    cr_assert_eq(r.status, 0, "no history is skipped, not failed: %s", r.out);
    cr_assert(strstr(r.out, "\"outcome\":\"skipped\"") && strstr(r.out, "no history"), "%s",
              r.out);
    dm_h_result_free(&r);
    s_ingest("logistics/stock", s_rows(5, NULL)); /* half the first run: 10 -> 15 rows */
    r = s_quality("logistics/stock", "--json");
    cr_assert_eq(r.status, 2, "exit %d: %s", r.status, r.out);
    cr_assert(strstr(r.out, "+50%"), "%s", r.out);
    dm_h_result_free(&r);
}

Test(quality, freshness_goes_stale_as_time_passes)
{
    s_register("events", "      - {rule: freshness, column: ts, max_age: 2s}\n");
    char line[256], ts[64];
    time_t now = time(NULL);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    snprintf(line, sizeof line, "{\"sku\":\"e\",\"qty\":1,\"ts\":\"%s\"}\n", ts);
    long long t0 = dm_h_now_ms();
    s_ingest("logistics/events", line);
    dm_h_result_t r = s_quality("logistics/events", "--json");
    cr_assert_eq(r.status, 0, "fresh right after the ingest: %s", r.out);
    dm_h_result_free(&r);
    int status = 0;
    while (status != 2 && dm_h_now_ms() - t0 < DM_H_WAIT_MS) {
        r = s_quality("logistics/events", "--json");
        status = r.status;
        if (status == 2)
            cr_assert(strstr(r.out, "stale"), "%s", r.out);
        dm_h_result_free(&r);
        struct timespec pause = {0, 200 * 1000 * 1000}; /* between polls of a condition */
        if (status != 2)
            nanosleep(&pause, NULL);
    }
    cr_assert_eq(status, 2, "freshness never failed");
    cr_assert_geq(dm_h_now_ms() - t0, (T_MAX_AGE_S - 1) * 1000);
}

Test(quality, text_output_and_usage_errors)
{
    s_register("inventory", "      - {rule: unique, column: sku}\n");
    const char *skus[] = {"a", "b"};
    s_ingest("logistics/inventory", s_rows(2, skus));
    const char *args[] = {"--data", s_dir, "quality", "logistics/inventory", NULL};
    dm_h_result_t r = s_dmctl(args, NULL);
    cr_assert_eq(r.status, 0, "%s %s", r.out, r.err);
    cr_assert(strstr(r.out, "logistics/inventory: pass"), "%s", r.out);
    dm_h_result_free(&r);
    const char *unknown[] = {"--data", s_dir, "quality", "logistics/nope", NULL};
    r = s_dmctl(unknown, NULL);
    cr_assert_eq(r.status, 4, "no report is 4: %s", r.err);
    dm_h_result_free(&r);
}
