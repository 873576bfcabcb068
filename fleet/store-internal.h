/*
 * store-internal.h — what the files of the run store share and no one else
 * sees: store.c (the SQLite store) and bucket.c (crash bucket keys).  The
 * public API is store.h; the double underscore marks these names as
 * internal.
 */
#ifndef FLEETSIM_STORE_INTERNAL_H
#define FLEETSIM_STORE_INTERNAL_H

#include <stddef.h>

#include "sim.h"
#include "store.h"

/*
 * The frame a crash is blamed on, as its bucket key names it
 * ("module!function+0xoff"), within `room` bytes with its NUL.  store.c
 * writes it as the crash's symbol, so the column and the bucket agree.
 */
void store__blamed_frame(const sim_outcome *o, char *out, size_t room);

#endif
