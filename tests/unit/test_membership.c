/* test_membership.c: the SWIM + Lifeguard state machine, driven in-process:
 * several machines, messages delivered by hand (through the wire encoding),
 * time advanced by hand. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membership.h"
#include "membership.pb-c.h"
#include "membership_priv.h" /* the probe state, for the forged-ack test */

#define MAXN 12
#define STEP_MS 10

typedef struct net net_t;

typedef struct {
    net_t *net;
    int self;
} obs_t;

struct net {
    int n;
    int64_t now;
    dm_membership_t *m[MAXN];
    uint8_t id[MAXN][DM_ID_PUBLIC_BYTES];
    char addr[MAXN][DM_ADDRESS_MAX];
    bool down[MAXN];            /* crashed: no ticks, no traffic */
    bool link_down[MAXN][MAXN]; /* drop messages from i to j */
    obs_t obs[MAXN];
    int events[MAXN][7][MAXN]; /* [observer][event][subject] */
    int64_t first_event_at[MAXN][7][MAXN];
    size_t sent[MAXN];
    dm_swim_out_t out; /* 15 KiB: not on the stack of every helper */
};

static void s_id(int i, uint8_t id[DM_ID_PUBLIC_BYTES])
{
    for (int b = 0; b < DM_ID_PUBLIC_BYTES; b++)
        id[b] = (uint8_t)(i * 37 + b * 11 + 1);
}

static int s_index(net_t *net, const uint8_t *id)
{
    for (int i = 0; i < net->n; i++)
        if (memcmp(net->id[i], id, DM_ID_PUBLIC_BYTES) == 0)
            return i;
    return -1;
}

static void s_on_event(void *ctx, dm_membership_event ev, const dm_member_t *mem, int64_t now)
{
    obs_t *o = ctx;
    int j = s_index(o->net, mem->id);
    if (j < 0)
        return;
    if (!o->net->events[o->self][ev][j]++)
        o->net->first_event_at[o->self][ev][j] = now;
}

static void s_start(net_t *net, int i, const dm_membership_config_t *cfg, uint64_t seed)
{
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://10.0.0.%d:7000", i + 1);
    s_id(i, net->id[i]);
    cr_assert_eq(dm_address_format(net->id[i], ep, net->addr[i], DM_ADDRESS_MAX), DM_OK);
    char dom[16];
    snprintf(dom, sizeof dom, "d%d", i);
    cr_assert_eq(dm_membership_new(net->id[i], dom, net->addr[i], cfg, seed + (uint64_t)i,
                                   &net->m[i]),
                 DM_OK);
    net->obs[i].net = net;
    net->obs[i].self = i;
    dm_membership_on_event(net->m[i], s_on_event, &net->obs[i]);
    net->down[i] = false;
}

static net_t *s_net(int n, const dm_membership_config_t *cfg, uint64_t seed)
{
    net_t *net = calloc(1, sizeof *net);
    cr_assert_not_null(net);
    net->n = n;
    net->now = 1000;
    for (int i = 0; i < n; i++)
        s_start(net, i, cfg, seed);
    return net;
}

/* Every machine knows every other (as if persisted). */
static void s_full_mesh(net_t *net)
{
    for (int i = 0; i < net->n; i++)
        for (int j = 0; j < net->n; j++) {
            char dom[16];
            snprintf(dom, sizeof dom, "d%d", j);
            dm_member_t mb = {.address = net->addr[j], .domain = dom, .state = DM_MEMBER_ALIVE};
            memcpy(mb.id, net->id[j], DM_ID_PUBLIC_BYTES);
            cr_assert_eq(dm_membership_add_known(net->m[i], &mb, net->now), DM_OK);
        }
}

static void s_free(net_t *net)
{
    for (int i = 0; i < net->n; i++)
        dm_membership_destroy(&net->m[i]);
    free(net);
}

/* Delivers everything queued (and what the answers queue) through the wire
 * encoding, dropping what goes to or from a crashed node or a cut link. */
static void s_deliver(net_t *net)
{
    for (bool any = true; any;) {
        any = false;
        for (int i = 0; i < net->n; i++) {
            while (dm_membership_next_outgoing(net->m[i], &net->out)) {
                any = true;
                net->sent[i]++;
                int j = -1;
                for (int k = 0; k < net->n; k++)
                    if (strcmp(net->addr[k], net->out.to) == 0)
                        j = k;
                if (j < 0 || net->down[i] || net->down[j] || net->link_down[i][j])
                    continue;
                uint8_t *wire;
                size_t len;
                cr_assert_eq(dm_membership_encode(&net->out.msg, &wire, &len), DM_OK);
                static dm_swim_msg_t msg;
                cr_assert_eq(dm_membership_decode(wire, len, &msg), DM_OK);
                free(wire);
                /* DENIED: a newcomer's word reached a node before the news of
                 * its join did; dropped, as the network might have. */
                dm_err rc = dm_membership_receive(net->m[j], net->id[i], &msg, net->now);
                cr_assert(rc == DM_OK || rc == DM_ERR_DENIED, "%d->%d: %s", i, j,
                          dm_strerror(rc));
            }
        }
    }
}

static void s_run(net_t *net, int64_t ms)
{
    for (int64_t end = net->now + ms; net->now < end;) {
        net->now += STEP_MS;
        for (int i = 0; i < net->n; i++)
            if (!net->down[i] && dm_membership_next_deadline(net->m[i]) <= net->now)
                dm_membership_tick(net->m[i], net->now);
        s_deliver(net);
    }
}

static void s_crash(net_t *net, int i)
{
    net->down[i] = true;
    dm_swim_out_t *o = &net->out;
    while (dm_membership_next_outgoing(net->m[i], o))
        ;
}

static dm_member_state s_state(net_t *net, int observer, int subject)
{
    return dm_membership_state_of(net->m[observer], net->id[subject]);
}

TestSuite(membership);

Test(membership, joins_through_a_seed_and_learns_all_members)
{
    net_t *net = s_net(6, NULL, 1);
    for (int i = 1; i < net->n; i++) {
        dm_membership_join(net->m[i], net->addr[0], net->now);
        s_run(net, 100);
    }
    s_run(net, 3000);
    for (int i = 0; i < net->n; i++) {
        cr_assert_eq(dm_membership_count_live(net->m[i]), (size_t)net->n - 1, "node %d knows %zu",
                     i, dm_membership_count_live(net->m[i]));
        for (int j = 0; j < net->n; j++)
            cr_assert_eq(s_state(net, i, j), DM_MEMBER_ALIVE);
    }
    s_free(net);
}

Test(membership, join_retries_until_the_seed_answers)
{
    net_t *net = s_net(2, NULL, 2);
    net->down[0] = true;
    dm_membership_join(net->m[1], net->addr[0], net->now);
    s_run(net, 2500);
    cr_assert_eq(dm_membership_count(net->m[1]), 0);
    net->down[0] = false;
    s_run(net, 1500);
    cr_assert_eq(s_state(net, 1, 0), DM_MEMBER_ALIVE);
    cr_assert_eq(s_state(net, 0, 1), DM_MEMBER_ALIVE);
    s_free(net);
}

Test(membership, silent_node_is_suspected_then_confirmed_dead)
{
    net_t *net = s_net(6, NULL, 3);
    s_full_mesh(net);
    s_run(net, 2000);
    s_crash(net, 5);
    int64_t crashed = net->now;
    int64_t suspected = -1;
    for (int t = 0; t < 2000 && suspected < 0; t += STEP_MS) {
        s_run(net, STEP_MS);
        for (int i = 0; i < 5; i++)
            if (s_state(net, i, 5) == DM_MEMBER_SUSPECT)
                suspected = net->now;
    }
    cr_assert_geq(suspected, 0, "nobody suspected the silent node within 2 s");
    for (int i = 0; i < 5; i++)
        cr_assert_neq(s_state(net, i, 5), DM_MEMBER_DEAD, "dead before any suspicion timeout");
    s_run(net, 20000);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(s_state(net, i, 5), DM_MEMBER_DEAD, "node %d sees %s", i,
                     dm_member_state_name(s_state(net, i, 5)));
        cr_assert_eq(net->events[i][DM_MEMBERSHIP_EV_DEAD][5], 1);
        /* the minimum suspicion timeout: 4 x probe interval for N <= 10 */
        cr_assert_geq(net->first_event_at[i][DM_MEMBERSHIP_EV_DEAD][5] - crashed,
                      DM_MEMBERSHIP_SUSPICION_MULT * DM_MEMBERSHIP_PROBE_INTERVAL_MS);
    }
    s_free(net);
}

Test(membership, indirect_probe_saves_a_node_whose_direct_link_drops)
{
    net_t *net = s_net(6, NULL, 4);
    s_full_mesh(net);
    net->link_down[0][5] = net->link_down[5][0] = true;
    s_run(net, 30000);
    for (int i = 0; i < net->n; i++)
        for (int j = 0; j < net->n; j++) {
            cr_assert_eq(s_state(net, i, j), DM_MEMBER_ALIVE);
            cr_assert_eq(net->events[i][DM_MEMBERSHIP_EV_SUSPECT][j], 0,
                         "%d suspected %d though helpers could reach it", i, j);
        }
    s_free(net);
}

Test(membership, without_helpers_a_cut_link_leads_to_suspicion)
{
    /* the control for the test above: same cut, k = 0 */
    dm_membership_config_t cfg;
    dm_membership_config_default(&cfg);
    cfg.indirect_k = 0;
    net_t *net = s_net(6, &cfg, 4);
    s_full_mesh(net);
    net->link_down[0][5] = net->link_down[5][0] = true;
    s_run(net, 30000);
    cr_assert_gt(net->events[0][DM_MEMBERSHIP_EV_SUSPECT][5] + net->events[5][DM_MEMBERSHIP_EV_SUSPECT][0], 0);
    s_free(net);
}

Test(membership, suspected_node_refutes_with_a_higher_incarnation)
{
    net_t *net = s_net(4, NULL, 5);
    s_full_mesh(net);
    s_run(net, 1000);
    /* node 0 tells node 1 that node 3 is suspect (a false accusation) */
    dm_swim_msg_t *msg = calloc(1, sizeof *msg);
    msg->type = DM_SWIM_GOSSIP;
    memcpy(msg->sender.id, net->id[0], DM_ID_PUBLIC_BYTES);
    strcpy(msg->sender.address, net->addr[0]);
    strcpy(msg->sender.domain, "d0");
    msg->n_updates = 1;
    memcpy(msg->updates[0].id, net->id[3], DM_ID_PUBLIC_BYTES);
    strcpy(msg->updates[0].address, net->addr[3]);
    strcpy(msg->updates[0].domain, "d3");
    msg->updates[0].state = DM_MEMBER_SUSPECT;
    msg->updates[0].incarnation = 0;
    cr_assert_eq(dm_membership_receive(net->m[1], net->id[0], msg, net->now), DM_OK);
    cr_assert_eq(s_state(net, 1, 3), DM_MEMBER_SUSPECT);
    s_run(net, 3000);
    cr_assert_geq(dm_membership_incarnation(net->m[3]), 1);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(s_state(net, i, 3), DM_MEMBER_ALIVE);
        cr_assert_geq(dm_membership_incarnation_of(net->m[i], net->id[3]), 1);
        cr_assert_eq(net->events[i][DM_MEMBERSHIP_EV_DEAD][3], 0);
    }
    free(msg);
    s_free(net);
}

Test(membership, restarted_node_rejoins_with_a_higher_incarnation)
{
    net_t *net = s_net(5, NULL, 6);
    s_full_mesh(net);
    s_run(net, 1000);
    s_crash(net, 4);
    s_run(net, 20000);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(s_state(net, i, 4), DM_MEMBER_DEAD);
    uint64_t dead_inc = dm_membership_incarnation_of(net->m[0], net->id[4]);
    /* restart: a fresh machine with the same id, incarnation 0 */
    dm_membership_destroy(&net->m[4]);
    s_start(net, 4, NULL, 600);
    dm_membership_join(net->m[4], net->addr[0], net->now);
    s_run(net, 3000);
    cr_assert_gt(dm_membership_incarnation(net->m[4]), dead_inc);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(s_state(net, i, 4), DM_MEMBER_ALIVE, "node %d sees %s", i,
                     dm_member_state_name(s_state(net, i, 4)));
        cr_assert_eq(net->events[i][DM_MEMBERSHIP_EV_ALIVE][4], 1);
    }
    cr_assert_eq(dm_membership_count_live(net->m[4]), 4);
    s_free(net);
}

Test(membership, leave_is_announced_and_not_treated_as_a_failure)
{
    net_t *net = s_net(5, NULL, 7);
    s_full_mesh(net);
    s_run(net, 1000);
    dm_membership_leave(net->m[4], net->now);
    s_deliver(net);
    s_run(net, 600);
    s_crash(net, 4);
    s_run(net, 20000);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(s_state(net, i, 4), DM_MEMBER_LEFT);
        cr_assert_eq(net->events[i][DM_MEMBERSHIP_EV_LEFT][4], 1);
        cr_assert_eq(net->events[i][DM_MEMBERSHIP_EV_SUSPECT][4], 0);
        cr_assert_eq(net->events[i][DM_MEMBERSHIP_EV_DEAD][4], 0);
    }
    s_free(net);
}

Test(membership, lhm_grows_on_missed_acks_shrinks_on_success_and_stretches_the_interval)
{
    dm_membership_config_t cfg;
    dm_membership_config_default(&cfg);
    cfg.suspicion_mult = 100; /* keep the peer suspect, not dead, meanwhile */
    net_t *net = s_net(2, &cfg, 8);
    s_full_mesh(net);
    s_run(net, 1000);
    cr_assert_eq(dm_membership_lhm(net->m[0]), 0);
    cr_assert_eq(dm_membership_probe_interval(net->m[0]), cfg.probe_interval_ms);
    net->link_down[0][1] = net->link_down[1][0] = true;
    s_run(net, 8000);
    unsigned peak = dm_membership_lhm(net->m[0]);
    cr_assert_geq(peak, 3, "lhm %u after 8 s of missed acks", peak);
    cr_assert_eq(dm_membership_probe_interval(net->m[0]), cfg.probe_interval_ms * (peak + 1));
    cr_assert_eq(dm_membership_probe_timeout(net->m[0]), cfg.probe_timeout_ms * (peak + 1));
    /* pings really are further apart now: count them over 4 s */
    size_t before = net->sent[0];
    s_run(net, 4000);
    size_t pings = net->sent[0] - before;
    cr_assert_leq(pings, 4000 / (cfg.probe_interval_ms * 2) + 4, "%zu messages in 4 s", pings);
    net->link_down[0][1] = net->link_down[1][0] = false;
    s_run(net, 30000);
    cr_assert_lt(dm_membership_lhm(net->m[0]), peak);
    cr_assert_eq(dm_membership_lhm(net->m[0]), 0);
    s_free(net);
}

Test(membership, suspicion_timeout_shrinks_with_independent_confirmations)
{
    net_t *net = s_net(8, NULL, 9);
    s_full_mesh(net);
    dm_membership_t *m = net->m[0];
    dm_swim_msg_t *msg = calloc(1, sizeof *msg);
    msg->type = DM_SWIM_GOSSIP;
    msg->n_updates = 1;
    dm_swim_update_t *u = &msg->updates[0];
    memcpy(u->id, net->id[7], DM_ID_PUBLIC_BYTES);
    strcpy(u->address, net->addr[7]);
    strcpy(u->domain, "d7");
    u->state = DM_MEMBER_SUSPECT;
    int64_t deadlines[5];
    int accusers[5] = {1, 2, 2, 3, 4}; /* the second 2 is not independent */
    for (int a = 0; a < 5; a++) {
        int from = accusers[a];
        memcpy(msg->sender.id, net->id[from], DM_ID_PUBLIC_BYTES);
        strcpy(msg->sender.address, net->addr[from]);
        snprintf(msg->sender.domain, sizeof msg->sender.domain, "d%d", from);
        u->has_from = true;
        memcpy(u->from, net->id[from], DM_ID_PUBLIC_BYTES);
        cr_assert_eq(dm_membership_receive(m, NULL, msg, net->now), DM_OK);
        deadlines[a] = dm_membership_suspicion_deadline(m, net->id[7]);
    }
    /* N = 8: min = 4 x 1 x 400 ms, max = 6 x min, K = 4 - 2 = 2 */
    int64_t min = 4 * DM_MEMBERSHIP_PROBE_INTERVAL_MS;
    cr_assert_eq(deadlines[0] - net->now, 6 * min);
    cr_assert_lt(deadlines[1], deadlines[0]);
    cr_assert_gt(deadlines[1] - net->now, min);
    cr_assert_eq(deadlines[2], deadlines[1], "a repeated accuser is no confirmation");
    cr_assert_eq(deadlines[3] - net->now, min);
    cr_assert_eq(deadlines[4], deadlines[3], "never below the minimum");
    free(msg);
    s_free(net);
}

/* A machine that learned many members by gossip has a long queue. */
static net_t *s_busy_node(const dm_membership_config_t *cfg, int extra)
{
    net_t *net = s_net(2, cfg, 10);
    s_full_mesh(net);
    dm_swim_msg_t *msg = calloc(1, sizeof *msg);
    msg->type = DM_SWIM_GOSSIP;
    memcpy(msg->sender.id, net->id[1], DM_ID_PUBLIC_BYTES);
    strcpy(msg->sender.address, net->addr[1]);
    strcpy(msg->sender.domain, "d1");
    for (int x = 0; x < extra; x++) {
        dm_swim_update_t *u = &msg->updates[msg->n_updates++];
        s_id(100 + x, u->id);
        char ep[64];
        snprintf(ep, sizeof ep, "tcp://a-rather-long-host-name-%d.example.org:7000", x);
        cr_assert_eq(dm_address_format(u->id, ep, u->address, sizeof u->address), DM_OK);
        snprintf(u->domain, sizeof u->domain, "domain-number-%d", x);
        u->incarnation = (uint64_t)x * 1000003u;
        if (msg->n_updates == DM_SWIM_MAX_UPDATES || x == extra - 1) {
            cr_assert_eq(dm_membership_receive(net->m[0], NULL, msg, net->now), DM_OK);
            msg->n_updates = 0;
        }
    }
    free(msg);
    return net;
}

Test(membership, piggyback_budget_is_never_exceeded)
{
    dm_membership_config_t cfg;
    dm_membership_config_default(&cfg);
    cfg.max_updates_per_msg = 6;
    cfg.max_piggyback_bytes = 600;
    net_t *net = s_busy_node(&cfg, 300);
    size_t msgs = 0, full = 0;
    for (int round = 0; round < 200; round++) {
        net->now += cfg.gossip_interval_ms;
        dm_membership_tick(net->m[0], net->now);
        while (dm_membership_next_outgoing(net->m[0], &net->out)) {
            dm_swim_msg_t *msg = &net->out.msg;
            msgs++;
            cr_assert_leq(msg->n_updates, cfg.max_updates_per_msg);
            size_t n = msg->n_updates;
            size_t with = dm_membership_encoded_size(msg);
            msg->n_updates = 0;
            size_t without = dm_membership_encoded_size(msg);
            cr_assert_gt(with, 0);
            cr_assert_leq(with - without, cfg.max_piggyback_bytes, "%zu bytes of updates",
                          with - without);
            full += n == cfg.max_updates_per_msg || with - without > cfg.max_piggyback_bytes - 150;
        }
    }
    cr_assert_gt(msgs, 100);
    cr_assert_gt(full, 10, "the budget was never reached: the test proves nothing");
    s_free(net);
}

Test(membership, retransmissions_are_bounded)
{
    dm_membership_config_t cfg;
    dm_membership_config_default(&cfg);
    cfg.probe_interval_ms = 1000000; /* no probes: one fact, gossip only */
    cfg.probe_timeout_ms = 500000;
    net_t *net = s_busy_node(&cfg, 1);
    dm_membership_t *m = net->m[0];
    unsigned limit = dm_membership_retransmit_limit(m);
    cr_assert_eq(limit, DM_MEMBERSHIP_RETRANSMIT_MULT * 1); /* N = 3: one digit */
    uint8_t news[DM_ID_PUBLIC_BYTES];
    s_id(100, news);
    unsigned seen = 0;
    for (int round = 0; round < 100; round++) {
        net->now += 100;
        dm_membership_tick(m, net->now);
        while (dm_membership_next_outgoing(m, &net->out))
            for (size_t i = 0; i < net->out.msg.n_updates; i++)
                seen += memcmp(net->out.msg.updates[i].id, news, DM_ID_PUBLIC_BYTES) == 0;
    }
    cr_assert_eq(seen, limit, "seen %u limit %u", seen, limit);
    s_free(net);
}

/* Runs a small lossy-looking scenario and hashes every message sent. */
static uint64_t s_trace(uint64_t seed)
{
    net_t *net = s_net(6, NULL, seed);
    for (int i = 1; i < net->n; i++)
        dm_membership_join(net->m[i], net->addr[0], net->now);
    net->link_down[1][2] = true;
    uint64_t h = 1469598103934665603ULL;
    for (int t = 0; t < 600; t++) {
        net->now += STEP_MS;
        if (t == 300)
            s_crash(net, 5);
        for (int i = 0; i < net->n; i++) {
            if (net->down[i])
                continue;
            dm_membership_tick(net->m[i], net->now);
            while (dm_membership_next_outgoing(net->m[i], &net->out)) {
                uint8_t *wire;
                size_t len;
                cr_assert_eq(dm_membership_encode(&net->out.msg, &wire, &len), DM_OK);
                for (size_t b = 0; b < len; b++)
                    h = (h ^ wire[b]) * 1099511628211ULL;
                int j = -1;
                for (int k = 0; k < net->n; k++)
                    if (strcmp(net->addr[k], net->out.to) == 0)
                        j = k;
                static dm_swim_msg_t msg;
                if (j >= 0 && !net->down[j] && !net->link_down[i][j] &&
                    dm_membership_decode(wire, len, &msg) == DM_OK) {
                    dm_err rc = dm_membership_receive(net->m[j], NULL, &msg, net->now);
                    cr_assert(rc == DM_OK || rc == DM_ERR_DENIED);
                }
                free(wire);
            }
        }
    }
    s_free(net);
    return h;
}

Test(membership, same_seed_same_run)
{
    uint64_t a = s_trace(42), b = s_trace(42), c = s_trace(43);
    cr_assert_eq(a, b);
    cr_assert_neq(a, c, "the seed changes nothing: randomness is not seeded");
}

static dm_swim_msg_t *s_sample_msg(void)
{
    dm_swim_msg_t *msg = calloc(1, sizeof *msg);
    msg->type = DM_SWIM_PING_REQ;
    msg->seq = 77;
    s_id(1, msg->sender.id);
    cr_assert_eq(dm_address_format(msg->sender.id, "tcp://h1:1", msg->sender.address,
                                   DM_ADDRESS_MAX), DM_OK);
    strcpy(msg->sender.domain, "commerce");
    msg->sender.incarnation = 5;
    s_id(2, msg->target_id);
    cr_assert_eq(dm_address_format(msg->target_id, "tcp://h2:2", msg->target_address,
                                   DM_ADDRESS_MAX), DM_OK);
    msg->n_updates = 2;
    s_id(3, msg->updates[0].id);
    strcpy(msg->updates[0].address, "not-a-self-certifying-address");
    msg->updates[0].state = DM_MEMBER_SUSPECT;
    msg->updates[0].incarnation = UINT64_MAX;
    msg->updates[0].has_from = true;
    s_id(4, msg->updates[0].from);
    s_id(5, msg->updates[1].id);
    cr_assert_eq(dm_address_format(msg->updates[1].id, "tcp://[::1]:9", msg->updates[1].address,
                                   DM_ADDRESS_MAX), DM_OK);
    msg->updates[1].state = DM_MEMBER_LEFT;
    return msg;
}

Test(membership, wire_round_trip_keeps_every_field)
{
    dm_swim_msg_t *msg = s_sample_msg(), *back = calloc(1, sizeof *back);
    uint8_t *wire;
    size_t len;
    cr_assert_eq(dm_membership_encode(msg, &wire, &len), DM_OK);
    cr_assert_eq(len, dm_membership_encoded_size(msg));
    cr_assert_eq(dm_membership_decode(wire, len, back), DM_OK);
    cr_assert_eq(back->type, msg->type);
    cr_assert_eq(back->seq, 77);
    cr_assert_str_eq(back->sender.address, msg->sender.address);
    cr_assert_str_eq(back->sender.domain, "commerce");
    cr_assert_eq(back->sender.incarnation, 5);
    cr_assert_str_eq(back->target_address, msg->target_address);
    cr_assert_eq(back->n_updates, 2);
    cr_assert_str_eq(back->updates[0].address, "not-a-self-certifying-address");
    cr_assert_eq(back->updates[0].incarnation, UINT64_MAX);
    cr_assert(back->updates[0].has_from);
    cr_assert_eq(memcmp(back->updates[0].from, msg->updates[0].from, DM_ID_PUBLIC_BYTES), 0);
    cr_assert_str_eq(back->updates[1].address, msg->updates[1].address);
    cr_assert_eq(back->updates[1].state, DM_MEMBER_LEFT);
    cr_assert_not(back->updates[1].has_from);
    /* the self-certifying prefix is not sent twice */
    cr_assert_lt(len, 300);
    free(wire);
    free(msg);
    free(back);
}

Test(membership, decode_rejects_malformed_and_oversized_messages)
{
    dm_swim_msg_t *msg = s_sample_msg(), *back = calloc(1, sizeof *back);
    uint8_t *wire;
    size_t len;
    cr_assert_eq(dm_membership_encode(msg, &wire, &len), DM_OK);
    /* a cut between fields is valid protobuf; it must never pass for the whole */
    for (size_t cut = 0; cut < len; cut++)
        if (dm_membership_decode(wire, cut, back) == DM_OK)
            cr_assert_lt(back->n_updates, 2, "%zu of %zu bytes decoded as the whole", cut, len);
    free(wire);

    uint8_t *big = calloc(1, DM_SWIM_MAX_WIRE_BYTES + 1);
    cr_assert_eq(dm_membership_decode(big, DM_SWIM_MAX_WIRE_BYTES + 1, back), DM_ERR_TOOBIG);
    free(big);

    srand(7);
    uint8_t junk[512];
    for (int r = 0; r < 2000; r++) {
        size_t n = (size_t)(rand() % (int)sizeof junk);
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rand();
        dm_err rc = dm_membership_decode(junk, n, back);
        if (rc != DM_OK)
            cr_assert_eq(back->n_updates, 0, "output not cleared on failure");
    }

    /* well-formed protobuf that breaks our rules */
    Dm__MemberUpdate snd = DM__MEMBER_UPDATE__INIT, upd = DM__MEMBER_UPDATE__INIT;
    uint8_t id[DM_ID_PUBLIC_BYTES] = {1};
    snd.node_id.data = id;
    snd.node_id.len = sizeof id;
    snd.address = "tcp://h:1";
    Dm__MemberUpdate *ups[DM_SWIM_MAX_UPDATES + 1];
    for (int i = 0; i <= DM_SWIM_MAX_UPDATES; i++)
        ups[i] = &snd;
    Dm__SwimMessage pb = DM__SWIM_MESSAGE__INIT;
    pb.kind = DM__SWIM_MESSAGE__KIND__GOSSIP;
    pb.sender = &snd;
    uint8_t buf[8192];
    struct {
        const char *what;
        void (*unused)(void);
    } cases[] = {{"ok", NULL},          {"too many updates", NULL}, {"short id", NULL},
                 {"unknown kind", NULL}, {"bad state", NULL},        {"no sender", NULL},
                 {"ping without target", NULL}, {"long domain", NULL}};
    char longdom[DM_SWIM_DOMAIN_MAX + 8];
    memset(longdom, 'x', sizeof longdom - 1);
    longdom[sizeof longdom - 1] = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        Dm__SwimMessage t = pb;
        Dm__MemberUpdate u = upd;
        u.node_id.data = id;
        u.node_id.len = sizeof id;
        u.address = "tcp://x:2";
        Dm__MemberUpdate *one[1] = {&u};
        t.updates = one;
        t.n_updates = 1;
        switch (c) {
        case 1: t.updates = ups; t.n_updates = DM_SWIM_MAX_UPDATES + 1; break;
        case 2: u.node_id.len = 31; break;
        case 3: t.kind = (Dm__SwimMessage__Kind)99; break;
        case 4: u.state = (Dm__MemberState)9; break;
        case 5: t.sender = NULL; break;
        case 6: t.kind = DM__SWIM_MESSAGE__KIND__PING; break;
        case 7: u.domain = longdom; break;
        default: break;
        }
        size_t n = dm__swim_message__pack(&t, buf);
        dm_err rc = dm_membership_decode(buf, n, back);
        if (c == 0)
            cr_assert_eq(rc, DM_OK);
        else
            cr_assert_eq(rc, DM_ERR_PROTO, "%s accepted", cases[c].what);
    }
    free(msg);
    free(back);
}

Test(membership, receive_refuses_a_sender_that_is_not_the_authenticated_peer)
{
    net_t *net = s_net(3, NULL, 11);
    dm_swim_msg_t *msg = calloc(1, sizeof *msg);
    msg->type = DM_SWIM_JOIN;
    memcpy(msg->sender.id, net->id[1], DM_ID_PUBLIC_BYTES);
    strcpy(msg->sender.address, net->addr[1]);
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[2], msg, net->now), DM_ERR_DENIED);
    cr_assert_eq(dm_membership_count(net->m[0]), 0);
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    cr_assert_eq(dm_membership_count(net->m[0]), 1);
    free(msg);
    s_free(net);
}

Test(membership, ping_to_a_suspect_carries_the_suspicion)
{
    net_t *net = s_net(3, NULL, 12);
    s_full_mesh(net);
    dm_membership_t *m = net->m[0];
    /* node 1 says node 2 is suspect */
    dm_swim_msg_t *msg = calloc(1, sizeof *msg);
    msg->type = DM_SWIM_GOSSIP;
    memcpy(msg->sender.id, net->id[1], DM_ID_PUBLIC_BYTES);
    strcpy(msg->sender.address, net->addr[1]);
    msg->n_updates = 1;
    memcpy(msg->updates[0].id, net->id[2], DM_ID_PUBLIC_BYTES);
    strcpy(msg->updates[0].address, net->addr[2]);
    msg->updates[0].state = DM_MEMBER_SUSPECT;
    cr_assert_eq(dm_membership_receive(m, NULL, msg, net->now), DM_OK);
    /* drain the gossip, then watch node 0's pings to node 2 */
    bool seen_ping = false;
    for (int t = 0; t < 400 && !seen_ping; t++) {
        net->now += STEP_MS;
        dm_membership_tick(m, net->now);
        while (dm_membership_next_outgoing(m, &net->out)) {
            const dm_swim_msg_t *o = &net->out.msg;
            if (o->type != DM_SWIM_PING ||
                memcmp(o->target_id, net->id[2], DM_ID_PUBLIC_BYTES) != 0)
                continue;
            seen_ping = true;
            cr_assert_geq(o->n_updates, 1);
            cr_assert_eq(memcmp(o->updates[0].id, net->id[2], DM_ID_PUBLIC_BYTES), 0);
            cr_assert_eq(o->updates[0].state, DM_MEMBER_SUSPECT);
        }
    }
    cr_assert(seen_ping, "node 0 never pinged the suspect in 4 s");
    free(msg);
    s_free(net);
}

Test(membership, one_failed_probe_is_only_a_doubt_two_make_a_suspicion)
{
    dm_membership_config_t cfg;
    dm_membership_config_default(&cfg);
    net_t *net = s_net(2, &cfg, 13);
    s_full_mesh(net);
    s_run(net, 1000);
    net->link_down[0][1] = net->link_down[1][0] = true;
    /* node 0 probes node 1 every interval (it is its only member) */
    int64_t start = net->now;
    while (net->events[0][DM_MEMBERSHIP_EV_SUSPECT][1] == 0 && net->now - start < 5000)
        s_run(net, STEP_MS);
    int64_t took = net->now - start;
    cr_assert_eq(net->events[0][DM_MEMBERSHIP_EV_SUSPECT][1], 1);
    /* at least two whole probe intervals (the second one stretched by LHM) */
    cr_assert_geq(took, 2 * cfg.probe_interval_ms, "suspected after %lld ms", (long long)took);

    cfg.reprobe_before_suspect = false; /* the control: SWIM's single probe */
    net_t *b = s_net(2, &cfg, 13);
    s_full_mesh(b);
    s_run(b, 1000);
    b->link_down[0][1] = b->link_down[1][0] = true;
    start = b->now;
    while (b->events[0][DM_MEMBERSHIP_EV_SUSPECT][1] == 0 && b->now - start < 5000)
        s_run(b, STEP_MS);
    cr_assert_lt(b->now - start, took);
    s_free(net);
    s_free(b);
}

/* ---- trust: what a message from whom may change ---- */

/* A message of type from node `from` of net (its own record as sender). */
static dm_swim_msg_t *s_msg(net_t *net, dm_swim_type type, int from)
{
    dm_swim_msg_t *msg = calloc(1, sizeof *msg);
    cr_assert_not_null(msg);
    msg->type = type;
    memcpy(msg->sender.id, net->id[from], DM_ID_PUBLIC_BYTES);
    strcpy(msg->sender.address, net->addr[from]);
    snprintf(msg->sender.domain, sizeof msg->sender.domain, "d%d", from);
    msg->sender.incarnation = dm_membership_incarnation(net->m[from]);
    return msg;
}

/* Appends an update: node `about` in state st at incarnation inc. */
static dm_swim_update_t *s_upd(net_t *net, dm_swim_msg_t *msg, int about, dm_member_state st,
                               uint64_t inc)
{
    dm_swim_update_t *u = &msg->updates[msg->n_updates++];
    memcpy(u->id, net->id[about], DM_ID_PUBLIC_BYTES);
    strcpy(u->address, net->addr[about]);
    snprintf(u->domain, sizeof u->domain, "d%d", about);
    u->state = st;
    u->incarnation = inc;
    return u;
}

/* Counts what m would send now, of type (0: any), to address `to` (NULL:
 * anywhere). */
static int s_drain(net_t *net, dm_membership_t *m, dm_swim_type type, const char *to)
{
    int n = 0;
    while (dm_membership_next_outgoing(m, &net->out))
        n += (!type || net->out.msg.type == type) && (!to || strcmp(net->out.to, to) == 0);
    return n;
}

Test(membership, a_stranger_is_heard_only_through_a_join)
{
    net_t *net = s_net(4, NULL, 20);
    for (int i = 0; i < 3; i++) /* 0, 1, 2 form the mesh; 3 is the stranger */
        for (int j = 0; j < 3; j++) {
            char dom[16];
            snprintf(dom, sizeof dom, "d%d", j);
            dm_member_t mb = {.address = net->addr[j], .domain = dom, .state = DM_MEMBER_ALIVE};
            memcpy(mb.id, net->id[j], DM_ID_PUBLIC_BYTES);
            cr_assert_eq(dm_membership_add_known(net->m[i], &mb, net->now), DM_OK);
        }
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_GOSSIP, 3);
    s_upd(net, msg, 2, DM_MEMBER_DEAD, 5);
    for (dm_swim_type t = DM_SWIM_PING; t <= DM_SWIM_SYNC; t++) {
        if (t == DM_SWIM_JOIN)
            continue;
        msg->type = t;
        cr_assert_eq(dm_membership_receive(net->m[0], net->id[3], msg, net->now), DM_ERR_DENIED,
                     "type %d from a stranger accepted", t);
    }
    cr_assert_eq(s_state(net, 0, 2), DM_MEMBER_ALIVE);
    cr_assert_eq(s_state(net, 0, 3), DM_MEMBER_UNKNOWN);
    cr_assert_eq(s_drain(net, net->m[0], 0, NULL), 0, "a stranger made the node send");
    msg->type = DM_SWIM_JOIN;
    msg->n_updates = 0;
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[3], msg, net->now), DM_OK);
    cr_assert_eq(s_state(net, 0, 3), DM_MEMBER_ALIVE);
    free(msg);
    s_free(net);
}

Test(membership, a_sender_address_must_carry_the_senders_own_key)
{
    net_t *net = s_net(3, NULL, 21);
    s_full_mesh(net);
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_JOIN, 1);
    strcpy(msg->sender.address, net->addr[2]); /* node 2's key, node 2's endpoint */
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_ERR_DENIED);
    cr_assert_eq(s_drain(net, net->m[0], DM_SWIM_SYNC, NULL), 0,
                 "the member list went to an address the joiner does not hold");
    strcpy(msg->sender.address, "tcp://10.9.9.9:7000"); /* no key at all */
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_ERR_DENIED);
    free(msg);
    s_free(net);
}

Test(membership, a_join_is_answered_only_at_the_joiners_own_address)
{
    net_t *net = s_net(2, NULL, 22);
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_JOIN, 1);
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    cr_assert_eq(s_drain(net, net->m[0], DM_SWIM_SYNC, net->addr[1]), 1);
    free(msg);
    s_free(net);
}

Test(membership, a_third_party_dead_is_only_a_suspicion_the_victim_refutes)
{
    net_t *net = s_net(4, NULL, 23);
    s_full_mesh(net);
    s_run(net, 1000);
    /* node 1 keeps saying that healthy node 3 is dead, at its incarnation */
    for (int round = 0; round < 30; round++) {
        dm_swim_msg_t *msg = s_msg(net, DM_SWIM_GOSSIP, 1);
        s_upd(net, msg, 3, DM_MEMBER_DEAD, dm_membership_incarnation(net->m[3]));
        cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
        cr_assert_neq(s_state(net, 0, 3), DM_MEMBER_DEAD, "a third party's DEAD was applied");
        free(msg);
        s_run(net, 1000);
    }
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(s_state(net, i, 3), DM_MEMBER_ALIVE);
        cr_assert_eq(net->events[i][DM_MEMBERSHIP_EV_DEAD][3], 0);
    }
    s_free(net);
}

Test(membership, a_suspicion_heard_becomes_a_death_only_when_our_own_probes_fail)
{
    net_t *net = s_net(3, NULL, 24);
    s_full_mesh(net);
    s_run(net, 1000);
    /* node 0 cannot reach node 2, node 1 can: node 1's word is not enough */
    net->link_down[0][2] = net->link_down[2][0] = true;
    net->link_down[1][2] = net->link_down[2][1] = false;
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_GOSSIP, 0);
    s_upd(net, msg, 2, DM_MEMBER_DEAD, 0);
    cr_assert_eq(dm_membership_receive(net->m[1], net->id[0], msg, net->now), DM_OK);
    cr_assert_eq(s_state(net, 1, 2), DM_MEMBER_SUSPECT);
    s_run(net, 30000);
    cr_assert_eq(net->events[1][DM_MEMBERSHIP_EV_DEAD][2], 0, "node 1 killed what it reaches");
    cr_assert_eq(s_state(net, 1, 2), DM_MEMBER_ALIVE);
    free(msg);
    s_free(net);
}

Test(membership, left_is_believed_only_from_the_member_itself)
{
    net_t *net = s_net(3, NULL, 25);
    s_full_mesh(net);
    s_run(net, 1000);
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_GOSSIP, 1);
    s_upd(net, msg, 2, DM_MEMBER_LEFT, 0);
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    cr_assert_neq(s_state(net, 0, 2), DM_MEMBER_LEFT);
    s_run(net, 5000);
    cr_assert_eq(s_state(net, 0, 2), DM_MEMBER_ALIVE);
    free(msg);
    msg = s_msg(net, DM_SWIM_GOSSIP, 2);
    msg->sender.state = DM_MEMBER_LEFT;
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[2], msg, net->now), DM_OK);
    cr_assert_eq(s_state(net, 0, 2), DM_MEMBER_LEFT);
    free(msg);
    s_free(net);
}

Test(membership, incarnations_saturate_and_the_victim_still_refutes_at_the_maximum)
{
    net_t *net = s_net(3, NULL, 26);
    s_full_mesh(net);
    s_run(net, 1000);
    /* node 1 accuses node 0 to its face at UINT64_MAX: it must not wrap */
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_GOSSIP, 1);
    s_upd(net, msg, 0, DM_MEMBER_DEAD, UINT64_MAX);
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    cr_assert_eq(dm_membership_incarnation(net->m[0]), UINT64_MAX);
    free(msg);
    /* and tells node 2 the same: far above what node 2 knows, so a lie */
    msg = s_msg(net, DM_SWIM_GOSSIP, 1);
    s_upd(net, msg, 0, DM_MEMBER_SUSPECT, UINT64_MAX - 1);
    cr_assert_eq(dm_membership_receive(net->m[2], net->id[1], msg, net->now), DM_OK);
    cr_assert_eq(s_state(net, 2, 0), DM_MEMBER_ALIVE);
    free(msg);
    s_run(net, 3000);
    cr_assert_eq(dm_membership_incarnation_of(net->m[2], net->id[0]), UINT64_MAX);
    /* now at the maximum, a suspicion at the maximum is refuted by node 0's
     * own word: the victim is alive everywhere, again and again */
    for (int round = 0; round < 5; round++) {
        msg = s_msg(net, DM_SWIM_GOSSIP, 1);
        s_upd(net, msg, 0, DM_MEMBER_DEAD, UINT64_MAX);
        cr_assert_eq(dm_membership_receive(net->m[2], net->id[1], msg, net->now), DM_OK);
        cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
        free(msg);
        s_run(net, 5000);
        cr_assert_eq(dm_membership_incarnation(net->m[0]), UINT64_MAX);
        for (int i = 1; i < 3; i++)
            cr_assert_eq(s_state(net, i, 0), DM_MEMBER_ALIVE, "round %d: node %d sees %s", round,
                         i, dm_member_state_name(s_state(net, i, 0)));
    }
    for (int i = 1; i < 3; i++)
        cr_assert_eq(net->events[i][DM_MEMBERSHIP_EV_DEAD][0], 0);
    s_free(net);
}

Test(membership, a_third_party_cannot_rewrite_an_address_or_a_domain)
{
    net_t *net = s_net(3, NULL, 27);
    s_full_mesh(net);
    char evil[DM_ADDRESS_MAX];
    cr_assert_eq(dm_address_format(net->id[2], "tcp://10.66.66.66:1", evil, sizeof evil), DM_OK);
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_GOSSIP, 1);
    dm_swim_update_t *u = s_upd(net, msg, 2, DM_MEMBER_ALIVE, 7);
    strcpy(u->address, evil);
    strcpy(u->domain, "evil");
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    cr_assert(dm_membership_address_known(net->m[0], net->addr[2]));
    cr_assert(!dm_membership_address_known(net->m[0], evil));
    /* an address whose key is another node's: dropped whole */
    strcpy(u->address, net->addr[1]);
    u->incarnation = 8;
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    cr_assert_eq(dm_membership_incarnation_of(net->m[0], net->id[2]), 7);
    free(msg);
    /* node 2's own record may move it */
    msg = s_msg(net, DM_SWIM_GOSSIP, 2);
    strcpy(msg->sender.address, evil);
    msg->sender.incarnation = 9;
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[2], msg, net->now), DM_OK);
    cr_assert(dm_membership_address_known(net->m[0], evil));
    free(msg);
    s_free(net);
}

Test(membership, forged_accusers_confirm_nothing)
{
    net_t *net = s_net(6, NULL, 28);
    s_full_mesh(net);
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_GOSSIP, 1);
    s_upd(net, msg, 5, DM_MEMBER_SUSPECT, 0);
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    int64_t deadline = dm_membership_suspicion_deadline(net->m[0], net->id[5]);
    cr_assert_gt(deadline, 0);
    /* node 1 names nodes 2, 3, 4 and outsiders as further accusers */
    for (int k = 0; k < 8; k++) {
        msg->n_updates = 0;
        dm_swim_update_t *u = s_upd(net, msg, 5, DM_MEMBER_SUSPECT, 0);
        u->has_from = true;
        if (k < 3)
            memcpy(u->from, net->id[2 + k], DM_ID_PUBLIC_BYTES);
        else
            memset(u->from, 0x40 + k, DM_ID_PUBLIC_BYTES);
        cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    }
    cr_assert_eq(dm_membership_suspicion_deadline(net->m[0], net->id[5]), deadline);
    /* a real accuser speaking for itself does count */
    free(msg);
    msg = s_msg(net, DM_SWIM_GOSSIP, 2);
    s_upd(net, msg, 5, DM_MEMBER_SUSPECT, 0);
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[2], msg, net->now), DM_OK);
    cr_assert_lt(dm_membership_suspicion_deadline(net->m[0], net->id[5]), deadline);
    free(msg);
    s_free(net);
}

Test(membership, ping_req_is_served_only_for_members_at_the_address_we_hold)
{
    net_t *net = s_net(3, NULL, 29);
    s_full_mesh(net);
    (void)s_drain(net, net->m[0], 0, NULL);
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_PING_REQ, 1);
    uint8_t nobody[DM_ID_PUBLIC_BYTES];
    s_id(99, nobody);
    for (int k = 0; k < 1000; k++) {
        nobody[0] = (uint8_t)k;
        nobody[1] = (uint8_t)(k >> 8);
        memcpy(msg->target_id, nobody, DM_ID_PUBLIC_BYTES);
        char ep[64];
        snprintf(ep, sizeof ep, "tcp://10.1.%d.%d:7000", k >> 8, k & 255);
        cr_assert_eq(dm_address_format(nobody, ep, msg->target_address, DM_ADDRESS_MAX), DM_OK);
        cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    }
    cr_assert_eq(s_drain(net, net->m[0], DM_SWIM_PING, NULL), 0, "pinged a made-up target");
    /* a member as target, with a made-up address: pinged where we know it */
    memcpy(msg->target_id, net->id[2], DM_ID_PUBLIC_BYTES);
    cr_assert_eq(dm_address_format(net->id[2], "tcp://10.66.0.1:9", msg->target_address,
                                   DM_ADDRESS_MAX), DM_OK);
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    int to_known = 0, anywhere = 0;
    while (dm_membership_next_outgoing(net->m[0], &net->out))
        if (net->out.msg.type == DM_SWIM_PING) {
            anywhere++;
            to_known += strcmp(net->out.to, net->addr[2]) == 0;
        }
    cr_assert_eq(anywhere, 1);
    cr_assert_eq(to_known, 1);
    free(msg);
    s_free(net);
}

Test(membership, joins_from_fresh_keys_are_rate_limited)
{
    net_t *net = s_net(1, NULL, 30);
    dm_swim_msg_t *msg = calloc(1, sizeof *msg);
    msg->type = DM_SWIM_JOIN;
    int admitted = 0;
    for (int k = 0; k < 1000; k++) {
        s_id(1000 + k, msg->sender.id);
        msg->sender.id[0] = (uint8_t)k;
        msg->sender.id[1] = (uint8_t)(k >> 8);
        cr_assert_eq(dm_address_format(msg->sender.id, "tcp://10.2.0.1:7000",
                                       msg->sender.address, DM_ADDRESS_MAX), DM_OK);
        admitted += dm_membership_receive(net->m[0], msg->sender.id, msg, net->now) == DM_OK;
    }
    cr_assert_eq(admitted, DM_MEMBERSHIP_JOIN_BURST);
    cr_assert_eq(dm_membership_count(net->m[0]), DM_MEMBERSHIP_JOIN_BURST);
    net->now += 1000; /* one more second: the rate's worth more */
    admitted = 0;
    for (int k = 1000; k < 2000; k++) {
        msg->sender.id[0] = (uint8_t)k;
        msg->sender.id[1] = (uint8_t)(k >> 8);
        cr_assert_eq(dm_address_format(msg->sender.id, "tcp://10.2.0.1:7000",
                                       msg->sender.address, DM_ADDRESS_MAX), DM_OK);
        admitted += dm_membership_receive(net->m[0], msg->sender.id, msg, net->now) == DM_OK;
    }
    cr_assert_eq(admitted, DM_MEMBERSHIP_JOIN_RATE_PER_S);
    free(msg);
    s_free(net);
}

Test(membership, a_mesh_that_left_together_reforms_through_its_departed_members)
{
    net_t *net = s_net(3, NULL, 31);
    s_full_mesh(net);
    s_run(net, 1000);
    for (int i = 0; i < 3; i++)
        dm_membership_leave(net->m[i], net->now);
    s_run(net, 1000);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (i != j)
                cr_assert_eq(s_state(net, i, j), DM_MEMBER_LEFT);
    /* restart all: each knows only the others' departed addresses, as
     * gossip.c gives them back from the saved list, and joins through them */
    for (int i = 0; i < 3; i++) {
        dm_membership_destroy(&net->m[i]);
        s_start(net, i, NULL, 700);
        dm_membership_set_incarnation(net->m[i], 1);
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (i != j)
                dm_membership_join(net->m[i], net->addr[j], net->now);
    s_run(net, 3000);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(dm_membership_count_live(net->m[i]), 2, "node %d sees %zu", i,
                     dm_membership_count_live(net->m[i]));
    s_free(net);
}

Test(membership, a_knock_from_a_member_is_admission_only_not_a_member_list)
{
    net_t *net = s_net(3, NULL, 32);
    s_full_mesh(net);
    (void)s_drain(net, net->m[0], 0, NULL);
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_JOIN, 1);
    msg->seq = 1; /* DM_MEMBERSHIP_KNOCK_SEQ: "know me", as after a relayed ack */
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    cr_assert_eq(s_drain(net, net->m[0], DM_SWIM_SYNC, NULL), 0);
    msg->seq = 0; /* a real join gets the list */
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    cr_assert_eq(s_drain(net, net->m[0], DM_SWIM_SYNC, NULL), 1);
    free(msg);
    s_free(net);
}

Test(membership, a_members_dead_plus_our_own_failed_probe_is_a_death_at_once)
{
    net_t *net = s_net(4, NULL, 33);
    s_full_mesh(net);
    s_run(net, 1000);
    s_crash(net, 3);
    /* node 1 declares node 3 dead to node 0, which has not noticed yet */
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_GOSSIP, 1);
    s_upd(net, msg, 3, DM_MEMBER_DEAD, 0);
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    cr_assert_eq(s_state(net, 0, 3), DM_MEMBER_SUSPECT);
    int64_t heard = net->now;
    while (s_state(net, 0, 3) != DM_MEMBER_DEAD && net->now - heard < 10000)
        s_run(net, STEP_MS);
    cr_assert_eq(s_state(net, 0, 3), DM_MEMBER_DEAD);
    /* one probe of its own (re-probed at once), not a whole suspicion timeout */
    cr_assert_lt(net->now - heard, 4 * DM_MEMBERSHIP_PROBE_INTERVAL_MS, "took %lld ms",
                 (long long)(net->now - heard));
    free(msg);
    s_free(net);
}

/* ---- what one member may cost the others (issue 7) ---- */

/* Appends update k of a fresh member nobody knows, alive. */
static void s_fresh(dm_swim_msg_t *msg, int k)
{
    dm_swim_update_t *u = &msg->updates[msg->n_updates++];
    memset(u, 0, sizeof *u);
    s_id(5000, u->id);
    u->id[0] = (uint8_t)k;
    u->id[1] = (uint8_t)(k >> 8);
    u->id[2] = (uint8_t)(k >> 16);
    cr_assert_eq(dm_address_format(u->id, "tcp://10.3.0.1:7000", u->address, DM_ADDRESS_MAX),
                 DM_OK);
    strcpy(u->domain, "x");
    u->state = DM_MEMBER_ALIVE;
}

/* Sends count messages of fresh members (DM_SWIM_MAX_UPDATES each) from node
 * `from` to node 0; returns how many node 0 now holds. */
static size_t s_flood(net_t *net, dm_swim_type type, int from, int first, int count)
{
    dm_swim_msg_t *msg = s_msg(net, type, from);
    for (int i = 0; i < count; i++) {
        msg->n_updates = 0;
        for (int k = 0; k < DM_SWIM_MAX_UPDATES; k++)
            s_fresh(msg, first + i * DM_SWIM_MAX_UPDATES + k);
        cr_assert_eq(dm_membership_receive(net->m[0], net->id[from], msg, net->now), DM_OK);
    }
    free(msg);
    return dm_membership_count(net->m[0]);
}

Test(membership, an_unsolicited_sync_is_rate_limited_like_gossip)
{
    net_t *net = s_net(3, NULL, 40);
    s_full_mesh(net);
    /* a member (not a seed we joined through) sends SYNC pages at once */
    size_t n = s_flood(net, DM_SWIM_SYNC, 1, 0, 200);
    cr_assert_leq(n, 3 + DM_MEMBERSHIP_INTRO_SENDER_BURST, "unsolicited SYNC filled %zu", n);
    /* even a seed's SYNC is a list we asked for only with our JOIN's seq */
    dm_membership_join(net->m[0], net->addr[2], net->now);
    dm_membership_tick(net->m[0], net->now);
    cr_assert_eq(s_drain(net, net->m[0], DM_SWIM_JOIN, net->addr[2]), 1);
    size_t before = dm_membership_count(net->m[0]);
    n = s_flood(net, DM_SWIM_SYNC, 2, 100000, 200); /* seq 0: not our JOIN's */
    cr_assert_leq(n - before, DM_MEMBERSHIP_INTRO_SENDER_BURST, "seed SYNC with a wrong seq");
    s_free(net);
}

Test(membership, a_sync_we_asked_for_is_not_limited)
{
    net_t *net = s_net(2, NULL, 41);
    dm_membership_join(net->m[0], net->addr[1], net->now);
    dm_membership_tick(net->m[0], net->now);
    uint32_t seq = 0;
    int joins = 0;
    while (dm_membership_next_outgoing(net->m[0], &net->out))
        if (net->out.msg.type == DM_SWIM_JOIN) {
            seq = net->out.msg.seq;
            joins++;
        }
    cr_assert_eq(joins, 1);
    cr_assert_neq(seq, DM_MEMBERSHIP_KNOCK_SEQ);
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_SYNC, 1);
    msg->seq = seq;
    for (int i = 0; i < 100; i++) { /* 3,200 entries: more than any rate allows */
        msg->n_updates = 0;
        for (int k = 0; k < DM_SWIM_MAX_UPDATES; k++)
            s_fresh(msg, i * DM_SWIM_MAX_UPDATES + k);
        cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    }
    cr_assert_eq(dm_membership_count(net->m[0]), 1 + 100 * DM_SWIM_MAX_UPDATES);
    /* long after the join, the same seed's SYNC is only gossip */
    net->now += DM_MEMBERSHIP_SYNC_WINDOW_MS + 1;
    size_t before = dm_membership_count(net->m[0]);
    msg->n_updates = 0;
    for (int i = 0; i < 100; i++) {
        msg->n_updates = 0;
        for (int k = 0; k < DM_SWIM_MAX_UPDATES; k++)
            s_fresh(msg, 100000 + i * DM_SWIM_MAX_UPDATES + k);
        cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    }
    cr_assert_leq(dm_membership_count(net->m[0]) - before, DM_MEMBERSHIP_INTRO_SENDER_BURST);
    free(msg);
    s_free(net);
}

Test(membership, one_members_fake_gossip_does_not_starve_others_introductions)
{
    net_t *net = s_net(3, NULL, 42);
    s_full_mesh(net);
    /* member 1 gossips 4,096 fresh members at once: more than the node takes */
    (void)s_flood(net, DM_SWIM_GOSSIP, 1, 0, 128);
    /* member 2 (a seed telling of a join) still gets its news through */
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_GOSSIP, 2);
    s_fresh(msg, 900000);
    size_t before = dm_membership_count(net->m[0]);
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[2], msg, net->now), DM_OK);
    cr_assert_eq(dm_membership_count(net->m[0]), before + 1,
                 "member 2's introduction was refused");
    free(msg);
    s_free(net);
}

Test(membership, a_members_repeated_joins_get_one_member_list)
{
    net_t *net = s_net(2, NULL, 43);
    s_full_mesh(net);
    for (int k = 0; k < 4000; k++) { /* a large table */
        dm_swim_msg_t *m1 = calloc(1, sizeof *m1);
        s_fresh(m1, k);
        dm_member_t mb = {.address = m1->updates[0].address, .domain = "x",
                          .state = DM_MEMBER_ALIVE};
        memcpy(mb.id, m1->updates[0].id, DM_ID_PUBLIC_BYTES);
        cr_assert_eq(dm_membership_add_known(net->m[0], &mb, net->now), DM_OK);
        free(m1);
    }
    (void)s_drain(net, net->m[0], 0, NULL);
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_JOIN, 1);
    int lists = 0;
    for (int i = 0; i < 20; i++) {
        msg->seq = 100 + (uint32_t)i; /* any seq but the knock's */
        cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
        lists += s_drain(net, net->m[0], DM_SWIM_SYNC, net->addr[1]) > 0;
        net->now += 100;
    }
    cr_assert_eq(lists, 1, "20 JOINs from a member got %d member lists", lists);
    /* after the resync interval it may have one again */
    net->now += DM_MEMBERSHIP_RESYNC_MS;
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    cr_assert_gt(s_drain(net, net->m[0], DM_SWIM_SYNC, net->addr[1]), 0);
    free(msg);
    s_free(net);
}

Test(membership, an_ack_counts_only_from_the_target_or_a_chosen_helper)
{
    dm_membership_config_t cfg;
    dm_membership_config_default(&cfg);
    cfg.indirect_k = 0; /* no helpers: every relayed ack is forged */
    net_t *net = s_net(4, &cfg, 44);
    s_full_mesh(net);
    s_run(net, 1000);
    s_crash(net, 3);
    dm_membership_t *m0 = net->m[0];
    dm_swim_msg_t *ack = s_msg(net, DM_SWIM_ACK, 1);
    for (int64_t end = net->now + 30000; net->now < end && s_state(net, 0, 3) != DM_MEMBER_DEAD;) {
        s_run(net, STEP_MS);
        /* member 1 answers every indirect probe of node 3 for it */
        if (m0->probing && m0->probe_indirect &&
            memcmp(m0->probe_target, net->id[3], DM_ID_PUBLIC_BYTES) == 0) {
            ack->seq = m0->probe_seq;
            ack->sender.incarnation = dm_membership_incarnation(net->m[1]);
            cr_assert_eq(dm_membership_receive(m0, net->id[1], ack, net->now), DM_OK);
        }
    }
    cr_assert_eq(s_state(net, 0, 3), DM_MEMBER_DEAD, "forged acks kept a dead node alive");
    free(ack);
    s_free(net);
}

Test(membership, a_forwarded_ping_is_answered_only_by_its_target)
{
    net_t *net = s_net(4, NULL, 45);
    s_full_mesh(net);
    (void)s_drain(net, net->m[0], 0, NULL);
    /* node 1 asks node 0 to ping node 3 */
    dm_swim_msg_t *req = s_msg(net, DM_SWIM_PING_REQ, 1);
    req->seq = 77;
    memcpy(req->target_id, net->id[3], DM_ID_PUBLIC_BYTES);
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], req, net->now), DM_OK);
    cr_assert_eq(net->m[0]->nfwd, 1);
    uint32_t fseq = net->m[0]->fwd[0].seq;
    (void)s_drain(net, net->m[0], 0, NULL);
    /* node 2 (not the target) answers the forwarded ping */
    dm_swim_msg_t *ack = s_msg(net, DM_SWIM_ACK, 2);
    ack->seq = fseq;
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[2], ack, net->now), DM_OK);
    cr_assert_eq(s_drain(net, net->m[0], DM_SWIM_ACK, net->addr[1]), 0,
                 "an ack from a non-target was relayed");
    /* the target's own ack is */
    dm_swim_msg_t *real = s_msg(net, DM_SWIM_ACK, 3);
    real->seq = fseq;
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[3], real, net->now), DM_OK);
    cr_assert_eq(s_drain(net, net->m[0], DM_SWIM_ACK, net->addr[1]), 1);
    free(real);
    free(ack);
    free(req);
    s_free(net);
}
