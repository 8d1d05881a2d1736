/* dmctl_gov.c: governance files and the node's policies for dmctl's
 * commands: reading a file whole, splitting a YAML stream into its
 * documents (each is published as its own catalog entry, byte for byte),
 * parsing them with policy/policy.h, and building a policy set from local
 * files or from what the node publishes (PolicyGetReq); signing a
 * governance entry and sending it (PolicyPublishReq) as the governance
 * identity, the version it takes, and the withdrawal of a document. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "dmctl.h"

#include "base/clock.h"
#include "base/lines.h"
#include "catalog/catalog.h"
#include "transport/envelope.h"

static const char *const P = "dmctl";

bool dm_dmctl_node_given(const dm_cli_args_t *a)
{
    const char *env = getenv(DM_CLI_ENV_NODE);
    return dm_cli_get(a, "node") || dm_cli_get(a, "data") || (env && *env);
}

int dm_dmctl_read_file(const char *path, dm_buf_t *out)
{
    int fd = -1;
    dm_buf_t why = DM_BUF_INIT;
    dm_buf_reset(out);
    if (dm_lines_open_read(path, DM_FILE_REGULAR, &fd, &why) != DM_OK) {
        fprintf(stderr, "%s: cannot read %s: %s\n", P, path, why.len ? why.data : "?");
        dm_buf_free(&why);
        return -1;
    }
    int rc = 0;
    char chunk[65536];
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            fprintf(stderr, "%s: cannot read %s: %s\n", P, path, strerror(errno));
            rc = -1;
            break;
        }
        if (got == 0)
            break;
        if (out->len + (size_t)got > DM_DMCTL_FILE_MAX) {
            fprintf(stderr, "%s: cannot read %s: longer than %zu bytes, the most a governance "
                            "or cases file may hold\n", P, path, DM_DMCTL_FILE_MAX);
            rc = -1;
            break;
        }
        dm_buf_append(out, chunk, (size_t)got);
    }
    close(fd);
    dm_buf_free(&why);
    return rc;
}

/* Appends a span; aborts on out of memory as dm_buf does. */
static void s_span_add(dm_dmctl_span_t **spans, size_t *n, size_t *cap, dm_dmctl_span_t s)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        *spans = realloc(*spans, *cap * sizeof **spans);
        if (!*spans) {
            fputs("fatal: out of memory\n", stderr);
            abort();
        }
    }
    (*spans)[(*n)++] = s;
}

int dm_dmctl_yaml_split(const char *name, const char *buf, size_t len, dm_dmctl_span_t **spans,
                        size_t *n)
{
    *spans = NULL;
    *n = 0;
    size_t cap = 0;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fprintf(stderr, "%s: out of memory\n", P);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(buf ? buf : ""), len);
    dm_dmctl_span_t cur = {0};
    int rc = 0;
    size_t events = 0;   /* of the current document */
    bool empty = false;  /* its one event is an empty plain scalar (a trailing "---") */
    for (bool end = false; !end;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&parser, &e)) {
            fprintf(stderr, "%s:%zu:%zu: error: YAML syntax error: %s\n", name,
                    parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                    parser.problem ? parser.problem : "malformed YAML");
            rc = -1;
            break;
        }
        if (e.type == YAML_DOCUMENT_START_EVENT) {
            cur.off = e.start_mark.index;
            cur.line = (unsigned)e.start_mark.line;
            events = 0;
        } else if (e.type == YAML_DOCUMENT_END_EVENT) {
            cur.len = e.end_mark.index > cur.off ? e.end_mark.index - cur.off : 0;
            if (!(events == 1 && empty))
                s_span_add(spans, n, &cap, cur);
        } else if (++events == 1) {
            empty = e.type == YAML_SCALAR_EVENT && e.data.scalar.length == 0 &&
                    e.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        }
        end = e.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&parser);
    if (rc != 0) {
        free(*spans);
        *spans = NULL;
        *n = 0;
    }
    return rc;
}

/* Parses one document of d, numbering lines as in the whole file (the
 * document is parsed behind as many newlines as lines precede it). */
static dm_err s_parse_doc(const dm_dmctl_docs_t *d, const dm_dmctl_span_t *s,
                          dm_policy_doc_t **out, dm_diags_t *diags)
{
    const char *text = d->text.data + s->off;
    if (s->len + s->line > DM_POLICY_MAX_DOC_BYTES)
        return dm_policy_doc_parse(d->path, text, s->len, out, diags);
    dm_buf_t padded = DM_BUF_INIT;
    for (unsigned i = 0; i < s->line; i++)
        dm_buf_putc(&padded, '\n');
    dm_buf_append(&padded, text, s->len);
    dm_err rc = dm_policy_doc_parse(d->path, padded.data, padded.len, out, diags);
    dm_buf_free(&padded);
    return rc;
}

int dm_dmctl_docs_load(const char *path, dm_dmctl_docs_t *out)
{
    memset(out, 0, sizeof *out);
    out->path = strdup(path);
    int status = DM_EXIT_USAGE;
    if (!out->path || dm_dmctl_read_file(path, &out->text) != 0)
        goto fail;
    status = DM_EXIT_FAIL;
    if (dm_dmctl_yaml_split(path, out->text.data, out->text.len, &out->spans, &out->n) != 0)
        goto fail;
    if (out->n == 0) {
        fprintf(stderr, "%s:1:1: error: no governance document: the file is empty or holds only "
                        "comments\n", path);
        goto fail;
    }
    out->docs = calloc(out->n, sizeof *out->docs);
    if (!out->docs)
        goto fail;
    dm_diags_t diags = DM_DIAGS_INIT;
    bool bad = false;
    for (size_t i = 0; i < out->n; i++) {
        if (s_parse_doc(out, &out->spans[i], &out->docs[i], &diags) != DM_OK)
            bad = true;
        for (size_t k = 0; !bad && k < i; k++)
            if (strcmp(dm_policy_doc_name(out->docs[k]), dm_policy_doc_name(out->docs[i])) == 0) {
                dm_diags_add(&diags, path, out->spans[i].line + 1, 1,
                             "a second document named '%s' (the first is at line %u): each "
                             "document of a file needs its own metadata.name",
                             dm_policy_doc_name(out->docs[i]), out->spans[k].line + 1);
                bad = true;
            }
    }
    if (bad) {
        dm_buf_t text = DM_BUF_INIT;
        dm_diags_format(&diags, &text);
        fputs(text.data ? text.data : "", stderr);
        dm_buf_free(&text);
    }
    dm_diags_clear(&diags);
    if (!bad)
        return DM_EXIT_OK;
fail:
    dm_dmctl_docs_free(out);
    return status;
}

void dm_dmctl_docs_free(dm_dmctl_docs_t *d)
{
    for (size_t i = 0; d->docs && i < d->n; i++)
        dm_policy_doc_destroy(&d->docs[i]);
    free(d->docs);
    free(d->spans);
    free(d->path);
    dm_buf_free(&d->text);
    memset(d, 0, sizeof *d);
}

/* Adds doc to s (taking it), printing why on a refusal. */
static int s_add(dm_policy_set_t *s, dm_policy_doc_t **doc, const char *where)
{
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = dm_policy_set_add(s, doc, &why);
    if (rc != DM_OK)
        fprintf(stderr, "%s: %s: %s\n", P, where, why.len ? why.data : dm_err_str(rc));
    dm_buf_free(&why);
    return rc == DM_OK ? 0 : -1;
}

/* Seals s into *out, or destroys it; the exit status. */
static int s_seal(dm_policy_set_t **s, int status, dm_policy_set_t **out)
{
    if (status == DM_EXIT_OK && dm_policy_set_seal(*s) != DM_OK) {
        fprintf(stderr, "%s: out of memory\n", P);
        status = DM_EXIT_USAGE;
    }
    if (status == DM_EXIT_OK) {
        *out = *s;
        *s = NULL;
    }
    dm_policy_set_unref(s);
    return status;
}

int dm_dmctl_local_set(const char *const *paths, size_t n, dm_policy_set_t **out)
{
    *out = NULL;
    dm_policy_set_t *s = NULL;
    if (dm_policy_set_new(0, &s) != DM_OK) {
        fprintf(stderr, "%s: out of memory\n", P);
        return DM_EXIT_USAGE;
    }
    int status = DM_EXIT_OK;
    for (size_t f = 0; f < n && status == DM_EXIT_OK; f++) {
        dm_dmctl_docs_t d;
        if (dm_dmctl_docs_load(paths[f], &d) != DM_EXIT_OK) {
            status = DM_EXIT_USAGE;
            break;
        }
        for (size_t i = 0; i < d.n && status == DM_EXIT_OK; i++)
            if (s_add(s, &d.docs[i], paths[f]) != 0)
                status = DM_EXIT_USAGE;
        dm_dmctl_docs_free(&d);
    }
    return s_seal(&s, status, out);
}

int dm_dmctl_policy_get(const dm_cli_args_t *a, Dm__Envelope **rep)
{
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__PolicyGetReq body = DM__POLICY_GET_REQ__INIT;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_POLICY_GET_REQ, &body);
    return dm_cli_request(a, &req, DM__ENVELOPE__BODY_POLICY_GET_REP, "policy", rep);
}

int dm_dmctl_node_set(const Dm__PolicyGetRep *r, dm_policy_set_t **out)
{
    *out = NULL;
    dm_policy_set_t *s = NULL;
    if (dm_policy_set_new(r->policy_version, &s) != DM_OK) {
        fprintf(stderr, "%s: out of memory\n", P);
        return DM_EXIT_USAGE;
    }
    int status = DM_EXIT_OK;
    dm_diags_t diags = DM_DIAGS_INIT;
    for (size_t i = 0; i < r->n_docs && status == DM_EXIT_OK; i++) {
        const Dm__PolicyDoc *pd = r->docs[i];
        dm_policy_doc_t *doc = NULL;
        if (dm_policy_doc_parse(pd->key, (const char *)pd->yaml.data, pd->yaml.len, &doc,
                                &diags) != DM_OK) {
            dm_buf_t text = DM_BUF_INIT;
            dm_diags_format(&diags, &text);
            fprintf(stderr, "%s%s: the node's document %s does not parse here (is dmctl older "
                            "than the node?)\n", text.data ? text.data : "", P, pd->key);
            dm_buf_free(&text);
            status = DM_EXIT_USAGE;
        } else if (s_add(s, &doc, pd->key) != 0) {
            status = DM_EXIT_USAGE;
        }
    }
    dm_diags_clear(&diags);
    return s_seal(&s, status, out);
}

int dm_dmctl_policy_files(const dm_cli_args_t *a, int first, const char **paths, size_t cap)
{
    const char *v = dm_cli_get(a, "policies");
    if (!v)
        return 0;
    if (!*v) {
        fprintf(stderr, "%s: --policies needs a FILE\n", P);
        return -1;
    }
    size_t n = 0;
    paths[n++] = v;
    for (int i = first; i < a->npos; i++) {
        if (n == cap) {
            fprintf(stderr, "%s: too many policy files (at most %zu)\n", P, cap);
            return -1;
        }
        paths[n++] = a->pos[i];
    }
    return (int)n;
}

int dm_dmctl_policy_set(const dm_cli_args_t *a, int first, bool need_node, dm_policy_set_t **out)
{
    *out = NULL;
    const char *paths[DM_DMCTL_MAX_FILES];
    int n = dm_dmctl_policy_files(a, first, paths, DM_DMCTL_MAX_FILES);
    if (n < 0)
        return DM_EXIT_USAGE;
    if (n > 0)
        return dm_dmctl_local_set(paths, (size_t)n, out);
    if (!need_node && !dm_dmctl_node_given(a))
        return DM_EXIT_OK;
    Dm__Envelope *rep = NULL;
    int status = dm_dmctl_policy_get(a, &rep);
    if (status != DM_EXIT_OK)
        return status;
    status = dm_dmctl_node_set(rep->policy_get_rep, out);
    dm__envelope__free_unpacked(rep, NULL);
    return status;
}

/* ---- signing governance entries ---- */

/* Builds the entry (origin: id, key, version, now, payload), signs its
 * signed bytes with id and sends it as a PolicyPublishReq. The exit status;
 * on DM_EXIT_OK *rep is the caller's. */
int dm_dmctl_policy_sign_send(const dm_cli_args_t *a, const dm_identity_t *id, const char *key,
                              uint64_t version, const void *payload, size_t len, Dm__Envelope **rep)
{
    dm_catalog_entry_t e;
    memset(&e, 0, sizeof e);
    memcpy(e.origin, dm_identity_public(id), DM_ID_PUBLIC_BYTES);
    e.key = (char *)key;
    e.version = version;
    e.issued_at_ms = dm_clock_wall_ms();
    e.payload = (uint8_t *)payload;
    e.payload_len = len;
    e.tombstone = payload == NULL; /* a withdrawal */
    dm_buf_t signed_bytes = DM_BUF_INIT, wire = DM_BUF_INIT, why = DM_BUF_INIT;
    dm_catalog_entry_signed_bytes(&e, &signed_bytes);
    int status = DM_EXIT_OK;
    if (dm_identity_sign(id, signed_bytes.data, signed_bytes.len, e.signature, &why) != DM_OK) {
        fprintf(stderr, "%s: cannot sign %s: %s\n", P, key, why.len ? why.data : "?");
        status = DM_EXIT_USAGE;
        goto out;
    }
    dm_catalog_entry_encode(&e, &wire);
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__PolicyPublishReq body = DM__POLICY_PUBLISH_REQ__INIT;
    body.entry.data = (uint8_t *)wire.data;
    body.entry.len = wire.len;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_POLICY_PUBLISH_REQ, &body);
    char what[300];
    snprintf(what, sizeof what, "policy publish %s", key);
    status = dm_cli_request(a, &req, DM__ENVELOPE__BODY_POLICY_PUBLISH_REP, what, rep);
out:
    dm_buf_free(&signed_bytes);
    dm_buf_free(&wire);
    dm_buf_free(&why);
    return status;
}

/* Loads the caller's identity and the node's governance state, and checks
 * that the caller is the governance key. The exit status; on DM_EXIT_OK
 * *id and *rep are the caller's. */
int dm_dmctl_policy_as_governance(const dm_cli_args_t *a, const char *cmd, dm_identity_t **id,
                                  Dm__Envelope **rep)
{
    const char *path = NULL;
    *rep = NULL;
    int status = dm_cli_identity(a, id, &path);
    if (status != DM_EXIT_OK)
        return status;
    status = dm_dmctl_policy_get(a, rep);
    if (status != DM_EXIT_OK)
        goto fail;
    const Dm__PolicyGetRep *r = (*rep)->policy_get_rep;
    char me[DM_ID_HEX_BYTES], gov[DM_ID_HEX_BYTES];
    dm_identity_hex(*id, me);
    if (r->governance_key.len != DM_ID_PUBLIC_BYTES) {
        fprintf(stderr, "%s: policy %s: the node has no governance key (start every node with "
                        "meshd --governance KEY)\n", P, cmd);
        status = DM_EXIT_FAIL;
        goto fail;
    }
    dm_cli_hex(gov, &r->governance_key, DM_ID_PUBLIC_BYTES);
    if (strcmp(me, gov) != 0) {
        fprintf(stderr, "%s: policy %s: you are %s (%s), the mesh's governance key is %s "
                        "(act as it with --identity FILE)\n", P, cmd, me, path ? path : "?", gov);
        status = DM_EXIT_FAIL;
        goto fail;
    }
    return DM_EXIT_OK;
fail:
    if (*rep)
        dm__envelope__free_unpacked(*rep, NULL);
    *rep = NULL;
    dm_identity_destroy(id);
    return status;
}

uint64_t dm_dmctl_gov_last_version(const Dm__PolicyGetRep *r)
{
    return r->max_version > r->policy_version ? r->max_version : r->policy_version;
}

/* Whether the node reports key among its active documents. */
static bool s_active(const Dm__PolicyGetRep *r, const char *key)
{
    for (size_t i = 0; i < r->n_docs; i++)
        if (r->docs[i]->key && strcmp(r->docs[i]->key, key) == 0)
            return true;
    return false;
}

int dm_dmctl_policy_withdraw(const dm_cli_args_t *a)
{
    if (a->npos != 3) {
        fprintf(stderr, "%s: usage: dmctl policy withdraw NAME   (as the governance identity; "
                        "NAME: a document's metadata.name, as dmctl policy show lists it)\n", P);
        return DM_EXIT_USAGE;
    }
    char key[DM_CATALOG_KEY_MAX];
    int klen = snprintf(key, sizeof key, "%s%s", DM_CATALOG_GOV_DOC_PREFIX, a->pos[2]);
    if (klen < 0 || (size_t)klen >= sizeof key) {
        fprintf(stderr, "%s: policy withdraw: name '%.80s...' is too long: a document name has "
                        "at most %d characters\n", P, a->pos[2], DM_CATALOG_NAME_MAX);
        return DM_EXIT_USAGE;
    }
    dm_identity_t *id = NULL;
    Dm__Envelope *rep = NULL;
    int status = dm_dmctl_policy_as_governance(a, "withdraw", &id, &rep);
    if (status != DM_EXIT_OK)
        return status;
    const Dm__PolicyGetRep *g = rep->policy_get_rep;
    Dm__Envelope *prep = NULL;
    if (!s_active(g, key)) {
        fprintf(stderr, "%s: policy withdraw: the node has no active document %s (dmctl policy "
                        "show lists them); nothing withdrawn\n", P, key);
        status = DM_EXIT_FAIL;
    } else {
        status = dm_dmctl_policy_sign_send(a, id, key, dm_dmctl_gov_last_version(g) + 1, NULL,
                                           0, &prep);
    }
    if (status == DM_EXIT_OK) {
        const Dm__PolicyPublishRep *r = prep->policy_publish_rep;
        printf("withdrew %s at version %" PRIu64 "; policy version %" PRIu64 "\n", key,
               r->version, r->policy_version);
        dm__envelope__free_unpacked(prep, NULL);
    }
    dm__envelope__free_unpacked(rep, NULL);
    dm_identity_destroy(&id);
    return status;
}
