/*
 * cmd_run.c — `fleetsim run SCENARIO`: the command around the loop.
 *
 * It reads the scenario and applies the overrides, loads the profiles, the
 * sensor images and the content files the scenario names, opens the store
 * and writes its header (the run, every artifact by hash, every endpoint),
 * hands the fleet to run.c's loop, then marks the store complete or
 * interrupted, prints the summary by cohort and answers with the gate's exit
 * status.  `--compare-plans` does that once per rollout plan and prints the
 * plans side by side.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"
#include "report.h"
#include "run-internal.h"

#ifndef FLEETSIM_IMAGE_DIR
#define FLEETSIM_IMAGE_DIR "images"
#endif
#ifndef FLEETSIM_CONTENT_DIR
#define FLEETSIM_CONTENT_DIR "scenarios/content"
#endif
#ifndef FLEETSIM_VERSION
#define FLEETSIM_VERSION "0.1.0"
#endif

static const char usage[] =
    "fleetsim run SCENARIO [--fleet-size N] [--seed N] [--duration D] [--jobs N] [--db PATH]\n"
    "             [--shard K/N] [--gate EXPR] [--plan NAME | --compare-plans] [--images DIR] [--profiles DIR]\n"
    "             [--content-dir DIR] [--quiet]";

/* ---- inputs ---------------------------------------------------------------- */

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

/* ---- setup ------------------------------------------------------------------- */

typedef struct run_args {
    const char *scenario, *db, *images, *profiles, *content_dir, *shard, *gate, *plan;
    const char *duration;
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
        {"duration", required_argument, NULL, 'D'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
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
        case 'D': a->duration = optarg; break;
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
                   "  --fleet-size N, --seed N, --duration D   override the scenario's\n"
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
    const char *profile_dir = fleet_profile_dir(a->profiles);
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
    /* The sensor versions are the images' names: sensor-VERSION.sys. */
    char **images = NULL;
    size_t nimages = 0;
    if ((rc = sim_list_dir(image_dir, "sensor-", ".sys", SCENARIO_MAX_NAMES, &images, &nimages,
                           err, errlen)) < 0) {
        sim_free(names);
        return rc;
    }
    for (size_t i = 0; i < nimages; i++)
        images[i][strlen(images[i]) - 4] = '\0'; /* keep the version: drop ".sys" */
    const char **versions = sim_calloc(nimages + 1, sizeof *versions);
    if (!versions)
        rc = SIM_ENOMEM;
    for (size_t i = 0; rc == 0 && i < nimages; i++)
        versions[i] = images[i] + strlen("sensor-");
    const char *dirs[1] = {content_dir};
    scenario_catalog cat = {names, c->nprofiles_loaded, versions, nimages, dirs, 1};
    if (rc == 0)
        rc = scenario_check(c->sc, &cat, err, errlen);
    if (rc == 0)
        rc = scenario_resolve_content(c->sc, &cat, err, errlen);
    sim_free(names);
    sim_free(versions);
    sim_list_free(images, nimages);
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
    /* The endpoints, in batches, with the inventory's extra columns. */
    store_endpoint batch[1024];
    size_t nextra = c->sc->nextra;
    store_attr *attrs = NULL;
    if (rc == 0 && nextra && !(attrs = sim_calloc(1024 * nextra, sizeof *attrs))) {
        snprintf(err, errlen, "out of memory");
        rc = SIM_ENOMEM;
    }
    uint64_t end = c->first + c->count;
    for (uint64_t first = c->first; rc == 0 && first < end; first += 1024) {
        size_t n = end - first < 1024 ? (size_t)(end - first) : 1024;
        for (size_t k = 0; k < n; k++) {
            fleet_endpoint fe;
            fleet_gen_endpoint(c->gen, first + k, &fe);
            const sim_profile *pr = c->profile_of[fe.profile];
            store_attr *own = attrs ? attrs + k * nextra : NULL;
            size_t nown = 0;
            for (size_t x = 0; x < nextra; x++) {
                const char *v = scenario_row_extra(c->sc, first + k, x);
                if (v)
                    own[nown++] = (store_attr){c->sc->extra_keys[x], v};
            }
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
                .attrs = own, .nattrs = nown,
            };
        }
        rc = store_write_endpoints(c->st, batch, n, err, errlen);
    }
    sim_free(attrs);
    return rc;
}

static void print_summary(run_ctx *c, double wall)
{
    const scenario_names *pn = &c->sc->attrs[SCENARIO_ATTR_PROFILE];
    const scenario_names *sn = &c->sc->attrs[SCENARIO_ATTR_SENSOR];
    char vt[32];

    for (uint64_t id = c->first; id < c->first + c->count; id++)
        run__cohort_of(c, (uint32_t)id)->endpoints++;
    run__format_vt(c, c->now, vt, sizeof vt);
    printf("%s%s: %" PRIu64 " endpoints", c->interrupted ? "INTERRUPTED " : "",
           c->sc->name, c->count);
    if (c->shards > 1)
        printf(" (shard %u/%u of %" PRIu64 ")", c->shard, c->shards, c->size);
    printf(", seed %" PRIu64 ", virtual time to %s\n", c->sc->seed, vt);
    printf("reached %" PRIu64, c->reached);
    if (c->revert_only)
        printf(" (and %" PRIu64 " that got only the revert)", c->revert_only);
    printf(", crashed %" PRIu64 ", boot loops %" PRIu64
           ", recovered %" PRIu64 ", still down %" PRIu64 "; %" PRIu64
           " emulations in %.1f s (%.0f/s)\n\n",
           c->crashed_eps, c->looping_eps, c->recovered_eps,
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
            run__format_vt(c, rs.stopped_ms, at, sizeof at);
        printf("\nrollout %s: %u of %u rings released; %s%s%s\n", c->plan->name, rs.released,
               rs.rings, rs.rolled_back ? "rolled back at " : rs.halted ? "halted at " : "",
               at, rs.halted ? "" : rs.released == rs.rings ? "released to all" : "holding");
    } else if (rs.detected_ms >= 0) {
        char at[32];
        run__format_vt(c, rs.detected_ms, at, sizeof at);
        printf("\nrollout %s: a gate would have seen it at %s (nothing was left to stop)\n",
               c->plan->name, at);
    }
    printf("\nstore: %s\n", store_path(c->st));
}

static void teardown(run_ctx *c)
{
    run__release(c);
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
    sim_free(c->cohorts);
    fleet_gen_destroy(c->gen);
    rollout_destroy(c->ro);
}

/* The scenario with the command line's overrides, its plan, and its inputs
 * loaded; FLEET_EXIT_OK or the exit status for what went wrong. */
static int prepare(run_ctx *c, const run_args *a, const char *plan_name,
                   scenario_plan *everyone)
{
    char err[1024] = "", num[32];
    int rc = 0;

    if (scenario_load(a->scenario, &c->sc, err, sizeof err) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        return FLEET_EXIT_USAGE;
    }
    if (a->has_fleet_size) {
        snprintf(num, sizeof num, "%" PRIu64, a->fleet_size);
        rc = scenario_override(c->sc, "fleet-size", num, err, sizeof err);
    }
    if (rc == 0 && a->has_seed) {
        snprintf(num, sizeof num, "%" PRIu64, a->seed);
        rc = scenario_override(c->sc, "seed", num, err, sizeof err);
    }
    if (rc == 0 && a->duration)
        rc = scenario_override(c->sc, "duration", a->duration, err, sizeof err);
    if (rc < 0 || (rc = setup(c, a, err, sizeof err)) < 0 ||
        (rc = fleet_gen_create(c->sc, &c->gen, err, sizeof err)) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        return rc == SIM_ENOMEM ? FLEET_EXIT_UNFAITHFUL : FLEET_EXIT_USAGE;
    }
    c->size = fleet_gen_size(c->gen);
    c->shard = 0;
    c->shards = 1;
    if (a->shard && !fleet_shard_parse(a->shard, &c->shard, &c->shards)) {
        fprintf(stderr, "fleetsim: --shard: want K/N with 0 <= K < N, got %s\n", a->shard);
        return FLEET_EXIT_USAGE;
    }
    fleet_shard_range(c->size, c->shard, c->shards, &c->first, &c->count);
    c->plan = plan_name ? scenario_find_plan(c->sc, plan_name) : &c->sc->plans[0];
    if (!c->plan && strcmp(plan_name, "all-at-once") == 0) {
        scenario_default_plan(everyone, "all-at-once");
        c->plan = everyone;
    }
    if (!c->plan) {
        fprintf(stderr, "fleetsim: --plan: no plan \"%s\" in %s; plans:", plan_name,
                c->sc->path);
        for (size_t i = 0; i < c->sc->nplans; i++)
            fprintf(stderr, "%s %s", i ? "," : "", c->sc->plans[i].name);
        fputc('\n', stderr);
        return FLEET_EXIT_USAGE;
    }
    if (c->plan->nrings && c->shards > 1) {
        fprintf(stderr, "fleetsim: plan %s releases by rings, whose gates need the whole "
                        "fleet's telemetry: run it without --shard\n", c->plan->name);
        return FLEET_EXIT_USAGE;
    }
    c->known_bad = c->sc->has_known_bad;
    c->known_bad_ms = c->sc->known_bad_ms;
    if (rollout_create(c->sc, c->plan, c->gen, &c->ro, err, sizeof err) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        return FLEET_EXIT_UNFAITHFUL;
    }
    c->jobs = (uint32_t)a->jobs;
    c->quiet = a->quiet || !isatty(STDERR_FILENO);
    return FLEET_EXIT_OK;
}

/*
 * The exit status of a run that went to its end: the gate's answer, read
 * from the store as `fleetsim report --gate` would (by default: no endpoint
 * may fault), or 3 when the run rests on an export fleetsim lacks.  The
 * store is marked complete with it.
 */
static int verdict(run_ctx *c, const char *gate, int64_t vt_end)
{
    char err[1024];
    int exit_code = fleet_gate_store(store_path(c->st), gate, true);

    if (c->unfaithful) {
        /* Decision 8: results that rest on an export fleetsim lacks are
         * not a verdict on the driver. */
        fprintf(stderr, "fleetsim: %" PRIu64 " emulations called an export fleetsim does not "
                        "implement (outcomes 'unsupported-api'); the run is not faithful\n",
                c->unfaithful);
        exit_code = FLEET_EXIT_UNFAITHFUL;
    }
    if (store_mark_complete(c->st, exit_code, vt_end, err, sizeof err) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        return FLEET_EXIT_UNFAITHFUL;
    }
    return exit_code;
}

/* Marking the store builds its keys and indexes: about 330 s at a million
 * endpoints, which a terminal should not spend in silence. */
static void say_marking(const run_ctx *c)
{
    if (!c->quiet)
        fprintf(stderr, "fleetsim: %s: building the store's keys and indexes\n",
                store_path(c->st));
}

/* The run of one plan into one store (`db`; NULL: "<scenario>.db"). */
static int run_plan(const run_args *a, const char *plan_name, const char *db, int argc,
                    char **argv)
{
    run_ctx ctx = {0}, *c = &ctx;
    char err[1024] = "";
    uint8_t *text = NULL;
    size_t textlen = 0;
    scenario_plan everyone;
    double wall = 0;
    int rc, exit_code;

    /* The scenario's text goes into the store as it was read. */
    if (read_file(a->scenario, &text, &textlen, err, sizeof err) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        return FLEET_EXIT_USAGE;
    }
    if ((exit_code = prepare(c, a, plan_name, &everyone)) != FLEET_EXIT_OK)
        goto out;

    char dbpath[1024];
    snprintf(dbpath, sizeof dbpath, "%s%s", db ? db : c->sc->name, db ? "" : ".db");
    store_options so;
    store_options_init(&so);
    so.replace = true;
    if (store_open(dbpath, &so, &c->st, err, sizeof err) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        exit_code = FLEET_EXIT_USAGE;
        goto out;
    }
    /* Ctrl-C before the loop (writing a million endpoints takes a while) and
     * after it (building the keys) is caught here; libuv has it in between. */
    fleet_catch_stop(c->st);
    rc = write_header(c, argc, argv, (const char *)text, err, sizeof err); /* NUL-ended */
    /* A shard's rollout decisions (all at once, as plans with rings are
     * refused) belong to the merged run. */
    if (rc == 0 && c->shards == 1)
        rc = rollout_write_rings(c->ro, c->st, err, sizeof err);
    if (rc == 0 && fleet_stop_signal())
        rc = SIM_EINVAL;
    if (rc == 0)
        rc = run__play(c, &wall, err, sizeof err);
    fleet_catch_stop(c->st);
    if (rc < 0) {
        /* Out of memory, an engine or the store failing: the run could not
         * be played (a bad scenario was refused before the store). */
        char reason[1024];
        snprintf(reason, sizeof reason, "%s", fleet_stop_signal() ? "interrupted" : err);
        exit_code = fleet_stop_signal() ? 130 : FLEET_EXIT_UNFAITHFUL;
        if (!fleet_stop_signal())
            fprintf(stderr, "fleetsim: %s\n", err);
        if (store_mark_interrupted(c->st, exit_code, 0, reason, err, sizeof err) < 0 &&
            strcmp(err, reason) != 0)
            fprintf(stderr, "fleetsim: %s\n", err);
        goto out;
    }
    if (fleet_stop_signal())
        c->interrupted = true; /* after the loop let go of the signals */

    /* Where virtual time stopped: the end, unless the run did not get there. */
    int64_t vt_end = c->interrupted || c->failed ? c->now : (int64_t)c->sc->duration_ms;
    if (c->failed)
        fprintf(stderr, "fleetsim: %s\n", c->failure);
    if (c->interrupted || c->failed) {
        exit_code = c->interrupted ? 130 : FLEET_EXIT_UNFAITHFUL;
        say_marking(c);
        rc = store_mark_interrupted(c->st, exit_code, vt_end,
                                    c->interrupted ? "interrupted" : c->failure, err, sizeof err);
        if (rc < 0)
            fprintf(stderr, "fleetsim: %s\n", err);
        print_summary(c, wall);
    } else {
        /* The store is complete before the gate reads it. */
        say_marking(c);
        rc = store_mark_complete(c->st, c->crashed_eps ? FLEET_EXIT_FAULT : FLEET_EXIT_OK,
                                 vt_end, err, sizeof err);
        print_summary(c, wall);
        if (rc < 0) {
            fprintf(stderr, "fleetsim: %s\n", err);
            exit_code = fleet_stop_signal() ? 130 : FLEET_EXIT_UNFAITHFUL;
        } else {
            exit_code = verdict(c, a->gate, vt_end);
        }
    }

out:
    fleet_catch_stop(NULL); /* the store is going: a signal is only remembered */
    if (c->st && store_close(c->st, err, sizeof err) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        if (exit_code != 130)
            exit_code = FLEET_EXIT_UNFAITHFUL;
    }
    sim_free(text);
    teardown(c);
    scenario_destroy(c->sc);
    return exit_code;
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
