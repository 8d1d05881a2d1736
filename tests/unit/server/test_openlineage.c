/* test_openlineage.c: meshd --openlineage's events (suite "openlineage",
 * node/server/node_openlineage.c): START, COMPLETE with the quality report
 * as dataQualityAssertions and FAIL with its error, each checked against
 * the OpenLineage 2-0-2 JSON schema and the facet's schema by python3's
 * jsonschema (tests/data/openlineage/check_events.py), a broken event
 * refused by the same check, and the fields a consumer joins on read back. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fixture.h"
#include "quality/quality.h"
#include "server/node_priv.h"

static char s_dir[128];

static void s_init(void) { cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "openlineage")); }
static void s_fini(void) { dm_t_rmdir(s_dir); }

TestSuite(openlineage, .init = s_init, .fini = s_fini);

static const dm_upstream_t s_ups[] = {{"inventory", "logistics"}, {"customers", "identity"}};

static dm_ingest_run_t s_run(dm_ingest_run_event ev)
{
    dm_ingest_run_t r = {.event = ev, .domain = "commerce", .name = "orders",
                         .source = "orders.ndjson", .at_ms = 1764590400123LL,
                         .accepted = 90, .quarantined = 10};
    for (int i = 0; i < DM_INGEST_RUN_ID_BYTES; i++)
        r.run_id[i] = (uint8_t)(0xA0 + i);
    return r;
}

/* A report with one result per outcome that maps to success or not. */
static dm_qreport_t s_report(dm_qresult_t res[4])
{
    memset(res, 0, 4 * sizeof *res);
    res[0] = (dm_qresult_t){.name = "not_null(orderId)", .column = "orderId",
                            .outcome = DM_QOUT_PASS, .observed_text = "0%", .threshold = "0%"};
    res[1] = (dm_qresult_t){.name = "unique(orderId)", .column = "orderId",
                            .outcome = DM_QOUT_FAIL, .observed_text = "1 group, 2 extra rows",
                            .threshold = "no duplicates", .reason = "duplicates"};
    res[2] = (dm_qresult_t){.name = "row_count_delta", .outcome = DM_QOUT_WARN,
                            .observed_text = "-50%", .threshold = "20%"};
    res[3] = (dm_qresult_t){.name = "freshness \"daily\"", .outcome = DM_QOUT_SKIPPED,
                            .reason = "no event time"};
    return (dm_qreport_t){.outcome = DM_QOUT_FAIL, .results = res, .n = 4};
}

/* Runs the schema check on path: its exit status (77: no jsonschema). */
static int s_check(const char *path)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 %s/tests/data/openlineage/check_events.py %s",
             DM_SOURCE_DIR, path);
    int st = system(cmd);
    cr_assert(WIFEXITED(st), "the check did not run: %s", cmd);
    if (WEXITSTATUS(st) == 77)
        cr_assert_fail("python3-jsonschema is absent: scripts/deps.sh installs it for the tests "
                       "(apt-get install python3-jsonschema)");
    return WEXITSTATUS(st);
}

static void s_write_lines(const char *path, const dm_buf_t *const *events, size_t n)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\n", events[i]->data);
    fclose(f);
}

Test(openlineage, start_complete_and_fail_are_valid_run_events)
{
    dm_qresult_t res[4];
    dm_qreport_t rep = s_report(res);
    dm_buf_t start = DM_BUF_INIT, done = DM_BUF_INIT, fail = DM_BUF_INIT;
    dm_ingest_run_t r = s_run(DM_INGEST_RUN_START);
    dm_node__openlineage_event(&r, s_ups, 2, &start);
    r = s_run(DM_INGEST_RUN_COMPLETE);
    r.report = &rep;
    dm_node__openlineage_event(&r, s_ups, 2, &done);
    r = s_run(DM_INGEST_RUN_FAIL);
    r.error = "batch 3: the store is full\n\"MDB_MAP_FULL\"";
    dm_node__openlineage_event(&r, NULL, 0, &fail);
    char path[256];
    snprintf(path, sizeof path, "%s/events.jsonl", s_dir);
    const dm_buf_t *all[] = {&start, &done, &fail};
    s_write_lines(path, all, 3);
    cr_assert_eq(s_check(path), 0, "an event is not valid OpenLineage 2-0-2 (see above)");
    dm_buf_free(&start);
    dm_buf_free(&done);
    dm_buf_free(&fail);
}

Test(openlineage, the_check_refuses_an_event_without_a_run)
{
    /* The schema check itself can fail: a RunEvent needs run and job. */
    dm_buf_t bad = DM_BUF_INIT;
    dm_buf_puts(&bad, "{\"eventType\":\"START\",\"eventTime\":\"2026-12-01T12:00:00.000Z\","
                      "\"producer\":\"https://datamesh.io/meshd/0\",\"schemaURL\":"
                      "\"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent\","
                      "\"job\":{\"namespace\":\"datamesh://commerce\",\"name\":\"x\"},"
                      "\"outputs\":[{\"namespace\":\"datamesh://commerce\"}]}");
    char path[256];
    snprintf(path, sizeof path, "%s/bad.jsonl", s_dir);
    const dm_buf_t *all[] = {&bad};
    s_write_lines(path, all, 1);
    cr_assert_eq(s_check(path), 1);
    dm_buf_free(&bad);
}

Test(openlineage, complete_carries_the_product_its_upstreams_and_the_assertions)
{
    dm_qresult_t res[4];
    dm_qreport_t rep = s_report(res);
    dm_buf_t out = DM_BUF_INIT, start = DM_BUF_INIT;
    dm_ingest_run_t r = s_run(DM_INGEST_RUN_COMPLETE);
    r.report = &rep;
    dm_node__openlineage_event(&r, s_ups, 2, &out);
    r = s_run(DM_INGEST_RUN_START);
    dm_node__openlineage_event(&r, s_ups, 2, &start);
    cJSON *e = cJSON_Parse(out.data), *s = cJSON_Parse(start.data);
    cr_assert_not_null(e, "%s", out.data);
    cr_assert_not_null(s);
    cr_assert_str_eq(cJSON_GetObjectItem(e, "eventType")->valuestring, "COMPLETE");
    cr_assert_str_eq(cJSON_GetObjectItem(e, "eventTime")->valuestring, "2025-12-01T12:00:00.123Z");
    const char *id = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "run"), "runId")->valuestring;
    cr_assert_str_eq(id, "a0a1a2a3-a4a5-46a7-a8a9-aaabacadaeaf");
    cr_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(s, "run"), "runId")->valuestring, id);
    const cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItem(e, "outputs"), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(o, "namespace")->valuestring, "datamesh://commerce");
    cr_assert_str_eq(cJSON_GetObjectItem(o, "name")->valuestring, "commerce.orders");
    const cJSON *in = cJSON_GetObjectItem(e, "inputs");
    cr_assert_eq(cJSON_GetArraySize(in), 2);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(in, 0), "name")->valuestring,
                     "logistics.inventory");
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(in, 1), "namespace")->valuestring,
                     "datamesh://identity");
    const cJSON *a = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(o, "facets"), "dataQualityAssertions"),
        "assertions");
    cr_assert_eq(cJSON_GetArraySize(a), 4);
    static const bool want[] = {true, false, true, true}; /* pass, fail, warn, skipped */
    for (int i = 0; i < 4; i++) {
        const cJSON *x = cJSON_GetArrayItem(a, i);
        cr_assert_str_eq(cJSON_GetObjectItem(x, "assertion")->valuestring, res[i].name);
        cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(x, "success")), want[i], "assertion %d", i);
        cr_assert_eq(cJSON_GetObjectItem(x, "column") != NULL, res[i].column != NULL);
    }
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "outputFacets"),
                                                         "outputStatistics"),
                                     "rowCount")
                     ->valueint,
                 90);
    /* START has no quality facet: the checks run after the run's end. */
    cr_assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(s, "outputs"), 0),
                                       "facets"));
    cJSON_Delete(e);
    cJSON_Delete(s);
    dm_buf_free(&out);
    dm_buf_free(&start);
}

Test(openlineage, fail_carries_the_error)
{
    dm_buf_t out = DM_BUF_INIT;
    dm_ingest_run_t r = s_run(DM_INGEST_RUN_FAIL);
    r.error = "refused: \"x\"";
    dm_node__openlineage_event(&r, NULL, 0, &out);
    cJSON *e = cJSON_Parse(out.data);
    cr_assert_not_null(e, "%s", out.data);
    cr_assert_str_eq(cJSON_GetObjectItem(e, "eventType")->valuestring, "FAIL");
    const cJSON *m = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "run"), "facets"),
                            "errorMessage"),
        "message");
    cr_assert_str_eq(m->valuestring, "refused: \"x\"");
    cJSON_Delete(e);
    dm_buf_free(&out);
}

Test(openlineage, an_unwritable_file_is_refused_at_start_naming_it)
{
    dm_node_t node;
    memset(&node, 0, sizeof node);
    char path[256];
    snprintf(path, sizeof path, "%s/no/such/dir/events.jsonl", s_dir);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_node__openlineage_start(&node, path, &why), DM_ERR_IO);
    cr_assert(strstr(why.data, path) && strstr(why.data, "--openlineage"), "%s", why.data);
    cr_assert_null(node.openlineage);
    cr_assert_eq(dm_node__openlineage_start(&node, NULL, &why), DM_OK);
    dm_buf_free(&why);
}
