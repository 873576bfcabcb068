/*
 * run-internal.h — what the two halves of `fleetsim run` share and no one
 * else sees: run.c (the fleet played forward in virtual time: the event
 * queue, the endpoint model, the emulation jobs) and cmd_run.c (the command
 * around it: its options, its inputs, the store's header, the summary and
 * the exit status).  The double underscore marks these names as internal.
 */
#ifndef FLEETSIM_RUN_INTERNAL_H
#define FLEETSIM_RUN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "fleet_gen.h"
#include "rollout.h"
#include "scenario.h"
#include "sim.h"
#include "store.h"

/* A timeline event; the queue orders them by (t, id, kind). */
typedef struct heap_event {
    int64_t t;
    uint32_t id;
    uint8_t kind;
} heap_event;

typedef struct event_heap {
    heap_event *items;
    size_t n, cap;
} event_heap;

/* A content file as the endpoints' disks hold it. */
typedef struct content_blob {
    char *ntpath;
    uint8_t *data;
    size_t size;
} content_blob;

typedef struct blob_list {
    content_blob *items;
    size_t count;
} blob_list;

typedef struct cohort_count {
    uint64_t endpoints, reached, crashed, looping, recovered;
} cohort_count;

struct endpoint_state;
struct job;

typedef struct run_ctx {
    /* Set up by cmd_run.c before run__play. */
    scenario *sc;
    fleet_gen *gen;
    store *st;
    uint64_t size;                   /* the whole fleet */
    uint64_t first, count;           /* this shard's endpoints */
    uint32_t shard, shards;
    uint32_t jobs;
    bool quiet;

    sim_profile **profiles;          /* loaded, in scenario attr order */
    size_t nprofiles_loaded;
    sim_profile **profile_of;        /* per scenario profile index */
    sim_image **image_of;            /* per scenario sensor index */
    char **image_path_of;            /* the files they came from, absolute */
    char *update_image_path;
    sim_image *update_image;         /* a driver the update installs; NULL: none */
    blob_list on_disk, update, revert;
    cohort_count *cohorts;           /* [profile * nsensors + sensor] */

    const scenario_plan *plan;       /* the rollout plan this run plays */
    rollout *ro;
    bool known_bad;                  /* the update is marked bad from known_bad_ms on */
    int64_t known_bad_ms;            /* the scenario's mark, or a rollback's */

    /* The loop's own (run.c). */
    uv_loop_t *loop;
    bool interrupted, failed;
    char failure[512];
    struct endpoint_state *eps;
    event_heap heap;
    struct job **free_jobs;
    size_t nfree, inflight, max_inflight;
    sim_engine **engines;
    size_t nengines_free;
    uv_mutex_t engine_lock;
    uv_idle_t pump;
    uv_timer_t progress;
    uv_signal_t sigint, sigterm;

    /* What the loop counted. */
    int64_t now;                     /* virtual time of the last event popped */
    uint64_t emulated, faults, crashed_eps, looping_eps, recovered_eps, unfaithful;
    uint64_t reached, revert_only;   /* got the update; got only the revert */
    uint64_t started_ns;
} run_ctx;

/*
 * Play the fleet: schedule every endpoint's first check-in (and the first
 * gate look), make --jobs engines and their jobs, and run the loop until
 * the queue is empty, the run failed (c->failed, c->failure) or it was
 * interrupted (c->interrupted).  The loop's wall time goes to *wall.
 * Returns -1 with `err` when the loop could not start: nothing ran.
 */
int run__play(run_ctx *c, double *wall, char *err, size_t errlen);
/* Free what run__play made; safe on a context it never saw. */
void run__release(run_ctx *c);

/* The cohort (profile × sensor) an endpoint belongs to. */
cohort_count *run__cohort_of(run_ctx *c, uint32_t id);
/* Virtual time `t` (ms after the scenario's start) as "YYYY-MM-DD HH:MM:SSZ". */
void run__format_vt(const run_ctx *c, int64_t t, char *buf, size_t n);

#endif
