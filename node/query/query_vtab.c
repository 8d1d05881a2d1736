/* query_vtab.c: the virtual table over one data product's records.
 *
 * Follows SQLite's ext/misc/series.c and csv.c: a vtab per product, a
 * cursor per scan. Two access paths:
 *   log scan   every live row in sequence order (no index needed: the log
 *              holds live rows only);
 *   pk walk    the merged primary-key index between bounds built from
 *              equality on leading key columns (the last may be an IN list,
 *              walked value by value) and one range on the next, rows
 *              fetched from the log by sequence; also serves ORDER BY on
 *              key columns whose key order is SQLite's (not an enum).
 * A constraint is omitted (not re-checked by SQLite) only when its value
 * converts exactly to the column's type and fits a key bound; any other
 * value narrows the walk or widens it to the prefix before it, and SQLite
 * checks it. Columns are decoded one at a time with dm_row_get, only those
 * SQLite asks for; a query using no column at all (count(*)) walks keys
 * without fetching rows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "query/query_priv.h"
#include "record/schema.h"
#include "record/row.h"
#include "contract/types.h"

/* idxNum bits of the pk walk; argv holds eq values, lo, hi, limit, offset. */
#define S_NEQ_MASK 0xff
#define S_HAS_LO (1 << 8)
#define S_LO_INCL (1 << 9)
#define S_HAS_HI (1 << 10)
#define S_HI_INCL (1 << 11)
#define S_WALK (1 << 12)
#define S_ROWS (1 << 13)
#define S_HAS_LIMIT (1 << 14)
#define S_HAS_OFFSET (1 << 15)
#define S_IN (1 << 16) /* the last eq column is an IN list, walked value by value */
#define S_GROUP (1 << 17) /* a log scan in groups (query_group.c), described in idxStr */
#define S_MAX_PK 64          /* pk columns the walk considers */
#define S_EQ_SELECTIVITY 10.0 /* rows kept per equality on a leading non-unique key column */
#define S_RANGE_SELECTIVITY 3.0
/* A pk walk reads the index, then each row from the log at random: measured
 * over 1M rows, ~1.1 us a row against ~0.15 us a row for a log scan. */
#define S_FETCH_COST 8.0
/* Bytes of a key bound the reader keeps (S_BOUND_KEY_MAX in
 * storage/reader.c cuts longer ones): a value whose bound would be longer
 * is not used as a bound at all, so SQLite checks it. */
#define S_KEY_BOUND_MAX 1024
/* Rows a grouped pass may skip between checks of the query's deadline and
 * cancel flag: skipped rows run no SQLite instruction, so the progress
 * handler does not see them (~10 ms of skipping). */
#define S_GROUP_CHECK_ROWS 65536

/* One key prefix of an IN walk: bytes in s_cursor.in_keys. */
typedef struct {
    const uint8_t *p;
    size_t len;
} s_in_key;

typedef struct {
    sqlite3_vtab base;
    dm_qctx_t *ctx;
    const dm_product_ref_t *ref; /* held by ctx->tables */
    const dm_schema_t *schema;
    const dm_contract_t *c;
    uint64_t records;
} s_vtab;

typedef struct {
    sqlite3_vtab_cursor base;
    dm_reader_cursor_t *cur;
    bool eof, with_rows;
    int64_t remaining; /* rows still allowed by a pushed LIMIT (+OFFSET); -1: no limit */
    uint64_t seq;
    const void *row, *key;
    size_t row_len, key_len;
    dm_buf_t lo, hi;
    dm_buf_t in_keys;  /* an IN walk's prefixes, back to back */
    s_in_key *in;      /* the same, sorted in key order, distinct */
    size_t nin, iin;   /* prefixes, the one walked now */
    dm_buf_t why; /* the store's line when a read fails (written only then) */
    bool grouped;      /* a grouped log scan: group says which rows each pass yields */
    dm_qgroup_t group;
} s_cursor;

/* A read of the query's snapshot failed (not "not found"): the store does
 * not log, so the worker says it once here, and the same line goes to the
 * client as SQLite's error (the caller sqlite3_frees it). Runs only on
 * failure, never per row. */
static char *s_store_error(const char *what, dm_err err, const dm_buf_t *why)
{
    const char *cause = why->len ? why->data : dm_err_str(err);
    dm_log_err("query: %s: %s", what, cause);
    return sqlite3_mprintf("%s: %s", what, cause);
}

const char *dm_query__decltype(dm_ftype t)
{
    switch (t) {
    case DM_FT_INT: return "INTEGER";
    case DM_FT_DOUBLE: return "REAL";
    case DM_FT_BOOLEAN: return "BOOLEAN";
    case DM_FT_TIMESTAMP: return "TIMESTAMP";
    case DM_FT_DATE: return "DATE";
    case DM_FT_UUID: return "UUID";
    default: return "TEXT"; /* string, enum */
    }
}

/* Creates (or connects) the table argv[2] in schema argv[1]: the product
 * that query_sql.c found under that name. */
static int s_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                     sqlite3_vtab **out, char **errmsg)
{
    dm_qctx_t *ctx = aux;
    const dm_qtable_t *t = NULL;
    bool raw = false; /* the hidden table under a product's view (query_access.c) */
    *out = NULL;
    for (size_t i = 0; argc >= 3 && i < ctx->ntables && !t; i++) {
        const dm_qtable_t *x = &ctx->tables[i];
        size_t n = strlen(x->name);
        if (strcmp(x->domain, argv[1]) != 0 || strncmp(x->name, argv[2], n) != 0)
            continue;
        raw = dm_query__viewed(x) && strcmp(argv[2] + n, DM_QUERY_RAW_SUFFIX) == 0;
        if (raw || argv[2][n] == 0)
            t = x;
    }
    if (!t) {
        *errmsg = sqlite3_mprintf("no product %s.%s", argc >= 3 ? argv[1] : "?",
                                  argc >= 3 ? argv[2] : "?");
        return SQLITE_ERROR;
    }
    s_vtab *vt = sqlite3_malloc(sizeof *vt);
    if (!vt)
        return SQLITE_NOMEM;
    memset(vt, 0, sizeof *vt);
    vt->ctx = ctx;
    vt->ref = t->ref;
    vt->schema = t->ref->schema;
    vt->c = t->ref->contract;
    dm_buf_t why = DM_BUF_INIT;
    dm_err err = dm_reader_count(ctx->reader, t->ref->pid, &vt->records, &why);
    if (err != DM_OK && err != DM_ERR_NOTFOUND) { /* NOTFOUND: nothing committed yet */
        *errmsg = s_store_error("reading the records failed", err, &why);
        dm_buf_free(&why);
        sqlite3_free(vt);
        return SQLITE_IOERR;
    }
    dm_buf_free(&why);
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
    /* Only a raw table is read by a view (ours; the sandbox refuses the
     * SQL's), which SQLite allows of innocuous tables only. */
    if (rc == SQLITE_OK)
        rc = sqlite3_vtab_config(db, raw ? SQLITE_VTAB_INNOCUOUS : SQLITE_VTAB_DIRECTONLY);
    if (rc != SQLITE_OK) {
        *errmsg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
        sqlite3_free(vt);
        return rc;
    }
    *out = &vt->base;
    return SQLITE_OK;
}

/* xDisconnect and xDestroy: the product reference belongs to the query. */
static int s_disconnect(sqlite3_vtab *base)
{
    sqlite3_free(base);
    return SQLITE_OK;
}

/* Whether constraint i can serve as a key bound at all. */
static bool s_binary(sqlite3_index_info *info, int i)
{
    const char *coll = sqlite3_vtab_collation(info, i);
    return !coll || sqlite3_stricmp(coll, "BINARY") == 0;
}

/* Finds a usable constraint on column col with one of ops[0..nops). */
static int s_find(sqlite3_index_info *info, int col, const int *ops, int nops)
{
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (!c->usable || c->iColumn != col)
            continue;
        for (int k = 0; k < nops; k++)
            if (c->op == ops[k] && s_binary(info, i))
                return i;
    }
    return -1;
}

/* Whether the ORDER BY is the key order from some column at most
 * max_start on: columns before start are fixed by an equality every walk
 * honours (max_start counts only those sure to convert, see s_best_index).
 * Key order is SQLite's (numbers by value; text by BINARY order, which the
 * string encoding, lowercase uuids and fixed-width dates and timestamps
 * keep) except for an enum, whose key orders by declaration. */
static bool s_order_by_key(const s_vtab *vt, sqlite3_index_info *info, int max_start)
{
    if (info->nOrderBy == 0)
        return false;
    for (int start = 0; start <= max_start; start++) {
        if ((size_t)(start + info->nOrderBy) > vt->c->npk)
            break;
        int k = 0;
        while (k < info->nOrderBy && !info->aOrderBy[k].desc &&
               (size_t)info->aOrderBy[k].iColumn == vt->c->pk[start + k] &&
               vt->c->fields[vt->c->pk[start + k]].type != DM_FT_ENUM)
            k++;
        if (k == info->nOrderBy)
            return true;
    }
    return false;
}

/* How constraint i's value converts, when SQLite knows it already (a
 * literal: *known set, *klen grown by its key bytes, DM_QCONV_NONE when the
 * bound would pass S_KEY_BOUND_MAX; one that no key equals is a loose
 * bound whose walk is empty); DM_QCONV_LOOSE when it is only known in
 * xFilter. */
static dm_qconv s_rhs(const s_vtab *vt, sqlite3_index_info *info, int i, bool *known, size_t *klen)
{
    sqlite3_value *rhs = NULL;
    dm_value_t v;
    bool incl = false;
    *known = false;
    if (sqlite3_vtab_rhs_value(info, i, &rhs) != SQLITE_OK || !rhs)
        return DM_QCONV_LOOSE;
    size_t f = (size_t)info->aConstraint[i].iColumn;
    dm_qconv c = dm_query__convert(vt->c, f, info->aConstraint[i].op, rhs, &v, &incl);
    *known = c != DM_QCONV_NONE;
    if (c == DM_QCONV_NONE || c == DM_QCONV_NEVER)
        return c == DM_QCONV_NEVER ? DM_QCONV_LOOSE : c;
    dm_buf_t key = DM_BUF_INIT;
    dm_schema_key_append(vt->schema, f, &v, &key);
    size_t len = key.len;
    dm_buf_free(&key);
    if (*klen + len > S_KEY_BOUND_MAX)
        return DM_QCONV_NONE;
    *klen += len;
    *known = true;
    return c == DM_QCONV_EXACT && incl ? DM_QCONV_LOOSE : c;
}

/* Uses constraint i as argv argument *argc; omitted when exact and every
 * earlier key constraint was (so xFilter never drops an omitted one). */
static void s_use(sqlite3_index_info *info, int i, dm_qconv conv, int *argc, bool *all_exact)
{
    info->aConstraintUsage[i].argvIndex = ++*argc;
    bool exact = *all_exact && conv == DM_QCONV_EXACT;
    info->aConstraintUsage[i].omit = exact;
    *all_exact = exact;
}

/* The key constraints of a plan: eq values on leading key columns (the
 * last may be an IN list, walked value by value: S_IN), then one range on
 * the next column. Sets *sure to the leading eq columns every walk fixes
 * to one value (literals that convert), *exact whether all used
 * constraints were omitted. */
static int s_best_key(const s_vtab *vt, sqlite3_index_info *info, int *argc, double *rows,
                      int *sure, bool *exact)
{
    static const int eq_op[] = {SQLITE_INDEX_CONSTRAINT_EQ};
    static const int lo_ops[] = {SQLITE_INDEX_CONSTRAINT_GT, SQLITE_INDEX_CONSTRAINT_GE};
    static const int hi_ops[] = {SQLITE_INDEX_CONSTRAINT_LT, SQLITE_INDEX_CONSTRAINT_LE};
    int neq = 0, plan = 0;
    bool known = true, k;
    size_t npk = vt->c->npk < S_MAX_PK ? vt->c->npk : S_MAX_PK, klen = 0;
    /* A literal that cannot bound the key (DM_QCONV_NONE) is left to SQLite:
     * the walk would not be narrower than a scan. */
    dm_qconv conv = DM_QCONV_NONE;
    *sure = 0;
    while ((size_t)neq < npk) {
        int i = s_find(info, (int)vt->c->pk[neq], eq_op, 1);
        if (i >= 0 && sqlite3_vtab_in(info, i, -1)) {
            /* An IN list, all at once: SQLite checks the IN itself with
             * its own affinity (a per-value "col = v" check would not). */
            sqlite3_vtab_in(info, i, 1);
            s_use(info, i, DM_QCONV_LOOSE, argc, exact);
            *rows /= S_EQ_SELECTIVITY / 4;
            return plan | S_IN | ++neq;
        }
        if (i < 0 || (conv = s_rhs(vt, info, i, &k, &klen)) == DM_QCONV_NONE)
            break;
        known = known && k;
        *sure += known;
        s_use(info, i, conv, argc, exact);
        neq++;
        *rows /= S_EQ_SELECTIVITY;
    }
    plan |= neq;
    if ((size_t)neq < npk && vt->c->fields[vt->c->pk[neq]].type != DM_FT_ENUM) {
        int col = (int)vt->c->pk[neq];
        int lo = s_find(info, col, lo_ops, 2), hi = s_find(info, col, hi_ops, 2);
        size_t lo_len = klen, hi_len = klen;
        dm_qconv lo_conv = lo >= 0 ? s_rhs(vt, info, lo, &k, &lo_len) : DM_QCONV_NONE;
        dm_qconv hi_conv = hi >= 0 ? s_rhs(vt, info, hi, &k, &hi_len) : DM_QCONV_NONE;
        /* A string key compared to a value known only in xFilter (another
         * row's column) may be compared under numeric affinity: keys like
         * '7' then become numbers, below every text, and pass "< value"
         * wherever they sort. Only the low bound stays safe. */
        if (hi_conv != DM_QCONV_NONE && !k && vt->c->fields[col].type == DM_FT_STRING)
            hi_conv = DM_QCONV_NONE;
        if (lo_conv != DM_QCONV_NONE) {
            bool lo_exact = *exact;
            s_use(info, lo, lo_conv, argc, &lo_exact);
            plan |= S_HAS_LO | (info->aConstraint[lo].op == SQLITE_INDEX_CONSTRAINT_GE ? S_LO_INCL : 0);
            *rows /= S_RANGE_SELECTIVITY;
        }
        if (hi_conv != DM_QCONV_NONE) {
            bool hi_exact = *exact; /* lo and hi are independent bounds */
            s_use(info, hi, hi_conv, argc, &hi_exact);
            plan |= S_HAS_HI | (info->aConstraint[hi].op == SQLITE_INDEX_CONSTRAINT_LE ? S_HI_INCL : 0);
            *rows /= S_RANGE_SELECTIVITY;
        }
    }
    return plan;
}

/* xBestIndex: the key constraints (s_best_key), costed from the record
 * count; see the idxNum bits above. idxStr names the plan for EXPLAIN
 * QUERY PLAN. */
static int s_best_index(sqlite3_vtab *base, sqlite3_index_info *info)
{
    s_vtab *vt = (s_vtab *)base;
    double n = vt->records > 0 ? (double)vt->records : 1.0, rows = n;
    int argc = 0, sure;
    bool exact = true;
    int plan = s_best_key(vt, info, &argc, &rows, &sure, &exact) | (info->colUsed ? S_ROWS : 0);
    int neq = plan & S_NEQ_MASK;
    /* An eq value known only in xFilter may not convert: the walk then
     * spans every value of its column, so the order starts before it. An
     * IN walks its values in key order: the order may start at its column
     * (sure stops there). */
    bool ordered = s_order_by_key(vt, info, sure);
    bool walk = argc > 0 || ordered;
    if (walk)
        plan |= S_WALK;
    /* A scan of a product ordered or grouped by enum or boolean columns
     * yields its groups one after the other, so SQLite does not sort. */
    int distinct = sqlite3_vtab_distinct(info);
    dm_buf_t grouped = DM_BUF_INIT;
    if (!walk && dm_query__group_plan(vt->c, info, distinct, &grouped)) {
        plan |= S_GROUP;
        ordered = distinct == 0; /* the LIMIT below needs SQLite's order of all rows */
    }
    if ((size_t)neq == vt->c->npk && neq > 0 && !(plan & S_IN)) {
        rows = 1;
        /* Promise one row only when every key value is a literal that
         * converts exactly: a value known only in xFilter may not convert,
         * and the walk then widens to many rows for SQLite to check. */
        if (exact)
            info->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
    }
    if (rows < 1)
        rows = 1;
    double lg = log2(n) + 1;
    info->estimatedRows = (sqlite3_int64)rows;
    double cost = lg + rows * ((plan & S_ROWS) ? S_FETCH_COST : 1.0);
    /* An IN walk of values that do not convert is one walk of the whole
     * key range (s_filter): never worse than that. */
    if (plan & S_IN && cost > n * ((plan & S_ROWS) ? S_FETCH_COST : 1.0))
        cost = n * ((plan & S_ROWS) ? S_FETCH_COST : 1.0);
    info->estimatedCost = walk ? cost : n;
    info->orderByConsumed = ordered || plan & S_GROUP;
    /* LIMIT/OFFSET: only when SQLite checks nothing after us (every other
     * constraint omitted) and sorts nothing. The walk stops after
     * limit + offset rows; SQLite applies both itself. */
    bool all_omitted = true;
    int lim = -1, off = -1;
    for (int i = 0; i < info->nConstraint; i++) {
        int op = info->aConstraint[i].op;
        if (op == SQLITE_INDEX_CONSTRAINT_LIMIT)
            lim = info->aConstraint[i].usable ? i : lim;
        else if (op == SQLITE_INDEX_CONSTRAINT_OFFSET)
            off = info->aConstraint[i].usable ? i : off;
        else if (!info->aConstraintUsage[i].omit)
            all_omitted = false;
    }
    if (lim >= 0 && all_omitted && (info->nOrderBy == 0 || ordered)) {
        info->aConstraintUsage[lim].argvIndex = ++argc;
        plan |= S_HAS_LIMIT;
        if (off >= 0) {
            info->aConstraintUsage[off].argvIndex = ++argc;
            plan |= S_HAS_OFFSET;
        }
    }
    info->idxNum = plan;
    info->idxStr = walk ? sqlite3_mprintf("pk eq=%d%s%s%s%s", neq, plan & S_IN ? " in" : "",
                                          plan & S_HAS_LO ? " lo" : "",
                                          plan & S_HAS_HI ? " hi" : "",
                                          plan & S_HAS_LIMIT ? " limit" : "")
                        : sqlite3_mprintf("log scan%s%s", grouped.len ? grouped.data : "",
                                          plan & S_HAS_LIMIT ? " limit" : "");
    dm_buf_free(&grouped);
    info->needToFreeIdxStr = 1;
    return SQLITE_OK;
}

/* xOpen: a cursor with its store cursor in the query's read transaction. */
static int s_open(sqlite3_vtab *base, sqlite3_vtab_cursor **out)
{
    s_vtab *vt = (s_vtab *)base;
    s_cursor *c = sqlite3_malloc(sizeof *c);
    if (!c)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    dm_err err = dm_reader_cursor_open(vt->ctx->reader, &c->cur, &c->why);
    if (err != DM_OK) {
        sqlite3_free(base->zErrMsg);
        base->zErrMsg = s_store_error("reading the records failed", err, &c->why);
        dm_buf_free(&c->why);
        sqlite3_free(c);
        return SQLITE_IOERR;
    }
    c->eof = true;
    *out = &c->base;
    return SQLITE_OK;
}

/* xClose. */
static int s_close(sqlite3_vtab_cursor *base)
{
    s_cursor *c = (s_cursor *)base;
    dm_reader_cursor_close(&c->cur);
    dm_buf_free(&c->lo);
    dm_buf_free(&c->hi);
    dm_buf_free(&c->in_keys);
    sqlite3_free(c->in);
    dm_buf_free(&c->why);
    sqlite3_free(c);
    return SQLITE_OK;
}

/* qsort order of IN prefixes: key order. */
static int s_in_cmp(const void *x, const void *y)
{
    const s_in_key *a = x, *b = y;
    return dm_query__bytes_cmp(a->p, a->len, b->p, b->len);
}

/* The key prefixes of an IN walk: c->lo (the earlier eq values) followed
 * by each value of list for field f, sorted and distinct, so the walk
 * keeps key order. False when a value does not convert or its bound would
 * be cut: the caller then walks the prefix once, SQLite checking the IN. */
static bool s_in_keys(s_cursor *c, const s_vtab *vt, size_t f, sqlite3_value *list)
{
    dm_buf_reset(&c->in_keys);
    size_t n = 0, cap = 0;
    sqlite3_value *v;
    int rc = sqlite3_vtab_in_first(list, &v);
    for (; rc == SQLITE_OK; rc = sqlite3_vtab_in_next(list, &v)) {
        dm_value_t kv;
        bool incl = false;
        size_t at = c->in_keys.len;
        dm_qconv conv = dm_query__convert(vt->c, f, SQLITE_INDEX_CONSTRAINT_EQ, v, &kv, &incl);
        if (conv == DM_QCONV_NEVER)
            continue; /* equals no key */
        if (conv == DM_QCONV_NONE)
            return false;
        dm_buf_append(&c->in_keys, c->lo.data, c->lo.len);
        dm_schema_key_append(vt->schema, f, &kv, &c->in_keys);
        if (c->in_keys.len - at > S_KEY_BOUND_MAX)
            return false;
        if (n == cap) {
            s_in_key *more = sqlite3_realloc64(c->in, (cap = cap ? 2 * cap : 16) * sizeof *more);
            if (!more)
                return false;
            c->in = more;
        }
        c->in[n++].len = at; /* an offset until the buffer stops moving */
    }
    for (size_t i = 0; i < n; i++) {
        size_t at = c->in[i].len, end = i + 1 < n ? c->in[i + 1].len : c->in_keys.len;
        c->in[i] = (s_in_key){(const uint8_t *)c->in_keys.data + at, end - at};
    }
    if (n)
        qsort(c->in, n, sizeof *c->in, s_in_cmp);
    for (size_t i = 0; i < n; i++)
        if (c->nin == 0 || s_in_cmp(&c->in[c->nin - 1], &c->in[i]) != 0)
            c->in[c->nin++] = c->in[i];
    return true;
}

/* Positions the cursor on the IN walk's prefix c->iin. */
static dm_err s_in_range(s_cursor *c, const s_vtab *vt)
{
    const s_in_key *k = &c->in[c->iin];
    dm_store_bound_t b = {k->p, k->len, true};
    return dm_reader_cursor_range(c->cur, vt->ref->pid, &b, &b, c->with_rows, &c->why);
}

/* The next row of a grouped scan: the next one of this pass's group, or
 * the first of the next pass when this one ends. A malformed row is
 * yielded, for xColumn to report. DM_ERR_TIMEOUT when the query was
 * stopped while rows were skipped. */
static dm_err s_next_grouped(s_cursor *c, s_vtab *vt)
{
    for (uint64_t skipped = 1;; skipped++) {
        dm_err err = DM_ERR_NOTFOUND;
        if (!dm_query__group_pass_over(&c->group))
            err = dm_reader_cursor_next(c->cur, &c->seq, &c->row, &c->row_len, NULL, NULL, &c->why);
        if (err == DM_ERR_NOTFOUND) {
            if (!dm_query__group_next(&c->group))
                return DM_ERR_NOTFOUND;
            if ((err = dm_reader_cursor_scan(c->cur, vt->ref->pid)) != DM_OK)
                return err;
            continue;
        }
        if (err)
            return err;
        int g = dm_query__group_of(&c->group, vt->schema, c->row, c->row_len);
        if (g < 0 || dm_query__group_take(&c->group, g))
            return DM_OK;
        vt->ctx->walked++;
        if (skipped % S_GROUP_CHECK_ROWS == 0 && dm_query__stopped(vt->ctx))
            return DM_ERR_TIMEOUT;
    }
}

/* xNext: the next row of the walk or scan (the next IN prefix when one
 * ends, the next group's pass in a grouped scan), until a pushed LIMIT is
 * met. */
static int s_next(sqlite3_vtab_cursor *base)
{
    s_cursor *c = (s_cursor *)base;
    if (c->remaining == 0) {
        c->eof = true;
        return SQLITE_OK;
    }
    dm_err err;
    if (c->grouped)
        err = s_next_grouped(c, (s_vtab *)base->pVtab);
    else
        while ((err = dm_reader_cursor_next(c->cur, &c->seq, &c->row, &c->row_len, &c->key,
                                            &c->key_len, &c->why)) == DM_ERR_NOTFOUND &&
               c->iin + 1 < c->nin) {
            c->iin++;
            if ((err = s_in_range(c, (s_vtab *)base->pVtab)) != DM_OK)
                break;
        }
    if (err == DM_ERR_TIMEOUT)
        return SQLITE_INTERRUPT;
    if (err == DM_ERR_NOTFOUND) {
        c->eof = true;
        return SQLITE_OK;
    }
    if (err) {
        sqlite3_free(base->pVtab->zErrMsg);
        base->pVtab->zErrMsg = s_store_error("reading the records failed", err, &c->why);
        return SQLITE_IOERR;
    }
    if (c->remaining > 0)
        c->remaining--;
    ((s_vtab *)base->pVtab)->ctx->walked++;
    return SQLITE_OK;
}

/* Appends argv value v for key field f to *key as an eq (op) or range
 * bound: DM_QCONV_EXACT when appended; DM_QCONV_NONE (key unchanged) when
 * it does not convert or the bound would pass S_KEY_BOUND_MAX, SQLite
 * checking that constraint (s_use); DM_QCONV_NEVER when no key equals it. */
static dm_qconv s_bound(const s_vtab *vt, size_t f, int op, sqlite3_value *v, dm_buf_t *key,
                        bool *incl)
{
    dm_value_t kv;
    size_t at = key->len;
    dm_qconv conv = dm_query__convert(vt->c, f, op, v, &kv, incl);
    if (conv == DM_QCONV_NONE || conv == DM_QCONV_NEVER)
        return conv;
    dm_schema_key_append(vt->schema, f, &kv, key);
    if (key->len <= S_KEY_BOUND_MAX)
        return DM_QCONV_EXACT;
    key->len = at;
    return DM_QCONV_NONE;
}

/* Positions a walk (plan has S_WALK): eq values, then an IN list or a
 * range. Values that do not convert widen the walk to the prefix before
 * them (SQLite checks those constraints itself, see s_use), so the walk
 * keeps the key order s_best_index promised; an IN list with such a
 * value is one walk of the prefix, not one per value. */
static dm_err s_walk(s_cursor *c, const s_vtab *vt, int plan, int argc, sqlite3_value **argv)
{
    int a = 0, neq = plan & S_NEQ_MASK, nfix = plan & S_IN ? neq - 1 : neq;
    dm_buf_reset(&c->lo);
    dm_buf_reset(&c->hi);
    bool exact_prefix = true, incl = false;
    for (; a < nfix && a < argc && exact_prefix; a++) {
        dm_qconv conv = s_bound(vt, vt->c->pk[a], SQLITE_INDEX_CONSTRAINT_EQ, argv[a], &c->lo, &incl);
        if (conv == DM_QCONV_NEVER) {
            c->remaining = 0; /* no key equals it: s_next ends at once */
            return DM_OK;
        }
        exact_prefix = conv == DM_QCONV_EXACT;
    }
    if (exact_prefix && plan & S_IN && a < argc && s_in_keys(c, vt, vt->c->pk[a], argv[a])) {
        if (c->nin)
            return s_in_range(c, vt);
        c->remaining = 0; /* an empty list: s_next ends at once */
        return DM_OK;
    }
    dm_buf_append(&c->hi, c->lo.data, c->lo.len);
    dm_store_bound_t lo = {c->lo.data, c->lo.len, true}, hi = {c->hi.data, c->hi.len, true};
    if (exact_prefix && !(plan & S_IN) && (size_t)neq < vt->c->npk) {
        size_t f = vt->c->pk[neq];
        int ai = neq;
        if (plan & S_HAS_LO && ai < argc) {
            incl = plan & S_LO_INCL;
            if (s_bound(vt, f, SQLITE_INDEX_CONSTRAINT_GT, argv[ai], &c->lo, &incl) == DM_QCONV_EXACT)
                lo = (dm_store_bound_t){c->lo.data, c->lo.len, incl};
            ai++;
        }
        if (plan & S_HAS_HI && ai < argc) {
            incl = plan & S_HI_INCL;
            if (s_bound(vt, f, SQLITE_INDEX_CONSTRAINT_LT, argv[ai], &c->hi, &incl) == DM_QCONV_EXACT)
                hi = (dm_store_bound_t){c->hi.data, c->hi.len, incl};
        }
    }
    return dm_reader_cursor_range(c->cur, vt->ref->pid, &lo, &hi, c->with_rows, &c->why);
}

/* xFilter: starts the plan xBestIndex chose. */
static int s_filter(sqlite3_vtab_cursor *base, int plan, const char *idxstr, int argc,
                    sqlite3_value **argv)
{
    s_cursor *c = (s_cursor *)base;
    s_vtab *vt = (s_vtab *)base->pVtab;
    int neq = plan & S_NEQ_MASK;
    c->eof = false;
    c->remaining = -1;
    c->with_rows = plan & S_ROWS;
    c->nin = c->iin = 0;
    int nargs = neq + !!(plan & S_HAS_LO) + !!(plan & S_HAS_HI);
    if (plan & S_HAS_LIMIT && nargs < argc) {
        int64_t lim = sqlite3_value_int64(argv[nargs]);
        int64_t off = plan & S_HAS_OFFSET && nargs + 1 < argc ? sqlite3_value_int64(argv[nargs + 1]) : 0;
        if (lim >= 0)
            c->remaining = off > 0 && off < INT64_MAX - lim ? lim + off : off > 0 ? -1 : lim;
    }
    c->grouped = plan & S_GROUP && dm_query__group_start(&c->group, vt->c, idxstr);
    if (plan & S_GROUP && !c->grouped) { /* our own idxStr: a bug, not the SQL's */
        sqlite3_free(base->pVtab->zErrMsg);
        base->pVtab->zErrMsg = sqlite3_mprintf("internal error: grouped plan '%s'", idxstr);
        return SQLITE_INTERNAL;
    }
    dm_err err = plan & S_WALK ? s_walk(c, vt, plan, argc, argv)
                               : dm_reader_cursor_scan(c->cur, vt->ref->pid);
    if (err) {
        sqlite3_free(base->pVtab->zErrMsg);
        base->pVtab->zErrMsg = s_store_error("reading the records failed", err, &c->why);
        return SQLITE_IOERR;
    }
    return s_next(base);
}

static int s_eof(sqlite3_vtab_cursor *base) { return ((s_cursor *)base)->eof; }

/* xColumn: decodes field i of the current row (fetching the row first when
 * the walk was key-only). */
static int s_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int i)
{
    s_cursor *c = (s_cursor *)base;
    s_vtab *vt = (s_vtab *)base->pVtab;
    dm_value_t v;
    char text[DM_TIMESTAMP_TEXT_MAX];
    dm_err err;
    if (!c->row && (err = dm_reader_get(vt->ctx->reader, vt->ref->pid, c->key, c->key_len,
                                        &c->row, &c->row_len, &c->why)) != DM_OK) {
        char *msg = s_store_error("reading a record failed", err, &c->why);
        sqlite3_result_error(ctx, msg, -1);
        sqlite3_free(msg);
        return SQLITE_ERROR;
    }
    if (i < 0 || (size_t)i >= vt->c->nfields ||
        !dm_row_get(vt->schema, c->row, c->row_len, (size_t)i, &v)) {
        char *msg = sqlite3_mprintf("product %s.%s: record %llu is malformed", vt->c->domain,
                                    vt->c->name, (unsigned long long)c->seq);
        sqlite3_result_error(ctx, msg, -1);
        sqlite3_free(msg);
        return SQLITE_ERROR;
    }
    if (v.is_null) {
        sqlite3_result_null(ctx);
        return SQLITE_OK;
    }
    switch (v.type) {
    case DM_FT_INT:
    case DM_FT_BOOLEAN:
        sqlite3_result_int64(ctx, v.i);
        break;
    case DM_FT_DOUBLE:
        sqlite3_result_double(ctx, v.d);
        break;
    case DM_FT_STRING:
    case DM_FT_ENUM:
        /* Static: the bytes live in the read transaction's map pages (or
         * the contract, held by ctx) until the query closes. */
        sqlite3_result_text(ctx, v.s, (int)v.slen, SQLITE_STATIC);
        break;
    case DM_FT_UUID:
        sqlite3_result_text(ctx, text, (int)dm_types_uuid_format(v.uuid, text), SQLITE_TRANSIENT);
        break;
    case DM_FT_DATE:
        sqlite3_result_text(ctx, text, (int)dm_types_date_format((int32_t)v.i, text), SQLITE_TRANSIENT);
        break;
    case DM_FT_TIMESTAMP:
        sqlite3_result_text(ctx, text, (int)dm_query__timestamp_text(v.i, text), SQLITE_TRANSIENT);
        break;
    default:
        sqlite3_result_null(ctx);
        break;
    }
    return SQLITE_OK;
}

/* xRowid: the row's log sequence number, stable within the snapshot. */
static int s_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid)
{
    *rowid = (sqlite3_int64)((s_cursor *)base)->seq;
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

int dm_query__register_module(sqlite3 *db, dm_qctx_t *ctx)
{
    return sqlite3_create_module_v2(db, DM_QUERY_MODULE, &s_module, ctx, NULL);
}
