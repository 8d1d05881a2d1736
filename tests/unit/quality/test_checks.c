/* test_quality.c: the dataset checks' arithmetic and edges on a real LMDB
 * store: batches commit through the quality hook exactly as the writer
 * commits them, and reports are judged from the kept state. */
#include <math.h>
#include <stdlib.h>

#include "quality_test.h"

#define T_DAY (24LL * 3600 * 1000)

static dm_contract_t **s_old[4]; /* contracts replaced by s_reparse, freed at teardown */
static size_t s_nold[4], s_olds;

static void s_setup(void)
{
    q_open("test_quality");
}

static void s_teardown(void)
{
    for (size_t i = 0; i < s_olds; i++)
        dm_contract_list_destroy(&s_old[i], s_nold[i]);
    s_olds = 0;
    q_close();
}

TestSuite(quality, .init = s_setup, .fini = s_teardown);

/* Parses a contract with fields (YAML lines) and checks, and registers it. */
static void s_product(const char *pk, const char *fields, const char *extra, const char *checks)
{
    char text[4096];
    snprintf(text, sizeof text,
             "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: p\n"
             "  domain: d\n  version: 1.0.0\n  owner: {team: t, contact: t@c.com}\n"
             "spec:\n  schema:\n%s    fields:\n%s%s  quality:\n    checks:\n%s",
             pk ? pk : "", fields, extra ? extra : "", checks);
    q_product(text);
}

/* Replaces the product's contract (an upgrade) by one with checks. */
static void s_reparse(const char *checks)
{
    cr_assert_lt(s_olds, 4);
    s_old[s_olds] = s_list;
    s_nold[s_olds++] = s_n;
    s_list = NULL;
    dm_schema_destroy(&s_schema);
    char text[4096];
    snprintf(text, sizeof text,
             "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: p\n"
             "  domain: d\n  version: 1.0.1\n  owner: {team: t, contact: t@c.com}\n"
             "spec:\n  schema:\n    fields:\n      - {name: id, type: int}\n"
             "      - {name: v, type: int}\n      - {name: ts, type: timestamp}\n"
             "  quality:\n    checks:\n%s", checks);
    q_parse(text);
}

#define T_FIELDS "      - {name: id, type: int}\n      - {name: v, type: int}\n" \
                 "      - {name: ts, type: timestamp}\n"

/* Commits NDJSON lines (one batch) through the hook at time now;
 * end_run: the batch ends an ingest run. hooked false: without the hook
 * (rows written before the checks existed). */
static void s_batch_opts(const char *ndjson, int64_t now, bool end_run, bool hooked)
{
    dm_buf_t rows = DM_BUF_INIT, keys = DM_BUF_INIT, row = DM_BUF_INIT, key = DM_BUF_INIT,
             why = DM_BUF_INIT;
    size_t n = 0, offs[64][2], lens[64][2];
    for (const char *p = ndjson; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        cr_assert(dm_schema_validate(s_schema, p, len, &row, &key, &why), "%.*s: %s", (int)len,
                  p, why.data);
        offs[n][0] = rows.len;
        lens[n][0] = row.len;
        dm_buf_append(&rows, row.data, row.len);
        offs[n][1] = keys.len;
        lens[n][1] = key.len;
        dm_buf_append(&keys, key.data, key.len);
        n++;
        p = nl ? nl + 1 : p + len;
    }
    dm_row_in_t in[64];
    for (size_t i = 0; i < n; i++)
        in[i] = (dm_row_in_t){keys.data + offs[i][1], lens[i][1], rows.data + offs[i][0],
                              lens[i][0]};
    dm_quality_batch_t *qb = NULL;
    dm_store_hook_t hook;
    cr_assert_eq(dm_quality_batch_new(s_store, s_pid, s_schema, now, &qb, &hook, &why), DM_OK, "%s",
                 why.data);
    if (end_run)
        dm_quality_batch_end_run(qb);
    dm_batch_result_t res;
    cr_assert_eq(dm_store_commit_batch_hooked(s_store, s_pid, in, n, NULL, 0, "t",
                                              hooked ? &hook : NULL, &res, &why),
                 DM_OK, "%s", why.data);
    if (end_run && hooked)
        cr_assert_not_null(dm_quality_batch_report(qb));
    dm_quality_batch_destroy(&qb);
    cr_assert_null(qb);
    dm_buf_free(&rows);
    dm_buf_free(&keys);
    dm_buf_free(&row);
    dm_buf_free(&key);
    dm_buf_free(&why);
}

static void s_batch(const char *ndjson, int64_t now) { s_batch_opts(ndjson, now, true, true); }

/* Judges now into r; returns result i. */
static const dm_qresult_t *s_judge(dm_qreport_t *r, size_t i, int64_t now)
{
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_quality_run(s_store, s_pid, s_c, now, false, r, &why), DM_OK, "%s",
                 why.data);
    dm_buf_free(&why);
    cr_assert_gt(r->n, i);
    return &r->results[i];
}

static void s_ints(const char *values, int64_t now)
{
    char buf[4096];
    size_t off = 0;
    int id = 0;
    for (const char *p = values; *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        off += (size_t)snprintf(buf + off, sizeof buf - off, "{\"id\":%d,\"v\":%.*s}\n", id++,
                                (int)l, p);
        p = c ? c + 1 : p + l;
    }
    s_batch(buf, now);
}

Test(quality, unique_vector_gives_one_group_two_extra_rows)
{
    s_product(NULL, T_FIELDS, NULL, "      - {rule: unique, column: v}\n");
    s_ints("1,2,3,3,3", T_NOW);
    dm_qreport_t r = {0};
    const dm_qresult_t *x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_FAIL);
    cr_assert_eq(x->observed, 2.0, "extra rows: %g", x->observed);
    cr_assert(strstr(x->observed_text, "1 duplicate group, 2 extra rows"), "%s",
              x->observed_text);
    cr_assert_eq(x->nsamples, 1);
    cr_assert_str_eq(x->samples[0], "3");
    cr_assert_eq(r.outcome, DM_QOUT_FAIL);
    cr_assert_eq(r.records, 5);
    dm_quality_report_clear(&r);
}

Test(quality, unique_counts_across_batches_and_nulls_are_not_duplicates)
{
    s_product(NULL, T_FIELDS, NULL, "      - {rule: unique, column: v}\n");
    s_ints("null,null,1", T_NOW);
    dm_qreport_t r = {0};
    cr_assert_eq(s_judge(&r, 0, T_NOW)->outcome, DM_QOUT_PASS);
    dm_quality_report_clear(&r);
    s_ints("1,2", T_NOW); /* 1 again: a group across batches */
    const dm_qresult_t *x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_FAIL);
    cr_assert(strstr(x->observed_text, "1 duplicate group, 1 extra row"), "%s",
              x->observed_text);
    dm_quality_report_clear(&r);
}

Test(quality, upserts_move_a_value_in_and_out_of_a_duplicate_group)
{
    s_product("    primaryKey: id\n", T_FIELDS, NULL, "      - {rule: unique, column: v}\n");
    s_batch("{\"id\":1,\"v\":10}\n{\"id\":2,\"v\":20}\n", T_NOW);
    dm_qreport_t r = {0};
    cr_assert_eq(s_judge(&r, 0, T_NOW)->outcome, DM_QOUT_PASS);
    dm_quality_report_clear(&r);
    s_batch("{\"id\":2,\"v\":10}\n", T_NOW); /* id 2 joins 10's group */
    const dm_qresult_t *x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_FAIL);
    cr_assert_eq(x->observed, 1.0);
    cr_assert_str_eq(x->samples[0], "10");
    dm_quality_report_clear(&r);
    s_batch("{\"id\":2,\"v\":30}\n", T_NOW); /* and leaves it */
    x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_PASS, "%s", x->observed_text);
    cr_assert_eq(x->nsamples, 0);
    cr_assert_eq(r.records, 2);
    dm_quality_report_clear(&r);
}

Test(quality, unique_on_the_primary_key_is_trivially_met)
{
    s_product("    primaryKey: id\n", T_FIELDS, NULL, "      - {rule: unique, column: id}\n");
    s_batch("{\"id\":1,\"v\":1}\n{\"id\":1,\"v\":2}\n", T_NOW);
    dm_qreport_t r = {0};
    const dm_qresult_t *x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_PASS);
    cr_assert(strstr(x->observed_text, "primary key"), "%s", x->observed_text);
    dm_quality_report_clear(&r);
}

Test(quality, unique_on_a_column_set)
{
    s_product(NULL, T_FIELDS, NULL, "      - {rule: unique, columns: [id, v]}\n");
    s_batch("{\"id\":1,\"v\":1}\n{\"id\":1,\"v\":2}\n{\"id\":1,\"v\":2}\n", T_NOW);
    dm_qreport_t r = {0};
    const dm_qresult_t *x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_FAIL);
    cr_assert_str_eq(x->name, "unique(id,v)");
    cr_assert_str_eq(x->samples[0], "1,2");
    dm_quality_report_clear(&r);
}

Test(quality, empty_product)
{
    s_product(NULL, T_FIELDS, NULL,
              "      - {rule: unique, column: v}\n"
              "      - {rule: not_null, column: v, mostly: 99%}\n"
              "      - {rule: row_count_delta, threshold: 20%}\n"
              "      - {rule: freshness, column: ts, max_age: 1h}\n");
    dm_qreport_t r = {0};
    s_judge(&r, 0, T_NOW);
    cr_assert_eq(r.records, 0);
    cr_assert_eq(r.results[0].outcome, DM_QOUT_PASS);
    cr_assert_eq(r.results[1].outcome, DM_QOUT_PASS);
    cr_assert_eq(r.results[1].observed, 0.0);
    cr_assert_eq(r.results[2].outcome, DM_QOUT_SKIPPED);
    cr_assert(strstr(r.results[2].reason, "no history"), "%s", r.results[2].reason);
    cr_assert_eq(r.results[3].outcome, DM_QOUT_FAIL);
    cr_assert_eq(r.outcome, DM_QOUT_FAIL);
    dm_quality_report_clear(&r);
}

Test(quality, all_nulls)
{
    s_product(NULL, T_FIELDS, NULL,
              "      - {rule: unique, column: v}\n"
              "      - {rule: not_null, column: v, mostly: 99%}\n"
              "      - {rule: freshness, column: ts, max_age: 1h}\n"
              "      - {rule: range, column: v, min: 0, fail: 1%}\n");
    s_ints("null,null,null,null", T_NOW);
    dm_qreport_t r = {0};
    s_judge(&r, 0, T_NOW);
    cr_assert_eq(r.results[0].outcome, DM_QOUT_PASS, "NULLs are not duplicates");
    cr_assert_eq(r.results[1].outcome, DM_QOUT_FAIL);
    cr_assert_eq(r.results[1].observed, 100.0);
    cr_assert_str_eq(r.results[1].samples[0], "null");
    cr_assert_eq(r.results[2].outcome, DM_QOUT_FAIL);
    cr_assert(strstr(r.results[2].reason, "no row has a value in 'ts'"), "%s",
              r.results[2].reason);
    cr_assert_eq(r.results[3].outcome, DM_QOUT_PASS, "a null is not out of range");
    dm_quality_report_clear(&r);
}

Test(quality, field_rates_against_mostly_warn_and_fail)
{
    s_product(NULL, T_FIELDS, NULL,
              "      - {rule: not_null, column: v, mostly: 90%}\n"
              "      - {rule: range, column: v, max: 5, warn: 5%, fail: 50%}\n");
    s_ints("1,2,3,4,5,6,7,8,9,null", T_NOW); /* 1 null of 10; 4 over 5 of 10 */
    dm_qreport_t r = {0};
    s_judge(&r, 0, T_NOW);
    cr_assert_eq(r.results[0].outcome, DM_QOUT_PASS, "90%% pass is not below 90%%");
    cr_assert_eq(r.results[0].observed, 10.0);
    cr_assert_eq(r.results[1].outcome, DM_QOUT_WARN, "40%% failing: over warn, not fail");
    cr_assert_eq(r.results[1].observed, 40.0);
    cr_assert_eq(r.outcome, DM_QOUT_WARN);
    dm_quality_report_clear(&r);
    s_ints("null,10", T_NOW); /* now 2 nulls of 12, 5 over 5 */
    s_judge(&r, 0, T_NOW);
    cr_assert_eq(r.results[0].outcome, DM_QOUT_FAIL);
    cr_assert_eq(r.results[1].outcome, DM_QOUT_WARN);
    dm_quality_report_clear(&r);
}

Test(quality, two_checks_defined_alike_count_each_row_once)
{
    s_product(NULL, T_FIELDS, NULL,
              "      - {rule: range, column: v, max: 5, fail: 50%, name: first}\n"
              "      - {rule: range, column: v, max: 5, fail: 50%, name: second}\n");
    s_ints("1,2,3,4,5,6,7,8,9,null", T_NOW); /* 4 over 5 of 10 */
    dm_qreport_t r = {0};
    s_judge(&r, 0, T_NOW);
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.results[0].observed, 40.0, "%s", r.results[0].observed_text);
    cr_assert_eq(r.results[1].observed, 40.0, "%s", r.results[1].observed_text);
    cr_assert_eq(r.outcome, DM_QOUT_PASS);
    dm_quality_report_clear(&r);
}

Test(quality, a_field_check_with_thresholds_does_not_quarantine)
{
    s_product(NULL, T_FIELDS, NULL,
              "      - {rule: range, column: v, max: 5, fail: 50%}\n"
              "      - {rule: range, column: id, max: 5}\n");
    dm_buf_t row = DM_BUF_INIT, key = DM_BUF_INIT, why = DM_BUF_INIT;
    const char *over_v = "{\"id\":1,\"v\":9}", *over_id = "{\"id\":9,\"v\":1}";
    cr_assert(dm_schema_validate(s_schema, over_v, strlen(over_v), &row, &key, &why));
    cr_assert_not(dm_schema_validate(s_schema, over_id, strlen(over_id), &row, &key, &why),
                  "without thresholds the rule still gates records");
    dm_buf_free(&row);
    dm_buf_free(&key);
    dm_buf_free(&why);
    s_ints("1", T_NOW);
    dm_qreport_t r = {0};
    const dm_qresult_t *x = s_judge(&r, 1, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_PASS);
    cr_assert(strstr(x->threshold, "record gate"), "%s", x->threshold);
    cr_assert(strstr(x->observed_text, "0% failing at ingest (1 live row passed the gate"), "%s",
              x->observed_text);
    cr_assert_eq(x->observed, 0.0);
    dm_quality_report_clear(&r);
}

Test(quality, row_count_delta_previous_percent_and_rows)
{
    s_product(NULL, T_FIELDS, NULL,
              "      - {rule: row_count_delta, threshold: 20%, warn: 5%}\n"
              "      - {rule: row_count_delta, threshold: 3}\n");
    s_ints("1,1,1,1,1,1,1,1,1,1", T_NOW); /* 10 */
    dm_qreport_t r = {0};
    s_judge(&r, 0, T_NOW);
    cr_assert_eq(r.results[0].outcome, DM_QOUT_SKIPPED);
    dm_quality_report_clear(&r);
    s_ints("1", T_NOW); /* 11: +10% */
    s_judge(&r, 0, T_NOW);
    cr_assert_eq(r.results[0].outcome, DM_QOUT_WARN);
    cr_assert_float_eq(r.results[0].observed, 10.0, 1e-9);
    cr_assert_eq(r.results[1].outcome, DM_QOUT_PASS, "1 row is not over 3");
    dm_quality_report_clear(&r);
    s_ints("1,1,1,1,1", T_NOW); /* 16: +45.45%, +5 rows */
    s_judge(&r, 0, T_NOW);
    cr_assert_eq(r.results[0].outcome, DM_QOUT_FAIL);
    cr_assert_eq(r.results[1].outcome, DM_QOUT_FAIL);
    cr_assert_eq(r.results[1].observed, 5.0);
    dm_quality_report_clear(&r);
}

Test(quality, row_count_delta_average_baseline)
{
    s_product(NULL, T_FIELDS, NULL,
              "      - {rule: row_count_delta, threshold: 20%, baseline: average, over: 2}\n"
              "      - {rule: row_count_delta, threshold: 20%}\n");
    s_ints("1,1,1,1,1,1,1,1,1,1", T_NOW);          /* 10 */
    s_ints("1,1,1,1,1,1,1,1,1,1", T_NOW);          /* 20 */
    s_ints("1", T_NOW);                            /* 21 */
    dm_qreport_t r = {0};
    s_judge(&r, 0, T_NOW);
    cr_assert_eq(r.results[0].outcome, DM_QOUT_FAIL, "21 vs avg(10, 20) = 15: +40%%");
    cr_assert_float_eq(r.results[0].observed, 40.0, 1e-9);
    cr_assert(strstr(r.results[0].reason, "the average of the 2 earlier runs"), "%s",
              r.results[0].reason);
    cr_assert_eq(r.results[1].outcome, DM_QOUT_PASS, "21 vs 20: +5%%");
    dm_quality_report_clear(&r);
}

/* An average over fewer runs than `over` asks says how many it had. */
Test(quality, row_count_delta_average_says_when_it_has_fewer_runs)
{
    s_product(NULL, T_FIELDS, NULL,
              "      - {rule: row_count_delta, threshold: 20%, baseline: average, over: 7}\n");
    s_ints("1,1,1,1,1,1,1,1,1,1", T_NOW); /* 10 */
    s_ints("1,1,1,1,1,1,1,1,1,1", T_NOW); /* 20 */
    s_ints("1,1,1,1,1,1,1,1,1,1", T_NOW); /* 30 vs avg(10, 20) = 15: +100% */
    dm_qreport_t r = {0};
    const dm_qresult_t *x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_FAIL);
    cr_assert(strstr(x->reason, "the average of the 2 earlier runs there are (of 7)"), "%s",
              x->reason);
    dm_quality_report_clear(&r);
}

Test(quality, row_count_delta_same_weekday_baseline)
{
    s_product(NULL, T_FIELDS, NULL,
              "      - {rule: row_count_delta, threshold: 20%, baseline: same_weekday}\n");
    s_ints("1,1,1,1,1,1,1,1,1,1", T_NOW);          /* 10, a week before */
    dm_qreport_t r = {0};
    s_ints("1,1", T_NOW + T_DAY);                  /* 12 */
    s_judge(&r, 0, T_NOW + T_DAY);
    cr_assert_eq(r.results[0].outcome, DM_QOUT_SKIPPED, "nothing near a week before");
    dm_quality_report_clear(&r);
    s_ints("1", T_NOW + 7 * T_DAY + 3600 * 1000);  /* 13 vs 10: +30% */
    s_judge(&r, 0, T_NOW + 7 * T_DAY);
    cr_assert_eq(r.results[0].outcome, DM_QOUT_FAIL, "%s", r.results[0].observed_text);
    cr_assert_float_eq(r.results[0].observed, 30.0, 1e-9);
    dm_quality_report_clear(&r);
}

static void s_ts(const char *ts, int64_t now)
{
    char line[128];
    snprintf(line, sizeof line, "{\"id\":1,\"v\":1,\"ts\":\"%s\"}", ts);
    s_batch(line, now);
}

Test(quality, freshness_fresh_stale_and_clock_skew)
{
    s_product(NULL, T_FIELDS, NULL, "      - {rule: freshness, column: ts, max_age: 1h}\n");
    s_ts("2027-01-15T08:00:00Z", T_NOW); /* T_NOW is 2027-01-15T08:00:00Z */
    dm_qreport_t r = {0};
    const dm_qresult_t *x = s_judge(&r, 0, T_NOW + 30 * 60 * 1000);
    cr_assert_eq(x->outcome, DM_QOUT_PASS, "%s", x->observed_text);
    cr_assert_eq(x->observed, 30.0 * 60 * 1000);
    cr_assert_eq(r.newest_event_ms, T_NOW);
    dm_quality_report_clear(&r);
    x = s_judge(&r, 0, T_NOW + 2 * 3600 * 1000);
    cr_assert_eq(x->outcome, DM_QOUT_FAIL);
    cr_assert(strstr(x->reason, "stale"), "%s", x->reason);
    dm_quality_report_clear(&r);
    x = s_judge(&r, 0, T_NOW - 5 * 60 * 1000); /* this node's clock is behind */
    cr_assert_eq(x->outcome, DM_QOUT_WARN);
    cr_assert_eq(x->observed, 0.0, "age 0, never negative");
    cr_assert(strstr(x->reason, "clock skew"), "%s", x->reason);
    dm_quality_report_clear(&r);
}

Test(quality, a_future_event_time_does_not_mask_freshness)
{
    s_product(NULL, T_FIELDS, NULL, "      - {rule: freshness, column: ts, max_age: 1h}\n");
    /* one row stamped 4 years ahead, one within the skew bound, one on time */
    s_batch("{\"id\":1,\"v\":1,\"ts\":\"2031-01-15T08:00:00Z\"}\n"
            "{\"id\":2,\"v\":1,\"ts\":\"2027-01-15T07:30:00Z\"}\n"
            "{\"id\":3,\"v\":1,\"ts\":\"2027-01-15T08:04:00Z\"}",
            T_NOW);
    dm_qreport_t r = {0};
    const dm_qresult_t *x = s_judge(&r, 0, T_NOW + 2 * 3600 * 1000);
    cr_assert_eq(x->outcome, DM_QOUT_FAIL, "stale despite the future row: %s", x->observed_text);
    cr_assert_eq(r.newest_event_ms, T_NOW + 4 * 60 * 1000, "4 min ahead is within the bound");
    cr_assert(strstr(x->reason, "stale"), "%s", x->reason);
    cr_assert(strstr(x->reason, "1 row has event times ahead of the clock by up to 1461d0h; "
                                "ignored for freshness"),
              "%s", x->reason);
    dm_quality_report_clear(&r);
    x = s_judge(&r, 0, T_NOW + 10 * 60 * 1000); /* fresh: the note alone makes a warning */
    cr_assert_eq(x->outcome, DM_QOUT_WARN, "%s", x->reason ? x->reason : "");
    cr_assert(strstr(x->reason, "ignored for freshness"), "%s", x->reason);
    dm_quality_report_clear(&r);
    s_batch("{\"id\":4,\"v\":1,\"ts\":\"2028-01-15T08:00:00Z\"}", T_NOW); /* counts add up */
    x = s_judge(&r, 0, T_NOW + 10 * 60 * 1000);
    cr_assert(strstr(x->reason, "2 rows have event times ahead of the clock by up to 1461d0h"),
              "%s", x->reason);
    dm_quality_report_clear(&r);
}

Test(quality, freshness_reads_the_partitioning_field_or_the_last_ingest)
{
    s_product(NULL, T_FIELDS, "  storage:\n    partitioning: [{field: ts, granularity: day}]\n",
              "      - {rule: freshness, max_age: 1h}\n");
    s_ts("2027-01-15T07:00:00Z", T_NOW);
    dm_qreport_t r = {0};
    const dm_qresult_t *x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_PASS, "exactly max_age old is not over it");
    cr_assert_eq(x->observed, 3600.0 * 1000);
    dm_quality_report_clear(&r);
}

/* sla.freshness measures the event time even when no freshness check
 * keeps it: the writer keeps it for the SLA, and no result shows it. */
Test(quality, sla_freshness_reads_the_event_time_without_a_freshness_check)
{
    s_product(NULL, T_FIELDS,
              "  sla:\n    freshness: 1h\n"
              "  storage:\n    partitioning: [{field: ts, granularity: day}]\n",
              "      - {rule: not_null, column: v, mostly: 99%}\n");
    s_ts("2027-01-15T07:00:00Z", T_NOW);
    s_ts("2027-01-15T06:00:00Z", T_NOW); /* an older one does not lower it */
    dm_qreport_t r = {0};
    (void)s_judge(&r, 0, T_NOW + 1000);
    cr_assert_eq(r.n, 1, "the SLA's state is not a result");
    cr_assert_eq(r.newest_event_ms, T_NOW - 3600 * 1000);
    cr_assert_eq(r.last_ingest_ms, T_NOW);
    dm_quality_report_clear(&r);
}

/* Without an event-time field the SLA has only the last ingest. */
Test(quality, sla_freshness_without_event_time_has_no_event_state)
{
    s_product(NULL, T_FIELDS, "  sla:\n    freshness: 1h\n",
              "      - {rule: not_null, column: v, mostly: 99%}\n");
    s_ts("2027-01-15T07:00:00Z", T_NOW);
    dm_qreport_t r = {0};
    (void)s_judge(&r, 0, T_NOW + 1000);
    cr_assert_eq(r.newest_event_ms, 0);
    cr_assert_eq(r.last_ingest_ms, T_NOW);
    dm_quality_report_clear(&r);
}

Test(quality, freshness_without_event_time_uses_the_last_ingest)
{
    s_product(NULL, T_FIELDS, NULL, "      - {rule: freshness, max_age: 1h}\n");
    dm_qreport_t r = {0};
    const dm_qresult_t *x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_FAIL);
    cr_assert(strstr(x->reason, "never ingested"), "%s", x->reason);
    dm_quality_report_clear(&r);
    s_ints("1", T_NOW);
    x = s_judge(&r, 0, T_NOW + 1000);
    cr_assert_eq(x->outcome, DM_QOUT_PASS);
    cr_assert_eq(r.last_ingest_ms, T_NOW);
    dm_quality_report_clear(&r);
}

Test(quality, state_is_rebuilt_from_rows_stored_before_the_check)
{
    s_product(NULL, T_FIELDS, NULL, "      - {rule: unique, column: v}\n");
    s_batch_opts("{\"id\":1,\"v\":7}\n{\"id\":2,\"v\":7}\n", T_NOW, false, false);
    dm_qreport_t r = {0};
    cr_assert_eq(s_judge(&r, 0, T_NOW)->outcome, DM_QOUT_SKIPPED, "no state yet");
    dm_quality_report_clear(&r);
    s_ints("7", T_NOW); /* the hook rebuilds from all three rows */
    const dm_qresult_t *x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_FAIL);
    cr_assert(strstr(x->observed_text, "1 duplicate group, 2 extra rows"), "%s",
              x->observed_text);
    dm_quality_report_clear(&r);
}

Test(quality, reports_are_stored_and_read_back)
{
    s_product(NULL, T_FIELDS, NULL, "      - {rule: unique, column: v, name: v is unique}\n");
    s_ints("1,1", T_NOW);
    s_ints("2", T_NOW + 1000);
    dm_qreport_t latest = {0}, *hist = NULL;
    size_t n = 0;
    cr_assert_eq(dm_quality_latest(s_store, s_pid, &latest, NULL), DM_OK);
    cr_assert_eq(latest.at_ms, T_NOW + 1000);
    cr_assert_eq(latest.outcome, DM_QOUT_FAIL);
    cr_assert_str_eq(latest.results[0].name, "v is unique");
    cr_assert_str_eq(latest.results[0].samples[0], "1");
    cr_assert_eq(latest.records, 3);
    cr_assert_eq(dm_quality_history(s_store, s_pid, 10, &hist, &n, NULL), DM_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(hist[1].at_ms, T_NOW);
    for (size_t i = 0; i < n; i++)
        dm_quality_report_clear(&hist[i]);
    free(hist);
    dm_quality_report_clear(&latest);
    /* deleting the product deletes its quality state */
    cr_assert_eq(dm_store_product_delete(s_store, "d", "p", NULL, NULL), DM_OK);
    cr_assert_eq(dm_quality_latest(s_store, s_pid, &latest, NULL), DM_ERR_NOTFOUND);
}

Test(quality, outcome_names_round_trip)
{
    for (int o = DM_QOUT_PASS; o <= DM_QOUT_ERROR; o++) {
        dm_qoutcome back;
        cr_assert(dm_quality_outcome_parse(dm_quality_outcome_name((dm_qoutcome)o), &back));
        cr_assert_eq((int)back, o);
    }
    dm_qoutcome back;
    cr_assert_not(dm_quality_outcome_parse("passed", &back));
}

Test(quality, a_check_dropped_and_added_again_is_rebuilt_not_stale)
{
    s_product(NULL, T_FIELDS, NULL, "      - {rule: unique, column: v}\n");
    s_ints("1,1", T_NOW);
    s_reparse("      - {rule: row_count_delta, threshold: 20%}\n");
    s_ints("2,2", T_NOW); /* the unique check is gone while these arrive */
    s_reparse("      - {rule: unique, column: v}\n");
    s_ints("3", T_NOW);
    dm_qreport_t r = {0};
    const dm_qresult_t *x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_FAIL);
    cr_assert(strstr(x->observed_text, "2 duplicate groups, 2 extra rows"), "%s",
              x->observed_text);
    dm_quality_report_clear(&r);
}

static dm_err s_corrupt(dm_store_txn_t *t, void *ctx, dm_buf_t *why)
{
    uint8_t k[9] = {DM_QTAG_CHECK};
    uint64_t id = *(const uint64_t *)ctx;
    for (int i = 8; i >= 1; i--, id >>= 8)
        k[i] = (uint8_t)id;
    return dm_quality_db_put(t, s_pid, k, sizeof k, "x", 1, why);
}

Test(quality, unreadable_state_is_an_error_result_not_a_failed_report)
{
    s_product(NULL, T_FIELDS, NULL,
              "      - {rule: unique, column: v}\n      - {rule: row_count_delta, threshold: 5}\n");
    s_ints("1,2", T_NOW);
    uint64_t id = dm_quality__check_id(&s_c->checks[0]);
    cr_assert_eq(dm_quality_db_update(s_store, s_corrupt, &id, NULL), DM_OK);
    dm_qreport_t r = {0};
    const dm_qresult_t *x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_ERROR);
    cr_assert(strstr(x->reason, "corrupt"), "%s", x->reason);
    cr_assert_eq(r.results[1].outcome, DM_QOUT_SKIPPED, "the other checks are still judged");
    cr_assert_eq(r.outcome, DM_QOUT_ERROR);
    dm_quality_report_clear(&r);
    s_ints("2", T_NOW); /* the next batch rebuilds the state instead of refusing the rows */
    x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_FAIL, "%s", x->reason ? x->reason : "");
    cr_assert(strstr(x->observed_text, "1 duplicate group, 1 extra row"), "%s",
              x->observed_text);
    dm_quality_report_clear(&r);
}

/* A field check's sample names its row by primary key ("id=2: null"),
 * and the sample of a row that an upsert mends goes with it. */
Test(quality, a_field_checks_sample_names_the_row_by_its_key)
{
    s_product("    primaryKey: id\n", T_FIELDS, NULL,
              "      - {rule: not_null, column: v, mostly: 99%}\n");
    s_batch("{\"id\":1,\"v\":10}\n{\"id\":2,\"v\":null}\n", T_NOW);
    dm_qreport_t r = {0};
    const dm_qresult_t *x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->outcome, DM_QOUT_FAIL);
    cr_assert_eq(x->nsamples, 1);
    cr_assert_str_eq(x->samples[0], "id=2: null");
    dm_quality_report_clear(&r);
    s_batch("{\"id\":3,\"v\":null}\n{\"id\":2,\"v\":20}\n", T_NOW); /* 2 mended, 3 fails */
    x = s_judge(&r, 0, T_NOW);
    cr_assert_eq(x->nsamples, 1, "%zu samples", x->nsamples);
    cr_assert_str_eq(x->samples[0], "id=3: null");
    dm_quality_report_clear(&r);
}

Test(quality, the_schedule_is_due_when_older_than_it_or_stamped_ahead_of_the_clock)
{
    const int64_t hour = 3600 * 1000;
    cr_assert(dm_quality_schedule_due(false, 0, hour, T_NOW), "no report yet");
    cr_assert_not(dm_quality_schedule_due(true, T_NOW - hour + 1, hour, T_NOW));
    cr_assert(dm_quality_schedule_due(true, T_NOW - hour, hour, T_NOW));
    cr_assert_not(dm_quality_schedule_due(true, T_NOW + DM_QUALITY_CLOCK_SKEW_MS, hour, T_NOW),
                  "within the skew bound: a clock a little behind the report's");
    cr_assert(dm_quality_schedule_due(true, T_NOW + DM_QUALITY_CLOCK_SKEW_MS + 1, hour, T_NOW),
              "the clock stepped back past the bound: due, not stopped until it catches up");
    cr_assert_not(dm_quality_schedule_due(false, 0, 0, T_NOW), "no schedule");
}
