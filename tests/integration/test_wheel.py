"""The built wheel works outside the repository: it carries the top-level ``tasks/`` and ``trainers/``.

The wheel is built from this checkout with hatchling (no build isolation, so no network), installed
with ``--no-deps --no-index`` into a fresh venv in a temporary directory, and run from that
directory. The heavy dependencies (torch, transformers, ...) are not reinstalled: a ``.pth`` file in
the fresh venv appends the project venv's site-packages to ``sys.path``. A directory added by a
``.pth`` file is not a site directory, so the ``.pth`` files inside it, among them the editable
install's pointer back to this checkout, are never processed: ``rzero_bench`` can only come from
the installed wheel, which the test asserts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _shipped_files(name: str) -> list[str]:
    root = REPO / name
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(tmp dir, wheel path, venv dir) with the wheel installed into a fresh venv."""
    pytest.importorskip("hatchling", reason="the dev extra installs hatchling (offline wheel build)")
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--no-index", "-q", "-w", str(dist), str(REPO)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheels = list(dist.glob("rzero_bench-*.whl"))
    assert len(wheels) == 1, wheels

    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(env_dir)
    vpy = env_dir / "bin" / "python"
    purelib = subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "_rzero_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(vpy), "install", "--no-deps",
                              "--no-index", "-q", str(wheels[0])], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    return tmp, wheels[0], env_dir


def _run(installed, *argv: str) -> subprocess.CompletedProcess[str]:
    tmp, _, _ = installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RZERO_TASKS_DIR")}
    env.update(COLUMNS="250", HF_HUB_OFFLINE="1", RZERO_HOME=str(tmp / "home"))
    return subprocess.run(list(argv), cwd=tmp, env=env, capture_output=True, text=True, timeout=120)


def test_wheel_carries_every_task_and_trainer_file(installed):
    _, wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for top in ("tasks", "trainers"):
        files = _shipped_files(top)
        assert files, top
        missing = [f for f in files if f"rzero_bench/_shipped/{top}/{f}" not in names]
        assert missing == [], (top, missing)
    assert {f"rzero_bench/_shipped/trainers/{p}.yaml" for p in ("tiny", "micro", "paper", "official-code")} <= names
    assert {"rzero_bench/prompts/challenger.txt", "rzero_bench/prompts/solver.txt"} <= names
    assert not any(n.startswith(("tasks/", "trainers/", "tests/")) for n in names)  # only the package


def test_installed_cli_lists_the_tasks_from_outside_the_repository(installed):
    _, _, env_dir = installed
    proc = _run(installed, str(env_dir / "bin" / "rzero-bench"), "tasks", "list")
    assert proc.returncode == 0, proc.stderr
    stems = [Path(f).stem for f in _shipped_files("tasks") if "/" not in f and f.endswith(".yaml")]
    assert {"gsm8k", "math500", "aime24"} <= set(stems)
    missing = [s for s in stems if s not in proc.stdout]
    assert missing == [], proc.stdout


def _leaves(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_leaves(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


def test_installed_package_loads_the_paper_preset_from_its_own_copy(installed):
    tmp, wheel, env_dir = installed
    code = ("import json, rzero_bench; from rzero_bench.config import load_config; "
            "from rzero_bench.resources import shipped_dir; cfg = load_config(preset='paper'); "
            "print(json.dumps({'file': rzero_bench.__file__, 'trainers': str(shipped_dir('trainers')), "
            "'config': cfg.model_dump(mode='json')}))")
    proc = _run(installed, str(env_dir / "bin" / "python"), "-c", code)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    root = env_dir.resolve()
    assert Path(got["file"]).resolve().is_relative_to(root), got["file"]  # the wheel, not this checkout
    assert Path(got["trainers"]).resolve().is_relative_to(root) and got["trainers"].endswith("_shipped/trainers")
    # every value the wheel's paper.yaml sets is what the installed tool resolved
    shipped = yaml.safe_load(zipfile.ZipFile(wheel).read("rzero_bench/_shipped/trainers/paper.yaml"))
    want, resolved = _leaves(shipped), _leaves(got["config"])
    assert len(want) > 30 and {k: resolved.get(k) for k in want} == want
    assert (got["config"]["model"], got["config"]["selfplay"]["m"]) == ("Qwen/Qwen3-4B-Base", 10)
    assert not (tmp / "tasks").exists() and not (tmp / "trainers").exists()
