/* test_ingest_pool.c: finished ingest jobs hand their buffers to a pool
 * that later jobs reuse (ingest_job.c): many batches of alternating sizes,
 * sent back to back so that validation and commits overlap, must each be
 * stored as sent, with no bytes of an earlier batch showing through. A
 * real pipeline on inproc sockets and a real store. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "fixture.h"
#include "ingest/ingest.h"
#include "record/row.h"
#include "transport/envelope.h"
#include "transport/rpc.h"

#define T_WAIT_MS 10000
#define T_ROUNDS 20   /* more batches than the pool keeps */
#define T_BIG 300     /* ids of an even round's batch */
#define T_SMALL 3     /* ids of an odd round's batch */

static const char s_contract[] =
    "{\"apiVersion\":\"datamesh.io/v1\",\"kind\":\"DataProduct\",\"metadata\":{\"domain\":"
    "\"shop\",\"name\":\"items\",\"owner\":{\"contact\":\"a@b.co\",\"team\":\"t\"},"
    "\"version\":\"1.0.0\"},\"spec\":{\"schema\":{\"fields\":[{\"name\":\"id\",\"type\":"
    "\"int\"},{\"name\":\"amount\",\"type\":\"double\",\"required\":true}],"
    "\"primaryKey\":\"id\",\"type\":\"inline\"}}}";

/* Sends round r's batch: ids [0, n) with amount r * 1000 + id, then a
 * line without its amount (quarantined). */
static void s_send(void *push, int r, int n)
{
    dm_buf_t data = DM_BUF_INIT;
    for (int id = 0; id < n; id++)
        dm_buf_printf(&data, "{\"id\":%d,\"amount\":%d}\n", id, r * 1000 + id);
    dm_buf_printf(&data, "{\"id\":%d}\n", n);
    Dm__Envelope env;
    Dm__IngestReq req = DM__INGEST_REQ__INIT;
    req.domain = "shop";
    req.product = "items";
    req.data.data = (uint8_t *)data.data;
    req.data.len = data.len;
    dm_envelope_init(&env, (uint64_t)r, DM__ENVELOPE__BODY_INGEST_REQ, &req);
    zmq_msg_t msg;
    cr_assert_eq(dm_rpc_pack(&env, &msg), DM_OK);
    dm_rpc_caller_t caller;
    memset(&caller, 0, sizeof caller);
    zmq_send(push, "rid", 3, ZMQ_SNDMORE);
    zmq_msg_send(&msg, push, ZMQ_SNDMORE);
    zmq_send(push, &caller, sizeof caller, 0);
    dm_buf_free(&data);
}

/* Receives one reply; true for an IngestRep with these counts. */
static bool s_reply(void *pull, uint64_t accepted, uint64_t quarantined)
{
    char rid[16];
    if (zmq_recv(pull, rid, sizeof rid, 0) < 0)
        return false;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, pull, 0) < 0)
        return false;
    Dm__Envelope *env = dm_rpc_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg));
    bool ok = env && env->body_case == DM__ENVELOPE__BODY_INGEST_REP &&
              env->ingest_rep->accepted == accepted && env->ingest_rep->quarantined == quarantined;
    dm__envelope__free_unpacked(env, NULL);
    zmq_msg_close(&msg);
    return ok;
}

/* The stored amount of id (primary-key encoding of an int: big-endian
 * with the sign bit flipped), or -1. */
static double s_amount(dm_store_t *store, const dm_schema_t *schema, uint32_t pid, int id)
{
    uint64_t u = (uint64_t)(int64_t)id ^ UINT64_C(0x8000000000000000);
    uint8_t key[8];
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t)(u >> (56 - 8 * i));
    dm_buf_t row = DM_BUF_INIT;
    double amount = -1;
    dm_value_t v;
    if (dm_store_get_by_key(store, pid, key, sizeof key, &row, NULL) == DM_OK &&
        dm_row_get(schema, row.data, row.len, 1, &v) && !v.is_null)
        amount = v.d;
    dm_buf_free(&row);
    return amount;
}

Test(ingest_pool, reused_buffers_store_every_batch_as_sent)
{
    char dir[PATH_MAX];
    cr_assert_not_null(dm_t_tmpdir(dir, sizeof dir, "ingest_pool"));
    dm_store_t *store = NULL;
    dm_registry_t *reg = NULL;
    cr_assert_eq(dm_store_open(dir, NULL, &store, NULL), DM_OK);
    cr_assert_eq(dm_registry_new(&reg), DM_OK);
    dm_product_t in = {0}, out = {0};
    in.domain = "shop";
    in.name = "items";
    in.version = "1.0.0";
    in.version_major = 1;
    in.contract = (char *)s_contract;
    in.contract_len = strlen(s_contract);
    dm_register_outcome o;
    cr_assert_eq(dm_store_product_register(store, &in, &o, &out, NULL, NULL), DM_OK);
    uint32_t pid = out.id;
    dm_store_product_clear(&out);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_registry_install(reg, pid, s_contract, strlen(s_contract), &why), DM_OK,
                 "%s", why.data);

    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH), *pull = zmq_socket(ctx, ZMQ_PULL);
    cr_assert_eq(zmq_bind(push, DM_INGEST_INBOX), 0);
    cr_assert_eq(zmq_bind(pull, DM_CTL_OUTBOX), 0);
    zmq_setsockopt(pull, ZMQ_RCVTIMEO, &(int){T_WAIT_MS}, sizeof(int));
    dm_ingest_t *ingest = NULL;
    cr_assert_eq(dm_ingest_new(ctx, store, reg, "shop", DM_RECORD_LIMIT_DEFAULT, &ingest, &why),
                 DM_OK, "%s", why.data);
    /* The first half one at a time, so a batch mostly gets the buffers
     * its predecessor gave back; the rest back to back, so jobs are
     * validated while others commit. */
    for (int r = 0; r < T_ROUNDS / 2; r++) {
        s_send(push, r, r % 2 ? T_SMALL : T_BIG);
        cr_assert(s_reply(pull, r % 2 ? T_SMALL : T_BIG, 1), "reply to batch %d", r);
    }
    for (int r = T_ROUNDS / 2; r < T_ROUNDS; r++)
        s_send(push, r, r % 2 ? T_SMALL : T_BIG);
    for (int r = T_ROUNDS / 2; r < T_ROUNDS; r++)
        cr_assert(s_reply(pull, r % 2 ? T_SMALL : T_BIG, 1), "reply to batch %d", r);
    dm_ingest_stop(ingest, push);
    char frame[64];
    while (zmq_recv(pull, frame, sizeof frame, 0) >= 0 &&
           !dm_ctl_is(frame, strlen(DM_CTL_STOPPED), DM_CTL_STOPPED))
        ;
    dm_ingest_destroy(&ingest);

    const dm_product_ref_t *ref = NULL;
    cr_assert_eq(dm_registry_acquire(reg, "shop/items", strlen("shop/items"), &ref), DM_OK);
    for (int id = 0; id < T_BIG; id++) {
        int last = id < T_SMALL ? T_ROUNDS - 1 : T_ROUNDS - 2; /* the last round that sent it */
        double want = last * 1000 + id;
        double got = s_amount(store, ref->schema, pid, id);
        cr_assert_eq(got, want, "id %d: amount %g, want %g", id, got, want);
    }
    dm_registry_release(reg, ref);
    dm_product_t p = {0};
    cr_assert_eq(dm_store_product_get(store, "shop", "items", &p, NULL), DM_OK);
    cr_assert_eq(p.records, T_BIG);
    cr_assert_eq(p.quarantined, T_ROUNDS);
    dm_store_product_clear(&p);

    zmq_close(push);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    dm_buf_free(&why);
    dm_registry_destroy(&reg);
    dm_store_destroy(&store);
    dm_t_rmdir(dir);
}
