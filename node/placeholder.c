/* placeholder.c: keeps dm_node linkable until modules land. */
typedef int dm_node_placeholder;
