/*
 * cmd_profiles.c — `fleetsim profiles`: the OS profiles endpoints can run.
 *
 * A profile is one Windows build as the emulated kernel presents it
 * (one *.yaml file each in sim/profiles/).  This command loads the whole
 * folder the way `emulate --profile` and scenarios do, so it doubles as the
 * check for a profile a user has just written: a malformed file fails with
 * its "file:line:column: what" message and exit status 2, as it would in a
 * run.  The folder lookup every command shares lives here too.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "json.h"
#include "sim.h"

#define USAGE "fleetsim profiles [--dir DIR] [--json]"

/* meson passes the source tree's folder; a build without it uses the cwd's. */
#ifndef FLEETSIM_PROFILE_DIR
#define FLEETSIM_PROFILE_DIR "sim/profiles"
#endif

const char *fleet_profile_dir(const char *option)
{
    const char *env = getenv("FLEETSIM_PROFILES");

    if (option != NULL && option[0] != '\0')
        return option;
    if (env != NULL && env[0] != '\0')
        return env;
    return FLEETSIM_PROFILE_DIR;
}

static const char *pool_name(sim_pool_kind kind)
{
    return kind == SIM_POOL_SEGMENT_HEAP ? "segment-heap" : "legacy";
}

static void print_usage(void)
{
    printf("usage: %s\n\n"
           "List the OS profiles in DIR: name, Windows version, build.UBR, pool kind,\n"
           "number of boot events and the file each comes from.  A malformed profile\n"
           "is reported as file:line:column and the command exits 2.\n\n"
           "  --dir DIR    the profiles folder (default: $FLEETSIM_PROFILES, else\n"
           "               %s)\n"
           "  --json       one JSON array on stdout instead of the table\n",
           USAGE, FLEETSIM_PROFILE_DIR);
}

static void print_table(sim_profile *const *list, size_t n, const char *dir)
{
    printf("%-22s %-40s %-12s %-13s %6s  %s\n", "NAME", "DISPLAY", "BUILD", "POOL", "EVENTS",
           "FILE");
    for (size_t i = 0; i < n; i++) {
        const sim_profile *p = list[i];
        char build[24];

        snprintf(build, sizeof build, "%" PRIu32 ".%" PRIu32, p->build, p->ubr);
        printf("%-22s %-40s %-12s %-13s %6zu  %s\n", p->name, p->display, build,
               pool_name(p->pool), p->nevents, p->source);
    }
    if (n == 0)
        printf("(no *.yaml profiles in %s)\n", dir);
}

static void print_json(sim_profile *const *list, size_t n)
{
    json_writer w;

    json_init(&w, stdout);
    json_array_begin(&w);
    for (size_t i = 0; i < n; i++) {
        const sim_profile *p = list[i];

        json_object_begin(&w);
        json_key(&w, "name");
        json_string(&w, p->name);
        json_key(&w, "display");
        json_string(&w, p->display);
        json_key(&w, "major");
        json_u64(&w, p->major);
        json_key(&w, "minor");
        json_u64(&w, p->minor);
        json_key(&w, "build");
        json_u64(&w, p->build);
        json_key(&w, "ubr");
        json_u64(&w, p->ubr);
        json_key(&w, "pool");
        json_string(&w, pool_name(p->pool));
        json_key(&w, "events");
        json_u64(&w, p->nevents);
        json_key(&w, "source");
        json_string(&w, p->source);
        json_object_end(&w);
    }
    json_array_end(&w);
    /* A failed write shows in stdout's error flag, which main() checks. */
    (void)json_finish(&w);
}

int fleet_cmd_profiles(int argc, char **argv)
{
    static const struct option options[] = {
        {"dir", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir_option = NULL;
    bool json = false;
    sim_profile **list = NULL;
    size_t n = 0;
    char err[512] = "";
    int opt, rc;

    opterr = 0;
    optind = 0; /* glibc: start over, as if getopt had never run */
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 'd':
            dir_option = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            print_usage();
            return FLEET_EXIT_OK;
        default:
            return fleet_bad_option(USAGE, argv, opt);
        }
    }
    if (optind < argc)
        return fleet_usage_error(USAGE, "unexpected argument \"%s\"", argv[optind]);

    const char *dir = fleet_profile_dir(dir_option);
    rc = sim_profile_load_dir(dir, &list, &n, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "fleetsim: %s\n", err[0] ? err : sim_strerror(rc));
        return FLEET_EXIT_USAGE;
    }
    if (json)
        print_json(list, n);
    else
        print_table(list, n, dir);
    sim_profile_list_destroy(list, n);
    return FLEET_EXIT_OK;
}
