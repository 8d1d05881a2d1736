/* node_relay.c: the relaying node's side of federated SQL: the
 * dm_query_remote_t a query worker reads other nodes' products through
 * (query.h, "federated query"; docs/operations.md "Federated query").
 *
 * Per query (make .. free, all on the worker that runs it, or on the node
 * loop for a passed query it sends on itself, node_relay_loop.c): the products
 * come from a snapshot of the directory (node_remote.c) taken at make.
 * The first scan of an owner gets a connection to it acting as this
 * node's identity (an idle one from the cache when there is one), sends
 * FedOpen{grant, consumer's SQL} and, without waiting, the scan's
 * QueryReq{sql, session = the grant's nonce}; the replies are read as they
 * come. Every wait is sliced into DM_NODE_RELAY_POLL_MS polls so the
 * cancel flag, the deadline, the owner's state in the newest directory
 * and DM_NODE_RELAY_WAIT_MS of silence end it while an owner is silent; a
 * reply whose id the scan does not wait for (a late answer of a closed or
 * abandoned request) is skipped (node_relay_wire.c). An opened session is
 * kept in the relay's table (node_relay_sess.c) when a later query could
 * use it; a later scan of the same consumer's that its products cover is
 * sent on it with no FedOpen, the query's own grant verified by the relay
 * while the owner works. At free each session not kept gets a FedClose and
 * its connection goes back to the cache when it is known clean.
 *
 * The cache: ZeroMQ sockets may move between threads with a full memory
 * barrier, which its mutex gives; a connection is used by one query at a
 * time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "membership/membership.h"
#include "base/clock.h"
#include "server/node_relay_priv.h"

/* ---- the cache of idle connections ---- */

static dm_rpc_client_t *s_cache_take(dm_node__fedrelay_t *r, const char *address)
{
    dm_rpc_client_t *c = NULL, *stale[DM_NODE_RELAY_IDLE_MAX];
    size_t nstale = 0;
    int64_t now = dm_clock_mono_ms();
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nidle;) {
        dm_node__relay_idle_t *x = &r->idle[i];
        bool old = now - x->idle_since_ms > DM_NODE_RELAY_IDLE_MS;
        if (old || (!c && strcmp(x->address, address) == 0)) {
            if (old)
                stale[nstale++] = x->client;
            else
                c = x->client;
            *x = r->idle[--r->nidle];
            continue;
        }
        i++;
    }
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < nstale; i++)
        dm_rpc_client_destroy(&stale[i]);
    return c;
}

static void s_cache_put(dm_node__fedrelay_t *r, const char *address, dm_rpc_client_t **c_p)
{
    size_t same = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nidle; i++)
        same += strcmp(r->idle[i].address, address) == 0;
    if (same < DM_NODE_RELAY_IDLE_PER_OWNER && r->nidle < DM_NODE_RELAY_IDLE_MAX) {
        dm_node__relay_idle_t *x = &r->idle[r->nidle++];
        snprintf(x->address, sizeof x->address, "%s", address);
        x->client = *c_p;
        x->idle_since_ms = dm_clock_mono_ms();
        *c_p = NULL;
    }
    pthread_mutex_unlock(&r->lock);
    dm_rpc_client_destroy(c_p); /* NULL when cached */
}

dm_err dm_node__fedrelay_new(const dm_identity_t *id, dm_node__fedrelay_dir_fn dir,
                             void *dir_ctx, dm_node__fedrelay_audit_fn audit, void *audit_ctx,
                             dm_node__fedrelay_t **out)
{
    *out = NULL;
    dm_node__fedrelay_t *r = calloc(1, sizeof *r);
    if (!r)
        return DM_ERR_NOMEM;
    if (!(r->rows = dm_node__rows_new()) || !(r->sess = dm_node__fedsess_new()) ||
        pthread_mutex_init(&r->lock, NULL) != 0) {
        dm_node__rows_destroy(&r->rows);
        dm_node__fedsess_destroy(&r->sess);
        free(r);
        return DM_ERR_NOMEM;
    }
    r->time_limit_ms = DM_QUERY_DEFAULT_TIMEOUT_MS;
    r->id = id;
    r->dir = dir;
    r->dir_ctx = dir_ctx;
    r->audit = audit;
    r->audit_ctx = audit_ctx;
    *out = r;
    return DM_OK;
}

void dm_node__fedrelay_destroy(dm_node__fedrelay_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dm_node__fedrelay_t *r = *self_p;
    for (size_t i = 0; i < r->nidle; i++)
        dm_rpc_client_destroy(&r->idle[i].client);
    pthread_mutex_destroy(&r->lock);
    dm_node__rows_destroy(&r->rows);
    dm_node__fedsess_destroy(&r->sess);
    free(r);
    *self_p = NULL;
}

void dm_node__fedrelay_set_local(dm_node__fedrelay_t *self, dm_registry_t *registry,
                                 const char *domain)
{
    self->registry = registry;
    snprintf(self->domain, sizeof self->domain, "%s", domain ? domain : "");
}

void dm_node__fedrelay_set_time_limit(dm_node__fedrelay_t *self, int64_t ms)
{
    if (ms > 0)
        self->time_limit_ms = ms;
}

/* ---- naming the owner in errors ---- */

/* "3f2a9c1e0b7d..." : enough of the key to find the node in meshq members. */
void dm_node_relay__short_hex(const uint8_t key[DM_ID_PUBLIC_BYTES], char out[24])
{
    char hex[DM_ID_HEX_BYTES];
    dm_identity_key_hex(key, hex);
    snprintf(out, 24, "%.16s...", hex);
}

static void s_audit(dm_node__relay_query_t *q, bool allowed, const dm_node__remote_t *e,
                    const char *rule)
{
    if (q->relay->audit)
        q->relay->audit(q->relay->audit_ctx, &q->caller, allowed, e->domain, e->name, e->owner,
                        rule);
}

/* ---- the grant, as far as the relay can judge it ---- */

/* Reads the nonce and checks consumer, relay and expiry; the signature and
 * the SQL's hash are the owner's to check (it refuses what fails). Sets
 * q->grant_problem when the grant cannot be used. */
static void s_grant_check(dm_node__relay_query_t *q)
{
    char *p = q->grant_problem;
    size_t cap = sizeof q->grant_problem;
    dm_grant_t g;
    dm_buf_t why = DM_BUF_INIT;
    int64_t now = dm_clock_wall_ms();
    if (dm_grant_read(q->grant, q->grant_len, &g, &why) != DM_OK)
        snprintf(p, cap, "the grant is malformed (%s; valid: an encoded SignedGrant as meshq "
                 "signs)", why.data ? why.data : "?");
    else if (!q->caller.verified || memcmp(g.consumer, q->caller.key, DM_ID_PUBLIC_BYTES) != 0)
        snprintf(p, cap, "the grant is signed for another consumer than the caller%s",
                 q->caller.verified ? "" : " (the caller did not prove an identity)");
    else if (memcmp(g.relay, dm_identity_public(q->relay->id), DM_ID_PUBLIC_BYTES) != 0)
        snprintf(p, cap, "the grant names another relay than this node");
    else if (g.expires_ms + DM_GRANT_SKEW_MS < now)
        snprintf(p, cap, "the grant expired %lld s ago",
                 (long long)((now - g.expires_ms) / 1000));
    else {
        memcpy(q->nonce, g.nonce, DM_GRANT_NONCE_BYTES);
        q->grant_expires_ms = g.expires_ms;
    }
    dm_buf_free(&why);
}


/* A new session of q with e's owner (nonce NULL: q's grant's, opened by a
 * FedOpen sent here; else a reused one's), connected; NULL with the error
 * in why. */
static dm_node__relay_session_t *s_session_new(dm_node__relay_query_t *q, dm_query_rscan_t *sc,
                                               const dm_node__remote_t *e, const uint8_t *nonce,
                                               int64_t deadline_ns, dm_err *rc, dm_buf_t *why)
{
    if (q->nsessions == DM_NODE_RELAY_OWNERS_MAX) {
        *rc = DM_ERR_TOOBIG;
        dm_buf_why(why, "%s: the query reaches more than %d owner nodes; a federated query may "
                        "read the products of at most %d other nodes",
                   sc->product, DM_NODE_RELAY_OWNERS_MAX, DM_NODE_RELAY_OWNERS_MAX);
        return NULL;
    }
    if (q->cache_only && !nonce) { /* the node loop never waits for a FedOpen's send */
        *rc = DM_ERR_BUSY;
        dm_buf_why(why, "%s: no kept session with owner node %s", sc->product, sc->owner_hex);
        return NULL;
    }
    dm_node__relay_session_t *s = &q->sessions[q->nsessions];
    memset(s, 0, sizeof *s);
    memcpy(s->owner, e->owner, DM_ID_PUBLIC_BYTES);
    memcpy(s->nonce, nonce ? nonce : q->nonce, DM_GRANT_NONCE_BYTES);
    s->reused = s->kept = nonce != NULL;
    snprintf(s->address, sizeof s->address, "%s", e->address);
    s->client = s_cache_take(q->relay, e->address);
    if (!s->client && q->cache_only) {
        *rc = DM_ERR_BUSY;
        dm_buf_why(why, "%s: no idle connection to owner node %s", sc->product, sc->owner_hex);
        return NULL;
    }
    if (!s->client) {
        dm_buf_t reason = DM_BUF_INIT;
        *rc = dm_rpc_client_new_as(e->address, DM_NODE_RELAY_POLL_MS, q->relay->id, &s->client,
                                   &reason);
        if (*rc != DM_OK) {
            dm_buf_why(why, "%s: cannot connect to owner node %s: %s", sc->product,
                       sc->owner_hex, reason.len ? reason.data : dm_err_str(*rc));
            dm_buf_free(&reason);
            return NULL;
        }
        dm_buf_free(&reason);
    }
    q->nsessions++;
    sc->s = s;
    if (nonce)
        return s;
    Dm__Envelope env;
    Dm__FedOpen fo = DM__FED_OPEN__INIT;
    fo.grant.data = q->grant;
    fo.grant.len = q->grant_len;
    fo.sql = q->sql;
    dm_envelope_init(&env, 0, DM__ENVELOPE__BODY_FED_OPEN, &fo);
    if ((*rc = dm_node_relay__send(sc, &env, &s->open_id, deadline_ns, NULL, why)) != DM_OK) {
        dm_node_relay__fail(s, *rc, why && why->len ? why->data : "the FedOpen could not be sent");
        return NULL;
    }
    s->open_pending = true;
    return s;
}

/* The session sc's scan of e runs in: the one q's grant opened with e's
 * owner; else (unless fresh) an open one of the consumer's with that
 * owner for this product, from the relay's table, with the query's time
 * limit left; else a new one from q's grant. NULL with the error in why. */
dm_node__relay_session_t *dm_node_relay__session_get(dm_node__relay_query_t *q, dm_query_rscan_t *sc,
                                               const dm_node__remote_t *e, bool fresh,
                                               int64_t deadline_ns, dm_err *rc, dm_buf_t *why)
{
    uint8_t nonce[DM_GRANT_NONCE_BYTES];
    bool reuse = !fresh && dm_node__fedsess_find(q->relay->sess, q->caller.key, e->owner,
                                                 sc->product,
                                                 dm_clock_wall_ms() + q->relay->time_limit_ms,
                                                 nonce);
    dm_node__relay_session_t *s = NULL;
    for (size_t i = 0; !s && i < q->nsessions; i++) {
        dm_node__relay_session_t *x = &q->sessions[i];
        if (memcmp(x->owner, e->owner, DM_ID_PUBLIC_BYTES) == 0 &&
            (!x->reused || (reuse && !x->stale &&
                            memcmp(x->nonce, nonce, DM_GRANT_NONCE_BYTES) == 0)))
            s = x;
    }
    if (!s)
        return s_session_new(q, sc, e, reuse ? nonce : NULL, deadline_ns, rc, why);
    if (s->failed != DM_OK) {
        *rc = s->failed;
        dm_buf_why(why, "%s", s->failure ? s->failure : "the owner's session failed");
        return NULL;
    }
    sc->s = s;
    return s;
}

/* Audits once per product and query that the consumer's scan of it goes
 * to its owner. */
void dm_node_relay__audit_relayed(dm_node__relay_query_t *q, const dm_node__remote_t *e)
{
    for (size_t i = 0; i < q->naudited; i++)
        if (q->audited[i] == e)
            return;
    if (q->naudited < sizeof q->audited / sizeof *q->audited)
        q->audited[q->naudited++] = e;
    char hex[DM_ID_HEX_BYTES], rule[DM_AUDIT_RULE_MAX];
    dm_identity_key_hex(e->owner, hex);
    snprintf(rule, sizeof rule, "relayed to owner %s", hex);
    s_audit(q, true, e, rule);
}

/* Why the relay does not even try e's owner; DM_OK when it may. */
static dm_err s_refuse(dm_node__relay_query_t *q, const dm_node__remote_t *e, const char *product,
                       const char *owner, dm_buf_t *why)
{
    char line[DM_BUF_WHY_MAX], when[40];
    dm_err rc = DM_OK;
    if (!e->certified) {
        rc = DM_ERR_DENIED;
        snprintf(line, sizeof line, "%s: owner node %s is not certified for domain %s by the "
                 "mesh's governance, so its data is not read", product, owner, e->domain);
    } else if (q->grant_len == 0) {
        rc = DM_ERR_DENIED;
        snprintf(line, sizeof line, "%s is owned by node %s: the query needs a grant signed by "
                 "the consumer (meshq signs one)", product, owner);
    } else if (q->grant_problem[0]) {
        rc = DM_ERR_DENIED;
        snprintf(line, sizeof line, "%s is owned by node %s: %s", product, owner,
                 q->grant_problem);
    } else if (q->grant_expires_ms + DM_GRANT_SKEW_MS < dm_clock_wall_ms()) {
        rc = DM_ERR_DENIED;
        snprintf(line, sizeof line, "%s is owned by node %s: the grant expired during the "
                 "query", product, owner);
    } else if (e->state == DM_MEMBER_DEAD || e->state == DM_MEMBER_LEFT ||
               e->state == DM_MEMBER_UNKNOWN) {
        rc = DM_ERR_NET;
        dm_clock_utc_text(e->since_ms, when);
        if (e->state == DM_MEMBER_UNKNOWN)
            snprintf(line, sizeof line, "%s: owner node %s is %s", product, owner,
                     dm_node_relay__state_name(e->state));
        else
            snprintf(line, sizeof line, "%s: owner node %s is %s since %s", product, owner,
                     dm_node_relay__state_name(e->state), when);
    } else if (!e->address[0]) {
        rc = DM_ERR_NET;
        snprintf(line, sizeof line, "%s: the address of owner node %s is not known here",
                 product, owner);
    }
    if (rc != DM_OK) {
        dm_buf_why(why, "%s", line);
        s_audit(q, false, e, line);
    }
    return rc;
}

/* Learns e's record count from its owner (a ProductsReq on a cached or
 * new connection) when what the relay knows is stale; 0 when unknown. A
 * failure only leaves it unknown. */
static uint64_t s_rows(dm_node__relay_query_t *q, const dm_node__remote_t *e)
{
    uint64_t rows = e->rows;
    if (rows || !e->certified || !e->address[0] || e->state == DM_MEMBER_DEAD ||
        e->state == DM_MEMBER_LEFT || e->state == DM_MEMBER_UNKNOWN ||
        dm_node__rows_get(q->relay->rows, e, &rows))
        return rows;
    dm_rpc_client_t *c = s_cache_take(q->relay, e->address);
    if (!c && dm_rpc_client_new_as(e->address, DM_NODE_RELAY_POLL_MS, q->relay->id, &c, NULL) !=
                  DM_OK)
        return 0;
    if (dm_node__rows_fetch(q->relay->rows, c, e) == DM_OK)
        s_cache_put(q->relay, e->address, &c);
    dm_rpc_client_destroy(&c); /* NULL when cached */
    dm_node__rows_get(q->relay->rows, e, &rows);
    return rows;
}

static dm_err s_resolve(void *ctx, const char *domain, const char *product, char **contract_json,
                        uint64_t *rows, dm_buf_t *why)
{
    dm_node__relay_query_t *q = ctx;
    *contract_json = NULL;
    *rows = 0;
    const dm_node__remote_t *e = dm_node__remote_dir_find(q->dir, domain, product);
    if (!e) {
        dm_buf_why(why, "%s.%s: no other node of the mesh publishes it (as this node's catalog "
                        "knows)", domain, product);
        return DM_ERR_NOTFOUND;
    }
    if (!(*contract_json = strdup(e->contract)))
        return DM_ERR_NOMEM;
    *rows = s_rows(q, e);
    return DM_OK;
}

void dm_node_relay__scan_free(dm_query_rscan_t *sc)
{
    if (sc->s) {
        dm_query_rscan_t **p = &sc->s->scans;
        while (*p && *p != sc)
            p = &(*p)->next_open;
        if (*p)
            *p = sc->next_open;
    }
    if (sc->stash)
        dm__envelope__free_unpacked(sc->stash, NULL);
    dm_buf_free(&sc->first);
    free(sc);
}

/* Asks for the next batch before the engine wants it; one try, no wait
 * (a failure leaves the pull to next). */
static void s_pull_ahead(dm_query_rscan_t *sc)
{
    if (sc->done || !sc->cursor || sc->ahead_id || sc->s->broken)
        return;
    Dm__Envelope env;
    Dm__QueryNext qn = DM__QUERY_NEXT__INIT;
    qn.cursor = sc->cursor;
    dm_envelope_init(&env, 0, DM__ENVELOPE__BODY_QUERY_NEXT, &qn);
    if (dm_rpc_client_send(sc->s->client, &env, &sc->ahead_id, NULL) != DM_OK)
        sc->ahead_id = 0;
}

/* Checks the whole grant, signature included, as its owner would: done by
 * the relay when the scan runs on a reused session, which the owner opened
 * with an earlier grant of the consumer's. DM_ERR_DENIED, audited. */
dm_err dm_node_relay__grant_verify(dm_query_rscan_t *sc, const dm_node__remote_t *e, dm_buf_t *why)
{
    dm_node__relay_query_t *q = sc->q;
    dm_grant_t g;
    dm_buf_t w = DM_BUF_INIT;
    dm_err rc = dm_grant_verify(q->grant, q->grant_len, dm_identity_public(q->relay->id), q->sql,
                                strlen(q->sql), dm_clock_wall_ms(), &g, &w);
    if (rc == DM_OK) {
        q->grant_verified = true;
    } else {
        rc = DM_ERR_DENIED;
        snprintf(q->grant_problem, sizeof q->grant_problem, "the grant is refused: %s",
                 w.len ? w.data : "it does not verify");
        char line[DM_BUF_WHY_MAX];
        snprintf(line, sizeof line, "%s is owned by node %s: %s", sc->product, sc->owner_hex,
                 q->grant_problem);
        dm_buf_why(why, "%s", line);
        s_audit(q, false, e, line);
        sc->s->broken = true; /* its reply is not read */
    }
    dm_buf_free(&w);
    return rc;
}

/* Sends the scan's QueryReq in its session and waits for the first
 * reply (*rep, the caller's); on a reused session the query's grant is
 * verified meanwhile. */
static dm_err s_first(dm_query_rscan_t *sc, const dm_node__remote_t *e, const char *sql,
                      int64_t deadline, const atomic_bool *cancel, Dm__Envelope **rep,
                      dm_buf_t *why)
{
    Dm__Envelope env;
    Dm__QueryReq req = DM__QUERY_REQ__INIT;
    req.sql = (char *)sql;
    req.max_rows = DM_NODE_RELAY_BATCH_ROWS;
    req.session.data = sc->s->nonce;
    req.session.len = DM_GRANT_NONCE_BYTES;
    dm_envelope_init(&env, 0, DM__ENVELOPE__BODY_QUERY_REQ, &req);
    uint64_t id;
    dm_err rc = dm_node_relay__send(sc, &env, &id, deadline, NULL, why);
    if (rc == DM_OK && sc->s->reused && !sc->q->grant_verified)
        rc = dm_node_relay__grant_verify(sc, e, why);
    if (rc == DM_OK)
        rc = dm_node_relay__wait(sc, id, deadline, cancel, rep, why);
    return rc;
}

/* Whether rep is the owner's refusal of a session it does not know
 * (node_fed.c, dm_node__fed_caller). */
bool dm_node_relay__forgotten(const Dm__Envelope *rep)
{
    static const char unknown[] = "no open federated session";
    return rep->body_case == DM__ENVELOPE__BODY_ERROR && rep->error->code == DM_ERR_DENIED &&
           rep->error->message && strncmp(rep->error->message, unknown, sizeof unknown - 1) == 0;
}

static dm_err s_open(void *ctx, const char *domain, const char *product, const char *sql,
                     int64_t deadline_ns, const atomic_bool *cancel, dm_query_rscan_t **out,
                     dm_buf_t *why)
{
    dm_node__relay_query_t *q = ctx;
    *out = NULL;
    const dm_node__remote_t *e = dm_node__remote_dir_find(q->dir, domain, product);
    if (!e) {
        dm_buf_why(why, "%s.%s: no other node of the mesh publishes it", domain, product);
        return DM_ERR_NOTFOUND;
    }
    dm_query_rscan_t *sc = calloc(1, sizeof *sc);
    if (!sc)
        return DM_ERR_NOMEM;
    sc->q = q;
    snprintf(sc->product, sizeof sc->product, "%s.%s", e->domain, e->name);
    char owner[24];
    dm_node_relay__short_hex(e->owner, owner);
    snprintf(sc->owner_hex, sizeof sc->owner_hex, "%s", owner);
    char when[DM_CLOCK_UTC_TEXT_MAX];
    dm_clock_utc_text(e->since_ms, when);
    snprintf(sc->mesh_says, sizeof sc->mesh_says, "%s since %s",
             dm_node_relay__state_name(e->state), when);
    dm_err rc = s_refuse(q, e, sc->product, owner, why);
    int64_t deadline = dm_node_relay__clip(deadline_ns);
    if (rc != DM_OK)
        goto fail;
    dm_node_relay__audit_relayed(q, e);
    Dm__Envelope *rep = NULL;
    for (bool fresh = false;; fresh = true) {
        if (!(sc->s = dm_node_relay__session_get(q, sc, e, fresh, deadline, &rc, why)) ||
            (rc = s_first(sc, e, sql, deadline, cancel, &rep, why)) != DM_OK)
            goto fail;
        if (!sc->s->reused || !dm_node_relay__forgotten(rep))
            break;
        /* The owner restarted or dropped it: the query's own grant opens one. */
        dm_node__fedsess_drop(q->relay->sess, sc->s->owner, sc->s->nonce);
        sc->s->stale = true;
        dm__envelope__free_unpacked(rep, NULL);
        rep = NULL;
    }
    rc = dm_node_relay__take(sc, rep, NULL, NULL, why);
    dm__envelope__free_unpacked(rep, NULL);
    if (rc != DM_OK)
        goto fail;
    sc->next_open = sc->s->scans;
    sc->s->scans = sc;
    s_pull_ahead(sc);
    *out = sc;
    return DM_OK;
fail:
    dm_node_relay__scan_free(sc);
    return rc;
}

static dm_err s_next(dm_query_rscan_t *sc, int64_t deadline_ns, const atomic_bool *cancel,
                     dm_buf_t *out, uint32_t *nrows, bool *done, dm_buf_t *why)
{
    *nrows = 0;
    if (sc->have_first) {
        dm_buf_append(out, sc->first.data, sc->first.len);
        *nrows = sc->first_n;
        sc->have_first = false;
        dm_buf_free(&sc->first);
        *done = sc->done;
        return DM_OK;
    }
    *done = sc->done;
    if (sc->done)
        return DM_OK;
    if (sc->s->failed != DM_OK) {
        dm_buf_why(why, "%s", sc->s->failure ? sc->s->failure : "the owner's session failed");
        return sc->s->failed;
    }
    int64_t deadline = dm_node_relay__clip(deadline_ns);
    Dm__Envelope env, *rep = NULL;
    Dm__QueryNext qn = DM__QUERY_NEXT__INIT;
    qn.cursor = sc->cursor;
    dm_envelope_init(&env, 0, DM__ENVELOPE__BODY_QUERY_NEXT, &qn);
    uint64_t id = sc->ahead_id;
    dm_err rc = DM_OK;
    sc->ahead_id = 0;
    if (sc->stash && sc->stash->id == id) {
        rep = sc->stash;
        sc->stash = NULL;
    } else if ((!id && (rc = dm_node_relay__send(sc, &env, &id, deadline, cancel, why)) != DM_OK) ||
               (rc = dm_node_relay__wait(sc, id, deadline, cancel, &rep, why)) != DM_OK) {
        return rc;
    }
    rc = dm_node_relay__take(sc, rep, out, nrows, why);
    dm__envelope__free_unpacked(rep, NULL);
    *done = sc->done;
    if (rc == DM_OK)
        s_pull_ahead(sc);
    return rc;
}

/* Tells the owner when the scan had not finished; no answer is awaited
 * (its late reply is skipped by whoever reads the connection next). */
static void s_close(dm_query_rscan_t *sc)
{
    if (!sc)
        return;
    if (!sc->done && sc->cursor && sc->s && !sc->s->broken) {
        Dm__Envelope env;
        Dm__QueryClose qc = DM__QUERY_CLOSE__INIT;
        qc.cursor = sc->cursor;
        dm_envelope_init(&env, 0, DM__ENVELOPE__BODY_QUERY_CLOSE, &qc);
        if (dm_rpc_client_send(sc->s->client, &env, NULL, NULL) != DM_OK)
            sc->s->broken = true;
    }
    dm_node_relay__scan_free(sc);
}

dm_err dm_node__fedrelay_make(void *ctx, const dm_rpc_caller_t *caller, const uint8_t *grant,
                              size_t grant_len, const char *sql, dm_query_remote_t **out,
                              dm_buf_t *why)
{
    (void)why;
    dm_node__fedrelay_t *r = ctx;
    *out = NULL;
    dm_node__relay_query_t *q = calloc(1, sizeof *q);
    if (!q)
        return DM_ERR_NOMEM;
    q->relay = r;
    q->caller = *caller;
    q->sql = strdup(sql ? sql : "");
    q->grant_len = grant ? grant_len : 0;
    q->grant = malloc(q->grant_len ? q->grant_len : 1);
    q->dir = r->dir(r->dir_ctx);
    if (!q->sql || !q->grant || !q->dir) {
        dm_node__fedrelay_free(r, &q->remote);
        return DM_ERR_NOMEM;
    }
    if (q->grant_len) {
        memcpy(q->grant, grant, q->grant_len);
        s_grant_check(q);
    }
    q->remote = (dm_query_remote_t){s_resolve, s_open, s_next, s_close, q};
    *out = &q->remote;
    return DM_OK;
}

/* Ends q's passed query (node_relay_pass.c) as s_close ends a scan. */
static void s_pass_end(dm_node__relay_query_t *q)
{
    s_close(q->pass);
    q->pass = NULL;
}

void dm_node__fedrelay_free(void *ctx, dm_query_remote_t *remote)
{
    (void)ctx;
    if (!remote)
        return;
    dm_node__relay_query_t *q = (dm_node__relay_query_t *)remote;
    s_pass_end(q);
    for (size_t i = 0; i < q->nsessions; i++) {
        dm_node__relay_session_t *s = &q->sessions[i];
        if (s->client && s->failed == DM_OK && !s->kept) { /* the owner ends it now */
            Dm__Envelope env;
            Dm__FedClose fc = DM__FED_CLOSE__INIT;
            fc.session.data = s->nonce;
            fc.session.len = DM_GRANT_NONCE_BYTES;
            dm_envelope_init(&env, 0, DM__ENVELOPE__BODY_FED_CLOSE, &fc);
            if (dm_rpc_client_send(s->client, &env, NULL, NULL) != DM_OK)
                s->broken = true;
        }
        if (s->client && !s->broken)
            s_cache_put(q->relay, s->address, &s->client);
        dm_rpc_client_destroy(&s->client);
        free(s->failure);
    }
    dm_node__remote_dir_unref(&q->dir);
    free(q->grant);
    free(q->sql);
    free(q);
}
