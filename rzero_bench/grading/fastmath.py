"""A pure-Python evaluator for common LaTeX answer shapes, deciding math-verify's verdict without sympy.

Answers are parsed (never ``eval``-ed) by a small recursive-descent parser that follows the
grammar of latex2sympy (which math-verify uses): implicit multiplication binds tighter than ``*``,
``\\cdot``, ``\\times`` and ``/`` (``1/2x`` = 1/(2x)); ``^`` takes a braced group or one token;
letters are one-letter symbols, case-folded (``R`` = ``r``). Accepted: integers and decimals,
one-letter symbols other than e/E/i/I (constants for latex2sympy), ``\\pi``, ``+ - * / \\cdot
\\times ^``, ``\\frac``, ``\\sqrt``, ``\\sqrt[n]``, parentheses; at the top level only: lists
``a, b`` (a set), ``(a, b)``, ``[a, b)`` ... (intervals, ``\\infty`` allowed as an end point),
``(a, b, c)`` (a tuple), ``\\{a, b\\}`` (a set), ``pmatrix``/``bmatrix``. Anything else (text,
relations, ``\\pm``, subscripts, units, functions, a number directly before ``\\frac``, which
latex2sympy reads as a mixed number) gives no fingerprint and math-verify decides.

A fingerprint is the value of every scalar at three fixed points (each symbol gets a fixed
pseudo-random value per point), computed with 50-digit complex arithmetic (mpmath), plus the exact
rational value where there is one. Polynomial identity testing decides:

- **different** when the values clearly differ (relative 1e-6; a float rounded to 6 decimals, as
  math-verify does, cannot bridge that) at some point; for sets/tuples/intervals when the sets of
  element values differ (math-verify's every set/tuple/interval equality implies equal element
  value sets); matrices of different shape, or with a clearly different entry; a matrix and a
  non-matrix;
- **equal** only where math-verify provably agrees: exact rationals (without decimals) equal
  exactly; constant expressions neither of which is a plain rational (math-verify compares
  ``(a-b).evalf(15)`` with 0) equal to 1e-30 with moderate magnitudes and no nested radicals;
  rational functions of the symbols (radicals of constants only, no decimals), neither side
  identically one bare symbol (math-verify compares a Symbol by its printed form), equal at all
  points (``simplify(a-b)`` is 0); sets, tuples, intervals (same brackets) and matrices element by
  element under the same rules.

Everything else is left undecided (None) and goes to math-verify.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import mpmath

from rzero_bench.grading.normalize import _strip_wrappers

_CTX = mpmath.MPContext()
_CTX.dps = 50
_N_POINTS = 3
_MAX_LEN = 400
_MAX_MAG = _CTX.mpf(10) ** 60
_EQ_MAG = _CTX.mpf(10) ** 15
_EQ_TOL = _CTX.mpf(10) ** -30
_DIFF_REL = _CTX.mpf(10) ** -6
_DIFF_ABS = _CTX.mpf("1.5e-6")
_MAX_POW = 64
_FORBIDDEN_LETTERS = frozenset("eEiI")


class _Decline(Exception):
    """The answer is outside the fast grammar."""


@dataclass(frozen=True)
class Scalar:
    """Values of one scalar at the sample points, and what is known about its form."""

    vals: tuple[Any, ...]  # mpmath mpc values
    exact: Fraction | None  # exact value when it is a rational without decimals
    floats: bool  # a decimal literal occurs
    symbols: frozenset[str]
    rad_sym: bool  # a radical / fractional power of a symbol-dependent expression
    nested: bool  # a radical of an irrational expression
    mag: Any  # largest magnitude met while evaluating (mpf)


@dataclass(frozen=True)
class Fingerprint:
    """``kind``: "scalar" | "set" | "tuple" | "interval" | "matrix"; ``items`` its scalars
    (interval: start, end; matrix: row-major). ``shape``: interval openness or matrix shape."""

    kind: str
    items: tuple[Scalar | None, ...]  # None = an infinite interval end (sign in ``shape``)
    shape: tuple[object, ...] = ()


def _point(name: str, k: int) -> Any:
    h = zlib.crc32(f"rzero/{name}/{k}".encode())
    return _CTX.mpf(0.55) + _CTX.mpf(h % 1_000_003) / 1_000_003


# ----------------------------------------------------------------------------- tokens

_SPACING_RE = re.compile(r"\\\\|\\[!,;: ]|\\q?quad(?![A-Za-z])|~")
_LEFT_RIGHT_RE = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])")
_TOKEN_RE = re.compile(
    r"\s+|(\d+\.\d+|\.\d+|\d+)|\\(?:begin|end)\{[pb]matrix\}|\\[{}]|\\\\|\\[A-Za-z]+|[A-Za-z]|[-+*/^(){}\[\],&]"
)
_COMMANDS = {
    "\\pi",
    "\\sqrt",
    "\\frac",
    "\\dfrac",
    "\\tfrac",
    "\\cdot",
    "\\times",
    "\\infty",
    "\\{",
    "\\}",
    "\\\\",
    "\\begin{pmatrix}",
    "\\end{pmatrix}",
    "\\begin{bmatrix}",
    "\\end{bmatrix}",
}


def _spacing(m: re.Match[str]) -> str:
    return m.group() if m.group() == "\\\\" else " "


_DEGREE_RE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![A-Za-z])")
_BASE_RE = re.compile(r"(?<![\d.])(\d+)_(?:\{\d{1,2}\}|\d)(?![\d.])")


def _tokens(s: str) -> list[str]:
    s = _LEFT_RIGHT_RE.sub("", _SPACING_RE.sub(_spacing, s))
    s = _DEGREE_RE.sub("", s)  # latex2sympy drops degree signs: 90^\circ = 90
    s = _BASE_RE.sub(r"\1", s)  # and base subscripts: 204_5 = 204
    out: list[str] = []
    pos = 0
    while pos < len(s):
        m = _TOKEN_RE.match(s, pos)
        if m is None:
            raise _Decline
        tok = m.group()
        pos = m.end()
        if tok.isspace():
            continue
        if tok.startswith("\\") and tok not in _COMMANDS:
            raise _Decline
        if tok in _FORBIDDEN_LETTERS:
            raise _Decline
        if tok[0].isdigit() or tok[0] == ".":
            if out and (out[-1][0].isdigit() or out[-1][0] == "."):
                raise _Decline  # "1 2": latex2sympy may join the digits
        out.append(tok)
    return out


# ----------------------------------------------------------------------------- arithmetic


def _const(value: Fraction, floats: bool = False) -> Scalar:
    v = _CTX.mpc(_CTX.mpf(value.numerator) / value.denominator)
    return Scalar((v,) * _N_POINTS, None if floats else value, floats, frozenset(), False, False, abs(v))


def _symbol(name: str) -> Scalar:
    vals = tuple(_CTX.mpc(_point(name, k)) for k in range(_N_POINTS))
    return Scalar(vals, None, False, frozenset({name}), False, False, max(abs(v) for v in vals))


def _pi() -> Scalar:
    v = _CTX.mpc(_CTX.pi)
    return Scalar((v,) * _N_POINTS, None, False, frozenset(), False, False, abs(v))


def _finish(vals: list[Any], exact: Fraction | None, a: Scalar, b: Scalar | None, **kw: bool) -> Scalar:
    mag = max([a.mag] + ([b.mag] if b is not None else []) + [abs(v) for v in vals])  # type: ignore[type-var]
    if mag > _MAX_MAG or any(not _CTX.isfinite(v) for v in vals):  # type: ignore[operator]
        raise _Decline
    return Scalar(
        tuple(vals),  # type: ignore[arg-type]
        exact,
        a.floats or (b.floats if b is not None else False),
        a.symbols | (b.symbols if b is not None else frozenset()),
        kw.get("rad_sym", False) or a.rad_sym or (b.rad_sym if b is not None else False),
        kw.get("nested", False) or a.nested or (b.nested if b is not None else False),
        mag,
    )


def _add(a: Scalar, b: Scalar, sign: int = 1) -> Scalar:
    vals = [x + sign * y for x, y in zip(a.vals, b.vals, strict=True)]
    exact = a.exact + sign * b.exact if a.exact is not None and b.exact is not None else None
    return _finish(vals, exact, a, b)


def _mul(a: Scalar, b: Scalar) -> Scalar:
    vals = [x * y for x, y in zip(a.vals, b.vals, strict=True)]
    exact = a.exact * b.exact if a.exact is not None and b.exact is not None else None
    return _finish(vals, exact, a, b)


def _div(a: Scalar, b: Scalar) -> Scalar:
    if b.exact == 0 or any(abs(y) < _CTX.mpf(10) ** -20 for y in b.vals):
        raise _Decline  # zoo / nan in sympy
    vals = [x / y for x, y in zip(a.vals, b.vals, strict=True)]
    exact = a.exact / b.exact if a.exact is not None and b.exact is not None else None
    return _finish(vals, exact, a, b)


def _neg(a: Scalar) -> Scalar:
    return _finish([-x for x in a.vals], -a.exact if a.exact is not None else None, a, None)


def _iroot(n: int, k: int) -> int | None:
    """The exact k-th root of n >= 0, or None."""
    if n < 2:
        return n
    lo, hi = 0, 1 << (n.bit_length() // k + 1)
    while lo < hi:
        mid = (lo + hi) // 2
        if mid**k < n:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo**k == n else None


def _pow(a: Scalar, b: Scalar) -> Scalar:
    e = b.exact
    if e is None or abs(e.numerator) > _MAX_POW or e.denominator > 12:
        raise _Decline
    if a.exact == 0 and e <= 0:
        raise _Decline
    vals = [x ** (_CTX.mpf(e.numerator) / e.denominator) for x in a.vals]
    if e.denominator == 1:
        exact = a.exact**e.numerator if a.exact is not None else None
        if exact is not None and max(exact.numerator.bit_length(), exact.denominator.bit_length()) > 400:
            raise _Decline
        return _finish(vals, exact, a, b)
    exact = None
    if a.exact is not None and a.exact > 0:
        p, q = _iroot(a.exact.numerator, e.denominator), _iroot(a.exact.denominator, e.denominator)
        if p is not None and q is not None:
            exact = Fraction(p, q) ** e.numerator
    if exact is not None:
        vals = [_CTX.mpc(_CTX.mpf(exact.numerator) / exact.denominator)] * _N_POINTS
        return _finish(vals, exact, a, b)
    irrational = a.exact is None
    return _finish(vals, None, a, b, rad_sym=bool(a.symbols), nested=irrational)


# ----------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, toks: list[str]) -> None:
        self.t = toks
        self.i = 0

    def peek(self, k: int = 0) -> str | None:
        j = self.i + k
        return self.t[j] if j < len(self.t) else None

    def take(self, tok: str | None = None) -> str:
        cur = self.peek()
        if cur is None or (tok is not None and cur != tok):
            raise _Decline
        self.i += 1
        return cur

    def done(self) -> bool:
        return self.i >= len(self.t)

    # expr := ['+'|'-'] mp (('+'|'-') mp)*
    def expr(self) -> Scalar:
        sign = 1
        while self.peek() in ("+", "-"):
            if self.take() == "-":
                sign = -sign
        val = self.mp()
        if sign < 0:
            val = _neg(val)
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.unary_mp()
            val = _add(val, rhs, 1 if op == "+" else -1)
        return val

    def unary_mp(self) -> Scalar:
        sign = 1
        while self.peek() in ("+", "-"):
            if self.take() == "-":
                sign = -sign
        val = self.mp()
        return _neg(val) if sign < 0 else val

    # mp := unary (('*'|'/'|'\cdot'|'\times') unary)*   (left-associative)
    def mp(self) -> Scalar:
        val = self.implicit()
        while self.peek() in ("*", "/", "\\cdot", "\\times"):
            op = self.take()
            sign = 1
            while self.peek() in ("+", "-"):
                if self.take() == "-":
                    sign = -sign
            rhs = self.implicit()
            if sign < 0:
                rhs = _neg(rhs)
            val = _div(val, rhs) if op == "/" else _mul(val, rhs)
        return val

    # implicit := postfix+   (juxtaposition, tighter than * and /)
    def implicit(self) -> Scalar:
        val = self.postfix()
        while True:
            nxt = self.peek()
            if nxt is None or not self._starts_atom(nxt):
                break
            prev = self.t[self.i - 1]
            if (
                nxt in ("\\frac", "\\dfrac", "\\tfrac")
                and (prev[0].isdigit() or prev[0] == ".")
                and self._numeric_frac()
            ):
                raise _Decline  # "1\frac{4}{5}": a mixed number for latex2sympy
            if nxt[0].isdigit() or nxt[0] == ".":
                raise _Decline  # "x2", "(x+1)2": unusual, not worth mirroring
            val = _mul(val, self.postfix())
        return val

    def _numeric_frac(self) -> bool:
        """The ``\\frac`` at the cursor starts with an integer literal (a possible mixed number)."""
        rest = self.t[self.i + 1 : self.i + 4]
        if rest[:1] == ["{"]:
            return len(rest) == 3 and rest[1].isdigit() and rest[2] == "}"
        return bool(rest) and rest[0][0].isdigit()

    @staticmethod
    def _starts_atom(tok: str) -> bool:
        return (
            tok[0].isdigit()
            or tok[0] == "."
            or (len(tok) == 1 and tok.isalpha())
            or tok in ("(", "\\pi", "\\sqrt", "\\frac", "\\dfrac", "\\tfrac")
        )

    # postfix := atom ('^' (single token | '{' expr '}'))?
    def postfix(self) -> Scalar:
        base = self.atom()
        if self.peek() == "^":
            self.take()
            nxt = self.peek()
            if nxt == "{":
                exp = self.braced()
            elif nxt is not None and len(nxt) == 1 and (nxt.isdigit() or nxt.isalpha()):
                self.take()
                exp = _const(Fraction(int(nxt))) if nxt.isdigit() else _symbol(nxt.lower())
            else:
                raise _Decline
            if self.peek() == "^":
                raise _Decline
            base = _pow(base, exp)
        return base

    def braced(self) -> Scalar:
        self.take("{")
        val = self.expr()
        self.take("}")
        return val

    def arg(self) -> Scalar:
        """A braced group or a single digit / letter (``\\frac43``, ``\\sqrt2``)."""
        tok = self.peek()
        if tok == "{":
            return self.braced()
        if tok is None:
            raise _Decline
        if tok.isdigit():
            self.take()
            if len(tok) == 1:
                return _const(Fraction(int(tok)))
            # "\frac43" is one number token here: split it as TeX does
            if len(tok) == 2:
                self.t[self.i - 1 : self.i] = [tok[0], tok[1]]
                self.i -= 1
                self.take()
                return _const(Fraction(int(tok[0])))
            raise _Decline
        if len(tok) == 1 and tok.isalpha():
            self.take()
            return _symbol(tok.lower())
        raise _Decline

    def atom(self) -> Scalar:
        tok = self.peek()
        if tok is None:
            raise _Decline
        if tok[0].isdigit() or tok[0] == ".":
            self.take()
            if "." in tok:
                if len(tok.replace(".", "").lstrip("0")) > 12:
                    raise _Decline
                return _const(Fraction(tok), floats=True)
            return _const(Fraction(int(tok)))
        if len(tok) == 1 and tok.isalpha():
            self.take()
            return _symbol(tok.lower())
        if tok == "\\pi":
            self.take()
            return _pi()
        if tok == "(":
            self.take()
            val = self.expr()
            self.take(")")
            return val
        if tok in ("\\frac", "\\dfrac", "\\tfrac"):
            self.take()
            num = self.arg()
            den = self.arg()
            return _div(num, den)
        if tok == "\\sqrt":
            self.take()
            index = Fraction(2)
            if self.peek() == "[":
                self.take()
                n = self.take()
                if not n.isdigit() or not 2 <= int(n) <= 12:
                    raise _Decline
                index = Fraction(int(n))
                self.take("]")
            radicand = self.arg()
            return _pow(radicand, _const(1 / index))
        raise _Decline


def _split_top(toks: list[str]) -> list[list[str]]:
    """Split a token list at top-level commas."""
    parts: list[list[str]] = [[]]
    depth = 0
    for t in toks:
        if t in ("(", "[", "{", "\\{"):
            depth += 1
        elif t in (")", "]", "}", "\\}"):
            depth -= 1
            if depth < 0:
                raise _Decline
        if t == "," and depth == 0:
            parts.append([])
        else:
            parts[-1].append(t)
    if depth != 0:
        raise _Decline
    return parts


def _scalar(toks: list[str]) -> Scalar:
    if not toks:
        raise _Decline
    p = _Parser(list(toks))
    val = p.expr()
    if not p.done():
        raise _Decline
    return val


def _end(toks: list[str]) -> tuple[Scalar | None, int]:
    """An interval end point: a scalar, or +/- infinity (None with its sign)."""
    sign = 1
    rest = list(toks)
    while rest and rest[0] in ("+", "-"):
        if rest.pop(0) == "-":
            sign = -sign
    if rest == ["\\infty"]:
        return None, sign
    return _scalar(toks), 0


def _closing(toks: list[str], i: int) -> int:
    """Index of the bracket closing the one at ``i`` (any of ( [ { \\{)."""
    depth = 0
    for j in range(i, len(toks)):
        if toks[j] in ("(", "[", "{", "\\{"):
            depth += 1
        elif toks[j] in (")", "]", "}", "\\}"):
            depth -= 1
            if depth == 0:
                return j
    raise _Decline


def _parse(s: str) -> Fingerprint:
    if len(s) > _MAX_LEN or "\\\\" in s and "matrix" not in s:
        raise _Decline
    toks = _tokens(s)
    if not toks:
        raise _Decline
    if toks[0] in ("\\begin{pmatrix}", "\\begin{bmatrix}"):
        end = toks[0].replace("begin", "end")
        if toks[-1] != end or toks.count(end) != 1 or toks.count(toks[0]) != 1:
            raise _Decline
        rows: list[list[Scalar]] = []
        for row in _join_rows(toks[1:-1]):
            rows.append([_scalar(cell) for cell in _split(row, "&")])
        if not rows or len({len(r) for r in rows}) != 1:
            raise _Decline
        return Fingerprint("matrix", tuple(x for r in rows for x in r), (len(rows), len(rows[0])))
    if "&" in toks or "\\\\" in toks:
        raise _Decline
    parts = _split_top(toks)
    if len(parts) > 1:
        if any(any(t == "\\infty" for t in p) for p in parts):
            raise _Decline
        if any(len(p) == 1 and len(p[0]) == 3 and p[0].isdigit() for p in parts[1:]):
            raise _Decline  # "10,080": a thousands separator for latex2sympy
        return Fingerprint("set", tuple(_scalar(p) for p in parts))
    first, last = toks[0], toks[-1]
    if first in ("(", "[", "\\{") and _closing(toks, 0) == len(toks) - 1:
        inner = _split_top(toks[1:-1])
        if first == "\\{":
            if len(inner) < 2 or last != "\\}":
                raise _Decline
            return Fingerprint("set", tuple(_scalar(p) for p in inner))
        if len(inner) == 2 and last in (")", "]"):
            (a, sa), (b, sb) = _end(inner[0]), _end(inner[1])
            # an infinite end is always open for sympy: "(0,\infty]" = "(0,\infty)"
            return Fingerprint(
                "interval", (a, b), ("(" if a is None else first, ")" if b is None else last, sa, sb)
            )
        if len(inner) >= 3 and first == "(" and last == ")":
            return Fingerprint("tuple", tuple(_scalar(p) for p in inner))
        if len(inner) >= 2:
            raise _Decline
    if "\\infty" in toks or "\\{" in toks or "[" in toks:
        raise _Decline
    return Fingerprint("scalar", (_scalar(toks),))


def _split(toks: list[str], sep: str) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for t in toks:
        if t == sep:
            out.append([])
        else:
            out[-1].append(t)
    return out


def _join_rows(toks: list[str]) -> list[list[str]]:
    rows = _split(toks, "\\\\")
    if rows and not rows[-1]:
        rows.pop()  # a trailing "\\"
    return rows


def fingerprint(answer: str) -> Fingerprint | None:
    """The fingerprint of a math answer, or None when it is outside the fast grammar."""
    s = _strip_wrappers(answer)
    if len(s) > _MAX_LEN:
        return None
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    try:
        return _parse(s)
    except (_Decline, ValueError, ZeroDivisionError, OverflowError, ArithmeticError, RecursionError):
        return None


# ----------------------------------------------------------------------------- decisions


def _differ(a: Scalar, b: Scalar) -> bool:
    for x, y in zip(a.vals, b.vals, strict=True):
        d = abs(x - y)
        if d > _DIFF_ABS and d > _DIFF_REL * max(abs(x), abs(y)):
            return True
    return False


def _bare_symbol(a: Scalar) -> bool:
    if len(a.symbols) != 1:
        return False
    name = next(iter(a.symbols))
    return all(abs(v - _point(name, k)) < _EQ_TOL for k, v in enumerate(a.vals))


def _scalar_equal(a: Scalar, b: Scalar) -> bool | None:
    """math-verify's verdict on two scalars, or None when it cannot be predicted."""
    if a.exact is not None and b.exact is not None:
        return a.exact == b.exact
    if _differ(a, b):
        return False
    if a.floats or b.floats or a.nested or b.nested:
        return None
    if a.mag > _EQ_MAG or b.mag > _EQ_MAG:  # type: ignore[operator]
        return None
    scale = max(a.mag, b.mag, 1)  # type: ignore[call-overload]
    if any(abs(x - y) > _EQ_TOL * scale for x, y in zip(a.vals, b.vals, strict=True)):
        return None
    if not a.symbols and not b.symbols:
        if a.exact is None and b.exact is None:
            return True  # (a-b).evalf(15) == 0
        return None  # a plain rational against an expression: structural / simplify
    if a.rad_sym or b.rad_sym or _bare_symbol(a) or _bare_symbol(b):
        return None
    if _constant(a) or _constant(b):
        return None
    return True  # rational functions equal everywhere: simplify(a - b) == 0


def _constant(a: Scalar) -> bool:
    return all(abs(v - a.vals[0]) < _EQ_TOL * max(1, a.mag) for v in a.vals)  # type: ignore[call-overload]


def _value_sets_differ(xs: tuple[Scalar | None, ...], ys: tuple[Scalar | None, ...]) -> bool:
    def missing(us: tuple[Scalar | None, ...], vs: tuple[Scalar | None, ...]) -> bool:
        return any(u is not None and all(v is not None and _differ(u, v) for v in vs) for u in us)

    return missing(xs, ys) or missing(ys, xs)


def _all_equal(xs: tuple[Scalar | None, ...], ys: tuple[Scalar | None, ...]) -> bool | None:
    verdict: bool | None = True
    for x, y in zip(xs, ys, strict=True):
        if x is None or y is None:
            if x is not y:
                return False
            continue
        v = _scalar_equal(x, y)
        if v is False:
            return False
        if v is None:
            verdict = None
    return verdict


def decide_fast(a: Fingerprint | None, b: Fingerprint | None) -> bool | None:
    """math-verify's verdict (either direction) on two fingerprinted answers, or None."""
    if a is None or b is None:
        return None
    if a.kind == "matrix" or b.kind == "matrix":
        if a.kind != b.kind or a.shape != b.shape:
            return False
        if any(
            x is not None and y is not None and _differ(x, y) for x, y in zip(a.items, b.items, strict=True)
        ):
            return False
        if any(x is not None and x.symbols for x in a.items + b.items):
            return None
        return _all_equal(a.items, b.items)
    if a.kind == "scalar" and b.kind == "scalar":
        return _scalar_equal(a.items[0], b.items[0])  # type: ignore[arg-type]
    if a.kind == "interval" or b.kind == "interval":
        # infinite ends: only their sign matters for the value sets
        if a.kind == b.kind == "interval":
            if a.shape[2:] != b.shape[2:]:
                return False
            if _value_sets_differ(a.items, b.items):
                return False
            if a.shape[:2] != b.shape[:2]:
                # same ends, different brackets; only for real intervals (start < end):
                # latex2sympy makes "(5,3)" and "[5,3]" the same Tuple
                return False if _genuine(a) and _genuine(b) else None
            if not (_genuine(a) and _genuine(b)):
                return None
            return _all_equal(a.items, b.items)
        other = b if a.kind == "interval" else a
        iv = a if a.kind == "interval" else b
        if any(s != 0 for s in iv.shape[2:]):
            return False  # an infinite interval is not a finite set, tuple or number
        if _value_sets_differ(iv.items, other.items):
            return False
        return None
    if _value_sets_differ(a.items, b.items):
        return False
    if a.kind == b.kind and len(a.items) == len(b.items):
        if a.kind == "tuple":
            return _all_equal(a.items, b.items)
        if a.kind == "set" and all(x is not None and not x.symbols for x in a.items + b.items):
            return _set_equal(a.items, b.items)  # type: ignore[arg-type]
    return None


def _genuine(iv: Fingerprint) -> bool:
    """An interval latex2sympy keeps as an Interval: constant real ends, start < end."""
    lo, hi = iv.items
    if any(x is not None and (x.symbols or any(abs(v.imag) > _EQ_TOL for v in x.vals)) for x in (lo, hi)):
        return False
    if lo is None or hi is None:
        return (lo is None and iv.shape[2] == -1 or lo is not None) and (
            hi is None and iv.shape[3] == 1 or hi is not None
        )
    return bool(hi.vals[0].real - lo.vals[0].real > _DIFF_ABS)


def _set_equal(xs: tuple[Scalar, ...], ys: tuple[Scalar, ...]) -> bool | None:
    """Sets of constants: each element equal to exactly one of the other's (math-verify sorts both
    by value and compares in order)."""
    if len({_key(x) for x in xs}) != len(xs) or len({_key(y) for y in ys}) != len(ys):
        return None  # duplicates: FiniteSet collapses them
    for x in xs:
        matches = [y for y in ys if not _differ(x, y)]
        if len(matches) != 1 or _scalar_equal(x, matches[0]) is not True:
            return None
    return True


def _key(x: Scalar) -> str:
    v = x.vals[0]
    return _CTX.nstr(v, 12)  # type: ignore[no-any-return]
