/* test_attack_sql.c: SQL bursts from outsiders against a real meshd (issue
 * 7, item 6). An outsider's key opens runaway queries and abandons them,
 * keeps them running, or opens cursors it never pulls; meanwhile another
 * client's short query answers within T_FRESH_MS (the old node blocked it
 * for the query time limit times the burst over the workers: 50 s and
 * more) and pings answer within a second. A client beyond its cap is told
 * "busy" at once, with the cap named. Each test prints its figures. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "identity/identity.h"
#include "transport/envelope.h"
#include "transport/rpc.h"

#define T_QUERY_TIMEOUT "30"  /* the node's query time limit, s: runaways run this long */
#define T_FRESH_MS 5000       /* another client's short query must answer within this */
#define T_PING_MS 1000        /* status must answer within this */
#define T_REPLY_MS 3000       /* a refusal or first batch must come within this */
#define T_BURST 8             /* runaway queries of one burst */
#define T_CURSORS 32          /* never-pulled cursors one key tries to open */
#define T_KEYS 70             /* keys holding one never-pulled cursor each (node cap 64) */
#define T_RUNAWAY "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) " \
                  "SELECT count(*) FROM c"
#define T_ROWS "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100) " \
               "SELECT x FROM c"

static dm_h_node_t s_node;

static void s_up(void)
{
    const char *tmp = dm_h_tmpdir();
    cr_assert_not_null(tmp);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/sqlattack", tmp);
    const char *extra[] = {"--query-timeout", T_QUERY_TIMEOUT, NULL};
    cr_assert(dm_h_node_start(&s_node, dir, "sqlattack", extra));
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(attack_sql, .init = s_up, .fini = s_down, .timeout = 120);

/* Sends a QueryReq of sql (max_rows per batch, 0: the node's) on raw. */
static void s_send_query(dm_h_raw_t *raw, uint64_t id, const char *sql, uint32_t max_rows)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__QueryReq q = DM__QUERY_REQ__INIT;
    q.sql = (char *)sql;
    q.max_rows = max_rows;
    env.id = id;
    env.body_case = DM__ENVELOPE__BODY_QUERY_REQ;
    env.query_req = &q;
    cr_assert(dm_h_raw_send_env(raw, &env));
}

/* The next reply on raw within timeout_ms, unpacked (NULL on timeout). */
static Dm__Envelope *s_recv(dm_h_raw_t *raw, int timeout_ms)
{
    size_t len = 0;
    void *buf = dm_h_raw_recv(raw, &len, timeout_ms);
    if (!buf)
        return NULL;
    Dm__Envelope *env = dm_rpc_unpack(buf, len);
    free(buf);
    return env;
}

/* A fresh client's short query: ms until its answer, -1 if none within
 * T_FRESH_MS or if it was not rows. */
static long long s_fresh_query_ms(void)
{
    long long t0 = dm_h_now_ms();
    dm_rpc_client_t *c = NULL;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_rpc_client_new(s_node.addr, T_FRESH_MS, &c, &why), DM_OK, "%s", why.data);
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__QueryReq q = DM__QUERY_REQ__INIT;
    q.sql = "SELECT 42 AS answer";
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_QUERY_REQ, &q);
    Dm__Envelope *rep = NULL;
    long long ms = -1;
    dm_err rc = dm_rpc_client_call(c, &req, &rep, &why);
    if (rc == DM_OK && rep->body_case == DM__ENVELOPE__BODY_QUERY_REP && rep->query_rep->done &&
        rep->query_rep->nrows == 1)
        ms = dm_h_now_ms() - t0;
    else
        cr_log_warn("fresh query: %s", rc != DM_OK ? why.data
                                       : rep->body_case == DM__ENVELOPE__BODY_ERROR
                                           ? rep->error->message
                                           : "not rows");
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    dm_buf_free(&why);
    dm_rpc_client_destroy(&c);
    return ms;
}

/* Lines of the node's log telling that a query's client disconnected. */
static int s_gone_lines(void)
{
    FILE *f = fopen(s_node.log, "r");
    if (!f)
        return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, "its client disconnected") != NULL;
    fclose(f);
    return n;
}

static void s_assert_ping(const char *when)
{
    long long ms = dm_h_ping_ms(&s_node, T_PING_MS);
    cr_assert(ms >= 0 && ms < T_PING_MS, "no ping answer within %d ms %s", T_PING_MS, when);
}

/* A burst of runaway queries, each on its own connection (one key or a key
 * each), that the clients then abandon (disconnect). */
static void s_abandoned_burst(bool one_key)
{
    dm_identity_t *id = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&id), DM_OK);
    dm_h_raw_t *raw[T_BURST];
    for (int i = 0; i < T_BURST; i++) {
        raw[i] = dm_h_raw_new(s_node.addr, one_key ? id : NULL);
        cr_assert_not_null(raw[i]);
        s_send_query(raw[i], 1, T_RUNAWAY, 0);
    }
    s_assert_ping("during the burst");
    /* Let the runaways start (and, with one key, fill its queue). */
    long long until = dm_h_now_ms() + 300;
    while (dm_h_now_ms() < until)
        s_assert_ping("during the burst");
    int before = s_gone_lines();
    for (int i = 0; i < T_BURST; i++)
        dm_h_raw_destroy(&raw[i]);
    dm_identity_destroy(&id);
    /* The node noticed: every runaway was cancelled or dropped unstarted. */
    long long t0 = dm_h_now_ms();
    while (s_gone_lines() - before < T_BURST && dm_h_now_ms() - t0 < T_FRESH_MS)
        s_assert_ping("while the node cancels");
    cr_log_info("%d runaway queries cancelled or dropped within %lld ms of their clients leaving",
                s_gone_lines() - before, dm_h_now_ms() - t0);
    cr_assert_geq(s_gone_lines() - before, T_BURST, "abandoned queries were not all cancelled");
    long long t = s_fresh_query_ms();
    cr_log_info("after %d abandoned runaway queries (%s): a fresh query answered in %lld ms",
                T_BURST, one_key ? "one key" : "a key each", t);
    cr_assert(t >= 0 && t < T_FRESH_MS, "a fresh query waited behind abandoned runaways");
    s_assert_ping("after the burst");
}

Test(attack_sql, abandoned_runaways_from_one_key_do_not_block_others)
{
    s_abandoned_burst(true);
}

Test(attack_sql, abandoned_runaways_from_many_keys_do_not_block_others)
{
    s_abandoned_burst(false);
}

Test(attack_sql, runaways_that_stay_connected_leave_a_worker_for_short_queries)
{
    /* A key each, so no per-key cap applies: the general workers fill with
     * runaways that run to the 30 s limit; the short lane serves others. */
    dm_h_raw_t *raw[T_BURST];
    for (int i = 0; i < T_BURST; i++) {
        raw[i] = dm_h_raw_new(s_node.addr, NULL);
        cr_assert_not_null(raw[i]);
        s_send_query(raw[i], 1, T_RUNAWAY, 0);
    }
    long long until = dm_h_now_ms() + 500; /* the general workers now run long queries */
    while (dm_h_now_ms() < until)
        s_assert_ping("during the burst");
    for (int k = 0; k < 3; k++) {
        long long t = s_fresh_query_ms();
        cr_log_info("with %d runaway queries running: a fresh query answered in %lld ms", T_BURST,
                    t);
        cr_assert(t >= 0 && t < T_FRESH_MS, "a short query waited behind running runaways");
        s_assert_ping("while runaways run");
    }
    /* Queued runaways are refused "busy" after their wait, never started. */
    int busy = 0;
    for (int i = 0; i < T_BURST; i++) {
        Dm__Envelope *rep = s_recv(raw[i], 0);
        if (!rep)
            continue;
        if (rep->body_case == DM__ENVELOPE__BODY_ERROR && strstr(rep->error->message, "busy"))
            busy++;
        dm__envelope__free_unpacked(rep, NULL);
    }
    cr_log_info("%d of the runaways were already answered busy", busy);
    for (int i = 0; i < T_BURST; i++)
        dm_h_raw_destroy(&raw[i]);
}

Test(attack_sql, a_key_beyond_its_queue_cap_is_told_busy_at_once)
{
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, NULL);
    cr_assert_not_null(raw);
    /* One runs, eight wait (one running query per key), the rest are
     * refused at once (four if none had started yet). */
    const int n = 12;
    for (int i = 1; i <= n; i++)
        s_send_query(raw, (uint64_t)i, T_RUNAWAY, 0);
    int refused = 0;
    long long t0 = dm_h_now_ms();
    Dm__Envelope *rep;
    while ((rep = s_recv(raw, refused < n - 9 ? T_REPLY_MS : 200)) != NULL) {
        cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_ERROR);
        cr_assert(strstr(rep->error->message, "busy") &&
                      strstr(rep->error->message, "8 query requests waiting"),
                  "%s", rep->error->message);
        refused++;
        dm__envelope__free_unpacked(rep, NULL);
    }
    cr_log_info("%d refused over the cap within %lld ms", refused, dm_h_now_ms() - t0);
    cr_assert(refused == n - 9 || refused == n - 8, "%d refused at once", refused);
    /* The waiting ones are refused when their wait runs out, not started. */
    rep = s_recv(raw, 2 * T_FRESH_MS);
    cr_assert_not_null(rep, "no answer to a queued request");
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_ERROR);
    cr_assert(strstr(rep->error->message, "waited"), "%s", rep->error->message);
    dm__envelope__free_unpacked(rep, NULL);
    long long t = s_fresh_query_ms();
    cr_assert(t >= 0 && t < T_FRESH_MS);
    s_assert_ping("after the flood");
    dm_h_raw_destroy(&raw);
}

Test(attack_sql, never_pulled_cursors_of_one_key_are_capped)
{
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, NULL);
    cr_assert_not_null(raw);
    int open = 0, busy = 0;
    for (int i = 1; i <= T_CURSORS; i++) {
        s_send_query(raw, (uint64_t)i, T_ROWS, 1);
        Dm__Envelope *rep = s_recv(raw, T_REPLY_MS);
        cr_assert_not_null(rep, "no answer to query %d", i);
        if (rep->body_case == DM__ENVELOPE__BODY_QUERY_REP) {
            cr_assert_not(rep->query_rep->done);
            open++;
        } else {
            cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_ERROR);
            cr_assert(strstr(rep->error->message, "busy") &&
                          strstr(rep->error->message, "4 open queries"),
                      "%s", rep->error->message);
            busy++;
        }
        dm__envelope__free_unpacked(rep, NULL);
    }
    cr_log_info("one key: %d cursors opened, %d refused busy", open, busy);
    cr_assert_eq(open, 4);
    long long t = s_fresh_query_ms();
    cr_log_info("beside %d never-pulled cursors of one key: a fresh query answered in %lld ms",
                open, t);
    cr_assert(t >= 0 && t < T_FRESH_MS);
    s_assert_ping("beside never-pulled cursors");
    dm_h_raw_destroy(&raw);
}

Test(attack_sql, never_pulled_cursors_of_many_keys_give_way)
{
    /* More keys than the node holds cursors: the table fills, yet a new
     * client's query gets a place from a cursor that idles. */
    static dm_h_raw_t *raw[T_KEYS];
    for (int i = 0; i < T_KEYS; i++) {
        raw[i] = dm_h_raw_new(s_node.addr, NULL);
        cr_assert_not_null(raw[i]);
        s_send_query(raw[i], 1, T_ROWS, 1);
    }
    int answered = 0;
    for (int i = 0; i < T_KEYS; i++) {
        Dm__Envelope *rep = s_recv(raw[i], T_FRESH_MS);
        if (rep)
            answered++;
        if (rep)
            dm__envelope__free_unpacked(rep, NULL);
    }
    cr_log_info("%d keys holding a never-pulled cursor each: %d answered", T_KEYS, answered);
    cr_assert_eq(answered, T_KEYS, "a query of the flood got no answer at all");
    s_assert_ping("beside a full cursor table");
    long long t = s_fresh_query_ms();
    cr_log_info("beside %d never-pulled cursors of %d keys: a fresh query answered in %lld ms",
                T_KEYS, T_KEYS, t);
    cr_assert(t >= 0 && t < T_FRESH_MS);
    for (int i = 0; i < T_KEYS; i++)
        dm_h_raw_destroy(&raw[i]);
}
