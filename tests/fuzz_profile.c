/*
 * fuzz_profile.c — fuzz target of the profile parser, with its own
 * corpus-replay main.
 *
 * An input is profile YAML.  Whatever the bytes, sim__profile_parse must
 * return (no crash, no hang, no leak) with a message when it refuses; when
 * it accepts, what the emulator relies on must hold: strings terminated
 * within their buffers, counts within their caps, ranges canonical and
 * ordered, and an event stream drawn from it sorted and within bounds.
 *
 * Without libFuzzer, main replays the *.yaml files and directories named on
 * the command line (the test passes sim/profiles/), then runs a
 * deterministic mutation pass over them (fixed-seed PRNG: a failure
 * reproduces).  fuzz_main.c is the PE target's: its mutations know PE
 * headers, so this target has its own, YAML-minded ones.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "profile-internal.h"
#include "sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const sim_profile *p)
{
    if (!memchr(p->name, 0, sizeof p->name) || !memchr(p->display, 0, sizeof p->display) ||
        !memchr(p->csd, 0, sizeof p->csd) || !memchr(p->source, 0, sizeof p->source) ||
        p->nabsent > SIM_PROFILE_MAX_ABSENT || p->noffsets > SIM_PROFILE_MAX_OFFSETS ||
        p->nevents > SIM__PROFILE_MAX_EVENTS || p->image_lo >= p->image_hi ||
        p->pool_lo >= p->pool_hi || p->image_lo < 0xFFFF800000000000ull ||
        p->kaslr_slots < 1 || p->kaslr_slots > 64 || (p->nevents && !p->events))
        abort();
    for (size_t i = 0; i < p->nabsent; i++)
        if (!p->absent[i] || sim_profile_has_export(p, p->absent[i]))
            abort();
    static sim_event out[SIM__PROFILE_MAX_EVENTS];
    size_t n = sim_profile_events(p, 7, out, SIM__PROFILE_MAX_EVENTS);
    if (n != p->nevents)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned)out[i].kind >= SIM_EVENT_COUNT || (i && out[i - 1].at_ms > out[i].at_ms))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sim_profile *p = NULL;
    char err[512];
    err[0] = 'x';
    int rc = sim__profile_parse((const char *)data, size, "fuzz.yaml", &p, err, sizeof err);
    if (rc != 0) {
        if (p != NULL || memchr(err, 0, sizeof err) == NULL || err[0] == '\0')
            abort();
        return 0;
    }
    check(p);
    sim_profile_destroy(p);
    return 0;
}

#ifndef FLEETSIM_LIBFUZZER

#define MUTATIONS_PER_SEED 1500
#define MAX_SEEDS 64

typedef struct seed {
    char *data;
    size_t size;
} seed;

static seed seeds[MAX_SEEDS];
static size_t nseeds;
static unsigned long long runs;
static uint64_t rng_state = 0x6a09e667f3bcc909ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void run(const char *data, size_t size)
{
    LLVMFuzzerTestOneInput((const uint8_t *)data, size);
    runs++;
}

static int replay_file(const char *path)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz-profile: cannot read %s\n", path);
        return -1;
    }
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    run(buf, n);
    if (nseeds < MAX_SEEDS && (seeds[nseeds].data = malloc(n + 1))) {
        memcpy(seeds[nseeds].data, buf, n);
        seeds[nseeds++].size = n;
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
    if (!d) {
        fprintf(stderr, "fuzz-profile: cannot open %s\n", dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
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
        if (replay_file(path) != 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Tokens that steer YAML and the profile schema into their corners. */
static const char *const tokens[] = {
    ":", ": ", "- ", "\n", "\n  ", "{", "}", "[", "]", ",", "\"", "'", "#", "&a ", "*a",
    "!!str ", "? ", "|\n  ", "---\n", "...\n", "\t", "0x", "-", "0xFFFFFFFFFFFFFFFF",
    "99999999999999999999", "4.2s", "1.5ms", "2m", "0", "65", "true", "no", "~",
    "kind: ", "at: ", "pid: ", "name: ", "events:\n  - ", "offsets: {", "absent_exports: [",
    "layout: ", "segment-heap", "process-exit", "\r\n", "\xEF\xBB\xBF", "\xC3\x28", "\\",
};

static size_t mutate(char *buf, size_t size, size_t cap)
{
    unsigned n = 1 + (unsigned)(rnd() % 4);
    for (unsigned k = 0; k < n; k++) {
        switch (rnd() % 6) {
        case 0: /* flip a byte */
            if (size)
                buf[rnd() % size] ^= (char)(1 + rnd() % 255);
            break;
        case 1: /* truncate */
            if (size)
                size = rnd() % size;
            break;
        case 2:
        case 3: { /* insert a token */
            const char *t = tokens[rnd() % (sizeof tokens / sizeof tokens[0])];
            size_t tl = strlen(t), at = size ? rnd() % (size + 1) : 0;
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
            size_t at = rnd() % size, len = 1 + rnd() % 16;
            if (at + len > size)
                len = size - at;
            memmove(buf + at, buf + at + len, size - at - len);
            size -= len;
            break;
        }
        default: { /* duplicate a line elsewhere */
            if (!size)
                break;
            size_t from = rnd() % size, end = from;
            while (end < size && buf[end] != '\n')
                end++;
            size_t len = end - from + (end < size), to = rnd() % (size + 1);
            char line[512];
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

int main(int argc, char **argv)
{
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz-profile: cannot stat %s\n", argv[i]);
            rc = 1;
        } else if (S_ISDIR(st.st_mode) ? replay_dir(argv[i]) != 0 : replay_file(argv[i]) != 0) {
            rc = 1;
        }
    }
    size_t replayed = (size_t)runs;
    for (size_t s = 0; s < nseeds; s++) {
        size_t cap = seeds[s].size * 2 + 256;
        char *buf = malloc(cap);
        if (!buf)
            continue;
        for (int i = 0; i < MUTATIONS_PER_SEED; i++) {
            memcpy(buf, seeds[s].data, seeds[s].size);
            run(buf, mutate(buf, seeds[s].size, cap));
        }
        free(buf);
    }
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i].data);
    printf("fuzz-profile: %llu inputs (%zu files replayed, %zu seeds mutated)\n", runs,
           replayed, nseeds);
    if (replayed == 0) {
        fprintf(stderr, "fuzz-profile: no seeds\n");
        rc = 1;
    }
    return rc;
}

#endif
