"""Results files of other harnesses (lm-eval, lighteval): the task/metric mapping and one reader.

``report`` and ``leaderboard`` accept a harness's aggregated results file next to ours:

- lm-eval (``lm_eval --output_path``): ``<dir>/results_<timestamp>.json`` with ``results``,
  ``configs``, ``versions`` (task versions), ``n-shot``, ``n-samples``, ``config``,
  ``lm_eval_version`` (:mod:`rzero_bench.interop.lmeval`);
- lighteval (``--output-dir``): ``results/<model>/results_<timestamp>.json`` with
  ``config_general``, ``results`` keyed ``suite|task|shots``, ``versions``
  (:mod:`rzero_bench.interop.lighteval`).

Only the tasks listed in :data:`MAPPING` are read; everything else in the file is reported as
skipped. A task is mapped only when the harness's task uses the same items as ours; its prompt,
shots and metric still differ, so a foreign value is always shown labelled with its harness (and
version), its own task name and metric, and never averaged into our columns or suite means.

Mapping (harness task -> our task; metric keys in order of preference; why it is comparable):

============  ==================  ==========  ===============================================  ==========================================
harness       their task          ours        metric (first present)                           note
============  ==================  ==========  ===============================================  ==========================================
lm-eval       gsm8k               gsm8k       exact_match,strict-match / flexible-extract      openai/gsm8k test, 5-shot "Question:" prompt
lm-eval       gsm8k_cot_zeroshot  gsm8k       exact_match,strict-match / flexible-extract      openai/gsm8k test, zero-shot CoT
lm-eval       aime24              aime24      exact_match,none                                 Maxwell-Jia/AIME_2024: the same 30 problems
lm-eval       aime25              aime25      exact_match,none                                 math-ai/aime25: our file
lm-eval       minerva_math500     math500     math_verify,none / exact_match,none              HuggingFaceH4/MATH-500, Minerva prompt
lm-eval       mmlu_pro            mmlu_pro    exact_match,custom-extract                       TIGER-Lab/MMLU-Pro test, 5-shot CoT
lighteval     aime24              aime24      extractive_match / math_pass@1:1_samples / ...   HuggingFaceH4/aime_2024
lighteval     aime25              aime25      extractive_match / ...                           yentinglin/aime_2025 (other formatting)
lighteval     math_500            math500     extractive_match / ...                           HuggingFaceH4/MATH-500
lighteval     gsm8k               gsm8k       extractive_match / quasi_exact_match / em / acc  openai/gsm8k test
lighteval     mmlu_pro            mmlu_pro    extractive_match / ...                           TIGER-Lab/MMLU-Pro test
============  ==================  ==========  ===============================================  ==========================================

Not mapped on purpose: lm-eval's ``minerva_math`` (and ``minerva_math_*``) is Hendrycks MATH with
the Minerva prompt, not the Minerva OCW problems our ``minerva_math`` holds; lm-eval's ``bbh`` is
BIG-Bench Hard, not BBEH. Our own lm-eval-format files name tasks ``rzero_<task>`` (our names
collide with lm-eval built-ins that use other data); ``rzero_<task>`` maps back to ``<task>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MAPPING", "ForeignResult", "ForeignTask", "detect_harness", "map_task", "read_foreign"]


@dataclass(frozen=True)
class ForeignTask:
    """One harness task that holds the same items as one of ours."""

    harness: str  # "lm-eval" | "lighteval"
    name: str  # the harness's task name (lighteval: without suite and shots)
    task: str  # our task name
    metrics: tuple[str, ...]  # the harness's metric keys, first present wins
    note: str = ""


_LIGHTEVAL_METRICS = (
    "extractive_match",
    "math_pass@1:1_samples",
    "pass@1:1_samples",
    "quasi_exact_match",
    "em",
    "acc",
)
MAPPING: tuple[ForeignTask, ...] = (
    ForeignTask(
        "lm-eval",
        "gsm8k",
        "gsm8k",
        ("exact_match,strict-match", "exact_match,flexible-extract"),
        "openai/gsm8k test, 5-shot 'Question:' prompt",
    ),
    ForeignTask(
        "lm-eval",
        "gsm8k_cot_zeroshot",
        "gsm8k",
        ("exact_match,strict-match", "exact_match,flexible-extract"),
        "openai/gsm8k test, zero-shot chain of thought",
    ),
    ForeignTask(
        "lm-eval", "aime24", "aime24", ("exact_match,none",), "Maxwell-Jia/AIME_2024, same 30 problems"
    ),
    ForeignTask("lm-eval", "aime25", "aime25", ("exact_match,none",), "math-ai/aime25, our file"),
    ForeignTask(
        "lm-eval",
        "minerva_math500",
        "math500",
        ("math_verify,none", "exact_match,none"),
        "HuggingFaceH4/MATH-500, Minerva prompt",
    ),
    ForeignTask(
        "lm-eval",
        "mmlu_pro",
        "mmlu_pro",
        ("exact_match,custom-extract",),
        "TIGER-Lab/MMLU-Pro test, 5-shot CoT",
    ),
    ForeignTask("lighteval", "aime24", "aime24", _LIGHTEVAL_METRICS, "HuggingFaceH4/aime_2024"),
    ForeignTask(
        "lighteval", "aime25", "aime25", _LIGHTEVAL_METRICS, "yentinglin/aime_2025, other formatting"
    ),
    ForeignTask("lighteval", "math_500", "math500", _LIGHTEVAL_METRICS, "HuggingFaceH4/MATH-500"),
    ForeignTask("lighteval", "gsm8k", "gsm8k", _LIGHTEVAL_METRICS, "openai/gsm8k test"),
    ForeignTask("lighteval", "mmlu_pro", "mmlu_pro", _LIGHTEVAL_METRICS, "TIGER-Lab/MMLU-Pro test"),
)
_BY_KEY = {(m.harness, m.name): m for m in MAPPING}


def map_task(harness: str, name: str, our_tasks: frozenset[str] | None = None) -> ForeignTask | None:
    """The mapping of a harness task name, or None. ``rzero_<task>`` maps to our ``<task>``."""
    found = _BY_KEY.get((harness, name))
    if found is not None:
        return found
    m = re.fullmatch(r"rzero_([a-z0-9][a-z0-9_\-]*)", name)
    if m and (our_tasks is None or m.group(1) in our_tasks):
        return ForeignTask(
            harness, name, m.group(1), (), "an rzero-bench task definition run by this harness"
        )
    return None


@dataclass
class ForeignResult:
    """What one foreign results file says about the tasks it shares with ours."""

    harness: str  # "lm-eval" | "lighteval" | "rzero-bench" (our own lm-eval-format file)
    version: str  # the harness's version, "" when the file does not say
    model: str
    path: Path
    # our task -> {"task": their name, "metric": key, "value", "stderr", "n", "note"}
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # their task names with no mapping

    @property
    def label(self) -> str:
        return f"{self.harness} {self.version}".strip()


def detect_harness(data: Any) -> str | None:
    """ "lm-eval", "lighteval", "rzero-bench" (our lm-eval-format file) or None for anything else."""
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        return None
    if isinstance(data.get("config_general"), dict):
        return "lighteval"
    if "rzero_bench_version" in data:
        return "rzero-bench"
    if isinstance(data.get("configs"), dict) and ("n-shot" in data or "lm_eval_version" in data):
        return "lm-eval"
    return None


def read_foreign(path: str | Path, our_tasks: frozenset[str] | None = None) -> ForeignResult | None:
    """Read a foreign results file (None when ``path`` is not one)."""
    from rzero_bench.store import read_json

    p = Path(path)
    try:
        data = read_json(p)
    except Exception:  # noqa: BLE001 - an unreadable JSON file is simply not a results file
        return None
    harness = detect_harness(data)
    if harness == "lighteval":
        from rzero_bench.interop.lighteval import parse_lighteval

        return parse_lighteval(data, p, our_tasks)
    if harness in ("lm-eval", "rzero-bench"):
        from rzero_bench.interop.lmeval import parse_lmeval

        return parse_lmeval(data, p, our_tasks, harness=str(harness))
    return None
