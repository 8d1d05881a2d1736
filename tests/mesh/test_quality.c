/* test_quality.c: a product's dataset checks on a real meshd through the
 * real dmctl: unique on a product without a primary key, row_count_delta
 * across two ingest runs, freshness going stale as time passes (judged
 * when asked, without --run), a future event time, unique's counts across
 * a kill -9 (rebuilt from the rows), and dmctl quality's
 * exit codes, help, formats and escaping. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "harness_access.h"

#define T_CMD_MS 30000
#define T_MAX_AGE "3s" /* freshness's max_age in the stale test */
#define T_MAX_AGE_MS 3000

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

/* The writer keeps unique's counts in memory only: after a kill -9 the
 * next batch counts the stored rows again, exactly (upserts included). */
Test(quality, unique_counts_stay_exact_across_a_kill_9)
{
    char text[4096];
    snprintf(text, sizeof text,
             "apiVersion: datamesh.io/v1\nkind: DataProduct\n"
             "metadata:\n  name: bins\n  domain: logistics\n  version: 1.0.0\n"
             "  owner: {team: logistics, contact: logistics@company.com}\n"
             "spec:\n  schema:\n    primaryKey: id\n    fields:\n"
             "      - {name: id, type: int}\n      - {name: sku, type: string}\n"
             "  quality:\n    checks:\n      - {rule: unique, column: sku}\n");
    dm_h_write(s_yaml, text);
    const char *reg[] = {"--data", s_dir, "register", s_yaml, NULL};
    dm_h_result_t r = s_dmctl(reg, NULL);
    cr_assert_eq(r.status, 0, "register: %s", r.err);
    dm_h_result_free(&r);
    s_ingest("logistics/bins", "{\"id\":1,\"sku\":\"a\"}\n{\"id\":2,\"sku\":\"a\"}\n"
                               "{\"id\":3,\"sku\":\"b\"}\n");
    dm_h_node_signal(&s_node, SIGKILL);
    cr_assert(dm_h_node_start(&s_node, s_dir, "logistics", NULL), "meshd did not restart");
    /* a: 2 -> 1 (id 2 moves to b), b: 1 -> 3, c new */
    s_ingest("logistics/bins", "{\"id\":2,\"sku\":\"b\"}\n{\"id\":4,\"sku\":\"b\"}\n"
                               "{\"id\":5,\"sku\":\"c\"}\n");
    r = s_quality("logistics/bins", "--json");
    cr_assert_eq(r.status, 2, "exit %d: %s %s", r.status, r.out, r.err);
    cr_assert(strstr(r.out, "1 duplicate group, 2 extra rows"), "%s", r.out);
    cr_assert(strstr(r.out, "\"samples\":[\"b\"]"), "%s", r.out);
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

/* Whether meshq describe's JSON (kept in *ctx, a dm_h_result_t) holds the
 * owner's entry with the +inf% change. */
static bool s_described_inf(void *ctx)
{
    dm_h_result_t *r = ctx;
    const char *args[] = {"--data", s_dir, "describe", "logistics/stock", "--json", NULL};
    dm_h_result_free(r);
    *r = dm_h_run("meshq", args, NULL, T_CMD_MS);
    return r->status == 0 && strstr(r->out, "+inf%");
}

/* A change against a zero baseline is +inf%: JSON has no inf, so observed
 * is null and observed_text says it. */
Test(quality, json_observed_is_null_when_not_finite)
{
    s_register("stock", "      - {rule: row_count_delta, threshold: 20%}\n");
    const char *args[] = {"--data", s_dir, "ingest", "logistics/stock", "-", NULL};
    dm_h_result_t r = s_dmctl(args, "{\"sku\":\"x\",\"qty\":\"many\"}\n");
    cr_assert_eq(r.status, 1, "a run of quarantined rows only: %s %s", r.out, r.err);
    dm_h_result_free(&r);
    s_ingest("logistics/stock", s_rows(5, NULL)); /* 0 -> 5 rows */
    r = s_quality("logistics/stock", "--json");
    cr_assert_eq(r.status, 2, "exit %d: %s %s", r.status, r.out, r.err);
    cr_assert(strstr(r.out, "\"observed\":null,\"observed_text\":\"+5 rows, +inf%"), "%s",
              r.out);
    dm_h_result_free(&r);
    /* meshq describe's health too: the owner's catalog entry, published on
     * its tick (an earlier entry, from before the ingest, may come first) */
    memset(&r, 0, sizeof r);
    cr_assert(dm_h_wait_until(s_described_inf, &r, T_CMD_MS), "no health in describe: %s %s",
              r.out, r.err);
    cr_assert(strstr(r.out, "\"observed_text\":\"+5 rows, +inf%"), "%s", r.out);
    cr_assert(strstr(r.out, "\"observed\":null}"), "%s", r.out);
    cr_assert_null(strstr(r.out, "inf}"), "%s", r.out);
    dm_h_result_free(&r);
}

/* This machine's wall clock in ms, the clock freshness is judged by. */
static long long s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs dmctl quality on product without --run, plus one option (or NULL). */
static dm_h_result_t s_read(const char *product, const char *opt)
{
    const char *args[] = {"--data", s_dir, "quality", product, opt, NULL};
    return s_dmctl(args, NULL);
}

/* The stored report is judged at the ingest, fresh; a plain `dmctl
 * quality` (no --run) must judge freshness when it is asked, so the
 * product turns stale by itself once max_age has passed. */
Test(quality, freshness_goes_stale_without_run)
{
    s_register("events", "      - {rule: freshness, column: ts, max_age: " T_MAX_AGE "}\n");
    char line[256], ts[64];
    time_t now = time(NULL);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    snprintf(line, sizeof line, "{\"sku\":\"e\",\"qty\":1,\"ts\":\"%s\"}\n", ts);
    long long event_ms = (long long)now * 1000, t0 = dm_h_now_ms();
    s_ingest("logistics/events", line);
    int status = 0;
    dm_h_result_t r = {0};
    while (dm_h_now_ms() - t0 < DM_H_WAIT_MS) { /* a condition with a deadline */
        dm_h_result_free(&r);
        r = s_read("logistics/events", "--json");
        if ((status = r.status) == 2)
            break;
        cr_assert_eq(status, 0, "fresh until max_age: %s %s", r.out, r.err);
        struct timespec pause = {0, 200 * 1000 * 1000}; /* between polls of a condition */
        nanosleep(&pause, NULL);
    }
    cr_assert_eq(status, 2, "freshness never failed without --run: %s", r.out);
    cr_assert(strstr(r.out, "stale: the newest event time is"), "%s", r.out);
    cr_assert_gt(s_wall_ms() - event_ms, T_MAX_AGE_MS, "stale only once max_age has passed");
    dm_h_result_free(&r);
}

/* An event time years ahead must not keep the product fresh: it is left
 * out of freshness and the check warns, in JSON and in JUnit. */
Test(quality, a_future_event_time_warns_and_junit_says_so)
{
    s_register("events", "      - {rule: freshness, column: ts, max_age: 1h}\n");
    char lines[512], ts[64];
    time_t now = time(NULL);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    snprintf(lines, sizeof lines,
             "{\"sku\":\"e\",\"qty\":1,\"ts\":\"%s\"}\n"
             "{\"sku\":\"f\",\"qty\":2,\"ts\":\"2099-01-01T00:00:00Z\"}\n",
             ts);
    s_ingest("logistics/events", lines);
    dm_h_result_t r = s_read("logistics/events", "--json");
    cr_assert_eq(r.status, 1, "a warning: %s %s", r.out, r.err);
    cr_assert(strstr(r.out, "1 row has event times ahead of the clock by up to"), "%s", r.out);
    cr_assert(strstr(r.out, "ignored for freshness"), "%s", r.out);
    dm_h_result_free(&r);
    r = s_read("logistics/events", "--junit");
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert(strstr(r.out, "<property name=\"dm.warning\" value=\"1 row has event times"),
              "%s", r.out);
    cr_assert(strstr(r.out, "tests=\"1\" failures=\"0\" errors=\"0\""), "%s", r.out);
    dm_h_result_free(&r);
}

/* Producer data reaches the terminal escaped: an ESC in a sample. */
Test(quality, text_output_escapes_control_bytes)
{
    s_register("inventory", "      - {rule: unique, column: sku}\n");
    const char *skus[] = {"\\u001b[31mred", "\\u001b[31mred"};
    s_ingest("logistics/inventory", s_rows(2, skus));
    dm_h_result_t r = s_read("logistics/inventory", NULL);
    cr_assert_eq(r.status, 2, "%s %s", r.out, r.err);
    cr_assert(strstr(r.out, "sample: \\x1b[31mred"), "%s", r.out);
    cr_assert_null(strchr(r.out, 0x1b), "a raw ESC reached the terminal");
    dm_h_result_free(&r);
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
    /* usage errors are 4 too, never 2 (a failed check) */
    const char *bogus[] = {"--data", s_dir, "quality", "logistics/inventory", "--bogus", NULL};
    r = s_dmctl(bogus, NULL);
    cr_assert_eq(r.status, 4, "an unknown option is 4: %s", r.err);
    cr_assert(strstr(r.err, "--bogus") && strstr(r.err, "dmctl quality --help"), "%s", r.err);
    dm_h_result_free(&r);
    const char *novalue[] = {"--data", s_dir, "quality", "logistics/inventory", "--history",
                             NULL};
    r = s_dmctl(novalue, NULL);
    cr_assert_eq(r.status, 4, "--history without a value is 4: %s", r.err);
    dm_h_result_free(&r);
    const char *junk[] = {"--data", s_dir, "quality", "logistics/inventory", "--config", "x",
                          NULL};
    r = s_dmctl(junk, NULL);
    cr_assert_eq(r.status, 4, "another command's option is 4: %s", r.err);
    dm_h_result_free(&r);
    const char *junit_history[] = {"--data", s_dir,     "quality", "logistics/inventory",
                                   "--junit", "--history", "3",      NULL};
    r = s_dmctl(junit_history, NULL);
    cr_assert_eq(r.status, 4, "--junit with --history is refused, not ignored: %s", r.out);
    cr_assert(strstr(r.err, "--history"), "%s", r.err);
    dm_h_result_free(&r);
    const char *help[] = {"quality", "--help", NULL};
    r = s_dmctl(help, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "usage: dmctl quality DOMAIN/PRODUCT") &&
                  strstr(r.out, "--history N") && strstr(r.out, "4 no report"),
              "quality's own help: %s", r.out);
    cr_assert_null(strstr(r.out, "policy publish"), "not dmctl's whole usage: %s", r.out);
    dm_h_result_free(&r);
}
