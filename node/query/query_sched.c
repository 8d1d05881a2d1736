/* query_sched.c: the SQL pool's policy (query_sched.h): one queue served
 * fairly across client keys, caps per key and per node, deadlines, idle
 * cursors, the short lane, disconnects. Small linear structures: the queue
 * holds at most DM_QUERY_SCHED_MAX_QUEUED requests and the cursor table
 * DM_QUERY_SCHED_MAX_CURSORS, so scans stay in the microseconds. */
#include "query/query_sched.h"
#include "base/array.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ACTS_MIN 16 /* initial room of the action list */

typedef struct s_client {
    struct s_client *next;
    char key[DM_QUERY_SCHED_KEY_MAX + 1];
    unsigned queued, cursors, opening, running;
    uint64_t served; /* take counter when last served: lowest goes first */
} s_client;

typedef struct s_job {
    struct s_job *next;
    s_client *c;
    uint8_t owner[DM_QUERY_SCHED_OWNER_MAX];
    size_t owner_len;
    int fd;
    uint64_t cursor;
    void *data;
    int64_t since; /* when it started waiting */
    uint64_t seq;
} s_job;

typedef struct {
    uint64_t id; /* 0: free slot */
    s_client *c;
    uint8_t owner[DM_QUERY_SCHED_OWNER_MAX];
    size_t owner_len;
    int fd;
    void *q;
    bool busy;  /* a worker pulls it */
    bool close; /* close when the worker finishes */
    int64_t opened, idle;
} s_cur;

typedef struct {
    bool busy;
    s_client *c;
    uint64_t cursor; /* the pulled cursor, 0 for a new query */
    /* Counted in opening at take: a new query, until opened or finished.
     * A pull of a cursor that has ended meanwhile also has cursor 0, and
     * must not uncount what it never counted. */
    bool opening;
    uint8_t owner[DM_QUERY_SCHED_OWNER_MAX];
    size_t owner_len;
    int fd;
    int64_t started;
    dm_query_sched_reason cancel;
} s_wk;

struct dm_qsched {
    dm_query_sched_limits_t l;
    s_client *clients;
    s_job *jobs; /* oldest first */
    size_t njobs, ncursors, opening;
    uint64_t seq, served;
    s_cur *cur;
    s_wk *wk;
    unsigned nwk;
    dm_query_sched_act_t *acts;
    size_t nacts, acts_cap, acts_head;
};

dm_err dm_query_sched_new(const dm_query_sched_limits_t *limits, dm_query_sched_t **out)
{
    *out = NULL;
    dm_query_sched_t *self = calloc(1, sizeof *self);
    if (!self)
        return DM_ERR_NOMEM;
    dm_query_sched_limits_t l = limits ? *limits : (dm_query_sched_limits_t){0};
    l.general = l.general ? l.general : 1;
    l.key_queued = l.key_queued ? l.key_queued : DM_QUERY_SCHED_KEY_QUEUED;
    l.key_cursors = l.key_cursors ? l.key_cursors : DM_QUERY_SCHED_KEY_CURSORS;
    l.key_running = l.key_running ? l.key_running : (l.general / 2 ? l.general / 2 : 1);
    l.max_queued = l.max_queued ? l.max_queued : DM_QUERY_SCHED_MAX_QUEUED;
    l.max_cursors = l.max_cursors ? l.max_cursors : DM_QUERY_SCHED_MAX_CURSORS;
    l.queue_wait_ms = l.queue_wait_ms ? l.queue_wait_ms : DM_QUERY_SCHED_QUEUE_WAIT_MS;
    l.long_ms = l.long_ms ? l.long_ms : DM_QUERY_SCHED_LONG_MS;
    l.short_ms = l.short_ms ? l.short_ms : DM_QUERY_SCHED_SHORT_MS;
    l.cursor_idle_ms = l.cursor_idle_ms ? l.cursor_idle_ms : DM_QUERY_SCHED_CURSOR_IDLE_MS;
    l.cursor_evict_ms = l.cursor_evict_ms ? l.cursor_evict_ms : DM_QUERY_SCHED_CURSOR_EVICT_MS;
    l.lifetime_ms = l.lifetime_ms > 0 ? l.lifetime_ms : 30000;
    self->l = l;
    self->nwk = l.general + (l.short_lane ? 1 : 0);
    self->cur = calloc(l.max_cursors, sizeof *self->cur);
    self->wk = calloc(self->nwk, sizeof *self->wk);
    if (!self->cur || !self->wk) {
        dm_query_sched_destroy(&self);
        return DM_ERR_NOMEM;
    }
    *out = self;
    return DM_OK;
}

void dm_query_sched_destroy(dm_query_sched_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_query_sched_t *self = *self_p;
    while (self->jobs) {
        s_job *j = self->jobs;
        self->jobs = j->next;
        free(j);
    }
    while (self->clients) {
        s_client *c = self->clients;
        self->clients = c->next;
        free(c);
    }
    free(self->cur);
    free(self->wk);
    free(self->acts);
    free(self);
    *self_p = NULL;
}

const dm_query_sched_limits_t *dm_query_sched_limits(const dm_query_sched_t *self) { return &self->l; }

size_t dm_query_sched_queued(const dm_query_sched_t *self) { return self->njobs; }

size_t dm_query_sched_cursors(const dm_query_sched_t *self) { return self->ncursors; }

/* Queues an action; an action lost to a failed allocation would leak a
 * query or leave a client waiting, so the list only grows (bounded by the
 * queue and the cursor table between two drains). */
static void s_act(dm_query_sched_t *self, dm_query_sched_act_kind kind, dm_query_sched_reason reason, void *ptr,
                  unsigned worker)
{
    if (self->acts_head == self->nacts)
        self->acts_head = self->nacts = 0;
    if (!dm_array_reserve(&self->acts, &self->acts_cap, self->nacts + 1, sizeof *self->acts,
                          S_ACTS_MIN))
        abort(); /* cannot keep the pool's promises without memory */
    self->acts[self->nacts++] = (dm_query_sched_act_t){kind, reason, ptr, worker};
}

bool dm_query_sched_action(dm_query_sched_t *self, dm_query_sched_act_t *out)
{
    if (self->acts_head >= self->nacts) {
        self->acts_head = self->nacts = 0;
        return false;
    }
    *out = self->acts[self->acts_head++];
    return true;
}

/* The client of key, created if absent (NULL: out of memory). */
static s_client *s_client_get(dm_query_sched_t *self, const char *key)
{
    key = key ? key : "";
    for (s_client *c = self->clients; c; c = c->next)
        if (strncmp(c->key, key, DM_QUERY_SCHED_KEY_MAX) == 0)
            return c;
    s_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    snprintf(c->key, sizeof c->key, "%s", key);
    c->next = self->clients;
    self->clients = c;
    return c;
}

bool dm_query_sched_client_idle(const dm_query_sched_t *self, const char *key)
{
    key = key ? key : "";
    for (const s_client *c = self->clients; c; c = c->next)
        if (strncmp(c->key, key, DM_QUERY_SCHED_KEY_MAX) == 0)
            return c->queued == 0 && c->running == 0 && c->opening == 0 &&
                   c->cursors < self->l.key_cursors;
    return true;
}

/* Frees c once it holds nothing. */
static void s_client_put(dm_query_sched_t *self, s_client *c)
{
    if (!c || c->queued || c->cursors || c->opening || c->running)
        return;
    for (s_client **pp = &self->clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            free(c);
            return;
        }
}

static s_cur *s_cursor(dm_query_sched_t *self, uint64_t id)
{
    for (unsigned i = 0; id && i < self->l.max_cursors; i++)
        if (self->cur[i].id == id)
            return &self->cur[i];
    return NULL;
}

static bool s_owns(const uint8_t *owner, size_t len, const void *who, size_t who_len)
{
    return len == who_len && memcmp(owner, who, len) == 0;
}

/* Removes cursor k from the table (its query goes with a CLOSE action
 * unless keep_query). */
static void s_cursor_remove(dm_query_sched_t *self, s_cur *k, dm_query_sched_reason why, bool keep_query)
{
    if (!keep_query && k->q)
        s_act(self, DM_QUERY_SCHED_CLOSE, why, k->q, 0);
    s_client *c = k->c;
    c->cursors--;
    self->ncursors--;
    memset(k, 0, sizeof *k);
    s_client_put(self, c);
}

/* dm_query_sched_submit's work; why is never NULL here. */
static dm_err s_submit(dm_query_sched_t *self, const dm_query_sched_req_t *req, int64_t now,
                       dm_buf_t *why)
{
    const dm_query_sched_limits_t *l = &self->l;
    if (req->cursor) {
        s_cur *k = s_cursor(self, req->cursor);
        if (!k || !s_owns(k->owner, k->owner_len, req->owner, req->owner_len)) {
            dm_buf_printf(why,
                          "no open query %llu: it finished, failed, was closed, or was closed "
                          "after %lld ms without a pull or at its time limit of %lld ms",
                          (unsigned long long)req->cursor, (long long)l->cursor_idle_ms,
                          (long long)l->lifetime_ms);
            return DM_ERR_NOTFOUND;
        }
    }
    if (self->njobs >= l->max_queued) {
        dm_buf_printf(why,
                      "the node is busy: %u query requests are waiting for a worker (the "
                      "node's limit); retry in a few seconds",
                      l->max_queued);
        return DM_ERR_BUSY;
    }
    s_client *c = s_client_get(self, req->key);
    if (!c) {
        dm_buf_puts(why, "the node is out of memory; retry later");
        return DM_ERR_NOMEM;
    }
    dm_err rc = DM_OK;
    if (c->queued >= l->key_queued) {
        dm_buf_printf(why,
                      "the node is busy: this client already has %u query requests waiting "
                      "(the most one client may queue); wait for their answers before sending "
                      "more",
                      l->key_queued);
        rc = DM_ERR_BUSY;
    } else if (!req->cursor && c->cursors >= l->key_cursors) {
        dm_buf_printf(why,
                      "the node is busy: this client already holds %u open queries (the most "
                      "one client may hold); pull them to the end or close them first",
                      l->key_cursors);
        rc = DM_ERR_BUSY;
    }
    s_job *j = rc ? NULL : calloc(1, sizeof *j);
    if (!rc && !j) {
        dm_buf_puts(why, "the node is out of memory; retry later");
        rc = DM_ERR_NOMEM;
    }
    if (rc) {
        s_client_put(self, c);
        return rc;
    }
    j->c = c;
    j->owner_len = req->owner_len < sizeof j->owner ? req->owner_len : sizeof j->owner;
    memcpy(j->owner, req->owner, j->owner_len);
    j->fd = req->fd;
    j->cursor = req->cursor;
    j->data = req->data;
    j->since = now;
    j->seq = ++self->seq;
    s_job **pp = &self->jobs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = j;
    self->njobs++;
    c->queued++;
    return DM_OK;
}

dm_err dm_query_sched_submit(dm_query_sched_t *self, const dm_query_sched_req_t *req, int64_t now,
                             dm_buf_t *why)
{
    dm_buf_t scratch = DM_BUF_INIT; /* why may be NULL */
    dm_err rc = s_submit(self, req, now, why ? why : &scratch);
    dm_buf_free(&scratch);
    return rc;
}

/* Cancels what worker w runs, once. */
static void s_cancel(dm_query_sched_t *self, unsigned w, dm_query_sched_reason why)
{
    if (!self->wk[w].busy || self->wk[w].cancel)
        return;
    self->wk[w].cancel = why;
    s_act(self, DM_QUERY_SCHED_CANCEL, why, NULL, w);
}

static int s_worker_of(dm_query_sched_t *self, uint64_t cursor)
{
    for (unsigned w = 0; w < self->nwk; w++)
        if (self->wk[w].busy && self->wk[w].cursor == cursor)
            return (int)w;
    return -1;
}

dm_err dm_query_sched_close(dm_query_sched_t *self, uint64_t cursor, const void *owner, size_t owner_len,
                       int64_t now)
{
    (void)now;
    s_cur *k = s_cursor(self, cursor);
    if (!k || !s_owns(k->owner, k->owner_len, owner, owner_len))
        return DM_ERR_NOTFOUND;
    if (!k->busy) {
        s_cursor_remove(self, k, DM_QUERY_SCHED_CLOSED, false);
        return DM_OK;
    }
    k->close = true;
    int w = s_worker_of(self, cursor);
    if (w >= 0)
        s_cancel(self, (unsigned)w, DM_QUERY_SCHED_CLOSED);
    return DM_OK;
}

/* Whether the short lane may take work now: no general worker is idle and
 * each has run its request for long_ms or more. */
static bool s_short_open(const dm_query_sched_t *self, int64_t now)
{
    for (unsigned w = 0; w < self->l.general; w++)
        if (!self->wk[w].busy || now - self->wk[w].started < self->l.long_ms)
            return false;
    return true;
}

/* Frees a cursor slot for a new query by evicting the cursor idle longest,
 * if it has idled cursor_evict_ms. Returns whether a slot is free. */
static bool s_room(dm_query_sched_t *self, int64_t now, bool evict)
{
    if (self->ncursors + self->opening < self->l.max_cursors)
        return true;
    s_cur *oldest = NULL;
    for (unsigned i = 0; i < self->l.max_cursors; i++) {
        s_cur *k = &self->cur[i];
        if (k->id && !k->busy && now - k->idle >= self->l.cursor_evict_ms &&
            (!oldest || k->idle < oldest->idle))
            oldest = k;
    }
    if (!oldest)
        return false;
    if (evict)
        s_cursor_remove(self, oldest, DM_QUERY_SCHED_IDLE, false);
    return true;
}

/* Whether j could start now (ignoring which worker). */
static bool s_ready(dm_query_sched_t *self, const s_job *j, int64_t now)
{
    const dm_query_sched_limits_t *l = &self->l;
    if (j->c->running >= l->key_running)
        return false;
    if (j->cursor) {
        s_cur *k = s_cursor(self, j->cursor);
        return !k || !k->busy;
    }
    return j->c->cursors + j->c->opening < l->key_cursors && s_room(self, now, false);
}

/* The next job to start. A general worker takes, from the client served
 * least recently, its oldest ready job. The short lane, when the rules let
 * it work, takes the newest ready job: a burst queued earlier goes to the
 * general workers or runs out its wait, while the request that just came
 * is served within one short slice. */
static s_job **s_pick(dm_query_sched_t *self, unsigned worker, int64_t now)
{
    bool lane = worker >= self->l.general;
    if (lane && !s_short_open(self, now))
        return NULL;
    s_job **best = NULL;
    for (s_job **pp = &self->jobs; *pp; pp = &(*pp)->next) {
        s_job *j = *pp;
        bool better = !best || (lane ? j->seq > (*best)->seq : j->c->served < (*best)->c->served);
        if (better && s_ready(self, j, now))
            best = pp;
    }
    return best;
}

void *dm_query_sched_take(dm_query_sched_t *self, unsigned worker, int64_t now, uint64_t *cursor,
                     void **query)
{
    *cursor = 0;
    *query = NULL;
    if (worker >= self->nwk || self->wk[worker].busy)
        return NULL;
    s_job **pp = s_pick(self, worker, now);
    if (!pp)
        return NULL;
    s_job *j = *pp;
    *pp = j->next;
    self->njobs--;
    s_client *c = j->c;
    c->queued--;
    c->running++;
    c->served = ++self->served;
    s_wk *w = &self->wk[worker];
    memset(w, 0, sizeof *w);
    w->busy = true;
    w->c = c;
    w->fd = j->fd;
    w->started = now;
    w->owner_len = j->owner_len;
    memcpy(w->owner, j->owner, j->owner_len);
    if (j->cursor) {
        s_cur *k = s_cursor(self, j->cursor);
        *cursor = j->cursor;
        if (k) {
            k->busy = true;
            w->cursor = j->cursor;
            *query = k->q;
        }
    } else {
        s_room(self, now, true);
        c->opening++;
        self->opening++;
        w->opening = true;
    }
    void *data = j->data;
    free(j);
    return data;
}

void dm_query_sched_opened(dm_query_sched_t *self, unsigned worker, uint64_t id, void *query, int64_t now)
{
    s_wk *w = &self->wk[worker];
    s_cur *k = NULL;
    for (unsigned i = 0; i < self->l.max_cursors && !k; i++)
        if (!self->cur[i].id)
            k = &self->cur[i];
    if (!k || w->cursor || !w->busy) { /* a slot was reserved at take: cannot happen */
        s_act(self, DM_QUERY_SCHED_CLOSE, DM_QUERY_SCHED_IDLE, query, 0);
        return;
    }
    k->id = id;
    k->c = w->c;
    k->owner_len = w->owner_len;
    memcpy(k->owner, w->owner, w->owner_len);
    k->fd = w->fd;
    k->q = query;
    k->opened = w->started;
    k->idle = now;
    k->busy = true; /* until finish */
    w->cursor = id;
    w->c->cursors++;
    self->ncursors++;
    w->c->opening--;
    self->opening--;
    w->opening = false;
    if (w->cancel) /* cancelled after its first batch: nobody will pull it */
        k->close = true;
}

bool dm_query_sched_finish(dm_query_sched_t *self, unsigned worker, bool ended, int64_t now)
{
    s_wk *w = &self->wk[worker];
    if (!w->busy)
        return false;
    bool must_close = false;
    s_cur *k = w->cursor ? s_cursor(self, w->cursor) : NULL;
    if (w->opening) { /* a new query that did not stay open */
        w->c->opening--;
        self->opening--;
        w->opening = false;
    }
    if (k) {
        k->busy = false;
        k->idle = now;
        if (ended || k->close) {
            must_close = true;
            s_cursor_remove(self, k, DM_QUERY_SCHED_CLOSED, true);
        } else {
            /* Pulls that waited on their own cursor start their wait now. */
            for (s_job *j = self->jobs; j; j = j->next)
                if (j->cursor == w->cursor)
                    j->since = now;
        }
    }
    s_client *c = w->c;
    c->running--;
    memset(w, 0, sizeof *w);
    s_client_put(self, c);
    return must_close;
}

dm_query_sched_reason dm_query_sched_cancelled(const dm_query_sched_t *self, unsigned worker)
{
    return worker < self->nwk ? self->wk[worker].cancel : 0;
}

bool dm_query_sched_tick(dm_query_sched_t *self, int64_t now)
{
    const dm_query_sched_limits_t *l = &self->l;
    for (s_job **pp = &self->jobs; *pp;) {
        s_job *j = *pp;
        s_cur *k = j->cursor ? s_cursor(self, j->cursor) : NULL;
        bool own_wait = k && k->busy; /* behind its own query's last pull */
        if (own_wait || now - j->since < l->queue_wait_ms) {
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        self->njobs--;
        j->c->queued--;
        s_act(self, DM_QUERY_SCHED_REFUSE, DM_QUERY_SCHED_WAITED, j->data, 0);
        s_client_put(self, j->c);
        free(j);
    }
    for (unsigned i = 0; i < l->max_cursors; i++) {
        s_cur *k = &self->cur[i];
        if (!k->id)
            continue;
        if (now - k->opened >= l->lifetime_ms) {
            int w = s_worker_of(self, k->id);
            if (w >= 0) { /* the engine's own deadline stops it; close it after */
                k->close = true;
                continue;
            }
            s_cursor_remove(self, k, DM_QUERY_SCHED_EXPIRED, false);
        } else if (!k->busy && now - k->idle >= l->cursor_idle_ms) {
            s_cursor_remove(self, k, DM_QUERY_SCHED_IDLE, false);
        }
    }
    if (l->short_lane) {
        unsigned s = l->general;
        s_wk *w = &self->wk[s];
        if (w->busy && !w->cancel && now - w->started >= l->short_ms) {
            /* Is another client's request ready to take the lane? (The
             * running client's own requests wait on its running cap.) */
            if (s_pick(self, s, now))
                s_cancel(self, s, DM_QUERY_SCHED_SHORT);
        }
    }
    return self->jobs != NULL;
}

void dm_query_sched_disconnect(dm_query_sched_t *self, int fd)
{
    if (fd < 0)
        return;
    for (s_job **pp = &self->jobs; *pp;) {
        s_job *j = *pp;
        if (j->fd != fd) {
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        self->njobs--;
        j->c->queued--;
        s_act(self, DM_QUERY_SCHED_DROP, DM_QUERY_SCHED_GONE, j->data, 0);
        s_client_put(self, j->c);
        free(j);
    }
    for (unsigned i = 0; i < self->l.max_cursors; i++) {
        s_cur *k = &self->cur[i];
        if (!k->id || k->fd != fd)
            continue;
        if (k->busy)
            k->close = true;
        else
            s_cursor_remove(self, k, DM_QUERY_SCHED_GONE, false);
    }
    for (unsigned w = 0; w < self->nwk; w++)
        if (self->wk[w].busy && self->wk[w].fd == fd)
            s_cancel(self, w, DM_QUERY_SCHED_GONE);
}

void dm_query_sched_shutdown(dm_query_sched_t *self)
{
    while (self->jobs) {
        s_job *j = self->jobs;
        self->jobs = j->next;
        self->njobs--;
        j->c->queued--;
        s_act(self, DM_QUERY_SCHED_DROP, DM_QUERY_SCHED_STOPPING, j->data, 0);
        s_client_put(self, j->c);
        free(j);
    }
    for (unsigned i = 0; i < self->l.max_cursors; i++)
        if (self->cur[i].id && !self->cur[i].busy)
            s_cursor_remove(self, &self->cur[i], DM_QUERY_SCHED_STOPPING, false);
    for (unsigned w = 0; w < self->nwk; w++)
        s_cancel(self, w, DM_QUERY_SCHED_STOPPING);
}

void dm_query_sched_reason_text(const dm_query_sched_t *self, dm_query_sched_reason reason, char *buf, size_t cap)
{
    const dm_query_sched_limits_t *l = &self->l;
    switch (reason) {
    case DM_QUERY_SCHED_WAITED:
        snprintf(buf, cap,
                 "the node is busy: this request waited %lld ms for a query worker without "
                 "getting one (all are running other queries); it was not started; retry in a "
                 "few seconds",
                 (long long)l->queue_wait_ms);
        break;
    case DM_QUERY_SCHED_SHORT:
        snprintf(buf, cap,
                 "the node is busy: its %u general query workers are running long queries and "
                 "this query ran past %lld ms on the worker kept for short queries while others "
                 "waited; it was stopped; retry when the node is less loaded",
                 l->general, (long long)l->short_ms);
        break;
    case DM_QUERY_SCHED_GONE:
        snprintf(buf, cap, "the query was cancelled: its client disconnected");
        break;
    case DM_QUERY_SCHED_CLOSED:
        snprintf(buf, cap, "the query was closed by its client");
        break;
    case DM_QUERY_SCHED_IDLE:
        snprintf(buf, cap, "the query was closed: not pulled within %lld ms",
                 (long long)l->cursor_idle_ms);
        break;
    case DM_QUERY_SCHED_EXPIRED:
        snprintf(buf, cap, "the query was closed at its time limit of %lld ms",
                 (long long)l->lifetime_ms);
        break;
    case DM_QUERY_SCHED_STOPPING:
        snprintf(buf, cap, "the node is stopping; retry on another node or later");
        break;
    default:
        snprintf(buf, cap, "the query was stopped");
        break;
    }
}
