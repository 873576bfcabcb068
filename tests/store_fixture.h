/*
 * store_fixture.h — what tests that write stores by hand share
 * (test_store.c, report_fixture.c): made-up outcomes and the store calls
 * that fail the test when the store refuses.
 */
#ifndef FLEETSIM_STORE_FIXTURE_H
#define FLEETSIM_STORE_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "sim.h"
#include "store.h"

/* A stack frame: module!function+offset at rip. */
void fill_frame(sim_frame *fr, const char *module, const char *function, uint64_t offset,
                uint64_t rip);

/*
 * A 0x50 read of a stale pointer (`mov r9d, [r8]`) in sensor!<function>+offset,
 * the image loaded at `base`: the stack is <function> < ProcessChannelFile <
 * an unnamed sensor frame < nt!IopLoadDriver, the disassembly quotes a word
 * (for the escaping of JSON and HTML), and the log has one line.  Free it.
 */
sim_outcome *crash_at(uint64_t base, const char *function, uint64_t offset);

/* A run that returned STATUS_SUCCESS from the process-notify callback. */
sim_outcome *ok_outcome(uint64_t base);

/* store_open, replacing the file or not. */
void open_store(const char *path, bool replace, store **st);

/*
 * store_write_timeline_event with a seq that keeps (endpoint, time, seq)
 * unique: 0 for an endpoint's first event at a virtual time, then 1, 2, ...
 * (the run loop numbers an endpoint's events through the whole run; either
 * orders the events at one time).  For fixtures that write each endpoint's
 * events at one time one after the other.
 */
void timeline_event(store *st, uint64_t endpoint_id, int64_t vt_ms, store_timeline_kind kind,
                    const char *detail);

#endif
