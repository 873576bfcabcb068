/*
 * overflow.c — a bug class: a length that overflows its field, a pool
 * overrun that nothing notices, and a crash later, in another function.
 *
 * At DriverEntry the driver reads its rule file
 * \SystemRoot\System32\drivers\overflow\record.bin, parses it into a rule
 * set (ParseRules), copies what it needs into its active table
 * (ActivateRules) and frees the parsed set (FreeRuleSet).
 *
 * Record format (little-endian, no padding):
 *
 *   offset size  header (8 bytes)
 *   0      4     magic "OVR2"
 *   4      2     version: 1 or 2
 *   6      1     count: rules that follow (v1: at most 15; v2: at most 64)
 *   7      1     flags (unused)
 *
 *   offset size  rule (16 bytes)
 *   0      4     id
 *   4      2     kind
 *   6      1     severity
 *   7      1     length: bytes of pattern that matter (<= 8)
 *   8      8     pattern, zero-padded
 *
 * The bug: format v1 allowed at most 15 rules, so the rule table's size in
 * bytes (at most 15 * 16 = 240) was kept in a UCHAR of RULE_SET.  Format v2
 * raised the limit to 64 rules and nobody widened the field.  ParseRules
 * checks the file correctly (the rules are all there), but with 16 rules or
 * more `Bytes` wraps — 17 rules are 272 bytes, stored as 16 — the table is
 * allocated with the wrapped size and the copy writes the full 272 bytes:
 * past the 16-byte block, over the pool header of the block allocated right
 * after it (the rule index) and into the index.  Nothing faults: the bytes
 * past the block are mapped pool.  ParseRules then rebuilds the index over
 * the overrun data and returns success.
 *
 * The crash comes later, when FreeRuleSet frees the rule table: the pool
 * checks the block's neighbour, finds its header overwritten, and raises
 * BAD_POOL_HEADER (0x19) on a legacy-pool build or
 * KERNEL_MODE_HEAP_CORRUPTION (0x13A) on a segment-heap build — in
 * FreeRuleSet, called from DriverEntry, with ParseRules long gone from the
 * stack.  That is what makes this class hard to triage from a dump alone.
 *
 * The committed inputs (images/bugs/overflow-good.bin: 3 rules;
 * overflow-bad.bin: 17 rules) were written with this shell snippet:
 *
 *   rule() {   # id kind severity pattern (at most 8 characters)
 *     printf "$(printf '\\%03o\\%03o\\000\\000\\%03o\\000\\%03o\\%03o' \
 *               $(($1 & 255)) $(($1 >> 8)) "$2" "$3" "${#4}")"
 *     printf '%s' "$4"; head -c $((8 - ${#4})) /dev/zero
 *   }
 *   { printf 'OVR2\002\000\003\000'
 *     rule 101 1 3 cmd.exe; rule 102 1 4 mshta; rule 103 1 4 certutil
 *   } > images/bugs/overflow-good.bin
 *   { printf 'OVR2\002\000\021\000'
 *     n=101
 *     for p in cmd.exe mshta certutil regsvr32 rundll32 wmic cscript wscript \
 *              msbuild pwsh at.exe schtasks sc.exe net.exe reg.exe vssadmin psexec
 *     do rule $n 1 4 $p; n=$((n + 1)); done
 *   } > images/bugs/overflow-bad.bin
 */
#include <ntddk.h>

#define NOINLINE __attribute__((noinline, noclone))
#define KEEP_FRAME() __asm__ __volatile__("" ::: "memory")

#define RULE_TAG 0x6c75524fu        /* "ORul" in memory */
#define RECORD_MAGIC 0x3252564fu    /* "OVR2" read as a little-endian ULONG */
#define RECORD_MAX 4096u            /* bytes the driver reads at most */
#define MAX_RULES_V1 15u
#define MAX_RULES 64u
#define INDEX_SLOTS 256u            /* one per low byte of a rule id */
#define PATTERN_MAX 8u

#pragma pack(push, 1)
typedef struct RECORD_HEADER {
    ULONG Magic;
    USHORT Version;
    UCHAR Count;
    UCHAR Flags;
} RECORD_HEADER;

typedef struct RULE {
    ULONG Id;
    USHORT Kind;
    UCHAR Severity;
    UCHAR Length;
    CHAR Pattern[PATTERN_MAX];
} RULE;
#pragma pack(pop)

_Static_assert(sizeof(RECORD_HEADER) == 8, "RECORD_HEADER is 8 bytes");
_Static_assert(sizeof(RULE) == 16, "RULE is 16 bytes");

/* A parsed rule file: two pool blocks, allocated one after the other. */
typedef struct RULE_SET {
    UCHAR Count;
    UCHAR Bytes;      /* Count * sizeof(RULE): fit a UCHAR in format v1 */
    RULE *Rules;      /* Bytes bytes */
    UCHAR *Index;     /* INDEX_SLOTS: low byte of an id -> rule number + 1 */
} RULE_SET;

/* What the driver keeps after the parsed set is gone. */
static ULONG ActiveIds[MAX_RULES];
static ULONG ActiveCount;

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry);
NOINLINE NTSTATUS ReadRecord(PUCHAR buffer, ULONG capacity, PULONG size);
NOINLINE NTSTATUS ParseRules(const UCHAR *data, ULONG size, RULE_SET *set);
NOINLINE ULONG ActivateRules(const RULE_SET *set, ULONG count);
NOINLINE void FreeRuleSet(RULE_SET *set);

NOINLINE NTSTATUS ReadRecord(PUCHAR buffer, ULONG capacity, PULONG size)
{
    UNICODE_STRING path = RTL_CONSTANT_STRING(
        L"\\SystemRoot\\System32\\drivers\\overflow\\record.bin");
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

NOINLINE NTSTATUS ParseRules(const UCHAR *data, ULONG size, RULE_SET *set)
{
    const RECORD_HEADER *header = (const RECORD_HEADER *)data;
    const RULE *rules = (const RULE *)(data + sizeof(*header));
    ULONG limit, i;

    RtlZeroMemory(set, sizeof(*set));
    if (size < sizeof(*header) || header->Magic != RECORD_MAGIC ||
        header->Version < 1 || header->Version > 2)
        return STATUS_INVALID_PARAMETER;
    limit = header->Version == 1 ? MAX_RULES_V1 : MAX_RULES;
    /* The file side is checked right: every rule it claims is there. */
    if (header->Count == 0 || header->Count > limit ||
        size - sizeof(*header) < (ULONG)header->Count * sizeof(RULE))
        return STATUS_INVALID_PARAMETER;

    set->Count = header->Count;
    set->Bytes = header->Count * sizeof(RULE);   /* the bug: wraps at 16 rules */
    set->Rules = ExAllocatePoolWithTag(NonPagedPool, set->Bytes, RULE_TAG);
    set->Index = ExAllocatePoolWithTag(NonPagedPool, INDEX_SLOTS, RULE_TAG);
    if (set->Rules == NULL || set->Index == NULL)
        return STATUS_INSUFFICIENT_RESOURCES;

    /* All Count rules, whatever Bytes says: past the block when it wrapped. */
    RtlCopyMemory(set->Rules, rules, (SIZE_T)set->Count * sizeof(RULE));
    RtlZeroMemory(set->Index, INDEX_SLOTS);
    for (i = 0; i < set->Count; i++)
        set->Index[rules[i].Id & 0xFF] = (UCHAR)(i + 1);
    return STATUS_SUCCESS;
}

NOINLINE ULONG ActivateRules(const RULE_SET *set, ULONG count)
{
    ULONG i, n = 0;

    for (i = 0; i < count && i < MAX_RULES; i++) {
        const RULE *rule = &set->Rules[i];

        if (rule->Length == 0 || rule->Length > PATTERN_MAX)
            continue;
        ActiveIds[n++] = rule->Id;
    }
    ActiveCount = n;
    return n;
}

NOINLINE void FreeRuleSet(RULE_SET *set)
{
    if (set->Rules != NULL)
        ExFreePoolWithTag(set->Rules, RULE_TAG);   /* 0x19 / 0x13A here */
    KEEP_FRAME();
    if (set->Index != NULL)
        ExFreePoolWithTag(set->Index, RULE_TAG);
    KEEP_FRAME();
    set->Rules = NULL;
    set->Index = NULL;
}

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry)
{
    RULE_SET set;
    PUCHAR record;
    ULONG size;
    NTSTATUS status;

    DbgPrint("overflow: starting\n");
    record = ExAllocatePoolWithTag(NonPagedPool, RECORD_MAX, RULE_TAG);
    if (record == NULL)
        return STATUS_INSUFFICIENT_RESOURCES;
    status = ReadRecord(record, RECORD_MAX, &size);
    if (!NT_SUCCESS(status)) {
        DbgPrint("overflow: no record.bin (%08lx)\n", status);
        ExFreePoolWithTag(record, RULE_TAG);
        return STATUS_SUCCESS;
    }
    DbgPrint("overflow: record.bin, %lu bytes\n", size);

    status = ParseRules(record, size, &set);
    if (NT_SUCCESS(status)) {
        DbgPrint("overflow: parsed %u rules (%u bytes)\n", (unsigned)set.Count,
                 (unsigned)set.Bytes);
        DbgPrint("overflow: %lu rules active\n", ActivateRules(&set, set.Count));
    } else {
        DbgPrint("overflow: record rejected (%08lx)\n", status);
    }
    FreeRuleSet(&set);
    KEEP_FRAME();
    ExFreePoolWithTag(record, RULE_TAG);
    DbgPrint("overflow: done\n");
    return STATUS_SUCCESS;
}
