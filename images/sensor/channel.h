/*
 * channel.h — the binary channel-file format the sensor reads, shared by the
 * sensor (images/sensor/sensor.c) and the host content tools
 * (images/sensor/content.c: `fleetsim content compile|validate`).
 *
 * A channel file carries Template Instances for one channel: rules written
 * by content engineers that the sensor's content interpreter matches
 * against the inputs of OS events.  Which inputs an event has, and how many
 * fields a rule of each kind has, is fixed by the Template Types compiled
 * into the sensor (templates.h).
 *
 * Layout, all integers little-endian, no padding beyond what is shown:
 *
 *   header, 32 bytes
 *     0  u32 magic         CHANNEL_MAGIC (0xAAAAAAAA, as real channel files)
 *     4  u16 format        CHANNEL_FORMAT (1)
 *     6  u16 header_size   32
 *     8  u32 channel       e.g. 291
 *    12  u32 version       content version; a higher one replaces a lower
 *    16  u32 count         number of instances that follow
 *    20  u32 size          total file size in bytes
 *    24  u32 checksum      FNV-1a (32-bit) of bytes [32, size)
 *    28  u32 released      release time, minutes since 2024-01-01 00:00 UTC
 *
 *   then `count` instances, back to back
 *     0  u32 id            unique within the channel
 *     4  u16 template      Template Type id (templates.h)
 *     6  u8  fields        number of criteria: the fields this instance has
 *     7  u8  severity      0..CHANNEL_MAX_SEVERITY
 *     8  u32 size          bytes of this instance: 16 + 48 * fields
 *    12  u32 reserved      0
 *    16  criterion[fields], 48 bytes each; criterion i applies to input i
 *          0  u8 op        CHANNEL_OP_*
 *          1  u8 length    bytes of value used, 0..CHANNEL_VALUE_MAX
 *          2  value[46]    bytes past `length` are zero
 *
 * A wildcard criterion (op 0, length 0) matches anything and needs no input:
 * the interpreter does not read the input it stands for.  Every other
 * criterion compares the event's input (a string, ASCII, case-insensitive)
 * with its value.  The file ends exactly after the last instance.
 */
#ifndef SENSOR_CHANNEL_H
#define SENSOR_CHANNEL_H

#include <stdint.h>

#define CHANNEL_MAGIC 0xAAAAAAAAu
#define CHANNEL_FORMAT 1u
#define CHANNEL_HEADER_SIZE 32u
#define CHANNEL_INSTANCE_HEADER 16u
#define CHANNEL_CRITERION_SIZE 48u
#define CHANNEL_VALUE_MAX 46u
#define CHANNEL_MAX_FIELDS 32u
#define CHANNEL_MAX_INSTANCES 128u
#define CHANNEL_MAX_SEVERITY 5u
#define CHANNEL_MAX_SIZE 65536u

/* Criterion operators: one table, names as content sources spell them. */
#define CHANNEL_OP_MAP(XX)                                                   \
    XX(WILDCARD, 0, "any")                                                  \
    XX(EQUALS, 1, "equals")                                                 \
    XX(PREFIX, 2, "prefix")                                                 \
    XX(CONTAINS, 3, "contains")

enum {
#define XX(name, value, text) CHANNEL_OP_##name = (value),
    CHANNEL_OP_MAP(XX)
#undef XX
    CHANNEL_OP_COUNT
};

typedef struct channel_header {
    uint32_t magic;
    uint16_t format;
    uint16_t header_size;
    uint32_t channel;
    uint32_t version;
    uint32_t count;
    uint32_t size;
    uint32_t checksum;
    uint32_t released;
} channel_header;

typedef struct channel_criterion {
    uint8_t op;
    uint8_t length;
    uint8_t value[CHANNEL_VALUE_MAX];
} channel_criterion;

typedef struct channel_instance {
    uint32_t id;
    uint16_t template_type;
    uint8_t fields;
    uint8_t severity;
    uint32_t size;
    uint32_t reserved;
    channel_criterion criteria[]; /* `fields` of them */
} channel_instance;

_Static_assert(sizeof(channel_header) == CHANNEL_HEADER_SIZE, "channel header layout");
_Static_assert(sizeof(channel_criterion) == CHANNEL_CRITERION_SIZE, "criterion layout");
_Static_assert(sizeof(channel_instance) == CHANNEL_INSTANCE_HEADER, "instance layout");

/* Bytes of an instance with `fields` criteria. */
static inline uint32_t channel_instance_size(uint32_t fields)
{
    return CHANNEL_INSTANCE_HEADER + CHANNEL_CRITERION_SIZE * fields;
}

/* FNV-1a, 32-bit: the header's checksum over everything after it. */
static inline uint32_t channel_checksum(const uint8_t *p, uint32_t n)
{
    uint32_t h = 0x811C9DC5u;

    for (uint32_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x01000193u;
    }
    return h;
}

#endif
