/*
 * report_fixture.c — the stores the report tests read, and the helpers
 * they share (report_fixture.h).
 */
#include "report_fixture.h"
#include "store_fixture.h"

/* ---- fixtures ------------------------------------------------------------ */

int setup_dir(void **state)
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

int teardown_dir(void **state)
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

/* The bucket keys, as the store computes them (test_store checks their form). */
char KEY_X[STORE_BUCKET_SIZE], KEY_Y[STORE_BUCKET_SIZE], KEY_Z[STORE_BUCKET_SIZE];

int compute_keys(void **state)
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

void write_run(store *st, uint64_t fleet_size)
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

void write_artifacts(store *st)
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

void mark(store *st, int status)
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

void plan(uint64_t id, planned *p)
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

int64_t received_ms(uint64_t id)
{
    return 600500 + (int64_t)id * 60000; /* never on a series bin's edge */
}

int64_t boot_ms(uint64_t id, uint32_t boot)
{
    return received_ms(id) + (int64_t)boot * 300000;
}

uint64_t emulation_seed(uint64_t id, uint32_t boot)
{
    return 0x5eed000000000000ull + id * 16 + boot;
}

void write_main_store(const char *path, int status)
{
    store *st = NULL;
    char err[512];
    open_store(path, true, &st);
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
        timeline_event(st, id, 0, STORE_TIMELINE_ONLINE, NULL);
        if (!p.received)
            continue;
        timeline_event(st, id, received_ms(id), STORE_TIMELINE_RECEIVED, "update");
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
            timeline_event(st, id, at.vt_ms, STORE_TIMELINE_EMULATED, NULL);
            if (strchr("XYH", what)) {
                timeline_event(st, id, at.vt_ms, STORE_TIMELINE_CRASHED, NULL);
                timeline_event(st, id, at.vt_ms, STORE_TIMELINE_REBOOTED, NULL);
                crashed = true;
            } else if (crashed) {
                timeline_event(st, id, at.vt_ms, STORE_TIMELINE_RECOVERED, NULL);
                crashed = false;
            }
            free(o);
        }
        /* An operator repaired endpoint 10 before its next boot. */
        if (id == 10)
            timeline_event(st, id, boot_ms(id, 0) + 120000, STORE_TIMELINE_REPAIRED, NULL);
    }
    mark(st, status);
}

void write_simple_store(const char *path, const cohort_spec *specs, size_t n, int status)
{
    store *st = NULL;
    char err[512];
    open_store(path, true, &st);
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
            timeline_event(st, id, t, STORE_TIMELINE_RECEIVED, "update");
            bool bad = k < specs[c].faulted;
            uint64_t base = 0xfffff80000000000ull + (id << 21);
            sim_outcome *o = bad ? crash_at(base, specs[c].function, 0x2f) : ok_outcome(base);
            store_outcome_at at = {id, 0, t, "sensor.sys", true, id, "boot"};
            assert_int_equal(store_write_outcome(st, &at, o, err, sizeof err), 0);
            if (bad)
                timeline_event(st, id, t, STORE_TIMELINE_CRASHED, NULL);
            free(o);
        }
    }
    mark(st, status);
}

/* ---- helpers --------------------------------------------------------------- */

report *load(const char *path, const report_options *opts)
{
    report *r = NULL;
    char err[1024];
    int rc = report_load(path, opts, &r, err, sizeof err);
    if (rc != 0)
        fail_msg("report_load: %d: %s", rc, err);
    assert_non_null(r);
    return r;
}

report *load_by(const char *path, const char *by)
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

const report_cohort *cohort(const report *r, const char *label)
{
    for (size_t i = 0; i < r->ncohorts; i++)
        if (strcmp(r->cohorts[i].label, label) == 0)
            return &r->cohorts[i];
    fail_msg("no cohort \"%s\"", label);
    return NULL;
}

const report_bucket *bucket(const report *r, const char *key)
{
    for (size_t i = 0; i < r->nbuckets; i++)
        if (strcmp(r->buckets[i].key, key) == 0)
            return &r->buckets[i];
    fail_msg("no bucket \"%s\"", key);
    return NULL;
}

void check_counts(const report_counts *n, const expect_counts *x)
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

void check_cohort(const report_cohort *c, const expect_counts *x)
{
    assert_string_equal(c->label, x->label);
    check_counts(&c->n, x);
    if (!x->top_bucket)
        assert_null(c->top_bucket);
    else
        assert_string_equal(c->top_bucket, x->top_bucket);
}

/* The report in a format, as one string (free it). */
char *render(report_format f, const report *r, const report_gate *g,
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

char *render_diff(report_format f, const report *base, const report *cand, bool *worse)
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

size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* The line of `text` that contains `needle` (first one), in a static buffer; a
 * needle may begin with the newline before the line. */
const char *line_with(const char *text, const char *needle)
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

bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* SQLite's JSON functions read the JSON documents. */
bool json_valid(const char *doc)
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
const char *json_get(const char *doc, const char *path)
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
char *slurp(const char *path, size_t *len)
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

void sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}
