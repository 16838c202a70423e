"""Self-consistency voting: exact p_hat, labels, ties, no-answer handling, both variants."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from rzero_bench.selfplay.voting import vote


def exact_classes(answers: Sequence[str], *, kind: str = "math", timeout: float = 5.0) -> list[list[int]]:
    """Equivalence = string equality (stands in for the grader)."""
    groups: dict[str, list[int]] = {}
    for i, a in enumerate(answers):
        groups.setdefault(a, []).append(i)
    return sorted(groups.values(), key=lambda c: (-len(c), c[0]))


def numeric_classes(answers: Sequence[str], *, kind: str = "math", timeout: float = 5.0) -> list[list[int]]:
    """Equivalence = same number ("0.5" == "1/2"), returned in a scrambled order on purpose."""

    def value(a: str) -> float:
        if "/" in a:
            p, q = a.split("/")
            return float(p) / float(q)
        return float(a)

    groups: dict[float, list[int]] = {}
    for i, a in enumerate(answers):
        groups.setdefault(value(a), []).append(i)
    return list(reversed(list(groups.values())))


def test_majority_and_p_hat_count_all_samples() -> None:
    v = vote("q1", ["4", "4", "5", None, "4", "6", None, "5", "4", "4"], classes_fn=exact_classes)
    assert v.label == "4"
    assert v.p_hat == 0.5  # 5 of m = 10, the two no-answers count in m
    assert v.m == 10
    assert v.answered == 8
    assert v.counts == (5, 2, 1)
    assert v.answers == ("4", "5", "6")


def test_equivalent_answers_merge_and_first_seen_is_label() -> None:
    v = vote("q", ["1/2", "0.5", "3", "0.50"], classes_fn=numeric_classes)
    assert v.label == "1/2"
    assert v.counts == (3, 1)
    assert v.answers == ("1/2", "3")
    assert v.p_hat == 0.75


def test_tie_goes_to_earliest_first_member() -> None:
    v = vote("q", ["7", "3", "3", "7", "9"], classes_fn=exact_classes)
    assert v.label == "7"
    assert v.counts == (2, 2, 1)
    assert v.p_hat == 0.4
    # the grader's order does not matter
    v2 = vote("q", ["7", "3", "3", "7", "9"], classes_fn=lambda a, **k: list(reversed(exact_classes(a))))
    assert (v2.label, v2.counts, v2.answers) == ("7", (2, 2, 1), ("7", "3", "9"))


def test_all_answers_missing() -> None:
    v = vote("q", [None, None, None], classes_fn=exact_classes)
    assert v.label is None
    assert v.p_hat == 0.0
    assert v.m == 3
    assert v.answered == 0
    assert v.counts == ()


def test_blank_answers_are_no_answers() -> None:
    v = vote("q", ["", "  ", "2", None], classes_fn=exact_classes)
    assert (v.label, v.p_hat, v.answered, v.counts) == ("2", 0.25, 1, (1,))


def test_official_variant_votes_on_the_string_none() -> None:
    answers = [None, None, None, "2", "2", None, "3", "3", "3"]
    paper = vote("q", answers, classes_fn=exact_classes)
    assert (paper.label, paper.p_hat, paper.answered) == ("3", 3 / 9, 5)
    official = vote("q", answers, none_is_answer=True, classes_fn=exact_classes)
    assert official.label == "None"
    assert official.p_hat == 4 / 9
    assert official.counts == (4, 3, 2)
    assert official.answered == 9
    # all missing: the official variant is unanimous on "None"
    v = vote("q", [None, None], none_is_answer=True, classes_fn=exact_classes)
    assert (v.label, v.p_hat) == ("None", 1.0)


def test_single_sample() -> None:
    assert vote("q", ["x"], classes_fn=exact_classes).p_hat == 1.0
    v = vote("q", [None], classes_fn=exact_classes)
    assert (v.label, v.p_hat, v.m) == (None, 0.0, 1)


def test_zero_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="zero samples"):
        vote("q", [], classes_fn=exact_classes)


def test_bad_partition_is_an_error() -> None:
    with pytest.raises(ValueError, match="partition"):
        vote("q", ["a", "b"], classes_fn=lambda a, **k: [[0]])


def test_kind_and_timeout_reach_the_grader() -> None:
    seen: dict[str, object] = {}

    def spy(answers: Sequence[str], *, kind: str, timeout: float) -> list[list[int]]:
        seen.update(kind=kind, timeout=timeout, answers=list(answers))
        return exact_classes(answers)

    vote("q", ["A", None, "B"], kind="choice", timeout=1.5, classes_fn=spy)
    assert seen == {"kind": "choice", "timeout": 1.5, "answers": ["A", "B"]}


def test_vote_round_trips_through_dict() -> None:
    from rzero_bench.records import Vote

    v = vote("q", ["1", "1", "2"], classes_fn=exact_classes)
    assert Vote.from_dict(v.to_dict()) == v
