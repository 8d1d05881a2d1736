/* test_node.c: one real meshd driven through the real dmctl: register,
 * ingest, quarantine, restarts, SIGKILL durability, bad input on the wire. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "identity/identity.h"

#define T_CMD_MS 30000

static const char *s_contract(const char *version, const char *domain, const char *extra_field)
{
    static char text[4096];
    snprintf(text, sizeof text,
             "apiVersion: datamesh.io/v1\n"
             "kind: DataProduct\n"
             "metadata:\n"
             "  name: orders\n"
             "  domain: %s\n"
             "  version: %s\n"
             "  owner:\n"
             "    team: commerce-engineering\n"
             "    contact: commerce-data@company.com\n"
             "spec:\n"
             "  schema:\n"
             "    primaryKey: orderId\n"
             "    fields:\n"
             "      - {name: orderId, type: uuid, required: true}\n"
             "      - {name: amount, type: double, required: true, exclusiveMinimum: 0}\n"
             "      - {name: status, type: enum, required: true, values: [created, paid]}\n"
             "%s",
             domain, version, extra_field ? extra_field : "");
    return text;
}

static dm_h_node_t s_node;
static char s_dir[600], s_yaml[600];

static void s_up(void)
{
    const char *tmp = dm_h_tmpdir();
    cr_assert_not_null(tmp);
    snprintf(s_dir, sizeof s_dir, "%s/commerce", tmp);
    snprintf(s_yaml, sizeof s_yaml, "%s/orders.yaml", tmp);
    dm_h_write(s_yaml, s_contract("1.0.0", "commerce", NULL));
    cr_assert(dm_h_node_start(&s_node, s_dir, "commerce", NULL), "meshd did not start");
}

static void s_down(void) { dm_h_cleanup(); }

TestSuite(node, .init = s_up, .fini = s_down, .timeout = 120);

static dm_h_result_t s_dmctl(const char *const *args, const char *in)
{
    return dm_h_run("dmctl", args, in, T_CMD_MS);
}

static long long s_records(const char *field)
{
    const char *args[] = {"--data", s_dir, "products", "--json", NULL};
    dm_h_result_t r = s_dmctl(args, NULL);
    long long v = -1;
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", field);
    const char *p = r.out ? strstr(r.out, key) : NULL;
    if (r.status == 0 && p)
        v = atoll(p + strlen(key));
    dm_h_result_free(&r);
    return v;
}

static const char *s_record(int i, double amount, const char *status)
{
    static char line[256];
    snprintf(line, sizeof line,
             "{\"orderId\":\"00000000-0000-4000-8000-%012d\",\"amount\":%.2f,\"status\":\"%s\"}\n",
             i, amount, status);
    return line;
}

Test(node, register_reports_created_then_unchanged)
{
    const char *args[] = {"--data", s_dir, "register", s_yaml, NULL};
    dm_h_result_t r = s_dmctl(args, NULL);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.out, "registered commerce/orders 1.0.0"), "%s", r.out);
    dm_h_result_free(&r);
    const char *again[] = {"register", "--config", s_yaml, "--data", s_dir, NULL};
    r = s_dmctl(again, NULL);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.out, "unchanged"), "%s", r.out);
    dm_h_result_free(&r);
}

Test(node, register_refuses_changed_content_at_same_version)
{
    const char *args[] = {"--data", s_dir, "register", s_yaml, NULL};
    dm_h_result_t r = s_dmctl(args, NULL);
    cr_assert_eq(r.status, 0);
    dm_h_result_free(&r);
    dm_h_write(s_yaml, s_contract("1.0.0", "commerce",
                                  "      - {name: note, type: string}\n"));
    r = s_dmctl(args, NULL);
    cr_assert_eq(r.status, 1, "out: %s err: %s", r.out, r.err);
    cr_assert(strstr(r.err, "different content"), "%s", r.err);
    dm_h_result_free(&r);
}

Test(node, register_refuses_lower_version_and_accepts_higher)
{
    dm_h_write(s_yaml, s_contract("1.2.0", "commerce", NULL));
    const char *args[] = {"--data", s_dir, "register", s_yaml, NULL};
    dm_h_result_t r = s_dmctl(args, NULL);
    cr_assert_eq(r.status, 0);
    dm_h_result_free(&r);
    dm_h_write(s_yaml, s_contract("1.1.9", "commerce", NULL));
    r = s_dmctl(args, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "lower than the registered version 1.2.0"), "%s", r.err);
    dm_h_result_free(&r);
    dm_h_write(s_yaml, s_contract("1.10.0", "commerce", "      - {name: note, type: string}\n"));
    r = s_dmctl(args, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "upgraded commerce/orders 1.2.0 -> 1.10.0"), "%s", r.out);
    dm_h_result_free(&r);
}

Test(node, register_refuses_another_domain)
{
    dm_h_write(s_yaml, s_contract("1.0.0", "logistics", NULL));
    const char *args[] = {"--data", s_dir, "register", s_yaml, NULL};
    dm_h_result_t r = s_dmctl(args, NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "serves domain 'commerce'"), "%s", r.err);
    dm_h_result_free(&r);
}

Test(node, ingest_stores_valid_and_quarantines_invalid_with_reasons)
{
    const char *reg[] = {"--data", s_dir, "register", s_yaml, NULL};
    dm_h_result_t r = s_dmctl(reg, NULL);
    cr_assert_eq(r.status, 0);
    dm_h_result_free(&r);
    char input[2048] = "";
    strcat(input, s_record(1, 10.5, "paid"));
    strcat(input, "\n");
    strcat(input, s_record(2, -3, "paid"));
    strcat(input, "not json at all\n");
    strcat(input, s_record(3, 7, "created"));
    const char *ing[] = {"ingest", "commerce/orders", "-", "--data", s_dir, NULL};
    r = s_dmctl(ing, input);
    cr_assert_eq(r.status, 1, "err: %s", r.err);
    cr_assert_str_eq(dm_h_last_line(r.out), "2 accepted, 2 quarantined");
    dm_h_result_free(&r);
    cr_assert_eq(s_records("records"), 2);
    cr_assert_eq(s_records("quarantined"), 2);

    const char *q[] = {"--data", s_dir, "quarantine", "commerce/orders", "--json", NULL};
    r = s_dmctl(q, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"line\":3"), "%s", r.out);
    cr_assert(strstr(r.out, "amount"), "%s", r.out);
    cr_assert(strstr(r.out, "\"line\":4"), "%s", r.out);
    cr_assert(strstr(r.out, "not json at all"), "%s", r.out);
    dm_h_result_free(&r);
}

Test(node, ingest_upserts_by_primary_key)
{
    const char *reg[] = {"--data", s_dir, "register", s_yaml, NULL};
    dm_h_result_t r = s_dmctl(reg, NULL);
    dm_h_result_free(&r);
    char input[1024] = "";
    strcat(input, s_record(1, 1, "created"));
    strcat(input, s_record(1, 2, "paid"));
    const char *ing[] = {"--data", s_dir, "ingest", "commerce/orders", "-", NULL};
    r = s_dmctl(ing, input);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(dm_h_last_line(r.out), "2 accepted, 0 quarantined");
    dm_h_result_free(&r);
    cr_assert_eq(s_records("records"), 1);
}

Test(node, ingest_unknown_product_suggests_and_exits_2)
{
    const char *reg[] = {"--data", s_dir, "register", s_yaml, NULL};
    dm_h_result_t r = s_dmctl(reg, NULL);
    dm_h_result_free(&r);
    const char *ing[] = {"--data", s_dir, "ingest", "commerce/order", "-", NULL};
    r = s_dmctl(ing, s_record(1, 1, "paid"));
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "did you mean 'commerce/orders'"), "%s", r.err);
    cr_assert_null(strstr(r.out, "accepted"), "counts of a refused ingest: %s", r.out);
    dm_h_result_free(&r);
}

Test(node, node_from_env_and_options_after_command)
{
    setenv("MESH_NODE", s_node.addr, 1);
    const char *args[] = {"products", NULL};
    dm_h_result_t r = s_dmctl(args, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "DOMAIN"), "%s", r.out);
    dm_h_result_free(&r);
    unsetenv("MESH_NODE");
    const char *args2[] = {"status", "--node", s_node.addr, "--json", NULL};
    r = s_dmctl(args2, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"domain\":\"commerce\""), "%s", r.out);
    dm_h_result_free(&r);
}

Test(node, client_of_a_dead_node_fails_within_its_timeout)
{
    char addr[sizeof s_node.addr];
    snprintf(addr, sizeof addr, "%s", s_node.addr);
    dm_h_node_signal(&s_node, SIGKILL);
    const char *args[] = {"--node", addr, "--timeout", "1", "products", NULL};
    long long t0 = dm_h_now_ms();
    dm_h_result_t r = s_dmctl(args, NULL);
    long long took = dm_h_now_ms() - t0;
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(strstr(r.err, "within 1.000 s"), "%s", r.err);
    cr_assert_lt(took, T_CMD_MS, "the client hung");
    dm_h_result_free(&r);
}

Test(node, clean_stop_removes_address_and_restart_keeps_products)
{
    const char *reg[] = {"--data", s_dir, "register", s_yaml, NULL};
    dm_h_result_t r = s_dmctl(reg, NULL);
    dm_h_result_free(&r);
    dm_h_node_signal(&s_node, SIGTERM);
    char path[700];
    snprintf(path, sizeof path, "%s/node.addr", s_dir);
    cr_assert_neq(access(path, F_OK), 0, "node.addr left after a clean stop");
    const char *st[] = {"--data", s_dir, "status", NULL};
    r = s_dmctl(st, NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "is meshd running"), "%s", r.err);
    dm_h_result_free(&r);
    cr_assert(dm_h_node_start(&s_node, s_dir, "commerce", NULL));
    cr_assert_eq(s_records("records"), 0);
    const char *pr[] = {"--data", s_dir, "products", NULL};
    r = s_dmctl(pr, NULL);
    cr_assert(strstr(r.out, "orders"), "%s", r.out);
    dm_h_result_free(&r);
}

Test(node, second_process_on_same_directory_is_refused)
{
    const char *args[] = {"--data", s_dir, "--domain", "commerce", "--listen",
                          "tcp://127.0.0.1:*", NULL};
    dm_h_result_t r = dm_h_run("meshd", args, NULL, T_CMD_MS);
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert(strstr(r.err, "already serving"), "%s", r.err);
    dm_h_result_free(&r);
}

Test(node, durable_every_acknowledged_record_survives_sigkill)
{
    const char *reg[] = {"--data", s_dir, "register", s_yaml, NULL};
    dm_h_result_t r = s_dmctl(reg, NULL);
    cr_assert_eq(r.status, 0);
    dm_h_result_free(&r);
    /* A large input in small batches, so many acknowledgements happen
     * before the kill lands. */
    char data[700];
    snprintf(data, sizeof data, "%s.ndjson", s_dir);
    FILE *f = fopen(data, "w");
    cr_assert_not_null(f);
    const int total = 400000;
    for (int i = 0; i < total; i++)
        fputs(s_record(i, 1 + i % 100, i % 2 ? "paid" : "created"), f);
    fclose(f);
    char outp[700];
    snprintf(outp, sizeof outp, "%s.out", s_dir);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *o = freopen(outp, "w", stdout);
        FILE *e = freopen("/dev/null", "w", stderr); /* "cut short" is expected */
        (void)o;
        (void)e;
        execl(dm_h_bin("dmctl"), "dmctl", "--data", s_dir, "--timeout", "2", "ingest",
              "commerce/orders", data, "--batch-bytes", "32768", (char *)NULL);
        _exit(127);
    }
    /* Kill once some batches are committed and the ingest is still going. */
    long long deadline = dm_h_now_ms() + DM_H_WAIT_MS;
    long long seen = 0;
    while (dm_h_now_ms() < deadline && (seen = s_records("records")) < 20000)
        ;
    cr_assert_geq(seen, 20000, "ingest made no progress");
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
    cr_assert_eq(WEXITSTATUS(st), 2, "ingest should report the lost node");
    cr_assert_lt(acked, (unsigned long long)total, "the kill came too late to test anything");

    cr_assert(dm_h_node_start(&s_node, s_dir, "commerce", NULL), "no restart after SIGKILL");
    long long stored = s_records("records");
    cr_assert_geq(stored, (long long)acked, "acknowledged %llu, found %lld", acked, stored);
}

Test(node, survives_garbage_on_the_wire)
{
    uint8_t node_id[32], server[32], pub[32], sec[32];
    char endpoint[256];
    cr_assert_eq(dm_identity_address_parse(s_node.addr, node_id, endpoint, sizeof endpoint, NULL), DM_OK);
    cr_assert_eq(dm_identity_curve_from_id(node_id, server), DM_OK);
    dm_identity_t *id = NULL;
    cr_assert_eq(dm_identity_new_ephemeral(&id), DM_OK);
    cr_assert_eq(dm_identity_curve_keys(id, pub, sec, NULL), DM_OK);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server, 32);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 32);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 32);
    cr_assert_eq(zmq_connect(s, endpoint), 0);
    /* Not an envelope; a multi-frame message; an empty frame. */
    zmq_send(s, "\xff\xff\xff garbage", 12, 0);
    zmq_send(s, "a", 1, ZMQ_SNDMORE);
    zmq_send(s, "b", 1, 0);
    zmq_send(s, "", 0, 0);
    char reply[256];
    int rcvtimeo = 5000;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo);
    cr_assert_gt(zmq_recv(s, reply, sizeof reply, 0), 0, "no error reply to garbage");
    /* A plain (non-CURVE) client must not be served at all. */
    void *plain = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(plain, ZMQ_LINGER, &linger, sizeof linger);
    int short_wait = 500;
    zmq_setsockopt(plain, ZMQ_RCVTIMEO, &short_wait, sizeof short_wait);
    zmq_connect(plain, endpoint);
    zmq_send(plain, "hello", 5, ZMQ_DONTWAIT);
    cr_assert_lt(zmq_recv(plain, reply, sizeof reply, 0), 0, "a plain client got an answer");
    zmq_close(plain);
    zmq_close(s);
    zmq_ctx_term(ctx);
    dm_identity_destroy(&id);
    const char *st[] = {"--data", s_dir, "status", NULL};
    dm_h_result_t r = s_dmctl(st, NULL);
    cr_assert_eq(r.status, 0, "node stopped serving: %s", r.err);
    dm_h_result_free(&r);
}

Test(node, an_over_limit_line_is_quarantined_with_its_first_bytes_only)
{
    /* A node with a 1 KiB record limit, fed by a client that allows more. */
    dm_h_node_signal(&s_node, SIGTERM);
    const char *extra[] = {"--record-limit", "1024", NULL};
    cr_assert(dm_h_node_start(&s_node, s_dir, "commerce", extra));
    const char *reg[] = {"--data", s_dir, "register", s_yaml, NULL};
    dm_h_result_t r = s_dmctl(reg, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    dm_h_result_free(&r);
    static char line[3002];
    memset(line, 'x', 3000);
    line[3000] = '\n';
    const char *ing[] = {"--data", s_dir, "ingest", "commerce/orders", "-", NULL};
    r = s_dmctl(ing, line);
    cr_assert_str_eq(dm_h_last_line(r.out), "0 accepted, 1 quarantined");
    dm_h_result_free(&r);
    const char *q[] = {"--data", s_dir, "quarantine", "commerce/orders", "--json", NULL};
    r = s_dmctl(q, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"raw_length\":3000"), "%.300s", r.out);
    cr_assert(strstr(r.out, "over the limit of 1024 bytes"), "%.300s", r.out);
    const char *raw = strstr(r.out, "\"raw\":\"");
    cr_assert_not_null(raw);
    cr_assert_eq(strspn(raw + 7, "x"), 1024, "kept more or less than the limit");
    dm_h_result_free(&r);
}
