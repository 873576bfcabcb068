/*
 * fuzz_content.c — fuzz target of the binary channel-file decoder and the
 * validator behind `fleetsim content validate` (images/sensor/content.c).
 *
 * Every input is decoded; what decodes is validated against every sensor
 * version and re-encoded, and the encoding must reproduce the input byte
 * for byte (the format has one spelling per content).
 *
 * Without libFuzzer (the default build) main() replays the seeds given on
 * the command line (files, or directories of *.sys channel files: the test
 * passes the build's compiled content) and then mutates each seed a few
 * thousand times from a fixed-seed PRNG.  Half the mutants get their size
 * and checksum fixed up afterwards, so the decoder's checks past the
 * checksum see as much traffic as the early ones.
 */
#include <assert.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "content.h"
#include "sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned versions[] = {10, 11, 16};
    content_file *file = NULL;
    content_report report;
    uint8_t *again = NULL;
    size_t nagain = 0;
    char err[512];

    if (content_decode(data, size, &file, err, sizeof err) != 0) {
        assert(file == NULL && err[0] != '\0');
        return 0;
    }
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        int rc = content_validate(file, versions[i], &report);
        assert(rc == 0);
        assert(report.nfindings <= CONTENT_MAX_FINDINGS);
        assert(report.nfindings == CONTENT_MAX_FINDINGS ||
               report.nfindings == report.errors + report.warnings);
        (void)rc;
    }
    if (content_encode(file, &again, &nagain, err, sizeof err) == 0) {
        if (nagain != size || memcmp(again, data, size) != 0) {
            fprintf(stderr, "fuzz-content: re-encoding differs from the input\n");
            abort();
        }
        sim_free(again);
    }
    content_file_destroy(file);
    return 0;
}

#ifndef FLEETSIM_LIBFUZZER

#define MUTATIONS_PER_SEED 4000
#define MAX_SEEDS 32

static struct {
    uint8_t *data;
    size_t size;
} seeds[MAX_SEEDS];
static size_t nseeds;
static unsigned long long runs;
static uint64_t rng_state = 0x2024071904090527ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static int replay(const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 ||
        fseek(fp, 0, SEEK_SET) != 0) {
        fprintf(stderr, "fuzz-content: cannot read %s\n", path);
        if (fp)
            fclose(fp);
        return -1;
    }
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        fclose(fp);
        free(buf);
        return -1;
    }
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    runs++;
    if (nseeds < MAX_SEEDS) {
        seeds[nseeds].data = buf;
        seeds[nseeds++].size = (size_t)n;
    } else {
        free(buf);
    }
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    char *names[MAX_SEEDS];
    size_t n = 0;
    struct dirent *e;
    int rc = 0;

    if (d == NULL) {
        fprintf(stderr, "fuzz-content: cannot open %s\n", dir);
        return -1;
    }
    while ((e = readdir(d)) != NULL && n < MAX_SEEDS) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".sys") == 0)
            if ((names[n] = strdup(e->d_name)) != NULL)
                n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_name);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (replay(path) != 0)
            rc = -1;
        free(names[i]);
    }
    return rc;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Offsets worth hitting: the header, instance headers, criterion heads. */
static size_t interesting_offset(size_t size)
{
    size_t instance = CHANNEL_HEADER_SIZE + (rnd() % 8) * channel_instance_size(21);

    switch (rnd() % 5) {
    case 0:
        return rnd() % CHANNEL_HEADER_SIZE;
    case 1:
        return instance + rnd() % CHANNEL_INSTANCE_HEADER;
    case 2:
        return instance + CHANNEL_INSTANCE_HEADER + (rnd() % 21) * CHANNEL_CRITERION_SIZE +
               rnd() % 3;
    default:
        return size ? rnd() % size : 0;
    }
}

static void mutate(uint8_t *buf, size_t *size, size_t cap)
{
    static const uint32_t values[] = {0, 1, 2, 3, 4, 20, 21, 32, 33, 46, 47, 0x7f, 0x80, 0xff,
                                      0xffff, 0x10000, 0x7fffffff, 0xffffffffu};
    unsigned n = 1 + (unsigned)(rnd() % 3);

    for (unsigned k = 0; k < n && *size > 0; k++) {
        size_t at = interesting_offset(*size);
        switch (rnd() % 4) {
        case 0:
            buf[rnd() % *size] ^= (uint8_t)(1 + rnd() % 255);
            break;
        case 1:
            *size = rnd() % *size;
            break;
        case 2: {
            uint32_t v = values[rnd() % (sizeof values / sizeof values[0])];
            unsigned width = 1u << (rnd() % 3);
            for (unsigned i = 0; i < width && at + i < *size; i++)
                buf[at + i] = (uint8_t)(v >> (8 * i));
            break;
        }
        default:
            if (at < *size)
                buf[at] = (uint8_t)rnd();
            break;
        }
    }
    /* Half the time, make the header agree with the mutant. */
    if (*size >= CHANNEL_HEADER_SIZE && *size <= cap && rnd() % 2) {
        put32(buf + 20, (uint32_t)*size);
        put32(buf + 24, channel_checksum(buf + CHANNEL_HEADER_SIZE,
                                         (uint32_t)(*size - CHANNEL_HEADER_SIZE)));
    }
}

int main(int argc, char **argv)
{
    int rc = 0;
    size_t replayed;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz-content: cannot stat %s\n", argv[i]);
            rc = 1;
        } else if (S_ISDIR(st.st_mode) ? replay_dir(argv[i]) != 0 : replay(argv[i]) != 0) {
            rc = 1;
        }
    }
    replayed = (size_t)runs;
    if (nseeds == 0) {
        fprintf(stderr, "fuzz-content: no seeds\n");
        return 1;
    }
    for (size_t s = 0; s < nseeds; s++) {
        uint8_t *buf = malloc(seeds[s].size + 1);
        if (buf == NULL)
            return 1;
        for (int i = 0; i < MUTATIONS_PER_SEED; i++) {
            size_t size = seeds[s].size;
            memcpy(buf, seeds[s].data, size);
            mutate(buf, &size, seeds[s].size);
            LLVMFuzzerTestOneInput(buf, size);
            runs++;
        }
        free(buf);
        free(seeds[s].data);
    }
    printf("fuzz-content: %llu inputs (%zu replayed, %zu seeds mutated)\n", runs, replayed,
           nseeds);
    return rc;
}

#endif
