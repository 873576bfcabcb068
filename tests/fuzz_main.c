/*
 * fuzz_main.c — runs the fuzz target without libFuzzer, as an ordinary test.
 *
 * First it replays every input named on the command line (a file, or a
 * directory whose *.sys files are the seeds — the test passes the build's
 * images directory of real mingw-built drivers).  Then a deterministic
 * mutation pass: for each seed and a forged driver (pe_forge.c), a few
 * thousand copies with byte flips, truncations and overwrites of header
 * fields, from a fixed-seed PRNG so a failure reproduces.  With
 * -Dfuzzer=libfuzzer (clang) libFuzzer supplies main instead.
 */
#ifndef FLEETSIM_LIBFUZZER

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pe_forge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUTATIONS_PER_SEED 3000
#define MAX_SEEDS 64

typedef struct seed {
    uint8_t *data;
    size_t size;
} seed;

static seed seeds[MAX_SEEDS];
static size_t nseeds;
static unsigned long long runs;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    /* xorshift64*: fixed seed, so every run tries the same inputs. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static int read_file(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *n = realloc(buf, cap);
            if (!n) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = n;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        if (got == 0)
            break;
        len += got;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return -1;
    }
    *data = buf;
    *size = len;
    return 0;
}

static void add_seed(uint8_t *data, size_t size)
{
    if (nseeds < MAX_SEEDS)
        seeds[nseeds++] = (seed){data, size};
    else
        free(data);
}

static int replay(const char *path)
{
    uint8_t *data;
    size_t size;
    if (read_file(path, &data, &size) != 0) {
        fprintf(stderr, "fuzz-pe: cannot read %s\n", path);
        return -1;
    }
    LLVMFuzzerTestOneInput(data, size);
    runs++;
    add_seed(data, size);
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz-pe: cannot open %s\n", dir);
        return -1;
    }
    /* Sorted names: the seed order, and so the mutations, are reproducible. */
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".sys") != 0)
            continue;
        char **grown = realloc(names, (n + 1) * sizeof *names);
        if (!grown)
            break;
        names = grown;
        if ((names[n] = strdup(e->d_name)))
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_name);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (replay(path) != 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Offsets worth overwriting: header fields, directories, the section table. */
static size_t interesting_offset(const uint8_t *data, size_t size)
{
    size_t lfanew = size >= 0x40 ? (size_t)(data[0x3c] | data[0x3d] << 8) : 0;
    switch (rnd() % 6) {
    case 0:
        return 0x3c;
    case 1: /* file header */
        return lfanew + 4 + rnd() % 20;
    case 2: /* optional header and directories */
        return lfanew + 24 + rnd() % 240;
    case 3: /* section table */
        return lfanew + 24 + 240 + rnd() % (40 * 8);
    default:
        return size ? rnd() % size : 0;
    }
}

static const uint32_t interesting_values[] = {
    0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x1000, 0x7fff, 0x8000, 0xffff, 0x10000,
    0x7fffffff, 0x80000000u, 0xfffffff0u, 0xffffffffu,
};

static void mutate(uint8_t *buf, size_t *size, size_t cap)
{
    unsigned n = 1 + (unsigned)(rnd() % 4);
    for (unsigned k = 0; k < n && *size > 0; k++) {
        switch (rnd() % 5) {
        case 0: /* flip a byte anywhere */
            buf[rnd() % *size] ^= (uint8_t)(1 + rnd() % 255);
            break;
        case 1: /* truncate */
            *size = rnd() % *size;
            break;
        case 2: { /* overwrite a header field with an edge value */
            size_t at = interesting_offset(buf, *size);
            uint32_t v = interesting_values[rnd() % (sizeof interesting_values /
                                                     sizeof interesting_values[0])];
            unsigned width = 1u << (rnd() % 3);
            for (unsigned i = 0; i < width && at + i < *size; i++)
                buf[at + i] = (uint8_t)(v >> (8 * i));
            break;
        }
        case 3: { /* random value at a header field */
            size_t at = interesting_offset(buf, *size);
            if (at < *size)
                buf[at] = (uint8_t)rnd();
            break;
        }
        default: { /* copy a block over another (duplicated tables) */
            size_t from = rnd() % *size, to = rnd() % *size, len = 1 + rnd() % 64;
            if (from + len <= *size && to + len <= *size && to + len <= cap)
                memmove(buf + to, buf + from, len);
            break;
        }
        }
    }
}

static void mutation_pass(void)
{
    for (size_t s = 0; s < nseeds; s++) {
        uint8_t *buf = malloc(seeds[s].size ? seeds[s].size : 1);
        if (!buf)
            continue;
        for (int i = 0; i < MUTATIONS_PER_SEED; i++) {
            size_t size = seeds[s].size;
            memcpy(buf, seeds[s].data, size);
            mutate(buf, &size, seeds[s].size);
            LLVMFuzzerTestOneInput(buf, size);
            runs++;
        }
        free(buf);
    }
}

int main(int argc, char **argv)
{
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz-pe: cannot stat %s\n", argv[i]);
            rc = 1;
        } else if (S_ISDIR(st.st_mode) ? replay_dir(argv[i]) != 0 : replay(argv[i]) != 0) {
            rc = 1;
        }
    }
    size_t replayed = (size_t)runs;

    pf_image spec;
    pf_init_driver(&spec);
    pf_layout layout;
    uint8_t *forged = pf_build(&spec, &layout);
    LLVMFuzzerTestOneInput(forged, layout.size);
    runs++;
    add_seed(forged, layout.size);

    mutation_pass();
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i].data);
    printf("fuzz-pe: %llu inputs (%zu replayed, %zu seeds mutated)\n", runs, replayed, nseeds);
    return rc;
}

#endif
