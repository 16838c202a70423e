"""LaTeX answer -> ``Fingerprint``: a tokenizer and a recursive-descent parser (never ``eval``).

The parser follows the grammar of latex2sympy (which math-verify uses): implicit multiplication
binds tighter than ``*``, ``\\cdot``, ``\\times`` and ``/`` (``1/2x`` = 1/(2x)); ``^`` takes a braced
group or one token; letters are one-letter symbols, case-folded (``R`` = ``r``). Accepted: integers
and decimals, one-letter symbols other than e/E/i/I (constants for latex2sympy), ``\\pi``,
``+ - * / \\cdot \\times ^``, ``\\frac``, ``\\sqrt``, ``\\sqrt[n]``, parentheses; at the top level only:
lists ``a, b`` (a set), ``(a, b)``, ``[a, b)`` ... (intervals, ``\\infty`` allowed as an end point),
``(a, b, c)`` (a tuple), ``\\{a, b\\}`` (a set), ``pmatrix``/``bmatrix``. Anything else (text,
relations, ``\\pm``, subscripts, units, functions, a number directly before ``\\frac``, which
latex2sympy reads as a mixed number) gives no fingerprint (None) and math-verify decides.

Values are computed while parsing, with the operations of ``fastmath.values``.
"""

from __future__ import annotations

import re
from fractions import Fraction

from rzero_bench.grading.fastmath.values import (
    Decline,
    Fingerprint,
    Scalar,
    add,
    const,
    div,
    mul,
    neg,
    pi,
    power,
    symbol,
)
from rzero_bench.grading.normalize import _strip_wrappers

__all__ = ["fingerprint"]

_MAX_LEN = 400
_FORBIDDEN_LETTERS = frozenset("eEiI")


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
            raise Decline
        tok = m.group()
        pos = m.end()
        if tok.isspace():
            continue
        if tok.startswith("\\") and tok not in _COMMANDS:
            raise Decline
        if tok in _FORBIDDEN_LETTERS:
            raise Decline
        if tok[0].isdigit() or tok[0] == ".":
            if out and (out[-1][0].isdigit() or out[-1][0] == "."):
                raise Decline  # "1 2": latex2sympy may join the digits
        out.append(tok)
    return out


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
            raise Decline
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
            val = neg(val)
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.unary_mp()
            val = add(val, rhs, 1 if op == "+" else -1)
        return val

    def unary_mp(self) -> Scalar:
        sign = 1
        while self.peek() in ("+", "-"):
            if self.take() == "-":
                sign = -sign
        val = self.mp()
        return neg(val) if sign < 0 else val

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
                rhs = neg(rhs)
            val = div(val, rhs) if op == "/" else mul(val, rhs)
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
                raise Decline  # "1\frac{4}{5}": a mixed number for latex2sympy
            if nxt[0].isdigit() or nxt[0] == ".":
                raise Decline  # "x2", "(x+1)2": unusual, not worth mirroring
            val = mul(val, self.postfix())
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
                exp = const(Fraction(int(nxt))) if nxt.isdigit() else symbol(nxt.lower())
            else:
                raise Decline
            if self.peek() == "^":
                raise Decline
            base = power(base, exp)
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
            raise Decline
        if tok.isdigit():
            self.take()
            if len(tok) == 1:
                return const(Fraction(int(tok)))
            # "\frac43" is one number token here: split it as TeX does
            if len(tok) == 2:
                self.t[self.i - 1 : self.i] = [tok[0], tok[1]]
                self.i -= 1
                self.take()
                return const(Fraction(int(tok[0])))
            raise Decline
        if len(tok) == 1 and tok.isalpha():
            self.take()
            return symbol(tok.lower())
        raise Decline

    def atom(self) -> Scalar:
        tok = self.peek()
        if tok is None:
            raise Decline
        if tok[0].isdigit() or tok[0] == ".":
            self.take()
            if "." in tok:
                if len(tok.replace(".", "").lstrip("0")) > 12:
                    raise Decline
                return const(Fraction(tok), floats=True)
            return const(Fraction(int(tok)))
        if len(tok) == 1 and tok.isalpha():
            self.take()
            return symbol(tok.lower())
        if tok == "\\pi":
            self.take()
            return pi()
        if tok == "(":
            self.take()
            val = self.expr()
            self.take(")")
            return val
        if tok in ("\\frac", "\\dfrac", "\\tfrac"):
            self.take()
            num = self.arg()
            den = self.arg()
            return div(num, den)
        if tok == "\\sqrt":
            self.take()
            index = Fraction(2)
            if self.peek() == "[":
                self.take()
                n = self.take()
                if not n.isdigit() or not 2 <= int(n) <= 12:
                    raise Decline
                index = Fraction(int(n))
                self.take("]")
            radicand = self.arg()
            return power(radicand, const(1 / index))
        raise Decline


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
                raise Decline
        if t == "," and depth == 0:
            parts.append([])
        else:
            parts[-1].append(t)
    if depth != 0:
        raise Decline
    return parts


def _scalar(toks: list[str]) -> Scalar:
    if not toks:
        raise Decline
    p = _Parser(list(toks))
    val = p.expr()
    if not p.done():
        raise Decline
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
    raise Decline


def _parse(s: str) -> Fingerprint:
    if len(s) > _MAX_LEN or "\\\\" in s and "matrix" not in s:
        raise Decline
    toks = _tokens(s)
    if not toks:
        raise Decline
    if toks[0] in ("\\begin{pmatrix}", "\\begin{bmatrix}"):
        end = toks[0].replace("begin", "end")
        if toks[-1] != end or toks.count(end) != 1 or toks.count(toks[0]) != 1:
            raise Decline
        rows: list[list[Scalar]] = []
        for row in _join_rows(toks[1:-1]):
            rows.append([_scalar(cell) for cell in _split(row, "&")])
        if not rows or len({len(r) for r in rows}) != 1:
            raise Decline
        return Fingerprint("matrix", tuple(x for r in rows for x in r), (len(rows), len(rows[0])))
    if "&" in toks or "\\\\" in toks:
        raise Decline
    parts = _split_top(toks)
    if len(parts) > 1:
        if any(any(t == "\\infty" for t in p) for p in parts):
            raise Decline
        if any(len(p) == 1 and len(p[0]) == 3 and p[0].isdigit() for p in parts[1:]):
            raise Decline  # "10,080": a thousands separator for latex2sympy
        return Fingerprint("set", tuple(_scalar(p) for p in parts))
    first, last = toks[0], toks[-1]
    if first in ("(", "[", "\\{") and _closing(toks, 0) == len(toks) - 1:
        inner = _split_top(toks[1:-1])
        if first == "\\{":
            if len(inner) < 2 or last != "\\}":
                raise Decline
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
            raise Decline
    if "\\infty" in toks or "\\{" in toks or "[" in toks:
        raise Decline
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
    except (Decline, ValueError, ZeroDivisionError, OverflowError, ArithmeticError, RecursionError):
        return None
