/* test_node_audit.c: the node's audit queue (suite "node_audit",
 * node/server/node_audit.c): records queued from several threads reach the
 * store at a flush, a full queue never blocks and its losses are written as
 * one marker record, a flush before its time writes nothing, and refusals
 * past the rate limits are summed up in one record per caller (naming it)
 * while allowed decisions are all kept, one caller's flood leaves another's
 * refusals recorded, and callers beyond the table share one summary; with
 * the flusher thread started the loop's periodic call writes nothing and the
 * thread writes the queue when due. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "server/node_priv.h"

#define S_THREADS 4
#define S_PER_THREAD 500

static char s_dir[128];
static dm_node_t s_node;
static dm_node_opts_t s_opts;

static void s_init(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "node_audit"));
    memset(&s_node, 0, sizeof s_node);
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_node.store, NULL), DM_OK);
    cr_assert_eq(dm_node__audit_open(&s_node, &s_opts, NULL), DM_OK);
    s_node.audit_burst = 0; /* the queue's own tests: no rate limit */
}

static void s_fini(void)
{
    dm_node__audit_close(&s_node);
    dm_store_destroy(&s_node.store);
    dm_t_rmdir(s_dir);
}

TestSuite(node_audit, .init = s_init, .fini = s_fini);

static void s_one(int i, bool allowed)
{
    dm_rpc_caller_t caller = {.verified = true};
    caller.key[0] = (uint8_t)i;
    dm_node__audit(&s_node, &caller, allowed, "read", "commerce", "orders",
                   allowed ? "owner: public" : "owner: restricted, not a reader", 3);
}

static uint64_t s_count(void)
{
    uint64_t n = 0;
    cr_assert_eq(dm_audit_count(s_node.store, &n, NULL), DM_OK);
    return n;
}

/* The newest stored record. */
static dm_audit_record_t s_last(void)
{
    dm_audit_record_t *recs = NULL, last;
    size_t n = 0;
    bool more = true;
    uint64_t after = 0;
    memset(&last, 0, sizeof last);
    while (more) {
        cr_assert_eq(dm_audit_list(s_node.store, 0, after, 0, &recs, &n, &more, NULL), DM_OK);
        if (n)
            last = recs[n - 1];
        after = last.seq;
        free(recs);
        recs = NULL;
    }
    return last;
}

static void *s_writer(void *arg)
{
    for (int i = 0; i < S_PER_THREAD; i++)
        s_one((int)(intptr_t)arg, i % 2 == 0);
    return NULL;
}

Test(node_audit, records_from_many_threads_are_stored_at_a_flush)
{
    pthread_t t[S_THREADS];
    for (intptr_t i = 0; i < S_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, s_writer, (void *)i), 0);
    for (int i = 0; i < S_THREADS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(s_count(), 0, "written before a flush");
    dm_node__audit_flush(&s_node, true);
    cr_assert_eq(s_count(), S_THREADS * S_PER_THREAD);
    dm_audit_record_t r = s_last();
    cr_expect_str_eq(r.action, "read");
    cr_expect_str_eq(r.product, "commerce/orders");
    cr_expect_eq(r.policy_version, 3);
    cr_expect(r.verified);
}

Test(node_audit, a_full_queue_drops_and_says_how_many_in_one_record)
{
    for (int i = 0; i < DM_NODE_AUDIT_QUEUE + 10; i++)
        s_one(i, false);
    dm_node__audit_flush(&s_node, true);
    cr_assert_eq(s_count(), DM_NODE_AUDIT_QUEUE + 1);
    dm_audit_record_t r = s_last();
    cr_expect_str_eq(r.action, "audit");
    cr_expect(strstr(r.rule, "10 audit records dropped"), "%s", r.rule);
    /* The queue is empty again: the next records are stored, no marker. */
    s_one(1, true);
    dm_node__audit_flush(&s_node, true);
    cr_assert_eq(s_count(), DM_NODE_AUDIT_QUEUE + 2);
    cr_expect_str_eq(s_last().action, "read");
}

Test(node_audit, a_flush_before_its_time_waits)
{
    s_node.audit_next_flush = dm_clock_mono_ms() + 60000; /* not due for a minute */
    s_one(1, true);
    dm_node__audit_flush(&s_node, false);
    cr_assert_eq(s_count(), 0);
    dm_node__audit_close(&s_node); /* closing writes what is queued */
    cr_assert_eq(s_count(), 1);
    cr_assert_eq(dm_node__audit_open(&s_node, &s_opts, NULL), DM_OK);
}

/* Turns the refusal buckets on: the node-wide one with a full burst, and
 * the per-caller ones (filled when a caller is first seen). */
static void s_limit(uint64_t rate, uint64_t burst, uint64_t caller_rate, uint64_t caller_burst)
{
    s_node.audit_rate = rate;
    s_node.audit_burst = burst;
    s_node.audit_tokens_milli = burst * 1000;
    s_node.audit_refill_ms = dm_clock_mono_ms();
    s_node.audit_caller_rate = caller_rate;
    s_node.audit_caller_burst = caller_burst;
}

/* The stored records, oldest first (*n of them); free() them. */
static dm_audit_record_t *s_all(size_t *n)
{
    dm_audit_record_t *all = NULL, *recs = NULL;
    size_t k = 0, got = 0;
    bool more = true;
    uint64_t after = 0;
    while (more) {
        cr_assert_eq(dm_audit_list(s_node.store, 0, after, 0, &recs, &got, &more, NULL), DM_OK);
        all = realloc(all, (k + got + 1) * sizeof *all);
        cr_assert_not_null(all);
        memcpy(all + k, recs, got * sizeof *recs);
        k += got;
        after = got ? recs[got - 1].seq : after;
        free(recs);
        recs = NULL;
    }
    *n = k;
    return all;
}

Test(node_audit, refusals_past_the_rate_limit_are_summed_up_in_one_record_naming_the_caller)
{
    s_limit(DM_NODE_AUDIT_REFUSALS_PER_S, DM_NODE_AUDIT_REFUSALS_BURST,
            DM_NODE_AUDIT_CALLER_PER_S, DM_NODE_AUDIT_CALLER_BURST);
    int64_t t0 = dm_clock_mono_ms();
    for (int i = 0; i < 1000; i++)
        s_one(7, false);
    int64_t took = dm_clock_mono_ms() - t0;
    dm_node__audit_flush(&s_node, true);
    uint64_t n = s_count();
    /* The caller's burst, what its rate refilled meanwhile, and one summary. */
    uint64_t most = DM_NODE_AUDIT_CALLER_BURST + 1 +
                    (uint64_t)(took + 1) * DM_NODE_AUDIT_CALLER_PER_S / 1000 + 1;
    cr_assert(n >= DM_NODE_AUDIT_CALLER_BURST + 1 && n <= most, "%" PRIu64 " records", n);
    dm_audit_record_t r = s_last();
    cr_expect_str_eq(r.action, "refusals");
    cr_expect_eq(r.caller[0], 7, "the summary names the caller");
    cr_expect(r.verified);
    char want[64];
    snprintf(want, sizeof want, "%" PRIu64 " refusals not recorded individually",
             1000 - (n - 1));
    cr_expect(strstr(r.rule, want), "%s (want %s)", r.rule, want);
    cr_expect_not(r.allowed);
}

Test(node_audit, one_flooding_caller_does_not_suppress_another_callers_refusal)
{
    s_limit(DM_NODE_AUDIT_REFUSALS_PER_S, DM_NODE_AUDIT_REFUSALS_BURST,
            DM_NODE_AUDIT_CALLER_PER_S, DM_NODE_AUDIT_CALLER_BURST);
    for (int i = 0; i < 5000; i++)
        s_one(1, false); /* the flood */
    s_one(2, false);     /* another caller's one refusal */
    dm_node__audit_flush(&s_node, true);
    size_t n = 0, other = 0, summaries = 0;
    dm_audit_record_t *all = s_all(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i].action, "read") == 0 && all[i].caller[0] == 2)
            other++;
        if (strcmp(all[i].action, "refusals") == 0) {
            summaries++;
            cr_expect_eq(all[i].caller[0], 1, "only the flooding caller is summed up");
        }
    }
    free(all);
    cr_expect_eq(other, 1, "the other caller's refusal is recorded");
    cr_expect_eq(summaries, 1);
}

Test(node_audit, callers_beyond_the_table_share_one_summary)
{
    s_limit(1000000, 1000000, 1, 1);
    for (int i = 0; i < DM_NODE_AUDIT_CALLERS; i++) { /* fill the table, each with a summary due */
        dm_rpc_caller_t c = {.verified = true};
        memcpy(c.key, &i, sizeof i);
        for (int k = 0; k < 2; k++)
            dm_node__audit(&s_node, &c, false, "read", "commerce", "orders", "owner: x", 3);
    }
    dm_rpc_caller_t late = {.verified = false};
    memset(late.key, 0xee, sizeof late.key);
    for (int k = 0; k < 3; k++)
        dm_node__audit(&s_node, &late, false, "read", "commerce", "orders", "owner: x", 3);
    dm_node__audit_flush(&s_node, true);
    size_t n = 0, shared = 0, named = 0;
    dm_audit_record_t *all = s_all(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i].action, "refusals") != 0)
            continue;
        if (strstr(all[i].rule, "of callers beyond the table")) {
            shared++;
            cr_expect(strstr(all[i].rule, "2 refusals of callers"), "%s", all[i].rule);
        } else {
            named++;
        }
    }
    free(all);
    cr_expect_eq(named, DM_NODE_AUDIT_CALLERS);
    cr_expect_eq(shared, 1);
}

Test(node_audit, allowed_decisions_are_never_suppressed)
{
    s_limit(DM_NODE_AUDIT_REFUSALS_PER_S, 5, DM_NODE_AUDIT_CALLER_PER_S,
            DM_NODE_AUDIT_CALLER_BURST);
    for (int i = 0; i < 50; i++)
        s_one(3, false); /* the node-wide bucket is empty after the first five */
    for (int i = 0; i < 300; i++)
        s_one(i, true);
    dm_node__audit_flush(&s_node, true);
    uint64_t n = s_count();
    cr_assert(n >= 5 + 300 + 1 && n <= 5 + 300 + 1 + 5, "%" PRIu64 " records", n);
    cr_expect_str_eq(s_last().action, "refusals");
    /* Nothing suppressed since: no second summary. */
    s_one(1, true);
    dm_node__audit_flush(&s_node, true);
    cr_assert_eq(s_count(), n + 1);
    cr_expect_str_eq(s_last().action, "read");
}

Test(node_audit, the_flusher_thread_writes_the_queue_without_the_loop)
{
    cr_assert_eq(dm_node__audit_start(&s_node, NULL), DM_OK);
    s_node.audit_next_flush = dm_clock_mono_ms() + 60000; /* the loop's call must not flush */
    s_one(1, true);
    dm_node__audit_flush(&s_node, false);
    cr_assert_eq(s_count(), 0, "the loop's periodic call flushed itself");
    pthread_mutex_lock(&s_node.audit_lock);
    s_node.audit_next_flush = dm_clock_mono_ms(); /* due now */
    pthread_cond_signal(&s_node.audit_wake);
    pthread_mutex_unlock(&s_node.audit_lock);
    int64_t deadline = dm_clock_mono_ms() + 5000;
    while (s_count() == 0 && dm_clock_mono_ms() < deadline) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    cr_assert_eq(s_count(), 1, "the flusher did not write the record when due");
    /* A forced flush (an audit request) still writes at once. */
    s_one(2, true);
    dm_node__audit_flush(&s_node, true);
    cr_assert_eq(s_count(), 2);
}
