/*
 * render_junit.c — the report as JUnit XML, so CI servers (Jenkins, GitLab)
 * show each cohort as a test case.
 *
 * One <testsuite> for the run; a test case per cohort, failing when the
 * cohort broke the gate (by default: when any of its endpoints faulted),
 * with the numbers and its top bucket in the failure; one more case, "run
 * complete", failing for an interrupted run.  The schema is the common
 * subset Jenkins' and GitLab's parsers read (testsuites/testsuite/testcase/
 * failure/properties/system-out).
 */
#include <inttypes.h>
#include <string.h>

#include "render.h"

void report_xml_text(FILE *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default:
            /* XML 1.0 has no place for other control characters. */
            if (*p < 0x20 && *p != '\n' && *p != '\t')
                fputc('?', out);
            else
                fputc(*p, out);
        }
    }
}

static void attr(FILE *out, const char *name, const char *value)
{
    fprintf(out, " %s=\"", name);
    report_xml_text(out, value);
    fputc('"', out);
}

static void property(FILE *out, const char *name, const char *value)
{
    fputs("      <property", out);
    attr(out, "name", name);
    attr(out, "value", value ? value : "");
    fputs("/>\n", out);
}

void report_write_junit(FILE *out, const report *r, const report_gate *g, const report_verdict *v)
{
    size_t failures = v->ncohorts_failed + (v->incomplete ? 1 : 0);
    for (size_t i = 0; i < v->nviolations; i++)
        failures += v->violations[i].cohort == NULL;
    size_t tests = r->ncohorts + 2;
    char num[32], suite[256];
    snprintf(suite, sizeof suite, "fleetsim.%s", r->scenario);

    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites", out);
    attr(out, "name", "fleetsim");
    fprintf(out, " tests=\"%zu\" failures=\"%zu\" errors=\"0\">\n", tests, failures);
    fputs("  <testsuite", out);
    attr(out, "name", suite);
    fprintf(out, " tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"0\"", tests, failures);
    attr(out, "timestamp", r->started_at);
    fputs(">\n    <properties>\n", out);
    property(out, "store", r->store_path);
    property(out, "seed", r->seed);
    property(out, "shard", r->shard);
    property(out, "status", r->status);
    snprintf(num, sizeof num, "%" PRIu64, r->fleet_size);
    property(out, "fleet_size", num);
    property(out, "gate", g->text);
    for (size_t i = 0; i < r->nartifacts; i++)
        if (strcmp(r->artifacts[i].role, "update") == 0)
            property(out, "update", r->artifacts[i].name);
    fputs("    </properties>\n", out);

    /* The run itself: complete, and the run-wide limits (min-reached). */
    fputs("    <testcase", out);
    attr(out, "classname", suite);
    attr(out, "name", "run complete");
    fputs(">", out);
    if (v->incomplete) {
        fputs("\n      <failure type=\"incomplete\"", out);
        char msg[512];
        snprintf(msg, sizeof msg, "the run is %s%s%s", r->status, r->reason ? ": " : "",
                 r->reason ? r->reason : "");
        attr(out, "message", msg);
        fputs("/>\n    ", out);
    }
    fputs("</testcase>\n    <testcase", out);
    attr(out, "classname", suite);
    attr(out, "name", "run-wide limits");
    fputs(">", out);
    for (size_t i = 0; i < v->nviolations; i++)
        if (!v->violations[i].cohort) {
            char t[256];
            report_violation_text(&v->violations[i], t, sizeof t);
            fputs("\n      <failure", out);
            attr(out, "type", v->violations[i].limit->text);
            attr(out, "message", t);
            fputs("/>\n    ", out);
        }
    fputs("</testcase>\n", out);

    for (size_t c = 0; c < r->ncohorts; c++) {
        const report_cohort *co = &r->cohorts[c];
        char rate[96];
        report_interval_text(&co->n, rate, sizeof rate);
        fputs("    <testcase", out);
        attr(out, "classname", suite);
        attr(out, "name", co->label);
        fputs(">\n", out);
        if (report_cohort_failed(v, co)) {
            char msg[1024];
            size_t n = 0;
            for (size_t i = 0; i < v->nviolations && n < sizeof msg; i++)
                if (v->violations[i].cohort == co) {
                    char t[256];
                    report_violation_text(&v->violations[i], t, sizeof t);
                    n += (size_t)snprintf(msg + n, sizeof msg - n, "%s%s", n ? "; " : "", t);
                }
            fputs("      <failure", out);
            attr(out, "type", co->top_bucket ? co->top_bucket : "gate");
            attr(out, "message", msg);
            fputs(">", out);
            fprintf(out,
                    "faulted %" PRIu64 " of %" PRIu64 " reached (%s); boot-looped %" PRIu64
                    ", recovered %" PRIu64 ", still down %" PRIu64 "\ntop bucket: ",
                    co->n.faulted, co->n.reached, rate, co->n.boot_looped, co->n.recovered,
                    co->n.still_down);
            report_xml_text(out, co->top_bucket ? co->top_bucket : "-");
            fputs("</failure>\n", out);
        }
        fprintf(out,
                "      <system-out>endpoints %" PRIu64 ", reached %" PRIu64 ", faulted %" PRIu64
                ", fault rate ",
                co->n.endpoints, co->n.reached, co->n.faulted);
        report_xml_text(out, rate);
        fputs("</system-out>\n    </testcase>\n", out);
    }
    fputs("  </testsuite>\n</testsuites>\n", out);
}
