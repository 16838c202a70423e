"""Collapse instruments in the loop: the best iteration by dev score, the alarm (dev drop beyond its
paired CI, or kept label accuracy under the floor), --stop-on-collapse, the dev slice of a test
task, the Base Challenger baseline (challenger.max_steps 0) and decontamination in the filter."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from rzero_bench import pipeline as pl
from rzero_bench.backends.scripted import ScriptedGenerator
from rzero_bench.records import GenerationRequest
from rzero_bench.report.collapse import collapse_status, render_collapse
from rzero_bench.stages._context import StageContext
from rzero_bench.store import atomic_write_json, atomic_write_jsonl
from tests.unit.test_pipeline import DATA_DIR, calls, make_cfg, needs_data, patched, responder  # noqa: F401

# ---------------------------------------------------------------- collapse_status on planted scores


def _dev(run: Path, k: int, right: list[bool]) -> None:
    rows = [{"doc_id": str(i), "correct": [c]} for i, c in enumerate(right)]
    atomic_write_jsonl(run / "dev_results" / f"iter_{k}" / "toy.samples.jsonl", rows)


def test_best_iteration_and_dev_alarm(tmp_path: Path) -> None:
    n = 400
    _dev(tmp_path, 0, [i % 2 == 0 for i in range(n)])  # 0.50
    _dev(tmp_path, 1, [i % 10 != 0 for i in range(n)])  # 0.90
    _dev(tmp_path, 2, [i % 10 != 5 for i in range(n)])  # 0.90, other items wrong: no significant drop
    _dev(tmp_path, 3, [i % 10 < 3 for i in range(n)])  # 0.30
    c = collapse_status(tmp_path)
    assert c is not None and c["best_iteration"] == 1 and c["first_alarm"] == 3
    rows = {r["iteration"]: r for r in c["iterations"]}
    assert rows[1]["ci95"] is None and rows[1]["best_so_far"] == 1
    assert rows[2]["delta"] == pytest.approx(0.0) and not rows[2]["dev_alarm"]
    assert rows[3]["delta"] == pytest.approx(-0.6) and rows[3]["ci95"][1] < 0 and rows[3]["dev_alarm"]
    md = "\n".join(render_collapse(c))
    assert "| 1 | 90.0 (best) |" in md and "dev drop" in md


def test_label_floor_alarm(tmp_path: Path) -> None:
    for k in range(3):
        _dev(tmp_path, k, [True, False] * 50)
    atomic_write_json(tmp_path / "iter_1" / "label_accuracy.json", {"kept": {"n": 80, "accuracy": 0.62}})
    atomic_write_json(tmp_path / "iter_2" / "label_accuracy.json", {"kept": {"n": 80, "accuracy": 0.41}})
    c = collapse_status(tmp_path, label_floor=0.5)
    assert c is not None and c["first_alarm"] == 2 and c["best_iteration"] == 0
    assert [r["label_alarm"] for r in c["iterations"]] == [False, False, True]
    assert collapse_status(tmp_path / "nothing") is None


# ---------------------------------------------------------------- in the pipeline (scripted models)
TARGET = {"base": (50, 0), "iter_1": (90, 1), "iter_2": (90, 1), "iter_3": (30, 3)}  # iter_2 ties iter_1


def _accuracy_by_model(path: str) -> tuple[int, int]:
    m = re.search(r"(iter_\d+)/solver", path)
    return TARGET.get(m.group(1) if m else "base", (50, 9))


def scripted(seen: list[tuple[str, str]]):
    def make(self: StageContext, path: str, role: str = "solver") -> ScriptedGenerator:
        seen.append((role, str(path)))
        pct, salt = _accuracy_by_model(str(path))

        def respond(req: GenerationRequest, j: int) -> str:
            if req.params.temperature > 0 or "set problems" in req.messages[0]["content"]:
                return responder(req, j)  # self-play: the usual scripted challenger and solver
            q = req.messages[-1]["content"]  # greedy eval of a micro_arith(_dev) item
            from rzero_bench.micro.arith import solve

            h = int(hashlib.sha256(f"{salt}:{q}".encode()).hexdigest()[:8], 16) % 100
            answer = solve(q)
            return f"\\boxed{{{answer if h < pct else 'wrong'}}}"

        return ScriptedGenerator(respond)

    return make


def test_stop_on_collapse_and_best_iteration(patched, tmp_path, monkeypatch):  # noqa: F811
    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(StageContext, "generator", scripted(seen))
    cfg = make_cfg(
        patched,
        **{
            "iterations": 5,
            "eval.tasks": "[micro_arith]",
            "eval.limit": 20,
            "eval.dev_tasks": "[micro_arith_dev]",
        },
    )
    m = pl.Pipeline(cfg, tmp_path / "run", quiet=True, stop_on_collapse=True).run()
    assert m["stopped"]["iteration"] == 3 and m["stopped"]["best_iteration"] == 1
    assert not any(k.startswith("iter_4/") for k in m["stages"])
    assert m["stages"]["iter_1/eval"]["dev_scores"]["micro_arith_dev"]["acc"] == pytest.approx(0.9, abs=0.04)
    c = collapse_status(tmp_path / "run")
    assert c is not None and c["first_alarm"] == 3 and c["items"] == {"micro_arith_dev": 1000}
    from rzero_bench.report.tables import build_report, render

    md = render(build_report([tmp_path / "run"], n_boot=200), "md")
    assert "Best iteration and collapse" in md and "(best)" in md


def test_dev_slice_of_a_test_task_is_left_out_of_the_test(patched, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(StageContext, "generator", scripted([]))
    cfg = make_cfg(
        patched,
        **{
            "iterations": 0,
            "eval.tasks": "[micro_arith]",
            "eval.limit": "null",
            "eval.dev_tasks": "[micro_arith]",
            "eval.dev_size": 50,
        },
    )
    m = pl.Pipeline(cfg, tmp_path / "run", quiet=True).run()
    test_ids = {
        json.loads(x)["doc_id"] for x in (tmp_path / "run/results/iter_0/micro_arith.samples.jsonl").open()
    }
    dev_ids = {
        json.loads(x)["doc_id"]
        for x in (tmp_path / "run/dev_results/iter_0/micro_arith.samples.jsonl").open()
    }
    assert len(dev_ids) == 50 and len(test_ids) == 950 and not test_ids & dev_ids
    assert m["stages"]["iter_0/eval"]["dev_slices"] == {"micro_arith": 50}


def test_base_challenger_skips_training_and_samples_the_previous_challenger(patched, tmp_path, monkeypatch):  # noqa: F811
    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(StageContext, "generator", scripted(seen))
    cfg = make_cfg(
        patched,
        **{"iterations": 2, "baseline": "base-challenger", "eval.tasks": "[micro_arith]", "eval.limit": 5},
    )
    assert cfg.challenger.max_steps == 0
    m = pl.Pipeline(cfg, tmp_path / "run", quiet=True).run()
    assert calls == ["solver", "solver"]
    for k in (1, 2):
        st = m["stages"][f"iter_{k}/challenger"]
        assert st["skipped_training"] is True and st["checkpoint"] == str(patched) and st["steps"] == 0
        assert not (tmp_path / "run" / f"iter_{k}" / "challenger").exists()
    assert [p for role, p in seen if role == "challenger"] == [str(patched), str(patched)]


@needs_data
def test_decontaminate_drops_benchmark_questions_in_the_filter(patched, tmp_path):  # noqa: F811
    from rzero_bench.micro.arith import micro_arith_docs

    cfg = make_cfg(
        patched, **{"selfplay.decontaminate": "true", "eval.tasks": "[micro_arith]", "eval.limit": 5}
    )
    m = pl.Pipeline(cfg, tmp_path / "run", data_dir=DATA_DIR, quiet=True).run()
    f = json.loads((tmp_path / "run" / "iter_1" / "filter.json").read_text())
    # a question "What is a+b apples?" contains the micro_arith item "What is a+b?" when that item exists
    items = {str(d["question"]) for d in micro_arith_docs()}
    qs = [json.loads(x) for x in (tmp_path / "run" / "iter_1" / "questions.jsonl").open()]
    expected = {q["id"] for q in qs if re.sub(r" apples\?$", "?", q["text"]) in items}
    assert expected and set(f["contamination"]["hits"]) == expected
    assert (
        f["drops"]["contaminated"] == len(expected) == m["stages"]["iter_1/filter"]["drops"]["contaminated"]
    )
    kept = {
        json.loads(x)["question_id"] for x in (tmp_path / "run" / "iter_1" / "solver_dataset.jsonl").open()
    }
    assert not kept & expected


def test_report_keeps_two_runs_iteration_dirs_apart(tmp_path: Path) -> None:
    import shutil

    from rzero_bench.report.tables import build_report, render

    src = Path(__file__).resolve().parents[1] / "fixtures" / "runs" / "demo" / "results" / "iter_1"
    for name in ("basechal", "rzero"):
        shutil.copytree(src, tmp_path / name / "results" / "iter_1")
    md = render(build_report([tmp_path / "basechal/results/iter_1", tmp_path / "rzero/results/iter_1"], n_boot=50), "md")
    assert "basechal/iter_1 (base)" in md and "Δ rzero/iter_1" in md
