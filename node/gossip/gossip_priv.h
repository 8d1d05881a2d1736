/* gossip_priv.h: the layout of dm_gossip_t, shared by the gossip layer's
 * files. Calls go one way, from the top down:
 *   gossip.c          lifecycle, received SWIM messages, the tick
 *   gossip_catalog.c  the catalog's anti-entropy rounds (who to poke, when)
 *   gossip_members.c  who is a member; the member list on disk
 *   gossip_peers.c    one send-only socket per peer, sending and flushing.
 * Not a public header. */
#ifndef DM_GOSSIP_PRIV_H
#define DM_GOSSIP_PRIV_H

#include <sodium.h>

#include "gossip/gossip.h"
#include "proto/mesh.pb-c.h"

#define DM_GOSSIP_RECONNECT_MAX_MS 2000 /* back-off ceiling towards a dead peer */

typedef struct dm_gossip__peer {
    char address[DM_ADDRESS_MAX];
    void *sock;
    int64_t last_used_ms;
    struct dm_gossip__peer *next;
} dm_gossip__peer_t;

struct dm_gossip {
    void *ctx;
    const dm_identity_t *id;
    dm_membership_t *m;
    char *dir;
    uint8_t curve_pub[DM_ID_CURVE_BYTES];
    uint8_t *curve_sec; /* sodium_malloc'd, wiped on destroy */
    dm_gossip__peer_t *peers;
    bool dirty;
    uint64_t saved_incarnation;
    dm_swim_msg_t in;  /* decode buffer: the struct is large */
    dm_swim_out_t out; /* drain buffer */
    uint64_t bytes_sent, msgs_sent;
    dm_catalog_t *catalog;
    char *address;
    uint8_t hash[crypto_hash_sha256_BYTES]; /* of the encoded digest */
    bool hash_valid;
    int64_t next_sync_ms;
    uint64_t rng;
};

/* gossip_members.c: the member list on disk. */
/* Writes the list now (atomically; a failure is logged and retried at the
 * next change). */
void dm_gossip__save(dm_gossip_t *self);
/* Loads the persisted list at start: the incarnation above the saved one,
 * every member a join seed. A missing file is a first start. */
void dm_gossip__load(dm_gossip_t *self, int64_t now_ms);

/* gossip_peers.c: peer sockets. */
/* Closes one peer's socket and frees it. */
void dm_gossip__peer_close(dm_gossip__peer_t *p);
/* Sends env to address on its peer socket (opened on demand, for
 * addresses membership holds only); drops it if the peer's queue is full. */
void dm_gossip__send(dm_gossip_t *self, const char *address, const Dm__Envelope *env,
                     int64_t now_ms);
/* True if user_id (the hex CURVE key the transport authenticated, may be
 * NULL) is the key of node id: a peer speaks only for itself. */
bool dm_gossip__sent_by(const uint8_t id[DM_ID_PUBLIC_BYTES], const char *user_id);
/* Sends everything membership queued. */
void dm_gossip__flush(dm_gossip_t *self, int64_t now_ms);
/* Closes the sockets of peers idle for DM_GOSSIP_PEER_IDLE_MS. */
void dm_gossip__close_idle_peers(dm_gossip_t *self, int64_t now_ms);

/* gossip_catalog.c: the catalog's anti-entropy. */
/* Offers our catalog hash to k random live members. */
void dm_gossip__poke(dm_gossip_t *self, unsigned k, int64_t now_ms);

#endif
