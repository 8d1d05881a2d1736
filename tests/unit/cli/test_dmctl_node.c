/* test_dmctl_node.c: what dmctl prints when a node answers (suite
 * "dmctl_node"), against a scripted node on loopback: a thread serving the
 * real RPC socket that refuses every ingest, publishes one Policy with a
 * contract rule (no Group documents) and grants whatever is asked. Runs the
 * real build/bin/dmctl. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <zmq.h>

#include "fixture.h"
#include "tool_run.h"
#include "transport/envelope.h"
#include "transport/rpc.h"

#define T_POLL_MS 50 /* the scripted node looks at its stop flag this often */
#define T_GOV_KEY_BYTES 32
#define T_POLICY_VERSION 7

static const char s_rules[] = "apiVersion: datamesh.io/v1\n"
                              "kind: Policy\n"
                              "metadata: {name: baseline}\n"
                              "spec:\n"
                              "  contractRules:\n"
                              "    - {name: require-freshness, require: sla.freshness}\n";

/* Meets every rule of s_rules but freshness. */
static const char s_contract[] = "apiVersion: datamesh.io/v1\n"
                                 "kind: DataProduct\n"
                                 "metadata: {name: people, domain: hr, version: 1.0.0,\n"
                                 "  owner: {team: hr, contact: hr@company.com}}\n"
                                 "spec:\n"
                                 "  schema:\n"
                                 "    primaryKey: id\n"
                                 "    fields:\n"
                                 "      - {name: id, type: uuid}\n";

static char s_dir[256];
static t_run_t s_r;
static void *s_ctx;
static dm_identity_t *s_node;
static dm_rpc_server_t *s_server;
static char s_addr[DM_ADDRESS_MAX];
static pthread_t s_thread;
static atomic_bool s_stop;

static void s_answer(void *rid, const Dm__Envelope *req)
{
    Dm__Envelope rep = DM__ENVELOPE__INIT;
    if (req->body_case == DM__ENVELOPE__BODY_INGEST_REQ) {
        dm_rpc_server_send_error(s_server, rid, req->id, DM_ERR_DENIED,
                                 "permission denied: ingest into hr/people needs a hr admin");
    } else if (req->body_case == DM__ENVELOPE__BODY_POLICY_GET_REQ) {
        static uint8_t gov[T_GOV_KEY_BYTES] = {1};
        Dm__PolicyGetRep body = DM__POLICY_GET_REP__INIT;
        Dm__PolicyDoc doc = DM__POLICY_DOC__INIT, *docs[] = {&doc};
        doc.key = "gov/doc/baseline";
        doc.version = T_POLICY_VERSION;
        doc.yaml.data = (uint8_t *)s_rules;
        doc.yaml.len = strlen(s_rules);
        body.governance_key.data = gov;
        body.governance_key.len = sizeof gov;
        body.root_version = 1;
        body.max_version = body.policy_version = T_POLICY_VERSION;
        body.docs = docs;
        body.n_docs = 1;
        dm_envelope_init(&rep, req->id, DM__ENVELOPE__BODY_POLICY_GET_REP, &body);
        dm_rpc_server_send(s_server, rid, &rep);
    } else if (req->body_case == DM__ENVELOPE__BODY_GRANT_REQ) {
        Dm__GrantRep body = DM__GRANT_REP__INIT;
        char *readers[] = {req->grant_req->reader};
        body.readers = readers;
        body.n_readers = 1;
        body.version = 1;
        body.changed = true;
        dm_envelope_init(&rep, req->id, DM__ENVELOPE__BODY_GRANT_REP, &body);
        dm_rpc_server_send(s_server, rid, &rep);
    } else {
        dm_rpc_server_send_error(s_server, rid, req->id, DM_ERR_USAGE, "not scripted");
    }
}

static void *s_serve(void *arg)
{
    (void)arg;
    void *router = dm_rpc_server_socket(s_server);
    while (!atomic_load(&s_stop)) {
        zmq_pollitem_t item = {router, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, T_POLL_MS) <= 0)
            continue;
        zmq_msg_t rid, payload;
        zmq_msg_init(&rid);
        zmq_msg_init(&payload);
        if (zmq_msg_recv(&rid, router, 0) >= 0 && zmq_msg_more(&rid) &&
            zmq_msg_recv(&payload, router, 0) >= 0) {
            Dm__Envelope *req = dm_rpc_unpack(zmq_msg_data(&payload), zmq_msg_size(&payload));
            if (req)
                s_answer(&rid, req);
            dm__envelope__free_unpacked(req, NULL);
        }
        zmq_msg_close(&rid);
        zmq_msg_close(&payload);
    }
    return NULL;
}

static void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "dmctl"));
    cr_assert_eq(dm_identity_new_ephemeral(&s_node), DM_OK);
    uint8_t pub[DM_ID_CURVE_BYTES], sec[DM_ID_CURVE_BYTES];
    cr_assert_eq(dm_identity_curve_keys(s_node, pub, sec, NULL), DM_OK);
    s_ctx = zmq_ctx_new();
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_rpc_server_new(s_ctx, "tcp://127.0.0.1:*", sec, &s_server, &why), DM_OK, "%s",
                 why.data ? why.data : "");
    dm_buf_free(&why);
    cr_assert_eq(dm_identity_address_format(dm_identity_public(s_node),
                                            dm_rpc_server_endpoint(s_server), s_addr,
                                            sizeof s_addr, NULL),
                 DM_OK);
    atomic_store(&s_stop, false);
    cr_assert_eq(pthread_create(&s_thread, NULL, s_serve, NULL), 0);
}

static void s_teardown(void)
{
    atomic_store(&s_stop, true);
    pthread_join(s_thread, NULL);
    dm_rpc_server_destroy(&s_server);
    zmq_ctx_term(s_ctx);
    dm_identity_destroy(&s_node);
    dm_t_rmdir(s_dir);
}

TestSuite(dmctl_node, .init = s_setup, .fini = s_teardown, .timeout = 60);

Test(dmctl_node, a_refused_ingest_prints_no_counts)
{
    char data[512];
    t_write(s_dir, "people.jsonl", "{\"id\":\"6f9619ff-8b86-d011-b42d-00c04fc964ff\"}\n", data,
            sizeof data);
    const char *args[] = {"ingest", "hr/people", data, "--node", s_addr, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 1, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.err, "permission denied"), "%s", s_r.err);
    cr_assert_null(strstr(s_r.out, "accepted"), "counts of a refused ingest: %s", s_r.out);
}

Test(dmctl_node, validate_says_ok_only_when_the_contract_rules_hold)
{
    char con[512];
    t_write(s_dir, "people.yaml", s_contract, con, sizeof con);
    const char *args[] = {"validate", con, "--node", s_addr, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 1, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.out, "require-freshness"), "%s", s_r.out);
    cr_assert_null(strstr(s_r.out, "ok:"), "ok and a broken rule for one file: %s", s_r.out);
    /* The same contract with a freshness SLA meets the rules: ok. */
    char text[1024];
    snprintf(text, sizeof text, "%s  sla: {freshness: 1h}\n", s_contract);
    t_write(s_dir, "people.yaml", text, con, sizeof con);
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 0, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.out, "ok: hr/people 1.0.0"), "%s", s_r.out);
    cr_assert_not_null(strstr(s_r.out, "policy version 7"), "%s", s_r.out);
}

Test(dmctl_node, granting_an_unpublished_group_warns)
{
    const char *args[] = {"grant", "hr/people", "group:analysts", "--node", s_addr, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", args), 0, "%s%s", s_r.out, s_r.err);
    cr_assert_not_null(strstr(s_r.out, "granted group:analysts on hr/people"), "%s", s_r.out);
    cr_assert_not_null(strstr(s_r.err, "warning: no Group document named analysts is published; "
                                       "group:analysts matches nobody until one is"),
                       "%s", s_r.err);
    const char *key[] = {"grant", "hr/people",
                         "b0b0000000000000000000000000000000000000000000000000000000000002",
                         "--node", s_addr, NULL};
    cr_assert_eq(t_run(&s_r, s_dir, "dmctl", key), 0, "%s%s", s_r.out, s_r.err);
    cr_assert_null(strstr(s_r.err, "warning"), "a key needs no Group: %s", s_r.err);
}
