/* meshq_lineage.h: the lineage and search commands of meshq
 * (docs/catalog.md "Lineage" and "Search"). */
#ifndef DM_MESHQ_LINEAGE_H
#define DM_MESHQ_LINEAGE_H

#include "cli/cli.h"

/* The usage lines of lineage and search, for meshq --help. */
#define DM_MESHQ_HELP_LINEAGE \
            "  lineage DOMAIN/PRODUCT [--upstream|--downstream] [--depth N]\n" \
            "          [--format table|json|dot]\n" \
            "                                the mesh-wide lineage graph around a product\n" \
            "                                (both ways unless one is given; depth 1 to 64,\n" \
            "                                default 8), from the contracts' lineage.upstream:\n" \
            "                                each product's depth, health and \"upstream\n" \
            "                                degraded\" cause; an upstream no product matches\n" \
            "                                is named DANGLING; dot is Graphviz\n" \
            "  search WORDS... [--limit N]   products of the whole mesh ranked by where the\n" \
            "                                words match: name, then tags and domain, then\n" \
            "                                field names, then description and owner (up to\n" \
            "                                16 words, 256 bytes; N 1 to 100, default 20)\n" \
            "                                (meshq lineage --help, meshq search --help:\n" \
            "                                their options, formats and examples)\n"

/* meshq lineage DOMAIN/PRODUCT [--upstream|--downstream] [--depth N]
 * [--format table|json|dot]. Returns the exit status. */
int dm_meshq_lineage_walk(const dm_cli_args_t *a);
/* meshq search WORDS... [--limit N] [--json]. Returns the exit status. */
int dm_meshq_lineage_search(const dm_cli_args_t *a);
/* "meshq lineage --help", "meshq search --help" (or "meshq help lineage"):
 * parses argv against specs and prints that command's own usage (options,
 * formats, examples) to stdout; returns DM_EXIT_OK, DM_EXIT_USAGE when argv
 * does not parse (after saying why), or -1 when argv asks no such help. */
int dm_meshq_lineage_help(int argc, char **argv, const dm_cli_optspec_t *specs, size_t nspecs);

#endif
