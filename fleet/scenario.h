/*
 * scenario.h — scenario files: what a run simulates.
 *
 * A scenario is a YAML file (README, "Scenarios", documents it key by key):
 * the fleet (its size and the shares of profiles, sensor versions, regions
 * and tenants, or an inventory CSV of real endpoints), the content already on
 * disk, the update and its release time, an optional revert and known-bad
 * mark, how endpoints connect, optional manual repair, and rollout plans
 * (rings, bake times, gates).
 *
 * Parsing is strict: unknown keys are refused with the list of known ones,
 * numbers, durations, times and shares must be written exactly, and every
 * error reads "file:line:column: what is wrong" (inventory rows:
 * "file.csv:line: what is wrong").  Names the YAML cannot check by itself —
 * profiles and sensor versions, which the caller has loaded — are checked by
 * scenario_check() against a catalog the caller supplies; every name keeps
 * where it was written, so those errors still point at the YAML line (or
 * the inventory row).
 *
 * All times are virtual milliseconds relative to the scenario's `start`
 * (negative: before it); `start` itself is UTC milliseconds since 1970.
 * Like the rest of fleet/, nothing here prints: functions return 0 or a
 * negative SIM_E* code and fill the caller's message buffer.
 */
#ifndef FLEETSIM_SCENARIO_H
#define FLEETSIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The endpoint attributes a fleet is apportioned by, in this order. */
#define SCENARIO_ATTR_MAP(XX)                                                \
    XX(PROFILE, "profile")                                                  \
    XX(SENSOR, "sensor")                                                    \
    XX(REGION, "region")                                                    \
    XX(TENANT, "tenant")

typedef enum {
#define XX(name, str) SCENARIO_ATTR_##name,
    SCENARIO_ATTR_MAP(XX)
#undef XX
    SCENARIO_ATTR_COUNT
} scenario_attr;

const char *scenario_attr_name(scenario_attr attr);

/* Limits: attribute indices are stored in 16 bits (tenants in 32). */
#define SCENARIO_MAX_NAMES 65535u
#define SCENARIO_MAX_TENANTS 1000000u
#define SCENARIO_MAX_FLEET 4000000000u
#define SCENARIO_NAME_MAX 63
/* Inventory columns beyond id, profile, sensor, region and tenant. */
#define SCENARIO_MAX_EXTRA 16u
#define SCENARIO_EXTRA_KEY_MAX 32
/* Content files an endpoint holds at once: on disk, and the update or revert. */
#define SCENARIO_MAX_FILES 64u

/* Where something was written: file (the scenario or the inventory), 1-based
 * line and column (column 0 for inventory rows). */
typedef struct scenario_mark {
    const char *file;
    uint32_t line, column;
} scenario_mark;

/* One value of an attribute: "win10-22h2-2024-07" with its share. */
typedef struct scenario_name {
    char *name;
    double share;            /* fraction of the fleet, 0..1 (inventory: counted) */
    scenario_mark mark;      /* first place it was written */
} scenario_name;

typedef struct scenario_names {
    scenario_name *items;
    size_t count;
} scenario_names;

/* A delay drawn per endpoint and boot. */
typedef enum {
    SCENARIO_DIST_FIXED,     /* a */
    SCENARIO_DIST_UNIFORM,   /* min a, max b */
    SCENARIO_DIST_LOGNORMAL  /* median a, 95th percentile b */
} scenario_dist_kind;

typedef struct scenario_dist {
    scenario_dist_kind kind;
    uint64_t a_ms, b_ms;
} scenario_dist;

/* A content file: on disk already, in the update, or in the revert. */
typedef struct scenario_content {
    char *file;              /* as written: a path relative to the scenario's
                                folder, or a content name ("C-00000291-*.sys") */
    char *path;              /* the host file, once scenario_resolve_content ran */
    int64_t installed_at_ms; /* on-disk entries: when it got there (0: at start) */
    scenario_mark mark;
} scenario_content;

typedef struct scenario_content_list {
    scenario_content *items;
    size_t count;
} scenario_content_list;

/* One inventory row, compact: indices into the scenario's name tables. */
typedef struct scenario_row {
    uint32_t id_offset;      /* into scenario.inventory_ids */
    uint16_t profile, sensor, region;
    uint32_t tenant;
} scenario_row;

/*
 * A staged rollout (issue 6).  A plan is a list of rings released one after
 * the other; a plan without rings releases to everyone at once.  A ring
 * takes the endpoints whose attribute is one of `where`'s values, or, for
 * a share ring, those whose stable draw (seed, endpoint id) falls below its
 * cumulative `share` of the fleet; an endpoint belongs to the first ring
 * that takes it, and the last ring takes the rest.
 */
typedef struct scenario_ring {
    char name[SCENARIO_NAME_MAX + 1];
    double share;            /* cumulative share through this ring; 0: a where ring */
    int where_attr;          /* SCENARIO_ATTR_*; -1: a share ring */
    scenario_names where;    /* the attribute values it takes */
    uint32_t *where_index;   /* the same, as indices into attrs[where_attr] */
    uint64_t bake_ms;        /* watched this long before the next ring */
    char selector[160];      /* as the store shows it: "0.1%", "tenant=a,b" */
    scenario_mark mark;
} scenario_ring;

/* The gate between rings (README, "Staged rollouts"). */
typedef struct scenario_gate {
    uint64_t min_exposure;   /* endpoints heard from before a ring is judged */
    double max_rate_upper;   /* advance only when the upper 95% bound is this or less */
    double alpha;            /* halt when the Bayes factor reaches 1 / alpha */
    double prior;            /* the sequential test's prior strength k */
    uint64_t every_ms;       /* how often the gate looks during a bake */
    bool rollback;           /* on failure roll back (else only halt) */
} scenario_gate;

typedef struct scenario_plan {
    char name[SCENARIO_NAME_MAX + 1];
    scenario_ring *rings;    /* none: all at once */
    size_t nrings;
    scenario_gate gate;
    scenario_mark mark;
} scenario_plan;

typedef struct scenario {
    char *path;              /* as given, for messages */
    char *dir;               /* its folder: relative paths resolve against it */
    char *name;
    char *description;       /* "" when absent */
    uint64_t seed;
    uint64_t duration_ms;
    int64_t start_ms;        /* UTC ms since 1970-01-01 */

    /* The fleet. */
    uint64_t fleet_size;
    scenario_names attrs[SCENARIO_ATTR_COUNT];
    uint32_t tenant_count;   /* tenants: {count, zipf}: generated names */
    double tenant_zipf;      /* exponent; 0 when tenants are explicit */
    char *inventory;         /* as written; NULL: generated from shares */
    char *inventory_path;    /* resolved against dir */
    scenario_mark inventory_mark;
    scenario_row *rows;      /* fleet_size rows once the inventory is loaded */
    char *inventory_ids;     /* NUL-separated endpoint ids of the rows */
    bool inventory_loaded;
    /* The inventory's other columns: attributes for cohorts only (the
     * store's endpoint_attrs), not apportioned, not in rollout rings. */
    size_t nextra;
    char *extra_keys[SCENARIO_MAX_EXTRA];
    scenario_names extra_values[SCENARIO_MAX_EXTRA];
    uint32_t *extra_cells;   /* fleet_size x nextra: value index + 1; 0: empty */

    /* Content. */
    char *install_dir;       /* NT folder for content; "" = the sensor's own
                                \SystemRoot\System32\drivers\<module>\ */
    scenario_content_list on_disk;
    scenario_content_list update_content;
    char *update_image;      /* NULL: the update carries no new image */
    scenario_mark update_image_mark;
    int64_t release_ms;
    bool has_revert;
    scenario_content_list revert_content;
    int64_t revert_ms;
    bool has_known_bad;      /* explicit, or implied by the revert */
    int64_t known_bad_ms;    /* the cloud marks the update's content bad */

    /* Connectivity. */
    uint64_t checkin_interval_ms, checkin_jitter_ms;
    float (*online)[24];     /* per region (attrs[REGION] order), per UTC hour */
    scenario_names online_names;  /* as written: the regions given curves, */
    float (*online_given)[24];    /* and their curves */
    bool has_online_default;
    float online_default[24];
    scenario_dist boot_to_network;
    bool has_boot_time;      /* else the profile's boot_ms */
    scenario_dist boot_time;

    /* Manual repair of endpoints still boot-looping `after` their first crash. */
    bool has_repair;
    uint64_t repair_after_ms;
    double repair_share;

    /* Rollout plans; plans[0] is the one a run uses unless told otherwise.
     * Without a rollout section: one plan, "all-at-once". */
    scenario_plan *plans;
    size_t nplans;
} scenario;

/* What the caller has loaded, to check names and find content against. */
typedef struct scenario_catalog {
    const char *const *profiles;     /* known profile names; NULL: unchecked */
    size_t nprofiles;
    const char *const *sensors;      /* known sensor versions; NULL: unchecked */
    size_t nsensors;
    const char *const *content_dirs; /* searched, in order, after the
                                        scenario's folder, for content names */
    size_t ncontent_dirs;
} scenario_catalog;

/* scenario_parse flags. */
enum {
    SCENARIO_NO_FILES = 1    /* do not read the inventory (fuzzing, tests) */
};

/*
 * Read and parse a scenario file, with its inventory when it names one.
 * SIM_EIO when a file cannot be read, SIM_EFORMAT when anything is wrong in
 * it (err: "file:line:column: what"), SIM_ENOMEM.
 */
int scenario_load(const char *path, scenario **out, char *err, size_t errlen);
/*
 * Parse scenario text.  `path` names it in messages and gives the folder
 * relative paths resolve against.
 */
int scenario_parse(const char *text, size_t len, const char *path, unsigned flags,
                   scenario **out, char *err, size_t errlen);
/* Load the inventory the scenario names from CSV text (errors "csv:line: what"). */
int scenario_load_inventory(scenario *s, const char *csv, size_t len, char *err,
                            size_t errlen);
void scenario_destroy(scenario *s); /* accepts NULL */

/*
 * Check profile and sensor names (and the update's image, when the catalog
 * lists sensors, is not checked: images are files) against the catalog:
 * "file:line:column: unknown profile "x"; known: a, b, c".
 */
int scenario_check(const scenario *s, const scenario_catalog *catalog, char *err,
                   size_t errlen);
/*
 * Find every content file: `file` relative to the scenario's folder, else in
 * each content_dir in turn.  A name with '*' or '?' must match exactly one
 * file in the first folder where it matches any.  Fills each entry's path.
 */
int scenario_resolve_content(scenario *s, const scenario_catalog *catalog,
                             char *err, size_t errlen);

/*
 * Command-line overrides: "fleet-size" (not for an inventory fleet), "seed",
 * "duration".  Errors name the option: "--seed: expected ...".
 */
int scenario_override(scenario *s, const char *key, const char *value, char *err,
                      size_t errlen);

/* ---- values ------------------------------------------------------------ */

/* A plan without rings, with the default gate (README, "Staged rollouts"). */
void scenario_default_plan(scenario_plan *plan, const char *name);
/* The plan named `name`; NULL when there is none. */
const scenario_plan *scenario_find_plan(const scenario *s, const char *name);
/* The ring of endpoint `id` in a plan with rings, from its attributes and
 * a uniform draw `u` in [0, 1) stable per (seed, id). */
size_t scenario_ring_of(const scenario_plan *plan, const uint32_t attrs[SCENARIO_ATTR_COUNT],
                        double u);

/* The strict value syntaxes, for the command line. */
/* "12h", "1h30m", "90s", "250ms", "2d", "0": units d h m s ms, largest first. */
bool scenario_parse_duration(const char *text, uint64_t *ms);
/* "2024-07-19T04:09:00Z", seconds and ".fff" optional, "Z" or "+hh:mm". */
bool scenario_parse_time(const char *text, int64_t *unix_ms);
/* "40%", "12.5%": a fraction 0..1. */
bool scenario_parse_share(const char *text, double *fraction);

/* FILETIME (100 ns since 1601, UTC) of virtual time t (ms after start). */
uint64_t scenario_filetime(const scenario *s, int64_t t_ms);
/* Share of a region's endpoints online at virtual time t. */
double scenario_online_share(const scenario *s, uint32_t region, int64_t t_ms);
/* A delay from the distribution, for a uniform random 64-bit draw. */
uint64_t scenario_dist_draw(const scenario_dist *dist, uint64_t random);
/* An inventory row's endpoint id ("" when the fleet is generated). */
const char *scenario_row_id(const scenario *s, uint64_t row);
/* An inventory row's value of extra column k (NULL: its cell is empty). */
const char *scenario_row_extra(const scenario *s, uint64_t row, size_t k);

#endif
