/*
 * fuzz_main.c — runs a fuzz target without libFuzzer, as an ordinary test.
 *
 * First it replays every input named on the command line: a file, or a
 * directory whose files with the target's endings (fuzz_target.extensions)
 * are the seeds, in name order.  Then the target may add seeds of its own,
 * and a deterministic mutation pass runs each seed's mutants through the
 * target, from a fixed-seed PRNG so a failure reproduces.  Every fuzz
 * target links this file (fuzz.h says what a target provides); with
 * -Dfuzzer=libfuzzer (clang) libFuzzer supplies main instead.
 */
#ifndef FLEETSIM_LIBFUZZER

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define MAX_SEEDS 64

typedef struct seed {
    uint8_t *data;
    size_t size;
} seed;

static seed seeds[MAX_SEEDS];
static size_t nseeds;
static unsigned long long runs;
static uint64_t rng_state;

uint64_t fuzz_rnd(void)
{
    /* xorshift64*: fixed seed, so every run tries the same inputs. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void run(const uint8_t *data, size_t size)
{
    LLVMFuzzerTestOneInput(data, size);
    runs++;
}

void fuzz_add_seed(const uint8_t *data, size_t size)
{
    run(data, size);
    if (nseeds == MAX_SEEDS)
        return;
    uint8_t *copy = malloc(size + 1);
    if (!copy)
        return;
    memcpy(copy, data, size);
    seeds[nseeds++] = (seed){copy, size};
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

static int replay(const char *path)
{
    uint8_t *data;
    size_t size;
    if (read_file(path, &data, &size) != 0) {
        fprintf(stderr, "%s: cannot read %s\n", fuzz_this.name, path);
        return -1;
    }
    fuzz_add_seed(data, size);
    free(data);
    return 0;
}

static bool wanted(const char *name)
{
    if (!fuzz_this.extensions)
        return name[0] != '.';
    size_t len = strlen(name);
    for (const char *const *ext = fuzz_this.extensions; *ext; ext++) {
        size_t el = strlen(*ext);
        if (len > el && strcmp(name + len - el, *ext) == 0)
            return true;
    }
    return false;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "%s: cannot open %s\n", fuzz_this.name, dir);
        return -1;
    }
    /* Sorted names: the seed order, and so the mutations, are reproducible. */
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!wanted(e->d_name))
            continue;
        char **grown = realloc(names, (n + 1) * sizeof *names);
        if (!grown)
            break;
        names = grown;
        if ((names[n] = strdup(e->d_name)))
            n++;
    }
    closedir(d);
    if (n)
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

size_t fuzz_mutate_text(uint8_t *buf, size_t size, size_t cap, const char *const *tokens,
                        size_t ntokens)
{
    unsigned n = 1 + (unsigned)(fuzz_rnd() % 4);
    for (unsigned k = 0; k < n; k++) {
        switch (fuzz_rnd() % 6) {
        case 0: /* flip a byte */
            if (size)
                buf[fuzz_rnd() % size] ^= (uint8_t)(1 + fuzz_rnd() % 255);
            break;
        case 1: /* truncate */
            if (size)
                size = fuzz_rnd() % size;
            break;
        case 2:
        case 3: { /* insert a token */
            const char *t = tokens[fuzz_rnd() % ntokens];
            size_t tl = t[0] ? strlen(t) : 1, at = size ? fuzz_rnd() % (size + 1) : 0;
            if (size + tl <= cap) {
                memmove(buf + at + tl, buf + at, size - at);
                memcpy(buf + at, t, tl);
                size += tl;
            }
            break;
        }
        case 4: { /* delete a span */
            if (!size)
                break;
            size_t at = fuzz_rnd() % size, len = 1 + fuzz_rnd() % 16;
            if (at + len > size)
                len = size - at;
            memmove(buf + at, buf + at + len, size - at - len);
            size -= len;
            break;
        }
        default: { /* duplicate a line elsewhere */
            if (!size)
                break;
            size_t from = fuzz_rnd() % size, end = from;
            while (end < size && buf[end] != '\n')
                end++;
            size_t len = end - from + (end < size), to = fuzz_rnd() % (size + 1);
            uint8_t line[512];
            if (len && len <= sizeof line && size + len <= cap) {
                memcpy(line, buf + from, len);
                memmove(buf + to + len, buf + to, size - to);
                memcpy(buf + to, line, len);
                size += len;
            }
            break;
        }
        }
    }
    return size;
}

static void mutation_pass(void)
{
    for (size_t s = 0; s < nseeds; s++) {
        size_t cap = fuzz_this.grows ? seeds[s].size * 2 + 256 : seeds[s].size;
        uint8_t *buf = malloc(cap ? cap : 1);
        if (!buf)
            continue;
        for (unsigned i = 0; i < fuzz_this.mutations; i++) {
            memcpy(buf, seeds[s].data, seeds[s].size);
            run(buf, fuzz_this.mutate(buf, seeds[s].size, cap));
        }
        free(buf);
    }
}

int main(int argc, char **argv)
{
    int rc = 0;
    rng_state = fuzz_this.rng_seed;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "%s: cannot stat %s\n", fuzz_this.name, argv[i]);
            rc = 1;
        } else if (S_ISDIR(st.st_mode) ? replay_dir(argv[i]) != 0 : replay(argv[i]) != 0) {
            rc = 1;
        }
    }
    size_t replayed = (size_t)runs;
    if (fuzz_this.needs_files && replayed == 0) {
        fprintf(stderr, "%s: no seeds\n", fuzz_this.name);
        rc = 1;
    }
    if (fuzz_this.more_seeds)
        fuzz_this.more_seeds();

    mutation_pass();
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i].data);
    printf("%s: %llu inputs (%zu replayed, %zu seeds mutated)\n", fuzz_this.name, runs,
           replayed, nseeds);
    return rc;
}

#endif
