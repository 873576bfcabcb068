/*
 * report.h — what a run's store says about an update: cohorts, crash
 * buckets, the fleet over time, and whether it passes a gate.
 *
 * The report layer reads a run store (fleet/store_schema.c) and nothing
 * else (DESIGN.md, "Layout").  report_load() reads one store into a
 * `report`: plain data that every renderer (text, Markdown, HTML, JSON,
 * JUnit) and `fleetsim diff` draw from, so all formats name the same cohorts
 * and buckets by construction.
 *
 * Definitions, per endpoint (the README's "Reports" says the same):
 *   reached      received the update (a 'received' timeline event)
 *   faulted      at least one emulation ended in a bugcheck or a hang
 *   boot-looped  two or more did (it crashed again after a reboot)
 *   recovered    faulted, then recovered or was repaired
 *   still down   faulted and did not recover by the end of the run
 *   fault rate   faulted / reached, with a 95% interval (Wilson by default)
 *
 * Errors are values: functions return 0 or a negative SIM_E* code and fill
 * `err`.
 */
#ifndef FLEETSIM_REPORTS_REPORT_H
#define FLEETSIM_REPORTS_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define REPORT_MAX_BY 6        /* attributes a cohort is grouped by */
#define REPORT_MAX_EXAMPLES 3  /* endpoints to replay, per bucket */
#define REPORT_SERIES_BINS 48  /* points of the fleet-over-time chart */

/* ---- statistics (stats.c) ----------------------------------------------- */

typedef enum { REPORT_WILSON, REPORT_CLOPPER_PEARSON } report_interval_method;

/* The two-sided 95% interval of k successes in n trials; n == 0 gives [0, 1]. */
void report_interval(report_interval_method m, uint64_t k, uint64_t n, double *lo, double *hi);
void report_wilson(uint64_t k, uint64_t n, double z, double *lo, double *hi);
/* Exact (Clopper-Pearson) interval at confidence 1 - alpha. */
void report_clopper_pearson(uint64_t k, uint64_t n, double alpha, double *lo, double *hi);

/*
 * The sequential test's Bayes factor (Lindon & Malek 2022): evidence that
 * the canary's crash rate exceeds the control's, from N_A control crashes,
 * N_B canary crashes, the canary's share rho of exposure and prior strength
 * k.  Valid at every look: halt when it reaches 1 / alpha.
 */
double report_bayes_factor(uint64_t n_control, uint64_t n_canary, double rho, double k);

/* ---- the report --------------------------------------------------------- */

typedef struct report_options {
    const char *by[REPORT_MAX_BY]; /* NULL-terminated; default profile, sensor.
                                      report.by points at these strings: keep
                                      them as long as the report */
    report_interval_method interval;
    size_t max_buckets;            /* 0: all */
    const char *program;           /* argv[0] for replay commands; "fleetsim" */
} report_options;

void report_options_init(report_options *o);
/* Parse "profile,sensor,region" into o->by (strings point into `text`). */
int report_parse_by(report_options *o, char *text, char *err, size_t errlen);

typedef struct report_counts {
    uint64_t endpoints, reached, faulted, boot_looped, recovered, still_down, unsupported;
    uint64_t crashes;      /* crashing emulations, boots of a loop counted each */
    double rate, lo, hi;   /* faulted / reached and its interval; 0, [0, 1] unreached */
} report_counts;

typedef struct report_cohort {
    char *values[REPORT_MAX_BY]; /* one per `by` attribute ("(none)" for NULL) */
    char *label;                 /* the values joined with " / " */
    report_counts n;
    char *top_bucket;            /* the bucket most of its endpoints fell in; NULL */
    uint64_t top_bucket_endpoints;
} report_cohort;

typedef struct report_example {
    uint64_t endpoint;
    uint32_t boot;
    char *command;      /* a `fleetsim emulate` line that re-runs that emulation */
} report_example;

typedef struct report_bucket {
    char *key;          /* "0x50_R_KERNEL_sensor!MatchInstance+0x57" */
    uint32_t bugcheck;  /* 0 for a hang */
    char *bugcheck_name;
    uint64_t crashes, endpoints;
    int64_t first_vt_ms, last_vt_ms;
    char *symbol, *instruction, *access, *address_class, *address;
    char *stack;        /* representative stack, one frame a line, innermost first */
    char *disasm;       /* instructions up to the faulting one, one a line */
    char **cohorts;     /* labels of the cohorts it hit, worst first */
    size_t ncohorts;
    report_example examples[REPORT_MAX_EXAMPLES];
    size_t nexamples;
} report_bucket;

/* Endpoints over virtual time, at the end of each bin. */
typedef struct report_point {
    int64_t vt_ms;
    uint64_t received, crashed, down, recovered; /* cumulative, endpoints */
} report_point;

/* A rollout ring and what the update did in it. */
typedef struct report_ring {
    uint32_t ring;
    char *name, *selector;
    uint64_t size, bake_ms;
    bool released;
    int64_t released_ms;
    uint64_t received, faulted;    /* its endpoints that received the update, faulted */
} report_ring;

/* A gate decision that changed the rollout (advance, halt, rollback), a
 * detection (all at once), and the last decision made. */
typedef struct report_decision {
    uint32_t ring;
    int64_t vt_ms;
    char *gate, *action, *detail;
} report_decision;

typedef struct report_artifact {
    char *kind, *role, *name, *sha256, *version, *path;
} report_artifact;

typedef struct report {
    char *store_path;
    /* The run row. */
    char *scenario, *seed, *shard, *status, *fleetsim_version, *started_at, *ended_at;
    char *virtual_start, *reason, *plan;
    int64_t virtual_start_ms, duration_ms, virtual_end_ms;
    uint64_t fleet_size;
    int exit_code;              /* -1: none recorded */
    bool complete;              /* status 'complete' */
    report_artifact *artifacts;
    size_t nartifacts;

    const char *by[REPORT_MAX_BY + 1];
    size_t nby;
    report_interval_method interval;
    report_counts total;
    report_cohort *cohorts;     /* worst first: fault rate, then faulted, label */
    size_t ncohorts;
    report_bucket *buckets;     /* largest first: endpoints, crashes, key */
    size_t nbuckets, nbuckets_total;
    report_point series[REPORT_SERIES_BINS];
    size_t nseries;
    report_ring *rings;         /* the rollout, in release order */
    size_t nrings;
    report_decision *decisions;
    size_t ndecisions;
} report;

/* Read the store at `path` (read-only; never written). */
int report_load(const char *path, const report_options *opts, report **out, char *err,
                size_t errlen);
void report_free(report *r);

/* The UTC clock of a virtual time: "2024-07-19 04:09:00Z". */
void report_utc(const report *r, int64_t vt_ms, char *out, size_t room);
/* A rate as "12.34%". */
void report_percent(double rate, char *out, size_t room);

/* ---- the gate (gate.c) -------------------------------------------------- */

typedef enum {
    GATE_MAX_FAULT_RATE,       /* per cohort: faulted / reached <= x */
    GATE_MAX_FAULT_RATE_UPPER, /* per cohort: the interval's upper bound <= x */
    GATE_MAX_FAULTS,           /* per cohort: faulted endpoints <= n */
    GATE_MAX_BOOT_LOOPS,       /* per cohort: boot-looped endpoints <= n */
    GATE_MAX_STILL_DOWN,       /* per cohort: still down at the end <= n */
    GATE_MIN_REACHED,          /* the run: endpoints reached >= n */
    GATE_NLIMITS
} report_limit_kind;

typedef struct report_limit {
    report_limit_kind kind;
    double value;              /* a rate as a fraction, or a count */
    char text[64];             /* as written: "max-fault-rate=0.1%" */
} report_limit;

typedef struct report_gate {
    report_limit limits[16];
    size_t nlimits;
    char text[512];            /* the expression */
} report_gate;

/* Parse "max-fault-rate=0.1%,max-boot-loops=0".  Errors name the part. */
int report_gate_parse(const char *expr, report_gate *g, char *err, size_t errlen);
/* The gate a run answers to when given none: no endpoint may fault. */
void report_gate_default(report_gate *g);

typedef struct report_violation {
    const report_limit *limit;
    const report_cohort *cohort; /* NULL: the run as a whole */
    double actual;
} report_violation;

typedef struct report_verdict {
    bool passed;
    bool incomplete;             /* the store is not of a complete run */
    report_violation *violations;
    size_t nviolations;
    size_t ncohorts_failed;
} report_verdict;

int report_gate_check(const report *r, const report_gate *g, report_verdict *v);
void report_verdict_free(report_verdict *v);
/* "FAIL: 9 cohorts broke max-faults=0", "FAIL: the run did not complete; ...",
 * "PASS: every cohort within max-faults=0". */
void report_verdict_line(const report_gate *g, const report_verdict *v, char *out,
                         size_t room);
/* One line a violation: "win10 / 7.11: fault rate 81.2% > 0.1%". */
void report_violation_text(const report_violation *x, char *out, size_t room);
/* Whether a cohort broke any limit. */
bool report_cohort_failed(const report_verdict *v, const report_cohort *c);

/* ---- renderers (render_*.c) --------------------------------------------- */

typedef enum {
    REPORT_TEXT, REPORT_MARKDOWN, REPORT_HTML, REPORT_JSON, REPORT_JUNIT
} report_format;

int report_format_parse(const char *name, report_format *f);

/* Write the report; `colour` only matters for text.  0, or -1 when the
 * output could not be written. */
int report_write(FILE *out, report_format f, const report *r, const report_gate *g,
                 const report_verdict *v, bool colour);

/* ---- compare (diff.c) --------------------------------------------------- */

/* Compare a candidate with a baseline cohort by cohort (text, Markdown or
 * JSON).  *worse is set when the candidate has a new bucket or a cohort
 * whose fault rate got significantly worse (intervals apart). */
int report_diff_write(FILE *out, report_format f, const report *base, const report *cand,
                      bool colour, bool *worse);

/* ---- rollout plans side by side (plans.c) ------------------------------ */

/* One line per store: the plan, endpoints received/crashed/still down,
 * rings released, detection and stop times, machine-hours lost. */
int report_plans_write(FILE *out, const char *const *paths, size_t n, char *err,
                       size_t errlen);

#endif
