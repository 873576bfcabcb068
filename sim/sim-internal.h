/*
 * sim-internal.h — what the files of sim/ share and nothing outside sim/
 * may use.  Names here carry a double underscore (sim__…) so a reader sees
 * at once that they are not API.
 *
 * The pieces:
 *   - the guest address map (fixed regions every engine maps once);
 *   - sim_endpoint: the state of the run in progress on an engine, which
 *     the kernel API layer (kapi_*.c) and the pool (pool.c) work on;
 *   - the kernel API table (SIM_KAPI_MAP), one entry per ntoskrnl export.
 */
#ifndef FLEETSIM_SIM_INTERNAL_H
#define FLEETSIM_SIM_INTERNAL_H

#include <stdarg.h>
#include <capstone/capstone.h>
#include <unicorn/unicorn.h>

#include "sim.h"

/* ---- the guest address map --------------------------------------------- */

/*
 * Fixed regions, the same on every engine and profile.  Images and the pool
 * move per endpoint (the profile's ranges and the endpoint's seed).
 */
#define SIM__KUSD_BASE 0xFFFFF78000000000ull  /* KUSER_SHARED_DATA, read-only */
#define SIM__NT_BASE 0xFFFFF80640000000ull    /* "nt": one stub per export */
#define SIM__NT_STUB_SIZE 16u
#define SIM__NT_STUBS 4096u
#define SIM__NT_SIZE ((uint64_t)SIM__NT_STUB_SIZE * SIM__NT_STUBS)
#define SIM__NTDATA_BASE 0xFFFFF80640400000ull /* nt's data: KPCR, threads */
#define SIM__NTDATA_SIZE 0x10000ull
#define SIM__STACK_GUARD 0xFFFFB00000000000ull /* one unmapped guard page */
#define SIM__STACK_BASE (SIM__STACK_GUARD + 0x1000ull)
#define SIM__STACK_SIZE 0x6000ull              /* 24 KiB, as Windows x64 */
#define SIM__STACK_TOP (SIM__STACK_BASE + SIM__STACK_SIZE)
/*
 * The pool: a window mapped once per profile, in which each run's arena
 * slides (64 KiB steps) so pool addresses differ per endpoint.  The window
 * bounds an engine's memory: every slide a run touches stays resident, so a
 * 64 MiB window cost 320 MiB per engine across five profiles' windows.
 */
#define SIM__POOL_WINDOW 0x1000000ull          /* 16 MiB mapped per profile */
#define SIM__POOL_ARENA 0x800000ull            /* 8 MiB used per run */
/*
 * Where stale pool words point (sim/pool.c): 0xFFFF84xx'00000yyy, xx from 1
 * to 255 -- the first page of each of 255 4 GiB strides.  fleetsim maps
 * nothing there (sim/profile.c refuses layouts that would), so a driver
 * that follows one faults alike on every engine, whichever profiles' pool
 * windows the engine mapped for earlier endpoints.
 */
#define SIM__STALE_BASE 0xFFFF840000000000ull
#define SIM__STALE_STRIDES 255u

/* Does [lo, lo + size) hold a page that stale pool words point into? */
static inline bool sim__holds_stale_page(uint64_t lo, uint64_t size)
{
    for (uint64_t xx = 1; xx <= SIM__STALE_STRIDES; xx++) {
        uint64_t page = SIM__STALE_BASE | xx << 32;
        if (page >= lo ? page - lo < size : lo - page < 0x1000)
            return true;
    }
    return false;
}

/* Offsets inside SIM__NTDATA_BASE. */
#define SIM__KPCR_OFFSET 0x0000ull            /* GS base */
#define SIM__KTHREAD_OFFSET 0x2000ull         /* the current thread */
#define SIM__EPROCESS_OFFSET 0x3000ull        /* the System process */
#define SIM__NTVARS_OFFSET 0x4000ull          /* exported variables */

/* Stubs that are not exports: where guest calls return to the host. */
enum {
    SIM__STUB_RETURN = 0,      /* a guest function called by the host returns here */
    SIM__STUB_FIRST_API = 16   /* stub i >= 16: the kernel API table */
};

/* A mapped guest region. */
typedef struct sim_region {
    uint64_t base, size;
    uint32_t prot;             /* SIM_PROT_* */
    uint8_t *host;             /* the memory behind it (uc_mem_map_ptr) */
    char name[64];             /* "sensor.sys .text", "pool", "stack", … */
} sim_region;

/* ---- the pool ---------------------------------------------------------- */

typedef struct sim_pool_chunk {
    uint64_t addr;             /* guest address of the caller's block */
    uint32_t size;             /* bytes the caller asked for */
    uint32_t blocks;           /* 16-byte units the chunk spans, header included */
    uint32_t tag;
    uint8_t header[16];        /* what the allocator wrote before addr */
    bool free;
} sim_pool_chunk;

#define SIM__POOL_MAX_CHUNKS 8192

typedef struct sim_pool {
    uint64_t base, size;       /* the arena this run */
    uint64_t top;              /* bump pointer: [base, top) handed out once */
    uint8_t *host;             /* host memory of the arena */
    uint64_t key;              /* segment heap: header encoding key */
    sim_pool_chunk chunks[SIM__POOL_MAX_CHUNKS];
    size_t nchunks;
    uint64_t bytes_live;
} sim_pool;

/* ---- the run in progress ----------------------------------------------- */

#define SIM__MAX_HANDLES 256
#define SIM__MAX_NOTIFY 16

typedef enum { SIM__HANDLE_FREE, SIM__HANDLE_FILE, SIM__HANDLE_DIR } sim_handle_kind;

typedef struct sim_handle {
    sim_handle_kind kind;
    size_t file;               /* index into run->files (FILE) */
    char dir[260];             /* directory path, lower case (DIR) */
    uint64_t position;         /* FILE: byte offset; DIR: entries returned */
} sim_handle;

typedef struct sim_endpoint sim_endpoint;

struct sim_endpoint {
    uc_engine *uc;
    csh cs;                    /* the engine's capstone handle */
    struct sim_engine *engine;
    const sim_image *image;    /* the driver of this run */
    const sim_run *run;
    const sim_profile *profile;
    sim_outcome *out;

    uint64_t rng;              /* xorshift state from (seed) */
    uint8_t irql;              /* KIRQL, mirrored from the guest's CR8 writes */
    bool stopped;              /* an outcome other than "running" is set */
    uint64_t block_rip;        /* RIP when stopped by the budget (Unicorn's is stale) */
    uint64_t image_base;
    const sim_region *regions; /* the engine's map, sorted by base */
    size_t nregions;

    sim_pool pool;
    sim_handle handles[SIM__MAX_HANDLES];

    uint64_t now_ms;           /* virtual ms since boot of the current call */
    uint64_t insns_at_call;    /* instruction count when the call began */
    uint64_t budget;           /* instructions allowed per guest call */
    uint64_t call_insns;       /* instructions in the current guest call, and */
    uint64_t api_bytes;        /* bytes kernel routines touched for it, mod 8 */

    /* What the driver registered. */
    uint64_t driver_object;    /* guest address of its DRIVER_OBJECT */
    uint64_t registry_path;    /* guest address of its UNICODE_STRING */
    uint64_t process_notify[SIM__MAX_NOTIFY];
    bool process_notify_ex[SIM__MAX_NOTIFY];
    size_t nprocess_notify;
    uint64_t filter_registration; /* FLT_REGISTRATION passed to FltRegisterFilter */
    bool filter_started;

    unsigned api;              /* table index of the API being served */
};

/* The endpoint's PRNG: xorshift64*, seeded from the run seed. */
uint64_t sim__random(sim_endpoint *ep);

/* ---- services for the kernel API layer -------------------------------- */

/* Argument i (0-based) of the API being served, MS x64 ABI. */
uint64_t sim__arg(sim_endpoint *ep, unsigned i);
/* Set the API's return value (RAX). */
void sim__ret(sim_endpoint *ep, uint64_t value);

/*
 * Guest memory as kernel code in nt touches it: checked against the region
 * map and its protections.  An access that would fault on a real machine
 * raises the bugcheck it would raise there (RIP at nt!<API>) and returns -1;
 * the API must then return at once.
 */
int sim__read(sim_endpoint *ep, uint64_t addr, void *dst, size_t n);
int sim__write(sim_endpoint *ep, uint64_t addr, const void *src, size_t n);
/* A NUL-terminated 8-bit / 16-bit string of at most max-1 units. */
int sim__read_cstr(sim_endpoint *ep, uint64_t addr, char *dst, size_t max);
int sim__read_wstr(sim_endpoint *ep, uint64_t addr, uint16_t *dst, size_t max);
/* A UNICODE_STRING at addr, converted to UTF-8 (lossy past ASCII). */
int sim__read_unicode_string(sim_endpoint *ep, uint64_t addr, char *dst,
                             size_t max);
/* Host pointer for [addr, addr+n) if one region holds it with `prot`. */
uint8_t *sim__ptr(sim_endpoint *ep, uint64_t addr, size_t n, uint32_t prot);
/* The region holding addr, or NULL. */
const sim_region *sim__region_at(const sim_endpoint *ep, uint64_t addr);

/* Append to the endpoint's DbgPrint log (truncating, never failing). */
void sim__log(sim_endpoint *ep, const char *text, size_t n);
/* printf-style formatting with arguments from the guest (DbgPrint). */
int sim__format(sim_endpoint *ep, char *dst, size_t max, uint64_t fmt,
                unsigned first_arg);

/*
 * End the run with a bugcheck raised by kernel code (KeBugCheckEx, the pool).
 * `detail` says why in one line.  Captures registers and the call stack as
 * they are at the API call.
 */
void sim__bugcheck(sim_endpoint *ep, uint32_t code, uint64_t p1, uint64_t p2,
                   uint64_t p3, uint64_t p4, const char *detail);
/*
 * End the run: code touched addr in a way that faults — the guest itself
 * (from the engine's memory hook) or nt code on the guest's behalf (RIP in
 * a stub).  Picks the bugcheck from DESIGN.md's fault table.
 */
void sim__fault(sim_endpoint *ep, uint64_t addr, sim_access access);
/* End the run: the CPU raised exception `vector` (#DE 0, #UD 6, #GP 13, …). */
void sim__exception(sim_endpoint *ep, uint32_t vector);
/* End the run: the guest call ran past its instruction budget. */
void sim__stuck(sim_endpoint *ep);
/*
 * Charge n bytes a kernel routine touches for the driver to the call's
 * instruction budget (sim__read and sim__write do; a routine working on
 * host pointers from sim__ptr calls it itself).  False, with the run stopped
 * as stuck, once the budget is spent.
 */
bool sim__charge(sim_endpoint *ep, uint64_t n);
/*
 * Fill the crash record (registers, fault, disassembly, stack) from the
 * engine's current state.  With RIP in an nt stub, the fault is placed at
 * the driver's call into nt.
 */
void sim__capture(sim_endpoint *ep, uint64_t addr, sim_access access);
/*
 * Call a guest function (MS x64 ABI) from the host: a driver's entry point
 * or a callback it registered.  True when it returned (*ret = RAX); false
 * when the run ended inside it.
 */
bool sim__call_guest(sim_endpoint *ep, uint64_t fn, const uint64_t *args,
                     unsigned nargs, const char *phase, uint64_t *ret);
/* Write a UNICODE_STRING at `us` whose buffer (text, NUL-terminated) is at buf. */
void sim__put_unicode_string(sim_endpoint *ep, uint64_t us, uint64_t buf,
                             const char *text);
/* Lay out the System process's EPROCESS with the profile's offsets. */
void sim__init_system_process(sim_endpoint *ep);
/* Deliver one OS event to what the driver registered for it (events.c). */
void sim__deliver_event(sim_endpoint *ep, const sim_event *ev);

/* Rewrite the clock fields of KUSER_SHARED_DATA (engine.c). */
void sim__update_shared_data(sim_endpoint *ep);

/* The virtual clock: FILETIME now, and the tick count (15.625 ms ticks). */
uint64_t sim__system_time(const sim_endpoint *ep);
uint64_t sim__tick_count(const sim_endpoint *ep);
uint64_t sim__interrupt_time(const sim_endpoint *ep);

/* ---- the pool ---------------------------------------------------------- */

void sim__pool_reset(sim_endpoint *ep, uint64_t base, uint8_t *host, uint64_t size);
/* 0 and *addr, or 0 with *addr = 0 when the pool is exhausted. */
uint64_t sim__pool_alloc(sim_endpoint *ep, uint64_t size, uint32_t tag, bool zero);
/* Checks the chunk and its neighbour like the OS does; may bugcheck. */
void sim__pool_free(sim_endpoint *ep, uint64_t addr, uint32_t tag, bool check_tag);

/* ---- the kernel API table ---------------------------------------------- */

typedef void (*sim__api_fn)(sim_endpoint *ep);

/*
 * Every ntoskrnl export fleetsim implements.  One line each: the export's
 * name.  The function serving it is sim__api_<name>.
 */
#define SIM_KAPI_MAP(XX)                                                     \
    SIM_KAPI_POOL(XX)                                                       \
    SIM_KAPI_RTL(XX)                                                        \
    SIM_KAPI_KE(XX)                                                         \
    SIM_KAPI_IO(XX)                                                         \
    SIM_KAPI_FLT(XX)

/* FLTMGR.SYS exports (the filter manager), served from events.c. */
#define SIM_KAPI_FLT(XX)                                                     \
    XX(FltRegisterFilter)                                                   \
    XX(FltStartFiltering)                                                   \
    XX(FltUnregisterFilter)

#define SIM_KAPI_POOL(XX)                                                    \
    XX(ExAllocatePoolWithTag)                                               \
    XX(ExAllocatePool)                                                      \
    XX(ExAllocatePool2)                                                     \
    XX(ExAllocatePoolZero)                                                  \
    XX(ExFreePoolWithTag)                                                   \
    XX(ExFreePool)

#define SIM_KAPI_RTL(XX)                                                     \
    XX(memcpy)                                                              \
    XX(memmove)                                                             \
    XX(memset)                                                              \
    XX(memcmp)                                                              \
    XX(memchr)                                                              \
    XX(strlen)                                                              \
    XX(strnlen)                                                             \
    XX(strcmp)                                                              \
    XX(strncmp)                                                             \
    XX(strcpy)                                                              \
    XX(strncpy)                                                             \
    XX(strchr)                                                              \
    XX(wcslen)                                                              \
    XX(wcsnlen)                                                             \
    XX(wcscmp)                                                              \
    XX(_stricmp)                                                            \
    XX(_wcsicmp)                                                            \
    XX(RtlCopyMemory)                                                       \
    XX(RtlMoveMemory)                                                       \
    XX(RtlFillMemory)                                                       \
    XX(RtlZeroMemory)                                                       \
    XX(RtlCompareMemory)                                                    \
    XX(RtlInitUnicodeString)                                                \
    XX(RtlInitAnsiString)                                                   \
    XX(RtlInitString)                                                       \
    XX(RtlEqualUnicodeString)                                               \
    XX(RtlCompareUnicodeString)                                             \
    XX(RtlCopyUnicodeString)                                                \
    XX(RtlAppendUnicodeToString)                                            \
    XX(RtlAppendUnicodeStringToString)                                      \
    XX(RtlUnicodeStringToAnsiString)                                        \
    XX(RtlAnsiStringToUnicodeString)                                        \
    XX(RtlFreeUnicodeString)                                                \
    XX(RtlFreeAnsiString)                                                   \
    XX(RtlGetVersion)                                                       \
    XX(DbgPrint)                                                            \
    XX(DbgPrintEx)                                                          \
    XX(vDbgPrintEx)                                                         \
    XX(_vsnprintf)                                                          \
    XX(_snprintf)                                                           \
    XX(_snwprintf)                                                          \
    XX(sprintf)

#define SIM_KAPI_KE(XX)                                                      \
    XX(KeBugCheckEx)                                                        \
    XX(KeBugCheck)                                                          \
    XX(KeQuerySystemTime)                                                   \
    XX(KeQuerySystemTimePrecise)                                            \
    XX(KeQueryTickCount)                                                    \
    XX(KeQueryInterruptTime)                                                \
    XX(KeQueryTimeIncrement)                                                \
    XX(KeGetCurrentIrql)                                                    \
    XX(KeRaiseIrql)                                                         \
    XX(KfRaiseIrql)                                                         \
    XX(KeLowerIrql)                                                         \
    XX(KfLowerIrql)                                                         \
    XX(KeRaiseIrqlToDpcLevel)                                               \
    XX(KeInitializeSpinLock)                                                \
    XX(KeAcquireSpinLockRaiseToDpc)                                         \
    XX(KeReleaseSpinLock)                                                   \
    XX(KeAcquireSpinLockAtDpcLevel)                                         \
    XX(KeReleaseSpinLockFromDpcLevel)                                       \
    XX(KfAcquireSpinLock)                                                   \
    XX(KfReleaseSpinLock)                                                   \
    XX(KeGetCurrentThread)                                                  \
    XX(KeGetCurrentProcessorNumberEx)                                       \
    XX(KeDelayExecutionThread)                                              \
    XX(KeStallExecutionProcessor)                                           \
    XX(MmGetSystemRoutineAddress)                                           \
    XX(MmIsAddressValid)                                                    \
    XX(PsGetCurrentProcessId)                                               \
    XX(PsGetCurrentThreadId)                                                \
    XX(PsGetVersion)                                                        \
    XX(PsSetCreateProcessNotifyRoutine)                                     \
    XX(PsSetCreateProcessNotifyRoutineEx)

#define SIM_KAPI_IO(XX)                                                      \
    XX(ZwCreateFile)                                                        \
    XX(ZwOpenFile)                                                          \
    XX(ZwReadFile)                                                          \
    XX(ZwQueryInformationFile)                                              \
    XX(ZwQueryDirectoryFile)                                                \
    XX(ZwClose)                                                             \
    XX(IoCreateDevice)                                                      \
    XX(IoDeleteDevice)                                                      \
    XX(IoCompleteRequest)                                                   \
    XX(IofCompleteRequest)

#define XX(name) void sim__api_##name(sim_endpoint *ep);
SIM_KAPI_MAP(XX)
#undef XX

/* Guest address of the stub that serves table entry `index`. */
static inline uint64_t sim__kapi_address(unsigned index)
{
    return SIM__NT_BASE + (uint64_t)(SIM__STUB_FIRST_API + index) * SIM__NT_STUB_SIZE;
}

/* Table index of an implemented export, or -1. */
int sim__kapi_find(const char *name);
sim__api_fn sim__kapi_fn(unsigned index);
const char *sim__kapi_name_at(unsigned index);

/* ---- pieces of the engine other files use ------------------------------ */

/*
 * Disassembly (disasm.c), with the engine's capstone handle.  A window of
 * instructions ending at `rip`: decoded forward from the start of the .pdata
 * function holding rip (or from the nearest point before rip whose decoding
 * lands on it), the last `max` kept.  Returns the number written.
 */
int sim__disasm_window(csh cs, const sim_endpoint *ep, const sim_image *image,
                       uint64_t image_base, uint64_t rip, sim_insn *insns,
                       int max);
/* One instruction at addr in Intel syntax; its length, or 0 when invalid. */
size_t sim__disasm_one(csh cs, const sim_endpoint *ep, uint64_t addr,
                       char *text, size_t max);
/* Instructions in a translated block of `size` bytes at addr. */
/* The instruction of the block at `block` (`size` bytes) that touched
 * `addr` at a memory fault; false when that cannot be told for sure. */
bool sim__locate_fault(csh cs, const sim_endpoint *ep, uint64_t block, uint32_t size,
                       uint64_t addr, uint64_t *rip);
uint32_t sim__count_insns(csh cs, const sim_endpoint *ep, uint64_t addr,
                          uint32_t size);

/*
 * Unwind the guest stack from regs using the .pdata/.xdata of the image
 * mapped at image_base (frames in other modules are unwound as leaves).
 * Reads guest memory through ep without faulting.  Returns frames written.
 */
int sim__unwind(const sim_endpoint *ep, const sim_image *image,
                uint64_t image_base, const sim_regs *regs, sim_frame *frames,
                int max);
/* Name a code address: module, function and offset (module+offset when no
 * symbol; "" module when nowhere). */
void sim__symbolize(const sim_endpoint *ep, const sim_image *image,
                    uint64_t image_base, uint64_t rip, char *module,
                    size_t module_max, char *function, size_t function_max,
                    uint64_t *offset);

#endif
