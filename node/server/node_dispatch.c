/* node_dispatch.c: the node loop's side of the RPC socket: a request is
 * read, routed by its body field (writes to the write pipeline, queries to
 * the query pool, the rest answered here or in node_reads.c), and replies
 * from the pipeline and the query workers are relayed back to their
 * clients. */
#include <errno.h>
#include <string.h>

#include "base/log.h"
#include "base/version.h"
#include "server/node_priv.h"

static void s_handle_ping(dm_node_t *self, zmq_msg_t *rid, uint64_t id)
{
    Dm__Envelope env;
    Dm__Pong pong = DM__PONG__INIT;
    pong.domain = self->domain;
    pong.node_id.data = (uint8_t *)dm_identity_public(self->id);
    pong.node_id.len = DM_ID_PUBLIC_BYTES;
    pong.endpoint = self->endpoint;
    pong.uptime_ms = (uint64_t)(dm_clock_mono_ms() - self->started_ms);
    pong.software = "meshd " DM_VERSION;
    dm_envelope_init(&env, id, DM__ENVELOPE__BODY_PONG, &pong);
    dm_rpc_server_send(self->rpc, rid, &env);
}

/* Hands a write request to the write pipeline as it came (it unpacks it
 * there) with its caller (ingest.h's third frame), or answers "busy" when
 * the pipeline's queue is full. */
static void s_forward_write(dm_node_t *self, zmq_msg_t *rid, zmq_msg_t *payload,
                            const dm_rpc_caller_t *caller)
{
    zmq_msg_t rid_copy;
    zmq_msg_init(&rid_copy);
    zmq_msg_copy(&rid_copy, rid);
    if (zmq_msg_send(&rid_copy, self->inbox_push, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&rid_copy);
        Dm__Envelope *env = dm_rpc_unpack(zmq_msg_data(payload), zmq_msg_size(payload));
        dm_rpc_server_send_error(self->rpc, rid, env ? env->id : 0, DM_ERR_BUSY,
                            "the node is busy: its write queue is full; retry shortly");
        if (env)
            dm__envelope__free_unpacked(env, NULL);
        return;
    }
    zmq_msg_send(payload, self->inbox_push, ZMQ_SNDMORE);
    zmq_send(self->inbox_push, caller, sizeof *caller, 0);
}

/* Hands a query request (field) to the query pool, which answers, or says
 * at once why not ("busy" names the cap). A QueryReq naming a federated
 * session runs as the session's consumer (node_fed.c), or is refused. */
static void s_forward_query(dm_node_t *self, zmq_msg_t *rid, zmq_msg_t *payload, unsigned field,
                            const dm_rpc_caller_t *caller)
{
    Dm__Envelope *env = dm_rpc_unpack(zmq_msg_data(payload), zmq_msg_size(payload));
    if (!env) {
        dm_rpc_server_send_error(self->rpc, rid, 0, DM_ERR_PROTO, "malformed request envelope");
        return;
    }
    uint64_t id = env->id;
    if (env->body_case != field) {
        dm__envelope__free_unpacked(env, NULL);
        dm_rpc_server_send_error(self->rpc, rid, id, DM_ERR_PROTO, "malformed query request");
        return;
    }
    /* The pool answers, or says at once why not ("busy" names the cap). */
    dm_buf_t why = DM_BUF_INIT;
    dm_err qrc;
    if (field == DM__ENVELOPE__BODY_QUERY_REQ && env->query_req->session.len) {
        dm_rpc_caller_t as;
        qrc = dm_node__fed_caller(self, caller, env->query_req->session.data,
                                  env->query_req->session.len, &as, &why);
        if (qrc == DM_OK)
            qrc = dm_query_pool_forward_as(self->queries, rid, payload, &as, &env, &why);
    } else if (field == DM__ENVELOPE__BODY_QUERY_REQ &&
               dm_node__relayloop_try(self, rid, payload, &env, caller)) {
        qrc = DM_OK; /* the loop passes it to its owner itself (node_relay_loop.c) */
    } else {
        qrc = dm_query_pool_forward(self->queries, rid, payload, &env, &why);
    }
    if (qrc != DM_OK)
        dm_rpc_server_send_error(self->rpc, rid, id, qrc, why.data);
    dm_buf_free(&why);
    if (env)
        dm__envelope__free_unpacked(env, NULL);
}

/* Answers a request the loop serves itself (reads, membership, catalog,
 * access and governance), judged on caller. */
static void s_answer(dm_node_t *self, zmq_msg_t *rid, zmq_msg_t *payload,
                     const dm_rpc_caller_t *caller)
{
    Dm__Envelope *env = dm_rpc_unpack(zmq_msg_data(payload), zmq_msg_size(payload));
    if (!env) {
        dm_log_warn("dropped a malformed request (%zu bytes)", zmq_msg_size(payload));
        dm_rpc_server_send_error(self->rpc, rid, 0, DM_ERR_PROTO, "malformed request envelope");
        return;
    }
    switch (env->body_case) {
    case DM__ENVELOPE__BODY_PING:
        s_handle_ping(self, rid, env->id);
        break;
    case DM__ENVELOPE__BODY_PRODUCTS_REQ:
        if (env->products_req->mesh)
            dm_node__handle_mesh_products(self, rid, env->id, caller);
        else
            dm_node__handle_products(self, rid, env->id, caller);
        break;
    case DM__ENVELOPE__BODY_QUARANTINE_REQ:
        dm_node__handle_quarantine(self, rid, env->id, env->quarantine_req, caller);
        break;
    case DM__ENVELOPE__BODY_DESCRIBE_REQ:
        dm_node__handle_describe(self, rid, env->id, env->describe_req, caller);
        break;
    case DM__ENVELOPE__BODY_QUALITY_REQ:
        dm_node__handle_quality(self, rid, env->id, env->quality_req, caller);
        break;
    case DM__ENVELOPE__BODY_ADMINS_REQ:
        dm_node__handle_admins(self, rid, env->id, env->admins_req, caller);
        break;
    case DM__ENVELOPE__BODY_GRANT_REQ:
        dm_node__handle_grant(self, rid, env->id, env->grant_req, caller);
        break;
    case DM__ENVELOPE__BODY_POLICY_PUBLISH_REQ:
        dm_node__handle_policy_publish(self, rid, env->id, env->policy_publish_req, caller);
        break;
    case DM__ENVELOPE__BODY_POLICY_GET_REQ:
        dm_node__handle_policy_get(self, rid, env->id);
        break;
    case DM__ENVELOPE__BODY_AUDIT_REQ:
        dm_node__handle_audit(self, rid, env->id, env->audit_req, caller);
        break;
    case DM__ENVELOPE__BODY_WHOAMI_REQ:
        dm_node__handle_whoami(self, rid, env->id, caller);
        break;
    case DM__ENVELOPE__BODY_FED_OPEN:
        dm_node__handle_fed_open(self, rid, env->id, env->fed_open, caller);
        break;
    case DM__ENVELOPE__BODY_FED_CLOSE:
        dm_node__handle_fed_close(self, rid, env->id, env->fed_close, caller);
        break;
    case DM__ENVELOPE__BODY_MEMBERS_REQ:
        dm_node__handle_members(self, rid, env->id);
        break;
    case DM__ENVELOPE__BODY_LINEAGE_REQ:
        dm_node__handle_lineage(self, rid, env->id, env->lineage_req, caller);
        break;
    case DM__ENVELOPE__BODY_SEARCH_REQ:
        dm_node__handle_search(self, rid, env->id, env->search_req, caller);
        break;
    case DM__ENVELOPE__BODY_CATALOG_SYNC:
        dm_gossip_catalog_receive(self->gossip, env->catalog_sync,
                                  zmq_msg_gets(payload, "User-Id"), dm_clock_mono_ms());
        break;
    case DM__ENVELOPE__BODY_SWIM:
        /* One-way: the answer (an ACK) travels on this node's own socket. */
        dm_gossip_receive(self->gossip, env->swim.data, env->swim.len,
                          zmq_msg_gets(payload, "User-Id"), dm_clock_mono_ms());
        break;
    default:
        dm_rpc_server_send_error(self->rpc, rid, env->id, DM_ERR_PROTO, "unsupported request");
        break;
    }
    dm__envelope__free_unpacked(env, NULL);
}

void dm_node__handle_request(dm_node_t *self, void *router)
{
    zmq_msg_t rid, payload;
    zmq_msg_init(&rid);
    zmq_msg_init(&payload);
    if (zmq_msg_recv(&rid, router, ZMQ_DONTWAIT) < 0)
        goto out;
    if (!zmq_msg_more(&rid) || zmq_msg_recv(&payload, router, 0) < 0)
        goto out;
    if (zmq_msg_more(&payload)) {
        /* Our clients send one frame; drain and drop anything else. */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        while (zmq_msg_more(&payload) && zmq_msg_recv(&extra, router, 0) >= 0)
            zmq_msg_move(&payload, &extra);
        zmq_msg_close(&extra);
        dm_log_warn("dropped a multi-frame request");
        dm_rpc_server_send_error(self->rpc, &rid, 0, DM_ERR_PROTO,
                            "a request is one frame holding one envelope");
        goto out;
    }
    unsigned field = dm_envelope_body_field(zmq_msg_data(&payload), zmq_msg_size(&payload));
    /* Who asks: the CURVE key the handshake authenticated, and the ed25519
     * identity it was derived from when the client proved it. */
    dm_rpc_caller_t caller;
    dm_rpc_caller(&payload, &caller);
    if (field == DM__ENVELOPE__BODY_INGEST_REQ || field == DM__ENVELOPE__BODY_REGISTER_REQ ||
        field == DM__ENVELOPE__BODY_DEREGISTER_REQ) {
        /* Refused here, before any work, when the caller may not write. */
        if (dm_node__write_allowed(self, &rid, &payload, field, &caller))
            s_forward_write(self, &rid, &payload, &caller);
    } else if (field == DM__ENVELOPE__BODY_QUERY_REQ || field == DM__ENVELOPE__BODY_QUERY_NEXT ||
               field == DM__ENVELOPE__BODY_QUERY_CLOSE) {
        s_forward_query(self, &rid, &payload, field, &caller);
    } else {
        s_answer(self, &rid, &payload, &caller);
    }
out:
    zmq_msg_close(&rid);
    zmq_msg_close(&payload);
}

dm_node__relay_t dm_node__relay_one(dm_node_t *self)
{
    zmq_msg_t rid, payload;
    zmq_msg_init(&rid);
    zmq_msg_init(&payload);
    dm_node__relay_t ret = DM_NODE_RELAY_DONE;
    if (zmq_msg_recv(&rid, self->outbox_pull, ZMQ_DONTWAIT) < 0) {
        ret = DM_NODE_RELAY_EMPTY;
        goto out;
    }
    if (!zmq_msg_more(&rid)) {
        /* A notice from the write pipeline (transport/ctl.h). */
        const void *name = zmq_msg_data(&rid);
        size_t len = zmq_msg_size(&rid);
        if (dm_ctl_is(name, len, DM_CTL_CATALOG)) {
            ret = DM_NODE_RELAY_CATALOG;
        } else if (dm_ctl_is(name, len, DM_CTL_STOPPED)) {
            ret = DM_NODE_RELAY_STOPPED;
        } else {
            dm_log_warn("an unknown control message on the outbox was dropped");
        }
        goto out;
    }
    zmq_msg_recv(&payload, self->outbox_pull, 0);
    void *router = dm_rpc_server_socket(self->rpc);
    if (zmq_msg_send(&rid, router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_msg_send(&payload, router, ZMQ_DONTWAIT) < 0)
        dm_log_debug("reply dropped: %s", zmq_strerror(errno));
out:
    zmq_msg_close(&rid);
    zmq_msg_close(&payload);
    return ret;
}
