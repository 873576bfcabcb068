/*
 * bench_parse.c — the benchmark's working driver: DriverEntry builds a few
 * KB of TLV content and parses it with the code in bench_parse.h (the same
 * code tests/bench.c runs natively), then prints what it found so the
 * benchmark can check that emulation and the host computed the same thing.
 */
#include <ntddk.h>

#include "bench_parse.h"

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry);

static uint8_t bench_content[BENCH_CONTENT_SIZE];

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry)
{
    bench_result result;

    bench_parse_run(bench_content, BENCH_SEED, &result);
    DbgPrint("bench-parse: %u records, %u matched, checksum %08x\n",
             (unsigned)result.records, (unsigned)result.matched,
             (unsigned)result.checksum);
    return result.rejected ? STATUS_UNSUCCESSFUL : STATUS_SUCCESS;
}
