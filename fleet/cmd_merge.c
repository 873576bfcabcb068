/*
 * cmd_merge.c — `fleetsim merge -o OUT SHARD...`: the stores of a run's
 * shards (run --shard K/N) as one store, which reports read like any other
 * (DESIGN.md, decision 6).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"
#include "store.h"

#define USAGE "fleetsim merge -o OUT.db SHARD.db..."

static void print_usage(void)
{
    printf("usage: %s\n\n"
           "Merge the stores of a run's shards (fleetsim run --shard K/N, all N of\n"
           "them, in any order) into the new store OUT.db.  They must be one run: the\n"
           "same scenario, seed, fleet size and plan.  Either OUT.db holds the whole\n"
           "run, or nothing is left behind.\n",
           USAGE);
}

int fleet_cmd_merge(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (opt == 'o') {
            out = optarg;
        } else if (opt == 'h') {
            print_usage();
            return FLEET_EXIT_OK;
        } else {
            return fleet_bad_option(USAGE, argv, opt);
        }
    }
    if (!out)
        return fleet_usage_error(USAGE, "-o OUT.db: where to write the merged store");
    if (optind >= argc)
        return fleet_usage_error(USAGE, "which shard stores?");
    for (int i = optind; i < argc; i++)
        if (strcmp(argv[i], out) == 0)
            return fleet_usage_error(USAGE, "%s is a shard and the output", out);

    store_options so;
    store_options_init(&so);
    so.replace = true;
    store *st;
    char err[1024];
    int rc = store_open(out, &so, &st, err, sizeof err);
    if (rc == 0)
        rc = store_merge(st, (const char *const *)argv + optind, (size_t)(argc - optind), err,
                         sizeof err);
    if (rc < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        store_close(st, err, sizeof err);
        unlink(out);
        return rc == SIM_EIO || rc == SIM_ENOMEM ? FLEET_EXIT_UNFAITHFUL : FLEET_EXIT_USAGE;
    }
    if (store_close(st, err, sizeof err) < 0) {
        fprintf(stderr, "fleetsim: %s\n", err);
        unlink(out);
        return FLEET_EXIT_UNFAITHFUL;
    }
    printf("merged %d shards into %s\n", argc - optind, out);
    return FLEET_EXIT_OK;
}
