/*
 * fault.c — what a Windows machine shows when a driver goes wrong.
 *
 * Every way guest code can fail ends here and becomes the bugcheck a real
 * machine would raise, with its four parameters (DESIGN.md, "Faults as a
 * Windows machine shows them"), and a crash record as WinDbg's !analyze
 * would present it: registers, the faulting instruction and the ones before
 * it, module!function+offset, the stack unwound with the image's .pdata.
 *
 * A fault is a result, not an error: these functions fill the outcome and
 * mark the run stopped; the engine stops Unicorn.
 */
#include <stdio.h>
#include <string.h>

#include "sim-internal.h"

/* Where nt keeps the records a 0x7E points at (inside nt data). */
#define EXREC_OFFSET 0x6000u
#define CONTEXT_OFFSET 0x6100u

static const int reg_ids[18] = {
    UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX,
    UC_X86_REG_RSI, UC_X86_REG_RDI, UC_X86_REG_RBP, UC_X86_REG_RSP,
    UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
    UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
    UC_X86_REG_RIP, UC_X86_REG_RFLAGS,
};

static void read_regs(sim_endpoint *ep, sim_regs *r)
{
    uint64_t *v[18] = {&r->rax, &r->rbx, &r->rcx, &r->rdx, &r->rsi, &r->rdi,
                       &r->rbp, &r->rsp, &r->r8,  &r->r9,  &r->r10, &r->r11,
                       &r->r12, &r->r13, &r->r14, &r->r15, &r->rip, &r->rflags};
    for (int i = 0; i < 18; i++) {
        *v[i] = 0;
        uc_reg_read(ep->uc, reg_ids[i], v[i]);
    }
}

static bool in_nt_stubs(uint64_t rip)
{
    return rip >= SIM__NT_BASE && rip - SIM__NT_BASE < SIM__NT_SIZE;
}

/* The call instruction that returns to `ret`, or 0. */
static uint64_t call_site(sim_endpoint *ep, uint64_t ret)
{
    static const unsigned lengths[] = {5, 6, 2, 3, 4, 7};
    char text[96];

    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        uint64_t at = ret - lengths[i];
        if (sim__disasm_one(ep->cs, ep, at, text, sizeof text) == lengths[i] &&
            strncmp(text, "call", 4) == 0)
            return at;
    }
    return 0;
}

void sim__capture(sim_endpoint *ep, uint64_t addr, sim_access access)
{
    sim_outcome *out = ep->out;
    sim_fault *f = &out->fault;
    uint64_t rip;

    out->has_fault = true;
    read_regs(ep, &out->regs);
    if (ep->block_rip)
        out->regs.rip = ep->block_rip;
    rip = out->regs.rip;
    /* Raised inside nt on the driver's behalf: the driver's call is the fault. */
    if (in_nt_stubs(rip)) {
        uint64_t ret = 0;
        const sim_region *r = sim__region_at(ep, out->regs.rsp);
        if (r && out->regs.rsp + 8 <= r->base + r->size)
            memcpy(&ret, r->host + (out->regs.rsp - r->base), 8);
        uint64_t site = ret ? call_site(ep, ret) : 0;
        if (site)
            rip = site;
    }
    f->rip = rip;
    f->address = addr;
    f->access = access;
    f->address_class = sim_addr_classify(addr);
    f->irql = ep->irql;
    const sim_region *r = access != SIM_ACCESS_NONE ? sim__region_at(ep, addr) : NULL;
    snprintf(f->region, sizeof f->region, "%s", r ? r->name : "");
    sim__symbolize(ep, ep->image, ep->image_base, rip, f->module, sizeof f->module,
                   f->function, sizeof f->function, &f->offset);
    sim__disasm_one(ep->cs, ep, rip, f->instruction, sizeof f->instruction);
    out->ndisasm = sim__disasm_window(ep->cs, ep, ep->image, ep->image_base, rip,
                                      out->disasm, SIM_MAX_DISASM);
    out->nframes = sim__unwind(ep, ep->image, ep->image_base, &out->regs,
                               out->stack, SIM_MAX_FRAMES);
}

static void raise_bugcheck(sim_endpoint *ep, uint32_t code, uint64_t p1,
                           uint64_t p2, uint64_t p3, uint64_t p4)
{
    sim_outcome *out = ep->out;

    out->kind = SIM_OUTCOME_BUGCHECK;
    out->bugcheck = code;
    out->params[0] = p1;
    out->params[1] = p2;
    out->params[2] = p3;
    out->params[3] = p4;
    ep->stopped = true;
}

void sim__bugcheck(sim_endpoint *ep, uint32_t code, uint64_t p1, uint64_t p2,
                   uint64_t p3, uint64_t p4, const char *detail)
{
    if (ep->stopped)
        return;
    raise_bugcheck(ep, code, p1, p2, p3, p4);
    snprintf(ep->out->detail, sizeof ep->out->detail, "%s", detail ? detail : "");
    sim__capture(ep, 0, SIM_ACCESS_NONE);
}

/* EXCEPTION_RECORD and CONTEXT for a 0x7E/0x1E, where nt data holds them. */
static void write_exception(sim_endpoint *ep, uint32_t status, uint64_t rip,
                            uint64_t addr, sim_access access, uint64_t *exrec,
                            uint64_t *context)
{
    uint8_t rec[0x98] = {0}, ctx[0x100] = {0};
    sim_regs r;
    uint32_t nparams = 0;

    memcpy(rec + 0x00, &status, 4);
    memcpy(rec + 0x10, &rip, 8);
    if (status == SIM_STATUS_ACCESS_VIOLATION) {
        uint64_t kind = access == SIM_ACCESS_WRITE ? 1 : access == SIM_ACCESS_EXECUTE ? 8 : 0;
        nparams = 2;
        memcpy(rec + 0x20, &kind, 8);
        memcpy(rec + 0x28, &addr, 8);
    }
    memcpy(rec + 0x18, &nparams, 4);

    read_regs(ep, &r);
    uint32_t flags = 0x10000B; /* CONTEXT_AMD64 | CONTROL | INTEGER | SEGMENTS */
    uint32_t eflags = (uint32_t)r.rflags;
    uint64_t gpr[16] = {r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi,
                        r.r8,  r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15};
    memcpy(ctx + 0x30, &flags, 4);
    memcpy(ctx + 0x44, &eflags, 4);
    memcpy(ctx + 0x78, gpr, sizeof gpr);
    memcpy(ctx + 0xF8, &rip, 8);

    *exrec = SIM__NTDATA_BASE + EXREC_OFFSET;
    *context = SIM__NTDATA_BASE + CONTEXT_OFFSET;
    uint8_t *p = sim__ptr(ep, *exrec, sizeof rec, SIM_PROT_W);
    uint8_t *q = sim__ptr(ep, *context, sizeof ctx, SIM_PROT_W);
    if (p)
        memcpy(p, rec, sizeof rec);
    if (q)
        memcpy(q, ctx, sizeof ctx);
}

/* An unhandled exception in a system thread (PASSIVE) or at DISPATCH+. */
static void unhandled_exception(sim_endpoint *ep, uint32_t status, uint64_t addr,
                                sim_access access, const char *what)
{
    uint64_t rip = 0, exrec, context;

    uc_reg_read(ep->uc, UC_X86_REG_RIP, &rip);
    write_exception(ep, status, rip, addr, access, &exrec, &context);
    if (ep->irql >= 2)
        raise_bugcheck(ep, SIM_BUGCHECK_KMODE_EXCEPTION_NOT_HANDLED, status, rip, 0,
                       addr);
    else
        raise_bugcheck(ep, SIM_BUGCHECK_SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, status,
                       rip, exrec, context);
    snprintf(ep->out->detail, sizeof ep->out->detail,
             "unhandled exception 0x%08X (%s) at IRQL %u", status, what, ep->irql);
    sim__capture(ep, addr, access);
}

/* A fake but well-formed PTE for the page holding addr. */
static uint64_t pte_for(const sim_region *r, uint64_t addr)
{
    uint64_t pte = (((addr >> 12) & 0xFFFFFull) << 12) | 0x121; /* present, accessed */
    if (r->prot & SIM_PROT_W)
        pte |= 0x2;
    if (!(r->prot & SIM_PROT_X))
        pte |= 1ull << 63;
    return pte;
}

void sim__fault(sim_endpoint *ep, uint64_t addr, sim_access access)
{
    const sim_region *r;
    uint64_t rip = 0;
    char detail[192];

    if (ep->stopped)
        return;
    uc_reg_read(ep->uc, UC_X86_REG_RIP, &rip);
    r = sim__region_at(ep, addr);
    const char *verb = sim_access_name(access);

    if (r && access == SIM_ACCESS_EXECUTE) {
        raise_bugcheck(ep, SIM_BUGCHECK_ATTEMPTED_EXECUTE_OF_NOEXECUTE_MEMORY, addr,
                       pte_for(r, addr), 0, 0);
        snprintf(detail, sizeof detail, "execute of non-executable memory in %s", r->name);
    } else if (r && access == SIM_ACCESS_WRITE) {
        raise_bugcheck(ep, SIM_BUGCHECK_ATTEMPTED_WRITE_TO_READONLY_MEMORY, addr,
                       pte_for(r, addr), 0, 0);
        snprintf(detail, sizeof detail, "write to read-only memory in %s", r->name);
    } else if (addr >= SIM__STACK_GUARD - 0x10000 && addr < SIM__STACK_BASE) {
        /* The guard page below the kernel stack: the fault handler itself
         * cannot run on the exhausted stack, so the CPU double-faults. */
        raise_bugcheck(ep, SIM_BUGCHECK_UNEXPECTED_KERNEL_MODE_TRAP, 8, 0, 0, 0);
        snprintf(detail, sizeof detail, "kernel stack overflow (%s of the guard page)",
                 verb);
    } else {
        switch (sim_addr_classify(addr)) {
        case SIM_ADDR_NULL:
        case SIM_ADDR_USER:
            if (ep->irql >= 2) {
                uint64_t kind = access == SIM_ACCESS_WRITE     ? 1
                                : access == SIM_ACCESS_EXECUTE ? 8
                                                               : 0;
                raise_bugcheck(ep, SIM_BUGCHECK_DRIVER_IRQL_NOT_LESS_OR_EQUAL, addr,
                               ep->irql, kind, rip);
                snprintf(detail, sizeof detail, "%s of %s address at IRQL %u", verb,
                         sim_addr_class_name(sim_addr_classify(addr)), ep->irql);
                break;
            }
            unhandled_exception(ep, SIM_STATUS_ACCESS_VIOLATION, addr, access,
                                "access violation");
            return;
        case SIM_ADDR_NONCANONICAL:
            /* A non-canonical address is a #GP, not a page fault: Windows
             * reports it as an access violation at 0xffffffffffffffff. */
            unhandled_exception(ep, SIM_STATUS_ACCESS_VIOLATION, UINT64_MAX, access,
                                "general protection");
            return;
        case SIM_ADDR_KERNEL: {
            /* Parameter 2: 0 read, 2 write, 10 execute since Windows 10 1507;
             * 0 read, 1 write before.  Parameter 4: 2, no valid page table. */
            bool modern = ep->profile->build >= 10240;
            uint64_t kind = access == SIM_ACCESS_WRITE     ? (modern ? 2 : 1)
                            : access == SIM_ACCESS_EXECUTE ? (modern ? 10 : 8)
                                                           : 0;
            raise_bugcheck(ep, SIM_BUGCHECK_PAGE_FAULT_IN_NONPAGED_AREA, addr, kind,
                           rip, 2);
            snprintf(detail, sizeof detail, "%s of unmapped kernel address", verb);
            break;
        }
        }
    }
    snprintf(ep->out->detail, sizeof ep->out->detail, "%s", detail);
    sim__capture(ep, addr, access);
}

void sim__exception(sim_endpoint *ep, uint32_t vector)
{
    if (ep->stopped)
        return;
    switch (vector) {
    case 0:
        unhandled_exception(ep, SIM_STATUS_INTEGER_DIVIDE_BY_ZERO, 0, SIM_ACCESS_NONE,
                            "divide error");
        return;
    case 3:
        unhandled_exception(ep, SIM_STATUS_BREAKPOINT, 0, SIM_ACCESS_NONE,
                            "breakpoint without a debugger");
        return;
    case 6:
        unhandled_exception(ep, SIM_STATUS_ILLEGAL_INSTRUCTION, 0, SIM_ACCESS_NONE,
                            "invalid opcode");
        return;
    case 13:
        unhandled_exception(ep, SIM_STATUS_ACCESS_VIOLATION, UINT64_MAX,
                            SIM_ACCESS_NONE, "general protection");
        return;
    case 0x29:
        /* __fastfail(code): the code in ecx (3 a corrupt LIST_ENTRY, 2 a
         * stack cookie); parameters 2 and 3 are the trap frame and the
         * exception record, which fleetsim does not build (sim__arg 0 is
         * rcx). */
        raise_bugcheck(ep, SIM_BUGCHECK_KERNEL_SECURITY_CHECK_FAILURE,
                       (uint32_t)sim__arg(ep, 0), 0, 0, 0);
        snprintf(ep->out->detail, sizeof ep->out->detail, "__fastfail(%u)",
                 (unsigned)(uint32_t)sim__arg(ep, 0));
        sim__capture(ep, 0, SIM_ACCESS_NONE);
        return;
    case 0x2C:
        unhandled_exception(ep, SIM_STATUS_ASSERTION_FAILURE, 0, SIM_ACCESS_NONE,
                            "assertion failure (int 0x2c)");
        return;
    default:
        raise_bugcheck(ep, SIM_BUGCHECK_UNEXPECTED_KERNEL_MODE_TRAP, vector, 0, 0, 0);
        snprintf(ep->out->detail, sizeof ep->out->detail, "CPU exception vector %u",
                 vector);
        sim__capture(ep, 0, SIM_ACCESS_NONE);
        return;
    }
}

void sim__stuck(sim_endpoint *ep)
{
    sim_outcome *out = ep->out;

    if (ep->stopped)
        return;
    if (ep->irql >= 2) {
        /* Arg1 1: cumulative time at DISPATCH_LEVEL; Arg2: the watchdog period. */
        raise_bugcheck(ep, SIM_BUGCHECK_DPC_WATCHDOG_VIOLATION, 1, 0x1E00,
                       SIM__NTDATA_BASE + 0x7000, 0);
        snprintf(out->detail, sizeof out->detail,
                 "no return after %llu instructions at IRQL %u",
                 (unsigned long long)ep->call_insns, ep->irql);
    } else {
        out->kind = SIM_OUTCOME_HANG;
        ep->stopped = true;
        snprintf(out->detail, sizeof out->detail,
                 "no return after %llu instructions at PASSIVE_LEVEL: the machine "
                 "stops responding",
                 (unsigned long long)ep->call_insns);
    }
    sim__capture(ep, 0, SIM_ACCESS_NONE);
}
