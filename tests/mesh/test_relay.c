/* test_relay.c: the relay's wire behaviour (node_relay.c) against an
 * owner the test plays itself: a real CURVE server on loopback that
 * answers FedOpen, QueryReq, QueryNext, QueryClose and FedClose the way
 * the protocol says (docs/protocol.md "Federated query"), so the relay's
 * side is tested before the owner's half is merged, and in ways a real
 * owner would not behave: stale replies before the awaited one, a scan
 * that never answers. What is checked: one FedOpen per owner per query,
 * pipelined with the first QueryReq; batches pulled until done; a late
 * reply for another id skipped; cancel honoured within a poll slice; a
 * FedClose per session at the end; connections reused across queries,
 * and the latency of a point lookup through the relay; an owner's session
 * reused for the same consumer's later queries while each query's own
 * grant is still verified, and reopened when the owner forgot it. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "harness.h"
#include "harness_catalog.h"
#include "identity/identity.h"
#include "proto/mesh.pb-c.h"
#include "server/node_priv.h"
#include "transport/envelope.h"
#include "transport/grant.h"
#include "transport/rpc.h"

#define T_STALL_CURSOR 99 /* a scan the owner never answers after its first batch */
#define T_MAX_PEERS 16

typedef struct {
    void *ctx;
    dm_rpc_server_t *srv;
    dm_identity_t *id;
    char address[DM_ADDRESS_MAX];
    pthread_t th;
    atomic_bool stop;
    atomic_int fed_opens, fed_closes, query_reqs, query_nexts, query_closes, bad_sessions;
    /* strict: FedOpenRep names the session and its product, and a QueryReq
     * in a session not opened (or forgotten: nknown = 0) is refused as a
     * real owner refuses it. */
    atomic_bool strict;
    uint8_t known[T_MAX_PEERS][DM_GRANT_NONCE_BYTES];
    atomic_int nknown;
    uint8_t peers[T_MAX_PEERS][256];
    size_t peer_len[T_MAX_PEERS];
    atomic_int npeers;
} s_owner;

static void s_count_peer(s_owner *o, zmq_msg_t *rid)
{
    int n = atomic_load(&o->npeers);
    for (int i = 0; i < n; i++)
        if (o->peer_len[i] == zmq_msg_size(rid) &&
            memcmp(o->peers[i], zmq_msg_data(rid), o->peer_len[i]) == 0)
            return;
    if (n < T_MAX_PEERS && zmq_msg_size(rid) <= sizeof o->peers[n]) {
        memcpy(o->peers[n], zmq_msg_data(rid), zmq_msg_size(rid));
        o->peer_len[n] = zmq_msg_size(rid);
        atomic_store(&o->npeers, n + 1);
    }
}

static void s_reply_rep(s_owner *o, zmq_msg_t *rid, uint64_t id, uint64_t cursor,
                        const char *rows, uint32_t nrows, bool done)
{
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, rid);
    Dm__Envelope env;
    Dm__QueryRep rep = DM__QUERY_REP__INIT;
    rep.cursor = cursor;
    rep.rows = (ProtobufCBinaryData){strlen(rows), (uint8_t *)rows};
    rep.nrows = nrows;
    rep.done = done;
    dm_envelope_init(&env, id, DM__ENVELOPE__BODY_QUERY_REP, &rep);
    dm_rpc_server_send(o->srv, &copy, &env);
    zmq_msg_close(&copy);
}

/* Answers one request as an owner would. */
static void s_answer(s_owner *o, zmq_msg_t *rid, const Dm__Envelope *e)
{
    switch (e->body_case) {
    case DM__ENVELOPE__BODY_FED_OPEN: {
        atomic_fetch_add(&o->fed_opens, 1);
        Dm__Envelope env;
        Dm__FedOpenRep rep = DM__FED_OPEN_REP__INIT;
        dm_grant_t g;
        char *names[] = {"identity.customers"};
        int n = atomic_load(&o->nknown);
        if (atomic_load(&o->strict) && n < T_MAX_PEERS &&
            dm_grant_read(e->fed_open->grant.data, e->fed_open->grant.len, &g, NULL) == DM_OK) {
            memcpy(o->known[n], g.nonce, DM_GRANT_NONCE_BYTES);
            atomic_store(&o->nknown, n + 1);
            rep.session = (ProtobufCBinaryData){DM_GRANT_NONCE_BYTES, o->known[n]};
            rep.products = names;
            rep.n_products = 1;
        }
        dm_envelope_init(&env, e->id, DM__ENVELOPE__BODY_FED_OPEN_REP, &rep);
        dm_rpc_server_send(o->srv, rid, &env);
        break;
    }
    case DM__ENVELOPE__BODY_QUERY_REQ: {
        atomic_fetch_add(&o->query_reqs, 1);
        if (e->query_req->session.len != DM_GRANT_NONCE_BYTES)
            atomic_fetch_add(&o->bad_sessions, 1);
        bool known = !atomic_load(&o->strict);
        for (int i = 0; !known && i < atomic_load(&o->nknown); i++)
            known = e->query_req->session.len == DM_GRANT_NONCE_BYTES &&
                    memcmp(o->known[i], e->query_req->session.data, DM_GRANT_NONCE_BYTES) == 0;
        if (!known) {
            dm_rpc_server_send_error(o->srv, rid, e->id, DM_ERR_DENIED,
                                     "no open federated session (test owner)");
            break;
        }
        bool stall = strstr(e->query_req->sql, "stall") != NULL;
        bool one = strstr(e->query_req->sql, "WHERE") != NULL; /* a point lookup */
        s_reply_rep(o, rid, e->id, stall ? T_STALL_CURSOR : 7, "A", 1, one);
        break;
    }
    case DM__ENVELOPE__BODY_QUERY_NEXT: {
        atomic_fetch_add(&o->query_nexts, 1);
        if (e->query_next->cursor == T_STALL_CURSOR)
            break;
        /* A late reply of some abandoned request first: must be skipped. */
        s_reply_rep(o, rid, e->id + 1000, 7, "STALE", 5, false);
        s_reply_rep(o, rid, e->id, 7, "BC", 2, true);
        break;
    }
    case DM__ENVELOPE__BODY_QUERY_CLOSE:
        atomic_fetch_add(&o->query_closes, 1);
        s_reply_rep(o, rid, e->id, e->query_close->cursor, "", 0, true);
        break;
    case DM__ENVELOPE__BODY_FED_CLOSE:
        atomic_fetch_add(&o->fed_closes, 1);
        break;
    default:
        break;
    }
}

static void *s_owner_run(void *arg)
{
    s_owner *o = arg;
    void *sock = dm_rpc_server_socket(o->srv);
    while (!atomic_load(&o->stop)) {
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 20) <= 0)
            continue;
        zmq_msg_t rid, payload;
        zmq_msg_init(&rid);
        zmq_msg_init(&payload);
        if (zmq_msg_recv(&rid, sock, 0) >= 0 && zmq_msg_more(&rid) &&
            zmq_msg_recv(&payload, sock, 0) >= 0) {
            s_count_peer(o, &rid);
            Dm__Envelope *e = dm_rpc_unpack(zmq_msg_data(&payload), zmq_msg_size(&payload));
            if (e)
                s_answer(o, &rid, e);
            dm__envelope__free_unpacked(e, NULL);
        }
        zmq_msg_close(&rid);
        zmq_msg_close(&payload);
    }
    return NULL;
}

static void s_owner_start(s_owner *o)
{
    memset(o, 0, sizeof *o);
    cr_assert_geq(sodium_init(), 0);
    cr_assert_eq(dm_identity_new_ephemeral(&o->id), DM_OK);
    uint8_t cpub[DM_ID_CURVE_BYTES], csec[DM_ID_CURVE_BYTES];
    cr_assert_eq(dm_identity_curve_keys(o->id, cpub, csec, NULL), DM_OK);
    o->ctx = zmq_ctx_new();
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_rpc_server_new(o->ctx, "tcp://127.0.0.1:*", csec, &o->srv, &why), DM_OK,
                 "%s", why.data);
    cr_assert_eq(dm_identity_address_format(dm_identity_public(o->id),
                                            dm_rpc_server_endpoint(o->srv), o->address,
                                            sizeof o->address, NULL),
                 DM_OK);
    dm_buf_free(&why);
    cr_assert_eq(pthread_create(&o->th, NULL, s_owner_run, o), 0);
}

static void s_owner_stop(s_owner *o)
{
    atomic_store(&o->stop, true);
    pthread_join(o->th, NULL);
    dm_rpc_server_destroy(&o->srv);
    zmq_ctx_term(o->ctx);
    dm_identity_destroy(&o->id);
}

/* ---- the relay under test ---- */

typedef struct {
    dm_node__remote_dir_t *dir;
    dm_identity_t *relay_id, *consumer;
    dm_node__fedrelay_t *relay;
    dm_buf_t grant;
} s_env;

static dm_node__remote_dir_t *s_dir_fn(void *ctx)
{
    return dm_node__remote_dir_ref(((s_env *)ctx)->dir);
}

static void s_env_init(s_env *env, const s_owner *o)
{
    memset(env, 0, sizeof *env);
    env->dir = dm_node__remote_dir_new();
    cr_assert_eq(dm_identity_new_ephemeral(&env->relay_id), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&env->consumer), DM_OK);
    cr_assert_eq(dm_node__fedrelay_new(env->relay_id, s_dir_fn, env, NULL, NULL, &env->relay),
                 DM_OK);
    dm_node__remote_t e;
    memset(&e, 0, sizeof e);
    snprintf(e.domain, sizeof e.domain, "identity");
    snprintf(e.name, sizeof e.name, "customers");
    dm_buf_t json = DM_BUF_INIT;
    cr_assert(dm_h_contract_payload(&json, "identity", "customers", "1.0.0"));
    e.contract = json.data;
    e.contract_len = json.len;
    memcpy(e.owner, dm_identity_public(o->id), DM_ID_PUBLIC_BYTES);
    snprintf(e.address, sizeof e.address, "%s", o->address);
    e.state = DM_MEMBER_ALIVE;
    e.certified = true;
    cr_assert_eq(dm_node__remote_dir_add(env->dir, &e), DM_OK);
    dm_node__remote_dir_seal(env->dir);
    dm_buf_free(&json);
    /* The relay reads the grant's parts only; the owner here trusts it. */
    uint8_t nonce[DM_GRANT_NONCE_BYTES], hash[32] = {0}, sig[64] = {0}, gbytes[256];
    randombytes_buf(nonce, sizeof nonce);
    Dm__Grant g = DM__GRANT__INIT;
    g.consumer = (ProtobufCBinaryData){32, (uint8_t *)dm_identity_public(env->consumer)};
    g.relay = (ProtobufCBinaryData){32, (uint8_t *)dm_identity_public(env->relay_id)};
    g.sql_sha256 = (ProtobufCBinaryData){32, hash};
    g.nonce = (ProtobufCBinaryData){sizeof nonce, nonce};
    g.expires_ms = dm_clock_wall_ms() + 60000;
    size_t glen = dm__grant__pack(&g, gbytes);
    Dm__SignedGrant sg = DM__SIGNED_GRANT__INIT;
    sg.grant = (ProtobufCBinaryData){glen, gbytes};
    sg.sig = (ProtobufCBinaryData){sizeof sig, sig};
    dm_buf_reserve(&env->grant, dm__signed_grant__get_packed_size(&sg));
    env->grant.len = dm__signed_grant__pack(&sg, (uint8_t *)env->grant.data);
}

static void s_env_fini(s_env *env)
{
    dm_node__fedrelay_destroy(&env->relay);
    dm_node__remote_dir_unref(&env->dir);
    dm_identity_destroy(&env->relay_id);
    dm_identity_destroy(&env->consumer);
    dm_buf_free(&env->grant);
}

static dm_query_remote_t *s_make(s_env *env)
{
    dm_rpc_caller_t caller;
    memset(&caller, 0, sizeof caller);
    memcpy(caller.key, dm_identity_public(env->consumer), DM_ID_PUBLIC_BYTES);
    caller.verified = true;
    dm_query_remote_t *r = NULL;
    cr_assert_eq(dm_node__fedrelay_make(env->relay, &caller, (uint8_t *)env->grant.data,
                                        env->grant.len, "SELECT * FROM identity.customers", &r,
                                        NULL),
                 DM_OK);
    return r;
}

static int64_t s_in_ms(int ms) { return dm_clock_mono_ns() + (int64_t)ms * 1000000; }

/* Waits (deadline) until *counter reaches want. */
static bool s_reaches(atomic_int *counter, int want)
{
    long long deadline = dm_h_now_ms() + DM_H_WAIT_MS;
    while (atomic_load(counter) < want && dm_h_now_ms() < deadline)
        poll(NULL, 0, 5);
    return atomic_load(counter) >= want;
}

TestSuite(relay, .timeout = 60);

Test(relay, batches_flow_one_session_per_owner_and_late_replies_are_skipped)
{
    s_owner o;
    s_owner_start(&o);
    s_env env;
    s_env_init(&env, &o);
    dm_query_remote_t *r = s_make(&env);
    dm_buf_t why = DM_BUF_INIT, rows = DM_BUF_INIT;
    dm_query_rscan_t *a = NULL, *b = NULL, *c = NULL;
    const char *sqls[] = {"SELECT \"id\" FROM x", "SELECT \"tier\" FROM x", "SELECT 1 FROM x"};
    dm_query_rscan_t **scans[] = {&a, &b, &c};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(r->open(r->ctx, "identity", "customers", sqls[i], s_in_ms(5000), NULL, scans[i],
                             &why),
                     DM_OK, "%s", why.data);
    cr_assert_eq(atomic_load(&o.fed_opens), 1, "one FedOpen per owner per query");
    cr_assert_eq(atomic_load(&o.query_reqs), 3);
    cr_assert_eq(atomic_load(&o.bad_sessions), 0, "every QueryReq names the session");
    /* b first: its waits read the batches a and c asked for ahead, which
     * must reach them, not be dropped as stale. */
    dm_query_rscan_t *order[] = {b, a};
    for (int k = 0; k < 2; k++) {
        uint32_t n = 0;
        bool done = true;
        dm_buf_reset(&rows);
        cr_assert_eq(r->next(order[k], s_in_ms(5000), NULL, &rows, &n, &done, &why), DM_OK);
        cr_assert(n == 1 && !done && rows.len == 1 && rows.data[0] == 'A');
        cr_assert_eq(r->next(order[k], s_in_ms(5000), NULL, &rows, &n, &done, &why), DM_OK,
                     "%s", why.data);
        cr_assert(n == 2 && done, "n %u done %d", n, done);
        cr_assert_str_eq(rows.data, "ABC", "the stale reply's rows never reach the engine");
        cr_assert_eq(r->next(order[k], s_in_ms(5000), NULL, &rows, &n, &done, &why), DM_OK);
        cr_assert(n == 0 && done);
    }
    cr_assert_leq(atomic_load(&o.query_nexts), 3, "one pull per batch, asked ahead");
    r->close(a);
    r->close(b);
    r->close(c); /* not done: the owner is told */
    dm_node__fedrelay_free(env.relay, r);
    cr_assert(s_reaches(&o.query_closes, 1), "the unfinished scan was not closed on the owner");
    cr_assert(s_reaches(&o.fed_closes, 1), "no FedClose at the query's end");
    cr_assert_eq(atomic_load(&o.query_closes), 1, "a finished scan is not closed again");
    dm_buf_free(&why);
    dm_buf_free(&rows);
    s_env_fini(&env);
    s_owner_stop(&o);
}

typedef struct {
    atomic_bool *flag;
    int after_ms;
} s_canceller;

static void *s_cancel_later(void *arg)
{
    s_canceller *c = arg;
    poll(NULL, 0, c->after_ms);
    atomic_store(c->flag, true);
    return NULL;
}

Test(relay, a_silent_owner_is_given_up_on_cancel_and_at_the_deadline)
{
    s_owner o;
    s_owner_start(&o);
    s_env env;
    s_env_init(&env, &o);
    dm_query_remote_t *r = s_make(&env);
    dm_buf_t why = DM_BUF_INIT, rows = DM_BUF_INIT;
    dm_query_rscan_t *a = NULL;
    cr_assert_eq(r->open(r->ctx, "identity", "customers", "SELECT \"id\" FROM x -- stall",
                         s_in_ms(5000), NULL, &a, &why),
                 DM_OK, "%s", why.data);
    uint32_t n;
    bool done;
    cr_assert_eq(r->next(a, s_in_ms(5000), NULL, &rows, &n, &done, &why), DM_OK); /* batch 1 */
    atomic_bool cancel = false;
    s_canceller c = {&cancel, 200};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, s_cancel_later, &c), 0);
    long long t0 = dm_h_now_ms();
    cr_assert_eq(r->next(a, s_in_ms(10000), &cancel, &rows, &n, &done, &why), DM_ERR_TIMEOUT);
    long long took = dm_h_now_ms() - t0;
    pthread_join(th, NULL);
    cr_assert(took >= 190 && took < 200 + 4 * DM_NODE_RELAY_POLL_MS, "took %lld ms", took);
    cr_assert(strstr(why.data, "identity.customers") && strstr(why.data, "cancelled"), "%s",
              why.data);
    r->close(a);
    dm_node__fedrelay_free(env.relay, r);

    /* Without cancel, the deadline. */
    r = s_make(&env);
    cr_assert_eq(r->open(r->ctx, "identity", "customers", "SELECT 1 -- stall", s_in_ms(5000), NULL, &a,
                         &why),
                 DM_OK);
    cr_assert_eq(r->next(a, s_in_ms(5000), NULL, &rows, &n, &done, &why), DM_OK);
    dm_buf_reset(&why);
    t0 = dm_h_now_ms();
    cr_assert_eq(r->next(a, s_in_ms(300), NULL, &rows, &n, &done, &why), DM_ERR_TIMEOUT);
    took = dm_h_now_ms() - t0;
    cr_assert(took >= 290 && took < 300 + 4 * DM_NODE_RELAY_POLL_MS, "took %lld ms", took);
    cr_assert(strstr(why.data, "deadline"), "%s", why.data);
    r->close(a);
    dm_node__fedrelay_free(env.relay, r);
    dm_buf_free(&why);
    dm_buf_free(&rows);
    s_env_fini(&env);
    s_owner_stop(&o);
}

static int s_cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

Test(relay, point_lookups_reuse_connections_and_stay_fast)
{
    s_owner o;
    s_owner_start(&o);
    s_env env;
    s_env_init(&env, &o);
    enum { N = 2000 };
    static long long us[N];
    dm_buf_t why = DM_BUF_INIT, rows = DM_BUF_INIT;
    for (int i = 0; i < N; i++) {
        int64_t t0 = dm_clock_mono_ns();
        dm_query_remote_t *r = s_make(&env);
        dm_query_rscan_t *a = NULL;
        cr_assert_eq(r->open(r->ctx, "identity", "customers",
                             "SELECT \"tier\" FROM x WHERE \"id\" = 5", s_in_ms(5000), NULL, &a,
                             &why),
                     DM_OK, "%s", why.data);
        uint32_t n;
        bool done;
        dm_buf_reset(&rows);
        cr_assert_eq(r->next(a, s_in_ms(5000), NULL, &rows, &n, &done, &why), DM_OK);
        cr_assert(n == 1 && done);
        r->close(a);
        dm_node__fedrelay_free(env.relay, r);
        us[i] = (dm_clock_mono_ns() - t0) / 1000;
    }
    qsort(us, N, sizeof *us, s_cmp_ll);
    cr_log_info("point lookup through the relay (make, FedOpen + QueryReq, FedClose), %d "
                "queries: p50 %lld us, p90 %lld us, p99 %lld us, max %lld us",
                N, us[N / 2], us[N * 9 / 10], us[N * 99 / 100], us[N - 1]);
    cr_assert_leq(atomic_load(&o.npeers), 2, "connections are reused: %d",
                  atomic_load(&o.npeers));
    cr_assert(s_reaches(&o.fed_closes, N));
    /* Generous: the machine is shared; the figure is in the log. */
    cr_assert_lt(us[N * 99 / 100], 20000);
    dm_buf_free(&why);
    dm_buf_free(&rows);
    s_env_fini(&env);
    s_owner_stop(&o);
}

/* One point lookup through the relay by consumer, whose grant signs
 * signed_sql (forged: its signature's last byte flipped) while the query
 * is sql. The open's result, why filled on failure. */
static dm_err s_signed_lookup(s_env *env, const dm_identity_t *consumer, const char *sql,
                              const char *signed_sql, bool forged, dm_buf_t *why)
{
    dm_buf_t grant = DM_BUF_INIT, rows = DM_BUF_INIT;
    cr_assert_eq(dm_grant_sign(consumer, dm_identity_public(env->relay_id), signed_sql,
                               strlen(signed_sql), dm_clock_wall_ms() + 60000, &grant, why),
                 DM_OK);
    if (forged)
        grant.data[grant.len - 1] ^= 1;
    dm_rpc_caller_t caller;
    memset(&caller, 0, sizeof caller);
    memcpy(caller.key, dm_identity_public(consumer), DM_ID_PUBLIC_BYTES);
    caller.verified = true;
    dm_query_remote_t *r = NULL;
    cr_assert_eq(dm_node__fedrelay_make(env->relay, &caller, (uint8_t *)grant.data, grant.len,
                                        sql, &r, NULL),
                 DM_OK);
    dm_query_rscan_t *a = NULL;
    dm_buf_reset(why);
    dm_err rc = r->open(r->ctx, "identity", "customers", "SELECT \"tier\" FROM x WHERE \"id\" = 5",
                        s_in_ms(5000), NULL, &a, why);
    if (rc == DM_OK) {
        uint32_t n;
        bool done;
        cr_assert_eq(r->next(a, s_in_ms(5000), NULL, &rows, &n, &done, why), DM_OK);
        cr_assert(n == 1 && done);
        r->close(a);
    }
    dm_node__fedrelay_free(env->relay, r);
    dm_buf_free(&grant);
    dm_buf_free(&rows);
    return rc;
}

Test(relay, a_consumers_later_queries_reuse_its_session_and_each_grant_is_checked)
{
    s_owner o;
    s_owner_start(&o);
    atomic_store(&o.strict, true);
    s_env env;
    s_env_init(&env, &o);
    dm_buf_t why = DM_BUF_INIT;
    const char *sql = "SELECT * FROM identity.customers";
    for (int i = 0; i < 5; i++)
        cr_assert_eq(s_signed_lookup(&env, env.consumer, sql, sql, false, &why), DM_OK, "%s",
                     why.data);
    cr_assert_eq(atomic_load(&o.fed_opens), 1, "one FedOpen for five queries of one consumer");
    cr_assert_eq(atomic_load(&o.query_reqs), 5);

    /* The session is open, yet every query's own grant must verify. */
    cr_assert_eq(s_signed_lookup(&env, env.consumer, sql, sql, true, &why), DM_ERR_DENIED);
    cr_assert(strstr(why.data, "identity.customers") && strstr(why.data, "signature"), "%s",
              why.data);
    cr_assert_eq(s_signed_lookup(&env, env.consumer, sql, "SELECT 1 FROM identity.customers",
                                 false, &why),
                 DM_ERR_DENIED);
    cr_assert(strstr(why.data, "SQL"), "%s", why.data);

    /* Another consumer never rides on the first one's session. */
    dm_identity_t *other = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&other), DM_OK);
    cr_assert_eq(s_signed_lookup(&env, other, sql, sql, false, &why), DM_OK, "%s", why.data);
    cr_assert_eq(atomic_load(&o.fed_opens), 2, "the other consumer opens its own session");

    /* An owner that forgot the sessions (restarted): the query's own grant
     * opens a new one, and the query succeeds. */
    atomic_store(&o.nknown, 0);
    cr_assert_eq(s_signed_lookup(&env, env.consumer, sql, sql, false, &why), DM_OK, "%s",
                 why.data);
    cr_assert_eq(atomic_load(&o.fed_opens), 3);
    cr_assert_eq(s_signed_lookup(&env, env.consumer, sql, sql, false, &why), DM_OK, "%s",
                 why.data);
    cr_assert_eq(atomic_load(&o.fed_opens), 3, "and that one is reused in turn");

    /* A session with less than the query time limit left is not reused. */
    dm_node__fedrelay_set_time_limit(env.relay, 120000);
    cr_assert_eq(s_signed_lookup(&env, env.consumer, sql, sql, false, &why), DM_OK, "%s",
                 why.data);
    cr_assert_eq(atomic_load(&o.fed_opens), 4);
    cr_assert(s_reaches(&o.fed_closes, 1), "a session not kept is closed at the query's end");
    cr_assert_eq(atomic_load(&o.bad_sessions), 0);
    dm_identity_destroy(&other);
    dm_buf_free(&why);
    s_env_fini(&env);
    s_owner_stop(&o);
}
