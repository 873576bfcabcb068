/*
 * pe.c — the PE32+ loader: from the bytes of a kernel-mode driver to a
 * sim_image the engine can lay out at any base.
 *
 * The image is untrusted input (a vendor's driver, a fuzzer's mutation), so
 * parsing is a sequence of checks before any use: every offset, size and
 * count is compared with the file and with SizeOfImage in 64-bit arithmetic,
 * and anything wrong is refused with SIM_EFORMAT and a message naming the
 * field.  What survives is self-consistent, so the later users — the engine's
 * mapping, sim_image_build's relocation pass, the unwinder — can trust it
 * without checking again.  Data directories are read through the section
 * table (an RVA is only readable where a section's file data backs it), the
 * way the Windows loader would see them after mapping.
 *
 * Symbols come from the exports and, when the image carries one (mingw-w64
 * images do), the COFF symbol table.  The symbol table is optional metadata
 * that linkers strip freely, so a damaged one is ignored rather than refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "sim.h"

/* Limits: far above any real driver, low enough that no count can blow up. */
#define PE_MAX_FILE (256ull << 20)
#define PE_MAX_IMAGE (64ull << 20)
#define PE_MAX_DESCRIPTORS 4096u
#define PE_MAX_IMPORTS 65536u
#define PE_MAX_EXPORTS 65536u
#define PE_MAX_SYMBOL_NAME 1024u

/* Sizes and field offsets of the structures read (winnt.h names). */
#define DOS_HEADER_SIZE 0x40u
#define FILE_HEADER_SIZE 20u
#define OPT64_FIXED_SIZE 112u /* PE32+ optional header up to DataDirectory */
#define SECTION_HEADER_SIZE 40u
#define IMPORT_DESCRIPTOR_SIZE 20u
#define EXPORT_DIRECTORY_SIZE 40u
#define RUNTIME_FUNCTION_SIZE 12u
#define COFF_SYMBOL_SIZE 18u

#define MACHINE_AMD64 0x8664u
#define OPT_MAGIC_PE32PLUS 0x20bu

#define SCN_MEM_DISCARDABLE 0x02000000u
#define SCN_MEM_EXECUTE 0x20000000u
#define SCN_MEM_READ 0x40000000u
#define SCN_MEM_WRITE 0x80000000u

#define DIR_EXPORT 0
#define DIR_IMPORT 1
#define DIR_EXCEPTION 3
#define DIR_BASERELOC 5

#define REL_BASED_ABSOLUTE 0
#define REL_BASED_DIR64 10

#define SYM_CLASS_EXTERNAL 2
#define SYM_CLASS_STATIC 3
#define SYM_DTYPE_FUNCTION 2

typedef struct pe_parser {
    const uint8_t *data;
    size_t size;
    sim_image *img;
    char *err;
    size_t errlen;
} pe_parser;

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void message(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
}

static int fail(pe_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(pe_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    message(p->err, p->errlen, fmt, ap);
    va_end(ap);
    return SIM_EFORMAT;
}

static int out_of_memory(pe_parser *p)
{
    if (p->err && p->errlen > 0)
        snprintf(p->err, p->errlen, "out of memory while parsing the image");
    return SIM_ENOMEM;
}

static bool is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* ---- reading through the section table --------------------------------- */

/*
 * The bytes backing [rva, rva+n) as the loader would map them, when one
 * section's file data (or the headers) holds all of them; NULL otherwise.
 * The zero-filled tail of a section has no file bytes and is not readable
 * here: nothing the loader parses may live there.
 */
static const uint8_t *at_rva(const sim_image *img, uint64_t rva, uint64_t n)
{
    uint64_t hdr = img->size_of_headers < img->file_size ? img->size_of_headers
                                                          : img->file_size;
    if (rva + n <= hdr)
        return img->file + rva;
    for (size_t i = 0; i < img->nsections; i++) {
        const sim_section *s = &img->sections[i];
        if (rva >= s->rva && rva + n <= (uint64_t)s->rva + s->raw_size)
            return img->file + s->raw_offset + (rva - s->rva);
    }
    return NULL;
}

/* Bytes readable from rva to the end of the file data that holds it. */
static const uint8_t *span_at_rva(const sim_image *img, uint64_t rva, uint64_t *avail)
{
    uint64_t hdr = img->size_of_headers < img->file_size ? img->size_of_headers
                                                          : img->file_size;
    if (rva < hdr) {
        *avail = hdr - rva;
        return img->file + rva;
    }
    for (size_t i = 0; i < img->nsections; i++) {
        const sim_section *s = &img->sections[i];
        if (rva >= s->rva && rva < (uint64_t)s->rva + s->raw_size) {
            *avail = (uint64_t)s->rva + s->raw_size - rva;
            return img->file + s->raw_offset + (rva - s->rva);
        }
    }
    *avail = 0;
    return NULL;
}

/*
 * Copy the NUL-terminated string at rva into dst (max bytes with the NUL).
 * A string must end inside the file data holding its start.
 */
static int read_string(pe_parser *p, uint64_t rva, char *dst, size_t max,
                       const char *what)
{
    uint64_t avail;
    const uint8_t *s = span_at_rva(p->img, rva, &avail);
    if (!s)
        return fail(p, "%s at rva 0x%llx is not inside a section's file data",
                    what, (unsigned long long)rva);
    const uint8_t *nul = memchr(s, 0, avail);
    if (!nul)
        return fail(p, "%s at rva 0x%llx is not terminated", what,
                    (unsigned long long)rva);
    size_t len = (size_t)(nul - s);
    if (len >= max)
        return fail(p, "%s at rva 0x%llx is %zu bytes long (at most %zu)", what,
                    (unsigned long long)rva, len, max - 1);
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

/* ---- headers ------------------------------------------------------------ */

static int parse_headers(pe_parser *p, uint64_t *opt_off, uint32_t *opt_size,
                         uint32_t *nsections)
{
    const uint8_t *d = p->data;
    sim_image *img = p->img;

    if (p->size < DOS_HEADER_SIZE)
        return fail(p, "file is 0x%zx bytes, too small for a DOS header (0x40)",
                    p->size);
    if (d[0] != 'M' || d[1] != 'Z')
        return fail(p, "no MZ signature (found 0x%02x 0x%02x)", d[0], d[1]);
    uint64_t lfanew = rd32(d + 0x3c);
    if (lfanew + 4 + FILE_HEADER_SIZE > p->size)
        return fail(p, "e_lfanew 0x%llx points past the end of the file (size 0x%zx)",
                    (unsigned long long)lfanew, p->size);
    if (memcmp(d + lfanew, "PE\0\0", 4) != 0)
        return fail(p, "no PE signature at e_lfanew 0x%llx", (unsigned long long)lfanew);

    const uint8_t *fh = d + lfanew + 4;
    img->machine = rd16(fh);
    *nsections = rd16(fh + 2);
    img->timestamp = rd32(fh + 4);
    *opt_size = rd16(fh + 16);
    img->characteristics = rd16(fh + 18);
    if (img->machine != MACHINE_AMD64)
        return fail(p, "machine 0x%04x is not AMD64 (0x8664)", img->machine);

    *opt_off = lfanew + 4 + FILE_HEADER_SIZE;
    if (*opt_size < OPT64_FIXED_SIZE)
        return fail(p, "SizeOfOptionalHeader 0x%x is too small for PE32+ (at least 0x%x)",
                    *opt_size, OPT64_FIXED_SIZE);
    if (*opt_off + *opt_size > p->size)
        return fail(p, "optional header [0x%llx, 0x%llx) runs past the end of the file "
                    "(size 0x%zx)", (unsigned long long)*opt_off,
                    (unsigned long long)(*opt_off + *opt_size), p->size);

    const uint8_t *oh = d + *opt_off;
    if (rd16(oh) != OPT_MAGIC_PE32PLUS)
        return fail(p, "optional header magic 0x%x is not PE32+ (0x20b)", rd16(oh));
    img->entry_rva = rd32(oh + 16);
    img->preferred_base = rd64(oh + 24);
    img->section_alignment = rd32(oh + 32);
    img->file_alignment = rd32(oh + 36);
    img->size_of_image = rd32(oh + 56);
    img->size_of_headers = rd32(oh + 60);
    img->checksum = rd32(oh + 64);
    img->subsystem = rd16(oh + 68);
    img->dll_characteristics = rd16(oh + 70);

    if (img->size_of_image == 0 || img->size_of_image > PE_MAX_IMAGE)
        return fail(p, "SizeOfImage 0x%x is absurd (0 or more than 64 MiB)",
                    img->size_of_image);
    if (!is_pow2(img->file_alignment))
        return fail(p, "FileAlignment 0x%x is not a power of two", img->file_alignment);
    if (!is_pow2(img->section_alignment))
        return fail(p, "SectionAlignment 0x%x is not a power of two",
                    img->section_alignment);
    if (img->section_alignment < img->file_alignment)
        return fail(p, "SectionAlignment 0x%x is smaller than FileAlignment 0x%x",
                    img->section_alignment, img->file_alignment);
    if (img->size_of_headers == 0 || img->size_of_headers > img->size_of_image)
        return fail(p, "SizeOfHeaders 0x%x is 0 or larger than SizeOfImage 0x%x",
                    img->size_of_headers, img->size_of_image);
    if (img->preferred_base & 0xffff)
        return fail(p, "ImageBase 0x%llx is not 64 KiB aligned",
                    (unsigned long long)img->preferred_base);
    return 0;
}

/* ---- sections ----------------------------------------------------------- */

static int parse_sections(pe_parser *p, uint64_t table, uint32_t count)
{
    sim_image *img = p->img;

    if (count == 0)
        return fail(p, "the image has no sections");
    if (count > SIM_IMAGE_MAX_SECTIONS)
        return fail(p, "%u sections (at most %u)", count, SIM_IMAGE_MAX_SECTIONS);
    if (table + (uint64_t)count * SECTION_HEADER_SIZE > p->size)
        return fail(p, "section table (%u sections at 0x%llx) runs past the end of the "
                    "file (size 0x%zx)", count, (unsigned long long)table, p->size);

    img->sections = sim_calloc(count, sizeof *img->sections);
    if (!img->sections)
        return out_of_memory(p);
    img->nsections = count;

    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *h = p->data + table + (uint64_t)i * SECTION_HEADER_SIZE;
        sim_section *s = &img->sections[i];
        memcpy(s->name, h, 8);
        s->name[8] = '\0';
        uint32_t vsize = rd32(h + 8);
        s->rva = rd32(h + 12);
        uint32_t raw_size = rd32(h + 16);
        s->raw_offset = rd32(h + 20);
        s->characteristics = rd32(h + 36);
        s->vsize = vsize ? vsize : raw_size;
        s->raw_size = raw_size < s->vsize ? raw_size : s->vsize;
        s->prot = (s->characteristics & SCN_MEM_READ ? SIM_PROT_R : 0) |
                  (s->characteristics & SCN_MEM_WRITE ? SIM_PROT_W : 0) |
                  (s->characteristics & SCN_MEM_EXECUTE ? SIM_PROT_X : 0);
        s->discardable = (s->characteristics & SCN_MEM_DISCARDABLE) != 0;

        uint64_t end = (uint64_t)s->rva + s->vsize;
        if (end > img->size_of_image)
            return fail(p, "section %u (%s) [0x%x, 0x%llx) lies outside SizeOfImage 0x%x",
                        i, s->name, s->rva, (unsigned long long)end, img->size_of_image);
        if (s->rva < img->size_of_headers)
            return fail(p, "section %u (%s) at rva 0x%x overlaps the headers "
                        "(SizeOfHeaders 0x%x)", i, s->name, s->rva, img->size_of_headers);
        if (i > 0) {
            const sim_section *prev = &img->sections[i - 1];
            if (s->rva < (uint64_t)prev->rva + prev->vsize)
                return fail(p, "section %u (%s) at rva 0x%x overlaps section %u (%s) "
                            "[0x%x, 0x%llx) or is out of order", i, s->name, s->rva,
                            i - 1, prev->name, prev->rva,
                            (unsigned long long)prev->rva + prev->vsize);
        }
        if (s->raw_size > 0 && (uint64_t)s->raw_offset + s->raw_size > p->size)
            return fail(p, "section %u (%s) raw data [0x%x, 0x%llx) lies past the end of "
                        "the file (size 0x%zx)", i, s->name, s->raw_offset,
                        (unsigned long long)s->raw_offset + s->raw_size, p->size);
    }
    return 0;
}

static const sim_section *section_holding(const sim_image *img, uint64_t rva, uint64_t n)
{
    for (size_t i = 0; i < img->nsections; i++) {
        const sim_section *s = &img->sections[i];
        if (rva >= s->rva && rva + n <= (uint64_t)s->rva + s->vsize && s->vsize > 0)
            return s;
    }
    return NULL;
}

static int check_entry(pe_parser *p)
{
    const sim_image *img = p->img;
    if (img->entry_rva >= img->size_of_image)
        return fail(p, "entry point 0x%x lies outside the image (SizeOfImage 0x%x)",
                    img->entry_rva, img->size_of_image);
    const sim_section *s = section_holding(img, img->entry_rva, 1);
    if (!s || !(s->prot & SIM_PROT_X))
        return fail(p, "entry point 0x%x is not in an executable section", img->entry_rva);
    return 0;
}

/*
 * A data directory's [rva, rva+size), or an empty one.  A present directory
 * must lie inside one section: the loader finds it in the mapped image.
 */
static int directory(pe_parser *p, const uint8_t *dirs, uint32_t ndirs, unsigned index,
                     const char *what, uint32_t *rva, uint32_t *size)
{
    *rva = *size = 0;
    if (index >= ndirs)
        return 0;
    uint32_t r = rd32(dirs + 8 * index), n = rd32(dirs + 8 * index + 4);
    if (n == 0)
        return 0;
    if ((uint64_t)r + n > p->img->size_of_image)
        return fail(p, "%s [0x%x, 0x%llx) lies outside SizeOfImage 0x%x", what, r,
                    (unsigned long long)r + n, p->img->size_of_image);
    if (!section_holding(p->img, r, n))
        return fail(p, "%s [0x%x, 0x%llx) is not inside a mapped section", what, r,
                    (unsigned long long)r + n);
    *rva = r;
    *size = n;
    return 0;
}

/* ---- base relocations --------------------------------------------------- */

/*
 * Walk the relocation blocks.  With mem == NULL only validate; otherwise add
 * delta at every DIR64 target (the blocks were validated at parse).
 */
static int walk_relocs(pe_parser *p, const sim_image *img, uint8_t *mem, uint64_t delta)
{
    uint64_t pos = img->reloc_rva, end = (uint64_t)img->reloc_rva + img->reloc_size;
    while (end - pos >= 8) {
        const uint8_t *b = at_rva(img, pos, 8);
        if (!b)
            return fail(p, "base relocation block at rva 0x%llx is not in the file",
                        (unsigned long long)pos);
        uint32_t page = rd32(b), bsize = rd32(b + 4);
        if (page == 0 && bsize == 0)
            break; /* some linkers end the directory with an empty block */
        if (bsize < 8 || bsize % 2 != 0 || bsize > end - pos)
            return fail(p, "base relocation block at rva 0x%llx has size 0x%x (the "
                        "directory has 0x%llx bytes left)", (unsigned long long)pos,
                        bsize, (unsigned long long)(end - pos));
        if (page >= img->size_of_image)
            return fail(p, "base relocation block at rva 0x%llx is for page 0x%x, "
                        "outside SizeOfImage 0x%x", (unsigned long long)pos, page,
                        img->size_of_image);
        const uint8_t *e = at_rva(img, pos + 8, bsize - 8);
        if (!e)
            return fail(p, "base relocation block at rva 0x%llx is not in the file",
                        (unsigned long long)pos);
        for (uint32_t i = 0; i < (bsize - 8) / 2; i++) {
            uint16_t entry = rd16(e + 2 * i);
            unsigned type = entry >> 12;
            uint64_t target = (uint64_t)page + (entry & 0xfff);
            if (type == REL_BASED_ABSOLUTE)
                continue;
            if (type != REL_BASED_DIR64)
                return fail(p, "base relocation of type %u at rva 0x%llx is not "
                            "supported (only DIR64 and ABSOLUTE)", type,
                            (unsigned long long)target);
            if (target + 8 > img->size_of_image)
                return fail(p, "base relocation at rva 0x%llx lies outside SizeOfImage "
                            "0x%x", (unsigned long long)target, img->size_of_image);
            if (mem) {
                uint64_t v = rd64(mem + target) + delta;
                for (unsigned k = 0; k < 8; k++)
                    mem[target + k] = (uint8_t)(v >> (8 * k));
            }
        }
        pos += bsize;
    }
    return 0;
}

/* ---- imports ------------------------------------------------------------ */

static int add_import(pe_parser *p, size_t *cap, const sim_import *imp)
{
    sim_image *img = p->img;
    if (img->nimports >= PE_MAX_IMPORTS)
        return fail(p, "more than %u imports", PE_MAX_IMPORTS);
    if (img->nimports == *cap) {
        size_t ncap = *cap ? *cap * 2 : 32;
        sim_import *n = sim_realloc(img->imports, ncap * sizeof *n);
        if (!n)
            return out_of_memory(p);
        img->imports = n;
        *cap = ncap;
    }
    img->imports[img->nimports++] = *imp;
    return 0;
}

static int parse_thunks(pe_parser *p, size_t *cap, const char *dll, uint32_t lookup,
                        uint32_t iat)
{
    const sim_image *img = p->img;
    for (uint64_t i = 0;; i++) {
        uint64_t rva = lookup + 8 * i;
        const uint8_t *t = at_rva(img, rva, 8);
        if (!t)
            return fail(p, "import thunks of %s run off their section at rva 0x%llx",
                        dll, (unsigned long long)rva);
        uint64_t thunk = rd64(t);
        if (thunk == 0)
            return 0;
        sim_import imp;
        memset(&imp, 0, sizeof imp);
        memcpy(imp.dll, dll, strlen(dll) + 1);
        uint64_t slot = iat + 8 * i;
        if (!section_holding(img, slot, 8))
            return fail(p, "import address table slot of %s at rva 0x%llx is not inside "
                        "a mapped section", dll, (unsigned long long)slot);
        imp.iat_rva = (uint32_t)slot;
        if (thunk >> 63) {
            imp.by_ordinal = true;
            imp.ordinal = (uint16_t)thunk;
        } else {
            if (thunk >> 31)
                return fail(p, "import thunk 0x%llx of %s at rva 0x%llx is malformed",
                            (unsigned long long)thunk, dll, (unsigned long long)rva);
            const uint8_t *h = at_rva(img, thunk, 2);
            if (!h)
                return fail(p, "import hint/name of %s at rva 0x%llx is not in the file",
                            dll, (unsigned long long)thunk);
            imp.ordinal = rd16(h);
            int rc = read_string(p, thunk + 2, imp.name, sizeof imp.name, "import name");
            if (rc)
                return rc;
            if (imp.name[0] == '\0')
                return fail(p, "import of %s at rva 0x%llx has an empty name", dll,
                            (unsigned long long)thunk);
        }
        int rc = add_import(p, cap, &imp);
        if (rc)
            return rc;
    }
}

static int parse_imports(pe_parser *p, uint32_t dir_rva)
{
    size_t cap = 0;
    for (uint32_t n = 0;; n++) {
        if (n >= PE_MAX_DESCRIPTORS)
            return fail(p, "more than %u import descriptors", PE_MAX_DESCRIPTORS);
        uint64_t rva = (uint64_t)dir_rva + (uint64_t)n * IMPORT_DESCRIPTOR_SIZE;
        const uint8_t *d = at_rva(p->img, rva, IMPORT_DESCRIPTOR_SIZE);
        if (!d)
            return fail(p, "import descriptors run off their section at rva 0x%llx "
                        "(no terminating empty descriptor)", (unsigned long long)rva);
        uint32_t lookup = rd32(d), name = rd32(d + 12), iat = rd32(d + 16);
        if (lookup == 0 && name == 0 && iat == 0)
            return 0;
        char dll[64];
        int rc = read_string(p, name, dll, sizeof dll, "import DLL name");
        if (rc)
            return rc;
        if (iat == 0)
            return fail(p, "import descriptor for %s has no import address table", dll);
        rc = parse_thunks(p, &cap, dll, lookup ? lookup : iat, iat);
        if (rc)
            return rc;
    }
}

/* ---- exports ------------------------------------------------------------ */

static int parse_exports(pe_parser *p, uint32_t dir_rva, uint32_t dir_size)
{
    sim_image *img = p->img;
    const uint8_t *d = at_rva(img, dir_rva, EXPORT_DIRECTORY_SIZE);
    if (!d)
        return fail(p, "export directory at rva 0x%x is not in the file", dir_rva);
    uint32_t base = rd32(d + 16), nfunc = rd32(d + 20), nname = rd32(d + 24);
    uint32_t funcs_rva = rd32(d + 28), names_rva = rd32(d + 32), ords_rva = rd32(d + 36);
    if (nfunc > PE_MAX_EXPORTS || nname > PE_MAX_EXPORTS)
        return fail(p, "export directory lists %u functions and %u names (at most %u)",
                    nfunc, nname, PE_MAX_EXPORTS);
    if (nfunc == 0)
        return 0;
    const uint8_t *funcs = at_rva(img, funcs_rva, 4ull * nfunc);
    if (!funcs)
        return fail(p, "export address table [0x%x, +0x%llx) is not in the file",
                    funcs_rva, 4ull * nfunc);
    const uint8_t *names = NULL, *ords = NULL;
    if (nname > 0) {
        names = at_rva(img, names_rva, 4ull * nname);
        ords = at_rva(img, ords_rva, 2ull * nname);
        if (!names || !ords)
            return fail(p, "export name tables (%u names at 0x%x, ordinals at 0x%x) are "
                        "not in the file", nname, names_rva, ords_rva);
    }
    if ((uint64_t)base + nfunc - 1 > 0xffff)
        return fail(p, "export ordinals %u..%llu exceed 65535", base,
                    (unsigned long long)base + nfunc - 1);

    /* At most one entry per name plus one per unnamed function. */
    img->exports = sim_calloc((size_t)nname + nfunc, sizeof *img->exports);
    bool *named = sim_calloc(nfunc, sizeof *named);
    if (!img->exports || !named) {
        sim_free(named);
        return out_of_memory(p);
    }

    int rc = 0;
    for (uint32_t i = 0; i < nname + nfunc && rc == 0; i++) {
        uint32_t index = i < nname ? rd16(ords + 2 * i) : i - nname;
        if (i < nname && index >= nfunc) {
            rc = fail(p, "export name %u refers to function %u of %u", i, index, nfunc);
            break;
        }
        if (i >= nname && named[index])
            continue;
        uint32_t rva = rd32(funcs + 4 * index);
        if (rva == 0)
            continue;
        if (rva >= dir_rva && rva < (uint64_t)dir_rva + dir_size)
            continue; /* a forwarder: "OTHER.Name", nothing of ours to call */
        if (rva >= img->size_of_image) {
            rc = fail(p, "export %u has rva 0x%x outside SizeOfImage 0x%x", base + index,
                      rva, img->size_of_image);
            break;
        }
        sim_export *e = &img->exports[img->nexports];
        if (i < nname) {
            named[index] = true;
            rc = read_string(p, rd32(names + 4 * i), e->name, sizeof e->name,
                             "export name");
        }
        e->ordinal = (uint16_t)(base + index);
        e->rva = rva;
        if (rc == 0)
            img->nexports++;
    }
    sim_free(named);
    return rc;
}

/* ---- .pdata ------------------------------------------------------------- */

static int cmp_function(const void *a, const void *b)
{
    const sim_runtime_function *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int parse_pdata(pe_parser *p, uint32_t dir_rva, uint32_t dir_size)
{
    sim_image *img = p->img;
    size_t count = dir_size / RUNTIME_FUNCTION_SIZE;
    if (count == 0)
        return 0;
    const uint8_t *d = at_rva(img, dir_rva, (uint64_t)count * RUNTIME_FUNCTION_SIZE);
    if (!d)
        return fail(p, "exception directory at rva 0x%x is not in the file", dir_rva);
    img->functions = sim_calloc(count, sizeof *img->functions);
    if (!img->functions)
        return out_of_memory(p);
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = d + i * RUNTIME_FUNCTION_SIZE;
        sim_runtime_function f = {rd32(e), rd32(e + 4), rd32(e + 8)};
        if (f.begin == 0 && f.end == 0 && f.unwind == 0)
            continue; /* padding */
        if (f.begin >= f.end || f.end > img->size_of_image)
            return fail(p, "exception directory entry %zu [0x%x, 0x%x) is empty or lies "
                        "outside SizeOfImage 0x%x", i, f.begin, f.end, img->size_of_image);
        if ((uint64_t)(f.unwind & ~1u) + 4 > img->size_of_image)
            return fail(p, "exception directory entry %zu has unwind data at 0x%x outside "
                        "SizeOfImage 0x%x", i, f.unwind, img->size_of_image);
        img->functions[img->nfunctions++] = f;
    }
    qsort(img->functions, img->nfunctions, sizeof *img->functions, cmp_function);
    for (size_t i = 1; i < img->nfunctions; i++) {
        const sim_runtime_function *a = &img->functions[i - 1], *b = &img->functions[i];
        if (b->begin < a->end)
            return fail(p, "exception directory entries [0x%x, 0x%x) and [0x%x, 0x%x) "
                        "overlap", a->begin, a->end, b->begin, b->end);
    }
    return 0;
}

/* ---- symbols ------------------------------------------------------------ */

/*
 * A symbol candidate before uniquing.  rank orders names for one rva: COFF
 * function symbols first, then exports, then other COFF symbols in code.
 */
typedef struct pe_candidate {
    uint32_t rva;
    uint32_t rank;
    uint32_t order;     /* where it was found: a stable tie-break */
    const char *name;   /* into the file or the export table */
    size_t len;
} pe_candidate;

static int cmp_candidate(const void *a, const void *b)
{
    const pe_candidate *x = a, *y = b;
    if (x->rva != y->rva)
        return x->rva < y->rva ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static bool in_code(const sim_image *img, uint64_t rva)
{
    const sim_section *s = section_holding(img, rva, 1);
    return s && (s->prot & SIM_PROT_X);
}

/* The COFF symbol's name: short (8 bytes, maybe unterminated) or long. */
static bool coff_name(const uint8_t *sym, const uint8_t *strtab, uint64_t strsize,
                      const char **name, size_t *len)
{
    if (rd32(sym) != 0) {
        const uint8_t *nul = memchr(sym, 0, 8);
        *name = (const char *)sym;
        *len = nul ? (size_t)(nul - sym) : 8;
        return true;
    }
    uint64_t off = rd32(sym + 4);
    if (!strtab || off < 4 || off >= strsize)
        return false;
    /* Only as far as a name is kept: scanning a whole damaged table for
     * every symbol would make parsing quadratic in the file's size. */
    const uint8_t *s = strtab + off;
    uint64_t left = strsize - off;
    const uint8_t *nul = memchr(s, 0, left < PE_MAX_SYMBOL_NAME ? left : PE_MAX_SYMBOL_NAME);
    if (!nul && left <= PE_MAX_SYMBOL_NAME)
        return false; /* unterminated at the table's end */
    *name = (const char *)s;
    *len = nul ? (size_t)(nul - s) : PE_MAX_SYMBOL_NAME;
    return true;
}

/* Function symbols of the COFF table, or none when it is absent or damaged. */
static size_t coff_candidates(const pe_parser *p, uint64_t symtab, uint64_t nsyms,
                              pe_candidate *out)
{
    const sim_image *img = p->img;
    if (symtab == 0 || nsyms == 0 || symtab + nsyms * COFF_SYMBOL_SIZE > p->size)
        return 0;
    uint64_t str_off = symtab + nsyms * COFF_SYMBOL_SIZE;
    const uint8_t *strtab = NULL;
    uint64_t strsize = 0;
    if (str_off + 4 <= p->size) {
        strsize = rd32(p->data + str_off);
        if (strsize > p->size - str_off)
            strsize = p->size - str_off;
        strtab = p->data + str_off;
    }

    size_t n = 0;
    for (uint64_t i = 0; i < nsyms; i++) {
        const uint8_t *sym = p->data + symtab + i * COFF_SYMBOL_SIZE;
        uint32_t value = rd32(sym + 8);
        int16_t secnum = (int16_t)rd16(sym + 12);
        uint16_t type = rd16(sym + 14);
        uint8_t cls = sym[16];
        uint64_t aux = sym[17];
        uint64_t here = i;
        i += aux;
        if (cls != SYM_CLASS_EXTERNAL && cls != SYM_CLASS_STATIC)
            continue;
        if (secnum < 1 || (size_t)secnum > img->nsections)
            continue;
        const sim_section *s = &img->sections[secnum - 1];
        if (!(s->prot & SIM_PROT_X) || value >= s->vsize)
            continue;
        const char *name;
        size_t len;
        if (!coff_name(sym, strtab, strsize, &name, &len) || len == 0 || name[0] == '.')
            continue;
        bool function = ((type >> 4) & 3) == SYM_DTYPE_FUNCTION;
        out[n].rva = s->rva + value;
        out[n].rank = function ? 0 : cls == SYM_CLASS_EXTERNAL ? 2 : 3;
        out[n].order = (uint32_t)here;
        out[n].name = name;
        out[n].len = len;
        n++;
    }
    return n;
}

static int build_symbols(pe_parser *p, uint64_t symtab, uint64_t nsyms)
{
    sim_image *img = p->img;
    if (symtab == 0 || symtab + nsyms * COFF_SYMBOL_SIZE > p->size)
        nsyms = 0;
    size_t max = (size_t)nsyms + img->nexports;
    if (max == 0)
        return 0;
    pe_candidate *c = sim_calloc(max, sizeof *c);
    if (!c)
        return out_of_memory(p);
    size_t n = coff_candidates(p, symtab, nsyms, c);
    for (size_t i = 0; i < img->nexports; i++) {
        const sim_export *e = &img->exports[i];
        if (e->name[0] == '\0' || !in_code(img, e->rva))
            continue;
        c[n] = (pe_candidate){e->rva, 1, (uint32_t)i, e->name, strlen(e->name)};
        n++;
    }
    qsort(c, n, sizeof *c, cmp_candidate);

    size_t unique = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || c[i].rva != c[i - 1].rva)
            c[unique++] = c[i];

    int rc = 0;
    if (unique > 0) {
        img->symbols = sim_calloc(unique, sizeof *img->symbols);
        if (!img->symbols)
            rc = out_of_memory(p);
    }
    for (size_t i = 0; i < unique && rc == 0; i++) {
        size_t len = c[i].len < PE_MAX_SYMBOL_NAME ? c[i].len : PE_MAX_SYMBOL_NAME;
        char *name = sim_malloc(len + 1);
        if (!name) {
            rc = out_of_memory(p);
            break;
        }
        memcpy(name, c[i].name, len);
        name[len] = '\0';
        img->symbols[i].rva = c[i].rva;
        img->symbols[i].name = name;
        img->nsymbols++;
    }
    sim_free(c);
    return rc;
}

/* ---- names -------------------------------------------------------------- */

static void set_names(sim_image *img, const char *name)
{
    const char *base = name;
    for (const char *s = name; *s; s++)
        if (*s == '/' || *s == '\\')
            base = s + 1;
    snprintf(img->name, sizeof img->name, "%s", base);

    /*
     * The module name is what buckets say ("sensor!Parse+0x1a3"): the file
     * name without its extension and without a version suffix, so that
     * "sensor-7.11.sys" and "sensor-7.12.sys" bucket as one module.
     */
    snprintf(img->module, sizeof img->module, "%s", img->name);
    char *dot = strrchr(img->module, '.');
    if (dot && dot != img->module)
        *dot = '\0';
    char *dash = strrchr(img->module, '-');
    if (dash && dash != img->module && dash[1] >= '0' && dash[1] <= '9') {
        bool version = true;
        for (const char *s = dash + 1; *s; s++)
            if (!((*s >= '0' && *s <= '9') || *s == '.'))
                version = false;
        if (version)
            *dash = '\0';
    }
}

/* ---- the parse ---------------------------------------------------------- */

static int parse(pe_parser *p)
{
    sim_image *img = p->img;
    uint64_t opt_off = 0;
    uint32_t opt_size = 0, nsections = 0;
    int rc = parse_headers(p, &opt_off, &opt_size, &nsections);
    if (rc)
        return rc;

    const uint8_t *oh = p->data + opt_off;
    uint32_t ndirs = rd32(oh + 108);
    if (ndirs > 16)
        ndirs = 16;
    if (OPT64_FIXED_SIZE + 8ull * ndirs > opt_size)
        return fail(p, "SizeOfOptionalHeader 0x%x is too small for %u data directories",
                    opt_size, ndirs);
    rc = parse_sections(p, opt_off + opt_size, nsections);
    if (rc)
        return rc;
    rc = check_entry(p);
    if (rc)
        return rc;

    const uint8_t *dirs = oh + OPT64_FIXED_SIZE;
    uint32_t exp_rva, exp_size, imp_rva, imp_size, pdata_rva, pdata_size;
    if ((rc = directory(p, dirs, ndirs, DIR_EXPORT, "export directory", &exp_rva,
                        &exp_size)) ||
        (rc = directory(p, dirs, ndirs, DIR_IMPORT, "import directory", &imp_rva,
                        &imp_size)) ||
        (rc = directory(p, dirs, ndirs, DIR_EXCEPTION, "exception directory (.pdata)",
                        &pdata_rva, &pdata_size)) ||
        (rc = directory(p, dirs, ndirs, DIR_BASERELOC, "base relocation directory",
                        &img->reloc_rva, &img->reloc_size)))
        return rc;

    if ((rc = walk_relocs(p, img, NULL, 0)))
        return rc;
    if (imp_size && (rc = parse_imports(p, imp_rva)))
        return rc;
    if (exp_size && (rc = parse_exports(p, exp_rva, exp_size)))
        return rc;
    if (pdata_size && (rc = parse_pdata(p, pdata_rva, pdata_size)))
        return rc;

    const uint8_t *fh = p->data + rd32(p->data + 0x3c) + 4;
    return build_symbols(p, rd32(fh + 8), rd32(fh + 12));
}

/* Parse `data`, taking ownership of it (freed on failure). */
static int parse_owned(uint8_t *data, size_t size, const char *name, sim_image **out,
                       char *err, size_t errlen)
{
    pe_parser p = {data, size, NULL, err, errlen};
    if (size > PE_MAX_FILE) {
        sim_free(data);
        return fail(&p, "file is 0x%zx bytes; images larger than 256 MiB are refused",
                    size);
    }
    sim_image *img = sim_calloc(1, sizeof *img);
    if (!img) {
        sim_free(data);
        return out_of_memory(&p);
    }
    img->file = data;
    img->file_size = size;
    p.img = img;
    set_names(img, name ? name : "image.sys");

    sim_sha256(data, size, img->sha256);

    int rc = parse(&p);
    if (rc) {
        sim_image_destroy(img);
        return rc;
    }
    *out = img;
    return 0;
}

int sim_image_parse(const void *data, size_t size, const char *name, sim_image **out,
                    char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!out || (!data && size > 0)) {
        if (err && errlen > 0)
            snprintf(err, errlen, "sim_image_parse: no data or no output");
        return SIM_EINVAL;
    }
    if (size > PE_MAX_FILE) {
        if (err && errlen > 0)
            snprintf(err, errlen, "file is 0x%zx bytes; images larger than 256 MiB are "
                     "refused", size);
        return SIM_EFORMAT;
    }
    uint8_t *copy = sim_malloc(size);
    if (!copy) {
        if (err && errlen > 0)
            snprintf(err, errlen, "out of memory while parsing the image");
        return SIM_ENOMEM;
    }
    if (size > 0)
        memcpy(copy, data, size);
    return parse_owned(copy, size, name, out, err, errlen);
}

static int io_error(char *err, size_t errlen, const char *path, const char *what, int e)
{
    if (err && errlen > 0)
        snprintf(err, errlen, "%s: %s: %s", path, what, strerror(e));
    return SIM_EIO;
}

int sim_image_open(const char *path, sim_image **out, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!path || !out) {
        if (err && errlen > 0)
            snprintf(err, errlen, "sim_image_open: no path or no output");
        return SIM_EINVAL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_error(err, errlen, path, "cannot open", errno);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return io_error(err, errlen, path, "cannot stat", e);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return io_error(err, errlen, path, "cannot read",
                        S_ISDIR(st.st_mode) ? EISDIR : EINVAL);
    }
    if ((uint64_t)st.st_size > PE_MAX_FILE) {
        close(fd);
        if (err && errlen > 0)
            snprintf(err, errlen, "%s: file is %lld bytes; images larger than 256 MiB "
                     "are refused", path, (long long)st.st_size);
        return SIM_EFORMAT;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = sim_malloc(size);
    if (!data) {
        close(fd);
        if (err && errlen > 0)
            snprintf(err, errlen, "%s: out of memory reading the image", path);
        return SIM_ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO; /* the file shrank under us */
            close(fd);
            sim_free(data);
            return io_error(err, errlen, path, "cannot read", e);
        }
        got += (size_t)r;
    }
    close(fd);
    return parse_owned(data, size, path, out, err, errlen);
}

void sim_image_destroy(sim_image *image)
{
    if (!image)
        return;
    for (size_t i = 0; i < image->nsymbols; i++)
        sim_free(image->symbols[i].name);
    sim_free(image->symbols);
    sim_free(image->functions);
    sim_free(image->exports);
    sim_free(image->imports);
    sim_free(image->sections);
    sim_free(image->file);
    sim_free(image);
}

/* ---- layout ------------------------------------------------------------- */

void sim_image_build(const sim_image *image, uint64_t base, uint8_t *mem)
{
    if (!image || !mem)
        return;
    memset(mem, 0, image->size_of_image);
    size_t hdr = image->size_of_headers;
    if (hdr > image->file_size)
        hdr = image->file_size;
    memcpy(mem, image->file, hdr);
    for (size_t i = 0; i < image->nsections; i++) {
        const sim_section *s = &image->sections[i];
        memcpy(mem + s->rva, image->file + s->raw_offset, s->raw_size);
    }
    uint64_t delta = base - image->preferred_base;
    if (delta != 0 && image->reloc_size != 0) {
        /* Validated at parse: cannot fail, and reads only the file's bytes. */
        pe_parser p = {image->file, image->file_size, NULL, NULL, 0};
        walk_relocs(&p, image, mem, delta);
    }
}

/* ---- lookups ------------------------------------------------------------ */

const sim_symbol *sim_image_symbol_at(const sim_image *image, uint32_t rva)
{
    if (!image || image->nsymbols == 0 || image->symbols[0].rva > rva)
        return NULL;
    size_t lo = 0, hi = image->nsymbols; /* symbols[lo].rva <= rva < symbols[hi].rva */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (image->symbols[mid].rva <= rva)
            lo = mid;
        else
            hi = mid;
    }
    return &image->symbols[lo];
}

const sim_runtime_function *sim_image_function_at(const sim_image *image, uint32_t rva)
{
    if (!image)
        return NULL;
    size_t lo = 0, hi = image->nfunctions;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sim_runtime_function *f = &image->functions[mid];
        if (rva < f->begin)
            hi = mid;
        else if (rva >= f->end)
            lo = mid + 1;
        else
            return f;
    }
    return NULL;
}

const sim_section *sim_image_section_at(const sim_image *image, uint32_t rva)
{
    if (!image)
        return NULL;
    for (size_t i = 0; i < image->nsections; i++) {
        const sim_section *s = &image->sections[i];
        if (rva >= s->rva && rva < (uint64_t)s->rva + s->vsize)
            return s;
    }
    return NULL;
}

void sim_sha256(const void *data, size_t size, uint8_t digest[32])
{
    struct sha256_ctx sha;
    sha256_init(&sha);
    sha256_update(&sha, size, data);
    sha256_digest(&sha, 32, digest);
}
