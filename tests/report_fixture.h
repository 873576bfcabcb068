/*
 * report_fixture.h — what the report tests (test_report.c,
 * test_report_formats.c) share: stores written with the store API, and
 * helpers that load, render and look into reports.
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
#ifndef FLEETSIM_REPORT_FIXTURE_H
#define FLEETSIM_REPORT_FIXTURE_H

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
#include "store_fixture.h"

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

typedef struct fixture {
    char dir[64];
    char path[128];  /* the store a test reports on */
    char other[128]; /* a second one, for diffs and foreign files */
} fixture;

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

#define FLEET 35

typedef struct planned {
    const char *profile, *sensor, *region, *tenant, *hardware;
    bool received;
    const char *boot0_start;
    /* One letter a boot: X, Y a 0x50 in bucket X or Y, H a hang, U an
     * unsupported API, o ok; "" never emulated. */
    const char *boots;
} planned;

/*
 * A small store: per cohort, `reached` endpoints that received the update,
 * the first `faulted` of them crashing once (at boot, in sensor!<function>).
 */
typedef struct cohort_spec {
    const char *profile, *sensor, *region;
    unsigned reached, faulted;
    const char *function;
} cohort_spec;

typedef struct expect_counts {
    const char *label;
    uint64_t endpoints, reached, faulted, boot_looped, recovered, still_down, crashes,
        unsupported;
    const char *top_bucket; /* NULL: none */
} expect_counts;

/* The bucket keys of the main store's faults, as the store computes them. */
extern char KEY_X[STORE_BUCKET_SIZE], KEY_Y[STORE_BUCKET_SIZE], KEY_Z[STORE_BUCKET_SIZE];

/* cmocka set-ups: a fresh folder per test (the fixture), the keys once. */
int setup_dir(void **state);
int teardown_dir(void **state);
int compute_keys(void **state);

/* Writing stores. */
void write_run(store *st, uint64_t fleet_size);
void write_artifacts(store *st);
void mark(store *st, int status);
void write_main_store(const char *path, int status);
void write_simple_store(const char *path, const cohort_spec *specs, size_t n, int status);
/* The main store's plan for endpoint `id`, and its times and seeds. */
void plan(uint64_t id, planned *p);
int64_t received_ms(uint64_t id);
int64_t boot_ms(uint64_t id, uint32_t boot);
uint64_t emulation_seed(uint64_t id, uint32_t boot);

/* Reading reports; each fails the test when what it looks for is missing. */
report *load(const char *path, const report_options *opts);
report *load_by(const char *path, const char *by);
const report_cohort *cohort(const report *r, const char *label);
const report_bucket *bucket(const report *r, const char *key);
void check_counts(const report_counts *n, const expect_counts *x);
void check_cohort(const report_cohort *c, const expect_counts *x);
/* A report or a diff in a format, as one string (free it). */
char *render(report_format f, const report *r, const report_gate *g, const report_verdict *v,
             bool colour);
char *render_diff(report_format f, const report *base, const report *cand, bool *worse);

/* Looking into text, JSON, files and stores. */
size_t count(const char *hay, const char *needle);
const char *line_with(const char *text, const char *needle);
bool ends_with(const char *s, const char *tail);
bool json_valid(const char *doc);
const char *json_get(const char *doc, const char *path);
char *slurp(const char *path, size_t *len);
void sql_exec(const char *path, const char *sql);

#endif
