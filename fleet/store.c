/*
 * store.c — the run store: every outcome of a run in one SQLite file.
 *
 * The schema is one SQL text (store_schema.c, shown verbatim in the README's
 * "The store"), versioned by meta.schema_version and PRAGMA user_version.
 * Three choices shape the rest of this file:
 *
 *   - Natural keys, built at the end.  Rows are keyed by what they are
 *     about (endpoint id and boot, virtual time and seq), so the store's
 *     content is a function of the run, not of the order in which the loop
 *     happened to hand rows over.  But the rows come in virtual-time order,
 *     and endpoint-keyed B-trees kept up to date as they come touch pages all
 *     over files far larger than the cache: the big tables are appended to
 *     while the run writes, and their keys and indexes (store_index_sql)
 *     are built by sorting when the run is marked.  So nothing here looks a
 *     row up while the run writes: whether an endpoint crashed in a bucket
 *     before is a set in memory (`seen`), and timeline sequence numbers come
 *     from the caller.
 *
 *   - Batched transactions on one thread.  Only the event loop's thread
 *     calls in; every statement is prepared once at open, and rows go into
 *     one transaction committed every batch_rows rows and at store_flush.
 *     A commit happens only between two calls, so an outcome never lands
 *     without its crash record.  WAL with synchronous=NORMAL: a commit costs
 *     an append to the WAL, no fsync; a power cut may lose the last commits,
 *     never consistency.
 *
 *   - Errors stick.  After a failed write the open transaction is rolled
 *     back (it may hold half an outcome) and the store refuses further rows
 *     with the same message; only marking the run and closing still work,
 *     so a run that hits a full disk leaves the rows committed before it,
 *     marked 'interrupted'.
 *
 * Values that can exceed 2^63 (addresses, registers, bugcheck parameters,
 * seeds) are stored as '0x' + 16 lowercase hex digits, which is what WinDbg
 * users paste and what fleetsim's --seed accepts; codes and counts are
 * INTEGERs.  Nothing here prints.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fleet_gen.h"
#include "sim.h"
#include "store-internal.h"

/* ---- names --------------------------------------------------------------- */

const char *store_artifact_name(store_artifact_kind kind)
{
    static const char *const names[] = {
#define XX(name, str) str,
        STORE_ARTIFACT_MAP(XX)
#undef XX
    };
    return (unsigned)kind < STORE_ARTIFACT_COUNT ? names[kind] : NULL;
}

const char *store_timeline_name(store_timeline_kind kind)
{
    static const char *const names[] = {
#define XX(name, str) str,
        STORE_TIMELINE_MAP(XX)
#undef XX
    };
    return (unsigned)kind < STORE_TIMELINE_COUNT ? names[kind] : NULL;
}

const char *store_gate_action_name(store_gate_action action)
{
    static const char *const names[] = {
#define XX(name, str) str,
        STORE_GATE_ACTION_MAP(XX)
#undef XX
    };
    return (unsigned)action < STORE_GATE_ACTION_COUNT ? names[action] : NULL;
}

/* ---- statements ---------------------------------------------------------- */

#define STORE_STMT_MAP(XX)                                                      \
    XX(BEGIN, "BEGIN")                                                         \
    XX(COMMIT, "COMMIT")                                                       \
    XX(ROLLBACK, "ROLLBACK")                                                   \
    XX(RUN, "INSERT OR REPLACE INTO run (id, scenario_name, scenario_path, "   \
            "scenario_text, seed, fleet_size, shard, plan, fleetsim_version, " \
            "command_line, started_at, virtual_start_ms, virtual_start, "     \
            "duration_ms, status) "                                           \
            "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')")   \
    XX(MARK, "UPDATE run SET status = ?, exit_code = ?, ended_at = ?, "        \
             "virtual_end_ms = ?, reason = ? WHERE id = 1")                   \
    XX(ARTIFACT, "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?)") \
    XX(ENDPOINT, "INSERT OR REPLACE INTO endpoints VALUES "                    \
                 "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")                             \
    XX(ATTR, "INSERT OR REPLACE INTO endpoint_attrs VALUES (?, ?, ?)")         \
    XX(OUTCOME, "INSERT INTO outcomes VALUES "                                 \
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)") \
    XX(CRASH, "INSERT INTO crashes VALUES "                                    \
              "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")    \
    XX(LOG, "INSERT INTO dbgprint VALUES (?, ?, ?, ?)")                        \
    XX(TIMELINE, "INSERT INTO timeline VALUES (?, ?, ?, ?, ?)")                \
    XX(RING, "INSERT OR REPLACE INTO rings VALUES (?, ?, ?, ?, ?, ?)")         \
    XX(GATE, "INSERT INTO gate_decisions SELECT ?1, ?2, "                      \
             "(SELECT coalesce(max(seq) + 1, 0) FROM gate_decisions "          \
             " WHERE ring = ?1 AND vt_ms = ?2), "                              \
             "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13")

enum {
#define XX(name, sql) STMT_##name,
    STORE_STMT_MAP(XX)
#undef XX
    STMT_COUNT
};

static const char *const statement_sql[STMT_COUNT] = {
#define XX(name, sql) sql,
    STORE_STMT_MAP(XX)
#undef XX
};

/* JSON buffers, sized for the worst case of SIM_MAX_FRAMES and SIM_MAX_DISASM
 * records whose every string character needs a \u00XX escape. */
#define REGS_JSON_SIZE 1024
#define DISASM_JSON_SIZE (SIM_MAX_DISASM * (64 + 6 * 96) + 16)
#define STACK_JSON_SIZE (SIM_MAX_FRAMES * (128 + 6 * 128) + 16)

struct store {
    char *path;
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT_COUNT];
    uint32_t batch_rows;
    int log;
    bool all_details;

    /* Fingerprints of (endpoint, bucket) pairs that have a crash record with
     * its details: open addressing, 0 is an empty slot, at most half full.
     * 8 bytes per crashing endpoint and bucket. */
    uint64_t *seen;
    size_t seen_cap, seen_count;
    bool in_txn;
    uint32_t pending;        /* rows written since the last commit */

    int failed;              /* the sticky error; 0 while all is well */
    char failure[512];       /* its message */

    char regs_json[REGS_JSON_SIZE];
    char disasm_json[DISASM_JSON_SIZE];
    char stack_json[STACK_JSON_SIZE];
};

/* ---- errors ---------------------------------------------------------------- */

static int report(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int report(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int store__report(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static int sim_code(int sqlite_rc)
{
    switch (sqlite_rc & 0xff) {
    case SQLITE_NOMEM:
        return SIM_ENOMEM;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_FORMAT:
        return SIM_EFORMAT;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
        return SIM_EINVAL;
    default:
        return SIM_EIO;
    }
}

/* "store: PATH: what SQLite said", with a hint where SQLite's is terse. */
static int sqlite_error(const char *path, sqlite3 *db, int sqlite_rc, char *err,
                        size_t errlen)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(sqlite_rc);
    if ((sqlite_rc & 0xff) == SQLITE_FULL)
        return report(err, errlen, SIM_EIO,
                      "store: %s: disk full (%s); the rows committed before are kept",
                      path, msg);
    return report(err, errlen, sim_code(sqlite_rc), "store: %s: %s", path, msg);
}

/*
 * A write failed: drop the open transaction (it may hold half an outcome),
 * remember the error so later writes return it too, and report it.
 */
static int fail(store *st, int sqlite_rc, char *err, size_t errlen)
{
    int rc = sqlite_error(st->path, st->db, sqlite_rc, st->failure, sizeof st->failure);
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    st->in_txn = false;
    st->pending = 0;
    st->failed = rc;
    return report(err, errlen, rc, "%s", st->failure);
}

static int refuse_if_failed(const store *st, char *err, size_t errlen)
{
    if (st->failed)
        return report(err, errlen, st->failed, "%s", st->failure);
    return 0;
}

/* ---- small helpers --------------------------------------------------------- */

static void hex64(char out[19], uint64_t value)
{
    snprintf(out, 19, "0x%016llx", (unsigned long long)value);
}

/* UTC ms since 1970 as "2024-07-19T04:09:00.000Z". */
static void iso_ms(char out[32], int64_t ms)
{
    int64_t secs = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, 32, "%lld", (long long)ms);
        return;
    }
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)rem);
}

static int64_t wall_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A text column, NULL for NULL or "" (a fixed-size field may fill its array). */
static int bind_text(sqlite3_stmt *s, int i, const char *text, size_t max)
{
    if (!text || !text[0])
        return sqlite3_bind_null(s, i);
    size_t n = strnlen(text, max);
    return sqlite3_bind_text(s, i, text, (int)n, SQLITE_STATIC);
}

static int bind_str(sqlite3_stmt *s, int i, const char *text)
{
    return bind_text(s, i, text, (size_t)INT_MAX);
}

#define BIND_FIELD(s, i, field) bind_text((s), (i), (field), sizeof(field))

static int bind_hex(sqlite3_stmt *s, int i, uint64_t value)
{
    char buf[19];
    hex64(buf, value);
    return sqlite3_bind_text(s, i, buf, 18, SQLITE_TRANSIENT);
}

static int bind_u64(sqlite3_stmt *s, int i, uint64_t value)
{
    /* Counts and ids stay below 2^63; larger ones would be a caller bug. */
    return sqlite3_bind_int64(s, i, value > INT64_MAX ? INT64_MAX : (int64_t)value);
}

/* Run a bound statement that returns no rows, then reset it. */
static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Open the batch's transaction when none is. */
static int begin(store *st)
{
    if (st->in_txn)
        return SQLITE_OK;
    int rc = step_done(st->stmt[STMT_BEGIN]);
    if (rc == SQLITE_OK)
        st->in_txn = true;
    return rc;
}

static int commit(store *st)
{
    if (!st->in_txn)
        return SQLITE_OK;
    int rc = step_done(st->stmt[STMT_COMMIT]);
    if (rc == SQLITE_OK) {
        st->in_txn = false;
        st->pending = 0;
    }
    return rc;
}

/* After a whole logical record: commit when the batch is full. */
static int rows_written(store *st, uint32_t rows, char *err, size_t errlen)
{
    st->pending += rows;
    if (st->pending < st->batch_rows)
        return 0;
    int rc = commit(st);
    return rc == SQLITE_OK ? 0 : fail(st, rc, err, errlen);
}

/* ---- JSON for crash records ---------------------------------------------- */

typedef struct json_buf {
    char *p;
    size_t len, size;
    bool overflow;
} json_buf;

static void json_raw(json_buf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void json_raw(json_buf *j, const char *fmt, ...)
{
    if (j->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(j->p + j->len, j->size - j->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= j->size - j->len)
        j->overflow = true;
    else
        j->len += (size_t)n;
}

/* A JSON string of at most `max` bytes of `s`; bytes outside printable ASCII
 * are escaped (as Latin-1), so the text is valid JSON whatever the guest's
 * symbols hold. */
static void json_string(json_buf *j, const char *s, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    /* Room for the worst character (\u00XX) and the closing quote. */
    if (j->overflow || j->size - j->len < 16) {
        j->overflow = true;
        return;
    }
    char *p = j->p + j->len, *end = j->p + j->size - 8;
    *p++ = '"';
    for (size_t i = 0; i < max && s[i]; i++) {
        if (p >= end) {
            j->overflow = true;
            return;
        }
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            memcpy(p, "\\u00", 4);
            p[4] = hex[c >> 4];
            p[5] = hex[c & 15];
            p += 6;
        } else {
            *p++ = (char)c;
        }
    }
    *p++ = '"';
    *p = '\0';
    j->len = (size_t)(p - j->p);
}

static const char *regs_json(store *st, const sim_regs *r)
{
    json_buf j = {st->regs_json, 0, sizeof st->regs_json, false};
    const struct {
        const char *name;
        uint64_t value;
    } regs[] = {
        {"rax", r->rax}, {"rbx", r->rbx}, {"rcx", r->rcx}, {"rdx", r->rdx},
        {"rsi", r->rsi}, {"rdi", r->rdi}, {"rbp", r->rbp}, {"rsp", r->rsp},
        {"r8", r->r8},   {"r9", r->r9},   {"r10", r->r10}, {"r11", r->r11},
        {"r12", r->r12}, {"r13", r->r13}, {"r14", r->r14}, {"r15", r->r15},
        {"rip", r->rip}, {"rflags", r->rflags},
    };
    json_raw(&j, "{");
    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++)
        json_raw(&j, "%s\"%s\":\"0x%016llx\"", i ? "," : "", regs[i].name,
                 (unsigned long long)regs[i].value);
    json_raw(&j, "}");
    assert(!j.overflow);
    return j.overflow ? NULL : j.p;
}

static const char *disasm_json(store *st, const sim_outcome *o)
{
    json_buf j = {st->disasm_json, 0, sizeof st->disasm_json, false};
    int n = o->ndisasm < 0 ? 0 : o->ndisasm > SIM_MAX_DISASM ? SIM_MAX_DISASM : o->ndisasm;
    json_raw(&j, "[");
    for (int i = 0; i < n; i++) {
        json_raw(&j, "%s{\"address\":\"0x%016llx\",\"text\":", i ? "," : "",
                 (unsigned long long)o->disasm[i].address);
        json_string(&j, o->disasm[i].text, sizeof o->disasm[i].text);
        json_raw(&j, "}");
    }
    json_raw(&j, "]");
    assert(!j.overflow);
    return j.overflow ? NULL : j.p;
}

static const char *stack_json(store *st, const sim_outcome *o)
{
    json_buf j = {st->stack_json, 0, sizeof st->stack_json, false};
    int n = o->nframes < 0 ? 0 : o->nframes > SIM_MAX_FRAMES ? SIM_MAX_FRAMES : o->nframes;
    json_raw(&j, "[");
    for (int i = 0; i < n; i++) {
        const sim_frame *f = &o->stack[i];
        json_raw(&j, "%s{\"rip\":\"0x%016llx\",\"rsp\":\"0x%016llx\",\"module\":",
                 i ? "," : "", (unsigned long long)f->rip, (unsigned long long)f->rsp);
        json_string(&j, f->module, sizeof f->module);
        json_raw(&j, ",\"function\":");
        json_string(&j, f->function, sizeof f->function);
        json_raw(&j, ",\"offset\":\"0x%llx\"}", (unsigned long long)f->offset);
    }
    json_raw(&j, "]");
    assert(!j.overflow);
    return j.overflow ? NULL : j.p;
}

/* ---- opening and closing -------------------------------------------------- */

void store_options_init(store_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->batch_rows = STORE_DEFAULT_BATCH;
    opts->log = STORE_LOG_CRASHES;
}

const char *store_path(const store *st)
{
    return st ? st->path : NULL;
}

/* Remove path and its WAL companions, so a new run starts from nothing. */
static int remove_files(const char *path, char *err, size_t errlen)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char name[PATH_MAX];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        if ((size_t)snprintf(name, sizeof name, "%s%s", path, suffix[i]) >= sizeof name)
            return report(err, errlen, SIM_EINVAL, "store: %s: path too long", path);
        if (unlink(name) != 0 && errno != ENOENT)
            return report(err, errlen, SIM_EIO, "store: %s: cannot remove: %s", name,
                          strerror(errno));
    }
    return 0;
}

/* One integer a PRAGMA returns. */
static int pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(s, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            *out = 0;
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(s);
    return rc;
}

static int create_schema(store *st, char *err, size_t errlen)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO meta VALUES ('schema_version', '%d'), ('format', 'fleetsim-store');"
             "PRAGMA user_version = %d; PRAGMA application_id = %d;",
             STORE_SCHEMA_VERSION, STORE_SCHEMA_VERSION, STORE_APPLICATION_ID);
    int rc = sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, store_schema_sql(), NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int e = sqlite_error(st->path, st->db, rc, err, errlen);
        if (!sqlite3_get_autocommit(st->db))
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return e;
    }
    return 0;
}

/* A file that already holds tables must be a fleetsim store of our version. */
static int check_existing(store *st, char *err, size_t errlen)
{
    int64_t app = 0, version = 0;
    int rc = pragma_int(st->db, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK)
        rc = pragma_int(st->db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK)
        return sqlite_error(st->path, st->db, rc, err, errlen);
    if (app != STORE_APPLICATION_ID)
        return report(err, errlen, SIM_EFORMAT, "store: %s: not a fleetsim store", st->path);
    if (version != STORE_SCHEMA_VERSION)
        return report(err, errlen, SIM_EFORMAT,
                      "store: %s: schema version %lld; this fleetsim reads and writes "
                      "version %d",
                      st->path, (long long)version, STORE_SCHEMA_VERSION);
    return 0;
}

static int setup(store *st, const store_options *opts, char *err, size_t errlen)
{
    /* NOMUTEX: one thread uses the connection (the loop's), so SQLite need
     * not lock around every call. */
    int rc = sqlite3_open_v2(st->path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK)
        return sqlite_error(st->path, st->db, rc, err, errlen);
    sqlite3_extended_result_codes(st->db, 1);

    int64_t tables = 0;
    rc = pragma_int(st->db, "SELECT count(*) FROM sqlite_schema", &tables);
    if (rc != SQLITE_OK)
        return sqlite_error(st->path, st->db, rc, err, errlen);
    if (tables > 0 && (rc = check_existing(st, err, errlen)) < 0)
        return rc;

    /* Crash records with their details are ~2 KB: 8 KiB pages hold them
     * with less waste than 4 KiB ones.  Only a new file can choose. */
    if (tables == 0 && (rc = sqlite3_exec(st->db, "PRAGMA page_size = 8192", NULL, NULL,
                                          NULL)) != SQLITE_OK)
        return sqlite_error(st->path, st->db, rc, err, errlen);

    /* journal_mode answers with the mode it ended up in: a file system
     * without shared memory may refuse WAL, which we want to know. */
    sqlite3_stmt *s = NULL;
    rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(s, 0);
        rc = mode && strcmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
        if (rc != SQLITE_OK) {
            sqlite3_finalize(s);
            return report(err, errlen, SIM_EIO, "store: %s: cannot use WAL journal (got %s)",
                          st->path, mode ? mode : "nothing");
        }
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_OK)
        return sqlite_error(st->path, st->db, rc, err, errlen);

    /* synchronous=NORMAL: in WAL mode a commit is an append, not an fsync;
     * a power cut can lose the last commits but never corrupts.  Temporary
     * storage stays SQLite's default, files: building the indexes sorts
     * every row, which in memory would grow with the fleet. */
    char sql[160];
    rc = sqlite3_exec(st->db,
                      "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768",
                      NULL, NULL, NULL);
    if (rc == SQLITE_OK && opts->max_pages) {
        snprintf(sql, sizeof sql, "PRAGMA max_page_count = %u", opts->max_pages);
        rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK)
        return sqlite_error(st->path, st->db, rc, err, errlen);

    if (tables == 0 && (rc = create_schema(st, err, errlen)) < 0)
        return rc;

    for (int i = 0; i < STMT_COUNT; i++) {
        rc = sqlite3_prepare_v3(st->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &st->stmt[i], NULL);
        if (rc != SQLITE_OK)
            return sqlite_error(st->path, st->db, rc, err, errlen);
    }
    return 0;
}

static void release(store *st)
{
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db && !sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(st->db);   /* checkpoints the WAL into the file */
    sim_free(st->seen);
    sim_free(st->path);
    sim_free(st);
}

int store_open(const char *path, const store_options *opts, store **out, char *err,
               size_t errlen)
{
    if (out)
        *out = NULL;
    if (!path || !path[0] || !out)
        return report(err, errlen, SIM_EINVAL, "store: no path given");
    store_options defaults;
    if (!opts) {
        store_options_init(&defaults);
        opts = &defaults;
    }
    if (opts->log < STORE_LOG_NONE || opts->log > STORE_LOG_ALL)
        return report(err, errlen, SIM_EINVAL, "store: %s: bad log mode %d", path, opts->log);
    if (opts->replace) {
        int rc = remove_files(path, err, errlen);
        if (rc < 0)
            return rc;
    }

    store *st = sim_calloc(1, sizeof *st);
    if (!st)
        return report(err, errlen, SIM_ENOMEM, "store: %s: out of memory", path);
    st->path = sim_strdup(path);
    if (!st->path) {
        sim_free(st);
        return report(err, errlen, SIM_ENOMEM, "store: %s: out of memory", path);
    }
    st->batch_rows = opts->batch_rows ? opts->batch_rows : STORE_DEFAULT_BATCH;
    st->log = opts->log;
    st->all_details = opts->all_details;

    int rc = setup(st, opts, err, errlen);
    if (rc < 0) {
        release(st);
        return rc;
    }
    *out = st;
    return 0;
}

int store_flush(store *st, char *err, size_t errlen)
{
    if (!st)
        return report(err, errlen, SIM_EINVAL, "store: no store");
    int rc = refuse_if_failed(st, err, errlen);
    if (rc < 0)
        return rc;
    rc = commit(st);
    return rc == SQLITE_OK ? 0 : fail(st, rc, err, errlen);
}

sqlite3 *store__db(store *st)
{
    return st->db;
}

void store_interrupt(store *st)
{
    if (st && st->db)
        sqlite3_interrupt(st->db);
}

int store_close(store *st, char *err, size_t errlen)
{
    if (!st)
        return 0;
    int result = 0;
    if (!st->failed && st->in_txn) {
        int rc = commit(st);
        if (rc != SQLITE_OK)
            result = fail(st, rc, err, errlen);
    }
    release(st);
    return result;
}

/* ---- the run ---------------------------------------------------------------- */

int store_write_run(store *st, const store_run *run, char *err, size_t errlen)
{
    if (!st || !run || !run->scenario_name)
        return report(err, errlen, SIM_EINVAL, "store: run without a scenario name");
    int rc = refuse_if_failed(st, err, errlen);
    if (rc < 0)
        return rc;

    char seed[19], shard[32], started[32], vstart[32];
    hex64(seed, run->seed);
    snprintf(shard, sizeof shard, "%u/%u", run->shard_index,
             run->shard_count ? run->shard_count : 1);
    iso_ms(started, run->started_ms ? run->started_ms : wall_now_ms());
    iso_ms(vstart, run->virtual_start_ms);

    sqlite3_stmt *s = st->stmt[STMT_RUN];
    bind_str(s, 1, run->scenario_name);
    bind_str(s, 2, run->scenario_path);
    sqlite3_bind_text(s, 3, run->scenario_text ? run->scenario_text : "", -1, SQLITE_STATIC);
    bind_str(s, 4, seed);
    bind_u64(s, 5, run->fleet_size);
    bind_str(s, 6, shard);
    bind_str(s, 7, run->plan);
    sqlite3_bind_text(s, 8, run->fleetsim_version ? run->fleetsim_version : "unknown", -1,
                      SQLITE_STATIC);
    bind_str(s, 9, run->command_line);
    bind_str(s, 10, started);
    sqlite3_bind_int64(s, 11, run->virtual_start_ms);
    bind_str(s, 12, vstart);
    bind_u64(s, 13, run->duration_ms);
    if ((rc = begin(st)) != SQLITE_OK || (rc = step_done(s)) != SQLITE_OK)
        return fail(st, rc, err, errlen);
    return rows_written(st, 1, err, errlen);
}

/*
 * The keys and indexes, in one transaction: all of them or none.  A key
 * found twice is a caller's bug (the run writes each outcome once); a full
 * disk is the usual failure.  Either sticks like a failed write.
 */
static int build_indexes(store *st)
{
    int rc = begin(st);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, store_index_sql(), NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = commit(st);
    if (rc != SQLITE_OK) {
        fail(st, rc, NULL, 0);
        snprintf(st->failure + strlen(st->failure), sizeof st->failure - strlen(st->failure),
                 " (building the store's indexes)");
    }
    return rc;
}

/*
 * Commit what is pending and build the keys and indexes, then set the run's
 * status in a transaction of its own, so a status is never written ahead of
 * the rows it describes.  A store that failed anywhere, this last commit and
 * the keys included, holds a run that is not complete, and says why.
 */
static int mark(store *st, const char *status, int exit_code, int64_t virtual_end_ms,
                const char *reason, char *err, size_t errlen)
{
    int rc;
    if (!st->failed && (rc = commit(st)) != SQLITE_OK)
        fail(st, rc, NULL, 0);   /* the batch is lost; still mark the rest */
    if (!st->failed)
        build_indexes(st);
    if (st->failed) {
        status = "interrupted";
        reason = st->failure;
    }

    char ended[32];
    iso_ms(ended, wall_now_ms());
    sqlite3_stmt *s = st->stmt[STMT_MARK];
    bind_str(s, 1, status);
    sqlite3_bind_int(s, 2, exit_code);
    bind_str(s, 3, ended);
    sqlite3_bind_int64(s, 4, virtual_end_ms);
    bind_str(s, 5, reason);
    rc = step_done(s);
    if (rc != SQLITE_OK)
        return sqlite_error(st->path, st->db, rc, err, errlen);
    if (sqlite3_changes(st->db) != 1)
        return report(err, errlen, SIM_EINVAL, "store: %s: no run to mark %s (write it first)",
                      st->path, status);
    /* Statistics for the query planner (sampled: milliseconds even at a
     * million endpoints), so analysts' joins pick the key over the kind
     * index.  Only a help: a full disk may refuse it. */
    sqlite3_exec(st->db, "PRAGMA analysis_limit = 1000; ANALYZE", NULL, NULL, NULL);
    if (st->failed)   /* the mark went in; the lost batch is still an error */
        return report(err, errlen, st->failed, "%s", st->failure);
    return 0;
}

int store_mark_complete(store *st, int exit_code, int64_t virtual_end_ms, char *err,
                        size_t errlen)
{
    if (!st)
        return report(err, errlen, SIM_EINVAL, "store: no store");
    return mark(st, "complete", exit_code, virtual_end_ms, NULL, err, errlen);
}

int store_mark_interrupted(store *st, int exit_code, int64_t virtual_end_ms,
                           const char *reason, char *err, size_t errlen)
{
    if (!st)
        return report(err, errlen, SIM_EINVAL, "store: no store");
    return mark(st, "interrupted", exit_code, virtual_end_ms, reason, err, errlen);
}

/* ---- artifacts and endpoints ------------------------------------------------- */

int store_write_artifact(store *st, const store_artifact *a, char *err, size_t errlen)
{
    if (!st || !a || !a->name || !store_artifact_name(a->kind))
        return report(err, errlen, SIM_EINVAL, "store: artifact without a kind or name");
    int rc = refuse_if_failed(st, err, errlen);
    if (rc < 0)
        return rc;
    char sha[65] = "";
    if (a->sha256)
        for (int i = 0; i < 32; i++)
            snprintf(sha + 2 * i, 3, "%02x", a->sha256[i]);

    sqlite3_stmt *s = st->stmt[STMT_ARTIFACT];
    bind_str(s, 1, store_artifact_name(a->kind));
    sqlite3_bind_text(s, 2, a->role ? a->role : "", -1, SQLITE_STATIC);
    bind_str(s, 3, a->name);
    bind_str(s, 4, sha);
    bind_u64(s, 5, a->size);
    bind_str(s, 6, a->version);
    bind_str(s, 7, a->path);
    if ((rc = begin(st)) != SQLITE_OK || (rc = step_done(s)) != SQLITE_OK)
        return fail(st, rc, err, errlen);
    return rows_written(st, 1, err, errlen);
}

static int write_endpoint(store *st, const store_endpoint *e)
{
    char seed[19];
    hex64(seed, e->seed);
    sqlite3_stmt *s = st->stmt[STMT_ENDPOINT];
    bind_u64(s, 1, e->id);
    bind_str(s, 2, e->external_id);
    bind_str(s, 3, e->profile);
    sqlite3_bind_int64(s, 4, e->os_build);
    sqlite3_bind_int64(s, 5, e->os_ubr);
    bind_str(s, 6, e->sensor);
    bind_str(s, 7, e->region);
    bind_str(s, 8, e->tenant);
    if (e->ring >= 0)
        sqlite3_bind_int(s, 9, e->ring);
    bind_str(s, 10, seed);
    int rc = step_done(s);
    for (size_t i = 0; rc == SQLITE_OK && i < e->nattrs; i++) {
        s = st->stmt[STMT_ATTR];
        bind_u64(s, 1, e->id);
        bind_str(s, 2, e->attrs[i].key);
        sqlite3_bind_text(s, 3, e->attrs[i].value, -1, SQLITE_STATIC);
        rc = step_done(s);
    }
    return rc;
}

int store_write_endpoints(store *st, const store_endpoint *endpoints, size_t count,
                          char *err, size_t errlen)
{
    if (!st || (count && !endpoints))
        return report(err, errlen, SIM_EINVAL, "store: no endpoints");
    /* Check them all first: a caller's mistake is not a store failure. */
    for (size_t i = 0; i < count; i++) {
        const store_endpoint *e = &endpoints[i];
        if (!e->profile || !e->profile[0] || e->id > INT64_MAX || (e->nattrs && !e->attrs))
            return report(err, errlen, SIM_EINVAL,
                          "store: endpoint %llu: no profile or bad attributes",
                          (unsigned long long)e->id);
        for (size_t k = 0; k < e->nattrs; k++)
            if (!e->attrs[k].key || !e->attrs[k].key[0] || !e->attrs[k].value)
                return report(err, errlen, SIM_EINVAL,
                              "store: endpoint %llu: attribute %zu without a key or value",
                              (unsigned long long)e->id, k);
    }
    int rc = refuse_if_failed(st, err, errlen);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < count; i++) {
        if ((rc = begin(st)) != SQLITE_OK || (rc = write_endpoint(st, &endpoints[i])) != SQLITE_OK)
            return fail(st, rc, err, errlen);
        if ((rc = rows_written(st, 1 + (uint32_t)endpoints[i].nattrs, err, errlen)) < 0)
            return rc;
    }
    return 0;
}

/* ---- outcomes ---------------------------------------------------------------- */

static bool is_crash(const sim_outcome *o)
{
    return o->kind == SIM_OUTCOME_BUGCHECK || o->kind == SIM_OUTCOME_HANG;
}

static int write_outcome_row(store *st, const store_outcome_at *at, const sim_outcome *o)
{
    sqlite3_stmt *s = st->stmt[STMT_OUTCOME];
    bind_u64(s, 1, at->endpoint_id);
    sqlite3_bind_int64(s, 2, at->boot);
    sqlite3_bind_int64(s, 3, at->vt_ms);
    bind_str(s, 4, sim_outcome_name(o->kind));
    if (o->status_valid)
        sqlite3_bind_int64(s, 5, o->status);
    if (o->kind == SIM_OUTCOME_BUGCHECK) {
        sqlite3_bind_int64(s, 6, o->bugcheck);
        bind_str(s, 7, sim_bugcheck_name(o->bugcheck));
        for (int i = 0; i < 4; i++)
            bind_hex(s, 8 + i, o->params[i]);
    }
    bind_str(s, 12, at->image);
    bind_hex(s, 13, o->image_base);
    bind_u64(s, 14, o->instructions);
    sqlite3_bind_int64(s, 15, o->events_delivered);
    BIND_FIELD(s, 16, o->phase);
    BIND_FIELD(s, 17, o->detail);
    BIND_FIELD(s, 18, o->api);
    if (at->has_seed)
        bind_hex(s, 19, at->seed);
    if (at->start)
        bind_str(s, 20, at->start);
    return step_done(s);
}

/* ---- the first crash of an endpoint in a bucket ---------------------------- */

/* 64 bits for (endpoint, bucket); never 0.  Two pairs of one run share a
 * fingerprint with odds of about n^2 / 2^65 — then the later one's record
 * keeps no details, the same way at every run. */
static uint64_t fingerprint(uint64_t endpoint_id, const char *bucket)
{
    uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)bucket; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    h = fleet_mix64(h ^ fleet_mix64(endpoint_id));
    return h ? h : 1;
}

static bool seen_grow(store *st)
{
    size_t cap = st->seen_cap ? st->seen_cap * 2 : 4096;
    uint64_t *slots = sim_calloc(cap, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < st->seen_cap; i++) {
        uint64_t f = st->seen[i];
        if (!f)
            continue;
        size_t k = f & (cap - 1);
        while (slots[k])
            k = (k + 1) & (cap - 1);
        slots[k] = f;
    }
    sim_free(st->seen);
    st->seen = slots;
    st->seen_cap = cap;
    return true;
}

/*
 * Whether this endpoint's crash in this bucket is its first there (and from
 * now on, it is not).  Boot b+1 is only emulated once boot b's outcome is
 * in, so an endpoint's crashes come in boot order whatever --jobs.  Without
 * memory for the set, every crash is a first: details kept, none lost.
 */
static bool first_in_bucket(store *st, uint64_t endpoint_id, const char *bucket)
{
    if (st->seen_count + 1 > st->seen_cap / 2 && !seen_grow(st))
        return true;
    uint64_t f = fingerprint(endpoint_id, bucket);
    size_t k = f & (st->seen_cap - 1);
    for (; st->seen[k]; k = (k + 1) & (st->seen_cap - 1))
        if (st->seen[k] == f)
            return false;
    st->seen[k] = f;
    st->seen_count++;
    return true;
}

/*
 * The crash record.  Its details (registers, disassembly, stack) are ~2 KB,
 * and a boot-looping endpoint crashes the same way at every boot, so unless
 * the run asks for all of them only an endpoint's first crash in a bucket
 * keeps them; `details` says whether this one did.
 */
static int write_crash_row(store *st, const store_outcome_at *at, const sim_outcome *o,
                           bool *details)
{
    char bucket[STORE_BUCKET_SIZE], symbol[STORE_BUCKET_SIZE];
    store_bucket_key(o, bucket, sizeof bucket);
    *details = st->all_details || first_in_bucket(st, at->endpoint_id, bucket);
    sqlite3_stmt *s = st->stmt[STMT_CRASH];
    bind_u64(s, 1, at->endpoint_id);
    sqlite3_bind_int64(s, 2, at->boot);
    sqlite3_bind_int64(s, 3, at->vt_ms);
    if (o->kind == SIM_OUTCOME_BUGCHECK)
        sqlite3_bind_int64(s, 4, o->bugcheck);
    bind_str(s, 5, bucket);
    if (o->has_fault) {
        const sim_fault *f = &o->fault;
        store__blamed_frame(o, symbol, sizeof symbol);
        bind_str(s, 6, symbol);
        bind_hex(s, 7, f->rip);
        BIND_FIELD(s, 8, f->module);
        BIND_FIELD(s, 9, f->function);
        bind_u64(s, 10, f->offset);
        BIND_FIELD(s, 11, f->instruction);
        if (f->access != SIM_ACCESS_NONE)
            bind_hex(s, 12, f->address);
        bind_str(s, 13, sim_access_name(f->access));
        if (f->access != SIM_ACCESS_NONE)
            bind_str(s, 14, sim_addr_class_name(f->address_class));
        BIND_FIELD(s, 15, f->region);
        sqlite3_bind_int(s, 16, f->irql);
        if (*details) {
            bind_str(s, 17, regs_json(st, &o->regs));
            bind_str(s, 18, disasm_json(st, o));
            bind_str(s, 19, stack_json(st, o));
        }
    }
    return step_done(s);
}

static int write_log_row(store *st, const store_outcome_at *at, const sim_outcome *o)
{
    size_t n = strnlen(o->log, sizeof o->log);
    if (o->loglen < n)
        n = o->loglen;
    sqlite3_stmt *s = st->stmt[STMT_LOG];
    bind_u64(s, 1, at->endpoint_id);
    sqlite3_bind_int64(s, 2, at->boot);
    sqlite3_bind_text(s, 3, o->log, (int)n, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, o->log_truncated);
    return step_done(s);
}

int store_write_outcome(store *st, const store_outcome_at *at, const sim_outcome *o,
                        char *err, size_t errlen)
{
    if (!st || !at || !o || (unsigned)o->kind >= SIM_OUTCOME_COUNT ||
        at->endpoint_id > INT64_MAX)
        return report(err, errlen, SIM_EINVAL, "store: bad outcome");
    int rc = refuse_if_failed(st, err, errlen);
    if (rc < 0)
        return rc;

    bool crash = is_crash(o), details = false;
    uint32_t rows = 1;
    if ((rc = begin(st)) != SQLITE_OK || (rc = write_outcome_row(st, at, o)) != SQLITE_OK)
        return fail(st, rc, err, errlen);
    if (crash)
        rc = write_crash_row(st, at, o, &details);
    rows += crash;
    bool log = o->log[0] && (st->log == STORE_LOG_ALL || (st->log == STORE_LOG_CRASHES && details));
    if (rc == SQLITE_OK && log)
        rc = write_log_row(st, at, o);
    rows += log;
    if (rc != SQLITE_OK)
        return fail(st, rc, err, errlen);
    return rows_written(st, rows, err, errlen);
}

/* ---- timelines and rollout -------------------------------------------------- */

int store_write_timeline_event(store *st, uint64_t endpoint_id, int64_t vt_ms, uint32_t seq,
                               store_timeline_kind kind, const char *detail, char *err,
                               size_t errlen)
{
    const char *name = store_timeline_name(kind);
    if (!st || !name || endpoint_id > INT64_MAX)
        return report(err, errlen, SIM_EINVAL, "store: bad timeline event");
    int rc = refuse_if_failed(st, err, errlen);
    if (rc < 0)
        return rc;
    sqlite3_stmt *s = st->stmt[STMT_TIMELINE];
    bind_u64(s, 1, endpoint_id);
    sqlite3_bind_int64(s, 2, vt_ms);
    sqlite3_bind_int64(s, 3, seq);
    bind_str(s, 4, name);
    bind_str(s, 5, detail);
    if ((rc = begin(st)) != SQLITE_OK || (rc = step_done(s)) != SQLITE_OK)
        return fail(st, rc, err, errlen);
    return rows_written(st, 1, err, errlen);
}

int store_write_ring(store *st, const store_ring *r, char *err, size_t errlen)
{
    if (!st || !r || !r->name)
        return report(err, errlen, SIM_EINVAL, "store: ring without a name");
    int rc = refuse_if_failed(st, err, errlen);
    if (rc < 0)
        return rc;
    sqlite3_stmt *s = st->stmt[STMT_RING];
    sqlite3_bind_int64(s, 1, r->ring);
    bind_str(s, 2, r->name);
    bind_str(s, 3, r->selector);
    bind_u64(s, 4, r->size);
    bind_u64(s, 5, r->bake_ms);
    if (r->released_vt_ms != INT64_MIN)
        sqlite3_bind_int64(s, 6, r->released_vt_ms);
    if ((rc = begin(st)) != SQLITE_OK || (rc = step_done(s)) != SQLITE_OK)
        return fail(st, rc, err, errlen);
    return rows_written(st, 1, err, errlen);
}

static void bind_count(sqlite3_stmt *s, int i, int64_t value)
{
    if (value >= 0)
        sqlite3_bind_int64(s, i, value);
}

static void bind_real(sqlite3_stmt *s, int i, double value)
{
    if (!isnan(value))
        sqlite3_bind_double(s, i, value);
}

int store_write_gate_decision(store *st, const store_gate_decision *d, char *err,
                              size_t errlen)
{
    const char *action = d ? store_gate_action_name(d->action) : NULL;
    if (!st || !d || !action || !d->gate)
        return report(err, errlen, SIM_EINVAL, "store: gate decision without a gate or action");
    int rc = refuse_if_failed(st, err, errlen);
    if (rc < 0)
        return rc;
    sqlite3_stmt *s = st->stmt[STMT_GATE];
    sqlite3_bind_int64(s, 1, d->ring);
    sqlite3_bind_int64(s, 2, d->vt_ms);
    bind_str(s, 3, d->gate);
    bind_str(s, 4, action);
    bind_count(s, 5, d->exposed);
    bind_count(s, 6, d->reported);
    bind_count(s, 7, d->crashes);
    bind_count(s, 8, d->silent);
    bind_count(s, 9, d->control_exposed);
    bind_count(s, 10, d->control_crashes);
    bind_real(s, 11, d->statistic);
    bind_real(s, 12, d->threshold);
    bind_str(s, 13, d->detail);
    if ((rc = begin(st)) != SQLITE_OK || (rc = step_done(s)) != SQLITE_OK)
        return fail(st, rc, err, errlen);
    return rows_written(st, 1, err, errlen);
}
