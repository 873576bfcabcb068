/*
 * stats.c — binomial confidence intervals for fault rates.
 *
 * Crashes are rare counts, and a cohort may have a handful of endpoints, so
 * the normal approximation's interval (which collapses to [0, 0] at zero
 * faults) would claim certainty the data do not have.  Wilson's score
 * interval is the default (DESIGN.md, "Gates and buckets"); the exact
 * Clopper-Pearson interval is there for those who ask for it.  Test values
 * are in DESIGN.md and tests/test_report.c.
 */
#include <math.h>

#include "report.h"

void report_wilson(uint64_t k, uint64_t n, double z, double *lo, double *hi)
{
    if (n == 0) {
        *lo = 0.0;
        *hi = 1.0;
        return;
    }
    double nn = (double)n, p = (double)k / nn, z2 = z * z;
    double centre = (p + z2 / (2 * nn)) / (1 + z2 / nn);
    double half = z / (1 + z2 / nn) * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
    *lo = k == 0 ? 0.0 : fmax(0.0, centre - half);
    *hi = k == n ? 1.0 : fmin(1.0, centre + half);
}

/*
 * The regularized incomplete beta function I_x(a, b), by the continued
 * fraction of Numerical Recipes (modified Lentz), which converges fast for
 * x < (a + 1) / (a + b + 2); the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) covers
 * the rest.
 */
static double beta_cf(double a, double b, double x)
{
    const double tiny = 1e-300;
    double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
    if (fabs(d) < tiny)
        d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 10000; m++) {
        double m2 = 2.0 * m;
        double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1.0 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1.0 / d;
        h *= d * c;
        aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
        d = 1.0 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1.0 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < 1e-15)
            break;
    }
    return h;
}

static double ibeta(double a, double b, double x)
{
    if (x <= 0.0)
        return 0.0;
    if (x >= 1.0)
        return 1.0;
    double front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
    if (x < (a + 1.0) / (a + b + 2.0))
        return front * beta_cf(a, b, x) / a;
    return 1.0 - front * beta_cf(b, a, 1.0 - x) / b;
}

/* The x in [0, 1] with I_x(a, b) = p: bisection, monotone and sure. */
static double ibeta_inv(double a, double b, double p)
{
    double lo = 0.0, hi = 1.0;
    for (int i = 0; i < 200 && hi - lo > 1e-15; i++) {
        double mid = (lo + hi) / 2;
        if (ibeta(a, b, mid) < p)
            lo = mid;
        else
            hi = mid;
    }
    return (lo + hi) / 2;
}

void report_clopper_pearson(uint64_t k, uint64_t n, double alpha, double *lo, double *hi)
{
    if (n == 0) {
        *lo = 0.0;
        *hi = 1.0;
        return;
    }
    double kk = (double)k, nn = (double)n;
    *lo = k == 0 ? 0.0 : ibeta_inv(kk, nn - kk + 1, alpha / 2);
    *hi = k == n ? 1.0 : ibeta_inv(kk + 1, nn - kk, 1 - alpha / 2);
}

void report_interval(report_interval_method m, uint64_t k, uint64_t n, double *lo, double *hi)
{
    if (m == REPORT_CLOPPER_PEARSON)
        report_clopper_pearson(k, n, 0.05, lo, hi);
    else
        report_wilson(k, n, 1.959963984540054, lo, hi);
}

/*
 * The Bayes factor of Lindon & Malek (NeurIPS 2022) for a rate difference
 * in counts: with the canary's share rho of exposure, n_control crashes
 * among the control group and n_canary among the canary, and prior strength
 * k, BF = B(k rho + N_B, k (1 - rho) + N_A) / B(k rho, k (1 - rho)) /
 * (rho^N_B (1 - rho)^N_A).  Computed in logs; test value in DESIGN.md.
 */
static double log_beta(double a, double b)
{
    return lgamma(a) + lgamma(b) - lgamma(a + b);
}

double report_bayes_factor(uint64_t n_control, uint64_t n_canary, double rho, double k)
{
    if (!(rho > 0.0 && rho < 1.0) || !(k > 0.0))
        return 1.0;
    double na = (double)n_control, nb = (double)n_canary;
    double l = log_beta(k * rho + nb, k * (1 - rho) + na) - log_beta(k * rho, k * (1 - rho)) -
               nb * log(rho) - na * log1p(-rho);
    return l > 700 ? HUGE_VAL : exp(l);
}
