/*
 * engine-internal.h — what engine.c (the engine: memory map, slots, hooks,
 * lifetime) and endpoint.c (one endpoint run on it) share.  Nothing outside
 * these two files includes it.
 */
#ifndef FLEETSIM_ENGINE_INTERNAL_H
#define FLEETSIM_ENGINE_INTERNAL_H

#include "sim-internal.h"

#define PAGE 0x1000ull
#define SIM__MISSING_NAME 192 /* "dll!name" of an import fleetsim lacks */
#define MAX_SLOTS 128
#define MAX_POOL_WINDOWS 8
#define BLOCK_CACHE_BITS 16
#define BLOCK_CACHE (1u << BLOCK_CACHE_BITS) /* entries: instruction counts of blocks */
#define MAX_FIXED_REGIONS 8
/*
 * Runs of pages with one protection in a mapped image: a section changes
 * the protection at most at its first page and after its last, the headers
 * once more.
 */
#define MAX_SLOT_RUNS (2 * SIM_IMAGE_MAX_SECTIONS + 2)
#define MAX_REGIONS (MAX_FIXED_REGIONS + MAX_SLOTS * MAX_SLOT_RUNS + MAX_POOL_WINDOWS)

/* 2024-07-19 00:00:00 UTC as a FILETIME: the default boot time. */
#define DEFAULT_BOOT_TIME 133658208000000000ull

/* One image mapped at one base, kept translated across runs. */
typedef struct sim_slot {
    bool used;
    const sim_image *image;      /* identity only: never dereferenced after load,
                                    the caller may destroy the image */
    uint8_t sha256[32];
    uint64_t base, size;         /* size: size_of_image rounded up to pages */
    uint8_t *mem;                /* host memory mapped into the guest */
    uint8_t *pristine;           /* the image as loaded: restores writable pages */
    uint8_t *page_prot;          /* per page: SIM_PROT_* (0: not mapped) */
    sim_region *regions;         /* its mapped runs, named at load */
    size_t nregions;
    uint64_t *cr8_sites;         /* `mov cr8` instructions, hooked; ncr8 of each: */
    uc_hook *cr8_hooks;          /* on the engine */
    uc_hook *tracer_cr8_hooks;   /* on the tracer, once it exists */
    size_t ncr8;
    char (*missing)[SIM__MISSING_NAME]; /* its imports fleetsim lacks: stub */
    size_t nmissing;                    /* first_missing + k names missing[k] */
    bool tracer_hooked;
    uint64_t last_use;
} sim_slot;

typedef struct sim_pool_window {
    uint64_t base, size;
    uint8_t *host;
    uint64_t dirty_lo, dirty_hi; /* offsets a run handed out: zeroed before the next */
    bool unclean;                /* that run ended in a fault, hang or gap */
} sim_pool_window;

typedef struct block_entry {
    uint64_t addr;
    uint32_t size, insns;
} block_entry;

struct sim_engine {
    uc_engine *uc;
    csh cs;
    sim_endpoint ep;

    uint8_t *nt;                 /* stubs: SIM__NT_SIZE */
    uint8_t *ntdata;             /* KPCR, thread, process, exception records */
    uint8_t *kusd;               /* KUSER_SHARED_DATA */
    uint8_t *stack;

    sim_slot slots[MAX_SLOTS];
    sim_pool_window pools[MAX_POOL_WINDOWS];
    size_t npools;
    uint64_t use_clock;

    sim_region fixed[MAX_FIXED_REGIONS];
    size_t nfixed;
    sim_region regions[MAX_REGIONS];
    size_t nregions;

    /* Imports fleetsim lacks: stub first_missing + k is the k-th of the
     * current run's slot (sim_slot.missing). */
    size_t first_missing;
    const sim_slot *current;     /* the slot the run in progress uses */

    uc_context *clean;           /* CPU state of a fresh engine */
    uc_context *tracer_clean;
    uc_engine *tracer;           /* replays faulting runs with exact RIP */
    bool replay;                 /* this run needs a replay on the tracer */
    bool pending;                /* a memory fault noted by the hook */
    uint64_t pending_addr;
    sim_access pending_access;
    uint64_t last_block;         /* the block hook's latest block */
    uint32_t last_block_size;

    block_entry blocks[BLOCK_CACHE];
};

/* engine.c, for endpoint.c. */
uint64_t sim__splitmix64(uint64_t *state);
void sim__set_err(char *err, size_t errlen, const char *msg);
uint64_t sim__reg(uc_engine *uc, int id);

void sim__set_reg(uc_engine *uc, int id, uint64_t v);
extern const int sim__gpr_ids[16];
/* The slot holding `image` at KASLR slot k of the profile, mapped on demand. */
sim_slot *sim__slot_get(sim_engine *e, const sim_image *image, const sim_profile *pr,
                        uint32_t k, char *err, size_t errlen, int *rc);
/* The profile's pool window, mapped on first use. */
sim_pool_window *sim__pool_window(sim_engine *e, const sim_profile *pr, char *err,
                                  size_t errlen, int *rc);
/* KPCR, thread and process in nt data; KUSER_SHARED_DATA for the profile. */
void sim__init_ntdata(sim_engine *e);
void sim__init_shared_data(sim_engine *e, const sim_profile *pr);
/* Open the tracing engine (exact RIP) on first need. */
int sim__tracer_open(sim_engine *e);

#endif
