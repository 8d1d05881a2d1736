/* test_scale_crash.c: kill -9 during a large random-key ingest (issue 12's
 * crash safety at a small size): real meshd, real dmctl and meshq. Every
 * record dmctl saw acknowledged is found after the restart, by count, by
 * scan and by primary key through the index runs. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define T_CMD_MS 60000
#define T_RECORDS 200000
#define T_KILL_AFTER 60000 /* records stored before the kill */
#define T_SAMPLE 200       /* acknowledged keys looked up after the restart */

static dm_h_node_t s_node;
static char s_dir[600], s_yaml[600], s_data[700];
static char (*s_ids)[40];

static void s_up(void)
{
    const char *tmp = dm_h_tmpdir();
    cr_assert_not_null(tmp);
    snprintf(s_dir, sizeof s_dir, "%s/commerce", tmp);
    snprintf(s_yaml, sizeof s_yaml, "%s/orders.yaml", tmp);
    snprintf(s_data, sizeof s_data, "%s/orders.ndjson", tmp);
    dm_h_write(s_yaml, "apiVersion: datamesh.io/v1\n"
                       "kind: DataProduct\n"
                       "metadata:\n"
                       "  name: orders\n"
                       "  domain: commerce\n"
                       "  version: 1.0.0\n"
                       "  owner: {team: commerce-engineering, contact: c@company.com}\n"
                       "spec:\n"
                       "  schema:\n"
                       "    primaryKey: orderId\n"
                       "    fields:\n"
                       "      - {name: orderId, type: uuid, required: true}\n"
                       "      - {name: amount, type: double, required: true}\n");
    cr_assert(dm_h_node_start(&s_node, s_dir, "commerce", NULL), "meshd did not start");
}

static void s_down(void)
{
    free(s_ids);
    s_ids = NULL;
    dm_h_cleanup();
}

TestSuite(scale_crash, .init = s_up, .fini = s_down, .timeout = 180);

static uint64_t s_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Writes T_RECORDS orders with random uuid keys (as bench data has) and
 * keeps their ids. */
static void s_write_data(void)
{
    s_ids = calloc(T_RECORDS, sizeof *s_ids);
    cr_assert_not_null(s_ids);
    FILE *f = fopen(s_data, "w");
    cr_assert_not_null(f);
    uint64_t rng = 0xC0FFEE1234567ull;
    for (int i = 0; i < T_RECORDS; i++) {
        uint64_t a = s_rand(&rng), b = s_rand(&rng);
        snprintf(s_ids[i], sizeof s_ids[i], "%08x-%04x-4%03x-8%03x-%012llx", (unsigned)(a >> 32),
                 (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff, (unsigned)(b >> 48) & 0xfff,
                 (unsigned long long)(b & 0xffffffffffffull));
        fprintf(f, "{\"orderId\":\"%s\",\"amount\":%d.5}\n", s_ids[i], 1 + i % 1000);
    }
    fclose(f);
}

static long long s_records(void)
{
    const char *args[] = {"--data", s_dir, "products", "--json", NULL};
    dm_h_result_t r = dm_h_run("dmctl", args, NULL, T_CMD_MS);
    const char *p = r.out ? strstr(r.out, "\"records\":") : NULL;
    long long v = r.status == 0 && p ? atoll(p + strlen("\"records\":")) : -1;
    dm_h_result_free(&r);
    return v;
}

/* The single number a meshq query prints (csv, after its header). */
static long long s_query_number(const char *sql)
{
    const char *args[] = {"--data", s_dir, "query", sql, "--format", "csv", NULL};
    dm_h_result_t r = dm_h_run("meshq", args, NULL, T_CMD_MS);
    cr_assert_eq(r.status, 0, "meshq %s: %s", sql, r.err);
    long long v = atoll(dm_h_last_line(r.out));
    dm_h_result_free(&r);
    return v;
}

Test(scale_crash, every_acknowledged_record_survives_kill_9_mid_ingest)
{
    const char *reg[] = {"--data", s_dir, "register", s_yaml, NULL};
    dm_h_result_t r = dm_h_run("dmctl", reg, NULL, T_CMD_MS);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    s_write_data();
    char outp[700];
    snprintf(outp, sizeof outp, "%s.out", s_dir);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *o = freopen(outp, "w", stdout);
        FILE *e = freopen("/dev/null", "w", stderr); /* "cut short" is expected */
        (void)o;
        (void)e;
        execl(dm_h_bin("dmctl"), "dmctl", "--data", s_dir, "--timeout", "2", "ingest",
              "commerce/orders", s_data, "--batch-bytes", "65536", (char *)NULL);
        _exit(127);
    }
    long long deadline = dm_h_now_ms() + T_CMD_MS, seen = 0;
    while (dm_h_now_ms() < deadline && (seen = s_records()) < T_KILL_AFTER)
        ;
    cr_assert_geq(seen, T_KILL_AFTER, "ingest made no progress");
    dm_h_node_signal(&s_node, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    FILE *o = fopen(outp, "r");
    cr_assert_not_null(o);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, o);
    fclose(o);
    buf[n] = 0;
    unsigned long long acked = 0, quarantined = 0;
    cr_assert_eq(sscanf(dm_h_last_line(buf), "%llu accepted, %llu quarantined", &acked,
                        &quarantined),
                 2, "last line: %s", dm_h_last_line(buf));
    cr_assert_lt(acked, (unsigned long long)T_RECORDS, "the kill came too late to test anything");
    cr_assert_geq(acked, 1, "nothing was acknowledged before the kill");

    cr_assert(dm_h_node_start(&s_node, s_dir, "commerce", NULL), "no restart after SIGKILL");
    long long stored = s_records();
    cr_assert_geq(stored, (long long)acked, "acknowledged %llu, found %lld", acked, stored);
    cr_assert_eq(s_query_number("SELECT count(*) FROM commerce.orders"), stored,
                 "the scan and the counter disagree");
    /* Acknowledged records are the file's first ones (batches go in order):
     * look a sample up by key, through the index, the last one included. */
    char sql[T_SAMPLE * 48 + 128];
    size_t len = (size_t)snprintf(sql, sizeof sql,
                                  "SELECT count(*) FROM commerce.orders WHERE orderId IN (");
    for (int i = 0; i < T_SAMPLE; i++) {
        size_t at = i == T_SAMPLE - 1 ? acked - 1 : (size_t)i * acked / T_SAMPLE;
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s'%s'", i ? "," : "", s_ids[at]);
    }
    snprintf(sql + len, sizeof sql - len, ")");
    cr_assert_eq(s_query_number(sql), T_SAMPLE, "an acknowledged key is missing");
    /* The index and the log agree after the restart: a lookup of a key
     * that was never sent finds nothing. */
    cr_assert_eq(s_query_number("SELECT count(*) FROM commerce.orders WHERE orderId = "
                                "'ffffffff-ffff-4fff-8fff-ffffffffffff'"),
                 0);
}
