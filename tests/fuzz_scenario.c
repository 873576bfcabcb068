/*
 * fuzz_scenario.c — fuzz target of the scenario parser and the inventory
 * CSV reader, with its own corpus-replay main.
 *
 * An input is scenario YAML, optionally followed by a line "#csv" and the
 * text of the inventory it names.  Whatever the bytes, parsing must return
 * (no crash, no hang, no leak) with a message when it refuses; when it
 * accepts, what later code relies on must hold: shares in range, online
 * curves in [0, 1], and a fleet (shrunk to a few hundred endpoints) whose
 * every endpoint's attributes index the name tables.  Files are never read
 * (SCENARIO_NO_FILES): the CSV comes from the input.
 *
 * Without libFuzzer, main replays the files and directories (*.yaml, *.csv)
 * named on the command line and the snippets of the unit test, then runs a
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

#include "fleet_gen.h"
#include "scenario.h"
#include "scenario_snippets.h"
#include "sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fleet(scenario *s)
{
    for (int a = 0; a < SCENARIO_ATTR_COUNT; a++)
        for (size_t i = 0; i < s->attrs[a].count; i++)
            if (!(s->attrs[a].items[i].share >= 0 && s->attrs[a].items[i].share <= 1.0) ||
                !s->attrs[a].items[i].name)
                abort();
    for (uint32_t r = 0; r < s->attrs[SCENARIO_ATTR_REGION].count; r++)
        for (int h = 0; h < 24; h++) {
            double v = scenario_online_share(s, r, (int64_t)h * 3600000);
            if (!(v >= 0 && v <= 1))
                abort();
        }
    if (!s->inventory && s->fleet_size > 300)
        s->fleet_size = 300; /* the fleet's shape, not its size, is under test */
    fleet_gen *gen;
    char err[256];
    if (fleet_gen_create(s, &gen, err, sizeof err) != 0)
        return;
    for (uint64_t i = 0; i < fleet_gen_size(gen); i++) {
        fleet_endpoint e;
        fleet_gen_endpoint(gen, i, &e);
        if (e.id != i || e.profile >= s->attrs[SCENARIO_ATTR_PROFILE].count ||
            e.sensor >= s->attrs[SCENARIO_ATTR_SENSOR].count ||
            e.region >= s->attrs[SCENARIO_ATTR_REGION].count ||
            e.tenant >= s->attrs[SCENARIO_ATTR_TENANT].count)
            abort();
    }
    fleet_gen_destroy(gen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    size_t ylen = size;
    const char *csv = NULL;
    size_t clen = 0;
    for (size_t i = 0; i + 5 <= size; i++)
        if ((i == 0 || data[i - 1] == '\n') && memcmp(data + i, "#csv\n", 5) == 0) {
            ylen = i;
            csv = text + i + 5;
            clen = size - i - 5;
            break;
        }
    scenario *s = NULL;
    char err[512];
    err[0] = 'x';
    int rc = scenario_parse(text, ylen, "fuzz.yaml", SCENARIO_NO_FILES, &s, err, sizeof err);
    if (rc != 0) {
        if (s != NULL || memchr(err, 0, sizeof err) == NULL || err[0] == '\0')
            abort();
        return 0;
    }
    if (s->inventory && csv) {
        rc = scenario_load_inventory(s, csv, clen, err, sizeof err);
        if (rc != 0 && (s->inventory_loaded || memchr(err, 0, sizeof err) == NULL))
            abort();
    }
    check_fleet(s);
    scenario_override(s, "seed", "0x1234", err, sizeof err);
    scenario_override(s, "fleet-size", "17", err, sizeof err);
    check_fleet(s);
    scenario_destroy(s);
    return 0;
}

#ifndef FLEETSIM_LIBFUZZER

#define MUTATIONS_PER_SEED 2000
#define MAX_SEEDS 64

typedef struct seed {
    char *data;
    size_t size;
} seed;

static seed seeds[MAX_SEEDS];
static size_t nseeds;
static unsigned long long runs;
static uint64_t rng_state = 0x2545f4914f6cdd1dull;

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

static void add_seed(const char *data, size_t size)
{
    if (nseeds == MAX_SEEDS)
        return;
    char *copy = malloc(size + 1);
    if (!copy)
        return;
    memcpy(copy, data, size);
    seeds[nseeds++] = (seed){copy, size};
}

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz-scenario: cannot read %s\n", path);
        return -1;
    }
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    run(buf, n);
    add_seed(buf, n);
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
        fprintf(stderr, "fuzz-scenario: cannot open %s\n", dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || (strcmp(e->d_name + len - 5, ".yaml") != 0 &&
                        strcmp(e->d_name + len - 4, ".csv") != 0))
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
        if (replay_file(path) != 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Tokens that steer YAML and CSV parsing into their corners. */
static const char *const tokens[] = {
    ":", ": ", "- ", "\n", "\n  ", "\n    ", "{", "}", "[", "]", ",", "%", "\"", "'", "#",
    "&a ", "*a", "!!str ", "? ", "|\n  ", ">-\n  ", "---\n", "...\n", "\t", "0x", "-",
    "99999999999999999999", "100%", "0%", "12h", "0", "+1h", "-1d", "2024-02-29T23:59:59Z",
    "default: ", "count: ", "zipf: ", "inventory: inv.csv", "#csv\n", "\r\n", "\xEF\xBB\xBF",
    "id,profile,sensor,region,tenant\n", "h,a,7.11,r1,t\n", "\"\"", "\\", "\xC3\x28", "\x00",
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
            size_t tl = t[0] ? strlen(t) : 1, at = size ? rnd() % (size + 1) : 0;
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
            fprintf(stderr, "fuzz-scenario: cannot stat %s\n", argv[i]);
            rc = 1;
        } else if (S_ISDIR(st.st_mode) ? replay_dir(argv[i]) != 0 : replay_file(argv[i]) != 0) {
            rc = 1;
        }
    }
    static const char *const snippets[] = {
        SNIP_BASE,
        SNIP_FULL,
        SNIP_HEAD SNIP_INVENTORY_FLEET SNIP_UPDATE "#csv\n" SNIP_CSV,
        SNIP_HEAD SNIP_FLEET "  tenants: {count: 50, zipf: 1.1}\n" SNIP_UPDATE
        "known_bad: {at: +5h}\nconnectivity: {checkin: {interval: 10m, jitter: 1m}, "
        "boot_to_network: {median: 20s, p95: 2m}, boot_time: 45s}\n",
    };
    size_t replayed = (size_t)runs;
    for (size_t i = 0; i < sizeof snippets / sizeof snippets[0]; i++) {
        run(snippets[i], strlen(snippets[i]));
        add_seed(snippets[i], strlen(snippets[i]));
    }
    for (size_t s = 0; s < nseeds; s++) {
        size_t cap = seeds[s].size * 2 + 256;
        char *buf = malloc(cap);
        if (!buf)
            continue;
        for (int i = 0; i < MUTATIONS_PER_SEED; i++) {
            memcpy(buf, seeds[s].data, seeds[s].size);
            size_t size = mutate(buf, seeds[s].size, cap);
            run(buf, size);
        }
        free(buf);
    }
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i].data);
    printf("fuzz-scenario: %llu inputs (%zu files replayed, %zu seeds mutated)\n", runs,
           replayed, nseeds);
    return rc;
}

#endif
