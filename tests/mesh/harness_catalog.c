/* harness_catalog.c: see harness_catalog.h. */
#include "harness_catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "contract/contract.h"
#include "identity/identity.h"
#include "proto/mesh.pb-c.h"
#include "transport/envelope.h"
#include "transport/rpc.h"

#define DM_H_CLIENT_MS 2000 /* client calls to a node */

const char *dm_h_contract_text(const char *domain, const char *name, const char *version)
{
    static char text[1024];
    snprintf(text, sizeof text,
             "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: %s\n"
             "  domain: %s\n  version: %s\n  owner:\n    team: t\n    contact: t@example.com\n"
             "spec:\n  schema:\n    fields:\n      - {name: id, type: int, required: true}\n",
             name, domain, version);
    return text;
}

bool dm_h_contract_payload(dm_buf_t *out, const char *domain, const char *name,
                           const char *version)
{
    const char *text = dm_h_contract_text(domain, name, version);
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    bool ok = dm_contract_parse("t", text, strlen(text), NULL, &list, &n, &diags) == DM_OK && n == 1;
    if (ok)
        dm_contract_canonical(list[0], out);
    dm_contract_list_destroy(&list, n);
    dm_diags_clear(&diags);
    return ok;
}

void dm_h_entry_node_record(dm_h_entry_t *t, const char *domain, const char *address)
{
    Dm__NodeRecord nr = DM__NODE_RECORD__INIT;
    nr.domain = (char *)domain;
    nr.address = (char *)address;
    dm_buf_reset(&t->payload);
    dm_buf_reserve(&t->payload, dm__node_record__get_packed_size(&nr));
    t->payload.len = dm__node_record__pack(&nr, (uint8_t *)t->payload.data);
}

bool dm_h_entry_sign(dm_h_entry_t *t, const dm_identity_t *signer, const uint8_t *origin,
                     const char *key, uint64_t version)
{
    memcpy(t->e.origin, origin, DM_ID_PUBLIC_BYTES);
    t->e.key = (char *)key;
    t->e.version = version;
    t->e.issued_at_ms = dm_clock_wall_ms();
    t->e.payload = (uint8_t *)t->payload.data;
    t->e.payload_len = t->payload.len;
    dm_buf_t signed_bytes = DM_BUF_INIT;
    dm_catalog_entry_signed_bytes(&t->e, &signed_bytes);
    bool ok = dm_identity_sign(signer, signed_bytes.data, signed_bytes.len, t->e.signature, NULL) == DM_OK;
    dm_buf_free(&signed_bytes);
    dm__catalog_entry__init(&t->pe);
    t->pe.origin.data = t->e.origin;
    t->pe.origin.len = DM_ID_PUBLIC_BYTES;
    t->pe.key = t->e.key;
    t->pe.version = version;
    t->pe.issued_at_ms = t->e.issued_at_ms;
    t->pe.payload.data = t->e.payload;
    t->pe.payload.len = t->e.payload_len;
    t->pe.signature.data = t->e.signature;
    t->pe.signature.len = DM_ID_SIGNATURE_BYTES;
    return ok;
}

void dm_h_entry_free(dm_h_entry_t *t)
{
    dm_buf_free(&t->payload);
}

bool dm_h_catalog_send(dm_h_raw_t *raw, const char *my_addr, dm_h_entry_t *const *entries,
                       size_t count)
{
    Dm__CatalogEntry **pes = calloc(count ? count : 1, sizeof *pes);
    for (size_t i = 0; i < count; i++)
        pes[i] = &entries[i]->pe;
    Dm__CatalogDelta d = DM__CATALOG_DELTA__INIT;
    d.n_entries = count;
    d.entries = pes;
    size_t dlen = dm__catalog_delta__get_packed_size(&d);
    uint8_t *dbytes = malloc(dlen ? dlen : 1);
    dm__catalog_delta__pack(&d, dbytes);
    Dm__CatalogSync sync = DM__CATALOG_SYNC__INIT;
    sync.reply_to = (char *)my_addr;
    sync.delta.data = dbytes;
    sync.delta.len = dlen;
    Dm__Envelope env = DM__ENVELOPE__INIT;
    dm_envelope_init(&env, 0, DM__ENVELOPE__BODY_CATALOG_SYNC, &sync);
    bool ok = dm_h_raw_send_env(raw, &env);
    free(dbytes);
    free(pes);
    return ok;
}

bool dm_h_catalog_inject(const dm_h_node_t *n, const dm_identity_t *me, const char *my_addr,
                         dm_h_entry_t *const *entries, size_t count)
{
    dm_h_raw_t *raw = dm_h_raw_new(n->addr, me);
    if (!raw)
        return false;
    bool ok = dm_h_catalog_send(raw, my_addr, entries, count);
    dm_h_raw_destroy(&raw); /* linger delivers it */
    return ok;
}

/* One request of body_case to n; the reply (caller frees) or NULL. */
static Dm__Envelope *s_call(const dm_h_node_t *n, Dm__Envelope *req)
{
    dm_rpc_client_t *c = NULL;
    if (dm_rpc_client_new(n->addr, DM_H_CLIENT_MS, &c, NULL) != DM_OK)
        return NULL;
    Dm__Envelope *rep = NULL;
    if (dm_rpc_client_call(c, req, &rep, NULL) != DM_OK)
        rep = NULL;
    dm_rpc_client_destroy(&c);
    return rep;
}

bool dm_h_lists(const dm_h_node_t *n, const char *domain, const char *name, const char *version)
{
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__ProductsReq body = DM__PRODUCTS_REQ__INIT;
    body.mesh = 1;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_PRODUCTS_REQ, &body);
    Dm__Envelope *rep = s_call(n, &req);
    bool found = false;
    if (rep && rep->body_case == DM__ENVELOPE__BODY_PRODUCTS_REP)
        for (size_t i = 0; i < rep->products_rep->n_products; i++) {
            const Dm__ProductInfo *p = rep->products_rep->products[i];
            if (strcmp(p->domain, domain) == 0 && strcmp(p->name, name) == 0 &&
                (!version || strcmp(p->version, version) == 0))
                found = true;
        }
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    return found;
}

dm_h_member_t dm_h_member(const dm_h_node_t *n, const char *domain)
{
    dm_h_member_t out = {.count = 0};
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__MembersReq body = DM__MEMBERS_REQ__INIT;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_MEMBERS_REQ, &body);
    Dm__Envelope *rep = s_call(n, &req);
    if (rep && rep->body_case == DM__ENVELOPE__BODY_MEMBERS_REP) {
        out.answered = true;
        out.count = rep->members_rep->n_members;
        for (size_t i = 0; i < rep->members_rep->n_members; i++) {
            const Dm__MemberInfo *m = rep->members_rep->members[i];
            if (domain && strcmp(m->domain, domain) == 0) {
                snprintf(out.state, sizeof out.state, "%s", m->state);
                snprintf(out.address, sizeof out.address, "%s", m->address);
                out.incarnation = m->incarnation;
                out.found = true;
            }
        }
    }
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    return out;
}
