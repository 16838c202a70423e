"""Stage 6, ``label_acc``: pseudo-label accuracy against an oracle (runs only when the config names
``oracle``). The paper reports how often the solver's majority answers are right (its label
accuracy analysis, against GPT-4o on a sample); here every voted question is scored.

Reads: ``iter_<k>/questions.jsonl``, ``iter_<k>/votes.jsonl``, ``iter_<k>/solver_dataset.jsonl``.
Writes: ``iter_<k>/label_accuracy.json`` (overall accuracy with a Wilson interval, calibration by
p_hat bucket, the kept subset) and, from the scorer, ``iter_<k>/label_accuracy.items.jsonl``.

An item is correct when ``grade(reference=oracle answer, prediction=label)`` says so; the oracles
(``reference`` probes, ``exact-arith``, ``hf:<path>``, ``openai:<model>``) and the formulas are in
:mod:`rzero_bench.report.label_acc`.
"""

from __future__ import annotations

from rzero_bench.stages._context import IterPaths, StageContext, StageResult
from rzero_bench.store import atomic_write_json


def run(ctx: StageContext, p: IterPaths) -> StageResult:
    """Score iteration k's pseudo-labels with ``cfg.oracle``."""
    from rzero_bench.report.label_acc import label_accuracy_for_iteration

    out = p.it / "label_accuracy.json"
    result = label_accuracy_for_iteration(p.it, ctx.cfg.oracle or "", data_dir=ctx.data_dir)
    atomic_write_json(out, result)
    overall = result.get("overall", {})
    return {"outputs": [p.rel(out)], "label_accuracy": overall.get("accuracy"), "n": overall.get("n")}
