/*
 * cmd_emulate.c — `fleetsim emulate`: one driver image on one emulated
 * endpoint, and what it did.
 *
 * This is the researcher's view of a single endpoint (DESIGN.md, "The
 * job"): the image, its content as virtual files, a profile and a seed go
 * into one sim_run; the outcome comes back as a crash record shaped like
 * WinDbg's `!analyze -v` (bugcheck, faulting access, instructions up to the
 * fault, registers, stack) followed by the driver's DbgPrint log, or as one
 * JSON object with the same facts for scripts.
 *
 * Exit status follows the outcome: 0 ok, 1 bugcheck or hang, 3 when the
 * driver called an API fleetsim lacks (a gap in fleetsim, not a verdict on
 * the driver), 2 when the command line, the image or a content file is bad.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fleet.h"
#include "json.h"
#include "sim.h"

#define USAGE                                                                \
    "fleetsim emulate IMAGE [--profile NAME] [--profiles DIR] [--no-events] " \
    "[--content [VFSPATH=]PATH]... " \
    "[--seed N] [--budget N] [--json]"

/* Where a content file lands when its VFS path is not given. */
#define CONTENT_DIR "\\SystemRoot\\System32\\drivers\\"

enum { CONTINUE = -1 }; /* parse_args: go on and emulate */

typedef struct emulate_args {
    const char *image_path;
    const char *profile_name;  /* NULL: the default profile */
    const char *profiles_dir;  /* --profiles; NULL: fleet_profile_dir's default */
    bool no_events;            /* --no-events: not the profile's OS events */
    const char **content;      /* --content arguments, as given */
    size_t ncontent;
    uint64_t seed, budget;
    bool json;
} emulate_args;

/* One --content file, read into memory. */
typedef struct content_file {
    const char *host_path;
    char *vfs_path;            /* owned */
    uint8_t *data;             /* owned */
    size_t size;
} content_file;

static void print_usage(void)
{
    printf("usage: %s\n\n"
           "Run IMAGE's DriverEntry on one emulated endpoint and show what happened.\n\n"
           "  --profile NAME        OS profile from the profiles folder (default: the\n"
           "                        built-in %s, without OS events)\n"
           "  --profiles DIR        the profiles folder (default: $FLEETSIM_PROFILES,\n"
           "                        else %s)\n"
           "  --no-events           do not deliver the profile's OS events\n"
           "  --content PATH        put the file PATH on the endpoint's disk as\n"
           "                        " CONTENT_DIR "<module>\\<file name of PATH>\n"
           "  --content VFSPATH=PATH\n"
           "                        put it at the NT path VFSPATH instead (VFSPATH\n"
           "                        starts with a backslash); repeat for more files\n"
           "  --seed N              the endpoint's seed: image base, pool contents (default 1)\n"
           "  --budget N            instructions per guest call before it counts as a\n"
           "                        hang (default %u)\n"
           "  --json                one JSON object on stdout instead of the report\n",
           USAGE, sim_profile_default()->name, fleet_profile_dir(NULL), SIM_DEFAULT_BUDGET);
}

static int parse_args(int argc, char **argv, emulate_args *a)
{
    static const struct option options[] = {
        {"profile", required_argument, NULL, 'p'},
        {"profiles", required_argument, NULL, 'P'},
        {"no-events", no_argument, NULL, 'E'},
        {"content", required_argument, NULL, 'c'},
        {"seed", required_argument, NULL, 's'},
        {"budget", required_argument, NULL, 'b'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    opterr = 0;
    optind = 0; /* glibc: start over, as if getopt had never run */
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 'p':
            a->profile_name = optarg;
            break;
        case 'P':
            a->profiles_dir = optarg;
            break;
        case 'E':
            a->no_events = true;
            break;
        case 'c':
            a->content[a->ncontent++] = optarg;
            break;
        case 's':
            if (!fleet_parse_u64(optarg, &a->seed))
                return fleet_usage_error(USAGE, "--seed: \"%s\" is not a number", optarg);
            break;
        case 'b':
            if (!fleet_parse_u64(optarg, &a->budget))
                return fleet_usage_error(USAGE, "--budget: \"%s\" is not a number", optarg);
            break;
        case 'j':
            a->json = true;
            break;
        case 'h':
            print_usage();
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
    a->image_path = argv[optind];
    return CONTINUE;
}

/*
 * The profile the run uses.  Without --profile it is the built-in default
 * (an image run alone needs no files); with one, the whole profiles folder
 * is loaded — a malformed file there is an error even when it is not the
 * one asked for, as it would be in a fleet run — and NAME looked up in it.
 * *list owns what was loaded (the caller destroys it after the run).
 */
static int profile_lookup(const emulate_args *a, sim_profile ***list, size_t *count,
                          const sim_profile **out)
{
    const char *dir;
    char err[512] = "";
    char known[384] = "";
    size_t len = 0;
    int rc;

    if (a->profile_name == NULL) {
        *out = sim_profile_default();
        return CONTINUE;
    }
    dir = fleet_profile_dir(a->profiles_dir);
    rc = sim_profile_load_dir(dir, list, count, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "fleetsim: %s\n", err[0] ? err : sim_strerror(rc));
        return FLEET_EXIT_USAGE;
    }
    for (size_t i = 0; i < *count; i++) {
        if (strcmp((*list)[i]->name, a->profile_name) == 0) {
            *out = (*list)[i];
            return CONTINUE;
        }
        int w = snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "",
                         (*list)[i]->name);
        if (w > 0 && (size_t)w < sizeof known - len)
            len += (size_t)w;
    }
    return fleet_usage_error(USAGE, "unknown profile \"%s\" in %s; known: %s",
                             a->profile_name, dir, *count ? known : "(none)");
}

/* Read all of `path` (any size, pipes too); 0 or an errno value. */
static int read_whole_file(const char *path, uint8_t **data, size_t *size)
{
    int rc = sim_read_file(path, 0, data, size);
    return rc == 0 ? 0 : rc == SIM_ENOMEM ? ENOMEM : errno ? errno : EIO;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/*
 * Resolve one --content argument to its VFS path and read it.  A leading
 * backslash marks the VFSPATH=PATH form: NT paths start with one, host
 * paths practically never do, and host paths may well contain '='.
 */
static int load_content(const char *arg, const sim_image *image, content_file *c)
{
    const char *eq = strchr(arg, '=');
    int rc;

    if (arg[0] == '\\' && eq != NULL) {
        size_t n = (size_t)(eq - arg);

        c->host_path = eq + 1;
        c->vfs_path = sim_malloc(n + 1);
        if (c->vfs_path != NULL) {
            memcpy(c->vfs_path, arg, n);
            c->vfs_path[n] = '\0';
        }
    } else {
        const char *file = base_name(arg);
        size_t n = strlen(CONTENT_DIR) + strlen(image->module) + 1 + strlen(file) + 1;

        c->host_path = arg;
        if (file[0] == '\0')
            return fleet_usage_error(USAGE, "--content %s: not a file name", arg);
        c->vfs_path = sim_malloc(n);
        if (c->vfs_path != NULL)
            snprintf(c->vfs_path, n, "%s%s\\%s", CONTENT_DIR, image->module, file);
    }
    if (c->vfs_path == NULL) {
        fprintf(stderr, "fleetsim: out of memory\n");
        return FLEET_EXIT_USAGE;
    }
    if (c->host_path[0] == '\0' || strlen(c->vfs_path) < 2)
        return fleet_usage_error(USAGE, "--content %s: expected VFSPATH=PATH", arg);
    rc = read_whole_file(c->host_path, &c->data, &c->size);
    if (rc != 0) {
        fprintf(stderr, "fleetsim: %s: %s\n", c->host_path, strerror(rc));
        return FLEET_EXIT_USAGE;
    }
    return CONTINUE;
}

static int load_contents(const emulate_args *a, const sim_image *image,
                         content_file *contents, sim_file *files)
{
    for (size_t i = 0; i < a->ncontent; i++) {
        int status = load_content(a->content[i], image, &contents[i]);

        if (status != CONTINUE)
            return status;
        for (size_t j = 0; j < i; j++)
            /* NT paths are case-insensitive; so is this check. */
            if (strcasecmp(contents[j].vfs_path, contents[i].vfs_path) == 0)
                return fleet_usage_error(USAGE, "two --content files at %s",
                                         contents[i].vfs_path);
        files[i].path = contents[i].vfs_path;
        files[i].data = contents[i].data;
        files[i].size = contents[i].size;
    }
    return CONTINUE;
}

static int outcome_status(sim_outcome_kind kind)
{
    switch (kind) {
    case SIM_OUTCOME_OK:
        return FLEET_EXIT_OK;
    case SIM_OUTCOME_BUGCHECK:
    case SIM_OUTCOME_HANG:
        return FLEET_EXIT_FAULT;
    case SIM_OUTCOME_UNSUPPORTED_API:
    case SIM_OUTCOME_COUNT:
        break;
    }
    return FLEET_EXIT_UNFAITHFUL;
}

/* fleetsim's own failure to run (not the guest's): 3 when Unicorn failed us,
 * 2 for what we were given or lacked (bad input, memory). */
static int error_status(int err)
{
    return err == SIM_EENGINE ? FLEET_EXIT_UNFAITHFUL : FLEET_EXIT_USAGE;
}

/* ---- the text report ---------------------------------------------------- */

/* "module!function+0xoff", or the bare address outside any module. */
static void format_site(char *buf, size_t len, uint64_t rip, const char *module,
                        const char *function, uint64_t offset)
{
    if (module[0] == '\0')
        snprintf(buf, len, "0x%016" PRIx64, rip);
    else
        snprintf(buf, len, "%s!%s+0x%" PRIx64, module, function, offset);
}

static const char *irql_name(unsigned irql)
{
    static const char *const names[] = {"PASSIVE_LEVEL", "APC_LEVEL", "DISPATCH_LEVEL"};
    if (irql < 3)
        return names[irql];
    return irql == 15 ? "HIGH_LEVEL" : "DIRQL";
}

/* Guest text on the terminal: control bytes shown, never interpreted. */
static void print_guest_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c < 0x20 && c != '\t') || c == 0x7F)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

static void print_fault(const sim_outcome *o)
{
    const sim_fault *f = &o->fault;
    char site[160];

    format_site(site, sizeof site, f->rip, f->module, f->function, f->offset);
    /* A hang or a missing API is where the guest was stopped, not a fault. */
    if (o->kind == SIM_OUTCOME_HANG || o->kind == SIM_OUTCOME_UNSUPPORTED_API)
        printf("STOPPED at %s\n", site);
    else if (f->access != SIM_ACCESS_NONE)
        printf("FAULT %s of %016" PRIx64 " (%s, in %s) at %s\n",
               sim_access_name(f->access), f->address,
               sim_addr_class_name(f->address_class),
               f->region[0] ? f->region : "no region", site);
    else
        printf("FAULT at %s\n", site);
    printf("IRQL %u (%s)\n\n", f->irql, irql_name(f->irql));
}

static void print_disasm(const sim_outcome *o)
{
    int n = o->ndisasm < 0 ? 0 : o->ndisasm > SIM_MAX_DISASM ? SIM_MAX_DISASM : o->ndisasm;

    if (n == 0 && o->fault.instruction[0] != '\0') {
        printf("=> %016" PRIx64 "  %s\n\n", o->fault.rip, o->fault.instruction);
        return;
    }
    for (int i = 0; i < n; i++)
        printf("%s %016" PRIx64 "  %s\n", o->disasm[i].address == o->fault.rip ? "=>" : "  ",
               o->disasm[i].address, o->disasm[i].text);
    if (n > 0)
        putchar('\n');
}

/* WinDbg's `r` layout, three to a line. */
static void print_registers(const sim_regs *r)
{
    const struct {
        const char *name;
        uint64_t value;
    } regs[] = {
        {"rax", r->rax}, {"rbx", r->rbx}, {"rcx", r->rcx},
        {"rdx", r->rdx}, {"rsi", r->rsi}, {"rdi", r->rdi},
        {"rip", r->rip}, {"rsp", r->rsp}, {"rbp", r->rbp},
        {"r8", r->r8},   {"r9", r->r9},   {"r10", r->r10},
        {"r11", r->r11}, {"r12", r->r12}, {"r13", r->r13},
        {"r14", r->r14}, {"r15", r->r15}, {"efl", r->rflags},
    };

    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++) {
        int width = strcmp(regs[i].name, "efl") == 0 ? 8 : 16;

        printf("%3s=%0*" PRIx64 "%c", regs[i].name, width, regs[i].value,
               i % 3 == 2 ? '\n' : ' ');
    }
    putchar('\n');
}

static void print_stack(const sim_outcome *o)
{
    int n = o->nframes < 0 ? 0 : o->nframes > SIM_MAX_FRAMES ? SIM_MAX_FRAMES : o->nframes;
    char site[160];

    if (n == 0)
        return;
    printf(" # %-16s %-16s %s\n", "Child-SP", "Rip", "Call Site");
    for (int i = 0; i < n; i++) {
        const sim_frame *fr = &o->stack[i];

        format_site(site, sizeof site, fr->rip, fr->module, fr->function, fr->offset);
        printf("%02d %016" PRIx64 " %016" PRIx64 " %s\n", i, fr->rsp, fr->rip, site);
    }
    putchar('\n');
}

static void print_outcome(const sim_outcome *o)
{
    const char *name;

    printf("outcome: %s", sim_outcome_name(o->kind));
    if (o->kind == SIM_OUTCOME_OK && o->status_valid)
        printf(" (DriverEntry returned 0x%08" PRIX32 ")", o->status);
    printf("\n\n");

    switch (o->kind) {
    case SIM_OUTCOME_BUGCHECK:
        name = sim_bugcheck_name(o->bugcheck);
        printf("BUGCHECK 0x%" PRIX32 " %s (%" PRIx64 ", %" PRIx64 ", %" PRIx64 ", %" PRIx64 ")\n",
               o->bugcheck, name ? name : "(unknown to fleetsim)", o->params[0],
               o->params[1], o->params[2], o->params[3]);
        break;
    case SIM_OUTCOME_HANG:
        printf("HANG: the guest never returned (the machine stops responding)\n");
        break;
    case SIM_OUTCOME_UNSUPPORTED_API:
        printf("UNSUPPORTED API %s\n"
               "The driver called an API fleetsim does not implement.  This is a gap in\n"
               "fleetsim, not a crash of the driver: the run stopped at the call, so it\n"
               "says nothing about what the driver does after it.\n\n",
               o->api[0] ? o->api : "(unnamed)");
        break;
    case SIM_OUTCOME_OK:
    case SIM_OUTCOME_COUNT:
        break;
    }
    if (o->has_fault) {
        print_fault(o);
        print_disasm(o);
        print_registers(&o->regs);
        print_stack(o);
    } else if (o->kind == SIM_OUTCOME_BUGCHECK || o->kind == SIM_OUTCOME_HANG) {
        putchar('\n');
    }
}

static void print_log(const sim_outcome *o)
{
    size_t len = o->loglen < SIM_LOG_SIZE ? o->loglen : SIM_LOG_SIZE - 1;
    const char *p = o->log, *end = o->log + len;

    if (len == 0) {
        printf("DbgPrint log: (empty)\n\n");
        return;
    }
    printf("DbgPrint log:\n");
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;

        printf("  ");
        print_guest_text(p, (size_t)(stop - p));
        putchar('\n');
        p = nl ? nl + 1 : end;
    }
    if (o->log_truncated)
        printf("  (log truncated at %u bytes)\n", (unsigned)SIM_LOG_SIZE);
    putchar('\n');
}

static void print_text(const sim_image *image, const sim_profile *profile,
                       const sim_run *run, const content_file *contents,
                       const sim_outcome *o)
{
    printf("%s  profile %s  seed %" PRIu64 "  image base %016" PRIx64 "\n", image->name,
           profile->name, run->seed, o->image_base);
    for (size_t i = 0; i < run->nfiles; i++)
        printf("  content %s (%zu bytes, from %s)\n", contents[i].vfs_path,
               contents[i].size, contents[i].host_path);
    putchar('\n');
    print_outcome(o);
    print_log(o);
    printf("phase         %s\n", o->phase[0] ? o->phase : "-");
    if (o->detail[0])
        printf("detail        %s\n", o->detail);
    printf("instructions  %" PRIu64 "\n", o->instructions);
    printf("events        %" PRIu32 " delivered\n", o->events_delivered);
}

/* ---- the JSON report ---------------------------------------------------- */

static void json_fault(json_writer *w, const sim_fault *f)
{
    json_object_begin(w);
    json_key(w, "rip");
    json_hex(w, f->rip);
    json_key(w, "module");
    json_string_or_null(w, f->module);
    json_key(w, "function");
    json_string_or_null(w, f->function);
    json_key(w, "offset");
    json_hex(w, f->offset);
    json_key(w, "instruction");
    json_string(w, f->instruction);
    json_key(w, "address");
    json_hex(w, f->address);
    json_key(w, "access");
    json_string(w, sim_access_name(f->access));
    json_key(w, "address_class");
    json_string(w, sim_addr_class_name(f->address_class));
    json_key(w, "region");
    json_string_or_null(w, f->region);
    json_key(w, "irql");
    json_u64(w, f->irql);
    json_object_end(w);
}

static void json_registers(json_writer *w, const sim_regs *r)
{
    const struct {
        const char *name;
        uint64_t value;
    } regs[] = {
        {"rax", r->rax}, {"rbx", r->rbx}, {"rcx", r->rcx}, {"rdx", r->rdx},
        {"rsi", r->rsi}, {"rdi", r->rdi}, {"rbp", r->rbp}, {"rsp", r->rsp},
        {"r8", r->r8},   {"r9", r->r9},   {"r10", r->r10}, {"r11", r->r11},
        {"r12", r->r12}, {"r13", r->r13}, {"r14", r->r14}, {"r15", r->r15},
        {"rip", r->rip}, {"rflags", r->rflags},
    };

    json_object_begin(w);
    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++) {
        json_key(w, regs[i].name);
        json_hex(w, regs[i].value);
    }
    json_object_end(w);
}

static void json_bugcheck(json_writer *w, const sim_outcome *o)
{
    if (o->kind != SIM_OUTCOME_BUGCHECK) {
        json_null(w);
        return;
    }
    json_object_begin(w);
    json_key(w, "code");
    json_hex(w, o->bugcheck);
    json_key(w, "name");
    json_string_or_null(w, sim_bugcheck_name(o->bugcheck));
    json_key(w, "params");
    json_array_begin(w);
    for (int i = 0; i < 4; i++)
        json_hex(w, o->params[i]);
    json_array_end(w);
    json_object_end(w);
}

static void json_disasm_and_stack(json_writer *w, const sim_outcome *o)
{
    int ninsn = o->ndisasm < 0 ? 0 : o->ndisasm > SIM_MAX_DISASM ? SIM_MAX_DISASM : o->ndisasm;
    int nframes = o->nframes < 0 ? 0 : o->nframes > SIM_MAX_FRAMES ? SIM_MAX_FRAMES : o->nframes;

    json_key(w, "disasm");
    json_array_begin(w);
    for (int i = 0; i < ninsn; i++) {
        json_object_begin(w);
        json_key(w, "address");
        json_hex(w, o->disasm[i].address);
        json_key(w, "text");
        json_string(w, o->disasm[i].text);
        json_key(w, "fault");
        json_bool(w, o->has_fault && o->disasm[i].address == o->fault.rip);
        json_object_end(w);
    }
    json_array_end(w);

    json_key(w, "stack");
    json_array_begin(w);
    for (int i = 0; i < nframes; i++) {
        const sim_frame *fr = &o->stack[i];

        json_object_begin(w);
        json_key(w, "rsp");
        json_hex(w, fr->rsp);
        json_key(w, "rip");
        json_hex(w, fr->rip);
        json_key(w, "module");
        json_string_or_null(w, fr->module);
        json_key(w, "function");
        json_string_or_null(w, fr->function);
        json_key(w, "offset");
        json_hex(w, fr->offset);
        json_object_end(w);
    }
    json_array_end(w);
}

/* The log as lines; a final newline does not make an empty last line. */
static void json_log(json_writer *w, const sim_outcome *o)
{
    size_t len = o->loglen < SIM_LOG_SIZE ? o->loglen : SIM_LOG_SIZE - 1;
    const char *p = o->log, *end = o->log + len;

    json_array_begin(w);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;

        json_string_n(w, p, (size_t)(stop - p));
        p = nl ? nl + 1 : end;
    }
    json_array_end(w);
}

static int print_json(const sim_image *image, const sim_profile *profile,
                      const sim_run *run, const content_file *contents,
                      const sim_outcome *o)
{
    json_writer w;

    json_init(&w, stdout);
    json_object_begin(&w);
    json_key(&w, "image");
    json_string(&w, image->name);
    json_key(&w, "sha256");
    json_hex_bytes(&w, image->sha256, sizeof image->sha256);
    json_key(&w, "profile");
    json_string(&w, profile->name);
    json_key(&w, "seed");
    json_u64(&w, run->seed);
    json_key(&w, "content");
    json_array_begin(&w);
    for (size_t i = 0; i < run->nfiles; i++) {
        json_object_begin(&w);
        json_key(&w, "path");
        json_string(&w, contents[i].vfs_path);
        json_key(&w, "host_path");
        json_string(&w, contents[i].host_path);
        json_key(&w, "size");
        json_u64(&w, contents[i].size);
        json_object_end(&w);
    }
    json_array_end(&w);
    json_key(&w, "outcome");
    json_string(&w, sim_outcome_name(o->kind));
    json_key(&w, "status");
    if (o->status_valid)
        json_hex(&w, o->status);
    else
        json_null(&w);
    json_key(&w, "image_base");
    json_hex(&w, o->image_base);
    json_key(&w, "pool_base");
    json_hex(&w, o->pool_base);
    json_key(&w, "bugcheck");
    json_bugcheck(&w, o);
    json_key(&w, "fault");
    if (o->has_fault)
        json_fault(&w, &o->fault);
    else
        json_null(&w);
    json_key(&w, "registers");
    if (o->has_fault)
        json_registers(&w, &o->regs);
    else
        json_null(&w);
    json_disasm_and_stack(&w, o);
    json_key(&w, "api");
    json_string_or_null(&w, o->kind == SIM_OUTCOME_UNSUPPORTED_API ? o->api : NULL);
    json_key(&w, "phase");
    json_string(&w, o->phase);
    json_key(&w, "detail");
    json_string(&w, o->detail);
    json_key(&w, "log");
    json_log(&w, o);
    json_key(&w, "log_truncated");
    json_bool(&w, o->log_truncated);
    json_key(&w, "instructions");
    json_u64(&w, o->instructions);
    json_key(&w, "events_delivered");
    json_u64(&w, o->events_delivered);
    json_object_end(&w);
    return json_finish(&w);
}

/* ---- the command -------------------------------------------------------- */

/* Image loaded and contents read: run and report. */
static int emulate(const emulate_args *a, const sim_image *image,
                   const sim_profile *profile, const sim_file *files,
                   const content_file *contents)
{
    sim_run run = {
        .image = image,
        .profile = profile,
        .seed = a->seed,
        .files = files,
        .nfiles = a->ncontent,
        .budget = a->budget,
    };
    sim_engine *engine = NULL;
    sim_outcome *outcome = sim_calloc(1, sizeof *outcome);
    sim_event *events = NULL;
    char err[256] = "";
    int rc, status;

    /* The profile's boot-time OS events, as this endpoint's seed jitters them. */
    bool profile_events = run.nevents == 0 && !a->no_events && profile->nevents > 0;

    if (profile_events) {
        events = sim_calloc(profile->nevents, sizeof *events);
        if (events != NULL) {
            run.events = events;
            run.nevents = sim_profile_events(profile, a->seed, events, profile->nevents);
        }
    }
    if (outcome == NULL || (profile_events && events == NULL)) {
        fprintf(stderr, "fleetsim: out of memory\n");
        sim_free(outcome);
        sim_free(events);
        return FLEET_EXIT_USAGE;
    }
    rc = sim_engine_create(&engine, err, sizeof err);
    if (rc == 0)
        rc = sim_engine_run(engine, &run, outcome, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "fleetsim: %s: cannot emulate: %s\n", a->image_path,
                err[0] ? err : sim_strerror(rc));
        status = error_status(rc);
    } else {
        /* A failed write shows in stdout's error flag, which main() checks. */
        if (a->json)
            (void)print_json(image, profile, &run, contents, outcome);
        else
            print_text(image, profile, &run, contents, outcome);
        status = outcome_status(outcome->kind);
    }
    sim_engine_destroy(engine);
    sim_free(outcome);
    sim_free(events);
    return status;
}

int fleet_cmd_emulate(int argc, char **argv)
{
    emulate_args a = {.seed = 1};
    const sim_profile *profile = NULL;
    sim_profile **profiles = NULL;
    size_t nprofiles = 0;
    sim_image *image = NULL;
    content_file *contents = NULL;
    sim_file *files = NULL;
    char err[256] = "";
    int rc, status;

    /* At most one --content per argument, so argc bounds the arrays. */
    a.content = sim_calloc((size_t)argc, sizeof *a.content);
    contents = sim_calloc((size_t)argc, sizeof *contents);
    files = sim_calloc((size_t)argc, sizeof *files);
    if (a.content == NULL || contents == NULL || files == NULL) {
        fprintf(stderr, "fleetsim: out of memory\n");
        status = FLEET_EXIT_USAGE;
        goto out;
    }
    status = parse_args(argc, argv, &a);
    if (status != CONTINUE)
        goto out;
    status = profile_lookup(&a, &profiles, &nprofiles, &profile);
    if (status != CONTINUE)
        goto out;
    rc = sim_image_open(a.image_path, &image, err, sizeof err);
    if (rc != 0) {
        status = fleet_image_error(a.image_path, rc, err);
        goto out;
    }
    status = load_contents(&a, image, contents, files);
    if (status != CONTINUE)
        goto out;
    status = emulate(&a, image, profile, files, contents);
out:
    for (size_t i = 0; contents != NULL && i < a.ncontent; i++) {
        sim_free(contents[i].vfs_path);
        sim_free(contents[i].data);
    }
    sim_free(contents);
    sim_free(files);
    sim_free(a.content);
    sim_image_destroy(image);
    sim_profile_list_destroy(profiles, nprofiles);
    return status;
}
