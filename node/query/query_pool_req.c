/* query_pool_req.c: the SQL workers' bookkeeping: a query's access
 * decisions, fetching and packing batches and sending replies, freeing
 * requests and open queries (with their remote), and carrying out the
 * scheduler's actions (query_sched.h). */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/array.h"
#include "base/clock.h"
#include "base/log.h"
#include "query/query_pool_priv.h"
#include "transport/envelope.h"
#include "transport/rpc.h"

dm_err dm_query_pool__decide(void *arg, const char *domain, const char *product,
                             dm_policy_decision_t *out, dm_buf_t *why)
{
    dm_query_pool_actx_t *a = arg;
    dm_err rc = a->pool->decide(a->pool->decide_ctx, a->caller, domain, product, out, why);
    if (rc == DM_OK && out->allow && a->pool->latency &&
        a->nread < DM_QUERY_POOL_LATENCY_PRODUCTS &&
        strlen(domain) < DM_QUERY_POOL_LATENCY_NAME && strlen(product) < DM_QUERY_POOL_LATENCY_NAME) {
        strcpy(a->read[a->nread][0], domain);
        strcpy(a->read[a->nread][1], product);
        a->nread++;
    }
    return rc;
}

bool dm_query_pool__describable(void *arg, const char *domain, const char *product)
{
    dm_query_pool_actx_t *a = arg;
    return !a->pool->describable ||
           a->pool->describable(a->pool->decide_ctx, a->caller, domain, product);
}

bool dm_query_pool__pack_rows(dm_query_pool_open_t *o, uint64_t cursor, uint64_t id, bool first,
                              const dm_buf_t *rows, uint32_t nrows, bool done, zmq_msg_t *msg,
                              bool *ended)
{
    dm_query_t *q = o->q;
    bool packed;
    Dm__Envelope env;
    Dm__QueryRep rep = DM__QUERY_REP__INIT;
    int ncols = first ? dm_query_ncolumns(q) : 0;
    Dm__Column *cols = ncols > 0 ? calloc((size_t)ncols, sizeof *cols) : NULL;
    Dm__Column **ptrs = ncols > 0 ? calloc((size_t)ncols, sizeof *ptrs) : NULL;
    for (int i = 0; cols && ptrs && i < ncols; i++) {
        dm__column__init(&cols[i]);
        cols[i].name = (char *)dm_query_column_name(q, i);
        cols[i].decltype = (char *)dm_query_column_decltype(q, i);
        ptrs[i] = &cols[i];
    }
    rep.cursor = cursor;
    rep.n_columns = cols && ptrs ? (size_t)ncols : 0;
    rep.columns = ptrs;
    rep.rows.data = (uint8_t *)rows->data;
    rep.rows.len = rows->len;
    rep.nrows = nrows;
    rep.done = done;
    dm_buf_t explain = DM_BUF_INIT;
    if (done && o->explain) {
        dm_query_explain(q, &explain);
        rep.explain = explain.data ? explain.data : "";
    }
    dm_envelope_init(&env, id, DM__ENVELOPE__BODY_QUERY_REP, &rep);
    if (dm__envelope__get_packed_size(&env) > (size_t)DM_RPC_MAX_MSG_BYTES) {
        /* One row alone can outgrow a message (huge blobs): say so rather
         * than send something the client would have to drop. */
        char text[200];
        snprintf(text, sizeof text,
                 "a batch of this query's rows is larger than the %lld-byte message limit (a "
                 "single row this large cannot be sent); select fewer or smaller columns",
                 (long long)DM_RPC_MAX_MSG_BYTES);
        packed = dm_query_pool__pack_error(id, DM_ERR_TOOBIG, text, msg);
        done = true;
    } else {
        packed = dm_query_pool__pack(&env, msg);
    }
    *ended = done;
    dm_buf_free(&explain);
    free(cols);
    free(ptrs);
    return packed;
}

void dm_query_pool__fetch_pack(dm_query_pool_t *self, unsigned worker, dm_query_pool_open_t *o,
                               uint64_t cursor, uint64_t id, bool first, zmq_msg_t *msg,
                               bool *ended, bool *packed)
{
    dm_buf_t rows = DM_BUF_INIT, err = DM_BUF_INIT;
    uint32_t nrows = 0;
    bool done = false;
    *packed = false;
    dm_err rc = dm_query_fetch(o->q, o->max_rows, DM_QUERY_BATCH_BYTES, &rows, &nrows, &done,
                               &err);
    if (rc != DM_OK) {
        pthread_mutex_lock(&self->lock);
        dm_query_sched_reason why = dm_query_sched_cancelled(self->sched, worker);
        pthread_mutex_unlock(&self->lock);
        char text[DM_QUERY_SCHED_WHY_MAX];
        if (why)
            dm_query_sched_reason_text(self->sched, why, text, sizeof text);
        *ended = true;
        *packed = dm_query_pool__pack_error(id, why ? dm_query_pool__reason_code(why) : rc,
                               why ? text : err.len ? err.data : dm_err_str(rc), msg);
    } else {
        *packed = dm_query_pool__pack_rows(o, cursor, id, first, &rows, nrows, done, msg, ended);
    }
    dm_buf_free(&rows);
    dm_buf_free(&err);
}

uint64_t dm_query_pool_cursor_id(void)
{
    uint64_t id = 0;
    while (!id)
        randombytes_buf(&id, sizeof id);
    return id;
}

bool dm_query_pool_rename(Dm__Envelope *rep, uint64_t id, uint64_t cursor)
{
    rep->id = id;
    if (rep->body_case != DM__ENVELOPE__BODY_QUERY_REP)
        return true;
    rep->query_rep->cursor = cursor;
    return rep->query_rep->done;
}

/* Sends a packed reply (msg is consumed). */
void dm_query_pool__latency(dm_query_pool_t *self, const dm_query_pool_req_t *r)
{
    if (!self->latency)
        return;
    int64_t us = (dm_clock_mono_ns() - r->arrived_ns) / 1000;
    for (size_t i = 0; i < r->actx.nread; i++)
        self->latency(self->latency_ctx, r->actx.read[i][0], r->actx.read[i][1], us);
}

void dm_query_pool__send_msg(void *out, zmq_msg_t *rid, zmq_msg_t *msg)
{
    zmq_msg_t r;
    zmq_msg_init(&r);
    zmq_msg_copy(&r, rid);
    if (zmq_msg_send(&r, out, ZMQ_SNDMORE) < 0 || zmq_msg_send(msg, out, 0) < 0) {
        dm_log_warn("query: a reply could not be queued: %s", zmq_strerror(errno));
        zmq_msg_close(&r);
        zmq_msg_close(msg);
    }
}

/* Packs env into *msg; false (msg empty) when out of memory. */
bool dm_query_pool__pack(const Dm__Envelope *env, zmq_msg_t *msg)
{
    if (dm_rpc_pack(env, msg) == DM_OK)
        return true;
    dm_log_err("query: out of memory packing a reply");
    return false;
}

bool dm_query_pool__pack_error(uint64_t id, dm_err code, const char *text, zmq_msg_t *msg)
{
    Dm__Envelope env;
    Dm__Error e;
    dm_envelope_error(&env, &e, id, code, text);
    return dm_query_pool__pack(&env, msg);
}

void dm_query_pool__send_error(void *out, zmq_msg_t *rid, uint64_t id, dm_err code, const char *text)
{
    zmq_msg_t msg;
    if (dm_query_pool__pack_error(id, code, text, &msg))
        dm_query_pool__send_msg(out, rid, &msg);
}

/* Sends a reply through the pool's shared socket (msg is consumed). */
void dm_query_pool__reply(dm_query_pool_t *self, zmq_msg_t *rid, zmq_msg_t *msg)
{
    pthread_mutex_lock(&self->out_lock);
    dm_query_pool__send_msg(self->out, rid, msg);
    pthread_mutex_unlock(&self->out_lock);
}

void dm_query_pool__req_free(dm_query_pool_t *self, dm_query_pool_req_t *r)
{
    if (!r)
        return;
    dm_query_pool__open_close(self, &r->opened);
    if (r->first)
        dm__envelope__free_unpacked(r->first, NULL);
    zmq_msg_close(&r->rid);
    if (r->env)
        dm__envelope__free_unpacked(r->env, NULL);
    free(r);
}

/* The error code a reason is reported with: "busy" ones as DM_ERR_BUSY
 * (like every other "the node is busy"), the rest as a cancel. */
dm_err dm_query_pool__reason_code(dm_query_sched_reason why)
{
    return why == DM_QUERY_SCHED_WAITED || why == DM_QUERY_SCHED_SHORT ? DM_ERR_BUSY : DM_ERR_TIMEOUT;
}

/* Takes the scheduler's pending actions (call with the lock held): cancels
 * now, the rest into acts for dm_query_pool__run_acts. */
void dm_query_pool__collect(dm_query_pool_t *self, dm_query_pool_acts_t *acts)
{
    dm_query_sched_act_t a;
    while (dm_query_sched_action(self->sched, &a)) {
        if (a.reason == DM_QUERY_SCHED_GONE)
            dm_log_debug("query: %s: its client disconnected",
                         a.kind == DM_QUERY_SCHED_CANCEL ? "a running query cancelled"
                         : a.kind == DM_QUERY_SCHED_DROP ? "a queued request dropped"
                                                    : "an open query closed");
        if (a.kind == DM_QUERY_SCHED_CANCEL) {
            if (a.worker < self->n && self->workers[a.worker].q)
                dm_query_cancel(self->workers[a.worker].q);
            else if (a.worker < self->n && self->workers[a.worker].passing)
                atomic_store(&self->workers[a.worker].pass_cancel, true);
            continue;
        }
        if (!dm_array_reserve(&acts->a, &acts->cap, acts->n + 1, sizeof *acts->a,
                              DM_QUERY_ACTS_MIN))
            abort(); /* losing it would leak a query or leave a client waiting */
        acts->a[acts->n++] = a;
    }
}

/* Carries out collected actions without the lock; out answers refusals. */
void dm_query_pool__run_acts(dm_query_pool_t *self, void *out, dm_query_pool_acts_t *acts)
{
    for (size_t i = 0; i < acts->n; i++) {
        dm_query_sched_act_t *a = &acts->a[i];
        if (a->kind == DM_QUERY_SCHED_CLOSE) {
            dm_query_pool_open_t *o = a->ptr;
            dm_query_pool__open_close(self, &o);
        } else if (a->kind == DM_QUERY_SCHED_REFUSE || a->kind == DM_QUERY_SCHED_DROP) {
            dm_query_pool_req_t *r = a->ptr;
            if (a->kind == DM_QUERY_SCHED_REFUSE && out) {
                char text[DM_QUERY_SCHED_WHY_MAX];
                dm_query_sched_reason_text(self->sched, a->reason, text, sizeof text);
                if (out == self->out)
                    pthread_mutex_lock(&self->out_lock);
                dm_query_pool__send_error(out, &r->rid, r->env->id, dm_query_pool__reason_code(a->reason), text);
                if (out == self->out)
                    pthread_mutex_unlock(&self->out_lock);
            }
            dm_query_pool__req_free(self, r);
        }
    }
    acts->n = 0;
}

void dm_query_pool__open_close(dm_query_pool_t *self, dm_query_pool_open_t **o_p)
{
    if (!*o_p)
        return;
    dm_query_close(&(*o_p)->q); /* ends its remote scans before their remote goes */
    if ((*o_p)->remote && self->remote_free)
        self->remote_free(self->remote_ctx, (*o_p)->remote);
    free(*o_p);
    *o_p = NULL;
}

bool dm_query_pool__pass(dm_query_pool_worker_t *w, dm_query_remote_t *remote,
                         const Dm__QueryReq *req, uint64_t id, uint64_t cursor, zmq_msg_t *msg,
                         bool *packed, bool *ended)
{
    dm_query_pool_t *self = w->pool;
    pthread_mutex_lock(&self->lock);
    w->passing = true;
    atomic_store(&w->pass_cancel, dm_query_sched_cancelled(self->sched, w->index) != 0);
    int64_t deadline = dm_clock_mono_ns() +
                       dm_query_sched_limits(self->sched)->lifetime_ms * (int64_t)1000000;
    pthread_mutex_unlock(&self->lock);
    Dm__Envelope *rep = NULL;
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = self->pass(self->pass_ctx, remote, req, deadline, &w->pass_cancel, &rep, &why);
    pthread_mutex_lock(&self->lock);
    w->passing = false;
    dm_query_sched_reason reason =
        rc != DM_OK ? dm_query_sched_cancelled(self->sched, w->index) : 0;
    pthread_mutex_unlock(&self->lock);
    if (rc == DM_OK && !rep && req) {
        dm_buf_free(&why);
        return false;
    }
    *ended = true;
    if (rc != DM_OK || !rep) {
        char text[DM_QUERY_SCHED_WHY_MAX];
        if (reason)
            dm_query_sched_reason_text(self->sched, reason, text, sizeof text);
        dm_err code = reason ? dm_query_pool__reason_code(reason) : rc != DM_OK ? rc : DM_ERR_PROTO;
        *packed = dm_query_pool__pack_error(id, code, reason ? text : why.len ? why.data
                                                                     : dm_err_str(code), msg);
    } else {
        *ended = dm_query_pool_rename(rep, id, cursor);
        *packed = dm_query_pool__pack(rep, msg);
    }
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    dm_buf_free(&why);
    return true;
}
