/*
 * format.c — printf formatting as the Windows kernel's DbgPrint and CRT
 * (_snprintf, _vsnprintf, _snwprintf, sprintf) do it, with the arguments
 * taken from the guest.
 *
 * The Microsoft x64 ABI passes every variadic argument in its own 8-byte
 * slot: the first four in rcx, rdx, r8, r9 and the rest on the stack after
 * the shadow space; a va_list is a plain pointer to such slots.  So the
 * formatter only ever asks for "the next slot" and narrows it as the
 * conversion says (MS sizes: `l` is 32 bits, `ll`/`I64`/`z`/`I` 64, `h`
 * 16, `hh` 8).
 *
 * Strings the conversions dereference (%s, %ws, %Z, %wZ) are read from guest
 * memory one unit at a time, never past a precision or a NUL, so a bad
 * pointer faults exactly where the real routine would: NULL prints
 * "(null)" as the kernel's CRT does, any other unreadable pointer raises
 * the fault (a DbgPrint with a stale %s pointer crashes a real machine).
 *
 * Output is always truncated safely and NUL-terminated; the return value is
 * the length the whole output would have, so callers can implement both
 * C99 snprintf and Microsoft _snprintf (-1 on truncation) semantics.
 */
#include <stdio.h>
#include <string.h>

#include "format.h"

/* ---- output sink ------------------------------------------------------- */

typedef struct sink {
    char *dst;
    size_t max;
    size_t len; /* total length produced, may exceed max */
} sink;

static void put(sink *s, char c)
{
    if (s->len + 1 < s->max)
        s->dst[s->len] = c;
    s->len++;
}

static void put_n(sink *s, char c, int n)
{
    while (n-- > 0)
        put(s, c);
}

static void put_str(sink *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(s, p[i]);
}

/* ---- one conversion's specification ------------------------------------ */

typedef struct spec {
    bool left, plus, space, alt, zero;
    int width;      /* -1: none */
    int prec;       /* -1: none */
    int size;       /* argument size in bytes: 1, 2, 4 or 8 */
    bool wide;      /* `l`/`w` on c/s: wide character or string */
    bool narrow;    /* `h` on c/s: narrow character or string */
} spec;

/* Pad a field of `len` characters to the width, on the side flags say. */
static void pad_before(sink *s, const spec *sp, int len)
{
    if (!sp->left && sp->width > len)
        put_n(s, ' ', sp->width - len);
}

static void pad_after(sink *s, const spec *sp, int len)
{
    if (sp->left && sp->width > len)
        put_n(s, ' ', sp->width - len);
}

/* ---- integers ---------------------------------------------------------- */

static void format_int(sink *s, const spec *sp, uint64_t raw, char conv)
{
    char digits[72];
    int nd = 0;
    bool neg = false;
    uint64_t v = raw;
    unsigned base = 10;
    const char *set = "0123456789abcdef";
    int bits = sp->size * 8;

    if (bits < 64)
        v &= (1ull << bits) - 1;
    if (conv == 'd' || conv == 'i') {
        if (bits < 64 && (v >> (bits - 1)) & 1)
            v |= ~((1ull << bits) - 1); /* sign-extend */
        if ((int64_t)v < 0) {
            neg = true;
            v = (uint64_t)0 - v;
        }
    } else if (conv == 'x' || conv == 'p') {
        base = 16;
    } else if (conv == 'X') {
        base = 16;
        set = "0123456789ABCDEF";
    } else if (conv == 'o') {
        base = 8;
    }
    if (conv == 'p')
        set = "0123456789ABCDEF";

    while (v != 0) {
        digits[nd++] = set[v % base];
        v /= base;
    }
    /* Precision is the minimum number of digits; ".0" with 0 prints none. */
    int prec = sp->prec;
    if (conv == 'p')
        prec = sp->size * 2;
    int zeros = 0;
    if (prec < 0 && nd == 0)
        zeros = 1;
    else if (prec > nd)
        zeros = prec - nd;
    if (conv == 'o' && sp->alt && zeros == 0 && (nd == 0 || digits[nd - 1] != '0'))
        zeros = 1;

    char prefix[3];
    int np = 0;
    if (neg)
        prefix[np++] = '-';
    else if ((conv == 'd' || conv == 'i') && sp->plus)
        prefix[np++] = '+';
    else if ((conv == 'd' || conv == 'i') && sp->space)
        prefix[np++] = ' ';
    if (sp->alt && (conv == 'x' || conv == 'X') && raw != 0 && nd > 0) {
        prefix[np++] = '0';
        prefix[np++] = conv;
    }

    int len = np + zeros + nd;
    /* The 0 flag pads with zeros after the sign, unless a precision or '-'
     * is given (C rules, which Microsoft's CRT follows). */
    if (sp->zero && !sp->left && sp->prec < 0 && sp->width > len) {
        zeros += sp->width - len;
        len = sp->width;
    }
    pad_before(s, sp, len);
    put_str(s, prefix, (size_t)np);
    put_n(s, '0', zeros);
    while (nd > 0)
        put(s, digits[--nd]);
    pad_after(s, sp, len);
}

/* ---- strings ----------------------------------------------------------- */

/* Characters of a string, from guest memory, unit by unit. */
typedef struct gstring {
    uint64_t addr;
    bool wide;
    int64_t count;  /* units available when counted (%Z/%wZ), -1: NUL-ended */
} gstring;

/*
 * Measure a string as printf would consume it: up to the precision, the
 * count, or the NUL.  Returns -1 when a read faults.
 */
static int64_t gstring_length(const sim_fmt_source *src, const gstring *g,
                              int prec)
{
    int64_t n = 0;
    size_t unit = g->wide ? 2 : 1;

    for (;;) {
        if (prec >= 0 && n >= prec)
            return n;
        if (g->count >= 0) {
            if (n >= g->count)
                return n;
        }
        uint16_t c = 0;
        if (src->read(src->ctx, g->addr + (uint64_t)n * unit, &c, unit) < 0)
            return -1;
        if (g->count < 0 && c == 0)
            return n;
        n++;
    }
}

static int format_gstring(sink *s, const spec *sp, const sim_fmt_source *src,
                          const gstring *g)
{
    int64_t n = gstring_length(src, g, sp->prec);
    size_t unit = g->wide ? 2 : 1;

    if (n < 0)
        return -1;
    int len = n > 0x7fffffff ? 0x7fffffff : (int)n;
    pad_before(s, sp, len);
    for (int64_t i = 0; i < n; i++) {
        uint16_t c = 0;
        if (src->read(src->ctx, g->addr + (uint64_t)i * unit, &c, unit) < 0)
            return -1;
        put(s, c < 0x80 || (!g->wide && c < 0x100) ? (char)c : '?');
    }
    pad_after(s, sp, len);
    return 0;
}

static void format_host_string(sink *s, const spec *sp, const char *str)
{
    size_t n = strlen(str);

    if (sp->prec >= 0 && (size_t)sp->prec < n)
        n = (size_t)sp->prec;
    pad_before(s, sp, (int)n);
    put_str(s, str, n);
    pad_after(s, sp, (int)n);
}

/* %Z / %wZ: a pointer to ANSI_STRING / UNICODE_STRING (Length in bytes). */
static int format_counted(sink *s, const spec *sp, const sim_fmt_source *src,
                          uint64_t ptr, bool wide)
{
    uint8_t hdr[16];
    uint16_t len;
    uint64_t buf;

    if (ptr == 0) {
        format_host_string(s, sp, "(null)");
        return 0;
    }
    if (src->read(src->ctx, ptr, hdr, sizeof hdr) < 0)
        return -1;
    memcpy(&len, hdr, 2);
    memcpy(&buf, hdr + 8, 8);
    if (buf == 0) {
        format_host_string(s, sp, "(null)");
        return 0;
    }
    gstring g = { buf, wide, wide ? len / 2 : len };
    return format_gstring(s, sp, src, &g);
}

/* ---- floating point ---------------------------------------------------- */

static void format_float(sink *s, const spec *sp, uint64_t raw, char conv)
{
    char f[32], out[128];
    double d;
    int o = 0;

    memcpy(&d, &raw, sizeof d);
    f[o++] = '%';
    if (sp->left)
        f[o++] = '-';
    if (sp->plus)
        f[o++] = '+';
    if (sp->space)
        f[o++] = ' ';
    if (sp->alt)
        f[o++] = '#';
    if (sp->zero)
        f[o++] = '0';
    f[o++] = '*';
    f[o++] = '.';
    f[o++] = '*';
    f[o++] = conv;
    f[o] = '\0';
    int width = sp->width < 0 ? 0 : (sp->width > 100 ? 100 : sp->width);
    int prec = sp->prec < 0 ? 6 : (sp->prec > 60 ? 60 : sp->prec);
    int n = snprintf(out, sizeof out, f, width, prec, d);
    if (n < 0)
        return;
    put_str(s, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1);
}

/* ---- the format loop --------------------------------------------------- */

/* Parse a decimal number; width and precision are clamped to keep a hostile
 * format from asking for gigabytes of padding. */
static int parse_num(const char **pp)
{
    const char *p = *pp;
    long v = 0;

    while (*p >= '0' && *p <= '9') {
        if (v < 100000)
            v = v * 10 + (*p - '0');
        p++;
    }
    *pp = p;
    return (int)(v > 4096 ? 4096 : v);
}

static int star_arg(const sim_fmt_source *src, int *out)
{
    uint64_t v;

    if (src->arg(src->ctx, &v) < 0)
        return -1;
    int32_t i = (int32_t)(uint32_t)v;
    if (i > 4096)
        i = 4096;
    if (i < -4096)
        i = -4096;
    *out = i;
    return 0;
}

/* Parse the length modifier into sp->size / wide / narrow. */
static const char *parse_length(const char *p, spec *sp)
{
    sp->size = 4;
    if (p[0] == 'h' && p[1] == 'h') {
        sp->size = 1;
        return p + 2;
    }
    if (p[0] == 'h') {
        sp->size = 2;
        sp->narrow = true;
        return p + 1;
    }
    if (p[0] == 'l' && p[1] == 'l') {
        sp->size = 8;
        return p + 2;
    }
    if (p[0] == 'l' || p[0] == 'w') {
        /* `l` is 32 bits on Windows (LLP64); on c/s it means wide. */
        sp->wide = true;
        return p + 1;
    }
    if (p[0] == 'I' && p[1] == '6' && p[2] == '4') {
        sp->size = 8;
        return p + 3;
    }
    if (p[0] == 'I' && p[1] == '3' && p[2] == '2') {
        sp->size = 4;
        return p + 3;
    }
    if (p[0] == 'I' || p[0] == 'z' || p[0] == 'j' || p[0] == 't') {
        sp->size = 8;
        return p + 1;
    }
    if (p[0] == 'L') {
        sp->size = 8;
        return p + 1;
    }
    return p;
}

int sim__format_core(char *dst, size_t max, const char *fmt, bool wide,
                     const sim_fmt_source *src)
{
    sink s = { dst, max, 0 };
    const char *p = fmt;

    while (*p) {
        if (*p != '%') {
            put(&s, *p++);
            continue;
        }
        p++;
        if (*p == '%') {
            put(&s, *p++);
            continue;
        }

        spec sp = { .width = -1, .prec = -1 };
        for (;; p++) {
            if (*p == '-')
                sp.left = true;
            else if (*p == '+')
                sp.plus = true;
            else if (*p == ' ')
                sp.space = true;
            else if (*p == '#')
                sp.alt = true;
            else if (*p == '0')
                sp.zero = true;
            else
                break;
        }
        if (*p == '*') {
            p++;
            if (star_arg(src, &sp.width) < 0)
                return -1;
            if (sp.width < 0) {
                sp.left = true;
                sp.width = -sp.width;
            }
        } else if (*p >= '0' && *p <= '9') {
            sp.width = parse_num(&p);
        }
        if (*p == '.') {
            p++;
            if (*p == '*') {
                p++;
                if (star_arg(src, &sp.prec) < 0)
                    return -1;
                if (sp.prec < 0)
                    sp.prec = -1; /* a negative precision is taken as none */
            } else {
                sp.prec = parse_num(&p);
            }
        }
        p = parse_length(p, &sp);

        char conv = *p;
        if (conv == '\0')
            break;
        p++;

        uint64_t v = 0;
        switch (conv) {
        case 'd': case 'i': case 'u': case 'x': case 'X': case 'o':
            if (src->arg(src->ctx, &v) < 0)
                return -1;
            format_int(&s, &sp, v, conv);
            break;
        case 'p':
            if (src->arg(src->ctx, &v) < 0)
                return -1;
            sp.size = 8;
            format_int(&s, &sp, v, conv);
            break;
        case 'c': case 'C': {
            if (src->arg(src->ctx, &v) < 0)
                return -1;
            /* A wide character is narrowed; '?' past ASCII. */
            bool wc = sp.wide || (!sp.narrow && ((conv == 'c') == wide));
            uint32_t c = wc ? (uint16_t)v : (uint8_t)v;
            char ch = wc && c >= 0x80 ? '?' : (char)c;
            pad_before(&s, &sp, 1);
            put(&s, ch);
            pad_after(&s, &sp, 1);
            break;
        }
        case 's': case 'S': {
            if (src->arg(src->ctx, &v) < 0)
                return -1;
            bool ws = sp.wide || (!sp.narrow && ((conv == 's') == wide));
            if (v == 0) {
                format_host_string(&s, &sp, "(null)");
                break;
            }
            gstring g = { v, ws, -1 };
            if (format_gstring(&s, &sp, src, &g) < 0)
                return -1;
            break;
        }
        case 'Z':
            if (src->arg(src->ctx, &v) < 0)
                return -1;
            if (format_counted(&s, &sp, src, v, sp.wide) < 0)
                return -1;
            break;
        case 'e': case 'E': case 'f': case 'F': case 'g': case 'G':
        case 'a': case 'A':
            if (src->arg(src->ctx, &v) < 0)
                return -1;
            format_float(&s, &sp, v, conv);
            break;
        case 'n':
            /* %n writes through a pointer; the kernel's CRT disables it
             * (it is a classic exploit primitive).  Consume and ignore. */
            if (src->arg(src->ctx, &v) < 0)
                return -1;
            break;
        default:
            /* Unknown conversion: print it literally, as the CRT does. */
            put(&s, conv);
            break;
        }
    }
    if (max > 0)
        dst[s.len < max ? s.len : max - 1] = '\0';
    return s.len > 0x7fffffff ? 0x7fffffff : (int)s.len;
}

/* ---- sources over a guest ---------------------------------------------- */

typedef struct guest_args {
    sim_endpoint *ep;
    unsigned next;   /* next argument index, for register/stack arguments */
    uint64_t va;     /* next slot address, for a va_list (0: not one) */
    bool use_va;
} guest_args;

static int guest_arg(void *ctx, uint64_t *value)
{
    guest_args *g = ctx;

    if (g->ep->stopped)
        return -1;
    if (!g->use_va) {
        *value = sim__arg(g->ep, g->next++);
        return g->ep->stopped ? -1 : 0;
    }
    if (sim__read(g->ep, g->va, value, 8) < 0)
        return -1;
    g->va += 8;
    return 0;
}

static int guest_read(void *ctx, uint64_t addr, void *dst, size_t n)
{
    guest_args *g = ctx;

    return sim__read(g->ep, addr, dst, n);
}

int sim__format_read_fmt(sim_endpoint *ep, uint64_t fmt, bool wide, char *dst,
                         size_t max)
{
    if (max == 0)
        return -1;
    if (!wide)
        return sim__read_cstr(ep, fmt, dst, max);
    for (size_t i = 0;; i++) {
        uint16_t c;
        if (sim__read(ep, fmt + 2 * i, &c, 2) < 0)
            return -1;
        if (c == 0 || i + 1 == max) {
            dst[i] = '\0';
            return 0;
        }
        dst[i] = c < 0x80 ? (char)c : '?';
    }
}

static int format_guest(sim_endpoint *ep, char *dst, size_t max, uint64_t fmt,
                        bool wide, guest_args *g)
{
    char f[SIM__FMT_MAX];
    sim_fmt_source src = { guest_arg, guest_read, g };

    if (max > 0)
        dst[0] = '\0';
    if (sim__format_read_fmt(ep, fmt, wide, f, sizeof f) < 0)
        return -1;
    return sim__format_core(dst, max, f, wide, &src);
}

int sim__format_args(sim_endpoint *ep, char *dst, size_t max, uint64_t fmt,
                     bool wide, unsigned first_arg)
{
    guest_args g = { ep, first_arg, 0, false };

    return format_guest(ep, dst, max, fmt, wide, &g);
}

int sim__format_va_ex(sim_endpoint *ep, char *dst, size_t max, uint64_t fmt,
                      bool wide, uint64_t va)
{
    guest_args g = { ep, 0, va, true };

    return format_guest(ep, dst, max, fmt, wide, &g);
}

int sim__format(sim_endpoint *ep, char *dst, size_t max, uint64_t fmt,
                unsigned first_arg)
{
    return sim__format_args(ep, dst, max, fmt, false, first_arg);
}

int sim__format_va(sim_endpoint *ep, char *dst, size_t max, uint64_t fmt,
                   uint64_t va)
{
    return sim__format_va_ex(ep, dst, max, fmt, false, va);
}
