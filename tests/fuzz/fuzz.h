/* fuzz.h: what the fuzz harnesses share. Each harness defines
 * LLVMFuzzerTestOneInput (one input, any bytes, never a running node) and
 * may define LLVMFuzzerInitialize. Built with -DDM_FUZZ=ON they link
 * libFuzzer (clang -fsanitize=fuzzer,address,undefined); in the normal
 * build replay.c drives the same function over the seed corpus and the
 * regression inputs (tests/fuzz/regressions/TARGET/), so a crash once
 * found stays fixed. */
#ifndef DM_FUZZ_H
#define DM_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message when an invariant of the code under test breaks:
 * a finding, like a sanitizer report. */
#define DM_FUZZ_CHECK(cond)                                                                    \
    do {                                                                                       \
        if (!(cond))                                                                           \
            dm_fuzz_fail(__FILE__, __LINE__, #cond);                                           \
    } while (0)

/* Calls a DM_NODISCARD function whose result a harness does not need
 * (gcc's warn_unused_result ignores a (void) cast). */
#define DM_FUZZ_IGNORE(call)                                                                   \
    do {                                                                                       \
        if (call) {                                                                            \
        }                                                                                      \
    } while (0)

_Noreturn void dm_fuzz_fail(const char *file, int line, const char *what);

#endif
