/*
 * render_json.c — the report as one JSON document for tools.
 *
 * Keys are stable and documented in the README ("Reports"); rates are
 * fractions (0.8123), never percentages; times are virtual ms after the
 * run's start with the UTC clock beside them.
 */
#include <string.h>

#include "json.h"
#include "render.h"

static void counts(json_writer *w, const report_counts *n)
{
    json_key(w, "endpoints");
    json_u64(w, n->endpoints);
    json_key(w, "reached");
    json_u64(w, n->reached);
    json_key(w, "faulted");
    json_u64(w, n->faulted);
    json_key(w, "fault_rate");
    json_double(w, n->rate);
    json_key(w, "interval");
    json_array_begin(w);
    json_double(w, n->lo);
    json_double(w, n->hi);
    json_array_end(w);
    json_key(w, "boot_looped");
    json_u64(w, n->boot_looped);
    json_key(w, "recovered");
    json_u64(w, n->recovered);
    json_key(w, "still_down");
    json_u64(w, n->still_down);
    json_key(w, "crashes");
    json_u64(w, n->crashes);
    json_key(w, "unsupported_api");
    json_u64(w, n->unsupported);
}

static void lines(json_writer *w, const char *text)
{
    json_array_begin(w);
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        json_string_n(w, p, n);
        p += n + (nl != NULL);
    }
    json_array_end(w);
}

static void run_object(json_writer *w, const report *r)
{
    json_object_begin(w);
    const char *keys[] = {"scenario", "seed", "shard", "status", "fleetsim_version",
                          "started_at", "ended_at", "virtual_start", "reason", "plan"};
    const char *vals[] = {r->scenario, r->seed, r->shard, r->status, r->fleetsim_version,
                          r->started_at, r->ended_at, r->virtual_start, r->reason, r->plan};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_key(w, keys[i]);
        json_string_or_null(w, vals[i]);
    }
    json_key(w, "store");
    json_string(w, r->store_path);
    json_key(w, "fleet_size");
    json_u64(w, r->fleet_size);
    json_key(w, "duration_ms");
    json_i64(w, r->duration_ms);
    json_key(w, "virtual_end_ms");
    json_i64(w, r->virtual_end_ms);
    json_key(w, "complete");
    json_bool(w, r->complete);
    json_key(w, "artifacts");
    json_array_begin(w);
    for (size_t i = 0; i < r->nartifacts; i++) {
        const report_artifact *a = &r->artifacts[i];
        json_object_begin(w);
        json_key(w, "kind");
        json_string(w, a->kind);
        json_key(w, "role");
        json_string_or_null(w, a->role);
        json_key(w, "name");
        json_string(w, a->name);
        json_key(w, "sha256");
        json_string_or_null(w, a->sha256);
        json_key(w, "version");
        json_string_or_null(w, a->version);
        json_object_end(w);
    }
    json_array_end(w);
    json_object_end(w);
}

void report_write_json(FILE *out, const report *r, const report_gate *g, const report_verdict *v)
{
    json_writer w;
    json_init(&w, out);
    json_object_begin(&w);
    json_key(&w, "run");
    run_object(&w, r);
    json_key(&w, "by");
    json_array_begin(&w);
    for (size_t i = 0; i < r->nby; i++)
        json_string(&w, r->by[i]);
    json_array_end(&w);
    json_key(&w, "interval");
    json_string(&w, report_interval_name(r));
    json_key(&w, "total");
    json_object_begin(&w);
    counts(&w, &r->total);
    json_object_end(&w);

    json_key(&w, "cohorts");
    json_array_begin(&w);
    for (size_t c = 0; c < r->ncohorts; c++) {
        const report_cohort *co = &r->cohorts[c];
        json_object_begin(&w);
        json_key(&w, "label");
        json_string(&w, co->label);
        json_key(&w, "values");
        json_object_begin(&w);
        for (size_t i = 0; i < r->nby; i++) {
            json_key(&w, r->by[i]);
            json_string(&w, co->values[i]);
        }
        json_object_end(&w);
        counts(&w, &co->n);
        json_key(&w, "top_bucket");
        json_string_or_null(&w, co->top_bucket);
        json_key(&w, "passed");
        json_bool(&w, !report_cohort_failed(v, co));
        json_object_end(&w);
    }
    json_array_end(&w);

    json_key(&w, "buckets");
    json_array_begin(&w);
    for (size_t i = 0; i < r->nbuckets; i++) {
        const report_bucket *b = &r->buckets[i];
        json_object_begin(&w);
        json_key(&w, "bucket");
        json_string(&w, b->key);
        json_key(&w, "bugcheck");
        if (b->bugcheck)
            json_hex(&w, b->bugcheck);
        else
            json_null(&w);
        json_key(&w, "bugcheck_name");
        json_string_or_null(&w, b->bugcheck_name);
        json_key(&w, "endpoints");
        json_u64(&w, b->endpoints);
        json_key(&w, "crashes");
        json_u64(&w, b->crashes);
        json_key(&w, "first_vt_ms");
        json_i64(&w, b->first_vt_ms);
        json_key(&w, "last_vt_ms");
        json_i64(&w, b->last_vt_ms);
        json_key(&w, "symbol");
        json_string(&w, b->symbol);
        json_key(&w, "instruction");
        json_string(&w, b->instruction);
        json_key(&w, "access");
        json_string(&w, b->access);
        json_key(&w, "address_class");
        json_string(&w, b->address_class);
        json_key(&w, "address");
        json_string(&w, b->address);
        json_key(&w, "stack");
        lines(&w, b->stack);
        json_key(&w, "disasm");
        lines(&w, b->disasm);
        json_key(&w, "cohorts");
        json_array_begin(&w);
        for (size_t k = 0; k < b->ncohorts; k++)
            json_string(&w, b->cohorts[k]);
        json_array_end(&w);
        json_key(&w, "examples");
        json_array_begin(&w);
        for (size_t k = 0; k < b->nexamples; k++) {
            json_object_begin(&w);
            json_key(&w, "endpoint");
            json_u64(&w, b->examples[k].endpoint);
            json_key(&w, "boot");
            json_u64(&w, b->examples[k].boot);
            json_key(&w, "command");
            json_string(&w, b->examples[k].command);
            json_object_end(&w);
        }
        json_array_end(&w);
        json_object_end(&w);
    }
    json_array_end(&w);
    json_key(&w, "buckets_total");
    json_u64(&w, r->nbuckets_total);

    json_key(&w, "series");
    json_array_begin(&w);
    for (size_t i = 0; i < r->nseries; i++) {
        const report_point *p = &r->series[i];
        json_object_begin(&w);
        json_key(&w, "vt_ms");
        json_i64(&w, p->vt_ms);
        json_key(&w, "received");
        json_u64(&w, p->received);
        json_key(&w, "crashed");
        json_u64(&w, p->crashed);
        json_key(&w, "down");
        json_u64(&w, p->down);
        json_key(&w, "recovered");
        json_u64(&w, p->recovered);
        json_object_end(&w);
    }
    json_array_end(&w);

    json_key(&w, "rollout");
    json_object_begin(&w);
    json_key(&w, "plan");
    json_string_or_null(&w, r->plan);
    json_key(&w, "rings");
    json_array_begin(&w);
    for (size_t i = 0; i < r->nrings; i++) {
        const report_ring *ring = &r->rings[i];
        json_object_begin(&w);
        json_key(&w, "ring");
        json_u64(&w, ring->ring);
        json_key(&w, "name");
        json_string(&w, ring->name);
        json_key(&w, "selector");
        json_string(&w, ring->selector);
        json_key(&w, "size");
        json_u64(&w, ring->size);
        json_key(&w, "bake_ms");
        json_u64(&w, ring->bake_ms);
        json_key(&w, "released_vt_ms");
        if (ring->released)
            json_i64(&w, ring->released_ms);
        else
            json_null(&w);
        json_key(&w, "received");
        json_u64(&w, ring->received);
        json_key(&w, "faulted");
        json_u64(&w, ring->faulted);
        json_object_end(&w);
    }
    json_array_end(&w);
    json_key(&w, "decisions");
    json_array_begin(&w);
    for (size_t i = 0; i < r->ndecisions; i++) {
        const report_decision *d = &r->decisions[i];
        json_object_begin(&w);
        json_key(&w, "ring");
        json_u64(&w, d->ring);
        json_key(&w, "vt_ms");
        json_i64(&w, d->vt_ms);
        json_key(&w, "gate");
        json_string(&w, d->gate);
        json_key(&w, "action");
        json_string(&w, d->action);
        json_key(&w, "detail");
        json_string(&w, d->detail);
        json_object_end(&w);
    }
    json_array_end(&w);
    json_object_end(&w);

    json_key(&w, "verdict");
    json_object_begin(&w);
    json_key(&w, "gate");
    json_string(&w, g->text);
    json_key(&w, "passed");
    json_bool(&w, v->passed);
    json_key(&w, "incomplete");
    json_bool(&w, v->incomplete);
    char line[1024];
    report_verdict_line(g, v, line, sizeof line);
    json_key(&w, "line");
    json_string(&w, line);
    json_key(&w, "violations");
    json_array_begin(&w);
    for (size_t i = 0; i < v->nviolations; i++) {
        const report_violation *x = &v->violations[i];
        json_object_begin(&w);
        json_key(&w, "cohort");
        json_string_or_null(&w, x->cohort ? x->cohort->label : NULL);
        json_key(&w, "limit");
        json_string(&w, x->limit->text);
        json_key(&w, "actual");
        json_double(&w, x->actual);
        json_object_end(&w);
    }
    json_array_end(&w);
    json_object_end(&w);
    json_object_end(&w);
    json_finish(&w);
}
