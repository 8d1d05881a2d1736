/* reader.h: read access to the record databases for queries.
 *
 * A reader is one LMDB read transaction: a consistent snapshot of the store
 * as of dm_reader_open, so a batch acknowledged before the open is
 * visible (read-your-writes) and later batches are not. Cursors walk a
 * product's rows either in log (sequence) order or in primary-key order
 * within bounds, merging the parts of the index (pk_recent and the
 * product's sorted runs in pk; the newest part wins for the same key). Everything is zero-copy: row pointers point into
 * the memory map.
 *
 * Lifetimes: a row pointer returned by a cursor or by dm_reader_get
 * is valid until the reader is closed (LMDB keeps a read transaction's
 * pages in place, and the store cannot resize the map while a reader is
 * open, see below). Callers should still treat it as valid only until the
 * next call on the same cursor, so the reader may later recycle memory.
 *
 * Threads: a reader and its cursors are used by one thread at a time; the
 * environment is opened with MDB_NOTLS, so a reader may move between
 * threads between calls. The reader holds the store's gate shared for its
 * whole life (store_int.h): map growth takes the gate exclusive, so a
 * writer that must grow the map waits until every open reader closes.
 * Shared entry waits only for a resize in progress, so a long query never
 * blocks other readers or normal commits; only a commit that needs a
 * bigger map waits. So that a steady overlap of queries cannot starve that
 * commit, dm_reader_open refuses new readers (DM_ERR_BUSY) while a
 * thread waits to grow the map: growth waits at most for the readers
 * already open, each bounded by its query's time limit. Never keep a
 * reader open across a wait on the writer, and close it as soon as the
 * query ends. Any thread may close a reader (the gate is a count, not a
 * lock owned by a thread).
 *
 * Errors (base/err.h): DM_ERR_NOTFOUND and DM_ERR_BUSY leave why untouched;
 * any other failure appends one line to why (nothing here logs). why is
 * written only on failure, so passing it to dm_reader_cursor_next costs a
 * scan nothing per row. */
#ifndef DM_STORE_READER_H
#define DM_STORE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/store.h"

typedef struct dm_store_reader dm_reader_t;
typedef struct dm_store_cursor dm_reader_cursor_t;

/* One end of a primary-key range: the encoded bytes of the leading key
 * fields (a prefix of whole fields, node/record/row.h's key encoding) and
 * whether keys that start with them are inside. Prefix semantics: a key
 * k compares to the bound by its first len bytes, so with a bound on the
 * first field only, every key with that first field compares equal. An
 * empty inclusive bound is no bound. */
typedef struct {
    const void *key;
    size_t len;
    bool inclusive;
} dm_store_bound_t;

/* Opens a read transaction on store. On error *out is NULL; DM_ERR_BUSY
 * while the map is being grown (retry shortly); DM_ERR_STORE (a line in
 * why) when LMDB refuses, for example when every reader slot is taken. */
DM_NODISCARD dm_err dm_reader_open(dm_store_t *store, dm_reader_t **out, dm_buf_t *why);
/* Ends the transaction and releases the lock. Every cursor of the reader
 * must be closed first. NULL-safe; sets *self_p to NULL. */
void dm_reader_close(dm_reader_t **self_p);

/* Live rows of product pid in this snapshot. DM_ERR_NOTFOUND if pid is not
 * registered. */
DM_NODISCARD dm_err dm_reader_count(dm_reader_t *self, uint32_t pid, uint64_t *records,
                                    dm_buf_t *why);

/* Finds the row of pid stored under the full primary key key (key_len
 * bytes). DM_ERR_NOTFOUND if there is none; *row then NULL. */
DM_NODISCARD dm_err dm_reader_get(dm_reader_t *self, uint32_t pid, const void *key,
                                  size_t key_len, const void **row, size_t *row_len,
                                  dm_buf_t *why);

/* Opens a cursor of the reader; it yields nothing until positioned with
 * dm_reader_cursor_scan or dm_reader_cursor_range. */
DM_NODISCARD dm_err dm_reader_cursor_open(dm_reader_t *reader, dm_reader_cursor_t **out,
                                          dm_buf_t *why);
/* NULL-safe; sets *self_p to NULL. */
void dm_reader_cursor_close(dm_reader_cursor_t **self_p);

/* Positions the cursor before the first row of pid in log order (every
 * live row, oldest first). */
DM_NODISCARD dm_err dm_reader_cursor_scan(dm_reader_cursor_t *self, uint32_t pid);

/* Positions the cursor before the first key of pid inside [lo, hi] (see
 * dm_store_bound_t), in key order. with_rows false skips fetching rows from
 * the log: dm_reader_cursor_next then returns keys only (row NULL), which
 * is enough for counting. The bounds are copied. */
DM_NODISCARD dm_err dm_reader_cursor_range(dm_reader_cursor_t *self, uint32_t pid,
                                          const dm_store_bound_t *lo, const dm_store_bound_t *hi,
                                          bool with_rows, dm_buf_t *why);

/* One step. On DM_OK: *seq is the row's sequence number, row/row_len the
 * encoded row (NULL, 0 for a key-only range), key/key_len the primary key
 * without the pid (NULL, 0 in a log scan). DM_ERR_NOTFOUND at the end;
 * DM_ERR_STORE (a line in why) on a corrupt index or LMDB failure. Any
 * output pointer may be NULL when not wanted. */
DM_NODISCARD dm_err dm_reader_cursor_next(dm_reader_cursor_t *self, uint64_t *seq, const void **row,
                                         size_t *row_len, const void **key, size_t *key_len,
                                         dm_buf_t *why);

/* Index entries the cursor's range walks have stepped over so far (the
 * range's keys, and stale copies of them in older runs): a range walk
 * seeks every part of the index to its start, so this stays near the
 * rows returned, whatever the product's size. */
uint64_t dm_reader_cursor_walked(const dm_reader_cursor_t *self);

#endif
