/* test_federation.c: federated SQL, the relaying node's side.
 *
 * relay_dir: the relay's dm_query_remote_t (node_relay.c) over a
 * directory the test builds: resolve, and every refusal the relay makes
 * before it connects (no grant, a grant for another consumer or relay or
 * expired, a dead, departed, unknown or uncertified owner), each naming
 * the product, the owner and what the mesh knows of it.
 * relay_wire: the same against real meshd owners: an owner that refuses
 * the session is named with its reason; an owner killed -9 fails the scan
 * within its deadline, never a hang; a stopped owner the directory still
 * has alive fails the wait after DM_NODE_RELAY_WAIT_MS of silence.
 * federation: three nodes (commerce, identity, logistics) joined by
 * gossip; products registered and ingested on commerce and identity (and
 * one on logistics); queries at logistics, the relay, through the real
 * meshq compared with the sqlite3 shell over the same rows: joins,
 * filters, aggregates, ORDER BY, LIMIT/OFFSET, NULLs, IN lists. Then the
 * identity node is killed: a query naming its product fails within the
 * deadline naming product, node and state; one over commerce still works.
 * Before that it is stopped (SIGSTOP): meshq's default timeout still gets
 * the relay's error naming product and owner (DM_NODE_RELAY_WAIT_MS, or
 * sooner when the mesh suspects it). */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "harness_catalog.h"
#include "identity/identity.h"
#include "proto/mesh.pb-c.h"
#include "server/node_priv.h"
#include "transport/grant.h"

#define T_CMD_MS 60000
#define T_POLL_MS 50
#define T_SCAN_MS 1500   /* the deadline a test gives one remote scan */
#define T_BOUND_MS 4000  /* what "within the deadline" may take, slack included */

static const char *const s_contract_fmt =
    "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: %s\n  domain: %s\n"
    "  version: 1.0.0\n  owner:\n    team: t\n    contact: t@example.com\n"
    "spec:\n  policies:\n    access: public\n  schema:\n    primaryKey: id\n    fields:\n%s";

/* ---- a directory and a relay of the test's own ---- */

typedef struct {
    dm_node__remote_dir_t *dir;
    dm_identity_t *relay_id, *consumer;
    dm_node__fedrelay_t *relay;
    int audits, refusals;
} s_env;

static dm_node__remote_dir_t *s_dir_fn(void *ctx)
{
    return dm_node__remote_dir_ref(((s_env *)ctx)->dir);
}

static void s_audit_fn(void *ctx, const dm_rpc_caller_t *caller, bool allowed, const char *domain,
                       const char *name, const uint8_t *owner, const char *rule)
{
    (void)caller, (void)domain, (void)name, (void)owner, (void)rule;
    s_env *env = ctx;
    env->audits++;
    env->refusals += !allowed;
}

/* Adds domain.name owned by owner (32 bytes) at address in state. */
static void s_add(s_env *env, const char *domain, const char *name, const uint8_t *owner,
                  const char *address, int state, int64_t since_ms, bool certified)
{
    dm_node__remote_t e;
    memset(&e, 0, sizeof e);
    snprintf(e.domain, sizeof e.domain, "%s", domain);
    snprintf(e.name, sizeof e.name, "%s", name);
    dm_buf_t json = DM_BUF_INIT;
    cr_assert(dm_h_contract_payload(&json, domain, name, "1.0.0"));
    e.contract = json.data;
    e.contract_len = json.len;
    memcpy(e.owner, owner, DM_ID_PUBLIC_BYTES);
    snprintf(e.address, sizeof e.address, "%s", address ? address : "");
    e.state = state;
    e.since_ms = since_ms;
    e.certified = certified;
    cr_assert_eq(dm_node__remote_dir_add(env->dir, &e), DM_OK);
    dm_buf_free(&json);
}

static void s_env_init(s_env *env, dm_identity_t *relay_id)
{
    memset(env, 0, sizeof *env);
    cr_assert_eq(sodium_init() < 0, 0);
    env->dir = dm_node__remote_dir_new();
    cr_assert_not_null(env->dir);
    if (relay_id)
        env->relay_id = relay_id;
    else
        cr_assert_eq(dm_identity_new_ephemeral(&env->relay_id), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&env->consumer), DM_OK);
    cr_assert_eq(dm_node__fedrelay_new(env->relay_id, s_dir_fn, env, s_audit_fn, env,
                                       &env->relay),
                 DM_OK);
}

static void s_env_fini(s_env *env)
{
    dm_node__fedrelay_destroy(&env->relay);
    dm_node__remote_dir_unref(&env->dir);
    dm_identity_destroy(&env->relay_id);
    dm_identity_destroy(&env->consumer);
}

/* An encoded SignedGrant with these parts and a signature that is not the
 * consumer's (the relay does not check it; an owner refuses it). */
static void s_grant(dm_buf_t *out, const uint8_t *consumer, const uint8_t *relay,
                    int64_t expires_ms)
{
    uint8_t nonce[DM_GRANT_NONCE_BYTES], hash[32] = {0}, sig[64] = {0};
    randombytes_buf(nonce, sizeof nonce);
    Dm__Grant g = DM__GRANT__INIT;
    g.consumer = (ProtobufCBinaryData){DM_ID_PUBLIC_BYTES, (uint8_t *)consumer};
    g.relay = (ProtobufCBinaryData){DM_ID_PUBLIC_BYTES, (uint8_t *)relay};
    g.sql_sha256 = (ProtobufCBinaryData){sizeof hash, hash};
    g.nonce = (ProtobufCBinaryData){sizeof nonce, nonce};
    g.expires_ms = expires_ms;
    uint8_t gbytes[256];
    size_t glen = dm__grant__pack(&g, gbytes);
    Dm__SignedGrant sg = DM__SIGNED_GRANT__INIT;
    sg.grant = (ProtobufCBinaryData){glen, gbytes};
    sg.sig = (ProtobufCBinaryData){sizeof sig, sig};
    dm_buf_reset(out);
    dm_buf_reserve(out, dm__signed_grant__get_packed_size(&sg));
    out->len = dm__signed_grant__pack(&sg, (uint8_t *)out->data);
}

/* One query's remote as the pool would make it, for caller consumer
 * (verified) with grant (may be empty). */
static dm_query_remote_t *s_make(s_env *env, const dm_buf_t *grant, const char *sql)
{
    dm_rpc_caller_t caller;
    memset(&caller, 0, sizeof caller);
    memcpy(caller.key, dm_identity_public(env->consumer), DM_ID_PUBLIC_BYTES);
    caller.verified = true;
    dm_query_remote_t *r = NULL;
    cr_assert_eq(dm_node__fedrelay_make(env->relay, &caller, grant ? (uint8_t *)grant->data : NULL,
                                        grant ? grant->len : 0, sql, &r, NULL),
                 DM_OK);
    return r;
}

/* Opens domain.name with a deadline ms away; the error line in why. */
static dm_err s_try(dm_query_remote_t *r, const char *domain, const char *name, int ms,
                    dm_buf_t *why)
{
    dm_query_rscan_t *scan = NULL;
    dm_buf_reset(why);
    dm_err rc = r->open(r->ctx, domain, name, "SELECT \"id\" FROM x", dm_clock_mono_ns() +
                        (int64_t)ms * 1000000, NULL, &scan, why);
    r->close(scan);
    return rc;
}

static void s_owner_hex(const uint8_t *key, char out[24])
{
    char hex[DM_ID_HEX_BYTES];
    dm_identity_key_hex(key, hex);
    snprintf(out, 24, "%.16s", hex);
}

TestSuite(relay_dir, .timeout = 60);

Test(relay_dir, resolve_gives_the_contract_and_refusals_name_product_owner_and_state)
{
    s_env env;
    s_env_init(&env, NULL);
    uint8_t alive[32], dead[32], left[32];
    randombytes_buf(alive, 32), randombytes_buf(dead, 32), randombytes_buf(left, 32);
    int64_t since = dm_clock_wall_ms() - 3600 * 1000; /* an hour ago */
    s_add(&env, "identity", "customers", dead, "x@tcp://127.0.0.1:1", DM_MEMBER_DEAD, since, true);
    s_add(&env, "commerce", "orders", alive, "x@tcp://127.0.0.1:1", DM_MEMBER_ALIVE, since, true);
    s_add(&env, "hr", "staff", left, "x@tcp://127.0.0.1:1", DM_MEMBER_LEFT, since, true);
    s_add(&env, "rogue", "data", alive, "x@tcp://127.0.0.1:1", DM_MEMBER_ALIVE, since, false);
    s_add(&env, "ghost", "data", left, "", DM_MEMBER_UNKNOWN, since, true);
    dm_node__remote_dir_seal(env.dir);
    cr_assert_eq(dm_node__remote_dir_count(env.dir), 5);

    dm_buf_t why = DM_BUF_INIT, grant = DM_BUF_INIT;
    dm_query_remote_t *r = s_make(&env, NULL, "SELECT 1");
    char *json = NULL;
    uint64_t rows = 99;
    cr_assert_eq(r->resolve(r->ctx, "commerce", "orders", &json, &rows, &why), DM_OK);
    cr_assert(strstr(json, "\"orders\"") && strstr(json, "\"commerce\""), "%s", json);
    cr_assert_eq(rows, 0);
    free(json);
    cr_assert_eq(r->resolve(r->ctx, "commerce", "invoices", &json, &rows, &why), DM_ERR_NOTFOUND);
    cr_assert_null(json);
    cr_assert(strstr(why.data, "commerce.invoices"), "%s", why.data);

    char hex[24], dhex[24];
    s_owner_hex(alive, hex);
    s_owner_hex(dead, dhex);
    cr_assert_eq(s_try(r, "commerce", "orders", T_SCAN_MS, &why), DM_ERR_DENIED);
    cr_assert(strstr(why.data, "commerce.orders is owned by node ") && strstr(why.data, hex) &&
                  strstr(why.data, "needs a grant signed by the consumer"),
              "%s", why.data);
    cr_assert_geq(env.refusals, 1, "refusals at the relay are audited");
    dm_node__fedrelay_free(env.relay, r);

    /* A grant the relay can use: the owner's state decides. */
    s_grant(&grant, dm_identity_public(env.consumer), dm_identity_public(env.relay_id),
            dm_clock_wall_ms() + 60000);
    r = s_make(&env, &grant, "SELECT 1");
    long long t0 = dm_h_now_ms();
    cr_assert_eq(s_try(r, "identity", "customers", T_SCAN_MS, &why), DM_ERR_NET);
    cr_assert(strstr(why.data, "identity.customers: owner node ") && strstr(why.data, dhex) &&
                  strstr(why.data, "is dead since "),
              "%s", why.data);
    cr_assert_lt(dm_h_now_ms() - t0, 200, "a dead owner is not even dialled");
    cr_assert_eq(s_try(r, "hr", "staff", T_SCAN_MS, &why), DM_ERR_NET);
    cr_assert(strstr(why.data, "hr.staff") && strstr(why.data, "is left since"), "%s", why.data);
    cr_assert_eq(s_try(r, "ghost", "data", T_SCAN_MS, &why), DM_ERR_NET);
    cr_assert(strstr(why.data, "not a member this node knows"), "%s", why.data);
    cr_assert_eq(s_try(r, "rogue", "data", T_SCAN_MS, &why), DM_ERR_DENIED);
    cr_assert(strstr(why.data, "rogue.data") && strstr(why.data, "not certified for domain rogue"),
              "%s", why.data);
    cr_assert_eq(s_try(r, "commerce", "nothing", T_SCAN_MS, &why), DM_ERR_NOTFOUND);
    dm_node__fedrelay_free(env.relay, r);

    /* Grants the relay refuses before it dials anyone. */
    uint8_t other[32];
    randombytes_buf(other, 32);
    struct {
        const uint8_t *consumer, *relay;
        int64_t expires;
        const char *says;
    } bad[] = {
        {other, dm_identity_public(env.relay_id), dm_clock_wall_ms() + 60000, "another consumer"},
        {dm_identity_public(env.consumer), other, dm_clock_wall_ms() + 60000, "another relay"},
        {dm_identity_public(env.consumer), dm_identity_public(env.relay_id),
         dm_clock_wall_ms() - 120000, "expired"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s_grant(&grant, bad[i].consumer, bad[i].relay, bad[i].expires);
        r = s_make(&env, &grant, "SELECT 1");
        cr_assert_eq(s_try(r, "commerce", "orders", T_SCAN_MS, &why), DM_ERR_DENIED);
        cr_assert(strstr(why.data, "commerce.orders") && strstr(why.data, bad[i].says), "%s",
                  why.data);
        dm_node__fedrelay_free(env.relay, r);
    }
    dm_buf_reset(&grant);
    dm_buf_puts(&grant, "\x0a\xff junk");
    r = s_make(&env, &grant, "SELECT 1");
    cr_assert_eq(s_try(r, "commerce", "orders", T_SCAN_MS, &why), DM_ERR_DENIED);
    cr_assert(strstr(why.data, "malformed"), "%s", why.data);
    dm_node__fedrelay_free(env.relay, r);
    dm_buf_free(&why);
    dm_buf_free(&grant);
    s_env_fini(&env);
}

/* ---- the relay against real owners ---- */

static dm_h_node_t s_owner;
static char s_owner_dir[600];

static void s_wire_up(void)
{
    const char *tmp = dm_h_tmpdir();
    cr_assert_not_null(tmp);
    snprintf(s_owner_dir, sizeof s_owner_dir, "%s/commerce", tmp);
    cr_assert(dm_h_node_start(&s_owner, s_owner_dir, "commerce", NULL));
    char path[700];
    snprintf(path, sizeof path, "%s.yaml", s_owner_dir);
    dm_h_write(path, dm_h_contract_text("commerce", "orders", "1.0.0"));
    const char *reg[] = {"--data", s_owner_dir, "register", path, NULL};
    dm_h_result_t r = dm_h_run("dmctl", reg, NULL, T_CMD_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
}

static void s_wire_down(void) { dm_h_cleanup(); }

TestSuite(relay_wire, .init = s_wire_up, .fini = s_wire_down, .timeout = 90);

/* Adds domain.name owned by node n, alive and certified. */
static void s_add_node(s_env *env, const dm_h_node_t *n, const char *domain, const char *name)
{
    uint8_t key[DM_ID_PUBLIC_BYTES];
    char endpoint[DM_ID_ENDPOINT_MAX];
    cr_assert_eq(dm_identity_address_parse(n->addr, key, endpoint, sizeof endpoint, NULL), DM_OK);
    s_add(env, domain, name, key, n->addr, DM_MEMBER_ALIVE, dm_clock_wall_ms(), true);
}

Test(relay_wire, an_owner_that_refuses_the_session_is_named_and_the_next_query_still_asks_it)
{
    s_env env;
    s_env_init(&env, NULL);
    s_add_node(&env, &s_owner, "commerce", "orders");
    dm_node__remote_dir_seal(env.dir);
    uint8_t key[DM_ID_PUBLIC_BYTES];
    char endpoint[DM_ID_ENDPOINT_MAX], hex[24];
    cr_assert_eq(dm_identity_address_parse(s_owner.addr, key, endpoint, sizeof endpoint, NULL),
                 DM_OK);
    s_owner_hex(key, hex);
    dm_buf_t why = DM_BUF_INIT, grant = DM_BUF_INIT;
    for (int round = 0; round < 2; round++) { /* the second reuses the cached connection */
        /* Signed by nobody: whatever the owner makes of it, it must refuse. */
        s_grant(&grant, dm_identity_public(env.consumer), dm_identity_public(env.relay_id),
                dm_clock_wall_ms() + 60000);
        dm_query_remote_t *r = s_make(&env, &grant, "SELECT id FROM commerce.orders");
        long long t0 = dm_h_now_ms();
        dm_err rc = s_try(r, "commerce", "orders", 5000, &why);
        cr_assert_neq(rc, DM_OK);
        cr_assert_neq(rc, DM_ERR_TIMEOUT, "the owner answered: %s", why.data);
        cr_assert_lt(dm_h_now_ms() - t0, 5000);
        cr_assert(strstr(why.data, "commerce.orders") && strstr(why.data, hex), "%s", why.data);
        cr_log_info("the owner's refusal as the relay reports it: %s", why.data);
        /* Every later scan of the query fails alike, without asking again. */
        t0 = dm_h_now_ms();
        cr_assert_eq(s_try(r, "commerce", "orders", 5000, &why), rc);
        cr_assert(strstr(why.data, "commerce.orders"), "%s", why.data);
        cr_assert_lt(dm_h_now_ms() - t0, 100);
        dm_node__fedrelay_free(env.relay, r);
    }
    cr_assert_eq(env.audits, 2, "each query relaying a product is audited once at the relay");
    dm_buf_free(&why);
    dm_buf_free(&grant);
    s_env_fini(&env);
}

Test(relay_wire, an_owner_killed_mid_mesh_fails_the_scan_within_its_deadline)
{
    dm_h_node_t gone;
    char dir[700];
    snprintf(dir, sizeof dir, "%s-gone", s_owner_dir);
    cr_assert(dm_h_node_start(&gone, dir, "identity", NULL));
    s_env env;
    s_env_init(&env, NULL);
    s_add_node(&env, &gone, "identity", "customers");
    s_add_node(&env, &s_owner, "commerce", "orders");
    dm_node__remote_dir_seal(env.dir);
    dm_h_node_signal(&gone, SIGKILL);
    dm_buf_t why = DM_BUF_INIT, grant = DM_BUF_INIT;
    s_grant(&grant, dm_identity_public(env.consumer), dm_identity_public(env.relay_id),
            dm_clock_wall_ms() + 60000);
    dm_query_remote_t *r = s_make(&env, &grant, "SELECT 1");
    long long t0 = dm_h_now_ms();
    cr_assert_eq(s_try(r, "identity", "customers", T_SCAN_MS, &why), DM_ERR_TIMEOUT);
    long long took = dm_h_now_ms() - t0;
    cr_assert_geq(took, T_SCAN_MS - 100);
    cr_assert_lt(took, T_BOUND_MS, "the scan took %lld ms", took);
    cr_assert(strstr(why.data, "identity.customers") && strstr(why.data, "owner node") &&
                  strstr(why.data, "deadline") && strstr(why.data, "the mesh has it alive since"),
              "%s", why.data);
    /* The other owner is unaffected in the same query: it answers. */
    dm_err rc = s_try(r, "commerce", "orders", 5000, &why);
    cr_assert_neq(rc, DM_ERR_TIMEOUT, "%s", why.data);
    dm_node__fedrelay_free(env.relay, r);
    dm_buf_free(&why);
    dm_buf_free(&grant);
    s_env_fini(&env);
}

Test(relay_wire, an_alive_but_silent_owner_fails_the_wait_after_the_silence_cap)
{
    /* The directory keeps the owner alive whatever happens (the test's
     * own), so only the relay's silence cap can end the wait: a first
     * query leaves a clean connection in the cache (the owner refuses the
     * non-member relay's session at once); the owner is then stopped, and
     * the next query, whose deadline is 20 s away, fails within
     * DM_NODE_RELAY_WAIT_MS naming product and owner. */
    dm_h_node_t quiet;
    char dir[700];
    snprintf(dir, sizeof dir, "%s-quiet", s_owner_dir);
    cr_assert(dm_h_node_start(&quiet, dir, "identity", NULL));
    s_env env;
    s_env_init(&env, NULL);
    s_add_node(&env, &quiet, "identity", "customers");
    dm_node__remote_dir_seal(env.dir);
    uint8_t key[DM_ID_PUBLIC_BYTES];
    char endpoint[DM_ID_ENDPOINT_MAX], hex[24];
    cr_assert_eq(dm_identity_address_parse(quiet.addr, key, endpoint, sizeof endpoint, NULL),
                 DM_OK);
    s_owner_hex(key, hex);
    dm_buf_t why = DM_BUF_INIT, grant = DM_BUF_INIT;
    s_grant(&grant, dm_identity_public(env.consumer), dm_identity_public(env.relay_id),
            dm_clock_wall_ms() + 60000);
    dm_query_remote_t *r = s_make(&env, &grant, "SELECT 1");
    dm_err rc = s_try(r, "identity", "customers", 5000, &why);
    cr_assert(rc != DM_OK && rc != DM_ERR_TIMEOUT, "the owner did not refuse: %s", why.data);
    dm_node__fedrelay_free(env.relay, r);

    cr_assert_eq(kill(quiet.pid, SIGSTOP), 0);
    s_grant(&grant, dm_identity_public(env.consumer), dm_identity_public(env.relay_id),
            dm_clock_wall_ms() + 60000);
    r = s_make(&env, &grant, "SELECT 1");
    long long t0 = dm_h_now_ms();
    rc = s_try(r, "identity", "customers", 20000, &why);
    long long took = dm_h_now_ms() - t0;
    cr_assert_eq(rc, DM_ERR_TIMEOUT, "%s", why.data);
    cr_assert_geq(took, DM_NODE_RELAY_WAIT_MS - 100);
    cr_assert_lt(took, DM_NODE_RELAY_WAIT_MS + 1500, "the wait took %lld ms: %s", took, why.data);
    cr_assert(strstr(why.data, "identity.customers") && strstr(why.data, hex) &&
                  strstr(why.data, "sent nothing for 5000 ms"),
              "%s", why.data);
    dm_node__fedrelay_free(env.relay, r);
    kill(quiet.pid, SIGCONT);
    dm_h_node_signal(&quiet, SIGKILL);
    dm_buf_free(&why);
    dm_buf_free(&grant);
    s_env_fini(&env);
}

/* ---- end to end: three domains, SQL at the node that owns neither ---- */

enum { T_COMMERCE, T_IDENTITY, T_LOGISTICS, T_NODES };
static const char *const s_domains[T_NODES] = {"commerce", "identity", "logistics"};
static dm_h_node_t s_nodes[T_NODES];
static char s_dirs[T_NODES][600];
static char s_sqlite_rows[1 << 16]; /* the same rows as SQL for the sqlite3 shell */
static size_t s_sqlite_len;

#define T_ORDERS 60
#define T_CUSTOMERS 10
#define T_SHIPMENTS 25

/* Registers domain/name with fields (YAML list lines) on node i and
 * ingests ndjson; adds the table and rows to the sqlite3 script. */
static void s_product(int i, const char *name, const char *fields, const char *ndjson,
                      const char *create, const char *inserts)
{
    char path[700], text[2048];
    snprintf(path, sizeof path, "%s-%s.yaml", s_dirs[i], name);
    snprintf(text, sizeof text, s_contract_fmt, name, s_domains[i], fields);
    dm_h_write(path, text);
    const char *reg[] = {"--data", s_dirs[i], "register", path, NULL};
    dm_h_result_t r = dm_h_run("dmctl", reg, NULL, T_CMD_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    snprintf(path, sizeof path, "%s-%s.ndjson", s_dirs[i], name);
    dm_h_write(path, ndjson);
    char qualified[128];
    snprintf(qualified, sizeof qualified, "%s/%s", s_domains[i], name);
    const char *ing[] = {"--data", s_dirs[i], "ingest", qualified, path, NULL};
    r = dm_h_run("dmctl", ing, NULL, T_CMD_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    s_sqlite_len += (size_t)snprintf(s_sqlite_rows + s_sqlite_len,
                                     sizeof s_sqlite_rows - s_sqlite_len, "%s\n%s", create,
                                     inserts);
    cr_assert_lt(s_sqlite_len, sizeof s_sqlite_rows);
}

static void s_data(void)
{
    static char nd[1 << 14], ins[1 << 15];
    size_t n = 0, k = 0;
    for (int i = 1; i <= T_ORDERS; i++) {
        char cust[32] = "", status[32] = "";
        if (i % 7)
            snprintf(cust, sizeof cust, ",\"customer\":%d", i % 13);
        if (i % 5)
            snprintf(status, sizeof status, ",\"status\":\"%s\"", i % 3 ? "paid" : "created");
        n += (size_t)snprintf(nd + n, sizeof nd - n, "{\"id\":%d%s%s,\"amount\":%.2f}\n", i,
                              cust, status, i * 1.25);
        char c2[16] = "NULL", s2[16] = "NULL";
        if (i % 7)
            snprintf(c2, sizeof c2, "%d", i % 13);
        if (i % 5)
            snprintf(s2, sizeof s2, "'%s'", i % 3 ? "paid" : "created");
        k += (size_t)snprintf(ins + k, sizeof ins - k,
                              "INSERT INTO commerce.orders VALUES(%d,%s,%s,%.2f);\n", i, c2, s2,
                              i * 1.25);
    }
    s_product(T_COMMERCE, "orders",
              "      - {name: id, type: int, required: true}\n      - {name: customer, type: int}\n"
              "      - {name: status, type: string}\n      - {name: amount, type: double}\n",
              nd,
              "CREATE TABLE commerce.orders(id INTEGER PRIMARY KEY, customer INTEGER, status "
              "TEXT, amount REAL);",
              ins);
    n = k = 0;
    static const char *const tiers[] = {"gold", "silver", "bronze"};
    for (int i = 1; i <= T_CUSTOMERS; i++) {
        if (i % 4)
            n += (size_t)snprintf(nd + n, sizeof nd - n, "{\"id\":%d,\"tier\":\"%s\"}\n", i,
                                  tiers[i % 3]);
        else
            n += (size_t)snprintf(nd + n, sizeof nd - n, "{\"id\":%d}\n", i);
        k += (size_t)snprintf(ins + k, sizeof ins - k,
                              "INSERT INTO identity.customers VALUES(%d,%s%s%s);\n", i,
                              i % 4 ? "'" : "", i % 4 ? tiers[i % 3] : "NULL", i % 4 ? "'" : "");
    }
    s_product(T_IDENTITY, "customers",
              "      - {name: id, type: int, required: true}\n      - {name: tier, type: string}\n",
              nd, "CREATE TABLE identity.customers(id INTEGER PRIMARY KEY, tier TEXT);", ins);
    n = k = 0;
    for (int i = 1; i <= T_SHIPMENTS; i++) {
        n += (size_t)snprintf(nd + n, sizeof nd - n,
                              "{\"id\":%d,\"order_id\":%d,\"carrier\":\"%s\"}\n", i, i * 2,
                              i % 2 ? "dhl" : "ups");
        k += (size_t)snprintf(ins + k, sizeof ins - k,
                              "INSERT INTO logistics.shipments VALUES(%d,%d,'%s');\n", i, i * 2,
                              i % 2 ? "dhl" : "ups");
    }
    s_product(T_LOGISTICS, "shipments",
              "      - {name: id, type: int, required: true}\n"
              "      - {name: order_id, type: int, required: true}\n"
              "      - {name: carrier, type: string}\n",
              nd,
              "CREATE TABLE logistics.shipments(id INTEGER PRIMARY KEY, order_id INTEGER, carrier "
              "TEXT);",
              ins);
}

static dm_h_result_t s_meshq_at(int i, const char *sql);

static void s_fed_up(void)
{
    const char *tmp = dm_h_tmpdir();
    cr_assert_not_null(tmp);
    for (int i = 0; i < T_NODES; i++) {
        snprintf(s_dirs[i], sizeof s_dirs[i], "%s/%s", tmp, s_domains[i]);
        const char *join[] = {"--join", s_nodes[0].addr, "--query-timeout", "20", NULL};
        cr_assert(dm_h_node_start(&s_nodes[i], s_dirs[i], s_domains[i], i ? join : join + 2),
                  "node %s did not start", s_domains[i]);
    }
    s_sqlite_len = (size_t)snprintf(s_sqlite_rows, sizeof s_sqlite_rows,
                                    "ATTACH ':memory:' AS commerce;\nATTACH ':memory:' AS "
                                    "identity;\nATTACH ':memory:' AS logistics;\n");
    s_data();
    long long deadline = dm_h_now_ms() + DM_H_WAIT_MS;
    bool known = false;
    while (!known && dm_h_now_ms() < deadline) {
        known = dm_h_lists(&s_nodes[T_LOGISTICS], "commerce", "orders", NULL) &&
                dm_h_lists(&s_nodes[T_LOGISTICS], "identity", "customers", NULL);
        if (!known)
            poll(NULL, 0, T_POLL_MS);
    }
    cr_assert(known, "the relay's catalog did not learn the other domains' products");
    /* The relay's directory follows the catalog within a refresh: wait
     * until a federated query sees both products. */
    bool served = false;
    while (!served && dm_h_now_ms() < deadline) {
        dm_h_result_t r = s_meshq_at(T_LOGISTICS, "SELECT (SELECT count(*) FROM commerce.orders) "
                                                  "+ (SELECT count(*) FROM identity.customers)");
        served = r.status == 0;
        dm_h_result_free(&r);
        if (!served)
            poll(NULL, 0, T_POLL_MS);
    }
    cr_assert(served, "the relay never served commerce.orders and identity.customers");
}

static void s_fed_down(void) { dm_h_cleanup(); }

static dm_h_result_t s_meshq_at(int i, const char *sql)
{
    const char *argv[] = {"--data", s_dirs[i], "query", sql, "--format", "csv", NULL};
    return dm_h_run("meshq", argv, NULL, T_CMD_MS);
}

/* What the sqlite3 shell prints for sql over the same rows (csv, header). */
static char *s_sqlite(const char *sql)
{
    char tmpl[] = "/tmp/dmfedXXXXXX";
    int fd = mkstemp(tmpl);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "%s%s;\n", s_sqlite_rows, sql);
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "sqlite3 -csv -header :memory: < %s", tmpl);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char *out = calloc(1, 1 << 16);
    size_t n = fread(out, 1, (1 << 16) - 1, p);
    out[n] = 0;
    pclose(p);
    unlink(tmpl);
    return out;
}

static bool s_have_sqlite3(void)
{
    FILE *p = popen("command -v sqlite3", "r");
    char path[256] = "";
    bool ok = p && fgets(path, sizeof path, p);
    if (p)
        pclose(p);
    return ok;
}

TestSuite(federation, .init = s_fed_up, .fini = s_fed_down, .timeout = 240);

Test(federation, sql_at_a_third_node_equals_sqlite_then_a_dead_owner_is_named)
{
    if (!s_have_sqlite3())
        cr_skip_test("the sqlite3 shell is not installed");
    dm_h_result_t probe = s_meshq_at(T_LOGISTICS, "SELECT count(*) FROM commerce.orders");
    cr_assert_eq(probe.status, 0, "the relay does not serve commerce.orders: %s", probe.err);
    dm_h_result_free(&probe);
    static const char *const queries[] = {
        "SELECT o.id, c.tier FROM commerce.orders o JOIN identity.customers c ON o.customer = "
        "c.id WHERE o.status = 'paid' ORDER BY o.id",
        "SELECT c.tier, count(*) AS n, sum(o.amount) AS total FROM commerce.orders o LEFT JOIN "
        "identity.customers c ON o.customer = c.id GROUP BY c.tier ORDER BY c.tier",
        "SELECT id, amount FROM commerce.orders WHERE customer IN (1, 3, 5) ORDER BY amount DESC "
        "LIMIT 4",
        "SELECT id FROM commerce.orders WHERE customer IS NULL OR status IS NULL ORDER BY id",
        "SELECT count(*) FROM identity.customers WHERE tier IS NULL",
        "SELECT o.id FROM commerce.orders o WHERE o.customer IN (SELECT id FROM "
        "identity.customers WHERE tier = 'gold') ORDER BY o.id LIMIT 5 OFFSET 2",
        "SELECT s.id, s.carrier, o.status, c.tier FROM logistics.shipments s JOIN commerce.orders "
        "o ON s.order_id = o.id LEFT JOIN identity.customers c ON c.id = o.customer WHERE "
        "o.amount > 10 ORDER BY s.id",
        "SELECT status, min(amount), max(amount), avg(amount) FROM commerce.orders WHERE id "
        "BETWEEN 5 AND 50 GROUP BY status ORDER BY status",
    };
    for (size_t i = 0; i < sizeof queries / sizeof *queries; i++) {
        dm_h_result_t r = s_meshq_at(T_LOGISTICS, queries[i]);
        cr_assert_eq(r.status, 0, "%s: %s", queries[i], r.err);
        char *expect = s_sqlite(queries[i]);
        cr_assert_str_eq(r.out, expect, "%s\n--- meshq:\n%s--- sqlite3:\n%s", queries[i], r.out,
                         expect);
        free(expect);
        dm_h_result_free(&r);
    }

    uint8_t key[DM_ID_PUBLIC_BYTES];
    char endpoint[DM_ID_ENDPOINT_MAX], hex[24];
    cr_assert_eq(dm_identity_address_parse(s_nodes[T_IDENTITY].addr, key, endpoint,
                                           sizeof endpoint, NULL),
                 DM_OK);
    s_owner_hex(key, hex);

    /* The identity node is stopped (SIGSTOP: its sockets stay open, it
     * answers nothing): meshq with its default timeout gets the relay's
     * error naming product and owner, not its own anonymous timeout. */
    cr_assert_eq(kill(s_nodes[T_IDENTITY].pid, SIGSTOP), 0);
    const char *stopped[] = {"--data", s_dirs[T_LOGISTICS], "query",
                             "SELECT count(*) FROM identity.customers", NULL};
    long long t1 = dm_h_now_ms();
    dm_h_result_t rs = dm_h_run("meshq", stopped, NULL, T_CMD_MS);
    cr_assert_neq(rs.status, 0, "a stopped owner answered: %s", rs.out);
    cr_assert(strstr(rs.err, "identity.customers") && strstr(rs.err, hex), "%s", rs.err);
    cr_assert_lt(dm_h_now_ms() - t1, DM_NODE_RELAY_WAIT_MS + 2000, "%s", rs.err);
    cr_log_info("a stopped owner, as meshq reports it: %s", rs.err);
    dm_h_result_free(&rs);

    /* The identity node dies: its product is named with its state; the
     * other owner's product still answers. */
    dm_h_node_signal(&s_nodes[T_IDENTITY], SIGKILL);
    long long deadline = dm_h_now_ms() + 2 * DM_H_WAIT_MS;
    bool dead = false;
    while (!dead && dm_h_now_ms() < deadline) {
        dm_h_member_t m = dm_h_member(&s_nodes[T_LOGISTICS], "identity");
        dead = m.found && strcmp(m.state, "dead") == 0;
        if (!dead)
            poll(NULL, 0, T_POLL_MS);
    }
    cr_assert(dead, "the relay never saw the identity node dead");
    poll(NULL, 0, 2 * DM_NODE_REMOTE_REFRESH_MS); /* the directory follows within a refresh */
    long long t0 = dm_h_now_ms();
    dm_h_result_t r = s_meshq_at(T_LOGISTICS, "SELECT o.id, c.tier FROM commerce.orders o JOIN "
                                              "identity.customers c ON o.customer = c.id");
    cr_assert_neq(r.status, 0);
    cr_assert_lt(dm_h_now_ms() - t0, T_BOUND_MS);
    cr_assert(strstr(r.err, "identity.customers") && strstr(r.err, hex) &&
                  strstr(r.err, "is dead since"),
              "%s", r.err);
    dm_h_result_free(&r);
    r = s_meshq_at(T_LOGISTICS, "SELECT count(*) FROM commerce.orders");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "60"), "%s", r.out);
    dm_h_result_free(&r);
}

Test(federation, the_relay_learns_owners_row_counts_so_the_small_table_drives_the_join)
{
    /* The catalog carries no record counts: the relay asks each owner's
     * listing. With the counts (60 orders, 10 customers) the planner scans
     * the 10 customers once and probes orders by their keys (batched), or
     * reads the probed side whole; planned as 1,000,000 rows each
     * (unknown), it keeps the FROM order and probes customers instead. */
    const char *argv[] = {"--data", s_dirs[T_LOGISTICS], "query",
                          "SELECT o.id, c.tier FROM commerce.orders o JOIN identity.customers c "
                          "ON o.customer = c.id",
                          "--format", "csv", "--explain", NULL};
    dm_h_result_t r = dm_h_run("meshq", argv, NULL, T_CMD_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.err, "identity.customers: SELECT \"id\", \"tier\" FROM "
                            "\"identity\".\"customers\"; 1 scans") ||
                  strstr(r.err, "read whole once (10 rows)"),
              "the 10-row customers table did not drive the join:\n%s", r.err);
    dm_h_result_free(&r);
}

/* ---- the directory a real node builds ---- */

typedef struct {
    dm_node_t *node;
    volatile sig_atomic_t stop;
    dm_err rc;
} s_loop;

static void *s_run(void *arg)
{
    s_loop *l = arg;
    l->rc = dm_node_run(l->node, &l->stop);
    return NULL;
}

/* Copies what the node's directory says of domain.name; false if absent. */
static bool s_entry(dm_node_t *node, const char *domain, const char *name, dm_node__remote_t *out,
                    bool *has_contract)
{
    dm_node__remote_dir_t *d = dm_node__remote_get(node);
    const dm_node__remote_t *e = dm_node__remote_dir_find(d, domain, name);
    if (e) {
        *out = *e;
        out->contract = NULL;
        *has_contract = strstr(e->contract, "\"name\":\"orders\"") != NULL;
    }
    dm_node__remote_dir_unref(&d);
    return e != NULL;
}

TestSuite(relay_node, .init = s_wire_up, .fini = s_wire_down, .timeout = 120);

Test(relay_node, the_directory_follows_the_catalog_and_membership)
{
    cr_assert_geq(sodium_init(), 0);
    char dir[700];
    snprintf(dir, sizeof dir, "%s-relay", s_owner_dir);
    const char *seeds[] = {s_owner.addr};
    dm_node_opts_t opts = {.data_dir = dir, .domain = "logistics",
                           .listen = "tcp://127.0.0.1:*", .seeds = seeds, .nseeds = 1};
    s_loop loop = {NULL, 0, DM_OK};
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_node_new(&opts, &loop.node, &why), DM_OK, "%s", why.data);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, s_run, &loop), 0);

    dm_node__remote_t e;
    bool contract = false, found = false;
    long long deadline = dm_h_now_ms() + DM_H_WAIT_MS;
    while (dm_h_now_ms() < deadline &&
           !((found = s_entry(loop.node, "commerce", "orders", &e, &contract)) &&
             e.state == DM_MEMBER_ALIVE && e.address[0]))
        poll(NULL, 0, T_POLL_MS);
    cr_assert(found && e.state == DM_MEMBER_ALIVE, "the relay never listed commerce.orders alive");
    cr_assert_str_eq(e.address, s_owner.addr);
    cr_assert(contract, "the directory holds the contract's canonical JSON");
    cr_assert(e.certified, "no governance key: every owner may be trusted");
    uint8_t key[DM_ID_PUBLIC_BYTES];
    char endpoint[DM_ID_ENDPOINT_MAX];
    cr_assert_eq(dm_identity_address_parse(s_owner.addr, key, endpoint, sizeof endpoint, NULL),
                 DM_OK);
    cr_assert_eq(memcmp(e.owner, key, DM_ID_PUBLIC_BYTES), 0);

    /* The node's own products are not remote. */
    char path[800];
    snprintf(path, sizeof path, "%s.yaml", dir);
    dm_h_write(path, dm_h_contract_text("logistics", "shipments", "1.0.0"));
    const char *reg[] = {"--data", dir, "register", path, NULL};
    dm_h_result_t r = dm_h_run("dmctl", reg, NULL, T_CMD_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    poll(NULL, 0, 3 * DM_NODE_REMOTE_REFRESH_MS);
    cr_assert_not(s_entry(loop.node, "logistics", "shipments", &e, &contract));

    /* The owner dies: the directory says so, and since when. */
    int64_t killed = dm_clock_wall_ms();
    dm_h_node_signal(&s_owner, SIGKILL);
    deadline = dm_h_now_ms() + 3 * DM_H_WAIT_MS;
    while (dm_h_now_ms() < deadline &&
           !(s_entry(loop.node, "commerce", "orders", &e, &contract) &&
             e.state == DM_MEMBER_DEAD))
        poll(NULL, 0, T_POLL_MS);
    cr_assert_eq(e.state, DM_MEMBER_DEAD, "the relay never saw the owner dead");
    cr_assert_geq(e.since_ms, killed, "dead since %lld, killed at %lld", (long long)e.since_ms,
                  (long long)killed);
    cr_assert_leq(e.since_ms, dm_clock_wall_ms());

    loop.stop = 1;
    pthread_join(th, NULL);
    cr_assert_eq(loop.rc, DM_OK);
    dm_node_destroy(&loop.node);
    dm_buf_free(&why);
}
