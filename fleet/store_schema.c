/*
 * store_schema.c — the run store's schema: one SQL text of CREATE TABLE,
 * VIEW and INDEX statements, versioned by STORE_SCHEMA_VERSION.
 *
 * store.c runs its tables part when it creates a store and its index part
 * when it marks the run; store_schema_sql() hands the whole text to the
 * tests, which hold the README to it.  It lives in a
 * file of its own because it is the store's contract with its readers: the
 * report layer reads only the tables it describes, and the README shows the
 * same text byte for byte.
 */
#include "store-internal.h"

/*
 * The schema is two parts: the tables and views, created with the store,
 * and the keys and indexes, which store_mark_* builds when the run ends
 * (kept up to date row by row, endpoint-keyed B-trees far larger than
 * SQLite's cache wrote 548 GB for a 5.7 GB store at 500,000 endpoints).
 */
#define INDEXES                                                                    \
"-- The keys and indexes are built when the run is marked complete or\n"          \
"-- interrupted (rows come in virtual-time order, and B-trees by endpoint\n"      \
"-- kept up to date as they come cost far more than building them at the\n"     \
"-- end).  A store whose run died ('running') has none: queries still work,\n"  \
"-- by scanning.\n"                                                             \
"CREATE UNIQUE INDEX IF NOT EXISTS outcomes_key ON outcomes (endpoint_id, boot);\n" \
"CREATE UNIQUE INDEX IF NOT EXISTS crashes_key ON crashes (endpoint_id, boot);\n"   \
"CREATE UNIQUE INDEX IF NOT EXISTS dbgprint_key ON dbgprint (endpoint_id, boot);\n" \
"CREATE UNIQUE INDEX IF NOT EXISTS timeline_key ON timeline (endpoint_id, vt_ms, seq);\n" \
"CREATE INDEX IF NOT EXISTS crashes_bucket\n"                                    \
"  ON crashes (bucket, endpoint_id, vt_ms, bugcheck);  -- covers the buckets view\n" \
"CREATE INDEX IF NOT EXISTS outcomes_kind ON outcomes (kind, endpoint_id);\n"     \
"CREATE INDEX IF NOT EXISTS timeline_kind ON timeline (kind, endpoint_id, vt_ms);\n"

#define TABLES \
"-- fleetsim run store, schema version 3: one run per file.\n"                                 \
"CREATE TABLE meta (\n"                                                                        \
"  key   TEXT PRIMARY KEY,   -- 'schema_version', 'format'\n"                                  \
"  value TEXT NOT NULL\n"                                                                      \
") WITHOUT ROWID;\n"                                                                           \
"\n"                                                                                           \
"-- The run: one row, id 1.  status 'running' in a closed store means the\n"                   \
"-- process died before it could say 'interrupted'.\n"                                         \
"CREATE TABLE run (\n"                                                                         \
"  id               INTEGER PRIMARY KEY CHECK (id = 1),\n"                                     \
"  scenario_name    TEXT NOT NULL,\n"                                                          \
"  scenario_path    TEXT,\n"                                                                   \
"  scenario_text    TEXT NOT NULL,     -- the YAML, verbatim\n"                                \
"  seed             TEXT NOT NULL,     -- '0x' + 16 hex digits\n"                              \
"  fleet_size       INTEGER NOT NULL,  -- the whole fleet, not just this shard\n"              \
"  shard            TEXT NOT NULL,     -- 'K/N'; '0/1' when not sharded\n"                     \
"  plan             TEXT,              -- rollout plan; NULL: the scenario's\n"                \
"  fleetsim_version TEXT NOT NULL,\n"                                                          \
"  command_line     TEXT,\n"                                                                   \
"  started_at       TEXT NOT NULL,     -- wall clock, ISO 8601 UTC\n"                          \
"  ended_at         TEXT,\n"                                                                   \
"  virtual_start_ms INTEGER NOT NULL,  -- scenario start, UTC ms since 1970\n"                 \
"  virtual_start    TEXT NOT NULL,     -- the same, ISO 8601 UTC\n"                            \
"  duration_ms      INTEGER NOT NULL,  -- virtual time the run plays\n"                        \
"  virtual_end_ms   INTEGER,           -- virtual time reached (ms after start)\n"             \
"  status           TEXT NOT NULL DEFAULT 'running'\n"                                         \
"                   CHECK (status IN ('running', 'complete', 'interrupted')),\n"               \
"  exit_code        INTEGER,\n"                                                                \
"  reason           TEXT               -- why it was interrupted\n"                            \
");\n"                                                                                         \
"\n"                                                                                           \
"-- Every image, content file and profile the run used, by hash.\n"                            \
"CREATE TABLE artifacts (\n"                                                                   \
"  kind    TEXT NOT NULL CHECK (kind IN ('image', 'content', 'profile')),\n"                   \
"  role    TEXT NOT NULL,  -- 'installed', 'update', 'revert', 'sensor', ...\n"                \
"  name    TEXT NOT NULL,\n"                                                                   \
"  sha256  TEXT,           -- 64 hex digits; NULL: built into fleetsim\n"                      \
"  size    INTEGER,\n"                                                                         \
"  version TEXT,           -- sensor version, OS build, content version\n"                     \
"  path    TEXT,           -- host file it was read from\n"                                    \
"  PRIMARY KEY (kind, role, name)\n"                                                           \
") WITHOUT ROWID;\n"                                                                           \
"\n"                                                                                           \
"-- The fleet: every endpoint, emulated or not (cohort denominators).\n"                       \
"CREATE TABLE endpoints (\n"                                                                   \
"  id          INTEGER PRIMARY KEY,  -- the fleet's endpoint id\n"                             \
"  external_id TEXT,                 -- inventory id; NULL: generated fleet\n"                 \
"  profile     TEXT NOT NULL,\n"                                                               \
"  os_build    INTEGER,\n"                                                                     \
"  os_ubr      INTEGER,\n"                                                                     \
"  sensor      TEXT,\n"                                                                        \
"  region      TEXT,\n"                                                                        \
"  tenant      TEXT,\n"                                                                        \
"  ring        INTEGER,              -- rollout ring; NULL: none\n"                            \
"  seed        TEXT NOT NULL         -- its own seed, '0x' + 16 hex digits\n"                  \
");\n"                                                                                         \
"\n"                                                                                           \
"-- Any other attribute, for cohorts by anything.\n"                                           \
"CREATE TABLE endpoint_attrs (\n"                                                              \
"  endpoint_id INTEGER NOT NULL,\n"                                                            \
"  key         TEXT NOT NULL,\n"                                                               \
"  value       TEXT NOT NULL,\n"                                                               \
"  PRIMARY KEY (endpoint_id, key)\n"                                                           \
") WITHOUT ROWID;\n"                                                                           \
"\n"                                                                                           \
"-- Every attribute as (endpoint_id, key, value): GROUP BY any of them.\n"                     \
"CREATE VIEW endpoint_attr (endpoint_id, key, value) AS\n"                                     \
"  SELECT id, 'profile', profile FROM endpoints\n"                                             \
"  UNION ALL SELECT id, 'os', os_build || '.' || os_ubr FROM endpoints\n"                      \
"  UNION ALL SELECT id, 'sensor', sensor FROM endpoints\n"                                     \
"  UNION ALL SELECT id, 'region', region FROM endpoints\n"                                     \
"  UNION ALL SELECT id, 'tenant', tenant FROM endpoints\n"                                     \
"  UNION ALL SELECT id, 'ring', ring FROM endpoints\n"                                         \
"  UNION ALL SELECT endpoint_id, key, value FROM endpoint_attrs;\n"                            \
"\n"                                                                                           \
"-- What each emulation of an endpoint did.  boot 0 is the boot the run\n"                     \
"-- found the endpoint in; each reboot adds one.  Key: (endpoint_id, boot).\n"                 \
"CREATE TABLE outcomes (\n"                                                                    \
"  endpoint_id   INTEGER NOT NULL,\n"                                                          \
"  boot          INTEGER NOT NULL,\n"                                                          \
"  vt_ms         INTEGER NOT NULL,  -- virtual ms after run.virtual_start_ms\n"                \
"  kind          TEXT NOT NULL\n"                                                              \
"                CHECK (kind IN ('ok', 'bugcheck', 'hang', 'unsupported-api')),\n"             \
"  status        INTEGER,           -- DriverEntry's NTSTATUS; NULL: no return\n"              \
"  bugcheck      INTEGER,           -- the code, for kind 'bugcheck'\n"                        \
"  bugcheck_name TEXT,\n"                                                                      \
"  p1 TEXT, p2 TEXT, p3 TEXT, p4 TEXT,  -- its parameters, '0x' + 16 hex\n"                    \
"  image         TEXT,              -- the image that ran\n"                                   \
"  image_base    TEXT,              -- where it was loaded (KASLR)\n"                          \
"  instructions  INTEGER,\n"                                                                   \
"  events        INTEGER,           -- OS events delivered\n"                                  \
"  phase         TEXT,              -- 'DriverEntry', 'process-notify', ...\n"                 \
"  detail        TEXT,\n"                                                                      \
"  api           TEXT,              -- unsupported-api: 'ntoskrnl.exe!Name'\n"                 \
"  seed          TEXT,              -- this emulation's seed: fleetsim emulate --seed\n"       \
"  start         TEXT CHECK (start IN ('boot', 'live'))   -- the driver started at\n"          \
"                                   -- boot with the content on disk, or a file\n"             \
"                                   -- arrived while it ran (an update received)\n"            \
");\n"                                                                                         \
"\n"                                                                                           \
"-- The crash record of each bugcheck and hang: one per outcome row, with\n"                   \
"-- the outcome's time and code beside it.  Key: (endpoint_id, boot).\n"                       \
"CREATE TABLE crashes (\n"                                                                     \
"  endpoint_id   INTEGER NOT NULL,\n"                                                          \
"  boot          INTEGER NOT NULL,\n"                                                          \
"  vt_ms         INTEGER NOT NULL,  -- outcomes.vt_ms\n"                                       \
"  bugcheck      INTEGER,        -- outcomes.bugcheck; NULL for a hang\n"                      \
"  bucket        TEXT NOT NULL,  -- '0x50_R_KERNEL_sensor!MatchInstance+0x2f'\n"               \
"  symbol        TEXT,           -- the frame it blames: module!function+0xoff\n"              \
"  rip           TEXT,\n"                                                                      \
"  module        TEXT,           -- of the faulting instruction ('nt', ...)\n"                 \
"  function      TEXT,\n"                                                                      \
"  offset        INTEGER,        -- from function start (module base: no symbol)\n"            \
"  instruction   TEXT,           -- 'mov r9d, dword ptr [r8]'\n"                               \
"  address       TEXT,           -- the address touched\n"                                     \
"  access        TEXT CHECK (access IN ('none', 'read', 'write', 'execute')),\n"               \
"  address_class TEXT,           -- 'null', 'user', 'non-canonical', 'kernel'\n"               \
"  region        TEXT,           -- memory region holding the address\n"                       \
"  irql          INTEGER,\n"                                                                   \
"  -- The details: NULL on an endpoint's later crashes in the same bucket\n"                   \
"  -- (a boot loop repeats itself), which its first crash there holds.\n"                      \
"  registers     TEXT,           -- JSON {\"rax\": \"0x...\", ..., \"rflags\": ...}\n"         \
"  disasm        TEXT,           -- JSON [{\"address\", \"text\"}], ends at the fault\n"       \
"  stack         TEXT            -- JSON [{\"rip\", \"rsp\", \"module\", \"function\",\n"      \
"                                --        \"offset\"}], innermost first\n"                    \
");\n"                                                                                         \
"\n"                                                                                           \
"-- DbgPrint output: by default only beside a crash record's details.\n"                       \
"-- Key: (endpoint_id, boot).\n"                                                               \
"CREATE TABLE dbgprint (\n"                                                                    \
"  endpoint_id INTEGER NOT NULL,\n"                                                            \
"  boot        INTEGER NOT NULL,\n"                                                            \
"  log         TEXT NOT NULL,\n"                                                               \
"  truncated   INTEGER NOT NULL   -- 1: the guest printed more than was kept\n"                \
");\n"                                                                                         \
"\n"                                                                                           \
"-- What happened to each endpoint, when.  seq orders events of one\n"                         \
"-- endpoint at one virtual time.  Key: (endpoint_id, vt_ms, seq).\n"                          \
"CREATE TABLE timeline (\n"                                                                    \
"  endpoint_id INTEGER NOT NULL,\n"                                                            \
"  vt_ms       INTEGER NOT NULL,\n"                                                            \
"  seq         INTEGER NOT NULL,\n"                                                            \
"  kind        TEXT NOT NULL CHECK (kind IN ('online', 'offline', 'received',\n"               \
"                'emulated', 'crashed', 'rebooted', 'boot-loop', 'known-bad',\n"               \
"                'recovered', 'repaired')),\n"                                                 \
"  detail      TEXT\n"                                                                         \
");\n"                                                                                         \
"\n"                                                                                           \
"-- Rollout rings, and every gate decision with the numbers behind it.\n"                      \
"CREATE TABLE rings (\n"                                                                       \
"  ring           INTEGER PRIMARY KEY,  -- 0 is released first\n"                              \
"  name           TEXT NOT NULL,\n"                                                            \
"  selector       TEXT,                 -- '0.1%', 'tenant=internal', ...\n"                   \
"  size           INTEGER NOT NULL,\n"                                                         \
"  bake_ms        INTEGER NOT NULL,\n"                                                         \
"  released_vt_ms INTEGER               -- NULL: never released\n"                             \
");\n"                                                                                         \
"\n"                                                                                           \
"CREATE TABLE gate_decisions (\n"                                                              \
"  ring            INTEGER NOT NULL,\n"                                                        \
"  vt_ms           INTEGER NOT NULL,\n"                                                        \
"  seq             INTEGER NOT NULL,\n"                                                        \
"  gate            TEXT NOT NULL,  -- 'sequential', 'threshold', 'min-exposure', 'detected'\n" \
"  action          TEXT NOT NULL\n"                                                            \
"                  CHECK (action IN ('advance', 'hold', 'halt', 'rollback')),\n"               \
"  exposed         INTEGER,        -- endpoints that received the update\n"                    \
"  reported        INTEGER,        -- of them, heard from after the bake time\n"               \
"  crashes         INTEGER,        -- crash reports arrived by then\n"                         \
"  silent          INTEGER,        -- received, then went silent\n"                            \
"  control_exposed INTEGER,\n"                                                                 \
"  control_crashes INTEGER,\n"                                                                 \
"  statistic       REAL,           -- rate bound, Bayes factor, ...\n"                         \
"  threshold       REAL,\n"                                                                    \
"  detail          TEXT,\n"                                                                    \
"  PRIMARY KEY (ring, vt_ms, seq)\n"                                                           \
") WITHOUT ROWID;\n"                                                                           \
"\n"                                                                                           \
"-- Crash buckets with their size and span.\n"                                                 \
"CREATE VIEW buckets AS\n"                                                                     \
"  SELECT bucket, min(bugcheck) AS bugcheck, count(*) AS crashes,\n"                           \
"         count(DISTINCT endpoint_id) AS endpoints,\n"                                         \
"         min(vt_ms) AS first_vt_ms, max(vt_ms) AS last_vt_ms,\n"                              \
"         min(endpoint_id) AS example_endpoint\n"                                              \
"  FROM crashes GROUP BY bucket;\n"                                                            \
"\n"

/* Kept byte for byte in README.md, "The store" (test_store checks it). */
static const char SCHEMA[] = TABLES INDEXES;
static const char TABLE_SQL[] = TABLES;
static const char INDEX_SQL[] = INDEXES;

const char *store_schema_sql(void)
{
    return SCHEMA;
}

const char *store__table_sql(void)
{
    return TABLE_SQL;
}

const char *store__index_sql(void)
{
    return INDEX_SQL;
}
