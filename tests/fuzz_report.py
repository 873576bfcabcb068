#!/usr/bin/env python3
"""fuzz_report.py — the report layer against stores someone tampered with.

A store is outside input to `fleetsim report`, `diff` and `plans`: a file a
CI job downloads, a colleague edits with sqlite3, a disk truncates.  This
makes two real stores (a clean update released by rings, and a small CF291
run with its crash buckets), then, seeded and repeatable, sets random
columns of random tables to hostile values (NULL, empty, huge, negative,
fractional, binary, format strings, markup), deletes rows, truncates the
file, and runs every format, the gate, diff and plans on each.  fleetsim must answer every one with a report or a clear error (exit
0, 1 or 2) — never a signal, a hang or exit 3+.

usage: fuzz_report.py FLEETSIM SCENARIOS_DIR [ITERATIONS]
"""
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile

HOSTILE = [None, "", "x" * 70000, -1, -(2 ** 63), 2 ** 63 - 1, 1.5, float("nan"),
           b"\x00\xff\x00", "%s%n%x", "<script>alert(1)</script>", "\u202e\U0001f4a5",
           "0x50_R_KERNEL_a!b+0x1", "[{\"rip\": 5}]", "[1, 2", "{\"offset\": null}"]
TABLES = ["run", "artifacts", "endpoints", "endpoint_attrs", "outcomes", "crashes",
          "timeline", "rings", "gate_decisions", "meta", "dbgprint"]


def columns(db, table):
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def mutate(path, rng):
    db = sqlite3.connect(path)
    db.execute("PRAGMA ignore_check_constraints = ON")
    for _ in range(rng.randint(1, 4)):
        table = rng.choice(TABLES)
        kind = rng.random()
        try:
            if kind < 0.1:
                db.execute(f"DELETE FROM {table}")
            elif kind < 0.2:
                db.execute(f"DELETE FROM {table} WHERE rowid % 3 = 0")
            else:
                col = rng.choice(columns(db, table))
                value = rng.choice(HOSTILE)
                if isinstance(value, float) and value != value:
                    value = None if rng.random() < 0.5 else 1e308
                where = "" if rng.random() < 0.3 else " WHERE rowid % 5 = 1"
                db.execute(f"UPDATE {table} SET {col} = ?{where}", (value,))
        except sqlite3.Error:
            pass  # a NOT NULL or key the engine enforces: try something else
    db.commit()
    db.close()
    if rng.random() < 0.05:
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(rng.randint(0, size))


def run(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "hang"
    if p.returncode < 0:
        return f"signal {-p.returncode}: {p.stderr.decode(errors='replace')[-300:]}"
    if p.returncode > 2:
        return f"exit {p.returncode}: {p.stderr.decode(errors='replace')[-300:]}"
    if p.returncode == 2 and not p.stderr.strip():
        return "exit 2 without a message"
    return None


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    fleetsim, scenarios = sys.argv[1], sys.argv[2]
    iterations = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    tmp = tempfile.mkdtemp()
    try:
        base = os.path.join(tmp, "base.db")
        subprocess.run([fleetsim, "run", os.path.join(scenarios, "clean-update.yaml"),
                        "--plan", "four-rings", "--fleet-size", "1500", "--db", base,
                        "--quiet"], capture_output=True, check=False)
        extra = os.path.join(tmp, "aao.db")
        subprocess.run([fleetsim, "run", os.path.join(scenarios, "channel-file-291.yaml"),
                        "--fleet-size", "60", "--db", extra, "--quiet"],
                       capture_output=True, check=False)
        for db in (base, extra):
            if not os.path.exists(db):
                print(f"Bail out! could not make the store {db}")
                return 1
        print(f"1..{iterations}")
        failures = 0
        for i in range(iterations):
            rng = random.Random(i)
            src = base if i % 2 == 0 else extra
            path = os.path.join(tmp, f"m{i}.db")
            shutil.copy(src, path)
            for suffix in ("-wal", "-shm"):
                if os.path.exists(src + suffix):
                    shutil.copy(src + suffix, path + suffix)
            mutate(path, rng)
            problems = []
            for fmt in ("text", "md", "html", "json", "junit"):
                problems.append(run([fleetsim, "report", path, "--format", fmt,
                                     "--max-buckets", "0"]))
            problems.append(run([fleetsim, "report", path, "--by", "region,tenant,ring",
                                 "--gate", "max-fault-rate-upper=1%,min-reached=5"]))
            problems.append(run([fleetsim, "diff", src, path]))
            problems.append(run([fleetsim, "diff", path, src, "--format", "json"]))
            problems.append(run([fleetsim, "plans", path, src]))
            bad = [p for p in problems if p]
            if bad:
                failures += 1
                print(f"not ok {i + 1} - mutant {i}: {bad[0]}")
                shutil.copy(path, os.path.join(tempfile.gettempdir(), f"fuzz-report-{i}.db"))
            else:
                print(f"ok {i + 1} - mutant {i}")
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
        return 1 if failures else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
