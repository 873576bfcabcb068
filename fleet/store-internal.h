/*
 * store-internal.h — what the files of the run store share and no one else
 * sees: store.c (the SQLite store), bucket.c (crash bucket keys) and
 * store_merge.c (shards into one store).  The
 * public API is store.h; the double underscore marks these names as
 * internal.
 */
#ifndef FLEETSIM_STORE_INTERNAL_H
#define FLEETSIM_STORE_INTERNAL_H

#include <stddef.h>

#include <sqlite3.h>

#include "sim.h"
#include "store.h"

/*
 * The frame a crash is blamed on, as its bucket key names it
 * ("module!function+0xoff"), within `room` bytes with its NUL.  store.c
 * writes it as the crash's symbol, so the column and the bucket agree.
 */
void store__blamed_frame(const sim_outcome *o, char *out, size_t room);

/* The store's connection, and "fill err, return rc" as store.c does. */
sqlite3 *store__db(store *st);
int store__report(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
