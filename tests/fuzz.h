/*
 * fuzz.h — what a fuzz target gives fuzz_main.c, the corpus-replay main
 * that runs it as an ordinary test when libFuzzer is not in the build.
 *
 * A target defines LLVMFuzzerTestOneInput and, for fuzz_main.c, one
 * fuzz_target: which files of a directory are its seeds, how to mutate an
 * input (its mutations know its format), and optionally seeds of its own.
 * Everything random comes from fuzz_rnd(), a fixed-seed PRNG, so a run
 * tries the same inputs every time and a failure reproduces.
 */
#ifndef FLEETSIM_TESTS_FUZZ_H
#define FLEETSIM_TESTS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fuzz_target {
    const char *name; /* "fuzz-pe", in messages */
    /* Endings of the files a directory contributes (".sys"), NULL-ended;
     * NULL: every file. */
    const char *const *extensions;
    unsigned mutations; /* per seed */
    uint64_t rng_seed;
    /* Mutants may grow past their seed, to twice its size plus 256 bytes;
     * otherwise they stay within it. */
    bool grows;
    /* One mutant of buf[0..size) in place, at most cap bytes; its size. */
    size_t (*mutate)(uint8_t *buf, size_t size, size_t cap);
    /* Optional: seeds of the target's own (fuzz_add_seed), after the files. */
    void (*more_seeds)(void);
    /* Fail when the command line gave no seed file. */
    bool needs_files;
} fuzz_target;

/* Defined by each target. */
extern const fuzz_target fuzz_this;

/* The next number of the fixed-seed PRNG. */
uint64_t fuzz_rnd(void);

/* Run an input once and keep a copy of it to mutate. */
void fuzz_add_seed(const uint8_t *data, size_t size);

/*
 * A text mutant: byte flips, truncation, deleted spans, duplicated lines
 * and inserted tokens (a "" token inserts a NUL byte).
 */
size_t fuzz_mutate_text(uint8_t *buf, size_t size, size_t cap, const char *const *tokens,
                        size_t ntokens);

#endif
