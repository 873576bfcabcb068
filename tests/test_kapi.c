/*
 * test_kapi.c — the kernel API layer as a driver sees it.  Runs kapi.sys
 * (images/tests/kapi.c), which checks the ABI and the APIs from inside the
 * guest and prints one "kapi: … ok|FAIL" line per check, then reads the
 * log: every check passed, and the values the driver printed (versions,
 * file contents, formatted arguments) are the ones the host gave it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "support.h"

/* Where every engine maps the kernel stack (sim-internal.h). */
#define SIM__STACK_BASE_FOR_TEST 0xFFFFB00000001000ull

static sim_image *image;
static sim_engine *engine;
static sim_outcome out;

static const char file_text[] = "fleetsim kapi test file\n";

static const sim_file files[] = {
    { "\\SystemRoot\\System32\\drivers\\kapi\\test.bin", (const uint8_t *)file_text,
      sizeof file_text - 1, 0 },
    { "\\??\\C:\\Windows\\System32\\drivers\\kapi\\other.bin", (const uint8_t *)"12345", 5, 0 },
    { "\\SystemRoot\\System32\\drivers\\kapi\\readme.txt", (const uint8_t *)"x", 1, 0 },
    { "\\SystemRoot\\System32\\drivers\\kapi\\sub\\deep.bin", (const uint8_t *)"y", 1, 0 },
};

static int setup(void **state)
{
    (void)state;
    image = support_image("kapi");
    engine = support_engine();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sim_engine_destroy(engine);
    sim_image_destroy(image);
    return 0;
}

static void run_kapi(const sim_profile *profile, const sim_file *vfs, size_t nfiles)
{
    sim_run run = {
        .image = image,
        .profile = profile,
        .seed = 42,
        .files = vfs,
        .nfiles = nfiles,
    };
    memset(&out, 0, sizeof out);
    support_run_full(engine, &run, &out);
}

static void expect_clean(void)
{
    if (out.kind != SIM_OUTCOME_OK || strstr(out.log, "FAIL") || out.status != 0)
        support_dump(&out);
    assert_int_equal(out.kind, SIM_OUTCOME_OK);
    assert_false(out.log_truncated);
    assert_null(strstr(out.log, "FAIL"));
    assert_non_null(strstr(out.log, "kapi: done failures=0\n"));
    assert_true(out.status_valid);
    assert_int_equal(out.status, 0);
}

static void expect_line(const char *line)
{
    if (!strstr(out.log, line)) {
        support_dump(&out);
        fail_msg("log lacks: %s", line);
    }
}

static void test_default_profile(void **state)
{
    const sim_profile *p = sim_profile_default();
    char line[256];
    (void)state;

    run_kapi(NULL, files, sizeof files / sizeof files[0]);
    expect_clean();

    /* RtlGetVersion gave the profile's numbers. */
    snprintf(line, sizeof line,
             "kapi: version %u.%u.%u platform 2 product %u sp %u.%u csd '%s'\n", p->major,
             p->minor, p->build, p->product_type, p->sp_major, p->sp_minor, p->csd);
    expect_line(line);

    /* The file came through whole, and the directory listed the *.bin
     * files in name order (not readme.txt, not the sub folder). */
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof file_text - 1; i++)
        sum = sum * 31 + (unsigned char)file_text[i];
    snprintf(line, sizeof line, "kapi: file size=%zu sum=%08x text='%s'", sizeof file_text - 1,
             sum, file_text);
    expect_line(line);
    const char *a = strstr(out.log, "kapi: dirent other.bin size=5\n");
    const char *b = strstr(out.log, "kapi: dirent test.bin size=24\n");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    assert_null(strstr(out.log, "readme.txt"));
    assert_null(strstr(out.log, "kapi: dirent sub"));

    /* Twelve DbgPrint arguments of mixed sizes, eight on the stack. */
    expect_line("kapi: mixed -5 4000000000 -9000000000 -2 Z text cafe "
                "18446744073709551615 wstr FFFF840500000074 44 1099511627776\n");
    expect_line("kapi: va 1 two 3000000000000\n");
    expect_line("kapi: ExAllocatePool2 present\n");
    expect_line("kapi: preserved-KeGetCurrentIrql ok\n");
    expect_line("kapi: preserved-strlen ok\n");
    expect_line("kapi: spinlock-held ok\n");
    expect_line("kapi: ZwReadFile-offset ok\n");
}

static void test_without_files(void **state)
{
    (void)state;

    run_kapi(NULL, NULL, 0);
    expect_clean();
    expect_line("kapi: vfs skipped (no test.bin)\n");
}

static void test_old_build_lacks_pool2(void **state)
{
    sim_profile p = *sim_profile_default();
    char line[256];
    (void)state;

    snprintf(p.name, sizeof p.name, "win10-1809-test");
    p.build = 17763;
    p.ubr = 6054;
    p.pool = SIM_POOL_LEGACY;
    p.absent[p.nabsent++] = "ExAllocatePool2";
    run_kapi(&p, files, sizeof files / sizeof files[0]);
    expect_clean();
    expect_line("kapi: ExAllocatePool2 absent\n");
    snprintf(line, sizeof line, "kapi: version 10.0.17763 ");
    expect_line(line);
}

/* Run kapi.sys with mode.txt holding `mode`: it misuses the kernel. */
static void run_mode(const char *mode, sim_pool_kind pool)
{
    sim_profile p = *sim_profile_default();
    sim_file vfs[] = {
        { "\\SystemRoot\\System32\\drivers\\kapi\\mode.txt", (const uint8_t *)mode,
          strlen(mode), 0 },
    };

    p.pool = pool;
    run_kapi(&p, vfs, 1);
    if (out.kind != SIM_OUTCOME_BUGCHECK)
        support_dump(&out);
    assert_int_equal(out.kind, SIM_OUTCOME_BUGCHECK);
    assert_null(strstr(out.log, "kapi: survived"));
}

static void test_bugcheck_parameters_pass_through(void **state)
{
    (void)state;
    run_mode("bugcheck", SIM_POOL_SEGMENT_HEAP);
    assert_int_equal(out.bugcheck, 0xE2);
    assert_int_equal(out.params[0], 0x1111);
    assert_int_equal(out.params[1], 0x2222);
    assert_int_equal(out.params[2], 0x3333);
    assert_int_equal(out.params[3], 0x4444);
    /* Blamed on the driver's call, not on nt's stub. */
    assert_true(out.has_fault);
    assert_string_equal(out.fault.module, "kapi");
}

static void test_spin_lock_deadlock_is_a_watchdog(void **state)
{
    (void)state;
    run_mode("deadlock", SIM_POOL_SEGMENT_HEAP);
    assert_int_equal(out.bugcheck, SIM_BUGCHECK_DPC_WATCHDOG_VIOLATION);
    assert_int_equal(out.params[0], 1);
}

static void test_freeing_a_stack_address(void **state)
{
    (void)state;
    /* A stack address was never in any pool. */
    run_mode("badfree", SIM_POOL_LEGACY);
    assert_int_equal(out.bugcheck, SIM_BUGCHECK_BAD_POOL_CALLER);
    assert_int_equal(out.params[0], 0x42);
    assert_int_equal(out.params[1] >> 44, SIM__STACK_BASE_FOR_TEST >> 44);
}

static void test_stale_pointer_in_dbgprint_faults(void **state)
{
    (void)state;
    run_mode("stale-print", SIM_POOL_SEGMENT_HEAP);
    assert_int_equal(out.bugcheck, SIM_BUGCHECK_PAGE_FAULT_IN_NONPAGED_AREA);
    assert_int_equal(out.params[0], 0xFFFF840500000074ull);
}

static void test_raising_irql_downwards(void **state)
{
    (void)state;
    run_mode("irql-down", SIM_POOL_SEGMENT_HEAP);
    assert_int_equal(out.bugcheck, 0x09); /* IRQL_NOT_GREATER_OR_EQUAL */
    assert_int_equal(out.params[0], 2);
    assert_int_equal(out.params[1], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_profile),
        cmocka_unit_test(test_without_files),
        cmocka_unit_test(test_old_build_lacks_pool2),
        cmocka_unit_test(test_bugcheck_parameters_pass_through),
        cmocka_unit_test(test_spin_lock_deadlock_is_a_watchdog),
        cmocka_unit_test(test_freeing_a_stack_address),
        cmocka_unit_test(test_stale_pointer_in_dbgprint_faults),
        cmocka_unit_test(test_raising_irql_downwards),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
