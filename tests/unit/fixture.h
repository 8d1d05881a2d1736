/* fixture.h: the temporary-directory fixture the unit tests share. A test
 * makes its directory with mkdtemp and removes it with dm_t_rmdir. */
#ifndef DM_TEST_FIXTURE_H
#define DM_TEST_FIXTURE_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Removes dir and the files directly in it (a store or catalog directory
 * holds no subdirectories). Ignores what does not exist. */
static inline void dm_t_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[PATH_MAX + 300];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

#endif
