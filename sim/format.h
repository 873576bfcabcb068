/*
 * format.h — the printf engine behind DbgPrint, _snprintf and friends,
 * shared by format.c (which implements it) and kapi_rtl.c (which serves the
 * exports).  Internal to sim/.
 *
 * The core formatter reads its arguments and any guest memory a conversion
 * dereferences (%s, %wZ, …) through a small source of callbacks, so it can
 * be tested without an emulator: the unit tests hand it a fake argument
 * list and a fake memory, the kernel layer hands it the guest's registers,
 * stack or va_list.
 */
#ifndef FLEETSIM_SIM_FORMAT_H
#define FLEETSIM_SIM_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim-internal.h"

typedef struct sim_fmt_source {
    /* The next 8-byte argument slot (MS x64 varargs: every argument, even a
     * char or an int, takes one slot).  Returns -1 when it cannot be read;
     * the fault has then been raised and formatting stops. */
    int (*arg)(void *ctx, uint64_t *value);
    /* Read guest memory; -1 when the access faults (fault already raised). */
    int (*read)(void *ctx, uint64_t addr, void *dst, size_t n);
    void *ctx;
} sim_fmt_source;

/* Longest format string and longest single line the kernel layer formats. */
#define SIM__FMT_MAX 1024
#define SIM__FMT_OUT 2048

/*
 * Format `fmt` (host, NUL-terminated) into dst[max], always NUL-terminated
 * when max > 0.  Returns the length the whole output would have (as C99
 * snprintf), or -1 when an argument or a dereferenced pointer faulted.
 * `wide` says the format came from a wide-character function (_snwprintf):
 * there %s and %c take wide strings and characters, %S and %C narrow ones.
 */
int sim__format_core(char *dst, size_t max, const char *fmt, bool wide,
                     const sim_fmt_source *src);

/* sim__format with the arguments in a guest va_list (MS x64: a pointer to
 * consecutive 8-byte slots), for vDbgPrintEx and _vsnprintf. */
int sim__format_va(sim_endpoint *ep, char *dst, size_t max, uint64_t fmt,
                   uint64_t va);

/* Read a guest format string: narrow, or wide narrowed to 8 bits ('?' past
 * ASCII).  -1 when the read faults. */
int sim__format_read_fmt(sim_endpoint *ep, uint64_t fmt, bool wide, char *dst,
                         size_t max);

/* Format with arguments from argument index `first_arg` on; `wide` as above. */
int sim__format_args(sim_endpoint *ep, char *dst, size_t max, uint64_t fmt,
                     bool wide, unsigned first_arg);
int sim__format_va_ex(sim_endpoint *ep, char *dst, size_t max, uint64_t fmt,
                      bool wide, uint64_t va);

#endif
