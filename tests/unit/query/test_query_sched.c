/* test_query_sched.c: the SQL pool's policy (node/query/query_sched.h) on its
 * own: fair turns, caps per key and per node, the queue deadline, the
 * short lane, idle cursors, eviction, closes and disconnects. Times are
 * made up; requests and queries are tokens. */
#include <criterion/criterion.h>
#include <string.h>

#include "query/query_sched.h"

#define T0 1000000 /* an arbitrary start time, ms */

static dm_query_sched_t *s_new(unsigned general, bool lane, unsigned max_cursors)
{
    dm_query_sched_limits_t l = {.general = general, .short_lane = lane, .max_cursors = max_cursors,
                            .lifetime_ms = 30000};
    dm_query_sched_t *s = NULL;
    cr_assert_eq(dm_query_sched_new(&l, &s), DM_OK);
    return s;
}

/* Submits a request of key (owner = key, fd) for cursor (0: new). */
static dm_err s_submit(dm_query_sched_t *s, const char *key, int fd, uint64_t cursor, void *data,
                       int64_t now, dm_buf_t *why)
{
    dm_query_sched_req_t r = {.key = key, .owner = key, .owner_len = strlen(key), .fd = fd,
                         .cursor = cursor, .data = data};
    return dm_query_sched_submit(s, &r, now, why);
}

static void *s_take(dm_query_sched_t *s, unsigned w, int64_t now)
{
    uint64_t c;
    void *q;
    return dm_query_sched_take(s, w, now, &c, &q);
}

/* Opens a cursor id for key on worker w (a request taken and kept open). */
static void s_open_cursor(dm_query_sched_t *s, const char *key, int fd, unsigned w, uint64_t id,
                          void *query, int64_t now)
{
    static int token;
    cr_assert_eq(s_submit(s, key, fd, 0, &token, now, NULL), DM_OK);
    cr_assert_eq(s_take(s, w, now), &token);
    dm_query_sched_opened(s, w, id, query, now);
    cr_assert_not(dm_query_sched_finish(s, w, false, now));
}

/* Counts pending actions of kind (and reason, 0: any); drains them all. */
static int s_count(dm_query_sched_t *s, dm_query_sched_act_kind kind, dm_query_sched_reason reason)
{
    dm_query_sched_act_t a;
    int n = 0;
    while (dm_query_sched_action(s, &a))
        n += a.kind == kind && (!reason || a.reason == reason);
    return n;
}

Test(query_sched, clients_take_turns)
{
    dm_query_sched_t *s = s_new(1, false, 0);
    int a1, a2, a3, b1;
    cr_assert_eq(s_submit(s, "a", 1, 0, &a1, T0, NULL), DM_OK);
    cr_assert_eq(s_submit(s, "a", 1, 0, &a2, T0, NULL), DM_OK);
    cr_assert_eq(s_submit(s, "a", 1, 0, &a3, T0, NULL), DM_OK);
    cr_assert_eq(s_submit(s, "b", 2, 0, &b1, T0 + 1, NULL), DM_OK);
    cr_assert_eq(s_take(s, 0, T0), &a1);
    dm_query_sched_finish(s, 0, true, T0);
    cr_assert_eq(s_take(s, 0, T0), &b1, "b waited behind a's burst");
    dm_query_sched_finish(s, 0, true, T0);
    cr_assert_eq(s_take(s, 0, T0), &a2);
    dm_query_sched_destroy(&s);
}

Test(query_sched, a_request_that_waited_too_long_is_refused_busy)
{
    dm_query_sched_t *s = s_new(1, false, 0);
    int a, b;
    cr_assert_eq(s_submit(s, "a", 1, 0, &a, T0, NULL), DM_OK);
    cr_assert_eq(s_take(s, 0, T0), &a); /* runs long */
    cr_assert_eq(s_submit(s, "b", 2, 0, &b, T0, NULL), DM_OK);
    dm_query_sched_tick(s, T0 + DM_QUERY_SCHED_QUEUE_WAIT_MS - 1);
    cr_assert_eq(s_count(s, DM_QUERY_SCHED_REFUSE, 0), 0);
    dm_query_sched_tick(s, T0 + DM_QUERY_SCHED_QUEUE_WAIT_MS);
    dm_query_sched_act_t act;
    cr_assert(dm_query_sched_action(s, &act));
    cr_assert_eq(act.kind, DM_QUERY_SCHED_REFUSE);
    cr_assert_eq(act.reason, DM_QUERY_SCHED_WAITED);
    cr_assert_eq(act.ptr, &b);
    cr_assert_eq(dm_query_sched_queued(s), 0);
    char text[DM_QUERY_SCHED_WHY_MAX];
    dm_query_sched_reason_text(s, act.reason, text, sizeof text);
    cr_assert(strstr(text, "busy") && strstr(text, "not started"), "%s", text);
    dm_query_sched_destroy(&s);
}

Test(query_sched, a_client_over_its_queue_cap_is_told_busy_naming_it)
{
    dm_query_sched_t *s = s_new(1, false, 0);
    int t;
    for (int i = 0; i < DM_QUERY_SCHED_KEY_QUEUED; i++)
        cr_assert_eq(s_submit(s, "a", 1, 0, &t, T0, NULL), DM_OK);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(s_submit(s, "a", 1, 0, &t, T0, &why), DM_ERR_BUSY);
    cr_assert(strstr(why.data, "busy") && strstr(why.data, "8 query requests waiting"), "%s",
              why.data);
    dm_buf_free(&why);
    cr_assert_eq(s_submit(s, "b", 2, 0, &t, T0, NULL), DM_OK, "another client is not capped");
    dm_query_sched_shutdown(s);
    cr_assert_eq(s_count(s, DM_QUERY_SCHED_DROP, DM_QUERY_SCHED_STOPPING), DM_QUERY_SCHED_KEY_QUEUED + 1);
    dm_query_sched_destroy(&s);
}

Test(query_sched, a_client_over_its_cursor_cap_is_told_busy_naming_it)
{
    dm_query_sched_t *s = s_new(1, false, 0);
    int q;
    for (uint64_t i = 1; i <= DM_QUERY_SCHED_KEY_CURSORS; i++)
        s_open_cursor(s, "a", 1, 0, i, &q, T0);
    cr_assert_eq(dm_query_sched_cursors(s), DM_QUERY_SCHED_KEY_CURSORS);
    dm_buf_t why = DM_BUF_INIT;
    int t;
    cr_assert_eq(s_submit(s, "a", 1, 0, &t, T0, &why), DM_ERR_BUSY);
    cr_assert(strstr(why.data, "4 open queries"), "%s", why.data);
    cr_assert_eq(s_submit(s, "a", 1, 1, &t, T0, &why), DM_OK, "pulls are still welcome");
    dm_buf_free(&why);
    dm_query_sched_destroy(&s);
}

Test(query_sched, one_client_cannot_hold_every_general_worker)
{
    dm_query_sched_t *s = s_new(2, false, 0);
    int a1, a2, b1;
    cr_assert_eq(s_submit(s, "a", 1, 0, &a1, T0, NULL), DM_OK);
    cr_assert_eq(s_submit(s, "a", 1, 0, &a2, T0, NULL), DM_OK);
    cr_assert_eq(s_take(s, 0, T0), &a1);
    cr_assert_null(s_take(s, 1, T0), "one key ran on both workers");
    cr_assert_eq(s_submit(s, "b", 2, 0, &b1, T0, NULL), DM_OK);
    cr_assert_eq(s_take(s, 1, T0), &b1);
    dm_query_sched_destroy(&s);
}

Test(query_sched, the_short_lane_works_only_while_the_general_workers_run_long)
{
    dm_query_sched_t *s = s_new(1, true, 0);
    int a, b, c;
    cr_assert_eq(s_submit(s, "a", 1, 0, &a, T0, NULL), DM_OK);
    cr_assert_eq(s_take(s, 0, T0), &a);
    cr_assert_eq(s_submit(s, "b", 2, 0, &b, T0, NULL), DM_OK);
    cr_assert_eq(s_submit(s, "c", 3, 0, &c, T0 + 1, NULL), DM_OK);
    cr_assert_null(s_take(s, 1, T0 + DM_QUERY_SCHED_LONG_MS - 1), "the lane took work too early");
    cr_assert_eq(s_take(s, 1, T0 + DM_QUERY_SCHED_LONG_MS), &c, "the lane takes the newest");
    dm_query_sched_destroy(&s);
}

Test(query_sched, the_short_lane_gives_way_past_its_bound_only_when_others_wait)
{
    dm_query_sched_t *s = s_new(1, true, 0);
    int a, b, c;
    int64_t t = T0 + DM_QUERY_SCHED_LONG_MS;
    cr_assert_eq(s_submit(s, "a", 1, 0, &a, T0, NULL), DM_OK);
    cr_assert_eq(s_take(s, 0, T0), &a);
    cr_assert_eq(s_submit(s, "b", 2, 0, &b, T0, NULL), DM_OK);
    cr_assert_eq(s_take(s, 1, t), &b);
    dm_query_sched_tick(s, t + DM_QUERY_SCHED_SHORT_MS);
    cr_assert_eq(s_count(s, DM_QUERY_SCHED_CANCEL, 0), 0, "nobody waits: b may run on");
    cr_assert_eq(s_submit(s, "c", 3, 0, &c, t + DM_QUERY_SCHED_SHORT_MS, NULL), DM_OK);
    dm_query_sched_tick(s, t + DM_QUERY_SCHED_SHORT_MS);
    dm_query_sched_act_t act;
    cr_assert(dm_query_sched_action(s, &act));
    cr_assert_eq(act.kind, DM_QUERY_SCHED_CANCEL);
    cr_assert_eq(act.worker, 1);
    cr_assert_eq(act.reason, DM_QUERY_SCHED_SHORT);
    cr_assert_eq(dm_query_sched_cancelled(s, 1), DM_QUERY_SCHED_SHORT);
    dm_query_sched_finish(s, 1, true, t + DM_QUERY_SCHED_SHORT_MS);
    cr_assert_eq(s_take(s, 1, t + DM_QUERY_SCHED_SHORT_MS), &c);
    dm_query_sched_destroy(&s);
}

Test(query_sched, an_unpulled_cursor_is_closed_when_idle)
{
    dm_query_sched_t *s = s_new(1, false, 0);
    int q;
    s_open_cursor(s, "a", 1, 0, 7, &q, T0);
    dm_query_sched_tick(s, T0 + DM_QUERY_SCHED_CURSOR_IDLE_MS - 1);
    cr_assert_eq(s_count(s, DM_QUERY_SCHED_CLOSE, 0), 0);
    dm_query_sched_tick(s, T0 + DM_QUERY_SCHED_CURSOR_IDLE_MS);
    dm_query_sched_act_t act;
    cr_assert(dm_query_sched_action(s, &act));
    cr_assert_eq(act.kind, DM_QUERY_SCHED_CLOSE);
    cr_assert_eq(act.ptr, &q);
    cr_assert_eq(dm_query_sched_cursors(s), 0);
    dm_buf_t why = DM_BUF_INIT;
    int t;
    cr_assert_eq(s_submit(s, "a", 1, 7, &t, T0, &why), DM_ERR_NOTFOUND);
    cr_assert(strstr(why.data, "no open query 7"), "%s", why.data);
    dm_buf_free(&why);
    dm_query_sched_destroy(&s);
}

Test(query_sched, pulls_wait_for_their_own_cursor_without_a_deadline)
{
    dm_query_sched_t *s = s_new(2, false, 0);
    int q, p1, p2;
    s_open_cursor(s, "a", 1, 0, 7, &q, T0);
    cr_assert_eq(s_submit(s, "a", 1, 7, &p1, T0, NULL), DM_OK);
    cr_assert_eq(s_submit(s, "a", 1, 7, &p2, T0, NULL), DM_OK);
    uint64_t cur;
    void *lent;
    cr_assert_eq(dm_query_sched_take(s, 0, T0, &cur, &lent), &p1);
    cr_assert_eq(cur, 7);
    cr_assert_eq(lent, &q);
    cr_assert_null(s_take(s, 1, T0), "two workers on one cursor");
    dm_query_sched_tick(s, T0 + 2 * DM_QUERY_SCHED_QUEUE_WAIT_MS); /* a slow batch */
    cr_assert_eq(s_count(s, DM_QUERY_SCHED_REFUSE, 0), 0, "a pull behind its own query was refused");
    cr_assert_not(dm_query_sched_finish(s, 0, false, T0 + 2 * DM_QUERY_SCHED_QUEUE_WAIT_MS));
    cr_assert_eq(s_take(s, 1, T0 + 2 * DM_QUERY_SCHED_QUEUE_WAIT_MS), &p2);
    cr_assert(dm_query_sched_finish(s, 1, true, T0 + 2 * DM_QUERY_SCHED_QUEUE_WAIT_MS),
              "the worker that saw the end closes the query");
    cr_assert_eq(dm_query_sched_cursors(s), 0);
    dm_query_sched_destroy(&s);
}

Test(query_sched, a_full_cursor_table_evicts_an_idle_cursor)
{
    dm_query_sched_t *s = s_new(1, false, 2);
    int q1, q2, t;
    s_open_cursor(s, "a", 1, 0, 1, &q1, T0);
    s_open_cursor(s, "b", 2, 0, 2, &q2, T0 + 10);
    cr_assert_eq(s_submit(s, "c", 3, 0, &t, T0 + 20, NULL), DM_OK);
    cr_assert_null(s_take(s, 0, T0 + 20), "evicted a cursor in use");
    cr_assert_eq(s_take(s, 0, T0 + DM_QUERY_SCHED_CURSOR_EVICT_MS), &t);
    dm_query_sched_act_t act;
    cr_assert(dm_query_sched_action(s, &act));
    cr_assert_eq(act.kind, DM_QUERY_SCHED_CLOSE);
    cr_assert_eq(act.ptr, &q1, "not the cursor idle longest");
    dm_query_sched_destroy(&s);
}

Test(query_sched, only_the_owner_closes_and_a_busy_cursor_closes_when_its_worker_ends)
{
    dm_query_sched_t *s = s_new(1, false, 0);
    int q, p;
    s_open_cursor(s, "a", 1, 0, 7, &q, T0);
    cr_assert_eq(dm_query_sched_close(s, 7, "b", 1, T0), DM_ERR_NOTFOUND);
    cr_assert_eq(s_submit(s, "a", 1, 7, &p, T0, NULL), DM_OK);
    cr_assert_eq(s_take(s, 0, T0), &p);
    cr_assert_eq(dm_query_sched_close(s, 7, "a", 1, T0), DM_OK);
    cr_assert_eq(s_count(s, DM_QUERY_SCHED_CANCEL, DM_QUERY_SCHED_CLOSED), 1, "the running pull goes on");
    cr_assert(dm_query_sched_finish(s, 0, false, T0), "the worker must close it");
    cr_assert_eq(dm_query_sched_cursors(s), 0);
    dm_query_sched_destroy(&s);
}

Test(query_sched, a_disconnect_drops_cancels_and_closes_only_that_clients_work)
{
    dm_query_sched_t *s = s_new(2, false, 0);
    int q, other, run, wait1, wait2;
    s_open_cursor(s, "a", 5, 0, 7, &q, T0);
    s_open_cursor(s, "b", 6, 0, 8, &other, T0);
    cr_assert_eq(s_submit(s, "c", 5, 0, &run, T0, NULL), DM_OK);
    cr_assert_eq(s_take(s, 1, T0), &run);
    cr_assert_eq(s_submit(s, "c", 5, 0, &wait1, T0, NULL), DM_OK);
    cr_assert_eq(s_submit(s, "d", 9, 0, &wait2, T0, NULL), DM_OK);
    s_count(s, 0, 0);
    dm_query_sched_disconnect(s, 5);
    int drops = 0, cancels = 0, closes = 0;
    dm_query_sched_act_t act;
    while (dm_query_sched_action(s, &act)) {
        cr_assert_eq(act.reason, DM_QUERY_SCHED_GONE);
        drops += act.kind == DM_QUERY_SCHED_DROP && act.ptr == &wait1;
        cancels += act.kind == DM_QUERY_SCHED_CANCEL && act.worker == 1;
        closes += act.kind == DM_QUERY_SCHED_CLOSE && act.ptr == &q;
    }
    cr_assert_eq(drops, 1);
    cr_assert_eq(cancels, 1);
    cr_assert_eq(closes, 1);
    cr_assert_eq(dm_query_sched_cursors(s), 1, "another client's cursor went too");
    cr_assert_eq(dm_query_sched_queued(s), 1, "another client's request went too");
    dm_query_sched_destroy(&s);
}

/* A pull whose query ended while it waited (clients keep two pulls in
 * flight) is no new query: finishing it must not uncount an opening it
 * never counted, which wrapped the node's count and refused every later
 * query as busy. */
Test(query_sched, a_pull_of_an_ended_query_leaves_the_node_open_for_new_ones)
{
    dm_query_sched_t *s = s_new(1, false, 0);
    int q, p1, p2, t;
    s_open_cursor(s, "a", 1, 0, 7, &q, T0);
    cr_assert_eq(s_submit(s, "a", 1, 7, &p1, T0, NULL), DM_OK);
    cr_assert_eq(s_submit(s, "a", 1, 7, &p2, T0, NULL), DM_OK);
    cr_assert_eq(s_take(s, 0, T0), &p1);
    cr_assert(dm_query_sched_finish(s, 0, true, T0), "the worker that saw the end closes it");
    s_count(s, DM_QUERY_SCHED_CLOSE, 0);
    for (int round = 0; round < 3; round++) {
        void *got = s_take(s, 0, T0 + 1 + round);
        if (got == &p2) /* the late pull runs and finds nothing */
            cr_assert_not(dm_query_sched_finish(s, 0, false, T0 + 1 + round));
    }
    cr_assert_eq(s_submit(s, "b", 2, 0, &t, T0 + 10, NULL), DM_OK);
    cr_assert_eq(s_take(s, 0, T0 + 10), &t, "a new query waits behind a miscounted opening");
    dm_query_sched_destroy(&s);
}
