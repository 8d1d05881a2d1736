/* test_rpc.c: how the RPC client and server report failures: one line in
 * the caller's why naming the input, appended, never logged. */
#include <criterion/criterion.h>
#include <string.h>
#include <zmq.h>

#include "transport/rpc.h"

Test(rpc, client_names_an_invalid_address)
{
    dm_rpc_client_t *c = NULL;
    dm_buf_t why = DM_BUF_INIT;
    dm_buf_puts(&why, "earlier: ");
    cr_assert_eq(dm_rpc_client_new("not-an-address", 1000, &c, &why), DM_ERR_USAGE);
    cr_assert_null(c);
    cr_assert_not_null(strstr(why.data, "earlier: invalid node address 'not-an-address'"),
                       "%s", why.data);
    cr_assert_null(strchr(why.data, '\n'));
    dm_buf_free(&why);
}

Test(rpc, client_takes_a_null_why)
{
    dm_rpc_client_t *c = NULL;
    cr_assert_eq(dm_rpc_client_new("not-an-address", 1000, &c, NULL), DM_ERR_USAGE);
    cr_assert_null(c);
}

Test(rpc, server_names_the_endpoint_it_cannot_listen_on)
{
    void *ctx = zmq_ctx_new();
    cr_assert_not_null(ctx);
    uint8_t secret[32] = {1};
    dm_rpc_server_t *s = NULL;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_rpc_server_new(ctx, "nonsense://x", secret, &s, &why), DM_ERR_NET);
    cr_assert_null(s);
    cr_assert_not_null(strstr(why.data, "cannot listen on nonsense://x"), "%s", why.data);
    dm_buf_free(&why);
    zmq_ctx_term(ctx);
}
