/*
 * templates.h — the Template Types compiled into each sensor version, as
 * plain C data.
 *
 * A Template Type is the sensor-side half of a detection: its name, the OS
 * event that feeds it, and how many input fields it declares.  Content
 * (channel files, channel.h) supplies Template Instances of these types:
 * per field a criterion, wildcard or concrete.  The event integration code
 * of each sensor version builds an input array for each event; how many
 * inputs it supplies is a property of that code, kept here beside the type
 * so both sides of the count live in one place.
 *
 * The same table is compiled into two places: the sensor driver
 * (images/sensor/sensor.c, freestanding, mingw-w64) and the host content
 * tools (images/sensor/content.c), so the validator knows exactly the types
 * each shipped sensor version has.  Hence: only <stdint.h>, no library
 * calls, every function static inline.
 *
 * The history this table encodes (the vendor's root-cause analysis of the
 * 19 July 2024 incident): sensor 7.11 added the InterProcessCommunication
 * type for named-pipe detections, declaring 21 input fields while its event
 * integration supplied 20; content with a wildcard on field 21 ran for
 * months; the first instance with a concrete criterion on field 21 made
 * the interpreter read past the 20 inputs.  7.16 keeps the declared count
 * but checks it against the inputs supplied, at content load and on every
 * read.
 */
#ifndef SENSOR_TEMPLATES_H
#define SENSOR_TEMPLATES_H

#include <stdint.h>

/* Events the sensor hears about, and the versions that were shipped. */
enum {
    SENSOR_EVENT_PROCESS = 1,   /* process creation: PsSetCreateProcessNotifyRoutineEx */
    SENSOR_EVENT_PIPE = 2,      /* named-pipe creation: minifilter, IRP_MJ_CREATE_NAMED_PIPE */
    SENSOR_EVENT_FILE = 3       /* file write: minifilter, IRP_MJ_WRITE */
};

#define SENSOR_VERSION_MAJOR 7
#define SENSOR_MAX_INPUTS 32    /* room in the interpreter's input array */

/* Template Type ids as channel files name them. */
enum {
    SENSOR_TEMPLATE_PROCESS_CREATION = 1,
    SENSOR_TEMPLATE_FILE_WRITE = 2,
    SENSOR_TEMPLATE_IPC = 3
};

static const char *const sensor_process_fields[] = {
    "ImageFileName", "ImageBaseName", "CommandLine", "ProcessId",
    "ParentProcessId", "CreatingThreadId",
};

static const char *const sensor_file_fields[] = {
    "FilePath", "FileName", "Extension", "WriteLength",
};

static const char *const sensor_ipc_fields[] = {
    "PipeName", "PipeBaseName", "DeviceName", "ProcessImageName",
    "ProcessId", "ThreadId", "RequestorMode", "MajorFunction",
    "OperationFlags", "IrpFlags", "NamedPipeType", "ReadMode",
    "CompletionMode", "MaximumInstances", "InboundQuota", "OutboundQuota",
    "DefaultTimeout", "SessionId", "IntegrityLevel", "OsBuild",
    "RemoteClientName",   /* declared by the type, never supplied on 7.11-7.16 */
};

typedef struct sensor_template_type {
    uint16_t id;
    const char *name;
    uint8_t event;            /* SENSOR_EVENT_* that feeds it */
    uint8_t fields;           /* input fields the type declares */
    uint8_t since_minor;      /* first 7.x sensor with the type */
    const char *const *field_names; /* `fields` names, 1-based in messages */
} sensor_template_type;

static const sensor_template_type sensor_template_types[] = {
    { SENSOR_TEMPLATE_PROCESS_CREATION, "ProcessCreation", SENSOR_EVENT_PROCESS,
      6, 10, sensor_process_fields },
    { SENSOR_TEMPLATE_FILE_WRITE, "FileWrite", SENSOR_EVENT_FILE,
      4, 10, sensor_file_fields },
    { SENSOR_TEMPLATE_IPC, "InterProcessCommunication", SENSOR_EVENT_PIPE,
      21, 11, sensor_ipc_fields },
};

#define SENSOR_TEMPLATE_COUNT                                                \
    (sizeof sensor_template_types / sizeof sensor_template_types[0])

/* The sensor versions that were built and shipped (7.x). */
static const uint8_t sensor_versions[] = { 10, 11, 16 };

#define SENSOR_VERSION_COUNT (sizeof sensor_versions / sizeof sensor_versions[0])

/* Whether 7.`minor` is a version this table describes. */
static inline int sensor_version_known(unsigned minor)
{
    for (unsigned i = 0; i < SENSOR_VERSION_COUNT; i++)
        if (sensor_versions[i] == minor)
            return 1;
    return 0;
}

/* Template type `id` as sensor 7.`minor` has it, or 0 (NULL) when absent. */
static inline const sensor_template_type *sensor_template_find(unsigned minor, unsigned id)
{
    for (unsigned i = 0; i < SENSOR_TEMPLATE_COUNT; i++)
        if (sensor_template_types[i].id == id)
            return minor >= sensor_template_types[i].since_minor
                       ? &sensor_template_types[i] : 0;
    return 0;
}

/* Template type `id` in any version (for the compiler), or 0. */
static inline const sensor_template_type *sensor_template_any(unsigned id)
{
    for (unsigned i = 0; i < SENSOR_TEMPLATE_COUNT; i++)
        if (sensor_template_types[i].id == id)
            return &sensor_template_types[i];
    return 0;
}

/*
 * Inputs the event integration code of 7.`minor` supplies for `event`:
 * what the interpreter's input array really holds.  The named-pipe
 * integration filled 20 inputs for a type that declares 21.
 */
static inline unsigned sensor_event_inputs(unsigned minor, unsigned event)
{
    switch (event) {
    case SENSOR_EVENT_PROCESS:
        return 6;
    case SENSOR_EVENT_FILE:
        return 4;
    case SENSOR_EVENT_PIPE:
        return minor >= 11 ? 20 : 0;
    default:
        return 0;
    }
}

static inline const char *sensor_event_name(unsigned event)
{
    switch (event) {
    case SENSOR_EVENT_PROCESS: return "process-create";
    case SENSOR_EVENT_PIPE: return "pipe-create";
    case SENSOR_EVENT_FILE: return "file-write";
    default: return "unknown";
    }
}

#endif
