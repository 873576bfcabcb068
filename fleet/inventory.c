/*
 * inventory.c — the inventory CSV: a fleet given endpoint by endpoint
 * (id,profile,sensor,region,tenant) instead of as shares of a size.  Any
 * other column (hardware, site, ...) is an attribute the run stores for
 * cohorts; an empty cell leaves that endpoint without it.
 *
 * scenario.c reads fleet.inventory's file and hands its text here;
 * scenario_load_inventory() turns it into the scenario's rows, interns the
 * names of each attribute (so a million rows cost a few hundred strings),
 * derives each name's share from its count, and then lets the parser bind
 * the online curves to the regions the CSV named (scenario__finish).
 * Errors point at the CSV's line, as the YAML's point at theirs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scenario-internal.h"
#include "sim.h"
#include "yamldoc.h"

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
            rc = scenario__report(err, errlen, (scenario_mark){s->inventory_path, refs[i].line, 0},
                                  "duplicate id \"%s\" (first on line %u)",
                                  s->inventory_ids + refs[i].offset, refs[i - 1].line);
    sim_free(refs);
    return rc;
}

enum { COL_ID, COL_PROFILE, COL_SENSOR, COL_REGION, COL_TENANT, NCOLS };
static const char *const csv_columns[NCOLS] = {"id", "profile", "sensor", "region", "tenant"};
#define MAX_COLS (NCOLS + (int)SCENARIO_MAX_EXTRA)

/* Attribute names the store gives endpoints itself (its endpoint_attr view). */
static const char *const reserved_keys[] = {"os", "ring"};

typedef struct csv_state {
    scenario *s;
    intern tables[SCENARIO_ATTR_COUNT];
    intern extra[SCENARIO_MAX_EXTRA];
    int map[NCOLS];                     /* field index of each named column */
    int extra_at[SCENARIO_MAX_EXTRA];   /* field index of each extra column */
    int ncols;
    uint32_t *lines;
    size_t rows_cap, ids_len, ids_cap;
} csv_state;

/* An extra column's name: a letter, then letters, digits, '_', '-', '.'. */
static bool good_key(const char *k)
{
    if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z')))
        return false;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
              (*k >= '0' && *k <= '9') || *k == '_' || *k == '-' || *k == '.'))
            return false;
    return true;
}

/* Does key, without surrounding spaces and in any case, spell name? */
static bool spells(const char *key, const char *name)
{
    size_t len = strlen(key), n = strlen(name);
    while (len && *key == ' ')
        key++, len--;
    while (len && key[len - 1] == ' ')
        len--;
    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((key[i] | 0x20) != name[i])
            return false;
    return true;
}

static int add_extra(csv_state *st, const char *key, int field, scenario_mark m, char *err,
                     size_t errlen)
{
    scenario *s = st->s;
    for (size_t r = 0; r < sizeof reserved_keys / sizeof reserved_keys[0]; r++)
        if (strcmp(key, reserved_keys[r]) == 0)
            return scenario__report(err, errlen, m, "column \"%s\": fleetsim names that "
                                    "attribute itself; call the column otherwise", key);
    /* "Tenant", " profile", "OS": a named column mistyped, not an attribute. */
    const char *const *names[2] = {csv_columns, reserved_keys};
    size_t counts[2] = {NCOLS, sizeof reserved_keys / sizeof reserved_keys[0]};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < counts[l]; i++)
            if (spells(key, names[l][i]))
                return scenario__report(err, errlen, m, "column \"%s\": did you mean \"%s\"? "
                                        "(column names are exact: case and spaces count)", key,
                                        names[l][i]);
    if (!good_key(key) || strlen(key) > SCENARIO_EXTRA_KEY_MAX)
        return scenario__report(err, errlen, m, "column \"%.64s\": a column name is a letter "
                                "and then letters, digits, '_', '-' or '.', at most %d in all",
                                key, SCENARIO_EXTRA_KEY_MAX);
    for (size_t k = 0; k < s->nextra; k++)
        if (strcmp(s->extra_keys[k], key) == 0)
            return scenario__report(err, errlen, m, "column \"%s\" is given twice", key);
    char *copy = sim_strdup(key);
    if (!copy)
        return sim_yaml_nomem(err, errlen);
    st->extra[s->nextra] = (intern){.names = &s->extra_values[s->nextra],
                                    .max = SCENARIO_MAX_TENANTS};
    st->extra_at[s->nextra] = field;
    s->extra_keys[s->nextra++] = copy;
    return 0;
}

static int parse_header(csv_state *st, char *line, uint32_t lineno, char *err, size_t errlen)
{
    scenario *s = st->s;
    char *f[MAX_COLS + 1];
    size_t lens[MAX_COLS + 1];
    scenario_mark m = {s->inventory_path, lineno, 0};
    int n = split_csv(line, f, lens, MAX_COLS);
    if (n < 0)
        return scenario__report(err, errlen, m, "malformed quoting in the header");
    if (n > MAX_COLS)
        return scenario__report(err, errlen, m, "more than %d columns (id, profile, sensor, "
                                "region, tenant and at most %u others)", MAX_COLS,
                                SCENARIO_MAX_EXTRA);
    for (int c = 0; c < NCOLS; c++)
        st->map[c] = -1;
    for (int i = 0; i < n; i++) {
        f[i][lens[i]] = '\0';
        if (lens[i] == 0)
            return scenario__report(err, errlen, m, "column %d has no name", i + 1);
        int c = 0;
        while (c < NCOLS && strcmp(f[i], csv_columns[c]) != 0)
            c++;
        int rc = 0;
        if (c == NCOLS)
            rc = add_extra(st, f[i], i, m, err, errlen);
        else if (st->map[c] >= 0)
            rc = scenario__report(err, errlen, m, "column \"%s\" is given twice", f[i]);
        else
            st->map[c] = i;
        if (rc)
            return rc;
    }
    for (int c = 0; c < NCOLS; c++)
        if (st->map[c] < 0)
            return scenario__report(err, errlen, m, "missing column \"%s\" (the header names "
                                    "id, profile, sensor, region, tenant, and any others)",
                                    csv_columns[c]);
    st->ncols = n;
    return 0;
}

/* A cell's characters: none that would break a report or a selector. */
static int check_cell(const char *column, bool is_id, const char *v, size_t len, scenario_mark m,
                      char *err, size_t errlen)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f ||
            (!is_id && (v[i] == ',' || v[i] == '"')))
            return scenario__report(err, errlen, m, "%s: control characters%s are not allowed",
                                    column, is_id ? "" : ", commas or quotes");
    if (len > SCENARIO_NAME_MAX)
        return scenario__report(err, errlen, m, "%s: longer than %d characters", column,
                                SCENARIO_NAME_MAX);
    return 0;
}

static int add_row(csv_state *st, char *line, uint32_t lineno, char *err, size_t errlen)
{
    scenario *s = st->s;
    scenario_mark m = {s->inventory_path, lineno, 0};
    const int *map = st->map;
    char *f[MAX_COLS + 1];
    size_t lens[MAX_COLS + 1];
    int n = split_csv(line, f, lens, st->ncols);
    if (n < 0)
        return scenario__report(err, errlen, m, "malformed quoting");
    if (n != st->ncols)
        return scenario__report(err, errlen, m, "expected %d fields, got %s%d", st->ncols,
                                n > st->ncols ? "more than " : "", n > st->ncols ? st->ncols : n);
    if (s->fleet_size >= SCENARIO_MAX_FLEET)
        return scenario__report(err, errlen, m, "more than %u endpoints", SCENARIO_MAX_FLEET);
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
        if (s->nextra) {
            uint32_t *cells = sim_realloc(s->extra_cells, cap * s->nextra * sizeof *cells);
            if (!cells)
                return sim_yaml_nomem(err, errlen);
            s->extra_cells = cells;
        }
        st->rows_cap = cap;
    }
    scenario_row *row = &s->rows[s->fleet_size];
    uint32_t idx[SCENARIO_ATTR_COUNT];
    for (int c = 0; c < NCOLS; c++) {
        const char *v = f[map[c]];
        size_t len = lens[map[c]];
        if (len == 0)
            return scenario__report(err, errlen, m, "empty %s", csv_columns[c]);
        int rc = check_cell(csv_columns[c], c == COL_ID, v, len, m, err, errlen);
        if (rc)
            return rc;
        if (c == COL_ID) {
            if (st->ids_len + len + 1 > UINT32_MAX)
                return scenario__report(err, errlen, m, "ids too long in total");
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
            return scenario__report(err, errlen, m, "more than %zu distinct %ss", st->tables[a].max,
                                    scenario_attr_name(a));
        idx[a] = (uint32_t)i;
    }
    /* Extra columns: an empty cell is no attribute. */
    for (size_t k = 0; k < s->nextra; k++) {
        const char *v = f[st->extra_at[k]];
        size_t len = lens[st->extra_at[k]];
        uint32_t *cell = &s->extra_cells[s->fleet_size * s->nextra + k];
        *cell = 0;
        if (len == 0)
            continue;
        int rc = check_cell(s->extra_keys[k], false, v, len, m, err, errlen);
        if (rc)
            return rc;
        int64_t i = intern_name(&st->extra[k], v, len, m);
        if (i == SIM_ENOMEM)
            return sim_yaml_nomem(err, errlen);
        if (i < 0)
            return scenario__report(err, errlen, m, "%s: more than %zu distinct values",
                                    s->extra_keys[k], st->extra[k].max);
        *cell = (uint32_t)i + 1;
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
            return scenario__report(err, errlen, (scenario_mark){s->inventory_path, lineno, 0},
                                    "NUL character");
        if (n == 0)
            continue;
        int rc = header ? add_row(st, line, lineno, err, errlen)
                        : parse_header(st, line, lineno, err, errlen);
        if (rc)
            return rc;
        header = true;
    }
    if (!header)
        return scenario__report(err, errlen, (scenario_mark){s->inventory_path, 1, 0},
                                "empty inventory (expected a header: "
                                "id,profile,sensor,region,tenant)");
    if (s->fleet_size == 0)
        return scenario__report(err, errlen, (scenario_mark){s->inventory_path, lineno, 0},
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
        scenario__names_free(&s->attrs[a]);
        st.tables[a].names = &s->attrs[a];
        st.tables[a].max = a == SCENARIO_ATTR_TENANT ? SCENARIO_MAX_TENANTS : SCENARIO_MAX_NAMES;
    }
    scenario__extras_free(s);
    s->fleet_size = 0;
    int rc = parse_csv(&st, text, len, err, errlen);
    if (rc == 0)
        rc = check_unique_ids(s, st.lines, err, errlen);
    if (rc == 0) {
        for (int a = 0; a < SCENARIO_ATTR_COUNT; a++)
            for (size_t i = 0; i < s->attrs[a].count; i++)
                s->attrs[a].items[i].share =
                    (double)st.tables[a].counts[i] / (double)s->fleet_size;
        rc = scenario__finish(s, err, errlen);
    }
    for (int a = 0; a < SCENARIO_ATTR_COUNT; a++) {
        sim_free(st.tables[a].slots);
        sim_free(st.tables[a].counts);
    }
    for (size_t k = 0; k < s->nextra; k++) {
        sim_free(st.extra[k].slots);
        sim_free(st.extra[k].counts);
    }
    sim_free(st.lines);
    sim_free(text);
    if (rc) {
        for (int a = 0; a < SCENARIO_ATTR_COUNT; a++)
            scenario__names_free(&s->attrs[a]);
        sim_free(s->rows);
        sim_free(s->inventory_ids);
        scenario__extras_free(s);
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

const char *scenario_row_extra(const scenario *s, uint64_t row, size_t k)
{
    if (!s || !s->extra_cells || row >= s->fleet_size || k >= s->nextra)
        return NULL;
    uint32_t cell = s->extra_cells[row * s->nextra + k];
    return cell ? s->extra_values[k].items[cell - 1].name : NULL;
}

void scenario__extras_free(scenario *s)
{
    for (size_t k = 0; k < s->nextra; k++) {
        sim_free(s->extra_keys[k]);
        s->extra_keys[k] = NULL;
        scenario__names_free(&s->extra_values[k]);
    }
    sim_free(s->extra_cells);
    s->extra_cells = NULL;
    s->nextra = 0;
}
