/* membership_wire.c: membership messages to and from protobuf
 * (proto/membership.proto, SwimMessage), and the size rule the piggyback
 * budget uses. The state machine itself never sees protobuf.
 *
 * An address "HEX(node_id)@tcp://host:port" travels as its endpoint only:
 * the id is in the same entry, so the 65 bytes would be said twice. */
#include <stdlib.h>
#include <string.h>

#include "proto/membership.pb-c.h"
#include "membership/membership_priv.h"
#include "base/varint.h"

static size_t s_string_field(size_t len) { return len ? 1 + dm_varint_len(len) + len : 0; }

/* What goes on the wire for an address belonging to id. */
static const char *s_wire_address(const uint8_t id[DM_ID_PUBLIC_BYTES], const char *address)
{
    const char *s = dm_membership__short_address(id, address);
    return s ? s : address;
}

static size_t s_update_body(const dm_swim_update_t *u)
{
    size_t n = 2 + DM_ID_PUBLIC_BYTES;
    n += s_string_field(strlen(s_wire_address(u->id, u->address)));
    n += s_string_field(strlen(u->domain));
    if (u->state != DM_MEMBER_ALIVE)
        n += 1 + dm_varint_len((uint64_t)u->state);
    if (u->incarnation)
        n += 1 + dm_varint_len(u->incarnation);
    if (u->has_from)
        n += 2 + DM_ID_PUBLIC_BYTES;
    return n;
}

size_t dm_membership__update_wire_size(const dm_swim_update_t *u)
{
    size_t body = s_update_body(u);
    return 1 + dm_varint_len(body) + body;
}

static void s_to_pb(const dm_swim_update_t *u, Dm__MemberUpdate *pb)
{
    dm__member_update__init(pb);
    pb->node_id.data = (uint8_t *)u->id;
    pb->node_id.len = DM_ID_PUBLIC_BYTES;
    pb->address = (char *)s_wire_address(u->id, u->address);
    pb->domain = (char *)u->domain;
    pb->state = (Dm__MemberState)u->state;
    pb->incarnation = u->incarnation;
    if (u->has_from) {
        pb->from.data = (uint8_t *)u->from;
        pb->from.len = DM_ID_PUBLIC_BYTES;
    }
}

static bool s_valid(const dm_swim_msg_t *msg)
{
    if (msg->type < DM_SWIM_PING || msg->type > DM_SWIM_SYNC ||
        msg->n_updates > DM_SWIM_MAX_UPDATES)
        return false;
    for (size_t i = 0; i <= msg->n_updates; i++) {
        const dm_swim_update_t *u = i ? &msg->updates[i - 1] : &msg->sender;
        if ((unsigned)u->state > DM_MEMBER_LEFT || !memchr(u->address, 0, DM_ADDRESS_MAX) ||
            !memchr(u->domain, 0, DM_SWIM_DOMAIN_MAX))
            return false;
    }
    return memchr(msg->target_address, 0, DM_ADDRESS_MAX) != NULL;
}

static bool s_has_target(dm_swim_type t) { return t == DM_SWIM_PING || t == DM_SWIM_PING_REQ; }

/* Fills pb (pointing into msg and ups) for packing. */
static void s_msg_to_pb(const dm_swim_msg_t *msg, Dm__SwimMessage *pb, Dm__MemberUpdate *sender,
                        Dm__MemberUpdate *ups, Dm__MemberUpdate **ptrs)
{
    dm__swim_message__init(pb);
    pb->kind = (Dm__SwimMessage__Kind)msg->type;
    pb->seq = msg->seq;
    s_to_pb(&msg->sender, sender);
    pb->sender = sender;
    if (s_has_target(msg->type)) {
        pb->target_id.data = (uint8_t *)msg->target_id;
        pb->target_id.len = DM_ID_PUBLIC_BYTES;
        pb->target_address = (char *)s_wire_address(msg->target_id, msg->target_address);
    }
    for (size_t i = 0; i < msg->n_updates; i++) {
        s_to_pb(&msg->updates[i], &ups[i]);
        ptrs[i] = &ups[i];
    }
    pb->n_updates = msg->n_updates;
    pb->updates = ptrs;
}

size_t dm_membership_encoded_size(const dm_swim_msg_t *msg)
{
    if (!s_valid(msg))
        return 0;
    Dm__SwimMessage pb;
    Dm__MemberUpdate sender, ups[DM_SWIM_MAX_UPDATES], *ptrs[DM_SWIM_MAX_UPDATES];
    s_msg_to_pb(msg, &pb, &sender, ups, ptrs);
    return dm__swim_message__get_packed_size(&pb);
}

dm_err dm_membership_encode(const dm_swim_msg_t *msg, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (!s_valid(msg))
        return DM_ERR_INVALID;
    Dm__SwimMessage pb;
    Dm__MemberUpdate sender, ups[DM_SWIM_MAX_UPDATES], *ptrs[DM_SWIM_MAX_UPDATES];
    s_msg_to_pb(msg, &pb, &sender, ups, ptrs);
    size_t len = dm__swim_message__get_packed_size(&pb);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return DM_ERR_NOMEM;
    dm__swim_message__pack(&pb, buf);
    *out = buf;
    *out_len = len;
    return DM_OK;
}

/* Restores a full address from its wire form; false if it cannot fit. */
static bool s_from_wire_address(const uint8_t id[DM_ID_PUBLIC_BYTES], const char *wire, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(wire), pos = 0;
    if (strchr(wire, '@') == NULL && strncmp(wire, "tcp://", 6) == 0) {
        if (2 * DM_ID_PUBLIC_BYTES + 1 + len >= DM_ADDRESS_MAX)
            return false;
        for (size_t i = 0; i < DM_ID_PUBLIC_BYTES; i++) {
            out[pos++] = hex[id[i] >> 4];
            out[pos++] = hex[id[i] & 15];
        }
        out[pos++] = '@';
    } else if (len >= DM_ADDRESS_MAX) {
        return false;
    }
    memcpy(out + pos, wire, len + 1);
    /* "HEX(id)@" alone would travel as "" and not come back: refuse it. */
    const char *endpoint = dm_membership__short_address(id, out);
    return !endpoint || *endpoint;
}

static bool s_from_pb(const Dm__MemberUpdate *pb, dm_swim_update_t *u)
{
    if (!pb || pb->node_id.len != DM_ID_PUBLIC_BYTES || (unsigned)pb->state > DM_MEMBER_LEFT ||
        (pb->from.len != 0 && pb->from.len != DM_ID_PUBLIC_BYTES) || !pb->address ||
        !pb->address[0] || !pb->domain || strlen(pb->domain) >= DM_SWIM_DOMAIN_MAX)
        return false;
    memcpy(u->id, pb->node_id.data, DM_ID_PUBLIC_BYTES);
    if (!s_from_wire_address(u->id, pb->address, u->address))
        return false;
    strcpy(u->domain, pb->domain);
    u->state = (dm_member_state)pb->state;
    u->incarnation = pb->incarnation;
    u->has_from = pb->from.len == DM_ID_PUBLIC_BYTES;
    if (u->has_from)
        memcpy(u->from, pb->from.data, DM_ID_PUBLIC_BYTES);
    return true;
}

dm_err dm_membership_decode(const uint8_t *data, size_t len, dm_swim_msg_t *msg)
{
    memset(msg, 0, sizeof *msg);
    if (len > DM_SWIM_MAX_WIRE_BYTES)
        return DM_ERR_TOOBIG;
    Dm__SwimMessage *pb = dm__swim_message__unpack(NULL, len, data);
    if (!pb)
        return DM_ERR_PROTO;
    dm_err rc = DM_ERR_PROTO;
    if (pb->kind < DM__SWIM_MESSAGE__KIND__PING || pb->kind > DM__SWIM_MESSAGE__KIND__SYNC ||
        pb->n_updates > DM_SWIM_MAX_UPDATES || !s_from_pb(pb->sender, &msg->sender) ||
        (msg->sender.state != DM_MEMBER_ALIVE && msg->sender.state != DM_MEMBER_LEFT))
        goto out;
    msg->type = (dm_swim_type)pb->kind;
    msg->seq = pb->seq;
    if (s_has_target(msg->type)) {
        if (pb->target_id.len != DM_ID_PUBLIC_BYTES)
            goto out;
        memcpy(msg->target_id, pb->target_id.data, DM_ID_PUBLIC_BYTES);
        if (pb->target_address && pb->target_address[0] &&
            !s_from_wire_address(msg->target_id, pb->target_address, msg->target_address))
            goto out;
        if (msg->type == DM_SWIM_PING_REQ && !msg->target_address[0])
            goto out;
    }
    for (size_t i = 0; i < pb->n_updates; i++)
        if (!s_from_pb(pb->updates[i], &msg->updates[i]))
            goto out;
    msg->n_updates = pb->n_updates;
    rc = DM_OK;
out:
    dm__swim_message__free_unpacked(pb, NULL);
    if (rc != DM_OK)
        memset(msg, 0, sizeof *msg);
    return rc;
}
