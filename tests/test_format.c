/*
 * test_format.c — the printf engine behind DbgPrint and _snprintf, driven
 * without an emulator: arguments come from an array of 8-byte slots (as
 * the MS x64 ABI passes varargs) and "guest memory" is a small table of
 * host buffers at made-up guest addresses.  A read outside them faults,
 * which is how the formatter must stop on a bad %s pointer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "format.h"

typedef struct fake_mem {
    uint64_t addr;
    const void *data;
    size_t size;
} fake_mem;

typedef struct fake {
    const uint64_t *args;
    size_t nargs, next;
    const fake_mem *mem;
    size_t nmem;
    int faults;
} fake;

static int fake_arg(void *ctx, uint64_t *v)
{
    fake *f = ctx;

    if (f->next >= f->nargs) {
        f->faults++;
        return -1;
    }
    *v = f->args[f->next++];
    return 0;
}

static int fake_read(void *ctx, uint64_t addr, void *dst, size_t n)
{
    fake *f = ctx;

    for (size_t i = 0; i < f->nmem; i++) {
        const fake_mem *m = &f->mem[i];
        if (addr >= m->addr && addr - m->addr + n <= m->size) {
            memcpy(dst, (const uint8_t *)m->data + (addr - m->addr), n);
            return 0;
        }
    }
    f->faults++;
    return -1;
}

/* Format with the given slots and memory into out; returns the result. */
static int run(char *out, size_t max, const char *fmt, bool wide,
               const uint64_t *args, size_t nargs, const fake_mem *mem,
               size_t nmem, fake *state)
{
    fake local = { args, nargs, 0, mem, nmem, 0 };
    fake *f = state ? state : &local;

    if (state)
        *state = local;
    sim_fmt_source src = { fake_arg, fake_read, f };
    return sim__format_core(out, max, fmt, wide, &src);
}

#define FMT(out, fmt, ...)                                                   \
    do {                                                                     \
        const uint64_t a_[] = { 0, __VA_ARGS__ };                            \
        run(out, sizeof out, fmt, false, a_ + 1,                             \
            sizeof a_ / sizeof a_[0] - 1, NULL, 0, NULL);                    \
    } while (0)

static void test_integers(void **state)
{
    char out[128];
    (void)state;

    FMT(out, "%d %i %u", (uint64_t)(uint32_t)-5, 42, 0xFFFFFFFFu);
    assert_string_equal(out, "-5 42 4294967295");
    /* MS `l` is 32 bits: the high half of the slot is ignored. */
    FMT(out, "%ld|%lu", 0xAAAAAAAA00000007ull, 0x1111111100000009ull);
    assert_string_equal(out, "7|9");
    FMT(out, "%lld %I64d %I64u", (uint64_t)-1, (uint64_t)-2, (uint64_t)-1);
    assert_string_equal(out, "-1 -2 18446744073709551615");
    FMT(out, "%hd %hu %hhd %hhu", 0x1FFFF, 0x1FFFF, 0x1FF, 0x1FF);
    assert_string_equal(out, "-1 65535 -1 255");
    FMT(out, "%zu %Iu %I32u", 1ull << 40, 1ull << 40, (1ull << 32) | 3);
    assert_string_equal(out, "1099511627776 1099511627776 3");
    FMT(out, "%x %X %o %#x %#X %#o", 255, 255, 8, 255, 255, 8);
    assert_string_equal(out, "ff FF 10 0xff 0XFF 010");
    FMT(out, "%#x", 0);
    assert_string_equal(out, "0");
}

static void test_flags_width_precision(void **state)
{
    char out[128];
    (void)state;

    FMT(out, "[%5d][%-5d][%05d][%+d][% d]", 42, 42, 42, 42, 42);
    assert_string_equal(out, "[   42][42   ][00042][+42][ 42]");
    FMT(out, "[%05d][%.3d][%8.3d][%-8.3d|]", (uint64_t)(uint32_t)-42, 7, 7, 7);
    assert_string_equal(out, "[-0042][007][     007][007     |]");
    FMT(out, "[%*d][%-*d][%.*d]", 6, 1, 4, 2, 3, 5);
    assert_string_equal(out, "[     1][2   ][005]");
    /* A negative * width means left-justify. */
    FMT(out, "[%*d]", (uint64_t)(uint32_t)-4, 9);
    assert_string_equal(out, "[9   ]");
    FMT(out, "[%.0d][%08.3x]", 0, 0xab);
    assert_string_equal(out, "[][     0ab]");
    FMT(out, "%%|%c|%3c|%-3c|", 'a', 'b', 'c');
    assert_string_equal(out, "%|a|  b|c  |");
}

static void test_pointer(void **state)
{
    char out[64];
    (void)state;

    /* The kernel's %p: 16 upper-case hex digits. */
    FMT(out, "%p", 0xFFFF840500000074ull);
    assert_string_equal(out, "FFFF840500000074");
    FMT(out, "%p", 0x10);
    assert_string_equal(out, "0000000000000010");
}

static void test_strings(void **state)
{
    static const char narrow[] = "hello";
    static const uint16_t wide[] = { 'w', 'i', 'd', 'e', 0 };
    /* ANSI_STRING and UNICODE_STRING: Length, MaximumLength, pad, Buffer. */
    uint8_t ansi[16] = { 3, 0, 6, 0 }, uni[16] = { 6, 0, 10, 0 };
    uint64_t nb = 0x1000, wb = 0x2000;
    memcpy(ansi + 8, &nb, 8);
    memcpy(uni + 8, &wb, 8);
    const fake_mem mem[] = {
        { 0x1000, narrow, sizeof narrow },
        { 0x2000, wide, sizeof wide },
        { 0x3000, ansi, sizeof ansi },
        { 0x4000, uni, sizeof uni },
    };
    const uint64_t args[] = { 0x1000, 0x2000, 0x2000, 0x1000, 0x3000, 0x4000, 0x2000, 0x1000 };
    char out[128];
    (void)state;

    run(out, sizeof out, "%s|%S|%ls|%hs|%Z|%wZ|%ws|%.2s", false, args, 8, mem, 4, NULL);
    assert_string_equal(out, "hello|wide|wide|hello|hel|wid|wide|he");

    /* In _snwprintf, %s is wide and %S narrow. */
    const uint64_t wargs[] = { 0x2000, 0x1000, 'x' };
    run(out, sizeof out, "%s|%S|%c", true, wargs, 3, mem, 4, NULL);
    assert_string_equal(out, "wide|hello|x");

    const uint64_t pad[] = { 0x1000, 0x1000 };
    run(out, sizeof out, "[%8s][%-8s]", false, pad, 2, mem, 4, NULL);
    assert_string_equal(out, "[   hello][hello   ]");
}

static void test_null_and_bad_pointers(void **state)
{
    static const char narrow[] = "abc";
    const fake_mem mem[] = { { 0x1000, narrow, sizeof narrow } };
    char out[64];
    fake f;
    (void)state;

    const uint64_t nulls[] = { 0, 0, 0 };
    run(out, sizeof out, "%s %wZ %ws", false, nulls, 3, mem, 1, NULL);
    assert_string_equal(out, "(null) (null) (null)");

    /* A stale non-NULL pointer faults: formatting stops with -1. */
    const uint64_t bad[] = { 0xFFFF840500000074ull };
    assert_int_equal(run(out, sizeof out, "x=%s", false, bad, 1, mem, 1, &f), -1);
    assert_int_equal(f.faults, 1);

    /* A precision stops reading before the bad byte past the string. */
    static const char unterminated[4] = { 'a', 'b', 'c', 'd' };
    const fake_mem mem2[] = { { 0x1000, unterminated, sizeof unterminated } };
    const uint64_t p[] = { 0x1000 };
    assert_int_equal(run(out, sizeof out, "%.4s", false, p, 1, mem2, 1, NULL), 4);
    assert_string_equal(out, "abcd");
    assert_int_equal(run(out, sizeof out, "%s", false, p, 1, mem2, 1, NULL), -1);

    /* Missing arguments fault too (the slot would be unreadable). */
    assert_int_equal(run(out, sizeof out, "%d %d", false, p, 1, mem, 1, NULL), -1);
}

static void test_truncation(void **state)
{
    const uint64_t args[] = { 123456789 };
    char out[6];
    (void)state;

    /* The full length comes back, the buffer holds what fits. */
    assert_int_equal(run(out, sizeof out, "n=%d!", false, args, 1, NULL, 0, NULL), 12);
    assert_string_equal(out, "n=123");
    assert_int_equal(run(out, 1, "abc", false, args, 1, NULL, 0, NULL), 3);
    assert_string_equal(out, "");
    assert_int_equal(run(NULL, 0, "abc", false, args, 1, NULL, 0, NULL), 3);

    /* Absurd widths are clamped rather than obeyed. */
    char big[64];
    const uint64_t w[] = { 1 };
    int n = run(big, sizeof big, "%999999999d", false, w, 1, NULL, 0, NULL);
    assert_true(n > 0 && n <= 4096);
}

static void test_many_mixed_args(void **state)
{
    /* Ten arguments of mixed sizes, each in its own slot. */
    const uint64_t args[] = { 1, 0xFFFFFFFFFFFFFFFEull, 0x12345678ABCDull, 'z', 7,
                              0x8000000000000000ull, 0xFFFF, 3, 0x41, 10 };
    char out[256];
    (void)state;

    run(out, sizeof out, "%d %lld %I64x %c %hu %llu %hd %u %c %x", false, args,
        10, NULL, 0, NULL);
    assert_string_equal(out, "1 -2 12345678abcd z 7 9223372036854775808 -1 3 A a");
}

static void test_misc(void **state)
{
    char out[64];
    (void)state;

    /* An unknown conversion prints literally; %n writes nothing. */
    FMT(out, "%y|%n|end", 0);
    assert_string_equal(out, "y||end");
    /* A trailing lone % ends the output. */
    FMT(out, "abc%", 0);
    assert_string_equal(out, "abc");
    double d = 2.5;
    uint64_t bits;
    memcpy(&bits, &d, 8);
    FMT(out, "%.2f", bits);
    assert_string_equal(out, "2.50");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_flags_width_precision),
        cmocka_unit_test(test_pointer),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_null_and_bad_pointers),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_many_mixed_args),
        cmocka_unit_test(test_misc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
