/* test_gossip.c: several real meshd processes on loopback forming one mesh
 * through a seed: membership, failure detection, restart and refutation,
 * leaving. Every wait is on a condition with a deadline. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
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
