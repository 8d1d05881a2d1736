/* node_relay_pass.c: the relay passing a whole query through to one owner
 * (query_pool.h's pass-through; docs/architecture.md "Pass-through").
 *
 * When every product the consumer's SQL names is another node's, all of
 * one owner, the relay runs no SQLite: the worker sends the client's SQL
 * (the text the consumer's grant signs) as one QueryReq in the consumer's
 * session with that owner, a kept one when it covers every product (the
 * relay verifies the query's grant while the owner works, as for a scan),
 * else one the query's grant opens with FedOpen, sent just before. The
 * owner runs it as for a direct client of the consumer, reading only the
 * session's products (node_dispatch.c, node_fed.c), with its access
 * decision, masks, row filters, limits and sandbox; its replies go back
 * as they come, the pool renaming ids and cursors. Anything else, or
 * anything the relay would refuse (no or a bad grant, an uncertified, dead
 * or unaddressed owner, a name of a known domain that is no product the
 * relay knows), is left to the engine, which reads remote tables, refuses
 * and words the errors as before. Both sides audit as for a scan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "membership/membership.h"
#include "server/node_relay_priv.h"


/* The plan: the owner's products the SQL names, or why not to pass. */
typedef struct {
    dm_node__relay_query_t *q;
    const dm_node__remote_t *e[DM_NODE_RELAY_PASS_PRODUCTS_MAX];
    size_t n;
    bool no; /* not passed */
} s_plan;

/* Whether domain names a product this node serves or another node does. */
static bool s_known_domain(const dm_node__relay_query_t *q, const char *domain)
{
    return strcmp(domain, q->relay->domain) == 0 ||
           dm_node__remote_dir_has_domain(q->dir, domain);
}

/* One `domain . name` pair of the SQL (node_fed.c's reading). */
static bool s_plan_pair(void *arg, const char *domain, const char *name)
{
    s_plan *p = arg;
    dm_node__relay_query_t *q = p->q;
    if (strcasecmp(domain, "main") == 0 || strcasecmp(domain, "temp") == 0)
        return true; /* SQLite's own schemas are never domains */
    char qualified[DM_AUDIT_PRODUCT_MAX];
    int len = snprintf(qualified, sizeof qualified, "%s/%s", domain, name);
    const dm_product_ref_t *ref = NULL;
    if (q->relay->registry && len > 0 && (size_t)len < sizeof qualified &&
        dm_registry_acquire(q->relay->registry, qualified, (size_t)len, &ref) == DM_OK) {
        dm_registry_release(q->relay->registry, ref);
        p->no = true; /* one of this node's: the engine joins */
        return false;
    }
    const dm_node__remote_t *e = dm_node__remote_dir_find(q->dir, domain, name);
    if (!e) {
        /* An alias's column (o.id), unless the name looks like a product
         * the relay does not know: the engine says what it says of it. */
        p->no = s_known_domain(q, domain);
        return !p->no;
    }
    for (size_t i = 0; i < p->n; i++)
        if (p->e[i] == e)
            return true;
    if (p->n == DM_NODE_RELAY_PASS_PRODUCTS_MAX ||
        (p->n && memcmp(p->e[0]->owner, e->owner, DM_ID_PUBLIC_BYTES) != 0)) {
        p->no = true;
        return false;
    }
    p->e[p->n++] = e;
    return true;
}

/* Whether the relay would send a scan of e at all (node_relay.c's
 * s_refuse, without its audit: the engine's way refuses and audits). */
static bool s_sendable(const dm_node__relay_query_t *q, const dm_node__remote_t *e)
{
    return e->certified && q->grant_len && !q->grant_problem[0] &&
           q->grant_expires_ms + DM_GRANT_SKEW_MS >= dm_clock_wall_ms() &&
           e->state != DM_MEMBER_DEAD && e->state != DM_MEMBER_LEFT &&
           e->state != DM_MEMBER_UNKNOWN && e->address[0];
}

/* The scan that carries the passed query, named after its first product. */
static dm_query_rscan_t *s_scan_new(dm_node__relay_query_t *q, const dm_node__remote_t *e)
{
    dm_query_rscan_t *sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    sc->q = q;
    snprintf(sc->product, sizeof sc->product, "%s.%s", e->domain, e->name);
    char owner[24], when[DM_CLOCK_UTC_TEXT_MAX];
    dm_node_relay__short_hex(e->owner, owner);
    snprintf(sc->owner_hex, sizeof sc->owner_hex, "%s", owner);
    dm_clock_utc_text(e->since_ms, when);
    snprintf(sc->mesh_says, sizeof sc->mesh_says, "%s since %s",
             dm_node_relay__state_name(e->state), when);
    return sc;
}

/* Whether a kept session of the consumer's with the owner covers every
 * product of p (a fresh one is opened otherwise). */
static bool s_covered(const s_plan *p)
{
    dm_node__relay_query_t *q = p->q;
    int64_t until = dm_clock_wall_ms() + q->relay->time_limit_ms;
    uint8_t first[DM_GRANT_NONCE_BYTES], other[DM_GRANT_NONCE_BYTES];
    char product[2 * DM_CATALOG_NAME_MAX + 2];
    for (size_t i = 0; i < p->n; i++) {
        snprintf(product, sizeof product, "%s.%s", p->e[i]->domain, p->e[i]->name);
        if (!dm_node__fedsess_find(q->relay->sess, q->caller.key, p->e[i]->owner, product,
                                   until, i ? other : first) ||
            (i && memcmp(first, other, DM_GRANT_NONCE_BYTES) != 0))
            return false;
    }
    return true;
}

void dm_node_relay__pass_req(const dm_node__relay_query_t *q, const dm_query_rscan_t *sc,
                             const Dm__QueryReq *req, Dm__QueryReq *qr, Dm__Envelope *env)
{
    dm__query_req__init(qr);
    qr->sql = q->sql;
    qr->max_rows = req->max_rows;
    qr->session.data = sc->s->nonce;
    qr->session.len = DM_GRANT_NONCE_BYTES;
    dm_envelope_init(env, 0, DM__ENVELOPE__BODY_QUERY_REQ, qr);
}

/* Sends the client's query in the scan's session and waits for the
 * first reply (*rep, the caller's); on a reused session the grant is
 * verified meanwhile, and one the owner forgot is replaced by a session
 * the query's grant opens. */
static dm_err s_first(dm_query_rscan_t *sc, const s_plan *p, const Dm__QueryReq *req,
                      int64_t deadline, const atomic_bool *cancel, Dm__Envelope **rep,
                      dm_buf_t *why)
{
    dm_node__relay_query_t *q = sc->q;
    dm_err rc = DM_OK;
    for (bool fresh = !s_covered(p);; fresh = true) {
        if (!(sc->s = dm_node_relay__session_get(q, sc, p->e[0], fresh, deadline, &rc, why)))
            return rc;
        Dm__Envelope env;
        Dm__QueryReq qr;
        dm_node_relay__pass_req(q, sc, req, &qr, &env);
        uint64_t id;
        rc = dm_node_relay__send(sc, &env, &id, deadline, cancel, why);
        if (rc == DM_OK && sc->s->reused && !q->grant_verified)
            rc = dm_node_relay__grant_verify(sc, p->e[0], why);
        if (rc == DM_OK)
            rc = dm_node_relay__wait(sc, id, deadline, cancel, rep, why);
        if (rc != DM_OK || !sc->s->reused || !dm_node_relay__forgotten(*rep))
            return rc;
        dm_node__fedsess_drop(q->relay->sess, sc->s->owner, sc->s->nonce);
        sc->s->stale = true;
        dm__envelope__free_unpacked(*rep, NULL);
        *rep = NULL;
    }
}

/* Reads the owner's reply into the pass's counts: a QueryRep's cursor,
 * end, rows and bytes (and, at the end when asked, the explain line); an
 * Error's text named as a scan's would be. DM_ERR_PROTO for anything else. */
static dm_err s_take(dm_query_rscan_t *sc, Dm__Envelope *rep, dm_buf_t *why)
{
    dm_node__relay_query_t *q = sc->q;
    if (rep->body_case == DM__ENVELOPE__BODY_ERROR) {
        dm_buf_t line = DM_BUF_INIT;
        dm_buf_printf(&line, "%s on owner node %s: %.1000s", sc->product, sc->owner_hex,
                      rep->error->message ? rep->error->message : "");
        if (!line.data)
            return DM_ERR_NOMEM;
        if (rep->error->message != protobuf_c_empty_string)
            free(rep->error->message);
        rep->error->message = line.data; /* freed with rep */
        sc->done = true;
        return DM_OK;
    }
    Dm__QueryRep *r = dm_node_relay__query_rep(sc, rep, why);
    if (!r)
        return DM_ERR_PROTO;
    q->pass_trips++;
    q->pass_rows += r->nrows;
    q->pass_bytes += r->rows.len;
    if (r->done && q->pass_explain) {
        char hex[DM_ID_HEX_BYTES];
        dm_identity_key_hex(sc->s->owner, hex);
        dm_buf_t line = DM_BUF_INIT;
        dm_buf_printf(&line, "%s: passed through to owner node %s (the whole SQL ran there, no "
                      "SQLite here%s); %u round trip%s, %llu rows, %llu bytes\n", q->pass_names,
                      hex, q->cache_only ? "; sent on by the relay's node loop" : "",
                      q->pass_trips, q->pass_trips == 1 ? "" : "s",
                      (unsigned long long)q->pass_rows, (unsigned long long)q->pass_bytes);
        if (!line.data)
            return DM_ERR_NOMEM;
        if (r->explain != protobuf_c_empty_string)
            free(r->explain);
        r->explain = line.data; /* freed with rep */
    }
    return DM_OK;
}

/* Plans q's first request req into *p: q->pass set when the query
 * passes (DM_OK with q->pass NULL when the engine runs it). */
static dm_err s_plan_pass(dm_node__relay_query_t *q, const Dm__QueryReq *req, s_plan *p)
{
    *p = (s_plan){.q = q};
    if (!q->grant_len || q->grant_problem[0] || q->pass)
        return DM_OK;
    dm_node__sql_pairs(q->sql, strlen(q->sql), s_plan_pair, p);
    if (p->no || p->n == 0)
        return DM_OK;
    for (size_t i = 0; i < p->n; i++)
        if (!s_sendable(q, p->e[i]))
            return DM_OK;
    if (!(q->pass = s_scan_new(q, p->e[0])))
        return DM_ERR_NOMEM;
    q->pass_explain = req->explain;
    for (size_t i = 0, at = 0; i < p->n && at < sizeof q->pass_names; i++) {
        int w = snprintf(q->pass_names + at, sizeof q->pass_names - at, "%s%s.%s",
                         i ? ", " : "", p->e[i]->domain, p->e[i]->name);
        at += w > 0 ? (size_t)w : 0;
    }
    q->pass_n = p->n;
    memcpy(q->pass_e, p->e, p->n * sizeof *p->e);
    return DM_OK;
}

void dm_node_relay__pass_audit(dm_node__relay_query_t *q)
{
    for (size_t i = 0; i < q->pass_n; i++)
        dm_node_relay__audit_relayed(q, q->pass_e[i]);
}

dm_err dm_node_relay__pass_plan(dm_node__relay_query_t *q, const Dm__QueryReq *req,
                                bool *covered)
{
    s_plan p;
    dm_err rc = s_plan_pass(q, req, &p);
    *covered = rc == DM_OK && q->pass && s_covered(&p);
    return rc;
}

dm_err dm_node_relay__pass_take(dm_query_rscan_t *sc, Dm__Envelope *rep, dm_buf_t *why)
{
    return s_take(sc, rep, why);
}

/* The first request: plans, and sends when the query passes. */
static dm_err s_pass_first(dm_node__relay_query_t *q, const Dm__QueryReq *req,
                           int64_t deadline_ns, const atomic_bool *cancel, Dm__Envelope **rep,
                           dm_buf_t *why)
{
    s_plan p;
    dm_err rc = s_plan_pass(q, req, &p);
    if (rc != DM_OK || !q->pass)
        return rc;
    dm_node_relay__pass_audit(q);
    int64_t deadline = dm_node_relay__clip(deadline_ns);
    rc = s_first(q->pass, &p, req, deadline, cancel, rep, why);
    if (rc == DM_OK)
        rc = s_take(q->pass, *rep, why);
    return rc;
}

/* A pull of the passed query's next batch. */
static dm_err s_pass_next(dm_node__relay_query_t *q, int64_t deadline_ns,
                          const atomic_bool *cancel, Dm__Envelope **rep, dm_buf_t *why)
{
    dm_query_rscan_t *sc = q->pass;
    if (!sc || !sc->s || sc->done || !sc->cursor) {
        dm_buf_why(why, "the passed query has no more rows");
        return DM_ERR_NOTFOUND;
    }
    if (sc->s->failed != DM_OK) {
        dm_buf_why(why, "%s", sc->s->failure ? sc->s->failure : "the owner's session failed");
        return sc->s->failed;
    }
    int64_t deadline = dm_node_relay__clip(deadline_ns);
    Dm__Envelope env;
    Dm__QueryNext qn = DM__QUERY_NEXT__INIT;
    qn.cursor = sc->cursor;
    dm_envelope_init(&env, 0, DM__ENVELOPE__BODY_QUERY_NEXT, &qn);
    uint64_t id;
    dm_err rc = dm_node_relay__send(sc, &env, &id, deadline, cancel, why);
    if (rc == DM_OK)
        rc = dm_node_relay__wait(sc, id, deadline, cancel, rep, why);
    if (rc == DM_OK)
        rc = s_take(sc, *rep, why);
    return rc;
}

dm_err dm_node__fedrelay_pass(void *ctx, dm_query_remote_t *remote, const Dm__QueryReq *req,
                              int64_t deadline_ns, const atomic_bool *cancel, Dm__Envelope **rep,
                              dm_buf_t *why)
{
    (void)ctx;
    *rep = NULL;
    dm_node__relay_query_t *q = (dm_node__relay_query_t *)remote;
    dm_err rc = req ? s_pass_first(q, req, deadline_ns, cancel, rep, why)
                    : s_pass_next(q, deadline_ns, cancel, rep, why);
    if (rc != DM_OK && *rep) {
        dm__envelope__free_unpacked(*rep, NULL);
        *rep = NULL;
    }
    return rc;
}
