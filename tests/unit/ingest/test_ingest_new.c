/* test_ingest_new.c: dm_ingest_new reports a failure to make its sockets
 * in why, for its caller to say once (base/err.h). */
#include <criterion/criterion.h>
#include <string.h>
#include <zmq.h>

#include "ingest/ingest.h"

Test(ingest_new, a_context_that_is_shut_down_is_reported_in_why)
{
    void *ctx = zmq_ctx_new();
    cr_assert_not_null(ctx);
    zmq_ctx_shutdown(ctx); /* every new socket now fails with ETERM */
    dm_ingest_t *ingest = NULL;
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = dm_ingest_new(ctx, NULL, NULL, "shop", 0, &ingest, &why);
    cr_assert_eq(rc, DM_ERR_NET);
    cr_assert_null(ingest);
    cr_assert_gt(why.len, 0);
    cr_assert_null(strchr(why.data, '\n'), "one line: %s", why.data);
    dm_buf_free(&why);
    zmq_ctx_term(ctx);
}
