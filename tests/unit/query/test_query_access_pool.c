/* test_query_access_pool.c: the workers ask the installed access decision
 * about every product a query names, with the caller the node loop read
 * from the request (dm_rpc_caller), and answer a refusal with its reason
 * and no rows. */
#include "query_test.h"

#include <pthread.h>
#include <zmq.h>

#include "query/query_pool.h"
#include "transport/ctl.h"
#include "transport/envelope.h"

#include "outbox_test.h"


/* Until the transport's own dm_rpc_caller is linked in (it then takes
 * precedence): a fixed verified key, so the test can tell it was used. */
__attribute__((weak)) void dm_rpc_caller(void *msg, dm_rpc_caller_t *out)
{
    (void)msg;
    memset(out, 0, sizeof *out);
    memset(out->key, 0x5a, sizeof out->key);
    out->verified = true;
}

typedef struct {
    pthread_mutex_t lock;
    int calls;
    dm_rpc_caller_t caller;
    char product[64];
} s_seen_t;

static void *s_zctx, *s_pull;
static dm_query_pool_t *s_pool;
static s_seen_t s_seen = {.lock = PTHREAD_MUTEX_INITIALIZER};

static dm_err s_pool_decide(void *ctx, const dm_rpc_caller_t *caller, const char *domain,
                            const char *product, dm_policy_decision_t *out, dm_buf_t *why)
{
    (void)why;
    s_seen_t *seen = ctx;
    pthread_mutex_lock(&seen->lock);
    seen->calls++;
    seen->caller = *caller;
    snprintf(seen->product, sizeof seen->product, "%s.%s", domain, product);
    pthread_mutex_unlock(&seen->lock);
    out->allow = strcmp(product, "customers") != 0;
    if (!out->allow)
        snprintf(out->reason, sizeof out->reason, "access denied to %s.%s (private)", domain,
                 product);
    return DM_OK;
}

static void s_pool_setup(void)
{
    s_setup();
    s_orders();
    s_customers();
    s_zctx = zmq_ctx_new();
    s_pull = q_outbox_open(s_zctx);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_query_pool_new(s_zctx, s_eng, 1, 0, &s_pool, &why), DM_OK, "%s", why.data);
    dm_query_pool_set_access(s_pool, s_pool_decide, NULL, &s_seen);
}

static void s_pool_teardown(void)
{
    dm_query_pool_destroy(&s_pool);
    zmq_close(s_pull);
    zmq_ctx_term(s_zctx);
    s_teardown();
}

TestSuite(query_access_pool, .init = s_pool_setup, .fini = s_pool_teardown);

/* Forwards a QueryReq for sql as if payload had come from a client, and
 * returns the reply (the caller frees it); *expect gets what
 * dm_rpc_caller says of that payload. */
static Dm__Envelope *s_ask(const char *sql, dm_rpc_caller_t *expect)
{
    Dm__QueryReq req = DM__QUERY_REQ__INIT;
    req.sql = (char *)sql;
    Dm__Envelope env;
    dm_envelope_init(&env, 7, DM__ENVELOPE__BODY_QUERY_REQ, &req);
    zmq_msg_t rid, payload;
    Dm__Envelope *in = NULL;
    q_request_msgs(&env, &rid, &payload, &in);
    dm_rpc_caller(&payload, expect);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_query_pool_forward(s_pool, &rid, &payload, &in, &why), DM_OK, "%s", why.data);
    cr_assert_null(in);
    zmq_msg_close(&rid);
    zmq_msg_close(&payload);
    zmq_msg_t f1, f2;
    zmq_msg_init(&f1);
    zmq_msg_init(&f2);
    cr_assert_geq(zmq_msg_recv(&f1, s_pull, 0), 0, "no reply in %d ms", S_WAIT_MS);
    cr_assert(zmq_msg_more(&f1));
    cr_assert_geq(zmq_msg_recv(&f2, s_pull, 0), 0);
    Dm__Envelope *rep = dm__envelope__unpack(NULL, zmq_msg_size(&f2), zmq_msg_data(&f2));
    cr_assert_not_null(rep);
    cr_assert_eq(rep->id, 7);
    zmq_msg_close(&f1);
    zmq_msg_close(&f2);
    return rep;
}

Test(query_access_pool, the_decision_gets_the_requests_caller)
{
    dm_rpc_caller_t expect;
    Dm__Envelope *rep = s_ask("SELECT count(*) FROM commerce.orders", &expect);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_QUERY_REP);
    cr_assert_eq(rep->query_rep->nrows, 1);
    dm__envelope__free_unpacked(rep, NULL);
    pthread_mutex_lock(&s_seen.lock);
    cr_assert_eq(s_seen.calls, 1);
    cr_assert_str_eq(s_seen.product, "commerce.orders");
    cr_assert_eq(memcmp(s_seen.caller.key, expect.key, sizeof expect.key), 0);
    cr_assert_eq(s_seen.caller.verified, expect.verified);
    pthread_mutex_unlock(&s_seen.lock);
}

Test(query_access_pool, a_refusal_is_answered_with_its_reason_and_no_rows)
{
    dm_rpc_caller_t expect;
    Dm__Envelope *rep = s_ask("SELECT o.qty, c.name FROM commerce.orders o "
                              "JOIN identity.customers c USING (customerId)", &expect);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_ERROR);
    cr_assert_eq(rep->error->code, DM_ERR_DENIED);
    cr_assert_str_eq(rep->error->message, "access denied to identity.customers (private)");
    dm__envelope__free_unpacked(rep, NULL);
}
