/* membership_out.c: what a membership machine sends. Messages wait in a
 * queue as intentions (type, destination, target); their piggyback is
 * chosen when the caller takes them, so it holds the freshest facts. */
#include <stdlib.h>
#include <string.h>

#include "membership/membership_priv.h"
#include "base/array.h"

/* Room for one more outgoing message; NULL on out of memory (the message
 * is dropped, as the network might have). */
dm_membership__out_t *dm_membership__out_push(dm_membership_t *m)
{
    if (m->out_head == m->nout)
        m->out_head = m->nout = 0;
    if (m->nout == m->outcap) {
        if (m->out_head > 0) {
            memmove(m->out, m->out + m->out_head, (m->nout - m->out_head) * sizeof *m->out);
            m->nout -= m->out_head;
            m->out_head = 0;
        } else {
            if (!dm_array_reserve(&m->out, &m->outcap, m->nout + 1, sizeof *m->out, 8))
                return NULL;
        }
    }
    dm_membership__out_t *o = &m->out[m->nout++];
    memset(o, 0, offsetof(dm_membership__out_t, to));
    o->to[0] = 0;
    o->target_address[0] = 0;
    o->carry = false;
    o->sync_ids = NULL;
    o->sync_n = o->sync_pos = 0;
    return o;
}

dm_membership__out_t *dm_membership__out_to_member(dm_membership_t *m, dm_swim_type type, uint32_t seq,
                                    const uint8_t id[DM_ID_PUBLIC_BYTES])
{
    dm_membership__out_t *o = dm_membership__out_push(m);
    if (o) {
        o->type = type;
        o->seq = seq;
        o->has_to_id = true;
        memcpy(o->to_id, id, DM_ID_PUBLIC_BYTES);
    }
    return o;
}

/* Queues the current record of id for piggybacking, replacing an older
 * entry about the same member (its count starts again: it is new news). */
void dm_membership__bcast(dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES],
                    const uint8_t *from)
{
    dm_membership__bcast_t *b = NULL;
    for (size_t i = 0; i < m->nbcast && !b; i++)
        if (memcmp(m->bcast[i].id, id, DM_ID_PUBLIC_BYTES) == 0)
            b = &m->bcast[i];
    if (!b) {
        if (m->nbcast == DM_MEMBERSHIP_MAX_BCAST) {
            /* full: drop the most sent */
            size_t worst = 0;
            for (size_t i = 1; i < m->nbcast; i++)
                if (m->bcast[i].transmits > m->bcast[worst].transmits)
                    worst = i;
            b = &m->bcast[worst];
        } else {
            if (!dm_array_reserve(&m->bcast, &m->bcastcap, m->nbcast + 1, sizeof *m->bcast, 8))
                return;
            b = &m->bcast[m->nbcast++];
        }
    }
    memcpy(b->id, id, DM_ID_PUBLIC_BYTES);
    b->has_from = from != NULL;
    if (from)
        memcpy(b->from, from, DM_ID_PUBLIC_BYTES);
    b->transmits = 0;
}

/* The update that describes member id now (self included); false if id is
 * no longer known. */
bool dm_membership__make_update(const dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES],
                          const uint8_t *from, dm_swim_update_t *u)
{
    if (memcmp(id, m->self_id, DM_ID_PUBLIC_BYTES) == 0) {
        memcpy(u->id, id, DM_ID_PUBLIC_BYTES);
        strcpy(u->address, m->self_address);
        strcpy(u->domain, m->self_domain);
        u->state = m->leaving ? DM_MEMBER_LEFT : DM_MEMBER_ALIVE;
        u->incarnation = m->self_inc;
        u->has_from = false;
        return true;
    }
    uint32_t idx = dm_membership__find(m, id);
    if (idx == DM_MEMBERSHIP_NONE)
        return false;
    const dm_membership__member_t *e = &m->mem[idx];
    memcpy(u->id, id, DM_ID_PUBLIC_BYTES);
    dm_membership__address(m, idx, u->address);
    strcpy(u->domain, dm_membership__domain(m, idx));
    u->state = (dm_member_state)e->state;
    u->incarnation = e->inc;
    u->has_from = e->state == DM_MEMBER_SUSPECT && from != NULL;
    if (u->has_from)
        memcpy(u->from, from, DM_ID_PUBLIC_BYTES);
    return true;
}

/* Fills msg's piggyback from the broadcast queue, fewest sends first,
 * within the entry and byte budgets; drops updates sent often enough. */
static void s_fill_piggyback(dm_membership_t *m, dm_swim_msg_t *msg, const uint8_t *skip_id)
{
    size_t used = 0;
    for (size_t i = 0; i < msg->n_updates; i++)
        used += dm_membership__update_wire_size(&msg->updates[i]);
    /* insertion sort by transmits: the queue is short and nearly sorted */
    for (size_t i = 1; i < m->nbcast; i++) {
        dm_membership__bcast_t t = m->bcast[i];
        size_t j = i;
        for (; j > 0 && m->bcast[j - 1].transmits > t.transmits; j--)
            m->bcast[j] = m->bcast[j - 1];
        m->bcast[j] = t;
    }
    unsigned limit = dm_membership_retransmit_limit(m);
    for (size_t i = 0; i < m->nbcast && msg->n_updates < m->cfg.max_updates_per_msg; i++) {
        dm_membership__bcast_t *b = &m->bcast[i];
        if (skip_id && memcmp(b->id, skip_id, DM_ID_PUBLIC_BYTES) == 0)
            continue;
        dm_swim_update_t *u = &msg->updates[msg->n_updates];
        if (!dm_membership__make_update(m, b->id, b->has_from ? b->from : NULL, u)) {
            b->transmits = limit; /* forgotten member: drop the entry */
            continue;
        }
        size_t sz = dm_membership__update_wire_size(u);
        if (used + sz > m->cfg.max_piggyback_bytes)
            continue;
        used += sz;
        msg->n_updates++;
        b->transmits++;
    }
    size_t w = 0;
    for (size_t i = 0; i < m->nbcast; i++)
        if (m->bcast[i].transmits < limit)
            m->bcast[w++] = m->bcast[i];
    m->nbcast = w;
}

static void s_self_update(const dm_membership_t *m, dm_swim_update_t *u)
{
    (void)dm_membership__make_update(m, m->self_id, NULL, u);
}

/* One SYNC message from the snapshot in o; true when o is finished. */
static bool s_fill_sync(dm_membership_t *m, dm_membership__out_t *o, dm_swim_msg_t *msg)
{
    size_t used = 0;
    while (o->sync_pos < o->sync_n && msg->n_updates < DM_SWIM_MAX_UPDATES) {
        dm_swim_update_t *u = &msg->updates[msg->n_updates];
        if (!dm_membership__make_update(m, o->sync_ids[o->sync_pos], NULL, u)) {
            o->sync_pos++;
            continue;
        }
        size_t sz = dm_membership__update_wire_size(u);
        if (used + sz > DM_MEMBERSHIP_SYNC_MAX_BYTES && msg->n_updates > 0)
            break;
        used += sz;
        msg->n_updates++;
        o->sync_pos++;
    }
    return o->sync_pos >= o->sync_n;
}

bool dm_membership_next_outgoing(dm_membership_t *m, dm_swim_out_t *out)
{
    while (m->out_head < m->nout) {
        dm_membership__out_t *o = &m->out[m->out_head];
        if (o->to[0])
            strcpy(out->to, o->to);
        else {
            uint32_t idx = o->has_to_id ? dm_membership__find(m, o->to_id) : DM_MEMBERSHIP_NONE;
            if (idx == DM_MEMBERSHIP_NONE) {
                free(o->sync_ids);
                m->out_head++;
                continue;
            }
            dm_membership__address(m, idx, out->to);
        }
        out->has_to_id = o->has_to_id;
        memcpy(out->to_id, o->to_id, DM_ID_PUBLIC_BYTES);
        dm_swim_msg_t *msg = &out->msg;
        msg->type = o->type;
        msg->seq = o->seq;
        s_self_update(m, &msg->sender);
        memcpy(msg->target_id, o->target_id, DM_ID_PUBLIC_BYTES);
        strcpy(msg->target_address, o->target_address);
        msg->n_updates = 0;
        if (o->type == DM_SWIM_SYNC) {
            if (s_fill_sync(m, o, msg)) {
                free(o->sync_ids);
                m->out_head++;
            }
            return true;
        }
        m->out_head++;
        const uint8_t *skip = NULL;
        if (o->carry && dm_membership__make_update(m, o->carry_id, NULL, &msg->updates[0])) {
            /* news told directly (a join, our leave, its own death) */
            msg->n_updates = 1;
            skip = o->carry_id;
        } else if (o->has_to_id && o->type == DM_SWIM_PING) {
            /* Lifeguard's buddy system: tell a member we do not hold alive
             * what we hold, so it can refute at once. */
            uint32_t idx = dm_membership__find(m, o->to_id);
            if (idx != DM_MEMBERSHIP_NONE && m->mem[idx].state != DM_MEMBER_ALIVE) {
                const dm_membership__aux_t *x =
                    m->mem[idx].aux != DM_MEMBERSHIP_NO_AUX ? &m->aux[m->mem[idx].aux] : NULL;
                const uint8_t *from = x && x->n_accusers ? x->accusers[0] : m->self_id;
                if (dm_membership__make_update(m, o->to_id, from, &msg->updates[0])) {
                    msg->n_updates = 1;
                    skip = o->to_id;
                }
            }
        }
        s_fill_piggyback(m, msg, skip);
        if (o->type == DM_SWIM_GOSSIP && msg->n_updates == 0)
            continue;
        return true;
    }
    m->out_head = m->nout = 0;
    return false;
}

unsigned dm_membership_retransmit_limit(const dm_membership_t *m)
{
    /* ceil(log10(N + 1)) is the number of decimal digits of N. */
    unsigned digits = 0;
    for (size_t n = dm_membership__n(m); n; n /= 10)
        digits++;
    return m->cfg.retransmit_mult * digits;
}
