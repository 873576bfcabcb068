/*
 * run.c — `fleetsim run SCENARIO`: the fleet played forward in virtual time.
 *
 * The loop thread owns everything but the emulation: a heap of timeline
 * events ordered by (virtual time, endpoint id, kind), the endpoints' small
 * state records, and the store.  Emulation jobs go to libuv's thread pool
 * (uv_queue_work), each taking one of `--jobs` engines from a pool so that
 * every engine is reused across endpoints (DESIGN.md, decision 1); outcomes
 * come back on the loop, are written to the store and schedule what the
 * endpoint does next.
 *
 * The endpoint model, per boot (issue 4):
 *   - an endpoint checks in every `checkin` interval from a phase of its
 *     own; at a check-in after the release, if its region is online at that
 *     hour, it receives the current update (the revert once it is out) and
 *     the sensor loads it live: one emulation, the update arriving as a
 *     file write while the OS keeps producing events;
 *   - a crash reboots it; at boot the sensor loads every file on disk again,
 *     so it crashes at the first triggering event of that boot — unless its
 *     network came up first, after the vendor marked the file known-bad, and
 *     its region was online: then the sensor drops the file (a clean boot);
 *   - endpoints still looping `repair.after` their first crash are repaired
 *     by an operator (a share of them), and boot clean.
 *
 * Determinism (decision 4): a job's inputs are a pure function of the
 * scenario, the endpoint and its boot; endpoints do not influence each other
 * in this model, so the order in which jobs finish changes nothing, and the
 * store is keyed by natural keys.  Rollout gates (issue 6) will make
 * endpoints depend on each other's telemetry; they will need the loop to
 * hold events back until the outcomes they could depend on are in.
 */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "fleet.h"
#include "report.h"
#include "fleet_gen.h"
#include "rollout.h"
#include "scenario.h"
#include "store.h"

#ifndef FLEETSIM_IMAGE_DIR
#define FLEETSIM_IMAGE_DIR "images"
#endif
#ifndef FLEETSIM_CONTENT_DIR
#define FLEETSIM_CONTENT_DIR "scenarios/content"
#endif
#ifndef FLEETSIM_PROFILE_DIR
#define FLEETSIM_PROFILE_DIR "sim/profiles"
#endif
#ifndef FLEETSIM_VERSION
#define FLEETSIM_VERSION "0.1.0"
#endif

static const char usage[] =
    "fleetsim run SCENARIO [--fleet-size N] [--seed N] [--jobs N] [--db PATH] [--shard K/N]\n"
    "             [--gate EXPR] [--plan NAME | --compare-plans] [--images DIR] [--profiles DIR]\n"
    "             [--content-dir DIR] [--quiet]";

#define MAX_JOB_FILES 16
#define MAX_JOB_EVENTS 512
/*
 * Consecutive crashing boots after which a machine stays at the recovery
 * screen until someone repairs it: the vendor's July 2024 guidance was that
 * up to 15 reboots could let the sensor fetch the fix first.
 */
#define LOOP_LIMIT 15
#define REBOOT_DEFAULT_MS 45000

/* ---- the model's state ----------------------------------------------------- */

enum { HOLDS_NONE, HOLDS_UPDATE, HOLDS_REVERT };     /* content beyond on-disk */
enum { EV_CHECKIN, EV_BOOT, EV_GATE };               /* timeline event kinds */
#define GATE_ID UINT32_MAX /* a gate look's id: after every endpoint at its time */

typedef struct endpoint_state {
    uint8_t holds;           /* HOLDS_* */
    bool crashed, looping, recovered, repaired, busy, stuck;
    uint16_t boots;          /* emulated runs so far: the store's boot key */
    uint16_t streak;         /* consecutive crashing boots */
    uint16_t checkins;
    int64_t first_crash_ms;
} endpoint_state;

typedef struct heap_event {
    int64_t t;
    uint32_t id;
    uint8_t kind;
} heap_event;

typedef struct event_heap {
    heap_event *items;
    size_t n, cap;
} event_heap;

static bool before(const heap_event *a, const heap_event *b)
{
    if (a->t != b->t)
        return a->t < b->t;
    if (a->id != b->id)
        return a->id < b->id;
    return a->kind < b->kind;
}

static int heap_push(event_heap *h, heap_event ev)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 4096;
        heap_event *items = sim_realloc(h->items, cap * sizeof *items);
        if (!items)
            return SIM_ENOMEM;
        h->items = items;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && before(&ev, &h->items[(i - 1) / 2])) {
        h->items[i] = h->items[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->items[i] = ev;
    return 0;
}

static heap_event heap_pop(event_heap *h)
{
    heap_event top = h->items[0], last = h->items[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && before(&h->items[c + 1], &h->items[c]))
            c++;
        if (!before(&h->items[c], &last))
            break;
        h->items[i] = h->items[c];
        i = c;
    }
    if (h->n)
        h->items[i] = last;
    return top;
}

/* ---- inputs ---------------------------------------------------------------- */

typedef struct content_blob {
    char *ntpath;
    uint8_t *data;
    size_t size;
} content_blob;

typedef struct blob_list {
    content_blob *items;
    size_t count;
} blob_list;

typedef enum { JOB_RECEIVE, JOB_BOOT, JOB_CLEAN_BOOT } job_kind;

struct run_ctx;

typedef struct job {
    uv_work_t req;
    struct run_ctx *ctx;
    job_kind kind;
    uint32_t id;
    uint32_t boot;
    int64_t t;               /* virtual time the run starts (boot or receipt) */
    uint64_t uptime_ms;      /* RECEIVE: ms since boot when the update arrives */
    uint8_t holds;
    sim_run run;
    sim_file files[MAX_JOB_FILES];
    sim_event events[MAX_JOB_EVENTS];
    sim_outcome out;
    int rc;
    char err[256];
} job;

typedef struct cohort_count {
    uint64_t endpoints, reached, crashed, looping, recovered;
} cohort_count;

typedef struct run_ctx {
    uv_loop_t *loop;
    scenario *sc;
    fleet_gen *gen;
    store *st;
    uint64_t size;                   /* the whole fleet */
    uint64_t first, count;           /* this shard's endpoints */
    uint32_t shard, shards;
    uint32_t jobs;
    bool quiet, interrupted, failed;
    char failure[512];

    sim_profile **profiles;          /* loaded, in scenario attr order */
    size_t nprofiles_loaded;
    sim_profile **profile_of;        /* per scenario profile index */
    sim_image **image_of;            /* per scenario sensor index */
    char **image_path_of;            /* the files they came from, absolute */
    char *update_image_path;
    sim_image *update_image;         /* a driver the update installs; NULL: none */
    blob_list on_disk, update, revert;

    endpoint_state *eps;
    event_heap heap;
    job **free_jobs;
    size_t nfree, inflight, max_inflight;
    sim_engine **engines;
    size_t nengines_free;
    uv_mutex_t engine_lock;
    uv_idle_t pump;
    uv_timer_t progress;
    uv_signal_t sigint, sigterm;

    const scenario_plan *plan;       /* the rollout plan this run plays */
    rollout *ro;
    bool known_bad;                  /* the update is marked bad from known_bad_ms on */
    int64_t known_bad_ms;            /* the scenario's mark, or a rollback's */

    int64_t now;                     /* virtual time of the last event popped */
    uint64_t emulated, faults, reached, crashed_eps, looping_eps, recovered_eps, unfaithful;
    cohort_count *cohorts;           /* [profile * nsensors + sensor] */
    uint64_t started_ns;
} run_ctx;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A uniform draw in [0, 1) from (endpoint seed, purpose, n). */
static double draw(const run_ctx *c, uint32_t id, uint64_t purpose, uint64_t n)
{
    uint64_t x = fleet_mix64(fleet_endpoint_seed(c->sc->seed, id) ^
                             fleet_mix64(purpose * 0x9E3779B97F4A7C15ull + n));
    return (double)(x >> 11) / 9007199254740992.0;
}

static uint64_t draw_u64(const run_ctx *c, uint32_t id, uint64_t purpose, uint64_t n)
{
    return fleet_mix64(fleet_endpoint_seed(c->sc->seed, id) ^
                       fleet_mix64(purpose * 0xD1B54A32D192ED03ull + n));
}

enum { DRAW_PHASE = 1, DRAW_ONLINE, DRAW_JITTER, DRAW_UPTIME, DRAW_REBOOT,
       DRAW_NETWORK, DRAW_NET_ONLINE, DRAW_REPAIR };

static void fail(run_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(run_ctx *c, const char *fmt, ...)
{
    va_list ap;
    if (c->failed)
        return;
    c->failed = true;
    va_start(ap, fmt);
    vsnprintf(c->failure, sizeof c->failure, fmt, ap);
    va_end(ap);
}

static int read_file(const char *path, uint8_t **data, size_t *size, char *err,
                     size_t errlen)
{
    int rc = sim_read_file(path, 0, data, size);
    if (rc < 0)
        snprintf(err, errlen, "%s: %s", path,
                 rc == SIM_ENOMEM ? "out of memory" : strerror(errno));
    return rc;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int load_blobs(run_ctx *c, const scenario_content_list *list, const char *module,
                      blob_list *out, char *err, size_t errlen)
{
    out->items = sim_calloc(list->count ? list->count : 1, sizeof *out->items);
    if (!out->items)
        return SIM_ENOMEM;
    for (size_t i = 0; i < list->count; i++) {
        content_blob *b = &out->items[i];
        char nt[512];
        int rc = read_file(list->items[i].path, &b->data, &b->size, err, errlen);
        if (rc < 0)
            return rc;
        out->count++;
        if (c->sc->install_dir && c->sc->install_dir[0])
            snprintf(nt, sizeof nt, "%s%s%s", c->sc->install_dir,
                     c->sc->install_dir[strlen(c->sc->install_dir) - 1] == '\\' ? "" : "\\",
                     base_name(list->items[i].path));
        else
            snprintf(nt, sizeof nt, "\\SystemRoot\\System32\\drivers\\%s\\%s", module,
                     base_name(list->items[i].path));
        b->ntpath = sim_strdup(nt);
        if (!b->ntpath)
            return SIM_ENOMEM;
    }
    return 0;
}

static void free_blobs(blob_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        sim_free(l->items[i].ntpath);
        sim_free(l->items[i].data);
    }
    sim_free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* ---- building a job --------------------------------------------------------- */

static size_t add_files(sim_file *files, size_t n, const blob_list *l, uint64_t at_ms)
{
    for (size_t i = 0; i < l->count && n < MAX_JOB_FILES; i++)
        files[n++] = (sim_file){l->items[i].ntpath, l->items[i].data, l->items[i].size,
                                at_ms};
    return n;
}

/*
 * Runs on a worker thread: the endpoint's own event stream, the run, and
 * the emulation on a pooled engine.
 */
static void job_work(uv_work_t *req)
{
    job *j = req->data;
    run_ctx *c = j->ctx;
    fleet_endpoint fe;
    size_t nev = 0;

    fleet_gen_endpoint(c->gen, j->id, &fe);
    const sim_profile *pr = c->profile_of[fe.profile];
    uint64_t seed = fleet_endpoint_seed(c->sc->seed, j->id) ^ fleet_mix64(j->boot + 1);
    nev = sim_profile_events(pr, seed, j->events, MAX_JOB_EVENTS);
    if (j->kind == JOB_RECEIVE) {
        /* The update arrives while the machine runs: a file write, then the
         * OS goes on producing events (the boot stream's pattern again). */
        const blob_list *l = j->holds == HOLDS_REVERT ? &c->revert : &c->update;
        for (size_t i = 0; i < l->count && nev < MAX_JOB_EVENTS; i++)
            j->events[nev++] = (sim_event){SIM_EVENT_FILE_WRITE, j->uptime_ms, 4, 0,
                                           l->items[i].ntpath};
        size_t base = nev;
        sim_event later[MAX_JOB_EVENTS];
        size_t nlater = sim_profile_events(pr, seed ^ 0xA5A5, later, MAX_JOB_EVENTS);
        for (size_t i = 0; i < nlater && base + i < MAX_JOB_EVENTS; i++) {
            later[i].at_ms += j->uptime_ms + 1000;
            j->events[nev++] = later[i];
        }
    }

    size_t nfiles = add_files(j->files, 0, &c->on_disk, 0);
    if (j->kind == JOB_RECEIVE)
        nfiles = add_files(j->files, nfiles,
                           j->holds == HOLDS_REVERT ? &c->revert : &c->update,
                           j->uptime_ms);
    else if (j->kind == JOB_BOOT)
        nfiles = add_files(j->files, nfiles,
                           j->holds == HOLDS_REVERT ? &c->revert : &c->update, 0);
    else if (j->holds == HOLDS_REVERT)
        nfiles = add_files(j->files, nfiles, &c->revert, 0);

    /* A driver update replaces the sensor's image from its receipt on (its
     * service starts at once and at every boot), until a revert. */
    const sim_image *image = c->image_of[fe.sensor];
    if (c->update_image && j->holds == HOLDS_UPDATE)
        image = c->update_image;
    j->run = (sim_run){
        .image = image,
        .profile = pr,
        .seed = seed,
        .files = j->files,
        .nfiles = nfiles,
        .events = j->events,
        .nevents = nev,
        .boot_time = scenario_filetime(c->sc, j->t - (int64_t)j->uptime_ms),
    };

    uv_mutex_lock(&c->engine_lock);
    sim_engine *engine = c->engines[--c->nengines_free];
    uv_mutex_unlock(&c->engine_lock);
    j->rc = sim_engine_run(engine, &j->run, &j->out, j->err, sizeof j->err);
    uv_mutex_lock(&c->engine_lock);
    c->engines[c->nengines_free++] = engine;
    uv_mutex_unlock(&c->engine_lock);
}

static void pump_start(run_ctx *c);

static void timeline(run_ctx *c, uint32_t id, int64_t t, store_timeline_kind kind,
                     const char *detail)
{
    char err[512];
    if (store_write_timeline_event(c->st, id, t, kind, detail, err, sizeof err) < 0)
        fail(c, "%s", err);
}

static cohort_count *cohort_of(run_ctx *c, uint32_t id)
{
    fleet_endpoint fe;
    fleet_gen_endpoint(c->gen, id, &fe);
    return &c->cohorts[fe.profile * c->sc->attrs[SCENARIO_ATTR_SENSOR].count + fe.sensor];
}

static uint64_t reboot_delay(run_ctx *c, uint32_t id, uint32_t boot)
{
    fleet_endpoint fe;
    fleet_gen_endpoint(c->gen, id, &fe);
    if (c->sc->has_boot_time)
        return scenario_dist_draw(&c->sc->boot_time, draw_u64(c, id, DRAW_REBOOT, boot));
    uint64_t base = c->profile_of[fe.profile]->boot_ms;
    if (!base)
        base = REBOOT_DEFAULT_MS;
    /* A reboot: the bugcheck screen and dump (~10-30 s), then the boot. */
    return base + 10000 + (uint64_t)(20000 * draw(c, id, DRAW_REBOOT, boot));
}

static bool online_at(run_ctx *c, uint32_t id, uint64_t purpose, uint64_t n, int64_t t)
{
    fleet_endpoint fe;
    fleet_gen_endpoint(c->gen, id, &fe);
    return draw(c, id, purpose, n) < scenario_online_share(c->sc, fe.region, t);
}

static int schedule(run_ctx *c, int64_t t, uint32_t id, uint8_t kind)
{
    if (t > (int64_t)c->sc->duration_ms)
        return 0; /* past the end of the run */
    int rc = heap_push(&c->heap, (heap_event){t, id, kind});
    if (rc < 0)
        fail(c, "out of memory for the event queue");
    return rc;
}

/* When the run's crash happened: the event that faulted, relative to its start. */
static uint64_t crash_offset(const job *j)
{
    uint32_t k = j->out.events_delivered;
    if (k == 0 || k > j->run.nevents)
        return 0;
    uint64_t at = j->run.events[k - 1].at_ms;
    return at > j->uptime_ms ? at - j->uptime_ms : 0;
}

static void telemetry(run_ctx *c, const job *j, bool crashed, int64_t t_out);

static void job_done(uv_work_t *req, int status)
{
    job *j = req->data;
    run_ctx *c = j->ctx;
    endpoint_state *e = &c->eps[j->id];
    char err[512];

    c->inflight--;
    e->busy = false;
    if (status == UV_ECANCELED || j->rc < 0) {
        if (j->rc < 0)
            fail(c, "endpoint %u: %s", j->id, j->err);
        c->free_jobs[c->nfree++] = j;
        pump_start(c);
        return;
    }
    c->emulated++;
    /* An export fleetsim lacks is a gap of ours, not a crash of the guest:
     * the endpoint goes on, and the run ends unfaithful (exit 3). */
    bool crashed = j->out.kind == SIM_OUTCOME_BUGCHECK || j->out.kind == SIM_OUTCOME_HANG;
    c->unfaithful += j->out.kind == SIM_OUTCOME_UNSUPPORTED_API;
    int64_t t_out = j->t + (int64_t)crash_offset(j);
    cohort_count *cc = cohort_of(c, j->id);

    if (crashed && j->kind == JOB_BOOT && j->holds == HOLDS_UPDATE && c->known_bad) {
        /* The race of July 2024: network up before the triggering event,
         * after the known-bad mark, region online → the sensor drops it. */
        uint64_t net = scenario_dist_draw(&c->sc->boot_to_network,
                                          draw_u64(c, j->id, DRAW_NETWORK, j->boot));
        int64_t net_up = j->t + (int64_t)net;
        if (net < crash_offset(j) && net_up >= c->known_bad_ms &&
            online_at(c, j->id, DRAW_NET_ONLINE, j->boot, net_up)) {
            timeline(c, j->id, net_up, STORE_TIMELINE_KNOWN_BAD, "the sensor learned the file is known-bad before the trigger");
            j->kind = JOB_CLEAN_BOOT;
            j->holds = e->holds = HOLDS_NONE;
            j->out.kind = SIM_OUTCOME_OK;
            c->inflight++;
            e->busy = true;
            c->emulated--;
            uv_queue_work(c->loop, &j->req, job_work, job_done);
            return;
        }
    }

    store_outcome_at at = {j->id, j->boot, crashed ? t_out : j->t, j->run.image->name, true,
                           j->run.seed, j->kind == JOB_RECEIVE ? "live" : "boot"};
    if (store_write_outcome(c->st, &at, &j->out, err, sizeof err) < 0)
        fail(c, "%s", err);
    timeline(c, j->id, j->t, STORE_TIMELINE_EMULATED, j->kind == JOB_RECEIVE ? "update loaded live" : "boot");
    e->boots++;
    telemetry(c, j, crashed, t_out);

    if (crashed) {
        char detail[160];
        snprintf(detail, sizeof detail, "%s 0x%X", sim_outcome_name(j->out.kind), j->out.bugcheck);
        timeline(c, j->id, t_out, STORE_TIMELINE_CRASHED, detail);
        c->faults++;
        if (!e->crashed) {
            e->crashed = true;
            e->first_crash_ms = t_out;
            rollout_down(c->ro, j->id, t_out);
            c->crashed_eps++;
            cc->crashed++;
        }
        e->streak++;
        if (e->streak == 2 && !e->looping) {
            e->looping = true;
            c->looping_eps++;
            cc->looping++;
            timeline(c, j->id, t_out, STORE_TIMELINE_BOOT_LOOP, NULL);
        }
        if (e->streak < LOOP_LIMIT) {
            schedule(c, t_out + (int64_t)reboot_delay(c, j->id, j->boot), j->id, EV_BOOT);
        } else {
            e->stuck = true;
            timeline(c, j->id, t_out, STORE_TIMELINE_OFFLINE, "stopped at the recovery screen");
            if (c->sc->has_repair && draw(c, j->id, DRAW_REPAIR, 0) < c->sc->repair_share) {
                int64_t due = e->first_crash_ms + (int64_t)c->sc->repair_after_ms;
                schedule(c, due > t_out ? due : t_out + 60000, j->id, EV_BOOT);
            }
        }
    } else {
        if (e->crashed && !e->recovered) {
            e->recovered = true;
            c->recovered_eps++;
            cc->recovered++;
            timeline(c, j->id, j->t, STORE_TIMELINE_RECOVERED, NULL);
        }
        e->streak = 0;
    }
    c->free_jobs[c->nfree++] = j;
    pump_start(c);
}

static void dispatch(run_ctx *c, job_kind kind, uint32_t id, int64_t t, uint64_t uptime)
{
    endpoint_state *e = &c->eps[id];
    job *j = c->free_jobs[--c->nfree];

    memset(&j->run, 0, sizeof j->run);
    j->ctx = c;
    j->kind = kind;
    j->id = id;
    j->boot = e->boots;
    j->t = t;
    j->uptime_ms = uptime;
    j->holds = e->holds;
    j->rc = 0;
    j->req.data = j;
    e->busy = true;
    c->inflight++;
    uv_queue_work(c->loop, &j->req, job_work, job_done);
}

/* Whether the next event must wait for emulations in flight. */
static bool waiting(const run_ctx *c)
{
    const heap_event *top = &c->heap.items[0];
    return top->kind == EV_GATE ? c->inflight > 0 : c->eps[top->id].busy;
}

/*
 * What reaches the vendor of an emulation's outcome (rollout.h): after an
 * update arrives live, a healthy sensor heartbeats at its next check-in;
 * a crashed machine reports once a boot brings its network up before the
 * boot's own crash (or a boot is clean).  A machine looping with a slow
 * network never gets a report out.
 */
static void telemetry(run_ctx *c, const job *j, bool crashed, int64_t t_out)
{
    const endpoint_state *e = &c->eps[j->id];
    if (j->kind == JOB_RECEIVE) {
        int64_t beat = j->t + (int64_t)c->sc->checkin_interval_ms;
        if (!crashed || t_out > beat)
            rollout_heartbeat(c->ro, j->id, beat);
        return;
    }
    if (!e->crashed)
        return;
    uint64_t net = scenario_dist_draw(&c->sc->boot_to_network,
                                      draw_u64(c, j->id, DRAW_NETWORK, j->boot));
    int64_t net_up = j->t + (int64_t)net;
    if ((!crashed || net < crash_offset(j)) &&
        online_at(c, j->id, DRAW_NET_ONLINE, j->boot, net_up))
        rollout_crash_report(c->ro, j->id, net_up);
}

/* A gate look: decide, and act on what the decision changed. */
static void gate_look(run_ctx *c, int64_t t)
{
    char err[512];
    rollout_change change;
    if (rollout_look(c->ro, t, c->st, &change, err, sizeof err) < 0) {
        fail(c, "%s", err);
        return;
    }
    if (change == ROLLOUT_ROLLED_BACK && (!c->known_bad || t < c->known_bad_ms)) {
        c->known_bad = true;
        c->known_bad_ms = t;
    }
    int64_t next = rollout_next_look(c->ro);
    if (next != INT64_MAX)
        schedule(c, next, GATE_ID, EV_GATE);
}

static void handle(run_ctx *c, heap_event ev)
{
    const scenario *sc = c->sc;

    c->now = ev.t;
    if (ev.kind == EV_GATE) {
        gate_look(c, ev.t);
        return;
    }
    endpoint_state *e = &c->eps[ev.id];
    if (ev.kind == EV_CHECKIN) {
        uint16_t n = e->checkins++;
        if (e->holds != HOLDS_NONE)
            return;
        bool reverted = sc->has_revert && ev.t >= sc->revert_ms;
        if (!reverted && rollout_stopped(c->ro)) {
            /* Halted: the update reaches no one else; the vendor's revert,
             * once out, still goes to everyone. */
            if (sc->has_revert)
                schedule(c, sc->revert_ms + (ev.t % (int64_t)sc->checkin_interval_ms), ev.id,
                         EV_CHECKIN);
            return;
        }
        if (!online_at(c, ev.id, DRAW_ONLINE, n, ev.t) ||
            (!reverted && !rollout_offered(c->ro, ev.id))) {
            uint64_t jitter = sc->checkin_jitter_ms
                                  ? draw_u64(c, ev.id, DRAW_JITTER, n) % sc->checkin_jitter_ms
                                  : 0;
            schedule(c, ev.t + (int64_t)(sc->checkin_interval_ms + jitter), ev.id, EV_CHECKIN);
            return;
        }
        e->holds = reverted ? HOLDS_REVERT : HOLDS_UPDATE;
        c->reached++;
        cohort_of(c, ev.id)->reached++;
        timeline(c, ev.id, ev.t, STORE_TIMELINE_RECEIVED, reverted ? "revert" : "update");
        if (!reverted)
            rollout_received(c->ro, ev.id, ev.t);
        uint64_t uptime = 300000 + draw_u64(c, ev.id, DRAW_UPTIME, 0) % (8 * 3600000ull);
        dispatch(c, JOB_RECEIVE, ev.id, ev.t, uptime);
        return;
    }
    /* A reboot after a crash. */
    timeline(c, ev.id, ev.t, STORE_TIMELINE_REBOOTED, NULL);
    if (sc->has_repair && e->crashed && !e->repaired &&
        ev.t >= e->first_crash_ms + (int64_t)sc->repair_after_ms &&
        draw(c, ev.id, DRAW_REPAIR, 0) < sc->repair_share) {
        e->repaired = true;
        e->stuck = false;
        e->holds = HOLDS_NONE;
        timeline(c, ev.id, ev.t, STORE_TIMELINE_REPAIRED, "an operator deleted the file");
        dispatch(c, JOB_CLEAN_BOOT, ev.id, ev.t, 0);
        return;
    }
    dispatch(c, e->holds == HOLDS_NONE ? JOB_CLEAN_BOOT : JOB_BOOT, ev.id, ev.t, 0);
}

static void on_pump(uv_idle_t *idle)
{
    run_ctx *c = idle->data;

    while (!c->failed && !c->interrupted && c->heap.n && c->nfree) {
        heap_event ev = c->heap.items[0];
        if (ev.kind == EV_GATE ? c->inflight > 0 : c->eps[ev.id].busy)
            break; /* a chain in flight, or a gate waiting for every outcome before it */
        handle(c, heap_pop(&c->heap));
    }
    if (c->failed || c->interrupted || !c->heap.n || !c->nfree || waiting(c))
        uv_idle_stop(idle);
    if ((c->failed || c->interrupted || !c->heap.n) && c->inflight == 0) {
        uv_timer_stop(&c->progress);
        uv_close((uv_handle_t *)&c->sigint, NULL);
        uv_close((uv_handle_t *)&c->sigterm, NULL);
        uv_close((uv_handle_t *)&c->progress, NULL);
        uv_close((uv_handle_t *)&c->pump, NULL);
    }
}

static void pump_start(run_ctx *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->pump))
        uv_idle_start(&c->pump, on_pump);
}

static void format_vt(const run_ctx *c, int64_t t, char *buf, size_t n)
{
    time_t secs = (time_t)((c->sc->start_ms + t) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(buf, n, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static void on_progress(uv_timer_t *timer)
{
    run_ctx *c = timer->data;
    char vt[32];
    double secs = (double)(mono_ns() - c->started_ns) / 1e9;

    format_vt(c, c->now, vt, sizeof vt);
    fprintf(stderr,
            "\r%s  reached %" PRIu64 "  emulated %" PRIu64 "  crashed %" PRIu64
            "  looping %" PRIu64 "  %.0f runs/s   ",
            vt, c->reached, c->emulated, c->crashed_eps, c->looping_eps,
            secs > 0 ? (double)c->emulated / secs : 0.0);
    fflush(stderr);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    run_ctx *c = sig->data;
    (void)signum;
    if (!c->interrupted && !c->quiet)
        fprintf(stderr, "\nfleetsim: interrupted; finishing %zu runs in flight\n", c->inflight);
    c->interrupted = true;
    pump_start(c);
}

/* ---- setup ------------------------------------------------------------------- */

typedef struct run_args {
    const char *scenario, *db, *images, *profiles, *content_dir, *shard, *gate, *plan;
    bool compare_plans;
    uint64_t fleet_size, seed, jobs;
    bool has_fleet_size, has_seed, quiet;
} run_args;

static int parse_args(int argc, char **argv, run_args *a)
{
    static const struct option opts[] = {
        {"fleet-size", required_argument, NULL, 'n'}, {"seed", required_argument, NULL, 's'},
        {"jobs", required_argument, NULL, 'j'},       {"db", required_argument, NULL, 'd'},
        {"images", required_argument, NULL, 'i'},     {"profiles", required_argument, NULL, 'p'},
        {"content-dir", required_argument, NULL, 'c'}, {"quiet", no_argument, NULL, 'q'},
        {"shard", required_argument, NULL, 'S'},      {"gate", required_argument, NULL, 'g'},
        {"plan", required_argument, NULL, 'P'},       {"compare-plans", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0},
    };
    int opt;

    memset(a, 0, sizeof *a);
    a->jobs = 2;
    optind = 0; /* glibc: start over */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":j:q", opts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            if (!fleet_parse_u64(optarg, &a->fleet_size) || a->fleet_size == 0)
                return fleet_usage_error(usage, "--fleet-size: not a positive number: %s", optarg);
            a->has_fleet_size = true;
            break;
        case 's':
            if (!fleet_parse_u64(optarg, &a->seed))
                return fleet_usage_error(usage, "--seed: not a number: %s", optarg);
            a->has_seed = true;
            break;
        case 'j':
            if (!fleet_parse_u64(optarg, &a->jobs) || a->jobs == 0 || a->jobs > 256)
                return fleet_usage_error(usage, "--jobs: want 1..256, got %s", optarg);
            break;
        case 'd': a->db = optarg; break;
        case 'i': a->images = optarg; break;
        case 'p': a->profiles = optarg; break;
        case 'c': a->content_dir = optarg; break;
        case 'S': a->shard = optarg; break;
        case 'g': {
            report_gate g;
            char err[512];
            if (report_gate_parse(optarg, &g, err, sizeof err) < 0)
                return fleet_usage_error(usage, "--gate: %s", err);
            a->gate = optarg;
            break;
        }
        case 'q': a->quiet = true; break;
        case 'P': a->plan = optarg; break;
        case 'C': a->compare_plans = true; break;
        case 'h':
            printf("usage: %s\n\n"
                   "Play SCENARIO's fleet forward in virtual time: endpoints check in, receive\n"
                   "the update (by the rollout plan's rings), run the driver on it in emulation,\n"
                   "crash, reboot, loop or recover; every outcome goes to one SQLite store.\n\n"
                   "  --fleet-size N, --seed N   override the scenario's\n"
                   "  --jobs N          worker threads, each with a reused engine (default 2);\n"
                   "                    the results are the same for any N\n"
                   "  --db PATH         the store (default <scenario name>.db; replaced)\n"
                   "  --shard K/N       only the K-th of N slices of the fleet (fleetsim merge\n"
                   "                    joins the shards' stores)\n"
                   "  --gate EXPR       the limits the exit status answers to (fleetsim report\n"
                   "                    --help; default max-faults=0)\n"
                   "  --plan NAME       the scenario's rollout plan to play (default its first)\n"
                   "  --compare-plans   play every plan and all at once, a store each, and\n"
                   "                    print them side by side\n"
                   "  --images, --profiles, --content-dir DIR   where to find them\n"
                   "  --quiet           no progress line\n\n"
                   "Exit status: 0 the gate passed, 1 it failed, 2 bad scenario or usage,\n"
                   "3 the run failed or rests on an unimplemented export, 130 interrupted.\n",
                   usage);
            return -1;
        default:
            return fleet_bad_option(usage, argv, optopt);
        }
    }
    if (optind + 1 != argc)
        return fleet_usage_error(usage, optind >= argc ? "no scenario given" : "too many arguments");
    a->scenario = argv[optind];
    return 0;
}

static int setup(run_ctx *c, const run_args *a, char *err, size_t errlen)
{
    const char *profile_dir = a->profiles ? a->profiles
                              : getenv("FLEETSIM_PROFILES") ? getenv("FLEETSIM_PROFILES")
                                                            : FLEETSIM_PROFILE_DIR;
    const char *image_dir = a->images ? a->images
                            : getenv("FLEETSIM_IMAGES") ? getenv("FLEETSIM_IMAGES")
                                                        : FLEETSIM_IMAGE_DIR;
    const char *content_dir = a->content_dir ? a->content_dir : FLEETSIM_CONTENT_DIR;
    int rc;

    if ((rc = sim_profile_load_dir(profile_dir, &c->profiles, &c->nprofiles_loaded, err,
                                   errlen)) < 0)
        return rc;
    const char **names = sim_calloc(c->nprofiles_loaded + 1, sizeof *names);
    if (!names)
        return SIM_ENOMEM;
    for (size_t i = 0; i < c->nprofiles_loaded; i++)
        names[i] = c->profiles[i]->name;
    const char *dirs[1] = {content_dir};
    scenario_catalog cat = {names, c->nprofiles_loaded, NULL, 0, dirs, 1};
    rc = scenario_check(c->sc, &cat, err, errlen);
    if (rc == 0)
        rc = scenario_resolve_content(c->sc, &cat, err, errlen);
    sim_free(names);
    if (rc < 0)
        return rc;

    const scenario_names *pn = &c->sc->attrs[SCENARIO_ATTR_PROFILE];
    const scenario_names *sn = &c->sc->attrs[SCENARIO_ATTR_SENSOR];
    c->profile_of = sim_calloc(pn->count + 1, sizeof *c->profile_of);
    c->image_of = sim_calloc(sn->count + 1, sizeof *c->image_of);
    c->image_path_of = sim_calloc(sn->count + 1, sizeof *c->image_path_of);
    c->cohorts = sim_calloc(pn->count * sn->count + 1, sizeof *c->cohorts);
    if (!c->profile_of || !c->image_of || !c->image_path_of || !c->cohorts)
        return SIM_ENOMEM;
    for (size_t i = 0; i < pn->count; i++)
        for (size_t k = 0; k < c->nprofiles_loaded; k++)
            if (strcmp(c->profiles[k]->name, pn->items[i].name) == 0)
                c->profile_of[i] = c->profiles[k];
    for (size_t i = 0; i < sn->count; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/sensor-%s.sys", image_dir, sn->items[i].name);
        if ((rc = sim_image_open(path, &c->image_of[i], err, errlen)) < 0) {
            size_t len = strlen(err);
            snprintf(err + len, errlen - len, " (sensor version \"%s\" of %s)",
                     sn->items[i].name, c->sc->path);
            return rc;
        }
        if (!(c->image_path_of[i] = realpath(path, NULL)))
            return SIM_ENOMEM;
    }
    if (c->sc->update_image) {
        char path[1024];
        if (strchr(c->sc->update_image, '/'))
            snprintf(path, sizeof path, "%s", c->sc->update_image);
        else
            snprintf(path, sizeof path, "%s/%s", image_dir, c->sc->update_image);
        if ((rc = sim_image_open(path, &c->update_image, err, errlen)) < 0) {
            size_t len = strlen(err);
            snprintf(err + len, errlen - len, " (update.image of %s)", c->sc->path);
            return rc;
        }
        if (!(c->update_image_path = realpath(path, NULL)))
            return SIM_ENOMEM;
    }
    const char *module = sn->count ? c->image_of[0]->module : "sensor";
    if ((rc = load_blobs(c, &c->sc->on_disk, module, &c->on_disk, err, errlen)) < 0 ||
        (rc = load_blobs(c, &c->sc->update_content, module, &c->update, err, errlen)) < 0 ||
        (rc = load_blobs(c, &c->sc->revert_content, module, &c->revert, err, errlen)) < 0)
        return rc;
    return 0;
}

static int write_header(run_ctx *c, int argc, char **argv, const char *text, char *err,
                        size_t errlen)
{
    char cmd[2048] = "fleetsim";
    size_t o = strlen(cmd);
    for (int i = 0; i < argc && o + 2 < sizeof cmd; i++)
        o += (size_t)snprintf(cmd + o, sizeof cmd - o, " %s", argv[i]);
    store_run r = {
        .scenario_name = c->sc->name, .scenario_path = c->sc->path, .scenario_text = text,
        .seed = c->sc->seed, .fleet_size = c->size, .shard_index = c->shard,
        .shard_count = c->shards,
        .fleetsim_version = FLEETSIM_VERSION, .command_line = cmd, .plan = c->plan->name,
        .virtual_start_ms = c->sc->start_ms, .duration_ms = c->sc->duration_ms,
    };
    int rc = store_write_run(c->st, &r, err, errlen);
    for (size_t i = 0; rc == 0 && i < c->sc->attrs[SCENARIO_ATTR_SENSOR].count; i++) {
        const sim_image *im = c->image_of[i];
        store_artifact art = {STORE_ARTIFACT_IMAGE, "sensor", im->name, c->image_path_of[i],
                              im->sha256,
                              im->file_size, c->sc->attrs[SCENARIO_ATTR_SENSOR].items[i].name};
        rc = store_write_artifact(c->st, &art, err, errlen);
    }
    if (rc == 0 && c->update_image) {
        const sim_image *im = c->update_image;
        store_artifact art = {STORE_ARTIFACT_IMAGE, "update", im->name, c->update_image_path,
                              im->sha256,
                              im->file_size, NULL};
        rc = store_write_artifact(c->st, &art, err, errlen);
    }
    const blob_list *lists[3] = {&c->on_disk, &c->update, &c->revert};
    const char *roles[3] = {"installed", "update", "revert"};
    const scenario_content_list *src[3] = {&c->sc->on_disk, &c->sc->update_content,
                                           &c->sc->revert_content};
    for (int l = 0; rc == 0 && l < 3; l++)
        for (size_t i = 0; rc == 0 && i < lists[l]->count; i++) {
            uint8_t sha[32];
            sim_sha256(lists[l]->items[i].data, lists[l]->items[i].size, sha);
            store_artifact art = {STORE_ARTIFACT_CONTENT, roles[l],
                                  base_name(src[l]->items[i].path), src[l]->items[i].path,
                                  sha, lists[l]->items[i].size, NULL};
            rc = store_write_artifact(c->st, &art, err, errlen);
        }
    for (size_t i = 0; rc == 0 && i < c->sc->attrs[SCENARIO_ATTR_PROFILE].count; i++) {
        const sim_profile *pr = c->profile_of[i];
        char version[32];
        snprintf(version, sizeof version, "%u.%u", pr->build, pr->ubr);
        store_artifact art = {STORE_ARTIFACT_PROFILE, NULL, pr->name, pr->source, NULL, 0,
                              version};
        rc = store_write_artifact(c->st, &art, err, errlen);
    }
    /* The endpoints, in batches. */
    store_endpoint batch[1024];
    uint64_t end = c->first + c->count;
    for (uint64_t first = c->first; rc == 0 && first < end; first += 1024) {
        size_t n = end - first < 1024 ? (size_t)(end - first) : 1024;
        for (size_t k = 0; k < n; k++) {
            fleet_endpoint fe;
            fleet_gen_endpoint(c->gen, first + k, &fe);
            const sim_profile *pr = c->profile_of[fe.profile];
            char tenant[16];
            (void)tenant;
            batch[k] = (store_endpoint){
                .id = first + k,
                .external_id = scenario_row_id(c->sc, first + k),
                .profile = pr->name, .os_build = pr->build, .os_ubr = pr->ubr,
                .sensor = c->sc->attrs[SCENARIO_ATTR_SENSOR].items[fe.sensor].name,
                .region = c->sc->attrs[SCENARIO_ATTR_REGION].count
                              ? c->sc->attrs[SCENARIO_ATTR_REGION].items[fe.region].name : "",
                .tenant = c->sc->attrs[SCENARIO_ATTR_TENANT].count > fe.tenant
                              ? c->sc->attrs[SCENARIO_ATTR_TENANT].items[fe.tenant].name : "",
                .seed = fleet_endpoint_seed(c->sc->seed, first + k),
                .ring = (int32_t)rollout_ring_of(c->ro, first + k),
            };
        }
        rc = store_write_endpoints(c->st, batch, n, err, errlen);
    }
    return rc;
}

static void print_summary(run_ctx *c, double wall)
{
    const scenario_names *pn = &c->sc->attrs[SCENARIO_ATTR_PROFILE];
    const scenario_names *sn = &c->sc->attrs[SCENARIO_ATTR_SENSOR];
    char vt[32];

    for (uint64_t id = c->first; id < c->first + c->count; id++)
        cohort_of(c, (uint32_t)id)->endpoints++;
    format_vt(c, c->now, vt, sizeof vt);
    printf("%s%s: %" PRIu64 " endpoints", c->interrupted ? "INTERRUPTED " : "",
           c->sc->name, c->count);
    if (c->shards > 1)
        printf(" (shard %u/%u of %" PRIu64 ")", c->shard, c->shards, c->size);
    printf(", seed %" PRIu64 ", virtual time to %s\n", c->sc->seed, vt);
    printf("reached %" PRIu64 ", crashed %" PRIu64 ", boot loops %" PRIu64
           ", recovered %" PRIu64 ", still down %" PRIu64 "; %" PRIu64
           " emulations in %.1f s (%.0f/s)\n\n",
           c->reached, c->crashed_eps, c->looping_eps, c->recovered_eps,
           c->crashed_eps - c->recovered_eps, c->emulated, wall,
           wall > 0 ? (double)c->emulated / wall : 0.0);
    printf("%-28s %-7s %9s %9s %9s %9s %9s\n", "profile", "sensor", "endpoints", "reached",
           "crashed", "looping", "recovered");
    for (size_t p = 0; p < pn->count; p++)
        for (size_t s = 0; s < sn->count; s++) {
            const cohort_count *cc = &c->cohorts[p * sn->count + s];
            if (!cc->endpoints)
                continue;
            printf("%-28s %-7s %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 "\n",
                   pn->items[p].name, sn->items[s].name, cc->endpoints, cc->reached,
                   cc->crashed, cc->looping, cc->recovered);
        }
    rollout_status rs;
    rollout_get_status(c->ro, &rs);
    if (rs.rings) {
        char at[32] = "";
        if (rs.stopped_ms >= 0)
            format_vt(c, rs.stopped_ms, at, sizeof at);
        printf("\nrollout %s: %u of %u rings released; %s%s%s\n", c->plan->name, rs.released,
               rs.rings, rs.rolled_back ? "rolled back at " : rs.halted ? "halted at " : "",
               at, rs.halted ? "" : rs.released == rs.rings ? "released to all" : "holding");
    } else if (rs.detected_ms >= 0) {
        char at[32];
        format_vt(c, rs.detected_ms, at, sizeof at);
        printf("\nrollout %s: a gate would have seen it at %s (nothing was left to stop)\n",
               c->plan->name, at);
    }
    printf("\nstore: %s\n", store_path(c->st));
}

static void teardown(run_ctx *c)
{
    for (size_t i = 0; c->engines && i < c->nengines_free; i++)
        sim_engine_destroy(c->engines[i]);
    sim_free(c->engines);
    for (size_t i = 0; c->free_jobs && i < c->nfree; i++)
        sim_free(c->free_jobs[i]);
    sim_free(c->free_jobs);
    for (size_t i = 0; c->image_of && i < c->sc->attrs[SCENARIO_ATTR_SENSOR].count; i++)
        sim_image_destroy(c->image_of[i]);
    sim_free(c->image_of);
    for (size_t i = 0; c->image_path_of && i < c->sc->attrs[SCENARIO_ATTR_SENSOR].count; i++)
        free(c->image_path_of[i]);
    sim_free(c->image_path_of);
    free(c->update_image_path);
    sim_image_destroy(c->update_image);
    sim_free(c->profile_of);
    sim_profile_list_destroy(c->profiles, c->nprofiles_loaded);
    free_blobs(&c->on_disk);
    free_blobs(&c->update);
    free_blobs(&c->revert);
    sim_free(c->eps);
    sim_free(c->heap.items);
    sim_free(c->cohorts);
    fleet_gen_destroy(c->gen);
    rollout_destroy(c->ro);
}

/* The run of one plan into one store (`db`; NULL: "<scenario>.db"). */
static int run_plan(const run_args *args, const char *plan_name, const char *db, int argc,
                    char **argv)
{
    run_args a = *args;
    run_ctx ctx = {0}, *c = &ctx;
    char err[1024] = "";
    int rc = 0, exit_code = FLEET_EXIT_OK;
    uint8_t *text = NULL;
    size_t textlen = 0;
    scenario_plan everyone;

    a.db = db;
    if (read_file(a.scenario, &text, &textlen, err, sizeof err) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        return FLEET_EXIT_USAGE;
    }
    sim_free(text);
    if ((rc = scenario_load(a.scenario, &c->sc, err, sizeof err)) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        return FLEET_EXIT_USAGE;
    }
    char num[32];
    if (a.has_fleet_size) {
        snprintf(num, sizeof num, "%" PRIu64, a.fleet_size);
        rc = scenario_override(c->sc, "fleet-size", num, err, sizeof err);
    }
    if (rc == 0 && a.has_seed) {
        snprintf(num, sizeof num, "%" PRIu64, a.seed);
        rc = scenario_override(c->sc, "seed", num, err, sizeof err);
    }
    if (rc < 0 || (rc = setup(c, &a, err, sizeof err)) < 0 ||
        (rc = fleet_gen_create(c->sc, &c->gen, err, sizeof err)) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        teardown(c);
        scenario_destroy(c->sc);
        return rc == SIM_ENOMEM ? FLEET_EXIT_UNFAITHFUL : FLEET_EXIT_USAGE;
    }
    c->size = fleet_gen_size(c->gen);
    c->shard = 0;
    c->shards = 1;
    if (a.shard && !fleet_shard_parse(a.shard, &c->shard, &c->shards)) {
        fprintf(stderr, "fleetsim: --shard: want K/N with 0 <= K < N, got %s\n", a.shard);
        teardown(c);
        scenario_destroy(c->sc);
        return FLEET_EXIT_USAGE;
    }
    fleet_shard_range(c->size, c->shard, c->shards, &c->first, &c->count);
    c->plan = plan_name ? scenario_find_plan(c->sc, plan_name) : &c->sc->plans[0];
    if (!c->plan && strcmp(plan_name, "all-at-once") == 0) {
        scenario_default_plan(&everyone, "all-at-once");
        c->plan = &everyone;
    }
    if (!c->plan || (c->plan->nrings && c->shards > 1)) {
        if (!c->plan) {
            fprintf(stderr, "fleetsim: --plan: no plan \"%s\" in %s; plans:", plan_name,
                    c->sc->path);
            for (size_t i = 0; i < c->sc->nplans; i++)
                fprintf(stderr, "%s %s", i ? "," : "", c->sc->plans[i].name);
            fputc('\n', stderr);
        } else {
            fprintf(stderr, "fleetsim: plan %s releases by rings, whose gates need the whole "
                            "fleet's telemetry: run it without --shard\n", c->plan->name);
        }
        teardown(c);
        scenario_destroy(c->sc);
        return FLEET_EXIT_USAGE;
    }
    c->known_bad = c->sc->has_known_bad;
    c->known_bad_ms = c->sc->known_bad_ms;
    if ((rc = rollout_create(c->sc, c->plan, c->gen, &c->ro, err, sizeof err)) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        teardown(c);
        scenario_destroy(c->sc);
        return FLEET_EXIT_UNFAITHFUL;
    }
    c->jobs = (uint32_t)a.jobs;
    c->quiet = a.quiet || !isatty(STDERR_FILENO);

    char dbpath[1024];
    if (a.db)
        snprintf(dbpath, sizeof dbpath, "%s", a.db);
    else
        snprintf(dbpath, sizeof dbpath, "%s.db", c->sc->name);
    store_options so;
    store_options_init(&so);
    so.replace = true;
    if ((rc = store_open(dbpath, &so, &c->st, err, sizeof err)) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        teardown(c);
        scenario_destroy(c->sc);
        return FLEET_EXIT_USAGE;
    }
    read_file(a.scenario, &text, &textlen, err, sizeof err);
    char *yaml = sim_calloc(textlen + 1, 1);
    if (yaml && text)
        memcpy(yaml, text, textlen);
    sim_free(text);
    rc = write_header(c, argc, argv, yaml ? yaml : "", err, sizeof err);
    sim_free(yaml);
    /* A shard sees only its own telemetry: its rollout decisions (all at
     * once, as plans with rings are refused) belong to the merged run. */
    if (rc == 0 && c->shards == 1)
        rc = rollout_write_rings(c->ro, c->st, err, sizeof err);

    /* Engines and jobs, then the thread pool sized to --jobs. */
    c->eps = sim_calloc(c->size, sizeof *c->eps);
    c->engines = sim_calloc(c->jobs, sizeof *c->engines);
    c->max_inflight = (size_t)c->jobs * 4;
    c->free_jobs = sim_calloc(c->max_inflight, sizeof *c->free_jobs);
    if (rc == 0 && (!c->eps || !c->engines || !c->free_jobs)) {
        snprintf(err, sizeof err, "out of memory for %" PRIu64 " endpoints", c->size);
        rc = SIM_ENOMEM;
    }
    for (uint32_t i = 0; rc == 0 && i < c->jobs; i++) {
        if ((rc = sim_engine_create(&c->engines[i], err, sizeof err)) == 0)
            c->nengines_free++;
    }
    for (size_t i = 0; rc == 0 && i < c->max_inflight; i++) {
        if (!(c->free_jobs[i] = sim_calloc(1, sizeof(job)))) {
            rc = SIM_ENOMEM;
            snprintf(err, sizeof err, "out of memory for jobs");
        } else {
            c->nfree++;
        }
    }
    for (uint64_t id = c->first; rc == 0 && id < c->first + c->count; id++) {
        int64_t phase = (int64_t)(draw(c, (uint32_t)id, DRAW_PHASE, 0) *
                                  (double)c->sc->checkin_interval_ms);
        int64_t first = c->sc->release_ms + phase;
        rc = schedule(c, first, (uint32_t)id, EV_CHECKIN);
    }
    if (rc == 0 && c->shards == 1 && rollout_next_look(c->ro) != INT64_MAX)
        rc = schedule(c, rollout_next_look(c->ro), GATE_ID, EV_GATE);
    if (rc < 0) {
        fprintf(stderr, "fleetsim: %s\n", c->failed ? c->failure : err);
        store_mark_interrupted(c->st, FLEET_EXIT_USAGE, 0, "setup failed", err, sizeof err);
        store_close(c->st, err, sizeof err);
        teardown(c);
        scenario_destroy(c->sc);
        return FLEET_EXIT_USAGE;
    }

    char threads[16];
    snprintf(threads, sizeof threads, "%u", c->jobs);
    setenv("UV_THREADPOOL_SIZE", threads, 1);
    uv_mutex_init(&c->engine_lock);
    c->loop = uv_default_loop();
    uv_idle_init(c->loop, &c->pump);
    c->pump.data = c;
    uv_timer_init(c->loop, &c->progress);
    c->progress.data = c;
    uv_signal_init(c->loop, &c->sigint);
    uv_signal_init(c->loop, &c->sigterm);
    c->sigint.data = c->sigterm.data = c;
    uv_signal_start(&c->sigint, on_signal, SIGINT);
    uv_signal_start(&c->sigterm, on_signal, SIGTERM);
    uv_unref((uv_handle_t *)&c->sigint);
    uv_unref((uv_handle_t *)&c->sigterm);
    if (!c->quiet)
        uv_timer_start(&c->progress, on_progress, 200, 200);
    uv_unref((uv_handle_t *)&c->progress);
    c->started_ns = mono_ns();
    pump_start(c);
    uv_run(c->loop, UV_RUN_DEFAULT);
    uv_loop_close(c->loop);
    uv_mutex_destroy(&c->engine_lock);
    double wall = (double)(mono_ns() - c->started_ns) / 1e9;
    if (!c->quiet)
        fprintf(stderr, "\r%*s\r", 100, "");

    if (c->failed) {
        fprintf(stderr, "fleetsim: %s\n", c->failure);
        exit_code = FLEET_EXIT_UNFAITHFUL;
    } else if (c->crashed_eps) {
        exit_code = FLEET_EXIT_FAULT;
    }
    int64_t vt_end = c->interrupted ? c->now : (int64_t)c->sc->duration_ms; /* after start */
    if (c->interrupted || c->failed)
        rc = store_mark_interrupted(c->st, c->interrupted ? 130 : exit_code, vt_end,
                                    c->interrupted ? "interrupted" : c->failure, err, sizeof err);
    else
        rc = store_mark_complete(c->st, exit_code, vt_end, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "fleetsim: %s\n", err);
    print_summary(c, wall);
    /* The QA gate reads the store as `fleetsim report --gate` would (by
     * default: no endpoint may fault), and its answer is the exit status. */
    if (rc == 0 && !c->interrupted && !c->failed) {
        int gate = fleet_gate_store(store_path(c->st), a.gate, true);
        if (gate != exit_code && (gate == FLEET_EXIT_OK || gate == FLEET_EXIT_FAULT)) {
            exit_code = gate;
            rc = store_mark_complete(c->st, exit_code, vt_end, err, sizeof err);
        } else if (gate != FLEET_EXIT_OK && gate != FLEET_EXIT_FAULT) {
            exit_code = gate;
        }
        if (rc < 0) {
            fprintf(stderr, "fleetsim: %s\n", err);
            exit_code = FLEET_EXIT_UNFAITHFUL;
        }
    }
    if (rc == 0 && !c->interrupted && !c->failed && c->unfaithful) {
        /* Decision 8: results that rest on an export fleetsim lacks are
         * not a verdict on the driver. */
        fprintf(stderr, "fleetsim: %" PRIu64 " emulations called an export fleetsim does not "
                        "implement (outcomes 'unsupported-api'); the run is not faithful\n",
                c->unfaithful);
        exit_code = FLEET_EXIT_UNFAITHFUL;
        rc = store_mark_complete(c->st, exit_code, vt_end, err, sizeof err);
    }
    if (store_close(c->st, err, sizeof err) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        exit_code = FLEET_EXIT_UNFAITHFUL;
    }
    teardown(c);
    scenario_destroy(c->sc);
    return c->interrupted ? 130 : exit_code;
}

int fleet_cmd_run(int argc, char **argv)
{
    run_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != 0)
        return rc < 0 ? FLEET_EXIT_OK : rc;
    if (!a.compare_plans)
        return run_plan(&a, a.plan, a.db, argc, argv);
    if (a.plan)
        return fleet_usage_error(usage, "--plan and --compare-plans: one or the other");

    /* Every plan of the scenario, and all at once beside them, on the same
     * fleet and seed, each into its own store; then the plans side by side. */
    scenario *sc;
    char err[1024];
    if (scenario_load(a.scenario, &sc, err, sizeof err) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        return FLEET_EXIT_USAGE;
    }
    size_t n = 0;
    char names[17][SCENARIO_NAME_MAX + 1];
    bool have_all = scenario_find_plan(sc, "all-at-once") != NULL;
    if (!have_all)
        snprintf(names[n++], sizeof names[0], "all-at-once");
    for (size_t i = 0; i < sc->nplans; i++)
        snprintf(names[n++], sizeof names[0], "%s", sc->plans[i].name);
    char stem[1024];
    if (a.db) {
        snprintf(stem, sizeof stem, "%s", a.db);
        size_t len = strlen(stem);
        if (len > 3 && strcmp(stem + len - 3, ".db") == 0)
            stem[len - 3] = '\0';
    } else {
        snprintf(stem, sizeof stem, "%s", sc->name);
    }
    scenario_destroy(sc);

    char dbs[17][1100];
    const char *paths[17];
    int worst = FLEET_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        snprintf(dbs[i], sizeof dbs[i], "%s.%s.db", stem, names[i]);
        paths[i] = dbs[i];
        printf("== plan %s -> %s\n", names[i], dbs[i]);
        fflush(stdout);
        rc = run_plan(&a, names[i], dbs[i], argc, argv);
        if (rc != FLEET_EXIT_OK && rc != FLEET_EXIT_FAULT)
            return rc; /* interrupted, or could not run: stop here */
        if (rc > worst)
            worst = rc;
        putchar('\n');
    }
    return fleet_plans_print(paths, n) < 0 ? FLEET_EXIT_UNFAITHFUL : worst;
}
