/*
 * gate.c — the release gate: limits on a report, and the verdict.
 *
 * A gate is a comma-separated list of limits, e.g.
 * "max-fault-rate=0.1%,max-boot-loops=0".  Every limit but min-reached holds
 * per cohort (a fleet-wide average would hide a cohort that faults every
 * time); min-reached holds for the run, so a gate never passes an update
 * that reached too few endpoints to say anything (DESIGN.md: never pass on
 * missing data).  A store of a run that did not complete fails any gate.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "sim.h"

static const struct {
    const char *name;
    bool rate;        /* a fraction or a percentage; else a count */
    bool per_cohort;
    const char *what; /* for messages */
} LIMITS[GATE_NLIMITS] = {
    [GATE_MAX_FAULT_RATE] = {"max-fault-rate", true, true, "fault rate"},
    [GATE_MAX_FAULT_RATE_UPPER] = {"max-fault-rate-upper", true, true,
                                   "fault rate's upper 95% bound"},
    [GATE_MAX_FAULTS] = {"max-faults", false, true, "endpoints faulted"},
    [GATE_MAX_BOOT_LOOPS] = {"max-boot-loops", false, true, "endpoints boot-looped"},
    [GATE_MAX_STILL_DOWN] = {"max-still-down", false, true, "endpoints still down"},
    [GATE_MIN_REACHED] = {"min-reached", false, false, "endpoints reached"},
};

static int parse_limit(const char *part, report_limit *lim, char *err, size_t errlen)
{
    const char *eq = strchr(part, '=');
    size_t nlen = eq ? (size_t)(eq - part) : strlen(part);
    int kind = -1;
    for (int k = 0; k < GATE_NLIMITS; k++)
        if (strlen(LIMITS[k].name) == nlen && strncmp(LIMITS[k].name, part, nlen) == 0)
            kind = k;
    if (kind < 0) {
        snprintf(err, errlen,
                 "unknown limit \"%.*s\" (max-fault-rate, max-fault-rate-upper, "
                 "max-faults, max-boot-loops, max-still-down, min-reached)",
                 (int)nlen, part);
        return SIM_EINVAL;
    }
    if (!eq || !eq[1]) {
        snprintf(err, errlen, "\"%s\" needs a value, e.g. %s=%s", part, LIMITS[kind].name,
                 LIMITS[kind].rate ? "0.1%" : "0");
        return SIM_EINVAL;
    }
    const char *v = eq + 1;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    bool percent = *end == '%';
    if (percent)
        end++;
    if (end == v || *end || errno || !isfinite(x) || x < 0) {
        snprintf(err, errlen, "%s: \"%s\" is not a %s", LIMITS[kind].name, v,
                 LIMITS[kind].rate ? "rate (0.001 or 0.1%)" : "count");
        return SIM_EINVAL;
    }
    if (LIMITS[kind].rate) {
        if (percent)
            x /= 100.0;
        if (x > 1.0) {
            snprintf(err, errlen, "%s: \"%s\" is more than 100%%", LIMITS[kind].name, v);
            return SIM_EINVAL;
        }
    } else if (percent || x != floor(x)) {
        snprintf(err, errlen, "%s: \"%s\" is not a whole count", LIMITS[kind].name, v);
        return SIM_EINVAL;
    }
    lim->kind = (report_limit_kind)kind;
    lim->value = x;
    snprintf(lim->text, sizeof lim->text, "%.*s", (int)strlen(part), part);
    return 0;
}

int report_gate_parse(const char *expr, report_gate *g, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    if (!expr || strlen(expr) >= sizeof g->text) {
        snprintf(err, errlen, "the expression is %s", expr ? "too long" : "missing");
        return SIM_EINVAL;
    }
    char buf[sizeof g->text];
    size_t o = 0;
    snprintf(buf, sizeof buf, "%s", expr);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        size_t n = strlen(t);
        while (n && t[n - 1] == ' ')
            t[--n] = '\0';
        if (!n)
            continue;
        if (g->nlimits == sizeof g->limits / sizeof g->limits[0]) {
            snprintf(err, errlen, "too many limits");
            return SIM_EINVAL;
        }
        int rc = parse_limit(t, &g->limits[g->nlimits], err, errlen);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < g->nlimits; i++)
            if (g->limits[i].kind == g->limits[g->nlimits].kind) {
                snprintf(err, errlen, "%s is given twice",
                         LIMITS[g->limits[i].kind].name);
                return SIM_EINVAL;
            }
        o += (size_t)snprintf(g->text + o, sizeof g->text - o, "%s%s", o ? "," : "", t);
        g->nlimits++;
    }
    if (!g->nlimits) {
        snprintf(err, errlen, "no limits in \"%s\" (e.g. max-fault-rate=0.1%%)", expr);
        return SIM_EINVAL;
    }
    return 0;
}

void report_gate_default(report_gate *g)
{
    char err[128];
    int rc = report_gate_parse("max-faults=0", g, err, sizeof err);
    (void)rc;
}

/* The measure a limit reads, of a cohort or of the run. */
static double measure(report_limit_kind k, const report_counts *n)
{
    switch (k) {
    case GATE_MAX_FAULT_RATE: return n->rate;
    case GATE_MAX_FAULT_RATE_UPPER: return n->reached ? n->hi : 0.0;
    case GATE_MAX_FAULTS: return (double)n->faulted;
    case GATE_MAX_BOOT_LOOPS: return (double)n->boot_looped;
    case GATE_MAX_STILL_DOWN: return (double)n->still_down;
    case GATE_MIN_REACHED: return (double)n->reached;
    default: return 0.0;
    }
}

static bool breaks(const report_limit *lim, double x)
{
    return lim->kind == GATE_MIN_REACHED ? x < lim->value : x > lim->value + 1e-12;
}

static int add(report_verdict *v, const report_limit *lim, const report_cohort *c, double x)
{
    report_violation *grown = sim_realloc(v->violations, (v->nviolations + 1) * sizeof *grown);
    if (!grown)
        return SIM_ENOMEM;
    v->violations = grown;
    grown[v->nviolations++] = (report_violation){lim, c, x};
    return 0;
}

int report_gate_check(const report *r, const report_gate *g, report_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->incomplete = !r->complete;
    for (size_t i = 0; i < g->nlimits; i++) {
        const report_limit *lim = &g->limits[i];
        if (!LIMITS[lim->kind].per_cohort) {
            double x = measure(lim->kind, &r->total);
            if (breaks(lim, x) && add(v, lim, NULL, x) < 0)
                return SIM_ENOMEM;
        }
    }
    for (size_t c = 0; c < r->ncohorts; c++) {
        bool failed = false;
        for (size_t i = 0; i < g->nlimits; i++) {
            const report_limit *lim = &g->limits[i];
            if (!LIMITS[lim->kind].per_cohort)
                continue;
            double x = measure(lim->kind, &r->cohorts[c].n);
            if (breaks(lim, x)) {
                if (add(v, lim, &r->cohorts[c], x) < 0)
                    return SIM_ENOMEM;
                failed = true;
            }
        }
        v->ncohorts_failed += failed;
    }
    v->passed = !v->incomplete && v->nviolations == 0;
    return 0;
}

void report_verdict_free(report_verdict *v)
{
    sim_free(v->violations);
    v->violations = NULL;
    v->nviolations = 0;
}

bool report_cohort_failed(const report_verdict *v, const report_cohort *c)
{
    for (size_t i = 0; i < v->nviolations; i++)
        if (v->violations[i].cohort == c)
            return true;
    return false;
}

static void value_text(const report_limit *lim, double x, char *out, size_t room)
{
    if (LIMITS[lim->kind].rate)
        report_percent(x, out, room);
    else
        snprintf(out, room, "%.0f", x);
}

void report_violation_text(const report_violation *x, char *out, size_t room)
{
    char actual[32], limit[32];
    value_text(x->limit, x->actual, actual, sizeof actual);
    value_text(x->limit, x->limit->value, limit, sizeof limit);
    snprintf(out, room, "%s: %s %s %s %s (%s)", x->cohort ? x->cohort->label : "the run",
             LIMITS[x->limit->kind].what, actual,
             x->limit->kind == GATE_MIN_REACHED ? "<" : ">", limit, x->limit->text);
}

void report_verdict_line(const report_gate *g, const report_verdict *v, char *out, size_t room)
{
    if (v->passed) {
        snprintf(out, room, "PASS: every cohort within %s", g->text);
        return;
    }
    size_t n = 0;
    if (v->incomplete)
        n += (size_t)snprintf(out, room, "FAIL: the run did not complete");
    if (v->ncohorts_failed && n < room)
        n += (size_t)snprintf(out + n, room - n, "%s%zu cohort%s broke %s", n ? "; " : "FAIL: ",
                              v->ncohorts_failed, v->ncohorts_failed == 1 ? "" : "s", g->text);
    for (size_t i = 0; i < v->nviolations && n < room; i++)
        if (!v->violations[i].cohort) {
            char t[256];
            report_violation_text(&v->violations[i], t, sizeof t);
            n += (size_t)snprintf(out + n, room - n, "%s%s", n ? "; " : "FAIL: ", t);
        }
}
