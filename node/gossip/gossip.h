/* gossip.h: the node's side of the mesh: the SWIM membership machine
 * (membership/membership.h) and the catalog's Scuttlebutt exchange
 * (catalog/catalog.h) wired to CurveZMQ, and the member list kept on disk.
 *
 * Messages between nodes travel in an Envelope with body `swim` or
 * `catalog_sync` over the same ROUTER socket clients use. Each node sends
 * to a peer through a DEALER socket of its own, authenticated with its node key, so the
 * receiver's ZAP handler hands over the sender's CURVE key and a message
 * that claims another sender is refused. Sends never block: queues to a
 * peer are bounded (DM_GOSSIP_PEER_HWM) and a full queue drops. Driven by
 * the node loop's thread only. */
#ifndef DM_GOSSIP_H
#define DM_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "catalog/catalog.h"
#include "identity/identity.h"
#include "membership/membership.h"
#include "proto/mesh.pb-c.h"

#define DM_GOSSIP_MEMBERS_FILE "members"   /* in the data directory */
#define DM_GOSSIP_PEER_HWM 64              /* messages queued to one peer */
#define DM_GOSSIP_PEER_MAX_IN 4096         /* bytes a peer may send back on our send-only socket (the CURVE handshake must fit) */
#define DM_GOSSIP_LEAVE_MS 1000            /* how long a leaving node keeps gossiping */
#define DM_GOSSIP_PEER_IDLE_MS 120000      /* sockets to gone peers closed after this */
#define DM_GOSSIP_MAX_PEERS 256            /* peer sockets open at once; least recently used closed */
#define DM_GOSSIP_SYNC_MS 1000             /* catalog digest hash to one random member */
#define DM_GOSSIP_PUSH_FANOUT 3            /* members poked at once when the catalog changes */
#define DM_GOSSIP_DELTA_BYTES (256 << 10)  /* catalog entries per message (one bigger entry travels alone) */

typedef struct dm_gossip dm_gossip_t;

typedef struct {
    const char *dir;            /* data directory (member list file) */
    const char *domain;
    const char *address;        /* this node's address */
    const char *const *seeds;   /* --join addresses, may be NULL */
    size_t nseeds;
    const dm_membership_config_t *config; /* NULL: defaults */
    dm_catalog_t *catalog;      /* borrowed; must outlive the gossip */
} dm_gossip_opts_t;

/* Creates the membership machine (incarnation above the one persisted),
 * re-adds the persisted members and joins the seeds. id is borrowed. */
DM_NODISCARD dm_err dm_gossip_new(void *ctx, const dm_identity_t *id, const dm_gossip_opts_t *opts,
                                  int64_t now_ms, dm_gossip_t **out);
/* Closes the peer sockets and frees everything. NULL-safe. */
void dm_gossip_destroy(dm_gossip_t **self_p);

/* A swim frame from a client whose CURVE public key is user_id (64 hex
 * characters, the ZAP User-Id; NULL if unknown). Malformed or forged
 * messages are logged and dropped. */
void dm_gossip_receive(dm_gossip_t *self, const uint8_t *data, size_t len, const char *user_id,
                       int64_t now_ms);
/* A catalog anti-entropy message from a client whose CURVE key is user_id.
 * Messages whose reply_to is not that key's node are dropped. */
void dm_gossip_catalog_receive(dm_gossip_t *self, const Dm__CatalogSync *msg, const char *user_id,
                               int64_t now_ms);
/* This node published something: spread it now (pokes a few members). */
void dm_gossip_catalog_changed(dm_gossip_t *self, int64_t now_ms);
/* A client handed this node an entry the digest does not advertise (a
 * governance entry, catalog.h): sends a few members this node's digest
 * with its hash, which starts the exchange even when the hashes agree;
 * each answers with its own digest, and the entries above it go to it. */
void dm_gossip_catalog_offer(dm_gossip_t *self, int64_t now_ms);

/* Runs due timers, sends what is queued, saves the member list when it
 * changed. Call on every loop iteration. */
void dm_gossip_tick(dm_gossip_t *self, int64_t now_ms);
/* Milliseconds until dm_gossip_tick has work (>= 0). */
long dm_gossip_wait_ms(const dm_gossip_t *self, int64_t now_ms);
/* Announces this node leaves; the caller keeps ticking for
 * DM_GOSSIP_LEAVE_MS so the news spreads. */
void dm_gossip_leave(dm_gossip_t *self, int64_t now_ms);

/* Bytes and messages this node has sent to peers since it started. */
void dm_gossip_stats(const dm_gossip_t *self, uint64_t *bytes_sent, uint64_t *msgs_sent);

/* The membership machine, for listing members. Borrowed. */
const dm_membership_t *dm_gossip_membership(const dm_gossip_t *self);

/* True if id is this node, or a member membership holds alive or suspect:
 * the peers whose mesh messages (SWIM other than JOIN, catalog sync) are
 * accepted. Dead, left and unknown ids are not members. Cannot fail. */
bool dm_gossip_is_member(const dm_gossip_t *self, const uint8_t id[DM_ID_PUBLIC_BYTES]);

#endif
