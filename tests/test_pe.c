/*
 * test_pe.c — unit tests of the PE32+ loader (sim/pe.c).
 *
 * A forged driver (pe_forge.c) is parsed and checked field by field; then
 * one field at a time is broken and the loader must refuse the image with
 * SIM_EFORMAT and a message naming what is wrong.  Allocation failure is
 * injected at every allocation of a parse in turn.  When the build's images
 * directory is given ($FLEETSIM_IMAGES), every real mingw-built driver in it
 * must load too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "pe_forge.h"
#include "sim.h"

static uint8_t *forge_driver(pf_layout *l)
{
    pf_image img;
    pf_init_driver(&img);
    return pf_build(&img, l);
}

static sim_image *parse_ok(const uint8_t *data, size_t size, const char *name)
{
    sim_image *img = NULL;
    char err[256] = "";
    int rc = sim_image_parse(data, size, name, &img, err, sizeof err);
    if (rc != 0)
        fail_msg("parse failed (%d): %s", rc, err);
    return img;
}

static void test_driver_headers(void **state)
{
    pf_layout l;
    uint8_t *f = forge_driver(&l);
    sim_image *img = parse_ok(f, l.size, "/some/dir/forged.sys");

    assert_string_equal(img->name, "forged.sys");
    assert_string_equal(img->module, "forged");
    assert_int_equal(img->file_size, l.size);
    assert_memory_equal(img->file, f, l.size);
    assert_int_equal(img->machine, 0x8664);
    assert_int_equal(img->subsystem, 1);
    assert_int_equal(img->dll_characteristics, 0x160);
    assert_true(img->preferred_base == PF_BASE);
    assert_int_equal(img->size_of_image, l.size_of_image);
    assert_int_equal(img->size_of_headers, l.size_of_headers);
    assert_int_equal(img->entry_rva, 0x1000 + PF_DRIVER_ENTRY);
    assert_int_equal(img->section_alignment, 0x1000);
    assert_int_equal(img->file_alignment, 0x200);

    uint8_t sha[32];
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, l.size, f);
    sha256_digest(&ctx, sizeof sha, sha);
    assert_memory_equal(img->sha256, sha, 32);

    sim_image_destroy(img);
    free(f);
}

static void test_driver_sections(void **state)
{
    pf_layout l;
    uint8_t *f = forge_driver(&l);
    sim_image *img = parse_ok(f, l.size, "forged.sys");

    assert_int_equal(img->nsections, 7);
    const char *names[] = {".text", ".data", ".xdata", ".pdata", ".edata", ".idata", ".reloc"};
    const uint32_t prot[] = {SIM_PROT_R | SIM_PROT_X, SIM_PROT_R | SIM_PROT_W, SIM_PROT_R,
                             SIM_PROT_R, SIM_PROT_R, SIM_PROT_R | SIM_PROT_W, SIM_PROT_R};
    for (size_t i = 0; i < 7; i++) {
        const sim_section *s = &img->sections[i];
        assert_string_equal(s->name, names[i]);
        assert_int_equal(s->prot, prot[i]);
        assert_int_equal(s->rva, l.sections[i].rva);
        assert_int_equal(s->raw_offset, l.sections[i].raw_offset);
        assert_true(s->raw_size <= s->vsize);
        assert_int_equal(s->discardable, i == 6);
    }
    /* .text: VirtualSize 0x66 of 0x200 raw bytes; only 0x66 are mapped. */
    assert_int_equal(img->sections[0].vsize, 0x66);
    assert_int_equal(img->sections[0].raw_size, 0x66);

    assert_ptr_equal(sim_image_section_at(img, 0x1000), &img->sections[0]);
    assert_ptr_equal(sim_image_section_at(img, 0x1065), &img->sections[0]);
    assert_null(sim_image_section_at(img, 0x1066));
    assert_null(sim_image_section_at(img, 0));
    assert_ptr_equal(sim_image_section_at(img, 0x2008), &img->sections[1]);
    assert_null(sim_image_section_at(img, img->size_of_image));
    assert_null(sim_image_section_at(NULL, 0x1000));

    sim_image_destroy(img);
    free(f);
}

static void test_driver_imports_exports(void **state)
{
    pf_layout l;
    uint8_t *f = forge_driver(&l);
    sim_image *img = parse_ok(f, l.size, "forged.sys");

    assert_int_equal(img->nimports, 3);
    assert_string_equal(img->imports[0].dll, "ntoskrnl.exe");
    assert_string_equal(img->imports[0].name, "DbgPrint");
    assert_int_equal(img->imports[0].ordinal, 66);
    assert_false(img->imports[0].by_ordinal);
    assert_int_equal(img->imports[0].iat_rva, l.iat[0]);
    assert_string_equal(img->imports[1].name, "ExAllocatePoolWithTag");
    assert_int_equal(img->imports[1].iat_rva, l.iat[1]);
    assert_int_equal(img->imports[1].iat_rva, img->imports[0].iat_rva + 8);
    assert_string_equal(img->imports[2].dll, "HAL.dll");
    assert_true(img->imports[2].by_ordinal);
    assert_int_equal(img->imports[2].ordinal, 7);
    assert_string_equal(img->imports[2].name, "");
    assert_int_equal(img->imports[2].iat_rva, l.iat[2]);

    assert_int_equal(img->nexports, 1);
    assert_string_equal(img->exports[0].name, "LeafExport");
    assert_int_equal(img->exports[0].ordinal, 1);
    assert_int_equal(img->exports[0].rva, 0x1000);

    assert_int_equal(img->reloc_rva, l.reloc_rva);
    assert_true(img->reloc_size > 0);
    sim_image_destroy(img);
    free(f);
}

static void test_driver_functions_symbols(void **state)
{
    pf_layout l;
    uint8_t *f = forge_driver(&l);
    sim_image *img = parse_ok(f, l.size, "forged.sys");

    assert_int_equal(img->nfunctions, 2);
    assert_int_equal(img->functions[0].begin, 0x1010);
    assert_int_equal(img->functions[0].end, 0x1036);
    assert_int_equal(img->functions[0].unwind, l.function_xdata[0]);
    assert_int_equal(img->functions[1].begin, 0x1040);
    assert_null(sim_image_function_at(img, 0x1000));
    assert_ptr_equal(sim_image_function_at(img, 0x1010), &img->functions[0]);
    assert_ptr_equal(sim_image_function_at(img, 0x1035), &img->functions[0]);
    assert_null(sim_image_function_at(img, 0x1036));
    assert_ptr_equal(sim_image_function_at(img, 0x1051), &img->functions[1]);
    assert_null(sim_image_function_at(img, 0x1052));

    /* Exports and COFF function symbols; no section symbols, no data. */
    assert_int_equal(img->nsymbols, 4);
    assert_string_equal(img->symbols[0].name, "LeafExport");
    assert_int_equal(img->symbols[0].rva, 0x1000);
    assert_string_equal(img->symbols[1].name, "worker");
    assert_int_equal(img->symbols[1].rva, 0x1010);
    assert_string_equal(img->symbols[2].name, "DriverEntry");
    assert_int_equal(img->symbols[2].rva, 0x1040);
    assert_string_equal(img->symbols[3].name, "a_function_with_a_long_name");
    assert_int_equal(img->symbols[3].rva, 0x1060);

    assert_null(sim_image_symbol_at(img, 0xfff));
    assert_string_equal(sim_image_symbol_at(img, 0x1000)->name, "LeafExport");
    assert_string_equal(sim_image_symbol_at(img, 0x100f)->name, "LeafExport");
    assert_string_equal(sim_image_symbol_at(img, 0x1010)->name, "worker");
    assert_string_equal(sim_image_symbol_at(img, 0x1045)->name, "DriverEntry");
    assert_string_equal(sim_image_symbol_at(img, 0x7fffffff)->name,
                        "a_function_with_a_long_name");
    assert_null(sim_image_symbol_at(NULL, 0x1000));
    assert_null(sim_image_function_at(NULL, 0x1000));
    sim_image_destroy(img);
    free(f);
}

static void test_symbol_ranking(void **state)
{
    /* A COFF function symbol and an export at one rva: one symbol, COFF's. */
    pf_image spec;
    pf_init_driver(&spec);
    pf_add_export(&spec, "WorkerExport", 0x1010);
    pf_add_symbol(&spec, "worker_alias", 1, PF_DRIVER_WORKER, 0, 2);
    pf_layout l;
    uint8_t *f = pf_build(&spec, &l);
    sim_image *img = parse_ok(f, l.size, "forged.sys");
    assert_int_equal(img->nexports, 2);
    assert_int_equal(img->nsymbols, 4);
    assert_string_equal(sim_image_symbol_at(img, 0x1010)->name, "worker");
    for (size_t i = 1; i < img->nsymbols; i++)
        assert_true(img->symbols[i - 1].rva < img->symbols[i].rva);
    sim_image_destroy(img);
    free(f);

    /* Without a symbol table only exports name code. */
    pf_init_driver(&spec);
    spec.symbols_in_file = false;
    f = pf_build(&spec, &l);
    img = parse_ok(f, l.size, "forged.sys");
    assert_int_equal(img->nsymbols, 1);
    assert_string_equal(img->symbols[0].name, "LeafExport");
    sim_image_destroy(img);
    free(f);
}

static void test_damaged_symbol_table_is_ignored(void **state)
{
    pf_layout l;
    uint8_t *f = forge_driver(&l);
    sim_image *img;

    /* Table past the end of the file. */
    pf_put32(f + l.file_header + 8, (uint32_t)l.size - 4);
    img = parse_ok(f, l.size, "forged.sys");
    assert_int_equal(img->nsymbols, 1);
    sim_image_destroy(img);

    /* Huge count. */
    pf_put32(f + l.file_header + 8, l.symbol_table);
    pf_put32(f + l.file_header + 12, 0xffffffff);
    img = parse_ok(f, l.size, "forged.sys");
    assert_int_equal(img->nsymbols, 1);
    sim_image_destroy(img);

    /* Long name pointing outside the string table: that symbol is dropped. */
    pf_put32(f + l.file_header + 12, 5);
    pf_put32(f + l.symbol_table + 4 * 18 + 4, 0x7fffffff);
    img = parse_ok(f, l.size, "forged.sys");
    assert_int_equal(img->nsymbols, 3);
    sim_image_destroy(img);

    /* Truncated string table: the file ends inside "DriverEntry", the first
     * long name, which symbol 4 now shares; both are dropped. */
    pf_put32(f + l.symbol_table + 4 * 18 + 4, 4);
    img = parse_ok(f, l.string_table + 6, "forged.sys");
    assert_int_equal(img->nsymbols, 2);
    sim_image_destroy(img);

    /* 300,000 long names into an 8 MiB string table with no NUL in it:
     * each name is read as far as a name is kept (1024 bytes), so this
     * parses at once instead of scanning 2.4 TB. */
    const uint64_t nsyms = 300000, strsize = 8u << 20;
    size_t big_size = l.size + nsyms * 18 + strsize;
    uint8_t *big = calloc(1, big_size);
    assert_non_null(big);
    memcpy(big, f, l.size);
    pf_put32(big + l.file_header + 8, (uint32_t)l.size);
    pf_put32(big + l.file_header + 12, (uint32_t)nsyms);
    for (uint64_t i = 0; i < nsyms; i++) {
        uint8_t *sym = big + l.size + i * 18;
        pf_put32(sym + 4, 4);              /* long name at offset 4 */
        pf_put32(sym + 8, (uint32_t)(i % 0x60));
        sym[12] = 1;                       /* .text */
        sym[14] = 0x20;                    /* a function */
        sym[16] = 2;                       /* external */
    }
    uint8_t *strtab = big + l.size + nsyms * 18;
    pf_put32(strtab, (uint32_t)strsize);
    memset(strtab + 4, 'A', strsize - 4);
    img = parse_ok(big, big_size, "forged.sys");
    assert_true(img->nsymbols > 0);
    assert_int_equal(strlen(img->symbols[0].name), 1024);
    sim_image_destroy(img);
    free(big);
    free(f);
}

static void test_module_names(void **state)
{
    struct {
        const char *name, *base, *module;
    } cases[] = {
        {"parser.sys", "parser.sys", "parser"},
        {"/a/b/fault-ok.sys", "fault-ok.sys", "fault-ok"},
        {"C:\\drivers\\sensor-7.11.sys", "sensor-7.11.sys", "sensor"},
        {"bench-small.sys", "bench-small.sys", "bench-small"},
        {"noext", "noext", "noext"},
        {".hidden", ".hidden", ".hidden"},
        {"x-1a.sys", "x-1a.sys", "x-1a"},
    };
    pf_layout l;
    uint8_t *f = forge_driver(&l);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sim_image *img = parse_ok(f, l.size, cases[i].name);
        assert_string_equal(img->name, cases[i].base);
        assert_string_equal(img->module, cases[i].module);
        sim_image_destroy(img);
    }
    free(f);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void test_build(void **state)
{
    pf_layout l;
    uint8_t *f = forge_driver(&l);
    sim_image *img = parse_ok(f, l.size, "forged.sys");
    uint8_t *mem = malloc(img->size_of_image);
    uint64_t bases[] = {PF_BASE, PF_BASE + 0x12340000ull, PF_BASE - 0x10000ull, 0x10000};
    for (size_t b = 0; b < 4; b++) {
        memset(mem, 0xa5, img->size_of_image);
        sim_image_build(img, bases[b], mem);
        assert_memory_equal(mem, f, l.size_of_headers);
        /* .text: 0x66 mapped bytes, then zeros to the end of the page. */
        assert_memory_equal(mem + 0x1000, f + l.sections[0].raw_offset, 0x66);
        for (uint32_t i = 0x1066; i < 0x2000; i++)
            assert_int_equal(mem[i], 0);
        /* The relocated pointer, and the one next to it untouched. */
        assert_true(get64(mem + 0x2000) == bases[b] + 0x1000 + PF_DRIVER_ENTRY);
        assert_true(get64(mem + 0x2008) == 0x1122334455667788ull);
        /* The IAT still holds the thunks: binding is the caller's job. */
        assert_memory_equal(mem + l.iat[0], f + pf_offset(&l, l.iat[0]), 8);
    }
    sim_image_build(NULL, 0, mem);
    sim_image_build(img, 0, NULL);
    free(mem);
    sim_image_destroy(img);
    free(f);
}

/* ---- malformed images --------------------------------------------------- */

typedef void (*breaker)(uint8_t *f, pf_layout *l);

#define SECTION(l, i) ((l)->section_table + 40u * (i))

static void brk_dos_small(uint8_t *f, pf_layout *l) { l->size = 0x30; }
static void brk_mz(uint8_t *f, pf_layout *l) { f[0] = 'Z'; }
static void brk_lfanew(uint8_t *f, pf_layout *l) { pf_put32(f + 0x3c, 0x10000); }
static void brk_lfanew_huge(uint8_t *f, pf_layout *l) { pf_put32(f + 0x3c, 0xfffffff0); }
static void brk_pe_sig(uint8_t *f, pf_layout *l) { f[l->lfanew + 1] = 'X'; }
static void brk_truncated_nt(uint8_t *f, pf_layout *l) { l->size = l->lfanew + 10; }
static void brk_machine(uint8_t *f, pf_layout *l) { pf_put16(f + l->file_header, 0x14c); }
static void brk_magic(uint8_t *f, pf_layout *l) { pf_put16(f + l->optional_header, 0x10b); }
static void brk_opt_small(uint8_t *f, pf_layout *l) { pf_put16(f + l->file_header + 16, 0x60); }
static void brk_opt_dirs(uint8_t *f, pf_layout *l) { pf_put16(f + l->file_header + 16, 0x80); }
static void brk_opt_past_end(uint8_t *f, pf_layout *l) { l->size = l->optional_header + 100; }
static void brk_nsections(uint8_t *f, pf_layout *l) { pf_put16(f + l->file_header + 2, 97); }
static void brk_no_sections(uint8_t *f, pf_layout *l) { pf_put16(f + l->file_header + 2, 0); }
static void brk_section_table_end(uint8_t *f, pf_layout *l)
{
    pf_put16(f + l->file_header + 2, 96);
    l->size = SECTION(l, 20);
}
static void brk_overlap(uint8_t *f, pf_layout *l) { pf_put32(f + SECTION(l, 1) + 12, 0x1010); }
static void brk_order(uint8_t *f, pf_layout *l) { pf_put32(f + SECTION(l, 1) + 12, 0x200); }
static void brk_section_outside(uint8_t *f, pf_layout *l)
{
    pf_put32(f + SECTION(l, 1) + 8, 0x7fffffff);
}
static void brk_section_vsize_wrap(uint8_t *f, pf_layout *l)
{
    pf_put32(f + SECTION(l, 6) + 8, 0xfffff000);
}
static void brk_image_size(uint8_t *f, pf_layout *l)
{
    pf_put32(f + l->optional_header + 56, 0x10000000);
}
static void brk_image_zero(uint8_t *f, pf_layout *l) { pf_put32(f + l->optional_header + 56, 0); }
static void brk_salign(uint8_t *f, pf_layout *l) { pf_put32(f + l->optional_header + 32, 0x1001); }
static void brk_falign(uint8_t *f, pf_layout *l) { pf_put32(f + l->optional_header + 36, 0); }
static void brk_salign_small(uint8_t *f, pf_layout *l)
{
    pf_put32(f + l->optional_header + 32, 0x100);
}
static void brk_headers(uint8_t *f, pf_layout *l)
{
    pf_put32(f + l->optional_header + 60, 0x100000);
}
static void brk_raw_past_end(uint8_t *f, pf_layout *l)
{
    pf_put32(f + SECTION(l, 1) + 20, 0x100000);
}
static void brk_raw_wrap(uint8_t *f, pf_layout *l) { pf_put32(f + SECTION(l, 1) + 20, 0xffffff00); }
static void brk_entry_zero(uint8_t *f, pf_layout *l) { pf_put32(f + l->optional_header + 16, 0); }
static void brk_entry_out(uint8_t *f, pf_layout *l)
{
    pf_put32(f + l->optional_header + 16, 0x100000);
}
static void brk_entry_data(uint8_t *f, pf_layout *l)
{
    pf_put32(f + l->optional_header + 16, 0x2000);
}
static void brk_import_dir_out(uint8_t *f, pf_layout *l)
{
    pf_put32(f + l->directories + 8, 0x7ffffff0);
}
static void brk_import_dir_gap(uint8_t *f, pf_layout *l)
{
    pf_put32(f + l->directories + 8, 0x1800);
}
static void brk_export_dir_wrap(uint8_t *f, pf_layout *l)
{
    pf_put32(f + l->directories + 0, 0xfffffff0);
    pf_put32(f + l->directories + 4, 0x20);
}
static void brk_pdata_dir_gap(uint8_t *f, pf_layout *l)
{
    pf_put32(f + l->directories + 24, l->pdata_rva + 0x800);
}
static void brk_reloc_dir_size(uint8_t *f, pf_layout *l)
{
    pf_put32(f + l->directories + 44, 0x2000);
}
static void brk_reloc_type(uint8_t *f, pf_layout *l)
{
    size_t o = pf_offset(l, l->reloc_rva);
    pf_put16(f + o + 8, 3 << 12 | 0x000);
}
static void brk_reloc_block_size(uint8_t *f, pf_layout *l)
{
    pf_put32(f + pf_offset(l, l->reloc_rva) + 4, 0x1000);
}
static void brk_reloc_block_tiny(uint8_t *f, pf_layout *l)
{
    pf_put32(f + pf_offset(l, l->reloc_rva) + 4, 4);
}
static void brk_reloc_page(uint8_t *f, pf_layout *l)
{
    pf_put32(f + pf_offset(l, l->reloc_rva), 0x7ffff000);
}
static void brk_reloc_target_end(uint8_t *f, pf_layout *l)
{
    size_t o = pf_offset(l, l->reloc_rva);
    pf_put32(f + o, l->size_of_image - 0x1000);
    pf_put16(f + o + 8, 10 << 12 | 0xffc);
}
static void brk_import_name_unterminated(uint8_t *f, pf_layout *l)
{
    /* The DLL names are the last strings of .idata: fill its file data. */
    int s = 5;
    size_t start = l->sections[s].raw_offset + l->sections[s].vsize - 8;
    memset(f + start, 'A', l->sections[s].raw_offset + l->sections[s].raw_size - start);
}
static void brk_import_name_rva(uint8_t *f, pf_layout *l)
{
    pf_put32(f + pf_offset(l, l->idata_rva) + 12, 0x7ffffff0);
}
static void brk_import_thunks(uint8_t *f, pf_layout *l)
{
    pf_put32(f + pf_offset(l, l->idata_rva), 0x1ff8);
}
static void brk_import_thunk_rva(uint8_t *f, pf_layout *l)
{
    uint32_t ilt = 0;
    memcpy(&ilt, f + pf_offset(l, l->idata_rva), 4);
    pf_put64(f + pf_offset(l, ilt), 0x7ffffff0);
}
static void brk_import_thunk_bits(uint8_t *f, pf_layout *l)
{
    uint32_t ilt = 0;
    memcpy(&ilt, f + pf_offset(l, l->idata_rva), 4);
    pf_put64(f + pf_offset(l, ilt), 0x4000000000001000ull);
}
static void brk_import_no_iat(uint8_t *f, pf_layout *l)
{
    pf_put32(f + pf_offset(l, l->idata_rva) + 16, 0);
}
static void brk_import_descriptors(uint8_t *f, pf_layout *l)
{
    /* No terminating descriptor: descriptors run into the thunks. */
    pf_put32(f + l->directories + 8, l->idata_rva + l->sections[5].vsize - 24);
    pf_put32(f + l->directories + 12, 20);
    memset(f + pf_offset(l, l->idata_rva + l->sections[5].vsize - 24), 0x11, 24);
}
static void brk_pdata_overlap(uint8_t *f, pf_layout *l)
{
    pf_put32(f + pf_offset(l, l->pdata_rva) + 12, 0x1020);
}
static void brk_pdata_empty(uint8_t *f, pf_layout *l)
{
    pf_put32(f + pf_offset(l, l->pdata_rva) + 4, 0x1010);
}
static void brk_pdata_end(uint8_t *f, pf_layout *l)
{
    pf_put32(f + pf_offset(l, l->pdata_rva) + 4, 0x7fffffff);
}
static void brk_pdata_unwind(uint8_t *f, pf_layout *l)
{
    pf_put32(f + pf_offset(l, l->pdata_rva) + 8, 0xfffffff0);
}

typedef struct bad_case {
    const char *what;
    breaker brk;
    const char *message; /* a substring the error must contain */
} bad_case;

static const bad_case bad_cases[] = {
    {"dos-small", brk_dos_small, "too small for a DOS header"},
    {"mz", brk_mz, "MZ"},
    {"lfanew", brk_lfanew, "e_lfanew 0x10000 points past the end of the file"},
    {"lfanew-huge", brk_lfanew_huge, "points past the end"},
    {"pe-signature", brk_pe_sig, "PE signature"},
    {"truncated-nt", brk_truncated_nt, "points past the end"},
    {"machine", brk_machine, "machine 0x014c is not AMD64"},
    {"magic", brk_magic, "not PE32+"},
    {"opt-small", brk_opt_small, "SizeOfOptionalHeader 0x60 is too small"},
    {"opt-dirs", brk_opt_dirs, "too small for 16 data directories"},
    {"opt-past-end", brk_opt_past_end, "optional header"},
    {"nsections", brk_nsections, "97 sections"},
    {"no-sections", brk_no_sections, "no sections"},
    {"section-table", brk_section_table_end, "section table"},
    {"overlap", brk_overlap, "overlaps section 0"},
    {"order", brk_order, "overlaps the headers"},
    {"section-outside", brk_section_outside, "outside SizeOfImage"},
    {"section-vsize-wrap", brk_section_vsize_wrap, "outside SizeOfImage"},
    {"image-size", brk_image_size, "SizeOfImage 0x10000000 is absurd"},
    {"image-zero", brk_image_zero, "absurd"},
    {"section-alignment", brk_salign, "SectionAlignment 0x1001 is not a power of two"},
    {"file-alignment", brk_falign, "FileAlignment 0x0"},
    {"alignment-order", brk_salign_small, "smaller than FileAlignment"},
    {"headers", brk_headers, "SizeOfHeaders"},
    {"raw-past-end", brk_raw_past_end, "lies past the end of the file"},
    {"raw-wrap", brk_raw_wrap, "lies past the end of the file"},
    {"entry-zero", brk_entry_zero, "entry point 0x0 is not in an executable section"},
    {"entry-out", brk_entry_out, "entry point 0x100000 lies outside the image"},
    {"entry-data", brk_entry_data, "not in an executable section"},
    {"import-dir-out", brk_import_dir_out, "import directory"},
    {"import-dir-gap", brk_import_dir_gap, "not inside a mapped section"},
    {"export-dir-wrap", brk_export_dir_wrap, "export directory"},
    {"pdata-dir-gap", brk_pdata_dir_gap, "exception directory"},
    {"reloc-dir-size", brk_reloc_dir_size, "base relocation directory"},
    {"reloc-type", brk_reloc_type, "type 3"},
    {"reloc-block-size", brk_reloc_block_size, "has size 0x1000"},
    {"reloc-block-tiny", brk_reloc_block_tiny, "has size 0x4"},
    {"reloc-page", brk_reloc_page, "outside SizeOfImage"},
    {"reloc-target-end", brk_reloc_target_end, "outside SizeOfImage"},
    {"import-name-unterminated", brk_import_name_unterminated, "not terminated"},
    {"import-name-rva", brk_import_name_rva, "import DLL name"},
    {"import-thunks", brk_import_thunks, "run off"},
    {"import-thunk-rva", brk_import_thunk_rva, "hint/name"},
    {"import-thunk-bits", brk_import_thunk_bits, "malformed"},
    {"import-no-iat", brk_import_no_iat, "no import address table"},
    {"import-descriptors", brk_import_descriptors, NULL},
    {"pdata-overlap", brk_pdata_overlap, "overlap"},
    {"pdata-empty", brk_pdata_empty, "empty"},
    {"pdata-end", brk_pdata_end, "outside SizeOfImage"},
    {"pdata-unwind", brk_pdata_unwind, "unwind data"},
};

static void test_malformed(void **state)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        pf_layout l;
        uint8_t *f = forge_driver(&l);
        bad_cases[i].brk(f, &l);
        sim_image *img = (sim_image *)1;
        char err[256] = "";
        int rc = sim_image_parse(f, l.size, "bad.sys", &img, err, sizeof err);
        if (rc != SIM_EFORMAT || img != NULL ||
            (bad_cases[i].message && !strstr(err, bad_cases[i].message)))
            fail_msg("case %s: rc %d, message \"%s\" (want \"%s\")", bad_cases[i].what, rc,
                     err, bad_cases[i].message ? bad_cases[i].message : "");
        assert_true(err[0] != '\0');
        /* A NULL or tiny message buffer must be safe too. */
        assert_int_equal(sim_image_parse(f, l.size, "bad.sys", &img, NULL, 0), SIM_EFORMAT);
        assert_int_equal(sim_image_parse(f, l.size, "bad.sys", &img, err, 1), SIM_EFORMAT);
        assert_string_equal(err, "");
        free(f);
    }
}

static void test_unsupported_reloc_at_preferred_base(void **state)
{
    /* HIGHLOW is refused even when no relocation would be needed. */
    pf_image spec;
    pf_init_driver(&spec);
    pf_add_reloc(&spec, 0x2008, 3);
    pf_layout l;
    uint8_t *f = pf_build(&spec, &l);
    sim_image *img = NULL;
    char err[256];
    assert_int_equal(sim_image_parse(f, l.size, "r.sys", &img, err, sizeof err), SIM_EFORMAT);
    assert_non_null(strstr(err, "base relocation of type 3 at rva 0x2008 is not supported"));
    free(f);
}

static void test_lenient_cases(void **state)
{
    pf_layout l;
    uint8_t *f;
    sim_image *img;

    /* VirtualSize 0: SizeOfRawData is the size. */
    f = forge_driver(&l);
    pf_put32(f + SECTION(&l, 1) + 8, 0);
    img = parse_ok(f, l.size, "v.sys");
    assert_int_equal(img->sections[1].vsize, 0x200);
    sim_image_destroy(img);
    free(f);

    /* Fewer data directories than 16, optional header shrunk to match. */
    pf_image spec;
    pf_init_driver(&spec);
    f = pf_build(&spec, &l);
    pf_put32(f + l.optional_header + 108, 6);
    img = parse_ok(f, l.size, "d.sys");
    assert_int_equal(img->nimports, 3);
    sim_image_destroy(img);
    pf_put32(f + l.optional_header + 108, 2); /* no .pdata, no relocations */
    img = parse_ok(f, l.size, "d.sys");
    assert_int_equal(img->nfunctions, 0);
    assert_int_equal(img->reloc_size, 0);
    sim_image_destroy(img);
    free(f);

    /* Ordinal-only export and a forwarder (skipped). */
    pf_init_driver(&spec);
    pf_add_export(&spec, "", 0x1060);
    pf_add_export(&spec, "Forwarded", 0); /* rva patched below */
    f = pf_build(&spec, &l);
    pf_put32(f + pf_offset(&l, l.edata_rva + 40 + 8), l.edata_rva + 0x30);
    img = parse_ok(f, l.size, "e.sys");
    assert_int_equal(img->nexports, 2);
    assert_string_equal(img->exports[0].name, "LeafExport");
    assert_string_equal(img->exports[1].name, "");
    assert_int_equal(img->exports[1].ordinal, 2);
    assert_int_equal(img->exports[1].rva, 0x1060);
    sim_image_destroy(img);
    free(f);
}

static void test_arguments(void **state)
{
    sim_image *img = (sim_image *)1;
    char err[128];
    assert_int_equal(sim_image_parse(NULL, 10, "x", &img, err, sizeof err), SIM_EINVAL);
    assert_null(img);
    assert_int_equal(sim_image_parse("MZ", 2, "x", NULL, err, sizeof err), SIM_EINVAL);
    assert_int_equal(sim_image_parse(NULL, 0, "x", &img, err, sizeof err), SIM_EFORMAT);
    assert_int_equal(sim_image_parse("", 0, NULL, &img, err, sizeof err), SIM_EFORMAT);
    sim_image_destroy(NULL);
}

static void test_out_of_memory(void **state)
{
    pf_layout l;
    uint8_t *f = forge_driver(&l);
    int rc = -1;
    uint64_t n;
    for (n = 1; n < 1000; n++) {
        sim_image *img = (sim_image *)1;
        char err[128] = "";
        sim_alloc_fail_after(n);
        rc = sim_image_parse(f, l.size, "oom.sys", &img, err, sizeof err);
        sim_alloc_fail_after(0);
        if (rc == 0) {
            sim_image_destroy(img);
            break;
        }
        assert_int_equal(rc, SIM_ENOMEM);
        assert_null(img);
        assert_non_null(strstr(err, "out of memory"));
    }
    assert_int_equal(rc, 0);
    assert_true(n > 5); /* file, image, sections, imports, exports, … */

    /* sim_image_open too. */
    char path[] = "/tmp/fleetsim-test-pe-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, f, l.size), (ssize_t)l.size);
    close(fd);
    for (n = 1; n < 1000; n++) {
        sim_image *img = NULL;
        sim_alloc_fail_after(n);
        rc = sim_image_open(path, &img, NULL, 0);
        sim_alloc_fail_after(0);
        if (rc == 0) {
            sim_image_destroy(img);
            break;
        }
        assert_int_equal(rc, SIM_ENOMEM);
    }
    assert_int_equal(rc, 0);
    unlink(path);
    free(f);
}

static void test_open(void **state)
{
    sim_image *img = (sim_image *)1;
    char err[256];
    assert_int_equal(sim_image_open("/nonexistent/dir/x.sys", &img, err, sizeof err), SIM_EIO);
    assert_null(img);
    assert_non_null(strstr(err, "No such file or directory"));
    assert_int_equal(sim_image_open("/tmp", &img, err, sizeof err), SIM_EIO);
    assert_non_null(strstr(err, "Is a directory"));
    assert_int_equal(sim_image_open(NULL, &img, err, sizeof err), SIM_EINVAL);

    pf_layout l;
    uint8_t *f = forge_driver(&l);
    char path[] = "/tmp/fleetsim-test-pe-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, f, l.size), (ssize_t)l.size);
    close(fd);
    assert_int_equal(sim_image_open(path, &img, err, sizeof err), 0);
    assert_string_equal(img->name, strrchr(path, '/') + 1);
    assert_int_equal(img->nimports, 3);
    sim_image_destroy(img);

    /* A malformed file: EFORMAT, and the message names the file. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, f, 0x30), 0x30);
    close(fd);
    assert_int_equal(sim_image_open(path, &img, err, sizeof err), SIM_EFORMAT);
    assert_non_null(strstr(err, "too small for a DOS header"));
    unlink(path);
    free(f);
}

/* ---- real drivers ------------------------------------------------------- */

static void check_real_image(const char *path)
{
    sim_image *img = NULL;
    char err[256] = "";
    int rc = sim_image_open(path, &img, err, sizeof err);
    if (rc != 0)
        fail_msg("%s: %s", path, err);
    const sim_section *text = sim_image_section_at(img, img->entry_rva);
    assert_non_null(text);
    assert_int_equal(text->prot, SIM_PROT_R | SIM_PROT_X);
    bool nt = false;
    for (size_t i = 0; i < img->nimports; i++)
        nt |= strcmp(img->imports[i].dll, "ntoskrnl.exe") == 0;
    assert_true(nt || img->nimports == 0);
    assert_true(img->nfunctions > 0);
    /* mingw emits .reloc only when the code holds absolute addresses. */
    if (img->reloc_size > 0)
        assert_non_null(sim_image_section_at(img, img->reloc_rva));
    assert_true(img->nsymbols > 0);
    const sim_symbol *entry = sim_image_symbol_at(img, img->entry_rva);
    assert_non_null(entry);
    assert_string_equal(entry->name, "DriverEntry");
    for (size_t i = 0; i < img->nsections; i++) {
        const sim_section *s = &img->sections[i];
        if (strcmp(s->name, ".text") == 0)
            assert_int_equal(s->prot, SIM_PROT_R | SIM_PROT_X);
        if (strcmp(s->name, ".rdata") == 0)
            assert_int_equal(s->prot, SIM_PROT_R);
        if (strcmp(s->name, ".data") == 0)
            assert_int_equal(s->prot, SIM_PROT_R | SIM_PROT_W);
    }
    for (size_t i = 1; i < img->nfunctions; i++)
        assert_true(img->functions[i - 1].end <= img->functions[i].begin);

    /* Building at two bases differs only in relocated quadwords. */
    uint8_t *a = malloc(img->size_of_image), *b = malloc(img->size_of_image);
    sim_image_build(img, img->preferred_base, a);
    sim_image_build(img, img->preferred_base + 0x7650000ull, b);
    for (uint32_t i = 0; i < img->size_of_image; i++)
        if (a[i] != b[i]) {
            uint32_t q = i; /* the quadword's first differing byte */
            assert_true(q + 8 <= img->size_of_image);
            i += 7;
        }
    free(a);
    free(b);
    sim_image_destroy(img);
}

static void test_real_images(void **state)
{
    const char *dir = getenv("FLEETSIM_IMAGES");
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        skip();
        return;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".sys") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        check_real_image(path);
        n++;
    }
    closedir(d);
    if (n == 0)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_driver_headers),
        cmocka_unit_test(test_driver_sections),
        cmocka_unit_test(test_driver_imports_exports),
        cmocka_unit_test(test_driver_functions_symbols),
        cmocka_unit_test(test_symbol_ranking),
        cmocka_unit_test(test_damaged_symbol_table_is_ignored),
        cmocka_unit_test(test_module_names),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_unsupported_reloc_at_preferred_base),
        cmocka_unit_test(test_lenient_cases),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_real_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
