/* meta_write.c: an LD_PRELOAD shim that fails LMDB's meta-page writes on
 * demand, the way a full disk or a dying device would. While the file named
 * by $DM_FAULT_META_TRIGGER exists, a pwrite to the first two pages of a
 * file called data.mdb fails with EIO; LMDB then marks its environment
 * fatal (MDB_PANIC). Everything else passes through untouched. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_META_PAGES 2 /* LMDB pages 0 and 1, of the OS page size */

typedef ssize_t (*s_pwrite_fn)(int, const void *, size_t, off_t);

static int s_is_data_file(int fd)
{
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = 0;
    size_t len = (size_t)n;
    return len >= 8 && strcmp(path + len - 8, "data.mdb") == 0;
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
{
    static s_pwrite_fn real;
    if (!real)
        real = (s_pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
    const char *trigger = getenv("DM_FAULT_META_TRIGGER");
    if (trigger && offset < S_META_PAGES * sysconf(_SC_PAGESIZE) && access(trigger, F_OK) == 0 &&
        s_is_data_file(fd)) {
        errno = EIO;
        return -1;
    }
    return real(fd, buf, count, offset);
}
