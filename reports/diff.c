/*
 * diff.c — compare two runs cohort by cohort: `fleetsim diff BASE CAND`.
 *
 * Cohorts match by label (their attribute values); buckets by key, which is
 * stable across runs and memory layouts, so a bucket that is in one store
 * and not the other is a crash that appeared or disappeared.  A cohort got
 * worse (or better) only when the two 95% intervals do not overlap: a
 * difference the data cannot tell from chance is reported as "same", with
 * both intervals beside it so the reader can judge.
 */
#include <inttypes.h>
#include <string.h>

#include "json.h"
#include "render.h"
#include "sim.h"

typedef enum { CH_SAME, CH_WORSE, CH_BETTER, CH_NEW, CH_GONE } change;
static const char *const CHANGE[] = {"same", "worse", "better", "new", "gone"};

typedef struct pair {
    const report_cohort *base, *cand;
    change ch;
} pair;

static const report_cohort *find_cohort(const report *r, const char *label)
{
    for (size_t i = 0; i < r->ncohorts; i++)
        if (strcmp(r->cohorts[i].label, label) == 0)
            return &r->cohorts[i];
    return NULL;
}

static const report_bucket *find_bucket(const report *r, const char *key)
{
    for (size_t i = 0; i < r->nbuckets; i++)
        if (strcmp(r->buckets[i].key, key) == 0)
            return &r->buckets[i];
    return NULL;
}

static change classify(const report_cohort *b, const report_cohort *c)
{
    if (!b)
        return CH_NEW;
    if (!c)
        return CH_GONE;
    if (!b->n.reached || !c->n.reached)
        return CH_SAME;
    if (c->n.lo > b->n.hi)
        return CH_WORSE;
    if (c->n.hi < b->n.lo)
        return CH_BETTER;
    return CH_SAME;
}

/* The cohorts of both, the candidate's order first, then those gone. */
static size_t pairs(const report *base, const report *cand, pair *out)
{
    size_t n = 0;
    for (size_t i = 0; i < cand->ncohorts; i++) {
        const report_cohort *c = &cand->cohorts[i], *b = find_cohort(base, c->label);
        out[n++] = (pair){b, c, classify(b, c)};
    }
    for (size_t i = 0; i < base->ncohorts; i++)
        if (!find_cohort(cand, base->cohorts[i].label))
            out[n++] = (pair){&base->cohorts[i], NULL, CH_GONE};
    return n;
}

static void rate_text(const report_cohort *c, char *out, size_t room)
{
    if (!c) {
        snprintf(out, room, "-");
        return;
    }
    char iv[96];
    report_interval_text(&c->n, iv, sizeof iv);
    snprintf(out, room, "%" PRIu64 "/%" PRIu64 " %s", c->n.faulted, c->n.reached, iv);
}

static void write_json(FILE *out, const report *base, const report *cand, const pair *p,
                       size_t np, bool worse)
{
    json_writer w;
    json_init(&w, out);
    json_object_begin(&w);
    json_key(&w, "baseline");
    json_string(&w, base->store_path);
    json_key(&w, "candidate");
    json_string(&w, cand->store_path);
    json_key(&w, "worse");
    json_bool(&w, worse);
    json_key(&w, "buckets");
    json_array_begin(&w);
    for (int side = 0; side < 2; side++) {
        const report *r = side ? base : cand, *o = side ? cand : base;
        for (size_t i = 0; i < r->nbuckets; i++) {
            const report_bucket *b = &r->buckets[i], *ob = find_bucket(o, b->key);
            if (side && ob)
                continue; /* in both: written from the candidate's side */
            const report_bucket *bb = side ? b : ob, *cb = side ? ob : b;
            json_object_begin(&w);
            json_key(&w, "bucket");
            json_string(&w, b->key);
            json_key(&w, "change");
            json_string(&w, !bb ? "new" : !cb ? "gone" : "both");
            json_key(&w, "baseline_endpoints");
            json_u64(&w, bb ? bb->endpoints : 0);
            json_key(&w, "candidate_endpoints");
            json_u64(&w, cb ? cb->endpoints : 0);
            json_object_end(&w);
        }
    }
    json_array_end(&w);
    json_key(&w, "cohorts");
    json_array_begin(&w);
    for (size_t i = 0; i < np; i++) {
        json_object_begin(&w);
        json_key(&w, "label");
        json_string(&w, p[i].cand ? p[i].cand->label : p[i].base->label);
        json_key(&w, "change");
        json_string(&w, CHANGE[p[i].ch]);
        const report_cohort *sides[2] = {p[i].base, p[i].cand};
        const char *names[2] = {"baseline", "candidate"};
        for (int s = 0; s < 2; s++) {
            json_key(&w, names[s]);
            if (!sides[s]) {
                json_null(&w);
                continue;
            }
            json_object_begin(&w);
            json_key(&w, "reached");
            json_u64(&w, sides[s]->n.reached);
            json_key(&w, "faulted");
            json_u64(&w, sides[s]->n.faulted);
            json_key(&w, "fault_rate");
            json_double(&w, sides[s]->n.rate);
            json_key(&w, "interval");
            json_array_begin(&w);
            json_double(&w, sides[s]->n.lo);
            json_double(&w, sides[s]->n.hi);
            json_array_end(&w);
            json_key(&w, "top_bucket");
            json_string_or_null(&w, sides[s]->top_bucket);
            json_object_end(&w);
        }
        json_object_end(&w);
    }
    json_array_end(&w);
    json_object_end(&w);
    json_finish(&w);
}

int report_diff_write(FILE *out, report_format f, const report *base, const report *cand,
                      bool colour, bool *worse)
{
    pair *p = sim_calloc(base->ncohorts + cand->ncohorts + 1, sizeof *p);
    if (!p)
        return -1;
    size_t np = pairs(base, cand, p);
    *worse = false;
    size_t nnew = 0, ngone = 0, nworse = 0, nbetter = 0;
    for (size_t i = 0; i < cand->nbuckets; i++)
        nnew += !find_bucket(base, cand->buckets[i].key);
    for (size_t i = 0; i < base->nbuckets; i++)
        ngone += !find_bucket(cand, base->buckets[i].key);
    for (size_t i = 0; i < np; i++) {
        nworse += p[i].ch == CH_WORSE;
        nbetter += p[i].ch == CH_BETTER;
    }
    *worse = nnew > 0 || nworse > 0;

    if (f == REPORT_JSON) {
        write_json(out, base, cand, p, np, *worse);
        sim_free(p);
        return fflush(out) == 0 && !ferror(out) ? 0 : -1;
    }
    bool md = f == REPORT_MARKDOWN;
    const char *tick = md ? "`" : "";
    if (md)
        fprintf(out, "# fleetsim diff\n\n- baseline `%s` (%s, seed %s)\n- candidate `%s` (%s, "
                     "seed %s)\n",
                base->store_path, base->scenario, base->seed, cand->store_path, cand->scenario,
                cand->seed);
    else
        fprintf(out, "fleetsim diff\n  baseline  %s (%s, seed %s)\n  candidate %s (%s, seed %s)\n",
                base->store_path, base->scenario, base->seed, cand->store_path, cand->scenario,
                cand->seed);
    if (!base->complete || !cand->complete)
        fprintf(out, "%s%s\n", md ? "\n> " : "  ",
                "warning: a run did not complete; its counts are partial");

    fprintf(out, md ? "\n## Buckets\n\n" : "\nBuckets (endpoints: baseline -> candidate)\n");
    size_t shown = 0;
    for (int side = 0; side < 2; side++) {
        const report *r = side ? base : cand, *o = side ? cand : base;
        for (size_t i = 0; i < r->nbuckets; i++) {
            const report_bucket *b = &r->buckets[i], *ob = find_bucket(o, b->key);
            if (side && ob)
                continue;
            uint64_t be = side ? b->endpoints : ob ? ob->endpoints : 0;
            uint64_t ce = side ? 0 : b->endpoints;
            const char *what = !side && !ob ? "new " : side ? "gone" : "    ";
            fprintf(out, "%s%s %s%s%s  %" PRIu64 " -> %" PRIu64 "\n", md ? "- " : "  ", what,
                    tick, b->key, tick, be, ce);
            shown++;
        }
    }
    if (!shown)
        fprintf(out, "%sno crashes in either run\n", md ? "- " : "  ");

    char head[64];
    snprintf(head, sizeof head, "faulted/reached, fault rate [95%% %s]",
             report_interval_name(cand));
    if (md)
        fprintf(out, "\n## Cohorts\n\n| cohort | baseline %s | candidate | change |\n"
                     "| --- | ---: | ---: | --- |\n", head);
    else
        fprintf(out, "\nCohorts (%s)\n", head);
    int w = 6;
    for (size_t i = 0; i < np; i++) {
        int n = (int)strlen(p[i].cand ? p[i].cand->label : p[i].base->label);
        w = n > w ? n : w;
    }
    for (size_t i = 0; i < np; i++) {
        char b[160], c[160];
        rate_text(p[i].base, b, sizeof b);
        rate_text(p[i].cand, c, sizeof c);
        const char *label = p[i].cand ? p[i].cand->label : p[i].base->label;
        if (md) {
            fprintf(out, "| %s | %s | %s | %s |\n", label, b, c, CHANGE[p[i].ch]);
            continue;
        }
        const char *on = colour && p[i].ch == CH_WORSE    ? "\033[31m"
                         : colour && p[i].ch == CH_BETTER ? "\033[32m"
                                                          : "";
        fprintf(out, "  %s%-*s  %-34s -> %-34s %s%s\n", on, w, label, b, c, CHANGE[p[i].ch],
                *on ? "\033[0m" : "");
    }
    fprintf(out,
            "\n%s%s: %zu new bucket%s, %zu gone; %zu cohort%s worse, %zu better%s\n",
            md ? "**" : "", *worse ? "WORSE" : "NOT WORSE", nnew, nnew == 1 ? "" : "s", ngone,
            nworse, nworse == 1 ? "" : "s", nbetter, md ? "**" : "");
    sim_free(p);
    return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}
