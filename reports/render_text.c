/*
 * render_text.c — the report for a terminal and as Markdown, and the
 * dispatcher over every format (report_write).
 *
 * Text and Markdown carry the same content in the same order: the run, the
 * cohort table worst first, the crash buckets with what a researcher needs
 * to re-run one, and the verdict line that ends every report.  Colour only
 * when asked (a terminal), and only to mark, never to carry meaning.
 */
#include <inttypes.h>
#include <string.h>

#include "render.h"

int report_format_parse(const char *name, report_format *f)
{
    static const struct { const char *name; report_format f; } NAMES[] = {
        {"text", REPORT_TEXT}, {"md", REPORT_MARKDOWN}, {"markdown", REPORT_MARKDOWN},
        {"html", REPORT_HTML}, {"json", REPORT_JSON},    {"junit", REPORT_JUNIT},
    };
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (strcmp(NAMES[i].name, name) == 0) {
            *f = NAMES[i].f;
            return 0;
        }
    return -1;
}

int report_write(FILE *out, report_format f, const report *r, const report_gate *g,
                 const report_verdict *v, bool colour)
{
    switch (f) {
    case REPORT_TEXT: report_write_text(out, r, g, v, colour, false); break;
    case REPORT_MARKDOWN: report_write_text(out, r, g, v, false, true); break;
    case REPORT_HTML: report_write_html(out, r, g, v); break;
    case REPORT_JSON: report_write_json(out, r, g, v); break;
    case REPORT_JUNIT: report_write_junit(out, r, g, v); break;
    }
    return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}

void report_interval_text(const report_counts *n, char *out, size_t room)
{
    char rate[32], lo[32], hi[32];
    if (!n->reached) {
        snprintf(out, room, "-");
        return;
    }
    report_percent(n->rate, rate, sizeof rate);
    report_percent(n->lo, lo, sizeof lo);
    report_percent(n->hi, hi, sizeof hi);
    snprintf(out, room, "%s [%s, %s]", rate, lo, hi);
}

const char *report_interval_name(const report *r)
{
    return r->interval == REPORT_CLOPPER_PEARSON ? "Clopper-Pearson" : "Wilson";
}

/* ---- text and Markdown ---------------------------------------------------- */


typedef struct table {
    FILE *out;
    bool md;
    size_t ncols;
    int width[12];
    bool right[12];
} table;

static void row(table *t, const char *const *cells)
{
    if (t->md) {
        fputs("|", t->out);
        for (size_t i = 0; i < t->ncols; i++) {
            fputc(' ', t->out);
            for (const char *c = cells[i]; *c; c++) /* a | would split the cell */
                fputs(*c == '|' ? "\\|" : (char[]){*c, 0}, t->out);
            fputs(" |", t->out);
        }
        fputc('\n', t->out);
        return;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        bool last = i + 1 == t->ncols;
        fprintf(t->out, t->right[i] ? "%*s%s" : "%-*s%s", last ? 0 : t->width[i], cells[i],
                last ? "\n" : "  ");
    }
}

static void rule(table *t)
{
    if (!t->md)
        return;
    fputs("|", t->out);
    for (size_t i = 0; i < t->ncols; i++)
        fputs(t->right[i] ? " ---: |" : " --- |", t->out);
    fputc('\n', t->out);
}

static void heading(FILE *out, bool md, const char *text)
{
    if (md)
        fprintf(out, "\n## %s\n\n", text);
    else
        fprintf(out, "\n%s\n", text);
}

#define NCOH 9

static void cohort_cells(const report *r, const report_cohort *c, char cells[NCOH][160])
{
    (void)r;
    snprintf(cells[0], 160, "%s", c->label);
    snprintf(cells[1], 160, "%" PRIu64, c->n.endpoints);
    snprintf(cells[2], 160, "%" PRIu64, c->n.reached);
    snprintf(cells[3], 160, "%" PRIu64, c->n.faulted);
    report_interval_text(&c->n, cells[4], 160);
    snprintf(cells[5], 160, "%" PRIu64, c->n.boot_looped);
    snprintf(cells[6], 160, "%" PRIu64, c->n.recovered);
    snprintf(cells[7], 160, "%" PRIu64, c->n.still_down);
    snprintf(cells[8], 160, "%s", c->top_bucket ? c->top_bucket : "-");
}

static void write_cohorts(FILE *out, const report *r, const report_verdict *v, bool colour,
                          bool md)
{
    char head0[160] = "";
    for (size_t i = 0; i < r->nby; i++)
        snprintf(head0 + strlen(head0), sizeof head0 - strlen(head0), "%s%s", i ? " / " : "",
                 r->by[i]);
    char rate_head[64];
    snprintf(rate_head, sizeof rate_head, "fault rate [95%% %s]", report_interval_name(r));
    const char *head[NCOH] = {head0,      "endpoints", "reached",    "faulted",   rate_head,
                              "boot-looped", "recovered", "still down", "top bucket"};
    table t = {out, md, NCOH, {0}, {false, true, true, true, true, true, true, true, false}};
    char cells[NCOH][160];
    for (size_t i = 0; i < NCOH; i++)
        t.width[i] = (int)strlen(head[i]);
    for (size_t c = 0; c < r->ncohorts; c++) {
        cohort_cells(r, &r->cohorts[c], cells);
        for (size_t i = 0; i < NCOH; i++)
            if ((int)strlen(cells[i]) > t.width[i])
                t.width[i] = (int)strlen(cells[i]);
    }
    row(&t, head);
    rule(&t);
    for (size_t c = 0; c < r->ncohorts; c++) {
        const report_cohort *co = &r->cohorts[c];
        cohort_cells(r, co, cells);
        const char *p[NCOH];
        for (size_t i = 0; i < NCOH; i++)
            p[i] = cells[i];
        bool bad = report_cohort_failed(v, co);
        if (bad && colour)
            fputs("\033[31m", out);
        row(&t, p);
        if (bad && colour)
            fputs("\033[0m", out);
    }
}

static void write_buckets(FILE *out, const report *r, bool md)
{
    char first[40], last[40];
    if (!r->nbuckets) {
        fprintf(out, "%sNo crashes.\n", md ? "" : "  ");
        return;
    }
    for (size_t i = 0; i < r->nbuckets; i++) {
        const report_bucket *b = &r->buckets[i];
        report_utc(r, b->first_vt_ms, first, sizeof first);
        report_utc(r, b->last_vt_ms, last, sizeof last);
        if (md)
            fprintf(out, "### %zu. `%s`\n\n", i + 1, b->key);
        else
            fprintf(out, "%2zu. %s\n", i + 1, b->key);
        const char *ind = md ? "- " : "    ";
        fprintf(out, "%s%" PRIu64 " endpoint%s, %" PRIu64 " crash%s, %s to %s\n", ind,
                b->endpoints, b->endpoints == 1 ? "" : "s", b->crashes,
                b->crashes == 1 ? "" : "es", first, last);
        if (b->bugcheck)
            fprintf(out, "%sbugcheck 0x%X %s\n", ind, b->bugcheck, b->bugcheck_name);
        else
            fprintf(out, "%shang (the machine stops responding)\n", ind);
        fprintf(out, "%s%s%s%s at %s: %s%s%s", ind, md ? "`" : "", b->symbol, md ? "`" : "",
                b->address, md ? "`" : "", b->instruction, md ? "`" : "");
        if (b->access[0] && strcmp(b->access, "none") != 0)
            fprintf(out, " (%s of a %s address)", b->access, b->address_class);
        fputc('\n', out);
        fprintf(out, "%scohorts:", ind);
        for (size_t k = 0; k < b->ncohorts && k < 6; k++)
            fprintf(out, "%s %s", k ? "," : "", b->cohorts[k]);
        if (b->ncohorts > 6)
            fprintf(out, " and %zu more", b->ncohorts - 6);
        fputc('\n', out);
        if (md) {
            fputs("\nStack (innermost first):\n\n```\n", out);
            fputs(b->stack, out);
            fputs("```\n\nRe-run:\n\n```sh\n", out);
        } else {
            fputs("    stack:\n", out);
            for (const char *p = b->stack; *p;) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t)(nl - p) : strlen(p);
                fprintf(out, "      %.*s\n", (int)n, p);
                p += n + (nl != NULL);
            }
            fputs("    re-run:\n", out);
        }
        for (size_t k = 0; k < b->nexamples; k++)
            fprintf(out, "%s# endpoint %" PRIu64 ", boot %u\n%s%s\n", md ? "" : "      ",
                    b->examples[k].endpoint, b->examples[k].boot, md ? "" : "      ",
                    b->examples[k].command);
        if (md)
            fputs("```\n\n", out);
    }
    if (r->nbuckets < r->nbuckets_total)
        fprintf(out, "%s(%zu more bucket%s: --max-buckets 0 shows all)\n", md ? "" : "  ",
                r->nbuckets_total - r->nbuckets, r->nbuckets_total - r->nbuckets == 1 ? "" : "s");
}

/* The rollout: each ring, when it was released and what the update did
 * there, then the decisions that changed the course. */
static void write_rollout(FILE *out, const report *r, bool md)
{
    char when[40];
    char title[128];
    snprintf(title, sizeof title, "Rollout: plan %s", r->plan ? r->plan : "all-at-once");
    heading(out, md, title);
    table t = {out, md, 7, {4, 4, 8, 8, 20, 8, 7}, {true, false, false, true, false, true, true}};
    const char *head[7] = {"ring", "name", "selector", "size", "released", "received",
                           "faulted"};
    char cells[7][64];
    for (size_t i = 0; i < r->nrings; i++) {
        const report_ring *g = &r->rings[i];
        snprintf(cells[1], 64, "%s", g->name);
        snprintf(cells[2], 64, "%s", g->selector);
        for (int c = 1; c <= 2; c++)
            if ((int)strlen(cells[c]) > t.width[c])
                t.width[c] = (int)strlen(cells[c]);
    }
    row(&t, head);
    rule(&t);
    for (size_t i = 0; i < r->nrings; i++) {
        const report_ring *g = &r->rings[i];
        if (g->released)
            report_utc(r, g->released_ms, when, sizeof when);
        snprintf(cells[0], 64, "%u", g->ring);
        snprintf(cells[1], 64, "%s", g->name);
        snprintf(cells[2], 64, "%s", g->selector);
        snprintf(cells[3], 64, "%" PRIu64, g->size);
        snprintf(cells[4], 64, "%s", g->released ? when : "never");
        snprintf(cells[5], 64, "%" PRIu64, g->received);
        snprintf(cells[6], 64, "%" PRIu64, g->faulted);
        const char *p[7] = {cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]};
        row(&t, p);
    }
    fputc('\n', out);
    for (size_t i = 0; i < r->ndecisions; i++) {
        const report_decision *d = &r->decisions[i];
        report_utc(r, d->vt_ms, when, sizeof when);
        fprintf(out, "%s%s ring %u %s (%s): %s\n", md ? "- " : "  ", when, d->ring, d->action,
                d->gate, d->detail);
    }
}

void report_write_text(FILE *out, const report *r, const report_gate *g, const report_verdict *v,
                       bool colour, bool md)
{
    char start[40];
    report_utc(r, 0, start, sizeof start);
    if (md)
        fprintf(out, "# fleetsim report: %s\n\n", r->scenario);
    else
        fprintf(out, "fleetsim report: %s\n", r->scenario);
    const char *ind = md ? "- " : "  ";
    fprintf(out, "%sstore %s%s%s, run %s%s%s\n", ind, md ? "`" : "", r->store_path, md ? "`" : "",
            r->status, r->reason ? ": " : "", r->reason ? r->reason : "");
    fprintf(out, "%sseed %s, shard %s, %" PRIu64 " endpoints in the fleet, from %s\n", ind,
            r->seed, r->shard, r->fleet_size, start);
    for (size_t i = 0; i < r->nartifacts; i++) {
        const report_artifact *a = &r->artifacts[i];
        if (strcmp(a->role, "update") == 0 || strcmp(a->role, "revert") == 0)
            fprintf(out, "%s%s %s %s%s%s (sha256 %.16s)\n", ind, a->role, a->kind, md ? "`" : "",
                    a->name, md ? "`" : "", a->sha256 ? a->sha256 : "-");
    }
    char rate[96];
    report_interval_text(&r->total, rate, sizeof rate);
    fprintf(out,
            "%sreached %" PRIu64 ", faulted %" PRIu64 " (%s), boot-looped %" PRIu64
            ", recovered %" PRIu64 ", still down %" PRIu64 "\n",
            ind, r->total.reached, r->total.faulted, rate, r->total.boot_looped,
            r->total.recovered, r->total.still_down);
    if (r->total.unsupported)
        fprintf(out, "%s%" PRIu64 " endpoints ran an API fleetsim does not implement: their "
                     "outcome is not faithful\n", ind, r->total.unsupported);

    heading(out, md, "Cohorts, worst first");
    write_cohorts(out, r, v, colour, md);
    char title[96];
    snprintf(title, sizeof title, "Crash buckets (%zu)", r->nbuckets_total);
    heading(out, md, title);
    write_buckets(out, r, md);
    if (r->nrings > 1 || r->ndecisions)
        write_rollout(out, r, md);

    if (v->nviolations) {
        heading(out, md, "Gate");
        for (size_t i = 0; i < v->nviolations; i++) {
            char t[256];
            report_violation_text(&v->violations[i], t, sizeof t);
            fprintf(out, "%s%s\n", ind, t);
        }
    }
    char line[1024];
    report_verdict_line(g, v, line, sizeof line);
    fputc('\n', out);
    if (md)
        fprintf(out, "**%s**\n", line);
    else if (colour)
        fprintf(out, "%s%s\033[0m\n", v->passed ? "\033[32m" : "\033[31m", line);
    else
        fprintf(out, "%s\n", line);
}
