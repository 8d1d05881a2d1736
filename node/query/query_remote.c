/* query_remote.c: the virtual table over a product another node owns.
 *
 * Its columns and declared types are those of the local table
 * (query_vtab.c), from the contract the mesh's catalog holds. xBestIndex
 * chooses what the owner can do for SQLite (query_remote_sql.c builds the
 * SELECT): WHERE terms, IN lists all at once (sqlite3_vtab_in), ORDER BY,
 * LIMIT/OFFSET when nothing is left to check after; a term is omitted
 * only when its value is a literal that converts exactly. Costs: the
 * owner's row count (S_DEFAULT_ROWS when unknown) narrowed by the same
 * selectivities as the local table, plus a cost per round trip, so the
 * selective side of a join drives it and a remote table is probed only
 * when few probes are expected. xFilter sends one SELECT (or one per
 * batch of IN values) through dm_query_remote_t and xNext decodes the
 * row batches as they come. A scan whose rows fit S_CACHE_SCAN_MAX is
 * kept by its SQL for the rest of the query, so a join probing the same
 * key again asks nobody (a probe cache). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "contract/contract.h"
#include "query/query_remote.h"
#include "record/schema.h"
#include "transport/rowbatch.h"

#define S_DEFAULT_ROWS 1000000.0 /* rows of a product whose count the mesh does not know */
#define S_EQ_SELECTIVITY 10.0    /* as query_vtab.c */
#define S_RANGE_SELECTIVITY 3.0
#define S_IN_SELECTIVITY 2.5
/* A round trip to the owner against a row read: ~150 us on loopback
 * against ~0.15 us a local row read, so a trip weighs 1000 rows. */
#define S_TRIP_COST 1000.0
#define S_ROW_COST 4.0           /* a row that crosses the network, against 1 read locally */
#define S_ROWS_PER_TRIP 10000.0  /* rows of one batch (query_pool.h DM_QUERY_BATCH_ROWS) */
#define S_CACHE_SCAN_MAX (256 * 1024)     /* bytes of rows of one scan the probe cache keeps */
#define S_CACHE_MAX (16 * 1024 * 1024)    /* bytes the probe cache of one table holds */
#define S_CACHE_SLOTS 1024
#define S_LEARN_SCAN_MAX (4 * 1024 * 1024) /* bytes of one scan a dry run reads, else it stops */
#define S_EXPLAIN_SQL_MAX 600    /* bytes of the last SELECT an explain line shows */

typedef dm_query_remote_centry_t s_centry;

typedef struct {
    sqlite3_vtab base;
    dm_qctx_t *ctx;
    dm_qtable_t *t;
    const dm_contract_t *c;
} s_vtab;

typedef struct {
    sqlite3_vtab_cursor base;
    dm_query_rscan_t *scan;
    char **sqls;
    size_t nsql, isql;
    bool scan_done, eof;
    dm_buf_t batch;        /* the batch being read */
    size_t at;             /* offset of the next row in batch */
    uint32_t left;         /* rows of the batch the owner announced, not yet decoded */
    int *pos;              /* field -> index in row, -1: not selected */
    dm_rowbatch_value_t *row;
    size_t nsel;
    int64_t rowid;         /* a hash of the row's bytes (dm_query_remote__uses) */
    dm_buf_t fill;         /* the scan's rows so far, for the probe cache */
    bool caching;
    bool first;            /* the next batch is the one that came with the open */
} s_cursor;

dm_err dm_query__remote_resolve(const dm_query_remote_t *remote, const char *domain,
                                const char *name, dm_qtable_t *t, dm_buf_t *why)
{
    char *json = NULL;
    uint64_t rows = 0;
    dm_err rc = remote->resolve(remote->ctx, domain, name, &json, &rows, why);
    if (rc)
        return rc;
    dm_qremote_t *r = calloc(1, sizeof *r);
    *t = (dm_qtable_t){.domain = strdup(domain), .name = strdup(name), .remote = r};
    if (!r || !t->domain || !t->name || !json) {
        free(json);
        free(r);
        free(t->domain);
        free(t->name);
        t->remote = NULL;
        if (json)
            return DM_ERR_NOMEM;
        dm_buf_why(why, "%s.%s: the mesh holds no contract text for this product", domain, name);
        return DM_ERR_INVALID;
    }
    r->json = json;
    r->rows_est = rows;
    return DM_OK;
}

dm_err dm_query__remote_load(dm_qtable_t *t, dm_buf_t *why)
{
    dm_qremote_t *r = t->remote;
    if (r->ref.contract) {
        t->ref = &r->ref;
        return DM_OK;
    }
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_contract_parse_opts("remote contract", r->json, strlen(r->json), NULL,
                                       DM_CONTRACT_NO_COMPILE, &list, &n, &diags);
    dm_diags_clear(&diags);
    if (!rc && (n != 1 || strcmp(list[0]->domain, t->domain) != 0 ||
                strcmp(list[0]->name, t->name) != 0))
        rc = DM_ERR_INVALID;
    if (rc) {
        dm_buf_why(why, "%s.%s: the mesh's contract of this product is not valid (%s)", t->domain,
                   t->name, rc == DM_ERR_INVALID ? "expected one contract of that name" : dm_err_str(rc));
        dm_contract_list_destroy(&list, n);
        return rc == DM_ERR_NOMEM ? rc : DM_ERR_INVALID;
    }
    r->ref.contract = list[0];
    list[0] = NULL;
    dm_contract_list_destroy(&list, n);
    if ((rc = dm_schema_new(r->ref.contract, &r->ref.schema, why)) != DM_OK)
        return rc;
    t->ref = &r->ref;
    return DM_OK;
}

bool dm_query__remote_same(const dm_qtable_t *a, const dm_qtable_t *b)
{
    return a->remote && b->remote && strcmp(a->remote->json, b->remote->json) == 0;
}

/* Frees the probe cache of r. */
static void s_cache_free(dm_qremote_t *r)
{
    for (size_t i = 0; r->cache && i < S_CACHE_SLOTS; i++)
        for (s_centry *e = r->cache[i], *next; e; e = next) {
            next = e->next;
            free(e->sql);
            dm_buf_free(&e->rows);
            free(e);
        }
    free(r->cache);
    r->cache = NULL;
}

void dm_query__remote_reset(dm_qtable_t *t, const dm_qtable_t *fresh)
{
    dm_qremote_t *r = t->remote;
    free(r->last_sql);
    r->last_sql = NULL;
    r->trips = r->rows = r->bytes = r->hits = r->scans = 0;
    s_cache_free(r);
    r->cache_bytes = 0;
    dm_query_remote__snap_free(&r->snap);
    r->snap_failed = false;
    r->misses = r->snap_hits = 0;
    r->probed = false;
    r->learned = r->batches = r->ranges = 0;
    if (fresh)
        r->rows_est = fresh->remote->rows_est;
}

void dm_query__remote_free(dm_qtable_t *t)
{
    dm_qremote_t *r = t->remote;
    if (!r)
        return;
    free(r->json);
    dm_schema_destroy(&r->ref.schema);
    dm_contract_destroy(&r->ref.contract);
    free(r->last_sql);
    s_cache_free(r);
    dm_query_remote__snap_free(&r->snap);
    free(r);
    t->remote = NULL;
    t->ref = NULL;
}

void dm_query__remote_explain(const dm_qtable_t *t, dm_buf_t *out)
{
    const dm_qremote_t *r = t->remote;
    dm_buf_printf(out, "%s.%s: ", t->domain, t->name);
    if (!r->last_sql) {
        dm_buf_printf(out, "no SELECT sent (%llu scans)%s\n", (unsigned long long)r->scans,
                      r->hits ? ", all from the probe cache" : "");
        return;
    }
    size_t n = strlen(r->last_sql);
    if (n > S_EXPLAIN_SQL_MAX)
        dm_buf_printf(out, "%.*s... (%zu bytes)", S_EXPLAIN_SQL_MAX, r->last_sql, n);
    else
        dm_buf_puts(out, r->last_sql);
    dm_buf_printf(out, "; %llu scans, %llu round trips, %llu rows, %llu bytes",
                  (unsigned long long)r->scans, (unsigned long long)r->trips,
                  (unsigned long long)r->rows, (unsigned long long)r->bytes);
    if (r->hits)
        dm_buf_printf(out, ", %llu probes from the cache", (unsigned long long)r->hits);
    if (r->learned)
        dm_buf_printf(out, ", learned %llu keys, %llu batches, %llu key ranges",
                      (unsigned long long)r->learned, (unsigned long long)r->batches,
                      (unsigned long long)r->ranges);
    if (r->snap && dm_query_remote__snap_whole(r->snap))
        dm_buf_printf(out, ", read whole once (%zu rows) for %llu probes",
                      dm_query_remote__snap_rows(r->snap), (unsigned long long)r->snap_hits);
    else if (r->snap_hits)
        dm_buf_printf(out, ", %llu probes from the learned keys", (unsigned long long)r->snap_hits);
    dm_buf_putc(out, '\n');
}

/* ---- probe cache ---- */

static size_t s_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h % S_CACHE_SLOTS);
}

static const s_centry *s_cache_find(const dm_qremote_t *r, const char *sql)
{
    for (const s_centry *e = r->cache ? r->cache[s_hash(sql)] : NULL; e; e = e->next)
        if (strcmp(e->sql, sql) == 0)
            return e;
    return NULL;
}

/* Keeps rows (taken) under sql; silently nothing when full or out of memory. */
static void s_cache_put(dm_qremote_t *r, const char *sql, dm_buf_t *rows)
{
    if (r->cache_bytes + rows->len + strlen(sql) > S_CACHE_MAX || s_cache_find(r, sql))
        return;
    if (!r->cache && !(r->cache = calloc(S_CACHE_SLOTS, sizeof *r->cache)))
        return;
    s_centry *e = calloc(1, sizeof *e);
    if (!e || !(e->sql = strdup(sql))) {
        free(e);
        return;
    }
    e->rows = *rows;
    *rows = (dm_buf_t)DM_BUF_INIT;
    size_t h = s_hash(sql);
    e->next = r->cache[h];
    r->cache[h] = e;
    r->cache_bytes += e->rows.len + strlen(sql);
}

/* ---- the module ---- */

/* xConnect: the remote product that query_sql.c resolved under that name. */
static int s_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                     sqlite3_vtab **out, char **errmsg)
{
    dm_qctx_t *ctx = aux;
    dm_qtable_t *t = NULL;
    for (size_t i = 0; argc >= 3 && i < ctx->ntables && !t; i++)
        if (ctx->tables[i].remote && strcmp(ctx->tables[i].domain, argv[1]) == 0 &&
            strcmp(ctx->tables[i].name, argv[2]) == 0)
            t = &ctx->tables[i];
    if (!t) {
        *errmsg = sqlite3_mprintf("no remote product %s.%s", argc >= 3 ? argv[1] : "?",
                                  argc >= 3 ? argv[2] : "?");
        return SQLITE_ERROR;
    }
    s_vtab *vt = sqlite3_malloc(sizeof *vt);
    if (!vt)
        return SQLITE_NOMEM;
    *vt = (s_vtab){.ctx = ctx, .t = t, .c = t->ref->contract};
    dm_buf_t decl = DM_BUF_INIT;
    dm_buf_puts(&decl, "CREATE TABLE x(");
    for (size_t i = 0; i < vt->c->nfields; i++) {
        if (i)
            dm_buf_puts(&decl, ", ");
        dm_query__quote_ident(&decl, vt->c->fields[i].name);
        dm_buf_printf(&decl, " %s", dm_query__decltype(vt->c->fields[i].type));
    }
    dm_buf_putc(&decl, ')');
    int rc = sqlite3_declare_vtab(db, decl.data);
    dm_buf_free(&decl);
    if (rc == SQLITE_OK)
        rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    if (rc != SQLITE_OK) {
        *errmsg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
        sqlite3_free(vt);
        return rc;
    }
    *out = &vt->base;
    return SQLITE_OK;
}

static int s_disconnect(sqlite3_vtab *base)
{
    sqlite3_free(base);
    return SQLITE_OK;
}

/* What xBestIndex learns while choosing terms. */
typedef struct {
    dm_query_remote_plan_t plan;
    double rows;
    bool empty, has_in;
    int argc;
    unsigned pk_eq, pk_exact; /* bits of key columns (by key position) with an eq */
} s_choice;

/* Adds constraint i as a pushed term. */
static void s_take(sqlite3_index_info *info, int i, s_choice *ch, char op, int col, bool omit)
{
    info->aConstraintUsage[i].argvIndex = ++ch->argc;
    info->aConstraintUsage[i].omit = omit;
    ch->plan.terms[ch->plan.nterms++] = (dm_query_remote_term_t){op, col, omit};
}

static char s_op_letter(int op)
{
    switch (op) {
    case SQLITE_INDEX_CONSTRAINT_EQ: return DM_QUERY_REMOTE_EQ;
    case SQLITE_INDEX_CONSTRAINT_LT: return DM_QUERY_REMOTE_LT;
    case SQLITE_INDEX_CONSTRAINT_LE: return DM_QUERY_REMOTE_LE;
    case SQLITE_INDEX_CONSTRAINT_GT: return DM_QUERY_REMOTE_GT;
    case SQLITE_INDEX_CONSTRAINT_GE: return DM_QUERY_REMOTE_GE;
    case SQLITE_INDEX_CONSTRAINT_ISNULL: return DM_QUERY_REMOTE_ISNULL;
    case SQLITE_INDEX_CONSTRAINT_ISNOTNULL: return DM_QUERY_REMOTE_NOTNULL;
    case SQLITE_INDEX_CONSTRAINT_LIKE: return DM_QUERY_REMOTE_LIKE;
    default: return 0;
    }
}

/* Marks field col as fixed by an equality (exact: a literal that converts
 * exactly) when it is a key column. */
static void s_key_eq(const dm_contract_t *c, s_choice *ch, int col, bool exact)
{
    for (size_t k = 0; k < c->npk && k < 32; k++)
        if (c->pk[k] == (size_t)col) {
            ch->pk_eq |= 1u << k;
            ch->pk_exact |= exact ? 1u << k : 0;
        }
}

/* Considers constraint i (usable, on a column, a comparison we push). */
static void s_consider(const s_vtab *vt, sqlite3_index_info *info, int i, s_choice *ch)
{
    const struct sqlite3_index_constraint *k = &info->aConstraint[i];
    char op = s_op_letter(k->op);
    const char *coll = sqlite3_vtab_collation(info, i);
    bool binary = !coll || sqlite3_stricmp(coll, "BINARY") == 0;
    dm_ftype type = vt->c->fields[k->iColumn].type;
    if (!op || (!binary && op != DM_QUERY_REMOTE_LIKE) || ch->plan.nterms >= DM_QUERY_REMOTE_MAX_TERMS - 2)
        return;
    if (op == DM_QUERY_REMOTE_ISNULL || op == DM_QUERY_REMOTE_NOTNULL) {
        s_take(info, i, ch, op, k->iColumn, true);
        ch->rows /= op == DM_QUERY_REMOTE_ISNULL ? S_EQ_SELECTIVITY : 1.0;
        return;
    }
    if (op == DM_QUERY_REMOTE_EQ && sqlite3_vtab_in(info, i, -1)) {
        if (ch->has_in)
            return;
        sqlite3_vtab_in(info, i, 1); /* all values at once: one SELECT per batch */
        ch->has_in = true;
        s_take(info, i, ch, DM_QUERY_REMOTE_IN, k->iColumn, false);
        ch->rows /= S_IN_SELECTIVITY;
        return;
    }
    sqlite3_value *rhs = NULL;
    bool known = sqlite3_vtab_rhs_value(info, i, &rhs) == SQLITE_OK && rhs;
    bool exact = false, never = false;
    if (known && op == DM_QUERY_REMOTE_LIKE) {
        dm_buf_t lit = DM_BUF_INIT;
        known = sqlite3_value_type(rhs) == SQLITE_TEXT && dm_query__sql_literal(rhs, &lit) &&
                lit.len <= DM_QUERY_REMOTE_LITERAL_MAX;
        dm_buf_free(&lit);
        if (!known)
            return;
    } else if (known && !dm_query_remote__pushable(vt->c, (size_t)k->iColumn, k->op, rhs, &exact, &never)) {
        ch->empty |= never;
        return;
    } else if (!known && (op == DM_QUERY_REMOTE_LT || op == DM_QUERY_REMOTE_LE) &&
               (type == DM_FT_STRING || type == DM_FT_ENUM)) {
        return; /* numeric affinity from the other side may compare otherwise (query_vtab.c) */
    } else if (!known && op == DM_QUERY_REMOTE_LIKE) {
        return;
    }
    s_take(info, i, ch, op, k->iColumn, exact && op != DM_QUERY_REMOTE_LIKE);
    vt->t->remote->probed |= !known && op == DM_QUERY_REMOTE_EQ; /* a join's key: worth a dry run */
    if (op == DM_QUERY_REMOTE_EQ)
        s_key_eq(vt->c, ch, k->iColumn, exact);
    ch->rows /= op == DM_QUERY_REMOTE_EQ ? S_EQ_SELECTIVITY : S_RANGE_SELECTIVITY;
}

/* ORDER BY the owner can do: every term a column (the owner sorts as
 * SQLite would here); not with IN batches, whose SELECTs each sort alone. */
static bool s_order(sqlite3_index_info *info, s_choice *ch)
{
    if (info->nOrderBy == 0 || ch->has_in || info->nOrderBy > DM_QUERY_REMOTE_MAX_TERMS)
        return false;
    for (int i = 0; i < info->nOrderBy; i++)
        if (info->aOrderBy[i].iColumn < 0)
            return false;
    for (int i = 0; i < info->nOrderBy; i++)
        ch->plan.order[ch->plan.norder++] =
            info->aOrderBy[i].desc ? -1 - info->aOrderBy[i].iColumn : info->aOrderBy[i].iColumn;
    return true;
}

/* LIMIT/OFFSET: only when SQLite checks nothing after the owner (every
 * other constraint omitted) and sorts nothing. */
static void s_limit(sqlite3_index_info *info, s_choice *ch, bool ordered)
{
    int lim = -1, off = -1;
    bool all_omitted = true;
    for (int i = 0; i < info->nConstraint; i++) {
        int op = info->aConstraint[i].op;
        if (op == SQLITE_INDEX_CONSTRAINT_LIMIT)
            lim = info->aConstraint[i].usable ? i : lim;
        else if (op == SQLITE_INDEX_CONSTRAINT_OFFSET)
            off = info->aConstraint[i].usable ? i : off;
        else if (!info->aConstraintUsage[i].omit)
            all_omitted = false;
    }
    if (lim < 0 || !all_omitted || (info->nOrderBy && !ordered))
        return;
    s_take(info, lim, ch, DM_QUERY_REMOTE_LIMIT, -1, false);
    if (off >= 0)
        s_take(info, off, ch, DM_QUERY_REMOTE_OFFSET, -1, false);
}

/* xBestIndex: see the file comment; the plan goes to xFilter as idxStr. */
static int s_best_index(sqlite3_vtab *base, sqlite3_index_info *info)
{
    s_vtab *vt = (s_vtab *)base;
    dm_qremote_t *r = vt->t->remote;
    s_choice ch = {.rows = r->rows_est ? (double)r->rows_est : S_DEFAULT_ROWS};
    ch.plan.used = info->colUsed;
    for (int i = 0; i < info->nConstraint; i++) {
        int col = info->aConstraint[i].iColumn;
        if (info->aConstraint[i].usable && col >= 0 && (size_t)col < vt->c->nfields)
            s_consider(vt, info, i, &ch);
    }
    unsigned all = vt->c->npk >= 32 ? ~0u : (1u << vt->c->npk) - 1;
    if (vt->c->npk && (ch.pk_eq & all) == all) {
        ch.rows = 1;
        if ((ch.pk_exact & all) == all)
            info->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
    }
    bool ordered = s_order(info, &ch);
    info->orderByConsumed = ordered;
    s_limit(info, &ch, ordered);
    if (ch.rows < 1)
        ch.rows = 1;
    info->estimatedRows = (sqlite3_int64)ch.rows;
    info->estimatedCost = ch.empty ? 1.0
                                   : S_TRIP_COST * (1.0 + ch.rows / S_ROWS_PER_TRIP) +
                                         ch.rows * S_ROW_COST;
    dm_buf_t text = DM_BUF_INIT;
    dm_query_remote__plan_text(&ch.plan, &text);
    info->idxStr = sqlite3_mprintf("%s", text.data);
    dm_buf_free(&text);
    info->needToFreeIdxStr = 1;
    info->idxNum = ch.empty;
    return info->idxStr ? SQLITE_OK : SQLITE_NOMEM;
}

static int s_open(sqlite3_vtab *base, sqlite3_vtab_cursor **out)
{
    (void)base;
    s_cursor *c = sqlite3_malloc(sizeof *c);
    if (!c)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    c->eof = true;
    *out = &c->base;
    return SQLITE_OK;
}

/* Ends the current scan and forgets its SELECTs. */
static void s_reset(s_cursor *c, const s_vtab *vt)
{
    if (c->scan)
        vt->ctx->remote->close(c->scan);
    c->scan = NULL;
    dm_query_remote__sqls_free(c->sqls, c->nsql);
    c->sqls = NULL;
    c->nsql = c->isql = 0;
    dm_buf_reset(&c->batch);
    dm_buf_reset(&c->fill);
    c->at = 0;
    c->left = 0;
    c->caching = false;
    c->scan_done = true;
}

static int s_close(sqlite3_vtab_cursor *base)
{
    s_cursor *c = (s_cursor *)base;
    s_reset(c, (s_vtab *)base->pVtab);
    dm_buf_free(&c->batch);
    dm_buf_free(&c->fill);
    free(c->pos);
    free(c->row);
    sqlite3_free(c);
    return SQLITE_OK;
}

/* Fails the statement with why's line (remote failures name the product
 * and its owner); err becomes the step's dm_err (query.c). */
static int s_fail(s_cursor *c, dm_err err, const dm_buf_t *why)
{
    s_vtab *vt = (s_vtab *)c->base.pVtab;
    sqlite3_free(vt->base.zErrMsg);
    vt->base.zErrMsg = sqlite3_mprintf("%s", why->len ? why->data : dm_err_str(err));
    vt->ctx->remote_err = err;
    c->eof = true;
    return SQLITE_ERROR;
}

/* Decodes the row at c->at. */
static int s_decode(s_cursor *c, s_vtab *vt)
{
    const uint8_t *p = (const uint8_t *)c->batch.data + c->at, *end = (const uint8_t *)c->batch.data + c->batch.len;
    size_t n = c->nsel ? c->nsel : 1;
    if (c->scan && c->left-- == 0) {
        dm_buf_t why = DM_BUF_INIT;
        dm_buf_printf(&why, "%s.%s: the owner's batch holds more rows than it announced",
                      vt->t->domain, vt->t->name);
        int rc = s_fail(c, DM_ERR_PROTO, &why);
        dm_buf_free(&why);
        return rc;
    }
    for (size_t k = 0; k < n; k++) {
        dm_rowbatch_value_t v;
        if (!dm_rowbatch_read(&p, end, &v)) {
            dm_buf_t why = DM_BUF_INIT;
            dm_buf_printf(&why, "%s.%s: the owner sent a malformed row (byte %zu of a batch of "
                                "%zu, value %zu of %zu)", vt->t->domain, vt->t->name, c->at,
                          c->batch.len, k + 1, n);
            int rc = s_fail(c, DM_ERR_PROTO, &why);
            dm_buf_free(&why);
            return rc;
        }
        if (c->nsel)
            c->row[k] = v;
    }
    size_t start = c->at;
    c->at = (size_t)((const char *)p - c->batch.data);
    uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a of the row's bytes */
    for (size_t i = start; i < c->at; i++)
        h = (h ^ (uint8_t)c->batch.data[i]) * UINT64_C(1099511628211);
    c->rowid = (int64_t)(h >> 1);
    vt->t->remote->rows += c->scan != NULL; /* rows that crossed the network */
    vt->ctx->walked++;
    return SQLITE_OK;
}

/* The next batch, or the next SELECT when a scan ends. */
static dm_err s_more(s_cursor *c, s_vtab *vt, dm_buf_t *why)
{
    const dm_query_remote_t *rm = vt->ctx->remote;
    dm_qremote_t *r = vt->t->remote;
    if (c->left) {
        dm_buf_printf(why, "%s.%s: the owner announced %u more rows than its batch held",
                      vt->t->domain, vt->t->name, c->left);
        return DM_ERR_PROTO;
    }
    dm_buf_reset(&c->batch);
    c->at = 0;
    if (c->scan && !c->scan_done) {
        uint32_t nrows = 0;
        bool done = false;
        dm_err rc = rm->next(c->scan, vt->ctx->deadline_ns, &vt->ctx->cancel, &c->batch, &nrows,
                             &done, why);
        r->trips += !c->first; /* the first batch came with the open's reply */
        c->first = false;
        r->bytes += c->batch.len;
        if (rc)
            return rc;
        c->scan_done = done;
        c->left = nrows;
        size_t cap = vt->ctx->learning ? S_LEARN_SCAN_MAX : S_CACHE_SCAN_MAX;
        if (c->caching && c->fill.len + c->batch.len <= cap) {
            dm_buf_append(&c->fill, c->batch.data, c->batch.len);
        } else {
            vt->ctx->learn_stop |= vt->ctx->learning && c->caching; /* pass 2 would read it again */
            c->caching = false;
        }
        if (done && c->caching)
            s_cache_put(r, c->sqls[c->isql - 1], &c->fill);
        return DM_OK;
    }
    if (c->scan)
        rm->close(c->scan);
    c->scan = NULL;
    if (c->isql >= c->nsql) {
        c->eof = true;
        return DM_OK;
    }
    const char *sql = c->sqls[c->isql++];
    free(r->last_sql);
    r->last_sql = strdup(sql);
    r->trips++;
    c->scan_done = false;
    c->first = true;
    return rm->open(rm->ctx, vt->t->domain, vt->t->name, sql, vt->ctx->deadline_ns,
                    &vt->ctx->cancel, &c->scan, why);
}

/* xNext: the next row, fetching batches and starting SELECTs as needed. */
static int s_next(sqlite3_vtab_cursor *base)
{
    s_cursor *c = (s_cursor *)base;
    s_vtab *vt = (s_vtab *)base->pVtab;
    while (!c->eof && c->at >= c->batch.len) {
        if (atomic_load(&vt->ctx->cancel) || dm_clock_mono_ns() > vt->ctx->deadline_ns)
            return SQLITE_INTERRUPT; /* query.c names the cancel or time limit */
        dm_buf_t why = DM_BUF_INIT;
        dm_err rc = s_more(c, vt, &why);
        int src = rc ? s_fail(c, rc, &why) : SQLITE_OK;
        dm_buf_free(&why);
        if (rc)
            return src;
    }
    return c->eof ? SQLITE_OK : s_decode(c, vt);
}

/* Maps fields to the SELECT's columns. */
static int s_columns(s_cursor *c, const s_vtab *vt, uint64_t used)
{
    size_t nf = vt->c->nfields;
    if (!c->pos && !(c->pos = calloc(nf + 1, sizeof *c->pos)))
        return SQLITE_NOMEM;
    if (!c->row && !(c->row = calloc(nf + 1, sizeof *c->row)))
        return SQLITE_NOMEM;
    c->nsel = 0;
    for (size_t f = 0; f < nf; f++)
        c->pos[f] = dm_query_remote__uses(vt->c, used, f) ? (int)c->nsel++ : -1;
    return SQLITE_OK;
}

/* Answers a probe (plan: one equality SQLite checks) from the probe index
 * (query_remote_snap.c). False when the owner must be asked; else *src is
 * xFilter's result. */
static bool s_snap_serve(s_cursor *c, s_vtab *vt, const dm_query_remote_plan_t *plan, int argc,
                         sqlite3_value **argv, int *src)
{
    bool served = false;
    dm_buf_t why = DM_BUF_INIT;
    dm_buf_reset(&c->batch);
    dm_err rc = dm_query_remote__serve(vt->ctx, vt->t, plan, argc, argv, &c->batch, &served, &why);
    if (rc) {
        *src = s_fail(c, rc, &why);
        dm_buf_free(&why);
        return true;
    }
    dm_buf_free(&why);
    if (!served)
        return false;
    c->isql = c->nsql;
    c->eof = c->batch.len == 0;
    *src = c->eof ? SQLITE_OK : s_decode(c, vt);
    return true;
}

/* Whether plan compares a column with a value SQLite may know only at run
 * time (a term it still checks): in a dry run such a scan is a probe. */
static bool s_correlated(const dm_query_remote_plan_t *plan)
{
    for (int i = 0; i < plan->nterms; i++)
        if (!plan->terms[i].omit && strchr("=<{>}", plan->terms[i].op))
            return true;
    return false;
}

/* xFilter: builds the SELECTs of the plan and reads the first row. */
static int s_filter(sqlite3_vtab_cursor *base, int empty, const char *idxstr, int argc,
                    sqlite3_value **argv)
{
    s_cursor *c = (s_cursor *)base;
    s_vtab *vt = (s_vtab *)base->pVtab;
    dm_qremote_t *r = vt->t->remote;
    dm_query_remote_plan_t plan;
    s_reset(c, vt);
    c->eof = false;
    c->rowid = 0;
    r->scans += !vt->ctx->learning; /* the dry run's scans are not the query's */
    if (!dm_query_remote__plan_parse(idxstr, &plan) || !vt->ctx->remote)
        return SQLITE_INTERNAL;
    int src = s_columns(c, vt, plan.used);
    if (src != SQLITE_OK)
        return src;
    bool none = empty != 0;
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = none ? DM_OK : dm_query_remote__build(vt->t, &plan, argc, argv, &c->sqls, &c->nsql, &none, &why);
    if (rc) {
        src = s_fail(c, rc, &why);
        dm_buf_free(&why);
        return src;
    }
    dm_buf_free(&why);
    if (none) {
        c->eof = true;
        return SQLITE_OK;
    }
    const s_centry *hit = c->nsql == 1 ? s_cache_find(r, c->sqls[0]) : NULL;
    if (hit) {
        r->hits++;
        c->isql = c->nsql;
        dm_buf_append(&c->batch, hit->rows.data, hit->rows.len);
        if (c->batch.len == 0)
            c->eof = true;
        return c->eof ? SQLITE_OK : s_decode(c, vt);
    }
    if (dm_query_remote__probe_term(&plan) >= 0 && s_snap_serve(c, vt, &plan, argc, argv, &src))
        return src;
    if (vt->ctx->learning && s_correlated(&plan)) {
        c->eof = true; /* a probe the dry run does not learn: nothing, and no round trip */
        return SQLITE_OK;
    }
    c->caching = c->nsql == 1;
    return s_next(base);
}

static int s_eof(sqlite3_vtab_cursor *base) { return ((s_cursor *)base)->eof; }

/* xColumn: the value as the owner sent it. */
static int s_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int i)
{
    s_cursor *c = (s_cursor *)base;
    s_vtab *vt = (s_vtab *)base->pVtab;
    if (i < 0 || (size_t)i >= vt->c->nfields || c->pos[i] < 0) {
        sqlite3_result_null(ctx);
        return SQLITE_OK;
    }
    const dm_rowbatch_value_t *v = &c->row[c->pos[i]];
    switch (v->type) {
    case DM_ROWBATCH_INT: sqlite3_result_int64(ctx, v->i); break;
    case DM_ROWBATCH_REAL: sqlite3_result_double(ctx, v->d); break;
    case DM_ROWBATCH_TEXT:
        sqlite3_result_text64(ctx, v->s, v->len, SQLITE_TRANSIENT, SQLITE_UTF8);
        break;
    case DM_ROWBATCH_BLOB: sqlite3_result_blob64(ctx, v->s, v->len, SQLITE_TRANSIENT); break;
    default: sqlite3_result_null(ctx); break;
    }
    return SQLITE_OK;
}

static int s_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid)
{
    *rowid = ((s_cursor *)base)->rowid;
    return SQLITE_OK;
}

static sqlite3_module s_module = {
    .iVersion = 0,
    .xCreate = s_connect,
    .xConnect = s_connect,
    .xBestIndex = s_best_index,
    .xDisconnect = s_disconnect,
    .xDestroy = s_disconnect,
    .xOpen = s_open,
    .xClose = s_close,
    .xFilter = s_filter,
    .xNext = s_next,
    .xEof = s_eof,
    .xColumn = s_column,
    .xRowid = s_rowid,
};

int dm_query__register_remote(sqlite3 *db, dm_qctx_t *ctx)
{
    return sqlite3_create_module_v2(db, DM_QUERY_REMOTE_MODULE, &s_module, ctx, NULL);
}
