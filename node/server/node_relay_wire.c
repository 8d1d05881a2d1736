/* node_relay_wire.c: the relay talking to an owner on one connection
 * (node_relay.c's sessions): sends that wait for the connection, waits
 * sliced into DM_NODE_RELAY_POLL_MS polls that watch the cancel flag, the
 * deadline, the owner's state in the newest directory and
 * DM_NODE_RELAY_WAIT_MS of silence, and the owner's replies read into the
 * session and the scans. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membership/membership.h"
#include "server/node_relay_priv.h"

const char *dm_node_relay__state_name(int state)
{
    return state == DM_MEMBER_UNKNOWN ? "not a member this node knows"
                                      : dm_membership_state_name((dm_member_state)state);
}

/* ns left before deadline_ns, at most DM_NODE_RELAY_SCAN_MS. */
int64_t dm_node_relay__clip(int64_t deadline_ns)
{
    int64_t cap = dm_clock_mono_ns() + (int64_t)DM_NODE_RELAY_SCAN_MS * 1000000;
    return deadline_ns < cap ? deadline_ns : cap;
}

void dm_node_relay__fail(dm_node__relay_session_t *s, dm_err rc, const char *line)
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
dm_err dm_node_relay__owner_gone(dm_query_rscan_t *sc, dm_buf_t *why)
{
    dm_node__relay_query_t *q = sc->q;
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
                 sc->product, sc->owner_hex, dm_node_relay__state_name(e->state),
                 since ? " since " : "", since ? when : "");
        dm_node_relay__fail(sc->s, DM_ERR_NET, line);
        dm_buf_why(why, "%s", line);
        rc = DM_ERR_NET;
    }
    dm_node__remote_dir_unref(&d);
    return rc;
}

/* Sends env to the owner, retrying the connection wait (each try waits one
 * poll slice) until deadline_ns or cancel. */
dm_err dm_node_relay__send(dm_query_rscan_t *sc, Dm__Envelope *env, uint64_t *id,
                           int64_t deadline_ns, const atomic_bool *cancel, dm_buf_t *why)
{
    int64_t cap = dm_clock_mono_ns() + (int64_t)DM_NODE_RELAY_WAIT_MS * 1000000;
    if (cap < deadline_ns)
        deadline_ns = cap;
    for (;;) {
        dm_buf_t scratch = DM_BUF_INIT;
        dm_err rc = dm_rpc_client_send(sc->s->client, env, id, &scratch);
        if (rc == DM_ERR_TIMEOUT && dm_node_relay__owner_gone(sc, why) != DM_OK) {
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
    dm_node__relay_session_t *s = sc->s;
    s->open_pending = false;
    char line[DM_BUF_WHY_MAX];
    if (rep->body_case == DM__ENVELOPE__BODY_FED_OPEN_REP) {
        /* Kept for later queries when one could still use it. */
        const Dm__FedOpenRep *fo = rep->fed_open_rep;
        const dm_node__relay_query_t *q = sc->q;
        int64_t now = dm_clock_wall_ms();
        s->kept = q->grant_expires_ms >= now + q->relay->time_limit_ms &&
                  dm_node__fedsess_put(q->relay->sess, q->caller.key, s->owner, s->nonce,
                                       q->grant_expires_ms, fo->products, fo->n_products, now);
        return DM_OK;
    }
    if (rep->body_case == DM__ENVELOPE__BODY_ERROR) {
        dm_err code = rep->error->code > DM_OK && rep->error->code < DM_ERR__COUNT
                          ? (dm_err)rep->error->code
                          : DM_ERR_DENIED;
        snprintf(line, sizeof line, "%s: owner node %s refused the federated session: %.1000s",
                 sc->product, sc->owner_hex, rep->error->message ? rep->error->message : "");
        dm_node_relay__fail(s, code, line);
        s->broken = false; /* an orderly refusal: the connection is fine */
        dm_buf_why(why, "%s", line);
        return code;
    }
    snprintf(line, sizeof line,
             "%s: owner node %s answered FedOpen with message %d, not FedOpenRep", sc->product,
             sc->owner_hex, (int)rep->body_case);
    dm_node_relay__fail(s, DM_ERR_PROTO, line);
    dm_buf_why(why, "%s", line);
    return DM_ERR_PROTO;
}

dm_err dm_node_relay__silence(dm_query_rscan_t *sc, int64_t deadline_ns, int64_t heard_ns,
                              int64_t now, dm_buf_t *why)
{
    if (now >= deadline_ns) {
        sc->s->broken = true;
        dm_buf_why(why, "%s: owner node %s sent no answer within the scan's deadline (the "
                        "mesh has it %s: it is overloaded, the scan is slow, or it stopped)",
                   sc->product, sc->owner_hex, sc->mesh_says);
        return DM_ERR_TIMEOUT;
    }
    if (now - heard_ns < (int64_t)DM_NODE_RELAY_WAIT_MS * 1000000)
        return DM_OK;
    char line[DM_BUF_WHY_MAX];
    snprintf(line, sizeof line, "%s: owner node %s sent nothing for %d ms (the mesh has it %s: "
             "it is wedged or overloaded)", sc->product, sc->owner_hex, DM_NODE_RELAY_WAIT_MS,
             sc->mesh_says);
    dm_node_relay__fail(sc->s, DM_ERR_TIMEOUT, line);
    dm_buf_why(why, "%s", line);
    return DM_ERR_TIMEOUT;
}

void dm_node_relay__read_failed(dm_query_rscan_t *sc, dm_err rc, const dm_buf_t *detail,
                                dm_buf_t *why)
{
    sc->s->broken = true;
    dm_buf_why(why, "%s: reading from owner node %s failed: %s", sc->product, sc->owner_hex,
               detail->len ? detail->data : dm_err_str(rc));
}

/* Waits for the reply to request id (and the session's FedOpen reply when
 * pending), polling every DM_NODE_RELAY_POLL_MS for cancel and the
 * deadline. *rep is the caller's. */
dm_err dm_node_relay__wait(dm_query_rscan_t *sc, uint64_t id, int64_t deadline_ns,
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
        dm_err late = dm_node_relay__silence(sc, deadline_ns, heard, dm_clock_mono_ns(), why);
        if (late != DM_OK)
            return late;
        Dm__Envelope *e = NULL;
        dm_buf_t scratch = DM_BUF_INIT;
        dm_err rc = dm_rpc_client_recv(sc->s->client, &e, &scratch);
        if (rc == DM_ERR_TIMEOUT) {
            dm_buf_free(&scratch);
            if (dm_node_relay__owner_gone(sc, why) != DM_OK)
                return DM_ERR_NET;
            continue;
        }
        heard = dm_clock_mono_ns();
        if (rc != DM_OK) {
            dm_node_relay__read_failed(sc, rc, &scratch, why);
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

Dm__QueryRep *dm_node_relay__query_rep(dm_query_rscan_t *sc, Dm__Envelope *rep, dm_buf_t *why)
{
    if (rep->body_case != DM__ENVELOPE__BODY_QUERY_REP) {
        sc->s->broken = true;
        dm_buf_why(why, "%s: owner node %s answered with message %d, not QueryRep", sc->product,
                   sc->owner_hex, (int)rep->body_case);
        return NULL;
    }
    Dm__QueryRep *r = rep->query_rep;
    if (!sc->cursor)
        sc->cursor = r->cursor;
    sc->done = r->done;
    return r;
}

/* Reads a QueryRep (or the owner's Error) into the scan; rows appended to
 * out when not NULL, else kept as the first batch. */
dm_err dm_node_relay__take(dm_query_rscan_t *sc, Dm__Envelope *rep, dm_buf_t *out, uint32_t *nrows,
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
    Dm__QueryRep *r = dm_node_relay__query_rep(sc, rep, why);
    if (!r)
        return DM_ERR_PROTO;
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
