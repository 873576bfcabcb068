/*
 * cmd_inspect.c — `fleetsim inspect`: what a driver image is, without
 * running it.
 *
 * Before a run, a user wants to know whether fleetsim can take the image at
 * all: its headers, its sections and how they are protected, and above all
 * which imports fleetsim does not implement (each one is an unsupported-api
 * outcome waiting to happen).  Everything shown comes from the parsed
 * sim_image; nothing is emulated.  --json gives the same as one object.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fleet.h"
#include "json.h"
#include "sim.h"

#define USAGE "fleetsim inspect IMAGE [--json]"

/* A flag bit and the name a reader knows it by. */
typedef struct flag_name {
    uint32_t bit;
    const char *name;
} flag_name;

/* IMAGE_FILE_* (COFF characteristics). */
static const flag_name file_flags[] = {
    {0x0001, "relocs-stripped"},
    {0x0002, "executable"},
    {0x0020, "large-address-aware"},
    {0x0100, "32bit-machine"},
    {0x0200, "debug-stripped"},
    {0x1000, "system"},
    {0x2000, "dll"},
    {0, NULL},
};

/* IMAGE_DLLCHARACTERISTICS_*. */
static const flag_name dll_flags[] = {
    {0x0020, "high-entropy-va"},
    {0x0040, "dynamic-base"},
    {0x0080, "force-integrity"},
    {0x0100, "nx-compat"},
    {0x0200, "no-isolation"},
    {0x0400, "no-seh"},
    {0x0800, "no-bind"},
    {0x1000, "appcontainer"},
    {0x2000, "wdm-driver"},
    {0x4000, "guard-cf"},
    {0x8000, "terminal-server-aware"},
    {0, NULL},
};

static const char *machine_name(uint16_t machine)
{
    switch (machine) {
    case 0x8664: return "x64";
    case 0x014C: return "x86";
    case 0xAA64: return "arm64";
    }
    return "unknown";
}

static const char *subsystem_name(uint16_t subsystem)
{
    switch (subsystem) {
    case 1: return "native";
    case 2: return "windows-gui";
    case 3: return "windows-cui";
    case 10: return "efi-application";
    case 11: return "efi-boot-service-driver";
    case 12: return "efi-runtime-driver";
    }
    return "unknown";
}

/* "executable, large-address-aware" (or "none") into buf. */
static void format_flags(char *buf, size_t len, uint32_t value, const flag_name *names)
{
    size_t used = 0;

    buf[0] = '\0';
    for (const flag_name *f = names; f->name != NULL; f++)
        if (value & f->bit)
            used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s%s",
                                     used ? ", " : "", f->name);
    if (used == 0)
        snprintf(buf, len, "none");
}

static void format_prot(char buf[4], uint32_t prot)
{
    buf[0] = prot & SIM_PROT_R ? 'r' : '-';
    buf[1] = prot & SIM_PROT_W ? 'w' : '-';
    buf[2] = prot & SIM_PROT_X ? 'x' : '-';
    buf[3] = '\0';
}

static bool import_missing(const sim_import *imp)
{
    /* fleetsim binds by name; an ordinal import it cannot resolve. */
    return imp->name[0] == '\0' || !sim_kapi_implemented(imp->dll, imp->name);
}

/* Whether an earlier import names the same DLL (its group is already out). */
static bool dll_seen_before(const sim_image *image, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcasecmp(image->imports[j].dll, image->imports[i].dll) == 0)
            return true;
    return false;
}

static size_t count_missing(const sim_image *image)
{
    size_t n = 0;

    for (size_t i = 0; i < image->nimports; i++)
        n += import_missing(&image->imports[i]);
    return n;
}

/* "DriverEntry" or "DriverEntry+0x10" for the entry point; "" without one. */
static void format_entry(char *buf, size_t len, const sim_image *image)
{
    const sim_symbol *sym = sim_image_symbol_at(image, image->entry_rva);

    if (sym == NULL)
        buf[0] = '\0';
    else if (sym->rva == image->entry_rva)
        snprintf(buf, len, "%s", sym->name);
    else
        snprintf(buf, len, "%s+0x%" PRIx32, sym->name, image->entry_rva - sym->rva);
}

/* ---- text --------------------------------------------------------------- */

static void print_headers(const sim_image *image)
{
    char flags[256], entry[160], when[32] = "";
    time_t t = (time_t)image->timestamp;
    struct tm tm;

    printf("%s\n", image->name);
    printf("  machine              0x%04" PRIx16 " (%s)\n", image->machine,
           machine_name(image->machine));
    printf("  subsystem            %" PRIu16 " (%s)\n", image->subsystem,
           subsystem_name(image->subsystem));
    format_flags(flags, sizeof flags, image->characteristics, file_flags);
    printf("  characteristics      0x%04" PRIx16 " (%s)\n", image->characteristics, flags);
    format_flags(flags, sizeof flags, image->dll_characteristics, dll_flags);
    printf("  dll characteristics  0x%04" PRIx16 " (%s)\n", image->dll_characteristics, flags);
    if (image->timestamp != 0 && gmtime_r(&t, &tm) != NULL)
        strftime(when, sizeof when, " (%Y-%m-%d %H:%M:%S UTC)", &tm);
    printf("  timestamp            0x%08" PRIx32 "%s\n", image->timestamp, when);
    printf("  preferred base       0x%016" PRIx64 "\n", image->preferred_base);
    printf("  size of image        0x%" PRIx32 "\n", image->size_of_image);
    format_entry(entry, sizeof entry, image);
    printf("  entry point          0x%" PRIx32 "%s%s\n", image->entry_rva,
           entry[0] ? " " : "", entry);
    printf("  alignment            section 0x%" PRIx32 ", file 0x%" PRIx32 "\n",
           image->section_alignment, image->file_alignment);
    printf("  sha256               ");
    for (size_t i = 0; i < sizeof image->sha256; i++)
        printf("%02x", image->sha256[i]);
    printf("\n\n");
}

static void print_sections(const sim_image *image)
{
    char prot[4];

    printf("sections (%zu)\n", image->nsections);
    printf("  %-8s %-10s %-10s %-10s %s\n", "name", "rva", "vsize", "raw size", "prot");
    for (size_t i = 0; i < image->nsections; i++) {
        const sim_section *s = &image->sections[i];

        format_prot(prot, s->prot);
        printf("  %-8s 0x%-8" PRIx32 " 0x%-8" PRIx32 " 0x%-8" PRIx32 " %s%s\n", s->name,
               s->rva, s->vsize, s->raw_size, prot, s->discardable ? "  discardable" : "");
    }
    putchar('\n');
}

static void print_imports(const sim_image *image)
{
    size_t missing = count_missing(image);
    char name[sizeof image->imports[0].name];

    printf("imports (%zu", image->nimports);
    if (missing)
        printf(", %zu missing from fleetsim", missing);
    printf(")\n");
    for (size_t i = 0; i < image->nimports; i++) {
        if (dll_seen_before(image, i))
            continue;
        printf("  %s\n", image->imports[i].dll);
        for (size_t k = i; k < image->nimports; k++) {
            const sim_import *imp = &image->imports[k];

            if (strcasecmp(imp->dll, image->imports[i].dll) != 0)
                continue;
            if (imp->by_ordinal)
                snprintf(name, sizeof name, "#%" PRIu16, imp->ordinal);
            else
                snprintf(name, sizeof name, "%s", imp->name);
            if (import_missing(imp))
                printf("    %-40s  missing\n", name);
            else
                printf("    %s\n", name);
        }
    }
    putchar('\n');
}

static void print_exports(const sim_image *image)
{
    printf("exports (%zu)\n", image->nexports);
    for (size_t i = 0; i < image->nexports; i++) {
        const sim_export *e = &image->exports[i];

        printf("  %-5" PRIu16 " 0x%-8" PRIx32 " %s\n", e->ordinal, e->rva,
               e->name[0] ? e->name : "(by ordinal)");
    }
    putchar('\n');
}

static void print_text(const sim_image *image)
{
    print_headers(image);
    print_sections(image);
    print_imports(image);
    print_exports(image);
    printf(".pdata functions  %zu\n", image->nfunctions);
    printf("symbols           %zu\n", image->nsymbols);
}

/* ---- JSON --------------------------------------------------------------- */

static void json_headers(json_writer *w, const sim_image *image)
{
    char entry[160];

    json_key(w, "image");
    json_string(w, image->name);
    json_key(w, "module");
    json_string(w, image->module);
    json_key(w, "sha256");
    json_hex_bytes(w, image->sha256, sizeof image->sha256);
    json_key(w, "size");
    json_u64(w, image->file_size);
    json_key(w, "machine");
    json_hex(w, image->machine);
    json_key(w, "subsystem");
    json_u64(w, image->subsystem);
    json_key(w, "characteristics");
    json_hex(w, image->characteristics);
    json_key(w, "dll_characteristics");
    json_hex(w, image->dll_characteristics);
    json_key(w, "timestamp");
    json_u64(w, image->timestamp);
    json_key(w, "preferred_base");
    json_hex(w, image->preferred_base);
    json_key(w, "size_of_image");
    json_hex(w, image->size_of_image);
    json_key(w, "entry_rva");
    json_hex(w, image->entry_rva);
    format_entry(entry, sizeof entry, image);
    json_key(w, "entry_symbol");
    json_string_or_null(w, entry);
    json_key(w, "section_alignment");
    json_hex(w, image->section_alignment);
    json_key(w, "file_alignment");
    json_hex(w, image->file_alignment);
}

static void json_sections(json_writer *w, const sim_image *image)
{
    char prot[4];

    json_key(w, "sections");
    json_array_begin(w);
    for (size_t i = 0; i < image->nsections; i++) {
        const sim_section *s = &image->sections[i];

        format_prot(prot, s->prot);
        json_object_begin(w);
        json_key(w, "name");
        json_string(w, s->name);
        json_key(w, "rva");
        json_hex(w, s->rva);
        json_key(w, "vsize");
        json_hex(w, s->vsize);
        json_key(w, "raw_size");
        json_hex(w, s->raw_size);
        json_key(w, "prot");
        json_string(w, prot);
        json_key(w, "discardable");
        json_bool(w, s->discardable);
        json_object_end(w);
    }
    json_array_end(w);
}

/* Imports grouped by DLL: [{"dll": …, "functions": [{…}]}]. */
static void json_imports(json_writer *w, const sim_image *image)
{
    json_key(w, "imports");
    json_array_begin(w);
    for (size_t i = 0; i < image->nimports; i++) {
        if (dll_seen_before(image, i))
            continue;
        json_object_begin(w);
        json_key(w, "dll");
        json_string(w, image->imports[i].dll);
        json_key(w, "functions");
        json_array_begin(w);
        for (size_t k = i; k < image->nimports; k++) {
            const sim_import *imp = &image->imports[k];

            if (strcasecmp(imp->dll, image->imports[i].dll) != 0)
                continue;
            json_object_begin(w);
            json_key(w, "name");
            json_string_or_null(w, imp->name);
            json_key(w, "ordinal");
            json_u64(w, imp->ordinal);
            json_key(w, "by_ordinal");
            json_bool(w, imp->by_ordinal);
            json_key(w, "missing");
            json_bool(w, import_missing(imp));
            json_object_end(w);
        }
        json_array_end(w);
        json_object_end(w);
    }
    json_array_end(w);
    json_key(w, "missing_imports");
    json_u64(w, count_missing(image));
}

static void json_exports(json_writer *w, const sim_image *image)
{
    json_key(w, "exports");
    json_array_begin(w);
    for (size_t i = 0; i < image->nexports; i++) {
        const sim_export *e = &image->exports[i];

        json_object_begin(w);
        json_key(w, "name");
        json_string_or_null(w, e->name);
        json_key(w, "ordinal");
        json_u64(w, e->ordinal);
        json_key(w, "rva");
        json_hex(w, e->rva);
        json_object_end(w);
    }
    json_array_end(w);
}

static void print_json(const sim_image *image)
{
    json_writer w;

    json_init(&w, stdout);
    json_object_begin(&w);
    json_headers(&w, image);
    json_sections(&w, image);
    json_imports(&w, image);
    json_exports(&w, image);
    json_key(&w, "functions");
    json_u64(&w, image->nfunctions);
    json_key(&w, "symbols");
    json_u64(&w, image->nsymbols);
    json_object_end(&w);
    /* A failed write shows in stdout's error flag, which main() checks. */
    (void)json_finish(&w);
}

/* ---- the command -------------------------------------------------------- */

int fleet_cmd_inspect(int argc, char **argv)
{
    static const struct option options[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    sim_image *image = NULL;
    char err[256] = "";
    bool json = false;
    int opt, rc;

    opterr = 0;
    optind = 0; /* glibc: start over, as if getopt had never run */
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 'j':
            json = true;
            break;
        case 'h':
            printf("usage: %s\n\n"
                   "Show IMAGE's headers, sections, imports (marking those fleetsim\n"
                   "does not implement as missing), exports and unwind data.\n",
                   USAGE);
            return FLEET_EXIT_OK;
        default:
            return fleet_bad_option(USAGE, argv, opt);
        }
    }
    if (optind >= argc)
        return fleet_usage_error(USAGE, "no image given");
    if (optind + 1 < argc)
        return fleet_usage_error(USAGE, "one image at a time (\"%s\" is extra)",
                                 argv[optind + 1]);

    rc = sim_image_open(argv[optind], &image, err, sizeof err);
    if (rc != 0)
        return fleet_image_error(argv[optind], rc, err);
    if (json)
        print_json(image);
    else
        print_text(image);
    sim_image_destroy(image);
    return FLEET_EXIT_OK;
}
