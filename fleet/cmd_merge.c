/*
 * cmd_merge.c — `fleetsim merge -o OUT SHARD...`: the stores of a run's
 * shards (run --shard K/N) as one store, which reports read like any other
 * (DESIGN.md, decision 6).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "fleet.h"
#include "store.h"

#define USAGE "fleetsim merge -o OUT.db SHARD.db..."

static void print_usage(void)
{
    printf("usage: %s\n\n"
           "Merge the stores of a run's shards (fleetsim run --shard K/N, all N of\n"
           "them, in any order) into the new store OUT.db.  They must be one run: the\n"
           "same scenario, seed, fleet size, plan, duration, fleetsim version and files.\n"
           "Either OUT.db holds the whole run, or it is left as it was.\n",
           USAGE);
}

/* A store's WAL, shared-memory and journal files. */
static void remove_store_sidecars(const char *path)
{
    static const char *const tails[] = {"-wal", "-shm", "-journal"};
    char name[4200];
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        snprintf(name, sizeof name, "%s%s", path, tails[i]);
        unlink(name);
    }
}

static void remove_store(const char *path)
{
    unlink(path);
    remove_store_sidecars(path);
}

/* Does the store's WAL hold pages not yet in the file?  Its name in wal. */
static bool wal_holds_rows(const char *path, char wal[4200])
{
    struct stat st;
    snprintf(wal, 4200, "%s-wal", path);
    return stat(wal, &st) == 0 && st.st_size > 0;
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
    struct stat out_st;
    bool out_exists = stat(out, &out_st) == 0;
    char wal[4200];
    if (out_exists && !S_ISREG(out_st.st_mode))
        return fleet_usage_error(USAGE, "-o %s: not a file", out);
    /* Replacing OUT drops its WAL: refuse one that holds rows not yet in OUT. */
    if (wal_holds_rows(out, wal))
        return fleet_usage_error(USAGE, "-o %s: %s holds rows not yet in it (a process "
                                 "writing it died?); open it with sqlite3 to keep them, or "
                                 "remove it", out, wal);
    for (int i = optind; i < argc; i++) {
        struct stat in_st;
        if (strcmp(argv[i], out) == 0 ||
            (out_exists && stat(argv[i], &in_st) == 0 && in_st.st_dev == out_st.st_dev &&
             in_st.st_ino == out_st.st_ino))
            return fleet_usage_error(USAGE, "%s is a shard and the output", argv[i]);
    }

    /* Written under a name of its own and renamed into place at the end: a
     * merge that fails or is stopped leaves OUT as it was. */
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.merging-%ld", out, (long)getpid()) >= (int)sizeof tmp)
        return fleet_usage_error(USAGE, "-o %s: path too long", out);
    store_options so;
    store_options_init(&so);
    so.replace = true;
    store *st = NULL;
    char err[1024];
    int rc = store_open(tmp, &so, &st, err, sizeof err);
    if (rc == 0) {
        fleet_catch_stop(st);
        rc = store_merge(st, (const char *const *)argv + optind, (size_t)(argc - optind), err,
                         sizeof err);
        fleet_catch_stop(NULL);
        if (rc == 0 && fleet_stop_signal())
            rc = SIM_EIO;
    }
    if (rc == 0) {
        rc = store_close(st, err, sizeof err);
        st = NULL;
        if (rc == 0 && wal_holds_rows(tmp, wal)) {
            snprintf(err, sizeof err, "%s: not all of the merge reached the file", tmp);
            rc = SIM_EIO;
        }
    }
    if (rc == 0) {
        remove_store_sidecars(out); /* an old OUT's -wal would be read into the new one */
        if (rename(tmp, out) != 0) {
            snprintf(err, sizeof err, "%s: %s", out, strerror(errno));
            rc = SIM_EIO;
        }
    }
    if (rc < 0) {
        if (fleet_stop_signal())
            snprintf(err, sizeof err, "interrupted");
        fprintf(stderr, "fleetsim: %s; %s is left as it was\n", err, out);
        if (st)
            store_close(st, NULL, 0);
        remove_store(tmp);
        return fleet_stop_signal()                    ? 130
               : rc == SIM_EIO || rc == SIM_ENOMEM ? FLEET_EXIT_UNFAITHFUL
                                                     : FLEET_EXIT_USAGE;
    }
    printf("merged %d shards into %s\n", argc - optind, out);
    return FLEET_EXIT_OK;
}
