/* membership_in.c: how far a membership machine believes what it hears,
 * and what it does for whom (JOIN admission, ping-req).
 *
 * SWIM facts are not signed, so what a message may change depends on who
 * says it (docs/membership.md, "Trust"):
 * - a member's own record (the message's sender, authenticated by CURVE)
 *   is its word on its address, domain, incarnation and leaving, and beats
 *   a suspicion or a death at the same incarnation (it evidently lives);
 * - a third party's word can introduce a member (rate-limited), raise a
 *   known member's incarnation (by at most DM_MEMBERSHIP_MAX_INC_JUMP),
 *   and start or confirm a suspicion; its DEAD and LEFT are suspicions too,
 *   which turn into a death only when this node's own probes fail;
 * - nobody but the member rewrites its address or domain, and every
 *   address must be "HEX(id)@endpoint" for the id it is given for. */
#include <stdlib.h>
#include <string.h>

#include "membership/membership_priv.h"
#include "base/hex.h"

bool dm_membership__address_id(const char *address, uint8_t id[DM_ID_PUBLIC_BYTES])
{
    if (!dm_hex_decode(address, DM_ID_PUBLIC_BYTES, id))
        return false;
    return address[2 * DM_ID_PUBLIC_BYTES] == '@';
}

bool dm_membership__address_bound(const uint8_t id[DM_ID_PUBLIC_BYTES], const char *address)
{
    const char *ep = dm_membership__short_address(id, address);
    return ep && strncmp(ep, "tcp://", 6) == 0;
}

/* Adds what b earned since it was last used (rate per second, burst at
 * most; a new bucket starts full); true if it holds a whole token. */
static bool s_refill(dm_membership__bucket_t *b, double rate_per_s, double burst, int64_t now)
{
    if (!b->started) {
        b->started = true;
        b->tokens = burst;
    } else if (now > b->last_ms) {
        b->tokens += (double)(now - b->last_ms) * rate_per_s / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
    }
    b->last_ms = now;
    return b->tokens >= 1.0;
}

/* Takes one token from b (rate per second, burst at most); false if none. */
static bool s_take(dm_membership__bucket_t *b, double rate_per_s, double burst, int64_t now)
{
    if (!s_refill(b, rate_per_s, burst, now))
        return false;
    b->tokens -= 1.0;
    return true;
}

/* The introduction bucket of member id, made (in place of the least
 * recently used one when all DM_MEMBERSHIP_INTRO_SENDERS are taken) if
 * it has none. Never NULL. */
static dm_membership__bucket_t *s_introducer(dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES],
                                    int64_t now)
{
    size_t lru = 0;
    for (size_t i = 0; i < m->nintroducers; i++) {
        dm_membership__introducer_t *x = &m->introducers[i];
        if (memcmp(x->id, id, DM_ID_PUBLIC_BYTES) == 0) {
            x->used_ms = now;
            return &x->bucket;
        }
        if (x->used_ms < m->introducers[lru].used_ms)
            lru = i;
    }
    size_t i = m->nintroducers < DM_MEMBERSHIP_INTRO_SENDERS ? m->nintroducers++ : lru;
    dm_membership__introducer_t *x = &m->introducers[i];
    memset(x, 0, sizeof *x);
    memcpy(x->id, id, DM_ID_PUBLIC_BYTES);
    x->used_ms = now;
    return &x->bucket;
}

/* True (and both charged) if member sender may introduce one more member:
 * within its own bucket and the node-wide one, so one member cannot use up
 * what others' introductions need. */
static bool s_intro_allowed(dm_membership_t *m, const uint8_t sender[DM_ID_PUBLIC_BYTES],
                            int64_t now)
{
    dm_membership__bucket_t *own = s_introducer(m, sender, now);
    bool ok = s_refill(own, DM_MEMBERSHIP_INTRO_SENDER_RATE_PER_S,
                       DM_MEMBERSHIP_INTRO_SENDER_BURST, now);
    if (!ok || !s_refill(&m->intro_bucket, DM_MEMBERSHIP_INTRO_RATE_PER_S,
                         DM_MEMBERSHIP_INTRO_BURST, now))
        return false;
    own->tokens -= 1.0;
    m->intro_bucket.tokens -= 1.0;
    return true;
}

uint32_t dm_membership__admit(dm_membership_t *m, const dm_swim_update_t *u, dm_membership__bucket_t *bucket,
                     double rate_per_s, double burst, bool rebroadcast, int64_t now)
{
    if (!dm_membership__live((uint8_t)u->state) || !dm_membership__address_bound(u->id, u->address) ||
        m->n >= DM_MEMBERSHIP_MAX_MEMBERS ||
        (bucket && !s_take(bucket, rate_per_s, burst, now)))
        return DM_MEMBERSHIP_NONE;
    uint32_t idx;
    if (dm_membership__add(m, u->id, u->address, u->domain, &idx) != DM_OK)
        return DM_MEMBERSHIP_NONE;
    m->n_live++;
    dm_membership__member_t *e = &m->mem[idx];
    e->inc = u->incarnation;
    e->last_heard = now;
    if (rebroadcast)
        dm_membership__bcast(m, u->id, NULL);
    dm_membership__emit(m, DM_MEMBERSHIP_EV_JOINED, idx, now);
    return idx;
}

void dm_membership__apply_own(dm_membership_t *m, uint32_t idx, const dm_swim_update_t *u, int64_t now)
{
    dm_membership__member_t *e = &m->mem[idx];
    uint8_t was = e->state;
    bool changed = !dm_membership__strings_equal(m, idx, u->address, u->domain);
    if (changed && dm_membership__set_strings(m, idx, u->address, u->domain) != DM_OK)
        changed = false;
    e = &m->mem[idx];
    bool newer = u->incarnation > e->inc;
    if (u->incarnation < e->inc) {
        /* It lost its incarnation (a restart without its data): the next
         * message it gets from us carries what we hold, and it outbids it. */
        if (changed)
            dm_membership__emit(m, DM_MEMBERSHIP_EV_UPDATED, idx, now);
        return;
    }
    e->inc = u->incarnation;
    if (u->state == DM_MEMBER_LEFT) {
        if (was == DM_MEMBER_LEFT)
            return;
        dm_membership__set_state(m, idx, DM_MEMBER_LEFT, now);
        dm_membership__bcast(m, u->id, NULL);
        dm_membership__emit(m, DM_MEMBERSHIP_EV_LEFT, idx, now);
        return;
    }
    /* Alive in its own word: at the same incarnation this beats a
     * suspicion, since it just spoke to us. A death or a departure is
     * undone only by a newer incarnation (it refutes when told), except at
     * UINT64_MAX, where nothing can be newer and its word has to do. */
    if (!dm_membership__live(was) && !newer && e->inc != UINT64_MAX) {
        if (changed)
            dm_membership__emit(m, DM_MEMBERSHIP_EV_UPDATED, idx, now);
        return;
    }
    if (was != DM_MEMBER_ALIVE)
        dm_membership__set_state(m, idx, DM_MEMBER_ALIVE, now);
    if (newer || changed || was != DM_MEMBER_ALIVE)
        dm_membership__bcast(m, u->id, NULL);
    if (was != DM_MEMBER_ALIVE)
        dm_membership__emit(m, DM_MEMBERSHIP_EV_ALIVE, idx, now);
    else if (changed)
        dm_membership__emit(m, DM_MEMBERSHIP_EV_UPDATED, idx, now);
}

/* A third party's suspicion (or DEAD, or LEFT) of known member idx. */
static void s_heard_suspect(dm_membership_t *m, uint32_t idx, const dm_swim_update_t *u,
                            const uint8_t *accuser, bool sync, int64_t now)
{
    dm_membership__member_t *e = &m->mem[idx];
    if (!dm_membership__live(e->state) || u->incarnation < e->inc)
        return;
    bool dead = u->state == DM_MEMBER_DEAD && accuser != NULL;
    if (e->state == DM_MEMBER_SUSPECT && u->incarnation == e->inc) {
        dm_membership__aux_t *x = e->aux != DM_MEMBERSHIP_NO_AUX ? &m->aux[e->aux] : NULL;
        if (x && dead && x->evidence) {
            /* its own timeout ran out and our own probe failed too */
            dm_membership__declare_dead(m, idx, now);
            return;
        }
        if (x && dead)
            x->claimed_dead = true;
        if (dm_membership__confirm(m, idx, accuser) && !sync)
            dm_membership__bcast(m, u->id, accuser);
        return;
    }
    bool evidence = false; /* a newer suspicion keeps our own evidence */
    if (e->state == DM_MEMBER_SUSPECT && e->aux != DM_MEMBERSHIP_NO_AUX)
        evidence = m->aux[e->aux].evidence;
    e->inc = u->incarnation;
    dm_membership__start_suspicion(m, idx, accuser, evidence, now);
    if (dead && e->aux != DM_MEMBERSHIP_NO_AUX)
        m->aux[m->mem[idx].aux].claimed_dead = true;
    if (!sync)
        dm_membership__bcast(m, u->id, accuser);
    dm_membership__want_probe(m, idx);
    dm_membership__emit(m, DM_MEMBERSHIP_EV_SUSPECT, idx, now);
}

void dm_membership__apply_heard(dm_membership_t *m, const dm_swim_update_t *u,
                       const uint8_t sender[DM_ID_PUBLIC_BYTES], bool sync, int64_t now)
{
    if (memcmp(u->id, m->self_id, DM_ID_PUBLIC_BYTES) == 0) {
        if (m->leaving)
            return;
        if (u->state == DM_MEMBER_ALIVE ? u->incarnation > m->self_inc
                                        : u->incarnation >= m->self_inc)
            dm_membership__refute(m, u->incarnation);
        return;
    }
    /* The sender's own record came with the message; a copy among the
     * updates says nothing more. */
    if (memcmp(u->id, sender, DM_ID_PUBLIC_BYTES) == 0)
        return;
    if (!dm_membership__address_bound(u->id, u->address))
        return;
    uint32_t idx = dm_membership__find(m, u->id);
    if (idx == DM_MEMBERSHIP_NONE) {
        /* Only the living are news; a SYNC we asked for is not limited,
         * anyone else's introductions are, per introducer and in all. */
        if (u->state == DM_MEMBER_ALIVE && m->n < DM_MEMBERSHIP_MAX_MEMBERS &&
            (sync || s_intro_allowed(m, sender, now)))
            (void)dm_membership__admit(m, u, NULL, 0, 0, !sync, now);
        return;
    }
    dm_membership__member_t *e = &m->mem[idx];
    if (u->incarnation > e->inc && u->incarnation - e->inc > DM_MEMBERSHIP_MAX_INC_JUMP)
        return;
    /* The accuser counted is the sender itself: a relayed suspicion names
     * someone we cannot check, so it earns no confirmation. */
    const uint8_t *accuser = sender;
    if (u->has_from && memcmp(u->from, sender, DM_ID_PUBLIC_BYTES) != 0)
        accuser = NULL;
    switch (u->state) {
    case DM_MEMBER_ALIVE: {
        if (u->incarnation <= e->inc)
            return;
        uint8_t was = e->state;
        if (was == DM_MEMBER_LEFT)
            return; /* only its own word brings a departed member back */
        e->inc = u->incarnation;
        if (was != DM_MEMBER_ALIVE)
            dm_membership__set_state(m, idx, DM_MEMBER_ALIVE, now);
        if (!sync)
            dm_membership__bcast(m, u->id, NULL);
        if (was != DM_MEMBER_ALIVE)
            dm_membership__emit(m, DM_MEMBERSHIP_EV_ALIVE, idx, now);
        return;
    }
    case DM_MEMBER_SUSPECT:
    case DM_MEMBER_DEAD:
    case DM_MEMBER_LEFT:
        s_heard_suspect(m, idx, u, accuser, sync, now);
        return;
    default:
        return;
    }
}

/* ---- the requests a stranger or a member may make ---- */

typedef struct {
    bool spoke;
    int64_t heard;
    uint32_t idx;
} s_recent_t;

/* Members that talk to us first, then the most recently heard. */
static int s_by_recency(const void *a, const void *b)
{
    const s_recent_t *x = a, *y = b;
    if (x->spoke != y->spoke)
        return x->spoke ? -1 : 1;
    return x->heard < y->heard ? 1 : x->heard > y->heard ? -1 : 0;
}

/* Sends a gossip message carrying member news's record (then what is
 * queued) straight to DM_MEMBERSHIP_DIRECT_NEWS live members, those that talk to us first and
 * then the most recently heard (so a crowd of silent joiners cannot crowd
 * them out), except member `except`. */
void dm_membership__tell_recent(dm_membership_t *m, const uint8_t *news, const uint8_t *except)
{
    s_recent_t *r = malloc((m->n ? m->n : 1) * sizeof *r);
    if (!r)
        return;
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++)
        if (dm_membership__live(m->mem[i].state) &&
            (!except || memcmp(m->mem[i].id, except, DM_ID_PUBLIC_BYTES) != 0))
            r[k++] = (s_recent_t){m->mem[i].spoke != 0, m->mem[i].last_heard, (uint32_t)i};
    if (k > DM_MEMBERSHIP_DIRECT_NEWS) {
        qsort(r, k, sizeof *r, s_by_recency);
        k = DM_MEMBERSHIP_DIRECT_NEWS;
    }
    for (size_t i = 0; i < k; i++) {
        dm_membership__out_t *o = dm_membership__out_to_member(m, DM_SWIM_GOSSIP, 0, m->mem[r[i].idx].id);
        if (o) {
            o->carry = true;
            memcpy(o->carry_id, news, DM_ID_PUBLIC_BYTES);
        }
    }
    free(r);
}

/* True (and recorded) if member id may have our member list now: it had
 * none for DM_MEMBERSHIP_RESYNC_MS, and, unless it is a stranger just
 * admitted, the node-wide list rate allows one. */
static bool s_list_allowed(dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES],
                           bool stranger, int64_t now)
{
    size_t slot = m->nsynced, oldest = 0;
    for (size_t i = 0; i < m->nsynced; i++) {
        if (memcmp(m->synced[i].id, id, DM_ID_PUBLIC_BYTES) == 0) {
            if (now - m->synced[i].at_ms < DM_MEMBERSHIP_RESYNC_MS)
                return false;
            slot = i;
        }
        if (m->synced[i].at_ms < m->synced[oldest].at_ms)
            oldest = i;
    }
    if (!stranger && !s_take(&m->resync_bucket, DM_MEMBERSHIP_RESYNC_RATE_PER_S,
                             DM_MEMBERSHIP_RESYNC_BURST, now))
        return false;
    if (slot == m->nsynced) {
        if (m->nsynced < DM_MEMBERSHIP_RESYNC_RECENT)
            m->nsynced++;
        else
            slot = oldest;
    }
    memcpy(m->synced[slot].id, id, DM_ID_PUBLIC_BYTES);
    m->synced[slot].at_ms = now;
    return true;
}

/* A JOIN: the sender is admitted (a stranger only within the join rate and
 * the member cap) and gets our member list at the address membership now
 * holds for it, which is the one its own authenticated record names and
 * which carries its own key. */
dm_err dm_membership__on_join(dm_membership_t *m, uint32_t sidx, const dm_swim_msg_t *msg, int64_t now)
{
    const dm_swim_update_t *snd = &msg->sender;
    if (snd->state != DM_MEMBER_ALIVE)
        return DM_ERR_PROTO;
    bool stranger = sidx == DM_MEMBERSHIP_NONE;
    if (stranger) {
        sidx = dm_membership__admit(m, snd, &m->join_bucket, DM_MEMBERSHIP_JOIN_RATE_PER_S,
                           DM_MEMBERSHIP_JOIN_BURST, true, now);
        if (sidx == DM_MEMBERSHIP_NONE)
            return DM_ERR_DENIED;
        /* Members refuse a stranger's word until they hear of its join from
         * a member, so the news goes straight to them, not only by gossip. */
        dm_membership__tell_recent(m, m->mem[sidx].id, m->mem[sidx].id);
    } else {
        dm_membership__apply_own(m, sidx, snd, now);
    }
    /* A member that only asks to be known (it could not reach us directly)
     * needs no list: that would cost N entries per lost ping. */
    if (msg->seq == DM_MEMBERSHIP_KNOCK_SEQ)
        return DM_OK;
    /* A member list costs N entries: a few at a time (joiners retry), one
     * per member per DM_MEMBERSHIP_RESYNC_MS, and for members (a stranger's
     * JOIN is paid by the join rate) within a node-wide rate; a JOIN
     * beyond these counts as a knock. */
    size_t jobs = 0;
    for (size_t i = m->out_head; i < m->nout; i++)
        jobs += m->out[i].type == DM_SWIM_SYNC;
    if (jobs >= DM_MEMBERSHIP_MAX_SYNC_JOBS || !s_list_allowed(m, snd->id, stranger, now))
        return DM_OK;
    dm_membership__out_t *o = dm_membership__out_to_member(m, DM_SWIM_SYNC, msg->seq, snd->id);
    if (!o)
        return DM_ERR_NOMEM;
    if (m->n) {
        o->sync_ids = malloc(m->n * sizeof *o->sync_ids);
        if (!o->sync_ids) {
            m->nout--;
            return DM_ERR_NOMEM;
        }
        for (size_t i = 0; i < m->n; i++)
            memcpy(o->sync_ids[i], m->mem[i].id, DM_ID_PUBLIC_BYTES);
        o->sync_n = m->n;
    }
    return DM_OK;
}

bool dm_membership__is_seed(const dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES])
{
    for (size_t i = 0; i < m->nseeds; i++)
        if (memcmp(m->seed_ids[i], id, DM_ID_PUBLIC_BYTES) == 0)
            return true;
    return false;
}

/* Ping-req: ping the target for the requester, only if it is a live
 * member, and only at the address membership holds for it. */
void dm_membership__on_ping_req(dm_membership_t *m, const dm_swim_msg_t *msg, int64_t now_ms)
{
    if (m->nfwd == DM_MEMBERSHIP_MAX_FORWARDS ||
        memcmp(msg->target_id, m->self_id, DM_ID_PUBLIC_BYTES) == 0 ||
        memcmp(msg->target_id, msg->sender.id, DM_ID_PUBLIC_BYTES) == 0)
        return;
    uint32_t t = dm_membership__find(m, msg->target_id);
    if (t == DM_MEMBERSHIP_NONE || !dm_membership__live(m->mem[t].state))
        return;
    dm_membership__fwd_t *f = &m->fwd[m->nfwd];
    dm_membership__out_t *o = dm_membership__out_to_member(m, DM_SWIM_PING, m->next_seq, msg->target_id);
    if (!o)
        return;
    memcpy(o->target_id, msg->target_id, DM_ID_PUBLIC_BYTES);
    f->seq = m->next_seq++;
    f->orig_seq = msg->seq;
    memcpy(f->requester, msg->sender.id, DM_ID_PUBLIC_BYTES);
    memcpy(f->target, msg->target_id, DM_ID_PUBLIC_BYTES);
    /* The nack must reach the requester before its interval ends, or it
     * counts against the requester's health: answer within
     * DM_MEMBERSHIP_NACK_PERCENT of the (unscaled) probe timeout. */
    f->deadline = now_ms + m->cfg.probe_timeout_ms * DM_MEMBERSHIP_NACK_PERCENT / 100;
    m->nfwd++;
}

