"""Self-play maths of R-Zero, pure Python + numpy (never torch/trl/vllm/transformers).

* :mod:`~rzero_bench.selfplay.voting` — m answers -> pseudo-label and agreement p_hat.
* :mod:`~rzero_bench.selfplay.rewards` — challenger reward: uncertainty, BLEU repetition penalty,
  format gate (paper and official-code variants).
* :mod:`~rzero_bench.selfplay.filtering` — informative-band filter, duplicates, drop counts.
* :mod:`~rzero_bench.selfplay.bleu` / :mod:`~rzero_bench.selfplay.cluster` — fast pairwise BLEU and
  average-linkage clustering, identical to nltk + scikit-learn.
"""
