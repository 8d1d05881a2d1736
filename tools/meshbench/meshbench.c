/* meshbench.c: benchmark helper for the data mesh.
 *
 * Subcommands live in a table (s_commands): `gen` here, `lookup` in meshbench_lookup.c,
 * `gossip` in meshbench_gossip.c (both reach nodes through tools/cli). `gen orders` writes deterministic NDJSON order records, optionally with a share of
 * invalid ones, for `dmctl check`, `dmctl ingest` and the zod peer in bench/ to chew on;
 * `gen customers` the customers those orders name (ids cust-0000000 .. in order), for the
 * federated join of bench/fed.sh.
 * gen uses only libc: the output must be byte-identical for a seed on every machine, and
 * generation must stay far faster than anything it measures, so records are formatted by hand
 * into one large buffer instead of printf per field.
 *
 * Exit codes: 0 success, 1 I/O failure, 2 bad arguments. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "meshbench.h"

#define MB_OUT_BUF_BYTES (4u << 20)     /* flushed when less than one record of room remains */
#define MB_RECORD_MAX_BYTES 512u        /* generous upper bound for one formatted record */
#define MB_DEFAULT_SEED UINT64_C(1)
#define MB_CUSTOMER_POOL 100000u        /* distinct customerIds drawn from */
#define MB_AMOUNT_MAX_CENTS 500000u     /* amounts in [0.01, 5000.00] */
#define MB_EPOCH_DAYS_2025 20089        /* days from 1970-01-01 to 2025-01-01 */
#define MB_SPAN_DAYS 730u               /* 2025-01-01 .. 2026-12-31 */
#define MB_MS_PER_DAY UINT64_C(86400000)
#define MB_PERCENT_SCALE 4294967296.0   /* invalid share compared against 32 random bits */

static const char *const s_statuses[] = {"created", "paid", "shipped", "cancelled"};
static const char *const s_tiers[] = {"bronze", "silver", "gold"};
static const char *const s_countries[] = {"DE", "FR", "US", "GB", "JP", "BR", "IN", "NL"};
static const char s_hex[] = "0123456789abcdef";

/* ---- PRNG: xoshiro256** seeded through splitmix64 (both public domain, Vigna) ---- */

typedef struct {
    uint64_t s[4];
} mb_rng_t;

/* Advances *x and returns the next splitmix64 output. Cannot fail. */
static uint64_t s_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void s_rng_seed(mb_rng_t *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = s_splitmix64(&seed);
}

static uint64_t s_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* Returns the next 64 random bits. Cannot fail. */
static uint64_t s_rng_next(mb_rng_t *rng)
{
    uint64_t *s = rng->s;
    uint64_t out = s_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl(s[3], 45);
    return out;
}

/* Returns a value in [0, n); the modulo bias is irrelevant for n far below 2^64. */
static uint64_t s_rng_below(mb_rng_t *rng, uint64_t n) { return s_rng_next(rng) % n; }

/* ---- hand formatting: each helper writes at p and returns the new end ---- */

static char *s_put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define S_PUT_LIT(p, lit) s_put((p), (lit), sizeof(lit) - 1)

static char *s_put_str(char *p, const char *s) { return s_put(p, s, strlen(s)); }

/* Writes v in decimal, zero-padded to at least width digits. */
static char *s_put_uint(char *p, uint64_t v, int width)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width)
        tmp[n++] = '0';
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Writes n hex digits of v, most significant first. */
static char *s_put_hex(char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--)
        *p++ = s_hex[(v >> (4 * i)) & 0xf];
    return p;
}

/* ---- orders ---- */

typedef enum {
    MB_BAD_NONE = 0,
    MB_BAD_NEGATIVE_AMOUNT,
    MB_BAD_STATUS,
    MB_BAD_UUID,
    MB_BAD_MISSING_FIELD,
    MB_BAD_TIMESTAMP,
    MB_BAD_TRAILING_GARBAGE,
    MB_BAD_WRONG_TYPE,
    MB_BAD_COUNT
} mb_bad_t;

enum { MB_F_ORDER, MB_F_CUSTOMER, MB_F_AMOUNT, MB_F_STATUS, MB_F_TIMESTAMP, MB_F_COUNT };

/* Each variant is invalid under any reasonable reading of the orders contract (no version-0
 * uuids, no offsets, no zero amounts), so that every validator must agree on the count. */
static const char *const s_bad_statuses[] = {"refunded", "Paid", ""};
static const char *const s_bad_dates[] = {"2026-02-30", "2025-02-29", "2025-13-01", "2026-04-31"};
static const char *const s_bad_tails[] = {" x", "}", ",", "{}"};

/* Writes a uuid-v4-shaped id whose 64 bits from `unique` are spread over the digits that are
 * neither the version nor the variant nibble, so distinct `unique` values give distinct ids. */
static char *s_put_uuid(char *p, uint64_t unique, uint64_t rnd)
{
    p = s_put_hex(p, unique >> 32, 8);
    *p++ = '-';
    p = s_put_hex(p, unique >> 16, 4);
    p = S_PUT_LIT(p, "-4");
    p = s_put_hex(p, unique >> 4, 3);
    *p++ = '-';
    *p++ = s_hex[8 + (rnd & 3)];
    p = s_put_hex(p, unique, 1);
    p = s_put_hex(p, rnd >> 2, 2);
    *p++ = '-';
    return s_put_hex(p, rnd >> 10, 12);
}

/* Writes an RFC 3339 UTC timestamp with millis, `ms` after 2025-01-01T00:00:00.000Z.
 * A non-NULL bad_date replaces the calendar date. Civil date: Hinnant's days_to_civil. */
static char *s_put_timestamp(char *p, uint64_t ms, const char *bad_date)
{
    int64_t z = MB_EPOCH_DAYS_2025 + (int64_t)(ms / MB_MS_PER_DAY) + 719468;
    uint64_t in_day = ms % MB_MS_PER_DAY;
    int64_t era = z / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);

    if (bad_date) {
        p = s_put_str(p, bad_date);
    } else {
        p = s_put_uint(p, (uint64_t)y, 4);
        *p++ = '-';
        p = s_put_uint(p, (uint64_t)m, 2);
        *p++ = '-';
        p = s_put_uint(p, (uint64_t)d, 2);
    }
    *p++ = 'T';
    p = s_put_uint(p, in_day / 3600000, 2);
    *p++ = ':';
    p = s_put_uint(p, in_day / 60000 % 60, 2);
    *p++ = ':';
    p = s_put_uint(p, in_day / 1000 % 60, 2);
    *p++ = '.';
    p = s_put_uint(p, in_day % 1000, 3);
    return S_PUT_LIT(p, "Z");
}

/* Writes order number i (one line, '\n' included) at p, damaged as `bad` says, and returns
 * the new end. At most MB_RECORD_MAX_BYTES are written. */
static char *s_put_order(char *p, mb_rng_t *rng, uint64_t seed, uint64_t i, mb_bad_t bad)
{
    /* A bijective mix of (seed, i): ids stay unique without a set of ids seen so far. */
    uint64_t key = seed ^ UINT64_C(0x5851f42d4c957f2d);
    uint64_t x = key + i * UINT64_C(0x9e3779b97f4a7c15);
    uint64_t unique = s_splitmix64(&x);
    uint64_t rnd = s_rng_next(rng);
    uint64_t customer = s_rng_below(rng, MB_CUSTOMER_POOL);
    uint64_t cents = 1 + s_rng_below(rng, MB_AMOUNT_MAX_CENTS);
    uint64_t ms = s_rng_below(rng, MB_SPAN_DAYS * MB_MS_PER_DAY);
    const char *status = s_statuses[s_rng_below(rng, 4)];
    uint64_t pick = bad ? s_rng_next(rng) : 0;
    int missing = bad == MB_BAD_MISSING_FIELD ? (int)(pick % MB_F_COUNT) : -1;
    int wrong_type = bad == MB_BAD_WRONG_TYPE ? (int)(pick % 2) : -1;
    int first = 1;

    *p++ = '{';
    for (int f = 0; f < MB_F_COUNT; f++) {
        if (f == missing)
            continue;
        if (!first)
            *p++ = ',';
        first = 0;
        switch (f) {
        case MB_F_ORDER:
            p = S_PUT_LIT(p, "\"orderId\":\"");
            if (bad == MB_BAD_UUID) {
                char id[40];
                char *end = s_put_uuid(id, unique, rnd);
                switch (pick % 3) {
                case 0: id[pick % 8] = 'g'; break;         /* not hex */
                case 1: end--; break;                      /* one digit short */
                default: end = s_put_hex(id, unique, 16); /* no dashes */
                         end = s_put_hex(end, rnd, 16);
                }
                p = s_put(p, id, (size_t)(end - id));
            } else {
                p = s_put_uuid(p, unique, rnd);
            }
            *p++ = '"';
            break;
        case MB_F_CUSTOMER:
            if (wrong_type == 0) {
                p = S_PUT_LIT(p, "\"customerId\":");
                p = s_put_uint(p, customer, 1);
            } else {
                p = S_PUT_LIT(p, "\"customerId\":\"cust-");
                p = s_put_uint(p, customer, 7);
                *p++ = '"';
            }
            break;
        case MB_F_AMOUNT:
            p = S_PUT_LIT(p, "\"amount\":");
            if (wrong_type == 1)
                *p++ = '"';
            if (bad == MB_BAD_NEGATIVE_AMOUNT)
                *p++ = '-';
            p = s_put_uint(p, cents / 100, 1);
            *p++ = '.';
            p = s_put_uint(p, cents % 100, 2);
            if (wrong_type == 1)
                *p++ = '"';
            break;
        case MB_F_STATUS:
            p = S_PUT_LIT(p, "\"status\":\"");
            if (bad == MB_BAD_STATUS)
                status = s_bad_statuses[pick % (sizeof s_bad_statuses / sizeof *s_bad_statuses)];
            p = s_put_str(p, status);
            *p++ = '"';
            break;
        default:
            p = S_PUT_LIT(p, "\"timestamp\":\"");
            p = s_put_timestamp(p, ms, bad == MB_BAD_TIMESTAMP
                ? s_bad_dates[pick % (sizeof s_bad_dates / sizeof *s_bad_dates)] : NULL);
            *p++ = '"';
        }
    }
    *p++ = '}';
    if (bad == MB_BAD_TRAILING_GARBAGE)
        p = s_put_str(p, s_bad_tails[pick % (sizeof s_bad_tails / sizeof *s_bad_tails)]);
    *p++ = '\n';
    return p;
}

/* ---- customers ---- */

/* Writes customer number i: id cust-%07d (the customerIds orders draw from), an e-mail, a
 * tier, a country and a sign-up time; one line, '\n' included. */
static char *s_put_customer(char *p, mb_rng_t *rng, uint64_t i)
{
    uint64_t tier = s_rng_below(rng, 3), country = s_rng_below(rng, 8);
    uint64_t ms = s_rng_below(rng, MB_SPAN_DAYS * MB_MS_PER_DAY);
    p = S_PUT_LIT(p, "{\"id\":\"cust-");
    p = s_put_uint(p, i, 7);
    p = S_PUT_LIT(p, "\",\"email\":\"user");
    p = s_put_uint(p, i, 1);
    p = S_PUT_LIT(p, "@example.com\",\"tier\":\"");
    p = s_put_str(p, s_tiers[tier]);
    p = S_PUT_LIT(p, "\",\"country\":\"");
    p = s_put_str(p, s_countries[country]);
    p = S_PUT_LIT(p, "\",\"signedUp\":\"");
    p = s_put_timestamp(p, ms, NULL);
    p = S_PUT_LIT(p, "\"}\n");
    return p;
}

/* ---- argument helpers ---- */

/* Parses a whole decimal (or 0x hex) unsigned number. Returns 0 on success, -1 otherwise. */
static int s_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-' || *s == '+')
        return -1;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Matches argv[*i] against `--name VALUE`, `--name=VALUE` or `short VALUE`. Returns 1 and sets
 * *value when it matches, 0 when it does not, -1 (after a message) when the value is missing. */
static int s_opt(int argc, char **argv, int *i, const char *name, const char *short_name,
                 const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) == 0 && a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (strcmp(a, name) != 0 && !(short_name && strcmp(a, short_name) == 0))
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "meshbench: %s needs a value\n", a);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

/* ---- gen ---- */

static void s_gen_usage(FILE *f)
{
    fprintf(f,
        "usage: meshbench gen orders|customers N [--seed S] [--invalid PERCENT] [-o FILE] [-q]\n"
        "\n"
        "Writes N NDJSON order records, one per line, the same bytes for the same seed;\n"
        "customers: N customer records with ids cust-0000000 .. (orders name customers\n"
        "below %u), for docs/examples/customers.yaml with a 7-digit id pattern.\n"
        "  --seed S           PRNG seed, unsigned 64-bit (default %llu)\n"
        "  --invalid PERCENT  share of invalid records, 0..100 (default 0): negative amount,\n"
        "                     unknown status, bad uuid, missing field, impossible date,\n"
        "                     wrong type, trailing garbage\n"
        "  -o, --output FILE  write to FILE instead of stdout\n"
        "  -q, --quiet        no summary on stderr\n",
        MB_CUSTOMER_POOL, (unsigned long long)MB_DEFAULT_SEED);
}

/* What `gen` was asked for. */
typedef struct {
    const char *kind, *count_arg, *out_path;
    uint64_t n, seed;
    double percent;
    int quiet;
} mb_gen_opts_t;

/* Reads gen's arguments into *o. Returns -1 to go on, else the exit code
 * (after the usage or a message on stderr). */
static int s_gen_parse(int argc, char **argv, mb_gen_opts_t *o)
{
    const char *v;
    int r;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            s_gen_usage(stdout);
            return MB_EXIT_OK;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if ((r = s_opt(argc, argv, &i, "--seed", NULL, &v)) != 0) {
            if (r < 0)
                return MB_EXIT_USAGE;
            if (s_parse_u64(v, &o->seed) < 0) {
                fprintf(stderr, "meshbench gen: --seed '%s': want an unsigned 64-bit integer\n", v);
                return MB_EXIT_USAGE;
            }
        } else if ((r = s_opt(argc, argv, &i, "--invalid", NULL, &v)) != 0) {
            char *end;
            if (r < 0)
                return MB_EXIT_USAGE;
            errno = 0;
            o->percent = strtod(v, &end);
            if (!*v || *end || errno || !(o->percent >= 0.0 && o->percent <= 100.0)) {
                fprintf(stderr, "meshbench gen: --invalid '%s': want a percentage 0..100\n", v);
                return MB_EXIT_USAGE;
            }
        } else if ((r = s_opt(argc, argv, &i, "--output", "-o", &v)) != 0) {
            if (r < 0)
                return MB_EXIT_USAGE;
            o->out_path = v;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "meshbench gen: unknown option '%s' (see meshbench gen --help)\n", a);
            return MB_EXIT_USAGE;
        } else if (!o->kind) {
            o->kind = a;
        } else if (!o->count_arg) {
            o->count_arg = a;
        } else {
            fprintf(stderr, "meshbench gen: unexpected argument '%s'\n", a);
            return MB_EXIT_USAGE;
        }
    }
    if (!o->kind || !o->count_arg) {
        s_gen_usage(stderr);
        return MB_EXIT_USAGE;
    }
    if (strcmp(o->kind, "orders") != 0 && strcmp(o->kind, "customers") != 0) {
        fprintf(stderr, "meshbench gen: unknown kind '%s' (known: orders, customers)\n", o->kind);
        return MB_EXIT_USAGE;
    }
    if (strcmp(o->kind, "customers") == 0 && o->percent > 0.0) {
        fprintf(stderr, "meshbench gen: --invalid is for orders only\n");
        return MB_EXIT_USAGE;
    }
    if (s_parse_u64(o->count_arg, &o->n) < 0) {
        fprintf(stderr, "meshbench gen: N '%s': want a record count (unsigned integer)\n",
                o->count_arg);
        return MB_EXIT_USAGE;
    }
    return -1;
}

/* Runs `gen`. Returns an exit code; messages go to stderr. */
static int s_cmd_gen(int argc, char **argv)
{
    mb_gen_opts_t o = {.seed = MB_DEFAULT_SEED};
    uint64_t n_bad = 0, bytes = 0;
    int rc = s_gen_parse(argc, argv, &o);
    FILE *out = stdout;
    char *buf = NULL, *p;
    mb_rng_t rng;
    if (rc >= 0)
        return rc;

    rc = MB_EXIT_IO;
    double t0 = dm_clock_mono_s();
    uint64_t bad_below = (uint64_t)(o.percent / 100.0 * MB_PERCENT_SCALE);
    if (o.out_path && !(out = fopen(o.out_path, "wb"))) {
        fprintf(stderr, "meshbench gen: -o '%s': %s\n", o.out_path, strerror(errno));
        out = stdout;
        goto out;
    }
    if (!(buf = malloc(MB_OUT_BUF_BYTES))) {
        fprintf(stderr, "meshbench gen: out of memory\n");
        goto out;
    }
    s_rng_seed(&rng, o.seed);
    p = buf;
    bool customers = strcmp(o.kind, "customers") == 0;
    for (uint64_t i = 0; i < o.n; i++) {
        mb_bad_t bad = MB_BAD_NONE;
        if (bad_below && (s_rng_next(&rng) >> 32) < bad_below) {
            bad = (mb_bad_t)(1 + s_rng_below(&rng, MB_BAD_COUNT - 1));
            n_bad++;
        }
        p = customers ? s_put_customer(p, &rng, i) : s_put_order(p, &rng, o.seed, i, bad);
        if ((size_t)(p - buf) > MB_OUT_BUF_BYTES - MB_RECORD_MAX_BYTES || i + 1 == o.n) {
            size_t len = (size_t)(p - buf);
            if (fwrite(buf, 1, len, out) != len)
                goto write_failed;
            bytes += len;
            p = buf;
        }
    }
    if (fflush(out) != 0)
        goto write_failed;
    if (!o.quiet)
        fprintf(stderr, "meshbench gen: %llu %s (%llu invalid), %llu bytes in %.3f s\n",
                (unsigned long long)o.n, o.kind, (unsigned long long)n_bad, (unsigned long long)bytes,
                dm_clock_mono_s() - t0);
    rc = MB_EXIT_OK;
    goto out;
write_failed:
    fprintf(stderr, "meshbench gen: writing %s: %s\n", o.out_path ? o.out_path : "stdout",
            strerror(errno));
out:
    free(buf);
    if (out != stdout && fclose(out) != 0 && rc == MB_EXIT_OK) {
        fprintf(stderr, "meshbench gen: closing '%s': %s\n", o.out_path, strerror(errno));
        rc = MB_EXIT_IO;
    }
    return rc;
}

/* ---- dispatch ---- */

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} mb_command_t;

static const mb_command_t s_commands[] = {
    {"gen", "write deterministic NDJSON test records (gen orders N ...)", s_cmd_gen},
    {"lookup", "point-lookup latency by primary key through the client library", dm_meshbench_lookup},
    {"gossip", "a mesh of N real meshd processes: convergence, traffic, failure detection", dm_meshbench_gossip},
};

static void s_usage(FILE *f)
{
    fprintf(f, "usage: meshbench COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof s_commands / sizeof *s_commands; i++)
        fprintf(f, "  %-8s %s\n", s_commands[i].name, s_commands[i].summary);
    fprintf(f, "\nmeshbench COMMAND --help shows a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return MB_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        s_usage(stdout);
        return MB_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof s_commands / sizeof *s_commands; i++)
        if (strcmp(argv[1], s_commands[i].name) == 0)
            return s_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "meshbench: unknown command '%s' (see meshbench --help)\n", argv[1]);
    return MB_EXIT_USAGE;
}
