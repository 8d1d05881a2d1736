/* gossip.c: the gossip layer's lifecycle and loop hooks: SWIM messages in
 * (sender checked against the transport's CURVE key), the tick that drives
 * membership, the catalog's periodic rounds and the member list on disk.
 * Peer sockets are in gossip_peers.c, the catalog's anti-entropy in
 * gossip_catalog.c, the member list file in gossip_members.c. */
#include "gossip/gossip_priv.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

static void s_on_event(void *ctx, dm_membership_event ev, const dm_member_t *mb, int64_t now_ms)
{
    dm_gossip_t *self = ctx;
    static const char *const names[] = {"joined", "alive again", "suspect", "dead",
                                        "left",   "updated",     "forgotten"};
    char hex[2 * DM_ID_PUBLIC_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, mb->id, DM_ID_PUBLIC_BYTES);
    if (ev == DM_MEMBERSHIP_EV_SUSPECT || ev == DM_MEMBERSHIP_EV_DEAD)
        dm_log_warn("member %.16s (domain %s) %s, incarnation %" PRIu64, hex, mb->domain,
                    names[ev], mb->incarnation);
    else
        dm_log_info("member %.16s (domain %s) %s, incarnation %" PRIu64, hex, mb->domain,
                    names[ev], mb->incarnation);
    self->dirty = true;
    /* A newcomer (or a node back from the dead) gets the catalog at once:
     * due at the next tick, outside this callback. */
    if (ev == DM_MEMBERSHIP_EV_JOINED || ev == DM_MEMBERSHIP_EV_ALIVE)
        self->next_sync_ms = now_ms;
}


/* ---- lifecycle and loop hooks ---- */

dm_err dm_gossip_new(void *ctx, const dm_identity_t *id, const dm_gossip_opts_t *opts,
                     int64_t now_ms, dm_gossip_t **out)
{
    *out = NULL;
    dm_gossip_t *self = calloc(1, sizeof *self);
    if (!self)
        return DM_ERR_NOMEM;
    self->ctx = ctx;
    self->id = id;
    self->dir = strdup(opts->dir);
    self->address = strdup(opts->address);
    self->catalog = opts->catalog;
    self->curve_sec = sodium_malloc(DM_ID_CURVE_BYTES);
    randombytes_buf(&self->rng, sizeof self->rng);
    dm_err rc = DM_ERR_NOMEM;
    if (!self->dir || !self->address || !self->curve_sec)
        goto fail;
    if ((rc = dm_identity_curve_keys(id, self->curve_pub, self->curve_sec, NULL)) != DM_OK)
        goto fail;
    uint64_t seed;
    randombytes_buf(&seed, sizeof seed);
    rc = dm_membership_new(dm_identity_public(id), opts->domain, opts->address, opts->config, seed,
                           &self->m);
    if (rc != DM_OK)
        goto fail;
    dm_membership_on_event(self->m, s_on_event, self);
    dm_gossip__load(self, now_ms);
    for (size_t i = 0; i < opts->nseeds; i++)
        if (strcmp(opts->seeds[i], opts->address) != 0)
            dm_membership_join(self->m, opts->seeds[i], now_ms);
    /* Persist the incarnation just chosen (above the saved one) at the
     * first tick, so a second crash cannot reuse it. */
    self->saved_incarnation = UINT64_MAX;
    *out = self;
    return DM_OK;
fail:
    dm_gossip_destroy(&self);
    return rc;
}

void dm_gossip_destroy(dm_gossip_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_gossip_t *self = *self_p;
    if (self->m && self->dirty)
        dm_gossip__save(self);
    while (self->peers) {
        dm_gossip__peer_t *p = self->peers;
        self->peers = p->next;
        dm_gossip__peer_close(p);
    }
    dm_membership_destroy(&self->m);
    if (self->curve_sec)
        sodium_free(self->curve_sec);
    free(self->dir);
    free(self->address);
    free(self);
    *self_p = NULL;
}

void dm_gossip_receive(dm_gossip_t *self, const uint8_t *data, size_t len, const char *user_id,
                       int64_t now_ms)
{
    dm_err rc = dm_membership_decode(data, len, &self->in);
    if (rc != DM_OK) {
        dm_log_warn("gossip: dropped a malformed membership message (%zu bytes): %s", len,
                    dm_err_str(rc));
        return;
    }
    /* The transport authenticated the sender's CURVE key: it must be the
     * key of the node the message claims to come from. */
    if (!dm_gossip__sent_by(self->in.sender.id, user_id)) {
        dm_log_warn("gossip: dropped a membership message whose sender does not match its "
                    "transport key");
        return;
    }
    rc = dm_membership_receive(self->m, self->in.sender.id, &self->in, now_ms);
    if (rc != DM_OK)
        dm_log_debug("gossip: membership message refused: %s", dm_err_str(rc));
    dm_gossip__flush(self, now_ms);
}

void dm_gossip_tick(dm_gossip_t *self, int64_t now_ms)
{
    dm_membership_tick(self->m, now_ms);
    dm_gossip__flush(self, now_ms);
    if (now_ms >= self->next_sync_ms) {
        if (self->catalog)
            dm_gossip__poke(self, 1, now_ms);
        dm_gossip__close_idle_peers(self, now_ms);
        self->next_sync_ms = now_ms + DM_GOSSIP_SYNC_MS;
    }
    /* The tick follows every batch of received messages, so saving here
     * writes each change once, right after it happened. */
    if (dm_membership_incarnation(self->m) != self->saved_incarnation)
        self->dirty = true;
    if (self->dirty)
        dm_gossip__save(self);
}

long dm_gossip_wait_ms(const dm_gossip_t *self, int64_t now_ms)
{
    int64_t next = dm_membership_next_deadline(self->m);
    if (self->next_sync_ms < next)
        next = self->next_sync_ms;
    if (next <= now_ms)
        return 0;
    if (next - now_ms > 1000)
        return 1000;
    return (long)(next - now_ms);
}

void dm_gossip_leave(dm_gossip_t *self, int64_t now_ms)
{
    dm_membership_leave(self->m, now_ms);
    dm_gossip__flush(self, now_ms);
}

void dm_gossip_stats(const dm_gossip_t *self, uint64_t *bytes_sent, uint64_t *msgs_sent)
{
    *bytes_sent = self->bytes_sent;
    *msgs_sent = self->msgs_sent;
}

const dm_membership_t *dm_gossip_membership(const dm_gossip_t *self) { return self->m; }
