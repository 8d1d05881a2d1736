/* test_sql.c: SQL through a real meshd and the real meshq: output formats
 * (csv byte-identical to the sqlite3 shell), streaming of large results,
 * refusals that leave the node serving, the node loop answering status
 * while a long query runs, and a cursor only its own client can pull. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "identity/identity.h"
#include "transport/envelope.h"
#include "transport/rpc.h"

#define T_CMD_MS 60000
#define DM_H_TS_RANGE "0000-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"

static dm_h_node_t s_node;
static char s_dir[600];

static dm_h_result_t s_meshq(const char *const *args)
{
    const char *argv[16] = {"--data", s_dir};
    int n = 2;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return dm_h_run("meshq", argv, NULL, T_CMD_MS);
}

static void s_up(void)
{
    const char *tmp = dm_h_tmpdir();
    cr_assert_not_null(tmp);
    snprintf(s_dir, sizeof s_dir, "%s/commerce", tmp);
    const char *extra[] = {"--query-timeout", "10", NULL};
    cr_assert(dm_h_node_start(&s_node, s_dir, "commerce", extra));
    const char *reg[] = {"--data", s_dir, "register", dm_h_src("docs/examples/orders.yaml"), NULL};
    dm_h_result_t r = dm_h_run("dmctl", reg, NULL, T_CMD_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    const char *ing[] = {"--data", s_dir, "ingest", "commerce/orders",
                         dm_h_src("docs/examples/orders.ndjson"), NULL};
    r = dm_h_run("dmctl", ing, NULL, T_CMD_MS);
    cr_assert_eq(r.status, 1, "%s", r.err); /* the sample has two invalid records */
    dm_h_result_free(&r);
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(sql, .init = s_up, .fini = s_down, .timeout = 120);

Test(sql, csv_is_byte_identical_to_the_sqlite3_shell)
{
    const char *sql = "SELECT 1 AS i, 2.5 AS r, 1e20 AS big, 1.0/3 AS third, 'a b' AS sp, "
                      "'x\"y' AS q, 'it''s' AS ap, '' AS empty, NULL AS n, 'é' AS u, -0.0 AS z";
    const char *q[] = {"query", sql, "--format", "csv", NULL};
    dm_h_result_t r = s_meshq(q);
    cr_assert_eq(r.status, 0, "%s", r.err);
    char cmd[1024];
    FILE *p = popen("command -v sqlite3", "r");
    char path[256] = "";
    if (!p || !fgets(path, sizeof path, p)) {
        if (p)
            pclose(p);
        dm_h_result_free(&r);
        cr_skip_test("the sqlite3 shell is not installed");
    }
    pclose(p);
    char tmpl[] = "/tmp/dmsqlXXXXXX";
    int fd = mkstemp(tmpl);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, sql, strlen(sql)), (ssize_t)strlen(sql));
    close(fd);
    snprintf(cmd, sizeof cmd, "sqlite3 -csv -header :memory: < %s", tmpl);
    p = popen(cmd, "r");
    char expect[4096];
    size_t n = fread(expect, 1, sizeof expect - 1, p);
    expect[n] = 0;
    pclose(p);
    unlink(tmpl);
    cr_assert_str_eq(r.out, expect);
    dm_h_result_free(&r);
}

Test(sql, group_by_over_a_product)
{
    const char *q[] = {"query",
                       "SELECT status, count(*), sum(amount) FROM commerce.orders GROUP BY status "
                       "ORDER BY status",
                       "--format", "csv", NULL};
    dm_h_result_t r = s_meshq(q);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "status,count(*),sum(amount)\n"
                            "cancelled,1,15.25\n"
                            "created,1,310.0\n"
                            "paid,2,171.9\n"
                            "shipped,1,7.5\n");
    dm_h_result_free(&r);
}

Test(sql, json_and_jsonl_formats)
{
    const char *q[] = {"query", "SELECT orderId, amount FROM commerce.orders WHERE "
                                "orderId = 'c0ffee00-1234-4abc-9def-0123456789ab'",
                       "--format", "json", NULL};
    dm_h_result_t r = s_meshq(q);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "[\n{\"orderId\":\"c0ffee00-1234-4abc-9def-0123456789ab\","
                            "\"amount\":7.5}\n]\n");
    dm_h_result_free(&r);
    const char *l[] = {"query", "SELECT count(*) AS n FROM commerce.orders", "--format", "jsonl",
                       NULL};
    r = s_meshq(l);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "{\"n\":5}\n");
    dm_h_result_free(&r);
}

Test(sql, large_results_stream_completely)
{
    const char *q[] = {"query",
                       "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 250000) "
                       "SELECT x, 'row ' || x AS label FROM c",
                       "--format", "jsonl", NULL};
    dm_h_result_t r = s_meshq(q);
    cr_assert_eq(r.status, 0, "%s", r.err);
    size_t lines = 0;
    for (const char *p = r.out; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 250000);
    cr_assert_str_eq(dm_h_last_line(r.out), "{\"x\":250000,\"label\":\"row 250000\"}");
    dm_h_result_free(&r);
}

Test(sql, refusals_are_clear_and_the_node_keeps_serving)
{
    static const char *const bad[][2] = {
        {"DROP TABLE commerce.orders", "not allowed"},
        {"ATTACH 'x.db' AS x", "ATTACH is not allowed"},
        {"PRAGMA writable_schema = 1", "not allowed"},
        {"SELECT load_extension('x')", "load_extension"},
        {"SELECT * FROM commerce.ordrs", "did you mean 'commerce.orders'"},
        {"SELEC 1", "syntax error"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *q[] = {"query", bad[i][0], NULL};
        dm_h_result_t r = s_meshq(q);
        cr_assert_eq(r.status, 1, "%s: %s", bad[i][0], r.err);
        cr_assert(strstr(r.err, bad[i][1]), "%s: %s", bad[i][0], r.err);
        dm_h_result_free(&r);
    }
    const char *ok[] = {"query", "SELECT count(*) FROM commerce.orders", "--format", "csv", NULL};
    dm_h_result_t r = s_meshq(ok);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
}

/* Round trip of one Ping, in milliseconds. */
static long long s_ping_ms(dm_rpc_client_t *c)
{
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__Ping ping = DM__PING__INIT;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_PING, &ping);
    Dm__Envelope *rep = NULL;
    long long t0 = dm_h_now_ms();
    dm_err rc = dm_rpc_client_call(c, &req, &rep, NULL);
    long long took = dm_h_now_ms() - t0;
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    return rc == DM_OK ? took : -1;
}

Test(sql, status_is_answered_quickly_while_a_long_query_runs)
{
    /* A query that never ends by itself: the node's 10 s limit stops it. */
    pid_t pid = fork();
    if (pid == 0) {
        FILE *e = freopen("/dev/null", "w", stderr);
        FILE *o = freopen("/dev/null", "w", stdout);
        (void)e;
        (void)o;
        execl(dm_h_bin("meshq"), "meshq", "--data", s_dir, "--timeout", "30", "query",
              "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
              "SELECT count(*) FROM c",
              (char *)NULL);
        _exit(127);
    }
    dm_rpc_client_t *c = NULL;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_rpc_client_new(s_node.addr, 5000, &c, &why), DM_OK, "%s", why.data);
    cr_assert_geq(s_ping_ms(c), 0);
    long long worst = 0, start = dm_h_now_ms();
    int pings = 0, st = 0;
    /* Ping for as long as the query runs (it runs until the 10 s limit). */
    while (waitpid(pid, &st, WNOHANG) == 0 && dm_h_now_ms() - start < 20000) {
        long long t = s_ping_ms(c);
        cr_assert_geq(t, 0, "a ping failed while the query ran");
        if (t > worst)
            worst = t;
        pings++;
        poll(NULL, 0, 50);
    }
    long long ran = dm_h_now_ms() - start;
    dm_rpc_client_destroy(&c);
    cr_assert_geq(ran, 5000, "the query ended after %lld ms; expected it to run ~10 s", ran);
    cr_assert_eq(WEXITSTATUS(st), 1, "the query should end refused by its time limit");
    cr_assert_lt(worst, 50, "slowest status reply %lld ms over %d pings", worst, pings);
}

Test(sql, a_batch_larger_than_a_message_is_refused_clearly)
{
    /* One row of 17 one-megabyte columns: more than a message can hold. */
    static char sql[1024] = "SELECT zeroblob(1000000)";
    for (int i = 1; i < 17; i++)
        strcat(sql, ", zeroblob(1000000)");
    const char *q[] = {"query", sql, "--format", "csv", NULL};
    dm_h_result_t r = s_meshq(q);
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert(strstr(r.err, "message limit"), "%s", r.err);
    dm_h_result_free(&r);
}

/* Opens a query returning more than one batch; returns its cursor. */
static uint64_t s_open_cursor(dm_rpc_client_t *c)
{
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__QueryReq body = DM__QUERY_REQ__INIT;
    body.sql = "SELECT orderId FROM commerce.orders";
    body.max_rows = 1;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_QUERY_REQ, &body);
    Dm__Envelope *rep = NULL;
    cr_assert_eq(dm_rpc_client_call(c, &req, &rep, NULL), DM_OK);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_QUERY_REP);
    cr_assert_not(rep->query_rep->done);
    uint64_t cursor = rep->query_rep->cursor;
    dm__envelope__free_unpacked(rep, NULL);
    return cursor;
}

static Dm__Envelope *s_next(dm_rpc_client_t *c, uint64_t cursor)
{
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__QueryNext next = DM__QUERY_NEXT__INIT;
    next.cursor = cursor;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_QUERY_NEXT, &next);
    Dm__Envelope *rep = NULL;
    cr_assert_eq(dm_rpc_client_call(c, &req, &rep, NULL), DM_OK);
    return rep;
}

Test(sql, a_client_cannot_pull_another_clients_query)
{
    /* a may read the restricted orders (the node's own key, an admin);
     * b is any other client. */
    dm_rpc_client_t *a = NULL, *b = NULL;
    dm_identity_t *admin = dm_h_node_identity(&s_node);
    cr_assert_not_null(admin);
    cr_assert_eq(dm_rpc_client_new_as(s_node.addr, 5000, admin, &a, NULL), DM_OK);
    dm_identity_destroy(&admin);
    cr_assert_eq(dm_rpc_client_new(s_node.addr, 5000, &b, NULL), DM_OK);
    uint64_t cursor = s_open_cursor(a);
    Dm__Envelope *rep = s_next(b, cursor);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_ERROR, "another client read the query");
    dm__envelope__free_unpacked(rep, NULL);
    rep = s_next(a, cursor);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_QUERY_REP, "the owner lost its query");
    dm__envelope__free_unpacked(rep, NULL);
    dm_rpc_client_destroy(&a);
    dm_rpc_client_destroy(&b);
}

/* Runs sql through meshq --format csv and through `sqlite3 -csv -header
 * :memory:`, and asserts the two outputs are the same bytes. */
static void s_csv_like_sqlite3(const char *sql)
{
    FILE *p = popen("command -v sqlite3", "r");
    char path[256] = "";
    bool have = p && fgets(path, sizeof path, p);
    if (p)
        pclose(p);
    if (!have)
        cr_skip_test("the sqlite3 shell is not installed");
    char tmpl[] = "/tmp/dmsqlXXXXXX";
    int fd = mkstemp(tmpl);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, sql, strlen(sql)), (ssize_t)strlen(sql));
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "sqlite3 -csv -header :memory: < %s", tmpl);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    char expect[4096];
    size_t n = fread(expect, 1, sizeof expect - 1, p);
    expect[n] = 0;
    pclose(p);
    unlink(tmpl);
    cr_assert_null(memchr(expect, 0, n), "the shell's csv holds no NUL byte");
    const char *q[] = {"query", sql, "--format", "csv", NULL};
    dm_h_result_t r = s_meshq(q);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, expect, "for %s", sql);
    dm_h_result_free(&r);
}

Test(sql, csv_cuts_text_and_blobs_at_nul_like_the_sqlite3_shell)
{
    s_csv_like_sqlite3("SELECT 'a' || char(0) || 'b' AS t, char(0) || 'a' AS lead, "
                       "'q\"' || char(0) || ',' AS quoted, 'x' || char(0) AS tail, "
                       "X'610062' AS blob, X'00' AS zero, X'' AS empty, X'2C22' AS sep, "
                       "CAST('a,b' || char(0) || 'c' AS BLOB) AS cast");
}

/* The shell prints no header for a result without rows, nor does meshq. */
Test(sql, csv_of_no_rows_is_empty_like_the_sqlite3_shell)
{
    s_csv_like_sqlite3("SELECT 1 AS a, 'x' AS b LIMIT 0");
    s_csv_like_sqlite3("SELECT 1 AS a WHERE 0");
}

Test(sql, csv_quotes_commas_newlines_cr_and_unicode_like_the_sqlite3_shell)
{
    s_csv_like_sqlite3("SELECT 'a,b' AS c, 'say \"hi\"' AS q, 'l1' || char(10) || 'l2' AS nl, "
                       "'r' || char(13) AS cr, char(13, 10) AS crlf, 'tab' || char(9) AS tab, "
                       "'\u00e9\u6f22\U0001f600' AS u, char(127) AS del, 'plain' AS p, "
                       "'\"' AS dq, ',' AS comma, ' ' AS sp");
}

/* Ingests ndjson text into commerce/orders; returns dmctl's exit status. */
static int s_ingest(const char *ndjson)
{
    char path[700];
    snprintf(path, sizeof path, "%s/edge.ndjson", s_dir);
    dm_h_write(path, ndjson);
    const char *ing[] = {"--data", s_dir, "ingest", "commerce/orders", path, NULL};
    dm_h_result_t r = dm_h_run("dmctl", ing, NULL, T_CMD_MS);
    int st = r.status;
    dm_h_result_free(&r);
    return st;
}

#define S_ORDER(id, ts)                                                                       \
    "{\"orderId\":\"" id "\",\"customerId\":\"cust-0009\",\"amount\":1.0,"           \
    "\"status\":\"paid\",\"timestamp\":\"" ts "\"}\n"

Test(sql, timestamps_outside_the_four_digit_years_are_quarantined_with_the_range)
{
    int st = s_ingest(S_ORDER("e0000000-0000-4000-8000-000000000001", "9999-12-31T23:59:59.999999Z")
                      S_ORDER("e0000000-0000-4000-8000-000000000002", "0000-01-01T00:00:00Z")
                      S_ORDER("e0000000-0000-4000-8000-000000000003", "9999-12-31T23:59:59-00:01")
                      S_ORDER("e0000000-0000-4000-8000-000000000004", "0000-01-01T00:00:00+00:01")
                      S_ORDER("e0000000-0000-4000-8000-000000000005", "9999-12-31T23:30:00-00:30"));
    cr_assert_eq(st, 1, "three records should be quarantined");
    const char *quar[] = {"--data", s_dir, "quarantine", "commerce/orders", NULL};
    dm_h_result_t r = dm_h_run("dmctl", quar, NULL, T_CMD_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *bad[] = {"9999-12-31T23:59:59-00:01", "0000-01-01T00:00:00+00:01",
                         "9999-12-31T23:30:00-00:30"};
    for (size_t i = 0; i < 3; i++) {
        char want[200];
        snprintf(want, sizeof want, "field 'timestamp': '%s' is outside the timestamp range "
                                    DM_H_TS_RANGE, bad[i]);
        cr_assert(strstr(r.out, want), "no '%s' in:\n%s", want, r.out);
    }
    cr_assert_null(strstr(r.out, "e0000000-0000-4000-8000-000000000001"), "%s", r.out);
    dm_h_result_free(&r);
    /* The accepted edges come back fixed width and in instant order. */
    const char *q[] = {"query", "SELECT timestamp FROM commerce.orders WHERE customerId = "
                                "'cust-0009' ORDER BY timestamp", "--format", "csv", NULL};
    r = s_meshq(q);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "timestamp\n0000-01-01T00:00:00.000000Z\n"
                            "9999-12-31T23:59:59.999999Z\n");
    dm_h_result_free(&r);
    /* An out-of-range key literal goes through the same parser: it matches
     * nothing rather than an instant it was folded onto. */
    const char *lit[] = {"query", "SELECT count(*) AS n FROM commerce.orders WHERE timestamp = "
                                  "'9999-12-31T23:59:59.999999-00:01'", "--format", "csv", NULL};
    r = s_meshq(lit);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "n\n0\n");
    dm_h_result_free(&r);
}
