/*
 * test_faults.c — every row of DESIGN.md's fault table, end to end.
 *
 * Each test runs one of the fault-<kind>.sys images (images/tests/faults.c)
 * in emulation and checks what a Windows engineer would check in the dump:
 * the bugcheck code and its four parameters, the faulting instruction and
 * where it is (module!function+offset), the registers, the disassembly
 * window and the call stack trigger_<kind> → run_fault → DriverEntry.
 *
 * Every run is made three times on one engine — twice in a row, and once
 * more after another image has run — and once on a fresh engine, and the
 * outcomes must be identical: engine reuse (DESIGN.md, decision 1) must not
 * leak anything from one endpoint into the next.
 *
 * The parser sample (images/samples/parser.c) closes the file: the content
 * with a 21st field crashes it with 0x50 on a stale pool pointer, the good
 * content does not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "expect.h"

#define HANG_BUDGET 2000000u
#define SEED 1u

/* The fault kinds, in images/meson.build's order. */
#define FAULT_KINDS(XX)                                                      \
    XX(UNMAPPED_READ, "unmapped-read", "trigger_unmapped_read")              \
    XX(UNMAPPED_WRITE, "unmapped-write", "trigger_unmapped_write")           \
    XX(NULL_READ, "null-read", "trigger_null_read")                          \
    XX(USER_DISPATCH, "user-dispatch", "trigger_user_dispatch")              \
    XX(READONLY_WRITE, "readonly-write", "trigger_readonly_write")           \
    XX(EXECUTE_NX, "execute-nx", "trigger_execute_nx")                       \
    XX(INVALID_OPCODE, "invalid-opcode", "trigger_invalid_opcode")           \
    XX(DIVIDE_ERROR, "divide-error", "trigger_divide_error")                 \
    XX(STACK_OVERFLOW, "stack-overflow", "trigger_stack_overflow")           \
    XX(POOL_OVERRUN, "pool-overrun", "trigger_pool_overrun")                 \
    XX(DOUBLE_FREE, "double-free", "trigger_double_free")                    \
    XX(HANG_PASSIVE, "hang-passive", "trigger_hang_passive")                 \
    XX(HANG_DISPATCH, "hang-dispatch", "trigger_hang_dispatch")              \
    XX(BUGCHECK_CALL, "bugcheck-call", "trigger_bugcheck_call")              \
    XX(MISSING_IMPORT, "missing-import", "trigger_missing_import")           \
    XX(FAST_FAIL, "fast-fail", "trigger_fast_fail")                          \
    XX(HANG_IN_API, "hang-in-api", "trigger_hang_in_api")                    \
    XX(OK, "ok", "trigger_ok")

typedef enum {
#define XX(id, kind, trigger) K_##id,
    FAULT_KINDS(XX)
#undef XX
    K_COUNT
} fault_kind;

static const char *const kind_names[K_COUNT] = {
#define XX(id, kind, trigger) kind,
    FAULT_KINDS(XX)
#undef XX
};

static const char *const trigger_names[K_COUNT] = {
#define XX(id, kind, trigger) trigger,
    FAULT_KINDS(XX)
#undef XX
};

#define PARSER_CONTENT_PATH "\\SystemRoot\\System32\\drivers\\parser\\content.bin"

/* Shared by every test: one engine, the images, outcome buffers. */
static sim_engine *engine;
static sim_image *images[K_COUNT];
static sim_image *parser_image;
static sim_profile profile_legacy, profile_segment;
static sim_profile profile_stale, profile_zeroed;
static sim_outcome outcomes[5];

/* ---- checks that show the whole outcome when they fail ----------------- */


/* ---- running ------------------------------------------------------------ */

/* A run of `image` alone with the test's seed; budget 0 is the default. */
static sim_run make_run(const sim_image *image, const sim_profile *profile, uint64_t budget)
{
    sim_run run;

    memset(&run, 0, sizeof run);
    run.image = image;
    run.profile = profile ? profile : sim_profile_default();
    run.seed = SEED;
    run.budget = budget;
    return run;
}

static void run_on(sim_engine *e, const sim_run *run, sim_outcome *out)
{
    memset(out, 0, sizeof *out);
    support_run_full(e, run, out);
}

static void run_image(const sim_image *image, const sim_profile *profile, uint64_t budget,
                      sim_outcome *out)
{
    sim_run run = make_run(image, profile, budget);

    run_on(engine, &run, out);
}

/* Two outcomes of the same endpoint must agree in everything. */
static void expect_same(const sim_outcome *a, const sim_outcome *b, const char *what)
{
    bool same = a->kind == b->kind && a->status_valid == b->status_valid &&
                a->status == b->status && a->image_base == b->image_base &&
                a->pool_base == b->pool_base && a->bugcheck == b->bugcheck &&
                memcmp(a->params, b->params, sizeof a->params) == 0 &&
                a->has_fault == b->has_fault && a->instructions == b->instructions &&
                a->loglen == b->loglen && a->log_truncated == b->log_truncated &&
                memcmp(a->log, b->log, a->loglen < SIM_LOG_SIZE ? a->loglen : SIM_LOG_SIZE) == 0 &&
                strcmp(a->api, b->api) == 0 && strcmp(a->phase, b->phase) == 0 &&
                strcmp(a->detail, b->detail) == 0 &&
                a->events_delivered == b->events_delivered;

    if (same && a->has_fault) {
        same = a->fault.rip == b->fault.rip && a->fault.address == b->fault.address &&
               a->fault.access == b->fault.access && a->fault.offset == b->fault.offset &&
               a->fault.irql == b->fault.irql &&
               a->fault.address_class == b->fault.address_class &&
               strcmp(a->fault.module, b->fault.module) == 0 &&
               strcmp(a->fault.function, b->fault.function) == 0 &&
               strcmp(a->fault.instruction, b->fault.instruction) == 0 &&
               strcmp(a->fault.region, b->fault.region) == 0 &&
               memcmp(&a->regs, &b->regs, sizeof a->regs) == 0 &&
               a->ndisasm == b->ndisasm && a->nframes == b->nframes;
        for (int i = 0; same && i < a->ndisasm && i < SIM_MAX_DISASM; i++)
            same = a->disasm[i].address == b->disasm[i].address &&
                   strcmp(a->disasm[i].text, b->disasm[i].text) == 0;
        for (int i = 0; same && i < a->nframes && i < SIM_MAX_FRAMES; i++)
            same = a->stack[i].rip == b->stack[i].rip &&
                   a->stack[i].rsp == b->stack[i].rsp &&
                   a->stack[i].offset == b->stack[i].offset &&
                   strcmp(a->stack[i].module, b->stack[i].module) == 0 &&
                   strcmp(a->stack[i].function, b->stack[i].function) == 0;
    }
    if (!same) {
        fprintf(stderr, "--- first outcome\n");
        support_dump(a);
        fprintf(stderr, "--- %s\n", what);
        support_dump(b);
        fail_msg("outcomes differ: %s", what);
    }
}

/*
 * Run an endpoint the way every test here does: twice in a row on the
 * shared engine, once more after `other` ran on it, and once on a fresh
 * engine.  All four outcomes must be the same; *out gets the first.
 */
static void run_checked(const sim_run *run, const sim_image *other, sim_outcome *out)
{
    sim_outcome *again = &outcomes[1], *after = &outcomes[2], *fresh = &outcomes[3];
    sim_outcome *scratch = &outcomes[4];
    sim_engine *e2;

    run_on(engine, run, out);
    run_on(engine, run, again);
    expect_same(out, again, "second run on the same engine");
    run_image(other, NULL, HANG_BUDGET, scratch);
    run_on(engine, run, after);
    expect_same(out, after, "run after another image on the same engine");
    e2 = support_engine();
    run_on(e2, run, fresh);
    sim_engine_destroy(e2);
    expect_same(out, fresh, "run on a fresh engine");
}

/* The image that runs in between: the next kind, so pairs vary. */
static void run_kind(fault_kind k, const sim_profile *profile, uint64_t budget,
                     sim_outcome *out)
{
    sim_run run = make_run(images[k], profile, budget);

    run_checked(&run, images[(k + 1) % K_COUNT], out);
}

/* ---- what every crash record must show ---------------------------------- */

/* names[0..n) appear as consecutive frames, the first within frame `max_at`. */
static void expect_stack(const sim_outcome *out, const sim_image *image,
                         const char *const *names, int n, int max_at)
{
    EXPECT(out, out->nframes >= n, "only %d frames, want at least %d", out->nframes, n);
    for (int at = 0; at <= max_at && at + n <= out->nframes; at++) {
        int i;

        for (i = 0; i < n; i++) {
            const sim_frame *f = &out->stack[at + i];

            if (strcmp(f->function, names[i]) != 0 || strcmp(f->module, image->module) != 0)
                break;
        }
        if (i == n)
            return;
    }
    support_dump(out);
    fail_msg("the stack does not show %s%s%s%s%s (in %s) within its first %d frames",
             names[0], n > 1 ? " <- " : "", n > 1 ? names[1] : "", n > 2 ? " <- " : "",
             n > 2 ? names[2] : "", image->module, max_at + n);
}

/* The usual chain: trigger → run_fault → DriverEntry. */
static void expect_fault_stack(const sim_outcome *out, fault_kind k, int max_at)
{
    const char *names[3] = {trigger_names[k], "run_fault", "DriverEntry"};

    expect_stack(out, images[k], names, 3, max_at);
}

static void expect_bugcheck(const sim_outcome *out, uint32_t code)
{
    EXPECT(out, out->kind == SIM_OUTCOME_BUGCHECK, "outcome %s, want bugcheck 0x%X",
           sim_outcome_name(out->kind), code);
    EXPECT_U64(out, out->bugcheck, code);
    EXPECT(out, !out->status_valid, "DriverEntry returned after a bugcheck");
}

static void expect_started(const sim_outcome *out, fault_kind k)
{
    char line[64];

    snprintf(line, sizeof line, "faults: %s starting\n", kind_names[k]);
    EXPECT_HAS(out, out->log, line);
}

/*
 * A fault raised by a guest instruction in the trigger function: the
 * record names it, the registers and the disassembly window agree with it,
 * and the stack unwinds through run_fault to DriverEntry.
 */
static void expect_guest_fault(const sim_outcome *out, fault_kind k, const char *mnemonic)
{
    const sim_image *image = images[k];
    const sim_fault *f = &out->fault;
    const sim_symbol *sym;

    char module[64];

    snprintf(module, sizeof module, "fault-%s", kind_names[k]);
    EXPECT(out, out->has_fault, "no fault record");
    EXPECT_STR(out, image->module, module);
    EXPECT_STR(out, f->module, module);
    EXPECT_STR(out, f->function, trigger_names[k]);
    EXPECT(out, f->rip > out->image_base && f->rip < out->image_base + image->size_of_image,
           "fault RIP %016" PRIx64 " outside the image", f->rip);
    sym = sim_image_symbol_at(image, (uint32_t)(f->rip - out->image_base));
    EXPECT(out, sym != NULL, "no symbol at the fault RIP");
    EXPECT_STR(out, sym->name, trigger_names[k]);
    EXPECT_U64(out, f->offset, f->rip - out->image_base - sym->rva);
    EXPECT_HAS(out, f->instruction, mnemonic);
    EXPECT_U64(out, out->regs.rip, f->rip);

    EXPECT(out, out->ndisasm >= 1 && out->ndisasm <= SIM_MAX_DISASM,
           "disassembly window of %d instructions", out->ndisasm);
    EXPECT_U64(out, out->disasm[out->ndisasm - 1].address, f->rip);
    EXPECT_STR(out, out->disasm[out->ndisasm - 1].text, f->instruction);
    for (int i = 1; i < out->ndisasm; i++)
        EXPECT(out, out->disasm[i].address > out->disasm[i - 1].address,
               "disassembly window out of order at %d", i);

    EXPECT_U64(out, out->stack[0].rip, f->rip);
    EXPECT_U64(out, out->stack[0].rsp, out->regs.rsp);
    EXPECT_STR(out, out->stack[0].function, trigger_names[k]);
    EXPECT_U64(out, out->stack[0].offset, f->offset);
    expect_fault_stack(out, k, 0);
    expect_started(out, k);
}

/* The section of `image` holding guest address addr, by name ("" if none). */
static const char *section_of(const sim_outcome *out, const sim_image *image, uint64_t addr)
{
    const sim_section *s;

    if (addr < out->image_base || addr >= out->image_base + image->size_of_image)
        return "";
    s = sim_image_section_at(image, (uint32_t)(addr - out->image_base));
    return s ? s->name : "";
}

/* ---- the fault table, row by row --------------------------------------- */

static void test_unmapped_read(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_UNMAPPED_READ, NULL, 0, out);
    expect_bugcheck(out, SIM_BUGCHECK_PAGE_FAULT_IN_NONPAGED_AREA);
    EXPECT_U64(out, out->params[0], 0xffff840500000074ull);
    EXPECT_U64(out, out->params[1], 0);                       /* read */
    EXPECT_U64(out, out->params[2], out->fault.rip);
    expect_guest_fault(out, K_UNMAPPED_READ, "mov");
    EXPECT_HAS(out, out->fault.instruction, "dword ptr [");
    EXPECT_U64(out, out->fault.address, 0xffff840500000074ull);
    EXPECT(out, out->fault.access == SIM_ACCESS_READ, "access %s",
           sim_access_name(out->fault.access));
    EXPECT(out, out->fault.address_class == SIM_ADDR_KERNEL, "address class %s",
           sim_addr_class_name(out->fault.address_class));
    EXPECT_STR(out, out->fault.region, "");
    EXPECT_U64(out, out->fault.irql, 0);
}

static void test_unmapped_write(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_UNMAPPED_WRITE, NULL, 0, out);
    expect_bugcheck(out, SIM_BUGCHECK_PAGE_FAULT_IN_NONPAGED_AREA);
    EXPECT_U64(out, out->params[0], 0xffff840500000080ull);
    EXPECT(out, out->params[1] != 0, "params[1] is 0 (read) for a write");
    EXPECT_U64(out, out->params[2], out->fault.rip);
    expect_guest_fault(out, K_UNMAPPED_WRITE, "mov");
    EXPECT_U64(out, out->fault.address, 0xffff840500000080ull);
    EXPECT(out, out->fault.access == SIM_ACCESS_WRITE, "access %s",
           sim_access_name(out->fault.access));
    EXPECT(out, out->fault.address_class == SIM_ADDR_KERNEL, "address class %s",
           sim_addr_class_name(out->fault.address_class));
}

static void test_null_read(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_NULL_READ, NULL, 0, out);
    expect_bugcheck(out, SIM_BUGCHECK_SYSTEM_THREAD_EXCEPTION_NOT_HANDLED);
    EXPECT_U64(out, out->params[0], SIM_STATUS_ACCESS_VIOLATION);
    EXPECT_U64(out, out->params[1], out->fault.rip);
    expect_guest_fault(out, K_NULL_READ, "mov");
    EXPECT_U64(out, out->fault.address, 0);
    EXPECT(out, out->fault.access == SIM_ACCESS_READ, "access %s",
           sim_access_name(out->fault.access));
    EXPECT(out, out->fault.address_class == SIM_ADDR_NULL, "address class %s",
           sim_addr_class_name(out->fault.address_class));
}

static void test_user_dispatch(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_USER_DISPATCH, NULL, 0, out);
    expect_bugcheck(out, SIM_BUGCHECK_DRIVER_IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_U64(out, out->params[0], 0x00007ff600001000ull);
    EXPECT_U64(out, out->params[1], 2);                       /* DISPATCH_LEVEL */
    EXPECT_U64(out, out->params[2], 0);                       /* read */
    EXPECT_U64(out, out->params[3], out->fault.rip);
    expect_guest_fault(out, K_USER_DISPATCH, "mov");
    EXPECT_U64(out, out->fault.address, 0x00007ff600001000ull);
    EXPECT_U64(out, out->fault.irql, 2);
    EXPECT(out, out->fault.address_class == SIM_ADDR_USER, "address class %s",
           sim_addr_class_name(out->fault.address_class));
}

static void test_readonly_write(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_READONLY_WRITE, NULL, 0, out);
    expect_bugcheck(out, SIM_BUGCHECK_ATTEMPTED_WRITE_TO_READONLY_MEMORY);
    EXPECT_STR(out, section_of(out, images[K_READONLY_WRITE], out->params[0]), ".rdata");
    expect_guest_fault(out, K_READONLY_WRITE, "mov");
    EXPECT_U64(out, out->fault.address, out->params[0]);
    EXPECT(out, out->fault.access == SIM_ACCESS_WRITE, "access %s",
           sim_access_name(out->fault.access));
    EXPECT(out, out->fault.address_class == SIM_ADDR_KERNEL, "address class %s",
           sim_addr_class_name(out->fault.address_class));
}

static void test_execute_nx(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_EXECUTE_NX, NULL, 0, out);
    expect_bugcheck(out, SIM_BUGCHECK_ATTEMPTED_EXECUTE_OF_NOEXECUTE_MEMORY);
    EXPECT_STR(out, section_of(out, images[K_EXECUTE_NX], out->params[0]), ".data");
    EXPECT(out, out->has_fault, "no fault record");
    EXPECT_U64(out, out->fault.rip, out->params[0]);
    EXPECT_U64(out, out->regs.rip, out->params[0]);
    EXPECT_U64(out, out->fault.address, out->params[0]);
    EXPECT(out, out->fault.access == SIM_ACCESS_EXECUTE, "access %s",
           sim_access_name(out->fault.access));
    /* Frame 0 is the data array; the caller is the next frame. */
    expect_fault_stack(out, K_EXECUTE_NX, 1);
    expect_started(out, K_EXECUTE_NX);
}

static void test_invalid_opcode(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_INVALID_OPCODE, NULL, 0, out);
    expect_bugcheck(out, SIM_BUGCHECK_SYSTEM_THREAD_EXCEPTION_NOT_HANDLED);
    EXPECT_U64(out, out->params[0], SIM_STATUS_ILLEGAL_INSTRUCTION);
    EXPECT_U64(out, out->params[1], out->fault.rip);
    expect_guest_fault(out, K_INVALID_OPCODE, "ud2");
    EXPECT_U64(out, out->fault.offset, 0);          /* ud2 is the first instruction */
}

/* __fastfail: KERNEL_SECURITY_CHECK_FAILURE with the failure code, not a trap. */
static void test_fast_fail(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_FAST_FAIL, NULL, 0, out);
    expect_bugcheck(out, SIM_BUGCHECK_KERNEL_SECURITY_CHECK_FAILURE);
    EXPECT_U64(out, out->params[0], 3); /* FAST_FAIL_CORRUPT_LIST_ENTRY */
    expect_started(out, K_FAST_FAIL);
}

static void test_divide_error(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_DIVIDE_ERROR, NULL, 0, out);
    expect_bugcheck(out, SIM_BUGCHECK_SYSTEM_THREAD_EXCEPTION_NOT_HANDLED);
    EXPECT_U64(out, out->params[0], SIM_STATUS_INTEGER_DIVIDE_BY_ZERO);
    EXPECT_U64(out, out->params[1], out->fault.rip);
    expect_guest_fault(out, K_DIVIDE_ERROR, "div");
}

static void test_stack_overflow(void **state)
{
    sim_outcome *out = &outcomes[0];
    const sim_fault *f = &out->fault;

    (void)state;
    run_kind(K_STACK_OVERFLOW, NULL, 0, out);
    expect_bugcheck(out, SIM_BUGCHECK_UNEXPECTED_KERNEL_MODE_TRAP);
    EXPECT_U64(out, out->params[0], 8);             /* EXCEPTION_DOUBLE_FAULT */
    EXPECT(out, out->has_fault, "no fault record");
    EXPECT_STR(out, f->module, images[K_STACK_OVERFLOW]->module);
    EXPECT_STR(out, f->function, "trigger_stack_overflow");
    EXPECT_U64(out, out->regs.rip, f->rip);
    EXPECT(out, out->ndisasm >= 1, "no disassembly");
    EXPECT_U64(out, out->disasm[out->ndisasm - 1].address, f->rip);
    EXPECT(out, f->access == SIM_ACCESS_WRITE, "access %s", sim_access_name(f->access));
    EXPECT(out, f->address_class == SIM_ADDR_KERNEL, "address class %s",
           sim_addr_class_name(f->address_class));
    /* The top of the stack is the recursion, as deep as the record goes. */
    EXPECT(out, out->nframes >= 3, "only %d frames", out->nframes);
    for (int i = 0; i < 3; i++)
        EXPECT_STR(out, out->stack[i].function, "trigger_stack_overflow");
    expect_started(out, K_STACK_OVERFLOW);
}

/* Pool corruption is found by nt when the block is freed. */
static void expect_pool_bugcheck(const sim_outcome *out, fault_kind k, uint32_t code)
{
    const char *names[4] = {"release_block", trigger_names[k], "run_fault", "DriverEntry"};

    expect_bugcheck(out, code);
    expect_stack(out, images[k], names, 4, 2);
    expect_started(out, k);
}

static void test_pool_overrun_legacy(void **state)
{
    (void)state;
    run_kind(K_POOL_OVERRUN, &profile_legacy, 0, &outcomes[0]);
    expect_pool_bugcheck(&outcomes[0], K_POOL_OVERRUN, SIM_BUGCHECK_BAD_POOL_HEADER);
}

static void test_pool_overrun_segment(void **state)
{
    (void)state;
    run_kind(K_POOL_OVERRUN, &profile_segment, 0, &outcomes[0]);
    expect_pool_bugcheck(&outcomes[0], K_POOL_OVERRUN, SIM_BUGCHECK_KERNEL_MODE_HEAP_CORRUPTION);
}

static void test_double_free_legacy(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_DOUBLE_FREE, &profile_legacy, 0, out);
    expect_pool_bugcheck(out, K_DOUBLE_FREE, SIM_BUGCHECK_BAD_POOL_CALLER);
    EXPECT_U64(out, out->params[0], 7);             /* freeing a free block */
}

static void test_double_free_segment(void **state)
{
    (void)state;
    run_kind(K_DOUBLE_FREE, &profile_segment, 0, &outcomes[0]);
    expect_pool_bugcheck(&outcomes[0], K_DOUBLE_FREE, SIM_BUGCHECK_KERNEL_MODE_HEAP_CORRUPTION);
}

/* The default profile is one of the two: whichever its pool says. */
static void test_pool_default_profile(void **state)
{
    const sim_profile *def = sim_profile_default();
    uint32_t overrun = def->pool == SIM_POOL_LEGACY ? SIM_BUGCHECK_BAD_POOL_HEADER
                                                    : SIM_BUGCHECK_KERNEL_MODE_HEAP_CORRUPTION;
    uint32_t twice = def->pool == SIM_POOL_LEGACY ? SIM_BUGCHECK_BAD_POOL_CALLER
                                                  : SIM_BUGCHECK_KERNEL_MODE_HEAP_CORRUPTION;

    (void)state;
    run_image(images[K_POOL_OVERRUN], NULL, 0, &outcomes[0]);
    expect_bugcheck(&outcomes[0], overrun);
    run_image(images[K_DOUBLE_FREE], NULL, 0, &outcomes[0]);
    expect_bugcheck(&outcomes[0], twice);
}

/* A loop whose work is in a kernel routine (strlen over 4 MiB) spends the
 * budget too: stopped as a hang, not left running for days. */
static void test_hang_in_api(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_HANG_IN_API, NULL, HANG_BUDGET, out);
    EXPECT(out, out->kind == SIM_OUTCOME_HANG, "outcome %s, want hang",
           sim_outcome_name(out->kind));
    EXPECT(out, !out->status_valid, "DriverEntry returned from an endless loop");
    /* The budget went on strlen's work: the guest itself ran a few
     * instructions a call. */
    EXPECT(out, out->instructions < HANG_BUDGET / 2, "%" PRIu64 " guest instructions",
           out->instructions);
}

static void test_hang_passive(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_HANG_PASSIVE, NULL, HANG_BUDGET, out);
    EXPECT(out, out->kind == SIM_OUTCOME_HANG, "outcome %s, want hang",
           sim_outcome_name(out->kind));
    EXPECT_U64(out, out->bugcheck, 0);
    EXPECT(out, !out->status_valid, "DriverEntry returned from an endless loop");
    /* The budget counts the guest's instructions and, eight bytes to one,
     * what kernel routines did for it (DriverEntry's few calls, here). */
    EXPECT(out, out->instructions >= HANG_BUDGET - HANG_BUDGET / 100,
           "hang after only %" PRIu64 " instructions", out->instructions);
    EXPECT(out, out->instructions < 2 * (uint64_t)HANG_BUDGET,
           "the budget of %u was overrun: %" PRIu64 " instructions", HANG_BUDGET,
           out->instructions);
    if (out->has_fault)
        EXPECT_STR(out, out->fault.function, "trigger_hang_passive");
    expect_started(out, K_HANG_PASSIVE);
}

static void test_hang_dispatch(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_HANG_DISPATCH, NULL, HANG_BUDGET, out);
    expect_bugcheck(out, SIM_BUGCHECK_DPC_WATCHDOG_VIOLATION);
    EXPECT(out, out->params[0] <= 1, "params[0] %" PRIu64 ": 0 (one DPC) or 1 (cumulative)",
           out->params[0]);
    EXPECT(out, out->instructions <= 2 * (uint64_t)HANG_BUDGET,
           "the budget of %u was overrun: %" PRIu64 " instructions", HANG_BUDGET,
           out->instructions);
    if (out->has_fault) {
        EXPECT_STR(out, out->fault.function, "trigger_hang_dispatch");
        EXPECT_U64(out, out->fault.irql, 2);
        expect_fault_stack(out, K_HANG_DISPATCH, 0);
    }
    expect_started(out, K_HANG_DISPATCH);
}

static void test_bugcheck_call(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_BUGCHECK_CALL, NULL, 0, out);
    expect_bugcheck(out, SIM_BUGCHECK_MANUALLY_INITIATED_CRASH);
    EXPECT_U64(out, out->params[0], 1);
    EXPECT_U64(out, out->params[1], 2);
    EXPECT_U64(out, out->params[2], 3);
    EXPECT_U64(out, out->params[3], 4);             /* the fifth argument, on the stack */
    expect_fault_stack(out, K_BUGCHECK_CALL, 1);
    expect_started(out, K_BUGCHECK_CALL);
}

static void test_missing_import(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    /* The premise: a real export that fleetsim does not implement. */
    assert_false(sim_kapi_implemented("ntoskrnl.exe", "IoCreateSymbolicLink"));
    assert_true(sim_profile_has_export(sim_profile_default(), "IoCreateSymbolicLink"));
    run_kind(K_MISSING_IMPORT, NULL, 0, out);
    EXPECT(out, out->kind == SIM_OUTCOME_UNSUPPORTED_API, "outcome %s, want unsupported-api",
           sim_outcome_name(out->kind));
    EXPECT_STR(out, out->api, "ntoskrnl.exe!IoCreateSymbolicLink");
    EXPECT_U64(out, out->bugcheck, 0);
}

static void test_ok(void **state)
{
    sim_outcome *out = &outcomes[0];

    (void)state;
    run_kind(K_OK, NULL, 0, out);
    EXPECT(out, out->kind == SIM_OUTCOME_OK, "outcome %s, want ok",
           sim_outcome_name(out->kind));
    EXPECT(out, out->status_valid, "no DriverEntry status");
    EXPECT_U64(out, out->status, SIM_STATUS_SUCCESS);
    EXPECT_U64(out, out->bugcheck, 0);
    EXPECT(out, !out->has_fault, "a fault record for a clean run");
    EXPECT_STR(out, out->log, "faults: ok starting\nfaults: ok returned 00000000\n");
    EXPECT_U64(out, out->loglen, strlen(out->log));
    EXPECT(out, out->instructions > 0, "no instructions counted");
}

/* Every kind in turn on one engine, then again in reverse: same outcomes. */
static void test_all_kinds_in_turn(void **state)
{
    static sim_outcome first[K_COUNT];
    sim_outcome *again = &outcomes[1];

    (void)state;
    for (int k = 0; k < K_COUNT; k++)
        run_image(images[k], NULL, HANG_BUDGET, &first[k]);
    for (int k = K_COUNT - 1; k >= 0; k--) {
        char what[96];

        run_image(images[k], NULL, HANG_BUDGET, again);
        snprintf(what, sizeof what, "fault-%s run again in reverse order", kind_names[k]);
        expect_same(&first[k], again, what);
    }
}

/* A different seed moves the image; the crash keeps its name and offsets. */
static void test_layout_independent(void **state)
{
    sim_outcome *a = &outcomes[0], *b = &outcomes[1];
    sim_run run;
    uint64_t seed;
    bool moved = false;

    (void)state;
    run_image(images[K_UNMAPPED_READ], NULL, 0, a);
    for (seed = 2; seed < 40; seed++) {
        memset(&run, 0, sizeof run);
        run.image = images[K_UNMAPPED_READ];
        run.seed = seed;
        memset(b, 0, sizeof *b);
        support_run_full(engine, &run, b);
        expect_bugcheck(b, SIM_BUGCHECK_PAGE_FAULT_IN_NONPAGED_AREA);
        EXPECT_U64(b, b->params[0], a->params[0]);
        EXPECT_U64(b, b->params[2] - b->image_base, a->params[2] - a->image_base);
        EXPECT_STR(b, b->fault.function, a->fault.function);
        EXPECT_U64(b, b->fault.offset, a->fault.offset);
        EXPECT_STR(b, b->fault.instruction, a->fault.instruction);
        if (b->image_base != a->image_base)
            moved = true;
    }
    EXPECT(a, moved, "38 seeds, and the image never loaded anywhere else");
}

/* ---- the parser sample ------------------------------------------------- */

static uint8_t *read_source_file(const char *rel, size_t *size)
{
    const char *root = getenv("FLEETSIM_SOURCE");
    char path[4096];
    uint8_t *data;
    long n;
    FILE *f;

    if (root == NULL)
        fail_msg("FLEETSIM_SOURCE is not set (run the tests with meson test)");
    snprintf(path, sizeof path, "%s/%s", root, rel);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(data);
    if (n < 0 || fread(data, 1, (size_t)n, f) != (size_t)n)
        fail_msg("cannot read %s", path);
    fclose(f);
    *size = (size_t)n;
    return data;
}

#define PARSER_SEEDS 64

static sim_run parser_run(const sim_file *file, const sim_profile *profile, uint64_t seed)
{
    sim_run run = make_run(parser_image, profile, 0);

    run.files = file;
    run.nfiles = file ? 1 : 0;
    run.seed = seed;
    return run;
}

/* The crash DESIGN.md describes, as the record must show it. */
static void expect_parser_crash(const sim_outcome *out)
{
    const sim_fault *f = &out->fault;
    const char *names[3] = {"MatchTemplate", "ProcessContent", "DriverEntry"};

    expect_bugcheck(out, SIM_BUGCHECK_PAGE_FAULT_IN_NONPAGED_AREA);
    EXPECT(out, out->has_fault, "no fault record");
    /* The stale slot past the 20 inputs, taken as a pointer. */
    EXPECT(out, out->params[0] != 0, "the stale pointer is NULL");
    EXPECT_U64(out, f->address, out->params[0]);
    EXPECT(out, f->address_class == SIM_ADDR_KERNEL, "address class %s",
           sim_addr_class_name(f->address_class));
    EXPECT_STR(out, f->region, "");
    EXPECT_U64(out, out->params[1], 0);
    EXPECT_U64(out, out->params[2], f->rip);
    EXPECT(out, f->access == SIM_ACCESS_READ, "access %s", sim_access_name(f->access));
    EXPECT_STR(out, f->module, "parser");
    EXPECT_STR(out, f->function, "MatchTemplate");
    EXPECT_HAS(out, f->instruction, "mov");
    EXPECT_HAS(out, f->instruction, "dword ptr [");
    EXPECT_U64(out, out->regs.rip, f->rip);
    EXPECT(out, out->ndisasm >= 1, "no disassembly");
    EXPECT_U64(out, out->disasm[out->ndisasm - 1].address, f->rip);
    expect_stack(out, parser_image, names, 3, 0);
    /* The three good templates ran before the bad one. */
    EXPECT_HAS(out, out->log, "parser: content.bin, 136 bytes\n");
    EXPECT_HAS(out, out->log, "parser: template 2 matched input 19\n");
}

/*
 * What the 21st slot holds depends on the endpoint (DESIGN.md, decision 5):
 * mostly an old kernel pointer (0x50), sometimes a small integer (an access
 * violation near NULL, 0x7E), sometimes zero (no crash).  Every endpoint must show one of those, a good share
 * must show the 0x50, and the first that does is checked in full.
 */
static void test_parser_bad_content(void **state)
{
    sim_file file = {PARSER_CONTENT_PATH, NULL, 0, 0};
    sim_outcome *out = &outcomes[0];
    uint64_t crash_seed = 0;
    unsigned n50 = 0, n7e = 0, nok = 0;
    uint8_t *data;
    sim_run run;

    (void)state;
    data = read_source_file("images/samples/parser-bad.bin", &file.size);
    file.data = data;
    for (uint64_t seed = 1; seed <= PARSER_SEEDS; seed++) {
        run = parser_run(&file, &profile_stale, seed);
        run_on(engine, &run, out);
        if (out->kind == SIM_OUTCOME_BUGCHECK &&
            out->bugcheck == SIM_BUGCHECK_PAGE_FAULT_IN_NONPAGED_AREA) {
            expect_parser_crash(out);
            if (crash_seed == 0)
                crash_seed = seed;
            n50++;
        } else if (out->kind == SIM_OUTCOME_BUGCHECK) {
            expect_bugcheck(out, SIM_BUGCHECK_SYSTEM_THREAD_EXCEPTION_NOT_HANDLED);
            EXPECT_U64(out, out->params[0], SIM_STATUS_ACCESS_VIOLATION);
            EXPECT_STR(out, out->fault.function, "MatchTemplate");
            EXPECT(out, out->fault.address_class == SIM_ADDR_NULL, "address class %s",
                   sim_addr_class_name(out->fault.address_class));
            n7e++;
        } else {
            EXPECT(out, out->kind == SIM_OUTCOME_OK, "outcome %s",
                   sim_outcome_name(out->kind));
            EXPECT_HAS(out, out->log, "parser: 4 templates, 3 matched, severity 5\n");
            nok++;
        }
    }
    print_message("parser-bad.bin on %u endpoints: 0x50 %u, 0x7E %u, ok %u\n",
                  (unsigned)PARSER_SEEDS, n50, n7e, nok);
    EXPECT(out, n50 >= PARSER_SEEDS / 8, "only %u of %u endpoints crashed with 0x50", n50,
           (unsigned)PARSER_SEEDS);

    run = parser_run(&file, &profile_stale, crash_seed);
    run_checked(&run, images[K_POOL_OVERRUN], out);
    expect_parser_crash(out);
    free(data);
}

/*
 * A stale pointer read past the inputs does the same whatever the engine
 * ran before (DESIGN.md, decision 4): stale words never point into a pool
 * window, so an engine that has mapped the default profile's window for an
 * earlier endpoint faults exactly where one that never mapped it does.
 * Before stride 0 was excluded, 1 seed in ~290 read zeros there instead.
 */
#define HISTORY_SEEDS 2000

static void test_stale_pointers_ignore_engine_history(void **state)
{
    sim_file file = {PARSER_CONTENT_PATH, NULL, 0, 0};
    sim_outcome *out = &outcomes[0], *clean_out = &outcomes[1];
    sim_profile far = profile_stale;
    sim_engine *clean = support_engine();
    unsigned n50 = 0;
    uint8_t *data;
    sim_run run;

    (void)state;
    far.pool_lo = 0xFFFFA08000000000ull;
    far.pool_hi = 0xFFFFA08100000000ull;
    snprintf(far.name, sizeof far.name, "test-far-pool");
    data = read_source_file("images/samples/parser-bad.bin", &file.size);
    file.data = data;
    run = parser_run(&file, &profile_stale, SEED);
    run_on(engine, &run, out);       /* maps the default pool window */
    for (uint64_t seed = 1; seed <= HISTORY_SEEDS; seed++) {
        run = parser_run(&file, &far, seed);
        run_on(engine, &run, out);
        run_on(clean, &run, clean_out);
        expect_same(out, clean_out, "run on an engine that never mapped the default pool");
        n50 += out->kind == SIM_OUTCOME_BUGCHECK &&
               out->bugcheck == SIM_BUGCHECK_PAGE_FAULT_IN_NONPAGED_AREA;
    }
    EXPECT(out, n50 >= HISTORY_SEEDS / 2, "only %u of %u endpoints crashed with 0x50", n50,
           (unsigned)HISTORY_SEEDS);
    sim_engine_destroy(clean);
    free(data);
}

static void test_parser_good_content(void **state)
{
    sim_file file = {PARSER_CONTENT_PATH, NULL, 0, 0};
    sim_outcome *out = &outcomes[0];
    uint8_t *data;
    sim_run run;

    (void)state;
    data = read_source_file("images/samples/parser-good.bin", &file.size);
    file.data = data;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        run = parser_run(&file, &profile_stale, seed);
        if (seed == 1)
            run_checked(&run, images[K_POOL_OVERRUN], out);
        else
            run_on(engine, &run, out);
        EXPECT(out, out->kind == SIM_OUTCOME_OK, "outcome %s, want ok",
               sim_outcome_name(out->kind));
        EXPECT(out, out->status_valid, "no DriverEntry status");
        EXPECT_U64(out, out->status, SIM_STATUS_SUCCESS);
        EXPECT_HAS(out, out->log, "parser: content.bin, 104 bytes\n");
        EXPECT_HAS(out, out->log, "parser: 3 templates, 3 matched, severity 5\n");
    }
    free(data);
}

static void test_parser_no_content(void **state)
{
    sim_outcome *out = &outcomes[0];
    sim_run run = parser_run(NULL, &profile_stale, SEED);

    (void)state;
    run_checked(&run, images[K_OK], out);
    EXPECT(out, out->kind == SIM_OUTCOME_OK, "outcome %s, want ok",
           sim_outcome_name(out->kind));
    EXPECT_HAS(out, out->log, "using the built-in templates");
    EXPECT_HAS(out, out->log, "parser: 3 templates, 3 matched, severity 5\n");
}

/* Where the pool comes back zeroed, the 21st slot is NULL and checked. */
static void test_parser_bad_content_zeroed_pool(void **state)
{
    sim_file file = {PARSER_CONTENT_PATH, NULL, 0, 0};
    sim_outcome *out = &outcomes[0];
    uint8_t *data;
    sim_run run;

    (void)state;
    data = read_source_file("images/samples/parser-bad.bin", &file.size);
    file.data = data;
    for (uint64_t seed = 1; seed <= 16; seed++) {
        run = parser_run(&file, &profile_zeroed, seed);
        run_on(engine, &run, out);
        EXPECT(out, out->kind == SIM_OUTCOME_OK, "seed %" PRIu64 ": outcome %s, want ok",
               seed, sim_outcome_name(out->kind));
        EXPECT_HAS(out, out->log, "parser: 4 templates, 3 matched, severity 5\n");
    }
    free(data);
}

/* ---- setup ---------------------------------------------------------------- */

static int setup(void **state)
{
    char name[64];

    (void)state;
    engine = support_engine();
    for (int k = 0; k < K_COUNT; k++) {
        snprintf(name, sizeof name, "fault-%s", kind_names[k]);
        images[k] = support_image(name);
    }
    parser_image = support_image("parser");
    profile_legacy = *sim_profile_default();
    profile_legacy.pool = SIM_POOL_LEGACY;
    snprintf(profile_legacy.name, sizeof profile_legacy.name, "test-legacy-pool");
    profile_segment = *sim_profile_default();
    profile_segment.pool = SIM_POOL_SEGMENT_HEAP;
    snprintf(profile_segment.name, sizeof profile_segment.name, "test-segment-heap");
    profile_stale = *sim_profile_default();
    profile_stale.pool_zeroed = false;
    snprintf(profile_stale.name, sizeof profile_stale.name, "test-stale-pool");
    profile_zeroed = *sim_profile_default();
    profile_zeroed.pool_zeroed = true;
    snprintf(profile_zeroed.name, sizeof profile_zeroed.name, "test-zeroed-pool");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int k = 0; k < K_COUNT; k++)
        sim_image_destroy(images[k]);
    sim_image_destroy(parser_image);
    sim_engine_destroy(engine);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unmapped_read),
        cmocka_unit_test(test_unmapped_write),
        cmocka_unit_test(test_null_read),
        cmocka_unit_test(test_user_dispatch),
        cmocka_unit_test(test_readonly_write),
        cmocka_unit_test(test_execute_nx),
        cmocka_unit_test(test_invalid_opcode),
        cmocka_unit_test(test_fast_fail),
        cmocka_unit_test(test_hang_in_api),
        cmocka_unit_test(test_divide_error),
        cmocka_unit_test(test_stack_overflow),
        cmocka_unit_test(test_pool_overrun_legacy),
        cmocka_unit_test(test_pool_overrun_segment),
        cmocka_unit_test(test_double_free_legacy),
        cmocka_unit_test(test_double_free_segment),
        cmocka_unit_test(test_pool_default_profile),
        cmocka_unit_test(test_hang_passive),
        cmocka_unit_test(test_hang_dispatch),
        cmocka_unit_test(test_bugcheck_call),
        cmocka_unit_test(test_missing_import),
        cmocka_unit_test(test_ok),
        cmocka_unit_test(test_all_kinds_in_turn),
        cmocka_unit_test(test_layout_independent),
        cmocka_unit_test(test_parser_bad_content),
        cmocka_unit_test(test_stale_pointers_ignore_engine_history),
        cmocka_unit_test(test_parser_good_content),
        cmocka_unit_test(test_parser_no_content),
        cmocka_unit_test(test_parser_bad_content_zeroed_pool),
    };

    return cmocka_run_group_tests_name("faults", tests, setup, teardown);
}
