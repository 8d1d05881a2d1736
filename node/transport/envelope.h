/* envelope.h: the dm.Envelope (proto/mesh.proto) as requests and replies
 * are built and routed: one builder for any message body, one for the
 * SWIM bytes, the Error reply every
 * part of the node sends, and the peek at the body field the node loop
 * routes by. Packing into and out of ZeroMQ messages is in rpc.h. */
#ifndef DM_ENVELOPE_H
#define DM_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "proto/mesh.pb-c.h"

/* Makes *env a fresh envelope with request id id carrying body, a message
 * of the type body_case names (borrowed: it must outlive env). Every body
 * but the bytes of DM__ENVELOPE__BODY_SWIM; body_case must not be that. */
void dm_envelope_init(Dm__Envelope *env, uint64_t id, Dm__Envelope__BodyCase body_case,
                      void *body);
/* Makes *env a fresh envelope (request id 0) carrying the SWIM message of
 * len bytes at data (borrowed: it must outlive env). */
void dm_envelope_swim(Dm__Envelope *env, const uint8_t *data, size_t len);
/* Makes *env an Error reply to request id: e is filled with code and text
 * (borrowed: text must outlive env) and is env's body. */
void dm_envelope_error(Dm__Envelope *env, Dm__Error *e, uint64_t id, dm_err code,
                       const char *text);
/* The envelope's body field number, read from the wire format just far
 * enough (id first, then the body), so the node routes write requests
 * without unpacking their payload. 0 if the bytes do not look like an
 * envelope. Never reads past len. */
unsigned dm_envelope_body_field(const void *data, size_t len);

#endif
