/*
 * test_alloc.c — the allocation wrapper, and that code built on it fails
 * cleanly when any one allocation fails (run under ASan, a leak fails too).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim.h"

static void fail_after_fails_exactly_the_nth(void **state)
{
    (void)state;
    sim_alloc_fail_after(3);
    void *a = sim_malloc(8), *b = sim_calloc(2, 8);
    void *c = sim_malloc(8);
    void *d = sim_strdup("later ones fail too");
    sim_alloc_fail_after(0);
    void *e = sim_realloc(NULL, 16);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    assert_null(d);
    assert_non_null(e);
    sim_free(a);
    sim_free(b);
    sim_free(e);
    sim_free(NULL);
}

static void count_grows_with_each_allocation(void **state)
{
    (void)state;
    uint64_t before = sim_alloc_count();
    char *s = sim_strdup("x");
    assert_string_equal(s, "x");
    sim_free(s);
    assert_int_equal(sim_alloc_count(), before + 1);
}

static void engine_create_survives_every_failure(void **state)
{
    (void)state;
    char err[256];
    int failures = 0;
    for (uint64_t n = 1; n < 64; n++) {
        sim_engine *engine = NULL;
        sim_alloc_fail_after(n);
        int rc = sim_engine_create(&engine, err, sizeof err);
        sim_alloc_fail_after(0);
        if (rc == 0) {
            sim_engine_destroy(engine);
            break;
        }
        assert_int_equal(rc, SIM_ENOMEM);
        assert_null(engine);
        assert_true(strlen(err) > 0);
        failures++;
    }
    assert_true(failures >= 1);
}

static void names_come_from_the_tables(void **state)
{
    (void)state;
    assert_string_equal(sim_strerror(SIM_EFORMAT), "malformed input");
    assert_string_equal(sim_strerror(12345), "unknown error");
    assert_string_equal(sim_outcome_name(SIM_OUTCOME_UNSUPPORTED_API), "unsupported-api");
    assert_string_equal(sim_bugcheck_name(0x50), "PAGE_FAULT_IN_NONPAGED_AREA");
    assert_string_equal(sim_bugcheck_name(0x13A), "KERNEL_MODE_HEAP_CORRUPTION");
    assert_null(sim_bugcheck_name(0x12345));
    assert_string_equal(sim_addr_class_name(sim_addr_classify(0)), "null");
    assert_int_equal(sim_addr_classify(0x7FFFFFFEFFFFull), SIM_ADDR_USER);
    assert_int_equal(sim_addr_classify(0x0000800000000000ull), SIM_ADDR_NONCANONICAL);
    assert_int_equal(sim_addr_classify(0xFFFF840500000074ull), SIM_ADDR_KERNEL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fail_after_fails_exactly_the_nth),
        cmocka_unit_test(count_grows_with_each_allocation),
        cmocka_unit_test(engine_create_survives_every_failure),
        cmocka_unit_test(names_come_from_the_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
