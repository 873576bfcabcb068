/*
 * fuzz_scenario.c — fuzz target of the scenario parser and the inventory
 * CSV reader.
 *
 * An input is scenario YAML, optionally followed by a line "#csv" and the
 * text of the inventory it names.  Whatever the bytes, parsing must return
 * (no crash, no hang, no leak) with a message when it refuses; when it
 * accepts, what later code relies on must hold: shares in range, online
 * curves in [0, 1], and a fleet (shrunk to a few hundred endpoints) whose
 * every endpoint's attributes index the name tables.  Files are never read
 * (SCENARIO_NO_FILES): the CSV comes from the input.
 *
 * Without libFuzzer, fuzz_main.c replays the files and directories (*.yaml,
 * *.csv) named on the command line and the snippets of the unit test, then
 * runs a deterministic mutation pass over them with YAML- and CSV-minded
 * mutations: text edits and tokens that steer the parsers into corners.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_gen.h"
#include "fuzz.h"
#include "scenario.h"
#include "scenario_snippets.h"
#include "sim.h"

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

/* Tokens that steer YAML and CSV parsing into their corners. */
static const char *const tokens[] = {
    ":", ": ", "- ", "\n", "\n  ", "\n    ", "{", "}", "[", "]", ",", "%", "\"", "'", "#",
    "&a ", "*a", "!!str ", "? ", "|\n  ", ">-\n  ", "---\n", "...\n", "\t", "0x", "-",
    "99999999999999999999", "100%", "0%", "12h", "0", "+1h", "-1d", "2024-02-29T23:59:59Z",
    "default: ", "count: ", "zipf: ", "inventory: inv.csv", "#csv\n", "\r\n", "\xEF\xBB\xBF",
    "id,profile,sensor,region,tenant\n", "h,a,7.11,r1,t\n", "\"\"", "\\", "\xC3\x28", "\x00",
};

static size_t mutate(uint8_t *buf, size_t size, size_t cap)
{
    return fuzz_mutate_text(buf, size, cap, tokens, sizeof tokens / sizeof tokens[0]);
}

/* The unit test's snippets reach what the example scenarios do not. */
static void snippet_seeds(void)
{
    static const char *const snippets[] = {
        SNIP_BASE,
        SNIP_FULL,
        SNIP_HEAD SNIP_INVENTORY_FLEET SNIP_UPDATE "#csv\n" SNIP_CSV,
        SNIP_HEAD SNIP_INVENTORY_FLEET SNIP_UPDATE "#csv\n" SNIP_CSV_EXTRA,
        SNIP_HEAD SNIP_FLEET "  tenants: {count: 50, zipf: 1.1}\n" SNIP_UPDATE
        "known_bad: {at: +5h}\nconnectivity: {checkin: {interval: 10m, jitter: 1m}, "
        "boot_to_network: {median: 20s, p95: 2m}, boot_time: 45s}\n",
    };
    for (size_t i = 0; i < sizeof snippets / sizeof snippets[0]; i++)
        fuzz_add_seed((const uint8_t *)snippets[i], strlen(snippets[i]));
}

static const char *const extensions[] = {".yaml", ".csv", NULL};

const fuzz_target fuzz_this = {
    .name = "fuzz-scenario",
    .extensions = extensions,
    .mutations = 2000,
    .rng_seed = 0x2545f4914f6cdd1dull,
    .grows = true,
    .mutate = mutate,
    .more_seeds = snippet_seeds,
};

#endif
