/* test_ingest_runs.c: the write pipeline's ingest runs: batches tied by
 * IngestReq.run_id report START after the first commit and COMPLETE, with
 * the quality report judged after the batch marked run_last, to the run
 * hook (ingest.h). A real pipeline on inproc sockets and a real store. */
#include <pthread.h>

#include "ingest_test.h"
#include "quality/quality.h"
#define T_EVENTS_MAX 80

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
    char error[T_EVENTS_MAX][96];
    uint8_t run[T_EVENTS_MAX];   /* the run id's first byte */
    char name[T_EVENTS_MAX][16]; /* the product */
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
        snprintf(e->error[e->n], sizeof e->error[e->n], "%s", run->error ? run->error : "");
        e->run[e->n] = run->run_id[0];
        snprintf(e->name[e->n], sizeof e->name[e->n], "%s", run->name);
        e->n++;
    }
    pthread_mutex_unlock(&e->mu);
}

/* Sends one IngestReq of data for shop/PRODUCT in run run_id. */
static void s_send_to(t_pipe *p, const char *product, const char *data, const uint8_t *run_id,
                      bool first, bool last)
{
    Dm__IngestReq req = DM__INGEST_REQ__INIT;
    req.product = (char *)product;
    req.data.data = (uint8_t *)data;
    req.data.len = strlen(data);
    req.run_id.data = (uint8_t *)run_id;
    req.run_id.len = DM_INGEST_RUN_ID_BYTES;
    req.run_first = first;
    req.run_last = last;
    t_pipe_send(p, &req, 1);
}

static void s_send(t_pipe *p, const char *data, const uint8_t *run_id, bool first, bool last)
{
    s_send_to(p, "items", data, run_id, first, last);
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

/* A batch the validator refuses (here: a product that does not exist)
 * ends the run it belongs to with FAIL, naming the product it began on;
 * the run's batches still in flight after it report nothing (no second
 * START, no COMPLETE). */
Test(ingest_runs, a_refused_batch_fails_its_run)
{
    t_pipe p;
    t_pipe_start(&p, "ingest_runs_refused", s_contract);
    s_events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dm_ingest_set_run_hook(p.ingest, s_hook, &ev);
    uint8_t run[DM_INGEST_RUN_ID_BYTES];
    memset(run, 3, sizeof run);
    s_send(&p, "{\"sku\":\"a\"}\n", run, true, false);
    cr_assert(s_reply(&p));
    s_send_to(&p, "nothing", "{\"sku\":\"b\"}\n", run, false, false);
    cr_assert_not(s_reply(&p), "a batch for an unknown product is refused");
    s_send(&p, "{\"sku\":\"c\"}\n", run, false, false); /* in flight when it was refused */
    cr_assert(s_reply(&p));
    s_send(&p, "{\"sku\":\"d\"}\n", run, false, true);
    cr_assert(s_reply(&p));
    t_pipe_stop(&p);
    cr_assert_eq(ev.n, 2, "events: %zu", ev.n);
    cr_assert_eq(ev.ev[0], DM_INGEST_RUN_START);
    cr_assert_eq(ev.ev[1], DM_INGEST_RUN_FAIL);
    cr_assert_str_eq(ev.name[1], "items");
    cr_assert(strstr(ev.error[1], "refused"), "%s", ev.error[1]);
    cr_assert_eq(ev.accepted[1], 1);
    t_pipe_free(&p);
}

/* A run still open when the node stops ends with FAIL; a finished one
 * does not end twice. */
Test(ingest_runs, an_open_run_fails_at_the_stop)
{
    t_pipe p;
    t_pipe_start(&p, "ingest_runs_stop", s_contract);
    s_events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dm_ingest_set_run_hook(p.ingest, s_hook, &ev);
    uint8_t open_run[DM_INGEST_RUN_ID_BYTES], done_run[DM_INGEST_RUN_ID_BYTES];
    memset(open_run, 4, sizeof open_run);
    memset(done_run, 5, sizeof done_run);
    s_send(&p, "{\"sku\":\"a\"}\n", open_run, true, false);
    cr_assert(s_reply(&p));
    s_send(&p, "{\"sku\":\"b\"}\n", done_run, true, true);
    cr_assert(s_reply(&p));
    t_pipe_stop(&p);
    cr_assert_eq(ev.n, 4, "events: %zu", ev.n);
    cr_assert_eq(ev.ev[3], DM_INGEST_RUN_FAIL);
    cr_assert_eq(ev.run[3], 4);
    cr_assert(strstr(ev.error[3], "stopped"), "%s", ev.error[3]);
    t_pipe_free(&p);
}

/* When 64 runs are open, a new one pushes out the oldest: it ends with
 * FAIL (abandoned), not silently. */
Test(ingest_runs, the_oldest_open_run_fails_when_pushed_out)
{
    t_pipe p;
    t_pipe_start(&p, "ingest_runs_evict", s_contract);
    s_events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dm_ingest_set_run_hook(p.ingest, s_hook, &ev);
    for (int k = 0; k < 65; k++) {
        uint8_t run[DM_INGEST_RUN_ID_BYTES];
        memset(run, k + 10, sizeof run);
        s_send(&p, "{\"sku\":\"a\"}\n", run, true, false);
        cr_assert(s_reply(&p));
    }
    pthread_mutex_lock(&ev.mu);
    size_t fails = 0;
    for (size_t i = 0; i < ev.n; i++)
        if (ev.ev[i] == DM_INGEST_RUN_FAIL) {
            fails++;
            cr_assert_eq(ev.run[i], 10, "the oldest run is the one pushed out");
            cr_assert(strstr(ev.error[i], "abandoned"), "%s", ev.error[i]);
        }
    pthread_mutex_unlock(&ev.mu);
    cr_assert_eq(fails, 1);
    t_pipe_stop(&p);
    t_pipe_free(&p);
}
