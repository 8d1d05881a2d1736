/* dmctl.c: the domain team's tool: validate and check offline (check is
 * node/record/ndjson_check.h), register and deregister contracts, ingest
 * records, list products and quarantined records, ask a node's status.
 * Identities, admins, grants and the audit are in dmctl_access.c, the
 * mesh's governance in dmctl_policy.c and dmctl_explain.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <sodium.h>

#include "record/ndjson_check.h"
#include "cli/cli.h"
#include "contract/contract.h"
#include "base/array.h"
#include "base/lines.h"
#include "record/schema.h"
#include "contract/types.h"
#include "base/version.h"
#include "transport/envelope.h"

#include "dmctl.h"

#define DM_INGEST_BATCH_BYTES ((size_t)1 << 20) /* bytes of lines per batch */
#define DM_INGEST_BATCH_MAX_BYTES ((size_t)8 << 20)
/* Batches in flight. 8 let the node's writer group only ~3 batches per
 * commit (1M records: 41-52 commits, each an fsync) because the rest were
 * still being validated; 12 gives 27-29 commits. The node answers "busy"
 * past DM_INGEST_QUEUE_MSGS (32) queued writes, so two ingests still fit. */
#define DM_INGEST_WINDOW 12
#define DM_RECORD_LIMIT_MAX ((size_t)4 << 20)
#define DM_QUARANTINE_PAGE 200
/* glibc's malloc: blocks below this come from the heap, not mmap, and the
 * heap keeps this much free memory before giving it back (s_ingest_cmd). */
#define DM_INGEST_MMAP_THRESHOLD ((size_t)32 << 20)
#define DM_INGEST_TRIM_THRESHOLD ((size_t)128 << 20)

static const char *const P = "dmctl";

static const dm_cli_optspec_t s_opts[] = {
    {"node", true},         {"data", true},        {"json", false},
    {"timeout", true},      {"help", false},       {"version", false},
    {"config", true},       {"record-limit", true}, {"batch-bytes", true},
    {"limit", true},        {"product", true},     {"identity", true},
    {"since", true},        {"policies", true},    {"contract", true},
    {"key", true},          {"as", true},          {"action", true},
    {"run", false},         {"junit", false},      {"history", true},
};

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: dmctl [global options] COMMAND [arguments]\n"
            "\n"
            "Offline (no node needed):\n"
            "  validate FILE...                 check data-product contracts (and, with a\n"
            "                                   node given, the mesh's contract rules)\n"
            "  check --config CONTRACT FILE|-   check NDJSON records against a contract\n"
            "        [--product NAME] [--record-limit BYTES]\n"
            "  whoami [--node ADDRESS]          your identity: public key and file; with\n"
            "                                   --node also how that node sees you\n"
            "  keygen FILE                      make a new identity in FILE\n"
            "Against your domain's node (writes need a domain admin):\n"
            "  register FILE | --config FILE    register (or upgrade) the contracts in FILE\n"
            "  ingest DOMAIN/PRODUCT FILE|-     store NDJSON records; invalid ones are\n"
            "        [--batch-bytes N] [--record-limit BYTES]   quarantined with reasons\n"
            "  deregister DOMAIN/PRODUCT        delete a product and its records; the mesh\n"
            "                                   learns it from a signed tombstone\n"
            "  products                         list products with record counts\n"
            "  quarantine DOMAIN/PRODUCT [--limit N]   show quarantined records\n"
            "  quality DOMAIN/PRODUCT [--run] [--json|--junit] [--history N]\n"
            "                                   the checks judged now (--run: and stored);\n"
            "                                   exit 0 pass, 1 warn, 2 fail, 3 error, 4 no\n"
            "                                   report or usage error (quality --help)\n"
            "  status                           the node's domain, id and uptime\n"
            "  admins list | add KEY | remove KEY   the domain's admins besides the node key\n"
            "  grant DOMAIN/PRODUCT KEY|group:NAME    add a reader (no new contract version)\n"
            "  revoke DOMAIN/PRODUCT KEY|group:NAME   remove one; both print the readers\n"
            "  audit [--since T] [--limit N]    the node's decisions (admins only); T is\n"
            "                                   RFC 3339 or a duration ago (10m, 2h, 7d)\n"
            "The mesh's governance (docs/governance.md):\n"
            "  policy publish FILE              sign and publish governance documents (as the\n"
            "                                   governance identity)\n"
            "  policy withdraw NAME             withdraw the governance document NAME (as the\n"
            "                                   governance identity)\n"
            "  policy rotate NEWKEY             hand governance to NEWKEY (as the current key)\n"
            "  policy show                      the governance key and published documents\n"
            "  policy test CASES.yaml [--policies FILE...]   table-driven decision tests\n"
            "  policy explain --product DOMAIN/PRODUCT [--action read|describe|write]\n"
            "        [--key HEX | --as NAME] [--policies FILE...] [--contract FILE]\n"
            "                                   which rules apply, and the decision\n"
            "\n"
            "Global options (before or after the command):\n"
            DM_CLI_HELP_CONNECT
            "  --json           machine-readable output\n"
            "  --timeout SECS   give up on a silent node after SECS (default 10)\n"
            "  --help, --version\n"
            "\n"
            "Exit status: 0 success; 1 something invalid or refused (validate, check:\n"
            "invalid contracts or records, broken contract rules; register, deregister,\n"
            "admins, grant, revoke, policy, audit: refused by the node, e.g. permission\n"
            "denied; ingest: records quarantined; policy test: a case failed); 2 usage, I/O\n"
            "or connection error, and an ingest the node cut short or refused for another\n"
            "reason than permission (the counts of the batches it took are still printed;\n"
            "none when it refused before taking any).\n");
}

/* Parses a byte count option within [1, max]; returns -1 after printing. */
static int s_bytes_opt(const dm_cli_args_t *a, const char *name, size_t def, size_t max,
                       size_t *out)
{
    uint64_t n;
    if (dm_cli_uint_opt(a, name, "a number of bytes", 1, max, def, &n) != 0)
        return -1;
    *out = (size_t)n;
    return 0;
}

/* If rep carries an Error, prints it and returns true: a permission
 * refusal as the node words it ("dmctl: CMD: permission denied: ..."),
 * any other as "dmctl: WHAT: message". */
static bool s_node_error(const char *cmd, const char *what, const Dm__Envelope *rep,
                         bool *denied)
{
    bool d = rep->body_case == DM__ENVELOPE__BODY_ERROR && rep->error &&
             rep->error->code == DM_ERR_DENIED;
    if (denied)
        *denied = d;
    return dm_cli_print_error(P, d ? cmd : what, rep);
}

/* ---- validate ---- */

/* The contracts dmctl validate gathered, each with the file it came from. */
typedef struct {
    dm_contract_t **all;
    const char **paths;
    size_t n, cap, pcap;
} s_valid;

/* Parses the contracts of path into v (printing what is wrong with it). */
static int s_validate_file(const char *path, s_valid *v)
{
    dm_contract_t **list = NULL;
    size_t count = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_buf_t out = DM_BUF_INIT;
    int status = DM_EXIT_OK;
    dm_err rc = dm_contract_parse_file(path, &list, &count, &diags);
    dm_diags_format(&diags, &out);
    if (rc == DM_ERR_IO) {
        fputs(out.data ? out.data : "", stderr);
        status = DM_EXIT_USAGE;
    } else if (rc != DM_OK) {
        fputs(out.data ? out.data : "", stdout);
        status = DM_EXIT_FAIL;
    }
    for (size_t k = 0; rc == DM_OK && k < count; k++) {
        if (!dm_array_reserve(&v->all, &v->cap, v->n + 1, sizeof *v->all, 16) ||
            !dm_array_reserve(&v->paths, &v->pcap, v->n + 1, sizeof *v->paths, 16)) {
            fputs("fatal: out of memory\n", stderr);
            abort();
        }
        v->paths[v->n] = path;
        v->all[v->n++] = list[k];
        list[k] = NULL;
    }
    dm_contract_list_destroy(&list, count);
    dm_diags_clear(&diags);
    dm_buf_free(&out);
    return status;
}

/* dmctl validate: a contract is "ok" only when it parses and, with a node
 * given, meets the mesh's contract rules too. */
static int s_validate(const dm_cli_args_t *a)
{
    if (a->npos < 2) {
        fprintf(stderr, "%s: validate needs at least one FILE (dmctl validate FILE...)\n", P);
        return DM_EXIT_USAGE;
    }
    int status = DM_EXIT_OK;
    s_valid v = {0};
    for (int i = 1; i < a->npos; i++) {
        int st = s_validate_file(a->pos[i], &v);
        if (st > status)
            status = st;
    }
    bool *broken = calloc(v.n ? v.n : 1, sizeof *broken);
    dm_buf_t note = DM_BUF_INIT;
    if (!broken) {
        fputs("fatal: out of memory\n", stderr);
        abort();
    }
    if (v.n) {
        int st = dm_dmctl_validate_rules(a, v.all, v.n, broken, &note);
        if (st > status)
            status = st;
    }
    for (size_t k = 0; k < v.n; k++) {
        const dm_contract_t *c = v.all[k];
        if (!broken[k])
            printf("%s: ok: %s/%s %s (%zu field%s, %zu check%s, access %s)\n", v.paths[k],
                   c->domain, c->name, c->version, c->nfields, c->nfields == 1 ? "" : "s",
                   c->nchecks, c->nchecks == 1 ? "" : "s", dm_contract_access_name(c->access));
    }
    fputs(note.data ? note.data : "", stdout);
    dm_buf_free(&note);
    free(broken);
    free(v.paths);
    dm_contract_list_destroy(&v.all, v.n);
    return status;
}

/* Loads exactly one contract from path (choosing by name when the file
 * holds several). Prints diagnostics; returns NULL on failure with *status
 * set. The caller destroys the contract. */
static dm_contract_t *s_load_one(const char *path, const char *product, int *status)
{
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_contract_t *pick = NULL;
    dm_err rc = dm_contract_parse_file(path, &list, &n, &diags);
    if (rc != DM_OK) {
        dm_buf_t text = DM_BUF_INIT;
        dm_diags_format(&diags, &text);
        fputs(text.data ? text.data : "", stderr);
        fprintf(stderr, "%s: contract %s is not valid (dmctl validate %s)\n", P, path, path);
        dm_buf_free(&text);
        *status = rc == DM_ERR_IO ? DM_EXIT_USAGE : DM_EXIT_FAIL;
        goto out;
    }
    size_t at = n;
    for (size_t k = 0; k < n; k++)
        if ((product && strcmp(list[k]->name, product) == 0) || (!product && n == 1))
            at = k;
    if (at < n) {
        pick = list[at];
        list[at] = NULL; /* the caller's now */
    }
    if (!pick) {
        if (product)
            fprintf(stderr, "%s: %s holds no contract named '%s'\n", P, path, product);
        else
            fprintf(stderr, "%s: %s holds %zu contracts; choose one with --product NAME\n", P,
                    path, n);
        *status = DM_EXIT_USAGE;
    }
out:
    dm_contract_list_destroy(&list, n);
    dm_diags_clear(&diags);
    return pick;
}

/* Opens FILE or "-" (stdin) for reading; -1 after printing on error. */
static int s_open_input(const char *path)
{
    if (strcmp(path, "-") == 0)
        return STDIN_FILENO;
    int fd = -1;
    dm_buf_t why = DM_BUF_INIT;
    if (dm_lines_open_read(path, DM_FILE_STREAM, &fd, &why) != DM_OK)
        fprintf(stderr, "%s: cannot open %s: %s (a record file, a pipe or - for stdin)\n", P,
                path, why.len ? why.data : "?");
    dm_buf_free(&why);
    return fd;
}

/* ---- check ---- */

static int s_check(const dm_cli_args_t *a)
{
    const char *config = dm_cli_get(a, "config");
    if (!config || a->npos != 2) {
        fprintf(stderr, "%s: usage: dmctl check --config CONTRACT FILE|-\n", P);
        return DM_EXIT_USAGE;
    }
    size_t limit;
    if (s_bytes_opt(a, "record-limit", DM_RECORD_LIMIT_DEFAULT, DM_RECORD_LIMIT_MAX, &limit) != 0)
        return DM_EXIT_USAGE;
    int status = DM_EXIT_OK;
    dm_contract_t *c = s_load_one(config, dm_cli_get(a, "product"), &status);
    if (!c)
        return status;
    dm_schema_t *schema = NULL;
    int fd = -1;
    dm_buf_t why = DM_BUF_INIT;
    if (dm_schema_new(c, &schema, &why) != DM_OK) {
        fprintf(stderr, "%s: cannot compile the schema of %s%s%s\n", P, config,
                why.len ? ": " : "", why.len ? why.data : "");
        dm_buf_free(&why);
        status = DM_EXIT_USAGE;
        goto out;
    }
    fd = s_open_input(a->pos[1]);
    if (fd < 0) {
        status = DM_EXIT_USAGE;
        goto out;
    }
    uint64_t valid = 0, invalid = 0;
    const char *name = strcmp(a->pos[1], "-") == 0 ? "stdin" : a->pos[1];
    dm_err rc = dm_ndjson_check_fd(schema, name, fd, limit, stdout, &valid, &invalid);
    if (rc != DM_OK) {
        status = DM_EXIT_USAGE; /* dm_ndjson_check_fd already said where reading failed */
    } else {
        status = invalid ? DM_EXIT_FAIL : DM_EXIT_OK;
    }
out:
    if (fd > STDIN_FILENO)
        close(fd);
    dm_schema_destroy(&schema);
    dm_contract_destroy(&c);
    return status;
}

/* ---- register ---- */

static int s_register(const dm_cli_args_t *a)
{
    const char *path = dm_cli_get(a, "config");
    if ((path && a->npos != 1) || (!path && a->npos != 2)) {
        fprintf(stderr, "%s: usage: dmctl register FILE (or --config FILE)\n", P);
        return DM_EXIT_USAGE;
    }
    if (!path)
        path = a->pos[1];
    dm_contract_t **list = NULL;
    size_t n = 0;
    dm_diags_t diags = DM_DIAGS_INIT;
    dm_err rc = dm_contract_parse_file(path, &list, &n, &diags);
    if (rc != DM_OK) {
        dm_buf_t text = DM_BUF_INIT;
        dm_diags_format(&diags, &text);
        fputs(text.data ? text.data : "", stderr);
        fprintf(stderr, "%s: nothing registered: %s is not valid\n", P, path);
        dm_buf_free(&text);
        dm_diags_clear(&diags);
        return rc == DM_ERR_IO ? DM_EXIT_USAGE : DM_EXIT_FAIL;
    }
    dm_diags_clear(&diags);
    dm_rpc_client_t *client = NULL;
    int status = dm_cli_connect(a, &client);
    dm_buf_t canon = DM_BUF_INIT;
    for (size_t k = 0; status == DM_EXIT_OK && k < n; k++) {
        const dm_contract_t *c = list[k];
        dm_buf_reset(&canon);
        dm_contract_canonical(c, &canon);
        Dm__Envelope req = DM__ENVELOPE__INIT;
        Dm__RegisterReq body = DM__REGISTER_REQ__INIT;
        body.contract.data = (uint8_t *)canon.data;
        body.contract.len = canon.len;
        dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_REGISTER_REQ, &body);
        Dm__Envelope *rep = NULL;
        dm_buf_t rpc_why = DM_BUF_INIT;
        if (dm_rpc_client_call(client, &req, &rep, &rpc_why) != DM_OK) {
            fprintf(stderr, "%s: %s\n", P, rpc_why.data);
            dm_buf_free(&rpc_why);
            status = DM_EXIT_USAGE;
            break;
        }
        char what[300];
        snprintf(what, sizeof what, "register %s/%s %s refused", c->domain, c->name, c->version);
        if (s_node_error("register", what, rep, NULL)) {
            status = DM_EXIT_FAIL;
        } else if (rep->body_case == DM__ENVELOPE__BODY_REGISTER_REP) {
            const Dm__RegisterRep *r = rep->register_rep;
            if (r->outcome == DM__REGISTER_REP__OUTCOME__CREATED)
                printf("registered %s/%s %s\n", r->domain, r->name, r->version);
            else if (r->outcome == DM__REGISTER_REP__OUTCOME__UPGRADED)
                printf("upgraded %s/%s %s -> %s\n", r->domain, r->name, r->previous_version,
                       r->version);
            else
                printf("unchanged %s/%s %s (already registered with the same content)\n",
                       r->domain, r->name, r->version);
        } else {
            fprintf(stderr, "%s: unexpected reply to register\n", P);
            status = DM_EXIT_USAGE;
        }
        dm__envelope__free_unpacked(rep, NULL);
    }
    dm_buf_free(&canon);
    dm_rpc_client_destroy(&client);
    dm_contract_list_destroy(&list, n);
    return status;
}

/* ---- ingest ---- */

typedef struct {
    dm_rpc_client_t *client;
    const char *domain, *product, *source;
    uint8_t run_id[16];  /* ties the batches of this run (IngestReq.run_id) */
    uint64_t sent;       /* batches sent */
    uint64_t accepted, quarantined;
    unsigned inflight;
    bool counted;  /* the node answered a batch with its counts */
    bool failed;   /* the node refused a batch: send no more */
    bool denied;   /* ... because the caller may not write there */
    bool lost;     /* the node stopped answering */
} s_ingest;

/* Waits for one reply and accounts for it. */
static void s_ingest_reply(s_ingest *st)
{
    Dm__Envelope *rep = NULL;
    dm_buf_t rpc_why = DM_BUF_INIT;
    if (dm_rpc_client_recv(st->client, &rep, &rpc_why) != DM_OK) {
        fprintf(stderr, "%s: ingest cut short: %s\n", P, rpc_why.data);
        dm_buf_free(&rpc_why);
        st->lost = true;
        st->inflight = 0;
        return;
    }
    st->inflight--;
    if (rep->body_case == DM__ENVELOPE__BODY_INGEST_REP) {
        st->accepted += rep->ingest_rep->accepted;
        st->quarantined += rep->ingest_rep->quarantined;
        st->counted = true;
    } else if (!st->failed) {
        char what[300];
        snprintf(what, sizeof what, "ingest into %s/%s refused", st->domain, st->product);
        if (!s_node_error("ingest", what, rep, &st->denied))
            fprintf(stderr, "%s: unexpected reply to ingest\n", P);
        st->failed = true;
    }
    dm__envelope__free_unpacked(rep, NULL);
}

static void s_ingest_send(s_ingest *st, uint64_t first_line, const void *data, size_t len,
                          uint64_t oversized, bool last)
{
    if (st->failed || st->lost)
        return;
    while (st->inflight >= DM_INGEST_WINDOW && !st->lost)
        s_ingest_reply(st);
    if (st->lost || st->failed)
        return;
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__IngestReq body = DM__INGEST_REQ__INIT;
    body.domain = (char *)st->domain;
    body.product = (char *)st->product;
    body.first_line = first_line;
    body.data.data = (uint8_t *)data;
    body.data.len = len;
    body.oversized_len = oversized;
    body.source = (char *)st->source;
    body.run_id.data = st->run_id;
    body.run_id.len = sizeof st->run_id;
    body.run_first = st->sent++ == 0;
    body.run_last = last;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_INGEST_REQ, &body);
    dm_buf_t rpc_why = DM_BUF_INIT;
    if (dm_rpc_client_send(st->client, &req, NULL, &rpc_why) != DM_OK) {
        fprintf(stderr, "%s: ingest cut short: %s\n", P, rpc_why.data);
        dm_buf_free(&rpc_why);
        st->lost = true;
        return;
    }
    st->inflight++;
}

/* Every batch is packed into a new 1 MiB message, which libzmq's I/O
 * thread copies into another to encrypt: glibc mapped each afresh and
 * unmapped it on free, and the page faults were ~25% of dmctl's CPU (perf,
 * 1M records). Kept in the heap they are reused. Other C libraries: as is. */
static void s_keep_batches_in_heap(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, (int)DM_INGEST_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, (int)DM_INGEST_TRIM_THRESHOLD);
#endif
}

static int s_ingest_cmd(const dm_cli_args_t *a)
{
    if (a->npos != 3) {
        fprintf(stderr, "%s: usage: dmctl ingest DOMAIN/PRODUCT FILE|-\n", P);
        return DM_EXIT_USAGE;
    }
    size_t limit, batch_bytes;
    if (s_bytes_opt(a, "record-limit", DM_RECORD_LIMIT_DEFAULT, DM_RECORD_LIMIT_MAX, &limit) != 0 ||
        s_bytes_opt(a, "batch-bytes", DM_INGEST_BATCH_BYTES, DM_INGEST_BATCH_MAX_BYTES,
                    &batch_bytes) != 0)
        return DM_EXIT_USAGE;
    dm_cli_qualified_t qualified;
    if (dm_cli_qualified(a, a->pos[1], &qualified) != 0)
        return DM_EXIT_USAGE;
    s_keep_batches_in_heap();
    s_ingest st = {0};
    randombytes_buf(st.run_id, sizeof st.run_id);
    st.domain = qualified.domain;
    st.product = qualified.product;
    int fd = s_open_input(a->pos[2]);
    if (fd < 0)
        return DM_EXIT_USAGE;
    int status = dm_cli_connect(a, &st.client);
    if (status != DM_EXIT_OK) {
        if (fd > STDIN_FILENO)
            close(fd);
        return status;
    }
    char srcbuf[4096];
    snprintf(srcbuf, sizeof srcbuf, "%s", a->pos[2]);
    st.source = strcmp(a->pos[2], "-") == 0 ? "stdin" : basename(srcbuf);

    dm_lines_t *lines = NULL;
    dm_buf_t batch = DM_BUF_INIT;
    bool read_error = false;
    if (dm_lines_new(fd, limit, &lines) != DM_OK) {
        fprintf(stderr, "%s: out of memory\n", P);
        status = DM_EXIT_USAGE;
        goto out;
    }
    dm_buf_reserve(&batch, batch_bytes + limit + 2);
    uint64_t first = 0, next = 0;
    for (;;) {
        if (st.failed || st.lost)
            break;
        const char *line;
        size_t len;
        uint64_t lineno, full;
        int r = dm_lines_next(lines, &line, &len, &lineno, &full);
        if (r < 0) {
            fprintf(stderr, "%s: reading %s failed: %s\n", P, a->pos[2], strerror(errno));
            read_error = true;
            break;
        }
        bool flush = r == 0 || full > len || (batch.len && lineno != next);
        if (flush && batch.len) {
            s_ingest_send(&st, first, batch.data, batch.len, 0, false);
            dm_buf_reset(&batch);
        }
        if (r == 0)
            break;
        if (full > len) {
            s_ingest_send(&st, lineno, line, len, full, false);
            continue;
        }
        if (!batch.len)
            first = lineno;
        dm_buf_append(&batch, line, len);
        dm_buf_putc(&batch, '\n');
        next = lineno + 1;
        if (batch.len >= batch_bytes) {
            s_ingest_send(&st, first, batch.data, batch.len, 0, false);
            dm_buf_reset(&batch);
        }
    }
    if (!read_error) /* an empty last batch closes the run: the owner then judges its checks */
        s_ingest_send(&st, 0, "", 0, 0, true);
    while (st.inflight > 0 && !st.lost)
        s_ingest_reply(&st);
    if (st.denied && !st.lost && !read_error)
        status = DM_EXIT_FAIL;
    else if (st.failed || st.lost || read_error)
        status = DM_EXIT_USAGE;
    else
        status = st.quarantined ? DM_EXIT_FAIL : DM_EXIT_OK;
out:
    /* Counts of an ingest the node refused outright would only say "0 accepted" above its error. */
    if (!st.failed || st.counted)
        printf("%" PRIu64 " accepted, %" PRIu64 " quarantined\n", st.accepted, st.quarantined);
    dm_buf_free(&batch);
    dm_lines_destroy(&lines);
    dm_rpc_client_destroy(&st.client);
    if (fd > STDIN_FILENO)
        close(fd);
    return status;
}

/* ---- deregister ---- */

static int s_deregister(const dm_cli_args_t *a)
{
    dm_cli_qualified_t q;
    if (dm_cli_product_arg(a, "dmctl deregister DOMAIN/PRODUCT", &q) != DM_EXIT_OK)
        return DM_EXIT_USAGE;
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__DeregisterReq body = DM__DEREGISTER_REQ__INIT;
    body.domain = (char *)q.domain;
    body.product = (char *)q.product;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_DEREGISTER_REQ, &body);
    Dm__Envelope *rep = NULL;
    int status = dm_cli_request(a, &req, DM__ENVELOPE__BODY_DEREGISTER_REP, "deregister", &rep);
    if (status != DM_EXIT_OK)
        return status;
    const Dm__DeregisterRep *r = rep->deregister_rep;
    printf("deregistered %s/%s %s (%" PRIu64 " records deleted; the mesh is told by a "
           "tombstone)\n", r->domain, r->name, r->version, r->records);
    dm__envelope__free_unpacked(rep, NULL);
    return DM_EXIT_OK;
}

/* ---- products, quarantine, status ---- */

/* This node's products with their record counts. */
static int s_products(const dm_cli_args_t *a) { return dm_cli_products(a, false); }

static void s_print_item(const Dm__QuarantineItem *it, bool json, bool first)
{
    dm_buf_t o = DM_BUF_INIT;
    char at[DM_TIMESTAMP_TEXT_MAX];
    dm_types_timestamp_format(it->at_ms * 1000, at);
    if (json) {
        dm_buf_printf(&o, "%s{\"seq\":%" PRIu64 ",\"line\":%" PRIu64 ",\"source\":",
                      first ? "" : ",\n", it->seq, it->line);
        dm_cli_json_string(&o, it->source, strlen(it->source));
        dm_buf_printf(&o, ",\"at\":\"%s\",\"reasons\":", at);
        dm_cli_json_string(&o, it->reasons, strlen(it->reasons));
        dm_buf_puts(&o, ",\"raw\":");
        dm_cli_json_string(&o, (const char *)it->raw.data, it->raw.len);
        dm_buf_printf(&o, ",\"raw_length\":%" PRIu64 "}",
                      it->raw_len > it->raw.len ? it->raw_len : (uint64_t)it->raw.len);
    } else {
        dm_buf_printf(&o, "%s:%" PRIu64 ": %s\n    ", it->source, it->line, it->reasons);
        dm_cli_text(&o, (const char *)it->raw.data, it->raw.len);
        if (it->raw_len > it->raw.len)
            dm_buf_printf(&o, " ... (%" PRIu64 " bytes in all)", it->raw_len);
        dm_buf_putc(&o, '\n');
    }
    fputs(o.data, stdout);
    dm_buf_free(&o);
}

static int s_quarantine(const dm_cli_args_t *a)
{
    dm_cli_qualified_t q;
    if (dm_cli_product_arg(a, "dmctl quarantine DOMAIN/PRODUCT [--limit N] [--json]", &q) !=
        DM_EXIT_OK)
        return DM_EXIT_USAGE;
    uint64_t limit;
    if (dm_cli_uint_opt(a, "limit", "a number of records", 0, UINT64_MAX, UINT64_MAX, &limit) != 0)
        return DM_EXIT_USAGE;
    dm_rpc_client_t *client = NULL;
    int status = dm_cli_connect(a, &client);
    if (status != DM_EXIT_OK)
        return status;
    bool json = dm_cli_get(a, "json") != NULL;
    uint64_t after = 0, shown = 0;
    if (json)
        fputs("[", stdout);
    for (;;) {
        Dm__Envelope req = DM__ENVELOPE__INIT;
        Dm__QuarantineReq body = DM__QUARANTINE_REQ__INIT;
        body.domain = (char *)q.domain;
        body.product = (char *)q.product;
        body.after = after;
        body.limit = DM_QUARANTINE_PAGE;
        dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_QUARANTINE_REQ, &body);
        Dm__Envelope *rep = NULL;
        dm_buf_t rpc_why = DM_BUF_INIT;
        if (dm_rpc_client_call(client, &req, &rep, &rpc_why) != DM_OK) {
            fprintf(stderr, "%s: %s\n", P, rpc_why.data);
            dm_buf_free(&rpc_why);
            status = DM_EXIT_USAGE;
            break;
        }
        if (rep->body_case != DM__ENVELOPE__BODY_QUARANTINE_REP) {
            if (dm_cli_print_error(P, "quarantine", rep)) {
                status = DM_EXIT_FAIL;
            } else {
                fprintf(stderr, "%s: unexpected reply to quarantine\n", P);
                status = DM_EXIT_USAGE;
            }
            dm__envelope__free_unpacked(rep, NULL);
            break;
        }
        const Dm__QuarantineRep *qr = rep->quarantine_rep;
        for (size_t i = 0; i < qr->n_items && shown < limit; i++, shown++) {
            s_print_item(qr->items[i], json, shown == 0);
            after = qr->items[i]->seq;
        }
        bool more = qr->more && qr->n_items > 0 && shown < limit;
        dm__envelope__free_unpacked(rep, NULL);
        if (!more)
            break;
    }
    if (json)
        fputs("]\n", stdout);
    dm_rpc_client_destroy(&client);
    return status;
}

static int s_status(const dm_cli_args_t *a)
{
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__Ping ping = DM__PING__INIT;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_PING, &ping);
    Dm__Envelope *rep = NULL;
    int status = dm_cli_request(a, &req, DM__ENVELOPE__BODY_PONG, "status", &rep);
    if (status != DM_EXIT_OK)
        return status;
    const Dm__Pong *p = rep->pong;
    char hex[65];
    dm_cli_hex(hex, &p->node_id, 32);
    if (dm_cli_get(a, "json")) {
        dm_buf_t o = DM_BUF_INIT;
        dm_buf_puts(&o, "{\"domain\":");
        dm_cli_json_string(&o, p->domain, strlen(p->domain));
        dm_buf_printf(&o, ",\"node_id\":\"%s\",\"endpoint\":", hex);
        dm_cli_json_string(&o, p->endpoint, strlen(p->endpoint));
        dm_buf_printf(&o, ",\"uptime_ms\":%" PRIu64 ",\"software\":", p->uptime_ms);
        dm_cli_json_string(&o, p->software, strlen(p->software));
        dm_buf_puts(&o, "}\n");
        fputs(o.data, stdout);
        dm_buf_free(&o);
    } else
        printf("domain %s\nnode id %s\nendpoint %s\nuptime %" PRIu64 " s\nsoftware %s\n",
               p->domain, hex, p->endpoint, p->uptime_ms / 1000, p->software);
    dm__envelope__free_unpacked(rep, NULL);
    return DM_EXIT_OK;
}

/* The command word of argv as dm_cli_parse would find it (the first
 * positional argument; the value of an option of s_opts is not one), or
 * NULL. Lets a command with its own options and exit codes parse argv
 * itself. */
static const char *s_command(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0)
            return i + 1 < argc ? argv[i + 1] : NULL;
        if (arg[0] != '-' || strcmp(arg, "-") == 0)
            return arg;
        if (arg[1] != '-' || strchr(arg, '='))
            continue;
        for (size_t k = 0; k < sizeof s_opts / sizeof s_opts[0]; k++)
            if (s_opts[k].has_value && strcmp(s_opts[k].name, arg + 2) == 0)
                i++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *command = s_command(argc, argv);
    if (command && strcmp(command, "quality") == 0)
        return dm_dmctl_quality_main(argc, argv, DM_VERSION);
    static const dm_cli_command_t cmds[] = {
        {"validate", s_validate},     {"check", s_check},       {"register", s_register},
        {"ingest", s_ingest_cmd},     {"deregister", s_deregister}, {"products", s_products},
        {"quarantine", s_quarantine}, {"status", s_status},
        {"whoami", dm_cli_whoami},    {"keygen", dm_cli_keygen},  {"admins", dm_dmctl_admins},
        {"grant", dm_dmctl_grant},    {"revoke", dm_dmctl_revoke}, {"audit", dm_dmctl_audit},
        {"policy", dm_dmctl_policy},  {"quality", dm_dmctl_quality},
    };
    return dm_cli_main(P, DM_VERSION, argc, argv, s_opts, sizeof s_opts / sizeof s_opts[0], cmds,
                       sizeof cmds / sizeof cmds[0], s_usage);
}
