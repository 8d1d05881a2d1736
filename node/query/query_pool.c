/* query_pool.c: SQL worker threads with pull-based cursors, scheduled by
 * query_sched.c; a watcher thread for deadlines and disconnects.
 *
 * Locking: one mutex guards the scheduler and each worker's current query
 * pointer; it is held only for bookkeeping, never while SQL runs or a
 * reply is sent, so the node loop's dm_query_pool_forward never waits for
 * a query. Cancels are delivered under the mutex: a worker clears its
 * query pointer under it before closing the query.
 *
 * Disconnects: a monitor of the ROUTER reports ACCEPTED and DISCONNECTED
 * with the connection's descriptor; each request carries the descriptor
 * it came from (ZMQ_SRCFD). A descriptor can be reused by a new
 * connection, whose ACCEPTED event is always queued before any of its
 * requests reach the node loop (the listener reports the accept before
 * the handshake starts). So the watcher, holding the mutex (no request can
 * be queued meanwhile), drains every pending event first; a DISCONNECTED
 * followed in that batch by an ACCEPTED of the same descriptor is ignored
 * (the requests on it may be the new client's; the old ones then run to
 * their limits, as before), any other cancels exactly the dead client's
 * work. */
#include "query/query_pool_priv.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <zmq.h>

#include "base/array.h"
#include "transport/ctl.h"
#include "base/clock.h"
#include "base/log.h"
#include "transport/envelope.h"
#include "transport/rpc.h"
#include "transport/zsock.h"

#define DM_QUERY_TICK_MS 100 /* the watcher's period: deadlines are this precise */
#define DM_QUERY_MONITOR "inproc://dm-query-monitor"
#define DM_QUERY_OUT_HWM 256 /* replies queued to the outbox per socket */
#define DM_QUERY_SEND_WAIT_MS 2000 /* a worker's reply waits this long for the node loop */
#define DM_QUERY_EVENT_BYTES 6 /* monitor event frame: uint16 event, uint32 value */



/* Which condition to signal for work (lock held): one waiting general
 * worker (they are alike: what one cannot take now, none can), else the
 * short lane, which takes only while every general worker is busy. Waking
 * all idle workers for each request cost every request their context
 * switches. The caller signals after unlocking: a worker woken while the
 * lock is still held would only block on it again, two more switches. */
static pthread_cond_t *s_waker(dm_query_pool_t *self)
{
    return self->idle ? &self->work : &self->lane;
}

static void s_wake_all(dm_query_pool_t *self)
{
    pthread_cond_broadcast(&self->work);
    pthread_cond_broadcast(&self->lane);
}

/* Finishes a request on w (the lock not held): the scheduler learns the
 * worker is free and whether the query ended; the query is closed when
 * it ended or must. o is a new query's holder, or a pull's lent cursor
 * (NULL when gone): a lent cursor stays with the scheduler while busy, so
 * for it "ended" already makes dm_query_sched_finish say must close. */
static void s_finish(dm_query_pool_worker_t *w, bool ended, dm_query_pool_open_t *o,
                     dm_query_pool_acts_t *acts)
{
    dm_query_pool_t *self = w->pool;
    pthread_mutex_lock(&self->lock);
    w->q = NULL;
    bool must_close = dm_query_sched_finish(self->sched, w->index, ended, dm_clock_mono_ms());
    dm_query_pool__collect(self, acts);
    /* This worker takes one on its way back; another may take one more. */
    pthread_cond_t *wake = dm_query_sched_queued(self->sched) ? s_waker(self) : NULL;
    pthread_mutex_unlock(&self->lock);
    if (wake)
        pthread_cond_signal(wake);
    if (ended || must_close)
        dm_query_pool__open_close(self, &o);
}

/* A passed query's first reply is out: the query registered as cursor id
 * when more rows follow (before the client can see its id), the reply
 * msg sent when packed, and the query finished. */
static void s_open_passed(dm_query_pool_worker_t *w, dm_query_pool_req_t *r, uint64_t id,
                          dm_query_pool_open_t *o, bool ended, bool packed, zmq_msg_t *msg,
                          dm_query_pool_acts_t *acts)
{
    dm_query_pool_t *self = w->pool;
    pthread_mutex_lock(&self->lock);
    if (!ended)
        dm_query_sched_opened(self->sched, w->index, id, o, dm_clock_mono_ms());
    pthread_mutex_unlock(&self->lock);
    if (packed)
        dm_query_pool__reply(self, &r->rid, msg);
    s_finish(w, ended, o, acts);
}

/* Offers a new query to the pass-through (query_pool.h); false when it
 * did not take it (remote stays the caller's). When it did, the query is
 * answered, registered as a cursor when more rows follow, and finished. */
static bool s_run_pass(dm_query_pool_worker_t *w, dm_query_pool_req_t *r,
                       dm_query_remote_t *remote, dm_query_pool_acts_t *acts)
{
    const Dm__QueryReq *qr = r->env->query_req;
    dm_query_pool_open_t *o = calloc(1, sizeof *o);
    if (!o)
        return false; /* the engine's way fails it alike */
    o->remote = remote;
    o->passed = true;
    uint64_t id = dm_query_pool_cursor_id();
    zmq_msg_t msg;
    bool packed = false, ended = true;
    if (!dm_query_pool__pass(w, remote, qr, r->env->id, id, &msg, &packed, &ended)) {
        free(o);
        return false;
    }
    s_open_passed(w, r, id, o, ended, packed, &msg, acts);
    return true;
}

/* Opens r's query for w: the pass-through when it takes it (*passed, r
 * answered), else the engine's query in *o with its remote. On failure
 * the error is in err and nothing is left open. */
static dm_err s_open_req(dm_query_pool_worker_t *w, dm_query_pool_req_t *r,
                         dm_query_pool_acts_t *acts, dm_query_pool_open_t **o, bool *passed,
                         dm_buf_t *err)
{
    dm_query_pool_t *self = w->pool;
    const Dm__QueryReq *qr = r->env->query_req;
    const char *sql = qr && qr->sql ? qr->sql : "";
    dm_query_access_t access = {dm_query_pool__decide, &r->actx, dm_query_pool__describable};
    dm_query_remote_t *remote = NULL;
    dm_query_t *q = NULL;
    dm_err rc = DM_OK;
    *o = NULL;
    *passed = false;
    if (self->remote_make)
        rc = self->remote_make(self->remote_ctx, &r->caller, qr ? qr->grant.data : NULL,
                               qr ? qr->grant.len : 0, sql, &remote, err);
    if (rc == DM_OK && remote && self->pass && qr && s_run_pass(w, r, remote, acts)) {
        *passed = true;
        return DM_OK;
    }
    if (rc == DM_OK)
        rc = dm_query_open_fed(self->engine, sql, strlen(sql), self->decide ? &access : NULL,
                               remote, &q, err);
    if (rc == DM_OK && !(*o = calloc(1, sizeof **o))) {
        dm_query_close(&q);
        dm_buf_reset(err);
        rc = DM_ERR_NOMEM;
    }
    if (rc != DM_OK) {
        if (remote && self->remote_free)
            self->remote_free(self->remote_ctx, remote);
        return rc;
    }
    (*o)->q = q;
    (*o)->remote = remote; /* freed with the query (dm_query_pool__open_close) */
    (*o)->explain = qr && qr->explain;
    (*o)->max_rows = qr && qr->max_rows && qr->max_rows < DM_QUERY_BATCH_ROWS
                         ? qr->max_rows
                         : DM_QUERY_BATCH_ROWS;
    return DM_OK;
}

/* Runs a passed query the node loop started (dm_query_pool_adopt): its
 * first reply, renamed, goes to the client after the query is registered
 * as its cursor. */
static void s_run_adopted(dm_query_pool_worker_t *w, dm_query_pool_req_t *r,
                          dm_query_pool_open_t *o, dm_query_pool_acts_t *acts)
{
    uint64_t id = dm_query_pool_cursor_id();
    Dm__Envelope *rep = r->first;
    zmq_msg_t msg;
    bool ended = dm_query_pool_rename(rep, r->env->id, id);
    bool packed = dm_query_pool__pack(rep, &msg);
    if (!packed) {
        ended = true;
        packed = dm_query_pool__pack_error(r->env->id, DM_ERR_NOMEM, "the node is out of memory",
                                           &msg);
    }
    s_open_passed(w, r, id, o, ended, packed, &msg, acts);
}

/* Runs a new query: opens it (unless the node loop did), fetches its
 * first batch, keeps it open as a cursor when more rows follow. */
static void s_run_open(dm_query_pool_worker_t *w, dm_query_pool_req_t *r, dm_query_pool_acts_t *acts)
{
    dm_query_pool_t *self = w->pool;
    dm_buf_t err = DM_BUF_INIT;
    dm_query_pool_open_t *o = r->opened;
    zmq_msg_t msg;
    bool packed = false, ended = true, passed = false;
    dm_err rc = DM_OK;
    r->opened = NULL;
    if (o && o->passed) {
        s_run_adopted(w, r, o, acts);
        return;
    }
    if (!o && (rc = s_open_req(w, r, acts, &o, &passed, &err)) == DM_OK && passed) {
        dm_buf_free(&err);
        return;
    }
    if (rc != DM_OK) {
        packed = dm_query_pool__pack_error(r->env->id, rc, err.len ? err.data : dm_err_str(rc), &msg);
    } else {
        pthread_mutex_lock(&self->lock);
        w->q = o->q;
        if (dm_query_sched_cancelled(self->sched, w->index))
            dm_query_cancel(o->q);
        pthread_mutex_unlock(&self->lock);
        uint64_t id = dm_query_pool_cursor_id();
        dm_query_pool__fetch_pack(self, w->index, o, id, r->env->id, true, &msg, &ended, &packed);
        /* Registered (still busy) before the client can see its id, the
         * reply sent before it is released: its pulls find it and their
         * replies follow this one. */
        pthread_mutex_lock(&self->lock);
        w->q = NULL;
        if (!ended)
            dm_query_sched_opened(self->sched, w->index, id, o, dm_clock_mono_ms());
        pthread_mutex_unlock(&self->lock);
    }
    if (packed)
        dm_query_pool__reply(self, &r->rid, &msg);
    if (rc == DM_OK) /* an opened query: its products answered */
        dm_query_pool__latency(self, r);
    s_finish(w, ended, o, acts);
    dm_buf_free(&err);
}

/* Runs a pull of cursor (q lent by the scheduler, NULL if it is gone). */
static void s_run_next(dm_query_pool_worker_t *w, dm_query_pool_req_t *r, uint64_t cursor, dm_query_pool_open_t *o, dm_query_pool_acts_t *acts)
{
    dm_query_pool_t *self = w->pool;
    zmq_msg_t msg;
    bool packed = false, ended = false;
    if (!o) {
        char text[DM_QUERY_SCHED_WHY_MAX];
        snprintf(text, sizeof text,
                 "no open query %llu: it finished, failed, was closed, or was closed after "
                 "%lld ms without a pull or at its time limit of %lld ms",
                 (unsigned long long)cursor,
                 (long long)dm_query_sched_limits(self->sched)->cursor_idle_ms,
                 (long long)dm_query_sched_limits(self->sched)->lifetime_ms);
        packed = dm_query_pool__pack_error(r->env->id, DM_ERR_NOTFOUND, text, &msg);
    } else if (o->passed) {
        (void)dm_query_pool__pass(w, o->remote, NULL, r->env->id, cursor, &msg, &packed, &ended);
    } else {
        dm_query_pool__fetch_pack(self, w->index, o, cursor, r->env->id, false, &msg, &ended, &packed);
    }
    if (packed) /* before the cursor is released: replies keep their order */
        dm_query_pool__reply(self, &r->rid, &msg);
    s_finish(w, ended, o, acts);
}

static void *s_worker_main(void *arg)
{
    dm_query_pool_worker_t *w = arg;
    dm_query_pool_t *self = w->pool;
    char name[16];
    snprintf(name, sizeof name, "dm-query-%u", w->index);
    prctl(PR_SET_NAME, name);
    dm_query_pool_acts_t acts = {0};
    pthread_mutex_lock(&self->lock);
    while (!self->stopping) {
        uint64_t cursor = 0;
        void *q = NULL;
        dm_query_pool_req_t *r = dm_query_sched_take(self->sched, w->index, dm_clock_mono_ms(), &cursor, &q);
        dm_query_pool__collect(self, &acts);
        if (!r) {
            if (acts.n) {
                pthread_mutex_unlock(&self->lock);
                dm_query_pool__run_acts(self, self->out, &acts);
                pthread_mutex_lock(&self->lock);
                continue;
            }
            if (w->index + 1 == self->n) { /* the short lane */
                pthread_cond_wait(&self->lane, &self->lock);
            } else {
                self->idle++;
                pthread_cond_wait(&self->work, &self->lock);
                self->idle--;
            }
            continue;
        }
        w->q = q ? ((dm_query_pool_open_t *)q)->q : NULL;
        pthread_mutex_unlock(&self->lock);
        dm_query_pool__run_acts(self, self->out, &acts);
        if (cursor)
            s_run_next(w, r, cursor, q, &acts);
        else
            s_run_open(w, r, &acts);
        dm_query_pool__req_free(self, r);
        dm_query_pool__run_acts(self, self->out, &acts);
        pthread_mutex_lock(&self->lock);
    }
    pthread_mutex_unlock(&self->lock);
    free(acts.a);
    return NULL;
}

/* Stamps descriptor fd's disconnect for dm_query_pool_gone_since (the
 * lock held). A descriptor past DM_QUERY_GONE_FD_MAX, or no memory to
 * grow, goes unrecorded: the loop's query then ends at its time limit. */
static void s_stamp_gone(dm_query_pool_t *self, int fd)
{
    self->gone_seq++;
    if (fd < 0 || (size_t)fd >= DM_QUERY_GONE_FD_MAX)
        return;
    size_t old = self->gone_cap;
    if (!dm_array_reserve(&self->gone_at, &self->gone_cap, (size_t)fd + 1,
                          sizeof *self->gone_at, DM_QUERY_GONE_FD_MIN))
        return;
    if (self->gone_cap > old) /* descriptors never stamped: none gone */
        memset(self->gone_at + old, 0, (self->gone_cap - old) * sizeof *self->gone_at);
    self->gone_at[fd] = self->gone_seq;
}

/* Reads every pending monitor event (call with the lock held) and reports
 * the disconnects that are certain to the scheduler. */
static void s_events(dm_query_pool_t *self)
{
    int *ev = NULL, *fd = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        zmq_msg_t f1, f2;
        zmq_msg_init(&f1);
        zmq_msg_init(&f2);
        if (zmq_msg_recv(&f1, self->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f1);
            zmq_msg_close(&f2);
            break;
        }
        if (zmq_msg_more(&f1))
            zmq_msg_recv(&f2, self->mon, 0); /* the endpoint; unused */
        if (zmq_msg_size(&f1) >= DM_QUERY_EVENT_BYTES) {
            uint16_t e;
            uint32_t v;
            memcpy(&e, zmq_msg_data(&f1), sizeof e);
            memcpy(&v, (const char *)zmq_msg_data(&f1) + sizeof e, sizeof v);
            if (n == cap) {
                cap = cap ? cap * 2 : DM_QUERY_ACTS_MIN;
                int *a = realloc(ev, cap * sizeof *a), *b = a ? realloc(fd, cap * sizeof *b) : NULL;
                if (a)
                    ev = a;
                if (!a || !b) {
                    /* Out of memory: forget these events (work runs to its limit). */
                    zmq_msg_close(&f1);
                    zmq_msg_close(&f2);
                    break;
                }
                fd = b;
            }
            ev[n] = e;
            fd[n] = (int)v;
            n++;
        }
        zmq_msg_close(&f1);
        zmq_msg_close(&f2);
    }
    for (size_t i = 0; i < n; i++) {
        if (ev[i] != ZMQ_EVENT_DISCONNECTED)
            continue;
        bool reused = false;
        for (size_t j = i + 1; j < n && !reused; j++)
            reused = ev[j] == ZMQ_EVENT_ACCEPTED && fd[j] == fd[i];
        if (!reused) {
            dm_query_sched_disconnect(self->sched, fd[i]);
            s_stamp_gone(self, fd[i]);
        }
    }
    free(ev);
    free(fd);
}

static void *s_watcher_main(void *arg)
{
    dm_query_pool_t *self = arg;
    prctl(PR_SET_NAME, "dm-query-watch");
    dm_query_pool_acts_t acts = {0};
    for (;;) {
        pthread_mutex_lock(&self->lock);
        bool stop = self->stopping;
        void *mon = self->mon;
        pthread_mutex_unlock(&self->lock);
        if (stop)
            break;
        zmq_pollitem_t item = {mon, 0, ZMQ_POLLIN, 0};
        zmq_poll(mon ? &item : NULL, mon ? 1 : 0, DM_QUERY_TICK_MS);
        pthread_mutex_lock(&self->lock);
        if (mon)
            s_events(self);
        if (dm_query_sched_tick(self->sched, dm_clock_mono_ms()))
            s_wake_all(self); /* the short lane may open with time */
        dm_query_pool__collect(self, &acts);
        pthread_mutex_unlock(&self->lock);
        dm_query_pool__run_acts(self, self->out, &acts);
    }
    free(acts.a);
    return NULL;
}

/* A PUSH to the outbox whose sends give up after wait_ms (0 for the node
 * loop, which must never wait; a bound for the others, so a stopped relay
 * cannot hang a worker and the pool's shutdown with it). */
static void *s_out_socket(void *ctx, int wait_ms, dm_buf_t *why)
{
    dm_zsock_opts_t o = {.sndhwm = DM_QUERY_OUT_HWM, .sndtimeo = true, .sndtimeo_ms = wait_ms};
    void *s = dm_zsock_new(ctx, ZMQ_PUSH, &o, why);
    if (!s)
        return NULL;
    if (zmq_connect(s, DM_CTL_OUTBOX) != 0) {
        dm_buf_why(why, "query: cannot connect %s: %s", DM_CTL_OUTBOX, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

dm_err dm_query_pool_new(void *ctx, dm_query_engine_t *engine, unsigned nworkers, int64_t lifetime_ms,
                         dm_query_pool_t **out, dm_buf_t *why)
{
    *out = NULL;
    if (nworkers == 0)
        nworkers = DM_QUERY_POOL_DEFAULT_WORKERS;
    if (nworkers > DM_QUERY_POOL_MAX_WORKERS)
        nworkers = DM_QUERY_POOL_MAX_WORKERS;
    dm_query_pool_t *self = calloc(1, sizeof *self);
    if (!self)
        return DM_ERR_NOMEM;
    pthread_mutex_init(&self->lock, NULL);
    pthread_mutex_init(&self->out_lock, NULL);
    pthread_cond_init(&self->work, NULL);
    pthread_cond_init(&self->lane, NULL);
    self->ctx = ctx;
    self->engine = engine;
    dm_query_sched_limits_t limits = {
        .general = nworkers,
        .short_lane = true,
        .lifetime_ms = lifetime_ms > 0 ? lifetime_ms : DM_QUERY_DEFAULT_TIMEOUT_MS,
    };
    dm_err rc = dm_query_sched_new(&limits, &self->sched);
    self->n = nworkers + 1;
    self->workers = rc ? NULL : calloc(self->n, sizeof *self->workers);
    if (rc || !self->workers) {
        dm_query_pool_destroy(&self);
        dm_buf_why(why, "query: out of memory");
        return DM_ERR_NOMEM;
    }
    if (!(self->loop_out = s_out_socket(ctx, 0, why)) ||
        !(self->out = s_out_socket(ctx, DM_QUERY_SEND_WAIT_MS, why))) {
        dm_query_pool_destroy(&self);
        return DM_ERR_NET;
    }
    if (pthread_create(&self->watcher, NULL, s_watcher_main, self) != 0) {
        dm_query_pool_destroy(&self);
        dm_buf_why(why, "query: cannot start the watcher thread");
        return DM_ERR_NET;
    }
    self->watcher_running = true;
    for (unsigned i = 0; i < self->n; i++) {
        dm_query_pool_worker_t *w = &self->workers[i];
        w->pool = self;
        w->index = i;
        atomic_init(&w->pass_cancel, false);
        if (pthread_create(&w->thread, NULL, s_worker_main, w) != 0) {
            dm_query_pool_destroy(&self);
            dm_buf_why(why, "query: cannot start worker thread %u", i);
            return DM_ERR_NET;
        }
        w->running = true;
    }
    *out = self;
    return DM_OK;
}

dm_err dm_query_pool_watch(dm_query_pool_t *self, void *router, dm_buf_t *why)
{
    if (zmq_socket_monitor(router, DM_QUERY_MONITOR,
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0) {
        if (why)
            dm_buf_printf(why, "query: cannot watch for disconnects: %s", zmq_strerror(errno));
        return DM_ERR_NET;
    }
    void *mon = dm_zsock_new(self->ctx, ZMQ_PAIR, NULL, NULL);
    if (!mon || zmq_connect(mon, DM_QUERY_MONITOR) != 0) {
        if (why)
            dm_buf_printf(why, "query: cannot watch for disconnects: %s", zmq_strerror(errno));
        if (mon)
            zmq_close(mon);
        return DM_ERR_NET;
    }
    pthread_mutex_lock(&self->lock); /* hands the socket to the watcher */
    self->mon = mon;
    self->router = router; /* the node loop's: dm_query_pool__inline answers on it */
    pthread_mutex_unlock(&self->lock);
    return DM_OK;
}

void dm_query_pool_destroy(dm_query_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_query_pool_t *self = *self_p;
    dm_query_pool_acts_t acts = {0};
    pthread_mutex_lock(&self->lock);
    self->stopping = true;
    if (self->sched) {
        dm_query_sched_shutdown(self->sched);
        dm_query_pool__collect(self, &acts);
    }
    s_wake_all(self);
    pthread_mutex_unlock(&self->lock);
    for (unsigned i = 0; self->workers && i < self->n; i++)
        if (self->workers[i].running)
            pthread_join(self->workers[i].thread, NULL);
    if (self->watcher_running)
        pthread_join(self->watcher, NULL);
    if (self->sched) { /* what the workers released on the way out */
        dm_query_sched_shutdown(self->sched);
        dm_query_pool__collect(self, &acts);
    }
    dm_query_pool__run_acts(self, NULL, &acts);
    free(acts.a);
    void *socks[] = {self->loop_out, self->out, self->mon};
    for (size_t k = 0; k < sizeof socks / sizeof socks[0]; k++)
        if (socks[k])
            zmq_close(socks[k]);
    dm_query_sched_destroy(&self->sched);
    pthread_cond_destroy(&self->work);
    pthread_cond_destroy(&self->lane);
    pthread_mutex_destroy(&self->lock);
    pthread_mutex_destroy(&self->out_lock);
    free(self->workers);
    free(self->gone_at);
    free(self);
    *self_p = NULL;
}

void dm_query_pool_set_access(dm_query_pool_t *self, dm_query_pool_decide_fn fn,
                              dm_query_pool_describable_fn describable, void *ctx)
{
    self->decide = fn;
    self->describable = describable;
    self->decide_ctx = ctx;
}

void dm_query_pool_set_remote(dm_query_pool_t *self, dm_query_pool_remote_make_fn make,
                              dm_query_pool_remote_free_fn free_fn, void *ctx)
{
    self->remote_make = make;
    self->remote_free = free_fn;
    self->remote_ctx = ctx;
}

void dm_query_pool_set_pass(dm_query_pool_t *self, dm_query_pool_pass_fn fn, void *ctx)
{
    self->pass = fn;
    self->pass_ctx = ctx;
}

void dm_query_pool_set_latency(dm_query_pool_t *self, dm_query_pool_latency_fn fn, void *ctx)
{
    self->latency = fn;
    self->latency_ctx = ctx;
}

/* Queues r (its env stays the caller's on error, r is freed) and wakes
 * a worker for it. */
static dm_err s_submit(dm_query_pool_t *self, dm_query_pool_req_t *r, zmq_msg_t *rid,
                       zmq_msg_t *payload, uint64_t cursor, dm_buf_t *why)
{
    dm_query_sched_req_t req = {
        .key = zmq_msg_gets(payload, "User-Id"),
        .owner = zmq_msg_data(rid),
        .owner_len = zmq_msg_size(rid),
        .fd = zmq_msg_get(payload, ZMQ_SRCFD),
        .cursor = cursor,
        .data = r,
    };
    pthread_mutex_lock(&self->lock);
    dm_err rc = dm_query_sched_submit(self->sched, &req, dm_clock_mono_ms(), why);
    pthread_cond_t *wake = rc == DM_OK ? s_waker(self) : NULL;
    pthread_mutex_unlock(&self->lock);
    if (wake)
        pthread_cond_signal(wake);
    if (rc != DM_OK) {
        r->env = NULL; /* still the caller's */
        dm_query_pool__req_free(self, r);
    }
    return rc;
}

/* A new request of env (taken) from the client with routing id rid
 * (copied), arrived now; NULL when out of memory (env untouched). */
static dm_query_pool_req_t *s_req_new(dm_query_pool_t *self, void *rid, Dm__Envelope *env)
{
    dm_query_pool_req_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    zmq_msg_init(&r->rid);
    zmq_msg_copy(&r->rid, rid);
    r->env = env;
    r->arrived_ns = dm_clock_mono_ns();
    r->actx.pool = self;
    r->actx.caller = &r->caller;
    return r;
}

/* dm_query_pool_forward(_as): caller NULL takes the payload's. */
static dm_err s_forward(dm_query_pool_t *self, void *rid_msg, void *payload_msg,
                        const dm_rpc_caller_t *caller, Dm__Envelope **env, dm_buf_t *why)
{
    zmq_msg_t *rid = rid_msg, *payload = payload_msg;
    Dm__Envelope *e = *env;
    int64_t now = dm_clock_mono_ms();
    uint64_t cursor = e->body_case == DM__ENVELOPE__BODY_QUERY_NEXT    ? e->query_next->cursor
                      : e->body_case == DM__ENVELOPE__BODY_QUERY_CLOSE ? e->query_close->cursor
                                                                       : 0;
    if (e->body_case != DM__ENVELOPE__BODY_QUERY_REQ && !cursor) {
        if (why)
            dm_buf_puts(why, "no open query 0: name the cursor of a query's first reply");
        return DM_ERR_NOTFOUND;
    }
    if (e->body_case == DM__ENVELOPE__BODY_QUERY_CLOSE) {
        dm_query_pool_acts_t acts = {0};
        pthread_mutex_lock(&self->lock);
        dm_err rc = dm_query_sched_close(self->sched, cursor, zmq_msg_data(rid), zmq_msg_size(rid), now);
        dm_query_pool__collect(self, &acts);
        pthread_mutex_unlock(&self->lock);
        dm_query_pool__run_acts(self, self->loop_out, &acts);
        free(acts.a);
        if (rc != DM_OK) {
            if (why)
                dm_buf_printf(why, "no open query %llu: it finished, failed, or was closed",
                              (unsigned long long)cursor);
            return rc;
        }
        Dm__Envelope rep_env;
        Dm__QueryRep rep = DM__QUERY_REP__INIT;
        rep.cursor = cursor;
        rep.done = true;
        dm_envelope_init(&rep_env, e->id, DM__ENVELOPE__BODY_QUERY_REP, &rep);
        zmq_msg_t msg;
        if (dm_query_pool__pack(&rep_env, &msg))
            dm_query_pool__send_msg(self->loop_out, rid, &msg);
        dm__envelope__free_unpacked(e, NULL);
        *env = NULL;
        return DM_OK;
    }
    dm_query_pool_req_t *r = s_req_new(self, rid, e);
    if (!r) {
        if (why)
            dm_buf_puts(why, "the node is out of memory; retry later");
        return DM_ERR_NOMEM;
    }
    if (e->body_case == DM__ENVELOPE__BODY_QUERY_REQ && caller)
        r->caller = *caller;
    else if (e->body_case == DM__ENVELOPE__BODY_QUERY_REQ)
        dm_rpc_caller(payload, &r->caller);
    if (!cursor && dm_query_pool__inline(self, r, zmq_msg_gets(payload, "User-Id"))) {
        /* answered on the node loop */
        *env = NULL; /* freed with r */
        dm_query_pool__req_free(self, r);
        return DM_OK;
    }
    dm_err rc = s_submit(self, r, rid, payload, cursor, why);
    if (rc == DM_OK)
        *env = NULL;
    return rc;
}

dm_err dm_query_pool_forward(dm_query_pool_t *self, void *rid_msg, void *payload_msg,
                             Dm__Envelope **env, dm_buf_t *why)
{
    return s_forward(self, rid_msg, payload_msg, NULL, env, why);
}

dm_err dm_query_pool_forward_as(dm_query_pool_t *self, void *rid_msg, void *payload_msg,
                                const dm_rpc_caller_t *caller, Dm__Envelope **env, dm_buf_t *why)
{
    return s_forward(self, rid_msg, payload_msg, caller, env, why);
}

dm_err dm_query_pool_adopt(dm_query_pool_t *self, void *rid_msg, void *payload_msg,
                           const dm_rpc_caller_t *caller, Dm__Envelope **env,
                           dm_query_remote_t *remote, Dm__Envelope **first, dm_buf_t *why)
{
    dm_query_pool_open_t *o = calloc(1, sizeof *o);
    dm_query_pool_req_t *r = o ? s_req_new(self, rid_msg, *env) : NULL;
    if (!r) {
        free(o);
        if (self->remote_free)
            self->remote_free(self->remote_ctx, remote);
        dm__envelope__free_unpacked(*first, NULL);
        *first = NULL;
        if (why)
            dm_buf_puts(why, "the node is out of memory; retry later");
        return DM_ERR_NOMEM;
    }
    r->caller = *caller;
    o->remote = remote;
    o->passed = true;
    r->opened = o;
    r->first = *first;
    *first = NULL; /* freed with r, and remote with o, on error too */
    dm_err rc = s_submit(self, r, rid_msg, payload_msg, 0, why);
    if (rc == DM_OK)
        *env = NULL;
    return rc;
}

uint64_t dm_query_pool_gone_seq(dm_query_pool_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t seq = self->gone_seq;
    pthread_mutex_unlock(&self->lock);
    return seq;
}

bool dm_query_pool_gone_since(dm_query_pool_t *self, int fd, uint64_t seq)
{
    bool gone = false;
    pthread_mutex_lock(&self->lock);
    if (fd >= 0 && (size_t)fd < self->gone_cap)
        gone = self->gone_at[fd] > seq;
    pthread_mutex_unlock(&self->lock);
    return gone;
}
