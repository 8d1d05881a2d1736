/* policy_rules.c: the contract rules of a governance set, checked against
 * one contract at dmctl validate and at register. */
#include <string.h>

#include "policy/policy_priv.h"

#define S_PII "pii"

/* ^[a-z][a-z0-9_]*$ */
static bool s_snake(const char *s)
{
    if (!s || !(*s >= 'a' && *s <= 'z'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* Whether c declares what (one of the require names). */
static bool s_declares(const dm_contract_t *c, const char *what)
{
    if (strcmp(what, "owner.contact") == 0)
        return c->owner_contact && c->owner_contact[0];
    if (strcmp(what, "sla.freshness") == 0)
        return c->freshness_ms > 0;
    if (strcmp(what, "sla.availability") == 0)
        return c->availability > 0;
    if (strcmp(what, "sla.latency") == 0)
        return c->latency_ms > 0;
    if (strcmp(what, "description") == 0)
        return c->description && c->description[0];
    return c->nchecks > 0; /* quality.checks */
}

/* Appends to msg what breaks rule r in c; empty when it holds. */
static void s_check(const dm_policy__crule_t *r, const dm_contract_t *c, dm_buf_t *msg)
{
    if (r->kind == DM_POLICY__REQUIRE) {
        if (!s_declares(c, r->what))
            dm_buf_printf(msg, "the contract must declare %s", r->what);
        return;
    }
    if (r->kind == DM_POLICY__FORBID) {
        if (c->access != DM_ACCESS_PUBLIC)
            return;
        for (size_t i = 0; i < c->nfields; i++)
            if (c->fields[i].classification && strcmp(c->fields[i].classification, S_PII) == 0) {
                dm_buf_printf(msg, "field '%s' is classified pii in a public product (make the "
                                   "product restricted or private, or drop the field)",
                              c->fields[i].name);
                return;
            }
        return;
    }
    const char *bad = !s_snake(c->domain) ? c->domain : !s_snake(c->name) ? c->name : NULL;
    for (size_t i = 0; !bad && i < c->nfields; i++)
        if (!s_snake(c->fields[i].name))
            bad = c->fields[i].name;
    if (bad)
        dm_buf_printf(msg, "name '%s' is not snake_case (^[a-z][a-z0-9_]*$)", bad);
}

dm_err dm_policy_check_contract(const dm_policy_set_t *gov, const dm_contract_t *c,
                                dm_diags_t *diags)
{
    if (!gov)
        return DM_OK;
    dm_err rc = DM_OK;
    dm_buf_t where = DM_BUF_INIT, msg = DM_BUF_INIT;
    dm_buf_printf(&where, "%s/%s", c->domain ? c->domain : "?", c->name ? c->name : "?");
    for (size_t i = 0; i < gov->ndocs; i++) {
        const dm_policy_doc_t *d = gov->docs[i];
        for (size_t k = 0; k < d->ncrules; k++) {
            dm_buf_reset(&msg);
            s_check(&d->crules[k], c, &msg);
            if (!msg.len)
                continue;
            dm_diags_add(diags, where.data, 0, 0, "contract rule %s of policy %s (version %llu): %s",
                         d->crules[k].name, d->name, (unsigned long long)gov->version, msg.data);
            rc = DM_ERR_DENIED;
        }
    }
    dm_buf_free(&where);
    dm_buf_free(&msg);
    return rc;
}
