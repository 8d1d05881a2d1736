/* ctl.h: the control messages threads of one node send each other over
 * inproc sockets, and the node-wide outbox they meet at (each module's own
 * inproc endpoints stay with it: the ingest inbox in ingest.h, the ZAP
 * control pair in rpc.c). Every notice is one frame whose bytes are
 * exactly one of these names; a receiver matches with dm_ctl_is, never by
 * length or by "anything else", so adding a notice cannot be mistaken for
 * an existing one.
 *
 * Who sends what:
 *   DM_CTL_STOP     node loop -> ingest validator (then writer, in order);
 *                   rpc server -> its ZAP handler thread
 *   DM_CTL_STOPPED  ingest writer -> node loop, on DM_CTL_OUTBOX, last
 *   DM_CTL_CATALOG  ingest writer -> node loop, on DM_CTL_OUTBOX, after a
 *                   product was registered, upgraded or deregistered
 * Replies to clients travel on DM_CTL_OUTBOX as two frames
 * [routing id][envelope], from the writer and from the query workers. */
#ifndef DM_CTL_H
#define DM_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Where the node loop pulls every reply and notice from (it binds). */
#define DM_CTL_OUTBOX "inproc://dm-node-outbox"

#define DM_CTL_STOP "STOP"
#define DM_CTL_STOPPED "STOPPED"
#define DM_CTL_CATALOG "CATALOG"

/* True if the frame (data, len) is exactly the control message name. */
static inline bool dm_ctl_is(const void *data, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len == n && memcmp(data, name, n) == 0;
}

/* Sends the control message name as one frame on socket (a ZeroMQ socket);
 * returns zmq_send's result. */
#define dm_ctl_send(socket, name) zmq_send((socket), (name), strlen(name), 0)

#endif
