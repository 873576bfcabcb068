/*
 * test_pool.c — the kernel pool in guest memory, on a hand-made endpoint.
 *
 * The pool needs only the endpoint's arena, profile, PRNG and outcome, plus
 * a Unicorn engine for sim__bugcheck to read registers from (it captures
 * the crash record as it would at an API call).  No image runs: the tests
 * play the driver by writing the arena directly, as an overrun would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sim-internal.h"

#define BASE 0xFFFF840123400000ull
#define ARENA (256u * 1024u)

typedef struct fixture {
    sim_endpoint ep;
    sim_outcome out;
    sim_profile profile;
    uint8_t *host;
} fixture;

static fixture *fixture_new(sim_pool_kind kind, bool zeroed, uint64_t seed,
                            uint64_t arena)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->host = calloc(1, arena);
    assert_non_null(f->host);
    f->profile = *sim_profile_default();
    f->profile.pool = kind;
    f->profile.pool_zeroed = zeroed;
    f->ep.profile = &f->profile;
    f->ep.out = &f->out;
    f->ep.rng = seed | 1;
    assert_int_equal(uc_open(UC_ARCH_X86, UC_MODE_64, &f->ep.uc), UC_ERR_OK);
    assert_int_equal(cs_open(CS_ARCH_X86, CS_MODE_64, &f->ep.cs), CS_ERR_OK);
    sim__pool_reset(&f->ep, BASE, f->host, arena);
    return f;
}

static void fixture_free(fixture *f)
{
    uc_close(f->ep.uc);
    cs_close(&f->ep.cs);
    free(f->host);
    free(f);
}

static uint8_t *at(fixture *f, uint64_t addr)
{
    return f->host + (addr - BASE);
}

static uint64_t word(fixture *f, uint64_t addr)
{
    uint64_t v;
    memcpy(&v, at(f, addr), 8);
    return v;
}

static void expect_bugcheck(fixture *f, uint32_t code, uint64_t p1)
{
    assert_true(f->ep.stopped);
    assert_int_equal(f->out.kind, SIM_OUTCOME_BUGCHECK);
    assert_int_equal(f->out.bugcheck, code);
    assert_int_equal(f->out.params[0], p1);
}

/* ---- allocation -------------------------------------------------------- */

static void test_legacy_headers(void **state)
{
    fixture *f = fixture_new(SIM_POOL_LEGACY, false, 7, ARENA);
    (void)state;

    uint64_t a = sim__pool_alloc(&f->ep, 40, 0x74736554 /* 'Test' */, false);
    uint64_t b = sim__pool_alloc(&f->ep, 100, 0x6B636F4C /* 'Lock' */, false);
    assert_int_equal(a, BASE + 16);
    assert_int_equal(a % 16, 0);
    assert_int_equal(b % 16, 0);
    /* 40 bytes + header = 4 units; 100 + header = 8 units. */
    assert_int_equal(b, a + 4 * 16);
    const uint8_t *ha = at(f, a - 16), *hb = at(f, b - 16);
    assert_int_equal(ha[0], 0);      /* PreviousSize */
    assert_int_equal(ha[2], 4);      /* BlockSize */
    assert_int_equal(ha[3], 2);      /* PoolType: nonpaged, in use */
    assert_memory_equal(ha + 4, "Test", 4);
    assert_int_equal(hb[0], 4);
    assert_int_equal(hb[2], 8);
    assert_memory_equal(hb + 4, "Lock", 4);
    assert_int_equal(word(f, b - 8), 0); /* ProcessBilled */
    assert_int_equal(f->ep.pool.nchunks, 2);
    assert_int_equal(f->ep.pool.bytes_live, 140);
    fixture_free(f);
}

static void test_segment_heap_headers_are_encoded(void **state)
{
    fixture *f = fixture_new(SIM_POOL_SEGMENT_HEAP, false, 7, ARENA);
    (void)state;

    uint64_t a = sim__pool_alloc(&f->ep, 40, 0x74736554, false);
    assert_int_equal(a % 16, 0);
    /* The tag is not in clear, and the shadow matches the guest copy. */
    assert_null(memmem(at(f, a - 16), 16, "Test", 4));
    assert_memory_equal(at(f, a - 16), f->ep.pool.chunks[0].header, 16);
    sim__pool_free(&f->ep, a, 0x74736554, true);
    assert_false(f->ep.stopped);
    fixture_free(f);
}

static void test_stale_fill(void **state)
{
    fixture *f = fixture_new(SIM_POOL_LEGACY, false, 12345, ARENA);
    (void)state;

    uint64_t a = sim__pool_alloc(&f->ep, 4096, 1, false);
    int pointers = 0, zeros = 0;
    for (uint64_t off = 0; off < 4096; off += 8) {
        uint64_t v = word(f, a + off);
        if (v == 0)
            zeros++;
        else if ((v >> 40) == 0xFFFF84)
            pointers++;
        else
            assert_true(v < 0x100); /* else a small integer */
    }
    /* Of 512 words about 7/8 pointer-like, 1/16 zero. */
    assert_in_range(pointers, 400, 480);
    assert_in_range(zeros, 10, 60);

    /* Every pointer-like word points into a page no profile may map
     * (stride 0, where pool windows are, never: 1 in 256 were there). */
    uint64_t big = sim__pool_alloc(&f->ep, 128 * 1024, 1, false);
    for (uint64_t off = 0; off < 128 * 1024; off += 8) {
        uint64_t v = word(f, big + off);
        if (v >= 0x100)
            assert_true(sim__holds_stale_page(v, 8));
    }

    /* Zeroed when asked, or when the profile zeroes all pool. */
    uint64_t z = sim__pool_alloc(&f->ep, 256, 1, true);
    for (uint64_t off = 0; off < 256; off += 8)
        assert_int_equal(word(f, z + off), 0);
    fixture_free(f);

    f = fixture_new(SIM_POOL_LEGACY, true, 12345, ARENA);
    z = sim__pool_alloc(&f->ep, 256, 1, false);
    for (uint64_t off = 0; off < 256; off += 8)
        assert_int_equal(word(f, z + off), 0);
    fixture_free(f);
}

static void test_fill_is_deterministic(void **state)
{
    fixture *a = fixture_new(SIM_POOL_LEGACY, false, 99, ARENA);
    fixture *b = fixture_new(SIM_POOL_LEGACY, false, 99, ARENA);
    fixture *c = fixture_new(SIM_POOL_LEGACY, false, 100, ARENA);
    (void)state;

    for (int i = 0; i < 20; i++) {
        uint64_t size = (uint64_t)(i * 37) % 300;
        sim__pool_alloc(&a->ep, size, 1, false);
        sim__pool_alloc(&b->ep, size, 1, false);
        sim__pool_alloc(&c->ep, size, 1, false);
    }
    uint64_t used = a->ep.pool.top - BASE + 256;
    assert_memory_equal(a->host, b->host, used);
    assert_memory_not_equal(a->host, c->host, used);
    fixture_free(a);
    fixture_free(b);
    fixture_free(c);
}

static void test_read_past_last_block_is_stale(void **state)
{
    fixture *f = fixture_new(SIM_POOL_LEGACY, false, 5, ARENA);
    (void)state;

    /* An array of 20 pointers; the 21st read lands past the block. */
    uint64_t a = sim__pool_alloc(&f->ep, 20 * 8, 1, true);
    int nonzero = 0;
    for (int i = 20; i < 40; i++)
        nonzero += word(f, a + 8u * i) != 0;
    assert_true(nonzero > 0);
    fixture_free(f);
}

static void test_zero_size_and_exhaustion(void **state)
{
    fixture *f = fixture_new(SIM_POOL_LEGACY, false, 3, 1024);
    (void)state;

    uint64_t a = sim__pool_alloc(&f->ep, 0, 1, false);
    uint64_t b = sim__pool_alloc(&f->ep, 0, 1, false);
    assert_true(a != 0 && b != 0 && a != b);
    sim__pool_free(&f->ep, a, 1, true);
    assert_false(f->ep.stopped);

    assert_int_equal(sim__pool_alloc(&f->ep, 4096, 1, false), 0);
    assert_int_equal(sim__pool_alloc(&f->ep, UINT64_MAX, 1, false), 0);
    /* Fill it to the end exactly: 1024 - 64 used = 960 = 60 units. */
    assert_int_not_equal(sim__pool_alloc(&f->ep, 59 * 16, 1, false), 0);
    assert_int_equal(sim__pool_alloc(&f->ep, 0, 1, false), 0);
    assert_false(f->ep.stopped);
    fixture_free(f);
}

static void test_chunk_limit(void **state)
{
    fixture *f = fixture_new(SIM_POOL_LEGACY, false, 3, 8u << 20);
    (void)state;

    for (size_t i = 0; i < SIM__POOL_MAX_CHUNKS; i++)
        assert_int_not_equal(sim__pool_alloc(&f->ep, 8, 1, false), 0);
    assert_int_equal(sim__pool_alloc(&f->ep, 8, 1, false), 0);
    /* Binary search finds the first, the middle and the last. */
    sim__pool_free(&f->ep, f->ep.pool.chunks[0].addr, 1, false);
    sim__pool_free(&f->ep, f->ep.pool.chunks[4000].addr, 1, false);
    sim__pool_free(&f->ep, f->ep.pool.chunks[SIM__POOL_MAX_CHUNKS - 1].addr, 1, false);
    assert_false(f->ep.stopped);
    fixture_free(f);
}

/* ---- freeing ----------------------------------------------------------- */

static void test_free_marks_header(void **state)
{
    fixture *f = fixture_new(SIM_POOL_LEGACY, false, 3, ARENA);
    (void)state;

    uint64_t a = sim__pool_alloc(&f->ep, 32, 1, false);
    sim__pool_alloc(&f->ep, 32, 1, false);
    sim__pool_free(&f->ep, a, 1, true);
    assert_false(f->ep.stopped);
    assert_int_equal(at(f, a - 16)[3], 0); /* PoolType 0: free */
    assert_true(f->ep.pool.chunks[0].free);
    assert_int_equal(f->ep.pool.bytes_live, 32);
    fixture_free(f);
}

static void test_double_free(void **state)
{
    fixture *f = fixture_new(SIM_POOL_LEGACY, false, 3, ARENA);
    (void)state;

    uint64_t a = sim__pool_alloc(&f->ep, 32, 1, false);
    sim__pool_free(&f->ep, a, 1, true);
    sim__pool_free(&f->ep, a, 1, true);
    expect_bugcheck(f, SIM_BUGCHECK_BAD_POOL_CALLER, 0x07);
    assert_int_equal(f->out.params[2], word(f, a - 16));
    assert_int_equal(f->out.params[3], a);
    fixture_free(f);

    f = fixture_new(SIM_POOL_SEGMENT_HEAP, false, 3, ARENA);
    a = sim__pool_alloc(&f->ep, 32, 1, false);
    sim__pool_free(&f->ep, a, 1, true);
    sim__pool_free(&f->ep, a, 1, true);
    expect_bugcheck(f, SIM_BUGCHECK_KERNEL_MODE_HEAP_CORRUPTION, 0x8);
    assert_int_equal(f->out.params[1], BASE);
    fixture_free(f);
}

static void test_bad_pointers(void **state)
{
    static const struct { uint64_t addr; uint64_t p1; } legacy[] = {
        { 0, 0x46 },                        /* NULL */
        { 0x7FF612340000ull, 0x40 },        /* user mode */
        { 0xFFFFF80012345678ull, 0x42 },    /* never in any pool */
        { BASE + 16 + 8, 0x46 },            /* inside a block */
    };
    (void)state;

    for (size_t i = 0; i < sizeof legacy / sizeof legacy[0]; i++) {
        fixture *f = fixture_new(SIM_POOL_LEGACY, false, 3, ARENA);
        sim__pool_alloc(&f->ep, 64, 1, false);
        sim__pool_free(&f->ep, legacy[i].addr, 1, true);
        expect_bugcheck(f, SIM_BUGCHECK_BAD_POOL_CALLER, legacy[i].p1);
        assert_int_equal(f->out.params[1], legacy[i].addr);
        fixture_free(f);
    }

    fixture *f = fixture_new(SIM_POOL_SEGMENT_HEAP, false, 3, ARENA);
    sim__pool_alloc(&f->ep, 64, 1, false);
    sim__pool_free(&f->ep, BASE + 16 + 8, 1, true);
    expect_bugcheck(f, SIM_BUGCHECK_KERNEL_MODE_HEAP_CORRUPTION, 0x9);
    assert_int_equal(f->out.params[2], BASE + 16 + 8);
    fixture_free(f);
}

static void test_overrun_into_next_header(void **state)
{
    fixture *f = fixture_new(SIM_POOL_LEGACY, false, 3, ARENA);
    (void)state;

    uint64_t a = sim__pool_alloc(&f->ep, 32, 1, false);
    uint64_t b = sim__pool_alloc(&f->ep, 32, 1, false);
    /* The driver writes 40 bytes into its 32: the next header's first
     * bytes change. */
    memset(at(f, a + 32), 0x41, 8);
    sim__pool_free(&f->ep, a, 1, true);
    expect_bugcheck(f, SIM_BUGCHECK_BAD_POOL_HEADER, 0x20);
    assert_int_equal(f->out.params[1], a - 16);
    assert_int_equal(f->out.params[2], b - 16);
    fixture_free(f);

    f = fixture_new(SIM_POOL_SEGMENT_HEAP, false, 3, ARENA);
    a = sim__pool_alloc(&f->ep, 32, 1, false);
    b = sim__pool_alloc(&f->ep, 32, 1, false);
    at(f, a + 32)[0] ^= 1;
    sim__pool_free(&f->ep, a, 1, true);
    expect_bugcheck(f, SIM_BUGCHECK_KERNEL_MODE_HEAP_CORRUPTION, 0x6);
    assert_int_equal(f->out.params[2], b - 16);
    fixture_free(f);
}

static void test_own_header_corrupt(void **state)
{
    fixture *f = fixture_new(SIM_POOL_LEGACY, false, 3, ARENA);
    (void)state;

    uint64_t a = sim__pool_alloc(&f->ep, 32, 1, false);
    uint64_t b = sim__pool_alloc(&f->ep, 32, 1, false);
    /* The block before b overran into b's header; freeing b notices. */
    at(f, b - 16)[2] = 0x7F;
    sim__pool_free(&f->ep, b, 1, true);
    expect_bugcheck(f, SIM_BUGCHECK_BAD_POOL_HEADER, 0x20);
    assert_int_equal(f->out.params[1], b - 16);
    (void)a;
    fixture_free(f);

    f = fixture_new(SIM_POOL_SEGMENT_HEAP, false, 3, ARENA);
    a = sim__pool_alloc(&f->ep, 32, 1, false);
    at(f, a - 16)[9] ^= 0x10;
    sim__pool_free(&f->ep, a, 1, true);
    expect_bugcheck(f, SIM_BUGCHECK_KERNEL_MODE_HEAP_CORRUPTION, 0x3);
    assert_int_equal(f->out.params[2], a - 16);
    fixture_free(f);
}

static void test_data_writes_are_not_corruption(void **state)
{
    fixture *f = fixture_new(SIM_POOL_LEGACY, false, 3, ARENA);
    (void)state;

    /* Writing every byte of one's own block (and the slack the 16-byte
     * rounding gives) is fine. */
    uint64_t a = sim__pool_alloc(&f->ep, 20, 1, false);
    sim__pool_alloc(&f->ep, 20, 1, false);
    memset(at(f, a), 0xCC, 32);
    sim__pool_free(&f->ep, a, 1, true);
    assert_false(f->ep.stopped);
    fixture_free(f);
}

static void test_tags(void **state)
{
    fixture *f = fixture_new(SIM_POOL_LEGACY, false, 3, ARENA);
    (void)state;

    /* A mismatch passes silently, as Windows without Driver Verifier... */
    uint64_t a = sim__pool_alloc(&f->ep, 32, 0x41414141, false);
    sim__pool_free(&f->ep, a, 0x42424242, true);
    assert_false(f->ep.stopped);
    /* ...unless the allocation was made with a protected tag. */
    uint64_t b = sim__pool_alloc(&f->ep, 32, 0xC1414141u, false);
    sim__pool_free(&f->ep, b, 0xC2424242u, true);
    expect_bugcheck(f, SIM_BUGCHECK_BAD_POOL_CALLER, 0x0A);
    assert_int_equal(f->out.params[1], b);
    assert_int_equal(f->out.params[2], 0x41414141);
    assert_int_equal(f->out.params[3], 0x42424242);
    fixture_free(f);

    f = fixture_new(SIM_POOL_LEGACY, false, 3, ARENA);
    b = sim__pool_alloc(&f->ep, 32, 0xC1414141u, false);
    sim__pool_free(&f->ep, b, 0xC1414141u, true);
    assert_false(f->ep.stopped);
    fixture_free(f);
}

static void test_reset(void **state)
{
    fixture *f = fixture_new(SIM_POOL_SEGMENT_HEAP, false, 3, ARENA);
    (void)state;

    sim__pool_alloc(&f->ep, 32, 1, false);
    uint64_t key = f->ep.pool.key;
    sim__pool_reset(&f->ep, BASE, f->host, ARENA);
    assert_int_equal(f->ep.pool.nchunks, 0);
    assert_int_equal(f->ep.pool.top, BASE);
    assert_int_equal(f->ep.pool.bytes_live, 0);
    assert_int_not_equal(f->ep.pool.key, 0);
    assert_int_not_equal(f->ep.pool.key, key);
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legacy_headers),
        cmocka_unit_test(test_segment_heap_headers_are_encoded),
        cmocka_unit_test(test_stale_fill),
        cmocka_unit_test(test_fill_is_deterministic),
        cmocka_unit_test(test_read_past_last_block_is_stale),
        cmocka_unit_test(test_zero_size_and_exhaustion),
        cmocka_unit_test(test_chunk_limit),
        cmocka_unit_test(test_free_marks_header),
        cmocka_unit_test(test_double_free),
        cmocka_unit_test(test_bad_pointers),
        cmocka_unit_test(test_overrun_into_next_header),
        cmocka_unit_test(test_own_header_corrupt),
        cmocka_unit_test(test_data_writes_are_not_corruption),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
