/* query_sched.h: the policy of the SQL worker pool: which request a worker
 * runs next, what a client may hold, what gives way and when. Pure: no
 * threads, sockets or SQLite, times are passed in, so every rule is tested
 * alone (tests/unit/query/test_query_sched.c). query_pool.c calls it under its
 * mutex and carries out the actions it queues.
 *
 * The rules (docs/operations.md, "SQL queries"):
 * - Requests wait in one queue; a worker takes the next dispatchable one,
 *   from the client (CURVE key) served least recently, so one client's
 *   burst cannot starve another. A request that waited queue_wait_ms is
 *   refused "busy", never started. The queue holds max_queued requests,
 *   key_queued per client: beyond that a client is told "busy" at once.
 * - A client holds at most key_cursors open queries (cursors), the node
 *   max_cursors; a client runs at most key_running requests at a time.
 * - A cursor not pulled for cursor_idle_ms is closed; when the table is
 *   full, one idle for cursor_evict_ms gives way to a new query. A cursor
 *   lives at most lifetime_ms (the query time limit).
 * - The short lane: one worker beyond the general ones takes a request
 *   only while every general worker has been busy for long_ms or more
 *   (running long queries), and then the newest one; a request it runs
 *   that passes short_ms while another waits for it is cancelled "busy".
 *   So short queries are served while long ones fill the general workers,
 *   within about short_ms even behind a burst from many keys.
 * - A client that disconnects (dm_query_sched_disconnect) loses its queued
 *   requests, its cursors, and its running requests are cancelled. */
#ifndef DM_QUERY_SCHED_H
#define DM_QUERY_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

#define DM_QUERY_SCHED_KEY_QUEUED 8          /* requests one client may have waiting */
#define DM_QUERY_SCHED_KEY_CURSORS 4         /* open queries one client may hold */
#define DM_QUERY_SCHED_MAX_QUEUED 256        /* requests waiting, whole node */
#define DM_QUERY_SCHED_MAX_CURSORS 64        /* open queries, whole node */
#define DM_QUERY_SCHED_QUEUE_WAIT_MS 5000    /* longest wait in the queue before "busy" */
#define DM_QUERY_SCHED_LONG_MS 200           /* a request running this long counts as long */
#define DM_QUERY_SCHED_SHORT_MS 500          /* longest run on the short lane while others wait */
#define DM_QUERY_SCHED_CURSOR_IDLE_MS 10000  /* an un-pulled cursor is closed after this */
#define DM_QUERY_SCHED_CURSOR_EVICT_MS 1000  /* idle this long, a cursor gives way when full */
#define DM_QUERY_SCHED_OWNER_MAX 256         /* bytes of a routing id */
#define DM_QUERY_SCHED_KEY_MAX 64            /* characters of a client key (hex CURVE key) */
#define DM_QUERY_SCHED_WHY_MAX 320           /* bytes of a refusal text */

typedef struct dm_qsched dm_query_sched_t;

/* 0 fields take the DM_QUERY_SCHED_* defaults; key_running 0 means half the
 * general workers (at least one). */
typedef struct {
    unsigned general;    /* general workers, at least 1 */
    bool short_lane;     /* one more worker, the short lane (index general) */
    unsigned key_queued, key_cursors, key_running, max_queued, max_cursors;
    int64_t queue_wait_ms, long_ms, short_ms, cursor_idle_ms, cursor_evict_ms;
    int64_t lifetime_ms; /* a cursor's life, the query time limit */
} dm_query_sched_limits_t;

/* Why a request or query was refused or stopped. */
typedef enum {
    DM_QUERY_SCHED_WAITED = 1, /* waited queue_wait_ms in the queue */
    DM_QUERY_SCHED_SHORT,      /* ran past short_ms on the short lane */
    DM_QUERY_SCHED_GONE,       /* its client disconnected */
    DM_QUERY_SCHED_CLOSED,     /* its owner closed it */
    DM_QUERY_SCHED_IDLE,       /* a cursor not pulled in time, or evicted */
    DM_QUERY_SCHED_EXPIRED,    /* a cursor past its lifetime */
    DM_QUERY_SCHED_STOPPING,   /* the node stops */
} dm_query_sched_reason;

/* What the pool must do once it releases its lock (CANCEL: at once). */
typedef enum {
    DM_QUERY_SCHED_REFUSE = 1, /* data: reply an error with the reason's text, free it */
    DM_QUERY_SCHED_DROP,       /* data: free it, no reply (the client is gone) */
    DM_QUERY_SCHED_CLOSE,      /* query: close it (nobody else holds it) */
    DM_QUERY_SCHED_CANCEL,     /* worker: cancel the query it runs */
} dm_query_sched_act_kind;

typedef struct {
    dm_query_sched_act_kind kind;
    dm_query_sched_reason reason;
    void *ptr;       /* REFUSE, DROP: request data; CLOSE: the query */
    unsigned worker; /* CANCEL */
} dm_query_sched_act_t;

/* One request as the node loop hands it over. */
typedef struct {
    const char *key;   /* the client's CURVE key (ZAP User-Id), NULL: unknown */
    const void *owner; /* routing id, compared with a cursor's opener */
    size_t owner_len;
    int fd;            /* the connection's descriptor, -1 unknown */
    uint64_t cursor;   /* 0: a new query; else a pull of this cursor */
    void *data;        /* the pool's; handed back by take or in an action */
} dm_query_sched_req_t;

/* A new scheduler (limits copied, defaults filled). DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_query_sched_new(const dm_query_sched_limits_t *limits, dm_query_sched_t **out);
/* Frees it; call dm_query_sched_shutdown and carry out its actions first. */
void dm_query_sched_destroy(dm_query_sched_t **self_p);
/* The effective limits. Borrowed, valid for the scheduler's life. */
const dm_query_sched_limits_t *dm_query_sched_limits(const dm_query_sched_t *self);

/* Queues a request. DM_OK; DM_ERR_BUSY when the client or the node is at
 * a cap (the line appended to why says which, with the cap and what to
 * do); DM_ERR_NOTFOUND for a pull of a cursor this owner does not hold;
 * DM_ERR_NOMEM. why (base/err.h) may be NULL. On error the request is not
 * kept. */
/* Whether the client of key has no request queued, opening or running
 * and may open one more cursor. */
bool dm_query_sched_client_idle(const dm_query_sched_t *self, const char *key);
DM_NODISCARD dm_err dm_query_sched_submit(dm_query_sched_t *self, const dm_query_sched_req_t *req,
                                          int64_t now, dm_buf_t *why);
/* The owner closes a cursor: an idle one is removed (CLOSE action), a busy
 * one is cancelled and closed when its worker finishes. DM_ERR_NOTFOUND if
 * the owner holds no such cursor. */
DM_NODISCARD dm_err dm_query_sched_close(dm_query_sched_t *self, uint64_t cursor, const void *owner,
                                    size_t owner_len, int64_t now);
/* The next request for worker (idle), or NULL. For a pull, *query is the
 * cursor's query, lent until dm_query_sched_finish (NULL if the cursor is gone:
 * answer "no open query"); *cursor its id. For a new query both are 0. */
void *dm_query_sched_take(dm_query_sched_t *self, unsigned worker, int64_t now, uint64_t *cursor,
                     void **query);
/* The new query the worker runs stays open as cursor id (its first batch
 * did not end it); the scheduler now holds query. */
void dm_query_sched_opened(dm_query_sched_t *self, unsigned worker, uint64_t id, void *query, int64_t now);
/* The worker is done with its request. ended: the pulled query ended (the
 * cursor is removed). Returns true if the worker must close the lent query
 * (ended, or closed or abandoned while it ran). */
bool dm_query_sched_finish(dm_query_sched_t *self, unsigned worker, bool ended, int64_t now);
/* Why the worker's current request was cancelled, 0 if it was not. */
dm_query_sched_reason dm_query_sched_cancelled(const dm_query_sched_t *self, unsigned worker);
/* Time passes: refuses requests that waited too long, closes idle and
 * expired cursors, cancels the short lane's request past short_ms when
 * another waits for it. Returns true if a request is waiting. */
bool dm_query_sched_tick(dm_query_sched_t *self, int64_t now);
/* The connection on fd closed: its requests are dropped, its cursors
 * closed, its running requests cancelled. */
void dm_query_sched_disconnect(dm_query_sched_t *self, int fd);
/* Drops every request and closes every idle cursor (the pool stops). */
void dm_query_sched_shutdown(dm_query_sched_t *self);
/* Pops the next action; false when none is left. */
bool dm_query_sched_action(dm_query_sched_t *self, dm_query_sched_act_t *out);
/* The user-facing text of reason, with the limits that apply. */
void dm_query_sched_reason_text(const dm_query_sched_t *self, dm_query_sched_reason reason, char *buf,
                           size_t cap);
/* Requests waiting, open cursors (for tests and logs). */
size_t dm_query_sched_queued(const dm_query_sched_t *self);
size_t dm_query_sched_cursors(const dm_query_sched_t *self);

#endif
