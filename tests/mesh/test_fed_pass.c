/* test_fed_pass.c: the relay's pass-through (node_relay_pass.c) on real
 * meshd nodes. An owner (commerce, under governance: orders readable by
 * the consumer with its pii masked, secret readable by the relay only) and
 * a relaying node of a certified domain; the consumer asks the relay with
 * meshq. A query over commerce's products only is passed through whole
 * (--explain says so); the same query written so that the relay cannot
 * pass it (an alias named like the domain: the relay then plans remote
 * tables as before) gives the same rows, masked columns included, and a
 * denied product is denied either way, naming it. A passed query of more
 * than one batch is pulled through the relay's cursor to its end. Both
 * sides audit the passed query. At the owner, a query its loop answers and
 * one it hands to a worker are each audited once. The relay's node loop
 * sends a lookup in a kept session on itself (node_relay_loop.c), and a
 * client that disconnects there has its query cancelled at the owner. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "harness.h"
#include "harness_access.h"
#include "transport/envelope.h"
#include "transport/grant.h"
#include "transport/rpc.h"

#define T_REPLY_MS 10000
#define T_AUDIT_MS 5000
#define T_PASSED "passed through to owner node"

static const char *s_tmp;
static dm_h_node_t s_node, s_relay_node;
static dm_h_person_t s_gov, s_consumer, s_relay;

static void s_publish(const char *name, const char *yaml)
{
    const char *args[] = {"policy", "publish", dm_h_file(s_tmp, name, yaml), NULL};
    dm_h_result_t r = dm_h_run_as("dmctl", s_gov.file, &s_node, args, NULL);
    cr_assert_eq(r.status, 0, "policy publish %s: %s%s", name, r.out, r.err);
    dm_h_result_free(&r);
}

static void s_certify(const char *domain, const char *hex)
{
    char doc[512], name[64];
    snprintf(doc, sizeof doc,
             "apiVersion: datamesh.io/v1\nkind: DomainCertificate\nmetadata: {name: %s}\n"
             "spec: {domain: %s, node: \"%s\"}\n",
             domain, domain, hex);
    snprintf(name, sizeof name, "cert-%s.yaml", domain);
    s_publish(name, doc);
}

/* meshq as the consumer at the relay: query sql as CSV with --explain. */
static dm_h_result_t s_meshq(const char *sql)
{
    const char *q[] = {"query", sql, "--format", "csv", "--explain", NULL};
    return dm_h_run_as("meshq", s_consumer.file, &s_relay_node, q, NULL);
}

/* Whether the relay passes a query over orders through (its directory has
 * the owner alive and certified, the catalog both products). */
static bool s_ready(void *ctx)
{
    (void)ctx;
    if (!dm_h_lists(&s_relay_node, "commerce", "secret", NULL))
        return false;
    dm_h_result_t r = s_meshq("SELECT count(*) FROM commerce.orders");
    bool ok = r.status == 0 && strstr(r.err, T_PASSED) != NULL;
    dm_h_result_free(&r);
    return ok;
}

static void s_up(void)
{
    s_tmp = dm_h_tmpdir();
    cr_assert_not_null(s_tmp);
    cr_assert(dm_h_person(&s_gov, s_tmp, "governance"));
    cr_assert(dm_h_person(&s_consumer, s_tmp, "consumer"));
    char dir[600], key[DM_ID_HEX_BYTES], readers[100];
    snprintf(dir, sizeof dir, "%s/commerce", s_tmp);
    const char *extra[] = {"--governance", s_gov.hex, NULL};
    cr_assert(dm_h_node_start(&s_node, dir, "commerce", extra), "meshd did not start");
    dm_h_node_key(&s_node, key);
    s_certify("commerce", key);
    snprintf(dir, sizeof dir, "%s/relay", s_tmp);
    cr_assert_eq(mkdir(dir, 0700), 0, "mkdir %s", dir);
    cr_assert(dm_h_person(&s_relay, dir, "identity"));
    const char *join[] = {"--join", s_node.addr, NULL};
    cr_assert(dm_h_node_start(&s_relay_node, dir, "relay", join), "the relay did not start");
    s_certify("relay", s_relay.hex);
    snprintf(readers, sizeof readers, "\"%s\"", s_consumer.hex);
    cr_assert(dm_h_orders_product(&s_node, s_tmp, "orders", "restricted", readers));
    snprintf(readers, sizeof readers, "\"%s\"", s_relay.hex);
    cr_assert(dm_h_orders_product(&s_node, s_tmp, "secret", "restricted", readers));
    s_publish("privacy.yaml", dm_h_pii_policy(s_relay.hex));
    cr_assert(dm_h_wait_until(s_ready, NULL, DM_H_WAIT_MS),
              "the relay never passed a query over commerce.orders through");
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(fed_pass, .init = s_up, .fini = s_down, .timeout = 120);

/* passed and planned are the same query, the second written so that the
 * relay cannot pass it: both succeed with the same rows, want. */
static void s_same(const char *passed, const char *planned, const char *want)
{
    dm_h_result_t a = s_meshq(passed), b = s_meshq(planned);
    cr_assert_eq(a.status, 0, "%s: %s%s", passed, a.out, a.err);
    cr_assert_eq(b.status, 0, "%s: %s%s", planned, b.out, b.err);
    cr_assert(strstr(a.err, T_PASSED), "not passed through: %s", a.err);
    cr_assert(!strstr(b.err, T_PASSED) && strstr(b.err, "round trip"),
              "not planned with remote tables: %s", b.err);
    cr_assert_str_eq(a.out, b.out, "the pass-through and the remote tables differ");
    cr_assert_str_eq(a.out, want);
    dm_h_result_free(&a);
    dm_h_result_free(&b);
}

Test(fed_pass, passed_queries_equal_remote_tables_masks_and_denials_included)
{
    s_same("SELECT orderId, email, region FROM commerce.orders ORDER BY orderId",
           "SELECT commerce.orderId, commerce.email, commerce.region FROM commerce.orders AS "
           "commerce ORDER BY commerce.orderId",
           "orderId,email,region\no1,***,eu\no2,***,us\no3,***,eu\no4,***,us\n");
    s_same("SELECT region, count(*) AS n FROM commerce.orders WHERE orderId IN ('o1', 'o2', "
           "'o3') GROUP BY region ORDER BY region",
           "SELECT commerce.region, count(*) AS n FROM commerce.orders AS commerce WHERE "
           "commerce.orderId IN ('o1', 'o2', 'o3') GROUP BY commerce.region ORDER BY "
           "commerce.region",
           "region,n\neu,2\nus,1\n");
    /* secret: the relay may read it, the consumer may not; either way. */
    const char *denied[] = {"SELECT orderId FROM commerce.secret",
                            "SELECT commerce.orderId FROM commerce.secret AS commerce"};
    for (int i = 0; i < 2; i++) {
        dm_h_result_t r = s_meshq(denied[i]);
        cr_assert_neq(r.status, 0, "%s was read: %s", denied[i], r.out);
        cr_assert(strstr(r.err, "commerce.secret") && strstr(r.err, s_consumer.hex),
                  "%s: the denial names neither product nor consumer: %s", denied[i], r.err);
        dm_h_result_free(&r);
    }
    /* The owner audited the passed reads as the consumer via the relay,
     * the relay its sending them on. */
    dm_h_audit_want_t w = {s_consumer.hex, "read", "commerce/orders", "via relay", true, -1};
    char *json = dm_h_audit_wait(&s_node, &w, T_AUDIT_MS);
    cr_assert(dm_h_audit_has(json, &w), "no relayed read of orders in: %s", json);
    free(json);
    dm_h_audit_want_t r = {s_consumer.hex, "relay", "commerce/orders", "relayed to owner", true,
                           -1};
    json = dm_h_audit_wait(&s_relay_node, &r, T_AUDIT_MS);
    cr_assert(dm_h_audit_has(json, &r), "the relay did not audit: %s", json);
    free(json);
}

/* Sends env on raw and returns the reply (never NULL: asserts). */
static Dm__Envelope *s_call(dm_h_raw_t *raw, Dm__Envelope *env)
{
    Dm__Envelope *rep = dm_h_raw_call(raw, env, T_REPLY_MS);
    cr_assert_not_null(rep, "no reply within %d ms", T_REPLY_MS);
    return rep;
}

/* The consumer's identity, and into grant its grant of sql to the relay
 * (a minute long): what meshq sends with a query it passes. */
static dm_identity_t *s_granted(const char *sql, dm_buf_t *grant)
{
    dm_identity_t *consumer = dm_h_person_identity(&s_consumer);
    dm_identity_t *relay = dm_h_person_identity(&s_relay);
    cr_assert(consumer && relay);
    cr_assert_eq(dm_grant_sign(consumer, dm_identity_public(relay), sql, strlen(sql),
                               dm_clock_wall_ms() + 60000, grant, NULL),
                 DM_OK);
    dm_identity_destroy(&relay);
    return consumer;
}

Test(fed_pass, a_passed_query_is_pulled_batch_by_batch_through_the_relay)
{
    const char *sql = "SELECT orderId FROM commerce.orders ORDER BY orderId";
    dm_buf_t grant = DM_BUF_INIT;
    dm_identity_t *consumer = s_granted(sql, &grant);
    dm_h_raw_t *raw = dm_h_raw_new(s_relay_node.addr, consumer);
    cr_assert_not_null(raw);
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__QueryReq q = DM__QUERY_REQ__INIT;
    q.sql = (char *)sql;
    q.max_rows = 1;
    q.grant.data = (uint8_t *)grant.data;
    q.grant.len = grant.len;
    dm_envelope_init(&env, 41, DM__ENVELOPE__BODY_QUERY_REQ, &q);
    Dm__Envelope *rep = s_call(raw, &env);
    int batches = 0, rows = 0;
    uint64_t cursor = 0;
    for (;;) {
        cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_QUERY_REP, "%s",
                     rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
        cr_assert_eq(rep->id, batches ? 42 : 41, "the reply's id is not the client's");
        cr_assert_leq(rep->query_rep->nrows, 1, "batch %d has %u rows", batches,
                      (unsigned)rep->query_rep->nrows);
        rows += (int)rep->query_rep->nrows;
        cr_assert(rep->query_rep->cursor != 0);
        cr_assert(!cursor || cursor == rep->query_rep->cursor, "the cursor changed");
        cursor = rep->query_rep->cursor;
        batches++;
        bool done = rep->query_rep->done;
        dm__envelope__free_unpacked(rep, NULL);
        if (done)
            break;
        cr_assert_lt(batches, 5, "more batches than rows");
        Dm__QueryNext qn = DM__QUERY_NEXT__INIT;
        qn.cursor = cursor;
        dm_envelope_init(&env, 42, DM__ENVELOPE__BODY_QUERY_NEXT, &qn);
        rep = s_call(raw, &env);
    }
    cr_assert_eq(rows, 4);
    cr_assert_geq(batches, 4, "%d batches of one row at most", batches);
    /* The cursor is gone once the query is over. */
    Dm__QueryNext qn = DM__QUERY_NEXT__INIT;
    qn.cursor = cursor;
    dm_envelope_init(&env, 43, DM__ENVELOPE__BODY_QUERY_NEXT, &qn);
    rep = s_call(raw, &env);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_ERROR);
    cr_assert_eq(rep->error->code, DM_ERR_NOTFOUND, "%s", rep->error->message);
    dm__envelope__free_unpacked(rep, NULL);
    dm_h_raw_destroy(&raw);
    dm_buf_free(&grant);
    dm_identity_destroy(&consumer);
}

/* The consumer's reads of commerce/orders via a relay (or direct ones)
 * that json, the owner's audit, lists. */
static size_t s_reads(const char *json, bool via_relay)
{
    size_t n = 0;
    for (const char *p = json ? strchr(json, '{') : NULL; p; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        if (!end)
            break;
        char rec[1024];
        snprintf(rec, sizeof rec, "%.*s", (int)(end - p), p);
        n += strstr(rec, s_consumer.hex) && strstr(rec, "\"read\"") &&
             strstr(rec, "commerce/orders") && !strstr(rec, "via relay") == !via_relay;
    }
    return n;
}

typedef struct {
    const dm_h_node_t *n;
    size_t want;
    char *json;
    bool via_relay; /* count the reads via a relay, not the direct ones */
} s_reads_t;

static bool s_reads_reach(void *ctx)
{
    s_reads_t *a = ctx;
    const char *args[] = {"audit", "--json", NULL};
    dm_h_result_t r = dm_h_run_admin("dmctl", a->n, args, NULL);
    free(a->json);
    a->json = r.out;
    free(r.err);
    return r.status == 0 && s_reads(a->json, a->via_relay) >= a->want;
}

/* One QueryReq of sql with max_rows to the owner as the consumer: its
 * first reply's rows (asserts a QueryRep). */
static uint32_t s_owner_query(dm_h_raw_t *raw, uint64_t id, const char *sql, uint32_t max_rows)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__QueryReq q = DM__QUERY_REQ__INIT;
    q.sql = (char *)sql;
    q.max_rows = max_rows;
    dm_envelope_init(&env, id, DM__ENVELOPE__BODY_QUERY_REQ, &q);
    Dm__Envelope *rep = s_call(raw, &env);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_QUERY_REP, "%s: %s", sql,
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    cr_assert_eq(rep->id, id);
    uint32_t rows = rep->query_rep->nrows;
    dm__envelope__free_unpacked(rep, NULL);
    return rows;
}

/* The owner's loop answers a point lookup itself and hands a query of more
 * than one batch to a worker opened (query_pool_inline.c): either way the
 * read is decided and audited once. */
Test(fed_pass, the_owners_short_and_handed_over_queries_are_audited_once)
{
    dm_identity_t *consumer = dm_h_person_identity(&s_consumer);
    cr_assert_not_null(consumer);
    dm_h_raw_t *raw = dm_h_raw_new(s_node.addr, consumer);
    cr_assert_not_null(raw);
    s_reads_t a = {&s_node, 0, NULL, false};
    (void)s_reads_reach(&a);
    size_t before = s_reads(a.json, false);
    cr_assert_eq(s_owner_query(raw, 51, "SELECT email FROM commerce.orders WHERE orderId = 'o2'", 0),
                 1);
    cr_assert_eq(s_owner_query(raw, 52, "SELECT orderId FROM commerce.orders", 1), 1,
                 "the first of four rows in batches of one");
    a.want = before + 2;
    cr_assert(dm_h_wait_until(s_reads_reach, &a, T_AUDIT_MS), "the reads were not audited: %s",
              a.json);
    cr_assert_eq(s_reads(a.json, false), before + 2, "a read audited twice: %s", a.json);
    free(a.json);
    dm_h_raw_destroy(&raw);
    dm_identity_destroy(&consumer);
}

#define T_LOOP "sent on by the relay's node loop"
#define T_LOOKUP "SELECT orderId FROM commerce.orders WHERE orderId = 'o2'"
#define T_CANCEL_MS 4000 /* the owner's time limit is 30 s */

/* meshq's lookup at the relay: its exit status and whether the relay's
 * loop sent it on (asserts the row when it succeeded). */
static int s_lookup(bool *on_loop)
{
    const char *q[] = {"query", T_LOOKUP, "--format", "csv", "--explain", "--timeout", "8", NULL};
    dm_h_result_t r = dm_h_run_as("meshq", s_consumer.file, &s_relay_node, q, NULL);
    int status = r.status;
    *on_loop = strstr(r.err, T_LOOP) != NULL;
    if (status == 0)
        cr_assert_str_eq(r.out, "orderId\no2\n", "%s", r.err);
    dm_h_result_free(&r);
    return status;
}

/* A lookup in the consumer's kept session goes on from the relay's loop;
 * a query held there whose client disconnects is cancelled at the owner
 * (which runs one query of the relay's at a time: the next lookup would
 * wait for the first to reach the owner's 30 s limit) and leaves the
 * loop (which holds one query per client). */
Test(fed_pass, the_relays_loop_sends_lookups_on_and_a_gone_client_cancels_at_the_owner)
{
    bool on_loop = false;
    cr_assert_eq(s_lookup(&on_loop), 0);
    for (int i = 0; i < 3 && !on_loop; i++) /* a worker's query puts its connection back */
        cr_assert_eq(s_lookup(&on_loop), 0);
    cr_assert(on_loop, "the relay's loop never sent a lookup on");
    /* 4^16 rows to count: runs to the owner's limit unless cancelled. */
    char sql[1024] = "SELECT count(*) FROM commerce.orders t0";
    for (int i = 1; i < 16; i++)
        snprintf(sql + strlen(sql), sizeof sql - strlen(sql), ", commerce.orders t%d", i);
    dm_buf_t grant = DM_BUF_INIT;
    dm_identity_t *consumer = s_granted(sql, &grant);
    s_reads_t a = {&s_node, 0, NULL, true};
    (void)s_reads_reach(&a);
    a.want = s_reads(a.json, true) + 1;
    dm_h_raw_t *raw = dm_h_raw_new(s_relay_node.addr, consumer);
    cr_assert_not_null(raw);
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__QueryReq q = DM__QUERY_REQ__INIT;
    q.sql = sql;
    q.grant.data = (uint8_t *)grant.data;
    q.grant.len = grant.len;
    dm_envelope_init(&env, 61, DM__ENVELOPE__BODY_QUERY_REQ, &q);
    cr_assert(dm_h_raw_send_env(raw, &env));
    cr_assert(dm_h_wait_until(s_reads_reach, &a, T_AUDIT_MS),
              "the owner never started the long query: %s", a.json);
    dm_h_raw_destroy(&raw); /* the client goes away */
    int64_t start = dm_clock_mono_ms();
    cr_assert_eq(s_lookup(&on_loop), 0, "the owner still runs the abandoned query");
    cr_assert_lt(dm_clock_mono_ms() - start, T_CANCEL_MS, "the owner ran the abandoned query on");
    for (int i = 0; i < 3 && !on_loop; i++)
        cr_assert_eq(s_lookup(&on_loop), 0);
    cr_assert(on_loop, "the relay's loop still holds the abandoned query");
    free(a.json);
    dm_buf_free(&grant);
    dm_identity_destroy(&consumer);
}
