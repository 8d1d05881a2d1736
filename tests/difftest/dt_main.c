/* dt_main.c: the seeded differential tester (tests/difftest/README.md).
 * Per seed: a temp store with the products of dt_gen.c filled through the
 * real validator (with upserts), a native SQLite copy of what the engine
 * shows (same declared column types, so the same affinities), then random
 * queries through dm_query_open/fetch and through native SQLite, compared
 * as multisets or, under a total ORDER BY, in order. A mismatch prints the
 * seed, the query, a minimised query and both results; exit 1. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "contract/contract.h"
#include "query/query.h"
#include "record/registry.h"
#include "record/schema.h"
#include "storage/store.h"
#include "transport/rowbatch.h"
#include "dt.h"
#include "fixture.h"

#define DT_TIMEOUT_MS 5000

typedef struct {
    dm_store_t *store;
    dm_registry_t *reg;
    dm_query_engine_t *eng;
    sqlite3 *native;
} dt_env_t;

typedef struct {
    long run, matched, both_err, mismatched, timeouts, rejected, shown, max_show;
    long by_class[DT_NCLASS];
} dt_stats_t;

static void s_die(const char *what, const char *detail)
{
    fprintf(stderr, "difftest: %s: %s\n", what, detail ? detail : "");
    exit(2);
}

static void s_register(dt_env_t *env, dt_prod_t *p)
{
    static const char *const types[] = {"I", "int", "R", "double", "T", "string", "S", "timestamp",
                                        "D", "date", "U", "uuid", "E", "enum"};
    dm_buf_t y = DM_BUF_INIT;
    dm_buf_printf(&y, "apiVersion: datamesh.io/v1\nkind: DataProduct\nmetadata:\n  name: %s\n"
                      "  domain: dt\n  version: 1.0.0\n  owner:\n    team: t\n    contact: "
                      "t@example.com\nspec:\n  schema:\n    type: inline\n%s    fields:\n",
                  p->name, p->pk);
    for (int i = 0; i < p->ncols; i++) {
        const char *t = "";
        for (int k = 0; k < 14; k += 2)
            if (types[k][0] == p->cols[i].kind)
                t = types[k + 1];
        dm_buf_printf(&y, "      - {name: %s, type: %s%s%s}\n", p->cols[i].name, t,
                      p->cols[i].kind == 'E' ? ", values: [zeta, alpha, mid, beta]" : "",
                      i < p->nkey ? ", required: true" : "");
    }
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    if (dm_contract_parse("dt.yaml", y.data, y.len, NULL, &list, &n, &diags) != DM_OK)
        s_die("contract does not parse", y.data);
    dm_buf_t canon = DM_BUF_INIT;
    dm_contract_canonical(list[0], &canon);
    char dom[] = "dt", name[32], ver[] = "1.0.0";
    snprintf(name, sizeof name, "%s", p->name);
    dm_product_t in = {.domain = dom, .name = name, .version = ver, .version_major = 1,
                       .contract = canon.data, .contract_len = canon.len};
    dm_contract_hash(list[0], in.hash);
    dm_product_t out = {0};
    dm_register_outcome oc;
    if (dm_store_product_register(env->store, &in, &oc, &out, NULL, NULL) != DM_OK ||
        dm_registry_install(env->reg, out.id, canon.data, canon.len, NULL) != DM_OK)
        s_die("cannot register", p->name);
    dm_store_product_clear(&out);
    dm_buf_free(&canon);
    dm_buf_free(&y);
    dm_contract_destroy(&list[0]);
    free(list);
    dm_diags_clear(&diags);
}

/* Fills p with records rows in batches of 500; keys repeat (upserts); rows
 * the validator refuses (e.g. a timestamp its offset pushes out of range)
 * are skipped and counted. */
static long s_fill(dt_env_t *env, const dt_prod_t *p, long records, uint64_t *rng)
{
    char q[64];
    snprintf(q, sizeof q, "dt/%s", p->name);
    const dm_product_ref_t *ref;
    if (dm_registry_acquire(env->reg, q, strlen(q), &ref) != DM_OK)
        s_die("cannot acquire", q);
    enum { B = 500 };
    dm_buf_t rows[B] = {0}, keys[B] = {0}, line = DM_BUF_INIT, reasons = DM_BUF_INIT;
    dm_row_in_t in[B];
    long refused = 0;
    for (long base = 0; base < records; base += B) {
        size_t k = 0;
        for (long i = base; i < records && i < base + B; i++) {
            dm_buf_reset(&line);
            dm_buf_putc(&line, '{');
            for (int c = 0; c < p->ncols; c++) {
                dm_buf_printf(&line, "%s\"%s\":", c ? "," : "", p->cols[c].name);
                dt_json_value(p->cols[c].kind, c < p->nkey, rng, &line);
            }
            dm_buf_putc(&line, '}');
            dm_buf_reset(&rows[k]);
            dm_buf_reset(&keys[k]);
            dm_buf_reset(&reasons);
            if (!dm_schema_validate(ref->schema, line.data, line.len, &rows[k], &keys[k], &reasons)) {
                refused++;
                continue;
            }
            in[k] = (dm_row_in_t){keys[k].data, keys[k].len, rows[k].data, rows[k].len};
            k++;
        }
        dm_buf_reset(&reasons);
        if (k && dm_store_commit_batch(env->store, ref->pid, in, k, NULL, 0, "dt", NULL, &reasons))
            s_die(p->name, reasons.data);
    }
    for (int i = 0; i < B; i++) {
        dm_buf_free(&rows[i]);
        dm_buf_free(&keys[i]);
    }
    dm_buf_free(&line);
    dm_buf_free(&reasons);
    dm_registry_release(env->reg, ref);
    return refused;
}

static void s_bind(sqlite3_stmt *ins, int c, const dm_rowbatch_value_t *v)
{
    if (v->type == DM_ROWBATCH_NULL)
        sqlite3_bind_null(ins, c);
    else if (v->type == DM_ROWBATCH_INT)
        sqlite3_bind_int64(ins, c, v->i);
    else if (v->type == DM_ROWBATCH_REAL)
        sqlite3_bind_double(ins, c, v->d);
    else
        sqlite3_bind_text(ins, c, v->s, (int)v->len, SQLITE_TRANSIENT);
}

/* The native copy of p: the engine's own rows in a table with the engine's
 * declared column types, indexed on the key (speed only). */
static void s_copy(dt_env_t *env, dt_prod_t *p)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT * FROM dt.%s", p->name);
    dm_query_t *q;
    dm_buf_t err = DM_BUF_INIT, batch = DM_BUF_INIT, ddl = DM_BUF_INIT;
    if (dm_query_open(env->eng, sql, strlen(sql), &q, &err) != DM_OK)
        s_die(sql, err.data);
    int nc = dm_query_ncolumns(q);
    dm_buf_printf(&ddl, "CREATE TABLE dt.%s(", p->name);
    for (int c = 0; c < nc; c++)
        dm_buf_printf(&ddl, "%s\"%s\" %s", c ? ", " : "", dm_query_column_name(q, c),
                      dm_query_column_decltype(q, c));
    dm_buf_printf(&ddl, "); CREATE INDEX dt.%s_k ON %s(", p->name, p->name);
    for (int c = 0; c < p->nkey; c++)
        dm_buf_printf(&ddl, "%s%s", c ? ", " : "", p->cols[c].name);
    dm_buf_puts(&ddl, ")");
    if (sqlite3_exec(env->native, ddl.data, NULL, NULL, NULL) != SQLITE_OK)
        s_die(ddl.data, sqlite3_errmsg(env->native));
    dm_buf_reset(&ddl);
    dm_buf_printf(&ddl, "INSERT INTO dt.%s VALUES (?", p->name);
    for (int c = 1; c < nc; c++)
        dm_buf_puts(&ddl, ", ?");
    dm_buf_puts(&ddl, ")");
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(env->native, ddl.data, -1, &ins, NULL) != SQLITE_OK)
        s_die(ddl.data, sqlite3_errmsg(env->native));
    p->rows = 0;
    for (bool done = false; !done;) {
        uint32_t got;
        dm_buf_reset(&batch);
        if (dm_query_fetch(q, 1000, 0, &batch, &got, &done, &err) != DM_OK)
            s_die(sql, err.data);
        const uint8_t *b = (const uint8_t *)batch.data, *end = b + batch.len;
        for (uint32_t r = 0; r < got; r++, p->rows++) {
            for (int c = 0; c < nc; c++) {
                dm_rowbatch_value_t v;
                if (!dm_rowbatch_read(&b, end, &v))
                    s_die(sql, "bad row batch");
                s_bind(ins, c + 1, &v);
            }
            if (sqlite3_step(ins) != SQLITE_DONE)
                s_die(ddl.data, sqlite3_errmsg(env->native));
            sqlite3_reset(ins);
        }
    }
    sqlite3_finalize(ins);
    dm_query_close(&q);
    dm_buf_free(&err);
    dm_buf_free(&batch);
    dm_buf_free(&ddl);
}

/* One value as comparison text: reals tagged (an INTEGER 1 is not a REAL
 * 1.0), -0.0 shown as 0 (a native REAL column stores -0.0 as 0). */
static void s_value(dm_buf_t *o, int type, int64_t i, double d, const char *s, size_t len)
{
    if (type == 0)
        dm_buf_puts(o, "NULL");
    else if (type == 1)
        dm_buf_printf(o, "%lld", (long long)i);
    else if (type == 2)
        dm_buf_printf(o, "R:%.17g", d == 0 ? 0.0 : d);
    else {
        dm_buf_putc(o, '\'');
        dm_buf_append(o, s, len);
        dm_buf_putc(o, '\'');
    }
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lines (one per row) to a single text, sorted unless ordered. */
static void s_finish(dm_buf_t *lines, bool ordered, dm_buf_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < lines->len; i++)
        n += lines->data[i] == '\n';
    char **v = calloc(n + 1, sizeof *v);
    size_t k = 0;
    for (char *p = lines->data; k < n; k++) {
        v[k] = p;
        p = strchr(p, '\n');
        *p++ = 0;
    }
    if (!ordered)
        qsort(v, n, sizeof *v, s_cmp_str);
    dm_buf_reset(out);
    for (k = 0; k < n; k++)
        dm_buf_printf(out, "%s\n", v[k]);
    if (!out->data)
        dm_buf_puts(out, "");
    free(v);
}

/* Runs sql on the engine: 0 rows in out, 1 error (message in out), 2 timeout. */
static int s_engine(dt_env_t *env, const char *sql, bool ordered, dm_buf_t *out)
{
    dm_query_t *q = NULL;
    dm_buf_t err = DM_BUF_INIT, batch = DM_BUF_INIT, lines = DM_BUF_INIT;
    dm_err rc = dm_query_open(env->eng, sql, strlen(sql), &q, &err);
    for (bool done = false; rc == DM_OK && !done;) {
        uint32_t n;
        dm_buf_reset(&batch);
        rc = dm_query_fetch(q, 500, 0, &batch, &n, &done, &err);
        const uint8_t *b = (const uint8_t *)batch.data, *end = b + batch.len;
        for (uint32_t r = 0; r < n; r++) {
            for (int c = 0; c < dm_query_ncolumns(q); c++) {
                dm_rowbatch_value_t v;
                if (!dm_rowbatch_read(&b, end, &v))
                    s_die(sql, "bad row batch");
                dm_buf_puts(&lines, c ? "|" : "");
                s_value(&lines, v.type == DM_ROWBATCH_NULL ? 0 : v.type == DM_ROWBATCH_INT ? 1
                                : v.type == DM_ROWBATCH_REAL ? 2 : 3, v.i, v.d, v.s, v.len);
            }
            dm_buf_putc(&lines, '\n');
        }
    }
    dm_query_close(&q);
    int res = rc == DM_OK ? 0 : rc == DM_ERR_TIMEOUT ? 2 : 1;
    if (res) {
        dm_buf_reset(out);
        dm_buf_printf(out, "error %s: %s\n", dm_err_str(rc), err.data ? err.data : "");
    } else {
        s_finish(&lines, ordered, out);
    }
    dm_buf_free(&err);
    dm_buf_free(&batch);
    dm_buf_free(&lines);
    return res;
}

static int s_native(dt_env_t *env, const char *sql, bool ordered, dm_buf_t *out)
{
    sqlite3_stmt *st;
    dm_buf_t lines = DM_BUF_INIT;
    int rc = sqlite3_prepare_v2(env->native, sql, -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            int t = sqlite3_column_type(st, c);
            const char *s = t == SQLITE_TEXT || t == SQLITE_BLOB
                                ? (const char *)sqlite3_column_blob(st, c) : NULL;
            dm_buf_puts(&lines, c ? "|" : "");
            s_value(&lines, t == SQLITE_NULL ? 0 : t == SQLITE_INTEGER ? 1 : t == SQLITE_FLOAT ? 2 : 3,
                    sqlite3_column_int64(st, c), sqlite3_column_double(st, c), s,
                    (size_t)sqlite3_column_bytes(st, c));
        }
        dm_buf_putc(&lines, '\n');
        rc = SQLITE_OK;
    }
    int res = rc == SQLITE_DONE ? 0 : 1;
    if (res) {
        dm_buf_reset(out);
        dm_buf_printf(out, "error: %s\n", sqlite3_errmsg(env->native));
    } else {
        s_finish(&lines, ordered, out);
    }
    sqlite3_finalize(st);
    dm_buf_free(&lines);
    return res;
}

/* 0 match (or both failed), 1 mismatch, 2 engine timeout. */
static int s_check(dt_env_t *env, const dt_query_t *q, uint32_t mask, dm_buf_t *eo, dm_buf_t *no,
                   int *both_err)
{
    dm_buf_t sql = DM_BUF_INIT;
    dt_sql(q, mask, &sql);
    bool ordered = q->ordered && (mask & (1u << P_ORDER));
    int e = s_engine(env, sql.data, ordered, eo), n = s_native(env, sql.data, ordered, no);
    dm_buf_free(&sql);
    *both_err = e == 1 && n == 1;
    if (e == 2)
        return 2;
    if (*both_err)
        return 0;
    return e != n || strcmp(eo->data, no->data) != 0;
}

/* Drops parts while the mismatch (or timeout) persists; returns the mask. */
static uint32_t s_minimise(dt_env_t *env, const dt_query_t *q, int kind, dm_buf_t *eo, dm_buf_t *no)
{
    uint32_t mask = ~0u;
    for (bool changed = true; changed;) {
        changed = false;
        for (int b = P_W0; b < P_N; b++) {
            if (!q->part[b].len || !(mask & (1u << b)))
                continue;
            int be;
            if (s_check(env, q, mask & ~(1u << b), eo, no, &be) == kind) {
                mask &= ~(1u << b);
                changed = true;
            }
        }
    }
    int be;
    (void)s_check(env, q, mask, eo, no, &be);
    return mask;
}

static void s_show(const char *who, const dm_buf_t *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->len; i++)
        n += r->data[i] == '\n';
    printf("  %s (%zu lines):\n", who, n);
    const char *p = r->data;
    for (int i = 0; i < 8 && p && *p; i++) {
        const char *e = strchr(p, '\n');
        int len = (int)(e ? e - p : (long)strlen(p));
        printf("    %.*s%s\n", len > 160 ? 160 : len, p, len > 160 ? "..." : "");
        p = e ? e + 1 : NULL;
    }
}

/* The first line where the two results differ (results may be long). */
static void s_first_diff(const dm_buf_t *a, const dm_buf_t *b)
{
    const char *p = a->data ? a->data : "", *q = b->data ? b->data : "";
    long line = 1;
    while (*p && *q) {
        size_t la = strcspn(p, "\n"), lb = strcspn(q, "\n");
        if (la != lb || memcmp(p, q, la)) {
            printf("  first difference, line %ld:\n    engine: %.*s\n    native: %.*s\n", line,
                   (int)(la > 160 ? 160 : la), p, (int)(lb > 160 ? 160 : lb), q);
            return;
        }
        p += la + (p[la] == '\n');
        q += lb + (q[lb] == '\n');
        line++;
    }
    printf("  first difference, line %ld: %s ends first\n", line, *p ? "native" : "engine");
}

static void s_report(dt_env_t *env, const dt_query_t *q, uint64_t seed, long i, int kind,
                     dt_stats_t *st)
{
    dm_buf_t sql = DM_BUF_INIT, eo = DM_BUF_INIT, no = DM_BUF_INIT;
    if (st->shown++ >= st->max_show)
        return;
    dt_sql(q, ~0u, &sql);
    printf("%s seed=%llu query=%ld class=%s\n  query: %.600s%s\n", kind == 2 ? "TIMEOUT" : "MISMATCH",
           (unsigned long long)seed, i, dt_class_names[q->cls], sql.data,
           sql.len > 600 ? "..." : "");
    uint32_t mask = s_minimise(env, q, kind, &eo, &no);
    dt_sql(q, mask, &sql);
    printf("  minimised: %.600s%s\n", sql.data, sql.len > 600 ? "..." : "");
    s_show("engine", &eo);
    s_show("native", &no);
    s_first_diff(&eo, &no);
    fflush(stdout);
    dm_buf_free(&sql);
    dm_buf_free(&eo);
    dm_buf_free(&no);
}

static void s_env_open(dt_env_t *env, char *dir, size_t cap)
{
    dm_store_opts_t opts = {.initial_map_bytes = (size_t)1 << 30};
    dm_query_limits_t lim = {.timeout_ms = DT_TIMEOUT_MS};
    if (!dm_t_tmpdir(dir, cap, "difftest") || dm_store_open(dir, &opts, &env->store, NULL) ||
        dm_registry_new(&env->reg) || dm_query_engine_new(env->store, env->reg, &lim, &env->eng, NULL))
        s_die("cannot open a store in", dir);
    if (sqlite3_open(":memory:", &env->native) != SQLITE_OK ||
        sqlite3_exec(env->native, "ATTACH ':memory:' AS dt", NULL, NULL, NULL) != SQLITE_OK)
        s_die("cannot open native SQLite", sqlite3_errmsg(env->native));
}

static void s_env_close(dt_env_t *env, const char *dir)
{
    sqlite3_close(env->native);
    dm_query_engine_destroy(&env->eng);
    dm_registry_destroy(&env->reg);
    dm_store_destroy(&env->store);
    dm_t_rmdir(dir);
}

static void s_seed(uint64_t seed, long queries, long records, uint32_t classes, dt_stats_t *st)
{
    dt_env_t env = {0};
    char dir[PATH_MAX];
    s_env_open(&env, dir, sizeof dir);
    uint64_t rng = seed * 0x100000001B3u + 17;
    long refused = 0;
    for (int p = 0; p < dt_nprods; p++) {
        s_register(&env, &dt_prods[p]);
        refused += s_fill(&env, &dt_prods[p], records, &rng);
        s_copy(&env, &dt_prods[p]);
    }
    st->rejected += refused;
    int ncls = 0, cls[DT_NCLASS];
    dt_out_of_range = classes & (1u << DT_RANGE);
    for (int c = 0; c < DT_RANGE; c++)
        if (classes & (1u << c))
            cls[ncls++] = c;
    dm_buf_t eo = DM_BUF_INIT, no = DM_BUF_INIT;
    for (long i = 0; i < queries && ncls; i++) {
        dt_query_t q;
        dt_gen(&q, cls[dt_rand(&rng) % (uint64_t)ncls], &rng, env.native);
        int be, kind = s_check(&env, &q, ~0u, &eo, &no, &be);
        st->run++;
        st->both_err += be;
        if (kind == 0) {
            st->matched++;
        } else {
            st->mismatched += kind == 1;
            st->timeouts += kind == 2;
            st->by_class[q.cls]++;
            s_report(&env, &q, seed, i, kind, st);
        }
        dt_query_free(&q);
    }
    dm_buf_free(&eo);
    dm_buf_free(&no);
    s_env_close(&env, dir);
}

static uint32_t s_classes(const char *list)
{
    if (!list || !*list || !strcmp(list, "all"))
        return (1u << DT_NCLASS) - 1;
    uint32_t m = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int c = 0;
        while (c < DT_NCLASS && strcmp(dt_class_names[c], t))
            c++;
        if (c == DT_NCLASS)
            s_die("unknown class (valid: filter,order,group,in,join,corr,cte,long,agg,range,all)", t);
        m |= 1u << c;
    }
    return m;
}

int main(int argc, char **argv)
{
    long queries = 200, records = 2000, seeds = 1;
    uint64_t seed = 1;
    dt_stats_t st = {.max_show = 10};
    const char *classes = getenv("DT_CLASSES");
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--queries")) queries = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--seeds")) seeds = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--records")) records = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--classes")) classes = argv[i + 1];
        else if (!strcmp(argv[i], "--show")) st.max_show = atol(argv[i + 1]);
        else s_die("unknown option (valid: --queries N --seed S --seeds K --records R "
                   "--classes a,b --show K)", argv[i]);
    }
    uint32_t mask = s_classes(classes);
    double t0 = dm_clock_mono_s();
    for (long k = 0; k < seeds; k++)
        s_seed(seed + (uint64_t)k, queries, records, mask, &st);
    printf("difftest: seeds %llu..%llu, %ld records/product, queries run %ld, matched %ld "
           "(%ld both failed), mismatched %ld, engine timeouts %ld, rows refused %ld, %.1f s\n",
           (unsigned long long)seed, (unsigned long long)(seed + (uint64_t)seeds - 1), records,
           st.run, st.matched, st.both_err, st.mismatched, st.timeouts, st.rejected,
           dm_clock_mono_s() - t0);
    for (int c = 0; c < DT_NCLASS; c++)
        if (st.by_class[c])
            printf("  class %s: %ld failed\n", dt_class_names[c], st.by_class[c]);
    return st.mismatched || st.timeouts ? 1 : 0;
}
