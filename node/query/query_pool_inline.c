/* query_pool_inline.c: a short query answered on the node loop, without
 * the hand-off to a worker and back (docs/architecture.md "Threads").
 *
 * Each hand-off between threads costs a wake-up: on the machines measured
 * (a paravirtualised VM), a point lookup's CPU went mostly to the kernel's
 * thread switches and the syscalls around them, not to SQLite (loop ->
 * worker -> outbox -> loop was two of the four switches a lookup took on
 * the node). So the loop runs a new query itself when it can show it is
 * short: it names only this node's products (nothing waits on the
 * network; a pass-through or a remote scan always goes to a worker), its
 * SQL is small, and its whole result, one batch, comes within
 * DM_QUERY_INLINE_BUDGET_US of stepping (dm_query_fetch_within). One that
 * would take longer is handed to a worker opened, its statement back at
 * its start: decided and audited once, run once to its end there.
 *
 * Which: a query of at least one product, none of another node, with
 * no SQL function call of the client's (one call of instr, like or replace
 * over long strings can run for seconds between two checks of the
 * deadline; a mask view's own functions are the engine's and bounded),
 * its SQL at most DM_QUERY_INLINE_SQL_MAX bytes; tried only while a
 * general worker is idle and its client has nothing queued or running
 * (so the scheduler's caps and fairness stand).
 *
 * The bound on the loop: a query's open (registry, decision, prepare of at
 * most DM_QUERY_INLINE_SQL_MAX bytes, a pooled or new connection) plus the
 * budget, the deadline checked every DM_QUERY_PROGRESS_OPS_LOOP VM
 * instructions, ~0.3 ms; and a token bucket of DM_QUERY_INLINE_SHARE_US
 * per DM_QUERY_INLINE_WINDOW_MS (half the loop: one client asking one
 * lookup after another uses ~40%): what a query overran is paid back by
 * the windows after it, and while the bucket is empty requests go to the
 * workers as before. So the loop's timers run late by about a window
 * whatever the clients send, against membership's 200 ms probe timeout
 * and 400 ms interval.
 *
 * What a worker guarantees holds here: the same access decision (audited),
 * masks, row filters and sandbox (the same engine calls); the query's own
 * time limit; the latency record. Cancel on disconnect has nothing to
 * cancel: the answer is sent before the loop reads the next event.
 *
 * A relay's pass-through the loop serves itself (node_relay_loop.c) takes
 * its time from the same bucket (dm_query_pool_loop_admit, _spent). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "query/query_pool_priv.h"

#define DM_QUERY_INLINE_BUDGET_US 200   /* a query's stepping on the loop, at most */
#define DM_QUERY_INLINE_SQL_MAX 2048    /* bytes of SQL the loop prepares, at most */
#define DM_QUERY_INLINE_WINDOW_MS 10    /* the loop's share is counted per window */
#define DM_QUERY_INLINE_SHARE_US 5000   /* of which this much may go to queries */
#define S_NS_PER_US INT64_C(1000)
#define S_NS_PER_MS INT64_C(1000000)

/* Whether the loop may spend time on a query now: a token bucket, each
 * window that passed paying back one share of what was spent, so a query
 * that overran (a slow prepare, a page fault storm) is paid for by the
 * windows after it, not forgotten at the next one. */
static bool s_share_left(dm_query_pool_t *self, int64_t now_ns)
{
    const int64_t window = DM_QUERY_INLINE_WINDOW_MS * S_NS_PER_MS;
    const int64_t share = DM_QUERY_INLINE_SHARE_US * S_NS_PER_US;
    int64_t windows = (now_ns - self->inline_window_ns) / window;
    if (windows > 0) {
        self->inline_window_ns = windows > 1000 ? now_ns : self->inline_window_ns + windows * window;
        int64_t paid = windows > 1000 ? self->inline_spent_ns : windows * share;
        self->inline_spent_ns = self->inline_spent_ns > paid ? self->inline_spent_ns - paid : 0;
    }
    return self->inline_spent_ns < share;
}

/* Whether r (of the client of key) may be tried here: the client has
 * nothing queued, opening or running and room for a cursor, so the
 * scheduler's per-client caps and its fairness stand; and with
 * need_idle, a general worker is idle, so a query over its budget goes to
 * one at once (not to wait in the queue holding its snapshot, its time
 * limit running). */
static bool s_admissible(dm_query_pool_t *self, const char *key, bool need_idle)
{
    pthread_mutex_lock(&self->lock);
    bool yes = (!need_idle || self->idle > 0) && dm_query_sched_client_idle(self->sched, key);
    pthread_mutex_unlock(&self->lock);
    return yes;
}

/* Sends a packed reply straight on the ROUTER (the loop's own socket; as
 * dm_rpc_server_send, a client gone or full drops it). msg is consumed. */
static void s_send(dm_query_pool_t *self, zmq_msg_t *rid, zmq_msg_t *msg)
{
    zmq_msg_t r;
    zmq_msg_init(&r);
    zmq_msg_copy(&r, rid);
    if (zmq_msg_send(&r, self->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_msg_send(msg, self->router, ZMQ_DONTWAIT) < 0) {
        dm_log_debug("reply dropped: %s", zmq_strerror(errno));
        zmq_msg_close(&r);
        zmq_msg_close(msg);
    }
}

/* Opens r's query when it names only this node's products: *o, or NULL
 * (DM_OK) when it does not or cannot be tried here. An error is the
 * query's own (as a worker would answer it). */
static dm_err s_open(dm_query_pool_t *self, dm_query_pool_req_t *r, dm_query_pool_open_t **o,
                     dm_buf_t *err)
{
    const Dm__QueryReq *qr = r->env->query_req;
    const char *sql = qr->sql ? qr->sql : "";
    dm_query_access_t access = {dm_query_pool__decide, &r->actx, dm_query_pool__describable};
    dm_query_remote_t *remote = NULL;
    dm_query_t *q = NULL;
    *o = NULL;
    /* The remote (the relay's, node_relay.c) is made as a worker makes it:
     * the same names resolve the same way, so the same statements fail
     * with the same words. Making it reads memory only. */
    if (self->remote_make &&
        self->remote_make(self->remote_ctx, &r->caller, qr->grant.data, qr->grant.len, sql,
                          &remote, err) != DM_OK) {
        dm_buf_reset(err);
        return DM_OK; /* the worker's try answers it */
    }
    dm_err rc = dm_query_open_local(self->engine, sql, strlen(sql), self->decide ? &access : NULL,
                                    remote, &q, err);
    if (rc == DM_OK && q && !(*o = calloc(1, sizeof **o))) {
        dm_query_close(&q);
        rc = DM_ERR_NOMEM;
    }
    if (rc != DM_OK || !q) {
        if (remote && self->remote_free)
            self->remote_free(self->remote_ctx, remote);
        return rc;
    }
    (*o)->q = q;
    (*o)->remote = remote;
    (*o)->explain = qr->explain;
    (*o)->max_rows = qr->max_rows && qr->max_rows < DM_QUERY_BATCH_ROWS ? qr->max_rows
                                                                        : DM_QUERY_BATCH_ROWS;
    return DM_OK;
}

/* Steps o's query within the budget and answers r: true when answered
 * (o closed), false when it is longer (o untouched, its statement back at
 * its start). */
static bool s_run(dm_query_pool_t *self, dm_query_pool_req_t *r, dm_query_pool_open_t **o)
{
    dm_buf_t rows = DM_BUF_INIT, err = DM_BUF_INIT;
    uint32_t nrows = 0;
    bool over = false, ended = true, packed;
    zmq_msg_t msg;
    dm_err rc = dm_query_fetch_within((*o)->q, (*o)->max_rows, DM_QUERY_BATCH_BYTES,
                                      DM_QUERY_INLINE_BUDGET_US * S_NS_PER_US, &rows, &nrows,
                                      &over, &err);
    if (rc == DM_OK && over) {
        dm_buf_free(&rows);
        dm_buf_free(&err);
        return false;
    }
    if (rc != DM_OK)
        packed = dm_query_pool__pack_error(r->env->id, rc, err.len ? err.data : dm_err_str(rc),
                                           &msg);
    else /* the whole result: the cursor id is never pulled, yet as unguessable */
        packed = dm_query_pool__pack_rows(*o, dm_query_pool_cursor_id(), r->env->id, true, &rows,
                                          nrows, true, &msg, &ended);
    if (packed)
        s_send(self, &r->rid, &msg);
    dm_query_pool__latency(self, r); /* an opened query: its products answered */
    dm_query_pool__open_close(self, o);
    dm_buf_free(&rows);
    dm_buf_free(&err);
    return true;
}

bool dm_query_pool__inline(dm_query_pool_t *self, dm_query_pool_req_t *r, const char *key)
{
    const Dm__QueryReq *qr = r->env->body_case == DM__ENVELOPE__BODY_QUERY_REQ
                                 ? r->env->query_req
                                 : NULL;
    int64_t start = dm_clock_mono_ns();
    if (!self->router || !qr || (qr->sql && strlen(qr->sql) > DM_QUERY_INLINE_SQL_MAX) ||
        !s_share_left(self, start) || !s_admissible(self, key, true))
        return false;
    dm_buf_t err = DM_BUF_INIT;
    dm_query_pool_open_t *o = NULL;
    bool answered = true;
    dm_err rc = s_open(self, r, &o, &err);
    if (rc != DM_OK) { /* the query's own error, as a worker would send it */
        zmq_msg_t msg;
        if (dm_query_pool__pack_error(r->env->id, rc, err.len ? err.data : dm_err_str(rc), &msg))
            s_send(self, &r->rid, &msg);
    } else if (!o) {
        answered = false; /* another node's products: a worker's */
    } else if (!s_run(self, r, &o)) {
        r->opened = o; /* decided and audited; a worker runs it */
        answered = false;
    }
    dm_buf_free(&err);
    self->inline_spent_ns += dm_clock_mono_ns() - start;
    return answered;
}

bool dm_query_pool_loop_admit(dm_query_pool_t *self, const char *key)
{
    return s_share_left(self, dm_clock_mono_ns()) && s_admissible(self, key, false);
}

void dm_query_pool_loop_spent(dm_query_pool_t *self, int64_t ns)
{
    self->inline_spent_ns += ns > 0 ? ns : 0;
}
