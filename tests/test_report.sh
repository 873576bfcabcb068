#!/bin/sh
# test_report.sh — `fleetsim report`, `--gate` and `fleetsim diff` end to end
# on small fleets of the headline scenario and of its revert: every format
# names the same cohorts and the same top bucket, the gate fails the 04:09
# file and passes the 05:27 one, the diff shows the interpreter's bucket
# disappear, and a bucket's replay command re-creates its crash.
# $1: the fleetsim binary; $2: the source root.
set -u
fleetsim=$1
src=$2
. "$(dirname "$0")/tap.sh"
json() { # json FILE EXPR: a Python expression over the document `d`
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); r = eval(sys.argv[2])
print("\n".join(map(str, r)) if isinstance(r, list) else r)' "$1" "$2"
}

"$fleetsim" run "$src/scenarios/channel-file-291.yaml" --fleet-size 200 --db "$tmp/cf.db" \
  --quiet >"$tmp/run.txt" 2>&1
check "the 04:09 update faults: run exits 1" test $? -eq 1
check "the run ends with the gate's verdict" grep -q '^FAIL: .* broke max-faults=0' "$tmp/run.txt"
"$fleetsim" run "$src/scenarios/channel-file-291-revert.yaml" --fleet-size 200 \
  --db "$tmp/rv.db" --quiet --gate max-fault-rate=0,min-reached=50 >"$tmp/rv.txt" 2>&1
check "the 05:27 file as the update passes its gate: run exits 0" test $? -eq 0
check "... and says so" grep -q '^PASS: every cohort within max-fault-rate=0,min-reached=50' \
  "$tmp/rv.txt"

for f in text md html json junit; do
  "$fleetsim" report "$tmp/cf.db" --format $f -o "$tmp/report.$f" 2>"$tmp/err.$f"
  check "report --format $f writes its file and exits 0 without --gate" \
    test $? -eq 0 -a -s "$tmp/report.$f" -a ! -e "$tmp/report.$f.tmp"
done

json "$tmp/report.json" '[c["label"] for c in d["cohorts"]]' >"$tmp/cohorts"
top=$(json "$tmp/report.json" 'd["buckets"][0]["bucket"]')
check "the top bucket is the interpreter's 0x50" \
  sh -c "echo '$top' | grep -q '^0x50_R_KERNEL_sensor!ReadInputField+0x'"
check "a cohort for each (profile, sensor) of the fleet" test "$(wc -l <"$tmp/cohorts")" -eq \
  "$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(
     "select count(*) from (select distinct profile, sensor from endpoints)").fetchone()[0])' \
     "$tmp/cf.db")"
every_cohort_in() {
  while read -r label; do
    grep -qF "$label" "$1" || { echo "$1 lacks cohort $label"; return 1; }
  done <"$tmp/cohorts"
}
for f in text md html junit; do
  check "the $f report names the top bucket" grep -qF "$top" "$tmp/report.$f"
  check "the $f report names every cohort" every_cohort_in "$tmp/report.$f"
done
check "every faulted cohort is sensor 7.11 and its top bucket is the top bucket" test -z "$(json \
  "$tmp/report.json" "[c['label'] for c in d['cohorts'] if c['faulted'] and
     (not c['label'].endswith('/ 7.11') or c['top_bucket'] != '$top')]")"
check "no sensor 7.10 endpoint faulted" test "$(json "$tmp/report.json" \
  "sum(c['faulted'] for c in d['cohorts'] if c['label'].endswith('/ 7.10'))")" = 0
check "JUnit fails exactly the faulted cohorts" test "$(grep -c '<failure' "$tmp/report.junit")" \
  = "$(json "$tmp/report.json" "sum(1 for c in d['cohorts'] if c['faulted'])")"
check "the text report ends with the verdict" sh -c "tail -n 1 '$tmp/report.text' | grep -q '^FAIL: '"
check "the Markdown report has the cohort table" \
  grep -q '^| profile / sensor | endpoints | reached | faulted |' "$tmp/report.md"

fails_with 1 "$fleetsim" report "$tmp/cf.db" --gate 'max-fault-rate=0.1%,max-boot-loops=0' \
  >"$tmp/gate.txt" 2>&1
check "the gate fails the 04:09 update (exit 1)" test $? -eq 0
check "... naming the cohorts and the limits they broke" \
  grep -q 'win10-22h2-2024-07 / 7.11: fault rate .* > 0.10% (max-fault-rate=0.1%)' "$tmp/gate.txt"
check "the gate passes the revert (exit 0)" \
  fails_with 0 "$fleetsim" report "$tmp/rv.db" --gate 'max-fault-rate=0.1%,max-boot-loops=0'
check "a bad gate expression is a usage error (exit 2)" \
  fails_with 2 "$fleetsim" report "$tmp/cf.db" --gate max-fault-rate=lots
check "... and says what is wrong" grep -q 'max-fault-rate: "lots" is not a rate' "$tmp/last"
check "run --gate checks its expression before running" \
  fails_with 2 "$fleetsim" run "$src/scenarios/channel-file-291.yaml" --gate 'max-crashes=0'

"$fleetsim" diff "$tmp/cf.db" "$tmp/rv.db" >"$tmp/diff.txt" 2>&1
check "diff 04:09 -> revert is not worse (exit 0)" test $? -eq 0
check "... and shows the top bucket gone" grep -qF "gone $top" "$tmp/diff.txt"
check "... and the 7.11 cohorts better" grep -q 'win10-22h2-2024-07 / 7.11 .* better' "$tmp/diff.txt"
check "diff revert -> 04:09 is worse (exit 1), the bucket new" \
  sh -c "'$fleetsim' diff '$tmp/rv.db' '$tmp/cf.db' --format md >'$tmp/diff.md'; test \$? -eq 1 &&
         grep -qF '$top' '$tmp/diff.md' && grep -q '^- new ' '$tmp/diff.md'"

cmd=$(json "$tmp/report.json" 'd["buckets"][0]["examples"][0]["command"]')
sym=$(json "$tmp/report.json" 'd["buckets"][0]["symbol"]')
sh -c "$cmd" >"$tmp/replay.txt" 2>&1
check "the top bucket's replay command re-creates the crash" \
  sh -c "grep -q '^BUGCHECK 0x50 ' '$tmp/replay.txt' && grep -qF 'at $sym' '$tmp/replay.txt'"

check "--by region groups by region" test "$("$fleetsim" report "$tmp/cf.db" --by region \
  --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["cohorts"]))')" -eq 7
check "--by an unknown attribute is a usage error" \
  fails_with 2 "$fleetsim" report "$tmp/cf.db" --by colour

# An inventory's extra columns become attributes the report groups by.
mkdir "$tmp/inv"
python3 - "$src/scenarios/channel-file-291.yaml" "$tmp/inv" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
text = re.sub(r"\nfleet:\n.*?\n\n", "\nfleet:\n  inventory: endpoints.csv\n\n", text, 1, re.S)
open(sys.argv[2] + "/inv.yaml", "w").write(text)
regions = ["us-east", "us-west", "latam", "eu-west", "eu-central", "ap-southeast", "ap-northeast"]
with open(sys.argv[2] + "/endpoints.csv", "w") as f:
    f.write("id,profile,sensor,region,tenant,hardware\n")
    for i in range(140):
        hw = ["dell-7490", "hp-840", ""][i % 3]
        f.write(f"host-{i},win10-22h2-2024-07,{'7.11' if i % 4 else '7.10'},{regions[i % 7]},t{i % 5},{hw}\n")
PY
"$fleetsim" run "$tmp/inv/inv.yaml" --db "$tmp/inv.db" --quiet >"$tmp/inv.txt" 2>&1
check "a run of an inventory with a hardware column exits 1 (7.11 faults)" test $? -eq 1
check "... and stores hardware for the endpoints whose cell is not empty" test "$(python3 -c '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(*db.execute("select count(*), count(distinct value) from endpoint_attrs where key = ?",
                  (sys.argv[2],)).fetchone())' "$tmp/inv.db" hardware)" = "94 2"
"$fleetsim" report "$tmp/inv.db" --by hardware --format json -o "$tmp/inv.json"
check "the run's summary and the report count the same endpoints reached (by the update)" \
  test "$(sed -n 's/^reached \([0-9]*\).*/\1/p' "$tmp/inv.txt")" = \
       "$(json "$tmp/inv.json" 'd["total"]["reached"]')"
check "report --by hardware: one cohort per value, and one for endpoints without it" \
  test "$(json "$tmp/inv.json" 'sorted(c["endpoints"] for c in d["cohorts"])')" = "$(printf '46\n47\n47')"
check "a missing store is a usage error" fails_with 2 "$fleetsim" report "$tmp/none.db"
echo "not a database" >"$tmp/junk.db"
check "a file that is not a store is a usage error" fails_with 2 "$fleetsim" report "$tmp/junk.db"
check "... said so" grep -q 'junk.db: not a fleetsim run store' "$tmp/last"
check "an unwritable -o fails and leaves nothing" sh -c "! '$fleetsim' report '$tmp/cf.db' \
  -o '$tmp/no/such/dir/r.txt' && test ! -e '$tmp/no/such/dir'"
cp "$tmp/rv.db" "$tmp/cut.db"
python3 -c 'import sqlite3, sys; db = sqlite3.connect(sys.argv[1])
db.execute("update run set status = '"'interrupted'"', reason = '"'interrupted'"'"); db.commit()' \
  "$tmp/cut.db"
check "an interrupted run fails any gate" fails_with 1 "$fleetsim" report "$tmp/cut.db" \
  --gate max-faults=1000
check "... saying why" grep -q '^FAIL: the run did not complete' "$tmp/last"

tap_end
