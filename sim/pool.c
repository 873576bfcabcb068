/*
 * pool.c — the kernel pool: a real allocator in guest memory, and the
 * ExAllocatePool* / ExFreePool* exports on top of it.
 *
 * Drivers corrupt pool in ways a test only catches when the pool behaves
 * like Windows': a header the guest can see and overrun sits before every
 * block, blocks lie next to each other, freeing checks the block's own
 * header and its neighbour's, and memory that is not zeroed holds stale
 * data.  That last part is what made 19 July 2024 a crash rather than a
 * harmless misread: the value past the end of an array was an old kernel
 * pointer, non-NULL and unmapped.
 *
 * The arena is a bump allocator over [base, base+size): each run starts
 * empty, blocks are handed out in address order and never reused, so the
 * chunk list stays sorted by address and a free finds its chunk by binary
 * search.  Every chunk keeps a host shadow of the header the allocator
 * wrote; a free compares the guest's copy with it.  What the comparison
 * raises depends on the profile's pool:
 *
 *   - SIM_POOL_LEGACY: a Windows x64 POOL_HEADER (PreviousSize, PoolIndex,
 *     BlockSize in 16-byte units, PoolType with 0 meaning free, PoolTag,
 *     ProcessBilled), corruption → BAD_POOL_HEADER (0x19), bad calls →
 *     BAD_POOL_CALLER (0xC2);
 *   - SIM_POOL_SEGMENT_HEAP: a header XOR-encoded with a per-run key, as the
 *     segment heap encodes its own, corruption and bad calls →
 *     KERNEL_MODE_HEAP_CORRUPTION (0x13A).
 *
 * Bugcheck parameters follow Microsoft's bug check reference:
 *   0xC2 p1=0x07  double free: p3 pool header contents, p4 the block freed;
 *   0xC2 p1=0x0A  wrong tag on a protected allocation: p2 address,
 *                 p3 allocator's tag, p4 tag used in the free;
 *   0xC2 p1=0x08  allocation at an invalid IRQL: p2 IRQL, p3 pool type,
 *                 p4 size;  p1=0x09 the same for a free (p4 address);
 *   0xC2 p1=0x40  free of a user-mode address: p2 address, p3 start of
 *                 system address space;
 *   0xC2 p1=0x42  free of an address that was never in any pool: p2 it;
 *   0xC2 p1=0x46  free of an invalid pool address: p2 it;
 *   0xC2 p1=0x9A  a MustSucceed pool type: p2 type, p3 bytes, p4 tag;
 *   0x19 p1=0x20  pool block header size corrupt: p2 the entry that
 *                 should have been found, p3 the next pool entry;
 *   0x13A p1=0x3  a corrupt entry header (p2 the heap, p3 where);
 *   0x13A p1=0x6  corruption consistent with a buffer overrun;
 *   0x13A p1=0x8  a free block passed to an operation for busy blocks;
 *   0x13A p1=0x9  an invalid argument for the operation.
 *
 * The hot path allocates nothing: chunks live in a fixed array in the
 * endpoint (SIM__POOL_MAX_CHUNKS); past it, or past the arena, allocation
 * fails and returns NULL as a full pool does.
 */
#include <string.h>

#include "sim-internal.h"

#define HEADER_SIZE 16u
#define BLOCK 16u
/* Bytes past the newest block that are kept stale, so that a read past the
 * last allocation sees old data deterministically rather than whatever a
 * previous run on this engine left there. */
#define STALE_SLACK 256u

/* The header's PoolType byte for an allocated nonpaged block; 0 is free. */
#define LEGACY_TYPE_INUSE 0x02u
/* Segment heap header: busy flag in the (unencoded) second word. */
#define SEG_BUSY 0x1ull

#define POOL_TAG_NONE 0x656E6F4Eu   /* 'None': ExAllocatePool's tag */
#define PROTECTED_POOL 0x80000000u
#define SYSTEM_RANGE_START 0xFFFF800000000000ull

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void store64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static uint8_t *host_at(sim_pool *pool, uint64_t addr)
{
    return pool->host + (addr - pool->base);
}

void sim__pool_reset(sim_endpoint *ep, uint64_t base, uint8_t *host, uint64_t size)
{
    sim_pool *pool = &ep->pool;

    pool->base = base;
    pool->size = size;
    pool->top = base;
    pool->host = host;
    /* Never zero: a zero key would leave segment heap headers in clear. */
    pool->key = sim__random(ep) | 0x0101010101010101ull;
    pool->nchunks = 0;
    pool->bytes_live = 0;
}

/*
 * One 8-byte word of stale pool memory: what freed kernel objects leave
 * behind.  Seven in eight are pointer-like (0xffff84xx'00000yyy-shaped: the
 * nonpaged pool of a real machine, never mapped here, see SIM__STALE_BASE),
 * one in sixteen a small integer (a count, flags, a length), one in sixteen
 * zero.
 */
static uint64_t stale_word(sim_endpoint *ep)
{
    uint64_t r = sim__random(ep);

    /* Mostly old pool pointers (freed blocks held lists and objects), now
     * and then a small count, rarely zero: what Microsoft's dumps of July
     * 2024 show past the sensor's array was such a pointer, on every
     * machine. */
    switch (r & 15) {
    case 14:
        return (r >> 32) & 0xFF;
    case 15:
        return 0;
    default: {
        /* Never stride 0: profiles put their pool window there. */
        uint64_t xx = (r >> 8) & 0xFF;
        return SIM__STALE_BASE | (xx ? xx : 0x80) << 32 | ((r >> 16) & 0xFF8) |
               ((r >> 40) & 0x4);
    }
    }
}

static void fill_stale(sim_endpoint *ep, uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i + 8 <= n; i += 8)
        store64(p + i, stale_word(ep));
}

/* The header as the allocator writes it. */
static void make_header(sim_endpoint *ep, const sim_pool_chunk *c,
                        uint32_t prev_blocks, uint8_t out[HEADER_SIZE])
{
    if (ep->profile->pool == SIM_POOL_SEGMENT_HEAP) {
        /* Encoded with the key and the block address, so that a stray
         * write almost never leaves a header that still decodes right. */
        uint64_t w0 = (uint64_t)c->size | (uint64_t)c->tag << 32;
        uint64_t w1 = (uint64_t)c->blocks << 8 | (c->free ? 0 : SEG_BUSY);
        store64(out, w0 ^ ep->pool.key ^ c->addr);
        store64(out + 8, w1 ^ (ep->pool.key >> 7 | ep->pool.key << 57) ^ c->addr);
        return;
    }
    /* x64 POOL_HEADER: four 8-bit fields, the tag, ProcessBilled. */
    out[0] = (uint8_t)(prev_blocks > 0xFF ? 0 : prev_blocks);
    out[1] = 0;
    out[2] = (uint8_t)(c->blocks > 0xFF ? 0 : c->blocks);
    out[3] = c->free ? 0 : LEGACY_TYPE_INUSE;
    memcpy(out + 4, &c->tag, 4);
    memset(out + 8, 0, 8);
}

uint64_t sim__pool_alloc(sim_endpoint *ep, uint64_t size, uint32_t tag, bool zero)
{
    sim_pool *pool = &ep->pool;
    uint64_t end = pool->base + pool->size;

    if (pool->nchunks >= SIM__POOL_MAX_CHUNKS || size > pool->size ||
        size > UINT32_MAX)
        return 0;
    /* A zero-byte request still gets a block of its own, as on Windows:
     * distinct from every other allocation, and freeable. */
    uint64_t blocks = 1 + (size == 0 ? 1 : (size + BLOCK - 1) / BLOCK);
    if (blocks * BLOCK > end - pool->top)
        return 0;

    uint64_t hdr = pool->top;
    sim_pool_chunk *c = &pool->chunks[pool->nchunks];
    uint32_t prev = pool->nchunks ? pool->chunks[pool->nchunks - 1].blocks : 0;

    c->addr = hdr + HEADER_SIZE;
    c->size = (uint32_t)size;
    c->blocks = (uint32_t)blocks;
    c->tag = tag;
    c->free = false;
    make_header(ep, c, prev, c->header);
    memcpy(host_at(pool, hdr), c->header, HEADER_SIZE);

    uint8_t *data = host_at(pool, c->addr);
    uint64_t n = (blocks - 1) * BLOCK;
    if (zero || ep->profile->pool_zeroed)
        memset(data, 0, n);
    else
        fill_stale(ep, data, n);

    pool->top += blocks * BLOCK;
    pool->nchunks++;
    pool->bytes_live += size;

    uint64_t slack = end - pool->top < STALE_SLACK ? end - pool->top : STALE_SLACK;
    fill_stale(ep, host_at(pool, pool->top), slack);
    return c->addr;
}

/* The chunk whose block starts at addr, or NULL. */
static sim_pool_chunk *find_chunk(sim_pool *pool, uint64_t addr)
{
    size_t lo = 0, hi = pool->nchunks;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pool->chunks[mid].addr < addr)
            lo = mid + 1;
        else if (pool->chunks[mid].addr > addr)
            hi = mid;
        else
            return &pool->chunks[mid];
    }
    return NULL;
}

static bool header_intact(sim_pool *pool, const sim_pool_chunk *c)
{
    return memcmp(host_at(pool, c->addr - HEADER_SIZE), c->header, HEADER_SIZE) == 0;
}

static void bad_pointer(sim_endpoint *ep, uint64_t addr)
{
    sim_pool *pool = &ep->pool;
    bool in_arena = addr >= pool->base && addr < pool->top;

    if (addr == 0) {
        /* Unlike free(NULL), ExFreePool(NULL) is a bugcheck. */
        sim__bugcheck(ep, SIM_BUGCHECK_BAD_POOL_CALLER, 0x46, 0, 0, 0,
                      "ExFreePool of NULL");
    } else if (addr < SYSTEM_RANGE_START) {
        sim__bugcheck(ep, SIM_BUGCHECK_BAD_POOL_CALLER, 0x40, addr,
                      SYSTEM_RANGE_START, 0,
                      "freeing a user-mode address to the kernel pool");
    } else if (!in_arena) {
        sim__bugcheck(ep, SIM_BUGCHECK_BAD_POOL_CALLER, 0x42, addr, 0, 0,
                      "freeing an address that was never in any pool");
    } else if (ep->profile->pool == SIM_POOL_SEGMENT_HEAP) {
        sim__bugcheck(ep, SIM_BUGCHECK_KERNEL_MODE_HEAP_CORRUPTION, 0x9,
                      pool->base, addr, 0,
                      "freeing a pointer that is not the start of a pool block");
    } else {
        sim__bugcheck(ep, SIM_BUGCHECK_BAD_POOL_CALLER, 0x46, addr, 0, 0,
                      "freeing a pointer that is not the start of a pool block");
    }
}

/* A header (this block's or the next one's) differs from what was written. */
static void corrupt(sim_endpoint *ep, const sim_pool_chunk *c, bool own)
{
    sim_pool *pool = &ep->pool;
    uint64_t hdr = c->addr - HEADER_SIZE;
    uint64_t next_hdr = hdr + (uint64_t)c->blocks * BLOCK;
    const char *detail = own
        ? "pool block header corrupt at free (the block before it was overrun)"
        : "next pool block's header corrupt at free (this block was overrun)";

    if (ep->profile->pool == SIM_POOL_SEGMENT_HEAP) {
        sim__bugcheck(ep, SIM_BUGCHECK_KERNEL_MODE_HEAP_CORRUPTION,
                      own ? 0x3 : 0x6, pool->base, own ? hdr : next_hdr, 0,
                      detail);
        return;
    }
    uint32_t found;
    memcpy(&found, host_at(pool, hdr), 4);
    sim__bugcheck(ep, SIM_BUGCHECK_BAD_POOL_HEADER, 0x20, hdr, next_hdr, found,
                  detail);
}

void sim__pool_free(sim_endpoint *ep, uint64_t addr, uint32_t tag, bool check_tag)
{
    sim_pool *pool = &ep->pool;
    sim_pool_chunk *c = find_chunk(pool, addr);

    if (!c) {
        bad_pointer(ep, addr);
        return;
    }
    if (c->free) {
        if (ep->profile->pool == SIM_POOL_SEGMENT_HEAP)
            sim__bugcheck(ep, SIM_BUGCHECK_KERNEL_MODE_HEAP_CORRUPTION, 0x8,
                          pool->base, addr - HEADER_SIZE, 0,
                          "pool block freed twice");
        else
            sim__bugcheck(ep, SIM_BUGCHECK_BAD_POOL_CALLER, 0x07, 0,
                          load64(host_at(pool, addr - HEADER_SIZE)), addr,
                          "pool block freed twice");
        return;
    }
    /*
     * Windows checks the tag only for allocations made with PROTECTED_POOL
     * in the tag (the high bit); other mismatches pass silently unless
     * Driver Verifier is on, and fleetsim models machines without it.
     */
    if (check_tag && (tag & PROTECTED_POOL) &&
        (c->tag & ~PROTECTED_POOL) != (tag & ~PROTECTED_POOL)) {
        sim__bugcheck(ep, SIM_BUGCHECK_BAD_POOL_CALLER, 0x0A, addr,
                      c->tag & ~PROTECTED_POOL, tag & ~PROTECTED_POOL,
                      "freeing protected pool with the wrong tag");
        return;
    }
    if (!header_intact(pool, c)) {
        corrupt(ep, c, true);
        return;
    }
    size_t i = (size_t)(c - pool->chunks);
    if (i + 1 < pool->nchunks && !header_intact(pool, &pool->chunks[i + 1])) {
        corrupt(ep, c, false);
        return;
    }

    c->free = true;
    uint32_t prev = i ? pool->chunks[i - 1].blocks : 0;
    make_header(ep, c, prev, c->header);
    memcpy(host_at(pool, addr - HEADER_SIZE), c->header, HEADER_SIZE);
    pool->bytes_live -= c->size;
}

/* ---- the exports ------------------------------------------------------- */

/* POOL_TYPE: bit 0 paged; 2 and 6 (with 0x7 mask) are MustSucceed types. */
static bool pool_type_paged(uint64_t type)
{
    return (type & 1) != 0;
}

/* IRQL rules every pool routine enforces: paged pool at most APC_LEVEL,
 * nonpaged at most DISPATCH_LEVEL.  Returns false after bugchecking. */
static bool alloc_irql_ok(sim_endpoint *ep, bool paged, uint64_t type,
                          uint64_t size)
{
    if (ep->irql > (paged ? 1 : 2)) {
        sim__bugcheck(ep, SIM_BUGCHECK_BAD_POOL_CALLER, 0x08, ep->irql, type,
                      size, "pool allocated at too high an IRQL");
        return false;
    }
    return true;
}

static void allocate_typed(sim_endpoint *ep, uint64_t type, uint64_t size,
                           uint32_t tag, bool zero)
{
    uint32_t t = (uint32_t)type;

    if ((t & 7) == 2 || (t & 7) == 6) {
        sim__bugcheck(ep, SIM_BUGCHECK_BAD_POOL_CALLER, 0x9A, t, size, tag,
                      "MustSucceed pool is no longer supported");
        return;
    }
    if (!alloc_irql_ok(ep, pool_type_paged(t), t, size))
        return;
    sim__ret(ep, sim__pool_alloc(ep, size, tag, zero));
}

void sim__api_ExAllocatePoolWithTag(sim_endpoint *ep)
{
    allocate_typed(ep, sim__arg(ep, 0), sim__arg(ep, 1),
                   (uint32_t)sim__arg(ep, 2), false);
}

void sim__api_ExAllocatePool(sim_endpoint *ep)
{
    allocate_typed(ep, sim__arg(ep, 0), sim__arg(ep, 1), POOL_TAG_NONE, false);
}

void sim__api_ExAllocatePoolZero(sim_endpoint *ep)
{
    allocate_typed(ep, sim__arg(ep, 0), sim__arg(ep, 1),
                   (uint32_t)sim__arg(ep, 2), true);
}

/* POOL_FLAGS of ExAllocatePool2. */
#define POOL_FLAG_USE_QUOTA 0x1ull
#define POOL_FLAG_UNINITIALIZED 0x2ull
#define POOL_FLAG_SESSION 0x4ull
#define POOL_FLAG_CACHE_ALIGNED 0x8ull
#define POOL_FLAG_RAISE_ON_FAILURE 0x20ull
#define POOL_FLAG_NON_PAGED 0x40ull
#define POOL_FLAG_NON_PAGED_EXECUTE 0x80ull
#define POOL_FLAG_PAGED 0x100ull
#define POOL_FLAGS_VALID 0x1EFull

void sim__api_ExAllocatePool2(sim_endpoint *ep)
{
    uint64_t flags = sim__arg(ep, 0);
    uint64_t size = sim__arg(ep, 1);
    uint32_t tag = (uint32_t)sim__arg(ep, 2);
    uint64_t kind = flags & (POOL_FLAG_NON_PAGED | POOL_FLAG_NON_PAGED_EXECUTE |
                             POOL_FLAG_PAGED);

    /* Exactly one pool kind, only known flags, and a tag: otherwise the
     * request is invalid and the routine fails it. */
    if ((flags & ~POOL_FLAGS_VALID) || tag == 0 ||
        (kind != POOL_FLAG_NON_PAGED && kind != POOL_FLAG_NON_PAGED_EXECUTE &&
         kind != POOL_FLAG_PAGED)) {
        sim__ret(ep, 0);
        return;
    }
    if (!alloc_irql_ok(ep, kind == POOL_FLAG_PAGED, flags, size))
        return;
    /* Zeroed unless the caller opts out: the point of ExAllocatePool2. */
    bool zero = !(flags & POOL_FLAG_UNINITIALIZED);
    sim__ret(ep, sim__pool_alloc(ep, size, tag, zero));
}

static void free_checked(sim_endpoint *ep, uint64_t addr, uint32_t tag,
                         bool check_tag)
{
    if (ep->irql > 2) {
        sim__bugcheck(ep, SIM_BUGCHECK_BAD_POOL_CALLER, 0x09, ep->irql, 0, addr,
                      "pool freed at too high an IRQL");
        return;
    }
    sim__pool_free(ep, addr, tag, check_tag);
}

void sim__api_ExFreePoolWithTag(sim_endpoint *ep)
{
    free_checked(ep, sim__arg(ep, 0), (uint32_t)sim__arg(ep, 1), true);
}

void sim__api_ExFreePool(sim_endpoint *ep)
{
    free_checked(ep, sim__arg(ep, 0), 0, false);
}
