/* fuzz_common.c: helpers linked into every harness. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

_Noreturn void dm_fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", file, line, what);
    abort();
}
