/*
 * pe_forge.h — a small builder of synthetic PE32+ driver images for tests.
 *
 * Tests of the loader, the unwinder and the fuzz harness need images whose
 * every byte they control: a good one to start from, and malformed ones made
 * by changing one field of it.  A pf_image describes sections, imports,
 * exports, base relocations, .pdata/.xdata and COFF symbols; pf_build lays
 * them out the way GNU ld does for a native driver (headers, then one section
 * per 0x1000 of address space, generated sections after the caller's) and
 * reports where everything landed (pf_layout) so a test can poke at it.
 *
 * The builder is test code: it allocates with malloc, keeps fixed-size
 * tables and asserts on misuse.
 */
#ifndef FLEETSIM_TESTS_PE_FORGE_H
#define FLEETSIM_TESTS_PE_FORGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PF_MAX_SECTIONS 90
#define PF_MAX_IMPORTS 64
#define PF_MAX_EXPORTS 64
#define PF_MAX_RELOCS 256
#define PF_MAX_FUNCTIONS 64
#define PF_MAX_XDATA 96
#define PF_MAX_SYMBOLS 64

#define PF_SCN_TEXT 0x60000020u  /* code, execute, read */
#define PF_SCN_RDATA 0x40000040u /* initialised data, read */
#define PF_SCN_DATA 0xC0000040u  /* initialised data, read, write */
#define PF_SCN_BSS 0xC0000080u   /* uninitialised data, read, write */
#define PF_SCN_DISCARD 0x02000000u

#define PF_BASE 0xfffff80000000000ull

typedef struct pf_section_spec {
    char name[9];
    uint32_t characteristics;
    const uint8_t *data;     /* not copied: must live until pf_build */
    uint32_t size;           /* bytes of data (SizeOfRawData before padding) */
    uint32_t vsize;          /* VirtualSize; 0: size */
} pf_section_spec;

typedef struct pf_import_spec {
    char dll[64];
    char name[128];          /* "" imports by ordinal */
    uint16_t hint;           /* hint, or the ordinal */
} pf_import_spec;

typedef struct pf_export_spec {
    char name[64];           /* "" exports by ordinal only */
    uint32_t rva;
} pf_export_spec;

typedef struct pf_reloc_spec {
    uint32_t rva;
    unsigned type;           /* 10 = DIR64 */
} pf_reloc_spec;

typedef struct pf_function_spec {
    uint32_t begin, end;
    uint8_t xdata[PF_MAX_XDATA];
    uint32_t xdata_size;
} pf_function_spec;

typedef struct pf_symbol_spec {
    char name[64];
    int16_t section;         /* 1-based section number */
    uint32_t value;          /* offset in the section */
    uint16_t type;           /* 0x20: function */
    uint8_t storage_class;   /* 2 external, 3 static */
} pf_symbol_spec;

typedef struct pf_image {
    /* Header fields a test may change before pf_build. */
    uint16_t machine;
    uint64_t base;
    uint32_t section_alignment, file_alignment;
    uint32_t entry;          /* 0: the first executable section's start */
    bool symbols_in_file;    /* write a COFF symbol table (default true) */

    pf_section_spec sections[PF_MAX_SECTIONS];
    int nsections;
    pf_import_spec imports[PF_MAX_IMPORTS];
    int nimports;
    pf_export_spec exports[PF_MAX_EXPORTS];
    int nexports;
    pf_reloc_spec relocs[PF_MAX_RELOCS];
    int nrelocs;
    pf_function_spec functions[PF_MAX_FUNCTIONS];
    int nfunctions;
    pf_symbol_spec symbols[PF_MAX_SYMBOLS];
    int nsymbols;
} pf_image;

/* Where pf_build put things (file offsets and RVAs). */
typedef struct pf_layout {
    size_t size;                 /* bytes of the file */
    uint32_t lfanew;             /* "PE\0\0" */
    uint32_t file_header;        /* IMAGE_FILE_HEADER */
    uint32_t optional_header;    /* IMAGE_OPTIONAL_HEADER64 */
    uint32_t directories;        /* DataDirectory[0] */
    uint32_t section_table;      /* first IMAGE_SECTION_HEADER */
    uint32_t symbol_table, string_table; /* 0 when none */
    uint32_t size_of_image, size_of_headers;
    int nsections;
    struct {
        char name[9];
        uint32_t rva, vsize, raw_offset, raw_size;
    } sections[PF_MAX_SECTIONS + 5];
    uint32_t xdata_rva, pdata_rva, edata_rva, idata_rva, reloc_rva; /* 0: none */
    uint32_t function_xdata[PF_MAX_FUNCTIONS]; /* rva of each function's xdata */
    uint32_t iat[PF_MAX_IMPORTS]; /* IAT slot rva of each import */
} pf_layout;

/* An empty image description with GNU ld's defaults for a driver. */
void pf_init(pf_image *img);

/* Add things; each returns the new entry's index. */
int pf_add_section(pf_image *img, const char *name, uint32_t characteristics,
                   const void *data, uint32_t size, uint32_t vsize);
int pf_add_import(pf_image *img, const char *dll, const char *name, uint16_t hint);
int pf_add_export(pf_image *img, const char *name, uint32_t rva);
int pf_add_reloc(pf_image *img, uint32_t rva, unsigned type);
int pf_add_function(pf_image *img, uint32_t begin, uint32_t end, const void *xdata,
                    uint32_t xdata_size);
int pf_add_symbol(pf_image *img, const char *name, int16_t section, uint32_t value,
                  uint16_t type, uint8_t storage_class);

/* The rva the i-th caller section will get (sections are laid out in order). */
uint32_t pf_section_rva(const pf_image *img, int index);

/* Lay the image out; a malloc'd buffer the caller frees.  layout may be NULL. */
uint8_t *pf_build(const pf_image *img, pf_layout *layout);

/* File offset of rva in a built image (asserts it is file-backed). */
size_t pf_offset(const pf_layout *layout, uint32_t rva);

/* Little-endian pokes for tampering with a built image. */
void pf_put16(uint8_t *p, uint16_t v);
void pf_put32(uint8_t *p, uint32_t v);
void pf_put64(uint8_t *p, uint64_t v);

/*
 * A good image like a small mingw driver: .text with three functions (a
 * leaf, one with push/alloc, DriverEntry), .data with a pointer that needs a
 * relocation, imports from ntoskrnl.exe, one export, .pdata/.xdata and COFF
 * symbols.  Code bytes are real x64 for the prologs the xdata describes.
 */
void pf_init_driver(pf_image *img);

/* Offsets of the three functions of pf_init_driver's .text (from its rva). */
#define PF_DRIVER_LEAF 0x00u
#define PF_DRIVER_WORKER 0x10u
#define PF_DRIVER_ENTRY 0x40u
#define PF_DRIVER_TEXT_SIZE 0x80u

#endif
