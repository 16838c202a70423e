"""The micro arithmetic world: problems, worked solutions, an exact oracle and the held-out set.

Pure Python (no torch). Difficulty levels (``/work/shared/notes/micro-world.md``):

====  ==================================================================================
L1    one-digit ``a+b``
L2    two-digit ``a+b`` or ``a-b`` (``a >= b``)
L3    two-digit, two operations (``+``/``-``), every partial result >= 0
L4    three-digit ``a±b`` or two-digit × one-digit
L5    three operations (``+ - * /``) with at least one pair of parentheses; every partial
      result an integer in [0, 999], division only when exact
====  ==================================================================================

Answers are computed by construction and checked by :func:`safe_eval`, an ``ast`` walker that
accepts integer literals, ``+ - * /``, unary minus/plus and parentheses only: no names, calls,
attributes, powers or floats, with limits on length, literal size, node count and intermediate
magnitude. Nothing is ever passed to Python's ``eval``/``exec``.

:func:`solve` is the ``exact-arith`` oracle for ``label-acc``: it extracts the expression from a
question written by a model ("What is 23+45*2?", "Compute (12-5)*3.") and returns the exact answer
as a string, or None when the question is not a pure arithmetic question.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "LEVELS",
    "PRETRAIN_LEVEL_WEIGHTS",
    "Problem",
    "UnsafeExpression",
    "challenger_example",
    "difficulty",
    "direct_solution",
    "extract_expression",
    "generate_problem",
    "iter_problems",
    "micro_arith_docs",
    "problem_from_expression",
    "safe_eval",
    "solve",
    "worked_solution",
]

LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)
PRETRAIN_LEVEL_WEIGHTS: tuple[float, ...] = (0.2, 0.35, 0.25, 0.12, 0.08)

# Question phrasings; ``{e}`` is the expression. Shared by the corpus and the held-out set.
PHRASINGS: tuple[str, ...] = (
    "What is {e}?",
    "Compute {e}.",
    "Calculate {e}.",
    "Evaluate {e}.",
    "What is the value of {e}?",
    "Find {e}.",
)

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


# ----------------------------------------------------------------------------- expression trees
@dataclass(frozen=True)
class _Num:
    value: int


@dataclass(frozen=True)
class _Bin:
    op: str
    left: _Num | _Bin
    right: _Num | _Bin


_Node = _Num | _Bin


def _apply(op: str, a: Fraction, b: Fraction) -> Fraction:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        raise ZeroDivisionError("division by zero")
    return a / b


def _value(node: _Node) -> Fraction:
    if isinstance(node, _Num):
        return Fraction(node.value)
    return _apply(node.op, _value(node.left), _value(node.right))


def _render(node: _Node) -> str:
    """Render with only the parentheses the precedence requires."""
    if isinstance(node, _Num):
        return str(node.value)
    p = _PREC[node.op]
    left = _render(node.left)
    if isinstance(node.left, _Bin) and _PREC[node.left.op] < p:
        left = f"({left})"
    right = _render(node.right)
    if isinstance(node.right, _Bin) and (
        _PREC[node.right.op] < p or (_PREC[node.right.op] == p and node.op in "-/")
    ):
        right = f"({right})"
    return f"{left}{node.op}{right}"


def _steps(node: _Node, out: list[str]) -> int:
    """Evaluate bottom-up, left to right, appending "a op b = r." lines; returns the value."""
    if isinstance(node, _Num):
        return node.value
    a = _steps(node.left, out)
    b = _steps(node.right, out)
    r = _value(_Bin(node.op, _Num(a), _Num(b)))
    if r.denominator != 1:
        raise ValueError("non-integer partial result")
    out.append(f"{a}{node.op}{b} = {int(r)}.")
    return int(r)


def _partials(node: _Node) -> list[Fraction]:
    if isinstance(node, _Num):
        return []
    return _partials(node.left) + _partials(node.right) + [_value(node)]


@dataclass(frozen=True)
class Problem:
    """One arithmetic problem: its expression, exact integer answer, level and phrasing."""

    expression: str
    answer: int
    level: int
    question: str
    steps: tuple[str, ...]


def _make(node: _Node, level: int, rng: random.Random) -> Problem:
    steps: list[str] = []
    answer = _steps(node, steps)
    expr = _render(node)
    return Problem(expr, answer, level, rng.choice(PHRASINGS).format(e=expr), tuple(steps))


# ----------------------------------------------------------------------------- generators
def _gen_l1(rng: random.Random) -> _Node:
    return _Bin("+", _Num(rng.randint(0, 9)), _Num(rng.randint(0, 9)))


def _gen_l2(rng: random.Random) -> _Node:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    op = rng.choice("+-")
    if op == "-" and a < b:
        a, b = b, a
    return _Bin(op, _Num(a), _Num(b))


def _gen_l3(rng: random.Random) -> _Node:
    while True:
        a, b, c = (rng.randint(10, 99) for _ in range(3))
        node = _Bin(rng.choice("+-"), _Bin(rng.choice("+-"), _Num(a), _Num(b)), _Num(c))
        if all(v >= 0 for v in _partials(node)):
            return node


def _gen_l4(rng: random.Random) -> _Node:
    if rng.random() < 0.5:
        a, b = rng.randint(100, 999), rng.randint(100, 999)
        op = rng.choice("+-")
        if op == "-" and a < b:
            a, b = b, a
        return _Bin(op, _Num(a), _Num(b))
    x, y = _Num(rng.randint(10, 99)), _Num(rng.randint(2, 9))
    return _Bin("*", x, y) if rng.random() < 0.5 else _Bin("*", y, x)


def _leaf5(rng: random.Random) -> _Num:
    return _Num(rng.randint(1, 9) if rng.random() < 0.5 else rng.randint(10, 99))


def _shape5(rng: random.Random, n_ops: int) -> _Node:
    if n_ops == 0:
        return _leaf5(rng)
    k = rng.randint(0, n_ops - 1)
    return _Bin(rng.choice("+-*/"), _shape5(rng, k), _shape5(rng, n_ops - 1 - k))


def _ok5(node: _Node) -> bool:
    try:
        parts = _partials(node)
    except ZeroDivisionError:
        return False
    if not all(v.denominator == 1 and 0 <= v <= 999 for v in parts):
        return False

    def small_mul(n: _Node) -> bool:  # products have a one-digit operand value
        if isinstance(n, _Num):
            return True
        if n.op == "*" and min(abs(_value(n.left)), abs(_value(n.right))) > 9:
            return False
        if n.op == "/" and _value(n.right) == 1:
            return False
        return small_mul(n.left) and small_mul(n.right)

    return small_mul(node) and "(" in _render(node)


def _gen_l5(rng: random.Random) -> _Node:
    while True:
        node = _shape5(rng, 3)
        # the rendering must read back as the same tree, so the steps follow the written order
        if _ok5(node) and _parse_tree(_render(node)) == node:
            return node


def _tree_of(node: ast.AST) -> _Node:
    if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 0:
        return _Num(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _ALLOWED_BINOPS:
        return _Bin(_ALLOWED_BINOPS[type(node.op)], _tree_of(node.left), _tree_of(node.right))
    raise UnsafeExpression(f"{type(node).__name__} is not allowed in a worked solution")


def _parse_tree(expr: str) -> _Node:
    safe_eval(expr)  # validates (size limits, allowed syntax) before building the tree
    return _tree_of(ast.parse(expr.strip(), mode="eval").body)


def problem_from_expression(expr: str, *, level: int = 0, question: str | None = None) -> Problem:
    """A :class:`Problem` (with worked steps) for any non-negative integer expression.

    Raises :class:`UnsafeExpression` for text :func:`safe_eval` refuses, unary minus, or a
    non-integer partial result.
    """
    tree = _parse_tree(expr)
    steps: list[str] = []
    try:
        answer = _steps(tree, steps)
    except (ValueError, ZeroDivisionError):
        raise UnsafeExpression("a partial result is not an integer") from None
    text = _render(tree)
    return Problem(text, answer, level, question or f"What is {text}?", tuple(steps))


_GENERATORS = {1: _gen_l1, 2: _gen_l2, 3: _gen_l3, 4: _gen_l4, 5: _gen_l5}


def generate_problem(level: int, rng: random.Random) -> Problem:
    """Draw one problem of ``level`` (1-5) from ``rng``."""
    if level not in _GENERATORS:
        raise ValueError(f"unknown level {level!r}; levels are 1-5")
    return _make(_GENERATORS[level](rng), level, rng)


def iter_problems(
    rng: random.Random,
    weights: Sequence[float] = PRETRAIN_LEVEL_WEIGHTS,
    exclude: frozenset[str] | set[str] = frozenset(),
) -> Iterator[Problem]:
    """Endless stream of problems with levels drawn by ``weights``; skips excluded expressions."""
    while True:
        level = rng.choices(LEVELS, weights=weights)[0]
        p = generate_problem(level, rng)
        if p.expression not in exclude:
            yield p


# ----------------------------------------------------------------------------- writers
def worked_solution(p: Problem) -> str:
    """Step-by-step solution: ``"45*2 = 90. 23+90 = 113. \\boxed{113}"``."""
    return " ".join(p.steps) + f" \\boxed{{{p.answer}}}"


def direct_solution(p: Problem) -> str:
    """Answer without steps: ``"\\boxed{113}"``."""
    return f"\\boxed{{{p.answer}}}"


def _plan(p: Problem) -> str:
    ops = len(p.steps)
    digits = max(len(n) for n in re.findall(r"\d+", p.expression))
    word = "operation" if ops == 1 else "operations"
    paren = " and parentheses" if "(" in p.expression else ""
    return f"A problem with {ops} {word} on {digits}-digit numbers{paren}."


def challenger_example(p: Problem) -> str:
    """A challenger turn: a short plan, ``<question>...</question>``, then ``\\boxed{answer}``."""
    return f"{_plan(p)}\n<question>{p.question}</question>\n\\boxed{{{p.answer}}}"


# ----------------------------------------------------------------------------- oracle
class UnsafeExpression(ValueError):
    """The text is not an expression :func:`safe_eval` accepts (one-line reason)."""


MAX_EXPR_CHARS = 200
MAX_LITERAL_DIGITS = 12
MAX_NODES = 64
MAX_MAGNITUDE = 10**30

_ALLOWED_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def safe_eval(expr: str) -> int | Fraction:
    """Exact value of an integer arithmetic expression (``+ - * /``, unary ±, parentheses).

    Returns an ``int`` when the value is whole, else a ``Fraction``. Raises
    :class:`UnsafeExpression` for anything else (names, calls, attributes, powers, floats,
    oversized literals or results, division by zero). Never executes the text.
    """
    if not isinstance(expr, str):
        raise UnsafeExpression("expression must be a string")
    if len(expr) > MAX_EXPR_CHARS:
        raise UnsafeExpression(f"expression longer than {MAX_EXPR_CHARS} characters")
    if not re.fullmatch(r"[0-9+\-*/() \t]*", expr):
        raise UnsafeExpression("only digits, + - * / and parentheses are allowed")
    if re.search(rf"\d{{{MAX_LITERAL_DIGITS + 1},}}", expr):
        raise UnsafeExpression(f"a number has more than {MAX_LITERAL_DIGITS} digits")
    if "**" in expr or "//" in expr:
        raise UnsafeExpression("only + - * / are allowed")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise UnsafeExpression(f"not a valid expression ({type(e).__name__})") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise UnsafeExpression(f"expression has more than {MAX_NODES} nodes")
    value = _eval_node(tree.body)
    return int(value) if value.denominator == 1 else value


def _eval_node(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant):
        if type(node.value) is not int:
            raise UnsafeExpression("only integer literals are allowed")
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval_node(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _ALLOWED_BINOPS:
        a, b = _eval_node(node.left), _eval_node(node.right)
        try:
            r = _apply(_ALLOWED_BINOPS[type(node.op)], a, b)
        except ZeroDivisionError:
            raise UnsafeExpression("division by zero") from None
        if abs(r.numerator) > MAX_MAGNITUDE or r.denominator > MAX_MAGNITUDE:
            raise UnsafeExpression("intermediate result too large")
        return r
    raise UnsafeExpression(f"{type(node).__name__} is not allowed")


def format_value(value: int | Fraction) -> str:
    """Canonical answer string: ``"113"``, ``"-5"``, ``"7/2"``."""
    if isinstance(value, Fraction) and value.denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    return str(int(value))


# Words a pure arithmetic question may contain besides its expression.
_FILLER = {
    "what", "whats", "is", "are", "the", "value", "of", "compute", "calculate", "evaluate", "find",
    "simplify", "work", "out", "solve", "result", "answer", "give", "determine", "how", "much",
    "please", "equals", "equal", "to", "expression", "a", "an", "number", "this", "following",
    "and", "with", "by", "exact", "integer", "final", "your", "in", "boxed",
}  # fmt: skip
_WORD_OPS = [
    (r"\bmultiplied\s+by\b", "*"),
    (r"\bdivided\s+by\b", "/"),
    (r"\btimes\b", "*"),
    (r"\bplus\b", "+"),
    (r"\bminus\b", "-"),
    (r"\bover\b", "/"),
]
_SYMBOLS = {
    "×": "*", "·": "*", "⋅": "*", "∗": "*", "÷": "/", "−": "-", "–": "-", "—": "-", "＋": "+",
    "\\times": "*", "\\cdot": "*", "\\div": "/", "\\left": "", "\\right": "", "\\(": " ", "\\)": " ",
    "\\[": " ", "\\]": " ", "$": " ", "{": "(", "}": ")",
}  # fmt: skip
_EXPR_RUN = re.compile(r"[0-9+\-*/()\s]*\d[0-9+\-*/()\s]*")


def extract_expression(question: str) -> str | None:
    """The arithmetic expression of a pure arithmetic question, else None.

    The question may wrap the expression in phrases such as "What is", "Compute", "Find the value
    of", LaTeX ``$...$`` and ``\\times``/``\\div``, or words ("plus", "times"); any other content
    (variables, units, a second expression, words outside the allowed filler) yields None.
    """
    if not isinstance(question, str) or len(question) > 4 * MAX_EXPR_CHARS:
        return None
    text = question.strip()
    for sym, rep in _SYMBOLS.items():
        text = text.replace(sym, rep)
    for pat, rep in _WORD_OPS:
        text = re.sub(pat, f" {rep} ", text, flags=re.IGNORECASE)
    # " x " between numbers as multiplication ("7 x 8")
    text = re.sub(r"(?<=[\d)])\s+[xX]\s+(?=[\d(])", "*", text)
    runs = [m for m in _EXPR_RUN.finditer(text) if re.search(r"\d", m.group())]
    if len(runs) != 1:
        return None
    m = runs[0]
    expr = m.group().strip()
    rest = (text[: m.start()] + " " + text[m.end() :]).lower()
    rest = rest.replace("=", " ").replace("?", " ").replace(".", " ").replace(":", " ").replace(",", " ")
    rest = rest.replace("'", "").replace("!", " ")
    words = rest.split()
    if any(w not in _FILLER for w in words):
        return None
    if not re.search(r"\d\s*\)*\s*[+\-*/]\s*\(*\s*-?\d", expr):
        return None  # a lone number is not a problem
    return expr


def solve(question: str) -> str | None:
    """Exact answer of a pure arithmetic question as a string (``"113"``, ``"7/2"``), else None."""
    expr = extract_expression(question)
    if expr is None:
        return None
    try:
        return format_value(safe_eval(expr))
    except UnsafeExpression:
        return None


def difficulty(question: str) -> float | None:
    """Difficulty score of a pure arithmetic question, None if it is not one.

    ``operations + (longest operand digits - 1) + 0.5 * (multiplications and divisions)
    + 0.5 * (parenthesis pairs)``. Roughly: L1 = 1, L2 = 2, L3 = 3, L4 = 2.5-3, L5 = 4.5-6.
    """
    expr = extract_expression(question)
    if expr is None or solve(question) is None:
        return None
    numbers = re.findall(r"\d+", expr)
    ops = len(re.findall(r"(?<=[\d)])\s*[+\-*/]", expr))
    muldiv = len(re.findall(r"[*/]", expr))
    parens = expr.count("(")
    longest = max(len(n.lstrip("0") or "0") for n in numbers)
    return float(ops + (longest - 1) + 0.5 * muldiv + 0.5 * parens)


# ----------------------------------------------------------------------------- held-out set
HELDOUT_SEED = 1234


def _stream_rng(stream: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"rzero-micro/{stream}/{seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _heldout_problems(seed: int, per_level: int) -> list[Problem]:
    rng = _stream_rng("heldout", seed)
    out: list[Problem] = []
    for level in LEVELS:
        seen: set[str] = set()
        n = 0
        while n < per_level:
            p = generate_problem(level, rng)
            # level 1 has only 100 distinct problems: repeats are allowed once all are drawn
            if p.expression in seen and not (level == 1 and len(seen) >= 100):
                continue
            seen.add(p.expression)
            out.append(p)
            n += 1
    return out


DEV_POOL_PER_LEVEL = 1000  # the held-out pool excluded from pretraining (see heldout_expressions)


def _dev_problems(seed: int, per_level: int, test_per_level: int) -> list[Problem]:
    """Levels 2-5: the first ``per_level`` problems of the held-out pool (never in the pretraining
    corpus) that are not in the test set; level 1 (100 distinct problems, all in the test set):
    drawn from the "dev" stream, so it repeats test problems."""
    test = {p.expression for p in _heldout_problems(seed, test_per_level)}
    pool = [
        p
        for p in _heldout_problems(seed, max(DEV_POOL_PER_LEVEL, test_per_level + per_level))
        if p.level != 1 and p.expression not in test
    ]
    rng = _stream_rng("dev", seed)
    out = [generate_problem(1, rng) for _ in range(per_level)]
    for level in LEVELS[1:]:
        picked = [p for p in pool if p.level == level][:per_level]
        if len(picked) < per_level:
            raise ValueError(f"the held-out pool has only {len(picked)} level-{level} dev problems")
        out.extend(picked)
    return out


def micro_arith_docs(
    seed: int = HELDOUT_SEED, per_level: int = 200, split: str = "test", test_per_level: int = 200
) -> list[dict[str, object]]:
    """The held-out micro_arith set: ``per_level`` distinct problems per level 1-5, deterministic.

    Fields: ``id`` ("L2-0007"), ``question``, ``answer`` (string), ``level`` (int). Drawn from the
    "heldout" seed stream; the pretraining corpus uses another stream and excludes these
    expressions at levels 2-5 (level 1 has only 100 distinct problems and repeats past that).

    ``split="dev"``: a dev split for choosing iterations, disjoint from the test split of
    ``test_per_level`` items at levels 2-5 and, like it, never in the pretraining corpus (it comes
    from the same excluded pool); level 1 cannot be disjoint (its problems repeat).
    """
    if split not in ("test", "dev"):
        raise ValueError(f"split must be 'test' or 'dev', got {split!r}")
    docs: list[dict[str, object]] = []
    counts: dict[int, int] = {}
    problems = (
        _heldout_problems(seed, per_level)
        if split == "test"
        else _dev_problems(seed, per_level, test_per_level)
    )
    for p in problems:
        i = counts.get(p.level, 0)
        counts[p.level] = i + 1
        docs.append(
            {"id": f"L{p.level}-{i:04d}", "question": p.question, "answer": str(p.answer), "level": p.level}
        )
    return docs


@functools.lru_cache(maxsize=4)  # a few seconds of generation, asked for several times per build
def heldout_expressions(seed: int = HELDOUT_SEED, per_level: int = 1000) -> frozenset[str]:
    """Expressions (levels 2-5) of the held-out set, excluded from the pretraining corpus."""
    return frozenset(p.expression for p in _heldout_problems(seed, per_level) if p.level != 1)
