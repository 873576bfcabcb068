/*
 * fuzz_pe.c — fuzz target of the PE32+ loader.
 *
 * Whatever the bytes, sim_image_parse must return (no crash, no hang, no
 * leak).  When it accepts them, everything a later user relies on must hold
 * as well: the image builds at a slid base inside exactly size_of_image
 * bytes, and symbol, function and section lookups at many RVAs stay inside
 * the image's tables.  Built as a libFuzzer target with
 * -Dfuzzer=libfuzzer, and as corpus replay plus a mutation pass otherwise
 * (fuzz_main.c): the seeds are the *.sys drivers named on the command line
 * (the test passes the build's images directory of real mingw-built
 * drivers) and a forged one (pe_forge.c); each gets a few thousand mutants
 * with byte flips, truncations and overwrites of header fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pe_forge.h"
#include "sim.h"

static void check_lookups(const sim_image *img, uint32_t rva)
{
    const sim_symbol *sym = sim_image_symbol_at(img, rva);
    if (sym && (sym < img->symbols || sym >= img->symbols + img->nsymbols ||
                sym->rva > rva || sym->name == NULL))
        abort();
    const sim_runtime_function *f = sim_image_function_at(img, rva);
    if (f && (rva < f->begin || rva >= f->end))
        abort();
    const sim_section *s = sim_image_section_at(img, rva);
    if (s && (rva < s->rva || rva - s->rva >= s->vsize))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sim_image *img = NULL;
    char err[256];
    if (sim_image_parse(data, size, "fuzz.sys", &img, err, sizeof err) != 0) {
        if (img != NULL || memchr(err, 0, sizeof err) == NULL)
            abort();
        return 0;
    }

    /* Invariants the engine relies on. */
    for (size_t i = 0; i < img->nsections; i++) {
        const sim_section *s = &img->sections[i];
        if ((uint64_t)s->rva + s->vsize > img->size_of_image || s->raw_size > s->vsize ||
            (s->raw_size && (uint64_t)s->raw_offset + s->raw_size > img->file_size))
            abort();
    }
    for (size_t i = 1; i < img->nfunctions; i++)
        if (img->functions[i - 1].end > img->functions[i].begin)
            abort();
    for (size_t i = 1; i < img->nsymbols; i++)
        if (img->symbols[i - 1].rva >= img->symbols[i].rva)
            abort();
    for (size_t i = 0; i < img->nimports; i++)
        if ((uint64_t)img->imports[i].iat_rva + 8 > img->size_of_image)
            abort();

    uint8_t *mem = malloc(img->size_of_image);
    if (mem) {
        sim_image_build(img, img->preferred_base + 0x1230000ull, mem);
        sim_image_build(img, 0xfffff80612340000ull, mem);
        free(mem);
    }

    uint32_t step = img->size_of_image / 97 + 1;
    for (uint64_t rva = 0; rva < (uint64_t)img->size_of_image + 0x100; rva += step)
        check_lookups(img, (uint32_t)rva);
    for (size_t i = 0; i < img->nfunctions; i++) {
        check_lookups(img, img->functions[i].begin);
        check_lookups(img, img->functions[i].end - 1);
    }
    check_lookups(img, 0xffffffffu);
    sim_image_destroy(img);
    return 0;
}

#ifndef FLEETSIM_LIBFUZZER

/* Offsets worth overwriting: header fields, directories, the section table. */
static size_t interesting_offset(const uint8_t *data, size_t size)
{
    size_t lfanew = size >= 0x40 ? (size_t)(data[0x3c] | data[0x3d] << 8) : 0;
    switch (fuzz_rnd() % 6) {
    case 0:
        return 0x3c;
    case 1: /* file header */
        return lfanew + 4 + fuzz_rnd() % 20;
    case 2: /* optional header and directories */
        return lfanew + 24 + fuzz_rnd() % 240;
    case 3: /* section table */
        return lfanew + 24 + 240 + fuzz_rnd() % (40 * 8);
    default:
        return size ? fuzz_rnd() % size : 0;
    }
}

static const uint32_t interesting_values[] = {
    0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x1000, 0x7fff, 0x8000, 0xffff, 0x10000,
    0x7fffffff, 0x80000000u, 0xfffffff0u, 0xffffffffu,
};

static size_t mutate(uint8_t *buf, size_t size, size_t cap)
{
    unsigned n = 1 + (unsigned)(fuzz_rnd() % 4);
    for (unsigned k = 0; k < n && size > 0; k++) {
        switch (fuzz_rnd() % 5) {
        case 0: /* flip a byte anywhere */
            buf[fuzz_rnd() % size] ^= (uint8_t)(1 + fuzz_rnd() % 255);
            break;
        case 1: /* truncate */
            size = fuzz_rnd() % size;
            break;
        case 2: { /* overwrite a header field with an edge value */
            size_t at = interesting_offset(buf, size);
            uint32_t v = interesting_values[fuzz_rnd() % (sizeof interesting_values /
                                                          sizeof interesting_values[0])];
            unsigned width = 1u << (fuzz_rnd() % 3);
            for (unsigned i = 0; i < width && at + i < size; i++)
                buf[at + i] = (uint8_t)(v >> (8 * i));
            break;
        }
        case 3: { /* random value at a header field */
            size_t at = interesting_offset(buf, size);
            if (at < size)
                buf[at] = (uint8_t)fuzz_rnd();
            break;
        }
        default: { /* copy a block over another (duplicated tables) */
            size_t from = fuzz_rnd() % size, to = fuzz_rnd() % size, len = 1 + fuzz_rnd() % 64;
            if (from + len <= size && to + len <= size && to + len <= cap)
                memmove(buf + to, buf + from, len);
            break;
        }
        }
    }
    return size;
}

/* A driver forged to order, so the mutants reach what real drivers lack. */
static void forged_seed(void)
{
    pf_image spec;
    pf_init_driver(&spec);
    pf_layout layout;
    uint8_t *forged = pf_build(&spec, &layout);
    fuzz_add_seed(forged, layout.size);
    free(forged);
}

static const char *const extensions[] = {".sys", NULL};

const fuzz_target fuzz_this = {
    .name = "fuzz-pe",
    .extensions = extensions,
    .mutations = 3000,
    .rng_seed = 0x9e3779b97f4a7c15ull,
    .grows = false,
    .mutate = mutate,
    .more_seeds = forged_seed,
};

#endif
