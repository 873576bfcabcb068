/*
 * endpoint.c — one endpoint run on a reused engine (engine.c): rewrite what
 * the last run could change, lay out the driver's objects, call DriverEntry
 * with the MS x64 ABI, deliver the OS events, and replay a faulting run on
 * the tracer so its record names the exact faulting instruction.  Also the
 * ABI of nt's exports as the kernel API layer sees it (sim__arg, sim__ret).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "engine-internal.h"

/* ---- calling the guest ---------------------------------------------------- */

/*
 * Call a guest function with the MS x64 ABI: arguments in rcx, rdx, r8, r9,
 * then on the stack above 32 bytes of shadow space; the return address is
 * the return stub, where emulation stops.  Returns true when it returned.
 */
bool sim__call_guest(sim_endpoint *ep, uint64_t fn, const uint64_t *args,
                     unsigned nargs, const char *phase, uint64_t *ret)
{
    sim_engine *e = ep->engine;
    static const int argregs[4] = {UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_R8,
                                   UC_X86_REG_R9};
    uint64_t rsp = (SIM__STACK_TOP - 0x100) & ~0xFull;
    uint64_t trap = SIM__NT_BASE + SIM__STUB_RETURN * SIM__NT_STUB_SIZE;

    snprintf(ep->out->phase, sizeof ep->out->phase, "%s", phase);
    rsp -= 8 * (nargs > 4 ? nargs : 4); /* arguments and shadow space */
    rsp -= 8;                           /* return address */
    memcpy(e->stack + (rsp - SIM__STACK_BASE), &trap, 8);
    for (unsigned i = 4; i < nargs; i++)
        memcpy(e->stack + (rsp + 8 + 8 * i - SIM__STACK_BASE), &args[i], 8);
    for (size_t i = 0; i < 16; i++)
        sim__set_reg(ep->uc, sim__gpr_ids[i], 0);
    for (unsigned i = 0; i < nargs && i < 4; i++)
        sim__set_reg(ep->uc, argregs[i], args[i]);
    sim__set_reg(ep->uc, UC_X86_REG_RSP, rsp);
    sim__set_reg(ep->uc, UC_X86_REG_RFLAGS, 0x202);
    ep->call_insns = 0;
    ep->api_bytes = 0;
    sim__update_shared_data(ep);

    e->pending = false;
    uc_err ue = uc_emu_start(ep->uc, fn, trap, 0, 0);
    /* Host work between calls (delivering the next event) is nobody's. */
    ep->call_insns = ep->api_bytes = 0;
    if (e->pending && !ep->stopped) {
        /* RIP is stale (where Unicorn last stored it); the faulting block
         * is the one the block hook saw last.  Find the instruction in it,
         * or have the run replayed on the tracer when that is not sure. */
        uint64_t rip, block = e->last_block;
        bool located = ep->uc == e->uc && e->pending_access != SIM_ACCESS_EXECUTE &&
                       sim__locate_fault(e->cs, ep, block, e->last_block_size,
                                         e->pending_addr, &rip);
        if (located)
            sim__set_reg(ep->uc, UC_X86_REG_RIP, rip);
        e->replay = ep->uc == e->uc && !located;
        sim__fault(ep, e->pending_addr, e->pending_access);
    }
    if (ep->stopped)
        return false;
    if (ue == UC_ERR_INSN_INVALID) {
        sim__exception(ep, 6);
        return false;
    }
    if (ue != UC_ERR_OK || sim__reg(ep->uc, UC_X86_REG_RIP) != trap) {
        /* Unicorn stopped without a hook seeing why: name it, as data. */
        sim__exception(ep, 13);
        return false;
    }
    *ret = sim__reg(ep->uc, UC_X86_REG_RAX);
    return true;
}

/* ---- one endpoint run ----------------------------------------------------- */

void sim__put_unicode_string(sim_endpoint *ep, uint64_t us, uint64_t buf,
                             const char *text)
{
    size_t n = strlen(text);
    for (size_t i = 0; i <= n; i++) {
        uint16_t c = (uint8_t)text[i];
        sim__write(ep, buf + 2 * i, &c, 2);
    }
    uint16_t len = (uint16_t)(2 * n), max = (uint16_t)(2 * n + 2);
    sim__write(ep, us, &len, 2);
    sim__write(ep, us + 2, &max, 2);
    sim__write(ep, us + 8, &buf, 8);
}

/* DRIVER_OBJECT, its extension and the registry path, in the pool. */
static bool make_driver_object(sim_endpoint *ep, uint64_t base, const sim_image *image)
{
    char path[192], name[160];
    const char *service = ep->run->service ? ep->run->service : image->module;
    uint64_t dobj = sim__pool_alloc(ep, 0x150, 0x76697244 /* 'Driv' */, true);
    uint64_t ext = sim__pool_alloc(ep, 0x80, 0x76697244, true);
    uint64_t strings = sim__pool_alloc(ep, 0x400, 0x76697244, true);

    if (!dobj || !ext || !strings)
        return false;
    snprintf(path, sizeof path,
             "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\%s", service);
    snprintf(name, sizeof name, "\\Driver\\%s", service);
    uint16_t type = 4, size = 0x150;
    uint32_t image_size = image->size_of_image;
    uint64_t entry = base + image->entry_rva;
    sim__write(ep, dobj + 0x00, &type, 2);
    sim__write(ep, dobj + 0x02, &size, 2);
    sim__write(ep, dobj + 0x18, &base, 8);       /* DriverStart */
    sim__write(ep, dobj + 0x20, &image_size, 4); /* DriverSize */
    sim__write(ep, dobj + 0x30, &ext, 8);        /* DriverExtension */
    sim__write(ep, ext + 0x00, &dobj, 8);        /* ->DriverObject */
    sim__put_unicode_string(ep, dobj + 0x38, strings + 0x40, name);   /* DriverName */
    sim__write(ep, dobj + 0x58, &entry, 8);      /* DriverInit */
    sim__put_unicode_string(ep, strings, strings + 0x200, path);
    ep->driver_object = dobj;
    ep->registry_path = strings;
    return !ep->stopped;
}

/* The image imports an export this OS build lacks: Windows refuses to load it. */
static const sim_import *absent_import(const sim_image *image, const sim_profile *pr)
{
    for (size_t i = 0; i < image->nimports; i++) {
        const sim_import *imp = &image->imports[i];
        if (!imp->by_ordinal && sim_kapi_implemented(imp->dll, imp->name) &&
            !sim_profile_has_export(pr, imp->name))
            return imp;
    }
    return NULL;
}

/* Rewrite everything the previous run could have changed. */
static void restore(sim_engine *e, sim_slot *s, sim_pool_window *w)
{
    uint64_t pages = s->size / PAGE;
    bool rewritten_code = false;

    for (uint64_t p = 0; p < pages; p++) {
        if (!(s->page_prot[p] & SIM_PROT_W))
            continue;
        uint8_t *m = s->mem + p * PAGE;
        const uint8_t *o = s->pristine + p * PAGE;
        /* Code the last run rewrote: Unicorn does not see the host put the
         * bytes back, so its translations of the rewritten bytes (and the
         * block counts) go too, or the next run would execute them. */
        if ((s->page_prot[p] & SIM_PROT_X) && memcmp(m, o, PAGE) != 0) {
            uint64_t lo = 0, hi = PAGE;
            while (m[lo] == o[lo])
                lo++;
            while (m[hi - 1] == o[hi - 1])
                hi--;
            uint64_t a = s->base + p * PAGE;
            uc_ctl_remove_cache(e->uc, a + lo, a + hi);
            if (e->tracer)
                uc_ctl_remove_cache(e->tracer, a + lo, a + hi);
            rewritten_code = true;
        }
        memcpy(m, o, PAGE);
    }
    if (rewritten_code)
        memset(e->blocks, 0, sizeof e->blocks);
    memset(e->stack, 0, SIM__STACK_SIZE);
    /*
     * The pool: what the last run handed out, and the page after it (the
     * pool's own stale fill past the last block), is rewritten by memset.
     * After a run that did not end cleanly the rest of the window (a
     * driver's wild writes past its blocks, or before them) is dropped with
     * MADV_DONTNEED, which reads back as zeros.  Not after every run: the
     * call costs ~6 µs, as much as a small driver's whole run.  A clean run
     * whose stray write lands more than a page past its last block, or
     * before its first, is the one case that can leave a trace in the next
     * run's window.
     */
    uint64_t used_end = w->dirty_lo;
    if (w->dirty_hi > w->dirty_lo) {
        /* The pool's own stale fill past the last block ends within a page. */
        used_end = ((w->dirty_hi + PAGE - 1) & ~(PAGE - 1)) + PAGE;
        if (used_end > w->size)
            used_end = w->size;
        memset(w->host + w->dirty_lo, 0, used_end - w->dirty_lo);
    }
    if (w->unclean && w->dirty_lo > 0)
        madvise(w->host, w->dirty_lo, MADV_DONTNEED);
    if (w->unclean && used_end < w->size)
        madvise(w->host + used_end, w->size - used_end, MADV_DONTNEED);
    w->dirty_lo = w->dirty_hi = 0;
    w->unclean = false;
}

/* One attempt at a run on ep->uc (the engine, or its tracer for a replay). */
static int run_once(sim_engine *e, const sim_run *run, sim_outcome *out,
                    sim_slot *s, sim_pool_window *w, char *err, size_t errlen)
{
    sim_endpoint *ep = &e->ep;
    const sim_profile *pr = run->profile ? run->profile : sim_profile_default();
    int rc = 0;

    memset(out, 0, offsetof(sim_outcome, log) + 1);
    out->loglen = 0;
    out->log_truncated = false;
    out->instructions = 0;
    out->events_delivered = 0;
    restore(e, s, w);
    /* The CPU too: an exception the last run stopped in would otherwise
     * turn this run's first exception into a double fault. */
    uc_context_restore(ep->uc, ep->uc == e->uc ? e->clean : e->tracer_clean);

    uint64_t seed_state = run->seed;
    (void)sim__splitmix64(&seed_state); /* the slot draw, made by the caller */
    uint64_t draw_pool = sim__splitmix64(&seed_state);

    memset(ep->handles, 0, sizeof ep->handles);
    ep->run = run;
    ep->profile = pr;
    ep->out = out;
    ep->image = run->image;
    e->current = s;
    ep->rng = sim__splitmix64(&seed_state) | 1;
    ep->irql = 0;
    ep->stopped = false;
    ep->block_rip = 0;
    ep->image_base = s->base;
    ep->now_ms = 0;
    ep->insns_at_call = 0;
    ep->call_insns = 0;
    ep->budget = run->budget ? run->budget : SIM_DEFAULT_BUDGET;
    ep->driver_object = ep->registry_path = 0;
    ep->nprocess_notify = 0;
    ep->filter_registration = 0;
    ep->filter_started = false;
    ep->api = 0;

    uint64_t slide = (draw_pool % ((w->size - SIM__POOL_ARENA) / 0x10000 + 1)) * 0x10000;
    sim__pool_reset(ep, w->base + slide, w->host + slide, SIM__POOL_ARENA);
    out->image_base = s->base;
    out->pool_base = w->base + slide;
    sim__init_ntdata(e);
    sim__init_system_process(ep);
    sim__init_shared_data(e, pr);

    const sim_import *absent = absent_import(run->image, pr);
    if (absent) {
        out->kind = SIM_OUTCOME_OK;
        out->status_valid = true;
        out->status = SIM_STATUS_DRIVER_ENTRYPOINT_NOT_FOUND;
        snprintf(out->phase, sizeof out->phase, "load");
        snprintf(out->detail, sizeof out->detail,
                 "driver not loaded: %s!%.100s does not exist on %.60s", absent->dll,
                 absent->name, pr->name);
    } else if (!make_driver_object(ep, s->base, run->image)) {
        sim__set_err(err, errlen, "the pool arena cannot hold the driver object");
        rc = SIM_ENOMEM;
    } else {
        uint64_t args[2] = {ep->driver_object, ep->registry_path}, ret;
        out->kind = SIM_OUTCOME_OK;
        if (sim__call_guest(ep, s->base + run->image->entry_rva, args, 2, "DriverEntry",
                             &ret)) {
            out->status_valid = true;
            out->status = (uint32_t)ret;
            if ((int32_t)out->status >= 0)
                for (size_t i = 0; i < run->nevents && !ep->stopped; i++)
                    sim__deliver_event(ep, &run->events[i]);
        }
    }

    /* What this run dirtied in the pool window, for the next restore. */
    w->dirty_lo = slide;
    w->dirty_hi = slide + (ep->pool.top - ep->pool.base);
    w->unclean = out->kind != SIM_OUTCOME_OK;
    if (w->dirty_hi > w->size)
        w->dirty_hi = w->size;
    ep->run = NULL;
    return rc;
}

int sim_engine_run(sim_engine *e, const sim_run *run, sim_outcome *out,
                   char *err, size_t errlen)
{
    const sim_profile *pr;
    int rc;

    if (!e || !run || !run->image || !out || (run->nfiles && !run->files) ||
        (run->nevents && !run->events)) {
        sim__set_err(err, errlen, "invalid run");
        return SIM_EINVAL;
    }
    pr = run->profile ? run->profile : sim_profile_default();

    uint64_t seed_state = run->seed;
    uint64_t draw_slot = sim__splitmix64(&seed_state);
    uint32_t nslots = pr->kaslr_slots ? pr->kaslr_slots : 1;
    sim_slot *s = sim__slot_get(e, run->image, pr, (uint32_t)(draw_slot % nslots), err,
                           errlen, &rc);
    if (!s)
        return rc;
    sim_pool_window *w = sim__pool_window(e, pr, err, errlen, &rc);
    if (!w)
        return rc;

    e->replay = false;
    e->ep.uc = e->uc;
    rc = run_once(e, run, out, s, w, err, errlen);
    if (rc < 0 || !e->replay)
        return rc;

    /*
     * A memory fault whose instruction the block could not tell for sure
     * (call_guest): Unicorn 2.0.1 does not keep RIP exact at memory faults.
     * The run is a pure function of its inputs, so replay it on the tracer,
     * whose per-instruction hook keeps RIP exact, and report that.  Only
     * those runs pay for it: execute faults, stack accesses, string
     * instructions and the rare block where two operands could have
     * touched the address.
     */
    if (!e->tracer && sim__tracer_open(e) < 0)
        return rc; /* keep the block-level record rather than none */
    e->ep.uc = e->tracer;
    rc = run_once(e, run, out, s, w, err, errlen);
    e->ep.uc = e->uc;
    return rc;
}

/* ---- the ABI of nt's exports ---------------------------------------------- */

uint64_t sim__arg(sim_endpoint *ep, unsigned i)
{
    static const int argregs[4] = {UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_R8,
                                   UC_X86_REG_R9};
    uint64_t v = 0;

    if (i < 4)
        return sim__reg(ep->uc, argregs[i]);
    /* At the stub RSP points at the return address; shadow space follows. */
    uint64_t rsp = sim__reg(ep->uc, UC_X86_REG_RSP);
    if (sim__read(ep, rsp + 8 + 8ull * i, &v, 8) < 0)
        return 0;
    return v;
}

void sim__ret(sim_endpoint *ep, uint64_t value)
{
    sim__set_reg(ep->uc, UC_X86_REG_RAX, value);
}
