/* node_relay_start.c: installs the relay's side of federated SQL on a
 * node: the directory of other nodes' products (node_remote.c) and the
 * relay (node_relay.c) on the query pool, with the node's identity, its
 * directory and its audit. node.c calls it at start and at shutdown. */
#include "server/node_priv.h"

static dm_node__remote_dir_t *s_node_dir(void *ctx) { return dm_node__remote_get(ctx); }

static void s_node_audit(void *ctx, const dm_rpc_caller_t *caller, bool allowed,
                         const char *domain, const char *name,
                         const uint8_t owner[DM_ID_PUBLIC_BYTES], const char *rule)
{
    if (allowed)
        dm_node__audit_relay(ctx, caller, domain, name, owner);
    else
        dm_node__audit(ctx, caller, false, "relay", domain, name, rule, 0);
}

dm_err dm_node__fed_start(dm_node_t *self, dm_buf_t *why)
{
    dm_err rc = dm_node__remote_open(self);
    if (rc == DM_OK)
        rc = dm_node__fedrelay_new(self->id, s_node_dir, self, s_node_audit, self, &self->relay);
    if (rc != DM_OK) {
        dm_buf_why(why, "cannot set up federated queries: %s", dm_err_str(rc));
        return rc;
    }
    dm_node__fedrelay_set_time_limit(self->relay, self->query_timeout_ms);
    dm_node__fedrelay_set_local(self->relay, self->registry, self->domain);
    dm_query_pool_set_remote(self->queries, dm_node__fedrelay_make, dm_node__fedrelay_free,
                             self->relay);
    dm_query_pool_set_pass(self->queries, dm_node__fedrelay_pass, self->relay);
    return DM_OK;
}

void dm_node__fed_stop(dm_node_t *self)
{
    dm_node__fedrelay_destroy(&self->relay);
    dm_node__remote_close(self);
}
