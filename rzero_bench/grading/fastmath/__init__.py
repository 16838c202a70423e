"""A pure-Python evaluator for common LaTeX answer shapes, deciding math-verify's verdict without sympy.

``fingerprint(answer)`` parses an answer (numbers, one-letter symbols, ``\\pi``, ``\\frac``,
``\\sqrt``, powers, sets, tuples, intervals, matrices) and evaluates it at fixed points;
``decide_fast(a, b)`` compares two fingerprints and returns True/False only where math-verify's
verdict is certain, None otherwise (then math-verify decides). Modules, in dependency order:

- ``values``: ``Scalar``/``Fingerprint``, the sample points and exact/50-digit arithmetic;
- ``parse``: the tokenizer and the latex2sympy-shaped parser (the accepted grammar);
- ``decide``: the equality/difference rules (polynomial identity testing).
"""

from __future__ import annotations

from rzero_bench.grading.fastmath.decide import decide_fast
from rzero_bench.grading.fastmath.parse import fingerprint
from rzero_bench.grading.fastmath.values import Fingerprint, Scalar

__all__ = ["Fingerprint", "Scalar", "decide_fast", "fingerprint"]
