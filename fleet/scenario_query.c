/*
 * scenario_query.c — the values the loop asks a loaded scenario for while a
 * run goes: the Windows FILETIME of a virtual time, the share of a region
 * online at that hour, a draw from a delay distribution, and an endpoint's
 * rollout ring.
 *
 * These are pure functions of the scenario and their arguments (the
 * randomness comes in as a number), so a run stays a function of its seed.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "scenario-internal.h"

uint64_t scenario_filetime(const scenario *s, int64_t t_ms)
{
    /* 11644473600 s between 1601-01-01 and 1970-01-01. */
    return (uint64_t)((s->start_ms + t_ms) * 10000 + 116444736000000000ll);
}

const scenario_plan *scenario_find_plan(const scenario *s, const char *name)
{
    for (size_t i = 0; i < s->nplans; i++)
        if (strcmp(s->plans[i].name, name) == 0)
            return &s->plans[i];
    return NULL;
}

size_t scenario_ring_of(const scenario_plan *plan, const uint32_t attrs[SCENARIO_ATTR_COUNT],
                        double u)
{
    for (size_t r = 0; r + 1 < plan->nrings; r++) {
        const scenario_ring *ring = &plan->rings[r];
        if (ring->where_attr < 0) {
            if (u < ring->share)
                return r;
            continue;
        }
        for (size_t w = 0; w < ring->where.count; w++)
            if (ring->where_index && ring->where_index[w] == attrs[ring->where_attr])
                return r;
    }
    return plan->nrings ? plan->nrings - 1 : 0;
}

double scenario_online_share(const scenario *s, uint32_t region, int64_t t_ms)
{
    if (!s->online || region >= s->attrs[SCENARIO_ATTR_REGION].count)
        return 1.0;
    int64_t day_ms = (s->start_ms + t_ms) % (int64_t)MS_PER_DAY;
    if (day_ms < 0)
        day_ms += (int64_t)MS_PER_DAY;
    return s->online[region][day_ms / (int64_t)MS_PER_HOUR];
}

/* Inverse of the standard normal CDF (Acklam; relative error < 1.2e-9). */
static double probit(double p)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00, 2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                               2.445134137142996e+00, 3.754408661907416e+00};
    double q, r;
    if (p < 0.02425) {
        q = sqrt(-2 * log(p));
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    if (p > 1 - 0.02425) {
        q = sqrt(-2 * log(1 - p));
        return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    q = p - 0.5;
    r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

uint64_t scenario_dist_draw(const scenario_dist *dist, uint64_t random)
{
    switch (dist->kind) {
    case SCENARIO_DIST_UNIFORM: {
        uint64_t span = dist->b_ms - dist->a_ms;
        return dist->a_ms + (span == UINT64_MAX ? random : random % (span + 1));
    }
    case SCENARIO_DIST_LOGNORMAL: {
        double u = ((double)(random >> 11) + 0.5) * 0x1p-53; /* in (0, 1) */
        double sigma = log((double)dist->b_ms / (double)dist->a_ms) / 1.6448536269514722;
        double v = (double)dist->a_ms * exp(sigma * probit(u));
        double cap = (double)dist->b_ms * 1000.0; /* a far tail, not forever */
        return (uint64_t)(v < cap ? v : cap);
    }
    default:
        return dist->a_ms;
    }
}
