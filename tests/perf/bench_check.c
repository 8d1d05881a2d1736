/* bench_check.c: timing harness for dm_ndjson_check_fd on the orders schema.
 *
 * Not a test (tests never assert timing): CMake builds it with -DDM_PERF=ON
 * (test.sh does, so it keeps linking) and nothing runs it. Generates N
 * orders records (~146 bytes each, every 1000th invalid) into a file, then
 * times dm_ndjson_check_fd over it, reading the file like `dmctl check` does.
 * Build and run (from the repo root):
 *   cmake -S . -B build -DDM_PERF=ON && cmake --build build --target bench_check
 *   build/perf/bench_check [records] [path]   (defaults: 1000000, /tmp/orders.ndjson) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "record/ndjson_check.h"

#define BENCH_DEFAULT_RECORDS 1000000
#define BENCH_INVALID_EVERY 1000

static char *s_enum_values[] = {"created", "paid", "shipped", "cancelled"};

static void s_orders(dm_contract_t *c, dm_field_t f[5], size_t pk[1])
{
    memset(c, 0, sizeof *c);
    memset(f, 0, 5 * sizeof *f);
    const char *names[] = {"orderId", "customerId", "amount", "status", "timestamp"};
    dm_ftype types[] = {DM_FT_UUID, DM_FT_STRING, DM_FT_DOUBLE, DM_FT_ENUM, DM_FT_TIMESTAMP};
    for (int i = 0; i < 5; i++) {
        f[i].name = (char *)names[i];
        f[i].type = types[i];
        f[i].required = true;
        f[i].min_length = f[i].max_length = -1;
    }
    f[0].primary_key = true;
    f[2].has_exclusive_minimum = true;
    f[2].exclusive_minimum.is_int = true;
    f[3].values = s_enum_values;
    f[3].nvalues = 4;
    pk[0] = 0;
    c->name = "orders";
    c->fields = f;
    c->nfields = 5;
    c->pk = pk;
    c->npk = 1;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : BENCH_DEFAULT_RECORDS;
    const char *path = argc > 2 ? argv[2] : "/tmp/orders.ndjson";
    FILE *f = fopen(path, "w");
    if (!f)
        return perror(path), 1;
    srand(42);
    for (long i = 0; i < n; i++) {
        unsigned a = (unsigned)rand(), b = (unsigned)rand();
        fprintf(f, "{\"orderId\":\"%08x-%04x-4%03x-8%03x-%012lx\",\"customerId\":\"cust-%06ld\","
                   "\"amount\":%s%u.%02u,\"status\":\"%s\",\"timestamp\":\"2026-03-%02ldT%02ld:%02ld:%02ld.%03ldZ\"}\n",
                a, b & 0xffff, b >> 20 & 0xfff, a >> 20 & 0xfff, (unsigned long)i * 2654435761u % 0xffffffffffffUL,
                i % 1000000, i % BENCH_INVALID_EVERY == 7 ? "-" : "", a % 10000, b % 100,
                s_enum_values[i % 4], 1 + i % 28, i % 24, i % 60, (i / 60) % 60, i % 1000);
    }
    long size = ftell(f);
    fclose(f);

    dm_contract_t c;
    dm_field_t fields[5];
    size_t pk[1];
    s_orders(&c, fields, pk);
    dm_schema_t *s = NULL;
    if (dm_schema_new(&c, &s, NULL) != DM_OK)
        return fputs("schema failed\n", stderr), 1;
    int fd = open(path, O_RDONLY);
    FILE *out = fopen("/dev/null", "w");
    uint64_t valid, invalid;
    double t0 = dm_clock_mono_s();
    dm_err err = dm_ndjson_check_fd(s, path, fd, 0, out, &valid, &invalid);
    double dt = dm_clock_mono_s() - t0;
    close(fd);
    fclose(out);
    dm_schema_destroy(&s);
    printf("%ld records, %.1f bytes each: %llu valid, %llu invalid, err %d; %.3f s, %.2fM records/s, %.0f MB/s\n",
           n, (double)size / (double)n, (unsigned long long)valid, (unsigned long long)invalid, err, dt,
           (double)n / dt / 1e6, (double)size / dt / 1e6);
    return 0;
}
