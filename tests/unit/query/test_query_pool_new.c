/* test_query_pool_new.c: dm_query_pool_new reports a failure to make its
 * sockets in why, for its caller to say once (base/err.h). */
#include <criterion/criterion.h>
#include <string.h>
#include <zmq.h>

#include "query/query_pool.h"

/* Until the transport's own dm_rpc_caller is linked in (it then takes
 * precedence): the pool refers to it, this test never calls it. */
__attribute__((weak)) void dm_rpc_caller(void *msg, dm_rpc_caller_t *out)
{
    (void)msg;
    memset(out, 0, sizeof *out);
}

Test(query_pool_new, a_context_that_is_shut_down_is_reported_in_why)
{
    void *ctx = zmq_ctx_new();
    cr_assert_not_null(ctx);
    zmq_ctx_shutdown(ctx); /* every new socket now fails with ETERM */
    dm_query_pool_t *pool = NULL;
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = dm_query_pool_new(ctx, NULL, 1, 0, &pool, &why);
    cr_assert_eq(rc, DM_ERR_NET);
    cr_assert_null(pool);
    cr_assert_gt(why.len, 0);
    cr_assert_null(strchr(why.data, '\n'), "one line: %s", why.data);
    dm_buf_free(&why);
    zmq_ctx_term(ctx);
}
