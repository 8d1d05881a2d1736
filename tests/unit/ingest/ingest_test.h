/* ingest_test.h: the fixture the ingest pipeline's test files share: a
 * real store in a temporary directory with shop/items registered under a
 * contract, and a real pipeline (ingest.h) on inproc sockets, fed and
 * read as the node's router would. */
#ifndef DM_INGEST_TEST_H
#define DM_INGEST_TEST_H

#include <criterion/criterion.h>

#include <limits.h>
#include <string.h>
#include <zmq.h>

#include "fixture.h"
#include "ingest/ingest.h"
#include "transport/envelope.h"
#include "transport/rpc.h"

#define T_WAIT_MS 10000

typedef struct {
    char dir[PATH_MAX];
    dm_store_t *store;
    dm_registry_t *reg;
    uint32_t pid; /* shop/items */
    void *ctx, *push, *pull;
    dm_ingest_t *ingest;
    dm_buf_t why;
} t_pipe;

/* A store in a directory named after name with shop/items registered
 * under contract, and a pipeline on it (replies wait T_WAIT_MS at most). */
static inline void t_pipe_start(t_pipe *p, const char *name, const char *contract)
{
    memset(p, 0, sizeof *p);
    cr_assert_not_null(dm_t_tmpdir(p->dir, sizeof p->dir, name));
    cr_assert_eq(dm_store_open(p->dir, NULL, &p->store, NULL), DM_OK);
    cr_assert_eq(dm_registry_new(&p->reg), DM_OK);
    dm_product_t in = {0}, out = {0};
    in.domain = "shop";
    in.name = "items";
    in.version = "1.0.0";
    in.version_major = 1;
    in.contract = (char *)contract;
    in.contract_len = strlen(contract);
    dm_register_outcome o;
    cr_assert_eq(dm_store_product_register(p->store, &in, &o, &out, NULL, NULL), DM_OK);
    p->pid = out.id;
    dm_store_product_clear(&out);
    cr_assert_eq(dm_registry_install(p->reg, p->pid, contract, strlen(contract), &p->why), DM_OK,
                 "%s", p->why.data);
    p->ctx = zmq_ctx_new();
    p->push = zmq_socket(p->ctx, ZMQ_PUSH);
    p->pull = zmq_socket(p->ctx, ZMQ_PULL);
    cr_assert_eq(zmq_bind(p->push, DM_INGEST_INBOX), 0);
    cr_assert_eq(zmq_bind(p->pull, DM_CTL_OUTBOX), 0);
    zmq_setsockopt(p->pull, ZMQ_RCVTIMEO, &(int){T_WAIT_MS}, sizeof(int));
    cr_assert_eq(dm_ingest_new(p->ctx, p->store, p->reg, "shop", DM_RECORD_LIMIT_DEFAULT,
                               &p->ingest, &p->why),
                 DM_OK, "%s", p->why.data);
}

/* Sends req (domain and product set to shop/items here unless it names a
 * product) as envelope id. */
static inline void t_pipe_send(t_pipe *p, Dm__IngestReq *req, uint64_t id)
{
    req->domain = "shop";
    if (!req->product || !*req->product)
        req->product = "items";
    Dm__Envelope env;
    dm_envelope_init(&env, id, DM__ENVELOPE__BODY_INGEST_REQ, req);
    zmq_msg_t msg;
    cr_assert_eq(dm_rpc_pack(&env, &msg), DM_OK);
    dm_rpc_caller_t caller;
    memset(&caller, 0, sizeof caller);
    zmq_send(p->push, "rid", 3, ZMQ_SNDMORE);
    zmq_msg_send(&msg, p->push, ZMQ_SNDMORE);
    zmq_send(p->push, &caller, sizeof caller, 0);
}

/* Receives one reply ([rid][envelope]); its IngestRep (the caller frees
 * the returned envelope) or NULL when none came or it is another message. */
static inline Dm__Envelope *t_pipe_reply(t_pipe *p)
{
    char rid[16];
    if (zmq_recv(p->pull, rid, sizeof rid, 0) < 0)
        return NULL;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, p->pull, 0) < 0)
        return NULL;
    Dm__Envelope *env = dm_rpc_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg));
    zmq_msg_close(&msg);
    if (env && env->body_case != DM__ENVELOPE__BODY_INGEST_REP) {
        dm__envelope__free_unpacked(env, NULL);
        env = NULL;
    }
    return env;
}

/* Stops the pipeline (waits for its STOPPED) and destroys it. */
static inline void t_pipe_stop(t_pipe *p)
{
    dm_ingest_stop(p->ingest, p->push);
    char frame[64];
    while (zmq_recv(p->pull, frame, sizeof frame, 0) >= 0 &&
           !dm_ctl_is(frame, strlen(DM_CTL_STOPPED), DM_CTL_STOPPED))
        ;
    dm_ingest_destroy(&p->ingest);
}

/* Frees the sockets, the registry and the store, removes the directory. */
static inline void t_pipe_free(t_pipe *p)
{
    zmq_close(p->push);
    zmq_close(p->pull);
    zmq_ctx_term(p->ctx);
    dm_buf_free(&p->why);
    dm_registry_destroy(&p->reg);
    dm_store_destroy(&p->store);
    dm_t_rmdir(p->dir);
}

#endif
