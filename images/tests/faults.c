/*
 * faults.c — one driver per row of DESIGN.md's fault table.
 *
 * images/meson.build compiles this file once per fault kind with
 * -DFAULT_<KIND> and links fault-<kind>.sys.  Each image's DriverEntry
 * prints one line, then calls run_fault(), which calls the trigger function
 * for its kind; the trigger does the fault in the plainest way a driver
 * could.  tests/test_faults.c runs every image and checks that fleetsim
 * turns the fault into the bugcheck a Windows machine would show, with a
 * crash record naming trigger_<kind> → run_fault → DriverEntry.
 *
 * The images are built with gcc -O2, which is good at removing faults
 * before they happen.  Hence:
 *   - every function on the path is noinline and noclone, so the symbols
 *     the tests expect exist and are the ones that run;
 *   - KEEP_FRAME() after each call stops gcc from turning it into a tail
 *     jump, which would drop the caller's frame from the stack;
 *   - bad pointers and zero divisors come from volatile objects, so gcc
 *     can neither fold the access away nor replace it with ud2 (as it does
 *     for a NULL dereference it can prove).
 */
#include <ntddk.h>

#define NOINLINE __attribute__((noinline, noclone))
/* An empty asm after a call: the call is no longer in tail position. */
#define KEEP_FRAME() __asm__ __volatile__("" ::: "memory")

/* Pool tag "Falt" as it reads in memory (no multi-character constant). */
#define FAULT_TAG 0x746c6146u

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry);
NTSTATUS run_fault(void);

/* Where the trigger functions store what they read, so it is not dead. */
volatile ULONG fault_sink;

#if defined(FAULT_UNMAPPED_READ)
#define FAULT_KIND "unmapped-read"
/* Non-NULL, canonical, kernel half, and mapped by no engine. */
static ULONG *volatile unmapped_read_ptr = (ULONG *)0xffff840500000074ull;

NOINLINE ULONG trigger_unmapped_read(void);
NOINLINE ULONG trigger_unmapped_read(void)
{
    return *unmapped_read_ptr;
}
#define TRIGGER() (fault_sink = trigger_unmapped_read())

#elif defined(FAULT_UNMAPPED_WRITE)
#define FAULT_KIND "unmapped-write"
static ULONG *volatile unmapped_write_ptr = (ULONG *)0xffff840500000080ull;

NOINLINE void trigger_unmapped_write(ULONG value);
NOINLINE void trigger_unmapped_write(ULONG value)
{
    *unmapped_write_ptr = value;
}
#define TRIGGER() trigger_unmapped_write(0x41414141)

#elif defined(FAULT_NULL_READ)
#define FAULT_KIND "null-read"
static ULONG *volatile null_ptr = NULL;

NOINLINE ULONG trigger_null_read(void);
NOINLINE ULONG trigger_null_read(void)
{
    return *null_ptr;
}
#define TRIGGER() (fault_sink = trigger_null_read())

#elif defined(FAULT_USER_DISPATCH)
#define FAULT_KIND "user-dispatch"
/* A user-mode address (an EXE's usual place), touched at DISPATCH_LEVEL. */
static ULONG *volatile user_ptr = (ULONG *)0x00007ff600001000ull;

NOINLINE ULONG trigger_user_dispatch(void);
NOINLINE ULONG trigger_user_dispatch(void)
{
    KIRQL old;
    ULONG value;

    KeRaiseIrql(DISPATCH_LEVEL, &old);   /* mov cr8 on x64 */
    value = *user_ptr;
    KeLowerIrql(old);
    return value;
}
#define TRIGGER() (fault_sink = trigger_user_dispatch())

#elif defined(FAULT_READONLY_WRITE)
#define FAULT_KIND "readonly-write"
/* In .rdata; written through a pointer gcc cannot see through. */
const ULONG fault_readonly_value = 0x0badf00d;
static volatile ULONG *volatile readonly_ptr = (volatile ULONG *)&fault_readonly_value;

NOINLINE void trigger_readonly_write(ULONG value);
NOINLINE void trigger_readonly_write(ULONG value)
{
    *readonly_ptr = value;
}
#define TRIGGER() trigger_readonly_write(1)

#elif defined(FAULT_EXECUTE_NX)
#define FAULT_KIND "execute-nx"
/* In .data: readable and writable, never executable.  0xC3 is `ret`. */
UCHAR fault_nx_code[16] = { 0xC3 };
typedef void (*nx_fn)(void);
static volatile nx_fn nx_target = (nx_fn)(void *)fault_nx_code;

NOINLINE void trigger_execute_nx(void);
NOINLINE void trigger_execute_nx(void)
{
    nx_target();
    KEEP_FRAME();
}
#define TRIGGER() trigger_execute_nx()

#elif defined(FAULT_INVALID_OPCODE)
#define FAULT_KIND "invalid-opcode"
NOINLINE void trigger_invalid_opcode(void);
NOINLINE void trigger_invalid_opcode(void)
{
    __asm__ __volatile__("ud2");
}
#define TRIGGER() trigger_invalid_opcode()

#elif defined(FAULT_FAST_FAIL)
#define FAULT_KIND "fast-fail"
/* What the WDK's list macros do on a corrupt LIST_ENTRY: __fastfail(3),
 * FAST_FAIL_CORRUPT_LIST_ENTRY, which is `int 0x29` with the code in ecx. */
NOINLINE void trigger_fast_fail(void);
NOINLINE void trigger_fast_fail(void)
{
    __asm__ __volatile__("mov $3, %%ecx\n\tint $0x29" ::: "rcx", "memory");
}
#define TRIGGER() trigger_fast_fail()

#elif defined(FAULT_DIVIDE_ERROR)
#define FAULT_KIND "divide-error"
static volatile ULONG divisor = 0;

NOINLINE ULONG trigger_divide_error(ULONG dividend);
NOINLINE ULONG trigger_divide_error(ULONG dividend)
{
    return dividend / divisor;
}
#define TRIGGER() (fault_sink = trigger_divide_error(100))

#elif defined(FAULT_STACK_OVERFLOW)
#define FAULT_KIND "stack-overflow"
/*
 * Each frame holds 512 bytes that escape into the next call, so gcc can
 * neither shrink the frame nor turn the recursion into a loop.  The 24 KiB
 * kernel stack runs out after a few dozen frames; the next frame's first
 * store lands in the guard page (a double fault on Windows).
 */
NOINLINE ULONG trigger_stack_overflow(ULONG depth, volatile UCHAR *parent);
static volatile ULONG stack_limit = 0xffffffffu;  /* never reached */

NOINLINE ULONG trigger_stack_overflow(ULONG depth, volatile UCHAR *parent)
{
    volatile UCHAR frame[512];

    if (depth == stack_limit)
        return 0;
    frame[0] = (UCHAR)depth;
    frame[511] = parent[0];
    return trigger_stack_overflow(depth + 1, frame) + frame[depth & 511];
}
static volatile UCHAR stack_root[1];
#define TRIGGER() (fault_sink = trigger_stack_overflow(0, stack_root))

#elif defined(FAULT_POOL_OVERRUN)
#define FAULT_KIND "pool-overrun"
static volatile SIZE_T overrun_length = 64;  /* into a 32-byte block */

NOINLINE void fill_block(PUCHAR block, SIZE_T length);
NOINLINE void fill_block(PUCHAR block, SIZE_T length)
{
    volatile UCHAR *p = block;
    SIZE_T i;

    for (i = 0; i < length; i++)
        p[i] = 0x41;
}

NOINLINE void release_block(PVOID block);
NOINLINE void release_block(PVOID block)
{
    ExFreePoolWithTag(block, FAULT_TAG);
    KEEP_FRAME();
}

NOINLINE void trigger_pool_overrun(void);
NOINLINE void trigger_pool_overrun(void)
{
    PUCHAR first = ExAllocatePoolWithTag(NonPagedPool, 32, FAULT_TAG);
    PUCHAR second = ExAllocatePoolWithTag(NonPagedPool, 32, FAULT_TAG);

    if (first == NULL || second == NULL)
        return;
    DbgPrint("faults: pool-overrun first=%p second=%p\n", first, second);
    fill_block(first, overrun_length);   /* runs over second's pool header */
    release_block(second);
    release_block(first);
    KEEP_FRAME();
}
#define TRIGGER() trigger_pool_overrun()

#elif defined(FAULT_DOUBLE_FREE)
#define FAULT_KIND "double-free"
NOINLINE void release_block(PVOID block);
NOINLINE void release_block(PVOID block)
{
    ExFreePoolWithTag(block, FAULT_TAG);
    KEEP_FRAME();
}

NOINLINE void trigger_double_free(void);
NOINLINE void trigger_double_free(void)
{
    PVOID block = ExAllocatePoolWithTag(NonPagedPool, 48, FAULT_TAG);

    if (block == NULL)
        return;
    release_block(block);
    release_block(block);
    KEEP_FRAME();
}
#define TRIGGER() trigger_double_free()

#elif defined(FAULT_HANG_PASSIVE)
#define FAULT_KIND "hang-passive"
static volatile ULONG spin_counter;

NOINLINE void trigger_hang_passive(void);
NOINLINE void trigger_hang_passive(void)
{
    for (;;)
        spin_counter++;
}
#define TRIGGER() trigger_hang_passive()

#elif defined(FAULT_HANG_IN_API)
#define FAULT_KIND "hang-in-api"
/* The loop is in nt: strlen over 4 MiB of pool, again and again.  The guest
 * runs a handful of instructions a call; the kernel routine, millions. */
DECLSPEC_IMPORT size_t __cdecl imp_strlen(const char *) __asm__("strlen");
DECLSPEC_IMPORT PVOID NTAPI imp_ExAllocatePoolWithTag(POOL_TYPE, SIZE_T, ULONG)
    __asm__("ExAllocatePoolWithTag");
DECLSPEC_IMPORT void NTAPI imp_RtlFillMemory(PVOID, SIZE_T, UCHAR) __asm__("RtlFillMemory");

NOINLINE void trigger_hang_in_api(void);
NOINLINE void trigger_hang_in_api(void)
{
    const SIZE_T size = 4u << 20;
    char *text = imp_ExAllocatePoolWithTag(NonPagedPool, size, 0x676E6F4C);
    if (!text)
        return;
    imp_RtlFillMemory(text, size - 1, 'A');
    text[size - 1] = 0;
    for (;;)
        fault_sink = (ULONG)imp_strlen(text);
}
#define TRIGGER() trigger_hang_in_api()

#elif defined(FAULT_HANG_DISPATCH)
#define FAULT_KIND "hang-dispatch"
static volatile ULONG spin_counter;

NOINLINE void trigger_hang_dispatch(void);
NOINLINE void trigger_hang_dispatch(void)
{
    KIRQL old;

    KeRaiseIrql(DISPATCH_LEVEL, &old);
    for (;;)
        spin_counter++;
}
#define TRIGGER() trigger_hang_dispatch()

#elif defined(FAULT_BUGCHECK_CALL)
#define FAULT_KIND "bugcheck-call"
/* Five arguments: the fifth goes on the stack at [rsp+0x20]. */
NOINLINE void trigger_bugcheck_call(void);
NOINLINE void trigger_bugcheck_call(void)
{
    KeBugCheckEx(0xE2, 1, 2, 3, 4);
}
#define TRIGGER() trigger_bugcheck_call()

#elif defined(FAULT_MISSING_IMPORT)
#define FAULT_KIND "missing-import"
/* IoCreateSymbolicLink is in every ntoskrnl but not in fleetsim's table. */
NOINLINE NTSTATUS trigger_missing_import(void);
NOINLINE NTSTATUS trigger_missing_import(void)
{
    UNICODE_STRING link = RTL_CONSTANT_STRING(L"\\DosDevices\\FaultLink");
    UNICODE_STRING target = RTL_CONSTANT_STRING(L"\\Device\\Fault");
    NTSTATUS status = IoCreateSymbolicLink(&link, &target);

    KEEP_FRAME();
    return status;
}
#define TRIGGER() (fault_sink = (ULONG)trigger_missing_import())

#elif defined(FAULT_OK)
#define FAULT_KIND "ok"
NOINLINE ULONG trigger_ok(ULONG x);
NOINLINE ULONG trigger_ok(ULONG x)
{
    return x * 3 + 1;
}
#define TRIGGER() (fault_sink = trigger_ok(41))

#else
#error "compile with -DFAULT_<KIND> (see images/meson.build)"
#endif

NOINLINE NTSTATUS run_fault(void)
{
    TRIGGER();
    KEEP_FRAME();
    return STATUS_SUCCESS;
}

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry)
{
    NTSTATUS status;

    DbgPrint("faults: " FAULT_KIND " starting\n");
    status = run_fault();
    DbgPrint("faults: " FAULT_KIND " returned %08x\n", (unsigned)status);
    return status;
}
