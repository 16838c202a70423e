"""The GPU layout's code path, run for real on CPU: ``rzero-bench run --preset paper-cpu``.

paper-cpu is the paper preset's layout with the micro model and micro-sized counts: every sampling
stage starts ``transformers serve`` for its checkpoint (the ``served`` backend, as ``vllm serve``
on GPUs) and both GRPO stages run under ``accelerate launch`` with 2 gloo ranks.

One run serves every test here (module fixture): the orchestrator is started, SIGKILLed while the
``votes`` stage's server is answering, and the same command is run again to resume it to the end.
Then:

- test_complete_run: a server was started and stopped for each sampling stage (its pid is gone);
  both GRPO stages ran on 2 ranks under accelerate with >= 1 optimizer step and changed the
  weights; each checkpoint was written once (no staging or work directory left) and loads; every
  artefact of the in-process path exists and parses with the records' own schema; the pseudo-labels
  the solver trained on are the votes' majority answers, recomputed here from the attempts with the
  same grader the solver reward uses (``selfplay.grader``).
- test_sigkill_during_votes: the votes server did not survive its orchestrator (gone within seconds,
  or reaped by the resume), no pidfile is left, and the resume reran only the unfinished stages:
  every stage finished before the kill keeps its manifest entry and its files untouched.

Budget: about one paper-cpu run plus one votes-server start (a few minutes on 2 unloaded cores);
the micro base (``micro:s``) comes from ``$RZERO_HOME``, shared with the micro loop test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

SAMPLING_STAGES = ("iter_0/eval", "iter_1/challenger", "iter_1/questions", "iter_1/votes", "iter_1/eval")
GRPO_STAGES = ("iter_1/challenger", "iter_1/solver")


def _alive(pid: int) -> bool:
    from rzero_bench.backends.served import process_alive

    return process_alive(pid)


def _manifest(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def _wait(cond: Any, limit: float, what: str, proc: subprocess.Popen[bytes] | None = None) -> Any:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run exited ({proc.returncode}) before {what}")
        time.sleep(0.2)
    raise AssertionError(f"timed out after {limit:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def paper_cpu(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run paper-cpu, SIGKILL it during the served votes stage, resume it to the end."""
    work = tmp_path_factory.mktemp("paper_cpu")
    run_dir = work / "run"
    env = dict(os.environ)
    env.setdefault("RZERO_HOME", str(REPO / ".rzero_home"))
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", COLUMNS="200")
    cmd = [sys.executable, "-m", "rzero_bench.cli", "run", "--preset", "paper-cpu", "--iterations", "1",
           "--run-dir", str(run_dir)]
    if os.environ.get("RZERO_PAPER_CPU_MODEL"):  # development only: another local base than micro:s
        cmd += ["--model", os.environ["RZERO_PAPER_CPU_MODEL"]]
    log1 = work / "first.log"
    with open(log1, "wb") as out:
        first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            def votes_server_answering() -> int | None:
                st = _manifest(run_dir).get("stages", {}).get("iter_1/votes", {})
                pidfiles = list((run_dir / ".servers").glob("*.json"))
                log = run_dir / "logs" / "iter_1-votes-solver-server.log"
                if st.get("status") != "running" or not pidfiles or not log.is_file():
                    return None
                if "POST /v1/chat/completions" not in log.read_text(errors="replace"):
                    return None
                return int(json.loads(pidfiles[0].read_text())["pid"])

            server_pid = _wait(votes_server_answering, 1800, "the votes server to answer", first)
            before = _manifest(run_dir)
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    t_kill = time.monotonic()
    while _alive(server_pid) and time.monotonic() - t_kill < 30:
        time.sleep(0.1)
    gone_after_kill = not _alive(server_pid)
    # the files of the stages finished before the kill, with their modification times
    finished = [run_dir / "results" / "iter_0", run_dir / "iter_1" / "challenger",
                run_dir / "iter_1" / "challenger_rewards.jsonl", run_dir / "iter_1" / "questions.jsonl"]
    files = [f for path in finished for f in ([path] if path.is_file() else sorted(path.rglob("*"))) if f.is_file()]
    snapshot = {str(f.relative_to(run_dir)): f.stat().st_mtime_ns for f in files}
    resume = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=1800, check=False)
    output = resume.stdout.decode("utf-8", errors="replace")
    (work / "resume.log").write_text(output)
    assert resume.returncode == 0, f"resume failed:\n{output[-4000:]}\n--- first run:\n{log1.read_text()[-3000:]}"
    return {"run_dir": run_dir, "before": before, "server_pid": server_pid, "gone_after_kill": gone_after_kill,
            "resume_output": output, "first_output": log1.read_text(errors="replace"), "snapshot": snapshot,
            "manifest": _manifest(run_dir)}


def _weights(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    files = sorted(path.glob("*.safetensors"))
    assert len(files) == 1, f"{path}: expected one weights file, found {[f.name for f in files]}"
    return load_file(str(files[0]))


def test_complete_run(paper_cpu: dict[str, Any]) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from rzero_bench.records import Attempt, ChallengerScore, Question, Vote
    from rzero_bench.selfplay.voting import vote

    run_dir: Path = paper_cpu["run_dir"]
    m = paper_cpu["manifest"]
    assert m["finished"] is True
    layout = m["layout"]
    assert (layout["generation_backend"], layout["serve_engine"]) == ("served", "transformers")
    stages = m["stages"]

    # a server per sampling stage, started and stopped: its pid is gone
    for key in SAMPLING_STAGES:
        servers = stages[key].get("servers")
        assert servers, f"{key}: no server recorded"
        for s in servers:
            assert s["engine"] == "transformers" and s["stopped"] is True, (key, s)
            assert not _alive(s["pid"]), f"{key}: server pid {s['pid']} still runs"
    assert not list((run_dir / ".servers").glob("*.json"))

    # GRPO on 2 ranks under accelerate, >= 1 optimizer step, weights changed, checkpoint written once
    base = Path(m["base_model"])
    base_w = _weights(base)
    for key in GRPO_STAGES:
        st = stages[key]
        assert (st["launcher"], st["world_size"]) == ("accelerate", 2), (key, st)
        assert st["steps"] >= 1, (key, st)
        role = key.split("/")[1]
        ckpt = run_dir / "iter_1" / role
        assert not (run_dir / "iter_1" / f".{role}.saving").exists()
        assert not (run_dir / "iter_1" / f".{role}.work").exists()
        w = _weights(ckpt)
        assert w.keys() == base_w.keys()
        changed = [k for k in w if not torch.equal(w[k], base_w[k])]
        assert changed, f"{key}: GRPO left every weight as it was"
        model = AutoModelForCausalLM.from_pretrained(str(ckpt))
        assert sum(p.numel() for p in model.parameters()) > 0

    # the launched stages' progress reached the orchestrator's display, as an in-process stage's would
    shown = paper_cpu["first_output"] + paper_cpu["resume_output"]
    for role, steps in (("challenger", m["config"]["challenger"]["max_steps"]),
                        ("solver", m["config"]["solver"]["max_steps"])):
        assert re.search(rf"{role} GRPO \(accelerate\): step {steps}/{steps}  reward -?[0-9.]+ ± [0-9.]+  "
                         r"loss \S+  [0-9.]+ s/step", shown), f"no live progress line for {role} GRPO"

    # every artefact of the in-process path, with the records' schema
    it = run_dir / "iter_1"
    for rel in ("challenger_rewards.jsonl", "questions.jsonl", "attempts.jsonl", "votes.jsonl",
                "solver_dataset.jsonl", "filter.json", "label_accuracy.json"):
        assert (it / rel).is_file(), rel
    for k in (0, 1):
        assert (run_dir / "results" / f"iter_{k}" / "micro_arith.json").is_file()
        assert (run_dir / "results" / f"iter_{k}" / "micro_arith.samples.jsonl").is_file()

    def rows(name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (it / name).read_text().splitlines() if line.strip()]

    for name, cls in (("questions.jsonl", Question), ("attempts.jsonl", Attempt), ("votes.jsonl", Vote)):
        data = rows(name)
        assert data, name
        for row in data:
            assert json.loads(json.dumps(cls.from_dict(row).to_dict())) == row, (name, row)
    scores = rows("challenger_rewards.jsonl")
    assert len(scores) == 2 * 4 * 2  # steps x prompts_per_step x num_generations
    fields = set(ChallengerScore.__dataclass_fields__)
    assert all(fields <= set(s) for s in scores)

    # pseudo-labels: the votes' majorities, recomputed from the attempts with the solver reward's grader
    cfg = m["config"]
    grader = cfg["selfplay"]["grader"]
    spec = json.loads((it / ".solver_launch.json").read_text())
    assert spec["reward_options"]["kind"] == grader
    attempts: dict[str, list[str | None]] = {}
    for a in rows("attempts.jsonl"):
        attempts.setdefault(a["question_id"], []).append(a["answer"])
    votes = {v["question_id"]: v for v in rows("votes.jsonl")}
    assert set(votes) == set(attempts)
    for qid, answers in attempts.items():
        assert len(answers) == cfg["selfplay"]["m"]
        again = vote(qid, answers, kind=grader, none_is_answer=cfg["selfplay"]["none_is_answer"])
        assert (again.label, again.p_hat) == (votes[qid]["label"], votes[qid]["p_hat"]), qid
    sampled = [a for a in attempts.values() if len(set(a)) > 1]
    assert sampled, "every question got m identical answers: the server is not sampling"
    for row in rows("solver_dataset.jsonl"):
        assert row["label"] == votes[row["question_id"]]["label"]


def test_sigkill_during_votes(paper_cpu: dict[str, Any]) -> None:
    run_dir: Path = paper_cpu["run_dir"]
    pid = paper_cpu["server_pid"]
    out = paper_cpu["resume_output"]
    # gone with its orchestrator, or reaped by the resume; not running now either way
    assert paper_cpu["gone_after_kill"] or "left behind" in out
    assert not _alive(pid)
    assert not list((run_dir / ".servers").glob("*.json"))
    before = paper_cpu["before"]["stages"]
    after = paper_cpu["manifest"]["stages"]
    assert before["iter_1/votes"]["status"] == "running"
    finished_before = [k for k, st in before.items() if st.get("status") == "done"]
    assert set(finished_before) == {"iter_0/eval", "iter_1/challenger", "iter_1/questions"}
    for key in finished_before:
        assert after[key] == before[key], f"{key} was rerun"
        assert f"{key} (done earlier, skipped)" in out
    assert after["iter_1/votes"]["status"] == "done"
    assert after["iter_1/votes"]["attempts"] == before["iter_1/votes"]["attempts"] + 1
    for rel, mtime in paper_cpu["snapshot"].items():
        assert (run_dir / rel).stat().st_mtime_ns == mtime, f"{rel} was rewritten"
