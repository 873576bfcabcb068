/*
 * test_bugs.c — the bug-class images (images/bugs/), end to end.
 *
 * offsets.sys reads EPROCESS.SeAuditProcessCreationInfo at an offset it
 * takes from a per-build table that lacks Windows 11 24H2 (26100), and
 * falls back to the newest layout it knows.  Across a fleet of profiles
 * that lay the EPROCESS out as each build really does, it must crash on
 * 26100 only, at the first process creation, and run clean on every other
 * build.  What it reads on 26100 is whatever lies at 0x5c0 of a 24H2
 * EPROCESS: fleetsim fills the bytes of an EPROCESS that are no field the
 * profile names with small integers (at most 20 bits), so the "pointer" is
 * NULL-class or user-class and the read through it is an access violation
 * at PASSIVE_LEVEL: 0x7E with 0xC0000005, never 0x50.  That is what the
 * tests assert, for several seeds.
 *
 * overflow.sys parses a rule file whose table size is kept in a UCHAR: 17
 * rules wrap to 16 bytes, the copy overruns into the next pool block's
 * header, and nothing faults until the driver frees the table in another
 * function.  The crash must be 0x19 on a legacy-pool profile and 0x13A on
 * a segment-heap one, with the free routine (FreeRuleSet) as the first
 * driver frame and the parser (ParseRules) nowhere on the stack; the good
 * record runs clean on both.
 *
 * The profiles are built here from sim_profile_default() with the build
 * numbers, pool kinds and EPROCESS offsets of the real builds.  When the
 * profile files and their loader exist ($FLEETSIM_PROFILES, or
 * sim/profiles under $FLEETSIM_SOURCE), the offsets test runs over them
 * too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "support.h"
#include "expect.h"

#define OVERFLOW_RECORD_PATH "\\SystemRoot\\System32\\drivers\\overflow\\record.bin"
#define PROCESS_PATH "\\Device\\HarddiskVolume3\\Windows\\System32\\notepad.exe"
#define MISSING_BUILD 26100u   /* the build offsets.c's table lacks */
#define NSEEDS 6u

/*
 * Until the loader lands, sim_profile_load_dir may be absent from libsim:
 * a weak reference lets this file link either way.  Drop it once
 * sim/profiles and the loader are in.
 */
#pragma weak sim_profile_load_dir
#pragma weak sim_profile_list_destroy

/* ---- profiles ------------------------------------------------------------- */

/* The EPROCESS fields sim.h names, in this order. */
static const char *const field_names[] = {
    "EPROCESS.UniqueProcessId",
    "EPROCESS.ActiveProcessLinks",
    "EPROCESS.Token",
    "EPROCESS.InheritedFromUniqueProcessId",
    "EPROCESS.Peb",
    "EPROCESS.ImageFileName",
    "EPROCESS.SeAuditProcessCreationInfo",
};
#define NFIELDS (sizeof field_names / sizeof field_names[0])

/* Real builds and their EPROCESS layouts (from each build's symbols). */
static const struct build_layout {
    const char *name;
    uint32_t major, minor, build;
    sim_pool_kind pool;
    uint32_t offsets[NFIELDS];
} layouts[] = {
    {"win7-sp1", 6, 1, 7601, SIM_POOL_LEGACY,
     {0x180, 0x188, 0x208, 0x290, 0x338, 0x2e0, 0x390}},
    {"ws2012r2", 6, 3, 9600, SIM_POOL_LEGACY,
     {0x2e0, 0x2e8, 0x348, 0x3e0, 0x3e8, 0x438, 0x450}},
    {"win10-1607", 10, 0, 14393, SIM_POOL_LEGACY,
     {0x2e8, 0x2f0, 0x358, 0x3e0, 0x3f8, 0x450, 0x468}},
    {"win10-1809", 10, 0, 17763, SIM_POOL_LEGACY,
     {0x2e0, 0x2e8, 0x358, 0x3e0, 0x3f8, 0x450, 0x468}},
    {"win10-21h2", 10, 0, 19044, SIM_POOL_SEGMENT_HEAP,
     {0x440, 0x448, 0x4b8, 0x540, 0x550, 0x5a8, 0x5c0}},
    {"win10-22h2", 10, 0, 19045, SIM_POOL_SEGMENT_HEAP,
     {0x440, 0x448, 0x4b8, 0x540, 0x550, 0x5a8, 0x5c0}},
    {"ws2022", 10, 0, 20348, SIM_POOL_SEGMENT_HEAP,
     {0x440, 0x448, 0x4b8, 0x540, 0x550, 0x5a8, 0x5c0}},
    {"win11-22h2", 10, 0, 22621, SIM_POOL_SEGMENT_HEAP,
     {0x440, 0x448, 0x4b8, 0x540, 0x550, 0x5a8, 0x5c0}},
    {"win11-23h2", 10, 0, 22631, SIM_POOL_SEGMENT_HEAP,
     {0x440, 0x448, 0x4b8, 0x540, 0x550, 0x5a8, 0x5c0}},
    {"win11-24h2", 10, 0, 26100, SIM_POOL_SEGMENT_HEAP,
     {0x1d0, 0x1d8, 0x248, 0x2d0, 0x2e0, 0x338, 0x350}},
};
#define NLAYOUTS (sizeof layouts / sizeof layouts[0])

static sim_engine *engine;
static sim_image *offsets_image, *overflow_image;
static sim_profile fleet[NLAYOUTS];
static sim_profile profile_legacy, profile_segment;
static uint8_t *record_good, *record_bad;
static size_t record_good_size, record_bad_size;
static sim_outcome outcome, again;

static void make_profile(sim_profile *p, const struct build_layout *l)
{
    *p = *sim_profile_default();
    snprintf(p->name, sizeof p->name, "%s", l->name);
    snprintf(p->display, sizeof p->display, "test build %u", (unsigned)l->build);
    p->major = l->major;
    p->minor = l->minor;
    p->build = l->build;
    p->pool = l->pool;
    p->noffsets = NFIELDS;
    for (size_t i = 0; i < NFIELDS; i++) {
        snprintf(p->offsets[i].name, sizeof p->offsets[i].name, "%s", field_names[i]);
        p->offsets[i].value = l->offsets[i];
    }
}

/* $FLEETSIM_SOURCE/images/bugs/<name>, whole. */
static uint8_t *read_source_file(const char *name, size_t *size)
{
    const char *root = getenv("FLEETSIM_SOURCE");
    char path[4096];
    uint8_t *data;
    long n;
    FILE *f;

    if (root == NULL || root[0] == '\0')
        fail_msg("FLEETSIM_SOURCE is not set (run the tests with meson test)");
    snprintf(path, sizeof path, "%s/images/bugs/%s", root, name);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc(n > 0 ? (size_t)n : 1);
    if (data == NULL || n <= 0 || fread(data, 1, (size_t)n, f) != (size_t)n)
        fail_msg("cannot read %s", path);
    fclose(f);
    *size = (size_t)n;
    return data;
}

static int setup(void **state)
{
    (void)state;
    engine = support_engine();
    offsets_image = support_image("offsets");
    overflow_image = support_image("overflow");
    for (size_t i = 0; i < NLAYOUTS; i++)
        make_profile(&fleet[i], &layouts[i]);
    profile_legacy = *sim_profile_default();
    profile_legacy.pool = SIM_POOL_LEGACY;
    profile_legacy.pool_zeroed = false;
    profile_segment = *sim_profile_default();
    profile_segment.pool = SIM_POOL_SEGMENT_HEAP;
    profile_segment.pool_zeroed = false;
    record_good = read_source_file("overflow-good.bin", &record_good_size);
    record_bad = read_source_file("overflow-bad.bin", &record_bad_size);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sim_engine_destroy(engine);
    sim_image_destroy(offsets_image);
    sim_image_destroy(overflow_image);
    free(record_good);
    free(record_bad);
    return 0;
}

/* ---- checks that show the whole outcome when they fail ------------------- */


static void expect_ok(const sim_outcome *out, const char *profile)
{
    EXPECT(out, out->kind == SIM_OUTCOME_OK, "%s: outcome %s (0x%X), want ok", profile,
           sim_outcome_name(out->kind), out->bugcheck);
    EXPECT(out, out->status_valid, "%s: DriverEntry did not return", profile);
    EXPECT_U64(out, out->status, SIM_STATUS_SUCCESS);
}

static void expect_bugcheck(const sim_outcome *out, uint32_t code, const char *profile)
{
    EXPECT(out, out->kind == SIM_OUTCOME_BUGCHECK, "%s: outcome %s, want bugcheck 0x%X",
           profile, sim_outcome_name(out->kind), code);
    EXPECT(out, out->bugcheck == code, "%s: bugcheck 0x%X, want 0x%X", profile,
           out->bugcheck, code);
}

/* The first frame in `image` (frames in nt come first for a bugcheck an
 * export raises), or -1. */
static int first_driver_frame(const sim_outcome *out, const sim_image *image)
{
    for (int i = 0; i < out->nframes && i < SIM_MAX_FRAMES; i++)
        if (strcmp(out->stack[i].module, image->module) == 0)
            return i;
    return -1;
}

static bool stack_has(const sim_outcome *out, const char *function)
{
    for (int i = 0; i < out->nframes && i < SIM_MAX_FRAMES; i++)
        if (strcmp(out->stack[i].function, function) == 0)
            return true;
    return false;
}

/* ---- offsets.sys ---------------------------------------------------------- */

static const sim_event process_create = {
    SIM_EVENT_PROCESS_CREATE, 1000, 4242, 668, PROCESS_PATH,
};

static void run_offsets(const sim_profile *profile, uint64_t seed, sim_outcome *out)
{
    sim_run run;

    memset(&run, 0, sizeof run);
    run.image = offsets_image;
    run.profile = profile;
    run.seed = seed;
    run.events = &process_create;
    run.nevents = 1;
    memset(out, 0, sizeof *out);
    support_run_full(engine, &run, out);
}

/* A build in the table: DriverEntry succeeds and the event prints the name. */
static void expect_offsets_clean(const sim_outcome *out, const sim_profile *p)
{
    char line[96];

    expect_ok(out, p->name);
    EXPECT_U64(out, out->events_delivered, 1);
    snprintf(line, sizeof line, "offsets: build %u, SeAuditProcessCreationInfo at 0x",
             (unsigned)p->build);
    EXPECT_HAS(out, out->log, line);
    EXPECT_HAS(out, out->log, "offsets: process 4242 is notepad.exe\n");
}

/*
 * The build the table lacks: the driver says it falls back, registers, and
 * crashes at the process creation reading through the wrong field.
 */
static void expect_offsets_fault(const sim_outcome *out, const sim_profile *p)
{
    const sim_fault *f = &out->fault;
    char line[96];

    expect_bugcheck(out, SIM_BUGCHECK_SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, p->name);
    EXPECT_U64(out, out->params[0], SIM_STATUS_ACCESS_VIOLATION);
    EXPECT_U64(out, out->params[1], f->rip);
    snprintf(line, sizeof line, "offsets: build %u not in the table, using the newest known",
             (unsigned)p->build);
    EXPECT_HAS(out, out->log, line);
    EXPECT_HAS(out, out->log, "offsets: watching process creation\n");
    EXPECT(out, strstr(out->log, "offsets: process ") == NULL, "%s: a name was printed",
           p->name);
    EXPECT_STR(out, out->phase, "process-create");
    EXPECT(out, out->has_fault, "no fault record");
    EXPECT_STR(out, f->module, "offsets");
    EXPECT_STR(out, f->function, "CopyImageBaseName");
    EXPECT(out, f->access == SIM_ACCESS_READ, "access %s", sim_access_name(f->access));
    /* Junk is at most 20 bits: NULL-class or user-class, never kernel. */
    EXPECT(out, f->address_class == SIM_ADDR_NULL || f->address_class == SIM_ADDR_USER,
           "address class %s", sim_addr_class_name(f->address_class));
    EXPECT(out, f->address < (1ull << 20), "address 0x%" PRIx64 " is not junk", f->address);
    EXPECT_U64(out, f->irql, 0);
    EXPECT_STR(out, out->stack[0].function, "CopyImageBaseName");
    EXPECT(out, out->nframes >= 3, "only %d frames", out->nframes);
    EXPECT_STR(out, out->stack[1].function, "ReportProcess");
    EXPECT_STR(out, out->stack[1].module, "offsets");
    EXPECT_STR(out, out->stack[2].function, "OnProcessNotify");
}

static void test_offsets_fleet(void **state)
{
    unsigned faulted = 0;

    (void)state;
    for (size_t i = 0; i < NLAYOUTS; i++) {
        const sim_profile *p = &fleet[i];

        for (uint64_t seed = 1; seed <= NSEEDS; seed++) {
            run_offsets(p, seed, &outcome);
            if (p->build == MISSING_BUILD) {
                expect_offsets_fault(&outcome, p);
                faulted++;
            } else {
                expect_offsets_clean(&outcome, p);
            }
        }
    }
    assert_int_equal(faulted, NSEEDS);
}

/* Same endpoint, same outcome: the junk is a function of the seed. */
static void test_offsets_deterministic(void **state)
{
    const sim_profile *p = &fleet[NLAYOUTS - 1];

    (void)state;
    assert_int_equal(p->build, MISSING_BUILD);
    run_offsets(p, 7, &outcome);
    run_offsets(p, 7, &again);
    expect_offsets_fault(&outcome, p);
    EXPECT_U64(&again, again.bugcheck, outcome.bugcheck);
    EXPECT_U64(&again, again.fault.rip, outcome.fault.rip);
    EXPECT_U64(&again, again.fault.address, outcome.fault.address);
    EXPECT_U64(&again, again.instructions, outcome.instructions);
}

/* Without a process creation the bad offset is never used. */
static void test_offsets_no_event(void **state)
{
    sim_run run;

    (void)state;
    memset(&run, 0, sizeof run);
    run.image = offsets_image;
    run.profile = &fleet[NLAYOUTS - 1];
    run.seed = 1;
    memset(&outcome, 0, sizeof outcome);
    support_run_full(engine, &run, &outcome);
    expect_ok(&outcome, run.profile->name);
    EXPECT_HAS(&outcome, outcome.log, "not in the table");
}

static const char *profiles_dir(char *buf, size_t len)
{
    const char *dir = getenv("FLEETSIM_PROFILES");
    const char *root = getenv("FLEETSIM_SOURCE");
    struct stat st;

    if (dir != NULL && dir[0] != '\0')
        return dir;
    if (root == NULL || root[0] == '\0')
        return NULL;
    snprintf(buf, len, "%s/sim/profiles", root);
    return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? buf : NULL;
}

/* The same over the profile files, when they and their loader exist. */
static void test_offsets_loaded_profiles(void **state)
{
    char buf[4096], err[512] = "";
    const char *dir = profiles_dir(buf, sizeof buf);
    sim_profile **list = NULL;
    size_t count = 0;
    unsigned missing = 0;
    int rc;

    (void)state;
    if (dir == NULL) {
        print_message("no profile directory yet: skipped\n");
        skip();
    }
    if (sim_profile_load_dir == NULL || sim_profile_list_destroy == NULL) {
        print_message("sim_profile_load_dir is not in libsim yet: skipped\n");
        skip();
    }
    rc = sim_profile_load_dir(dir, &list, &count, err, sizeof err);
    if (rc != 0)
        fail_msg("%s: %s (%s)", dir, err, sim_strerror(rc));
    assert_true(count >= 10);
    for (size_t i = 0; i < count; i++) {
        const sim_profile *p = list[i];
        uint32_t off;

        assert_true(sim_profile_offset(p, "EPROCESS.SeAuditProcessCreationInfo", &off));
        run_offsets(p, 1 + i, &outcome);
        if (p->build == MISSING_BUILD) {
            expect_offsets_fault(&outcome, p);
            missing++;
        } else {
            /* A failure here for a build in the table means the profile's
             * offset and offsets.c's disagree: one of them is wrong. */
            expect_offsets_clean(&outcome, p);
        }
    }
    sim_profile_list_destroy(list, count);
    assert_true(missing >= 1);
}

/* ---- overflow.sys --------------------------------------------------------- */

static void run_overflow(const sim_profile *profile, const uint8_t *data, size_t size,
                         sim_outcome *out)
{
    sim_file file = {OVERFLOW_RECORD_PATH, data, size, 0};
    sim_run run;

    memset(&run, 0, sizeof run);
    run.image = overflow_image;
    run.profile = profile;
    run.seed = 3;
    run.files = &file;
    run.nfiles = 1;
    memset(out, 0, sizeof *out);
    support_run_full(engine, &run, out);
}

/*
 * The crash is the free's, not the parser's: the first driver frame is
 * FreeRuleSet (called from DriverEntry), the parser has returned and is on
 * no frame, and the log shows the parse succeeded before anything failed.
 */
static void expect_crash_in_free(const sim_outcome *out, const char *profile)
{
    int at = first_driver_frame(out, overflow_image);

    EXPECT(out, !out->status_valid, "%s: DriverEntry returned after a bugcheck", profile);
    EXPECT_STR(out, out->phase, "DriverEntry");
    EXPECT_HAS(out, out->log, "overflow: parsed 17 rules (16 bytes)\n");
    EXPECT(out, strstr(out->log, "overflow: done") == NULL, "%s: the run went on", profile);
    EXPECT(out, at >= 0, "%s: no frame in %s", profile, overflow_image->module);
    EXPECT_STR(out, out->stack[at].function, "FreeRuleSet");
    EXPECT(out, at + 1 < out->nframes, "%s: FreeRuleSet has no caller", profile);
    EXPECT_STR(out, out->stack[at + 1].function, "DriverEntry");
    EXPECT(out, !stack_has(out, "ParseRules"), "%s: ParseRules is on the stack", profile);
    if (out->has_fault)
        EXPECT(out, strcmp(out->fault.function, "ParseRules") != 0,
               "%s: the fault is blamed on the parser", profile);
}

static void test_overflow_bad_legacy(void **state)
{
    (void)state;
    run_overflow(&profile_legacy, record_bad, record_bad_size, &outcome);
    expect_bugcheck(&outcome, SIM_BUGCHECK_BAD_POOL_HEADER, "legacy");
    EXPECT_U64(&outcome, outcome.params[0], 0x20);
    /* p2 the rule table's header, p3 the next block's: 16 bytes + header. */
    EXPECT_U64(&outcome, outcome.params[2] - outcome.params[1], 32);
    expect_crash_in_free(&outcome, "legacy");
}

static void test_overflow_bad_segment(void **state)
{
    (void)state;
    run_overflow(&profile_segment, record_bad, record_bad_size, &outcome);
    expect_bugcheck(&outcome, SIM_BUGCHECK_KERNEL_MODE_HEAP_CORRUPTION, "segment heap");
    EXPECT_U64(&outcome, outcome.params[0], 0x6);   /* a buffer overrun */
    expect_crash_in_free(&outcome, "segment heap");
}

/* The fleet's pools: legacy builds 0x19, segment-heap builds 0x13A. */
static void test_overflow_bad_fleet(void **state)
{
    (void)state;
    for (size_t i = 0; i < NLAYOUTS; i++) {
        const sim_profile *p = &fleet[i];

        run_overflow(p, record_bad, record_bad_size, &outcome);
        expect_bugcheck(&outcome,
                        p->pool == SIM_POOL_LEGACY ? SIM_BUGCHECK_BAD_POOL_HEADER
                                                   : SIM_BUGCHECK_KERNEL_MODE_HEAP_CORRUPTION,
                        p->name);
        expect_crash_in_free(&outcome, p->name);
    }
}

static void test_overflow_good(void **state)
{
    const sim_profile *profiles[2] = {&profile_legacy, &profile_segment};

    (void)state;
    for (int i = 0; i < 2; i++) {
        run_overflow(profiles[i], record_good, record_good_size, &outcome);
        expect_ok(&outcome, i ? "segment heap" : "legacy");
        EXPECT_HAS(&outcome, outcome.log, "overflow: parsed 3 rules (48 bytes)\n");
        EXPECT_HAS(&outcome, outcome.log, "overflow: 3 rules active\n");
        EXPECT_HAS(&outcome, outcome.log, "overflow: done\n");
    }
}

/* No record at all: nothing to parse, nothing to corrupt. */
static void test_overflow_no_record(void **state)
{
    (void)state;
    memset(&outcome, 0, sizeof outcome);
    support_run(engine, overflow_image, &profile_segment, 3, &outcome);
    expect_ok(&outcome, "segment heap");
    EXPECT_HAS(&outcome, outcome.log, "overflow: no record.bin");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets_fleet),
        cmocka_unit_test(test_offsets_deterministic),
        cmocka_unit_test(test_offsets_no_event),
        cmocka_unit_test(test_offsets_loaded_profiles),
        cmocka_unit_test(test_overflow_bad_legacy),
        cmocka_unit_test(test_overflow_bad_segment),
        cmocka_unit_test(test_overflow_bad_fleet),
        cmocka_unit_test(test_overflow_good),
        cmocka_unit_test(test_overflow_no_record),
    };

    return cmocka_run_group_tests_name("bugs", tests, setup, teardown);
}
