"""Cheap, pure-Python answer normalisation used before (and instead of) math-verify.

- ``math_info``: a canonical key for a math answer plus what can be decided without sympy:
  plain numbers (integers, ``a/b``, ``\\frac{a}{b}``, decimals, ``1,000``, ``27.0``, ``025``, ``4.5e33``,
  ``4.5\\times10^{33}``, ``90^\\circ``, ``\\$18``) compare with math-verify's own rule (Rationals
  exactly; when either is written as a float, both rounded to 6 decimals), with exact fractions;
  text answers (``\\text{Evelyn}``, ``east``; 4+ letters bare) compare case-insensitively, as text
  rather than as products of symbols (math-verify would equate "abcd" and "dcba"); malformed
  strings (unbalanced brackets, trailing operator, "?"), which math-verify keeps as strings, equal
  only themselves; a word of letters other than e/i is never a plain number. Everything else goes
  to math-verify.
- ``choice_key``: the option letter of a multiple-choice answer.
- ``bbeh_match``: BIG-Bench Extra Hard's published fuzzy match (google-deepmind/bbeh
  ``evaluate.py``), re-implemented: lowercase + strip, ``", "`` -> ``","``, answer prefixes and
  LaTeX wrappers removed, then equal / ``(a)`` vs ``a`` / equal as floats / equal without quotes /
  ``[x]`` vs ``x`` / trailing ``?``.
- ``greedy_classes``: the clustering rule shared by the parent and the workers.

Nothing here evaluates its input; all regexes are anchored and free of nested quantifiers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from rzero_bench.grading.mvtext import is_complex, latex_seen_by_parser, unit_dropped
from rzero_bench.parsing import _match_braces, extract_choice, last_boxed

MAX_DECIMALS = 6  # math-verify's float_rounding

_LEFT_RIGHT_RE = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])")
_SPACING_RE = re.compile(r"\\[!,;: ]|\\q?quad(?![A-Za-z])|~")
_DEGREE_RE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![A-Za-z])|°|\\degree(?![A-Za-z])")
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SCI_TIMES_RE = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:\\times|\\cdot|\*)10\^(?:\{([+-]?\d+)\}|([+-]?\d))")
_TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")
_UNIT_SUFFIX_RE = re.compile(
    r"^(.*?\d)\s*\\(?:text|mbox|mathrm)\s*\{\s*[A-Za-z][A-Za-z /^.]*\}(?:\^\{?\d\}?)?$"
)
_WORDS_RE = re.compile(r"[A-Za-z][A-Za-z' -]*")
_BARE_WORDS_RE = re.compile(r"[A-Za-z][A-Za-z' -]{3,}")
_DOLLAR_RE = re.compile(r"\\\$|\$")


def _strip_wrappers(s: str) -> str:
    for _ in range(4):
        s = s.strip()
        if len(s) >= 2 and s.startswith("$") and s.endswith("$"):
            s = s.strip("$")
            continue
        if s.startswith(("\\(", "\\[")) and s.endswith(("\\)", "\\]")):
            s = s[2:-2]
            continue
        if s.startswith(("\\boxed", "\\fbox")):
            inner = last_boxed(s)
            m = re.match(r"\\(?:boxed|fbox)\s*\{", s)
            if (
                inner is not None
                and m is not None
                and _match_braces(s, m.end() - 1).get(m.end() - 1) == len(s) - 1
            ):
                s = inner
                continue
        break
    return s


def normalize_math(s: str) -> str:
    """A canonical spelling of a LaTeX answer (whitespace, ``\\dfrac``, ``\\left``, degrees, ``$``...)."""
    s = _strip_wrappers(s)
    m = _UNIT_SUFFIX_RE.match(s)
    if m:
        s = m.group(1)
    s = _LEFT_RIGHT_RE.sub("", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _SPACING_RE.sub("", s)
    s = _DEGREE_RE.sub("", s)
    s = s.replace("\\%", "%")
    s = _DOLLAR_RE.sub("", s)
    s = "".join(s.split())
    while s.endswith(".") and not s.endswith(".."):
        s = s[:-1]
    if _THOUSANDS_RE.fullmatch(s):
        s = s.replace(",", "")
    return s


@dataclass(frozen=True)
class MathInfo:
    """Canonical bucket key and what can be decided about a math answer without sympy.

    ``value`` is set for plain numbers: integers, ``a/b``, ``\\frac{a}{b}``, decimals, ``4.5e33``,
    ``4.5\\times10^{33}``. ``is_float`` says math-verify sees a Float (the written mantissa has a
    decimal point): math-verify compares a Float with anything after rounding both to 6 decimals,
    and two Rationals exactly; ``decide_math`` applies the same rule.
    """

    key: str
    kind: str  # "num" | "text" | "sym" (letters only) | "junk" (malformed) | "expr" | "empty"
    value: Fraction | None = None
    is_float: bool = False
    sci: bool = False  # written with a power of ten (4.5e33, 4.5\times10^{33}): a product for sympy


_FRAC_RE = re.compile(r"([+-]?)\\frac\{([+-]?\d{1,40})\}\{([+-]?\d{1,40})\}|([+-]?)\\frac(\d)(\d)")
_SLASH_RE = re.compile(r"([+-]?\d{1,40})/([+-]?\d{1,40})")
_MAX_EXP = 60
_MAX_SIG = 15  # math-verify's numeric precision


def _as_number(s: str) -> tuple[Fraction, bool, bool] | None:
    """(exact value, written as a float, written with a power of ten) for a plain number, else None."""
    m = _FRAC_RE.fullmatch(s)
    if m:
        if m.group(2) is not None:
            sign, a, b = m.group(1), int(m.group(2)), int(m.group(3))
        else:
            sign, a, b = m.group(4), int(m.group(5)), int(m.group(6))
        if b == 0:
            return None
        v = Fraction(a, b)
        return (-v if sign == "-" else v), False, False
    m = _SLASH_RE.fullmatch(s)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        return (Fraction(a, b), False, False) if b else None
    m = _SCI_TIMES_RE.fullmatch(s)
    if m:
        s = f"{m.group(1)}e{m.group(2) or m.group(3)}"
    elif not _NUMBER_RE.fullmatch(s):
        return None
    if len(s) > 200:
        return None
    try:
        d = Decimal(s)
    except (InvalidOperation, ValueError, ArithmeticError):
        return None
    sign, digits, exp = d.as_tuple()
    if not isinstance(exp, int) or abs(exp) > _MAX_EXP:
        return None
    mantissa = s.lower().split("e", 1)[0]
    sci = "e" in s.lower()
    is_float = "." in mantissa and not sci
    if "." in mantissa and len(str(int(mantissa.replace(".", "").lstrip("+-") or "0"))) > _MAX_SIG:
        return None
    return Fraction(d), is_float, sci


def _round6(x: Fraction) -> int | None:
    """x rounded to 6 decimals (as an integer number of millionths); None near a tie."""
    y = x * 10**6
    floor = y.numerator // y.denominator
    frac = y - floor
    if abs(frac - Fraction(1, 2)) < Fraction(1, 10**6):
        return None
    return floor + (1 if frac > Fraction(1, 2) else 0)


def _text_of(raw: str) -> str | None:
    s = _strip_wrappers(raw).strip()
    m = _TEXT_WRAP_RE.fullmatch(s)
    if m:
        inner = m.group(1).strip().rstrip(".").strip()
        if _WORDS_RE.fullmatch(inner) and sum(c.isalpha() for c in inner) >= 2:
            return " ".join(inner.lower().split())
        return None
    s = s.rstrip(".").strip()
    if _BARE_WORDS_RE.fullmatch(s):
        return " ".join(s.lower().split())
    return None


def math_info(answer: str) -> MathInfo:
    """Bucket key and cheap-decision data for one math answer.

    Where math-verify's rewriting drops a unit word at the end ("x d" = x, "a b c" = a*b), the
    answer is neither "text" nor "sym" (whose rules compare words and letters). Where latex2sympy
    would read the answer with complex symbols (a standalone ``i``), the key says so: "6+9 i" and
    "6+9i" are different answers for math-verify.
    """
    bare = _strip_wrappers(answer)
    unit_tail = unit_dropped(bare) is not False
    text = None if unit_tail else _text_of(answer)
    if text is not None:
        return MathInfo("t:" + text, "text")
    info = _math_info(answer, unit_tail)
    latex = latex_seen_by_parser(prepare_for_math_verify(answer))
    if is_complex(bare) or (latex is not None and is_complex(latex)):
        return MathInfo(info.key + "\0complex", info.kind, info.value, info.is_float, info.sci)
    return info


def _math_info(answer: str, unit_tail: bool) -> MathInfo:
    # The LaTeX math-verify's parser receives (its own rewriting applied: units dropped, the last
    # \boxed{} taken...); whitespace in it can matter ("10 , 080" is a set, "1e - 5" is e - 5), so
    # it is the key of anything that is not a plain number.
    latex = latex_seen_by_parser(prepare_for_math_verify(answer))
    if not answer.strip():
        return MathInfo("e:", "empty")
    norm = normalize_math(latex if latex is not None else answer)
    if not norm:
        return MathInfo("e:", "empty")
    num = _as_number(norm)
    # an "e" left in the LaTeX was not a top-level 4.5e33 (those are rewritten as \times10^{33}):
    # latex2sympy reads it as Euler's number
    plain = latex is not None and not _INNER_SPACE_RE.search(latex.strip()) and "e" not in norm.lower()
    if num is not None and plain:
        value, is_float, sci = num
        tag = ".f" if is_float else ".e" if sci else ""
        return MathInfo(f"n:{value}{tag}", "num", value, is_float, sci)
    key = "s:" + (latex if latex is not None else norm)
    if _malformed(norm) and _string_only(prepare_for_math_verify(answer)):
        return MathInfo(key, "junk")
    if _LETTERS_RE.fullmatch(norm) and set(norm) - _CONSTANT_LETTERS and not unit_tail:
        return MathInfo("s:" + norm, "sym")
    return MathInfo(key, "expr")


_INNER_SPACE_RE = re.compile(r"\s")
_FALLBACK_RE = re.compile(
    r"[\s=$]|\\[(\[]|answer|\\frac\{-?\d+(?:[.,]\d+)?\}\{-?\d+(?:[.,]\d+)?\}", re.IGNORECASE
)


def _string_only(prepared: str) -> bool:
    """When latex2sympy fails on ``prepared``, math-verify falls back to regexes that pick a number
    or an expression after whitespace or "=", a ``$...$`` or ``\\(...\\)`` part, a plain
    ``\\frac{1}{2}``, or text after "answer". Without any of them its parse is the string alone,
    equal only to the same string."""
    return _FALLBACK_RE.search(prepared) is None


_LETTERS_RE = re.compile(r"[A-Za-z]+")
_CONSTANT_LETTERS = set("eEiI")
_TRAILING_OPERATORS = ("+", "-", "*", "/", "^", "_", "=", ",", "\\", "{", "(", "[")


def _letters(key: str) -> list[str]:
    return sorted(c.lower() for c in key[2:] if c.isalpha())


def _malformed(norm: str) -> bool:
    """Unbalanced brackets, a trailing operator or a "?": math-verify keeps such a string as a
    string, equal only to the same string."""
    plain = norm.replace("\\{", "").replace("\\}", "")
    if plain.count("{") != plain.count("}"):
        return True
    if plain.count("(") + plain.count("[") != plain.count(")") + plain.count("]"):
        return True
    return "?" in norm or norm.endswith(_TRAILING_OPERATORS)


def strip_percent(s: str) -> str | None:
    """``s`` without a trailing percent sign, or None when it has none."""
    t = s.strip().rstrip("$").rstrip()
    for suffix in ("\\%", "%"):
        if t.endswith(suffix):
            return t[: -len(suffix)]
    return None


def decide_math(a: MathInfo, b: MathInfo) -> bool | None:
    """True/False when the two answers can be compared without math-verify, else None."""
    if a.key == b.key:
        return a.kind != "empty"
    if a.kind in ("empty", "junk") or b.kind in ("empty", "junk"):
        return False
    if {a.kind, b.kind} == {"sym", "num"}:  # a free symbol is never a number
        return False
    if a.kind in ("sym", "text") and b.kind in ("sym", "text") and _letters(a.key) != _letters(b.key):
        return False  # products of different symbols
    if {a.kind, b.kind} == {"text", "expr"} and any(c.isdigit() for c in (a.key + b.key)):
        return False  # a word is not an expression with digits in it
    if a.value is not None and b.value is not None:
        if a.is_float or b.is_float:  # a Float: math-verify rounds both to 6 decimals
            ra, rb = _round6(a.value), _round6(b.value)
            return None if ra is None or rb is None else ra == rb
        if not (a.sci or b.sci):
            return a.value == b.value  # Rationals
        # a power-of-ten product: sympy evaluates and compares it (against a Rational), or
        # compares the difference with 0 after chopping tiny values (against another product)
        if a.value == b.value:
            return True
        diff = abs(a.value - b.value)
        if diff > Fraction(1, 10**9) and diff > Fraction(1, 10**6) * max(abs(a.value), abs(b.value)):
            return False
        return None
    if a.kind == "text" and b.kind in ("text", "num"):
        return False
    if b.kind == "text" and a.kind == "num":
        return False
    return None


_BARE_POINT_RE = re.compile(r"(\d)\.(?!\d)")
_SCI_E_RE = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))[eE]([+-]?\d+)")


def prepare_for_math_verify(s: str) -> str:
    """The string math-verify parses: wrappers removed, ``4.5e33`` spelled in LaTeX, in ``\\boxed{}``."""
    s = _strip_wrappers(s)
    m = _SCI_E_RE.fullmatch(s.strip())
    if m:
        s = f"{m.group(1)}\\times10^{{{m.group(2)}}}"
    s = s.replace("\\$", "")
    s = _BARE_POINT_RE.sub(r"\1", s)
    return "\\boxed{" + s + "}"


# ----------------------------------------------------------------------------- choice


def choice_key(s: str, letters: str = "ABCDEFGHIJ") -> str | None:
    """The option letter written in ``s`` ("C", "(C)", "C.", "\\text{C}", "Answer: C"), or None."""
    return extract_choice(s, letters)


def exact_key(s: str) -> str:
    """Whitespace-collapsed string (the ``exact`` kind)."""
    return " ".join(s.split())


# ----------------------------------------------------------------------------- BBEH

_BBEH_PREFIXES = ("The answer is:", "The final answer is ", "The final answer is: ", "The answer is ")


def _bbeh_strip_latex(s: str) -> str:
    if len(s) >= 2 and s.startswith("$") and s.endswith("$"):
        s = s[1:-1]
    box = last_boxed(s) if ("\\boxed" in s or "\\fbox" in s) else None
    if box is not None and s.endswith("}"):
        s = box
    for cmd in ("\\texttt{", "\\text{", "\\textbf{"):
        if s.startswith(cmd) and s.endswith("}"):
            s = s[len(cmd) : -1]
    return s


def bbeh_prediction(s: str) -> str:
    """BBEH's preprocessing of a model answer."""
    s = s.strip()
    for prefix in _BBEH_PREFIXES:
        if prefix in s:
            s = s.rsplit(prefix, 1)[1].strip()
    if s.endswith("."):
        s = s[:-1]
    s = _bbeh_strip_latex(s).lower()
    s = s.replace(", ", ",").replace("**", "")
    s = s.split("\n", 1)[0]
    if s.endswith("."):
        s = s[:-1]
    return s.strip()


def bbeh_reference(s: str) -> str:
    """BBEH's preprocessing of a target; unlike upstream, a trailing "." is dropped too (upstream
    drops it from predictions only, so a target such as "He really cried." could never match)."""
    s = s.strip().lower().replace(", ", ",")
    return s[:-1] if s.endswith(".") else s


def _paren_letter(s: str) -> str | None:
    if len(s) == 3 and s[0] == "(" and s[2] == ")":
        return s[1]
    return None


def _float(s: str) -> float | None:
    if len(s) > 100:
        return None
    try:
        return float(s)
    except ValueError:
        return None


def bbeh_match(prediction: str, reference: str) -> bool:
    """BBEH fuzzy match between a preprocessed prediction and a preprocessed reference."""
    if prediction == reference:
        return True
    p = _paren_letter(prediction)
    if p is not None:
        return p == reference
    r = _paren_letter(reference)
    if r is not None:
        return r == prediction
    fp, fr = _float(prediction), _float(reference)
    if fp is not None and fr is not None and fp == fr:
        return True
    if prediction.replace("'", "") == reference.replace("'", ""):
        return True
    if prediction == f"[{reference}]" or reference == f"[{prediction}]":
        return True
    return prediction.endswith("?") and prediction[:-1] == reference


# ----------------------------------------------------------------------------- clustering


def greedy_classes(n: int, equivalent: Callable[[int, int], bool]) -> list[list[int]]:
    """Assign items 0..n-1 in order to the first class whose representative (its first member) is
    equivalent, else open a new class. ``equivalent(rep, item)``."""
    classes: list[list[int]] = []
    for i in range(n):
        for cls in classes:
            if equivalent(cls[0], i):
                cls.append(i)
                break
        else:
            classes.append([i])
    return classes


def order_classes(classes: Sequence[Sequence[int]]) -> list[list[int]]:
    """Sort members ascending; classes largest first, ties by first index."""
    out = [sorted(c) for c in classes if c]
    out.sort(key=lambda c: (-len(c), c[0]))
    return out
