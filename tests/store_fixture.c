/*
 * store_fixture.c — see store_fixture.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store_fixture.h"

void fill_frame(sim_frame *fr, const char *module, const char *function,
                       uint64_t offset, uint64_t rip)
{
    memset(fr, 0, sizeof *fr);
    snprintf(fr->module, sizeof fr->module, "%s", module);
    snprintf(fr->function, sizeof fr->function, "%s", function);
    fr->offset = offset;
    fr->rip = rip;
    fr->rsp = 0xffffd00000001000ull;
}

sim_outcome *crash_at(uint64_t base, const char *function, uint64_t offset)
{
    sim_outcome *o = calloc(1, sizeof *o);
    assert_non_null(o);
    o->kind = SIM_OUTCOME_BUGCHECK;
    o->image_base = base;
    o->bugcheck = 0x50;
    o->params[0] = 0xffff840500000074ull;
    o->params[2] = base + 0x1000 + offset;
    o->params[3] = 2;
    o->has_fault = true;
    o->fault.rip = base + 0x1000 + offset;
    snprintf(o->fault.module, sizeof o->fault.module, "sensor");
    snprintf(o->fault.function, sizeof o->fault.function, "%s", function);
    o->fault.offset = offset;
    snprintf(o->fault.instruction, sizeof o->fault.instruction, "mov r9d, dword ptr [r8]");
    o->fault.address = 0xffff840500000074ull;
    o->fault.access = SIM_ACCESS_READ;
    o->fault.address_class = SIM_ADDR_KERNEL;
    o->regs.r8 = o->fault.address;
    o->regs.rip = o->fault.rip;
    o->ndisasm = 2;
    o->disasm[0].address = o->fault.rip - 4;
    snprintf(o->disasm[0].text, sizeof o->disasm[0].text, "mov r8, qword ptr [rax + \"0xa0\"]");
    o->disasm[1].address = o->fault.rip;
    snprintf(o->disasm[1].text, sizeof o->disasm[1].text, "mov r9d, dword ptr [r8]");
    o->nframes = 4;
    fill_frame(&o->stack[0], "sensor", function, offset, o->fault.rip);
    fill_frame(&o->stack[1], "sensor", "ProcessChannelFile", 0x1a3, base + 0x2000);
    fill_frame(&o->stack[2], "sensor", "unknown_function", 0x5123, base + 0x5123);
    fill_frame(&o->stack[3], "nt", "IopLoadDriver", 0x4a1, 0xfffff80300004a1ull);
    snprintf(o->phase, sizeof o->phase, "DriverEntry");
    snprintf(o->detail, sizeof o->detail, "read of unmapped kernel address");
    o->loglen = (size_t)snprintf(o->log, sizeof o->log, "sensor: loading channel file\n");
    o->instructions = 123456;
    o->events_delivered = 3;
    return o;
}

sim_outcome *ok_outcome(uint64_t base)
{
    sim_outcome *o = calloc(1, sizeof *o);
    assert_non_null(o);
    o->kind = SIM_OUTCOME_OK;
    o->status_valid = true;
    o->status = SIM_STATUS_SUCCESS;
    o->image_base = base;
    o->instructions = 4242;
    snprintf(o->phase, sizeof o->phase, "process-notify");
    o->loglen = (size_t)snprintf(o->log, sizeof o->log, "ok\n");
    return o;
}

void open_store(const char *path, bool replace, store **st)
{
    store_options opts;
    store_options_init(&opts);
    opts.replace = replace;
    char err[512];
    if (store_open(path, &opts, st, err, sizeof err) != 0)
        fail_msg("store_open: %s", err);
}

void timeline_event(store *st, uint64_t endpoint_id, int64_t vt_ms, store_timeline_kind kind,
                    const char *detail)
{
    static store *last_store;
    static uint64_t last_id;
    static int64_t last_ms;
    static uint32_t seq;
    if (st == last_store && endpoint_id == last_id && vt_ms == last_ms) {
        seq++;
    } else {
        last_store = st;
        last_id = endpoint_id;
        last_ms = vt_ms;
        seq = 0;
    }
    char err[512];
    if (store_write_timeline_event(st, endpoint_id, vt_ms, seq, kind, detail, err,
                                   sizeof err) != 0)
        fail_msg("store_write_timeline_event: %s", err);
}
