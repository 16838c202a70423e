"""Tests for rzero_bench.grading: the answer table, timeouts, hostile input, clustering."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from grading_cases import CASES

from rzero_bench.errors import UserError
from rzero_bench.grading import (
    GraderUnavailable,
    _pool,
    clear_caches,
    equivalence_classes,
    equivalence_classes_many,
    grade,
    grade_many,
    shutdown_pool,
)
from rzero_bench.grading._pool import WorkerPool
from rzero_bench.grading.cheap import decide_pair
from rzero_bench.records import Verdict

KINDS = ("math", "choice", "bbeh", "exact")


@pytest.fixture(scope="module")
def table_verdicts() -> dict[int, Verdict]:
    """Grade the whole table once, batched per kind (the way evaluation calls the grader)."""
    out: dict[int, Verdict] = {}
    for kind in KINDS:
        rows = [(i, c) for i, c in enumerate(CASES) if c[0] == kind]
        verdicts = grade_many([c[1] for _, c in rows], [c[2] for _, c in rows], kind=kind, timeout=10)
        out.update({i: v for (i, _), v in zip(rows, verdicts, strict=True)})
    return out


def test_table_is_big_and_has_both_verdicts() -> None:
    assert len(CASES) >= 80
    assert sum(c[3] for c in CASES) >= 20
    assert sum(not c[3] for c in CASES) >= 20


@pytest.mark.parametrize(
    ("index", "case"), list(enumerate(CASES)), ids=[f"{c[0]}:{c[1]}|{c[2]}" for c in CASES]
)
def test_table(index: int, case: tuple[str, str, str, bool], table_verdicts: dict[int, Verdict]) -> None:
    kind, reference, prediction, expected = case
    v = table_verdicts[index]
    assert v.status == "ok", v
    assert v.correct is expected, v


MATH_CASES = [c for c in CASES if c[0] == "math"]


@pytest.mark.parametrize("case", MATH_CASES, ids=[f"{c[1]}|{c[2]}" for c in MATH_CASES])
def test_fast_path_never_contradicts_the_table(case: tuple[str, str, str, bool]) -> None:
    # the pure-Python fast path may leave a pair to math-verify (None), never decide it otherwise,
    # and its verdict does not depend on which answer is the reference
    _, reference, prediction, expected = case
    decided = decide_pair(reference, prediction)
    assert decided in (None, expected)
    assert decide_pair(prediction, reference) == decided


def test_fast_path_decides_most_of_the_table() -> None:
    decided = [decide_pair(a, b) for _, a, b, _ in MATH_CASES]
    assert sum(d is not None for d in decided) >= 0.6 * len(MATH_CASES)


def test_single_grade_matches_batch() -> None:
    assert grade(reference=r"\frac{1}{2}", prediction="0.5", kind="math").correct is True
    assert grade(reference="(3,4]", prediction="[3,4]", kind="math").correct is False


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("prediction", [None, "", "   "])
def test_no_answer(kind: str, prediction: str | None) -> None:
    assert grade(reference="5", prediction=prediction, kind=kind) == Verdict(
        correct=False, status="ok", method="no_answer"
    )


def test_statuses() -> None:
    v = grade(reference="C", prediction="no letter here", kind="choice")
    assert (v.status, v.correct) == ("unparseable", None)
    v = grade(reference="42", prediction="", kind="math")
    assert v.method == "no_answer"
    v = grade(reference=r"\frac{1}{2}", prediction=r"\frac{", kind="math")
    assert v.status in ("unparseable", "ok") and v.correct is not True
    v = grade(reference="", prediction="1", kind="math")
    assert v.status == "error"


def test_bad_arguments() -> None:
    with pytest.raises(UserError, match="unknown grading kind"):
        grade(reference="1", prediction="1", kind="nope")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="timeout"):
        grade(reference="1", prediction="2", kind="math", timeout=0)
    with pytest.raises(UserError, match="2 references but 1 predictions"):
        grade_many(["1", "2"], ["1"], kind="math")


PATHOLOGICAL = {
    "tower": "9^{9^{9^9}}",
    "factorial": "(10^6)!",
    # ~10k characters of binomials raised to high powers: expanding them takes math-verify far past
    # the timeout on any machine ("(x+1)" * 2000 finished in under 2 s on an idle one)
    "10k-chars": "+".join(f"(x+{i})^{{{i % 97 + 50}}}" for i in range(760)),
}


@pytest.mark.parametrize("prediction", list(PATHOLOGICAL.values()), ids=list(PATHOLOGICAL))
def test_pathological_inputs_time_out_and_pool_recovers(prediction: str) -> None:
    # time the timeout, not the start-up: workers and spare warm (replacements after earlier
    # kills take no job before they are warm)
    assert _pool().wait_ready()
    start = time.monotonic()
    v = grade(reference="5", prediction=prediction, kind="math", timeout=2)
    elapsed = time.monotonic() - start
    assert v.status == "timeout" and v.correct is None, v
    assert elapsed < 3.0
    # functions: the pure-Python fast path leaves them to math-verify, so the pool must answer
    assert grade(reference=r"\sin(2x)", prediction=r"\sin(x+x)", kind="math", timeout=10).correct is True
    assert grade(reference=r"\sin(2x)", prediction=r"\cos(2x)", kind="math", timeout=10).correct is False


def test_timeout_in_a_batch_only_hits_that_item() -> None:
    refs = ["5", r"\frac{1}{2}", "5", r"\sqrt{8}"]
    preds = ["9^{9^{9^9}}", "0.5", r"\sqrt{25}", r"2\sqrt{2}"]
    assert _pool().wait_ready()
    start = time.monotonic()
    vs = grade_many(refs, preds, kind="math", timeout=2)
    assert time.monotonic() - start < 4.0
    assert [v.status for v in vs] == ["timeout", "ok", "ok", "ok"]
    assert [v.correct for v in vs] == [None, True, True, True]


HOSTILE = [
    "__import__('os').system('touch {p}')",
    r"\boxed{__import__('os').system('touch {p}')}",
    "exec(\"open('{p}', 'w')\")",
    "eval(\"__import__('os').system('touch {p}')\")",
    "().__class__.__base__.__subclasses__()",
    "lambda: open('{p}', 'w')",
    r"\text{__import__('os').system('touch {p}')}",
]


@pytest.mark.parametrize("template", HOSTILE)
@pytest.mark.parametrize("kind", KINDS)
def test_hostile_strings_execute_nothing(
    template: str, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "X"
    hostile = template.replace("{p}", str(target))
    grade(reference="5", prediction=hostile, kind=kind, timeout=3)  # type: ignore[arg-type]
    grade(reference=hostile, prediction="5", kind=kind, timeout=3)  # type: ignore[arg-type]
    equivalence_classes([hostile, "5", hostile + " "], kind=kind, timeout=3)  # type: ignore[arg-type]
    assert not target.exists()
    assert not (tmp_path / "X").exists() and list(tmp_path.iterdir()) == []


CLASSES = [
    (
        "math",
        [r"\frac{1}{2}", "0.5", "1/2", r"\dfrac12", "3", "junk words", "3.0", r"\frac{2}{4}"],
        [[0, 1, 2, 3, 7], [4, 6], [5]],
    ),
    ("math", ["27", "27.0", "027", "28", "28", "27"], [[0, 1, 2, 5], [3, 4]]),
    ("math", ["1", "2", "3"], [[0], [1], [2]]),
    ("math", ["2", "1", "1", "2"], [[0, 3], [1, 2]]),  # tie: earliest first index first
    ("math", [], []),
    ("math", [r"\text{Evelyn}", "Evelyn", "Alice", r"\textbf{alice}"], [[0, 1], [2, 3]]),
    ("math", ["(3,4]", "(3, 4]", "[3,4]", r"\left(3,4\right]"], [[0, 1, 3], [2]]),
    ("math", ["1,000", "1000", r"10^3", "100"], [[0, 1, 2], [3]]),
    ("math", [r"90^\circ", "90", r"\frac{\pi}{2}"], [[0, 1], [2]]),
    ("math", ["x^2+2x+1", "(x+1)^2", "x^2+1"], [[0, 1], [2]]),
    # latex2sympy gives up on "2(1,...)" and "(1,...)+1": strings, equal only to the same string
    ("math", ["(1,-16,-4,43)", "2(1,-16,-4,43)", "(1,-16,-4,43)+1", "(1, -16, -4, 43)"], [[0, 3], [1], [2]]),
    # ... while math-verify's regex fallback reads the 0 in "(-\infty, 0]+1": equal to "0"
    ("math", [r"(-\infty, 0]", r"(-\infty, 0]+1", r"2(-\infty, 0]", "0", "x"], [[1, 2, 3], [0], [4]]),
    # ... and the last fraction of "pmatrix+1"; a number times a matrix is a matrix
    (
        "math",
        [
            r"\begin{pmatrix} 16/49 \\ 48/49 \end{pmatrix}",
            r"\begin{pmatrix} 16/49 \\ 48/49 \end{pmatrix}+1",
            r"\frac{48}{49}",
            r"2\begin{pmatrix} 8/49 \\ 24/49 \end{pmatrix}",
        ],
        [[0, 3], [1, 2]],
    ),
    ("choice", ["C", "(C)", r"\text{C}", "D", "C."], [[0, 1, 2, 4], [3]]),
    ("bbeh", ["(E)", "e", "E.", "d"], [[0, 1, 2], [3]]),
    ("exact", ["a b", "a  b", "A b"], [[0, 1], [2]]),
]


@pytest.mark.parametrize(("kind", "answers", "expected"), CLASSES)
def test_equivalence_classes(kind: str, answers: list[str], expected: list[list[int]]) -> None:
    assert equivalence_classes(answers, kind=kind) == expected  # type: ignore[arg-type]


def test_equivalence_classes_many_matches_single() -> None:
    sets = [answers for kind, answers, _ in CLASSES if kind == "math"]
    assert equivalence_classes_many(sets) == [equivalence_classes(s) for s in sets]


def test_equivalence_classes_with_pathological_member() -> None:
    assert _pool().wait_ready()
    start = time.monotonic()
    classes = equivalence_classes([r"\frac{1}{2}", "9^{9^{9^9}}", "0.5", "9^{9^{9^9}}"], timeout=2)
    assert time.monotonic() - start < 8.0
    assert classes == [[0, 2], [1, 3]]


def test_called_from_threads() -> None:
    results: dict[int, bool | None] = {}

    def work(i: int) -> None:
        v = grade(
            reference=rf"\frac{{{i}}}{{{i + 1}}}",
            prediction=rf"\dfrac{{{2 * i}}}{{{2 * i + 2}}}",
            kind="math",
        )
        results[i] = v.correct

    threads = [threading.Thread(target=work, args=(i,)) for i in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == {i: True for i in range(1, 7)}


def test_shutdown_and_restart() -> None:
    assert grade(reference=r"\sqrt{4}", prediction="2", kind="math").correct is True
    shutdown_pool()
    shutdown_pool()  # idempotent
    assert grade(reference=r"\sqrt{9}", prediction=r"\frac{6}{2}", kind="math").correct is True


# ----------------------------------------------------------------------------- the worker pool


def _broken_math_verify(tmp_path: Path) -> str:
    """A directory whose ``math_verify`` fails to import, as a broken installation does."""
    pkg = tmp_path / "broken" / "math_verify"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('raise ImportError("planted: latex2sympy2_extended is missing")\n')
    return str(pkg.parent)


def test_broken_math_verify_is_a_loud_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # spawned workers inherit the parent's sys.path, so they import the broken package
    monkeypatch.syspath_prepend(_broken_math_verify(tmp_path))
    pool = WorkerPool(size=1)
    try:
        future = pool.submit("grade", (r"\boxed{y=1}", [r"\boxed{y=2}"]), 5.0)
        with pytest.raises(GraderUnavailable, match=r"math-verify cannot be imported .*planted") as err:
            future.result(timeout=300)
        assert "\n" not in str(err.value) and err.value.exit_code == 2
        with pytest.raises(GraderUnavailable, match="planted"):  # every later job fails at once
            pool.submit("cluster", ([r"\boxed{y=1}", r"\boxed{y=2}"], [], ["y=1", "y=2"]), 5.0)
        with pytest.raises(GraderUnavailable):
            pool.wait_ready(timeout=5)
    finally:
        pool.shutdown()


def test_broken_math_verify_never_degrades_grade_or_clustering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutdown_pool()
    clear_caches()  # no remembered verdict may answer for math-verify
    monkeypatch.syspath_prepend(_broken_math_verify(tmp_path))
    try:
        # decided without math-verify: still graded
        assert grade(reference=r"\frac{1}{2}", prediction="0.5", kind="math").correct is True
        # functions need math-verify: an error, not a Verdict(status="error") or string buckets
        with pytest.raises(GraderUnavailable, match="math-verify"):
            grade(reference=r"\sin x", prediction=r"\cos x", kind="math")
        with pytest.raises(GraderUnavailable, match="math-verify"):
            equivalence_classes([r"\sin x", r"\sin{x}", r"\cos x"], kind="math")
    finally:
        shutdown_pool()


def test_a_replacement_worker_is_warm_before_it_takes_a_job() -> None:
    pool = WorkerPool(size=1)
    try:
        assert pool.wait_ready()  # the worker and the hot spare are warm
        tower = r"\boxed{9^{9^{9^9}}}"
        for _ in range(2):
            # each kill promotes the spare and starts a new one; the second kill's replacement
            # is the spare started about a second earlier, still importing or warming up
            assert pool.submit("grade", (r"\boxed{5}", [tower]), 1.0).result(timeout=300) == [
                ("timeout", None, "prediction: timeout")
            ]
        assert pool.kills == 2
        result = pool.submit("grade", (r"\boxed{y=2x+1}", [r"\boxed{y=1+2x}", r"\boxed{y=2x}"]), 10.0)
        assert [(s, c) for s, c, _ in result.result(timeout=300)] == [("ok", True), ("ok", False)]
        assert pool.cold_jobs == 0  # no job began on a worker that had not finished its warm-up
    finally:
        pool.shutdown()
