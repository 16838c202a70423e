"""Reports: label accuracy against oracles, comparison tables, plots, the leaderboard, the CI check.

Modules (none imports torch, trl, vllm or transformers):

- ``stats``: means with standard errors, Wilson/normal intervals, paired bootstrap CIs;
- ``results``: loading result sets (results dirs, run iterations), suite means (Math avg, General
  avg, Overall as in the paper);
- ``rundata``: a run directory's other artefacts (manifest stages, label accuracy, filter yield,
  p-hat before/after the filter), read by ``tables`` and ``plots``;
- ``label_acc``: oracles and pseudo-label accuracy with its calibration curve, the paper's seeded
  200-question sample (``--sample``) and the cross-iteration table (``--cross``);
- ``contamination``: ``rzero-bench contamination``, n-gram overlap of generated questions with the
  benchmark items (also the filter stage's ``selfplay.decontaminate``);
- ``audit``: ``rzero-bench audit-grader``, saved answers re-graded by several graders, two-sided
  disagreement tables (third-party graders run in ``_audit_worker`` processes);
- ``collapse``: best iteration by dev score and the collapse alarm (``report``, ``run --stop-on-collapse``);
- ``plots``: PNG plots (matplotlib, Agg backend) of a report built by ``tables``;
- ``tables``: ``rzero-bench report`` (rich table, markdown, JSON, CSV; ``--plots`` calls ``plots``);
- ``leaderboard``: ``leaderboard/README.md`` from ``results/`` (measured) and ``results/reference/``
  (reported);
- ``check``: the regression check against a committed baseline.
"""
