/* test_ingest_runs.c: the write pipeline's ingest runs: batches tied by
 * IngestReq.run_id report START after the first commit and COMPLETE, with
 * the quality report judged after the batch marked run_last, to the run
 * hook (ingest.h). A real pipeline on inproc sockets and a real store. */
#include <pthread.h>

#include "ingest_test.h"
#include "quality/quality.h"
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

/* Sends one IngestReq of data for shop/items in run run_id. */
static void s_send(t_pipe *p, const char *data, const uint8_t *run_id, bool first, bool last)
{
    Dm__IngestReq req = DM__INGEST_REQ__INIT;
    req.data.data = (uint8_t *)data;
    req.data.len = strlen(data);
    req.run_id.data = (uint8_t *)run_id;
    req.run_id.len = DM_INGEST_RUN_ID_BYTES;
    req.run_first = first;
    req.run_last = last;
    t_pipe_send(p, &req, 1);
}

/* Receives one reply; true for an IngestRep. */
static bool s_reply(t_pipe *p)
{
    Dm__Envelope *env = t_pipe_reply(p);
    bool ok = env != NULL;
    dm__envelope__free_unpacked(env, NULL);
    return ok;
}

Test(ingest_runs, start_then_complete_with_the_report)
{
    t_pipe p;
    t_pipe_start(&p, "ingest_runs", s_contract);
    s_events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dm_ingest_set_run_hook(p.ingest, s_hook, &ev);

    uint8_t run[DM_INGEST_RUN_ID_BYTES];
    memset(run, 7, sizeof run);
    s_send(&p, "{\"sku\":\"a\"}\n{\"sku\":\"b\"}\n", run, true, false);
    cr_assert(s_reply(&p));
    s_send(&p, "{\"sku\":\"a\"}\n", run, false, true);
    cr_assert(s_reply(&p));

    t_pipe_stop(&p);
    cr_assert_eq(ev.n, 2, "events: %zu", ev.n);
    cr_assert_eq(ev.ev[0], DM_INGEST_RUN_START);
    cr_assert_eq(ev.accepted[0], 2);
    cr_assert_eq(ev.ev[1], DM_INGEST_RUN_COMPLETE);
    cr_assert_eq(ev.accepted[1], 3);
    cr_assert(ev.has_report[1]);
    cr_assert_eq(ev.outcome[1], DM_QOUT_FAIL, "'a' twice fails unique(sku)");
    dm_qreport_t latest = {0};
    cr_assert_eq(dm_quality_latest(p.store, p.pid, &latest, NULL), DM_OK);
    cr_assert_eq(latest.records, 3);
    dm_quality_report_clear(&latest);

    t_pipe_free(&p);
}
