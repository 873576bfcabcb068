/*
 * events.c — OS events reaching a driver, and the kernel objects they carry.
 *
 * A driver hears about the machine through what it registered: process
 * creation and exit through PsSetCreateProcessNotifyRoutine(Ex) (kapi_ke.c
 * records them), named-pipe creation and file writes through a minifilter
 * (FltRegisterFilter, served here).  For each event the emulated kernel
 * builds the objects a real one would pass — an EPROCESS laid out with the
 * profile's real structure offsets, PS_CREATE_NOTIFY_INFO, FLT_CALLBACK_DATA
 * with its parameter block and FILE_OBJECT — in nt's data area, and calls
 * the driver's routine at PASSIVE_LEVEL.
 *
 * Fields a driver has no business reading are not zero but deterministic
 * junk drawn from the endpoint's seed: a driver that reads the wrong offset
 * of an EPROCESS must find what a real machine would give it — something
 * that is not the field it wanted.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sim-internal.h"

/* Where the objects of one event live, inside nt data. */
#define AREA(off) (SIM__NTDATA_BASE + (off))
#define PROCESS_AREA 0x8000u      /* the EPROCESS of the event's process */
#define PROCESS_SIZE 0x1000u
#define AUDIT_NAME 0x9000u        /* OBJECT_NAME_INFORMATION + buffer */
#define TOKEN_AREA 0x9800u
#define CREATE_INFO 0xA000u       /* PS_CREATE_NOTIFY_INFO */
#define CREATE_STRINGS 0xA100u
#define FLT_DATA 0xC000u          /* FLT_CALLBACK_DATA */
#define FLT_IOPB 0xC100u
#define FLT_FILE 0xC200u          /* FILE_OBJECT */
#define FLT_RELATED 0xC300u
#define FLT_NAME 0xC400u
#define FLT_CONTEXT 0xCC00u

#define IRP_MJ_CREATE_NAMED_PIPE 0x01
#define IRP_MJ_WRITE 0x04
#define IRP_MJ_OPERATION_END 0x80
#define MAX_OPERATIONS 64

#define STATUS_SUCCESS 0x00000000u
#define STATUS_INVALID_PARAMETER 0xC000000Du
#define STATUS_FLT_INSTANCE_ALTITUDE_COLLISION 0xC01C0011u

static void put64(sim_endpoint *ep, uint64_t addr, uint64_t v)
{
    sim__write(ep, addr, &v, 8);
}

/* ---- processes ------------------------------------------------------------ */

/* Background of an object: small numbers and flags, never a kernel pointer. */
static void fill_junk(sim_endpoint *ep, uint64_t addr, size_t size)
{
    uint8_t *p = sim__ptr(ep, addr, size, SIM_PROT_W);

    if (!p)
        return;
    for (size_t i = 0; i + 8 <= size; i += 8) {
        uint64_t v = sim__random(ep) >> 44; /* at most 20 bits */
        memcpy(p + i, &v, 8);
    }
}

static bool field(const sim_endpoint *ep, const char *name, uint32_t *off)
{
    return sim_profile_offset(ep->profile, name, off) && *off + 16 <= PROCESS_SIZE;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '\\');
    return slash ? slash + 1 : path;
}

/*
 * An EPROCESS at `at` with the fields the profile names; `path` is the full
 * image path (SeAuditProcessCreationInfo), NULL for the System process.
 */
static void make_process(sim_endpoint *ep, uint64_t at, uint32_t pid,
                         uint32_t parent, const char *path)
{
    uint32_t off;

    fill_junk(ep, at, PROCESS_SIZE);
    sim__write(ep, at, &(uint8_t){3}, 1); /* DISPATCHER_HEADER.Type: ProcessObject */
    if (field(ep, "EPROCESS.UniqueProcessId", &off))
        put64(ep, at + off, pid);
    if (field(ep, "EPROCESS.ActiveProcessLinks", &off)) {
        put64(ep, at + off, at + off); /* a list of one */
        put64(ep, at + off + 8, at + off);
    }
    if (field(ep, "EPROCESS.InheritedFromUniqueProcessId", &off))
        put64(ep, at + off, parent);
    if (field(ep, "EPROCESS.Token", &off))
        put64(ep, at + off, AREA(TOKEN_AREA) | 0x7); /* EX_FAST_REF: refs in low bits */
    if (field(ep, "EPROCESS.Peb", &off))
        put64(ep, at + off, path ? 0x000000A000000000ull + ((uint64_t)pid << 12) : 0);
    if (field(ep, "EPROCESS.ImageFileName", &off)) {
        char name[15] = {0};
        snprintf(name, sizeof name, "%s", path ? base_name(path) : "System");
        sim__write(ep, at + off, name, sizeof name);
    }
    if (field(ep, "EPROCESS.SeAuditProcessCreationInfo", &off)) {
        if (path) {
            sim__put_unicode_string(ep, AREA(AUDIT_NAME), AREA(AUDIT_NAME) + 0x10, path);
            put64(ep, at + off, AREA(AUDIT_NAME));
        } else {
            put64(ep, at + off, 0);
        }
    }
}

void sim__init_system_process(sim_endpoint *ep)
{
    make_process(ep, SIM__NTDATA_BASE + SIM__EPROCESS_OFFSET, 4, 0, NULL);
}

/* PS_CREATE_NOTIFY_INFO for a process being created. */
static uint64_t make_create_info(sim_endpoint *ep, const sim_event *ev, const char *name)
{
    uint64_t info = AREA(CREATE_INFO);
    uint64_t strings = AREA(CREATE_STRINGS);

    sim__write(ep, info, (uint8_t[0x48]){0}, 0x48);
    put64(ep, info + 0x00, 0x48);                 /* Size */
    put64(ep, info + 0x10, ev->parent_pid);       /* ParentProcessId */
    put64(ep, info + 0x18, ev->parent_pid);       /* CreatingThreadId.UniqueProcess */
    put64(ep, info + 0x30, strings);              /* ImageFileName */
    put64(ep, info + 0x38, strings + 0x10);       /* CommandLine */
    sim__put_unicode_string(ep, strings, strings + 0x100, name);
    sim__put_unicode_string(ep, strings + 0x10, strings + 0x900, name);
    return info;
}

static void deliver_process(sim_endpoint *ep, const sim_event *ev)
{
    bool create = ev->kind == SIM_EVENT_PROCESS_CREATE;
    const char *name = ev->name ? ev->name : "";
    uint64_t ret;

    for (size_t i = 0; i < ep->nprocess_notify && !ep->stopped; i++) {
        uint64_t args[3];
        if (ep->process_notify_ex[i]) {
            make_process(ep, AREA(PROCESS_AREA), ev->pid, ev->parent_pid, name);
            args[0] = AREA(PROCESS_AREA);
            args[1] = ev->pid;
            args[2] = create ? make_create_info(ep, ev, name) : 0;
        } else {
            args[0] = ev->parent_pid;
            args[1] = ev->pid;
            args[2] = create;
        }
        ep->irql = 0;
        sim__call_guest(ep, ep->process_notify[i], args, 3,
                        create ? "process-create" : "process-exit", &ret);
    }
}

/* ---- the filter manager --------------------------------------------------- */

void sim__api_FltRegisterFilter(sim_endpoint *ep)
{
    uint64_t registration = sim__arg(ep, 1), ret_filter = sim__arg(ep, 2);
    uint16_t size = 0;

    if (!registration || !ret_filter) {
        sim__ret(ep, STATUS_INVALID_PARAMETER);
        return;
    }
    if (sim__read(ep, registration, &size, 2) < 0)
        return;
    if (size < 0x18) {
        sim__ret(ep, STATUS_INVALID_PARAMETER);
        return;
    }
    if (ep->filter_registration) {
        /* One filter per driver here; a second at the same altitude collides. */
        sim__ret(ep, STATUS_FLT_INSTANCE_ALTITUDE_COLLISION);
        return;
    }
    ep->filter_registration = registration;
    ep->filter_started = false;
    /* The PFLT_FILTER handle: an opaque address in nt data. */
    if (sim__write(ep, ret_filter, &(uint64_t){AREA(FLT_CONTEXT) + 0x100}, 8) < 0)
        return;
    sim__ret(ep, STATUS_SUCCESS);
}

void sim__api_FltStartFiltering(sim_endpoint *ep)
{
    if (!ep->filter_registration || sim__arg(ep, 0) != AREA(FLT_CONTEXT) + 0x100) {
        sim__ret(ep, STATUS_INVALID_PARAMETER);
        return;
    }
    ep->filter_started = true;
    sim__ret(ep, STATUS_SUCCESS);
}

void sim__api_FltUnregisterFilter(sim_endpoint *ep)
{
    if (sim__arg(ep, 0) == AREA(FLT_CONTEXT) + 0x100) {
        ep->filter_registration = 0;
        ep->filter_started = false;
    }
    sim__ret(ep, 0);
}

/* The pre-operation callback the filter registered for `major`, or 0. */
static uint64_t pre_operation(sim_endpoint *ep, uint8_t major)
{
    uint64_t ops = 0;

    if (sim__read(ep, ep->filter_registration + 0x10, &ops, 8) < 0 || !ops)
        return 0;
    for (unsigned i = 0; i < MAX_OPERATIONS; i++) {
        uint8_t entry[0x20];
        if (sim__read(ep, ops + 0x20ull * i, entry, sizeof entry) < 0)
            return 0;
        if (entry[0] == IRP_MJ_OPERATION_END)
            return 0;
        if (entry[0] == major) {
            uint64_t pre;
            memcpy(&pre, entry + 8, 8);
            return pre;
        }
    }
    return 0;
}

static uint64_t file_size(const sim_endpoint *ep, const char *path)
{
    for (size_t i = 0; i < ep->run->nfiles; i++)
        if (ep->run->files[i].path && strcasecmp(ep->run->files[i].path, path) == 0)
            return ep->run->files[i].size;
    return 0;
}

static void deliver_filtered(sim_endpoint *ep, const sim_event *ev)
{
    uint8_t major = ev->kind == SIM_EVENT_PIPE_CREATE ? IRP_MJ_CREATE_NAMED_PIPE : IRP_MJ_WRITE;
    const char *name = ev->name ? ev->name : "";
    uint64_t ret;

    if (!ep->filter_registration || !ep->filter_started)
        return;
    uint64_t pre = pre_operation(ep, major);
    if (!pre || ep->stopped)
        return;

    uint64_t data = AREA(FLT_DATA), iopb = AREA(FLT_IOPB), file = AREA(FLT_FILE);
    uint64_t related = AREA(FLT_RELATED);
    sim__write(ep, data, (uint8_t[0x100]){0}, 0x100);
    sim__write(ep, iopb, (uint8_t[0x100]){0}, 0x100);
    sim__write(ep, file, (uint8_t[0x100]){0}, 0x100);
    sim__write(ep, related, (uint8_t[0x30]){0}, 0x30);

    put64(ep, data + 0x08, SIM__NTDATA_BASE + SIM__KTHREAD_OFFSET); /* Thread */
    put64(ep, data + 0x10, iopb);                                   /* Iopb */
    sim__write(ep, iopb + 0x04, &major, 1);                         /* MajorFunction */
    put64(ep, iopb + 0x08, file);                                   /* TargetFileObject */
    if (major == IRP_MJ_WRITE) {
        uint32_t length = (uint32_t)file_size(ep, name);
        sim__write(ep, iopb + 0x18, &length, 4);                    /* Write.Length */
    }
    uint16_t type = 5, size = 0xD8;                                 /* IO_TYPE_FILE */
    sim__write(ep, file, &type, 2);
    sim__write(ep, file + 2, &size, 2);
    sim__put_unicode_string(ep, file + 0x58, AREA(FLT_NAME), name); /* FileName */
    uint16_t rsize = 0x30;
    sim__write(ep, related, &rsize, 2);
    put64(ep, related + 0x08, AREA(FLT_CONTEXT) + 0x100);           /* Filter */
    put64(ep, related + 0x20, file);                                /* FileObject */
    put64(ep, AREA(FLT_CONTEXT), 0);

    uint64_t args[3] = {data, related, AREA(FLT_CONTEXT)};
    ep->irql = 0;
    sim__call_guest(ep, pre, args, 3,
                    major == IRP_MJ_WRITE ? "file-write" : "pipe-create", &ret);
}

void sim__deliver_event(sim_endpoint *ep, const sim_event *ev)
{
    ep->now_ms = ev->at_ms;
    ep->out->events_delivered++;
    switch (ev->kind) {
    case SIM_EVENT_PROCESS_CREATE:
    case SIM_EVENT_PROCESS_EXIT:
        deliver_process(ep, ev);
        break;
    case SIM_EVENT_PIPE_CREATE:
    case SIM_EVENT_FILE_WRITE:
        deliver_filtered(ep, ev);
        break;
    case SIM_EVENT_COUNT:
        break;
    }
}
