/*
 * sim.h — one emulated Windows x64 endpoint.
 *
 * This is the only header the rest of fleetsim includes from sim/.  It
 * describes four things:
 *
 *   - sim_image:   a parsed PE32+ kernel-mode driver (host side, immutable
 *                  once parsed, shareable between threads);
 *   - sim_profile: an OS version as the emulated kernel presents it;
 *   - sim_engine:  a Unicorn engine owned by one worker thread and reused
 *                  for every endpoint that worker runs (DESIGN.md, decision 1);
 *   - sim_run / sim_outcome: one endpoint run (a request) and what the
 *                  guest did (ok, bugcheck, hang, unsupported-api).
 *
 * Errors are values: functions return 0 or a negative SIM_E* code and, where
 * they take one, fill a caller-supplied message buffer.  Nothing in sim/
 * prints.  A guest fault is *not* an error: sim_engine_run() returns 0 and
 * describes the fault in the outcome.
 */
#ifndef FLEETSIM_SIM_H
#define FLEETSIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ------------------------------------------------------------ */

#define SIM_ERRNO_MAP(XX)                                                    \
    XX(EINVAL, -1, "invalid argument")                                      \
    XX(ENOMEM, -2, "out of memory")                                         \
    XX(EIO, -3, "input/output error")                                       \
    XX(EFORMAT, -4, "malformed input")                                      \
    XX(EENGINE, -5, "emulator failure")                                     \
    XX(ENOENT, -6, "not found")                                             \
    XX(ERANGE, -7, "value out of range")

enum {
    SIM_OK = 0,
#define XX(name, value, msg) SIM_##name = (value),
    SIM_ERRNO_MAP(XX)
#undef XX
};

/* Message for a SIM_E* code ("unknown error" for anything else). */
const char *sim_strerror(int err);

/* ---- allocation -------------------------------------------------------- */

/*
 * Every allocation in fleetsim goes through these, so a test can make the
 * n-th allocation fail and check that nothing leaks or corrupts.
 */
void *sim_malloc(size_t size);
void *sim_calloc(size_t count, size_t size);
void *sim_realloc(void *ptr, size_t size);
char *sim_strdup(const char *s);
void sim_free(void *ptr);
/* Fail the n-th allocation from now on (1 = the next one); 0 disables. */
void sim_alloc_fail_after(uint64_t n);
/* Allocations made since the process started (for fault-injection loops). */
uint64_t sim_alloc_count(void);

/* ---- outcomes and bugchecks -------------------------------------------- */

#define SIM_OUTCOME_MAP(XX)                                                  \
    XX(OK, "ok")                                                            \
    XX(BUGCHECK, "bugcheck")                                                \
    XX(HANG, "hang")                                                        \
    XX(UNSUPPORTED_API, "unsupported-api")

typedef enum {
#define XX(name, str) SIM_OUTCOME_##name,
    SIM_OUTCOME_MAP(XX)
#undef XX
    SIM_OUTCOME_COUNT
} sim_outcome_kind;

const char *sim_outcome_name(sim_outcome_kind kind);

/* The bugchecks fleetsim raises, with the names Windows gives them. */
#define SIM_BUGCHECK_MAP(XX)                                                 \
    XX(0x09, IRQL_NOT_GREATER_OR_EQUAL)                                     \
    XX(0x0A, IRQL_NOT_LESS_OR_EQUAL)                                        \
    XX(0x19, BAD_POOL_HEADER)                                               \
    XX(0x1E, KMODE_EXCEPTION_NOT_HANDLED)                                   \
    XX(0x4A, IRQL_GT_ZERO_AT_SYSTEM_SERVICE)                                \
    XX(0x50, PAGE_FAULT_IN_NONPAGED_AREA)                                   \
    XX(0x7E, SYSTEM_THREAD_EXCEPTION_NOT_HANDLED)                           \
    XX(0x7F, UNEXPECTED_KERNEL_MODE_TRAP)                                   \
    XX(0xBE, ATTEMPTED_WRITE_TO_READONLY_MEMORY)                            \
    XX(0xC2, BAD_POOL_CALLER)                                               \
    XX(0xC4, DRIVER_VERIFIER_DETECTED_VIOLATION)                            \
    XX(0xC5, DRIVER_CORRUPTED_EXPOOL)                                       \
    XX(0xD1, DRIVER_IRQL_NOT_LESS_OR_EQUAL)                                 \
    XX(0xE2, MANUALLY_INITIATED_CRASH)                                      \
    XX(0xFC, ATTEMPTED_EXECUTE_OF_NOEXECUTE_MEMORY)                         \
    XX(0x133, DPC_WATCHDOG_VIOLATION)                                       \
    XX(0x139, KERNEL_SECURITY_CHECK_FAILURE)                                \
    XX(0x13A, KERNEL_MODE_HEAP_CORRUPTION)

enum {
#define XX(code, name) SIM_BUGCHECK_##name = (code),
    SIM_BUGCHECK_MAP(XX)
#undef XX
};

/* Name of a bugcheck code, or NULL when fleetsim does not know it. */
const char *sim_bugcheck_name(uint32_t code);

/* NTSTATUS values fleetsim itself uses. */
#define SIM_STATUS_SUCCESS 0x00000000u
#define SIM_STATUS_ACCESS_VIOLATION 0xC0000005u
#define SIM_STATUS_ILLEGAL_INSTRUCTION 0xC000001Du
#define SIM_STATUS_INTEGER_DIVIDE_BY_ZERO 0xC0000094u
#define SIM_STATUS_PRIVILEGED_INSTRUCTION 0xC0000096u
#define SIM_STATUS_BREAKPOINT 0x80000003u
#define SIM_STATUS_ASSERTION_FAILURE 0xC0000420u
#define SIM_STATUS_ENTRYPOINT_NOT_FOUND 0xC0000139u
#define SIM_STATUS_PROCEDURE_NOT_FOUND 0xC000007Au
#define SIM_STATUS_DRIVER_ENTRYPOINT_NOT_FOUND 0xC0000263u

/* ---- images ------------------------------------------------------------ */

enum { SIM_PROT_R = 1, SIM_PROT_W = 2, SIM_PROT_X = 4 };

typedef struct sim_section {
    char name[9];            /* NUL-terminated, at most 8 characters */
    uint32_t rva;            /* VirtualAddress */
    uint32_t vsize;          /* VirtualSize (or SizeOfRawData when 0) */
    uint32_t raw_offset;     /* PointerToRawData */
    uint32_t raw_size;       /* bytes of file data copied (<= vsize) */
    uint32_t characteristics;
    uint32_t prot;           /* SIM_PROT_* derived from characteristics */
    bool discardable;        /* IMAGE_SCN_MEM_DISCARDABLE: not mapped */
} sim_section;

typedef struct sim_import {
    char dll[64];            /* as written in the image, e.g. "ntoskrnl.exe" */
    char name[128];          /* empty when imported by ordinal */
    uint16_t ordinal;        /* ordinal, or the hint when imported by name */
    bool by_ordinal;
    uint32_t iat_rva;        /* where the loader writes the resolved address */
} sim_import;

typedef struct sim_export {
    char name[128];          /* empty for ordinal-only exports */
    uint16_t ordinal;        /* biased ordinal */
    uint32_t rva;
} sim_export;

typedef struct sim_symbol {
    uint32_t rva;
    char *name;              /* owned by the image */
} sim_symbol;

/* A .pdata RUNTIME_FUNCTION entry. */
typedef struct sim_runtime_function {
    uint32_t begin, end, unwind;
} sim_runtime_function;

/* Sections an image may have: the loader refuses more. */
#define SIM_IMAGE_MAX_SECTIONS 96u

typedef struct sim_image {
    char name[64];           /* file name, e.g. "sensor-7.11.sys" */
    char module[64];         /* module name for symbols, e.g. "sensor" */
    uint8_t *file;           /* the whole file, owned */
    size_t file_size;
    uint8_t sha256[32];      /* of the file */

    uint16_t machine, subsystem, characteristics, dll_characteristics;
    uint32_t timestamp, checksum;
    uint64_t preferred_base;
    uint32_t size_of_image, size_of_headers, entry_rva;
    uint32_t section_alignment, file_alignment;

    sim_section *sections;
    size_t nsections;
    sim_import *imports;
    size_t nimports;
    sim_export *exports;
    size_t nexports;
    sim_symbol *symbols;     /* functions, sorted by rva, unique rvas */
    size_t nsymbols;
    sim_runtime_function *functions; /* sorted by begin, non-overlapping */
    size_t nfunctions;
    uint32_t reloc_rva, reloc_size;  /* validated base relocation directory */
} sim_image;

/*
 * Parse a PE32+ driver.  Every offset, size and count is checked against the
 * file and the image; a malformed image is refused with SIM_EFORMAT and a
 * message saying what is wrong.  `name` is the file name shown in reports.
 */
int sim_image_parse(const void *data, size_t size, const char *name,
                    sim_image **out, char *err, size_t errlen);
/*
 * Read a whole file (at most `max` bytes; 0: no limit) into a buffer the
 * caller frees with sim_free, NUL-terminated past *size.  0, or SIM_EIO with
 * errno saying why, SIM_ENOMEM, or SIM_ERANGE when it is larger than max.
 */
int sim_read_file(const char *path, size_t max, uint8_t **data, size_t *size);

/*
 * The names of the files in `dir` that start with `prefix` and end with
 * `suffix` (not hidden ones), sorted, at most `max` (SIM_ERANGE past it);
 * free them with sim_list_free.  SIM_EIO when the folder cannot be read.
 */
int sim_list_dir(const char *dir, const char *prefix, const char *suffix, size_t max,
                 char ***names, size_t *count, char *err, size_t errlen);
void sim_list_free(char **names, size_t count);

/* SHA-256 of a buffer: the identity of images and content in a run's store. */
void sim_sha256(const void *data, size_t size, uint8_t digest[32]);

/* Read a file and parse it (SIM_EIO when it cannot be read). */
int sim_image_open(const char *path, sim_image **out, char *err, size_t errlen);
void sim_image_destroy(sim_image *image); /* accepts NULL */

/*
 * Lay the image out as the loader maps it at `base`: headers, sections,
 * zero fill, base relocations applied.  `mem` has size_of_image bytes.
 * Imports are left for the caller to bind.
 */
void sim_image_build(const sim_image *image, uint64_t base, uint8_t *mem);

/* The function symbol at or before `rva`, or NULL. */
const sim_symbol *sim_image_symbol_at(const sim_image *image, uint32_t rva);
/* The .pdata entry whose [begin, end) holds `rva`, or NULL (a leaf). */
const sim_runtime_function *sim_image_function_at(const sim_image *image,
                                                  uint32_t rva);
/* The section holding `rva`, or NULL. */
const sim_section *sim_image_section_at(const sim_image *image, uint32_t rva);

/* ---- OS events --------------------------------------------------------- */

#define SIM_EVENT_MAP(XX)                                                    \
    XX(PROCESS_CREATE, "process-create")                                    \
    XX(PROCESS_EXIT, "process-exit")                                        \
    XX(PIPE_CREATE, "pipe-create")                                          \
    XX(FILE_WRITE, "file-write")

typedef enum {
#define XX(name, str) SIM_EVENT_##name,
    SIM_EVENT_MAP(XX)
#undef XX
    SIM_EVENT_COUNT
} sim_event_kind;

const char *sim_event_name(sim_event_kind kind);

/* An OS event delivered to whatever the driver registered for it. */
typedef struct sim_event {
    sim_event_kind kind;
    uint64_t at_ms;          /* virtual milliseconds after boot */
    uint32_t pid, parent_pid;
    const char *name;        /* image path, pipe name or file path */
} sim_event;

/* ---- profiles ---------------------------------------------------------- */

typedef enum {
    SIM_POOL_LEGACY,         /* pool headers; corruption → 0x19 / 0xC2 */
    SIM_POOL_SEGMENT_HEAP    /* segment heap; corruption → 0x13A */
} sim_pool_kind;

#define SIM_PROFILE_MAX_ABSENT 64
#define SIM_PROFILE_MAX_OFFSETS 32

typedef struct sim_offset {
    char name[64];           /* "EPROCESS.ImageFileName" */
    uint32_t value;
} sim_offset;

typedef struct sim_profile {
    char name[64];           /* "win10-22h2-2024-07" */
    char display[96];        /* "Windows 10 22H2 (July 2024)" */
    uint32_t major, minor, build, ubr;
    uint16_t sp_major, sp_minor;
    uint16_t product_type;   /* 1 workstation, 2 domain controller, 3 server */
    char csd[64];            /* szCSDVersion, e.g. "Service Pack 1" */

    sim_pool_kind pool;
    bool pool_zeroed;        /* allocations come back zeroed */
    uint64_t image_lo, image_hi;  /* where drivers load (KASLR range) */
    uint64_t pool_lo, pool_hi;    /* where the nonpaged pool lives */
    uint32_t kaslr_slots;    /* distinct image bases an engine keeps hot */

    /* Exports of ntoskrnl.exe that this build does not have. */
    const char *absent[SIM_PROFILE_MAX_ABSENT];
    size_t nabsent;

    /*
     * Structure offsets as this build really has them, by name:
     * "EPROCESS.UniqueProcessId", "EPROCESS.ActiveProcessLinks",
     * "EPROCESS.Token", "EPROCESS.ImageFileName",
     * "EPROCESS.SeAuditProcessCreationInfo", "EPROCESS.Peb",
     * "EPROCESS.InheritedFromUniqueProcessId".  The emulated kernel lays out
     * the EPROCESS of every process it shows a driver with these.
     */
    sim_offset offsets[SIM_PROFILE_MAX_OFFSETS];
    size_t noffsets;

    /* The OS event stream after boot: each endpoint's own stream is drawn
     * from it (sim_profile_events), times jittered by up to jitter_ms. */
    const sim_event *events;
    size_t nevents;
    uint32_t event_jitter_ms;
    uint32_t boot_ms;        /* power-on until boot-start drivers load */

    char source[256];        /* the file it was loaded from; "" built in */
} sim_profile;

/* A Windows 10 22H2 profile built into fleetsim, for images run alone. */
const sim_profile *sim_profile_default(void);
/* Whether `name` is an ntoskrnl export this profile has (implemented or not). */
bool sim_profile_has_export(const sim_profile *profile, const char *name);
/* The offset named `name` (see sim_profile.offsets); false when absent. */
bool sim_profile_offset(const sim_profile *profile, const char *name,
                        uint32_t *value);

/*
 * Load a profile from a YAML file; errors are "path:line:column: what".
 * A loaded profile owns its strings and events; sim_profile_destroy frees it.
 */
int sim_profile_load(const char *path, sim_profile **out, char *err,
                     size_t errlen);
/* Every *.yaml profile in dir, sorted by name; duplicate names refused. */
int sim_profile_load_dir(const char *dir, sim_profile ***out, size_t *count,
                         char *err, size_t errlen);
void sim_profile_destroy(sim_profile *profile);       /* accepts NULL */
void sim_profile_list_destroy(sim_profile **list, size_t count);

/*
 * One endpoint's OS event stream: the profile's events with times jittered
 * by the seed (never before boot, order kept by time then by index), written
 * to out (at most max).  Returns the number of events.
 */
size_t sim_profile_events(const sim_profile *profile, uint64_t seed,
                          sim_event *out, size_t max);

/* ---- one endpoint run -------------------------------------------------- */

/* A file in the endpoint's virtual file system. */
typedef struct sim_file {
    const char *path;        /* NT path, e.g. "\\SystemRoot\\System32\\drivers\\x\\a.sys" */
    const uint8_t *data;
    size_t size;
    uint64_t at_ms;          /* exists from this virtual time on (0: at boot);
                                a later file is announced by a file-write event */
} sim_file;

typedef struct sim_run {
    const sim_image *image;
    const sim_profile *profile;   /* NULL: sim_profile_default() */
    uint64_t seed;                /* the endpoint's own seed */
    const sim_file *files;        /* the virtual file system */
    size_t nfiles;
    const sim_event *events;      /* in time order */
    size_t nevents;
    uint64_t boot_time;           /* FILETIME (100 ns since 1601) at boot */
    uint64_t budget;              /* instructions per guest call; 0: default */
    const char *service;          /* service name for the registry path;
                                     NULL: the image's module name */
} sim_run;

#define SIM_DEFAULT_BUDGET 50000000u
#define SIM_MAX_FRAMES 32
#define SIM_MAX_DISASM 12
#define SIM_LOG_SIZE 8192

typedef enum {
    SIM_ACCESS_NONE,
    SIM_ACCESS_READ,
    SIM_ACCESS_WRITE,
    SIM_ACCESS_EXECUTE
} sim_access;

const char *sim_access_name(sim_access access);

/* Where an address falls, for fault records and bucket keys. */
typedef enum {
    SIM_ADDR_NULL,           /* below 64 KiB */
    SIM_ADDR_USER,           /* canonical user half */
    SIM_ADDR_NONCANONICAL,
    SIM_ADDR_KERNEL          /* canonical kernel half */
} sim_addr_class;

sim_addr_class sim_addr_classify(uint64_t address);
const char *sim_addr_class_name(sim_addr_class cls);

typedef struct sim_frame {
    uint64_t rip, rsp;
    char module[64];         /* "" when RIP is in no known module */
    char function[64];       /* "unknown_function" when there is no symbol */
    uint64_t offset;         /* from function start (or module base) */
} sim_frame;

typedef struct sim_insn {
    uint64_t address;
    char text[96];           /* Intel syntax: "mov r9d, dword ptr [r8]" */
} sim_insn;

typedef struct sim_regs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags;
} sim_regs;

typedef struct sim_fault {
    uint64_t rip;
    char module[64], function[64];
    uint64_t offset;
    char instruction[96];    /* the faulting instruction, Intel syntax */
    uint64_t address;        /* the address touched (0 when none) */
    sim_access access;
    sim_addr_class address_class;
    char region[64];         /* memory region holding address, or "" */
    uint8_t irql;
} sim_fault;

/*
 * What one endpoint run did.  Fixed size: the hot path fills a record the
 * caller preallocated and allocates nothing.
 */
typedef struct sim_outcome {
    sim_outcome_kind kind;
    bool status_valid;       /* DriverEntry returned */
    uint32_t status;         /* its NTSTATUS */
    uint64_t image_base, pool_base;

    uint32_t bugcheck;       /* for SIM_OUTCOME_BUGCHECK */
    uint64_t params[4];
    bool has_fault;          /* fault, regs, disasm and stack are filled */
    sim_fault fault;
    sim_regs regs;
    sim_insn disasm[SIM_MAX_DISASM]; /* a window ending at the fault */
    int ndisasm;
    sim_frame stack[SIM_MAX_FRAMES];
    int nframes;

    char api[192];           /* unsupported-api: "ntoskrnl.exe!Name" */
    char phase[48];          /* what ran: "DriverEntry", "process-notify", … */
    char detail[192];        /* one human line on why, when there is one */

    char log[SIM_LOG_SIZE];  /* DbgPrint output, NUL-terminated */
    size_t loglen;
    bool log_truncated;
    uint64_t instructions;
    uint32_t events_delivered;
} sim_outcome;

/* ---- engines ----------------------------------------------------------- */

typedef struct sim_engine sim_engine;

/* A new engine; slow (milliseconds): make one per worker, not per run. */
int sim_engine_create(sim_engine **out, char *err, size_t errlen);
void sim_engine_destroy(sim_engine *engine); /* accepts NULL */

/*
 * Run one endpoint: place the image at the base the seed draws, restore the
 * state a previous run could have changed, call DriverEntry, deliver OS
 * events to what the driver registered, and describe what happened.
 * Returns 0 whenever the guest ran (whatever it did), negative when fleetsim
 * could not run it (bad arguments, out of memory, emulator failure).
 * The engine keeps the image mapped (and translated) for later runs but
 * never reads the sim_image again: the caller may destroy it after the run.
 */
int sim_engine_run(sim_engine *engine, const sim_run *run, sim_outcome *out,
                   char *err, size_t errlen);

/* ---- the kernel API table ---------------------------------------------- */

/* Whether fleetsim implements ntoskrnl export `name`. */
bool sim_kapi_implemented(const char *dll, const char *name);
/* Number of implemented exports and the i-th one's name (for listings). */
size_t sim_kapi_count(void);
const char *sim_kapi_name(size_t i);

#endif
