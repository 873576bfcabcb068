/*
 * fleet.h — the header of fleet/: many endpoints in time, and the
 * `fleetsim` command.
 *
 * For now it holds the command-line layer: the exit statuses every command
 * shares (DESIGN.md, decision 8), the command functions main.c dispatches
 * to, and the few helpers the commands share for argument errors.  The
 * command-line layer is the only part of fleetsim that prints; everything
 * below it returns error codes and messages.
 */
#ifndef FLEETSIM_FLEET_H
#define FLEETSIM_FLEET_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Exit statuses, once: a guest fault (1) is a result the user asked about,
 * bad usage or input (2) is an error in what fleetsim was given, and 3 says
 * fleetsim could not stand in for Windows faithfully (a gap in fleetsim, not
 * in the driver).  `fleetsim help` lists them from this table.
 */
#define FLEET_EXIT_MAP(XX)                                                   \
    XX(OK, 0, "ok")                                                         \
    XX(FAULT, 1, "guest faulted")                                           \
    XX(USAGE, 2, "bad usage or input")                                      \
    XX(UNFAITHFUL, 3, "could not be simulated faithfully")

enum {
#define XX(name, value, msg) FLEET_EXIT_##name = (value),
    FLEET_EXIT_MAP(XX)
#undef XX
};

/*
 * Commands.  argv[0] is the command's own name ("emulate"), the rest its
 * arguments; each returns an exit status.  `--help` prints the command's
 * usage on stdout and returns FLEET_EXIT_OK.
 */
int fleet_cmd_emulate(int argc, char **argv);
int fleet_cmd_inspect(int argc, char **argv);
int fleet_cmd_profiles(int argc, char **argv);
int fleet_cmd_run(int argc, char **argv);
int fleet_cmd_content(int argc, char **argv);
int fleet_cmd_report(int argc, char **argv);
int fleet_cmd_diff(int argc, char **argv);
int fleet_cmd_plans(int argc, char **argv);
int fleet_cmd_merge(int argc, char **argv);

/*
 * Check the store at `store_path` against a gate (report.h's syntax; NULL:
 * max-faults=0), printing the violations and the verdict line when `print`.
 * FLEET_EXIT_OK when it passes, FLEET_EXIT_FAULT when not, FLEET_EXIT_USAGE
 * for a bad expression or store.
 */
int fleet_gate_store(const char *store_path, const char *gate_expr, bool print);
/* The rollout plans of these stores side by side, on stdout; -1 on error. */
int fleet_plans_print(const char *const *stores, size_t n);

/*
 * Helpers the commands share.  fleet_usage_error prints "fleetsim: <what>"
 * and the command's usage line on stderr and returns FLEET_EXIT_USAGE;
 * fleet_bad_option does the same for getopt_long's '?' and ':' results.
 */
int fleet_usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int fleet_bad_option(const char *usage, char **argv, int opt);
/*
 * Report that sim_image_open(path) failed with `rc` and message `err`, as
 * "fleetsim: PATH: what is wrong", and return the exit status for it.
 */
int fleet_image_error(const char *path, int rc, const char *err);
/*
 * The profiles folder: `option` (a --profiles value) when given, else
 * $FLEETSIM_PROFILES, else the sim/profiles folder of the source tree the
 * command was built from.
 */
const char *fleet_profile_dir(const char *option);
/* A whole decimal (or 0x-prefixed hex) number that fits in 64 bits. */
bool fleet_parse_u64(const char *text, uint64_t *out);

/*
 * SIGINT and SIGTERM while a command writes a store: remembered, and the
 * statement the store is running is stopped (store_interrupt), so a long
 * one (a mark's index build, a merge's copy) fails as interrupted instead
 * of the process dying with the store unmarked.  The command asks
 * fleet_stop_signal() (0 or the signal) between its steps.  Call it again
 * after libuv had the signals: it leaves them at their defaults.
 */
struct store;
void fleet_catch_stop(struct store *st);
int fleet_stop_signal(void);

#endif
