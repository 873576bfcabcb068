#!/bin/sh
# test_rollout.sh — staged rollouts end to end (issue 6): on the CF291
# scenario, all at once crashes every sensor 7.11 endpoint that received
# the 04:09 file, while the five-ring plan rolls back in its first ring with
# its crashes bounded by that ring; the clean update passes every gate; the
# decisions are the same for --jobs 1 and 2; --compare-plans puts the plans
# side by side.  $1: the fleetsim binary; $2: the source root.
set -u
fleetsim=$1
src=$2
. "$(dirname "$0")/tap.sh"
sql() { # sql DB QUERY: one value
  python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$1" "$2"
}
cf="$src/scenarios/channel-file-291.yaml"

# Five rings, 20,000 endpoints: the canary ring is 0.1% (about 20).
"$fleetsim" run "$cf" --plan five-rings --fleet-size 20000 --db "$tmp/rings1.db" --quiet \
  >"$tmp/rings1.txt" 2>&1
db="$tmp/rings1.db"
check "the store records the plan" test "$(sql "$db" "select plan from run")" = five-rings
check "five rings, only the first released" \
  test "$(sql "$db" "select count(*) || '/' || count(released_vt_ms) from rings")" = 5/1
check "the gate rolled back in ring 0" \
  test "$(sql "$db" "select ring || ' ' || action from gate_decisions
                     where action in ('halt', 'rollback')")" = "0 rollback"
check "the decision came within an hour of the release" test "$(sql "$db" \
  "select min(vt_ms) - 69 * 60000 from gate_decisions where action = 'rollback'")" -le 3600000
check "every crashed endpoint is in ring 0, and no more crashed than it holds" test "$(sql "$db" \
  "select count(distinct o.endpoint_id) <= (select size from rings where ring = 0)
          and sum(e.ring <> 0) = 0
   from outcomes o join endpoints e on e.id = o.endpoint_id
   where o.kind in ('bugcheck', 'hang')")" = 1
check "some crashed: the canary did its job" test "$(sql "$db" \
  "select count(*) from outcomes where kind = 'bugcheck'")" -gt 0
check "the summary says it rolled back" grep -q '^rollout five-rings: 1 of 5 rings released; rolled back at' \
  "$tmp/rings1.txt"
dump() {
  python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for table, order in [("gate_decisions", "ring, vt_ms, seq"), ("rings", "ring"),
                     ("outcomes", "endpoint_id, boot"), ("timeline", "endpoint_id, vt_ms, seq")]:
    for row in db.execute(f"select * from {table} order by {order}"):
        print(table, row)
PY
}
"$fleetsim" report "$db" --format json -o "$tmp/rings.json" 2>/dev/null
check "the report explains the decision" python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))["rollout"]
assert d["plan"] == "five-rings", d
assert [r["released_vt_ms"] is not None for r in d["rings"]] == [True] + [False] * 4, d
rb = [x for x in d["decisions"] if x["action"] == "rollback"]
assert len(rb) == 1 and ("Bayes factor" in rb[0]["detail"] or "bound" in rb[0]["detail"]), d' \
  "$tmp/rings.json"

# The clean update passes every gate of its four-ring plan, deciding the
# same with one worker or two.
"$fleetsim" run "$src/scenarios/clean-update.yaml" --plan four-rings --fleet-size 3000 \
  --jobs 1 --db "$tmp/clean.db" --quiet >"$tmp/clean.txt" 2>&1
check "the clean update's staged run exits 0" test $? -eq 0
"$fleetsim" run "$src/scenarios/clean-update.yaml" --plan four-rings --fleet-size 3000 \
  --jobs 2 --db "$tmp/clean2.db" --quiet >/dev/null 2>&1
dump "$tmp/clean.db" >"$tmp/clean.dump"
dump "$tmp/clean2.db" >"$tmp/clean2.dump"
check "gate decisions, rings and outcomes are the same for --jobs 1 and --jobs 2" \
  cmp "$tmp/clean.dump" "$tmp/clean2.dump"
check "... every ring released, three advances, no halt" test "$(sql "$tmp/clean.db" \
  "select (select count(*) from rings where released_vt_ms is null) || ' ' ||
          (select count(*) from gate_decisions where action = 'advance') || ' ' ||
          (select count(*) from gate_decisions where action in ('halt', 'rollback'))")" = "0 3 0"

# All at once against five rings on one fleet and seed.
"$fleetsim" run "$cf" --compare-plans --fleet-size 600 --db "$tmp/cmp.db" --quiet \
  >"$tmp/cmp.txt" 2>&1
check "--compare-plans exits 1 (endpoints faulted)" test $? -eq 1
check "... wrote a store per plan" test -s "$tmp/cmp.all-at-once.db" -a -s "$tmp/cmp.five-rings.db"
check "... and printed the plans side by side" sh -c "grep -q '^all-at-once ' '$tmp/cmp.txt' &&
  grep -q '^five-rings ' '$tmp/cmp.txt' && grep -q 'Rollout plans side by side' '$tmp/cmp.txt'"
check "all at once: every sensor 7.11 endpoint that received the 04:09 file crashed" \
  test "$(sql "$tmp/cmp.all-at-once.db" "select count(*) from endpoints e
    where e.sensor = '7.11'
      and exists (select 1 from timeline t where t.endpoint_id = e.id
                  and t.kind = 'received' and t.detail = 'update')
      and not exists (select 1 from outcomes o where o.endpoint_id = e.id
                      and o.kind = 'bugcheck')")" = 0
check "... and the five-ring plan reached fewer" test "$(sql "$tmp/cmp.five-rings.db" \
  "select count(*) from timeline where kind = 'received' and detail = 'update'")" -lt \
  "$(sql "$tmp/cmp.all-at-once.db" \
  "select count(*) from timeline where kind = 'received' and detail = 'update'")"
check "fleetsim plans reads the stores again" "$fleetsim" plans "$tmp/cmp.all-at-once.db" \
  "$tmp/cmp.five-rings.db"
check "a plan the scenario lacks is a usage error" sh -c \
  "'$fleetsim' run '$cf' --plan nine-rings --fleet-size 10 --db '$tmp/x.db'; test \$? -eq 2"
check "rings need the whole fleet: --shard is refused" sh -c \
  "'$fleetsim' run '$cf' --plan five-rings --shard 0/2 --fleet-size 10 --db '$tmp/x.db'; test \$? -eq 2"

tap_end
