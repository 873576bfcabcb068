/*
 * main.c — the `fleetsim` command: `fleetsim COMMAND [ARGS]`.
 *
 * main() looks the command up in one table and hands it the rest of the
 * command line; everything a command does lives in its own cmd_*.c.  A new
 * command is one row of `commands` and one declaration in fleet.h.  This
 * file also holds the helpers the commands share for argument errors, so
 * every command reports them the same way: a message and the usage line on
 * stderr, exit status 2.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "sim.h"
#include "store.h"

/* meson passes the project version; a build without it still says one. */
#ifndef FLEETSIM_VERSION
#define FLEETSIM_VERSION "0.1.0"
#endif

#define USAGE "fleetsim COMMAND [ARGS]  (`fleetsim help` lists the commands)"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"emulate", fleet_cmd_emulate, "run one driver image on one emulated endpoint"},
    {"inspect", fleet_cmd_inspect, "show a driver image's headers, sections, imports, exports"},
    {"run", fleet_cmd_run, "play a scenario's fleet forward and store every outcome"},
    {"report", fleet_cmd_report, "report a run's cohorts, crash buckets and gate verdict"},
    {"diff", fleet_cmd_diff, "compare two runs cohort by cohort"},
    {"plans", fleet_cmd_plans, "rollout plans' runs side by side"},
    {"merge", fleet_cmd_merge, "merge the stores of a run's shards into one"},
    {"profiles", fleet_cmd_profiles, "list the OS profiles endpoints can run"},
    {"content", fleet_cmd_content, "compile and validate the sample sensor's channel files"},
    {"help", cmd_help, "list the commands, or show one's usage: help COMMAND"},
    {"--version", cmd_version, "print fleetsim's version"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int fleet_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;

    fputs("fleetsim: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s\n", usage);
    return FLEET_EXIT_USAGE;
}

/*
 * The commands parse with getopt_long and opterr = 0 (only this layer
 * prints, and in one voice).  A leading ':' in their optstring makes a
 * missing value ':' rather than '?'; either way argv[optind - 1] is the
 * argument at fault.
 */
int fleet_bad_option(const char *usage, char **argv, int opt)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";

    if (opt == ':')
        return fleet_usage_error(usage, "option %s needs a value", arg);
    if (optopt != 0 && strncmp(arg, "--", 2) != 0)
        return fleet_usage_error(usage, "unknown option -%c", optopt);
    return fleet_usage_error(usage, "unknown option %s", arg);
}

int fleet_image_error(const char *path, int rc, const char *err)
{
    size_t n = strlen(path);

    if (err == NULL || err[0] == '\0')
        err = sim_strerror(rc);
    /* Some messages (I/O errors) already start with the path: say it once. */
    if (strncmp(err, path, n) == 0 && err[n] == ':')
        fprintf(stderr, "fleetsim: %s\n", err);
    else
        fprintf(stderr, "fleetsim: %s: %s\n", path, err);
    return rc == SIM_EENGINE ? FLEET_EXIT_UNFAITHFUL : FLEET_EXIT_USAGE;
}

bool fleet_parse_u64(const char *text, uint64_t *out)
{
    char *end;
    unsigned long long v;

    /* strtoull accepts leading space and a minus sign; a count does not. */
    if (text[0] < '0' || text[0] > '9')
        return false;
    errno = 0;
    v = strtoull(text, &end, 0);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

static struct store *volatile stop_store;
static volatile sig_atomic_t stop_signal;

static void on_stop(int signum)
{
    stop_signal = signum;
    if (stop_store)
        store_interrupt(stop_store);
}

void fleet_catch_stop(struct store *st)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    stop_store = st;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int fleet_stop_signal(void)
{
    return stop_signal;
}

static void print_help(void)
{
    printf("usage: fleetsim COMMAND [ARGS]\n\n"
           "fleetsim emulates Windows x64 kernel drivers and the content they parse.\n\n"
           "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        printf("  %-10s %s\n", commands[i].name, commands[i].help);
    printf("\nexit status:\n");
#define XX(name, value, msg) printf("  %d  %s\n", value, msg);
    FLEET_EXIT_MAP(XX)
#undef XX
}

static int cmd_help(int argc, char **argv)
{
    static char help_option[] = "--help";
    const struct command *cmd;

    if (argc > 2)
        return fleet_usage_error("fleetsim help [COMMAND]", "too many arguments");
    cmd = argc == 2 ? find_command(argv[1]) : NULL;
    if (argc == 2 && cmd == NULL && strcmp(argv[1], "--help") != 0 &&
        strcmp(argv[1], "-h") != 0)
        return fleet_usage_error("fleetsim help [COMMAND]",
                                 "unknown command \"%s\"", argv[1]);
    if (cmd == NULL || cmd->run == cmd_help || cmd->run == cmd_version) {
        print_help();
        return FLEET_EXIT_OK;
    }
    /* `help emulate` is `emulate --help`: usage lives with its command. */
    char *sub[] = {argv[1], help_option, NULL};
    return cmd->run(2, sub);
}

static int cmd_version(int argc, char **argv)
{
    if (argc > 1)
        return fleet_usage_error("fleetsim --version", "too many arguments");
    printf("fleetsim %s\n", FLEETSIM_VERSION);
    return FLEET_EXIT_OK;
}

int main(int argc, char **argv)
{
    const struct command *cmd;
    const char *name;
    int status;

    if (argc < 2)
        return fleet_usage_error(USAGE, "no command given");
    name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    cmd = find_command(name);
    if (cmd == NULL)
        return fleet_usage_error(USAGE, "unknown command \"%s\"", argv[1]);
    status = cmd->run(argc - 1, argv + 1);

    /* Output that never reached its file is an error, not a result: a
     * report cut short by a full disk must not exit 0 (or 1). */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "fleetsim: cannot write output: %s\n", strerror(errno));
        return FLEET_EXIT_USAGE;
    }
    return status;
}
