/* meshq_lineage.c: meshq lineage (the mesh-wide lineage graph around a
 * product, as a table, JSON or Graphviz dot) and meshq search (ranked
 * search over the whole catalog); docs/catalog.md "Lineage", "Search". */
#include "meshq_lineage.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "transport/envelope.h"

#define S_DEPTH_MAX 64      /* DM_LINEAGE_DEPTH_MAX: the node caps it too */
#define S_SEARCH_BYTES 256  /* DM_SEARCH_QUERY_MAX */
#define S_SEARCH_LIMIT 100  /* DM_SEARCH_RESULTS_MAX */

static const char *const P = "meshq";

/* Parses --NAME as a whole number from lo to hi into *out (def when
 * absent). false after printing what would be valid. */
static bool s_uint_opt(const dm_cli_args_t *a, const char *name, unsigned lo, unsigned hi,
                       unsigned def, unsigned *out)
{
    uint64_t n;
    if (dm_cli_uint_opt(a, name, "a whole number", lo, hi, def, &n) != 0)
        return false;
    *out = (unsigned)n;
    return true;
}

/* Whether DOMAIN.NAME q is a node of rep that names no product. */
static bool s_dangling(const Dm__LineageRep *rep, const char *q)
{
    for (size_t i = 0; i < rep->n_nodes; i++) {
        const Dm__LineageNode *n = rep->nodes[i];
        size_t dl = strlen(n->domain);
        if (!n->exists && strncmp(q, n->domain, dl) == 0 && q[dl] == '.' &&
            strcmp(q + dl + 1, n->product) == 0)
            return true;
    }
    return false;
}

/* Appends s for a Graphviz double-quoted string: made safe as for a
 * terminal first (control bytes as the text \xNN, invalid UTF-8 as
 * U+FFFD: a node's text is hostile), then '"' and '\' escaped, so no byte
 * of s ends the string or reads as one of Graphviz's escapes. */
static void s_dot_text(dm_buf_t *o, const char *s)
{
    dm_buf_t t = DM_BUF_INIT;
    dm_cli_text(&t, s, strlen(s));
    for (size_t i = 0; i < t.len; i++) {
        if (t.data[i] == '"' || t.data[i] == '\\')
            dm_buf_putc(o, '\\');
        dm_buf_putc(o, t.data[i]);
    }
    dm_buf_free(&t);
}

/* A Graphviz ID: s in double quotes (s_dot_text). */
static void s_dot_id(dm_buf_t *o, const char *s)
{
    dm_buf_putc(o, '"');
    s_dot_text(o, s);
    dm_buf_putc(o, '"');
}

/* A node's label: its name, then its own health, then what degrades it
 * from upstream (the table's HEALTH and NOTE), one line each. */
static void s_dot_label(dm_buf_t *o, const Dm__LineageNode *n, const char *q)
{
    dm_buf_puts(o, " [label=\"");
    s_dot_text(o, q);
    if (!n->exists) {
        dm_buf_puts(o, "\\n(dangling: no such product)");
    } else {
        const char *lines[] = {n->health, n->degraded};
        for (size_t i = 0; i < 2; i++) {
            if (!lines[i][0])
                continue;
            dm_buf_puts(o, "\\n(");
            s_dot_text(o, lines[i]);
            dm_buf_putc(o, ')');
        }
    }
    dm_buf_putc(o, '"');
}

static void s_lineage_dot(const Dm__LineageRep *rep, const char *start, dm_buf_t *o)
{
    dm_buf_puts(o, "digraph lineage {\n  rankdir=LR;\n  node [shape=box];\n");
    for (size_t i = 0; i < rep->n_nodes; i++) {
        const Dm__LineageNode *n = rep->nodes[i];
        dm_buf_t q = DM_BUF_INIT;
        dm_buf_printf(&q, "%s.%s", n->domain, n->product);
        dm_buf_puts(o, "  ");
        s_dot_id(o, q.data);
        s_dot_label(o, n, q.data);
        if (!n->exists)
            dm_buf_puts(o, ", style=dashed, color=red");
        else if (strcmp(q.data, start) == 0)
            dm_buf_puts(o, ", style=bold");
        dm_buf_puts(o, "];\n");
        dm_buf_free(&q);
    }
    for (size_t i = 0; i < rep->n_edges; i++) {
        dm_buf_puts(o, "  ");
        s_dot_id(o, rep->edges[i]->from);
        dm_buf_puts(o, " -> ");
        s_dot_id(o, rep->edges[i]->to);
        dm_buf_puts(o, s_dangling(rep, rep->edges[i]->from) ? " [style=dashed, color=red];\n"
                                                            : ";\n");
    }
    if (rep->truncated)
        dm_buf_puts(o, "  // truncated: the depth or the node cap cut the walk\n");
    dm_buf_puts(o, "}\n");
}

static void s_lineage_json(const Dm__LineageRep *rep, const char *start, dm_buf_t *o)
{
    dm_buf_puts(o, "{\"start\":");
    dm_cli_json_string(o, start, strlen(start));
    dm_buf_puts(o, ",\"nodes\":[");
    for (size_t i = 0; i < rep->n_nodes; i++) {
        const Dm__LineageNode *n = rep->nodes[i];
        dm_buf_puts(o, i ? ",{\"domain\":" : "{\"domain\":");
        dm_cli_json_string(o, n->domain, strlen(n->domain));
        dm_buf_puts(o, ",\"product\":");
        dm_cli_json_string(o, n->product, strlen(n->product));
        dm_buf_printf(o, ",\"exists\":%s,\"dangling\":%s,\"depth\":%" PRIu32 ",\"health\":",
                      n->exists ? "true" : "false", n->exists ? "false" : "true", n->depth);
        dm_cli_json_string(o, n->health, strlen(n->health));
        dm_buf_puts(o, ",\"degraded\":");
        dm_cli_json_string(o, n->degraded, strlen(n->degraded));
        dm_buf_putc(o, '}');
    }
    dm_buf_puts(o, "],\"edges\":[");
    for (size_t i = 0; i < rep->n_edges; i++) {
        const Dm__LineageEdge *e = rep->edges[i];
        dm_buf_puts(o, i ? ",{\"from\":" : "{\"from\":");
        dm_cli_json_string(o, e->from, strlen(e->from));
        dm_buf_puts(o, ",\"to\":");
        dm_cli_json_string(o, e->to, strlen(e->to));
        dm_buf_printf(o, ",\"dangling\":%s}", s_dangling(rep, e->from) ? "true" : "false");
    }
    dm_buf_printf(o, "],\"truncated\":%s}\n", rep->truncated ? "true" : "false");
}

static void s_lineage_table(const Dm__LineageRep *rep, dm_buf_t *o)
{
    dm_cli_table_t t;
    dm_cli_table_init(&t, 4, 1u << 1);
    const char *head[] = {"PRODUCT", "DEPTH", "HEALTH", "NOTE"};
    dm_cli_table_add(&t, head);
    for (size_t i = 0; i < rep->n_nodes; i++) {
        const Dm__LineageNode *n = rep->nodes[i];
        dm_buf_t q = DM_BUF_INIT, health = DM_BUF_INIT, note = DM_BUF_INIT;
        dm_buf_printf(&q, "%s.%s", n->domain, n->product);
        dm_cli_text(&health, n->health, strlen(n->health));
        if (!n->exists)
            dm_buf_puts(&note, "DANGLING: named upstream, no such product in the catalog");
        else
            dm_cli_text(&note, n->degraded, strlen(n->degraded));
        char depth[16];
        snprintf(depth, sizeof depth, "%" PRIu32, n->depth);
        const char *row[] = {q.data, depth, health.len ? health.data : "-",
                             note.len ? note.data : ""};
        dm_cli_table_add(&t, row);
        dm_buf_free(&q);
        dm_buf_free(&health);
        dm_buf_free(&note);
    }
    dm_cli_table_print(&t, stdout);
    dm_cli_table_free(&t);
    dm_buf_puts(o, rep->n_edges ? "\nEDGES (upstream -> downstream)\n" : "\nno edges\n");
    for (size_t i = 0; i < rep->n_edges; i++)
        dm_buf_printf(o, "  %s -> %s%s\n", rep->edges[i]->from, rep->edges[i]->to,
                      s_dangling(rep, rep->edges[i]->from) ? "   (dangling upstream)" : "");
    if (rep->truncated)
        dm_buf_puts(o, "truncated: the depth or the node cap cut the walk (--depth N goes "
                       "deeper, up to 64)\n");
}

/* dm_cli_request, but a refusal is printed with one prefix: the node's
 * message already begins "lineage: " or "search: " (what), so it follows
 * "meshq: " as is; a message without it gets "meshq: what: ". */
static int s_request(const dm_cli_args_t *a, Dm__Envelope *req, Dm__Envelope__BodyCase expect,
                     const char *what, Dm__Envelope **rep)
{
    *rep = NULL;
    dm_rpc_client_t *client = NULL;
    int status = dm_cli_connect(a, &client);
    if (status != DM_EXIT_OK)
        return status;
    dm_buf_t why = DM_BUF_INIT;
    size_t wl = strlen(what);
    if (dm_rpc_client_call(client, req, rep, &why) != DM_OK) {
        fprintf(stderr, "%s: %s\n", P, why.data ? why.data : "the call failed");
        status = DM_EXIT_USAGE;
    } else if ((*rep)->body_case == DM__ENVELOPE__BODY_ERROR) {
        dm_buf_t m = DM_BUF_INIT; /* the node's text, made safe for a terminal */
        const char *msg = (*rep)->error && (*rep)->error->message ? (*rep)->error->message : "";
        dm_cli_text(&m, msg, strlen(msg));
        bool own = strncmp(msg, what, wl) == 0 && msg[wl] == ':' && msg[wl + 1] == ' ';
        fprintf(stderr, "%s: %s%s%s\n", P, own ? "" : what, own ? "" : ": ",
                m.len ? m.data : "error");
        dm_buf_free(&m);
        status = DM_EXIT_FAIL;
    } else if ((*rep)->body_case != expect) {
        fprintf(stderr, "%s: %s: unexpected reply from the node\n", P, what);
        status = DM_EXIT_USAGE;
    }
    if (status != DM_EXIT_OK && *rep) {
        dm__envelope__free_unpacked(*rep, NULL);
        *rep = NULL;
    }
    dm_buf_free(&why);
    dm_rpc_client_destroy(&client);
    return status;
}

static const char *const s_lineage_usage =
    "meshq lineage DOMAIN/PRODUCT [--upstream|--downstream] [--depth N] "
    "[--format table|json|dot]";

int dm_meshq_lineage_walk(const dm_cli_args_t *a)
{
    dm_cli_qualified_t q;
    if (dm_cli_product_arg(a, s_lineage_usage, &q) != DM_EXIT_OK)
        return DM_EXIT_USAGE;
    const char *fmt = dm_cli_get(a, "format");
    if (fmt && dm_cli_get(a, "json") && strcmp(fmt, "json") != 0) {
        fprintf(stderr, "%s: lineage: --json and --format %s disagree: give one of them\n", P,
                fmt);
        return DM_EXIT_USAGE;
    }
    if (!fmt)
        fmt = dm_cli_get(a, "json") ? "json" : "table";
    if (strcmp(fmt, "table") && strcmp(fmt, "json") && strcmp(fmt, "dot")) {
        fprintf(stderr, "%s: invalid --format '%s' for lineage: expected table, json or dot\n", P,
                fmt);
        return DM_EXIT_USAGE;
    }
    unsigned depth;
    if (!s_uint_opt(a, "depth", 1, S_DEPTH_MAX, 0, &depth))
        return DM_EXIT_USAGE;
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__LineageReq body = DM__LINEAGE_REQ__INIT;
    body.domain = (char *)q.domain;
    body.product = (char *)q.product;
    body.upstream = dm_cli_get(a, "upstream") != NULL;
    body.downstream = dm_cli_get(a, "downstream") != NULL;
    body.depth = depth;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_LINEAGE_REQ, &body);
    Dm__Envelope *rep = NULL;
    int status = s_request(a, &req, DM__ENVELOPE__BODY_LINEAGE_REP, "lineage", &rep);
    if (status != DM_EXIT_OK)
        return status;
    char start[DM_CLI_QUALIFIED_MAX + 1];
    snprintf(start, sizeof start, "%s.%s", q.domain, q.product);
    dm_buf_t o = DM_BUF_INIT;
    if (strcmp(fmt, "dot") == 0)
        s_lineage_dot(rep->lineage_rep, start, &o);
    else if (strcmp(fmt, "json") == 0)
        s_lineage_json(rep->lineage_rep, start, &o);
    else
        s_lineage_table(rep->lineage_rep, &o);
    fputs(o.data ? o.data : "", stdout);
    dm_buf_free(&o);
    dm__envelope__free_unpacked(rep, NULL);
    return DM_EXIT_OK;
}

static void s_search_print(const Dm__SearchRep *r, bool json)
{
    dm_buf_t o = DM_BUF_INIT;
    if (json) {
        dm_buf_putc(&o, '[');
        for (size_t i = 0; i < r->n_hits; i++) {
            const Dm__SearchHit *h = r->hits[i];
            dm_buf_printf(&o, "%s{\"rank\":%zu,\"domain\":", i ? "," : "", i + 1);
            dm_cli_json_string(&o, h->domain, strlen(h->domain));
            dm_buf_puts(&o, ",\"product\":");
            dm_cli_json_string(&o, h->product, strlen(h->product));
            dm_buf_printf(&o, ",\"score\":%.4f,\"matched\":", h->score);
            dm_cli_json_string(&o, h->matched, strlen(h->matched));
            dm_buf_puts(&o, ",\"description\":");
            dm_cli_json_string(&o, h->description, strlen(h->description));
            dm_buf_putc(&o, '}');
        }
        dm_buf_puts(&o, "]\n");
        fputs(o.data, stdout);
        dm_buf_free(&o);
        return;
    }
    if (r->n_hits == 0) {
        printf("no product matches\n");
        return;
    }
    dm_cli_table_t t;
    dm_cli_table_init(&t, 5, 1u << 0 | 1u << 1);
    const char *head[] = {"RANK", "SCORE", "PRODUCT", "MATCHED", "DESCRIPTION"};
    dm_cli_table_add(&t, head);
    for (size_t i = 0; i < r->n_hits; i++) {
        const Dm__SearchHit *h = r->hits[i];
        char rank[24], score[32];
        snprintf(rank, sizeof rank, "%zu", i + 1);
        snprintf(score, sizeof score, "%.2f", h->score);
        dm_buf_t q = DM_BUF_INIT, desc = DM_BUF_INIT, m = DM_BUF_INIT;
        dm_buf_printf(&q, "%s.%s", h->domain, h->product);
        dm_cli_text(&desc, h->description, strlen(h->description));
        dm_cli_text(&m, h->matched, strlen(h->matched));
        const char *row[] = {rank, score, q.data, m.len ? m.data : "",
                             desc.len ? desc.data : ""};
        dm_cli_table_add(&t, row);
        dm_buf_free(&q);
        dm_buf_free(&desc);
        dm_buf_free(&m);
    }
    dm_cli_table_print(&t, stdout);
    dm_cli_table_free(&t);
}

int dm_meshq_lineage_search(const dm_cli_args_t *a)
{
    if (a->npos < 2) {
        fprintf(stderr, "%s: usage: meshq search WORDS... [--limit N] [--json]\n", P);
        return DM_EXIT_USAGE;
    }
    unsigned limit;
    if (!s_uint_opt(a, "limit", 1, S_SEARCH_LIMIT, 0, &limit))
        return DM_EXIT_USAGE;
    if (dm_cli_get(a, "format")) {
        fprintf(stderr, "%s: search takes no --format; --json prints JSON\n", P);
        return DM_EXIT_USAGE;
    }
    dm_buf_t words = DM_BUF_INIT;
    for (int i = 1; i < a->npos; i++)
        dm_buf_printf(&words, "%s%s", i > 1 ? " " : "", a->pos[i]);
    if (words.len > S_SEARCH_BYTES) {
        fprintf(stderr, "%s: the search words are %zu bytes; at most %d are searched\n", P,
                words.len, S_SEARCH_BYTES);
        dm_buf_free(&words);
        return DM_EXIT_USAGE;
    }
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__SearchReq body = DM__SEARCH_REQ__INIT;
    body.words = words.data;
    body.limit = limit;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_SEARCH_REQ, &body);
    Dm__Envelope *rep = NULL;
    int status = s_request(a, &req, DM__ENVELOPE__BODY_SEARCH_REP, "search", &rep);
    dm_buf_free(&words);
    if (status != DM_EXIT_OK)
        return status;
    s_search_print(rep->search_rep, dm_cli_get(a, "json") != NULL);
    dm__envelope__free_unpacked(rep, NULL);
    return DM_EXIT_OK;
}

/* ---- per-command help ---- */

static const char *const s_lineage_help =
    "usage: meshq lineage DOMAIN/PRODUCT [--upstream|--downstream] [--depth N]\n"
    "                     [--format table|json|dot] [global options]\n"
    "\n"
    "The mesh-wide lineage graph around a product, from the contracts'\n"
    "lineage.upstream entries in the catalog of the node you ask (any node: it\n"
    "need not own the product). Products you may not describe are left out.\n"
    "\n"
    "Options:\n"
    "  --upstream       walk only towards the product's sources\n"
    "  --downstream     walk only towards what is built from it\n"
    "                   (neither: both ways)\n"
    "  --depth N        how many edges away from the product, 1 to 64 (default 8);\n"
    "                   a walk the depth or the node's cap cuts says \"truncated\"\n"
    "  --format FORMAT  table (default): PRODUCT, DEPTH, HEALTH (its own), NOTE\n"
    "                   (\"upstream degraded: ...\" with the cause, or DANGLING),\n"
    "                   then the edges, upstream -> downstream;\n"
    "                   json: {\"start\", \"nodes\": [{domain, product, exists,\n"
    "                   dangling, depth, health, degraded}], \"edges\": [{from, to,\n"
    "                   dangling}], \"truncated\"} (--json is the same);\n"
    "                   dot: a Graphviz digraph; each box is labelled with the\n"
    "                   product, its own health, then its upstream cause; a\n"
    "                   dangling upstream (named by a contract, no such product)\n"
    "                   is dashed red\n"
    "  --node, --data, --identity, --timeout: as for every command (meshq --help)\n"
    "\n"
    "Examples:\n"
    "  meshq lineage commerce/orders\n"
    "  meshq lineage logistics/inventory --downstream --depth 2 --format json\n"
    "  meshq lineage commerce/orders --format dot | dot -Tsvg > orders.svg\n"
    "\n"
    "Exit status: 0 shown; 1 the node refused (no such product, or you may not\n"
    "describe it); 2 usage or connection error.\n";

static const char *const s_search_help =
    "usage: meshq search WORDS... [--limit N] [--json] [global options]\n"
    "\n"
    "Products of the whole mesh (the catalog of the node you ask) ranked by where\n"
    "the words match: the product's name first, then its tags and domain, then\n"
    "its field names, then its description and owner; a word counts in full where\n"
    "a token equals it, half where one begins with it (\"order\" finds orderId),\n"
    "and rarer words count more. Products you may not describe are left out.\n"
    "\n"
    "Options:\n"
    "  --limit N        at most N products, 1 to 100 (default 20)\n"
    "  --json           [{rank, domain, product, score, matched, description}]\n"
    "                   (else a table: RANK, SCORE, PRODUCT, MATCHED, DESCRIPTION)\n"
    "  --node, --data, --identity, --timeout: as for every command (meshq --help)\n"
    "\n"
    "Words: up to 16 distinct, 256 bytes in all; only letters and digits count.\n"
    "\n"
    "Examples:\n"
    "  meshq search orders\n"
    "  meshq search stock warehouse --limit 5 --json\n"
    "\n"
    "Exit status: 0 shown (also when nothing matches); 1 the node refused the\n"
    "query (e.g. no words); 2 usage or connection error.\n";

int dm_meshq_lineage_help(int argc, char **argv, const dm_cli_optspec_t *specs, size_t nspecs)
{
    dm_cli_args_t a;
    if (dm_cli_parse(P, argc, argv, specs, nspecs, &a) != 0)
        return DM_EXIT_USAGE; /* it said why, as dm_cli_main would */
    int at = a.npos > 1 && strcmp(a.pos[0], "help") == 0 ? 1 : 0;
    if (a.npos <= at || (at == 0 && !dm_cli_get(&a, "help")))
        return -1;
    if (strcmp(a.pos[at], "lineage") == 0)
        fputs(s_lineage_help, stdout);
    else if (strcmp(a.pos[at], "search") == 0)
        fputs(s_search_help, stdout);
    else
        return -1;
    return DM_EXIT_OK;
}
