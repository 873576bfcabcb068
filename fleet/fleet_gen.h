/*
 * fleet_gen.h — the endpoints of a scenario's fleet, generated on demand.
 *
 * Endpoint i's attributes are a pure function of (scenario seed, fleet size,
 * the shares, i), so any slice of the fleet — a shard of `--shard K/N` —
 * is generated on its own, without the rest, and equals the same slice of
 * the whole fleet.
 *
 * How: for each attribute the fleet size is apportioned to the cohorts
 * exactly (largest remainder: cohort sizes are floor(share × size) plus one
 * for the cohorts with the largest remainders, ties to the earlier name), so
 * cohort sizes match the shares at every fleet size.  Each attribute then
 * has its own seeded pseudo-random permutation of [0, size) (a 4-round
 * Feistel network with cycle walking), and endpoint i belongs to the cohort
 * whose range holds its permuted position.  Attributes are therefore
 * apportioned exactly and mixed independently; nothing per endpoint is
 * stored.  An inventory fleet is its rows, in order.
 *
 * An endpoint record is 16 bytes (fleet_endpoint); its own seed is
 * fleet_endpoint_seed(run seed, id), computed when needed.
 */
#ifndef FLEETSIM_FLEET_GEN_H
#define FLEETSIM_FLEET_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scenario.h"

/* One endpoint: indices into the scenario's attrs[] name tables. */
typedef struct fleet_endpoint {
    uint32_t id;             /* 0 .. fleet_size-1 */
    uint16_t profile, sensor, region;
    uint16_t reserved;       /* zero */
    uint32_t tenant;
} fleet_endpoint;

typedef struct fleet_gen fleet_gen;

/* Precompute the apportionment (a few bytes per cohort).  SIM_EINVAL when
 * an inventory fleet's rows are not loaded yet. */
int fleet_gen_create(const scenario *s, fleet_gen **out, char *err, size_t errlen);
void fleet_gen_destroy(fleet_gen *gen); /* accepts NULL */

uint64_t fleet_gen_size(const fleet_gen *gen);
/* Endpoint `id` (< size). */
void fleet_gen_endpoint(const fleet_gen *gen, uint64_t id, fleet_endpoint *out);
/* Endpoints first .. first+count-1 into out; SIM_ERANGE past the fleet. */
int fleet_gen_range(const fleet_gen *gen, uint64_t first, uint64_t count,
                    fleet_endpoint *out);
/* How many endpoints have value `index` of `attr` (exact, by construction). */
uint64_t fleet_gen_cohort_size(const fleet_gen *gen, scenario_attr attr, uint32_t index);

/*
 * Generate the whole fleet, or one shard of it: endpoints of shard k of n
 * (0 <= k < n; n = 1 for all) into a new array the caller frees with
 * sim_free.  `first` receives the first id of the shard.
 */
int fleet_generate(const scenario *s, uint32_t k, uint32_t n, fleet_endpoint **out,
                   uint64_t *first, uint64_t *count, char *err, size_t errlen);

/* Shard k of n: contiguous ids [first, first+count), sizes differing by <= 1. */
void fleet_shard_range(uint64_t size, uint32_t k, uint32_t n, uint64_t *first,
                       uint64_t *count);
/* "K/N" with 0 <= K < N. */
bool fleet_shard_parse(const char *text, uint32_t *k, uint32_t *n);

/* The endpoint's own seed: splitmix64(run_seed ^ splitmix64(id + 1)). */
uint64_t fleet_endpoint_seed(uint64_t run_seed, uint64_t id);
/* splitmix64 finaliser, shared by everything that derives seeds. */
uint64_t fleet_mix64(uint64_t x);

/*
 * Largest-remainder apportionment of `total` to `n` shares (any positive
 * scale): counts[i] sums to total.  Ties go to the lower index.  SIM_ENOMEM.
 */
int fleet_apportion(const double *shares, size_t n, uint64_t total, uint64_t *counts);

#endif
