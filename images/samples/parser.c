/*
 * parser.c — the Quick start's sample: a small content-driven sensor whose
 * content interpreter has the bug DESIGN.md describes.
 *
 * At DriverEntry the driver reads its content file
 * \SystemRoot\System32\drivers\parser\content.bin (format in
 * parser_format.h; a built-in default when the file is absent), fills an
 * input array with pointers to the 20 inputs of a process event, and
 * matches every template entry of the content against the input it names.
 * The input array has room for 32 pointers but only 20 are filled, and the
 * interpreter bounds-checks a template's field index against the room, not
 * against the count.  Content that names field 20 (the 21st input) makes
 * MatchTemplate read the slot past the last input: on a machine whose pool
 * hands out non-zeroed memory that slot holds a stale pointer-like value,
 * which passes the NULL check and is dereferenced (a 32-bit load through
 * it) → bugcheck 0x50 in parser!MatchTemplate.  Where the pool comes back
 * zeroed, the slot is NULL and the content is harmless.
 *
 *   fleetsim emulate build/images/parser.sys \
 *       --content images/samples/parser-bad.bin
 *
 * The two committed content files were written with this shell snippet
 * (entry: field op severity value; every value shorter than 24 bytes):
 *
 *   entry() {
 *     printf "$(printf '\\%03o\\000\\%03o\\%03o\\%03o\\000\\000\\000' \
 *               "$1" "$2" "$3" "${#4}")"
 *     printf '%s' "$4"; head -c $((24 - ${#4})) /dev/zero
 *   }
 *   { printf 'PCF1\001\000\003\000'
 *     entry 0 0 3 cmd.exe; entry 4 1 2 srv; entry 19 0 5 rundll32.exe
 *   } > images/samples/parser-good.bin
 *   { printf 'PCF1\001\000\004\000'
 *     entry 0 0 3 cmd.exe; entry 4 1 2 srv; entry 19 0 5 rundll32.exe
 *     entry 20 0 5 evil
 *   } > images/samples/parser-bad.bin
 */
#include <ntddk.h>

#include "parser_format.h"

#define NOINLINE __attribute__((noinline, noclone))
#define PARSER_TAG 0x73726150u   /* "Pars" in memory */

/* One input of the event: a counted string. */
typedef struct PARSER_INPUT {
    ULONG Length;
    CHAR Text[28];
} PARSER_INPUT;

/*
 * The interpreter's state, one pool block.  Inputs has room for
 * PARSER_INPUT_SLOTS pointers; BuildInputs fills the first
 * PARSER_INPUT_COUNT and leaves the rest as the pool handed them out.
 */
typedef struct PARSER_CONTEXT {
    ULONG InputCount;
    ULONG Matched;
    ULONG Severity;
    ULONG Evaluated;
    PARSER_INPUT *Inputs[PARSER_INPUT_SLOTS];
} PARSER_CONTEXT;

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry);
NTSTATUS LoadContent(PUCHAR buffer, ULONG capacity, PULONG size);
PARSER_CONTEXT *BuildInputs(PARSER_INPUT *storage);
BOOLEAN MatchTemplate(const PARSER_CONTEXT *ctx, const parser_entry *entry);
NTSTATUS ProcessContent(PARSER_CONTEXT *ctx, const UCHAR *content, ULONG size);

/* The process event the templates inspect, one string per input. */
static const char *const InputText[PARSER_INPUT_COUNT] = {
    "cmd.exe", "cmd.exe /c whoami", "explorer.exe", "CORP\\alice",
    "srvsvc", "C:\\Windows\\System32", "4242", "1337",
    "High", "Medium", "0x1f0fff", "ntdll.dll",
    "kernel32.dll", "10.0.19045", "x64", "WORKSTATION-7",
    "3", "2024-07-19", "sensor-7.11", "rundll32.exe",
};

/* Content used when the file is absent: three templates, all in range. */
static const struct {
    parser_header header;
    parser_entry entries[3];
} DefaultContent = {
    { PARSER_MAGIC, PARSER_VERSION, 3 },
    {
        { 0, PARSER_OP_EQUALS, 3, 7, "cmd.exe" },
        { 4, PARSER_OP_PREFIX, 2, 3, "srv" },
        { 19, PARSER_OP_EQUALS, 5, 12, "rundll32.exe" },
    },
};

NOINLINE NTSTATUS LoadContent(PUCHAR buffer, ULONG capacity, PULONG size)
{
    UNICODE_STRING path = RTL_CONSTANT_STRING(
        L"\\SystemRoot\\System32\\drivers\\parser\\content.bin");
    OBJECT_ATTRIBUTES attributes;
    IO_STATUS_BLOCK io;
    LARGE_INTEGER offset;
    HANDLE file;
    NTSTATUS status;

    *size = 0;
    InitializeObjectAttributes(&attributes, &path,
                               OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL, NULL);
    status = ZwCreateFile(&file, GENERIC_READ | SYNCHRONIZE, &attributes, &io,
                          NULL, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ, FILE_OPEN,
                          FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE,
                          NULL, 0);
    if (!NT_SUCCESS(status))
        return status;
    offset.QuadPart = 0;
    status = ZwReadFile(file, NULL, NULL, NULL, &io, buffer, capacity, &offset, NULL);
    if (NT_SUCCESS(status))
        *size = (ULONG)io.Information;
    ZwClose(file);
    return status;
}

NOINLINE PARSER_CONTEXT *BuildInputs(PARSER_INPUT *storage)
{
    PARSER_CONTEXT *ctx;
    ULONG i, n;

    /* Not zeroed: slots past the inputs keep whatever the pool had there. */
    ctx = ExAllocatePoolWithTag(NonPagedPool, sizeof(*ctx), PARSER_TAG);
    if (ctx == NULL)
        return NULL;
    ctx->InputCount = PARSER_INPUT_COUNT;
    ctx->Matched = 0;
    ctx->Severity = 0;
    ctx->Evaluated = 0;
    for (i = 0; i < PARSER_INPUT_COUNT; i++) {
        const char *text = InputText[i];

        for (n = 0; text[n] != '\0' && n < sizeof(storage[i].Text); n++)
            storage[i].Text[n] = text[n];
        storage[i].Length = n;
        ctx->Inputs[i] = &storage[i];
    }
    return ctx;
}

NOINLINE BOOLEAN MatchTemplate(const PARSER_CONTEXT *ctx, const parser_entry *entry)
{
    const PARSER_INPUT *input;
    ULONG length, i;

    /* The bug: the room in the array, not ctx->InputCount. */
    if (entry->field >= PARSER_INPUT_SLOTS)
        return FALSE;
    input = ctx->Inputs[entry->field];
    if (input == NULL)
        return FALSE;
    length = input->Length;
    if (entry->length > PARSER_VALUE_MAX || entry->length > length)
        return FALSE;
    if (entry->op == PARSER_OP_EQUALS && entry->length != length)
        return FALSE;
    for (i = 0; i < entry->length; i++) {
        if (input->Text[i] != entry->value[i])
            return FALSE;
    }
    return TRUE;
}

NOINLINE NTSTATUS ProcessContent(PARSER_CONTEXT *ctx, const UCHAR *content, ULONG size)
{
    const parser_header *header = (const parser_header *)content;
    const parser_entry *entries = (const parser_entry *)(content + sizeof(*header));
    ULONG i;

    if (size < sizeof(*header) || header->magic != PARSER_MAGIC ||
        header->version != PARSER_VERSION)
        return STATUS_INVALID_PARAMETER;
    if (header->count > PARSER_MAX_ENTRIES ||
        size - sizeof(*header) < (ULONG)header->count * sizeof(parser_entry))
        return STATUS_INVALID_PARAMETER;
    for (i = 0; i < header->count; i++) {
        ctx->Evaluated++;
        if (MatchTemplate(ctx, &entries[i])) {
            ctx->Matched++;
            if (entries[i].severity > ctx->Severity)
                ctx->Severity = entries[i].severity;
            DbgPrint("parser: template %u matched input %u\n", (unsigned)i,
                     (unsigned)entries[i].field);
        }
    }
    return STATUS_SUCCESS;
}

static VOID ParserUnload(PDRIVER_OBJECT driver)
{
    DbgPrint("parser: unloaded\n");
}

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry)
{
    PARSER_INPUT *storage;
    PARSER_CONTEXT *ctx;
    PUCHAR content;
    const UCHAR *source;
    ULONG size;
    NTSTATUS status;

    DbgPrint("parser: starting\n");
    if (driver != NULL)
        driver->DriverUnload = ParserUnload;

    content = ExAllocatePoolWithTag(NonPagedPool, PARSER_MAX_CONTENT, PARSER_TAG);
    storage = ExAllocatePoolWithTag(NonPagedPool,
                                    PARSER_INPUT_COUNT * sizeof(PARSER_INPUT), PARSER_TAG);
    if (content == NULL || storage == NULL)
        return STATUS_INSUFFICIENT_RESOURCES;

    status = LoadContent(content, PARSER_MAX_CONTENT, &size);
    if (NT_SUCCESS(status)) {
        DbgPrint("parser: content.bin, %u bytes\n", (unsigned)size);
        source = content;
    } else {
        DbgPrint("parser: no content.bin (%08x), using the built-in templates\n",
                 (unsigned)status);
        source = (const UCHAR *)&DefaultContent;
        size = sizeof(DefaultContent);
    }

    ctx = BuildInputs(storage);
    if (ctx == NULL)
        return STATUS_INSUFFICIENT_RESOURCES;
    status = ProcessContent(ctx, source, size);
    if (NT_SUCCESS(status))
        DbgPrint("parser: %u templates, %u matched, severity %u\n",
                 (unsigned)ctx->Evaluated, (unsigned)ctx->Matched,
                 (unsigned)ctx->Severity);
    else
        DbgPrint("parser: content rejected (%08x)\n", (unsigned)status);

    ExFreePoolWithTag(ctx, PARSER_TAG);
    ExFreePoolWithTag(storage, PARSER_TAG);
    ExFreePoolWithTag(content, PARSER_TAG);
    return STATUS_SUCCESS;
}
