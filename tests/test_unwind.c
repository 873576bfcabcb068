/*
 * test_unwind.c — unit tests of the stack unwinder and the symbolizer
 * (sim/unwind.c).
 *
 * Forged images carry hand-written .xdata for each unwind operation; the
 * stack is a host buffer behind a hand-made endpoint's region map, laid out
 * the way the described prologs would have left it.  The expected frames are
 * computed by hand from those layouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "pe_forge.h"
#include "sim-internal.h"

#define BASE 0xfffff80012340000ull /* where the image "runs": not its preferred base */
#define STACK SIM__STACK_BASE
#define RET_STUB (SIM__NT_BASE + SIM__STUB_RETURN * SIM__NT_STUB_SIZE)

typedef struct fixture {
    sim_image *img;
    uint8_t stack[SIM__STACK_SIZE];
    sim_region regions[2];
    sim_endpoint ep;
} fixture;

static fixture *fixture_new(const pf_image *spec)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    pf_layout l;
    uint8_t *f = pf_build(spec, &l);
    char err[256] = "";
    if (sim_image_parse(f, l.size, "forged.sys", &fx->img, err, sizeof err) != 0)
        fail_msg("parse: %s", err);
    free(f);
    /* The stack, and a region above it the unwinder must not confuse with it. */
    fx->regions[0] = (sim_region){STACK, SIM__STACK_SIZE, SIM_PROT_R | SIM_PROT_W,
                                  fx->stack, "stack"};
    fx->ep.regions = fx->regions;
    fx->ep.nregions = 1;
    return fx;
}

static void fixture_free(fixture *fx)
{
    sim_image_destroy(fx->img);
    free(fx);
}

static void put(fixture *fx, uint64_t addr, uint64_t value)
{
    assert_true(addr >= STACK && addr + 8 <= STACK + SIM__STACK_SIZE);
    pf_put64(fx->stack + (addr - STACK), value);
}

static int unwind(fixture *fx, sim_regs *regs, sim_frame *frames, int max)
{
    return sim__unwind(&fx->ep, fx->img, BASE, regs, frames, max);
}

static void expect_frame(const sim_frame *f, uint64_t rip, uint64_t rsp, const char *module,
                         const char *function, uint64_t offset)
{
    if (f->rip != rip || f->rsp != rsp || strcmp(f->module, module) != 0 ||
        strcmp(f->function, function) != 0 || f->offset != offset)
        fail_msg("frame %s!%s+0x%llx rip %llx rsp %llx; want %s!%s+0x%llx rip %llx rsp %llx",
                 f->module, f->function, (unsigned long long)f->offset,
                 (unsigned long long)f->rip, (unsigned long long)f->rsp, module, function,
                 (unsigned long long)offset, (unsigned long long)rip,
                 (unsigned long long)rsp);
}

#define TEXT 0x1000u

/* DriverEntry calls worker; the fault is in worker's body. */
static void test_two_frames(void **state)
{
    pf_image spec;
    pf_init_driver(&spec);
    fixture *fx = fixture_new(&spec);
    uint64_t s = STACK + 0x1000;
    put(fx, s + 0x20, 0xbbbb);                        /* worker: push rbx */
    put(fx, s + 0x28, BASE + TEXT + 0x4b);             /* return into DriverEntry */
    put(fx, s + 0x58, 0xb0b0);                        /* DriverEntry: push rbx */
    put(fx, s + 0x60, 0x5151);                        /* push rsi */
    put(fx, s + 0x68, RET_STUB);                      /* return to the host */
    sim_regs regs = {.rip = BASE + TEXT + 0x20, .rsp = s};
    sim_frame frames[SIM_MAX_FRAMES];
    int n = unwind(fx, &regs, frames, SIM_MAX_FRAMES);
    assert_int_equal(n, 3);
    expect_frame(&frames[0], BASE + TEXT + 0x20, s, "forged", "worker", 0x10);
    expect_frame(&frames[1], BASE + TEXT + 0x4b, s + 0x30, "forged", "DriverEntry", 0xb);
    expect_frame(&frames[2], RET_STUB, s + 0x70, "nt", "KiReturnTrap", 0);

    /* max bounds the walk. */
    assert_int_equal(unwind(fx, &regs, frames, 2), 2);
    assert_int_equal(unwind(fx, &regs, frames, 1), 1);
    assert_int_equal(unwind(fx, &regs, frames, 0), 0);
    fixture_free(fx);
}

/* In a prolog only the instructions already run are undone. */
static void test_prolog(void **state)
{
    pf_image spec;
    pf_init_driver(&spec);
    fixture *fx = fixture_new(&spec);
    uint64_t s = STACK + 0x2000;
    sim_frame frames[4];

    /* At worker+0: nothing pushed yet. */
    put(fx, s, BASE + TEXT + 0x4b);
    sim_regs regs = {.rip = BASE + TEXT + 0x10, .rsp = s};
    assert_true(unwind(fx, &regs, frames, 2) == 2);
    expect_frame(&frames[1], BASE + TEXT + 0x4b, s + 8, "forged", "DriverEntry", 0xb);

    /* At worker+1: rbx pushed, no allocation yet. */
    put(fx, s, 0xbbbb);
    put(fx, s + 8, BASE + TEXT + 0x4b);
    regs.rip = BASE + TEXT + 0x11;
    assert_true(unwind(fx, &regs, frames, 2) == 2);
    expect_frame(&frames[1], BASE + TEXT + 0x4b, s + 16, "forged", "DriverEntry", 0xb);

    /* At DriverEntry+2: rsi and rbx pushed. */
    put(fx, s, 0xb0b0);
    put(fx, s + 8, 0x5151);
    put(fx, s + 16, RET_STUB);
    regs.rip = BASE + TEXT + 0x42;
    assert_true(unwind(fx, &regs, frames, 2) == 2);
    expect_frame(&frames[1], RET_STUB, s + 24, "nt", "KiReturnTrap", 0);
    fixture_free(fx);
}

/* In an epilog the rest of the epilog is emulated instead. */
static void test_epilog(void **state)
{
    pf_image spec;
    pf_init_driver(&spec);
    fixture *fx = fixture_new(&spec);
    uint64_t s = STACK + 0x2000;
    sim_frame frames[4];
    sim_regs regs = {.rsp = s};

    /* add rsp, 0x20; pop rbx; ret */
    put(fx, s + 0x20, 0xbbbb);
    put(fx, s + 0x28, BASE + TEXT + 0x4b);
    regs.rip = BASE + TEXT + 0x30;
    assert_true(unwind(fx, &regs, frames, 2) == 2);
    expect_frame(&frames[1], BASE + TEXT + 0x4b, s + 0x30, "forged", "DriverEntry", 0xb);

    /* pop rbx; ret */
    put(fx, s, 0xbbbb);
    put(fx, s + 8, BASE + TEXT + 0x4b);
    regs.rip = BASE + TEXT + 0x34;
    assert_true(unwind(fx, &regs, frames, 2) == 2);
    expect_frame(&frames[1], BASE + TEXT + 0x4b, s + 16, "forged", "DriverEntry", 0xb);

    /* ret */
    put(fx, s, BASE + TEXT + 0x4b);
    regs.rip = BASE + TEXT + 0x35;
    assert_true(unwind(fx, &regs, frames, 2) == 2);
    expect_frame(&frames[1], BASE + TEXT + 0x4b, s + 8, "forged", "DriverEntry", 0xb);
    fixture_free(fx);
}

/* A leaf (no .pdata) and code outside the image: the return is at [rsp]. */
static void test_leaf_and_foreign(void **state)
{
    pf_image spec;
    pf_init_driver(&spec);
    fixture *fx = fixture_new(&spec);
    uint64_t s = STACK + 0x3000;
    sim_frame frames[4];

    put(fx, s, BASE + TEXT + 0x4b);
    sim_regs regs = {.rip = BASE + TEXT, .rsp = s};
    assert_true(unwind(fx, &regs, frames, 2) == 2);
    expect_frame(&frames[0], BASE + TEXT, s, "forged", "LeafExport", 0);
    expect_frame(&frames[1], BASE + TEXT + 0x4b, s + 8, "forged", "DriverEntry", 0xb);

    /* RIP in an nt stub (a kernel API): a leaf named after the export. */
    int index = sim__kapi_find("ExAllocatePoolWithTag");
    assert_true(index >= 0);
    regs.rip = sim__kapi_address((unsigned)index) + 3;
    assert_true(unwind(fx, &regs, frames, 2) == 2);
    expect_frame(&frames[0], regs.rip, s, "nt", "ExAllocatePoolWithTag", 3);
    expect_frame(&frames[1], BASE + TEXT + 0x4b, s + 8, "forged", "DriverEntry", 0xb);

    /* Without an image every frame is a leaf in no module. */
    regs.rip = 0x1234;
    assert_int_equal(sim__unwind(&fx->ep, NULL, 0, &regs, frames, 2), 2);
    expect_frame(&frames[0], 0x1234, s, "", "unknown_function", 0x1234);
    expect_frame(&frames[1], BASE + TEXT + 0x4b, s + 8, "", "unknown_function",
                 BASE + TEXT + 0x4b);
    fixture_free(fx);
}

/* Where the walk must stop. */
static void test_stops(void **state)
{
    pf_image spec;
    pf_init_driver(&spec);
    fixture *fx = fixture_new(&spec);
    uint64_t s = STACK + 0x3000;
    sim_frame frames[8];
    sim_regs regs = {.rip = BASE + TEXT, .rsp = s};

    put(fx, s, 0); /* return address 0 */
    assert_int_equal(unwind(fx, &regs, frames, 8), 1);
    put(fx, s, 0x8000000000001000ull); /* non-canonical */
    assert_int_equal(unwind(fx, &regs, frames, 8), 1);

    regs.rsp = STACK + SIM__STACK_SIZE - 4; /* read past the region */
    assert_int_equal(unwind(fx, &regs, frames, 8), 1);
    regs.rsp = 0xffff900000000000ull; /* no region at all */
    assert_int_equal(unwind(fx, &regs, frames, 8), 1);
    regs.rsp = STACK + SIM__STACK_SIZE - 8; /* a leaf whose return is the last word */
    put(fx, regs.rsp, BASE + TEXT);
    assert_int_equal(unwind(fx, &regs, frames, 8), 2);

    /* A leaf returning to itself over and over ends at the top of the stack. */
    for (uint64_t a = s; a < STACK + SIM__STACK_SIZE; a += 8)
        put(fx, a, BASE + TEXT);
    regs.rsp = s;
    assert_int_equal(unwind(fx, &regs, frames, 8), 8);

    /* No endpoint: only the first frame. */
    assert_int_equal(sim__unwind(NULL, fx->img, BASE, &regs, frames, 8), 1);
    assert_int_equal(sim__unwind(&fx->ep, fx->img, BASE, NULL, frames, 8), 0);
    fixture_free(fx);
}

/*
 * A frame pointer, SAVE_NONVOL_FAR, ALLOC_LARGE in both forms and a chained
 * UNWIND_INFO.  A (rbp frame, saves rbx far) returns into B, whose frame
 * register is rbx: B unwinds correctly only if A restored rbx.  B returns
 * into C, whose primary info allocates and chains to a parent that pushed
 * r12; C returns to the host.
 */
static const uint8_t nops[0x100] = {[0 ... 0xff] = 0x90};

static void test_frame_pointer_save_chain(void **state)
{
    pf_image spec;
    pf_init(&spec);
    pf_add_section(&spec, ".text", PF_SCN_TEXT, nops, sizeof nops, 0);
    /* A at 0x1000: push rbp; sub rsp,0x40; lea rbp,[rsp+0x20]; mov [rbp-0x20+0x30],rbx */
    static const uint8_t a_x[] = {0x01, 15, 6, 0x25, /* frame rbp, offset 2*16 */
                                  15, 0x35, 0x30, 0x00, 0x00, 0x00, /* SAVE_NONVOL_FAR rbx */
                                  10, 0x03,                         /* SET_FPREG */
                                  5, 0x72,                          /* ALLOC_SMALL 0x40 */
                                  1, 0x50, 0, 0};                   /* PUSH_NONVOL rbp */
    /* B at 0x1040: push rbx; mov rbx,rsp; sub rsp,0x100 */
    static const uint8_t b_x[] = {0x01, 11, 4, 0x03,
                                  11, 0x01, 0x20, 0x00, /* ALLOC_LARGE 0x20*8 */
                                  4, 0x03,              /* SET_FPREG */
                                  1, 0x30};             /* PUSH_NONVOL rbx */
    /* C parent at 0x1080: push r12.  C at 0x10c0: sub rsp,0x108, chained. */
    static const uint8_t cp_x[] = {0x01, 2, 1, 0x00, 2, 0xc0, 0, 0};
    uint8_t c_x[20] = {0x01 | 0x04 << 3, 7, 3, 0x00,
                       7, 0x11, 0x08, 0x01, 0x00, 0x00, /* ALLOC_LARGE 0x108 (32-bit) */
                       0, 0};
    pf_add_function(&spec, 0x1000, 0x1040, a_x, sizeof a_x);
    pf_add_function(&spec, 0x1040, 0x1080, b_x, sizeof b_x);
    pf_add_function(&spec, 0x1080, 0x10c0, cp_x, sizeof cp_x);
    pf_add_function(&spec, 0x10c0, 0x1100, c_x, sizeof c_x);
    pf_add_symbol(&spec, "A", 1, 0x00, 0x20, 2);
    pf_add_symbol(&spec, "B", 1, 0x40, 0x20, 2);
    pf_add_symbol(&spec, "C", 1, 0xc0, 0x20, 3);

    /* The chained RUNTIME_FUNCTION names C's parent: xdata rvas are known
     * only after a first layout. */
    pf_layout l;
    free(pf_build(&spec, &l));
    pf_put32(spec.functions[3].xdata + 12, 0x1080);
    pf_put32(spec.functions[3].xdata + 16, 0x10c0);
    spec.functions[3].xdata_size = 24;
    pf_put32(spec.functions[3].xdata + 20, l.function_xdata[2]);
    fixture *fx = fixture_new(&spec);

    uint64_t f = STACK + 0x1000;                    /* A's frame base */
    uint64_t bfp = f + 0x50 + 0x100;                /* B's rbx */
    put(fx, f + 0x30, bfp);                         /* A saved B's rbx */
    put(fx, f + 0x40, 0x1111);                      /* A pushed rbp */
    put(fx, f + 0x48, BASE + 0x1040 + 0x20);        /* return into B */
    put(fx, bfp, 0x2222);                           /* B pushed rbx */
    put(fx, bfp + 8, BASE + 0x10c0 + 0x10);         /* return into C */
    uint64_t c_rsp = bfp + 0x10;
    put(fx, c_rsp + 0x108, 0x3333);                 /* C's parent pushed r12 */
    put(fx, c_rsp + 0x110, RET_STUB);

    sim_regs regs = {.rip = BASE + 0x1000 + 0x30, .rsp = f - 0x80, .rbp = f + 0x20,
                     .rbx = 0xdead};
    sim_frame frames[8];
    int n = unwind(fx, &regs, frames, 8);
    assert_int_equal(n, 4);
    expect_frame(&frames[0], BASE + 0x1030, f - 0x80, "forged", "A", 0x30);
    expect_frame(&frames[1], BASE + 0x1060, f + 0x50, "forged", "B", 0x20);
    expect_frame(&frames[2], BASE + 0x10d0, bfp + 0x10, "forged", "C", 0x10);
    expect_frame(&frames[3], RET_STUB, c_rsp + 0x118, "nt", "KiReturnTrap", 0);

    /* A chain that points at itself ends the walk instead of looping. */
    pf_put32(spec.functions[3].xdata + 20, l.function_xdata[3]);
    fixture *loop = fixture_new(&spec);
    memcpy(loop->stack, fx->stack, sizeof fx->stack);
    regs.rip = BASE + 0x10d0;
    regs.rsp = c_rsp;
    assert_int_equal(unwind(loop, &regs, frames, 8), 1);
    fixture_free(loop);
    fixture_free(fx);
}

/* PUSH_MACHFRAME: an interrupt frame holds RIP and RSP of what it interrupted. */
static void test_machine_frame(void **state)
{
    pf_image spec;
    pf_init(&spec);
    pf_add_section(&spec, ".text", PF_SCN_TEXT, nops, sizeof nops, 0);
    static const uint8_t m_x[] = {0x01, 0, 1, 0x00, 0, 0x1a, 0, 0}; /* with error code */
    pf_add_function(&spec, 0x1000, 0x1010, m_x, sizeof m_x);
    pf_add_symbol(&spec, "Trap", 1, 0x00, 0x20, 2);
    pf_add_symbol(&spec, "Interrupted", 1, 0x80, 0x20, 2);
    fixture *fx = fixture_new(&spec);
    uint64_t s = STACK + 0x1000;
    put(fx, s, 0x10);                    /* error code */
    put(fx, s + 8, BASE + 0x1084);       /* RIP */
    put(fx, s + 16, 0x10);               /* CS */
    put(fx, s + 24, 0x202);              /* EFLAGS */
    put(fx, s + 32, s + 0x200);          /* RSP */
    put(fx, s + 0x200, RET_STUB);
    sim_regs regs = {.rip = BASE + 0x1004, .rsp = s};
    sim_frame frames[8];
    assert_int_equal(unwind(fx, &regs, frames, 8), 3);
    expect_frame(&frames[1], BASE + 0x1084, s + 0x200, "forged", "Interrupted", 4);
    expect_frame(&frames[2], RET_STUB, s + 0x208, "nt", "KiReturnTrap", 0);

    /* An interrupted RSP below the current one: the stack must grow up. */
    put(fx, s + 32, s - 0x100);
    assert_int_equal(unwind(fx, &regs, frames, 8), 1);
    fixture_free(fx);
}

/* Unwind data that is damaged stops the walk; it never reads out of bounds. */
static void test_bad_unwind_info(void **state)
{
    static const uint8_t bad[][8] = {
        {0x03, 0, 1, 0, 0, 0x00, 0, 0},  /* version 3 */
        {0x01, 0, 1, 0, 0, 0x0b, 0, 0},  /* unknown op 11 */
        {0x01, 0, 1, 0, 0, 0x01, 0, 0},  /* ALLOC_LARGE missing its slot */
        {0x01, 0, 1, 0, 0, 0x21, 0, 0},  /* ALLOC_LARGE info 2 */
        {0x01, 0, 1, 0, 0, 0x03, 0, 0},  /* SET_FPREG without a frame register */
        {0x01, 0, 40, 0, 0, 0x00, 0, 0}, /* codes run past the section's data */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pf_image spec;
        pf_init(&spec);
        pf_add_section(&spec, ".text", PF_SCN_TEXT, nops, sizeof nops, 0);
        pf_add_function(&spec, 0x1000, 0x1010, bad[i], sizeof bad[i]);
        fixture *fx = fixture_new(&spec);
        put(fx, STACK + 0x100, RET_STUB);
        sim_regs regs = {.rip = BASE + 0x1004, .rsp = STACK + 0x100};
        sim_frame frames[4];
        if (unwind(fx, &regs, frames, 4) != 1)
            fail_msg("bad unwind info %zu was used", i);
        fixture_free(fx);
    }
}

static void test_symbolize(void **state)
{
    pf_image spec;
    pf_init_driver(&spec);
    fixture *fx = fixture_new(&spec);
    char module[64], function[64];
    uint64_t off;

    sim__symbolize(&fx->ep, fx->img, BASE, BASE + 0x1015, module, sizeof module, function,
                   sizeof function, &off);
    assert_string_equal(module, "forged");
    assert_string_equal(function, "worker");
    assert_int_equal(off, 5);

    /* Between functions, after a leaf's symbol (no .pdata there). */
    sim__symbolize(&fx->ep, fx->img, BASE, BASE + 0x1008, module, sizeof module, function,
                   sizeof function, &off);
    assert_string_equal(function, "LeafExport");
    assert_int_equal(off, 8);

    /* Data is not code: no function, module offset. */
    sim__symbolize(&fx->ep, fx->img, BASE, BASE + 0x2008, module, sizeof module, function,
                   sizeof function, &off);
    assert_string_equal(module, "forged");
    assert_string_equal(function, "unknown_function");
    assert_int_equal(off, 0x2008);

    /* Headers. */
    sim__symbolize(&fx->ep, fx->img, BASE, BASE + 0x10, module, sizeof module, function,
                   sizeof function, &off);
    assert_string_equal(function, "unknown_function");
    assert_int_equal(off, 0x10);

    /* nt: the return trap, an API stub, a reserved stub, past the table. */
    sim__symbolize(&fx->ep, fx->img, BASE, RET_STUB + 2, module, sizeof module, function,
                   sizeof function, &off);
    assert_string_equal(module, "nt");
    assert_string_equal(function, "KiReturnTrap");
    assert_int_equal(off, 2);
    int index = sim__kapi_find("KeBugCheckEx");
    assert_true(index >= 0);
    sim__symbolize(&fx->ep, fx->img, BASE, sim__kapi_address((unsigned)index) + 7, module,
                   sizeof module, function, sizeof function, &off);
    assert_string_equal(module, "nt");
    assert_string_equal(function, "KeBugCheckEx");
    assert_int_equal(off, 7);
    sim__symbolize(&fx->ep, fx->img, BASE, SIM__NT_BASE + 5 * SIM__NT_STUB_SIZE + 1, module,
                   sizeof module, function, sizeof function, &off);
    assert_string_equal(function, "unknown_function");
    assert_int_equal(off, 5 * SIM__NT_STUB_SIZE + 1);
    sim__symbolize(&fx->ep, fx->img, BASE, SIM__NT_BASE + SIM__NT_SIZE - 1, module,
                   sizeof module, function, sizeof function, &off);
    assert_string_equal(module, "nt");
    assert_string_equal(function, "unknown_function");

    /* Nowhere. */
    sim__symbolize(&fx->ep, fx->img, BASE, 0xffff840500000074ull, module, sizeof module,
                   function, sizeof function, &off);
    assert_string_equal(module, "");
    assert_string_equal(function, "unknown_function");
    assert_true(off == 0xffff840500000074ull);

    /* Small buffers truncate; NULL outputs are allowed. */
    char m[4], fn[5];
    sim__symbolize(&fx->ep, fx->img, BASE, BASE + 0x1045, m, sizeof m, fn, sizeof fn, NULL);
    assert_string_equal(m, "for");
    assert_string_equal(fn, "Driv");
    sim__symbolize(NULL, fx->img, BASE, BASE + 0x1045, NULL, 0, NULL, 0, NULL);
    fixture_free(fx);
}

/* A .pdata function without a symbol of its own does not borrow one. */
static void test_symbolize_unnamed_function(void **state)
{
    pf_image spec;
    pf_init(&spec);
    pf_add_section(&spec, ".text", PF_SCN_TEXT, nops, sizeof nops, 0);
    static const uint8_t x[] = {0x01, 0, 0, 0};
    pf_add_function(&spec, 0x1000, 0x1010, x, sizeof x);
    pf_add_function(&spec, 0x1010, 0x1020, x, sizeof x);
    pf_add_symbol(&spec, "named", 1, 0x00, 0x20, 2);
    fixture *fx = fixture_new(&spec);
    char module[64], function[64];
    uint64_t off;
    sim__symbolize(&fx->ep, fx->img, BASE, BASE + 0x1004, module, sizeof module, function,
                   sizeof function, &off);
    assert_string_equal(function, "named");
    assert_int_equal(off, 4);
    sim__symbolize(&fx->ep, fx->img, BASE, BASE + 0x1014, module, sizeof module, function,
                   sizeof function, &off);
    assert_string_equal(function, "unknown_function");
    assert_int_equal(off, 0x1014);
    fixture_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_frames),
        cmocka_unit_test(test_prolog),
        cmocka_unit_test(test_epilog),
        cmocka_unit_test(test_leaf_and_foreign),
        cmocka_unit_test(test_stops),
        cmocka_unit_test(test_frame_pointer_save_chain),
        cmocka_unit_test(test_machine_frame),
        cmocka_unit_test(test_bad_unwind_info),
        cmocka_unit_test(test_symbolize),
        cmocka_unit_test(test_symbolize_unnamed_function),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
