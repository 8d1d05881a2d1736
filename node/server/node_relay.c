/* node_relay.c: the relaying node's side of federated SQL: the
 * dm_query_remote_t a query worker reads other nodes' products through
 * (query.h, "federated query"; docs/operations.md "Federated query").
 *
 * Per query (make .. free, all on the worker that runs it): the products
 * come from a snapshot of the directory (node_remote.c) taken at make.
 * The first scan of an owner gets a connection to it acting as this
 * node's identity (an idle one from the cache when there is one), sends
 * FedOpen{grant, consumer's SQL} and, without waiting, the scan's
 * QueryReq{sql, session = the grant's nonce}; the replies are read as they
 * come. Every wait is sliced into DM_NODE_RELAY_POLL_MS polls so the
 * cancel flag, the deadline, the owner's state in the newest directory
 * and DM_NODE_RELAY_WAIT_MS of silence end it while an owner is silent; a
 * reply whose id the scan does not wait for (a late answer of a closed or
 * abandoned request) is skipped. At free each session gets a FedClose and
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
#include "server/node_priv.h"
#include "transport/grant.h"

typedef struct {
    char address[DM_ADDRESS_MAX];
    dm_rpc_client_t *client;
    int64_t idle_since_ms;
} s_idle;

struct dm_node__fedrelay {
    const dm_identity_t *id;
    dm_node__fedrelay_dir_fn dir;
    void *dir_ctx;
    dm_node__fedrelay_audit_fn audit;
    void *audit_ctx;
    pthread_mutex_t lock;
    dm_node__rows_t *rows; /* the owners' record counts, for the planner */
    s_idle idle[DM_NODE_RELAY_IDLE_MAX];
    size_t nidle;
};

/* One owner reached by a query. */
typedef struct {
    uint8_t owner[DM_ID_PUBLIC_BYTES];
    char address[DM_ADDRESS_MAX];
    dm_rpc_client_t *client;
    uint64_t open_id;   /* the FedOpen's request id */
    bool open_pending;  /* its reply not read yet */
    bool broken;        /* the connection's state is unknown: never reused */
    dm_err failed;      /* the session failed: every later scan fails alike */
    char *failure;      /* its line */
    struct dm_query_rscan *scans; /* open scans, whose pulls ahead a wait may meet */
} s_session;

typedef struct {
    dm_query_remote_t remote; /* first: free gets it back */
    dm_node__fedrelay_t *relay;
    dm_rpc_caller_t caller;
    uint8_t *grant;
    size_t grant_len;
    char *sql;
    uint8_t nonce[DM_GRANT_NONCE_BYTES];
    char grant_problem[200]; /* "" when the grant looked usable */
    dm_node__remote_dir_t *dir;
    s_session sessions[DM_NODE_RELAY_OWNERS_MAX];
    size_t nsessions;
    /* Products whose relaying is audited already (entries of dir, which
     * stay put while the query holds it); past the table, every scan. */
    const dm_node__remote_t *audited[64];
    size_t naudited;
} s_query;

struct dm_query_rscan {
    s_query *q;
    s_session *s;
    char product[2 * DM_CATALOG_NAME_MAX + 2]; /* "domain.name" */
    char owner_hex[DM_ID_HEX_BYTES];
    char mesh_says[96]; /* "alive", "suspect since 12:01:03 UTC": for timeouts */
    uint64_t cursor;
    bool done;
    dm_buf_t first; /* the first batch, until next hands it over */
    uint32_t first_n;
    bool have_first;
    /* The next batch is asked for as soon as one arrives (the protocol
     * allows two pulls in flight), so the owner reads while the engine
     * works: ahead_id is that QueryNext, stash its reply when another
     * scan's wait on the same connection read it. */
    uint64_t ahead_id;
    Dm__Envelope *stash;
    struct dm_query_rscan *next_open; /* in s->scans */
};

/* ---- the cache of idle connections ---- */

static dm_rpc_client_t *s_cache_take(dm_node__fedrelay_t *r, const char *address)
{
    dm_rpc_client_t *c = NULL, *stale[DM_NODE_RELAY_IDLE_MAX];
    size_t nstale = 0;
    int64_t now = dm_clock_mono_ms();
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nidle;) {
        s_idle *x = &r->idle[i];
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
        s_idle *x = &r->idle[r->nidle++];
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
    if (!(r->rows = dm_node__rows_new()) || pthread_mutex_init(&r->lock, NULL) != 0) {
        dm_node__rows_destroy(&r->rows);
        free(r);
        return DM_ERR_NOMEM;
    }
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
    free(r);
    *self_p = NULL;
}

/* ---- naming the owner in errors ---- */

/* "3f2a9c1e0b7d..." : enough of the key to find the node in meshq members. */
static void s_short_hex(const uint8_t key[DM_ID_PUBLIC_BYTES], char out[24])
{
    char hex[DM_ID_HEX_BYTES];
    dm_identity_key_hex(key, hex);
    snprintf(out, 24, "%.16s...", hex);
}

static const char *s_state_name(int state)
{
    return state == DM_MEMBER_UNKNOWN ? "not a member this node knows"
                                      : dm_membership_state_name((dm_member_state)state);
}

static void s_audit(s_query *q, bool allowed, const dm_node__remote_t *e, const char *rule)
{
    if (q->relay->audit)
        q->relay->audit(q->relay->audit_ctx, &q->caller, allowed, e->domain, e->name, e->owner,
                        rule);
}

/* ---- the grant, as far as the relay can judge it ---- */

/* Reads the nonce and checks consumer, relay and expiry; the signature and
 * the SQL's hash are the owner's to check (it refuses what fails). Sets
 * q->grant_problem when the grant cannot be used. */
static void s_grant_check(s_query *q)
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
    else
        memcpy(q->nonce, g.nonce, DM_GRANT_NONCE_BYTES);
    dm_buf_free(&why);
}

/* ---- talking to an owner ---- */

/* ns left before deadline_ns, at most DM_NODE_RELAY_SCAN_MS. */
static int64_t s_clip(int64_t deadline_ns)
{
    int64_t cap = dm_clock_mono_ns() + (int64_t)DM_NODE_RELAY_SCAN_MS * 1000000;
    return deadline_ns < cap ? deadline_ns : cap;
}

static void s_session_fail(s_session *s, dm_err rc, const char *line)
{
    s->broken = true;
    if (s->failed == DM_OK) {
        s->failed = rc;
        free(s->failure);
        s->failure = strdup(line);
    }
}

/* DM_ERR_NET naming product, owner and state since when the newest
 * directory has sc's owner other than alive: a wait gives up at once.
 * DM_OK otherwise (also when the product moved: the deadlines bound it). */
static dm_err s_owner_gone(dm_query_rscan_t *sc, dm_buf_t *why)
{
    s_query *q = sc->q;
    dm_node__remote_dir_t *d = q->relay->dir ? q->relay->dir(q->relay->dir_ctx) : NULL;
    char domain[DM_CATALOG_NAME_MAX + 1];
    const char *dot = strchr(sc->product, '.');
    snprintf(domain, sizeof domain, "%.*s", dot ? (int)(dot - sc->product) : 0, sc->product);
    const dm_node__remote_t *e = d && dot ? dm_node__remote_dir_find(d, domain, dot + 1) : NULL;
    dm_err rc = DM_OK;
    if (e && memcmp(e->owner, sc->s->owner, DM_ID_PUBLIC_BYTES) == 0 &&
        e->state != DM_MEMBER_ALIVE) {
        char when[DM_CLOCK_UTC_TEXT_MAX], line[DM_BUF_WHY_MAX];
        dm_clock_utc_text(e->since_ms, when);
        bool since = e->state != DM_MEMBER_UNKNOWN;
        snprintf(line, sizeof line, "%s: owner node %s is %s%s%s; the relay stopped waiting for it",
                 sc->product, sc->owner_hex, s_state_name(e->state), since ? " since " : "",
                 since ? when : "");
        s_session_fail(sc->s, DM_ERR_NET, line);
        dm_buf_why(why, "%s", line);
        rc = DM_ERR_NET;
    }
    dm_node__remote_dir_unref(&d);
    return rc;
}

/* Sends env to the owner, retrying the connection wait (each try waits one
 * poll slice) until deadline_ns or cancel. */
static dm_err s_send(dm_query_rscan_t *sc, Dm__Envelope *env, uint64_t *id, int64_t deadline_ns,
                     const atomic_bool *cancel, dm_buf_t *why)
{
    int64_t cap = dm_clock_mono_ns() + (int64_t)DM_NODE_RELAY_WAIT_MS * 1000000;
    if (cap < deadline_ns)
        deadline_ns = cap;
    for (;;) {
        dm_buf_t scratch = DM_BUF_INIT;
        dm_err rc = dm_rpc_client_send(sc->s->client, env, id, &scratch);
        if (rc == DM_ERR_TIMEOUT && s_owner_gone(sc, why) != DM_OK) {
            dm_buf_free(&scratch);
            return DM_ERR_NET;
        }
        if (rc != DM_ERR_TIMEOUT || dm_clock_mono_ns() >= deadline_ns ||
            (cancel && atomic_load(cancel))) {
            if (rc == DM_ERR_TIMEOUT)
                dm_buf_why(why, "%s: no connection to owner node %s within the wait's deadline "
                                "(at most %d ms; the mesh has it %s: is its address reachable?)",
                           sc->product, sc->owner_hex, DM_NODE_RELAY_WAIT_MS, sc->mesh_says);
            else if (rc != DM_OK)
                dm_buf_why(why, "%s: cannot send to owner node %s: %s", sc->product,
                           sc->owner_hex, scratch.len ? scratch.data : dm_err_str(rc));
            dm_buf_free(&scratch);
            if (rc != DM_OK)
                sc->s->broken = true;
            return rc;
        }
        dm_buf_free(&scratch);
    }
}

/* Handles the FedOpen's reply. DM_OK when it opened the session. */
static dm_err s_open_reply(dm_query_rscan_t *sc, const Dm__Envelope *rep, dm_buf_t *why)
{
    s_session *s = sc->s;
    s->open_pending = false;
    char line[DM_BUF_WHY_MAX];
    if (rep->body_case == DM__ENVELOPE__BODY_FED_OPEN_REP)
        return DM_OK;
    if (rep->body_case == DM__ENVELOPE__BODY_ERROR) {
        dm_err code = rep->error->code > DM_OK && rep->error->code < DM_ERR__COUNT
                          ? (dm_err)rep->error->code
                          : DM_ERR_DENIED;
        snprintf(line, sizeof line, "%s: owner node %s refused the federated session: %.1000s",
                 sc->product, sc->owner_hex, rep->error->message ? rep->error->message : "");
        s_session_fail(s, code, line);
        s->broken = false; /* an orderly refusal: the connection is fine */
        dm_buf_why(why, "%s", line);
        return code;
    }
    snprintf(line, sizeof line, "%s: owner node %s answered FedOpen with message %d, not FedOpenRep",
             sc->product, sc->owner_hex, (int)rep->body_case);
    s_session_fail(s, DM_ERR_PROTO, line);
    dm_buf_why(why, "%s", line);
    return DM_ERR_PROTO;
}

/* Waits for the reply to request id (and the session's FedOpen reply when
 * pending), polling every DM_NODE_RELAY_POLL_MS for cancel and the
 * deadline. *rep is the caller's. */
static dm_err s_wait(dm_query_rscan_t *sc, uint64_t id, int64_t deadline_ns,
                     const atomic_bool *cancel, Dm__Envelope **rep, dm_buf_t *why)
{
    *rep = NULL;
    int64_t heard = dm_clock_mono_ns();
    for (;;) {
        if (cancel && atomic_load(cancel)) {
            sc->s->broken = true;
            dm_buf_why(why, "%s: the scan on owner node %s was cancelled", sc->product,
                       sc->owner_hex);
            return DM_ERR_TIMEOUT;
        }
        if (dm_clock_mono_ns() >= deadline_ns) {
            sc->s->broken = true;
            dm_buf_why(why, "%s: owner node %s sent no answer within the scan's deadline (the "
                            "mesh has it %s: it is overloaded, the scan is slow, or it stopped)",
                       sc->product, sc->owner_hex, sc->mesh_says);
            return DM_ERR_TIMEOUT;
        }
        if (dm_clock_mono_ns() - heard >= (int64_t)DM_NODE_RELAY_WAIT_MS * 1000000) {
            char line[DM_BUF_WHY_MAX];
            snprintf(line, sizeof line, "%s: owner node %s sent nothing for %d ms (the mesh has "
                     "it %s: it is wedged or overloaded)", sc->product, sc->owner_hex,
                     DM_NODE_RELAY_WAIT_MS, sc->mesh_says);
            s_session_fail(sc->s, DM_ERR_TIMEOUT, line);
            dm_buf_why(why, "%s", line);
            return DM_ERR_TIMEOUT;
        }
        Dm__Envelope *e = NULL;
        dm_buf_t scratch = DM_BUF_INIT;
        dm_err rc = dm_rpc_client_recv(sc->s->client, &e, &scratch);
        if (rc == DM_ERR_TIMEOUT) {
            dm_buf_free(&scratch);
            if (s_owner_gone(sc, why) != DM_OK)
                return DM_ERR_NET;
            continue;
        }
        heard = dm_clock_mono_ns();
        if (rc != DM_OK) {
            sc->s->broken = true;
            dm_buf_why(why, "%s: reading from owner node %s failed: %s", sc->product,
                       sc->owner_hex, scratch.len ? scratch.data : dm_err_str(rc));
            dm_buf_free(&scratch);
            return rc;
        }
        dm_buf_free(&scratch);
        if (sc->s->open_pending && e->id == sc->s->open_id) {
            rc = s_open_reply(sc, e, why);
            dm__envelope__free_unpacked(e, NULL);
            if (rc != DM_OK)
                return rc;
            continue;
        }
        if (e->id == id) {
            *rep = e;
            return DM_OK;
        }
        dm_query_rscan_t *o = sc->s->scans;
        while (o && !(o->ahead_id == e->id && !o->stash))
            o = o->next_open;
        if (o)
            o->stash = e; /* another scan's batch: it takes it on its next pull */
        else
            dm__envelope__free_unpacked(e, NULL); /* a late reply of an abandoned request */
    }
}

/* Reads a QueryRep (or the owner's Error) into the scan; rows appended to
 * out when not NULL, else kept as the first batch. */
static dm_err s_take_rep(dm_query_rscan_t *sc, Dm__Envelope *rep, dm_buf_t *out, uint32_t *nrows,
                         dm_buf_t *why)
{
    if (rep->body_case == DM__ENVELOPE__BODY_ERROR) {
        dm_err code = rep->error->code > DM_OK && rep->error->code < DM_ERR__COUNT
                          ? (dm_err)rep->error->code
                          : DM_ERR_DENIED;
        dm_buf_why(why, "%s on owner node %s: %.1000s", sc->product, sc->owner_hex,
                   rep->error->message ? rep->error->message : "");
        sc->done = true;
        return code;
    }
    if (rep->body_case != DM__ENVELOPE__BODY_QUERY_REP) {
        sc->s->broken = true;
        dm_buf_why(why, "%s: owner node %s answered with message %d, not QueryRep", sc->product,
                   sc->owner_hex, (int)rep->body_case);
        return DM_ERR_PROTO;
    }
    Dm__QueryRep *r = rep->query_rep;
    if (!sc->cursor)
        sc->cursor = r->cursor;
    sc->done = r->done;
    if (out) {
        dm_buf_append(out, r->rows.data, r->rows.len);
        *nrows = r->nrows;
    } else {
        dm_buf_append(&sc->first, r->rows.data, r->rows.len);
        sc->first_n = r->nrows;
        sc->have_first = true;
    }
    return DM_OK;
}

/* The query's session with e's owner, connected and its FedOpen sent
 * (the first time); NULL with the error in why. */
static s_session *s_session_get(s_query *q, dm_query_rscan_t *sc, const dm_node__remote_t *e,
                                int64_t deadline_ns, dm_err *rc, dm_buf_t *why)
{
    for (size_t i = 0; i < q->nsessions; i++)
        if (memcmp(q->sessions[i].owner, e->owner, DM_ID_PUBLIC_BYTES) == 0) {
            s_session *s = &q->sessions[i];
            if (s->failed != DM_OK) {
                *rc = s->failed;
                dm_buf_why(why, "%s", s->failure ? s->failure : "the owner's session failed");
                return NULL;
            }
            sc->s = s;
            return s;
        }
    if (q->nsessions == DM_NODE_RELAY_OWNERS_MAX) {
        *rc = DM_ERR_TOOBIG;
        dm_buf_why(why, "%s: the query reaches more than %d owner nodes; a federated query may "
                        "read the products of at most %d other nodes",
                   sc->product, DM_NODE_RELAY_OWNERS_MAX, DM_NODE_RELAY_OWNERS_MAX);
        return NULL;
    }
    s_session *s = &q->sessions[q->nsessions];
    memset(s, 0, sizeof *s);
    memcpy(s->owner, e->owner, DM_ID_PUBLIC_BYTES);
    snprintf(s->address, sizeof s->address, "%s", e->address);
    s->client = s_cache_take(q->relay, e->address);
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
    Dm__Envelope env;
    Dm__FedOpen fo = DM__FED_OPEN__INIT;
    fo.grant.data = q->grant;
    fo.grant.len = q->grant_len;
    fo.sql = q->sql;
    dm_envelope_init(&env, 0, DM__ENVELOPE__BODY_FED_OPEN, &fo);
    if ((*rc = s_send(sc, &env, &s->open_id, deadline_ns, NULL, why)) != DM_OK) {
        s_session_fail(s, *rc, why && why->len ? why->data : "the FedOpen could not be sent");
        return NULL;
    }
    s->open_pending = true;
    return s;
}

/* Audits once per product and query that the consumer's scan of it goes
 * to its owner. */
static void s_audit_relayed(s_query *q, const dm_node__remote_t *e)
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
static dm_err s_refuse(s_query *q, const dm_node__remote_t *e, const char *product,
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
    } else if (e->state == DM_MEMBER_DEAD || e->state == DM_MEMBER_LEFT ||
               e->state == DM_MEMBER_UNKNOWN) {
        rc = DM_ERR_NET;
        dm_clock_utc_text(e->since_ms, when);
        if (e->state == DM_MEMBER_UNKNOWN)
            snprintf(line, sizeof line, "%s: owner node %s is %s", product, owner,
                     s_state_name(e->state));
        else
            snprintf(line, sizeof line, "%s: owner node %s is %s since %s", product, owner,
                     s_state_name(e->state), when);
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
static uint64_t s_rows(s_query *q, const dm_node__remote_t *e)
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
    s_query *q = ctx;
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

static void s_scan_free(dm_query_rscan_t *sc)
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

static dm_err s_open(void *ctx, const char *domain, const char *product, const char *sql,
                     int64_t deadline_ns, const atomic_bool *cancel, dm_query_rscan_t **out,
                     dm_buf_t *why)
{
    s_query *q = ctx;
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
    s_short_hex(e->owner, owner);
    snprintf(sc->owner_hex, sizeof sc->owner_hex, "%s", owner);
    char when[DM_CLOCK_UTC_TEXT_MAX];
    dm_clock_utc_text(e->since_ms, when);
    snprintf(sc->mesh_says, sizeof sc->mesh_says, "%s since %s", s_state_name(e->state), when);
    dm_err rc = s_refuse(q, e, sc->product, owner, why);
    int64_t deadline = s_clip(deadline_ns);
    if (rc == DM_OK && !(sc->s = s_session_get(q, sc, e, deadline, &rc, why)))
        goto fail;
    if (rc != DM_OK)
        goto fail;
    s_audit_relayed(q, e);
    Dm__Envelope env, *rep = NULL;
    Dm__QueryReq req = DM__QUERY_REQ__INIT;
    req.sql = (char *)sql;
    req.max_rows = DM_NODE_RELAY_BATCH_ROWS;
    req.session.data = q->nonce;
    req.session.len = DM_GRANT_NONCE_BYTES;
    dm_envelope_init(&env, 0, DM__ENVELOPE__BODY_QUERY_REQ, &req);
    uint64_t id;
    if ((rc = s_send(sc, &env, &id, deadline, NULL, why)) != DM_OK ||
        (rc = s_wait(sc, id, deadline, cancel, &rep, why)) != DM_OK)
        goto fail;
    rc = s_take_rep(sc, rep, NULL, NULL, why);
    dm__envelope__free_unpacked(rep, NULL);
    if (rc != DM_OK)
        goto fail;
    sc->next_open = sc->s->scans;
    sc->s->scans = sc;
    s_pull_ahead(sc);
    *out = sc;
    return DM_OK;
fail:
    s_scan_free(sc);
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
    int64_t deadline = s_clip(deadline_ns);
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
    } else if ((!id && (rc = s_send(sc, &env, &id, deadline, cancel, why)) != DM_OK) ||
               (rc = s_wait(sc, id, deadline, cancel, &rep, why)) != DM_OK) {
        return rc;
    }
    rc = s_take_rep(sc, rep, out, nrows, why);
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
    s_scan_free(sc);
}

dm_err dm_node__fedrelay_make(void *ctx, const dm_rpc_caller_t *caller, const uint8_t *grant,
                              size_t grant_len, const char *sql, dm_query_remote_t **out,
                              dm_buf_t *why)
{
    (void)why;
    dm_node__fedrelay_t *r = ctx;
    *out = NULL;
    s_query *q = calloc(1, sizeof *q);
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

void dm_node__fedrelay_free(void *ctx, dm_query_remote_t *remote)
{
    (void)ctx;
    if (!remote)
        return;
    s_query *q = (s_query *)remote;
    for (size_t i = 0; i < q->nsessions; i++) {
        s_session *s = &q->sessions[i];
        if (s->client && s->failed == DM_OK) { /* the owner ends the session now */
            Dm__Envelope env;
            Dm__FedClose fc = DM__FED_CLOSE__INIT;
            fc.session.data = q->nonce;
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
