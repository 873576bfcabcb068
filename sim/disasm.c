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

#include "sim-internal.h"

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
