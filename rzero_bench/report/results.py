"""Loading result sets (a results directory, a run's iterations) and computing suite means.

A *result set* is one model's evaluation: a directory of ``<task>.json`` files (``EvalResult``)
with optional ``<task>.samples.jsonl``. A run directory holds one set per iteration under
``results/iter_<k>/`` (k = 0 is the base model).

Suites (paper, arXiv 2508.05004 §4 and the official README table):

- Math avg = mean over the math tasks present of AMC23, AIME24, AIME25, MATH-500, GSM8K,
  Minerva-Math, OlympiadBench;
- General avg = mean over the general tasks present of MMLU-Pro, SuperGPQA, BBEH;
- Overall = mean of (Math avg, SuperGPQA, MMLU-Pro, BBEH): the paper's "Overall AVG" averages
  the math average with the three general benchmarks, so math counts once, not seven times. Check:
  Qwen3-4B-Base base row (42.58 + 20.88 + 37.38 + 7.57) / 4 = 27.10, the reported Overall.

Results of other harnesses (lm-eval, lighteval ``results_<timestamp>.json``) load as result sets of
their own (:func:`foreign_sets`), labelled with the harness and its version, holding only the tasks
mapped in :data:`rzero_bench.interop.MAPPING`, under the harness's own metric name; they are never
merged into a set of ours.

Each suite value carries a standard error ``sqrt(sum se_i^2) / t`` over its t components (tasks
are independent samples). A task's headline metric is ``mean@k`` (largest k) when the task has
one (the paper reports mean@32 for AMC/AIME), else ``acc`` (greedy), else ``maj@k``, ``pass@k``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rzero_bench.errors import UserError
from rzero_bench.report.stats import combine_stderr
from rzero_bench.store import read_json, read_jsonl

MATH_TASKS: tuple[str, ...] = (
    "amc23",
    "aime24",
    "aime25",
    "math500",
    "gsm8k",
    "minerva_math",
    "olympiadbench",
)
GENERAL_TASKS: tuple[str, ...] = ("supergpqa", "mmlu_pro", "bbeh")
SUITE_KEYS: tuple[str, ...] = ("overall", "math_avg", "general_avg")
DISPLAY = {
    "overall": "Overall",
    "math_avg": "Math avg",
    "general_avg": "General avg",
    "supergpqa": "SuperGPQA",
    "mmlu_pro": "MMLU-Pro",
    "bbeh": "BBEH",
    "amc23": "AMC23",
    "aime24": "AIME24",
    "aime25": "AIME25",
    "math500": "MATH-500",
    "gsm8k": "GSM8K",
    "minerva_math": "Minerva",
    "olympiadbench": "OlympiadBench",
}

_ALIASES = {
    "amc": "amc23",
    "amc2023": "amc23",
    "aime2024": "aime24",
    "aime2025": "aime25",
    "minerva": "minerva_math",
    "minervamath": "minerva_math",
    "olympiad": "olympiadbench",
    "mmlupro": "mmlu_pro",
    "superqpqa": "supergpqa",
}


def canonical_task(name: str) -> str:
    """Map a task name to its suite name (``MATH-500`` -> ``math500``); unknown names pass through."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    for t in MATH_TASKS + GENERAL_TASKS:
        if key == re.sub(r"[^a-z0-9]", "", t):
            return t
    return _ALIASES.get(key, name)


def _metric_k(name: str) -> int:
    m = re.fullmatch(r"[a-z_]+@(\d+)", name)
    return int(m.group(1)) if m else 0


def primary_metric(metrics: Mapping[str, Any]) -> str:
    """The headline metric name: mean@k (largest k), else acc, else maj@k, pass@k, else first."""
    names = list(metrics)
    if not names:
        raise UserError("a result has no metrics; re-run `rzero-bench eval` or `rescore`")
    for prefix in ("mean@",):
        cands = [n for n in names if n.startswith(prefix)]
        if cands:
            return max(cands, key=_metric_k)
    if "acc" in metrics:
        return "acc"
    for prefix in ("maj@", "pass@"):
        cands = [n for n in names if n.startswith(prefix)]
        if cands:
            return max(cands, key=_metric_k)
    return sorted(names)[0]


@dataclass
class TaskResult:
    """One task's result in a set: the raw EvalResult dict plus where its samples live."""

    task: str  # canonical name
    data: dict[str, Any]
    path: Path
    samples_path: Path | None

    @property
    def metric(self) -> str:
        return primary_metric(self.data.get("metrics", {}))

    @property
    def value(self) -> float:
        return float(self.data["metrics"][self.metric]["value"])

    @property
    def stderr(self) -> float:
        return float(self.data["metrics"][self.metric].get("stderr", 0.0) or 0.0)

    @property
    def n(self) -> int:
        return int(self.data["metrics"][self.metric].get("n", 0) or 0)

    @property
    def task_hash(self) -> str:
        return str(self.data.get("task_hash", ""))

    @property
    def harness(self) -> str:
        """Who produced the value: ``rzero-bench``, or e.g. ``lm-eval 0.4.13`` for a foreign file."""
        return str(self.data.get("harness", "rzero-bench"))

    @property
    def protocol(self) -> str:
        """The evaluation protocol of our results (files written before protocols existed: paper)."""
        return str(self.data.get("protocol", "paper")) if self.harness == "rzero-bench" else ""

    def samples(self) -> list[dict[str, Any]]:
        """Per-item sample records (empty when no samples file was written)."""
        if self.samples_path is None or not self.samples_path.exists():
            return []
        return [r for r in read_jsonl(self.samples_path) if isinstance(r, dict)]


@dataclass
class ResultSet:
    """The results of one model (one iteration of a run, or a plain results directory)."""

    label: str
    path: Path
    iteration: int | None = None
    run_dir: Path | None = None
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    harness: str = "rzero-bench"  # or "lm-eval 0.4.13", "lighteval <sha>": a foreign results file

    @property
    def model(self) -> str:
        for t in self.tasks.values():
            return str(t.data.get("model", ""))
        return ""


def is_eval_result(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and "task" in data
        and isinstance(data.get("metrics"), dict)
        and "task_hash" in data
    )


def load_result_dir(
    path: Path, *, label: str | None = None, iteration: int | None = None, run_dir: Path | None = None
) -> ResultSet:
    """Read every ``<task>.json`` that is an EvalResult in ``path`` (other JSON files are skipped)."""
    rs = ResultSet(label=label or path.name, path=path, iteration=iteration, run_dir=run_dir)
    for p in sorted(path.glob("*.json")):
        data = read_json(p)
        if not is_eval_result(data):
            continue
        task = canonical_task(str(data["task"]))
        samples = p.with_name(p.name[: -len(".json")] + ".samples.jsonl")
        rs.tasks[task] = TaskResult(task, data, p, samples if samples.exists() else None)
    return rs


def foreign_set(path: Path, label: str | None = None) -> ResultSet | None:
    """A foreign results file (lm-eval, lighteval) as a result set, or None when it is not one.

    Our own lm-eval-format files (``eval --output-format lm-eval``) are not foreign: None.
    """
    from rzero_bench.interop import read_foreign

    fr = read_foreign(path, frozenset(MATH_TASKS + GENERAL_TASKS) | _own_task_names())
    if fr is None or fr.harness == "rzero-bench":
        return None
    name = label or (path.parent.name if path.name.startswith("results_") else path.stem)
    rs = ResultSet(label=f"{name} ({fr.label})", path=path.parent, harness=fr.label)
    for task, t in fr.tasks.items():
        data = {
            "task": task,
            "model": fr.model,
            "harness": fr.label,
            "foreign_task": t["task"],
            "note": t["note"],
            "task_hash": "",
            "metrics": {t["metric"]: {"value": t["value"], "stderr": t["stderr"], "n": t["n"]}},
        }
        rs.tasks[canonical_task(task)] = TaskResult(canonical_task(task), data, path, None)
    return rs


def foreign_sets(path: Path) -> list[ResultSet]:
    """Every foreign ``results_*.json`` directly in ``path`` or below it, sorted by path."""
    out: list[ResultSet] = []
    for f in sorted(Path(path).rglob("results_*.json")):
        rs = foreign_set(f)
        if rs is not None and rs.tasks:
            out.append(rs)
    return out


def _own_task_names() -> frozenset[str]:
    try:
        from rzero_bench.tasks import list_tasks

        return frozenset(list_tasks())
    except UserError:
        return frozenset()


def _iter_dirs(path: Path) -> list[tuple[int, Path]]:
    out = []
    for d in path.glob("iter_*"):
        m = re.fullmatch(r"iter_(\d+)", d.name)
        if m and d.is_dir():
            out.append((int(m.group(1)), d))
    return sorted(out)


def discover(path: Path) -> list[ResultSet]:
    """Result sets under ``path``: a run dir (``results/iter_<k>``), a run's results dir
    (``iter_<k>``), a flat results dir, or one ``<task>.json`` file. Sorted by iteration."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; pass a run directory or a results directory")
    if path.is_file():
        foreign = foreign_set(path)
        if foreign is not None:
            if not foreign.tasks:
                raise UserError(
                    f"{path}: a {foreign.harness} results file with no task this tool maps (see"
                    " rzero_bench/interop: gsm8k, aime24, aime25, math500, mmlu_pro)"
                )
            return [foreign]
        data = read_json(path)
        if not is_eval_result(data):
            raise UserError(
                f"{path} is not an evaluation result (<task>.json written by `rzero-bench eval`, or an"
                " lm-eval / lighteval results_<timestamp>.json)"
            )
        rs = ResultSet(label=path.stem, path=path.parent)
        task = canonical_task(str(data["task"]))
        samples = path.with_name(path.name[: -len(".json")] + ".samples.jsonl")
        rs.tasks[task] = TaskResult(task, data, path, samples if samples.exists() else None)
        return [rs]
    run_dir: Path | None = None
    base = path
    if (path / "results").is_dir() and _iter_dirs(path / "results"):
        run_dir, base = path, path / "results"
    elif _iter_dirs(path) and (path.parent / "manifest.json").exists():
        run_dir = path.parent
    iters = _iter_dirs(base)
    name = (run_dir or path).resolve().name
    if iters:
        sets = [load_result_dir(d, label=f"{name}/iter_{k}", iteration=k, run_dir=run_dir) for k, d in iters]
        sets = [s for s in sets if s.tasks]
        if sets:
            return sets
    flat = load_result_dir(path, label=name)
    if flat.tasks:
        return [flat]
    others = foreign_sets(path)
    if others:
        return others
    raise UserError(
        f"no evaluation results found in {path}; expected <task>.json files, results/iter_<k>/, or an"
        " lm-eval / lighteval results_<timestamp>.json"
    )


def suite_means(values: Mapping[str, tuple[float, float]]) -> dict[str, dict[str, Any]]:
    """Suite values from per-task ``(value, stderr)``: math_avg, general_avg, overall.

    Each entry: ``{"value", "stderr", "tasks": [...], "complete": bool}``; a suite with no task
    present is omitted. ``complete`` says every task of the suite (all four Overall parts) is present.
    """
    out: dict[str, dict[str, Any]] = {}
    math_t = [t for t in MATH_TASKS if t in values]
    gen_t = [t for t in GENERAL_TASKS if t in values]
    if math_t:
        out["math_avg"] = {
            "value": sum(values[t][0] for t in math_t) / len(math_t),
            "stderr": combine_stderr([values[t][1] for t in math_t]),
            "tasks": math_t,
            "complete": len(math_t) == len(MATH_TASKS),
        }
    if gen_t:
        out["general_avg"] = {
            "value": sum(values[t][0] for t in gen_t) / len(gen_t),
            "stderr": combine_stderr([values[t][1] for t in gen_t]),
            "tasks": gen_t,
            "complete": len(gen_t) == len(GENERAL_TASKS),
        }
    parts: list[tuple[float, float]] = []
    if "math_avg" in out:
        parts.append((out["math_avg"]["value"], out["math_avg"]["stderr"]))
    parts += [values[t] for t in gen_t]
    if parts:
        out["overall"] = {
            "value": sum(p[0] for p in parts) / len(parts),
            "stderr": combine_stderr([p[1] for p in parts]),
            "tasks": math_t + gen_t,
            "complete": len(math_t) == len(MATH_TASKS) and len(gen_t) == len(GENERAL_TASKS),
        }
    return out


def suite_combiner(suite: str, tasks: Sequence[str]) -> Any:
    """A function mapping per-task deltas to the suite delta (same formula as :func:`suite_means`)."""

    def combine(d: Mapping[str, float]) -> float:
        m = [d[t] for t in tasks if t in MATH_TASKS]
        g = [d[t] for t in tasks if t in GENERAL_TASKS]
        if suite == "math_avg":
            return sum(m) / len(m)
        if suite == "general_avg":
            return sum(g) / len(g)
        parts = ([sum(m) / len(m)] if m else []) + g
        return sum(parts) / len(parts)

    return combine


def item_scores(samples: Sequence[Mapping[str, Any]], metric: str) -> dict[str, float]:
    """Per-item score keyed by doc_id: mean of ``correct`` (acc, mean@k) or any (pass@k).

    maj@k needs the answer clusters, not recoverable from ``correct`` alone: returns {}.
    """
    if metric.startswith("maj@"):
        return {}
    out: dict[str, float] = {}
    for r in samples:
        correct = r.get("correct")
        if not isinstance(correct, list) or not correct or "doc_id" not in r:
            continue
        flags = [bool(c) for c in correct]
        if metric.startswith("pass@"):
            out[str(r["doc_id"])] = 1.0 if any(flags) else 0.0
        else:
            out[str(r["doc_id"])] = sum(flags) / len(flags)
    return out


def fmt_pct(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100.0 * x:.{digits}f}"
