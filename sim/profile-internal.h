/*
 * profile-internal.h — the profile parser's entry point below the file
 * layer, for the fuzz target and the unit tests.
 *
 * sim_profile_load() reads a file and hands its bytes here; a fuzzer wants
 * the bytes without the file.  Not API (double underscore): sim.h is.
 */
#ifndef FLEETSIM_PROFILE_INTERNAL_H
#define FLEETSIM_PROFILE_INTERNAL_H

#include <stddef.h>

#include "sim.h"

/* Limits of a profile file beyond those of sim.h's fixed buffers. */
#define SIM__PROFILE_MAX_BYTES (1u << 20)   /* a profile file, read whole */
#define SIM__PROFILE_MAX_EVENTS 4096
#define SIM__PROFILE_MAX_EVENT_NAME 512     /* bytes of an event's path */
#define SIM__PROFILE_MAX_FILES 4096         /* *.yaml files in a profiles dir */

/*
 * Parse `len` bytes of profile YAML; `path` names them in messages
 * ("path:line:column: what") and becomes the profile's source.
 */
int sim__profile_parse(const char *text, size_t len, const char *path,
                       sim_profile **out, char *err, size_t errlen);

#endif
