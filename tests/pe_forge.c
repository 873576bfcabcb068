/*
 * pe_forge.c — builds the synthetic PE32+ images described in pe_forge.h.
 *
 * The layout follows what GNU ld produces for a mingw-w64 driver, so that a
 * forged image exercises the same paths in the loader as a real one: DOS
 * header with e_lfanew 0x80, PE32+ optional header with 16 directories, the
 * caller's sections first, then generated .xdata, .pdata, .edata, .idata and
 * a discardable .reloc, and the COFF symbol table and its string table after
 * the last section's raw data.
 */
#include "pe_forge.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define PF_LFANEW 0x80u
#define PF_OPT_SIZE 240u

void pf_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void pf_put32(uint8_t *p, uint32_t v)
{
    pf_put16(p, (uint16_t)v);
    pf_put16(p + 2, (uint16_t)(v >> 16));
}

void pf_put64(uint8_t *p, uint64_t v)
{
    pf_put32(p, (uint32_t)v);
    pf_put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t align_up(uint32_t v, uint32_t a)
{
    return (v + a - 1) & ~(a - 1);
}

void pf_init(pf_image *img)
{
    memset(img, 0, sizeof *img);
    img->machine = 0x8664;
    img->base = PF_BASE;
    img->section_alignment = 0x1000;
    img->file_alignment = 0x200;
    img->symbols_in_file = true;
}

int pf_add_section(pf_image *img, const char *name, uint32_t characteristics,
                   const void *data, uint32_t size, uint32_t vsize)
{
    assert(img->nsections < PF_MAX_SECTIONS);
    pf_section_spec *s = &img->sections[img->nsections];
    memset(s, 0, sizeof *s);
    strncpy(s->name, name, 8);
    s->characteristics = characteristics;
    s->data = data;
    s->size = size;
    s->vsize = vsize;
    return img->nsections++;
}

int pf_add_import(pf_image *img, const char *dll, const char *name, uint16_t hint)
{
    assert(img->nimports < PF_MAX_IMPORTS);
    pf_import_spec *i = &img->imports[img->nimports];
    memset(i, 0, sizeof *i);
    strncpy(i->dll, dll, sizeof i->dll - 1);
    strncpy(i->name, name ? name : "", sizeof i->name - 1);
    i->hint = hint;
    return img->nimports++;
}

int pf_add_export(pf_image *img, const char *name, uint32_t rva)
{
    assert(img->nexports < PF_MAX_EXPORTS);
    pf_export_spec *e = &img->exports[img->nexports];
    memset(e, 0, sizeof *e);
    strncpy(e->name, name ? name : "", sizeof e->name - 1);
    e->rva = rva;
    return img->nexports++;
}

int pf_add_reloc(pf_image *img, uint32_t rva, unsigned type)
{
    assert(img->nrelocs < PF_MAX_RELOCS);
    img->relocs[img->nrelocs] = (pf_reloc_spec){rva, type};
    return img->nrelocs++;
}

int pf_add_function(pf_image *img, uint32_t begin, uint32_t end, const void *xdata,
                    uint32_t xdata_size)
{
    assert(img->nfunctions < PF_MAX_FUNCTIONS && xdata_size <= PF_MAX_XDATA);
    pf_function_spec *f = &img->functions[img->nfunctions];
    memset(f, 0, sizeof *f);
    f->begin = begin;
    f->end = end;
    memcpy(f->xdata, xdata, xdata_size);
    f->xdata_size = xdata_size;
    return img->nfunctions++;
}

int pf_add_symbol(pf_image *img, const char *name, int16_t section, uint32_t value,
                  uint16_t type, uint8_t storage_class)
{
    assert(img->nsymbols < PF_MAX_SYMBOLS);
    pf_symbol_spec *s = &img->symbols[img->nsymbols];
    memset(s, 0, sizeof *s);
    strncpy(s->name, name, sizeof s->name - 1);
    s->section = section;
    s->value = value;
    s->type = type;
    s->storage_class = storage_class;
    return img->nsymbols++;
}

static uint32_t vsize_of(const pf_section_spec *s)
{
    return s->vsize ? s->vsize : s->size;
}

uint32_t pf_section_rva(const pf_image *img, int index)
{
    uint32_t rva = img->section_alignment;
    for (int i = 0; i < index; i++)
        rva = align_up(rva + (vsize_of(&img->sections[i]) ? vsize_of(&img->sections[i]) : 1),
                       img->section_alignment);
    return rva;
}

/* A growable byte buffer for generated sections. */
typedef struct pf_buf {
    uint8_t *data;
    size_t size, cap;
} pf_buf;

static uint8_t *buf_grow(pf_buf *b, size_t n)
{
    if (b->size + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->size + n)
            cap *= 2;
        b->data = realloc(b->data, cap);
        assert(b->data);
        b->cap = cap;
    }
    uint8_t *p = b->data + b->size;
    memset(p, 0, n);
    b->size += n;
    return p;
}

static void buf_align(pf_buf *b, size_t a)
{
    while (b->size % a)
        buf_grow(b, 1);
}

static uint32_t buf_string(pf_buf *b, uint32_t rva, const char *s)
{
    uint32_t at = rva + (uint32_t)b->size;
    memcpy(buf_grow(b, strlen(s) + 1), s, strlen(s) + 1);
    return at;
}

static void gen_xdata(const pf_image *img, uint32_t rva, pf_buf *b, pf_layout *l)
{
    for (int i = 0; i < img->nfunctions; i++) {
        buf_align(b, 4);
        l->function_xdata[i] = rva + (uint32_t)b->size;
        memcpy(buf_grow(b, img->functions[i].xdata_size), img->functions[i].xdata,
               img->functions[i].xdata_size);
    }
}

static void gen_pdata(const pf_image *img, pf_buf *b, const pf_layout *l)
{
    for (int i = 0; i < img->nfunctions; i++) {
        uint8_t *p = buf_grow(b, 12);
        pf_put32(p, img->functions[i].begin);
        pf_put32(p + 4, img->functions[i].end);
        pf_put32(p + 8, l->function_xdata[i]);
    }
}

static void gen_edata(const pf_image *img, uint32_t rva, pf_buf *b)
{
    int n = img->nexports, named = 0;
    for (int i = 0; i < n; i++)
        named += img->exports[i].name[0] != '\0';
    uint32_t dir = 0, eat = 40, npt = eat + 4u * n, ot = npt + 4u * named;
    buf_grow(b, ot + 2u * named);
    uint32_t dll = buf_string(b, rva, "forged.sys");
    uint8_t *d = b->data + dir;
    pf_put32(d + 12, dll);
    pf_put32(d + 16, 1); /* Base */
    pf_put32(d + 20, (uint32_t)n);
    pf_put32(d + 24, (uint32_t)named);
    pf_put32(d + 28, rva + eat);
    pf_put32(d + 32, rva + npt);
    pf_put32(d + 36, rva + ot);
    int k = 0;
    for (int i = 0; i < n; i++) {
        pf_put32(b->data + eat + 4u * i, img->exports[i].rva);
        if (img->exports[i].name[0] == '\0')
            continue;
        uint32_t name = buf_string(b, rva, img->exports[i].name);
        pf_put32(b->data + npt + 4u * k, name);
        pf_put16(b->data + ot + 2u * k, (uint16_t)i);
        k++;
    }
}

static void gen_idata(const pf_image *img, uint32_t rva, pf_buf *b, pf_layout *l)
{
    /* DLLs in order of first appearance. */
    const char *dlls[PF_MAX_IMPORTS];
    int ndll = 0;
    for (int i = 0; i < img->nimports; i++) {
        int j = 0;
        while (j < ndll && strcmp(dlls[j], img->imports[i].dll) != 0)
            j++;
        if (j == ndll)
            dlls[ndll++] = img->imports[i].dll;
    }
    buf_grow(b, 20u * (ndll + 1));
    for (int d = 0; d < ndll; d++) {
        int count = 0;
        for (int i = 0; i < img->nimports; i++)
            count += strcmp(img->imports[i].dll, dlls[d]) == 0;
        buf_align(b, 8);
        uint32_t ilt = (uint32_t)b->size;
        buf_grow(b, 8u * (count + 1));
        uint32_t iat = (uint32_t)b->size;
        buf_grow(b, 8u * (count + 1));
        int k = 0;
        for (int i = 0; i < img->nimports; i++) {
            const pf_import_spec *imp = &img->imports[i];
            if (strcmp(imp->dll, dlls[d]) != 0)
                continue;
            uint64_t thunk;
            if (imp->name[0] == '\0') {
                thunk = 1ull << 63 | imp->hint;
            } else {
                buf_align(b, 2);
                thunk = rva + (uint32_t)b->size;
                pf_put16(buf_grow(b, 2), imp->hint);
                buf_string(b, rva, imp->name);
            }
            pf_put64(b->data + ilt + 8u * k, thunk);
            pf_put64(b->data + iat + 8u * k, thunk);
            l->iat[i] = rva + iat + 8u * k;
            k++;
        }
        uint32_t name = buf_string(b, rva, dlls[d]);
        uint8_t *desc = b->data + 20u * d;
        pf_put32(desc, rva + ilt);
        pf_put32(desc + 12, name);
        pf_put32(desc + 16, rva + iat);
    }
}

static void gen_reloc(const pf_image *img, pf_buf *b)
{
    bool done[PF_MAX_RELOCS] = {false};
    for (int i = 0; i < img->nrelocs; i++) {
        if (done[i])
            continue;
        uint32_t page = img->relocs[i].rva & ~0xfffu;
        size_t start = b->size;
        buf_grow(b, 8);
        for (int j = i; j < img->nrelocs; j++) {
            if (done[j] || (img->relocs[j].rva & ~0xfffu) != page)
                continue;
            done[j] = true;
            pf_put16(buf_grow(b, 2),
                     (uint16_t)(img->relocs[j].type << 12 | (img->relocs[j].rva & 0xfff)));
        }
        if ((b->size - start) % 4)
            buf_grow(b, 2); /* ABSOLUTE padding, as linkers write */
        pf_put32(b->data + start, page);
        pf_put32(b->data + start + 4, (uint32_t)(b->size - start));
    }
}

/* A section of the output: the caller's or a generated one. */
typedef struct pf_out {
    char name[9];
    uint32_t characteristics, rva, vsize, raw_size;
    const uint8_t *data;
} pf_out;

static void add_out(pf_out *outs, int *n, const char *name, uint32_t ch, const uint8_t *data,
                    uint32_t size, uint32_t vsize, uint32_t *next_rva, uint32_t salign)
{
    pf_out *o = &outs[(*n)++];
    memset(o, 0, sizeof *o);
    strncpy(o->name, name, 8);
    o->characteristics = ch;
    o->rva = *next_rva;
    o->vsize = vsize ? vsize : size;
    o->raw_size = size;
    o->data = data;
    *next_rva = align_up(o->rva + (o->vsize ? o->vsize : 1), salign);
}

uint8_t *pf_build(const pf_image *img, pf_layout *layout)
{
    pf_layout local;
    pf_layout *l = layout ? layout : &local;
    memset(l, 0, sizeof *l);

    pf_out outs[PF_MAX_SECTIONS + 5];
    int nout = 0;
    uint32_t next = img->section_alignment;
    for (int i = 0; i < img->nsections; i++) {
        const pf_section_spec *s = &img->sections[i];
        add_out(outs, &nout, s->name, s->characteristics, s->data, s->size, s->vsize,
                &next, img->section_alignment);
    }

    pf_buf xdata = {0}, pdata = {0}, edata = {0}, idata = {0}, reloc = {0};
    if (img->nfunctions) {
        l->xdata_rva = next;
        gen_xdata(img, next, &xdata, l);
        add_out(outs, &nout, ".xdata", PF_SCN_RDATA, xdata.data, (uint32_t)xdata.size, 0,
                &next, img->section_alignment);
        l->pdata_rva = next;
        gen_pdata(img, &pdata, l);
        add_out(outs, &nout, ".pdata", PF_SCN_RDATA, pdata.data, (uint32_t)pdata.size, 0,
                &next, img->section_alignment);
    }
    if (img->nexports) {
        l->edata_rva = next;
        gen_edata(img, next, &edata);
        add_out(outs, &nout, ".edata", PF_SCN_RDATA, edata.data, (uint32_t)edata.size, 0,
                &next, img->section_alignment);
    }
    if (img->nimports) {
        l->idata_rva = next;
        gen_idata(img, next, &idata, l);
        add_out(outs, &nout, ".idata", PF_SCN_DATA, idata.data, (uint32_t)idata.size, 0,
                &next, img->section_alignment);
    }
    if (img->nrelocs) {
        l->reloc_rva = next;
        gen_reloc(img, &reloc);
        add_out(outs, &nout, ".reloc", PF_SCN_RDATA | PF_SCN_DISCARD, reloc.data,
                (uint32_t)reloc.size, 0, &next, img->section_alignment);
    }

    uint32_t falign = img->file_alignment;
    l->lfanew = PF_LFANEW;
    l->file_header = PF_LFANEW + 4;
    l->optional_header = l->file_header + 20;
    l->directories = l->optional_header + 112;
    l->section_table = l->optional_header + PF_OPT_SIZE;
    l->size_of_headers = align_up(l->section_table + 40u * nout, falign);
    l->size_of_image = next;
    l->nsections = nout;

    /* Raw data offsets, then the symbol table. */
    uint32_t raw = l->size_of_headers;
    for (int i = 0; i < nout; i++) {
        l->sections[i].rva = outs[i].rva;
        l->sections[i].vsize = outs[i].vsize;
        memcpy(l->sections[i].name, outs[i].name, 9);
        l->sections[i].raw_size = outs[i].raw_size ? align_up(outs[i].raw_size, falign) : 0;
        l->sections[i].raw_offset = outs[i].raw_size ? raw : 0;
        raw += l->sections[i].raw_size;
    }
    size_t strsize = 4;
    for (int i = 0; i < img->nsymbols; i++)
        if (strlen(img->symbols[i].name) > 8)
            strsize += strlen(img->symbols[i].name) + 1;
    bool symtab = img->symbols_in_file && img->nsymbols > 0;
    l->size = raw;
    if (symtab) {
        l->symbol_table = raw;
        l->string_table = raw + 18u * img->nsymbols;
        l->size = l->string_table + strsize;
    }

    uint8_t *f = calloc(1, l->size);
    assert(f);
    f[0] = 'M';
    f[1] = 'Z';
    pf_put32(f + 0x3c, PF_LFANEW);
    memcpy(f + PF_LFANEW, "PE\0\0", 4);
    uint8_t *fh = f + l->file_header;
    pf_put16(fh, img->machine);
    pf_put16(fh + 2, (uint16_t)nout);
    pf_put32(fh + 4, 0x66000000);
    pf_put32(fh + 8, symtab ? l->symbol_table : 0);
    pf_put32(fh + 12, symtab ? (uint32_t)img->nsymbols : 0);
    pf_put16(fh + 16, PF_OPT_SIZE);
    pf_put16(fh + 18, 0x226);

    uint8_t *oh = f + l->optional_header;
    uint32_t entry = img->entry;
    for (int i = 0; i < nout && entry == 0; i++)
        if (outs[i].characteristics & 0x20000000u)
            entry = outs[i].rva;
    pf_put16(oh, 0x20b);
    oh[2] = 2;
    oh[3] = 40;
    pf_put32(oh + 16, entry);
    pf_put32(oh + 20, img->section_alignment);
    pf_put64(oh + 24, img->base);
    pf_put32(oh + 32, img->section_alignment);
    pf_put32(oh + 36, falign);
    pf_put16(oh + 40, 4);
    pf_put16(oh + 48, 5);
    pf_put16(oh + 50, 2);
    pf_put32(oh + 56, l->size_of_image);
    pf_put32(oh + 60, l->size_of_headers);
    pf_put16(oh + 68, 1);     /* native */
    pf_put16(oh + 70, 0x160); /* high entropy VA, dynamic base, NX compat */
    pf_put64(oh + 72, 0x200000);
    pf_put64(oh + 80, 0x1000);
    pf_put64(oh + 88, 0x100000);
    pf_put64(oh + 96, 0x1000);
    pf_put32(oh + 108, 16);
    uint8_t *dirs = f + l->directories;
    if (img->nexports) {
        pf_put32(dirs + 0, l->edata_rva);
        pf_put32(dirs + 4, (uint32_t)edata.size);
    }
    if (img->nimports) {
        pf_put32(dirs + 8, l->idata_rva);
        pf_put32(dirs + 12, (uint32_t)idata.size);
    }
    if (img->nfunctions) {
        pf_put32(dirs + 24, l->pdata_rva);
        pf_put32(dirs + 28, (uint32_t)pdata.size);
    }
    if (img->nrelocs) {
        pf_put32(dirs + 40, l->reloc_rva);
        pf_put32(dirs + 44, (uint32_t)reloc.size);
    }

    for (int i = 0; i < nout; i++) {
        uint8_t *sh = f + l->section_table + 40u * i;
        memcpy(sh, outs[i].name, strlen(outs[i].name));
        pf_put32(sh + 8, outs[i].vsize);
        pf_put32(sh + 12, outs[i].rva);
        pf_put32(sh + 16, l->sections[i].raw_size);
        pf_put32(sh + 20, l->sections[i].raw_offset);
        pf_put32(sh + 36, outs[i].characteristics);
        if (outs[i].raw_size && outs[i].data)
            memcpy(f + l->sections[i].raw_offset, outs[i].data, outs[i].raw_size);
    }

    if (symtab) {
        uint32_t str = 4;
        for (int i = 0; i < img->nsymbols; i++) {
            const pf_symbol_spec *s = &img->symbols[i];
            uint8_t *sym = f + l->symbol_table + 18u * i;
            size_t len = strlen(s->name);
            if (len > 8) {
                pf_put32(sym + 4, str);
                memcpy(f + l->string_table + str, s->name, len + 1);
                str += (uint32_t)len + 1;
            } else {
                memcpy(sym, s->name, len);
            }
            pf_put32(sym + 8, s->value);
            pf_put16(sym + 12, (uint16_t)s->section);
            pf_put16(sym + 14, s->type);
            sym[16] = s->storage_class;
        }
        pf_put32(f + l->string_table, (uint32_t)strsize);
    }

    free(xdata.data);
    free(pdata.data);
    free(edata.data);
    free(idata.data);
    free(reloc.data);
    return f;
}

size_t pf_offset(const pf_layout *l, uint32_t rva)
{
    if (rva < l->size_of_headers)
        return rva;
    for (int i = 0; i < l->nsections; i++)
        if (rva >= l->sections[i].rva && rva < l->sections[i].rva + l->sections[i].raw_size)
            return l->sections[i].raw_offset + (rva - l->sections[i].rva);
    assert(!"rva is not file-backed");
    return 0;
}

/*
 * .text of pf_init_driver:
 *   0x00 leaf:    ret                        (no .pdata: a leaf)
 *   0x10 worker:  push rbx; sub rsp, 0x20; nop…; add rsp, 0x20; pop rbx; ret
 *   0x40 entry:   push rsi; push rbx; sub rsp, 0x28; call worker;
 *                 add rsp, 0x28; pop rbx; pop rsi; ret
 *   0x60 tail:    ret                        (long COFF name, no .pdata)
 */
static const uint8_t driver_text[PF_DRIVER_TEXT_SIZE] = {
    [0x00] = 0xc3,
    [0x10] = 0x53, 0x48, 0x83, 0xec, 0x20,
    [0x15] = 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
    [0x30] = 0x48, 0x83, 0xc4, 0x20, 0x5b, 0xc3,
    [0x40] = 0x56, 0x53, 0x48, 0x83, 0xec, 0x28,
    [0x46] = 0xe8, 0xc5, 0xff, 0xff, 0xff, /* call 0x10 */
    [0x4b] = 0x48, 0x83, 0xc4, 0x28, 0x5b, 0x5e, 0xc3,
    [0x60] = 0xc3,
};

/* UNWIND_INFO: version 1, prolog size, code count, codes (CodeOffset, op|info<<4). */
static const uint8_t worker_xdata[] = {0x01, 0x05, 0x02, 0x00, 0x05, 0x32, 0x01, 0x30};
static const uint8_t entry_xdata[] = {0x01, 0x06, 0x03, 0x00, 0x06, 0x42,
                                      0x02, 0x30, 0x01, 0x60, 0x00, 0x00};

static uint8_t driver_data[0x10];

void pf_init_driver(pf_image *img)
{
    pf_init(img);
    pf_add_section(img, ".text", PF_SCN_TEXT, driver_text, sizeof driver_text, 0x66);
    pf_add_section(img, ".data", PF_SCN_DATA, driver_data, sizeof driver_data, 0);
    uint32_t text = pf_section_rva(img, 0), data = pf_section_rva(img, 1);
    pf_put64(driver_data, PF_BASE + text + PF_DRIVER_ENTRY);
    pf_put64(driver_data + 8, 0x1122334455667788ull);
    img->entry = text + PF_DRIVER_ENTRY;

    pf_add_function(img, text + PF_DRIVER_WORKER, text + 0x36, worker_xdata,
                    sizeof worker_xdata);
    pf_add_function(img, text + PF_DRIVER_ENTRY, text + 0x52, entry_xdata,
                    sizeof entry_xdata);
    pf_add_import(img, "ntoskrnl.exe", "DbgPrint", 66);
    pf_add_import(img, "ntoskrnl.exe", "ExAllocatePoolWithTag", 119);
    pf_add_import(img, "HAL.dll", NULL, 7);
    pf_add_export(img, "LeafExport", text + PF_DRIVER_LEAF);
    pf_add_reloc(img, data, 10);

    pf_add_symbol(img, ".text", 1, 0, 0, 3);
    pf_add_symbol(img, "worker", 1, PF_DRIVER_WORKER, 0x20, 3);
    pf_add_symbol(img, "DriverEntry", 1, PF_DRIVER_ENTRY, 0x20, 2);
    pf_add_symbol(img, "g_data", 2, 0, 0, 2);
    pf_add_symbol(img, "a_function_with_a_long_name", 1, 0x60, 0x20, 2);
}
