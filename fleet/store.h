/*
 * store.h — the run store: one SQLite file per run (DESIGN.md, decision 7).
 *
 * A run writes everything it learns here — the run itself (scenario text,
 * seed, versions of every image, content file and profile by hash), the
 * endpoints and their attributes, every outcome with its virtual time and
 * boot number, crash records, per-endpoint timelines, rollout rings and gate
 * decisions — and the report layer reads only this file.  The schema is
 * store_schema_sql() and store_index_sql(); the README's section "The
 * store" shows the same text with example queries (a test checks that the
 * two agree and that the queries run).
 *
 * Every row has a natural key (endpoint id, boot, virtual time, ...), never
 * an AUTOINCREMENT id, so a store's content does not depend on the order in
 * which rows were written: the same run with any --jobs gives the same rows.
 * The keys of outcomes, crashes, logs and timelines are unique indexes built
 * when the run is marked (store_mark_*), not while it writes: write each
 * once.  A key written twice makes the mark fail and the run 'interrupted'.
 *
 * One thread only: the event loop's.  Worker threads fill sim_outcome
 * records; the loop hands them here.  Rows are written with prepared
 * statements into a transaction that commits every `batch_rows` rows and at
 * store_flush(), so a commit never splits an outcome from its crash record.
 *
 * Errors are values: functions return 0 or a negative SIM_E* code and fill
 * `err` with "store: PATH: what is wrong".  A write error (a full disk is
 * SIM_EIO, "database or disk is full") discards the rows written since the
 * last commit and sticks: later writes return it again.  The rows committed
 * before stay, and store_mark_interrupted() and store_close() still work, so
 * the file left behind is consistent and says it is incomplete.
 */
#ifndef FLEETSIM_STORE_H
#define FLEETSIM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"

/* Bumped whenever a table or column changes; kept in meta.schema_version
 * and PRAGMA user_version.  store_open refuses a store of another version. */
#define STORE_SCHEMA_VERSION 3

/* PRAGMA application_id of a fleetsim store: "FSim". */
#define STORE_APPLICATION_ID 0x4653696d

/* Longest bucket key (without the NUL), and a buffer that holds one. */
#define STORE_BUCKET_MAX 120
#define STORE_BUCKET_SIZE (STORE_BUCKET_MAX + 1)

/* Rows per transaction when store_options.batch_rows is 0. */
#define STORE_DEFAULT_BATCH 20000

typedef struct store store;

/* ---- opening and closing ---------------------------------------------- */

enum {
    STORE_LOG_NONE,          /* no DbgPrint output is kept */
    STORE_LOG_CRASHES,       /* beside a crash record's details (the default) */
    STORE_LOG_ALL            /* for every outcome that printed something */
};

typedef struct store_options {
    bool replace;            /* remove an existing file first (and its -wal,
                                -shm); otherwise an existing fleetsim store of
                                this schema version is opened and added to */
    uint32_t batch_rows;     /* rows per transaction; 0: STORE_DEFAULT_BATCH */
    int log;                 /* STORE_LOG_*; the zero value is STORE_LOG_NONE,
                                store_options_init sets STORE_LOG_CRASHES */
    bool all_details;        /* registers, disassembly and stack on every crash;
                                by default only an endpoint's first crash in
                                a bucket keeps them (a boot loop repeats it) */
    uint32_t max_pages;      /* tests: PRAGMA max_page_count (0: no limit),
                                to make the disk "full" after that many pages */
} store_options;

void store_options_init(store_options *opts);

/*
 * Open or create the store at `path`: WAL journal, synchronous=NORMAL, the
 * schema created when the file is new.  opts NULL: store_options_init's.
 * SIM_EFORMAT when the file is not a fleetsim store or of another schema
 * version, SIM_EIO when it cannot be opened or written, SIM_ENOMEM.
 */
int store_open(const char *path, const store_options *opts, store **out, char *err,
               size_t errlen);

/*
 * Commit what is pending and close.  Accepts NULL.  Always frees the store,
 * also after errors; returns the commit's error if it failed (the pending
 * rows are then lost, the committed ones kept).  A store closed without
 * store_mark_complete/_interrupted keeps status 'running': readers treat it
 * like 'interrupted' (the process died before it could say so).
 */
int store_close(store *st, char *err, size_t errlen);

/* Commit the pending rows now (a merge does, before it reads the shards). */
int store_flush(store *st, char *err, size_t errlen);

/*
 * Stop the statement the store is running (a signal handler may call it,
 * as sqlite3_interrupt allows): it fails as "interrupted", which sticks like
 * any failure, so a mark then says 'interrupted'.  A long one (the keys'
 * build at a mark, a merge's copy) is what this is for; between statements
 * it does nothing, and the caller keeps its own flag.
 */
void store_interrupt(store *st);

/* The store's file, as given to store_open. */
const char *store_path(const store *st);

/* The schema, two SQL texts: the tables and views a new store starts with,
 * and the keys and indexes built when its rows are all in (store_mark_*,
 * store_merge).  The README shows the first, then the second. */
const char *store_schema_sql(void);
const char *store_index_sql(void);

/* ---- the run ---------------------------------------------------------- */

typedef struct store_run {
    const char *scenario_name;
    const char *scenario_path;    /* NULL: unknown */
    const char *scenario_text;    /* the YAML, verbatim */
    uint64_t seed;
    uint64_t fleet_size;          /* the whole fleet, not just this shard */
    uint32_t shard_index, shard_count;  /* 0 and 1 when not sharded */
    const char *plan;             /* rollout plan name; NULL: the scenario's */
    const char *fleetsim_version;
    const char *command_line;     /* as typed, for re-running it */
    int64_t started_ms;           /* wall clock, UTC ms since 1970; 0: now */
    int64_t virtual_start_ms;     /* the scenario's start, UTC ms since 1970 */
    uint64_t duration_ms;         /* virtual time the run plays */
} store_run;

/* The run row (one per store; writing it again replaces it), status 'running'. */
int store_write_run(store *st, const store_run *run, char *err, size_t errlen);

/*
 * The run ended normally: status 'complete', exit code, wall end time, the
 * virtual time reached.  Commits everything pending first.
 */
int store_mark_complete(store *st, int exit_code, int64_t virtual_end_ms, char *err,
                        size_t errlen);

/*
 * The run stopped early (Ctrl-C, an error): status 'interrupted', with a
 * reason ("interrupted by SIGINT", the error message).  Commits what it can
 * first; works after a write error, when the pending rows are gone but the
 * committed ones and the run row can still be marked.
 */
int store_mark_interrupted(store *st, int exit_code, int64_t virtual_end_ms,
                           const char *reason, char *err, size_t errlen);

/* ---- artifacts: every image, content file and profile by hash --------- */

#define STORE_ARTIFACT_MAP(XX)                                               \
    XX(IMAGE, "image")                                                      \
    XX(CONTENT, "content")                                                  \
    XX(PROFILE, "profile")

typedef enum {
#define XX(name, str) STORE_ARTIFACT_##name,
    STORE_ARTIFACT_MAP(XX)
#undef XX
    STORE_ARTIFACT_COUNT
} store_artifact_kind;

const char *store_artifact_name(store_artifact_kind kind);

typedef struct store_artifact {
    store_artifact_kind kind;
    const char *role;        /* "installed", "update", "revert", "sensor", ...;
                                NULL: "" */
    const char *name;        /* file or profile name as the scenario says it */
    const char *path;        /* host file it was read from; NULL: none */
    const uint8_t *sha256;   /* 32 bytes; NULL: not hashed (built-in profile) */
    uint64_t size;
    const char *version;     /* sensor version, OS build, content version; NULL */
} store_artifact;

int store_write_artifact(store *st, const store_artifact *artifact, char *err,
                         size_t errlen);

/* ---- endpoints -------------------------------------------------------- */

typedef struct store_attr {
    const char *key, *value;
} store_attr;

typedef struct store_endpoint {
    uint64_t id;             /* the fleet's endpoint id */
    const char *external_id; /* inventory id; NULL for a generated fleet */
    const char *profile;
    uint32_t os_build, os_ubr;
    const char *sensor, *region, *tenant;
    uint64_t seed;           /* the endpoint's own seed */
    int32_t ring;            /* rollout ring; -1: none */
    const store_attr *attrs; /* any other attributes, for cohorts */
    size_t nattrs;
} store_endpoint;

int store_write_endpoints(store *st, const store_endpoint *endpoints, size_t count,
                          char *err, size_t errlen);

/* ---- outcomes ---------------------------------------------------------- */

/* Where and when an outcome happened. */
typedef struct store_outcome_at {
    uint64_t endpoint_id;
    uint32_t boot;           /* boots since the run started: 0 is the first */
    int64_t vt_ms;           /* virtual ms after the scenario's start */
    const char *image;       /* the image that ran; NULL: unknown */
    bool has_seed;
    uint64_t seed;           /* the emulation's seed (sim_run.seed) */
    const char *start;       /* "boot", "live" (a file arrived); NULL: unknown */
} store_outcome_at;

/*
 * One outcome row; for a bugcheck or a hang also its crash record (with its
 * bucket key, and its details unless the endpoint crashed in the same bucket
 * at an earlier boot: see store_options.all_details), and the DbgPrint log
 * as store_options.log says.
 */
int store_write_outcome(store *st, const store_outcome_at *at, const sim_outcome *outcome,
                        char *err, size_t errlen);

/*
 * The crash bucket of an outcome, e.g. "0x50_R_KERNEL_sensor!MatchInstance+0x2f":
 * bugcheck code (or HANG), access (R, W, X, - for none), the faulting
 * address's class (NULL, USER, NONCANONICAL, KERNEL, - for none) and
 * module!function+offset of the faulting frame (module+offset without a
 * symbol).  When the fault is in nt, or in no module, the first stack frame in
 * a driver stands for it, as WinDbg's triage does.  Never a raw address;
 * at most STORE_BUCKET_MAX characters.  Unsupported-api outcomes give
 * "UNSUPPORTED_<api>".  SIM_EINVAL for an ok outcome (no bucket) or bad
 * arguments; `out` is then "".
 */
int store_bucket_key(const sim_outcome *outcome, char *out, size_t outlen);

/* ---- timelines --------------------------------------------------------- */

#define STORE_TIMELINE_MAP(XX)                                               \
    XX(ONLINE, "online")                                                    \
    XX(OFFLINE, "offline")                                                  \
    XX(RECEIVED, "received")                                                \
    XX(EMULATED, "emulated")                                                \
    XX(CRASHED, "crashed")                                                  \
    XX(REBOOTED, "rebooted")                                                \
    XX(BOOT_LOOP, "boot-loop")                                              \
    XX(KNOWN_BAD, "known-bad")                                              \
    XX(RECOVERED, "recovered")                                              \
    XX(REPAIRED, "repaired")

typedef enum {
#define XX(name, str) STORE_TIMELINE_##name,
    STORE_TIMELINE_MAP(XX)
#undef XX
    STORE_TIMELINE_COUNT
} store_timeline_kind;

const char *store_timeline_name(store_timeline_kind kind);

/*
 * An event in an endpoint's timeline.  `seq` orders an endpoint's events at
 * one virtual time: the caller, which knows the order they happened in,
 * numbers them (the loop counts each endpoint's events from 0; the store
 * keeps no state per endpoint).  (endpoint, vt_ms, seq) must be unique.
 */
int store_write_timeline_event(store *st, uint64_t endpoint_id, int64_t vt_ms, uint32_t seq,
                               store_timeline_kind kind, const char *detail, char *err,
                               size_t errlen);

/*
 * Merge the stores of a run's shards (--shard K/N, every K of one N) into
 * this new store, a shard per transaction (after an error, remove the
 * file: `fleetsim merge` does).
 * SIM_EINVAL when they are not the shards of one run (the message says
 * which differs, which shard is missing or given twice), SIM_EFORMAT for a
 * file that is not a store of this schema, SIM_EIO when writing fails.
 */
int store_merge(store *st, const char *const *shards, size_t n, char *err, size_t errlen);

/* ---- rollout: rings and gate decisions ----------------------------------- */

typedef struct store_ring {
    uint32_t ring;           /* 0 is released first */
    const char *name;        /* "canary", "ring 1", ... */
    const char *selector;    /* how members are chosen: "0.1%", "tenant=internal" */
    uint64_t size;           /* endpoints in it */
    uint64_t bake_ms;
    int64_t released_vt_ms;  /* when the update reached it; INT64_MIN: never */
} store_ring;

/* A ring row; writing it again (e.g. once released) replaces it. */
int store_write_ring(store *st, const store_ring *ring, char *err, size_t errlen);

#define STORE_GATE_ACTION_MAP(XX)                                            \
    XX(ADVANCE, "advance")                                                  \
    XX(HOLD, "hold")                                                        \
    XX(HALT, "halt")                                                        \
    XX(ROLLBACK, "rollback")

typedef enum {
#define XX(name, str) STORE_GATE_##name,
    STORE_GATE_ACTION_MAP(XX)
#undef XX
    STORE_GATE_ACTION_COUNT
} store_gate_action;

const char *store_gate_action_name(store_gate_action action);

/* A gate decision with the numbers it was made on (negative counts, NaN
 * reals and NULL strings are stored as NULL). */
typedef struct store_gate_decision {
    uint32_t ring;
    int64_t vt_ms;
    const char *gate;        /* "sequential", "threshold", "min-exposure", "detected" */
    store_gate_action action;
    int64_t exposed;         /* endpoints that received the update */
    int64_t reported;        /* of them, heard from after the bake time */
    int64_t crashes;         /* crash reports that had arrived */
    int64_t silent;          /* received, then went silent */
    int64_t control_exposed, control_crashes;
    double statistic;        /* rate bound, Bayes factor, ... */
    double threshold;
    const char *detail;      /* one line a release manager reads */
} store_gate_decision;

/* seq numbers the decisions of one ring at one virtual time in the order
 * written (the store counts them: a run makes few). */
int store_write_gate_decision(store *st, const store_gate_decision *decision, char *err,
                              size_t errlen);

#endif
