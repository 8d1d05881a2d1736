/* test_query_pool_adopt.c: a passed query the node loop started and
 * handed over (dm_query_pool_adopt) becomes a cursor of the client: its
 * first reply goes out renamed (the client's request id, a fresh cursor),
 * its pulls run through the pass-through with req NULL, and its remote is
 * freed once it ends; a first reply that ends the query leaves no cursor.
 * Without a monitor no client is ever reported gone; with one, a client's
 * disconnect is still known after many other clients' disconnects. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "fixture.h"
#include "base/clock.h"
#include "query/query_pool.h"
#include "record/registry.h"
#include "storage/store.h"
#include "transport/ctl.h"
#include "transport/envelope.h"

#include "outbox_test.h"

#define S_OWNER_CURSOR 777

static void *s_zctx, *s_pull;
static dm_query_pool_t *s_pool;
static char s_dir[PATH_MAX];
static dm_store_t *s_store;
static dm_registry_t *s_reg;
static dm_query_engine_t *s_eng;
static atomic_int s_pulls, s_freed;
static atomic_int s_reran; /* first requests run again: counted here, asserted on the test's thread */

static void s_free(void *ctx, dm_query_remote_t *remote)
{
    (void)ctx;
    free(remote);
    atomic_fetch_add(&s_freed, 1);
}

/* The pass-through's pulls: one more batch, the last. */
static dm_err s_pass(void *ctx, dm_query_remote_t *remote, const Dm__QueryReq *req,
                     int64_t deadline_ns, const atomic_bool *cancel, Dm__Envelope **rep,
                     dm_buf_t *why)
{
    (void)ctx, (void)remote, (void)deadline_ns, (void)cancel, (void)why;
    if (req)
        atomic_fetch_add(&s_reran, 1);
    atomic_fetch_add(&s_pulls, 1);
    Dm__Envelope *e = calloc(1, sizeof *e);
    Dm__QueryRep *r = calloc(1, sizeof *r);
    dm__envelope__init(e);
    dm__query_rep__init(r);
    r->nrows = 1;
    r->done = true;
    r->cursor = S_OWNER_CURSOR;
    e->body_case = DM__ENVELOPE__BODY_QUERY_REP;
    e->query_rep = r;
    *rep = e; /* freed with dm__envelope__free_unpacked: calloc'd like unpacked ones */
    return DM_OK;
}

static void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "test_query_adopt"));
    cr_assert_eq(dm_store_open(s_dir, NULL, &s_store, NULL), DM_OK);
    cr_assert_eq(dm_registry_new(&s_reg), DM_OK);
    cr_assert_eq(dm_query_engine_new(s_store, s_reg, NULL, &s_eng, NULL), DM_OK);
    s_zctx = zmq_ctx_new();
    s_pull = q_outbox_open(s_zctx);
    cr_assert_eq(dm_query_pool_new(s_zctx, s_eng, 1, 0, &s_pool, NULL), DM_OK);
    dm_query_pool_set_remote(s_pool, NULL, s_free, NULL);
    dm_query_pool_set_pass(s_pool, s_pass, NULL);
}

static void s_teardown(void)
{
    dm_query_pool_destroy(&s_pool);
    zmq_close(s_pull);
    zmq_ctx_term(s_zctx);
    dm_query_engine_destroy(&s_eng);
    dm_registry_destroy(&s_reg);
    dm_store_destroy(&s_store);
    dm_t_rmdir(s_dir);
}

TestSuite(query_pool_adopt, .init = s_setup, .fini = s_teardown, .timeout = 60);

/* Adopts a query with a first reply (done or not) for request id 9. */
static void s_adopt(bool done)
{
    Dm__QueryReq req = DM__QUERY_REQ__INIT;
    req.sql = "SELECT 1";
    Dm__Envelope env;
    dm_envelope_init(&env, 9, DM__ENVELOPE__BODY_QUERY_REQ, &req);
    zmq_msg_t rid, payload;
    Dm__Envelope *in = NULL, *first = NULL;
    q_request_msgs(&env, &rid, &payload, &in);
    Dm__QueryRep rep = DM__QUERY_REP__INIT;
    rep.nrows = 1;
    rep.done = done;
    rep.cursor = S_OWNER_CURSOR;
    Dm__Envelope renv;
    dm_envelope_init(&renv, 3, DM__ENVELOPE__BODY_QUERY_REP, &rep);
    size_t n = dm__envelope__get_packed_size(&renv);
    uint8_t *bytes = malloc(n);
    dm__envelope__pack(&renv, bytes);
    first = dm__envelope__unpack(NULL, n, bytes);
    free(bytes);
    dm_query_remote_t *remote = calloc(1, sizeof *remote);
    dm_rpc_caller_t caller = {.verified = true};
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_query_pool_adopt(s_pool, &rid, &payload, &caller, &in, remote, &first, &why),
                 DM_OK, "%s", why.data);
    cr_assert_null(in, "the request was not taken");
    cr_assert_null(first, "the first reply was not taken");
    zmq_msg_close(&rid);
    zmq_msg_close(&payload);
    dm_buf_free(&why);
}

Test(query_pool_adopt, the_first_reply_goes_out_renamed_and_pulls_pass_through)
{
    s_adopt(false);
    Dm__Envelope *rep = q_outbox_reply(s_pull);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_QUERY_REP);
    cr_assert_eq(rep->id, 9, "not the client's request id");
    uint64_t cursor = rep->query_rep->cursor;
    cr_assert(cursor != 0 && cursor != S_OWNER_CURSOR, "the owner's cursor id leaked");
    cr_assert(!rep->query_rep->done);
    dm__envelope__free_unpacked(rep, NULL);
    cr_assert_eq(atomic_load(&s_freed), 0, "freed while a cursor");

    Dm__QueryNext qn = DM__QUERY_NEXT__INIT;
    qn.cursor = cursor;
    Dm__Envelope env;
    dm_envelope_init(&env, 10, DM__ENVELOPE__BODY_QUERY_NEXT, &qn);
    zmq_msg_t rid, payload;
    Dm__Envelope *in = NULL;
    q_request_msgs(&env, &rid, &payload, &in);
    cr_assert_eq(dm_query_pool_forward(s_pool, &rid, &payload, &in, NULL), DM_OK);
    zmq_msg_close(&rid);
    zmq_msg_close(&payload);
    rep = q_outbox_reply(s_pull);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_QUERY_REP, "%s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "?");
    cr_assert_eq(rep->id, 10);
    cr_assert_eq(rep->query_rep->cursor, cursor, "the pull's reply names another cursor");
    cr_assert(rep->query_rep->done);
    dm__envelope__free_unpacked(rep, NULL);
    cr_assert_eq(atomic_load(&s_pulls), 1);
    cr_assert_eq(atomic_load(&s_reran), 0, "an adopted query's first request ran again");
    q_wait_count(&s_freed, 1);
}

Test(query_pool_adopt, a_first_reply_that_ends_it_leaves_no_cursor)
{
    s_adopt(true);
    Dm__Envelope *rep = q_outbox_reply(s_pull);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_QUERY_REP);
    cr_assert_eq(rep->id, 9);
    cr_assert(rep->query_rep->done);
    dm__envelope__free_unpacked(rep, NULL);
    q_wait_count(&s_freed, 1);
    cr_assert_eq(atomic_load(&s_pulls), 0);
    cr_assert_eq(atomic_load(&s_reran), 0, "an adopted query's first request ran again");
}

Test(query_pool_adopt, without_a_monitor_no_client_is_gone)
{
    uint64_t seq = dm_query_pool_gone_seq(s_pool);
    cr_assert_eq(seq, 0);
    cr_assert(!dm_query_pool_gone_since(s_pool, 0, seq));
    cr_assert(!dm_query_pool_gone_since(s_pool, 7, seq));
}

/* A dealer connected to port that has said hello (so the ROUTER accepted
 * it); the ROUTER's descriptor of it when fd is not NULL. */
static void *s_dealer(void *router, int port, int *fd)
{
    void *d = zmq_socket(s_zctx, ZMQ_DEALER);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    int linger = 0;
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert_eq(zmq_connect(d, ep), 0);
    cr_assert_eq(zmq_send(d, "hi", 2, 0), 2);
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    cr_assert_geq(zmq_msg_recv(&id, router, 0), 0, "no hello in %d ms", S_WAIT_MS);
    cr_assert_geq(zmq_msg_recv(&body, router, 0), 0);
    if (fd)
        *fd = zmq_msg_get(&body, ZMQ_SRCFD);
    zmq_msg_close(&id);
    zmq_msg_close(&body);
    return d;
}

/* Waits until the watcher has counted at least n disconnects since seq. */
static void s_wait_gone(uint64_t seq, uint64_t n)
{
    int64_t deadline = dm_clock_mono_ms() + S_WAIT_MS;
    while (dm_query_pool_gone_seq(s_pool) < seq + n) {
        cr_assert_lt(dm_clock_mono_ms(), deadline, "%llu of %llu disconnects seen",
                     (unsigned long long)(dm_query_pool_gone_seq(s_pool) - seq),
                     (unsigned long long)n);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* A stranger opening and dropping many connections (more than any ring
 * of recent disconnects) right after a client left must not hide that
 * the client left: the loop's query of that client is cancelled. */
Test(query_pool_adopt, a_disconnect_is_known_after_many_others)
{
    enum { OTHERS = 200 };
    void *router = zmq_socket(s_zctx, ZMQ_ROUTER);
    int wait = S_WAIT_MS;
    zmq_setsockopt(router, ZMQ_RCVTIMEO, &wait, sizeof wait);
    cr_assert_eq(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
    char ep[64];
    size_t len = sizeof ep;
    cr_assert_eq(zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &len), 0);
    int port = atoi(strrchr(ep, ':') + 1);
    cr_assert_eq(dm_query_pool_watch(s_pool, router, NULL), DM_OK);
    int fd = -1;
    void *client = s_dealer(router, port, &fd);
    cr_assert_geq(fd, 0);
    static void *others[OTHERS];
    for (int i = 0; i < OTHERS; i++)
        others[i] = s_dealer(router, port, NULL);
    uint64_t seq = dm_query_pool_gone_seq(s_pool);
    cr_assert(!dm_query_pool_gone_since(s_pool, fd, seq));
    zmq_close(client);
    s_wait_gone(seq, 1);
    for (int i = 0; i < OTHERS; i++)
        zmq_close(others[i]);
    s_wait_gone(seq, 1 + OTHERS);
    cr_assert(dm_query_pool_gone_since(s_pool, fd, seq),
              "the client's disconnect was lost behind %d others", OTHERS);
    cr_assert(!dm_query_pool_gone_since(s_pool, fd, dm_query_pool_gone_seq(s_pool)),
              "a stamp taken after the disconnect must not see it");
    zmq_close(router);
}
