/* meshbench.h: what meshbench's subcommand files share. */
#ifndef DM_MESHBENCH_H
#define DM_MESHBENCH_H

#define MB_EXIT_OK 0
#define MB_EXIT_IO 1
#define MB_EXIT_USAGE 2

/* meshbench lookup: point-lookup latency through the client library. */
int dm_meshbench_lookup(int argc, char **argv);
/* meshbench gossip: a mesh of real meshd processes, membership figures. */
int dm_meshbench_gossip(int argc, char **argv);

#endif
