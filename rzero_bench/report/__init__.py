"""Reports: label accuracy against oracles, comparison tables, plots, the leaderboard, the CI check.

Modules (none imports torch, trl, vllm or transformers):

- ``stats``: means with standard errors, Wilson/normal intervals, paired bootstrap CIs;
- ``results``: loading result sets (results dirs, run iterations), suite means (Math avg, General
  avg, Overall as in the paper);
- ``label_acc``: oracles and pseudo-label accuracy with its calibration curve;
- ``tables``: ``rzero-bench report`` (rich table, markdown, JSON, CSV);
- ``plots``: PNG plots (matplotlib, Agg backend);
- ``leaderboard``: ``leaderboard/README.md`` from ``results/`` (measured) and ``results/reference/``
  (reported);
- ``check``: the regression check against a committed baseline.
"""
