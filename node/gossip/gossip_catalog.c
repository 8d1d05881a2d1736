/* gossip_catalog.c: the catalog's Scuttlebutt exchange on the gossip
 * layer: the hash poke, digests and deltas between members (the rules are
 * node/catalog/catalog_sync.c's; this file decides who talks when). */
#include "gossip/gossip_priv.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "transport/envelope.h"

/* ---- catalog anti-entropy ----
 * 1. A -> B {hash}: periodically, and at once to a few members when A's
 *    catalog changed. 2. B, if its hash differs -> A {hash, digest}.
 * 3. A -> B {digest, delta}: what B lacks, and A's digest. 4. B -> A {delta}:
 *    what A lacks. A message with a hash asks for the receiver's digest
 *    back; a delta cut short (more) starts the next round at once. */

static const uint8_t *s_catalog_hash(dm_gossip_t *self)
{
    if (!self->hash_valid) {
        dm_buf_t d = DM_BUF_INIT;
        dm_catalog_digest(self->catalog, &d);
        crypto_hash_sha256(self->hash, (const unsigned char *)(d.data ? d.data : ""), d.len);
        dm_buf_free(&d);
        self->hash_valid = true;
    }
    return self->hash;
}

static void s_sync_send(dm_gossip_t *self, const char *to, bool hash, const dm_buf_t *digest,
                        const dm_buf_t *delta, int64_t now_ms)
{
    Dm__Envelope env;
    Dm__CatalogSync m = DM__CATALOG_SYNC__INIT;
    m.reply_to = self->address;
    if (hash) {
        m.hash.data = (uint8_t *)s_catalog_hash(self);
        m.hash.len = crypto_hash_sha256_BYTES;
    }
    if (digest) {
        m.digest.data = (uint8_t *)digest->data;
        m.digest.len = digest->len;
    }
    if (delta) {
        m.delta.data = (uint8_t *)delta->data;
        m.delta.len = delta->len;
    }
    dm_envelope_init(&env, 0, DM__ENVELOPE__BODY_CATALOG_SYNC, &m);
    dm_log_debug("catalog: sync to %.24s (hash %d, digest %zu, delta %zu bytes)", to, hash,
                 digest ? digest->len : 0, delta ? delta->len : 0);
    dm_gossip__send(self, to, &env, now_ms);
}

typedef struct {
    char (*addrs)[DM_ADDRESS_MAX]; /* copies: the machine's strings are borrowed per call */
    size_t n, cap;
    const uint8_t *self_id;
} s_live;

static void s_collect_live(void *ctx, const dm_member_t *mb)
{
    s_live *l = ctx;
    if (l->n < l->cap && mb->state == DM_MEMBER_ALIVE &&
        memcmp(mb->id, l->self_id, DM_ID_PUBLIC_BYTES) != 0)
        snprintf(l->addrs[l->n++], DM_ADDRESS_MAX, "%s", mb->address);
}

static uint64_t s_rand(dm_gossip_t *self)
{
    uint64_t x = self->rng += 0x9e3779b97f4a7c15ULL; /* splitmix64 */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Sends the digest hash to k random live members, with the first digest
 * page too when digest (which asks for theirs whatever the hashes say). */
static void s_poke(dm_gossip_t *self, unsigned k, bool digest, int64_t now_ms)
{
    size_t cap = dm_membership_count(self->m) + 1;
    s_live l = {calloc(cap, DM_ADDRESS_MAX), 0, cap, dm_identity_public(self->id)};
    if (!l.addrs)
        return;
    dm_membership_list(self->m, s_collect_live, &l);
    dm_buf_t page = DM_BUF_INIT;
    if (digest)
        dm_catalog_digest_first(self->catalog, &page);
    for (unsigned i = 0; i < k && l.n > 0; i++) {
        size_t j = (size_t)(s_rand(self) % l.n);
        s_sync_send(self, l.addrs[j], true, digest ? &page : NULL, NULL, now_ms);
        memcpy(l.addrs[j], l.addrs[--l.n], DM_ADDRESS_MAX);
    }
    dm_buf_free(&page);
    free(l.addrs);
}

void dm_gossip__poke(dm_gossip_t *self, unsigned k, int64_t now_ms)
{
    s_poke(self, k, false, now_ms);
}

void dm_gossip_catalog_offer(dm_gossip_t *self, int64_t now_ms)
{
    self->hash_valid = false;
    s_poke(self, DM_GOSSIP_PUSH_FANOUT, true, now_ms);
}

void dm_gossip_catalog_changed(dm_gossip_t *self, int64_t now_ms)
{
    self->hash_valid = false;
    dm_gossip__poke(self, DM_GOSSIP_PUSH_FANOUT, now_ms);
}

/* Applies a peer's delta; a change spreads, a delta cut short asks again. */
static void s_catalog_take_delta(dm_gossip_t *self, const Dm__CatalogSync *m,
                                 const uint8_t *sender, const char *to, const char *hex,
                                 int64_t now_ms)
{
    dm_catalog_counts_t counts;
    bool more = false;
    dm_buf_t refused = DM_BUF_INIT;
    /* Judged within the sender's own share of the judging window. */
    dm_err rc = dm_catalog_apply_delta_from(self->catalog, sender, m->delta.data, m->delta.len,
                                            now_ms, &counts, &more, &refused);
    if (rc == DM_ERR_PROTO) {
        dm_log_warn("catalog: a delta from %.16s was refused: %s", hex, dm_err_str(rc));
    } else if (rc != DM_OK) {
        /* The store refused the write (a full map at its maximum, a disk
         * error): nothing of this delta is kept and every peer keeps
         * offering it, so say so at the level an operator watches. The
         * store's reason is the last line of refused (it does not log). */
        const char *nl = refused.len ? strrchr(refused.data, '\n') : NULL;
        const char *cause = nl ? nl + 1 : refused.len ? refused.data : "";
        dm_log_err("catalog: cannot store a delta from %.16s (%zu bytes): %s; the catalog "
                   "stops taking news until the store accepts writes",
                   hex, (size_t)m->delta.len, *cause ? cause : dm_err_str(rc));
    } else {
        size_t bad = 0;
        for (int v = 0; v < DM_CATALOG__VERDICTS; v++)
            if (v != DM_CATALOG_ACCEPTED && v != DM_CATALOG_STALE &&
                v != DM_CATALOG_UNKNOWN_ORIGIN)
                bad += counts.n[v];
        bad -= counts.quiet; /* reported lately: the catalog said them again at debug */
        if (bad)
            dm_log_warn("catalog: refused %zu entr%s from peer %.16s: %s", bad,
                        bad == 1 ? "y" : "ies", hex, refused.data ? refused.data : "");
        if (counts.n[DM_CATALOG_UNKNOWN_ORIGIN])
            dm_log_debug("catalog: %zu entr%s from %.16s wait until membership knows their "
                         "origin",
                         counts.n[DM_CATALOG_UNKNOWN_ORIGIN],
                         counts.n[DM_CATALOG_UNKNOWN_ORIGIN] == 1 ? "y" : "ies", hex);
        if (counts.n[DM_CATALOG_ACCEPTED] > 0) {
            dm_log_debug("catalog: %zu new entr%s from %.16s", counts.n[DM_CATALOG_ACCEPTED],
                         counts.n[DM_CATALOG_ACCEPTED] == 1 ? "y" : "ies", hex);
            dm_gossip_catalog_changed(self, now_ms);
        }
        if (more)
            s_sync_send(self, to, true, NULL, NULL, now_ms);
    }
    dm_buf_free(&refused);
}

void dm_gossip_catalog_receive(dm_gossip_t *self, const Dm__CatalogSync *m, const char *user_id,
                               int64_t now_ms)
{
    uint8_t node_id[DM_ID_PUBLIC_BYTES];
    char ep[DM_ID_ENDPOINT_MAX];
    if (!m->reply_to ||
        dm_identity_address_parse(m->reply_to, node_id, ep, sizeof ep, NULL) != DM_OK ||
        !dm_gossip__sent_by(node_id, user_id)) {
        dm_log_warn("catalog: dropped a sync message whose reply address does not match its "
                    "transport key");
        return;
    }
    /* Only members take part in anti-entropy: a stranger could otherwise
     * make this node store (and answer) whatever it likes. Debug level: a
     * flood must not become a flood of log lines. */
    if (!dm_gossip_is_member(self, node_id)) {
        dm_log_debug("catalog: dropped a sync message from %.16s, not a member", user_id);
        return;
    }
    /* What costs work (a page or a delta to judge or answer, a hash that
     * differs and so asks for a page) is rate-limited per member; a poke
     * whose hash matches costs a compare and is always taken. */
    bool costly = m->digest.len > 0 || m->delta.len > 0 ||
                  (m->hash.len == crypto_hash_sha256_BYTES &&
                   memcmp(m->hash.data, s_catalog_hash(self), crypto_hash_sha256_BYTES) != 0);
    if (costly && !dm_catalog_sync_allow(self->catalog, node_id, now_ms))
        return;
    char to[DM_ADDRESS_MAX];
    snprintf(to, sizeof to, "%s", m->reply_to);
    if (m->delta.len > 0)
        s_catalog_take_delta(self, m, node_id, to, user_id, now_ms);
    if (m->digest.len > 0) {
        /* A page of the peer's digest: what it lacks in that range, and
         * our page (asked for by its hash, or the next one after its). */
        dm_buf_t delta = DM_BUF_INIT, mine = DM_BUF_INIT;
        bool ask = false;
        if (dm_catalog_answer(self->catalog, m->digest.data, m->digest.len, m->hash.len > 0,
                              DM_GOSSIP_DELTA_BYTES, &delta, &mine, &ask) != DM_OK)
            dm_log_warn("catalog: dropped a malformed digest from %.16s", user_id);
        else if (delta.len > 0 || mine.len > 0)
            s_sync_send(self, to, ask, mine.len > 0 ? &mine : NULL,
                        delta.len > 0 ? &delta : NULL, now_ms);
        dm_buf_free(&delta);
        dm_buf_free(&mine);
    } else if (m->hash.len == crypto_hash_sha256_BYTES && m->delta.len == 0) {
        /* The hash covers the whole catalog; the exchange goes by pages. */
        if (memcmp(m->hash.data, s_catalog_hash(self), crypto_hash_sha256_BYTES) != 0) {
            dm_buf_t mine = DM_BUF_INIT;
            dm_catalog_digest_first(self->catalog, &mine);
            s_sync_send(self, to, true, &mine, NULL, now_ms);
            dm_buf_free(&mine);
        }
    }
}
