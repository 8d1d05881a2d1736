/* dmctl.h: what dmctl's command files share: the access commands
 * (dmctl_access.c), the governance commands (dmctl_policy.c) and the
 * helpers they both use to read governance files and ask a node for its
 * policies (dmctl_gov.c). */
#ifndef DM_DMCTL_H
#define DM_DMCTL_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/cli.h"
#include "contract/contract.h"
#include "policy/policy.h"

#define DM_DMCTL_FILE_MAX ((size_t)16 << 20) /* bytes of one governance or cases file */
#define DM_DMCTL_MAX_FILES 64                /* --policies files of one command */

/* ---- access (dmctl_access.c) ---- */

/* dmctl admins list | add KEY | remove KEY. Returns the exit status. */
int dm_dmctl_admins(const dm_cli_args_t *a);
/* dmctl grant|revoke DOMAIN/PRODUCT KEY|group:NAME. */
int dm_dmctl_grant(const dm_cli_args_t *a);
int dm_dmctl_revoke(const dm_cli_args_t *a);
/* dmctl audit [--since T] [--limit N] [--json]. */
int dm_dmctl_audit(const dm_cli_args_t *a);
/* Parses --since: RFC 3339 ("2026-12-01T05:00:00Z") or a duration ago
 * ("10m", "2h", "7d") counted back from now_ms. false when it is neither. */
bool dm_dmctl_since_parse(const char *s, int64_t now_ms, int64_t *ms_out);

/* ---- governance (dmctl_policy.c, dmctl_explain.c) ---- */

/* dmctl policy publish|rotate|show|test|explain. */
int dm_dmctl_policy(const dm_cli_args_t *a);
/* dmctl_quality.c: `dmctl quality`; returns Soda's exit codes (0 pass, 1
 * warn, 2 fail, 3 error; 4 when no report could be had). */
int dm_dmctl_quality(const dm_cli_args_t *a);
/* The whole of `dmctl ... quality ...` from argv: parses quality's own
 * options (usage errors exit 4), answers --help with quality's usage and
 * --version, then runs dm_dmctl_quality. */
int dm_dmctl_quality_main(int argc, char **argv, const char *version);
/* dmctl policy explain (dmctl_explain.c). */
int dm_dmctl_explain(const dm_cli_args_t *a);
/* The contract-rule part of dmctl validate: with a node given (--node,
 * --data or $MESH_NODE), checks the n contracts of list against the mesh's
 * contract rules, prints each broken rule and sets broken[i] for each
 * contract that broke one (broken has n entries, false on entry); appends
 * to note the line to print after the contracts' "ok" lines (which rules
 * were checked, or that none were and why). Returns DM_EXIT_OK,
 * DM_EXIT_FAIL (a rule broken) or DM_EXIT_USAGE (the node could not be
 * asked). */
int dm_dmctl_validate_rules(const dm_cli_args_t *a, dm_contract_t *const *list, size_t n,
                            bool *broken, dm_buf_t *note);

/* ---- governance files and the node's policies (dmctl_gov.c) ---- */

/* One document of a governance file: where its bytes are in the file. */
typedef struct {
    size_t off, len;
    unsigned line; /* 0-based line of its first byte */
} dm_dmctl_span_t;

/* The documents of one governance file, parsed. */
typedef struct {
    char *path;
    dm_buf_t text; /* the whole file */
    dm_dmctl_span_t *spans;
    dm_policy_doc_t **docs;
    size_t n;
} dm_dmctl_docs_t;

/* Whether the command line names a node (--node, --data or $MESH_NODE). */
bool dm_dmctl_node_given(const dm_cli_args_t *a);
/* Reads the regular file path whole into out (at most DM_DMCTL_FILE_MAX
 * bytes). Returns 0, or -1 after printing "dmctl: cannot read PATH: why". */
int dm_dmctl_read_file(const char *path, dm_buf_t *out);
/* Splits a YAML stream into its documents, skipping empty ones (a
 * comments-only stream, a trailing "---"). *spans (malloc'd, caller
 * frees) gets *n spans. Returns 0, or -1 after printing
 * "NAME:LINE:COL: error: ..." for YAML that does not parse. */
int dm_dmctl_yaml_split(const char *name, const char *buf, size_t len, dm_dmctl_span_t **spans,
                        size_t *n);
/* Reads path and parses every document of it (dm_policy_doc_parse;
 * diagnostics name the file's own lines). Returns DM_EXIT_OK, or after
 * printing every problem (out is then empty) DM_EXIT_USAGE (the file
 * cannot be read) or DM_EXIT_FAIL (it is not valid). Free with
 * dm_dmctl_docs_free. */
int dm_dmctl_docs_load(const char *path, dm_dmctl_docs_t *out);
void dm_dmctl_docs_free(dm_dmctl_docs_t *d);
/* The policy set of local files: paths[0..n), sealed, version 0. Returns
 * DM_EXIT_OK, or DM_EXIT_USAGE after printing why (a file that does not
 * parse, a tie between documents). */
int dm_dmctl_local_set(const char *const *paths, size_t n, dm_policy_set_t **out);
/* Asks the node for its governance state (PolicyGetReq). On DM_EXIT_OK
 * *rep is the caller's (dm__envelope__free_unpacked); otherwise the
 * status after printing why. */
int dm_dmctl_policy_get(const dm_cli_args_t *a, Dm__Envelope **rep);
/* The sealed set of the node's published documents in r (version
 * r->policy_version). Returns DM_EXIT_OK or DM_EXIT_USAGE after printing
 * why (a document the node sent that does not parse here). */
int dm_dmctl_node_set(const Dm__PolicyGetRep *r, dm_policy_set_t **out);
/* The policy files of a command: --policies FILE and, when it is given,
 * the positional arguments from a->pos[first] on. Returns the count (0:
 * no --policies) or -1 after printing a usage error. */
int dm_dmctl_policy_files(const dm_cli_args_t *a, int first, const char **paths, size_t cap);
/* The set a command judges with: from the --policies files (with the
 * positional arguments from a->pos[first] on), else the node's published
 * documents when a node is given or need_node, else NULL (no governance:
 * owner rules only). The exit status after printing why. */
int dm_dmctl_policy_set(const dm_cli_args_t *a, int first, bool need_node, dm_policy_set_t **out);
/* The highest governance version the node reports in r (its chain-wide
 * max_version or its set's policy_version): a publication, withdrawal or
 * rotation takes the next, so versions rise across rotations. */
uint64_t dm_dmctl_gov_last_version(const Dm__PolicyGetRep *r);
/* Builds the entry (origin: id, key, version, now, payload; a tombstone
 * when payload is NULL), signs it with id and sends it as a
 * PolicyPublishReq. The exit status; on DM_EXIT_OK *rep is the caller's. */
int dm_dmctl_policy_sign_send(const dm_cli_args_t *a, const dm_identity_t *id, const char *key,
                              uint64_t version, const void *payload, size_t len,
                              Dm__Envelope **rep);
/* Loads the caller's identity and the node's governance state (PolicyGetReq)
 * and checks that the caller is the governance key. The exit status; on
 * DM_EXIT_OK *id and *rep are the caller's. */
int dm_dmctl_policy_as_governance(const dm_cli_args_t *a, const char *cmd, dm_identity_t **id,
                                  Dm__Envelope **rep);
/* dmctl policy withdraw NAME: signs and sends the tombstone of
 * gov/doc/NAME as the governance identity. */
int dm_dmctl_policy_withdraw(const dm_cli_args_t *a);

#endif
