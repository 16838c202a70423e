"""Feedback from launched GRPO stages: rank 0's event file followed by the orchestrator, the step
line (reward ± std, loss, s/step, ETA), the launcher stopped on any exit, and --report-to."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rzero_bench.backends.served import process_alive
from rzero_bench.errors import ConfigError
from rzero_bench.stages._progress import TrainDisplay, step_line
from rzero_bench.training.grpo import GRPOSettings, grpo_config_kwargs, report_to_list
from rzero_bench.training.launch import progress_writer, run_following


class _Console:
    def __init__(self) -> None:
        self.printed: list[str] = []

    def print(self, text: str, *args: Any, **kw: Any) -> None:
        self.printed.append(str(text))


def test_step_line_shows_reward_std_loss_rate_and_eta() -> None:
    line = step_line("solver GRPO", 3, 10, {"reward": 0.4125, "reward_std": 0.21, "loss": 0.012345}, 4.0)
    assert line == "solver GRPO: step 3/10  reward 0.412 ± 0.210  loss 0.01235  4.0 s/step  ETA 0:28"
    assert step_line("x", 10, 10, {}, 2.0) == "x: step 10/10  2.0 s/step"  # done: no ETA
    assert "ETA 1:00:00" in step_line("x", 0, 1800, {}, 2.0)


def test_display_measures_seconds_per_step_between_steps() -> None:
    con = _Console()
    d = TrainDisplay(con, "challenger GRPO")
    d.started = 1000.0
    d.step(1, 5, {"reward": 0.5}, when=1030.0)  # first step: loading included, 30 s
    d.step(1, 5, {"reward": 0.5}, when=1031.0)  # a repeated log of the same step is ignored
    d.step(3, 5, {"reward": 0.6}, when=1050.0)  # (1050 - 1030) / 2 = 10 s/step, 2 left
    assert len(con.printed) == 2
    assert "30.0 s/step  ETA 2:00" in con.printed[0]
    assert "10.0 s/step  ETA 0:20" in con.printed[1]
    d.event({"event": "step", "step": 4, "total": 5, "logs": {"loss": 1.5}, "time": 1060.0})
    assert con.printed[-1].endswith("loss 1.5  10.0 s/step  ETA 0:10")


def test_rank0_events_reach_the_orchestrator_while_the_launcher_runs(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    events = tmp_path / "progress.jsonl"
    script = tmp_path / "ranks.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from rzero_bench.training.launch import progress_writer
        emit = progress_writer({str(events)!r})
        for step in (1, 2, 3):
            emit({{"event": "sampling", "done": 2, "total": 2}})
            emit({{"event": "step", "step": step, "total": 3, "logs": {{"reward": step / 10}}}})
            time.sleep(0.3)
    """))
    monkeypatch.setenv("RANK", "0")
    seen: list[tuple[float, dict[str, Any]]] = []
    code = run_following([sys.executable, str(script)], dict(os.environ), events,
                         lambda e: seen.append((time.monotonic(), e)), poll=0.05)
    assert code == 0
    steps = [e for _, e in seen if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3] and steps[2]["logs"] == {"reward": 0.3}
    assert all("time" in e for _, e in seen)
    arrival = [t for t, e in seen if e["event"] == "step"]
    assert arrival[-1] - arrival[0] > 0.3  # followed live, not read once at the end
    monkeypatch.setenv("RANK", "1")
    assert progress_writer(str(events)) is None  # other ranks write nothing


def test_launcher_group_is_stopped_when_the_orchestrator_is_interrupted(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = tmp_path / "launcher.py"
    # a launcher that starts a "rank" of its own and never ends
    script.write_text(textwrap.dedent(f"""
        import subprocess, sys, time
        rank = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pidfile)!r}, "w").write(str(rank.pid))
        time.sleep(600)
    """))

    def interrupt(_event: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    events = tmp_path / "ev.jsonl"
    timer = threading.Timer(1.0, lambda: events.write_text('{"event": "step", "step": 1, "total": 2}\n'))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        run_following([sys.executable, str(script)], dict(os.environ), events, interrupt, poll=0.05,
                      stop_timeout=5)
    rank = int(pidfile.read_text())
    end = time.monotonic() + 10
    while process_alive(rank) and time.monotonic() < end:
        time.sleep(0.05)
    assert not process_alive(rank), "a rank survived its interrupted launcher"


def test_sigterm_stops_servers_and_restores_handlers(tmp_path: Path) -> None:
    script = tmp_path / "orchestrator.py"
    root = Path(__file__).resolve().parents[2]
    fake = root / "tests" / "fixtures" / "fake_vllm_serve.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(root)!r})
        from rzero_bench.backends import make_generator
        from rzero_bench.pipeline import stop_children_on_exit
        with stop_children_on_exit():
            gen = make_generator("served", "m", engine="transformers",
                                 command="{sys.executable} {fake} --engine transformers {{model}} --port {{port}}",
                                 startup_timeout=60)
            print(gen.pid, flush=True)
            time.sleep(600)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    server = int(proc.stdout.readline())  # type: ignore[union-attr]
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert not process_alive(server)


def test_report_to_passthrough_and_checks() -> None:
    assert report_to_list("none") == [] and report_to_list(None) == []
    with pytest.raises(ConfigError, match="choose none or any of tensorboard, wandb, trackio"):
        report_to_list("mlflow")
    for target, package in (("tensorboard", "tensorboard"), ("wandb", "wandb"), ("trackio", "trackio")):
        try:
            assert report_to_list(target) == [target]
        except ConfigError as e:
            assert f"pip install {package}" in str(e)
    kw = grpo_config_kwargs(GRPOSettings(num_generations=2, prompts_per_step=2), output_dir="/tmp/x",
                            num_processes=1, cuda=False)
    assert kw["report_to"] == "none" and kw["ddp_find_unused_parameters"] is False
    kw = grpo_config_kwargs(GRPOSettings(num_generations=2, prompts_per_step=2, report_to="", run_name="r-iter1-solver"),
                            output_dir="/tmp/x", num_processes=1, cuda=False)
    assert kw["run_name"] == "r-iter1-solver"


def test_report_to_reaches_the_trainer_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rzero_bench.training.grpo as grpo
    from rzero_bench.config import load_config
    from rzero_bench.stages._context import StageContext

    monkeypatch.setitem(grpo.REPORT_TARGETS, "tensorboard", ("json",))  # any importable module
    cfg = load_config(None, preset="tiny", overrides=[])
    ctx = StageContext(cfg, tmp_path / "run")
    assert ctx.grpo_settings("solver", 1).report_to == "none"
    ctx.report_to = "tensorboard"
    s = ctx.grpo_settings("solver", 2)
    assert (s.report_to, s.run_name) == ("tensorboard", f"{cfg.name}-iter2-solver")
    assert s.tensorboard_dir == str(tmp_path / "run" / "tensorboard" / "iter_2-solver")
    kw = grpo_config_kwargs(s, output_dir=tmp_path, num_processes=1, cuda=False)
    assert kw["report_to"] == ["tensorboard"]
    assert json.dumps(kw["run_name"])


def test_a_ranks_error_is_one_line_and_reaches_the_orchestrator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from rzero_bench.prompts import load_prompt
    from rzero_bench.store import atomic_write_jsonl
    from rzero_bench.training.launch import main

    ds = tmp_path / "ds.jsonl"
    atomic_write_jsonl(ds, [{"question": "What is 1+1?", "label": "2"}])
    events = tmp_path / "progress.jsonl"
    spec = {"role": "solver", "model_path": str(tmp_path / "no-model"), "out_dir": str(tmp_path / "solver"),
            "settings": {"num_generations": 2, "prompts_per_step": 4}, "solver_prompt": load_prompt("solver"),
            "reward_options": {}, "dataset_path": str(ds), "stats_path": str(tmp_path / "stats.json"),
            "progress_path": str(events)}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    monkeypatch.setenv("RANK", "0")
    assert main([str(tmp_path / "spec.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the solver dataset has 1 questions but one GRPO step needs 4") and "Traceback" not in err
    event = json.loads(events.read_text().splitlines()[-1])
    assert event["event"] == "error" and "needs 4 (prompts_per_step)" in event["message"]


def test_an_ignored_sighup_stays_ignored(tmp_path: Path) -> None:
    from rzero_bench.pipeline import stop_children_on_exit

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with stop_children_on_exit():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def test_base_build_progress_prints_each_tenth_with_an_eta() -> None:
    """The micro base's first build (~10 min) shows its phases, ~10 lines each, loss and ETA."""
    from rzero_bench.stages._progress import BuildDisplay

    class Out:
        lines: list[str] = []

        def print(self, s: str) -> None:
            self.lines.append(s.strip())

    now = [0.0]
    out = Out()
    show = BuildDisplay(out, "micro:s base", clock=lambda: now[0])
    for step in range(1, 101):
        now[0] = 0.5 * step
        show("phase1", step, 100, 2.0 - step / 100)
    show("eval", 0, 1, float("nan"))
    assert out.lines[0] == "micro:s base: phase1, 100 steps"
    steps = out.lines[1:-1]
    assert len(steps) == 10 and steps[-1] == "micro:s base: phase1 100/100  loss 1.000  0.50 s/step"
    assert steps[0] == "micro:s base: phase1 11/100  loss 1.890  0.50 s/step  ETA 0:44"
    assert out.lines[-1] == "micro:s base: held-out check (greedy and majority vote per level)"
