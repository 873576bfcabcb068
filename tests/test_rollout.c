/*
 * test_rollout.c — the staged-rollout controller (fleet/rollout.c) without
 * emulation: ring membership, telemetry as it arrives (delay and loss),
 * each gate statistic, halt and rollback.  The telemetry is fed by hand,
 * so every count a gate sees is known.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fleet_gen.h"
#include "report.h"
#include "rollout.h"
#include "scenario.h"
#include "scenario_snippets.h"

#define MIN 60000ll

/* A 10,000-endpoint fleet; plan "rings": region r1 first, then 10%, then
 * the rest; the gate judges 5 endpoints, passes an upper bound of 50%. */
#define ROLLOUT_SCENARIO                                                     \
    "name: t\nseed: 7\nduration: 12h\nstart: 2024-07-19T00:00:00Z\n"          \
    "fleet:\n  size: 10000\n  profiles: {a: 50%, b: 50%}\n"                  \
    "  sensors: {\"7.11\": 100%}\n  regions: {r1: 2%, r2: 98%}\n"             \
    "update: {content: [x.sys], release: +1h}\n"                            \
    "connectivity: {checkin: {interval: 10m, jitter: 0s}}\n"                 \
    "rollout:\n  plans:\n"                                                  \
    "    - name: rings\n"                                                   \
    "      rings:\n"                                                        \
    "        - {name: first, where: {region: r1}, bake: 1h}\n"              \
    "        - {name: tenth, share: 10%, bake: 1h}\n"                       \
    "        - {name: rest, share: 100%}\n"                                 \
    "      gate: {min_exposure: 5, max_fault_rate_upper: 50%, alpha: 5%, every: 10m}\n" \
    "    - name: shares\n"                                                  \
    "      rings:\n"                                                        \
    "        - {name: one, share: 1%, bake: 1h}\n"                          \
    "        - {name: tenth, share: 10%, bake: 1h}\n"                       \
    "        - {name: rest, share: 100%}\n"                                 \
    "      gate: {min_exposure: 5, max_fault_rate_upper: 50%, on_failure: halt}\n" \
    "    - name: all-at-once\n"

typedef struct fixture {
    scenario *sc;
    fleet_gen *gen;
} fixture;

static int setup(void **state)
{
    static fixture f;
    char err[512];
    if (scenario_parse(ROLLOUT_SCENARIO, strlen(ROLLOUT_SCENARIO), "t.yaml", 0, &f.sc, err,
                       sizeof err) ||
        fleet_gen_create(f.sc, &f.gen, err, sizeof err)) {
        print_error("%s\n", err);
        return -1;
    }
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fleet_gen_destroy(f->gen);
    scenario_destroy(f->sc);
    return 0;
}

static rollout *make(fixture *f, const char *plan)
{
    rollout *r = NULL;
    char err[256];
    assert_int_equal(rollout_create(f->sc, scenario_find_plan(f->sc, plan), f->gen, &r, err,
                                    sizeof err), 0);
    return r;
}

static void bayes_factor_matches_known_values(void **state)
{
    (void)state;
    /* DESIGN.md: N_A = 20, N_B = 5, rho = 0.01, k = 100 -> 45.18. */
    assert_true(fabs(report_bayes_factor(20, 5, 0.01, 100) - 45.18) < 0.01);
    /* One canary crash and none in control is no evidence at all. */
    assert_true(fabs(report_bayes_factor(0, 1, 0.01, 100) - 1.0) < 1e-9);
    assert_true(fabs(report_bayes_factor(0, 2, 0.01, 100) - 1.980198) < 1e-5);
    /* Crashes where the control had as many per exposure: evidence against. */
    assert_true(report_bayes_factor(50, 50, 0.5, 100) < 1.0);
    /* Degenerate shares decide nothing. */
    assert_true(report_bayes_factor(0, 5, 0.0, 100) == 1.0);
    assert_true(report_bayes_factor(0, 5, 1.0, 100) == 1.0);
}

static void rings_are_stable_and_sized(void **state)
{
    fixture *f = *state;
    rollout *a = make(f, "rings"), *b = make(f, "rings"), *s = make(f, "shares");
    uint64_t size[3] = {0}, r1 = 0;
    for (uint64_t id = 0; id < 10000; id++) {
        fleet_endpoint fe;
        fleet_gen_endpoint(f->gen, id, &fe);
        uint32_t ring = rollout_ring_of(a, id);
        assert_int_equal(ring, rollout_ring_of(b, id)); /* a pure function of (seed, id) */
        size[ring]++;
        /* The where ring takes exactly region r1 (index 0). */
        assert_int_equal(ring == 0, fe.region == 0);
        r1 += fe.region == 0;
        /* Share rings draw the same number per endpoint in any plan: an
         * endpoint in the 10% ring of one plan is within 10% in another. */
        if (ring == 1)
            assert_true(rollout_ring_of(s, id) <= 1);
    }
    assert_int_equal(size[0], r1);
    assert_int_equal(r1, 200);
    /* 10% of the 9,800 left, within four standard deviations (~30). */
    assert_true(size[1] > 980 - 120 && size[1] < 980 + 120);
    assert_int_equal(size[0] + size[1] + size[2], 10000);
    rollout_destroy(a);
    rollout_destroy(b);
    rollout_destroy(s);
}

/* Every member of ring `ring` receives the update at time t. */
static uint64_t receive_ring(fixture *f, rollout *r, uint32_t ring, int64_t t)
{
    uint64_t n = 0;
    for (uint64_t id = 0; id < fleet_gen_size(f->gen); id++)
        if (rollout_ring_of(r, id) == ring) {
            assert_true(rollout_offered(r, id));
            rollout_received(r, id, t);
            n++;
        }
    return n;
}

static void healthy_rings_advance_after_their_bake(void **state)
{
    fixture *f = *state;
    rollout *r = make(f, "rings");
    char err[256];
    rollout_change ch;
    int64_t release = 60 * MIN;

    assert_int_equal(rollout_next_look(r), release + 10 * MIN);
    uint64_t id_ring1 = 0;
    while (rollout_ring_of(r, id_ring1) != 1)
        id_ring1++;
    assert_false(rollout_offered(r, id_ring1)); /* not released yet */
    receive_ring(f, r, 0, release);
    for (uint64_t id = 0; id < 10000; id++)
        if (rollout_ring_of(r, id) == 0)
            rollout_heartbeat(r, id, release + 10 * MIN);
    /* Looks during the bake hold, however good the data. */
    for (int64_t t = release + 10 * MIN; t < release + 60 * MIN; t += 10 * MIN) {
        assert_int_equal(rollout_next_look(r), t);
        assert_int_equal(rollout_look(r, t, NULL, &ch, err, sizeof err), 0);
        assert_int_equal(ch, ROLLOUT_NOTHING);
    }
    /* The bake ends: 200 healthy of 200 -> advance. */
    assert_int_equal(rollout_next_look(r), release + 60 * MIN);
    assert_int_equal(rollout_look(r, release + 60 * MIN, NULL, &ch, err, sizeof err), 0);
    assert_int_equal(ch, ROLLOUT_ADVANCED);
    assert_true(rollout_offered(r, id_ring1));
    rollout_status st;
    rollout_get_status(r, &st);
    assert_int_equal(st.released, 2);
    assert_false(st.halted);
    assert_int_equal(st.detected_ms, -1);
    rollout_destroy(r);
}

static void too_little_data_holds(void **state)
{
    fixture *f = *state;
    rollout *r = make(f, "rings");
    char err[256];
    rollout_change ch;
    int64_t release = 60 * MIN;
    /* Four endpoints heard from, the gate wants five: hold past the bake. */
    int heard = 0;
    for (uint64_t id = 0; id < 10000 && heard < 4; id++)
        if (rollout_ring_of(r, id) == 0) {
            rollout_received(r, id, release);
            rollout_heartbeat(r, id, release + 5 * MIN);
            heard++;
        }
    for (int64_t t = release + 10 * MIN; t <= release + 3 * 60 * MIN; t += 10 * MIN) {
        assert_int_equal(rollout_look(r, t, NULL, &ch, err, sizeof err), 0);
        assert_int_equal(ch, ROLLOUT_NOTHING);
    }
    rollout_status st;
    rollout_get_status(r, &st);
    assert_int_equal(st.released, 1);
    rollout_destroy(r);
}

static void silence_and_late_reports_are_counted_when_they_arrive(void **state)
{
    fixture *f = *state;
    rollout *r = make(f, "rings");
    char err[256];
    rollout_change ch;
    int64_t release = 60 * MIN;
    /* Ring 0 receives; 195 heartbeat, 5 crash and never report. */
    int crashed = 0;
    for (uint64_t id = 0; id < 10000; id++) {
        if (rollout_ring_of(r, id) != 0)
            continue;
        rollout_received(r, id, release);
        if (crashed < 5)
            crashed++; /* no heartbeat, no report: a boot loop that never gets out */
        else
            rollout_heartbeat(r, id, release + 10 * MIN);
    }
    /* Before a healthy machine would have heartbeated (10 min + 1 min),
     * the silent ones are not yet suspicious: nothing fails. */
    assert_int_equal(rollout_look(r, release + 10 * MIN, NULL, &ch, err, sizeof err), 0);
    assert_int_equal(ch, ROLLOUT_NOTHING);
    /* At 20 minutes they are silent: 5 bad of 200 against 9,800 untouched
     * endpoints is overwhelming evidence: roll back. */
    assert_int_equal(rollout_look(r, release + 20 * MIN, NULL, &ch, err, sizeof err), 0);
    assert_int_equal(ch, ROLLOUT_ROLLED_BACK);
    assert_true(rollout_stopped(r));
    for (uint64_t id = 0; id < 10000; id++)
        assert_false(rollout_offered(r, id));
    assert_int_equal(rollout_next_look(r), INT64_MAX);
    rollout_status st;
    rollout_get_status(r, &st);
    assert_true(st.halted && st.rolled_back);
    assert_int_equal(st.detected_ms, release + 20 * MIN);
    assert_int_equal(st.stopped_ms, release + 20 * MIN);
    rollout_destroy(r);

    /* Crash reports that arrive (late) before silence would count: the
     * plan that halts (no rollback) halts on six of them in ~100, where
     * three were not enough (Bayes factor 5.8 < 20). */
    r = make(f, "shares");
    uint64_t n = receive_ring(f, r, 0, release);
    assert_true(n > 50);
    int k = 0;
    for (uint64_t id = 0; id < 10000; id++) {
        if (rollout_ring_of(r, id) != 0)
            continue;
        if (k < 3)
            rollout_crash_report(r, id, release + 7 * MIN);
        else if (k < 6)
            rollout_crash_report(r, id, release + 15 * MIN);
        else
            rollout_heartbeat(r, id, release + 10 * MIN);
        k++;
    }
    assert_int_equal(rollout_look(r, release + 5 * MIN, NULL, &ch, err, sizeof err), 0);
    assert_int_equal(ch, ROLLOUT_NOTHING); /* nothing arrived yet */
    assert_int_equal(rollout_look(r, release + 10 * MIN, NULL, &ch, err, sizeof err), 0);
    assert_int_equal(ch, ROLLOUT_NOTHING); /* three reports: not enough */
    assert_int_equal(rollout_look(r, release + 16 * MIN, NULL, &ch, err, sizeof err), 0);
    assert_int_equal(ch, ROLLOUT_HALTED);
    rollout_get_status(r, &st);
    assert_true(st.halted);
    assert_false(st.rolled_back);
    rollout_destroy(r);
}

static void all_at_once_only_watches(void **state)
{
    fixture *f = *state;
    rollout *r = make(f, "all-at-once");
    char err[256];
    rollout_change ch;
    for (uint64_t id = 0; id < 10000; id++) {
        assert_true(rollout_offered(r, id));
        if (id < 100)
            rollout_received(r, id, 60 * MIN); /* and go silent */
    }
    assert_int_equal(rollout_look(r, 90 * MIN, NULL, &ch, err, sizeof err), 0);
    assert_int_equal(ch, ROLLOUT_NOTHING);
    rollout_status st;
    rollout_get_status(r, &st);
    assert_int_equal(st.detected_ms, 90 * MIN); /* it saw it */
    assert_false(st.halted);                   /* and stopped nothing */
    assert_true(rollout_offered(r, 5000));
    assert_int_equal(rollout_next_look(r), INT64_MAX);
    rollout_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bayes_factor_matches_known_values),
        cmocka_unit_test(rings_are_stable_and_sized),
        cmocka_unit_test(healthy_rings_advance_after_their_bake),
        cmocka_unit_test(too_little_data_holds),
        cmocka_unit_test(silence_and_late_reports_are_counted_when_they_arrive),
        cmocka_unit_test(all_at_once_only_watches),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
