/* test_file_open.c: dm_lines_open_read, the one open of a file a user
 * named: DM_FILE_REGULAR refuses what is not a regular file at once instead
 * of blocking in open(2) (a FIFO with no writer, a directory, a device);
 * DM_FILE_STREAM (record inputs) may be a pipe. The callers' own cases:
 * contract/test_contract_files.c, identity/test_identity.c. Each test has a
 * deadline: a hang is a failure, not a stuck run. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/lines.h"
#include "fixture.h"

#define T_DEADLINE_S 10 /* a blocked open would hold the test far longer */

static char s_dir[64];

static void s_setup(void)
{
    cr_assert_not_null(dm_t_tmpdir(s_dir, sizeof s_dir, "file_open"));
}

static void s_teardown(void)
{
    cr_assert_eq(dm_t_rmdir(s_dir), 0);
}

TestSuite(file_open, .init = s_setup, .fini = s_teardown, .timeout = T_DEADLINE_S);

static const char *s_fifo(const char *name)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    cr_assert_eq(mkfifo(path, 0600), 0);
    return path;
}

Test(file_open, regular_only_refuses_fifo_device_and_directory)
{
    int fd = -1;
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_lines_open_read(s_fifo("f"), DM_FILE_REGULAR, &fd, &why), DM_ERR_IO);
    cr_assert_eq(fd, -1);
    cr_assert_str_eq(why.data, "not a regular file (a FIFO)");
    dm_buf_reset(&why);
    cr_assert_eq(dm_lines_open_read("/dev/null", DM_FILE_REGULAR, &fd, &why), DM_ERR_IO);
    cr_assert_str_eq(why.data, "not a regular file (a character device)");
    dm_buf_reset(&why);
    cr_assert_eq(dm_lines_open_read(s_dir, DM_FILE_STREAM, &fd, &why), DM_ERR_IO);
    cr_assert_str_eq(why.data, "not a regular file (a directory)");
    char missing[128];
    snprintf(missing, sizeof missing, "%s/none", s_dir);
    cr_assert_eq(dm_lines_open_read(missing, DM_FILE_REGULAR, &fd, &why), DM_ERR_NOTFOUND);
    dm_buf_free(&why);
}

Test(file_open, a_regular_file_opens_blocking)
{
    char path[128];
    snprintf(path, sizeof path, "%s/r", s_dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("x\n", f);
    fclose(f);
    int fd = -1;
    cr_assert_eq(dm_lines_open_read(path, DM_FILE_REGULAR, &fd, NULL), DM_OK);
    cr_assert_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    char buf[4];
    cr_assert_eq(read(fd, buf, sizeof buf), 2);
    close(fd);
}

Test(file_open, a_stream_input_may_be_a_fifo_with_a_writer)
{
    const char *path = s_fifo("in");
    /* Our own writer end (O_RDWR never blocks on a FIFO on Linux). */
    int w = open(path, O_RDWR);
    cr_assert_geq(w, 0);
    cr_assert_eq(write(w, "a\n", 2), 2);
    int fd = -1;
    cr_assert_eq(dm_lines_open_read(path, DM_FILE_STREAM, &fd, NULL), DM_OK);
    char buf[4];
    cr_assert_eq(read(fd, buf, sizeof buf), 2);
    close(fd);
    close(w);
}
