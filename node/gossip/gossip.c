/* gossip.c: SWIM membership and catalog anti-entropy (hash poke, digest,
 * delta) over CurveZMQ, one send-only DEALER per peer, and the persisted
 * member list. */
#include "gossip/gossip.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "base/lines.h"
#include "base/log.h"
#include "proto/mesh.pb-c.h"
#include "transport/envelope.h"
#include "transport/rpc.h"
#include "transport/zsock.h"

#define DM_GOSSIP_RECONNECT_MAX_MS 2000 /* back-off ceiling towards a dead peer */

typedef struct s_peer {
    char address[DM_ADDRESS_MAX];
    void *sock;
    int64_t last_used_ms;
    struct s_peer *next;
} s_peer;

struct dm_gossip {
    void *ctx;
    const dm_identity_t *id;
    dm_membership_t *m;
    char *dir;
    uint8_t curve_pub[32];
    uint8_t *curve_sec; /* sodium_malloc'd, wiped on destroy */
    s_peer *peers;
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

/* ---- the member list on disk ----
 * A text file, rewritten atomically: "incarnation N" for this node, then
 * one "member ADDRESS DOMAIN INCARNATION STATE" line per member, departed
 * ones too: at start-up every one of them is a join seed, so a mesh whose
 * nodes all stopped together (each saw the others leave) re-forms. */

static void s_save(dm_gossip_t *self);

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

typedef struct {
    FILE *f;
    const uint8_t *self_id;
} s_save_ctx;

static void s_save_member(void *ctx, const dm_member_t *mb)
{
    s_save_ctx *sc = ctx;
    if (memcmp(mb->id, sc->self_id, DM_ID_PUBLIC_BYTES) == 0)
        return;
    fprintf(sc->f, "member %s %s %" PRIu64 " %s\n", mb->address,
            mb->domain[0] ? mb->domain : "-", mb->incarnation, dm_membership_state_name(mb->state));
}

static void s_save(dm_gossip_t *self)
{
    char path[DM_PATH_MAX], tmp[DM_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", self->dir, DM_GOSSIP_MEMBERS_FILE);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", self->dir, DM_GOSSIP_MEMBERS_FILE);
    /* Whatever happens, this change is handled: a failed write is retried
     * at the next change, not on every loop pass (which would flood the log). */
    uint64_t inc = dm_membership_incarnation(self->m);
    self->saved_incarnation = inc;
    self->dirty = false;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        dm_log_warn("gossip: cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    fprintf(f, "incarnation %" PRIu64 "\n", inc);
    s_save_ctx sc = {f, dm_identity_public(self->id)};
    dm_membership_list(self->m, s_save_member, &sc);
    /* No fsync: this runs on the gossip loop, and a killed process keeps
     * what it wrote (page cache); only a power cut can lose the last
     * change, after which the node needs --join again. */
    bool ok = fflush(f) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        dm_log_warn("gossip: cannot save the member list to %s: %s", path, strerror(errno));
        unlink(tmp);
        return;
    }
}

/* Loads the persisted list: sets the incarnation above the saved one and
 * re-adds the members. A missing file is a first start. */
static void s_load(dm_gossip_t *self, int64_t now_ms)
{
    char path[DM_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", self->dir, DM_GOSSIP_MEMBERS_FILE);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[DM_ADDRESS_MAX + 200];
    size_t n = 0;
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        unsigned long long inc;
        char addr[DM_ADDRESS_MAX], domain[DM_SWIM_DOMAIN_MAX], state[16] = "alive";
        if (sscanf(line, "incarnation %llu", &inc) == 1) {
            /* saturating: the maximum is still refutable (docs/membership.md) */
            dm_membership_set_incarnation(self->m, inc < UINT64_MAX ? (uint64_t)inc + 1
                                                                    : UINT64_MAX);
            continue;
        }
        if (sscanf(line, "member %319s %63s %llu %15s", addr, domain, &inc, state) < 3) {
            dm_log_warn("gossip: %s:%u is not a member line; skipped", path, lineno);
            continue;
        }
        dm_member_t mb = {.address = addr, .domain = strcmp(domain, "-") ? domain : "",
                          .state = DM_MEMBER_ALIVE, .incarnation = (uint64_t)inc,
                          .last_heard_ms = now_ms};
        char ep[256];
        bool live = strcmp(state, "alive") == 0 || strcmp(state, "suspect") == 0;
        if (dm_identity_address_parse(addr, mb.id, ep, sizeof ep, NULL) != DM_OK ||
            (live && dm_membership_add_known(self->m, &mb, now_ms) != DM_OK)) {
            dm_log_warn("gossip: %s:%u: bad member address; skipped", path, lineno);
            continue;
        }
        /* Every member we knew, departed or not, may let us back in: the
         * others may have forgotten us, and a stranger must JOIN. */
        dm_membership_join(self->m, addr, now_ms);
        n++;
    }
    fclose(f);
    dm_membership_trim(self->m);
    dm_log_info("gossip: %zu known member(s) from %s", n, path);
}

/* ---- peers ----
 * One send-only DEALER per peer address, at most DM_GOSSIP_MAX_PEERS of
 * them (the least recently used is closed for a new one), and only to
 * addresses membership holds (members, seeds): never to one a message
 * merely names. */

static void s_peer_close(s_peer *p)
{
    zmq_close(p->sock);
    free(p);
}

static void *s_peer_socket(dm_gossip_t *self, const char *address, int64_t now_ms)
{
    size_t n = 0;
    s_peer **lru = NULL;
    for (s_peer **pp = &self->peers; *pp; pp = &(*pp)->next, n++) {
        s_peer *p = *pp;
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
        s_peer *old = *lru;
        *lru = old->next;
        s_peer_close(old);
    }
    uint8_t node_id[DM_ID_PUBLIC_BYTES], server[DM_ID_CURVE_BYTES];
    char ep[256];
    dm_buf_t why = DM_BUF_INIT; /* stays empty (unallocated) on success */
    if (dm_identity_address_parse(address, node_id, ep, sizeof ep, &why) != DM_OK ||
        dm_identity_curve_from_id(node_id, server) != DM_OK) {
        dm_log_warn("gossip: cannot send to '%s': %s", address,
                    why.len ? why.data : "its key is not a valid ed25519 public key");
        dm_buf_free(&why);
        return NULL;
    }
    s_peer *p = calloc(1, sizeof *p);
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

static void s_close_idle_peers(dm_gossip_t *self, int64_t now_ms)
{
    s_peer **pp = &self->peers;
    while (*pp) {
        s_peer *p = *pp;
        if (now_ms - p->last_used_ms > DM_GOSSIP_PEER_IDLE_MS) {
            *pp = p->next;
            s_peer_close(p);
        } else {
            pp = &p->next;
        }
    }
}

/* Sends env to the node at address on its peer socket; drops when the
 * queue to it is full. */
static void s_send_env(dm_gossip_t *self, const char *address, const Dm__Envelope *env,
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

static void s_flush(dm_gossip_t *self, int64_t now_ms)
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
        s_send_env(self, self->out.to, &env, now_ms);
        free(bytes);
    }
}

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
    s_send_env(self, to, &env, now_ms);
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

/* Sends the digest hash to k random live members. */
static void s_poke(dm_gossip_t *self, unsigned k, int64_t now_ms)
{
    size_t cap = dm_membership_count(self->m) + 1;
    s_live l = {calloc(cap, DM_ADDRESS_MAX), 0, cap, dm_identity_public(self->id)};
    if (!l.addrs)
        return;
    dm_membership_list(self->m, s_collect_live, &l);
    for (unsigned i = 0; i < k && l.n > 0; i++) {
        size_t j = (size_t)(s_rand(self) % l.n);
        s_sync_send(self, l.addrs[j], true, NULL, NULL, now_ms);
        memcpy(l.addrs[j], l.addrs[--l.n], DM_ADDRESS_MAX);
    }
    free(l.addrs);
}

void dm_gossip_catalog_changed(dm_gossip_t *self, int64_t now_ms)
{
    self->hash_valid = false;
    s_poke(self, DM_GOSSIP_PUSH_FANOUT, now_ms);
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
    uint8_t node_id[DM_ID_PUBLIC_BYTES], curve[32];
    char ep[256], hex[65];
    if (!m->reply_to || !user_id ||
        dm_identity_address_parse(m->reply_to, node_id, ep, sizeof ep, NULL) != DM_OK ||
        dm_identity_curve_from_id(node_id, curve) != DM_OK ||
        (sodium_bin2hex(hex, sizeof hex, curve, sizeof curve), strcmp(hex, user_id) != 0)) {
        dm_log_warn("catalog: dropped a sync message whose reply address does not match its "
                    "transport key");
        return;
    }
    /* Only members take part in anti-entropy: a stranger could otherwise
     * make this node store (and answer) whatever it likes. Debug level: a
     * flood must not become a flood of log lines. */
    if (!dm_gossip_is_member(self, node_id)) {
        dm_log_debug("catalog: dropped a sync message from %.16s, not a member", hex);
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
        s_catalog_take_delta(self, m, node_id, to, hex, now_ms);
    if (m->digest.len > 0) {
        /* A page of the peer's digest: what it lacks in that range, and
         * our page (asked for by its hash, or the next one after its). */
        dm_buf_t delta = DM_BUF_INIT, mine = DM_BUF_INIT;
        bool ask = false;
        if (dm_catalog_answer(self->catalog, m->digest.data, m->digest.len, m->hash.len > 0,
                              DM_GOSSIP_DELTA_BYTES, &delta, &mine, &ask) != DM_OK)
            dm_log_warn("catalog: dropped a malformed digest from %.16s", hex);
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
    self->curve_sec = sodium_malloc(32);
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
    s_load(self, now_ms);
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
        s_save(self);
    while (self->peers) {
        s_peer *p = self->peers;
        self->peers = p->next;
        s_peer_close(p);
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
    uint8_t curve[32];
    char hex[65];
    if (!user_id || dm_identity_curve_from_id(self->in.sender.id, curve) != DM_OK ||
        (sodium_bin2hex(hex, sizeof hex, curve, sizeof curve), strcmp(hex, user_id) != 0)) {
        dm_log_warn("gossip: dropped a membership message whose sender does not match its "
                    "transport key");
        return;
    }
    rc = dm_membership_receive(self->m, self->in.sender.id, &self->in, now_ms);
    if (rc != DM_OK)
        dm_log_debug("gossip: membership message refused: %s", dm_err_str(rc));
    s_flush(self, now_ms);
}

void dm_gossip_tick(dm_gossip_t *self, int64_t now_ms)
{
    dm_membership_tick(self->m, now_ms);
    s_flush(self, now_ms);
    if (now_ms >= self->next_sync_ms) {
        if (self->catalog)
            s_poke(self, 1, now_ms);
        s_close_idle_peers(self, now_ms);
        self->next_sync_ms = now_ms + DM_GOSSIP_SYNC_MS;
    }
    /* The tick follows every batch of received messages, so saving here
     * writes each change once, right after it happened. */
    if (dm_membership_incarnation(self->m) != self->saved_incarnation)
        self->dirty = true;
    if (self->dirty)
        s_save(self);
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
    s_flush(self, now_ms);
}

void dm_gossip_stats(const dm_gossip_t *self, uint64_t *bytes_sent, uint64_t *msgs_sent)
{
    *bytes_sent = self->bytes_sent;
    *msgs_sent = self->msgs_sent;
}

const dm_membership_t *dm_gossip_membership(const dm_gossip_t *self) { return self->m; }

bool dm_gossip_is_member(const dm_gossip_t *self, const uint8_t id[DM_ID_PUBLIC_BYTES])
{
    if (memcmp(id, dm_identity_public(self->id), DM_ID_PUBLIC_BYTES) == 0)
        return true;
    dm_member_state st = dm_membership_state_of(self->m, id);
    return st == DM_MEMBER_ALIVE || st == DM_MEMBER_SUSPECT;
}
