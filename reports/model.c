/*
 * model.c — report_load: read a run store into a `report`.
 *
 * Everything is computed with SQL over the store's tables, one row per
 * endpoint at most, so a million-endpoint store reports in seconds: counts
 * per endpoint first (crashing emulations, received, recovered), grouped by
 * the cohort attributes; crash buckets from the `buckets` view with one
 * representative record each; the fleet over time from the timeline.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "report.h"
#include "sim.h"

/* The store schema this layer reads (fleet/store.h, STORE_SCHEMA_VERSION). */
#define REPORT_SCHEMA_VERSION "3"

typedef struct loader {
    sqlite3 *db;
    report *r;
    const report_options *opts;
    char *err;
    size_t errlen;
    char keys[1024];   /* SQL expressions of the `by` attributes, comma-joined */
    bool oom;          /* a col_dup or col_str could not copy its text */
} loader;

static const char *const COLUMNS[][2] = {
    {"profile", "e.profile"},
    {"os", "e.os_build || '.' || e.os_ubr"},
    {"sensor", "e.sensor"},
    {"region", "e.region"},
    {"tenant", "e.tenant"},
    {"ring", "e.ring"},
};

static int fail(loader *l, int rc, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(l->err, l->errlen, "report: %s: ", l->r->store_path);
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < l->errlen)
        vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return rc;
}

static int sql_fail(loader *l)
{
    return fail(l, SIM_EFORMAT, "%s", sqlite3_errmsg(l->db));
}

static char *col_dup(loader *l, sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    char *copy = t ? sim_strdup((const char *)t) : NULL;
    l->oom |= t && !copy;
    return copy;
}

/* A required string: "" rather than NULL, so renderers need no checks. */
static char *col_str(loader *l, sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    char *copy = sim_strdup(t ? (const char *)t : "");
    l->oom |= !copy;
    return copy;
}

/* A new zeroed element at the end of the array *items_ptr holds *n of, each
 * `size` bytes; NULL when out of memory (the array is then as it was). */
static void *grow(void *items_ptr, size_t *n, size_t size)
{
    char **items = items_ptr;
    char *grown = sim_realloc(*items, (*n + 1) * size);
    if (!grown)
        return NULL;
    *items = grown;
    memset(grown + *n * size, 0, size);
    return grown + (*n)++ * size;
}

static int prepare(loader *l, const char *sql, sqlite3_stmt **s)
{
    if (sqlite3_prepare_v2(l->db, sql, -1, s, NULL) != SQLITE_OK)
        return sql_fail(l);
    return 0;
}

/* A statement whose text puts the `by` attributes' SQL where the two "%s"
 * of `fmt` are: the select list and the GROUP BY. */
static int prepare_by(loader *l, const char *fmt, sqlite3_stmt **s)
{
    char *sql = sqlite3_mprintf(fmt, l->keys, l->keys);
    if (!sql)
        return fail(l, SIM_ENOMEM, "out of memory");
    int rc = prepare(l, sql, s);
    sqlite3_free(sql);
    return rc;
}

void report_options_init(report_options *o)
{
    memset(o, 0, sizeof *o);
    o->by[0] = "profile";
    o->by[1] = "sensor";
    o->interval = REPORT_WILSON;
    o->max_buckets = 20;
    o->program = "fleetsim";
}

int report_parse_by(report_options *o, char *text, char *err, size_t errlen)
{
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(text, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        for (size_t len = strlen(t); len && t[len - 1] == ' ';)
            t[--len] = '\0';
        if (!*t)
            continue;
        if (n == REPORT_MAX_BY) {
            snprintf(err, errlen, "--by: at most %d attributes", REPORT_MAX_BY);
            return SIM_EINVAL;
        }
        for (size_t i = 0; i < n; i++)
            if (strcmp(o->by[i], t) == 0) {
                snprintf(err, errlen, "--by: \"%s\" is named twice", t);
                return SIM_EINVAL;
            }
        for (const char *c = t; *c; c++)
            if (!(*c == '_' || *c == '-' || *c == '.' || (*c >= 'a' && *c <= 'z') ||
                  (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))) {
                snprintf(err, errlen, "--by: \"%s\" is not an attribute name", t);
                return SIM_EINVAL;
            }
        o->by[n++] = t;
    }
    if (n == 0) {
        snprintf(err, errlen, "--by: name at least one attribute (profile, sensor, ...)");
        return SIM_EINVAL;
    }
    for (size_t i = n; i < REPORT_MAX_BY; i++)
        o->by[i] = NULL;
    return 0;
}

/* ---- the run ------------------------------------------------------------- */

static int load_run(loader *l)
{
    report *r = l->r;
    sqlite3_stmt *s;
    char *version = NULL;

    /* Not a store at all, or another version of one: say which. */
    if (sqlite3_prepare_v2(l->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1,
                           &s, NULL) != SQLITE_OK)
        return fail(l, SIM_EFORMAT, "not a fleetsim run store (%s)", sqlite3_errmsg(l->db));
    if (sqlite3_step(s) == SQLITE_ROW)
        version = col_dup(l, s, 0);
    sqlite3_finalize(s);
    if (l->oom)
        return fail(l, SIM_ENOMEM, "out of memory");
    if (!version || strcmp(version, REPORT_SCHEMA_VERSION) != 0) {
        int rc = fail(l, SIM_EFORMAT,
                      "store schema version %s; this fleetsim reads version " REPORT_SCHEMA_VERSION,
                      version ? version : "(none)");
        sim_free(version);
        return rc;
    }
    sim_free(version);

    if (prepare(l,
                "SELECT scenario_name, seed, shard, status, fleetsim_version, started_at, "
                "ended_at, virtual_start, reason, plan, virtual_start_ms, duration_ms, "
                "coalesce(virtual_end_ms, duration_ms), fleet_size, exit_code FROM run",
                &s) < 0)
        return SIM_EFORMAT;
    if (sqlite3_step(s) != SQLITE_ROW) {
        sqlite3_finalize(s);
        return fail(l, SIM_EFORMAT, "the store holds no run (it was never started)");
    }
    r->scenario = col_str(l, s, 0);
    r->seed = col_str(l, s, 1);
    r->shard = col_str(l, s, 2);
    r->status = col_str(l, s, 3);
    r->fleetsim_version = col_str(l, s, 4);
    r->started_at = col_str(l, s, 5);
    r->ended_at = col_dup(l, s, 6);
    r->virtual_start = col_str(l, s, 7);
    r->reason = col_dup(l, s, 8);
    r->plan = col_dup(l, s, 9);
    r->virtual_start_ms = sqlite3_column_int64(s, 10);
    r->duration_ms = sqlite3_column_int64(s, 11);
    r->virtual_end_ms = sqlite3_column_int64(s, 12);
    r->fleet_size = (uint64_t)sqlite3_column_int64(s, 13);
    r->exit_code = sqlite3_column_type(s, 14) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 14);
    sqlite3_finalize(s);
    if (l->oom)
        return fail(l, SIM_ENOMEM, "out of memory");
    r->complete = strcmp(r->status, "complete") == 0;

    if (prepare(l,
                "SELECT kind, coalesce(role, ''), name, sha256, version, path FROM artifacts "
                "ORDER BY kind, role, name",
                &s) < 0)
        return SIM_EFORMAT;
    while (sqlite3_step(s) == SQLITE_ROW) {
        report_artifact *a = grow(&r->artifacts, &r->nartifacts, sizeof *a);
        if (!a) {
            sqlite3_finalize(s);
            return fail(l, SIM_ENOMEM, "out of memory");
        }
        *a = (report_artifact){col_str(l, s, 0), col_str(l, s, 1), col_str(l, s, 2), col_dup(l, s, 3),
                               col_dup(l, s, 4), col_dup(l, s, 5)};
    }
    sqlite3_finalize(s);
    return l->oom ? fail(l, SIM_ENOMEM, "out of memory") : 0;
}

/* ---- cohorts ------------------------------------------------------------- */

/* The SQL of each `by` attribute, checked against what the store holds. */
static int build_keys(loader *l)
{
    report *r = l->r;
    size_t o = 0;

    for (size_t i = 0; i < REPORT_MAX_BY && l->opts->by[i]; i++) {
        const char *name = l->opts->by[i], *expr = NULL;
        char *own = NULL;
        for (size_t k = 0; k < sizeof COLUMNS / sizeof COLUMNS[0]; k++)
            if (strcmp(COLUMNS[k][0], name) == 0)
                expr = COLUMNS[k][1];
        if (!expr) {
            sqlite3_stmt *s;
            if (prepare(l, "SELECT 1 FROM endpoint_attrs WHERE key = ?1 LIMIT 1", &s) < 0)
                return SIM_EFORMAT;
            sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
            bool known = sqlite3_step(s) == SQLITE_ROW;
            sqlite3_finalize(s);
            if (!known)
                return fail(l, SIM_EINVAL,
                            "--by: no attribute \"%s\" (profile, os, sensor, region, tenant, "
                            "ring, or one an inventory gave the endpoints)",
                            name);
            own = sqlite3_mprintf("(SELECT value FROM endpoint_attrs a WHERE a.endpoint_id = "
                                  "e.id AND a.key = %Q)",
                                  name);
            expr = own;
        }
        int n = snprintf(l->keys + o, sizeof l->keys - o, "%s%s", o ? ", " : "", expr);
        sqlite3_free(own);
        if (n < 0 || (size_t)n >= sizeof l->keys - o)
            return fail(l, SIM_EINVAL, "--by: too many attributes");
        o += (size_t)n;
        r->by[r->nby++] = name;
    }
    return 0;
}

static void set_rate(report_counts *n, report_interval_method m)
{
    n->rate = n->reached ? (double)n->faulted / (double)n->reached : 0.0;
    report_interval(m, n->faulted, n->reached, &n->lo, &n->hi);
}

static char *join_label(char *const *values, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(values[i]) + 3;
    char *out = sim_malloc(len);
    if (!out)
        return NULL;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, " / ");
        strcat(out, values[i]);
    }
    return out;
}

static int by_label(const void *a, const void *b)
{
    return strcmp(((const report_cohort *)a)->label, ((const report_cohort *)b)->label);
}

/* Worst first: fault rate, then faulted endpoints, then the label. */
static int by_worst(const void *a, const void *b)
{
    const report_cohort *x = a, *y = b;
    double rx = x->n.reached ? x->n.rate : -1, ry = y->n.reached ? y->n.rate : -1;
    if (rx != ry)
        return rx > ry ? -1 : 1;
    if (x->n.faulted != y->n.faulted)
        return x->n.faulted > y->n.faulted ? -1 : 1;
    return strcmp(x->label, y->label);
}

/* Read the `by` values of a row (columns 0..nby-1) into a cohort. */
static int read_values(loader *l, sqlite3_stmt *s, report_cohort *c)
{
    for (size_t i = 0; i < l->r->nby; i++) {
        const unsigned char *t = sqlite3_column_text(s, (int)i);
        if (!(c->values[i] = sim_strdup(t ? (const char *)t : "(none)")))
            return fail(l, SIM_ENOMEM, "out of memory");
    }
    if (!(c->label = join_label(c->values, l->r->nby)))
        return fail(l, SIM_ENOMEM, "out of memory");
    return 0;
}

static void free_cohort(report_cohort *c)
{
    for (size_t i = 0; i < REPORT_MAX_BY; i++)
        sim_free(c->values[i]);
    sim_free(c->label);
    sim_free(c->top_bucket);
}

static int load_cohorts(loader *l)
{
    report *r = l->r;
    sqlite3_stmt *s;
    int rc = prepare_by(l,
        "WITH cr AS (SELECT endpoint_id, count(*) AS n FROM outcomes "
        "            WHERE kind IN ('bugcheck', 'hang') GROUP BY endpoint_id),"
        " rc AS (SELECT DISTINCT endpoint_id FROM timeline"
        "        WHERE kind = 'received' AND detail = 'update'),"
        " rv AS (SELECT DISTINCT endpoint_id FROM timeline"
        "        WHERE kind IN ('recovered', 'repaired')),"
        " un AS (SELECT DISTINCT endpoint_id FROM outcomes WHERE kind = 'unsupported-api') "
        "SELECT %s, count(*), count(rc.endpoint_id), count(cr.endpoint_id),"
        " total(cr.n >= 2), total(cr.n IS NOT NULL AND rv.endpoint_id IS NOT NULL),"
        " count(un.endpoint_id), total(cr.n) "
        "FROM endpoints e LEFT JOIN cr ON cr.endpoint_id = e.id"
        " LEFT JOIN rc ON rc.endpoint_id = e.id LEFT JOIN rv ON rv.endpoint_id = e.id"
        " LEFT JOIN un ON un.endpoint_id = e.id "
        "GROUP BY %s",
        &s);
    if (rc < 0)
        return rc;
    int k = (int)r->nby, step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        report_cohort *c = grow(&r->cohorts, &r->ncohorts, sizeof *c);
        if (!c) {
            sqlite3_finalize(s);
            return fail(l, SIM_ENOMEM, "out of memory");
        }
        if ((rc = read_values(l, s, c)) < 0) {
            sqlite3_finalize(s);
            return rc;
        }
        report_counts *n = &c->n;
        n->endpoints = (uint64_t)sqlite3_column_int64(s, k);
        n->reached = (uint64_t)sqlite3_column_int64(s, k + 1);
        n->faulted = (uint64_t)sqlite3_column_int64(s, k + 2);
        n->boot_looped = (uint64_t)sqlite3_column_double(s, k + 3);
        n->recovered = (uint64_t)sqlite3_column_double(s, k + 4);
        n->unsupported = (uint64_t)sqlite3_column_int64(s, k + 5);
        n->crashes = (uint64_t)sqlite3_column_double(s, k + 6);
        n->still_down = n->faulted - n->recovered;
        set_rate(n, r->interval);
        report_counts *t = &r->total;
        t->endpoints += n->endpoints;
        t->reached += n->reached;
        t->faulted += n->faulted;
        t->boot_looped += n->boot_looped;
        t->recovered += n->recovered;
        t->still_down += n->still_down;
        t->unsupported += n->unsupported;
        t->crashes += n->crashes;
    }
    sqlite3_finalize(s);
    if (step != SQLITE_DONE)
        return sql_fail(l);
    set_rate(&r->total, r->interval);
    if (r->ncohorts)
        qsort(r->cohorts, r->ncohorts, sizeof *r->cohorts, by_label);
    return 0;
}

/* ---- buckets ------------------------------------------------------------- */

static report_bucket *find_bucket(report *r, const char *key)
{
    for (size_t i = 0; i < r->nbuckets; i++)
        if (strcmp(r->buckets[i].key, key) == 0)
            return &r->buckets[i];
    return NULL;
}

/* Lines of a JSON array of objects, via SQLite's json_each. */
static char *json_lines(loader *l, const char *sql, const char *key)
{
    sqlite3_stmt *s;
    char *out = NULL;
    size_t len = 0;
    if (prepare(l, sql, &s) < 0)
        return NULL;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        size_t n = t ? strlen(t) : 0;
        char *grown = sim_realloc(out, len + n + 2);
        if (!grown) {
            sim_free(out);
            sqlite3_finalize(s);
            return NULL;
        }
        out = grown;
        memcpy(out + len, t ? t : "", n);
        len += n;
        out[len++] = '\n';
        out[len] = '\0';
    }
    sqlite3_finalize(s);
    return out ? out : sim_strdup("");
}

/* A shell word: bare when safe, else in single quotes. */
static size_t shell_word(char *out, size_t room, const char *w)
{
    bool bare = *w != '\0';
    for (const char *c = w; *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:+,", *c))
            bare = false;
    size_t n = 0;
#define PUT(ch) do { if (n + 1 < room) out[n] = (ch); n++; } while (0)
    PUT(' ');
    if (!bare)
        PUT('\'');
    for (const char *c = w; *c; c++) {
        if (*c == '\'' && !bare) {
            PUT('\'');
            PUT('\\');
            PUT('\'');
        }
        PUT(*c);
    }
    if (!bare)
        PUT('\'');
#undef PUT
    if (room)
        out[n < room ? n : room - 1] = '\0';
    return n;
}

static const report_artifact *artifact(const report *r, const char *kind, const char *role,
                                       const char *name)
{
    for (size_t i = 0; i < r->nartifacts; i++) {
        const report_artifact *a = &r->artifacts[i];
        if (strcmp(a->kind, kind) == 0 && (!role || strcmp(a->role, role) == 0) &&
            (!name || strcmp(a->name, name) == 0))
            return a;
    }
    return NULL;
}

/*
 * The command that re-runs an emulation: its image, profile and seed, with
 * the content a booting endpoint holding the update has on disk (the files
 * installed before the run and the update's).  An emulation that met the
 * update live is re-run as the boot after it, which meets the same file.
 */
static char *replay_command(loader *l, const char *image, const char *profile,
                            const char *seed)
{
    const report *r = l->r;
    char cmd[4096];
    size_t n = (size_t)snprintf(cmd, sizeof cmd, "%s emulate", l->opts->program);
    const report_artifact *im = artifact(r, "image", NULL, image);
    const report_artifact *pr = artifact(r, "profile", NULL, profile);

#define ADD(word) n += shell_word(cmd + (n < sizeof cmd ? n : sizeof cmd), \
                                  n < sizeof cmd ? sizeof cmd - n : 0, (word))
    ADD(im && im->path ? im->path : image);
    n += (size_t)snprintf(cmd + (n < sizeof cmd ? n : sizeof cmd),
                          n < sizeof cmd ? sizeof cmd - n : 0, " --profile");
    ADD(profile);
    if (pr && pr->path) {
        char dir[2048];
        snprintf(dir, sizeof dir, "%s", pr->path);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = '\0';
            n += (size_t)snprintf(cmd + (n < sizeof cmd ? n : sizeof cmd),
                                  n < sizeof cmd ? sizeof cmd - n : 0, " --profiles");
            ADD(dir);
        }
    }
    for (size_t i = 0; i < r->nartifacts; i++) {
        const report_artifact *a = &r->artifacts[i];
        if (strcmp(a->kind, "content") != 0 ||
            (strcmp(a->role, "installed") != 0 && strcmp(a->role, "update") != 0))
            continue;
        n += (size_t)snprintf(cmd + (n < sizeof cmd ? n : sizeof cmd),
                              n < sizeof cmd ? sizeof cmd - n : 0, " --content");
        ADD(a->path ? a->path : a->name);
    }
    n += (size_t)snprintf(cmd + (n < sizeof cmd ? n : sizeof cmd),
                          n < sizeof cmd ? sizeof cmd - n : 0, " --seed");
    ADD(seed);
#undef ADD
    if (n >= sizeof cmd)
        return sim_strdup("(the command is too long to show)");
    return sim_strdup(cmd);
}

/* Up to REPORT_MAX_EXAMPLES endpoints, preferring crashes at boot. */
static int load_examples(loader *l, report_bucket *b)
{
    sqlite3_stmt *s;
    if (prepare(l,
                /* In the bucket index's own order, so the first few rows
                 * come without reading the bucket's every crash; an
                 * endpoint's first row is its earliest boot. */
                "SELECT c.endpoint_id, c.boot, o.seed, o.image, e.profile FROM crashes c"
                " JOIN outcomes o USING (endpoint_id, boot)"
                " JOIN endpoints e ON e.id = c.endpoint_id "
                "WHERE c.bucket = ?1 AND o.seed IS NOT NULL AND o.image IS NOT NULL"
                " AND o.start = ?2 "
                "ORDER BY c.endpoint_id, c.boot",
                &s) < 0)
        return SIM_EFORMAT;
    static const char *const starts[] = {"boot", "live"};
    for (size_t pass = 0; pass < 2 && b->nexamples < REPORT_MAX_EXAMPLES; pass++) {
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, b->key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, starts[pass], -1, SQLITE_STATIC);
        while (b->nexamples < REPORT_MAX_EXAMPLES && sqlite3_step(s) == SQLITE_ROW) {
            uint64_t id = (uint64_t)sqlite3_column_int64(s, 0);
            bool seen = false;
            for (size_t i = 0; i < b->nexamples; i++)
                seen |= b->examples[i].endpoint == id;
            if (seen)
                continue;
            report_example *x = &b->examples[b->nexamples];
            x->endpoint = id;
            x->boot = (uint32_t)sqlite3_column_int(s, 1);
            x->command = replay_command(l, (const char *)sqlite3_column_text(s, 3),
                                        (const char *)sqlite3_column_text(s, 4),
                                        (const char *)sqlite3_column_text(s, 2));
            if (!x->command) {
                sqlite3_finalize(s);
                return fail(l, SIM_ENOMEM, "out of memory");
            }
            b->nexamples++;
        }
    }
    sqlite3_finalize(s);
    return 0;
}

/* The representative crash record: the first with its details. */
static int load_representative(loader *l, report_bucket *b)
{
    sqlite3_stmt *s;
    if (prepare(l,
                /* Two index walks that stop at their first row, rather than
                 * one sort of the bucket's every crash. */
                "SELECT * FROM (SELECT o.bugcheck_name, c.symbol, c.instruction, c.access,"
                " c.address_class, c.address FROM crashes c"
                " JOIN outcomes o USING (endpoint_id, boot)"
                " WHERE c.bucket = ?1 AND c.stack IS NOT NULL"
                " ORDER BY c.endpoint_id, c.boot LIMIT 1) "
                "UNION ALL SELECT * FROM (SELECT o.bugcheck_name, c.symbol, c.instruction,"
                " c.access, c.address_class, c.address FROM crashes c"
                " JOIN outcomes o USING (endpoint_id, boot)"
                " WHERE c.bucket = ?1 ORDER BY c.endpoint_id, c.boot LIMIT 1)",
                &s) < 0)
        return SIM_EFORMAT;
    sqlite3_bind_text(s, 1, b->key, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        b->bugcheck_name = col_str(l, s, 0);
        b->symbol = col_str(l, s, 1);
        b->instruction = col_str(l, s, 2);
        b->access = col_str(l, s, 3);
        b->address_class = col_str(l, s, 4);
        b->address = col_str(l, s, 5);
    }
    sqlite3_finalize(s);
    if (l->oom)
        return fail(l, SIM_ENOMEM, "out of memory");
    if (!b->symbol)
        return fail(l, SIM_EFORMAT, "bucket %s has no crash record", b->key);

    static const char STACK[] =
        "SELECT coalesce(json_extract(f.value, '$.module'), '?') ||"
        " CASE WHEN coalesce(json_extract(f.value, '$.function'), '') IN"
        "   ('', 'unknown_function') THEN '' ELSE '!' || json_extract(f.value, '$.function') END"
        " || '+' || coalesce(json_extract(f.value, '$.offset'), '0x0')"
        " || '  (' || coalesce(json_extract(f.value, '$.rip'), '') || ')' "
        "FROM (SELECT stack FROM crashes WHERE bucket = ?1 AND stack IS NOT NULL"
        "      ORDER BY endpoint_id, boot LIMIT 1) c, json_each(c.stack) f ORDER BY f.key";
    static const char DISASM[] =
        "SELECT coalesce(json_extract(f.value, '$.address'), '') || '  ' ||"
        " coalesce(json_extract(f.value, '$.text'), '') "
        "FROM (SELECT disasm FROM crashes WHERE bucket = ?1 AND disasm IS NOT NULL"
        "      ORDER BY endpoint_id, boot LIMIT 1) c, json_each(c.disasm) f ORDER BY f.key";
    b->stack = json_lines(l, STACK, b->key);
    b->disasm = json_lines(l, DISASM, b->key);
    if (!b->stack || !b->disasm)
        return fail(l, SIM_ENOMEM, "out of memory");
    return 0;
}

static int load_buckets(loader *l)
{
    report *r = l->r;
    sqlite3_stmt *s;
    int step;

    if (prepare(l,
                "SELECT bucket, coalesce(bugcheck, 0), crashes, endpoints, first_vt_ms,"
                " last_vt_ms FROM buckets ORDER BY endpoints DESC, crashes DESC, bucket",
                &s) < 0)
        return SIM_EFORMAT;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        r->nbuckets_total++;
        if (l->opts->max_buckets && r->nbuckets >= l->opts->max_buckets)
            continue;
        report_bucket *b = grow(&r->buckets, &r->nbuckets, sizeof *b);
        if (!b) {
            sqlite3_finalize(s);
            return fail(l, SIM_ENOMEM, "out of memory");
        }
        b->key = col_str(l, s, 0);
        b->bugcheck = (uint32_t)sqlite3_column_int64(s, 1);
        b->crashes = (uint64_t)sqlite3_column_int64(s, 2);
        b->endpoints = (uint64_t)sqlite3_column_int64(s, 3);
        b->first_vt_ms = sqlite3_column_int64(s, 4);
        b->last_vt_ms = sqlite3_column_int64(s, 5);
    }
    sqlite3_finalize(s);
    if (step != SQLITE_DONE)
        return sql_fail(l);
    if (l->oom)
        return fail(l, SIM_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->nbuckets; i++) {
        int rc = load_representative(l, &r->buckets[i]);
        if (rc == 0)
            rc = load_examples(l, &r->buckets[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Each cohort's top bucket, and each bucket's cohorts, from one query. */
static int load_bucket_cohorts(loader *l)
{
    report *r = l->r;
    sqlite3_stmt *s;
    int rc = prepare_by(l,
        "SELECT %s, c.bucket, count(*) AS n"
        " FROM (SELECT DISTINCT bucket, endpoint_id FROM crashes) c"
        " JOIN endpoints e ON e.id = c.endpoint_id GROUP BY %s, c.bucket "
        "ORDER BY n DESC, c.bucket",
        &s);
    if (rc < 0)
        return rc;
    while (sqlite3_step(s) == SQLITE_ROW) {
        report_cohort key = {0};
        if ((rc = read_values(l, s, &key)) < 0) {
            free_cohort(&key);
            break;
        }
        report_cohort *c = bsearch(&key, r->cohorts, r->ncohorts, sizeof *r->cohorts, by_label);
        const char *bucket = (const char *)sqlite3_column_text(s, (int)r->nby);
        uint64_t n = (uint64_t)sqlite3_column_int64(s, (int)r->nby + 1);
        if (c && bucket && !c->top_bucket) {
            c->top_bucket = sim_strdup(bucket);
            c->top_bucket_endpoints = n;
            l->oom |= !c->top_bucket;
        }
        report_bucket *b = bucket ? find_bucket(r, bucket) : NULL;
        if (b && c) {
            char *label = sim_strdup(c->label), **slot = NULL;
            if (label && !(slot = grow(&b->cohorts, &b->ncohorts, sizeof *slot)))
                sim_free(label);
            if (slot)
                *slot = label;
            else
                l->oom = true;
        }
        free_cohort(&key);
        if (l->oom) {
            rc = fail(l, SIM_ENOMEM, "out of memory");
            break;
        }
    }
    sqlite3_finalize(s);
    return rc;
}

/* ---- the fleet over time -------------------------------------------------- */

static int load_series(loader *l)
{
    report *r = l->r;
    static const char *const SQL[3] = {
        "SELECT min(vt_ms) FROM timeline WHERE kind = 'received' AND detail = 'update'"
        " GROUP BY endpoint_id",
        "SELECT min(vt_ms) FROM timeline WHERE kind = 'crashed' GROUP BY endpoint_id",
        "SELECT min(vt_ms) FROM timeline WHERE kind IN ('recovered', 'repaired')"
        " GROUP BY endpoint_id",
    };
    int64_t end = r->virtual_end_ms > 0 ? r->virtual_end_ms : r->duration_ms;
    if (end <= 0)
        end = 1;
    uint64_t bins[3][REPORT_SERIES_BINS] = {{0}};
    for (int k = 0; k < 3; k++) {
        sqlite3_stmt *s;
        if (prepare(l, SQL[k], &s) < 0)
            return SIM_EFORMAT;
        while (sqlite3_step(s) == SQLITE_ROW) {
            int64_t t = sqlite3_column_int64(s, 0);
            int64_t i = t <= 0 ? 0 : (t * REPORT_SERIES_BINS) / end;
            bins[k][i >= REPORT_SERIES_BINS ? REPORT_SERIES_BINS - 1 : i]++;
        }
        sqlite3_finalize(s);
    }
    uint64_t sum[3] = {0};
    for (size_t i = 0; i < REPORT_SERIES_BINS; i++) {
        for (int k = 0; k < 3; k++)
            sum[k] += bins[k][i];
        r->series[i] = (report_point){end * (int64_t)(i + 1) / REPORT_SERIES_BINS, sum[0],
                                      sum[1], sum[1] - (sum[2] < sum[1] ? sum[2] : sum[1]),
                                      sum[2]};
    }
    r->nseries = REPORT_SERIES_BINS;
    return 0;
}

/* ---- the rollout ---------------------------------------------------------- */

static int load_rollout(loader *l)
{
    report *r = l->r;
    sqlite3_stmt *s;
    if (prepare(l,
                "SELECT ri.ring, ri.name, coalesce(ri.selector, ''), ri.size, ri.bake_ms,"
                " ri.released_vt_ms,"
                " (SELECT count(DISTINCT t.endpoint_id) FROM timeline t JOIN endpoints e"
                "  ON e.id = t.endpoint_id WHERE e.ring = ri.ring AND t.kind = 'received'"
                "  AND t.detail = 'update'),"
                " (SELECT count(DISTINCT o.endpoint_id) FROM outcomes o JOIN endpoints e"
                "  ON e.id = o.endpoint_id WHERE e.ring = ri.ring"
                "  AND o.kind IN ('bugcheck', 'hang')) "
                "FROM rings ri ORDER BY ri.ring",
                &s) < 0)
        return SIM_EFORMAT;
    while (sqlite3_step(s) == SQLITE_ROW) {
        report_ring *g = grow(&r->rings, &r->nrings, sizeof *g);
        if (!g) {
            sqlite3_finalize(s);
            return fail(l, SIM_ENOMEM, "out of memory");
        }
        *g = (report_ring){
            .ring = (uint32_t)sqlite3_column_int(s, 0),
            .name = col_str(l, s, 1),
            .selector = col_str(l, s, 2),
            .size = (uint64_t)sqlite3_column_int64(s, 3),
            .bake_ms = (uint64_t)sqlite3_column_int64(s, 4),
            .released = sqlite3_column_type(s, 5) != SQLITE_NULL,
            .released_ms = sqlite3_column_int64(s, 5),
            .received = (uint64_t)sqlite3_column_int64(s, 6),
            .faulted = (uint64_t)sqlite3_column_int64(s, 7),
        };
    }
    sqlite3_finalize(s);
    if (prepare(l,
                "SELECT ring, vt_ms, gate, action, coalesce(detail, '') FROM gate_decisions g "
                "WHERE action <> 'hold' OR gate = 'detected'"
                " OR (vt_ms, seq) = (SELECT vt_ms, seq FROM gate_decisions"
                "                    ORDER BY vt_ms DESC, seq DESC LIMIT 1) "
                "ORDER BY vt_ms, ring, seq",
                &s) < 0)
        return SIM_EFORMAT;
    while (sqlite3_step(s) == SQLITE_ROW) {
        report_decision *d = grow(&r->decisions, &r->ndecisions, sizeof *d);
        if (!d) {
            sqlite3_finalize(s);
            return fail(l, SIM_ENOMEM, "out of memory");
        }
        *d = (report_decision){(uint32_t)sqlite3_column_int(s, 0), sqlite3_column_int64(s, 1),
                               col_str(l, s, 2), col_str(l, s, 3), col_str(l, s, 4)};
    }
    sqlite3_finalize(s);
    return l->oom ? fail(l, SIM_ENOMEM, "out of memory") : 0;
}

/* ---- the whole ----------------------------------------------------------- */

/* A bucket's cohorts in the order of r->cohorts: worst first. */
static void order_bucket_cohorts(const report *r, report_bucket *b)
{
    size_t n = 0;
    for (size_t c = 0; c < r->ncohorts && n < b->ncohorts; c++)
        for (size_t k = n; k < b->ncohorts; k++)
            if (strcmp(b->cohorts[k], r->cohorts[c].label) == 0) {
                char *t = b->cohorts[n];
                b->cohorts[n++] = b->cohorts[k];
                b->cohorts[k] = t;
                break;
            }
}

int report_load(const char *path, const report_options *opts, report **out, char *err,
                size_t errlen)
{
    report_options defaults;
    if (!opts) {
        report_options_init(&defaults);
        opts = &defaults;
    }
    *out = NULL;
    report *r = sim_calloc(1, sizeof *r);
    if (!r || !(r->store_path = sim_strdup(path))) {
        sim_free(r);
        snprintf(err, errlen, "report: out of memory");
        return SIM_ENOMEM;
    }
    r->interval = opts->interval;
    loader l = {.r = r, .opts = opts, .err = err, .errlen = errlen};

    int rc;
    if (sqlite3_open_v2(path, &l.db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = fail(&l, SIM_EIO, "cannot open: %s", l.db ? sqlite3_errmsg(l.db) : "out of memory");
        goto done;
    }
    sqlite3_busy_timeout(l.db, 5000);
    if ((rc = load_run(&l)) < 0 || (rc = build_keys(&l)) < 0 || (rc = load_cohorts(&l)) < 0 ||
        (rc = load_buckets(&l)) < 0 || (rc = load_bucket_cohorts(&l)) < 0 ||
        (rc = load_series(&l)) < 0 || (rc = load_rollout(&l)) < 0)
        goto done;
    if (r->ncohorts)
        qsort(r->cohorts, r->ncohorts, sizeof *r->cohorts, by_worst);
    for (size_t i = 0; i < r->nbuckets; i++)
        order_bucket_cohorts(r, &r->buckets[i]);
done:
    sqlite3_close(l.db);
    if (rc < 0) {
        report_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void report_free(report *r)
{
    if (!r)
        return;
    char **strings[] = {&r->store_path, &r->scenario, &r->seed, &r->shard, &r->status,
                        &r->fleetsim_version, &r->started_at, &r->ended_at,
                        &r->virtual_start, &r->reason, &r->plan};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        sim_free(*strings[i]);
    for (size_t i = 0; i < r->nartifacts; i++) {
        report_artifact *a = &r->artifacts[i];
        sim_free(a->kind);
        sim_free(a->role);
        sim_free(a->name);
        sim_free(a->sha256);
        sim_free(a->version);
        sim_free(a->path);
    }
    sim_free(r->artifacts);
    for (size_t i = 0; i < r->ncohorts; i++)
        free_cohort(&r->cohorts[i]);
    sim_free(r->cohorts);
    for (size_t i = 0; i < r->nbuckets; i++) {
        report_bucket *b = &r->buckets[i];
        char *own[] = {b->key, b->bugcheck_name, b->symbol, b->instruction, b->access,
                       b->address_class, b->address, b->stack, b->disasm};
        for (size_t k = 0; k < sizeof own / sizeof own[0]; k++)
            sim_free(own[k]);
        for (size_t k = 0; k < b->ncohorts; k++)
            sim_free(b->cohorts[k]);
        sim_free(b->cohorts);
        for (size_t k = 0; k < b->nexamples; k++)
            sim_free(b->examples[k].command);
    }
    sim_free(r->buckets);
    for (size_t i = 0; i < r->nrings; i++) {
        sim_free(r->rings[i].name);
        sim_free(r->rings[i].selector);
    }
    sim_free(r->rings);
    for (size_t i = 0; i < r->ndecisions; i++) {
        sim_free(r->decisions[i].gate);
        sim_free(r->decisions[i].action);
        sim_free(r->decisions[i].detail);
    }
    sim_free(r->decisions);
    sim_free(r);
}

void report_utc(const report *r, int64_t vt_ms, char *out, size_t room)
{
    int64_t ms = r->virtual_start_ms + vt_ms;
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, room, "%Y-%m-%d %H:%M:%SZ", &tm);
}

void report_percent(double rate, char *out, size_t room)
{
    double pct = rate * 100.0;
    snprintf(out, room, pct != 0.0 && pct < 0.01 ? "%.4f%%" : "%.2f%%", pct);
}
