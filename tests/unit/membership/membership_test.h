/* membership_test.h: the in-process network the membership tests share:
 * several machines, messages delivered by hand through the wire encoding,
 * time advanced by hand. */
#ifndef DM_TEST_MEMBERSHIP_H
#define DM_TEST_MEMBERSHIP_H

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membership/membership.h"
#include "proto/membership.pb-c.h"
#include "membership/membership_priv.h" /* the probe state, for the forged-ack test */

#define S_UNUSED __attribute__((unused))

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

S_UNUSED static void s_id(int i, uint8_t id[DM_ID_PUBLIC_BYTES])
{
    for (int b = 0; b < DM_ID_PUBLIC_BYTES; b++)
        id[b] = (uint8_t)(i * 37 + b * 11 + 1);
}

S_UNUSED static int s_index(net_t *net, const uint8_t *id)
{
    for (int i = 0; i < net->n; i++)
        if (memcmp(net->id[i], id, DM_ID_PUBLIC_BYTES) == 0)
            return i;
    return -1;
}

S_UNUSED static void s_on_event(void *ctx, dm_membership_event ev, const dm_member_t *mem, int64_t now)
{
    obs_t *o = ctx;
    int j = s_index(o->net, mem->id);
    if (j < 0)
        return;
    if (!o->net->events[o->self][ev][j]++)
        o->net->first_event_at[o->self][ev][j] = now;
}

S_UNUSED static void s_start(net_t *net, int i, const dm_membership_config_t *cfg, uint64_t seed)
{
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://10.0.0.%d:7000", i + 1);
    s_id(i, net->id[i]);
    cr_assert_eq(dm_identity_address_format(net->id[i], ep, net->addr[i], DM_ADDRESS_MAX, NULL), DM_OK);
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

S_UNUSED static net_t *s_net(int n, const dm_membership_config_t *cfg, uint64_t seed)
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
S_UNUSED static void s_full_mesh(net_t *net)
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

S_UNUSED static void s_free(net_t *net)
{
    for (int i = 0; i < net->n; i++)
        dm_membership_destroy(&net->m[i]);
    free(net);
}

/* Delivers everything queued (and what the answers queue) through the wire
 * encoding, dropping what goes to or from a crashed node or a cut link. */
S_UNUSED static void s_deliver(net_t *net)
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
                          dm_err_str(rc));
            }
        }
    }
}

S_UNUSED static void s_run(net_t *net, int64_t ms)
{
    for (int64_t end = net->now + ms; net->now < end;) {
        net->now += STEP_MS;
        for (int i = 0; i < net->n; i++)
            if (!net->down[i] && dm_membership_next_deadline(net->m[i]) <= net->now)
                dm_membership_tick(net->m[i], net->now);
        s_deliver(net);
    }
}

S_UNUSED static void s_crash(net_t *net, int i)
{
    net->down[i] = true;
    dm_swim_out_t *o = &net->out;
    while (dm_membership_next_outgoing(net->m[i], o))
        ;
}

S_UNUSED static dm_member_state s_state(net_t *net, int observer, int subject)
{
    return dm_membership_state_of(net->m[observer], net->id[subject]);
}


#endif
