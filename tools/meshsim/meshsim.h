/* meshsim.h: the simulator's subcommands beside membership. */
#ifndef DM_MESHSIM_H
#define DM_MESHSIM_H

/* meshsim catalog: catalog anti-entropy on virtual time (meshsim_catalog.c). */
int dm_meshsim_catalog_main(int argc, char **argv);

#endif
