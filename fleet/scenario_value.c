/*
 * scenario_value.c — the strict value syntaxes of a scenario: shares
 * ("12.5%"), durations ("1h30m", units largest first, each once) and UTC
 * times ("2024-07-19T04:09:00Z", with an optional offset).
 *
 * The YAML parser (scenario.c) reads every such value through these
 * functions, and so does --duration (scenario_check.c), so a value means the
 * same wherever it is written.  Each refuses what is almost right instead of
 * guessing: no sign, no exponent, no ".5", no 31st of April.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scenario-internal.h"
#include "yamldoc.h"

/* A non-negative decimal: "12", "12.5" (no sign, no exponent, no ".5"). */
bool scenario__parse_decimal(const char *text, double *out)
{
    const char *s = text;
    if (!isdigit((unsigned char)*s))
        return false;
    while (isdigit((unsigned char)*s))
        s++;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return false;
        while (isdigit((unsigned char)*s))
            s++;
    }
    if (*s != '\0' || s - text > 32)
        return false;
    *out = strtod(text, NULL);
    return isfinite(*out);
}

bool scenario_parse_share(const char *text, double *fraction)
{
    size_t n = text ? strlen(text) : 0;
    char buf[40];
    double pct;
    if (n < 2 || n >= sizeof buf || text[n - 1] != '%')
        return false;
    memcpy(buf, text, n - 1);
    buf[n - 1] = '\0';
    if (!scenario__parse_decimal(buf, &pct) || pct > 100.0)
        return false;
    *fraction = pct / 100.0;
    return true;
}

/* 100 years: longer than any scenario, short enough to add safely. */
#define MAX_DURATION_MS (100ull * 366 * MS_PER_DAY)

bool scenario_parse_duration(const char *text, uint64_t *ms)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"d", MS_PER_DAY}, {"h", MS_PER_HOUR}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    if (!text || !*text)
        return false;
    if (strcmp(text, "0") == 0) {
        *ms = 0;
        return true;
    }
    const char *s = text;
    uint64_t total = 0;
    size_t next = 0; /* units must come largest first, each once */
    while (*s) {
        uint64_t v;
        if (!sim_yaml_parse_digits(&s, &v))
            return false;
        size_t u;
        if (s[0] == 'm' && s[1] == 's')
            u = 4;
        else if (s[0] == 'd')
            u = 0;
        else if (s[0] == 'h')
            u = 1;
        else if (s[0] == 'm')
            u = 2;
        else if (s[0] == 's')
            u = 3;
        else
            return false;
        if (u < next)
            return false;
        next = u + 1;
        s += strlen(units[u].unit);
        if (v > (UINT64_MAX / 4) / units[u].ms || total > UINT64_MAX / 4)
            return false;
        total += v * units[u].ms;
    }
    if (total > MAX_DURATION_MS)
        return false; /* keeps every virtual time sum far from overflow */
    *ms = total;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool fixed_digits(const char **p, unsigned n, unsigned *out)
{
    unsigned v = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + (unsigned)((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

bool scenario_parse_time(const char *text, int64_t *unix_ms)
{
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *s = text;
    unsigned y, mo, d, h, mi, sec = 0, ms = 0;
    if (!s || !fixed_digits(&s, 4, &y) || *s++ != '-' || !fixed_digits(&s, 2, &mo) ||
        *s++ != '-' || !fixed_digits(&s, 2, &d) || *s++ != 'T' || !fixed_digits(&s, 2, &h) ||
        *s++ != ':' || !fixed_digits(&s, 2, &mi))
        return false;
    if (*s == ':') {
        s++;
        if (!fixed_digits(&s, 2, &sec))
            return false;
        if (*s == '.') {
            s++;
            unsigned digits = 0;
            while (isdigit((unsigned char)*s) && digits < 3) {
                ms = ms * 10 + (unsigned)(*s++ - '0');
                digits++;
            }
            if (digits == 0 || isdigit((unsigned char)*s))
                return false;
            while (digits++ < 3)
                ms *= 10;
        }
    }
    int64_t offset_min = 0;
    if (*s == 'Z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1;
        unsigned oh, om;
        if (!fixed_digits(&s, 2, &oh) || *s++ != ':' || !fixed_digits(&s, 2, &om) || oh > 23 ||
            om > 59)
            return false;
        offset_min = sign * (int64_t)(oh * 60 + om);
    } else {
        return false;
    }
    if (*s != '\0' || y < 1601 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return false;
    int64_t days = days_from_civil(y, mo, d);
    *unix_ms = ((days * 24 + h) * 60 + mi - offset_min) * 60000 + (int64_t)sec * 1000 + ms;
    return true;
}
