/* membership_view.c: what a membership machine tells its caller about
 * the members, and the two pieces of state the protocol and the views
 * share (a member as the caller sees it; a suspicion's deadline). */
#include <math.h>
#include <string.h>

#include "membership/membership_priv.h"

void dm_membership__member_view(const dm_membership_t *m, uint32_t idx, char *addr, dm_member_t *v)
{
    const dm_membership__member_t *e = &m->mem[idx];
    dm_membership__address(m, idx, addr);
    memcpy(v->id, e->id, DM_ID_PUBLIC_BYTES);
    v->address = addr;
    v->domain = dm_membership__domain(m, idx);
    v->state = (dm_member_state)e->state;
    v->incarnation = e->inc;
    v->last_heard_ms = e->last_heard;
}

int64_t dm_membership__suspicion_deadline(const dm_membership__aux_t *x)
{
    if (x->k == 0 || x->confirmations == 0)
        return x->since + (x->k == 0 ? x->min_ms : x->max_ms);
    /* Lifeguard: from max down to min as log(C+1)/log(K+1). */
    double frac = log((double)x->confirmations + 1.0) / log((double)x->k + 1.0);
    int64_t t = x->max_ms - (int64_t)((double)(x->max_ms - x->min_ms) * frac);
    return x->since + (t < x->min_ms ? x->min_ms : t);
}

size_t dm_membership_count(const dm_membership_t *m) { return m->n; }

size_t dm_membership_count_live(const dm_membership_t *m) { return m->n_live; }

void dm_membership_list(const dm_membership_t *m, dm_membership_each_fn fn, void *ctx)
{
    dm_member_t v;
    memcpy(v.id, m->self_id, DM_ID_PUBLIC_BYTES);
    v.address = m->self_address;
    v.domain = m->self_domain;
    v.state = m->leaving ? DM_MEMBER_LEFT : DM_MEMBER_ALIVE;
    v.incarnation = m->self_inc;
    v.last_heard_ms = 0;
    fn(ctx, &v);
    char addr[DM_ADDRESS_MAX];
    for (size_t i = 0; i < m->n; i++) {
        dm_membership__member_view(m, (uint32_t)i, addr, &v);
        fn(ctx, &v);
    }
}

dm_member_state dm_membership_state_of(const dm_membership_t *m,
                                       const uint8_t id[DM_ID_PUBLIC_BYTES])
{
    if (memcmp(id, m->self_id, DM_ID_PUBLIC_BYTES) == 0)
        return m->leaving ? DM_MEMBER_LEFT : DM_MEMBER_ALIVE;
    uint32_t idx = dm_membership__find(m, id);
    return idx == DM_MEMBERSHIP_NONE ? DM_MEMBER_UNKNOWN : (dm_member_state)m->mem[idx].state;
}

uint64_t dm_membership_incarnation_of(const dm_membership_t *m,
                                      const uint8_t id[DM_ID_PUBLIC_BYTES])
{
    if (memcmp(id, m->self_id, DM_ID_PUBLIC_BYTES) == 0)
        return m->self_inc;
    uint32_t idx = dm_membership__find(m, id);
    return idx == DM_MEMBERSHIP_NONE ? 0 : m->mem[idx].inc;
}

uint64_t dm_membership_incarnation(const dm_membership_t *m) { return m->self_inc; }

unsigned dm_membership_lhm(const dm_membership_t *m) { return m->lhm; }

int64_t dm_membership_probe_interval(const dm_membership_t *m)
{
    return m->cfg.probe_interval_ms * (int64_t)(m->lhm + 1);
}

int64_t dm_membership_probe_timeout(const dm_membership_t *m)
{
    return m->cfg.probe_timeout_ms * (int64_t)(m->lhm + 1);
}

int64_t dm_membership_suspicion_deadline(const dm_membership_t *m,
                                         const uint8_t id[DM_ID_PUBLIC_BYTES])
{
    uint32_t idx = dm_membership__find(m, id);
    if (idx == DM_MEMBERSHIP_NONE || m->mem[idx].state != DM_MEMBER_SUSPECT ||
        m->mem[idx].aux == DM_MEMBERSHIP_NO_AUX)
        return -1;
    return dm_membership__suspicion_deadline(&m->aux[m->mem[idx].aux]);
}

const char *dm_membership_state_name(dm_member_state s)
{
    switch (s) {
    case DM_MEMBER_ALIVE:
        return "alive";
    case DM_MEMBER_SUSPECT:
        return "suspect";
    case DM_MEMBER_DEAD:
        return "dead";
    case DM_MEMBER_LEFT:
        return "left";
    default:
        return "unknown";
    }
}
