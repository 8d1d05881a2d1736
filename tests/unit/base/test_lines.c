/* test_lines.c: the buffered line reader. Input comes from files in a
 * fresh temp dir, or from a pipe fed by a child process. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/lines.h"
#include "fixture.h"

#define MIB (1024 * 1024)

static char dir[64];
static dm_lines_t *R;
static int fd = -1;

static void s_init(void)
{
    cr_assert_not_null(dm_t_tmpdir(dir, sizeof dir, "test_lines"));
}

static void s_fini(void)
{
    dm_lines_destroy(&R);
    if (fd >= 0)
        close(fd);
    cr_assert_eq(dm_t_rmdir(dir), 0);
}

TestSuite(lines, .init = s_init, .fini = s_fini);

/* Opens a reader over a file holding len bytes of text. */
static void s_open(const char *text, size_t len, size_t limit)
{
    char path[96];
    snprintf(path, sizeof path, "%s/in", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(dm_lines_new(fd, limit, &R), DM_OK);
}

/* Reads the next line and checks it is want (full length = its length). */
static void s_expect(const char *want, uint64_t lineno)
{
    const char *line;
    size_t len;
    uint64_t no, full;
    cr_assert_eq(dm_lines_next(R, &line, &len, &no, &full), 1, "wanted line %llu", (unsigned long long)lineno);
    cr_assert_eq(len, strlen(want), "line %llu: %zu bytes", (unsigned long long)lineno, len);
    cr_assert_arr_eq(line, want, len);
    cr_assert_eq(no, lineno);
    cr_assert_eq(full, len);
}

static void s_expect_eof(void)
{
    const char *line;
    size_t len;
    uint64_t no, full;
    cr_assert_eq(dm_lines_next(R, &line, &len, &no, &full), 0);
}

Test(lines, yields_lines_with_numbers)
{
    s_open("a\nbb\n\nccc\n", 10, 16);
    s_expect("a", 1);
    s_expect("bb", 2);
    s_expect("", 3);
    s_expect("ccc", 4);
    s_expect_eof();
}

Test(lines, strips_cr_before_newline_only)
{
    s_open("a\r\nb\rc\n\r\r\n", 10, 16);
    s_expect("a", 1);
    s_expect("b\rc", 2);
    s_expect("\r", 3);
    s_expect_eof();
}

Test(lines, yields_last_line_without_newline)
{
    s_open("a\nlast", 6, 16);
    s_expect("a", 1);
    s_expect("last", 2);
    s_expect_eof();
}

Test(lines, empty_input_is_eof)
{
    s_open("", 0, 16);
    s_expect_eof();
    s_expect_eof();
}

Test(lines, line_at_limit_is_whole)
{
    s_open("12345678\r\nx\n", 12, 8);
    s_expect("12345678", 1);
    s_expect("x", 2);
}

Test(lines, overlong_line_is_cut_with_full_length)
{
    const char *line;
    size_t len;
    uint64_t no, full;
    s_open("short\n0123456789abcdefghij\r\nnext\n", 33, 8);
    s_expect("short", 1);
    cr_assert_eq(dm_lines_next(R, &line, &len, &no, &full), 1);
    cr_assert_eq(len, 8);
    cr_assert_arr_eq(line, "01234567", 8);
    cr_assert_eq(full, 20);
    cr_assert_eq(no, 2);
    s_expect("next", 3);
    s_expect_eof();
}

Test(lines, overlong_last_line_without_newline)
{
    const char *line;
    size_t len;
    uint64_t no, full;
    s_open("0123456789", 10, 4);
    cr_assert_eq(dm_lines_next(R, &line, &len, &no, &full), 1);
    cr_assert_eq(len, 4);
    cr_assert_eq(full, 10);
    s_expect_eof();
}

Test(lines, lines_spanning_chunks_stay_whole)
{
    /* 3 MiB of 100-byte lines: reads end in the middle of lines */
    size_t n = 3 * MIB / 100, size = n * 100;
    char *text = malloc(size);
    for (size_t i = 0; i < n; i++) {
        memset(text + i * 100, 'a' + (int)(i % 26), 99);
        text[i * 100 + 99] = '\n';
    }
    s_open(text, size, 1000);
    for (size_t i = 0; i < n; i++) {
        const char *line;
        size_t len;
        uint64_t no, full;
        cr_assert_eq(dm_lines_next(R, &line, &len, &no, &full), 1);
        cr_assert_eq(len, 99);
        cr_assert_eq(line[0], 'a' + (int)(i % 26));
        cr_assert_eq(line[98], 'a' + (int)(i % 26));
        cr_assert_eq(no, i + 1);
    }
    s_expect_eof();
    free(text);
}

/* Feeds a pipe from a child: size bytes of 'x', "\n", then "{}\n". */
static pid_t s_feed(int *rfd, size_t size)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        static char block[64 * 1024];
        memset(block, 'x', sizeof block);
        close(p[0]);
        for (size_t done = 0; done < size;) {
            size_t k = size - done < sizeof block ? size - done : sizeof block;
            ssize_t w = write(p[1], block, k);
            if (w <= 0)
                _exit(1);
            done += (size_t)w;
        }
        _exit(write(p[1], "\n{}\n", 4) == 4 ? 0 : 1);
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

Test(lines, huge_line_is_not_held_in_memory)
{
    const char *line;
    size_t len;
    uint64_t no, full;
    struct rusage before, after;
    size_t huge = 100 * (size_t)MIB;
    getrusage(RUSAGE_SELF, &before);
    pid_t pid = s_feed(&fd, huge);
    cr_assert_eq(dm_lines_new(fd, MIB, &R), DM_OK);
    cr_assert_eq(dm_lines_next(R, &line, &len, &no, &full), 1);
    cr_assert_eq(len, MIB);
    cr_assert_eq(full, huge);
    s_expect("{}", 2);
    s_expect_eof();
    int status;
    waitpid(pid, &status, 0);
    cr_assert_eq(status, 0);
    getrusage(RUSAGE_SELF, &after);
    /* the reader's buffer is 2 MiB; holding the line would add 100 */
    cr_assert_lt(after.ru_maxrss - before.ru_maxrss, 40 * 1024, "grew by %ld KiB",
                 after.ru_maxrss - before.ru_maxrss);
}

Test(lines, reports_read_error)
{
    const char *line;
    size_t len;
    uint64_t no, full;
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(dm_lines_new(fd, 16, &R), DM_OK);
    cr_assert_eq(dm_lines_next(R, &line, &len, &no, &full), -1);
    cr_assert_eq(errno, EISDIR);
}

Test(lines, destroy_is_null_safe)
{
    dm_lines_t *r = NULL;
    dm_lines_destroy(&r);
    dm_lines_destroy(NULL);
    cr_assert_eq(dm_lines_new(0, 16, &r), DM_OK);
    dm_lines_destroy(&r);
    cr_assert_null(r);
}

Test(lines, read_small_trims_the_line_end)
{
    char path[96], buf[32];
    snprintf(path, sizeof path, "%s/addr", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("tcp://127.0.0.1:5555 \r\n", f);
    fclose(f);
    cr_assert_eq(dm_lines_read_small(path, buf, sizeof buf, NULL), DM_OK);
    cr_assert_str_eq(buf, "tcp://127.0.0.1:5555");
}

Test(lines, read_small_keeps_cap_minus_one_bytes)
{
    char path[96], buf[4];
    snprintf(path, sizeof path, "%s/long", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("commerce\n", f);
    fclose(f);
    cr_assert_eq(dm_lines_read_small(path, buf, sizeof buf, NULL), DM_OK);
    cr_assert_str_eq(buf, "com");
}

Test(lines, read_small_of_a_missing_file_is_not_found)
{
    char path[96], buf[8] = "x";
    snprintf(path, sizeof path, "%s/none", dir);
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_lines_read_small(path, buf, sizeof buf, &why), DM_ERR_NOTFOUND);
    cr_assert_str_eq(buf, "");
    cr_assert_not_null(strstr(why.data, path), "why names the file: %s", why.data);
    dm_buf_free(&why);
}

Test(lines, read_small_refuses_a_directory)
{
    char buf[8];
    dm_buf_t why = DM_BUF_INIT;
    cr_assert_eq(dm_lines_read_small(dir, buf, sizeof buf, &why), DM_ERR_IO);
    cr_assert_not_null(strstr(why.data, "not a regular file (a directory)"), "%s", why.data);
    dm_buf_free(&why);
}
