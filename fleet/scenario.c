/*
 * scenario.c — the scenario file parser.
 *
 * libyaml loads the file into a node tree (with line and column marks on
 * every node); this file walks it with a fixed schema.  Each mapping is read
 * through one helper (sim_yaml_fields, in sim/yamldoc.c, which the profile
 * loader shares) that refuses unknown and duplicate keys, so the schema of
 * a section is the key table next to the code that reads it.
 * Values go through the strict syntaxes at the end of the file (durations,
 * times, shares, whole numbers): a value that is almost right is refused,
 * not guessed at.
 *
 * Parsing happens in two steps because an inventory fleet only knows its
 * regions once the CSV is read: parse() reads the YAML, and finish() — after
 * the inventory, when there is one — binds the online curves to the fleet's
 * regions.  Names checked against what the caller loaded (profiles, sensor
 * versions) keep their marks, so scenario_check() can point at the YAML
 * line or the CSV row later.
 */
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "scenario.h"
#include "sim.h"
#include "yamldoc.h"

#define MS_PER_SECOND 1000ull
#define MS_PER_HOUR 3600000ull
#define MS_PER_DAY 86400000ull
#define SHARE_TOLERANCE 0.01 /* percentage points */

const char *scenario_attr_name(scenario_attr attr)
{
    static const char *const names[] = {
#define XX(name, str) str,
        SCENARIO_ATTR_MAP(XX)
#undef XX
    };
    return (unsigned)attr < SCENARIO_ATTR_COUNT ? names[attr] : "unknown";
}

/* ---- messages ---------------------------------------------------------- */

/* "file:line:column: ", "file:line: " or "file: " as the mark has them. */
static int report(char *err, size_t errlen, scenario_mark mark, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int report(char *err, size_t errlen, scenario_mark mark, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sim_yaml_vreport(err, errlen, mark.file, mark.line, mark.column, fmt, ap);
    va_end(ap);
    return SIM_EFORMAT;
}

/* ---- the strict value syntaxes ------------------------------------------ */

/* A non-negative decimal: "12", "12.5" (no sign, no exponent, no ".5"). */
static bool parse_decimal(const char *text, double *out)
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
    if (!parse_decimal(buf, &pct) || pct > 100.0)
        return false;
    *fraction = pct / 100.0;
    return true;
}

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

/* ---- the parser --------------------------------------------------------- */

/* How the shared walker words this loader's messages: "duplicate key "seed" in fleet". */
static const sim_yaml_wording wording = {
    .not_scalar = "expected %s, got %s",
    .nul_in_scalar = "NUL character in %s",
    .unknown_key = "unknown key \"%s\" in %s; known: ",
    .duplicate_key = "duplicate key \"%2$s\" in %1$s",
    .mark_cut = true,
};

typedef struct parser {
    sim_yaml_doc y;
    scenario *s;
    const char *text;
    size_t len;
} parser;

static scenario_mark mark_of(const parser *p, const yaml_node_t *n)
{
    return (scenario_mark){p->s->path, (uint32_t)n->start_mark.line + 1,
                           (uint32_t)n->start_mark.column + 1};
}

static int get_string(parser *p, yaml_node_t *n, const char *what, char **out)
{
    const char *text = NULL;
    int rc = sim_yaml_scalar(&p->y, n, what, &text);
    if (rc)
        return rc;
    char *copy = sim_strdup(text);
    if (!copy)
        return sim_yaml_nomem(p->y.err, p->y.errlen);
    sim_free(*out);
    *out = copy;
    return 0;
}

static int get_u64(parser *p, yaml_node_t *n, const char *what, uint64_t min, uint64_t max,
                   uint64_t *out)
{
    const char *text = NULL;
    int rc = sim_yaml_scalar(&p->y, n, what, &text);
    if (rc)
        return rc;
    uint64_t v;
    if (!sim_yaml_parse_u64(text, &v))
        return sim_yaml_fail(&p->y, n, "%s: expected a whole number, got \"%s\"", what, text);
    if (v < min || v > max)
        return sim_yaml_fail(&p->y, n, "%s: %s is out of range (%llu to %llu)", what, text,
                             (unsigned long long)min, (unsigned long long)max);
    *out = v;
    return 0;
}

static int get_duration(parser *p, yaml_node_t *n, const char *what, bool nonzero,
                        uint64_t *out)
{
    const char *text = NULL;
    int rc = sim_yaml_scalar(&p->y, n, what, &text);
    if (rc)
        return rc;
    if (!scenario_parse_duration(text, out))
        return sim_yaml_fail(&p->y, n,
                             "%s: expected a duration such as \"12h\", \"1h30m\", \"90s\", "
                             "\"250ms\", got \"%s\"", what, text);
    if (nonzero && *out == 0)
        return sim_yaml_fail(&p->y, n, "%s: must be longer than 0", what);
    return 0;
}

static int get_share(parser *p, yaml_node_t *n, const char *what, double *out)
{
    const char *text = NULL;
    int rc = sim_yaml_scalar(&p->y, n, what, &text);
    if (rc)
        return rc;
    if (!scenario_parse_share(text, out))
        return sim_yaml_fail(&p->y, n,
                             "%s: expected a share such as \"40%%\" or \"12.5%%\" (0%% to "
                             "100%%), got \"%s\"", what, text);
    return 0;
}

/* A point in time: a UTC timestamp, or "+duration"/"-duration" from start. */
static int get_time(parser *p, yaml_node_t *n, const char *what, int64_t *out)
{
    const char *text = NULL;
    int rc = sim_yaml_scalar(&p->y, n, what, &text);
    if (rc)
        return rc;
    uint64_t d;
    int64_t abs;
    if ((text[0] == '+' || text[0] == '-') && scenario_parse_duration(text + 1, &d) &&
        d <= (uint64_t)INT64_MAX / 2) {
        *out = text[0] == '-' ? -(int64_t)d : (int64_t)d;
        return 0;
    }
    if (scenario_parse_time(text, &abs)) {
        *out = abs - p->s->start_ms;
        return 0;
    }
    return sim_yaml_fail(&p->y, n,
                         "%s: expected a UTC time such as \"2024-07-19T04:09:00Z\" or an offset "
                         "from start such as \"+4h9m\", got \"%s\"", what, text);
}

static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SCENARIO_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == ',' ||
            name[i] == '"')
            return false;
    return true;
}

static void names_free(scenario_names *names)
{
    for (size_t i = 0; i < names->count; i++)
        sim_free(names->items[i].name);
    sim_free(names->items);
    names->items = NULL;
    names->count = 0;
}

/* Shares must sum to 100% (± SHARE_TOLERANCE points). */
static int check_sum(parser *p, yaml_node_t *n, const char *what, const scenario_names *names)
{
    double sum = 0;
    for (size_t i = 0; i < names->count; i++)
        sum += names->items[i].share;
    if (fabs(sum * 100.0 - 100.0) > SHARE_TOLERANCE)
        return sim_yaml_fail(&p->y, n, "%s: shares sum to %g%%, not 100%%", what, sum * 100.0);
    return 0;
}

/* name: share, ... — a cohort table. */
static int parse_shares(parser *p, yaml_node_t *n, const char *what, size_t max,
                        scenario_names *out)
{
    int rc = sim_yaml_expect(&p->y, n, YAML_MAPPING_NODE, what);
    if (rc)
        return rc;
    size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (count == 0)
        return sim_yaml_fail(&p->y, n, "%s: at least one is needed", what);
    if (count > max)
        return sim_yaml_fail(&p->y, n, "%s: %zu given, at most %zu", what, count, max);
    names_free(out);
    out->items = sim_calloc(count, sizeof *out->items);
    if (!out->items)
        return sim_yaml_nomem(p->y.err, p->y.errlen);
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *k = sim_yaml_node(&p->y, pair->key), *v = sim_yaml_node(&p->y, pair->value);
        const char *name = NULL;
        if ((rc = sim_yaml_scalar(&p->y, k, "a name", &name)))
            return rc;
        if (!valid_name(name))
            return sim_yaml_fail(&p->y, k,
                                 "%s: \"%s\" is not a usable name (1 to %d characters, no control "
                                 "characters, commas or quotes)", what, name, SCENARIO_NAME_MAX);
        for (size_t i = 0; i < out->count; i++)
            if (strcmp(out->items[i].name, name) == 0)
                return sim_yaml_fail(&p->y, k, "%s: \"%s\" is given twice", what, name);
        scenario_name *item = &out->items[out->count];
        if ((rc = get_share(p, v, what, &item->share)))
            return rc;
        if (!(item->name = sim_strdup(name)))
            return sim_yaml_nomem(p->y.err, p->y.errlen);
        item->mark = mark_of(p, k);
        out->count++;
    }
    return check_sum(p, n, what, out);
}

static int parse_tenants(parser *p, yaml_node_t *n)
{
    scenario *s = p->s;
    int rc = sim_yaml_expect(&p->y, n, YAML_MAPPING_NODE, "fleet.tenants");
    if (rc)
        return rc;
    bool generated = false;
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *k = sim_yaml_node(&p->y, pair->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, "count") == 0)
            generated = true;
    }
    if (!generated)
        return parse_shares(p, n, "fleet.tenants", SCENARIO_MAX_TENANTS,
                            &s->attrs[SCENARIO_ATTR_TENANT]);

    static const char *const keys[] = {"count", "zipf"};
    yaml_node_t *v[2], *k[2];
    if ((rc = sim_yaml_fields(&p->y, n, "fleet.tenants", keys, 2, v, k)))
        return rc;
    uint64_t count;
    if ((rc = get_u64(p, v[0], "fleet.tenants.count", 1, SCENARIO_MAX_TENANTS, &count)))
        return rc;
    double zipf = 1.0;
    if (v[1]) {
        const char *text = NULL;
        if ((rc = sim_yaml_scalar(&p->y, v[1], "fleet.tenants.zipf", &text)))
            return rc;
        if (!parse_decimal(text, &zipf) || zipf > 10.0)
            return sim_yaml_fail(&p->y, v[1],
                                 "fleet.tenants.zipf: expected an exponent from 0 to 10 such "
                                 "as \"1.1\", got \"%s\"", text);
    }
    scenario_names *t = &s->attrs[SCENARIO_ATTR_TENANT];
    names_free(t);
    if (!(t->items = sim_calloc((size_t)count, sizeof *t->items)))
        return sim_yaml_nomem(p->y.err, p->y.errlen);
    int width = snprintf(NULL, 0, "%llu", (unsigned long long)count);
    double sum = 0;
    for (uint64_t i = 0; i < count; i++)
        sum += pow((double)(i + 1), -zipf);
    for (uint64_t i = 0; i < count; i++) {
        char name[32];
        snprintf(name, sizeof name, "tenant-%0*llu", width, (unsigned long long)(i + 1));
        scenario_name *item = &t->items[t->count];
        if (!(item->name = sim_strdup(name)))
            return sim_yaml_nomem(p->y.err, p->y.errlen);
        item->share = pow((double)(i + 1), -zipf) / sum;
        item->mark = mark_of(p, n);
        t->count++;
    }
    s->tenant_count = (uint32_t)count;
    s->tenant_zipf = zipf;
    return 0;
}

static int parse_fleet(parser *p, yaml_node_t *n)
{
    static const char *const keys[] = {"size", "profiles", "sensors", "regions", "tenants",
                                       "inventory"};
    enum { SIZE, PROFILES, SENSORS, REGIONS, TENANTS, INVENTORY, NKEYS };
    scenario *s = p->s;
    yaml_node_t *v[NKEYS], *k[NKEYS];
    int rc = sim_yaml_fields(&p->y, n, "fleet", keys, NKEYS, v, k);
    if (rc)
        return rc;
    if (v[INVENTORY]) {
        for (int i = SIZE; i < INVENTORY; i++)
            if (v[i])
                return sim_yaml_fail(&p->y, k[i],
                                     "fleet: \"%s\" cannot be given with \"inventory\" (the "
                                     "inventory lists every endpoint)", keys[i]);
        if ((rc = get_string(p, v[INVENTORY], "fleet.inventory", &s->inventory)))
            return rc;
        if (!*s->inventory)
            return sim_yaml_fail(&p->y, v[INVENTORY], "fleet.inventory: empty path");
        s->inventory_mark = mark_of(p, v[INVENTORY]);
        size_t n1 = strlen(s->dir), n2 = strlen(s->inventory);
        if (!(s->inventory_path = sim_malloc(n1 + n2 + 2)))
            return sim_yaml_nomem(p->y.err, p->y.errlen);
        if (s->inventory[0] == '/')
            memcpy(s->inventory_path, s->inventory, n2 + 1);
        else
            snprintf(s->inventory_path, n1 + n2 + 2, "%s/%s", s->dir, s->inventory);
        return 0;
    }
    static const struct {
        int key;
        scenario_attr attr;
        const char *what;
    } tables[] = {{PROFILES, SCENARIO_ATTR_PROFILE, "fleet.profiles"},
                  {SENSORS, SCENARIO_ATTR_SENSOR, "fleet.sensors"},
                  {REGIONS, SCENARIO_ATTR_REGION, "fleet.regions"}};
    if (!v[SIZE])
        return sim_yaml_missing(&p->y, n, "fleet", "size (or inventory)");
    if ((rc = get_u64(p, v[SIZE], "fleet.size", 1, SCENARIO_MAX_FLEET, &s->fleet_size)))
        return rc;
    for (size_t i = 0; i < 3; i++) {
        if (!v[tables[i].key])
            return sim_yaml_missing(&p->y, n, "fleet", keys[tables[i].key]);
        if ((rc = parse_shares(p, v[tables[i].key], tables[i].what, SCENARIO_MAX_NAMES,
                               &s->attrs[tables[i].attr])))
            return rc;
    }
    if (v[TENANTS])
        return parse_tenants(p, v[TENANTS]);
    /* One tenant when none are given. */
    scenario_names *t = &s->attrs[SCENARIO_ATTR_TENANT];
    if (!(t->items = sim_calloc(1, sizeof *t->items)) ||
        !(t->items[0].name = sim_strdup("default")))
        return sim_yaml_nomem(p->y.err, p->y.errlen);
    t->items[0].share = 1.0;
    t->items[0].mark = mark_of(p, n);
    t->count = 1;
    return 0;
}

static void content_free(scenario_content_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        sim_free(list->items[i].file);
        sim_free(list->items[i].path);
    }
    sim_free(list->items);
    list->items = NULL;
    list->count = 0;
}

/* A list of content files: "name" or {file: name[, installed_at: time]}. */
static int parse_content(parser *p, yaml_node_t *n, const char *what, bool on_disk,
                         scenario_content_list *out)
{
    int rc = sim_yaml_expect(&p->y, n, YAML_SEQUENCE_NODE, what);
    if (rc)
        return rc;
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0)
        return 0;
    if (!(out->items = sim_calloc(count, sizeof *out->items)))
        return sim_yaml_nomem(p->y.err, p->y.errlen);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = sim_yaml_node(&p->y, *it), *file = e;
        scenario_content *c = &out->items[out->count];
        if (e->type == YAML_MAPPING_NODE) {
            static const char *const keys[] = {"file", "installed_at"};
            yaml_node_t *v[2], *k[2];
            if ((rc = sim_yaml_fields(&p->y, e, what, keys, on_disk ? 2 : 1, v, k)))
                return rc;
            if (!v[0])
                return sim_yaml_missing(&p->y, e, what, "file");
            file = v[0];
            if (v[1] && (rc = get_time(p, v[1], "installed_at", &c->installed_at_ms)))
                return rc;
        }
        const char *name = NULL;
        if ((rc = sim_yaml_scalar(&p->y, file, "a content file name", &name)))
            return rc;
        if (!*name)
            return sim_yaml_fail(&p->y, file, "%s: empty file name", what);
        if (!(c->file = sim_strdup(name)))
            return sim_yaml_nomem(p->y.err, p->y.errlen);
        c->mark = mark_of(p, file);
        out->count++;
    }
    return 0;
}

static int parse_update(parser *p, yaml_node_t *n)
{
    static const char *const keys[] = {"content", "image", "release"};
    scenario *s = p->s;
    yaml_node_t *v[3], *k[3];
    int rc = sim_yaml_fields(&p->y, n, "update", keys, 3, v, k);
    if (rc)
        return rc;
    if (!v[0] && !v[1])
        return sim_yaml_fail(&p->y, n, "update: give its content, its image, or both");
    if (v[0] && (rc = parse_content(p, v[0], "update.content", false, &s->update_content)))
        return rc;
    if (v[0] && s->update_content.count == 0 && !v[1])
        return sim_yaml_fail(&p->y, v[0], "update.content: empty, and the update has no image");
    if (v[1]) {
        if ((rc = get_string(p, v[1], "update.image", &s->update_image)))
            return rc;
        if (!*s->update_image)
            return sim_yaml_fail(&p->y, v[1], "update.image: empty file name");
        s->update_image_mark = mark_of(p, v[1]);
    }
    if (!v[2])
        return sim_yaml_missing(&p->y, n, "update", "release");
    if ((rc = get_time(p, v[2], "update.release", &s->release_ms)))
        return rc;
    if (s->release_ms < 0 || (uint64_t)s->release_ms >= s->duration_ms)
        return sim_yaml_fail(&p->y, v[2],
                             "update.release: must fall within the scenario (from start, "
                             "before start + duration)");
    return 0;
}

static int parse_revert(parser *p, yaml_node_t *n)
{
    static const char *const keys[] = {"content", "at"};
    scenario *s = p->s;
    yaml_node_t *v[2], *k[2];
    int rc = sim_yaml_fields(&p->y, n, "revert", keys, 2, v, k);
    if (rc)
        return rc;
    if (!v[0])
        return sim_yaml_missing(&p->y, n, "revert", "content");
    if (!v[1])
        return sim_yaml_missing(&p->y, n, "revert", "at");
    if ((rc = parse_content(p, v[0], "revert.content", false, &s->revert_content)))
        return rc;
    if (s->revert_content.count == 0)
        return sim_yaml_fail(&p->y, v[0], "revert.content: empty");
    if ((rc = get_time(p, v[1], "revert.at", &s->revert_ms)))
        return rc;
    if (s->revert_ms <= s->release_ms)
        return sim_yaml_fail(&p->y, v[1], "revert.at: must come after update.release");
    s->has_revert = true;
    return 0;
}

static int parse_known_bad(parser *p, yaml_node_t *n)
{
    static const char *const keys[] = {"at"};
    yaml_node_t *v[1], *k[1];
    int rc = sim_yaml_fields(&p->y, n, "known_bad", keys, 1, v, k);
    if (rc)
        return rc;
    if (!v[0])
        return sim_yaml_missing(&p->y, n, "known_bad", "at");
    if ((rc = get_time(p, v[0], "known_bad.at", &p->s->known_bad_ms)))
        return rc;
    if (p->s->known_bad_ms < p->s->release_ms)
        return sim_yaml_fail(&p->y, v[0], "known_bad.at: must not come before update.release");
    p->s->has_known_bad = true;
    return 0;
}

/* A delay: "30s" (fixed), {min, max} (uniform) or {median, p95} (lognormal). */
static int parse_dist(parser *p, yaml_node_t *n, const char *what, scenario_dist *out)
{
    if (n->type == YAML_SCALAR_NODE) {
        out->kind = SCENARIO_DIST_FIXED;
        out->b_ms = 0;
        return get_duration(p, n, what, false, &out->a_ms);
    }
    static const char *const keys[] = {"min", "max", "median", "p95"};
    yaml_node_t *v[4], *k[4];
    int rc = sim_yaml_fields(&p->y, n, what, keys, 4, v, k);
    if (rc)
        return rc;
    bool uniform = v[0] || v[1], lognormal = v[2] || v[3];
    if (uniform == lognormal)
        return sim_yaml_fail(&p->y, n, "%s: give either {min, max} or {median, p95}", what);
    int a = uniform ? 0 : 2;
    if (!v[a] || !v[a + 1])
        return sim_yaml_missing(&p->y, n, what, keys[v[a] ? a + 1 : a]);
    if ((rc = get_duration(p, v[a], what, !uniform, &out->a_ms)) ||
        (rc = get_duration(p, v[a + 1], what, !uniform, &out->b_ms)))
        return rc;
    if (uniform ? out->b_ms < out->a_ms : out->b_ms <= out->a_ms)
        return sim_yaml_fail(&p->y, v[a + 1], "%s: %s must be %s %s", what, keys[a + 1],
                             uniform ? "at least" : "more than", keys[a]);
    out->kind = uniform ? SCENARIO_DIST_UNIFORM : SCENARIO_DIST_LOGNORMAL;
    return 0;
}

/* An online curve: one share for every hour, or a list of 24. */
static int parse_curve(parser *p, yaml_node_t *n, const char *what, float curve[24])
{
    double v;
    int rc;
    if (n->type == YAML_SCALAR_NODE) {
        if ((rc = get_share(p, n, what, &v)))
            return rc;
        for (int h = 0; h < 24; h++)
            curve[h] = (float)v;
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return sim_yaml_fail(&p->y, n,
                             "%s: expected a share or a list of 24 (one per UTC hour), got %s",
                             what, sim_yaml_kind_name(n));
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count != 24)
        return sim_yaml_fail(&p->y, n, "%s: expected 24 shares (UTC hours 0 to 23), got %zu", what,
                             count);
    for (size_t h = 0; h < 24; h++) {
        if ((rc = get_share(p, sim_yaml_node(&p->y, n->data.sequence.items.start[h]), what, &v)))
            return rc;
        curve[h] = (float)v;
    }
    return 0;
}

static int parse_online(parser *p, yaml_node_t *n)
{
    scenario *s = p->s;
    int rc = sim_yaml_expect(&p->y, n, YAML_MAPPING_NODE, "connectivity.online");
    if (rc)
        return rc;
    size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (!(s->online_names.items = sim_calloc(count, sizeof *s->online_names.items)) ||
        !(s->online_given = sim_calloc(count, sizeof *s->online_given)))
        return sim_yaml_nomem(p->y.err, p->y.errlen);
    for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *k = sim_yaml_node(&p->y, pair->key), *v = sim_yaml_node(&p->y, pair->value);
        const char *name = NULL;
        if ((rc = sim_yaml_scalar(&p->y, k, "a region", &name)))
            return rc;
        if (strcmp(name, "default") == 0) {
            if (s->has_online_default)
                return sim_yaml_fail(&p->y, k, "connectivity.online: \"default\" is given twice");
            if ((rc = parse_curve(p, v, "connectivity.online.default", s->online_default)))
                return rc;
            s->has_online_default = true;
            continue;
        }
        for (size_t i = 0; i < s->online_names.count; i++)
            if (strcmp(s->online_names.items[i].name, name) == 0)
                return sim_yaml_fail(&p->y, k, "connectivity.online: \"%s\" is given twice", name);
        size_t i = s->online_names.count;
        if ((rc = parse_curve(p, v, "connectivity.online", s->online_given[i])))
            return rc;
        if (!(s->online_names.items[i].name = sim_strdup(name)))
            return sim_yaml_nomem(p->y.err, p->y.errlen);
        s->online_names.items[i].mark = mark_of(p, k);
        s->online_names.count++;
    }
    return 0;
}

static int parse_connectivity(parser *p, yaml_node_t *n)
{
    static const char *const keys[] = {"checkin", "online", "boot_to_network", "boot_time"};
    scenario *s = p->s;
    yaml_node_t *v[4], *k[4];
    int rc = sim_yaml_fields(&p->y, n, "connectivity", keys, 4, v, k);
    if (rc)
        return rc;
    if (v[0] && v[0]->type == YAML_SCALAR_NODE) {
        if ((rc = get_duration(p, v[0], "connectivity.checkin", true,
                               &s->checkin_interval_ms)))
            return rc;
        s->checkin_jitter_ms = 0;
    } else if (v[0]) {
        static const char *const ckeys[] = {"interval", "jitter"};
        yaml_node_t *cv[2], *ck[2];
        if ((rc = sim_yaml_fields(&p->y, v[0], "connectivity.checkin", ckeys, 2, cv, ck)))
            return rc;
        if (!cv[0])
            return sim_yaml_missing(&p->y, v[0], "connectivity.checkin", "interval");
        if ((rc = get_duration(p, cv[0], "connectivity.checkin.interval", true,
                               &s->checkin_interval_ms)))
            return rc;
        s->checkin_jitter_ms = 0;
        if (cv[1] && (rc = get_duration(p, cv[1], "connectivity.checkin.jitter", false,
                                        &s->checkin_jitter_ms)))
            return rc;
    }
    if (v[1] && (rc = parse_online(p, v[1])))
        return rc;
    if (v[2] && (rc = parse_dist(p, v[2], "connectivity.boot_to_network", &s->boot_to_network)))
        return rc;
    if (v[3]) {
        if ((rc = parse_dist(p, v[3], "connectivity.boot_time", &s->boot_time)))
            return rc;
        s->has_boot_time = true;
    }
    return 0;
}

static int parse_repair(parser *p, yaml_node_t *n)
{
    static const char *const keys[] = {"after", "share"};
    yaml_node_t *v[2], *k[2];
    int rc = sim_yaml_fields(&p->y, n, "repair", keys, 2, v, k);
    if (rc)
        return rc;
    if (!v[0])
        return sim_yaml_missing(&p->y, n, "repair", "after");
    if (!v[1])
        return sim_yaml_missing(&p->y, n, "repair", "share");
    if ((rc = get_duration(p, v[0], "repair.after", true, &p->s->repair_after_ms)) ||
        (rc = get_share(p, v[1], "repair.share", &p->s->repair_share)))
        return rc;
    p->s->has_repair = true;
    return 0;
}

/* Keep "rollout:" and its block as written, whole lines, for the rollout
 * controller (it parses them itself, adding rollout_line - 1 to its lines). */
static int keep_rollout(parser *p, yaml_node_t *key, yaml_node_t *value)
{
    size_t first = key->start_mark.line, last = value->end_mark.line;
    if (value->end_mark.column == 0 && last > first)
        last--; /* a block ends where the next line starts */
    size_t line = 0, begin = 0, end = p->len;
    for (size_t i = 0; i < p->len; i++) {
        if (line == first && begin == 0 && (i == 0 || p->text[i - 1] == '\n'))
            begin = i;
        if (p->text[i] == '\n') {
            if (line == last) {
                end = i + 1;
                break;
            }
            line++;
        }
    }
    if (first == 0)
        begin = 0;
    if (!(p->s->rollout_text = sim_malloc(end - begin + 1)))
        return sim_yaml_nomem(p->y.err, p->y.errlen);
    memcpy(p->s->rollout_text, p->text + begin, end - begin);
    p->s->rollout_text[end - begin] = '\0';
    p->s->rollout_line = (uint32_t)first + 1;
    return 0;
}

static int parse_root(parser *p, yaml_node_t *root)
{
    static const char *const keys[] = {
        "name", "description", "seed", "duration", "start", "fleet", "content",
        "install_dir", "update", "revert", "known_bad", "connectivity", "repair", "rollout",
    };
    enum { NAME, DESCRIPTION, SEED, DURATION, START, FLEET, CONTENT, INSTALL_DIR, UPDATE,
           REVERT, KNOWN_BAD, CONNECTIVITY, REPAIR, ROLLOUT, NKEYS };
    scenario *s = p->s;
    yaml_node_t *v[NKEYS], *k[NKEYS];
    int rc = sim_yaml_fields(&p->y, root, "the scenario", keys, NKEYS, v, k);
    if (rc)
        return rc;
    /* Required keys are checked in the order they are read, so errors come
     * in the order of the file when it is written in the usual order. */
#define NEED(key) if (!v[key]) return sim_yaml_missing(&p->y, root, "the scenario", keys[key])
    const char *start;
    NEED(NAME);
    if ((rc = get_string(p, v[NAME], "name", &s->name)))
        return rc;
    if (!*s->name)
        return sim_yaml_fail(&p->y, v[NAME], "name: empty");
    if (v[DESCRIPTION] && (rc = get_string(p, v[DESCRIPTION], "description", &s->description)))
        return rc;
    NEED(SEED);
    if ((rc = get_u64(p, v[SEED], "seed", 0, UINT64_MAX, &s->seed)))
        return rc;
    NEED(DURATION);
    if ((rc = get_duration(p, v[DURATION], "duration", true, &s->duration_ms)))
        return rc;
    NEED(START);
    if ((rc = sim_yaml_scalar(&p->y, v[START], "start", &start)))
        return rc;
    if (!scenario_parse_time(start, &s->start_ms))
        return sim_yaml_fail(&p->y, v[START],
                             "start: expected a UTC time such as \"2024-07-19T00:00:00Z\", "
                             "got \"%s\"", start);
    NEED(FLEET);
    if ((rc = parse_fleet(p, v[FLEET])))
        return rc;
    if (v[CONTENT] && (rc = parse_content(p, v[CONTENT], "content", true, &s->on_disk)))
        return rc;
    if (v[INSTALL_DIR] && (rc = get_string(p, v[INSTALL_DIR], "install_dir", &s->install_dir)))
        return rc;
    NEED(UPDATE);
#undef NEED
    if ((rc = parse_update(p, v[UPDATE])))
        return rc;
    if (v[REVERT] && (rc = parse_revert(p, v[REVERT])))
        return rc;
    if (v[KNOWN_BAD]) {
        if ((rc = parse_known_bad(p, v[KNOWN_BAD])))
            return rc;
    } else if (s->has_revert) {
        /* July 2024: the cloud marked the file bad when the revert shipped. */
        s->has_known_bad = true;
        s->known_bad_ms = s->revert_ms;
    }
    if (v[CONNECTIVITY] && (rc = parse_connectivity(p, v[CONNECTIVITY])))
        return rc;
    if (v[REPAIR] && (rc = parse_repair(p, v[REPAIR])))
        return rc;
    if (v[ROLLOUT] && (rc = keep_rollout(p, k[ROLLOUT], v[ROLLOUT])))
        return rc;
    return 0;
}

/*
 * Bind the online curves to the fleet's regions: every curve names a region
 * of the fleet, and every region has a curve (its own or the default).
 */
static int finish(scenario *s, char *err, size_t errlen)
{
    const scenario_names *regions = &s->attrs[SCENARIO_ATTR_REGION];
    for (size_t i = 0; i < s->online_names.count; i++) {
        const scenario_name *o = &s->online_names.items[i];
        size_t r = 0;
        while (r < regions->count && strcmp(regions->items[r].name, o->name) != 0)
            r++;
        if (r == regions->count) {
            report(err, errlen, o->mark, "connectivity.online: \"%s\" is not a region of the "
                                         "fleet; regions: ", o->name);
            for (size_t j = 0; j < regions->count && strlen(err) + 1 < errlen; j++)
                snprintf(err + strlen(err), errlen - strlen(err), "%s%s", j ? ", " : "",
                         regions->items[j].name);
            return SIM_EFORMAT;
        }
    }
    sim_free(s->online);
    if (!(s->online = sim_calloc(regions->count, sizeof *s->online)))
        return sim_yaml_nomem(err, errlen);
    for (size_t r = 0; r < regions->count; r++) {
        const float *curve = NULL;
        for (size_t i = 0; i < s->online_names.count && !curve; i++)
            if (strcmp(regions->items[r].name, s->online_names.items[i].name) == 0)
                curve = s->online_given[i];
        if (!curve && s->has_online_default)
            curve = s->online_default;
        if (!curve && s->online_names.count > 0)
            return report(err, errlen, regions->items[r].mark,
                          "region \"%s\" has no connectivity.online curve (and there is no "
                          "\"default\")", regions->items[r].name);
        for (int h = 0; h < 24; h++)
            s->online[r][h] = curve ? curve[h] : 1.0f;
    }
    return 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return sim_strdup(".");
    if (slash == path)
        return sim_strdup("/");
    char *dir = sim_malloc((size_t)(slash - path) + 1);
    if (dir) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    return dir;
}

static int read_all(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    /* A scenario is kilobytes; an inventory of millions of endpoints tens of
     * megabytes.  The limit keeps /dev/zero from eating the machine. */
    int rc = sim_read_file(path, 512u << 20, (uint8_t **)text, len);
    if (rc == SIM_ENOMEM)
        return sim_yaml_nomem(err, errlen);
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot %s: %s", path, rc == SIM_ERANGE ? "read" : "open",
                 strerror(errno ? errno : EIO));
        return SIM_EIO;
    }
    return 0;
}

static int load_inventory_file(scenario *s, char *err, size_t errlen)
{
    char *csv;
    size_t len;
    int rc = read_all(s->inventory_path, &csv, &len, err, errlen);
    if (rc == SIM_EIO) {
        char why[256];
        snprintf(why, sizeof why, "%s", err);
        report(err, errlen, s->inventory_mark, "fleet.inventory: %s", why);
        return SIM_EIO;
    }
    if (rc)
        return rc;
    rc = scenario_load_inventory(s, csv, len, err, errlen);
    sim_free(csv);
    return rc;
}

int scenario_parse(const char *text, size_t len, const char *path, unsigned flags,
                   scenario **out, char *err, size_t errlen)
{
    if (!out || (!text && len) || !path || !err || errlen == 0)
        return SIM_EINVAL;
    *out = NULL;
    err[0] = '\0';
    scenario *s = sim_calloc(1, sizeof *s);
    if (!s)
        return sim_yaml_nomem(err, errlen);
    s->boot_to_network = (scenario_dist){SCENARIO_DIST_FIXED, 30000, 0};
    s->checkin_interval_ms = 10 * 60000;
    if (!(s->path = sim_strdup(path)) || !(s->dir = dir_of(path)) ||
        !(s->description = sim_strdup("")) || !(s->install_dir = sim_strdup(""))) {
        scenario_destroy(s);
        return sim_yaml_nomem(err, errlen);
    }

    yaml_parser_t yp;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&yp)) {
        scenario_destroy(s);
        return sim_yaml_nomem(err, errlen);
    }
    yaml_parser_set_input_string(&yp, (const unsigned char *)(text ? text : ""), len);
    parser p = {{s->path, &doc, err, errlen, &wording}, s, text ? text : "", len};
    int rc = 0;
    if (!yaml_parser_load(&yp, &doc)) {
        scenario_mark m = {path, (uint32_t)yp.problem_mark.line + 1,
                           (uint32_t)yp.problem_mark.column + 1};
        rc = yp.error == YAML_MEMORY_ERROR
                 ? sim_yaml_nomem(err, errlen)
                 : report(err, errlen, m, "%s%s%s", yp.problem ? yp.problem : "malformed YAML",
                          yp.context ? " " : "", yp.context ? yp.context : "");
        yaml_parser_delete(&yp);
        scenario_destroy(s);
        return rc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        rc = report(err, errlen, (scenario_mark){path, 1, 1}, "empty scenario");
    } else if (root->type != YAML_MAPPING_NODE) {
        rc = sim_yaml_fail(&p.y, root, "the scenario: expected a mapping of keys, got %s",
                           sim_yaml_kind_name(root));
    } else {
        rc = parse_root(&p, root);
    }
    yaml_document_delete(&doc);
    if (rc == 0) {
        /* One document per file: a second one is most likely a mistake. */
        if (!yaml_parser_load(&yp, &doc)) {
            scenario_mark m = {path, (uint32_t)yp.problem_mark.line + 1,
                               (uint32_t)yp.problem_mark.column + 1};
            rc = report(err, errlen, m, "%s", yp.problem ? yp.problem : "malformed YAML");
        } else {
            yaml_node_t *second = yaml_document_get_root_node(&doc);
            if (second)
                rc = sim_yaml_fail(&p.y, second, "only one YAML document is allowed in a scenario");
            yaml_document_delete(&doc);
        }
    }
    yaml_parser_delete(&yp);

    if (rc == 0 && s->inventory && !(flags & SCENARIO_NO_FILES))
        rc = load_inventory_file(s, err, errlen);
    else if (rc == 0 && !s->inventory)
        rc = finish(s, err, errlen);
    if (rc) {
        scenario_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

int scenario_load(const char *path, scenario **out, char *err, size_t errlen)
{
    if (!path || !out || !err || errlen == 0)
        return SIM_EINVAL;
    *out = NULL;
    char *text;
    size_t len;
    int rc = read_all(path, &text, &len, err, errlen);
    if (rc)
        return rc;
    rc = scenario_parse(text, len, path, 0, out, err, errlen);
    sim_free(text);
    return rc;
}

void scenario_destroy(scenario *s)
{
    if (!s)
        return;
    for (int a = 0; a < SCENARIO_ATTR_COUNT; a++)
        names_free(&s->attrs[a]);
    names_free(&s->online_names);
    content_free(&s->on_disk);
    content_free(&s->update_content);
    content_free(&s->revert_content);
    sim_free(s->online_given);
    sim_free(s->online);
    sim_free(s->rows);
    sim_free(s->inventory_ids);
    sim_free(s->inventory);
    sim_free(s->inventory_path);
    sim_free(s->update_image);
    sim_free(s->install_dir);
    sim_free(s->rollout_text);
    sim_free(s->name);
    sim_free(s->description);
    sim_free(s->dir);
    sim_free(s->path);
    sim_free(s);
}

/* ---- inventory CSV ------------------------------------------------------ */

/*
 * Names are interned per attribute through an open-addressing hash table
 * (indices into the name table, 0 = empty slot), so a million rows with a few
 * hundred distinct values cost a few comparisons each.
 */
typedef struct intern {
    scenario_names *names;
    size_t cap;              /* of names->items */
    uint32_t *slots;         /* index + 1 */
    size_t nslots;           /* power of two */
    size_t max;
    uint64_t *counts;        /* rows per name */
} intern;

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static int intern_grow(intern *t)
{
    size_t nslots = t->nslots ? t->nslots * 2 : 64;
    uint32_t *slots = sim_calloc(nslots, sizeof *slots);
    if (!slots)
        return SIM_ENOMEM;
    for (size_t i = 0; i < t->names->count; i++) {
        const char *name = t->names->items[i].name;
        size_t at = hash_name(name, strlen(name)) & (nslots - 1);
        while (slots[at])
            at = (at + 1) & (nslots - 1);
        slots[at] = (uint32_t)i + 1;
    }
    sim_free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return 0;
}

/* Index of name (added when new), or a negative error. */
static int64_t intern_name(intern *t, const char *name, size_t n, scenario_mark mark)
{
    if (t->names->count * 2 >= t->nslots && intern_grow(t))
        return SIM_ENOMEM;
    size_t at = hash_name(name, n) & (t->nslots - 1);
    for (; t->slots[at]; at = (at + 1) & (t->nslots - 1)) {
        uint32_t i = t->slots[at] - 1;
        const char *have = t->names->items[i].name;
        if (strncmp(have, name, n) == 0 && have[n] == '\0') {
            t->counts[i]++;
            return i;
        }
    }
    size_t i = t->names->count;
    if (i >= t->max)
        return SIM_ERANGE;
    if (i == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        scenario_name *items = sim_realloc(t->names->items, cap * sizeof *items);
        if (!items)
            return SIM_ENOMEM;
        t->names->items = items;
        uint64_t *counts = sim_realloc(t->counts, cap * sizeof *counts);
        if (!counts)
            return SIM_ENOMEM;
        t->counts = counts;
        t->cap = cap;
    }
    char *copy = sim_malloc(n + 1);
    if (!copy)
        return SIM_ENOMEM;
    memcpy(copy, name, n);
    copy[n] = '\0';
    t->names->items[i] = (scenario_name){copy, 0, mark};
    t->counts[i] = 1;
    t->names->count++;
    t->slots[at] = (uint32_t)i + 1;
    return (int64_t)i;
}

/*
 * Split one CSV line into fields in place: commas separate, a field may be
 * quoted ("a ""b"" c").  Returns the field count, or -1 for a stray quote.
 */
static int split_csv(char *line, char **fields_out, size_t *lens, int max)
{
    int n = 0;
    char *s = line;
    for (;;) {
        if (n == max)
            return max + 1;
        char *w = s, *start = s;
        if (*s == '"') {
            s++;
            for (;;) {
                if (*s == '\0')
                    return -1;
                if (*s == '"') {
                    if (s[1] == '"') {
                        *w++ = '"';
                        s += 2;
                        continue;
                    }
                    s++;
                    break;
                }
                *w++ = *s++;
            }
            if (*s != ',' && *s != '\0')
                return -1;
        } else {
            while (*s != ',' && *s != '\0') {
                if (*s == '"')
                    return -1;
                w++, s++;
            }
        }
        fields_out[n] = start;
        lens[n] = (size_t)(w - start);
        n++;
        if (*s == '\0')
            return n;
        s++;
    }
}

typedef struct id_ref {
    uint32_t offset, line;
} id_ref;

static const char *ids_base;
static int cmp_id(const void *a, const void *b)
{
    const id_ref *x = a, *y = b;
    int c = strcmp(ids_base + x->offset, ids_base + y->offset);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int check_unique_ids(scenario *s, uint32_t *lines, char *err, size_t errlen)
{
    id_ref *refs = sim_malloc((size_t)s->fleet_size * sizeof *refs);
    if (!refs)
        return sim_yaml_nomem(err, errlen);
    for (uint64_t i = 0; i < s->fleet_size; i++)
        refs[i] = (id_ref){s->rows[i].id_offset, lines[i]};
    ids_base = s->inventory_ids; /* qsort has no context argument in C11 */
    qsort(refs, (size_t)s->fleet_size, sizeof *refs, cmp_id);
    int rc = 0;
    for (uint64_t i = 1; i < s->fleet_size && !rc; i++)
        if (strcmp(s->inventory_ids + refs[i].offset, s->inventory_ids + refs[i - 1].offset) == 0)
            rc = report(err, errlen, (scenario_mark){s->inventory_path, refs[i].line, 0},
                        "duplicate id \"%s\" (first on line %u)",
                        s->inventory_ids + refs[i].offset, refs[i - 1].line);
    sim_free(refs);
    return rc;
}

enum { COL_ID, COL_PROFILE, COL_SENSOR, COL_REGION, COL_TENANT, NCOLS };
static const char *const csv_columns[NCOLS] = {"id", "profile", "sensor", "region", "tenant"};

static int parse_header(scenario *s, char *line, int map[NCOLS], char *err, size_t errlen)
{
    char *f[NCOLS + 1];
    size_t lens[NCOLS + 1];
    scenario_mark m = {s->inventory_path, 1, 0};
    int n = split_csv(line, f, lens, NCOLS);
    if (n < 0)
        return report(err, errlen, m, "malformed quoting in the header");
    for (int c = 0; c < NCOLS; c++)
        map[c] = -1;
    for (int i = 0; i < n && i < NCOLS; i++) {
        f[i][lens[i]] = '\0';
        int c = 0;
        while (c < NCOLS && strcmp(f[i], csv_columns[c]) != 0)
            c++;
        if (c == NCOLS) {
            report(err, errlen, m, "unknown column \"%s\"; known: ", f[i]);
            sim_yaml_append_list(err, errlen, csv_columns, NCOLS, true);
            return SIM_EFORMAT;
        }
        if (map[c] >= 0)
            return report(err, errlen, m, "column \"%s\" is given twice", f[i]);
        map[c] = i;
    }
    if (n > NCOLS)
        return report(err, errlen, m, "more than %d columns; the columns are: id, profile, "
                                      "sensor, region, tenant", NCOLS);
    for (int c = 0; c < NCOLS; c++)
        if (map[c] < 0)
            return report(err, errlen, m, "missing column \"%s\" (the header names id, "
                                          "profile, sensor, region, tenant)", csv_columns[c]);
    return 0;
}

typedef struct csv_state {
    scenario *s;
    intern tables[SCENARIO_ATTR_COUNT];
    uint32_t *lines;
    size_t rows_cap, ids_len, ids_cap;
} csv_state;

static int add_row(csv_state *st, char *line, uint32_t lineno, const int map[NCOLS],
                   char *err, size_t errlen)
{
    scenario *s = st->s;
    scenario_mark m = {s->inventory_path, lineno, 0};
    char *f[NCOLS + 1];
    size_t lens[NCOLS + 1];
    int n = split_csv(line, f, lens, NCOLS);
    if (n < 0)
        return report(err, errlen, m, "malformed quoting");
    if (n != NCOLS)
        return report(err, errlen, m, "expected %d fields, got %s%d", NCOLS,
                      n > NCOLS ? "more than " : "", n > NCOLS ? NCOLS : n);
    if (s->fleet_size >= SCENARIO_MAX_FLEET)
        return report(err, errlen, m, "more than %u endpoints", SCENARIO_MAX_FLEET);
    if (s->fleet_size == st->rows_cap) {
        size_t cap = st->rows_cap ? st->rows_cap * 2 : 256;
        scenario_row *rows = sim_realloc(s->rows, cap * sizeof *rows);
        if (!rows)
            return sim_yaml_nomem(err, errlen);
        s->rows = rows;
        uint32_t *lines = sim_realloc(st->lines, cap * sizeof *lines);
        if (!lines)
            return sim_yaml_nomem(err, errlen);
        st->lines = lines;
        st->rows_cap = cap;
    }
    scenario_row *row = &s->rows[s->fleet_size];
    uint32_t idx[SCENARIO_ATTR_COUNT];
    for (int c = 0; c < NCOLS; c++) {
        const char *v = f[map[c]];
        size_t len = lens[map[c]];
        if (len == 0)
            return report(err, errlen, m, "empty %s", csv_columns[c]);
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f ||
                (c != COL_ID && (v[i] == ',' || v[i] == '"')))
                return report(err, errlen, m, "%s: control characters%s are not allowed",
                              csv_columns[c], c != COL_ID ? ", commas or quotes" : "");
        if (len > SCENARIO_NAME_MAX)
            return report(err, errlen, m, "%s: longer than %d characters", csv_columns[c],
                          SCENARIO_NAME_MAX);
        if (c == COL_ID) {
            if (st->ids_len + len + 1 > UINT32_MAX)
                return report(err, errlen, m, "ids too long in total");
            if (st->ids_len + len + 1 > st->ids_cap) {
                size_t cap = st->ids_cap ? st->ids_cap * 2 : 4096;
                while (cap < st->ids_len + len + 1)
                    cap *= 2;
                char *ids = sim_realloc(s->inventory_ids, cap);
                if (!ids)
                    return sim_yaml_nomem(err, errlen);
                s->inventory_ids = ids;
                st->ids_cap = cap;
            }
            row->id_offset = (uint32_t)st->ids_len;
            memcpy(s->inventory_ids + st->ids_len, v, len);
            s->inventory_ids[st->ids_len + len] = '\0';
            st->ids_len += len + 1;
            continue;
        }
        scenario_attr a = (scenario_attr)(c - 1);
        int64_t i = intern_name(&st->tables[a], v, len, m);
        if (i == SIM_ENOMEM)
            return sim_yaml_nomem(err, errlen);
        if (i < 0)
            return report(err, errlen, m, "more than %zu distinct %ss", st->tables[a].max,
                          scenario_attr_name(a));
        idx[a] = (uint32_t)i;
    }
    row->profile = (uint16_t)idx[SCENARIO_ATTR_PROFILE];
    row->sensor = (uint16_t)idx[SCENARIO_ATTR_SENSOR];
    row->region = (uint16_t)idx[SCENARIO_ATTR_REGION];
    row->tenant = idx[SCENARIO_ATTR_TENANT];
    st->lines[s->fleet_size] = lineno;
    s->fleet_size++;
    return 0;
}

static int parse_csv(csv_state *st, char *text, size_t len, char *err, size_t errlen)
{
    scenario *s = st->s;
    int map[NCOLS];
    uint32_t lineno = 0;
    bool header = false;
    size_t pos = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3; /* a spreadsheet's byte-order mark */
    while (pos < len) {
        char *line = text + pos;
        char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + 1;
        lineno++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        line[n] = '\0';
        if (memchr(line, '\0', n))
            return report(err, errlen, (scenario_mark){s->inventory_path, lineno, 0},
                          "NUL character");
        if (n == 0)
            continue;
        int rc = header ? add_row(st, line, lineno, map, err, errlen)
                        : parse_header(s, line, map, err, errlen);
        if (rc)
            return rc;
        header = true;
    }
    if (!header)
        return report(err, errlen, (scenario_mark){s->inventory_path, 1, 0},
                      "empty inventory (expected a header: id,profile,sensor,region,tenant)");
    if (s->fleet_size == 0)
        return report(err, errlen, (scenario_mark){s->inventory_path, lineno, 0},
                      "no endpoints after the header");
    return 0;
}

int scenario_load_inventory(scenario *s, const char *csv, size_t len, char *err,
                            size_t errlen)
{
    if (!s || !s->inventory || s->inventory_loaded || (!csv && len) || !err || errlen == 0)
        return SIM_EINVAL;
    err[0] = '\0';
    char *text = sim_malloc(len + 1);
    if (!text)
        return sim_yaml_nomem(err, errlen);
    if (len)
        memcpy(text, csv, len);
    text[len] = '\0';

    csv_state st = {.s = s};
    for (int a = 0; a < SCENARIO_ATTR_COUNT; a++) {
        names_free(&s->attrs[a]);
        st.tables[a].names = &s->attrs[a];
        st.tables[a].max = a == SCENARIO_ATTR_TENANT ? SCENARIO_MAX_TENANTS : SCENARIO_MAX_NAMES;
    }
    s->fleet_size = 0;
    int rc = parse_csv(&st, text, len, err, errlen);
    if (rc == 0)
        rc = check_unique_ids(s, st.lines, err, errlen);
    if (rc == 0) {
        for (int a = 0; a < SCENARIO_ATTR_COUNT; a++)
            for (size_t i = 0; i < s->attrs[a].count; i++)
                s->attrs[a].items[i].share =
                    (double)st.tables[a].counts[i] / (double)s->fleet_size;
        rc = finish(s, err, errlen);
    }
    for (int a = 0; a < SCENARIO_ATTR_COUNT; a++) {
        sim_free(st.tables[a].slots);
        sim_free(st.tables[a].counts);
    }
    sim_free(st.lines);
    sim_free(text);
    if (rc) {
        for (int a = 0; a < SCENARIO_ATTR_COUNT; a++)
            names_free(&s->attrs[a]);
        sim_free(s->rows);
        sim_free(s->inventory_ids);
        s->rows = NULL;
        s->inventory_ids = NULL;
        s->fleet_size = 0;
        return rc;
    }
    s->inventory_loaded = true;
    return 0;
}

const char *scenario_row_id(const scenario *s, uint64_t row)
{
    if (!s || !s->rows || row >= s->fleet_size)
        return "";
    return s->inventory_ids + s->rows[row].id_offset;
}

/* ---- after parsing: names, content, overrides --------------------------- */

static int check_names(const scenario_names *names, const char *what,
                       const char *const *known, size_t nknown, char *err, size_t errlen)
{
    if (!known)
        return 0;
    for (size_t i = 0; i < names->count; i++) {
        size_t j = 0;
        while (j < nknown && strcmp(known[j], names->items[i].name) != 0)
            j++;
        if (j < nknown)
            continue;
        report(err, errlen, names->items[i].mark, "unknown %s \"%s\"; known: ", what,
               names->items[i].name);
        if (nknown == 0)
            snprintf(err + strlen(err), errlen - strlen(err), "(none)");
        sim_yaml_append_list(err, errlen, known, nknown, true);
        return SIM_EFORMAT;
    }
    return 0;
}

int scenario_check(const scenario *s, const scenario_catalog *catalog, char *err,
                   size_t errlen)
{
    if (!s || !catalog || !err || errlen == 0)
        return SIM_EINVAL;
    err[0] = '\0';
    int rc = check_names(&s->attrs[SCENARIO_ATTR_PROFILE], "profile", catalog->profiles,
                         catalog->nprofiles, err, errlen);
    if (rc == 0)
        rc = check_names(&s->attrs[SCENARIO_ATTR_SENSOR], "sensor version", catalog->sensors,
                         catalog->nsensors, err, errlen);
    return rc;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The one file `pattern` names in `dir` (NULL dir: pattern as is); 0 found,
 * 1 not here, negative error. */
static int find_in(const char *dir, const scenario_content *c, char **found, char *err,
                   size_t errlen)
{
    size_t n = (dir ? strlen(dir) + 1 : 0) + strlen(c->file) + 1;
    char *path = sim_malloc(n);
    if (!path)
        return sim_yaml_nomem(err, errlen);
    snprintf(path, n, "%s%s%s", dir ? dir : "", dir ? "/" : "", c->file);
    if (!strpbrk(c->file, "*?[")) {
        if (is_file(path)) {
            *found = path;
            return 0;
        }
        sim_free(path);
        return 1;
    }
    glob_t g;
    int grc = glob(path, 0, NULL, &g);
    sim_free(path);
    if (grc == GLOB_NOMATCH)
        return 1;
    if (grc != 0)
        return grc == GLOB_NOSPACE ? sim_yaml_nomem(err, errlen)
                                   : report(err, errlen, c->mark, "cannot search for \"%s\"",
                                            c->file);
    int rc;
    if (g.gl_pathc == 1) {
        rc = (*found = sim_strdup(g.gl_pathv[0])) ? 0 : sim_yaml_nomem(err, errlen);
    } else {
        report(err, errlen, c->mark, "content \"%s\" matches %zu files, not one: ", c->file,
               (size_t)g.gl_pathc);
        sim_yaml_append_list(err, errlen, (const char *const *)g.gl_pathv, g.gl_pathc, true);
        rc = SIM_EFORMAT;
    }
    globfree(&g);
    return rc;
}

static int resolve_one(const scenario *s, const scenario_catalog *catalog, scenario_content *c,
                       char *err, size_t errlen)
{
    char *found = NULL;
    int rc = find_in(c->file[0] == '/' ? NULL : s->dir, c, &found, err, errlen);
    for (size_t i = 0; rc == 1 && c->file[0] != '/' && catalog && i < catalog->ncontent_dirs; i++)
        rc = find_in(catalog->content_dirs[i], c, &found, err, errlen);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        report(err, errlen, c->mark, "content \"%s\" not found in %s", c->file, s->dir);
        for (size_t i = 0; catalog && i < catalog->ncontent_dirs; i++)
            snprintf(err + strlen(err), errlen - strlen(err), ", %s", catalog->content_dirs[i]);
        return SIM_ENOENT;
    }
    sim_free(c->path);
    c->path = found;
    return 0;
}

int scenario_resolve_content(scenario *s, const scenario_catalog *catalog, char *err,
                             size_t errlen)
{
    if (!s || !err || errlen == 0)
        return SIM_EINVAL;
    err[0] = '\0';
    scenario_content_list *lists[] = {&s->on_disk, &s->update_content, &s->revert_content};
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < lists[l]->count; i++) {
            int rc = resolve_one(s, catalog, &lists[l]->items[i], err, errlen);
            if (rc)
                return rc;
        }
    return 0;
}

int scenario_override(scenario *s, const char *key, const char *value, char *err,
                      size_t errlen)
{
    if (!s || !key || !value || !err || errlen == 0)
        return SIM_EINVAL;
    err[0] = '\0';
    uint64_t v;
    if (strcmp(key, "fleet-size") == 0) {
        if (s->inventory) {
            snprintf(err, errlen, "--fleet-size: the fleet is the inventory %s; its size "
                                  "cannot be changed", s->inventory);
            return SIM_EINVAL;
        }
        if (!sim_yaml_parse_u64(value, &v) || v < 1 || v > SCENARIO_MAX_FLEET) {
            snprintf(err, errlen, "--fleet-size: expected a whole number from 1 to %u, got "
                                  "\"%s\"", SCENARIO_MAX_FLEET, value);
            return SIM_EINVAL;
        }
        s->fleet_size = v;
        return 0;
    }
    if (strcmp(key, "seed") == 0) {
        if (!sim_yaml_parse_u64(value, &v)) {
            snprintf(err, errlen, "--seed: expected a whole number (decimal or 0x hex) that "
                                  "fits in 64 bits, got \"%s\"", value);
            return SIM_EINVAL;
        }
        s->seed = v;
        return 0;
    }
    if (strcmp(key, "duration") == 0) {
        if (!scenario_parse_duration(value, &v) || v == 0) {
            snprintf(err, errlen, "--duration: expected a duration such as \"12h\" or "
                                  "\"1h30m\", got \"%s\"", value);
            return SIM_EINVAL;
        }
        if ((uint64_t)s->release_ms >= v) {
            snprintf(err, errlen, "--duration: %s ends before the update is released (%lld "
                                  "ms after start)", value, (long long)s->release_ms);
            return SIM_EINVAL;
        }
        s->duration_ms = v;
        return 0;
    }
    snprintf(err, errlen, "unknown override \"%s\"; known: fleet-size, seed, duration", key);
    return SIM_EINVAL;
}

/* ---- values the loop asks for ------------------------------------------- */

uint64_t scenario_filetime(const scenario *s, int64_t t_ms)
{
    /* 11644473600 s between 1601-01-01 and 1970-01-01. */
    return (uint64_t)((s->start_ms + t_ms) * 10000 + 116444736000000000ll);
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
