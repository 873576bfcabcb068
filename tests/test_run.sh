#!/bin/sh
# test_run.sh — `fleetsim run` end to end on a small fleet of the headline
# scenario: the run completes, the store answers the issue's questions with
# plain SQL, and the results are identical for --jobs 1 and --jobs 2
# (DESIGN.md, decision 4).  $1: the fleetsim binary; $2: the source root.
set -u
fleetsim=$1
src=$2
. "$(dirname "$0")/tap.sh"

scenario="$src/scenarios/channel-file-291.yaml"
"$fleetsim" run "$scenario" --fleet-size 120 --jobs 1 --db "$tmp/one.db" --quiet >"$tmp/one.txt" 2>&1
one=$?
"$fleetsim" run "$scenario" --fleet-size 120 --jobs 2 --db "$tmp/two.db" --quiet >"$tmp/two.txt" 2>&1
two=$?
check "a run with faults exits 1" test "$one" -eq 1 -a "$two" -eq 1

dump() {
  python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for table, order in [("endpoints", "id"), ("outcomes", "endpoint_id, boot"),
                     ("crashes", "endpoint_id, boot"), ("timeline", "endpoint_id, vt_ms, seq")]:
    for row in db.execute(f"select * from {table} order by {order}"):
        print(table, row)
PY
}
dump "$tmp/one.db" >"$tmp/one.dump"
dump "$tmp/two.db" >"$tmp/two.dump"
check "--jobs 1 and --jobs 2 store the same endpoints, outcomes, crashes and timelines" \
  cmp "$tmp/one.dump" "$tmp/two.dump"
check "the store holds outcomes" test "$(grep -c '^outcomes' "$tmp/one.dump")" -gt 100

query() {
  python3 - "$tmp/one.db" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for row in db.execute(sys.argv[2]):
    print("|".join(str(x) for x in row))
PY
}
check "the run is marked complete" test "$(query "select status from run")" = complete
check "every crash of sensor 7.11 is 0x50 or 0x7E in the interpreter" test -z "$(query "
  select c.bucket from crashes c join endpoints e on e.id = c.endpoint_id
  where e.sensor = '7.11' and c.bucket not like '0x50_%ReadInputField%'
    and c.bucket not like '0x7E_%ReadInputField%'")"
check "most 7.11 crashes are the interpreter's 0x50" test "$(query "
  select sum(o.bugcheck = 80) * 2 > count(*) from outcomes o join endpoints e on e.id = o.endpoint_id
  where e.sensor = '7.11' and o.kind = 'bugcheck'")" = 1
check "no sensor 7.10 endpoint crashed" test "$(query "
  select count(*) from outcomes o join endpoints e on e.id = o.endpoint_id
  where e.sensor = '7.10' and o.kind != 'ok'")" = 0
check "endpoints reached by the update before the revert crashed" test "$(query "
  select count(distinct t.endpoint_id) from timeline t join endpoints e on e.id = t.endpoint_id
  where t.kind = 'crashed' and e.sensor = '7.11'")" -gt 10
check "some crashed endpoints boot-looped and some recovered" test "$(query "
  select (select count(*) from timeline where kind = 'boot-loop') > 0
     and (select count(*) from timeline where kind = 'recovered') > 0")" = 1
check "the summary names cohorts" grep -q "win10-22h2-2024-07" "$tmp/one.txt"

# Shards (DESIGN.md, decision 6): two halves hold exactly the rows of the whole.
for k in 0 1; do
  "$fleetsim" run "$scenario" --fleet-size 120 --shard "$k/2" --db "$tmp/shard$k.db" --quiet \
    >"$tmp/shard$k.txt" 2>&1
done
cat "$tmp/shard0.txt" >/dev/null
{ dump "$tmp/shard0.db"; dump "$tmp/shard1.db"; } | sort >"$tmp/shards.dump"
sort "$tmp/one.dump" >"$tmp/one.sorted"
check "--shard 0/2 and 1/2 together store exactly what the whole run stores" \
  cmp "$tmp/shards.dump" "$tmp/one.sorted"
"$fleetsim" run "$scenario" --shard 2/2 --db "$tmp/x.db" >"$tmp/bad.txt" 2>&1
check "--shard 2/2 is refused" test $? -eq 2
"$fleetsim" merge -o "$tmp/merged.db" "$tmp/shard1.db" "$tmp/shard0.db" >"$tmp/merge.txt" 2>&1
check "fleetsim merge joins the shards (in any order)" test $? -eq 0
dump "$tmp/merged.db" | sort >"$tmp/merged.dump"
check "... into exactly the whole run's rows" cmp "$tmp/merged.dump" "$tmp/one.sorted"
check "... marked complete, the whole fleet, shard 0/1" test "$(python3 -c 'import sqlite3, sys
print("|".join(map(str, sqlite3.connect(sys.argv[1]).execute(
    "select status, fleet_size, shard from run").fetchone())))' "$tmp/merged.db")" = "complete|120|0/1"
check "... with the keys and indexes a run's store has" test "$(python3 -c 'import sqlite3, sys
q = "select group_concat(name) from (select name from sqlite_schema where type = \"index\" and sql is not null order by name)"
print(*(sqlite3.connect(p).execute(q).fetchone()[0] for p in sys.argv[1:]))' "$tmp/merged.db" "$tmp/shard0.db")" = \
  "crashes_bucket,crashes_key,dbgprint_key,outcomes_key,outcomes_kind,timeline_key,timeline_kind crashes_bucket,crashes_key,dbgprint_key,outcomes_key,outcomes_kind,timeline_key,timeline_kind"
check "merging a shard twice is refused and leaves no file" sh -c "! '$fleetsim' merge \
  -o '$tmp/m2.db' '$tmp/shard0.db' '$tmp/shard0.db' && test ! -e '$tmp/m2.db'"
check "merging half the shards is refused" sh -c "'$fleetsim' merge -o '$tmp/m3.db' \
  '$tmp/shard0.db'; test \$? -eq 2"
check "merging shards of different runs is refused" sh -c "'$fleetsim' merge -o '$tmp/m4.db' \
  '$tmp/shard0.db' '$tmp/one.db'; test \$? -eq 2"
check "... and the merged run has no exit status of its own" test "$(python3 -c "
import sqlite3; print(sqlite3.connect('$tmp/merged.db').execute(
  'select exit_code is null from run').fetchone()[0])")" = 1
"$fleetsim" run "$scenario" --fleet-size 120 --shard 1/2 --duration 5h --db "$tmp/short1.db" \
  --quiet >/dev/null 2>&1
"$fleetsim" merge -o "$tmp/m5.db" "$tmp/shard0.db" "$tmp/short1.db" >"$tmp/m5.txt" 2>&1
status=$?
check "merging shards of different durations is refused" sh -c \
  "test $status -eq 2 && grep -q 'their duration differs' '$tmp/m5.txt'"
cp "$tmp/merged.db" "$tmp/keep.db"
check "a refused merge leaves an existing output as it was, and no temporary file" sh -c \
  "! '$fleetsim' merge -o '$tmp/keep.db' '$tmp/shard0.db' '$tmp/shard0.db' 2>/dev/null &&
   cmp -s '$tmp/keep.db' '$tmp/merged.db' && ! ls '$tmp' | grep -q merging"
check "a shard named another way as the output is refused and kept" sh -c \
  "cp '$tmp/shard0.db' '$tmp/s0copy.db' && cd '$tmp' &&
   ! '$fleetsim' merge -o ./s0copy.db s0copy.db shard1.db 2>/dev/null &&
   cmp -s s0copy.db shard0.db"
printf 'not empty' >"$tmp/keep.db-wal"
check "an output whose WAL holds rows is refused (exit 2), and both are kept" sh -c \
  "'$fleetsim' merge -o '$tmp/keep.db' '$tmp/shard0.db' '$tmp/shard1.db' >'$tmp/m6.txt' 2>&1;
   test \$? -eq 2 && grep -q 'keep.db-wal holds rows not yet in it' '$tmp/m6.txt' &&
   cmp -s '$tmp/keep.db' '$tmp/merged.db' && test -s '$tmp/keep.db-wal'"
rm -f "$tmp/keep.db-wal"
mkdir "$tmp/adir"
check "an output that is not a file is refused (exit 2)" sh -c \
  "'$fleetsim' merge -o '$tmp/adir' '$tmp/shard0.db' '$tmp/shard1.db' >'$tmp/m7.txt' 2>&1;
   test \$? -eq 2 && grep -q 'adir: not a file' '$tmp/m7.txt'"

"$fleetsim" run "$src/scenarios/clean-update.yaml" --fleet-size 60 --db "$tmp/clean.db" --quiet >"$tmp/clean.txt" 2>&1
check "a clean update faults nowhere and exits 0" test $? -eq 0
check "the clean update reached endpoints" test "$(python3 -c "
import sqlite3; print(sqlite3.connect('$tmp/clean.db').execute(
  \"select count(*) from outcomes where kind = 'ok'\").fetchone()[0])")" -gt 0

"$fleetsim" run "$src/scenarios/offsets-24h2.yaml" --fleet-size 200 --db "$tmp/off.db" --quiet >"$tmp/off.txt" 2>&1
check "a driver update with a per-build offset bug exits 1" test $? -eq 1
check "only the cohort of the build its table lacks (24H2) crashes, all of it that was reached" test "$(python3 -c "
import sqlite3; db = sqlite3.connect('$tmp/off.db')
crashed = {r[0] for r in db.execute(
  \"select distinct e.profile from outcomes o join endpoints e on e.id = o.endpoint_id where o.kind != 'ok'\")}
reached24 = db.execute(\"select count(distinct t.endpoint_id) from timeline t join endpoints e on e.id = t.endpoint_id where t.kind = 'received' and e.profile = 'win11-24h2-26100'\").fetchone()[0]
crashed24 = db.execute(\"select count(distinct o.endpoint_id) from outcomes o join endpoints e on e.id = o.endpoint_id where o.kind != 'ok' and e.profile = 'win11-24h2-26100'\").fetchone()[0]
print(crashed == {'win11-24h2-26100'} and reached24 > 0 and crashed24 == reached24)")" = True

# Ctrl-C: the runs in flight finish, the store is consistent and says so.
"$fleetsim" run "$scenario" --fleet-size 5000 --db "$tmp/int.db" --quiet >"$tmp/int.txt" 2>&1 &
pid=$!
sleep 3
kill -INT "$pid"
wait "$pid"
status=$?
check "Ctrl-C exits 130" test "$status" -eq 130
check "an interrupted store says so and opens cleanly" test "$(python3 -c "
import sqlite3; db = sqlite3.connect('$tmp/int.db')
assert db.execute('pragma integrity_check').fetchone()[0] == 'ok'
print(db.execute('select status from run').fetchone()[0])")" = interrupted

# Ctrl-C before the loop, while a million endpoints are written: the store
# is marked, not left 'running' by a process the signal killed.
"$fleetsim" run "$scenario" --fleet-size 1000000 --duration 2h10m --db "$tmp/early.db" \
  --quiet >"$tmp/early.txt" 2>&1 &
pid=$!
while [ ! -e "$tmp/early.db" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
sleep 0.2
kill -INT "$pid"
wait "$pid"
status=$?
check "Ctrl-C while the fleet is written exits 130 and marks the store" test "$status:$(python3 -c "
import sqlite3; db = sqlite3.connect('$tmp/early.db')
print(db.execute('select status from run').fetchone()[0])")" = 130:interrupted

"$fleetsim" run "$tmp/missing.yaml" --db "$tmp/x.db" >"$tmp/bad.txt" 2>&1
check "a missing scenario exits 2" test $? -eq 2
printf 'name: x\nseed: [1\n' >"$tmp/bad.yaml"
"$fleetsim" run "$tmp/bad.yaml" --db "$tmp/x.db" >"$tmp/bad.txt" 2>&1
status=$?
check "a malformed scenario exits 2 with file:line:column" sh -c \
  "test $status -eq 2 && grep -q 'bad.yaml:[0-9]*:[0-9]*:' '$tmp/bad.txt'"

# A sensor version without an image is refused where the scenario names it.
sed 's/"7.10": 20%/"7.99": 20%/' "$scenario" >"$tmp/sensor.yaml"
"$fleetsim" run "$tmp/sensor.yaml" --fleet-size 40 --db "$tmp/x.db" >"$tmp/bad.txt" 2>&1
status=$?
check "an unknown sensor version exits 2 at its line, naming the known ones" sh -c \
  "test $status -eq 2 && grep -q 'sensor.yaml:36:5: unknown sensor version \"7.99\"; known: 7.10, 7.11, 7.16' '$tmp/bad.txt'"

# --duration overrides the scenario's: the store says so, nothing happens
# after it, and one that ends before the release is refused.
"$fleetsim" run "$scenario" --fleet-size 40 --duration 3h --db "$tmp/short.db" --quiet \
  >"$tmp/short.txt" 2>&1
check "--duration shortens the run" test "$(python3 -c "
import sqlite3; db = sqlite3.connect('$tmp/short.db')
d, = db.execute('select duration_ms from run').fetchone()
last, = db.execute('select max(vt_ms) from timeline').fetchone()
print(d == 3 * 3600000 and last < d)")" = True
"$fleetsim" run "$scenario" --fleet-size 40 --duration 1h --db "$tmp/x.db" >"$tmp/bad.txt" 2>&1
status=$?
check "a --duration that ends before the release exits 2" sh -c \
  "test $status -eq 2 && grep -q 'before the update is released' '$tmp/bad.txt'"

tap_end
