/*
 * rollout.h — the staged-rollout controller of a run (issue 6).
 *
 * A plan (scenario.h) releases the update ring by ring.  The controller
 * knows which ring each endpoint is in, which rings are released, and what
 * telemetry has reached the vendor: for every endpoint that received the
 * update, when its first heartbeat after it arrived, and when its first
 * crash report arrived (a crashed machine reports only once it is up with
 * a network again; one stuck in a boot loop may never report).  At each
 * gate look it counts what had arrived by then and decides: advance to the
 * next ring after the bake time, hold (too little data), halt, or roll
 * back.  README, "Staged rollouts", states the statistics.
 *
 * The loop (run.c) calls it from its thread only.  Decisions depend on
 * other endpoints, so the loop makes each look only once every event before
 * it has been handled and every emulation has come back: the decisions are
 * then a pure function of the scenario and the seed, whatever --jobs.
 */
#ifndef FLEETSIM_FLEET_ROLLOUT_H
#define FLEETSIM_FLEET_ROLLOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "fleet_gen.h"
#include "scenario.h"
#include "store.h"

typedef struct rollout rollout;

typedef enum {
    ROLLOUT_NOTHING,      /* the look changed nothing */
    ROLLOUT_ADVANCED,     /* the next ring is released */
    ROLLOUT_HALTED,       /* no one else receives the update */
    ROLLOUT_ROLLED_BACK,  /* halted, and the update is marked bad for all */
} rollout_change;

/* For the whole fleet of `gen` (a rollout needs every endpoint). */
int rollout_create(const scenario *sc, const scenario_plan *plan, const fleet_gen *gen,
                   rollout **out, char *err, size_t errlen);
void rollout_destroy(rollout *r);

/* Write the rings (sizes, selectors) to the store. */
int rollout_write_rings(const rollout *r, store *st, char *err, size_t errlen);
/* The ring of an endpoint (0 for a plan without rings). */
uint32_t rollout_ring_of(const rollout *r, uint64_t id);
/* Whether the update is being released to this endpoint's ring. */
bool rollout_offered(const rollout *r, uint64_t id);
/* Whether the update's release has stopped (halted or rolled back). */
bool rollout_stopped(const rollout *r);

/* Telemetry: it received the update; its first heartbeat after that
 * arrived at t_ms (a healthy machine goes on heartbeating every check-in
 * interval until it goes down). */
void rollout_received(rollout *r, uint64_t id, int64_t t_ms);
void rollout_heartbeat(rollout *r, uint64_t id, int64_t t_ms);
/* It went down (first crash) at t_ms: its heartbeats stop there. */
void rollout_down(rollout *r, uint64_t id, int64_t t_ms);
/* Its first crash report arrived at t_ms (kept: the earliest). */
void rollout_crash_report(rollout *r, uint64_t id, int64_t t_ms);

/* When the next gate look is due; INT64_MAX when none is. */
int64_t rollout_next_look(const rollout *r);
/* Look at time t: decide, record the decision in the store, and say what
 * changed.  NULL store: decide without recording (tests). */
int rollout_look(rollout *r, int64_t t_ms, store *st, rollout_change *change, char *err,
                 size_t errlen);

/* For the run's summary and the report. */
typedef struct rollout_status {
    uint32_t rings, released;      /* rings of the plan, and released so far */
    bool halted, rolled_back;
    int64_t detected_ms, stopped_ms; /* first failing look; halt or rollback (-1: none) */
} rollout_status;
void rollout_get_status(const rollout *r, rollout_status *s);

#endif
