/*
 * test_report_formats.c — the report in every format (text, Markdown, JSON,
 * JUnit; the HTML is checked in a browser by test_html.py), and the
 * comparison of two runs, over the stores of report_fixture.c.
 */
#include "report_fixture.h"

/* ---- formats -------------------------------------------------------------------- */

typedef struct rendered {
    report *r;
    report_gate g;
    report_verdict v;
} rendered;

static void prepare_default(rendered *x, const char *path, const char *by)
{
    x->r = by ? load_by(path, by) : load(path, NULL);
    report_gate_default(&x->g);
    assert_int_equal(report_gate_check(x->r, &x->g, &x->v), 0);
}

static void release(rendered *x)
{
    report_verdict_free(&x->v);
    report_free(x->r);
}

static void format_names(void **state)
{
    (void)state;
    static const struct { const char *name; report_format f; } names[] = {
        {"text", REPORT_TEXT}, {"md", REPORT_MARKDOWN},  {"markdown", REPORT_MARKDOWN},
        {"html", REPORT_HTML}, {"json", REPORT_JSON},    {"junit", REPORT_JUNIT},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        report_format f = (report_format)-1;
        assert_int_equal(report_format_parse(names[i].name, &f), 0);
        assert_int_equal(f, names[i].f);
    }
    report_format f;
    assert_true(report_format_parse("xml", &f) < 0);
    assert_true(report_format_parse("", &f) < 0);
}

static void json_report(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    rendered x;
    prepare_default(&x, f->path, NULL);
    char *doc = render(REPORT_JSON, x.r, &x.g, &x.v, false);
    if (!json_valid(doc))
        fail_msg("not valid JSON:\n%s", doc);

    assert_string_equal(json_get(doc, "$.run.scenario"), "channel-file-291");
    assert_string_equal(json_get(doc, "$.run.store"), f->path);
    assert_string_equal(json_get(doc, "$.run.complete"), "1");
    assert_string_equal(json_get(doc, "$.by[1]"), "sensor");
    assert_string_equal(json_get(doc, "$.interval"), "Wilson");
    assert_string_equal(json_get(doc, "$.total.faulted"), "11");
    static const char *const labels[] = {LABEL_A, LABEL_B, LABEL_C, LABEL_D};
    for (int i = 0; i < 4; i++) {
        char p[64];
        snprintf(p, sizeof p, "$.cohorts[%d].label", i);
        assert_string_equal(json_get(doc, p), labels[i]);
    }
    assert_string_equal(json_get(doc, "$.cohorts[4].label"), "<null>");
    assert_string_equal(json_get(doc, "$.cohorts[0].values.profile"), WIN10);
    assert_string_equal(json_get(doc, "$.cohorts[0].top_bucket"), KEY_X);
    assert_string_equal(json_get(doc, "$.cohorts[1].top_bucket"), KEY_Y);
    assert_string_equal(json_get(doc, "$.cohorts[2].top_bucket"), "<null>");
    assert_string_equal(json_get(doc, "$.cohorts[0].faulted"), "8");
    assert_string_equal(json_get(doc, "$.cohorts[0].fault_rate"), "0.8");
    assert_string_equal(json_get(doc, "$.cohorts[0].passed"), "0");
    assert_string_equal(json_get(doc, "$.cohorts[2].passed"), "1");
    assert_near(atof(json_get(doc, "$.cohorts[0].interval[1]")), x.r->cohorts[0].n.hi, 1e-9);
    assert_string_equal(json_get(doc, "$.buckets[0].bucket"), KEY_X);
    assert_string_equal(json_get(doc, "$.buckets[0].endpoints"), "7");
    assert_string_equal(json_get(doc, "$.buckets[0].bugcheck"), "0x50");
    assert_string_equal(json_get(doc, "$.buckets[2].bugcheck"), "<null>");
    assert_contains(json_get(doc, "$.buckets[0].stack[0]"), "sensor!MatchInstance+0x2f");
    /* The disassembly quotes a word: escaped in the document, the same when read back. */
    assert_contains(json_get(doc, "$.buckets[0].disasm[0]"), "qword ptr [rax + \"0xa0\"]");
    assert_contains(json_get(doc, "$.buckets[0].examples[0].command"), IMAGE_PATH);
    assert_string_equal(json_get(doc, "$.buckets_total"), "3");
    assert_string_equal(json_get(doc, "$.series[47].received"), "30");
    assert_string_equal(json_get(doc, "$.verdict.passed"), "0");
    assert_string_equal(json_get(doc, "$.verdict.incomplete"), "0");
    assert_string_equal(json_get(doc, "$.verdict.gate"), "max-faults=0");
    assert_contains(json_get(doc, "$.verdict.line"), "FAIL: ");
    assert_string_equal(json_get(doc, "$.verdict.violations[0].cohort"), LABEL_A);
    assert_string_equal(json_get(doc, "$.verdict.violations[2]"), "<null>");
    free(doc);
    release(&x);

    /* A passing verdict. */
    prepare_default(&x, f->path, NULL);
    report_verdict_free(&x.v);
    char err[128];
    assert_int_equal(report_gate_parse("max-fault-rate=100%", &x.g, err, sizeof err), 0);
    assert_int_equal(report_gate_check(x.r, &x.g, &x.v), 0);
    doc = render(REPORT_JSON, x.r, &x.g, &x.v, false);
    assert_true(json_valid(doc));
    assert_string_equal(json_get(doc, "$.verdict.passed"), "1");
    assert_string_equal(json_get(doc, "$.verdict.violations[0]"), "<null>");
    free(doc);
    release(&x);
}

/* The simple store with a region a label carries into XML and Markdown. */
#define NASTY_REGION "eu&\"<west>\" | 'b'"

static void junit_report(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    rendered x;
    prepare_default(&x, f->path, NULL);
    char *xml = render(REPORT_JUNIT, x.r, &x.g, &x.v, false);
    assert_true(strncmp(xml, "<?xml version=\"1.0\"", 19) == 0);
    /* A case per cohort and two for the run; the failing cohorts fail. */
    assert_int_equal(count(xml, "<testcase "), x.r->ncohorts + 2);
    assert_int_equal(count(xml, "</testcase>"), x.r->ncohorts + 2);
    assert_contains(xml, "name=\"run complete\"");
    assert_contains(xml, "name=\"run-wide limits\"");
    assert_int_equal(x.v.ncohorts_failed, 2);
    assert_contains(xml, "<testsuites name=\"fleetsim\" tests=\"6\" failures=\"2\"");
    assert_contains(xml, "tests=\"6\" failures=\"2\" errors=\"0\" skipped=\"0\"");
    assert_int_equal(count(xml, "<failure"), 2);
    assert_int_equal(count(xml, "</failure>"), 2);
    for (size_t i = 0; i < x.r->ncohorts; i++) {
        char name[256];
        snprintf(name, sizeof name, "name=\"%s\"", x.r->cohorts[i].label);
        assert_int_equal(count(xml, name), 1);
    }
    assert_contains(xml, KEY_X);
    assert_int_equal(count(xml, "<testsuite "), 1);
    assert_int_equal(count(xml, "</testsuite>"), 1);
    assert_true(ends_with(xml, "</testsuites>\n"));
    free(xml);
    release(&x);

    /* Escaping: a label with & < > " ' comes out as entities, never raw. */
    cohort_spec specs[] = {
        {WIN10, "7.11", NASTY_REGION, 10, 2, "MatchInstance"},
        {WIN10, "7.11", "plain", 10, 0, NULL},
    };
    write_simple_store(f->other, specs, 2, RUN_COMPLETE);
    prepare_default(&x, f->other, "region");
    assert_string_equal(x.r->cohorts[0].label, NASTY_REGION);
    xml = render(REPORT_JUNIT, x.r, &x.g, &x.v, false);
    assert_contains(xml, "name=\"eu&amp;&quot;&lt;west&gt;&quot; | &#39;b&#39;\"");
    assert_lacks(xml, "<west>");
    assert_lacks(xml, "eu&\"");
    assert_contains(xml, "failures=\"1\"");
    assert_int_equal(count(xml, "<testcase "), 4);
    assert_int_equal(count(xml, "</testcase>"), 4);
    /* Every & starts an entity; every < starts a tag or a declaration. */
    for (const char *p = xml; (p = strchr(p, '&')) != NULL; p++)
        if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) &&
            strncmp(p, "&quot;", 6) && strncmp(p, "&#39;", 5))
            fail_msg("a raw & in:\n%s", xml);
    for (const char *p = xml; (p = strchr(p, '<')) != NULL; p++)
        if (!(p[1] == '/' || p[1] == '?' || (p[1] >= 'a' && p[1] <= 'z')))
            fail_msg("a raw < in:\n%s", xml);
    free(xml);
    release(&x);
}

static void markdown_and_text_reports(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    rendered x;
    prepare_default(&x, f->path, NULL);
    char line[1024];
    report_verdict_line(&x.g, &x.v, line, sizeof line);
    assert_true(strncmp(line, "FAIL: ", 6) == 0);

    /* Markdown: a table with a row per cohort, worst first; the bold verdict last. */
    char *md = render(REPORT_MARKDOWN, x.r, &x.g, &x.v, false);
    const char *head = strstr(md, "\n| profile / sensor | endpoints | reached | faulted |");
    assert_non_null(head);
    const char *rule = strchr(head + 1, '\n');
    assert_non_null(rule);
    assert_true(strncmp(rule, "\n| --- |", 8) == 0);
    const char *rowp = strchr(rule + 1, '\n') + 1;
    size_t rows = 0;
    while (strncmp(rowp, "| ", 2) == 0) {
        char want[256];
        snprintf(want, sizeof want, "| %s |", x.r->cohorts[rows].label);
        if (strncmp(rowp, want, strlen(want)) != 0)
            fail_msg("row %zu is not cohort \"%s\":\n%s", rows, x.r->cohorts[rows].label, md);
        rows++;
        rowp = strchr(rowp, '\n') + 1;
    }
    assert_int_equal(rows, x.r->ncohorts);
    char bold[1100];
    snprintf(bold, sizeof bold, "\n**%s**\n", line);
    assert_true(ends_with(md, bold));
    assert_contains(md, KEY_X);
    assert_contains(md, "```sh\n");
    assert_contains(md, IMAGE_PATH);
    free(md);

    /* Text: the same content, no colour unless asked, the verdict line last. */
    char *text = render(REPORT_TEXT, x.r, &x.g, &x.v, false);
    char tail[1100];
    snprintf(tail, sizeof tail, "\n%s\n", line);
    assert_true(ends_with(text, tail));
    assert_lacks(text, "\033[");
    assert_contains(text, KEY_X);
    assert_contains(text, KEY_Y);
    assert_contains(text, KEY_Z);
    assert_contains(text, "sensor!MatchInstance+0x2f  (0x");
    assert_contains(text, bucket(x.r, KEY_X)->examples[0].command);
    /* Cohorts in worst-first order. */
    const char *prev = text;
    for (size_t i = 0; i < x.r->ncohorts; i++) {
        char want[256];
        snprintf(want, sizeof want, "\n%s ", x.r->cohorts[i].label);
        const char *at = strstr(text, want);
        if (!at || at < prev)
            fail_msg("cohort \"%s\" is not in order in:\n%s", x.r->cohorts[i].label, text);
        prev = at;
    }
    free(text);
    text = render(REPORT_TEXT, x.r, &x.g, &x.v, true);
    assert_contains(text, "\033[31m");
    free(text);
    release(&x);

    /* A passing report ends with PASS. */
    prepare_default(&x, f->path, NULL);
    report_verdict_free(&x.v);
    char err[128];
    assert_int_equal(report_gate_parse("max-fault-rate=100%", &x.g, err, sizeof err), 0);
    assert_int_equal(report_gate_check(x.r, &x.g, &x.v), 0);
    text = render(REPORT_TEXT, x.r, &x.g, &x.v, false);
    assert_true(ends_with(text, "\nPASS: every cohort within max-fault-rate=100%\n"));
    free(text);
    md = render(REPORT_MARKDOWN, x.r, &x.g, &x.v, false);
    assert_true(ends_with(md, "\n**PASS: every cohort within max-fault-rate=100%**\n"));
    free(md);
    release(&x);

    /* A '|' in a label does not split a Markdown cell. */
    cohort_spec specs[] = {{WIN10, "7.11", NASTY_REGION, 10, 2, "MatchInstance"}};
    write_simple_store(f->other, specs, 1, RUN_COMPLETE);
    prepare_default(&x, f->other, "region");
    md = render(REPORT_MARKDOWN, x.r, &x.g, &x.v, false);
    assert_contains(md, "| eu&\"<west>\" \\| 'b' |");
    free(md);
    release(&x);
}

static void formats_name_the_same_top_bucket(void **state)
{
    fixture *f = *state;
    write_main_store(f->path, RUN_COMPLETE);
    rendered x;
    prepare_default(&x, f->path, NULL);
    static const report_format formats[] = {REPORT_TEXT, REPORT_MARKDOWN, REPORT_HTML,
                                            REPORT_JSON, REPORT_JUNIT};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        char *out = render(formats[i], x.r, &x.g, &x.v, false);
        assert_contains(out, x.r->cohorts[0].top_bucket);
        assert_contains(out, x.r->cohorts[1].top_bucket);
        free(out);
    }
    /* A report that cannot be written says so. */
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        assert_int_equal(report_write(full, REPORT_TEXT, x.r, &x.g, &x.v, false), -1);
        fclose(full);
    }
    release(&x);
}

/* ---- diff ------------------------------------------------------------------------ */

static void diff_buckets_new_and_gone(void **state)
{
    fixture *f = *state;
    cohort_spec with = {WIN10, "7.11", "eu-west", 100, 5, "MatchInstance"};
    cohort_spec without = {WIN10, "7.11", "eu-west", 100, 0, NULL};
    write_simple_store(f->path, &with, 1, RUN_COMPLETE);
    write_simple_store(f->other, &without, 1, RUN_COMPLETE);
    report *base = load(f->path, NULL), *cand = load(f->other, NULL);

    /* The candidate lost the bucket: "gone", not worse (5/100 and 0/100 overlap). */
    bool worse = true;
    char *text = render_diff(REPORT_TEXT, base, cand, &worse);
    assert_false(worse);
    assert_contains(line_with(text, KEY_X), "gone");
    assert_contains(line_with(text, KEY_X), "5 -> 0");
    assert_true(ends_with(line_with(text, "\n  " LABEL_A), "same"));
    assert_contains(text, "NOT WORSE");
    free(text);

    /* The other way round: "new", and worse. */
    worse = false;
    text = render_diff(REPORT_TEXT, cand, base, &worse);
    assert_true(worse);
    assert_contains(line_with(text, KEY_X), "new");
    assert_contains(line_with(text, KEY_X), "0 -> 5");
    assert_lacks(text, "NOT WORSE");
    free(text);

    /* The same run against itself: nothing new, nothing gone. */
    text = render_diff(REPORT_TEXT, base, base, &worse);
    assert_false(worse);
    assert_lacks(line_with(text, KEY_X), "new");
    assert_lacks(line_with(text, KEY_X), "gone");
    free(text);

    /* JSON says the same. */
    char *doc = render_diff(REPORT_JSON, cand, base, &worse);
    if (!json_valid(doc))
        fail_msg("not valid JSON:\n%s", doc);
    assert_string_equal(json_get(doc, "$.worse"), "1");
    assert_string_equal(json_get(doc, "$.baseline"), f->other);
    assert_string_equal(json_get(doc, "$.candidate"), f->path);
    assert_string_equal(json_get(doc, "$.buckets[0].bucket"), KEY_X);
    assert_string_equal(json_get(doc, "$.buckets[0].change"), "new");
    assert_string_equal(json_get(doc, "$.buckets[0].candidate_endpoints"), "5");
    assert_string_equal(json_get(doc, "$.cohorts[0].label"), LABEL_A);
    assert_string_equal(json_get(doc, "$.cohorts[0].change"), "same");
    free(doc);
    doc = render_diff(REPORT_JSON, base, cand, &worse);
    assert_true(json_valid(doc));
    assert_string_equal(json_get(doc, "$.worse"), "0");
    assert_string_equal(json_get(doc, "$.buckets[0].change"), "gone");
    free(doc);
    report_free(base);
    report_free(cand);
}

static void diff_cohorts_worse_better_same(void **state)
{
    fixture *f = *state;
    /* 1/100 against 60/100: intervals far apart.  The bucket is in both. */
    cohort_spec low[] = {{WIN10, "7.11", "eu-west", 100, 1, "MatchInstance"},
                         {WIN11, "7.11", "eu-west", 100, 5, "MatchInstance"},
                         {WIN10, "7.10", "eu-west", 50, 0, NULL}};
    cohort_spec high[] = {{WIN10, "7.11", "eu-west", 100, 60, "MatchInstance"},
                          {WIN11, "7.11", "eu-west", 100, 8, "MatchInstance"},
                          {WIN11, "7.10", "eu-west", 50, 0, NULL}};
    write_simple_store(f->path, low, 3, RUN_COMPLETE);
    write_simple_store(f->other, high, 3, RUN_COMPLETE);
    report *base = load(f->path, NULL), *cand = load(f->other, NULL);

    bool worse = false;
    char *text = render_diff(REPORT_TEXT, base, cand, &worse);
    assert_true(worse);
    assert_true(ends_with(line_with(text, "\n  " LABEL_A) , "worse"));
    assert_true(ends_with(line_with(text, "\n  " LABEL_B), "same")); /* 5% and 8% overlap */
    assert_true(ends_with(line_with(text, "\n  " LABEL_D), "new"));  /* a cohort only there */
    assert_true(ends_with(line_with(text, "\n  " LABEL_C), "gone"));
    assert_contains(line_with(text, "\n  " LABEL_A), "1/100");
    assert_contains(line_with(text, "\n  " LABEL_A), "60/100");
    assert_lacks(line_with(text, KEY_X), "new"); /* in both */
    assert_contains(text, "1 cohort worse");
    free(text);

    char *doc = render_diff(REPORT_JSON, base, cand, &worse);
    assert_true(json_valid(doc));
    assert_string_equal(json_get(doc, "$.worse"), "1");
    assert_string_equal(json_get(doc, "$.buckets[0].change"), "both");
    assert_string_equal(json_get(doc, "$.cohorts[0].label"), LABEL_A);
    assert_string_equal(json_get(doc, "$.cohorts[0].change"), "worse");
    assert_string_equal(json_get(doc, "$.cohorts[0].baseline.faulted"), "1");
    assert_string_equal(json_get(doc, "$.cohorts[0].candidate.faulted"), "60");
    free(doc);

    /* Reversed: better, and not worse. */
    worse = true;
    text = render_diff(REPORT_TEXT, cand, base, &worse);
    assert_false(worse);
    assert_true(ends_with(line_with(text, "\n  " LABEL_A), "better"));
    assert_true(ends_with(line_with(text, "\n  " LABEL_B), "same"));
    free(text);

    /* Markdown: a table row per cohort, and the bold summary. */
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_int_equal(report_diff_write(out, REPORT_MARKDOWN, base, cand, false, &worse), 0);
    fclose(out);
    assert_true(worse);
    assert_contains(buf, "| " LABEL_A " | ");
    assert_true(ends_with(line_with(buf, "| " LABEL_A " | "), "| worse |"));
    assert_contains(buf, "**WORSE");
    free(buf);
    report_free(base);
    report_free(cand);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_dir, teardown_dir)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(format_names),
        T(json_report),
        T(junit_report),
        T(markdown_and_text_reports),
        T(formats_name_the_same_top_bucket),
        T(diff_buckets_new_and_gone),
        T(diff_cohorts_worse_better_same),
    };
#undef T
    return cmocka_run_group_tests(tests, compute_keys, NULL);
}
