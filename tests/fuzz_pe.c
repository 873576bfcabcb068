/*
 * fuzz_pe.c — fuzz target of the PE32+ loader.
 *
 * Whatever the bytes, sim_image_parse must return (no crash, no hang, no
 * leak).  When it accepts them, everything a later user relies on must hold
 * as well: the image builds at a slid base inside exactly size_of_image
 * bytes, and symbol, function and section lookups at many RVAs stay inside
 * the image's tables.  Built as a libFuzzer target with
 * -Dfuzzer=libfuzzer, and as corpus replay plus a mutation pass otherwise
 * (fuzz_main.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
