/* test_query_remote_pool.c: the workers open each QueryReq with the
 * remote that the installed make builds from the request's caller, grant
 * and SQL, free it when the query closes, answer make's refusal as the
 * query's error, and put dm_query_explain's text in the final reply when
 * the request asked for it. The relay's engine has no products: every
 * product is the owner's (query_test.h's engine), read through
 * remote_test.h. */
#include "query_test.h"
#include "remote_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <zmq.h>

#include "query/query_pool.h"
#include "transport/ctl.h"
#include "transport/envelope.h"

#include "outbox_test.h"


static void *s_zctx, *s_pull;
static dm_query_pool_t *s_pool;
static char r_dir[PATH_MAX];
static dm_store_t *r_store;
static dm_registry_t *r_reg;
static dm_query_engine_t *r_eng;
static atomic_int s_made, s_freed;
static char s_grant[64];

static dm_err s_make(void *ctx, const dm_rpc_caller_t *caller, const uint8_t *grant,
                     size_t grant_len, const char *sql, dm_query_remote_t **out, dm_buf_t *why)
{
    (void)ctx;
    (void)caller;
    snprintf(s_grant, sizeof s_grant, "%.*s", (int)grant_len, (const char *)grant);
    if (strstr(sql, "identity.")) {
        dm_buf_puts(why, "identity.customers: no grant for this product");
        return DM_ERR_DENIED;
    }
    *out = malloc(sizeof **out);
    **out = s_remote;
    atomic_fetch_add(&s_made, 1);
    return DM_OK;
}

static void s_free(void *ctx, dm_query_remote_t *remote)
{
    (void)ctx;
    free(remote);
    atomic_fetch_add(&s_freed, 1);
}

static void s_pool_setup(void)
{
    s_setup();
    s_orders();
    s_customers();
    cr_assert_not_null(dm_t_tmpdir(r_dir, sizeof r_dir, "test_query_relay"));
    cr_assert_eq(dm_store_open(r_dir, NULL, &r_store, NULL), DM_OK);
    cr_assert_eq(dm_registry_new(&r_reg), DM_OK);
    cr_assert_eq(dm_query_engine_new(r_store, r_reg, NULL, &r_eng, NULL), DM_OK);
    s_zctx = zmq_ctx_new();
    s_pull = q_outbox_open(s_zctx);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_query_pool_new(s_zctx, r_eng, 1, 0, &s_pool, &why), DM_OK, "%s", why.data);
    dm_query_pool_set_remote(s_pool, s_make, s_free, NULL);
}

static void s_pool_teardown(void)
{
    dm_query_pool_destroy(&s_pool);
    zmq_close(s_pull);
    zmq_ctx_term(s_zctx);
    dm_query_engine_destroy(&r_eng);
    dm_registry_destroy(&r_reg);
    dm_store_destroy(&r_store);
    dm_t_rmdir(r_dir);
    s_teardown();
}

TestSuite(query_remote_pool, .init = s_pool_setup, .fini = s_pool_teardown, .timeout = 60);

/* Forwards a QueryReq (sql, grant, explain) and returns the reply. */
static Dm__Envelope *s_ask(const char *sql, const char *grant, bool explain)
{
    Dm__QueryReq req = DM__QUERY_REQ__INIT;
    req.sql = (char *)sql;
    req.grant.data = (uint8_t *)grant;
    req.grant.len = strlen(grant);
    req.explain = explain;
    Dm__Envelope env;
    dm_envelope_init(&env, 7, DM__ENVELOPE__BODY_QUERY_REQ, &req);
    zmq_msg_t rid, payload;
    Dm__Envelope *in = NULL;
    q_request_msgs(&env, &rid, &payload, &in);
    dm_rpc_caller_t caller = {.verified = true};
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_query_pool_forward_as(s_pool, &rid, &payload, &caller, &in, &why), DM_OK,
                 "%s", why.data);
    zmq_msg_close(&rid);
    zmq_msg_close(&payload);
    return q_outbox_reply(s_pull);
}

Test(query_remote_pool, a_remote_product_is_read_and_explained)
{
    Dm__Envelope *rep = s_ask("SELECT count(*) FROM commerce.orders WHERE status = 'paid'", "g-1", true);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_QUERY_REP, "%s",
                 rep->body_case == DM__ENVELOPE__BODY_ERROR ? rep->error->message : "");
    cr_assert(rep->query_rep->done);
    cr_assert_eq(rep->query_rep->nrows, 1);
    cr_assert_str_eq(s_grant, "g-1");
    cr_assert(strstr(rep->query_rep->explain, "commerce.orders: SELECT \"orderId\", \"status\" FROM "
                                              "\"commerce\".\"orders\" WHERE \"status\" = 'paid';"),
              "%s", rep->query_rep->explain);
    dm__envelope__free_unpacked(rep, NULL);
    q_wait_count(&s_freed, 1);
    cr_assert_eq(atomic_load(&s_made), 1);
    rep = s_ask("SELECT count(*) FROM commerce.orders", "", false);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_QUERY_REP);
    cr_assert_str_eq(rep->query_rep->explain, "");
    dm__envelope__free_unpacked(rep, NULL);
    q_wait_count(&s_freed, 2);
}

Test(query_remote_pool, a_refused_remote_is_the_querys_error)
{
    Dm__Envelope *rep = s_ask("SELECT * FROM identity.customers", "", false);
    cr_assert_eq(rep->body_case, DM__ENVELOPE__BODY_ERROR);
    cr_assert_eq(rep->error->code, DM_ERR_DENIED);
    cr_assert_str_eq(rep->error->message, "identity.customers: no grant for this product");
    dm__envelope__free_unpacked(rep, NULL);
    cr_assert_eq(atomic_load(&s_made), 0);
}
