/* cli.c: argument parsing, the identity a tool acts with (whoami,
 * keygen), node selection, requests and output helpers (tables, JSON,
 * terminal-safe text, hex) for the client tools. */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/text.h"
#include "base/array.h"
#include "identity/identity.h"
#include "base/lines.h"
#include "transport/envelope.h"
#include <inttypes.h>


const dm_cli_optspec_t dm_cli_global_opts[] = {
    {"node", true},  {"data", true},    {"json", false},    {"timeout", true},
    {"help", false}, {"version", false}, {"identity", true},
};
const size_t dm_cli_nglobal_opts = sizeof dm_cli_global_opts / sizeof dm_cli_global_opts[0];

int dm_cli_parse(const char *program, int argc, char **argv, const dm_cli_optspec_t *specs,
                 size_t nspecs, dm_cli_args_t *out)
{
    memset(out, 0, sizeof *out);
    out->program = program;
    out->specs = specs;
    out->nspecs = nspecs < DM_CLI_MAX_OPTS ? nspecs : DM_CLI_MAX_OPTS;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (only_pos || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (out->npos == DM_CLI_MAX_ARGS) {
                fprintf(stderr, "%s: too many arguments (at most %d)\n", program, DM_CLI_MAX_ARGS);
                return -1;
            }
            out->pos[out->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (arg[1] != '-') {
            if (strcmp(arg, "-h") == 0) {
                arg = "--help";
            } else {
                fprintf(stderr, "%s: unknown option '%s' (options are long: --name; %s --help)\n",
                        program, arg, program);
                return -1;
            }
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        size_t k = 0;
        while (k < out->nspecs && !(strlen(specs[k].name) == nlen &&
                                    strncmp(specs[k].name, name, nlen) == 0))
            k++;
        if (k == out->nspecs) {
            fprintf(stderr, "%s: unknown option '--%.*s' (%s --help lists the options)\n",
                    program, (int)nlen, name, program);
            return -1;
        }
        if (!specs[k].has_value) {
            if (eq) {
                fprintf(stderr, "%s: option '--%s' takes no value\n", program, specs[k].name);
                return -1;
            }
            out->values[k] = "";
        } else if (eq) {
            out->values[k] = eq + 1;
        } else if (i + 1 < argc) {
            out->values[k] = argv[++i];
        } else {
            fprintf(stderr, "%s: option '--%s' needs a value\n", program, specs[k].name);
            return -1;
        }
    }
    return 0;
}

const char *dm_cli_get(const dm_cli_args_t *a, const char *name)
{
    for (size_t k = 0; k < a->nspecs; k++)
        if (strcmp(a->specs[k].name, name) == 0)
            return a->values[k];
    return NULL;
}

int dm_cli_timeout_ms(const dm_cli_args_t *a)
{
    const char *t = dm_cli_get(a, "timeout");
    if (!t)
        return DM_RPC_DEFAULT_TIMEOUT_MS;
    char *end;
    errno = 0;
    double s = strtod(t, &end);
    if (end == t || *end || errno || !isfinite(s) || s <= 0 || s > 86400) {
        fprintf(stderr, "%s: invalid --timeout '%s': expected seconds, more than 0 and at "
                        "most 86400 (e.g. 10 or 0.5)\n",
                a->program, t);
        return -1;
    }
    int ms = (int)(s * 1000.0);
    return ms > 0 ? ms : 1;
}

int dm_cli_uint_opt(const dm_cli_args_t *a, const char *name, const char *what, uint64_t lo,
                    uint64_t hi, uint64_t def, uint64_t *out)
{
    const char *v = dm_cli_get(a, name);
    *out = def;
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!isdigit((unsigned char)v[0]) || *end || errno || n < lo || n > hi) {
        if (hi == UINT64_MAX)
            fprintf(stderr, "%s: invalid --%s '%s': expected %s, %" PRIu64 " or more\n",
                    a->program, name, v, what, lo);
        else
            fprintf(stderr, "%s: invalid --%s '%s': expected %s from %" PRIu64 " to %" PRIu64 "\n",
                    a->program, name, v, what, lo, hi);
        return -1;
    }
    *out = (uint64_t)n;
    return 0;
}

/* Reads DIR/node.addr into addr (trailing whitespace trimmed). */
static int s_read_addr(const char *program, const char *dir, char *addr, size_t cap)
{
    char path[DM_PATH_MAX];
    snprintf(path, sizeof path, "%s/node.addr", dir);
    dm_buf_t why = DM_BUF_INIT;
    dm_err rc = dm_lines_read_small(path, addr, cap, &why);
    if (rc == DM_ERR_NOTFOUND)
        fprintf(stderr, "%s: no node address in %s: is meshd running with --data %s?\n",
                program, path, dir);
    else if (rc != DM_OK)
        fprintf(stderr, "%s: %s\n", program, why.data);
    dm_buf_free(&why);
    return rc == DM_OK ? 0 : -1;
}

int dm_cli_qualified(const dm_cli_args_t *a, const char *arg, dm_cli_qualified_t *q)
{
    q->domain = q->product = NULL;
    if (snprintf(q->buf, sizeof q->buf, "%s", arg) >= (int)sizeof q->buf) {
        fprintf(stderr, "%s: '%.40s...' is longer than a DOMAIN/PRODUCT name can be\n",
                a->program, arg);
        return -1;
    }
    char *slash = strchr(q->buf, '/');
    if (!slash || slash == q->buf || !slash[1] || strchr(slash + 1, '/')) {
        fprintf(stderr, "%s: '%s' is not DOMAIN/PRODUCT (e.g. commerce/orders)\n", a->program,
                arg);
        return -1;
    }
    *slash = 0;
    q->domain = q->buf;
    q->product = slash + 1;
    return 0;
}

int dm_cli_product_arg(const dm_cli_args_t *a, const char *usage, dm_cli_qualified_t *q)
{
    if (a->npos != 2) {
        fprintf(stderr, "%s: usage: %s\n", a->program, usage);
        return DM_EXIT_USAGE;
    }
    return dm_cli_qualified(a, a->pos[1], q) == 0 ? DM_EXIT_OK : DM_EXIT_USAGE;
}

/* ---- identity ---- */

#define S_ID_DIR "datamesh"
#define S_ID_FILE "identity"

static char s_id_path[DM_PATH_MAX]; /* dm_cli_identity's *path */

/* The default identity file into s_id_path: $XDG_CONFIG_HOME/datamesh/
 * identity (the XDG rule: only an absolute XDG_CONFIG_HOME counts), else
 * $HOME/.config/datamesh/identity. Returns 0, or -1 after printing why. */
static int s_default_identity(const char *program)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(s_id_path, sizeof s_id_path, "%s/%s/%s", xdg, S_ID_DIR, S_ID_FILE);
    else if (home && *home)
        n = snprintf(s_id_path, sizeof s_id_path, "%s/.config/%s/%s", home, S_ID_DIR,
                     S_ID_FILE);
    else {
        fprintf(stderr, "%s: no identity: neither XDG_CONFIG_HOME nor HOME is set; give "
                        "--identity FILE or set %s\n",
                program, DM_CLI_ENV_IDENTITY);
        return -1;
    }
    if (n >= (int)sizeof s_id_path) {
        fprintf(stderr, "%s: no identity: the default path under %s is longer than %d bytes; "
                        "give --identity FILE\n",
                program, xdg && xdg[0] == '/' ? "XDG_CONFIG_HOME" : "HOME", DM_PATH_MAX - 1);
        return -1;
    }
    return 0;
}

int dm_cli_identity(const dm_cli_args_t *a, dm_identity_t **out, const char **path)
{
    *out = NULL;
    *path = NULL;
    const char *opt = dm_cli_get(a, "identity");
    const char *env = getenv(DM_CLI_ENV_IDENTITY);
    const char *data = dm_cli_get(a, "data");
    const char *from;
    bool create = false;
    if (opt) {
        snprintf(s_id_path, sizeof s_id_path, "%s", opt);
        from = "--identity";
    } else if (env && *env) {
        snprintf(s_id_path, sizeof s_id_path, "%s", env);
        from = "$" DM_CLI_ENV_IDENTITY;
    } else if (data && snprintf(s_id_path, sizeof s_id_path, "%s/%s", data, DM_ID_KEY_FILE) <
                           (int)sizeof s_id_path &&
               access(s_id_path, R_OK) == 0) {
        from = "--data"; /* the node's own key: its domain's first admin */
    } else {
        if (s_default_identity(a->program) != 0)
            return DM_EXIT_USAGE;
        from = "the default place";
        create = true;
    }
    dm_buf_t why = DM_BUF_INIT;
    if (dm_identity_load_file(s_id_path, create, out, &why) != DM_OK) {
        fprintf(stderr, "%s: %s (the identity from %s)\n", a->program, why.data, from);
        dm_buf_free(&why);
        return DM_EXIT_USAGE;
    }
    *path = s_id_path;
    return DM_EXIT_OK;
}

/* Prints key and file (text: two lines; --json: an object, extended with
 * the node's view when node is not NULL). */
static void s_print_identity(const dm_cli_args_t *a, const char *hex, const char *file,
                             const Dm__WhoamiRep *node)
{
    dm_buf_t o = DM_BUF_INIT;
    char nkey[2 * DM_ID_PUBLIC_BYTES + 1] = "";
    if (node)
        dm_cli_hex(nkey, &node->key, DM_ID_PUBLIC_BYTES);
    if (dm_cli_get(a, "json")) {
        dm_buf_printf(&o, "{\"key\":\"%s\",\"file\":", hex);
        dm_cli_json_string(&o, file, strlen(file));
        if (node) {
            dm_buf_printf(&o, ",\"node\":{\"key\":\"%s\",\"verified\":%s,\"admin\":%s,"
                              "\"domain\":",
                          nkey, node->verified ? "true" : "false",
                          node->admin ? "true" : "false");
            dm_cli_json_string(&o, node->domain, strlen(node->domain));
            dm_buf_puts(&o, ",\"groups\":");
            dm_cli_json_string(&o, node->groups, strlen(node->groups));
            dm_buf_putc(&o, '}');
        }
        dm_buf_puts(&o, "}\n");
    } else {
        dm_buf_printf(&o, "key: %s\nfile: ", hex);
        dm_cli_text(&o, file, strlen(file));
        dm_buf_putc(&o, '\n');
        if (node) {
            dm_buf_printf(&o, "node sees: %s%s\nverified: %s\nadmin of: ",
                          node->verified ? "" : "curve:", nkey, node->verified ? "yes" : "no");
            dm_cli_text(&o, node->domain, strlen(node->domain));
            dm_buf_puts(&o, node->admin ? " (yes)\ngroups: " : " (no)\ngroups: ");
            dm_cli_text(&o, node->groups, strlen(node->groups));
            dm_buf_putc(&o, '\n');
        }
    }
    fputs(o.data, stdout);
    dm_buf_free(&o);
}

int dm_cli_whoami(const dm_cli_args_t *a)
{
    if (a->npos != 1) {
        fprintf(stderr, "%s: usage: %s whoami [--identity FILE] [--node ADDRESS] [--json]\n",
                a->program, a->program);
        return DM_EXIT_USAGE;
    }
    dm_identity_t *id = NULL;
    const char *path = NULL;
    int status = dm_cli_identity(a, &id, &path);
    if (status != DM_EXIT_OK)
        return status;
    char hex[DM_ID_HEX_BYTES];
    dm_identity_hex(id, hex);
    dm_identity_destroy(&id);
    Dm__Envelope *rep = NULL;
    if (dm_cli_get(a, "node")) { /* how that node sees this identity */
        Dm__Envelope req = DM__ENVELOPE__INIT;
        Dm__WhoamiReq body = DM__WHOAMI_REQ__INIT;
        dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_WHOAMI_REQ, &body);
        status = dm_cli_request(a, &req, DM__ENVELOPE__BODY_WHOAMI_REP, "whoami", &rep);
        if (status != DM_EXIT_OK)
            return status;
    }
    s_print_identity(a, hex, path, rep ? rep->whoami_rep : NULL);
    if (rep)
        dm__envelope__free_unpacked(rep, NULL);
    return DM_EXIT_OK;
}

int dm_cli_keygen(const dm_cli_args_t *a)
{
    if (a->npos != 2) {
        fprintf(stderr, "%s: usage: %s keygen FILE\n", a->program, a->program);
        return DM_EXIT_USAGE;
    }
    const char *file = a->pos[1];
    dm_identity_t *id = NULL;
    dm_buf_t why = DM_BUF_INIT;
    dm_err err = dm_identity_keygen(file, &id, &why);
    if (err == DM_ERR_EXISTS) {
        fprintf(stderr, "%s: keygen: %s exists; choose another path or remove it\n", a->program,
                file);
    } else if (err != DM_OK) {
        fprintf(stderr, "%s: keygen: %s\n", a->program, why.data ? why.data : dm_err_str(err));
    }
    dm_buf_free(&why);
    if (err != DM_OK)
        return err == DM_ERR_EXISTS ? DM_EXIT_FAIL : DM_EXIT_USAGE;
    char hex[DM_ID_HEX_BYTES];
    dm_identity_hex(id, hex);
    dm_identity_destroy(&id);
    s_print_identity(a, hex, file, NULL);
    return DM_EXIT_OK;
}

int dm_cli_connect(const dm_cli_args_t *a, dm_rpc_client_t **out)
{
    return dm_cli_connect_id(a, out, NULL, NULL);
}

int dm_cli_connect_id(const dm_cli_args_t *a, dm_rpc_client_t **out, dm_identity_t **id_out,
                      uint8_t node_key[DM_ID_PUBLIC_BYTES])
{
    *out = NULL;
    if (id_out)
        *id_out = NULL;
    char addr[DM_ADDRESS_MAX];
    const char *node = dm_cli_get(a, "node");
    const char *data = dm_cli_get(a, "data");
    const char *env = getenv(DM_CLI_ENV_NODE);
    if (node) {
        snprintf(addr, sizeof addr, "%s", node);
    } else if (data) {
        if (s_read_addr(a->program, data, addr, sizeof addr) != 0)
            return DM_EXIT_USAGE;
    } else if (env && *env) {
        snprintf(addr, sizeof addr, "%s", env);
    } else {
        fprintf(stderr, "%s: which node? give --node ADDRESS, --data DIR (a node's data "
                        "directory) or set %s\n",
                a->program, DM_CLI_ENV_NODE);
        return DM_EXIT_USAGE;
    }
    int timeout = dm_cli_timeout_ms(a);
    if (timeout < 0)
        return DM_EXIT_USAGE;
    dm_identity_t *id = NULL;
    const char *path = NULL;
    int status = dm_cli_identity(a, &id, &path);
    if (status != DM_EXIT_OK)
        return status;
    dm_buf_t why = DM_BUF_INIT;
    char endpoint[DM_ID_ENDPOINT_MAX];
    dm_err err = DM_OK;
    if (node_key)
        err = dm_identity_address_parse(addr, node_key, endpoint, sizeof endpoint, &why);
    if (err == DM_OK)
        err = dm_rpc_client_new_as(addr, timeout, id, out, &why);
    if (err == DM_OK && id_out)
        *id_out = id;
    else
        dm_identity_destroy(&id);
    if (err != DM_OK) {
        fprintf(stderr, "%s: %s\n", a->program, why.data);
        dm_buf_free(&why);
        return DM_EXIT_USAGE;
    }
    return DM_EXIT_OK;
}

int dm_cli_request(const dm_cli_args_t *a, Dm__Envelope *req, Dm__Envelope__BodyCase expect,
                   const char *what, Dm__Envelope **rep)
{
    *rep = NULL;
    dm_rpc_client_t *client = NULL;
    int status = dm_cli_connect(a, &client);
    if (status != DM_EXIT_OK)
        return status;
    dm_buf_t rpc_why = DM_BUF_INIT;
    if (dm_rpc_client_call(client, req, rep, &rpc_why) != DM_OK) {
        fprintf(stderr, "%s: %s\n", a->program, rpc_why.data);
        dm_buf_free(&rpc_why);
        status = DM_EXIT_USAGE;
    } else if (dm_cli_print_error(a->program, what, *rep)) {
        status = DM_EXIT_FAIL;
    } else if ((*rep)->body_case != expect) {
        fprintf(stderr, "%s: %s: unexpected reply from the node\n", a->program, what);
        status = DM_EXIT_USAGE;
    }
    if (status != DM_EXIT_OK && *rep) {
        dm__envelope__free_unpacked(*rep, NULL);
        *rep = NULL;
    }
    dm_rpc_client_destroy(&client);
    return status;
}

/* Appends the comma-separated list csv as a JSON array of strings (empty
 * items skipped). */
static void s_json_list(dm_buf_t *o, const char *csv)
{
    dm_buf_putc(o, '[');
    bool first = true;
    for (const char *p = csv; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > 0) {
            if (!first)
                dm_buf_putc(o, ',');
            dm_cli_json_string(o, p, len);
            first = false;
        }
        p += len + (comma ? 1 : 0);
    }
    dm_buf_putc(o, ']');
}

int dm_cli_products(const dm_cli_args_t *a, bool mesh)
{
    Dm__Envelope req = DM__ENVELOPE__INIT;
    Dm__ProductsReq body = DM__PRODUCTS_REQ__INIT;
    body.mesh = mesh;
    dm_envelope_init(&req, 0, DM__ENVELOPE__BODY_PRODUCTS_REQ, &body);
    Dm__Envelope *rep = NULL;
    int status = dm_cli_request(a, &req, DM__ENVELOPE__BODY_PRODUCTS_REP, "products", &rep);
    if (status != DM_EXIT_OK)
        return status;
    const Dm__ProductsRep *pr = rep->products_rep;
    if (dm_cli_get(a, "json")) {
        dm_buf_t o = DM_BUF_INIT;
        dm_buf_putc(&o, '[');
        for (size_t i = 0; i < pr->n_products; i++) {
            const Dm__ProductInfo *p = pr->products[i];
            const char *keys[] = {"domain", "name", "version", "owner", "contact", "access"};
            const char *vals[] = {p->domain, p->name, p->version, p->owner_team,
                                  p->owner_contact, p->access};
            dm_buf_puts(&o, i ? ",{" : "{");
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
                dm_buf_printf(&o, "%s\"%s\":", k ? "," : "", keys[k]);
                dm_cli_json_string(&o, vals[k], strlen(vals[k]));
            }
            if (p->origin.len == DM_ID_PUBLIC_BYTES) {
                char node[2 * DM_ID_PUBLIC_BYTES + 1];
                dm_cli_hex(node, &p->origin, DM_ID_PUBLIC_BYTES);
                dm_buf_printf(&o, ",\"node\":\"%s\"", node);
            }
            if (p->remote)
                dm_buf_puts(&o, ",\"records\":null,\"quarantined\":null");
            else
                dm_buf_printf(&o, ",\"records\":%" PRIu64 ",\"quarantined\":%" PRIu64,
                              p->records, p->quarantined);
            dm_buf_printf(&o, ",\"uncertified\":%s,\"readers\":",
                          p->uncertified ? "true" : "false");
            s_json_list(&o, p->readers);
            if (mesh) { /* the owner's health entry; null: unknown */
                dm_buf_puts(&o, ",\"health\":");
                if (p->health[0])
                    dm_cli_json_string(&o, p->health, strlen(p->health));
                else
                    dm_buf_puts(&o, "null");
                dm_buf_puts(&o, ",\"health_cause\":");
                dm_cli_json_string(&o, p->health_cause, strlen(p->health_cause));
            }
            dm_buf_putc(&o, '}');
        }
        dm_buf_puts(&o, "]\n");
        fputs(o.data, stdout);
        dm_buf_free(&o);
    } else {
        /* A NOTE column only when a product needs one, so the common
         * listing (no governance key) keeps its shape. */
        bool notes = false;
        for (size_t i = 0; i < pr->n_products; i++)
            notes = notes || pr->products[i]->uncertified;
        size_t ncols = (mesh ? 7 : 5) + (notes ? 1 : 0);
        dm_cli_table_t t;
        if (mesh) {
            dm_cli_table_init(&t, ncols, 1u << 5);
            const char *head[] = {"DOMAIN", "NAME",    "VERSION", "OWNER",
                                  "ACCESS", "RECORDS", "HEALTH",  "NOTE"};
            dm_cli_table_add(&t, head);
        } else {
            dm_cli_table_init(&t, ncols, (1u << 3) | (1u << 4));
            const char *head[] = {"DOMAIN", "NAME", "VERSION", "RECORDS", "QUARANTINED", "NOTE"};
            dm_cli_table_add(&t, head);
        }
        for (size_t i = 0; i < pr->n_products; i++) {
            const Dm__ProductInfo *p = pr->products[i];
            char rec[32], q[32];
            if (p->remote)
                snprintf(rec, sizeof rec, "-"); /* another node's: not known here */
            else
                snprintf(rec, sizeof rec, "%" PRIu64, p->records);
            snprintf(q, sizeof q, "%" PRIu64, p->quarantined);
            const char *note = p->uncertified ? "UNCERTIFIED" : "";
            const char *mrow[] = {p->domain, p->name, p->version,
                                  p->owner_team, p->access, rec,
                                  p->health[0] ? p->health : "-", note};
            const char *lrow[] = {p->domain, p->name, p->version, rec, q, note};
            dm_cli_table_add(&t, mesh ? mrow : lrow);
        }
        dm_cli_table_print(&t, stdout);
        dm_cli_table_free(&t);
        for (size_t i = 0; mesh && i < pr->n_products; i++) { /* why, under the table */
            const Dm__ProductInfo *p = pr->products[i];
            if (!p->health_cause[0])
                continue;
            dm_buf_t line = DM_BUF_INIT; /* the cause quotes an owner's record: made safe */
            dm_cli_text(&line, p->health_cause, strlen(p->health_cause));
            printf("%s.%s: %s\n", p->domain, p->name, line.data);
            dm_buf_free(&line);
        }
    }
    dm__envelope__free_unpacked(rep, NULL);
    return DM_EXIT_OK;
}

int dm_cli_main(const char *program, const char *version, int argc, char **argv,
                const dm_cli_optspec_t *specs, size_t nspecs, const dm_cli_command_t *commands,
                size_t ncommands, void (*usage)(FILE *f))
{
    dm_cli_args_t a;
    if (dm_cli_parse(program, argc, argv, specs, nspecs, &a) != 0)
        return DM_EXIT_USAGE;
    if (dm_cli_get(&a, "version")) {
        printf("%s %s\n", program, version);
        return DM_EXIT_OK;
    }
    if (dm_cli_get(&a, "help") || (a.npos > 0 && strcmp(a.pos[0], "help") == 0)) {
        usage(stdout);
        return DM_EXIT_OK;
    }
    if (a.npos == 0) {
        usage(stderr);
        return DM_EXIT_USAGE;
    }
    for (size_t i = 0; i < ncommands; i++)
        if (strcmp(a.pos[0], commands[i].name) == 0)
            return commands[i].run(&a);
    fprintf(stderr, "%s: unknown command '%s' (", program, a.pos[0]);
    for (size_t i = 0; i < ncommands; i++)
        fprintf(stderr, "%s%s", i ? ", " : "", commands[i].name);
    fprintf(stderr, "; %s --help)\n", program);
    return DM_EXIT_USAGE;
}

bool dm_cli_print_error(const char *program, const char *what, const Dm__Envelope *rep)
{
    if (rep->body_case != DM__ENVELOPE__BODY_ERROR)
        return false;
    fprintf(stderr, "%s: %s: %s\n", program, what,
            rep->error && rep->error->message ? rep->error->message : "error");
    return true;
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void dm_cli_sort_i64(int64_t *v, size_t n) { qsort(v, n, sizeof *v, s_cmp_i64); }

void dm_cli_hex(char *out, const ProtobufCBinaryData *b, size_t max)
{
    out[0] = 0;
    for (size_t k = 0; k < b->len && k < max; k++)
        snprintf(out + 2 * k, 3, "%02x", b->data[k]);
}

void dm_cli_json_number(dm_buf_t *out, double v)
{
    if (isfinite(v))
        dm_buf_printf(out, "%.17g", v);
    else
        dm_buf_puts(out, "null");
}

void dm_cli_json_string(dm_buf_t *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = 0, i = 0;
    dm_buf_putc(out, '"');
    while (i < len) {
        size_t l = dm_text_utf8_len(p + i, len - i);
        bool plain = l > 1 || (l == 1 && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' &&
                               p[i] != 0x7f);
        if (plain) {
            i += l;
            continue;
        }
        dm_buf_append(out, s + start, i - start);
        if (l == 0) {
            dm_buf_puts(out, "\\ufffd");
        } else {
            /* Escape one ASCII character, reusing the shared escaper. */
            dm_buf_t one = DM_BUF_INIT;
            dm_buf_json_string(&one, s + i, 1);
            dm_buf_append(out, one.data + 1, one.len - 2);
            dm_buf_free(&one);
        }
        i += l ? l : 1;
        start = i;
    }
    dm_buf_append(out, s + start, len - start);
    dm_buf_putc(out, '"');
}

void dm_cli_text(dm_buf_t *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t l = dm_text_utf8_len(p + i, len - i);
        if (l == 0) {
            dm_buf_puts(out, "\xef\xbf\xbd"); /* U+FFFD */
            i++;
        } else if (l == 1 && (p[i] < 0x20 || p[i] == 0x7f)) {
            dm_buf_printf(out, "\\x%02x", p[i]);
            i++;
        } else if (l == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0) { /* C1: U+0080..U+009F */
            dm_buf_printf(out, "\\u%04x", p[i + 1]);
            i += 2;
        } else {
            dm_buf_append(out, s + i, l);
            i += l;
        }
    }
}

void dm_cli_table_init(dm_cli_table_t *t, size_t ncols, unsigned right_mask)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->right_mask = right_mask;
}

void dm_cli_table_add(dm_cli_table_t *t, const char *const *cells)
{
    if (!dm_array_reserve(&t->cells, &t->cap, t->nrows + 1, t->ncols * sizeof *t->cells, 16)) {
        fputs("fatal: out of memory\n", stderr);
        abort();
    }
    for (size_t c = 0; c < t->ncols; c++)
        t->cells[t->nrows * t->ncols + c] = strdup(cells[c] ? cells[c] : "");
    t->nrows++;
}

void dm_cli_table_print(const dm_cli_table_t *t, FILE *f)
{
    size_t width[DM_CLI_MAX_OPTS] = {0};
    size_t ncols = t->ncols < DM_CLI_MAX_OPTS ? t->ncols : DM_CLI_MAX_OPTS;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < ncols; c++) {
            size_t w = strlen(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            bool last = c + 1 == ncols;
            if (t->right_mask & (1u << c))
                fprintf(f, "%*s%s", (int)width[c], cell, last ? "" : "  ");
            else if (last)
                fputs(cell, f);
            else
                fprintf(f, "%-*s  ", (int)width[c], cell);
        }
        fputc('\n', f);
    }
}

void dm_cli_table_free(dm_cli_table_t *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}
