/*
 * sensor.c — a content-driven security sensor, built in three versions from
 * this one source (images/meson.build: -DSENSOR_VERSION_MINOR=10/11/16 →
 * sensor-7.10.sys, sensor-7.11.sys, sensor-7.16.sys).
 *
 * It has the shape of the sensor at the centre of the 19 July 2024
 * incident, as the vendor's root-cause analysis and Microsoft's analysis of
 * the crash dumps describe it:
 *
 *   - DriverEntry picks the pool allocator by what the kernel exports
 *     (ExAllocatePool2 through MmGetSystemRoutineAddress on builds that
 *     have it, ExAllocatePoolWithTag before), reads every channel file in
 *     \SystemRoot\System32\drivers\sensor\ (C-<channel>-*.sys) and loads
 *     their Template Instances into the content interpreter;
 *   - it registers for OS events: process creation
 *     (PsSetCreateProcessNotifyRoutineEx), and a minifilter for named-pipe
 *     creation and file writes (FltRegisterFilter, fltmini.h);
 *   - on each event the event integration code builds that event's input
 *     array and the interpreter matches every instance of the Template
 *     Types that event feeds (templates.h) against it;
 *   - a channel file written into its folder while it runs is loaded at
 *     once (a newer version of a channel replaces the older); at every boot
 *     all files on disk are loaded again.
 *
 * The versions differ where the real product's did:
 *
 *   7.10  no InterProcessCommunication (IPC) template type and no pipe
 *         integration: IPC instances in content are ignored.
 *   7.11  the IPC type declares 21 fields, the pipe integration supplies
 *         20 inputs, and nothing compares the two.  An instance whose
 *         criterion for field 21 is a wildcard never reads input 21; one
 *         with a concrete criterion there makes ReadInputField load the
 *         slot past the 20 inputs, check it for NULL, and dereference it.
 *         The input array sits in a pool block the sensor asked to be left
 *         uninitialised, so the slot holds a stale value; a stale pointer
 *         (ffff8405`00000074-like) passes the NULL check and faults on the
 *         32-bit load of the input's length → bugcheck 0x50 in
 *         sensor!ReadInputField, called from MatchInstance, from
 *         EvaluateTemplateInstances, from the pipe callback.
 *   7.16  the published fixes: content is checked against the inputs each
 *         event supplies when it loads (an instance with a criterion on a
 *         field the event does not supply is refused, and the log says
 *         which), and the interpreter bounds every read by the input count.
 */
#include "fltmini.h"

#include "channel.h"
#include "templates.h"

#ifndef SENSOR_VERSION_MINOR
#error "build with -DSENSOR_VERSION_MINOR=<10|11|16>"
#endif

/* The fixes of 7.16: count checked at load, every read bounded. */
#define SENSOR_CHECKS_CONTENT (SENSOR_VERSION_MINOR >= 16)

#define NOINLINE __attribute__((noinline, noclone))
/* An empty asm after a call keeps the call out of tail position, so the
 * caller's frame stays on the stack a crash record shows. */
#define KEEP_FRAME() __asm__ __volatile__("" ::: "memory")

#define SENSOR_TAG 0x72736E53u        /* 'Snsr' in memory */
#define SENSOR_FOLDER L"\\SystemRoot\\System32\\drivers\\sensor"
#define SENSOR_MAX_CHANNELS 8
#define SENSOR_MAX_FILES 16
#define SENSOR_NAME_MAX 64
#define SENSOR_INPUT_TEXT 60
#define SENSOR_MAX_LOGGED_MATCHES 16

/* ExAllocatePool2's flags (wdm.h of the 2004 WDK; mingw-w64 lacks them). */
#define POOL_FLAG_UNINITIALIZED 0x0000000000000002ull
#define POOL_FLAG_NON_PAGED 0x0000000000000040ull

typedef PVOID (*EX_ALLOCATE_POOL2)(ULONG64 Flags, SIZE_T NumberOfBytes, ULONG Tag);

/* One input of an event: a counted ASCII string. */
typedef struct SENSOR_INPUT {
    ULONG Length;
    CHAR Text[SENSOR_INPUT_TEXT];
} SENSOR_INPUT;

/*
 * The interpreter's view of one event, one pool block.  Inputs has room
 * for SENSOR_MAX_INPUTS pointers; the event integration fills InputCount
 * of them and leaves the rest as the pool handed them out.
 */
typedef struct SENSOR_EVENT_CONTEXT {
    ULONG Event;                 /* SENSOR_EVENT_* */
    ULONG InputCount;
    ULONG Evaluated;
    ULONG Matched;
    SENSOR_INPUT *Inputs[SENSOR_MAX_INPUTS];
    SENSOR_INPUT Storage[SENSOR_MAX_INPUTS];
} SENSOR_EVENT_CONTEXT;

/* A loaded channel file: its bytes, and the instances the sensor accepted. */
typedef struct SENSOR_CHANNEL {
    ULONG Channel;
    ULONG Version;
    PUCHAR Data;
    ULONG Count;
    CHAR FileName[SENSOR_NAME_MAX];
    const channel_instance *Instances[CHANNEL_MAX_INSTANCES];
    const sensor_template_type *Types[CHANNEL_MAX_INSTANCES];
} SENSOR_CHANNEL;

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry);
LONG ReadInputField(const SENSOR_EVENT_CONTEXT *ctx, ULONG index, const CHAR **text);
BOOLEAN MatchInstance(const SENSOR_EVENT_CONTEXT *ctx, const channel_instance *instance);
ULONG EvaluateTemplateInstances(SENSOR_EVENT_CONTEXT *ctx, const CHAR *subject);
NTSTATUS ProcessChannelFile(PUCHAR data, ULONG size, const CHAR *name);
NTSTATUS LoadChannelFile(const WCHAR *name, ULONG nameChars);
ULONG LoadChannelFiles(void);
FLT_PREOP_CALLBACK_STATUS OnPipeCreate(PFLT_CALLBACK_DATA data, PCFLT_RELATED_OBJECTS objects,
                                       PVOID *context);
FLT_PREOP_CALLBACK_STATUS OnFileWrite(PFLT_CALLBACK_DATA data, PCFLT_RELATED_OBJECTS objects,
                                      PVOID *context);
VOID OnProcessNotify(PEPROCESS process, HANDLE pid, PPS_CREATE_NOTIFY_INFO info);

static EX_ALLOCATE_POOL2 AllocatePool2;
static RTL_OSVERSIONINFOW OsVersion;
static PFLT_FILTER Filter;
static BOOLEAN ProcessNotifyRegistered;
static SENSOR_CHANNEL Channels[SENSOR_MAX_CHANNELS];
static SENSOR_CHANNEL Incoming;          /* a channel file being parsed */
static CHAR LastProcessImage[SENSOR_INPUT_TEXT] = "System";
static ULONG MatchesLogged;

/* ---- small helpers (no CRT in a driver) -------------------------------- */

static CHAR Lower(CHAR c)
{
    return c >= 'A' && c <= 'Z' ? (CHAR)(c + 32) : c;
}

static BOOLEAN SameText(const CHAR *a, const UCHAR *b, ULONG n)
{
    for (ULONG i = 0; i < n; i++)
        if (Lower(a[i]) != Lower((CHAR)b[i]))
            return FALSE;
    return TRUE;
}

/* UTF-16 to ASCII ('?' for the rest), at most max-1 characters, NUL-terminated. */
static ULONG ToAscii(CHAR *out, ULONG max, const WCHAR *in, ULONG chars)
{
    ULONG n = 0;

    for (; n < chars && n + 1 < max; n++)
        out[n] = in[n] < 0x80 ? (CHAR)in[n] : '?';
    out[n] = '\0';
    return n;
}

static ULONG FormatDecimal(CHAR *out, ULONG64 value)
{
    CHAR digits[24];
    ULONG n = 0, i;

    do {
        digits[n++] = (CHAR)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    for (i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    out[n] = '\0';
    return n;
}

static ULONG FormatHex(CHAR *out, ULONG value)
{
    static const CHAR hex[] = "0123456789abcdef";
    ULONG n = 0;

    out[n++] = '0';
    out[n++] = 'x';
    for (int shift = 28; shift >= 0; shift -= 4)
        if ((value >> shift) != 0 || shift == 0)
            out[n++] = hex[(value >> shift) & 0xF];
    out[n] = '\0';
    return n;
}

static const CHAR *BaseName(const CHAR *path)
{
    const CHAR *base = path;

    for (; *path; path++)
        if (*path == '\\')
            base = path + 1;
    return base;
}

/* ---- pool ---------------------------------------------------------------- */

/*
 * Every buffer the sensor allocates it fills before use, so on builds with
 * ExAllocatePool2 it asks for uninitialised memory (zeroing a buffer on
 * every event costs time on a hot path), just as ExAllocatePoolWithTag
 * hands it out on older builds: the sensor behaves the same on every
 * Windows version, including in what it leaves unfilled.
 */
static PVOID SensorAllocate(SIZE_T size)
{
    if (AllocatePool2 != NULL)
        return AllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_UNINITIALIZED, size, SENSOR_TAG);
    return ExAllocatePoolWithTag(OsVersion.dwBuildNumber >= 9200 ? NonPagedPoolNx : NonPagedPool,
                                 size, SENSOR_TAG);
}

static VOID SensorFree(PVOID block)
{
    if (block != NULL)
        ExFreePoolWithTag(block, SENSOR_TAG);
}

/* ---- the content interpreter ------------------------------------------- */

/*
 * Input `index` of the event: its text and length, or -1 when there is
 * none.  7.11 trusts the index (content was checked against the template
 * type's 21 fields); 7.16 bounds it by what the event supplied.
 */
NOINLINE LONG ReadInputField(const SENSOR_EVENT_CONTEXT *ctx, ULONG index, const CHAR **text)
{
    const SENSOR_INPUT *input;

#if SENSOR_CHECKS_CONTENT
    if (index >= ctx->InputCount)
        return -1;
#endif
    input = ctx->Inputs[index];
    if (input == NULL)
        return -1;
    *text = input->Text;
    return (LONG)input->Length;
}

static BOOLEAN MatchCriterion(const channel_criterion *criterion, const CHAR *text, ULONG length)
{
    ULONG n = criterion->length;

    switch (criterion->op) {
    case CHANNEL_OP_WILDCARD:
        return TRUE;
    case CHANNEL_OP_EQUALS:
        return length == n && SameText(text, criterion->value, n);
    case CHANNEL_OP_PREFIX:
        return length >= n && SameText(text, criterion->value, n);
    case CHANNEL_OP_CONTAINS:
        for (ULONG at = 0; at + n <= length; at++)
            if (SameText(text + at, criterion->value, n))
                return TRUE;
        return FALSE;
    default:
        return FALSE;
    }
}

/* Every criterion of the instance holds for the event; a wildcard needs no input. */
NOINLINE BOOLEAN MatchInstance(const SENSOR_EVENT_CONTEXT *ctx, const channel_instance *instance)
{
    for (ULONG i = 0; i < instance->fields; i++) {
        const channel_criterion *criterion = &instance->criteria[i];
        const CHAR *text = NULL;
        LONG length;

        if (criterion->op == CHANNEL_OP_WILDCARD)
            continue;
        length = ReadInputField(ctx, i, &text);
        KEEP_FRAME();
        if (length < 0 || length > SENSOR_INPUT_TEXT)
            return FALSE;
        if (!MatchCriterion(criterion, text, (ULONG)length))
            return FALSE;
    }
    return TRUE;
}

/* Match every loaded instance of the types this event feeds. */
NOINLINE ULONG EvaluateTemplateInstances(SENSOR_EVENT_CONTEXT *ctx, const CHAR *subject)
{
    for (ULONG c = 0; c < SENSOR_MAX_CHANNELS; c++) {
        const SENSOR_CHANNEL *channel = &Channels[c];

        for (ULONG i = 0; i < channel->Count; i++) {
            if (channel->Types[i]->event != ctx->Event)
                continue;
            ctx->Evaluated++;
            if (!MatchInstance(ctx, channel->Instances[i]))
                continue;
            KEEP_FRAME();
            ctx->Matched++;
            if (MatchesLogged++ < SENSOR_MAX_LOGGED_MATCHES)
                DbgPrint("sensor: detection: channel %u instance %u (%s, severity %u) on %s %s\n",
                         (unsigned)channel->Channel, (unsigned)channel->Instances[i]->id,
                         channel->Types[i]->name, (unsigned)channel->Instances[i]->severity,
                         sensor_event_name(ctx->Event), subject);
        }
    }
    return ctx->Matched;
}

/* ---- event integration ------------------------------------------------- */

/* A context for `event` with no inputs yet; its unused slots stay stale. */
static SENSOR_EVENT_CONTEXT *NewEventContext(ULONG event)
{
    SENSOR_EVENT_CONTEXT *ctx = SensorAllocate(sizeof(*ctx));

    if (ctx == NULL)
        return NULL;
    ctx->Event = event;
    ctx->InputCount = 0;
    ctx->Evaluated = 0;
    ctx->Matched = 0;
    return ctx;
}

/* Append the next input. */
static VOID AddInput(SENSOR_EVENT_CONTEXT *ctx, const CHAR *text)
{
    SENSOR_INPUT *input = &ctx->Storage[ctx->InputCount];
    ULONG n;

    for (n = 0; text[n] != '\0' && n + 1 < SENSOR_INPUT_TEXT; n++)
        input->Text[n] = text[n];
    input->Text[n] = '\0';
    input->Length = n;
    ctx->Inputs[ctx->InputCount++] = input;
}

static VOID AddNumber(SENSOR_EVENT_CONTEXT *ctx, ULONG64 value, BOOLEAN hex)
{
    CHAR text[24];

    if (hex)
        FormatHex(text, (ULONG)value);
    else
        FormatDecimal(text, value);
    AddInput(ctx, text);
}

static VOID AddUnicode(SENSOR_EVENT_CONTEXT *ctx, PCUNICODE_STRING s)
{
    CHAR text[SENSOR_INPUT_TEXT];

    if (s == NULL || s->Buffer == NULL)
        text[0] = '\0';
    else
        ToAscii(text, sizeof(text), s->Buffer, s->Length / sizeof(WCHAR));
    AddInput(ctx, text);
}

/* The event's file name (FILE_OBJECT.FileName), as ASCII. */
static VOID TargetName(PFLT_CALLBACK_DATA data, CHAR *out, ULONG max)
{
    PFILE_OBJECT file = data->Iopb->TargetFileObject;

    out[0] = '\0';
    if (file != NULL && file->FileName.Buffer != NULL)
        ToAscii(out, max, file->FileName.Buffer, file->FileName.Length / sizeof(WCHAR));
}

/*
 * The named-pipe integration: the 20 inputs 7.11 introduced for the IPC
 * template type.  The pipe's create parameters (type, modes, quotas) are
 * the values a default CreateNamedPipe gives, which is what nearly every
 * pipe on a machine uses.
 */
static VOID BuildPipeInputs(SENSOR_EVENT_CONTEXT *ctx, PFLT_CALLBACK_DATA data, const CHAR *name)
{
    CHAR build[40];
    ULONG n;

    AddInput(ctx, name);                                   /* 1 PipeName */
    AddInput(ctx, BaseName(name));                         /* 2 PipeBaseName */
    AddInput(ctx, "\\Device\\NamedPipe");                  /* 3 DeviceName */
    AddInput(ctx, LastProcessImage);                       /* 4 ProcessImageName */
    AddNumber(ctx, (ULONG64)(ULONG_PTR)PsGetCurrentProcessId(), FALSE); /* 5 */
    AddNumber(ctx, (ULONG64)(ULONG_PTR)PsGetCurrentThreadId(), FALSE);  /* 6 */
    AddInput(ctx, data->RequestorMode == KernelMode ? "KernelMode" : "UserMode"); /* 7 */
    AddInput(ctx, "IRP_MJ_CREATE_NAMED_PIPE");             /* 8 MajorFunction */
    AddNumber(ctx, data->Iopb->OperationFlags, TRUE);      /* 9 OperationFlags */
    AddNumber(ctx, data->Iopb->IrpFlags, TRUE);            /* 10 IrpFlags */
    AddInput(ctx, "message");                              /* 11 NamedPipeType */
    AddInput(ctx, "message");                              /* 12 ReadMode */
    AddInput(ctx, "queue");                                /* 13 CompletionMode */
    AddInput(ctx, "unlimited");                            /* 14 MaximumInstances */
    AddNumber(ctx, 4096, FALSE);                           /* 15 InboundQuota */
    AddNumber(ctx, 4096, FALSE);                           /* 16 OutboundQuota */
    AddNumber(ctx, 50, FALSE);                             /* 17 DefaultTimeout */
    AddNumber(ctx, 0, FALSE);                              /* 18 SessionId */
    AddInput(ctx, "System");                               /* 19 IntegrityLevel */
    n = FormatDecimal(build, OsVersion.dwMajorVersion);    /* 20 OsBuild */
    build[n++] = '.';
    n += FormatDecimal(build + n, OsVersion.dwMinorVersion);
    build[n++] = '.';
    FormatDecimal(build + n, OsVersion.dwBuildNumber);
    AddInput(ctx, build);
    /* Field 21 (RemoteClientName) is declared by the template type but
     * this integration has nothing to put there. */
}

NOINLINE FLT_PREOP_CALLBACK_STATUS OnPipeCreate(PFLT_CALLBACK_DATA data,
                                                PCFLT_RELATED_OBJECTS objects, PVOID *context)
{
    SENSOR_EVENT_CONTEXT *ctx;
    CHAR name[SENSOR_INPUT_TEXT];

    TargetName(data, name, sizeof(name));
    ctx = NewEventContext(SENSOR_EVENT_PIPE);
    if (ctx == NULL)
        return FLT_PREOP_SUCCESS_NO_CALLBACK;
    BuildPipeInputs(ctx, data, name);
    EvaluateTemplateInstances(ctx, name);
    KEEP_FRAME();
    SensorFree(ctx);
    return FLT_PREOP_SUCCESS_NO_CALLBACK;
}

/* Whether `path` names a channel file in the sensor's folder. */
static BOOLEAN IsChannelFilePath(const CHAR *path)
{
    static const CHAR folder[] = "\\system32\\drivers\\sensor\\";
    const CHAR *base = BaseName(path);
    ULONG n = 0, flen = sizeof(folder) - 1;

    while (base[n])
        n++;
    if (n < 6 || Lower(base[0]) != 'c' || base[1] != '-' ||
        !SameText(base + n - 4, (const UCHAR *)".sys", 4))
        return FALSE;
    for (const CHAR *p = path; p + flen <= base; p++)
        if (p + flen == base && SameText(p, (const UCHAR *)folder, flen))
            return TRUE;
    return FALSE;
}

NOINLINE FLT_PREOP_CALLBACK_STATUS OnFileWrite(PFLT_CALLBACK_DATA data,
                                               PCFLT_RELATED_OBJECTS objects, PVOID *context)
{
    SENSOR_EVENT_CONTEXT *ctx;
    CHAR path[SENSOR_INPUT_TEXT * 2];
    const CHAR *base, *dot;

    TargetName(data, path, sizeof(path));
    base = BaseName(path);
    ctx = NewEventContext(SENSOR_EVENT_FILE);
    if (ctx != NULL) {
        dot = NULL;
        for (const CHAR *p = base; *p; p++)
            if (*p == '.')
                dot = p;
        AddInput(ctx, path);                                        /* 1 FilePath */
        AddInput(ctx, base);                                        /* 2 FileName */
        AddInput(ctx, dot ? dot : "");                              /* 3 Extension */
        AddNumber(ctx, data->Iopb->Parameters.Write.Length, FALSE); /* 4 WriteLength */
        EvaluateTemplateInstances(ctx, path);
        KEEP_FRAME();
        SensorFree(ctx);
    }
    if (IsChannelFilePath(path)) {
        WCHAR wide[SENSOR_NAME_MAX];
        ULONG n;

        for (n = 0; base[n] && n + 1 < SENSOR_NAME_MAX; n++)
            wide[n] = (WCHAR)(UCHAR)base[n];
        wide[n] = 0;
        DbgPrint("sensor: new channel file %s written while running: loading it\n", base);
        LoadChannelFile(wide, n);
    }
    return FLT_PREOP_SUCCESS_NO_CALLBACK;
}

NOINLINE VOID OnProcessNotify(PEPROCESS process, HANDLE pid, PPS_CREATE_NOTIFY_INFO info)
{
    SENSOR_EVENT_CONTEXT *ctx;
    CHAR image[SENSOR_INPUT_TEXT];

    if (info == NULL)
        return;   /* exit */
    image[0] = '\0';
    if (info->ImageFileName != NULL && info->ImageFileName->Buffer != NULL)
        ToAscii(image, sizeof(image), info->ImageFileName->Buffer,
                info->ImageFileName->Length / sizeof(WCHAR));
    {
        const CHAR *base = BaseName(image);
        ULONG n;

        for (n = 0; base[n] && n + 1 < sizeof(LastProcessImage); n++)
            LastProcessImage[n] = base[n];
        LastProcessImage[n] = '\0';
    }
    ctx = NewEventContext(SENSOR_EVENT_PROCESS);
    if (ctx == NULL)
        return;
    AddInput(ctx, image);                                           /* 1 ImageFileName */
    AddInput(ctx, BaseName(image));                                 /* 2 ImageBaseName */
    AddUnicode(ctx, info->CommandLine);                             /* 3 CommandLine */
    AddNumber(ctx, (ULONG64)(ULONG_PTR)pid, FALSE);                 /* 4 ProcessId */
    AddNumber(ctx, (ULONG64)(ULONG_PTR)info->ParentProcessId, FALSE); /* 5 */
    AddNumber(ctx, (ULONG64)(ULONG_PTR)info->CreatingThreadId.UniqueThread, FALSE); /* 6 */
    EvaluateTemplateInstances(ctx, image);
    KEEP_FRAME();
    SensorFree(ctx);
}

/* ---- content loading ----------------------------------------------------- */

/*
 * Whether the sensor takes this instance, given its template type.  7.11
 * checks the instance against the type (the field counts agree: 21 and
 * 21); 7.16 also checks it against what the event integration supplies.
 */
static BOOLEAN AcceptInstance(const channel_instance *instance, const sensor_template_type *type,
                              const CHAR *name)
{
    if (instance->fields != type->fields) {
        DbgPrint("sensor: %s: instance %u refused: %u fields, template type %s declares %u\n",
                 name, (unsigned)instance->id, (unsigned)instance->fields, type->name,
                 (unsigned)type->fields);
        return FALSE;
    }
    for (ULONG i = 0; i < instance->fields; i++) {
        const channel_criterion *criterion = &instance->criteria[i];

        if (criterion->op >= CHANNEL_OP_COUNT || criterion->length > CHANNEL_VALUE_MAX ||
            (criterion->op == CHANNEL_OP_WILDCARD && criterion->length != 0)) {
            DbgPrint("sensor: %s: instance %u refused: field %u has a malformed criterion\n",
                     name, (unsigned)instance->id, (unsigned)(i + 1));
            return FALSE;
        }
#if SENSOR_CHECKS_CONTENT
        {
            unsigned supplied = sensor_event_inputs(SENSOR_VERSION_MINOR, type->event);

            if (criterion->op != CHANNEL_OP_WILDCARD && i >= supplied) {
                DbgPrint("sensor: %s: instance %u refused: field %u (%s) has a criterion but "
                         "the %s event supplies %u inputs\n",
                         name, (unsigned)instance->id, (unsigned)(i + 1), type->field_names[i],
                         sensor_event_name(type->event), supplied);
                return FALSE;
            }
        }
#endif
    }
    return TRUE;
}

/* The slot for `channel`: the loaded one, else a free one, else NULL. */
static SENSOR_CHANNEL *ChannelSlot(ULONG channel)
{
    SENSOR_CHANNEL *free = NULL;

    for (ULONG i = 0; i < SENSOR_MAX_CHANNELS; i++) {
        if (Channels[i].Data != NULL && Channels[i].Channel == channel)
            return &Channels[i];
        if (Channels[i].Data == NULL && free == NULL)
            free = &Channels[i];
    }
    return free;
}

/*
 * Parse a channel file (`data` is the sensor's own pool copy: on success
 * the loaded channel keeps it, on failure the caller frees it).  The file's
 * structure is checked whole; instances the sensor cannot use are left out
 * one by one, with a line in the log saying why.
 */
NOINLINE NTSTATUS ProcessChannelFile(PUCHAR data, ULONG size, const CHAR *name)
{
    const channel_header *header = (const channel_header *)data;
    SENSOR_CHANNEL *slot;
    ULONG offset, i, ignored = 0, refused = 0, firstIgnored = 0, ignoredType = 0;

    if (size < CHANNEL_HEADER_SIZE || header->magic != CHANNEL_MAGIC ||
        header->format != CHANNEL_FORMAT || header->header_size != CHANNEL_HEADER_SIZE) {
        DbgPrint("sensor: %s: not a channel file, ignored\n", name);
        return STATUS_INVALID_IMAGE_FORMAT;
    }
    if (header->size != size || header->count > CHANNEL_MAX_INSTANCES ||
        header->checksum != channel_checksum(data + CHANNEL_HEADER_SIZE,
                                             size - CHANNEL_HEADER_SIZE)) {
        DbgPrint("sensor: %s: size, count or checksum wrong, ignored\n", name);
        return STATUS_DATA_ERROR;
    }
    slot = ChannelSlot(header->channel);
    if (slot == NULL) {
        DbgPrint("sensor: %s: too many channels, ignored\n", name);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    if (slot->Data != NULL && header->version <= slot->Version) {
        DbgPrint("sensor: %s: version %u is not newer than the loaded %u, ignored\n", name,
                 (unsigned)header->version, (unsigned)slot->Version);
        return STATUS_OBJECT_NAME_EXISTS;
    }

    Incoming.Channel = header->channel;
    Incoming.Version = header->version;
    Incoming.Data = data;
    Incoming.Count = 0;
    offset = CHANNEL_HEADER_SIZE;
    for (i = 0; i < header->count; i++) {
        const channel_instance *instance = (const channel_instance *)(data + offset);
        const sensor_template_type *type;

        if (size - offset < CHANNEL_INSTANCE_HEADER || instance->fields > CHANNEL_MAX_FIELDS ||
            instance->size != channel_instance_size(instance->fields) ||
            size - offset < instance->size) {
            DbgPrint("sensor: %s: instance %u malformed, file ignored\n", name, (unsigned)i);
            return STATUS_DATA_ERROR;
        }
        offset += instance->size;
        type = sensor_template_find(SENSOR_VERSION_MINOR, instance->template_type);
        if (type == NULL) {
            if (ignored++ == 0) {
                firstIgnored = instance->id;
                ignoredType = instance->template_type;
            }
            continue;
        }
        if (!AcceptInstance(instance, type, name)) {
            refused++;
            continue;
        }
        Incoming.Instances[Incoming.Count] = instance;
        Incoming.Types[Incoming.Count] = type;
        Incoming.Count++;
    }
    if (offset != size) {
        DbgPrint("sensor: %s: %u bytes after the last instance, file ignored\n", name,
                 (unsigned)(size - offset));
        return STATUS_DATA_ERROR;
    }
    if (ignored != 0) {
        const sensor_template_type *known = sensor_template_any(ignoredType);

        DbgPrint("sensor: %s: %u instances of template types sensor 7.%u lacks ignored "
                 "(first: id %u, type %u %s)\n",
                 name, (unsigned)ignored, (unsigned)SENSOR_VERSION_MINOR, (unsigned)firstIgnored,
                 (unsigned)ignoredType, known ? known->name : "unknown");
    }

    /* Commit: the new version replaces the channel's old one. */
    for (i = 0; name[i] && i + 1 < SENSOR_NAME_MAX; i++)
        Incoming.FileName[i] = name[i];
    Incoming.FileName[i] = '\0';
    if (slot->Data != NULL) {
        DbgPrint("sensor: channel %u: version %u replaces %u\n", (unsigned)header->channel,
                 (unsigned)header->version, (unsigned)slot->Version);
        SensorFree(slot->Data);
    }
    *slot = Incoming;
    DbgPrint("sensor: loaded %s: channel %u version %u, %u instances active, %u refused, "
             "%u ignored\n", name, (unsigned)slot->Channel, (unsigned)slot->Version,
             (unsigned)slot->Count, (unsigned)refused, (unsigned)ignored);
    return STATUS_SUCCESS;
}

static NTSTATUS OpenInFolder(PHANDLE handle, const WCHAR *name, ULONG chars, BOOLEAN directory)
{
    WCHAR path[128];
    static const WCHAR folder[] = SENSOR_FOLDER;
    UNICODE_STRING ustr;
    OBJECT_ATTRIBUTES attributes;
    IO_STATUS_BLOCK io;
    ULONG n = 0;

    for (ULONG i = 0; folder[i]; i++)
        path[n++] = folder[i];
    if (name != NULL) {
        if (n + 1 + chars >= sizeof(path) / sizeof(path[0]))
            return STATUS_OBJECT_NAME_INVALID;
        path[n++] = L'\\';
        for (ULONG i = 0; i < chars; i++)
            path[n++] = name[i];
    }
    path[n] = 0;
    ustr.Buffer = path;
    ustr.Length = (USHORT)(n * sizeof(WCHAR));
    ustr.MaximumLength = (USHORT)((n + 1) * sizeof(WCHAR));
    InitializeObjectAttributes(&attributes, &ustr, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE,
                               NULL, NULL);
    return ZwCreateFile(handle, (directory ? FILE_LIST_DIRECTORY : GENERIC_READ) | SYNCHRONIZE,
                        &attributes, &io, NULL, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ,
                        FILE_OPEN,
                        FILE_SYNCHRONOUS_IO_NONALERT |
                            (directory ? FILE_DIRECTORY_FILE : FILE_NON_DIRECTORY_FILE),
                        NULL, 0);
}

/* Read channel file `name` of the sensor's folder and load it. */
NOINLINE NTSTATUS LoadChannelFile(const WCHAR *name, ULONG nameChars)
{
    FILE_STANDARD_INFORMATION standard;
    IO_STATUS_BLOCK io;
    LARGE_INTEGER offset;
    CHAR ascii[SENSOR_NAME_MAX];
    HANDLE file;
    PUCHAR data;
    ULONG size;
    NTSTATUS status;

    ToAscii(ascii, sizeof(ascii), name, nameChars);
    status = OpenInFolder(&file, name, nameChars, FALSE);
    if (!NT_SUCCESS(status)) {
        DbgPrint("sensor: %s: cannot open (%08x)\n", ascii, (unsigned)status);
        return status;
    }
    status = ZwQueryInformationFile(file, &io, &standard, sizeof(standard),
                                    FileStandardInformation);
    if (NT_SUCCESS(status) && (standard.EndOfFile.QuadPart > CHANNEL_MAX_SIZE ||
                               standard.EndOfFile.QuadPart < 1))
        status = STATUS_FILE_TOO_LARGE;
    if (!NT_SUCCESS(status)) {
        DbgPrint("sensor: %s: unusable size (%08x)\n", ascii, (unsigned)status);
        ZwClose(file);
        return status;
    }
    size = (ULONG)standard.EndOfFile.QuadPart;
    data = SensorAllocate(size);
    if (data == NULL) {
        ZwClose(file);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    offset.QuadPart = 0;
    status = ZwReadFile(file, NULL, NULL, NULL, &io, data, size, &offset, NULL);
    ZwClose(file);
    if (NT_SUCCESS(status) && io.Information != size)
        status = STATUS_END_OF_FILE;
    if (NT_SUCCESS(status))
        status = ProcessChannelFile(data, size, ascii);
    KEEP_FRAME();
    if (!NT_SUCCESS(status))
        SensorFree(data);
    return status;
}

/* Every C-*.sys in the folder, in name order (so versions ascend). */
NOINLINE ULONG LoadChannelFiles(void)
{
    static WCHAR names[SENSOR_MAX_FILES][SENSOR_NAME_MAX];
    ULONG lengths[SENSOR_MAX_FILES];
    UNICODE_STRING pattern = RTL_CONSTANT_STRING(L"C-*.sys");
    union {
        FILE_DIRECTORY_INFORMATION info;
        UCHAR bytes[sizeof(FILE_DIRECTORY_INFORMATION) + SENSOR_NAME_MAX * sizeof(WCHAR)];
    } entry;
    IO_STATUS_BLOCK io;
    HANDLE folder;
    ULONG count = 0, loaded = 0;
    NTSTATUS status;

    status = OpenInFolder(&folder, NULL, 0, TRUE);
    if (!NT_SUCCESS(status)) {
        DbgPrint("sensor: no channel files (folder: %08x)\n", (unsigned)status);
        return 0;
    }
    for (BOOLEAN first = TRUE;; first = FALSE) {
        ULONG chars;

        status = ZwQueryDirectoryFile(folder, NULL, NULL, NULL, &io, &entry, sizeof(entry),
                                      FileDirectoryInformation, TRUE, first ? &pattern : NULL,
                                      first);
        if (status == STATUS_NO_MORE_FILES || status == STATUS_NO_SUCH_FILE)
            break;
        if (!NT_SUCCESS(status)) {
            DbgPrint("sensor: listing channel files failed (%08x)\n", (unsigned)status);
            break;
        }
        if (entry.info.FileAttributes & FILE_ATTRIBUTE_DIRECTORY)
            continue;
        chars = entry.info.FileNameLength / sizeof(WCHAR);
        if (chars >= SENSOR_NAME_MAX) {
            DbgPrint("sensor: a channel file name is too long, skipped\n");
            continue;
        }
        if (count == SENSOR_MAX_FILES) {
            DbgPrint("sensor: more than %u channel files, the rest skipped\n",
                     (unsigned)SENSOR_MAX_FILES);
            break;
        }
        for (ULONG i = 0; i < chars; i++)
            names[count][i] = entry.info.FileName[i];
        names[count][chars] = 0;
        lengths[count++] = chars;
    }
    ZwClose(folder);
    for (ULONG i = 0; i < count; i++)
        if (NT_SUCCESS(LoadChannelFile(names[i], lengths[i])))
            loaded++;
    KEEP_FRAME();
    return loaded;
}

/* ---- loading and unloading ----------------------------------------------- */

static const FLT_OPERATION_REGISTRATION Operations[] = {
#if SENSOR_VERSION_MINOR >= 11
    { IRP_MJ_CREATE_NAMED_PIPE, 0, OnPipeCreate, NULL, NULL },
#endif
    { IRP_MJ_WRITE, 0, OnFileWrite, NULL, NULL },
    { IRP_MJ_OPERATION_END, 0, NULL, NULL, NULL },
};

static NTSTATUS SensorFilterUnload(ULONG flags)
{
    if (ProcessNotifyRegistered)
        PsSetCreateProcessNotifyRoutineEx(OnProcessNotify, TRUE);
    ProcessNotifyRegistered = FALSE;
    if (Filter != NULL)
        FltUnregisterFilter(Filter);
    Filter = NULL;
    for (ULONG i = 0; i < SENSOR_MAX_CHANNELS; i++) {
        SensorFree(Channels[i].Data);
        Channels[i].Data = NULL;
        Channels[i].Count = 0;
    }
    DbgPrint("sensor: unloaded\n");
    return STATUS_SUCCESS;
}

static const FLT_REGISTRATION FilterRegistration = {
    sizeof(FLT_REGISTRATION), FLT_REGISTRATION_VERSION, 0, NULL, Operations,
    SensorFilterUnload, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry)
{
    UNICODE_STRING pool2 = RTL_CONSTANT_STRING(L"ExAllocatePool2");
    ULONG loaded, active = 0;
    NTSTATUS status;

    OsVersion.dwOSVersionInfoSize = sizeof(OsVersion);
    RtlGetVersion(&OsVersion);
    DbgPrint("sensor 7.%u starting on Windows %u.%u.%u\n", (unsigned)SENSOR_VERSION_MINOR,
             (unsigned)OsVersion.dwMajorVersion, (unsigned)OsVersion.dwMinorVersion,
             (unsigned)OsVersion.dwBuildNumber);
    AllocatePool2 = (EX_ALLOCATE_POOL2)MmGetSystemRoutineAddress(&pool2);
    DbgPrint("sensor: pool allocator %s\n",
             AllocatePool2 ? "ExAllocatePool2" : "ExAllocatePoolWithTag");

    loaded = LoadChannelFiles();
    for (ULONG i = 0; i < SENSOR_MAX_CHANNELS; i++)
        active += Channels[i].Count;

    status = PsSetCreateProcessNotifyRoutineEx(OnProcessNotify, FALSE);
    if (NT_SUCCESS(status))
        ProcessNotifyRegistered = TRUE;
    else
        DbgPrint("sensor: process notifications unavailable (%08x)\n", (unsigned)status);

    status = FltRegisterFilter(driver, &FilterRegistration, &Filter);
    if (NT_SUCCESS(status)) {
        status = FltStartFiltering(Filter);
        if (!NT_SUCCESS(status)) {
            FltUnregisterFilter(Filter);
            Filter = NULL;
        }
    }
    if (!NT_SUCCESS(status))
        DbgPrint("sensor: minifilter unavailable (%08x)\n", (unsigned)status);

    DbgPrint("sensor: ready: %u channel files, %u instances active\n", (unsigned)loaded,
             (unsigned)active);
    return STATUS_SUCCESS;
}
