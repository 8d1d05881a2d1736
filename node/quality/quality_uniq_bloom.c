/* quality_uniq_bloom.c: a Bloom filter over every value a unique check's
 * index holds (base and pending runs), so that a value the check has
 * never seen costs a hash, not a search of the base index and of every
 * run (with a million distinct values most of a batch is new).
 *
 * The filter is storage/index_bloom.h's (one implementation with the
 * primary-key index's) and lives in the writer's memory only, in the
 * store's writer cache (dm_quality_db_cache), for the process's
 * lifetime. It was stored in LMDB and rewritten whole by every batch:
 * megabytes copied in, copied out and written to disk per batch at a
 * million values. Now it is built lazily, at the first batch of a check
 * after a start, by a walk of the base index (the caller adds the runs'
 * values), and again, twice the size, once more values were added than
 * it was sized for; it never goes to disk. (The same cache holds the
 * in-memory path's tables, quality_uniq_mem.c; those are written to a
 * file at a clean close and read back at the next start: below.)
 *
 * It only has to be a superset of the values stored: a batch that aborts
 * after adding its values leaves extra bits (a false positive costs only
 * the search), values that leave the index stay until the next build, and
 * a rebuild of the check from the rows (which writes the index directly)
 * forgets the filter. Memory: S_MAX_BYTES per check, S_TOTAL_MAX per
 * store with the checks' cached counts (quality_uniq_counts.c, at most
 * about 30 MB per check); past that the least recently used checks' are
 * dropped (and built again when their check next runs). */
#include "quality/quality_priv.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/lines.h"
#include "base/log.h"
#include "storage/index_bloom.h"

#define S_MIN_CAPACITY (1u << 18)   /* values a filter is sized for at least */
#define S_MAX_BYTES (64u << 20)     /* one filter; past it it only thins out */
#define S_TOTAL_MAX (192u << 20)    /* every filter and count table of the store */

/* The store's filters, one per (product, check). */
typedef struct {
    dm_quality__ubloom_t **f;
    size_t n, cap;
    size_t bytes; /* of every filter's bits */
    uint64_t clock;
} s_cache;

static void s_cache_free(void *p)
{
    s_cache *c = p;
    for (size_t i = 0; i < c->n; i++) {
        free(c->f[i]->bits);
        dm_quality__ucounts_free(&c->f[i]->counts);
        dm_quality__ubloom_table_free(c->f[i]);
        free(c->f[i]);
    }
    free(c->f);
    free(c);
}

/* A new entry of c for check id of pid (NULL: no memory). */
static dm_quality__ubloom_t *s_entry_new(s_cache *c, uint32_t pid, uint64_t id)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        dm_quality__ubloom_t **f = realloc(c->f, cap * sizeof *f);
        if (!f)
            return NULL;
        c->f = f;
        c->cap = cap;
    }
    dm_quality__ubloom_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->pid = pid;
    f->id = id;
    f->used = ++c->clock;
    /* tokens of earlier processes are in the store: start where they are
     * not (randomly), so that a stale token never matches */
    randombytes_buf(&f->next_token, sizeof f->next_token);
    c->f[c->n++] = f;
    return f;
}

/* ---- the in-memory tables over a clean restart ---- */

/* A unique check's table (quality_uniq_mem.c) is rebuilt by a scan of the
 * product's rows at its first batch after a start: ~0.8 s per million
 * rows and check. So at a clean close the tables are written to
 * DIR/S_FILE_NAME, each with the token of the committed state it holds,
 * and read back when the writer first needs the cache; the file is
 * deleted once read. A table whose token is not its check's stored one
 * (the file is older than the store, or its batch did not commit) is
 * rebuilt by the scan as before, and a crash never leaves a file that a
 * later start would read: the one it read is gone. A file that is not
 * whole and consistent (quality_uniq_table.c checks each table) is
 * ignored from there on. */
#define S_FILE_NAME "/quality-unique.bin"
#define S_FILE_MAGIC "DMQUT3\n" /* 2: the tables as in memory; 3: homes from the top bits */
#define S_FILE_MAGIC_BYTES 8
#define S_FILE_TABLES_MAX 65536

typedef struct {
    uint64_t pid, id, token;
} s_file_head;

static bool s_file_path(const char *dir, char *out, size_t cap, const char *suffix)
{
    int n = dir ? snprintf(out, cap, "%s%s%s", dir, S_FILE_NAME, suffix) : -1;
    return n > 0 && (size_t)n < cap;
}

static int s_count_live(void *ctx, const uint8_t *key, size_t klen, uint32_t count)
{
    (void)key;
    (void)klen;
    *(size_t *)ctx += count > 0;
    return 0;
}

/* Whether u's table is worth keeping: in memory, not empty, and mostly
 * live values (values are never taken out of a table, a count only goes
 * to 0; one mostly of those is left to the scan, which counts only the
 * live ones). */
static bool s_keeps(const dm_quality__ubloom_t *u)
{
    size_t live = 0, n = u->table && !u->durable ? dm_quality__utable_count(u->table) : 0;
    if (n)
        dm_quality__utable_each(u->table, s_count_live, &live);
    return n && live >= n / 2;
}

static void s_cache_save(void *p, const char *dir)
{
    s_cache *c = p;
    char path[DM_PATH_MAX], tmp[DM_PATH_MAX];
    uint64_t n = 0;
    int64_t t0 = dm_clock_mono_ns();
    bool *keep = calloc(c->n ? c->n : 1, sizeof *keep); /* s_keeps walks a table: once each */
    for (size_t i = 0; keep && i < c->n; i++)
        n += keep[i] = s_keeps(c->f[i]);
    FILE *f = NULL;
    if (!n || !s_file_path(dir, path, sizeof path, "") ||
        !s_file_path(dir, tmp, sizeof tmp, ".tmp") || !(f = fopen(tmp, "wb"))) {
        free(keep);
        return;
    }
    bool ok = fwrite(S_FILE_MAGIC, 1, S_FILE_MAGIC_BYTES, f) == S_FILE_MAGIC_BYTES &&
              fwrite(&n, sizeof n, 1, f) == 1;
    for (size_t i = 0; ok && i < c->n; i++) {
        const dm_quality__ubloom_t *u = c->f[i];
        s_file_head h = {u->pid, u->id, u->token};
        if (keep[i])
            ok = fwrite(&h, sizeof h, 1, f) == 1 && dm_quality__utable_write(u->table, f);
    }
    free(keep);
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        dm_log_warn("quality: cannot write the unique checks' tables to %s (the next start "
                    "counts their rows again)", path);
        return;
    }
    dm_log_info("quality: %llu unique check table(s) written to %s in %.1f ms",
                (unsigned long long)n, path, (double)(dm_clock_mono_ns() - t0) / 1e6);
}

/* Reads the tables a clean close left (see above) into c, and deletes the
 * file. */
static void s_cache_load(s_cache *c, const char *dir)
{
    char path[DM_PATH_MAX];
    FILE *f = s_file_path(dir, path, sizeof path, "") ? fopen(path, "rb") : NULL;
    if (!f)
        return;
    int64_t t0 = dm_clock_mono_ns();
    char magic[S_FILE_MAGIC_BYTES];
    uint64_t n = 0;
    size_t bytes = 0, values = 0, read = 0;
    bool ok = fread(magic, 1, sizeof magic, f) == sizeof magic &&
              memcmp(magic, S_FILE_MAGIC, S_FILE_MAGIC_BYTES) == 0 &&
              fread(&n, sizeof n, 1, f) == 1 && n <= S_FILE_TABLES_MAX;
    for (uint64_t i = 0; ok && i < n; i++) {
        s_file_head h;
        dm_quality__utable_t *table = NULL;
        dm_quality__ubloom_t *u = NULL;
        ok = fread(&h, sizeof h, 1, f) == 1 && h.pid <= UINT32_MAX &&
             (table = dm_quality__utable_read(f, DM_QUALITY_UNIQ_TABLES_MAX - bytes)) != NULL &&
             (u = s_entry_new(c, (uint32_t)h.pid, h.id)) != NULL;
        if (!ok) {
            dm_quality__utable_destroy(&table);
            break;
        }
        u->table = table;
        u->token = u->prev_token = h.token;
        bytes += dm_quality__utable_bytes(table);
        values += dm_quality__utable_count(table);
        read++;
    }
    fclose(f);
    unlink(path); /* valid for this start only */
    dm_log_info("quality: %zu unique check table(s) of %zu values read back from %s in %.1f ms%s",
                read, values, path, (double)(dm_clock_mono_ns() - t0) / 1e6,
                ok ? "" : " (the rest of the file is not valid: those checks count their rows)");
}

static s_cache *s_cache_of(dm_store_txn_t *t)
{
    s_cache *c = dm_quality_db_cache(t);
    if (!c && (c = calloc(1, sizeof *c))) {
        s_cache_load(c, dm_quality_db_dir(t));
        dm_quality_db_cache_set(t, c, s_cache_free, s_cache_save);
    }
    return c;
}

static void s_drop_bits(s_cache *c, dm_quality__ubloom_t *f)
{
    c->bytes -= f->len;
    free(f->bits);
    f->bits = NULL;
    f->len = 0;
    f->cap = f->added = 0;
}

/* Frees the least recently used filters (and counts) other than keep's
 * until want more bytes fit under S_TOTAL_MAX with every check's counts. */
static void s_make_room(s_cache *c, const dm_quality__ubloom_t *keep, size_t want)
{
    for (;;) {
        size_t counts = 0;
        dm_quality__ubloom_t *lru = NULL;
        for (size_t i = 0; i < c->n; i++) {
            counts += dm_quality__ucounts_bytes(&c->f[i]->counts);
            if (c->f[i] != keep && (c->f[i]->bits || c->f[i]->counts.slots) &&
                (!lru || c->f[i]->used < lru->used))
                lru = c->f[i];
        }
        if (c->bytes + counts + want <= S_TOTAL_MAX || !lru)
            return;
        s_drop_bits(c, lru);
        dm_quality__ucounts_free(&lru->counts);
    }
}

dm_err dm_quality__ubloom_open(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                               dm_quality__ubloom_t **out)
{
    s_cache *c = s_cache_of(t);
    *out = NULL;
    if (!c)
        return DM_ERR_NOMEM;
    for (size_t i = 0; i < c->n; i++)
        if (c->f[i]->pid == pid && c->f[i]->id == id) {
            *out = c->f[i];
            (*out)->used = ++c->clock;
            s_make_room(c, *out, 0); /* the counts grew since */
            return DM_OK;
        }
    *out = s_entry_new(c, pid, id);
    return *out ? DM_OK : DM_ERR_NOMEM;
}

void dm_quality__ubloom_forget(dm_store_txn_t *t, uint32_t pid, uint64_t id)
{
    s_cache *c = dm_quality_db_cache(t);
    for (size_t i = 0; c && i < c->n; i++)
        if (c->f[i]->pid == pid && c->f[i]->id == id) {
            s_drop_bits(c, c->f[i]);
            dm_quality__ucounts_free(&c->f[i]->counts);
            dm_quality__ubloom_table_free(c->f[i]);
        }
}

uint64_t dm_quality__ubloom_next_token(dm_quality__ubloom_t *f)
{
    if (!++f->next_token)
        f->next_token++;
    return f->next_token;
}

void dm_quality__ubloom_drop_filter(dm_store_txn_t *t, dm_quality__ubloom_t *f)
{
    s_cache *c = dm_quality_db_cache(t);
    if (c)
        s_drop_bits(c, f);
    dm_quality__ucounts_free(&f->counts);
}

void dm_quality__ubloom_table_free(dm_quality__ubloom_t *f)
{
    dm_quality__utable_destroy(&f->table);
    free(f->undo);
    f->undo = NULL;
    f->nundo = f->undo_cap = 0;
}

bool dm_quality__ubloom_table_room(dm_store_txn_t *t, const dm_quality__ubloom_t *f,
                                   size_t want, size_t max)
{
    s_cache *c = dm_quality_db_cache(t);
    for (;;) {
        size_t bytes = 0;
        dm_quality__ubloom_t *lru = NULL;
        for (size_t i = 0; c && i < c->n; i++) {
            bytes += dm_quality__utable_bytes(c->f[i]->table);
            if (c->f[i] != f && c->f[i]->table && (!lru || c->f[i]->used < lru->used))
                lru = c->f[i];
        }
        if (bytes + want <= max)
            return true;
        if (!lru)
            return false;
        dm_quality__ubloom_table_free(lru);
    }
}

bool dm_quality__ubloom_ready(const dm_quality__ubloom_t *f)
{
    /* at its largest it only thins out: built again, it would be no larger */
    return f->bits && (f->added <= f->cap || f->len >= S_MAX_BYTES);
}

bool dm_quality__ubloom_maybe(const dm_quality__ubloom_t *f, uint64_t h)
{
    return !f->bits || dm_index_bloom_test(f->bits, f->len, h);
}

void dm_quality__ubloom_add(dm_quality__ubloom_t *f, uint64_t h)
{
    if (!f->bits)
        return;
    dm_index_bloom_set(f->bits, f->len, h);
    f->added++;
}

typedef struct {
    dm_quality__ubloom_t *f;
    uint64_t seen;
} s_build_ctx;

static int s_add_entry(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    s_build_ctx *b = ctx;
    dm_quality__ubloom_add(b->f, dm_index_bloom_hash((const uint8_t *)key + DM_QUALITY_KEY_PREFIX,
                                                     klen - DM_QUALITY_KEY_PREFIX));
    b->seen++;
    return 0;
}

dm_err dm_quality__ubloom_build(dm_store_txn_t *t, uint32_t pid, uint64_t id,
                                dm_quality__ubloom_t *f, uint64_t values, uint64_t *seen,
                                dm_buf_t *why)
{
    s_cache *c = dm_quality_db_cache(t);
    int64_t t0 = dm_clock_mono_ns();
    uint64_t cap = values * 2 > S_MIN_CAPACITY ? values * 2 : S_MIN_CAPACITY;
    size_t len = dm_index_bloom_bytes(cap);
    if (len > S_MAX_BYTES)
        len = dm_index_bloom_bytes(cap = (uint64_t)S_MAX_BYTES * 8 / DM_INDEX_BLOOM_BITS_PER_KEY);
    s_drop_bits(c, f);
    s_make_room(c, f, len);
    if (!(f->bits = calloc(1, len))) {
        /* The filter only saves reads: without it every value is looked up. */
        dm_log_warn("quality: product %u: no memory for a unique check's filter (%zu KB); its "
                    "values are looked up in the index", pid, len >> 10);
        *seen = 0;
        return DM_ERR_NOMEM;
    }
    f->len = len;
    f->cap = cap;
    c->bytes += len;
    s_build_ctx b = {f, 0};
    uint8_t k[DM_QUALITY_KEY_PREFIX];
    k[0] = DM_QTAG_UNIQUE;
    dm_quality__put64(k + 1, id);
    dm_err err = dm_quality_db_each(t, pid, k, sizeof k, false, s_add_entry, &b, why);
    if (err)
        s_drop_bits(c, f);
    *seen = b.seen;
    dm_log_debug("quality: product %u: the filter of a unique check was built from %llu "
                 "indexed values (%zu KB) in %.1f ms", pid, (unsigned long long)b.seen,
                 len >> 10, (double)(dm_clock_mono_ns() - t0) / 1e6);
    return err;
}
