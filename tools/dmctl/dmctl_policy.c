/* dmctl_policy.c: the mesh's governance from the platform team's side.
 * publish and rotate build catalog entries here, signed with the caller's
 * identity (which must be the governance key: the node only judges them,
 * with the same rules as entries that arrive by gossip); show, test and
 * explain read the published documents or local files; the contract-rule
 * part of validate. The entry's signed bytes come from catalog/catalog.h,
 * never from this file, so a client and a node cannot disagree on them. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dmctl.h"

#include "base/clock.h"
#include "catalog/catalog.h"
#include "contract/types.h"
#include "identity/identity.h"
#include "proto/catalog.pb-c.h"
#include "transport/envelope.h"

static const char *const P = "dmctl";

static void s_usage_policy(void)
{
    fprintf(stderr,
            "%s: usage: dmctl policy publish FILE | withdraw NAME | rotate NEWKEY | show [--json]\n"
            "       | test CASES.yaml [--policies FILE...]\n"
            "       | explain --product DOMAIN/PRODUCT [--action read|describe|write]\n"
            "         [--key HEX | --as NAME] [--policies FILE...] [--contract FILE]\n",
            P);
}

/* ---- publish ---- */

/* Sends the documents of d, version after version; the exit status. */
static int s_publish_docs(const dm_cli_args_t *a, const dm_identity_t *id,
                          const dm_dmctl_docs_t *d, uint64_t max_version)
{
    bool json = dm_cli_get(a, "json") != NULL;
    if (json)
        fputs("[", stdout);
    int status = DM_EXIT_OK;
    for (size_t i = 0; i < d->n && status == DM_EXIT_OK; i++) {
        char key[DM_CLI_QUALIFIED_MAX + 16];
        snprintf(key, sizeof key, "%s%s", DM_CATALOG_GOV_DOC_PREFIX,
                 dm_policy_doc_name(d->docs[i]));
        Dm__Envelope *rep = NULL;
        status = dm_dmctl_policy_sign_send(a, id, key, max_version + 1 + i, d->text.data + d->spans[i].off,
                             d->spans[i].len, &rep);
        if (status != DM_EXIT_OK) {
            if (i)
                fprintf(stderr, "%s: the %zu document%s before it %s published\n", P, i,
                        i == 1 ? "" : "s", i == 1 ? "was" : "were");
            break;
        }
        const Dm__PolicyPublishRep *r = rep->policy_publish_rep;
        if (json) {
            dm_buf_t o = DM_BUF_INIT;
            dm_buf_puts(&o, i ? ",{\"key\":" : "{\"key\":");
            dm_cli_json_string(&o, r->key, strlen(r->key));
            dm_buf_printf(&o, ",\"kind\":\"%s\",\"version\":%" PRIu64
                              ",\"policy_version\":%" PRIu64 "}",
                          dm_policy_doc_kind(d->docs[i]), r->version, r->policy_version);
            fputs(o.data, stdout);
            dm_buf_free(&o);
        } else
            printf("published %s (%s) version %" PRIu64 "; policy version %" PRIu64 "\n",
                   key, dm_policy_doc_kind(d->docs[i]), r->version, r->policy_version);
        dm__envelope__free_unpacked(rep, NULL);
    }
    if (json)
        fputs("]\n", stdout);
    return status;
}

static int s_publish(const dm_cli_args_t *a)
{
    if (a->npos != 3) {
        fprintf(stderr, "%s: usage: dmctl policy publish FILE\n", P);
        return DM_EXIT_USAGE;
    }
    dm_dmctl_docs_t d;
    int status = dm_dmctl_docs_load(a->pos[2], &d);
    if (status != DM_EXIT_OK) {
        fprintf(stderr, "%s: nothing published: %s is not valid\n", P, a->pos[2]);
        return status;
    }
    dm_identity_t *id = NULL;
    Dm__Envelope *rep = NULL;
    status = dm_dmctl_policy_as_governance(a, "publish", &id, &rep);
    if (status == DM_EXIT_OK)
        status = s_publish_docs(a, id, &d, dm_dmctl_gov_last_version(rep->policy_get_rep));
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    dm_identity_destroy(&id);
    dm_dmctl_docs_free(&d);
    return status;
}

/* ---- rotate ---- */

static int s_rotate(const dm_cli_args_t *a)
{
    uint8_t next[DM_ID_PUBLIC_BYTES];
    if (a->npos != 3) {
        fprintf(stderr, "%s: usage: dmctl policy rotate NEWKEY   (as the current governance "
                        "identity; NEWKEY: 64 hex digits)\n", P);
        return DM_EXIT_USAGE;
    }
    if (!dm_identity_key_parse(a->pos[2], next)) {
        fprintf(stderr, "%s: policy rotate: '%.80s' is not a key: expected 64 hex digits (dmctl "
                        "whoami --identity NEWFILE prints it)\n", P, a->pos[2]);
        return DM_EXIT_USAGE;
    }
    dm_identity_t *id = NULL;
    Dm__Envelope *rep = NULL;
    int status = dm_dmctl_policy_as_governance(a, "rotate", &id, &rep);
    if (status != DM_EXIT_OK)
        return status;
    const Dm__PolicyGetRep *g = rep->policy_get_rep;
    if (memcmp(next, dm_identity_public(id), DM_ID_PUBLIC_BYTES) == 0) {
        fprintf(stderr, "%s: policy rotate: %s is already the governance key\n", P, a->pos[2]);
        status = DM_EXIT_USAGE;
        goto out;
    }
    Dm__GovRoot root = DM__GOV_ROOT__INIT;
    root.root_version = g->root_version + 1;
    root.key.data = next;
    root.key.len = sizeof next;
    uint8_t payload[128];
    size_t len = dm__gov_root__pack(&root, payload);
    Dm__Envelope *prep = NULL;
    status = dm_dmctl_policy_sign_send(a, id, DM_CATALOG_GOV_ROOT_KEY, dm_dmctl_gov_last_version(g) + 1,
                                       payload, len, &prep);
    if (status == DM_EXIT_OK) {
        char hex[DM_ID_HEX_BYTES];
        dm_identity_key_hex(next, hex);
        printf("rotated: the governance key is now %s (root version %" PRIu64 "); publish with "
               "that identity from now on\n", hex, root.root_version);
        dm__envelope__free_unpacked(prep, NULL);
    }
out:
    dm__envelope__free_unpacked(rep, NULL);
    dm_identity_destroy(&id);
    return status;
}

/* ---- show ---- */

static void s_show_json(const Dm__PolicyGetRep *r)
{
    char hex[DM_ID_HEX_BYTES], at[DM_TIMESTAMP_TEXT_MAX];
    dm_cli_hex(hex, &r->governance_key, DM_ID_PUBLIC_BYTES);
    dm_buf_t o = DM_BUF_INIT;
    if (r->governance_key.len)
        dm_buf_printf(&o, "{\"governance_key\":\"%s\"", hex);
    else
        dm_buf_puts(&o, "{\"governance_key\":null");
    dm_buf_printf(&o, ",\"root_version\":%" PRIu64 ",\"max_version\":%" PRIu64
                      ",\"policy_version\":%" PRIu64 ",\"docs\":[",
                  r->root_version, r->max_version, r->policy_version);
    for (size_t i = 0; i < r->n_docs; i++) {
        const Dm__PolicyDoc *d = r->docs[i];
        dm_types_timestamp_format(d->issued_at_ms * 1000, at);
        dm_buf_puts(&o, i ? ",{\"key\":" : "{\"key\":");
        dm_cli_json_string(&o, d->key, strlen(d->key));
        dm_buf_printf(&o, ",\"version\":%" PRIu64 ",\"issued_at\":\"%s\",\"yaml\":", d->version,
                      at);
        dm_cli_json_string(&o, (const char *)d->yaml.data, d->yaml.len);
        dm_buf_putc(&o, '}');
    }
    dm_buf_puts(&o, "]}\n");
    fputs(o.data, stdout);
    dm_buf_free(&o);
}

static void s_show_text(const Dm__PolicyGetRep *r)
{
    if (r->governance_key.len != DM_ID_PUBLIC_BYTES) {
        printf("governance: none (owner rules only; meshd --governance KEY sets one)\n");
        return;
    }
    char hex[DM_ID_HEX_BYTES], at[DM_TIMESTAMP_TEXT_MAX], ver[24];
    dm_cli_hex(hex, &r->governance_key, DM_ID_PUBLIC_BYTES);
    printf("governance key %s (root version %" PRIu64 ")\npolicy version %" PRIu64
           "\n%zu document%s\n", hex, r->root_version, r->policy_version, r->n_docs,
           r->n_docs == 1 ? "" : "s");
    if (!r->n_docs)
        return;
    dm_cli_table_t t;
    dm_cli_table_init(&t, 4, 1u << 1);
    const char *head[] = {"KEY", "VERSION", "ISSUED", "KIND"};
    dm_cli_table_add(&t, head);
    for (size_t i = 0; i < r->n_docs; i++) {
        const Dm__PolicyDoc *d = r->docs[i];
        dm_policy_doc_t *doc = NULL;
        dm_diags_t diags = DM_DIAGS_INIT;
        bool ok = dm_policy_doc_parse(d->key, (const char *)d->yaml.data, d->yaml.len, &doc,
                                      &diags) == DM_OK;
        dm_types_timestamp_format(d->issued_at_ms * 1000, at);
        snprintf(ver, sizeof ver, "%" PRIu64, d->version);
        dm_buf_t key = DM_BUF_INIT;
        dm_cli_text(&key, d->key, strlen(d->key));
        const char *row[] = {key.data ? key.data : "", ver, at,
                             ok ? dm_policy_doc_kind(doc) : "?"};
        dm_cli_table_add(&t, row);
        dm_buf_free(&key);
        dm_policy_doc_destroy(&doc);
        dm_diags_clear(&diags);
    }
    dm_cli_table_print(&t, stdout);
    dm_cli_table_free(&t);
}

static int s_show(const dm_cli_args_t *a)
{
    if (a->npos != 2) {
        fprintf(stderr, "%s: usage: dmctl policy show [--json]\n", P);
        return DM_EXIT_USAGE;
    }
    Dm__Envelope *rep = NULL;
    int status = dm_dmctl_policy_get(a, &rep);
    if (status != DM_EXIT_OK)
        return status;
    if (dm_cli_get(a, "json"))
        s_show_json(rep->policy_get_rep);
    else
        s_show_text(rep->policy_get_rep);
    dm__envelope__free_unpacked(rep, NULL);
    return DM_EXIT_OK;
}

/* ---- test ---- */

static int s_test(const dm_cli_args_t *a)
{
    if (a->npos < 3 || (a->npos > 3 && !dm_cli_get(a, "policies"))) {
        fprintf(stderr, "%s: usage: dmctl policy test CASES.yaml [--policies FILE...]   "
                        "(without --policies: the node's published documents)\n", P);
        return DM_EXIT_USAGE;
    }
    dm_buf_t cases = DM_BUF_INIT, report = DM_BUF_INIT;
    dm_policy_set_t *set = NULL;
    dm_diags_t diags = DM_DIAGS_INIT;
    int status = DM_EXIT_USAGE;
    if (dm_dmctl_read_file(a->pos[2], &cases) != 0)
        goto out;
    status = dm_dmctl_policy_set(a, 3, true, &set);
    if (status != DM_EXIT_OK)
        goto out;
    size_t failed = 0;
    if (dm_policy_run_cases(set, a->pos[2], cases.data ? cases.data : "", cases.len, &report,
                            &failed, &diags) != DM_OK) {
        dm_buf_t text = DM_BUF_INIT;
        dm_diags_format(&diags, &text);
        fprintf(stderr, "%s%s: %s is not a valid cases file\n", text.data ? text.data : "", P,
                a->pos[2]);
        dm_buf_free(&text);
        status = DM_EXIT_USAGE;
        goto out;
    }
    fputs(report.data ? report.data : "", stdout);
    printf("%s: %zu case%s failed (policy version %" PRIu64 "%s)\n", failed ? "FAIL" : "ok",
           failed, failed == 1 ? "" : "s", dm_policy_set_version(set),
           dm_cli_get(a, "policies") ? ", local files" : "");
    status = failed ? DM_EXIT_FAIL : DM_EXIT_OK;
out:
    dm_policy_set_unref(&set);
    dm_diags_clear(&diags);
    dm_buf_free(&cases);
    dm_buf_free(&report);
    return status;
}

/* ---- dispatch ---- */

int dm_dmctl_policy(const dm_cli_args_t *a)
{
    static const struct {
        const char *name;
        int (*run)(const dm_cli_args_t *a);
    } cmds[] = {{"publish", s_publish}, {"rotate", s_rotate}, {"show", s_show},
                {"test", s_test}, {"withdraw", dm_dmctl_policy_withdraw}};
    const char *sub = a->npos >= 2 ? a->pos[1] : "";
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(sub, cmds[i].name) == 0)
            return cmds[i].run(a);
    if (strcmp(sub, "explain") == 0)
        return dm_dmctl_explain(a);
    s_usage_policy();
    return DM_EXIT_USAGE;
}
