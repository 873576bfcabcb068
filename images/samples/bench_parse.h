/*
 * bench_parse.h — the parsing work of the bench-parse driver, as plain C.
 *
 * The same code runs in two places: inside bench-parse.sys under emulation
 * (images/samples/bench_parse.c) and natively in tests/bench.c, so the
 * benchmark can say how much slower emulation is than the host running the
 * very same instructions' source.  Hence: no Windows types, no library
 * calls, only <stddef.h> and <stdint.h>, and every function static.
 *
 * The work is what a sensor does with content: build a buffer of TLV
 * records (type: 1 byte, length: 1 byte, value), walk it checking every
 * length against the buffer, checksum each value (FNV-1a), and match every
 * record against a small table of templates (type + value prefix).  One
 * call, bench_parse_run(), is a few tens of thousands of instructions.
 */
#ifndef BENCH_PARSE_H
#define BENCH_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_CONTENT_SIZE 2048u
#define BENCH_SEED 0x2024071fu

typedef struct bench_template {
    uint8_t type;
    uint8_t length;           /* bytes of prefix that must match */
    uint8_t prefix[4];
} bench_template;

typedef struct bench_result {
    uint32_t records;         /* well-formed records walked */
    uint32_t matched;         /* records that matched a template */
    uint32_t rejected;        /* 1 when the walk stopped at a bad length */
    uint32_t checksum;        /* FNV-1a over all values, mixed with types */
} bench_result;

static const bench_template bench_templates[] = {
    { 1, 1, { 0x00 } },
    { 2, 2, { 0x41, 0x42 } },
    { 3, 1, { 0x7f } },
    { 5, 2, { 0x10, 0x20 } },
    { 7, 1, { 0xff } },
    { 9, 3, { 0x01, 0x02, 0x03 } },
    { 11, 1, { 0x80 } },
    { 13, 4, { 0xde, 0xad, 0xbe, 0xef } },
};

static inline uint32_t bench_next(uint32_t *state)
{
    uint32_t x = *state;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* Fill buf with TLV records drawn from seed; returns the bytes used. */
static inline size_t bench_build_content(uint8_t *buf, size_t size, uint32_t seed)
{
    uint32_t state = seed ? seed : 1u;
    size_t at = 0;

    for (;;) {
        uint32_t r = bench_next(&state);
        uint8_t type = (uint8_t)(r & 15u);
        uint8_t length = (uint8_t)(4u + ((r >> 8) & 31u));
        uint8_t i;

        if (at + 2u + length > size)
            break;
        buf[at] = type;
        buf[at + 1] = length;
        for (i = 0; i < length; i++) {
            /* Mostly random bytes, some records led by a template prefix. */
            uint32_t v = bench_next(&state);
            buf[at + 2 + i] = (uint8_t)(v >> 11);
        }
        if ((r >> 16) % 3u == 0u) {
            size_t t = (r >> 20) % (sizeof(bench_templates) / sizeof(bench_templates[0]));

            buf[at] = bench_templates[t].type;
            for (i = 0; i < bench_templates[t].length; i++)
                buf[at + 2 + i] = bench_templates[t].prefix[i];
        }
        at += 2u + length;
    }
    return at;
}

static inline int bench_match(const uint8_t *value, uint8_t type, uint8_t length)
{
    size_t t, i;

    for (t = 0; t < sizeof(bench_templates) / sizeof(bench_templates[0]); t++) {
        const bench_template *tp = &bench_templates[t];

        if (tp->type != type || tp->length > length)
            continue;
        for (i = 0; i < tp->length; i++) {
            if (value[i] != tp->prefix[i])
                break;
        }
        if (i == tp->length)
            return 1;
    }
    return 0;
}

/* Walk the records of buf[0, size), checking each against the buffer. */
static inline void bench_parse(const uint8_t *buf, size_t size, bench_result *out)
{
    uint32_t hash = 2166136261u;
    size_t at = 0;

    out->records = out->matched = out->rejected = 0;
    while (at + 2u <= size) {
        uint8_t type = buf[at];
        uint8_t length = buf[at + 1];
        size_t i;

        if (length > size - at - 2u) {
            out->rejected = 1;
            break;
        }
        hash = (hash ^ type) * 16777619u;
        for (i = 0; i < length; i++)
            hash = (hash ^ buf[at + 2 + i]) * 16777619u;
        out->matched += (uint32_t)bench_match(buf + at + 2, type, length);
        out->records++;
        at += 2u + length;
    }
    out->checksum = hash;
}

/* One unit of benchmark work: build the content, then parse it. */
static inline void bench_parse_run(uint8_t *buf, uint32_t seed, bench_result *out)
{
    size_t n = bench_build_content(buf, BENCH_CONTENT_SIZE, seed);

    bench_parse(buf, n, out);
}

#endif
