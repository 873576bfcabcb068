/*
 * fleet_gen.c — endpoints of a fleet as a pure function of (seed, id).
 *
 * fleet_gen.h explains the scheme: exact largest-remainder apportionment per
 * attribute, and a seeded Feistel permutation per attribute that maps an
 * endpoint id to a position in the cohort ranges.  The permutation is what
 * makes a shard cheap: endpoint i is computed from i alone, in O(log cohorts),
 * with nothing stored per endpoint.  Why a Feistel network: it is a bijection
 * on [0, 2^2h) for any round function, and cycle walking (apply again while
 * the result is >= size) restricts it to a bijection on [0, size), so cohort
 * sizes stay exact.  The domain is at most 4 × size, so a walk takes fewer
 * than four steps on average.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_gen.h"
#include "sim.h"

_Static_assert(sizeof(fleet_endpoint) == 16, "fleet_endpoint stays 16 bytes");

#define FEISTEL_ROUNDS 4

struct fleet_gen {
    const scenario *s;
    uint64_t size;
    bool inventory;
    uint64_t *counts[SCENARIO_ATTR_COUNT]; /* endpoints per cohort */
    uint64_t *ends[SCENARIO_ATTR_COUNT];   /* cumulative: cohort c holds [ends[c-1], ends[c]) */
    size_t ncohorts[SCENARIO_ATTR_COUNT];
    uint64_t keys[SCENARIO_ATTR_COUNT][FEISTEL_ROUNDS];
    unsigned half;                         /* bits per Feistel half */
};

uint64_t fleet_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t fleet_endpoint_seed(uint64_t run_seed, uint64_t id)
{
    return fleet_mix64(run_seed ^ fleet_mix64(id + 1));
}

typedef struct remainder {
    long double rem;
    size_t index;
} remainder;

static int cmp_remainder(const void *a, const void *b)
{
    const remainder *x = a, *y = b;
    if (x->rem != y->rem)
        return x->rem < y->rem ? 1 : -1;
    return (x->index > y->index) - (x->index < y->index);
}

int fleet_apportion(const double *shares, size_t n, uint64_t total, uint64_t *counts)
{
    if (n == 0)
        return total ? SIM_EINVAL : 0;
    long double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += shares[i] > 0 ? shares[i] : 0;
    if (sum <= 0)
        return SIM_EINVAL;
    remainder *rems = sim_malloc(n * sizeof *rems);
    if (!rems)
        return SIM_ENOMEM;
    uint64_t given = 0;
    for (size_t i = 0; i < n; i++) {
        long double quota = (shares[i] > 0 ? shares[i] : 0) / sum * (long double)total;
        uint64_t floor_q = (uint64_t)quota;
        counts[i] = floor_q;
        given += floor_q;
        rems[i] = (remainder){quota - (long double)floor_q, i};
    }
    /* Rounding can leave the floors a hair above total; take back from the
     * last cohorts that have any. */
    for (size_t i = n; given > total && i-- > 0;) {
        uint64_t take = counts[i] < given - total ? counts[i] : given - total;
        counts[i] -= take;
        given -= take;
    }
    qsort(rems, n, sizeof *rems, cmp_remainder);
    for (size_t i = 0; given < total; i = (i + 1) % n) {
        if (shares[rems[i].index] > 0) {
            counts[rems[i].index]++;
            given++;
        }
    }
    sim_free(rems);
    return 0;
}

/* A bijection on [0, 2^(2*half)). */
static uint64_t feistel(const uint64_t key[FEISTEL_ROUNDS], unsigned half, uint64_t x)
{
    uint64_t mask = (1ull << half) - 1;
    uint64_t left = x >> half, right = x & mask;
    for (int r = 0; r < FEISTEL_ROUNDS; r++) {
        uint64_t next = left ^ (fleet_mix64(right ^ key[r]) & mask);
        left = right;
        right = next;
    }
    return left << half | right;
}

/* A bijection on [0, size), by cycle walking. */
static uint64_t permute(const fleet_gen *gen, scenario_attr a, uint64_t id)
{
    uint64_t x = id;
    do
        x = feistel(gen->keys[a], gen->half, x);
    while (x >= gen->size);
    return x;
}

static void fail_msg(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

int fleet_gen_create(const scenario *s, fleet_gen **out, char *err, size_t errlen)
{
    if (!s || !out)
        return SIM_EINVAL;
    *out = NULL;
    if (s->inventory && !s->inventory_loaded) {
        fail_msg(err, errlen, "the scenario's inventory is not loaded");
        return SIM_EINVAL;
    }
    if (s->fleet_size == 0 || s->fleet_size > SCENARIO_MAX_FLEET) {
        fail_msg(err, errlen, "the fleet is empty or too large");
        return SIM_EINVAL;
    }
    fleet_gen *gen = sim_calloc(1, sizeof *gen);
    if (!gen) {
        fail_msg(err, errlen, "out of memory");
        return SIM_ENOMEM;
    }
    gen->s = s;
    gen->size = s->fleet_size;
    gen->inventory = s->inventory != NULL;
    unsigned bits = 2;
    while (bits < 64 && (1ull << bits) < gen->size)
        bits++;
    gen->half = (bits + 1) / 2;

    int rc = 0;
    for (int a = 0; a < SCENARIO_ATTR_COUNT && rc == 0; a++) {
        const scenario_names *names = &s->attrs[a];
        size_t n = names->count;
        if (n == 0) {
            rc = SIM_EINVAL;
            break;
        }
        gen->ncohorts[a] = n;
        gen->counts[a] = sim_calloc(n, sizeof(uint64_t));
        gen->ends[a] = sim_calloc(n, sizeof(uint64_t));
        double *shares = sim_calloc(n, sizeof *shares);
        if (!gen->counts[a] || !gen->ends[a] || !shares) {
            sim_free(shares);
            rc = SIM_ENOMEM;
            break;
        }
        if (gen->inventory) {
            for (uint64_t i = 0; i < gen->size; i++) {
                const scenario_row *row = &s->rows[i];
                uint32_t v = a == SCENARIO_ATTR_PROFILE  ? row->profile
                             : a == SCENARIO_ATTR_SENSOR ? row->sensor
                             : a == SCENARIO_ATTR_REGION ? row->region
                                                         : row->tenant;
                gen->counts[a][v]++;
            }
        } else {
            for (size_t i = 0; i < n; i++)
                shares[i] = names->items[i].share;
            rc = fleet_apportion(shares, n, gen->size, gen->counts[a]);
        }
        sim_free(shares);
        uint64_t end = 0;
        for (size_t i = 0; i < n; i++)
            gen->ends[a][i] = end += gen->counts[a][i];
        for (int r = 0; r < FEISTEL_ROUNDS; r++)
            gen->keys[a][r] = fleet_mix64(s->seed ^ fleet_mix64(0x5ce7a410ull + (uint64_t)a * 8 + (uint64_t)r));
    }
    if (rc) {
        fail_msg(err, errlen, rc == SIM_ENOMEM ? "out of memory" : "a fleet attribute has no values");
        fleet_gen_destroy(gen);
        return rc;
    }
    *out = gen;
    return 0;
}

void fleet_gen_destroy(fleet_gen *gen)
{
    if (!gen)
        return;
    for (int a = 0; a < SCENARIO_ATTR_COUNT; a++) {
        sim_free(gen->counts[a]);
        sim_free(gen->ends[a]);
    }
    sim_free(gen);
}

uint64_t fleet_gen_size(const fleet_gen *gen)
{
    return gen ? gen->size : 0;
}

/* The cohort whose range holds pos: the first with ends[c] > pos. */
static uint32_t cohort_at(const fleet_gen *gen, scenario_attr a, uint64_t pos)
{
    size_t lo = 0, hi = gen->ncohorts[a] - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (gen->ends[a][mid] > pos)
            hi = mid;
        else
            lo = mid + 1;
    }
    return (uint32_t)lo;
}

void fleet_gen_endpoint(const fleet_gen *gen, uint64_t id, fleet_endpoint *out)
{
    memset(out, 0, sizeof *out);
    out->id = (uint32_t)id;
    if (gen->inventory) {
        const scenario_row *row = &gen->s->rows[id];
        out->profile = row->profile;
        out->sensor = row->sensor;
        out->region = row->region;
        out->tenant = row->tenant;
        return;
    }
    out->profile = (uint16_t)cohort_at(gen, SCENARIO_ATTR_PROFILE,
                                       permute(gen, SCENARIO_ATTR_PROFILE, id));
    out->sensor = (uint16_t)cohort_at(gen, SCENARIO_ATTR_SENSOR,
                                      permute(gen, SCENARIO_ATTR_SENSOR, id));
    out->region = (uint16_t)cohort_at(gen, SCENARIO_ATTR_REGION,
                                      permute(gen, SCENARIO_ATTR_REGION, id));
    out->tenant = cohort_at(gen, SCENARIO_ATTR_TENANT, permute(gen, SCENARIO_ATTR_TENANT, id));
}

int fleet_gen_range(const fleet_gen *gen, uint64_t first, uint64_t count, fleet_endpoint *out)
{
    if (!gen || (!out && count))
        return SIM_EINVAL;
    if (first > gen->size || count > gen->size - first)
        return SIM_ERANGE;
    for (uint64_t i = 0; i < count; i++)
        fleet_gen_endpoint(gen, first + i, &out[i]);
    return 0;
}

uint64_t fleet_gen_cohort_size(const fleet_gen *gen, scenario_attr attr, uint32_t index)
{
    if (!gen || (unsigned)attr >= SCENARIO_ATTR_COUNT || index >= gen->ncohorts[attr])
        return 0;
    return gen->counts[attr][index];
}

void fleet_shard_range(uint64_t size, uint32_t k, uint32_t n, uint64_t *first, uint64_t *count)
{
    if (n == 0 || k >= n) {
        *first = *count = 0;
        return;
    }
    /* size <= 2^32 and n < 2^32, so the products fit. */
    uint64_t begin = (uint64_t)((unsigned __int128)size * k / n);
    uint64_t end = (uint64_t)((unsigned __int128)size * (k + 1) / n);
    *first = begin;
    *count = end - begin;
}

bool fleet_shard_parse(const char *text, uint32_t *k, uint32_t *n)
{
    uint64_t v[2] = {0, 0};
    const char *s = text;
    for (int part = 0; part < 2; part++) {
        if (!s || *s < '0' || *s > '9')
            return false;
        for (; *s >= '0' && *s <= '9'; s++) {
            v[part] = v[part] * 10 + (uint64_t)(*s - '0');
            if (v[part] > UINT32_MAX)
                return false;
        }
        if (part == 0 && *s++ != '/')
            return false;
    }
    if (*s != '\0' || v[1] == 0 || v[0] >= v[1])
        return false;
    *k = (uint32_t)v[0];
    *n = (uint32_t)v[1];
    return true;
}

int fleet_generate(const scenario *s, uint32_t k, uint32_t n, fleet_endpoint **out,
                   uint64_t *first, uint64_t *count, char *err, size_t errlen)
{
    if (!s || !out || !first || !count || n == 0 || k >= n) {
        fail_msg(err, errlen, "invalid shard");
        return SIM_EINVAL;
    }
    *out = NULL;
    fleet_gen *gen;
    int rc = fleet_gen_create(s, &gen, err, errlen);
    if (rc)
        return rc;
    fleet_shard_range(gen->size, k, n, first, count);
    fleet_endpoint *eps = sim_calloc(*count ? (size_t)*count : 1, sizeof *eps);
    if (!eps) {
        fleet_gen_destroy(gen);
        fail_msg(err, errlen, "out of memory");
        return SIM_ENOMEM;
    }
    fleet_gen_range(gen, *first, *count, eps);
    fleet_gen_destroy(gen);
    *out = eps;
    return 0;
}
