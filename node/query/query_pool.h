/* query_pool.h: the node's SQL worker threads.
 *
 * The node loop hands QueryReq and QueryNext to the pool
 * (dm_query_pool_forward), which queues them under the rules of
 * query_sched.h (caps per client key, a deadline in the queue, fair turns
 * between clients, a short lane) and answers at once, "busy" with the cap
 * named, when they cannot be queued; QueryClose is carried out at once. A
 * worker runs a request on its own thread with the query's own SQLite
 * connection (query.h) and replies, as [routing id][reply], to the shared
 * outbox the node loop relays from (DM_CTL_OUTBOX). Any worker may pull
 * any cursor (queries move between threads, never run on two at once).
 * A watcher thread applies the deadlines, and, fed by a monitor of the
 * ROUTER socket (dm_query_pool_watch), cancels the work of clients that
 * disconnect. Queries never run on the node loop, so pings and catalog
 * work stay fast while heavy queries run. */
#ifndef DM_QUERY_POOL_H
#define DM_QUERY_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "proto/mesh.pb-c.h"
#include "query/query.h"
#include "query/query_sched.h"
#include "transport/rpc.h"

#define DM_QUERY_POOL_DEFAULT_WORKERS 2 /* general workers; one short lane comes on top */
#define DM_QUERY_POOL_MAX_WORKERS 64
#define DM_QUERY_BATCH_ROWS 10000     /* rows per reply at most */
#define DM_QUERY_BATCH_BYTES (1 << 20) /* bytes of rows per reply, about */

typedef struct dm_query_pool dm_query_pool_t;

/* Starts nworkers general workers plus the short lane, and the watcher,
 * on ctx. The outbox (DM_CTL_OUTBOX) must be bound by the node loop
 * already. lifetime_ms: the query time limit (0: the engine default).
 * DM_ERR_NOMEM, or DM_ERR_NET when a socket or thread cannot be made, with
 * a line naming it in why (base/err.h; not logged). */
DM_NODISCARD dm_err dm_query_pool_new(void *ctx, dm_query_engine_t *engine, unsigned nworkers,
                                      int64_t lifetime_ms, dm_query_pool_t **out,
                                      dm_buf_t *why);
/* Stops the workers (running queries are cancelled, open ones closed) and
 * frees the pool. NULL-safe. */
void dm_query_pool_destroy(dm_query_pool_t **self_p);

/* Watches router (the node's ROUTER socket; call on the thread that owns
 * it) for disconnects, so work of a client that went away is cancelled.
 * DM_ERR_NET, with ZeroMQ's reason appended to why (base/err.h; NULL
 * allowed), if the monitor cannot be set up (the pool still works, and
 * such work runs to its time limit). */
DM_NODISCARD dm_err dm_query_pool_watch(dm_query_pool_t *self, void *router, dm_buf_t *why);

/* Installs the access decision the workers ask for every product a query
 * names (query.h's dm_query_access_t), with the caller of the request
 * (transport/rpc.h's dm_rpc_caller of its payload). Call before the first
 * forward; fn runs on worker threads concurrently, so it must be
 * thread-safe. Without it every product is readable. */
typedef dm_err (*dm_query_pool_decide_fn)(void *ctx, const dm_rpc_caller_t *caller,
                                          const char *domain, const char *product,
                                          dm_policy_decision_t *out, dm_buf_t *why);
/* Whether caller may know of a product (query.h's describable); NULL: all. */
typedef bool (*dm_query_pool_describable_fn)(void *ctx, const dm_rpc_caller_t *caller,
                                             const char *domain, const char *product);
void dm_query_pool_set_access(dm_query_pool_t *self, dm_query_pool_decide_fn fn,
                              dm_query_pool_describable_fn describable, void *ctx);

/* Installs how workers reach products other nodes own (query.h's
 * dm_query_remote_t). For each QueryReq a worker asks make for the
 * query's remote (it may fail the query, e.g. a missing or invalid grant
 * when the SQL names another node's product: then one line in why), with
 * the request's caller, its grant bytes (QueryReq.grant, may be empty)
 * and SQL; free is called when the query closes. Thread-safe fns. Without
 * it queries read local products only. */
typedef dm_err (*dm_query_pool_remote_make_fn)(void *ctx, const dm_rpc_caller_t *caller,
                                              const uint8_t *grant, size_t grant_len,
                                              const char *sql, dm_query_remote_t **out,
                                              dm_buf_t *why);
typedef void (*dm_query_pool_remote_free_fn)(void *ctx, dm_query_remote_t *remote);
void dm_query_pool_set_remote(dm_query_pool_t *self, dm_query_pool_remote_make_fn make,
                              dm_query_pool_remote_free_fn free_fn, void *ctx);

/* Installs a pass-through for queries the remote (set_remote) can hand
 * whole to another node (the relay's, node_relay_pass.c): for each
 * QueryReq, after make, fn gets the query's remote and the request: DM_OK
 * with *rep NULL when it does not pass the query (the engine runs it);
 * DM_OK with *rep (the owner's reply: QueryRep or Error, the caller's to
 * free) when it did; else the failure, one line in why. For each pull of
 * a passed query's cursor fn gets req NULL and returns the next reply the
 * same way. fn gives up by deadline_ns (CLOCK_MONOTONIC) or once cancel
 * is set (a cancel of the query or its client gone). The pool renames the
 * reply's id and cursor to the client's and sends it on; the remote's
 * free ends the owner's side. Thread-safe fn; call before the first
 * forward. */
typedef dm_err (*dm_query_pool_pass_fn)(void *ctx, dm_query_remote_t *remote,
                                        const Dm__QueryReq *req, int64_t deadline_ns,
                                        const atomic_bool *cancel, Dm__Envelope **rep,
                                        dm_buf_t *why);
void dm_query_pool_set_pass(dm_query_pool_t *self, dm_query_pool_pass_fn fn, void *ctx);

/* Installs how the owner measures its products' query latency (the SLA's
 * latency term, quality/sla.h): after a QueryReq's first reply has been
 * handed to the outbox, fn is called once per product its SQL named and
 * was allowed to read (at most DM_QUERY_POOL_LATENCY_PRODUCTS, names under
 * DM_QUERY_POOL_LATENCY_NAME bytes), with the microseconds from the
 * request's arrival at the pool (queue wait included) to that reply.
 * Later pulls of a cursor are not measured. fn runs on worker threads
 * concurrently: it must be cheap and thread-safe. Call before the first
 * forward. */
#define DM_QUERY_POOL_LATENCY_PRODUCTS 8
#define DM_QUERY_POOL_LATENCY_NAME 64
typedef void (*dm_query_pool_latency_fn)(void *ctx, const char *domain, const char *product,
                                         int64_t latency_us);
void dm_query_pool_set_latency(dm_query_pool_t *self, dm_query_pool_latency_fn fn, void *ctx);

/* The node loop's own query work beyond its short queries (a relay's
 * pass-through answered by the loop, node_relay_loop.c) shares their
 * token bucket (query_pool_inline.c). True when the loop may start such
 * work for the client of key (its User-Id) now: the loop's share is not
 * spent and the client has nothing queued, opening or running and room
 * for a cursor, so the scheduler's caps and fairness stand. Loop only. */
bool dm_query_pool_loop_admit(dm_query_pool_t *self, const char *key);
/* Counts ns the loop spent on such work against its share. Loop only. */
void dm_query_pool_loop_spent(dm_query_pool_t *self, int64_t ns);
/* Disconnects of clients (those the watcher cancels work for), for work
 * the loop holds itself: dm_query_pool_gone_seq is a stamp to take when
 * the work starts; dm_query_pool_gone_since tells whether the connection
 * on descriptor fd went away after that stamp (false when unknown: the
 * work then runs to its deadline, as without a monitor). Any thread. */
uint64_t dm_query_pool_gone_seq(dm_query_pool_t *self);
bool dm_query_pool_gone_since(dm_query_pool_t *self, int fd, uint64_t seq);

/* A fresh cursor id: random, never 0 (a cursor is unguessable). */
uint64_t dm_query_pool_cursor_id(void);
/* rep, an owner's reply to a passed query, renamed for its client: the
 * client's request id, and cursor as the cursor it pulls more with;
 * returns whether the query ended with it (an error, or done). */
bool dm_query_pool_rename(Dm__Envelope *rep, uint64_t id, uint64_t cursor);

/* Hands one request to the pool: env (QueryReq, QueryNext or QueryClose,
 * taken: *env is set NULL on DM_OK) from the client with routing id
 * rid_msg (copied), payload_msg is the request's message (its ZAP User-Id
 * and source descriptor name the client). On DM_OK the pool answers; else
 * one line is appended to why (base/err.h; NULL allowed) for the node
 * loop to reply: DM_ERR_BUSY when the node or the client is at a cap
 * ("the node is busy: ..."), DM_ERR_NOTFOUND for a cursor this client
 * does not hold, DM_ERR_NOMEM. Never waits. Call on the node loop's
 * thread. */
DM_NODISCARD dm_err dm_query_pool_forward(dm_query_pool_t *self, void *rid_msg, void *payload_msg,
                                          Dm__Envelope **env, dm_buf_t *why);
/* dm_query_pool_forward with the caller given (a federated scan's: the
 * consumer, relayed; caller->relay is then the client the caps count) in
 * place of the one payload_msg names. */
DM_NODISCARD dm_err dm_query_pool_forward_as(dm_query_pool_t *self, void *rid_msg,
                                             void *payload_msg, const dm_rpc_caller_t *caller,
                                             Dm__Envelope **env, dm_buf_t *why);

/* Hands the pool a passed query the node loop started and whose first
 * reply (*first, the owner's QueryRep, taken: set NULL) leaves rows to
 * pull: a worker registers it as a cursor of the client (as a worker's own
 * pass-through does), renames the reply's id and cursor and sends it;
 * later pulls run on workers through the pass-through (query_pool.h's
 * dm_query_pool_pass_fn with req NULL) on remote, which the pool frees
 * with the query. env (the QueryReq, taken) and the rest as
 * dm_query_pool_forward_as. remote and *first are taken in any case (on
 * error freed: the remote's free ends the owner's query); on error env
 * stays the caller's and one line is appended to why for the loop to
 * reply. */
DM_NODISCARD dm_err dm_query_pool_adopt(dm_query_pool_t *self, void *rid_msg, void *payload_msg,
                                        const dm_rpc_caller_t *caller, Dm__Envelope **env,
                                        dm_query_remote_t *remote, Dm__Envelope **first,
                                        dm_buf_t *why);

#endif
