/* test_rpc_caller.c: who called, over real CURVE sockets on loopback
 * (suite "rpc_caller"): a client with an identity is verified with its
 * ed25519 key; a client whose handshake claims another key, and a
 * throwaway client, are not. */
#include <criterion/criterion.h>
#include <string.h>
#include <zmq.h>

#include <sodium.h>

#include "transport/rpc.h"
#include "transport/envelope.h"

#define T_TIMEOUT_MS 5000
#define T_META_MAX 128

static void *s_ctx;
static dm_identity_t *s_node;
static dm_rpc_server_t *s_server;
static char s_addr[DM_ADDRESS_MAX];

static void s_setup(void)
{
    cr_assert_eq(dm_identity_new_ephemeral(&s_node), DM_OK);
    uint8_t pub[DM_ID_CURVE_BYTES], sec[DM_ID_CURVE_BYTES];
    cr_assert_eq(dm_identity_curve_keys(s_node, pub, sec, NULL), DM_OK);
    s_ctx = zmq_ctx_new();
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_rpc_server_new(s_ctx, "tcp://127.0.0.1:*", sec, &s_server, &why), DM_OK,
                 "%s", why.data ? why.data : "");
    dm_buf_free(&why);
    cr_assert_eq(dm_identity_address_format(dm_identity_public(s_node),
                                            dm_rpc_server_endpoint(s_server), s_addr,
                                            sizeof s_addr, NULL),
                 DM_OK);
}

static void s_teardown(void)
{
    dm_rpc_server_destroy(&s_server);
    zmq_ctx_term(s_ctx);
    dm_identity_destroy(&s_node);
}

TestSuite(rpc_caller, .init = s_setup, .fini = s_teardown, .timeout = 30);

/* Receives one request on the server (waiting up to the deadline) and
 * returns who sent it. */
static dm_rpc_caller_t s_receive_caller(void)
{
    void *router = dm_rpc_server_socket(s_server);
    zmq_pollitem_t item = {router, 0, ZMQ_POLLIN, 0};
    cr_assert_eq(zmq_poll(&item, 1, T_TIMEOUT_MS), 1, "no request within the deadline");
    zmq_msg_t rid, payload;
    zmq_msg_init(&rid);
    zmq_msg_init(&payload);
    cr_assert_geq(zmq_msg_recv(&rid, router, 0), 0);
    cr_assert(zmq_msg_more(&rid));
    cr_assert_geq(zmq_msg_recv(&payload, router, 0), 0);
    dm_rpc_caller_t c;
    dm_rpc_caller(&payload, &c);
    zmq_msg_close(&rid);
    zmq_msg_close(&payload);
    return c;
}

/* Sends one ping through client. */
static void s_send_ping(dm_rpc_client_t *client)
{
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__Error body = DM__ERROR__INIT; /* any body: the server only reads the caller */
    body.message = "";
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_ERROR, &body);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_rpc_client_send(client, &req, NULL, &why), DM_OK, "%s",
                 why.data ? why.data : "");
    dm_buf_free(&why);
}

Test(rpc_caller, a_client_with_an_identity_is_verified_with_its_ed25519_key)
{
    dm_identity_t *alice = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&alice), DM_OK);
    dm_rpc_client_t *client = NULL;
    cr_assert_eq(dm_rpc_client_new_as(s_addr, T_TIMEOUT_MS, alice, &client, NULL), DM_OK);
    s_send_ping(client);
    dm_rpc_caller_t c = s_receive_caller();
    cr_assert(c.verified);
    cr_assert_eq(memcmp(c.key, dm_identity_public(alice), DM_ID_PUBLIC_BYTES), 0);
    char hex[DM_RPC_CALLER_HEX_BYTES], want[DM_ID_HEX_BYTES];
    dm_rpc_caller_hex(&c, hex);
    dm_identity_hex(alice, want);
    cr_assert_str_eq(hex, want);
    /* A second request on the same connection is answered from the cache
     * and must say the same. */
    s_send_ping(client);
    dm_rpc_caller_t again = s_receive_caller();
    cr_assert(again.verified);
    cr_assert_eq(memcmp(again.key, c.key, DM_ID_PUBLIC_BYTES), 0);
    dm_rpc_client_destroy(&client);
    dm_identity_destroy(&alice);
}

Test(rpc_caller, a_client_claiming_another_key_is_not_verified)
{
    dm_identity_t *mallory = NULL, *victim = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&mallory), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&victim), DM_OK);
    uint8_t server_curve[DM_ID_CURVE_BYTES], pub[DM_ID_CURVE_BYTES], sec[DM_ID_CURVE_BYTES];
    cr_assert_eq(dm_identity_curve_from_id(dm_identity_public(s_node), server_curve), DM_OK);
    cr_assert_eq(dm_identity_curve_keys(mallory, pub, sec, NULL), DM_OK);
    /* Mallory's own CURVE keys, the victim's key in the metadata. */
    void *ctx = zmq_ctx_new();
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert_eq(zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, server_curve, 32), 0);
    cr_assert_eq(zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, pub, 32), 0);
    cr_assert_eq(zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, sec, 32), 0);
    char hex[DM_ID_HEX_BYTES], meta[T_META_MAX];
    dm_identity_hex(victim, hex);
    snprintf(meta, sizeof meta, "%s:%s", DM_RPC_KEY_PROPERTY, hex);
    cr_assert_eq(zmq_setsockopt(d, 95 /* ZMQ_METADATA */, meta, strlen(meta)), 0);
    cr_assert_eq(zmq_connect(d, dm_rpc_server_endpoint(s_server)), 0);
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__Error body = DM__ERROR__INIT;
    body.message = "";
    dm_envelope_init(&req, 1, DM__ENVELOPE__BODY_ERROR, &body);
    zmq_msg_t m;
    cr_assert_eq(dm_rpc_pack(&req, &m), DM_OK);
    cr_assert_geq(zmq_msg_send(&m, d, 0), 0);

    dm_rpc_caller_t c = s_receive_caller();
    cr_assert_not(c.verified, "a claim the CURVE key does not back is not believed");
    cr_assert_eq(memcmp(c.key, pub, DM_ID_CURVE_BYTES), 0, "the key shown is the CURVE key");
    char shown[DM_RPC_CALLER_HEX_BYTES];
    dm_rpc_caller_hex(&c, shown);
    cr_assert_eq(strncmp(shown, "curve:", 6), 0, "%s", shown);
    zmq_close(d);
    zmq_ctx_term(ctx);
    dm_identity_destroy(&mallory);
    dm_identity_destroy(&victim);
}

Test(rpc_caller, a_throwaway_client_is_not_verified)
{
    dm_rpc_client_t *client = NULL;
    cr_assert_eq(dm_rpc_client_new(s_addr, T_TIMEOUT_MS, &client, NULL), DM_OK);
    s_send_ping(client);
    dm_rpc_caller_t c = s_receive_caller();
    cr_assert_not(c.verified);
    uint8_t zero[DM_ID_PUBLIC_BYTES] = {0};
    cr_assert_neq(memcmp(c.key, zero, sizeof zero), 0, "the CURVE key is shown");
    dm_rpc_client_destroy(&client);
}

Test(rpc_caller, a_message_without_a_user_id_gives_a_zero_unverified_key)
{
    zmq_msg_t m;
    zmq_msg_init_size(&m, 1);
    dm_rpc_caller_t c;
    memset(&c, 0xff, sizeof c);
    dm_rpc_caller(&m, &c);
    uint8_t zero[DM_ID_PUBLIC_BYTES] = {0};
    cr_assert_not(c.verified);
    cr_assert_eq(memcmp(c.key, zero, sizeof zero), 0);
    zmq_msg_close(&m);
}
