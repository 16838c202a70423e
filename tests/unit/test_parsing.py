"""Table-driven tests for rzero_bench.parsing."""

from __future__ import annotations

import time

import pytest

from rzero_bench.parsing import all_boxed, decode_untrusted, extract_choice, extract_question, last_boxed

BOXED = [
    (r"so \boxed{5}", "5"),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
    (r"\boxed{\frac{\sqrt{3}}{2}} and more", r"\frac{\sqrt{3}}{2}"),
    (r"first \boxed{1} then \boxed{2}", "2"),
    (r"\boxed{3} then truncated \boxed{4", "3"),  # unclosed last box is ignored
    (r"\boxed{a}}}", "a"),  # stray closing braces
    (r"\boxed{", None),
    (r"\boxed{}", ""),
    (r"\boxed{ }", " "),
    (r"\boxed 5$", "5"),
    (r"$\boxed 42$.", "42"),
    (r"\boxed5", "5"),
    (r"\fbox{7}", "7"),
    (r"\boxed{\boxed{8}}", "8"),
    (r"\boxed{\{1,2\}}", r"\{1,2\}"),
    (r"\boxed{\left\{ x \right\}}", r"\left\{ x \right\}"),
    (r"\boxed {9}", "9"),
    (r"\boxeddd{9}", None),
    ("no box here", None),
    ("", None),
    (r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
]


@pytest.mark.parametrize(("text", "expected"), BOXED)
def test_last_boxed(text: str, expected: str | None) -> None:
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"\boxed{1} \fbox{2} \boxed{3", ["1", "2"]),
        (r"\boxed{\boxed{1}} \boxed 2", [r"\boxed{1}", "2"]),
        ("nothing", []),
        (r"\boxed{}\boxed{x}", ["", "x"]),
    ],
)
def test_all_boxed(text: str, expected: list[str]) -> None:
    assert all_boxed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<question>What is 2+2?</question>", "What is 2+2?"),
        ("<question>a</question> then <question> b </question>", "b"),
        ("<question>complete</question><question>truncated", "complete"),
        ("<question>unclosed", None),
        ("no tags", None),
        ("<question></question>", ""),
    ],
)
def test_extract_question(text: str, expected: str | None) -> None:
    assert extract_question(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Answer: C", "C"),
        ("the answer is (C).", "C"),
        ("The answer is **B**", "B"),
        ("(C)", "C"),
        ("C", "C"),
        ("C.", "C"),
        ("C) 42 apples", "C"),
        (r"\boxed{C}", "C"),
        (r"\boxed{\text{(C)}}", "C"),
        (r"so $\boxed{\textbf{J}}$", "J"),
        ("I think (B) ... no, (D)", "D"),
        ("A is a vowel", None),
        ("nothing here", None),
        (r"\boxed{42}", None),
        ("Answer: K", None),  # not an option letter
    ],
)
def test_extract_choice(text: str, expected: str | None) -> None:
    assert extract_choice(text) == expected


def test_extract_choice_custom_letters() -> None:
    assert extract_choice("Answer: E", letters="ABCD") is None
    assert extract_choice("Answer: D", letters="ABCD") == "D"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"plain", "plain"),
        ("caf\u00e9".encode(), "caf\u00e9"),
        (b"bad \xff\xfe bytes", "bad \ufffd\ufffd bytes"),
        (b"truncated \xe2\x82", "truncated \ufffd"),
        (b"", ""),
    ],
)
def test_decode_untrusted(data: bytes, expected: str) -> None:
    assert decode_untrusted(data) == expected


@pytest.mark.parametrize(
    "text",
    [
        "x" * 1_000_000 + r"\boxed{1}",
        r"\boxed{" * 200_000,  # many unclosed boxes: must not go quadratic
        "{" * 500_000 + r"\boxed{2}" + "}" * 500_000,
        r"\boxed{1}" * 100_000,
        "(A) " * 250_000,
        "answer " * 150_000,
    ],
)
def test_one_megabyte_is_fast(text: str) -> None:
    start = time.perf_counter()
    last_boxed(text)
    all_boxed(text)
    extract_choice(text)
    extract_question(text + "<question>q</question>")
    assert time.perf_counter() - start < 3.0


def test_one_megabyte_results() -> None:
    assert last_boxed("x" * 1_000_000 + r"\boxed{1}") == "1"
    assert last_boxed(r"\boxed{" * 200_000) is None
    assert len(all_boxed(r"\boxed{1}" * 100_000)) == 100_000
