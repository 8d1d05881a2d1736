/* test_zsock.c: the one socket helper sets linger 0 and exactly the
 * options it is asked for. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "transport/zsock.h"

static void *ctx;

static void s_init(void) { ctx = zmq_ctx_new(); cr_assert_not_null(ctx); }
static void s_fini(void) { zmq_ctx_term(ctx); }

TestSuite(zsock, .init = s_init, .fini = s_fini);

static int s_get_int(void *s, int option)
{
    int v = -2;
    size_t len = sizeof v;
    cr_assert_eq(zmq_getsockopt(s, option, &v, &len), 0);
    return v;
}

Test(zsock, every_socket_has_linger_zero)
{
    void *s = dm_zsock_new(ctx, ZMQ_PAIR, NULL, NULL);
    cr_assert_not_null(s);
    cr_assert_eq(s_get_int(s, ZMQ_LINGER), 0);
    zmq_close(s);
}

Test(zsock, sets_the_options_asked_for)
{
    dm_zsock_opts_t o = {.sndhwm = 17, .rcvhwm = 3, .sndtimeo = true, .sndtimeo_ms = 0,
                         .maxmsgsize = 4096, .reconnect_ivl_max_ms = 2000};
    void *s = dm_zsock_new(ctx, ZMQ_DEALER, &o, NULL);
    cr_assert_not_null(s);
    cr_assert_eq(s_get_int(s, ZMQ_SNDHWM), 17);
    cr_assert_eq(s_get_int(s, ZMQ_RCVHWM), 3);
    cr_assert_eq(s_get_int(s, ZMQ_SNDTIMEO), 0);
    cr_assert_eq(s_get_int(s, ZMQ_RECONNECT_IVL_MAX), 2000);
    int64_t max = 0;
    size_t len = sizeof max;
    cr_assert_eq(zmq_getsockopt(s, ZMQ_MAXMSGSIZE, &max, &len), 0);
    cr_assert_eq(max, 4096);
    zmq_close(s);
}

Test(zsock, leaves_unasked_options_at_their_defaults)
{
    void *s = dm_zsock_new(ctx, ZMQ_DEALER, &(dm_zsock_opts_t){0}, NULL);
    cr_assert_not_null(s);
    cr_assert_eq(s_get_int(s, ZMQ_SNDHWM), 1000);
    cr_assert_eq(s_get_int(s, ZMQ_SNDTIMEO), -1);
    cr_assert_eq(s_get_int(s, ZMQ_IMMEDIATE), 0);
    zmq_close(s);
}

Test(zsock, curve_server_gets_its_mechanism)
{
    uint8_t pub[DM_ZSOCK_KEY_BYTES], sec[DM_ZSOCK_KEY_BYTES];
    char zpub[41], zsec[41];
    cr_assert_eq(zmq_curve_keypair(zpub, zsec), 0);
    cr_assert_not_null(zmq_z85_decode(pub, zpub));
    cr_assert_not_null(zmq_z85_decode(sec, zsec));
    dm_zsock_opts_t o = {.curve_server_secret = sec, .zap_domain = "datamesh"};
    void *s = dm_zsock_new(ctx, ZMQ_ROUTER, &o, NULL);
    cr_assert_not_null(s);
    cr_assert_eq(s_get_int(s, ZMQ_CURVE_SERVER), 1);
    cr_assert_eq(s_get_int(s, ZMQ_MECHANISM), ZMQ_CURVE);
    zmq_close(s);
}

Test(zsock, a_refused_option_says_why)
{
    dm_buf_t why = DM_BUF_INIT;
    dm_zsock_opts_t o = {.sndhwm = -5};
    void *s = dm_zsock_new(ctx, ZMQ_DEALER, &o, &why);
    cr_assert_null(s);
    cr_assert_eq(errno, EINVAL);
    cr_assert_not_null(strstr(why.data, "cannot set the socket's options"));
    dm_buf_free(&why);
}
