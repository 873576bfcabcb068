/*
 * support.h — what the integration tests and the benchmark share: finding
 * the driver images the build made, and running one endpoint.
 */
#ifndef FLEETSIM_TESTS_SUPPORT_H
#define FLEETSIM_TESTS_SUPPORT_H

#include "sim.h"

/* $FLEETSIM_IMAGES/<name>.sys parsed; aborts the test program on failure. */
sim_image *support_image(const char *name);
/* A new engine; aborts on failure. */
sim_engine *support_engine(void);
/* Run `image` alone: default profile unless given, no files, no events. */
void support_run(sim_engine *engine, const sim_image *image,
                 const sim_profile *profile, uint64_t seed, sim_outcome *out);
/* Run a fully described endpoint; aborts when sim_engine_run fails. */
void support_run_full(sim_engine *engine, const sim_run *run, sim_outcome *out);
/* Print an outcome the way a failing test wants to see it (stderr). */
void support_dump(const sim_outcome *out);

#endif
