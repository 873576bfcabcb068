/*
 * test_store.c — the run store: schema, rows read back with plain SQL,
 * bucket keys, natural keys that make content independent of write order,
 * a full disk, allocation failures, an interrupted run, and the README's
 * schema and example queries (checked against the code, and run).
 *
 * Outcomes are made by hand here (no emulation), so this is a unit test.
 */
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

#include "sim.h"
#include "store.h"
#include "store_fixture.h"

/* ---- fixtures ------------------------------------------------------------ */

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup_dir(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/run.db", f->dir);
    *state = f;
    return 0;
}

static int teardown_dir(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void write_run(store *st)
{
    store_run run = {
        .scenario_name = "channel-file-291",
        .scenario_path = "scenarios/channel-file-291.yaml",
        .scenario_text = "name: channel-file-291\nseed: 7\n",
        .seed = 0xfedcba9876543210ull,
        .fleet_size = 10,
        .shard_count = 1,
        .fleetsim_version = "0.1.0",
        .command_line = "fleetsim run scenarios/channel-file-291.yaml",
        .started_ms = 1721362140000,
        .virtual_start_ms = 1721354400000, /* 2024-07-19T02:00:00Z */
        .duration_ms = 6 * 3600000ull,
    };
    char err[512];
    assert_int_equal(store_write_run(st, &run, err, sizeof err), 0);
}

static void write_artifacts(store *st)
{
    char err[512];
    uint8_t sha[32];
    for (int i = 0; i < 32; i++)
        sha[i] = (uint8_t)(i * 7);
    store_artifact image = {STORE_ARTIFACT_IMAGE, "sensor", "sensor-7.11.sys",
                            "build/images/sensor.sys", sha, 12345, "7.11"};
    store_artifact content = {STORE_ARTIFACT_CONTENT, "update", "C-00000291-04.09.sys", NULL,
                              sha, 40, NULL};
    store_artifact profile = {STORE_ARTIFACT_PROFILE, NULL, "win10-22h2-2024-07", NULL, NULL,
                              0, "19045.4651"};
    assert_int_equal(store_write_artifact(st, &image, err, sizeof err), 0);
    assert_int_equal(store_write_artifact(st, &content, err, sizeof err), 0);
    assert_int_equal(store_write_artifact(st, &profile, err, sizeof err), 0);
}

static const char *const profiles[] = {"win10-22h2-2024-07", "win11-23h2-2024-07"};
static const char *const sensors[] = {"7.10", "7.11"};

static void endpoint(uint64_t id, store_endpoint *e, store_attr *attr)
{
    memset(e, 0, sizeof *e);
    e->id = id;
    e->profile = profiles[id % 2];
    e->os_build = id % 2 ? 22631 : 19045;
    e->os_ubr = 4651;
    e->sensor = sensors[(id / 2) % 2];
    e->region = id < 5 ? "eu-west" : "us-east";
    e->tenant = "acme";
    e->seed = 0x9e3779b97f4a7c15ull * (id + 1);
    e->ring = (int32_t)(id % 3);
    attr->key = "hardware";
    attr->value = id % 4 ? "vm" : "laptop";
    e->attrs = attr;
    e->nattrs = 1;
}

/*
 * A small run: ten endpoints; sensor 7.11 ones crash at every boot until
 * boot 2, the rest run clean.  Written in the order `order` gives.
 */
static void write_fleet(store *st, const uint64_t *order, size_t n)
{
    char err[512];
    for (size_t k = 0; k < n; k++) {
        uint64_t id = order[k];
        store_endpoint e;
        store_attr attr;
        endpoint(id, &e, &attr);
        assert_int_equal(store_write_endpoints(st, &e, 1, err, sizeof err), 0);
    }
    for (size_t k = 0; k < n; k++) {
        uint64_t id = order[k];
        bool bad = (id / 2) % 2 == 1;
        uint64_t base = 0xfffff80000000000ull + (id << 21);
        int64_t t = 7740000 + (int64_t)id * 1000; /* 04:09 + id s */
        timeline_event(st, id, t, STORE_TIMELINE_ONLINE, NULL);
        timeline_event(st, id, t, STORE_TIMELINE_RECEIVED, "C-00000291");
        for (uint32_t boot = 0; boot < (bad ? 3u : 1u); boot++) {
            sim_outcome *o = bad && boot < 2 ? crash_at(base + boot * 0x200000, "MatchInstance", 0x2f)
                                              : ok_outcome(base);
            store_outcome_at at = {id, boot, t + boot * 60000, "sensor.sys", true, id * 16 + boot,
                                   boot ? "boot" : "live"};
            assert_int_equal(store_write_outcome(st, &at, o, err, sizeof err), 0);
            timeline_event(st, id, at.vt_ms, STORE_TIMELINE_EMULATED, NULL);
            if (o->kind == SIM_OUTCOME_BUGCHECK) {
                timeline_event(st, id, at.vt_ms, STORE_TIMELINE_CRASHED, "0x50");
                timeline_event(st, id, at.vt_ms, STORE_TIMELINE_REBOOTED, NULL);
            } else if (boot > 0) {
                timeline_event(st, id, at.vt_ms, STORE_TIMELINE_RECOVERED, NULL);
            }
            free(o);
        }
    }
}

static const uint64_t in_order[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint64_t shuffled[10] = {7, 2, 9, 0, 5, 3, 8, 1, 6, 4};

/* ---- reading back with plain SQL ----------------------------------------- */

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    return db;
}

/* The first column of the first row as text ("" for NULL, "<none>" for no row). */
static char *query1(sqlite3 *db, const char *sql)
{
    static char out[4096];
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        snprintf(out, sizeof out, "%s", t ? (const char *)t : "");
    } else if (rc == SQLITE_DONE) {
        snprintf(out, sizeof out, "<none>");
    } else {
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    }
    sqlite3_finalize(s);
    return out;
}

static long long query_int(sqlite3 *db, const char *sql)
{
    return atoll(query1(db, sql));
}

/* Every row of every result table, in key order, as text. */
static char *dump(const char *path)
{
    static const char *const queries[] = {
        "SELECT scenario_name, seed, fleet_size, shard, status FROM run",
        "SELECT * FROM meta ORDER BY key",
        "SELECT * FROM artifacts ORDER BY kind, role, name",
        "SELECT * FROM endpoints ORDER BY id",
        "SELECT * FROM endpoint_attrs ORDER BY endpoint_id, key",
        "SELECT * FROM outcomes ORDER BY endpoint_id, boot",
        "SELECT * FROM crashes ORDER BY endpoint_id, boot",
        "SELECT * FROM dbgprint ORDER BY endpoint_id, boot",
        "SELECT * FROM timeline ORDER BY endpoint_id, vt_ms, seq",
        "SELECT * FROM rings ORDER BY ring",
        "SELECT * FROM gate_decisions ORDER BY ring, vt_ms, seq",
    };
    sqlite3 *db = open_db(path);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    for (size_t q = 0; q < sizeof queries / sizeof queries[0]; q++) {
        sqlite3_stmt *s = NULL;
        assert_int_equal(sqlite3_prepare_v2(db, queries[q], -1, &s, NULL), SQLITE_OK);
        while (sqlite3_step(s) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(s); c++) {
                const unsigned char *t = sqlite3_column_text(s, c);
                size_t need = (t ? strlen((const char *)t) : 4) + 8;
                if (len + need >= cap) {
                    cap = 2 * (len + need);
                    out = realloc(out, cap);
                    assert_non_null(out);
                }
                len += (size_t)snprintf(out + len, cap - len, "%d:%s|", sqlite3_column_type(s, c),
                                        t ? (const char *)t : "NULL");
            }
            out[len++] = '\n';
            out[len] = '\0';
        }
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    return out;
}

/* ---- tests ------------------------------------------------------------------ */

static void schema_is_created_and_versioned(void **state)
{
    fixture *f = *state;
    store *st = NULL;
    open_store(f->path, true, &st);
    assert_string_equal(store_path(st), f->path);
    char err[512];
    assert_int_equal(store_close(st, err, sizeof err), 0);

    sqlite3 *db = open_db(f->path);
    assert_string_equal(query1(db, "SELECT value FROM meta WHERE key = 'schema_version'"), "3");
    assert_int_equal(query_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(query_int(db, "PRAGMA application_id"), STORE_APPLICATION_ID);
    assert_string_equal(query1(db, "PRAGMA journal_mode"), "wal");
    const char *const tables[] = {"meta", "run", "artifacts", "endpoints", "endpoint_attrs",
                                  "outcomes", "crashes", "dbgprint", "timeline", "rings",
                                  "gate_decisions", "endpoint_attr", "buckets"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_schema WHERE name = '%s'",
                 tables[i]);
        assert_int_equal(query_int(db, sql), 1);
    }
    /* No AUTOINCREMENT anywhere: content must not depend on write order. */
    assert_null(strstr(store_schema_sql(), "AUTOINCREMENT"));
    assert_null(strstr(store_index_sql(), "AUTOINCREMENT"));
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_schema "
                                   "WHERE name = 'sqlite_sequence'"), 0);
    /* The keys and indexes wait for the run's mark. */
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' "
                                   "AND sql IS NOT NULL"), 0);
    sqlite3_close(db);

    /* Opening it again adds to it; the schema is not created twice. */
    open_store(f->path, false, &st);
    assert_int_equal(store_close(st, err, sizeof err), 0);
}

static void foreign_files_are_refused(void **state)
{
    fixture *f = *state;
    char err[512];
    store *st = NULL;

    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("name: not a database, a scenario\n", fp);
    fclose(fp);
    assert_int_equal(store_open(f->path, NULL, &st, err, sizeof err), SIM_EFORMAT);
    assert_null(st);
    assert_non_null(strstr(err, f->path));

    /* A SQLite file that is someone else's. */
    unlink(f->path);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(f->path, NULL, &st, err, sizeof err), SIM_EFORMAT);
    assert_non_null(strstr(err, "not a fleetsim store"));

    /* A fleetsim store of another schema version. */
    open_store(f->path, true, &st);
    store_close(st, NULL, 0);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(f->path, NULL, &st, err, sizeof err), SIM_EFORMAT);
    assert_non_null(strstr(err, "schema version 99"));

    /* replace starts over. */
    open_store(f->path, true, &st);
    store_close(st, NULL, 0);

    assert_int_equal(store_open(NULL, NULL, &st, err, sizeof err), SIM_EINVAL);
    assert_int_equal(store_open("/nonexistent-dir/x/run.db", NULL, &st, err, sizeof err),
                     SIM_EIO);
    assert_non_null(strstr(err, "store: /nonexistent-dir/x/run.db: "));
}

static void run_reads_back_with_plain_sql(void **state)
{
    fixture *f = *state;
    store *st = NULL;
    char err[512];
    open_store(f->path, true, &st);
    write_run(st);
    write_artifacts(st);
    write_fleet(st, in_order, 10);

    store_ring ring = {0, "canary", "1%", 1, 3600000, 7740000};
    assert_int_equal(store_write_ring(st, &ring, err, sizeof err), 0);
    store_gate_decision d = {0, 9000000, "threshold", STORE_GATE_HALT, 1, 1, 1, 0, -1, -1,
                             0.79, 0.001, "crash rate above 0.1%"};
    assert_int_equal(store_write_gate_decision(st, &d, err, sizeof err), 0);
    d.gate = "sequential";
    d.statistic = NAN;
    assert_int_equal(store_write_gate_decision(st, &d, err, sizeof err), 0);
    assert_int_equal(store_flush(st, err, sizeof err), 0);

    /* A reader sees flushed rows while the run goes on (WAL). */
    sqlite3 *db = open_db(f->path);
    assert_int_equal(query_int(db, "SELECT count(*) FROM endpoints"), 10);
    sqlite3_close(db);

    assert_int_equal(store_mark_complete(st, 1, 21600000, err, sizeof err), 0);
    assert_int_equal(store_close(st, err, sizeof err), 0);

    db = open_db(f->path);
    assert_string_equal(query1(db, "SELECT status || ' ' || exit_code || ' ' || virtual_end_ms "
                                   "FROM run"),
                        "complete 1 21600000");
    assert_string_equal(query1(db, "SELECT seed FROM run"), "0xfedcba9876543210");
    assert_string_equal(query1(db, "SELECT virtual_start FROM run"), "2024-07-19T02:00:00.000Z");
    assert_string_equal(query1(db, "SELECT started_at FROM run"), "2024-07-19T04:09:00.000Z");
    assert_string_equal(query1(db, "SELECT shard FROM run"), "0/1");
    assert_int_equal(query_int(db, "SELECT ended_at IS NOT NULL FROM run"), 1);
    assert_string_equal(query1(db, "SELECT sha256 FROM artifacts WHERE kind = 'image'"),
                        "00070e151c232a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2d9");
    assert_string_equal(query1(db, "SELECT role || ':' || coalesce(sha256, 'builtin') "
                                   "FROM artifacts WHERE kind = 'profile'"),
                        ":builtin");

    assert_int_equal(query_int(db, "SELECT count(*) FROM outcomes"), 18);
    assert_int_equal(query_int(db, "SELECT count(*) FROM outcomes WHERE kind = 'bugcheck'"), 8);
    assert_int_equal(query_int(db, "SELECT count(*) FROM crashes"), 8);
    /* A boot loop repeats itself: the first crash of each endpoint in a
     * bucket keeps the details and the log, the later ones the rest. */
    assert_int_equal(query_int(db, "SELECT count(*) FROM dbgprint"), 4);
    assert_string_equal(query1(db, "SELECT group_concat(boot || ':' || (stack IS NOT NULL) || "
                                   "(registers IS NOT NULL) || (disasm IS NOT NULL) || ':' || "
                                   "instruction, ' ') FROM crashes WHERE endpoint_id = 3"),
                        "0:111:mov r9d, dword ptr [r8] 1:000:mov r9d, dword ptr [r8]");
    assert_string_equal(query1(db, "SELECT printf('0x%X', bugcheck) || ' ' || bugcheck_name || "
                                   "' ' || p1 FROM outcomes WHERE endpoint_id = 2 AND boot = 0"),
                        "0x50 PAGE_FAULT_IN_NONPAGED_AREA 0xffff840500000074");
    assert_string_equal(query1(db, "SELECT status FROM outcomes WHERE kind = 'ok' LIMIT 1"), "0");
    assert_string_equal(query1(db, "SELECT status FROM outcomes WHERE kind = 'bugcheck' LIMIT 1"),
                        "");
    assert_string_equal(query1(db, "SELECT image_base FROM outcomes WHERE endpoint_id = 3 "
                                   "AND boot = 1"),
                        "0xfffff80000800000");

    /* The crash record, its JSON queryable with SQLite's JSON functions. */
    assert_string_equal(query1(db, "SELECT bucket FROM crashes WHERE endpoint_id = 3 AND boot = 1"),
                        "0x50_R_KERNEL_sensor!MatchInstance+0x2f");
    assert_string_equal(query1(db, "SELECT symbol || ' ' || instruction || ' ' || address || ' ' "
                                   "|| access || ' ' || address_class FROM crashes LIMIT 1"),
                        "sensor!MatchInstance+0x2f mov r9d, dword ptr [r8] 0xffff840500000074 "
                        "read kernel");
    assert_string_equal(query1(db, "SELECT json_extract(registers, '$.r8') FROM crashes LIMIT 1"),
                        "0xffff840500000074");
    assert_string_equal(query1(db, "SELECT json_extract(disasm, '$[0].text') FROM crashes LIMIT 1"),
                        "mov r8, qword ptr [rax + \"0xa0\"]");
    assert_string_equal(query1(db, "SELECT group_concat(json_extract(value, '$.function'), ' < ') "
                                   "FROM crashes, json_each(stack) "
                                   "WHERE endpoint_id = 2 AND boot = 0"),
                        "MatchInstance < ProcessChannelFile < unknown_function < IopLoadDriver");
    assert_int_equal(query_int(db, "SELECT count(*) FROM crashes WHERE stack IS NOT NULL AND "
                                   "(NOT json_valid(stack) OR NOT json_valid(disasm) OR "
                                   "NOT json_valid(registers))"), 0);
    assert_string_equal(query1(db, "SELECT log FROM dbgprint LIMIT 1"),
                        "sensor: loading channel file\n");

    /* Buckets: eight crashes over four endpoints, one bucket. */
    assert_string_equal(query1(db, "SELECT bucket || ' ' || crashes || ' ' || endpoints || ' ' "
                                   "|| example_endpoint FROM buckets"),
                        "0x50_R_KERNEL_sensor!MatchInstance+0x2f 8 4 2");

    /* Timelines in order, seq deterministic. */
    assert_string_equal(query1(db, "SELECT group_concat(kind, ',') FROM (SELECT kind FROM "
                                   "timeline WHERE endpoint_id = 3 ORDER BY vt_ms, seq)"),
                        "online,received,emulated,crashed,rebooted,emulated,crashed,rebooted,"
                        "emulated,recovered");
    assert_string_equal(query1(db, "SELECT group_concat(seq, ',') FROM (SELECT seq FROM timeline "
                                   "WHERE endpoint_id = 3 AND vt_ms = 7743000 ORDER BY seq)"),
                        "0,1,2,3,4");

    /* Cohorts by any attribute. */
    assert_string_equal(query1(db, "SELECT group_concat(value || '=' || n, ' ') FROM (SELECT "
                                   "value, count(*) AS n FROM endpoint_attr WHERE key = "
                                   "'hardware' GROUP BY value ORDER BY value)"),
                        "laptop=3 vm=7");
    assert_string_equal(query1(db, "SELECT group_concat(value || '=' || n, ' ') FROM (SELECT "
                                   "value, count(*) AS n FROM endpoint_attr WHERE key = 'os' "
                                   "GROUP BY value ORDER BY value)"),
                        "19045.4651=5 22631.4651=5");

    assert_string_equal(query1(db, "SELECT group_concat(gate || ':' || action || ':' || seq || ':' "
                                   "|| coalesce(statistic, 'NULL') || ':' || "
                                   "coalesce(control_exposed, 'NULL'), ' ') FROM (SELECT * FROM "
                                   "gate_decisions ORDER BY seq)"),
                        "threshold:halt:0:0.79:NULL sequential:halt:1:NULL:NULL");
    assert_string_equal(query1(db, "PRAGMA integrity_check"), "ok");
    sqlite3_close(db);
}

static void same_rows_any_order_same_store(void **state)
{
    fixture *f = *state;
    char other[160];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    store *a = NULL, *b = NULL;
    char err[512];

    open_store(f->path, true, &a);
    write_run(a);
    write_fleet(a, in_order, 10);
    assert_int_equal(store_mark_complete(a, 1, 100, err, sizeof err), 0);
    assert_int_equal(store_close(a, err, sizeof err), 0);

    /* The marked store has its keys and indexes. */
    sqlite3 *adb = open_db(f->path);
    assert_int_equal(query_int(adb, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' "
                                    "AND name IN ('outcomes_key', 'crashes_key', "
                                    "'dbgprint_key', 'timeline_key', 'crashes_bucket', "
                                    "'outcomes_kind', 'timeline_kind')"), 7);
    sqlite3_close(adb);

    /* The other store gets the same rows shuffled, in small batches. */
    store_options opts;
    store_options_init(&opts);
    opts.replace = true;
    opts.batch_rows = 3;
    assert_int_equal(store_open(other, &opts, &b, err, sizeof err), 0);
    write_fleet(b, shuffled, 10);
    write_run(b);
    assert_int_equal(store_mark_complete(b, 1, 100, err, sizeof err), 0);
    assert_int_equal(store_close(b, err, sizeof err), 0);

    char *da = dump(f->path), *db = dump(other);
    assert_true(strlen(da) > 1000);
    assert_string_equal(da, db);
    free(da);
    free(db);

    /* An outcome written twice is a caller's bug: its key cannot be built,
     * the mark says so, and the run is not complete. */
    open_store(other, true, &b);
    write_run(b);
    sim_outcome *o = ok_outcome(0xfffff80000000000ull);
    store_outcome_at at = {2, 0, 7742000, "sensor.sys", true, 2, "live"};
    assert_int_equal(store_write_outcome(b, &at, o, err, sizeof err), 0);
    assert_int_equal(store_write_outcome(b, &at, o, err, sizeof err), 0);
    free(o);
    assert_int_equal(store_mark_complete(b, 1, 100, err, sizeof err), SIM_EINVAL);
    assert_non_null(strstr(err, "UNIQUE constraint failed: outcomes.endpoint_id"));
    assert_non_null(strstr(err, "building the store's indexes"));
    assert_int_equal(store_close(b, err, sizeof err), 0);
    sqlite3 *sdb = open_db(other);
    assert_string_equal(query1(sdb, "SELECT status FROM run"), "interrupted");
    assert_non_null(strstr(query1(sdb, "SELECT reason FROM run"), "UNIQUE constraint"));
    assert_int_equal(query_int(sdb, "SELECT count(*) FROM outcomes"), 2);
    sqlite3_close(sdb);
}

/* ---- bucket keys ------------------------------------------------------------- */

static void buckets_ignore_where_the_image_loaded(void **state)
{
    (void)state;
    char a[STORE_BUCKET_SIZE], b[STORE_BUCKET_SIZE];
    sim_outcome *x = crash_at(0xfffff80011200000ull, "MatchInstance", 0x2f);
    sim_outcome *y = crash_at(0xfffff8063ae00000ull, "MatchInstance", 0x2f);
    y->fault.address = 0xffff9a0000001234ull; /* other stale value, same class */
    assert_int_equal(store_bucket_key(x, a, sizeof a), 0);
    assert_int_equal(store_bucket_key(y, b, sizeof b), 0);
    assert_string_equal(a, "0x50_R_KERNEL_sensor!MatchInstance+0x2f");
    assert_string_equal(a, b);
    assert_null(strstr(a, "fffff8"));
    free(x);
    free(y);
}

static void buckets_tell_functions_and_accesses_apart(void **state)
{
    (void)state;
    char a[STORE_BUCKET_SIZE], b[STORE_BUCKET_SIZE];
    sim_outcome *x = crash_at(0xfffff80011200000ull, "MatchInstance", 0x2f);
    sim_outcome *y = crash_at(0xfffff80011200000ull, "ParseRule", 0x2f);
    assert_int_equal(store_bucket_key(x, a, sizeof a), 0);
    assert_int_equal(store_bucket_key(y, b, sizeof b), 0);
    assert_string_not_equal(a, b);

    y = memcpy(y, x, sizeof *x);
    y->fault.access = SIM_ACCESS_WRITE;
    y->fault.address_class = SIM_ADDR_NULL;
    y->bugcheck = 0x7E;
    assert_int_equal(store_bucket_key(y, b, sizeof b), 0);
    assert_string_equal(b, "0x7E_W_NULL_sensor!MatchInstance+0x2f");

    /* No symbol: module+offset from the module base. */
    snprintf(y->fault.function, sizeof y->fault.function, "unknown_function");
    y->fault.offset = 0x1a3c;
    assert_int_equal(store_bucket_key(y, b, sizeof b), 0);
    assert_string_equal(b, "0x7E_W_NULL_sensor+0x1a3c");

    /* A bugcheck raised without a faulting access. */
    y = memcpy(y, x, sizeof *x);
    y->bugcheck = 0x133;
    y->fault.access = SIM_ACCESS_NONE;
    assert_int_equal(store_bucket_key(y, b, sizeof b), 0);
    assert_string_equal(b, "0x133_-_-_sensor!MatchInstance+0x2f");

    y->kind = SIM_OUTCOME_HANG;
    assert_int_equal(store_bucket_key(y, b, sizeof b), 0);
    assert_string_equal(b, "HANG_-_-_sensor!MatchInstance+0x2f");

    y->kind = SIM_OUTCOME_UNSUPPORTED_API;
    snprintf(y->api, sizeof y->api, "ntoskrnl.exe!FltGetVolumeName");
    assert_int_equal(store_bucket_key(y, b, sizeof b), 0);
    assert_string_equal(b, "UNSUPPORTED_ntoskrnl.exe!FltGetVolumeName");

    y->kind = SIM_OUTCOME_OK;
    assert_int_equal(store_bucket_key(y, b, sizeof b), SIM_EINVAL);
    assert_string_equal(b, "");
    assert_int_equal(store_bucket_key(NULL, b, sizeof b), SIM_EINVAL);
    assert_int_equal(store_bucket_key(x, NULL, 0), SIM_EINVAL);
    free(x);
    free(y);
}

static void buckets_skip_nt_frames(void **state)
{
    (void)state;
    char a[STORE_BUCKET_SIZE];
    /* 0x19 found by nt!ExFreePoolWithTag, called from overflow!FreeRuleSet. */
    sim_outcome *o = crash_at(0xfffff80011200000ull, "FreeRuleSet", 0x44);
    o->bugcheck = 0x19;
    o->fault.access = SIM_ACCESS_NONE;
    snprintf(o->fault.module, sizeof o->fault.module, "nt");
    snprintf(o->fault.function, sizeof o->fault.function, "ExFreePoolWithTag");
    o->fault.offset = 0x10;
    o->nframes = 4;
    fill_frame(&o->stack[0], "nt", "ExFreePoolWithTag", 0x10, 0xfffff80000001010ull);
    fill_frame(&o->stack[1], "nt", "ExFreePool", 0x8, 0xfffff80000002008ull);
    fill_frame(&o->stack[2], "overflow", "FreeRuleSet", 0x44, 0xfffff80011201044ull);
    fill_frame(&o->stack[3], "overflow", "DriverEntry", 0x90, 0xfffff80011202090ull);
    assert_int_equal(store_bucket_key(o, a, sizeof a), 0);
    assert_string_equal(a, "0x19_-_-_overflow!FreeRuleSet+0x44");

    /* Execution where no module is: blamed on the driver frame below it. */
    o->bugcheck = 0xFC;
    o->fault.access = SIM_ACCESS_EXECUTE;
    o->fault.address_class = SIM_ADDR_KERNEL;
    o->fault.module[0] = '\0';
    o->stack[0].module[0] = '\0';
    assert_int_equal(store_bucket_key(o, a, sizeof a), 0);
    assert_string_equal(a, "0xFC_X_KERNEL_overflow!FreeRuleSet+0x44");

    /* Only nt on the stack: nt it is. */
    o->nframes = 2;
    snprintf(o->fault.module, sizeof o->fault.module, "nt");
    assert_int_equal(store_bucket_key(o, a, sizeof a), 0);
    assert_string_equal(a, "0xFC_X_KERNEL_nt!ExFreePoolWithTag+0x10");

    /* Nothing known at all: no offset from nowhere, no address. */
    o->fault.module[0] = '\0';
    o->nframes = 0;
    assert_int_equal(store_bucket_key(o, a, sizeof a), 0);
    assert_string_equal(a, "0xFC_X_KERNEL_unknown_module");
    free(o);
}

static void buckets_fit_in_120_characters(void **state)
{
    (void)state;
    char a[STORE_BUCKET_SIZE], small[16];
    sim_outcome *o = crash_at(0xfffff80011200000ull, "x", 0x123456789ull);
    memset(o->fault.module, 'm', sizeof o->fault.module - 1);
    memset(o->fault.function, 'f', sizeof o->fault.function); /* not even terminated */
    o->bugcheck = 0x13A;
    o->fault.address_class = SIM_ADDR_NONCANONICAL;
    assert_int_equal(store_bucket_key(o, a, sizeof a), 0);
    assert_true(strlen(a) <= STORE_BUCKET_MAX);
    assert_int_equal(strncmp(a, "0x13A_R_NONCANONICAL_mmm", 24), 0);
    /* The offset survives; the function name is what gets shortened. */
    assert_non_null(strstr(a, "f+0x123456789"));

    /* Characters that would make keys ambiguous are replaced. */
    snprintf(o->fault.module, sizeof o->fault.module, "my drv");
    snprintf(o->fault.function, sizeof o->fault.function, "a+b!c\xff");
    assert_int_equal(store_bucket_key(o, a, sizeof a), 0);
    assert_string_equal(a, "0x13A_R_NONCANONICAL_my?drv!a?b?c?+0x123456789");

    /* A short buffer truncates, never overflows. */
    assert_int_equal(store_bucket_key(o, small, sizeof small), 0);
    assert_int_equal(strlen(small), sizeof small - 1);
    free(o);
}

/* ---- faults of the store itself ---------------------------------------------- */

static void full_disk_keeps_committed_rows(void **state)
{
    fixture *f = *state;
    store_options opts;
    store_options_init(&opts);
    opts.replace = true;
    opts.batch_rows = 10;
    opts.max_pages = 60;
    store *st = NULL;
    char err[512];
    assert_int_equal(store_open(f->path, &opts, &st, err, sizeof err), 0);
    write_run(st);

    int rc = 0;
    uint64_t written = 0;
    for (uint64_t id = 0; id < 100000 && rc == 0; id++) {
        sim_outcome *o = id % 3 ? ok_outcome(0xfffff80000000000ull)
                                : crash_at(0xfffff80000000000ull, "MatchInstance", 0x2f);
        store_outcome_at at = {id, 0, (int64_t)id, "sensor.sys", false, 0, NULL};
        rc = store_write_outcome(st, &at, o, err, sizeof err);
        free(o);
        written += rc == 0;
    }
    assert_int_equal(rc, SIM_EIO);
    assert_non_null(strstr(err, "disk full"));
    assert_non_null(strstr(err, f->path));
    assert_true(written > 10);

    /* It sticks: later rows are refused with the same message. */
    char again[512];
    assert_int_equal(store_write_timeline_event(st, 1, 0, 0, STORE_TIMELINE_ONLINE, NULL, again,
                                                sizeof again),
                     SIM_EIO);
    assert_string_equal(again, err);
    assert_int_equal(store_flush(st, again, sizeof again), SIM_EIO);

    /* The run can still be marked (complete is refused: rows were lost). */
    rc = store_mark_complete(st, 1, 5000, again, sizeof again);
    assert_int_equal(rc, SIM_EIO);
    assert_int_equal(store_close(st, NULL, 0), 0);

    sqlite3 *db = open_db(f->path);
    assert_string_equal(query1(db, "SELECT status FROM run"), "interrupted");
    assert_non_null(strstr(query1(db, "SELECT reason FROM run"), "disk full"));
    long long n = query_int(db, "SELECT count(*) FROM outcomes");
    assert_true(n > 0 && n <= (long long)written);
    /* Every crash outcome that made it has its record and its log. */
    assert_int_equal(query_int(db, "SELECT count(*) FROM outcomes o LEFT JOIN crashes c "
                                   "USING (endpoint_id, boot) WHERE o.kind = 'bugcheck' "
                                   "AND c.bucket IS NULL"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM crashes c LEFT JOIN outcomes o "
                                   "USING (endpoint_id, boot) WHERE o.kind IS NULL"), 0);
    assert_string_equal(query1(db, "PRAGMA integrity_check"), "ok");
    sqlite3_close(db);
}

/*
 * The keys and indexes are built when the run is marked (DESIGN.md,
 * decision 7).  A disk that fills then keeps every row, no keys, and a run
 * marked interrupted that says where it stopped; the store stays readable.
 */
static void full_disk_while_marking(void **state)
{
    fixture *f = *state;
    store_options opts;
    store_options_init(&opts);
    opts.replace = true;
    store *st = NULL;
    char err[512];
    long long pages = 0;

    /* First the rows alone, to learn how many pages they take. */
    for (int pass = 0; pass < 2; pass++) {
        opts.max_pages = pass ? (uint32_t)pages + 2 : 0;
        assert_int_equal(store_open(f->path, &opts, &st, err, sizeof err), 0);
        write_run(st);
        write_fleet(st, in_order, 10);
        assert_int_equal(store_flush(st, err, sizeof err), 0);
        if (pass == 0) {
            sqlite3 *db = open_db(f->path);
            pages = query_int(db, "PRAGMA page_count");
            sqlite3_close(db);
            assert_int_equal(store_mark_complete(st, 1, 5000, err, sizeof err), 0);
            assert_int_equal(store_close(st, err, sizeof err), 0);
            continue;
        }
        int rc = store_mark_complete(st, 1, 5000, err, sizeof err);
        assert_int_equal(rc, SIM_EIO);
        assert_non_null(strstr(err, "disk full"));
        assert_non_null(strstr(err, "(building the store's indexes)"));
        assert_int_equal(store_close(st, NULL, 0), 0);
    }

    sqlite3 *db = open_db(f->path);
    assert_string_equal(query1(db, "SELECT status FROM run"), "interrupted");
    assert_non_null(strstr(query1(db, "SELECT reason FROM run"), "building the store's indexes"));
    assert_int_equal(query_int(db, "SELECT virtual_end_ms FROM run"), 5000);
    assert_int_equal(query_int(db, "SELECT count(*) FROM endpoints"), 10);
    assert_int_equal(query_int(db, "SELECT count(*) FROM outcomes"), 18);
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                   "AND sql IS NOT NULL"), 0);
    assert_string_equal(query1(db, "PRAGMA integrity_check"), "ok");
    sqlite3_close(db);
}

static void interrupted_run_leaves_consistent_store(void **state)
{
    fixture *f = *state;
    store_options opts;
    store_options_init(&opts);
    opts.replace = true;
    opts.batch_rows = 7;
    store *st = NULL;
    char err[512];
    assert_int_equal(store_open(f->path, &opts, &st, err, sizeof err), 0);
    write_run(st);
    /* Part of the fleet, then Ctrl-C: the loop marks the store and closes. */
    write_fleet(st, in_order, 6);
    assert_int_equal(store_mark_interrupted(st, 130, 7745000, "interrupted by SIGINT", err,
                                            sizeof err), 0);
    assert_int_equal(store_close(st, err, sizeof err), 0);

    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(access(wal, F_OK), -1); /* checkpointed: one self-contained file */

    sqlite3 *db = open_db(f->path);
    assert_string_equal(query1(db, "SELECT status || '|' || exit_code || '|' || reason || '|' || "
                                   "virtual_end_ms FROM run"),
                        "interrupted|130|interrupted by SIGINT|7745000");
    assert_int_equal(query_int(db, "SELECT count(*) FROM endpoints"), 6);
    assert_int_equal(query_int(db, "SELECT count(*) FROM outcomes"), 10);
    assert_int_equal(query_int(db, "SELECT count(*) FROM outcomes WHERE kind IS NULL OR vt_ms "
                                   "IS NULL OR image_base IS NULL"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM crashes WHERE bucket IS NULL OR "
                                   "symbol IS NULL OR rip IS NULL"), 0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM crashes c WHERE stack IS NULL AND "
                                   "boot = (SELECT min(boot) FROM crashes WHERE endpoint_id = "
                                   "c.endpoint_id)"), 0);
    assert_string_equal(query1(db, "PRAGMA integrity_check"), "ok");
    sqlite3_close(db);

    /* A process that dies without marking leaves 'running' and its commits. */
    opts.batch_rows = 1000;
    assert_int_equal(store_open(f->path, &opts, &st, err, sizeof err), 0);
    write_run(st);
    write_fleet(st, in_order, 2);
    assert_int_equal(store_flush(st, err, sizeof err), 0);
    assert_int_equal(store_close(st, err, sizeof err), 0);
    db = open_db(f->path);
    assert_string_equal(query1(db, "SELECT status FROM run"), "running");
    assert_int_equal(query_int(db, "SELECT count(*) FROM outcomes"), 2);
    sqlite3_close(db);

    /* Marking before the run row exists is a caller's error, said so. */
    open_store(f->path, true, &st);
    assert_int_equal(store_mark_interrupted(st, 130, 0, NULL, err, sizeof err), SIM_EINVAL);
    assert_non_null(strstr(err, "no run"));
    store_close(st, NULL, 0);
}

static void all_details_when_asked(void **state)
{
    fixture *f = *state;
    store_options opts;
    store_options_init(&opts);
    opts.replace = true;
    opts.all_details = true;
    opts.log = STORE_LOG_ALL;
    store *st = NULL;
    char err[512];
    assert_int_equal(store_open(f->path, &opts, &st, err, sizeof err), 0);
    write_run(st);
    write_fleet(st, in_order, 10);
    assert_int_equal(store_close(st, err, sizeof err), 0);
    sqlite3 *db = open_db(f->path);
    assert_int_equal(query_int(db, "SELECT count(*) FROM crashes WHERE stack IS NOT NULL"), 8);
    assert_int_equal(query_int(db, "SELECT count(*) FROM dbgprint"), 18);
    sqlite3_close(db);

    opts.log = STORE_LOG_NONE;
    assert_int_equal(store_open(f->path, &opts, &st, err, sizeof err), 0);
    write_fleet(st, in_order, 10);
    assert_int_equal(store_close(st, err, sizeof err), 0);
    db = open_db(f->path);
    assert_int_equal(query_int(db, "SELECT count(*) FROM dbgprint"), 0);
    sqlite3_close(db);
}

static void allocation_failures_are_clean(void **state)
{
    fixture *f = *state;
    char err[512];
    int failures = 0;
    for (uint64_t n = 1; n < 16; n++) {
        store *st = NULL;
        store_options opts;
        store_options_init(&opts);
        opts.replace = true;
        sim_alloc_fail_after(n);
        int rc = store_open(f->path, &opts, &st, err, sizeof err);
        sim_alloc_fail_after(0);
        if (rc == 0) {
            write_run(st);
            assert_int_equal(store_close(st, err, sizeof err), 0);
            break;
        }
        assert_int_equal(rc, SIM_ENOMEM);
        assert_null(st);
        assert_non_null(strstr(err, "out of memory"));
        failures++;
    }
    assert_true(failures > 0);
}

static void bad_arguments_are_refused(void **state)
{
    fixture *f = *state;
    store *st = NULL;
    char err[512];
    open_store(f->path, true, &st);
    store_endpoint e = {.id = 1, .profile = NULL};
    assert_int_equal(store_write_endpoints(st, &e, 1, err, sizeof err), SIM_EINVAL);
    assert_int_equal(store_write_timeline_event(st, 1, 0, 0, STORE_TIMELINE_COUNT, NULL, err,
                                                sizeof err),
                     SIM_EINVAL);
    store_artifact a = {STORE_ARTIFACT_COUNT, NULL, "x", NULL, NULL, 0, NULL};
    assert_int_equal(store_write_artifact(st, &a, err, sizeof err), SIM_EINVAL);
    assert_int_equal(store_write_outcome(st, NULL, NULL, err, sizeof err), SIM_EINVAL);
    assert_int_equal(store_write_run(st, NULL, err, sizeof err), SIM_EINVAL);
    /* A caller's mistake is not sticky: the store still works. */
    write_run(st);
    /* Every timeline kind and gate action the API names, the schema accepts. */
    for (int k = 0; k < STORE_TIMELINE_COUNT; k++)
        timeline_event(st, 1, k, (store_timeline_kind)k, NULL);
    for (int g = 0; g < STORE_GATE_ACTION_COUNT; g++) {
        store_gate_decision d = {0, g, "threshold", (store_gate_action)g, -1, -1, -1, -1, -1, -1,
                                 NAN, NAN, NULL};
        assert_int_equal(store_write_gate_decision(st, &d, err, sizeof err), 0);
    }
    for (int k = 0; k < STORE_ARTIFACT_COUNT; k++) {
        store_artifact ak = {(store_artifact_kind)k, "r", "n", NULL, NULL, 0, NULL};
        assert_int_equal(store_write_artifact(st, &ak, err, sizeof err), 0);
    }
    assert_int_equal(store_close(st, err, sizeof err), 0);
    assert_int_equal(store_close(NULL, err, sizeof err), 0);
}

/* ---- the README -------------------------------------------------------------- */

/* README.md's section "The store", read whole ("" when there is none). */
static char *readme_section(void)
{
    const char *src = getenv("FLEETSIM_SOURCE");
    char path[512];
    snprintf(path, sizeof path, "%s/README.md", src ? src : ".");
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("cannot read %s (set FLEETSIM_SOURCE)", path);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    char *start = strstr(text, "\n## The store\n");
    if (!start)
        fail_msg("README.md has no section \"## The store\"");
    char *end = strstr(start + 1, "\n## ");
    if (end)
        *end = '\0';
    memmove(text, start, strlen(start) + 1);
    return text;
}

/* The next ```sql block after *pos (NUL-terminated in place), or NULL. */
static char *next_sql_block(char **pos)
{
    char *open = strstr(*pos, "```sql\n");
    if (!open)
        return NULL;
    char *body = open + strlen("```sql\n");
    char *close = strstr(body, "\n```");
    assert_non_null(close);
    close[1] = '\0';
    *pos = close + 4;
    return body;
}

static void readme_shows_the_schema_and_queries_that_run(void **state)
{
    fixture *f = *state;
    store *st = NULL;
    char err[512];
    open_store(f->path, true, &st);
    write_run(st);
    write_artifacts(st);
    write_fleet(st, in_order, 10);
    store_ring ring = {0, "canary", "1%", 1, 3600000, 7740000};
    assert_int_equal(store_write_ring(st, &ring, err, sizeof err), 0);
    store_gate_decision d = {0, 9000000, "threshold", STORE_GATE_HALT, 1, 1, 1, 0, -1, -1,
                             0.79, 0.001, "crash rate above 0.1%"};
    assert_int_equal(store_write_gate_decision(st, &d, err, sizeof err), 0);
    assert_int_equal(store_mark_complete(st, 1, 100, err, sizeof err), 0);
    assert_int_equal(store_close(st, err, sizeof err), 0);

    char *section = readme_section(), *pos = section;
    char *schema = next_sql_block(&pos);
    assert_non_null(schema);
    char whole[16384];
    assert_true((size_t)snprintf(whole, sizeof whole, "%s%s", store_schema_sql(),
                                 store_index_sql()) < sizeof whole);
    assert_string_equal(schema, whole);

    sqlite3 *db = open_db(f->path);
    int queries = 0;
    for (char *block; (block = next_sql_block(&pos)) != NULL;) {
        const char *sql = block;
        while (*sql) {
            sqlite3_stmt *s = NULL;
            const char *tail = NULL;
            if (sqlite3_prepare_v2(db, sql, -1, &s, &tail) != SQLITE_OK)
                fail_msg("README query fails: %s\n%s", sqlite3_errmsg(db), sql);
            if (!s)
                break; /* only comments and space left */
            int rc, rows = 0;
            while ((rc = sqlite3_step(s)) == SQLITE_ROW)
                rows++;
            if (rc != SQLITE_DONE)
                fail_msg("README query fails: %s\n%s", sqlite3_errmsg(db), sql);
            if (rows == 0)
                fail_msg("README query returns nothing on a run with crashes:\n%s", sql);
            sqlite3_finalize(s);
            queries++;
            sql = tail;
        }
    }
    assert_true(queries >= 5);
    sqlite3_close(db);
    free(section);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(schema_is_created_and_versioned, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(foreign_files_are_refused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(run_reads_back_with_plain_sql, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(same_rows_any_order_same_store, setup_dir, teardown_dir),
        cmocka_unit_test(buckets_ignore_where_the_image_loaded),
        cmocka_unit_test(buckets_tell_functions_and_accesses_apart),
        cmocka_unit_test(buckets_skip_nt_frames),
        cmocka_unit_test(buckets_fit_in_120_characters),
        cmocka_unit_test_setup_teardown(full_disk_keeps_committed_rows, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(full_disk_while_marking, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(interrupted_run_leaves_consistent_store, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(all_details_when_asked, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(allocation_failures_are_clean, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(bad_arguments_are_refused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(readme_shows_the_schema_and_queries_that_run, setup_dir,
                                        teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
