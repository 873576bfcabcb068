/*
 * scenario.c — the scenario file parser.
 *
 * libyaml loads the file into a node tree (with line and column marks on
 * every node); this file walks it with a fixed schema.  Each mapping is read
 * through one helper (sim_yaml_fields, in sim/yamldoc.c, which the profile
 * loader shares) that refuses unknown and duplicate keys, so the schema of
 * a section is the key table next to the code that reads it.
 * Values go through the strict syntaxes of scenario_value.c (durations,
 * times, shares, whole numbers): a value that is almost right is refused,
 * not guessed at.
 *
 * Parsing happens in two steps because an inventory fleet only knows its
 * regions once the CSV (inventory.c) is read: parse() reads the YAML, and
 * scenario__finish() — after the inventory, when there is one — binds the
 * online curves to the fleet's regions.  Names checked against what the
 * caller loaded (profiles, sensor versions) keep their marks, so
 * scenario_check() (scenario_check.c) can point at the YAML line or the CSV
 * row later.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "scenario-internal.h"
#include "sim.h"
#include "yamldoc.h"

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
int scenario__report(char *err, size_t errlen, scenario_mark mark, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sim_yaml_vreport(err, errlen, mark.file, mark.line, mark.column, fmt, ap);
    va_end(ap);
    return SIM_EFORMAT;
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
                             "%s: expected a duration (up to 100 years) such as \"12h\", "
                             "\"1h30m\", \"90s\", \"250ms\", got \"%s\"", what, text);
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

void scenario__names_free(scenario_names *names)
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
    scenario__names_free(out);
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
        scenario_name *item = &out->items[out->count];
        if ((rc = get_share(p, v, what, &item->share)))
            return rc;
        if (!(item->name = sim_strdup(name)))
            return sim_yaml_nomem(p->y.err, p->y.errlen);
        item->mark = mark_of(p, k);
        out->count++;
    }
    const scenario_name *repeat;
    if (!scenario__repeated_name(out, &repeat))
        return sim_yaml_nomem(p->y.err, p->y.errlen);
    if (repeat)
        return scenario__report(p->y.err, p->y.errlen, repeat->mark, "%s: \"%s\" is given twice",
                                what, repeat->name);
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
        if (!scenario__parse_decimal(text, &zipf) || zipf > 10.0)
            return sim_yaml_fail(&p->y, v[1],
                                 "fleet.tenants.zipf: expected an exponent from 0 to 10 such "
                                 "as \"1.1\", got \"%s\"", text);
    }
    scenario_names *t = &s->attrs[SCENARIO_ATTR_TENANT];
    scenario__names_free(t);
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
            yaml_node_t *v[2] = {NULL, NULL}, *k[2];
            if ((rc = sim_yaml_fields(&p->y, e, what, keys, on_disk ? 2 : 1, v, k)))
                return rc;
            if (!v[0])
                return sim_yaml_missing(&p->y, e, what, "file");
            file = v[0];
            if (v[1] && (rc = get_time(p, v[1], "installed_at", &c->installed_at_ms)))
                return rc;
            if (c->installed_at_ms > 0)
                return sim_yaml_fail(&p->y, v[1],
                                     "%s.installed_at: after the start; files on disk are "
                                     "there when the run starts (a file that arrives later "
                                     "is the update)", what);
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
    if (count > SCENARIO_MAX_NAMES + 1) /* the regions, and "default" */
        return sim_yaml_fail(&p->y, n, "connectivity.online: %zu given, at most %u", count,
                             SCENARIO_MAX_NAMES + 1);
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
        size_t i = s->online_names.count;
        if ((rc = parse_curve(p, v, "connectivity.online", s->online_given[i])))
            return rc;
        if (!(s->online_names.items[i].name = sim_strdup(name)))
            return sim_yaml_nomem(p->y.err, p->y.errlen);
        s->online_names.items[i].mark = mark_of(p, k);
        s->online_names.count++;
    }
    const scenario_name *repeat;
    if (!scenario__repeated_name(&s->online_names, &repeat))
        return sim_yaml_nomem(p->y.err, p->y.errlen);
    if (repeat)
        return scenario__report(p->y.err, p->y.errlen, repeat->mark,
                                "connectivity.online: \"%s\" is given twice", repeat->name);
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

/* ---- rollout plans ------------------------------------------------------- */

static void plans_free(scenario *s)
{
    for (size_t i = 0; i < s->nplans; i++) {
        for (size_t r = 0; r < s->plans[i].nrings; r++) {
            scenario__names_free(&s->plans[i].rings[r].where);
            sim_free(s->plans[i].rings[r].where_index);
        }
        sim_free(s->plans[i].rings);
    }
    sim_free(s->plans);
    s->plans = NULL;
    s->nplans = 0;
}

/* A name that becomes part of a file name (the store's): no folders in it. */
static bool file_name_part(const char *name)
{
    return !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static int get_name(parser *p, yaml_node_t *n, const char *what, char out[SCENARIO_NAME_MAX + 1])
{
    const char *text = NULL;
    int rc = sim_yaml_scalar(&p->y, n, what, &text);
    if (rc)
        return rc;
    if (!valid_name(text))
        return sim_yaml_fail(&p->y, n,
                             "%s: \"%s\" is not a usable name (1 to %d characters, no control "
                             "characters, commas or quotes)", what, text, SCENARIO_NAME_MAX);
    snprintf(out, SCENARIO_NAME_MAX + 1, "%s", text);
    return 0;
}

/* where: {tenant: [a, b]} or {region: eu-west}: one attribute, its values. */
static int parse_where(parser *p, yaml_node_t *n, scenario_ring *ring)
{
    int rc = sim_yaml_expect(&p->y, n, YAML_MAPPING_NODE, "rollout ring where");
    if (rc)
        return rc;
    if (n->data.mapping.pairs.top - n->data.mapping.pairs.start != 1)
        return sim_yaml_fail(&p->y, n, "where: name one attribute (profile, sensor, region or "
                                       "tenant) and its values");
    yaml_node_pair_t *pair = n->data.mapping.pairs.start;
    yaml_node_t *k = sim_yaml_node(&p->y, pair->key), *v = sim_yaml_node(&p->y, pair->value);
    const char *attr = NULL;
    if ((rc = sim_yaml_scalar(&p->y, k, "an attribute", &attr)))
        return rc;
    ring->where_attr = -1;
    for (int a = 0; a < SCENARIO_ATTR_COUNT; a++)
        if (strcmp(attr, scenario_attr_name((scenario_attr)a)) == 0)
            ring->where_attr = a;
    if (ring->where_attr < 0)
        return sim_yaml_fail(&p->y, k, "where: unknown attribute \"%s\"; known: profile, "
                                       "sensor, region, tenant", attr);
    yaml_node_item_t one, *first = &one, *last = &one + 1;
    if (v->type == YAML_SEQUENCE_NODE) {
        first = v->data.sequence.items.start;
        last = v->data.sequence.items.top;
    } else {
        one = pair->value;
    }
    if (first == last)
        return sim_yaml_fail(&p->y, v, "where.%s: give at least one value", attr);
    if (!(ring->where.items = sim_calloc((size_t)(last - first), sizeof *ring->where.items)))
        return sim_yaml_nomem(p->y.err, p->y.errlen);
    size_t o = (size_t)snprintf(ring->selector, sizeof ring->selector, "%s=", attr);
    for (yaml_node_item_t *it = first; it < last; it++) {
        yaml_node_t *e = sim_yaml_node(&p->y, *it);
        const char *value = NULL;
        if ((rc = sim_yaml_scalar(&p->y, e, "a value", &value)))
            return rc;
        scenario_name *item = &ring->where.items[ring->where.count];
        if (!(item->name = sim_strdup(value)))
            return sim_yaml_nomem(p->y.err, p->y.errlen);
        item->mark = mark_of(p, e);
        ring->where.count++;
        if (o < sizeof ring->selector)
            o += (size_t)snprintf(ring->selector + o, sizeof ring->selector - o, "%s%s",
                                  it == first ? "" : ",", value);
    }
    return 0;
}

static int parse_ring(parser *p, yaml_node_t *n, scenario_plan *plan, scenario_ring *ring)
{
    static const char *const keys[] = {"name", "share", "where", "bake"};
    yaml_node_t *v[4], *k[4];
    int rc = sim_yaml_fields(&p->y, n, "rollout ring", keys, 4, v, k);
    if (rc)
        return rc;
    ring->mark = mark_of(p, n);
    ring->where_attr = -1;
    if (!v[0])
        return sim_yaml_missing(&p->y, n, "rollout ring", "name");
    if ((rc = get_name(p, v[0], "ring name", ring->name)))
        return rc;
    for (size_t i = 0; i < plan->nrings; i++)
        if (strcmp(plan->rings[i].name, ring->name) == 0)
            return sim_yaml_fail(&p->y, v[0], "ring \"%s\" is given twice", ring->name);
    if (!v[1] == !v[2])
        return sim_yaml_fail(&p->y, n, "ring %s: give a share of the fleet or a where, one of "
                                       "the two", ring->name);
    if (v[1]) {
        if ((rc = get_share(p, v[1], "share", &ring->share)))
            return rc;
        if (ring->share <= 0)
            return sim_yaml_fail(&p->y, v[1], "share: a ring needs more than 0%%");
        for (size_t i = 0; i < plan->nrings; i++)
            if (plan->rings[i].where_attr < 0 && plan->rings[i].share >= ring->share)
                return sim_yaml_fail(&p->y, v[1],
                                     "share: shares are cumulative (0.1%%, 1%%, 10%%, ...) and "
                                     "must grow from ring to ring");
        const char *text = NULL;
        sim_yaml_scalar(&p->y, v[1], "share", &text);
        snprintf(ring->selector, sizeof ring->selector, "%s", text);
    } else if ((rc = parse_where(p, v[2], ring))) {
        return rc;
    }
    if (v[3] && (rc = get_duration(p, v[3], "bake", false, &ring->bake_ms)))
        return rc;
    return 0;
}

static int parse_gate(parser *p, yaml_node_t *n, scenario_gate *g)
{
    static const char *const keys[] = {"min_exposure", "max_fault_rate_upper", "alpha",
                                       "prior", "every", "on_failure"};
    yaml_node_t *v[6], *k[6];
    int rc = sim_yaml_fields(&p->y, n, "rollout gate", keys, 6, v, k);
    if (rc)
        return rc;
    if (v[0] && (rc = get_u64(p, v[0], "min_exposure", 1, 100000000, &g->min_exposure)))
        return rc;
    if (v[1] && (rc = get_share(p, v[1], "max_fault_rate_upper", &g->max_rate_upper)))
        return rc;
    if (v[2]) {
        if ((rc = get_share(p, v[2], "alpha", &g->alpha)))
            return rc;
        if (g->alpha <= 0 || g->alpha >= 0.5)
            return sim_yaml_fail(&p->y, v[2], "alpha: want more than 0%% and less than 50%%");
    }
    if (v[3]) {
        uint64_t k100;
        if ((rc = get_u64(p, v[3], "prior", 1, 1000000, &k100)))
            return rc;
        g->prior = (double)k100;
    }
    if (v[4] && (rc = get_duration(p, v[4], "every", true, &g->every_ms)))
        return rc;
    if (v[5]) {
        const char *text = NULL;
        if ((rc = sim_yaml_scalar(&p->y, v[5], "on_failure", &text)))
            return rc;
        if (strcmp(text, "rollback") && strcmp(text, "halt"))
            return sim_yaml_fail(&p->y, v[5], "on_failure: \"rollback\" or \"halt\", not "
                                              "\"%s\"", text);
        g->rollback = strcmp(text, "rollback") == 0;
    }
    return 0;
}

void scenario_default_plan(scenario_plan *plan, const char *name)
{
    memset(plan, 0, sizeof *plan);
    snprintf(plan->name, sizeof plan->name, "%s", name);
    plan->gate = (scenario_gate){.min_exposure = 20, .max_rate_upper = 0.05, .alpha = 0.05,
                                 .prior = 100, .every_ms = 10 * 60000, .rollback = true};
}

static int parse_plan(parser *p, yaml_node_t *n, scenario_plan *plan)
{
    static const char *const keys[] = {"name", "rings", "gate"};
    yaml_node_t *v[3], *k[3];
    int rc = sim_yaml_fields(&p->y, n, "rollout plan", keys, 3, v, k);
    if (rc)
        return rc;
    if (!v[0])
        return sim_yaml_missing(&p->y, n, "rollout plan", "name");
    scenario_default_plan(plan, "");
    plan->mark = mark_of(p, n);
    if ((rc = get_name(p, v[0], "plan name", plan->name)))
        return rc;
    if (!file_name_part(plan->name))
        return sim_yaml_fail(&p->y, v[0], "plan name: \"%s\" names a store file "
                             "(<store>.%s.db): no '/', '.' or '..'", plan->name, plan->name);
    if (v[2] && (rc = parse_gate(p, v[2], &plan->gate)))
        return rc;
    if (!v[1])
        return 0;
    if ((rc = sim_yaml_expect(&p->y, v[1], YAML_SEQUENCE_NODE, "rings")))
        return rc;
    size_t count = (size_t)(v[1]->data.sequence.items.top - v[1]->data.sequence.items.start);
    if (count > 64)
        return sim_yaml_fail(&p->y, v[1], "rings: at most 64");
    if (count && !(plan->rings = sim_calloc(count, sizeof *plan->rings)))
        return sim_yaml_nomem(p->y.err, p->y.errlen);
    for (yaml_node_item_t *it = v[1]->data.sequence.items.start;
         it < v[1]->data.sequence.items.top; it++) {
        scenario_ring *ring = &plan->rings[plan->nrings];
        rc = parse_ring(p, sim_yaml_node(&p->y, *it), plan, ring);
        plan->nrings++; /* counted even on error, so its names are freed */
        if (rc)
            return rc;
    }
    const scenario_ring *last = plan->nrings ? &plan->rings[plan->nrings - 1] : NULL;
    if (last && (last->where_attr >= 0 || last->share < 1.0))
        return scenario__report(p->y.err, p->y.errlen, last->mark,
                                "ring %s: the last ring takes everyone left; give it "
                                "share: 100%%", last->name);
    return 0;
}

/* rollout: all-at-once, {plan: all-at-once}, or {plans: [{name, rings, gate}]}. */
static int parse_rollout(parser *p, yaml_node_t *n)
{
    static const char *const keys[] = {"plan", "plans"};
    scenario *s = p->s;
    yaml_node_t *v[2] = {NULL, NULL}, *k[2];
    int rc = 0;
    if (n->type == YAML_SCALAR_NODE)
        v[0] = n;
    else if ((rc = sim_yaml_fields(&p->y, n, "rollout", keys, 2, v, k)))
        return rc;
    if (!v[0] == !v[1])
        return sim_yaml_fail(&p->y, n, "rollout: give plans (a list), or plan: all-at-once");
    plans_free(s);
    if (v[0]) {
        const char *text = NULL;
        if ((rc = sim_yaml_scalar(&p->y, v[0], "rollout.plan", &text)))
            return rc;
        if (strcmp(text, "all-at-once") != 0)
            return sim_yaml_fail(&p->y, v[0], "rollout.plan: only \"all-at-once\" stands "
                                              "alone; a staged plan goes under plans:");
        if (!(s->plans = sim_calloc(1, sizeof *s->plans)))
            return sim_yaml_nomem(p->y.err, p->y.errlen);
        scenario_default_plan(&s->plans[0], "all-at-once");
        s->nplans = 1;
        return 0;
    }
    if ((rc = sim_yaml_expect(&p->y, v[1], YAML_SEQUENCE_NODE, "rollout.plans")))
        return rc;
    size_t count = (size_t)(v[1]->data.sequence.items.top - v[1]->data.sequence.items.start);
    if (count == 0 || count > 16)
        return sim_yaml_fail(&p->y, v[1], "rollout.plans: give 1 to 16 plans");
    if (!(s->plans = sim_calloc(count, sizeof *s->plans)))
        return sim_yaml_nomem(p->y.err, p->y.errlen);
    for (yaml_node_item_t *it = v[1]->data.sequence.items.start;
         it < v[1]->data.sequence.items.top; it++) {
        yaml_node_t *e = sim_yaml_node(&p->y, *it);
        scenario_plan *plan = &s->plans[s->nplans];
        rc = parse_plan(p, e, plan);
        s->nplans++;
        if (rc)
            return rc;
        for (size_t i = 0; i + 1 < s->nplans; i++)
            if (strcmp(s->plans[i].name, plan->name) == 0)
                return sim_yaml_fail(&p->y, e, "plan \"%s\" is given twice", plan->name);
    }
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
    if (!valid_name(s->name) || !file_name_part(s->name))
        return sim_yaml_fail(&p->y, v[NAME],
                             "name: \"%s\" is not a usable name: it names the store file "
                             "(1 to %d characters; no '/', control characters, commas or "
                             "quotes; not '.' or '..')", s->name, SCENARIO_NAME_MAX);
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
    /* Machines booted before it: their FILETIME boot times must not wrap. */
    if (s->start_ms < 315532800000ll)
        return sim_yaml_fail(&p->y, v[START], "start: %s is before 1980", start);
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
    if (v[ROLLOUT] && (rc = parse_rollout(p, v[ROLLOUT])))
        return rc;
    if (!s->nplans) {
        if (!(s->plans = sim_calloc(1, sizeof *s->plans)))
            return sim_yaml_nomem(p->y.err, p->y.errlen);
        scenario_default_plan(&s->plans[0], "all-at-once");
        s->nplans = 1;
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
        scenario__report(err, errlen, s->inventory_mark, "fleet.inventory: %s", why);
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
        rc = sim_yaml_parser_error(&yp, path, text, len, err, errlen);
        yaml_parser_delete(&yp);
        scenario_destroy(s);
        return rc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        rc = scenario__report(err, errlen, (scenario_mark){path, 1, 1}, "empty scenario");
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
            rc = sim_yaml_parser_error(&yp, path, text, len, err, errlen);
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
        rc = scenario__finish(s, err, errlen);
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
        scenario__names_free(&s->attrs[a]);
    scenario__names_free(&s->online_names);
    content_free(&s->on_disk);
    content_free(&s->update_content);
    content_free(&s->revert_content);
    sim_free(s->online_given);
    sim_free(s->online);
    sim_free(s->rows);
    sim_free(s->inventory_ids);
    scenario__extras_free(s);
    sim_free(s->inventory);
    sim_free(s->inventory_path);
    sim_free(s->update_image);
    sim_free(s->install_dir);
    plans_free(s);
    sim_free(s->name);
    sim_free(s->description);
    sim_free(s->dir);
    sim_free(s->path);
    sim_free(s);
}
