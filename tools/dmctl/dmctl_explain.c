/* dmctl_explain.c: judging on the client what the node would decide:
 * dmctl policy explain (which rules apply to one identity, product and
 * action, from local files or the node's policies and contract) and the
 * mesh's contract rules for dmctl validate. Both run policy/policy.h's own
 * code, so they show what a node runs, never an imitation of it. */
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "dmctl.h"

#include "identity/identity.h"
#include "transport/envelope.h"

static const char *const P = "dmctl";

#define DM_EXPLAIN_MAX_ADMINS 1024 /* admins the node lists, as many as explain keeps */

/* What explain judges with, gathered from the command line and the node. */
typedef struct {
    dm_contract_t *contract;
    uint8_t key[DM_ID_PUBLIC_BYTES];
    const char *domain; /* the owner's (the node's, else the product's) */
    char node_domain[DM_CLI_QUALIFIED_MAX];
    uint8_t (*admins)[DM_POLICY_KEY_BYTES];
    size_t nadmins;
    char *readers_text; /* the node's effective readers, comma-separated; NULL: the contract's */
    const char **readers;
    size_t nreaders;
} s_facts;

static void s_facts_free(s_facts *f)
{
    dm_contract_destroy(&f->contract);
    free(f->admins);
    free(f->readers_text);
    free(f->readers);
}

/* The contract of q from --contract FILE (the one named q among its
 * contracts) or from the node (DescribeReq). */
static int s_contract(const dm_cli_args_t *a, const dm_cli_qualified_t *q, s_facts *f)
{
    const char *path = dm_cli_get(a, "contract");
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    Dm__Envelope *rep = NULL;
    int status = DM_EXIT_OK;
    dm_err rc;
    if (path) {
        rc = dm_contract_parse_file(path, &list, &n, &diags);
    } else {
        Dm__Envelope req = DM__ENVELOPE__INIT;
        Dm__DescribeReq body = DM__DESCRIBE_REQ__INIT;
        body.domain = (char *)q->domain;
        body.product = (char *)q->product;
        dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_DESCRIBE_REQ, &body);
        status = dm_cli_request(a, &req, DM__ENVELOPE__BODY_DESCRIBE_REP, "describe", &rep);
        if (status != DM_EXIT_OK)
            return status;
        path = "the node's contract";
        rc = dm_contract_parse(path, (const char *)rep->describe_rep->contract.data,
                               rep->describe_rep->contract.len, NULL, &list, &n, &diags);
    }
    if (rc != DM_OK) {
        dm_buf_t text = DM_BUF_INIT;
        dm_diags_format(&diags, &text);
        fprintf(stderr, "%s%s: %s is not a valid contract\n", text.data ? text.data : "", P, path);
        dm_buf_free(&text);
        status = DM_EXIT_USAGE;
    }
    for (size_t i = 0; rc == DM_OK && i < n; i++)
        if (strcmp(list[i]->domain, q->domain) == 0 && strcmp(list[i]->name, q->product) == 0) {
            f->contract = list[i];
            list[i] = NULL;
        }
    if (rc == DM_OK && !f->contract) {
        fprintf(stderr, "%s: %s holds no contract of %s/%s\n", P, path, q->domain, q->product);
        status = DM_EXIT_USAGE;
    }
    dm_contract_list_destroy(&list, n);
    dm_diags_clear(&diags);
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    return status;
}

/* The node's domain and admins (AdminsReq LIST). */
static int s_admins(const dm_cli_args_t *a, s_facts *f)
{
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__AdminsReq body = DM__ADMINS_REQ__INIT;
    body.op = DM__ADMINS_REQ__OP__LIST;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_ADMINS_REQ, &body);
    Dm__Envelope *rep = NULL;
    int status = dm_cli_request(a, &req, DM__ENVELOPE__BODY_ADMINS_REP, "admins list", &rep);
    if (status != DM_EXIT_OK)
        return status;
    const Dm__AdminsRep *r = rep->admins_rep;
    size_t n = 1 + (r->n_keys < DM_EXPLAIN_MAX_ADMINS ? r->n_keys : DM_EXPLAIN_MAX_ADMINS);
    f->admins = calloc(n, sizeof *f->admins);
    if (!f->admins) {
        fprintf(stderr, "%s: out of memory\n", P);
        status = DM_EXIT_USAGE;
        goto out;
    }
    const ProtobufCBinaryData *keys[DM_EXPLAIN_MAX_ADMINS + 1];
    keys[0] = &r->node_key;
    for (size_t i = 1; i < n; i++)
        keys[i] = &r->keys[i - 1];
    for (size_t i = 0; i < n; i++)
        if (keys[i]->len == DM_POLICY_KEY_BYTES)
            memcpy(f->admins[f->nadmins++], keys[i]->data, DM_POLICY_KEY_BYTES);
    snprintf(f->node_domain, sizeof f->node_domain, "%s", r->domain);
    f->domain = f->node_domain;
out:
    dm__envelope__free_unpacked(rep, NULL);
    return status;
}

/* The effective readers of q from the node's own listing, when it is the
 * node's product (grants and revocations applied). */
static int s_readers(const dm_cli_args_t *a, const dm_cli_qualified_t *q, s_facts *f)
{
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__ProductsReq body = DM__PRODUCTS_REQ__INIT;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_PRODUCTS_REQ, &body);
    Dm__Envelope *rep = NULL;
    int status = dm_cli_request(a, &req, DM__ENVELOPE__BODY_PRODUCTS_REP, "products", &rep);
    if (status != DM_EXIT_OK)
        return status;
    const Dm__ProductsRep *r = rep->products_rep;
    for (size_t i = 0; i < r->n_products && !f->readers_text; i++)
        if (strcmp(r->products[i]->domain, q->domain) == 0 &&
            strcmp(r->products[i]->name, q->product) == 0)
            f->readers_text = strdup(r->products[i]->readers);
    dm__envelope__free_unpacked(rep, NULL);
    if (!f->readers_text)
        return DM_EXIT_OK;
    size_t n = 0;
    for (char *p = f->readers_text; *p; p++)
        n += *p == ',';
    f->readers = calloc(n + 1, sizeof *f->readers);
    if (!f->readers) {
        fprintf(stderr, "%s: out of memory\n", P);
        return DM_EXIT_USAGE;
    }
    for (char *save = NULL, *tok = strtok_r(f->readers_text, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save))
        f->readers[f->nreaders++] = tok;
    return DM_EXIT_OK;
}

/* The identity judged: --key HEX, --as NAME (SHA-256 of the name, as
 * dmctl policy test does for an alias it does not know) or the caller's. */
static int s_key(const dm_cli_args_t *a, uint8_t key[DM_ID_PUBLIC_BYTES])
{
    const char *hex = dm_cli_get(a, "key"), *as = dm_cli_get(a, "as");
    if (hex && as) {
        fprintf(stderr, "%s: policy explain: give --key HEX or --as NAME, not both\n", P);
        return DM_EXIT_USAGE;
    }
    if (hex) {
        if (dm_identity_key_parse(hex, key))
            return DM_EXIT_OK;
        fprintf(stderr, "%s: invalid --key '%.80s': expected 64 hex digits\n", P, hex);
        return DM_EXIT_USAGE;
    }
    if (as) {
        crypto_hash_sha256(key, (const unsigned char *)as, strlen(as));
        return DM_EXIT_OK;
    }
    dm_identity_t *id = NULL;
    const char *path = NULL;
    int status = dm_cli_identity(a, &id, &path);
    if (status == DM_EXIT_OK)
        memcpy(key, dm_identity_public(id), DM_ID_PUBLIC_BYTES);
    dm_identity_destroy(&id);
    return status;
}

static bool s_action(const char *s, dm_policy_action *out)
{
    for (int i = 0; i < DM_POLICY__ACTIONS; i++)
        if (strcmp(s, dm_policy_action_name((dm_policy_action)i)) == 0) {
            *out = (dm_policy_action)i;
            return true;
        }
    return false;
}

/* Gathers the facts: the contract, and with a node its admins and the
 * product's effective readers. */
static int s_gather(const dm_cli_args_t *a, const dm_cli_qualified_t *q, s_facts *f)
{
    bool node = dm_dmctl_node_given(a);
    if (!node && !dm_cli_get(a, "contract")) {
        fprintf(stderr, "%s: policy explain needs the product's contract: --contract FILE or a "
                        "node (--node, --data or $MESH_NODE)\n", P);
        return DM_EXIT_USAGE;
    }
    int status = s_key(a, f->key);
    if (status == DM_EXIT_OK)
        status = s_contract(a, q, f);
    if (status == DM_EXIT_OK && node)
        status = s_admins(a, f);
    if (status == DM_EXIT_OK && node)
        status = s_readers(a, q, f);
    if (status != DM_EXIT_OK)
        return status;
    if (!f->domain)
        f->domain = f->contract->domain;
    if (!f->readers_text) {
        f->readers = (const char **)f->contract->readers;
        f->nreaders = f->contract->nreaders;
    }
    return DM_EXIT_OK;
}

int dm_dmctl_explain(const dm_cli_args_t *a)
{
    const char *product = dm_cli_get(a, "product");
    const char *action_name = dm_cli_get(a, "action");
    dm_policy_action action = DM_POLICY_READ;
    dm_cli_qualified_t q;
    if (!product || (a->npos > 2 && !dm_cli_get(a, "policies"))) {
        fprintf(stderr, "%s: usage: dmctl policy explain --product DOMAIN/PRODUCT [--action "
                        "read|describe|write] [--key HEX | --as NAME] [--policies FILE...] "
                        "[--contract FILE]\n", P);
        return DM_EXIT_USAGE;
    }
    if (action_name && !s_action(action_name, &action)) {
        fprintf(stderr, "%s: invalid --action '%.40s': expected read, describe or write\n", P,
                action_name);
        return DM_EXIT_USAGE;
    }
    if (dm_cli_qualified(a, product, &q) != 0)
        return DM_EXIT_USAGE;
    s_facts f;
    memset(&f, 0, sizeof f);
    dm_policy_set_t *set = NULL;
    int status = s_gather(a, &q, &f);
    if (status == DM_EXIT_OK)
        status = dm_dmctl_policy_set(a, 2, false, &set);
    if (status != DM_EXIT_OK)
        goto out;
    const dm_contract_t *c = f.contract;
    const char **fields = calloc(c->nfields + 1, sizeof *fields);
    const char **classes = calloc(c->nfields + 1, sizeof *classes);
    if (!fields || !classes) {
        fprintf(stderr, "%s: out of memory\n", P);
        status = DM_EXIT_USAGE;
    } else {
        for (size_t i = 0; i < c->nfields; i++) {
            fields[i] = c->fields[i].name;
            classes[i] = c->fields[i].classification;
        }
        dm_policy_product_t prod = {
            .domain = c->domain, .name = c->name, .tags = (const char *const *)c->tags,
            .ntags = c->ntags, .access = c->access, .readers = f.readers,
            .nreaders = f.nreaders, .fields = fields, .classifications = classes,
            .nfields = c->nfields};
        dm_policy_owner_t owner = {.domain = f.domain,
                                   .admins = (const uint8_t(*)[DM_POLICY_KEY_BYTES])f.admins,
                                   .nadmins = f.nadmins};
        dm_policy_request_t req = {.key = f.key, .action = action, .product = &prod};
        dm_buf_t out = DM_BUF_INIT;
        dm_policy_explain(set, &owner, &req, &out);
        char hex[DM_ID_HEX_BYTES];
        dm_identity_key_hex(f.key, hex);
        printf("%s %s/%s as %s (policy version %" PRIu64 "%s%s)\n",
               dm_policy_action_name(action), c->domain, c->name, hex,
               set ? dm_policy_set_version(set) : 0,
               set ? "" : ", no governance policies", f.admins ? "" : ", admins unknown: no node");
        fputs(out.data ? out.data : "", stdout);
        dm_buf_free(&out);
    }
    free(fields);
    free(classes);
out:
    dm_policy_set_unref(&set);
    s_facts_free(&f);
    return status;
}

/* ---- validate ---- */

int dm_dmctl_validate_rules(const dm_cli_args_t *a, dm_contract_t *const *list, size_t n,
                            bool *broken, dm_buf_t *note)
{
    if (!dm_dmctl_node_given(a)) {
        dm_buf_printf(note, "contract rules of the mesh not checked: no node given (--node, --data "
                            "or $%s)\n", DM_CLI_ENV_NODE);
        return DM_EXIT_OK;
    }
    Dm__Envelope *rep = NULL;
    int status = dm_dmctl_policy_get(a, &rep);
    if (status != DM_EXIT_OK) {
        fprintf(stderr, "%s: contract rules of the mesh not checked\n", P);
        return status;
    }
    dm_policy_set_t *set = NULL;
    if (rep->policy_get_rep->governance_key.len == 0) {
        dm_buf_puts(note, "contract rules of the mesh: none (the node has no governance key)\n");
        goto out;
    }
    status = dm_dmctl_node_set(rep->policy_get_rep, &set);
    if (status == DM_EXIT_USAGE)
        goto out;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_buf_t text = DM_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        dm_diags_clear(&diags);
        if (dm_policy_check_contract(set, list[i], &diags) == DM_OK)
            continue;
        dm_buf_reset(&text);
        dm_diags_format(&diags, &text);
        fputs(text.data ? text.data : "", stdout);
        broken[i] = true;
        status = DM_EXIT_FAIL;
    }
    dm_buf_printf(note, "contract rules of the mesh checked (policy version %" PRIu64 ")\n",
                  dm_policy_set_version(set));
    dm_diags_clear(&diags);
    dm_buf_free(&text);
out:
    dm_policy_set_unref(&set);
    dm__envelope__free_unpacked(rep, NULL);
    return status;
}
