/* membership.h: who is in the mesh. SWIM failure detection with Lifeguard's
 * refinements, as a pure state machine: no sockets, no clocks, no threads.
 *
 * The caller (the node loop, the simulator, the tests) feeds it messages
 * (dm_membership_receive) and time (dm_membership_tick, every call takes
 * now_ms from one monotonic clock), and drains what it wants sent
 * (dm_membership_next_outgoing) until that returns false. Randomness comes
 * from the seed given to dm_membership_new, so a run is reproducible.
 *
 * Protocol, in short (docs/membership.md has the reasons and the numbers):
 * - every probe interval, ping the next member of a shuffled round-robin
 *   list; no ack within the probe timeout: ask indirect_k members to ping it
 *   (ping-req) and ping it once more; still no ack at the end of the
 *   interval: probe it again in the next interval (reprobe_before_suspect),
 *   and if that fails too, suspect it;
 * - a suspicion becomes a death when its timeout runs out; the timeout starts
 *   at suspicion_max_mult times the minimum and falls towards the minimum as
 *   independent members confirm it (Lifeguard); the minimum grows with
 *   log10(N); a suspected member refutes with a higher incarnation, and a
 *   ping to a suspect carries the suspicion (Lifeguard's buddy system);
 * - the Local Health Multiplier (LHM) counts this node's own trouble (missed
 *   acks and nacks, having to refute) and stretches the probe interval and
 *   timeout so an overloaded node does not accuse healthy ones;
 * - every update is piggybacked on pings, acks and gossip messages (to
 *   gossip_fanout random members every gossip interval) up to
 *   retransmit_mult * ceil(log10(N + 1)) times, the least sent first, within
 *   max_updates_per_msg entries and max_piggyback_bytes;
 * - joining: a JOIN to any member's address; it answers with its member list
 *   (SYNC messages) and spreads the newcomer. Leaving: state left.
 *
 * Ownership: dm_membership_t owns everything it holds. Strings passed in are
 * copied. Pointers handed out (dm_member_t in callbacks) are borrowed and
 * valid only during the callback. Callbacks must not call back into the
 * same dm_membership_t. Not thread-safe: one thread drives one machine. */
#ifndef DM_MEMBERSHIP_H
#define DM_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "identity/identity.h"

/* Defaults (docs/membership.md explains each choice). */
#define DM_MEMBERSHIP_PROBE_INTERVAL_MS 400    /* one probe per interval */
#define DM_MEMBERSHIP_PROBE_TIMEOUT_MS 200     /* direct ack, then ping-req */
#define DM_MEMBERSHIP_GOSSIP_INTERVAL_MS 200   /* piggyback-only gossip */
#define DM_MEMBERSHIP_INDIRECT_K 3             /* ping-req helpers */
#define DM_MEMBERSHIP_GOSSIP_FANOUT 3          /* members per gossip round */
#define DM_MEMBERSHIP_RETRANSMIT_MULT 4        /* times ceil(log10(N+1)) */
#define DM_MEMBERSHIP_SUSPICION_MULT 4         /* min timeout, probe intervals x log10 N */
#define DM_MEMBERSHIP_SUSPICION_MAX_MULT 6     /* max timeout = this x min */
#define DM_MEMBERSHIP_MAX_LHM 8                /* LHM score stays below this */
#define DM_MEMBERSHIP_MAX_UPDATES_PER_MSG 16   /* piggybacked entries */
#define DM_MEMBERSHIP_MAX_PIGGYBACK_BYTES 1024 /* their encoded size */
#define DM_MEMBERSHIP_JOIN_RETRY_MS 1000       /* resend JOIN until answered */
#define DM_MEMBERSHIP_DEAD_RETENTION_MS 60000  /* dead/left kept this long */
#define DM_MEMBERSHIP_GOSSIP_TO_DEAD_MS 5000   /* gossip also to the recently dead */
#define DM_MEMBERSHIP_NACK_PERCENT 80          /* helper nacks at this % of probe timeout */

/* Trust limits (docs/membership.md, "Trust"). */
#define DM_MEMBERSHIP_MAX_MEMBERS 16384        /* members kept, any state; newcomers refused beyond */
#define DM_MEMBERSHIP_JOIN_RATE_PER_S 8        /* strangers admitted by JOIN, per second */
#define DM_MEMBERSHIP_JOIN_BURST 64            /* ... and at most this many at once */
#define DM_MEMBERSHIP_INTRO_RATE_PER_S 64      /* members learned from others' gossip, per second */
#define DM_MEMBERSHIP_INTRO_BURST 1024         /* ... and at most this many at once */
#define DM_MEMBERSHIP_INTRO_SENDER_RATE_PER_S 16 /* ... of those, introduced by any one member */
#define DM_MEMBERSHIP_INTRO_SENDER_BURST 256   /* ... and at most this many at once */
#define DM_MEMBERSHIP_INTRO_SENDERS 64         /* introducers whose buckets are kept (LRU) */
#define DM_MEMBERSHIP_SYNC_WINDOW_MS 30000     /* a seed's SYNC is a list this long after our JOIN */
#define DM_MEMBERSHIP_RESYNC_MS 10000          /* one member list per member per this long */
#define DM_MEMBERSHIP_RESYNC_RATE_PER_S 2      /* lists for known members' JOINs, per second */
#define DM_MEMBERSHIP_RESYNC_BURST 16          /* ... and at most this many at once */
#define DM_MEMBERSHIP_RESYNC_RECENT 128        /* list recipients remembered (oldest forgotten) */
#define DM_MEMBERSHIP_MAX_INC_JUMP (1u << 20)  /* a third party's incarnation above ours by more is a lie */
#define DM_MEMBERSHIP_DIRECT_NEWS 64           /* members told directly of a join we admit or our leave */

/* Hard limits of the wire structs. */
#define DM_SWIM_MAX_UPDATES 32   /* entries per message, any config */
#define DM_SWIM_DOMAIN_MAX 64    /* bytes incl. NUL */
#define DM_SWIM_MAX_WIRE_BYTES 65536 /* decode refuses anything larger */

typedef enum {
    DM_MEMBER_ALIVE = 0,
    DM_MEMBER_SUSPECT = 1,
    DM_MEMBER_DEAD = 2,
    DM_MEMBER_LEFT = 3,
    DM_MEMBER_UNKNOWN = 4 /* only returned by dm_membership_state_of */
} dm_member_state;

/* A member as the caller sees it. In outputs the strings are borrowed (see
 * the function); in inputs they are copied. */
typedef struct {
    uint8_t id[DM_ID_PUBLIC_BYTES]; /* ed25519 public key */
    const char *address;            /* "HEX@tcp://host:port" */
    const char *domain;
    dm_member_state state;
    uint64_t incarnation;
    int64_t last_heard_ms; /* last message from it (or fact about it) */
} dm_member_t;

/* One membership fact as carried on the wire. from: who suspects (SUSPECT
 * only; confirmations are counted per distinct accuser). */
typedef struct {
    uint8_t id[DM_ID_PUBLIC_BYTES];
    char address[DM_ADDRESS_MAX];
    char domain[DM_SWIM_DOMAIN_MAX];
    dm_member_state state; /* ALIVE, SUSPECT, DEAD or LEFT */
    uint64_t incarnation;
    bool has_from;
    uint8_t from[DM_ID_PUBLIC_BYTES];
} dm_swim_update_t;

typedef enum {
    DM_SWIM_PING = 1,     /* seq, target_id; answer ACK */
    DM_SWIM_PING_REQ = 2, /* seq, target_id, target_address; ping it for me */
    DM_SWIM_ACK = 3,      /* seq echoed */
    DM_SWIM_NACK = 4,     /* seq echoed: a helper got no ack from the target */
    DM_SWIM_GOSSIP = 5,   /* piggyback only */
    DM_SWIM_JOIN = 6,     /* send me your member list */
    DM_SWIM_SYNC = 7      /* part of a member list (updates) */
} dm_swim_type;

/* One message. sender is the sending node's own record (ALIVE, or LEFT when
 * leaving); a receiver learns peers from it. */
typedef struct {
    dm_swim_type type;
    uint32_t seq;
    dm_swim_update_t sender;
    uint8_t target_id[DM_ID_PUBLIC_BYTES];
    char target_address[DM_ADDRESS_MAX];
    size_t n_updates;
    dm_swim_update_t updates[DM_SWIM_MAX_UPDATES];
} dm_swim_msg_t;

/* A message to send: to `to` (an address); to_id is set when the machine
 * knows the destination's id (it does not for a JOIN to a seed address). */
typedef struct {
    char to[DM_ADDRESS_MAX];
    bool has_to_id;
    uint8_t to_id[DM_ID_PUBLIC_BYTES];
    dm_swim_msg_t msg;
} dm_swim_out_t;

typedef struct {
    int64_t probe_interval_ms;
    int64_t probe_timeout_ms; /* <= probe_interval_ms / 2 */
    int64_t gossip_interval_ms;
    int64_t join_retry_ms;
    int64_t dead_retention_ms;
    int64_t gossip_to_dead_ms;
    unsigned indirect_k;
    unsigned gossip_fanout;
    unsigned retransmit_mult;
    unsigned suspicion_mult;     /* >= 1 */
    unsigned suspicion_max_mult; /* >= 1 */
    unsigned max_lhm;            /* >= 1; 1 turns LHM off */
    size_t max_updates_per_msg;  /* 1..DM_SWIM_MAX_UPDATES */
    size_t max_piggyback_bytes;
    bool reprobe_before_suspect; /* a failed probe is repeated before accusing */
} dm_membership_config_t;

typedef enum {
    DM_MEMBERSHIP_EV_JOINED = 0, /* a member we did not know, alive */
    DM_MEMBERSHIP_EV_ALIVE,      /* back to alive (refuted, or rejoined) */
    DM_MEMBERSHIP_EV_SUSPECT,
    DM_MEMBERSHIP_EV_DEAD,
    DM_MEMBERSHIP_EV_LEFT,
    DM_MEMBERSHIP_EV_UPDATED, /* same state, new address or domain */
    DM_MEMBERSHIP_EV_REMOVED  /* dead/left record reclaimed */
} dm_membership_event;

typedef struct dm_membership dm_membership_t;

/* Called for each change; member is borrowed for the call. */
typedef void (*dm_membership_event_fn)(void *ctx, dm_membership_event ev,
                                       const dm_member_t *member, int64_t now_ms);
/* Called per member by dm_membership_list; member borrowed for the call. */
typedef void (*dm_membership_each_fn)(void *ctx, const dm_member_t *member);

/* Fills c with the defaults above. Cannot fail. */
void dm_membership_config_default(dm_membership_config_t *c);
/* DM_OK if c is usable, else DM_ERR_INVALID and a line naming the setting
 * and its valid range appended to why (base/err.h). */
DM_NODISCARD dm_err dm_membership_config_check(const dm_membership_config_t *c, dm_buf_t *why);

/* A machine for node self_id (alive, incarnation 0). cfg NULL = defaults;
 * it is copied. DM_ERR_INVALID for a bad config or over-long strings,
 * DM_ERR_NOMEM; *out is NULL on error. */
DM_NODISCARD dm_err dm_membership_new(const uint8_t self_id[DM_ID_PUBLIC_BYTES],
                                      const char *self_domain, const char *self_address,
                                      const dm_membership_config_t *cfg, uint64_t seed,
                                      dm_membership_t **out);
/* Frees everything. NULL-safe; sets *self_p to NULL. */
void dm_membership_destroy(dm_membership_t **self_p);

/* Sets the event callback (fn NULL: none). */
void dm_membership_on_event(dm_membership_t *m, dm_membership_event_fn fn, void *ctx);

/* Starts with incarnation inc (a restarted node that persisted its own
 * incarnation passes it + 1). Call before any other input. */
void dm_membership_set_incarnation(dm_membership_t *m, uint64_t inc);

/* Asks the member at seed_address ("HEX(id)@tcp://...", not this node)
 * for its member list, at the next tick; retried every join_retry_ms until
 * some member answers. Several seeds: call once each (at most 16; others
 * and repeats are ignored). */
void dm_membership_join(dm_membership_t *m, const char *seed_address, int64_t now_ms);

/* True if address is this node's, a member's (any state) or a seed's:
 * the only places the machine ever sends to. */
bool dm_membership_address_known(const dm_membership_t *m, const char *address);

/* Re-adds a persisted member at start-up: it is probed like any other, and
 * not announced (it is not news). Ignores self and members already known.
 * DM_ERR_INVALID for over-long strings, DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_membership_add_known(dm_membership_t *m, const dm_member_t *member,
                                            int64_t now_ms);

/* Gives back spare capacity, for example after add_known of a long
 * persisted list (the simulator holds N^2 members). Cannot fail. */
void dm_membership_trim(dm_membership_t *m);

/* Feeds one received message. from_id: the peer id the transport
 * authenticated (CURVE), or NULL when there is none (tests, simulator); a
 * message whose sender is not from_id, whose sender address does not carry
 * the sender's id, or whose sender is not a member (only a JOIN, or a SYNC
 * from a seed we asked, may come from a stranger; a JOIN only while the
 * admission rate and the member cap allow) is refused (DM_ERR_DENIED) and
 * changes nothing. A message that breaks the protocol (unknown type, sender
 * is self) is DM_ERR_PROTO and changes nothing. */
DM_NODISCARD dm_err dm_membership_receive(dm_membership_t *m, const uint8_t *from_id,
                                          const dm_swim_msg_t *msg, int64_t now_ms);

/* Runs the timers due at now_ms. Cheap when nothing is due. */
void dm_membership_tick(dm_membership_t *m, int64_t now_ms);

/* Announces that this node leaves (state left, gossiped at once to
 * gossip_fanout members). Keep ticking and draining for a few gossip
 * intervals so it spreads; the machine stops probing. */
void dm_membership_leave(dm_membership_t *m, int64_t now_ms);

/* Takes the next message to send into *out. False when there is none. */
bool dm_membership_next_outgoing(dm_membership_t *m, dm_swim_out_t *out);

/* When dm_membership_tick must be called next (absolute ms); 0 if tick was
 * never called or messages are waiting to be taken. */
int64_t dm_membership_next_deadline(const dm_membership_t *m);

/* Members other than self, in any state (dead and left are kept for
 * dead_retention_ms). */
size_t dm_membership_count(const dm_membership_t *m);
/* Members alive or suspect, other than self. */
size_t dm_membership_count_live(const dm_membership_t *m);
/* Calls fn for self first, then every member (in no particular order). */
void dm_membership_list(const dm_membership_t *m, dm_membership_each_fn fn, void *ctx);
/* State of member id (self included); DM_MEMBER_UNKNOWN if not known. */
dm_member_state dm_membership_state_of(const dm_membership_t *m,
                                       const uint8_t id[DM_ID_PUBLIC_BYTES]);
/* Known incarnation of id; 0 if unknown. */
uint64_t dm_membership_incarnation_of(const dm_membership_t *m,
                                      const uint8_t id[DM_ID_PUBLIC_BYTES]);
/* This node's own incarnation. */
uint64_t dm_membership_incarnation(const dm_membership_t *m);

/* Lifeguard observations. The LHM score (0 = healthy). */
unsigned dm_membership_lhm(const dm_membership_t *m);
/* The current probe interval and timeout, LHM applied. */
int64_t dm_membership_probe_interval(const dm_membership_t *m);
int64_t dm_membership_probe_timeout(const dm_membership_t *m);
/* When the suspicion of id becomes a death (absolute ms), or -1 if id is
 * not suspect. */
int64_t dm_membership_suspicion_deadline(const dm_membership_t *m,
                                         const uint8_t id[DM_ID_PUBLIC_BYTES]);
/* How many times an update is sent before it is dropped, for the current N. */
unsigned dm_membership_retransmit_limit(const dm_membership_t *m);

/* Wire form (node/membership/membership_wire.c, protobuf SwimMessage in
 * proto/membership.proto). encode: *out is malloc'd, the caller frees; the
 * address of an entry travels as the endpoint only when it is
 * "HEX(id)@endpoint". DM_ERR_INVALID for a message that is not valid,
 * DM_ERR_NOMEM. decode: checks every field (sizes, enums, counts, strings
 * without NULs) and refuses inputs over DM_SWIM_MAX_WIRE_BYTES
 * (DM_ERR_TOOBIG) or malformed (DM_ERR_PROTO); *msg is zeroed on error. */
DM_NODISCARD dm_err dm_membership_encode(const dm_swim_msg_t *msg, uint8_t **out,
                                         size_t *out_len);
DM_NODISCARD dm_err dm_membership_decode(const uint8_t *data, size_t len, dm_swim_msg_t *msg);
/* The encoded size of msg without encoding it (0 if it cannot be encoded). */
size_t dm_membership_encoded_size(const dm_swim_msg_t *msg);

/* Short lowercase names: "alive", "suspect", "dead", "left", "unknown". */
const char *dm_membership_state_name(dm_member_state s);

#endif
