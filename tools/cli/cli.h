/* cli.h: what the client tools (dmctl, meshq, meshbench's lookup and
 * gossip) share: argument parsing with global options
 * anywhere on the line, choosing and reaching the node, output helpers. */
#ifndef DM_CLI_H
#define DM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/buf.h"
#include "base/err.h"
#include "transport/rpc.h"

#define DM_CLI_MAX_ARGS 256
#define DM_CLI_MAX_OPTS 32
#define DM_CLI_ENV_NODE "MESH_NODE"
#define DM_CLI_ENV_IDENTITY "MESH_IDENTITY"

/* The usage lines of the options that say which node and which identity
 * (dm_cli_connect, dm_cli_identity), for the clients' help texts. */
#define DM_CLI_HELP_CONNECT                                                                    \
    "  --node ADDRESS   the node (KEY@tcp://HOST:PORT, as in its DIR/node.addr);\n"          \
    "                   else the one --data names, else $MESH_NODE\n"                        \
    "  --data DIR       a node's data directory: the node at DIR/node.addr, and\n"           \
    "                   the node's own key DIR/identity.key (a domain admin) as\n"           \
    "                   your identity when you can read it and give neither\n"               \
    "                   --identity nor $MESH_IDENTITY\n"                                     \
    "  --identity FILE  act as this identity (else $MESH_IDENTITY, else --data's\n"          \
    "                   DIR/identity.key, else $XDG_CONFIG_HOME/datamesh/identity,\n"        \
    "                   made on first use)\n"

/* Exit codes shared by the tools. */
enum { DM_EXIT_OK = 0, DM_EXIT_FAIL = 1, DM_EXIT_USAGE = 2 };

typedef struct {
    const char *name; /* without "--" */
    bool has_value;
} dm_cli_optspec_t;

typedef struct {
    const char *program;
    const char *pos[DM_CLI_MAX_ARGS]; /* positional arguments, command first */
    int npos;
    const dm_cli_optspec_t *specs;
    size_t nspecs;
    const char *values[DM_CLI_MAX_OPTS]; /* per spec: value, or "" for a flag */
} dm_cli_args_t;

/* The options every client tool accepts, before or after the command
 * (node, data, json, timeout, help, version, identity). */
extern const dm_cli_optspec_t dm_cli_global_opts[];
extern const size_t dm_cli_nglobal_opts;

/* Parses argv against specs ("--name value", "--name=value", "--" ends
 * options, "-" is positional). On error prints "PROGRAM: ..." to stderr
 * naming the option and returns -1. */
int dm_cli_parse(const char *program, int argc, char **argv, const dm_cli_optspec_t *specs,
                 size_t nspecs, dm_cli_args_t *out);
/* The option's value ("" for a present flag) or NULL if absent. */
const char *dm_cli_get(const dm_cli_args_t *a, const char *name);

/* The identity a tool acts with, and where it lives:
 *   1. --identity FILE (must exist);
 *   2. $MESH_IDENTITY (must exist);
 *   3. with --data DIR, DIR/identity.key when this user can read it (the
 *      node's own key: a domain admin, so the quick start needs no setup);
 *   4. $XDG_CONFIG_HOME/datamesh/identity, or ~/.config/datamesh/identity
 *      without XDG_CONFIG_HOME, created (mode 0600) on first use.
 * *path gets the file used (static storage, valid until the next call).
 * On failure prints "PROGRAM: identity FILE: reason" and returns
 * DM_EXIT_USAGE. */
int dm_cli_identity(const dm_cli_args_t *a, dm_identity_t **out, const char **path);

/* The whoami and keygen commands, alike in dmctl and meshq: whoami prints
 * "key: HEX" and "file: PATH" (--json: {"key":..,"file":..}); with --node
 * it also asks that node how it sees the caller (WhoamiReq: the key it
 * believes, verified, admin, groups, domain; --json adds "node": {..}).
 * "keygen FILE" writes a new identity to FILE and prints the same two
 * lines; an existing FILE is refused with "PROGRAM: keygen: FILE exists;
 * choose another path or remove it" (DM_EXIT_FAIL). Return the exit
 * status. */
int dm_cli_whoami(const dm_cli_args_t *a);
int dm_cli_keygen(const dm_cli_args_t *a);

/* Resolves the node address from --node, --data DIR (DIR/node.addr) or
 * $MESH_NODE, in that order, and connects with the --timeout (seconds),
 * as the identity of dm_cli_identity. On failure prints the reason and
 * returns DM_EXIT_USAGE (2). */
int dm_cli_connect(const dm_cli_args_t *a, dm_rpc_client_t **out);
/* dm_cli_connect that also hands back the identity it connects as (*id,
 * the caller's to destroy; id NULL: not wanted) and the node's key from
 * its address (node_key NULL: not wanted), for signing a grant. */
int dm_cli_connect_id(const dm_cli_args_t *a, dm_rpc_client_t **out, dm_identity_t **id,
                      uint8_t node_key[DM_ID_PUBLIC_BYTES]);
/* The timeout in milliseconds from --timeout (default 10 s); -1 if the
 * value is invalid (after printing why). */
int dm_cli_timeout_ms(const dm_cli_args_t *a);
/* Option --NAME as a whole decimal number from lo to hi into *out (def
 * when absent). -1 after printing "PROGRAM: invalid --NAME 'V': expected
 * WHAT from LO to HI" (or "LO or more" when hi is UINT64_MAX; what: "a
 * number of bytes", "whole seconds", ...). */
int dm_cli_uint_opt(const dm_cli_args_t *a, const char *name, const char *what, uint64_t lo,
                    uint64_t hi, uint64_t def, uint64_t *out);

/* Connects as dm_cli_connect, sends req and waits for its reply. DM_EXIT_OK
 * when the reply's body is `expect` (*rep is the caller's to free with
 * dm__envelope__free_unpacked); otherwise prints why and returns
 * DM_EXIT_FAIL for a refusal by the node ("PROGRAM: what: message") or
 * DM_EXIT_USAGE for a connection problem or an unexpected reply. */
int dm_cli_request(const dm_cli_args_t *a, Dm__Envelope *req, Dm__Envelope__BodyCase expect,
                   const char *what, Dm__Envelope **rep);

#define DM_CLI_QUALIFIED_MAX 256 /* bytes of a DOMAIN/PRODUCT argument, NUL included */

/* A DOMAIN/PRODUCT argument, split: domain and product point into buf. */
typedef struct {
    char buf[DM_CLI_QUALIFIED_MAX];
    const char *domain, *product;
} dm_cli_qualified_t;

/* Splits arg, which must be DOMAIN/PRODUCT (both parts non-empty, one
 * slash), into *q. Returns 0, or -1 after printing "PROGRAM: 'ARG' is not
 * DOMAIN/PRODUCT (e.g. commerce/orders)" or, for an argument of
 * DM_CLI_QUALIFIED_MAX bytes or more, "PROGRAM: 'ARG...' is longer than a
 * DOMAIN/PRODUCT name can be". */
int dm_cli_qualified(const dm_cli_args_t *a, const char *arg, dm_cli_qualified_t *q);

/* The argument of a command that takes exactly one DOMAIN/PRODUCT
 * (a->pos[1]) into *q. Returns DM_EXIT_OK, or DM_EXIT_USAGE after printing
 * "PROGRAM: usage: USAGE" (wrong count) or dm_cli_qualified's message. */
int dm_cli_product_arg(const dm_cli_args_t *a, const char *usage, dm_cli_qualified_t *q);

/* Lists products: this node's (mesh false; table DOMAIN NAME VERSION
 * RECORDS QUARANTINED) or the whole mesh's from the node's catalog (mesh
 * true; table DOMAIN NAME VERSION OWNER ACCESS RECORDS, records known only
 * for the node's own); a last column NOTE, "UNCERTIFIED" for a product of
 * a domain no governance certificate vouches for, appears only when some
 * product has one. --json prints an array of objects with every field
 * (records and quarantined null where unknown; "uncertified" a boolean,
 * "readers" an array of strings). Returns the exit status. */
int dm_cli_products(const dm_cli_args_t *a, bool mesh);

/* A command of a tool. */
typedef struct {
    const char *name;
    int (*run)(const dm_cli_args_t *a);
} dm_cli_command_t;

/* The whole main() of a client tool: parses argv against specs, answers
 * --version and --help (usage(stdout)), runs the command named first, and
 * returns the exit status. version is printed after the program name. */
int dm_cli_main(const char *program, const char *version, int argc, char **argv,
                const dm_cli_optspec_t *specs, size_t nspecs, const dm_cli_command_t *commands,
                size_t ncommands, void (*usage)(FILE *f));

/* If rep carries an Error, prints "PROGRAM: what: message" and returns
 * true. */
bool dm_cli_print_error(const char *program, const char *what, const Dm__Envelope *rep);

/* Writes the first min(b->len, max) bytes of b as lowercase hex and a NUL
 * into out, which holds 2 * max + 1 chars. Cannot fail. */
void dm_cli_hex(char *out, const ProtobufCBinaryData *b, size_t max);

/* Sorts v[0..n) ascending (latencies, for percentiles). Cannot fail. */
void dm_cli_sort_i64(int64_t *v, size_t n);

/* Appends s as a JSON string; invalid UTF-8 bytes become U+FFFD so the
 * output is always valid JSON. */
void dm_cli_json_string(dm_buf_t *out, const char *s, size_t len);
/* Appends v as a JSON number, or null when it is infinite or NaN (JSON
 * has neither; a text beside it says which). */
void dm_cli_json_number(dm_buf_t *out, double v);

/* Appends s for a terminal: valid UTF-8 as is, control bytes as \xNN and
 * C1 controls (U+0080..U+009F, which terminals may take as CSI) as \uNNNN,
 * invalid bytes as U+FFFD, so one record stays one line. */
void dm_cli_text(dm_buf_t *out, const char *s, size_t len);

/* A text table: add rows of ncols cells, then print with aligned columns
 * (numeric columns right-aligned per the mask bit). */
typedef struct {
    size_t ncols;
    unsigned right_mask;
    char **cells; /* row-major, owned */
    size_t nrows, cap;
} dm_cli_table_t;

void dm_cli_table_init(dm_cli_table_t *t, size_t ncols, unsigned right_mask);
void dm_cli_table_add(dm_cli_table_t *t, const char *const *cells);
void dm_cli_table_print(const dm_cli_table_t *t, FILE *f);
void dm_cli_table_free(dm_cli_table_t *t);

#endif
