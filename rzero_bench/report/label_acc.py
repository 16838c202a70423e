"""Pseudo-label accuracy against an oracle, overall and per agreement bucket (calibration).

For each question with a majority pseudo-label ``label`` and agreement ``p_hat`` (votes.jsonl),
an oracle supplies an answer ``o`` and the item is correct when ``grade(reference=o,
prediction=label)`` says so (the same grader the solver's reward and the benchmarks use).

- accuracy ``= correct / n`` over scored items, 95 % Wilson interval (see ``stats``);
- calibration: items binned by p_hat into right-closed buckets ``(e_i, e_{i+1}]`` (the first
  bucket also holds ``e_0``), each with ``n``, accuracy, Wilson interval and mean p_hat; also one
  row per distinct p_hat value;
- expected calibration error ``ECE = sum_b (n_b / N) * |acc_b - mean_p_hat_b|``;
- the same overall numbers for the kept subset (questions in solver_dataset.jsonl).

Items are excluded, and counted, when the vote has no label (``no_label``), the oracle has no
answer for the question (``no_oracle``: a non-probe question under ``reference``, an arithmetic
question the exact oracle cannot parse, a model that wrote no ``\\boxed{}``), or the grader did
not return a verdict (``ungraded``: timeout, parse error).

Oracles (``--oracle``):

- ``openai:<model>[@<base_url>]``: an OpenAI-compatible endpoint answers each question with the
  solver prompt (greedy); its last ``\\boxed{}`` is the oracle answer; the key comes from the env
  var named by ``--api-key-env`` (default base URL https://api.openai.com/v1);
- ``hf:<path>``: a local model, majority of ``k`` samples (``--samples``; greedy when k = 1);
- ``reference``: probe questions (``source`` "probe:<task>") carry their known ``reference``;
- ``exact-arith``: ``rzero_bench.micro.arith.solve`` computes arithmetic answers exactly.

The paper's protocol (R-Zero section 4, label accuracy 79% -> 69% -> 63%) scores a random sample
of 200 questions per iteration: ``--sample N`` adds, next to the full population, the accuracy of a
seeded sample of N labelled questions (drawn from the kept questions when the run has a solver
dataset, else from all labelled ones; the seed is ``"<seed>:<iteration>"``), so the sampling error
of the 200-question number can be read against the full count.

Cross-iteration table (the paper's "solver k on the questions of iteration j"): every solver
checkpoint (iteration 0 = the base model) answers every iteration's kept questions greedily with
the solver prompt; each answer is graded against the oracle. Row ``label`` is the pseudo-label
itself (the majority of solver_{j-1}). Written to ``RUN_DIR/label_cross_iteration.json``.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from rzero_bench.errors import UserError
from rzero_bench.records import Question, Vote
from rzero_bench.report.stats import Z95, proportion_stderr, wilson_interval
from rzero_bench.store import atomic_write_json, atomic_write_jsonl, read_jsonl

DEFAULT_EDGES: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
_EPS = 1e-9
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"

Grader = Callable[[str, str], "bool | None"]  # (oracle answer, pseudo-label) -> correct / None

__all__ = [
    "DEFAULT_EDGES",
    "ExactArithOracle",
    "HFOracle",
    "OpenAIOracle",
    "Oracle",
    "ReferenceOracle",
    "compute_label_accuracy",
    "cross_iteration",
    "sample_ids",
    "label_acc_command",
    "label_accuracy",
    "label_accuracy_for_iteration",
    "parse_oracle",
    "write_label_accuracy",
]


class Oracle(Protocol):
    """Answers questions; ``None`` means no answer for that question."""

    spec: str

    def answers(self, questions: Sequence[Question]) -> list[str | None]: ...


class ReferenceOracle:
    """Known references of probe questions (``source`` starting with ``probe:``)."""

    spec = "reference"

    def answers(self, questions: Sequence[Question]) -> list[str | None]:
        return [
            q.reference if q.source.startswith("probe:") and q.reference is not None else None
            for q in questions
        ]


class ExactArithOracle:
    """Exact arithmetic via ``rzero_bench.micro.arith.solve(question_text) -> str | None``."""

    spec = "exact-arith"

    def answers(self, questions: Sequence[Question]) -> list[str | None]:
        try:
            from rzero_bench.micro.arith import solve
        except ImportError as e:  # pragma: no cover - depends on the micro module
            raise UserError(f"the exact-arith oracle needs rzero_bench.micro.arith.solve ({e})") from None
        return [solve(q.text) for q in questions]


def _solver_requests(
    questions: Sequence[Question], *, n: int, temperature: float, max_tokens: int
) -> list[Any]:
    from rzero_bench.prompts import load_prompt, solver_messages
    from rzero_bench.records import GenerationRequest, SamplingParams

    prompt = load_prompt("solver")
    params = SamplingParams(n=n, temperature=temperature, max_tokens=max_tokens, seed=0)
    return [
        GenerationRequest(messages=tuple(solver_messages(prompt, q.text)), params=params, id=q.id)
        for q in questions
    ]


class OpenAIOracle:
    """An OpenAI-compatible endpoint answering with the solver prompt; last ``\\boxed{}`` wins."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str = OPENAI_DEFAULT_URL,
        api_key_env: str = "OPENAI_API_KEY",
        max_tokens: int = 4096,
    ) -> None:
        self.model, self.base_url, self.api_key_env, self.max_tokens = (
            model,
            base_url,
            api_key_env,
            max_tokens,
        )
        self.spec = f"openai:{model}@{base_url}"

    def answers(self, questions: Sequence[Question]) -> list[str | None]:
        if not questions:
            return []
        from rzero_bench.backends import make_generator
        from rzero_bench.parsing import last_boxed

        reqs = _solver_requests(questions, n=1, temperature=0.0, max_tokens=self.max_tokens)
        with make_generator(
            "openai", self.model, base_url=self.base_url, api_key_env=self.api_key_env
        ) as gen:
            outs = gen.generate(reqs)
        return [last_boxed(g.texts[0]) if g.texts else None for g in outs]


class HFOracle:
    """A local model (``make_generator("hf", path)``): majority answer of ``samples`` completions."""

    def __init__(self, path: str, *, samples: int = 1, max_tokens: int = 4096, kind: str = "math") -> None:
        self.path, self.samples, self.max_tokens, self.kind = path, samples, max_tokens, kind
        self.spec = f"hf:{path}" + (f" (majority of {samples})" if samples > 1 else "")

    def answers(self, questions: Sequence[Question]) -> list[str | None]:
        if not questions:
            return []
        from rzero_bench.backends import make_generator
        from rzero_bench.parsing import last_boxed
        from rzero_bench.selfplay.voting import vote

        temperature = 0.0 if self.samples == 1 else 1.0
        reqs = _solver_requests(
            questions, n=self.samples, temperature=temperature, max_tokens=self.max_tokens
        )
        with make_generator("hf", self.path) as gen:
            outs = gen.generate(reqs)
        result: list[str | None] = []
        for q, g in zip(questions, outs, strict=True):
            answers = [last_boxed(t) for t in g.texts]
            result.append(vote(q.id, answers, kind=self.kind).label)  # type: ignore[arg-type]
        return result


def parse_oracle(
    spec: str, *, api_key_env: str = "OPENAI_API_KEY", samples: int = 1, max_tokens: int = 4096
) -> Oracle:
    """Build an oracle from ``openai:<model>[@<url>]``, ``hf:<path>``, ``reference``, ``exact-arith``."""
    s = spec.strip()
    if s == "reference":
        return ReferenceOracle()
    if s in ("exact-arith", "exact_arith"):
        return ExactArithOracle()
    if s.startswith("openai:"):
        model, _, url = s[len("openai:") :].partition("@")
        if not model:
            raise UserError(f"oracle {spec!r} names no model; use openai:<model>[@<base_url>]")
        return OpenAIOracle(
            model, base_url=url or OPENAI_DEFAULT_URL, api_key_env=api_key_env, max_tokens=max_tokens
        )
    if s.startswith("hf:"):
        path = s[len("hf:") :]
        if not path:
            raise UserError(f"oracle {spec!r} names no model; use hf:<path or hub id>")
        return HFOracle(path, samples=samples, max_tokens=max_tokens)
    raise UserError(
        f"unknown oracle {spec!r}; use openai:<model>[@<base_url>], hf:<path>, reference or exact-arith"
    )


def _default_grader(kind: str) -> Grader:
    from rzero_bench.grading import grade

    def g(reference: str, prediction: str) -> bool | None:
        v = grade(reference=reference, prediction=prediction, kind=kind)  # type: ignore[arg-type]
        return v.correct if v.status == "ok" else None

    return g


def _block(correct: int, n: int) -> dict[str, Any]:
    acc = correct / n if n else None
    lo, hi = wilson_interval(correct, n, Z95)
    return {
        "n": n,
        "correct": correct,
        "accuracy": acc,
        "stderr": proportion_stderr(acc, n) if acc is not None else None,
        "ci95": [lo, hi],
    }


def _bucket_index(p: float, edges: Sequence[float]) -> int | None:
    if p < edges[0] - _EPS or p > edges[-1] + _EPS:
        return None
    for i in range(len(edges) - 1):
        if p <= edges[i + 1] + _EPS:
            return i
    return len(edges) - 2


def compute_label_accuracy(
    questions: Sequence[Question],
    votes: Sequence[Vote],
    oracle: Oracle | Mapping[str, str | None],
    *,
    kind: str = "math",
    kept_ids: set[str] | None = None,
    edges: Sequence[float] = DEFAULT_EDGES,
    grader: Grader | None = None,
    iteration: int | None = None,
) -> dict[str, Any]:
    """Label accuracy of ``votes`` against ``oracle`` (an Oracle or a map question id -> answer).

    Returns the summary described in the module docstring plus ``items`` (one dict per vote:
    question_id, label, p_hat, oracle_answer, correct, status).
    """
    if len(edges) < 2 or any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True)):
        raise UserError(f"calibration bucket edges must increase, got {list(edges)}")
    by_id = {q.id: q for q in questions}
    labelled = [v for v in votes if v.label is not None and v.question_id in by_id]
    if isinstance(oracle, Mapping):
        spec = "mapping"
        oracle_answers = [oracle.get(v.question_id) for v in labelled]
    else:
        spec = oracle.spec
        oracle_answers = oracle.answers([by_id[v.question_id] for v in labelled])
        if len(oracle_answers) != len(labelled):
            raise UserError(
                f"oracle {spec} returned {len(oracle_answers)} answers for {len(labelled)} questions"
            )
    grade_fn = grader or _default_grader(kind)
    verdicts: dict[str, tuple[str | None, bool | None, str]] = {}
    for v, ans in zip(labelled, oracle_answers, strict=True):
        if ans is None or not str(ans).strip():
            verdicts[v.question_id] = (None, None, "no_oracle")
            continue
        ok = grade_fn(str(ans), str(v.label))
        verdicts[v.question_id] = (str(ans), ok, "ok" if ok is not None else "ungraded")

    excluded = {"no_label": 0, "no_question": 0, "no_oracle": 0, "ungraded": 0}
    items: list[dict[str, Any]] = []
    for v in votes:
        if v.question_id not in by_id:
            status, ans, ok = "no_question", None, None
        elif v.label is None:
            status, ans, ok = "no_label", None, None
        else:
            ans, ok, status = verdicts[v.question_id]
        if status != "ok":
            excluded[status] += 1
        items.append(
            {
                "question_id": v.question_id,
                "label": v.label,
                "p_hat": v.p_hat,
                "oracle_answer": ans,
                "correct": ok,
                "status": status,
                "kept": (v.question_id in kept_ids) if kept_ids is not None else None,
            }
        )

    scored = [it for it in items if it["status"] == "ok"]
    n_total = len(scored)
    buckets: list[dict[str, Any]] = []
    counts = [[0, 0] for _ in range(len(edges) - 1)]  # n, correct
    psums = [0.0] * (len(edges) - 1)  # sum of p_hat
    for it in scored:
        b = _bucket_index(float(it["p_hat"]), edges)
        if b is None:
            continue
        counts[b][0] += 1
        counts[b][1] += int(bool(it["correct"]))
        psums[b] += float(it["p_hat"])
    ece = 0.0
    for i, ((n, c), ps) in enumerate(zip(counts, psums, strict=True)):
        block = _block(c, n)
        mean_p = ps / n if n else None
        block.update({"lo": edges[i], "hi": edges[i + 1], "mean_p_hat": mean_p})
        if n and mean_p is not None:
            block["gap"] = block["accuracy"] - mean_p
            ece += n / n_total * abs(block["gap"])
        else:
            block["gap"] = None
        buckets.append(block)

    by_p: dict[float, list[int]] = {}
    for it in scored:
        key = round(float(it["p_hat"]), 6)
        by_p.setdefault(key, [0, 0])
        by_p[key][0] += 1
        by_p[key][1] += int(bool(it["correct"]))
    by_p_hat = [{"p_hat": p, **_block(c, n)} for p, (n, c) in sorted(by_p.items())]

    overall = _block(sum(int(bool(it["correct"])) for it in scored), n_total)
    result: dict[str, Any] = {
        "schema_version": 1,
        "oracle": spec,
        "kind": kind,
        "iteration": iteration,
        "questions": len(votes),
        **overall,
        "overall": overall,
        "excluded": excluded,
        "edges": list(edges),
        "buckets": buckets,
        "by_p_hat": by_p_hat,
        "ece": ece if n_total else None,
        "kept": None,
        "items": items,
    }
    if kept_ids is not None:
        ks = [it for it in scored if it["question_id"] in kept_ids]
        result["kept"] = _block(sum(int(bool(it["correct"])) for it in ks), len(ks))
    return result


def write_label_accuracy(iter_dir: Path, result: Mapping[str, Any], name: str = "label_accuracy") -> Path:
    """Write ``<name>.json`` (summary) and ``<name>.items.jsonl`` atomically."""
    summary = {k: v for k, v in result.items() if k != "items"}
    if "items" in result:
        atomic_write_jsonl(Path(iter_dir) / f"{name}.items.jsonl", result["items"])
    return atomic_write_json(Path(iter_dir) / f"{name}.json", summary)


def output_name(iter_dir: Path, oracle_spec: str) -> str:
    """File stem for a label-accuracy result written by the CLI.

    ``label_accuracy`` unless the run's own ``label_acc`` stage already wrote it (a finished stage's
    output is never rewritten: the manifest holds its hash); then ``label_accuracy.<oracle>``.
    """
    if not (Path(iter_dir) / "label_accuracy.json").exists():
        return "label_accuracy"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", oracle_spec.split("@", 1)[0]).strip("-.") or "oracle"
    return f"label_accuracy.{slug}"


def _iteration_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for d in run_dir.glob("iter_*"):
        suffix = d.name[len("iter_") :]
        if d.is_dir() and suffix.isdigit() and (d / "votes.jsonl").exists():
            out.append((int(suffix), d))
    return sorted(out)


def _read_iteration(it_dir: Path) -> tuple[list[Question], list[Vote], set[str] | None]:
    if not (it_dir / "votes.jsonl").exists():
        raise UserError(f"{it_dir / 'votes.jsonl'} is missing; run the self-consistency stage first")
    if not (it_dir / "questions.jsonl").exists():
        raise UserError(f"{it_dir / 'questions.jsonl'} is missing; the label oracle needs the question texts")
    questions = [Question.from_dict(r) for r in read_jsonl(it_dir / "questions.jsonl")]
    votes = [Vote.from_dict(r) for r in read_jsonl(it_dir / "votes.jsonl")]
    kept = None
    if (it_dir / "solver_dataset.jsonl").exists():
        kept = {
            str(r["question_id"]) for r in read_jsonl(it_dir / "solver_dataset.jsonl") if "question_id" in r
        }
    return questions, votes, kept


def _iteration_number(it_dir: Path) -> int | None:
    suffix = Path(it_dir).name[len("iter_") :]
    return int(suffix) if Path(it_dir).name.startswith("iter_") and suffix.isdigit() else None


def label_accuracy_for_iteration(
    iter_dir: Path,
    oracle_spec: str | Oracle,
    *,
    data_dir: Path | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    samples: int = 1,
    kind: str = "math",
    grader: Grader | None = None,
) -> dict[str, Any]:
    """The pipeline stage: score one ``iter_<k>`` directory and return the summary (no items).

    Writes only ``label_accuracy.items.jsonl`` (the per-question audit trail); the caller writes
    ``label_accuracy.json`` (or use :func:`write_label_accuracy`). ``data_dir`` is accepted for the
    pipeline's uniform call and unused: probe references travel inside questions.jsonl.
    """
    del data_dir
    it_dir = Path(iter_dir)
    oracle = (
        parse_oracle(oracle_spec, api_key_env=api_key_env, samples=samples)
        if isinstance(oracle_spec, str)
        else oracle_spec
    )
    questions, votes, kept = _read_iteration(it_dir)
    res = compute_label_accuracy(
        questions, votes, oracle, kind=kind, kept_ids=kept, grader=grader, iteration=_iteration_number(it_dir)
    )
    atomic_write_jsonl(it_dir / "label_accuracy.items.jsonl", res["items"])
    return {k: v for k, v in res.items() if k != "items"}


def sample_ids(ids: Sequence[str], size: int, *, seed: int, iteration: int) -> list[str]:
    """A seeded sample of ``size`` ids (all when fewer), in their original order.

    >>> sample_ids(["a", "b", "c"], 5, seed=0, iteration=1)
    ['a', 'b', 'c']
    """
    if size < 1:
        raise UserError(f"the sample size must be at least 1, got {size}")
    pool = sorted(set(ids))
    if len(pool) <= size:
        chosen = set(pool)
    else:
        chosen = set(random.Random(f"{seed}:{iteration}").sample(pool, size))
    return [i for i in dict.fromkeys(ids) if i in chosen]


def sample_block(items: Sequence[Mapping[str, Any]], size: int, *, seed: int, iteration: int) -> dict[str, Any]:
    """Accuracy on a seeded sample of ``size`` labelled questions (the paper's 200-question protocol).

    The population is the kept questions when ``items`` say which are kept, else every labelled one;
    sampled questions the oracle could not score are excluded (``excluded``).
    """
    labelled = [it for it in items if it["status"] not in ("no_label", "no_question")]
    kept = [it for it in labelled if it.get("kept")]
    population, name = (kept, "kept") if any(it.get("kept") is not None for it in items) else (labelled, "all")
    chosen = set(sample_ids([str(it["question_id"]) for it in population], size, seed=seed, iteration=iteration))
    picked = [it for it in population if str(it["question_id"]) in chosen]
    scored = [it for it in picked if it["status"] == "ok"]
    return {"size": size, "drawn": len(picked), "population": name, "population_n": len(population),
            "seed": seed, "excluded": len(picked) - len(scored),
            **_block(sum(int(bool(it["correct"])) for it in scored), len(scored))}


def label_accuracy(
    run_dir: Path,
    oracle_spec: str | Oracle,
    *,
    api_key_env: str = "OPENAI_API_KEY",
    samples: int = 1,
    iterations: Sequence[int] | None = None,
    kind: str = "math",
    edges: Sequence[float] = DEFAULT_EDGES,
    grader: Grader | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Score every iteration of a run (``iter_<k>/votes.jsonl`` + ``questions.jsonl``) and write
    ``iter_<k>/label_accuracy.json``. Returns ``{"run_dir", "oracle", "iterations": {k: summary}}``.

    ``sample``: also score a seeded sample of that many questions per iteration (``"sample"``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    oracle = (
        parse_oracle(oracle_spec, api_key_env=api_key_env, samples=samples)
        if isinstance(oracle_spec, str)
        else oracle_spec
    )
    dirs = [(k, d) for k, d in _iteration_dirs(run_dir) if iterations is None or k in iterations]
    if not dirs:
        raise UserError(f"no iter_<k>/votes.jsonl in {run_dir}; run the self-consistency stage first")
    out: dict[str, Any] = {"run_dir": str(run_dir), "oracle": oracle.spec, "iterations": {}, "files": {}}
    results = []
    for k, d in dirs:
        questions, votes, kept = _read_iteration(d)
        res = compute_label_accuracy(
            questions, votes, oracle, kind=kind, kept_ids=kept, edges=edges, grader=grader, iteration=k
        )
        if sample is not None:
            res["sample"] = sample_block(res["items"], sample, seed=seed, iteration=k)
        results.append((k, d, res))
    if not any(r["n"] for _, _, r in results):
        hint = (" (the reference oracle scores probe questions: set `oracle: reference` and `probes.n` in the run config)"
                if oracle.spec == "reference" else "")
        raise UserError(f"the oracle {oracle.spec} could answer none of the questions in {run_dir}{hint}; nothing written")
    for k, d, res in results:
        name = output_name(d, oracle.spec)
        out["files"][k] = str(write_label_accuracy(d, res, name))
        out["iterations"][k] = {kk: vv for kk, vv in res.items() if kk != "items"}
    return out


# --------------------------------------------------------------------------- cross-iteration
GeneratorFactory = Callable[[str], Any]  # model path -> a Generator (context manager)


def _solver_checkpoints(run_dir: Path, manifest: Mapping[str, Any]) -> list[tuple[int, str]]:
    """``(k, path)`` of every solver: iteration 0 is the run's base model, then ``iter_<k>/solver``."""
    out: list[tuple[int, str]] = []
    base = manifest.get("base_model")
    if base:
        out.append((0, str(base)))
    for d in run_dir.glob("iter_*"):
        suffix = d.name[len("iter_") :]
        if suffix.isdigit() and (d / "solver" / "config.json").is_file():
            out.append((int(suffix), str(d / "solver")))
    return sorted(out)


def cross_iteration(
    run_dir: Path,
    oracle_spec: str | Oracle,
    *,
    sample: int | None = None,
    seed: int = 0,
    api_key_env: str = "OPENAI_API_KEY",
    generator_factory: GeneratorFactory | None = None,
    max_tokens: int | None = None,
    grader: Grader | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Accuracy of every solver checkpoint on every iteration's kept questions against the oracle.

    Returns ``{"solvers": {k: path}, "iterations": {j: {"questions", "no_oracle"}}, "cells":
    {"k": {"j": block}}, "label": {"j": block}}`` where a block is n / correct / accuracy / Wilson
    CI. ``generator_factory`` builds the generator for a checkpoint path (default: the hf backend).
    """
    from rzero_bench.parsing import last_boxed
    from rzero_bench.prompts import load_prompt, solver_messages
    from rzero_bench.records import GenerationRequest, SamplingParams
    from rzero_bench.store import read_json

    run_dir = Path(run_dir)
    mpath = run_dir / "manifest.json"
    if not mpath.exists():
        raise UserError(f"{mpath} is missing; the cross-iteration table needs a run directory written by `run`")
    manifest = read_json(mpath)
    cfg = manifest.get("config") or {}
    sp = cfg.get("selfplay") or {}
    kind = str(sp.get("grader", "math"))
    budget = max_tokens or int(sp.get("solver_max_tokens", 4096))
    prompt = load_prompt(str((cfg.get("prompts") or {}).get("solver", "solver")))
    oracle = parse_oracle(oracle_spec, api_key_env=api_key_env) if isinstance(oracle_spec, str) else oracle_spec
    grade_fn = grader or _default_grader(kind)
    say = progress or (lambda _m: None)

    sets: dict[int, list[tuple[Question, str, str]]] = {}  # j -> (question, oracle answer, pseudo-label)
    info: dict[str, dict[str, int]] = {}
    for j, d in _iteration_dirs(run_dir):
        if not (d / "solver_dataset.jsonl").exists():
            continue
        by_id = {str(r["id"]): Question.from_dict(r) for r in read_jsonl(d / "questions.jsonl")}
        rows = [r for r in read_jsonl(d / "solver_dataset.jsonl") if str(r.get("question_id")) in by_id]
        labels = {str(r["question_id"]): str(r.get("label_unshuffled", r.get("label"))) for r in rows}
        ids = list(labels)
        if sample is not None:
            ids = sample_ids(ids, sample, seed=seed, iteration=j)
        qs = [by_id[i] for i in ids]
        answers = oracle.answers(qs)
        kept = [(q, str(a), labels[q.id]) for q, a in zip(qs, answers, strict=True) if a is not None and str(a).strip()]
        sets[j] = kept
        info[str(j)] = {"questions": len(qs), "no_oracle": len(qs) - len(kept)}
    if not sets or not any(sets.values()):
        raise UserError(f"no iteration of {run_dir} has kept questions the oracle {oracle.spec} can answer")
    solvers = _solver_checkpoints(run_dir, manifest)
    if not solvers:
        raise UserError(f"{run_dir} has no solver checkpoints (manifest base_model, iter_<k>/solver)")

    def factory(path: str) -> Any:
        from rzero_bench.backends import make_generator

        return make_generator("hf", path, batch_size=64, threads=1)

    make = generator_factory or factory
    order = [(j, q, a) for j, items in sorted(sets.items()) for q, a, _ in items]
    params = SamplingParams(n=1, temperature=0.0, max_tokens=budget, seed=seed)
    requests = [GenerationRequest(messages=tuple(solver_messages(prompt, q.text)), params=params, id=f"{j}/{q.id}")
                for j, q, _ in order]
    cells: dict[str, dict[str, Any]] = {}
    for k, path in solvers:
        say(f"solver_{k}: answering {len(requests)} questions")
        with make(path) as gen:
            outs = gen.generate(requests)
        tally: dict[int, list[int]] = {j: [0, 0] for j in sets}
        for (j, _q, ans), g in zip(order, outs, strict=True):
            pred = last_boxed(g.texts[0]) if g.texts else None
            ok = bool(pred is not None and grade_fn(ans, pred))
            tally[j][0] += 1
            tally[j][1] += int(ok)
        cells[str(k)] = {str(j): _block(c, n) for j, (n, c) in sorted(tally.items())}
    label_row = {}
    for j, items in sorted(sets.items()):
        correct = sum(int(bool(grade_fn(a, lab))) for _q, a, lab in items)
        label_row[str(j)] = _block(correct, len(items))
    return {
        "schema_version": 1,
        "run_dir": str(run_dir),
        "oracle": oracle.spec,
        "sample": sample,
        "seed": seed,
        "max_tokens": budget,
        "solvers": {str(k): p for k, p in solvers},
        "iterations": info,
        "cells": cells,
        "label": label_row,
    }


def _fmt(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def label_acc_command(
    run_dir: Path,
    oracle: str,
    api_key_env: str = "OPENAI_API_KEY",
    samples: int = 1,
    sample: int | None = None,
    seed: int = 0,
    cross: bool = False,
    max_tokens: int | None = None,
) -> None:
    """CLI: score pseudo-labels of every iteration and print accuracy + the calibration curve;
    ``sample`` adds the paper's seeded N-question sample; ``cross`` the cross-iteration table."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if cross:
        rep = cross_iteration(run_dir, oracle, sample=sample, seed=seed, api_key_env=api_key_env,
                              max_tokens=max_tokens, progress=lambda m: console.print(f"[dim]{m}[/]"))
        out = atomic_write_json(Path(run_dir) / "label_cross_iteration.json", rep)
        iters = sorted(rep["label"], key=int)
        t = Table(title=f"accuracy of solver k on the kept questions of iteration j (vs {rep['oracle']}, greedy)")
        t.add_column("solver")
        for j in iters:
            t.add_column(f"questions of iter {j} (n={rep['label'][j]['n']})", justify="right")
        for k, row in rep["cells"].items():
            t.add_row(f"solver_{k}", *[f"{_fmt(row[j]['accuracy'])} [{_fmt(row[j]['ci95'][0])}, {_fmt(row[j]['ci95'][1])}]" for j in iters])
        t.add_row("pseudo-label", *[_fmt(rep["label"][j]["accuracy"]) for j in iters])
        console.print(t)
        console.print(f"wrote {out}", markup=False)
        return
    res = label_accuracy(run_dir, oracle, api_key_env=api_key_env, samples=samples, sample=sample, seed=seed)
    for k, r in res["iterations"].items():
        t = Table(title=f"iter_{k}: label accuracy vs {res['oracle']}")
        for col in ("p-hat bucket", "n", "accuracy %", "95% CI", "mean p-hat"):
            t.add_column(col, justify="right")
        for b in r["buckets"]:
            t.add_row(
                ("[" if b["lo"] == r["edges"][0] else "(") + f"{b['lo']:.1f}, {b['hi']:.1f}]",
                str(b["n"]),
                _fmt(b["accuracy"]),
                f"[{_fmt(b['ci95'][0])}, {_fmt(b['ci95'][1])}]",
                _fmt(b["mean_p_hat"]),
            )
        t.add_row(
            "all", str(r["n"]), _fmt(r["accuracy"]), f"[{_fmt(r['ci95'][0])}, {_fmt(r['ci95'][1])}]", ""
        )
        console.print(t)
        kept = r.get("kept")
        extra = f"; kept subset {_fmt(kept['accuracy'])}% of {kept['n']}" if kept and kept["n"] else ""
        ece = f"{100 * r['ece']:.1f}" if r.get("ece") is not None else "–"
        console.print(f"ECE {ece} points; excluded {r['excluded']}{extra}")
        smp = r.get("sample")
        if smp:
            full = kept if smp["population"] == "kept" and kept else r
            console.print(
                f"seeded sample of {smp['size']} ({smp['population']} questions, seed {smp['seed']}): "
                f"{_fmt(smp['accuracy'])}% [{_fmt(smp['ci95'][0])}, {_fmt(smp['ci95'][1])}] of {smp['n']}; "
                f"full {smp['population']} population {_fmt(full['accuracy'])}% of {full['n']}"
            )
        console.print(f"wrote {res['files'][k]}")
