/*
 * kapi_ke.c — the kernel core a driver leans on: bugchecks, time, IRQL,
 * spin locks, the current thread and processor, waits, system routine
 * lookup, and process notifications.
 *
 * The machine is a single processor.  IRQL lives in ep->irql (the engine
 * mirrors the guest's `mov cr8` into it), time is the endpoint's virtual
 * clock, and a spin lock is the guest's own ULONG_PTR: 0 free, 1 held.
 * Misuse a checked kernel would catch ends the run with that bugcheck:
 * raising IRQL to a lower level or lowering it to a higher one (as the
 * checked HAL does), and acquiring a spin lock this processor already
 * holds, which on a real machine spins forever at DISPATCH_LEVEL until the
 * DPC watchdog fires.
 */
#include <string.h>

#include "sim-internal.h"

#define STATUS_SUCCESS 0x00000000u
#define STATUS_INVALID_PARAMETER 0xC000000Du
#define STATUS_INSUFFICIENT_RESOURCES 0xC000009Au

#define PASSIVE_LEVEL 0
#define DISPATCH_LEVEL 2
#define HIGH_LEVEL 15

/* Not in SIM_BUGCHECK_MAP (yet): the checked HAL's IRQL direction check. */
#define BUGCHECK_IRQL_NOT_GREATER_OR_EQUAL 0x09u

/* KeQueryTimeIncrement: 15.625 ms in 100 ns units, the default clock. */
#define TIME_INCREMENT 156250u
/* DPC_WATCHDOG_VIOLATION p2: the cumulative watchdog period in ticks. */
#define DPC_WATCHDOG_PERIOD 0x1E00u

#define SYSTEM_PID 4u
#define SYSTEM_THREAD_ID 8u

/* ---- bugchecks --------------------------------------------------------- */

void sim__api_KeBugCheckEx(sim_endpoint *ep)
{
    uint32_t code = (uint32_t)sim__arg(ep, 0);
    uint64_t p1 = sim__arg(ep, 1), p2 = sim__arg(ep, 2), p3 = sim__arg(ep, 3);
    uint64_t p4 = sim__arg(ep, 4);

    if (ep->stopped)
        return;
    sim__bugcheck(ep, code, p1, p2, p3, p4, "the driver called KeBugCheckEx");
}

void sim__api_KeBugCheck(sim_endpoint *ep)
{
    sim__bugcheck(ep, (uint32_t)sim__arg(ep, 0), 0, 0, 0, 0,
                  "the driver called KeBugCheck");
}

/* ---- time -------------------------------------------------------------- */

static void write_u64(sim_endpoint *ep, uint64_t addr, uint64_t v)
{
    sim__write(ep, addr, &v, 8);
}

void sim__api_KeQuerySystemTime(sim_endpoint *ep)
{
    write_u64(ep, sim__arg(ep, 0), sim__system_time(ep));
}

void sim__api_KeQuerySystemTimePrecise(sim_endpoint *ep)
{
    write_u64(ep, sim__arg(ep, 0), sim__system_time(ep));
}

void sim__api_KeQueryTickCount(sim_endpoint *ep)
{
    write_u64(ep, sim__arg(ep, 0), sim__tick_count(ep));
}

void sim__api_KeQueryInterruptTime(sim_endpoint *ep)
{
    sim__ret(ep, sim__interrupt_time(ep));
}

void sim__api_KeQueryTimeIncrement(sim_endpoint *ep)
{
    sim__ret(ep, TIME_INCREMENT);
}

/* Let virtual time pass inside a call, and show it in KUSER_SHARED_DATA
 * for drivers that read the clock inline. */
static void advance_clock(sim_endpoint *ep, uint64_t ms)
{
    if (ms == 0)
        return;
    ep->now_ms += ms;
    sim__update_shared_data(ep);
}

void sim__api_KeDelayExecutionThread(sim_endpoint *ep)
{
    uint64_t interval_ptr = sim__arg(ep, 2);
    int64_t interval;

    if (sim__read(ep, interval_ptr, &interval, 8) < 0)
        return;
    /* Negative: relative, in 100 ns units.  Positive: an absolute system
     * time to wake at. */
    uint64_t ticks;
    if (interval < 0) {
        ticks = interval == INT64_MIN ? UINT64_MAX / 2 : (uint64_t)-interval;
    } else {
        uint64_t now = sim__system_time(ep);
        ticks = (uint64_t)interval > now ? (uint64_t)interval - now : 0;
    }
    advance_clock(ep, ticks / 10000u);
    sim__ret(ep, STATUS_SUCCESS);
}

void sim__api_KeStallExecutionProcessor(sim_endpoint *ep)
{
    /* A busy wait in microseconds: whole milliseconds move the clock. */
    advance_clock(ep, (uint32_t)sim__arg(ep, 0) / 1000u);
}

/* ---- IRQL -------------------------------------------------------------- */

/*
 * Set IRQL from a raise (new must not be lower) or a lower (new must not be
 * higher).  Returns the old IRQL, or -1 after bugchecking.
 */
static int raise_to(sim_endpoint *ep, uint8_t new_irql)
{
    uint8_t old = ep->irql;

    if (new_irql > HIGH_LEVEL || new_irql < old) {
        sim__bugcheck(ep, BUGCHECK_IRQL_NOT_GREATER_OR_EQUAL, old, new_irql, 0, 9,
                      "IRQL raised to a level below the current one");
        return -1;
    }
    ep->irql = new_irql;
    return old;
}

static bool lower_to(sim_endpoint *ep, uint8_t new_irql)
{
    if (new_irql > ep->irql) {
        sim__bugcheck(ep, SIM_BUGCHECK_IRQL_NOT_LESS_OR_EQUAL, new_irql, ep->irql,
                      0, 9, "IRQL lowered to a level above the current one");
        return false;
    }
    ep->irql = new_irql;
    return true;
}

void sim__api_KeGetCurrentIrql(sim_endpoint *ep)
{
    sim__ret(ep, ep->irql);
}

void sim__api_KfRaiseIrql(sim_endpoint *ep)
{
    int old = raise_to(ep, (uint8_t)sim__arg(ep, 0));

    if (old >= 0)
        sim__ret(ep, (uint64_t)old);
}

void sim__api_KeRaiseIrql(sim_endpoint *ep)
{
    /* The exported form: (NewIrql, PKIRQL OldIrql). */
    uint64_t old_ptr = sim__arg(ep, 1);
    int old = raise_to(ep, (uint8_t)sim__arg(ep, 0));

    if (old >= 0) {
        uint8_t o = (uint8_t)old;
        sim__write(ep, old_ptr, &o, 1);
    }
}

void sim__api_KeLowerIrql(sim_endpoint *ep)
{
    lower_to(ep, (uint8_t)sim__arg(ep, 0));
}

void sim__api_KfLowerIrql(sim_endpoint *ep)
{
    lower_to(ep, (uint8_t)sim__arg(ep, 0));
}

void sim__api_KeRaiseIrqlToDpcLevel(sim_endpoint *ep)
{
    int old = raise_to(ep, DISPATCH_LEVEL);

    if (old >= 0)
        sim__ret(ep, (uint64_t)old);
}

/* ---- spin locks -------------------------------------------------------- */

void sim__api_KeInitializeSpinLock(sim_endpoint *ep)
{
    write_u64(ep, sim__arg(ep, 0), 0);
}

/* Take the lock at `lock`; false after a fault or the deadlock bugcheck. */
static bool take_lock(sim_endpoint *ep, uint64_t lock)
{
    uint64_t v;

    if (sim__read(ep, lock, &v, 8) < 0)
        return false;
    if (v & 1) {
        /* One processor, lock held: it would spin at DISPATCH_LEVEL until
         * the watchdog's cumulative timeout fires. */
        sim__bugcheck(ep, SIM_BUGCHECK_DPC_WATCHDOG_VIOLATION, 1,
                      DPC_WATCHDOG_PERIOD, 0, 0,
                      "spin lock acquired again while held (deadlock on one CPU)");
        return false;
    }
    v |= 1;
    return sim__write(ep, lock, &v, 8) == 0;
}

static bool drop_lock(sim_endpoint *ep, uint64_t lock)
{
    uint64_t zero = 0;

    return sim__write(ep, lock, &zero, 8) == 0;
}

static void acquire_raise(sim_endpoint *ep)
{
    uint64_t lock = sim__arg(ep, 0);
    uint8_t old = ep->irql;

    if (!take_lock(ep, lock))
        return;
    if (raise_to(ep, DISPATCH_LEVEL) < 0)
        return;
    sim__ret(ep, old);
}

static void release_lower(sim_endpoint *ep)
{
    uint64_t lock = sim__arg(ep, 0);
    uint8_t new_irql = (uint8_t)sim__arg(ep, 1);

    if (drop_lock(ep, lock))
        lower_to(ep, new_irql);
}

void sim__api_KeAcquireSpinLockRaiseToDpc(sim_endpoint *ep)
{
    acquire_raise(ep);
}

void sim__api_KfAcquireSpinLock(sim_endpoint *ep)
{
    acquire_raise(ep);
}

void sim__api_KeReleaseSpinLock(sim_endpoint *ep)
{
    release_lower(ep);
}

void sim__api_KfReleaseSpinLock(sim_endpoint *ep)
{
    release_lower(ep);
}

void sim__api_KeAcquireSpinLockAtDpcLevel(sim_endpoint *ep)
{
    take_lock(ep, sim__arg(ep, 0));
}

void sim__api_KeReleaseSpinLockFromDpcLevel(sim_endpoint *ep)
{
    drop_lock(ep, sim__arg(ep, 0));
}

/* ---- threads and processors -------------------------------------------- */

void sim__api_KeGetCurrentThread(sim_endpoint *ep)
{
    sim__ret(ep, SIM__NTDATA_BASE + SIM__KTHREAD_OFFSET);
}

void sim__api_KeGetCurrentProcessorNumberEx(sim_endpoint *ep)
{
    uint64_t number = sim__arg(ep, 0);

    /* PROCESSOR_NUMBER: USHORT Group, UCHAR Number, UCHAR Reserved. */
    if (number) {
        uint8_t zero[4] = {0};
        if (sim__write(ep, number, zero, sizeof zero) < 0)
            return;
    }
    sim__ret(ep, 0);
}

void sim__api_PsGetCurrentProcessId(sim_endpoint *ep)
{
    /* Drivers load and run their callbacks here in the System process. */
    sim__ret(ep, SYSTEM_PID);
}

void sim__api_PsGetCurrentThreadId(sim_endpoint *ep)
{
    sim__ret(ep, SYSTEM_THREAD_ID);
}

void sim__api_PsGetVersion(sim_endpoint *ep)
{
    const sim_profile *pr = ep->profile;
    uint64_t major = sim__arg(ep, 0), minor = sim__arg(ep, 1);
    uint64_t build = sim__arg(ep, 2), csd = sim__arg(ep, 3);

    if (major && sim__write(ep, major, &pr->major, 4) < 0)
        return;
    if (minor && sim__write(ep, minor, &pr->minor, 4) < 0)
        return;
    if (build && sim__write(ep, build, &pr->build, 4) < 0)
        return;
    if (csd) {
        /* A UNICODE_STRING the caller owns: filled as far as it holds. */
        uint8_t hdr[16];
        uint16_t max, len = 0;
        uint64_t buf;
        if (sim__read(ep, csd, hdr, sizeof hdr) < 0)
            return;
        memcpy(&max, hdr + 2, 2);
        memcpy(&buf, hdr + 8, 8);
        for (size_t i = 0; pr->csd[i] && len + 2u <= max; i++, len += 2) {
            uint16_t w = (uint8_t)pr->csd[i];
            if (sim__write(ep, buf + len, &w, 2) < 0)
                return;
        }
        if (sim__write(ep, csd, &len, 2) < 0)
            return;
    }
    /* TRUE for a checked build: these are free builds. */
    sim__ret(ep, 0);
}

/* ---- system routines and memory ---------------------------------------- */

void sim__api_MmGetSystemRoutineAddress(sim_endpoint *ep)
{
    char name[128];

    if (sim__read_unicode_string(ep, sim__arg(ep, 0), name, sizeof name) < 0)
        return;
    /*
     * The address exists only when this OS build has the export (how a
     * driver detects ExAllocatePool2 on builds before 2004) and fleetsim
     * serves it; an export the build has but fleetsim lacks looks absent.
     */
    int index = sim__kapi_find(name);
    if (index >= 0 && sim_profile_has_export(ep->profile, name))
        sim__ret(ep, sim__kapi_address((unsigned)index));
    else
        sim__ret(ep, 0);
}

void sim__api_MmIsAddressValid(sim_endpoint *ep)
{
    uint64_t addr = sim__arg(ep, 0);
    const sim_region *r = sim__region_at(ep, addr);

    sim__ret(ep, r && (r->prot & SIM_PROT_R) ? 1 : 0);
}

/* ---- process notifications --------------------------------------------- */

static void set_process_notify(sim_endpoint *ep, uint64_t routine, bool remove,
                               bool ex)
{
    size_t i;

    for (i = 0; i < ep->nprocess_notify; i++)
        if (ep->process_notify[i] == routine && ep->process_notify_ex[i] == ex)
            break;
    if (remove) {
        if (i == ep->nprocess_notify) {
            sim__ret(ep, STATUS_INVALID_PARAMETER);
            return;
        }
        /* Keep registration order: callbacks run in it. */
        for (; i + 1 < ep->nprocess_notify; i++) {
            ep->process_notify[i] = ep->process_notify[i + 1];
            ep->process_notify_ex[i] = ep->process_notify_ex[i + 1];
        }
        ep->nprocess_notify--;
        sim__ret(ep, STATUS_SUCCESS);
        return;
    }
    if (routine == 0) {
        sim__ret(ep, STATUS_INVALID_PARAMETER);
        return;
    }
    if (i < ep->nprocess_notify) {
        /* Registering the same routine twice is refused by Windows. */
        sim__ret(ep, STATUS_INVALID_PARAMETER);
        return;
    }
    if (ep->nprocess_notify == SIM__MAX_NOTIFY) {
        sim__ret(ep, STATUS_INSUFFICIENT_RESOURCES);
        return;
    }
    ep->process_notify[ep->nprocess_notify] = routine;
    ep->process_notify_ex[ep->nprocess_notify] = ex;
    ep->nprocess_notify++;
    sim__ret(ep, STATUS_SUCCESS);
}

void sim__api_PsSetCreateProcessNotifyRoutine(sim_endpoint *ep)
{
    set_process_notify(ep, sim__arg(ep, 0), (uint8_t)sim__arg(ep, 1) != 0, false);
}

void sim__api_PsSetCreateProcessNotifyRoutineEx(sim_endpoint *ep)
{
    set_process_notify(ep, sim__arg(ep, 0), (uint8_t)sim__arg(ep, 1) != 0, true);
}
