/*
 * store_fixture.h — what tests that write stores by hand share
 * (test_store.c, report_fixture.c).
 */
#ifndef FLEETSIM_STORE_FIXTURE_H
#define FLEETSIM_STORE_FIXTURE_H

#include <stdint.h>

#include "store.h"

/*
 * store_write_timeline_event with a seq that keeps (endpoint, time, seq)
 * unique: 0 for an endpoint's first event at a virtual time, then 1, 2, ...
 * (the run loop numbers an endpoint's events through the whole run; either
 * orders the events at one time).  For fixtures that write each endpoint's
 * events at one time one after the other; fails the test when the store
 * refuses.
 */
void timeline_event(store *st, uint64_t endpoint_id, int64_t vt_ms, store_timeline_kind kind,
                    const char *detail);

#endif
