/* node_fed.c: the owner's side of a federated query (docs/protocol.md
 * "Federated query"). A relaying node opens a session with FedOpen{grant,
 * sql}: the grant must be the consumer's signature for this caller as
 * relay over this SQL, unexpired, with a nonce never opened before (a
 * replay table keeps each nonce until its grant's expiry plus the clock
 * skew). The session names the consumer and the node's own products the
 * SQL names; the relay's QueryReqs carrying the session run as the
 * consumer (node_dispatch.c) and read only those products
 * (node_access.c). FedClose ends it. The loop opens and closes sessions;
 * query workers read them, so the tables are under fed_lock. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "base/hex.h"
#include "base/clock.h"
#include "base/log.h"
#include "server/node_priv.h"
#include "transport/grant.h"

/* ---- the replay table on disk ----
 *
 * DIR/fed-nonces holds one DM_NODE_FED_REC_BYTES record per nonce opened
 * (nonce, relay, opened_ms and forget_ms little-endian), appended as each
 * is opened, so a restarted owner still refuses a grant it opened before
 * (a grant lives up to 10 minutes). Appends are not fsync'd: they survive
 * the process, not the machine. At start the live records are read back
 * and the file is rewritten with them only; it is rewritten the same way
 * once DM_NODE_FED_NONCES_MAX records were appended. */

#define DM_NODE_FED_NONCE_FILE "fed-nonces"

static void s_index_rebuild(dm_node_t *self);
#define DM_NODE_FED_REC_BYTES 64

static void s_put64(uint8_t *p, int64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((uint64_t)v >> (8 * i));
}

static int64_t s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return (int64_t)v;
}

static void s_rec_encode(const dm_node__fed_nonce_t *n, uint8_t r[DM_NODE_FED_REC_BYTES])
{
    memcpy(r, n->nonce, 16);
    memcpy(r + 16, n->relay, DM_ID_PUBLIC_BYTES);
    s_put64(r + 48, n->opened_ms);
    s_put64(r + 56, n->forget_ms);
}

static void s_rec_decode(const uint8_t r[DM_NODE_FED_REC_BYTES], dm_node__fed_nonce_t *n)
{
    memcpy(n->nonce, r, 16);
    memcpy(n->relay, r + 16, DM_ID_PUBLIC_BYTES);
    n->opened_ms = s_get64(r + 48);
    n->forget_ms = s_get64(r + 56);
}

/* Writes the table's nonces to the file (temp file, fsync, rename) and
 * reopens it for appending. -1 with errno on error (the table stays). */
static int s_nonces_rewrite(dm_node_t *self)
{
    char path[DM_PATH_MAX], tmp[DM_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", self->dir, DM_NODE_FED_NONCE_FILE);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", self->dir, DM_NODE_FED_NONCE_FILE);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    bool ok = true;
    uint8_t r[DM_NODE_FED_REC_BYTES];
    for (size_t i = 0; ok && i < self->fed_nnonces; i++) {
        s_rec_encode(&self->fed_nonces[i], r);
        ok = write(fd, r, sizeof r) == (ssize_t)sizeof r;
    }
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    if (self->fed_fd >= 0)
        close(self->fed_fd);
    self->fed_fd = open(path, O_WRONLY | O_APPEND);
    self->fed_appended = 0;
    return self->fed_fd < 0 ? -1 : 0;
}

/* Reads back the nonces still in force at now_ms (at most the table's
 * size; a torn last record is ignored), then rewrites the file. */
static dm_err s_nonces_load(dm_node_t *self, int64_t now_ms, dm_buf_t *why)
{
    char path[DM_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", self->dir, DM_NODE_FED_NONCE_FILE);
    FILE *f = fopen(path, "rb");
    if (!f && errno != ENOENT) {
        dm_buf_why(why, "cannot read the grant replay table %s: %s", path, strerror(errno));
        return DM_ERR_IO;
    }
    uint8_t r[DM_NODE_FED_REC_BYTES];
    while (f && self->fed_nnonces < DM_NODE_FED_NONCES_MAX && fread(r, sizeof r, 1, f) == 1) {
        dm_node__fed_nonce_t n;
        s_rec_decode(r, &n);
        if (n.forget_ms >= now_ms && n.forget_ms <= now_ms + DM_GRANT_MAX_LIFETIME_MS +
                                                        2 * DM_GRANT_SKEW_MS)
            self->fed_nonces[self->fed_nnonces++] = n;
    }
    if (f)
        fclose(f);
    s_index_rebuild(self);
    if (s_nonces_rewrite(self) != 0) {
        dm_buf_why(why, "cannot write the grant replay table %s: %s", path, strerror(errno));
        return DM_ERR_IO;
    }
    return DM_OK;
}

/* Appends n to the file (rewriting it first when due); false with errno
 * on error. fed_lock held. */
static bool s_nonce_append(dm_node_t *self, const dm_node__fed_nonce_t *n)
{
    if (self->fed_appended >= DM_NODE_FED_NONCES_MAX && s_nonces_rewrite(self) != 0)
        return false;
    uint8_t r[DM_NODE_FED_REC_BYTES];
    s_rec_encode(n, r);
    if (self->fed_fd < 0 || write(self->fed_fd, r, sizeof r) != (ssize_t)sizeof r)
        return false;
    self->fed_appended++;
    return true;
}

/* ---- the replay table's index ----
 *
 * Every FedOpen looks its nonce up and counts its relay's nonces, so both
 * are O(1), not a scan of up to DM_NODE_FED_NONCES_MAX entries: an
 * open-addressed table of positions in fed_nonces, keyed by SipHash of the
 * nonce under a random key (a consumer chooses its nonces and could
 * otherwise aim them all at one chain), and a count per relay. Nonces are
 * never removed one by one: an eviction compacts fed_nonces and rebuilds
 * the index, when something has expired, at most once a second unless the
 * table is full, so it costs the loop O(n) a second at most. */
#define S_INDEX_SLOTS (2u * DM_NODE_FED_NONCES_MAX) /* a power of two: at most half full */
#define S_EVICT_EVERY_MS 1000

typedef struct {
    uint8_t key[DM_ID_PUBLIC_BYTES];
    size_t count;
} s_relay_count;

struct dm_node__fed_index {
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    uint32_t slot[S_INDEX_SLOTS]; /* position + 1 in fed_nonces; 0: empty */
    s_relay_count relay[DM_NODE_FED_RELAYS_MAX];
    size_t nrelays;
    int64_t min_forget_ms; /* the earliest forget_ms in the table; INT64_MAX: none */
    int64_t evicted_ms;    /* when an eviction last ran */
};

static uint32_t s_slot_of(const struct dm_node__fed_index *x, const uint8_t *nonce)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, nonce, DM_GRANT_NONCE_BYTES, x->hash_key);
    uint32_t v;
    memcpy(&v, h, sizeof v);
    return v & (S_INDEX_SLOTS - 1);
}

/* nonce's entry in fed_nonces, or NULL. */
static const dm_node__fed_nonce_t *s_nonce_find(const dm_node_t *self, const uint8_t *nonce)
{
    const struct dm_node__fed_index *x = self->fed_index;
    for (uint32_t i = s_slot_of(x, nonce);; i = (i + 1) & (S_INDEX_SLOTS - 1)) {
        uint32_t p = x->slot[i];
        if (!p)
            return NULL;
        if (memcmp(self->fed_nonces[p - 1].nonce, nonce, DM_GRANT_NONCE_BYTES) == 0)
            return &self->fed_nonces[p - 1];
    }
}

static s_relay_count *s_relay_find(struct dm_node__fed_index *x, const uint8_t *relay)
{
    for (size_t i = 0; i < x->nrelays; i++)
        if (memcmp(x->relay[i].key, relay, DM_ID_PUBLIC_BYTES) == 0)
            return &x->relay[i];
    return NULL;
}

/* Indexes fed_nonces[pos] and counts it for its relay (s_admit made room
 * for the relay; read-back nonces past DM_NODE_FED_RELAYS_MAX relays are
 * found but not counted). */
static void s_index_add(dm_node_t *self, size_t pos)
{
    struct dm_node__fed_index *x = self->fed_index;
    const dm_node__fed_nonce_t *n = &self->fed_nonces[pos];
    uint32_t i = s_slot_of(x, n->nonce);
    while (x->slot[i])
        i = (i + 1) & (S_INDEX_SLOTS - 1);
    x->slot[i] = (uint32_t)pos + 1;
    s_relay_count *r = s_relay_find(x, n->relay);
    if (!r && x->nrelays < DM_NODE_FED_RELAYS_MAX) {
        r = &x->relay[x->nrelays++];
        memcpy(r->key, n->relay, DM_ID_PUBLIC_BYTES);
        r->count = 0;
    }
    if (r)
        r->count++;
    if (n->forget_ms < x->min_forget_ms)
        x->min_forget_ms = n->forget_ms;
}

static void s_index_rebuild(dm_node_t *self)
{
    struct dm_node__fed_index *x = self->fed_index;
    memset(x->slot, 0, sizeof x->slot);
    x->nrelays = 0;
    x->min_forget_ms = INT64_MAX;
    for (size_t i = 0; i < self->fed_nnonces; i++)
        s_index_add(self, i);
}

/* ---- lifecycle ---- */

dm_err dm_node__fed_open(dm_node_t *self, dm_buf_t *why)
{
    self->fed_fd = -1;
    self->fed_nonces = calloc(DM_NODE_FED_NONCES_MAX, sizeof *self->fed_nonces);
    self->fed_sessions = calloc(DM_NODE_FED_SESSIONS_MAX, sizeof *self->fed_sessions);
    self->fed_index = calloc(1, sizeof *self->fed_index);
    if (!self->fed_nonces || !self->fed_sessions || !self->fed_index ||
        pthread_mutex_init(&self->fed_lock, NULL) != 0) {
        free(self->fed_nonces);
        free(self->fed_sessions);
        free(self->fed_index);
        self->fed_nonces = NULL;
        self->fed_sessions = NULL;
        self->fed_index = NULL;
        dm_buf_why(why, "cannot set up federated sessions: out of memory");
        return DM_ERR_NOMEM;
    }
    crypto_shorthash_keygen(self->fed_index->hash_key);
    self->fed_index->min_forget_ms = INT64_MAX;
    self->fed_ready = true;
    dm_err rc = s_nonces_load(self, dm_clock_wall_ms(), why);
    if (rc == DM_OK && self->fed_nnonces)
        dm_log_info("federation: %zu grant nonce(s) still in force were read back",
                    self->fed_nnonces);
    return rc;
}

void dm_node__fed_close(dm_node_t *self)
{
    if (!self->fed_ready)
        return;
    for (size_t i = 0; i < self->fed_nsessions; i++)
        free(self->fed_sessions[i].products);
    free(self->fed_sessions);
    free(self->fed_nonces);
    free(self->fed_index);
    self->fed_index = NULL;
    if (self->fed_fd >= 0)
        close(self->fed_fd);
    self->fed_fd = -1;
    self->fed_sessions = NULL;
    self->fed_nonces = NULL;
    pthread_mutex_destroy(&self->fed_lock);
    self->fed_ready = false;
}

/* ---- the tables (fed_lock held) ---- */

/* Drops the nonces past their time (when one is, at most every
 * S_EVICT_EVERY_MS unless full) and the sessions past their grant's expiry
 * (with the skew) at now_ms (wall). A nonce kept a little longer is only
 * refused a little longer. */
static void s_evict(dm_node_t *self, int64_t now_ms, bool full)
{
    struct dm_node__fed_index *x = self->fed_index;
    if (now_ms > x->min_forget_ms && (full || now_ms - x->evicted_ms >= S_EVICT_EVERY_MS)) {
        size_t k = 0;
        for (size_t i = 0; i < self->fed_nnonces; i++)
            if (self->fed_nonces[i].forget_ms >= now_ms)
                self->fed_nonces[k++] = self->fed_nonces[i];
        self->fed_nnonces = k;
        s_index_rebuild(self);
        x->evicted_ms = now_ms;
    }
    size_t k = 0;
    for (size_t i = 0; i < self->fed_nsessions; i++) {
        dm_node__fed_session_t *s = &self->fed_sessions[i];
        if (s->expires_ms + DM_GRANT_SKEW_MS >= now_ms)
            self->fed_sessions[k++] = *s;
        else
            free(s->products);
    }
    self->fed_nsessions = k;
}

/* The open session of relay named nonce (len bytes) at now_ms, or NULL. */
static dm_node__fed_session_t *s_session_find(dm_node_t *self, const uint8_t *relay,
                                              const uint8_t *nonce, size_t len, int64_t now_ms)
{
    if (len != DM_GRANT_NONCE_BYTES)
        return NULL;
    for (size_t i = 0; i < self->fed_nsessions; i++) {
        dm_node__fed_session_t *s = &self->fed_sessions[i];
        if (memcmp(s->nonce, nonce, DM_GRANT_NONCE_BYTES) == 0 &&
            memcmp(s->relay, relay, DM_ID_PUBLIC_BYTES) == 0)
            return s->expires_ms + DM_GRANT_SKEW_MS >= now_ms ? s : NULL;
    }
    return NULL;
}

/* Whether g's nonce may be opened at now_ms: not seen before, and room in
 * the table for it in total and for its relay. DM_ERR_DENIED (replayed) or
 * DM_ERR_BUSY (a cap, named) with a line in why. */
static dm_err s_admit(dm_node_t *self, const dm_grant_t *g, int64_t now_ms, dm_buf_t *why)
{
    char hex[2 * DM_GRANT_NONCE_BYTES + 1], at[DM_CLOCK_UTC_TEXT_MAX];
    const dm_node__fed_nonce_t *seen = s_nonce_find(self, g->nonce);
    if (seen) {
        dm_hex_encode(g->nonce, DM_GRANT_NONCE_BYTES, hex);
        dm_clock_utc_text(seen->opened_ms, at);
        dm_buf_why(why, "grant replayed: nonce %s was opened at %s; a grant opens once", hex, at);
        return DM_ERR_DENIED;
    }
    const s_relay_count *r = s_relay_find(self->fed_index, g->relay);
    if (self->fed_nnonces >= DM_NODE_FED_NONCES_MAX ||
        (r && r->count >= self->fed_relay_nonces) ||
        (!r && self->fed_index->nrelays >= DM_NODE_FED_RELAYS_MAX)) {
        s_evict(self, now_ms, true);
        r = s_relay_find(self->fed_index, g->relay);
    }
    if (self->fed_nnonces >= DM_NODE_FED_NONCES_MAX ||
        (r && r->count >= self->fed_relay_nonces)) {
        dm_buf_why(why, "the node is busy: its table of recent grants is full (%zu per relay, "
                   "%d in all, each kept until its expiry); retry shortly",
                   self->fed_relay_nonces, DM_NODE_FED_NONCES_MAX);
        return DM_ERR_BUSY;
    }
    if (!r && self->fed_index->nrelays >= DM_NODE_FED_RELAYS_MAX) {
        dm_buf_why(why, "the node is busy: its table of recent grants holds those of %d relays, "
                   "its most (each kept until its expiry); retry shortly",
                   DM_NODE_FED_RELAYS_MAX);
        return DM_ERR_BUSY;
    }
    size_t sessions_of_relay = 0;
    for (size_t i = 0; i < self->fed_nsessions; i++)
        sessions_of_relay +=
            memcmp(self->fed_sessions[i].relay, g->relay, DM_ID_PUBLIC_BYTES) == 0;
    if (self->fed_nsessions >= DM_NODE_FED_SESSIONS_MAX ||
        sessions_of_relay >= DM_NODE_FED_SESSIONS_PER_RELAY) {
        dm_buf_why(why, "the node is busy: too many open federated sessions (%d per relay, %d "
                   "in all); close some (FedClose) or retry shortly",
                   DM_NODE_FED_SESSIONS_PER_RELAY, DM_NODE_FED_SESSIONS_MAX);
        return DM_ERR_BUSY;
    }
    return DM_OK;
}

/* ---- the SQL's products ---- */

static bool s_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool s_ident_char(unsigned char c)
{
    return s_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

/* The token at sql[*i]: an identifier (bare or quoted: its text, quotes
 * undone, cut to cap - 1, in out, returns 'i'), '.', or another token
 * (returns 'x'); comments and blanks are skipped (returns 0 at the end). */
static char s_token(const char *sql, size_t len, size_t *i, char *out, size_t cap)
{
    while (*i < len) {
        unsigned char c = (unsigned char)sql[*i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            (*i)++;
        } else if (c == '-' && *i + 1 < len && sql[*i + 1] == '-') {
            while (*i < len && sql[*i] != '\n')
                (*i)++;
        } else if (c == '/' && *i + 1 < len && sql[*i + 1] == '*') {
            *i += 2;
            while (*i + 1 < len && !(sql[*i] == '*' && sql[*i + 1] == '/'))
                (*i)++;
            *i = *i + 2 < len ? *i + 2 : len;
        } else {
            break;
        }
    }
    if (*i >= len)
        return 0;
    unsigned char c = (unsigned char)sql[*i];
    size_t n = 0;
    if (c == '"' || c == '`' || c == '[' || c == '\'') {
        char close = c == '[' ? ']' : (char)c;
        for ((*i)++; *i < len; (*i)++) {
            if (sql[*i] == close && close != ']' && *i + 1 < len && sql[*i + 1] == close)
                (*i)++; /* a doubled quote stands for one */
            else if (sql[*i] == close)
                break;
            if (n + 1 < cap)
                out[n++] = sql[*i];
        }
        *i = *i < len ? *i + 1 : len;
        out[n] = 0;
        return c == '\'' ? 'x' : 'i';
    }
    if (s_ident_start(c)) {
        for (; *i < len && s_ident_char((unsigned char)sql[*i]); (*i)++)
            if (n + 1 < cap)
                out[n++] = sql[*i];
        out[n] = 0;
        return 'i';
    }
    (*i)++;
    return c == '.' ? '.' : 'x';
}

void dm_node__sql_pairs(const char *sql, size_t len, dm_node__sql_pair_fn fn, void *ctx)
{
    char a[DM_AUDIT_PRODUCT_MAX] = "", b[DM_AUDIT_PRODUCT_MAX] = "", q[DM_AUDIT_PRODUCT_MAX];
    char kind_a = 0, kind_b = 0, kind;
    size_t i = 0;
    /* Tokens a, '.', then the current one: a pair when both are names. */
    while ((kind = s_token(sql, len, &i, q, sizeof q)) != 0) {
        if (kind == 'i' && kind_b == '.' && kind_a == 'i' && !fn(ctx, a, q))
            return;
        memcpy(a, b, sizeof a);
        kind_a = kind_b;
        memcpy(b, q, sizeof b);
        kind_b = kind;
    }
}

typedef struct {
    dm_node_t *self;
    dm_node__fed_session_t *s;
    dm_err rc;
    dm_buf_t *why;
} s_products_ctx;

/* A pair of s_products: kept when it is a product of this node. */
static bool s_product_pair(void *arg, const char *domain, const char *product)
{
    s_products_ctx *c = arg;
    dm_node_t *self = c->self;
    dm_node__fed_session_t *s = c->s;
    if (strcmp(domain, self->domain) != 0)
        return true;
    char name[DM_AUDIT_PRODUCT_MAX];
    int n = snprintf(name, sizeof name, "%s/%s", domain, product);
    const dm_product_ref_t *ref = NULL;
    bool mine = n > 0 && (size_t)n < sizeof name &&
                dm_registry_acquire(self->registry, name, (size_t)n, &ref) == DM_OK;
    if (ref)
        dm_registry_release(self->registry, ref);
    bool have = false;
    for (size_t k = 0; mine && k < s->nproducts; k++)
        have = have || strcmp(s->products[k], name) == 0;
    if (!mine || have)
        return true;
    if (s->nproducts >= DM_NODE_FED_PRODUCTS_MAX) {
        dm_buf_why(c->why, "the SQL names more than %d products of %s", DM_NODE_FED_PRODUCTS_MAX,
                   self->domain);
        c->rc = DM_ERR_TOOBIG;
        return false;
    }
    void *grown = realloc(s->products, (s->nproducts + 1) * sizeof *s->products);
    if (!grown) {
        c->rc = DM_ERR_NOMEM;
        return false;
    }
    s->products = grown;
    memcpy(s->products[s->nproducts++], name, sizeof name);
    return true;
}

/* Appends to s every distinct product of this node the SQL names as
 * `domain . name` (the pairs the query engine resolves), at most
 * DM_NODE_FED_PRODUCTS_MAX. DM_ERR_NOMEM, or DM_ERR_TOOBIG named in why. */
static dm_err s_products(dm_node_t *self, const char *sql, size_t len,
                         dm_node__fed_session_t *s, dm_buf_t *why)
{
    s_products_ctx c = {self, s, DM_OK, why};
    dm_node__sql_pairs(sql, len, s_product_pair, &c);
    return c.rc;
}

/* ---- requests ---- */

/* Replies FedOpenRep{session = nonce, products} (products NULL: none, an
 * acknowledgement of FedClose). */
static void s_reply(dm_node_t *self, zmq_msg_t *rid, uint64_t id, const uint8_t *nonce,
                    const dm_node__fed_session_t *s)
{
    Dm__Envelope env;
    Dm__FedOpenRep rep = DM__FED_OPEN_REP__INIT;
    char names[DM_NODE_FED_PRODUCTS_MAX][DM_AUDIT_PRODUCT_MAX];
    char *ptrs[DM_NODE_FED_PRODUCTS_MAX];
    rep.session.data = (uint8_t *)nonce;
    rep.session.len = DM_GRANT_NONCE_BYTES;
    for (size_t i = 0; s && i < s->nproducts; i++) {
        memcpy(names[i], s->products[i], sizeof names[i]);
        char *slash = strchr(names[i], '/');
        if (slash)
            *slash = '.';
        ptrs[i] = names[i];
    }
    rep.n_products = s ? s->nproducts : 0;
    rep.products = ptrs;
    dm_envelope_init(&env, id, DM__ENVELOPE__BODY_FED_OPEN_REP, &rep);
    dm_rpc_server_send(self->rpc, rid, &env);
}

/* Audits a FedOpen: accepted (s set) as the consumer via the relay, else
 * refused as the caller (the consumer when the grant was valid). */
static void s_audit_open(dm_node_t *self, const dm_rpc_caller_t *caller, const dm_grant_t *g,
                         bool grant_ok, const dm_node__fed_session_t *s, const char *why)
{
    dm_rpc_caller_t who = *caller;
    if (grant_ok) {
        memcpy(who.key, g->consumer, DM_ID_PUBLIC_BYTES);
        who.verified = true;
        who.relayed = true;
        memcpy(who.relay, caller->key, DM_ID_PUBLIC_BYTES);
        memcpy(who.session, g->nonce, DM_GRANT_NONCE_BYTES);
    }
    dm_buf_t rule = DM_BUF_INIT;
    if (s) {
        char hex[2 * DM_GRANT_NONCE_BYTES + 1];
        dm_hex_encode(g->nonce, DM_GRANT_NONCE_BYTES, hex);
        dm_buf_printf(&rule, "grant accepted: session %s for", hex);
        for (size_t i = 0; i < s->nproducts; i++)
            dm_buf_printf(&rule, "%s%s", i ? "," : " ", s->products[i]);
        if (s->nproducts == 0)
            dm_buf_puts(&rule, " none of this node's products");
    } else {
        dm_buf_printf(&rule, "refused: %s", why && *why ? why : "grant refused");
    }
    dm_node__audit(self, &who, s != NULL, "fed_open", NULL, NULL, rule.data, 0);
    dm_buf_free(&rule);
}

/* Checks req and records its session in *s and its nonce; fed_lock not
 * held. grant_ok: the grant verified (g filled). */
static dm_err s_open_session(dm_node_t *self, const Dm__FedOpen *req,
                             const dm_rpc_caller_t *caller, dm_grant_t *g, bool *grant_ok,
                             dm_node__fed_session_t *s, dm_buf_t *why)
{
    const char *sql = req->sql ? req->sql : "";
    size_t sql_len = strlen(sql);
    int64_t now = dm_clock_wall_ms();
    if (!caller->verified) {
        dm_buf_why(why, "federated session refused: the caller proved no node identity (a relay "
                   "connects with its node key, dm_rpc_client_new_as)");
        return DM_ERR_DENIED;
    }
    if (sql_len > DM_QUERY_DEFAULT_MAX_SQL) {
        dm_buf_why(why, "federated session refused: FedOpen.sql has %zu bytes; at most %d",
                   sql_len, DM_QUERY_DEFAULT_MAX_SQL);
        return DM_ERR_DENIED;
    }
    dm_err rc = dm_node__fed_admit_relay(self, caller->key, why);
    if (rc != DM_OK)
        return rc;
    rc = dm_grant_verify(req->grant.data, req->grant.len, caller->key, sql, sql_len, now, g, why);
    if (rc != DM_OK)
        return DM_ERR_DENIED;
    *grant_ok = true;
    memcpy(s->nonce, g->nonce, sizeof s->nonce);
    memcpy(s->relay, g->relay, sizeof s->relay);
    memcpy(s->consumer, g->consumer, sizeof s->consumer);
    s->expires_ms = g->expires_ms;
    rc = s_products(self, sql, sql_len, s, why);
    if (rc != DM_OK)
        return rc;
    if (s->nproducts == 0) {
        dm_buf_why(why, "federated session refused: the SQL names none of this node's products "
                   "(a session reads only products of domain %s this node serves, named as "
                   "%s.NAME)", self->domain, self->domain);
        return DM_ERR_DENIED;
    }
    pthread_mutex_lock(&self->fed_lock);
    s_evict(self, now, false);
    rc = s_admit(self, g, now, why);
    dm_node__fed_nonce_t n;
    memcpy(n.nonce, g->nonce, sizeof n.nonce);
    memcpy(n.relay, g->relay, sizeof n.relay);
    n.opened_ms = now;
    n.forget_ms = g->expires_ms + DM_GRANT_SKEW_MS;
    if (rc == DM_OK && !s_nonce_append(self, &n)) {
        dm_log_err("federation: cannot record a grant nonce in %s/%s: %s", self->dir,
                   DM_NODE_FED_NONCE_FILE, strerror(errno));
        dm_buf_why(why, "federated session refused: the node cannot record the grant's nonce "
                   "(its replay table file); retry later");
        rc = DM_ERR_IO;
    }
    if (rc == DM_OK) {
        self->fed_nonces[self->fed_nnonces++] = n;
        s_index_add(self, self->fed_nnonces - 1);
        self->fed_sessions[self->fed_nsessions++] = *s;
    }
    pthread_mutex_unlock(&self->fed_lock);
    return rc;
}

void dm_node__handle_fed_open(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                              const Dm__FedOpen *req, const dm_rpc_caller_t *caller)
{
    dm_buf_t why = DM_BUF_INIT;
    dm_grant_t g;
    memset(&g, 0, sizeof g);
    dm_node__fed_session_t s;
    memset(&s, 0, sizeof s);
    bool grant_ok = false;
    dm_err rc = s_open_session(self, req, caller, &g, &grant_ok, &s, &why);
    s_audit_open(self, caller, &g, grant_ok, rc == DM_OK ? &s : NULL, why.data);
    if (rc == DM_OK) {
        s_reply(self, rid, id, g.nonce, &s); /* s's products now belong to the table */
    } else {
        free(s.products);
        dm_rpc_server_send_error(self->rpc, rid, id, rc,
                                 why.len ? why.data : "federated session refused");
    }
    dm_buf_free(&why);
}

void dm_node__handle_fed_close(dm_node_t *self, zmq_msg_t *rid, uint64_t id,
                               const Dm__FedClose *req, const dm_rpc_caller_t *caller)
{
    bool found = false;
    if (caller->verified && req->session.len == DM_GRANT_NONCE_BYTES) {
        pthread_mutex_lock(&self->fed_lock);
        dm_node__fed_session_t *s = s_session_find(self, caller->key, req->session.data,
                                                   req->session.len, dm_clock_wall_ms());
        if (s) {
            free(s->products);
            *s = self->fed_sessions[--self->fed_nsessions];
            found = true;
        }
        pthread_mutex_unlock(&self->fed_lock);
    }
    if (found) {
        s_reply(self, rid, id, req->session.data, NULL);
        return;
    }
    char hex[2 * DM_GRANT_NONCE_BYTES + 1] = "";
    if (req->session.len == DM_GRANT_NONCE_BYTES)
        dm_hex_encode(req->session.data, DM_GRANT_NONCE_BYTES, hex);
    dm_buf_t why = DM_BUF_INIT;
    dm_buf_printf(&why, "no open federated session '%s' of this caller to close (a session is "
                  "%d bytes, opened by FedOpen on a connection with the relay's node key)",
                  hex, DM_GRANT_NONCE_BYTES);
    dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_NOTFOUND, why.data);
    dm_buf_free(&why);
}

dm_err dm_node__fed_caller(dm_node_t *self, const dm_rpc_caller_t *relay, const uint8_t *session,
                           size_t len, dm_rpc_caller_t *out, dm_buf_t *why)
{
    memset(out, 0, sizeof *out);
    bool found = false;
    if (relay->verified && self->fed_ready) {
        pthread_mutex_lock(&self->fed_lock);
        const dm_node__fed_session_t *s =
            s_session_find(self, relay->key, session, len, dm_clock_wall_ms());
        if (s) {
            memcpy(out->key, s->consumer, DM_ID_PUBLIC_BYTES);
            out->verified = true;
            out->relayed = true;
            memcpy(out->relay, relay->key, DM_ID_PUBLIC_BYTES);
            memcpy(out->session, s->nonce, sizeof out->session);
            found = true;
        }
        pthread_mutex_unlock(&self->fed_lock);
    }
    if (found)
        return DM_OK;
    char hex[2 * DM_GRANT_NONCE_BYTES + 1] = "?";
    if (len == DM_GRANT_NONCE_BYTES)
        dm_hex_encode(session, len, hex);
    if (!relay->verified)
        dm_buf_why(why, "no open federated session %s: the caller proved no node identity", hex);
    else
        dm_buf_why(why, "no open federated session %s for this relay: it was never opened, was "
                   "closed, or its grant expired (open one with FedOpen)", hex);
    return DM_ERR_DENIED;
}

bool dm_node__fed_allows(dm_node_t *self, const dm_rpc_caller_t *caller, const char *domain,
                         const char *name)
{
    char q[DM_AUDIT_PRODUCT_MAX];
    int n = snprintf(q, sizeof q, "%s/%s", domain, name ? name : "");
    if (!caller->relayed || !self->fed_ready || n <= 0 || (size_t)n >= sizeof q)
        return false;
    bool yes = false;
    pthread_mutex_lock(&self->fed_lock);
    const dm_node__fed_session_t *s = s_session_find(
        self, caller->relay, caller->session, sizeof caller->session, dm_clock_wall_ms());
    if (s && memcmp(s->consumer, caller->key, DM_ID_PUBLIC_BYTES) == 0)
        for (size_t i = 0; !yes && i < s->nproducts; i++)
            yes = strcmp(s->products[i], q) == 0;
    pthread_mutex_unlock(&self->fed_lock);
    return yes;
}
