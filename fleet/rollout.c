/*
 * rollout.c — the staged-rollout controller (rollout.h): rings, telemetry
 * as it arrives, and the gate between rings.
 *
 * The gate counts, at each look, over every endpoint that received the
 * update by then:
 *   heard     its first heartbeat or crash report has arrived;
 *   crashes   its crash report has arrived;
 *   silent    no crash report, and nothing heard for longer than a healthy
 *             machine's heartbeat takes (one check-in interval plus its
 *             jitter and a minute): since the update, or since it went
 *             down (a machine that heartbeated and then crashed stops);
 *             a machine that goes quiet after an update is presumed down,
 *             so "no data" never reads as health;
 * and judges n = heard + silent endpoints of which bad = crashes + silent:
 *   1. sequential: the Bayes factor of Lindon & Malek (report_bayes_factor)
 *      against the endpoints not yet updated (the control group; the model
 *      gives them no crashes of their own), checked at every look: halt
 *      when it reaches 1 / alpha;
 *   2. threshold: fail when the Wilson interval's lower bound is above
 *      max_fault_rate_upper (the rate is above it, beyond chance);
 *   3. at the end of a ring's bake: advance when at least min_exposure
 *      endpoints have a verdict and the interval's upper bound is at most
 *      max_fault_rate_upper; else hold and look again (never pass on
 *      missing data).
 * A failed gate halts the release (no one else receives the update) or
 * rolls it back (also marks it bad, which booting sensors learn as they
 * learned the known-bad mark in July 2024).  A plan without rings
 * releases to everyone at once and its gate only watches: it records when
 * the trouble would have been detected.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report.h"
#include "rollout.h"
#include "sim.h"

#define NEVER INT64_MAX

struct rollout {
    const scenario *sc;
    const scenario_plan *plan;
    uint64_t size;
    uint32_t nrings;            /* 1 for all at once */
    uint32_t released;          /* rings released so far */
    uint8_t *ring_of;           /* per endpoint */
    uint64_t *ring_size;
    int64_t *released_ms;       /* per ring; NEVER: not yet */
    int64_t *received_ms, *heartbeat_ms, *report_ms, *down_ms; /* per endpoint; NEVER */
    int64_t last_look, silent_after;
    bool halted, rolled_back, watch_only, done;
    int64_t detected_ms, stopped_ms;
};

static double ring_draw(uint64_t seed, uint64_t id)
{
    uint64_t x = fleet_mix64(fleet_endpoint_seed(seed, id) ^ 0x52494E47ull /* "RING" */);
    return (double)(x >> 11) / 9007199254740992.0;
}

int rollout_create(const scenario *sc, const scenario_plan *plan, const fleet_gen *gen,
                   rollout **out, char *err, size_t errlen)
{
    rollout *r = sim_calloc(1, sizeof *r);
    uint64_t n = fleet_gen_size(gen);
    *out = NULL;
    if (!r)
        goto nomem;
    r->sc = sc;
    r->plan = plan;
    r->size = n;
    r->nrings = plan->nrings ? (uint32_t)plan->nrings : 1;
    r->watch_only = plan->nrings == 0;
    r->released = 1;
    r->last_look = sc->release_ms;
    r->detected_ms = r->stopped_ms = -1;
    r->silent_after = (int64_t)(sc->checkin_interval_ms + sc->checkin_jitter_ms) + 60000;
    r->ring_of = sim_calloc(n ? n : 1, 1);
    r->ring_size = sim_calloc(r->nrings, sizeof *r->ring_size);
    r->released_ms = sim_calloc(r->nrings, sizeof *r->released_ms);
    r->received_ms = sim_malloc((n ? n : 1) * sizeof *r->received_ms);
    r->heartbeat_ms = sim_malloc((n ? n : 1) * sizeof *r->heartbeat_ms);
    r->report_ms = sim_malloc((n ? n : 1) * sizeof *r->report_ms);
    r->down_ms = sim_malloc((n ? n : 1) * sizeof *r->down_ms);
    if (!r->ring_of || !r->ring_size || !r->released_ms || !r->received_ms ||
        !r->heartbeat_ms || !r->report_ms || !r->down_ms)
        goto nomem;
    for (uint32_t i = 0; i < r->nrings; i++)
        r->released_ms[i] = NEVER;
    r->released_ms[0] = sc->release_ms;
    for (uint64_t id = 0; id < n; id++) {
        r->received_ms[id] = r->heartbeat_ms[id] = r->report_ms[id] = r->down_ms[id] = NEVER;
        if (!plan->nrings)
            continue;
        fleet_endpoint fe;
        fleet_gen_endpoint(gen, id, &fe);
        uint32_t attrs[SCENARIO_ATTR_COUNT] = {fe.profile, fe.sensor, fe.region, fe.tenant};
        size_t ring = scenario_ring_of(plan, attrs, ring_draw(sc->seed, id));
        r->ring_of[id] = (uint8_t)ring;
    }
    for (uint64_t id = 0; id < n; id++)
        r->ring_size[r->ring_of[id]]++;
    *out = r;
    return 0;
nomem:
    rollout_destroy(r);
    snprintf(err, errlen, "out of memory for the rollout of %" PRIu64 " endpoints", n);
    return SIM_ENOMEM;
}

void rollout_destroy(rollout *r)
{
    if (!r)
        return;
    sim_free(r->ring_of);
    sim_free(r->ring_size);
    sim_free(r->released_ms);
    sim_free(r->received_ms);
    sim_free(r->heartbeat_ms);
    sim_free(r->report_ms);
    sim_free(r->down_ms);
    sim_free(r);
}

static int write_ring(const rollout *r, store *st, uint32_t i, char *err, size_t errlen)
{
    const scenario_ring *ring = r->plan->nrings ? &r->plan->rings[i] : NULL;
    store_ring row = {
        .ring = i,
        .name = ring ? ring->name : "everyone",
        .selector = ring ? ring->selector : "100%",
        .size = r->ring_size[i],
        .bake_ms = ring ? ring->bake_ms : 0,
        .released_vt_ms = r->released_ms[i] == NEVER ? INT64_MIN : r->released_ms[i],
    };
    return store_write_ring(st, &row, err, errlen);
}

int rollout_write_rings(const rollout *r, store *st, char *err, size_t errlen)
{
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < r->nrings; i++)
        rc = write_ring(r, st, i, err, errlen);
    return rc;
}

uint32_t rollout_ring_of(const rollout *r, uint64_t id)
{
    return id < r->size ? r->ring_of[id] : 0;
}

bool rollout_offered(const rollout *r, uint64_t id)
{
    return !r->halted && id < r->size && r->ring_of[id] < r->released;
}

bool rollout_stopped(const rollout *r)
{
    return r->halted;
}

void rollout_received(rollout *r, uint64_t id, int64_t t_ms)
{
    if (id < r->size && t_ms < r->received_ms[id])
        r->received_ms[id] = t_ms;
}

void rollout_heartbeat(rollout *r, uint64_t id, int64_t t_ms)
{
    if (id < r->size && t_ms < r->heartbeat_ms[id])
        r->heartbeat_ms[id] = t_ms;
}

void rollout_down(rollout *r, uint64_t id, int64_t t_ms)
{
    if (id < r->size && t_ms < r->down_ms[id])
        r->down_ms[id] = t_ms;
}

void rollout_crash_report(rollout *r, uint64_t id, int64_t t_ms)
{
    if (id < r->size && t_ms < r->report_ms[id])
        r->report_ms[id] = t_ms;
}

int64_t rollout_next_look(const rollout *r)
{
    if (r->done)
        return NEVER;
    int64_t next = r->last_look + (int64_t)r->plan->gate.every_ms;
    uint32_t cur = r->released - 1;
    if (!r->watch_only && r->released < r->nrings) {
        int64_t bake_end = r->released_ms[cur] + (int64_t)r->plan->rings[cur].bake_ms;
        if (bake_end > r->last_look && bake_end < next)
            next = bake_end;
    }
    return next;
}

typedef struct tally {
    int64_t exposed, heard, crashes, silent, control;
} tally;

static tally count(const rollout *r, int64_t t)
{
    tally k = {0};
    for (uint64_t id = 0; id < r->size; id++) {
        if (r->received_ms[id] > t) {
            k.control++;
            continue;
        }
        k.exposed++;
        if (r->report_ms[id] <= t) {
            k.heard++;
            k.crashes++;
        } else if (r->down_ms[id] <= t - r->silent_after) {
            k.silent++; /* it stopped heartbeating, whatever it sent before */
        } else if (r->heartbeat_ms[id] <= t) {
            k.heard++;
        } else if (r->received_ms[id] + r->silent_after <= t) {
            k.silent++; /* never heard from since the update */
        }
    }
    return k;
}

static int record(const rollout *r, store *st, int64_t t, const tally *k, const char *gate,
                  store_gate_action action, double statistic, double threshold,
                  const char *detail, char *err, size_t errlen)
{
    if (!st)
        return 0;
    store_gate_decision d = {
        .ring = r->released - 1, .vt_ms = t, .gate = gate, .action = action,
        .exposed = k->exposed, .reported = k->heard, .crashes = k->crashes,
        .silent = k->silent, .control_exposed = k->control, .control_crashes = 0,
        .statistic = statistic, .threshold = threshold, .detail = detail,
    };
    return store_write_gate_decision(st, &d, err, errlen);
}

int rollout_look(rollout *r, int64_t t, store *st, rollout_change *change, char *err,
                 size_t errlen)
{
    const scenario_gate *g = &r->plan->gate;
    tally k = count(r, t);
    int64_t n = k.heard + k.silent, bad = k.crashes + k.silent;
    double lo, hi, rho = (double)n / (double)(n + k.control);
    report_wilson((uint64_t)bad, (uint64_t)n, 1.959963984540054, &lo, &hi);
    double bf = k.control > 0 && n > 0 ? report_bayes_factor(0, (uint64_t)bad, rho, g->prior)
                                       : 1.0;
    uint32_t cur = r->released - 1;
    char detail[256];
    const char *gate = "sequential";
    double stat = bf, limit = 1.0 / g->alpha;
    store_gate_action action = STORE_GATE_HOLD;
    bool fail = false;

    *change = ROLLOUT_NOTHING;
    r->last_look = t;
    if (bf >= 1.0 / g->alpha) {
        fail = true;
        snprintf(detail, sizeof detail,
                 "%" PRId64 " of %" PRId64 " updated endpoints crashed or went silent against "
                 "none of %" PRId64 " not updated: Bayes factor %.3g >= %.3g",
                 bad, n, k.control, bf, limit);
    } else if (n >= (int64_t)g->min_exposure && lo > g->max_rate_upper) {
        fail = true;
        gate = "threshold";
        stat = lo;
        limit = g->max_rate_upper;
        snprintf(detail, sizeof detail,
                 "fault rate %" PRId64 "/%" PRId64 ", lower 95%% bound %.4f above %.4f", bad, n,
                 lo, limit);
    } else if (!r->watch_only && r->released < r->nrings &&
               t >= r->released_ms[cur] + (int64_t)r->plan->rings[cur].bake_ms) {
        if (n < (int64_t)g->min_exposure) {
            gate = "min-exposure";
            stat = (double)n;
            limit = (double)g->min_exposure;
            snprintf(detail, sizeof detail,
                     "baked, but only %" PRId64 " endpoints have a verdict (%" PRId64
                     " needed): hold",
                     n, (int64_t)g->min_exposure);
        } else if (hi <= g->max_rate_upper) {
            gate = "threshold";
            stat = hi;
            limit = g->max_rate_upper;
            action = STORE_GATE_ADVANCE;
            snprintf(detail, sizeof detail,
                     "baked: fault rate %" PRId64 "/%" PRId64 ", upper 95%% bound %.4f <= %.4f: "
                     "release ring %u (%s)",
                     bad, n, hi, limit, cur + 1, r->plan->rings[cur + 1].name);
        } else {
            gate = "threshold";
            stat = hi;
            limit = g->max_rate_upper;
            snprintf(detail, sizeof detail,
                     "baked: fault rate %" PRId64 "/%" PRId64 ", upper 95%% bound %.4f > %.4f: "
                     "hold for more data",
                     bad, n, hi, limit);
        }
    } else {
        snprintf(detail, sizeof detail,
                 "watching: %" PRId64 " of %" PRId64 " with a verdict are bad; Bayes factor %.3g",
                 bad, n, bf);
    }

    if (fail && r->detected_ms < 0)
        r->detected_ms = t;
    if (fail && !r->watch_only) {
        action = g->rollback ? STORE_GATE_ROLLBACK : STORE_GATE_HALT;
        r->halted = r->done = true;
        r->rolled_back = g->rollback;
        r->stopped_ms = t;
        *change = g->rollback ? ROLLOUT_ROLLED_BACK : ROLLOUT_HALTED;
    } else if (fail) {
        /* All at once: record when a gate would have seen it, and stop
         * looking; there is nothing left to stop. */
        size_t len = strlen(detail);
        snprintf(detail + len, sizeof detail - len, " (all at once: nothing left to stop)");
        gate = "detected";
        r->done = true;
    }
    int rc = record(r, st, t, &k, gate, action, stat, limit, detail, err, errlen);
    if (rc == 0 && action == STORE_GATE_ADVANCE) {
        r->released_ms[r->released++] = t;
        *change = ROLLOUT_ADVANCED;
        if (st)
            rc = write_ring(r, st, r->released - 1, err, errlen);
    }
    return rc;
}

void rollout_get_status(const rollout *r, rollout_status *s)
{
    s->rings = r->watch_only ? 0 : r->nrings;
    s->released = r->released;
    s->halted = r->halted;
    s->rolled_back = r->rolled_back;
    s->detected_ms = r->detected_ms;
    s->stopped_ms = r->watch_only ? -1 : r->stopped_ms;
}
