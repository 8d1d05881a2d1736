/* placeholder.c: keeps dm_storage linkable until store.c lands. */
typedef int dm_storage_placeholder;
