"""The micro arithmetic world: generator determinism, the exact oracle, hostile inputs, phrasings."""

from __future__ import annotations

import builtins
import operator
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable
from fractions import Fraction

import pytest

from rzero_bench.micro import arith
from rzero_bench.micro.arith import UnsafeExpression, safe_eval, solve

# ----------------------------------------------------------------------------- generator


def test_generate_problem_is_deterministic_for_a_seed() -> None:
    a = [arith.generate_problem(level, random.Random(7)) for level in arith.LEVELS]
    b = [arith.generate_problem(level, random.Random(7)) for level in arith.LEVELS]
    assert a == b
    c = [arith.generate_problem(level, random.Random(8)) for level in arith.LEVELS]
    assert a != c


@pytest.mark.parametrize("level", arith.LEVELS)
def test_levels_follow_their_definition(level: int) -> None:
    rng = random.Random(level)
    for _ in range(300):
        p = arith.generate_problem(level, rng)
        numbers = [int(n) for n in re.findall(r"\d+", p.expression)]
        ops = re.findall(r"[+\-*/]", p.expression)
        assert p.level == level
        assert safe_eval(p.expression) == p.answer
        assert isinstance(p.answer, int) and p.answer >= 0
        if level == 1:
            assert ops == ["+"] and all(n <= 9 for n in numbers)
        elif level == 2:
            assert len(ops) == 1 and ops[0] in "+-" and all(10 <= n <= 99 for n in numbers)
        elif level == 3:
            assert len(ops) == 2 and set(ops) <= {"+", "-"} and all(10 <= n <= 99 for n in numbers)
        elif level == 4:
            assert len(ops) == 1
            if ops[0] == "*":
                assert sorted(len(str(n)) for n in numbers) == [1, 2]
            else:
                assert all(100 <= n <= 999 for n in numbers)
        else:
            assert len(ops) == 3 and "(" in p.expression
            assert len(p.steps) == 3


def test_worked_solution_steps_are_correct_and_end_in_the_answer() -> None:
    rng = random.Random(3)
    for _ in range(500):
        p = next(arith.iter_problems(rng))
        text = arith.worked_solution(p)
        assert text.endswith(f"\\boxed{{{p.answer}}}")
        steps = re.findall(r"(\d+[+\-*/]\d+) = (\d+)\.", text)
        assert len(steps) == len(p.steps) >= 1
        for expr, value in steps:
            assert safe_eval(expr) == int(value)
        assert int(steps[-1][1]) == p.answer
        assert arith.direct_solution(p) == f"\\boxed{{{p.answer}}}"


def test_l5_steps_follow_the_written_order() -> None:
    p = arith.problem_from_expression("(2+27+8)*5")
    assert p.steps == ("2+27 = 29.", "29+8 = 37.", "37*5 = 185.")
    assert (
        arith.worked_solution(arith.problem_from_expression("23+45*2"))
        == "45*2 = 90. 23+90 = 113. \\boxed{113}"
    )


def test_challenger_example_format() -> None:
    rng = random.Random(5)
    for level in arith.LEVELS:
        p = arith.generate_problem(level, rng)
        text = arith.challenger_example(p)
        questions = re.findall(r"<question>(.*?)</question>", text, flags=re.S)
        assert questions == [p.question]
        assert text.rstrip().endswith(f"\\boxed{{{p.answer}}}")
        assert solve(questions[0]) == str(p.answer)


def test_iter_problems_honours_exclusions() -> None:
    exclude = {f"{a}+{b}" for a in range(10) for b in range(10) if (a + b) % 2}
    stream = arith.iter_problems(random.Random(1), weights=(1, 0, 0, 0, 0), exclude=exclude)
    for _ in range(300):
        assert next(stream).expression not in exclude


# ----------------------------------------------------------------------------- held-out set


def test_heldout_docs_are_deterministic_and_well_formed() -> None:
    docs = arith.micro_arith_docs(seed=1234, per_level=200)
    assert docs == arith.micro_arith_docs(seed=1234, per_level=200)
    assert docs != arith.micro_arith_docs(seed=99, per_level=200)
    assert len(docs) == 1000
    assert len({d["id"] for d in docs}) == 1000
    for d in docs:
        assert set(d) == {"id", "question", "answer", "level"}
        assert solve(str(d["question"])) == d["answer"]
    for level in (2, 3, 4, 5):
        questions = [d["question"] for d in docs if d["level"] == level]
        exprs = {arith.extract_expression(str(q)) for q in questions}
        assert len(questions) == 200 and len(exprs) == 200
    assert len({d["question"] for d in docs if d["level"] == 1}) >= 95


def test_heldout_is_excluded_from_the_pretraining_stream() -> None:
    held = arith.heldout_expressions(per_level=200)
    docs = arith.micro_arith_docs(per_level=200)
    assert {arith.extract_expression(str(d["question"])) for d in docs if d["level"] != 1} == held
    stream = arith.iter_problems(random.Random("rzero-micro/phase1/0"), exclude=held)
    assert not any(next(stream).expression in held for _ in range(3000))


# ----------------------------------------------------------------------------- oracle vs Python arithmetic
_OPS: dict[str, Callable[[Fraction, Fraction], Fraction]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


def _random_expr(rng: random.Random, depth: int) -> tuple[str, Fraction]:
    """A random expression string and its value computed with operator functions (no eval)."""
    if depth == 0 or rng.random() < 0.3:
        v = rng.randint(0, 999)
        if rng.random() < 0.1:
            return f"-{v}", Fraction(-v)
        return str(v), Fraction(v)
    op = rng.choice("+-*/")
    left, lv = _random_expr(rng, depth - 1)
    right, rv = _random_expr(rng, depth - 1)
    if op == "/" and rv == 0:
        right, rv = "7", Fraction(7)
    return f"({left}){op}({right})", _OPS[op](lv, rv)


def test_safe_eval_matches_python_arithmetic() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        text, value = _random_expr(rng, 3)
        if len(text) > arith.MAX_EXPR_CHARS:
            continue
        got = safe_eval(text)
        assert got == value, text
        assert isinstance(got, int) == (value.denominator == 1)


def test_safe_eval_precedence_and_unary() -> None:
    assert safe_eval("23+45*2") == 113
    assert safe_eval("(12-5)*3") == 21
    assert safe_eval("-3+-(2*-4)") == 5
    assert safe_eval("7/2") == Fraction(7, 2)
    assert safe_eval(" 8 / 4 ") == 2 and isinstance(safe_eval("8/4"), int)
    assert safe_eval("10-4-3") == 3
    assert safe_eval("100/10/5") == 2


# ----------------------------------------------------------------------------- hostile inputs
HOSTILE = [
    "__import__('os').system('touch /tmp/rzero_pwned')",
    "_rzero_canary()",
    "_rzero_canary",
    "2**99999999",
    "2**10",
    "9" * 5000,
    "1" + "0" * 13,
    "999999999999*999999999999*999999999999",
    "(1).real",
    "(1).__class__",
    "abs(-1)",
    "x+1",
    "lambda: 1",
    "[1][0]",
    "'a'*3",
    "1.5+1",
    "1e5",
    "True+1",
    "1 if 1 else 2",
    "1<2",
    "1|2",
    "1^2",
    "1%2",
    "7//2",
    "1/0",
    "(x:=1)",
    "[i for i in range(10**9)]",
    "().__class__.__bases__[0].__subclasses__()",
    "1+1; import os",
    "1+\n__import__('os')",
    "(" * 150 + "1" + ")" * 150,
    "",
    "   ",
    "0x10+1",
    "1_000+1",
]


@pytest.fixture
def canary(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(builtins, "_rzero_canary", lambda: calls.append("called"), raising=False)
    real_import = builtins.__import__

    def spy_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "os":
            calls.append("import os")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", spy_import)
    return calls


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_inputs_are_refused_without_running_anything(text: str, canary: list[str]) -> None:
    t0 = time.perf_counter()
    with pytest.raises(UnsafeExpression):
        safe_eval(text)
    assert solve(text) is None
    assert solve(f"What is {text}?") is None
    assert arith.difficulty(f"What is {text}?") is None
    assert time.perf_counter() - t0 < 1.0
    assert canary == []


def test_safe_eval_rejects_non_strings() -> None:
    with pytest.raises(UnsafeExpression):
        safe_eval(12)  # type: ignore[arg-type]
    assert solve(None) is None  # type: ignore[arg-type]


def test_oversized_question_is_not_solved() -> None:
    assert solve("What is " + "+".join(["1"] * 500) + "?") is None


# ----------------------------------------------------------------------------- solve phrasings
@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is 23+45*2?", "113"),
        ("Compute (12-5)*3.", "21"),
        ("Calculate 81-22-55.", "4"),
        ("Evaluate 90/(5+4)*3.", "30"),
        ("What is the value of 52+41+51?", "144"),
        ("Find 7*(6+3)-9.", "54"),
        ("what is 7 + 8", "15"),
        ("23 + 45 = ?", "68"),
        ("What is 7 times 8?", "56"),
        ("What is 12 plus 30 minus 2?", "40"),
        ("What is 84 divided by 4?", "21"),
        ("What is 6 multiplied by 7?", "42"),
        ("What is 7 x 8?", "56"),
        ("What is $12 \\times 3$?", "36"),
        ("Compute $(4+5) \\cdot 2$.", "18"),
        ("What is 7 ÷ 2?", "7/2"),
        ("What is 10 − 3?", "7"),
        ("Simplify: 3*(2+1).", "9"),
        ("Work out 100-1.", "99"),
        ("Please compute the following expression: 5*5-1", "24"),
        ("What is -5+3?", "-2"),
        ("Calculate 2-9.", "-7"),
    ],
)
def test_solve_phrasings(question: str, answer: str) -> None:
    assert solve(question) == answer


@pytest.mark.parametrize(
    "question",
    [
        "What is 5?",
        "Let x be 3. What is x+2?",
        "If a train travels 60 km in 2 hours, what is its speed?",
        "Alice has 3 apples and buys 4 more. How many apples does she have?",
        "What is 2+3? Also compute 4+5.",
        "What is 2+3 and 4+5?",
        "What is 2^3?",
        "Find the remainder of 17 divided by 5 when 17 is prime.",
        "What is the square root of 16+9?",
        "What is 3/0?",
        "What is 1.5+2?",
        "Compute \\frac{1}{2}+1.",
        "",
        "?",
    ],
)
def test_solve_refuses_non_arithmetic_questions(question: str) -> None:
    assert solve(question) is None


# ----------------------------------------------------------------------------- difficulty
def test_difficulty_orders_levels() -> None:
    docs = arith.micro_arith_docs(per_level=100)
    means = {}
    for level in arith.LEVELS:
        scores = [arith.difficulty(str(d["question"])) for d in docs if d["level"] == level]
        assert all(s is not None for s in scores)
        means[level] = sum(s for s in scores if s is not None) / len(scores)
    assert means[1] < means[2] < means[3] < means[5]
    assert means[2] < means[4] < means[5]
    assert arith.difficulty("What is 2+3?") == 1.0
    assert arith.difficulty("Alice has 3 apples.") is None


# ----------------------------------------------------------------------------- packaging
def test_arith_does_not_import_torch() -> None:
    code = (
        "import sys, rzero_bench.micro, rzero_bench.micro.arith as a; a.solve('What is 1+1?');"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- pretraining helpers (no torch)
def test_recipe_steps_are_fixed_by_the_nominal_budget() -> None:
    from rzero_bench.micro.pretrain import make_recipe

    a, b = make_recipe("s", 0), make_recipe("s", 0)
    assert a == b
    assert a.phase1.steps + a.phase2.steps == int(9.5 * 60 * 12_500 // a.tokens_per_step)
    assert (a.phase1.steps, a.phase2.steps) == (1373, 366)
    assert a.phase2.direct_fraction == 0.6 and a.phase1.direct_fraction == 0.0
    short = make_recipe("s", 0, minutes=1.0)
    assert short.phase1.steps + short.phase2.steps < a.phase1.steps + a.phase2.steps
    assert make_recipe("s", 0, phase1_steps=30, phase2_steps=5).phase1.steps == 30


def test_demo_budget_halves_the_batch_and_keeps_phase_two_tokens() -> None:
    from rzero_bench.micro.pretrain import _recipe_dict, make_recipe
    from rzero_bench.micro.recipe import parse_budget
    from rzero_bench.training.tiny import recipe_hash

    default, demo = make_recipe("s", 0), make_recipe("s", 0, budget="demo")
    assert demo == make_recipe("s", 0, budget="demo")
    assert (demo.batch_blocks, demo.tokens_per_step) == (8, 2048) and default.tokens_per_step == 4096
    # phase 1: the default's steps (half its tokens); phase 2: the default's tokens (twice its steps)
    assert (demo.phase1.steps, demo.phase2.steps) == (1373, 732)
    assert demo.phase2.steps * demo.tokens_per_step == default.phase2.steps * default.tokens_per_step
    assert (demo.phase1.lr, demo.phase2.lr, demo.phase2.direct_fraction) == (1.4e-3, 1e-3, 0.6)
    assert default.phase1.lr == 2e-3
    assert (demo.phase1.warmup, demo.phase2.warmup) == (50, 10)
    tokens = lambda r: (r.phase1.steps + r.phase2.steps) * r.tokens_per_step  # noqa: E731
    assert tokens(demo) / tokens(default) == pytest.approx(0.605, abs=0.005)
    # its own cache key (a different base), and the seed still counts
    assert recipe_hash(_recipe_dict(demo)) != recipe_hash(_recipe_dict(default))
    assert make_recipe("s", 1, budget="demo").seed == 1
    # explicit step counts still override (tests)
    small = make_recipe("s", 0, budget="demo", phase1_steps=3, phase2_steps=2)
    assert (small.phase1.steps, small.phase2.steps, small.batch_blocks) == (3, 2, 8)
    assert parse_budget("demo") == (None, "demo") and parse_budget(" 4 ") == (4.0, None)


def test_recipe_rejects_bad_input() -> None:
    from rzero_bench.errors import UserError
    from rzero_bench.micro.pretrain import make_recipe
    from rzero_bench.micro.recipe import parse_budget

    with pytest.raises(UserError):
        make_recipe("huge")
    with pytest.raises(UserError):
        make_recipe("s", minutes=-1)
    with pytest.raises(UserError, match="named budgets: demo"):
        make_recipe("s", budget="fast")
    with pytest.raises(UserError, match="not both"):
        make_recipe("s", minutes=4, budget="demo")
    with pytest.raises(UserError, match=r"bad model spec 'micro:s@fast'.*minutes \(micro:s@4\) or one of: demo"):
        parse_budget("fast", "micro:s@fast")


def test_boxed_answer_and_majority() -> None:
    from rzero_bench.micro.pretrain import boxed_answer, majority

    assert boxed_answer("2+3 = 5. \\boxed{5}") == "5"
    assert boxed_answer("\\boxed{4} then \\boxed{ 6 }") == "6"
    assert boxed_answer("no answer") is None
    assert majority(["5", None, "6", "6", "5"]) == "5"
    assert majority([None, None]) is None
    assert majority(["7", "8", "8"]) == "8"


def test_packing_keeps_examples_whole_and_masks_prompts() -> None:
    from rzero_bench.micro.pretrain import PhaseSpec, _batches, make_recipe

    class FakeEncoder:
        def encode(self, role: str, question: str | None, completion: str) -> tuple[list[int], list[int]]:
            n = len(completion) % 7 + 1
            return [1] * (10 if role == "solver" else 40), [2] * n + [3]

    recipe = make_recipe("s", 0, phase1_steps=1, phase2_steps=0)
    rng = random.Random(0)
    from rzero_bench.micro.pretrain import _examples

    examples = _examples(rng, PhaseSpec(1, 1e-3, 1, 0.5), arith.PRETRAIN_LEVEL_WEIGHTS, frozenset())
    inputs, labels, n_loss = next(_batches(FakeEncoder(), examples, recipe, pad_id=0))  # type: ignore[arg-type]
    assert len(inputs) == recipe.batch_blocks
    total_loss = 0
    for ids, lab in zip(inputs, labels, strict=True):
        assert len(ids) == len(lab) == recipe.block_len
        assert all(lab_i == -100 for i, lab_i in zip(ids, lab, strict=True) if i in (0, 1))
        assert all(lab_i == i for i, lab_i in zip(ids, lab, strict=True) if i in (2, 3))
        total_loss += sum(1 for x in lab if x != -100)
        # every block ends with a complete example (an eos) before its padding
        body = [i for i in ids if i != 0]
        assert body[-1] == 3
    assert total_loss == n_loss

