/*
 * unwind.c — the guest's call stack, as WinDbg would print it in a crash
 * record: virtual unwinding with the image's .pdata/.xdata, and names for
 * code addresses (module!function+offset).
 *
 * The unwinder is the x64 one of RtlVirtualUnwind, cut to what a crash
 * record needs: it restores RSP, RIP and the nonvolatile integer registers
 * (frames further up need RBP and friends when they use a frame pointer) and
 * ignores XMM saves and exception handlers.  Unwind data is read from the
 * image's file bytes, not from guest memory: code and read-only data do not
 * change during a run, and a driver that scribbles over its own .xdata must
 * not be able to mislead the crash record.  Stack memory is read through the
 * endpoint's region map (host pointers), never through Unicorn, so unwinding
 * works from inside hooks and cannot fault.  Every step is bounded: frames by
 * `max`, chains by UNWIND_MAX_CHAIN, and the stack must grow upward.
 */
#include <stdio.h>
#include <string.h>

#include "sim-internal.h"

#define UNW_FLAG_CHAININFO 0x4u
#define UNWIND_MAX_CHAIN 32
#define UNWIND_RSP 4

enum {
    UWOP_PUSH_NONVOL = 0,
    UWOP_ALLOC_LARGE = 1,
    UWOP_ALLOC_SMALL = 2,
    UWOP_SET_FPREG = 3,
    UWOP_SAVE_NONVOL = 4,
    UWOP_SAVE_NONVOL_FAR = 5,
    UWOP_EPILOG = 6,         /* version 2; SAVE_XMM in version 1 */
    UWOP_SPARE_CODE = 7,     /* SAVE_XMM_FAR in version 1 */
    UWOP_SAVE_XMM128 = 8,
    UWOP_SAVE_XMM128_FAR = 9,
    UWOP_PUSH_MACHFRAME = 10
};

/* Registers in unwind-code numbering: RAX RCX RDX RBX RSP RBP RSI RDI R8-R15. */
typedef struct unwind_context {
    uint64_t reg[16];
    uint64_t rip;
} unwind_context;

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* File bytes of [rva, rva+n) when one section's raw data holds them. */
static const uint8_t *image_bytes(const sim_image *img, uint64_t rva, uint64_t n)
{
    for (size_t i = 0; i < img->nsections; i++) {
        const sim_section *s = &img->sections[i];
        if (rva >= s->rva && rva + n <= (uint64_t)s->rva + s->raw_size &&
            (uint64_t)s->raw_offset + s->raw_size <= img->file_size)
            return img->file + s->raw_offset + (rva - s->rva);
    }
    return NULL;
}

static bool read_stack(const sim_endpoint *ep, uint64_t addr, uint64_t *value)
{
    if (!ep)
        return false;
    const sim_region *r = sim__region_at(ep, addr);
    if (!r || !r->host || addr < r->base || addr - r->base >= r->size ||
        r->size - (addr - r->base) < 8)
        return false;
    memcpy(value, r->host + (addr - r->base), 8);
    return true;
}

static bool canonical(uint64_t addr)
{
    uint64_t top = addr >> 47;
    return top == 0 || top == 0x1ffff;
}

static unsigned code_slots(unsigned op, unsigned info)
{
    switch (op) {
    case UWOP_ALLOC_LARGE:
        return info == 0 ? 2 : 3;
    case UWOP_SAVE_NONVOL:
    case UWOP_EPILOG:
    case UWOP_SAVE_XMM128:
        return 2;
    case UWOP_SAVE_NONVOL_FAR:
    case UWOP_SPARE_CODE:
    case UWOP_SAVE_XMM128_FAR:
        return 3;
    default:
        return 1;
    }
}

/*
 * Undo one UNWIND_INFO's codes.  `limit` is how far into the prolog RIP is:
 * codes describing instructions past it have not run and are skipped
 * (UINT32_MAX: the prolog is complete).  On a chain, *next is the chained
 * RUNTIME_FUNCTION's unwind rva.
 */
static bool apply_info(const sim_endpoint *ep, const sim_image *img, unwind_context *c,
                       uint32_t info_rva, uint32_t pc_offset, bool *machframe,
                       bool *chained, uint32_t *next)
{
    const uint8_t *h = image_bytes(img, info_rva, 4);
    if (!h)
        return false;
    unsigned version = h[0] & 7, flags = h[0] >> 3, prolog = h[1], count = h[2];
    unsigned freg = h[3] & 15, foff = h[3] >> 4;
    if (version != 1 && version != 2)
        return false;
    const uint8_t *codes = image_bytes(img, (uint64_t)info_rva + 4, 2ull * count);
    if (count > 0 && !codes)
        return false;
    uint32_t limit = pc_offset < prolog ? pc_offset : UINT32_MAX;

    /*
     * Offsets of SAVE_NONVOL are from the fixed allocation's base: RSP, or
     * with a frame register, where RSP was when the frame register was set.
     */
    uint64_t frame = c->reg[UNWIND_RSP];
    if (freg != 0) {
        for (unsigned i = 0; i < count; i += code_slots(codes[2 * i + 1] & 15,
                                                        codes[2 * i + 1] >> 4))
            if ((codes[2 * i + 1] & 15) == UWOP_SET_FPREG && codes[2 * i] <= limit)
                frame = c->reg[freg] - 16ull * foff;
    }

    for (unsigned i = 0; i < count;) {
        unsigned at = codes[2 * i], op = codes[2 * i + 1] & 15, info = codes[2 * i + 1] >> 4;
        unsigned slots = code_slots(op, info);
        if (i + slots > count)
            return false;
        const uint8_t *arg = codes + 2 * (i + 1);
        i += slots;
        if (at > limit)
            continue;
        uint64_t v;
        switch (op) {
        case UWOP_PUSH_NONVOL:
            if (!read_stack(ep, c->reg[UNWIND_RSP], &v))
                return false;
            c->reg[UNWIND_RSP] += 8;
            c->reg[info] = v;
            break;
        case UWOP_ALLOC_LARGE:
            if (info > 1)
                return false;
            c->reg[UNWIND_RSP] += info == 0 ? 8ull * rd16(arg) : rd32(arg);
            break;
        case UWOP_ALLOC_SMALL:
            c->reg[UNWIND_RSP] += 8ull * info + 8;
            break;
        case UWOP_SET_FPREG:
            if (freg == 0)
                return false;
            c->reg[UNWIND_RSP] = c->reg[freg] - 16ull * foff;
            break;
        case UWOP_SAVE_NONVOL:
        case UWOP_SAVE_NONVOL_FAR:
            if (!read_stack(ep, frame + (op == UWOP_SAVE_NONVOL ? 8ull * rd16(arg)
                                                                  : rd32(arg)), &v))
                return false;
            c->reg[info] = v;
            break;
        case UWOP_EPILOG:
        case UWOP_SPARE_CODE:
        case UWOP_SAVE_XMM128:
        case UWOP_SAVE_XMM128_FAR:
            break; /* no integer state to restore */
        case UWOP_PUSH_MACHFRAME: {
            uint64_t base = c->reg[UNWIND_RSP] + (info ? 8 : 0), rsp;
            if (!read_stack(ep, base, &v) || !read_stack(ep, base + 24, &rsp))
                return false;
            c->rip = v;
            c->reg[UNWIND_RSP] = rsp;
            *machframe = true;
            break;
        }
        default:
            return false;
        }
    }

    *chained = (flags & UNW_FLAG_CHAININFO) != 0;
    if (*chained) {
        const uint8_t *rf = image_bytes(img, (uint64_t)info_rva + 4 + 2ull * ((count + 1) & ~1u),
                                        12);
        if (!rf)
            return false;
        *next = rd32(rf + 8);
    }
    return true;
}

/*
 * An epilog at RIP (add/lea rsp; pop…; ret) has already undone part of the
 * prolog, so the unwind codes no longer describe the stack: emulate the rest
 * of the epilog instead, as RtlVirtualUnwind does.  Only RIP of the innermost
 * frame can be in an epilog.
 */
static bool unwind_epilog(const sim_endpoint *ep, const sim_image *img, unwind_context *c,
                          uint32_t rva, unsigned freg, bool *done)
{
    *done = false;
    const uint8_t *p = NULL;
    uint64_t n = 0;
    for (uint64_t want = 32; want > 0 && !p; want--)
        if ((p = image_bytes(img, rva, want)))
            n = want;
    if (!p)
        return true;

    uint64_t rsp = c->reg[UNWIND_RSP];
    size_t i = 0;
    if (n >= 4 && p[0] == 0x48 && p[1] == 0x83 && p[2] == 0xc4) {
        rsp += p[3];
        i = 4;
    } else if (n >= 7 && p[0] == 0x48 && p[1] == 0x81 && p[2] == 0xc4) {
        rsp += rd32(p + 3);
        i = 7;
    } else if (n >= 4 && (p[0] & 0xfe) == 0x48 && p[1] == 0x8d && freg != 0 &&
               ((p[2] >> 3) & 7) == UNWIND_RSP && (p[2] & 7) == (freg & 7) &&
               (unsigned)(p[0] & 1) == (freg >> 3) && (p[2] >> 6) != 0 &&
               (p[2] >> 6) != 3 && (p[2] & 7) != 4) {
        bool disp32 = (p[2] >> 6) == 2;
        if (n < (disp32 ? 7u : 4u))
            return true;
        int64_t disp = disp32 ? (int32_t)rd32(p + 3) : (int8_t)p[3];
        rsp = c->reg[freg] + (uint64_t)disp;
        i = disp32 ? 7 : 4;
    }
    /* Check the whole shape before touching the context. */
    size_t j = i;
    while (j < n) {
        if (p[j] >= 0x58 && p[j] <= 0x5f)
            j += 1;
        else if (j + 1 < n && p[j] == 0x41 && p[j + 1] >= 0x58 && p[j + 1] <= 0x5f)
            j += 2;
        else
            break;
    }
    bool ret = j < n && p[j] == 0xc3;
    bool rep_ret = j + 1 < n && p[j] == 0xf3 && p[j + 1] == 0xc3;
    if (!ret && !rep_ret)
        return true;

    unwind_context t = *c;
    while (i < j) {
        unsigned reg = p[i] == 0x41 ? 8u + (p[i + 1] - 0x58u) : p[i] - 0x58u;
        i += p[i] == 0x41 ? 2 : 1;
        uint64_t v;
        if (!read_stack(ep, rsp, &v))
            return false;
        rsp += 8;
        t.reg[reg] = v;
    }
    if (!read_stack(ep, rsp, &t.rip))
        return false;
    t.reg[UNWIND_RSP] = rsp + 8;
    *c = t;
    *done = true;
    return true;
}

/* Unwind the frame whose RIP is c->rip to its caller's; false: stop. */
static bool unwind_frame(const sim_endpoint *ep, const sim_image *img, uint64_t base,
                         unwind_context *c, bool innermost)
{
    const sim_runtime_function *f = NULL;
    uint64_t rva = c->rip - base;
    if (img && c->rip >= base && rva < img->size_of_image) {
        /* A return address may be the first byte after its function. */
        f = sim_image_function_at(img, (uint32_t)(innermost ? rva : rva - 1));
    }
    if (!f) {
        uint64_t ret;
        if (!read_stack(ep, c->reg[UNWIND_RSP], &ret))
            return false;
        c->rip = ret;
        c->reg[UNWIND_RSP] += 8;
        return true;
    }

    /* A low bit in UnwindData points at another RUNTIME_FUNCTION. */
    uint32_t begin = f->begin, info = f->unwind;
    for (int depth = 0; info & 1u; depth++) {
        const uint8_t *rf = image_bytes(img, info & ~1u, 12);
        if (!rf || depth >= UNWIND_MAX_CHAIN)
            return false;
        begin = rd32(rf);
        info = rd32(rf + 8);
    }
    uint32_t pc_offset = rva >= begin ? (uint32_t)(rva - begin) : 0;

    if (innermost) {
        const uint8_t *h = image_bytes(img, info, 4);
        bool done;
        if (!h || !unwind_epilog(ep, img, c, (uint32_t)rva, h[3] & 15, &done))
            return false;
        if (done)
            return true;
    }

    bool machframe = false;
    for (int depth = 0;; depth++) {
        bool chained = false;
        uint32_t next = 0;
        if (depth >= UNWIND_MAX_CHAIN ||
            !apply_info(ep, img, c, info, pc_offset, &machframe, &chained, &next))
            return false;
        if (!chained)
            break;
        info = next & ~1u;
        pc_offset = UINT32_MAX; /* a chained parent's prolog has run */
    }
    if (machframe)
        return true;
    uint64_t ret;
    if (!read_stack(ep, c->reg[UNWIND_RSP], &ret))
        return false;
    c->rip = ret;
    c->reg[UNWIND_RSP] += 8;
    return true;
}

static void fill_frame(const sim_endpoint *ep, const sim_image *img, uint64_t base,
                       const unwind_context *c, bool innermost, sim_frame *frame)
{
    memset(frame, 0, sizeof *frame);
    frame->rip = c->rip;
    frame->rsp = c->reg[UNWIND_RSP];
    /*
     * Name a return address by the call before it, as debuggers do.  nt's
     * stubs are never callers: a frame there was entered by a return (the
     * host's return trap), so it is named as it is.
     */
    bool in_nt = c->rip >= SIM__NT_BASE && c->rip - SIM__NT_BASE < SIM__NT_SIZE;
    uint64_t at = innermost || in_nt || c->rip == 0 ? c->rip : c->rip - 1;
    sim__symbolize(ep, img, base, at, frame->module, sizeof frame->module,
                   frame->function, sizeof frame->function, &frame->offset);
    frame->offset += c->rip - at;
}

int sim__unwind(const sim_endpoint *ep, const sim_image *image, uint64_t image_base,
                const sim_regs *regs, sim_frame *frames, int max)
{
    if (!regs || !frames || max <= 0)
        return 0;
    unwind_context c = {
        .reg = {regs->rax, regs->rcx, regs->rdx, regs->rbx, regs->rsp, regs->rbp,
                regs->rsi, regs->rdi, regs->r8, regs->r9, regs->r10, regs->r11,
                regs->r12, regs->r13, regs->r14, regs->r15},
        .rip = regs->rip,
    };
    int n = 0;
    fill_frame(ep, image, image_base, &c, true, &frames[n++]);
    while (n < max) {
        /* The host's return trap: nothing of the guest's lies beyond it. */
        if (c.rip >= SIM__NT_BASE && c.rip < SIM__NT_BASE + SIM__NT_STUB_SIZE)
            break;
        uint64_t rsp = c.reg[UNWIND_RSP];
        if (!unwind_frame(ep, image, image_base, &c, n == 1))
            break;
        if (c.rip == 0 || !canonical(c.rip) || c.reg[UNWIND_RSP] <= rsp)
            break;
        fill_frame(ep, image, image_base, &c, false, &frames[n++]);
    }
    return n;
}

/* ---- naming code addresses ---------------------------------------------- */

static void name_frame(char *module, size_t module_max, const char *mod, char *function,
                       size_t function_max, const char *fn)
{
    if (module && module_max > 0)
        snprintf(module, module_max, "%s", mod);
    if (function && function_max > 0)
        snprintf(function, function_max, "%s", fn);
}

void sim__symbolize(const sim_endpoint *ep, const sim_image *image, uint64_t image_base,
                    uint64_t rip, char *module, size_t module_max, char *function,
                    size_t function_max, uint64_t *offset)
{
    uint64_t off = rip;
    const char *mod = "", *fn = "unknown_function";

    if (image && rip >= image_base && rip - image_base < image->size_of_image) {
        uint32_t rva = (uint32_t)(rip - image_base);
        mod = image->module;
        off = rva;
        /*
         * The nearest symbol before RIP names it only when it lies in the
         * same code section and, where .pdata knows the function, inside it:
         * a static helper without a symbol must not borrow its neighbour's.
         */
        const sim_symbol *sym = sim_image_symbol_at(image, rva);
        const sim_section *sec = sim_image_section_at(image, rva);
        const sim_runtime_function *f = sim_image_function_at(image, rva);
        if (sym && sec && (sec->prot & SIM_PROT_X) && sym->rva >= sec->rva &&
            (!f || sym->rva >= f->begin)) {
            fn = sym->name;
            off = rva - sym->rva;
        }
    } else if (rip >= SIM__NT_BASE && rip - SIM__NT_BASE < SIM__NT_SIZE) {
        uint64_t index = (rip - SIM__NT_BASE) / SIM__NT_STUB_SIZE;
        mod = "nt";
        off = rip - SIM__NT_BASE;
        if (index == SIM__STUB_RETURN) {
            fn = "KiReturnTrap";
            off = rip - SIM__NT_BASE;
        } else if (index >= SIM__STUB_FIRST_API &&
                   index - SIM__STUB_FIRST_API < sim_kapi_count()) {
            const char *name = sim__kapi_name_at((unsigned)(index - SIM__STUB_FIRST_API));
            if (name) {
                fn = name;
                off = rip - (SIM__NT_BASE + index * SIM__NT_STUB_SIZE);
            }
        }
    }
    (void)ep;
    name_frame(module, module_max, mod, function, function_max, fn);
    if (offset)
        *offset = off;
}
