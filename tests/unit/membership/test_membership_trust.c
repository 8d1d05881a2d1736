/* test_membership_trust.c: what a membership message from whom may change:
 * strangers, forged facts, floods, and what one member may cost the others
 * (issue 7). The in-process network is membership_test.h. */
#include "membership_test.h"

TestSuite(membership_trust);
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

Test(membership_trust, a_stranger_is_heard_only_through_a_join)
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

Test(membership_trust, a_sender_address_must_carry_the_senders_own_key)
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

Test(membership_trust, a_join_is_answered_only_at_the_joiners_own_address)
{
    net_t *net = s_net(2, NULL, 22);
    dm_swim_msg_t *msg = s_msg(net, DM_SWIM_JOIN, 1);
    cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    cr_assert_eq(s_drain(net, net->m[0], DM_SWIM_SYNC, net->addr[1]), 1);
    free(msg);
    s_free(net);
}

Test(membership_trust, a_third_party_dead_is_only_a_suspicion_the_victim_refutes)
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

Test(membership_trust, a_suspicion_heard_becomes_a_death_only_when_our_own_probes_fail)
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

Test(membership_trust, left_is_believed_only_from_the_member_itself)
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

Test(membership_trust, incarnations_saturate_and_the_victim_still_refutes_at_the_maximum)
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
                         i, dm_membership_state_name(s_state(net, i, 0)));
    }
    for (int i = 1; i < 3; i++)
        cr_assert_eq(net->events[i][DM_MEMBERSHIP_EV_DEAD][0], 0);
    s_free(net);
}

Test(membership_trust, a_third_party_cannot_rewrite_an_address_or_a_domain)
{
    net_t *net = s_net(3, NULL, 27);
    s_full_mesh(net);
    char evil[DM_ADDRESS_MAX];
    cr_assert_eq(dm_identity_address_format(net->id[2], "tcp://10.66.66.66:1", evil, sizeof evil, NULL), DM_OK);
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

Test(membership_trust, forged_accusers_confirm_nothing)
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

Test(membership_trust, ping_req_is_served_only_for_members_at_the_address_we_hold)
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
        cr_assert_eq(dm_identity_address_format(nobody, ep, msg->target_address, DM_ADDRESS_MAX, NULL), DM_OK);
        cr_assert_eq(dm_membership_receive(net->m[0], net->id[1], msg, net->now), DM_OK);
    }
    cr_assert_eq(s_drain(net, net->m[0], DM_SWIM_PING, NULL), 0, "pinged a made-up target");
    /* a member as target, with a made-up address: pinged where we know it */
    memcpy(msg->target_id, net->id[2], DM_ID_PUBLIC_BYTES);
    cr_assert_eq(dm_identity_address_format(net->id[2], "tcp://10.66.0.1:9", msg->target_address,
                                   DM_ADDRESS_MAX, NULL), DM_OK);
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

Test(membership_trust, joins_from_fresh_keys_are_rate_limited)
{
    net_t *net = s_net(1, NULL, 30);
    dm_swim_msg_t *msg = calloc(1, sizeof *msg);
    msg->type = DM_SWIM_JOIN;
    int admitted = 0;
    for (int k = 0; k < 1000; k++) {
        s_id(1000 + k, msg->sender.id);
        msg->sender.id[0] = (uint8_t)k;
        msg->sender.id[1] = (uint8_t)(k >> 8);
        cr_assert_eq(dm_identity_address_format(msg->sender.id, "tcp://10.2.0.1:7000",
                                       msg->sender.address, DM_ADDRESS_MAX, NULL), DM_OK);
        admitted += dm_membership_receive(net->m[0], msg->sender.id, msg, net->now) == DM_OK;
    }
    cr_assert_eq(admitted, DM_MEMBERSHIP_JOIN_BURST);
    cr_assert_eq(dm_membership_count(net->m[0]), DM_MEMBERSHIP_JOIN_BURST);
    net->now += 1000; /* one more second: the rate's worth more */
    admitted = 0;
    for (int k = 1000; k < 2000; k++) {
        msg->sender.id[0] = (uint8_t)k;
        msg->sender.id[1] = (uint8_t)(k >> 8);
        cr_assert_eq(dm_identity_address_format(msg->sender.id, "tcp://10.2.0.1:7000",
                                       msg->sender.address, DM_ADDRESS_MAX, NULL), DM_OK);
        admitted += dm_membership_receive(net->m[0], msg->sender.id, msg, net->now) == DM_OK;
    }
    cr_assert_eq(admitted, DM_MEMBERSHIP_JOIN_RATE_PER_S);
    free(msg);
    s_free(net);
}

Test(membership_trust, a_mesh_that_left_together_reforms_through_its_departed_members)
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

Test(membership_trust, a_knock_from_a_member_is_admission_only_not_a_member_list)
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

Test(membership_trust, a_members_dead_plus_our_own_failed_probe_is_a_death_at_once)
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
    cr_assert_eq(dm_identity_address_format(u->id, "tcp://10.3.0.1:7000", u->address, DM_ADDRESS_MAX, NULL),
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

Test(membership_trust, an_unsolicited_sync_is_rate_limited_like_gossip)
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

Test(membership_trust, a_sync_we_asked_for_is_not_limited)
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

Test(membership_trust, one_members_fake_gossip_does_not_starve_others_introductions)
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

Test(membership_trust, a_members_repeated_joins_get_one_member_list)
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

Test(membership_trust, an_ack_counts_only_from_the_target_or_a_chosen_helper)
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

Test(membership_trust, a_forwarded_ping_is_answered_only_by_its_target)
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
