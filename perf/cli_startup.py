"""Wall time of `rzero-bench --help` and of every subcommand's --help (target: < 1 s each).

Run: .venv/bin/python perf/cli_startup.py [--repeat 5]
Prints a markdown table: command, best and median seconds over the repeats.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = [[], ["run"], ["eval"], ["rescore"], ["label-acc"], ["report"], ["leaderboard"], ["check"],
            ["tasks", "list"], ["tasks", "validate"], ["tiny", "build"], ["micro", "pretrain"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    exe = shutil.which("rzero-bench") or str(Path(sys.executable).parent / "rzero-bench")
    print("| command | best (s) | median (s) | < 1 s |\n|---|---:|---:|:---:|")
    worst = 0.0
    for cmd in COMMANDS:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run([exe, *cmd, "--help"], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        worst = max(worst, med)
        print(f"| rzero-bench {' '.join(cmd)} --help | {min(times):.3f} | {med:.3f} | {'yes' if med < 1 else 'NO'} |")
    print(f"\nworst median: {worst:.3f} s")


if __name__ == "__main__":
    main()
