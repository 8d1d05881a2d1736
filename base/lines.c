/* lines.c: opening a user-named file and the buffered line reader (see
 * lines.h).
 *
 * The buffer holds [start, fill) unconsumed bytes; memchr finds line ends.
 * A partial line at the end of the buffer is moved to the front before the
 * next read, which costs at most one short line per chunk. A line that
 * outgrows the limit switches to discard mode: its first limit bytes stay
 * at the front, later bytes are read into the chunk area behind them,
 * counted and dropped until the newline. */
#include "base/lines.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dm_lines {
    int fd;
    size_t limit;
    char *buf;
    size_t cap; /* limit + DM_LINES_CHUNK */
    size_t start, fill;
    bool eof;
    uint64_t lineno;
};

/* A short name for a file type, for messages. */
static const char *s_type_name(mode_t mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISSOCK(mode) ? "a socket"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
                            : "not a file";
}

dm_err dm_lines_open_read(const char *path, dm_file_kind kind, int *fd, dm_buf_t *why)
{
    *fd = -1;
    /* O_NONBLOCK: open(2) of a FIFO without a writer would wait forever. */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (f < 0 || fstat(f, &st) != 0) {
        int saved = errno;
        dm_buf_why(why, "%s", strerror(saved));
        if (f >= 0)
            close(f);
        errno = saved;
        return errno == ENOENT ? DM_ERR_NOTFOUND : DM_ERR_IO;
    }
    if (S_ISREG(st.st_mode)) {
        int flags = fcntl(f, F_GETFL);
        if (flags < 0 || fcntl(f, F_SETFL, flags & ~O_NONBLOCK) != 0) {
            int saved = errno;
            dm_buf_why(why, "%s", strerror(saved));
            close(f);
            errno = saved;
            return DM_ERR_IO;
        }
        *fd = f;
        return DM_OK;
    }
    close(f);
    if (kind == DM_FILE_STREAM && S_ISFIFO(st.st_mode)) {
        /* A stream: wait for its writer like a shell redirect does. */
        f = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (f < 0 || fstat(f, &st) != 0 || !S_ISFIFO(st.st_mode)) {
            int saved = f < 0 ? errno : ENODEV;
            if (f >= 0)
                close(f);
            dm_buf_why(why, "%s", strerror(saved));
            errno = saved;
            return DM_ERR_IO;
        }
        *fd = f;
        return DM_OK;
    }
    dm_buf_why(why, "not a regular file (%s)", s_type_name(st.st_mode));
    errno = ENODEV;
    return DM_ERR_IO;
}

dm_err dm_lines_read_small(const char *path, char *buf, size_t cap, dm_buf_t *why)
{
    assert(cap > 0);
    buf[0] = 0;
    int fd = -1;
    dm_buf_t reason = DM_BUF_INIT;
    dm_err rc = dm_lines_open_read(path, DM_FILE_REGULAR, &fd, &reason);
    if (rc != DM_OK) {
        dm_buf_why(why, "cannot read %s: %s", path, reason.len ? reason.data : "?");
        dm_buf_free(&reason);
        return rc;
    }
    size_t n = 0;
    while (n < cap - 1) {
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int saved = errno;
            if (why)
                dm_buf_printf(why, "cannot read %s: %s", path, strerror(saved));
            close(fd);
            buf[0] = 0;
            errno = saved;
            return DM_ERR_IO;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    buf[n] = 0;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = 0;
    return DM_OK;
}

dm_err dm_lines_new(int fd, size_t record_limit, dm_lines_t **out)
{
    assert(record_limit > 0);
    *out = NULL;
    dm_lines_t *r = calloc(1, sizeof *r);
    if (!r)
        return DM_ERR_NOMEM;
    r->fd = fd;
    r->limit = record_limit;
    r->cap = record_limit + DM_LINES_CHUNK;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        free(r);
        return DM_ERR_NOMEM;
    }
    *out = r;
    return DM_OK;
}

void dm_lines_destroy(dm_lines_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->buf);
    free(*self_p);
    *self_p = NULL;
}

/* Reads once into buf[at, cap). Returns bytes read, 0 at EOF, -1 on error. */
static ssize_t s_read(dm_lines_t *r, size_t at)
{
    for (;;) {
        ssize_t n = read(r->fd, r->buf + at, r->cap - at);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

/* The line at buf[start, start + n) ended by a newline (or EOF): strips a
 * "\r" before the newline and yields it. */
static int s_yield(dm_lines_t *r, size_t n, bool newline, const char **line, size_t *len,
                   uint64_t *lineno, uint64_t *full_len)
{
    *line = r->buf + r->start;
    if (newline && n > 0 && r->buf[r->start + n - 1] == '\r')
        n--;
    *len = n;
    *full_len = n;
    *lineno = ++r->lineno;
    return 1;
}

/* Discard mode: buf[0, limit) holds the start of an overlong line whose
 * first seen bytes run to seen. Reads and drops the rest through the
 * newline; leftover bytes after it become the next data. */
static int s_overlong(dm_lines_t *r, uint64_t seen, const char **line, size_t *len,
                      uint64_t *lineno, uint64_t *full_len)
{
    size_t area = r->limit, have = r->fill - area; /* unscanned bytes in the chunk area */
    char last = r->buf[area - 1];
    bool newline = false;
    for (;;) {
        char *nl = have ? memchr(r->buf + area, '\n', have) : NULL;
        if (nl) {
            size_t k = (size_t)(nl - (r->buf + area));
            seen += k;
            if (k)
                last = nl[-1];
            r->start = area + k + 1; /* next line starts after the newline */
            newline = true;
            break;
        }
        seen += have;
        if (have)
            last = r->buf[area + have - 1];
        ssize_t n = s_read(r, area);
        if (n < 0)
            return -1;
        if (n == 0) {
            r->eof = true;
            r->start = r->fill = area;
            break;
        }
        r->fill = area + (size_t)n;
        have = (size_t)n;
    }
    if (newline && last == '\r')
        seen--;
    *line = r->buf;
    *len = r->limit;
    *full_len = seen;
    *lineno = ++r->lineno;
    /* the kept prefix is consumed: leftover data stays at [start, fill) */
    return 1;
}

int dm_lines_next(dm_lines_t *r, const char **line, size_t *len, uint64_t *lineno,
                  uint64_t *full_len)
{
    size_t scanned = 0; /* bytes of the current line already searched */
    for (;;) {
        size_t avail = r->fill - r->start;
        char *nl = avail > scanned ? memchr(r->buf + r->start + scanned, '\n', avail - scanned) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - (r->buf + r->start));
            if (n - (n > 0 && nl[-1] == '\r') > r->limit)
                break; /* overlong but complete: same path as below */
            int rc = s_yield(r, n, true, line, len, lineno, full_len);
            r->start += n + 1;
            return rc;
        }
        scanned = avail;
        if (avail > r->limit)
            break;
        if (r->eof) {
            if (avail == 0)
                return 0;
            int rc = s_yield(r, avail, false, line, len, lineno, full_len);
            r->start = r->fill;
            return rc;
        }
        if (r->start > 0) { /* move the partial line to the front so the read is big */
            memmove(r->buf, r->buf + r->start, avail);
            r->start = 0;
            r->fill = avail;
        }
        ssize_t n = s_read(r, r->fill);
        if (n < 0)
            return -1;
        if (n == 0)
            r->eof = true;
        r->fill += (size_t)n;
    }
    /* overlong: keep its first limit bytes at the front, the rest of what is
     * buffered behind them, and let s_overlong scan on */
    size_t avail = r->fill - r->start;
    memmove(r->buf, r->buf + r->start, avail);
    r->start = 0;
    r->fill = avail;
    return s_overlong(r, r->limit, line, len, lineno, full_len);
}
