/*
 * test_report.c — the report layer (reports/): intervals against published
 * values, gate expressions and verdicts, report_load over stores written
 * here with the store API (cohorts, buckets, replay commands, --by, the fleet
 * over time), its errors and allocation failures, the structure of every
 * format, and the comparison of two runs.
 *
 * The stores are written by hand (no emulation), so this is a unit test.  The
 * main fixture is a 35-endpoint fleet whose every number is known:
 *
 *   cohort (profile / sensor)   endpoints reached faulted looped recovered down
 *   win10-22h2 / 7.11  (0-9)        10      10      8      5       3       5
 *   win11-23h2 / 7.11  (10-19)      10      10      3      1       2       1
 *   win10-22h2 / 7.10  (20-29)      10      10      0      0       0       0
 *   win11-23h2 / 7.10  (30-34)       5       0      0      0       0       0
 *
 * Buckets: X, a 0x50 in sensor!MatchInstance (endpoints 0-6, 16 crashes, each
 * at another image base); Y, a 0x50 in sensor!ProcessChannelFile (7, 10, 12);
 * Z, a hang in sensor!WaitForChannel (11, four boots).  Endpoint 10 was
 * repaired after its crash; the others that recovered booted clean.
 * Endpoint 13 met an API fleetsim does not implement.
 */
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "report.h"
#include "sim.h"
#include "store.h"

#define assert_near(a, b, tol)                                                       \
    do {                                                                             \
        double a_ = (a), b_ = (b);                                                   \
        if (!(fabs(a_ - b_) <= (tol)))                                               \
            fail_msg("%s = %.9f, expected %.9f (+-%g)", #a, a_, b_, (double)(tol));  \
    } while (0)

#define assert_contains(hay, needle)                                                 \
    do {                                                                             \
        const char *h_ = (hay), *n_ = (needle);                                      \
        if (!h_ || !strstr(h_, n_))                                                  \
            fail_msg("expected \"%s\" in:\n%s", n_, h_ ? h_ : "(null)");             \
    } while (0)

#define assert_lacks(hay, needle)                                                    \
    do {                                                                             \
        const char *h_ = (hay), *n_ = (needle);                                      \
        if (strstr(h_, n_))                                                          \
            fail_msg("did not expect \"%s\" in:\n%s", n_, h_);                       \
    } while (0)

/* ---- fixtures ------------------------------------------------------------ */

typedef struct fixture {
    char dir[64];
    char path[128];  /* the store a test reports on */
    char other[128]; /* a second one, for diffs and foreign files */
} fixture;

static int setup_dir(void **state)
{
    sim_alloc_fail_after(0); /* a test that died mid-injection leaves it on */
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test-report-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/run.db", f->dir);
    snprintf(f->other, sizeof f->other, "%s/other.db", f->dir);
    *state = f;
    return 0;
}

static int teardown_dir(void **state)
{
    sim_alloc_fail_after(0);
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

#define WIN10 "win10-22h2"
#define WIN11 "win11-23h2"
#define LABEL_A WIN10 " / 7.11"
#define LABEL_B WIN11 " / 7.11"
#define LABEL_C WIN10 " / 7.10"
#define LABEL_D WIN11 " / 7.10"
#define IMAGE_PATH "/opt/images/sensor-7.11.sys"
#define INSTALLED_PATH "/srv/content/C-00000291-01.sys"
#define UPDATE_PATH "/srv/content/it's new/C-00000291-04.sys"
#define UPDATE_WORD "'/srv/content/it'\\''s new/C-00000291-04.sys'" /* as a shell word */
#define REVERT_PATH "/srv/content/C-00000291-05.sys"
#define START_MS 1721354400000 /* 2024-07-19 02:00:00Z */
#define DURATION_MS 21600000   /* six hours */

enum { RUN_COMPLETE, RUN_INTERRUPTED, RUN_RUNNING };

static void fill_frame(sim_frame *fr, const char *module, const char *function,
                       uint64_t offset, uint64_t rip)
{
    memset(fr, 0, sizeof *fr);
    snprintf(fr->module, sizeof fr->module, "%s", module);
    snprintf(fr->function, sizeof fr->function, "%s", function);
    fr->offset = offset;
    fr->rip = rip;
    fr->rsp = 0xffffd00000001000ull;
}

/* A 0x50 read of a stale pointer in sensor!<function>, the image loaded at `base`. */
static sim_outcome *crash_at(uint64_t base, const char *function, uint64_t offset)
{
    sim_outcome *o = calloc(1, sizeof *o);
    assert_non_null(o);
    o->kind = SIM_OUTCOME_BUGCHECK;
    o->image_base = base;
    o->bugcheck = 0x50;
    o->params[0] = 0xffff840500000074ull;
    o->params[2] = base + 0x1000 + offset;
    o->params[3] = 2;
    o->has_fault = true;
    o->fault.rip = base + 0x1000 + offset;
    snprintf(o->fault.module, sizeof o->fault.module, "sensor");
    snprintf(o->fault.function, sizeof o->fault.function, "%s", function);
    o->fault.offset = offset;
    snprintf(o->fault.instruction, sizeof o->fault.instruction, "mov r9d, dword ptr [r8]");
    o->fault.address = 0xffff840500000074ull;
    o->fault.access = SIM_ACCESS_READ;
    o->fault.address_class = SIM_ADDR_KERNEL;
    o->regs.r8 = o->fault.address;
    o->regs.rip = o->fault.rip;
    o->ndisasm = 2;
    o->disasm[0].address = o->fault.rip - 4;
    snprintf(o->disasm[0].text, sizeof o->disasm[0].text, "mov r8, qword ptr [rax + 0xa0]");
    o->disasm[1].address = o->fault.rip;
    snprintf(o->disasm[1].text, sizeof o->disasm[1].text, "mov r9d, dword ptr [r8]");
    o->nframes = 4;
    fill_frame(&o->stack[0], "sensor", function, offset, o->fault.rip);
    fill_frame(&o->stack[1], "sensor", "ProcessChannelFile", 0x1a3, base + 0x2000);
    fill_frame(&o->stack[2], "sensor", "unknown_function", 0x5123, base + 0x5123);
    fill_frame(&o->stack[3], "nt", "IopLoadDriver", 0x4a1, 0xfffff80300004a1ull);
    snprintf(o->phase, sizeof o->phase, "DriverEntry");
    o->loglen = (size_t)snprintf(o->log, sizeof o->log, "sensor: loading channel file\n");
    return o;
}

/* The machine stops responding: a loop in sensor!WaitForChannel. */
static sim_outcome *hang_at(uint64_t base)
{
    sim_outcome *o = calloc(1, sizeof *o);
    assert_non_null(o);
    o->kind = SIM_OUTCOME_HANG;
    o->image_base = base;
    o->has_fault = true;
    o->fault.rip = base + 0x3010;
    snprintf(o->fault.module, sizeof o->fault.module, "sensor");
    snprintf(o->fault.function, sizeof o->fault.function, "WaitForChannel");
    o->fault.offset = 0x10;
    snprintf(o->fault.instruction, sizeof o->fault.instruction, "jmp 0x%" PRIx64,
             o->fault.rip - 8);
    o->fault.access = SIM_ACCESS_NONE;
    o->nframes = 1;
    fill_frame(&o->stack[0], "sensor", "WaitForChannel", 0x10, o->fault.rip);
    return o;
}

static sim_outcome *unsupported_api(uint64_t base)
{
    sim_outcome *o = calloc(1, sizeof *o);
    assert_non_null(o);
    o->kind = SIM_OUTCOME_UNSUPPORTED_API;
    o->image_base = base;
    snprintf(o->api, sizeof o->api, "ntoskrnl.exe!KeQueryFutureTime");
    return o;
}

static sim_outcome *ok_outcome(uint64_t base)
{
    sim_outcome *o = calloc(1, sizeof *o);
    assert_non_null(o);
    o->kind = SIM_OUTCOME_OK;
    o->status_valid = true;
    o->image_base = base;
    o->instructions = 4242;
    return o;
}

/* The bucket keys, as the store computes them (test_store checks their form). */
static char KEY_X[STORE_BUCKET_SIZE], KEY_Y[STORE_BUCKET_SIZE], KEY_Z[STORE_BUCKET_SIZE];

static int compute_keys(void **state)
{
    (void)state;
    sim_outcome *x = crash_at(0xfffff80000000000ull, "MatchInstance", 0x2f);
    sim_outcome *y = crash_at(0xfffff80000000000ull, "ProcessChannelFile", 0x1a3);
    sim_outcome *z = hang_at(0xfffff80000000000ull);
    int rc = store_bucket_key(x, KEY_X, sizeof KEY_X) | store_bucket_key(y, KEY_Y, sizeof KEY_Y) |
             store_bucket_key(z, KEY_Z, sizeof KEY_Z);
    free(x);
    free(y);
    free(z);
    return rc;
}

static void open_store(const char *path, store **st)
{
    store_options opts;
    store_options_init(&opts);
    opts.replace = true;
    char err[512];
    if (store_open(path, &opts, st, err, sizeof err) != 0)
        fail_msg("store_open: %s", err);
}

static void write_run(store *st, uint64_t fleet_size)
{
    store_run run = {
        .scenario_name = "channel-file-291",
        .scenario_path = "scenarios/channel-file-291.yaml",
        .scenario_text = "name: channel-file-291\n",
        .seed = 0xfedcba9876543210ull,
        .fleet_size = fleet_size,
        .shard_count = 1,
        .fleetsim_version = "0.1.0",
        .command_line = "fleetsim run scenarios/channel-file-291.yaml",
        .started_ms = 1721362140000,
        .virtual_start_ms = START_MS,
        .duration_ms = DURATION_MS,
    };
    char err[512];
    if (store_write_run(st, &run, err, sizeof err) != 0)
        fail_msg("store_write_run: %s", err);
}

static void write_artifacts(store *st)
{
    uint8_t sha[32];
    for (int i = 0; i < 32; i++)
        sha[i] = (uint8_t)(i * 7);
    const store_artifact arts[] = {
        {STORE_ARTIFACT_IMAGE, "sensor", "sensor.sys", IMAGE_PATH, sha, 12345, "7.11"},
        {STORE_ARTIFACT_IMAGE, "sensor", "sensor-710.sys", "/opt/images/sensor-7.10.sys", sha,
         12000, "7.10"},
        {STORE_ARTIFACT_CONTENT, "installed", "C-00000291-01.sys", INSTALLED_PATH, sha, 40, NULL},
        {STORE_ARTIFACT_CONTENT, "update", "C-00000291-04.sys", UPDATE_PATH, sha, 40, NULL},
        {STORE_ARTIFACT_CONTENT, "revert", "C-00000291-05.sys", REVERT_PATH, sha, 40, NULL},
        {STORE_ARTIFACT_PROFILE, NULL, WIN10, "/opt/profiles/win10-22h2.yaml", NULL, 0,
         "19045.4651"},
        {STORE_ARTIFACT_PROFILE, NULL, WIN11, NULL, NULL, 0, "22631.3880"},
    };
    char err[512];
    for (size_t i = 0; i < sizeof arts / sizeof arts[0]; i++)
        if (store_write_artifact(st, &arts[i], err, sizeof err) != 0)
            fail_msg("store_write_artifact: %s", err);
}

static void mark(store *st, int status)
{
    char err[512];
    int rc = 0;
    if (status == RUN_COMPLETE)
        rc = store_mark_complete(st, 1, DURATION_MS, err, sizeof err);
    else if (status == RUN_INTERRUPTED)
        rc = store_mark_interrupted(st, 130, DURATION_MS / 2, "interrupted by SIGINT", err,
                                    sizeof err);
    if (rc != 0)
        fail_msg("marking the run: %s", err);
    if (store_close(st, err, sizeof err) != 0)
        fail_msg("store_close: %s", err);
}

#define FLEET 35

typedef struct planned {
    const char *profile, *sensor, *region, *tenant, *hardware;
    bool received;
    const char *boot0_start;
    /* One letter a boot: X, Y a 0x50 in bucket X or Y, H a hang, U an
     * unsupported API, o ok; "" never emulated. */
    const char *boots;
} planned;

static void plan(uint64_t id, planned *p)
{
    bool win10 = id < 10 || (id >= 20 && id < 30);
    p->profile = win10 ? WIN10 : WIN11;
    p->sensor = id < 20 ? "7.11" : "7.10";
    p->region = id % 2 ? "us-east" : "eu-west";
    p->tenant = id < 20 ? "acme" : "globex";
    p->hardware = id < 5 ? "vm" : id < 30 ? "laptop" : NULL;
    p->received = id < 30;
    p->boot0_start = id == 12 ? "boot" : "live";
    p->boots = id < 4    ? "XXX"
               : id == 4 ? "XX" /* a boot loop is two crashes */
               : id < 7  ? "Xo"
               : id == 7 ? "Yo"
               : id == 10 ? "Y"
               : id == 11 ? "HHHH"
               : id == 12 ? "Yo"
               : id == 13 ? "U"
               : id < 30  ? "o"
                          : "";
}

static int64_t received_ms(uint64_t id)
{
    return 600500 + (int64_t)id * 60000; /* never on a series bin's edge */
}

static int64_t boot_ms(uint64_t id, uint32_t boot)
{
    return received_ms(id) + (int64_t)boot * 300000;
}

static uint64_t emulation_seed(uint64_t id, uint32_t boot)
{
    return 0x5eed000000000000ull + id * 16 + boot;
}

static void write_main_store(const char *path, int status)
{
    store *st = NULL;
    char err[512];
    open_store(path, &st);
    write_run(st, FLEET);
    write_artifacts(st);
    for (uint64_t id = 0; id < FLEET; id++) {
        planned p;
        plan(id, &p);
        store_attr attr = {"hardware", p.hardware};
        store_endpoint e = {
            .id = id, .profile = p.profile, .os_build = 19045, .os_ubr = 4651,
            .sensor = p.sensor, .region = p.region, .tenant = p.tenant,
            .seed = 0x9e3779b97f4a7c15ull * (id + 1), .ring = (int32_t)(id % 3),
            .attrs = p.hardware ? &attr : NULL, .nattrs = p.hardware ? 1 : 0,
        };
        if (store_write_endpoints(st, &e, 1, err, sizeof err) != 0)
            fail_msg("store_write_endpoints: %s", err);
    }
    for (uint64_t id = 0; id < FLEET; id++) {
        planned p;
        plan(id, &p);
        assert_int_equal(store_write_timeline_event(st, id, 0, STORE_TIMELINE_ONLINE, NULL, err,
                                                    sizeof err), 0);
        if (!p.received)
            continue;
        assert_int_equal(store_write_timeline_event(st, id, received_ms(id),
                                                    STORE_TIMELINE_RECEIVED, "update",
                                                    err, sizeof err), 0);
        bool crashed = false;
        for (uint32_t boot = 0; p.boots[boot]; boot++) {
            uint64_t base = 0xfffff80000000000ull + ((id * 8 + boot) << 21); /* KASLR */
            char what = p.boots[boot];
            sim_outcome *o = what == 'X'   ? crash_at(base, "MatchInstance", 0x2f)
                             : what == 'Y' ? crash_at(base, "ProcessChannelFile", 0x1a3)
                             : what == 'H' ? hang_at(base)
                             : what == 'U' ? unsupported_api(base)
                                           : ok_outcome(base);
            store_outcome_at at = {id, boot, boot_ms(id, boot),
                                   strcmp(p.sensor, "7.11") == 0 ? "sensor.sys" : "sensor-710.sys",
                                   true, emulation_seed(id, boot),
                                   boot ? "boot" : p.boot0_start};
            if (store_write_outcome(st, &at, o, err, sizeof err) != 0)
                fail_msg("store_write_outcome: %s", err);
            assert_int_equal(store_write_timeline_event(st, id, at.vt_ms, STORE_TIMELINE_EMULATED,
                                                        NULL, err, sizeof err), 0);
            if (strchr("XYH", what)) {
                assert_int_equal(store_write_timeline_event(st, id, at.vt_ms,
                                                            STORE_TIMELINE_CRASHED, NULL, err,
                                                            sizeof err), 0);
                assert_int_equal(store_write_timeline_event(st, id, at.vt_ms,
                                                            STORE_TIMELINE_REBOOTED, NULL, err,
                                                            sizeof err), 0);
                crashed = true;
            } else if (crashed) {
                assert_int_equal(store_write_timeline_event(st, id, at.vt_ms,
                                                            STORE_TIMELINE_RECOVERED, NULL, err,
                                                            sizeof err), 0);
                crashed = false;
            }
            free(o);
        }
        /* An operator repaired endpoint 10 before its next boot. */
        if (id == 10)
            assert_int_equal(store_write_timeline_event(st, id, boot_ms(id, 0) + 120000,
                                                        STORE_TIMELINE_REPAIRED, NULL, err,
                                                        sizeof err), 0);
    }
    mark(st, status);
}

/*
 * A small store: per cohort, `reached` endpoints that received the update,
 * the first `faulted` of them crashing once (at boot, in sensor!<function>).
 */
typedef struct cohort_spec {
    const char *profile, *sensor, *region;
    unsigned reached, faulted;
    const char *function;
} cohort_spec;

static void write_simple_store(const char *path, const cohort_spec *specs, size_t n, int status)
{
    store *st = NULL;
    char err[512];
    open_store(path, &st);
    uint64_t total = 0;
    for (size_t c = 0; c < n; c++)
        total += specs[c].reached;
    write_run(st, total);
    write_artifacts(st);
    uint64_t id = 0;
    for (size_t c = 0; c < n; c++) {
        for (unsigned k = 0; k < specs[c].reached; k++, id++) {
            store_endpoint e = {.id = id, .profile = specs[c].profile, .os_build = 19045,
                                .os_ubr = 4651, .sensor = specs[c].sensor,
                                .region = specs[c].region, .tenant = "acme", .seed = id,
                                .ring = -1};
            assert_int_equal(store_write_endpoints(st, &e, 1, err, sizeof err), 0);
            int64_t t = 60000 + (int64_t)id * 1000;
            assert_int_equal(store_write_timeline_event(st, id, t, STORE_TIMELINE_RECEIVED, "update",
                                                        err, sizeof err), 0);
            bool bad = k < specs[c].faulted;
            uint64_t base = 0xfffff80000000000ull + (id << 21);
            sim_outcome *o = bad ? crash_at(base, specs[c].function, 0x2f) : ok_outcome(base);
            store_outcome_at at = {id, 0, t, "sensor.sys", true, id, "boot"};
            assert_int_equal(store_write_outcome(st, &at, o, err, sizeof err), 0);
            if (bad)
                assert_int_equal(store_write_timeline_event(st, id, t, STORE_TIMELINE_CRASHED,
                                                            NULL, err, sizeof err), 0);
            free(o);
        }
    }
    mark(st, status);
}

/* ---- helpers --------------------------------------------------------------- */

static report *load(const char *path, const report_options *opts)
{
    report *r = NULL;
    char err[1024];
    int rc = report_load(path, opts, &r, err, sizeof err);
    if (rc != 0)
        fail_msg("report_load: %d: %s", rc, err);
    assert_non_null(r);
    return r;
}

static report *load_by(const char *path, const char *by)
{
    report_options opts;
    report_options_init(&opts);
    opts.max_buckets = 0;
    /* report->by points into the text: keep it as long as the report. */
    static char text[8][128];
    static int next;
    char *t = text[next++ % 8];
    snprintf(t, sizeof text[0], "%s", by);
    char err[256];
    if (report_parse_by(&opts, t, err, sizeof err) != 0)
        fail_msg("report_parse_by(\"%s\"): %s", by, err);
    return load(path, &opts);
}

static const report_cohort *cohort(const report *r, const char *label)
{
    for (size_t i = 0; i < r->ncohorts; i++)
        if (strcmp(r->cohorts[i].label, label) == 0)
            return &r->cohorts[i];
    fail_msg("no cohort \"%s\"", label);
    return NULL;
}

static const report_bucket *bucket(const report *r, const char *key)
{
    for (size_t i = 0; i < r->nbuckets; i++)
        if (strcmp(r->buckets[i].key, key) == 0)
            return &r->buckets[i];
    fail_msg("no bucket \"%s\"", key);
    return NULL;
}

typedef struct expect_counts {
    const char *label;
    uint64_t endpoints, reached, faulted, boot_looped, recovered, still_down, crashes,
        unsupported;
    const char *top_bucket; /* NULL: none */
} expect_counts;

static void check_counts(const report_counts *n, const expect_counts *x)
{
    const char *l = x->label;
    if (n->endpoints != x->endpoints || n->reached != x->reached || n->faulted != x->faulted ||
        n->boot_looped != x->boot_looped || n->recovered != x->recovered ||
        n->still_down != x->still_down || n->crashes != x->crashes ||
        n->unsupported != x->unsupported)
        fail_msg("%s: endpoints %" PRIu64 " reached %" PRIu64 " faulted %" PRIu64
                 " boot-looped %" PRIu64 " recovered %" PRIu64 " still down %" PRIu64
                 " crashes %" PRIu64 " unsupported %" PRIu64 "; expected %" PRIu64 " %" PRIu64
                 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64,
                 l, n->endpoints, n->reached, n->faulted, n->boot_looped, n->recovered,
                 n->still_down, n->crashes, n->unsupported, x->endpoints, x->reached,
                 x->faulted, x->boot_looped, x->recovered, x->still_down, x->crashes,
                 x->unsupported);
    double lo, hi;
    report_wilson(x->faulted, x->reached, 1.959963984540054, &lo, &hi);
    assert_near(n->rate, x->reached ? (double)x->faulted / (double)x->reached : 0.0, 1e-12);
    assert_near(n->lo, lo, 1e-12);
    assert_near(n->hi, hi, 1e-12);
}

static void check_cohort(const report_cohort *c, const expect_counts *x)
{
    assert_string_equal(c->label, x->label);
    check_counts(&c->n, x);
    if (!x->top_bucket)
        assert_null(c->top_bucket);
    else
        assert_string_equal(c->top_bucket, x->top_bucket);
}

/* The report in a format, as one string (free it). */
static char *render(report_format f, const report *r, const report_gate *g,
                    const report_verdict *v, bool colour)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    assert_int_equal(report_write(out, f, r, g, v, colour), 0);
    assert_int_equal(fclose(out), 0);
    assert_non_null(buf);
    assert_int_equal(strlen(buf), len);
    return buf;
}

static char *render_diff(report_format f, const report *base, const report *cand, bool *worse)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    assert_int_equal(report_diff_write(out, f, base, cand, false, worse), 0);
    assert_int_equal(fclose(out), 0);
    assert_non_null(buf);
    return buf;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* The line of `text` that contains `needle` (first one), in a static buffer; a
 * needle may begin with the newline before the line. */
static const char *line_with(const char *text, const char *needle)
{
    static char out[2048];
    const char *p = strstr(text, needle);
    if (!p)
        fail_msg("no line with \"%s\" in:\n%s", needle, text);
    if (*p == '\n') /* a needle that says where the line starts */
        p++;
    const char *start = p;
    while (start > text && start[-1] != '\n')
        start--;
    const char *end = strchr(p, '\n');
    size_t n = end ? (size_t)(end - start) : strlen(start);
    snprintf(out, sizeof out, "%.*s", (int)n, start);
    return out;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* SQLite's JSON functions read the JSON documents. */
static bool json_valid(const char *doc)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT json_valid(?1)", -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_text(s, 1, doc, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    bool ok = sqlite3_column_int(s, 0) == 1;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return ok;
}

/* json_extract(doc, path) as text; "<null>" for SQL NULL. */
static const char *json_get(const char *doc, const char *path)
{
    static char out[8][1024];
    static int next;
    char *o = out[next++ % 8];
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT json_extract(?1, ?2)", -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, doc, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_ROW)
        fail_msg("json_extract(%s): %s", path, sqlite3_errmsg(db));
    const unsigned char *t = sqlite3_column_text(s, 0);
    snprintf(o, sizeof out[0], "%s", t ? (const char *)t : "<null>");
    sqlite3_finalize(s);
    sqlite3_close(db);
    return o;
}

/* A file's bytes, and how many. */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *data = calloc(1, (size_t)size + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    *len = (size_t)size;
    return data;
}

static void sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* ---- statistics ----------------------------------------------------------- */

static void intervals_match_published_values(void **state)
{
    (void)state;
    static const struct {
        report_interval_method m;
        uint64_t k, n;
        double lo, hi;
    } cases[] = {
        /* DESIGN.md, "Gates and buckets" */
        {REPORT_WILSON, 0, 1000, 0.0, 0.003827},
        {REPORT_WILSON, 5, 100, 0.021544, 0.111750},
        {REPORT_WILSON, 50, 100, 0.403832, 0.596168},
        {REPORT_CLOPPER_PEARSON, 0, 1000, 0.0, 0.003682},
        {REPORT_CLOPPER_PEARSON, 5, 100, 0.016432, 0.112835},
        {REPORT_CLOPPER_PEARSON, 7, 50, 0.0581917, 0.2673960},
        /* k = n: the upper bound is 1, the lower n/(n+z^2) and (alpha/2)^(1/n). */
        {REPORT_WILSON, 10, 10, 0.722467, 1.0},
        {REPORT_CLOPPER_PEARSON, 10, 10, 0.691503, 1.0},
        /* Nothing reached: nothing known. */
        {REPORT_WILSON, 0, 0, 0.0, 1.0},
        {REPORT_CLOPPER_PEARSON, 0, 0, 0.0, 1.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double lo = -1, hi = -1, lo2 = -1, hi2 = -1;
        report_interval(cases[i].m, cases[i].k, cases[i].n, &lo, &hi);
        if (fabs(lo - cases[i].lo) > 1e-6 || fabs(hi - cases[i].hi) > 1e-6)
            fail_msg("%s %" PRIu64 "/%" PRIu64 ": [%.7f, %.7f], expected [%.7f, %.7f]",
                     cases[i].m == REPORT_WILSON ? "Wilson" : "Clopper-Pearson", cases[i].k,
                     cases[i].n, lo, hi, cases[i].lo, cases[i].hi);
        /* report_interval is the 95% case of the two functions. */
        if (cases[i].m == REPORT_WILSON)
            report_wilson(cases[i].k, cases[i].n, 1.959963984540054, &lo2, &hi2);
        else
            report_clopper_pearson(cases[i].k, cases[i].n, 0.05, &lo2, &hi2);
        assert_near(lo2, lo, 1e-12);
        assert_near(hi2, hi, 1e-12);
    }

    /* k = n for a large n, and a 99% interval is wider than a 95% one. */
    double lo, hi, lo99, hi99;
    report_wilson(1000, 1000, 1.959963984540054, &lo, &hi);
    assert_near(hi, 1.0, 0);
    assert_true(lo > 0.99 && lo < 1.0);
    report_clopper_pearson(1000, 1000, 0.05, &lo, &hi);
    assert_near(hi, 1.0, 0);
    assert_near(lo, pow(0.025, 1.0 / 1000), 1e-9);
    report_clopper_pearson(5, 100, 0.01, &lo99, &hi99);
    report_clopper_pearson(5, 100, 0.05, &lo, &hi);
    assert_true(lo99 < lo && hi99 > hi);
    report_wilson(5, 100, 2.5758293035489, &lo99, &hi99);
    report_wilson(5, 100, 1.959963984540054, &lo, &hi);
    assert_true(lo99 < lo && hi99 > hi);
}

static void percent_and_clock(void **state)
{
    (void)state;
    char t[64];
    report_percent(0.8123, t, sizeof t);
    assert_string_equal(t, "81.23%");
    report_percent(0.0, t, sizeof t);
    assert_string_equal(t, "0.00%");
    report_percent(0.00001, t, sizeof t); /* a small rate keeps its digits */
    assert_string_equal(t, "0.0010%");
    report r = {.virtual_start_ms = START_MS};
    report_utc(&r, 0, t, sizeof t);
    assert_string_equal(t, "2024-07-19 02:00:00Z");
    report_utc(&r, 7740000, t, sizeof t);
    assert_string_equal(t, "2024-07-19 04:09:00Z");
}

/* ---- the gate: expressions --------------------------------------------------- */

static void gate_parses_limits(void **state)
{
    (void)state;
    report_gate g;
    char err[256] = "";

    assert_int_equal(report_gate_parse("max-fault-rate=0.1%,max-boot-loops=0", &g, err,
                                       sizeof err), 0);
    assert_int_equal(g.nlimits, 2);
    assert_int_equal(g.limits[0].kind, GATE_MAX_FAULT_RATE);
    assert_near(g.limits[0].value, 0.001, 1e-15);
    assert_string_equal(g.limits[0].text, "max-fault-rate=0.1%");
    assert_int_equal(g.limits[1].kind, GATE_MAX_BOOT_LOOPS);
    assert_near(g.limits[1].value, 0, 0);
    assert_string_equal(g.limits[1].text, "max-boot-loops=0");
    assert_string_equal(g.text, "max-fault-rate=0.1%,max-boot-loops=0");

    /* A rate as a fraction is the same limit. */
    assert_int_equal(report_gate_parse("max-fault-rate=0.001", &g, err, sizeof err), 0);
    assert_int_equal(g.nlimits, 1);
    assert_near(g.limits[0].value, 0.001, 1e-15);
    assert_int_equal(report_gate_parse("max-fault-rate=100%", &g, err, sizeof err), 0);
    assert_near(g.limits[0].value, 1.0, 1e-15);

    /* Spaces around the parts, and empty parts, do not matter. */
    assert_int_equal(report_gate_parse("  max-faults=3 ,, min-reached=10  ", &g, err,
                                       sizeof err), 0);
    assert_int_equal(g.nlimits, 2);
    assert_int_equal(g.limits[0].kind, GATE_MAX_FAULTS);
    assert_near(g.limits[0].value, 3, 0);
    assert_string_equal(g.limits[0].text, "max-faults=3");
    assert_int_equal(g.limits[1].kind, GATE_MIN_REACHED);
    assert_near(g.limits[1].value, 10, 0);
    assert_string_equal(g.text, "max-faults=3,min-reached=10");

    /* Every limit by its name, in one expression. */
    assert_int_equal(report_gate_parse("max-fault-rate=1%,max-fault-rate-upper=0.02,"
                                       "max-faults=4,max-boot-loops=5,max-still-down=6,"
                                       "min-reached=700",
                                       &g, err, sizeof err), 0);
    assert_int_equal(g.nlimits, GATE_NLIMITS);
    static const struct { report_limit_kind kind; double value; } want[GATE_NLIMITS] = {
        {GATE_MAX_FAULT_RATE, 0.01},   {GATE_MAX_FAULT_RATE_UPPER, 0.02},
        {GATE_MAX_FAULTS, 4},          {GATE_MAX_BOOT_LOOPS, 5},
        {GATE_MAX_STILL_DOWN, 6},      {GATE_MIN_REACHED, 700},
    };
    for (size_t i = 0; i < GATE_NLIMITS; i++) {
        assert_int_equal(g.limits[i].kind, want[i].kind);
        assert_near(g.limits[i].value, want[i].value, 1e-12);
    }

    /* The default gate: no endpoint may fault. */
    report_gate_default(&g);
    assert_int_equal(g.nlimits, 1);
    assert_int_equal(g.limits[0].kind, GATE_MAX_FAULTS);
    assert_near(g.limits[0].value, 0, 0);
    assert_string_equal(g.text, "max-faults=0");
}

static void gate_errors_name_the_part(void **state)
{
    (void)state;
    static const struct {
        const char *expr;
        const char *says[2]; /* what the message must name */
    } cases[] = {
        {"max-crashes=1", {"unknown limit", "max-crashes"}},
        {"max-faults=0,max-crashes=1", {"unknown limit", "max-crashes"}},
        {"max-faults", {"max-faults", "needs a value"}},
        {"max-faults=", {"max-faults", "needs a value"}},
        {"max-faults=-1", {"max-faults", "-1"}},
        {"max-fault-rate=-0.1%", {"max-fault-rate", "-0.1%"}},
        {"max-fault-rate=150%", {"max-fault-rate", "150%"}},
        {"max-fault-rate=1.5", {"max-fault-rate", "1.5"}},
        {"max-faults=1.5", {"max-faults", "1.5"}},
        {"max-boot-loops=5%", {"max-boot-loops", "5%"}},
        {"max-faults=1,max-faults=2", {"max-faults", "twice"}},
        {"", {"no limits", ""}},
        {" , ", {"no limits", ""}},
        {"max-fault-rate=abc", {"max-fault-rate", "abc"}},
        {"max-fault-rate=0.1%%", {"max-fault-rate", "0.1%%"}},
        {"max-faults=nan", {"max-faults", "nan"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        report_gate g;
        char err[256] = "";
        if (report_gate_parse(cases[i].expr, &g, err, sizeof err) != SIM_EINVAL)
            fail_msg("\"%s\" was accepted", cases[i].expr);
        for (int k = 0; k < 2; k++)
            if (!strstr(err, cases[i].says[k]))
                fail_msg("\"%s\": the message \"%s\" does not say \"%s\"", cases[i].expr, err,
                         cases[i].says[k]);
    }
    /* A rate over 100% says so; a fraction where a count is due says that. */
    report_gate g;
    char err[256];
    report_gate_parse("max-fault-rate=150%", &g, err, sizeof err);
    assert_contains(err, "100%");
    report_gate_parse("max-faults=1.5", &g, err, sizeof err);
    assert_contains(err, "whole");
    assert_int_equal(report_gate_parse(NULL, &g, err, sizeof err), SIM_EINVAL);
}

/* ---- the gate: verdicts ------------------------------------------------------- */

static void check_gate(const report *r, const char *expr, report_gate *g, report_verdict *v)
{
    char err[256];
    if (report_gate_parse(expr, g, err, sizeof err) != 0)
        fail_msg("%s: %s", expr, err);
    assert_int_equal(report_gate_check(r, g, v), 0);
}

static void gate_checks_cohorts_and_the_run(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    report *r = load(f->path, NULL);
    const report_cohort *a = cohort(r, LABEL_A), *b = cohort(r, LABEL_B),
                        *c = cohort(r, LABEL_C), *d = cohort(r, LABEL_D);
    report_gate g;
    report_verdict v;
    char line[1024], t[256];

    /* Two cohorts over 5%, one boot-looped, and too few reached for the run. */
    check_gate(r, "max-fault-rate=5%,max-boot-loops=0,min-reached=100", &g, &v);
    assert_false(v.passed);
    assert_false(v.incomplete);
    assert_int_equal(v.nviolations, 5);
    assert_int_equal(v.ncohorts_failed, 2);
    size_t run_wide = 0;
    for (size_t i = 0; i < v.nviolations; i++) {
        const report_violation *x = &v.violations[i];
        if (!x->cohort) {
            run_wide++;
            assert_int_equal(x->limit->kind, GATE_MIN_REACHED);
            assert_near(x->actual, 30, 0);
            continue;
        }
        assert_true(x->cohort == a || x->cohort == b);
        if (x->limit->kind == GATE_MAX_FAULT_RATE)
            assert_near(x->actual, x->cohort == a ? 0.8 : 0.3, 1e-12);
        else if (x->limit->kind == GATE_MAX_BOOT_LOOPS)
            assert_near(x->actual, x->cohort == a ? 5 : 1, 0);
        else
            fail_msg("unexpected violation of %s", x->limit->text);
    }
    assert_int_equal(run_wide, 1);
    assert_true(report_cohort_failed(&v, a));
    assert_true(report_cohort_failed(&v, b));
    assert_false(report_cohort_failed(&v, c));
    assert_false(report_cohort_failed(&v, d));
    report_verdict_line(&g, &v, line, sizeof line);
    assert_true(strncmp(line, "FAIL: ", 6) == 0);
    assert_contains(line, "2 cohorts");
    assert_contains(line, g.text);
    assert_contains(line, "30"); /* the run-wide violation, with what was measured */
    assert_contains(line, "min-reached=100");
    for (size_t i = 0; i < v.nviolations; i++)
        if (v.violations[i].cohort == a && v.violations[i].limit->kind == GATE_MAX_FAULT_RATE) {
            report_violation_text(&v.violations[i], t, sizeof t);
            assert_contains(t, LABEL_A);
            assert_contains(t, "80.00%");
            assert_contains(t, "5.00%");
        }
    report_verdict_free(&v);

    /* Limits hold at their value: 8 faults pass max-faults=8, not 7. */
    check_gate(r, "max-faults=8", &g, &v);
    assert_true(v.passed);
    assert_int_equal(v.nviolations, 0);
    report_verdict_line(&g, &v, line, sizeof line);
    assert_true(strncmp(line, "PASS: ", 6) == 0);
    assert_contains(line, "max-faults=8");
    report_verdict_free(&v);
    check_gate(r, "max-faults=7", &g, &v);
    assert_false(v.passed);
    assert_int_equal(v.nviolations, 1);
    assert_true(v.violations[0].cohort == a);
    assert_near(v.violations[0].actual, 8, 0);
    report_verdict_free(&v);
    check_gate(r, "max-fault-rate=80%", &g, &v);
    assert_true(v.passed);
    report_verdict_free(&v);

    /* The interval's upper bound: cohort A's is above 50%, B's below. */
    check_gate(r, "max-fault-rate-upper=50%", &g, &v);
    assert_int_equal(v.nviolations, 2);
    assert_int_equal(v.ncohorts_failed, 2);
    for (size_t i = 0; i < v.nviolations; i++) {
        assert_true(v.violations[i].cohort == a || v.violations[i].cohort == b);
        assert_near(v.violations[i].actual, v.violations[i].cohort->n.hi, 1e-12);
    }
    report_verdict_free(&v);

    /* Still down: A has 5, B 1 (one recovered, one repaired, one hung). */
    check_gate(r, "max-still-down=1", &g, &v);
    assert_int_equal(v.nviolations, 1);
    assert_true(v.violations[0].cohort == a);
    assert_near(v.violations[0].actual, 5, 0);
    report_verdict_free(&v);

    /* min-reached alone: the run, never a cohort. */
    check_gate(r, "min-reached=30", &g, &v);
    assert_true(v.passed);
    report_verdict_free(&v);
    check_gate(r, "min-reached=31", &g, &v);
    assert_false(v.passed);
    assert_int_equal(v.nviolations, 1);
    assert_null(v.violations[0].cohort);
    assert_int_equal(v.ncohorts_failed, 0);
    for (size_t i = 0; i < r->ncohorts; i++)
        assert_false(report_cohort_failed(&v, &r->cohorts[i]));
    report_verdict_line(&g, &v, line, sizeof line);
    assert_true(strncmp(line, "FAIL: ", 6) == 0);
    assert_contains(line, "min-reached=31");
    report_verdict_free(&v);

    /* The default gate fails the two cohorts with a fault. */
    report_gate_default(&g);
    assert_int_equal(report_gate_check(r, &g, &v), 0);
    assert_false(v.passed);
    assert_int_equal(v.ncohorts_failed, 2);
    report_verdict_free(&v);

    /* Out of memory for the violations is an error, and frees cleanly. */
    char err[256];
    assert_int_equal(report_gate_parse("max-faults=0,min-reached=100", &g, err, sizeof err), 0);
    sim_alloc_fail_after(1);
    int rc = report_gate_check(r, &g, &v);
    sim_alloc_fail_after(0);
    assert_int_equal(rc, SIM_ENOMEM);
    report_verdict_free(&v);
    report_verdict_free(&v); /* twice is harmless */

    report_free(r);
}

static void gate_fails_an_incomplete_run(void **state)
{
    fixture *f = *state;
    report_gate g;
    report_verdict v;
    char line[1024];

    write_main_store(f->path, RUN_INTERRUPTED);
    report *r = load(f->path, NULL);
    assert_false(r->complete);
    assert_string_equal(r->status, "interrupted");
    assert_string_equal(r->reason, "interrupted by SIGINT");
    assert_int_equal(r->exit_code, 130);
    check_gate(r, "max-fault-rate=100%", &g, &v);
    assert_int_equal(v.nviolations, 0);
    assert_true(v.incomplete);
    assert_false(v.passed);
    report_verdict_line(&g, &v, line, sizeof line);
    assert_true(strncmp(line, "FAIL: ", 6) == 0);
    assert_contains(line, "did not complete");
    /* JUnit: the "run complete" case fails, and nothing else. */
    char *xml = render(REPORT_JUNIT, r, &g, &v, false);
    assert_contains(xml, "failures=\"1\"");
    assert_contains(xml, "type=\"incomplete\"");
    assert_contains(xml, "interrupted by SIGINT");
    free(xml);
    report_verdict_free(&v);

    /* Incomplete and over a limit: both said. */
    report_gate_default(&g);
    assert_int_equal(report_gate_check(r, &g, &v), 0);
    assert_false(v.passed);
    report_verdict_line(&g, &v, line, sizeof line);
    assert_contains(line, "did not complete");
    assert_contains(line, "2 cohorts");
    report_verdict_free(&v);
    report_free(r);

    /* A store no process marked (it died) is incomplete too. */
    cohort_spec one = {WIN10, "7.11", "eu-west", 10, 0, NULL};
    write_simple_store(f->path, &one, 1, RUN_RUNNING);
    r = load(f->path, NULL);
    assert_string_equal(r->status, "running");
    assert_false(r->complete);
    assert_int_equal(r->exit_code, -1);
    check_gate(r, "max-faults=0", &g, &v);
    assert_int_equal(v.nviolations, 0);
    assert_true(v.incomplete);
    assert_false(v.passed);
    report_verdict_free(&v);
    report_free(r);
}

/* ---- report_load: the model --------------------------------------------------- */

static const expect_counts MAIN_A = {LABEL_A, 10, 10, 8, 5, 3, 5, 17, 0, KEY_X};
static const expect_counts MAIN_B = {LABEL_B, 10, 10, 3, 1, 2, 1, 6, 1, KEY_Y};
static const expect_counts MAIN_C = {LABEL_C, 10, 10, 0, 0, 0, 0, 0, 0, NULL};
static const expect_counts MAIN_D = {LABEL_D, 5, 0, 0, 0, 0, 0, 0, 0, NULL};

static void load_reads_the_run_and_its_cohorts(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    report *r = load(f->path, NULL);

    assert_string_equal(r->store_path, f->path);
    assert_string_equal(r->scenario, "channel-file-291");
    assert_string_equal(r->seed, "0xfedcba9876543210");
    assert_string_equal(r->shard, "0/1");
    assert_string_equal(r->status, "complete");
    assert_true(r->complete);
    assert_int_equal(r->exit_code, 1);
    assert_int_equal(r->fleet_size, FLEET);
    assert_int_equal(r->virtual_start_ms, START_MS);
    assert_int_equal(r->duration_ms, DURATION_MS);
    assert_int_equal(r->virtual_end_ms, DURATION_MS);
    assert_int_equal(r->nartifacts, 7);
    assert_int_equal(r->interval, REPORT_WILSON);

    /* Grouped by profile and sensor unless asked otherwise. */
    assert_int_equal(r->nby, 2);
    assert_string_equal(r->by[0], "profile");
    assert_string_equal(r->by[1], "sensor");

    /* Worst first: fault rate, and the cohort nothing reached last. */
    assert_int_equal(r->ncohorts, 4);
    check_cohort(&r->cohorts[0], &MAIN_A);
    check_cohort(&r->cohorts[1], &MAIN_B);
    check_cohort(&r->cohorts[2], &MAIN_C);
    check_cohort(&r->cohorts[3], &MAIN_D);
    assert_string_equal(r->cohorts[0].values[0], WIN10);
    assert_string_equal(r->cohorts[0].values[1], "7.11");
    assert_int_equal(r->cohorts[0].top_bucket_endpoints, 7);
    assert_int_equal(r->cohorts[1].top_bucket_endpoints, 2);
    /* Nothing reached: rate 0 and the interval [0, 1]. */
    assert_near(r->cohorts[3].n.lo, 0, 0);
    assert_near(r->cohorts[3].n.hi, 1, 0);

    expect_counts total = {"total", 35, 30, 11, 6, 5, 6, 23, 1, NULL};
    check_counts(&r->total, &total);
    report_free(r);

    /* Ties in the rate go to the cohort with more faulted endpoints. */
    cohort_spec tie[] = {
        {WIN10, "7.10", "eu-west", 10, 1, "MatchInstance"},
        {WIN11, "7.10", "eu-west", 20, 2, "MatchInstance"},
        {WIN10, "7.11", "eu-west", 10, 0, NULL},
        {WIN11, "7.11", "eu-west", 30, 0, NULL},
    };
    write_simple_store(f->other, tie, 4, RUN_COMPLETE);
    r = load(f->other, NULL);
    assert_int_equal(r->ncohorts, 4);
    assert_string_equal(r->cohorts[0].label, LABEL_D); /* 2/20 */
    assert_string_equal(r->cohorts[1].label, LABEL_C); /* 1/10 */
    assert_string_equal(r->cohorts[2].label, LABEL_A); /* 0/10, then the label */
    assert_string_equal(r->cohorts[3].label, LABEL_B);
    report_free(r);
}

static void load_uses_the_interval_asked_for(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    report_options opts;
    report_options_init(&opts);
    opts.interval = REPORT_CLOPPER_PEARSON;
    report *r = load(f->path, &opts);
    assert_int_equal(r->interval, REPORT_CLOPPER_PEARSON);
    for (size_t i = 0; i < r->ncohorts; i++) {
        double lo, hi;
        report_clopper_pearson(r->cohorts[i].n.faulted, r->cohorts[i].n.reached, 0.05, &lo, &hi);
        assert_near(r->cohorts[i].n.lo, lo, 1e-12);
        assert_near(r->cohorts[i].n.hi, hi, 1e-12);
    }
    double lo, hi;
    report_clopper_pearson(11, 30, 0.05, &lo, &hi);
    assert_near(r->total.lo, lo, 1e-12);
    assert_near(r->total.hi, hi, 1e-12);
    report_free(r);
}

static void buckets_group_a_fault_across_image_bases(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    report *r = load(f->path, NULL);

    /* Every crash of X ran at another base, yet they are one bucket; the fault
     * in another function is another. */
    assert_string_equal(KEY_X, "0x50_R_KERNEL_sensor!MatchInstance+0x2f");
    assert_int_equal(r->nbuckets_total, 3);
    assert_int_equal(r->nbuckets, 3);
    /* Largest first by endpoints: Z has more crashes than Y, but one endpoint. */
    assert_string_equal(r->buckets[0].key, KEY_X);
    assert_string_equal(r->buckets[1].key, KEY_Y);
    assert_string_equal(r->buckets[2].key, KEY_Z);

    const report_bucket *x = &r->buckets[0], *y = &r->buckets[1], *z = &r->buckets[2];
    assert_int_equal(x->endpoints, 7);
    assert_int_equal(x->crashes, 16);
    assert_int_equal(x->first_vt_ms, boot_ms(0, 0));
    assert_int_equal(x->last_vt_ms, boot_ms(3, 2));
    assert_int_equal(y->endpoints, 3);
    assert_int_equal(y->crashes, 3);
    assert_int_equal(y->first_vt_ms, boot_ms(7, 0));
    assert_int_equal(y->last_vt_ms, boot_ms(12, 0));
    assert_int_equal(z->endpoints, 1);
    assert_int_equal(z->crashes, 4);
    assert_int_equal(z->first_vt_ms, boot_ms(11, 0));
    assert_int_equal(z->last_vt_ms, boot_ms(11, 3));

    /* What a researcher reads: the bugcheck, the blamed frame, the access. */
    assert_int_equal(x->bugcheck, 0x50);
    assert_string_equal(x->bugcheck_name, "PAGE_FAULT_IN_NONPAGED_AREA");
    assert_string_equal(x->symbol, "sensor!MatchInstance+0x2f");
    assert_string_equal(x->instruction, "mov r9d, dword ptr [r8]");
    assert_string_equal(x->access, "read");
    assert_string_equal(x->address_class, "kernel");
    assert_string_equal(x->address, "0xffff840500000074");
    assert_string_equal(y->symbol, "sensor!ProcessChannelFile+0x1a3");
    assert_int_equal(z->bugcheck, 0); /* a hang */
    assert_string_equal(z->symbol, "sensor!WaitForChannel+0x10");
    assert_string_equal(z->access, "none");

    /* The representative stack, innermost first, one frame a line. */
    static const char *const frames[] = {"sensor!MatchInstance+0x2f  (0x",
                                         "sensor!ProcessChannelFile+0x1a3  (0x",
                                         "sensor+0x5123  (0x", "nt!IopLoadDriver+0x4a1  (0x"};
    const char *p = x->stack;
    for (size_t i = 0; i < 4; i++) {
        if (strncmp(p, frames[i], strlen(frames[i])) != 0)
            fail_msg("stack line %zu is not \"%s...\":\n%s", i, frames[i], x->stack);
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        assert_int_equal(nl[-1], ')');
        p = nl + 1;
    }
    assert_string_equal(p, "");
    /* The disassembly ends at the faulting instruction. */
    assert_int_equal(count(x->disasm, "\n"), 2);
    assert_true(ends_with(x->disasm, "  mov r9d, dword ptr [r8]\n"));
    assert_contains(x->disasm, "mov r8, qword ptr [rax + 0xa0]");

    /* The cohorts each bucket hit. */
    assert_int_equal(x->ncohorts, 1);
    assert_string_equal(x->cohorts[0], LABEL_A);
    assert_int_equal(y->ncohorts, 2);
    assert_true((strcmp(y->cohorts[0], LABEL_A) == 0 && strcmp(y->cohorts[1], LABEL_B) == 0) ||
                (strcmp(y->cohorts[0], LABEL_B) == 0 && strcmp(y->cohorts[1], LABEL_A) == 0));
    assert_int_equal(z->ncohorts, 1);
    assert_string_equal(z->cohorts[0], LABEL_B);
    report_free(r);

    /* --max-buckets: the largest ones in detail, the count of all. */
    report_options opts;
    report_options_init(&opts);
    opts.max_buckets = 1;
    r = load(f->path, &opts);
    assert_int_equal(r->nbuckets, 1);
    assert_int_equal(r->nbuckets_total, 3);
    assert_string_equal(r->buckets[0].key, KEY_X);
    /* A cohort's top bucket does not depend on which are detailed. */
    assert_string_equal(cohort(r, LABEL_B)->top_bucket, KEY_Y);
    report_gate g;
    report_gate_default(&g);
    report_verdict v;
    assert_int_equal(report_gate_check(r, &g, &v), 0);
    char *text = render(REPORT_TEXT, r, &g, &v, false);
    assert_contains(text, "2 more buckets");
    free(text);
    report_verdict_free(&v);
    report_free(r);
}

/*
 * report.h: a bucket's cohorts are listed "worst first", the order
 * report.cohorts has.  Bucket Y hit cohort A (80% faulted) once and cohort B
 * (30%) twice.
 */
static void bucket_cohorts_are_worst_first(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    report *r = load(f->path, NULL);
    const report_bucket *y = bucket(r, KEY_Y);
    assert_int_equal(y->ncohorts, 2);
    assert_string_equal(r->cohorts[0].label, LABEL_A);
    if (strcmp(y->cohorts[0], LABEL_A) != 0)
        fail_msg("bucket %s lists cohorts \"%s\", \"%s\"; worst first is \"%s\" first", y->key,
                 y->cohorts[0], y->cohorts[1], LABEL_A);
    assert_string_equal(y->cohorts[1], LABEL_B);
    report_free(r);
}

static void examples_replay_the_crash(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    report *r = load(f->path, NULL);
    char seed[64];

    /* X: emulations that started at boot are preferred (endpoints 0-4 crashed
     * again at boot 1; 5 and 6 only live at boot 0). */
    const report_bucket *x = bucket(r, KEY_X);
    assert_int_equal(x->nexamples, 3);
    for (size_t i = 0; i < 3; i++) {
        const report_example *e = &x->examples[i];
        assert_int_equal(e->endpoint, i);
        assert_int_equal(e->boot, 1);
        const char *cmd = e->command;
        assert_true(strncmp(cmd, "fleetsim emulate ", 17) == 0);
        assert_contains(cmd, "fleetsim emulate " IMAGE_PATH " ");
        assert_contains(cmd, " --profile " WIN10);
        assert_contains(cmd, " --profiles /opt/profiles");
        assert_contains(cmd, " --content " INSTALLED_PATH);
        assert_contains(cmd, " --content " UPDATE_WORD);
        assert_lacks(cmd, REVERT_PATH); /* the revert is not on a crashing disk */
        snprintf(seed, sizeof seed, " --seed 0x%016" PRIx64, emulation_seed(i, 1));
        assert_contains(cmd, seed);
        assert_true(ends_with(cmd, seed));
    }

    /* Y: endpoint 12's crash at boot comes before the live ones of 7 and 10;
     * a profile built into fleetsim has no --profiles. */
    const report_bucket *y = bucket(r, KEY_Y);
    assert_int_equal(y->nexamples, 3);
    assert_int_equal(y->examples[0].endpoint, 12);
    assert_int_equal(y->examples[1].endpoint, 7);
    assert_int_equal(y->examples[2].endpoint, 10);
    assert_contains(y->examples[0].command, " --profile " WIN11);
    assert_lacks(y->examples[0].command, "--profiles");
    snprintf(seed, sizeof seed, " --seed 0x%016" PRIx64, emulation_seed(12, 0));
    assert_contains(y->examples[0].command, seed);
    assert_contains(y->examples[1].command, " --profile " WIN10);
    snprintf(seed, sizeof seed, " --seed 0x%016" PRIx64, emulation_seed(7, 0));
    assert_contains(y->examples[1].command, seed);

    /* Z: one endpoint, once, at its first boot-started hang. */
    const report_bucket *z = bucket(r, KEY_Z);
    assert_int_equal(z->nexamples, 1);
    assert_int_equal(z->examples[0].endpoint, 11);
    assert_int_equal(z->examples[0].boot, 1);
    report_free(r);

    /* The program's name as asked (the command line passes its own path). */
    report_options opts;
    report_options_init(&opts);
    opts.program = "/usr/local/bin/fleetsim";
    r = load(f->path, &opts);
    assert_true(strncmp(bucket(r, KEY_X)->examples[0].command,
                        "/usr/local/bin/fleetsim emulate ", 32) == 0);
    report_free(r);
}

/*
 * A boot loop writes a crash a boot.  An endpoint that looped 70 times must
 * not hide the other endpoints of its bucket from the examples.
 */
static void examples_reach_past_long_boot_loops(void **state)
{
    fixture *f = *state;
    store *st = NULL;
    char err[512];
    open_store(f->path, &st);
    write_run(st, 3);
    write_artifacts(st);
    for (uint64_t id = 0; id < 3; id++) {
        store_endpoint e = {.id = id, .profile = WIN10, .sensor = "7.11", .region = "eu-west",
                            .tenant = "acme", .seed = id, .ring = -1};
        assert_int_equal(store_write_endpoints(st, &e, 1, err, sizeof err), 0);
        assert_int_equal(store_write_timeline_event(st, id, 1000, STORE_TIMELINE_RECEIVED, "update",
                                                    err, sizeof err), 0);
        uint32_t boots = id == 0 ? 70 : 2;
        for (uint32_t boot = 1; boot < boots; boot++) {
            sim_outcome *o = crash_at(0xfffff80000000000ull + ((uint64_t)boot << 21),
                                      "MatchInstance", 0x2f);
            store_outcome_at at = {id, boot, 1000 + boot * 60000, "sensor.sys", true,
                                   id * 1000 + boot, "boot"};
            assert_int_equal(store_write_outcome(st, &at, o, err, sizeof err), 0);
            free(o);
        }
    }
    mark(st, RUN_COMPLETE);

    report *r = load(f->path, NULL);
    const report_bucket *x = bucket(r, KEY_X);
    assert_int_equal(x->endpoints, 3);
    assert_int_equal(x->crashes, 71);
    if (x->nexamples != 3)
        fail_msg("%zu examples of a bucket that hit 3 endpoints", x->nexamples);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(x->examples[i].endpoint, i);
        assert_int_equal(x->examples[i].boot, 1);
    }
    report_free(r);
}

/* An outcome whose image the loop did not record (store.h: image NULL is
 * "unknown"), in a store without image artifacts: reported, not a crash. */
static void examples_without_a_known_image(void **state)
{
    fixture *f = *state;
    store *st = NULL;
    char err[512];
    open_store(f->path, &st);
    write_run(st, 1);
    store_endpoint e = {.id = 0, .profile = WIN10, .sensor = "7.11", .seed = 1, .ring = -1};
    assert_int_equal(store_write_endpoints(st, &e, 1, err, sizeof err), 0);
    assert_int_equal(store_write_timeline_event(st, 0, 1000, STORE_TIMELINE_RECEIVED, "update", err,
                                                sizeof err), 0);
    sim_outcome *o = crash_at(0xfffff80000000000ull, "MatchInstance", 0x2f);
    store_outcome_at at = {0, 0, 1000, NULL, true, 0x1234, "boot"};
    assert_int_equal(store_write_outcome(st, &at, o, err, sizeof err), 0);
    free(o);
    mark(st, RUN_COMPLETE);

    report *r = load(f->path, NULL);
    assert_int_equal(r->nbuckets, 1);
    assert_int_equal(r->buckets[0].endpoints, 1);
    for (size_t i = 0; i < r->buckets[0].nexamples; i++)
        assert_non_null(r->buckets[0].examples[i].command);
    report_free(r);
}

static void by_any_attribute(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);

    /* A column of the endpoints. */
    report *r = load_by(f->path, "region");
    assert_int_equal(r->nby, 1);
    assert_string_equal(r->by[0], "region");
    assert_int_equal(r->ncohorts, 2);
    const expect_counts eu = {"eu-west", 18, 15, 6, 3, 3, 3, 11, 0, KEY_X};
    const expect_counts us = {"us-east", 17, 15, 5, 3, 2, 3, 12, 1, KEY_X};
    check_cohort(&r->cohorts[0], &eu);
    check_cohort(&r->cohorts[1], &us);
    report_free(r);

    r = load_by(f->path, "tenant");
    assert_int_equal(r->ncohorts, 2);
    const expect_counts acme = {"acme", 20, 20, 11, 6, 5, 6, 23, 1, KEY_X};
    const expect_counts globex = {"globex", 15, 10, 0, 0, 0, 0, 0, 0, NULL};
    check_cohort(&r->cohorts[0], &acme);
    check_cohort(&r->cohorts[1], &globex);
    report_free(r);

    /* An inventory attribute; endpoints without it are "(none)". */
    r = load_by(f->path, "hardware");
    assert_int_equal(r->ncohorts, 3);
    const expect_counts vm = {"vm", 5, 5, 5, 5, 0, 5, 14, 0, KEY_X};
    const expect_counts laptop = {"laptop", 25, 25, 6, 1, 5, 1, 9, 1, KEY_Y};
    const expect_counts none = {"(none)", 5, 0, 0, 0, 0, 0, 0, 0, NULL};
    check_cohort(&r->cohorts[0], &vm);
    check_cohort(&r->cohorts[1], &laptop);
    check_cohort(&r->cohorts[2], &none);
    report_free(r);

    /* Several, in the order given, joined in the label. */
    r = load_by(f->path, "hardware, tenant");
    assert_int_equal(r->nby, 2);
    assert_string_equal(r->by[0], "hardware");
    assert_string_equal(r->by[1], "tenant");
    assert_int_equal(r->ncohorts, 4);
    assert_string_equal(r->cohorts[0].label, "vm / acme");
    assert_string_equal(r->cohorts[0].values[0], "vm");
    assert_string_equal(r->cohorts[0].values[1], "acme");
    assert_string_equal(r->cohorts[1].label, "laptop / acme");
    cohort(r, "laptop / globex");
    cohort(r, "(none) / globex");
    report_free(r);

    /* An attribute nobody has: an error naming it and the store. */
    report_options opts;
    report_options_init(&opts);
    char text[64] = "profile,colour", err[512] = "";
    assert_int_equal(report_parse_by(&opts, text, err, sizeof err), 0);
    report *bad = (report *)1;
    assert_int_equal(report_load(f->path, &opts, &bad, err, sizeof err), SIM_EINVAL);
    assert_null(bad);
    assert_contains(err, "\"colour\"");
    assert_contains(err, f->path);
}

static void parse_by_checks_names(void **state)
{
    (void)state;
    report_options opts;
    report_options_init(&opts);
    assert_string_equal(opts.by[0], "profile");
    assert_string_equal(opts.by[1], "sensor");
    assert_null(opts.by[2]);

    char err[256], ok[] = "region,tenant";
    assert_int_equal(report_parse_by(&opts, ok, err, sizeof err), 0);
    assert_string_equal(opts.by[0], "region");
    assert_string_equal(opts.by[1], "tenant");
    assert_null(opts.by[2]);

    static const struct { const char *text, *says; } bad[] = {
        {"", "at least one"},
        {",,", "at least one"},
        {"region,region", "\"region\""},
        {"a,b,c,d,e,f,g", "at most"},
        {"region;drop", "\"region;drop\""},
        {"re gion", "\"re gion\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "%s", bad[i].text);
        err[0] = '\0';
        if (report_parse_by(&opts, text, err, sizeof err) != SIM_EINVAL)
            fail_msg("--by \"%s\" was accepted", bad[i].text);
        assert_contains(err, bad[i].says);
    }

    /* Spaces around a name are not part of it (as in a gate expression). */
    char spaced[] = " region , tenant ";
    if (report_parse_by(&opts, spaced, err, sizeof err) != 0)
        fail_msg("--by \" region , tenant \": %s", err);
    assert_string_equal(opts.by[0], "region");
    assert_string_equal(opts.by[1], "tenant");
}

static void series_is_cumulative(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    report *r = load(f->path, NULL);
    assert_int_equal(r->nseries, REPORT_SERIES_BINS);
    for (size_t i = 0; i < r->nseries; i++) {
        const report_point *p = &r->series[i];
        if (i) {
            const report_point *q = &r->series[i - 1];
            assert_true(p->vt_ms > q->vt_ms);
            assert_true(p->received >= q->received);
            assert_true(p->crashed >= q->crashed);
            assert_true(p->recovered >= q->recovered);
        }
        assert_int_equal(p->down, p->crashed - p->recovered);
        /* Each point counts the endpoints whose first event came before it. */
        uint64_t received = 0, crashed = 0;
        for (uint64_t id = 0; id < FLEET; id++) {
            planned pl;
            plan(id, &pl);
            received += pl.received && received_ms(id) < p->vt_ms;
            crashed += strchr("XYH", pl.boots[0] ? pl.boots[0] : 'o') && pl.received &&
                       boot_ms(id, 0) < p->vt_ms;
        }
        if (p->received != received || p->crashed != crashed)
            fail_msg("point %zu at %" PRId64 " ms: received %" PRIu64 ", crashed %" PRIu64
                     "; expected %" PRIu64 ", %" PRIu64,
                     i, p->vt_ms, p->received, p->crashed, received, crashed);
    }
    assert_int_equal(r->series[0].received, 0);
    /* The last point is the run's end and its totals. */
    const report_point *last = &r->series[r->nseries - 1];
    assert_int_equal(last->vt_ms, DURATION_MS);
    assert_int_equal(last->received, r->total.reached);
    assert_int_equal(last->crashed, r->total.faulted);
    assert_int_equal(last->recovered, r->total.recovered);
    assert_int_equal(last->down, r->total.still_down);
    report_free(r);
}

/* ---- report_load: errors ------------------------------------------------------- */

static void check_load_error(const char *path, const char *says)
{
    report *r = (report *)1;
    char err[1024] = "";
    int rc = report_load(path, NULL, &r, err, sizeof err);
    if (rc >= 0)
        fail_msg("%s was loaded (%s expected)", path, says);
    assert_null(r);
    assert_contains(err, path);
    assert_contains(err, says);
}

static void load_errors_name_the_path(void **state)
{
    fixture *f = *state;
    char path[160];

    snprintf(path, sizeof path, "%s/missing.db", f->dir);
    check_load_error(path, "cannot open");

    snprintf(path, sizeof path, "%s/notes.txt", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 100; i++)
        fputs("this is not a database, only text that goes on for a while\n", fp);
    fclose(fp);
    check_load_error(path, "not a fleetsim run store");

    snprintf(path, sizeof path, "%s/other.sqlite", f->dir);
    sql_exec(path, "CREATE TABLE t (x); INSERT INTO t VALUES (1);");
    check_load_error(path, "not a fleetsim run store");

    write_main_store(f->path, RUN_COMPLETE);
    sql_exec(f->path, "UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    check_load_error(f->path, "99");
    check_load_error(f->path, "version");

    /* A store whose run never started has no run row. */
    store *st = NULL;
    open_store(f->other, &st);
    assert_int_equal(store_close(st, NULL, 0), 0);
    check_load_error(f->other, "no run");

    /* A store is read, never written. */
    write_main_store(f->path, RUN_COMPLETE);
    size_t nbefore, nafter;
    char *before = slurp(f->path, &nbefore);
    report *r = load(f->path, NULL);
    report_free(r);
    char *after = slurp(f->path, &nafter);
    assert_int_equal(nafter, nbefore);
    assert_true(memcmp(before, after, nbefore) == 0);
    free(before);
    free(after);
}

/* Each allocation of a load fails in turn: an error or the very same report. */
static void load_survives_allocation_failures(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    report_gate g;
    report_gate_default(&g);
    report_verdict v;

    uint64_t before = sim_alloc_count();
    report *r = load(f->path, NULL);
    uint64_t allocations = sim_alloc_count() - before;
    assert_int_equal(report_gate_check(r, &g, &v), 0);
    char *want = render(REPORT_JSON, r, &g, &v, false);
    report_verdict_free(&v);
    report_free(r);
    assert_true(allocations > 20);

    for (uint64_t n = 1; n <= allocations; n++) {
        char err[1024] = "";
        r = (report *)1;
        sim_alloc_fail_after(n);
        int rc = report_load(f->path, NULL, &r, err, sizeof err);
        sim_alloc_fail_after(0);
        if (rc == 0) {
            assert_int_equal(report_gate_check(r, &g, &v), 0);
            char *got = render(REPORT_JSON, r, &g, &v, false);
            if (strcmp(got, want) != 0)
                fail_msg("allocation %" PRIu64 " of %" PRIu64 " failed, and the report loaded "
                         "without it differs:\n%s\nexpected:\n%s",
                         n, allocations, got, want);
            free(got);
            report_verdict_free(&v);
            report_free(r);
            continue;
        }
        if (rc != SIM_ENOMEM)
            fail_msg("allocation %" PRIu64 " failed: %d (%s), not SIM_ENOMEM", n, rc, err);
        assert_null(r);
        assert_contains(err, "out of memory");
    }
    free(want);
}

/* ---- formats -------------------------------------------------------------------- */

typedef struct rendered {
    report *r;
    report_gate g;
    report_verdict v;
} rendered;

static void prepare_default(rendered *x, const char *path, const char *by)
{
    x->r = by ? load_by(path, by) : load(path, NULL);
    report_gate_default(&x->g);
    assert_int_equal(report_gate_check(x->r, &x->g, &x->v), 0);
}

static void release(rendered *x)
{
    report_verdict_free(&x->v);
    report_free(x->r);
}

static void format_names(void **state)
{
    (void)state;
    static const struct { const char *name; report_format f; } names[] = {
        {"text", REPORT_TEXT}, {"md", REPORT_MARKDOWN},  {"markdown", REPORT_MARKDOWN},
        {"html", REPORT_HTML}, {"json", REPORT_JSON},    {"junit", REPORT_JUNIT},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        report_format f = (report_format)-1;
        assert_int_equal(report_format_parse(names[i].name, &f), 0);
        assert_int_equal(f, names[i].f);
    }
    report_format f;
    assert_true(report_format_parse("xml", &f) < 0);
    assert_true(report_format_parse("", &f) < 0);
}

static void json_report(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    rendered x;
    prepare_default(&x, f->path, NULL);
    char *doc = render(REPORT_JSON, x.r, &x.g, &x.v, false);
    if (!json_valid(doc))
        fail_msg("not valid JSON:\n%s", doc);

    assert_string_equal(json_get(doc, "$.run.scenario"), "channel-file-291");
    assert_string_equal(json_get(doc, "$.run.store"), f->path);
    assert_string_equal(json_get(doc, "$.run.complete"), "1");
    assert_string_equal(json_get(doc, "$.by[1]"), "sensor");
    assert_string_equal(json_get(doc, "$.interval"), "Wilson");
    assert_string_equal(json_get(doc, "$.total.faulted"), "11");
    static const char *const labels[] = {LABEL_A, LABEL_B, LABEL_C, LABEL_D};
    for (int i = 0; i < 4; i++) {
        char p[64];
        snprintf(p, sizeof p, "$.cohorts[%d].label", i);
        assert_string_equal(json_get(doc, p), labels[i]);
    }
    assert_string_equal(json_get(doc, "$.cohorts[4].label"), "<null>");
    assert_string_equal(json_get(doc, "$.cohorts[0].values.profile"), WIN10);
    assert_string_equal(json_get(doc, "$.cohorts[0].top_bucket"), KEY_X);
    assert_string_equal(json_get(doc, "$.cohorts[1].top_bucket"), KEY_Y);
    assert_string_equal(json_get(doc, "$.cohorts[2].top_bucket"), "<null>");
    assert_string_equal(json_get(doc, "$.cohorts[0].faulted"), "8");
    assert_string_equal(json_get(doc, "$.cohorts[0].fault_rate"), "0.8");
    assert_string_equal(json_get(doc, "$.cohorts[0].passed"), "0");
    assert_string_equal(json_get(doc, "$.cohorts[2].passed"), "1");
    assert_near(atof(json_get(doc, "$.cohorts[0].interval[1]")), x.r->cohorts[0].n.hi, 1e-9);
    assert_string_equal(json_get(doc, "$.buckets[0].bucket"), KEY_X);
    assert_string_equal(json_get(doc, "$.buckets[0].endpoints"), "7");
    assert_string_equal(json_get(doc, "$.buckets[0].bugcheck"), "0x50");
    assert_string_equal(json_get(doc, "$.buckets[2].bugcheck"), "<null>");
    assert_contains(json_get(doc, "$.buckets[0].stack[0]"), "sensor!MatchInstance+0x2f");
    assert_contains(json_get(doc, "$.buckets[0].examples[0].command"), IMAGE_PATH);
    assert_string_equal(json_get(doc, "$.buckets_total"), "3");
    assert_string_equal(json_get(doc, "$.series[47].received"), "30");
    assert_string_equal(json_get(doc, "$.verdict.passed"), "0");
    assert_string_equal(json_get(doc, "$.verdict.incomplete"), "0");
    assert_string_equal(json_get(doc, "$.verdict.gate"), "max-faults=0");
    assert_contains(json_get(doc, "$.verdict.line"), "FAIL: ");
    assert_string_equal(json_get(doc, "$.verdict.violations[0].cohort"), LABEL_A);
    assert_string_equal(json_get(doc, "$.verdict.violations[2]"), "<null>");
    free(doc);
    release(&x);

    /* A passing verdict. */
    prepare_default(&x, f->path, NULL);
    report_verdict_free(&x.v);
    char err[128];
    assert_int_equal(report_gate_parse("max-fault-rate=100%", &x.g, err, sizeof err), 0);
    assert_int_equal(report_gate_check(x.r, &x.g, &x.v), 0);
    doc = render(REPORT_JSON, x.r, &x.g, &x.v, false);
    assert_true(json_valid(doc));
    assert_string_equal(json_get(doc, "$.verdict.passed"), "1");
    assert_string_equal(json_get(doc, "$.verdict.violations[0]"), "<null>");
    free(doc);
    release(&x);
}

/* The simple store with a region a label carries into XML and Markdown. */
#define NASTY_REGION "eu&\"<west>\" | 'b'"

static void junit_report(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    rendered x;
    prepare_default(&x, f->path, NULL);
    char *xml = render(REPORT_JUNIT, x.r, &x.g, &x.v, false);
    assert_true(strncmp(xml, "<?xml version=\"1.0\"", 19) == 0);
    /* A case per cohort and two for the run; the failing cohorts fail. */
    assert_int_equal(count(xml, "<testcase "), x.r->ncohorts + 2);
    assert_int_equal(count(xml, "</testcase>"), x.r->ncohorts + 2);
    assert_contains(xml, "name=\"run complete\"");
    assert_contains(xml, "name=\"run-wide limits\"");
    assert_int_equal(x.v.ncohorts_failed, 2);
    assert_contains(xml, "<testsuites name=\"fleetsim\" tests=\"6\" failures=\"2\"");
    assert_contains(xml, "tests=\"6\" failures=\"2\" errors=\"0\" skipped=\"0\"");
    assert_int_equal(count(xml, "<failure"), 2);
    assert_int_equal(count(xml, "</failure>"), 2);
    for (size_t i = 0; i < x.r->ncohorts; i++) {
        char name[256];
        snprintf(name, sizeof name, "name=\"%s\"", x.r->cohorts[i].label);
        assert_int_equal(count(xml, name), 1);
    }
    assert_contains(xml, KEY_X);
    assert_int_equal(count(xml, "<testsuite "), 1);
    assert_int_equal(count(xml, "</testsuite>"), 1);
    assert_true(ends_with(xml, "</testsuites>\n"));
    free(xml);
    release(&x);

    /* Escaping: a label with & < > " ' comes out as entities, never raw. */
    cohort_spec specs[] = {
        {WIN10, "7.11", NASTY_REGION, 10, 2, "MatchInstance"},
        {WIN10, "7.11", "plain", 10, 0, NULL},
    };
    write_simple_store(f->other, specs, 2, RUN_COMPLETE);
    prepare_default(&x, f->other, "region");
    assert_string_equal(x.r->cohorts[0].label, NASTY_REGION);
    xml = render(REPORT_JUNIT, x.r, &x.g, &x.v, false);
    assert_contains(xml, "name=\"eu&amp;&quot;&lt;west&gt;&quot; | &#39;b&#39;\"");
    assert_lacks(xml, "<west>");
    assert_lacks(xml, "eu&\"");
    assert_contains(xml, "failures=\"1\"");
    assert_int_equal(count(xml, "<testcase "), 4);
    assert_int_equal(count(xml, "</testcase>"), 4);
    /* Every & starts an entity; every < starts a tag or a declaration. */
    for (const char *p = xml; (p = strchr(p, '&')) != NULL; p++)
        if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) &&
            strncmp(p, "&quot;", 6) && strncmp(p, "&#39;", 5))
            fail_msg("a raw & in:\n%s", xml);
    for (const char *p = xml; (p = strchr(p, '<')) != NULL; p++)
        if (!(p[1] == '/' || p[1] == '?' || (p[1] >= 'a' && p[1] <= 'z')))
            fail_msg("a raw < in:\n%s", xml);
    free(xml);
    release(&x);
}

static void markdown_and_text_reports(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    rendered x;
    prepare_default(&x, f->path, NULL);
    char line[1024];
    report_verdict_line(&x.g, &x.v, line, sizeof line);
    assert_true(strncmp(line, "FAIL: ", 6) == 0);

    /* Markdown: a table with a row per cohort, worst first; the bold verdict last. */
    char *md = render(REPORT_MARKDOWN, x.r, &x.g, &x.v, false);
    const char *head = strstr(md, "\n| profile / sensor | endpoints | reached | faulted |");
    assert_non_null(head);
    const char *rule = strchr(head + 1, '\n');
    assert_non_null(rule);
    assert_true(strncmp(rule, "\n| --- |", 8) == 0);
    const char *rowp = strchr(rule + 1, '\n') + 1;
    size_t rows = 0;
    while (strncmp(rowp, "| ", 2) == 0) {
        char want[256];
        snprintf(want, sizeof want, "| %s |", x.r->cohorts[rows].label);
        if (strncmp(rowp, want, strlen(want)) != 0)
            fail_msg("row %zu is not cohort \"%s\":\n%s", rows, x.r->cohorts[rows].label, md);
        rows++;
        rowp = strchr(rowp, '\n') + 1;
    }
    assert_int_equal(rows, x.r->ncohorts);
    char bold[1100];
    snprintf(bold, sizeof bold, "\n**%s**\n", line);
    assert_true(ends_with(md, bold));
    assert_contains(md, KEY_X);
    assert_contains(md, "```sh\n");
    assert_contains(md, IMAGE_PATH);
    free(md);

    /* Text: the same content, no colour unless asked, the verdict line last. */
    char *text = render(REPORT_TEXT, x.r, &x.g, &x.v, false);
    char tail[1100];
    snprintf(tail, sizeof tail, "\n%s\n", line);
    assert_true(ends_with(text, tail));
    assert_lacks(text, "\033[");
    assert_contains(text, KEY_X);
    assert_contains(text, KEY_Y);
    assert_contains(text, KEY_Z);
    assert_contains(text, "sensor!MatchInstance+0x2f  (0x");
    assert_contains(text, bucket(x.r, KEY_X)->examples[0].command);
    /* Cohorts in worst-first order. */
    const char *prev = text;
    for (size_t i = 0; i < x.r->ncohorts; i++) {
        char want[256];
        snprintf(want, sizeof want, "\n%s ", x.r->cohorts[i].label);
        const char *at = strstr(text, want);
        if (!at || at < prev)
            fail_msg("cohort \"%s\" is not in order in:\n%s", x.r->cohorts[i].label, text);
        prev = at;
    }
    free(text);
    text = render(REPORT_TEXT, x.r, &x.g, &x.v, true);
    assert_contains(text, "\033[31m");
    free(text);
    release(&x);

    /* A passing report ends with PASS. */
    prepare_default(&x, f->path, NULL);
    report_verdict_free(&x.v);
    char err[128];
    assert_int_equal(report_gate_parse("max-fault-rate=100%", &x.g, err, sizeof err), 0);
    assert_int_equal(report_gate_check(x.r, &x.g, &x.v), 0);
    text = render(REPORT_TEXT, x.r, &x.g, &x.v, false);
    assert_true(ends_with(text, "\nPASS: every cohort within max-fault-rate=100%\n"));
    free(text);
    md = render(REPORT_MARKDOWN, x.r, &x.g, &x.v, false);
    assert_true(ends_with(md, "\n**PASS: every cohort within max-fault-rate=100%**\n"));
    free(md);
    release(&x);

    /* A '|' in a label does not split a Markdown cell. */
    cohort_spec specs[] = {{WIN10, "7.11", NASTY_REGION, 10, 2, "MatchInstance"}};
    write_simple_store(f->other, specs, 1, RUN_COMPLETE);
    prepare_default(&x, f->other, "region");
    md = render(REPORT_MARKDOWN, x.r, &x.g, &x.v, false);
    assert_contains(md, "| eu&\"<west>\" \\| 'b' |");
    free(md);
    release(&x);
}

static void formats_name_the_same_top_bucket(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    rendered x;
    prepare_default(&x, f->path, NULL);
    static const report_format formats[] = {REPORT_TEXT, REPORT_MARKDOWN, REPORT_HTML,
                                            REPORT_JSON, REPORT_JUNIT};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        char *out = render(formats[i], x.r, &x.g, &x.v, false);
        assert_contains(out, x.r->cohorts[0].top_bucket);
        assert_contains(out, x.r->cohorts[1].top_bucket);
        free(out);
    }
    /* A report that cannot be written says so. */
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        assert_int_equal(report_write(full, REPORT_TEXT, x.r, &x.g, &x.v, false), -1);
        fclose(full);
    }
    release(&x);
}

/* ---- diff ------------------------------------------------------------------------ */

static void diff_buckets_new_and_gone(void **state)
{
    fixture *f = *state;
    cohort_spec with = {WIN10, "7.11", "eu-west", 100, 5, "MatchInstance"};
    cohort_spec without = {WIN10, "7.11", "eu-west", 100, 0, NULL};
    write_simple_store(f->path, &with, 1, RUN_COMPLETE);
    write_simple_store(f->other, &without, 1, RUN_COMPLETE);
    report *base = load(f->path, NULL), *cand = load(f->other, NULL);

    /* The candidate lost the bucket: "gone", not worse (5/100 and 0/100 overlap). */
    bool worse = true;
    char *text = render_diff(REPORT_TEXT, base, cand, &worse);
    assert_false(worse);
    assert_contains(line_with(text, KEY_X), "gone");
    assert_contains(line_with(text, KEY_X), "5 -> 0");
    assert_true(ends_with(line_with(text, "\n  " LABEL_A), "same"));
    assert_contains(text, "NOT WORSE");
    free(text);

    /* The other way round: "new", and worse. */
    worse = false;
    text = render_diff(REPORT_TEXT, cand, base, &worse);
    assert_true(worse);
    assert_contains(line_with(text, KEY_X), "new");
    assert_contains(line_with(text, KEY_X), "0 -> 5");
    assert_lacks(text, "NOT WORSE");
    free(text);

    /* The same run against itself: nothing new, nothing gone. */
    text = render_diff(REPORT_TEXT, base, base, &worse);
    assert_false(worse);
    assert_lacks(line_with(text, KEY_X), "new");
    assert_lacks(line_with(text, KEY_X), "gone");
    free(text);

    /* JSON says the same. */
    char *doc = render_diff(REPORT_JSON, cand, base, &worse);
    if (!json_valid(doc))
        fail_msg("not valid JSON:\n%s", doc);
    assert_string_equal(json_get(doc, "$.worse"), "1");
    assert_string_equal(json_get(doc, "$.baseline"), f->other);
    assert_string_equal(json_get(doc, "$.candidate"), f->path);
    assert_string_equal(json_get(doc, "$.buckets[0].bucket"), KEY_X);
    assert_string_equal(json_get(doc, "$.buckets[0].change"), "new");
    assert_string_equal(json_get(doc, "$.buckets[0].candidate_endpoints"), "5");
    assert_string_equal(json_get(doc, "$.cohorts[0].label"), LABEL_A);
    assert_string_equal(json_get(doc, "$.cohorts[0].change"), "same");
    free(doc);
    doc = render_diff(REPORT_JSON, base, cand, &worse);
    assert_true(json_valid(doc));
    assert_string_equal(json_get(doc, "$.worse"), "0");
    assert_string_equal(json_get(doc, "$.buckets[0].change"), "gone");
    free(doc);
    report_free(base);
    report_free(cand);
}

static void diff_cohorts_worse_better_same(void **state)
{
    fixture *f = *state;
    /* 1/100 against 60/100: intervals far apart.  The bucket is in both. */
    cohort_spec low[] = {{WIN10, "7.11", "eu-west", 100, 1, "MatchInstance"},
                         {WIN11, "7.11", "eu-west", 100, 5, "MatchInstance"},
                         {WIN10, "7.10", "eu-west", 50, 0, NULL}};
    cohort_spec high[] = {{WIN10, "7.11", "eu-west", 100, 60, "MatchInstance"},
                          {WIN11, "7.11", "eu-west", 100, 8, "MatchInstance"},
                          {WIN11, "7.10", "eu-west", 50, 0, NULL}};
    write_simple_store(f->path, low, 3, RUN_COMPLETE);
    write_simple_store(f->other, high, 3, RUN_COMPLETE);
    report *base = load(f->path, NULL), *cand = load(f->other, NULL);

    bool worse = false;
    char *text = render_diff(REPORT_TEXT, base, cand, &worse);
    assert_true(worse);
    assert_true(ends_with(line_with(text, "\n  " LABEL_A) , "worse"));
    assert_true(ends_with(line_with(text, "\n  " LABEL_B), "same")); /* 5% and 8% overlap */
    assert_true(ends_with(line_with(text, "\n  " LABEL_D), "new"));  /* a cohort only there */
    assert_true(ends_with(line_with(text, "\n  " LABEL_C), "gone"));
    assert_contains(line_with(text, "\n  " LABEL_A), "1/100");
    assert_contains(line_with(text, "\n  " LABEL_A), "60/100");
    assert_lacks(line_with(text, KEY_X), "new"); /* in both */
    assert_contains(text, "1 cohort worse");
    free(text);

    char *doc = render_diff(REPORT_JSON, base, cand, &worse);
    assert_true(json_valid(doc));
    assert_string_equal(json_get(doc, "$.worse"), "1");
    assert_string_equal(json_get(doc, "$.buckets[0].change"), "both");
    assert_string_equal(json_get(doc, "$.cohorts[0].label"), LABEL_A);
    assert_string_equal(json_get(doc, "$.cohorts[0].change"), "worse");
    assert_string_equal(json_get(doc, "$.cohorts[0].baseline.faulted"), "1");
    assert_string_equal(json_get(doc, "$.cohorts[0].candidate.faulted"), "60");
    free(doc);

    /* Reversed: better, and not worse. */
    worse = true;
    text = render_diff(REPORT_TEXT, cand, base, &worse);
    assert_false(worse);
    assert_true(ends_with(line_with(text, "\n  " LABEL_A), "better"));
    assert_true(ends_with(line_with(text, "\n  " LABEL_B), "same"));
    free(text);

    /* Markdown: a table row per cohort, and the bold summary. */
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_int_equal(report_diff_write(out, REPORT_MARKDOWN, base, cand, false, &worse), 0);
    fclose(out);
    assert_true(worse);
    assert_contains(buf, "| " LABEL_A " | ");
    assert_true(ends_with(line_with(buf, "| " LABEL_A " | "), "| worse |"));
    assert_contains(buf, "**WORSE");
    free(buf);
    report_free(base);
    report_free(cand);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_dir, teardown_dir)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(intervals_match_published_values),
        cmocka_unit_test(percent_and_clock),
        cmocka_unit_test(gate_parses_limits),
        cmocka_unit_test(gate_errors_name_the_part),
        T(gate_checks_cohorts_and_the_run),
        T(gate_fails_an_incomplete_run),
        T(load_reads_the_run_and_its_cohorts),
        T(load_uses_the_interval_asked_for),
        T(buckets_group_a_fault_across_image_bases),
        T(bucket_cohorts_are_worst_first),
        T(examples_replay_the_crash),
        T(examples_reach_past_long_boot_loops),
        T(examples_without_a_known_image),
        T(by_any_attribute),
        cmocka_unit_test(parse_by_checks_names),
        T(series_is_cumulative),
        T(load_errors_name_the_path),
        T(load_survives_allocation_failures),
        cmocka_unit_test(format_names),
        T(json_report),
        T(junit_report),
        T(markdown_and_text_reports),
        T(formats_name_the_same_top_bucket),
        T(diff_buckets_new_and_gone),
        T(diff_cohorts_worse_better_same),
    };
#undef T
    return cmocka_run_group_tests(tests, compute_keys, NULL);
}
