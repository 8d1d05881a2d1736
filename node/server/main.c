/* main.c: meshd, the domain node daemon: command line, signals, run. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/text.h"
#include "contract/contract.h"
#include "membership/membership.h"
#include "server/node.h"
#include "transport/rpc.h"
#include "record/schema.h"
#include "storage/audit.h"
#include "base/version.h"

#define DM_RECORD_LIMIT_MAX ((size_t)4 << 20) /* stays well under DM_RPC_MAX_MSG_BYTES */
#define DM_MAX_SEEDS 16

enum { O_DATA = 1, O_DOMAIN, O_LISTEN, O_ADVERTISE, O_LIMIT, O_MAP, O_LOG, O_HELP, O_VERSION,
       O_JOIN, O_PROBE, O_PROBE_TIMEOUT, O_GOSSIP, O_SUSPICION, O_QWORKERS, O_QTIMEOUT, O_FED_NONCES,
       O_GOVERNANCE, O_AUDIT_AGE, O_AUDIT_RECORDS, O_OPENLINEAGE };

static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: meshd --data DIR [--domain NAME] [options]\n"
            "\n"
            "Runs one domain node of the data mesh: it keeps the domain's data products in\n"
            "LMDB under DIR and serves dmctl and meshq over CurveZMQ.\n"
            "\n"
            "  --data DIR            data directory (created on first start)\n"
            "  --domain NAME         the domain this node serves; required on first start,\n"
            "                        must match afterwards (" DM_TEXT_NAME_RULE ")\n"
            "  --listen ENDPOINT     where to listen (default %s; port * picks one)\n"
            "  --advertise ENDPOINT  endpoint written to DIR/node.addr (default: the bound\n"
            "                        one; required when listening on 0.0.0.0)\n"
            "  --record-limit BYTES  longest accepted record line (default %d, max %zu)\n"
            "  --map-size BYTES      initial LMDB map size (it grows when full)\n"
            "  --query-workers N     SQL worker threads (default 2; one more serves short queries)\n"
            "  --query-timeout SECS  time limit of one SQL query (default 30)\n"
            "  --fed-relay-nonces N  federated grants one relay may have open or remembered\n"
            "                        at once, 64 to 65536 (default 65536; each is kept until\n"
            "                        its grant expires)\n"
            "  --log-level LEVEL     error, warn, info (default) or debug\n"
            "  --openlineage FILE    append an OpenLineage 2-0-2 RunEvent (JSON, one a line)\n"
            "                        at each ingest run's start and end (docs/operations.md)\n"
            "\n"
            "Access (docs/security.md, docs/governance.md):\n"
            "  --governance KEY      the mesh's governance key (64 hex digits); kept in DIR,\n"
            "                        so later starts may omit it; a rotation is accepted only\n"
            "                        signed by the current key. Without one: owner rules only\n"
            "  --audit-max-age DUR   keep audit records this long (default 30d; 12h, 7d, 1w)\n"
            "  --audit-max-records N keep at most N audit records (default %d)\n"
            "\n"
            "Mesh (docs/membership.md):\n"
            "  --join ADDRESS        join the mesh through this member (repeatable); a\n"
            "                        restarted node rejoins its saved members without it\n"
            "  --probe-interval MS   SWIM probe interval (default %d)\n"
            "  --probe-timeout MS    direct ack timeout (default %d)\n"
            "  --gossip-interval MS  piggyback gossip interval (default %d)\n"
            "  --suspicion-mult N    suspicion timeout multiplier (default %d)\n"
            "  --help, --version\n"
            "\n"
            "Once serving, DIR/node.addr holds the node's address (KEY@tcp://HOST:PORT), the\n"
            "value that dmctl/meshq --node accept. SIGTERM or SIGINT stops the node cleanly.\n",
            DM_RPC_DEFAULT_ENDPOINT, DM_RECORD_LIMIT_DEFAULT, DM_RECORD_LIMIT_MAX,
            DM_AUDIT_DEFAULT_MAX_RECORDS, DM_MEMBERSHIP_PROBE_INTERVAL_MS, DM_MEMBERSHIP_PROBE_TIMEOUT_MS,
            DM_MEMBERSHIP_GOSSIP_INTERVAL_MS, DM_MEMBERSHIP_SUSPICION_MULT);
}

/* Parses a positive byte count with an optional K/M/G suffix (binary). */
static int s_parse_bytes(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || s[0] == '-')
        return -1;
    unsigned long long mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1ULL << 10, end++;
    else if (*end == 'M' || *end == 'm')
        mul = 1ULL << 20, end++;
    else if (*end == 'G' || *end == 'g')
        mul = 1ULL << 30, end++;
    if (*end || v == 0 || v > (unsigned long long)SIZE_MAX / mul)
        return -1;
    *out = (size_t)(v * mul);
    return 0;
}

/* Parses a whole number in [lo, hi] for option name; -1 after printing. */
static int s_parse_int(const char *name, const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "meshd: invalid --%s '%s': expected a whole number from %ld to %ld\n",
                name, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* What the command line sets. */
typedef struct {
    dm_node_opts_t o;
    const char *seeds[DM_MAX_SEEDS];
    dm_membership_config_t mc;
    dm_log_level level;
} s_cli;

/* Parses a byte count for --record-limit or --map-size; -1 after printing. */
static int s_option_bytes(int c, const char *arg, s_cli *cli)
{
    if (c == O_LIMIT) {
        if (s_parse_bytes(arg, &cli->o.record_limit) != 0 ||
            cli->o.record_limit > DM_RECORD_LIMIT_MAX) {
            fprintf(stderr, "meshd: invalid --record-limit '%s': expected bytes from 1 to %zu\n",
                    arg, DM_RECORD_LIMIT_MAX);
            return -1;
        }
        return 0;
    }
    if (s_parse_bytes(arg, &cli->o.initial_map_bytes) != 0) {
        fprintf(stderr, "meshd: invalid --map-size '%s': expected bytes like 256M\n", arg);
        return -1;
    }
    return 0;
}

/* Parses --query-workers, --query-timeout or --fed-relay-nonces; -1
 * after printing. */
static int s_option_query(int c, const char *arg, s_cli *cli)
{
    char *end;
    if (c == O_FED_NONCES) {
        unsigned long v = strtoul(arg, &end, 10);
        if (end == arg || *end || v < 64 || v > 65536) {
            fprintf(stderr, "meshd: invalid --fed-relay-nonces '%s': expected 64 to 65536\n", arg);
            return -1;
        }
        cli->o.fed_relay_nonces = (unsigned)v;
        return 0;
    }
    if (c == O_QWORKERS) {
        unsigned long v = strtoul(arg, &end, 10);
        if (end == arg || *end || v < 1 || v > 64) {
            fprintf(stderr, "meshd: invalid --query-workers '%s': expected 1 to 64\n", arg);
            return -1;
        }
        cli->o.query_workers = (unsigned)v;
        return 0;
    }
    double v = strtod(arg, &end);
    if (end == arg || *end || !(v > 0) || v > 86400) {
        fprintf(stderr, "meshd: invalid --query-timeout '%s': expected seconds, more than 0 "
                        "and at most 86400\n", arg);
        return -1;
    }
    cli->o.query_timeout_ms = (int64_t)(v * 1000);
    if (cli->o.query_timeout_ms < 1)
        cli->o.query_timeout_ms = 1;
    return 0;
}

/* Parses --audit-max-age or --audit-max-records; -1 after printing. */
static int s_option_audit(int c, const char *arg, s_cli *cli)
{
    if (c == O_AUDIT_AGE) {
        int64_t ms = 0;
        if (!dm_contract_duration_parse(arg, strlen(arg), &ms) || ms <= 0) {
            fprintf(stderr, "meshd: invalid --audit-max-age '%s': expected a duration such as "
                            "12h, 30d or 1w\n", arg);
            return -1;
        }
        cli->o.audit_max_age_ms = ms;
        return 0;
    }
    char *end;
    unsigned long long v = strtoull(arg, &end, 10);
    if (end == arg || *end || arg[0] == '-' || v < 1 || v > 1000000000ULL) {
        fprintf(stderr, "meshd: invalid --audit-max-records '%s': expected 1 to 1000000000\n",
                arg);
        return -1;
    }
    cli->o.audit_max_records = v;
    return 0;
}

/* Parses one of the membership settings; -1 after printing. */
static int s_option_mesh(int c, const char *arg, s_cli *cli)
{
    long v;
    switch (c) {
    case O_JOIN:
        if (cli->o.nseeds == DM_MAX_SEEDS) {
            fprintf(stderr, "meshd: at most %d --join addresses\n", DM_MAX_SEEDS);
            return -1;
        }
        cli->seeds[cli->o.nseeds++] = arg;
        return 0;
    case O_PROBE:
        if (s_parse_int("probe-interval", arg, 10, 60000, &v) != 0)
            return -1;
        cli->mc.probe_interval_ms = v;
        return 0;
    case O_PROBE_TIMEOUT:
        if (s_parse_int("probe-timeout", arg, 5, 30000, &v) != 0)
            return -1;
        cli->mc.probe_timeout_ms = v;
        return 0;
    case O_GOSSIP:
        if (s_parse_int("gossip-interval", arg, 10, 60000, &v) != 0)
            return -1;
        cli->mc.gossip_interval_ms = v;
        return 0;
    default: /* O_SUSPICION */
        if (s_parse_int("suspicion-mult", arg, 1, 100, &v) != 0)
            return -1;
        cli->mc.suspicion_mult = (unsigned)v;
        return 0;
    }
}

/* Parses the command line into cli. Returns -1 to go on serving, or the
 * exit status (0 after --help or --version, 2 after printing an error). */
static int s_parse_args(int argc, char **argv, s_cli *cli)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, O_DATA},
        {"domain", required_argument, NULL, O_DOMAIN},
        {"listen", required_argument, NULL, O_LISTEN},
        {"advertise", required_argument, NULL, O_ADVERTISE},
        {"record-limit", required_argument, NULL, O_LIMIT},
        {"map-size", required_argument, NULL, O_MAP},
        {"log-level", required_argument, NULL, O_LOG},
        {"query-workers", required_argument, NULL, O_QWORKERS},
        {"query-timeout", required_argument, NULL, O_QTIMEOUT},
        {"fed-relay-nonces", required_argument, NULL, O_FED_NONCES},
        {"join", required_argument, NULL, O_JOIN},
        {"probe-interval", required_argument, NULL, O_PROBE},
        {"probe-timeout", required_argument, NULL, O_PROBE_TIMEOUT},
        {"gossip-interval", required_argument, NULL, O_GOSSIP},
        {"suspicion-mult", required_argument, NULL, O_SUSPICION},
        {"governance", required_argument, NULL, O_GOVERNANCE},
        {"audit-max-age", required_argument, NULL, O_AUDIT_AGE},
        {"audit-max-records", required_argument, NULL, O_AUDIT_RECORDS},
        {"openlineage", required_argument, NULL, O_OPENLINEAGE},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    int c, bad = 0;
    opterr = 0;
    while (!bad && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_DATA: cli->o.data_dir = optarg; break;
        case O_DOMAIN: cli->o.domain = optarg; break;
        case O_LISTEN: cli->o.listen = optarg; break;
        case O_ADVERTISE: cli->o.advertise = optarg; break;
        case O_LIMIT:
        case O_MAP: bad = s_option_bytes(c, optarg, cli); break;
        case O_LOG: {
            int l = dm_log_level_parse(optarg);
            if (l < 0) {
                fprintf(stderr, "meshd: invalid --log-level '%s': expected error, warn, info or debug\n",
                        optarg);
                return 2;
            }
            cli->level = (dm_log_level)l;
            break;
        }
        case O_JOIN:
        case O_PROBE:
        case O_PROBE_TIMEOUT:
        case O_GOSSIP:
        case O_SUSPICION: bad = s_option_mesh(c, optarg, cli); break;
        case O_QWORKERS:
        case O_QTIMEOUT:
        case O_FED_NONCES: bad = s_option_query(c, optarg, cli); break;
        case O_GOVERNANCE: cli->o.governance = optarg; break;
        case O_OPENLINEAGE: cli->o.openlineage = optarg; break;
        case O_AUDIT_AGE:
        case O_AUDIT_RECORDS: bad = s_option_audit(c, optarg, cli); break;
        case O_HELP: s_usage(stdout); return 0;
        case O_VERSION: printf("meshd %s\n", DM_VERSION); return 0;
        default:
            fprintf(stderr, "meshd: unknown or incomplete option '%s' (meshd --help lists them)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (bad)
        return 2;
    if (optind < argc) {
        fprintf(stderr, "meshd: unexpected argument '%s' (meshd --help)\n", argv[optind]);
        return 2;
    }
    if (!cli->o.data_dir) {
        fprintf(stderr, "meshd: --data DIR is required (meshd --help)\n");
        return 2;
    }
    return -1;
}

int main(int argc, char **argv)
{
    s_cli cli = {.level = DM_LOG_INFO};
    dm_membership_config_default(&cli.mc);
    int status = s_parse_args(argc, argv, &cli);
    if (status >= 0)
        return status;
    dm_buf_t why = DM_BUF_INIT;
    if (dm_membership_config_check(&cli.mc, &why) != DM_OK) {
        fprintf(stderr, "meshd: invalid membership settings: %s\n", why.data);
        dm_buf_free(&why);
        return 2;
    }
    cli.o.seeds = cli.seeds;
    cli.o.membership = &cli.mc;
    dm_log_init("meshd", cli.level);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    dm_buf_t err = DM_BUF_INIT;
    dm_node_t *node = NULL;
    dm_err rc = dm_node_new(&cli.o, &node, &err);
    if (rc != DM_OK) {
        fprintf(stderr, "meshd: %s\n", err.data ? err.data : dm_err_str(rc));
        dm_buf_free(&err);
        return rc == DM_ERR_USAGE ? 2 : 1;
    }
    rc = dm_node_run(node, &s_stop);
    dm_node_destroy(&node);
    dm_log_info("stopped");
    return rc == DM_OK ? 0 : 1;
}
