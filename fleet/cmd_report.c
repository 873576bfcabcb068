/*
 * cmd_report.c — `fleetsim report STORE` and `fleetsim diff BASE CAND`: the
 * report layer (reports/) on the command line, and the gate `run --gate`
 * shares (fleet_gate_store).
 *
 * Output goes to stdout or, with -o FILE, to FILE.tmp renamed over FILE
 * once complete, so a full disk or a Ctrl-C never leaves half a report
 * where a CI job would read it.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"
#include "report.h"
#include "sim.h"

#define REPORT_USAGE                                                              \
    "fleetsim report STORE [--format text|md|html|json|junit] [-o FILE] [--by LIST] " \
    "[--gate EXPR] [--interval wilson|clopper-pearson] [--max-buckets N]"
#define DIFF_USAGE "fleetsim diff BASELINE CANDIDATE [--format text|md|json] [-o FILE] [--by LIST]"

static void print_report_usage(void)
{
    printf("usage: %s\n\n"
           "Read a run's store and report which cohorts faulted, how, and how sure the\n"
           "numbers are: the cohort table (worst first, fault rate with a 95%% interval),\n"
           "the crash buckets (each with a representative stack and `fleetsim emulate`\n"
           "lines that re-run example endpoints), and a verdict line.\n\n"
           "  --format F       text (default; colour on a terminal), md, html (one\n"
           "                   self-contained file with charts), json, junit\n"
           "  -o FILE          write to FILE instead of stdout\n"
           "  --by LIST        cohort attributes, comma-separated (default\n"
           "                   profile,sensor): profile, os, sensor, region, tenant,\n"
           "                   ring, or any attribute of an inventory\n"
           "  --gate EXPR      limits per cohort, e.g. max-fault-rate=0.1%%,max-boot-loops=0\n"
           "                   (max-fault-rate, max-fault-rate-upper, max-faults,\n"
           "                   max-boot-loops, max-still-down; min-reached for the run);\n"
           "                   exit 1 when a cohort breaks one or the run is incomplete\n"
           "  --interval M     wilson (default) or clopper-pearson\n"
           "  --max-buckets N  buckets to detail (default 20; 0: all)\n\n"
           "Without --gate the verdict line applies max-faults=0 and the exit status is 0.\n",
           REPORT_USAGE);
}

static void print_diff_usage(void)
{
    printf("usage: %s\n\n"
           "Compare two runs' stores cohort by cohort: buckets new in the candidate or\n"
           "gone from it, and cohorts whose fault rate got worse or better (their 95%%\n"
           "intervals apart).  Exit 1 when the candidate is worse: a new bucket or a\n"
           "worse cohort.\n",
           DIFF_USAGE);
}

/* An output file written whole or not at all. */
typedef struct output {
    FILE *f;
    const char *path;
    char tmp[4096];
} output;

static int output_open(output *o, const char *path)
{
    o->path = path;
    if (!path) {
        o->f = stdout;
        return 0;
    }
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp", path);
    if (!(o->f = fopen(o->tmp, "w"))) {
        fprintf(stderr, "fleetsim: %s: cannot write: %s\n", o->tmp, strerror(errno));
        return -1;
    }
    return 0;
}

/* Finish: rename into place (or drop the temporary file after `failed`). */
static int output_close(output *o, bool failed)
{
    if (!o->path) {
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "fleetsim: cannot write the report to stdout\n");
            return -1;
        }
        return failed ? -1 : 0;
    }
    bool bad = failed || ferror(o->f);
    if (fclose(o->f) != 0)
        bad = true;
    if (!bad && rename(o->tmp, o->path) != 0)
        bad = true;
    if (bad) {
        fprintf(stderr, "fleetsim: %s: could not be written (%s); nothing left behind\n",
                o->path, strerror(errno ? errno : EIO));
        unlink(o->tmp);
        return -1;
    }
    return 0;
}

static int load(const char *path, const report_options *opts, report **r)
{
    char err[1024];
    int rc = report_load(path, opts, r, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        return rc == SIM_ENOMEM ? FLEET_EXIT_UNFAITHFUL : FLEET_EXIT_USAGE;
    }
    return 0;
}

int fleet_gate_store(const char *store_path, const char *gate_expr, bool print)
{
    report_gate g;
    char err[1024];
    if (gate_expr) {
        if (report_gate_parse(gate_expr, &g, err, sizeof err) < 0) {
            fprintf(stderr, "fleetsim: --gate: %s\n", err);
            return FLEET_EXIT_USAGE;
        }
    } else {
        report_gate_default(&g);
    }
    report_options opts;
    report_options_init(&opts);
    opts.max_buckets = 1;
    report *r;
    int rc = load(store_path, &opts, &r);
    if (rc)
        return rc;
    report_verdict v;
    if (report_gate_check(r, &g, &v) < 0) {
        report_free(r);
        fprintf(stderr, "fleetsim: out of memory\n");
        return FLEET_EXIT_UNFAITHFUL;
    }
    if (print) {
        for (size_t i = 0; i < v.nviolations && i < 20; i++) {
            char t[256];
            report_violation_text(&v.violations[i], t, sizeof t);
            printf("  %s\n", t);
        }
        if (v.nviolations > 20)
            printf("  ... and %zu more (fleetsim report %s --gate '%s')\n", v.nviolations - 20,
                   store_path, g.text);
        char line[1024];
        report_verdict_line(&g, &v, line, sizeof line);
        printf("%s\n", line);
    }
    rc = v.passed ? FLEET_EXIT_OK : FLEET_EXIT_FAULT;
    report_verdict_free(&v);
    report_free(r);
    return rc;
}

int fleet_plans_print(const char *const *stores, size_t n)
{
    char err[1024];
    if (report_plans_write(stdout, stores, n, err, sizeof err) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        return -1;
    }
    return 0;
}

int fleet_cmd_plans(int argc, char **argv)
{
    static const char usage[] = "fleetsim plans STORE...";
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("usage: %s\n\nThe rollout plans of these runs side by side: endpoints that "
               "received the\nupdate, crashed and were still down, rings released, when a gate "
               "saw the\ntrouble and when the release stopped, and the machine-hours lost.\n",
               usage);
        return FLEET_EXIT_OK;
    }
    if (argc < 2)
        return fleet_usage_error(usage, "which stores? (fleetsim run --compare-plans makes them)");
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-')
            return fleet_usage_error(usage, "unknown option %s", argv[i]);
    return fleet_plans_print((const char *const *)argv + 1, (size_t)argc - 1) < 0
               ? FLEET_EXIT_USAGE
               : FLEET_EXIT_OK;
}

enum { OPT_FORMAT = 256, OPT_BY, OPT_GATE, OPT_INTERVAL, OPT_MAX_BUCKETS, OPT_HELP };

static const struct option OPTIONS[] = {
    {"format", required_argument, NULL, OPT_FORMAT},
    {"output", required_argument, NULL, 'o'},
    {"by", required_argument, NULL, OPT_BY},
    {"gate", required_argument, NULL, OPT_GATE},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"max-buckets", required_argument, NULL, OPT_MAX_BUCKETS},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

typedef struct report_args {
    report_options opts;
    report_format format;
    const char *out, *gate;
    char by[512];
} report_args;

/* Options both commands take; 1 when handled, else an exit status. */
static int common_option(int opt, report_args *a, const char *usage, bool diff)
{
    char err[256];
    switch (opt) {
    case OPT_FORMAT:
        if (report_format_parse(optarg, &a->format) < 0 ||
            (diff && (a->format == REPORT_HTML || a->format == REPORT_JUNIT)))
            return fleet_usage_error(usage, "--format: \"%s\" is not one of %s", optarg,
                                     diff ? "text, md, json" : "text, md, html, json, junit");
        return 1;
    case 'o':
        a->out = optarg;
        return 1;
    case OPT_BY:
        snprintf(a->by, sizeof a->by, "%s", optarg);
        if (report_parse_by(&a->opts, a->by, err, sizeof err) < 0)
            return fleet_usage_error(usage, "%s", err);
        return 1;
    default:
        return 0;
    }
}

/* This program's own path, so replay lines paste into any shell. */
static const char *self_path(void)
{
    static char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0)
        return "fleetsim";
    path[n] = '\0';
    return path;
}

int fleet_cmd_report(int argc, char **argv)
{
    report_args a = {.format = REPORT_TEXT};
    report_options_init(&a.opts);
    a.opts.program = self_path();
    uint64_t n;
    int opt, rc;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:", OPTIONS, NULL)) != -1) {
        if ((rc = common_option(opt, &a, REPORT_USAGE, false)) == 1)
            continue;
        if (rc)
            return rc;
        switch (opt) {
        case OPT_GATE:
            a.gate = optarg;
            break;
        case OPT_INTERVAL:
            if (strcmp(optarg, "wilson") == 0)
                a.opts.interval = REPORT_WILSON;
            else if (strcmp(optarg, "clopper-pearson") == 0)
                a.opts.interval = REPORT_CLOPPER_PEARSON;
            else
                return fleet_usage_error(REPORT_USAGE,
                                         "--interval: \"%s\" is not wilson or clopper-pearson",
                                         optarg);
            break;
        case OPT_MAX_BUCKETS:
            if (!fleet_parse_u64(optarg, &n) || n > 100000)
                return fleet_usage_error(REPORT_USAGE, "--max-buckets: \"%s\" is not a count",
                                         optarg);
            a.opts.max_buckets = (size_t)n;
            break;
        case OPT_HELP:
            print_report_usage();
            return FLEET_EXIT_OK;
        default:
            return fleet_bad_option(REPORT_USAGE, argv, opt);
        }
    }
    if (argc - optind != 1)
        return fleet_usage_error(REPORT_USAGE, argc - optind ? "one STORE, please"
                                                             : "which store? (fleetsim run --db)");
    report_gate g;
    char err[1024];
    if (a.gate) {
        if (report_gate_parse(a.gate, &g, err, sizeof err) < 0)
            return fleet_usage_error(REPORT_USAGE, "--gate: %s", err);
    } else {
        report_gate_default(&g);
    }
    report *r;
    if ((rc = load(argv[optind], &a.opts, &r)))
        return rc;
    report_verdict v;
    if (report_gate_check(r, &g, &v) < 0) {
        report_free(r);
        fprintf(stderr, "fleetsim: out of memory\n");
        return FLEET_EXIT_UNFAITHFUL;
    }
    output o;
    if (output_open(&o, a.out) < 0) {
        rc = FLEET_EXIT_USAGE;
    } else {
        bool colour = !a.out && a.format == REPORT_TEXT && isatty(STDOUT_FILENO) &&
                      !getenv("NO_COLOR");
        bool failed = report_write(o.f, a.format, r, &g, &v, colour) < 0;
        rc = output_close(&o, failed) < 0 ? FLEET_EXIT_UNFAITHFUL
             : a.gate && !v.passed        ? FLEET_EXIT_FAULT
                                          : FLEET_EXIT_OK;
        if (a.out && rc != FLEET_EXIT_UNFAITHFUL) {
            char line[1024];
            report_verdict_line(&g, &v, line, sizeof line);
            fprintf(stderr, "%s\nreport: %s\n", line, a.out);
        }
    }
    report_verdict_free(&v);
    report_free(r);
    return rc;
}

int fleet_cmd_diff(int argc, char **argv)
{
    report_args a = {.format = REPORT_TEXT};
    report_options_init(&a.opts);
    a.opts.max_buckets = 0;
    int opt, rc;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:", OPTIONS, NULL)) != -1) {
        if ((rc = common_option(opt, &a, DIFF_USAGE, true)) == 1)
            continue;
        if (rc)
            return rc;
        if (opt == OPT_HELP) {
            print_diff_usage();
            return FLEET_EXIT_OK;
        }
        return fleet_bad_option(DIFF_USAGE, argv, opt);
    }
    if (argc - optind != 2)
        return fleet_usage_error(DIFF_USAGE, "two stores, please: the baseline, then the "
                                             "candidate");
    report *base = NULL, *cand = NULL;
    if ((rc = load(argv[optind], &a.opts, &base)) || (rc = load(argv[optind + 1], &a.opts, &cand))) {
        report_free(base);
        return rc;
    }
    output o;
    bool worse = false;
    if (output_open(&o, a.out) < 0) {
        rc = FLEET_EXIT_USAGE;
    } else {
        bool colour = !a.out && a.format == REPORT_TEXT && isatty(STDOUT_FILENO) &&
                      !getenv("NO_COLOR");
        bool failed = report_diff_write(o.f, a.format, base, cand, colour, &worse) < 0;
        rc = output_close(&o, failed) < 0 ? FLEET_EXIT_UNFAITHFUL
             : worse                      ? FLEET_EXIT_FAULT
                                          : FLEET_EXIT_OK;
    }
    report_free(base);
    report_free(cand);
    return rc;
}
