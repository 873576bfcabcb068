/*
 * kapi.c — the kernel API table: every ntoskrnl export fleetsim serves, in
 * the order SIM_KAPI_MAP lists them.  The loader asks it whether an import
 * can be bound (and to which stub: sim__kapi_address(index)); the engine asks
 * it which host function serves the stub the guest called.
 *
 * The table is generated from SIM_KAPI_MAP, so adding an export is one line
 * in sim-internal.h plus its sim__api_<Name> function.
 */
#include <string.h>
#include <strings.h>

#include "sim-internal.h"

typedef struct kapi_entry {
    const char *name;
    sim__api_fn fn;
} kapi_entry;

static const kapi_entry table[] = {
#define XX(name) { #name, sim__api_##name },
    SIM_KAPI_MAP(XX)
#undef XX
};

#define NTABLE (sizeof table / sizeof table[0])

/*
 * Exports that hal.dll carries on some Windows versions (x86 HALs exported
 * the IRQL and spin lock routines; x64 keeps KeStallExecutionProcessor
 * there).  A driver importing them from hal.dll binds to the same stubs.
 */
static const char *const hal_exports[] = {
    "KeGetCurrentIrql", "KeRaiseIrql", "KfRaiseIrql", "KeLowerIrql",
    "KfLowerIrql", "KeRaiseIrqlToDpcLevel", "KeStallExecutionProcessor",
    "KfAcquireSpinLock", "KfReleaseSpinLock", "KeAcquireSpinLockRaiseToDpc",
    "KeReleaseSpinLock", "KeQueryPerformanceCounter",
};

int sim__kapi_find(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < NTABLE; i++)
        if (strcmp(table[i].name, name) == 0)
            return (int)i;
    return -1;
}

sim__api_fn sim__kapi_fn(unsigned index)
{
    return index < NTABLE ? table[index].fn : NULL;
}

const char *sim__kapi_name_at(unsigned index)
{
    return index < NTABLE ? table[index].name : NULL;
}

static bool is_hal_export(const char *name)
{
    for (size_t i = 0; i < sizeof hal_exports / sizeof hal_exports[0]; i++)
        if (strcmp(hal_exports[i], name) == 0)
            return true;
    return false;
}

/* The filter manager's exports are FLTMGR.SYS's, never ntoskrnl's. */
static bool is_fltmgr_export(const char *name)
{
    return strncmp(name, "Flt", 3) == 0;
}

bool sim_kapi_implemented(const char *dll, const char *name)
{
    if (!dll || !name)
        return false;
    if (strcasecmp(dll, "fltmgr.sys") == 0)
        return is_fltmgr_export(name) && sim__kapi_find(name) >= 0;
    if (strcasecmp(dll, "ntoskrnl.exe") == 0)
        return !is_fltmgr_export(name) && sim__kapi_find(name) >= 0;
    if (strcasecmp(dll, "hal.dll") == 0)
        return is_hal_export(name) && sim__kapi_find(name) >= 0;
    return false;
}

size_t sim_kapi_count(void)
{
    return NTABLE;
}

const char *sim_kapi_name(size_t i)
{
    return i < NTABLE ? table[i].name : NULL;
}
