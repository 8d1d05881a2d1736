/* cli.c: placeholder until the CLI lands. */
typedef int dm_cli_placeholder;
