/* lines.h: a buffered line reader over a file descriptor.
 *
 * Reads in big chunks (DM_LINES_CHUNK) and hands out each line in place,
 * without its "\n" and a "\r" before it, with its 1-based line number. A
 * line longer than the record limit is handed out cut to the limit, with its
 * full length reported, and is never held whole: the reader holds at most
 * limit + DM_LINES_CHUNK bytes, so a 100 MiB line costs no more memory than
 * a short one. Also the one way a file a user named is opened
 * (dm_lines_open_read: never blocks on a FIFO or device), reading a small
 * one-line file whole (dm_lines_read_small), and the project's path limit,
 * DM_PATH_MAX. */
#ifndef DM_LINES_H
#define DM_LINES_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

#define DM_LINES_CHUNK (1024 * 1024) /* bytes per read(2) */
/* Bytes of a path the project builds (a data directory plus a file name),
 * NUL included; one limit for meshd, its threads and the tools. */
#define DM_PATH_MAX 4096

typedef struct dm_lines dm_lines_t;

/* What dm_lines_open_read accepts besides a regular file. */
typedef enum {
    DM_FILE_REGULAR, /* contracts, .avsc, keys: a regular file only */
    DM_FILE_STREAM   /* record inputs: also a pipe or FIFO (read like stdin) */
} dm_file_kind;

/* Opens a file a user named, for reading, without ever blocking in open(2)
 * on something that is not a regular file: the type is checked with the
 * file open non-blocking, so a FIFO, a device or a socket where a contract
 * belongs is refused at once instead of hanging. With DM_FILE_STREAM a pipe
 * or FIFO is then opened as a stream (its open waits for a writer, as
 * reading stdin does). On success *fd (blocking, O_CLOEXEC) is the
 * caller's to close. On failure *fd is -1, errno is set (ENODEV for a
 * file of the wrong type) and why (NULL allowed) gets a reason without
 * the path, e.g. "not a regular file (a FIFO)". */
DM_NODISCARD dm_err dm_lines_open_read(const char *path, dm_file_kind kind, int *fd,
                                      dm_buf_t *why);

/* Reads the small regular file path (opened as dm_lines_open_read does)
 * into buf: at most cap - 1 bytes (cap > 0; the rest is not read),
 * NUL-terminated, trailing "\n", "\r" and spaces trimmed. For one-line
 * files such as a node's address or domain. On failure buf is "", and
 * DM_ERR_NOTFOUND (no such file) or DM_ERR_IO is returned, errno set, and
 * why (NULL allowed) gets "cannot read PATH: REASON". */
DM_NODISCARD dm_err dm_lines_read_small(const char *path, char *buf, size_t cap, dm_buf_t *why);

/* Creates a reader of fd (not owned: the caller closes it) for lines of up to
 * record_limit bytes (> 0). DM_ERR_NOMEM on failure, *out NULL. */
DM_NODISCARD dm_err dm_lines_new(int fd, size_t record_limit, dm_lines_t **out);

/* Frees the reader. NULL-safe; sets *self_p to NULL. */
void dm_lines_destroy(dm_lines_t **self_p);

/* Yields the next line: returns 1 with *line and *len (at most the limit; the
 * text stays valid until the next call), *lineno (1-based) and *full_len
 * (the line's real length, > *len when it was cut); 0 at end of file; -1 on
 * a read error, errno kept. A last line without "\n" is still a line. */
int dm_lines_next(dm_lines_t *r, const char **line, size_t *len, uint64_t *lineno,
                  uint64_t *full_len);

#endif
