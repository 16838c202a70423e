"""The stages of one R-Zero iteration (arXiv 2508.05004, §3), one module each, in run order.

=============  ==============================================  =========================================
stage          does                                            writes under ``iter_<k>/``
=============  ==============================================  =========================================
challenger     GRPO on the challenger (uncertainty reward)     ``challenger/``, ``challenger_rewards.jsonl``
questions      N candidate questions from challenger_k         ``questions.jsonl``
votes          solver_{k-1} m times per question, majority     ``attempts.jsonl``, ``votes.jsonl``
filter         keep the informative band, count every drop     ``solver_dataset.jsonl``, ``filter.json``
solver         GRPO on the solver against the pseudo-labels    ``solver/``
label_acc      pseudo-label accuracy against the oracle        ``label_accuracy.json``
eval           solver_k on the benchmarks (k = 0: base model)  ``results/iter_<k>/`` (run directory)
=============  ==============================================  =========================================

Every module exposes ``run(ctx: StageContext, p: IterPaths) -> StageResult`` (see
:mod:`rzero_bench.stages._context`); :data:`STAGES` maps the names to those functions in the order
the driver (:mod:`rzero_bench.pipeline`) runs them.
"""

from __future__ import annotations

from collections.abc import Callable

from rzero_bench.stages import challenger, label_acc, questions, solver, votes
from rzero_bench.stages import eval as eval_stage
from rzero_bench.stages import filter as filter_stage
from rzero_bench.stages._context import IterPaths, StageContext, StageResult, stage_seed

StageFn = Callable[[StageContext, IterPaths], StageResult]

STAGES: dict[str, StageFn] = {
    "challenger": challenger.run,
    "questions": questions.run,
    "votes": votes.run,
    "filter": filter_stage.run,
    "solver": solver.run,
    "label_acc": label_acc.run,
    "eval": eval_stage.run,
}

__all__ = ["STAGES", "IterPaths", "StageContext", "StageFn", "StageResult", "stage_seed"]
