/*
 * cmd_content.c — `fleetsim content`: the sample sensor's content tools.
 *
 *   fleetsim content compile SRC.yaml -o OUT.bin
 *   fleetsim content validate --sensor 7.11 FILE(.yaml|.bin)...
 *
 * compile turns a readable source into the binary channel file the sensor
 * reads (images/sensor/channel.h), the same bytes every time.  validate
 * checks content against one sensor version's template types the way the
 * July 2024 root-cause analysis says the vendor's validator should have:
 * field counts on both sides, criteria per field, and says which field of
 * which instance is out of range.
 *
 * Exit status (fleet.h): 0 valid / compiled, 1 content rejected by the
 * validator (a binary that does not decode is rejected too: the sensor
 * would refuse it), 2 bad usage or a source that cannot be read or parsed
 * (YAML errors are file:line:column).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content.h"
#include "fleet.h"
#include "sim.h"

#define USAGE                                                                \
    "fleetsim content compile SRC.yaml -o OUT.bin\n"                         \
    "       fleetsim content validate --sensor 7.N FILE..."

static bool is_yaml(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot != NULL && (strcmp(dot, ".yaml") == 0 || strcmp(dot, ".yml") == 0);
}

static int read_file(const char *path, uint8_t **data, size_t *size)
{
    /* Far past any channel file. */
    int rc = sim_read_file(path, 16u << 20, data, size);
    return rc == 0 ? 0 : rc == SIM_ENOMEM ? ENOMEM : rc == SIM_ERANGE ? EFBIG : errno;
}

static int write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *fp = fopen(path, "wb");

    if (fp == NULL)
        return errno;
    if (fwrite(data, 1, size, fp) != size) {
        int e = errno ? errno : EIO;
        fclose(fp);
        return e;
    }
    if (fclose(fp) != 0)
        return errno ? errno : EIO;
    return 0;
}

static int compile(int argc, char **argv)
{
    static const struct option options[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL;
    content_file *file = NULL;
    uint8_t *bytes = NULL;
    size_t size = 0;
    char err[512] = "";
    int opt, rc;

    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":o:h", options, NULL)) != -1) {
        switch (opt) {
        case 'o':
            output = optarg;
            break;
        case 'h':
            printf("usage: %s\n", USAGE);
            return FLEET_EXIT_OK;
        default:
            return fleet_bad_option(USAGE, argv, opt);
        }
    }
    if (optind + 1 != argc)
        return fleet_usage_error(USAGE, "compile takes one source file");
    if (output == NULL)
        return fleet_usage_error(USAGE, "compile needs -o OUT.bin");
    rc = content_load_yaml(argv[optind], &file, err, sizeof err);
    if (rc == 0)
        rc = content_encode(file, &bytes, &size, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "fleetsim: %s\n", err[0] ? err : sim_strerror(rc));
        content_file_destroy(file);
        return FLEET_EXIT_USAGE;
    }
    rc = write_file(output, bytes, size);
    if (rc != 0)
        fprintf(stderr, "fleetsim: %s: %s\n", output, strerror(rc));
    content_file_destroy(file);
    sim_free(bytes);
    return rc != 0 ? FLEET_EXIT_USAGE : FLEET_EXIT_OK;
}

/* "7.11" (or "11") → 11. */
static bool parse_sensor(const char *text, unsigned *minor)
{
    uint64_t v;

    if (strncmp(text, "7.", 2) == 0)
        text += 2;
    if (!fleet_parse_u64(text, &v) || v > 255 || !content_sensor_known((unsigned)v))
        return false;
    *minor = (unsigned)v;
    return true;
}

/* Print one finding: file:line:column for sources, file: offset 0x… for binaries. */
static void print_finding(const char *path, const content_finding *f)
{
    const char *sev = f->severity == CONTENT_ERROR ? "error" : "warning";

    if (f->pos.line > 0)
        fprintf(stderr, "%s:%d:%d: %s: %s\n", path, f->pos.line, f->pos.column, sev, f->message);
    else if (f->offset > 0)
        fprintf(stderr, "%s: offset 0x%x: %s: %s\n", path, (unsigned)f->offset, sev, f->message);
    else
        fprintf(stderr, "%s: %s: %s\n", path, sev, f->message);
}

/* One file: 0 valid, 1 rejected, 2 unreadable or not parseable. */
static int validate_one(const char *path, unsigned minor, content_report *report)
{
    content_file *file = NULL;
    char err[512] = "";
    int rc;

    if (is_yaml(path)) {
        rc = content_load_yaml(path, &file, err, sizeof err);
        if (rc != 0) {
            fprintf(stderr, "fleetsim: %s\n", err[0] ? err : sim_strerror(rc));
            return FLEET_EXIT_USAGE;
        }
    } else {
        uint8_t *data = NULL;
        size_t size = 0;

        rc = read_file(path, &data, &size);
        if (rc != 0) {
            fprintf(stderr, "fleetsim: %s: %s\n", path, strerror(rc));
            return FLEET_EXIT_USAGE;
        }
        rc = content_decode(data, size, &file, err, sizeof err);
        sim_free(data);
        if (rc == SIM_ENOMEM) {
            fprintf(stderr, "fleetsim: out of memory\n");
            return FLEET_EXIT_USAGE;
        }
        if (rc != 0) {
            fprintf(stderr, "%s: error: %s\n", path, err);
            printf("%s: rejected for sensor 7.%u: not a well-formed channel file\n", path, minor);
            return FLEET_EXIT_FAULT;
        }
    }
    content_validate(file, minor, report);
    for (unsigned i = 0; i < report->nfindings; i++)
        print_finding(path, &report->findings[i]);
    if (report->nfindings < report->errors + report->warnings)
        fprintf(stderr, "%s: %u more findings not shown\n", path,
                report->errors + report->warnings - report->nfindings);
    if (report->errors > 0)
        printf("%s: rejected for sensor 7.%u: %u error%s, %u warning%s (channel %u version %u, "
               "%u instances)\n", path, minor, report->errors, report->errors == 1 ? "" : "s",
               report->warnings, report->warnings == 1 ? "" : "s", file->channel, file->version,
               file->count);
    else
        printf("%s: valid for sensor 7.%u: channel %u version %u, %u instances, %u warning%s\n",
               path, minor, file->channel, file->version, file->count, report->warnings,
               report->warnings == 1 ? "" : "s");
    rc = report->errors > 0 ? FLEET_EXIT_FAULT : FLEET_EXIT_OK;
    content_file_destroy(file);
    return rc;
}

static int validate(int argc, char **argv)
{
    static const struct option options[] = {
        {"sensor", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    content_report *report;
    unsigned minor = 0;
    bool have_sensor = false;
    int opt, status = FLEET_EXIT_OK;

    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":s:h", options, NULL)) != -1) {
        switch (opt) {
        case 's':
            if (!parse_sensor(optarg, &minor))
                return fleet_usage_error(USAGE, "--sensor %s: known versions are 7.10, 7.11, "
                                         "7.16", optarg);
            have_sensor = true;
            break;
        case 'h':
            printf("usage: %s\n", USAGE);
            return FLEET_EXIT_OK;
        default:
            return fleet_bad_option(USAGE, argv, opt);
        }
    }
    if (!have_sensor)
        return fleet_usage_error(USAGE, "validate needs --sensor 7.N");
    if (optind >= argc)
        return fleet_usage_error(USAGE, "validate needs a content file");
    report = sim_malloc(sizeof *report);
    if (report == NULL) {
        fprintf(stderr, "fleetsim: out of memory\n");
        return FLEET_EXIT_USAGE;
    }
    /* Bad input outranks a rejection: 2 if any file could not be read. */
    for (int i = optind; i < argc; i++) {
        int rc = validate_one(argv[i], minor, report);
        if (rc > status)
            status = rc;
    }
    sim_free(report);
    return status;
}

int fleet_cmd_content(int argc, char **argv)
{
    if (argc < 2)
        return fleet_usage_error(USAGE, "content needs a subcommand: compile or validate");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: %s\n", USAGE);
        return FLEET_EXIT_OK;
    }
    if (strcmp(argv[1], "compile") == 0)
        return compile(argc - 1, argv + 1);
    if (strcmp(argv[1], "validate") == 0)
        return validate(argc - 1, argv + 1);
    return fleet_usage_error(USAGE, "unknown content subcommand \"%s\"", argv[1]);
}
