/*
 * memory.c — guest memory as the emulated kernel (nt) touches it.
 *
 * Every region an engine maps is backed by host memory the engine owns
 * (uc_mem_map_ptr), so kernel API code reads and writes guest memory by
 * plain memcpy after a bounds and protection check against the region map —
 * no Unicorn call, no copy through the emulator.  An access that a real
 * kernel would fault on raises the same fault here (sim__fault), with RIP at
 * the API's stub, so a driver passing a bad pointer to memcpy crashes in
 * nt!memcpy as it would on Windows.
 */
#include <string.h>

#include "sim-internal.h"

const sim_region *sim__region_at(const sim_endpoint *ep, uint64_t addr)
{
    size_t lo = 0, hi = ep->nregions;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sim_region *r = &ep->regions[mid];
        if (addr < r->base)
            hi = mid;
        else if (addr - r->base >= r->size)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

/*
 * Kernel routines work on the driver's memory for it (memcpy, strlen,
 * RtlCompareMemory): the bytes they touch count against the call's
 * instruction budget, eight to an instruction, so a driver looping on
 * strlen over its pool is stopped like one looping in its own code (a hang,
 * or 0x133 at DISPATCH_LEVEL).  Virtual time (out->instructions) stays the
 * guest's own count.
 */
bool sim__charge(sim_endpoint *ep, uint64_t n)
{
    ep->api_bytes += n; /* a byte at a time adds up too */
    ep->call_insns += ep->api_bytes / 8;
    ep->api_bytes %= 8;
    if (ep->call_insns <= ep->budget)
        return true;
    sim__stuck(ep);
    return false;
}

uint8_t *sim__ptr(sim_endpoint *ep, uint64_t addr, size_t n, uint32_t prot)
{
    const sim_region *r = sim__region_at(ep, addr);

    if (!r || (r->prot & prot) != prot)
        return NULL;
    if (n > r->size - (addr - r->base))
        return NULL;
    return r->host + (addr - r->base);
}

/*
 * Copy between guest and host across region boundaries: a buffer may span
 * two adjacent regions (two sections of one image).  Returns the first guest
 * address that could not be accessed, or 0 when all of it could.
 */
static uint64_t copy_guest(sim_endpoint *ep, uint64_t addr, uint8_t *host,
                           size_t n, bool write)
{
    uint32_t prot = write ? SIM_PROT_W : SIM_PROT_R;

    while (n > 0) {
        const sim_region *r = sim__region_at(ep, addr);
        if (!r || !(r->prot & prot))
            return addr ? addr : 1; /* 0 means success: report NULL as 1 */
        uint64_t avail = r->size - (addr - r->base);
        size_t chunk = n < avail ? n : (size_t)avail;
        uint8_t *g = r->host + (addr - r->base);
        if (write)
            memcpy(g, host, chunk);
        else
            memcpy(host, g, chunk);
        host += chunk;
        addr += chunk;
        n -= chunk;
    }
    return 0;
}

int sim__read(sim_endpoint *ep, uint64_t addr, void *dst, size_t n)
{
    if (ep->stopped || !sim__charge(ep, n))
        return -1;
    if (n == 0)
        return 0;
    uint64_t bad = copy_guest(ep, addr, dst, n, false);
    if (bad) {
        sim__fault(ep, addr == 0 ? 0 : bad, SIM_ACCESS_READ);
        return -1;
    }
    return 0;
}

int sim__write(sim_endpoint *ep, uint64_t addr, const void *src, size_t n)
{
    if (ep->stopped || !sim__charge(ep, n))
        return -1;
    if (n == 0)
        return 0;
    uint64_t bad = copy_guest(ep, addr, (uint8_t *)src, n, true);
    if (bad) {
        sim__fault(ep, addr == 0 ? 0 : bad, SIM_ACCESS_WRITE);
        return -1;
    }
    return 0;
}

int sim__read_cstr(sim_endpoint *ep, uint64_t addr, char *dst, size_t max)
{
    size_t i = 0;

    if (max == 0)
        return -1;
    for (;;) {
        char c;
        if (sim__read(ep, addr + i, &c, 1) < 0)
            return -1;
        if (c == '\0' || i + 1 == max) {
            dst[i] = '\0';
            return 0;
        }
        dst[i++] = c;
    }
}

int sim__read_wstr(sim_endpoint *ep, uint64_t addr, uint16_t *dst, size_t max)
{
    size_t i = 0;

    if (max == 0)
        return -1;
    for (;;) {
        uint16_t c;
        if (sim__read(ep, addr + 2 * i, &c, 2) < 0)
            return -1;
        if (c == 0 || i + 1 == max) {
            dst[i] = 0;
            return 0;
        }
        dst[i++] = c;
    }
}

int sim__read_unicode_string(sim_endpoint *ep, uint64_t addr, char *dst,
                             size_t max)
{
    /* UNICODE_STRING: USHORT Length, USHORT MaximumLength, PWSTR Buffer. */
    uint8_t us[16];
    uint16_t len;
    uint64_t buf;
    size_t o = 0;

    if (max == 0)
        return -1;
    if (sim__read(ep, addr, us, sizeof us) < 0)
        return -1;
    memcpy(&len, us, 2);
    memcpy(&buf, us + 8, 8);
    for (size_t i = 0; i < len / 2u && o + 1 < max; i++) {
        uint16_t c;
        if (sim__read(ep, buf + 2 * i, &c, 2) < 0)
            return -1;
        dst[o++] = c < 0x80 ? (char)c : '?';
    }
    dst[o] = '\0';
    return 0;
}

void sim__log(sim_endpoint *ep, const char *text, size_t n)
{
    sim_outcome *out = ep->out;
    size_t room = SIM_LOG_SIZE - 1 - out->loglen;

    if (n > room) {
        n = room;
        out->log_truncated = true;
    }
    memcpy(out->log + out->loglen, text, n);
    out->loglen += n;
    out->log[out->loglen] = '\0';
}
