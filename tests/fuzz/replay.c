/* replay.c: runs a harness's LLVMFuzzerTestOneInput over every file of the
 * folders (or files) named on the command line, without libFuzzer: the
 * normal and sanitizer builds replay the seed corpus and every regression
 * input with it. A crash is the test failing; exit 0 after all inputs. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define DM_REPLAY_MAX_INPUT (16 << 20) /* bytes; the largest message a node accepts */

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

/* Runs one file; returns 1 if it was run, 0 if skipped, -1 if unreadable. */
static int s_run_file(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISREG(st.st_mode) || st.st_size > DM_REPLAY_MAX_INPUT)
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    size_t got = buf ? fread(buf, 1, len, f) : 0;
    fclose(f);
    if (!buf || got != len) {
        free(buf);
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 1;
}

int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    size_t ran = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0)
            continue; /* a target without regressions has no folder */
        if (!S_ISDIR(st.st_mode)) {
            if (s_run_file(argv[i]) < 0) {
                fprintf(stderr, "replay: cannot read %s\n", argv[i]);
                return 1;
            }
            ran++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "replay: cannot open %s\n", argv[i]);
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            int r = s_run_file(path);
            if (r < 0) {
                fprintf(stderr, "replay: cannot read %s\n", path);
                closedir(d);
                return 1;
            }
            ran += (size_t)r;
        }
        closedir(d);
    }
    printf("replay: %zu input(s) ran clean\n", ran);
    return 0;
}
