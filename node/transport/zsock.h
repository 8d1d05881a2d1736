/* zsock.h: the one place a ZeroMQ socket of the node or of the tools is
 * made and its options set.
 *
 * Every socket gets linger 0 (closing never waits for unsent messages: a
 * stopped node or tool must not hang on a dead peer). The other options
 * are those the caller asks for in dm_zsock_opts_t; a zero field leaves
 * libzmq's default. Binding and connecting stay with the caller, which
 * knows what the endpoint is for. */
#ifndef DM_ZSOCK_H
#define DM_ZSOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "identity/identity.h"

#define DM_ZSOCK_KEY_BYTES DM_ID_CURVE_BYTES /* a Curve25519 key */

typedef struct {
    int sndhwm;               /* ZMQ_SNDHWM, messages; 0: default */
    int rcvhwm;               /* ZMQ_RCVHWM, messages; 0: default */
    bool sndtimeo;            /* set ZMQ_SNDTIMEO to sndtimeo_ms (0 allowed) */
    int sndtimeo_ms;
    int64_t maxmsgsize;       /* ZMQ_MAXMSGSIZE, bytes; 0: unbounded */
    int reconnect_ivl_max_ms; /* ZMQ_RECONNECT_IVL_MAX; 0: default */
    bool immediate;           /* ZMQ_IMMEDIATE: queue only on completed connections */
    bool router_mandatory;    /* ZMQ_ROUTER_MANDATORY: unroutable sends fail */
    /* CURVE server: its secret key (borrowed, copied by libzmq) and the
     * ZAP domain its handshakes are authenticated in. */
    const uint8_t *curve_server_secret;
    const char *zap_domain;
    /* CURVE client: the server's public key and this side's key pair. */
    const uint8_t *curve_server_key;
    const uint8_t *curve_public;
    const uint8_t *curve_secret;
} dm_zsock_opts_t;

/* Creates a socket of type (ZMQ_DEALER, ...) on ctx with linger 0 and the
 * options in opts (NULL: none more). Returns the socket (close it with
 * zmq_close), or NULL with errno kept from the failing call and one line
 * appended to why (if not NULL). */
void *dm_zsock_new(void *ctx, int type, const dm_zsock_opts_t *opts, dm_buf_t *why);

#endif
