/* harness_access.c: see harness_access.h. */
#include "harness_access.h"

#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/catalog.pb-c.h"
#include "transport/envelope.h"
#include "transport/rpc.h"

#define DM_H_CLIENT_MS 5000 /* one wire request */
#define DM_H_WAIT_POLL_MS 20

/* The first run of exactly 64 hex digits in text, lowercased into hex;
 * false if there is none. */
static bool s_find_hex(const char *text, char hex[DM_ID_HEX_BYTES])
{
    for (const char *p = text; p && *p; p++) {
        size_t n = 0;
        while (isxdigit((unsigned char)p[n]))
            n++;
        if (n == DM_ID_HEX_BYTES - 1) {
            for (size_t i = 0; i < n; i++)
                hex[i] = (char)tolower((unsigned char)p[i]);
            hex[n] = 0;
            return true;
        }
        if (n)
            p += n - 1;
    }
    return false;
}

dm_identity_t *dm_h_person_identity(const dm_h_person_t *p)
{
    dm_identity_t *id = NULL;
    if (dm_identity_load_file(p->file, false, &id, NULL) != DM_OK)
        return NULL;
    return id;
}

bool dm_h_person(dm_h_person_t *p, const char *dir, const char *name)
{
    snprintf(p->file, sizeof p->file, "%s/%s.key", dir, name);
    const char *args[] = {"keygen", p->file, NULL};
    dm_h_result_t r = dm_h_run("dmctl", args, NULL, DM_H_CMD_MS);
    bool ok = r.status == 0 && s_find_hex(r.out, p->hex);
    if (!ok)
        fprintf(stderr, "dmctl keygen %s: status %d\n%s%s", p->file, r.status, r.out, r.err);
    dm_h_result_free(&r);
    dm_identity_t *id = ok ? dm_h_person_identity(p) : NULL;
    if (ok) {
        char file_hex[DM_ID_HEX_BYTES] = "";
        if (id)
            dm_identity_hex(id, file_hex);
        ok = strcmp(file_hex, p->hex) == 0;
        if (!ok)
            fprintf(stderr, "dmctl keygen printed %s but %s holds %s\n", p->hex, p->file, file_hex);
    }
    dm_identity_destroy(&id);
    return ok;
}

/* argv = prefix (np entries) then args, NULL-terminated, into out (cap). */
static void s_argv(const char **out, size_t cap, const char *const *prefix, size_t np,
                   const char *const *args)
{
    size_t n = 0;
    for (size_t i = 0; i < np && n + 1 < cap; i++)
        out[n++] = prefix[i];
    for (size_t i = 0; args && args[i] && n + 1 < cap; i++)
        out[n++] = args[i];
    out[n] = NULL;
}

dm_h_result_t dm_h_run_as(const char *tool, const char *as, const dm_h_node_t *n,
                          const char *const *args, const char *stdin_text)
{
    const char *argv[64];
    const char *prefix[] = {"--node", n->addr, "--identity", as};
    s_argv(argv, 64, prefix, 4, args);
    return dm_h_run(tool, argv, stdin_text, DM_H_CMD_MS);
}

dm_h_result_t dm_h_run_admin(const char *tool, const dm_h_node_t *n, const char *const *args,
                             const char *stdin_text)
{
    const char *argv[64];
    const char *prefix[] = {"--data", n->dir};
    s_argv(argv, 64, prefix, 2, args);
    return dm_h_run(tool, argv, stdin_text, DM_H_CMD_MS);
}

const char *dm_h_orders_contract(const char *domain, const char *name, const char *version,
                                 const char *access, const char *readers)
{
    static char text[2048];
    bool some = readers && readers[0];
    snprintf(text, sizeof text,
             "apiVersion: datamesh.io/v1\n"
             "kind: DataProduct\n"
             "metadata:\n"
             "  name: %s\n"
             "  domain: %s\n"
             "  version: %s\n"
             "  owner:\n"
             "    team: %s-engineering\n"
             "    contact: %s-data@company.com\n"
             "spec:\n"
             "  schema:\n"
             "    primaryKey: orderId\n"
             "    fields:\n"
             "      - {name: orderId, type: string, required: true}\n"
             "      - {name: email, type: string, required: true, classification: pii}\n"
             "      - {name: region, type: string, required: true}\n"
             "      - {name: amount, type: double, required: true}\n"
             "  sla:\n"
             "    freshness: 5m\n"
             "  policies:\n"
             "    access: %s\n"
             "%s%s%s",
             name, domain, version, domain, domain, access, some ? "    readers: [" : "",
             some ? readers : "", some ? "]\n" : "");
    return text;
}

const char *const dm_h_orders_rows =
    "{\"orderId\":\"o1\",\"email\":\"ann@example.com\",\"region\":\"eu\",\"amount\":10}\n"
    "{\"orderId\":\"o2\",\"email\":\"bob@example.com\",\"region\":\"us\",\"amount\":20}\n"
    "{\"orderId\":\"o3\",\"email\":\"cid@example.com\",\"region\":\"eu\",\"amount\":30}\n"
    "{\"orderId\":\"o4\",\"email\":\"dee@example.com\",\"region\":\"us\",\"amount\":40}\n";

void dm_h_node_key(const dm_h_node_t *n, char hex[DM_ID_HEX_BYTES])
{
    snprintf(hex, DM_ID_HEX_BYTES, "%.64s", n->addr);
}

bool dm_h_wait_until(bool (*cond)(void *ctx), void *ctx, int timeout_ms)
{
    long long deadline = dm_h_now_ms() + timeout_ms;
    for (;;) {
        if (cond(ctx))
            return true;
        if (dm_h_now_ms() >= deadline)
            return false;
        poll(NULL, 0, DM_H_WAIT_POLL_MS);
    }
}

long long dm_h_json_int(const char *json, const char *field, long long def)
{
    char key[128];
    snprintf(key, sizeof key, "\"%s\":", field);
    const char *p = json ? strstr(json, key) : NULL;
    if (!p)
        return def;
    p += strlen(key);
    while (*p == ' ')
        p++;
    return *p == '-' || isdigit((unsigned char)*p) ? atoll(p) : def;
}

size_t dm_h_count(const char *hay, const char *needle)
{
    size_t k = 0, len = strlen(needle);
    for (const char *p = hay; p && len && (p = strstr(p, needle)); p += len)
        k++;
    return k;
}

/* Whether the string value of "field" in the flat JSON object rec contains
 * needle (NULL: any value; "": only the empty one). */
static bool s_field_has(const char *rec, const char *field, const char *needle)
{
    if (!needle)
        return true;
    char key[64];
    snprintf(key, sizeof key, "\"%s\":\"", field);
    const char *v = strstr(rec, key);
    if (!v)
        return false;
    v += strlen(key);
    const char *end = strchr(v, '"');
    char *val = end ? strndup(v, (size_t)(end - v)) : NULL;
    bool hit = val && strstr(val, needle) && (needle[0] || !val[0]);
    free(val);
    return hit;
}

bool dm_h_audit_has(const char *json, const dm_h_audit_want_t *w)
{
    for (const char *o = json ? strchr(json, '{') : NULL; o; o = strchr(o, '{')) {
        const char *end = strchr(o, '}');
        if (!end)
            break;
        char *rec = strndup(o, (size_t)(end - o));
        bool hit = s_field_has(rec, "caller", w->caller) && s_field_has(rec, "action", w->action) &&
                   s_field_has(rec, "product", w->product) &&
                   s_field_has(rec, "decision", w->allowed ? "allow" : "deny") &&
                   s_field_has(rec, "rule", w->rule) && !strstr(rec, "\"rule\":\"\"") &&
                   dm_h_json_int(rec, "policy_version", -2) >= 0 &&
                   (w->version < 0 || dm_h_json_int(rec, "policy_version", -2) == w->version);
        free(rec);
        if (hit)
            return true;
        o = end;
    }
    return false;
}

typedef struct {
    const dm_h_node_t *n;
    const dm_h_audit_want_t *w;
    char *json;
} s_audit_t;

static bool s_audit_lists(void *ctx)
{
    s_audit_t *a = ctx;
    const char *args[] = {"audit", "--json", NULL};
    dm_h_result_t r = dm_h_run_admin("dmctl", a->n, args, NULL);
    free(a->json);
    a->json = r.out;
    free(r.err);
    return r.status == 0 && dm_h_audit_has(a->json, a->w);
}

char *dm_h_audit_wait(const dm_h_node_t *n, const dm_h_audit_want_t *w, int timeout_ms)
{
    s_audit_t a = {n, w, NULL};
    dm_h_wait_until(s_audit_lists, &a, timeout_ms);
    return a.json;
}

Dm__Envelope *dm_h_call_as(const dm_h_node_t *n, const dm_identity_t *id, Dm__Envelope *req)
{
    dm_rpc_client_t *c = NULL;
    if (dm_rpc_client_new_as(n->addr, DM_H_CLIENT_MS, id, &c, NULL) != DM_OK)
        return NULL;
    Dm__Envelope *rep = NULL;
    if (dm_rpc_client_call(c, req, &rep, NULL) != DM_OK)
        rep = NULL;
    dm_rpc_client_destroy(&c);
    return rep;
}

dm_h_gov_t dm_h_policy_get(const dm_h_node_t *n)
{
    dm_h_gov_t g = {.answered = false};
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__PolicyGetReq body = DM__POLICY_GET_REQ__INIT;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_POLICY_GET_REQ, &body);
    Dm__Envelope *rep = dm_h_call_as(n, NULL, &req);
    if (rep && rep->body_case == DM__ENVELOPE__BODY_POLICY_GET_REP) {
        const Dm__PolicyGetRep *p = rep->policy_get_rep;
        g.answered = true;
        if (p->governance_key.len == DM_ID_PUBLIC_BYTES)
            dm_identity_key_hex(p->governance_key.data, g.key);
        g.root_version = p->root_version;
        g.max_version = p->max_version;
        g.policy_version = p->policy_version;
        for (size_t i = 0; i < p->n_docs && g.ndocs < DM_H_GOV_DOCS_MAX; i++, g.ndocs++) {
            snprintf(g.docs[g.ndocs], sizeof g.docs[0], "%s", p->docs[i]->key ? p->docs[i]->key : "");
            g.versions[g.ndocs] = p->docs[i]->version;
        }
    }
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    return g;
}

bool dm_h_gov_has(const dm_h_gov_t *g, const char *name, uint64_t version)
{
    char key[DM_CATALOG_KEY_MAX];
    snprintf(key, sizeof key, "%s%s", DM_CATALOG_GOV_DOC_PREFIX, name);
    for (size_t i = 0; i < g->ndocs; i++)
        if (strcmp(g->docs[i], key) == 0 && (!version || g->versions[i] == version))
            return true;
    return false;
}

bool dm_h_gov_doc(dm_h_gov_entry_t *g, const dm_identity_t *signer, const uint8_t *origin,
                  const char *name, const char *yaml, uint64_t version)
{
    memset(g, 0, sizeof *g);
    snprintf(g->key, sizeof g->key, "%s%s", DM_CATALOG_GOV_DOC_PREFIX, name);
    dm_buf_append(&g->t.payload, yaml, strlen(yaml));
    return dm_h_entry_sign(&g->t, signer, origin, g->key, version);
}

bool dm_h_gov_root(dm_h_gov_entry_t *g, const dm_identity_t *signer, const uint8_t *origin,
                   const uint8_t new_key[DM_ID_PUBLIC_BYTES], uint64_t root_version,
                   uint64_t version)
{
    memset(g, 0, sizeof *g);
    snprintf(g->key, sizeof g->key, "%s", DM_CATALOG_GOV_ROOT_KEY);
    Dm__GovRoot root = DM__GOV_ROOT__INIT;
    root.root_version = root_version;
    root.key.data = (uint8_t *)new_key;
    root.key.len = DM_ID_PUBLIC_BYTES;
    dm_buf_reserve(&g->t.payload, dm__gov_root__get_packed_size(&root));
    g->t.payload.len = dm__gov_root__pack(&root, (uint8_t *)g->t.payload.data);
    return dm_h_entry_sign(&g->t, signer, origin, g->key, version);
}

void dm_h_gov_entry_free(dm_h_gov_entry_t *g)
{
    dm_h_entry_free(&g->t);
}

bool dm_h_gov_publish(const dm_h_node_t *n, const dm_identity_t *id, const dm_h_gov_entry_t *g,
                      char *why, size_t cap)
{
    size_t len = dm__catalog_entry__get_packed_size(&g->t.pe);
    uint8_t *bytes = malloc(len ? len : 1);
    dm__catalog_entry__pack(&g->t.pe, bytes);
    Dm__PolicyPublishReq body = DM__POLICY_PUBLISH_REQ__INIT;
    body.entry.data = bytes;
    body.entry.len = len;
    Dm__Envelope req = DM__ENVELOPE__INIT;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_POLICY_PUBLISH_REQ, &body);
    Dm__Envelope *rep = dm_h_call_as(n, id, &req);
    free(bytes);
    bool ok = rep && rep->body_case == DM__ENVELOPE__BODY_POLICY_PUBLISH_REP;
    if (!rep)
        snprintf(why, cap, "no reply");
    else if (rep->body_case == DM__ENVELOPE__BODY_ERROR)
        snprintf(why, cap, "%s", rep->error->message ? rep->error->message : "");
    else if (!ok)
        snprintf(why, cap, "unexpected reply body %d", (int)rep->body_case);
    else
        snprintf(why, cap, "accepted");
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    return ok;
}

const char *dm_h_file(const char *dir, const char *name, const char *text)
{
    static char path[4][700];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 700, "%s/%s", dir, name);
    dm_h_write(p, text);
    return p;
}

bool dm_h_orders_product(const dm_h_node_t *n, const char *dir, const char *name,
                         const char *access, const char *readers)
{
    char file[200];
    snprintf(file, sizeof file, "%.64s-%.64s.yaml", n->domain, name);
    const char *yaml =
        dm_h_file(dir, file, dm_h_orders_contract(n->domain, name, "1.0.0", access, readers));
    const char *reg[] = {"register", yaml, NULL};
    dm_h_result_t r = dm_h_run_admin("dmctl", n, reg, NULL);
    bool ok = r.status == 0;
    if (!ok)
        fprintf(stderr, "register %s: %s%s\n", name, r.out, r.err);
    dm_h_result_free(&r);
    if (!ok)
        return false;
    char qualified[128];
    snprintf(qualified, sizeof qualified, "%s/%s", n->domain, name);
    const char *ing[] = {"ingest", qualified, "-", NULL};
    r = dm_h_run_admin("dmctl", n, ing, dm_h_orders_rows);
    ok = r.status == 0;
    if (!ok)
        fprintf(stderr, "ingest %s: %s%s\n", name, r.out, r.err);
    dm_h_result_free(&r);
    return ok;
}

int dm_h_listed(const dm_h_node_t *n, const char *domain, const char *name)
{
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__ProductsReq body = DM__PRODUCTS_REQ__INIT;
    body.mesh = 1;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_PRODUCTS_REQ, &body);
    Dm__Envelope *rep = dm_h_call_as(n, NULL, &req);
    int state = -2; /* no answer */
    if (rep && rep->body_case == DM__ENVELOPE__BODY_PRODUCTS_REP) {
        state = -1;
        for (size_t k = 0; k < rep->products_rep->n_products; k++) {
            const Dm__ProductInfo *p = rep->products_rep->products[k];
            if (strcmp(p->domain, domain) == 0 && strcmp(p->name, name) == 0)
                state = p->uncertified ? 1 : 0;
        }
    }
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    return state;
}

bool dm_h_listing_is(void *ctx)
{
    const dm_h_listing_t *c = ctx;
    return dm_h_listed(c->node, c->domain, c->name) == c->want;
}

const char *dm_h_pii_policy(const char *member_hex)
{
    static char doc[1024];
    snprintf(doc, sizeof doc,
             "apiVersion: datamesh.io/v1\nkind: Group\nmetadata: {name: pii-readers}\n"
             "spec: {members: [\"%s\"]}\n---\n"
             "apiVersion: datamesh.io/v1\nkind: Policy\nmetadata: {name: privacy}\n"
             "spec:\n  masks:\n    - name: mask-pii\n      products: [\"commerce/orders\"]\n"
             "      fields: {classification: pii}\n      mask: redact\n"
             "      except: [\"group:pii-readers\"]\n",
             member_hex);
    return doc;
}
