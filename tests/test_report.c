/*
 * test_report.c — the report layer (reports/): intervals against published
 * values, gate expressions and verdicts, report_load over stores written
 * here with the store API (cohorts, buckets, replay commands, --by, the fleet
 * over time), its errors and allocation failures.  The formats and the
 * comparison of two runs are test_report_formats.c's.
 *
 * The stores are report_fixture.c's.
 */
#include "report_fixture.h"
#include "store_fixture.h"

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
    assert_contains(x->disasm, "mov r8, qword ptr [rax + \"0xa0\"]");

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
    open_store(f->path, true, &st);
    write_run(st, 3);
    write_artifacts(st);
    for (uint64_t id = 0; id < 3; id++) {
        store_endpoint e = {.id = id, .profile = WIN10, .sensor = "7.11", .region = "eu-west",
                            .tenant = "acme", .seed = id, .ring = -1};
        assert_int_equal(store_write_endpoints(st, &e, 1, err, sizeof err), 0);
        timeline_event(st, id, 1000, STORE_TIMELINE_RECEIVED, "update");
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
    open_store(f->path, true, &st);
    write_run(st, 1);
    store_endpoint e = {.id = 0, .profile = WIN10, .sensor = "7.11", .seed = 1, .ring = -1};
    assert_int_equal(store_write_endpoints(st, &e, 1, err, sizeof err), 0);
    timeline_event(st, 0, 1000, STORE_TIMELINE_RECEIVED, "update");
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
    open_store(f->other, true, &st);
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
    };
#undef T
    return cmocka_run_group_tests(tests, compute_keys, NULL);
}
