/* node_relay_loop.c: the relay's pass-through served by the node loop
 * itself (docs/architecture.md "Threads", "Pass-through on the loop").
 *
 * A passed query (node_relay_pass.c) on a worker costs the relay four
 * thread switches beyond the network's: the loop hands the request to a
 * worker, the worker's send wakes ZeroMQ's I/O thread, the owner's reply
 * wakes the worker, and its reply to the client wakes the loop again. On
 * the machines measured (a paravirtualised VM, two cores for three nodes
 * and the client) those switches, not the work, made a relayed lookup's
 * time and its tail. So the loop sends such a query on to the owner
 * itself and forwards the answer when the owner's connection, which it
 * then polls with its own sockets, says it came.
 *
 * Only the common case, nothing that could wait: a QueryReq with a grant
 * (no federated session of its own), SQL of at most
 * DM_NODE_RELAY_LOOP_SQL_MAX bytes, that the pass-through takes whole to
 * one owner, whose products a kept session of the consumer's covers, on
 * an idle connection to that owner that takes the request at once; while
 * the loop's share of time for queries is left (query_pool_inline.c's
 * bucket, which this work, the answers' reading and forwarding included,
 * is counted against) and the client has nothing queued or running at the workers
 * and nothing else on the loop (the scheduler's per-client caps judged at
 * admission: a client's later requests go to the scheduler, which does
 * not count this one), at most DM_NODE_RELAY_LOOP_MAX at a time. Anything
 * else goes to the workers as before.
 *
 * What the worker's way guarantees holds: the query's grant is verified
 * by the relay (consumer, relay, expiry, the SQL's hash, the signature)
 * while the owner works, before any answer is forwarded; the relay audits
 * the relayed products (and a refusal); the owner decides, masks and
 * audits as for the consumer; the query's time limit, DM_NODE_RELAY_WAIT_MS
 * of silence and the owner's death in the directory end the wait, with the
 * worker's words; a client that disconnects (the pool's watcher reports
 * it) has its query cancelled at the owner (the connection is dropped, as
 * a worker drops it). A first answer that leaves rows to pull makes the
 * query a cursor of the workers (dm_query_pool_adopt), which pull the rest
 * through the pass-through on the same connection; an owner that forgot
 * the session hands the request to the workers, which open a new one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "server/node_relay_priv.h"

#define DM_NODE_RELAY_LOOP_SQL_MAX 2048 /* bytes of SQL the loop plans, at most */
#define S_READS_MAX 4   /* messages read from one owner connection per wake-up */
#define S_STRAYS_MAX 64 /* replies to other requests one query's wait skips, at most */
#define S_NS_PER_MS INT64_C(1000000)
#define S_KEY_MAX 64 /* characters of a client key (hex CURVE key) */

/* One query the loop holds: the client's request and the relay's query. */
typedef struct {
    bool used;
    zmq_msg_t rid, payload; /* the client's routing id and request (its User-Id, SRCFD) */
    Dm__Envelope *env;      /* the QueryReq */
    dm_rpc_caller_t caller;
    char key[S_KEY_MAX + 1];
    dm_node__relay_query_t *q; /* q->pass the scan, q->pass->s its session */
    uint64_t id;               /* the owner's request's */
    int fd;                    /* the client's connection */
    uint64_t gone_seq;
    int64_t deadline_ns, heard_ns, checked_ns;
    unsigned strays; /* late replies of abandoned requests skipped */
} s_flight;

struct dm_node__relayloop {
    s_flight f[DM_NODE_RELAY_LOOP_MAX];
    size_t n;
    size_t polled[DM_NODE_RELAY_LOOP_MAX]; /* the flights of the last poll's items */
    size_t npolled;
};

dm_err dm_node__relayloop_open(dm_node_t *self)
{
    self->relay_loop = calloc(1, sizeof *self->relay_loop);
    return self->relay_loop ? DM_OK : DM_ERR_NOMEM;
}

/* Ends flight f: the relayed products audited (unless handed on), the
 * relay's query freed (its connection back to the cache when clean). */
static void s_end(dm_node_t *self, s_flight *f, bool audit)
{
    if (f->q) {
        if (audit)
            dm_node_relay__pass_audit(f->q);
        dm_node__fedrelay_free(self->relay, &f->q->remote);
    }
    if (f->env)
        dm__envelope__free_unpacked(f->env, NULL);
    zmq_msg_close(&f->rid);
    zmq_msg_close(&f->payload);
    memset(f, 0, sizeof *f);
    self->relay_loop->n--;
}

/* Ends f with an error reply to its client (code, line). */
static void s_fail(dm_node_t *self, s_flight *f, dm_err code, const char *line)
{
    dm_rpc_server_send_error(self->rpc, &f->rid, f->env->id, code, line);
    if (f->q && f->q->pass && f->q->pass->s)
        f->q->pass->s->broken = true; /* the owner's late answer is never read */
    s_end(self, f, true);
}

void dm_node__relayloop_close(dm_node_t *self)
{
    dm_node__relayloop_t *L = self->relay_loop;
    for (size_t i = 0; L && i < DM_NODE_RELAY_LOOP_MAX; i++)
        if (L->f[i].used) {
            L->f[i].q->pass->s->broken = true;
            s_end(self, &L->f[i], true);
        }
    free(L);
    self->relay_loop = NULL;
}

/* Sends q's passed query on its session (a kept one, on an idle
 * connection): *id; false when it cannot go now (the workers' way then). */
static bool s_send(dm_node__relay_query_t *q, const Dm__QueryReq *req, uint64_t *id)
{
    dm_query_rscan_t *sc = q->pass;
    dm_err rc = DM_OK;
    dm_buf_t why = DM_BUF_INIT;
    int64_t deadline = dm_clock_mono_ns() + DM_NODE_RELAY_POLL_MS * S_NS_PER_MS;
    sc->s = dm_node_relay__session_get(q, sc, q->pass_e[0], false, deadline, &rc, &why);
    dm_buf_free(&why);
    if (!sc->s || !sc->s->reused || sc->s->open_pending)
        return false;
    Dm__Envelope env;
    Dm__QueryReq qr;
    dm_node_relay__pass_req(q, sc, req, &qr, &env);
    if (dm_rpc_client_send_now(sc->s->client, &env, id, NULL) != DM_OK) {
        sc->s->broken = true; /* an idle connection that cannot send: not kept */
        return false;
    }
    return true;
}

/* Starts the relay's query of the request in f (f->env, f->caller set):
 * true when the loop holds it now or answered it; false (nothing sent)
 * when the workers take it. */
static bool s_start(dm_node_t *self, s_flight *f)
{
    const Dm__QueryReq *req = f->env->query_req;
    dm_query_remote_t *remote = NULL;
    if (dm_node__fedrelay_make(self->relay, &f->caller, req->grant.data, req->grant.len,
                               req->sql, &remote, NULL) != DM_OK)
        return false;
    dm_node__relay_query_t *q = (dm_node__relay_query_t *)remote;
    q->cache_only = true;
    bool covered = false;
    if (dm_node_relay__pass_plan(q, req, &covered) != DM_OK || !q->pass || !covered ||
        !s_send(q, req, &f->id)) {
        dm_node__fedrelay_free(self->relay, remote);
        return false;
    }
    f->q = q;
    if (!q->grant_verified) { /* while the owner works */
        dm_buf_t why = DM_BUF_INIT;
        if (dm_node_relay__grant_verify(q->pass, q->pass_e[0], &why) != DM_OK) {
            s_fail(self, f, DM_ERR_DENIED, why.len ? why.data : "the grant is refused");
            dm_buf_free(&why);
            return true;
        }
        dm_buf_free(&why);
    }
    int64_t now = dm_clock_mono_ns();
    f->deadline_ns = dm_node_relay__clip(now + self->query_timeout_ms * S_NS_PER_MS);
    f->heard_ns = f->checked_ns = now;
    return true;
}

bool dm_node__relayloop_try(dm_node_t *self, zmq_msg_t *rid, zmq_msg_t *payload,
                            Dm__Envelope **env, const dm_rpc_caller_t *caller)
{
    dm_node__relayloop_t *L = self->relay_loop;
    const Dm__QueryReq *req = (*env)->query_req;
    const char *key = zmq_msg_gets(payload, "User-Id");
    if (!L || !self->relay || L->n == DM_NODE_RELAY_LOOP_MAX || !req || !req->grant.len ||
        req->session.len || !req->sql || strlen(req->sql) > DM_NODE_RELAY_LOOP_SQL_MAX || !key ||
        strlen(key) > S_KEY_MAX)
        return false;
    s_flight *f = NULL;
    for (size_t i = 0; i < DM_NODE_RELAY_LOOP_MAX; i++) {
        if (L->f[i].used && strcmp(L->f[i].key, key) == 0)
            return false; /* one per client on the loop */
        if (!L->f[i].used && !f)
            f = &L->f[i];
    }
    int64_t start = dm_clock_mono_ns();
    if (!dm_query_pool_loop_admit(self->queries, key))
        return false;
    f->used = true;
    L->n++;
    zmq_msg_init(&f->rid);
    zmq_msg_init(&f->payload);
    zmq_msg_copy(&f->rid, rid);
    zmq_msg_copy(&f->payload, payload);
    f->env = *env;
    f->caller = *caller;
    snprintf(f->key, sizeof f->key, "%s", key);
    f->fd = zmq_msg_get(payload, ZMQ_SRCFD);
    f->gone_seq = dm_query_pool_gone_seq(self->queries);
    bool held = s_start(self, f);
    if (held) {
        *env = NULL;
    } else {
        f->env = NULL; /* still the caller's */
        s_end(self, f, false);
    }
    dm_query_pool_loop_spent(self->queries, dm_clock_mono_ns() - start);
    return held;
}

/* The owner forgot the session (it restarted or expired it): the
 * request goes to the workers, whose query opens a new one. */
static void s_hand_on(dm_node_t *self, s_flight *f)
{
    dm_query_rscan_t *sc = f->q->pass;
    dm_node__fedsess_drop(f->q->relay->sess, sc->s->owner, sc->s->nonce);
    sc->s->stale = true;
    dm_node__fedrelay_free(self->relay, &f->q->remote);
    f->q = NULL;
    dm_buf_t why = DM_BUF_INIT;
    uint64_t id = f->env->id;
    dm_err rc = dm_query_pool_forward_as(self->queries, &f->rid, &f->payload, &f->caller,
                                         &f->env, &why);
    if (rc != DM_OK)
        dm_rpc_server_send_error(self->rpc, &f->rid, id, rc, why.data);
    dm_buf_free(&why);
    s_end(self, f, false);
}

/* The owner's answer rep (taken) to f's query: forwarded renamed, or
 * handed to the workers as a cursor when rows are left to pull. */
static void s_answer(dm_node_t *self, s_flight *f, Dm__Envelope *rep)
{
    dm_query_rscan_t *sc = f->q->pass;
    if (dm_query_pool_gone_since(self->queries, f->fd, f->gone_seq)) {
        /* The client left meanwhile: nothing forwarded, no cursor adopted
         * for nobody, and no request handed on. */
        dm__envelope__free_unpacked(rep, NULL);
        sc->s->broken = true;
        s_end(self, f, true);
        return;
    }
    if (dm_node_relay__forgotten(rep)) {
        dm__envelope__free_unpacked(rep, NULL);
        s_hand_on(self, f);
        return;
    }
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = dm_node_relay__pass_take(sc, rep, &why);
    if (rc != DM_OK) {
        dm__envelope__free_unpacked(rep, NULL);
        s_fail(self, f, rc, why.len ? why.data : dm_err_str(rc));
        dm_buf_free(&why);
        return;
    }
    if (rep->body_case == DM__ENVELOPE__BODY_QUERY_REP && !rep->query_rep->done) {
        dm_node_relay__pass_audit(f->q);
        dm_query_remote_t *remote = &f->q->remote;
        uint64_t id = f->env->id;
        f->q = NULL; /* the pool's now, in any case */
        rc = dm_query_pool_adopt(self->queries, &f->rid, &f->payload, &f->caller, &f->env,
                                 remote, &rep, &why);
        if (rc != DM_OK)
            dm_rpc_server_send_error(self->rpc, &f->rid, id, rc, why.data);
        dm_buf_free(&why);
        s_end(self, f, false);
        return;
    }
    /* a cursor never pulled, yet as unguessable as a worker's */
    (void)dm_query_pool_rename(rep, f->env->id, dm_query_pool_cursor_id());
    dm_rpc_server_send(self->rpc, &f->rid, rep);
    dm__envelope__free_unpacked(rep, NULL);
    dm_buf_free(&why);
    s_end(self, f, true);
}

/* Reads what f's connection holds, S_READS_MAX messages at most (the
 * rest on the next wake-up): its answer, or late replies of requests
 * abandoned before (skipped; more than S_STRAYS_MAX of them fail the
 * query: an owner streaming replies holds the loop no longer). */
static void s_read(dm_node_t *self, s_flight *f)
{
    void *sock = dm_rpc_client_socket(f->q->pass->s->client);
    for (int reads = 0; reads < S_READS_MAX; reads++) {
        int events = 0;
        size_t sz = sizeof events;
        if (zmq_getsockopt(sock, ZMQ_EVENTS, &events, &sz) != 0 || !(events & ZMQ_POLLIN))
            return;
        Dm__Envelope *rep = NULL;
        dm_buf_t why = DM_BUF_INIT;
        dm_err rc = dm_rpc_client_recv(f->q->pass->s->client, &rep, &why);
        f->heard_ns = dm_clock_mono_ns();
        if (rc != DM_OK) {
            dm_buf_t line = DM_BUF_INIT;
            dm_node_relay__read_failed(f->q->pass, rc, &why, &line);
            dm_buf_free(&why);
            s_fail(self, f, rc, line.data);
            dm_buf_free(&line);
            return;
        }
        dm_buf_free(&why);
        if (rep->id == f->id) {
            s_answer(self, f, rep);
            return;
        }
        dm__envelope__free_unpacked(rep, NULL);
        if (++f->strays > S_STRAYS_MAX) { /* more than abandoned requests explain */
            char line[DM_BUF_WHY_MAX];
            snprintf(line, sizeof line, "%s: owner node %s sent more than %d replies to requests "
                     "this query did not make; its connection is dropped", f->q->pass->product,
                     f->q->pass->owner_hex, S_STRAYS_MAX);
            s_fail(self, f, DM_ERR_PROTO, line);
            return;
        }
    }
}

size_t dm_node__relayloop_items(dm_node_t *self, zmq_pollitem_t *items, size_t cap)
{
    dm_node__relayloop_t *L = self->relay_loop;
    L->npolled = 0;
    for (size_t i = 0; i < DM_NODE_RELAY_LOOP_MAX && L->npolled < cap; i++)
        if (L->f[i].used) {
            items[L->npolled] = (zmq_pollitem_t){
                dm_rpc_client_socket(L->f[i].q->pass->s->client), 0, ZMQ_POLLIN, 0};
            L->polled[L->npolled++] = i;
        }
    return L->npolled;
}

void dm_node__relayloop_ready(dm_node_t *self, const zmq_pollitem_t *items)
{
    dm_node__relayloop_t *L = self->relay_loop;
    int64_t start = dm_clock_mono_ns();
    bool read = false;
    for (size_t k = 0; k < L->npolled; k++) {
        s_flight *f = &L->f[L->polled[k]];
        if ((items[k].revents & ZMQ_POLLIN) && f->used) {
            s_read(self, f);
            read = true;
        }
    }
    L->npolled = 0;
    if (read) /* a batch's unpacking and packing counts against the loop's share */
        dm_query_pool_loop_spent(self->queries, dm_clock_mono_ns() - start);
}

long dm_node__relayloop_wait_ms(const dm_node_t *self)
{
    return self->relay_loop && self->relay_loop->n ? DM_NODE_RELAY_POLL_MS : -1;
}

/* Ends f when its client left, its time ran out, its owner went silent
 * or the directory has it gone (the worker's checks, in its words). */
static void s_check(dm_node_t *self, s_flight *f, int64_t now, uint64_t gone_seq)
{
    dm_query_rscan_t *sc = f->q->pass;
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc;
    /* the pool's lock only when some client left since f began */
    if (gone_seq != f->gone_seq && dm_query_pool_gone_since(self->queries, f->fd, f->gone_seq)) {
        sc->s->broken = true; /* dropped: the owner cancels the query */
        s_end(self, f, true);
    } else if ((rc = dm_node_relay__silence(sc, f->deadline_ns, f->heard_ns, now, &why))) {
        s_fail(self, f, rc, why.data);
    } else if (now - f->checked_ns >= DM_NODE_RELAY_POLL_MS * S_NS_PER_MS) {
        f->checked_ns = now;
        if (dm_node_relay__owner_gone(sc, &why) != DM_OK)
            s_fail(self, f, DM_ERR_NET, why.data);
    }
    dm_buf_free(&why);
}

void dm_node__relayloop_tick(dm_node_t *self)
{
    dm_node__relayloop_t *L = self->relay_loop;
    if (!L || !L->n)
        return;
    int64_t now = dm_clock_mono_ns();
    uint64_t gone_seq = dm_query_pool_gone_seq(self->queries);
    for (size_t i = 0; i < DM_NODE_RELAY_LOOP_MAX; i++)
        if (L->f[i].used)
            s_check(self, &L->f[i], now, gone_seq);
}
