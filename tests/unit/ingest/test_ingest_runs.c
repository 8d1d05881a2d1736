/* test_ingest_runs.c: the write pipeline's ingest runs: batches tied by
 * IngestReq.run_id report START after the first commit and COMPLETE, with
 * the quality report judged after the batch marked run_last, to the run
 * hook (ingest.h). A real pipeline on inproc sockets and a real store. */
#include <criterion/criterion.h>

#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <zmq.h>

#include "fixture.h"
#include "ingest/ingest.h"
#include "quality/quality.h"
#include "transport/envelope.h"
#include "transport/rpc.h"

#define T_WAIT_MS 10000
#define T_EVENTS_MAX 8

static const char *s_contract =
    "{\"apiVersion\":\"datamesh.io/v1\",\"kind\":\"DataProduct\",\"metadata\":{\"domain\":"
    "\"shop\",\"name\":\"items\",\"owner\":{\"contact\":\"s@c.com\",\"team\":\"s\"},"
    "\"version\":\"1.0.0\"},\"spec\":{\"quality\":{\"checks\":[{\"column\":\"sku\",\"rule\":"
    "\"unique\"}]},\"schema\":{\"fields\":[{\"name\":\"sku\",\"type\":\"string\"}]}}}";

typedef struct {
    pthread_mutex_t mu;
    dm_ingest_run_event ev[T_EVENTS_MAX];
    uint64_t accepted[T_EVENTS_MAX];
    dm_qoutcome outcome[T_EVENTS_MAX];
    bool has_report[T_EVENTS_MAX];
    size_t n;
} s_events;

static void s_hook(void *ctx, const dm_ingest_run_t *run)
{
    s_events *e = ctx;
    pthread_mutex_lock(&e->mu);
    if (e->n < T_EVENTS_MAX) {
        e->ev[e->n] = run->event;
        e->accepted[e->n] = run->accepted;
        e->has_report[e->n] = run->report != NULL;
        if (run->report)
            e->outcome[e->n] = ((const dm_qreport_t *)run->report)->outcome;
        e->n++;
    }
    pthread_mutex_unlock(&e->mu);
}

/* Sends one IngestReq of data for shop/items as the pipeline expects it. */
static void s_send(void *push, const char *data, const uint8_t *run_id, bool first, bool last)
{
    Dm__Envelope env;
    Dm__IngestReq req = DM__INGEST_REQ__INIT;
    req.domain = "shop";
    req.product = "items";
    req.data.data = (uint8_t *)data;
    req.data.len = strlen(data);
    req.run_id.data = (uint8_t *)run_id;
    req.run_id.len = DM_INGEST_RUN_ID_BYTES;
    req.run_first = first;
    req.run_last = last;
    dm_envelope_init(&env, 1, DM__ENVELOPE__BODY_INGEST_REQ, &req);
    zmq_msg_t msg;
    cr_assert_eq(dm_rpc_pack(&env, &msg), DM_OK);
    dm_rpc_caller_t caller;
    memset(&caller, 0, sizeof caller);
    zmq_send(push, "rid", 3, ZMQ_SNDMORE);
    zmq_msg_send(&msg, push, ZMQ_SNDMORE);
    zmq_send(push, &caller, sizeof caller, 0);
}

/* Receives one reply ([rid][envelope]) from the outbox; true for an IngestRep. */
static bool s_reply(void *pull)
{
    zmq_setsockopt(pull, ZMQ_RCVTIMEO, &(int){T_WAIT_MS}, sizeof(int));
    char rid[16];
    if (zmq_recv(pull, rid, sizeof rid, 0) < 0)
        return false;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, pull, 0) < 0)
        return false;
    Dm__Envelope *env = dm_rpc_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg));
    bool ok = env && env->body_case == DM__ENVELOPE__BODY_INGEST_REP;
    dm__envelope__free_unpacked(env, NULL);
    zmq_msg_close(&msg);
    return ok;
}

Test(ingest_runs, start_then_complete_with_the_report)
{
    char dir[PATH_MAX];
    cr_assert_not_null(dm_t_tmpdir(dir, sizeof dir, "ingest_runs"));
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
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_registry_install(reg, out.id, s_contract, strlen(s_contract), &why), DM_OK,
                 "%s", why.data);
    dm_store_product_clear(&out);

    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH), *pull = zmq_socket(ctx, ZMQ_PULL);
    cr_assert_eq(zmq_bind(push, DM_INGEST_INBOX), 0);
    cr_assert_eq(zmq_bind(pull, DM_CTL_OUTBOX), 0);
    dm_ingest_t *ingest = NULL;
    cr_assert_eq(dm_ingest_new(ctx, store, reg, "shop", DM_RECORD_LIMIT_DEFAULT, &ingest, &why),
                 DM_OK, "%s", why.data);
    s_events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dm_ingest_set_run_hook(ingest, s_hook, &ev);

    uint8_t run[DM_INGEST_RUN_ID_BYTES];
    memset(run, 7, sizeof run);
    s_send(push, "{\"sku\":\"a\"}\n{\"sku\":\"b\"}\n", run, true, false);
    cr_assert(s_reply(pull));
    s_send(push, "{\"sku\":\"a\"}\n", run, false, true);
    cr_assert(s_reply(pull));

    dm_ingest_stop(ingest, push);
    char frame[64];
    while (zmq_recv(pull, frame, sizeof frame, 0) >= 0 &&
           !dm_ctl_is(frame, strlen(DM_CTL_STOPPED), DM_CTL_STOPPED))
        ;
    dm_ingest_destroy(&ingest);
    cr_assert_eq(ev.n, 2, "events: %zu", ev.n);
    cr_assert_eq(ev.ev[0], DM_INGEST_RUN_START);
    cr_assert_eq(ev.accepted[0], 2);
    cr_assert_eq(ev.ev[1], DM_INGEST_RUN_COMPLETE);
    cr_assert_eq(ev.accepted[1], 3);
    cr_assert(ev.has_report[1]);
    cr_assert_eq(ev.outcome[1], DM_QOUT_FAIL, "'a' twice fails unique(sku)");
    dm_qreport_t latest = {0};
    cr_assert_eq(dm_quality_latest(store, 1, &latest, NULL), DM_OK);
    cr_assert_eq(latest.records, 3);
    dm_quality_report_clear(&latest);

    zmq_close(push);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    dm_buf_free(&why);
    dm_registry_destroy(&reg);
    dm_store_destroy(&store);
    dm_t_rmdir(dir);
}
