/* membership_priv.h: the layout of dm_membership_t, shared by the files of
 * the SWIM machine. Calls go one way, from the top down:
 *   membership.c        the public API: receive, tick, join, leave
 *   membership_in.c     what a received message may change (trust rules)
 *   membership_state.c  the transitions every input ends in
 *   membership_out.c    the outgoing queue and piggyback
 *   membership_table.c, membership_view.c, membership_wire.c
 *                       member storage, observation, the wire size rule.
 * Not a public header; besides these files only the membership unit tests
 * (tests/unit/membership/membership_test.h) read it, for the probe state. */
#ifndef DM_MEMBERSHIP_PRIV_H
#define DM_MEMBERSHIP_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "membership/membership.h"

#define DM_MEMBERSHIP_NONE UINT32_MAX /* no such member */
#define DM_MEMBERSHIP_NO_AUX 0xFFFFFFu        /* member has no timers (24-bit field) */
#define DM_MEMBERSHIP_MAX_ACCUSERS 8  /* distinct accusers kept per suspicion */
#define DM_MEMBERSHIP_MAX_FORWARDS 64 /* ping-req pings in flight per helper */
#define DM_MEMBERSHIP_MAX_BCAST 8192  /* pending updates; the most sent are dropped */
#define DM_MEMBERSHIP_MAX_SEEDS 16 /* --join addresses and persisted departed members */
#define DM_MEMBERSHIP_SYNC_MAX_BYTES 16384 /* updates per SYNC message, encoded */
#define DM_MEMBERSHIP_MAX_SYNC_JOBS 4      /* member lists queued for joiners */
#define DM_MEMBERSHIP_KNOCK_SEQ 1          /* JOIN seq of a member asking to be known, not for a list */

/* One member other than self: 56 bytes, since a 10,000-node simulation
 * holds 10^8 of them. Strings live in the arena at str: address (or only
 * its endpoint when short_addr: the address is "HEX(id)@endpoint"), NUL,
 * domain, NUL. aux indexes the timers of suspect, dead and left members.
 * doubt: one probe failed; it is probed again before it is accused.
 * spoke: it talks to us (a crowd of silent joiners cannot outrank it). */
typedef struct {
    uint8_t id[DM_ID_PUBLIC_BYTES];
    uint64_t inc;
    int64_t last_heard;
    uint32_t str;
    uint32_t aux : 24;
    uint32_t state : 3;
    uint32_t short_addr : 1;
    uint32_t doubt : 1;
    uint32_t spoke : 1; /* it sent us something besides a JOIN */
} dm_membership__member_t;

/* Timers of a member that is not alive. */
typedef struct {
    bool used;
    uint8_t id[DM_ID_PUBLIC_BYTES];
    int64_t since; /* state entered */
    int64_t min_ms, max_ms;
    unsigned k, confirmations, n_accusers;
    bool evidence;     /* our own probe failed too: only then may it turn dead */
    bool claimed_dead; /* a member declared it dead (its own timeout ran out) */
    uint8_t accusers[DM_MEMBERSHIP_MAX_ACCUSERS][DM_ID_PUBLIC_BYTES];
} dm_membership__aux_t;

/* A pending piggyback update: the current record of id is sent; from is
 * the accuser of a suspicion. */
typedef struct {
    uint8_t id[DM_ID_PUBLIC_BYTES];
    bool has_from;
    uint8_t from[DM_ID_PUBLIC_BYTES];
    unsigned transmits;
} dm_membership__bcast_t;

/* A message waiting for dm_membership_next_outgoing; updates are filled in
 * when it is taken, so they are the freshest. */
typedef struct {
    dm_swim_type type;
    uint32_t seq;
    bool has_to_id;
    uint8_t to_id[DM_ID_PUBLIC_BYTES];
    char to[DM_ADDRESS_MAX]; /* empty: look the address up by to_id */
    uint8_t target_id[DM_ID_PUBLIC_BYTES];
    char target_address[DM_ADDRESS_MAX];
    bool carry; /* carry carry_id's record first, whatever its send count */
    uint8_t carry_id[DM_ID_PUBLIC_BYTES];
    uint8_t (*sync_ids)[DM_ID_PUBLIC_BYTES]; /* SYNC: snapshot, owned */
    size_t sync_n, sync_pos;
} dm_membership__out_t;

/* A token bucket: rate per second, at most burst saved up. */
typedef struct {
    double tokens;
    int64_t last_ms;
    bool started;
} dm_membership__bucket_t;

/* A ping sent on behalf of a ping-req; only target's ack is relayed. */
typedef struct {
    uint32_t seq, orig_seq;
    uint8_t requester[DM_ID_PUBLIC_BYTES];
    uint8_t target[DM_ID_PUBLIC_BYTES];
    int64_t deadline;
} dm_membership__fwd_t;

/* The introduction bucket of one member that tells us of others. */
typedef struct {
    uint8_t id[DM_ID_PUBLIC_BYTES];
    dm_membership__bucket_t bucket;
    int64_t used_ms; /* last introduction: the least recent is replaced */
} dm_membership__introducer_t;

/* A member that got our member list, and when. */
typedef struct {
    uint8_t id[DM_ID_PUBLIC_BYTES];
    int64_t at_ms;
} dm_membership__synced_t;

struct dm_membership {
    dm_membership_config_t cfg;
    uint64_t rng;
    uint64_t hash_key;

    /* self */
    uint8_t self_id[DM_ID_PUBLIC_BYTES];
    char self_address[DM_ADDRESS_MAX];
    char self_domain[DM_SWIM_DOMAIN_MAX];
    uint64_t self_inc;
    bool leaving;

    /* members: array (also the probe order), id hash, string arena */
    dm_membership__member_t *mem;
    size_t n, cap;
    size_t n_live; /* alive or suspect */
    uint32_t *slots; /* index + 1, 0 = empty; linear probing */
    size_t nslots;
    char *arena;
    size_t arena_len, arena_cap, arena_garbage;
    dm_membership__aux_t *aux;
    size_t naux, auxcap;
    uint32_t aux_free; /* a used=false slot to try first */

    /* probing */
    size_t probe_pos;
    int64_t next_probe;
    bool probing;
    uint8_t probe_target[DM_ID_PUBLIC_BYTES];
    uint32_t probe_seq;
    int64_t probe_timeout_at, probe_end;
    bool probe_indirect;
    unsigned probe_expected_nacks, probe_nacks;
    uint32_t next_seq;
    unsigned lhm;
    uint8_t probe_helpers[DM_SWIM_MAX_UPDATES][DM_ID_PUBLIC_BYTES]; /* asked to ping-req */
    size_t probe_nhelpers; /* only their relayed acks and nacks count */
    bool reprobe; /* probe reprobe_id next: it failed one probe */
    uint8_t reprobe_id[DM_ID_PUBLIC_BYTES];

    dm_membership__fwd_t fwd[DM_MEMBERSHIP_MAX_FORWARDS];
    size_t nfwd;

    /* dissemination */
    int64_t next_gossip;
    dm_membership__bcast_t *bcast;
    size_t nbcast, bcastcap;

    /* join */
    char seeds[DM_MEMBERSHIP_MAX_SEEDS][DM_ADDRESS_MAX];
    uint8_t seed_ids[DM_MEMBERSHIP_MAX_SEEDS][DM_ID_PUBLIC_BYTES]; /* from each address */
    size_t nseeds;
    bool joined;
    int64_t next_join;
    uint32_t join_seq;     /* seq of our JOINs: a seed's SYNC must carry it */
    int64_t join_until_ms; /* ... and arrive before this (0: not joining) */

    /* outgoing queue [out_head, nout) */
    dm_membership__out_t *out;
    size_t out_head, nout, outcap;

    /* admission of members we did not know (membership_in.c) */
    dm_membership__bucket_t join_bucket;  /* JOINs from strangers */
    dm_membership__bucket_t intro_bucket; /* members introduced by a third party's gossip */
    dm_membership__introducer_t introducers[DM_MEMBERSHIP_INTRO_SENDERS]; /* ... by each of them */
    size_t nintroducers;
    dm_membership__bucket_t resync_bucket; /* member lists for JOINs from known members */
    dm_membership__synced_t synced[DM_MEMBERSHIP_RESYNC_RECENT];
    size_t nsynced;

    dm_membership_event_fn on_event;
    void *on_event_ctx;
};

static inline bool dm_membership__live(uint8_t state)
{
    return state == DM_MEMBER_ALIVE || state == DM_MEMBER_SUSPECT;
}

/* Members alive or suspect, self included: the N of every formula. */
static inline size_t dm_membership__n(const dm_membership_t *m) { return m->n_live + 1; }

/* membership_state.c: the transitions every input ends in */
/* Tells the owner (on_event) that member idx changed as ev says. */
void dm_membership__emit(dm_membership_t *m, dm_membership_event ev, uint32_t idx, int64_t now);
/* Someone says we are not alive (or alive at a newer incarnation): outbid
 * it, saturating at UINT64_MAX, and tell everyone. */
void dm_membership__refute(dm_membership_t *m, uint64_t inc);
/* Moves member idx to st: keeps the live count right and starts the
 * timer of the new state (none for alive). Emits nothing. */
void dm_membership__set_state(dm_membership_t *m, uint32_t idx, dm_member_state st, int64_t now);
/* Moves the local health multiplier by delta within [0, max_lhm - 1]. */
void dm_membership__lhm_delta(dm_membership_t *m, int delta);
/* Starts the suspicion of idx; accuser may be NULL; evidence: our own
 * probe failed (only an evidenced suspicion may become a death). */
void dm_membership__start_suspicion(dm_membership_t *m, uint32_t idx, const uint8_t *accuser,
                           bool evidence, int64_t now);
/* Counts an independent confirmation; true if accuser was a new one. */
bool dm_membership__confirm(dm_membership_t *m, uint32_t idx, const uint8_t *accuser);
/* Probes idx next (a third party suspects it: see for ourselves). */
void dm_membership__want_probe(dm_membership_t *m, uint32_t idx);
/* Suspect idx is dead: its suspicion ran out, or a member says so and our
 * own probe failed too. */
void dm_membership__declare_dead(dm_membership_t *m, uint32_t idx, int64_t now);

/* membership_in.c: what a received message may change */
/* The node id written in the first 64 characters of address; false if
 * there is none. */
bool dm_membership__address_id(const char *address, uint8_t id[DM_ID_PUBLIC_BYTES]);
/* True if address is "HEX(id)@endpoint" for this very id. */
bool dm_membership__address_bound(const uint8_t id[DM_ID_PUBLIC_BYTES], const char *address);
/* Adds a member we did not know, alive (or suspect) as u says, if the
 * table has room; bucket NULL: no rate limit (a SYNC we asked for, a JOIN
 * already admitted). rebroadcast: spread it. Index or DM_MEMBERSHIP_NONE. */
uint32_t dm_membership__admit(dm_membership_t *m, const dm_swim_update_t *u, dm_membership__bucket_t *bucket,
                     double rate_per_s, double burst, bool rebroadcast, int64_t now);
/* The sender's own record about itself (authenticated): its word on its
 * address, domain, incarnation and leaving. */
void dm_membership__apply_own(dm_membership_t *m, uint32_t idx, const dm_swim_update_t *u, int64_t now);
/* A fact about someone else heard from member sender: believed only as
 * far as a third party can be (docs/membership.md, "Trust"). */
void dm_membership__apply_heard(dm_membership_t *m, const dm_swim_update_t *u,
                       const uint8_t sender[DM_ID_PUBLIC_BYTES], bool sync, int64_t now);

/* Gossips member news's record straight to DM_MEMBERSHIP_DIRECT_NEWS live
 * members (those that talk to us first), except member except (or NULL). */
void dm_membership__tell_recent(dm_membership_t *m, const uint8_t *news, const uint8_t *except);
/* True if id is the id of an address given to dm_membership_join. */
bool dm_membership__is_seed(const dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES]);
/* A JOIN from the sender (sidx: its index, or DM_MEMBERSHIP_NONE for a
 * stranger): admission, then our member list. DM_ERR_DENIED if refused. */
DM_NODISCARD dm_err dm_membership__on_join(dm_membership_t *m, uint32_t sidx, const dm_swim_msg_t *msg,
                                  int64_t now);
/* A ping-req from member msg->sender: served only for a live member. */
void dm_membership__on_ping_req(dm_membership_t *m, const dm_swim_msg_t *msg, int64_t now_ms);

/* membership_out.c */
/* Room for one more outgoing message; NULL on out of memory. */
dm_membership__out_t *dm_membership__out_push(dm_membership_t *m);
/* Queues a message of type to member id, addressed by id (the address the
 * table holds is looked up when the message is taken, never one a message
 * names); NULL on out of memory. */
dm_membership__out_t *dm_membership__out_to_member(dm_membership_t *m, dm_swim_type type, uint32_t seq,
                                 const uint8_t id[DM_ID_PUBLIC_BYTES]);
/* Queues the current record of id for piggybacking (from: the accuser). */
void dm_membership__bcast(dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES], const uint8_t *from);
/* The update describing id now (self included); false if id is unknown. */
bool dm_membership__make_update(const dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES],
                       const uint8_t *from, dm_swim_update_t *u);

/* membership_view.c */
/* Fills v for member idx; addr (DM_ADDRESS_MAX bytes) holds the address. */
void dm_membership__member_view(const dm_membership_t *m, uint32_t idx, char *addr, dm_member_t *v);
/* Lifeguard: from max down to min as log(C+1)/log(K+1). */
int64_t dm_membership__suspicion_deadline(const dm_membership__aux_t *x);

/* membership_table.c */
uint64_t dm_membership__rand(dm_membership_t *m);
uint32_t dm_membership__find(const dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES]);
DM_NODISCARD dm_err dm_membership__add(dm_membership_t *m, const uint8_t id[DM_ID_PUBLIC_BYTES],
                              const char *address, const char *domain, uint32_t *idx_out);
void dm_membership__remove(dm_membership_t *m, uint32_t idx);
DM_NODISCARD dm_err dm_membership__set_strings(dm_membership_t *m, uint32_t idx, const char *address,
                                      const char *domain);
bool dm_membership__strings_equal(const dm_membership_t *m, uint32_t idx, const char *address,
                         const char *domain);
/* Writes the member's full address into out (DM_ADDRESS_MAX bytes). */
void dm_membership__address(const dm_membership_t *m, uint32_t idx, char *out);
const char *dm_membership__domain(const dm_membership_t *m, uint32_t idx);
void dm_membership__shuffle(dm_membership_t *m);
uint32_t dm_membership__aux_get(dm_membership_t *m, uint32_t idx); /* allocates; NO_AUX on NOMEM */
void dm_membership__aux_put(dm_membership_t *m, uint32_t idx);
void dm_membership__free_table(dm_membership_t *m);
/* The endpoint part of address when it is "HEX(id)@endpoint", else NULL. */
const char *dm_membership__short_address(const uint8_t id[DM_ID_PUBLIC_BYTES], const char *address);

/* membership_wire.c: exact encoded size of one update inside a SwimMessage
 * (tag and length prefix included). */
size_t dm_membership__update_wire_size(const dm_swim_update_t *u);

#endif
