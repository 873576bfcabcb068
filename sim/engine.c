/*
 * engine.c — a Unicorn engine reused for every endpoint a worker runs.
 *
 * DESIGN.md, decision 1: opening an engine costs milliseconds, and on
 * Unicorn 2.0.1 every uc_mem_map/unmap/protect (and every write into a page
 * holding translated code) flushes the translation cache: ~250 µs, and
 * re-translating a driver after it moved costs over a millisecond.  A run on
 * an engine whose code is already translated costs microseconds.  So:
 *
 *   - everything is mapped once per engine with uc_mem_map_ptr over host
 *     memory the engine owns; a run never maps, unmaps or protects;
 *   - an image is mapped at one of a bounded set of KASLR slots per profile
 *     (sim_profile.kaslr_slots); the endpoint's seed picks the slot, and a
 *     slot, once mapped, stays mapped and translated (an LRU evicts);
 *   - the pool is a window mapped once per profile; each run draws an arena
 *     inside it at a seeded slide;
 *   - what a run can change (the image's writable pages, stack, nt data, the
 *     pool arena used) is rewritten from host copies before the next run, so
 *     no state leaks from one endpoint to the next.
 *
 * Guest calls into ntoskrnl land on 16-byte stubs holding `ret`; a code hook
 * over the stub range serves them in C (kapi_*.c) before the `ret` returns
 * to the caller.  Budgets are a block hook counting instructions (decision 2).
 * Faults reach fault.c through the memory and interrupt hooks.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine-internal.h"


/* ---- small helpers ------------------------------------------------------- */

uint64_t sim__splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t sim__random(sim_endpoint *ep)
{
    /* xorshift64*: fast, and a pure function of the endpoint's seed. */
    uint64_t x = ep->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ep->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void sim__set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

static void *host_map(uint64_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void host_unmap(void *p, uint64_t size)
{
    if (p)
        munmap(p, size);
}

static uint32_t to_uc_prot(uint32_t prot)
{
    return ((prot & SIM_PROT_R) ? UC_PROT_READ : 0) |
           ((prot & SIM_PROT_W) ? UC_PROT_WRITE : 0) |
           ((prot & SIM_PROT_X) ? UC_PROT_EXEC : 0);
}

uint64_t sim__reg(uc_engine *uc, int id)
{
    uint64_t v = 0;
    uc_reg_read(uc, id, &v);
    return v;
}

void sim__set_reg(uc_engine *uc, int id, uint64_t v)
{
    uc_reg_write(uc, id, &v);
}

/* ---- the region map ------------------------------------------------------- */

static int region_cmp(const void *a, const void *b)
{
    const sim_region *x = a, *y = b;
    return x->base < y->base ? -1 : x->base > y->base;
}

static void add_region(sim_region *list, size_t *n, uint64_t base, uint64_t size,
                       uint32_t prot, uint8_t *host, const char *name)
{
    sim_region *r = &list[(*n)++];
    r->base = base;
    r->size = size;
    r->prot = prot;
    r->host = host;
    snprintf(r->name, sizeof r->name, "%s", name);
}

/*
 * Runs of pages with one protection, named after their sections: computed
 * once when the slot is loaded, because the image may be destroyed while
 * the engine keeps its mapping (a slot never looks at its image again).
 */
static int slot_name_regions(sim_slot *s, const sim_image *image)
{
    uint64_t pages = s->size / PAGE;

    s->regions = sim_calloc(pages, sizeof *s->regions);
    if (!s->regions)
        return SIM_ENOMEM;
    s->nregions = 0;
    for (uint64_t p = 0; p < pages;) {
        uint8_t prot = s->page_prot[p];
        uint64_t q = p + 1;
        while (q < pages && s->page_prot[q] == prot)
            q++;
        if (prot) {
            if (s->nregions == MAX_SLOT_RUNS)
                return SIM_ERANGE; /* not with SIM_IMAGE_MAX_SECTIONS sections */
            const sim_section *sec = sim_image_section_at(image, (uint32_t)(p * PAGE));
            char name[64];
            snprintf(name, sizeof name, "%s %s", image->name, sec ? sec->name : "headers");
            add_region(s->regions, &s->nregions, s->base + p * PAGE, (q - p) * PAGE, prot,
                       s->mem + p * PAGE, name);
        }
        p = q;
    }
    return 0;
}

static void slot_regions(const sim_slot *s, sim_region *list, size_t *n)
{
    for (size_t i = 0; i < s->nregions && *n < MAX_REGIONS; i++)
        list[(*n)++] = s->regions[i];
}

static void rebuild_regions(sim_engine *e)
{
    size_t n = 0;

    for (size_t i = 0; i < e->nfixed; i++)
        e->regions[n++] = e->fixed[i];
    for (size_t i = 0; i < MAX_SLOTS; i++)
        if (e->slots[i].used)
            slot_regions(&e->slots[i], e->regions, &n);
    for (size_t i = 0; i < e->npools && n < MAX_REGIONS; i++)
        add_region(e->regions, &n, e->pools[i].base, e->pools[i].size,
                   SIM_PROT_R | SIM_PROT_W, e->pools[i].host, "pool");
    qsort(e->regions, n, sizeof *e->regions, region_cmp);
    e->nregions = n;
    e->ep.regions = e->regions;
    e->ep.nregions = n;
}

static bool overlaps_mapped(const sim_engine *e, uint64_t base, uint64_t size)
{
    for (size_t i = 0; i < e->nregions; i++) {
        const sim_region *r = &e->regions[i];
        if (base < r->base + r->size && r->base < base + size)
            return true;
    }
    return false;
}

/* ---- hooks ---------------------------------------------------------------- */

static void stop(sim_endpoint *ep)
{
    uc_emu_stop(ep->uc);
}

/* A call into nt: serve it, unless the run already ended. */
static void hook_stub(uc_engine *uc, uint64_t address, uint32_t size, void *user)
{
    sim_engine *e = user;
    sim_endpoint *ep = &e->ep;
    uint64_t index = (address - SIM__NT_BASE) / SIM__NT_STUB_SIZE;

    (void)uc;
    (void)size;
    if (ep->stopped)
        return;
    const sim_slot *cur = e->current;
    if (index >= e->first_missing && cur && index - e->first_missing < cur->nmissing) {
        sim_outcome *out = ep->out;
        out->kind = SIM_OUTCOME_UNSUPPORTED_API;
        snprintf(out->api, sizeof out->api, "%s", cur->missing[index - e->first_missing]);
        snprintf(out->detail, sizeof out->detail,
                 "the driver called %s, which fleetsim does not implement",
                 out->api);
        ep->stopped = true;
        sim__capture(ep, 0, SIM_ACCESS_NONE);
        stop(ep);
        return;
    }
    if (index < SIM__STUB_FIRST_API ||
        index - SIM__STUB_FIRST_API >= sim_kapi_count()) {
        /* A jump into nt's padding: nothing is there on a real machine either. */
        sim__fault(ep, address, SIM_ACCESS_EXECUTE);
        stop(ep);
        return;
    }
    ep->api = (unsigned)(index - SIM__STUB_FIRST_API);
    sim__update_shared_data(ep);
    sim__kapi_fn(ep->api)(ep);
    if (ep->stopped)
        stop(ep);
}

static uint32_t block_insns(sim_engine *e, uint64_t addr, uint32_t size)
{
    uint64_t h = (addr ^ (addr >> 17)) * 0x9E3779B97F4A7C15ull;
    block_entry *b = &e->blocks[h >> (64 - BLOCK_CACHE_BITS)];

    if (b->addr != addr || b->size != size) {
        b->addr = addr;
        b->size = size;
        b->insns = sim__count_insns(e->cs, &e->ep, addr, size);
    }
    return b->insns;
}

/* Count instructions; past the budget the guest is stuck (decision 2). */
static void hook_block(uc_engine *uc, uint64_t address, uint32_t size, void *user)
{
    sim_engine *e = user;
    sim_endpoint *ep = &e->ep;
    uint32_t n = block_insns(e, address, size);

    (void)uc;
    e->last_block = address;
    e->last_block_size = size;
    ep->call_insns += n;
    ep->out->instructions += n;
    if (ep->call_insns > ep->budget && !ep->stopped) {
        /* The block has not run yet: the CPU is at its start, but Unicorn
         * only syncs RIP for hooks that ask, so pass it on. */
        ep->block_rip = address;
        sim__stuck(ep);
        stop(ep);
    }
}

static bool hook_mem_invalid(uc_engine *uc, uc_mem_type type, uint64_t address,
                             int size, int64_t value, void *user)
{
    sim_engine *e = user;
    sim_access access;

    (void)uc;
    (void)size;
    (void)value;
    switch (type) {
    case UC_MEM_WRITE_UNMAPPED:
    case UC_MEM_WRITE_PROT:
        access = SIM_ACCESS_WRITE;
        break;
    case UC_MEM_FETCH_UNMAPPED:
    case UC_MEM_FETCH_PROT:
        access = SIM_ACCESS_EXECUTE;
        break;
    default:
        access = SIM_ACCESS_READ;
        break;
    }
    /* RIP is only precise once Unicorn has unwound the faulting block, after
     * uc_emu_start returns: note the fault here, raise it there. */
    if (!e->ep.stopped && !e->pending) {
        e->pending = true;
        e->pending_addr = address;
        e->pending_access = access;
    }
    return false;
}

static void hook_intr(uc_engine *uc, uint32_t intno, void *user)
{
    sim_engine *e = user;

    (void)uc;
    if (!e->ep.stopped)
        sim__exception(&e->ep, intno);
    stop(&e->ep);
}

static bool hook_insn_invalid(uc_engine *uc, void *user)
{
    sim_engine *e = user;

    (void)uc;
    if (!e->ep.stopped)
        sim__exception(&e->ep, 6);
    stop(&e->ep);
    return false;
}

/*
 * Unicorn does not keep CR8, the x64 alias of the task priority register
 * that mingw's KeGetCurrentIrql/KeRaiseIrql/KeLowerIrql inline as `mov cr8`.
 * Each such instruction found in an image gets a hook that emulates it on
 * the endpoint's IRQL and steps over it.
 */
const int sim__gpr_ids[16] = {
    UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
    UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
    UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
    UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
};

/* REX.R 0F 20|22 modrm(mod 11, reg 000): mov r64, cr8 / mov cr8, r64. */
static bool is_cr8_move(const uint8_t *p)
{
    return (p[0] & 0xF4) == 0x44 && p[1] == 0x0F && (p[2] == 0x20 || p[2] == 0x22) &&
           (p[3] & 0xF8) == 0xC0;
}

static void hook_cr8(uc_engine *uc, uint64_t address, uint32_t size, void *user)
{
    sim_engine *e = user;
    sim_endpoint *ep = &e->ep;
    uint8_t code[4];
    const uint8_t *p = sim__ptr(ep, address, 4, SIM_PROT_X);

    (void)size;
    if (!p || ep->stopped)
        return;
    memcpy(code, p, 4);
    if (!is_cr8_move(code))
        return;
    int id = sim__gpr_ids[(code[3] & 7) | ((code[0] & 1) << 3)];
    if (code[2] == 0x20)
        sim__set_reg(uc, id, ep->irql);
    else
        ep->irql = (uint8_t)(sim__reg(uc, id) & 0xF);
    sim__set_reg(uc, UC_X86_REG_RIP, address + 4);
}

/* ---- mapping, mirrored on the tracer ------------------------------------- */

static uc_err map_both(sim_engine *e, uint64_t base, uint64_t size, uint32_t prot,
                       uint8_t *host)
{
    uc_err ue = uc_mem_map_ptr(e->uc, base, size, to_uc_prot(prot), host);

    if (ue == UC_ERR_OK && e->tracer) {
        ue = uc_mem_map_ptr(e->tracer, base, size, to_uc_prot(prot), host);
        if (ue != UC_ERR_OK)
            uc_mem_unmap(e->uc, base, size);
    }
    return ue;
}

/*
 * Unicorn 2.0.1 keeps translated blocks and TLB entries of memory it
 * unmaps: drop them too, or the next image at this base runs stale code.
 */
static void unmap_one(uc_engine *uc, uint64_t base, uint64_t size)
{
    /* Before the unmap: Unicorn finds the blocks through the mapping.  Not
     * uc_ctl_flush_tlb: in 2.0.1 that is a full tb_flush, which memsets the
     * whole 1 GiB translation buffer (160 ms). */
    uc_ctl_remove_cache(uc, base, base + size);
    uc_mem_unmap(uc, base, size);
}

static void unmap_both(sim_engine *e, uint64_t base, uint64_t size)
{
    unmap_one(e->uc, base, size);
    if (e->tracer)
        unmap_one(e->tracer, base, size);
}

/* The tracer's per-instruction hook: its presence alone keeps RIP exact. */
static void hook_trace(uc_engine *uc, uint64_t address, uint32_t size, void *user)
{
    (void)uc;
    (void)address;
    (void)size;
    (void)user;
}

/*
 * The hooks of an engine.  The tracer also hooks every instruction with an
 * empty callback, which makes Unicorn keep RIP exact at a fault.  Both hook
 * the `mov cr8` sites found when an image is mapped (add_cr8_hooks).
 */
static int install_hooks(sim_engine *e, uc_engine *uc, bool tracing)
{
    uc_hook h;

    if (uc_hook_add(uc, &h, UC_HOOK_CODE, (void *)hook_stub, e,
                    SIM__NT_BASE + SIM__NT_STUB_SIZE,
                    SIM__NT_BASE + SIM__NT_SIZE - 1) != UC_ERR_OK ||
        uc_hook_add(uc, &h, UC_HOOK_BLOCK, (void *)hook_block, e, 1, 0) != UC_ERR_OK ||
        uc_hook_add(uc, &h, UC_HOOK_MEM_INVALID, (void *)hook_mem_invalid, e, 1,
                    0) != UC_ERR_OK ||
        uc_hook_add(uc, &h, UC_HOOK_INTR, (void *)hook_intr, e, 1, 0) != UC_ERR_OK ||
        uc_hook_add(uc, &h, UC_HOOK_INSN_INVALID, (void *)hook_insn_invalid, e, 1,
                    0) != UC_ERR_OK)
        return SIM_EENGINE;
    if (tracing &&
        uc_hook_add(uc, &h, UC_HOOK_CODE, (void *)hook_trace, e, 1, 0) != UC_ERR_OK)
        return SIM_EENGINE;
    return 0;
}

static void add_cr8_hooks(sim_engine *e, uc_engine *uc, const sim_slot *s, uc_hook *hooks)
{
    for (size_t i = 0; i < s->ncr8; i++)
        if (uc_hook_add(uc, &hooks[i], UC_HOOK_CODE, (void *)hook_cr8, e, s->cr8_sites[i],
                        s->cr8_sites[i]) != UC_ERR_OK)
            hooks[i] = 0;
}

/* The tracer: a second engine over the same host memory, opened on first need. */
int sim__tracer_open(sim_engine *e)
{
    uc_engine *uc;

    if (uc_open(UC_ARCH_X86, UC_MODE_64, &uc) != UC_ERR_OK)
        return SIM_EENGINE;
    for (size_t i = 0; i < e->nregions; i++) {
        const sim_region *r = &e->regions[i];
        if (uc_mem_map_ptr(uc, r->base, r->size, to_uc_prot(r->prot), r->host) !=
            UC_ERR_OK) {
            uc_close(uc);
            return SIM_EENGINE;
        }
    }
    if (install_hooks(e, uc, true) < 0 || uc_context_alloc(uc, &e->tracer_clean) != UC_ERR_OK ||
        uc_context_save(uc, e->tracer_clean) != UC_ERR_OK) {
        if (e->tracer_clean)
            uc_context_free(e->tracer_clean);
        e->tracer_clean = NULL;
        uc_close(uc);
        return SIM_EENGINE;
    }
    e->tracer = uc;
    for (size_t i = 0; i < MAX_SLOTS; i++)
        if (e->slots[i].used) {
            add_cr8_hooks(e, uc, &e->slots[i], e->slots[i].tracer_cr8_hooks);
            e->slots[i].tracer_hooked = true;
        }
    return 0;
}

/* ---- slots: images mapped at a base --------------------------------------- */

static void slot_free(sim_engine *e, sim_slot *s, bool closing)
{
    if (!s->used)
        return;
    if (closing)
        goto release; /* uc_close drops the mappings and hooks at once */
    for (size_t i = 0; i < s->ncr8; i++) {
        uc_hook_del(e->uc, s->cr8_hooks[i]);
        if (s->tracer_hooked && e->tracer)
            uc_hook_del(e->tracer, s->tracer_cr8_hooks[i]);
    }
    uint64_t pages = s->size / PAGE;
    for (uint64_t p = 0; p < pages;) {
        uint64_t q = p + 1;
        while (q < pages && s->page_prot[q] == s->page_prot[p])
            q++;
        if (s->page_prot[p])
            unmap_both(e, s->base + p * PAGE, (q - p) * PAGE);
        p = q;
    }
release:
    host_unmap(s->mem, s->size);
    sim_free(s->pristine);
    sim_free(s->page_prot);
    sim_free(s->regions);
    sim_free(s->cr8_sites);
    sim_free(s->missing);
    if (e->current == s)
        e->current = NULL;
    memset(s, 0, sizeof *s);
    /* Translated blocks of the old image may share addresses with a new one. */
    memset(e->blocks, 0, sizeof e->blocks);
}

/*
 * Stub address for an import: the API table's, or a "missing" stub naming
 * it.  A slot numbers its image's missing imports in import order, one stub
 * per distinct name: a function of the image alone, so the address a driver
 * finds in its IAT is the same on every engine, whatever it loaded before.
 */
static int import_stub(sim_engine *e, sim_slot *s, const sim_import *imp, uint64_t *stub)
{
    int index = -1;

    if (!imp->by_ordinal && sim_kapi_implemented(imp->dll, imp->name))
        index = sim__kapi_find(imp->name);
    if (index >= 0) {
        *stub = sim__kapi_address((unsigned)index);
        return 0;
    }
    char name[SIM__MISSING_NAME];
    if (imp->by_ordinal)
        snprintf(name, sizeof name, "%s!#%u", imp->dll, imp->ordinal);
    else
        snprintf(name, sizeof name, "%s!%s", imp->dll, imp->name);
    size_t i;
    for (i = 0; i < s->nmissing; i++)
        if (strcmp(s->missing[i], name) == 0)
            break;
    if (i == s->nmissing) {
        if (e->first_missing + s->nmissing >= SIM__NT_STUBS)
            return SIM_ERANGE;
        char(*grown)[SIM__MISSING_NAME] = sim_realloc(s->missing, (s->nmissing + 1) * sizeof *grown);
        if (!grown)
            return SIM_ENOMEM;
        s->missing = grown;
        memcpy(s->missing[s->nmissing++], name, sizeof name);
    }
    *stub = SIM__NT_BASE + (e->first_missing + i) * SIM__NT_STUB_SIZE;
    return 0;
}

static int slot_load(sim_engine *e, sim_slot *s, const sim_image *image,
                     uint64_t base, char *err, size_t errlen)
{
    uint64_t size = ((uint64_t)image->size_of_image + PAGE - 1) & ~(PAGE - 1);
    uint64_t pages = size / PAGE;
    int rc = SIM_ENOMEM;

    memset(s, 0, sizeof *s);
    s->image = image;
    memcpy(s->sha256, image->sha256, 32);
    s->base = base;
    s->size = size;
    s->mem = host_map(size);
    s->pristine = sim_malloc(size);
    s->page_prot = sim_calloc(pages, 1);
    if (!s->mem || !s->pristine || !s->page_prot)
        goto fail;

    sim_image_build(image, base, s->pristine);
    for (size_t i = 0; i < image->nimports; i++) {
        const sim_import *imp = &image->imports[i];
        uint64_t stub;
        if ((rc = import_stub(e, s, imp, &stub)) < 0) {
            sim__set_err(err, errlen, rc == SIM_ENOMEM ? "out of memory"
                                                       : "too many distinct unsupported imports");
            goto fail;
        }
        if ((uint64_t)imp->iat_rva + 8 <= size)
            memcpy(s->pristine + imp->iat_rva, &stub, 8);
    }
    memcpy(s->mem, s->pristine, size);

    /* Page protections: headers read-only, sections as declared.  Pages
     * shared by two sections (alignment below a page) get the union. */
    uint64_t hdr_pages = (image->size_of_headers + PAGE - 1) / PAGE;
    for (uint64_t p = 0; p < hdr_pages && p < pages; p++)
        s->page_prot[p] = SIM_PROT_R;
    for (size_t i = 0; i < image->nsections; i++) {
        const sim_section *sec = &image->sections[i];
        /* Discardable data (.reloc) is dropped as Windows drops it; discardable
         * code (an MSVC INIT section holding DriverEntry) stays mapped, since
         * unmapping it after DriverEntry would flush the translation cache. */
        if (sec->discardable && !(sec->prot & SIM_PROT_X))
            continue;
        uint64_t first = sec->rva / PAGE;
        uint64_t last = ((uint64_t)sec->rva + sec->vsize + PAGE - 1) / PAGE;
        for (uint64_t p = first; p < last && p < pages; p++)
            s->page_prot[p] |= (uint8_t)(sec->prot | SIM_PROT_R);
    }
    if ((rc = slot_name_regions(s, image)) < 0) {
        if (rc == SIM_ERANGE)
            sim__set_err(err, errlen, "the image has more runs of page protections than "
                                      "sections allow");
        goto fail;
    }

    /* IRQL moves inlined as `mov cr8`, each hooked: however many there are. */
    size_t ncr8 = 0;
    for (uint64_t off = 0; off + 4 <= size; off++)
        ncr8 += (s->page_prot[off / PAGE] & SIM_PROT_X) && is_cr8_move(s->mem + off);
    if (ncr8) {
        /* One block: the sites, then the engine's hooks, then the tracer's. */
        s->cr8_sites = sim_calloc(ncr8, sizeof *s->cr8_sites + 2 * sizeof(uc_hook));
        if (!s->cr8_sites) {
            rc = SIM_ENOMEM;
            goto fail;
        }
        s->cr8_hooks = (uc_hook *)(s->cr8_sites + ncr8);
        s->tracer_cr8_hooks = s->cr8_hooks + ncr8;
        for (uint64_t off = 0; off + 4 <= size; off++)
            if ((s->page_prot[off / PAGE] & SIM_PROT_X) && is_cr8_move(s->mem + off))
                s->cr8_sites[s->ncr8++] = base + off;
    }

    for (uint64_t p = 0; p < pages;) {
        uint64_t q = p + 1;
        while (q < pages && s->page_prot[q] == s->page_prot[p])
            q++;
        if (s->page_prot[p]) {
            uc_err ue = map_both(e, base + p * PAGE, (q - p) * PAGE, s->page_prot[p],
                                 s->mem + p * PAGE);
            if (ue != UC_ERR_OK) {
                for (uint64_t u = 0; u < p; u++)
                    if (s->page_prot[u])
                        unmap_both(e, base + u * PAGE, PAGE);
                if (err && errlen)
                    snprintf(err, errlen, "mapping %s at 0x%llx: %s", image->name,
                             (unsigned long long)base, uc_strerror(ue));
                rc = SIM_EENGINE;
                goto fail;
            }
        }
        p = q;
    }
    s->used = true;
    add_cr8_hooks(e, e->uc, s, s->cr8_hooks);
    if (e->tracer) {
        add_cr8_hooks(e, e->tracer, s, s->tracer_cr8_hooks);
        s->tracer_hooked = true;
    }
    return 0;

fail:
    host_unmap(s->mem, size);
    sim_free(s->pristine);
    sim_free(s->page_prot);
    sim_free(s->regions);
    sim_free(s->cr8_sites);
    sim_free(s->missing);
    memset(s, 0, sizeof *s);
    if (rc == SIM_ENOMEM)
        sim__set_err(err, errlen, "out of memory mapping the image");
    return rc;
}

/*
 * The base of KASLR slot k for an image in the profile's range: spread over
 * the range at 64 KiB granularity, the same on every engine so that an
 * endpoint's base depends only on its seed.  The image's hash is part of
 * the draw: two drivers of one size (two sensor versions) would otherwise
 * share every base, and a fleet mixing them would evict and re-translate
 * one for the other at every run (measured: 14 new translations per run,
 * the translation buffer growing without bound).
 */
static uint64_t slot_base(const sim_profile *pr, const sim_image *image, uint64_t size,
                          uint32_t k)
{
    uint64_t span = pr->image_hi > pr->image_lo ? pr->image_hi - pr->image_lo : 0;
    uint64_t positions = span > size ? (span - size) / 0x10000 : 1;
    uint64_t id;
    memcpy(&id, image->sha256, sizeof id);
    uint64_t st = 0x5EED0000ull + k + id * 0x9E3779B97F4A7C15ull;
    return pr->image_lo + (sim__splitmix64(&st) % positions) * 0x10000;
}

sim_slot *sim__slot_get(sim_engine *e, const sim_image *image,
                          const sim_profile *pr, uint32_t k, char *err,
                          size_t errlen, int *rc)
{
    uint64_t size = ((uint64_t)image->size_of_image + PAGE - 1) & ~(PAGE - 1);
    uint64_t base = slot_base(pr, image, size, k);
    sim_slot *victim = NULL;

    /* Without relocations an image can only run where it was linked. */
    if ((image->characteristics & 0x0001) && image->reloc_size == 0)
        base = image->preferred_base;

    *rc = 0;
    for (size_t i = 0; i < MAX_SLOTS; i++) {
        sim_slot *s = &e->slots[i];
        if (s->used && s->base == base && s->image == image &&
            memcmp(s->sha256, image->sha256, 32) == 0) {
            s->last_use = ++e->use_clock;
            return s;
        }
    }
    /* A base taken by nt, the stack or another slot: walk to a free one. */
    for (int tries = 0; tries < 64; tries++) {
        bool clash = false;
        for (size_t i = 0; i < e->nfixed; i++)
            if (base < e->fixed[i].base + e->fixed[i].size &&
                e->fixed[i].base < base + size)
                clash = true;
        if (!clash)
            break;
        base += 0x100000;
    }
    /* Evict slots in the way, then the least recently used if full. */
    for (size_t i = 0; i < MAX_SLOTS; i++) {
        sim_slot *s = &e->slots[i];
        if (s->used && base < s->base + s->size && s->base < base + size)
            slot_free(e, s, false);
    }
    for (size_t i = 0; i < MAX_SLOTS; i++) {
        sim_slot *s = &e->slots[i];
        if (!s->used) {
            victim = s;
            break;
        }
        if (!victim || s->last_use < victim->last_use)
            victim = s;
    }
    slot_free(e, victim, false);
    rebuild_regions(e);
    if (overlaps_mapped(e, base, size)) {
        sim__set_err(err, errlen, "the profile's image range collides with fixed kernel regions");
        *rc = SIM_ERANGE;
        return NULL;
    }
    if ((*rc = slot_load(e, victim, image, base, err, errlen)) < 0) {
        rebuild_regions(e);
        return NULL;
    }
    victim->last_use = ++e->use_clock;
    rebuild_regions(e);
    return victim;
}

/* ---- the pool window ------------------------------------------------------ */

sim_pool_window *sim__pool_window(sim_engine *e, const sim_profile *pr,
                                    char *err, size_t errlen, int *rc)
{
    uint64_t size = SIM__POOL_WINDOW;

    *rc = 0;
    if (pr->pool_hi > pr->pool_lo && pr->pool_hi - pr->pool_lo < size)
        size = (pr->pool_hi - pr->pool_lo) & ~(PAGE - 1);
    for (size_t i = 0; i < e->npools; i++)
        if (e->pools[i].base == pr->pool_lo && e->pools[i].size == size)
            return &e->pools[i];
    if (size < SIM__POOL_ARENA || e->npools == MAX_POOL_WINDOWS ||
        overlaps_mapped(e, pr->pool_lo, size)) {
        sim__set_err(err, errlen, "the profile's pool range is too small or collides");
        *rc = SIM_ERANGE;
        return NULL;
    }
    sim_pool_window *w = &e->pools[e->npools];
    w->host = host_map(size);
    /* 4 KiB pages: a run touches a few; a 2 MiB huge page would be zeroed
     * whole at its first touch after every reset. */
    if (w->host)
        madvise(w->host, size, MADV_NOHUGEPAGE);
    if (!w->host) {
        sim__set_err(err, errlen, "out of memory mapping the pool");
        *rc = SIM_ENOMEM;
        return NULL;
    }
    uc_err ue = map_both(e, pr->pool_lo, size, SIM_PROT_R | SIM_PROT_W, w->host);
    if (ue != UC_ERR_OK) {
        host_unmap(w->host, size);
        if (err && errlen)
            snprintf(err, errlen, "mapping the pool: %s", uc_strerror(ue));
        *rc = SIM_EENGINE;
        return NULL;
    }
    w->base = pr->pool_lo;
    w->size = size;
    w->dirty_lo = w->dirty_hi = 0;
    e->npools++;
    rebuild_regions(e);
    return w;
}

/* ---- engine lifetime ------------------------------------------------------ */

static int map_fixed(sim_engine *e, uint64_t base, uint64_t size, uint32_t prot,
                     uint8_t **host, const char *name)
{
    *host = host_map(size);
    if (!*host)
        return SIM_ENOMEM;
    if (map_both(e, base, size, prot, *host) != UC_ERR_OK)
        return SIM_EENGINE;
    add_region(e->fixed, &e->nfixed, base, size, prot, *host, name);
    return 0;
}

int sim_engine_create(sim_engine **out, char *err, size_t errlen)
{
    sim_engine *e;
    int rc;

    if (!out)
        return SIM_EINVAL;
    *out = NULL;
    e = sim_calloc(1, sizeof *e);
    if (!e) {
        sim__set_err(err, errlen, "out of memory");
        return SIM_ENOMEM;
    }
    e->first_missing = SIM__STUB_FIRST_API + sim_kapi_count();
    if (uc_open(UC_ARCH_X86, UC_MODE_64, &e->uc) != UC_ERR_OK) {
        sim_free(e);
        sim__set_err(err, errlen, "cannot open a Unicorn x86-64 engine");
        return SIM_EENGINE;
    }
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &e->cs) != CS_ERR_OK) {
        uc_close(e->uc);
        sim_free(e);
        sim__set_err(err, errlen, "cannot open capstone");
        return SIM_EENGINE;
    }
    e->ep.uc = e->uc;
    e->ep.cs = e->cs;
    e->ep.engine = e;

    if ((rc = map_fixed(e, SIM__NT_BASE, SIM__NT_SIZE, SIM_PROT_R | SIM_PROT_X,
                        &e->nt, "nt")) < 0 ||
        (rc = map_fixed(e, SIM__NTDATA_BASE, SIM__NTDATA_SIZE,
                        SIM_PROT_R | SIM_PROT_W, &e->ntdata, "nt data")) < 0 ||
        (rc = map_fixed(e, SIM__KUSD_BASE, PAGE, SIM_PROT_R, &e->kusd,
                        "KUSER_SHARED_DATA")) < 0 ||
        (rc = map_fixed(e, SIM__STACK_BASE, SIM__STACK_SIZE,
                        SIM_PROT_R | SIM_PROT_W, &e->stack, "stack")) < 0)
        goto fail;
    /* Each stub is `ret` followed by int3 padding. */
    memset(e->nt, 0xCC, SIM__NT_SIZE);
    for (uint64_t i = 0; i < SIM__NT_STUBS; i++)
        e->nt[i * SIM__NT_STUB_SIZE] = 0xC3;
    rebuild_regions(e);

    if (install_hooks(e, e->uc, false) < 0 || uc_context_alloc(e->uc, &e->clean) != UC_ERR_OK ||
        uc_context_save(e->uc, e->clean) != UC_ERR_OK) {
        rc = SIM_EENGINE;
        goto fail;
    }
    *out = e;
    return 0;

fail:
    sim__set_err(err, errlen, rc == SIM_ENOMEM ? "out of memory" : "cannot map the kernel regions");
    sim_engine_destroy(e);
    return rc;
}

void sim_engine_destroy(sim_engine *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < MAX_SLOTS; i++)
        slot_free(e, &e->slots[i], true);
    if (e->clean)
        uc_context_free(e->clean);
    if (e->tracer_clean)
        uc_context_free(e->tracer_clean);
    if (e->uc)
        uc_close(e->uc);
    if (e->tracer)
        uc_close(e->tracer);
    if (e->cs)
        cs_close(&e->cs);
    host_unmap(e->nt, SIM__NT_SIZE);
    host_unmap(e->ntdata, SIM__NTDATA_SIZE);
    host_unmap(e->kusd, PAGE);
    host_unmap(e->stack, SIM__STACK_SIZE);
    for (size_t i = 0; i < e->npools; i++)
        host_unmap(e->pools[i].host, e->pools[i].size);
    sim_free(e);
}

/* ---- the virtual clock and KUSER_SHARED_DATA ------------------------------ */

/* 100 ns units since boot: event time plus one nanosecond per instruction. */
uint64_t sim__interrupt_time(const sim_endpoint *ep)
{
    return ep->now_ms * 10000ull + ep->out->instructions / 100u;
}

uint64_t sim__system_time(const sim_endpoint *ep)
{
    uint64_t boot = ep->run->boot_time ? ep->run->boot_time : DEFAULT_BOOT_TIME;
    return boot + sim__interrupt_time(ep);
}

uint64_t sim__tick_count(const sim_endpoint *ep)
{
    return sim__interrupt_time(ep) / 156250u; /* 15.625 ms ticks */
}

static void put_ksystem_time(uint8_t *p, uint64_t v)
{
    uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
    memcpy(p, &lo, 4);
    memcpy(p + 4, &hi, 4);
    memcpy(p + 8, &hi, 4);
}

void sim__update_shared_data(sim_endpoint *ep)
{
    uint8_t *k = ep->engine->kusd;
    uint64_t ticks = sim__tick_count(ep);
    uint32_t t32 = (uint32_t)ticks;

    memcpy(k + 0x0, &t32, 4);
    put_ksystem_time(k + 0x8, sim__interrupt_time(ep));
    put_ksystem_time(k + 0x14, sim__system_time(ep));
    put_ksystem_time(k + 0x320, ticks);
}

void sim__init_shared_data(sim_engine *e, const sim_profile *pr)
{
    uint8_t *k = e->kusd;
    uint32_t v;

    memset(k, 0, PAGE);
    v = 0x0FA00000; /* TickCountMultiplier */
    memcpy(k + 0x4, &v, 4);
    v = pr->build;
    memcpy(k + 0x260, &v, 4);
    memcpy(k + 0x26C, &pr->major, 4);
    memcpy(k + 0x270, &pr->minor, 4);
    uint16_t mach = 0x8664;
    memcpy(k + 0x2C, &mach, 2); /* ImageNumberLow */
    memcpy(k + 0x2E, &mach, 2); /* ImageNumberHigh */
    v = pr->product_type;
    memcpy(k + 0x264, &v, 4);
    k[0x268] = 1; /* ProductTypeIsValid */
    sim__update_shared_data(&e->ep);
}

/* KPCR at GS, with KPRCB.CurrentThread (gs:[0x188]) and the System process. */
void sim__init_ntdata(sim_engine *e)
{
    uint64_t kpcr = SIM__NTDATA_BASE + SIM__KPCR_OFFSET;
    uint64_t thread = SIM__NTDATA_BASE + SIM__KTHREAD_OFFSET;
    uint64_t process = SIM__NTDATA_BASE + SIM__EPROCESS_OFFSET;
    uint8_t *d = e->ntdata;

    memset(d, 0, SIM__NTDATA_SIZE);
    memcpy(d + 0x18, &kpcr, 8);      /* KPCR.Self */
    uint64_t prcb = kpcr + 0x180;
    memcpy(d + 0x20, &prcb, 8);      /* KPCR.CurrentPrcb */
    memcpy(d + 0x188, &thread, 8);   /* KPRCB.CurrentThread */
    d[SIM__KTHREAD_OFFSET] = 6;      /* DISPATCHER_HEADER.Type: ThreadObject */
    d[SIM__EPROCESS_OFFSET] = 3;     /* ProcessObject */
    memcpy(d + SIM__KTHREAD_OFFSET + 0xB8, &process, 8); /* ApcState.Process */
    sim__set_reg(e->ep.uc, UC_X86_REG_GS_BASE, kpcr);
}

