/*
 * disasm.c — capstone over guest code, for crash records and budgets.
 *
 * Code bytes are read from the host memory behind the engine's regions, so
 * disassembling never touches Unicorn and never faults.  x86 cannot be
 * decoded backwards, so a window ending at RIP is found by decoding forward
 * from a known instruction boundary: the start of the .pdata function that
 * holds RIP when the image has one, else the earliest point in the 96 bytes
 * before RIP whose decoding lands exactly on RIP.
 */
#include <stdio.h>
#include <string.h>

#include "engine-internal.h"

#define WINDOW_BACK 96u
#define MAX_SCAN 4096u

/* Host bytes at addr: up to `want`, within one executable-or-not region. */
static const uint8_t *code_at(const sim_endpoint *ep, uint64_t addr,
                              size_t want, size_t *got)
{
    const sim_region *r = sim__region_at(ep, addr);

    if (!r) {
        *got = 0;
        return NULL;
    }
    uint64_t avail = r->size - (addr - r->base);
    *got = want < avail ? want : (size_t)avail;
    return r->host + (addr - r->base);
}

static void format_insn(const cs_insn *insn, char *text, size_t max)
{
    if (insn->op_str[0])
        snprintf(text, max, "%s %s", insn->mnemonic, insn->op_str);
    else
        snprintf(text, max, "%s", insn->mnemonic);
}

size_t sim__disasm_one(csh cs, const sim_endpoint *ep, uint64_t addr,
                       char *text, size_t max)
{
    size_t n;
    const uint8_t *code = code_at(ep, addr, 16, &n);
    cs_insn *insn;

    if (max)
        text[0] = '\0';
    if (!code || cs_disasm(cs, code, n, addr, 1, &insn) != 1)
        return 0;
    format_insn(insn, text, max);
    size_t len = insn->size;
    cs_free(insn, 1);
    return len;
}

/* Decode [start, rip] into a ring of the last `max`; -1 unless it lands on rip. */
static int window_from(csh cs, const sim_endpoint *ep, uint64_t start,
                       uint64_t rip, sim_insn *insns, int max)
{
    size_t n;
    const uint8_t *code = code_at(ep, start, (size_t)(rip - start) + 16, &n);
    cs_insn *insn = NULL;
    int count = 0;

    if (!code)
        return -1;
    insn = cs_malloc(cs);
    if (!insn)
        return -1;
    const uint8_t *p = code;
    uint64_t addr = start;
    bool landed = false;
    while (addr <= rip && cs_disasm_iter(cs, &p, &n, &addr, insn)) {
        sim_insn *slot = &insns[count % max];
        slot->address = insn->address;
        format_insn(insn, slot->text, sizeof slot->text);
        count++;
        if (insn->address == rip) {
            landed = true;
            break;
        }
    }
    cs_free(insn, 1);
    if (!landed)
        return -1;
    /* Unroll the ring so insns[0..k) is in address order. */
    if (count > max) {
        sim_insn tmp[SIM_MAX_DISASM];
        int k = max <= SIM_MAX_DISASM ? max : SIM_MAX_DISASM;
        for (int i = 0; i < k; i++)
            tmp[i] = insns[(count + i) % max];
        memcpy(insns, tmp, (size_t)k * sizeof *tmp);
        return k;
    }
    return count;
}

int sim__disasm_window(csh cs, const sim_endpoint *ep, const sim_image *image,
                       uint64_t image_base, uint64_t rip, sim_insn *insns,
                       int max)
{
    if (max <= 0)
        return 0;
    if (max > SIM_MAX_DISASM)
        max = SIM_MAX_DISASM;
    if (image && rip >= image_base && rip - image_base < image->size_of_image) {
        const sim_runtime_function *f =
            sim_image_function_at(image, (uint32_t)(rip - image_base));
        if (f && rip - (image_base + f->begin) <= MAX_SCAN) {
            int k = window_from(cs, ep, image_base + f->begin, rip, insns, max);
            if (k > 0)
                return k;
        }
    }
    const sim_region *r = sim__region_at(ep, rip);
    if (!r)
        return 0;
    uint64_t lowest = rip - r->base < WINDOW_BACK ? r->base : rip - WINDOW_BACK;
    for (uint64_t start = lowest; start <= rip; start++) {
        int k = window_from(cs, ep, start, rip, insns, max);
        if (k > 0)
            return k;
    }
    return 0;
}

uint32_t sim__count_insns(csh cs, const sim_endpoint *ep, uint64_t addr,
                          uint32_t size)
{
    size_t n;
    const uint8_t *code = code_at(ep, addr, size, &n);
    cs_insn *insn;
    uint32_t count = 0;

    if (!code)
        return 1;
    insn = cs_malloc(cs);
    if (!insn)
        return 1;
    while (cs_disasm_iter(cs, &code, &n, &addr, insn))
        count++;
    cs_free(insn, 1);
    return count ? count : 1;
}

/* ---- the faulting instruction of a block --------------------------------- */

/* Capstone's 64-bit GPRs and RIP, as Unicorn numbers them. */
static int uc_reg_of(x86_reg r)
{
    static const struct { x86_reg cs; int uc; } MAP[] = {
        {X86_REG_RAX, UC_X86_REG_RAX}, {X86_REG_RCX, UC_X86_REG_RCX},
        {X86_REG_RDX, UC_X86_REG_RDX}, {X86_REG_RBX, UC_X86_REG_RBX},
        {X86_REG_RSP, UC_X86_REG_RSP}, {X86_REG_RBP, UC_X86_REG_RBP},
        {X86_REG_RSI, UC_X86_REG_RSI}, {X86_REG_RDI, UC_X86_REG_RDI},
        {X86_REG_R8, UC_X86_REG_R8},   {X86_REG_R9, UC_X86_REG_R9},
        {X86_REG_R10, UC_X86_REG_R10}, {X86_REG_R11, UC_X86_REG_R11},
        {X86_REG_R12, UC_X86_REG_R12}, {X86_REG_R13, UC_X86_REG_R13},
        {X86_REG_R14, UC_X86_REG_R14}, {X86_REG_R15, UC_X86_REG_R15},
    };
    for (size_t i = 0; i < sizeof MAP / sizeof MAP[0]; i++)
        if (MAP[i].cs == r)
            return MAP[i].uc;
    return -1;
}

/* Instructions whose memory operand does not show the bytes they touch:
 * a register bit offset (bt* reg), an implicit table (xlat), the frame
 * (enter, leave), state areas far larger than the operand's size. */
static bool hidden_access(const cs_insn *insn)
{
    static const unsigned IDS[] = {
        X86_INS_XLATB,     X86_INS_LEAVE,      X86_INS_ENTER,    X86_INS_FXSAVE,
        X86_INS_FXSAVE64,  X86_INS_XSAVE,      X86_INS_XSAVE64,  X86_INS_XSAVEOPT,
        X86_INS_XSAVEOPT64, X86_INS_XSAVEC,    X86_INS_XSAVEC64, X86_INS_XSAVES,
        X86_INS_XSAVES64,  X86_INS_FNSAVE,     X86_INS_FNSTENV,  X86_INS_FLDENV,
        X86_INS_FRSTOR,    X86_INS_XRSTOR,     X86_INS_XRSTOR64, X86_INS_XRSTORS,
        X86_INS_XRSTORS64, X86_INS_FXRSTOR,    X86_INS_FXRSTOR64, X86_INS_SGDT,
        X86_INS_SIDT,      X86_INS_LGDT,       X86_INS_LIDT,
    };
    for (size_t i = 0; i < sizeof IDS / sizeof IDS[0]; i++)
        if (insn->id == IDS[i])
            return true;
    const cs_x86 *x = &insn->detail->x86;
    bool bit_test = insn->id == X86_INS_BT || insn->id == X86_INS_BTS ||
                    insn->id == X86_INS_BTR || insn->id == X86_INS_BTC;
    return bit_test && x->op_count == 2 && x->operands[0].type == X86_OP_MEM &&
           x->operands[1].type == X86_OP_REG;
}

static bool implicit_reg(const cs_detail *d, x86_reg r)
{
    for (uint8_t i = 0; i < d->regs_read_count; i++)
        if (d->regs_read[i] == r)
            return true;
    for (uint8_t i = 0; i < d->regs_write_count; i++)
        if (d->regs_write[i] == r)
            return true;
    return false;
}

/*
 * Which instruction of the block at `block` touched `addr`.  Unicorn keeps
 * the general registers exact at a memory fault (TCG writes guest registers
 * back before any access that may fault) but not RIP, so each memory
 * operand's address is computed from the registers as they are now.  When
 * the operands show every access an instruction makes, the faulting
 * instruction's matches `addr`; another's may match by chance (it ran
 * before, or would run after, with other register values).  A block with
 * two matches, or with an access its operands do not show (the stack near
 * RSP, string instructions, segment bases, hidden_access), is "not sure",
 * and the caller replays the run on the tracer.
 */
bool sim__locate_fault(csh cs, const sim_endpoint *ep, uint64_t block, uint32_t size,
                       uint64_t addr, uint64_t *rip)
{
    size_t n;
    const uint8_t *code = code_at(ep, block, size, &n);
    if (!code || cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK)
        return false;
    cs_insn *insn = cs_malloc(cs);
    if (!insn) {
        cs_option(cs, CS_OPT_DETAIL, CS_OPT_OFF);
        return false;
    }
    uint64_t at = block, rsp = sim__reg(ep->uc, UC_X86_REG_RSP);
    int matches = 0;
    bool unsure = false;
    while (!unsure && cs_disasm_iter(cs, &code, &n, &at, insn)) {
        const cs_detail *d = insn->detail;
        const cs_x86 *x = &d->x86;
        if (implicit_reg(d, X86_REG_RSP) && addr + 256 >= rsp && addr <= rsp + 256)
            unsure = true; /* push, pop, call, ret, ... near the stack */
        if (implicit_reg(d, X86_REG_RSI) || implicit_reg(d, X86_REG_RDI) ||
            implicit_reg(d, X86_REG_ESI) || implicit_reg(d, X86_REG_EDI))
            unsure = true; /* string instructions */
        if (hidden_access(insn))
            unsure = true;
        if (insn->id == X86_INS_LEA || insn->id == X86_INS_NOP || insn->id == X86_INS_CLFLUSH ||
            insn->id == X86_INS_CLFLUSHOPT || insn->id == X86_INS_CLWB ||
            insn->id == X86_INS_INVLPG ||
            (insn->id >= X86_INS_PREFETCH && insn->id <= X86_INS_PREFETCHW))
            continue; /* an address, not an access that can fault */
        for (uint8_t i = 0; i < x->op_count && !unsure; i++) {
            const cs_x86_op *op = &x->operands[i];
            if (op->type != X86_OP_MEM)
                continue;
            uint64_t base = 0, index = 0;
            if (op->mem.segment != X86_REG_INVALID) {
                unsure = true;
                break;
            }
            if (op->mem.base == X86_REG_RIP) {
                base = insn->address + insn->size;
            } else if (op->mem.base != X86_REG_INVALID) {
                int id = uc_reg_of(op->mem.base);
                if (id < 0) {
                    unsure = true;
                    break;
                }
                base = sim__reg(ep->uc, id);
            }
            if (op->mem.index != X86_REG_INVALID) {
                int id = uc_reg_of(op->mem.index);
                if (id < 0) {
                    unsure = true;
                    break;
                }
                index = sim__reg(ep->uc, id);
            }
            uint64_t ea = base + index * (uint64_t)op->mem.scale + (uint64_t)op->mem.disp;
            uint64_t len = op->size ? op->size : 1;
            if (addr - ea < len) {
                matches++;
                *rip = insn->address;
            }
        }
    }
    cs_free(insn, 1);
    cs_option(cs, CS_OPT_DETAIL, CS_OPT_OFF);
    return !unsure && matches == 1;
}
