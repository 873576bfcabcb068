/*
 * test_sensor.c — the sample sensor (images/sensor/) and the Channel File
 * 291 content, end to end: the built sensor-7.1x.sys images run on the
 * content files the build compiled (scenarios/content/ → FLEETSIM_CONTENT)
 * with a stream of OS events, as issue 3's "Done when" lists:
 *
 *   - 7.11 with the 04:09 content bugchecks 0x50 at a named-pipe event, in
 *     the interpreter's 32-bit dereference of the stale pointer it read
 *     past the 20 inputs, with the interpreter's functions on the stack; on
 *     every shipped profile when sim/profiles/ is there;
 *   - the content as shipped before and the 05:27 revert run clean;
 *   - 7.16 refuses the bad instance and says why; 7.10 ignores IPC
 *     instances and says so;
 *   - a channel file that arrives while the sensor runs is loaded without a
 *     reboot, and at boot the newest version of a channel on disk wins;
 *   - the validator rejects 04:09 for 7.11 naming instance and field, and
 *     compiling is deterministic.
 *
 * What lies past the 20 inputs is stale pool: a kernel-pointer-like value
 * on some endpoints, a small integer or zero on others (sim/pool.c).  So a
 * crash is a property of an endpoint's seed, and the tests look at a range
 * of seeds: every crash must be the interpreter's, and the pointer-like
 * ones must be 0x50 exactly as Microsoft's analysis of the dumps shows.
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

#include "content.h"
#include "support.h"
#include "expect.h"

#define SEEDS 24u
#define FOLDER "\\SystemRoot\\System32\\drivers\\sensor\\"
#define PRE "C-00000291-00000000-00000032.sys"     /* before 19 July 2024 */
#define BAD "C-00000291-00000000-00000033.sys"     /* 04:09 UTC */
#define REVERT "C-00000291-00000000-00000034.sys"  /* 05:27 UTC */
#define CLEAN "C-00000292-00000000-00000008.sys"   /* a second channel */

static sim_engine *engine;
static sim_image *sensor10, *sensor11, *sensor16;
static sim_outcome outcome;

typedef struct blob {
    uint8_t *data;
    size_t size;
} blob;

/* ---- helpers ------------------------------------------------------------- */

static blob read_blob(const char *path)
{
    blob b = {NULL, 0};

    if (sim_read_file(path, 0, &b.data, &b.size) != 0) {
        fprintf(stderr, "test-sensor: cannot read %s\n", path);
        abort();
    }
    return b;
}

/* A compiled content file from the build. */
static blob content(const char *name)
{
    const char *dir = getenv("FLEETSIM_CONTENT");
    char path[4096];

    if (dir == NULL || dir[0] == '\0') {
        fprintf(stderr, "test-sensor: FLEETSIM_CONTENT is not set (run with meson test)\n");
        abort();
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return read_blob(path);
}

static char *source_path(const char *name, char *path, size_t max)
{
    const char *root = getenv("FLEETSIM_SOURCE");

    snprintf(path, max, "%s/scenarios/content/%s", root ? root : ".", name);
    return path;
}

/* Files of one endpoint: names in the sensor's folder, bytes, arrival. */
typedef struct disk {
    sim_file files[4];
    char paths[4][160];
    blob blobs[4];
    size_t n;
} disk;

static void disk_add(disk *d, const char *name, uint64_t at_ms)
{
    assert_true(d->n < 4);
    snprintf(d->paths[d->n], sizeof d->paths[d->n], FOLDER "%s", name);
    d->blobs[d->n] = content(name);
    d->files[d->n].path = d->paths[d->n];
    d->files[d->n].data = d->blobs[d->n].data;
    d->files[d->n].size = d->blobs[d->n].size;
    d->files[d->n].at_ms = at_ms;
    d->n++;
}

static void disk_free(disk *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->blobs[i].data);
    d->n = 0;
}

/* An ordinary start of a machine: a service host, then its pipes. */
static const sim_event boot_events[] = {
    {SIM_EVENT_PROCESS_CREATE, 800, 612, 4,
     "\\Device\\HarddiskVolume3\\Windows\\System32\\svchost.exe"},
    {SIM_EVENT_PIPE_CREATE, 1000, 612, 4, "\\Device\\NamedPipe\\srvsvc"},
    {SIM_EVENT_PIPE_CREATE, 1200, 612, 4, "\\Device\\NamedPipe\\lsarpc"},
    {SIM_EVENT_PIPE_CREATE, 1500, 2044, 612, "\\Device\\NamedPipe\\msagent_5c"},
};
#define NBOOT (sizeof boot_events / sizeof boot_events[0])

static sim_run make_run(const sim_image *image, const sim_profile *profile, const disk *d,
                        const sim_event *events, size_t nevents, uint64_t seed)
{
    sim_run run;

    memset(&run, 0, sizeof run);
    run.image = image;
    run.profile = profile ? profile : sim_profile_default();
    run.seed = seed;
    run.files = d->files;
    run.nfiles = d->n;
    run.events = events;
    run.nevents = nevents;
    return run;
}

static void run(const sim_image *image, const sim_profile *profile, const disk *d,
                const sim_event *events, size_t nevents, uint64_t seed)
{
    sim_run r = make_run(image, profile, d, events, nevents, seed);

    memset(&outcome, 0, sizeof outcome);
    support_run_full(engine, &r, &outcome);
}

/* The frames f0 <- f1 <- ... appear in order, all in the sensor. */
static void expect_frames(const sim_outcome *out, const char *const *names, int n)
{
    for (int at = 0; at + n <= out->nframes; at++) {
        int i;
        for (i = 0; i < n; i++)
            if (strcmp(out->stack[at + i].function, names[i]) != 0 ||
                strcmp(out->stack[at + i].module, "sensor") != 0)
                break;
        if (i == n)
            return;
    }
    support_dump(out);
    fail_msg("the stack does not show %s <- %s <- %s <- %s", names[0], names[1], names[2],
             names[3]);
}

typedef struct tally {
    unsigned ok, page_fault, other_crash, first_pipe;
    uint64_t seed_0x50;   /* a seed that gave 0x50, 0 if none */
} tally;

/*
 * One endpoint with the 04:09 content on sensor 7.11: either it runs
 * clean (the slot past the inputs was NULL on every pipe), or it crashes
 * in the interpreter at a named-pipe event.
 */
static void check_ipc_crash(const sim_outcome *out, uint64_t seed, uint32_t first_pipe,
                            tally *t)
{
    static const char *const chain[] = {"ReadInputField", "MatchInstance",
                                        "EvaluateTemplateInstances", "OnPipeCreate"};

    if (out->kind == SIM_OUTCOME_OK) {
        t->ok++;
        return;
    }
    EXPECT(out, out->kind == SIM_OUTCOME_BUGCHECK, "seed %" PRIu64 ": outcome %s", seed,
           sim_outcome_name(out->kind));
    EXPECT(out, strcmp(out->phase, "pipe-create") == 0, "seed %" PRIu64 ": phase \"%s\"",
           seed, out->phase);
    EXPECT(out, out->has_fault, "no fault record");
    EXPECT(out, strcmp(out->fault.module, "sensor") == 0 &&
                strcmp(out->fault.function, "ReadInputField") == 0,
           "fault in %s!%s, want sensor!ReadInputField", out->fault.module,
           out->fault.function);
    /* mov r32, dword ptr [r64]: the input's 32-bit length, through the pointer. */
    EXPECT_HAS(out, out->fault.instruction, "mov e");
    EXPECT_HAS(out, out->fault.instruction, "dword ptr [r");
    expect_frames(out, chain, 4);
    if (out->events_delivered == first_pipe)
        t->first_pipe++;
    if (out->bugcheck == SIM_BUGCHECK_PAGE_FAULT_IN_NONPAGED_AREA) {
        /* A stale kernel pointer: non-NULL, kernel half, unmapped. */
        EXPECT(out, out->params[0] != 0 && out->params[0] == out->fault.address,
               "params[0] %" PRIx64 " is not the address read", out->params[0]);
        EXPECT(out, out->fault.address_class == SIM_ADDR_KERNEL,
               "address class %s", sim_addr_class_name(out->fault.address_class));
        EXPECT(out, (out->params[0] >> 40) == 0xFFFF84u,
               "params[0] %016" PRIx64 " is not a stale pool pointer", out->params[0]);
        EXPECT(out, out->params[2] == out->fault.rip, "params[2] is not the RIP");
        EXPECT(out, out->fault.access == SIM_ACCESS_READ, "not a read");
        t->page_fault++;
        if (t->seed_0x50 == 0)
            t->seed_0x50 = seed;
    } else {
        /* A stale small integer: a NULL-page read at PASSIVE_LEVEL. */
        EXPECT(out, out->bugcheck == SIM_BUGCHECK_SYSTEM_THREAD_EXCEPTION_NOT_HANDLED,
               "bugcheck 0x%X", out->bugcheck);
        t->other_crash++;
    }
}

/* The 1-based position of the first named pipe in an event stream. */
static uint32_t first_pipe_at(const sim_event *events, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (events[i].kind == SIM_EVENT_PIPE_CREATE)
            return (uint32_t)i + 1;
    return 0;
}

/*
 * sensor-7.11 with the 04:09 content on `profile` over SEEDS endpoints.
 * With `events` NULL each endpoint gets its own draw of the profile's
 * event stream (sim_profile_events); else the given stream.
 */
static void ipc_crash_on(const sim_profile *profile, const sim_event *events, size_t nevents,
                         const char *label)
{
    sim_event drawn[256];
    disk d = {0};
    tally t = {0};

    disk_add(&d, BAD, 0);
    disk_add(&d, CLEAN, 0);
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        const sim_event *ev = events;
        size_t n = nevents;

        if (ev == NULL) {
            n = sim_profile_events(profile, seed, drawn, sizeof drawn / sizeof drawn[0]);
            ev = drawn;
        }
        assert_true(first_pipe_at(ev, n) > 0);
        run(sensor11, profile, &d, ev, n, seed);
        EXPECT_HAS(&outcome, outcome.log, "loaded " BAD ": channel 291 version 33, 7 instances "
                                          "active");
        check_ipc_crash(&outcome, seed, first_pipe_at(ev, n), &t);
    }
    printf("%s: %u seeds: %u x 0x50, %u x 0x7E, %u ok; %u crashed at the first pipe\n",
           label, SEEDS, t.page_fault, t.other_crash, t.ok, t.first_pipe);
    if (t.page_fault == 0)
        fail_msg("%s: no seed in 1..%u gave 0x50", label, SEEDS);
    assert_true(t.first_pipe > 0);
    disk_free(&d);
}

/* ---- 7.11 and the 04:09 content ---------------------------------------- */

static void test_ipc_crash_default_profile(void **state)
{
    (void)state;
    ipc_crash_on(NULL, boot_events, NBOOT, sim_profile_default()->name);
}

/* The same on every shipped profile, with the profile's own events. */
static void test_ipc_crash_every_profile(void **state)
{
    const char *dir = getenv("FLEETSIM_PROFILES");
    sim_profile **profiles = NULL;
    size_t count = 0;
    char err[512] = "";
    struct stat st;

    (void)state;
    if (dir == NULL || stat(dir, &st) != 0) {
        skip();
        return;
    }
    assert_int_equal(sim_profile_load_dir(dir, &profiles, &count, err, sizeof err), 0);
    assert_true(count > 0);
    for (size_t i = 0; i < count; i++) {
        bool pipe = false;

        for (size_t k = 0; k < profiles[i]->nevents; k++)
            pipe |= profiles[i]->events[k].kind == SIM_EVENT_PIPE_CREATE;
        /* A profile without named pipes gets the machine's usual ones. */
        if (pipe)
            ipc_crash_on(profiles[i], NULL, 0, profiles[i]->name);
        else
            ipc_crash_on(profiles[i], boot_events, NBOOT, profiles[i]->name);
    }
    sim_profile_list_destroy(profiles, count);
}

/* Both allocator paths leave the slot stale: a build without ExAllocatePool2. */
static void test_ipc_crash_without_pool2(void **state)
{
    sim_profile old = *sim_profile_default();

    (void)state;
    snprintf(old.name, sizeof old.name, "win10-1809-like");
    old.build = 17763;
    old.absent[old.nabsent++] = "ExAllocatePool2";
    ipc_crash_on(&old, boot_events, NBOOT, old.name);
    run(sensor11, &old, &(disk){0}, NULL, 0, 1);
    EXPECT_HAS(&outcome, outcome.log, "pool allocator ExAllocatePoolWithTag");
    run(sensor11, NULL, &(disk){0}, NULL, 0, 1);
    EXPECT_HAS(&outcome, outcome.log, "pool allocator ExAllocatePool2");
}

/* ---- clean content and fixed sensors -------------------------------------- */

static void expect_clean(const sim_image *image, const char *file, const char *const *lines,
                         size_t nlines)
{
    disk d = {0};

    disk_add(&d, file, 0);
    disk_add(&d, CLEAN, 0);
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        run(image, NULL, &d, boot_events, NBOOT, seed);
        EXPECT(&outcome, outcome.kind == SIM_OUTCOME_OK, "%s with %s, seed %" PRIu64 ": %s",
               image->name, file, seed, sim_outcome_name(outcome.kind));
        EXPECT(&outcome, outcome.events_delivered == NBOOT, "%u events delivered",
               outcome.events_delivered);
        for (size_t i = 0; i < nlines; i++)
            EXPECT_HAS(&outcome, outcome.log, lines[i]);
    }
    disk_free(&d);
}

static void test_pre_incident_content_runs_clean(void **state)
{
    static const char *const lines[] = {
        "loaded " PRE ": channel 291 version 32, 5 instances active",
        "detection: channel 291 instance 291001 (InterProcessCommunication, severity 5) "
        "on pipe-create \\Device\\NamedPipe\\msagent_5c",
    };

    (void)state;
    expect_clean(sensor11, PRE, lines, 2);
}

static void test_revert_runs_clean(void **state)
{
    static const char *const lines[] = {
        "loaded " REVERT ": channel 291 version 34, 5 instances active",
        "detection: channel 291 instance 291001",
    };

    (void)state;
    expect_clean(sensor11, REVERT, lines, 2);
}

static void test_716_refuses_the_bad_instance(void **state)
{
    static const char *const lines[] = {
        "sensor 7.16 starting",
        BAD ": instance 291006 refused: field 21 (RemoteClientName) has a criterion but the "
        "pipe-create event supplies 20 inputs",
        "loaded " BAD ": channel 291 version 33, 6 instances active, 1 refused",
        "detection: channel 291 instance 291001",
    };

    (void)state;
    expect_clean(sensor16, BAD, lines, 4);
}

static void test_710_ignores_ipc_instances(void **state)
{
    static const char *const lines[] = {
        "sensor 7.10 starting",
        BAD ": 7 instances of template types sensor 7.10 lacks ignored",
        "InterProcessCommunication",
        "loaded " BAD ": channel 291 version 33, 0 instances active, 0 refused, 7 ignored",
    };

    (void)state;
    expect_clean(sensor10, BAD, lines, 4);
    assert_null(strstr(outcome.log, "detection: channel 291"));
}

/* The clean second channel works on every version and detects. */
static void test_clean_channel_everywhere(void **state)
{
    static const sim_event events[] = {
        {SIM_EVENT_PROCESS_CREATE, 900, 3120, 612,
         "\\Device\\HarddiskVolume3\\Windows\\System32\\certutil.exe -urlcache -f http://x/a"},
        {SIM_EVENT_PIPE_CREATE, 1000, 612, 4, "\\Device\\NamedPipe\\srvsvc"},
    };
    const sim_image *images[] = {sensor10, sensor11, sensor16};
    disk d = {0};

    (void)state;
    disk_add(&d, CLEAN, 0);
    for (size_t i = 0; i < 3; i++) {
        run(images[i], NULL, &d, events, 2, 1);
        EXPECT(&outcome, outcome.kind == SIM_OUTCOME_OK, "%s: %s", images[i]->name,
               sim_outcome_name(outcome.kind));
        EXPECT_HAS(&outcome, outcome.log, "loaded " CLEAN ": channel 292 version 8, "
                                          "3 instances active, 0 refused, 0 ignored");
    }
    disk_free(&d);
}

/* ---- content that arrives while the sensor runs ------------------------- */

/*
 * 7.11 boots with the April content; the 04:09 file is written into its
 * folder at 5 s (a file-write event); the next named pipe hits it — no
 * reboot between.  The seed is one that gives 0x50 on this machine.
 */
static void test_runtime_update_is_loaded(void **state)
{
    char path[160];
    sim_event events[NBOOT + 2];
    disk d = {0};
    unsigned crashed = 0;

    (void)state;
    disk_add(&d, PRE, 0);
    disk_add(&d, BAD, 5000);
    snprintf(path, sizeof path, FOLDER BAD);
    memcpy(events, boot_events, sizeof boot_events);
    events[NBOOT] = (sim_event){SIM_EVENT_FILE_WRITE, 5000, 1884, 612, path};
    events[NBOOT + 1] = (sim_event){SIM_EVENT_PIPE_CREATE, 6000, 612, 4,
                                    "\\Device\\NamedPipe\\wkssvc"};
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        run(sensor11, NULL, &d, events, NBOOT + 2, seed);
        /* Before the update the April content runs clean at every pipe. */
        EXPECT(&outcome, outcome.events_delivered > NBOOT, "crashed before the update");
        EXPECT_HAS(&outcome, outcome.log, "loaded " PRE);
        EXPECT_HAS(&outcome, outcome.log, "new channel file " BAD " written while running");
        EXPECT_HAS(&outcome, outcome.log, "channel 291: version 33 replaces 32");
        if (outcome.kind == SIM_OUTCOME_BUGCHECK) {
            EXPECT(&outcome, outcome.events_delivered == NBOOT + 2 &&
                             strcmp(outcome.fault.function, "ReadInputField") == 0,
                   "not the pipe after the update");
            crashed++;
        }
    }
    assert_true(crashed > 0);

    /* Without the file-write event the file sits unnoticed until a reboot. */
    run(sensor11, NULL, &d, boot_events, NBOOT, 1);
    assert_int_equal(outcome.kind, SIM_OUTCOME_OK);
    assert_null(strstr(outcome.log, BAD));
    disk_free(&d);
}

/* At boot every file on disk is read; the newest version of a channel wins. */
static void test_boot_loads_newest_version(void **state)
{
    disk d = {0};

    (void)state;
    disk_add(&d, BAD, 0);
    disk_add(&d, REVERT, 0);
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        run(sensor11, NULL, &d, boot_events, NBOOT, seed);
        EXPECT(&outcome, outcome.kind == SIM_OUTCOME_OK, "seed %" PRIu64, seed);
        EXPECT_HAS(&outcome, outcome.log, "channel 291: version 34 replaces 33");
    }
    disk_free(&d);
}

/* The revert arriving before the first pipe saves the machine. */
static void test_revert_before_first_pipe(void **state)
{
    char path[160];
    sim_event events[NBOOT + 1];
    disk d = {0};

    (void)state;
    disk_add(&d, BAD, 0);
    disk_add(&d, REVERT, 500);
    snprintf(path, sizeof path, FOLDER REVERT);
    events[0] = (sim_event){SIM_EVENT_FILE_WRITE, 500, 1884, 612, path};
    memcpy(events + 1, boot_events, sizeof boot_events);
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        run(sensor11, NULL, &d, events, NBOOT + 1, seed);
        EXPECT(&outcome, outcome.kind == SIM_OUTCOME_OK, "seed %" PRIu64, seed);
        EXPECT_HAS(&outcome, outcome.log, "channel 291: version 34 replaces 33");
    }
    disk_free(&d);
}

/* ---- the content tools ---------------------------------------------------- */

static void test_validator_rejects_0409_for_711(void **state)
{
    content_file *file = NULL;
    content_report report;
    char path[4096], err[512];
    blob b = content(BAD);
    const content_finding *found = NULL;

    (void)state;
    /* The compiled file. */
    assert_int_equal(content_decode(b.data, b.size, &file, err, sizeof err), 0);
    assert_int_equal(content_validate(file, 11, &report), 0);
    assert_int_equal(report.errors, 1);
    for (unsigned i = 0; i < report.nfindings; i++)
        if (report.findings[i].severity == CONTENT_ERROR)
            found = &report.findings[i];
    assert_non_null(found);
    assert_int_equal(found->instance, 6);
    assert_int_equal(found->field, 21);
    assert_non_null(strstr(found->message, "instance 6 (id 291006) field 21 (RemoteClientName) "
                                           "is out of range"));
    assert_non_null(strstr(found->message, "supplies 20 inputs"));
    assert_int_equal(found->offset, 32 + 5 * (16 + 48 * 21) + 16 + 48 * 20);
    /* 7.16 refuses it (still an error: the content does not do what it says);
     * 7.10 has no IPC type at all. */
    assert_int_equal(content_validate(file, 16, &report), 0);
    assert_int_equal(report.errors, 1);
    assert_int_equal(content_validate(file, 10, &report), 0);
    assert_int_equal(report.errors, 0);
    assert_true(report.warnings > 0);
    content_file_destroy(file);
    free(b.data);

    /* The source: the finding points at the criterion's line. */
    assert_int_equal(content_load_yaml(source_path("C-00000291-00000000-00000033.yaml", path,
                                                   sizeof path), &file, err, sizeof err), 0);
    assert_int_equal(content_validate(file, 11, &report), 0);
    assert_int_equal(report.errors, 1);
    for (unsigned i = 0; i < report.nfindings; i++)
        if (report.findings[i].severity == CONTENT_ERROR)
            found = &report.findings[i];
    assert_true(found->pos.line > 0);
    assert_int_equal(found->field, 21);
    content_file_destroy(file);

    /* Everything else validates for every version. */
    static const char *const good[] = {PRE, REVERT, CLEAN};
    for (size_t i = 0; i < 3; i++) {
        b = content(good[i]);
        assert_int_equal(content_decode(b.data, b.size, &file, err, sizeof err), 0);
        for (unsigned v = 0; v < 3; v++) {
            static const unsigned versions[] = {10, 11, 16};
            assert_int_equal(content_validate(file, versions[v], &report), 0);
            if (report.errors != 0)
                fail_msg("%s on 7.%u: %s", good[i], versions[v], report.findings[0].message);
        }
        content_file_destroy(file);
        free(b.data);
    }
}

/* Compiling is a pure function of the source: twice the same bytes, and
 * the bytes the build made. */
static void test_compile_is_deterministic(void **state)
{
    static const char *const names[] = {PRE, BAD, REVERT, CLEAN};

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        char src[256], path[4096], err[512];
        uint8_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        content_file *file = NULL;
        blob built = content(names[i]);

        snprintf(src, sizeof src, "%.*s.yaml", (int)(strlen(names[i]) - 4), names[i]);
        source_path(src, path, sizeof path);
        for (int k = 0; k < 2; k++) {
            assert_int_equal(content_load_yaml(path, &file, err, sizeof err), 0);
            assert_int_equal(content_encode(file, k ? &b : &a, k ? &nb : &na, err, sizeof err),
                             0);
            content_file_destroy(file);
        }
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);
        assert_int_equal(na, built.size);
        assert_memory_equal(a, built.data, na);
        sim_free(a);
        sim_free(b);
        free(built.data);
    }
}

static int setup(void **state)
{
    (void)state;
    engine = support_engine();
    sensor10 = support_image("sensor-7.10");
    sensor11 = support_image("sensor-7.11");
    sensor16 = support_image("sensor-7.16");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sim_image_destroy(sensor10);
    sim_image_destroy(sensor11);
    sim_image_destroy(sensor16);
    sim_engine_destroy(engine);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipc_crash_default_profile),
        cmocka_unit_test(test_ipc_crash_every_profile),
        cmocka_unit_test(test_ipc_crash_without_pool2),
        cmocka_unit_test(test_pre_incident_content_runs_clean),
        cmocka_unit_test(test_revert_runs_clean),
        cmocka_unit_test(test_716_refuses_the_bad_instance),
        cmocka_unit_test(test_710_ignores_ipc_instances),
        cmocka_unit_test(test_clean_channel_everywhere),
        cmocka_unit_test(test_runtime_update_is_loaded),
        cmocka_unit_test(test_boot_loads_newest_version),
        cmocka_unit_test(test_revert_before_first_pipe),
        cmocka_unit_test(test_validator_rejects_0409_for_711),
        cmocka_unit_test(test_compile_is_deterministic),
    };

    return cmocka_run_group_tests_name("sensor", tests, setup, teardown);
}
