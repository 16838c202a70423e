"""CLI surface: every command has --help, and start-up imports no heavy framework."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = [[], ["run"], ["eval"], ["rescore"], ["label-acc"], ["report"], ["leaderboard"], ["check"],
            ["tasks"], ["tasks", "list"], ["tasks", "validate"], ["tiny"], ["tiny", "build"], ["micro"],
            ["micro", "pretrain"]]

PROBE = """
import sys
from typer.testing import CliRunner
from rzero_bench.cli import app
args = sys.argv[1:]
r = CliRunner().invoke(app, args + ["--help"])
assert r.exit_code == 0, r.output
heavy = [m for m in ("torch", "transformers", "trl", "datasets", "vllm", "math_verify", "sympy") if m in sys.modules]
print("HEAVY=" + ",".join(heavy))
print(r.output)
"""


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "root")
def test_help_works_without_importing_heavy_frameworks(args):
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "HEAVY=\n" in out.stdout, out.stdout.splitlines()[0]
    assert "Usage" in out.stdout


def test_errors_are_one_line_with_exit_2():
    out = subprocess.run([sys.executable, "-m", "rzero_bench.cli", "eval", "x", "--tasks", "gsm8kk"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "gsm8k" in lines[0]
