/*
 * offsets.c — a bug class: reading an undocumented kernel structure at
 * per-build offsets, with a wrong fallback for a build the table lacks.
 *
 * Security drivers read EPROCESS fields that no API returns.  The layout
 * changes between builds, so they carry a table of offsets by build number
 * (taken from the symbols of each build they support) and pick the row for
 * the build RtlGetVersion reports.  This one wants the full image path of
 * every new process, which Windows keeps behind
 * EPROCESS.SeAuditProcessCreationInfo: a pointer to an
 * OBJECT_NAME_INFORMATION, i.e. a UNICODE_STRING with the path.
 *
 * The table below was written before Windows 11 24H2 (build 26100).  For a
 * build it does not know, the driver assumes the newest layout it knows
 * (22631) — "the layout rarely changes" — and carries on.  24H2 moved
 * almost every EPROCESS field (UniqueProcessId 0x440 → 0x1d0,
 * SeAuditProcessCreationInfo 0x5c0 → 0x350), so on 26100 the driver reads
 * an unrelated field at 0x5c0 (on a real 24H2 machine, ExitTime: zero for a
 * live process) and uses it as the pointer.  It does not check it for NULL:
 * on process creation the audit name is always there, so the check looked
 * redundant.  The first read through it (the string's Length) faults in
 * offsets!CopyImageBaseName:
 *
 *   - a NULL or small value (a real 24H2's zero ExitTime, or the small
 *     integers fleetsim fills an EPROCESS's other bytes with) → a NULL or
 *     user-mode address at PASSIVE_LEVEL → 0x7E with 0xC0000005;
 *   - a non-canonical or unmapped kernel value would give 0x50.
 *
 * Every build in the table reads the right field and prints the path; only
 * the cohort on the build the table lacks crashes, at its first process
 * creation after boot.
 */
#include <ntddk.h>

#define NOINLINE __attribute__((noinline, noclone))
/* An empty asm after a call: the call is no longer in tail position, so
 * the caller's frame stays on the stack a crash record shows. */
#define KEEP_FRAME() __asm__ __volatile__("" ::: "memory")

/* One row per build: where SeAuditProcessCreationInfo lies in EPROCESS. */
typedef struct EPROCESS_LAYOUT {
    ULONG Build;
    ULONG SeAuditProcessCreationInfo;
} EPROCESS_LAYOUT;

/*
 * The builds the product supports, oldest first, as their symbols give the
 * offset.  Windows 8 (9200) is not in the support matrix; 11 24H2 (26100)
 * shipped after the table was written.
 */
static const EPROCESS_LAYOUT Layouts[] = {
    { 7600, 0x390 },  /* 7 RTM */
    { 7601, 0x390 },  /* 7 SP1, Server 2008 R2 */
    { 9600, 0x450 },  /* 8.1, Server 2012 R2 */
    { 10240, 0x460 }, /* 10 1507 */
    { 10586, 0x468 }, /* 10 1511 */
    { 14393, 0x468 }, /* 10 1607, Server 2016 */
    { 15063, 0x468 }, /* 10 1703 */
    { 16299, 0x468 }, /* 10 1709 */
    { 17134, 0x468 }, /* 10 1803 */
    { 17763, 0x468 }, /* 10 1809, Server 2019 */
    { 18362, 0x468 }, /* 10 1903 */
    { 18363, 0x468 }, /* 10 1909 */
    { 19041, 0x5c0 }, /* 10 2004 */
    { 19042, 0x5c0 }, /* 10 20H2 */
    { 19043, 0x5c0 }, /* 10 21H1 */
    { 19044, 0x5c0 }, /* 10 21H2 */
    { 19045, 0x5c0 }, /* 10 22H2 */
    { 20348, 0x5c0 }, /* Server 2022 */
    { 22000, 0x5c0 }, /* 11 21H2 */
    { 22621, 0x5c0 }, /* 11 22H2 */
    { 22631, 0x5c0 }, /* 11 23H2 */
};

#define LAYOUT_COUNT (sizeof(Layouts) / sizeof(Layouts[0]))
#define NAME_CHARS 64

/* Chosen once at DriverEntry, used by every callback. */
static ULONG AuditOffset;

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry);
NOINLINE ULONG LookupAuditOffset(ULONG build);
NOINLINE ULONG CopyImageBaseName(const UNICODE_STRING *path, CHAR *out, ULONG room);
NOINLINE void ReportProcess(PEPROCESS process, HANDLE pid);

NOINLINE ULONG LookupAuditOffset(ULONG build)
{
    ULONG i;

    for (i = 0; i < LAYOUT_COUNT; i++) {
        if (Layouts[i].Build == build) {
            DbgPrint("offsets: build %lu, SeAuditProcessCreationInfo at 0x%lx\n",
                     build, Layouts[i].SeAuditProcessCreationInfo);
            return Layouts[i].SeAuditProcessCreationInfo;
        }
    }
    /* The bug: an unknown build is assumed to look like the newest known. */
    DbgPrint("offsets: build %lu not in the table, using the newest known (%lu): 0x%lx\n",
             build, Layouts[LAYOUT_COUNT - 1].Build,
             Layouts[LAYOUT_COUNT - 1].SeAuditProcessCreationInfo);
    return Layouts[LAYOUT_COUNT - 1].SeAuditProcessCreationInfo;
}

/* The file name part of an NT path, as ASCII (what the sensor logs). */
NOINLINE ULONG CopyImageBaseName(const UNICODE_STRING *path, CHAR *out, ULONG room)
{
    ULONG chars = path->Length / sizeof(WCHAR);   /* faults on a bad `path` */
    const WCHAR *buffer = path->Buffer;
    ULONG start = 0, i, n = 0;

    for (i = 0; i < chars; i++) {
        if (buffer[i] == L'\\')
            start = i + 1;
    }
    for (i = start; i < chars && n + 1 < room; i++)
        out[n++] = buffer[i] < 0x80 ? (CHAR)buffer[i] : '?';
    out[n] = '\0';
    return n;
}

NOINLINE void ReportProcess(PEPROCESS process, HANDLE pid)
{
    const OBJECT_NAME_INFORMATION *audit;
    CHAR name[NAME_CHARS];

    /* Never NULL for a process being created, so not checked. */
    audit = *(OBJECT_NAME_INFORMATION *const *)((const UCHAR *)process + AuditOffset);
    CopyImageBaseName(&audit->Name, name, sizeof(name));
    KEEP_FRAME();
    DbgPrint("offsets: process %llu is %s\n", (unsigned long long)(ULONG_PTR)pid, name);
}

static void OnProcessNotify(PEPROCESS process, HANDLE pid, PPS_CREATE_NOTIFY_INFO info)
{
    if (info == NULL)   /* exit */
        return;
    ReportProcess(process, pid);
    KEEP_FRAME();
}

static VOID OffsetsUnload(PDRIVER_OBJECT driver)
{
    PsSetCreateProcessNotifyRoutineEx(OnProcessNotify, TRUE);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry)
{
    RTL_OSVERSIONINFOW version;
    NTSTATUS status;

    RtlZeroMemory(&version, sizeof(version));
    version.dwOSVersionInfoSize = sizeof(version);
    status = RtlGetVersion(&version);
    if (!NT_SUCCESS(status))
        return status;
    AuditOffset = LookupAuditOffset(version.dwBuildNumber);

    status = PsSetCreateProcessNotifyRoutineEx(OnProcessNotify, FALSE);
    if (!NT_SUCCESS(status)) {
        DbgPrint("offsets: PsSetCreateProcessNotifyRoutineEx failed (%08lx)\n", status);
        return status;
    }
    if (driver != NULL)
        driver->DriverUnload = OffsetsUnload;
    DbgPrint("offsets: watching process creation\n");
    return STATUS_SUCCESS;
}
