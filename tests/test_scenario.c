/*
 * test_scenario.c — scenario files and fleet generation.
 *
 * Good scenarios parse to the right values (the example and the CF291
 * scenario in scenarios/, and the snippets in scenario_snippets.h); each
 * class of error names the right line:column and says what is wrong; the
 * inventory CSV, content resolution and command-line overrides; and the
 * fleet: deterministic for a seed, shards equal to slices of the whole,
 * cohort sizes exact.  Every allocation of a parse and of a generation is
 * made to fail in turn (under ASan, a leak fails the test too).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fleet_gen.h"
#include "scenario.h"
#include "scenario_snippets.h"
#include "sim.h"

#define MS_HOUR 3600000ll
#ifndef SOURCE_ROOT
#define SOURCE_ROOT ".."
#endif

static char tmpdir[256];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fleetsim-scenario-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write text to tmpdir/name; returns the path (static buffer per call site). */
static void write_tmp(const char *name, const char *text, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static scenario *parse_ok(const char *text)
{
    scenario *s = NULL;
    char err[1024];
    int rc = scenario_parse(text, strlen(text), "snip.yaml", 0, &s, err, sizeof err);
    if (rc)
        fail_msg("unexpected error: %s", err);
    return s;
}

static const char *source_path(const char *rel, char *buf, size_t len)
{
    const char *root = getenv("FLEETSIM_SOURCE");
    snprintf(buf, len, "%s/%s", root ? root : SOURCE_ROOT, rel);
    return buf;
}

/* ---- values ------------------------------------------------------------ */

static void durations_are_strict(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t ms;
    } good[] = {{"0", 0}, {"12h", 12 * 3600000ull}, {"1h30m", 5400000}, {"90s", 90000},
                {"250ms", 250}, {"2d", 172800000}, {"1h09m", 4140000}, {"1m1s1ms", 61001}};
    static const char *const bad[] = {"", "12", "12 h", "h", "1.5h", "-1h", "1m1h", "1h1h",
                                      "12hours", "1H", " 1h", "1h ", "0s0", "ms",
                                      "99999999999999999999s"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t ms = 1;
        assert_true(scenario_parse_duration(good[i].text, &ms));
        assert_int_equal(ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ms;
        if (scenario_parse_duration(bad[i], &ms))
            fail_msg("accepted duration \"%s\"", bad[i]);
    }
}

static void times_are_strict(void **state)
{
    (void)state;
    int64_t t;
    assert_true(scenario_parse_time("2024-07-19T04:09:00Z", &t));
    assert_int_equal(t, 1721362140000ll);
    assert_true(scenario_parse_time("2024-07-19T04:09Z", &t));
    assert_int_equal(t, 1721362140000ll);
    assert_true(scenario_parse_time("2024-07-19T06:09:00.5+02:00", &t));
    assert_int_equal(t, 1721362140500ll);
    assert_true(scenario_parse_time("2024-02-29T00:00:00Z", &t));
    assert_true(scenario_parse_time("1970-01-01T00:00:00Z", &t));
    assert_int_equal(t, 0);
    static const char *const bad[] = {
        "2024-07-19", "2024-07-19 04:09:00Z", "2024-07-19T04:09:00", "2023-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z", "2024-07-32T00:00:00Z", "2024-07-19T24:00:00Z",
        "2024-07-19T04:60:00Z", "2024-07-19T04:09:60Z", "2024-07-19T04:09:00.1234Z",
        "2024-7-19T04:09:00Z", "2024-07-19T04:09:00Zjunk", "1600-01-01T00:00:00Z",
        "2024-07-19T04:09:00+2:00", "2024-07-19t04:09:00z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (scenario_parse_time(bad[i], &t))
            fail_msg("accepted time \"%s\"", bad[i]);
}

static void shares_are_strict(void **state)
{
    (void)state;
    double f;
    assert_true(scenario_parse_share("40%", &f));
    assert_true(f > 0.3999999 && f < 0.4000001);
    assert_true(scenario_parse_share("12.5%", &f));
    assert_true(f > 0.1249999 && f < 0.1250001);
    assert_true(scenario_parse_share("0%", &f));
    assert_true(scenario_parse_share("100%", &f));
    static const char *const bad[] = {"40", "0.4", "%", "100.01%", "-1%", "1e1%", ".5%",
                                      "5.%", "40 %", "40%%", "nan%", "inf%"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (scenario_parse_share(bad[i], &f))
            fail_msg("accepted share \"%s\"", bad[i]);
}

/* ---- good scenarios ---------------------------------------------------- */

static void example_scenario_parses(void **state)
{
    (void)state;
    char path[512], err[1024];
    scenario *s = NULL;
    int rc = scenario_load(source_path("scenarios/example.yaml", path, sizeof path), &s, err,
                           sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_string_equal(s->name, "example");
    assert_true(strstr(s->description, "01:00 UTC") != NULL);
    assert_int_equal(s->seed, 42);
    assert_int_equal(s->duration_ms, 12 * MS_HOUR);
    assert_int_equal(s->start_ms, 1721347200000ll);
    assert_int_equal(scenario_filetime(s, 0), 133658208000000000ull);
    assert_int_equal(s->fleet_size, 1000);
    assert_int_equal(s->attrs[SCENARIO_ATTR_PROFILE].count, 3);
    assert_string_equal(s->attrs[SCENARIO_ATTR_PROFILE].items[1].name, "win11-23h2-2024-07");
    assert_true(s->attrs[SCENARIO_ATTR_PROFILE].items[1].share > 0.2999 &&
                s->attrs[SCENARIO_ATTR_PROFILE].items[1].share < 0.3001);
    assert_string_equal(s->attrs[SCENARIO_ATTR_SENSOR].items[0].name, "7.11");
    assert_int_equal(s->attrs[SCENARIO_ATTR_REGION].count, 3);
    assert_int_equal(s->attrs[SCENARIO_ATTR_TENANT].count, 20);
    assert_int_equal(s->tenant_count, 20);
    assert_string_equal(s->attrs[SCENARIO_ATTR_TENANT].items[0].name, "tenant-01");
    /* Zipf: the first tenant is the largest, shares sum to one. */
    double sum = 0;
    for (size_t i = 0; i < 20; i++)
        sum += s->attrs[SCENARIO_ATTR_TENANT].items[i].share;
    assert_true(sum > 0.999999 && sum < 1.000001);
    assert_true(s->attrs[SCENARIO_ATTR_TENANT].items[0].share >
                s->attrs[SCENARIO_ATTR_TENANT].items[1].share);
    assert_null(s->inventory);
    assert_string_equal(s->install_dir, "\\SystemRoot\\System32\\drivers\\sensor");
    assert_int_equal(s->on_disk.count, 2);
    assert_string_equal(s->on_disk.items[0].file, "content/C-00000291-good.bin");
    assert_int_equal(s->on_disk.items[0].installed_at_ms, -12 * MS_HOUR);
    assert_int_equal(s->on_disk.items[1].installed_at_ms, 0);
    assert_int_equal(s->update_content.count, 1);
    assert_null(s->update_image);
    assert_int_equal(s->release_ms, 1 * MS_HOUR);
    assert_true(s->has_revert);
    assert_int_equal(s->revert_ms, 2 * MS_HOUR);
    assert_true(s->has_known_bad);
    assert_int_equal(s->known_bad_ms, 2 * MS_HOUR);
    assert_int_equal(s->checkin_interval_ms, 600000);
    assert_int_equal(s->checkin_jitter_ms, 120000);
    /* us-east has its curve: 20% at 04:xx UTC; the others the default 90%. */
    assert_true(scenario_online_share(s, 0, 4 * MS_HOUR + 60000) > 0.1999 &&
                scenario_online_share(s, 0, 4 * MS_HOUR + 60000) < 0.2001);
    assert_true(scenario_online_share(s, 0, 28 * MS_HOUR) < 0.2001);   /* next day */
    assert_true(scenario_online_share(s, 0, -20 * MS_HOUR) < 0.2001);  /* day before */
    assert_true(scenario_online_share(s, 1, 4 * MS_HOUR) > 0.8999);
    assert_int_equal(s->boot_to_network.kind, SCENARIO_DIST_LOGNORMAL);
    assert_int_equal(s->boot_to_network.a_ms, 40000);
    assert_int_equal(s->boot_to_network.b_ms, 180000);
    assert_true(s->has_boot_time);
    assert_int_equal(s->boot_time.kind, SCENARIO_DIST_UNIFORM);
    assert_true(s->has_repair);
    assert_int_equal(s->repair_after_ms, 6 * MS_HOUR);
    assert_true(s->repair_share > 0.5999 && s->repair_share < 0.6001);
    assert_int_equal(s->nplans, 1);
    assert_string_equal(s->plans[0].name, "all-at-once");
    assert_int_equal(s->plans[0].nrings, 0);
    scenario_destroy(s);
}

static void channel_file_291_parses(void **state)
{
    (void)state;
    char path[512], err[1024];
    scenario *s = NULL;
    int rc = scenario_load(source_path("scenarios/channel-file-291.yaml", path, sizeof path),
                           &s, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(s->fleet_size, 100000);
    assert_int_equal(s->release_ms, 69 * 60000ll);        /* 04:09 after 03:00 */
    assert_int_equal(s->revert_ms, (2 * 60 + 27) * 60000ll); /* 05:27 */
    assert_int_equal(s->known_bad_ms, s->revert_ms);
    /* At 04:09 UTC Asia-Pacific is at work and the Americas asleep. */
    const scenario_names *regions = &s->attrs[SCENARIO_ATTR_REGION];
    for (uint32_t r = 0; r < regions->count; r++) {
        double online = scenario_online_share(s, r, s->release_ms);
        if (strncmp(regions->items[r].name, "ap-", 3) == 0)
            assert_true(online >= 0.85);
        if (strncmp(regions->items[r].name, "us-", 3) == 0)
            assert_true(online <= 0.5);
    }
    /* Windows 10 about two thirds, servers about a tenth. */
    double win10 = 0, server = 0;
    const scenario_names *profiles = &s->attrs[SCENARIO_ATTR_PROFILE];
    for (size_t i = 0; i < profiles->count; i++) {
        if (strncmp(profiles->items[i].name, "win10", 5) == 0)
            win10 += profiles->items[i].share;
        if (strncmp(profiles->items[i].name, "server", 6) == 0)
            server += profiles->items[i].share;
    }
    assert_true(win10 > 0.6 && win10 < 0.7);
    assert_true(server > 0.08 && server < 0.12);
    scenario_destroy(s);
}

static void snippets_parse_with_defaults(void **state)
{
    (void)state;
    scenario *s = parse_ok(SNIP_BASE);
    assert_string_equal(s->description, "");
    assert_string_equal(s->install_dir, "");
    assert_int_equal(s->attrs[SCENARIO_ATTR_TENANT].count, 1);
    assert_string_equal(s->attrs[SCENARIO_ATTR_TENANT].items[0].name, "default");
    assert_false(s->has_revert);
    assert_false(s->has_known_bad);
    assert_false(s->has_repair);
    /* No rollout section: everyone at once. */
    assert_int_equal(s->nplans, 1);
    assert_string_equal(s->plans[0].name, "all-at-once");
    assert_int_equal(s->plans[0].nrings, 0);
    assert_int_equal(s->checkin_interval_ms, 600000);
    assert_int_equal(s->boot_to_network.kind, SCENARIO_DIST_FIXED);
    assert_int_equal(s->boot_to_network.a_ms, 30000);
    assert_true(scenario_online_share(s, 1, 0) > 0.9999);
    scenario_destroy(s);

    s = parse_ok(SNIP_FULL);
    assert_int_equal(s->on_disk.items[0].installed_at_ms, -24 * MS_HOUR);
    assert_int_equal(s->revert_ms, 5 * MS_HOUR + 27 * 60000);
    assert_int_equal(s->known_bad_ms, s->revert_ms);
    assert_true(scenario_online_share(s, 0, 7 * MS_HOUR) > 0.0699 &&
                scenario_online_share(s, 0, 7 * MS_HOUR) < 0.0701);
    assert_true(scenario_online_share(s, 1, 7 * MS_HOUR) > 0.7999);
    assert_int_equal(s->boot_to_network.kind, SCENARIO_DIST_UNIFORM);
    assert_int_equal(s->nplans, 2);
    const scenario_plan *plan = scenario_find_plan(s, "rings");
    assert_ptr_equal(plan, &s->plans[0]);
    assert_ptr_equal(scenario_find_plan(s, "all-at-once"), &s->plans[1]);
    assert_null(scenario_find_plan(s, "none"));
    assert_int_equal(plan->nrings, 3);
    assert_string_equal(plan->rings[0].selector, "region=r1");
    assert_int_equal(plan->rings[0].where_attr, SCENARIO_ATTR_REGION);
    assert_int_equal(plan->rings[0].where_index[0], 0);
    assert_int_equal(plan->rings[0].bake_ms, MS_HOUR);
    assert_string_equal(plan->rings[1].selector, "10%");
    assert_true(plan->rings[1].share > 0.0999 && plan->rings[1].share < 0.1001);
    assert_int_equal(plan->rings[2].bake_ms, 0);
    assert_int_equal(plan->gate.min_exposure, 5);
    assert_true(plan->gate.max_rate_upper > 0.0199 && plan->gate.max_rate_upper < 0.0201);
    assert_true(plan->gate.alpha > 0.0099 && plan->gate.alpha < 0.0101);
    assert_false(plan->gate.rollback);
    assert_int_equal(plan->gate.every_ms, 10 * 60000); /* defaults where not given */
    assert_true(plan->gate.prior == 100.0);
    /* Membership: region r1 first, then by the stable draw. */
    uint32_t r1[SCENARIO_ATTR_COUNT] = {0, 0, 0, 0}, r2[SCENARIO_ATTR_COUNT] = {0, 0, 1, 0};
    assert_int_equal(scenario_ring_of(plan, r1, 0.99), 0);
    assert_int_equal(scenario_ring_of(plan, r2, 0.05), 1);
    assert_int_equal(scenario_ring_of(plan, r2, 0.10), 2);
    assert_int_equal(scenario_ring_of(plan, r2, 0.99), 2);
    scenario_destroy(s);

    /* Explicit tenants, an image-only update, a flow-style rollout. */
    s = parse_ok(SNIP_HEAD
                 "fleet:\n"
                 "  size: 10\n"
                 "  profiles: {a: 100%}\n"
                 "  sensors: {\"7.11\": 100%}\n"
                 "  regions: {r1: 33.33%, r2: 33.33%, r3: 33.34%}\n"
                 "  tenants: {acme: 60%, globex: 40%}\n"
                 "update: {image: sensor-7.12.sys, release: +1h}\n"
                 "known_bad: {at: +2h}\n"
                 "rollout: all-at-once\n");
    assert_int_equal(s->attrs[SCENARIO_ATTR_TENANT].count, 2);
    assert_string_equal(s->attrs[SCENARIO_ATTR_TENANT].items[1].name, "globex");
    assert_int_equal(s->tenant_zipf, 0);
    assert_string_equal(s->update_image, "sensor-7.12.sys");
    assert_int_equal(s->update_content.count, 0);
    assert_true(s->has_known_bad);
    assert_int_equal(s->known_bad_ms, 2 * MS_HOUR);
    assert_int_equal(s->nplans, 1);
    assert_string_equal(s->plans[0].name, "all-at-once");
    scenario_destroy(s);
}

/* ---- errors ------------------------------------------------------------ */

static const struct {
    const char *text;
    const char *where;   /* "snip.yaml:L:C: " */
    const char *what;    /* a substring of the rest */
} error_cases[] = {
    {SNIP_BASE "colour: red\n", "snip.yaml:13:1: ",
     "unknown key \"colour\" in the scenario; known: name, description, seed, duration, start, "
     "fleet, content, install_dir, update, revert, known_bad, connectivity, repair, rollout"},
    {SNIP_BASE "seed: 8\n", "snip.yaml:13:1: ", "duplicate key \"seed\" in the scenario"},
    {SNIP_BASE "rollout: staged\n", "snip.yaml:13:10: ",
     "rollout.plan: only \"all-at-once\" stands alone"},
    {SNIP_BASE "rollout:\n  plans:\n    - rings: []\n", "snip.yaml:15:7: ",
     "rollout plan: missing key \"name\""},
    {SNIP_BASE "rollout:\n  plans:\n    - name: p\n      rings:\n        - {name: a, share: 10%}\n"
     "        - {name: b, share: 5%}\n", "snip.yaml:18:",
     "shares are cumulative (0.1%, 1%, 10%, ...) and must grow from ring to ring"},
    {SNIP_BASE "rollout:\n  plans:\n    - name: p\n      rings:\n"
     "        - {name: a, share: 10%, where: {region: r1}}\n", "snip.yaml:17:",
     "ring a: give a share of the fleet or a where, one of the two"},
    {SNIP_BASE "rollout:\n  plans:\n    - name: p\n      rings:\n"
     "        - {name: a, where: {colour: red}}\n", "snip.yaml:17:",
     "where: unknown attribute \"colour\"; known: profile, sensor, region, tenant"},
    {SNIP_BASE "rollout:\n  plans:\n    - name: p\n      rings:\n"
     "        - {name: a, where: {region: [r1, mars]}}\n        - {name: b, share: 100%}\n",
     "snip.yaml:17:",
     "ring a: no region \"mars\" in the fleet"},
    {SNIP_BASE "rollout:\n  plans:\n    - name: p\n      rings:\n        - {name: a, share: 1%}\n"
     "        - {name: a, share: 5%}\n", "snip.yaml:18:", "ring \"a\" is given twice"},
    {SNIP_BASE "rollout:\n  plans:\n    - name: p\n      gate: {on_failure: panic}\n",
     "snip.yaml:16:", "on_failure: \"rollback\" or \"halt\", not \"panic\""},
    {SNIP_BASE "rollout:\n  plans:\n    - name: p\n      gate: {alpha: 60%}\n",
     "snip.yaml:16:", "alpha: want more than 0% and less than 50%"},
    {SNIP_BASE "rollout:\n  plans:\n    - name: p\n    - name: p\n", "snip.yaml:16:",
     "plan \"p\" is given twice"},
    {SNIP_BASE "rollout:\n  plans:\n    - name: p\n      rings:\n        - {name: a, share: 1%}\n"
     "        - {name: b, share: 50%}\n", "snip.yaml:18:",
     "ring b: the last ring takes everyone left; give it share: 100%"},
    {SNIP_BASE "rollout:\n  plans:\n    - name: p\n      rings:\n"
     "        - {name: a, share: 1%, bake: 200000000000d}\n", "snip.yaml:17:",
     "bake: expected a duration"},

    {SNIP_HEAD SNIP_FLEET, "snip.yaml:1:1: ", "the scenario: missing key \"update\""},
    {"name: t\nseed: 7\nduration: 12 hours\n", "snip.yaml:3:11: ",
     "duration: expected a duration (up to 100 years) such as"},
    {"name: t\nseed: -1\n", "snip.yaml:2:7: ", "seed: expected a whole number, got \"-1\""},
    {"name: t\nseed: 18446744073709551616\n", "snip.yaml:2:7: ", "seed: expected a whole number"},
    {"name: t\nseed: 7\nduration: 12h\nstart: 2024-02-30T00:00:00Z\n", "snip.yaml:4:8: ",
     "start: expected a UTC time"},
    {SNIP_HEAD "fleet:\n  size: 1000\n  profiles: {a: 50, b: 50%}\n", "snip.yaml:7:17: ",
     "fleet.profiles: expected a share such as \"40%\""},
    {SNIP_HEAD "fleet:\n  size: 1000\n  profiles: {a: 50%, b: 45%}\n", "snip.yaml:7:13: ",
     "fleet.profiles: shares sum to 95%, not 100%"},
    {SNIP_HEAD "fleet:\n  size: 1000\n  profiles: {a: 50%, a: 50%}\n", "snip.yaml:7:22: ",
     "fleet.profiles: \"a\" is given twice"},
    {SNIP_HEAD "fleet:\n  size: 0\n", "snip.yaml:6:9: ", "fleet.size: 0 is out of range"},
    {SNIP_HEAD "fleet:\n  size: 1e6\n", "snip.yaml:6:9: ", "fleet.size: expected a whole number"},
    {SNIP_HEAD "fleet:\n  size: 10\n  profiles: {a: 100%}\n", "snip.yaml:6:3: ",
     "fleet: missing key \"sensors\""},
    {SNIP_HEAD "fleet:\n  size: 10\n  inventory: x.csv\n", "snip.yaml:6:3: ",
     "fleet: \"size\" cannot be given with \"inventory\""},
    {SNIP_HEAD "fleet: [1, 2]\n", "snip.yaml:5:8: ", "fleet: expected a mapping, got a list"},
    {SNIP_HEAD SNIP_FLEET "  tenants: {count: 10, skew: 1}\n", "snip.yaml:10:24: ",
     "unknown key \"skew\" in fleet.tenants; known: count, zipf"},
    {SNIP_HEAD SNIP_FLEET "  tenants: {count: 10, zipf: -1}\n", "snip.yaml:10:30: ",
     "fleet.tenants.zipf: expected an exponent"},
    {SNIP_HEAD SNIP_FLEET "  colour: red\n", "snip.yaml:10:3: ",
     "unknown key \"colour\" in fleet; known: size, profiles, sensors, regions, tenants, "
     "inventory"},
    {SNIP_HEAD SNIP_FLEET "update:\n  content: [x.sys]\n  release: 2023-07-19T04:09:00Z\n",
     "snip.yaml:12:12: ", "update.release: must fall within the scenario"},
    {SNIP_HEAD SNIP_FLEET "update:\n  content: [x.sys]\n  release: +12h\n",
     "snip.yaml:12:12: ", "update.release: must fall within the scenario"},
    {SNIP_HEAD SNIP_FLEET "update:\n  content: [x.sys]\n  relase: +1h\n", "snip.yaml:12:3: ",
     "unknown key \"relase\" in update; known: content, image, release"},
    {SNIP_HEAD SNIP_FLEET "update:\n  release: +1h\n", "snip.yaml:11:3: ",
     "update: give its content, its image, or both"},
    {SNIP_HEAD SNIP_FLEET "update:\n  content: [{file: x.sys, installed_at: +1h}]\n",
     "snip.yaml:11:27: ", "unknown key \"installed_at\" in update.content; known: file"},
    {SNIP_BASE "content: [{installed_at: +1h}]\n", "snip.yaml:13:11: ",
     "content: missing key \"file\""},
    {SNIP_BASE "content: [{file: a.sys, installed_at: +1h}]\n", "snip.yaml:13:39: ",
     "content.installed_at: after the start; files on disk are there when the run starts (a "
     "file that arrives later is the update)"},
    {SNIP_HEAD SNIP_FLEET "update:\n  content: [x.sys]\n  release: +1h\ndescription: \"M\xfcnchen\"\n",
     "snip.yaml:13:16: ", "invalid leading UTF-8 octet (byte 0xFC)"},
    {"name: ../../home/x/results\n" SNIP_FLEET SNIP_UPDATE, "snip.yaml:1:7: ",
     "name: \"../../home/x/results\" is not a usable name: it names the store file (1 to 63 "
     "characters; no '/', control characters, commas or quotes; not '.' or '..')"},
    {SNIP_BASE "rollout:\n  plans:\n    - name: a/b\n      rings: [{name: r, share: 100%}]\n",
     "snip.yaml:15:13: ", "plan name: \"a/b\" names a store file (<store>.a/b.db): no '/', "
     "'.' or '..'"},
    {"name: t\nseed: 7\nduration: 12h\nstart: 1601-01-01T00:00:00+01:00\n" SNIP_FLEET SNIP_UPDATE,
     "snip.yaml:4:8: ", "start: 1601-01-01T00:00:00+01:00 is before 1980"},
    {SNIP_BASE "content: [[a]]\n", "snip.yaml:13:11: ",
     "expected a content file name, got a list"},
    {SNIP_BASE "revert:\n  content: [y.sys]\n  at: +1h\n", "snip.yaml:15:7: ",
     "revert.at: must come after update.release"},
    {SNIP_BASE "revert:\n  at: +5h\n", "snip.yaml:14:3: ", "revert: missing key \"content\""},
    {SNIP_BASE "known_bad: {at: +1h}\n", "snip.yaml:13:17: ",
     "known_bad.at: must not come before update.release"},
    {SNIP_BASE "connectivity:\n  online:\n    r1: [1%, 2%]\n", "snip.yaml:15:9: ",
     "connectivity.online: expected 24 shares (UTC hours 0 to 23), got 2"},
    {SNIP_BASE "connectivity:\n  online:\n    r3: 50%\n", "snip.yaml:15:5: ",
     "connectivity.online: \"r3\" is not a region of the fleet; regions: r1, r2"},
    {SNIP_BASE "connectivity:\n  online:\n    r1: 50%\n", "snip.yaml:9:22: ",
     "region \"r2\" has no connectivity.online curve (and there is no \"default\")"},
    {SNIP_BASE "connectivity:\n  boot_to_network: {min: 1s, median: 2s}\n", "snip.yaml:14:20: ",
     "connectivity.boot_to_network: give either {min, max} or {median, p95}"},
    {SNIP_BASE "connectivity:\n  boot_to_network: {median: 2m, p95: 1m}\n", "snip.yaml:14:38: ",
     "connectivity.boot_to_network: p95 must be more than median"},
    {SNIP_BASE "connectivity:\n  checkin: {interval: 0}\n", "snip.yaml:14:23: ",
     "connectivity.checkin.interval: must be longer than 0"},
    {SNIP_BASE "repair: {after: 6h}\n", "snip.yaml:13:9: ", "repair: missing key \"share\""},
    {SNIP_BASE "repair: {after: 6h, share: 160%}\n", "snip.yaml:13:28: ",
     "repair.share: expected a share"},
    {"- a\n- b\n", "snip.yaml:1:1: ", "the scenario: expected a mapping of keys, got a list"},
    {"", "snip.yaml:1:1: ", "empty scenario"},
    {"# only a comment\n", "snip.yaml:1:1: ", "empty scenario"},
    {SNIP_BASE "---\nname: u\n", "snip.yaml:14:1: ",
     "only one YAML document is allowed in a scenario"},
    {"name: t\nseed: [1\n", "snip.yaml:3:1: ", "did not find expected ',' or ']'"},
    {"name: t\n  seed: 1\n", "snip.yaml:2:7: ", "mapping values are not allowed"},
    {"name: \"t\n", "snip.yaml:2:1: ", "found unexpected end of stream"},
    {"name: [t]\n", "snip.yaml:1:7: ", "expected name, got a list"},
    {"name: ''\n", "snip.yaml:1:7: ", "name: empty"},
};

static void errors_point_at_line_and_column(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        scenario *s = (scenario *)1;
        char err[1024];
        int rc = scenario_parse(error_cases[i].text, strlen(error_cases[i].text), "snip.yaml", 0,
                                &s, err, sizeof err);
        if (rc != SIM_EFORMAT || s != NULL)
            fail_msg("case %zu: rc %d (err \"%s\")", i, rc, rc ? err : "");
        if (strncmp(err, error_cases[i].where, strlen(error_cases[i].where)) != 0 ||
            strstr(err, error_cases[i].what) == NULL)
            fail_msg("case %zu:\n  got      %s\n  expected %s...%s", i, err,
                     error_cases[i].where, error_cases[i].what);
    }
}

static void names_are_checked_against_the_catalog(void **state)
{
    (void)state;
    scenario *s = parse_ok(SNIP_BASE);
    char err[1024];
    static const char *const profiles[] = {"a", "b", "c"};
    static const char *const sensors[] = {"7.11", "7.12"};
    scenario_catalog cat = {profiles, 3, sensors, 2, NULL, 0};
    assert_int_equal(scenario_check(s, &cat, err, sizeof err), SIM_EFORMAT);
    assert_string_equal(err, "snip.yaml:8:26: unknown sensor version \"7.10\"; known: 7.11, 7.12");
    cat.nprofiles = 1;
    assert_int_equal(scenario_check(s, &cat, err, sizeof err), SIM_EFORMAT);
    assert_string_equal(err, "snip.yaml:7:22: unknown profile \"b\"; known: a");
    /* NULL lists are not checked. */
    scenario_catalog none = {0};
    assert_int_equal(scenario_check(s, &none, err, sizeof err), 0);
    scenario_destroy(s);
}

/* ---- inventory ---------------------------------------------------------- */

static int load_with_csv(const char *csv, scenario **s, char *err, size_t errlen)
{
    char ypath[512], cpath[512];
    write_tmp("inv.csv", csv, cpath, sizeof cpath);
    write_tmp("inv.yaml", SNIP_HEAD SNIP_INVENTORY_FLEET SNIP_UPDATE, ypath, sizeof ypath);
    return scenario_load(ypath, s, err, errlen);
}

/* A scenario with this inventory, which must load. */
static scenario *load_csv_ok(const char *csv)
{
    scenario *s = NULL;
    char err[1024];
    if (load_with_csv(csv, &s, err, sizeof err))
        fail_msg("%s", err);
    assert_true(s->inventory_loaded);
    return s;
}

static void inventory_loads(void **state)
{
    (void)state;
    scenario *s = load_csv_ok(SNIP_CSV);
    char err[1024];
    assert_int_equal(s->fleet_size, 4);
    assert_string_equal(scenario_row_id(s, 2), "host,3");
    assert_int_equal(s->attrs[SCENARIO_ATTR_PROFILE].count, 2);
    assert_int_equal(s->attrs[SCENARIO_ATTR_TENANT].count, 2);
    assert_string_equal(s->attrs[SCENARIO_ATTR_TENANT].items[1].name, "globex");
    assert_true(s->attrs[SCENARIO_ATTR_TENANT].items[0].share > 0.7499 &&
                s->attrs[SCENARIO_ATTR_TENANT].items[0].share < 0.7501);
    assert_int_equal(s->attrs[SCENARIO_ATTR_SENSOR].items[1].mark.line, 3);
    assert_int_equal(s->attrs[SCENARIO_ATTR_SENSOR].items[1].mark.column, 0);

    fleet_endpoint *eps;
    uint64_t first, count;
    assert_int_equal(fleet_generate(s, 0, 1, &eps, &first, &count, err, sizeof err), 0);
    assert_int_equal(count, 4);
    assert_int_equal(eps[3].profile, 1);   /* b */
    assert_int_equal(eps[3].region, 0);    /* r1 */
    assert_int_equal(eps[1].sensor, 1);    /* 7.10 */
    assert_int_equal(eps[2].tenant, 1);    /* globex */
    sim_free(eps);

    /* Names in the inventory are checked too, and point at the row. */
    static const char *const sensors[] = {"7.11"};
    scenario_catalog cat = {NULL, 0, sensors, 1, NULL, 0};
    assert_int_equal(scenario_check(s, &cat, err, sizeof err), SIM_EFORMAT);
    char want[600];
    snprintf(want, sizeof want, "%s/inv.csv:3: unknown sensor version \"7.10\"; known: 7.11",
             tmpdir);
    assert_string_equal(err, want);

    /* The size is the inventory's. */
    assert_int_equal(scenario_override(s, "fleet-size", "10", err, sizeof err), SIM_EINVAL);
    assert_true(strstr(err, "--fleet-size: the fleet is the inventory inv.csv") != NULL);
    /* No other columns, no extra attributes. */
    assert_int_equal(s->nextra, 0);
    assert_null(scenario_row_extra(s, 0, 0));
    scenario_destroy(s);
}

/* Columns beyond the five are attributes for cohorts; an empty cell is none. */
static void inventory_extra_columns_are_attributes(void **state)
{
    (void)state;
    scenario *s = load_csv_ok(SNIP_CSV_EXTRA);
    assert_int_equal(s->fleet_size, 4);
    assert_int_equal(s->nextra, 2);
    assert_string_equal(s->extra_keys[0], "hardware");
    assert_string_equal(s->extra_keys[1], "site.code");
    assert_string_equal(scenario_row_extra(s, 0, 0), "Dell-7490");
    assert_string_equal(scenario_row_extra(s, 1, 0), "HP 840");
    assert_null(scenario_row_extra(s, 2, 0));
    assert_string_equal(scenario_row_extra(s, 3, 0), "Dell-7490");
    assert_string_equal(scenario_row_extra(s, 0, 1), "LHR-1");
    assert_null(scenario_row_extra(s, 1, 1));
    assert_string_equal(scenario_row_extra(s, 3, 1), "AMS");
    assert_null(scenario_row_extra(s, 4, 0));   /* past the rows */
    assert_null(scenario_row_extra(s, 0, 2));   /* past the columns */
    /* Interned: equal values share one string. */
    assert_int_equal(s->extra_values[0].count, 2);
    assert_ptr_equal(scenario_row_extra(s, 0, 0), scenario_row_extra(s, 3, 0));
    /* The named columns still read right around them. */
    assert_string_equal(scenario_row_id(s, 3), "host-4");
    assert_string_equal(s->attrs[SCENARIO_ATTR_TENANT].items[1].name, "globex");
    scenario_destroy(s);
}

static const struct {
    const char *csv;
    int line;
    const char *what;
} csv_errors[] = {
    {"", 1, "empty inventory"},
    {"id,profile,sensor,region,tenant\n", 1, "no endpoints after the header"},
    {"id,profile,sensor,region,owner\nh,a,7.11,r1,t\n", 1,
     "missing column \"tenant\" (the header names id, profile, sensor, region, tenant, and "
     "any others)"},
    {"id,profile,sensor,region\nh,a,7.11,r1\n", 1, "missing column \"tenant\""},
    {"id,profile,sensor,id,tenant\n", 1, "column \"id\" is given twice"},
    {"id,profile,sensor,region,tenant,a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q\n", 1,
     "more than 21 columns (id, profile, sensor, region, tenant and at most 16 others)"},
    {"id,profile,sensor,region,tenant,ring\n", 1,
     "column \"ring\": fleetsim names that attribute itself"},
    {"id,profile,sensor,region,tenant,os\n", 1, "column \"os\": fleetsim names"},
    {"id,profile,sensor,region,Tenant\n", 1,
     "column \"Tenant\": did you mean \"tenant\"? (column names are exact: case and spaces "
     "count)"},
    {"id, profile,sensor,region,tenant\n", 1, "column \" profile\": did you mean \"profile\"?"},
    {"id,profile,sensor,region,tenant,OS\n", 1, "column \"OS\": did you mean \"os\"?"},
    {"\n\nid,profile,sensor,region,tenant,ring\n", 3, "column \"ring\": fleetsim names"},
    {"id,profile,sensor,region,tenant,2nd\n", 1, "column \"2nd\": a column name is a letter"},
    {"id,profile,sensor,region,tenant,\"a b\"\n", 1, "column \"a b\": a column name"},
    {"id,profile,sensor,region,tenant,abcdefghijabcdefghijabcdefghijabc\n", 1,
     "at most 32 in all"},
    {"id,profile,sensor,region,tenant,hw,hw\n", 1, "column \"hw\" is given twice"},
    {"id,profile,sensor,region,tenant,\n", 1, "column 6 has no name"},
    {"id,profile,sensor,region,tenant,hw\nh1,a,7.11,r1,t\n", 2, "expected 6 fields, got 5"},
    {"id,profile,sensor,region,tenant,hw\nh1,a,7.11,r1,t,\"x,y\"\n", 2,
     "hw: control characters, commas or quotes are not allowed"},
    {"id,profile,sensor,region,tenant,hw\nh1,a,7.11,r1,t,"
     "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd\n", 2,
     "hw: longer than 63 characters"},
    {"id,profile,sensor,region,tenant\nh1,a,7.11,r1,t\nh2,a,7.11,r1\n", 3,
     "expected 5 fields, got 4"},
    {"id,profile,sensor,region,tenant\nh1,a,7.11,r1,t,x\n", 2, "expected 5 fields, got more than 5"},
    {"id,profile,sensor,region,tenant\nh1,a,,r1,t\n", 2, "empty sensor"},
    {"id,profile,sensor,region,tenant\nh1,a,7.11,r1,t\n\nh2,a,7.11,r1,t\nh1,b,7.11,r1,t\n", 5,
     "duplicate id \"h1\" (first on line 2)"},
    {"id,profile,sensor,region,tenant\n\"h1,a,7.11,r1,t\n", 2, "malformed quoting"},
    {"id,profile,sensor,region,tenant\nh\"1,a,7.11,r1,t\n", 2, "malformed quoting"},
};

static void inventory_errors_name_the_row(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof csv_errors / sizeof csv_errors[0]; i++) {
        scenario *s = (scenario *)1;
        char err[1024], want[600];
        int rc = load_with_csv(csv_errors[i].csv, &s, err, sizeof err);
        snprintf(want, sizeof want, "%s/inv.csv:%d: ", tmpdir, csv_errors[i].line);
        if (rc != SIM_EFORMAT || s != NULL || strncmp(err, want, strlen(want)) != 0 ||
            !strstr(err, csv_errors[i].what))
            fail_msg("csv case %zu: rc %d\n  got      %s\n  expected %s%s", i, rc, err, want,
                     csv_errors[i].what);
    }
    /* A missing inventory: the scenario's line, and why. */
    char ypath[512], err[1024];
    write_tmp("noinv.yaml", SNIP_HEAD "fleet:\n  inventory: absent.csv\n" SNIP_UPDATE, ypath,
              sizeof ypath);
    scenario *s = NULL;
    assert_int_equal(scenario_load(ypath, &s, err, sizeof err), SIM_EIO);
    assert_null(s);
    assert_true(strstr(err, "noinv.yaml:6:14: fleet.inventory: ") != NULL);
    assert_true(strstr(err, "absent.csv: cannot open") != NULL);
    /* Without files, the inventory is named but not read. */
    const char *text = SNIP_HEAD SNIP_INVENTORY_FLEET SNIP_UPDATE;
    assert_int_equal(scenario_parse(text, strlen(text), "x/s.yaml", SCENARIO_NO_FILES, &s, err,
                                    sizeof err), 0);
    assert_string_equal(s->inventory_path, "x/inv.csv");
    assert_false(s->inventory_loaded);
    fleet_gen *gen;
    assert_int_equal(fleet_gen_create(s, &gen, err, sizeof err), SIM_EINVAL);
    assert_int_equal(scenario_load_inventory(s, SNIP_CSV, strlen(SNIP_CSV), err, sizeof err), 0);
    assert_int_equal(s->fleet_size, 4);
    scenario_destroy(s);
}

/* ---- content and overrides ---------------------------------------------- */

/* 200,000 named tenants: checked for repeats by sorting, not pair by pair. */
static void many_tenants_parse(void **state)
{
    (void)state;
    const size_t n = 200000;
    size_t cap = n * 32 + 1024, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len, "%s",
                            SNIP_HEAD "fleet:\n  size: 1000000\n  profiles: {a: 100%}\n"
                                      "  sensors: {\"7.11\": 100%}\n  regions: {r1: 100%}\n"
                                      "  tenants:\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "    t%06zu: 0.0005%%\n", i);
    len += (size_t)snprintf(text + len, cap - len, "%s", SNIP_UPDATE);
    scenario *s = parse_ok(text);
    assert_int_equal(s->attrs[SCENARIO_ATTR_TENANT].count, n);
    scenario_destroy(s);
    /* The same name twice, far apart, is found and pointed at. */
    memcpy(strstr(text, "t199999:"), "t000007:", 8);
    char err[512];
    s = NULL;
    assert_int_equal(scenario_parse(text, len, "snip.yaml", 0, &s, err, sizeof err),
                     SIM_EFORMAT);
    if (!strstr(err, "snip.yaml:200010:5: fleet.tenants: \"t000007\" is given twice"))
        fail_msg("%s", err);
    free(text);
}

/* Content items: a name or {file: F}; no more files on an endpoint than a run holds. */
static void content_lists_are_bounded(void **state)
{
    (void)state;
    scenario *s = parse_ok(SNIP_HEAD SNIP_FLEET
                           "update:\n  content: [{file: x.sys}]\n  release: +1h\n"
                           "revert:\n  content: [{file: y.sys}]\n  at: +2h\n");
    assert_int_equal(s->update_content.count, 1);
    assert_string_equal(s->update_content.items[0].file, "x.sys");
    assert_string_equal(s->revert_content.items[0].file, "y.sys");
    scenario_destroy(s);

    /* 60 on disk and 5 in the update: the update's fifth is the 65th. */
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "%s", SNIP_HEAD SNIP_FLEET
                                "update:\n  content: [u1.sys, u2.sys, u3.sys, u4.sys, u5.sys]\n"
                                "  release: +1h\ncontent:\n");
    for (int i = 0; i < 60; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "  - c%02d.sys\n", i);
    char err[512];
    s = NULL;
    assert_int_equal(scenario_parse(text, n, "snip.yaml", 0, &s, err, sizeof err), SIM_EFORMAT);
    assert_null(s);
    assert_string_equal(err, "snip.yaml:11:45: \"u5.sys\": more than 64 content files on an "
                             "endpoint (60 on disk, 5 delivered with the update)");
    /* 64 in all is fine. */
    memcpy(strstr(text, ", u5.sys"), "        ", 8);
    s = parse_ok(text);
    assert_int_equal(s->on_disk.count + s->update_content.count, 64);
    scenario_destroy(s);
}

static void content_resolves_through_the_search_list(void **state)
{
    (void)state;
    char path[512], err[1024], dir2[300];
    write_tmp("local.sys", "x", path, sizeof path);
    snprintf(dir2, sizeof dir2, "%s/content", tmpdir);
    mkdir(dir2, 0700);
    write_tmp("content/C-00000291-00000000-00000032.sys", "x", path, sizeof path);
    write_tmp("content/C-00000291-00000000-00000033.sys", "x", path, sizeof path);
    const char *dirs[] = {"/nonexistent-dir", dir2};
    scenario_catalog cat = {NULL, 0, NULL, 0, dirs, 2};

    char ypath[512];
    write_tmp("c.yaml", SNIP_HEAD SNIP_FLEET
              "update:\n  content: [local.sys, C-00000291-*-00000032.sys]\n  release: +1h\n"
              "revert: {content: [C-00000291-00000000-00000033.sys], at: +2h}\n",
              ypath, sizeof ypath);
    scenario *s = NULL;
    int rc = scenario_load(ypath, &s, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    rc = scenario_resolve_content(s, &cat, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    char want[600];
    snprintf(want, sizeof want, "%s/local.sys", tmpdir);
    assert_string_equal(s->update_content.items[0].path, want);
    snprintf(want, sizeof want, "%s/C-00000291-00000000-00000032.sys", dir2);
    assert_string_equal(s->update_content.items[1].path, want);
    snprintf(want, sizeof want, "%s/C-00000291-00000000-00000033.sys", dir2);
    assert_string_equal(s->revert_content.items[0].path, want);
    scenario_destroy(s);

    write_tmp("c2.yaml", SNIP_HEAD SNIP_FLEET
              "update:\n  content: [C-00000291-*.sys]\n  release: +1h\n", ypath, sizeof ypath);
    assert_int_equal(scenario_load(ypath, &s, err, sizeof err), 0);
    assert_int_equal(scenario_resolve_content(s, &cat, err, sizeof err), SIM_EFORMAT);
    assert_true(strstr(err, "c2.yaml:11:13: content \"C-00000291-*.sys\" matches 2 files") != NULL);
    scenario_destroy(s);

    write_tmp("c3.yaml", SNIP_HEAD SNIP_FLEET
              "update:\n  content: [nowhere.sys]\n  release: +1h\n", ypath, sizeof ypath);
    assert_int_equal(scenario_load(ypath, &s, err, sizeof err), 0);
    assert_int_equal(scenario_resolve_content(s, &cat, err, sizeof err), SIM_ENOENT);
    assert_true(strstr(err, "c3.yaml:11:13: content \"nowhere.sys\" not found in ") != NULL);
    assert_true(strstr(err, ", /nonexistent-dir, ") != NULL);
    scenario_destroy(s);
}

static void overrides_replace_values(void **state)
{
    (void)state;
    scenario *s = parse_ok(SNIP_BASE);
    char err[512];
    assert_int_equal(scenario_override(s, "fleet-size", "5000", err, sizeof err), 0);
    assert_int_equal(s->fleet_size, 5000);
    assert_int_equal(scenario_override(s, "seed", "0x10", err, sizeof err), 0);
    assert_int_equal(s->seed, 16);
    assert_int_equal(scenario_override(s, "duration", "1d", err, sizeof err), 0);
    assert_int_equal(s->duration_ms, 24 * MS_HOUR);

    assert_int_equal(scenario_override(s, "fleet-size", "5k", err, sizeof err), SIM_EINVAL);
    assert_string_equal(err, "--fleet-size: expected a whole number from 1 to 4000000000, got \"5k\"");
    assert_int_equal(scenario_override(s, "fleet-size", "0", err, sizeof err), SIM_EINVAL);
    assert_int_equal(scenario_override(s, "seed", "-3", err, sizeof err), SIM_EINVAL);
    assert_true(strstr(err, "--seed: expected a whole number") == err);
    assert_int_equal(scenario_override(s, "duration", "1h", err, sizeof err), SIM_EINVAL);
    assert_true(strstr(err, "--duration: 1h ends before the update is released") == err);
    assert_int_equal(scenario_override(s, "jobs", "2", err, sizeof err), SIM_EINVAL);
    assert_string_equal(err, "unknown override \"jobs\"; known: fleet-size, seed, duration");
    assert_int_equal(s->fleet_size, 5000);
    assert_int_equal(s->seed, 16);
    scenario_destroy(s);
}

static void delays_are_drawn_from_their_distribution(void **state)
{
    (void)state;
    scenario_dist fixed = {SCENARIO_DIST_FIXED, 30000, 0};
    scenario_dist uniform = {SCENARIO_DIST_UNIFORM, 10000, 20000};
    scenario_dist lognormal = {SCENARIO_DIST_LOGNORMAL, 40000, 180000};
    assert_int_equal(scenario_dist_draw(&fixed, 12345), 30000);
    uint64_t below_median = 0, below_p95 = 0, n = 20000;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = fleet_mix64(i);
        uint64_t u = scenario_dist_draw(&uniform, r);
        assert_true(u >= 10000 && u <= 20000);
        uint64_t l = scenario_dist_draw(&lognormal, r);
        below_median += l <= 40000;
        below_p95 += l <= 180000;
    }
    assert_true(below_median > n * 48 / 100 && below_median < n * 52 / 100);
    assert_true(below_p95 > n * 94 / 100 && below_p95 < n * 96 / 100);
}

/* ---- fleet generation --------------------------------------------------- */

static void apportionment_is_largest_remainder(void **state)
{
    (void)state;
    uint64_t c[4];
    assert_int_equal(fleet_apportion((double[]){1, 1, 1}, 3, 10, c), 0);
    assert_int_equal(c[0], 4);
    assert_int_equal(c[1], 3);
    assert_int_equal(c[2], 3);
    assert_int_equal(fleet_apportion((double[]){0.5, 0.3, 0.2}, 3, 7, c), 0);
    assert_int_equal(c[0], 4); /* 3.5 → 4 (largest remainder) */
    assert_int_equal(c[1], 2); /* 2.1 */
    assert_int_equal(c[2], 1); /* 1.4 */
    assert_int_equal(fleet_apportion((double[]){0.5, 0, 0.5, 0}, 4, 3, c), 0);
    assert_int_equal(c[0] + c[2], 3);
    assert_int_equal(c[1] + c[3], 0);
    assert_int_equal(fleet_apportion((double[]){0.7, 0.2, 0.1}, 3, 4000000000ull, c), 0);
    assert_int_equal(c[0], 2800000000ull);
    assert_int_equal(c[1], 800000000ull);
    assert_int_equal(c[2], 400000000ull);
}

static fleet_endpoint *generate(const scenario *s, uint32_t k, uint32_t n, uint64_t *first,
                                uint64_t *count)
{
    fleet_endpoint *eps = NULL;
    char err[256];
    int rc = fleet_generate(s, k, n, &eps, first, count, err, sizeof err);
    if (rc)
        fail_msg("fleet_generate: %s", err);
    return eps;
}

static void same_seed_same_fleet(void **state)
{
    (void)state;
    scenario *s = parse_ok(SNIP_FULL);
    scenario_override(s, "fleet-size", "1013", (char[64]){0}, 64);
    uint64_t first, count;
    fleet_endpoint *a = generate(s, 0, 1, &first, &count);
    fleet_endpoint *b = generate(s, 0, 1, &first, &count);
    assert_int_equal(count, 1013);
    assert_memory_equal(a, b, count * sizeof *a);
    for (uint64_t i = 0; i < count; i++)
        assert_int_equal(a[i].id, i);

    scenario_override(s, "seed", "8", (char[64]){0}, 64);
    fleet_endpoint *c = generate(s, 0, 1, &first, &count);
    uint64_t differ = 0;
    for (uint64_t i = 0; i < count; i++)
        differ += a[i].profile != c[i].profile || a[i].sensor != c[i].sensor ||
                  a[i].region != c[i].region;
    assert_true(differ > count / 4);
    assert_true(fleet_endpoint_seed(7, 1) != fleet_endpoint_seed(7, 2));
    assert_true(fleet_endpoint_seed(7, 1) != fleet_endpoint_seed(8, 1));
    assert_int_equal(fleet_endpoint_seed(7, 1), fleet_endpoint_seed(7, 1));

    /* Every shard of every split is exactly its slice of the whole. */
    scenario_override(s, "seed", "7", (char[64]){0}, 64);
    for (uint32_t n = 1; n <= 7; n++) {
        uint64_t covered = 0;
        for (uint32_t k = 0; k < n; k++) {
            uint64_t sf, sc;
            fleet_endpoint *shard = generate(s, k, n, &sf, &sc);
            assert_int_equal(sf, covered);
            assert_memory_equal(shard, a + sf, sc * sizeof *shard);
            covered += sc;
            sim_free(shard);
        }
        assert_int_equal(covered, 1013);
    }
    sim_free(a);
    sim_free(b);
    sim_free(c);
    scenario_destroy(s);
}

static void shards_parse_and_split_evenly(void **state)
{
    (void)state;
    uint32_t k, n;
    assert_true(fleet_shard_parse("0/1", &k, &n));
    assert_true(fleet_shard_parse("3/8", &k, &n));
    assert_int_equal(k, 3);
    assert_int_equal(n, 8);
    static const char *const bad[] = {"1/1", "8/3", "0/0", "1", "/2", "1/", "-1/2", "1/2x",
                                      "1 /2", "0/4294967296"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (fleet_shard_parse(bad[i], &k, &n))
            fail_msg("accepted shard \"%s\"", bad[i]);
    uint64_t first, count;
    fleet_shard_range(10, 0, 3, &first, &count);
    assert_int_equal(first, 0);
    assert_int_equal(count, 3);
    fleet_shard_range(10, 2, 3, &first, &count);
    assert_int_equal(first, 6);
    assert_int_equal(count, 4);
    fleet_shard_range(2, 4, 5, &first, &count);
    assert_int_equal(first + count, 2);
}

/* Cohort sizes in the generated fleet are the apportionment, exactly. */
static void cohorts_match_shares(void **state)
{
    (void)state;
    char path[512], err[512];
    scenario *s = NULL;
    assert_int_equal(scenario_load(source_path("scenarios/channel-file-291.yaml", path,
                                               sizeof path), &s, err, sizeof err), 0);
    assert_int_equal(scenario_override(s, "fleet-size", "1000000", err, sizeof err), 0);
    fleet_gen *gen;
    assert_int_equal(fleet_gen_create(s, &gen, err, sizeof err), 0);
    assert_int_equal(fleet_gen_size(gen), 1000000);
    uint64_t *seen[SCENARIO_ATTR_COUNT];
    for (int a = 0; a < SCENARIO_ATTR_COUNT; a++)
        seen[a] = calloc(s->attrs[a].count, sizeof(uint64_t));
    for (uint64_t i = 0; i < 1000000; i++) {
        fleet_endpoint e;
        fleet_gen_endpoint(gen, i, &e);
        seen[SCENARIO_ATTR_PROFILE][e.profile]++;
        seen[SCENARIO_ATTR_SENSOR][e.sensor]++;
        seen[SCENARIO_ATTR_REGION][e.region]++;
        seen[SCENARIO_ATTR_TENANT][e.tenant]++;
    }
    for (int a = 0; a < SCENARIO_ATTR_COUNT; a++) {
        uint64_t total = 0;
        for (uint32_t c = 0; c < s->attrs[a].count; c++) {
            uint64_t want = fleet_gen_cohort_size(gen, (scenario_attr)a, c);
            assert_int_equal(seen[a][c], want);
            double exact = s->attrs[a].items[c].share * 1e6;
            assert_true((double)want > exact - 1.0 && (double)want < exact + 1.0);
            total += want;
        }
        assert_int_equal(total, 1000000);
        free(seen[a]);
    }
    /* 7.11 is 80% exactly; the Windows 10 22H2 cohort 52%. */
    assert_int_equal(fleet_gen_cohort_size(gen, SCENARIO_ATTR_SENSOR, 0), 800000);
    assert_int_equal(fleet_gen_cohort_size(gen, SCENARIO_ATTR_PROFILE, 0), 520000);
    /* Attributes are mixed independently: 7.11 is ~80% within a profile too. */
    uint64_t in_profile = 0, with_711 = 0;
    for (uint64_t i = 0; i < 100000; i++) {
        fleet_endpoint e;
        fleet_gen_endpoint(gen, i, &e);
        if (e.profile == 1) {
            in_profile++;
            with_711 += e.sensor == 0;
        }
    }
    assert_true(with_711 * 100 > in_profile * 77 && with_711 * 100 < in_profile * 83);
    fleet_gen_destroy(gen);
    scenario_destroy(s);
}

/* ---- allocation failures ------------------------------------------------- */

static void parse_survives_every_allocation_failure(void **state)
{
    (void)state;
    const char *text = SNIP_FULL;
    char err[512];
    int failures = 0;
    for (uint64_t n = 1; n < 10000; n++) {
        scenario *s = (scenario *)1;
        sim_alloc_fail_after(n);
        int rc = scenario_parse(text, strlen(text), "snip.yaml", 0, &s, err, sizeof err);
        sim_alloc_fail_after(0);
        if (rc == 0) {
            scenario_destroy(s);
            break;
        }
        assert_int_equal(rc, SIM_ENOMEM);
        assert_null(s);
        failures++;
    }
    assert_true(failures > 20);

    /* The inventory, and generation. */
    scenario *s = NULL;
    const char *inv = SNIP_HEAD SNIP_INVENTORY_FLEET SNIP_UPDATE;
    assert_int_equal(scenario_parse(inv, strlen(inv), "snip.yaml", SCENARIO_NO_FILES, &s, err,
                                    sizeof err), 0);
    failures = 0;
    for (uint64_t n = 1; n < 10000; n++) {
        sim_alloc_fail_after(n);
        int rc = scenario_load_inventory(s, SNIP_CSV_EXTRA, strlen(SNIP_CSV_EXTRA), err,
                                         sizeof err);
        sim_alloc_fail_after(0);
        if (rc == 0)
            break;
        assert_int_equal(rc, SIM_ENOMEM);
        assert_false(s->inventory_loaded);
        assert_int_equal(s->nextra, 0);
        failures++;
    }
    assert_true(failures > 5);
    assert_int_equal(s->fleet_size, 4);
    assert_int_equal(s->nextra, 2);
    scenario_destroy(s);

    s = parse_ok(SNIP_FULL);
    failures = 0;
    for (uint64_t n = 1; n < 1000; n++) {
        fleet_endpoint *eps = (fleet_endpoint *)1;
        uint64_t first, count;
        sim_alloc_fail_after(n);
        int rc = fleet_generate(s, 1, 3, &eps, &first, &count, err, sizeof err);
        sim_alloc_fail_after(0);
        if (rc == 0) {
            sim_free(eps);
            break;
        }
        assert_int_equal(rc, SIM_ENOMEM);
        assert_null(eps);
        failures++;
    }
    assert_true(failures > 5);
    scenario_destroy(s);
}

static void arguments_are_checked(void **state)
{
    (void)state;
    char err[64];
    scenario *s;
    assert_int_equal(scenario_parse("x", 1, NULL, 0, &s, err, sizeof err), SIM_EINVAL);
    assert_int_equal(scenario_parse("x", 1, "p", 0, NULL, err, sizeof err), SIM_EINVAL);
    assert_int_equal(scenario_load_inventory(NULL, "", 0, err, sizeof err), SIM_EINVAL);
    scenario_destroy(NULL);
    fleet_gen_destroy(NULL);
    s = parse_ok(SNIP_BASE);
    /* An inventory cannot be loaded into a fleet made of shares. */
    assert_int_equal(scenario_load_inventory(s, SNIP_CSV, strlen(SNIP_CSV), err, sizeof err),
                     SIM_EINVAL);
    fleet_endpoint *eps;
    uint64_t first, count;
    assert_int_equal(fleet_generate(s, 3, 3, &eps, &first, &count, err, sizeof err), SIM_EINVAL);
    fleet_gen *gen;
    assert_int_equal(fleet_gen_create(s, &gen, err, sizeof err), 0);
    fleet_endpoint one;
    assert_int_equal(fleet_gen_range(gen, 999, 2, &one), SIM_ERANGE);
    assert_int_equal(fleet_gen_range(gen, 999, 1, &one), 0);
    assert_int_equal(one.id, 999);
    assert_int_equal(fleet_gen_cohort_size(gen, SCENARIO_ATTR_PROFILE, 2), 0);
    fleet_gen_destroy(gen);
    scenario_destroy(s);
    assert_string_equal(scenario_attr_name(SCENARIO_ATTR_TENANT), "tenant");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durations_are_strict),
        cmocka_unit_test(times_are_strict),
        cmocka_unit_test(shares_are_strict),
        cmocka_unit_test(example_scenario_parses),
        cmocka_unit_test(channel_file_291_parses),
        cmocka_unit_test(snippets_parse_with_defaults),
        cmocka_unit_test(errors_point_at_line_and_column),
        cmocka_unit_test(names_are_checked_against_the_catalog),
        cmocka_unit_test(inventory_loads),
        cmocka_unit_test(inventory_extra_columns_are_attributes),
        cmocka_unit_test(inventory_errors_name_the_row),
        cmocka_unit_test(many_tenants_parse),
        cmocka_unit_test(content_lists_are_bounded),
        cmocka_unit_test(content_resolves_through_the_search_list),
        cmocka_unit_test(overrides_replace_values),
        cmocka_unit_test(delays_are_drawn_from_their_distribution),
        cmocka_unit_test(apportionment_is_largest_remainder),
        cmocka_unit_test(same_seed_same_fleet),
        cmocka_unit_test(shards_parse_and_split_evenly),
        cmocka_unit_test(cohorts_match_shares),
        cmocka_unit_test(parse_survives_every_allocation_failure),
        cmocka_unit_test(arguments_are_checked),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
