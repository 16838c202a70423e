"""Evaluation: tasks x one generator -> EvalResult JSON + per-sample records; rescoring.

Protocol (R-Zero §4 / Table 1-2): the system prompt "Please reason step by step, and put your final
answer within \\boxed{}." (or a task's own), the item rendered by the task's ``doc_to_text`` as the
user turn, rendered through the model's chat template by the backend (``render_chat`` falls back
to a declared plain format). ``acc`` is one greedy completion per item; sampled metrics
(``mean@k``, ``maj@k``, ``pass@k``) come from a separate pass of ``k`` truly sampled completions
with the declared temperature / top_p. Answers are the last ``\\boxed{}`` (letters for multiple
choice; BBEH also accepts its "The answer is:" form), graded by :func:`rzero_bench.grading.grade_many`
with each distinct (reference, answer) pair graded once.

Files per task in ``out_dir`` (written atomically): ``<task>.json`` = :class:`EvalResult` and
``<task>.samples.jsonl`` with one line per item ``{doc_id, prompt_hash, reference, completions,
answers, verdicts, correct, subtask}``. Completions of all passes are concatenated in pass order;
the layout (``sampling["passes"]``: name, n, offset, params) is recorded in the result, so
:func:`rescore` can recompute every metric from the samples alone. A human summary goes to
``eval_summary.md`` (tasks skipped for missing local data are listed there with the reason).

One concern per module (each imports only those listed before it); this file only re-exports:

- :mod:`~rzero_bench.evaluate.messages`: an item's chat messages, the per-pass request seed.
- :mod:`~rzero_bench.evaluate.answers`: answer extraction, the random-letter fallback.
- :mod:`~rzero_bench.evaluate.scoring`: grading of sample rows, metrics with stderr, counts, judge.
- :mod:`~rzero_bench.evaluate.provenance`: package versions and data source of a result.
- :mod:`~rzero_bench.evaluate.output`: results directory naming and guard, task files, summary.
- :mod:`~rzero_bench.evaluate.run`: the core loop, :func:`evaluate_task` and :func:`evaluate`.
- :mod:`~rzero_bench.evaluate.rescore`: re-grading saved samples without the model.
- :mod:`~rzero_bench.evaluate.command`: ``rzero-bench eval`` / ``rescore``, ``--model-args`` parsing.
"""

from __future__ import annotations

from rzero_bench.evaluate.answers import RANDOM_LETTERS, extract_answer, random_letter
from rzero_bench.evaluate.command import (
    MODEL_ARGS,
    OUTPUT_FORMATS,
    eval_command,
    parse_gen_kwargs,
    parse_kv,
    rescore_command,
)
from rzero_bench.evaluate.messages import SEED_RULE, build_messages, request_seed
from rzero_bench.evaluate.output import SUMMARY_FILE, _summary, check_output_dir, model_dir_name, write_task
from rzero_bench.evaluate.provenance import data_source, package_versions
from rzero_bench.evaluate.rescore import rescore
from rzero_bench.evaluate.run import _load_variant, evaluate, evaluate_task
from rzero_bench.evaluate.scoring import NO_ANSWER, compute_metrics, judged_metrics

__all__ = [
    "evaluate",
    "evaluate_task",
    "extract_answer",
    "build_messages",
    "compute_metrics",
    "rescore",
    "eval_command",
    "rescore_command",
    "package_versions",
    "request_seed",
    "model_dir_name",
    "parse_kv",
    "parse_gen_kwargs",
    "random_letter",
    "judged_metrics",
    "data_source",
    "check_output_dir",
    "write_task",
    "MODEL_ARGS",
    "NO_ANSWER",
    "OUTPUT_FORMATS",
    "RANDOM_LETTERS",
    "SEED_RULE",
    "SUMMARY_FILE",
    "_load_variant",  # used by tests/integration/test_gold_replay.py
    "_summary",  # used by rzero_bench/stages/eval.py
]
