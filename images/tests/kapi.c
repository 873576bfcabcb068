/*
 * kapi.c — a driver that checks fleetsim's kernel API layer from the guest.
 *
 * Host-side unit tests can check what an API does; only a real driver can
 * check the ABI it does it through: arguments past the fourth on the stack,
 * 64-bit pointer and 8-bit BOOLEAN returns, callee-saved registers (rbx,
 * rbp, rsi, rdi, r12-r15, xmm6-15) and the stack pointer across calls,
 * IRQL as exports and inline `mov cr8` see it together.  Each check prints
 * "kapi: <check> ok" or "kapi: <check> FAIL got=… want=…"; DriverEntry
 * returns STATUS_SUCCESS only when all pass.  tests/test_kapi.c runs it and
 * reads the log.
 *
 * The imports are declared here under their export names (asm labels), so
 * that every call goes through the import table even where the DDK headers
 * offer an inline or a macro (KeGetCurrentIrql is `mov cr8` inline) and
 * gcc cannot turn memcpy or strlen into builtins.
 */
#include <ntifs.h>

#define IMPORT(ret, name, args) DECLSPEC_IMPORT ret NTAPI imp_##name args __asm__(#name)
#define IMPORT_C(ret, name, args) DECLSPEC_IMPORT ret __cdecl imp_##name args __asm__(#name)

IMPORT(KIRQL, KeGetCurrentIrql, (void));
IMPORT(KIRQL, KfRaiseIrql, (KIRQL));
IMPORT(void, KeLowerIrql, (KIRQL));
IMPORT(KIRQL, KeRaiseIrqlToDpcLevel, (void));
IMPORT(KIRQL, KeAcquireSpinLockRaiseToDpc, (PKSPIN_LOCK));
IMPORT(void, KeReleaseSpinLock, (PKSPIN_LOCK, KIRQL));
IMPORT(SIZE_T, RtlCompareMemory, (const void *, const void *, SIZE_T));
IMPORT(BOOLEAN, RtlEqualUnicodeString, (PCUNICODE_STRING, PCUNICODE_STRING, BOOLEAN));
IMPORT(void, RtlInitUnicodeString, (PUNICODE_STRING, PCWSTR));
IMPORT(NTSTATUS, RtlGetVersion, (PRTL_OSVERSIONINFOW));
IMPORT(PVOID, MmGetSystemRoutineAddress, (PUNICODE_STRING));
IMPORT(BOOLEAN, MmIsAddressValid, (PVOID));
IMPORT(PVOID, ExAllocatePoolWithTag, (POOL_TYPE, SIZE_T, ULONG));
IMPORT(void, ExFreePoolWithTag, (PVOID, ULONG));
IMPORT(HANDLE, PsGetCurrentProcessId, (void));
IMPORT(NTSTATUS, PsSetCreateProcessNotifyRoutine, (PCREATE_PROCESS_NOTIFY_ROUTINE, BOOLEAN));
IMPORT(NTSTATUS, KeDelayExecutionThread, (KPROCESSOR_MODE, BOOLEAN, PLARGE_INTEGER));
IMPORT(NTSTATUS, ZwCreateFile, (PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK,
                                PLARGE_INTEGER, ULONG, ULONG, ULONG, ULONG, PVOID, ULONG));
IMPORT(NTSTATUS, ZwOpenFile, (PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK,
                              ULONG, ULONG));
IMPORT(NTSTATUS, ZwReadFile, (HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID, PIO_STATUS_BLOCK, PVOID,
                              ULONG, PLARGE_INTEGER, PULONG));
IMPORT(NTSTATUS, ZwQueryInformationFile, (HANDLE, PIO_STATUS_BLOCK, PVOID, ULONG,
                                          FILE_INFORMATION_CLASS));
IMPORT(NTSTATUS, ZwQueryDirectoryFile, (HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID,
                                        PIO_STATUS_BLOCK, PVOID, ULONG, FILE_INFORMATION_CLASS,
                                        BOOLEAN, PUNICODE_STRING, BOOLEAN));
IMPORT(NTSTATUS, ZwClose, (HANDLE));
IMPORT(NTSTATUS, IoCreateDevice, (PDRIVER_OBJECT, ULONG, PUNICODE_STRING, DEVICE_TYPE, ULONG,
                                  BOOLEAN, PDEVICE_OBJECT *));
IMPORT(void, IoDeleteDevice, (PDEVICE_OBJECT));
IMPORT(void, KeBugCheckEx, (ULONG, ULONG_PTR, ULONG_PTR, ULONG_PTR, ULONG_PTR));
IMPORT_C(ULONG, DbgPrint, (PCSTR, ...));
IMPORT(ULONG, vDbgPrintEx, (ULONG, ULONG, PCCH, va_list));
IMPORT_C(int, _snprintf, (char *, size_t, const char *, ...));
IMPORT_C(int, _vsnprintf, (char *, size_t, const char *, va_list));
IMPORT_C(int, _snwprintf, (wchar_t *, size_t, const wchar_t *, ...));
IMPORT_C(void *, memcpy, (void *, const void *, size_t));
IMPORT_C(void *, memset, (void *, int, size_t));
IMPORT_C(size_t, strlen, (const char *));
IMPORT_C(int, strcmp, (const char *, const char *));

#define TAG 0x6970614Bu /* 'Kapi' */

static int failures;

static void check(const char *name, ULONG64 got, ULONG64 want)
{
    if (got == want) {
        imp_DbgPrint("kapi: %s ok\n", name);
    } else {
        imp_DbgPrint("kapi: %s FAIL got=0x%I64x want=0x%I64x\n", name, got, want);
        failures++;
    }
}

static void check_str(const char *name, const char *got, const char *want)
{
    if (imp_strcmp(got, want) == 0) {
        imp_DbgPrint("kapi: %s ok\n", name);
    } else {
        imp_DbgPrint("kapi: %s FAIL got='%s' want='%s'\n", name, got, want);
        failures++;
    }
}

/* ---- registers and the stack across a call ----------------------------- */

/* Globals the probe's assembly uses by name. */
ULONG64 kapi_probe_fn, kapi_probe_arg, kapi_probe_ret;
ULONG64 kapi_saved_rsp, kapi_saved_rbp, kapi_rsp_before, kapi_rsp_after;
ULONG64 kapi_regs[18];

static const ULONG64 expected_regs[18] = {
    0x1111111111111111ull, 0x2222222222222222ull, 0x3333333333333333ull,
    0x4444444444444444ull, 0x5555555555555555ull, 0x6666666666666666ull,
    0x7777777777777777ull, 0x8888888888888888ull, /* rbx rbp rsi rdi r12-r15 */
    0x0606060606060606ull, 0x0707070707070707ull, 0x0808080808080808ull,
    0x0909090909090909ull, 0x0A0A0A0A0A0A0A0Aull, 0x0B0B0B0B0B0B0B0Bull,
    0x0C0C0C0C0C0C0C0Cull, 0x0D0D0D0D0D0D0D0Dull, 0x0E0E0E0E0E0E0E0Eull,
    0x0F0F0F0F0F0F0F0Full, /* xmm6-xmm15, low quadwords */
};

/*
 * Load known values into every callee-saved register, call the function in
 * kapi_probe_fn with one argument on a 16-byte aligned stack, and store
 * what the registers and rsp hold after it returns.
 */
static void probe_call(void)
{
    __asm__ volatile(
        "mov %%rsp, kapi_saved_rsp(%%rip)\n\t"
        "mov %%rbp, kapi_saved_rbp(%%rip)\n\t"
        "and $-16, %%rsp\n\t"
        "sub $32, %%rsp\n\t"
        "mov %%rsp, kapi_rsp_before(%%rip)\n\t"
        "movabs $0x1111111111111111, %%rbx\n\t"
        "movabs $0x2222222222222222, %%rbp\n\t"
        "movabs $0x3333333333333333, %%rsi\n\t"
        "movabs $0x4444444444444444, %%rdi\n\t"
        "movabs $0x5555555555555555, %%r12\n\t"
        "movabs $0x6666666666666666, %%r13\n\t"
        "movabs $0x7777777777777777, %%r14\n\t"
        "movabs $0x8888888888888888, %%r15\n\t"
        "movabs $0x0606060606060606, %%rax\n\t movq %%rax, %%xmm6\n\t"
        "movabs $0x0707070707070707, %%rax\n\t movq %%rax, %%xmm7\n\t"
        "movabs $0x0808080808080808, %%rax\n\t movq %%rax, %%xmm8\n\t"
        "movabs $0x0909090909090909, %%rax\n\t movq %%rax, %%xmm9\n\t"
        "movabs $0x0A0A0A0A0A0A0A0A, %%rax\n\t movq %%rax, %%xmm10\n\t"
        "movabs $0x0B0B0B0B0B0B0B0B, %%rax\n\t movq %%rax, %%xmm11\n\t"
        "movabs $0x0C0C0C0C0C0C0C0C, %%rax\n\t movq %%rax, %%xmm12\n\t"
        "movabs $0x0D0D0D0D0D0D0D0D, %%rax\n\t movq %%rax, %%xmm13\n\t"
        "movabs $0x0E0E0E0E0E0E0E0E, %%rax\n\t movq %%rax, %%xmm14\n\t"
        "movabs $0x0F0F0F0F0F0F0F0F, %%rax\n\t movq %%rax, %%xmm15\n\t"
        "mov kapi_probe_arg(%%rip), %%rcx\n\t"
        "mov kapi_probe_fn(%%rip), %%rax\n\t"
        "call *%%rax\n\t"
        "mov %%rax, kapi_probe_ret(%%rip)\n\t"
        "mov %%rsp, kapi_rsp_after(%%rip)\n\t"
        "mov %%rbx, kapi_regs+0(%%rip)\n\t"
        "mov %%rbp, kapi_regs+8(%%rip)\n\t"
        "mov %%rsi, kapi_regs+16(%%rip)\n\t"
        "mov %%rdi, kapi_regs+24(%%rip)\n\t"
        "mov %%r12, kapi_regs+32(%%rip)\n\t"
        "mov %%r13, kapi_regs+40(%%rip)\n\t"
        "mov %%r14, kapi_regs+48(%%rip)\n\t"
        "mov %%r15, kapi_regs+56(%%rip)\n\t"
        "movq %%xmm6, kapi_regs+64(%%rip)\n\t"
        "movq %%xmm7, kapi_regs+72(%%rip)\n\t"
        "movq %%xmm8, kapi_regs+80(%%rip)\n\t"
        "movq %%xmm9, kapi_regs+88(%%rip)\n\t"
        "movq %%xmm10, kapi_regs+96(%%rip)\n\t"
        "movq %%xmm11, kapi_regs+104(%%rip)\n\t"
        "movq %%xmm12, kapi_regs+112(%%rip)\n\t"
        "movq %%xmm13, kapi_regs+120(%%rip)\n\t"
        "movq %%xmm14, kapi_regs+128(%%rip)\n\t"
        "movq %%xmm15, kapi_regs+136(%%rip)\n\t"
        "mov kapi_saved_rsp(%%rip), %%rsp\n\t"
        "mov kapi_saved_rbp(%%rip), %%rbp\n\t"
        :
        :
        : "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
          "r13", "r14", "r15", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
          "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
          "memory", "cc");
}

static void check_preserved(const char *api, void *fn, ULONG64 arg)
{
    static const char *const names[18] = {
        "rbx", "rbp", "rsi", "rdi", "r12", "r13", "r14", "r15", "xmm6", "xmm7",
        "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
    };
    char name[64];

    kapi_probe_fn = (ULONG64)fn;
    kapi_probe_arg = arg;
    probe_call();
    for (int i = 0; i < 18; i++) {
        if (kapi_regs[i] != expected_regs[i]) {
            imp__snprintf(name, sizeof name, "preserved-%s-%s", api, names[i]);
            check(name, kapi_regs[i], expected_regs[i]);
        }
    }
    imp__snprintf(name, sizeof name, "preserved-%s", api);
    check(name, 0, 0);
    imp__snprintf(name, sizeof name, "rsp-after-%s", api);
    check(name, kapi_rsp_after, kapi_rsp_before);
}

/* ---- checks ------------------------------------------------------------ */

static void check_abi(void)
{
    static const char text[] = "fleetsim";

    check_preserved("KeGetCurrentIrql", (void *)imp_KeGetCurrentIrql, 0);
    check_preserved("strlen", (void *)imp_strlen, (ULONG64)text);
    check("strlen-ret", kapi_probe_ret, 8);
}

static void check_rtl(void)
{
    char a[64], b[64];
    volatile size_t n = sizeof a;

    imp_memset(a, 0x5A, n);
    imp_memcpy(b, a, n);
    b[37] = 0;
    check("RtlCompareMemory", imp_RtlCompareMemory(a, b, n), 37);
    check("RtlCompareMemory-equal", imp_RtlCompareMemory(a, a, n), 64);
    check("strlen", imp_strlen("twelve chars"), 12);

    UNICODE_STRING u1, u2;
    imp_RtlInitUnicodeString(&u1, L"\\Registry\\Machine");
    imp_RtlInitUnicodeString(&u2, L"\\REGISTRY\\machine");
    check("RtlInitUnicodeString-len", u1.Length, 34);
    check("RtlInitUnicodeString-max", u1.MaximumLength, 36);
    check("RtlEqualUnicodeString-ci", imp_RtlEqualUnicodeString(&u1, &u2, TRUE), 1);
    check("RtlEqualUnicodeString-cs", imp_RtlEqualUnicodeString(&u1, &u2, FALSE), 0);
}

static void check_print(void)
{
    char buf[128];
    static const wchar_t wide[] = L"wide";

    /* 10 variadic arguments of mixed sizes: 6 on the stack. */
    int n = imp__snprintf(buf, sizeof buf, "%d|%lld|%s|%c|%x|%I64x|%u|%hd|%ls|%p", -1,
                          -1234567890123ll, "str", 'q', 0xBEEFu, 0x123456789ABCull, 42u,
                          (short)-7, wide, (void *)0xFFFFF80012345678ull);
    check_str("_snprintf-many",
              buf, "-1|-1234567890123|str|q|beef|123456789abc|42|-7|wide|FFFFF80012345678");
    check("_snprintf-ret", (ULONG64)(LONG64)n, 69);

    /* Microsoft truncation: no NUL and -1 when it does not fit. */
    imp_memset(buf, '#', 16);
    n = imp__snprintf(buf, 4, "%s", "abcdef");
    check("_snprintf-trunc-ret", (ULONG64)(LONG64)n, (ULONG64)-1);
    check("_snprintf-trunc-nonul", buf[4] == '#' && buf[3] == 'd', 1);

    wchar_t w[16];
    n = imp__snwprintf(w, 16, L"%d-%s", 5, L"ok");
    check("_snwprintf", n == 4 && w[0] == '5' && w[2] == 'o' && w[4] == 0, 1);

    /* DbgPrint with 12 arguments; the test reads the line back. */
    imp_DbgPrint("kapi: mixed %d %u %lld %hd %c %s %x %I64u %ls %p %hhu %zu\n", -5, 4000000000u,
                 -9000000000ll, (short)-2, 'Z', "text", 0xCAFEu, 18446744073709551615ull,
                 L"wstr", (void *)0xFFFF840500000074ull, 300, (size_t)1 << 40);
}

static void vprint(const char *fmt, ...)
{
    va_list ap;
    char buf[64];

    va_start(ap, fmt);
    imp_vDbgPrintEx(0, 0, fmt, ap);
    va_end(ap);
    va_start(ap, fmt);
    int n = imp__vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    check_str("_vsnprintf", buf, "kapi: va 1 two 3000000000000\n");
    check("_vsnprintf-ret", (ULONG64)(LONG64)n, 29);
}

static void check_irql(void)
{
    KSPIN_LOCK lock = 0;

    check("irql-start", imp_KeGetCurrentIrql(), PASSIVE_LEVEL);
    check("KfRaiseIrql-old", imp_KfRaiseIrql(DISPATCH_LEVEL), PASSIVE_LEVEL);
    check("irql-raised", imp_KeGetCurrentIrql(), DISPATCH_LEVEL);
    check("irql-cr8", __readcr8(), DISPATCH_LEVEL);
    imp_KeLowerIrql(PASSIVE_LEVEL);
    check("irql-lowered", imp_KeGetCurrentIrql(), PASSIVE_LEVEL);
    check("KeRaiseIrqlToDpcLevel-old", imp_KeRaiseIrqlToDpcLevel(), PASSIVE_LEVEL);
    check("irql-dpc", __readcr8(), DISPATCH_LEVEL);
    imp_KeLowerIrql(PASSIVE_LEVEL);

    /* Inline `mov cr8` and the exports see the same IRQL. */
    __writecr8(APC_LEVEL);
    check("irql-inline", imp_KeGetCurrentIrql(), APC_LEVEL);
    __writecr8(PASSIVE_LEVEL);

    KIRQL old = imp_KeAcquireSpinLockRaiseToDpc(&lock);
    check("spinlock-old", old, PASSIVE_LEVEL);
    check("spinlock-held", lock, 1);
    check("spinlock-irql", imp_KeGetCurrentIrql(), DISPATCH_LEVEL);
    imp_KeReleaseSpinLock(&lock, old);
    check("spinlock-free", lock, 0);
    check("spinlock-irql-after", imp_KeGetCurrentIrql(), PASSIVE_LEVEL);
}

static void check_version(void)
{
    RTL_OSVERSIONINFOEXW v;

    imp_memset(&v, 0, sizeof v);
    v.dwOSVersionInfoSize = sizeof v;
    check("RtlGetVersion", imp_RtlGetVersion((PRTL_OSVERSIONINFOW)&v), STATUS_SUCCESS);
    imp_DbgPrint("kapi: version %lu.%lu.%lu platform %lu product %u sp %u.%u csd '%ws'\n",
                 v.dwMajorVersion, v.dwMinorVersion, v.dwBuildNumber, v.dwPlatformId,
                 v.wProductType, v.wServicePackMajor, v.wServicePackMinor, v.szCSDVersion);
    RTL_OSVERSIONINFOW small;
    small.dwOSVersionInfoSize = sizeof small;
    check("RtlGetVersion-small", imp_RtlGetVersion(&small), STATUS_SUCCESS);
    check("RtlGetVersion-small-build", small.dwBuildNumber, v.dwBuildNumber);
    small.dwOSVersionInfoSize = 12;
    check("RtlGetVersion-badsize", imp_RtlGetVersion(&small), STATUS_INVALID_PARAMETER);
}

static void check_pool(void)
{
    unsigned char *p = imp_ExAllocatePoolWithTag(NonPagedPoolNx, 100, TAG);

    check("pool-kernel-pointer", (ULONG64)p >> 47, 0x1FFFF);
    check("pool-aligned", (ULONG64)p & 15, 0);
    imp_memset(p, 0xAB, 100);
    check("pool-write", p[99], 0xAB);
    imp_ExFreePoolWithTag(p, TAG);

    UNICODE_STRING name;
    imp_RtlInitUnicodeString(&name, L"ExAllocatePool2");
    typedef PVOID (NTAPI *alloc2_fn)(ULONG64, SIZE_T, ULONG);
    alloc2_fn alloc2 = (alloc2_fn)imp_MmGetSystemRoutineAddress(&name);
    if (alloc2) {
        imp_DbgPrint("kapi: ExAllocatePool2 present\n");
        unsigned char *q = alloc2(0x40 /* POOL_FLAG_NON_PAGED */, 256, TAG);
        int zero = q != NULL;
        for (int i = 0; q && i < 256; i++)
            zero &= q[i] == 0;
        check("ExAllocatePool2-zeroed", zero, 1);
        check("ExAllocatePool2-badflags", (ULONG64)alloc2(0x40 | 0x100, 16, TAG), 0);
        if (q)
            imp_ExFreePoolWithTag(q, TAG);
    } else {
        imp_DbgPrint("kapi: ExAllocatePool2 absent\n");
    }
    imp_RtlInitUnicodeString(&name, L"NoSuchRoutineAnywhere");
    check("MmGetSystemRoutineAddress-missing", (ULONG64)imp_MmGetSystemRoutineAddress(&name), 0);
    check("MmIsAddressValid-stack", imp_MmIsAddressValid(&name), 1);
    check("MmIsAddressValid-null", imp_MmIsAddressValid(NULL), 0);
}

static void check_misc(PDRIVER_OBJECT driver)
{
    check("PsGetCurrentProcessId", (ULONG64)imp_PsGetCurrentProcessId(), 4);

    LARGE_INTEGER delay;
    delay.QuadPart = -10 * 1000 * 5; /* 5 ms, relative */
    check("KeDelayExecutionThread", imp_KeDelayExecutionThread(KernelMode, FALSE, &delay),
          STATUS_SUCCESS);

    PDEVICE_OBJECT dev = NULL;
    NTSTATUS st = imp_IoCreateDevice(driver, 64, NULL, FILE_DEVICE_UNKNOWN, 0, FALSE, &dev);
    check("IoCreateDevice", st, STATUS_SUCCESS);
    if (st == STATUS_SUCCESS) {
        check("IoCreateDevice-list", (ULONG64)driver->DeviceObject, (ULONG64)dev);
        check("IoCreateDevice-ext", (ULONG64)dev->DeviceExtension != 0, 1);
        check("IoCreateDevice-driver", (ULONG64)dev->DriverObject, (ULONG64)driver);
        imp_IoDeleteDevice(dev);
        check("IoDeleteDevice-list", (ULONG64)driver->DeviceObject, 0);
    }
    /* An extension of nearly 4 GiB is refused, not rounded up to nothing. */
    dev = NULL;
    check("IoCreateDevice-huge",
          imp_IoCreateDevice(driver, 0xFFFFFFF8u, NULL, FILE_DEVICE_UNKNOWN, 0, FALSE, &dev),
          STATUS_INSUFFICIENT_RESOURCES);
    check("IoCreateDevice-huge-none", (ULONG64)dev, 0);
}

static void on_process(HANDLE parent, HANDLE pid, BOOLEAN create)
{
    (void)parent;
    (void)pid;
    (void)create;
}

static void check_notify(void)
{
    check("notify-add", imp_PsSetCreateProcessNotifyRoutine(on_process, FALSE), STATUS_SUCCESS);
    check("notify-remove", imp_PsSetCreateProcessNotifyRoutine(on_process, TRUE), STATUS_SUCCESS);
    check("notify-remove-again", imp_PsSetCreateProcessNotifyRoutine(on_process, TRUE),
          STATUS_INVALID_PARAMETER);
}

static NTSTATUS open_path(const wchar_t *path, ULONG options, HANDLE *h)
{
    UNICODE_STRING name;
    OBJECT_ATTRIBUTES oa;
    IO_STATUS_BLOCK iosb;

    imp_RtlInitUnicodeString(&name, path);
    InitializeObjectAttributes(&oa, &name, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE, NULL, NULL);
    /* All 11 arguments, 7 of them on the stack. */
    return imp_ZwCreateFile(h, GENERIC_READ | SYNCHRONIZE, &oa, &iosb, NULL, FILE_ATTRIBUTE_NORMAL,
                            FILE_SHARE_READ, FILE_OPEN,
                            options | FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
}

static void check_files(void)
{
    HANDLE h;
    IO_STATUS_BLOCK iosb;
    NTSTATUS st = open_path(L"\\SystemRoot\\System32\\drivers\\kapi\\test.bin",
                            FILE_NON_DIRECTORY_FILE, &h);

    if (st == STATUS_OBJECT_NAME_NOT_FOUND || st == STATUS_OBJECT_PATH_NOT_FOUND) {
        imp_DbgPrint("kapi: vfs skipped (no test.bin)\n");
        return;
    }
    check("ZwCreateFile", st, STATUS_SUCCESS);
    if (st != STATUS_SUCCESS)
        return;

    FILE_STANDARD_INFORMATION std;
    st = imp_ZwQueryInformationFile(h, &iosb, &std, sizeof std, FileStandardInformation);
    check("ZwQueryInformationFile", st, STATUS_SUCCESS);
    check("ZwQueryInformationFile-dir", std.Directory, 0);
    check("ZwQueryInformationFile-small",
          imp_ZwQueryInformationFile(h, &iosb, &std, 4, FileStandardInformation),
          STATUS_INFO_LENGTH_MISMATCH);

    char data[256];
    LARGE_INTEGER at;
    at.QuadPart = 0;
    imp_memset(data, 0, sizeof data);
    st = imp_ZwReadFile(h, NULL, NULL, NULL, &iosb, data, sizeof data - 1, &at, NULL);
    check("ZwReadFile", st, STATUS_SUCCESS);
    check("ZwReadFile-info", iosb.Information, (ULONG64)std.EndOfFile.QuadPart);
    unsigned sum = 0;
    for (ULONG64 i = 0; i < iosb.Information; i++)
        sum = sum * 31 + (unsigned char)data[i];
    imp_DbgPrint("kapi: file size=%I64d sum=%08x text='%s'\n", std.EndOfFile.QuadPart, sum, data);

    /* ByteOffset is the 8th argument: read 4 bytes at offset 9. */
    char part[8] = {0};
    at.QuadPart = 9;
    st = imp_ZwReadFile(h, NULL, NULL, NULL, &iosb, part, 4, &at, NULL);
    check("ZwReadFile-offset", st == STATUS_SUCCESS && iosb.Information == 4 &&
          part[0] == data[9] && part[3] == data[12], 1);
    /* No ByteOffset: continues at the file position (13). */
    st = imp_ZwReadFile(h, NULL, NULL, NULL, &iosb, part, 1, NULL, NULL);
    check("ZwReadFile-position", part[0] == data[13], 1);
    at.QuadPart = std.EndOfFile.QuadPart;
    check("ZwReadFile-eof", imp_ZwReadFile(h, NULL, NULL, NULL, &iosb, part, 1, &at, NULL),
          STATUS_END_OF_FILE);
    check("ZwClose", imp_ZwClose(h), STATUS_SUCCESS);
    check("ZwClose-again", imp_ZwClose(h), STATUS_INVALID_HANDLE);

    check("ZwCreateFile-missing",
          open_path(L"\\??\\C:\\Windows\\System32\\drivers\\kapi\\none.bin", 0, &h),
          STATUS_OBJECT_NAME_NOT_FOUND);
    check("ZwCreateFile-nopath", open_path(L"\\??\\C:\\NoSuchDir\\x.bin", 0, &h),
          STATUS_OBJECT_PATH_NOT_FOUND);

    /* Enumerate the directory through its other name. */
    UNICODE_STRING dir_name, pattern;
    OBJECT_ATTRIBUTES oa;
    imp_RtlInitUnicodeString(&dir_name, L"\\??\\c:\\windows\\system32\\DRIVERS\\kapi");
    InitializeObjectAttributes(&oa, &dir_name, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE, NULL, NULL);
    st = imp_ZwOpenFile(&h, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &iosb, FILE_SHARE_READ,
                        FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT);
    check("ZwOpenFile-dir", st, STATUS_SUCCESS);
    if (st != STATUS_SUCCESS)
        return;
    imp_RtlInitUnicodeString(&pattern, L"*.bin");
    ULONG64 buf[128];
    int entries = 0;
    BOOLEAN restart = TRUE;
    for (;;) {
        st = imp_ZwQueryDirectoryFile(h, NULL, NULL, NULL, &iosb, buf, sizeof buf,
                                      FileBothDirectoryInformation, TRUE,
                                      restart ? &pattern : NULL, restart);
        restart = FALSE;
        if (st != STATUS_SUCCESS)
            break;
        FILE_BOTH_DIR_INFORMATION *e = (FILE_BOTH_DIR_INFORMATION *)buf;
        imp_DbgPrint("kapi: dirent %.*ws size=%I64d\n", (int)(e->FileNameLength / 2), e->FileName,
                     e->EndOfFile.QuadPart);
        entries++;
    }
    check("ZwQueryDirectoryFile-end", st, STATUS_NO_MORE_FILES);
    check("ZwQueryDirectoryFile-some", entries > 0, 1);
    imp_RtlInitUnicodeString(&pattern, L"*.none");
    st = imp_ZwQueryDirectoryFile(h, NULL, NULL, NULL, &iosb, buf, sizeof buf,
                                  FileNamesInformation, FALSE, &pattern, TRUE);
    check("ZwQueryDirectoryFile-nomatch", st, STATUS_NO_SUCH_FILE);
    imp_ZwClose(h);
}

/*
 * A file `mode.txt` next to test.bin makes the driver misuse the kernel
 * instead of checking it, so the host can check the bugcheck that follows.
 */
static void misbehave(const char *mode)
{
    KSPIN_LOCK lock = 0;
    ULONG64 local = 0;

    imp_DbgPrint("kapi: mode %s\n", mode);
    if (imp_strcmp(mode, "bugcheck") == 0) {
        /* The fourth parameter is KeBugCheckEx's fifth argument: the stack. */
        imp_KeBugCheckEx(0xE2, 0x1111, 0x2222, 0x3333, 0x4444);
    } else if (imp_strcmp(mode, "deadlock") == 0) {
        imp_KeAcquireSpinLockRaiseToDpc(&lock);
        imp_KeAcquireSpinLockRaiseToDpc(&lock);
    } else if (imp_strcmp(mode, "badfree") == 0) {
        imp_ExFreePoolWithTag(&local, TAG);
    } else if (imp_strcmp(mode, "stale-print") == 0) {
        imp_DbgPrint("kapi: %s\n", (const char *)0xFFFF840500000074ull);
    } else if (imp_strcmp(mode, "irql-down") == 0) {
        imp_KfRaiseIrql(DISPATCH_LEVEL);
        imp_KfRaiseIrql(PASSIVE_LEVEL);
    }
    imp_DbgPrint("kapi: survived %s\n", mode);
}

static int read_mode(char *mode, ULONG size)
{
    HANDLE h;
    IO_STATUS_BLOCK iosb;

    if (open_path(L"\\SystemRoot\\System32\\drivers\\kapi\\mode.txt", 0, &h) != STATUS_SUCCESS)
        return 0;
    imp_memset(mode, 0, size);
    NTSTATUS st = imp_ZwReadFile(h, NULL, NULL, NULL, &iosb, mode, size - 1, NULL, NULL);
    imp_ZwClose(h);
    return st == STATUS_SUCCESS;
}

NTSTATUS DriverEntry(PDRIVER_OBJECT driver, PUNICODE_STRING registry)
{
    char mode[32];

    (void)registry;
    imp_DbgPrint("kapi: start\n");
    if (read_mode(mode, sizeof mode)) {
        misbehave(mode);
        return STATUS_UNSUCCESSFUL;
    }
    check_abi();
    check_rtl();
    check_print();
    vprint("kapi: va %d %s %I64u\n", 1, "two", 3000000000000ull);
    check_irql();
    check_version();
    check_pool();
    check_misc(driver);
    check_notify();
    check_files();
    imp_DbgPrint("kapi: done failures=%d\n", failures);
    return failures == 0 ? STATUS_SUCCESS : STATUS_UNSUCCESSFUL;
}
