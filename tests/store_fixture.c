/*
 * store_fixture.c — see store_fixture.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <cmocka.h>

#include "store_fixture.h"

void timeline_event(store *st, uint64_t endpoint_id, int64_t vt_ms, store_timeline_kind kind,
                    const char *detail)
{
    static store *last_store;
    static uint64_t last_id;
    static int64_t last_ms;
    static uint32_t seq;
    if (st == last_store && endpoint_id == last_id && vt_ms == last_ms) {
        seq++;
    } else {
        last_store = st;
        last_id = endpoint_id;
        last_ms = vt_ms;
        seq = 0;
    }
    char err[512];
    if (store_write_timeline_event(st, endpoint_id, vt_ms, seq, kind, detail, err,
                                   sizeof err) != 0)
        fail_msg("store_write_timeline_event: %s", err);
}
