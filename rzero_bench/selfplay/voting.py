"""Self-consistency voting: m solver answers -> majority pseudo-label and agreement p_hat.

Paper (R-Zero §3.2-3.3): the solver samples m answers (m = 10), answers are grouped by
equivalence, the largest group's answer is the pseudo-label ``y~`` and
``p_hat = |{j : y_j = y~}| / m``. m counts every sample, including those with no answer.

* A sample whose completion has no ``\\boxed{}`` is "no answer" (``None``): it counts in m, joins no
  class, and can never be the label. Blank answers (an empty ``\\boxed{}``) are treated the same
  way (the official code also skips them).
* Official-code variant (``none_is_answer=True``): its extractor (mathruler) returns the string
  ``"None"`` when there is no box, and that string is then voted on like any answer; a question
  can get the pseudo-label "None" (its filter later drops it).
* Ties between equally large classes go to the class whose first member came first (the official
  code's ``max`` over an insertion-ordered dict does the same); the label is that first member.
* Known difference: the official code also merges any two answers that both contain ``"no "``
  (a cheap pre-check before its grader); we leave equivalence to the grader.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rzero_bench.records import Vote

ClassesFn = Callable[..., list[list[int]]]


def _default_classes_fn() -> ClassesFn:
    from rzero_bench.grading import equivalence_classes

    return equivalence_classes


def vote(
    question_id: str,
    answers: Sequence[str | None],
    *,
    kind: str = "math",
    none_is_answer: bool = False,
    classes_fn: ClassesFn | None = None,
    timeout: float = 5.0,
) -> Vote:
    """Majority vote over ``answers`` (one per sample, None = no answer).

    ``classes_fn(answers, kind=..., timeout=...)`` returns classes of indices, largest first (ties:
    earliest first index); it defaults to :func:`rzero_bench.grading.equivalence_classes`.
    ``answered`` counts the samples that took part in the vote (with ``none_is_answer`` that
    includes the "None" strings). Raises ValueError when there are no samples at all.
    """
    m = len(answers)
    if m == 0:
        raise ValueError(f"question {question_id!r}: cannot vote over zero samples")
    present: list[str] = []
    for a in answers:
        if a is None:
            if none_is_answer:
                present.append("None")
            continue
        if not a.strip():
            continue
        present.append(a)
    if not present:
        return Vote(question_id=question_id, label=None, p_hat=0.0, m=m, answered=0, counts=(), answers=())
    fn = classes_fn if classes_fn is not None else _default_classes_fn()
    classes = [sorted(c) for c in fn(present, kind=kind, timeout=timeout) if c]
    seen = sorted(i for c in classes for i in c)
    if seen != list(range(len(present))):
        raise ValueError(f"question {question_id!r}: equivalence classes do not partition the answers")
    # largest first, ties by earliest first member (do not rely on the grader's order)
    classes.sort(key=lambda c: (-len(c), c[0]))
    counts = tuple(len(c) for c in classes)
    reps = tuple(present[c[0]] for c in classes)
    return Vote(
        question_id=question_id,
        label=reps[0],
        p_hat=counts[0] / m,
        m=m,
        answered=len(present),
        counts=counts,
        answers=reps,
    )
