/* query_pool.c: SQL worker threads with pull-based cursors. */
#include "query_pool.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <zmq.h>

#include "ingest.h"
#include "log.h"
#include "rpc.h"

#define DM_QUERY_STOP "STOP"
#define DM_QUERY_INBOX_FMT "inproc://dm-query-%u"
#define DM_QUERY_QUEUE_MSGS 64 /* requests queued per worker before "busy" */
#define DM_QUERY_CURSOR_SHIFT 8 /* low bits of a cursor id name the worker */
#define DM_QUERY_RID_MAX 256    /* bytes of a ZeroMQ routing id */

typedef struct {
    uint64_t id;
    dm_query_t *q;
    uint8_t owner[DM_QUERY_RID_MAX]; /* routing id of the client that opened it */
    size_t owner_len;
    uint32_t max_rows;
    int64_t deadline_ms; /* closed when not finished by then */
} s_cursor;

typedef struct {
    dm_query_pool_t *pool;
    unsigned index;
    pthread_t thread;
    bool running;
    void *push;    /* node loop side */
    void *pull;    /* worker side */
    void *out;     /* worker side, to the shared outbox */
    atomic_uint open;
    uint64_t next_seq;
    s_cursor cursors[DM_QUERY_POOL_CURSORS];
} s_worker;

struct dm_query_pool {
    dm_query_engine_t *engine;
    int64_t lifetime_ms;
    unsigned n;
    unsigned rr;
    s_worker *workers;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_send(s_worker *w, zmq_msg_t *rid, Dm__Envelope *env)
{
    zmq_msg_t msg;
    if (dm_rpc_pack(env, &msg) != DM_OK) {
        dm_log_err("query: out of memory packing a reply");
        return;
    }
    zmq_msg_send(rid, w->out, ZMQ_SNDMORE);
    zmq_msg_send(&msg, w->out, 0);
}

static void s_send_error(s_worker *w, zmq_msg_t *rid, uint64_t id, dm_err code, const char *text)
{
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__Error e = DM__ERROR__INIT;
    e.code = (uint32_t)code;
    e.message = (char *)text;
    env.id = id;
    env.body_case = DM__ENVELOPE__BODY_ERROR;
    env.error = &e;
    s_send(w, rid, &env);
}

static void s_close_cursor(s_worker *w, s_cursor *c)
{
    dm_query_close(&c->q);
    memset(c, 0, sizeof *c);
    atomic_fetch_sub(&w->open, 1);
}

/* Fetches the next batch of c and replies; closes c when done or failed. */
static void s_fetch_reply(s_worker *w, s_cursor *c, zmq_msg_t *rid, uint64_t id, bool first)
{
    dm_buf_t rows = DM_BUF_INIT, err = DM_BUF_INIT;
    uint32_t nrows = 0;
    bool done = false;
    dm_err rc = dm_query_fetch(c->q, c->max_rows, DM_QUERY_BATCH_BYTES, &rows, &nrows, &done, &err);
    if (rc != DM_OK) {
        s_send_error(w, rid, id, rc, err.len ? err.data : dm_strerror(rc));
        s_close_cursor(w, c);
        goto out;
    }
    Dm__Envelope env = DM__ENVELOPE__INIT;
    Dm__QueryRep rep = DM__QUERY_REP__INIT;
    int ncols = first ? dm_query_ncolumns(c->q) : 0;
    Dm__Column *cols = ncols > 0 ? calloc((size_t)ncols, sizeof *cols) : NULL;
    Dm__Column **ptrs = ncols > 0 ? calloc((size_t)ncols, sizeof *ptrs) : NULL;
    for (int i = 0; cols && ptrs && i < ncols; i++) {
        dm__column__init(&cols[i]);
        cols[i].name = (char *)dm_query_column_name(c->q, i);
        cols[i].decltype = (char *)dm_query_column_decltype(c->q, i);
        ptrs[i] = &cols[i];
    }
    rep.cursor = c->id;
    rep.n_columns = cols && ptrs ? (size_t)ncols : 0;
    rep.columns = ptrs;
    rep.rows.data = (uint8_t *)rows.data;
    rep.rows.len = rows.len;
    rep.nrows = nrows;
    rep.done = done;
    env.id = id;
    env.body_case = DM__ENVELOPE__BODY_QUERY_REP;
    env.query_rep = &rep;
    if (dm__envelope__get_packed_size(&env) > (size_t)DM_RPC_MAX_MSG_BYTES) {
        /* One row alone can outgrow a message (huge blobs): say so rather
         * than send something the client would have to drop. */
        char text[200];
        snprintf(text, sizeof text,
                 "a batch of this query's rows is larger than the %lld-byte message limit (a "
                 "single row this large cannot be sent); select fewer or smaller columns",
                 (long long)DM_RPC_MAX_MSG_BYTES);
        s_send_error(w, rid, id, DM_ERR_TOOBIG, text);
        done = true;
    } else {
        s_send(w, rid, &env);
    }
    free(cols);
    free(ptrs);
    if (done)
        s_close_cursor(w, c);
out:
    dm_buf_free(&rows);
    dm_buf_free(&err);
}

/* The open cursor id of the client with routing id rid: a client can
 * neither read nor close another client's query. */
static s_cursor *s_find(s_worker *w, uint64_t id, zmq_msg_t *rid)
{
    for (size_t i = 0; i < DM_QUERY_POOL_CURSORS; i++) {
        s_cursor *c = &w->cursors[i];
        if (c->q && c->id == id && c->owner_len == zmq_msg_size(rid) &&
            memcmp(c->owner, zmq_msg_data(rid), c->owner_len) == 0)
            return c;
    }
    return NULL;
}

static void s_handle(s_worker *w, zmq_msg_t *rid, const Dm__Envelope *env)
{
    if (env->body_case == DM__ENVELOPE__BODY_QUERY_REQ) {
        s_cursor *slot = NULL;
        for (size_t i = 0; i < DM_QUERY_POOL_CURSORS && !slot; i++)
            if (!w->cursors[i].q)
                slot = &w->cursors[i];
        if (!slot) {
            s_send_error(w, rid, env->id, DM_ERR_TOOBIG,
                         "the node is busy: too many open queries; retry shortly");
            return;
        }
        const char *sql = env->query_req->sql ? env->query_req->sql : "";
        dm_buf_t err = DM_BUF_INIT;
        dm_err rc = dm_query_open(w->pool->engine, sql, strlen(sql), &slot->q, &err);
        if (rc != DM_OK) {
            s_send_error(w, rid, env->id, rc, err.len ? err.data : dm_strerror(rc));
            dm_buf_free(&err);
            return;
        }
        dm_buf_free(&err);
        atomic_fetch_add(&w->open, 1);
        /* Unguessable ids (random high bits), bound to the opener. */
        uint64_t r;
        randombytes_buf(&r, sizeof r);
        slot->id = ((r ^ ++w->next_seq) << DM_QUERY_CURSOR_SHIFT) | w->index;
        if (slot->id >> DM_QUERY_CURSOR_SHIFT == 0)
            slot->id |= (uint64_t)1 << DM_QUERY_CURSOR_SHIFT;
        slot->owner_len = zmq_msg_size(rid) < DM_QUERY_RID_MAX ? zmq_msg_size(rid) : DM_QUERY_RID_MAX;
        memcpy(slot->owner, zmq_msg_data(rid), slot->owner_len);
        uint32_t want = env->query_req->max_rows;
        slot->max_rows = want && want < DM_QUERY_BATCH_ROWS ? want : DM_QUERY_BATCH_ROWS;
        slot->deadline_ms = s_now_ms() + w->pool->lifetime_ms;
        s_fetch_reply(w, slot, rid, env->id, true);
        return;
    }
    uint64_t cursor = env->body_case == DM__ENVELOPE__BODY_QUERY_NEXT ? env->query_next->cursor
                      : env->body_case == DM__ENVELOPE__BODY_QUERY_CLOSE ? env->query_close->cursor
                                                                        : 0;
    s_cursor *c = cursor ? s_find(w, cursor, rid) : NULL;
    if (!c) {
        char text[160];
        snprintf(text, sizeof text,
                 "no open query %llu: it finished, failed, or was closed when its time limit "
                 "ran out",
                 (unsigned long long)cursor);
        s_send_error(w, rid, env->id, DM_ERR_NOTFOUND, text);
        return;
    }
    if (env->body_case == DM__ENVELOPE__BODY_QUERY_NEXT) {
        s_fetch_reply(w, c, rid, env->id, false);
        return;
    }
    s_close_cursor(w, c);
    Dm__Envelope rep_env = DM__ENVELOPE__INIT;
    Dm__QueryRep rep = DM__QUERY_REP__INIT;
    rep.cursor = cursor;
    rep.done = true;
    rep_env.id = env->id;
    rep_env.body_case = DM__ENVELOPE__BODY_QUERY_REP;
    rep_env.query_rep = &rep;
    s_send(w, rid, &rep_env);
}

/* Closes cursors whose lifetime ran out; returns ms until the next one
 * expires (-1: none open). */
static long s_expire(s_worker *w)
{
    int64_t now = s_now_ms(), next = -1;
    for (size_t i = 0; i < DM_QUERY_POOL_CURSORS; i++) {
        s_cursor *c = &w->cursors[i];
        if (!c->q)
            continue;
        if (c->deadline_ms <= now) {
            dm_log_info("query %llu closed: not pulled to the end within its time limit",
                        (unsigned long long)c->id);
            s_close_cursor(w, c);
        } else if (next < 0 || c->deadline_ms - now < next) {
            next = c->deadline_ms - now;
        }
    }
    return (long)next;
}

static void *s_worker_main(void *arg)
{
    s_worker *w = arg;
    char name[16];
    snprintf(name, sizeof name, "dm-query-%u", w->index);
    prctl(PR_SET_NAME, name);
    for (;;) {
        zmq_pollitem_t item = {w->pull, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, s_expire(w));
        if (rc < 0 && errno != EINTR)
            break;
        if (rc <= 0)
            continue;
        zmq_msg_t rid, payload;
        zmq_msg_init(&rid);
        zmq_msg_init(&payload);
        if (zmq_msg_recv(&rid, w->pull, 0) < 0) {
            zmq_msg_close(&rid);
            zmq_msg_close(&payload);
            continue;
        }
        if (!zmq_msg_more(&rid)) { /* the stop request */
            zmq_msg_close(&rid);
            zmq_msg_close(&payload);
            break;
        }
        zmq_msg_recv(&payload, w->pull, 0);
        Dm__Envelope *env = dm_rpc_unpack(zmq_msg_data(&payload), zmq_msg_size(&payload));
        if (!env)
            s_send_error(w, &rid, 0, DM_ERR_PROTO, "malformed query request");
        else
            s_handle(w, &rid, env);
        if (env)
            dm__envelope__free_unpacked(env, NULL);
        zmq_msg_close(&rid);
        zmq_msg_close(&payload);
    }
    for (size_t i = 0; i < DM_QUERY_POOL_CURSORS; i++)
        if (w->cursors[i].q)
            s_close_cursor(w, &w->cursors[i]);
    return NULL;
}

static void *s_socket(void *ctx, int type, const char *endpoint, bool bind)
{
    void *s = zmq_socket(ctx, type);
    if (!s)
        return NULL;
    int linger = 0, hwm = DM_QUERY_QUEUE_MSGS;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if ((bind ? zmq_bind(s, endpoint) : zmq_connect(s, endpoint)) != 0) {
        dm_log_err("query: cannot %s %s: %s", bind ? "bind" : "connect", endpoint,
                   zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

dm_err dm_query_pool_new(void *ctx, dm_query_engine_t *engine, unsigned nworkers, int64_t lifetime_ms,
                         dm_query_pool_t **out)
{
    *out = NULL;
    if (nworkers == 0)
        nworkers = DM_QUERY_POOL_DEFAULT_WORKERS;
    if (nworkers > DM_QUERY_POOL_MAX_WORKERS)
        nworkers = DM_QUERY_POOL_MAX_WORKERS;
    dm_query_pool_t *self = calloc(1, sizeof *self);
    if (!self)
        return DM_ERR_NOMEM;
    self->engine = engine;
    self->lifetime_ms = lifetime_ms > 0 ? lifetime_ms : 30000;
    self->workers = calloc(nworkers, sizeof *self->workers);
    if (!self->workers) {
        free(self);
        return DM_ERR_NOMEM;
    }
    self->n = nworkers;
    for (unsigned i = 0; i < nworkers; i++) {
        s_worker *w = &self->workers[i];
        char ep[64];
        snprintf(ep, sizeof ep, DM_QUERY_INBOX_FMT, i);
        w->pool = self;
        w->index = i;
        atomic_init(&w->open, 0);
        w->push = s_socket(ctx, ZMQ_PUSH, ep, true);
        w->pull = s_socket(ctx, ZMQ_PULL, ep, false);
        w->out = s_socket(ctx, ZMQ_PUSH, DM_INGEST_OUTBOX, false);
        if (!w->push || !w->pull || !w->out ||
            pthread_create(&w->thread, NULL, s_worker_main, w) != 0) {
            dm_query_pool_destroy(&self);
            return DM_ERR_NET;
        }
        w->running = true;
    }
    *out = self;
    return DM_OK;
}

void dm_query_pool_destroy(dm_query_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_query_pool_t *self = *self_p;
    for (unsigned i = 0; i < self->n; i++) {
        s_worker *w = &self->workers[i];
        if (w->running) {
            zmq_send(w->push, DM_QUERY_STOP, strlen(DM_QUERY_STOP), 0);
            pthread_join(w->thread, NULL);
        }
        void *socks[] = {w->push, w->pull, w->out};
        for (size_t k = 0; k < 3; k++)
            if (socks[k])
                zmq_close(socks[k]);
    }
    free(self->workers);
    free(self);
    *self_p = NULL;
}

dm_err dm_query_pool_forward(dm_query_pool_t *self, uint64_t cursor, void *rid_msg,
                             void *payload_msg)
{
    unsigned idx;
    if (cursor) {
        idx = (unsigned)(cursor & ((1u << DM_QUERY_CURSOR_SHIFT) - 1));
        if (idx >= self->n)
            return DM_ERR_NOTFOUND;
    } else {
        /* The least loaded worker, round robin among equals. */
        idx = self->rr++ % self->n;
        unsigned best = atomic_load(&self->workers[idx].open);
        for (unsigned k = 1; k < self->n; k++) {
            unsigned j = (idx + k) % self->n;
            unsigned open = atomic_load(&self->workers[j].open);
            if (open < best) {
                best = open;
                idx = j;
            }
        }
    }
    s_worker *w = &self->workers[idx];
    if (zmq_msg_send(rid_msg, w->push, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return DM_ERR_TOOBIG;
    zmq_msg_send(payload_msg, w->push, 0);
    return DM_OK;
}
