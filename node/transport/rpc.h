/* rpc.h: CurveZMQ transport for protobuf envelopes.
 *
 * The server side is a ROUTER socket with CURVE on, a ZAP handler thread
 * installed before it binds (so an unauthenticated handshake is refused,
 * never let through), a bounded message size and linger 0. The client side
 * is a DEALER socket that knows the server's key from its self-certifying
 * address, uses its identity's CURVE key (or a throwaway one), and never
 * waits longer than its timeout. One message frame carries one
 * dm.Envelope (proto/mesh.proto). */
#ifndef DM_RPC_H
#define DM_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "identity/identity.h"
#include "proto/mesh.pb-c.h"

#define DM_RPC_MAX_MSG_BYTES ((int64_t)16 << 20) /* ZMQ_MAXMSGSIZE on every socket */
#define DM_RPC_CLIENT_RCVHWM 8 /* replies a client socket queues at most */
#define DM_RPC_DEFAULT_TIMEOUT_MS 10000
#define DM_RPC_DEFAULT_ENDPOINT "tcp://127.0.0.1:7400"
#define DM_RPC_ZAP_DOMAIN "datamesh"

/* ---- envelopes ---- */

/* Packs env into a new zmq message. Returns DM_OK or DM_ERR_NOMEM. */
DM_NODISCARD dm_err dm_rpc_pack(const Dm__Envelope *env, void *zmq_msg);
/* Unpacks an envelope; NULL if the bytes are not a valid envelope (also
 * when its body case is set but the body message is missing, so a
 * handler may dereference env->BODY for the case it handles). Free
 * with dm__envelope__free_unpacked(env, NULL). */
Dm__Envelope *dm_rpc_unpack(const void *data, size_t len);

/* ---- server ---- */

typedef struct dm_rpc_server dm_rpc_server_t;

/* Starts the ZAP handler on ctx, then creates a CURVE ROUTER socket with
 * the given Curve25519 secret key (32 bytes, copied) and binds endpoint.
 * On error *out is NULL and one line is appended to why (may be NULL)
 * naming the endpoint or the step that failed; nothing is logged. */
DM_NODISCARD dm_err dm_rpc_server_new(void *ctx, const char *endpoint,
                                      const uint8_t curve_secret[DM_ID_CURVE_BYTES],
                                      dm_rpc_server_t **out, dm_buf_t *why);
/* Closes the socket and stops the ZAP handler. NULL-safe. */
void dm_rpc_server_destroy(dm_rpc_server_t **self_p);
/* The ROUTER socket, for polling. Borrowed. */
void *dm_rpc_server_socket(dm_rpc_server_t *self);
/* Sends env to the client whose routing id rid (a zmq_msg_t *) holds,
 * without waiting: a reply to a client that left or whose queue is full
 * is dropped (a debug line says so). rid is consumed when sent. */
void dm_rpc_server_send(dm_rpc_server_t *self, void *rid, const Dm__Envelope *env);
/* Sends an Error reply (envelope.h) to request id the same way. */
void dm_rpc_server_send_error(dm_rpc_server_t *self, void *rid, uint64_t id, dm_err code,
                              const char *text);
/* Who sent a request. The ZAP handler makes the client's CURVE key the
 * message's User-Id; a client built with dm_rpc_client_new_as also sends
 * its ed25519 key as the handshake metadata property DM_RPC_KEY_PROPERTY,
 * and the node believes it only when the CURVE key derived from it is the
 * key the handshake authenticated. */
#define DM_RPC_KEY_PROPERTY "X-Mesh-Key"
typedef struct {
    /* The caller's ed25519 identity when verified; otherwise its CURVE
     * transport key (shown, never trusted as an identity). */
    uint8_t key[DM_ID_PUBLIC_BYTES];
    bool verified;
    /* A federated scan (docs/protocol.md): a relaying node, authenticated
     * as relay, asks on behalf of key (verified by the grant of session,
     * the nonce of its open FedOpen). The owner decides on key, and only
     * for products the session may scan. */
    bool relayed;
    uint8_t relay[DM_ID_PUBLIC_BYTES];
    uint8_t session[16];
} dm_rpc_caller_t;

/* Fills *out from msg (a zmq_msg_t * received on the server socket, with
 * its metadata). A message without a User-Id gives a zero key, unverified.
 * Cannot fail. */
void dm_rpc_caller(void *msg, dm_rpc_caller_t *out);

/* "HEX" for a verified caller, "curve:HEX" otherwise (out holds at least
 * DM_RPC_CALLER_HEX_BYTES). */
#define DM_RPC_CALLER_HEX_BYTES (DM_ID_HEX_BYTES + 6)
void dm_rpc_caller_hex(const dm_rpc_caller_t *c, char out[DM_RPC_CALLER_HEX_BYTES]);

/* The endpoint actually bound (resolves a wildcard port). Borrowed. */
const char *dm_rpc_server_endpoint(dm_rpc_server_t *self);

/* ---- client ---- */

typedef struct dm_client dm_rpc_client_t;

/* Creates a client for a node address ("HEX@tcp://host:port") with a fresh
 * client key. Connecting is asynchronous: a dead node shows up as
 * DM_ERR_TIMEOUT on the first send or receive. timeout_ms bounds every
 * wait. On error one line naming the address is appended to why (may be
 * NULL). The calls below report the same way: each failure appends one
 * line naming the node, nothing is logged; the caller reports it. */
DM_NODISCARD dm_err dm_rpc_client_new(const char *address, int timeout_ms, dm_rpc_client_t **out,
                                      dm_buf_t *why);
/* The same with the CURVE keys of identity id (borrowed for the call), so
 * the node learns who calls (dm_rpc_caller). id NULL: a fresh throwaway
 * key, as dm_rpc_client_new. */
DM_NODISCARD dm_err dm_rpc_client_new_as(const char *address, int timeout_ms,
                                         const dm_identity_t *id, dm_rpc_client_t **out,
                                         dm_buf_t *why);
void dm_rpc_client_destroy(dm_rpc_client_t **self_p);

/* Sends req, assigning it the next request id (written to *id if not
 * NULL). Waits up to the timeout for the connection. */
DM_NODISCARD dm_err dm_rpc_client_send(dm_rpc_client_t *self, Dm__Envelope *req, uint64_t *id,
                                       dm_buf_t *why);
/* dm_rpc_client_send that never waits: DM_ERR_TIMEOUT at once when the
 * message cannot be queued now (no connection yet, or its queue full). */
DM_NODISCARD dm_err dm_rpc_client_send_now(dm_rpc_client_t *self, Dm__Envelope *req,
                                           uint64_t *id, dm_buf_t *why);
/* The client's ZeroMQ socket, to poll for replies (ZMQ_POLLIN) on the
 * thread that uses the client. Borrowed for the client's life. */
void *dm_rpc_client_socket(dm_rpc_client_t *self);
/* Receives the next reply (any id), waiting up to the timeout. *rep is the
 * caller's to free with dm__envelope__free_unpacked. */
DM_NODISCARD dm_err dm_rpc_client_recv(dm_rpc_client_t *self, Dm__Envelope **rep, dm_buf_t *why);
/* Sends req and waits for the reply with its id. A reply carrying an
 * Error is returned as DM_OK with *rep holding it: callers look at
 * (*rep)->body_case. */
DM_NODISCARD dm_err dm_rpc_client_call(dm_rpc_client_t *self, Dm__Envelope *req, Dm__Envelope **rep,
                                       dm_buf_t *why);

#endif
