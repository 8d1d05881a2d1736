/* membership_state.c: the transitions every input of the SWIM machine ends
 * in (a member's state, suspicion and its confirmations, refutation, the
 * local health multiplier, events to the owner). membership.c (timers)
 * and membership_in.c (messages) call down into these; they call only the
 * table, the shared pieces of membership_view.c and the outgoing queue
 * (membership_out.c). */
#include <math.h>
#include <string.h>

#include "membership/membership_priv.h"

void dm_membership__emit(dm_membership_t *m, dm_membership_event ev, uint32_t idx, int64_t now)
{
    if (!m->on_event)
        return;
    char addr[DM_ADDRESS_MAX];
    dm_member_t v;
    dm_membership__member_view(m, idx, addr, &v);
    m->on_event(m->on_event_ctx, ev, &v, now);
}

void dm_membership__lhm_delta(dm_membership_t *m, int delta)
{
    int v = (int)m->lhm + delta;
    if (v < 0)
        v = 0;
    if (v > (int)m->cfg.max_lhm - 1)
        v = (int)m->cfg.max_lhm - 1;
    m->lhm = (unsigned)v;
}

/* Saturates: a claim at UINT64_MAX is met at UINT64_MAX, where our own
 * word still wins at every node that hears from us (dm_membership__apply_own). */
void dm_membership__refute(dm_membership_t *m, uint64_t inc)
{
    if (inc >= m->self_inc)
        m->self_inc = inc == UINT64_MAX ? UINT64_MAX : inc + 1;
    dm_membership__bcast(m, m->self_id, NULL);
    dm_membership__lhm_delta(m, 1); /* being suspected hints that we are the slow one */
}

/* Moves member idx to state st, keeping n_live and the timers right. */
void dm_membership__set_state(dm_membership_t *m, uint32_t idx, dm_member_state st, int64_t now)
{
    dm_membership__member_t *e = &m->mem[idx];
    if (dm_membership__live(e->state) && !dm_membership__live((uint8_t)st))
        m->n_live--;
    else if (!dm_membership__live(e->state) && dm_membership__live((uint8_t)st))
        m->n_live++;
    e->state = (uint8_t)st;
    e->doubt = 0;
    if (st == DM_MEMBER_ALIVE) {
        dm_membership__aux_put(m, idx);
        return;
    }
    dm_membership__aux_put(m, idx); /* a fresh timer for the new state */
    uint32_t a = dm_membership__aux_get(m, idx);
    if (a != DM_MEMBERSHIP_NO_AUX)
        m->aux[a].since = now;
}


void dm_membership__start_suspicion(dm_membership_t *m, uint32_t idx, const uint8_t *accuser,
                           bool evidence, int64_t now)
{
    dm_membership__set_state(m, idx, DM_MEMBER_SUSPECT, now);
    uint32_t a = m->mem[idx].aux;
    if (a == DM_MEMBERSHIP_NO_AUX)
        return;
    dm_membership__aux_t *x = &m->aux[a];
    size_t n = dm_membership__n(m);
    double lg = n > 10 ? log10((double)n) : 1.0;
    x->min_ms = (int64_t)((double)m->cfg.suspicion_mult * lg * (double)m->cfg.probe_interval_ms);
    x->max_ms = x->min_ms * (int64_t)m->cfg.suspicion_max_mult;
    unsigned k = m->cfg.suspicion_mult > 2 ? m->cfg.suspicion_mult - 2 : 0;
    if (k > DM_MEMBERSHIP_MAX_ACCUSERS - 1)
        k = DM_MEMBERSHIP_MAX_ACCUSERS - 1;
    /* Too few members to ever confirm: do not wait for them. */
    if (n < (size_t)k + 2)
        k = 0;
    x->k = k;
    x->evidence = evidence;
    if (accuser) {
        memcpy(x->accusers[0], accuser, DM_ID_PUBLIC_BYTES);
        x->n_accusers = 1;
    }
}

bool dm_membership__confirm(dm_membership_t *m, uint32_t idx, const uint8_t *accuser)
{
    uint32_t a = m->mem[idx].aux;
    if (a == DM_MEMBERSHIP_NO_AUX || !accuser)
        return false;
    dm_membership__aux_t *x = &m->aux[a];
    if (x->confirmations >= x->k)
        return false;
    for (unsigned i = 0; i < x->n_accusers; i++)
        if (memcmp(x->accusers[i], accuser, DM_ID_PUBLIC_BYTES) == 0)
            return false;
    if (x->n_accusers < DM_MEMBERSHIP_MAX_ACCUSERS)
        memcpy(x->accusers[x->n_accusers++], accuser, DM_ID_PUBLIC_BYTES);
    x->confirmations++;
    return true;
}

void dm_membership__want_probe(dm_membership_t *m, uint32_t idx)
{
    if (m->reprobe || (m->probing && memcmp(m->probe_target, m->mem[idx].id,
                                            DM_ID_PUBLIC_BYTES) == 0))
        return;
    m->reprobe = true;
    memcpy(m->reprobe_id, m->mem[idx].id, DM_ID_PUBLIC_BYTES);
}

/* The suspicion of idx ran out and our own probes failed too: dead. */
void dm_membership__declare_dead(dm_membership_t *m, uint32_t idx, int64_t now)
{
    dm_membership__set_state(m, idx, DM_MEMBER_DEAD, now);
    dm_membership__bcast(m, m->mem[idx].id, NULL);
    dm_membership__emit(m, DM_MEMBERSHIP_EV_DEAD, idx, now);
}
