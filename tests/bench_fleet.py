#!/usr/bin/env python3
"""bench_fleet.py — the fleet benchmark of issue 4: run the headline scenario
at the given fleet sizes with --jobs 1 and --jobs 2, and print emulations per
second, endpoints per second, wall time and peak memory of each run.

usage: bench_fleet.py FLEETSIM SCENARIO SIZE...
(meson: `meson test -C build --benchmark fleet -v` runs it at 100,000 and
1,000,000 endpoints; it takes hours on two cores.)
"""
import os
import re
import resource
import subprocess
import sys
import tempfile
import time


def run(fleetsim, scenario, size, jobs, db):
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.monotonic()
    proc = subprocess.run([fleetsim, "run", scenario, "--fleet-size", str(size),
                           "--jobs", str(jobs), "--db", db, "--quiet"],
                          capture_output=True, text=True)
    wall = time.monotonic() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode not in (0, 1):
        sys.exit(f"fleetsim failed ({proc.returncode}): {proc.stderr}")
    m = re.search(r"(\d+) emulations in", proc.stdout)
    emulations = int(m.group(1)) if m else 0
    # ru_maxrss of children is the largest child so far: report it only when
    # this run raised it, else "<= previous".
    return wall, emulations, peak if peak > before else None


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    fleetsim, scenario, sizes = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3:]]
    print(f"{'endpoints':>10} {'jobs':>4} {'wall s':>9} {'emulations':>11} "
          f"{'emul/s':>8} {'endpoints/s':>12} {'peak MiB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            for jobs in (1, 2):
                db = os.path.join(tmp, f"bench-{size}-{jobs}.db")
                wall, emulations, peak = run(fleetsim, scenario, size, jobs, db)
                peak_text = f"{peak / 1024:.0f}" if peak else "<= above"
                print(f"{size:>10} {jobs:>4} {wall:>9.1f} {emulations:>11} "
                      f"{emulations / wall:>8.0f} {size / wall:>12.0f} {peak_text:>9}",
                      flush=True)
                os.remove(db)


if __name__ == "__main__":
    main()
