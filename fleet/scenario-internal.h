/*
 * scenario-internal.h — what the files of the scenario loader share and no
 * one else sees: scenario.c (the YAML parser), inventory.c (the inventory
 * CSV), scenario_value.c (the strict value syntaxes), scenario_check.c
 * (names, content and overrides after parsing) and scenario_query.c (the
 * values the loop asks for).  The public API is scenario.h; the double
 * underscore marks these names as internal.  scenario_names.c indexes and
 * binds the cohorts' names.
 */
#ifndef FLEETSIM_SCENARIO_INTERNAL_H
#define FLEETSIM_SCENARIO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "scenario.h"

#define MS_PER_SECOND 1000ull
#define MS_PER_HOUR 3600000ull
#define MS_PER_DAY 86400000ull

/* "file:line:column: ", "file:line: " or "file: " as the mark has them;
 * returns SIM_EFORMAT. */
int scenario__report(char *err, size_t errlen, scenario_mark mark, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A non-negative decimal: "12", "12.5" (no sign, no exponent, no ".5"). */
bool scenario__parse_decimal(const char *text, double *out);

void scenario__names_free(scenario_names *names);
/* The inventory's extra columns (inventory.c). */
void scenario__extras_free(scenario *s);

/*
 * Bind names to the fleet's (scenario_names.c): every online curve names a
 * region of the fleet and every region has a curve (its own or the
 * default); every ring selector's values are the fleet's.  Called after the
 * YAML, or after the inventory when there is one.
 */
int scenario__finish(scenario *s, char *err, size_t errlen);

/* scenario_names.c: the first entry, in list order, whose name an earlier
 * entry has (NULL if none); false when out of memory. */
bool scenario__repeated_name(const scenario_names *l, const scenario_name **repeat);

#endif
