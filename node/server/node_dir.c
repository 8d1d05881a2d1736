/* node_dir.c: the node's data directory: created on first start, locked
 * against a second meshd, and bound to one domain for life (DIR/domain).
 * Also the small-file helpers the node uses there (DIR/node.addr). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/node_priv.h"

int dm_node__mkdirs(const char *path)
{
    char tmp[DM_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int dm_node__write_file(const char *dir, const char *name, const char *text)
{
    char path[DM_PATH_MAX], tmp[DM_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

dm_err dm_node__dir_open(dm_node_t *self, const dm_node_opts_t *opts, dm_buf_t *why)
{
    if (dm_node__mkdirs(opts->data_dir) != 0) {
        dm_buf_printf(why, "cannot create data directory %s: %s", opts->data_dir,
                      strerror(errno));
        return DM_ERR_IO;
    }
    char path[DM_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", opts->data_dir, DM_NODE_LOCK_FILE);
    self->lock_fd = open(path, O_RDWR | O_CREAT, 0600);
    if (self->lock_fd < 0) {
        dm_buf_printf(why, "cannot open %s: %s", path, strerror(errno));
        return DM_ERR_IO;
    }
    if (flock(self->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        dm_buf_printf(why, "another meshd is already serving %s (its lock %s is held)",
                      opts->data_dir, path);
        return DM_ERR_EXISTS;
    }
    char stored[128] = "";
    snprintf(path, sizeof path, "%s/%s", opts->data_dir, DM_NODE_DOMAIN_FILE);
    /* No file (or one that cannot be read) is a new directory. */
    bool have = dm_lines_read_small(path, stored, sizeof stored, NULL) == DM_OK && stored[0];
    if (opts->domain && !dm_text_is_name(opts->domain)) {
        dm_buf_printf(why, "invalid --domain '%s': expected " DM_TEXT_NAME_RULE,
                      opts->domain);
        return DM_ERR_USAGE;
    }
    if (have && opts->domain && strcmp(stored, opts->domain) != 0) {
        dm_buf_printf(why,
                      "%s belongs to domain '%s', not '%s': a node serves one domain for life "
                      "(use another --data directory)",
                      opts->data_dir, stored, opts->domain);
        return DM_ERR_CONFLICT;
    }
    if (!have && !opts->domain) {
        dm_buf_printf(why, "%s is a new data directory: --domain NAME is required",
                      opts->data_dir);
        return DM_ERR_USAGE;
    }
    if (!have && dm_node__write_file(opts->data_dir, DM_NODE_DOMAIN_FILE, opts->domain) != 0) {
        dm_buf_printf(why, "cannot write %s: %s", path, strerror(errno));
        return DM_ERR_IO;
    }
    self->domain = strdup(have ? stored : opts->domain);
    self->dir = strdup(opts->data_dir);
    return self->domain && self->dir ? DM_OK : DM_ERR_NOMEM;
}
