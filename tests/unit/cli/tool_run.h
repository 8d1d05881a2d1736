/* tool_run.h: runs a client tool of this build (build/bin/dmctl or
 * meshq, found beside the test's own build/tests folder) as a user with a
 * fresh home: HOME and XDG_CONFIG_HOME are the test's directory, and
 * MESH_NODE and MESH_IDENTITY are unset, so nothing reaches a real node or
 * the user's identity. Header-only, for the tools' offline tests. */
#ifndef DM_T_TOOL_RUN_H
#define DM_T_TOOL_RUN_H

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define T_RUN_OUT_MAX 65536 /* bytes of stdout and of stderr kept */
#define T_RUN_LIMIT_S 30    /* a tool that runs longer is killed (SIGALRM) */

typedef struct {
    int status; /* exit status, or 128 + signal */
    char out[T_RUN_OUT_MAX], err[T_RUN_OUT_MAX];
} t_run_t;

/* The path of build/bin/TOOL, from /proc/self/exe (build/tests/test_x). */
static inline void t_run_bin(const char *tool, char *path, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    snprintf(path, cap, "%s/../bin/%s", dirname(self), tool);
}

static inline void t_run_slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
}

/* Runs TOOL args... (NULL-terminated, without the program name) with home
 * as its HOME and XDG_CONFIG_HOME. Returns r->status, -1 if it could not
 * be started. */
static inline int t_run(t_run_t *r, const char *home, const char *tool, const char *const *args)
{
    char bin[PATH_MAX + 32], out[PATH_MAX], err[PATH_MAX];
    const char *argv[64];
    size_t n = 0;
    t_run_bin(tool, bin, sizeof bin);
    argv[n++] = bin;
    for (; args[n - 1] && n < 63; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    snprintf(out, sizeof out, "%s/.run.out", home);
    snprintf(err, sizeof err, "%s/.run.err", home);
    pid_t pid = fork();
    if (pid < 0)
        return r->status = -1;
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fi = open("/dev/null", O_RDONLY);
        if (fo < 0 || fe < 0 || fi < 0)
            _exit(127);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        setenv("HOME", home, 1);
        setenv("XDG_CONFIG_HOME", home, 1);
        unsetenv("MESH_NODE");
        unsetenv("MESH_IDENTITY");
        alarm(T_RUN_LIMIT_S);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        ;
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    t_run_slurp(out, r->out, sizeof r->out);
    t_run_slurp(err, r->err, sizeof r->err);
    return r->status;
}

/* Writes text to dir/name; the path goes into path (cap bytes). */
static inline const char *t_write(const char *dir, const char *name, const char *text,
                                  char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

#endif
