/*
 * bench_small.c — the smallest useful driver: DriverEntry does a little
 * arithmetic and returns.  The benchmark runs it to measure what one
 * endpoint run costs apart from the guest's own work.
 */
#include <ntddk.h>

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry);

static volatile ULONG bench_small_sink;

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry)
{
    ULONG x = bench_small_sink;
    ULONG i;

    for (i = 0; i < 8; i++)
        x = x * 33u + i;
    bench_small_sink = x;
    return STATUS_SUCCESS;
}
