/*
 * fuzz_content.c — fuzz target of the binary channel-file decoder and the
 * validator behind `fleetsim content validate` (images/sensor/content.c).
 *
 * Every input is decoded; what decodes is validated against every sensor
 * version and re-encoded, and the encoding must reproduce the input byte
 * for byte (the format has one spelling per content).
 *
 * Without libFuzzer (the default build) fuzz_main.c replays the seeds given
 * on the command line (files, or directories of *.sys channel files: the
 * test passes the build's compiled content) and then mutates each seed a
 * few thousand times from a fixed-seed PRNG.  Half the mutants get their
 * size and checksum fixed up afterwards, so the decoder's checks past the
 * checksum see as much traffic as the early ones.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content.h"
#include "fuzz.h"
#include "sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned versions[] = {10, 11, 16};
    content_file *file = NULL;
    content_report report;
    uint8_t *again = NULL;
    size_t nagain = 0;
    char err[512];

    if (content_decode(data, size, &file, err, sizeof err) != 0) {
        assert(file == NULL && err[0] != '\0');
        return 0;
    }
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        int rc = content_validate(file, versions[i], &report);
        assert(rc == 0);
        assert(report.nfindings <= CONTENT_MAX_FINDINGS);
        assert(report.nfindings == CONTENT_MAX_FINDINGS ||
               report.nfindings == report.errors + report.warnings);
        (void)rc;
    }
    if (content_encode(file, &again, &nagain, err, sizeof err) == 0) {
        if (nagain != size || memcmp(again, data, size) != 0) {
            fprintf(stderr, "fuzz-content: re-encoding differs from the input\n");
            abort();
        }
        sim_free(again);
    }
    content_file_destroy(file);
    return 0;
}

#ifndef FLEETSIM_LIBFUZZER

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Offsets worth hitting: the header, instance headers, criterion heads. */
static size_t interesting_offset(size_t size)
{
    size_t instance = CHANNEL_HEADER_SIZE + (fuzz_rnd() % 8) * channel_instance_size(21);

    switch (fuzz_rnd() % 5) {
    case 0:
        return fuzz_rnd() % CHANNEL_HEADER_SIZE;
    case 1:
        return instance + fuzz_rnd() % CHANNEL_INSTANCE_HEADER;
    case 2:
        return instance + CHANNEL_INSTANCE_HEADER + (fuzz_rnd() % 21) * CHANNEL_CRITERION_SIZE +
               fuzz_rnd() % 3;
    default:
        return size ? fuzz_rnd() % size : 0;
    }
}

static size_t mutate(uint8_t *buf, size_t size, size_t cap)
{
    static const uint32_t values[] = {0, 1, 2, 3, 4, 20, 21, 32, 33, 46, 47, 0x7f, 0x80, 0xff,
                                      0xffff, 0x10000, 0x7fffffff, 0xffffffffu};
    unsigned n = 1 + (unsigned)(fuzz_rnd() % 3);

    for (unsigned k = 0; k < n && size > 0; k++) {
        size_t at = interesting_offset(size);
        switch (fuzz_rnd() % 4) {
        case 0:
            buf[fuzz_rnd() % size] ^= (uint8_t)(1 + fuzz_rnd() % 255);
            break;
        case 1:
            size = fuzz_rnd() % size;
            break;
        case 2: {
            uint32_t v = values[fuzz_rnd() % (sizeof values / sizeof values[0])];
            unsigned width = 1u << (fuzz_rnd() % 3);
            for (unsigned i = 0; i < width && at + i < size; i++)
                buf[at + i] = (uint8_t)(v >> (8 * i));
            break;
        }
        default:
            if (at < size)
                buf[at] = (uint8_t)fuzz_rnd();
            break;
        }
    }
    /* Half the time, make the header agree with the mutant. */
    if (size >= CHANNEL_HEADER_SIZE && size <= cap && fuzz_rnd() % 2) {
        put32(buf + 20, (uint32_t)size);
        put32(buf + 24, channel_checksum(buf + CHANNEL_HEADER_SIZE,
                                         (uint32_t)(size - CHANNEL_HEADER_SIZE)));
    }
    return size;
}

static const char *const extensions[] = {".sys", NULL};

const fuzz_target fuzz_this = {
    .name = "fuzz-content",
    .extensions = extensions,
    .mutations = 4000,
    .rng_seed = 0x2024071904090527ull,
    .grows = false,
    .mutate = mutate,
    .needs_files = true,
};

#endif
