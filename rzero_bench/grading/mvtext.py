"""math-verify's own text rewriting, for the pure-Python fast path, without importing sympy.

Before math-verify's LaTeX parser sees an answer, ``latex2sympy2_extended.math_normalization``
rewrites it: units are dropped ("5 m" -> "5", "x d" -> "x", a trailing ``\\text{...}``), "and"/"or"
become commas, ``\\!`` and ``$`` disappear, ``\\mathrm`` becomes ``\\text``, malformed ``\\frac12``
and ``\\sqrt2`` are braced, "0.5" becomes ``\\frac{1}{2}``, and more. A fast path that guessed these
rules would disagree with math-verify wherever it guessed wrong, so this module loads that one
file of the installed package (it imports only ``re``, ``dataclasses``, ``typing`` and ``logging``;
the package's ``__init__`` would import sympy) and applies it exactly as math-verify's ``\\boxed{}``
extraction does: ``normalize_latex(prepared, NormalizationConfig(basic_latex, units,
malformed_operators, nits, boxed="last"))``.

When the package is missing, ``latex_seen_by_parser`` returns None and every caller leaves the
answer to math-verify (whose absence the worker pool reports).

``is_complex`` mirrors math-verify's test for treating symbols as complex (a standalone ``i``,
``\\mathbb{C}``, ``\\det`` ...): with it, latex2sympy's symbols are not real, so ``x`` in such an
answer is a different symbol from ``x`` in any other answer.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from functools import lru_cache
from typing import Any

__all__ = ["is_complex", "latex_seen_by_parser", "unit_dropped"]

_MODULE = "latex2sympy2_extended.math_normalization"
_COMPLEX_RE = re.compile(
    r"\\mathbb\{C\}|\\i\b|\bi\b|\\text\{i\}|\\mathrm\{i\}|\\imath\b|\\det|\\operatorname\{(?:tr|rank|Re|Im)\}"
    r"|\\text\{(?:rank|Re|Im)\}|\\arg\{|\\Re\{|\\Im\{"
)


@lru_cache(maxsize=1)
def _module() -> Any:
    """The installed ``math_normalization`` module, loaded on its own, or None."""
    if _MODULE in sys.modules:
        return sys.modules[_MODULE]
    try:
        spec = importlib.util.find_spec("latex2sympy2_extended")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = f"{folder}/math_normalization.py"
        file_spec = importlib.util.spec_from_file_location("_rzero_mv_normalization", path)
        if file_spec is None or file_spec.loader is None:
            continue
        module = importlib.util.module_from_spec(file_spec)
        try:
            file_spec.loader.exec_module(module)
        except (OSError, ImportError, SyntaxError):
            continue
        return module
    return None


@lru_cache(maxsize=1)
def _config() -> Any:
    m = _module()
    if m is None:
        return None
    return m.NormalizationConfig(
        basic_latex=True, units=True, malformed_operators=True, nits=True, boxed="last"
    )


@lru_cache(maxsize=1 << 16)
def latex_seen_by_parser(prepared: str) -> str | None:
    """The LaTeX math-verify hands to latex2sympy for ``prepared`` (a string from
    ``normalize.prepare_for_math_verify``), or None when the normaliser is unavailable."""
    m = _module()
    if m is None:
        return None
    try:
        return str(m.normalize_latex(prepared, config=_config()))
    except Exception:  # noqa: BLE001 - a normaliser failure means: no fast decision
        return None


def unit_dropped(text: str) -> bool | None:
    """math-verify's unit removal would change ``text`` (a trailing unit word or ``\\text{}``);
    None when the normaliser is unavailable."""
    m = _module()
    if m is None:
        return None
    stripped = m.unit_superscript_regex.sub("", text).strip()
    return bool(stripped and stripped != text.strip()) or bool(m.units_regex.search(text))


def is_complex(latex: str) -> bool:
    """math-verify would parse ``latex`` with complex (not real) symbols."""
    return _COMPLEX_RE.search(latex) is not None
