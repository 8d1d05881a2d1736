/* test_store_failure.c: a real meshd whose disk fails under it. LMDB
 * marks its environment fatal (MDB_PANIC) after a failed meta-page write
 * and refuses every later transaction; the node must not go on looking
 * healthy while it cannot store: it says so and exits, and a restart on a
 * healthy disk has every acknowledged record. The failure is injected with
 * an LD_PRELOAD shim (tests/mesh/fault/meta_write.c). */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define T_CMD_MS 30000
#define T_POLL_MS 20
#define T_RECORDS 50

static const char s_contract[] =
    "apiVersion: datamesh.io/v1\n"
    "kind: DataProduct\n"
    "metadata:\n"
    "  name: orders\n"
    "  domain: commerce\n"
    "  version: 1.0.0\n"
    "  owner: {team: commerce-engineering, contact: commerce-data@company.com}\n"
    "spec:\n"
    "  schema:\n"
    "    primaryKey: orderId\n"
    "    fields:\n"
    "      - {name: orderId, type: int, required: true}\n";

static char *s_records(int first, int n)
{
    char *text = malloc((size_t)n * 32 + 1);
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)sprintf(text + len, "{\"orderId\":%d}\n", first + i);
    return text;
}

static dm_h_result_t s_dmctl(const char *dir, const char *cmd, const char *arg, const char *in)
{
    const char *args[] = {"--data", dir, cmd, arg, in ? "-" : NULL, NULL};
    return dm_h_run("dmctl", args, in, T_CMD_MS);
}

/* Waits until n's process has exited; its exit status, or -1 on timeout. */
static int s_wait_exit(dm_h_node_t *n, int timeout_ms)
{
    long long deadline = dm_h_now_ms() + timeout_ms;
    while (dm_h_now_ms() < deadline) {
        int st;
        if (waitpid(n->pid, &st, WNOHANG) == n->pid) {
            n->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        poll(NULL, 0, T_POLL_MS);
    }
    return -1;
}

static bool s_log_has(const dm_h_node_t *n, const char *needle)
{
    FILE *f = fopen(n->log, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

Test(store_failure, a_failed_meta_write_stops_the_node_and_loses_nothing_acknowledged,
     .timeout = 120)
{
    const char *tmp = dm_h_tmpdir();
    char dir[600], yaml[600], trigger[600];
    snprintf(dir, sizeof dir, "%s/commerce", tmp);
    snprintf(yaml, sizeof yaml, "%s/orders.yaml", tmp);
    snprintf(trigger, sizeof trigger, "%s/fail-meta-writes", tmp);
    dm_h_write(yaml, s_contract);

    setenv("DM_FAULT_META_TRIGGER", trigger, 1);
    setenv("LD_PRELOAD", DM_FAULT_META_LIB, 1);
    dm_h_node_t node;
    bool up = dm_h_node_start(&node, dir, "commerce", NULL);
    unsetenv("LD_PRELOAD");
    cr_assert(up, "meshd did not start");

    dm_h_result_t r = s_dmctl(dir, "register", yaml, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    char *acked = s_records(1, T_RECORDS);
    r = s_dmctl(dir, "ingest", "commerce/orders", acked);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    free(acked);

    dm_h_write(trigger, "");
    char *lost = s_records(1000, T_RECORDS);
    r = s_dmctl(dir, "ingest", "commerce/orders", lost);
    cr_assert_neq(r.status, 0, "an ingest on a failing disk was acknowledged: %s", r.out);
    dm_h_result_free(&r);
    free(lost);

    int st = s_wait_exit(&node, DM_H_WAIT_MS);
    cr_assert_neq(st, -1, "meshd kept running on a store that refuses every write");
    cr_assert_neq(st, 0, "meshd exited 0 after its store failed");
    cr_assert(s_log_has(&node, "the store failed and must be reopened"),
              "the log does not say why the node stopped (%s)", node.log);

    unlink(trigger);
    unsetenv("DM_FAULT_META_TRIGGER");
    cr_assert(dm_h_node_start(&node, dir, "commerce", NULL), "meshd did not restart");
    r = s_dmctl(dir, "products", "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    char want[64];
    snprintf(want, sizeof want, "\"records\":%d", T_RECORDS);
    cr_assert(strstr(r.out, want), "after the restart: %s (want %s)", r.out, want);
    dm_h_result_free(&r);
    dm_h_node_signal(&node, SIGTERM);
}
