/* query_pool_priv.h: what the files of the SQL workers share (query_pool.c:
 * workers, watcher, lifecycle, forwarding; query_pool_req.c: decisions,
 * replies, requests and the scheduler's actions; query_pool_inline.c: the
 * node loop's short queries). */
#ifndef DM_QUERY_POOL_PRIV_H
#define DM_QUERY_POOL_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <zmq.h>

#include "query/query_pool.h"

#define DM_QUERY_ACTS_MIN 16
#define DM_QUERY_GONE_FD_MIN 64        /* descriptors the disconnect stamps first hold */
#define DM_QUERY_GONE_FD_MAX (1 << 20) /* and at most (8 MiB; beyond, not recorded) */

/* The access of one query (query.h's dm_query_access_t arg): the pool's
 * decision with the caller of the request, and the products it allowed
 * (their latency is measured). */
typedef struct {
    struct dm_query_pool *pool;
    const dm_rpc_caller_t *caller;
    char read[DM_QUERY_POOL_LATENCY_PRODUCTS][2][DM_QUERY_POOL_LATENCY_NAME];
    size_t nread;
} dm_query_pool_actx_t;

/* An open query as the scheduler holds it: the query and the batch size
 * its client asked for. */
typedef struct {
    dm_query_t *q;
    uint32_t max_rows;
    dm_query_remote_t *remote; /* the query's way to other nodes (set_remote), or NULL */
    bool explain;              /* the final reply carries dm_query_explain's text */
    bool passed;               /* q is NULL: the pass-through serves its pulls */
} dm_query_pool_open_t;

/* A queued request: what the worker needs to run and answer it, and who
 * sent it (read on the node loop, where the message's metadata is). */
typedef struct {
    zmq_msg_t rid;
    Dm__Envelope *env;
    dm_rpc_caller_t caller;
    int64_t arrived_ns; /* monotonic: when the pool took it (latency) */
    dm_query_pool_actx_t actx; /* its decisions (caller points at caller above) */
    /* A new query the node loop opened (decided and audited) but left to a
     * worker, its statement not stepped (query_pool_inline.c); or NULL. */
    dm_query_pool_open_t *opened;
    /* With a passed opened query the loop started (dm_query_pool_adopt):
     * the owner's first reply, which the worker renames and sends. */
    Dm__Envelope *first;
} dm_query_pool_req_t;

typedef struct {
    dm_query_pool_t *pool;
    unsigned index;
    pthread_t thread;
    bool running;
    dm_query_t *q;  /* the query it runs (guarded by the pool's lock) */
    bool passing;   /* it runs a passed query's request (guarded by the lock) */
    atomic_bool pass_cancel; /* that request's cancel */
} dm_query_pool_worker_t;


/* Actions taken out of the scheduler under the lock, run after it. */
typedef struct {
    dm_query_sched_act_t *a;
    size_t n, cap;
} dm_query_pool_acts_t;

struct dm_query_pool {
    void *ctx;
    dm_query_engine_t *engine;
    pthread_mutex_t lock;
    pthread_cond_t work; /* the general workers wait here, */
    pthread_cond_t lane; /* the short lane's here */
    unsigned idle;       /* general workers waiting */
    dm_query_sched_t *sched;
    bool stopping;
    unsigned n; /* workers, the short lane last */
    dm_query_pool_worker_t *workers;
    pthread_t watcher;
    bool watcher_running;
    void *out;       /* the workers' and watcher's outbox socket, under out_lock:
                      * one pipe, so a cursor's replies arrive in order */
    pthread_mutex_t out_lock;
    void *mon;       /* the ROUTER monitor, once watched (the watcher reads it) */
    void *loop_out;  /* the node loop's outbox socket, for close replies */
    dm_query_pool_decide_fn decide; /* set before the first forward, then read-only */
    dm_query_pool_describable_fn describable;
    void *decide_ctx;
    dm_query_pool_remote_make_fn remote_make; /* set before the first forward, then read-only */
    dm_query_pool_remote_free_fn remote_free;
    void *remote_ctx;
    dm_query_pool_pass_fn pass; /* set before the first forward, then read-only */
    void *pass_ctx;
    dm_query_pool_latency_fn latency; /* set before the first forward, then read-only */
    void *latency_ctx;
    /* The node loop's own (query_pool_inline.c): the ROUTER it answers on
     * (set by dm_query_pool_watch) and its time spent on queries. */
    void *router;
    int64_t inline_window_ns; /* when the current window started (monotonic) */
    int64_t inline_spent_ns;  /* spent in it */
    /* Disconnects the watcher reported (dm_query_pool_gone_since), under
     * lock: per descriptor the stamp of its last disconnect (gone_seq
     * counts them), so that no number of other disconnects hides one. */
    uint64_t gone_seq;
    uint64_t *gone_at; /* indexed by descriptor, gone_cap of them */
    size_t gone_cap;
};

/* query.h's access callbacks over a dm_query_pool_actx_t: the pool's
 * decide (audited) noting the allowed products, and describable. */
dm_err dm_query_pool__decide(void *arg, const char *domain, const char *product,
                             dm_policy_decision_t *out, dm_buf_t *why);
bool dm_query_pool__describable(void *arg, const char *domain, const char *product);
/* Packs a QueryRep of rows (nrows, the query ended when done; first: with
 * the columns; cursor names the query to the client) for request id into
 * *msg; false when out of memory. *ended: the query is over (a batch over
 * the message limit becomes an error that ends it). */
bool dm_query_pool__pack_rows(dm_query_pool_open_t *o, uint64_t cursor, uint64_t id, bool first,
                              const dm_buf_t *rows, uint32_t nrows, bool done, zmq_msg_t *msg,
                              bool *ended);
/* Fetches the next batch of o and packs the reply into *msg (*packed) as
 * dm_query_pool__pack_rows. On a failure the reason of a cancel of worker
 * (read under the lock; an index past the workers has none) words it. */
void dm_query_pool__fetch_pack(dm_query_pool_t *self, unsigned worker, dm_query_pool_open_t *o,
                               uint64_t cursor, uint64_t id, bool first, zmq_msg_t *msg,
                               bool *ended, bool *packed);
/* The node loop's try at a new query (query_pool_inline.c): true when it
 * answered r (r stays the caller's to free); false when r goes to the
 * workers, with r->opened set when the loop opened the query. */
bool dm_query_pool__inline(dm_query_pool_t *self, dm_query_pool_req_t *r, const char *key);
/* Sends a packed reply (msg is consumed) as [rid][msg] to out. */
void dm_query_pool__send_msg(void *out, zmq_msg_t *rid, zmq_msg_t *msg);
/* Records r's latency for each product it read (the pool's latency hook). */
void dm_query_pool__latency(dm_query_pool_t *self, const dm_query_pool_req_t *r);
/* Packs env into *msg; false (msg empty) when out of memory. */
bool dm_query_pool__pack(const Dm__Envelope *env, zmq_msg_t *msg);
/* Packs an Error reply; false when out of memory. */
bool dm_query_pool__pack_error(uint64_t id, dm_err code, const char *text, zmq_msg_t *msg);
/* Packs and sends an Error reply to out. */
void dm_query_pool__send_error(void *out, zmq_msg_t *rid, uint64_t id, dm_err code, const char *text);
/* Sends a reply through the pool's shared socket (msg is consumed). */
void dm_query_pool__reply(dm_query_pool_t *self, zmq_msg_t *rid, zmq_msg_t *msg);
/* Frees a queued request (and the query the loop opened for it). NULL-safe. */
void dm_query_pool__req_free(dm_query_pool_t *self, dm_query_pool_req_t *r);
/* The error code a reason is reported with: "busy" ones as DM_ERR_BUSY
 * (like every other "the node is busy"), the rest as a cancel. */
dm_err dm_query_pool__reason_code(dm_query_sched_reason why);
/* Takes the scheduler's pending actions (call with the lock held): cancels
 * now, the rest into acts for dm_query_pool__run_acts. */
void dm_query_pool__collect(dm_query_pool_t *self, dm_query_pool_acts_t *acts);
/* Carries out collected actions without the lock; out answers refusals. */
void dm_query_pool__run_acts(dm_query_pool_t *self, void *out, dm_query_pool_acts_t *acts);
/* Runs one request of a passed query on w (the pool's pass): its first
 * (req set; cursor the id the client will pull with) or a pull (req
 * NULL). False when the first was not passed (the engine runs it); else
 * the reply for the client (request id) is packed in *msg (*packed), and
 * *ended says the query is over. Takes and drops the lock. */
bool dm_query_pool__pass(dm_query_pool_worker_t *w, dm_query_remote_t *remote,
                         const Dm__QueryReq *req, uint64_t id, uint64_t cursor, zmq_msg_t *msg,
                         bool *packed, bool *ended);
/* Closes an open query, frees its remote (the pool's remote_free) and
 * its holder. NULL-safe; sets *o_p NULL. */
void dm_query_pool__open_close(dm_query_pool_t *self, dm_query_pool_open_t **o_p);

#endif
