/* dmctl_access.c: who may do what on the node, as its domain team sees
 * it: the domain's admins, grants and revocations of a product's readers,
 * and the node's audit of its decisions (whoami and keygen are
 * cli/cli.h's, alike in meshq). Every decision is the node's; this file
 * only asks and prints. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dmctl.h"

#include "base/clock.h"
#include "contract/types.h"
#include "identity/identity.h"
#include "transport/envelope.h"

#define DM_AUDIT_PAGE 500 /* records asked per AuditReq */

static const char *const P = "dmctl";

/* ---- admins ---- */

static void s_admins_print(const Dm__AdminsRep *r, bool json)
{
    char hex[DM_ID_HEX_BYTES];
    dm_cli_hex(hex, &r->node_key, DM_ID_PUBLIC_BYTES);
    if (json) {
        dm_buf_t o = DM_BUF_INIT;
        dm_buf_puts(&o, "{\"domain\":");
        dm_cli_json_string(&o, r->domain, strlen(r->domain));
        dm_buf_printf(&o, ",\"node_key\":\"%s\",\"changed\":%s,\"admins\":[\"%s\"", hex,
                      r->changed ? "true" : "false", hex);
        for (size_t i = 0; i < r->n_keys; i++) {
            dm_cli_hex(hex, &r->keys[i], DM_ID_PUBLIC_BYTES);
            dm_buf_printf(&o, ",\"%s\"", hex);
        }
        dm_buf_puts(&o, "]}\n");
        fputs(o.data, stdout);
        dm_buf_free(&o);
        return;
    }
    dm_cli_table_t t;
    dm_cli_table_init(&t, 2, 0);
    char title[300];
    snprintf(title, sizeof title, "ADMIN OF %s", r->domain);
    const char *head[] = {"KEY", title};
    dm_cli_table_add(&t, head);
    const char *node_row[] = {hex, "the node's own key"};
    dm_cli_table_add(&t, node_row);
    for (size_t i = 0; i < r->n_keys; i++) {
        dm_cli_hex(hex, &r->keys[i], DM_ID_PUBLIC_BYTES);
        const char *row[] = {hex, "added"};
        dm_cli_table_add(&t, row);
    }
    dm_cli_table_print(&t, stdout);
    dm_cli_table_free(&t);
}

int dm_dmctl_admins(const dm_cli_args_t *a)
{
    static const char usage[] = "dmctl admins list | add KEY | remove KEY   (KEY: 64 hex digits, "
                                "as dmctl whoami prints it)";
    const char *op = a->npos >= 2 ? a->pos[1] : "";
    bool list = strcmp(op, "list") == 0;
    bool add = strcmp(op, "add") == 0, remove = strcmp(op, "remove") == 0;
    if (!(list && a->npos == 2) && !((add || remove) && a->npos == 3)) {
        fprintf(stderr, "%s: usage: %s\n", P, usage);
        return DM_EXIT_USAGE;
    }
    uint8_t key[DM_ID_PUBLIC_BYTES];
    if (!list && !dm_identity_key_parse(a->pos[2], key)) {
        fprintf(stderr, "%s: admins %s: '%.80s' is not a key: expected 64 hex digits (dmctl "
                        "whoami prints yours)\n", P, op, a->pos[2]);
        return DM_EXIT_USAGE;
    }
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__AdminsReq body = DM__ADMINS_REQ__INIT;
    body.op = list ? DM__ADMINS_REQ__OP__LIST : add ? DM__ADMINS_REQ__OP__ADD
                                                    : DM__ADMINS_REQ__OP__REMOVE;
    if (!list) {
        body.key.data = key;
        body.key.len = sizeof key;
    }
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_ADMINS_REQ, &body);
    Dm__Envelope *rep = NULL;
    char what[32];
    snprintf(what, sizeof what, "admins %s", op);
    int status = dm_cli_request(a, &req, DM__ENVELOPE__BODY_ADMINS_REP, what, &rep);
    if (status != DM_EXIT_OK)
        return status;
    const Dm__AdminsRep *r = rep->admins_rep;
    bool json = dm_cli_get(a, "json") != NULL;
    if (!list && !json)
        printf("%s %s admin of %s\n", a->pos[2],
               !r->changed ? (add ? "was already an" : "was not an")
                           : (add ? "is now an" : "is no longer an"),
               r->domain);
    s_admins_print(r, json);
    dm__envelope__free_unpacked(rep, NULL);
    return DM_EXIT_OK;
}

/* ---- grant, revoke ---- */

/* Whether reader is 64 hex digits or group:NAME with a plausible name
 * (the node checks the name rule). */
static bool s_reader_ok(const char *reader)
{
    uint8_t key[DM_ID_PUBLIC_BYTES];
    size_t pl = strlen(DM_POLICY_GROUP_PREFIX);
    if (strncmp(reader, DM_POLICY_GROUP_PREFIX, pl) == 0)
        return reader[pl] && strlen(reader) < DM_CLI_QUALIFIED_MAX;
    return strlen(reader) == 2 * DM_ID_PUBLIC_BYTES && dm_identity_key_parse(reader, key);
}

/* After granting group:NAME: a warning on stderr when the node publishes
 * no Group document named NAME (the grant matches nobody until one is).
 * A document that does not parse here counts as no Group; when the
 * documents cannot be fetched the request has printed why, and no warning
 * follows (the grant itself is done either way). */
static void s_warn_unknown_group(const dm_cli_args_t *a, const char *reader)
{
    size_t pl = strlen(DM_POLICY_GROUP_PREFIX);
    if (strncmp(reader, DM_POLICY_GROUP_PREFIX, pl) != 0)
        return;
    const char *name = reader + pl;
    Dm__Envelope *rep = NULL;
    if (dm_dmctl_policy_get(a, &rep) != DM_EXIT_OK)
        return;
    const Dm__PolicyGetRep *r = rep->policy_get_rep;
    bool found = false;
    for (size_t i = 0; i < r->n_docs && !found; i++) {
        dm_policy_doc_t *doc = NULL;
        dm_diags_t diags = DM_DIAGS_INIT;
        if (dm_policy_doc_parse(r->docs[i]->key, (const char *)r->docs[i]->yaml.data,
                                r->docs[i]->yaml.len, &doc, &diags) == DM_OK)
            found = strcmp(dm_policy_doc_kind(doc), "Group") == 0 &&
                    strcmp(dm_policy_doc_name(doc), name) == 0;
        dm_policy_doc_destroy(&doc);
        dm_diags_clear(&diags);
    }
    if (!found)
        fprintf(stderr, "warning: no Group document named %.80s is published; %.90s matches "
                        "nobody until one is\n", name, reader);
    dm__envelope__free_unpacked(rep, NULL);
}

static int s_grant(const dm_cli_args_t *a, bool revoke)
{
    const char *cmd = revoke ? "revoke" : "grant";
    if (a->npos != 3) {
        fprintf(stderr, "%s: usage: dmctl %s DOMAIN/PRODUCT KEY|group:NAME\n", P, cmd);
        return DM_EXIT_USAGE;
    }
    dm_cli_qualified_t q;
    if (dm_cli_qualified(a, a->pos[1], &q) != 0)
        return DM_EXIT_USAGE;
    if (!s_reader_ok(a->pos[2])) {
        fprintf(stderr, "%s: %s: '%.80s' is not a reader: expected a key (64 hex digits) or "
                        "group:NAME\n", P, cmd, a->pos[2]);
        return DM_EXIT_USAGE;
    }
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__GrantReq body = DM__GRANT_REQ__INIT;
    body.domain = (char *)q.domain;
    body.product = (char *)q.product;
    body.reader = (char *)a->pos[2];
    body.revoke = revoke;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_GRANT_REQ, &body);
    Dm__Envelope *rep = NULL;
    int status = dm_cli_request(a, &req, DM__ENVELOPE__BODY_GRANT_REP, cmd, &rep);
    if (status != DM_EXIT_OK)
        return status;
    const Dm__GrantRep *r = rep->grant_rep;
    if (dm_cli_get(a, "json")) {
        dm_buf_t o = DM_BUF_INIT;
        dm_buf_printf(&o, "{\"changed\":%s,\"version\":%" PRIu64 ",\"readers\":[",
                      r->changed ? "true" : "false", r->version);
        for (size_t i = 0; i < r->n_readers; i++) {
            dm_buf_puts(&o, i ? "," : "");
            dm_cli_json_string(&o, r->readers[i], strlen(r->readers[i]));
        }
        dm_buf_puts(&o, "]}\n");
        fputs(o.data, stdout);
        dm_buf_free(&o);
    } else {
        if (r->changed)
            printf("%s %s on %s/%s (acl version %" PRIu64 ")\n", revoke ? "revoked" : "granted",
                   a->pos[2], q.domain, q.product, r->version);
        else
            printf("unchanged: %s %s a reader of %s/%s\n", a->pos[2],
                   revoke ? "was not" : "already is", q.domain, q.product);
        printf("readers of %s/%s:%s\n", q.domain, q.product,
               r->n_readers ? "" : " none besides the domain's admins");
        dm_buf_t o = DM_BUF_INIT;
        for (size_t i = 0; i < r->n_readers; i++) {
            dm_buf_puts(&o, "  ");
            dm_cli_text(&o, r->readers[i], strlen(r->readers[i]));
            dm_buf_putc(&o, '\n');
        }
        fputs(o.data ? o.data : "", stdout);
        dm_buf_free(&o);
    }
    dm__envelope__free_unpacked(rep, NULL);
    if (!revoke)
        s_warn_unknown_group(a, a->pos[2]);
    return DM_EXIT_OK;
}

int dm_dmctl_grant(const dm_cli_args_t *a) { return s_grant(a, false); }
int dm_dmctl_revoke(const dm_cli_args_t *a) { return s_grant(a, true); }

/* ---- audit ---- */

bool dm_dmctl_since_parse(const char *s, int64_t now_ms, int64_t *ms_out)
{
    size_t len = strlen(s);
    int64_t v;
    if (dm_types_timestamp_parse(s, len, &v)) {
        *ms_out = v / 1000;
        return true;
    }
    if (dm_contract_duration_parse(s, len, &v) && v >= 0 && v <= now_ms) {
        *ms_out = now_ms - v;
        return true;
    }
    return false;
}

typedef struct {
    bool json;
    uint64_t shown;
    dm_cli_table_t table;
} s_audit;

static void s_audit_record(s_audit *st, const Dm__AuditRecord *r)
{
    char at[DM_TIMESTAMP_TEXT_MAX], hex[DM_ID_HEX_BYTES], ver[24];
    dm_types_timestamp_format(r->at_ms * 1000, at);
    dm_cli_hex(hex, &r->caller, DM_ID_PUBLIC_BYTES);
    if (st->json) {
        dm_buf_t o = DM_BUF_INIT;
        dm_buf_printf(&o, "%s{\"seq\":%" PRIu64 ",\"at\":\"%s\",\"caller\":\"%s\",\"verified\":%s"
                          ",\"action\":", st->shown ? ",\n" : "", r->seq, at, hex,
                      r->verified ? "true" : "false");
        dm_cli_json_string(&o, r->action, strlen(r->action));
        dm_buf_puts(&o, ",\"product\":");
        dm_cli_json_string(&o, r->product, strlen(r->product));
        dm_buf_printf(&o, ",\"decision\":\"%s\",\"rule\":", r->allowed ? "allow" : "deny");
        dm_cli_json_string(&o, r->rule, strlen(r->rule));
        dm_buf_printf(&o, ",\"policy_version\":%" PRIu64 "}", r->policy_version);
        fputs(o.data, stdout);
        dm_buf_free(&o);
    } else {
        char caller[DM_ID_HEX_BYTES + 8];
        snprintf(caller, sizeof caller, "%s%s", r->verified ? "" : "curve:", hex);
        snprintf(ver, sizeof ver, "%" PRIu64, r->policy_version);
        dm_buf_t action = DM_BUF_INIT, product = DM_BUF_INIT, rule = DM_BUF_INIT;
        dm_cli_text(&action, r->action, strlen(r->action));
        dm_cli_text(&product, r->product, strlen(r->product));
        dm_cli_text(&rule, r->rule, strlen(r->rule));
        const char *row[] = {at, caller, action.data ? action.data : "",
                             *r->product ? product.data : "-", r->allowed ? "allow" : "deny",
                             rule.data ? rule.data : "", ver};
        dm_cli_table_add(&st->table, row);
        dm_buf_free(&action);
        dm_buf_free(&product);
        dm_buf_free(&rule);
    }
    st->shown++;
}

/* Parses --limit (a whole number, 0: no limit). -1 after printing. */
static int s_limit(const dm_cli_args_t *a, uint64_t *limit)
{
    if (dm_cli_uint_opt(a, "limit", "a number of records (0: all)", 0, UINT64_MAX, 0, limit) != 0)
        return -1;
    if (*limit == 0)
        *limit = UINT64_MAX;
    return 0;
}

/* Pages through the audit from since_ms; the exit status. */
static int s_audit_pages(const dm_cli_args_t *a, int64_t since_ms, uint64_t limit, s_audit *st)
{
    uint64_t after = 0;
    for (;;) {
        Dm__Envelope req = DM__ENVELOPE__INIT;
        Dm__AuditReq body = DM__AUDIT_REQ__INIT;
        body.since_ms = since_ms;
        body.after = after;
        body.limit = limit - st->shown < DM_AUDIT_PAGE ? (uint32_t)(limit - st->shown)
                                                       : DM_AUDIT_PAGE;
        dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_AUDIT_REQ, &body);
        Dm__Envelope *rep = NULL;
        int status = dm_cli_request(a, &req, DM__ENVELOPE__BODY_AUDIT_REP, "audit", &rep);
        if (status != DM_EXIT_OK)
            return status;
        const Dm__AuditRep *r = rep->audit_rep;
        for (size_t i = 0; i < r->n_records && st->shown < limit; i++) {
            s_audit_record(st, r->records[i]);
            after = r->records[i]->seq;
        }
        bool more = r->more && r->n_records > 0 && st->shown < limit;
        dm__envelope__free_unpacked(rep, NULL);
        /* A page at a time: the audit may hold a million records. */
        if (!st->json) {
            dm_cli_table_print(&st->table, stdout);
            dm_cli_table_free(&st->table);
            dm_cli_table_init(&st->table, 7, 1u << 6);
        }
        if (!more)
            return DM_EXIT_OK;
    }
}

int dm_dmctl_audit(const dm_cli_args_t *a)
{
    if (a->npos != 1) {
        fprintf(stderr, "%s: usage: dmctl audit [--since T] [--limit N] [--json]\n", P);
        return DM_EXIT_USAGE;
    }
    int64_t since_ms = 0;
    const char *since = dm_cli_get(a, "since");
    if (since && !dm_dmctl_since_parse(since, dm_clock_wall_ms(), &since_ms)) {
        fprintf(stderr, "%s: invalid --since '%s': expected an RFC 3339 time "
                        "(2026-12-01T05:00:00Z) or a duration ago (10m, 2h, 7d)\n", P, since);
        return DM_EXIT_USAGE;
    }
    s_audit st = {.json = dm_cli_get(a, "json") != NULL};
    uint64_t limit;
    if (s_limit(a, &limit) != 0)
        return DM_EXIT_USAGE;
    dm_cli_table_init(&st.table, 7, 1u << 6);
    const char *head[] = {"TIME", "CALLER", "ACTION", "PRODUCT", "DECISION", "RULE", "VERSION"};
    dm_cli_table_add(&st.table, head);
    if (st.json)
        fputs("[", stdout);
    int status = s_audit_pages(a, since_ms, limit, &st);
    if (st.json)
        fputs("]\n", stdout);
    dm_cli_table_free(&st.table);
    return status;
}
