/*
 * kapi_rtl.c — the run-time library nt exports: the CRT memory and string
 * routines, Rtl string routines, RtlGetVersion, and the print family
 * (DbgPrint, DbgPrintEx, vDbgPrintEx, _snprintf, _vsnprintf, _snwprintf,
 * sprintf).
 *
 * Every pointer a driver passes is guest memory, touched only through
 * sim__read/sim__write/sim__ptr, so a bad pointer faults inside nt!memcpy
 * (or wherever) exactly as it would on Windows, with the driver's call as
 * the culprit.  After any failed access the run has stopped and the routine
 * returns at once.
 *
 * DbgPrint output goes to the outcome's log unfiltered and unprefixed: the
 * log is what a kernel debugger attached to the machine would have shown
 * with every component's filter open.
 */
#include <string.h>

#include "format.h"
#include "sim-internal.h"

#define STATUS_SUCCESS 0x00000000u
#define STATUS_BUFFER_OVERFLOW 0x80000005u
#define STATUS_INVALID_PARAMETER 0xC000000Du
#define STATUS_BUFFER_TOO_SMALL 0xC0000023u
#define STATUS_NO_MEMORY 0xC0000017u
#define STATUS_INVALID_PARAMETER_2 0xC00000F0u

/* 'Strg' little-endian: the tag Rtl string allocations carry. */
#define STRING_TAG 0x67727453u

/* Bytes moved per step when a buffer is not contiguous in one region. */
#define COPY_STEP 512u

/* ---- guest memory helpers ---------------------------------------------- */

/*
 * Copy n bytes inside the guest, overlap-safe (memmove semantics).  The fast
 * path works on host pointers when both ranges lie inside one region each;
 * otherwise it moves COPY_STEP bytes at a time through sim__read/sim__write
 * in the direction overlap requires, so a fault lands on the first bad byte
 * the real routine would touch (near enough: the first bad step).
 */
static int guest_move(sim_endpoint *ep, uint64_t dst, uint64_t src, uint64_t n)
{
    uint8_t buf[COPY_STEP];

    if (n == 0)
        return 0;
    uint8_t *s = sim__ptr(ep, src, n, SIM_PROT_R);
    uint8_t *d = sim__ptr(ep, dst, n, SIM_PROT_W);
    if (s && d) {
        /* The slow path's reads and writes charge themselves, step by step,
         * so a bad length faults where the copy leaves mapped memory. */
        if (!sim__charge(ep, 2 * n))
            return -1;
        memmove(d, s, n);
        return 0;
    }
    bool backward = dst > src && dst - src < n;
    for (uint64_t done = 0; done < n;) {
        uint64_t k = n - done < COPY_STEP ? n - done : COPY_STEP;
        uint64_t off = backward ? n - done - k : done;
        if (sim__read(ep, src + off, buf, k) < 0 ||
            sim__write(ep, dst + off, buf, k) < 0)
            return -1;
        done += k;
    }
    return 0;
}

static int guest_fill(sim_endpoint *ep, uint64_t dst, uint8_t value, uint64_t n)
{
    uint8_t buf[COPY_STEP];

    if (n == 0)
        return 0;
    uint8_t *d = sim__ptr(ep, dst, n, SIM_PROT_W);
    if (d) {
        if (!sim__charge(ep, n))
            return -1;
        memset(d, value, n);
        return 0;
    }
    memset(buf, value, sizeof buf);
    for (uint64_t done = 0; done < n;) {
        uint64_t k = n - done < COPY_STEP ? n - done : COPY_STEP;
        if (sim__write(ep, dst + done, buf, k) < 0)
            return -1;
        done += k;
    }
    return 0;
}

static int rd8(sim_endpoint *ep, uint64_t addr, uint8_t *v)
{
    return sim__read(ep, addr, v, 1);
}

static int rd16(sim_endpoint *ep, uint64_t addr, uint16_t *v)
{
    return sim__read(ep, addr, v, 2);
}

/* A guest UNICODE_STRING / ANSI_STRING / STRING: Length, MaximumLength,
 * (padding), Buffer. */
typedef struct counted {
    uint16_t length, max;
    uint64_t buffer;
} counted;

static int read_counted(sim_endpoint *ep, uint64_t addr, counted *c)
{
    uint8_t raw[16];

    if (sim__read(ep, addr, raw, sizeof raw) < 0)
        return -1;
    memcpy(&c->length, raw, 2);
    memcpy(&c->max, raw + 2, 2);
    memcpy(&c->buffer, raw + 8, 8);
    return 0;
}

/* Write Length and MaximumLength (and Buffer when set_buffer). */
static int write_counted(sim_endpoint *ep, uint64_t addr, const counted *c,
                         bool set_buffer)
{
    uint8_t raw[4];

    memcpy(raw, &c->length, 2);
    memcpy(raw + 2, &c->max, 2);
    if (sim__write(ep, addr, raw, 4) < 0)
        return -1;
    if (set_buffer && sim__write(ep, addr + 8, &c->buffer, 8) < 0)
        return -1;
    return 0;
}

static uint16_t upcase16(uint16_t c)
{
    return c >= 'a' && c <= 'z' ? (uint16_t)(c - 'a' + 'A') : c;
}

static uint8_t lower8(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
}

static void ret_int(sim_endpoint *ep, int64_t v)
{
    sim__ret(ep, (uint64_t)v);
}

/* ---- memory ------------------------------------------------------------ */

void sim__api_memcpy(sim_endpoint *ep)
{
    uint64_t dst = sim__arg(ep, 0);

    if (guest_move(ep, dst, sim__arg(ep, 1), sim__arg(ep, 2)) == 0)
        sim__ret(ep, dst);
}

void sim__api_memmove(sim_endpoint *ep)
{
    sim__api_memcpy(ep);
}

void sim__api_memset(sim_endpoint *ep)
{
    uint64_t dst = sim__arg(ep, 0);

    if (guest_fill(ep, dst, (uint8_t)sim__arg(ep, 1), sim__arg(ep, 2)) == 0)
        sim__ret(ep, dst);
}

/* Compare up to n bytes; *same gets how many matched before the first
 * difference.  Returns the sign of the difference, or -2 on a fault. */
static int compare_bytes(sim_endpoint *ep, uint64_t a, uint64_t b, uint64_t n,
                         uint64_t *same)
{
    const uint8_t *pa = sim__ptr(ep, a, n, SIM_PROT_R);
    const uint8_t *pb = sim__ptr(ep, b, n, SIM_PROT_R);

    if (pa && pb && !sim__charge(ep, 2 * n))
        return -2;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t x, y;
        if (pa && pb) {
            x = pa[i];
            y = pb[i];
        } else if (rd8(ep, a + i, &x) < 0 || rd8(ep, b + i, &y) < 0) {
            return -2;
        }
        if (x != y) {
            *same = i;
            return x < y ? -1 : 1;
        }
    }
    *same = n;
    return 0;
}

void sim__api_memcmp(sim_endpoint *ep)
{
    uint64_t same;
    int r = compare_bytes(ep, sim__arg(ep, 0), sim__arg(ep, 1), sim__arg(ep, 2), &same);

    if (r != -2)
        ret_int(ep, r);
}

void sim__api_memchr(sim_endpoint *ep)
{
    uint64_t p = sim__arg(ep, 0);
    uint8_t want = (uint8_t)sim__arg(ep, 1);
    uint64_t n = sim__arg(ep, 2);

    for (uint64_t i = 0; i < n; i++) {
        uint8_t c;
        if (rd8(ep, p + i, &c) < 0)
            return;
        if (c == want) {
            sim__ret(ep, p + i);
            return;
        }
    }
    sim__ret(ep, 0);
}

void sim__api_RtlCopyMemory(sim_endpoint *ep)
{
    guest_move(ep, sim__arg(ep, 0), sim__arg(ep, 1), sim__arg(ep, 2));
}

void sim__api_RtlMoveMemory(sim_endpoint *ep)
{
    guest_move(ep, sim__arg(ep, 0), sim__arg(ep, 1), sim__arg(ep, 2));
}

void sim__api_RtlFillMemory(sim_endpoint *ep)
{
    /* (Destination, Length, Fill): not memset's order. */
    guest_fill(ep, sim__arg(ep, 0), (uint8_t)sim__arg(ep, 2), sim__arg(ep, 1));
}

void sim__api_RtlZeroMemory(sim_endpoint *ep)
{
    guest_fill(ep, sim__arg(ep, 0), 0, sim__arg(ep, 1));
}

void sim__api_RtlCompareMemory(sim_endpoint *ep)
{
    uint64_t same;

    if (compare_bytes(ep, sim__arg(ep, 0), sim__arg(ep, 1), sim__arg(ep, 2), &same) != -2)
        sim__ret(ep, same);
}

/* ---- C strings --------------------------------------------------------- */

/* Length of a NUL-terminated string of `unit`-byte characters, at most max
 * units; -1 on a fault. */
static int64_t guest_strnlen(sim_endpoint *ep, uint64_t s, unsigned unit,
                             uint64_t max)
{
    for (uint64_t i = 0; i < max; i++) {
        uint16_t c = 0;
        if (sim__read(ep, s + i * unit, &c, unit) < 0)
            return -1;
        if (c == 0)
            return (int64_t)i;
    }
    return (int64_t)max;
}

void sim__api_strlen(sim_endpoint *ep)
{
    int64_t n = guest_strnlen(ep, sim__arg(ep, 0), 1, UINT64_MAX);

    if (n >= 0)
        sim__ret(ep, (uint64_t)n);
}

void sim__api_strnlen(sim_endpoint *ep)
{
    int64_t n = guest_strnlen(ep, sim__arg(ep, 0), 1, sim__arg(ep, 1));

    if (n >= 0)
        sim__ret(ep, (uint64_t)n);
}

void sim__api_wcslen(sim_endpoint *ep)
{
    int64_t n = guest_strnlen(ep, sim__arg(ep, 0), 2, UINT64_MAX);

    if (n >= 0)
        sim__ret(ep, (uint64_t)n);
}

void sim__api_wcsnlen(sim_endpoint *ep)
{
    int64_t n = guest_strnlen(ep, sim__arg(ep, 0), 2, sim__arg(ep, 1));

    if (n >= 0)
        sim__ret(ep, (uint64_t)n);
}

/*
 * strcmp-family core: compare up to max units of `unit` bytes, optionally
 * folding case.  Returns -1/0/1, or -2 on a fault.
 */
static int compare_strings(sim_endpoint *ep, uint64_t a, uint64_t b,
                           unsigned unit, uint64_t max, bool fold)
{
    for (uint64_t i = 0; i < max; i++) {
        uint16_t x = 0, y = 0;
        if (sim__read(ep, a + i * unit, &x, unit) < 0 ||
            sim__read(ep, b + i * unit, &y, unit) < 0)
            return -2;
        if (fold) {
            /* _stricmp compares lower case, _wcsicmp too (CRT rules). */
            x = x < 0x80 ? lower8((uint8_t)x) : x;
            y = y < 0x80 ? lower8((uint8_t)y) : y;
        }
        if (x != y)
            return x < y ? -1 : 1;
        if (x == 0)
            return 0;
    }
    return 0;
}

static void serve_compare(sim_endpoint *ep, unsigned unit, uint64_t max, bool fold)
{
    int r = compare_strings(ep, sim__arg(ep, 0), sim__arg(ep, 1), unit, max, fold);

    if (r != -2)
        ret_int(ep, r);
}

void sim__api_strcmp(sim_endpoint *ep)
{
    serve_compare(ep, 1, UINT64_MAX, false);
}

void sim__api_strncmp(sim_endpoint *ep)
{
    serve_compare(ep, 1, sim__arg(ep, 2), false);
}

void sim__api_wcscmp(sim_endpoint *ep)
{
    serve_compare(ep, 2, UINT64_MAX, false);
}

void sim__api__stricmp(sim_endpoint *ep)
{
    serve_compare(ep, 1, UINT64_MAX, true);
}

void sim__api__wcsicmp(sim_endpoint *ep)
{
    serve_compare(ep, 2, UINT64_MAX, true);
}

void sim__api_strcpy(sim_endpoint *ep)
{
    uint64_t dst = sim__arg(ep, 0), src = sim__arg(ep, 1);

    for (uint64_t i = 0;; i++) {
        uint8_t c;
        if (rd8(ep, src + i, &c) < 0 || sim__write(ep, dst + i, &c, 1) < 0)
            return;
        if (c == 0)
            break;
    }
    sim__ret(ep, dst);
}

void sim__api_strncpy(sim_endpoint *ep)
{
    uint64_t dst = sim__arg(ep, 0), src = sim__arg(ep, 1), n = sim__arg(ep, 2);
    uint64_t i = 0;

    for (; i < n; i++) {
        uint8_t c;
        if (rd8(ep, src + i, &c) < 0 || sim__write(ep, dst + i, &c, 1) < 0)
            return;
        if (c == 0)
            break;
    }
    /* strncpy pads the rest of the buffer with NULs. */
    if (i < n && guest_fill(ep, dst + i, 0, n - i) < 0)
        return;
    sim__ret(ep, dst);
}

void sim__api_strchr(sim_endpoint *ep)
{
    uint64_t s = sim__arg(ep, 0);
    uint8_t want = (uint8_t)sim__arg(ep, 1);

    for (uint64_t i = 0;; i++) {
        uint8_t c;
        if (rd8(ep, s + i, &c) < 0)
            return;
        if (c == want) {
            sim__ret(ep, s + i);
            return;
        }
        if (c == 0) {
            sim__ret(ep, 0);
            return;
        }
    }
}

/* ---- Rtl strings ------------------------------------------------------- */

static void init_string(sim_endpoint *ep, unsigned unit, uint16_t limit)
{
    uint64_t dst = sim__arg(ep, 0), src = sim__arg(ep, 1);
    counted c = { 0, 0, src };

    if (src) {
        int64_t n = guest_strnlen(ep, src, unit, UINT64_MAX);
        if (n < 0)
            return;
        uint64_t bytes = (uint64_t)n * unit;
        if (bytes > limit)
            bytes = limit;
        c.length = (uint16_t)bytes;
        c.max = (uint16_t)(bytes + unit);
    }
    write_counted(ep, dst, &c, true);
}

void sim__api_RtlInitUnicodeString(sim_endpoint *ep)
{
    init_string(ep, 2, 0xFFFC);
}

void sim__api_RtlInitAnsiString(sim_endpoint *ep)
{
    init_string(ep, 1, 0xFFFE);
}

void sim__api_RtlInitString(sim_endpoint *ep)
{
    init_string(ep, 1, 0xFFFE);
}

/* Compare two UNICODE_STRINGs: -1/0/1 as RtlCompareUnicodeString, -2 on a
 * fault. */
static int compare_unicode(sim_endpoint *ep, uint64_t a, uint64_t b, bool fold,
                           bool *equal_length)
{
    counted x, y;

    if (read_counted(ep, a, &x) < 0 || read_counted(ep, b, &y) < 0)
        return -2;
    *equal_length = x.length / 2 == y.length / 2;
    unsigned n = (x.length < y.length ? x.length : y.length) / 2u;
    for (unsigned i = 0; i < n; i++) {
        uint16_t c1, c2;
        if (rd16(ep, x.buffer + 2ull * i, &c1) < 0 || rd16(ep, y.buffer + 2ull * i, &c2) < 0)
            return -2;
        if (fold) {
            c1 = upcase16(c1);
            c2 = upcase16(c2);
        }
        if (c1 != c2)
            return c1 < c2 ? -1 : 1;
    }
    return x.length / 2 == y.length / 2 ? 0 : (x.length < y.length ? -1 : 1);
}

void sim__api_RtlEqualUnicodeString(sim_endpoint *ep)
{
    bool same_len;
    uint64_t a = sim__arg(ep, 0), b = sim__arg(ep, 1);
    bool fold = (uint8_t)sim__arg(ep, 2) != 0;
    counted x, y;

    /* Different lengths are unequal without looking at the characters. */
    if (read_counted(ep, a, &x) < 0 || read_counted(ep, b, &y) < 0)
        return;
    if (x.length / 2 != y.length / 2) {
        sim__ret(ep, 0);
        return;
    }
    int r = compare_unicode(ep, a, b, fold, &same_len);
    if (r != -2)
        sim__ret(ep, r == 0);
}

void sim__api_RtlCompareUnicodeString(sim_endpoint *ep)
{
    bool same_len;
    int r = compare_unicode(ep, sim__arg(ep, 0), sim__arg(ep, 1),
                            (uint8_t)sim__arg(ep, 2) != 0, &same_len);

    if (r != -2)
        ret_int(ep, r);
}

void sim__api_RtlCopyUnicodeString(sim_endpoint *ep)
{
    uint64_t dst = sim__arg(ep, 0), src = sim__arg(ep, 1);
    counted d, s;

    if (read_counted(ep, dst, &d) < 0)
        return;
    if (src == 0) {
        d.length = 0;
        write_counted(ep, dst, &d, false);
        return;
    }
    if (read_counted(ep, src, &s) < 0)
        return;
    uint16_t n = s.length < d.max ? s.length : d.max;
    n &= (uint16_t)~1u;
    if (guest_move(ep, d.buffer, s.buffer, n) < 0)
        return;
    d.length = n;
    if (n + 2u <= d.max) {
        uint16_t z = 0;
        if (sim__write(ep, d.buffer + n, &z, 2) < 0)
            return;
    }
    write_counted(ep, dst, &d, false);
}

/* Append `n` bytes at guest `src` to the UNICODE_STRING at dst. */
static void append_unicode(sim_endpoint *ep, uint64_t dst, uint64_t src, uint64_t n)
{
    counted d;

    if (read_counted(ep, dst, &d) < 0)
        return;
    if (d.length + n > d.max) {
        sim__ret(ep, STATUS_BUFFER_TOO_SMALL);
        return;
    }
    if (guest_move(ep, d.buffer + d.length, src, n) < 0)
        return;
    d.length = (uint16_t)(d.length + n);
    if (d.length + 2u <= d.max) {
        uint16_t z = 0;
        if (sim__write(ep, d.buffer + d.length, &z, 2) < 0)
            return;
    }
    if (write_counted(ep, dst, &d, false) == 0)
        sim__ret(ep, STATUS_SUCCESS);
}

void sim__api_RtlAppendUnicodeToString(sim_endpoint *ep)
{
    uint64_t src = sim__arg(ep, 1);
    int64_t n = 0;

    if (src && (n = guest_strnlen(ep, src, 2, 0x7FFF)) < 0)
        return;
    append_unicode(ep, sim__arg(ep, 0), src, (uint64_t)n * 2);
}

void sim__api_RtlAppendUnicodeStringToString(sim_endpoint *ep)
{
    counted s;

    if (read_counted(ep, sim__arg(ep, 1), &s) < 0)
        return;
    append_unicode(ep, sim__arg(ep, 0), s.buffer, s.length & ~1u);
}

void sim__api_RtlUnicodeStringToAnsiString(sim_endpoint *ep)
{
    uint64_t dst = sim__arg(ep, 0), src = sim__arg(ep, 1);
    bool allocate = (uint8_t)sim__arg(ep, 2) != 0;
    uint32_t status = STATUS_SUCCESS;
    counted d, s;

    if (read_counted(ep, src, &s) < 0)
        return;
    uint32_t n = s.length / 2u;
    if (allocate) {
        d.buffer = sim__pool_alloc(ep, n + 1, STRING_TAG, false);
        if (!d.buffer) {
            sim__ret(ep, STATUS_NO_MEMORY);
            return;
        }
        d.max = (uint16_t)(n + 1);
    } else {
        if (read_counted(ep, dst, &d) < 0)
            return;
        if (n + 1 > d.max) {
            /* Converted as far as it fits, and the caller is told so. */
            if (d.max == 0) {
                sim__ret(ep, STATUS_BUFFER_OVERFLOW);
                return;
            }
            n = d.max - 1u;
            status = STATUS_BUFFER_OVERFLOW;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        uint16_t c;
        if (rd16(ep, s.buffer + 2ull * i, &c) < 0)
            return;
        uint8_t b = c < 0x80 ? (uint8_t)c : '?';
        if (sim__write(ep, d.buffer + i, &b, 1) < 0)
            return;
    }
    uint8_t z = 0;
    if (sim__write(ep, d.buffer + n, &z, 1) < 0)
        return;
    d.length = (uint16_t)n;
    if (write_counted(ep, dst, &d, allocate) == 0)
        sim__ret(ep, status);
}

void sim__api_RtlAnsiStringToUnicodeString(sim_endpoint *ep)
{
    uint64_t dst = sim__arg(ep, 0), src = sim__arg(ep, 1);
    bool allocate = (uint8_t)sim__arg(ep, 2) != 0;
    counted d, s;

    if (read_counted(ep, src, &s) < 0)
        return;
    uint32_t bytes = 2u * s.length;
    if (bytes > 0xFFFC) {
        sim__ret(ep, STATUS_INVALID_PARAMETER_2);
        return;
    }
    if (allocate) {
        d.buffer = sim__pool_alloc(ep, bytes + 2, STRING_TAG, false);
        if (!d.buffer) {
            sim__ret(ep, STATUS_NO_MEMORY);
            return;
        }
        d.max = (uint16_t)(bytes + 2);
    } else {
        if (read_counted(ep, dst, &d) < 0)
            return;
        if (bytes + 2 > d.max) {
            sim__ret(ep, STATUS_BUFFER_OVERFLOW);
            return;
        }
    }
    for (uint32_t i = 0; i < s.length; i++) {
        uint8_t c;
        if (rd8(ep, s.buffer + i, &c) < 0)
            return;
        uint16_t w = c < 0x80 ? c : '?';
        if (sim__write(ep, d.buffer + 2ull * i, &w, 2) < 0)
            return;
    }
    uint16_t z = 0;
    if (sim__write(ep, d.buffer + bytes, &z, 2) < 0)
        return;
    d.length = (uint16_t)bytes;
    if (write_counted(ep, dst, &d, allocate) == 0)
        sim__ret(ep, STATUS_SUCCESS);
}

static void free_string(sim_endpoint *ep)
{
    uint64_t str = sim__arg(ep, 0);
    counted c;

    if (read_counted(ep, str, &c) < 0)
        return;
    if (c.buffer) {
        sim__pool_free(ep, c.buffer, STRING_TAG, false);
        if (ep->stopped)
            return;
    }
    counted zero = { 0, 0, 0 };
    write_counted(ep, str, &zero, true);
}

void sim__api_RtlFreeUnicodeString(sim_endpoint *ep)
{
    free_string(ep);
}

void sim__api_RtlFreeAnsiString(sim_endpoint *ep)
{
    free_string(ep);
}

/* ---- RtlGetVersion ----------------------------------------------------- */

#define OSVERSIONINFOW_SIZE 276u   /* sizeof(RTL_OSVERSIONINFOW) */
#define OSVERSIONINFOEXW_SIZE 284u /* sizeof(RTL_OSVERSIONINFOEXW) */
#define VER_PLATFORM_WIN32_NT 2u
#define VER_SUITE_SINGLEUSERTS 0x100u
#define VER_SUITE_TERMINAL 0x10u

void sim__api_RtlGetVersion(sim_endpoint *ep)
{
    const sim_profile *pr = ep->profile;
    uint64_t info = sim__arg(ep, 0);
    uint8_t v[OSVERSIONINFOEXW_SIZE];
    uint32_t size;

    if (sim__read(ep, info, &size, 4) < 0)
        return;
    if (size != OSVERSIONINFOW_SIZE && size != OSVERSIONINFOEXW_SIZE) {
        sim__ret(ep, STATUS_INVALID_PARAMETER);
        return;
    }
    memset(v, 0, sizeof v);
    uint32_t platform = VER_PLATFORM_WIN32_NT;
    memcpy(v + 0, &size, 4);
    memcpy(v + 4, &pr->major, 4);
    memcpy(v + 8, &pr->minor, 4);
    memcpy(v + 12, &pr->build, 4);
    memcpy(v + 16, &platform, 4);
    for (size_t i = 0; i < 127 && pr->csd[i]; i++) {
        uint16_t w = (uint8_t)pr->csd[i];
        memcpy(v + 20 + 2 * i, &w, 2);
    }
    if (size == OSVERSIONINFOEXW_SIZE) {
        /* Workstations report a single-user terminal server suite, servers
         * the terminal suite, as Windows 10 and Server do. */
        uint16_t suite = pr->product_type == 1 ? VER_SUITE_SINGLEUSERTS
                                               : VER_SUITE_TERMINAL;
        memcpy(v + 276, &pr->sp_major, 2);
        memcpy(v + 278, &pr->sp_minor, 2);
        memcpy(v + 280, &suite, 2);
        v[282] = (uint8_t)pr->product_type;
    }
    if (sim__write(ep, info, v, size) == 0)
        sim__ret(ep, STATUS_SUCCESS);
}

/* ---- printing ---------------------------------------------------------- */

static void log_line(sim_endpoint *ep, const char *text, int len)
{
    size_t n = strnlen(text, SIM__FMT_OUT);

    (void)len;
    sim__log(ep, text, n);
}

void sim__api_DbgPrint(sim_endpoint *ep)
{
    char line[SIM__FMT_OUT];
    int n = sim__format(ep, line, sizeof line, sim__arg(ep, 0), 1);

    if (n < 0)
        return;
    log_line(ep, line, n);
    sim__ret(ep, STATUS_SUCCESS);
}

void sim__api_DbgPrintEx(sim_endpoint *ep)
{
    char line[SIM__FMT_OUT];
    int n = sim__format(ep, line, sizeof line, sim__arg(ep, 2), 3);

    if (n < 0)
        return;
    log_line(ep, line, n);
    sim__ret(ep, STATUS_SUCCESS);
}

void sim__api_vDbgPrintEx(sim_endpoint *ep)
{
    char line[SIM__FMT_OUT];
    int n = sim__format_va(ep, line, sizeof line, sim__arg(ep, 2), sim__arg(ep, 3));

    if (n < 0)
        return;
    log_line(ep, line, n);
    sim__ret(ep, STATUS_SUCCESS);
}

/*
 * Store formatted text in a guest buffer of `count` units with Microsoft
 * _snprintf rules: when it fits with room for the NUL, the NUL is written
 * and the length returned; when it fits exactly, no NUL and the length;
 * when it does not fit, `count` units, no NUL, and -1.
 */
static void store_counted_output(sim_endpoint *ep, uint64_t buf, uint64_t count,
                                 const char *text, int len, bool wide)
{
    size_t have = strnlen(text, SIM__FMT_OUT);
    uint64_t n = (uint64_t)len < count ? (uint64_t)len : count;

    if (n > have)
        n = have;
    for (uint64_t i = 0; i < n; i++) {
        if (wide) {
            uint16_t w = (uint8_t)text[i];
            if (sim__write(ep, buf + 2 * i, &w, 2) < 0)
                return;
        } else if (sim__write(ep, buf + i, &text[i], 1) < 0) {
            return;
        }
    }
    if ((uint64_t)len < count) {
        uint16_t z = 0;
        if (sim__write(ep, buf + n * (wide ? 2 : 1), &z, wide ? 2 : 1) < 0)
            return;
    }
    ret_int(ep, (uint64_t)len <= count ? len : -1);
}

void sim__api__snprintf(sim_endpoint *ep)
{
    char text[SIM__FMT_OUT];
    int n = sim__format(ep, text, sizeof text, sim__arg(ep, 2), 3);

    if (n >= 0)
        store_counted_output(ep, sim__arg(ep, 0), sim__arg(ep, 1), text, n, false);
}

void sim__api__vsnprintf(sim_endpoint *ep)
{
    char text[SIM__FMT_OUT];
    int n = sim__format_va(ep, text, sizeof text, sim__arg(ep, 2), sim__arg(ep, 3));

    if (n >= 0)
        store_counted_output(ep, sim__arg(ep, 0), sim__arg(ep, 1), text, n, false);
}

void sim__api__snwprintf(sim_endpoint *ep)
{
    char text[SIM__FMT_OUT];
    int n = sim__format_args(ep, text, sizeof text, sim__arg(ep, 2), true, 3);

    if (n >= 0)
        store_counted_output(ep, sim__arg(ep, 0), sim__arg(ep, 1), text, n, true);
}

void sim__api_sprintf(sim_endpoint *ep)
{
    char text[SIM__FMT_OUT];
    uint64_t buf = sim__arg(ep, 0);
    int n = sim__format(ep, text, sizeof text, sim__arg(ep, 1), 2);

    if (n < 0)
        return;
    /* sprintf has no bound: all of it goes out (as far as fleetsim kept),
     * and an overrun of the driver's buffer overruns it here too. */
    size_t have = strnlen(text, sizeof text);
    if (sim__write(ep, buf, text, have + 1) == 0)
        ret_int(ep, n);
}
