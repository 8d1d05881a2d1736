/* test_gossip.c: several real meshd processes on loopback forming one mesh
 * through a seed: membership, failure detection, restart and refutation,
 * leaving; and the catalog across it: a contract reaching every node, a
 * taken domain refused, forged and replayed entries rejected, tombstones
 * spreading and surviving restarts. Every wait is on a condition with a
 * deadline. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>
#include <zmq.h>

#include "catalog/catalog.h"
#include "proto/catalog.pb-c.h"
#include "contract/contract.h"
#include "harness.h"
#include "harness_catalog.h"
#include "identity/identity.h"
#include "transport/envelope.h"
#include "transport/rpc.h"

#define T_NODES 5
#define T_DEADLINE_MS 30000
#define T_POLL_MS 50

static dm_h_node_t s_nodes[T_NODES];
static char s_dirs[T_NODES][600];
static const char *const s_domains[T_NODES] = {"commerce", "logistics", "identity", "billing",
                                               "support"};

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
            dm_h_member_t m = dm_h_member(&s_nodes[i], s_domains[about]);
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
    cr_assert_not_null(dm_h_tmpdir());
    int bad = dm_h_star_start(s_nodes, T_NODES, s_domains, s_dirs[0], sizeof s_dirs[0]);
    cr_assert(bad < 0, "node %d did not start", bad);
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
            dm_h_member_t m = dm_h_member(&s_nodes[i], s_domains[j]);
            cr_assert(m.found, "%s does not know %s", s_domains[i], s_domains[j]);
            cr_assert_str_eq(m.state, "alive");
        }
}

Test(gossip, sigkill_is_marked_dead_everywhere_and_a_restart_refutes)
{
    const int victim = 2;
    unsigned long long before = dm_h_member(&s_nodes[0], s_domains[victim]).incarnation;
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

/* Number of refused claims for domain that node n lists. */
static size_t s_conflicts(const dm_h_node_t *n, const char *domain)
{
    dm_rpc_client_t *c = NULL;
    size_t k = 0;
    if (dm_rpc_client_new(n->addr, 2000, &c, NULL) != DM_OK)
        return 0;
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__MembersReq body = DM__MEMBERS_REQ__INIT;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_MEMBERS_REQ, &body);
    Dm__Envelope *rep = NULL;
    if (dm_rpc_client_call(c, &req, &rep, NULL) == DM_OK && rep->body_case == DM__ENVELOPE__BODY_MEMBERS_REP)
        for (size_t i = 0; i < rep->members_rep->n_conflicts; i++)
            k += strcmp(rep->members_rep->conflicts[i]->domain, domain) == 0;
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    dm_rpc_client_destroy(&c);
    return k;
}

Test(gossip, a_contract_registered_on_node_3_reaches_all_five)
{
    char path[700];
    snprintf(path, sizeof path, "%s.yaml", s_dirs[2]);
    dm_h_write(path, dm_h_contract_text(s_domains[2], "customers", "1.0.0"));
    const char *reg[] = {"--data", s_dirs[2], "register", path, NULL};
    dm_h_result_t r = dm_h_run("dmctl", reg, NULL, T_DEADLINE_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    long long deadline = dm_h_now_ms() + T_DEADLINE_MS;
    bool all = false;
    while (!all && dm_h_now_ms() < deadline) {
        all = true;
        for (int i = 0; i < T_NODES && all; i++)
            all = dm_h_lists(&s_nodes[i], s_domains[2], "customers", "1.0.0");
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

Test(gossip, forged_foreign_and_replayed_entries_are_rejected_by_every_node)
{
    /* The entries' origin is the test's own key (not a member: the
     * catalog keeps a few such strangers); they travel from a member, as
     * only members take part in anti-entropy: node 4's key and address. */
    dm_identity_t *me = NULL, *relay = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&me), DM_OK);
    cr_assert_eq(dm_identity_load(s_dirs[4], &relay, NULL), DM_OK);
    const uint8_t *my_id = dm_identity_public(me);
    char my_addr[DM_ADDRESS_MAX];
    cr_assert_eq(dm_identity_address_format(my_id, "tcp://127.0.0.1:9", my_addr, sizeof my_addr, NULL), DM_OK);
    uint8_t victim_id[32];
    char ep[256];
    cr_assert_eq(dm_identity_address_parse(s_nodes[0].addr, victim_id, ep, sizeof ep, NULL), DM_OK);

    static dm_h_entry_t claim, good, replay, forged, foreign;
    /* A valid claim of a fresh domain and a valid product of it. */
    dm_h_entry_node_record(&claim, "tdomain", my_addr);
    cr_assert(dm_h_entry_sign(&claim, me, my_id, "node", 1));
    cr_assert(dm_h_contract_payload(&good.payload, "tdomain", "p", "2.0.0"));
    cr_assert(dm_h_entry_sign(&good, me, my_id, "product/tdomain/p", 3));
    /* A replay of an older version of the same key. */
    cr_assert(dm_h_contract_payload(&replay.payload, "tdomain", "p", "1.0.0"));
    cr_assert(dm_h_entry_sign(&replay, me, my_id, "product/tdomain/p", 2));
    /* A forgery: claims to come from node 0, signed with our key. */
    cr_assert(dm_h_contract_payload(&forged.payload, s_domains[0], "forged", "1.0.0"));
    cr_assert(dm_h_entry_sign(&forged, me, victim_id, "product/commerce/forged", 99));
    /* A product for a domain pinned to another node, validly signed. */
    cr_assert(dm_h_contract_payload(&foreign.payload, s_domains[0], "evil", "1.0.0"));
    cr_assert(dm_h_entry_sign(&foreign, me, my_id, "product/commerce/evil", 4));

    dm_h_entry_t *first[] = {&claim, &good};
    dm_h_entry_t *second[] = {&replay, &forged, &foreign};
    for (int i = 0; i < T_NODES; i++) {
        cr_assert(dm_h_catalog_inject(&s_nodes[i], relay, s_nodes[4].addr, first, 2));
        cr_assert(dm_h_catalog_inject(&s_nodes[i], relay, s_nodes[4].addr, second, 3));
    }
    /* The valid entries arrive (the path works) ... */
    long long deadline = dm_h_now_ms() + T_DEADLINE_MS;
    bool all = false;
    while (!all && dm_h_now_ms() < deadline) {
        all = true;
        for (int i = 0; i < T_NODES && all; i++)
            all = dm_h_lists(&s_nodes[i], "tdomain", "p", "2.0.0");
        if (!all)
            poll(NULL, 0, T_POLL_MS);
    }
    cr_assert(all, "the valid entries did not arrive everywhere");
    /* ... and every node refused the others. */
    for (int i = 0; i < T_NODES; i++) {
        cr_assert(!dm_h_lists(&s_nodes[i], "tdomain", "p", "1.0.0"), "node %d took the replay", i);
        cr_assert(!dm_h_lists(&s_nodes[i], s_domains[0], "forged", NULL), "node %d took the forgery", i);
        cr_assert(!dm_h_lists(&s_nodes[i], s_domains[0], "evil", NULL),
                  "node %d took a product of another node's domain", i);
    }
    for (int i = 0; i < 5; i++)
        dm_h_entry_free(((dm_h_entry_t *[]){&claim, &good, &replay, &forged, &foreign})[i]);
    dm_identity_destroy(&me);
    dm_identity_destroy(&relay);
}

Test(gossip, a_tombstone_propagates_and_survives_restarts)
{
    char path[700];
    snprintf(path, sizeof path, "%s.yaml", s_dirs[1]);
    dm_h_write(path, dm_h_contract_text(s_domains[1], "shipments", "1.0.0"));
    const char *reg[] = {"--data", s_dirs[1], "register", path, NULL};
    dm_h_result_t r = dm_h_run("dmctl", reg, NULL, T_DEADLINE_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    long long deadline = dm_h_now_ms() + T_DEADLINE_MS;
    bool all = false;
    while (!all && dm_h_now_ms() < deadline) {
        all = true;
        for (int i = 0; i < T_NODES && all; i++)
            all = dm_h_lists(&s_nodes[i], s_domains[1], "shipments", NULL);
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
            gone = !dm_h_lists(&s_nodes[i], s_domains[1], "shipments", NULL);
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
        cr_assert(!dm_h_lists(&s_nodes[i], s_domains[1], "shipments", NULL),
                  "node %d lists the deregistered product after the restarts", i);
}
