"""LaTeX answer -> ``Fingerprint``: a tokenizer and a recursive-descent parser (never ``eval``).

The input is the LaTeX math-verify's parser itself receives (``rzero_bench.grading.mvtext``: its own
rewriting applied, units dropped, the last ``\\boxed{}`` taken); answers it would read with complex
symbols (a standalone ``i``) are left out. The parser follows the grammar of latex2sympy:
implicit multiplication binds tighter than ``*``, ``\\cdot``, ``\\times`` and ``/`` (``1/2x`` =
1/(2x)); ``^`` takes a braced group or one token; letters are one-letter symbols, case-folded
(``R`` = ``r``); in a juxtaposition chain an integer before a positive rational is a mixed number
(``2\\frac{1}{3}`` = 7/3, ``2(3)`` = 5); a letter before ``(`` one token ``)`` is a function call
(declined). Accepted: integers and decimals, one-letter symbols other than e/E/I (constants for
latex2sympy; a real ``i`` is a symbol), ``\\pi``, ``+ - * / \\cdot \\times ^``, ``\\frac``,
``\\sqrt``, ``\\sqrt[n]``, parentheses; at the top level only: lists ``a, b`` (a set), ``(a, b)``,
``[a, b)`` ... (intervals, ``\\infty`` allowed as an end point), ``(a, b, c)`` (a tuple),
``\\{a, b\\}`` (a set), ``pmatrix``/``bmatrix`` (optionally after a number: ``2\\begin{pmatrix}``),
``a \\pm b`` (the set {a - b, a + b}), one ``=`` between scalars (an "assign" when the left side is
one letter, else an "equation"; items: right-hand side, lhs - rhs), ``x \\in`` an interval. Anything
else (text, other relations, subscripts, functions) gives no fingerprint (None) and math-verify
decides.

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
from rzero_bench.grading.mvtext import is_complex, latex_seen_by_parser
from rzero_bench.grading.normalize import prepare_for_math_verify

__all__ = ["fingerprint"]

_MAX_LEN = 400
_FORBIDDEN_LETTERS = frozenset("eEI")  # e = Euler's number, I = the imaginary unit for latex2sympy


# ----------------------------------------------------------------------------- tokens

_SPACING_RE = re.compile(r"\\\\|\\[!,;: ]|\\q?quad(?![A-Za-z])|~")
_LEFT_RIGHT_RE = re.compile(r"\\m?(?:left|right)(?![A-Za-z])")
_TOKEN_RE = re.compile(
    r"\s+|(\d+\.\d+|\.\d+|\d+)|\\(?:begin|end)\{[pb]matrix\}|\\[{}]|\\\\|\\[A-Za-z]+|[A-Za-z]|[-+*/^(){}\[\],&=]"
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
    "\\in",
    "\\cup",
    "\\pm",
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
        """A juxtaposition chain, folded from the right as latex2sympy does: an integer item times
        a positive rational item is a mixed number (``2\\frac{1}{3}`` = 7/3, ``2(3)`` = 5)."""
        items = [self._item()]
        while True:
            nxt = self.peek()
            if nxt is None or not self._starts_atom(nxt):
                break
            if nxt[0].isdigit() or nxt[0] == ".":
                raise Decline  # "x2", "(x+1)2": unusual, not worth mirroring
            items.append(self._item())
        val, last = items[-1]
        rational = last in ("integer", "rational")
        for item, literal in reversed(items[:-1]):
            if (
                item.exact is not None
                and item.exact.denominator == 1
                and val.exact is not None
                and val.exact > 0
            ):
                # latex2sympy: Integer followed by a positive Rational -> a mixed number
                if literal != "integer" or not rational:
                    raise Decline  # whether sympy sees an Integer / a Rational here is not mirrored
                val = add(item, val) if item.exact >= 0 else add(item, val, -1)
                rational = True
            else:
                val, rational = mul(item, val), False
        return val

    def _item(self) -> tuple[Scalar, str]:
        """One factor of a juxtaposition chain and its literal form: "integer" (``2``, ``(2)``),
        "rational" (``\\frac{1}{3}``) or "" (anything else)."""
        start = self.i
        val = self.postfix()
        toks = self.t[start : self.i]
        if len(toks) == 1 and toks[0].isdigit() or len(toks) == 3 and toks[0] == "(" and toks[1].isdigit():
            return val, "integer"
        if toks and toks[0] == "\\frac" and all(t.isdigit() or t in "{}" for t in toks[1:]):
            return val, "rational"
        return val, ""

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
        tok = self.peek()
        base = self.atom()
        if tok is not None and (len(tok) == 1 and tok.isalpha() or tok == "\\pi") and self._call_follows():
            raise Decline  # "x(2)", "\\pi(r)", "x^2(3)": a function application for latex2sympy
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

    def _call_follows(self) -> bool:
        """After a letter: an optional power, then ``(`` one token ``)``."""
        j = self.i
        if j < len(self.t) and self.t[j] == "^":
            j += 1
            if j < len(self.t) and self.t[j] == "{":
                depth = 0
                while j < len(self.t):
                    depth += {"{": 1, "}": -1}.get(self.t[j], 0)
                    j += 1
                    if depth == 0:
                        break
            else:
                j += 1
        return self.t[j : j + 1] == ["("] and j + 2 < len(self.t) and self.t[j + 2] == ")"

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
        if tok == "{":
            return self.braced()  # a TeX group: "{1}", as math-verify's rewriting leaves some
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


_COMMA_NUMBER_RE = re.compile(r"\s*-?\d{1,3}(?:,\d{3})+(?:\.\d+)?\s*")


def _parse(s: str) -> Fingerprint:
    if len(s) > _MAX_LEN or "\\\\" in s and "matrix" not in s:
        raise Decline
    if _COMMA_NUMBER_RE.fullmatch(s):
        text = s.replace(",", "").strip()
        return Fingerprint("scalar", (const(Fraction(text), floats="." in text),))
    toks = _tokens(s)
    if not toks:
        raise Decline
    if "=" in toks:
        return _assignment(toks)
    if "\\pm" in toks:
        return _plus_minus(toks)
    if "\\in" in toks:
        return _membership(toks)
    if "\\cup" in toks:
        return _union(toks)
    return _structure(toks)


def _union(toks: list[str]) -> Fingerprint:
    """``I \\cup J \\cup ...`` of real intervals with rational or infinite ends: the set they cover, as
    sorted disjoint pieces (sympy's Union evaluates to that canonical form)."""
    pieces: list[list[str]] = [[]]
    for j, t in enumerate(toks):
        if t == "\\cup":
            if _depth_at(toks, j) != 0:
                raise Decline
            pieces.append([])
        else:
            pieces[-1].append(t)
    spans = []
    for piece in pieces:
        iv = _structure(piece)
        if iv.kind != "interval":
            raise Decline
        ends = []
        for x, sign in zip(iv.items, iv.shape[2:], strict=True):
            if x is None:
                ends.append(float("inf") * int(sign))  # type: ignore[call-overload]
            elif x.exact is None:
                raise Decline  # irrational or decimal end: the canonical form is not mirrored
            else:
                ends.append(x.exact)
        lo, hi = ends
        if not lo < hi:
            raise Decline  # latex2sympy makes "(5,3)" a tuple
        spans.append((lo, iv.shape[0] == "[", hi, iv.shape[1] == "]"))
    return Fingerprint("union", (), tuple(_merge(spans)))


def _merge(spans: list[tuple[object, bool, object, bool]]) -> list[tuple[object, bool, object, bool]]:
    """Sorted, disjoint, maximal pieces covering the same real numbers."""
    out: list[tuple[object, bool, object, bool]] = []
    for lo, lc, hi, hc in sorted(spans, key=lambda t: (t[0], not t[1])):
        if out:
            plo, plc, phi, phc = out[-1]
            if lo < phi or lo == phi and (phc or lc):  # type: ignore[operator]
                if hi > phi or hi == phi and hc:  # type: ignore[operator]
                    out[-1] = (plo, plc, hi, hc or (hi == phi and phc))
                continue
        out.append((lo, lc, hi, hc))
    return out


_BEGIN = ("\\begin{pmatrix}", "\\begin{bmatrix}")


def _structure(toks: list[str]) -> Fingerprint:
    """A matrix (optionally times a constant: ``2\\begin{pmatrix}...``), a set, an interval, a tuple
    or a scalar."""
    k = next((j for j, t in enumerate(toks) if t in _BEGIN), None)
    if k is not None:
        end = toks[k].replace("begin", "end")
        if toks[-1] != end or toks.count(end) != 1 or toks.count(toks[k]) != 1:
            raise Decline
        rows: list[list[Scalar]] = []
        for row in _join_rows(toks[k + 1 : -1]):
            rows.append([_scalar(cell) for cell in _split(row, "&")])
        if not rows or len({len(r) for r in rows}) != 1:
            raise Decline
        cells = [x for r in rows for x in r]
        if k > 0:
            # a number (or \frac of numbers) times the matrix: sympy compares entry by entry
            factor = toks[:k]
            sign = -1 if factor[0] == "-" else 1
            body = factor[1:] if factor[0] == "-" else factor
            if not (
                len(body) == 1
                and body[0].isdigit()
                or body[:1] == ["\\frac"]
                and all(t.isdigit() or t in "{}" for t in body[1:])
            ):
                raise Decline
            c = _scalar(body)
            cells = [mul(neg(c) if sign < 0 else c, x) for x in cells]
        return Fingerprint("matrix", tuple(cells), (len(rows), len(rows[0])))
    if "&" in toks or "\\\\" in toks:
        raise Decline
    parts = _split_top(toks)
    if len(parts) > 1:
        # a whole answer like "10,080" is one number for latex2sympy (``_parse``); any other
        # top-level list, "11,111,100+1" included, is a set
        if any(any(t == "\\infty" for t in p) for p in parts):
            raise Decline
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


def _membership(toks: list[str]) -> Fingerprint:
    """``x \\in I`` for an interval I: latex2sympy's Eq(x, I), an assignment (see ``decide``)."""
    k = toks.index("\\in")
    lhs, rhs = toks[:k], toks[k + 1 :]
    if len(lhs) != 1 or not (len(lhs[0]) == 1 and lhs[0].isalpha()) or toks.count("\\in") != 1:
        raise Decline
    interval = _structure(rhs)
    if interval.kind != "interval":
        raise Decline
    return Fingerprint("in", (), (lhs[0].lower(), interval))


def _assignment(toks: list[str]) -> Fingerprint:
    """An equation with one ``=`` between scalars: "assign" when the left side is one letter
    (``y = 2x + 1``), else "equation" (``2x = 5``); items (right-hand side, lhs - rhs). math-verify
    compares an assignment with a non-equation through its right-hand side, two equations through
    lhs - rhs (see ``decide``)."""
    k = toks.index("=")
    lhs, rhs = toks[:k], toks[k + 1 :]
    if not lhs or "=" in rhs or "\\pm" in toks:
        raise Decline
    value = _scalar(rhs)
    left = _scalar(lhs)
    diff = add(left, value, -1)
    if not diff.symbols or all(abs(v - diff.vals[0]) < 1e-20 for v in diff.vals):
        raise Decline  # "x = x + 1": sympy may evaluate the Eq itself to True / False
    if len(lhs) == 1 and len(lhs[0]) == 1 and lhs[0].isalpha():
        return Fingerprint("assign", (value, diff), (lhs[0].lower(),))
    return Fingerprint("equation", (value, diff))


def _plus_minus(toks: list[str]) -> Fingerprint:
    """``a \\pm b`` at the top level: latex2sympy's set {a - b, a + b} (b is all that follows)."""
    k = toks.index("\\pm")
    if toks.count("\\pm") != 1 or len(_split_top(toks)) != 1:
        raise Decline
    head, tail = toks[:k], toks[k + 1 :]
    if _depth_at(toks, k) != 0:
        raise Decline
    b = _scalar(tail)
    if not head:
        return Fingerprint("set", (neg(b), b))
    a = _scalar(head)
    return Fingerprint("set", (add(a, b, -1), add(a, b)))


def _depth_at(toks: list[str], k: int) -> int:
    depth = 0
    for t in toks[:k]:
        if t in ("(", "[", "{", "\\{"):
            depth += 1
        elif t in (")", "]", "}", "\\}"):
            depth -= 1
    return depth


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


# ----------------------------------------------------------------------------- entry point


def fingerprint(answer: str) -> Fingerprint | None:
    """The fingerprint of a math answer, or None when it is outside the fast grammar.

    The grammar is applied to the LaTeX that math-verify's parser itself receives (after
    math-verify's own rewriting: units dropped, ``\\mathrm`` -> ``\\text``, "and" -> ",", ...; see
    ``rzero_bench.grading.mvtext``); answers latex2sympy would read with complex symbols are left out.
    """
    latex = latex_seen_by_parser(prepare_for_math_verify(answer))
    if latex is None or len(latex) > _MAX_LEN or is_complex(latex):
        return None
    try:
        return _parse(latex)
    except (Decline, ValueError, ZeroDivisionError, OverflowError, ArithmeticError, RecursionError):
        return None
