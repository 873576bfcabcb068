/*
 * plans.c — rollout plans side by side: what each plan's run of the same
 * fleet and seed cost (`fleetsim plans STORE...`, and the end of
 * `fleetsim run --compare-plans`).
 *
 * Per store, from its tables only: the plan, endpoints that received the
 * update, that crashed, that were still down at the end, rings released,
 * when a gate first saw the trouble and when the release stopped, and the
 * machine-hours lost (from each crashed endpoint's first crash to its
 * recovery, or to the end of the run).
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include <sqlite3.h>

#include "report.h"
#include "sim.h"

static const char SUMMARY[] =
    "WITH first_crash AS (SELECT endpoint_id, min(vt_ms) AS t FROM timeline"
    "                     WHERE kind = 'crashed' GROUP BY endpoint_id),"
    " back AS (SELECT f.endpoint_id, (SELECT min(t.vt_ms) FROM timeline t"
    "          WHERE t.endpoint_id = f.endpoint_id AND t.kind IN ('recovered', 'repaired')"
    "          AND t.vt_ms >= f.t) AS t FROM first_crash f) "
    "SELECT coalesce(r.plan, 'all-at-once'), r.scenario_name, r.seed, r.status,"
    " (SELECT count(DISTINCT endpoint_id) FROM timeline"
    "  WHERE kind = 'received' AND detail = 'update'),"
    " (SELECT count(*) FROM first_crash),"
    " (SELECT count(*) FROM back WHERE t IS NULL),"
    " (SELECT count(*) FROM rings WHERE released_vt_ms IS NOT NULL),"
    " (SELECT count(*) FROM rings),"
    " (SELECT min(vt_ms) FROM gate_decisions"
    "  WHERE action IN ('halt', 'rollback') OR gate = 'detected'),"
    " (SELECT min(vt_ms) FROM gate_decisions WHERE action IN ('halt', 'rollback')),"
    " (SELECT action FROM gate_decisions WHERE action IN ('halt', 'rollback') LIMIT 1),"
    " (SELECT total((coalesce(b.t, coalesce(r.virtual_end_ms, r.duration_ms)) - f.t)"
    "         / 3600000.0) FROM first_crash f JOIN back b USING (endpoint_id)),"
    " r.virtual_start_ms, r.fleet_size "
    "FROM run r";

typedef struct plan_row {
    char plan[64], scenario[64], seed[24], status[16], stop[16];
    int64_t received, crashed, down, released, rings, detected, stopped;
    double hours;
    int64_t start_ms, fleet;
} plan_row;

/* "04:19", or "+1d 04:19" on a later day than the run's start. */
static void clock_of(int64_t start_ms, int64_t vt, bool has, char *out, size_t room)
{
    if (!has) {
        snprintf(out, room, "-");
        return;
    }
    report r = {.virtual_start_ms = start_ms};
    char full[40];
    report_utc(&r, vt, full, sizeof full);
    int64_t day = (start_ms + vt) / 86400000 - start_ms / 86400000;
    if (day > 0)
        snprintf(out, room, "+%" PRId64 "d %.5s", day, full + 11);
    else
        snprintf(out, room, "%.5s", full + 11); /* HH:MM */
}

static int load_row(const char *path, plan_row *p, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int rc = SIM_EFORMAT;
    memset(p, 0, sizeof *p);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, SUMMARY, -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: not a fleetsim run store (%s)", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        goto done;
    }
    if (sqlite3_step(s) != SQLITE_ROW) {
        snprintf(err, errlen, "%s: the store holds no run", path);
        goto done;
    }
#define TEXT(i, f) snprintf(p->f, sizeof p->f, "%s", \
                            sqlite3_column_text(s, i) ? (const char *)sqlite3_column_text(s, i) : "")
    TEXT(0, plan);
    TEXT(1, scenario);
    TEXT(2, seed);
    TEXT(3, status);
    TEXT(11, stop);
#undef TEXT
    p->received = sqlite3_column_int64(s, 4);
    p->crashed = sqlite3_column_int64(s, 5);
    p->down = sqlite3_column_int64(s, 6);
    p->released = sqlite3_column_int64(s, 7);
    p->rings = sqlite3_column_int64(s, 8);
    p->detected = sqlite3_column_type(s, 9) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 9);
    p->stopped = sqlite3_column_type(s, 10) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 10);
    p->hours = sqlite3_column_double(s, 12);
    p->start_ms = sqlite3_column_int64(s, 13);
    p->fleet = sqlite3_column_int64(s, 14);
    rc = 0;
done:
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

int report_plans_write(FILE *out, const char *const *paths, size_t n, char *err, size_t errlen)
{
    plan_row *rows = sim_calloc(n ? n : 1, sizeof *rows);
    if (!rows) {
        snprintf(err, errlen, "out of memory");
        return SIM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = load_row(paths[i], &rows[i], err, errlen);
        if (rc < 0) {
            sim_free(rows);
            return rc;
        }
    }
    fprintf(out, "Rollout plans side by side (virtual UTC; machine-hours from first crash to "
                 "recovery or the end)\n");
    fprintf(out, "%-16s %8s %8s %9s %6s %9s %9s %9s %13s  %s\n", "plan", "received", "crashed",
            "still down", "rings", "detected", "stopped", "action", "machine-hours", "store");
    for (size_t i = 0; i < n; i++) {
        const plan_row *p = &rows[i];
        char rings[24], det[24], stop[24];
        snprintf(rings, sizeof rings, "%" PRId64 "/%" PRId64, p->released, p->rings);
        clock_of(p->start_ms, p->detected, p->detected >= 0, det, sizeof det);
        clock_of(p->start_ms, p->stopped, p->stopped >= 0, stop, sizeof stop);
        fprintf(out, "%-16s %8" PRId64 " %8" PRId64 " %9" PRId64 " %6s %9s %9s %9s %13.1f  %s%s\n",
                p->plan, p->received, p->crashed, p->down, rings, det, stop,
                p->stop[0] ? p->stop : p->released < p->rings ? "held" : "-", p->hours, paths[i],
                strcmp(p->status, "complete") ? " (incomplete)" : "");
    }
    /* Beside all at once (the July 2024 way), what each plan spared. */
    const plan_row *all = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].plan, "all-at-once") == 0)
            all = &rows[i];
    for (size_t i = 0; all && i < n; i++) {
        const plan_row *p = &rows[i];
        if (p == all || p->fleet != all->fleet || strcmp(p->seed, all->seed) != 0 ||
            strcmp(p->scenario, all->scenario) != 0)
            continue;
        int64_t spared = all->crashed - p->crashed;
        fprintf(out, "%s beside all-at-once: %" PRId64 " %s endpoints crashed (%.1f%% of %" PRId64
                     "), %.1f %s machine-hours lost%s\n",
                p->plan, spared < 0 ? -spared : spared, spared < 0 ? "more" : "fewer",
                all->crashed ? 100.0 * (double)spared / (double)all->crashed : 0.0, all->crashed,
                fabs(all->hours - p->hours), all->hours >= p->hours ? "fewer" : "more",
                p->released < p->rings && p->stopped < 0
                    ? " (it held before its last ring: its gate never passed)"
                    : "");
    }
    for (size_t i = 1; i < n; i++)
        if (strcmp(rows[i].seed, rows[0].seed) || rows[i].fleet != rows[0].fleet ||
            strcmp(rows[i].scenario, rows[0].scenario))
            fprintf(out, "note: %s is not the same scenario, fleet and seed as %s\n", paths[i],
                    paths[0]);
    sim_free(rows);
    return fflush(out) == 0 && !ferror(out) ? 0 : SIM_EIO;
}
