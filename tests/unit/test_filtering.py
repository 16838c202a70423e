"""Solver-dataset filter: exact band edges in both modes, every drop reason counted."""

from __future__ import annotations

from fractions import Fraction

import pytest

from rzero_bench.records import Question, Vote
from rzero_bench.selfplay.filtering import DROP_REASONS, agreement, filter_questions, in_band, normalize_text


def qv(i: int, text: str, count: int, m: int = 10, label: str | None = "1") -> tuple[Question, Vote]:
    q = Question(id=f"q{i}", text=text)
    counts = (count,) if count and label is not None else ()
    v = Vote(question_id=q.id, label=label, p_hat=count / m, m=m, answered=count, counts=counts, answers=())
    return q, v


def run(pairs: list[tuple[Question, Vote]], **kw: object) -> tuple[list[str], dict[str, int]]:
    kept, drops = filter_questions([q for q, _ in pairs], [v for _, v in pairs], **kw)  # type: ignore[arg-type]
    return [q.id for q, _ in kept], drops


@pytest.mark.parametrize(
    ("count", "m", "paper", "band"),
    [
        (2, 10, -1, -1),  # 0.2
        (3, 10, 0, 0),  # 0.3: band edge kept
        (8, 10, 1, 0),  # 0.8: band edge kept, above 0.75
        (9, 10, 1, 1),
        (1, 4, 0, -1),  # 0.25: paper edge kept (delta 0.25)
        (3, 4, 0, 0),  # 0.75: paper edge kept
        (5, 10, 0, 0),
        (7, 9, 1, 0),  # 0.777...
        (2, 9, -1, -1),  # 0.222...
    ],
)
def test_edges_are_inclusive_and_exact(count: int, m: int, paper: int, band: int) -> None:
    v = Vote(question_id="q", label="1", p_hat=count / m, m=m, answered=m, counts=(count,), answers=("1",))
    assert in_band(agreement(v), mode="paper", delta=0.25) == paper
    assert in_band(agreement(v), mode="band", band=(0.3, 0.8)) == band


def test_float_constants_read_as_decimals() -> None:
    # |0.2 - 0.5| = 0.3 exactly when delta is the decimal 0.3 (the float 0.3 is a hair below)
    assert in_band(Fraction(1, 5), mode="paper", delta=0.3) == 0
    assert in_band(Fraction(4, 5), mode="paper", delta=0.3) == 0
    assert in_band(0.7 + 1e-12, mode="band", band=(0.3, 0.7)) == 1
    # votes without counts fall back to p_hat
    v = Vote(question_id="q", label="1", p_hat=0.3, m=0, answered=0)
    assert agreement(v) == Fraction(3, 10)


def test_every_reason_counted() -> None:
    pairs = [
        qv(0, "What is 2+2?", 5),  # kept
        qv(1, "   ", 5),  # malformed
        qv(2, "No label here", 0, label=None),  # no_label
        qv(3, "Too easy?", 9),  # too_easy
        qv(4, "Too hard?", 1),  # too_hard
        qv(5, "What is 2+2?", 6),  # exact duplicate of q0
        qv(6, "what is 2 + 2", 4),  # near duplicate (normalised) of q0
        qv(7, "Label is the string None", 5, label="None"),  # no_label (official non-answer)
        qv(8, "A different question", 3),  # kept (0.3 is inside the paper band)
        qv(9, "Another one", 7),  # kept
    ]
    kept, drops = run(pairs)
    assert kept == ["q0", "q8", "q9"]
    assert drops == {
        "malformed": 1,
        "no_label": 2,
        "too_hard": 1,
        "too_easy": 1,
        "exact_duplicate": 1,
        "near_duplicate": 1,
    }
    assert set(drops) == set(DROP_REASONS)
    assert sum(drops.values()) + len(kept) == len(pairs)


def test_band_mode_and_no_dedup() -> None:
    pairs = [qv(0, "Same", 3), qv(1, "Same", 8), qv(2, "Other", 9), qv(3, "Low", 2)]
    kept, drops = run(pairs, mode="band", band=(0.3, 0.8), dedup=False)
    assert kept == ["q0", "q1"]
    assert drops["too_easy"] == 1 and drops["too_hard"] == 1 and drops["exact_duplicate"] == 0
    kept, drops = run(pairs, mode="band")
    assert kept == ["q0"] and drops["exact_duplicate"] == 1


def test_identical_questions_first_passing_copy_is_kept() -> None:
    pairs = [qv(0, "Q", 9), qv(1, "Q", 5), qv(2, "Q", 5)]
    kept, drops = run(pairs)
    assert kept == ["q1"]
    assert drops["too_easy"] == 1 and drops["exact_duplicate"] == 1


def test_none_label_kept_when_asked() -> None:
    kept, drops = run([qv(0, "Q", 5, label="None")], drop_none_label=False)
    assert kept == ["q0"] and drops["no_label"] == 0


def test_bleu_near_duplicates() -> None:
    long_q = "Let f of x be x squared plus three x minus seven . Find the sum of all real roots of f ."
    pairs = [
        qv(0, long_q, 5),
        qv(1, long_q.replace("seven", "eight"), 5),
        qv(2, "Count the primes below 50 .", 5),
    ]
    kept, drops = run(pairs)
    assert kept == ["q0", "q1", "q2"]
    kept, drops = run(pairs, near_dup_threshold=0.6)
    assert kept == ["q0", "q2"] and drops["near_duplicate"] == 1


def test_normalize_text() -> None:
    assert normalize_text("  What IS 2 + 2 ? ") == normalize_text("what is 2+2")
    assert normalize_text("x^2") != normalize_text("x2")


def test_mismatched_inputs() -> None:
    q, v = qv(0, "Q", 5)
    with pytest.raises(ValueError):
        filter_questions([q], [])
    with pytest.raises(ValueError):
        filter_questions([Question(id="other", text="Q")], [v])
    with pytest.raises(ValueError):
        in_band(0.5, mode="nope")  # type: ignore[arg-type]


def test_empty_input() -> None:
    kept, drops = filter_questions([], [])
    assert kept == [] and drops == dict.fromkeys(DROP_REASONS, 0)
