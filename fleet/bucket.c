/*
 * bucket.c — the crash bucket key of an outcome (store_bucket_key, declared
 * in store.h): "0x50_R_KERNEL_sensor!MatchInstance+0x2f".
 *
 * A bucket groups crashes that are the same bug: the bugcheck code or hang,
 * the kind of access and address that faulted, and the frame blamed for it
 * (the driver's, not nt's).  The key is a pure function of the outcome, so
 * two runs, or two shards of one, bucket alike; store.c writes it with each
 * crash and the report layer groups by it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"
#include "store-internal.h"

/* A frame as the bucket names it. */
typedef struct blame {
    const char *module, *function;   /* fixed-size fields, maybe unterminated */
    size_t module_max, function_max;
    uint64_t offset;
} blame;

static bool is_nt(const char *module, size_t max)
{
    return strncmp(module, "nt", max) == 0 || strncmp(module, "ntoskrnl.exe", max) == 0 ||
           strncmp(module, "ntoskrnl", max) == 0;
}

static bool is_driver(const char *module, size_t max)
{
    return module[0] && !is_nt(module, max);
}

/*
 * The frame a crash is blamed on: the faulting instruction's, unless it is
 * in nt or in no module, when the innermost stack frame in a driver is (the
 * driver called the kernel routine that found the fault, or jumped to where
 * no module is).  With no such frame the fault's own stays.
 */
static blame blame_frame(const sim_outcome *o)
{
    blame b = {o->fault.module, o->fault.function, sizeof o->fault.module,
               sizeof o->fault.function, o->fault.offset};
    if (is_driver(b.module, b.module_max))
        return b;
    int n = o->nframes > SIM_MAX_FRAMES ? SIM_MAX_FRAMES : o->nframes;
    for (int i = 0; i < n; i++) {
        const sim_frame *f = &o->stack[i];
        if (is_driver(f->module, sizeof f->module))
            return (blame){f->module, f->function, sizeof f->module, sizeof f->function,
                           f->offset};
    }
    return b;
}

/* Copy a name into a key, keeping characters symbol names use; the rest
 * (spaces, '!', '+', '_' separators are fine) becomes '?'. */
static size_t key_name(char *out, size_t room, const char *name, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < max && name[i] && n + 1 < room; i++) {
        unsigned char c = (unsigned char)name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("_.-:<>~$@?", c) != NULL;
        out[n++] = ok ? (char)c : '?';
    }
    if (room)
        out[n < room ? n : room - 1] = '\0';
    return n;
}

static bool has_symbol(const char *function, size_t max)
{
    return function[0] && strncmp(function, "unknown_function", max) != 0;
}

/* "module!function+0xoff" (or "module+0xoff"), within `room` bytes with its
 * NUL: a long function name is shortened so the offset always fits. */
static void frame_text(char *out, size_t room, const blame *b)
{
    char module[64], function[64], off[24];
    if (b->module[0])
        key_name(module, sizeof module, b->module, b->module_max);
    else
        snprintf(module, sizeof module, "unknown_module");
    snprintf(off, sizeof off, "+0x%llx", (unsigned long long)b->offset);
    if (!has_symbol(b->function, b->function_max) || !b->module[0]) {
        if (!b->module[0])
            off[0] = '\0';          /* no module: an offset from nothing */
        snprintf(out, room, "%s%s", module, off);
        return;
    }
    key_name(function, sizeof function, b->function, b->function_max);
    size_t fixed = strlen(module) + 1 + strlen(off) + 1;
    if (fixed < room && strlen(function) > room - fixed)
        function[room - fixed] = '\0';
    snprintf(out, room, "%s!%s%s", module, function, off);
}

void store__blamed_frame(const sim_outcome *o, char *out, size_t room)
{
    blame b = blame_frame(o);
    frame_text(out, room, &b);
}

int store_bucket_key(const sim_outcome *o, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return SIM_EINVAL;
    out[0] = '\0';
    if (!o || (unsigned)o->kind >= SIM_OUTCOME_COUNT)
        return SIM_EINVAL;

    char buf[STORE_BUCKET_SIZE];
    size_t room = sizeof buf < outlen ? sizeof buf : outlen;
    if (o->kind == SIM_OUTCOME_OK)
        return SIM_EINVAL;
    if (o->kind == SIM_OUTCOME_UNSUPPORTED_API) {
        /* "ntoskrnl.exe!Name": the one '!' is the API's own separator. */
        size_t n = (size_t)snprintf(buf, sizeof buf, "UNSUPPORTED_");
        const char *bang = memchr(o->api, '!', strnlen(o->api, sizeof o->api));
        size_t dll = bang ? (size_t)(bang - o->api) : sizeof o->api;
        n += key_name(buf + n, sizeof buf - n, o->api, dll);
        if (bang && n + 1 < sizeof buf) {
            buf[n++] = '!';
            key_name(buf + n, sizeof buf - n, bang + 1, sizeof o->api - dll - 1);
        }
        snprintf(out, room, "%s", buf);
        return 0;
    }

    char head[32];
    int n;
    if (o->kind == SIM_OUTCOME_BUGCHECK)
        n = snprintf(head, sizeof head, "0x%X_", o->bugcheck);
    else
        n = snprintf(head, sizeof head, "HANG_");
    if (o->has_fault && o->fault.access != SIM_ACCESS_NONE) {
        static const char access[] = "-RWX";
        static const char *const cls[] = {"NULL", "USER", "NONCANONICAL", "KERNEL"};
        unsigned a = (unsigned)o->fault.access, c = (unsigned)o->fault.address_class;
        snprintf(head + n, sizeof head - (size_t)n, "%c_%s_", a < 4 ? access[a] : '-',
                 c < 4 ? cls[c] : "-");
    } else {
        snprintf(head + n, sizeof head - (size_t)n, "-_-_");
    }

    char frame[STORE_BUCKET_SIZE];
    size_t hl = strlen(head);
    if (o->has_fault) {
        blame b = blame_frame(o);
        frame_text(frame, sizeof buf - hl, &b);
    } else {
        snprintf(frame, sizeof frame, "unknown");
    }
    snprintf(buf, sizeof buf, "%s%s", head, frame);
    snprintf(out, room, "%s", buf);
    return 0;
}
