/* test_ingest_pool.c: finished ingest jobs hand their buffers to a pool
 * that later jobs reuse (ingest_job.c): many batches of alternating sizes,
 * sent back to back so that validation and commits overlap, must each be
 * stored as sent, with no bytes of an earlier batch showing through. A
 * real pipeline on inproc sockets and a real store. */
#include <stdio.h>

#include "ingest_test.h"
#include "record/row.h"

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
static void s_send(t_pipe *p, int r, int n)
{
    dm_buf_t data = DM_BUF_INIT;
    for (int id = 0; id < n; id++)
        dm_buf_printf(&data, "{\"id\":%d,\"amount\":%d}\n", id, r * 1000 + id);
    dm_buf_printf(&data, "{\"id\":%d}\n", n);
    Dm__IngestReq req = DM__INGEST_REQ__INIT;
    req.data.data = (uint8_t *)data.data;
    req.data.len = data.len;
    t_pipe_send(p, &req, (uint64_t)r);
    dm_buf_free(&data);
}

/* Receives one reply; true for an IngestRep with these counts. */
static bool s_reply(t_pipe *p, uint64_t accepted, uint64_t quarantined)
{
    Dm__Envelope *env = t_pipe_reply(p);
    bool ok = env && env->ingest_rep->accepted == accepted &&
              env->ingest_rep->quarantined == quarantined;
    dm__envelope__free_unpacked(env, NULL);
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
    t_pipe p;
    t_pipe_start(&p, "ingest_pool", s_contract);
    /* The first half one at a time, so a batch mostly gets the buffers
     * its predecessor gave back; the rest back to back, so jobs are
     * validated while others commit. */
    for (int r = 0; r < T_ROUNDS / 2; r++) {
        s_send(&p, r, r % 2 ? T_SMALL : T_BIG);
        cr_assert(s_reply(&p, r % 2 ? T_SMALL : T_BIG, 1), "reply to batch %d", r);
    }
    for (int r = T_ROUNDS / 2; r < T_ROUNDS; r++)
        s_send(&p, r, r % 2 ? T_SMALL : T_BIG);
    for (int r = T_ROUNDS / 2; r < T_ROUNDS; r++)
        cr_assert(s_reply(&p, r % 2 ? T_SMALL : T_BIG, 1), "reply to batch %d", r);
    t_pipe_stop(&p);

    const dm_product_ref_t *ref = NULL;
    cr_assert_eq(dm_registry_acquire(p.reg, "shop/items", strlen("shop/items"), &ref), DM_OK);
    for (int id = 0; id < T_BIG; id++) {
        int last = id < T_SMALL ? T_ROUNDS - 1 : T_ROUNDS - 2; /* the last round that sent it */
        double want = last * 1000 + id;
        double got = s_amount(p.store, ref->schema, p.pid, id);
        cr_assert_eq(got, want, "id %d: amount %g, want %g", id, got, want);
    }
    dm_registry_release(p.reg, ref);
    dm_product_t prod = {0};
    cr_assert_eq(dm_store_product_get(p.store, "shop", "items", &prod, NULL), DM_OK);
    cr_assert_eq(prod.records, T_BIG);
    cr_assert_eq(prod.quarantined, T_ROUNDS);
    dm_store_product_clear(&prod);

    t_pipe_free(&p);
}
