/* membership_in.c: how far a membership machine believes what it hears.
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
#include <string.h>

#include "membership_priv.h"

static int s_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool dm_mb_address_id(const char *address, uint8_t id[DM_ID_PUBLIC_BYTES])
{
    for (size_t i = 0; i < DM_ID_PUBLIC_BYTES; i++) {
        int hi = s_hexval(address[2 * i]);
        int lo = hi < 0 ? -1 : s_hexval(address[2 * i + 1]);
        if (lo < 0)
            return false;
        id[i] = (uint8_t)(hi << 4 | lo);
    }
    return address[2 * DM_ID_PUBLIC_BYTES] == '@';
}

bool dm_mb_address_bound(const uint8_t id[DM_ID_PUBLIC_BYTES], const char *address)
{
    const char *ep = dm_mb_short_address(id, address);
    return ep && strncmp(ep, "tcp://", 6) == 0;
}

/* Takes one token from b (rate per second, burst at most); false if none. */
static bool s_take(dm_mb_bucket_t *b, double rate_per_s, double burst, int64_t now)
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
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

uint32_t dm_mb_admit(dm_membership_t *m, const dm_swim_update_t *u, dm_mb_bucket_t *bucket,
                     double rate_per_s, double burst, bool rebroadcast, int64_t now)
{
    if (!dm_mb_live((uint8_t)u->state) || !dm_mb_address_bound(u->id, u->address) ||
        m->n >= DM_MEMBERSHIP_MAX_MEMBERS ||
        (bucket && !s_take(bucket, rate_per_s, burst, now)))
        return DM_MEMBERSHIP_NONE;
    uint32_t idx;
    if (dm_mb_add(m, u->id, u->address, u->domain, &idx) != DM_OK)
        return DM_MEMBERSHIP_NONE;
    m->n_live++;
    dm_mb_member_t *e = &m->mem[idx];
    e->inc = u->incarnation;
    e->last_heard = now;
    if (rebroadcast)
        dm_mb_bcast(m, u->id, NULL);
    dm_mb_emit(m, DM_MEMBERSHIP_EV_JOINED, idx, now);
    return idx;
}

void dm_mb_apply_own(dm_membership_t *m, uint32_t idx, const dm_swim_update_t *u, int64_t now)
{
    dm_mb_member_t *e = &m->mem[idx];
    uint8_t was = e->state;
    bool changed = !dm_mb_strings_equal(m, idx, u->address, u->domain);
    if (changed && dm_mb_set_strings(m, idx, u->address, u->domain) != DM_OK)
        changed = false;
    e = &m->mem[idx];
    bool newer = u->incarnation > e->inc;
    if (u->incarnation < e->inc) {
        /* It lost its incarnation (a restart without its data): the next
         * message it gets from us carries what we hold, and it outbids it. */
        if (changed)
            dm_mb_emit(m, DM_MEMBERSHIP_EV_UPDATED, idx, now);
        return;
    }
    e->inc = u->incarnation;
    if (u->state == DM_MEMBER_LEFT) {
        if (was == DM_MEMBER_LEFT)
            return;
        dm_mb_set_state(m, idx, DM_MEMBER_LEFT, now);
        dm_mb_bcast(m, u->id, NULL);
        dm_mb_emit(m, DM_MEMBERSHIP_EV_LEFT, idx, now);
        return;
    }
    /* Alive in its own word: at the same incarnation this beats a
     * suspicion, since it just spoke to us. A death or a departure is
     * undone only by a newer incarnation (it refutes when told), except at
     * UINT64_MAX, where nothing can be newer and its word has to do. */
    if (!dm_mb_live(was) && !newer && e->inc != UINT64_MAX) {
        if (changed)
            dm_mb_emit(m, DM_MEMBERSHIP_EV_UPDATED, idx, now);
        return;
    }
    if (was != DM_MEMBER_ALIVE)
        dm_mb_set_state(m, idx, DM_MEMBER_ALIVE, now);
    if (newer || changed || was != DM_MEMBER_ALIVE)
        dm_mb_bcast(m, u->id, NULL);
    if (was != DM_MEMBER_ALIVE)
        dm_mb_emit(m, DM_MEMBERSHIP_EV_ALIVE, idx, now);
    else if (changed)
        dm_mb_emit(m, DM_MEMBERSHIP_EV_UPDATED, idx, now);
}

/* A third party's suspicion (or DEAD, or LEFT) of known member idx. */
static void s_heard_suspect(dm_membership_t *m, uint32_t idx, const dm_swim_update_t *u,
                            const uint8_t *accuser, bool sync, int64_t now)
{
    dm_mb_member_t *e = &m->mem[idx];
    if (!dm_mb_live(e->state) || u->incarnation < e->inc)
        return;
    bool dead = u->state == DM_MEMBER_DEAD && accuser != NULL;
    if (e->state == DM_MEMBER_SUSPECT && u->incarnation == e->inc) {
        dm_mb_aux_t *x = e->aux != DM_MB_NO_AUX ? &m->aux[e->aux] : NULL;
        if (x && dead && x->evidence) {
            /* its own timeout ran out and our own probe failed too */
            dm_mb_declare_dead(m, idx, now);
            return;
        }
        if (x && dead)
            x->claimed_dead = true;
        if (dm_mb_confirm(m, idx, accuser) && !sync)
            dm_mb_bcast(m, u->id, accuser);
        return;
    }
    bool evidence = false; /* a newer suspicion keeps our own evidence */
    if (e->state == DM_MEMBER_SUSPECT && e->aux != DM_MB_NO_AUX)
        evidence = m->aux[e->aux].evidence;
    e->inc = u->incarnation;
    dm_mb_start_suspicion(m, idx, accuser, evidence, now);
    if (dead && e->aux != DM_MB_NO_AUX)
        m->aux[m->mem[idx].aux].claimed_dead = true;
    if (!sync)
        dm_mb_bcast(m, u->id, accuser);
    dm_mb_want_probe(m, idx);
    dm_mb_emit(m, DM_MEMBERSHIP_EV_SUSPECT, idx, now);
}

void dm_mb_apply_heard(dm_membership_t *m, const dm_swim_update_t *u,
                       const uint8_t sender[DM_ID_PUBLIC_BYTES], bool sync, int64_t now)
{
    if (memcmp(u->id, m->self_id, DM_ID_PUBLIC_BYTES) == 0) {
        if (m->leaving)
            return;
        if (u->state == DM_MEMBER_ALIVE ? u->incarnation > m->self_inc
                                        : u->incarnation >= m->self_inc)
            dm_mb_refute(m, u->incarnation);
        return;
    }
    /* The sender's own record came with the message; a copy among the
     * updates says nothing more. */
    if (memcmp(u->id, sender, DM_ID_PUBLIC_BYTES) == 0)
        return;
    if (!dm_mb_address_bound(u->id, u->address))
        return;
    uint32_t idx = dm_mb_find(m, u->id);
    if (idx == DM_MEMBERSHIP_NONE) {
        /* Only the living are news; a SYNC we asked for is not limited. */
        if (u->state == DM_MEMBER_ALIVE)
            (void)dm_mb_admit(m, u, sync ? NULL : &m->intro_bucket,
                              DM_MEMBERSHIP_INTRO_RATE_PER_S, DM_MEMBERSHIP_INTRO_BURST, !sync,
                              now);
        return;
    }
    dm_mb_member_t *e = &m->mem[idx];
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
            dm_mb_set_state(m, idx, DM_MEMBER_ALIVE, now);
        if (!sync)
            dm_mb_bcast(m, u->id, NULL);
        if (was != DM_MEMBER_ALIVE)
            dm_mb_emit(m, DM_MEMBERSHIP_EV_ALIVE, idx, now);
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
