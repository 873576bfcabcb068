/*
 * render_html.c — the report as one self-contained HTML5 page, for a person
 * to read in a browser, attach to a ticket or print.
 *
 * One file, nothing fetched: the style is inline, the charts are inline SVG
 * drawn here, and nothing needs JavaScript, so the page opens the same from
 * a CI artifact, an e-mail or a laptop offline.  It carries what the text
 * report carries (render_text.c), in an order for a reader who came for the
 * answer: the run and its verdict first, then where the faults are (a heat
 * map of fault rate by cohort and the cohort table), when they happened
 * (endpoints over virtual time), and how (crash buckets, each with its
 * stack, disassembly and the commands that re-run it).
 *
 * Every string that comes from the store goes through report_xml_text; the
 * numbers the charts draw come from integer counts, guarded so that an empty
 * run (no cohorts, no buckets, nothing reached) draws empty charts rather
 * than dividing by zero.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "sim.h"

static const char STYLE[] =
    "body{font:14px/1.45 system-ui,\"Segoe UI\",\"Liberation Sans\",sans-serif;color:#1d1d1f;"
    "max-width:1200px;margin:24px auto;padding:0 24px}\n"
    "h1{font-size:22px;margin:0 0 8px}\n"
    "h2{font-size:17px;margin:32px 0 10px;padding-bottom:4px;border-bottom:1px solid #ddd}\n"
    "h3{font-size:14px;margin:12px 0 4px}\n"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}\n"
    "dt{color:#666}dd{margin:0}\n"
    "code,pre{font:12px/1.4 ui-monospace,\"DejaVu Sans Mono\",\"Liberation Mono\",monospace}\n"
    "pre{background:#f6f6f6;padding:8px;margin:4px 0;white-space:pre-wrap;"
    "overflow-wrap:anywhere}\n"
    "table{border-collapse:collapse;width:100%;font-size:13px;"
    "font-variant-numeric:tabular-nums}\n"
    "th,td{padding:3px 6px;border-bottom:1px solid #e5e5e5;text-align:left;"
    "vertical-align:top}\n"
    "th{background:#f3f3f3;font-weight:600}\n"
    ".n{text-align:right}td.n,.nowrap{white-space:nowrap}\n"
    "small{color:#555}td.key{overflow-wrap:anywhere}\n"
    "tr.fail td{background:#fdecea}tr.fail td:first-child{box-shadow:inset 3px 0 #c0392b}\n"
    ".banner{background:#fff3cd;border:1px solid #e0b000;padding:8px 12px;font-weight:600}\n"
    "#verdict{padding:8px 12px;font-weight:600;border-radius:4px}\n"
    "#verdict.pass{background:#e6f4ea;color:#1e6b34}\n"
    "#verdict.fail{background:#fdecea;color:#a11a10}\n"
    "svg{display:block;max-width:100%;height:auto;margin:8px 0}\n"
    "svg text{font:12px system-ui,\"Liberation Sans\",sans-serif;fill:#333}\n"
    "svg text.small{font-size:10px}svg text.light{fill:#fff}svg text.head{font-weight:600}\n"
    "details{margin:8px 0;padding:6px 10px;border:1px solid #e5e5e5;border-radius:4px}\n"
    "summary{cursor:pointer}\n"
    "footer{margin-top:32px;color:#666;font-size:12px}\n"
    "@media print{body{margin:0;max-width:none}h2,h3{break-after:avoid}"
    "svg,tr,pre{break-inside:avoid}}\n";

#define CHART_W 1152 /* the width of the page's content: charts fill it */

/* ---- small pieces ---------------------------------------------------------- */

static void td_u64(FILE *out, uint64_t n)
{
    fprintf(out, "<td class=\"n\">%" PRIu64 "</td>", n);
}

/* c->values[from .. from + n) joined with " / ", escaped. */
static void write_values(FILE *out, const report_cohort *c, size_t from, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputs(" / ", out);
        report_xml_text(out, c->values[from + i]);
    }
}

static size_t values_length(const report_cohort *c, size_t from, size_t n)
{
    size_t len = n ? 3 * (n - 1) : 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(c->values[from + i]);
    return len;
}

/* The `by` attributes from..from+n joined with " / ", escaped. */
static void write_by(FILE *out, const report *r, size_t from, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputs(" / ", out);
        report_xml_text(out, r->by[from + i]);
    }
}

/* An <svg> chart: its id, size, and the <title> that names it. */
static void svg_begin(FILE *out, const char *id, int width, int height, const char *title)
{
    fprintf(out,
            "<svg id=\"%s\" role=\"img\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">"
            "<title>",
            id, width, height, width, height);
    report_xml_text(out, title);
    fputs("</title>\n", out);
}

/* The index of the bucket with `key` among those detailed; -1 if not. */
static long bucket_index(const report *r, const char *key)
{
    for (size_t i = 0; key && i < r->nbuckets; i++)
        if (strcmp(r->buckets[i].key, key) == 0)
            return (long)i;
    return -1;
}

/* A bucket key, linked to its details when they are on the page. */
static void bucket_link(FILE *out, const report *r, const char *key)
{
    long i = bucket_index(r, key);
    if (i >= 0)
        fprintf(out, "<a href=\"#bucket-%ld\">", i + 1);
    fputs("<code>", out);
    report_xml_text(out, key);
    fputs(i >= 0 ? "</code></a>" : "</code>", out);
}

/* ---- the run --------------------------------------------------------------- */

static void write_artifacts(FILE *out, const report *r)
{
    for (size_t i = 0; i < r->nartifacts; i++) {
        const report_artifact *a = &r->artifacts[i];
        if (!a->role || (strcmp(a->role, "update") != 0 && strcmp(a->role, "revert") != 0))
            continue;
        fputs("<dt>", out);
        report_xml_text(out, a->role);
        fputs("</dt><dd>", out);
        report_xml_text(out, a->kind);
        fputs(" <code>", out);
        report_xml_text(out, a->name);
        fputs("</code>", out);
        if (a->sha256) {
            char prefix[17];
            snprintf(prefix, sizeof prefix, "%s", a->sha256);
            fputs(" (sha256 <code title=\"", out);
            report_xml_text(out, a->sha256);
            fputs("\">", out);
            report_xml_text(out, prefix);
            fputs("</code>)", out);
        }
        fputs("</dd>\n", out);
    }
}

static void write_totals(FILE *out, const report *r)
{
    char rate[96];
    report_interval_text(&r->total, rate, sizeof rate);
    fprintf(out,
            "<dt>endpoints</dt><dd>reached <strong>%" PRIu64 "</strong>, faulted <strong>%" PRIu64
            "</strong> (%s, 95%% %s), boot-looped <strong>%" PRIu64
            "</strong>, recovered <strong>%" PRIu64 "</strong>, still down <strong>%" PRIu64
            "</strong></dd>\n",
            r->total.reached, r->total.faulted, rate, report_interval_name(r),
            r->total.boot_looped, r->total.recovered, r->total.still_down);
    if (r->total.unsupported)
        fprintf(out, "<dt>caution</dt><dd>%" PRIu64 " endpoints ran an API fleetsim does not "
                     "implement: their outcome is not faithful</dd>\n", r->total.unsupported);
}

static void write_header(FILE *out, const report *r)
{
    char start[40], end[40];
    report_utc(r, 0, start, sizeof start);
    report_utc(r, r->virtual_end_ms, end, sizeof end);
    fputs("<header>\n<h1>fleetsim report: ", out);
    report_xml_text(out, r->scenario);
    fputs("</h1>\n", out);
    if (!r->complete) {
        fputs("<p class=\"banner\" role=\"alert\">Incomplete run: the store says &ldquo;", out);
        report_xml_text(out, r->status);
        if (r->reason) {
            fputs(": ", out);
            report_xml_text(out, r->reason);
        }
        fputs("&rdquo;. The numbers cover only what ran, and the gate fails.</p>\n", out);
    }
    fputs("<dl>\n<dt>store</dt><dd><code>", out);
    report_xml_text(out, r->store_path);
    fputs("</code></dd>\n<dt>run</dt><dd>", out);
    report_xml_text(out, r->status);
    fputs("</dd>\n<dt>seed</dt><dd><code>", out);
    report_xml_text(out, r->seed);
    fputs("</code>, shard <code>", out);
    report_xml_text(out, r->shard);
    fprintf(out, "</code></dd>\n<dt>fleet</dt><dd>%" PRIu64 " endpoints, %s to %s (virtual "
                 "time)</dd>\n", r->fleet_size, start, end);
    write_artifacts(out, r);
    write_totals(out, r);
    fputs("</dl>\n</header>\n", out);
}

/* ---- the gate ---------------------------------------------------------------- */

static void write_gate(FILE *out, const report_gate *g, const report_verdict *v)
{
    char line[1024];
    report_verdict_line(g, v, line, sizeof line);
    fputs("<section>\n<h2>Gate</h2>\n", out);
    fprintf(out, "<p id=\"verdict\" class=\"%s\">", v->passed ? "pass" : "fail");
    report_xml_text(out, line);
    fputs("</p>\n", out);
    /* A long list folds away; the verdict line above already counts it. */
    bool fold = v->nviolations > 8;
    if (fold)
        fprintf(out, "<details><summary>%zu violations</summary>\n", v->nviolations);
    if (v->nviolations) {
        fputs("<ul class=\"violations\">\n", out);
        for (size_t i = 0; i < v->nviolations; i++) {
            char t[256];
            report_violation_text(&v->violations[i], t, sizeof t);
            fputs("<li>", out);
            report_xml_text(out, t);
            fputs("</li>\n", out);
        }
        fputs("</ul>\n", out);
    }
    if (fold)
        fputs("</details>\n", out);
    fputs("</section>\n", out);
}

/* ---- the heat map: fault rate by cohort ---------------------------------- */

/*
 * With two or more `by` attributes, a row is a combination of all but the
 * last and a column a value of the last (profile down, sensor across); with
 * one, each cohort is a row of a single column.  Rows and columns are in
 * the order of their values, so related cohorts sit together.
 */
#define HEAT_CELL_H 36
#define HEAT_HEAD_H 44
#define HEAT_LEGEND_W 150

typedef struct heat_key {
    const report_cohort *c;
    size_t from, n;   /* the key is c->values[from .. from + n) */
    size_t cohort;    /* index in r->cohorts */
} heat_key;

typedef struct heat {
    size_t row_n, col_n;         /* values in a row's key; in a column's (the rest) */
    size_t nrows, ncols;
    size_t *row, *col;           /* per cohort: its row, its column */
    size_t *row_head, *col_head; /* per row, per column: a cohort in it, to label it */
    size_t *grid;                /* nrows x ncols cohort indices; SIZE_MAX: none */
} heat;

static int compare_keys(const void *pa, const void *pb)
{
    const heat_key *a = pa, *b = pb;
    for (size_t i = 0; i < a->n; i++) {
        int d = strcmp(a->c->values[a->from + i], b->c->values[b->from + i]);
        if (d)
            return d;
    }
    return 0;
}

/* Number the distinct keys in sorted order: id[cohort] is its key's
 * number, head[number] a cohort with that key.  Returns how many. */
static size_t number_keys(const report *r, heat_key *keys, size_t from, size_t n, size_t *id,
                          size_t *head)
{
    for (size_t i = 0; i < r->ncohorts; i++)
        keys[i] = (heat_key){&r->cohorts[i], from, n, i};
    qsort(keys, r->ncohorts, sizeof *keys, compare_keys);
    size_t count = 0;
    for (size_t i = 0; i < r->ncohorts; i++) {
        if (i == 0 || compare_keys(&keys[i - 1], &keys[i]) != 0)
            head[count++] = keys[i].cohort;
        id[keys[i].cohort] = count - 1;
    }
    return count;
}

static void heat_free(heat *h)
{
    sim_free(h->row);
    sim_free(h->col);
    sim_free(h->row_head);
    sim_free(h->col_head);
    sim_free(h->grid);
}

/* 0, or -1 out of memory (h is then freed).  Needs a cohort. */
static int heat_build(heat *h, const report *r)
{
    size_t n = r->ncohorts;
    *h = (heat){.row_n = r->nby >= 2 ? r->nby - 1 : r->nby};
    h->col_n = r->nby - h->row_n;
    heat_key *keys = sim_calloc(n, sizeof *keys);
    h->row = sim_calloc(n, sizeof *h->row);
    h->col = sim_calloc(n, sizeof *h->col);
    h->row_head = sim_calloc(n, sizeof *h->row_head);
    h->col_head = sim_calloc(n, sizeof *h->col_head);
    if (keys && h->row && h->col && h->row_head && h->col_head) {
        h->nrows = number_keys(r, keys, 0, h->row_n, h->row, h->row_head);
        h->ncols = number_keys(r, keys, h->row_n, h->col_n, h->col, h->col_head);
        if (h->nrows <= SIZE_MAX / sizeof *h->grid / h->ncols)
            h->grid = sim_malloc(h->nrows * h->ncols * sizeof *h->grid);
    }
    sim_free(keys);
    if (!h->grid) {
        heat_free(h);
        return -1;
    }
    for (size_t i = 0; i < h->nrows * h->ncols; i++)
        h->grid[i] = SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        h->grid[h->row[i] * h->ncols + h->col[i]] = i;
    return 0;
}

/* White through orange to deep red, on a square-root scale so that a rate
 * of 1% is already plainly not white.  Sets *dark for a background that
 * needs light text. */
static void heat_colour(double rate, char out[8], bool *dark)
{
    static const double STOPS[3][3] = {{255, 245, 240}, {251, 106, 74}, {103, 0, 13}};
    double t = rate > 0 ? sqrt(rate < 1 ? rate : 1) : 0; /* a NaN is 0 */
    int k = t >= 0.5 ? 1 : 0;
    double f = t * 2 - k;
    int rgb[3];
    for (int i = 0; i < 3; i++)
        rgb[i] = (int)lround(STOPS[k][i] + (STOPS[k + 1][i] - STOPS[k][i]) * f);
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
    *dark = t > 0.6;
}

static void heat_cell(FILE *out, const report *r, const report_verdict *v, const report_cohort *c,
                      int x, int y, int w)
{
    char rate[32], colour[8] = "#d0d0d0", iv[96];
    bool dark = false, reached = c->n.reached > 0;
    if (reached)
        heat_colour(c->n.rate, colour, &dark);
    report_interval_text(&c->n, iv, sizeof iv);
    fputs("<g class=\"cell\"><title>", out);
    report_xml_text(out, c->label);
    fprintf(out, ": faulted %" PRIu64 " of %" PRIu64 " reached, fault rate %s (95%% %s)</title>",
            c->n.faulted, c->n.reached, iv, report_interval_name(r));
    bool failed = report_cohort_failed(v, c);
    fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"3\" fill=\"%s\"%s/>",
            x + 1, y + 1, w - 2, HEAT_CELL_H - 2, colour,
            failed ? " stroke=\"#1d1d1f\" stroke-width=\"2\"" : "");
    const char *cls = dark ? " class=\"light\"" : "";
    if (reached)
        report_percent(c->n.rate, rate, sizeof rate);
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\"%s>%s</text>", x + w / 2, y + 16,
            cls, reached ? rate : "not reached");
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"small%s\">%" PRIu64
                 " of %" PRIu64 "</text></g>\n",
            x + w / 2, y + 29, dark ? " light" : "", c->n.faulted, c->n.reached);
}

static void heat_empty(FILE *out, const report *r, const heat *h, size_t row, size_t col, int x,
                       int y, int w)
{
    fputs("<g class=\"empty\"><title>no endpoints in ", out);
    write_values(out, &r->cohorts[h->row_head[row]], 0, h->row_n);
    if (h->col_n) {
        fputs(" / ", out);
        write_values(out, &r->cohorts[h->col_head[col]], h->row_n, h->col_n);
    }
    fprintf(out, "</title><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"3\" "
                 "fill=\"#f4f4f4\" stroke=\"#d0d0d0\" stroke-dasharray=\"3 3\"/></g>\n",
            x + 1, y + 1, w - 2, HEAT_CELL_H - 2);
}

static void heat_legend(FILE *out, int x)
{
    static const double RATES[] = {0, 0.01, 0.05, 0.1, 0.25, 0.5, 1};
    size_t n = sizeof RATES / sizeof RATES[0];
    fprintf(out, "<text x=\"%d\" y=\"14\" class=\"head\">fault rate</text>\n", x);
    for (size_t i = 0; i < n; i++) {
        char colour[8], pct[32];
        bool dark;
        heat_colour(RATES[i], colour, &dark);
        snprintf(pct, sizeof pct, "%g%%", RATES[i] * 100);
        fprintf(out, "<rect x=\"%d\" y=\"%zu\" width=\"14\" height=\"14\" fill=\"%s\" "
                     "stroke=\"#ccc\"/><text x=\"%d\" y=\"%zu\">%s</text>\n",
                x, 22 + i * 18, colour, x + 20, 33 + i * 18, pct);
    }
    int y = 22 + (int)n * 18 + 6;
    fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"#d0d0d0\"/>"
                 "<text x=\"%d\" y=\"%d\">not reached</text>\n", x, y, x + 20, y + 11);
    y += 18;
    fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"#f4f4f4\" "
                 "stroke=\"#d0d0d0\" stroke-dasharray=\"3 3\"/>"
                 "<text x=\"%d\" y=\"%d\">no endpoints</text>\n", x, y, x + 20, y + 11);
    y += 18;
    fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"#fff\" "
                 "stroke=\"#1d1d1f\" stroke-width=\"2\"/>"
                 "<text x=\"%d\" y=\"%d\">broke the gate</text>\n", x + 1, y, x + 20, y + 11);
}

static void heat_draw(FILE *out, const report *r, const report_verdict *v, const heat *h)
{
    size_t row_len = 0, col_len = 0;
    for (size_t i = 0; i < h->nrows; i++) {
        size_t n = values_length(&r->cohorts[h->row_head[i]], 0, h->row_n);
        row_len = n > row_len ? n : row_len;
    }
    for (size_t i = 0; i < h->ncols; i++) {
        size_t n = values_length(&r->cohorts[h->col_head[i]], h->row_n, h->col_n);
        col_len = n > col_len ? n : col_len;
    }
    int left = 16 + 7 * (int)(row_len > 8 ? row_len : 8);
    int cell_w = 16 + 7 * (int)(col_len > 10 ? col_len : 10);
    int grid_w = left + (int)h->ncols * cell_w;
    int grid_h = HEAT_HEAD_H + (int)h->nrows * HEAT_CELL_H;
    int height = grid_h > 250 ? grid_h + 8 : 258;
    svg_begin(out, "heatmap", grid_w + 24 + HEAT_LEGEND_W, height, "Fault rate by cohort");

    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"head\">", left - 8,
            HEAT_HEAD_H - 10);
    write_by(out, r, 0, h->row_n);
    fprintf(out, "</text>\n<text x=\"%d\" y=\"14\" text-anchor=\"middle\" class=\"head\">",
            left + (int)h->ncols * cell_w / 2);
    if (h->col_n)
        write_by(out, r, h->row_n, h->col_n);
    else
        fputs("fault rate", out);
    fputs("</text>\n", out);
    for (size_t c = 0; c < h->ncols && h->col_n; c++) {
        fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">",
                left + (int)c * cell_w + cell_w / 2, HEAT_HEAD_H - 10);
        write_values(out, &r->cohorts[h->col_head[c]], h->row_n, h->col_n);
        fputs("</text>\n", out);
    }
    for (size_t row = 0; row < h->nrows; row++) {
        int y = HEAT_HEAD_H + (int)row * HEAT_CELL_H;
        fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 8, y + 22);
        write_values(out, &r->cohorts[h->row_head[row]], 0, h->row_n);
        fputs("</text>\n", out);
        for (size_t col = 0; col < h->ncols; col++) {
            size_t i = h->grid[row * h->ncols + col];
            int x = left + (int)col * cell_w;
            if (i == SIZE_MAX)
                heat_empty(out, r, h, row, col, x, y, cell_w);
            else
                heat_cell(out, r, v, &r->cohorts[i], x, y, cell_w);
        }
    }
    heat_legend(out, grid_w + 24);
    fputs("</svg>\n", out);
}

/* A chart with nothing to draw says so in its own frame. */
static void svg_message(FILE *out, const char *id, const char *title, const char *message)
{
    svg_begin(out, id, CHART_W, 48, title);
    fputs("<text x=\"8\" y=\"28\">", out);
    report_xml_text(out, message);
    fputs("</text>\n</svg>\n", out);
}

static void write_heatmap(FILE *out, const report *r, const report_verdict *v)
{
    heat h;
    if (!r->ncohorts)
        svg_message(out, "heatmap", "Fault rate by cohort",
                    "No cohorts: the store holds no endpoints.");
    else if (heat_build(&h, r) < 0)
        svg_message(out, "heatmap", "Fault rate by cohort",
                    "The heat map is left out: not enough memory to lay it out.");
    else {
        heat_draw(out, r, v, &h);
        heat_free(&h);
    }
}

/* ---- endpoints over virtual time ------------------------------------------- */

#define TL_W CHART_W
#define TL_H 340
#define TL_LEFT 64
#define TL_RIGHT (TL_W - 24)
#define TL_TOP 40
#define TL_BOTTOM (TL_H - 52)

/* The series drawn, in the order point_count numbers them. */
static const struct { const char *name, *colour; } LINES[] = {
    {"received the update", "#4a6fa5"},
    {"crashed", "#c0392b"},
    {"currently down", "#e67e22"},
    {"recovered", "#27ae60"},
};
#define NLINES (sizeof LINES / sizeof LINES[0])

static uint64_t point_count(const report_point *p, size_t line)
{
    const uint64_t counts[NLINES] = {p->received, p->crashed, p->down, p->recovered};
    return counts[line];
}

/* 1, 2 or 5 times a power of ten, that cuts 0..max in at most `parts`. */
static uint64_t count_step(uint64_t max, uint64_t parts)
{
    static const uint64_t ROUND[] = {1, 2, 5};
    for (uint64_t step = 1;; step *= 10)
        for (size_t i = 0; i < sizeof ROUND / sizeof ROUND[0]; i++)
            if (step * ROUND[i] * parts >= max)
                return step * ROUND[i];
}

/* A clock step (1 s .. 1 day) that cuts `span_ms` in at most 8. */
static int64_t time_step(int64_t span_ms)
{
    static const int64_t STEPS[] = {1000,    2000,    5000,     10000,    15000,    30000,
                                    60000,   120000,  300000,   600000,   900000,   1800000,
                                    3600000, 7200000, 10800000, 21600000, 43200000, 86400000};
    for (size_t i = 0; i < sizeof STEPS / sizeof STEPS[0]; i++)
        if (span_ms / STEPS[i] <= 8)
            return STEPS[i];
    return (span_ms / 8 / 86400000 + 1) * 86400000;
}

static double tl_x(int64_t vt, int64_t end)
{
    vt = vt < 0 ? 0 : vt > end ? end : vt;
    return TL_LEFT + (double)vt * (TL_RIGHT - TL_LEFT) / (double)end;
}

static double tl_y(uint64_t n, uint64_t top)
{
    return TL_BOTTOM - (double)n * (TL_BOTTOM - TL_TOP) / (double)top;
}

/* Ticks on round UTC clock times, "HH:MM", with the date under the first
 * tick and under any tick where the day changes. */
static void time_axis(FILE *out, const report *r, int64_t end)
{
    int64_t step = time_step(end), start = r->virtual_start_ms;
    int64_t into = ((start % step) + step) % step;
    char utc[40], day[16] = "";
    for (int64_t t = into ? step - into : 0; t <= end; t += step) {
        double x = tl_x(t, end);
        report_utc(r, t, utc, sizeof utc);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/>"
                     "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.*s</text>\n",
                x, TL_TOP, x, TL_BOTTOM, x, TL_BOTTOM + 16, step < 60000 ? 8 : 5, utc + 11);
        if (strncmp(day, utc, 10) != 0) {
            snprintf(day, sizeof day, "%.10s", utc);
            fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" class=\"small\">%s"
                         "</text>\n", x, TL_BOTTOM + 30, day);
        }
    }
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"small\">UTC, virtual "
                 "time</text>\n", (TL_LEFT + TL_RIGHT) / 2, TL_H - 6);
}

static void count_axis(FILE *out, uint64_t top, uint64_t step)
{
    for (uint64_t n = 0; n <= top; n += step) {
        double y = tl_y(n, top);
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>"
                     "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%" PRIu64 "</text>\n",
                TL_LEFT, y, TL_RIGHT, y, TL_LEFT - 6, y + 4, n);
    }
    fprintf(out, "<text x=\"%d\" y=\"%d\" class=\"small\">endpoints</text>\n", 8, TL_TOP - 12);
    fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>\n", TL_LEFT,
            TL_BOTTOM, TL_RIGHT, TL_BOTTOM);
}

static void tl_legend(FILE *out, const report *r)
{
    int x = TL_LEFT + 80;
    for (size_t k = 0; k < NLINES; k++) {
        uint64_t last = r->nseries ? point_count(&r->series[r->nseries - 1], k) : 0;
        fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                     "stroke-width=\"3\"/><text x=\"%d\" y=\"%d\">%s (%" PRIu64 ")</text>\n",
                x, TL_TOP - 16, x + 18, TL_TOP - 16, LINES[k].colour, x + 24, TL_TOP - 12,
                LINES[k].name, last);
        x += 24 + 7 * (int)strlen(LINES[k].name) + 60;
    }
}

static void write_timeline(FILE *out, const report *r)
{
    int64_t end = r->nseries ? r->series[r->nseries - 1].vt_ms : 0;
    end = end > 0 ? end : 1;
    uint64_t max = 0;
    for (size_t i = 0; i < r->nseries; i++)
        for (size_t k = 0; k < NLINES; k++) {
            uint64_t n = point_count(&r->series[i], k);
            max = n > max ? n : max;
        }
    uint64_t step = count_step(max, 5);
    uint64_t top = (max + step - 1) / step * step;
    top = top ? top : step;
    svg_begin(out, "timeline", TL_W, TL_H, "Endpoints over virtual time");
    time_axis(out, r, end);
    count_axis(out, top, step);
    tl_legend(out, r);
    for (size_t k = 0; k < NLINES; k++) {
        fprintf(out, "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                     "stroke-linejoin=\"round\" points=\"%d,%d",
                LINES[k].colour, TL_LEFT, TL_BOTTOM);
        for (size_t i = 0; i < r->nseries; i++)
            fprintf(out, " %.1f,%.1f", tl_x(r->series[i].vt_ms, end),
                    tl_y(point_count(&r->series[i], k), top));
        fprintf(out, "\"><title>%s</title></polyline>\n", LINES[k].name);
    }
    fputs("</svg>\n", out);
}

/* ---- crash buckets ------------------------------------------------------------- */

#define BAR_ROW_H 44
#define BAR_MAX_W (CHART_W - 260)

static void write_bucket_chart(FILE *out, const report *r)
{
    if (!r->nbuckets) {
        svg_message(out, "buckets", "Crash buckets by size", "No crashes: nothing to bucket.");
        return;
    }
    uint64_t max = 1;
    for (size_t i = 0; i < r->nbuckets; i++)
        max = r->buckets[i].endpoints > max ? r->buckets[i].endpoints : max;
    svg_begin(out, "buckets", CHART_W, 8 + (int)r->nbuckets * BAR_ROW_H, "Crash buckets by size");
    for (size_t i = 0; i < r->nbuckets; i++) {
        const report_bucket *b = &r->buckets[i];
        int y = 8 + (int)i * BAR_ROW_H;
        double w = (double)b->endpoints * BAR_MAX_W / (double)max;
        w = w > 1 ? w : 1;
        fputs("<g class=\"bar\"><title>", out);
        report_xml_text(out, b->key);
        fprintf(out, ": %" PRIu64 " endpoints, %" PRIu64 " crashes</title>", b->endpoints,
                b->crashes);
        fprintf(out, "<text x=\"8\" y=\"%d\">%zu. ", y + 12, i + 1);
        report_xml_text(out, b->key);
        fprintf(out, "</text><rect x=\"8\" y=\"%d\" width=\"%.1f\" height=\"18\" rx=\"2\" "
                     "fill=\"%s\"/>", y + 18, w, b->bugcheck ? "#c0392b" : "#d08c00");
        fprintf(out, "<text x=\"%.1f\" y=\"%d\">%" PRIu64 " endpoint%s, %" PRIu64 " crash%s</text>"
                     "</g>\n", w + 14, y + 31, b->endpoints,
                b->endpoints == 1 ? "" : "s", b->crashes, b->crashes == 1 ? "" : "es");
    }
    fputs("</svg>\n", out);
}

static void write_bucket_cohorts(FILE *out, const report_bucket *b, size_t most)
{
    for (size_t k = 0; k < b->ncohorts && k < most; k++) {
        fputs(k ? ", " : "", out);
        report_xml_text(out, b->cohorts[k]);
    }
    if (b->ncohorts > most)
        fprintf(out, " and %zu more", b->ncohorts - most);
}

/* "0x50 PAGE_FAULT_IN_NONPAGED_AREA" with `gap` between code and name. */
static void write_bugcheck(FILE *out, const report_bucket *b, const char *gap)
{
    if (!b->bugcheck) {
        fputs("hang", out);
        return;
    }
    fprintf(out, "0x%X%s<small>", b->bugcheck, gap);
    report_xml_text(out, b->bugcheck_name);
    fputs("</small>", out);
}

static void write_bucket_table(FILE *out, const report *r)
{
    if (!r->nbuckets)
        return;
    fputs("<table id=\"buckets-table\">\n<thead><tr><th class=\"n\">#</th><th>bucket</th>"
          "<th>bugcheck</th><th class=\"n\">endpoints</th><th class=\"n\">crashes</th>"
          "<th>first, last (UTC)</th><th>where</th><th class=\"n\">cohorts hit</th></tr>"
          "</thead>\n<tbody>\n", out);
    for (size_t i = 0; i < r->nbuckets; i++) {
        const report_bucket *b = &r->buckets[i];
        char first[40], last[40];
        report_utc(r, b->first_vt_ms, first, sizeof first);
        report_utc(r, b->last_vt_ms, last, sizeof last);
        fprintf(out, "<tr><td class=\"n\">%zu</td><td class=\"nowrap\">", i + 1);
        bucket_link(out, r, b->key);
        fputs("</td><td>", out);
        write_bugcheck(out, b, "<br>");
        fputs("</td>", out);
        td_u64(out, b->endpoints);
        td_u64(out, b->crashes);
        fprintf(out, "<td class=\"nowrap\">%s<br>%s</td><td><code>", first, last);
        report_xml_text(out, b->symbol);
        fputs("</code><br><code>", out);
        report_xml_text(out, b->instruction);
        fputs("</code></td><td class=\"n\" title=\"", out);
        write_bucket_cohorts(out, b, SIZE_MAX);
        fprintf(out, "\">%zu</td></tr>\n", b->ncohorts);
    }
    fputs("</tbody>\n</table>\n", out);
}

static void write_pre(FILE *out, const char *heading, const char *text)
{
    fprintf(out, "<h3>%s</h3>\n<pre>", heading);
    report_xml_text(out, text && *text ? text : "(none recorded)");
    fputs("</pre>\n", out);
}

static void write_bucket_details(FILE *out, const report *r, size_t i)
{
    const report_bucket *b = &r->buckets[i];
    fprintf(out, "<details id=\"bucket-%zu\"%s>\n<summary>%zu. <code>", i + 1,
            i == 0 ? " open" : "", i + 1);
    report_xml_text(out, b->key);
    fputs("</code></summary>\n<p>", out);
    write_bugcheck(out, b, " ");
    fputs(" in <code>", out);
    report_xml_text(out, b->symbol);
    fputs("</code> at <code>", out);
    report_xml_text(out, b->address);
    fputs("</code>: <code>", out);
    report_xml_text(out, b->instruction);
    fputs("</code>", out);
    if (b->access && b->access[0] && strcmp(b->access, "none") != 0) {
        fputs(" (", out);
        report_xml_text(out, b->access);
        fputs(" of a ", out);
        report_xml_text(out, b->address_class);
        fputs(" address)", out);
    }
    fputs(".<br>Cohorts hit: ", out);
    write_bucket_cohorts(out, b, SIZE_MAX);
    fputs(".</p>\n", out);
    write_pre(out, "Stack (innermost first)", b->stack);
    write_pre(out, "Disassembly up to the faulting instruction", b->disasm);
    fputs("<h3>Re-run an example</h3>\n<pre>", out);
    if (!b->nexamples)
        fputs("(none recorded)", out);
    for (size_t k = 0; k < b->nexamples; k++) {
        fprintf(out, "# endpoint %" PRIu64 ", boot %u\n", b->examples[k].endpoint,
                b->examples[k].boot);
        report_xml_text(out, b->examples[k].command);
        fputc('\n', out);
    }
    fputs("</pre>\n</details>\n", out);
}

static void write_buckets(FILE *out, const report *r)
{
    fprintf(out, "<section>\n<h2>Crash buckets (%zu)</h2>\n", r->nbuckets_total);
    write_bucket_chart(out, r);
    write_bucket_table(out, r);
    if (r->nbuckets < r->nbuckets_total)
        fprintf(out, "<p>%zu more bucket%s: <code>--max-buckets 0</code> shows all.</p>\n",
                r->nbuckets_total - r->nbuckets,
                r->nbuckets_total - r->nbuckets == 1 ? "" : "s");
    for (size_t i = 0; i < r->nbuckets; i++)
        write_bucket_details(out, r, i);
    fputs("</section>\n", out);
}

/* ---- cohorts --------------------------------------------------------------- */

static void write_cohort_table(FILE *out, const report *r, const report_verdict *v)
{
    fputs("<table id=\"cohorts\">\n<thead><tr><th>", out);
    write_by(out, r, 0, r->nby);
    fprintf(out, "</th><th class=\"n\">endpoints</th><th class=\"n\">reached</th>"
                 "<th class=\"n\">faulted</th><th class=\"n\">fault rate [95%% %s]</th>"
                 "<th class=\"n\">boot-looped</th><th class=\"n\">recovered</th>"
                 "<th class=\"n\">still down</th><th>top bucket</th></tr></thead>\n<tbody>\n",
            report_interval_name(r));
    for (size_t i = 0; i < r->ncohorts; i++) {
        const report_cohort *c = &r->cohorts[i];
        char rate[96];
        report_interval_text(&c->n, rate, sizeof rate);
        fputs(report_cohort_failed(v, c) ? "<tr class=\"fail\">" : "<tr>", out);
        fputs("<td class=\"nowrap\">", out);
        report_xml_text(out, c->label);
        fputs("</td>", out);
        td_u64(out, c->n.endpoints);
        td_u64(out, c->n.reached);
        td_u64(out, c->n.faulted);
        fprintf(out, "<td class=\"n\">%s</td>", rate);
        td_u64(out, c->n.boot_looped);
        td_u64(out, c->n.recovered);
        td_u64(out, c->n.still_down);
        fputs("<td class=\"key\">", out);
        if (c->top_bucket)
            bucket_link(out, r, c->top_bucket);
        else
            fputs("-", out);
        fputs("</td></tr>\n", out);
    }
    fputs("</tbody>\n</table>\n", out);
}

static void write_cohorts(FILE *out, const report *r, const report_verdict *v)
{
    fputs("<section>\n<h2>Fault rate by cohort</h2>\n", out);
    write_heatmap(out, r, v);
    fputs("<h3>Cohorts, worst first</h3>\n", out);
    write_cohort_table(out, r, v);
    fputs("</section>\n", out);
}

/* ---- the page ------------------------------------------------------------- */

/* The rollout: a row per ring (released when, received, faulted), then
 * the decisions that changed its course. */
static void write_rollout(FILE *out, const report *r)
{
    char when[40];
    if (r->nrings <= 1 && !r->ndecisions)
        return;
    fputs("<section>\n<h2>Rollout: plan ", out);
    report_xml_text(out, r->plan ? r->plan : "all-at-once");
    fputs("</h2>\n<table id=\"rings\">\n<thead><tr><th class=\"n\">ring</th><th>name</th>"
          "<th>selector</th><th class=\"n\">size</th><th>released (UTC)</th>"
          "<th class=\"n\">received</th><th class=\"n\">faulted</th></tr></thead>\n<tbody>\n",
          out);
    for (size_t i = 0; i < r->nrings; i++) {
        const report_ring *ring = &r->rings[i];
        fprintf(out, "<tr%s>", ring->faulted ? " class=\"fail\"" : "");
        td_u64(out, ring->ring);
        fputs("<td>", out);
        report_xml_text(out, ring->name);
        fputs("</td><td>", out);
        report_xml_text(out, ring->selector);
        fputs("</td>", out);
        td_u64(out, ring->size);
        if (ring->released)
            report_utc(r, ring->released_ms, when, sizeof when);
        fprintf(out, "<td>%s</td>", ring->released ? when : "never");
        td_u64(out, ring->received);
        td_u64(out, ring->faulted);
        fputs("</tr>\n", out);
    }
    fputs("</tbody>\n</table>\n<ul id=\"decisions\">\n", out);
    for (size_t i = 0; i < r->ndecisions; i++) {
        const report_decision *d = &r->decisions[i];
        report_utc(r, d->vt_ms, when, sizeof when);
        fprintf(out, "<li>%s, ring %u: <strong>", when, d->ring);
        report_xml_text(out, d->action);
        fputs("</strong> (", out);
        report_xml_text(out, d->gate);
        fputs(") ", out);
        report_xml_text(out, d->detail);
        fputs("</li>\n", out);
    }
    fputs("</ul>\n</section>\n", out);
}

void report_write_html(FILE *out, const report *r, const report_gate *g, const report_verdict *v)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<meta name=\"generator\" content=\"fleetsim\">\n<title>fleetsim report: ", out);
    report_xml_text(out, r->scenario);
    fprintf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", STYLE);
    write_header(out, r);
    write_gate(out, g, v);
    write_cohorts(out, r, v);
    fputs("<section>\n<h2>Endpoints over time</h2>\n", out);
    write_timeline(out, r);
    fputs("</section>\n", out);
    write_buckets(out, r);
    write_rollout(out, r);
    fputs("<footer>fleetsim ", out);
    report_xml_text(out, r->fleetsim_version);
    fputs(", run started ", out);
    report_xml_text(out, r->started_at ? r->started_at : "-");
    fputs(", ended ", out);
    report_xml_text(out, r->ended_at ? r->ended_at : "-");
    fputs(" (wall clock)</footer>\n</body>\n</html>\n", out);
}
