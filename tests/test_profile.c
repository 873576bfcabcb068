/*
 * test_profile.c — OS profiles: the shipped files, the loader's errors, the
 * event stream.
 *
 * Every file in sim/profiles/ loads, and the Windows 10 22H2 July 2024 file
 * agrees with the profile built into fleetsim.  Each class of mistake in a
 * profile (missing key, wrong type, bad number, range, unknown key, too
 * many entries) is written to a temp file and must be refused with the
 * right "file:line:column: what"; a folder with two files of one name is
 * refused naming both.  sim_profile_events is deterministic per seed,
 * sorted, never before boot.  Every allocation of a load is made to fail in
 * turn (under ASan a leak fails the test too).
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

#include "profile-internal.h"
#include "sim.h"

static char tmpdir[256];

static const char *profiles_dir(void)
{
    const char *dir = getenv("FLEETSIM_PROFILES");
    return dir && dir[0] ? dir : "../sim/profiles";
}

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fleetsim-profile-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A minimal valid profile; the error snippets below vary it. */
#define HEAD                                                                 \
    "name: test-1\n"                                                         \
    "display: Test build\n"                                                  \
    "version: {major: 10, minor: 0, build: 19045, ubr: 4651}\n"              \
    "pool: {kind: segment-heap, zeroed: false}\n"
#define LAYOUT                                                               \
    "layout:\n"                                                              \
    "  image: [0xFFFFF80170000000, 0xFFFFF80600000000]\n"                    \
    "  pool: [0xFFFF840000000000, 0xFFFF850000000000]\n"                     \
    "  kaslr_slots: 8\n"
#define BASE HEAD LAYOUT

/* ---- shipped profiles ---------------------------------------------------------- */

static void every_shipped_profile_loads(void **state)
{
    (void)state;
    sim_profile **list = NULL;
    size_t n = 0;
    char err[512] = "";
    int rc = sim_profile_load_dir(profiles_dir(), &list, &n, err, sizeof err);
    if (rc != 0)
        fail_msg("%s", err);
    assert_true(n >= 11);
    for (size_t i = 0; i < n; i++) {
        const sim_profile *p = list[i];
        uint32_t off;
        if (i > 0)
            assert_true(strcmp(list[i - 1]->name, p->name) < 0);
        assert_true(p->build > 0 && p->kaslr_slots > 0 && p->nevents > 0);
        assert_true(p->boot_ms >= 7000 && p->boot_ms <= 25000);
        assert_true(sim_profile_offset(p, "EPROCESS.SeAuditProcessCreationInfo", &off));
        assert_true(sim_profile_offset(p, "EPROCESS.ImageFileName", &off));
        /* Segment heap from 19H1 on; ExAllocatePool2 from 2004 on. */
        assert_int_equal(p->pool == SIM_POOL_SEGMENT_HEAP, p->build >= 18362);
        assert_int_equal(sim_profile_has_export(p, "ExAllocatePool2"), p->build >= 19041);
        assert_int_equal(sim_profile_has_export(p, "KeQuerySystemTimePrecise"),
                         p->build >= 9200);
        assert_non_null(strstr(p->source, ".yaml"));
    }
    sim_profile_list_destroy(list, n);
}

static void builtin_default_matches_its_file(void **state)
{
    (void)state;
    char path[512], err[512] = "";
    sim_profile *file = NULL;
    snprintf(path, sizeof path, "%s/win10-22h2-2024-07.yaml", profiles_dir());
    int rc = sim_profile_load(path, &file, err, sizeof err);
    if (rc != 0)
        fail_msg("%s", err);
    const sim_profile *b = sim_profile_default();
    assert_string_equal(file->name, b->name);
    assert_string_equal(file->display, b->display);
    assert_int_equal(file->major, b->major);
    assert_int_equal(file->minor, b->minor);
    assert_int_equal(file->build, b->build);
    assert_int_equal(file->ubr, b->ubr);
    assert_int_equal(file->sp_major, b->sp_major);
    assert_int_equal(file->sp_minor, b->sp_minor);
    assert_int_equal(file->product_type, b->product_type);
    assert_string_equal(file->csd, b->csd);
    assert_int_equal(file->pool, b->pool);
    assert_int_equal(file->pool_zeroed, b->pool_zeroed);
    assert_int_equal(file->image_lo, b->image_lo);
    assert_int_equal(file->image_hi, b->image_hi);
    assert_int_equal(file->pool_lo, b->pool_lo);
    assert_int_equal(file->pool_hi, b->pool_hi);
    assert_int_equal(file->kaslr_slots, b->kaslr_slots);
    assert_int_equal(file->nabsent, b->nabsent);
    for (size_t i = 0; i < b->nabsent; i++)
        assert_false(sim_profile_has_export(file, b->absent[i]));
    assert_int_equal(file->noffsets, b->noffsets);
    for (size_t i = 0; i < b->noffsets; i++) {
        uint32_t v;
        assert_true(sim_profile_offset(file, b->offsets[i].name, &v));
        assert_int_equal(v, b->offsets[i].value);
    }
    assert_int_equal(file->event_jitter_ms, b->event_jitter_ms);
    assert_int_equal(file->boot_ms, b->boot_ms);
    sim_profile_destroy(file);
}

/* ---- values of a good profile ----------------------------------------------------- */

static void optional_fields_parse(void **state)
{
    (void)state;
    const char *text =
        BASE "service_pack: {major: 1, minor: 0}\n"
             "csd: Service Pack 1\n"
             "product_type: domain-controller\n"
             "boot_ms: 4.2s\n"
             "event_jitter: 250ms\n"
             "absent_exports: [ExAllocatePool2, KeQuerySystemTimePrecise]\n"
             "offsets: {EPROCESS.UniqueProcessId: 0x440, EPROCESS.Token: 1208}\n"
             "events:\n"
             "  - {kind: process-create, at: 2m, name: 'a.exe', pid: 8, parent_pid: 4}\n"
             "  - {kind: process-exit, at: 1500, pid: 8}\n"
             "  - {kind: pipe-create, at: 0.5s, name: '\\Device\\NamedPipe\\lsass'}\n"
             "  - {kind: file-write, at: 1500ms, name: 'x'}\n";
    sim_profile *p = NULL;
    char err[512] = "";
    int rc = sim__profile_parse(text, strlen(text), "ok.yaml", &p, err, sizeof err);
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(p->sp_major, 1);
    assert_string_equal(p->csd, "Service Pack 1");
    assert_int_equal(p->product_type, 2);
    assert_int_equal(p->boot_ms, 4200);
    assert_int_equal(p->event_jitter_ms, 250);
    assert_false(sim_profile_has_export(p, "KeQuerySystemTimePrecise"));
    assert_true(sim_profile_has_export(p, "ExAllocatePoolWithTag"));
    uint32_t v;
    assert_true(sim_profile_offset(p, "EPROCESS.Token", &v));
    assert_int_equal(v, 1208);
    assert_int_equal(p->nevents, 4);
    assert_int_equal(p->events[0].at_ms, 120000);
    assert_int_equal(p->events[1].kind, SIM_EVENT_PROCESS_EXIT);
    assert_null(p->events[1].name);
    assert_int_equal(p->events[2].at_ms, 500);
    assert_string_equal(p->events[2].name, "\\Device\\NamedPipe\\lsass");
    assert_string_equal(p->source, "ok.yaml");
    sim_profile_destroy(p);
}

/* ---- errors: where and what ----------------------------------------------------- */

typedef struct bad_case {
    const char *text;
    const char *where; /* "bad.yaml:L:C: " */
    const char *what;  /* a part of the message */
} bad_case;

static const bad_case bad_cases[] = {
    {"", "bad.yaml:1:1: ", "empty profile"},
    {"- a\n", "bad.yaml:1:1: ", "expected a mapping"},
    {"name: [x\n", "bad.yaml:", "flow sequence"},
    {HEAD, "bad.yaml:1:1: ", "missing key \"layout\""},
    {LAYOUT HEAD "colour: red\n", "bad.yaml:9:1: ",
     "unknown key \"colour\" in the profile; known: name, display, version"},
    {BASE "name: again\n", "bad.yaml:9:1: ", "key \"name\" is given twice"},
    {"name: 'a b'\ndisplay: x\nversion: {major: 10, minor: 0, build: 1, ubr: 0}\n"
     "pool: {kind: legacy, zeroed: false}\n" LAYOUT,
     "bad.yaml:1:7: ", "may hold only letters, digits"},
    {"name: x\ndisplay: x\nversion: {major: 10, minor: 0, build: 1}\n"
     "pool: {kind: legacy, zeroed: false}\n" LAYOUT,
     "bad.yaml:3:10: ", "version: missing key \"ubr\""},
    {"name: x\ndisplay: x\nversion: {major: 10, minor: 0, build: 70000, ubr: 0}\n"
     "pool: {kind: legacy, zeroed: false}\n" LAYOUT,
     "bad.yaml:3:39: ", "version.build: 70000 is out of range"},
    {"name: x\ndisplay: x\nversion: {major: 10, minor: 0, build: 12a, ubr: 0}\n"
     "pool: {kind: legacy, zeroed: false}\n" LAYOUT,
     "bad.yaml:3:39: ", "\"12a\" is not a whole number"},
    {"name: x\ndisplay: x\nversion: {major: 10, minor: 0, build: -1, ubr: 0}\n"
     "pool: {kind: legacy, zeroed: false}\n" LAYOUT,
     "bad.yaml:3:39: ", "\"-1\" is not a whole number"},
    {"name: x\ndisplay: x\nversion: {major: 10, minor: 0, build: 1, ubr: 0}\n"
     "pool: {kind: lookaside, zeroed: false}\n" LAYOUT,
     "bad.yaml:4:14: ", "pool.kind: unknown value \"lookaside\"; known: legacy, segment-heap"},
    {"name: x\ndisplay: x\nversion: {major: 10, minor: 0, build: 1, ubr: 0}\n"
     "pool: {kind: legacy, zeroed: yes}\n" LAYOUT,
     "bad.yaml:4:30: ", "pool.zeroed: expected true or false"},
    {"name: x\ndisplay: x\nversion: [10, 0]\npool: {kind: legacy, zeroed: false}\n" LAYOUT,
     "bad.yaml:3:10: ", "version: expected a mapping, got a list"},
    {HEAD "layout:\n  image: [0xFFFFF80170000000, 0xFFFFF80600000000]\n"
          "  pool: [0x00007FF000000000, 0x00007FF100000000]\n  kaslr_slots: 8\n",
     "bad.yaml:7:10: ", "not a canonical kernel address"},
    {HEAD "layout:\n  image: [0xFFFFF80170000000, 0xFFFFF80170100000]\n"
          "  pool: [0xFFFF840000000000, 0xFFFF850000000000]\n  kaslr_slots: 8\n",
     "bad.yaml:6:10: ", "layout.image: the range is 1 MiB, at least 16 MiB needed"},
    {HEAD "layout:\n  image: [0xFFFFF80600000000, 0xFFFFF80170000000]\n"
          "  pool: [0xFFFF840000000000, 0xFFFF850000000000]\n  kaslr_slots: 8\n",
     "bad.yaml:6:31: ", "is not above the start"},
    {HEAD "layout:\n  image: [0xFFFFF80170000000, 0xFFFFF80600000000]\n"
          "  pool: [0xFFFF840000000000, 0xFFFF840001000000]\n  kaslr_slots: 8\n",
     "bad.yaml:7:9: ", "at least 64 MiB needed"},
    {HEAD "layout:\n  image: [0xFFFFF80170000000, 0xFFFFF80600000000]\n"
          "  pool: [0xFFFF840000000000, 0xFFFF850000000000]\n  kaslr_slots: 65\n",
     "bad.yaml:8:16: ", "layout.kaslr_slots: 65 is out of range (1 to 64)"},
    {HEAD "layout:\n  image: [0xFFFFF80170000000, 0xFFFFF80600000000]\n"
          "  pool: [0xFFFFF80100000000, 0xFFFFF80200000000]\n  kaslr_slots: 8\n",
     "bad.yaml:7:9: ", "overlaps layout.image"},
    {HEAD "layout:\n  image: [0xFFFFF80170000000, 0xFFFFF80600000000]\n"
          "  pool: [0xFFFFB00000000000, 0xFFFFB10000000000]\n  kaslr_slots: 8\n",
     "bad.yaml:7:9: ", "overlap fleetsim's the kernel stack"},
    /* The pages stale pool words point at stay unmapped (SIM__STALE_BASE):
     * in the pool's first 16 MiB, across a stride's edge, in the image range. */
    {HEAD "layout:\n  image: [0xFFFFF80170000000, 0xFFFFF80600000000]\n"
          "  pool: [0xFFFF847F00000000, 0xFFFF848000000000]\n  kaslr_slots: 8\n",
     "bad.yaml:7:9: ", "layout.pool: its first 16 MiB (the window fleetsim maps) hold a page "
                       "at 0xffff84xx00000000"},
    {HEAD "layout:\n  image: [0xFFFFF80170000000, 0xFFFFF80600000000]\n"
          "  pool: [0xFFFF8400FFFF0000, 0xFFFF840200000000]\n  kaslr_slots: 8\n",
     "bad.yaml:7:9: ", "where stale pool words point"},
    {HEAD "layout:\n  image: [0xFFFF84FE00000000, 0xFFFF850000000000]\n"
          "  pool: [0xFFFFA08000000000, 0xFFFFA08100000000]\n  kaslr_slots: 8\n",
     "bad.yaml:6:10: ", "layout.image: the range holds a page"},
    {HEAD "layout:\n  image: [0xFFFFF80170000001, 0xFFFFF80600000000]\n"
          "  pool: [0xFFFF840000000000, 0xFFFF850000000000]\n  kaslr_slots: 8\n",
     "bad.yaml:6:11: ", "64 KiB aligned"},
    {BASE "boot_ms: 1.5ms\n", "bad.yaml:9:10: ", "boot_ms: \"1.5ms\" is not a time"},
    {BASE "event_jitter: 11m\n", "bad.yaml:9:15: ", "is more than 600000 ms"},
    {BASE "product_type: laptop\n", "bad.yaml:9:15: ",
     "known: workstation, domain-controller, server"},
    {BASE "absent_exports: [ExAllocatePool2, ExAllocatePool2]\n", "bad.yaml:9:35: ",
     "\"ExAllocatePool2\" is listed twice"},
    {BASE "absent_exports: [Ex-Allocate]\n", "bad.yaml:9:18: ", "may hold only"},
    {BASE "offsets: {EPROCESS.Token: 0x10000}\n", "bad.yaml:9:27: ", "out of range"},
    {BASE "offsets: {EPROCESS.Token: 1, EPROCESS.Token: 2}\n", "bad.yaml:9:30: ",
     "\"EPROCESS.Token\" is given twice"},
    {BASE "events:\n  - {kind: boot, at: 1s, name: x}\n", "bad.yaml:10:12: ",
     "events[].kind: unknown value \"boot\"; known: process-create, process-exit, "
     "pipe-create, file-write"},
    {BASE "events:\n  - {kind: pipe-create, name: x}\n", "bad.yaml:10:5: ",
     "events[]: missing key \"at\""},
    {BASE "events:\n  - {kind: process-create, at: 1s, name: x}\n", "bad.yaml:10:5: ",
     "events[]: missing key \"pid\""},
    {BASE "events:\n  - {kind: pipe-create, at: 1h, name: x}\n", "bad.yaml:10:29: ",
     "events[].at: \"1h\" is not a time"},
    {BASE "events:\n  - {kind: pipe-create, at: 1s, name: x, colour: red}\n",
     "bad.yaml:10:42: ", "unknown key \"colour\" in events[]; known: kind, at, name, pid, "
                         "parent_pid"},
    {BASE "events:\n  - {kind: pipe-create, at: 1s, name: ''}\n", "bad.yaml:10:39: ",
     "must not be empty"},
    {BASE "events: {a: 1}\n", "bad.yaml:9:9: ", "events: expected a list, got a mapping"},
    {BASE "---\nname: two\n", "bad.yaml:10:1: ", "only one YAML document"},
};

static void errors_name_line_and_column(void **state)
{
    (void)state;
    char path[300];
    int failures = 0;
    snprintf(path, sizeof path, "%s/bad.yaml", tmpdir);
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        char err[512] = "", want[320];
        sim_profile *p = (sim_profile *)1;
        write_file(path, c->text);
        int rc = sim_profile_load(path, &p, err, sizeof err);
        snprintf(want, sizeof want, "%s/%s", tmpdir, c->where);
        if (rc != SIM_EFORMAT || p != NULL || strncmp(err, want, strlen(want)) != 0 ||
            !strstr(err, c->what))
        {
            print_error("case %zu: rc %d, got \"%s\"; want \"%s...%s\"\n", i, rc, err,
                        want, c->what);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* Ranges that come up to a stale page, or start just past one, load. */
static void ranges_beside_stale_pages_load(void **state)
{
    (void)state;
    static const char *const layouts[] = {
        /* the window ends where stride 0x02's page begins */
        "  image: [0xFFFFF80170000000, 0xFFFFF80600000000]\n"
        "  pool: [0xFFFF8401FF000000, 0xFFFF840300000000]\n",
        /* the window starts 64 KiB past stride 0x01's page */
        "  image: [0xFFFFF80170000000, 0xFFFFF80600000000]\n"
        "  pool: [0xFFFF840100010000, 0xFFFF840200000000]\n",
        /* an image range between two strides' pages */
        "  image: [0xFFFF840500010000, 0xFFFF840600000000]\n"
        "  pool: [0xFFFFA08000000000, 0xFFFFA08100000000]\n",
    };
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        char text[1024], err[512] = "";
        sim_profile *p = NULL;
        int len = snprintf(text, sizeof text, HEAD "layout:\n%s  kaslr_slots: 8\n", layouts[i]);
        int rc = sim__profile_parse(text, (size_t)len, "near.yaml", &p, err, sizeof err);
        if (rc != 0)
            print_error("layout %zu: %s\n", i, err);
        assert_int_equal(rc, 0);
        sim_profile_destroy(p);
    }
}

static void too_many_entries_are_refused(void **state)
{
    (void)state;
    size_t cap = 64 * (SIM__PROFILE_MAX_EVENTS + 2) + 4096;
    char *text = malloc(cap);
    assert_non_null(text);
    /* Absent exports: one more than fits. */
    size_t len = (size_t)snprintf(text, cap, BASE "absent_exports:\n");
    for (int i = 0; i <= SIM_PROFILE_MAX_ABSENT; i++)
        len += (size_t)snprintf(text + len, cap - len, "  - Export%d\n", i);
    sim_profile *p = NULL;
    char err[512];
    assert_int_equal(sim__profile_parse(text, len, "many.yaml", &p, err, sizeof err),
                     SIM_EFORMAT);
    assert_non_null(strstr(err, "more than 64 names"));
    /* Events: one more than the cap. */
    len = (size_t)snprintf(text, cap, BASE "events:\n");
    for (int i = 0; i <= SIM__PROFILE_MAX_EVENTS; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "  - {kind: pipe-create, at: %d, name: p}\n", i);
    assert_int_equal(sim__profile_parse(text, len, "many.yaml", &p, err, sizeof err),
                     SIM_EFORMAT);
    assert_non_null(strstr(err, "at most 4096 allowed"));
    /* A display name longer than its buffer. */
    len = (size_t)snprintf(text, cap, "display: %0100d\n" "name: x\n"
                           "version: {major: 10, minor: 0, build: 1, ubr: 0}\n"
                           "pool: {kind: legacy, zeroed: false}\n" LAYOUT, 0);
    assert_int_equal(sim__profile_parse(text, len, "long.yaml", &p, err, sizeof err),
                     SIM_EFORMAT);
    assert_non_null(strstr(err, "long.yaml:1:10: display: 100 bytes long, at most 95"));
    free(text);
}

static void missing_file_is_an_io_error(void **state)
{
    (void)state;
    char path[300], err[512] = "";
    sim_profile *p = NULL;
    snprintf(path, sizeof path, "%s/nope.yaml", tmpdir);
    assert_int_equal(sim_profile_load(path, &p, err, sizeof err), SIM_EIO);
    assert_null(p);
    char want[400];
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    assert_string_equal(err, want);
    sim_profile **list = NULL;
    size_t n = 7;
    assert_int_equal(sim_profile_load_dir(path, &list, &n, err, sizeof err), SIM_EIO);
    assert_int_equal(n, 0);
}

static void duplicate_names_in_a_dir_are_refused(void **state)
{
    (void)state;
    char dir[300], a[320], b[320], other[320], err[512] = "";
    snprintf(dir, sizeof dir, "%s/dup", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(a, sizeof a, "%s/a.yaml", dir);
    snprintf(b, sizeof b, "%s/b.yaml", dir);
    snprintf(other, sizeof other, "%s/notes.txt", dir);
    write_file(a, BASE);
    write_file(other, "not a profile");
    sim_profile **list = NULL;
    size_t n = 0;
    assert_int_equal(sim_profile_load_dir(dir, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    sim_profile_list_destroy(list, n);
    write_file(b, BASE);
    assert_int_equal(sim_profile_load_dir(dir, &list, &n, err, sizeof err), SIM_EFORMAT);
    assert_non_null(strstr(err, b));
    assert_non_null(strstr(err, a));
    assert_non_null(strstr(err, "\"test-1\""));
    /* A malformed file in the folder fails the whole load, naming it. */
    write_file(b, BASE "colour: red\n");
    assert_int_equal(sim_profile_load_dir(dir, &list, &n, err, sizeof err), SIM_EFORMAT);
    assert_non_null(strstr(err, "b.yaml:9:1: unknown key"));
}

/* ---- the event stream ---------------------------------------------------------- */

static void events_are_deterministic_sorted_and_never_negative(void **state)
{
    (void)state;
    char path[512], err[512] = "";
    sim_profile *p = NULL;
    snprintf(path, sizeof path, "%s/win10-22h2-2024-07.yaml", profiles_dir());
    if (sim_profile_load(path, &p, err, sizeof err) != 0)
        fail_msg("%s", err);
    size_t n = p->nevents;
    sim_event *a = calloc(n, sizeof *a), *b = calloc(n, sizeof *b), *c = calloc(n, sizeof *c);
    assert_true(a && b && c);
    assert_int_equal(sim_profile_events(p, 42, a, n), n);
    assert_int_equal(sim_profile_events(p, 42, b, n), n);
    assert_memory_equal(a, b, n * sizeof *a);
    assert_int_equal(sim_profile_events(p, 43, c, n), n);
    assert_true(memcmp(a, c, n * sizeof *a) != 0);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(a[i - 1].at_ms <= a[i].at_ms);
        /* Names point into the profile. */
        bool found = false;
        for (size_t j = 0; j < n && !found; j++)
            found = a[i].name == p->events[j].name && a[i].kind == p->events[j].kind;
        assert_true(found);
    }
    /* A prefix is the first events of the whole stream. */
    assert_int_equal(sim_profile_events(p, 42, c, 5), 5);
    assert_memory_equal(a, c, 5 * sizeof *a);
    free(a);
    free(b);
    free(c);
    sim_profile_destroy(p);

    /* Times near 0 clamp at 0; equal times keep their file order. */
    const char *text = BASE "event_jitter: 1000\nevents:\n"
                            "  - {kind: pipe-create, at: 0, name: a}\n"
                            "  - {kind: pipe-create, at: 10, name: b}\n"
                            "  - {kind: pipe-create, at: 20, name: c}\n";
    assert_int_equal(sim__profile_parse(text, strlen(text), "t.yaml", &p, err, sizeof err), 0);
    sim_event ev[3];
    bool saw_clamp = false;
    for (uint64_t seed = 0; seed < 200; seed++) {
        assert_int_equal(sim_profile_events(p, seed, ev, 3), 3);
        for (size_t i = 0; i < 3; i++) {
            assert_true(ev[i].at_ms <= 1020);
            if (i > 0) {
                assert_true(ev[i - 1].at_ms <= ev[i].at_ms);
                if (ev[i - 1].at_ms == ev[i].at_ms)
                    assert_true(strcmp(ev[i - 1].name, ev[i].name) < 0);
            }
            saw_clamp |= ev[i].at_ms == 0;
        }
    }
    assert_true(saw_clamp);
    sim_profile_destroy(p);

    /* No jitter: the file's times, sorted stably. */
    text = BASE "events:\n"
                "  - {kind: pipe-create, at: 5, name: a}\n"
                "  - {kind: pipe-create, at: 1, name: b}\n"
                "  - {kind: pipe-create, at: 5, name: c}\n";
    assert_int_equal(sim__profile_parse(text, strlen(text), "t.yaml", &p, err, sizeof err), 0);
    assert_int_equal(sim_profile_events(p, 9, ev, 3), 3);
    assert_string_equal(ev[0].name, "b");
    assert_string_equal(ev[1].name, "a");
    assert_string_equal(ev[2].name, "c");
    assert_int_equal(sim_profile_events(NULL, 9, ev, 3), 0);
    assert_int_equal(sim_profile_events(p, 9, ev, 0), 0);
    sim_profile_destroy(p);
}

/* ---- resources ---------------------------------------------------------------- */

static void load_survives_every_allocation_failure(void **state)
{
    (void)state;
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/win7-sp1-7601.yaml", profiles_dir());
    int rc = SIM_ENOMEM;
    uint64_t n;
    for (n = 1; n < 100000 && rc == SIM_ENOMEM; n++) {
        sim_profile *p = (sim_profile *)1;
        sim_alloc_fail_after(n);
        rc = sim_profile_load(path, &p, err, sizeof err);
        sim_alloc_fail_after(0);
        if (rc == SIM_ENOMEM) {
            assert_null(p);
            assert_string_equal(err, "out of memory");
        } else {
            assert_int_equal(rc, 0);
            sim_profile_destroy(p);
        }
    }
    assert_int_equal(rc, 0);
    assert_true(n > 10);
    /* The same for a folder. */
    rc = SIM_ENOMEM;
    for (n = 1; n < 100000 && rc == SIM_ENOMEM; n++) {
        sim_profile **list = NULL;
        size_t count = 0;
        sim_alloc_fail_after(n);
        rc = sim_profile_load_dir(profiles_dir(), &list, &count, err, sizeof err);
        sim_alloc_fail_after(0);
        if (rc == 0)
            sim_profile_list_destroy(list, count);
        else
            assert_int_equal(rc, SIM_ENOMEM);
    }
    assert_int_equal(rc, 0);
}

static void arguments_are_checked(void **state)
{
    (void)state;
    sim_profile *p = NULL;
    char err[64];
    assert_int_equal(sim_profile_load(NULL, &p, err, sizeof err), SIM_EINVAL);
    assert_int_equal(sim_profile_load("x", NULL, err, sizeof err), SIM_EINVAL);
    assert_int_equal(sim__profile_parse(NULL, 3, "x", &p, err, sizeof err), SIM_EINVAL);
    sim_profile_destroy(NULL);
    sim_profile_destroy((sim_profile *)sim_profile_default()); /* ignored */
    sim_profile_list_destroy(NULL, 3);
    assert_true(sim_profile_default()->nevents == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_shipped_profile_loads),
        cmocka_unit_test(builtin_default_matches_its_file),
        cmocka_unit_test(optional_fields_parse),
        cmocka_unit_test(errors_name_line_and_column),
        cmocka_unit_test(ranges_beside_stale_pages_load),
        cmocka_unit_test(too_many_entries_are_refused),
        cmocka_unit_test(missing_file_is_an_io_error),
        cmocka_unit_test(duplicate_names_in_a_dir_are_refused),
        cmocka_unit_test(events_are_deterministic_sorted_and_never_negative),
        cmocka_unit_test(load_survives_every_allocation_failure),
        cmocka_unit_test(arguments_are_checked),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
