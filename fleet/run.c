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
 * store is keyed by natural keys.  Rollout gates make endpoints depend on
 * each other's telemetry: a gate look waits until no emulation is in
 * flight, so it sees every outcome before its virtual time and none after.
 *
 * cmd_run.c is the command around the loop: options, inputs, the store's
 * header, the summary and the exit status.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "fleet.h"
#include "run-internal.h"

#define MAX_JOB_FILES SCENARIO_MAX_FILES /* the scenario refuses more */
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
    uint16_t events;         /* timeline events so far: the next one's seq */
    int64_t first_crash_ms;
} endpoint_state;

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


/* ---- a job ---------------------------------------------------------------- */

typedef enum { JOB_RECEIVE, JOB_BOOT, JOB_CLEAN_BOOT } job_kind;

typedef struct job {
    uv_work_t req;
    run_ctx *ctx;
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
    /* seq: the endpoint's events in the order they happen, which is not
     * always the order of their times (a known-bad mark learned during a
     * boot is written before the boot's outcome). */
    endpoint_state *e = &c->eps[id];
    if (e->events == UINT16_MAX) {
        fail(c, "endpoint %u: more than %u timeline events", id, UINT16_MAX);
        return;
    }
    if (store_write_timeline_event(c->st, id, t, e->events++, kind, detail, err,
                                   sizeof err) < 0)
        fail(c, "%s", err);
}

cohort_count *run__cohort_of(run_ctx *c, uint32_t id)
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
    cohort_count *cc = run__cohort_of(c, j->id);

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
        /* Reached, as the report counts it: the update, not only the revert. */
        if (reverted) {
            c->revert_only++;
        } else {
            c->reached++;
            run__cohort_of(c, ev.id)->reached++;
        }
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
        if (waiting(c))
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

void run__format_vt(const run_ctx *c, int64_t t, char *buf, size_t n)
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

    run__format_vt(c, c->now, vt, sizeof vt);
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

/* ---- the play ----------------------------------------------------------------- */

int run__play(run_ctx *c, double *wall, char *err, size_t errlen)
{
    int rc = 0;

    c->eps = sim_calloc(c->size, sizeof *c->eps);
    c->engines = sim_calloc(c->jobs, sizeof *c->engines);
    c->max_inflight = (size_t)c->jobs * 4;
    c->free_jobs = sim_calloc(c->max_inflight, sizeof *c->free_jobs);
    if (!c->eps || !c->engines || !c->free_jobs) {
        snprintf(err, errlen, "out of memory for %" PRIu64 " endpoints", c->size);
        return SIM_ENOMEM;
    }
    for (uint32_t i = 0; rc == 0 && i < c->jobs; i++) {
        if ((rc = sim_engine_create(&c->engines[i], err, errlen)) == 0)
            c->nengines_free++;
    }
    for (size_t i = 0; rc == 0 && i < c->max_inflight; i++) {
        if (!(c->free_jobs[i] = sim_calloc(1, sizeof(job)))) {
            rc = SIM_ENOMEM;
            snprintf(err, errlen, "out of memory for jobs");
        } else {
            c->nfree++;
        }
    }
    for (uint64_t id = c->first; rc == 0 && id < c->first + c->count; id++) {
        int64_t phase = (int64_t)(draw(c, (uint32_t)id, DRAW_PHASE, 0) *
                                  (double)c->sc->checkin_interval_ms);
        rc = schedule(c, c->sc->release_ms + phase, (uint32_t)id, EV_CHECKIN);
    }
    /* A shard sees only its own telemetry: it makes no gate looks. */
    if (rc == 0 && c->shards == 1 && rollout_next_look(c->ro) != INT64_MAX)
        rc = schedule(c, rollout_next_look(c->ro), GATE_ID, EV_GATE);
    if (rc < 0) {
        if (c->failed)
            snprintf(err, errlen, "%s", c->failure);
        return rc;
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
    /* A Ctrl-C caught before libuv took the signals over (fleet_catch_stop). */
    if (fleet_stop_signal())
        c->interrupted = true;
    if (!c->quiet)
        uv_timer_start(&c->progress, on_progress, 200, 200);
    uv_unref((uv_handle_t *)&c->progress);
    c->started_ns = mono_ns();
    pump_start(c);
    uv_run(c->loop, UV_RUN_DEFAULT);
    uv_loop_close(c->loop);
    uv_mutex_destroy(&c->engine_lock);
    *wall = (double)(mono_ns() - c->started_ns) / 1e9;
    if (!c->quiet)
        fprintf(stderr, "\r%*s\r", 100, "");
    return 0;
}

void run__release(run_ctx *c)
{
    for (size_t i = 0; c->engines && i < c->nengines_free; i++)
        sim_engine_destroy(c->engines[i]);
    sim_free(c->engines);
    for (size_t i = 0; c->free_jobs && i < c->nfree; i++)
        sim_free(c->free_jobs[i]);
    sim_free(c->free_jobs);
    sim_free(c->eps);
    sim_free(c->heap.items);
}
