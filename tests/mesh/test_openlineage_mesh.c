/* test_openlineage_mesh.c: meshd --openlineage on a real node: a dmctl
 * ingest of docs/examples/orders.ndjson into commerce/orders appends START
 * and COMPLETE, both valid against the OpenLineage 2-0-2 schema
 * (tests/data/openlineage/check_events.py), COMPLETE with the product, its
 * upstreams and the dataQualityAssertions of the run's checks. Skipped,
 * saying so, when the node's write pipeline reports no ingest runs (a
 * build without the writer's run hook) or python3-jsonschema is absent. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define T_DEADLINE_MS 30000
#define T_POLL_MS 50

static dm_h_node_t s_node;
static char s_events[700];

static void s_up(void)
{
    const char *tmp = dm_h_tmpdir();
    cr_assert_not_null(tmp);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/commerce", tmp);
    snprintf(s_events, sizeof s_events, "%s/events.jsonl", tmp);
    const char *extra[] = {"--openlineage", s_events, NULL};
    cr_assert(dm_h_node_start(&s_node, dir, "commerce", extra));
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(openlineage_mesh, .init = s_up, .fini = s_down, .timeout = 60);

/* The whole of a file (malloc'd, "" when absent). */
static char *s_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text = calloc(1, 1);
    size_t n = 0;
    if (!f)
        return text;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        text = realloc(text, n + got + 1);
        memcpy(text + n, buf, got);
        n += got;
        text[n] = 0;
    }
    fclose(f);
    return text;
}

static size_t s_lines(const char *text)
{
    size_t n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

Test(openlineage_mesh, an_ingest_run_appends_start_and_complete)
{
    const char *reg[] = {"--data", s_node.dir, "register", dm_h_src("docs/examples/orders.yaml"),
                         NULL};
    dm_h_result_t r = dm_h_run("dmctl", reg, NULL, T_DEADLINE_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    const char *ing[] = {"--data", s_node.dir, "ingest", "commerce/orders",
                         dm_h_src("docs/examples/orders.ndjson"), NULL};
    r = dm_h_run("dmctl", ing, NULL, T_DEADLINE_MS);
    /* The example holds two invalid records on purpose: exit 1, quarantined. */
    cr_assert(strstr(r.out, "6 accepted, 2 quarantined"), "%d: %s%s", r.status, r.out, r.err);
    dm_h_result_free(&r);
    long long deadline = dm_h_now_ms() + T_DEADLINE_MS;
    char *text = s_slurp(s_events);
    while (s_lines(text) < 2 && dm_h_now_ms() < deadline) {
        free(text);
        poll(NULL, 0, T_POLL_MS);
        text = s_slurp(s_events);
    }
    cr_assert_eq(s_lines(text), 2, "%s", text);
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "python3 %s %s", dm_h_src("tests/data/openlineage/check_events.py"),
             s_events);
    int st = system(cmd);
    cr_assert(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77)
        cr_assert_fail("python3-jsonschema is absent: scripts/deps.sh installs it for the tests");
    cr_assert_eq(WEXITSTATUS(st), 0, "the events are not valid OpenLineage 2-0-2: %s", text);
    char *second = strchr(text, '\n') + 1;
    cJSON *start = cJSON_ParseWithLength(text, (size_t)(second - text)), *done = cJSON_Parse(second);
    cr_assert(start && done, "%s", text);
    cr_assert_str_eq(cJSON_GetObjectItem(start, "eventType")->valuestring, "START");
    cr_assert_str_eq(cJSON_GetObjectItem(done, "eventType")->valuestring, "COMPLETE");
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(start, "run"), "runId")->valuestring,
                     cJSON_GetObjectItem(cJSON_GetObjectItem(done, "run"), "runId")->valuestring);
    const cJSON *out = cJSON_GetArrayItem(cJSON_GetObjectItem(done, "outputs"), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(out, "name")->valuestring, "commerce.orders");
    const cJSON *in = cJSON_GetObjectItem(done, "inputs");
    cr_assert_eq(cJSON_GetArraySize(in), 2, "%s", second);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(in, 0), "name")->valuestring,
                     "logistics.inventory");
    const cJSON *dq = cJSON_GetObjectItem(cJSON_GetObjectItem(out, "facets"),
                                          "dataQualityAssertions");
    cr_assert_gt(cJSON_GetArraySize(cJSON_GetObjectItem(dq, "assertions")), 0, "%s", second);
    cJSON_Delete(start);
    cJSON_Delete(done);
    free(text);
}
