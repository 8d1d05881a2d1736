/* fixture.h: the temporary-directory fixture every test shares (unit,
 * multi-node and perf): dm_t_tmpdir makes a fresh directory under /tmp,
 * dm_t_rmdir removes it with everything in it. Header-only so each test
 * executable needs no extra library. */
#ifndef DM_TEST_FIXTURE_H
#define DM_TEST_FIXTURE_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Makes a fresh directory /tmp/dm_<name>_XXXXXX (mode 0700) into dir (cap
 * bytes). Returns dir, or NULL with errno set. */
static inline char *dm_t_tmpdir(char *dir, size_t cap, const char *name)
{
    if (snprintf(dir, cap, "/tmp/dm_%s_XXXXXX", name) >= (int)cap)
        return NULL;
    return mkdtemp(dir);
}

/* Removes path and, if it is a directory, all it holds (subdirectories,
 * FIFOs, sockets too; symbolic links are removed, not followed). Ignores
 * what does not exist. Returns 0, or -1 if something could not be removed. */
static inline int dm_t_rmdir(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? 0 : -1;
    int rc = 0;
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        char sub[PATH_MAX];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub ||
                    dm_t_rmdir(sub) != 0)
                    rc = -1;
            }
        closedir(d);
    }
    return rmdir(path) == 0 ? rc : -1;
}

#endif
