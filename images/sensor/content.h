/*
 * content.h — the host-side content tools for the sample sensor's channel
 * files: a compiler from readable YAML sources to the binary format
 * (channel.h), a decoder for that format, and a validator that checks
 * content against the Template Types of one sensor version (templates.h).
 *
 * `fleetsim content compile|validate` (fleet/cmd_content.c) is their
 * command-line face; the fuzz target tests/fuzz_content.c drives the
 * decoder.  Nothing here prints: errors come back as negative SIM_E* codes
 * with a message, findings as records the caller shows.
 *
 * The validator does what the 19 July 2024 root-cause analysis says the
 * vendor's own validator should have done: it compares the field counts on
 * both sides — the fields an instance has against those its Template Type
 * declares, and every concrete criterion against the inputs the sensor's
 * event integration really supplies — and names which field of which
 * instance is out of range.
 */
#ifndef SENSOR_CONTENT_H
#define SENSOR_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "channel.h"

/* Where something came from in a YAML source (0 when from a binary). */
typedef struct content_pos {
    int line, column;        /* 1-based */
} content_pos;

typedef struct content_instance {
    uint32_t id;
    uint16_t template_type;
    uint8_t fields;
    uint8_t severity;
    channel_criterion criteria[CHANNEL_MAX_FIELDS];
    content_pos pos;                         /* the instance */
    content_pos field_pos[CHANNEL_MAX_FIELDS]; /* each criterion given */
    uint32_t offset;                         /* in the binary, when decoded */
} content_instance;

typedef struct content_file {
    uint32_t channel, version, released;
    uint32_t count;
    content_instance *instances;
} content_file;

void content_file_destroy(content_file *file); /* accepts NULL */

/*
 * Read a YAML content source.  Errors are "path:line:column: what" in err
 * and SIM_EFORMAT (SIM_EIO when the file cannot be read).
 */
int content_load_yaml(const char *path, content_file **out, char *err, size_t errlen);

/* Decode a binary channel file; errors say at which offset what is wrong. */
int content_decode(const uint8_t *data, size_t size, content_file **out, char *err,
                   size_t errlen);

/* Encode to the binary format: *out (sim_malloc'd) holds *size bytes. */
int content_encode(const content_file *file, uint8_t **out, size_t *size, char *err,
                   size_t errlen);

/* "2024-07-19T04:09Z" → minutes since 2024-01-01 00:00 UTC, and back. */
int content_parse_time(const char *text, uint32_t *minutes);
void content_format_time(uint32_t minutes, char *out, size_t max);

/* ---- validation ---------------------------------------------------------- */

typedef enum { CONTENT_WARNING, CONTENT_ERROR } content_severity;

typedef struct content_finding {
    content_severity severity;
    int instance;            /* 1-based index in the file, 0 for the file */
    int field;               /* 1-based field, 0 for the instance */
    content_pos pos;
    uint32_t offset;         /* byte offset in a binary, 0 when unknown */
    char message[320];
} content_finding;

#define CONTENT_MAX_FINDINGS 64

typedef struct content_report {
    unsigned errors, warnings;
    unsigned nfindings;      /* findings kept, at most CONTENT_MAX_FINDINGS */
    content_finding findings[CONTENT_MAX_FINDINGS];
} content_report;

/* Whether 7.`minor` is a sensor version the template table knows. */
int content_sensor_known(unsigned minor);

/* Check `file` against sensor 7.`minor`'s template types (SIM_EINVAL when
 * the version is unknown).  The verdict is report->errors == 0. */
int content_validate(const content_file *file, unsigned minor, content_report *report);

#endif
