/* gossip_peers.c: the peer side of gossip: one send-only CURVE DEALER per
 * peer address, opened on demand and closed when idle, and the flush of
 * what membership queued. */
#include "gossip/gossip_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "base/log.h"
#include "transport/envelope.h"
#include "transport/rpc.h"
#include "transport/zsock.h"

/* ---- peers ----
 * One send-only DEALER per peer address, at most DM_GOSSIP_MAX_PEERS of
 * them (the least recently used is closed for a new one), and only to
 * addresses membership holds (members, seeds): never to one a message
 * merely names. */

void dm_gossip__peer_close(dm_gossip__peer_t *p)
{
    zmq_close(p->sock);
    free(p);
}

static void *s_peer_socket(dm_gossip_t *self, const char *address, int64_t now_ms)
{
    size_t n = 0;
    dm_gossip__peer_t **lru = NULL;
    for (dm_gossip__peer_t **pp = &self->peers; *pp; pp = &(*pp)->next, n++) {
        dm_gossip__peer_t *p = *pp;
        if (strcmp(p->address, address) == 0) {
            p->last_used_ms = now_ms;
            return p->sock;
        }
        if (!lru || p->last_used_ms <= (*lru)->last_used_ms)
            lru = pp;
    }
    if (!dm_membership_address_known(self->m, address)) {
        dm_log_debug("gossip: not sending to %.24s: not an address membership holds", address);
        return NULL;
    }
    if (n >= DM_GOSSIP_MAX_PEERS && lru) {
        dm_gossip__peer_t *old = *lru;
        *lru = old->next;
        dm_gossip__peer_close(old);
    }
    uint8_t node_id[DM_ID_PUBLIC_BYTES], server[DM_ID_CURVE_BYTES];
    char ep[DM_ID_ENDPOINT_MAX];
    dm_buf_t why = DM_BUF_INIT; /* stays empty (unallocated) on success */
    if (dm_identity_address_parse(address, node_id, ep, sizeof ep, &why) != DM_OK ||
        dm_identity_curve_from_id(node_id, server) != DM_OK) {
        dm_log_warn("gossip: cannot send to '%s': %s", address,
                    why.len ? why.data : "its key is not a valid ed25519 public key");
        dm_buf_free(&why);
        return NULL;
    }
    dm_gossip__peer_t *p = calloc(1, sizeof *p);
    /* Send-only: nothing is ever read here, so a peer that writes back may
     * queue at most one tiny message (a larger one drops the connection). */
    dm_zsock_opts_t o = {
        .sndhwm = DM_GOSSIP_PEER_HWM,
        .rcvhwm = 1,
        .maxmsgsize = DM_GOSSIP_PEER_MAX_IN,
        .reconnect_ivl_max_ms = DM_GOSSIP_RECONNECT_MAX_MS,
        .curve_server_key = server,
        .curve_public = self->curve_pub,
        .curve_secret = self->curve_sec,
    };
    void *s = p ? dm_zsock_new(self->ctx, ZMQ_DEALER, &o, NULL) : NULL;
    if (!s || zmq_connect(s, ep) != 0) {
        dm_log_warn("gossip: cannot open a socket to %s: %s", ep, zmq_strerror(errno));
        if (s)
            zmq_close(s);
        free(p);
        return NULL;
    }
    snprintf(p->address, sizeof p->address, "%s", address);
    p->sock = s;
    p->last_used_ms = now_ms;
    p->next = self->peers;
    self->peers = p;
    return s;
}

void dm_gossip__close_idle_peers(dm_gossip_t *self, int64_t now_ms)
{
    dm_gossip__peer_t **pp = &self->peers;
    while (*pp) {
        dm_gossip__peer_t *p = *pp;
        if (now_ms - p->last_used_ms > DM_GOSSIP_PEER_IDLE_MS) {
            *pp = p->next;
            dm_gossip__peer_close(p);
        } else {
            pp = &p->next;
        }
    }
}

/* Sends env to the node at address on its peer socket; drops when the
 * queue to it is full. */
void dm_gossip__send(dm_gossip_t *self, const char *address, const Dm__Envelope *env,
                       int64_t now_ms)
{
    void *sock = s_peer_socket(self, address, now_ms);
    zmq_msg_t msg;
    if (!sock || dm_rpc_pack(env, &msg) != DM_OK)
        return;
    size_t wire = zmq_msg_size(&msg);
    if (zmq_msg_send(&msg, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg); /* SWIM and anti-entropy treat it as loss */
        return;
    }
    self->bytes_sent += wire;
    self->msgs_sent++;
}

void dm_gossip__flush(dm_gossip_t *self, int64_t now_ms)
{
    while (dm_membership_next_outgoing(self->m, &self->out)) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        if (dm_membership_encode(&self->out.msg, &bytes, &len) != DM_OK) {
            dm_log_err("gossip: cannot encode a membership message");
            continue;
        }
        Dm__Envelope env;
        dm_envelope_swim(&env, bytes, len);
        dm_gossip__send(self, self->out.to, &env, now_ms);
        free(bytes);
    }
}

bool dm_gossip__sent_by(const uint8_t id[DM_ID_PUBLIC_BYTES], const char *user_id)
{
    uint8_t curve[DM_ID_CURVE_BYTES];
    char hex[DM_ID_HEX_BYTES];
    if (!user_id || dm_identity_curve_from_id(id, curve) != DM_OK)
        return false;
    sodium_bin2hex(hex, sizeof hex, curve, sizeof curve);
    return strcmp(hex, user_id) == 0;
}
