/* catalog_keys.c: what a catalog key may be and what its payload must
 * hold (docs/catalog.md, "Keys"): the grammar of "node",
 * "product/DOMAIN/NAME", "acl/DOMAIN/NAME", "health/DOMAIN/NAME", "gov/root"
 * and "gov/doc/NAME", the tombstone rules, and the checks of node records,
 * contracts and acl records (health records: catalog_health.c). Pure: no catalog state is read here (catalog_gov.c judges the
 * governance payloads against the key chain). */
#include "catalog/catalog_priv.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"

#define S_PREFIX_LEN(p) (sizeof p - 1)
/* A reader named by group; the policy module spells it the same
 * (DM_POLICY_GROUP_PREFIX), the catalog does not link it. */
#define S_GROUP_PREFIX "group:"
#define S_HEX_KEY_LEN (2 * DM_ID_PUBLIC_BYTES)

_Static_assert(DM_CATALOG_NAME_MAX == DM_TEXT_NAME_MAX, "catalog names follow the name rule");

static dm_catalog_verdict s_malformed(dm_buf_t *why, const char *fmt, ...) DM_PRINTF(2, 3);

/* Writes a one-line reason into why (may be NULL); returns MALFORMED. */
static dm_catalog_verdict s_malformed(dm_buf_t *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dm_buf_vwhy(why, fmt, ap);
    va_end(ap);
    return DM_CATALOG_MALFORMED;
}

void dm_catalog__parsed_clear(dm_catalog__parsed_t *p)
{
    if (p->node)
        dm__node_record__free_unpacked(p->node, NULL);
    p->node = NULL;
}

/* A node record's claim: decodes it into p. */
static dm_catalog_verdict s_parse_node(const dm_catalog_entry_t *e, dm_catalog__parsed_t *p,
                                       dm_buf_t *why)
{
    if (e->tombstone)
        return s_malformed(why, "a node record cannot be a tombstone");
    p->node = dm__node_record__unpack(NULL, e->payload_len, e->payload);
    if (!p->node)
        return s_malformed(why, "the node record does not decode");
    size_t dlen = strlen(p->node->domain);
    if (!dm_text_is_name_n(p->node->domain, dlen) ||
        strnlen(p->node->address, DM_ADDRESS_MAX) >= DM_ADDRESS_MAX) {
        dm_catalog__parsed_clear(p);
        return s_malformed(why,
                           "the node record needs a domain matching " DM_TEXT_NAME_RULE " "
                           "and an address under %d bytes",
                           DM_ADDRESS_MAX);
    }
    memcpy(p->domain, p->node->domain, dlen + 1);
    return DM_CATALOG_ACCEPTED;
}

/* "DOMAIN/NAME" after a prefix into p; false if either is not a name. */
static bool s_domain_name(const char *rest, dm_catalog__parsed_t *p)
{
    const char *slash = strchr(rest, '/');
    if (!slash || !dm_text_is_name_n(rest, (size_t)(slash - rest)) || !dm_text_is_name(slash + 1))
        return false;
    memcpy(p->domain, rest, (size_t)(slash - rest));
    p->domain[slash - rest] = 0;
    strcpy(p->name, slash + 1);
    return true;
}

/* The kind of key, its names into p; false for a key outside the grammar. */
static bool s_key(const char *key, dm_catalog__parsed_t *p)
{
    if (strncmp(key, DM_CATALOG_PRODUCT_PREFIX, S_PREFIX_LEN(DM_CATALOG_PRODUCT_PREFIX)) == 0) {
        p->kind = DM_CATALOG__PRODUCT;
        return s_domain_name(key + S_PREFIX_LEN(DM_CATALOG_PRODUCT_PREFIX), p);
    }
    if (strncmp(key, DM_CATALOG_ACL_PREFIX, S_PREFIX_LEN(DM_CATALOG_ACL_PREFIX)) == 0) {
        p->kind = DM_CATALOG__ACL;
        return s_domain_name(key + S_PREFIX_LEN(DM_CATALOG_ACL_PREFIX), p);
    }
    if (strncmp(key, DM_CATALOG_HEALTH_PREFIX, S_PREFIX_LEN(DM_CATALOG_HEALTH_PREFIX)) == 0) {
        p->kind = DM_CATALOG__HEALTH;
        return s_domain_name(key + S_PREFIX_LEN(DM_CATALOG_HEALTH_PREFIX), p);
    }
    if (strcmp(key, DM_CATALOG_GOV_ROOT_KEY) == 0) {
        p->kind = DM_CATALOG__GOV_ROOT;
        return true;
    }
    if (strncmp(key, DM_CATALOG_GOV_DOC_PREFIX, S_PREFIX_LEN(DM_CATALOG_GOV_DOC_PREFIX)) == 0) {
        p->kind = DM_CATALOG__GOV_DOC;
        const char *name = key + S_PREFIX_LEN(DM_CATALOG_GOV_DOC_PREFIX);
        if (!dm_text_is_name(name))
            return false;
        strcpy(p->name, name);
        return true;
    }
    return false;
}

dm_catalog_verdict dm_catalog__parse(const dm_catalog_entry_t *e, dm_catalog__parsed_t *p,
                                     dm_buf_t *why)
{
    memset(p, 0, sizeof *p);
    if (strcmp(e->key, DM_CATALOG_NODE_KEY) == 0) {
        p->kind = DM_CATALOG__NODE;
        return s_parse_node(e, p, why);
    }
    if (!s_key(e->key, p))
        return s_malformed(why,
                           "key '%.*s' is none of \"node\", \"product/DOMAIN/NAME\", "
                           "\"acl/DOMAIN/NAME\", \"health/DOMAIN/NAME\", \"gov/root\", "
                           "\"gov/doc/NAME\" with names "
                           "matching " DM_TEXT_NAME_RULE,
                           DM_CATALOG_KEY_MAX, e->key);
    if (e->tombstone && e->payload_len)
        return s_malformed(why, "a tombstone carries no payload");
    switch (p->kind) {
    case DM_CATALOG__PRODUCT:
        if (!e->tombstone && !e->payload_len)
            return s_malformed(why, "product %s/%s has no contract", p->domain, p->name);
        break;
    case DM_CATALOG__GOV_ROOT:
        if (e->tombstone || !e->payload_len)
            return s_malformed(why, "gov/root needs a dm.GovRoot payload and cannot be a "
                                    "tombstone");
        break;
    case DM_CATALOG__GOV_DOC:
        if (!e->tombstone && !e->payload_len)
            return s_malformed(why, "governance document %s has no YAML", p->name);
        break;
    default: /* an acl record may be empty (no grants, no revocations), so may a
              * health record (nothing measured yet: every field its default) */
        break;
    }
    return DM_CATALOG_ACCEPTED;
}

bool dm_catalog__contract_ok(const dm_catalog_entry_t *e, const dm_catalog__parsed_t *p,
                             dm_buf_t *why)
{
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    /* on the node loop, from any peer: check patterns statically, compile nothing */
    dm_err rc = dm_contract_parse_opts(e->key, (const char *)e->payload, e->payload_len, NULL,
                                       DM_CONTRACT_NO_COMPILE, &list, &n, &diags);
    bool ok = false;
    if (rc != DM_OK)
        s_malformed(why, "the contract does not parse: %s",
                    diags.count ? diags.items[0].message : dm_err_str(rc));
    else if (n != 1 || strcmp(list[0]->domain, p->domain) || strcmp(list[0]->name, p->name))
        s_malformed(why, "the payload is not exactly the contract of %s/%s", p->domain, p->name);
    else
        ok = true;
    dm_contract_list_destroy(&list, n);
    dm_diags_clear(&diags);
    return ok;
}

/* Whether s names a reader: 64 hex digits (either case) or group:NAME. */
static bool s_reader_ok(const char *s)
{
    if (strncmp(s, S_GROUP_PREFIX, S_PREFIX_LEN(S_GROUP_PREFIX)) == 0)
        return dm_text_is_name(s + S_PREFIX_LEN(S_GROUP_PREFIX));
    if (strnlen(s, S_HEX_KEY_LEN + 1) != S_HEX_KEY_LEN)
        return false;
    for (size_t i = 0; i < S_HEX_KEY_LEN; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* Checks one list of an acl record; false with a reason naming it. */
static bool s_readers_ok(const char *list, char *const *readers, size_t n, dm_buf_t *why)
{
    if (n > DM_CATALOG_ACL_READERS_MAX) {
        s_malformed(why, "the acl record's %s list has %zu readers; at most %d", list, n,
                    DM_CATALOG_ACL_READERS_MAX);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (!s_reader_ok(readers[i])) {
            s_malformed(why,
                        "the acl record's %s reader %zu ('%.80s') is neither 64 hex digits "
                        "nor group:NAME with NAME matching " DM_TEXT_NAME_RULE,
                        list, i + 1, readers[i]);
            return false;
        }
    return true;
}

bool dm_catalog__acl_ok(const dm_catalog_entry_t *e, dm_buf_t *why)
{
    Dm__AclRecord *r = dm__acl_record__unpack(NULL, e->payload_len, e->payload);
    if (!r) {
        s_malformed(why, "the payload of %s is not a dm.AclRecord", e->key);
        return false;
    }
    bool ok = s_readers_ok("granted", r->granted, r->n_granted, why) &&
              s_readers_ok("revoked", r->revoked, r->n_revoked, why);
    dm__acl_record__free_unpacked(r, NULL);
    return ok;
}
