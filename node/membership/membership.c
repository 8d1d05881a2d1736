/* membership.c: the SWIM + Lifeguard state machine (see membership.h for
 * the protocol and docs/membership.md for the reasons behind the numbers).
 *
 * Everything here is a function of the inputs, the time given and the
 * seed. Member storage is in membership_table.c; the wire form in
 * membership_wire.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "membership/membership_priv.h"

static int64_t s_scaled(const dm_membership_t *m, int64_t base) { return base * (int64_t)(m->lhm + 1); }

void dm_membership_config_default(dm_membership_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->probe_interval_ms = DM_MEMBERSHIP_PROBE_INTERVAL_MS;
    c->probe_timeout_ms = DM_MEMBERSHIP_PROBE_TIMEOUT_MS;
    c->gossip_interval_ms = DM_MEMBERSHIP_GOSSIP_INTERVAL_MS;
    c->join_retry_ms = DM_MEMBERSHIP_JOIN_RETRY_MS;
    c->dead_retention_ms = DM_MEMBERSHIP_DEAD_RETENTION_MS;
    c->gossip_to_dead_ms = DM_MEMBERSHIP_GOSSIP_TO_DEAD_MS;
    c->indirect_k = DM_MEMBERSHIP_INDIRECT_K;
    c->gossip_fanout = DM_MEMBERSHIP_GOSSIP_FANOUT;
    c->retransmit_mult = DM_MEMBERSHIP_RETRANSMIT_MULT;
    c->suspicion_mult = DM_MEMBERSHIP_SUSPICION_MULT;
    c->suspicion_max_mult = DM_MEMBERSHIP_SUSPICION_MAX_MULT;
    c->max_lhm = DM_MEMBERSHIP_MAX_LHM;
    c->max_updates_per_msg = DM_MEMBERSHIP_MAX_UPDATES_PER_MSG;
    c->max_piggyback_bytes = DM_MEMBERSHIP_MAX_PIGGYBACK_BYTES;
    c->reprobe_before_suspect = true;
}

dm_err dm_membership_config_check(const dm_membership_config_t *c, dm_buf_t *why)
{
    const char *bad = NULL;
    if (c->probe_interval_ms <= 0 || c->gossip_interval_ms <= 0 || c->join_retry_ms <= 0)
        bad = "probe_interval_ms, gossip_interval_ms and join_retry_ms must be > 0";
    else if (c->probe_timeout_ms <= 0 || c->probe_timeout_ms * 2 > c->probe_interval_ms)
        bad = "probe_timeout_ms must be > 0 and at most half of probe_interval_ms (the rest "
              "is the indirect probe's window)";
    else if (c->dead_retention_ms < 0 || c->gossip_to_dead_ms < 0)
        bad = "dead_retention_ms and gossip_to_dead_ms must be >= 0";
    else if (c->suspicion_mult < 1 || c->suspicion_max_mult < 1 || c->max_lhm < 1)
        bad = "suspicion_mult, suspicion_max_mult and max_lhm must be >= 1";
    else if (c->retransmit_mult < 1 || c->gossip_fanout < 1)
        bad = "retransmit_mult and gossip_fanout must be >= 1";
    else if (c->max_updates_per_msg < 1 || c->max_updates_per_msg > DM_SWIM_MAX_UPDATES)
        bad = "max_updates_per_msg must be 1..32 (DM_SWIM_MAX_UPDATES)";
    else if (c->max_piggyback_bytes < 512)
        bad = "max_piggyback_bytes must be >= 512 (one update with the longest address)";
    if (bad && why)
        dm_buf_printf(why, "membership config: %s", bad);
    return bad ? DM_ERR_INVALID : DM_OK;
}

dm_err dm_membership_new(const uint8_t self_id[DM_ID_PUBLIC_BYTES], const char *self_domain,
                         const char *self_address, const dm_membership_config_t *cfg,
                         uint64_t seed, dm_membership_t **out)
{
    *out = NULL;
    dm_membership_config_t def;
    if (!cfg) {
        dm_membership_config_default(&def);
        cfg = &def;
    }
    if (dm_membership_config_check(cfg, NULL) != DM_OK ||
        strlen(self_address) >= DM_ADDRESS_MAX || strlen(self_domain) >= DM_SWIM_DOMAIN_MAX)
        return DM_ERR_INVALID;
    dm_membership_t *m = calloc(1, sizeof *m);
    if (!m)
        return DM_ERR_NOMEM;
    m->cfg = *cfg;
    m->rng = seed;
    m->hash_key = dm_membership__rand(m);
    memcpy(m->self_id, self_id, DM_ID_PUBLIC_BYTES);
    strcpy(m->self_address, self_address);
    strcpy(m->self_domain, self_domain);
    m->joined = true; /* nothing to join until dm_membership_join */
    /* Spread the first probes and gossip of nodes started together. */
    m->next_probe = -1;
    m->next_gossip = -1;
    m->next_seq = (uint32_t)dm_membership__rand(m);
    *out = m;
    return DM_OK;
}

void dm_membership_destroy(dm_membership_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_membership_t *m = *self_p;
    for (size_t i = m->out_head; i < m->nout; i++)
        free(m->out[i].sync_ids);
    free(m->out);
    free(m->bcast);
    dm_membership__free_table(m);
    free(m);
    *self_p = NULL;
}

void dm_membership_on_event(dm_membership_t *m, dm_membership_event_fn fn, void *ctx)
{
    m->on_event = fn;
    m->on_event_ctx = ctx;
}

void dm_membership_set_incarnation(dm_membership_t *m, uint64_t inc) { m->self_inc = inc; }

/* Our own probe of live member idx failed (twice, with reprobe): suspect
 * it on our own evidence, or add our evidence to a suspicion we heard. */
static void s_suspect_locally(dm_membership_t *m, uint32_t idx, int64_t now)
{
    dm_membership__member_t *e = &m->mem[idx];
    if (e->state == DM_MEMBER_SUSPECT) {
        if (e->aux != DM_MEMBERSHIP_NO_AUX) {
            m->aux[e->aux].evidence = true;
            if (m->aux[e->aux].claimed_dead) {
                dm_membership__declare_dead(m, idx, now);
                return;
            }
        }
        if (dm_membership__confirm(m, idx, m->self_id))
            dm_membership__bcast(m, e->id, m->self_id);
        return;
    }
    dm_membership__start_suspicion(m, idx, m->self_id, true, now);
    dm_membership__bcast(m, m->mem[idx].id, m->self_id);
    dm_membership__emit(m, DM_MEMBERSHIP_EV_SUSPECT, idx, now);
}

/* Up to want distinct random members: alive only (helpers), or for
 * gossip alive, suspect and recently dead or left. exclude: an id to skip. */
static size_t s_pick(dm_membership_t *m, size_t want, const uint8_t *exclude, bool gossip,
                     int64_t now, uint32_t *out)
{
    size_t got = 0;
#define S_OK(i)                                                                                  \
    ((!exclude || memcmp(m->mem[i].id, exclude, DM_ID_PUBLIC_BYTES) != 0) &&                     \
     (m->mem[i].state == DM_MEMBER_ALIVE ||                                                      \
      (gossip && (m->mem[i].state == DM_MEMBER_SUSPECT ||                                        \
                  (m->mem[i].aux != DM_MEMBERSHIP_NO_AUX &&                                         \
                   now - m->aux[m->mem[i].aux].since < m->cfg.gossip_to_dead_ms)))))
    if (m->n <= 4 * want + 8) {
        size_t seen = 0; /* reservoir sampling over the eligible */
        for (size_t i = 0; i < m->n; i++) {
            if (!S_OK(i))
                continue;
            seen++;
            if (got < want)
                out[got++] = (uint32_t)i;
            else {
                size_t j = (size_t)(dm_membership__rand(m) % seen);
                if (j < want)
                    out[j] = (uint32_t)i;
            }
        }
        return got;
    }
    for (size_t tries = 0; tries < 8 * want && got < want; tries++) {
        uint32_t i = (uint32_t)(dm_membership__rand(m) % m->n);
        bool dup = false;
        for (size_t j = 0; j < got; j++)
            dup |= out[j] == i;
        if (!dup && S_OK(i))
            out[got++] = i;
    }
#undef S_OK
    return got;
}

/* Drops dead and left members kept longer than dead_retention_ms. */
static void s_reap(dm_membership_t *m, int64_t now)
{
    for (size_t i = m->n; i-- > 0;) {
        dm_membership__member_t *e = &m->mem[i];
        if (dm_membership__live(e->state) || e->aux == DM_MEMBERSHIP_NO_AUX ||
            now - m->aux[e->aux].since < m->cfg.dead_retention_ms)
            continue;
        dm_membership__emit(m, DM_MEMBERSHIP_EV_REMOVED, (uint32_t)i, now);
        dm_membership__remove(m, (uint32_t)i);
    }
}

static void s_probe_send(dm_membership_t *m, uint32_t idx, int64_t now)
{
    m->probing = true;
    memcpy(m->probe_target, m->mem[idx].id, DM_ID_PUBLIC_BYTES);
    m->probe_seq = m->next_seq++;
    m->probe_timeout_at = now + s_scaled(m, m->cfg.probe_timeout_ms);
    m->probe_end = now + s_scaled(m, m->cfg.probe_interval_ms);
    m->probe_indirect = false;
    m->probe_expected_nacks = m->probe_nacks = 0;
    m->probe_nhelpers = 0;
    dm_membership__out_t *o = dm_membership__out_to_member(m, DM_SWIM_PING, m->probe_seq, m->probe_target);
    if (o)
        memcpy(o->target_id, m->probe_target, DM_ID_PUBLIC_BYTES);
}

/* Probes a doubted member again, else the next live member of the
 * round; a round ends with dead members reaped and the order shuffled. */
static void s_probe_start(dm_membership_t *m, int64_t now)
{
    if (m->reprobe) {
        m->reprobe = false;
        uint32_t idx = dm_membership__find(m, m->reprobe_id);
        if (idx != DM_MEMBERSHIP_NONE && dm_membership__live(m->mem[idx].state)) {
            s_probe_send(m, idx, now);
            return;
        }
    }
    for (size_t tries = 0; tries <= m->n + 1; tries++) {
        if (m->probe_pos >= m->n) {
            s_reap(m, now);
            dm_membership__shuffle(m);
            m->probe_pos = 0;
            if (!m->n)
                return;
        }
        uint32_t idx = (uint32_t)m->probe_pos++;
        if (dm_membership__live(m->mem[idx].state)) {
            s_probe_send(m, idx, now);
            return;
        }
    }
}

/* No direct ack in time: ask indirect_k members to ping the target, and
 * ping it once more ourselves (memberlist's TCP fallback plays this role):
 * under 10% loss that alone makes a false suspicion five times rarer. */
static void s_probe_indirect(dm_membership_t *m, int64_t now)
{
    m->probe_indirect = true;
    uint32_t idx = dm_membership__find(m, m->probe_target);
    if (idx == DM_MEMBERSHIP_NONE)
        return;
    dm_membership__out_t *p = dm_membership__out_to_member(m, DM_SWIM_PING, m->probe_seq, m->probe_target);
    if (p)
        memcpy(p->target_id, m->probe_target, DM_ID_PUBLIC_BYTES);
    char addr[DM_ADDRESS_MAX];
    dm_membership__address(m, idx, addr);
    uint32_t helpers[DM_SWIM_MAX_UPDATES];
    size_t k = m->cfg.indirect_k < DM_SWIM_MAX_UPDATES ? m->cfg.indirect_k : DM_SWIM_MAX_UPDATES;
    size_t n = s_pick(m, k, m->probe_target, false, now, helpers);
    for (size_t i = 0; i < n; i++) {
        dm_membership__out_t *o = dm_membership__out_to_member(m, DM_SWIM_PING_REQ, m->probe_seq, m->mem[helpers[i]].id);
        if (!o)
            continue;
        memcpy(o->target_id, m->probe_target, DM_ID_PUBLIC_BYTES);
        strcpy(o->target_address, addr);
        m->probe_expected_nacks++;
        memcpy(m->probe_helpers[m->probe_nhelpers++], m->mem[helpers[i]].id, DM_ID_PUBLIC_BYTES);
    }
}

/* True if id is one of the helpers the current probe asked to ping-req:
 * only their relayed acks and nacks count. */
static bool s_is_helper(const dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES])
{
    for (size_t i = 0; i < m->probe_nhelpers; i++)
        if (memcmp(m->probe_helpers[i], id, DM_ID_PUBLIC_BYTES) == 0)
            return true;
    return false;
}

/* True if a SYNC from sender with seq is the member list we asked for: it
 * comes from a seed we sent a JOIN to, carries our JOIN's seq, within
 * DM_MEMBERSHIP_SYNC_WINDOW_MS of our last JOIN. Any other SYNC is mere
 * gossip (its news within the introduction limits). */
static bool s_sync_asked(const dm_membership_t *m, const uint8_t sender[DM_ID_PUBLIC_BYTES],
                         uint32_t seq, int64_t now)
{
    return now < m->join_until_ms && seq == m->join_seq && dm_membership__is_seed(m, sender);
}

/* The probe interval ended without an ack: suspect the target (or first
 * doubt it), and count the failure against our own health unless the
 * helpers' nacks show the network around us works. */
static void s_probe_failed(dm_membership_t *m, int64_t now)
{
    m->probing = false;
    unsigned want = m->probe_expected_nacks, got = m->probe_nacks;
    dm_membership__lhm_delta(m, want > 0 ? (got < want ? (int)(want - got) : 0) : 1);
    uint32_t idx = dm_membership__find(m, m->probe_target);
    if (idx == DM_MEMBERSHIP_NONE || !dm_membership__live(m->mem[idx].state))
        return;
    dm_membership__member_t *e = &m->mem[idx];
    if (m->cfg.reprobe_before_suspect && e->state == DM_MEMBER_ALIVE && !e->doubt) {
        /* One failed probe is kept private and the member probed again at
         * once: under loss most failures are the network's, and a
         * suspicion, once gossiped, costs every node a suspect and a
         * refutation to pass on. */
        e->doubt = 1;
        m->reprobe = true;
        memcpy(m->reprobe_id, e->id, DM_ID_PUBLIC_BYTES);
        return;
    }
    e->doubt = 0;
    s_suspect_locally(m, idx, now);
}

static void s_fwd_remove(dm_membership_t *m, size_t i) { m->fwd[i] = m->fwd[--m->nfwd]; }

/* Answers member id at the address membership holds for it (never one a
 * message names). */
static void s_reply(dm_membership_t *m, dm_swim_type type, uint32_t seq,
                    const uint8_t id[DM_ID_PUBLIC_BYTES])
{
    (void)dm_membership__out_to_member(m, type, seq, id);
}

static bool s_str_ok(const char *s, size_t cap) { return memchr(s, 0, cap) != NULL; }

static bool s_update_ok(const dm_swim_update_t *u)
{
    return (unsigned)u->state <= DM_MEMBER_LEFT && s_str_ok(u->address, sizeof u->address) &&
           s_str_ok(u->domain, sizeof u->domain);
}

/* An ACK from snd: ends our probe, or is relayed to the member that asked
 * us to ping snd, or (relayed by a helper while our own pings got none)
 * makes us knock on the target. */
static void s_on_ack(dm_membership_t *m, const dm_swim_msg_t *msg, const uint8_t *snd_id,
                     int64_t now_ms)
{
    if (m->probing && msg->seq == m->probe_seq &&
        memcmp(snd_id, m->probe_target, DM_ID_PUBLIC_BYTES) == 0) {
        m->probing = false;
        if (now_ms < m->probe_timeout_at)
            dm_membership__lhm_delta(m, -1);
        return;
    }
    /* Only the pinged target's own ack is relayed, and only a helper
     * we chose may relay one to us: anyone else's would keep a failed
     * member alive. */
    for (size_t i = 0; i < m->nfwd; i++)
        if (m->fwd[i].seq == msg->seq &&
            memcmp(m->fwd[i].target, snd_id, DM_ID_PUBLIC_BYTES) == 0) {
            s_reply(m, DM_SWIM_ACK, m->fwd[i].orig_seq, m->fwd[i].requester);
            s_fwd_remove(m, i);
            break;
        }
    if (m->probing && msg->seq == m->probe_seq && m->probe_indirect &&
        s_is_helper(m, snd_id)) {
        /* A helper relayed the target's ack, but our own pings got
         * none: maybe the target never heard of our join. Ask it. */
        m->probing = false;
        uint32_t t = dm_membership__find(m, m->probe_target);
        if (t != DM_MEMBERSHIP_NONE) {
            m->mem[t].doubt = 0;
            (void)dm_membership__out_to_member(m, DM_SWIM_JOIN, DM_MEMBERSHIP_KNOCK_SEQ,
                                          m->probe_target);
        }
    }
}

dm_err dm_membership_receive(dm_membership_t *m, const uint8_t *from_id, const dm_swim_msg_t *msg,
                             int64_t now_ms)
{
    const dm_swim_update_t *snd = &msg->sender;
    if (msg->type < DM_SWIM_PING || msg->type > DM_SWIM_SYNC || !s_update_ok(snd) ||
        (snd->state != DM_MEMBER_ALIVE && snd->state != DM_MEMBER_LEFT) ||
        msg->n_updates > DM_SWIM_MAX_UPDATES || !s_str_ok(msg->target_address, DM_ADDRESS_MAX))
        return DM_ERR_PROTO;
    for (size_t i = 0; i < msg->n_updates; i++)
        if (!s_update_ok(&msg->updates[i]))
            return DM_ERR_PROTO;
    if (from_id && memcmp(from_id, snd->id, DM_ID_PUBLIC_BYTES) != 0)
        return DM_ERR_DENIED;
    if (memcmp(snd->id, m->self_id, DM_ID_PUBLIC_BYTES) == 0)
        return DM_ERR_PROTO;
    /* Where to answer is the sender's own word, so it must carry its key. */
    if (!dm_membership__address_bound(snd->id, snd->address))
        return DM_ERR_DENIED;

    uint32_t sidx = dm_membership__find(m, snd->id);
    bool sync = msg->type == DM_SWIM_SYNC && s_sync_asked(m, snd->id, msg->seq, now_ms);
    if (msg->type == DM_SWIM_JOIN) {
        dm_err rc = dm_membership__on_join(m, sidx, msg, now_ms);
        if (rc != DM_OK)
            return rc;
    } else if (sidx != DM_MEMBERSHIP_NONE) {
        dm_membership__apply_own(m, sidx, snd, now_ms);
    } else if (sync && snd->state == DM_MEMBER_ALIVE) {
        /* the member we asked to let us in */
        if (dm_membership__admit(m, snd, NULL, 0, 0, true, now_ms) == DM_MEMBERSHIP_NONE)
            return DM_ERR_DENIED;
    } else {
        return DM_ERR_DENIED; /* a stranger: it must JOIN first */
    }
    sidx = dm_membership__find(m, snd->id);
    if (sidx == DM_MEMBERSHIP_NONE)
        return DM_ERR_DENIED;
    dm_membership__member_t *se = &m->mem[sidx];
    se->last_heard = now_ms;
    se->doubt = 0;
    if (msg->type != DM_SWIM_JOIN)
        se->spoke = 1;
    if (!dm_membership__live(se->state)) {
        /* Dead or gone in our view and its own record did not outbid that:
         * nothing else it says counts; a dead one is told, so it refutes. */
        if (se->state == DM_MEMBER_DEAD && msg->type != DM_SWIM_JOIN) {
            dm_membership__out_t *o = dm_membership__out_to_member(m, DM_SWIM_GOSSIP, 0, snd->id);
            if (o) {
                o->carry = true;
                memcpy(o->carry_id, snd->id, DM_ID_PUBLIC_BYTES);
            }
        }
        return DM_OK;
    }
    for (size_t i = 0; i < msg->n_updates; i++)
        dm_membership__apply_heard(m, &msg->updates[i], snd->id, sync, now_ms);

    switch (msg->type) {
    case DM_SWIM_PING:
        if (memcmp(msg->target_id, m->self_id, DM_ID_PUBLIC_BYTES) == 0)
            s_reply(m, DM_SWIM_ACK, msg->seq, snd->id);
        break;
    case DM_SWIM_PING_REQ:
        dm_membership__on_ping_req(m, msg, now_ms);
        break;
    case DM_SWIM_ACK:
        s_on_ack(m, msg, snd->id, now_ms);
        break;
    case DM_SWIM_NACK:
        if (m->probing && msg->seq == m->probe_seq && s_is_helper(m, snd->id))
            m->probe_nacks++;
        break;
    case DM_SWIM_SYNC:
        if (sync)
            m->joined = true;
        break;
    default:
        break;
    }
    return DM_OK;
}

void dm_membership_tick(dm_membership_t *m, int64_t now)
{
    if (m->next_probe < 0) {
        /* nodes started together would otherwise probe in lockstep */
        m->next_probe = now + (int64_t)(dm_membership__rand(m) % (uint64_t)m->cfg.probe_interval_ms);
        m->next_gossip = now + (int64_t)(dm_membership__rand(m) % (uint64_t)m->cfg.gossip_interval_ms);
    }
    if (!m->joined && m->nseeds && now >= m->next_join) {
        /* One seq for the JOINs of one attempt (kept while we retry): a
         * seed's SYNC must carry it to be the list we asked for. */
        if (now >= m->join_until_ms) {
            m->join_seq = m->next_seq++;
            if (m->join_seq == DM_MEMBERSHIP_KNOCK_SEQ)
                m->join_seq = m->next_seq++;
        }
        m->join_until_ms = now + DM_MEMBERSHIP_SYNC_WINDOW_MS;
        for (size_t i = 0; i < m->nseeds; i++) {
            dm_membership__out_t *o = dm_membership__out_push(m);
            if (o) {
                o->type = DM_SWIM_JOIN;
                o->seq = m->join_seq;
                strcpy(o->to, m->seeds[i]);
            }
        }
        m->next_join = now + m->cfg.join_retry_ms;
    }
    for (size_t i = 0; i < m->nfwd;) {
        if (m->fwd[i].deadline > now) {
            i++;
            continue;
        }
        s_reply(m, DM_SWIM_NACK, m->fwd[i].orig_seq, m->fwd[i].requester);
        s_fwd_remove(m, i);
    }
    if (m->probing && !m->probe_indirect && now >= m->probe_timeout_at)
        s_probe_indirect(m, now);
    if (m->probing && now >= m->probe_end)
        s_probe_failed(m, now);
    if (!m->leaving && now >= m->next_probe) {
        m->probing = false;
        s_probe_start(m, now);
        m->next_probe = now + s_scaled(m, m->cfg.probe_interval_ms);
    }
    for (size_t a = 0; a < m->naux; a++) {
        if (!m->aux[a].used)
            continue;
        uint32_t idx = dm_membership__find(m, m->aux[a].id);
        if (idx == DM_MEMBERSHIP_NONE || m->mem[idx].state != DM_MEMBER_SUSPECT ||
            dm_membership__suspicion_deadline(&m->aux[a]) > now)
            continue;
        /* Others' word alone never kills: without our own failed probe the
         * suspicion waits for one (the probe comes next). */
        if (m->aux[a].evidence)
            dm_membership__declare_dead(m, idx, now);
        else
            dm_membership__want_probe(m, idx);
    }
    if (now >= m->next_gossip) {
        m->next_gossip = now + m->cfg.gossip_interval_ms;
        uint32_t to[DM_SWIM_MAX_UPDATES];
        size_t f = m->cfg.gossip_fanout < DM_SWIM_MAX_UPDATES ? m->cfg.gossip_fanout
                                                               : DM_SWIM_MAX_UPDATES;
        size_t n = m->nbcast ? s_pick(m, f, NULL, true, now, to) : 0;
        for (size_t i = 0; i < n; i++)
            (void)dm_membership__out_to_member(m, DM_SWIM_GOSSIP, 0, m->mem[to[i]].id);
    }
}

void dm_membership_join(dm_membership_t *m, const char *seed_address, int64_t now_ms)
{
    uint8_t id[DM_ID_PUBLIC_BYTES];
    if (m->nseeds == DM_MEMBERSHIP_MAX_SEEDS || strlen(seed_address) >= DM_ADDRESS_MAX ||
        !dm_membership__address_id(seed_address, id) || memcmp(id, m->self_id, DM_ID_PUBLIC_BYTES) == 0)
        return;
    for (size_t i = 0; i < m->nseeds; i++)
        if (strcmp(m->seeds[i], seed_address) == 0)
            return;
    memcpy(m->seed_ids[m->nseeds], id, DM_ID_PUBLIC_BYTES);
    strcpy(m->seeds[m->nseeds++], seed_address);
    m->joined = false;
    m->next_join = now_ms; /* at the next tick, once for all the seeds given */
}

dm_err dm_membership_add_known(dm_membership_t *m, const dm_member_t *member, int64_t now_ms)
{
    if (!member->address || !member->domain || strlen(member->address) >= DM_ADDRESS_MAX ||
        strlen(member->domain) >= DM_SWIM_DOMAIN_MAX)
        return DM_ERR_INVALID;
    if (memcmp(member->id, m->self_id, DM_ID_PUBLIC_BYTES) == 0 ||
        dm_membership__find(m, member->id) != DM_MEMBERSHIP_NONE || !dm_membership__live((uint8_t)member->state))
        return DM_OK;
    if (!dm_membership__address_bound(member->id, member->address))
        return DM_ERR_INVALID;
    if (m->n >= DM_MEMBERSHIP_MAX_MEMBERS)
        return DM_ERR_TOOBIG;
    uint32_t idx;
    dm_err rc = dm_membership__add(m, member->id, member->address, member->domain, &idx);
    if (rc != DM_OK)
        return rc;
    m->n_live++;
    m->mem[idx].inc = member->incarnation;
    m->mem[idx].last_heard = member->last_heard_ms ? member->last_heard_ms : now_ms;
    return DM_OK;
}

void dm_membership_leave(dm_membership_t *m, int64_t now_ms)
{
    (void)now_ms; /* everything goes out at once */
    if (m->leaving)
        return;
    m->leaving = true;
    m->probing = false;
    dm_membership__bcast(m, m->self_id, NULL);
    /* Only our own word that we leave is believed (a third party's is a
     * mere suspicion), so tell as many members as we can directly. */
    dm_membership__tell_recent(m, m->self_id, NULL);
}

bool dm_membership_address_known(const dm_membership_t *m, const char *address)
{
    uint8_t id[DM_ID_PUBLIC_BYTES];
    if (!dm_membership__address_id(address, id))
        return false;
    for (size_t i = 0; i < m->nseeds; i++)
        if (strcasecmp(m->seeds[i], address) == 0)
            return true;
    if (memcmp(id, m->self_id, DM_ID_PUBLIC_BYTES) == 0)
        return strcasecmp(m->self_address, address) == 0;
    uint32_t idx = dm_membership__find(m, id);
    if (idx == DM_MEMBERSHIP_NONE)
        return false;
    char mine[DM_ADDRESS_MAX];
    dm_membership__address(m, idx, mine);
    return strcasecmp(mine, address) == 0;
}

int64_t dm_membership_next_deadline(const dm_membership_t *m)
{
    if (m->next_probe < 0 || m->out_head < m->nout)
        return 0;
    int64_t d = m->next_gossip;
#define S_MIN(x)                                                                                 \
    do {                                                                                         \
        if ((x) < d)                                                                             \
            d = (x);                                                                             \
    } while (0)
    if (!m->leaving)
        S_MIN(m->next_probe);
    if (m->probing) {
        S_MIN(m->probe_end);
        if (!m->probe_indirect)
            S_MIN(m->probe_timeout_at);
    }
    if (!m->joined && m->nseeds)
        S_MIN(m->next_join);
    for (size_t i = 0; i < m->nfwd; i++)
        S_MIN(m->fwd[i].deadline);
    for (size_t a = 0; a < m->naux; a++) {
        if (!m->aux[a].used)
            continue;
        uint32_t idx = dm_membership__find(m, m->aux[a].id);
        if (idx != DM_MEMBERSHIP_NONE && m->mem[idx].state == DM_MEMBER_SUSPECT &&
            (m->aux[a].evidence || dm_membership__suspicion_deadline(&m->aux[a]) > m->next_probe))
            S_MIN(dm_membership__suspicion_deadline(&m->aux[a]));
    }
#undef S_MIN
    return d;
}
