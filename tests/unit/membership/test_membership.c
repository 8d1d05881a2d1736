/* test_membership.c: the SWIM + Lifeguard state machine, driven in-process:
 * joining, probing, suspicion, Lifeguard, piggybacking, the wire form.
 * test_membership_trust.c holds what a message from whom may change. */
#include "membership_test.h"

TestSuite(membership);

Test(membership, config_check_appends_the_bad_setting_to_why)
{
    dm_membership_config_t c;
    dm_membership_config_default(&c);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_membership_config_check(&c, &why), DM_OK);
    cr_assert_eq(why.len, 0);
    c.probe_timeout_ms = c.probe_interval_ms;
    dm_buf_puts(&why, "x; ");
    cr_assert_eq(dm_membership_config_check(&c, &why), DM_ERR_INVALID);
    static const char want[] = "x; membership config: probe_timeout_ms";
    cr_assert(strncmp(why.data, want, sizeof want - 1) == 0, "%s", why.data);
    cr_assert_eq(dm_membership_config_check(&c, NULL), DM_ERR_INVALID);
    dm_buf_free(&why);
}

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
                     dm_membership_state_name(s_state(net, i, 5)));
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
                     dm_membership_state_name(s_state(net, i, 4)));
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
        cr_assert_eq(dm_identity_address_format(u->id, ep, u->address, sizeof u->address, NULL), DM_OK);
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
    cr_assert_eq(dm_identity_address_format(msg->sender.id, "tcp://h1:1", msg->sender.address,
                                   DM_ADDRESS_MAX, NULL), DM_OK);
    strcpy(msg->sender.domain, "commerce");
    msg->sender.incarnation = 5;
    s_id(2, msg->target_id);
    cr_assert_eq(dm_identity_address_format(msg->target_id, "tcp://h2:2", msg->target_address,
                                   DM_ADDRESS_MAX, NULL), DM_OK);
    msg->n_updates = 2;
    s_id(3, msg->updates[0].id);
    strcpy(msg->updates[0].address, "not-a-self-certifying-address");
    msg->updates[0].state = DM_MEMBER_SUSPECT;
    msg->updates[0].incarnation = UINT64_MAX;
    msg->updates[0].has_from = true;
    s_id(4, msg->updates[0].from);
    s_id(5, msg->updates[1].id);
    cr_assert_eq(dm_identity_address_format(msg->updates[1].id, "tcp://[::1]:9", msg->updates[1].address,
                                   DM_ADDRESS_MAX, NULL), DM_OK);
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
