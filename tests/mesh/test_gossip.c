/* test_gossip.c: several real meshd processes on loopback forming one mesh
 * through a seed: membership, failure detection, restart and refutation,
 * leaving. Every wait is on a condition with a deadline. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>
#include <zmq.h>

#include "catalog.h"
#include "catalog.pb-c.h"
#include "contract.h"
#include "harness.h"
#include "identity.h"
#include "rpc.h"

#define T_NODES 5
#define T_DEADLINE_MS 30000
#define T_POLL_MS 50

static dm_h_node_t s_nodes[T_NODES];
static char s_dirs[T_NODES][600];
static const char *const s_domains[T_NODES] = {"commerce", "logistics", "identity", "billing",
                                               "support"};

typedef struct {
    char state[16];
    unsigned long long incarnation;
    bool found;
} t_member;

/* Asks node n for its view of the member with the given domain. */
static t_member s_view(const dm_h_node_t *n, const char *domain)
{
    t_member out = {"", 0, false};
    dm_client_t *c = NULL;
    char err[256];
    if (dm_client_new(n->addr, 2000, &c, err, sizeof err) != DM_OK)
        return out;
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__MembersReq body = DM__MEMBERS_REQ__INIT;
    req.body_case = DM__ENVELOPE__BODY_MEMBERS_REQ;
    req.members_req = &body;
    Dm__Envelope *rep = NULL;
    if (dm_client_call(c, &req, &rep) == DM_OK && rep->body_case == DM__ENVELOPE__BODY_MEMBERS_REP) {
        for (size_t i = 0; i < rep->members_rep->n_members; i++) {
            const Dm__MemberInfo *m = rep->members_rep->members[i];
            if (strcmp(m->domain, domain) == 0) {
                snprintf(out.state, sizeof out.state, "%s", m->state);
                out.incarnation = m->incarnation;
                out.found = true;
            }
        }
    }
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    dm_client_destroy(&c);
    return out;
}

/* Waits until every running node other than `about` sees `about` in state
 * (and, if min_inc > 0, with at least that incarnation). */
static bool s_wait_all(int about, const char *state, unsigned long long min_inc)
{
    long long deadline = dm_h_now_ms() + T_DEADLINE_MS;
    while (dm_h_now_ms() < deadline) {
        bool all = true;
        for (int i = 0; i < T_NODES && all; i++) {
            if (i == about || s_nodes[i].pid <= 0)
                continue;
            t_member m = s_view(&s_nodes[i], s_domains[about]);
            all = m.found && strcmp(m.state, state) == 0 && m.incarnation >= min_inc;
        }
        if (all)
            return true;
        poll(NULL, 0, T_POLL_MS);
    }
    return false;
}

static void s_up(void)
{
    const char *tmp = dm_h_tmpdir();
    cr_assert_not_null(tmp);
    for (int i = 0; i < T_NODES; i++) {
        snprintf(s_dirs[i], sizeof s_dirs[i], "%s/%s", tmp, s_domains[i]);
        const char *join[] = {"--join", s_nodes[0].addr, NULL};
        cr_assert(dm_h_node_start(&s_nodes[i], s_dirs[i], s_domains[i], i ? join : NULL),
                  "node %d did not start", i);
    }
    for (int i = 0; i < T_NODES; i++)
        cr_assert(s_wait_all(i, "alive", 0), "not every node sees %s alive", s_domains[i]);
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(gossip, .init = s_up, .fini = s_down, .timeout = 180);

Test(gossip, five_nodes_joined_through_one_seed_see_each_other)
{
    for (int i = 0; i < T_NODES; i++)
        for (int j = 0; j < T_NODES; j++) {
            if (i == j)
                continue;
            t_member m = s_view(&s_nodes[i], s_domains[j]);
            cr_assert(m.found, "%s does not know %s", s_domains[i], s_domains[j]);
            cr_assert_str_eq(m.state, "alive");
        }
}

Test(gossip, sigkill_is_marked_dead_everywhere_and_a_restart_refutes)
{
    const int victim = 2;
    unsigned long long before = s_view(&s_nodes[0], s_domains[victim]).incarnation;
    dm_h_node_signal(&s_nodes[victim], SIGKILL);
    cr_assert(s_wait_all(victim, "dead", 0), "the killed node was not marked dead everywhere");
    /* No --join: the restarted node finds the mesh through its saved list. */
    cr_assert(dm_h_node_start(&s_nodes[victim], s_dirs[victim], s_domains[victim], NULL));
    cr_assert(s_wait_all(victim, "alive", before + 1),
              "the restarted node did not rejoin with a higher incarnation");
}

Test(gossip, sigterm_announces_leaving)
{
    const int leaver = 4;
    dm_h_node_signal(&s_nodes[leaver], SIGTERM);
    cr_assert(s_wait_all(leaver, "left", 0), "the leave was not seen everywhere");
}

/* ---- the catalog ---- */

/* Does node n list DOMAIN/NAME (at version, if not NULL) among the mesh's
 * products? */
static bool s_lists(const dm_h_node_t *n, const char *domain, const char *name, const char *version)
{
    dm_client_t *c = NULL;
    char err[256];
    bool found = false;
    if (dm_client_new(n->addr, 2000, &c, err, sizeof err) != DM_OK)
        return false;
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__ProductsReq body = DM__PRODUCTS_REQ__INIT;
    body.mesh = 1;
    req.body_case = DM__ENVELOPE__BODY_PRODUCTS_REQ;
    req.products_req = &body;
    Dm__Envelope *rep = NULL;
    if (dm_client_call(c, &req, &rep) == DM_OK && rep->body_case == DM__ENVELOPE__BODY_PRODUCTS_REP)
        for (size_t i = 0; i < rep->products_rep->n_products; i++) {
            const Dm__ProductInfo *p = rep->products_rep->products[i];
            if (strcmp(p->domain, domain) == 0 && strcmp(p->name, name) == 0 &&
                (!version || strcmp(p->version, version) == 0))
                found = true;
        }
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    dm_client_destroy(&c);
    return found;
}

/* Number of refused claims for domain that node n lists. */
static size_t s_conflicts(const dm_h_node_t *n, const char *domain)
{
    dm_client_t *c = NULL;
    char err[256];
    size_t k = 0;
    if (dm_client_new(n->addr, 2000, &c, err, sizeof err) != DM_OK)
        return 0;
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__MembersReq body = DM__MEMBERS_REQ__INIT;
    req.body_case = DM__ENVELOPE__BODY_MEMBERS_REQ;
    req.members_req = &body;
    Dm__Envelope *rep = NULL;
    if (dm_client_call(c, &req, &rep) == DM_OK && rep->body_case == DM__ENVELOPE__BODY_MEMBERS_REP)
        for (size_t i = 0; i < rep->members_rep->n_conflicts; i++)
            k += strcmp(rep->members_rep->conflicts[i]->domain, domain) == 0;
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    dm_client_destroy(&c);
    return k;
}

static const char *s_contract_text(const char *domain, const char *name, const char *version)
{
    static char text[1024];
    snprintf(text, sizeof text,
             "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: %s\n"
             "  domain: %s\n  version: %s\n  owner:\n    team: t\n    contact: t@example.com\n"
             "spec:\n  schema:\n    fields:\n      - {name: id, type: int, required: true}\n",
             name, domain, version);
    return text;
}

Test(gossip, a_contract_registered_on_node_3_reaches_all_five)
{
    char path[700];
    snprintf(path, sizeof path, "%s.yaml", s_dirs[2]);
    dm_h_write(path, s_contract_text(s_domains[2], "customers", "1.0.0"));
    const char *reg[] = {"--data", s_dirs[2], "register", path, NULL};
    dm_h_result_t r = dm_h_run("dmctl", reg, NULL, T_DEADLINE_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    long long deadline = dm_h_now_ms() + T_DEADLINE_MS;
    bool all = false;
    while (!all && dm_h_now_ms() < deadline) {
        all = true;
        for (int i = 0; i < T_NODES && all; i++)
            all = s_lists(&s_nodes[i], s_domains[2], "customers", "1.0.0");
        if (!all)
            poll(NULL, 0, T_POLL_MS);
    }
    cr_assert(all, "the contract did not reach every node");
}

Test(gossip, an_empty_directory_claiming_a_taken_domain_is_refused_everywhere)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s-impostor", s_dirs[0]);
    static dm_h_node_t impostor;
    const char *join[] = {"--join", s_nodes[1].addr, NULL};
    cr_assert(dm_h_node_start(&impostor, dir, s_domains[0], join));
    long long deadline = dm_h_now_ms() + T_DEADLINE_MS;
    bool all = false;
    while (!all && dm_h_now_ms() < deadline) {
        all = true;
        for (int i = 0; i < T_NODES && all; i++)
            all = s_conflicts(&s_nodes[i], s_domains[0]) > 0;
        if (!all)
            poll(NULL, 0, T_POLL_MS);
    }
    cr_assert(all, "not every node lists the refused claim of '%s'", s_domains[0]);
    dm_h_node_signal(&impostor, SIGTERM);
}

/* An entry of origin `origin` signed by `signer` (a forgery when they
 * differ), packed as a dm.CatalogEntry into pe (pointing into bufs). */
typedef struct {
    dm_catalog_entry_t e;
    dm_buf_t payload;
    Dm__CatalogEntry pe;
} t_entry;

static void s_entry(t_entry *t, const dm_identity_t *signer, const uint8_t *origin,
                    const char *key, uint64_t version)
{
    memcpy(t->e.origin, origin, DM_ID_PUBLIC_BYTES);
    t->e.key = (char *)key;
    t->e.version = version;
    t->e.issued_at_ms = (int64_t)time(NULL) * 1000;
    t->e.payload = (uint8_t *)t->payload.data;
    t->e.payload_len = t->payload.len;
    dm_buf_t signed_bytes = DM_BUF_INIT;
    dm_catalog_entry_signed_bytes(&t->e, &signed_bytes);
    cr_assert_eq(dm_identity_sign(signer, signed_bytes.data, signed_bytes.len, t->e.signature), DM_OK);
    dm_buf_free(&signed_bytes);
    dm__catalog_entry__init(&t->pe);
    t->pe.origin.data = t->e.origin;
    t->pe.origin.len = DM_ID_PUBLIC_BYTES;
    t->pe.key = t->e.key;
    t->pe.version = version;
    t->pe.issued_at_ms = t->e.issued_at_ms;
    t->pe.payload.data = t->e.payload;
    t->pe.payload.len = t->e.payload_len;
    t->pe.signature.data = t->e.signature;
    t->pe.signature.len = DM_ID_SIGNATURE_BYTES;
}

static void s_contract_payload(dm_buf_t *out, const char *domain, const char *name, const char *version)
{
    const char *text = s_contract_text(domain, name, version);
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    cr_assert_eq(dm_contract_parse("t", text, strlen(text), NULL, &list, &n, &diags), DM_OK);
    dm_contract_canonical(list[0], out);
    dm_contract_destroy(&list[0]);
    free(list);
    dm_diags_clear(&diags);
}

/* Sends one CatalogSync carrying the entries to node n, from a socket
 * authenticated with the test identity's own key. */
static void s_inject(const dm_h_node_t *n, const dm_identity_t *me, const char *my_addr,
                     t_entry *const *entries, size_t count)
{
    Dm__CatalogEntry **pes = calloc(count, sizeof *pes);
    for (size_t i = 0; i < count; i++)
        pes[i] = &entries[i]->pe;
    Dm__CatalogDelta d = DM__CATALOG_DELTA__INIT;
    d.n_entries = count;
    d.entries = pes;
    size_t dlen = dm__catalog_delta__get_packed_size(&d);
    uint8_t *dbytes = malloc(dlen);
    dm__catalog_delta__pack(&d, dbytes);
    Dm__CatalogSync sync = DM__CATALOG_SYNC__INIT;
    sync.reply_to = (char *)my_addr;
    sync.delta.data = dbytes;
    sync.delta.len = dlen;
    Dm__Envelope env = DM__ENVELOPE__INIT;
    env.body_case = DM__ENVELOPE__BODY_CATALOG_SYNC;
    env.catalog_sync = &sync;
    dm_h_raw_t *raw = dm_h_raw_new(n->addr, me);
    cr_assert(raw);
    cr_assert(dm_h_raw_send_env(raw, &env));
    dm_h_raw_destroy(&raw); /* linger delivers it */
    free(dbytes);
    free(pes);
}

Test(gossip, forged_foreign_and_replayed_entries_are_rejected_by_every_node)
{
    dm_identity_t *me = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&me), DM_OK);
    const uint8_t *my_id = dm_identity_public(me);
    char my_addr[DM_ADDRESS_MAX];
    cr_assert_eq(dm_address_format(my_id, "tcp://127.0.0.1:9", my_addr, sizeof my_addr), DM_OK);
    uint8_t victim_id[32];
    char ep[256], why[256];
    cr_assert_eq(dm_address_parse(s_nodes[0].addr, victim_id, ep, sizeof ep, why, sizeof why), DM_OK);

    static t_entry claim, good, replay, forged, foreign;
    /* A valid claim of a fresh domain and a valid product of it. */
    Dm__NodeRecord nr = DM__NODE_RECORD__INIT;
    nr.domain = "tdomain";
    nr.address = my_addr;
    dm_buf_reserve(&claim.payload, dm__node_record__get_packed_size(&nr));
    claim.payload.len = dm__node_record__pack(&nr, (uint8_t *)claim.payload.data);
    s_entry(&claim, me, my_id, "node", 1);
    s_contract_payload(&good.payload, "tdomain", "p", "2.0.0");
    s_entry(&good, me, my_id, "product/tdomain/p", 3);
    /* A replay of an older version of the same key. */
    s_contract_payload(&replay.payload, "tdomain", "p", "1.0.0");
    s_entry(&replay, me, my_id, "product/tdomain/p", 2);
    /* A forgery: claims to come from node 0, signed with our key. */
    s_contract_payload(&forged.payload, s_domains[0], "forged", "1.0.0");
    s_entry(&forged, me, victim_id, "product/commerce/forged", 99);
    /* A product for a domain pinned to another node, validly signed. */
    s_contract_payload(&foreign.payload, s_domains[0], "evil", "1.0.0");
    s_entry(&foreign, me, my_id, "product/commerce/evil", 4);

    t_entry *first[] = {&claim, &good};
    t_entry *second[] = {&replay, &forged, &foreign};
    for (int i = 0; i < T_NODES; i++) {
        s_inject(&s_nodes[i], me, my_addr, first, 2);
        s_inject(&s_nodes[i], me, my_addr, second, 3);
    }
    /* The valid entries arrive (the path works) ... */
    long long deadline = dm_h_now_ms() + T_DEADLINE_MS;
    bool all = false;
    while (!all && dm_h_now_ms() < deadline) {
        all = true;
        for (int i = 0; i < T_NODES && all; i++)
            all = s_lists(&s_nodes[i], "tdomain", "p", "2.0.0");
        if (!all)
            poll(NULL, 0, T_POLL_MS);
    }
    cr_assert(all, "the valid entries did not arrive everywhere");
    /* ... and every node refused the others. */
    for (int i = 0; i < T_NODES; i++) {
        cr_assert(!s_lists(&s_nodes[i], "tdomain", "p", "1.0.0"), "node %d took the replay", i);
        cr_assert(!s_lists(&s_nodes[i], s_domains[0], "forged", NULL), "node %d took the forgery", i);
        cr_assert(!s_lists(&s_nodes[i], s_domains[0], "evil", NULL),
                  "node %d took a product of another node's domain", i);
    }
    for (int i = 0; i < 5; i++)
        dm_buf_free(&((t_entry *[]){&claim, &good, &replay, &forged, &foreign})[i]->payload);
    dm_identity_destroy(&me);
}

Test(gossip, a_tombstone_propagates_and_survives_restarts)
{
    char path[700];
    snprintf(path, sizeof path, "%s.yaml", s_dirs[1]);
    dm_h_write(path, s_contract_text(s_domains[1], "shipments", "1.0.0"));
    const char *reg[] = {"--data", s_dirs[1], "register", path, NULL};
    dm_h_result_t r = dm_h_run("dmctl", reg, NULL, T_DEADLINE_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    long long deadline = dm_h_now_ms() + T_DEADLINE_MS;
    bool all = false;
    while (!all && dm_h_now_ms() < deadline) {
        all = true;
        for (int i = 0; i < T_NODES && all; i++)
            all = s_lists(&s_nodes[i], s_domains[1], "shipments", NULL);
        if (!all)
            poll(NULL, 0, T_POLL_MS);
    }
    cr_assert(all, "the product did not reach every node");

    char qualified[128];
    snprintf(qualified, sizeof qualified, "%s/shipments", s_domains[1]);
    const char *dereg[] = {"--data", s_dirs[1], "deregister", qualified, NULL};
    r = dm_h_run("dmctl", dereg, NULL, T_DEADLINE_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    bool gone = false;
    deadline = dm_h_now_ms() + T_DEADLINE_MS;
    while (!gone && dm_h_now_ms() < deadline) {
        gone = true;
        for (int i = 0; i < T_NODES && gone; i++)
            gone = !s_lists(&s_nodes[i], s_domains[1], "shipments", NULL);
        if (!gone)
            poll(NULL, 0, T_POLL_MS);
    }
    cr_assert(gone, "the tombstone did not reach every node");
    /* The owner and another node restart: neither brings the product back. */
    for (int k = 0; k < 2; k++) {
        int i = k == 0 ? 1 : 3;
        dm_h_node_signal(&s_nodes[i], SIGTERM);
        cr_assert(dm_h_node_start(&s_nodes[i], s_dirs[i], s_domains[i], NULL));
    }
    cr_assert(s_wait_all(1, "alive", 0) && s_wait_all(3, "alive", 0));
    for (int i = 0; i < T_NODES; i++)
        cr_assert(!s_lists(&s_nodes[i], s_domains[1], "shipments", NULL),
                  "node %d lists the deregistered product after the restarts", i);
}
