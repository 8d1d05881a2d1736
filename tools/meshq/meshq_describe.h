/* meshq_describe.h: the describe command of meshq. */
#ifndef DM_MESHQ_DESCRIBE_H
#define DM_MESHQ_DESCRIBE_H

#include "cli/cli.h"

/* meshq describe DOMAIN/PRODUCT [--json]. Returns the exit status. */
int dm_meshq_describe_run(const dm_cli_args_t *a);

#endif
