#!/bin/sh
# test_cli.sh — the `fleetsim` command as a user meets it (suite cli).
#
# Usage: test_cli.sh FLEETSIM IMAGES_DIR, with FLEETSIM_SOURCE set to the
# source root (meson does all three).  Each check prints "ok - …" or
# "not ok - …" (TAP, plan at the end) with the command's output under a
# failure; the script exits non-zero when any check failed.  The checks hold
# the command-line contract: exit statuses (DESIGN.md, decision 8), errors
# that name what is wrong, and --json output that parses and carries the
# crash record.  JSON is checked with python3, which meson itself runs on.
set -u

fleetsim=${1:?usage: test_cli.sh FLEETSIM IMAGES_DIR}
images=${2:?usage: test_cli.sh FLEETSIM IMAGES_DIR}
source_root=${FLEETSIM_SOURCE:-$(dirname "$0")/..}
samples=$source_root/images/samples
content_vfs='\SystemRoot\System32\drivers\parser\content.bin'

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

checks=0
failures=0

# run COMMAND ARGS…: stdout to $tmp/out, stderr to $tmp/err, exit in $status.
run() {
    "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
    last_command="$*"
}

report() { # report DESCRIPTION WHY-IT-FAILED (empty: passed)
    checks=$((checks + 1))
    if [ -z "$2" ]; then
        printf 'ok - %s\n' "$1"
        return
    fi
    failures=$((failures + 1))
    # printf, not echo: dash's echo would read the backslashes of NT paths.
    printf 'not ok - %s (%s)\n' "$1" "$2"
    printf '#   $ %s\n' "$last_command"
    sed 's/^/#   out: /' "$tmp/out" | head -n 40
    sed 's/^/#   err: /' "$tmp/err" | head -n 20
}

# check DESCRIPTION STATUS [out|err TEXT]…: after run, the exit status is
# STATUS and each stream holds its TEXT (a fixed string).
check() {
    desc=$1 want=$2 why=""
    shift 2
    [ "$status" -eq "$want" ] || why="exit $status, expected $want"
    while [ $# -ge 2 ]; do
        grep -q -F -e "$2" "$tmp/$1" || why="${why:+$why; }no \"$2\" on std$1"
        shift 2
    done
    report "$desc" "$why"
}

# check_json DESCRIPTION STATUS PYTHON: after run, the exit status is STATUS
# and stdout is exactly one JSON value, bound to d, on which the Python
# statements PYTHON (asserts) hold.
check_json() {
    desc=$1 want=$2 why=""
    [ "$status" -eq "$want" ] || why="exit $status, expected $want"
    if ! command -v python3 >/dev/null 2>&1; then
        why="${why:+$why; }python3 is needed to check JSON"
    elif ! python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
$3
" "$tmp/out" 2>"$tmp/py"; then
        why="${why:+$why; }$(tail -n 1 "$tmp/py")"
    fi
    report "$desc" "$why"
}

# ---- the command itself ---------------------------------------------------

run "$fleetsim" --version
check "--version prints the version" 0 out "fleetsim "
if grep -q -E '^fleetsim [0-9]+\.[0-9]+\.[0-9]+' "$tmp/out"; then why=""; else
    why="got: $(head -n 1 "$tmp/out")"; fi
report "--version is 'fleetsim X.Y.Z'" "$why"

run "$fleetsim" help
check "help lists the commands and exit statuses" 0 out emulate out inspect \
    out "could not be simulated faithfully"

run "$fleetsim" help emulate
check "help emulate shows its usage" 0 out "usage: fleetsim emulate IMAGE"

run "$fleetsim"
check "no command is a usage error" 2 err "usage: fleetsim COMMAND"

run "$fleetsim" frobnicate
check "an unknown command is a usage error" 2 err frobnicate err "usage:"

run "$fleetsim" emulate
check "emulate without an image is a usage error" 2 err "no image" err "usage:"

run "$fleetsim" emulate "$images/fault-ok.sys" --frobnicate
check "an unknown option is a usage error" 2 err "--frobnicate" err "usage:"

run "$fleetsim" emulate "$images/fault-ok.sys" --seed twelve
check "a seed that is not a number is a usage error" 2 err twelve

run "$fleetsim" emulate "$images/fault-ok.sys" --profile win95
check "an unknown profile is refused, naming the known ones" 2 err win95 err "known:"

if [ -w /dev/full ]; then
    run sh -c '"$1" --version >/dev/full' sh "$fleetsim"
    check "output that cannot be written is an error" 2 err "cannot write"
fi

# ---- images it must refuse ------------------------------------------------

run "$fleetsim" emulate "$tmp/no-such.sys"
check "a missing image is named in the error" 2 err "$tmp/no-such.sys"

# Random bytes, fixed so that a failure can be replayed.
LC_ALL=C awk 'BEGIN { srand(7); for (i = 0; i < 4096; i++) printf "%c", 1 + int(rand() * 255) }' \
    >"$tmp/random.sys"
run "$fleetsim" emulate "$tmp/random.sys"
check "random bytes are a malformed image" 2 err "$tmp/random.sys: "

{ printf 'MZ'; cat "$tmp/random.sys"; } >"$tmp/mz-random.sys"
run "$fleetsim" emulate "$tmp/mz-random.sys"
check "MZ then random bytes are a malformed image" 2 err "$tmp/mz-random.sys: "

size=$(wc -c <"$images/fault-ok.sys")
for n in 2 64 512 $((size / 2)); do
    head -c "$n" "$images/fault-ok.sys" >"$tmp/truncated-$n.sys"
    run "$fleetsim" emulate "$tmp/truncated-$n.sys"
    check "a copy truncated to $n bytes is a malformed image" 2 err "$tmp/truncated-$n.sys: "
done

run "$fleetsim" inspect "$tmp/truncated-512.sys"
check "inspect refuses a malformed image too" 2 err "$tmp/truncated-512.sys: "

run "$fleetsim" emulate "$images/fault-ok.sys" --content "$tmp/no-such.bin"
check "a missing content file is named in the error" 2 err "$tmp/no-such.bin"

# ---- outcomes ---------------------------------------------------------------

run "$fleetsim" emulate "$images/fault-ok.sys"
check "a driver that loads cleanly exits 0" 0 out "outcome: ok"

run "$fleetsim" emulate "$images/fault-unmapped-read.sys"
check "an unmapped read shows a crash record" 1 out "BUGCHECK 0x50 PAGE_FAULT_IN_NONPAGED_AREA" \
    out "FAULT read of" out "=> " out "rax=" out "efl=" out "Child-SP"

run "$fleetsim" emulate "$images/fault-unmapped-read.sys" --json
check_json "an unmapped read as JSON" 1 '
assert d["outcome"] == "bugcheck", d["outcome"]
assert d["bugcheck"]["code"] == "0x50", d["bugcheck"]
assert d["bugcheck"]["name"] == "PAGE_FAULT_IN_NONPAGED_AREA", d["bugcheck"]
assert len(d["bugcheck"]["params"]) == 4
assert all(p.startswith("0x") for p in d["bugcheck"]["params"])
assert d["fault"]["instruction"], d["fault"]
assert d["fault"]["access"] == "read", d["fault"]
assert d["stack"], "empty stack"
assert any(i["fault"] for i in d["disasm"]), d["disasm"]
assert d["registers"]["rip"] == d["fault"]["rip"], d["registers"]
assert d["seed"] == 1 and d["api"] is None
assert len(d["sha256"]) == 64
'

cp "$tmp/out" "$tmp/first.json"
run "$fleetsim" emulate "$images/fault-unmapped-read.sys" --json
if [ -s "$tmp/out" ] && cmp -s "$tmp/out" "$tmp/first.json"; then why=""; else
    why="outputs differ or are empty"; fi
report "the same seed gives the same JSON" "$why"

run "$fleetsim" emulate "$images/fault-missing-import.sys"
check "a missing API exits 3 and is named" 3 out "IoCreateSymbolicLink" out "gap in"

run "$fleetsim" emulate "$images/fault-missing-import.sys" --json
check_json "a missing API as JSON" 3 '
assert d["outcome"] == "unsupported-api", d["outcome"]
assert "IoCreateSymbolicLink" in d["api"], d["api"]
assert d["bugcheck"] is None
'

# ---- inspect ----------------------------------------------------------------

run "$fleetsim" inspect "$images/fault-missing-import.sys"
check "inspect shows headers and sections" 0 out "entry point" out ".text" out "r-x"
if grep -q -E 'IoCreateSymbolicLink +missing' "$tmp/out"; then why=""; else
    why='no "IoCreateSymbolicLink … missing" line'; fi
report "inspect marks the import fleetsim lacks" "$why"

run "$fleetsim" inspect "$images/fault-missing-import.sys" --json
check_json "inspect as JSON" 0 '
fns = [f for i in d["imports"] for f in i["functions"]]
missing = [f["name"] for f in fns if f["missing"]]
assert "IoCreateSymbolicLink" in missing, missing
assert d["missing_imports"] == len(missing)
assert any(s["name"] == ".text" and s["prot"] == "r-x" for s in d["sections"]), d["sections"]
assert d["machine"] == "0x8664"
'

# ---- the Quick start's sample -----------------------------------------------

run "$fleetsim" emulate "$images/parser.sys" --content "$content_vfs=$samples/parser-good.bin"
check "parser.sys with good content loads" 0 out "outcome: ok" out "content.bin"

run "$fleetsim" emulate "$images/parser.sys" --content "$content_vfs=$samples/parser-bad.bin" --json
check_json "parser.sys with bad content bugchecks 0x50" 1 '
assert d["outcome"] == "bugcheck", d["outcome"]
assert d["bugcheck"]["code"] == "0x50", d["bugcheck"]
assert d["content"][0]["path"].endswith("\\parser\\content.bin"), d["content"]
'
# The crash record must point where WinDbg would: the 32-bit load through
# the stale pointer, in MatchTemplate, called from ProcessContent.
check_json "parser.sys faults in MatchTemplate, on the load through the pointer" 1 '
f = d["fault"]
assert (f["module"], f["function"]) == ("parser", "MatchTemplate"), f
assert f["instruction"].startswith("mov") and "[" in f["instruction"], f
assert [s["function"] for s in d["stack"][:2]] == ["MatchTemplate", "ProcessContent"], d["stack"]
'

echo "1..$checks"
if [ "$failures" -ne 0 ]; then
    echo "# $failures of $checks checks failed"
    exit 1
fi
exit 0
