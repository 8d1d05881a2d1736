/* meshq_grant.c: the lifetime of meshq's query grants: long enough to
 * outlive the query at the node (its time limit, which WhoamiRep reports),
 * no longer than needed (each nonce stays in the owners' replay tables
 * until the grant's expiry). */
#include <stdio.h>
#include <stdlib.h>

#include "meshq_grant.h"
#include "proto/mesh.pb-c.h"
#include "transport/envelope.h"
#include "transport/grant.h"

/* The node's query time limit from its WhoamiRep on client; 0 when it
 * does not say (an older node, an odd value); -1 after printing why the
 * node could not be asked (the query would fail alike: no second wait). */
static int64_t s_node_limit_ms(dm_rpc_client_t *client)
{
    Dm__Envelope req = DM__ENVELOPE__INIT, *rep = NULL;
    Dm__WhoamiReq body = DM__WHOAMI_REQ__INIT;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_WHOAMI_REQ, &body);
    int64_t ms = 0;
    dm_buf_t why = DM_BUF_INIT;
    if (dm_rpc_client_call(client, &req, &rep, &why) != DM_OK) {
        fprintf(stderr, "meshq: %s\n", why.len ? why.data : "the node did not answer");
        ms = -1;
    } else if (rep && rep->body_case == DM__ENVELOPE__BODY_WHOAMI_REP &&
               rep->whoami_rep->query_timeout_ms <= (uint64_t)DM_GRANT_MAX_LIFETIME_MS) {
        ms = (int64_t)rep->whoami_rep->query_timeout_ms;
    }
    dm_buf_free(&why);
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    return ms;
}

/* How long the query's grant lives (docs/protocol.md "Federated query"):
 * --grant-life SECS when given (1..600), else max(60 s, --timeout, the
 * node's query time limit + DM_MESHQ_GRANT_MARGIN_MS), at most
 * DM_GRANT_MAX_LIFETIME_MS, so a grant outlives any query the node runs.
 * -1 after printing a bad value or why the node could not be asked. */
int64_t dm_meshq_grant_life(const dm_cli_args_t *a, dm_rpc_client_t *client)
{
    if (dm_cli_get(a, "grant-life")) {
        uint64_t secs;
        if (dm_cli_uint_opt(a, "grant-life", "whole seconds (a grant's life)", 1,
                            DM_GRANT_MAX_LIFETIME_MS / 1000, 0, &secs) != 0)
            return -1;
        return (int64_t)secs * 1000;
    }
    int64_t life = dm_cli_timeout_ms(a);
    life = life > DM_GRANT_DEFAULT_LIFETIME_MS ? life : DM_GRANT_DEFAULT_LIFETIME_MS;
    int64_t node = s_node_limit_ms(client);
    if (node < 0)
        return -1;
    if (node > 0 && node + DM_MESHQ_GRANT_MARGIN_MS > life)
        life = node + DM_MESHQ_GRANT_MARGIN_MS;
    return life < DM_GRANT_MAX_LIFETIME_MS ? life : DM_GRANT_MAX_LIFETIME_MS;
}

