/*
 * state.c — a driver for the engine's own tests: everything it prints
 * depends on state a run could leak to the next (a global counter in .data,
 * pool contents, IRQL), on relocations (a table of absolute pointers), on
 * the virtual clock (KUSER_SHARED_DATA) and on OS events (a process-creation
 * callback).  A correct engine makes every run of it print the same lines.
 */
#include <ntddk.h>

extern char __ImageBase;              /* the linker's: our own load base */
#define TAG 0x65746153u                 /* 'Sate' */

static int boots;                       /* .data: must read 0 at every run */
static const char *const words[] = {"alpha", "beta", "gamma"}; /* relocated */
static ULONG twice(ULONG x)
{
    return 2 * x;
}

static ULONG (*const ops[])(ULONG) = {twice}; /* a relocated code pointer */

static void on_process(PEPROCESS process, HANDLE pid, PPS_CREATE_NOTIFY_INFO info)
{
    if (info && info->ImageFileName)
        DbgPrint("state: process %llu created: %wZ\n", (unsigned long long)(ULONG_PTR)pid,
                 info->ImageFileName);
    else
        DbgPrint("state: process %llu exited\n", (unsigned long long)(ULONG_PTR)pid);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry)
{
    LARGE_INTEGER now;
    ULONG *block;

    boots++;
    DbgPrint("state: boots=%d\n", boots);
    DbgPrint("state: words=%s,%s,%s twice(21)=%lu\n", words[0], words[1], words[2],
             ops[0](21));
    DbgPrint("state: registry=%wZ\n", registry);
    DbgPrint("state: driver start matches=%d\n",
             driver->DriverStart == (PVOID)&__ImageBase);
    DbgPrint("state: irql=%u\n", (unsigned)KeGetCurrentIrql());
    KeQuerySystemTime(&now);
    DbgPrint("state: time=%lld\n", now.QuadPart);

    block = ExAllocatePoolWithTag(NonPagedPoolNx, 64, TAG);
    if (!block)
        return STATUS_INSUFFICIENT_RESOURCES;
    DbgPrint("state: block=%p first=%08lx\n", block, block[0]);
    block[0] = 0xDEADBEEF; /* a leak into the next run would show here */
    ExFreePoolWithTag(block, TAG);

    return PsSetCreateProcessNotifyRoutineEx(on_process, FALSE);
}
