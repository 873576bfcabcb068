/*
 * parser_format.h — the content format of the parser sample driver
 * (images/samples/parser.c), shared by the driver and any host tool that
 * writes or checks content files.
 *
 * A content file is a header followed by `count` template entries, all
 * little-endian, no padding:
 *
 *   offset size  header
 *   0      4     magic "PCF1"
 *   4      2     version (1)
 *   6      2     count: number of entries that follow
 *
 *   offset size  entry (32 bytes)
 *   0      2     field: index of the sensor input the template inspects;
 *                the sensor supplies PARSER_INPUT_COUNT (20) inputs, so
 *                valid content uses 0..19
 *   2      1     op: PARSER_OP_EQUALS or PARSER_OP_PREFIX
 *   3      1     severity: reported when the template matches
 *   4      4     length: bytes of value that matter (<= 24)
 *   8      24    value, zero-padded
 *
 * The sample's bug, the one DESIGN.md describes: the driver checks `field`
 * against the capacity of its input array (PARSER_INPUT_SLOTS), not against
 * the number of inputs it filled (PARSER_INPUT_COUNT), so an entry with
 * field 20 reads a slot nobody wrote.
 */
#ifndef PARSER_FORMAT_H
#define PARSER_FORMAT_H

#include <stdint.h>

#define PARSER_MAGIC 0x31464350u      /* "PCF1" read as a little-endian uint32 */
#define PARSER_VERSION 1u
#define PARSER_INPUT_COUNT 20u        /* inputs the sensor fills */
#define PARSER_INPUT_SLOTS 32u        /* capacity of its input array */
#define PARSER_VALUE_MAX 24u
#define PARSER_MAX_ENTRIES 256u
#define PARSER_MAX_CONTENT 8192u      /* bytes the driver reads at most */

enum { PARSER_OP_EQUALS = 0, PARSER_OP_PREFIX = 1 };

#pragma pack(push, 1)
typedef struct parser_header {
    uint32_t magic;
    uint16_t version;
    uint16_t count;
} parser_header;

typedef struct parser_entry {
    uint16_t field;
    uint8_t op;
    uint8_t severity;
    uint32_t length;
    char value[PARSER_VALUE_MAX];
} parser_entry;
#pragma pack(pop)

_Static_assert(sizeof(parser_header) == 8, "parser_header is 8 bytes");
_Static_assert(sizeof(parser_entry) == 32, "parser_entry is 32 bytes");

#endif
