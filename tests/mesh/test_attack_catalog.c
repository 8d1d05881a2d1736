/* test_attack_catalog.c: an outsider floods three real meshd processes
 * with thousands of validly self-signed node records (and products) from
 * fresh keys, in bulk and each from its own key over its own connection.
 * The nodes keep answering within a second, store none of it, and keep
 * spreading what members publish, also after a restart (issue 7 item 4).
 * Every wait is on a condition with a deadline. */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "contract/contract.h"
#include "harness.h"
#include "harness_catalog.h"
#include "identity/identity.h"
#include "server/node.h"
#include "transport/rpc.h"
#include "storage/store.h"

#define T_NODES 3
#define T_DEADLINE_MS 30000
#define T_POLL_MS 50
#define T_RESEND_MS 500       /* a relay's next round, in the wide-delta test */
#define T_PING_MS 1000         /* "status answers within a second" */
#define T_FLOOD_MESSAGES 30    /* bulk messages per node */
#define T_FLOOD_PER_MESSAGE 100 /* node records per bulk message: 3,000 keys per node */
#define T_OWN_KEYS 40          /* records each sent by its own key on its own connection */
#define T_FLOOD_PREFIX "flood"

static dm_h_node_t s_nodes[T_NODES];
static char s_dirs[T_NODES][600];
static const char *const s_domains[T_NODES] = {"alpha", "beta", "gamma"};

static bool s_sees_alive(const dm_h_node_t *n, const char *domain)
{
    dm_h_member_t m = dm_h_member(n, domain);
    return m.found && strcmp(m.state, "alive") == 0;
}

/* Waits until every node sees every other alive. */
static bool s_all_alive(void)
{
    long long deadline = dm_h_now_ms() + T_DEADLINE_MS;
    while (dm_h_now_ms() < deadline) {
        bool all = true;
        for (int i = 0; i < T_NODES && all; i++)
            for (int j = 0; j < T_NODES && all; j++)
                all = i == j || s_sees_alive(&s_nodes[i], s_domains[j]);
        if (all)
            return true;
        poll(NULL, 0, T_POLL_MS);
    }
    return false;
}

static void s_up(void)
{
    cr_assert_not_null(dm_h_tmpdir());
    int bad = dm_h_star_start(s_nodes, T_NODES, s_domains, s_dirs[0], sizeof s_dirs[0]);
    cr_assert(bad < 0, "node %d did not start", bad);
    cr_assert(s_all_alive(), "the three nodes did not form a mesh");
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(attack_catalog, .init = s_up, .fini = s_down, .timeout = 240);

/* Registers DOMAIN/name on node i with dmctl and waits until every
 * running node lists it. */
static void s_register_spreads(int i, const char *name)
{
    char path[700];
    snprintf(path, sizeof path, "%s-%s.yaml", s_dirs[i], name);
    dm_h_write(path, dm_h_contract_text(s_domains[i], name, "1.0.0"));
    const char *reg[] = {"--data", s_dirs[i], "register", path, NULL};
    dm_h_result_t r = dm_h_run("dmctl", reg, NULL, T_DEADLINE_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    long long deadline = dm_h_now_ms() + T_DEADLINE_MS;
    bool all = false;
    while (!all && dm_h_now_ms() < deadline) {
        all = true;
        for (int k = 0; k < T_NODES && all; k++)
            all = dm_h_lists(&s_nodes[k], s_domains[i], name, "1.0.0");
        if (!all)
            poll(NULL, 0, T_POLL_MS);
    }
    cr_assert(all, "%s/%s registered on node %d did not reach every node", s_domains[i], name,
              i);
}

/* A fresh key's node record claiming "floodN" (and, when product, a
 * product of that domain) into t[0..1]; returns how many entries. */
static size_t s_flood_entries(dm_h_entry_t t[2], dm_identity_t *key, unsigned n, bool product,
                              char *addr, size_t cap)
{
    static char domain[2][32], pkey[2][DM_CATALOG_KEY_MAX];
    int slot = product ? 1 : 0;
    snprintf(domain[slot], sizeof domain[slot], T_FLOOD_PREFIX "%u", n);
    cr_assert_eq(dm_identity_address_format(dm_identity_public(key), "tcp://127.0.0.1:9", addr, cap, NULL), DM_OK);
    dm_h_entry_node_record(&t[0], domain[slot], addr);
    cr_assert(dm_h_entry_sign(&t[0], key, dm_identity_public(key), DM_CATALOG_NODE_KEY, 1));
    if (!product)
        return 1;
    snprintf(pkey[slot], sizeof pkey[slot], "product/%s/p", domain[slot]);
    dm_buf_reset(&t[1].payload);
    cr_assert(dm_h_contract_payload(&t[1].payload, domain[slot], "p", "1.0.0"));
    cr_assert(dm_h_entry_sign(&t[1], key, dm_identity_public(key), pkey[slot], 2));
    return 2;
}

/* Bulk: T_FLOOD_MESSAGES deltas of T_FLOOD_PER_MESSAGE fresh node records
 * (the first of each with a product), sent by one outsider key; a ping
 * after each message must answer within T_PING_MS. Returns the slowest. */
static long long s_flood_bulk(const dm_h_node_t *n, unsigned *counter)
{
    dm_identity_t *outsider = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&outsider), DM_OK);
    char out_addr[DM_ADDRESS_MAX], addr[DM_ADDRESS_MAX];
    cr_assert_eq(dm_identity_address_format(dm_identity_public(outsider), "tcp://127.0.0.1:9", out_addr,
                                   sizeof out_addr, NULL),
                 DM_OK);
    dm_h_raw_t *raw = dm_h_raw_new(n->addr, outsider);
    cr_assert_not_null(raw);
    static dm_h_entry_t ents[T_FLOOD_PER_MESSAGE + 1];
    dm_h_entry_t *ptrs[T_FLOOD_PER_MESSAGE + 1];
    long long worst = 0;
    for (int m = 0; m < T_FLOOD_MESSAGES; m++) {
        size_t k = 0;
        for (int r = 0; r < T_FLOOD_PER_MESSAGE; r++) {
            dm_identity_t *key = NULL;
            cr_assert_eq(dm_identity_new_ephemeral(&key), DM_OK);
            k += s_flood_entries(&ents[k], key, (*counter)++, r == 0, addr, sizeof addr);
            dm_identity_destroy(&key);
        }
        for (size_t i = 0; i < k; i++)
            ptrs[i] = &ents[i];
        cr_assert(dm_h_catalog_send(raw, out_addr, ptrs, k));
        long long ms = dm_h_ping_ms(n, T_PING_MS);
        cr_assert(ms >= 0, "no pong within %d ms during the flood (message %d)", T_PING_MS, m);
        if (ms > worst)
            worst = ms;
    }
    dm_h_raw_destroy(&raw);
    for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++)
        dm_h_entry_free(&ents[i]);
    dm_identity_destroy(&outsider);
    return worst;
}

/* Each record sent by its own fresh key (reply_to its own address, so the
 * address check passes): the sender is not a member either. */
static void s_flood_own_keys(const dm_h_node_t *n, unsigned *counter)
{
    static dm_h_entry_t ents[2];
    for (int i = 0; i < T_OWN_KEYS; i++) {
        dm_identity_t *key = NULL;
        char addr[DM_ADDRESS_MAX];
        cr_assert_eq(dm_identity_new_ephemeral(&key), DM_OK);
        size_t k = s_flood_entries(ents, key, (*counter)++, true, addr, sizeof addr);
        dm_h_entry_t *ptrs[2] = {&ents[0], &ents[1]};
        cr_assert(dm_h_catalog_inject(n, key, addr, ptrs, k));
        dm_identity_destroy(&key);
    }
    cr_assert(dm_h_ping_ms(n, T_PING_MS) >= 0, "no pong within %d ms after the flood", T_PING_MS);
    dm_h_entry_free(&ents[0]);
    dm_h_entry_free(&ents[1]);
}

typedef struct {
    size_t nodes, flood;
} t_census;

static int s_count_node(void *ctx, const dm_catalog_node_t *nd)
{
    t_census *c = ctx;
    c->nodes++;
    c->flood += strncmp(nd->domain, T_FLOOD_PREFIX, strlen(T_FLOOD_PREFIX)) == 0;
    return 0;
}

/* Stops node i, reads its catalog from its store, restarts it. */
static t_census s_census_across_restart(int i)
{
    dm_h_node_signal(&s_nodes[i], SIGTERM);
    char path[700];
    snprintf(path, sizeof path, "%s/%s", s_dirs[i], DM_NODE_STORE_DIR);
    dm_store_t *store = NULL;
    dm_identity_t *id = NULL;
    dm_catalog_t *cat = NULL;
    cr_assert_eq(dm_store_open(path, NULL, &store, NULL), DM_OK);
    cr_assert_eq(dm_identity_new_ephemeral(&id), DM_OK);
    cr_assert_eq(dm_catalog_open(store, id, &cat, NULL), DM_OK);
    t_census c = {0, 0};
    dm_catalog_nodes(cat, s_count_node, &c);
    dm_catalog_destroy(&cat);
    dm_identity_destroy(&id);
    dm_store_destroy(&store);
    cr_assert(dm_h_node_start(&s_nodes[i], s_dirs[i], s_domains[i], NULL), "node %d did not "
              "restart", i);
    return c;
}

Test(attack_catalog, an_outsiders_flood_of_node_records_is_not_stored_and_sync_goes_on)
{
    s_register_spreads(1, "before");
    unsigned counter = 0;
    long long worst = 0;
    for (int i = 0; i < T_NODES; i++) {
        long long ms = s_flood_bulk(&s_nodes[i], &counter);
        if (ms > worst)
            worst = ms;
        s_flood_own_keys(&s_nodes[i], &counter);
    }
    cr_log_info("%u flood keys sent; slowest ping during the flood %lld ms", counter, worst);
    for (int i = 0; i < T_NODES; i++) {
        cr_assert(dm_h_ping_ms(&s_nodes[i], T_PING_MS) >= 0, "node %d: no pong after the flood",
                  i);
        for (unsigned k = 0; k < counter; k += T_FLOOD_PER_MESSAGE) {
            char domain[32];
            snprintf(domain, sizeof domain, T_FLOOD_PREFIX "%u", k);
            cr_assert_not(dm_h_lists(&s_nodes[i], domain, "p", NULL),
                          "node %d lists the outsider's product %s/p", i, domain);
        }
    }
    /* Products registered after the flood still spread everywhere. */
    s_register_spreads(2, "after");
    /* The flood is not in the store, and a restart keeps sync working. */
    t_census c = s_census_across_restart(0);
    cr_assert_eq(c.flood, 0, "node 0 stored %zu of the outsider's node records", c.flood);
    cr_assert_leq(c.nodes, T_NODES, "node 0 stored %zu node records for %d nodes", c.nodes,
                  T_NODES);
    cr_assert(s_all_alive(), "the mesh did not re-form after node 0 restarted");
    s_register_spreads(1, "restarted");
    s_register_spreads(0, "fromrestarted");
}

#define T_WIDE_FIELDS 3000 /* fields of each large contract: about 300 KB of canonical JSON */
#define T_WIDE_PRODUCTS 6

/* The canonical JSON of a valid contract of domain/name with nfields. */
static void s_wide_contract(dm_buf_t *out, const char *domain, const char *name, unsigned nfields)
{
    dm_buf_t yaml = DM_BUF_INIT;
    dm_buf_printf(&yaml,
                  "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: %s\n"
                  "  domain: %s\n  version: 1.0.0\n  owner:\n    team: t\n    contact: t@c.com\n"
                  "spec:\n  schema:\n    fields:\n      - {name: id, type: int, required: true}\n",
                  name, domain);
    for (unsigned i = 0; i < nfields; i++)
        dm_buf_printf(&yaml, "      - {name: field_%u, type: string, description: \"a field of a "
                             "wide product, described at some length\"}\n", i);
    dm_contract_t **cs = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    cr_assert_eq(dm_contract_parse("t", yaml.data, yaml.len, NULL, &cs, &n, &diags), DM_OK);
    dm_contract_canonical(cs[0], out);
    dm_contract_destroy(&cs[0]);
    free(cs);
    dm_diags_clear(&diags);
    dm_buf_free(&yaml);
}

/* Sends deltas from..to-1 of the wide products: the claim with the first
 * pair, then a pair each. */
static void s_send_wide(dm_h_raw_t *raw, dm_h_entry_t *ents, int from, int to)
{
    for (int m = from; m < to; m++) {
        dm_h_entry_t *batch[3];
        size_t k = 0;
        if (m == 0)
            batch[k++] = &ents[0];
        batch[k++] = &ents[1 + 2 * m];
        batch[k++] = &ents[2 + 2 * m];
        cr_assert(dm_h_catalog_send(raw, s_nodes[2].addr, batch, k));
    }
}

/* A member (node 2's key) relays large but valid deltas to node 0: every
 * product a wide contract parsed on node 0's loop. Pings sent right
 * behind them answer within a second, and the products are taken as far
 * as the per-delta judging budget goes. */
Test(attack_catalog, a_members_large_valid_deltas_leave_pings_answered)
{
    dm_identity_t *origin = NULL, *relay = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&origin), DM_OK);
    cr_assert_eq(dm_identity_load(s_dirs[2], &relay, NULL), DM_OK);
    char origin_addr[DM_ADDRESS_MAX];
    cr_assert_eq(dm_identity_address_format(dm_identity_public(origin), "tcp://127.0.0.1:9", origin_addr,
                                   sizeof origin_addr, NULL),
                 DM_OK);
    static dm_h_entry_t ents[1 + T_WIDE_PRODUCTS];
    static char keys[T_WIDE_PRODUCTS][DM_CATALOG_KEY_MAX];
    dm_h_entry_node_record(&ents[0], "wide", origin_addr);
    cr_assert(dm_h_entry_sign(&ents[0], origin, dm_identity_public(origin), DM_CATALOG_NODE_KEY, 1));
    for (int i = 0; i < T_WIDE_PRODUCTS; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        snprintf(keys[i], sizeof keys[i], "product/wide/%s", name);
        s_wide_contract(&ents[1 + i].payload, "wide", name, T_WIDE_FIELDS);
        cr_assert(dm_h_entry_sign(&ents[1 + i], origin, dm_identity_public(origin), keys[i],
                                  (uint64_t)(2 + i)));
    }
    dm_h_raw_t *raw = dm_h_raw_new(s_nodes[0].addr, relay);
    cr_assert_not_null(raw);
    /* Three deltas of about 600 KB (claim + two products, then pairs). */
    s_send_wide(raw, ents, 0, T_WIDE_PRODUCTS / 2);
    long long worst = 0;
    for (int i = 0; i < 3; i++) {
        long long ms = dm_h_ping_ms(&s_nodes[0], T_PING_MS);
        cr_assert(ms >= 0, "no pong within %d ms behind the large deltas", T_PING_MS);
        worst = ms > worst ? ms : worst;
    }
    cr_log_info("slowest ping behind the large deltas: %lld ms", worst);
    /* The relay's share of the judging window (DM_CATALOG_JUDGE_SENDER_BYTES
     * a second) takes the claim (not a contract) and the first product at
     * once; the rest waits for a later exchange. The relay never had them,
     * so it sends the later pairs again, as a peer's next round would,
     * until they are taken in later windows. */
    long long deadline = dm_h_now_ms() + T_DEADLINE_MS;
    bool taken = false;
    while (!(taken = dm_h_lists(&s_nodes[0], "wide", "p0", "1.0.0") &&
                     dm_h_lists(&s_nodes[0], "wide", "p2", "1.0.0") &&
                     dm_h_lists(&s_nodes[0], "wide", "p4", "1.0.0")) &&
           dm_h_now_ms() < deadline) {
        s_send_wide(raw, ents, 1, T_WIDE_PRODUCTS / 2);
        cr_assert(dm_h_ping_ms(&s_nodes[0], T_PING_MS) >= 0);
        poll(NULL, 0, T_RESEND_MS);
    }
    cr_assert(taken, "the large products were not taken");
    cr_assert(dm_h_ping_ms(&s_nodes[0], T_PING_MS) >= 0);
    dm_h_raw_destroy(&raw);
    for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++)
        dm_h_entry_free(&ents[i]);
    dm_identity_destroy(&origin);
    dm_identity_destroy(&relay);
}

