/* node_fed_admit.c: who may open a federated session on this node
 * (docs/protocol.md "Federated query", docs/security.md). A FedOpen is
 * accepted only from a relay this node's membership sees alive and, when
 * the catalog has a governance key, whose domain (from its node record)
 * is certified to it. Anyone else who proved an ed25519 key could
 * otherwise sign its own grants and fill the session and replay tables.
 * Called by node_fed.c on the loop, which owns the gossip and catalog. */
#include <string.h>

#include "server/node_priv.h"

typedef struct {
    const uint8_t *key;
    char domain[DM_CATALOG_NAME_MAX + 1];
    bool found;
} s_record_t;

static int s_find_record(void *ctx, const dm_catalog_node_t *n)
{
    s_record_t *r = ctx;
    if (memcmp(n->origin, r->key, DM_ID_PUBLIC_BYTES) != 0)
        return 0;
    r->found = n->domain != NULL;
    if (r->found)
        snprintf(r->domain, sizeof r->domain, "%s", n->domain);
    return 1;
}

dm_err dm_node__fed_admit_relay(dm_node_t *self, const uint8_t key[DM_ID_PUBLIC_BYTES],
                                dm_buf_t *why)
{
    char hex[DM_ID_HEX_BYTES];
    dm_identity_key_hex(key, hex);
    dm_member_state st = DM_MEMBER_UNKNOWN;
    if (self->gossip)
        st = dm_membership_state_of(dm_gossip_membership(self->gossip), key);
    if (st != DM_MEMBER_ALIVE) {
        dm_buf_why(why, "federated session refused: relay %.16s... is %s to this node; only a "
                   "mesh member this node sees alive may relay (join it with --join)",
                   hex, st == DM_MEMBER_UNKNOWN ? "not a member" : dm_membership_state_name(st));
        return DM_ERR_DENIED;
    }
    uint8_t gov[DM_ID_PUBLIC_BYTES];
    if (!self->catalog || !dm_catalog_governance(self->catalog, gov, NULL))
        return DM_OK;
    s_record_t r = {.key = key, .found = false};
    dm_catalog_nodes(self->catalog, s_find_record, &r);
    if (!r.found) {
        dm_buf_why(why, "federated session refused: relay %.16s... has no node record in this "
                   "node's catalog, so its domain cannot be checked against governance's "
                   "certificates (wait for gossip, or publish its node record)", hex);
        return DM_ERR_DENIED;
    }
    if (!dm_catalog_certified(self->catalog, r.domain, key)) {
        dm_buf_why(why, "federated session refused: relay %.16s... serves domain %s, which is "
                   "not certified to it; under governance only a certified domain's node may "
                   "relay (publish a DomainCertificate for %s naming it)", hex, r.domain,
                   r.domain);
        return DM_ERR_DENIED;
    }
    return DM_OK;
}
