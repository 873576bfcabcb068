/*
 * store_merge.c — one store from the stores of a run's shards
 * (store_merge, declared in store.h; DESIGN.md, decision 6).
 *
 * A run split with --shard K/N writes N stores whose rows are disjoint
 * slices of the whole run's (every row is keyed by endpoint).  Merging
 * checks that the shards are one run — the same scenario text, seed, fleet
 * size, plan, duration, fleetsim version and files (images, content,
 * profiles), every K of one N exactly once — and copies their rows into a
 * new store, a shard per transaction.  The caller writes it under a
 * temporary name and renames it into place, so the result is the whole
 * run's store or nothing.  The run row says shard "0/1", 'complete' only
 * when every shard completed, and no exit status (each shard's gate saw its
 * slice only: the merged run's verdict is the report's to give).
 */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "fleet_gen.h"
#include "store-internal.h"

/* Tables copied row for row; artifacts, the same in every shard, are checked. */
static const char *const TABLES[] = {"endpoints", "endpoint_attrs", "outcomes", "crashes",
                                     "dbgprint", "timeline"};

typedef struct shard_run {
    char *text, *seed, *plan, *status, *version;
    long long fleet_size, duration_ms;
    unsigned k, n;
} shard_run;

static void shard_free(shard_run *r)
{
    sqlite3_free(r->text);
    sqlite3_free(r->seed);
    sqlite3_free(r->plan);
    sqlite3_free(r->status);
    sqlite3_free(r->version);
    memset(r, 0, sizeof *r);
}

static char *dup_col(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return sqlite3_mprintf("%s", t ? (const char *)t : "");
}

/* The shard's run row, from the store attached as "shard". */
static int read_shard(sqlite3 *db, const char *path, shard_run *r, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int rc = SIM_EFORMAT;
    if (sqlite3_prepare_v2(db,
                           "SELECT (SELECT value FROM shard.meta WHERE key = 'schema_version'),"
                           " scenario_text, seed, coalesce(plan, ''), status, fleet_size, shard,"
                           " fleetsim_version, duration_ms FROM shard.run",
                           -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "store: %s: not a fleetsim run store (%s)", path,
                 sqlite3_errmsg(db));
        goto done;
    }
    if (sqlite3_step(s) != SQLITE_ROW) {
        snprintf(err, errlen, "store: %s: holds no run", path);
        goto done;
    }
    char version[16];
    snprintf(version, sizeof version, "%d", STORE_SCHEMA_VERSION);
    const unsigned char *v = sqlite3_column_text(s, 0);
    if (!v || strcmp((const char *)v, version) != 0) {
        snprintf(err, errlen, "store: %s: schema version %s; this fleetsim merges version %s",
                 path, v ? (const char *)v : "(none)", version);
        goto done;
    }
    r->text = dup_col(s, 1);
    r->seed = dup_col(s, 2);
    r->plan = dup_col(s, 3);
    r->status = dup_col(s, 4);
    r->fleet_size = sqlite3_column_int64(s, 5);
    r->version = dup_col(s, 7);
    r->duration_ms = sqlite3_column_int64(s, 8);
    const unsigned char *shard = sqlite3_column_text(s, 6);
    if (!r->text || !r->seed || !r->plan || !r->status || !r->version) {
        snprintf(err, errlen, "store: out of memory");
        rc = SIM_ENOMEM;
        goto done;
    }
    if (!shard || !fleet_shard_parse((const char *)shard, &r->k, &r->n)) {
        snprintf(err, errlen, "store: %s: shard \"%s\" is not K/N", path,
                 shard ? (const char *)shard : "");
        goto done;
    }
    rc = 0;
done:
    sqlite3_finalize(s);
    return rc;
}

static int exec(sqlite3 *db, const char *sql, const char *path, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    int code = sqlite3_errcode(db) & 0xFF; /* the primary code of an extended one */
    if (err)
        snprintf(err, errlen, "store: %s: %s", path, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return code == SQLITE_NOMEM ? SIM_ENOMEM
           : code == SQLITE_FULL || code == SQLITE_IOERR || code == SQLITE_INTERRUPT ? SIM_EIO
                                                                                     : SIM_EFORMAT;
}

static int attach(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    char *sql = sqlite3_mprintf("ATTACH DATABASE 'file:%q?mode=ro' AS shard", path);
    if (!sql)
        return SIM_ENOMEM;
    int rc = exec(db, sql, path, err, errlen);
    sqlite3_free(sql);
    return rc;
}

/*
 * The images, content and profiles a later shard ran on are the first
 * one's: the same names in the same roles, by hash (profiles, which have
 * none, by OS build).
 */
static int same_artifacts(sqlite3 *db, const char *first, const char *path, char *err,
                          size_t errlen)
{
    static const char sql[] =
        "SELECT kind || ' ' || name FROM ("
        " SELECT kind, role, name, sha256, size, version FROM shard.artifacts EXCEPT"
        " SELECT kind, role, name, sha256, size, version FROM main.artifacts) UNION ALL "
        "SELECT kind || ' ' || name FROM ("
        " SELECT kind, role, name, sha256, size, version FROM main.artifacts EXCEPT"
        " SELECT kind, role, name, sha256, size, version FROM shard.artifacts) LIMIT 1";
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "store: %s: %s", path, sqlite3_errmsg(db));
        return SIM_EFORMAT;
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        snprintf(err, errlen, "store: %s and %s are not shards of one run: they ran on "
                              "different files (%s)", first, path, sqlite3_column_text(s, 0));
    else if (rc != SQLITE_DONE)
        snprintf(err, errlen, "store: %s: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : rc == SQLITE_ROW ? SIM_EINVAL : SIM_EIO;
}

/* Every shard is of one run, each K of one N once. */
static int check_shards(sqlite3 *db, const char *const *paths, size_t n, char *err,
                        size_t errlen)
{
    shard_run first = {0}, r = {0};
    bool *seen = NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if ((rc = attach(db, paths[i], err, errlen)) < 0)
            break;
        rc = read_shard(db, paths[i], i ? &r : &first, err, errlen);
        exec(db, "DETACH DATABASE shard", paths[i], NULL, 0);
        if (rc < 0)
            break;
        if (i == 0) {
            if (first.n != n) {
                snprintf(err, errlen, "store: %s is shard %u/%u: merge all %u shards, not %zu",
                         paths[0], first.k, first.n, first.n, n);
                rc = SIM_EINVAL;
                break;
            }
            if (!(seen = sqlite3_malloc((int)n)))
                return SIM_ENOMEM;
            memset(seen, 0, n);
            seen[first.k] = true;
            continue;
        }
        const char *differs = strcmp(r.text, first.text)     ? "scenario"
                              : strcmp(r.seed, first.seed)   ? "seed"
                              : r.fleet_size != first.fleet_size ? "fleet size"
                              : strcmp(r.plan, first.plan)   ? "rollout plan"
                              : r.n != first.n               ? "shard count"
                              : r.duration_ms != first.duration_ms ? "duration"
                              : strcmp(r.version, first.version) ? "fleetsim version"
                                                             : NULL;
        if (differs) {
            snprintf(err, errlen, "store: %s and %s are not shards of one run: their %s differs",
                     paths[0], paths[i], differs);
            rc = SIM_EINVAL;
        } else if (seen[r.k]) {
            snprintf(err, errlen, "store: %s: shard %u/%u is given twice", paths[i], r.k, r.n);
            rc = SIM_EINVAL;
        } else {
            seen[r.k] = true;
        }
        shard_free(&r);
    }
    shard_free(&r);
    shard_free(&first);
    sqlite3_free(seen);
    return rc;
}

int store_merge(store *st, const char *const *paths, size_t n, char *err, size_t errlen)
{
    if (!st || !paths || n == 0)
        return store__report(err, errlen, SIM_EINVAL, "store: no shards to merge");
    sqlite3 *db = store__db(st);
    int rc = store_flush(st, err, errlen);
    if (rc == 0)
        rc = check_shards(db, paths, n, err, errlen);
    if (rc < 0)
        return rc;
    /* A shard at a time: SQLite attaches and detaches outside transactions.
     * On an error the caller drops the temporary file it merges into. */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if ((rc = attach(db, paths[i], err, errlen)) < 0)
            break;
        rc = exec(db, "BEGIN IMMEDIATE", store_path(st), err, errlen);
        for (size_t t = 0; rc == 0 && t < sizeof TABLES / sizeof TABLES[0]; t++) {
            char *sql = sqlite3_mprintf("INSERT INTO main.%s SELECT * FROM shard.%s", TABLES[t],
                                        TABLES[t]);
            rc = sql ? exec(db, sql, paths[i], err, errlen) : SIM_ENOMEM;
            sqlite3_free(sql);
        }
        if (rc == 0 && i == 0)
            rc = exec(db, "INSERT INTO main.artifacts SELECT * FROM shard.artifacts", paths[i],
                      err, errlen);
        else if (rc == 0)
            rc = same_artifacts(db, paths[0], paths[i], err, errlen);
        /* The run: the first shard's row, for the whole fleet; complete only
         * when every shard is, ending when the last one did. */
        if (rc == 0 && i == 0)
            rc = exec(db,
                      "INSERT INTO main.run SELECT id, scenario_name, scenario_path,"
                      " scenario_text, seed, fleet_size, '0/1', plan, fleetsim_version,"
                      " 'fleetsim merge', started_at, ended_at, virtual_start_ms, virtual_start,"
                      " duration_ms, virtual_end_ms, status, NULL, reason FROM shard.run",
                      paths[i], err, errlen);
        else if (rc == 0)
            rc = exec(db,
                      "UPDATE main.run SET"
                      " started_at = min(started_at, (SELECT started_at FROM shard.run)),"
                      " ended_at = max(ended_at, (SELECT ended_at FROM shard.run)),"
                      " virtual_end_ms = min(virtual_end_ms,"
                      "                      (SELECT virtual_end_ms FROM shard.run)),"
                      " reason = coalesce(reason, (SELECT reason FROM shard.run)),"
                      " status = CASE WHEN status = 'complete' AND"
                      "   (SELECT status FROM shard.run) = 'complete' THEN 'complete'"
                      "   ELSE 'interrupted' END",
                      paths[i], err, errlen);
        if (rc == 0)
            rc = exec(db, "COMMIT", store_path(st), err, errlen);
        else if (!sqlite3_get_autocommit(db))
            exec(db, "ROLLBACK", store_path(st), NULL, 0);
        int detach = exec(db, "DETACH DATABASE shard", paths[i], rc ? NULL : err, errlen);
        if (rc == 0)
            rc = detach;
    }
    if (rc == 0)
        rc = exec(db, "UPDATE main.run SET reason = coalesce(reason, 'a shard did not "
                      "complete') WHERE status <> 'complete'",
                  store_path(st), err, errlen);
    /* The keys and indexes, as a run's mark builds them, over all the rows. */
    if (rc == 0)
        rc = exec(db, store_index_sql(), store_path(st), err, errlen);
    if (rc == 0) /* statistics for the query planner, as a run's mark takes them */
        exec(db, "PRAGMA analysis_limit = 1000; ANALYZE", store_path(st), NULL, 0);
    /* Everything into the file itself: the caller renames the file alone. */
    if (rc == 0)
        rc = exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", store_path(st), err, errlen);
    if (rc < 0) {
        if (strstr(err, "UNIQUE constraint failed"))
            snprintf(err, errlen, "store: the shards overlap (an endpoint is in two of them); "
                                  "nothing was merged");
    }
    return rc;
}
