/* meshq.c: the consumer's tool: list and describe data products, list the
 * mesh's members, and ask a node in SQL. Query results stream: meshq holds one batch at a time
 * (table format: a bounded window of rows for alignment), decodes it with
 * transport/rowbatch.h and prints values as the sqlite3 shell would,
 * without linking SQLite or the query engine. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "meshq_describe.h"
#include "meshq_grant.h"
#include "meshq_health.h"
#include "meshq_lineage.h"
#include "contract/contract.h"
#include "identity/identity.h"
#include "contract/types.h"
#include "transport/rowbatch.h"
#include "base/version.h"
#include "transport/envelope.h"
#include "transport/grant.h"
#include "base/clock.h"

#define DM_MESHQ_BATCH_ROWS 10000 /* rows asked per pull */
#define DM_MESHQ_TABLE_WINDOW 1000 /* rows buffered to align a table */
#define DM_MESHQ_CELL_MAX 60       /* table cells are cut beyond this (code points) */

static const char *const P = "meshq";

static const dm_cli_optspec_t s_opts[] = {
    {"node", true}, {"data", true}, {"json", false}, {"timeout", true},
    {"help", false}, {"version", false}, {"format", true}, {"identity", true},
    {"explain", false}, {"grant-life", true}, {"upstream", false}, {"downstream", false},
    {"depth", true}, {"limit", true},
};

typedef enum { F_TABLE, F_CSV, F_JSON, F_JSONL } s_format;

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: meshq [global options] COMMAND [arguments]\n"
            "\n"
            "  products                      the data products of the whole mesh: domain, name,\n"
            "                                version, owner, access, records (this node's),\n"
            "                                HEALTH (pass/warn/fail, sla breached, upstream\n"
            "                                degraded; the cause under the table);\n"
            "                                UNCERTIFIED: no governance certificate vouches\n"
            "                                for its domain, so it is not served\n"
            "  members                       the mesh's nodes: id, domain, address, state\n"
            "                                (alive/suspect/dead/left), incarnation, last heard;\n"
            "                                and refused domain claims\n"
            "  describe DOMAIN/PRODUCT       a product's contract: owner, fields with types and\n"
            "                                constraints, SLA, checks, policies, lineage, counts,\n"
            "                                and its health: each check's and SLA term's result\n"
            "                                against its measured value (another node's product\n"
            "                                from the catalog, as its owner last published it)\n");
    fputs(DM_MESHQ_HELP_LINEAGE, f);
    fprintf(f,
            "  query \"SQL\" [--format table|csv|json|jsonl] [--explain]\n"
            "                                read-only SQL; products are tables named\n"
            "                                domain.product, e.g.\n"
            "                                SELECT status, count(*) FROM commerce.orders GROUP BY status\n"
            "                                (records of products you may read: public,\n"
            "                                restricted with you among its readers, private\n"
            "                                to its domain's admins; a governance policy may\n"
            "                                deny a read, mask columns or filter rows:\n"
            "                                see docs/governance.md). Products other nodes\n"
            "                                own are read through the node you ask: meshq\n"
            "                                signs a grant with your identity for that node,\n"
            "                                this SQL only, valid for 60 s, or --timeout or\n"
            "                                the node's query time limit (+5 s) if longer, at\n"
            "                                most 10 min (--grant-life SECS sets it); each\n"
            "                                owner decides on your identity, never the\n"
            "                                relaying node's.\n"
            "                                --explain: after the rows, prints to stderr,\n"
            "                                under the heading \"-- explain --\", per remote\n"
            "                                table what was pushed to its owner, the round\n"
            "                                trips and the rows and bytes that moved\n"
            "  whoami                        your identity: public key and file (give the key\n"
            "                                to a product's owner to be made a reader)\n"
            "  keygen FILE                   make a new identity in FILE\n"
            "\n"
            "Global options (before or after the command):\n"
            DM_CLI_HELP_CONNECT
            "  --json           JSON output for products, describe, lineage, search, whoami\n"
            "  --timeout SECS   give up on a silent node after SECS (default 10)\n"
            "  --help, --version\n"
            "\n"
            "Output: csv is RFC 4180 with a header (none when no row), values as the sqlite3\n"
            "shell prints them; json is one array of objects, jsonl one object per line;\n"
            "timestamps are RFC 3339.\n"
            "Exit status: 0 success; 1 the node refused the query; 2 usage or connection error.\n");
}

/* ---- value formatting ---- */

/* RFC 4180 field, quoted exactly when the sqlite3 shell quotes. The shell
 * prints sqlite3_column_text as a C string, so a TEXT or BLOB value ends at
 * its first NUL byte (an empty remainder is quoted as ""); csv cuts it there
 * too to stay byte-identical, as docs/protocol.md promises. */
static void s_csv(dm_buf_t *o, const dm_rowbatch_value_t *v)
{
    if (v->type == DM_ROWBATCH_NULL)
        return;
    dm_buf_t t = DM_BUF_INIT;
    dm_rowbatch_text(v, &t);
    if (t.data) {
        const char *nul = memchr(t.data, 0, t.len);
        if (nul)
            t.len = (size_t)(nul - t.data);
    }
    bool quote = t.len == 0;
    for (size_t i = 0; i < t.len && !quote; i++) {
        unsigned char c = (unsigned char)t.data[i];
        quote = c < 0x20 || c == ' ' || c == '"' || c == '\'' || c == ',' || c >= 0x7f;
    }
    if (!quote) {
        dm_buf_append(o, t.data ? t.data : "", t.len);
    } else {
        dm_buf_putc(o, '"');
        for (size_t i = 0; i < t.len; i++) {
            if (t.data[i] == '"')
                dm_buf_putc(o, '"');
            dm_buf_putc(o, t.data[i]);
        }
        dm_buf_putc(o, '"');
    }
    dm_buf_free(&t);
}

static void s_json_value(dm_buf_t *o, const dm_rowbatch_value_t *v)
{
    static const char hex[] = "0123456789abcdef";
    switch (v->type) {
    case DM_ROWBATCH_INT:
        dm_buf_printf(o, "%" PRId64, v->i);
        break;
    case DM_ROWBATCH_REAL:
        if (isfinite(v->d)) {
            char num[DM_ROWBATCH_REAL_TEXT_MAX];
            dm_buf_append(o, num, dm_rowbatch_real_text(v->d, num));
        } else {
            dm_buf_puts(o, "null");
        }
        break;
    case DM_ROWBATCH_TEXT:
        dm_cli_json_string(o, v->s, v->len);
        break;
    case DM_ROWBATCH_BLOB: /* as hex text: JSON has no bytes */
        dm_buf_putc(o, '"');
        for (size_t i = 0; i < v->len; i++) {
            dm_buf_putc(o, hex[(unsigned char)v->s[i] >> 4]);
            dm_buf_putc(o, hex[(unsigned char)v->s[i] & 15]);
        }
        dm_buf_putc(o, '"');
        break;
    default:
        dm_buf_puts(o, "null");
    }
}

/* ---- table output ---- */

typedef struct {
    size_t ncols;
    size_t *width;
    dm_cli_table_t window;
    bool header_done;
    char **names;
} s_table;

static size_t s_cp_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void s_table_flush(s_table *t)
{
    dm_cli_table_t *w = &t->window;
    for (size_t r = 0; r < w->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t l = s_cp_len(w->cells[r * t->ncols + c]);
            if (l > t->width[c])
                t->width[c] = l;
        }
    dm_buf_t o = DM_BUF_INIT;
    for (size_t r = 0; r < w->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = w->cells[r * t->ncols + c];
            dm_buf_puts(&o, cell);
            if (c + 1 < t->ncols)
                for (size_t pad = s_cp_len(cell); pad < t->width[c] + 2; pad++)
                    dm_buf_putc(&o, ' ');
        }
        dm_buf_putc(&o, '\n');
        if (r == 0 && !t->header_done) {
            for (size_t c = 0; c < t->ncols; c++) {
                for (size_t k = 0; k < t->width[c]; k++)
                    dm_buf_putc(&o, '-');
                if (c + 1 < t->ncols)
                    dm_buf_puts(&o, "  ");
            }
            dm_buf_putc(&o, '\n');
            t->header_done = true;
        }
    }
    if (o.len)
        fwrite(o.data, 1, o.len, stdout);
    dm_buf_free(&o);
    dm_cli_table_free(w);
    dm_cli_table_init(w, t->ncols, 0);
}

/* A table cell: text form, NULL shown as NULL, cut to DM_MESHQ_CELL_MAX
 * code points, control bytes made visible. */
static char *s_cell(const dm_rowbatch_value_t *v)
{
    dm_buf_t t = DM_BUF_INIT, o = DM_BUF_INIT;
    if (v->type == DM_ROWBATCH_NULL)
        dm_buf_puts(&t, "NULL");
    else
        dm_rowbatch_text(v, &t);
    dm_cli_text(&o, t.data ? t.data : "", t.len);
    dm_buf_free(&t);
    size_t cps = 0, i = 0;
    for (; i < o.len; i++) {
        if (((unsigned char)o.data[i] & 0xc0) != 0x80 && ++cps > DM_MESHQ_CELL_MAX)
            break;
    }
    if (i < o.len) {
        o.len = i;
        dm_buf_puts(&o, "...");
    }
    return dm_buf_steal(&o);
}

/* ---- query ---- */

typedef struct {
    s_format format;
    size_t ncols;
    char **names;
    uint64_t rows;
    s_table table;
    dm_buf_t out;
} s_printer;

/* The CSV header, printed with the first row: the sqlite3 shell's -csv
 * -header prints nothing at all for a result without rows. */
static void s_csv_header(s_printer *pr)
{
    for (size_t c = 0; c < pr->ncols; c++) {
        dm_rowbatch_value_t v = {DM_ROWBATCH_TEXT, 0, 0, pr->names[c], strlen(pr->names[c])};
        if (c)
            dm_buf_putc(&pr->out, ',');
        s_csv(&pr->out, &v);
    }
    dm_buf_putc(&pr->out, '\n');
}

static void s_begin(s_printer *pr, const Dm__QueryRep *rep)
{
    pr->ncols = rep->n_columns;
    pr->names = calloc(pr->ncols ? pr->ncols : 1, sizeof *pr->names);
    for (size_t c = 0; c < pr->ncols; c++)
        pr->names[c] = strdup(rep->columns[c]->name ? rep->columns[c]->name : "");
    if (pr->format == F_JSON) {
        dm_buf_putc(&pr->out, '[');
    } else if (pr->format == F_TABLE) {
        pr->table.ncols = pr->ncols;
        pr->table.width = calloc(pr->ncols ? pr->ncols : 1, sizeof(size_t));
        dm_cli_table_init(&pr->table.window, pr->ncols, 0);
        dm_cli_table_add(&pr->table.window, (const char *const *)pr->names);
    }
}

/* Prints the rows of one batch; false if the batch is malformed. */
static bool s_rows(s_printer *pr, const Dm__QueryRep *rep)
{
    const uint8_t *p = rep->rows.data, *end = p + rep->rows.len;
    char **cells = pr->format == F_TABLE ? calloc(pr->ncols ? pr->ncols : 1, sizeof *cells) : NULL;
    for (uint32_t r = 0; r < rep->nrows; r++) {
        if (pr->format == F_CSV && pr->rows == 0 && r == 0)
            s_csv_header(pr);
        if (pr->format == F_JSON)
            dm_buf_puts(&pr->out, pr->rows ? ",\n{" : "\n{");
        else if (pr->format == F_JSONL)
            dm_buf_putc(&pr->out, '{');
        for (size_t c = 0; c < pr->ncols; c++) {
            dm_rowbatch_value_t v;
            if (!dm_rowbatch_read(&p, end, &v)) {
                free(cells);
                return false;
            }
            switch (pr->format) {
            case F_CSV:
                if (c)
                    dm_buf_putc(&pr->out, ',');
                s_csv(&pr->out, &v);
                break;
            case F_JSON:
            case F_JSONL:
                if (c)
                    dm_buf_putc(&pr->out, ',');
                dm_cli_json_string(&pr->out, pr->names[c], strlen(pr->names[c]));
                dm_buf_putc(&pr->out, ':');
                s_json_value(&pr->out, &v);
                break;
            case F_TABLE:
                cells[c] = s_cell(&v);
                break;
            }
        }
        if (pr->format == F_CSV)
            dm_buf_putc(&pr->out, '\n');
        else if (pr->format == F_JSONL)
            dm_buf_puts(&pr->out, "}\n");
        else if (pr->format == F_JSON)
            dm_buf_putc(&pr->out, '}');
        else {
            dm_cli_table_add(&pr->table.window, (const char *const *)cells);
            for (size_t c = 0; c < pr->ncols; c++)
                free(cells[c]);
            if (pr->table.window.nrows >= DM_MESHQ_TABLE_WINDOW)
                s_table_flush(&pr->table);
        }
        pr->rows++;
        if (pr->out.len >= (1 << 16)) {
            fwrite(pr->out.data, 1, pr->out.len, stdout);
            dm_buf_reset(&pr->out);
        }
    }
    free(cells);
    return p == end;
}

static void s_end(s_printer *pr, bool ok)
{
    if (pr->format == F_JSON && pr->names)
        dm_buf_puts(&pr->out, pr->rows ? "\n]\n" : "]\n");
    if (pr->out.len)
        fwrite(pr->out.data, 1, pr->out.len, stdout);
    if (pr->format == F_TABLE && pr->names) {
        s_table_flush(&pr->table);
        if (ok)
            fprintf(stdout, "(%" PRIu64 " row%s)\n", pr->rows, pr->rows == 1 ? "" : "s");
        free(pr->table.width);
    }
    for (size_t c = 0; pr->names && c < pr->ncols; c++)
        free(pr->names[c]);
    free(pr->names);
    dm_buf_free(&pr->out);
    fflush(stdout);
}

/* Reads --format (NULL: table) into *f; false, with the message printed,
 * if it is none of table, csv, json, jsonl. */
static bool s_format_parse(const char *fmt, s_format *f)
{
    if (!fmt || strcmp(fmt, "table") == 0)
        *f = F_TABLE;
    else if (strcmp(fmt, "csv") == 0)
        *f = F_CSV;
    else if (strcmp(fmt, "json") == 0)
        *f = F_JSON;
    else if (strcmp(fmt, "jsonl") == 0)
        *f = F_JSONL;
    else {
        fprintf(stderr, "%s: invalid --format '%s': expected table, csv, json or jsonl\n", P, fmt);
        return false;
    }
    return true;
}

/* A pull sent before the end was seen is answered "no open query": reads
 * and drops the inflight replies quietly. Returns the replies still
 * outstanding (0 unless the connection failed). */
static unsigned s_drain(dm_rpc_client_t *client, unsigned inflight)
{
    while (inflight > 0) {
        Dm__Envelope *extra = NULL;
        if (dm_rpc_client_recv(client, &extra, NULL) != DM_OK)
            break;
        dm__envelope__free_unpacked(extra, NULL);
        inflight--;
    }
    return inflight;
}

/* Connects and sends the QueryReq for sql, with a grant signed as the
 * identity for the node as relay (so the node may read other nodes'
 * products on the caller's behalf, docs/protocol.md "Federated query"),
 * and explain when asked. DM_EXIT_OK with *client connected. */
static int s_query_send(const dm_cli_args_t *a, const char *sql, dm_rpc_client_t **client)
{
    dm_identity_t *id = NULL;
    uint8_t node_key[DM_ID_PUBLIC_BYTES];
    int status = dm_cli_connect_id(a, client, &id, node_key);
    if (status != DM_EXIT_OK)
        return status;
    int64_t life = dm_meshq_grant_life(a, *client);
    dm_buf_t grant = DM_BUF_INIT, why = DM_BUF_INIT;
    if (life < 0) {
        status = DM_EXIT_USAGE;
        goto out;
    }
    if (dm_grant_sign(id, node_key, sql, strlen(sql), dm_clock_wall_ms() + life, &grant, &why) !=
        DM_OK) {
        fprintf(stderr, "%s: cannot sign the query's grant: %s\n", P,
                why.len ? why.data : "signing failed");
        status = DM_EXIT_USAGE;
        goto out;
    }
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__QueryReq body = DM__QUERY_REQ__INIT;
    body.sql = (char *)sql;
    body.max_rows = DM_MESHQ_BATCH_ROWS;
    body.grant.data = (uint8_t *)grant.data;
    body.grant.len = grant.len;
    body.explain = dm_cli_get(a, "explain") != NULL;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_QUERY_REQ, &body);
    if (dm_rpc_client_send(*client, &req, NULL, &why) != DM_OK) {
        fprintf(stderr, "%s: %s\n", P, why.data);
        status = DM_EXIT_USAGE;
    }
out:
    if (status != DM_EXIT_OK)
        dm_rpc_client_destroy(client);
    dm_identity_destroy(&id);
    dm_buf_free(&grant);
    dm_buf_free(&why);
    return status;
}

/* Prints a query's explain text (QueryRep.explain) to stderr under a
 * heading, so stdout keeps only the rows. */
static void s_explain(const char *text)
{
    if (text && *text)
        fprintf(stderr, "-- explain --\n%s%s", text, text[strlen(text) - 1] == '\n' ? "" : "\n");
}

static int s_query(const dm_cli_args_t *a)
{
    if (a->npos != 2) {
        fprintf(stderr, "%s: usage: meshq query \"SQL\" [--format table|csv|json|jsonl] "
                        "[--explain]\n", P);
        return DM_EXIT_USAGE;
    }
    s_printer pr = {0};
    if (!s_format_parse(dm_cli_get(a, "format"), &pr.format))
        return DM_EXIT_USAGE;
    dm_rpc_client_t *client = NULL;
    int status = s_query_send(a, a->pos[1], &client);
    if (status != DM_EXIT_OK)
        return status;
    bool first = true, done = false, ok = true;
    uint64_t cursor = 0;
    unsigned inflight = 1;
    char *explain = NULL;
    while (inflight > 0) {
        Dm__Envelope *rep = NULL;
        dm_buf_t rpc_why = DM_BUF_INIT;
        if (dm_rpc_client_recv(client, &rep, &rpc_why) != DM_OK) {
            fprintf(stderr, "%s: %s\n", P, rpc_why.data);
            dm_buf_free(&rpc_why);
            status = DM_EXIT_USAGE;
            ok = false;
            break;
        }
        inflight--;
        if (rep->body_case != DM__ENVELOPE__BODY_QUERY_REP) {
            if (dm_cli_print_error(P, "query refused", rep)) {
                status = DM_EXIT_FAIL;
            } else {
                fprintf(stderr, "%s: unexpected reply to a query\n", P);
                status = DM_EXIT_USAGE;
            }
            ok = false;
            dm__envelope__free_unpacked(rep, NULL);
            break;
        }
        const Dm__QueryRep *qr = rep->query_rep;
        if (first) {
            s_begin(&pr, qr);
            cursor = qr->cursor;
            first = false;
        }
        if (!done && !s_rows(&pr, qr)) {
            fprintf(stderr, "%s: the node sent a malformed batch of rows\n", P);
            status = DM_EXIT_USAGE;
            ok = false;
            dm__envelope__free_unpacked(rep, NULL);
            break;
        }
        if (qr->explain && *qr->explain && !explain)
            explain = strdup(qr->explain);
        done = done || qr->done;
        dm__envelope__free_unpacked(rep, NULL);
        /* Keep two pulls in flight so the node computes the next batch
         * while this one is printed. */
        while (!done && inflight < 2) {
            Dm__Envelope nreq = DM__ENVELOPE__INIT;
            Dm__QueryNext next = DM__QUERY_NEXT__INIT;
            next.cursor = cursor;
            dm_envelope_init(&nreq, 0, DM__ENVELOPE__BODY_QUERY_NEXT, &next);
            dm_buf_t rpc_why = DM_BUF_INIT;
            if (dm_rpc_client_send(client, &nreq, NULL, &rpc_why) != DM_OK) {
                fprintf(stderr, "%s: %s\n", P, rpc_why.data);
                dm_buf_free(&rpc_why);
                status = DM_EXIT_USAGE;
                ok = false;
                break;
            }
            inflight++;
        }
        if (!ok)
            break;
        if (done)
            inflight = s_drain(client, inflight);
    }
    s_end(&pr, ok);
    if (ok)
        s_explain(explain);
    free(explain);
    dm_rpc_client_destroy(&client);
    return status;
}

/* ---- members ---- */

static int s_members(const dm_cli_args_t *a)
{
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__MembersReq body = DM__MEMBERS_REQ__INIT;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_MEMBERS_REQ, &body);
    Dm__Envelope *rep = NULL;
    int status = dm_cli_request(a, &req, DM__ENVELOPE__BODY_MEMBERS_REP, "members", &rep);
    if (status != DM_EXIT_OK)
        return status;
    const Dm__MembersRep *mr = rep->members_rep;
    char id[65], owner[65], claimant[65], heard[DM_TIMESTAMP_TEXT_MAX];
    if (dm_cli_get(a, "json")) {
        dm_buf_t o = DM_BUF_INIT;
        dm_buf_puts(&o, "{\"members\":[");
        for (size_t i = 0; i < mr->n_members; i++) {
            const Dm__MemberInfo *m = mr->members[i];
            dm_cli_hex(id, &m->node_id, 32);
            dm_buf_printf(&o, "%s{\"node_id\":\"%s\",\"domain\":", i ? "," : "", id);
            dm_cli_json_string(&o, m->domain, strlen(m->domain));
            dm_buf_puts(&o, ",\"address\":");
            dm_cli_json_string(&o, m->address, strlen(m->address));
            dm_buf_printf(&o, ",\"state\":\"%s\",\"incarnation\":%" PRIu64 ",\"self\":%s",
                          m->state, m->incarnation, m->self ? "true" : "false");
            if (m->self) {
                dm_buf_puts(&o, ",\"last_heard\":null}");
            } else {
                dm_types_timestamp_format(m->last_heard_ms * 1000, heard);
                dm_buf_printf(&o, ",\"last_heard\":\"%s\"}", heard);
            }
        }
        dm_buf_puts(&o, "],\"conflicts\":[");
        for (size_t i = 0; i < mr->n_conflicts; i++) {
            const Dm__DomainConflict *k = mr->conflicts[i];
            dm_cli_hex(owner, &k->owner, 32);
            dm_cli_hex(claimant, &k->claimant, 32);
            dm_buf_printf(&o, "%s{\"domain\":", i ? "," : "");
            dm_cli_json_string(&o, k->domain, strlen(k->domain));
            dm_buf_printf(&o, ",\"owner\":\"%s\",\"refused\":\"%s\",\"refusals\":%" PRIu64 "}",
                          owner, claimant, k->refusals);
        }
        dm_buf_puts(&o, "]}\n");
        fputs(o.data, stdout);
        dm_buf_free(&o);
        goto out;
    }
    dm_cli_table_t t;
    dm_cli_table_init(&t, 6, 1u << 4);
    const char *head[] = {"NODE", "DOMAIN", "ADDRESS", "STATE", "INCARNATION", "LAST HEARD"};
    dm_cli_table_add(&t, head);
    for (size_t i = 0; i < mr->n_members; i++) {
        const Dm__MemberInfo *m = mr->members[i];
        dm_cli_hex(id, &m->node_id, 8);
        char inc[32];
        snprintf(inc, sizeof inc, "%" PRIu64, m->incarnation);
        if (m->self)
            snprintf(heard, sizeof heard, "(this node)");
        else
            dm_types_timestamp_format(m->last_heard_ms * 1000, heard);
        const char *ep = strchr(m->address, '@');
        const char *row[] = {id, m->domain, ep ? ep + 1 : m->address, m->state, inc, heard};
        dm_cli_table_add(&t, row);
    }
    dm_cli_table_print(&t, stdout);
    dm_cli_table_free(&t);
    for (size_t i = 0; i < mr->n_conflicts; i++) {
        const Dm__DomainConflict *k = mr->conflicts[i];
        dm_cli_hex(owner, &k->owner, 8);
        dm_cli_hex(claimant, &k->claimant, 8);
        printf("conflict: domain %s is pinned to node %s; the claim of node %s was refused "
               "(%" PRIu64 " entries)\n", k->domain, owner, claimant, k->refusals);
    }
out:
    dm__envelope__free_unpacked(rep, NULL);
    return DM_EXIT_OK;
}

/* ---- products, describe ---- */

/* Every product of the mesh, from the node's catalog. */
static int s_products(const dm_cli_args_t *a) { return dm_cli_products(a, true); }

int main(int argc, char **argv)
{
    static const dm_cli_command_t cmds[] = {
        {"products", s_products}, {"members", s_members}, {"describe", dm_meshq_describe_run},
        {"query", s_query},       {"whoami", dm_cli_whoami}, {"keygen", dm_cli_keygen},
        {"lineage", dm_meshq_lineage_walk}, {"search", dm_meshq_lineage_search},
    };
    int help = dm_meshq_lineage_help(argc, argv, s_opts, sizeof s_opts / sizeof s_opts[0]);
    if (help >= 0) /* lineage and search have a help of their own */
        return help;
    return dm_cli_main(P, DM_VERSION, argc, argv, s_opts, sizeof s_opts / sizeof s_opts[0], cmds,
                       sizeof cmds / sizeof cmds[0], s_usage);
}
