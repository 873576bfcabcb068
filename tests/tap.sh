# tap.sh — what the command-line tests share: a scratch folder removed at
# exit, and TAP checks.  Sourced by test_run.sh, test_report.sh and
# test_rollout.sh: `. "$(dirname "$0")/tap.sh"`, then `check ...`, and
# `tap_end` last.
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
fails=0

# check DESCRIPTION COMMAND...: one TAP line; on failure, the command's
# output as comments.  What it printed stays in $tmp/last for a check that
# looks at it ("... said so").
check() {
  n=$((n + 1))
  desc=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then
    echo "ok $n - $desc"
  else
    echo "not ok $n - $desc"
    sed 's/^/# /' "$tmp/out"
    fails=$((fails + 1))
  fi
  cp "$tmp/out" "$tmp/last"
}

# fails_with STATUS COMMAND...: the command exits STATUS.
fails_with() {
  want=$1
  shift
  "$@"
  test $? -eq "$want"
}

# The plan line, and the script's status.
tap_end() {
  echo "1..$n"
  test "$fails" -eq 0
}
